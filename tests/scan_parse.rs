//! The nmap XML parser on a real scan: it never panics, and no cut-short file passes.

mod support;

use proptest::prelude::*;
use seclab::scan::chunks;
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
            Err(
                ScanError::Incomplete(_)
                | ScanError::NotNmap(_)
                | ScanError::Malformed { .. }
                | ScanError::Invalid { .. },
            ) => {}
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

/// Whether strict XML parsing (roxmltree, with nmap's `<!DOCTYPE nmaprun>` allowed) accepts
/// `text`.
fn strictly_well_formed(text: &str) -> bool {
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
    roxmltree::Document::parse_with_options(text, options).is_ok()
}

/// The ways an attribute can be broken that XML (expat, roxmltree) rejects, and some it allows.
const ATTRIBUTE_MUTATIONS: [&str; 8] =
    ["duplicate", "no value", "unquoted", "less-than", "undefined entity", "known entity", "char ref", "quote kind"];

/// `text` with the attribute starting at `at` (its name) mutated as `mutation` says.
fn mutate_attribute(text: &str, at: usize, mutation: &str) -> Option<String> {
    let rest = &text[at..];
    let eq = rest.find("=\"")?;
    let name = &rest[..eq];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return None;
    }
    let value_end = eq + 2 + rest[eq + 2..].find('"')?;
    let value = &rest[eq + 2..value_end];
    let whole = &rest[..=value_end];
    let replaced = match mutation {
        "duplicate" => format!("{whole} {whole}"),
        "no value" => name.to_owned(),
        "unquoted" if !value.is_empty() && !value.contains([' ', '>', '/']) => format!("{name}={value}"),
        "less-than" => format!("{name}=\"<{value}\""),
        "undefined entity" => format!("{name}=\"{value}&bogus;\""),
        "known entity" => format!("{name}=\"{value}&amp;\""),
        "char ref" => format!("{name}=\"{value}&#65;\""),
        "quote kind" if !value.contains('\'') => format!("{name}='{value}'"),
        _ => return None,
    };
    Some(format!("{}{replaced}{}", &text[..at], &rest[value_end + 1..]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// An attribute of the real scan broken in one of the ways above: when strict XML
    /// rejects the file, so does seclab, both reading it and comparing it with itself (where
    /// the host is the same in both files and is not parsed).
    #[test]
    fn seclab_rejects_what_strict_xml_rejects(pick in 0usize..10_000, mutation in 0..ATTRIBUTE_MUTATIONS.len()) {
        // Attributes of elements: not the XML declaration (roxmltree lets values pass there that
        // XML forbids, and seclab rejects: a unit test covers it), nor the pseudo-attributes of
        // the stylesheet instruction, whose content XML leaves free (expat does not read it).
        let stylesheet = 0..SCAN.find("<nmaprun").unwrap();
        let starts: Vec<usize> = SCAN.match_indices("=\"").filter(|(i, _)| !stylesheet.contains(i)).filter_map(|(i, _)| {
            SCAN[..i].rfind([' ', '\n']).map(|space| space + 1)
        }).collect();
        let at = starts[pick % starts.len()];
        let Some(mutated) = mutate_attribute(SCAN, at, ATTRIBUTE_MUTATIONS[mutation]) else { return Ok(()) };
        // roxmltree lets an undeclared entity pass once a DOCTYPE is there; expat (nmap's and
        // ndiff's reader) rejects it, as XML's "entity declared" rule says for this DOCTYPE.
        let strict = strictly_well_formed(&mutated) && ATTRIBUTE_MUTATIONS[mutation] != "undefined entity";
        let read = read_scan(mutated.as_bytes());
        // Compared with itself: every host is the same in both files.
        let split = seclab::scan::chunks::split(mutated.as_bytes())
            .and_then(|chunks| seclab::scan::chunks::changed_hosts(&chunks, &chunks).map(drop).map_err(|(_, e)| e));
        // Compared as the later file with the original: a host whose bytes changed only in its
        // start tag or `<times>` is checked there only.
        let original = seclab::scan::chunks::split(SCAN.as_bytes()).unwrap();
        let later = seclab::scan::chunks::split(mutated.as_bytes())
            .and_then(|chunks| seclab::scan::chunks::changed_hosts(&original, &chunks).map(drop).map_err(|(_, e)| e));
        if !strict {
            prop_assert!(read.is_err(), "read a file strict XML rejects ({})", ATTRIBUTE_MUTATIONS[mutation]);
            prop_assert!(split.is_err(), "compared a file strict XML rejects ({})", ATTRIBUTE_MUTATIONS[mutation]);
            prop_assert!(later.is_err(), "compared with the original a file strict XML rejects ({})", ATTRIBUTE_MUTATIONS[mutation]);
        } else {
            // A value changed may make the scan wrong (an `exit` that is no exit), not malformed.
            let malformed = |r: Option<&ScanError>| matches!(r, Some(ScanError::Malformed { .. }));
            prop_assert!(!malformed(read.as_ref().err()) && !malformed(split.as_ref().err()) && !malformed(later.as_ref().err()), "called well-formed XML malformed ({})", ATTRIBUTE_MUTATIONS[mutation]);
        }
    }
}

/// The malformed cases, as `scan diff FILE FILE` sees them: exit 2 naming the file and the
/// byte, never "no differences".
#[test]
fn a_malformed_scan_compared_with_itself_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let at = SCAN.find("state=\"open\"").unwrap();
    for mutation in ["duplicate", "no value", "unquoted", "less-than", "undefined entity"] {
        let broken = mutate_attribute(SCAN, at, mutation).unwrap();
        let path = dir.path().join("broken.xml");
        std::fs::write(&path, &broken).unwrap();
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("seclab"))
            .args(["scan", "diff"])
            .arg(&path)
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{mutation}: {stderr}");
        assert!(stderr.contains("broken.xml") && stderr.contains("malformed XML at byte"), "{mutation}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

/// A scan saved through gzip is named as such (exit 2), by `scan diff` and `scan ingest`.
#[test]
fn a_gzip_compressed_scan_is_named_as_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("scan.xml");
    std::fs::write(&plain, SCAN).unwrap();
    let gzip = std::process::Command::new("gzip").arg("--keep").arg(&plain).status().expect("gzip runs");
    assert!(gzip.success());
    let compressed = dir.path().join("scan.xml.gz");
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("seclab"))
        .args(["scan", "diff"])
        .arg(&compressed)
        .arg(&plain)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("scan.xml.gz") && stderr.contains("gzip-compressed; decompress it first"), "{stderr}");
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("seclab"))
        .args(["--output", "json", "scan", "diff"])
        .arg(&compressed)
        .arg(&plain)
        .output()
        .unwrap();
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = document["error"].as_str().unwrap();
    assert!(error.contains("gzip") && !error.starts_with("error:"), "one `error:`, the key's: {document}");
}

