//! The scan database end to end, on SQLite and on PostgreSQL: real nmap scans of loopback
//! services ingested, compared, host statuses advanced, alerts delivered to a real HTTP
//! server and a real SMTP server, each exactly once.

mod support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::nmap::{Service, free_port, scan};
use support::postgres::Postgres;
use support::receivers::Receiver;

const SSH_OLD: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
const SSH_NEW: &str = "SSH-2.0-OpenSSH_9.3p1 Debian-1\r\n";
const FTP: &str = "220 (vsFTPd 3.0.3)\r\n";
const HOOK_SECRET: &str = "test-hook-secret";

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A lab in a temporary directory, with its receivers and its scan directory.
struct Lab {
    dir: tempfile::TempDir,
    hook: Receiver,
    mail: Receiver,
    ports: (u16, u16),
    database_url: Option<String>,
    scans: u32,
}

impl Lab {
    fn new(database_url: Option<String>, repeat_window: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hook = Receiver::start("http", &dir.path().join("hook"));
        let mail = Receiver::start("smtp", &dir.path().join("mail"));
        let ports = (free_port(), free_port());
        let database = if database_url.is_some() { "url: env:SECLAB_TEST_DATABASE_URL" } else { "path: scans.db" };
        let file = format!(
            r#"apiVersion: seclab.dev/v1alpha1
kind: Lab
metadata:
  name: scanlab
tenants:
  - name: site
    scans:
      - name: lab
        targets: [127.0.0.2-4]
        ports: "{p1},{p2}"
        schedule: "@hourly"
        downAfter: 2
        alerts: [hook, mail]
scanDatabase:
  {database}
  scanDirectory: scans
alerts:
  repeatWindow: {repeat_window}
  routes:
    - name: hook
      webhook:
        url: http://127.0.0.1:{hook}/alerts
        secret: env:HOOK_SECRET
    - name: mail
      email:
        to: [soc@example.org]
        from: seclab@example.org
        smtp: {{ host: 127.0.0.1, port: {mail}, tls: none }}
"#,
            p1 = ports.0,
            p2 = ports.1,
            hook = hook.port,
            mail = mail.port,
        );
        std::fs::write(dir.path().join("seclab.yaml"), file).unwrap();
        Self { dir, hook, mail, ports, database_url, scans: 0 }
    }

