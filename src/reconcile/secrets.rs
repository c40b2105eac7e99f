//! The Secrets apply creates: random values generated once and then kept, values read from
//! seclab's environment or a file, and certificates issued by seclab's own CA. Values live
//! only in the Secret manifests sent to the cluster; nothing here prints them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::certs::{self, Authority, CertificateRequest, Issued};
use crate::cluster::{Cluster, ClusterError};
use crate::config::{ResolveError, SecretSource};
use crate::identity::{self, APPLYSET_PART_OF, COMPONENT, ObjectKey};
use crate::render::{Object, SecretOrigin, SecretToCreate};

use super::model::{Desired, Live, SecretError, labelled, secret_key};

/// The component label of the Secrets apply creates.
const COMPONENT_NAME: &str = "secrets";

/// The `data` of the Secrets named `names` in `namespace`, by name, read with one LIST (a
/// Secret that does not exist is left out).
pub async fn secret_data(
    cluster: &Cluster,
    namespace: &str,
    names: &HashSet<&str>,
) -> Result<HashMap<String, Value>, ClusterError> {
    let kind = cluster.kind("v1", "Secret").await?;
    let found = cluster
        .list(&kind, Some(namespace), |mut secret| {
            let name = secret["metadata"]["name"].as_str().filter(|name| names.contains(name))?.to_owned();
            Some((name, secret["data"].take()))
        })
        .await?;
    Ok(found.into_iter().collect())
}

/// The Secret objects for `secrets`, reusing values already in the `live` Secrets
/// (generated values and valid certificates are kept; env and file values are read now).
pub fn materialize(
    secrets: &[SecretToCreate],
    live: &Live,
    base_dir: &Path,
    lab: &str,
) -> Result<Vec<Object>, SecretError> {
    let mut grouped: BTreeMap<ObjectKey, Vec<&SecretToCreate>> = BTreeMap::new();
    for secret in secrets {
        grouped.entry(secret_key(&secret.namespace, &secret.name)).or_default().push(secret);
    }
    let mut authorities: HashMap<String, (Authority, bool)> = HashMap::new();
    let mut data_of: BTreeMap<ObjectKey, Map<String, Value>> = BTreeMap::new();
    // Authorities first, so that their leaves can be signed in the same pass; files derived
    // from another Secret's value last.
    let rank = |entries: &[&SecretToCreate]| match &entries[0].origin {
        SecretOrigin::Certificate(r) if r.authority.is_none() => 0,
        SecretOrigin::InternalUsers { .. } | SecretOrigin::TrustStores(_) => 2,
        _ => 1,
    };
    let ordered = (0..3).flat_map(|r| grouped.iter().filter(move |(_, e)| rank(e) == r));
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
                SecretOrigin::TrustStores(authority) => {
                    let namespace = key.namespace.as_deref().unwrap_or_default();
                    let ca =
                        authorities.get(&format!("{namespace}/{authority}")).map(|(a, _)| a.issued.cert_pem.clone());
                    let ca = ca.ok_or_else(|| SecretError::NotSeclabs {
                        key: key.to_string(),
                        reason: format!("its CA Secret {authority} is not one seclab issues"),
                    })?;
                    data = trust_stores(key, &ca, existing)?;
                    break;
                }
                SecretOrigin::InternalUsers { secret, key: password_key } => {
                    let namespace = key.namespace.as_deref().unwrap_or_default();
                    let holder = secret_key(namespace, secret);
                    let password = data_of.get(&holder).and_then(|d| decoded(Some(d), password_key));
                    let password = password.ok_or_else(|| SecretError::NotSeclabs {
                        key: key.to_string(),
                        reason: format!("the password in {holder} is not one seclab fills in"),
                    })?;
                    let file = match decoded(existing, &entry.key) {
                        Some(file) if users_file_matches(&file, &password) => file,
                        // OpenSearch reads this file once, when it makes its security index:
                        // a new hash would never reach it, and Cortex would stop logging in.
                        Some(_) => {
                            return Err(SecretError::AdminPassword {
                                holder: holder.to_string(),
                                key: key.to_string(),
                            });
                        }
                        None => users_file(&password)
                            .map_err(|source| SecretError::UsersFile { key: key.to_string(), source })?,
                    };
                    Value::String(STANDARD.encode(file))
                }
                SecretOrigin::Env(var) => encode(SecretSource::Env(var.clone()).resolve(base_dir), key, entry)?,
                SecretOrigin::File(path) => encode(SecretSource::File(path.clone()).resolve(base_dir), key, entry)?,
            };
            data.insert(entry.key.clone(), value);
        }
        data_of.insert(key.clone(), data);
    }
    Ok(data_of
        .into_iter()
        .map(|(key, data)| {
            let guards_data = grouped[&key].iter().any(|entry| entry.guards_data);
            secret_object(key, data, lab, guards_data)
        })
        .collect())
}

