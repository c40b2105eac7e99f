//! The Kubernetes side: a kube-rs client with discovery, server-side apply under the field
//! manager `seclab`, reads by LIST, deletes, the lab's inventory and readiness.
//!
//! Objects travel as `serde_json::Value` manifests: seclab renders arbitrary kinds from
//! templates, so nothing here is typed by kind.

mod client;
pub mod compare;
pub mod diff;
pub mod inventory;
mod list;
pub mod order;
mod pods;
pub mod readiness;
pub mod requests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use kube::api::{Api, DeleteParams, DynamicObject, GetParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, GroupVersion, Request};
use kube::discovery::{Scope, oneshot};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use serde_json::Value;

use crate::identity::{KindName, MANAGER, ObjectKey};

/// What a refused request needs: the permissions `render --rbac-for-seclab` prints.
const FORBIDDEN_HINT: &str = "; seclab's permissions for this lab come from `seclab render --rbac-for-seclab`: \
     a cluster admin applies them (again after the lab gained a namespace or cluster-scoped object)";

/// The `User-Agent` of seclab's requests.
const USER_AGENT: &str = concat!("seclab/", env!("CARGO_PKG_VERSION"));

/// A resolved kind: how to reach it, and whether it lives in namespaces.
#[derive(Debug, Clone)]
pub struct Kind {
    /// The kind's URL parts (group, version, plural).
    pub resource: ApiResource,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
}

impl Kind {
    /// The kind `kind` in `api_version` as the CustomResourceDefinition `crd` defines it, if
    /// it does (with that version served): how to reach a kind the cluster will serve once a
    /// CRD in the same lab is applied.
    pub fn defined_by(crd: &Value, api_version: &str, kind: &str) -> Option<Self> {
        let (group, version) = api_version.split_once('/')?;
        let spec = &crd["spec"];
        let served = spec["versions"].as_array()?.iter().any(|v| v["name"] == version && v["served"] == true);
        if spec["group"] != group || spec["names"]["kind"] != kind || !served {
            return None;
        }
        let resource = ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            plural: spec["names"]["plural"].as_str()?.to_owned(),
        };
        Some(Self { resource, namespaced: spec["scope"] == "Namespaced" })
    }
}

/// The error a library reported, kept whole for its chain of causes.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a request to the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig, or one that cannot be used.
    #[error("{context}")]
    Config {
        /// What seclab tried (`cannot read the kubeconfig <path>`).
        context: String,
        /// Why it failed.
        source: Cause,
    },
    /// The API server answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// Kubernetes' reason (`Conflict`, `Invalid`, `Forbidden`, `NotFound`...).
        reason: String,
        /// The server's message.
        message: String,
        /// For apply conflicts: which manager owns which field.
        conflicts: Vec<Conflict>,
    },
    /// The kind is not served by the cluster.
    #[error("the cluster does not serve {kind} in {api_version}; install its CRD (or operator) first")]
    UnknownKind {
        /// `apiVersion` asked for.
        api_version: String,
        /// Kind asked for.
        kind: String,
    },
    /// The object did not reach the wanted state in time.
    #[error("{0}")]
    Timeout(String),
    /// The request did not reach the server or its answer could not be read.
    #[error("cannot reach the API server {server}")]
    Transport {
        /// The server's URL, with the context and kubeconfig it came from.
        server: String,
        /// Why.
        source: Cause,
    },
    /// An answer seclab cannot read, or a request it cannot build.
    #[error("{0}")]
    Client(String),
}

/// A field that another manager owns, from a server-side apply conflict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    /// The other field manager.
    pub manager: String,
    /// The field path (`.spec.replicas`).
    pub field: String,
}

/// Who owns which field, and how to take them over.
pub fn describe_conflicts(conflicts: &[Conflict]) -> String {
    let fields: Vec<String> =
        conflicts.iter().map(|c| format!("{} is owned by field manager \"{}\"", c.field, c.manager)).collect();
    format!("{}; run with --force-conflicts to take these fields over", fields.join(", "))
}

impl ClusterError {
    /// The HTTP status of an API error; 0 otherwise.
    pub fn code(&self) -> u16 {
        match self {
            Self::Api { code, .. } => *code,
            _ => 0,
        }
    }

    /// Whether the error says a field cannot change once set.
    pub fn is_immutable(&self) -> bool {
        matches!(self, Self::Api { code: 422, message, .. } if message.contains("immutable"))
    }