    fn seclab(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = support::seclab(self.dir.path());
        command.args(args).env("HOOK_SECRET", HOOK_SECRET);
        if let Some(url) = &self.database_url {
            command.env("SECLAB_TEST_DATABASE_URL", url);
        }
        let output = command.output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// A baseline scan of 127.0.0.2 with one port open, ingested, then a scan where a second
    /// port opened, not yet ingested: its ingest queues alerts.
    fn a_port_opens(&mut self) {
        let (p1, p2) = self.ports;
        self.scan(&["127.0.0.2"], &[(2, p1, FTP)]);
        assert_eq!(self.ingest().0, 0);
        self.scan(&["127.0.0.2"], &[(2, p1, FTP), (2, p2, FTP)]);
    }

    /// Takes the webhook down (a receiver elsewhere stands in for the lab's); returns the port
    /// it listened on.
    fn webhook_down(&mut self) -> u16 {
        let port = self.hook.port;
        drop(std::mem::replace(&mut self.hook, Receiver::start("http", &self.dir.path().join("unused"))));
        port
    }

    fn group_dir(&self) -> PathBuf {
        self.dir.path().join("scans/site/lab")
    }

    /// Runs real nmap over `targets` with `services` listening, into the next scan file.
    fn scan(&mut self, targets: &[&str], services: &[(u8, u16, &'static str)]) -> PathBuf {
        let _running: Vec<Service> =
            services.iter().map(|(last, port, banner)| Service::start(ip(*last), *port, banner)).collect();
        self.scans += 1;
        std::fs::create_dir_all(self.group_dir()).unwrap();
        let path = self.group_dir().join(format!("{:02}.xml", self.scans));
        scan(targets, &[self.ports.0, self.ports.1], &path);
        path
    }

    fn ingest(&self) -> (i32, String) {
        let (code, stdout, stderr) = self.seclab(&["scan", "ingest"]);
        (code, format!("{stdout}{stderr}"))
    }

    /// The group's scan ids, newest first.
    fn scan_ids(&self) -> Vec<i64> {
        let (code, stdout, stderr) = self.seclab(&["scan", "history", "site/lab", "--output", "json"]);
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        json["scans"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect()
    }

    fn host_status(&self, address: &str) -> String {
        let (code, stdout, stderr) =
            self.seclab(&["scan", "history", "site/lab", "--host", address, "--output", "json"]);
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        json["current"]["status"].as_str().unwrap().to_owned()
    }
}

fn webhook_kinds(received: &[String]) -> Vec<String> {
    received
        .iter()
        .map(|r| {
            let request: serde_json::Value = serde_json::from_str(r).unwrap();
            let body: serde_json::Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
            format!("{} {}", body["address"].as_str().unwrap(), body["kind"].as_str().unwrap())
        })
        .collect()
}

fn scenario(database_url: Option<String>) {
    let mut lab = Lab::new(database_url, 0);
    let (p1, p2) = lab.ports;
    let all = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

    // 1. The first scan is the baseline: nothing to compare with, nothing alerted.
    lab.scan(&all, &[(2, p1, SSH_OLD), (3, p1, FTP)]);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("site/lab 01.xml: baseline: 3 hosts up"), "{out}");
    assert_eq!(lab.host_status("127.0.0.2"), "new");
    if lab.database_url.is_none() {
        // Customers' open ports: the database is its owner's only (SQLite gives its -wal and
        // -shm files, when a closing seclab left them, the same mode).
        use std::os::unix::fs::PermissionsExt;
        for file in ["scans.db", "scans.db-wal", "scans.db-shm"] {
            let Ok(meta) = std::fs::metadata(lab.dir.path().join(file)) else {
                assert_ne!(file, "scans.db");
                continue;
            };
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
    }

    // 2. A service's version changes and a port opens: two alerts on each route.
    let changed = [(2, p1, SSH_NEW), (2, p2, FTP), (3, p1, FTP)];
    lab.scan(&all, &changed);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("site/lab 02.xml: ingested: 3 hosts up, 2 changes, 4 alerts queued"), "{out}");
    assert!(out.contains("alerts: 4 delivered"), "{out}");
    let hooks = lab.hook.wait_for(2);
    let mut kinds = webhook_kinds(&hooks);
    kinds.sort();
    assert_eq!(kinds, ["127.0.0.2 port-opened", "127.0.0.2 service-changed"]);
    for hook in &hooks {
        let request: serde_json::Value = serde_json::from_str(hook).unwrap();
        let body = request["body"].as_str().unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(request["headers"]["x-seclab-signature"], expected.as_str(), "the body is signed");
        assert_eq!(request["path"], "/alerts");
    }
    let mails = lab.mail.wait_for(2);
    assert_eq!(mails.len(), 2);
    assert!(
        mails.iter().any(|m| m.contains("Subject: [seclab] site/lab 127.0.0.2: port") && m.contains("opened")),
        "{mails:?}"
    );
    assert!(mails.iter().all(|m| m.contains("X-Envelope-To: soc@example.org")));
    assert_eq!(lab.host_status("127.0.0.2"), "changed");
    assert_eq!(lab.host_status("127.0.0.3"), "up");

    // Stored scans compare as the files they came from do.
    let files = lab.seclab(&["scan", "diff", "scans/site/lab/01.xml", "scans/site/lab/02.xml", "--output", "json"]);
    let stored = lab.seclab(&["scan", "diff", "--group", "site/lab", "--output", "json"]);
    assert_eq!((files.0, stored.0), (3, 3), "{}{}", files.2, stored.2);
    let hosts = |out: &str| serde_json::from_str::<serde_json::Value>(out).unwrap()["hosts"].clone();
    assert_eq!(hosts(&stored.1), hosts(&files.1), "the last two complete scans, as the files say");
    let ids = lab.scan_ids();
    let explicit = lab.seclab(&["scan", "diff", "--group", "site/lab", &ids[1].to_string(), &ids[0].to_string()]);
    assert_eq!(explicit.0, 3);
    assert!(explicit.1.contains("127.0.0.2: port") && explicit.1.contains("opened"), "{}", explicit.1);
    let same = lab.seclab(&["scan", "diff", "--group", "site/lab", &ids[0].to_string(), &ids[0].to_string()]);
    assert_eq!((same.0, same.1.trim()), (0, "no differences"));
    let unknown = lab.seclab(&["scan", "diff", "--group", "site/lab", "99", "98"]);
    assert_eq!(unknown.0, 1);
    assert!(
        unknown.2.contains("site/lab has no scan 99; `seclab scan history site/lab` lists its scans"),
        "{}",
        unknown.2
    );

    // 3. Host .3 is missing from one scan: missed, not yet alerted (downAfter is 2).
    lab.scan(&["127.0.0.2", "127.0.0.4"], &changed);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("03.xml: ingested: 2 hosts up, 0 changes, 0 alerts queued"), "{out}");
    assert_eq!(lab.host_status("127.0.0.3"), "missed");

    // 4. A truncated scan is rejected whole: recorded as failed, nothing else changes.
    let good = std::fs::read_to_string(lab.scan(&["127.0.0.2", "127.0.0.4"], &changed)).unwrap();
    let cut = lab.group_dir().join("04.xml");
    std::fs::write(&cut, &good[..good.find("<port ").unwrap() + 20]).unwrap();
    let (code, out) = lab.ingest();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("04.xml: rejected: incomplete scan: the file ends inside host 1"), "{out}");
    assert_eq!(lab.host_status("127.0.0.3"), "missed", "a rejected scan counts for nothing");
    let failed = lab.scan_ids()[0].to_string();
    let (code, _, stderr) = lab.seclab(&["scan", "diff", "--group", "site/lab", "1", &failed]);
    assert_eq!(code, 2, "a rejected scan is not compared: {stderr}");
    assert!(stderr.contains("was rejected (incomplete scan"), "{stderr}");
    let (code, _, stderr) = lab.seclab(&["scan", "diff", "--group", "site/lab", &failed]);
    assert_eq!(code, 2, "one id, of a rejected scan, says so too: {stderr}");
    assert!(stderr.contains(&format!("scan {failed} of site/lab was rejected (incomplete scan")), "{stderr}");
    let (_, history, _) = lab.seclab(&["scan", "history", "site/lab"]);
    assert!(history.lines().nth(1).unwrap().contains("failed: incomplete scan"), "{history}");

    // 5. Missed a second time in a row: down, alerted once.
    lab.scan(&["127.0.0.2", "127.0.0.4"], &changed);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("05.xml: ingested: 2 hosts up, 1 change, 2 alerts queued"), "{out}");
    assert_eq!(lab.host_status("127.0.0.3"), "down");

