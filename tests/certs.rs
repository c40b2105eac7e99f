//! The certificates seclab issues, through their life: issued on the first apply, left alone
//! while valid, renewed when due, issued again when the names they must carry change or when
//! asked (`certs rotate`), with the pods that mount them rolled. Against the test control
//! plane, as the least-privilege user; the test plays the clock by storing a short-lived
//! certificate itself.

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::lab::{TestLab, admin, api, audited};

use seclab::certs;

fn certificates(lab: &TestLab) -> Vec<Value> {
    let status: Value = serde_json::from_str(&lab.run(&["certs", "status", "--output", "json"], 0)).unwrap();
    status["certificates"].as_array().unwrap().clone()
}

fn certificate<'a>(all: &'a [Value], secret: &str) -> &'a Value {
    all.iter().find(|c| c["secret"] == secret).unwrap_or_else(|| panic!("{secret} in {all:#?}"))
}

async fn pem(client: &kube::Client, namespace: &str, secret: &str, key: &str) -> String {
    support::certs::secret_value(&api(client, "", "v1", "Secret", Some(namespace)).get(secret).await.unwrap(), key)
}

/// `keytool -list` on Cortex's stores: the truststore holds one trusted certificate, the CA
/// with `fingerprint`, and the keystore opens and holds nothing.
async fn java_stores(client: &kube::Client, namespace: &str, fingerprint: &Value) {
    let secret =
        api(client, "", "v1", "Secret", Some(namespace)).get(&format!("{namespace}-cortex-search-tls")).await.unwrap();
    let raw = |key: &str| STANDARD.decode(secret.data["data"][key].as_str().unwrap()).unwrap();
    let password = String::from_utf8(raw("password")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = |store: &str| {
        let path = dir.path().join(store);
        std::fs::write(&path, raw(store)).unwrap();
        let output = std::process::Command::new("keytool")
            .args(["-list", "-v", "-storetype", "PKCS12", "-storepass", &password, "-keystore"])
            .arg(&path)
            .output()
            .expect("keytool runs (scripts/test installs a JDK)");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "keytool -list {store}: {text}{}", String::from_utf8_lossy(&output.stderr));
        text
    };
    // With the crate that wrote them...
    let (trusted, entries) = seclab::certs::store_contents(&raw("truststore.p12"), &password).unwrap();
    assert_eq!((trusted.len(), entries), (1, 1));
    assert_eq!(seclab::certs::store_contents(&raw("keystore.p12"), &password), Some((vec![], 0)));
    // ...and as the JDK reads them.
    let trust = list("truststore.p12");
    assert!(trust.contains("Your keystore contains 1 entry") && trust.contains("trustedCertEntry"), "{trust}");
    assert!(trust.contains(&format!("SHA256: {}", fingerprint.as_str().unwrap())), "{trust}");
    let keys = list("keystore.p12");
    assert!(keys.contains("Your keystore contains 0 entries"), "{keys}");
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
    // Cortex's stores, as the JDK reads them: the truststore holds the CA, the keystore nothing.
    java_stores(&client, name, &certificate(&first, &secret("ca"))["fingerprint"]).await;
    let cortex = api(&client, "", "v1", "ConfigMap", Some(name)).get("cortex-config").await.unwrap();
    let conf = cortex.data["data"]["application.conf"].as_str().unwrap();
    assert!(conf.contains("keyStore {") && conf.contains("/opt/cortex/search-tls/truststore.p12"), "{conf}");
    // OpenSearch's users file: the admin password, hashed, never as it is.
    let users = pem(&client, name, "t-certs-opensearch-security", "internal_users.yml").await;
    let hash = users.lines().find_map(|l| l.trim().strip_prefix("hash: ")).unwrap().trim_matches('"');
    assert!(bcrypt::verify(&lab.password, hash).unwrap() && !users.contains(&lab.password), "{users}");
    // The server certificates (REST and transport) in real TLS handshakes, each for its names.
    let ca_pem = pem(&client, name, "opensearch-ca-certs", "tls.crt").await;
    let admin = (
        pem(&client, name, "opensearch-admin-certs", "tls.crt").await,
        pem(&client, name, "opensearch-admin-certs", "tls.key").await,
    );
    for purpose in ["http", "transport"] {
        let served = format!("opensearch-{purpose}-certs");
        let names = certificate(&first, &secret(purpose))["dnsNames"].as_array().unwrap().clone();
        let names: Vec<&str> = names.iter().map(|n| n.as_str().unwrap()).collect();
        let server = (pem(&client, name, &served, "tls.crt").await, pem(&client, name, &served, "tls.key").await);
        tls::check(&ca_pem, (&server.0, &server.1), (&admin.0, &admin.1), &names);
        assert_eq!(jvm::check(&ca_pem, &server.0, "server"), Ok(()), "{purpose}");
    }
    // The CA signs for the lab's names only (name constraints). Every consumer accepts the
    // lab's own certificates under them: the JVM of OpenSearch and Cortex, the admin's too.
    assert_eq!(jvm::check(&ca_pem, &admin.0, "client"), Ok(()));
    // A certificate for another host, even signed with the CA's key, is refused by rustls;
    // the JVM does not apply a trust anchor's own constraints (RFC 5280, 6.1.1: optional; the
    // JDK's trust manager builds its anchors without them), as the README says.
    let ca_key = pem(&client, name, "opensearch-ca-certs", "tls.key").await;
    let authority = certs::Authority::load(&ca_pem, &ca_key).unwrap();
    let rogue = authority
        .issue(&seclab::certs::CertificateRequest {
            common_name: "opensearch".into(),
            dns_names: vec!["opensearch.example.org".into()],
            ..Default::default()
        })
        .unwrap();
    let refused = tls::serve(&ca_pem, (&rogue.cert_pem, &rogue.key_pem), "opensearch.example.org").unwrap_err();
    assert!(refused.contains("NameConstraintViolation"), "{refused}");
    assert_eq!(jvm::check(&ca_pem, &rogue.cert_pem, "server"), Ok(()), "the JVM changed: update the README");
    let ca = certificate(&first, &secret("ca"));
    assert_eq!(
        ca["permittedDnsNames"],
        json!([
            "opensearch-discovery",
            "opensearch-discovery.t-certs.svc",
            "opensearch-discovery.t-certs.svc.cluster.local",
            "opensearch",
            "opensearch.t-certs.svc",
            "opensearch.t-certs.svc.cluster.local"
        ])
    );

    // The REST certificate replaced by the test's (renewBefore is 30 days by default): ten
    // days from expiry, then expired a second ago. Each is due, and apply renews it.
    let mut checksum = checksum;
    for (validity, state) in [(10 * 86_400, "renew-soon"), (0, "expired")] {
        support::certs::store_short_lived_rest_certificate(&client, name, Duration::from_secs(validity)).await;
        let due = certificates(&lab);
        assert_eq!(certificate(&due, &secret("http"))["state"], state, "{due:#?}");
        let status = lab.run(&["status"], 0);
        assert!(status.contains(state) && status.contains("opensearch-http-certs"), "{status}");
        let output = lab.run(&["apply"], 0);
        assert!(output.contains("updated Secret t-certs/opensearch-http-certs"), "{output}");
        assert!(output.contains("updated StatefulSet.apps t-certs/opensearch"), "the pods roll: {output}");
        let renewed = certificates(&lab);
        assert!(renewed.iter().all(|c| c["state"] == "ok"), "{renewed:#?}");
        assert!(certificate(&renewed, &secret("http"))["daysLeft"].as_i64().unwrap() > 700);
        let same_ca = &certificate(&first, &secret("ca"))["fingerprint"];
        assert_eq!(&certificate(&renewed, &secret("ca"))["fingerprint"], same_ca);
        let rolled = rollout_checksum(&client, name).await;
        assert_ne!(rolled, checksum);
        checksum = rolled;
    }

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
    let stores = api(&client, "", "v1", "Secret", Some(name)).get("t-certs-cortex-search-tls").await.unwrap();
    let store_password =
        String::from_utf8(STANDARD.decode(stores.data["data"]["password"].as_str().unwrap()).unwrap()).unwrap();
    let commands: [(&[&str], i32); 6] = [
        (&["certs", "status"], 0),
        (&["certs", "status", "--output", "json"], 0),
        (&["status"], 0),
        (&["plan"], 0),
        (&["-vv", "apply"], 0),
        (&["certs", "rotate", "no-such-certs"], 1), // an error
    ];
    for (args, code) in commands {
        let output = lab.run(args, code);
        let leaked = output.contains(&body[..40])
            || output.contains(&stored[..40])
            || output.contains("PRIVATE KEY")
            || output.contains(&store_password);
        assert!(!leaked, "{args:?} printed a key");
    }
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// The JVM's own PKIX validation (tests/fixtures/java/PkixCheck.java, compiled once per run
/// with the JDK scripts/test installs).
mod jvm {
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::OnceLock;

    fn classes() -> &'static PathBuf {
        static CLASSES: OnceLock<PathBuf> = OnceLock::new();
        CLASSES.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("seclab-pkix-{}", std::process::id()));
            let source = crate::support::root().join("tests/fixtures/java/PkixCheck.java");
            let output = Command::new("javac").arg("-d").arg(&dir).arg(source).output().expect("javac runs");
            assert!(output.status.success(), "javac: {}", String::from_utf8_lossy(&output.stderr));
            dir
        })
    }

    /// Whether the JVM trusts `leaf` (PEM) as a `server` or `client` certificate under `ca`;
    /// its reason when it does not.
    pub fn check(ca: &str, leaf: &str, role: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let (ca_path, leaf_path) = (dir.path().join("ca.pem"), dir.path().join("leaf.pem"));
        std::fs::write(&ca_path, ca).unwrap();
        std::fs::write(&leaf_path, leaf).unwrap();
        let output = Command::new("java")
            .arg("-cp")
            .arg(classes())
            .arg("PkixCheck")
            .arg(&ca_path)
            .arg(&leaf_path)
            .arg(role)
            .output()
            .expect("java runs");
        let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() { Ok(()) } else { Err(format!("{said}{}", String::from_utf8_lossy(&output.stderr))) }
    }
}

