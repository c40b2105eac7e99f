//! A scan file cut into the raw bytes of each `<host>` element, for comparing two scans
//! without parsing the hosts that did not change. Pure: works on bytes in memory.

use std::collections::{HashMap, HashSet};

/// A set hashed with foldhash: the keys are a scan's own bytes, hashed by the hundred thousand.
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use memchr::memmem;

use super::model::{Host, RunInfo, RunStats};
use super::parse::{Markup, ScanError, ScanReader, check_element};
use super::xml::{tag_end, values_of};

/// A scan file split into its hosts' raw XML and the document around them.
pub struct Chunks<'a> {
    /// The whole file.
    file: &'a [u8],
    /// Each `<host>...</host>`, in file order; checked by [`changed_hosts`], not yet here.
    pub hosts: Vec<&'a [u8]>,
    /// Each host cut into [`Parts`], with the key its twin is looked for by.
    parts: Vec<(u64, Parts<'a>)>,
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
/// [`super::parse::read_scan`] rejects it. The hosts are checked by [`changed_hosts`]; each
/// is cut into its [`Parts`] here, as it is found (its bytes are still in the cache).
pub fn split(bytes: &[u8]) -> Result<Chunks<'_>, ScanError> {
    let open = memmem::Finder::new(b"<host");
    let close = memmem::Finder::new(b"</host>");
    let finders = Finders::new();
    let (mut hosts, mut cut) = (Vec::new(), Vec::new());
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
        let host = &bytes[start..end];
        let parts = parts(host, &finders);
        cut.push((parts.key(), parts));
        hosts.push(host);
        at = end;
    }
    rest.extend_from_slice(&bytes[at..]);
    let reader = ScanReader::new(rest.as_slice())?;
    let info = reader.info().clone();
    let stats = reader.finish()?;
    Ok(Chunks { file: bytes, hosts, parts: cut, info, stats })
}

/// Elements nmap writes anew on every scan of a host that did not change, and that the
/// comparison does not read (`<times>` it reads and does not compare): the round-trip times,
/// OS detection's uptime guess, distance, sequence probes, fingerprint and the ports it
/// used, and the traceroute with its hops. Other elements the comparison ignores (`<cpe>`,
/// `<osclass>`, a script's `<elem>`) stay: nmap writes them the same on every scan.
const VOLATILE_ELEMENTS: [&[u8]; 10] = [
    b"times",
    b"uptime",
    b"distance",
    b"tcpsequence",
    b"ipidsequence",
    b"tcptssequence",
    b"osfingerprint",
    b"portused",
    b"trace",
    b"hop",
];

/// The searches [`parts`] makes in every host, built once.
struct Finders {
    service_fingerprint: memmem::Finder<'static>,
    ports_end: memmem::FinderRev<'static>,
    address: memmem::Finder<'static>,
}

impl Finders {
    fn new() -> Self {
        Self {
            service_fingerprint: memmem::Finder::new(b" servicefp="),
            ports_end: memmem::FinderRev::new(b"</ports>"),
            address: memmem::Finder::new(b"<address"),
        }
    }
}

/// A host element and the spans of it that change on every scan of a host that did not
/// change (in file order, apart): the start tag's `starttime` and `endtime` values, each
/// `<service>`'s `servicefp` value (it holds the date), and the [`VOLATILE_ELEMENTS`]. A span
/// is only cut out where it is well-formed by itself, so a host whose other parts are the
/// same bytes as a well-formed twin's is well-formed too, and parses to the same host but
/// for its times. That holds where every `<` starts a tag: a host holding a comment, CDATA or a
/// processing instruction (nmap writes none) may be cut where a span found inside one is not
/// markup, so [`changed_hosts`] parses it and its twin after all.
struct Parts<'a> {
    host: &'a [u8],
    /// The host's identity as its bytes say it (see [`addresses`]).
    addresses: &'a [u8],
    /// A hash of it. Two hosts whose different addresses hash alike both count as listed
    /// twice: parsed, never wrongly paired.
    identity: u64,
    volatile: Vec<std::ops::Range<usize>>,
}

/// A hash of the bytes of `parts`, one after another (the same in every run).
fn hash(parts: impl IntoIterator<Item = impl AsRef<[u8]>>) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0).build_hasher();
    parts.into_iter().for_each(|part| hasher.write(part.as_ref()));
    hasher.finish()
}