    // 6. Seen again: back up, alerted; compared with its last sighting, not the empty scans.
    lab.scan(&all, &changed);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("06.xml: ingested: 3 hosts up, 1 change, 2 alerts queued"), "{out}");
    assert_eq!(lab.host_status("127.0.0.3"), "back-up");
    let kinds = webhook_kinds(&lab.hook.wait_for(4));
    assert_eq!(&kinds[2..], ["127.0.0.3 host-down", "127.0.0.3 host-back-up"]);
    assert_eq!(lab.mail.wait_for(4).len(), 4);

    // Ingesting everything again changes nothing and sends nothing.
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("02.xml: already ingested"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(lab.hook.received().len(), 4, "each alert is delivered once");
    assert_eq!(lab.mail.received().len(), 4, "each alert is delivered once");

    let (code, status, _) = lab.seclab(&["scan", "status"]);
    assert_eq!(code, 0);
    assert!(status.contains("site/lab") && status.contains("1 back-up, 2 up"), "{status}");
}

#[test]
fn scan_database_on_sqlite() {
    scenario(None);
}

#[test]
fn scan_database_on_postgresql() {
    let postgres = Postgres::start();
    scenario(Some(postgres.url.clone()));
}

/// A scan of more hosts than ingest writes in one batch (2,000): every host stored once, the
/// host nmap lists at the start and again at the end of the file merged into one, and the
/// next scan's changes found in the first batch, the last one and the merged host.
fn batches_scenario(database_url: Option<String>) {
    let lab = Lab::new(database_url, 0);
    let file = lab.dir.path().join("seclab.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("targets: [127.0.0.2-4]", "targets: [127.0.0.2-4, 127.1.0.0/21]")).unwrap();
    let (p1, _) = lab.ports;
    let scan_of = |name: &str, open: &[Ipv4Addr]| {
        let _running: Vec<Service> = open.iter().map(|address| Service::start(*address, p1, FTP)).collect();
        std::fs::create_dir_all(lab.group_dir()).unwrap();
        scan(&["127.0.0.3", "127.1.0.0/22", "127.1.4.0/22", "127.0.0.3"], &[p1], &lab.group_dir().join(name));
    };
    let (first, last, twice) = (Ipv4Addr::new(127, 1, 0, 10), Ipv4Addr::new(127, 1, 7, 200), ip(3));
    scan_of("01.xml", &[]);
    let listed = std::fs::read_to_string(lab.group_dir().join("01.xml")).unwrap();
    assert_eq!(listed.matches("addr=\"127.0.0.3\"").count(), 2, "nmap lists the repeated target twice");
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("baseline: 2049 hosts up"), "2,048 hosts and 127.0.0.3 once: {out}");

    scan_of("02.xml", &[first, last, twice]);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ingested: 2049 hosts up, 3 changes, 6 alerts queued"), "{out}");
    for address in [first, last, twice] {
        assert_eq!(lab.host_status(&address.to_string()), "changed", "{address}: {out}");
    }
    assert_eq!(lab.host_status("127.1.2.0"), "up");
}

