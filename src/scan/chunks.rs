//! A scan file cut into the raw bytes of each `<host>` element, for comparing two scans
//! without parsing the hosts that did not change. Pure: works on bytes in memory.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use memchr::memmem;

use super::model::{Host, RunInfo, RunStats};
use super::parse::{ScanError, ScanReader, check_element, check_tag};

/// A scan file split into its hosts' raw XML and the document around them.
pub struct Chunks<'a> {
    /// The whole file.
    file: &'a [u8],
    /// Each `<host>...</host>`, in file order; checked by [`changed_hosts`], not yet here.
    pub hosts: Vec<&'a [u8]>,
    /// Run information and statistics, read (strictly) from the document without its hosts.
    pub info: RunInfo,
    /// How the scan ended.
    pub stats: RunStats,
}

impl Chunks<'_> {
    /// Where `part` (a slice of the file) starts in the file.
    fn offset(&self, part: &[u8]) -> u64 {
        (part.as_ptr() as usize - self.file.as_ptr() as usize) as u64
    }
}

/// Splits `bytes` into host elements and checks the rest of the document with the full
/// parser: a scan that did not finish, or malformed outside its hosts, is rejected exactly as
/// [`super::parse::read_scan`] rejects it. The hosts are checked by [`changed_hosts`].
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
        rest.extend_from_slice(&bytes[at..start]);
        hosts.push(&bytes[start..end]);
        at = end;
    }
    rest.extend_from_slice(&bytes[at..]);
    let reader = ScanReader::new(rest.as_slice())?;
    let info = reader.info().clone();
    let stats = reader.finish()?;
    Ok(Chunks { file: bytes, hosts, info, stats })
}

/// A host element without what changes on every scan of an unchanged host: its start tag
/// (start and end times), the part before `<times>`, the `<times>` element, the part after.
struct Parts<'a> {
    start_tag: &'a [u8],
    before_times: &'a [u8],
    times: &'a [u8],
    after_times: &'a [u8],
}

fn parts<'a>(host: &'a [u8], times: &memmem::Finder<'_>) -> Parts<'a> {
    let tag_end = memchr::memchr(b'>', host).map_or(0, |end| end + 1);
    let (start_tag, body) = host.split_at(tag_end);
    match times.find(body) {
        Some(start) => {
            let end = memchr::memchr(b'>', &body[start..]).map_or(body.len(), |e| start + e + 1);
            Parts { start_tag, before_times: &body[..start], times: &body[start..end], after_times: &body[end..] }
        }
        None => Parts { start_tag, before_times: body, times: &[], after_times: &[] },
    }
}

impl Parts<'_> {
    /// A fingerprint of what an unchanged host keeps from one scan to the next.
    fn fingerprint(&self) -> u64 {
        let mut hasher = foldhash::fast::FixedState::with_seed(0).build_hasher();
        hasher.write(self.before_times);
        hasher.write(self.after_times);
        hasher.finish()
    }

    /// Whether the other host is this one, its times aside.
    fn same_as(&self, other: &Parts<'_>) -> bool {
        self.before_times == other.before_times && self.after_times == other.after_times
    }
}

/// A fingerprint of a host element without what changes on every scan of an unchanged
/// host: the start tag (start and end times) and the `<times>` element.
pub fn fingerprint(host: &[u8]) -> u64 {
    parts(host, &memmem::Finder::new(b"<times ")).fingerprint()
}