/// Cuts `host` into [`Parts`].
fn parts<'a>(host: &'a [u8], finders: &Finders) -> Parts<'a> {
    let (mut volatile, addresses) = (Vec::new(), addresses(host, &finders.address));
    let identity = hash([addresses]);
    let Some(start_tag) = tag_end(host) else { return Parts { host, addresses, identity, volatile } };
    let values = |tag: std::ops::Range<usize>, names: &[&str], volatile: &mut Vec<std::ops::Range<usize>>| {
        let found = volatile.len();
        let start = tag.start;
        if !values_of(&host[tag], names, |value| volatile.push(start + value.start..start + value.end)) {
            volatile.truncate(found);
        }
    };
    values(0..start_tag + 1, &["starttime", "endtime"], &mut volatile);
    let body = start_tag + 1;
    // nmap writes the ports first, then what OS detection and traceroute found.
    let tail = finders.ports_end.rfind(&host[body..]).map_or(body, |end| body + end);
    let mut at = body;
    while let Some(found) = finders.service_fingerprint.find(&host[at..tail]) {
        let name = at + found + 1;
        at = name + 1;
        let Some(start) = memchr::memrchr(b'<', &host[..name]) else { continue };
        let Some(end) = tag_end(&host[start..]).map(|end| start + end) else { continue };
        if host[start..].starts_with(b"<service") && host[start + 8].is_ascii_whitespace() && name < end {
            values(start..end + 1, &["servicefp"], &mut volatile);
            at = end;
        }
    }
    let mut at = tail;
    while let Some(found) = memchr::memchr(b'<', &host[at..]) {
        let start = at + found;
        at = start + 1;
        if let Some(end) = volatile_element(&host[start..]) {
            volatile.push(start..start + end);
            at = start + end;
        }
    }
    Parts { host, addresses, identity, volatile }
}

/// The length of the volatile element `element` starts with, when it is one of
/// [`VOLATILE_ELEMENTS`], holds only those, and is well-formed by itself.
fn volatile_element(element: &[u8]) -> Option<usize> {
    fn name_of(tag: &[u8]) -> &[u8] {
        let name = tag.iter().position(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>')).unwrap_or(tag.len());
        &tag[..name]
    }
    let volatile = |tag: &[u8]| VOLATILE_ELEMENTS.contains(&name_of(tag));
    if !volatile(&element[1..]) {
        return None;
    }
    let end = tag_end(element)?;
    let length = if element[end - 1] == b'/' {
        end + 1
    } else {
        let close = [b"</", name_of(&element[1..]), b">"].concat();
        end + memmem::find(&element[end..], &close)? + close.len()
    };
    let span = &element[..length];
    let inner_only_volatile = memchr::memchr_iter(b'<', span).all(|at| {
        let tag = &span[at + 1..];
        volatile(tag.strip_prefix(b"/").unwrap_or(tag))
    });
    (inner_only_volatile && check_element(span, 0).is_ok()).then_some(length)
}

impl<'a> Parts<'a> {
    /// What an unchanged host keeps from one scan to the next: the host between its spans.
    fn kept(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let starts = std::iter::once(0).chain(self.volatile.iter().map(|span| span.end));
        let ends = self.volatile.iter().map(|span| span.start).chain(std::iter::once(self.host.len()));
        starts.zip(ends).map(|(start, end)| &self.host[start..end])
    }

    /// Where its twin is looked for: a hash of its addresses, which its twin shares (they are
    /// among what it keeps; [`Parts::same_as`] compares the rest), or, for a host without
    /// any, of all it keeps. One hash over a few bytes per host, not over the file.
    fn key(&self) -> u64 {
        if self.addresses.is_empty() { hash(self.kept()) } else { self.identity }
    }

    /// Whether the other host is this one but for what changes on every scan.
    fn same_as(&self, other: &Parts<'_>) -> bool {
        self.volatile.len() == other.volatile.len() && self.kept().eq(other.kept())
    }
}

/// The hosts of `before` and `after` whose elements differ (pairs the same but for what
/// changes on every scan, see [`Parts`], are left out), parsed, after checking every byte of
/// both files for well-formedness. A host listed more than once in either file is always
/// parsed, every entry of it in both files: its entries pair in file order, as ndiff pairs
/// them, not by content.
/// A host the same in both files is checked once: in full in the earlier file; in the later
/// one, the spans it does not share with its twin were checked as they were cut out (the
/// rest is the same bytes, in the same place). The checks run on two threads. An error says
/// which scan it is in (`true`: the later one); an error in the earlier scan is reported
/// first.
pub fn changed_hosts<'a>(before: &Chunks<'a>, after: &Chunks<'a>) -> Result<(Vec<Host>, Vec<Host>), (bool, ScanError)> {
    let (earlier, later) = (&before.parts, &after.parts);
    // Both threads check the earlier file, a batch of hosts at a time, this one after it has
    // paired the hosts; then both parse the changed hosts of both files. A check gives the
    // hosts that hold more than elements and text (see [`Parts`]).
    let next = AtomicUsize::new(0);
    let check_batches = || -> Result<Vec<usize>, (usize, ScanError)> {
        let mut declarations = Vec::new();
        loop {
            let start = next.fetch_add(CHECK_BATCH, Ordering::Relaxed).min(before.hosts.len());
            let batch = &before.hosts[start..(start + CHECK_BATCH).min(before.hosts.len())];
            if batch.is_empty() {
                return Ok(declarations);
            }
            for (index, host) in (start..).zip(batch) {
                if check_element(host, before.offset(host)).map_err(|e| (index, e))? == Markup::Declarations {
                    declarations.push(index);
                }
            }
        }
    };
    // Then the changed hosts of both files, shared the same way; each is checked as it is
    // parsed, in the same pass.
    let next_parse = AtomicUsize::new(0);
    let parse_batches = |jobs: &[(bool, usize)]| {
        let mut parsed = Vec::new();
        loop {
            let start = next_parse.fetch_add(PARSE_BATCH, Ordering::Relaxed).min(jobs.len());
            let batch = &jobs[start..(start + PARSE_BATCH).min(jobs.len())];
            if batch.is_empty() {
                return parsed;
            }
            for &(in_later, index) in batch {
                let chunks = if in_later { after } else { before };
                let host = chunks.hosts[index];
                parsed.push((in_later, index, ScanReader::host_element(host, chunks.offset(host))));
            }
        }
    };
    let (send, receive) = std::sync::mpsc::channel::<Vec<(bool, usize)>>();
    let (pairing, (checked, mut parsed), (other_checked, other_parsed)) = std::thread::scope(|scope| {
        let (check_batches, parse_batches) = (&check_batches, &parse_batches);
        let other = scope.spawn(move || {
            let checked = check_batches();
            (checked, parse_batches(&receive.recv().unwrap_or_default()))
        });
        let pairing = pair(earlier, later);
        let jobs = changed_jobs(&pairing.changed_before, &pairing.changed_after);
        // The other thread waits for it before it ends.
        let _ = send.send(jobs.clone());
        let mine = (check_batches(), parse_batches(&jobs));
        let failed = || (Err((0, ScanError::Io("a checking thread failed".into()))), Vec::new());
        (pairing, mine, other.join().unwrap_or_else(|_| failed()))
    });
    // The earlier file's first fault, then the changed hosts' in each file.
    let mut declarations = match (checked, other_checked) {
        (Err(a), Err(b)) => return Err((false, if a.0 <= b.0 { a.1 } else { b.1 })),
        (Err((_, error)), _) | (_, Err((_, error))) => return Err((false, error)),
        (Ok(mine), Ok(other)) => [mine, other].concat(),
    };
    declarations.sort_unstable();
    parsed.extend(other_parsed);
    let twins: Vec<(usize, usize)> =
        pairing.twins.into_iter().filter(|(earlier, _)| declarations.binary_search(earlier).is_ok()).collect();
    if twins.is_empty() {
        return in_file_order(parsed);
    }
    // A host holding a comment, CDATA or a processing instruction, and its twin: parsed too.
    let (mut changed_before, mut changed_after) = (pairing.changed_before, pairing.changed_after);
    for (earlier, later) in twins {
        changed_before.push(earlier);
        changed_after.push(later);
    }
    next_parse.store(0, Ordering::Relaxed);
    in_file_order(parse_batches(&changed_jobs(&changed_before, &changed_after)))
}

