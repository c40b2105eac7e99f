//! A scan file cut into the raw bytes of each `<host>` element, for comparing two scans
//! without parsing the hosts that did not change. Pure: works on bytes in memory.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use memchr::memmem;

use super::model::{Host, RunInfo, RunStats};
use super::parse::{ScanError, ScanReader, check_element};

/// A scan file split into its hosts' raw XML and the document around them.
pub struct Chunks<'a> {
    /// Each `<host>...</host>`, in file order.
    pub hosts: Vec<&'a [u8]>,
    /// Run information and statistics, read (strictly) from the document without its hosts.
    pub info: RunInfo,
    /// How the scan ended.
    pub stats: RunStats,
}

/// Splits `bytes` into host elements, each checked for well-formedness, and checks the rest of
/// the document with the full parser: a scan that did not finish, or malformed anywhere, is
/// rejected exactly as [`super::parse::read_scan`] rejects it.
pub fn split(bytes: &[u8]) -> Result<Chunks<'_>, ScanError> {
    let open = memmem::Finder::new(b"<host");
    let close = memmem::Finder::new(b"</host>");
    let mut hosts = Vec::new();
    let mut rest = Vec::with_capacity(4096);
    let mut at = 0;
    while let Some(found) = open.find(&bytes[at..]) {
        let start = at + found;
        // `<host ` or `<host>`, not `<hosthint>`, `<hostnames>` or `<hostscript>`.
        if !matches!(bytes.get(start + 5), Some(b' ' | b'>')) {
            rest.extend_from_slice(&bytes[at..start + 5]);
            at = start + 5;
            continue;
        }
        let Some(length) = close.find(&bytes[start..]) else {
            return Err(ScanError::Incomplete(format!(
                "the file ends inside host {} (nmap was stopped or the file was cut short)",
                hosts.len() + 1
            )));
        };
        let end = start + length + b"</host>".len();
        // Every byte is checked, also of the hosts a comparison will not parse.
        check_element(&bytes[start..end], start as u64)?;
        rest.extend_from_slice(&bytes[at..start]);
        hosts.push(&bytes[start..end]);
        at = end;
    }
    rest.extend_from_slice(&bytes[at..]);
    let reader = ScanReader::new(rest.as_slice())?;
    let info = reader.info().clone();
    let stats = reader.finish()?;
    Ok(Chunks { hosts, info, stats })
}

/// A fingerprint of a host element without what changes on every scan of an unchanged
/// host: the start tag (start and end times) and the `<times>` element.
pub fn fingerprint(host: &[u8]) -> u64 {
    let body = memchr::memchr(b'>', host).map_or(host, |end| &host[end + 1..]);
    let mut hasher = DefaultHasher::new();
    match memmem::find(body, b"<times ") {
        Some(start) => {
            let end = memchr::memchr(b'>', &body[start..]).map_or(body.len(), |e| start + e + 1);
            body[..start].hash(&mut hasher);
            body[end..].hash(&mut hasher);
        }
        None => body.hash(&mut hasher),
    }
    hasher.finish()
}

/// The hosts of `before` and `after` whose elements differ (after removing pairs with the
/// same fingerprint), parsed. Hosts identical in both scans cannot differ, so they are
/// never parsed. An error says which scan it is in (`true`: the later one).
pub fn changed_hosts(before: &Chunks<'_>, after: &Chunks<'_>) -> Result<(Vec<Host>, Vec<Host>), (bool, ScanError)> {
    let mut unmatched: HashMap<u64, usize> = HashMap::with_capacity(before.hosts.len());
    for host in &before.hosts {
        *unmatched.entry(fingerprint(host)).or_default() += 1;
    }
    let mut later = Vec::new();
    for host in &after.hosts {
        match unmatched.get_mut(&fingerprint(host)) {
            Some(count) if *count > 0 => *count -= 1,
            _ => later.push(parse_host(host).map_err(|e| (true, e))?),
        }
    }
    let mut earlier = Vec::new();
    for host in &before.hosts {
        if let Some(count) = unmatched.get_mut(&fingerprint(host)).filter(|c| **c > 0) {
            *count -= 1;
            earlier.push(parse_host(host).map_err(|e| (false, e))?);
        }
    }
    Ok((earlier, later))
}

/// Parses one host element with the streaming parser.
fn parse_host(element: &[u8]) -> Result<Host, ScanError> {
    let document = [b"<nmaprun>".as_slice(), element, b"</nmaprun>"].concat();
    let mut reader = ScanReader::new(document.as_slice())?;
    reader
        .next_host()?
        .ok_or_else(|| ScanError::Malformed { offset: 0, message: "a <host> element holds no host".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCAN: &str = include_str!("../../tests/fixtures/loopback.xml");

    #[test]
    fn splits_hosts_and_reads_the_rest_strictly() {
        let chunks = split(SCAN.as_bytes()).unwrap();
        assert_eq!(chunks.hosts.len(), 2);
        assert!(chunks.hosts.iter().all(|h| h.starts_with(b"<host ") && h.ends_with(b"</host>")));
        assert_eq!(chunks.info.version, "7.93");
        let cut = &SCAN.as_bytes()[..SCAN.find("</nmaprun>").unwrap()];
        assert!(matches!(split(cut), Err(ScanError::Incomplete(_))));
        let inside = &SCAN.as_bytes()[..SCAN.find("<ports>").unwrap()];
        assert_eq!(
            split(inside).err().unwrap().to_string(),
            "incomplete scan: the file ends inside host 1 (nmap was stopped or the file was cut short)"
        );
    }

    #[test]
    fn timing_does_not_change_the_fingerprint_but_content_does() {
        let a = br#"<host starttime="1" endtime="2"><status state="up"/><times srtt="5" rttvar="1" to="100"/></host>"#;
        let b = br#"<host starttime="7" endtime="9"><status state="up"/><times srtt="8" rttvar="3" to="200"/></host>"#;
        let c =
            br#"<host starttime="7" endtime="9"><status state="down"/><times srtt="8" rttvar="3" to="200"/></host>"#;
        assert_eq!(fingerprint(a), fingerprint(b));
        assert_ne!(fingerprint(a), fingerprint(c));
    }

    #[test]
    fn only_changed_hosts_are_parsed() {
        let before = SCAN.to_owned();
        let after = SCAN.replace("OpenSSH", "Dropbear");
        let (a, b) = (split(before.as_bytes()).unwrap(), split(after.as_bytes()).unwrap());
        let (earlier, later) = changed_hosts(&a, &b).unwrap();
        assert_eq!((earlier.len(), later.len()), (1, 1));
        assert_eq!(earlier[0].primary_address(), later[0].primary_address());
    }

    #[test]
    fn a_malformed_host_is_rejected_even_when_both_files_hold_it() {
        let broken = SCAN.replacen(r#"state="open""#, r#"state="open" state="open""#, 1);
        let error = split(broken.as_bytes()).err().unwrap();
        let ScanError::Malformed { offset, message } = &error else { panic!("{error}") };
        let at = usize::try_from(*offset).unwrap();
        assert!(broken[at..].starts_with("<state"), "the offset points at the element: {}", &broken[at..at + 20]);
        assert!(message.contains("`state` is given twice"), "{message}");
        let unclosed = SCAN.replacen("</ports>", "</port>", 1);
        assert!(matches!(split(unclosed.as_bytes()), Err(ScanError::Malformed { .. })));
    }
}
