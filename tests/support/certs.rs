//! The test plays the clock: it replaces a certificate seclab issued with one of a short life,
//! signed by the same CA and stored as seclab stores it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;

use seclab::certs::CertificateRequest;
use seclab::certs::{Authority, inspect};

use super::lab::api;

/// One key of a Secret, decoded.
pub fn secret_value(secret: &DynamicObject, key: &str) -> String {
    String::from_utf8(STANDARD.decode(secret.data["data"][key].as_str().unwrap()).unwrap()).unwrap()
}

/// Replaces the REST certificate of the OpenSearch lab in `namespace` with one valid for
/// `validity` (same CA, names and subject), applied with seclab's field manager and everything
/// seclab's apply holds (an apply drops the fields of its manager it leaves out). Returns when
/// the new certificate expires (Unix seconds).
pub async fn store_short_lived_rest_certificate(client: &kube::Client, namespace: &str, validity: Duration) -> i64 {
    let secrets = api(client, "", "v1", "Secret", Some(namespace));
    let ca = secrets.get("opensearch-ca-certs").await.unwrap();
    let ca = Authority::load(&secret_value(&ca, "tls.crt"), &secret_value(&ca, "tls.key")).unwrap();
    let stored = secrets.get("opensearch-http-certs").await.unwrap();
    let request = CertificateRequest {
        common_name: "opensearch".into(),
        dns_names: inspect(&secret_value(&stored, "tls.crt")).unwrap().dns_names,
        authority: Some("opensearch-ca-certs".into()),
        ..CertificateRequest::default()
    };
    let short = ca.issue_valid_for(&request, validity).unwrap();
    let mut data = stored.data["data"].clone();
    data["tls.crt"] = json!(STANDARD.encode(&short.cert_pem));
    data["tls.key"] = json!(STANDARD.encode(&short.key_pem));
    let patch = json!({ "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
        "metadata": { "name": "opensearch-http-certs", "labels": stored.metadata.labels } });
    let as_seclab = PatchParams::apply("seclab").force();
    secrets.patch("opensearch-http-certs", &as_seclab, &Patch::Apply(&patch)).await.unwrap();
    inspect(&short.cert_pem).unwrap().not_after
}

/// A CA of seclab's own certificate code, and a server certificate it signed for this machine
/// (`localhost`, `127.0.0.1`): `(ca, certificate, key)`, PEM.
pub fn loopback_server() -> (String, String, String) {
    let authority =
        Authority::generate(&CertificateRequest { common_name: "test CA".into(), ..CertificateRequest::default() })
            .unwrap();
    let request = CertificateRequest {
        common_name: "localhost".into(),
        dns_names: vec!["localhost".into(), "127.0.0.1".into()],
        authority: Some("test-ca".into()),
        ..CertificateRequest::default()
    };
    let leaf = authority.issue(&request).unwrap();
    (authority.issued.cert_pem, leaf.cert_pem, leaf.key_pem)
}
