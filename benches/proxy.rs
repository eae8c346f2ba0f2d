//! Proxy benchmark: keep-alive HTTP through a pool node against the same target reached directly.
//!
//! Both paths hit the same target, the same authenticated data page, with
//! every rule on. Each worker has a session born on its own path (direct,
//! or through the exit), so nothing is refused. The throughput rounds
//! alternate direct and proxied back to back and print the median ratio;
//! the latency pass times single sequential requests, alternating blocks,
//! and prints how much the proxy adds to the median.
//!
//! Run with `cargo bench --bench proxy`.

mod common;

use std::time::Instant;

use common::{Headers, ROUND_TIME, WORKERS, clients, config, median, range, round};
use sessionrange::TargetServer;
use sessionrange::pool::{PoolConfig, ProxyPool};

const ROUNDS: usize = 11;
const LATENCY_BLOCKS: usize = 20;
const LATENCY_BLOCK: usize = 100;

const POOL: &str = r#"
    user = "bench"
    password = "bench"
    [[exits]]
    name = "home"
    ip = "127.0.1.20"
"#;

/// A bare TCP relay to `to` (accept, connect, copy both ways): the floor
/// any proxy hop costs on this machine, measured in the same run.
async fn tcp_relay(to: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind relay");
    let addr = listener.local_addr().expect("relay address");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let mut up = tokio::net::TcpStream::connect(to)
                    .await
                    .expect("relay upstream");
                let _ = up.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
            });
        }
    });
    addr
}

/// Times `n` sequential requests; returns each one's latency in microseconds.
async fn sequential(client: &reqwest::Client, url: &str, n: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client.get(url).send().await.expect("request");
        assert!(r.status().is_success(), "refused: {}", r.status());
        r.bytes().await.expect("body");
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let target = TargetServer::builder().config(config()).start().await.expect("target starts");
        let pool_config: PoolConfig = toml::from_str(POOL).expect("pool config");
        let pool = ProxyPool::start(&pool_config, target.upstream()).await.expect("pool starts");
        let proxy = pool.exit("home").expect("the exit").url.clone();
        let direct = clients(&target, None).await;
        let proxied = clients(&target, Some(&proxy)).await;
        let url = target.url("/api/v1/items?page=1");
        round(&direct, &url, Headers::Repeated).await;
        round(&proxied, &url, Headers::Repeated).await;
        let (mut d, mut p, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let a = round(&direct, &url, Headers::Repeated).await;
            let b = round(&proxied, &url, Headers::Repeated).await;
            d.push(a);
            p.push(b);
            ratios.push(b / a);
        }
        let (lo, hi) = range(&ratios);
        let (dm, pm, r) = (median(d), median(p), median(ratios));
        println!("proxy: direct {dm:.0} req/s, through the exit {pm:.0} req/s (medians)");
        println!("proxy: throughput ratio {r:.3} (median of {ROUNDS} pairs, range {lo:.3} to {hi:.3}; goal >= 0.7)");
        println!("proxy: {WORKERS} keep-alive workers with a session each, rounds of {} ms", ROUND_TIME.as_millis());
        let (one_direct, one_proxied) = (&direct[0], &proxied[0]);
        let relay = tcp_relay(target.addr()).await;
        let relay_url = format!("http://{relay}/api/v1/items?page=1");
        let (mut ld, mut lp, mut lr) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..LATENCY_BLOCKS {
            ld.extend(sequential(one_direct, &url, LATENCY_BLOCK).await);
            lp.extend(sequential(one_proxied, &url, LATENCY_BLOCK).await);
            lr.extend(sequential(one_direct, &relay_url, LATENCY_BLOCK).await);
        }
        let (ld, lp, lr) = (median(ld), median(lp), median(lr));
        let added = lp - ld;
        println!("proxy: median latency direct {ld:.0} us, through the exit {lp:.0} us: the proxy adds {added:.0} us (goal <= 100 us)");
        println!("proxy: a bare TCP relay adds {:.0} us on this machine (the floor of any extra hop)", lr - ld);
        println!("proxy: {} sequential requests per path in alternating blocks of {LATENCY_BLOCK}", LATENCY_BLOCKS * LATENCY_BLOCK);
    });
}
