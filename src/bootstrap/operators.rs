//! Operators the lab needs before it can be applied (ECK, or any CRDs and their
//! controllers): each manifest read from a file or fetched over https, and applied as a set
//! of its own, recorded in its own inventory in `kube-system`, so that `destroy` of the lab
//! never removes what other things may use.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::causes::one_line;
use crate::cluster::Cluster;
use crate::cluster::inventory::Inventory;
use crate::config::Lab;
use crate::config::fields::{ManifestSource, manifest_source};
use crate::config::model::Operator;
use crate::reconcile::model::{Desired, Options, Plan, PlanError};
use crate::reconcile::plan;
use crate::reconcile::scan_database::base_dir;
use crate::render::{self, Object, Rendered};

/// Where operators' inventories live: a namespace every cluster has, which no lab deletes.
pub const INVENTORY_NAMESPACE: &str = "kube-system";
/// The largest manifest seclab reads (ECK's all-in-one, CRDs included, is about 1 MB).
const MAX_MANIFEST: usize = 32 * 1024 * 1024;
/// How many https redirects a manifest's URL may take.
const MAX_REDIRECTS: usize = 5;
/// How long fetching one manifest may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// An operator's manifest, read and checked.
#[derive(Debug, Clone)]
pub struct OperatorManifest {
    /// The operator's name in the file.
    pub name: String,
    /// Where the manifest came from, as the file says (a URL's query left out).
    pub source: String,
    /// The manifest's SHA-256, in hex: what `sha256` pins.
    pub sha256: String,
    /// Its objects, labelled as members of the operator's set.
    pub objects: Vec<Object>,
}

/// Why an operator's manifest cannot be used. Nothing has been changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The manifest file cannot be read.
    #[error("operator {name}: cannot read {}: {source}", path.display())]
    Read {
        /// The operator.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest URL cannot be fetched.
    #[error(
        "operator {name}: cannot fetch {url}: {source}\ncheck the URL and the network, or download the manifest and name it with `file:`"
    )]
    Fetch {
        /// The operator.
        name: String,
        /// The URL.
        url: String,
        /// Why.
        source: FetchError,
    },
    /// The manifest is not the one the file pins with `sha256`.
    #[error(
        "operator {name}: {origin} has SHA-256 {actual}, not {expected} as `sha256` says; nothing was applied\nif the manifest changed on purpose, check it and pin its new digest"
    )]
    Digest {
        /// The operator.
        name: String,
        /// Where it came from.
        origin: String,
        /// The digest the file pins.
        expected: String,
        /// The manifest's.
        actual: String,
    },
    /// The manifest is not a stream of Kubernetes objects seclab can apply.
    #[error("operator {name}: {origin} is not a manifest seclab can apply: {message}")]
    Invalid {
        /// The operator.
        name: String,
        /// Where it came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// The set an operator's objects belong to: their `app.kubernetes.io/part-of` label.
pub fn set_name(operator: &str) -> String {
    format!("operator-{operator}")
}

impl OperatorManifest {
    /// The operator's inventory: `kube-system/seclab-operator-<name>`.
    pub fn inventory(&self) -> Inventory {
        Inventory::new(&set_name(&self.name), INVENTORY_NAMESPACE)
    }

    /// The CustomResourceDefinitions it installs.
    pub fn crds(&self) -> impl Iterator<Item = Arc<Value>> + '_ {
        self.objects
            .iter()
            .filter(|o| o.key.group == "apiextensions.k8s.io" && o.key.kind == "CustomResourceDefinition")
            .map(|o| o.manifest.clone())
    }

    /// Its objects as a desired state, labelled as members of its inventory.
    pub fn desired(&self) -> Desired {
        let rendered = Rendered { objects: self.objects.clone(), node_files: Vec::new(), secrets: Vec::new() };
        Desired::new(rendered, &set_name(&self.name), &self.inventory().id())
    }
}

