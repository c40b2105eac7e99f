#![no_main]
//! nmap XML from an untrusted source: the parser must return, never panic or hang.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seclab::scan::parse::read_scan(data);
});
