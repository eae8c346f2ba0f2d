//! Peak memory of grading a 250 MB trace of 200 sessions, against a 30 MB one.
//!
//! Run with `cargo bench --bench trace_memory`. Each size is recorded and
//! graded through the runner's own graded trace in a child process (this
//! binary run again), which reports its peak resident set (`VmHWM`, Linux
//! only) and its time. The trace files go to the system's temporary
//! directory and are removed.

#[path = "../tests/common/trace_load.rs"]
mod trace_load;

use trace_load::Measured;

/// The variable that tells a child how many bytes of trace to grade.
const CHILD: &str = "SESSIONRANGE_TRACE_MEMORY_BYTES";

fn child(bytes: u64) {
    let path = std::env::temp_dir().join(format!(
        "sessionrange-trace-memory-{}.jsonl",
        std::process::id()
    ));
    let measured = trace_load::grade_a_trace_of(bytes, &path);
    let _ = std::fs::remove_file(&path);
    println!("{}", measured.line());
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(bytes) = std::env::var(CHILD).ok().and_then(|b| b.parse().ok()) {
        return child(bytes);
    }
    if trace_load::hwm_kib().is_none() {
        println!("trace_memory: /proc/self/status is not readable here; nothing measured");
        return;
    }
    let exe = std::env::current_exe().expect("this binary");
    for mb in [30u64, 250] {
        let out = std::process::Command::new(&exe)
            .env(CHILD, (mb << 20).to_string())
            .output()
            .expect("the child runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(m) = Measured::parse(&text) else {
            println!("trace_memory {mb} MB: no measurement ({text})");
            continue;
        };
        println!(
            "trace_memory {mb} MB: {:.1} MB written, {} requests, {} sessions, peak RSS {:.1} MiB, {:.1} s ({:.0} requests/s recorded and summed up)",
            m.bytes as f64 / 1e6,
            m.decisions,
            m.sessions,
            m.hwm_kib as f64 / 1024.0,
            m.seconds,
            m.decisions as f64 / m.seconds
        );
    }
}