/// The hosts of `before` and `after` whose elements differ (pairs identical apart from their
/// times are left out), parsed, after checking every byte of both files for well-formedness.
/// A host listed more than once in either file is always parsed, every entry of it in both
/// files: its entries pair in file order, as ndiff pairs them, not by content.
/// A host identical in both files is checked once: in full in the earlier file, and in the
/// later one only its start tag and `<times>` (the rest is the same bytes, in the same
/// place). The checks run on two threads. An error says which scan it is in (`true`: the
/// later one); an error in the earlier scan is reported first.
pub fn changed_hosts<'a>(before: &Chunks<'a>, after: &Chunks<'a>) -> Result<(Vec<Host>, Vec<Host>), (bool, ScanError)> {
    let times = memmem::Finder::new(b"<times ");
    let fingerprinted = |chunks: &Chunks<'a>| -> Vec<(u64, Parts<'a>)> {
        chunks.hosts.iter().map(|host| parts(host, &times)).map(|p| (p.fingerprint(), p)).collect()
    };
    let (earlier, later) = std::thread::scope(|scope| {
        let later = scope.spawn(|| fingerprinted(after));
        (fingerprinted(before), later.join().expect("the fingerprinting thread does not panic"))
    });
    let repeated = listed_twice(&earlier, &later);
    let mut unpaired: HashMap<u64, Vec<usize>> = HashMap::with_capacity(earlier.len());
    for (index, (fingerprint, _)) in earlier.iter().enumerate() {
        unpaired.entry(*fingerprint).or_default().push(index);
    }
    let (mut same, mut changed_after) = (Vec::new(), Vec::new());
    for (index, (fingerprint, host)) in later.iter().enumerate() {
        if repeated.contains(addresses(host)) {
            changed_after.push(index);
            continue;
        }
        let twin = unpaired.get_mut(fingerprint).and_then(|candidates| {
            let found = candidates.iter().position(|&i| earlier[i].1.same_as(host))?;
            Some(candidates.swap_remove(found))
        });
        match twin {
            Some(_) => same.push(index),
            None => changed_after.push(index),
        }
    }
    let mut changed_before: Vec<usize> = unpaired.into_values().flatten().collect();
    changed_before.sort_unstable();

    // Every host of the earlier file in full; the later file's changed hosts in full, and the
    // start tag and times of its others. Half of the earlier file's hosts on each thread.
    let half = before.hosts.len() / 2;
    let check_before = |range: std::ops::Range<usize>| -> Result<(), ScanError> {
        before.hosts[range].iter().try_for_each(|host| check_element(host, before.offset(host)))
    };
    let check_after = || -> Result<(), ScanError> {
        for &index in &changed_after {
            let host = after.hosts[index];
            check_element(host, after.offset(host))?;
        }
        for &index in &same {
            let host = after.hosts[index];
            check_times_and_tag(host, &later[index].1, after.offset(host))?;
        }
        Ok(())
    };
    let (first, second, later) = std::thread::scope(|scope| {
        let other = scope.spawn(|| (check_before(half..before.hosts.len()), check_after()));
        let first = check_before(0..half);
        let (second, later) = other.join().unwrap_or_else(|_| {
            let failed = || Err(ScanError::Io("a checking thread failed".into()));
            (failed(), failed())
        });
        (first, second, later)
    });
    first.and(second).map_err(|e| (false, e))?;
    later.map_err(|e| (true, e))?;

    let parse_all = |chunks: &Chunks<'_>, indexes: &[usize], in_later: bool| {
        indexes.iter().map(|&i| parse_host(chunks.hosts[i]).map_err(|e| (in_later, e))).collect::<Result<Vec<_>, _>>()
    };
    // The changed hosts of each file on a thread of their own.
    let (earlier, later) = std::thread::scope(|scope| {
        let later = scope.spawn(|| parse_all(after, &changed_after, true));
        let earlier = parse_all(before, &changed_before, false);
        (earlier, later.join().unwrap_or_else(|_| Err((true, ScanError::Io("a parsing thread failed".into())))))
    });
    Ok((earlier?, later?))
}

/// The addresses of the hosts listed more than once in either file (see [`addresses`]).
fn listed_twice<'a>(earlier: &[(u64, Parts<'a>)], later: &[(u64, Parts<'a>)]) -> HashSet<&'a [u8]> {
    let mut repeated = HashSet::new();
    for file in [earlier, later] {
        let mut seen = HashSet::with_capacity(file.len());
        for (_, host) in file {
            let key = addresses(host);
            if !seen.insert(key) {
                repeated.insert(key);
            }
        }
    }
    repeated
}

/// A host's identity as its bytes say it: from its first `<address` to the end of its last
/// one (nmap writes them together, after `<status>`); empty when it has none.
fn addresses<'a>(host: &Parts<'a>) -> &'a [u8] {
    let body = host.before_times;
    let Some(first) = memmem::find(body, b"<address") else { return &[] };
    let last = memmem::rfind(body, b"<address").unwrap_or(first);
    let end = memchr::memchr(b'>', &body[last..]).map_or(body.len(), |e| last + e + 1);
    &body[first..end]
}

