//! The secret sweep: one lab holds known secret values (an `env:` password, a `file:` token,
//! a webhook secret, the watch token, generated passwords, issued certificates and keys);
//! every command runs on it with `-vv`, in text and in JSON, `watch` with its endpoints; no
//! output, log or endpoint body holds any of the values or any PEM body.

mod support;

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use support::lab::{SECRET_ONE, TestLab, admin, api};
use support::nmap::free_port;
use support::watch::Watch;

const FILE_TOKEN: &str = "file-token-value-3c9e77";
const WEBHOOK_SECRET: &str = "webhook-secret-value-a41f";
const WATCH_TOKEN: &str = "watch-token-value-e2d0";

/// The OpenSearch lab (certificates seclab issues, a generated Cortex key) with tenants whose
/// database passwords come from the environment, a file and the generator, a signed webhook,
/// a watch token and a scan group on loopback.
fn secret_lab() -> TestLab {
    let mut lab = TestLab::new("opensearch.yaml", "t-secrets");
    std::fs::write(lab.dir.path().join("xynexis-token"), FILE_TOKEN).unwrap();
    std::fs::create_dir_all(lab.dir.path().join("scans/barbican/dmz")).unwrap();
    let hook = free_port(); // nothing listens: deliveries fail, and say so
    let mut spec = lab.spec();
    spec["cortex"].as_object_mut().unwrap().remove("secretKey");
    spec["tenants"] = json!([
        { "name": "barbican", "database": { "password": "env:BARBICAN_DB_PASSWORD" },
          "scans": [{ "name": "dmz", "targets": ["127.0.0.1-2"], "ports": "22", "schedule": "0 2 * * *", "alerts": ["hook"] }] },
        { "name": "xynexis", "database": { "password": "file:xynexis-token" } },
        { "name": "corvid" },
    ]);
    spec["tenantDatabase"] = json!({ "mode": "inCluster", "volume": "data" });
    spec["alerts"] = json!({ "routes": [{ "name": "hook",
        "webhook": { "url": format!("http://127.0.0.1:{hook}/alerts"), "secret": "env:SECLAB_WEBHOOK_SECRET" } }] });
    spec["scanDatabase"] = json!({ "path": "scans.db", "scanDirectory": "scans" });
    spec["watch"] = json!({ "token": "env:SECLAB_WATCH_TOKEN", "debounce": "100ms", "resyncInterval": "2s" });
    lab.write(&spec);
    lab.env = vec![
        ("OPENSEARCH_ADMIN_PASSWORD".into(), SECRET_ONE.into()),
        ("SECLAB_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
        ("SECLAB_WATCH_TOKEN".into(), WATCH_TOKEN.into()),
    ];
    lab
}

/// Runs seclab with `-vv` in text and in JSON; both outputs, whatever the exit codes.
fn both_ways(lab: &TestLab, args: &[&str]) -> Vec<String> {
    [&[][..], &["--output", "json"][..]]
        .iter()
        .map(|format| {
            let all: Vec<&str> = ["-vv"].iter().chain(format.iter()).chain(args.iter()).copied().collect();
            let output = lab.seclab(&all);
            format!(
                "$ seclab {}\n{}{}",
                all.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .collect()
}

/// Every value the lab's Secrets hold (decoded, and as stored), and each line of every PEM
/// body among them.
async fn secret_values(lab: &TestLab) -> BTreeSet<String> {
    let secrets = api(&admin().await, "", "v1", "Secret", Some(&lab.name));
    let mut values = BTreeSet::new();
    for secret in secrets.list(&Default::default()).await.unwrap().items {
        let secret = serde_json::to_value(&secret).unwrap();
        for (_, encoded) in secret["data"].as_object().into_iter().flatten() {
            let encoded = encoded.as_str().unwrap();
            values.insert(encoded.to_owned());
            let Ok(text) = String::from_utf8(STANDARD.decode(encoded).unwrap()) else { continue };
            values.extend(text.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_owned));
            if !text.contains("-----") {
                values.insert(text);
            }
        }
    }
    values.retain(|v| v.len() >= 12);
    values
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_endpoint_or_log_shows_a_secret() {
    let lab = secret_lab();
    let scan = support::root().join("tests/fixtures/loopback.xml");
    let scan = scan.to_str().unwrap();
    let mut outputs = Vec::new();
    outputs.extend(both_ways(&lab, &["validate"]));
    outputs.extend(both_ways(&lab, &["render"]));
    outputs.extend(both_ways(&lab, &["plan"]));
    outputs.extend(both_ways(&lab, &["apply", "--wait", "--timeout", "120s"]));
    outputs.extend(both_ways(&lab, &["plan"]));
    outputs.extend(both_ways(&lab, &["status"]));
    outputs.extend(both_ways(&lab, &["certs", "status"]));
    outputs.extend(both_ways(&lab, &["scan", "sync"]));
    outputs.extend(both_ways(&lab, &["scan", "ingest", "--group", "barbican/dmz", scan]));
    outputs.extend(both_ways(&lab, &["scan", "run", "--group", "barbican/dmz"]));
    outputs.extend(both_ways(&lab, &["scan", "deliver"]));
    outputs.extend(both_ways(&lab, &["scan", "status"]));
    outputs.extend(both_ways(&lab, &["scan", "history", "--group", "barbican/dmz"]));
    outputs.extend(both_ways(&lab, &["scan", "diff", scan, scan]));
    outputs.extend(both_ways(&lab, &["scan", "diff", "--group", "barbican/dmz"]));

    let watch = Watch::start(&lab, &["-vv"], &[]);
    let ready = support::watch::eventually(std::time::Duration::from_secs(120), || {
        watch.get("/readyz", Some(WATCH_TOKEN)).0 == 200
    });
    assert!(ready, "{}", watch.log());
    for path in ["/", "/readyz", "/healthz", "/metrics"] {
        let (code, body) = watch.get(path, Some(WATCH_TOKEN));
        outputs.push(format!("GET {path}: {code}\n{body}"));
        let (code, body) = watch.get(path, Some("wrong-token"));
        outputs.push(format!("GET {path} with a wrong token: {code}\n{body}"));
    }
    // A save, so that the log holds a pass that applied something.
    let mut spec = lab.spec();
    spec["tenants"][2]["replicas"] = json!(2);
    lab.write(&spec);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let log = watch.log();
    assert_eq!(watch.terminate(), Some(0));
    outputs.push(format!("watch log\n{log}"));

    let mut secrets = secret_values(&lab).await;
    secrets.extend([SECRET_ONE, FILE_TOKEN, WEBHOOK_SECRET, WATCH_TOKEN].map(str::to_owned));
    assert!(secrets.iter().any(|s| s.len() > 40), "certificates and keys were read: {}", secrets.len());
    outputs.push(lab.run(&["-vv", "destroy"], 1));
    outputs.extend(both_ways(&lab, &["destroy", "--yes", "--allow-destructive"]));

    let mut leaks = Vec::new();
    for output in &outputs {
        for secret in &secrets {
            if output.contains(secret.as_str()) {
                let first = output.lines().next().unwrap_or_default();
                leaks.push(format!("{first}: holds {}...", &secret[..8]));
            }
        }
    }
    assert!(leaks.is_empty(), "secret values in the output:\n{}", leaks.join("\n"));
    // The sweep read what it meant to: every command ran and logged at debug level.
    assert!(outputs.iter().filter(|o| o.contains("DEBUG")).count() > 10, "-vv logs at debug level");
}