/// `truststore.p12` (trusting `ca_pem`), an empty `keystore.p12`, and their `password`: the
/// live ones while the truststore holds exactly that CA (new stores would be new bytes, and a
/// write, on every apply), else new ones.
fn trust_stores(
    key: &ObjectKey,
    ca_pem: &str,
    existing: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, SecretError> {
    let failed = |source| SecretError::Stores { key: key.to_string(), source };
    let raw = |key: &str| existing?.get(key)?.as_str().and_then(|text| STANDARD.decode(text).ok());
    let ca = certs::der(ca_pem).map_err(failed)?;
    if let (Some(trust), Some(keys), Some(password)) =
        (raw("truststore.p12"), raw("keystore.p12"), decoded(existing, "password"))
    {
        let trusts_ca = certs::store_contents(&trust, &password)
            .is_some_and(|(trusted, entries)| trusted == [ca.clone()] && entries == 1);
        let empty = certs::store_contents(&keys, &password).is_some_and(|(_, entries)| entries == 0);
        if trusts_ca && empty {
            return Ok(existing.cloned().unwrap_or_default());
        }
    }
    let password = random_password()?;
    let mut data = Map::new();
    let trust = certs::truststore(ca_pem, &password).map_err(failed)?;
    let keys = certs::empty_keystore(&password).map_err(failed)?;
    data.insert("truststore.p12".into(), Value::String(STANDARD.encode(trust)));
    data.insert("keystore.p12".into(), Value::String(STANDARD.encode(keys)));
    data.insert("password".into(), Value::String(STANDARD.encode(password)));
    Ok(data)
}

/// OpenSearch's `internal_users.yml` with the `admin` user (all access through the default
/// role mapping of its `admin` backend role) and a bcrypt hash of `password`.
fn users_file(password: &str) -> Result<String, bcrypt::BcryptError> {
    let hash = bcrypt::hash_with_result(password, bcrypt::DEFAULT_COST)?.format_for_version(bcrypt::Version::TwoY);
    Ok(format!(
        "# Written by seclab: the admin user, its password hashed.\n_meta:\n  type: \"internalusers\"\n  config_version: 2\nadmin:\n  hash: \"{hash}\"\n  reserved: true\n  backend_roles: [\"admin\"]\n  description: \"seclab's admin user\"\n"
    ))
}

/// Whether the users file `file` holds the hash of `password` (each pair is checked once per
/// process: a bcrypt check is slow on purpose).
fn users_file_matches(file: &str, password: &str) -> bool {
    static CHECKED: LazyLock<Mutex<HashSet<[u8; 32]>>> = LazyLock::new(Mutex::default);
    let Some(hash) = file.lines().find_map(|l| l.trim().strip_prefix("hash: ")).map(|h| h.trim_matches('"')) else {
        return false;
    };
    let pair: [u8; 32] = Sha256::digest(format!("{hash}\n{password}")).into();
    let checked = || CHECKED.lock().unwrap_or_else(PoisonError::into_inner);
    if checked().contains(&pair) {
        return true;
    }
    let matches = bcrypt::verify(password, hash).unwrap_or(false);
    if matches {
        checked().insert(pair);
    }
    matches
}

fn encode(value: Result<String, ResolveError>, key: &ObjectKey, entry: &SecretToCreate) -> Result<Value, SecretError> {
    let text =
        value.map_err(|source| SecretError::Unresolved { key: key.to_string(), entry: entry.key.clone(), source })?;
    Ok(Value::String(STANDARD.encode(text)))
}

fn random_password() -> Result<String, SecretError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(SecretError::Randomness)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn decoded(data: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    let text = data?.get(key)?.as_str()?;
    String::from_utf8(STANDARD.decode(text).ok()?).ok()
}

/// The `tls.crt`, `tls.key` and `ca.crt` of a certificate Secret: the live ones while they
/// can stay (see [`kept_certificate`]), else newly issued. A new CA re-issues every leaf it
/// signs.
fn certificate(
    key: &ObjectKey,
    request: &CertificateRequest,
    existing: Option<&Map<String, Value>>,
    namespace: &str,
    authorities: &mut HashMap<String, (Authority, bool)>,
) -> Result<Map<String, Value>, SecretError> {
    let failed = |source| SecretError::Certificate { key: key.to_string(), source };
    let live = (decoded(existing, "tls.crt"), decoded(existing, "tls.key"), decoded(existing, "ca.crt"));
    let issued = match &request.authority {
        None => {
            let kept = match &live {
                (Some(cert), Some(private), Some(_)) if kept_certificate(key, request, cert) => {
                    Some(Authority::load(cert, private).map_err(failed)?)
                }
                _ => None,
            };
            let renewed = kept.is_none();
            let authority = match kept {
                Some(authority) => authority,
                None => Authority::generate(request).map_err(failed)?,
            };
            let issued = authority.issued.clone();
            authorities.insert(format!("{namespace}/{}", key.name), (authority, renewed));
            (issued.clone(), issued.cert_pem)
        }
        Some(name) => {
            let (authority, renewed) =
                authorities.get(&format!("{namespace}/{name}")).ok_or_else(|| SecretError::NotSeclabs {
                    key: key.to_string(),
                    reason: format!("its CA Secret {name} is not one seclab issues"),
                })?;
            let ca_pem = authority.issued.cert_pem.clone();
            match live {
                (Some(cert_pem), Some(key_pem), Some(ca))
                    if !renewed
                        && ca == ca_pem
                        && crate::certs::key_in_format(&key_pem, request.key_format)
                        && kept_certificate(key, request, &cert_pem) =>
                {
                    (Issued { cert_pem, key_pem }, ca)
                }
                _ => (authority.issue(request).map_err(failed)?, ca_pem),
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

/// Whether the stored certificate `cert_pem` can stay as `request`'s: readable, as requested
/// (subject, DNS names), not expired, not within `renewBefore` of expiry, and not to be
/// rotated. Why it cannot is logged (never anything of the key).
fn kept_certificate(key: &ObjectKey, request: &CertificateRequest, cert_pem: &str) -> bool {
    if request.reissue {
        tracing::info!("issuing the certificate in {key} again, as asked");
        return false;
    }
    let now = jiff::Timestamp::now().as_second();
    let state = match certs::inspect(cert_pem) {
        Ok(found) => certs::assess(&found, request, now, request.renew_before),
        Err(error) => certs::State::Mismatch(format!("it cannot be read: {error}")),
    };
    match &state {
        certs::State::Ok => return true,
        certs::State::RenewSoon => tracing::info!("renewing the certificate in {key}: it expires within renewBefore"),
        certs::State::Expired => tracing::warn!("issuing the certificate in {key} again: it has expired"),
        certs::State::Mismatch(why) => tracing::info!("issuing the certificate in {key} again: {why}"),
    }
    false
}

/// The pod-template annotation that holds a checksum of the certificates the pods mount.
pub const CERTIFICATES_ANNOTATION: &str = "seclab.dev/certificates";

/// Marks the pod template of every workload in `objects` that mounts one of the certificate
/// Secrets `created` with a checksum of those certificates: a renewed certificate changes the
/// template, and the workload's controller rolls the pods (OpenSearch reads its certificates
/// only at start). Unchanged certificates leave the manifests as they are.
pub fn roll_on_certificates(objects: &mut [(Object, String)], requested: &[SecretToCreate], created: &[Object]) {
    let certificates: BTreeMap<&ObjectKey, String> = created
        .iter()
        .filter(|secret| {
            requested.iter().any(|r| {
                matches!(r.origin, SecretOrigin::Certificate(_) | SecretOrigin::TrustStores(_))
                    && secret.key.namespace.as_deref() == Some(r.namespace.as_str())
                    && secret.key.name == r.name
            })
        })
        .map(|secret| {
            let data = &secret.manifest["data"];
            let digest = Sha256::digest(format!("{}\n{}\n{}", data["tls.crt"], data["ca.crt"], data["truststore.p12"]));
            (&secret.key, hex::encode(digest))
        })
        .collect();
    if certificates.is_empty() {
        return;
    }
    for (object, _) in objects.iter_mut() {
        let Some(volumes) = object.manifest["spec"]["template"]["spec"]["volumes"].as_array() else { continue };
        let namespace = object.key.namespace.as_deref().unwrap_or_default();
        let mut mounted: Vec<&str> = volumes
            .iter()
            .flat_map(|volume| {
                let projected = volume["projected"]["sources"].as_array().into_iter().flatten();
                std::iter::once(&volume["secret"]["secretName"])
                    .chain(projected.map(|source| &source["secret"]["name"]))
            })
            .filter_map(Value::as_str)
            .filter_map(|name| certificates.get(&secret_key(namespace, name)).map(String::as_str))
            .collect();
        if mounted.is_empty() {
            continue;
        }
        mounted.sort_unstable();
        let checksum = hex::encode(&Sha256::digest(mounted.join("\n"))[..16]);
        let annotations = &object.manifest["spec"]["template"]["metadata"]["annotations"];
        if annotations[CERTIFICATES_ANNOTATION] != checksum.as_str() {
            let manifest = Arc::make_mut(&mut object.manifest);
            manifest["spec"]["template"]["metadata"]["annotations"][CERTIFICATES_ANNOTATION] = Value::String(checksum);
        }
    }
}

/// The Job annotation (`"true"`) that makes a Job run again when a Secret apply creates and
/// the Job reads changes value: the last `-` part of its name becomes a hash of the rendered
/// name and those values (a Job cannot be changed in place, only created anew).
pub const RERUN_ANNOTATION: &str = "seclab.dev/rerun-on-secrets";

/// The label of a Secret holding a generated credential that stored data outlives (a
/// database's password): pruned or destroyed only with `--allow-destructive`, like the
/// volumes.
pub const GUARDS_DATA: &str = "seclab.dev/guards-data";

/// Whether the live object `live` of `key` is such a Secret.
pub fn guards_data(key: &ObjectKey, live: &Value) -> bool {
    key.group.is_empty() && key.kind == "Secret" && live["metadata"]["labels"][GUARDS_DATA] == "true"
}

/// The Secrets, among those apply creates (`created`), that the containers of each
/// [`RERUN_ANNOTATION`] Job of `objects` read through `secretKeyRef`, with the keys read.
pub fn read_by_rerun_jobs(objects: &[(Object, String)], created: &[ObjectKey]) -> Vec<(ObjectKey, String)> {
    let mut read = Vec::new();
    for (object, _) in objects.iter().filter(|(o, _)| is_rerun_job(o)) {
        let namespace = object.key.namespace.as_deref().unwrap_or_default();
        let containers = object.manifest["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten();
        for variable in containers.flat_map(|c| c["env"].as_array().into_iter().flatten()) {
            let reference = &variable["valueFrom"]["secretKeyRef"];
            if let (Some(name), Some(key)) = (reference["name"].as_str(), reference["key"].as_str()) {
                let secret = secret_key(namespace, name);
                if created.contains(&secret) && !read.iter().any(|(s, k)| *s == secret && k == key) {
                    read.push((secret, key.to_owned()));
                }
            }
        }
    }
    read
}

/// Renames every [`RERUN_ANNOTATION`] Job of `objects` after its spec and the values
/// `value_of` gives for the Secrets it reads (a Secret's base64 value of a key; `None` when it
/// has none yet).
pub fn name_rerun_jobs(
    objects: &mut [(Object, String)],
    created: &[ObjectKey],
    value_of: &dyn Fn(&ObjectKey, &str) -> Option<String>,
) {
    let read = read_by_rerun_jobs(objects, created);
    for (object, _) in objects.iter_mut().filter(|(o, _)| is_rerun_job(o)) {
        let namespace = object.key.namespace.clone().unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(object.key.name.as_bytes());
        // Its spec too: a Job's template cannot change, so a Job that does something else
        // (a seclab whose script changed) is a new Job under a new name.
        hasher.update(object.manifest["spec"].to_string());
        for (secret, key) in read.iter().filter(|(s, _)| s.namespace.as_deref() == Some(namespace.as_str())) {
            hasher.update(format!("\n{}/{key}=", secret.name));
            hasher.update(value_of(secret, key).unwrap_or_default());
        }
        let Some((stem, _)) = object.key.name.rsplit_once('-') else { continue };
        let name = format!("{stem}-{}", hex::encode(&hasher.finalize()[..4]));
        Arc::make_mut(&mut object.manifest)["metadata"]["name"] = Value::String(name.clone());
        object.key.name = name;
    }
}

fn is_rerun_job(object: &Object) -> bool {
    object.key.kind == "Job" && object.manifest["metadata"]["annotations"][RERUN_ANNOTATION] == "true"
}

/// The name of a [`RERUN_ANNOTATION`] Job without its last `-` part, which apply sets.
pub fn rerun_stem(object: &Object) -> Option<&str> {
    is_rerun_job(object).then(|| object.key.name.rsplit_once('-').map(|(stem, _)| stem)).flatten()
}

fn secret_object(key: ObjectKey, data: Map<String, Value>, lab: &str, guards_data: bool) -> Object {
    let mut labels = identity::labels(lab);
    labels[COMPONENT] = json!(COMPONENT_NAME);
    if guards_data {
        labels[GUARDS_DATA] = json!("true");
    }
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": key.name,
            "namespace": key.namespace,
            "labels": labels,
        },
        "type": "Opaque",
        "data": data,
    });
    Object { key, template: "(created by apply)".into(), manifest: Arc::new(manifest) }
}

/// Fills in the Secrets `desired` asks apply to create, from the `live` ones, the environment,
/// files under `base_dir` and the random source, and marks the pods that mount a certificate
/// with its checksum (they roll when it is renewed). The I/O of a plan that is not the
/// cluster's: kept out of the pure decision.
pub fn fill(desired: &mut Desired, live: &Live, base_dir: &Path, lab: &str) -> Result<(), SecretError> {
    let id = desired.objects.first().and_then(|(o, _)| o.manifest["metadata"]["labels"][APPLYSET_PART_OF].as_str());
    let id = id.unwrap_or_default().to_owned();
    let requested = std::mem::take(&mut desired.secrets);
    let created = materialize(&requested, live, base_dir, lab)?;
    roll_on_certificates(&mut desired.objects, &requested, &created);
    let value_of = |secret: &ObjectKey, key: &str| {
        let found = created.iter().find(|o| o.key == *secret)?;
        found.manifest["data"][key].as_str().map(str::to_owned)
    };
    name_rerun_jobs(&mut desired.objects, &desired.secret_keys, &value_of);
    desired.objects.extend(created.into_iter().map(|object| labelled(object, &id)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, key: &str, origin: SecretOrigin) -> SecretToCreate {
        SecretToCreate { namespace: "n".into(), name: name.into(), key: key.into(), origin, guards_data: false }
    }

    #[test]
    fn a_generated_credential_that_data_outlives_is_labelled_and_recognised() {
        let key = secret_key("n", "lab-mysql-root");
        let guarded = secret_object(key.clone(), Map::new(), "lab", true);
        assert!(guards_data(&key, &guarded.manifest), "{}", guarded.manifest);
        let plain = secret_object(key.clone(), Map::new(), "lab", false);
        assert!(!guards_data(&key, &plain.manifest));
        let config_map = ObjectKey { kind: "ConfigMap".into(), ..key };
        assert!(!guards_data(&config_map, &guarded.manifest), "only a Secret");
    }

    #[test]
    fn a_rerun_job_is_named_after_the_created_secrets_it_reads_and_nothing_else() {
        let job = |secret: &str| {
            let manifest = json!({ "apiVersion": "batch/v1", "kind": "Job",
                "metadata": { "name": "db-setup-00000000", "namespace": "n", "annotations": { RERUN_ANNOTATION: "true" } },
                "spec": { "template": { "spec": { "containers": [{ "env": [
                    { "name": "P", "valueFrom": { "secretKeyRef": { "name": secret, "key": "password" } } }] }] } } } });
            let key = ObjectKey {
                group: "batch".into(),
                kind: "Job".into(),
                namespace: Some("n".into()),
                name: "db-setup-00000000".into(),
            };
            vec![(Object { key, template: String::new(), manifest: Arc::new(manifest) }, "batch/v1".to_owned())]
        };
        let created = [secret_key("n", "db")];
        let named = |secret: &str, value: &str| {
            let mut objects = job(secret);
            name_rerun_jobs(&mut objects, &created, &|_, _| Some(value.to_owned()));
            assert_eq!(objects[0].0.manifest["metadata"]["name"], objects[0].0.key.name.as_str());
            objects[0].0.key.name.clone()
        };
        assert_eq!(named("db", "one"), named("db", "one"));
        assert_ne!(named("db", "one"), named("db", "two"));
        assert!(named("db", "one").starts_with("db-setup-") && named("db", "one").len() == "db-setup-00000000".len());
        // A Secret apply does not create (a `secretRef`) does not take part.
        assert_eq!(named("theirs", "one"), named("theirs", "two"));
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
        // What failed, then why, as `caused by:` shows them.
        assert_eq!(
            crate::causes::chain(&error),
            ["cannot fill key `password` of Secret n/db", "environment variable SECLAB_TEST_SURELY_UNSET is not set"]
        );
    }

    #[test]
    fn certificates_are_issued_once_and_reissued_with_a_new_authority() {
        let ca = CertificateRequest { common_name: "CA".into(), ..CertificateRequest::default() };
        let http = CertificateRequest {
            common_name: "os".into(),
            dns_names: vec!["os".into()],
            authority: Some("os-ca-certs".into()),
            ..CertificateRequest::default()
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

    #[test]
    fn certificates_are_renewed_when_due_and_reissued_when_asked() {
        let month = std::time::Duration::from_secs(30 * 86_400);
        let ca = CertificateRequest { common_name: "CA".into(), renew_before: month, ..CertificateRequest::default() };
        let http = CertificateRequest {
            common_name: "os".into(),
            dns_names: vec!["os".into(), "os.n.svc".into()],
            authority: Some("os-ca-certs".into()),
            renew_before: month,
            ..CertificateRequest::default()
        };
        let secrets = |http: &CertificateRequest| {
            [
                entry("os-http-certs", "tls.crt", SecretOrigin::Certificate(http.clone())),
                entry("os-ca-certs", "tls.crt", SecretOrigin::Certificate(ca.clone())),
            ]
        };
        let first = materialize(&secrets(&http), &HashMap::new(), Path::new("."), "lab").unwrap();
        let pem = |objects: &[Object], name: &str, key: &str| {
            let object = objects.iter().find(|o| o.key.name == name).unwrap();
            decoded(object.manifest["data"].as_object(), key).unwrap()
        };
        let mut live: Live = first.iter().map(|o| (o.key.clone(), o.manifest.clone())).collect();
        // Nothing due: the very same certificates.
        let again = materialize(&secrets(&http), &live, Path::new("."), "lab").unwrap();
        assert_eq!(pem(&again, "os-http-certs", "tls.crt"), pem(&first, "os-http-certs", "tls.crt"));

        // A leaf ten days from expiry (renewBefore 30 days), and one expired a second ago.
        let authority = Authority::load(&pem(&first, "os-ca-certs", "tls.crt"), &pem(&first, "os-ca-certs", "tls.key"));
        let authority = authority.unwrap();
        for validity in [10 * 86_400, 0] {
            let short = authority.issue_valid_for(&http, std::time::Duration::from_secs(validity)).unwrap();
            let mut planted = first.iter().find(|o| o.key.name == "os-http-certs").unwrap().manifest.as_ref().clone();
            planted["data"]["tls.crt"] = Value::String(STANDARD.encode(&short.cert_pem));
            live.insert(secret_key("n", "os-http-certs"), Arc::new(planted));
            let renewed = materialize(&secrets(&http), &live, Path::new("."), "lab").unwrap();
            let cert = certs::inspect(&pem(&renewed, "os-http-certs", "tls.crt")).unwrap();
            let now = jiff::Timestamp::now().as_second();
            assert!(cert.not_after - now > 700 * 86_400, "renewed for two years: {cert:?}");
            assert_eq!(pem(&renewed, "os-ca-certs", "tls.crt"), pem(&first, "os-ca-certs", "tls.crt"), "same CA");
        }

        // New DNS names (a cluster domain changed), and a rotation asked for.
        live = first.iter().map(|o| (o.key.clone(), o.manifest.clone())).collect();
        let mut renamed = http.clone();
        renamed.dns_names[1] = "os.n.svc.lab.internal".into();
        let reissued = materialize(&secrets(&renamed), &live, Path::new("."), "lab").unwrap();
        assert_eq!(certs::inspect(&pem(&reissued, "os-http-certs", "tls.crt")).unwrap().dns_names, renamed.dns_names);
        let mut rotated = http.clone();
        rotated.reissue = true;
        let reissued = materialize(&secrets(&rotated), &live, Path::new("."), "lab").unwrap();
        assert_ne!(pem(&reissued, "os-http-certs", "tls.crt"), pem(&first, "os-http-certs", "tls.crt"));
        assert_ne!(pem(&reissued, "os-http-certs", "tls.key"), pem(&first, "os-http-certs", "tls.key"));
    }

    #[test]
    fn pods_mounting_a_certificate_roll_when_it_changes() {
        let ca = CertificateRequest { common_name: "CA".into(), ..CertificateRequest::default() };
        let http = CertificateRequest {
            common_name: "os".into(),
            authority: Some("os-ca-certs".into()),
            ..CertificateRequest::default()
        };
        let requested = [
            entry("os-http-certs", "tls.crt", SecretOrigin::Certificate(http.clone())),
            entry("os-ca-certs", "tls.crt", SecretOrigin::Certificate(ca)),
        ];
        let workload = |volumes: Value| {
            let manifest = json!({"spec": {"template": {"spec": {"volumes": volumes}}}});
            let key = ObjectKey {
                group: "apps".into(),
                kind: "StatefulSet".into(),
                namespace: Some("n".into()),
                name: "os".into(),
            };
            (Object { key, template: "t".into(), manifest: Arc::new(manifest) }, "apps/v1".to_owned())
        };
        let mut objects = vec![
            workload(json!([{"name": "certs", "secret": {"secretName": "os-http-certs"}}])),
            workload(json!([{"name": "other", "secret": {"secretName": "unrelated"}}])),
        ];
        let first = materialize(&requested, &HashMap::new(), Path::new("."), "lab").unwrap();
        roll_on_certificates(&mut objects, &requested, &first);
        let checksum =
            objects[0].0.manifest["spec"]["template"]["metadata"]["annotations"][CERTIFICATES_ANNOTATION].clone();
        assert_eq!(checksum.as_str().map(str::len), Some(32), "{checksum}");
        assert!(objects[1].0.manifest["spec"]["template"].get("metadata").is_none(), "it mounts no certificate");
        // The same certificates: the manifest is left as it is (no copy).
        let before = objects[0].0.manifest.clone();
        roll_on_certificates(&mut objects, &requested, &first);
        assert!(Arc::ptr_eq(&before, &objects[0].0.manifest));
        // A renewed one: a new checksum.
        let mut rotated = requested.clone();
        rotated[0].origin = SecretOrigin::Certificate(CertificateRequest { reissue: true, ..http });
        let live: Live = first.iter().map(|o| (o.key.clone(), o.manifest.clone())).collect();
        let renewed = materialize(&rotated, &live, Path::new("."), "lab").unwrap();
        roll_on_certificates(&mut objects, &rotated, &renewed);
        assert_ne!(
            objects[0].0.manifest["spec"]["template"]["metadata"]["annotations"][CERTIFICATES_ANNOTATION],
            checksum
        );
    }

    #[test]
    fn the_users_file_holds_a_hash_of_the_password_is_kept_while_it_matches_and_never_changed() {
        let users = SecretOrigin::InternalUsers { secret: "admin".into(), key: "password".into() };
        let secrets = [
            entry("security", "internal_users.yml", users.clone()),
            entry("admin", "password", SecretOrigin::Generated),
        ];
        let first = materialize(&secrets, &HashMap::new(), Path::new("."), "lab").unwrap();
        let value = |objects: &[Object], name: &str, key: &str| {
            decoded(objects.iter().find(|o| o.key.name == name).unwrap().manifest["data"].as_object(), key).unwrap()
        };
        let (file, password) = (value(&first, "security", "internal_users.yml"), value(&first, "admin", "password"));
        let hash = file.lines().find_map(|l| l.trim().strip_prefix("hash: ")).unwrap().trim_matches('"');
        assert!(hash.starts_with("$2y$12$") && bcrypt::verify(&password, hash).unwrap(), "{file}");
        assert!(!file.contains(&password), "the password itself is not in the file");
        // Kept while the password is the same (a new hash would be a write on every apply).
        let live: Live = first.iter().map(|o| (o.key.clone(), o.manifest.clone())).collect();
        let again = materialize(&secrets, &live, Path::new("."), "lab").unwrap();
        assert_eq!(value(&again, "security", "internal_users.yml"), file);
        // A new password is refused: OpenSearch keeps the first in its security index.
        let mut admin = (*live[&secret_key("n", "admin")]).clone();
        admin["data"]["password"] = Value::String(STANDARD.encode("another"));
        let mut changed = live.clone();
        changed.insert(secret_key("n", "admin"), Arc::new(admin));
        let refused = materialize(&secrets, &changed, Path::new("."), "lab").unwrap_err().to_string();
        assert!(refused.contains("is not the one OpenSearch was set up with"), "{refused}");
        assert!(refused.contains("delete Secret n/security and apply again"), "{refused}");
        assert!(!refused.contains("another"), "{refused}");
        // With no users file yet (a new search cluster), a password gets its hash.
        let mut fresh = changed.clone();
        fresh.remove(&secret_key("n", "security"));
        let renewed = materialize(&secrets, &fresh, Path::new("."), "lab").unwrap();
        let hash = value(&renewed, "security", "internal_users.yml");
        let hash = hash.lines().find_map(|l| l.trim().strip_prefix("hash: ")).unwrap().trim_matches('"').to_owned();
        assert!(bcrypt::verify("another", &hash).unwrap());
        // A password seclab does not hold cannot be hashed.
        let error = materialize(&secrets[..1], &HashMap::new(), Path::new("."), "lab").unwrap_err().to_string();
        assert!(error.contains("Secret n/admin"), "{error}");
    }

    #[test]
    fn cortex_stores_trust_the_authority_and_are_kept_while_it_stays() {
        let ca = CertificateRequest { common_name: "CA".into(), ..CertificateRequest::default() };
        let stores = SecretOrigin::TrustStores("os-ca-certs".into());
        let mut secrets = vec![entry("os-ca-certs", "tls.crt", SecretOrigin::Certificate(ca.clone()))];
        secrets.extend(["truststore.p12", "keystore.p12", "password"].map(|key| entry("stores", key, stores.clone())));
        let first = materialize(&secrets, &HashMap::new(), Path::new("."), "lab").unwrap();
        let data = |objects: &[Object], name: &str| {
            objects.iter().find(|o| o.key.name == name).unwrap().manifest["data"].clone()
        };
        let raw = |data: &Value, key: &str| STANDARD.decode(data[key].as_str().unwrap()).unwrap();
        let stored = data(&first, "stores");
        let password = String::from_utf8(raw(&stored, "password")).unwrap();
        let ca_pem = String::from_utf8(raw(&data(&first, "os-ca-certs"), "tls.crt")).unwrap();
        let (trusted, _) = certs::store_contents(&raw(&stored, "truststore.p12"), &password).unwrap();
        assert_eq!(trusted, [certs::der(&ca_pem).unwrap()]);
        assert_eq!(certs::store_contents(&raw(&stored, "keystore.p12"), &password), Some((vec![], 0)));
        // The same CA: the same bytes (no write).
        let live: Live = first.iter().map(|o| (o.key.clone(), o.manifest.clone())).collect();
        assert_eq!(data(&materialize(&secrets, &live, Path::new("."), "lab").unwrap(), "stores"), stored);
        // A new CA: new stores that trust it.
        secrets[0].origin = SecretOrigin::Certificate(CertificateRequest { reissue: true, ..ca });
        let rotated = materialize(&secrets, &live, Path::new("."), "lab").unwrap();
        let (stored, ca_pem) =
            (data(&rotated, "stores"), String::from_utf8(raw(&data(&rotated, "os-ca-certs"), "tls.crt")).unwrap());
        let password = String::from_utf8(raw(&stored, "password")).unwrap();
        assert_eq!(
            certs::store_contents(&raw(&stored, "truststore.p12"), &password).unwrap().0,
            [certs::der(&ca_pem).unwrap()]
        );
    }
}
