//! Fuzzes the HTTP/1 request-head parser behind JA4H: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionrange::fingerprint;

fuzz_target!(|data: &[u8]| {
    let _ = fingerprint::http1(data);
    let _ = fingerprint::from_bytes(data);
});
