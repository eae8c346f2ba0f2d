//! The load generator: keep-alive connections with one request in flight each, fixed request bytes, rounds bounded in time and count.
//!
//! It runs on its own single-threaded runtime, like `wrk -t1`, while the
//! servers run on another. The lean client of `wire` is what it drives;
//! `hyper_round` drives hyper's own HTTP/1 client instead, only to show
//! in the floor check which of the two keeps up with wrk.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

use crate::wire::{Conn, Response, Route};

/// One thing under load: its request and its open connections.
pub(crate) struct Lane {
    /// What the figures call it.
    pub(crate) name: &'static str,
    /// Responses read so far, over every round and latency block.
    pub(crate) sent: u64,
    /// CPU time per round, in cores (CPU seconds over wall seconds): the
    /// generator's thread, and the rest of the process (the servers). A
    /// generator near 1 would be the limit; servers under 2 on two cores
    /// mean they wait for something other than the CPU.
    pub(crate) cpu: Vec<(f64, f64)>,
    /// The bytes the lane's requests send: connection `i` of a round
    /// sends the `i % len`-th.
    requests: Vec<Arc<[u8]>>,
    /// Its keep-alive connections, kept open across rounds.
    conns: Vec<Conn>,
}

impl Lane {
    /// The cores its generator and its servers kept busy: each the median
    /// of the lane's rounds.
    pub(crate) fn cpu_medians(&self) -> (f64, f64) {
        let generator = crate::common::median(self.cpu.iter().map(|c| c.0).collect());
        let servers = crate::common::median(self.cpu.iter().map(|c| c.1).collect());
        (generator, servers)
    }

    /// The cores the lane kept busy, its generator and servers together.
    pub(crate) fn cores(&self) -> f64 {
        let (generator, servers) = self.cpu_medians();
        generator + servers
    }

    /// Opens `n` connections on `route` that will all send `request`,
    /// and sends it once on each: the target gives a new connection a few
    /// seconds for its first request (a slow-client defence), while a
    /// connection that has served one may idle far longer between rounds.
    pub(crate) async fn open(
        name: &'static str,
        route: &Route,
        request: Vec<u8>,
        n: usize,
    ) -> Self {
        Self::open_each(name, (0..n).map(|_| (route, request.clone())).collect()).await
    }

    /// Opens one connection per `(route, request)` of `plan`, each sending
    /// its own request: sessions of their own, or instances of their own.
    pub(crate) async fn open_each(name: &'static str, plan: Vec<(&Route, Vec<u8>)>) -> Self {
        let mut conns = Vec::with_capacity(plan.len());
        let mut requests = Vec::with_capacity(plan.len());
        for (route, request) in plan {
            let mut conn = route.connect().await;
            check(name, conn.send(&request, false).await);
            conns.push(conn);
            requests.push(Arc::from(request));
        }
        Self {
            name,
            sent: 0,
            cpu: Vec::new(),
            requests,
            conns,
        }
    }

    /// One round: every connection sends the request, waits for the whole
    /// response and sends it again, until `time` has passed or the lane
    /// has sent `max` requests in all. Returns responses per second; a
    /// response other than `200` stops the bench.
    pub(crate) async fn round(&mut self, time: Duration, max: u64) -> f64 {
        let budget = Arc::new(AtomicU64::new(max));
        let (start, cpu) = (Instant::now(), cpu_time());
        let deadline = start + time;
        let mut tasks = JoinSet::new();
        for (i, conn) in self.conns.drain(..).enumerate() {
            let job = Job {
                name: self.name,
                request: self.requests[i % self.requests.len()].clone(),
                deadline,
                budget: budget.clone(),
            };
            tasks.spawn(job.run(conn));
        }
        let mut done = 0;
        while let Some(finished) = tasks.join_next().await {
            let (conn, n) = finished.expect("a connection's task");
            self.conns.push(conn);
            done += n;
        }
        self.sent += done;
        let wall = start.elapsed().as_secs_f64();
        let (generator, process) = cpu_time();
        let generator = generator - cpu.0;
        self.cpu
            .push((generator / wall, (process - cpu.1 - generator) / wall));
        done as f64 / wall
    }