/// Pieces of markup that break a host element, or leave it well-formed, when put in.
const MARKUP: [&str; 16] = [
    "<",
    ">",
    "&",
    "&amp;",
    "&bogus;",
    "&#65;",
    "\"",
    "'",
    "</x>",
    "<x>",
    "<x/>",
    "<!-- c -->",
    "<!-- a--b -->",
    "<![CDATA[ <not> ]]>",
    "<?pi data?>",
    "</ports>",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// A host element of the real scan with markup put in somewhere: seclab's check of a host
    /// it does not parse accepts exactly what strict XML (roxmltree) accepts.
    #[test]
    fn the_host_check_agrees_with_strict_xml(host in 0usize..2, at in 0usize..10_000, piece in 0..MARKUP.len(), replace in 0usize..3) {
        let starts: Vec<usize> = SCAN.match_indices("<host ").map(|(i, _)| i).collect();
        let start = starts[host];
        let end = start + SCAN[start..].find("</host>").unwrap() + "</host>".len();
        let element = &SCAN[start..end];
        // Inside the element: a chunk starts at `<host` and ends at `</host>` (its split finds
        // them there).
        let inside = element.len() - "</host>".len();
        let mut at = 1 + at % (inside - 1);
        while !element.is_char_boundary(at) {
            at -= 1;
        }
        let cut = (at + replace).min(inside);
        let cut = (cut..=inside).find(|c| element.is_char_boundary(*c)).unwrap();
        let mutated = format!("{}{}{}", &element[..at], MARKUP[piece], &element[cut..]);
        let strict = roxmltree::Document::parse(&mutated).is_ok();
        let checked = seclab::scan::parse::check_element(mutated.as_bytes(), 0);
        prop_assert_eq!(checked.is_ok(), strict, "{:?} for\n{}", checked.err(), mutated);
    }
}