/// The changed hosts of both files as parse jobs: `(in the later file, index)`.
fn changed_jobs(before: &[usize], after: &[usize]) -> Vec<(bool, usize)> {
    before.iter().map(|&i| (false, i)).chain(after.iter().map(|&i| (true, i))).collect()
}

/// Hosts parsed in any order, in their files' order; or the first fault, the earlier
/// file's first.
fn in_file_order(
    mut parsed: Vec<(bool, usize, Result<Host, ScanError>)>,
) -> Result<(Vec<Host>, Vec<Host>), (bool, ScanError)> {
    parsed.sort_unstable_by_key(|&(in_later, index, _)| (in_later, index));
    let (mut earlier, mut later) = (Vec::new(), Vec::new());
    for (in_later, _, host) in parsed {
        let host = host.map_err(|e| (in_later, e))?;
        if in_later { later.push(host) } else { earlier.push(host) }
    }
    Ok((earlier, later))
}

/// How many changed hosts a parsing thread takes at a time.
const PARSE_BATCH: usize = 16;

/// How many hosts a checking thread takes at a time.
const CHECK_BATCH: usize = 256;

/// Which hosts of two files are twins (see [`Parts`]) and which changed, by index.
struct Pairing {
    /// The earlier file's hosts without a twin, in file order.
    changed_before: Vec<usize>,
    /// The later file's, in file order.
    changed_after: Vec<usize>,
    /// The twins: a host of the earlier file, and of the later.
    twins: Vec<(usize, usize)>,
}

