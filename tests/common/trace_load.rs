//! A large, realistic trace graded the way the runner grades one, and the peak resident memory it took.
//!
//! Shared by `tests/trace_memory.rs` (two small sizes, in debug) and
//! `benches/trace_memory.rs` (a 250 MB trace, in release). Each size runs
//! in a process of its own, so that one measurement does not carry the
//! other's peak.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessionrange::grade::{self, GradeConfig, OutputCheck, RunFacts};
use sessionrange::site::TraceLog;
use sessionrange::{Engine, EngineConfig, GeoDb, Reason, RequestContext, SessionId, Timestamp};

/// Sessions of the trace: a fixed number, whatever its size.
pub(crate) const SESSIONS: u64 = 200;

/// What one grading took.
#[derive(Debug)]
pub(crate) struct Measured {
    /// Peak resident set of the process (`VmHWM`), in KiB.
    pub hwm_kib: u64,
    /// Decisions recorded.
    pub decisions: u64,
    /// Bytes of trace written.
    pub bytes: u64,
    /// Sessions the summary holds.
    pub sessions: usize,
    /// Wall time of recording and grading.
    pub seconds: f64,
}

impl Measured {
    /// One line a parent process can read back.
    pub(crate) fn line(&self) -> String {
        format!(
            "measured hwm_kib={} decisions={} bytes={} sessions={} seconds={:.2}",
            self.hwm_kib, self.decisions, self.bytes, self.sessions, self.seconds
        )
    }

    /// Reads [`Measured::line`] back out of a child's output.
    pub(crate) fn parse(output: &str) -> Option<Self> {
        let at = output.find("measured ")?;
        let line = output[at..].lines().next()?;
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        Some(Self {
            hwm_kib: field("hwm_kib")?.parse().ok()?,
            decisions: field("decisions")?.parse().ok()?,
            bytes: field("bytes")?.parse().ok()?,
            sessions: field("sessions")?.parse().ok()?,
            seconds: field("seconds")?.parse().ok()?,
        })
    }
}

/// The peak resident set of this process, in KiB (Linux only).
pub(crate) fn hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A browser-like request context from the `n`th address, with a TLS
/// fingerprint, as a real client's line carries (about 900 bytes).
fn context(geo: &GeoDb, n: u64, accept: &str) -> Arc<RequestContext> {
    let ip = format!("127.0.{}.{}", 1 + n / 250, 1 + n % 250);
    let ip = ip.parse().expect("an address");
    let headers = [
        ("host", "target.test"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ),
        ("accept", accept),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "sr_session=0123456789abcdef0123456789abcdef"),
    ];
    let ctx = RequestContext::from_headers(Some(ip), geo.lookup(ip), headers).with_tls(
        Some("771,4865-4866-4867,0-23-65281,29-23-24,0".into()),
        Some("t13d1715h2_5b57614c22b0_3d5424432f57".into()),
    );
    Arc::new(ctx)
}

/// Records decisions of [`SESSIONS`] sessions through the runner's own
/// graded trace at `path` until it holds `bytes`, then grades the summary.
pub(crate) fn grade_a_trace_of(bytes: u64, path: &Path) -> Measured {
    let started = Instant::now();
    let log = sessionrange::runner::graded_trace(path, grade::DEFAULT_IN_FLIGHT_GRACE)
        .expect("a trace file");
    let (decisions, written) = record(&log, bytes, path);
    let (facts, view) = log.take_graded().expect("a graded trace");
    assert!(
        view.sessions.iter().any(|s| !s.marks.is_empty()),
        "the report's view is summed up too"
    );
    drop(log);
    let served = std::collections::HashMap::new();
    let run = RunFacts {
        trace: &facts,
        output: OutputCheck::default(),
        dataset_size: 1_000,
        served: &served,
        served_unique: 0,
        abandoned_login_flows: 0,
        started: T0,
        ended: T0.plus(Duration::from_millis(decisions / 2)),
    };
    let (metrics, _) = grade::grade(&run, &GradeConfig::default());
    assert!(
        metrics.zombie_requests > 0,
        "the revoked sessions were used on"
    );
    Measured {
        hwm_kib: hwm_kib().unwrap_or(0),
        decisions: metrics.requests,
        bytes: written,
        sessions: facts.lives.len(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// When the recorded run starts.
const T0: Timestamp = Timestamp::from_millis(1_790_000_000_000);

/// Records into `log` (a request and a release each time; a full context
/// on every eighth request of a session, a `context_of` reference
/// otherwise, as keep-alive clients get) until `path` holds `bytes`, with
/// ten sessions revoked half way and used on. Returns the decisions made
/// and the bytes written.
fn record(log: &TraceLog, bytes: u64, path: &Path) -> (u64, u64) {
    let geo = GeoDb::embedded();
    let engine = Engine::new(EngineConfig::default()).expect("engine");
    let sid = |n: u64| SessionId::from_u128(u128::from(n) * 0x9e37_79b9 + 1);
    for n in 0..SESSIONS {
        log.record(&engine.login(sid(n), "alice", context(&geo, n, "*/*"), vec![], T0));
    }
    let mut last_full = vec![0u64; SESSIONS as usize];
    let (mut decisions, mut written, mut revoked) = (SESSIONS, 0, false);
    while written < bytes {
        for n in 0..SESSIONS {
            let at = T0.plus(Duration::from_millis(decisions / 2));
            let mut d = engine.decide(sid(n), context(&geo, n, "text/html"), at);
            if (decisions / SESSIONS).is_multiple_of(8) {
                last_full[n as usize] = d.seq;
            } else {
                (d.context, d.context_of) = (None, Some(last_full[n as usize]));
            }
            log.record(&d);
            log.record(&engine.release(sid(n), at));
            decisions += 1;
        }
        if !revoked && written > bytes / 2 {
            let at = T0.plus(Duration::from_millis(decisions / 2));
            for n in 0..10 {
                log.record(&engine.revoke(sid(n), Reason::SessionRevoked, at));
            }
            revoked = true;
        }
        written = std::fs::metadata(path).map_or(0, |m| m.len());
    }
    (decisions, written)
}
