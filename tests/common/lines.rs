//! The binary's child processes: starting `serve`, and reading a child's output up to the line that starts with a prefix.

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, BufReader, Lines};

/// Reads `lines` until one starts with `prefix` and returns the rest of
/// it; `None` when the output ends first.
pub(crate) async fn after_prefix<R: AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    prefix: &str,
) -> Option<String> {
    while let Some(line) = lines.next_line().await.expect("the child's output") {
        if let Some(rest) = line.strip_prefix(prefix) {
            return Some(rest.to_owned());
        }
    }
    None
}

/// Starts `sessionrange serve` on a free port with `args` and its trace at
/// `trace`; returns the process and its banner's lines.
pub(crate) fn spawn_serve(
    args: &[&str],
    trace: &std::path::Path,
) -> (
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionrange"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .arg("--trace")
        .arg(trace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    (child, BufReader::new(stdout).lines())
}
