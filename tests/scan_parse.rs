//! The nmap XML parser on a real scan: it never panics, and no cut-short file passes.

use proptest::prelude::*;
use seclab::scan::parse::{ScanError, read_scan};

/// A real nmap scan of two loopback hosts (one with an SSH banner service).
const SCAN: &str = include_str!("fixtures/loopback.xml");

#[test]
fn the_fixture_is_a_complete_scan() {
    let scan = read_scan(SCAN.as_bytes()).unwrap();
    assert_eq!(scan.hosts.len(), 2);
    let ssh = scan.hosts[0].ports.iter().find(|p| p.state == "open").unwrap();
    assert_eq!(ssh.service.as_ref().unwrap().product.as_deref(), Some("OpenSSH"));
}

/// Every prefix of the file that ends before `</nmaprun>` is rejected as incomplete
/// (or as not nmap at all, when the root element is not even there).
#[test]
fn every_cut_short_file_is_rejected() {
    let end = SCAN.rfind("</nmaprun>").unwrap() + "</nmaprun>".len();
    for cut in 0..end {
        match read_scan(&SCAN.as_bytes()[..cut]) {
            Ok(_) => panic!("a file cut at byte {cut} of {end} was accepted"),
            Err(ScanError::Incomplete(_) | ScanError::NotNmap(_) | ScanError::Malformed { .. }) => {}
            Err(other) => panic!("cut at {cut}: unexpected {other}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = read_scan(bytes.as_slice());
    }

    /// The real scan with a slice replaced by random bytes.
    #[test]
    fn mutated_scans_never_panic(start in 0..SCAN.len(), len in 0usize..64, junk in proptest::collection::vec(any::<u8>(), 0..16)) {
        let bytes = SCAN.as_bytes();
        let end = (start + len).min(bytes.len());
        let mutated = [&bytes[..start], &junk, &bytes[end..]].concat();
        let _ = read_scan(mutated.as_slice());
    }
}
