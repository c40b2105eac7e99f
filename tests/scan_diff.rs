//! `seclab scan diff` on scans made by the real nmap, checked against the real ndiff.

mod support;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use support::nmap::{Service, free_port, program, scan};
use support::{root, run};

const SSH_OLD: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
const SSH_NEW: &str = "SSH-2.0-OpenSSH_9.3p1 Debian-1\r\n";
const FTP: &str = "220 (vsFTPd 3.0.3)\r\n";

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// Two real scans of loopback hosts that differ in every way ndiff reports.
fn scan_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let (a, b) = (dir.join("a.xml"), dir.join("b.xml"));
    {
        let _ssh = Service::start(loopback(2), p1, SSH_OLD);
        let _ftp = Service::start(loopback(2), p2, FTP);
        let _web = Service::start(loopback(3), p1, FTP);
        scan(&["127.0.0.2", "127.0.0.3", "127.0.0.5"], &[p1, p2, p3], &a);
    }
    {
        let _ssh = Service::start(loopback(2), p1, SSH_NEW); // version changed
        let _new = Service::start(loopback(2), p3, FTP); // p2 closed, p3 opened
        let _other = Service::start(loopback(4), p1, SSH_OLD); // a new host; .3 and .5 are gone
        scan(&["127.0.0.2", "127.0.0.4"], &[p1, p2, p3], &b);
    }
    (a, b)
}

/// Findings as comparable lines, sorted (a host listed twice gives its lines twice): host
/// appeared or vanished with each port it lists, and every port difference.
fn seclab_findings(json: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for host in json["hosts"].as_array().unwrap() {
        let address = host["address"].as_str().unwrap();
        for change in host["changes"].as_array().unwrap() {
            match change["change"].as_str().unwrap() {
                side @ ("host-new" | "host-gone") => {
                    let side = if side == "host-new" { "new" } else { "gone" };
                    out.push(format!("{address} {side}"));
                    for port in change["ports"].as_array().unwrap() {
                        let spec = format!("{}/{}", port["port"], port["protocol"].as_str().unwrap());
                        out.push(format!("{address} {side} {spec} {}", port_text(port)));
                    }
                }
                "port" => out.push(format!(
                    "{address} {}/{} {} -> {}",
                    change["port"],
                    change["protocol"].as_str().unwrap(),
                    port_text(&change["before"]),
                    port_text(&change["after"])
                )),
                other => out.push(format!("{address} {other}")),
            };
        }
    }
    out.sort();
    out
}

fn port_text(port: &serde_json::Value) -> String {
    if port.is_null() {
        return "-".into();
    }
    let service = &port["service"];
    let field = |name: &str| service[name].as_str().unwrap_or("").to_owned();
    format!(
        "{} {}|{}|{}|{}",
        port["state"].as_str().unwrap(),
        field("name"),
        field("product"),
        field("version"),
        field("extrainfo")
    )
}

