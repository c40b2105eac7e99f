#![no_main]
//! A desired-state file from an untrusted source: checking it must not panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(invalid) = seclab::config::parse(seclab::config::SourceFile::new("fuzz.yaml", text)) {
            let _ = invalid.report(false);
        }
    }
});
