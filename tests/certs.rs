//! The certificates seclab issues, through their life: issued on the first apply, left alone
//! while valid, renewed when due, issued again when the names they must carry change or when
//! asked (`certs rotate`), with the pods that mount them rolled. Against the test control
//! plane, as the least-privilege user; the test plays the clock by storing a short-lived
//! certificate itself.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use support::lab::{TestLab, admin, api, audited};

use seclab::certs::{self, Authority};
use seclab::render::CertificateRequest;

fn certificates(lab: &TestLab) -> Vec<Value> {
    let status: Value = serde_json::from_str(&lab.run(&["certs", "status", "--output", "json"], 0)).unwrap();
    status["certificates"].as_array().unwrap().clone()
}

fn certificate<'a>(all: &'a [Value], secret: &str) -> &'a Value {
    all.iter().find(|c| c["secret"] == secret).unwrap_or_else(|| panic!("{secret} in {all:#?}"))
}

async fn pem(client: &kube::Client, namespace: &str, secret: &str, key: &str) -> String {
    let object = api(client, "", "v1", "Secret", Some(namespace)).get(secret).await.unwrap();
    String::from_utf8(STANDARD.decode(object.data["data"][key].as_str().unwrap()).unwrap()).unwrap()
}

async fn rollout_checksum(client: &kube::Client, namespace: &str) -> String {
    let set = api(client, "apps", "v1", "StatefulSet", Some(namespace)).get("opensearch").await.unwrap();
    set.data["spec"]["template"]["metadata"]["annotations"]["seclab.dev/certificates"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn certificates_are_renewed_when_due_reissued_when_asked_and_roll_the_pods() {
    let name = "t-certs";
    let lab = TestLab::new("opensearch.yaml", name);
    lab.run(&["apply"], 0);
    let client = admin().await;
    let secret = |purpose: &str| format!("{name}/opensearch-{purpose}-certs");

    // Issued once, each as the lab asks: nodes and admin under different subjects.
    let first = certificates(&lab);
    assert_eq!(first.len(), 4, "{first:#?}");
    assert!(first.iter().all(|c| c["state"] == "ok"), "{first:#?}");
    let admin_subject = &certificate(&first, &secret("admin"))["subject"];
    assert_eq!(admin_subject, "CN=admin,O=seclab");
    assert_eq!(certificate(&first, &secret("transport"))["subject"], "CN=opensearch,O=seclab");
    let http = certificate(&first, &secret("http"));
    assert!(http["daysLeft"].as_i64().unwrap() > 700, "{http}");
    let names: Vec<&str> = http["dnsNames"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(names.contains(&"opensearch") && names.contains(&"opensearch.t-certs.svc.cluster.local"), "{names:?}");
    let config = api(&client, "", "v1", "ConfigMap", Some(name)).get("opensearch-config").await.unwrap();
    let settings = config.data["data"]["opensearch.yml"].as_str().unwrap();
    assert!(settings.contains(r#"admin_dn: ["CN=admin,O=seclab"]"#), "{settings}");
    assert!(settings.contains(r#"nodes_dn: ["CN=opensearch,O=seclab"]"#), "{settings}");
    let checksum = rollout_checksum(&client, name).await;

    // A certificate ten days from expiry (renewBefore is 30 days by default), stored as
    // seclab would have stored it: `certs status` says so, and apply renews it.
    let ca = Authority::load(
        &pem(&client, name, "opensearch-ca-certs", "tls.crt").await,
        &pem(&client, name, "opensearch-ca-certs", "tls.key").await,
    )
    .unwrap();
    let request = CertificateRequest {
        common_name: "opensearch".into(),
        dns_names: names.iter().map(|n| n.to_string()).collect(),
        authority: Some("opensearch-ca-certs".into()),
        ..CertificateRequest::default()
    };
    let short = ca.issue_valid_for(&request, std::time::Duration::from_secs(10 * 86_400)).unwrap();
    let secrets = api(&client, "", "v1", "Secret", Some(name));
    let stored = secrets.get("opensearch-http-certs").await.unwrap();
    let mut data = stored.data["data"].clone();
    data["tls.crt"] = json!(STANDARD.encode(&short.cert_pem));
    data["tls.key"] = json!(STANDARD.encode(&short.key_pem));
    // Everything seclab's apply holds (an apply drops the fields of its manager it leaves out).
    let patch = json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
        "metadata": { "name": "opensearch-http-certs", "labels": stored.metadata.labels } });
    let as_seclab = PatchParams::apply("seclab").force();
    api(&client, "", "v1", "Secret", Some(name))
        .patch("opensearch-http-certs", &as_seclab, &Patch::Apply(&patch))
        .await
        .unwrap();
    let due = certificates(&lab);
    assert_eq!(certificate(&due, &secret("http"))["state"], "renew-soon", "{due:#?}");
    let status = lab.run(&["status"], 0);
    assert!(status.contains("renew-soon") && status.contains("opensearch-http-certs"), "{status}");
    let output = lab.run(&["apply"], 0);
    assert!(output.contains("updated Secret t-certs/opensearch-http-certs"), "{output}");
    assert!(output.contains("updated StatefulSet.apps t-certs/opensearch"), "the pods roll: {output}");
    let renewed = certificates(&lab);
    assert!(renewed.iter().all(|c| c["state"] == "ok"), "{renewed:#?}");
    assert!(certificate(&renewed, &secret("http"))["daysLeft"].as_i64().unwrap() > 700);
    assert_eq!(certificate(&renewed, &secret("ca"))["fingerprint"], certificate(&first, &secret("ca"))["fingerprint"]);
    assert_ne!(rollout_checksum(&client, name).await, checksum);

    // Nothing due: no certificate changes and nothing is written.
    let events = audited(|| assert!(lab.run(&["apply"], 0).contains("is up to date")));
    assert!(lab.writes(&events).is_empty(), "{:#?}", lab.writes(&events));

    // A new cluster domain: the server certificates carry the new names.
    let mut spec = lab.spec();
    spec["cluster"]["clusterDomain"] = json!("lab.internal");
    lab.write(&spec);
    lab.run(&["apply"], 0);
    let moved = certificates(&lab);
    let names = certificate(&moved, &secret("transport"))["dnsNames"].to_string();
    assert!(names.contains("opensearch-discovery.t-certs.svc.lab.internal"), "{names}");
    assert!(moved.iter().all(|c| c["state"] == "ok"), "{moved:#?}");

    // `certs rotate --ca`: a new CA, every leaf issued again, the pods rolled.
    let before = rollout_checksum(&client, name).await;
    let unknown = lab.run(&["certs", "rotate", "no-such-certs"], 1);
    assert!(unknown.contains("opensearch-http-certs"), "names the certificates there are: {unknown}");
    lab.run(&["certs", "rotate", "--ca"], 0);
    let rotated = certificates(&lab);
    for purpose in ["ca", "transport", "http", "admin"] {
        let (old, new) = (certificate(&moved, &secret(purpose)), certificate(&rotated, &secret(purpose)));
        assert_ne!(old["fingerprint"], new["fingerprint"], "{purpose}");
        assert_eq!(new["state"], "ok", "{new}");
    }
    assert_ne!(rollout_checksum(&client, name).await, before);
    let leaf = certs::inspect(&pem(&client, name, "opensearch-http-certs", "tls.crt").await).unwrap();
    assert_eq!(
        leaf.issuer,
        certs::inspect(&pem(&client, name, "opensearch-ca-certs", "tls.crt").await).unwrap().subject
    );

    // No private key in what seclab prints.
    let key = pem(&client, name, "opensearch-http-certs", "tls.key").await;
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let stored = STANDARD.encode(&key); // as the Secret holds it
    for args in
        [&["certs", "status"][..], &["certs", "status", "--output", "json"], &["status"], &["plan"], &["-vv", "apply"]]
    {
        let output = lab.run(args, 0);
        let leaked = output.contains(&body[..40]) || output.contains(&stored[..40]) || output.contains("PRIVATE KEY");
        assert!(!leaked, "{args:?} printed a key");
    }
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}
