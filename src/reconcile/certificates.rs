//! The certificates seclab issues, as the cluster holds them: read from their Secrets and
//! assessed against what the lab asks for (`seclab certs status`, `seclab status`), and the
//! requests `seclab certs rotate` marks to be issued again.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

use crate::certs::{self, CertificateRequest, Inspected, State};
use crate::cluster::Cluster;
use crate::identity::ObjectKey;
use crate::render::{SecretOrigin, SecretToCreate};

use super::model::{PlanError, failed, secret_key};

/// One certificate Secret and what it holds (never its key).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// The Secret, as `namespace/name`.
    pub secret: String,
    /// What it is for: `authority`, `server` or `client`.
    pub purpose: &'static str,
    /// The certificate, when the Secret holds one that can be read.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub found: Option<Inspected>,
    /// Whole days until it expires (negative once expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// Whether it can stay: `ok`, `renew-soon`, `expired`, `mismatch` or `missing`.
    pub state: &'static str,
    /// Why it is due, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CertificateStatus {
    /// Whether the next apply issues it again.
    pub fn is_due(&self) -> bool {
        self.state != "ok"
    }
}

/// The certificate Secrets in `secrets` (one request per Secret), by `namespace/name`.
pub fn requests(secrets: &[SecretToCreate]) -> BTreeMap<String, (&SecretToCreate, &CertificateRequest)> {
    let mut found = BTreeMap::new();
    for secret in secrets {
        if let SecretOrigin::Certificate(request) = &secret.origin {
            found.insert(format!("{}/{}", secret.namespace, secret.name), (secret, request));
        }
    }
    found
}

/// Why `seclab certs rotate` cannot mark what it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The lab issues no certificate at all.
    #[error(
        "this lab has no certificates that seclab issues: they come with the search engine (`elasticsearch.enabled`)"
    )]
    NoCertificates,
    /// A name given is not one of the lab's certificates.
    #[error("`{name}` is not one of the lab's certificates: {}", known.join(", "))]
    Unknown {
        /// The name given.
        name: String,
        /// The lab's certificates (Secret names).
        known: Vec<String>,
    },
}

/// Marks the certificates named in `names` (Secret names; every leaf when empty, and the
/// authorities with `authorities`) to be issued again by the next plan. Fails on a name
/// that is not one of the lab's certificates, listing those that are.
pub fn rotate(secrets: &mut [SecretToCreate], names: &[String], authorities: bool) -> Result<usize, RotateError> {
    let known: Vec<String> = requests(secrets).values().map(|(s, _)| s.name.clone()).collect();
    if known.is_empty() {
        return Err(RotateError::NoCertificates);
    }
    if let Some(unknown) = names.iter().find(|n| !known.contains(n)) {
        return Err(RotateError::Unknown { name: unknown.clone(), known });
    }
    let mut marked = std::collections::BTreeSet::new();
    for secret in secrets.iter_mut() {
        let SecretOrigin::Certificate(request) = &mut secret.origin else { continue };
        let authority = request.authority.is_none();
        let chosen = if names.is_empty() { !authority || authorities } else { names.contains(&secret.name) };
        if chosen || (authorities && authority) {
            request.reissue = true;
            marked.insert(secret.name.clone());
        }
    }
    Ok(marked.len())
}

/// When each certificate in `secrets` that `stored` holds expires (`namespace/name`, Unix
/// seconds), and whether any of them is due to be issued again (see [`certs::assess`]). A
/// Secret `stored` does not hold is left out: applying creates it.
pub fn expiries(
    secrets: &[SecretToCreate],
    stored: impl Fn(&ObjectKey) -> Option<Arc<Value>>,
) -> (Vec<(String, i64)>, bool) {
    let now = jiff::Timestamp::now().as_second();
    let mut found = Vec::new();
    let mut due = false;
    for (name, (secret, request)) in requests(secrets) {
        let Some(object) = stored(&secret_key(&secret.namespace, &secret.name)) else { continue };
        let pem = object["data"]["tls.crt"].as_str().and_then(|text| STANDARD.decode(text).ok());
        match pem.and_then(|pem| certs::inspect(&String::from_utf8_lossy(&pem)).ok()) {
            Some(certificate) => {
                due |= certs::assess(&certificate, request, now, request.renew_before).is_due();
                found.push((name, certificate.not_after));
            }
            None => due = true,
        }
    }
    (found, due)
}

/// Reads every certificate Secret the lab asks for and assesses it.
pub async fn status(cluster: &Cluster, secrets: &[SecretToCreate]) -> Result<Vec<CertificateStatus>, PlanError> {
    let wanted = requests(secrets);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let kind = cluster.kind("v1", "Secret").await.map_err(failed("cannot resolve Secrets"))?;
    let mut stored: BTreeMap<String, Option<Value>> = BTreeMap::new();
    for (name, (secret, _)) in &wanted {
        let object = cluster.get(&kind, Some(&secret.namespace), &secret.name).await;
        stored.insert(name.clone(), object.map_err(failed(format!("cannot read Secret {name}")))?);
    }
    let now = jiff::Timestamp::now().as_second();
    let pem = |name: &str, key: &str| -> Option<String> {
        let text = stored.get(name)?.as_ref()?["data"][key].as_str()?;
        String::from_utf8(STANDARD.decode(text).ok()?).ok()
    };
    Ok(wanted
        .iter()
        .map(|(name, (secret, request))| {
            let purpose = match (&request.authority, request.client) {
                (None, _) => "authority",
                (Some(_), false) => "server",
                (Some(_), true) => "client",
            };
            let authority = request.authority.as_ref().map(|ca| format!("{}/{ca}", secret.namespace));
            let inspected = pem(name, "tls.crt").map(|cert| certs::inspect(&cert));
            let (found, state) = match inspected {
                None => (None, Err("missing")),
                Some(Err(error)) => (None, Ok(State::Mismatch(format!("it cannot be read: {error}")))),
                Some(Ok(found)) => {
                    let mut state = certs::assess(&found, request, now, request.renew_before);
                    let signed_by = authority.as_deref().map(|ca| (pem(ca, "tls.crt"), pem(name, "ca.crt")));
                    if state == State::Ok
                        && matches!(signed_by, Some((current, held)) if current.is_none() || current != held)
                    {
                        state = State::Mismatch("it is not signed by the lab's current CA".into());
                    }
                    (Some(found), Ok(state))
                }
            };
            let days_left = found.as_ref().map(|f| (f.not_after - now).div_euclid(86_400));
            let (state, reason) = match state {
                Err(missing) => (missing, Some("the Secret does not exist yet: run `seclab apply`".to_owned())),
                Ok(State::Ok) => ("ok", None),
                Ok(State::RenewSoon) => ("renew-soon", Some("it expires within certificates.renewBefore".to_owned())),
                Ok(State::Expired) => ("expired", Some("it is past its expiry date".to_owned())),
                Ok(State::Mismatch(why)) => ("mismatch", Some(why)),
            };
            CertificateStatus { secret: name.clone(), purpose, found, days_left, state, reason }
        })
        .collect())
}
