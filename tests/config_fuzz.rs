//! The config parser never panics, whatever it is given (bounded property tests).

use proptest::prelude::*;
use seclab::config::{self, SourceFile};

const EXAMPLE: &str = include_str!("../examples/tenants.yaml");

fn check(text: &str) {
    if let Err(invalid) = config::parse(SourceFile::new("fuzz.yaml", text)) {
        // Showing the problems must not panic either.
        let _ = invalid.report(false);
        let _ = invalid.to_string();
        assert!(!invalid.diagnostics().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn yaml_shaped_text(text in "([a-zA-Z]{1,8}: ?(\\[|\\{|-|[0-9]{1,3}|\"|'|&a|\\*a|!!str)?\n {0,6}){0,30}") {
        check(&text);
    }

    /// The example with a slice cut out or a byte changed: mostly near-valid files.
    #[test]
    fn mutated_example(start in 0..EXAMPLE.len(), len in 0usize..40, byte in any::<u8>()) {
        let bytes = EXAMPLE.as_bytes();
        let end = (start + len).min(bytes.len());
        let mut cut = [&bytes[..start], &bytes[end..]].concat();
        check(&String::from_utf8_lossy(&cut));
        if start < cut.len() {
            cut[start] = byte;
        }
        check(&String::from_utf8_lossy(&cut));
    }
}