    /// Times `n` sequential requests on the lane's first connection;
    /// returns each one's latency in microseconds.
    pub(crate) async fn latencies(&mut self, n: usize) -> Vec<f64> {
        let conn = self.conns.first_mut().expect("a connection");
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = conn.send(&self.requests[0], false).await;
            times.push(t.elapsed().as_secs_f64() * 1e6);
            check(self.name, r);
        }
        self.sent += n as u64;
        times
    }
}

/// Stops the bench on anything but a `200` on lane `name`.
fn check(name: &str, r: std::io::Result<Response>) {
    match r {
        Ok(r) => assert_eq!(r.status, 200, "{name}: refused"),
        Err(e) => panic!("{name}: {e}"),
    }
}

/// What one connection's task needs for a round.
struct Job {
    /// The lane's name, for a refusal.
    name: &'static str,
    /// The request's bytes.
    request: Arc<[u8]>,
    /// When the round ends.
    deadline: Instant,
    /// Requests the round may still send, over all its connections.
    budget: Arc<AtomicU64>,
}

impl Job {
    /// Sends request after request on `conn` until the round ends; gives
    /// the connection back with the number of responses it read.
    async fn run(self, mut conn: Conn) -> (Conn, u64) {
        let mut n = 0;
        while Instant::now() < self.deadline && take(&self.budget) {
            check(self.name, conn.send(&self.request, false).await);
            n += 1;
        }
        (conn, n)
    }
}

/// CPU seconds used so far by this thread (the generator's: its runtime
/// has this one thread) and by the whole process.
fn cpu_time() -> (f64, f64) {
    use nix::sys::resource::UsageWho::{RUSAGE_SELF, RUSAGE_THREAD};
    (cpu_seconds(RUSAGE_THREAD), cpu_seconds(RUSAGE_SELF))
}

/// CPU seconds, user and system, used so far by `who`.
pub(crate) fn cpu_seconds(who: nix::sys::resource::UsageWho) -> f64 {
    let u = nix::sys::resource::getrusage(who).expect("getrusage");
    let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    s(u.user_time()) + s(u.system_time())
}

/// Takes one request from a round's budget, if any is left.
fn take(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
        .is_ok()
}

/// One round of hyper's HTTP/1 client (`client::conn::http1`) against
/// `addr`: `n` keep-alive connections, each sending a GET of `path` with
/// `headers` until `time` has passed or `max` requests have been sent in
/// all. Returns responses per second.
pub(crate) async fn hyper_round(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, String)],
    n: usize,
    (time, max): (Duration, u64),
) -> f64 {
    let mut senders = Vec::with_capacity(n);
    for _ in 0..n {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let (send, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        senders.push(send);
    }
    let (start, budget) = (Instant::now(), Arc::new(AtomicU64::new(max)));
    let mut tasks = JoinSet::new();
    for mut send in senders {
        let (path, headers, budget) = (path.to_owned(), headers.to_vec(), budget.clone());
        tasks.spawn(async move {
            let mut done = 0u64;
            while start.elapsed() < time && take(&budget) {
                let mut req = hyper::Request::get(&path);
                for (name, value) in &headers {
                    req = req.header(*name, value);
                }
                let req = req.body(Empty::<Bytes>::new()).expect("a request");
                let res = send.send_request(req).await.expect("a response");
                assert_eq!(res.status(), 200, "hyper: refused");
                res.into_body().collect().await.expect("a body");
                done += 1;
            }
            done
        });
    }
    let done: u64 = tasks.join_all().await.into_iter().sum();
    done as f64 / start.elapsed().as_secs_f64()
}