/// Pairs each host of the later file with a twin in the earlier one.
fn pair(earlier: &[(u64, Parts<'_>)], later: &[(u64, Parts<'_>)]) -> Pairing {
    let repeated = listed_twice(earlier, later);
    // The earlier file's hosts by key: the first of each key, and after each the next with
    // its key (`NONE` ends), in file order.
    const NONE: usize = usize::MAX;
    let mut first: HashMap<u64, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(earlier.len(), Default::default());
    let mut next = vec![NONE; earlier.len()];
    for (index, (key, _)) in earlier.iter().enumerate().rev() {
        if let Some(following) = first.insert(*key, index) {
            next[index] = following;
        }
    }
    let mut taken = vec![false; earlier.len()];
    let (mut changed_after, mut twins) = (Vec::new(), Vec::with_capacity(later.len()));
    for (index, (key, host)) in later.iter().enumerate() {
        let mut candidate = first.get(key).copied().filter(|_| !repeated.contains(&host.identity)).unwrap_or(NONE);
        while candidate != NONE && (taken[candidate] || !earlier[candidate].1.same_as(host)) {
            candidate = next[candidate];
        }
        if candidate == NONE {
            changed_after.push(index);
        } else {
            taken[candidate] = true;
            twins.push((candidate, index));
        }
    }
    let changed_before = (0..earlier.len()).filter(|&index| !taken[index]).collect();
    Pairing { changed_before, changed_after, twins }
}

/// The identities of the hosts listed more than once in either file (see [`addresses`]).
fn listed_twice(earlier: &[(u64, Parts<'_>)], later: &[(u64, Parts<'_>)]) -> FastSet<u64> {
    let mut repeated = FastSet::default();
    for file in [earlier, later] {
        let mut seen = FastSet::with_capacity_and_hasher(file.len(), Default::default());
        for (_, host) in file {
            if !seen.insert(host.identity) {
                repeated.insert(host.identity);
            }
        }
    }
    repeated
}

/// A host's identity as its bytes say it: its `<address>` elements, which nmap writes
/// together after `<status>`; empty when it has none.
fn addresses<'a>(host: &'a [u8], finder: &memmem::Finder<'_>) -> &'a [u8] {
    let Some(first) = finder.find(host) else { return &[] };
    let mut end = first;
    while host[end..].starts_with(b"<address") {
        let Some(close) = memchr::memchr(b'>', &host[end..]) else { break };
        end += close + 1;
        while host.get(end).is_some_and(u8::is_ascii_whitespace) {
            end += 1;
        }
    }
    host[first..end].trim_ascii_end()
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
    fn timing_does_not_make_a_host_differ_but_content_does() {
        let a = br#"<host starttime="1" endtime="2"><status state="up"/><times srtt="5" rttvar="1" to="100"/></host>"#;
        let b = br#"<host starttime="7" endtime="9"><status state="up"/><times srtt="8" rttvar="3" to="200"/></host>"#;
        let c =
            br#"<host starttime="7" endtime="9"><status state="down"/><times srtt="8" rttvar="3" to="200"/></host>"#;
        let finders = Finders::new();
        let (a, b, c) = (parts(a, &finders), parts(b, &finders), parts(c, &finders));
        assert!(a.same_as(&b) && a.key() == b.key());
        assert!(!a.same_as(&c));
        // Without addresses, the key is what the host keeps.
        assert_ne!(a.key(), c.key());
        let (x, y) =
            (r#"<address addr="127.0.0.1" addrtype="ipv4"/>"#, r#"<address addr="127.0.0.2" addrtype="ipv4"/>"#);
        let with = |address: &str, state: &str| format!(r#"<host><status state="{state}"/>{address}</host>"#);
        let hosts = [with(x, "up"), with(x, "down"), with(y, "up")].map(|h| parts(h.as_bytes(), &finders).key());
        assert_eq!(hosts[0], hosts[1], "the same host, changed: one key, compared in full");
        assert_ne!(hosts[0], hosts[2]);
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
    fn a_host_holding_a_comment_is_parsed_with_its_twin() {
        // What looks like a volatile element, inside a comment: `--` in its attribute is
        // well-formed markup, and not allowed in a comment.
        let with = |uptime: &str| SCAN.replacen("<times ", &format!("<!-- {uptime} --><times "), 1);
        let before = with(r#"<uptime seconds="1"/>"#);
        let earlier = split(before.as_bytes()).unwrap();
        let broken = with(r#"<uptime seconds="a--b"/>"#);
        let (in_later, error) = changed_hosts(&earlier, &split(broken.as_bytes()).unwrap()).unwrap_err();
        assert!(in_later && error.to_string().contains("a comment holds `--`"), "{error}");
        let other = with(r#"<uptime seconds="2"/>"#);
        let (a, b) = changed_hosts(&earlier, &split(other.as_bytes()).unwrap()).unwrap();
        assert_eq!((a.len(), b.len()), (1, 1));
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