    fn from_kube(error: kube::Error, server: &str) -> Self {
        match error {
            kube::Error::Api(status) => {
                let conflicts = status
                    .details
                    .iter()
                    .flat_map(|details| &details.causes)
                    .filter(|cause| cause.reason == "FieldManagerConflict")
                    .map(|cause| Conflict {
                        manager: cause
                            .message
                            .strip_prefix("conflict with \"")
                            .and_then(|rest| rest.split('"').next())
                            .unwrap_or(&cause.message)
                            .to_owned(),
                        field: cause.field.clone(),
                    })
                    .collect();
                let mut message = status.message;
                if status.code == 403 {
                    message.push_str(FORBIDDEN_HINT);
                }
                Self::Api { code: status.code, reason: status.reason, message, conflicts }
            }
            other => Self::Transport { server: server.to_owned(), source: Box::new(other) },
        }
    }
}

/// A connection to one cluster, with the kinds discovered so far.
pub struct Cluster {
    client: kube::Client,
    kinds: Mutex<HashMap<KindName, Kind>>,
    /// The server's URL, with the context and kubeconfig it came from, for errors.
    server: String,
}

impl Cluster {
    /// Connects with `kubeconfig` (else `KUBECONFIG`, else `~/.kube/config`, else in-cluster)
    /// and `context` (else the kubeconfig's current one). Sends no request.
    pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Self, ClusterError> {
        Self::connect_counted(kubeconfig, context, None).await
    }