/// TLS handshakes with rustls, in memory: the certificates work as a server and a client
/// would use them.
mod tls {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn chain(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes()).map(Result::unwrap).collect()
    }

    fn key(pem: &str) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn roots(ca: &str) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in chain(ca) {
            roots.add(cert).unwrap();
        }
        Arc::new(roots)
    }

    /// Runs a handshake between `server` and `client` for `name`, to the end or the first error.
    fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>, name: &str) -> Result<(), rustls::Error> {
        let mut server = ServerConnection::new(server.clone())?;
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut client = ClientConnection::new(client.clone(), name)?;
        for _ in 0..10 {
            let mut bytes = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut bytes).unwrap();
            }
            server.read_tls(&mut bytes.as_slice()).unwrap();
            server.process_new_packets()?;
            bytes.clear();
            while server.wants_write() {
                server.write_tls(&mut bytes).unwrap();
            }
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    /// A handshake with `cert` serving `name` to a client that trusts only `ca`; the client's
    /// error when it fails.
    pub fn serve(ca: &str, (cert, private): (&str, &str), name: &str) -> Result<(), String> {
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain(cert), key(private))
            .unwrap();
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(ca))
            .with_no_client_auth();
        handshake(&Arc::new(server), &Arc::new(client), name).map_err(|e| format!("{e:?}"))
    }

    /// The REST certificate serves each of its names (a wildcard as one of its hosts) to a
    /// client that trusts only the lab's CA, and no other name; the admin certificate is
    /// accepted as a client certificate by a server that requires one, and a client without
    /// one is refused.
    pub fn check(ca: &str, (cert, private): (&str, &str), (admin, admin_key): (&str, &str), names: &[&str]) {
        let server = |client_auth: bool| {
            let builder =
                ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap();
            let builder = if client_auth {
                let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider()).build().unwrap();
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_no_client_auth()
            };
            Arc::new(builder.with_single_cert(chain(cert), key(private)).unwrap())
        };
        let client = |as_admin: bool| {
            let builder = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots(ca));
            let config = if as_admin {
                builder.with_client_auth_cert(chain(admin), key(admin_key)).unwrap()
            } else {
                builder.with_no_client_auth()
            };
            Arc::new(config)
        };
        for name in names {
            let host = name.replace('*', "opensearch-0");
            handshake(&server(false), &client(false), &host).unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        let other = handshake(&server(false), &client(false), "opensearch.elsewhere.example");
        assert!(matches!(other, Err(rustls::Error::InvalidCertificate(_))), "{other:?}");
        handshake(&server(true), &client(true), names[0]).expect("the admin certificate is a client certificate");
        assert!(handshake(&server(true), &client(false), names[0]).is_err(), "a client without a certificate");
    }
}
