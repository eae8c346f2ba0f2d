//! Reading a child process's output: the rest of the first line that starts with a prefix.

use tokio::io::{AsyncBufRead, Lines};

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
