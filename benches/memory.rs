//! Memory per live session: resident-set growth while 1M sessions are logged in.
//!
//! Run with `cargo bench --bench memory`. It reads `/proc/self/statm`, so it
//! reports only on Linux. Sessions share 1,000 accounts and one client
//! stack; each has its own companion-cookie values, as on a real target.

use std::time::Duration;

use sessionrange::{Engine, EngineConfig, GeoDb, RequestContext, SessionId, Timestamp};

const SESSIONS: u64 = 1_000_000;
const ACCOUNTS: u64 = 1_000;

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let geo = GeoDb::embedded();
    let ip = "127.0.1.20".parse().expect("address");
    let headers = [
        ("host", "target.test"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ),
        ("accept", "text/html,application/xhtml+xml"),
        ("accept-language", "en-US,en;q=0.5"),
    ];
    let ctx = RequestContext::from_headers(Some(ip), geo.lookup(ip), headers)
        .with_tls(None, Some("t13d1715h2_5b57614c22b0_3d5424432f57".into()));
    let engine = Engine::new(EngineConfig::default()).expect("default config");
    let now = Timestamp::from_secs(1_790_000_000);
    let Some(before) = rss_bytes() else {
        println!("memory: /proc/self/statm is not readable here; nothing measured");
        return;
    };
    for i in 0..SESSIONS {
        let sid = SessionId::from_u128(u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let companions = vec![
            (
                "_rid".to_owned(),
                format!("{:016x}", i.wrapping_mul(0x2545_f491_4f6c_dd1d)),
            ),
            ("_sensor".to_owned(), format!("3:{i:08x}")),
        ];
        let account = format!("user{}", i % ACCOUNTS);
        engine.login(sid, &account, ctx.clone(), companions, now);
        if i % 7 == 0 {
            engine.decide(sid, ctx.clone(), now.plus(Duration::from_secs(1)));
        }
    }
    let after = rss_bytes().unwrap_or(before);
    let per = (after.saturating_sub(before)) as f64 / SESSIONS as f64;
    println!(
        "memory: {} live sessions, RSS {:.1} MiB -> {:.1} MiB, {:.0} bytes per session (goal <= 1024)",
        engine.len(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per
    );
}