/// Reads `operator`'s manifest (a `file:` path is relative to the lab's file) and checks it.
pub async fn load(lab: &Lab, operator: &Operator) -> Result<OperatorManifest, OperatorError> {
    let name = operator.name.clone();
    let source = manifest_source(&operator.manifest).map_err(|problem| OperatorError::Invalid {
        name: name.clone(),
        origin: operator.manifest.clone(),
        message: problem.message,
    })?;
    let text = match source {
        ManifestSource::File(path) => {
            let path: PathBuf = base_dir(lab).join(path).components().collect();
            tokio::fs::read_to_string(&path).await.map_err(|source| OperatorError::Read {
                name: name.clone(),
                path: path.clone(),
                source,
            })?
        }
        ManifestSource::Https(url) => fetch(&url).await.map_err(|source| OperatorError::Fetch {
            name: name.clone(),
            url: shown(&operator.manifest),
            source,
        })?,
    };
    let source = shown(&operator.manifest);
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    if let Some(expected) = operator.sha256.as_ref().filter(|pinned| !pinned.eq_ignore_ascii_case(&sha256)) {
        return Err(OperatorError::Digest {
            name,
            origin: source,
            expected: expected.to_ascii_lowercase(),
            actual: sha256,
        });
    }
    let invalid =
        |message: String| OperatorError::Invalid { name: name.clone(), origin: shown(&operator.manifest), message };
    let origin = source.trim_end_matches("?...").rsplit('/').next().unwrap_or(&source);
    let objects = render::manifest_objects(text, "operators", origin, &set_name(&name)).map_err(invalid)?;
    if objects.is_empty() {
        return Err(invalid("it holds no object".to_owned()));
    }
    Ok(OperatorManifest { name: operator.name.clone(), source, sha256, objects })
}

/// A manifest's source as seclab prints it: a URL without its query and fragment, which may
/// carry a token.
fn shown(manifest: &str) -> String {
    match url::Url::parse(manifest) {
        Ok(mut url) if url.scheme() == "https" => {
            let hidden = url.query().is_some() || url.fragment().is_some();
            url.set_query(None);
            url.set_fragment(None);
            if hidden { format!("{url}?...") } else { url.to_string() }
        }
        _ => manifest.to_owned(),
    }
}

/// The plan for an operator's set against the cluster, as `apply` plans a lab.
pub async fn plan(
    cluster: &Cluster,
    lab: &Lab,
    manifest: &OperatorManifest,
    options: Options,
    cancel: &CancellationToken,
) -> Result<Plan, PlanError> {
    plan::plan_desired(cluster, manifest.desired(), manifest.inventory(), &base_dir(lab), options, cancel).await
}

/// Why a manifest cannot be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request failed (connection, TLS, a refused redirect, the timeout); never with the
    /// URL, whose query may hold a token. Every cause is on the line.
    #[error("{}", one_line(.0))]
    Request(#[source] reqwest::Error),
    /// The server answered, but not with the manifest.
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    /// The manifest is larger than seclab reads.
    #[error("it is larger than {} MiB", MAX_MANIFEST >> 20)]
    TooLarge,
    /// The manifest is not text.
    #[error("it is not UTF-8 text")]
    NotText(#[source] std::string::FromUtf8Error),
}

impl From<reqwest::Error> for FetchError {
    fn from(error: reqwest::Error) -> Self {
        Self::Request(error.without_url())
    }
}

async fn fetch(url: &url::Url) -> Result<String, FetchError> {
    // Validation insists on https because the manifest grants cluster-wide rights: a
    // redirect must not take the fetch anywhere else.
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.url().scheme() != "https" {
            let refused = format!("it redirects to {}, which is not https; refused", attempt.url());
            attempt.error(refused)
        } else if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("it redirects more than {MAX_REDIRECTS} times"))
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .redirect(redirects)
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("seclab/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut response = client.get(url.clone()).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status(status));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > MAX_MANIFEST {
            return Err(FetchError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(FetchError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_url_is_shown_without_its_query() {
        assert_eq!(shown("https://lab.test/eck.yaml?token=s3cr3t#x"), "https://lab.test/eck.yaml?...");
        assert_eq!(shown("https://lab.test/eck.yaml"), "https://lab.test/eck.yaml");
        assert_eq!(shown("file:./eck.yaml"), "file:./eck.yaml");
    }
}
