//! Fuzzes the ClientHello parser and every fingerprint computed from it: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionrange::fingerprint;

fuzz_target!(|data: &[u8]| {
    // From the record header on, as the HTTPS listener reads it.
    let _ = fingerprint::tls(data);
    // The same bytes behind a valid record and handshake header, so that
    // the fuzzer spends its time inside the hello body.
    let Ok(len) = u16::try_from(data.len() + 4) else {
        return;
    };
    let body = u32::try_from(data.len()).unwrap_or(0).to_be_bytes();
    let mut framed = vec![0x16, 0x03, 0x01];
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&[0x01, body[1], body[2], body[3]]);
    framed.extend_from_slice(data);
    let _ = fingerprint::tls(&framed);
});