/// The same findings read from `ndiff --xml`.
fn ndiff_findings(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).expect("ndiff writes XML");
    let mut out = Vec::new();
    let first_address = |host: roxmltree::Node| {
        host.descendants()
            .find(|n| n.has_tag_name("address"))
            .and_then(|n| n.attribute("addr"))
            .unwrap_or("")
            .to_owned()
    };
    for hostdiff in doc.descendants().filter(|n| n.has_tag_name("hostdiff")) {
        for child in hostdiff.children().filter(|n| n.is_element()) {
            match child.tag_name().name() {
                side @ ("a" | "b") => {
                    let (address, side) = (first_address(child), if side == "a" { "gone" } else { "new" });
                    out.push(format!("{address} {side}"));
                    for port in child.descendants().filter(|n| n.has_tag_name("port")) {
                        let spec =
                            format!("{}/{}", port.attribute("portid").unwrap(), port.attribute("protocol").unwrap());
                        let service = port.children().find(|n| n.has_tag_name("service"));
                        out.push(format!(
                            "{address} {side} {spec} {} {}",
                            state_of(port).unwrap(),
                            service_text(service)
                        ));
                    }
                }
                "host" => {
                    let address = first_address(child);
                    for portdiff in child.descendants().filter(|n| n.has_tag_name("portdiff")) {
                        out.push(port_finding(&address, portdiff));
                    }
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

fn service_text(service: Option<roxmltree::Node>) -> String {
    let field = |name: &str| service.and_then(|s| s.attribute(name)).unwrap_or("").to_owned();
    format!("{}|{}|{}|{}", field("name"), field("product"), field("version"), field("extrainfo"))
}

fn port_finding(address: &str, portdiff: roxmltree::Node) -> String {
    let side = |name: &str| portdiff.children().find(|n| n.has_tag_name(name));
    if let Some(port) = portdiff.children().find(|n| n.has_tag_name("port")) {
        // Same port and state; the service differs.
        let spec = format!("{}/{}", port.attribute("portid").unwrap(), port.attribute("protocol").unwrap());
        let state = state_of(port).unwrap();
        // A changed service is given per side; an unchanged one (scripts changed) once.
        let service = |name: &str| {
            port.children()
                .find(|n| n.has_tag_name(name))
                .and_then(|s| s.children().find(|n| n.has_tag_name("service")))
                .or_else(|| port.children().find(|n| n.has_tag_name("service")))
        };
        return format!(
            "{address} {spec} {state} {} -> {state} {}",
            service_text(service("a")),
            service_text(service("b"))
        );
    }
    let (a, b) = (port_of(side("a")), port_of(side("b")));
    let any = a.or(b).unwrap();
    let spec = format!("{}/{}", any.attribute("portid").unwrap(), any.attribute("protocol").unwrap());
    let text = |port: Option<roxmltree::Node>| match port.and_then(|p| state_of(p).map(|s| (p, s))) {
        Some((p, state)) => format!("{state} {}", service_text(p.children().find(|n| n.has_tag_name("service")))),
        None => "-".into(),
    };
    format!("{address} {spec} {} -> {}", text(a), text(b))
}

fn child<'a, 'i>(node: Option<roxmltree::Node<'a, 'i>>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.and_then(|n| n.children().find(|c| c.has_tag_name(name)))
}

fn port_of<'a, 'i>(side: Option<roxmltree::Node<'a, 'i>>) -> Option<roxmltree::Node<'a, 'i>> {
    child(side, "port")
}

fn state_of<'a>(port: roxmltree::Node<'a, '_>) -> Option<&'a str> {
    child(Some(port), "state").and_then(|s| s.attribute("state"))
}

fn ndiff_xml(a: &Path, b: &Path) -> String {
    let output = Command::new(program("ndiff")).arg("--xml").arg(a).arg(b).output().expect("ndiff runs");
    // ndiff exits 1 when the scans differ.
    assert!(output.status.code() == Some(1), "ndiff: {:?} {}", output.status, String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn seclab_diff(a: &Path, b: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["scan", "diff", a.to_str().unwrap(), b.to_str().unwrap(), "--output", "json"];
    args.extend(extra);
    let (code, stdout, stderr) = run(&root(), &args);
    assert!(stderr.is_empty(), "{stderr}");
    (code, serde_json::from_str(&stdout).expect("one JSON document"))
}

#[test]
fn findings_agree_with_ndiff_on_real_scans() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = scan_pair(dir.path());
    let expected = ndiff_findings(&ndiff_xml(&a, &b));
    for matching in ["ndiff", "address"] {
        let (code, json) = seclab_diff(&a, &b, &["--match", matching]);
        assert_eq!(code, 3, "scans that differ exit 3");
        let found: Vec<String> = seclab_findings(&json).into_iter().filter(|f| !f.ends_with("extra-ports")).collect();
        assert_eq!(found, expected, "--match {matching}");
    }
    // The scenario exercises every kind of finding.
    let all = expected.join("\n");
    for part in ["127.0.0.4 new", "127.0.0.3 gone", "127.0.0.5 gone", "OpenSSH|9.2p1", "-> closed"] {
        assert!(all.contains(part), "{part} missing from\n{all}");
    }
    // A port that opened (nmap names a closed port's service from its table, if it has one).
    assert!(expected.iter().any(|f| f.contains("/tcp closed ") && f.contains(" -> open ")), "no port opened in\n{all}");
}

#[test]
fn identical_scans_exit_zero_and_text_output_reads_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = scan_pair(dir.path());
    let (code, stdout, _) = run(&root(), &["scan", "diff", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), "no differences");
    let (code, stdout, _) = run(&root(), &["scan", "diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(stdout.contains("127.0.0.4: new host"), "{stdout}");
    assert!(stdout.contains("127.0.0.2: port"), "{stdout}");
    assert!(stdout.lines().last().unwrap().starts_with("4 hosts differ: 1 new, 2 gone"), "{stdout}");
}

/// ndiff pairs hosts by address plus host name, so a changed reverse-DNS name reads as one
/// host gone and another new; seclab pairs by address and reports the name change.
#[test]
fn a_renamed_host_is_one_host_for_seclab_and_two_for_ndiff() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = scan_pair(dir.path());
    let original = std::fs::read_to_string(&a).unwrap();
    let named = |name: &str| {
        original.replacen(
            "<address addr=\"127.0.0.2\" addrtype=\"ipv4\"/>",
            &format!("<address addr=\"127.0.0.2\" addrtype=\"ipv4\"/>\n<hostnames><hostname name=\"{name}\" type=\"PTR\"/></hostnames>"),
            1,
        )
    };
    let (old, new) = (dir.path().join("old.xml"), dir.path().join("new.xml"));
    std::fs::write(&old, named("web1.example.org")).unwrap();
    std::fs::write(&new, named("web1-renamed.example.org")).unwrap();
    let ndiff = ndiff_findings(&ndiff_xml(&old, &new));
    assert!(ndiff.contains(&"127.0.0.2 gone".to_owned()) && ndiff.contains(&"127.0.0.2 new".to_owned()), "{ndiff:?}");
    assert!(ndiff.iter().all(|f| f.starts_with("127.0.0.2 gone") || f.starts_with("127.0.0.2 new")), "{ndiff:?}");
    let (_, json) = seclab_diff(&old, &new, &[]);
    assert_eq!(seclab_findings(&json), ["127.0.0.2 hostnames"]);
    let (_, json) = seclab_diff(&old, &new, &["--match", "ndiff"]);
    assert_eq!(seclab_findings(&json), ndiff);
}

#[test]
fn a_truncated_scan_is_rejected_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = scan_pair(dir.path());
    let text = std::fs::read_to_string(&b).unwrap();
    let cut = dir.path().join("cut.xml");
    std::fs::write(&cut, &text[..text.find("<port ").unwrap() + 10]).unwrap();
    let (code, stdout, stderr) = run(&root(), &["scan", "diff", a.to_str().unwrap(), cut.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("cut.xml: incomplete scan: the file ends inside host 1"), "{stderr}");
    assert!(stderr.contains("it was not compared"), "{stderr}");
}

fn fixture(name: &str) -> std::path::PathBuf {
    root().join("tests/fixtures/diff").join(name)
}

/// Each fixture pair against ndiff: the same findings, or a difference the README documents.
#[test]
fn fixtures_agree_with_ndiff_or_differ_as_the_readme_says() {
    let pair = |name: &str| (fixture(&format!("{name}-a.xml")), fixture(&format!("{name}-b.xml")));
    let ndiff = |a: &Path, b: &Path| {
        let output = Command::new(program("ndiff")).arg("--xml").arg(a).arg(b).output().expect("ndiff runs");
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
    };

    // Script output on a port whose state changed, and on one whose service did not: ndiff
    // and seclab find the same ports; seclab's text says what the scripts said.
    let (a, b) = pair("port-scripts");
    let (code, xml) = ndiff(&a, &b);
    assert_eq!(code, 1);
    let expected = ndiff_findings(&xml);
    for matching in ["address", "ndiff"] {
        let (code, json) = seclab_diff(&a, &b, &["--match", matching]);
        assert_eq!(code, 3);
        assert_eq!(seclab_findings(&json), expected, "--match {matching}");
    }
    let (_, text, _) = run(&root(), &["scan", "diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(
        text.contains(
            "port 80/tcp opened: closed http -> open http nginx 1.24.0; scripts (none) -> http-title: Welcome to nginx!"
        ),
        "{text}"
    );
    assert!(text.contains("ssl-cert: Subject: commonName=new.lab.test | Issuer: commonName=lab CA"), "{text}");

    // Two host scripts with multi-line output: ndiff crashes (nmap issue #2930); seclab
    // reports the change on one line.
    let (a, b) = pair("host-scripts");
    assert_eq!(ndiff(&a, &b).0, 2, "ndiff still crashes on two host scripts");
    let (code, json) = seclab_diff(&a, &b, &[]);
    assert_eq!(code, 3);
    assert_eq!(seclab_findings(&json), ["127.0.0.2 host-scripts"]);
    let (_, text, _) = run(&root(), &["scan", "diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(text.lines().count(), 2, "one line per change, then the summary:\n{text}");
    assert!(text.contains("smb-os-discovery: OS: Windows 10 | Computer name: box"), "{text}");

    // The same extra ports in another order: ndiff reports a change; there is none.
    let (a, b) = pair("extraports-order");
    let (code, xml) = ndiff(&a, &b);
    assert_eq!(code, 1, "{xml}");
    let (code, json) = seclab_diff(&a, &b, &[]);
    assert_eq!((code, json["hosts"].as_array().unwrap().len()), (0, 0));

    // Each file against itself: no differences, exit 0.
    for name in ["port-scripts", "host-scripts", "extraports-order"] {
        let (a, _) = pair(name);
        assert_eq!(seclab_diff(&a, &a, &[]).0, 0, "{name}");
    }
}

/// nmap lists a host twice when a target is given twice; like ndiff, seclab pairs the entries
/// in file order and reports the one without a counterpart, with its ports.
#[test]
fn a_host_listed_twice_is_reported_twice_as_ndiff_does() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (once, twice) = (dir.path().join("once.xml"), dir.path().join("twice.xml"));
    {
        let _ftp = Service::start(loopback(3), port, FTP);
        scan(&["127.0.0.2"], &[port], &once);
        scan(&["127.0.0.2", "127.0.0.3", "127.0.0.3"], &[port], &twice);
    }
    let expected = ndiff_findings(&ndiff_xml(&once, &twice));
    assert_eq!(expected.iter().filter(|f| *f == "127.0.0.3 new").count(), 2, "{expected:?}");
    for matching in ["address", "ndiff"] {
        let (code, json) = seclab_diff(&once, &twice, &["--match", matching]);
        assert_eq!(code, 3);
        assert_eq!(seclab_findings(&json), expected, "--match {matching}");
    }
    let (_, text, _) = run(&root(), &["scan", "diff", once.to_str().unwrap(), twice.to_str().unwrap()]);
    let line = format!("127.0.0.3: new host: {port}/tcp open ftp vsftpd 3.0.3");
    assert_eq!(text.lines().filter(|l| *l == line).count(), 2, "{text}");
}
