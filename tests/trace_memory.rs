//! Grading memory grows with a run's sessions, not with its requests.
//!
//! Each size is graded in a child process (this test binary run again on
//! `grading_child`), which reports its peak resident set (`VmHWM`): a
//! trace four times larger, with the same 200 sessions, must not take more
//! memory to grade, and both stay under the documented bound. Linux only
//! (`/proc/self/status`); elsewhere nothing is measured.

#![cfg(feature = "cli")]

#[path = "common/trace_load.rs"]
mod trace_load;

use trace_load::Measured;

/// The variable that tells a child how many bytes of trace to grade.
const CHILD: &str = "SESSIONRANGE_TRACE_MEMORY_BYTES";

/// The documented bound (README, "The grade"): 32 MiB for the process,
/// plus 64 KiB a session.
const BOUND_KIB: u64 = 32 * 1024 + trace_load::SESSIONS * 64;

/// How much more the larger trace may take: allocator noise, not growth.
const MARGIN_KIB: u64 = 4 * 1024;

/// Grades a trace of `bytes` in a child process.
fn measure(bytes: u64, dir: &std::path::Path) -> Measured {
    let exe = std::env::current_exe().expect("this test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "grading_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, bytes.to_string())
        .env("SESSIONRANGE_TRACE_MEMORY_DIR", dir)
        .output()
        .expect("the child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Measured::parse(&text).unwrap_or_else(|| panic!("no measurement in {text}"))
}

/// Not a test on its own: the child `measure` runs.
#[test]
fn grading_child() {
    let Some(bytes) = std::env::var(CHILD).ok().and_then(|b| b.parse().ok()) else {
        return;
    };
    let dir = std::env::var_os("SESSIONRANGE_TRACE_MEMORY_DIR").expect("a directory");
    let path = std::path::Path::new(&dir).join(format!("trace-{bytes}.jsonl"));
    let measured = trace_load::grade_a_trace_of(bytes, &path);
    let _ = std::fs::remove_file(&path);
    println!("{}", measured.line());
}

#[test]
fn grading_memory_does_not_grow_with_the_trace() {
    if trace_load::hwm_kib().is_none() {
        return;
    }
    let dir =
        std::env::temp_dir().join(format!("sessionrange-trace-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let small = measure(30 << 20, &dir);
    let large = measure(120 << 20, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("30 MB: {small:?}\n120 MB: {large:?}");
    assert!(
        large.decisions >= 3 * small.decisions,
        "{small:?} {large:?}"
    );
    assert_eq!((small.sessions, large.sessions), (200, 200));
    assert!(
        large.hwm_kib <= small.hwm_kib + MARGIN_KIB,
        "grading 4× the trace took {} KiB against {} KiB",
        large.hwm_kib,
        small.hwm_kib
    );
    assert!(
        large.hwm_kib <= BOUND_KIB,
        "{} KiB over the bound of {BOUND_KIB} KiB",
        large.hwm_kib
    );
}
