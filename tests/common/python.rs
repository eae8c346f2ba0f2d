//! Whether the Python client tests can run: python3 with `requests`.

/// Whether Python with `requests` can run here; CI sets
/// SESSIONRANGE_REQUIRE_PYTHON=1 so a missing one fails instead.
pub(crate) fn python_requests() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    let required = std::env::var("SESSIONRANGE_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    assert!(ok || !required, "python3 with requests is required here");
    ok
}
