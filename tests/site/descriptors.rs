//! Descriptor exhaustion: `serve` under a low descriptor limit, flooded with silent connections, keeps serving a normal client and does not spin.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::helpers::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_sessionrange");
/// The child's descriptor limit, soft and hard.
const LIMIT: u32 = 256;
/// Silent connections: more than the child has descriptors.
const SILENT: usize = 320;
/// Normal requests, each on a connection of its own.
const REQUESTS: usize = 5;

/// Ticks a second in `/proc/PID/stat`: Linux reports USER_HZ, always 100.
const USER_HZ: f64 = 100.0;

/// Clock ticks of CPU (user and system) `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which ends at the last ')'.
    let rest = stat.rsplit_once(')').expect("a stat line").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    let tick = |i: usize| fields[i].parse::<u64>().expect("a tick count");
    tick(11) + tick(12)
}

#[tokio::test]
async fn a_flood_of_silent_connections_past_the_descriptor_limit_leaves_clients_served() {
    let dir = TempDir::new("descriptors");
    let script = format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .args([
            "-c",
            &script,
            BIN,
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--trace",
        ])
        .arg(dir.join("trace.jsonl"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let pid = child.id().expect("a pid");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let site = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(url) = line.strip_prefix("  site:   ") {
                return url.trim_end_matches('/').to_owned();
            }
        }
        panic!("no site line");
    })
    .await
    .expect("the banner within 10 s");
    let addr = site.trim_start_matches("http://").to_owned();
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        silent.push(
            TcpStream::connect(&addr)
                .await
                .expect("the kernel queues it"),
        );
    }
    let (start, ticks) = (Instant::now(), cpu_ticks(pid));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    for n in 0..REQUESTS {
        let res = client
            .get(format!("{site}/__range/fingerprint"))
            .send()
            .await;
        let status = res
            .unwrap_or_else(|e| panic!("request {n} failed: {e}"))
            .status();
        assert_eq!(status, reqwest::StatusCode::OK, "request {n}");
    }
    let took = start.elapsed();
    // Well inside the 5 s head timeout: served because silent peers were
    // shed, not because they timed out.
    assert!(
        took < Duration::from_secs(3),
        "{REQUESTS} requests took {took:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = (cpu_ticks(pid) - ticks) as f64 / USER_HZ;
    let wall = start.elapsed().as_secs_f64();
    assert!(
        cpu < wall / 2.0,
        "{cpu:.2} s of CPU in {wall:.2} s: spinning"
    );
    drop(silent);
}