/// Checks the parts of a host element that differ from its twin in the other file: the start
/// tag and the `<times>` element. Anything unusual about them (markup inside either) gets the
/// whole element checked instead.
fn check_times_and_tag(host: &[u8], parts: &Parts<'_>, offset: u64) -> Result<(), ScanError> {
    let plain = |part: &[u8]| memchr::memchr(b'<', &part[1..]).is_none() && memmem::find(part, b"--").is_none();
    let simple = parts.start_tag.len() > 1
        && plain(parts.start_tag)
        && (parts.times.is_empty() || (plain(parts.times) && parts.times.ends_with(b"/>")));
    let quick = simple
        && check_tag(parts.start_tag, offset).is_ok()
        && (parts.times.is_empty() || check_tag(parts.times, offset).is_ok());
    if quick { Ok(()) } else { check_element(host, offset) }
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
    fn a_host_listed_twice_is_parsed_in_both_files_whatever_its_entries_hold() {
        let chunks = split(SCAN.as_bytes()).unwrap();
        let host =
            chunks.hosts.iter().map(|h| std::str::from_utf8(h).unwrap()).find(|h| h.contains("OpenSSH")).unwrap();
        let other = host.replace("OpenSSH", "Dropbear");
        // The same two entries, swapped: ndiff pairs them in file order and finds two changes.
        let before = SCAN.replacen(host, &format!("{host}\n{other}"), 1);
        let after = SCAN.replacen(host, &format!("{other}\n{host}"), 1);
        let (a, b) = (split(before.as_bytes()).unwrap(), split(after.as_bytes()).unwrap());
        let (earlier, later) = changed_hosts(&a, &b).unwrap();
        assert_eq!((earlier.len(), later.len()), (2, 2));
        assert!(earlier.iter().chain(&later).all(|h| h.primary_address() == earlier[0].primary_address()));
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
        let chunks = split(broken.as_bytes()).unwrap();
        let (in_later, error) = changed_hosts(&chunks, &chunks).err().unwrap();
        assert!(!in_later, "the earlier file's error comes first");
        let ScanError::Malformed { offset, message } = &error else { panic!("{error}") };
        let at = usize::try_from(*offset).unwrap();
        assert!(broken[at..].starts_with("<state"), "the offset points at the element: {}", &broken[at..at + 20]);
        assert!(message.contains("`state` is given twice"), "{message}");
        let unclosed = SCAN.replacen("</ports>", "</port>", 1);
        let chunks = split(unclosed.as_bytes()).unwrap();
        assert!(matches!(changed_hosts(&chunks, &chunks), Err((false, ScanError::Malformed { .. }))));
    }

    #[test]
    fn the_parts_a_twin_does_not_share_are_checked_in_the_later_file() {
        let good = split(SCAN.as_bytes()).unwrap();
        let start = SCAN.find("<host ").unwrap();
        let tag = &SCAN[start..start + SCAN[start..].find('>').unwrap()];
        let cases = [
            SCAN.replacen(tag, &format!("{tag} starttime=\"1\""), 1),
            SCAN.replacen("<times ", "<times srtt=\"1\" ", 1),
            SCAN.replacen("<times ", "<times bogus=\"&bogus;\" ", 1),
        ];
        for broken in &cases {
            let later = split(broken.as_bytes()).unwrap();
            let (in_later, error) = changed_hosts(&good, &later).err().unwrap_or_else(|| panic!("accepted:\n{broken}"));
            assert!(in_later, "{error}");
            assert!(matches!(error, ScanError::Malformed { .. }), "{error}");
        }
        let retimed = SCAN.replacen("<times srtt=\"", "<times srtt=\"9", 1);
        let later = split(retimed.as_bytes()).unwrap();
        assert_eq!(changed_hosts(&good, &later).unwrap(), (vec![], vec![]), "only the times changed");
    }
}