#[test]
fn more_hosts_than_a_batch_on_sqlite() {
    batches_scenario(None);
}

#[test]
fn more_hosts_than_a_batch_on_postgresql() {
    let postgres = Postgres::start();
    batches_scenario(Some(postgres.url.clone()));
}

/// seclab killed after the ingest committed but before the alerts went out: the next run
/// delivers each alert exactly once.
#[test]
fn alerts_survive_a_killed_seclab_and_are_sent_once() {
    let mut lab = Lab::new(None, 0);
    lab.a_port_opens();
    // The webhook is down: the ingest commits, then delivery keeps failing.
    let port = lab.webhook_down();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("seclab"))
        .current_dir(lab.dir.path())
        .args(["scan", "ingest", "--alert-timeout", "60s"])
        .env("HOOK_SECRET", HOOK_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(|| lab.mail.received().len() == 1);
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL, mid-retry
    child.wait().unwrap();
    // The webhook comes back on its old port; the next run delivers what was left.
    let hook = restart_http_on(port, &lab.dir.path().join("hook2"));
    let (code, out, err) = lab.seclab(&["scan", "deliver"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "alerts: 1 delivered");
    let (_, out, _) = lab.seclab(&["scan", "deliver"]);
    assert_eq!(out.trim(), "alerts: 0 delivered");
    assert_eq!(hook.wait_for(1).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(hook.received().len(), 1, "delivered exactly once");
    assert_eq!(lab.mail.received().len(), 1, "the mail was not sent again");
}

fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An HTTP receiver on a given port (the route's URL names it).
fn restart_http_on(port: u16, dir: &Path) -> Receiver {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("fixed-port"), port.to_string()).unwrap();
    Receiver::start("http", dir)
}

/// With a repeat window, a change that comes back within it is recorded but not alerted.
fn repeat_window_scenario(database_url: Option<String>) {
    let mut lab = Lab::new(database_url, 3);
    let (p1, p2) = lab.ports;
    let host = ["127.0.0.2"];
    lab.scan(&host, &[(2, p1, FTP)]);
    assert_eq!(lab.ingest().0, 0);
    lab.scan(&host, &[(2, p1, FTP), (2, p2, FTP)]);
    let (_, out) = lab.ingest();
    assert!(out.contains("1 change, 2 alerts queued"), "{out}");
    lab.scan(&host, &[(2, p1, FTP)]);
    let (_, out) = lab.ingest();
    assert!(out.contains("1 change, 2 alerts queued"), "closing is a different change: {out}");
    lab.scan(&host, &[(2, p1, FTP), (2, p2, FTP)]);
    let (_, out) = lab.ingest();
    assert!(out.contains("1 change (1 seen within the repeat window, not alerted), 0 alerts queued"), "{out}");
    let (_, history, _) = lab.seclab(&["scan", "history", "site/lab", "--host", "127.0.0.2"]);
    assert!(history.contains("(not alerted: repeat)"), "{history}");
}

#[test]
fn the_repeat_window_suppresses_flapping_ports_on_sqlite() {
    repeat_window_scenario(None);
}

#[test]
fn the_repeat_window_suppresses_flapping_ports_on_postgresql() {
    let postgres = Postgres::start();
    repeat_window_scenario(Some(postgres.url.clone()));
}

/// Stored scans compare as `scan ingest` compared them: `scan diff --group` leaves out the noise
/// the file's `alerts` leaves out, and says so; `--show-noise` shows it; two files compare as
/// ndiff does, every change shown unless asked otherwise.
#[test]
fn scan_diff_of_stored_scans_agrees_with_ingest_on_noise() {
    let mut lab = Lab::new(None, 0);
    let (p1, p2) = lab.ports;
    let host = ["127.0.0.2"];
    lab.scan(&host, &[(2, p1, FTP)]);
    assert_eq!(lab.ingest().0, 0);
    // A service that closes each connection at once: nmap names it `tcpwrapped`.
    let second = lab.scan(&host, &[(2, p1, FTP), (2, p2, "")]);
    let xml = std::fs::read_to_string(&second).unwrap();
    assert!(xml.contains(r#"name="tcpwrapped""#), "nmap saw a tcpwrapped port: {xml}");
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ingested: 1 host up, 0 changes, 0 alerts queued"), "ingest leaves it out: {out}");

    let (code, stdout, stderr) = lab.seclab(&["scan", "diff", "--group", "site/lab"]);
    assert_eq!((code, stdout.trim()), (0, "no differences"), "as ingest found: {stderr}");
    assert!(
        stderr.contains("note: left out as noise: tcpwrapped ports and service changes after a detection time-out (as `scan ingest` compared them"),
        "{stderr}"
    );
    let (_, stdout, _) = lab.seclab(&["scan", "diff", "--group", "site/lab", "--output", "json"]);
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["noise"], serde_json::json!({ "ignoreTcpwrapped": true, "ignoreServiceTimeouts": true }));
    let (_, stdout, _) = lab.seclab(&["scan", "ingest", "--output", "json"]);
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["noise"]["ignoreTcpwrapped"], true, "ingest says what it leaves out too: {document}");

    let (code, stdout, stderr) = lab.seclab(&["scan", "diff", "--group", "site/lab", "--show-noise"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.contains(&format!("127.0.0.2: port {p2}/tcp opened")), "{stdout}");
    assert!(!stderr.contains("left out"), "{stderr}");

    let files = ["scans/site/lab/01.xml", "scans/site/lab/02.xml"];
    let (code, stdout, _) = lab.seclab(&["scan", "diff", files[0], files[1]]);
    assert_eq!(code, 3, "two files compare as ndiff does: {stdout}");
    let (code, _, stderr) = lab.seclab(&["scan", "diff", files[0], files[1], "--ignore-tcpwrapped"]);
    assert_eq!(code, 0);
    assert!(stderr.contains("left out as noise: tcpwrapped ports (asked on the command line)"), "{stderr}");
}

/// `scan sync` on the lab's file as it changes: what it reports, and hosts a narrowed group
/// no longer covers marked gone.
fn sync_scenario(database_url: Option<String>) {
    let mut lab = Lab::new(database_url, 0);
    let (p1, _) = lab.ports;
    let file = lab.dir.path().join("seclab.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let sync = |lab: &Lab| -> Vec<String> {
        let (code, stdout, stderr) = lab.seclab(&["scan", "sync", "--output", "json"]);
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        json["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["object"].as_str().unwrap(),
                    c["name"].as_str().unwrap(),
                    c["action"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(sync(&lab), ["tenant site created", "group site/lab created"]);
    assert!(sync(&lab).is_empty(), "an unchanged file changes nothing");

    lab.scan(&["127.0.0.2-4"], &[(2, p1, FTP), (3, p1, FTP)]);
    assert_eq!(lab.ingest().0, 0);
    let other = "  - name: other\n    scans:\n      - name: g\n        targets: [127.0.0.9]\n        schedule: \"@daily\"\n        alerts: [hook]\n";
    let narrowed = original.replace("targets: [127.0.0.2-4]", "targets: [127.0.0.2]");
    let with_other = narrowed.replace("scanDatabase:", &format!("{other}scanDatabase:"));
    std::fs::write(&file, &with_other).unwrap();
    assert_eq!(sync(&lab), ["group site/lab updated", "tenant other created", "group other/g created"]);
    assert_eq!(lab.host_status("127.0.0.3"), "gone", "a host the group no longer covers is gone");
    assert_ne!(lab.host_status("127.0.0.2"), "gone");

    std::fs::write(&file, &narrowed).unwrap();
    assert_eq!(sync(&lab), ["group other/g retired", "tenant other retired"]);
    std::fs::write(&file, &with_other).unwrap();
    assert_eq!(sync(&lab), ["tenant other restored", "group other/g restored"]);
    assert!(sync(&lab).is_empty());
}

#[test]
fn sync_creates_updates_retires_and_restores_on_sqlite() {
    sync_scenario(None);
}

#[test]
fn sync_creates_updates_retires_and_restores_on_postgresql() {
    let postgres = Postgres::start();
    sync_scenario(Some(postgres.url.clone()));
}

/// A new host's alert says what it exposes, on every route; a host listed twice in a scan (a
/// target given twice) is one host.
#[test]
fn a_new_hosts_alert_lists_its_ports_and_a_host_listed_twice_is_one_host() {
    let mut lab = Lab::new(None, 0);
    let file = lab.dir.path().join("seclab.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace("alerts: [hook, mail]", "alerts: [hook, mail, log]");
    std::fs::write(&file, text).unwrap();
    let (p1, p2) = lab.ports;
    lab.scan(&["127.0.0.2"], &[(2, p1, FTP)]);
    assert_eq!(lab.ingest().0, 0);

    lab.scan(&["127.0.0.2", "127.0.0.3", "127.0.0.3"], &[(2, p1, FTP), (3, p1, SSH_OLD), (3, p2, FTP)]);
    // Colour is allowed here (no NO_COLOR), but stderr is a pipe: the log line has none.
    let output = support::seclab(lab.dir.path())
        .args(["scan", "ingest"])
        .env("HOOK_SECRET", HOOK_SECRET)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(!out.contains('\x1b'), "no colour escape in piped output: {out:?}");
    assert!(out.contains("ingested: 2 hosts up, 1 change, 3 alerts queued"), "one new host, not two: {out}");
    let hook = &lab.hook.wait_for(1)[0];
    let request: serde_json::Value = serde_json::from_str(hook).unwrap();
    let body: serde_json::Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["kind"], "host-new");
    let summary = body["summary"].as_str().unwrap();
    assert!(summary.starts_with("127.0.0.3: new host: "), "{summary}");
    for part in ["open ssh OpenSSH 9.2p1", "open ftp vsftpd 3.0.3"] {
        assert!(summary.contains(part), "{part} missing from {summary}");
    }
    assert_eq!(body["detail"]["ports"].as_array().unwrap().len(), 2, "{body}");
    let mail = &lab.mail.wait_for(1)[0];
    assert!(mail.contains("new host:") && mail.contains("vsftpd 3.0.3"), "{mail}");
    assert!(out.contains("127.0.0.3: new host: ") && out.contains("vsftpd 3.0.3"), "the log route: {out}");
    assert_eq!(lab.host_status("127.0.0.3"), "new");
}

/// Narrowing a group's targets retires the hosts outside them without an alert; widening
/// them baselines the new range without one; an excluded host is retired too.
fn coverage_scenario(database_url: Option<String>) {
    let mut lab = Lab::new(database_url, 0);
    let (p1, _) = lab.ports;
    let file = lab.dir.path().join("seclab.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    lab.scan(&["127.0.0.2-4"], &[(2, p1, FTP), (3, p1, FTP), (4, p1, FTP)]);
    assert_eq!(lab.ingest().0, 0);

    // Narrowed to .2, while a scan made before the edit still lists .3 and .4.
    std::fs::write(&file, original.replace("targets: [127.0.0.2-4]", "targets: [127.0.0.2]")).unwrap();
    lab.scan(&["127.0.0.2-4"], &[(2, p1, FTP), (3, p1, FTP), (4, p1, FTP)]);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 host up, 0 changes, 0 alerts queued; 2 hosts up outside the group's targets ignored"),
        "{out}"
    );
    for _ in 0..3 {
        lab.scan(&["127.0.0.2"], &[(2, p1, FTP)]);
        let (_, out) = lab.ingest();
        assert!(out.contains("0 changes, 0 alerts queued"), "no host goes down: {out}");
    }
    assert_eq!(lab.host_status("127.0.0.3"), "gone");

    // Widened to .2-.6: the hosts of the new range are baselined, not alerted as new.
    let widened = original.replace("targets: [127.0.0.2-4]", "targets: [127.0.0.2-6]");
    std::fs::write(&file, &widened).unwrap();
    lab.scan(&["127.0.0.2-6"], &[(2, p1, FTP), (3, p1, FTP), (5, p1, FTP)]);
    let (code, out) = lab.ingest();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 hosts up, 0 changes, 0 alerts queued"), "{out}");
    assert_eq!(lab.host_status("127.0.0.5"), "new");
    assert_eq!(lab.host_status("127.0.0.3"), "new");
    // From now on they are compared as any host is.
    lab.scan(&["127.0.0.2-6"], &[(2, p1, FTP), (3, p1, FTP)]);
    let (_, out) = lab.ingest();
    assert!(out.contains("5 hosts up, 1 change, 2 alerts queued"), "port closed on .5: {out}");

    // An exclusion retires the host it names, without an alert.
    std::fs::write(
        &file,
        widened.replace("targets: [127.0.0.2-6]", "targets: [127.0.0.2-6]\n        exclude: [127.0.0.4]"),
    )
    .unwrap();
    for _ in 0..3 {
        lab.scan(&["127.0.0.2-3", "127.0.0.5-6"], &[(2, p1, FTP), (3, p1, FTP)]);
        let (_, out) = lab.ingest();
        assert!(out.contains("4 hosts up, 0 changes, 0 alerts queued"), "{out}");
    }
    assert_eq!(lab.host_status("127.0.0.4"), "gone");
    assert_eq!(lab.hook.received().len(), 1, "the only alert was the closed port");
}

#[test]
fn narrowing_and_widening_targets_keep_history_honest_on_sqlite() {
    coverage_scenario(None);
}

#[test]
fn narrowing_and_widening_targets_keep_history_honest_on_postgresql() {
    let postgres = Postgres::start();
    coverage_scenario(Some(postgres.url.clone()));
}

/// A webhook that answers with a redirect is not followed (the alert would be posted to
/// wherever it points, with the route's token in a Referer): the delivery fails, naming why,
/// and the redirect's target hears nothing.
#[test]
fn a_webhook_redirect_is_not_followed() {
    use std::io::{Read, Write};
    let mut lab = Lab::new(None, 0);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirector = listener.local_addr().unwrap().port();
    let target = format!("http://127.0.0.1:{}/stolen", lab.hook.port);
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            stream.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
            let mut request = [0u8; 65536];
            let _ = stream.read(&mut request);
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let file = lab.dir.path().join("seclab.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let hook = format!("http://127.0.0.1:{}/alerts", lab.hook.port);
    std::fs::write(&file, text.replace(&hook, &format!("http://127.0.0.1:{redirector}/alerts"))).unwrap();
    lab.a_port_opens();
    let (_, _, err) = lab.seclab(&["scan", "ingest", "--alert-timeout", "1s"]);
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the webhook was asked: {err}");
    let answered =
        format!("webhook http://127.0.0.1:{redirector} answered 307 Temporary Redirect; seclab follows no redirect");
    assert!(err.contains(&answered), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(lab.hook.received(), Vec::<String>::new(), "the redirect's target heard nothing");
}

/// The scan database on a PostgreSQL server that speaks TLS: reached with the server's
/// certificate checked against `scanDatabase.tlsCa` and its name (`sslmode=verify-full`); a
/// server another CA vouches for is refused.
#[test]
fn the_scan_database_is_reached_over_tls_with_the_servers_certificate_verified() {
    let (ca, certificate, key) = support::certs::loopback_server();
    let postgres = Postgres::start_tls(&certificate, &key);
    let lab = Lab::new(Some(format!("{}?sslmode=verify-full", postgres.url)), 0);
    let file = lab.dir.path().join("seclab.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("  scanDirectory: scans\n", "  scanDirectory: scans\n  tlsCa: ca.pem\n"))
        .unwrap();
    std::fs::write(lab.dir.path().join("ca.pem"), &ca).unwrap();
    let (code, out, err) = lab.seclab(&["scan", "sync"]);
    assert_eq!(code, 0, "{out}{err}");

    let (other, _, _) = support::certs::loopback_server();
    std::fs::write(lab.dir.path().join("ca.pem"), &other).unwrap();
    let (code, out, err) = lab.seclab(&["scan", "sync"]);
    assert_ne!(code, 0, "a server another CA vouches for is refused: {out}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

/// A URL that turns TLS off to a server elsewhere is refused before anything is sent (the
/// file must say `tls: disable`), without its password.
#[test]
fn a_scan_database_url_without_tls_to_another_machine_is_refused_before_connecting() {
    let lab = Lab::new(Some("postgres://seclab:s3cr3t-pw@db.lab.internal/scans?sslmode=disable".into()), 0);
    let (code, out, err) = lab.seclab(&["scan", "sync"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("db.lab.internal is not on this machine") && err.contains("set `tls: disable`"), "{err}");
    assert!(!err.contains("s3cr3t-pw"), "{err}");
}

/// `scan deliver` with alerts it could not deliver exits 1, naming the route, the webhook by
/// its origin (never its path, which may hold a token) and the cause; the alerts stay queued.
#[test]
fn scan_deliver_fails_while_alerts_stay_undelivered_and_names_the_route_and_the_cause() {
    let mut lab = Lab::new(None, 0);
    lab.a_port_opens();
    let port = lab.webhook_down();
    let (_, out, _) = lab.seclab(&["scan", "ingest", "--alert-timeout", "1s"]);
    assert!(out.contains("still waiting (retried by `seclab scan deliver`)"), "{out}");
    let (code, out, err) = lab.seclab(&["scan", "deliver", "--timeout", "1s"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("alerts: 0 delivered"), "the mail went out with the ingest: {out}");
    let expected =
        format!("1 alert still undelivered (route hook: webhook http://127.0.0.1:{port}: the request failed: ");
    assert!(err.contains(&expected) && err.contains("they stay queued"), "{err}");
    assert!(!err.contains("/alerts") && !out.contains("retried by `seclab scan deliver`"), "{out}{err}");
}