    /// Connects like [`Cluster::connect`], telling `observer` of every request's verb and
    /// status code.
    pub async fn connect_counted(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        observer: Option<requests::RequestObserver>,
    ) -> Result<Self, ClusterError> {
        let options = kube::config::KubeConfigOptions { context: context.map(str::to_owned), ..Default::default() };
        let unusable = |source: Cause| ClusterError::Config { context: "cannot use the kubeconfig".into(), source };
        let mut origin = String::new();
        let mut config = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| ClusterError::Config {
                    context: format!("cannot read the kubeconfig {}", path.display()),
                    source: Box::new(e),
                })?;
                let used = context.map(str::to_owned).or_else(|| file.current_context.clone()).unwrap_or_default();
                origin = format!(" (context {used} of {})", path.display());
                kube::Config::from_custom_kubeconfig(file, &options).await.map_err(|e| unusable(Box::new(e)))
            }
            None if context.is_some() => {
                kube::Config::from_kubeconfig(&options).await.map_err(|e| unusable(Box::new(e)))
            }
            None => kube::Config::infer().await.map_err(|e| unusable(Box::new(e))),
        }?;
        if origin.is_empty() {
            origin = context.map(|used| format!(" (context {used})")).unwrap_or_default();
        }
        let server = format!("{}{origin}", config.cluster_url);
        // Names seclab in the API server's audit log.
        config.headers.push((http::header::USER_AGENT, http::HeaderValue::from_static(USER_AGENT)));
        let builder = client::builder(config).map_err(|e| unusable(Box::new(e)))?;
        let client = match observer {
            Some(observer) => builder.with_layer(&requests::CountRequests(observer)).build(),
            None => builder.build(),
        };
        Ok(Self { client, kinds: Mutex::new(HashMap::new()), server })
    }

    /// Resolves a kind through discovery (one request per API group version, cached).
    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Kind, ClusterError> {
        let cache_key = KindName::new(api_version, kind);
        if let Some(found) = self.kinds.lock().expect("kinds lock").get(&cache_key) {
            return Ok(found.clone());
        }
        let unknown = || ClusterError::UnknownKind { api_version: api_version.to_owned(), kind: kind.to_owned() };
        let gv: GroupVersion = api_version.parse().map_err(|_| unknown())?;
        let group = match oneshot::pinned_group(&self.client, &gv).await {
            Ok(group) => group,
            Err(kube::Error::Api(status)) if status.code == 404 => return Err(unknown()),
            Err(other) => return Err(self.error(other)),
        };
        let mut kinds = self.kinds.lock().expect("kinds lock");
        for (resource, capabilities) in group.versioned_resources(&gv.version) {
            let namespaced = capabilities.scope == Scope::Namespaced;
            kinds.insert(KindName::new(api_version, resource.kind.clone()), Kind { resource, namespaced });
        }
        kinds.get(&cache_key).cloned().ok_or_else(unknown)
    }

    /// A kube-rs error as seclab reports it, naming this server when it was not reached.
    fn error(&self, error: kube::Error) -> ClusterError {
        ClusterError::from_kube(error, &self.server)
    }

    /// The underlying kube-rs client, for the libraries that take one (leader election).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Forgets discovered kinds (after CRDs were applied).
    fn forget_kinds(&self) {
        self.kinds.lock().expect("kinds lock").clear();
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| kind.namespaced) {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &kind.resource),
            None => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// Requests for `kind` in `namespace` (or cluster-wide), answered as plain JSON values:
    /// seclab handles objects of any kind, so a typed copy on the way would be wasted.
    fn request(&self, kind: &Kind, namespace: Option<&str>) -> Request {
        Request::new(self.api(kind, namespace).resource_url())
    }

    /// Every object of `kind` in `namespace` (or cluster-wide), in one LIST. Each item, with
    /// its `apiVersion` and `kind`, goes to `each` as soon as it is read; what `each` returns
    /// is kept, so a caller holds only what it needs of a large list.
    pub async fn list<T>(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        each: impl FnMut(Value) -> Option<T>,
    ) -> Result<Vec<T>, ClusterError> {
        Self::read_list(kind, &self.list_body(kind, namespace).await?, each)
    }

    /// The body of one LIST, unread: for callers that read many at once on other threads
    /// ([`Cluster::read_list`]) while more arrive.
    pub async fn list_body(&self, kind: &Kind, namespace: Option<&str>) -> Result<String, ClusterError> {
        let request = self.request(kind, namespace).list(&ListParams::default()).map_err(invalid_request)?;
        self.client.request_text(request).await.map_err(|e| self.error(e))
    }

    /// Reads a LIST body of `kind` as [`Cluster::list`] does.
    pub fn read_list<T>(kind: &Kind, body: &str, each: impl FnMut(Value) -> Option<T>) -> Result<Vec<T>, ClusterError> {
        list::items(body, &kind.resource.api_version, &kind.resource.kind, each).map_err(|e| {
            ClusterError::Client(format!("cannot read the API server's list of {}: {e}", kind.resource.plural))
        })
    }

    /// One object, or `None` when it does not exist.
    pub async fn get(&self, kind: &Kind, namespace: Option<&str>, name: &str) -> Result<Option<Value>, ClusterError> {
        let request = self.request(kind, namespace).get(name, &GetParams::default()).map_err(invalid_request)?;
        match self.client.request::<Value>(request).await {
            Ok(object) => Ok(Some(object)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(other) => Err(self.error(other)),
        }
    }

    /// Server-side apply of `manifest` as field manager `seclab`, with `force` taking over
    /// fields other managers own. The server answers with the object's metadata only, which
    /// seclab does not need either: the full object would only cost encoding and decoding.
    pub async fn apply(&self, kind: &Kind, manifest: &Value, force: bool) -> Result<(), ClusterError> {
        let (namespace, name) = namespace_and_name(manifest);
        self.api(kind, namespace)
            .patch_metadata(name, &apply_params(force, false), &Patch::Apply(manifest))
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    /// The object `manifest` would become with a server-side apply (a dry run: nothing is
    /// stored).
    pub async fn dry_run_apply(&self, kind: &Kind, manifest: &Value, force: bool) -> Result<Value, ClusterError> {
        let (namespace, name) = namespace_and_name(manifest);
        let request = self
            .request(kind, namespace)
            .patch(name, &apply_params(force, true), &Patch::Apply(manifest))
            .map_err(invalid_request)?;
        self.client.request(request).await.map_err(|e| self.error(e))
    }

    /// Deletes an object in the background; a missing object is not an error.
    pub async fn delete(&self, kind: &Kind, key: &ObjectKey) -> Result<(), ClusterError> {
        let params = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
        match self.api(kind, key.namespace.as_deref()).delete(&key.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(other) => Err(self.error(other)),
        }
    }

    /// Follows every object of `kind` in `namespace` (or cluster-wide) that carries the
    /// labels `selector`: a LIST, then a WATCH, relisting after the watch breaks. Each object
    /// arrives as its JSON, made into what the caller keeps by `keep`. Errors are items of
    /// the stream; the caller retries with backoff.
    pub fn follow<T, F: FnMut(Value) -> T + Send + 'static>(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        selector: &str,
        mut keep: F,
    ) -> impl futures::Stream<Item = Result<watcher::Event<T>, watcher::Error>> + Send + use<T, F> {
        use futures::StreamExt;
        let config = watcher::Config::default().labels(selector);
        let (api_version, kind_name) = (kind.resource.api_version.clone(), kind.resource.kind.clone());
        watcher::watcher(self.api(kind, namespace), config).map(move |event| {
            let mut value = |object: DynamicObject| {
                let mut value = serde_json::to_value(object).unwrap_or_default();
                if let Value::Object(fields) = &mut value {
                    fields.insert("apiVersion".into(), Value::String(api_version.clone()));
                    fields.insert("kind".into(), Value::String(kind_name.clone()));
                }
                keep(value)
            };
            Ok(match event? {
                watcher::Event::Apply(o) => watcher::Event::Apply(value(o)),
                watcher::Event::Delete(o) => watcher::Event::Delete(value(o)),
                watcher::Event::Init => watcher::Event::Init,
                watcher::Event::InitApply(o) => watcher::Event::InitApply(value(o)),
                watcher::Event::InitDone => watcher::Event::InitDone,
            })
        })
    }

    /// Waits until the object `key` is gone, for at most `timeout`.
    pub async fn wait_gone(&self, kind: &Kind, key: &ObjectKey, timeout: Duration) -> Result<(), ClusterError> {
        let api = self.api(kind, key.namespace.as_deref());
        let gone = |object: Option<&DynamicObject>| object.is_none();
        match tokio::time::timeout(timeout, await_condition(api, &key.name, gone)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(ClusterError::Transport { server: self.server.clone(), source: Box::new(error) }),
            Err(_) => Err(ClusterError::Timeout(format!(
                "it was still being deleted after {}s (a finalizer may hold it); apply again once it is gone",
                timeout.as_secs()
            ))),
        }
    }

    /// Waits until the CustomResourceDefinition `name` is established, for at most `timeout`;
    /// then forgets the kinds discovered so far, so that the kinds it defines are found.
    pub async fn wait_established(&self, name: &str, timeout: Duration) -> Result<(), ClusterError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let result = tokio::time::timeout(timeout, await_condition(api, name, conditions::is_crd_established())).await;
        self.forget_kinds();
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(ClusterError::Transport { server: self.server.clone(), source: Box::new(error) }),
            Err(_) => Err(ClusterError::Timeout(format!(
                "CustomResourceDefinition {name} was not established after {}s",
                timeout.as_secs()
            ))),
        }
    }

    /// The names of the cluster's nodes; `None` when they cannot be listed (they only ever
    /// add a warning).
    pub async fn node_names(&self) -> Option<Vec<String>> {
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(self.client.clone());
        let list = nodes.list_metadata(&ListParams::default()).await.ok()?;
        Some(list.items.into_iter().filter_map(|node| node.metadata.name).collect())
    }

    /// The newest Warning event about `key`, as `reason: message`.
    pub async fn last_warning(&self, key: &ObjectKey) -> Option<String> {
        let namespace = key.namespace.as_deref()?;
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("involvedObject.name={},involvedObject.kind={},type=Warning", key.name, key.kind);
        let list = events.list(&ListParams::default().fields(&selector)).await.ok()?;
        let newest = list.items.into_iter().max_by_key(|event| {
            event.last_timestamp.as_ref().map(|t| t.0).or(event.event_time.as_ref().map(|t| t.0))
        })?;
        Some(format!("{}: {}", newest.reason.unwrap_or_default(), newest.message.unwrap_or_default()))
    }
}

