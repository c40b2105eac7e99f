//! The Secrets apply creates: random values generated once and then kept, values read from
//! seclab's environment or a file, and certificates issued by seclab's own CA. Values live
//! only in the Secret manifests sent to the cluster; nothing here prints them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::certs::{Authority, Issued};
use crate::config::SecretSource;
use crate::render::{
    COMPONENT, CertificateRequest, MANAGED_BY, Object, ObjectKey, PART_OF, SecretOrigin, SecretToCreate,
};
use crate::scan::alerts::resolve_secret;

use super::observe::Live;

/// The component label of the Secrets apply creates.
const COMPONENT_NAME: &str = "secrets";

/// The key of a Secret.
pub fn secret_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey { group: String::new(), kind: "Secret".into(), namespace: Some(namespace.into()), name: name.into() }
}

/// The Secret objects for `secrets`, reusing values already in the `live` Secrets
/// (generated values and valid certificates are kept; env and file values are read now).
pub fn materialize(secrets: &[SecretToCreate], live: &Live, base_dir: &Path, lab: &str) -> Result<Vec<Object>, String> {
    let mut grouped: BTreeMap<ObjectKey, Vec<&SecretToCreate>> = BTreeMap::new();
    for secret in secrets {
        grouped.entry(secret_key(&secret.namespace, &secret.name)).or_default().push(secret);
    }
    // Authorities first, so that their leaves can be signed in the same pass.
    let mut authorities: HashMap<String, (Authority, bool)> = HashMap::new();
    let mut data_of: BTreeMap<ObjectKey, Map<String, Value>> = BTreeMap::new();
    let is_authority = |entries: &[&SecretToCreate]| matches!(&entries[0].origin, SecretOrigin::Certificate(r) if r.authority.is_none());
    let ordered =
        grouped.iter().filter(|(_, e)| is_authority(e)).chain(grouped.iter().filter(|(_, e)| !is_authority(e)));
    for (key, entries) in ordered {
        let existing = live.get(key).and_then(|secret| secret["data"].as_object());
        let mut data = Map::new();
        for entry in entries {
            let value = match &entry.origin {
                SecretOrigin::Certificate(request) => {
                    let namespace = key.namespace.as_deref().unwrap_or_default();
                    data = certificate(key, request, existing, namespace, &mut authorities)?;
                    break;
                }
                SecretOrigin::Generated => match existing.and_then(|d| d.get(&entry.key)) {
                    Some(kept) => kept.clone(),
                    None => Value::String(STANDARD.encode(random_password()?)),
                },
                SecretOrigin::Env(var) => {
                    encode(&resolve_secret(&SecretSource::Env(var.clone()), base_dir), key, entry)?
                }
                SecretOrigin::File(path) => {
                    encode(&resolve_secret(&SecretSource::File(path.clone()), base_dir), key, entry)?
                }
            };
            data.insert(entry.key.clone(), value);
        }
        data_of.insert(key.clone(), data);
    }
    Ok(data_of.into_iter().map(|(key, data)| secret_object(key, data, lab)).collect())
}

fn encode(value: &Result<String, String>, key: &ObjectKey, entry: &SecretToCreate) -> Result<Value, String> {
    match value {
        Ok(text) => Ok(Value::String(STANDARD.encode(text))),
        Err(why) => Err(format!("cannot fill key `{}` of {key}: {why}", entry.key)),
    }
}

fn random_password() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| format!("the system has no randomness to generate a password: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn decoded(data: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    let text = data?.get(key)?.as_str()?;
    String::from_utf8(STANDARD.decode(text).ok()?).ok()
}