/// `SCAN` with `extra` inserted just before its first host's `<address`.
fn inside_first_host(extra: &str) -> String {
    let at = SCAN.find("<address").unwrap();
    format!("{}{extra}{}", &SCAN[..at], &SCAN[at..])
}

#[test]
fn a_100_mb_attribute_is_refused_whole_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.xml"), SCAN).unwrap();
    let huge =
        SCAN.replacen("<address addr=\"", &format!("<address comment=\"{}\" addr=\"", "A".repeat(100_000_000)), 1);
    std::fs::write(dir.path().join("b.xml"), &huge).unwrap();
    match read_scan(huge.as_bytes()) {
        Err(ScanError::Malformed { message, .. }) => {
            assert!(message.contains("`comment` is over 1 MiB long"), "{message}")
        }
        other => panic!("accepted or wrongly refused: {:?}", other.map(|s| s.hosts.len())),
    }
    drop(huge);
    let (_, _, _, baseline) = support::run_measured(dir.path(), &["--version"]);
    let (code, stdout, stderr, kib) = support::run_measured(dir.path(), &["scan", "diff", "a.xml", "b.xml"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.contains("b.xml: malformed XML") && stderr.contains("is over 1 MiB long (nmap writes none that long)"),
        "{stderr}"
    );
    assert!(stderr.len() < 1000, "the value is not echoed: {} bytes", stderr.len());
    // The file is mapped into memory once; nothing holds a second copy.
    assert!(kib < baseline + 200 * 1024, "peak RSS {kib} KiB ({baseline} KiB doing nothing)");
}

#[test]
fn an_address_that_is_not_one_is_refused() {
    let bogus = SCAN.replacen("<address addr=\"127.0.0.1\"", "<address addr=\"127.0.0.999\"", 1);
    match read_scan(bogus.as_bytes()) {
        Err(ScanError::Invalid { message, .. }) => {
            assert!(message.contains("`127.0.0.999` is not an ipv4 address"), "{message}")
        }
        other => panic!("accepted or wrongly refused: {:?}", other.map(|s| s.hosts.len())),
    }
}