fn namespace_and_name(manifest: &Value) -> (Option<&str>, &str) {
    let metadata = &manifest["metadata"];
    (metadata["namespace"].as_str(), metadata["name"].as_str().unwrap_or_default())
}

/// Server-side apply parameters. Field validation is off because the one check it adds for
/// an apply, duplicate keys, cannot fail for a serialized map, and it costs the server a
/// second YAML parse of every patch; unknown fields are still rejected by the apply itself.
fn apply_params(force: bool, dry_run: bool) -> PatchParams {
    let mut params = PatchParams::apply(MANAGER).validation_ignore();
    params.force = force;
    params.dry_run = dry_run;
    params
}

/// A request kube-rs refuses to build (an empty name, say): a bug in seclab, named as such.
fn invalid_request(error: kube::core::request::Error) -> ClusterError {
    ClusterError::Client(format!("seclab built a request the client refuses ({error}); please report this"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_crd_defines_its_served_versions_of_its_kind_only() {
        let crd = json!({ "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": { "name": "widgets.test.seclab.dev" },
            "spec": { "group": "test.seclab.dev", "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget" },
                "versions": [{ "name": "v1", "served": true }, { "name": "v0", "served": false }] } });
        let kind = Kind::defined_by(&crd, "test.seclab.dev/v1", "Widget").unwrap();
        assert_eq!((kind.resource.plural.as_str(), kind.resource.version.as_str()), ("widgets", "v1"));
        assert!(kind.namespaced);
        assert!(Kind::defined_by(&crd, "test.seclab.dev/v0", "Widget").is_none(), "not served");
        assert!(Kind::defined_by(&crd, "test.seclab.dev/v1", "Gadget").is_none());
        assert!(Kind::defined_by(&crd, "other.seclab.dev/v1", "Widget").is_none());
        assert!(Kind::defined_by(&crd, "v1", "Widget").is_none(), "the core group has no CRDs");
    }
}
