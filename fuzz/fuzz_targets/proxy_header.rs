//! Fuzzes the PROXY v2 header parser the pool listener runs on every connection: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionrange::proxy_protocol;

const SECRET: &[u8] = b"pool-secret";

fuzz_target!(|data: &[u8]| {
    let _ = proxy_protocol::parse(data, SECRET);
    // Behind the v2 signature and a PROXY/TCP4 command byte, so that the
    // fuzzer explores lengths, addresses and TLVs rather than the magic.
    let mut signed = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
    signed.extend_from_slice(data);
    let _ = proxy_protocol::parse(&signed, SECRET);
});