#[test]
fn ten_thousand_nested_elements_are_read_without_recursion_and_with_bounded_memory() {
    let deep = |name: &str| format!("{}{}", format!("<{name}>").repeat(10_000), format!("</{name}>").repeat(10_000));
    let cases = [
        ("in-host", inside_first_host(&deep("x"))),
        (
            "script-tables",
            inside_first_host(&format!(
                "<hostscript><script id=\"x\" output=\"y\">{}</script></hostscript>",
                deep("table")
            )),
        ),
        ("outside-hosts", SCAN.replacen("<host ", &format!("{}<host ", deep("x")), 1)),
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.xml"), SCAN).unwrap();
    let (_, _, _, baseline) = support::run_measured(dir.path(), &["--version"]);
    for (name, text) in cases {
        assert_eq!(read_scan(text.as_bytes()).map(|s| s.hosts.len()).ok(), Some(2), "{name}");
        std::fs::write(dir.path().join("b.xml"), &text).unwrap();
        let (code, _, stderr, kib) = support::run_measured(dir.path(), &["scan", "diff", "a.xml", "b.xml"]);
        assert!(code == 0 || code == 3, "{name}: exit {code}: {stderr}");
        assert!(stderr.is_empty(), "{name}: {stderr}");
        assert!(kib < baseline + 64 * 1024, "{name}: peak RSS {kib} KiB ({baseline} KiB doing nothing)");
    }
}

/// A character XML 1.0 forbids, written as a reference (an ESC would drive the reader's
/// terminal from `scan diff`'s output), is refused wherever it is: in an attribute, in text,
/// or in a host a comparison only checks.
#[test]
fn a_reference_to_a_control_character_is_refused() {
    let escape = SCAN.replacen("product=\"OpenSSH\"", "product=\"Open&#x1b;[2JSSH\"", 1);
    let in_text = inside_first_host(
        "<hostscript><script id=\"x\" output=\"y\"><elem key=\"k\">&#7;</elem></script></hostscript>",
    );
    for (name, text) in [("attribute", &escape), ("text", &in_text)] {
        match read_scan(text.as_bytes()) {
            Err(ScanError::Malformed { message, .. }) => {
                assert!(message.contains("refers to a character XML 1.0 forbids"), "{name}: {message}")
            }
            other => panic!("{name}: accepted or wrongly refused: {:?}", other.map(|s| s.hosts.len())),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.xml"), SCAN).unwrap();
    std::fs::write(dir.path().join("b.xml"), &escape).unwrap();
    let (code, stdout, stderr) = support::run(dir.path(), &["scan", "diff", "a.xml", "b.xml"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(stderr.contains("refers to a character XML 1.0 forbids") && !stderr.contains('\u{1b}'), "{stderr}");
}

/// One text of 300 MB is refused, as a 100 MB attribute is.
#[test]
fn a_huge_text_is_refused() {
    let huge = inside_first_host(&format!("<x>{}</x>", "A".repeat(3 << 20)));
    match read_scan(huge.as_bytes()) {
        Err(ScanError::Malformed { message, .. }) => {
            assert!(message.contains("one text is over 1 MiB long"), "{message}")
        }
        other => panic!("accepted or wrongly refused: {:?}", other.map(|s| s.hosts.len())),
    }
}

/// A real `nmap -sV -O --traceroute` scan of a loopback host (an HTTP server, a service nmap
/// does not know, so a `servicefp`, and a closed port), and the same command run again.
const OS_SCAN: &str = include_str!("fixtures/loopback-os.xml");
const OS_SCAN_AGAIN: &str = include_str!("fixtures/loopback-os-again.xml");

/// The first OS scan, and the same host unchanged as a later scan writes it: every part nmap
/// writes anew on each scan (the start tag's times, the service fingerprint's date, the
/// random closed UDP port OS detection used, the OS fingerprint, uptime, TCP sequence and
/// timestamp values, `<times>`) taken from the real second scan, and a traceroute (nmap
/// writes none for loopback) with another round-trip time.
fn rescanned() -> (String, String) {
    let trace = |rtt: &str| {
        format!("<trace port=\"18082\" proto=\"tcp\">\n<hop ttl=\"1\" ipaddr=\"127.0.0.1\" rtt=\"{rtt}\"/>\n</trace>\n")
    };
    let before = OS_SCAN.replacen("<times ", &format!("{}<times ", trace("0.05")), 1);
    let mut after = OS_SCAN.replacen("<times ", &format!("{}<times ", trace("0.09")), 1);
    let lines = ["<host ", "<portused state=\"closed\" proto=\"udp\"", "<osfingerprint ", "<uptime ", "<tcpsequence "];
    for prefix in lines.into_iter().chain(["<tcptssequence ", "<times "]) {
        let line = |scan: &str| scan.lines().find(|l| l.starts_with(prefix)).unwrap().to_owned();
        assert_ne!(line(OS_SCAN), line(OS_SCAN_AGAIN), "{prefix}");
        after = after.replacen(&line(OS_SCAN), &line(OS_SCAN_AGAIN), 1);
    }
    let fingerprint = |scan: &str| {
        let start = scan.find("servicefp=\"").unwrap() + "servicefp=\"".len();
        scan[start..start + scan[start..].find('"').unwrap()].to_owned()
    };
    assert_ne!(fingerprint(OS_SCAN), fingerprint(OS_SCAN_AGAIN));
    after = after.replacen(&fingerprint(OS_SCAN), &fingerprint(OS_SCAN_AGAIN), 1);
    (before, after)
}

/// The hosts `scan diff` parses as changed, counted per file.
fn changed(before: &str, after: &str) -> Result<(usize, usize), ScanError> {
    let (a, b) = (chunks::split(before.as_bytes())?, chunks::split(after.as_bytes())?);
    let (earlier, later) = chunks::changed_hosts(&a, &b).map_err(|(_, e)| e)?;
    Ok((earlier.len(), later.len()))
}

/// A host as the comparison sees it: without its times.
fn untimed(scan: &str) -> seclab::scan::model::Host {
    let mut host = read_scan(scan.as_bytes()).unwrap().hosts.remove(0);
    host.times = None;
    host
}

#[test]
fn a_host_rescanned_unchanged_is_not_parsed_though_nmap_rewrote_its_volatile_parts() {
    let (before, after) = rescanned();
    assert_eq!(changed(&before, &after).unwrap(), (0, 0));
    assert_eq!(untimed(&before), untimed(&after), "the parser agrees: the same host but for its times");
    // The real second scan also changed what the comparison reads: OS match accuracies and
    // order, a script. Parsed.
    assert_eq!(changed(OS_SCAN, OS_SCAN_AGAIN).unwrap(), (1, 1));
    // Next to a volatile part, what the comparison reads still counts: the host's
    // `timedout`, a service's name in the tag that holds the fingerprint, a hop that is an
    // address, an OS match.
    let start = after.find("<host ").unwrap() + "<host ".len();
    let timed_out = format!("{}timedout=\"true\" {}", &after[..start], &after[start..]);
    let renamed = after.replacen("<service name=\"unknown\" servicefp=", "<service name=\"unkn0wn\" servicefp=", 1);
    let hop = after.replacen("<hop ttl=\"1\"", "<address addr=\"127.0.0.9\" addrtype=\"ipv4\"/><hop ttl=\"1\"", 1);
    let os = after.replacen("<uptime ", "<osmatch name=\"Plan 9\" accuracy=\"99\" line=\"1\"/>\n<uptime ", 1);
    for (case, later) in [("timedout", timed_out), ("service", renamed), ("hop", hop), ("os", os)] {
        assert_ne!(untimed(&before), untimed(&later), "{case}");
        assert_eq!(changed(&before, &later).unwrap(), (1, 1), "{case}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// Markup put into the rescanned host, anywhere or where its volatile parts are: the
    /// comparison rejects exactly what strict XML rejects, and a host it leaves unparsed is the
    /// same host to the parser, but for its times.
    #[test]
    fn a_rescanned_host_is_checked_wherever_it_differs_from_its_twin(
        at in 0usize..100_000, piece in 0..MARKUP.len(), replace in 0usize..3, volatile_part in any::<bool>()
    ) {
        let (before, after) = rescanned();
        let host = after.find("<host ").unwrap();
        let end = after.find("</host>").unwrap();
        let from = if volatile_part { after.find("</ports>").unwrap() } else { host + 1 };
        let mut at = from + at % (end - from);
        while !after.is_char_boundary(at) {
            at -= 1;
        }
        let cut = (at + replace).min(end);
        let cut = (cut..=end).find(|c| after.is_char_boundary(*c)).unwrap();
        let mutated = format!("{}{}{}", &after[..at], MARKUP[piece], &after[cut..]);
        let element = &mutated[host..mutated.rfind("</host>").unwrap() + "</host>".len()];
        let strict = roxmltree::Document::parse(element).is_ok();
        match changed(&before, &mutated) {
            Ok(counts) => {
                prop_assert!(strict, "compared a host strict XML rejects:\n{}", element);
                if counts == (0, 0) {
                    prop_assert_eq!(untimed(&before), untimed(&mutated), "left unparsed:\n{}", element);
                }
            }
            Err(error @ ScanError::Malformed { .. }) => prop_assert!(!strict, "{} for\n{}", error, element),
            Err(_) => prop_assert!(strict, "only a well-formed host may be wrong otherwise"),
        }
    }
}

/// A source that hands out its bytes in pieces of the given sizes, in turn: as a pipe or a
/// slow disk would.
struct Pieces<'a> {
    bytes: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()].min(buf.len()).min(self.bytes.len());
        self.turn += 1;
        buf[..size].copy_from_slice(&self.bytes[..size]);
        self.bytes = &self.bytes[size..];
        Ok(size)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The reader holds a window of the file: read in pieces of any size (a character or a
    /// reference cut in two, a tag cut anywhere), the scan reads the same as whole, and a
    /// broken byte is found wherever a piece ends.
    #[test]
    fn a_scan_read_in_pieces_of_any_size_reads_the_same(
        sizes in proptest::collection::vec(1usize..300, 1..8), broken in any::<bool>()
    ) {
        // Characters of two, three and four bytes, and references, in names and text.
        let scan = OS_SCAN.replacen(
            "<hostname name=\"localhost\"",
            "<hostname name=\"h\u{e9}\u{2603}\u{1f600}&amp;&#x263a;\"",
            1,
        ).replacen("</hostnames>", "</hostnames><x>\u{e9}\u{2603}\u{1f600} &lt; &#65;</x>", 1);
        let mut scan = scan.into_bytes();
        if broken {
            // A byte that is no part of UTF-8, inside the snowman's three.
            let snowman = scan.windows(3).position(|w| w == "\u{2603}".as_bytes()).unwrap();
            scan.insert(snowman + 1, 0xff);
        }
        let whole = read_scan(scan.as_slice());
        let source = Pieces { bytes: &scan, sizes, turn: 0 };
        let in_pieces = read_scan(std::io::BufReader::with_capacity(7, source));
        prop_assert_eq!(&in_pieces, &whole);
        prop_assert_eq!(whole.is_ok(), !broken);
        if let Ok(scan) = whole {
            prop_assert_eq!(scan.hosts[0].hostnames[0].name.as_str(), "h\u{e9}\u{2603}\u{1f600}&\u{263a}");
        }
    }
}

/// A changed host is checked as it is parsed: a comment it never closes (it runs to the end
/// of the host) is named as such, in the file that holds it, not taken for a file cut short.
#[test]
fn a_changed_host_is_checked_as_it_is_parsed() {
    let broken = SCAN.replacen("<hostnames>", "<!-- <hostnames>", 1);
    let changed = |before: &str, after: &str| {
        let (a, b) = (chunks::split(before.as_bytes()).unwrap(), chunks::split(after.as_bytes()).unwrap());
        chunks::changed_hosts(&a, &b).map(drop)
    };
    for (before, after, in_later) in [(SCAN, broken.as_str(), true), (broken.as_str(), SCAN, false)] {
        match changed(before, after) {
            Err((later, ScanError::Malformed { message, .. })) => {
                assert_eq!(later, in_later);
                assert!(message.contains("a comment is never closed"), "{message}");
            }
            other => panic!("accepted or wrongly refused: {other:?}"),
        }
    }
}