/// The `tls.crt`, `tls.key` and `ca.crt` of a certificate Secret: the live ones when they
/// are complete and signed by the current CA, else newly issued.
fn certificate(
    key: &ObjectKey,
    request: &CertificateRequest,
    existing: Option<&Map<String, Value>>,
    namespace: &str,
    authorities: &mut HashMap<String, (Authority, bool)>,
) -> Result<Map<String, Value>, String> {
    let failed = |why: String| format!("cannot issue the certificate in {key}: {why}");
    let live = (decoded(existing, "tls.crt"), decoded(existing, "tls.key"), decoded(existing, "ca.crt"));
    let issued = match &request.authority {
        None => {
            let (authority, renewed) = match &live {
                (Some(cert), Some(private), Some(_)) => {
                    (Authority::load(cert, private).map_err(|e| failed(e.to_string()))?, false)
                }
                _ => (Authority::generate(request).map_err(|e| failed(e.to_string()))?, true),
            };
            let issued = authority.issued.clone();
            authorities.insert(format!("{namespace}/{}", key.name), (authority, renewed));
            (issued.clone(), issued.cert_pem)
        }
        Some(name) => {
            let (authority, renewed) = authorities
                .get(&format!("{namespace}/{name}"))
                .ok_or_else(|| failed(format!("its CA Secret {name} is not one seclab issues")))?;
            let ca_pem = authority.issued.cert_pem.clone();
            match live {
                (Some(cert_pem), Some(key_pem), Some(ca)) if !renewed && ca == ca_pem => {
                    (Issued { cert_pem, key_pem }, ca)
                }
                _ => (authority.issue(request).map_err(|e| failed(e.to_string()))?, ca_pem),
            }
        }
    };
    let (leaf, ca) = issued;
    let mut data = Map::new();
    data.insert("tls.crt".into(), Value::String(STANDARD.encode(leaf.cert_pem)));
    data.insert("tls.key".into(), Value::String(STANDARD.encode(leaf.key_pem)));
    data.insert("ca.crt".into(), Value::String(STANDARD.encode(ca)));
    Ok(data)
}

fn secret_object(key: ObjectKey, data: Map<String, Value>, lab: &str) -> Object {
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": key.name,
            "namespace": key.namespace,
            "labels": { MANAGED_BY: "seclab", PART_OF: lab, COMPONENT: COMPONENT_NAME },
        },
        "type": "Opaque",
        "data": data,
    });
    Object { key, template: "(created by apply)".into(), manifest: Arc::new(manifest) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, key: &str, origin: SecretOrigin) -> SecretToCreate {
        SecretToCreate { namespace: "n".into(), name: name.into(), key: key.into(), origin }
    }

    #[test]
    fn generated_values_are_kept_and_missing_env_is_named() {
        let secrets = [entry("db", "password", SecretOrigin::Generated)];
        let first = materialize(&secrets, &HashMap::new(), Path::new("."), "lab").unwrap();
        let value = first[0].manifest["data"]["password"].clone();
        assert_eq!(value.as_str().unwrap().len(), 44);
        let live = HashMap::from([(first[0].key.clone(), first[0].manifest.clone())]);
        let again = materialize(&secrets, &live, Path::new("."), "lab").unwrap();
        assert_eq!(again[0].manifest["data"]["password"], value);

        let missing = [entry("db", "password", SecretOrigin::Env("SECLAB_TEST_SURELY_UNSET".into()))];
        let error = materialize(&missing, &HashMap::new(), Path::new("."), "lab").unwrap_err();
        assert!(error.contains("SECLAB_TEST_SURELY_UNSET") && error.contains("Secret n/db"), "{error}");
    }

    #[test]
    fn certificates_are_issued_once_and_reissued_with_a_new_authority() {
        let ca = CertificateRequest { common_name: "CA".into(), dns_names: vec![], authority: None, client: false };
        let http = CertificateRequest {
            common_name: "os".into(),
            dns_names: vec!["os".into()],
            authority: Some("os-ca-certs".into()),
            client: false,
        };
        let secrets = [
            entry("os-http-certs", "tls.crt", SecretOrigin::Certificate(http.clone())),
            entry("os-ca-certs", "tls.crt", SecretOrigin::Certificate(ca)),
        ];
        let first = materialize(&secrets, &HashMap::new(), Path::new("."), "lab").unwrap();
        let by_name = |objects: &[Object], name: &str| {
            objects.iter().find(|o| o.key.name == name).unwrap().manifest.as_ref().clone()
        };
        assert_eq!(
            by_name(&first, "os-http-certs")["data"]["ca.crt"],
            by_name(&first, "os-ca-certs")["data"]["tls.crt"]
        );
        let live: Live = first.iter().map(|o| (o.key.clone(), o.manifest.clone())).collect();
        let again = materialize(&secrets, &live, Path::new("."), "lab").unwrap();
        assert_eq!(by_name(&again, "os-http-certs"), by_name(&first, "os-http-certs"));
        let without_ca: Live = live.into_iter().filter(|(k, _)| k.name != "os-ca-certs").collect();
        let renewed = materialize(&secrets, &without_ca, Path::new("."), "lab").unwrap();
        assert_ne!(
            by_name(&renewed, "os-http-certs")["data"]["tls.crt"],
            by_name(&first, "os-http-certs")["data"]["tls.crt"]
        );
    }
}
