//! The ECK operator for real (cloud-on-k8s v2.16.1, built from its Go module by
//! `scripts/testcluster build`, its own CRDs in the test cluster) against the homelab example:
//! it takes the Elasticsearch seclab renders and the certificate Secret seclab issues, and
//! makes the StatefulSet and the HTTP Service with that certificate mounted. Elasticsearch's
//! own pods stay simulated.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::cluster::Cluster;
use support::eck::EckOperator;
use support::lab::TestLab;
use support::node::{kubectl, kubectl_output, secret_value};
use support::watch::eventually;

fn get(kind: &str, namespace: &str, name: &str) -> Option<Value> {
    let output = kubectl_output(&["get", kind, name, "-n", namespace, "-o", "json"]);
    output.status.success().then(|| serde_json::from_slice(&output.stdout).unwrap())
}

/// The Warning events about `kind/name`, as `reason: message` lines.
fn warnings(namespace: &str, kind: &str, name: &str) -> Vec<String> {
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name},type=Warning");
    let list: Value = serde_json::from_str(&kubectl(&[
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        &selector,
        "-o",
        "json",
    ]))
    .unwrap();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|e| format!("{}: {}", e["reason"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
        .collect()
}

/// The same key in PKCS#8 (`BEGIN PRIVATE KEY`), as seclab wrote ECK's key before.
fn as_pkcs8(sec1_pem: &[u8]) -> Vec<u8> {
    let mut openssl = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    openssl.stdin.take().unwrap().write_all(sec1_pem).unwrap();
    let output = openssl.wait_with_output().unwrap();
    assert!(output.status.success());
    output.stdout
}

#[test]
fn the_eck_operator_takes_the_homelab_elasticsearch_and_serves_seclabs_certificate() {
    let lab = TestLab::new("homelab.yaml", "eck-homelab");
    // What a failed run on the same cluster left (a developer's cluster, not CI's fresh one).
    lab.seclab(&["destroy", "--yes", "--allow-destructive"]);
    let namespace = format!("namespace/{}", lab.name);
    let deleting = kubectl_output(&["get", &namespace, "-o", "jsonpath={.metadata.deletionTimestamp}"]);
    if !deleting.stdout.is_empty() {
        kubectl_output(&["wait", "--for=delete", &namespace, "--timeout=90s"]);
    }
    let operator = EckOperator::start(&lab.name);
    lab.run(&["apply"], 0);
    let ns = lab.name.as_str();
    let es = get("elasticsearch", ns, "esquickstart").expect("seclab created the Elasticsearch");
    let certificate = es["spec"]["http"]["tls"]["certificate"]["secretName"].as_str().unwrap().to_owned();
    let context = || format!("{}\n{}", operator.log(), Cluster::get().describe(ns));

    // The operator's own objects: the StatefulSet of the node set, the HTTP Service, and its
    // copy of the HTTP certificate.
    let (sts, internal) = ("esquickstart-es-default", "esquickstart-es-http-certs-internal");
    let made = eventually(Duration::from_secs(90), || {
        get("statefulset", ns, sts).is_some()
            && get("service", ns, "esquickstart-es-http").is_some()
            && get("secret", ns, internal).is_some()
    });
    assert!(made, "the operator made no StatefulSet, HTTP Service or certificate:\n{}", context());

    // The certificate ECK serves is seclab's, its key in the format ECK reads (SEC1).
    let key = secret_value(ns, &certificate, "tls.key");
    assert!(key.starts_with(b"-----BEGIN EC PRIVATE KEY-----"), "{}", String::from_utf8_lossy(&key[..30]));
    assert_eq!(secret_value(ns, internal, "tls.crt"), secret_value(ns, &certificate, "tls.crt"));
    let set = get("statefulset", ns, sts).unwrap();
    let pod = &set["spec"]["template"]["spec"];
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["secret"]["secretName"] == internal);
    let volume = volume.unwrap_or_else(|| panic!("no volume of {internal}: {pod}"))["name"].clone();
    let container = pod["containers"].as_array().unwrap().iter().find(|c| c["name"] == "elasticsearch").unwrap();
    let mount = container["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == volume).unwrap();
    assert_eq!(mount["mountPath"], "/usr/share/elasticsearch/config/http-certs");
    // Each node's data claim is the one seclab asked for, not ECK's default 1Gi.
    let claim = &set["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["name"], "elasticsearch-data");
    assert_eq!(
        claim["spec"]["resources"]["requests"]["storage"],
        es["spec"]["nodeSets"][0]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    );

    // The operator reports on it, and `seclab status` says what it reports.
    let reported = eventually(Duration::from_secs(30), || {
        let status = &get("elasticsearch", ns, "esquickstart").unwrap()["status"];
        status["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "RunningDesiredVersion"))
    });
    assert!(reported, "the operator wrote no conditions:\n{}", context());
    let mut said = String::new();
    let explained = eventually(Duration::from_secs(30), || {
        said = String::from_utf8_lossy(&lab.seclab(&["status"]).stdout).into_owned();
        said.contains(&format!("waiting  Elasticsearch.elasticsearch.k8s.elastic.co {ns}/esquickstart  health is "))
            && said.contains(", phase ")
    });
    assert!(explained, "{said}");

    // The key as seclab wrote it before (PKCS#8 EC): the operator refuses it in its own words
    // and makes nothing, so the check above would have failed on it.
    let refused_secret = "pkcs8-http-certs";
    let crt = lab.dir.path().join("tls.crt");
    let pkcs8 = lab.dir.path().join("tls.key");
    std::fs::write(&crt, secret_value(ns, &certificate, "tls.crt")).unwrap();
    std::fs::write(&pkcs8, as_pkcs8(&key)).unwrap();
    kubectl(&[
        "create",
        "secret",
        "generic",
        refused_secret,
        "-n",
        ns,
        &format!("--from-file=tls.crt={}", crt.display()),
        &format!("--from-file=tls.key={}", pkcs8.display()),
    ]);
    let mut refused = es.clone();
    refused.as_object_mut().unwrap().remove("status");
    refused["metadata"] = serde_json::json!({ "name": "pkcs8", "namespace": ns });
    refused["spec"]["http"]["tls"]["certificate"]["secretName"] = refused_secret.into();
    let manifest = lab.dir.path().join("pkcs8.json");
    std::fs::write(&manifest, refused.to_string()).unwrap();
    kubectl(&["create", "-f", manifest.to_str().unwrap()]);
    let mut seen = Vec::new();
    let told = eventually(Duration::from_secs(60), || {
        seen = warnings(ns, "Elasticsearch", "pkcs8");
        seen.iter().any(|w| w.starts_with("ReconciliationError: ") && w.contains("expected an RSA private key"))
    });
    assert!(told, "no refusal of the PKCS#8 key: {seen:?}\n{}", context());
    assert!(get("statefulset", ns, "pkcs8-es-default").is_none(), "a StatefulSet for a refused certificate");

    // Meanwhile seclab's Elasticsearch drew no warning from the operator, but for an
    // optimistic-concurrency conflict it retries (kwok's stage writes the status too).
    let mut drawn = warnings(ns, "Elasticsearch", "esquickstart");
    drawn.retain(|w| !w.contains("the object has been modified; please apply your changes to the latest version"));
    assert_eq!(drawn, Vec::<String>::new(), "{}", operator.log());
    kubectl(&["delete", "elasticsearch", "pkcs8", "-n", ns]);
    drop(operator);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}
