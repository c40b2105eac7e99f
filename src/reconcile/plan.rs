//! The plan: what applying the lab would do to each object, found with one LIST per kind
//! and namespace, and a server-side dry-run for objects that differ. Kinds that a CRD of the
//! lab itself defines are planned before the cluster serves them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::diff::{FieldChange, diff};
use crate::cluster::inventory::{APPLYSET_PART_OF, Inventory};
use crate::cluster::{Cluster, ClusterError, Conflict, Kind, compare, describe_conflicts, order};
use crate::config::Lab;
use crate::render::{COMPONENT, MANAGED_BY, Object, ObjectKey, PART_OF, Rendered};

use super::scan_database::base_dir;
use super::secrets;

/// One LIST: `apiVersion`, kind, and namespace (none for cluster-scoped kinds).
pub(crate) type ListTarget = (String, String, Option<String>);

/// Requests in flight at once.
pub const CONCURRENCY: usize = 16;

/// What to allow, from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Take over fields other managers own.
    pub force_conflicts: bool,
    /// Allow deleting Namespaces, PersistentVolumes and claims, or over half the inventory.
    pub allow_destructive: bool,
    /// Take over objects of the same name that seclab does not own.
    pub adopt: bool,
    /// Delete and recreate objects whose change touches immutable fields.
    pub recreate: bool,
    /// Prune objects removed from the file.
    pub prune: bool,
}

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It does not exist yet.
    Create,
    /// Some of its fields change.
    Update,
    /// A field that cannot change does: delete and create again.
    Replace,
    /// It left the file and is deleted.
    Prune,
    /// Nothing to do.
    Unchanged,
    /// Left in place by `destroy` (data it holds needs `--allow-destructive`).
    Keep,
}

/// One object's part of the plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The object, as `Kind.group namespace/name`.
    pub object: String,
    /// Its identity.
    #[serde(skip)]
    pub key: ObjectKey,
    /// The component it belongs to.
    pub component: String,
    /// What happens to it.
    pub action: Action,
    /// The fields that change (updates and replaces).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldChange>,
    /// Why it is replaced, or why a prune is destructive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Whether it counts as destructive (deletes data or most of the lab).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
    /// The manifest to apply (never serialized: Secrets hold values).
    #[serde(skip)]
    pub manifest: Option<Value>,
    /// The `apiVersion` it is applied or deleted with.
    #[serde(skip)]
    pub api_version: String,
    /// Apply with force: conflicts were allowed, or the object is adopted.
    #[serde(skip)]
    pub force: bool,
}

/// Something that stops the plan from being applied as it is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "problem")]
pub enum Problem {
    /// An object of the same name exists and is not this lab's.
    Unowned {
        /// The object.
        object: String,
        /// Who manages it, from its labels, if anyone says.
        owner: Option<String>,
    },
    /// Other managers own fields the lab sets.
    Conflict {
        /// The object.
        object: String,
        /// Who owns which field.
        conflicts: Vec<Conflict>,
    },
    /// A change to an immutable field, and `--recreate` was not given.
    Immutable {
        /// The object.
        object: String,
        /// The server's words.
        message: String,
    },
    /// A destructive step without `--allow-destructive`.
    Destructive {
        /// The object.
        object: String,
        /// Why it is destructive.
        reason: String,
    },
    /// The server rejects the object.
    Rejected {
        /// The object.
        object: String,
        /// The server's words.
        message: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unowned { object, owner } => write!(
                f,
                "{object} already exists and is not this lab's{}; seclab leaves it alone. Rename the object in the file, delete it, or run with --adopt to take it over",
                owner.as_ref().map(|o| format!(" (managed by {o})")).unwrap_or_default()
            ),
            Self::Conflict { object, conflicts } => write!(f, "{object}: {}", describe_conflicts(conflicts)),
            Self::Immutable { object, message } => write!(
                f,
                "{object} changes a field that cannot change ({message}); run with --recreate to delete and create it again"
            ),
            Self::Destructive { object, reason } => {
                write!(f, "{object} would be deleted ({reason}); run with --allow-destructive if that is what you want")
            }
            Self::Rejected { object, message } => write!(f, "{object} is rejected by the API server: {message}"),
        }
    }
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The lab's name.
    pub lab: String,
    /// Every object, in apply order; prunes last, in reverse order.
    pub steps: Vec<Step>,
    /// What stops the plan.
    pub problems: Vec<Problem>,
    /// The inventory as the cluster holds it now.
    #[serde(skip)]
    pub inventory: Inventory,
    /// Whether the live inventory differs from what an apply would record.
    #[serde(skip)]
    pub inventory_stale: bool,
    /// The resolved kind of every step's object.
    #[serde(skip)]
    pub kinds: HashMap<ObjectKey, Kind>,
}

impl Plan {
    /// Steps that change something.
    pub fn changes(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| !matches!(s.action, Action::Unchanged | Action::Keep))
    }

    /// How many steps take `action`.
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A request failed.
    #[error("{context}: {source}")]
    Cluster {
        /// What seclab was doing.
        context: String,
        /// The error.
        source: ClusterError,
    },
    /// A Secret apply creates could not be filled.
    #[error("{0}")]
    Secret(String),
}

fn failed(context: impl Into<String>) -> impl FnOnce(ClusterError) -> PlanError {
    let context = context.into();
    move |source| PlanError::Cluster { context, source }
}

/// Makes the plan for `rendered` (empty for `destroy`) against the cluster.
pub async fn plan(cluster: &Cluster, lab: &Lab, rendered: Rendered, options: Options) -> Result<Plan, PlanError> {
    let lab_name = lab.name().to_owned();
    let mut inventory = Inventory::new(&lab_name, &lab.spec().cluster.namespace);
    let config_map = cluster.kind("v1", "ConfigMap").await.map_err(failed("cannot resolve ConfigMaps"))?;
    let parent = cluster
        .get(&config_map, Some(&inventory.namespace), &inventory.name)
        .await
        .map_err(failed(format!("cannot read the inventory {}", inventory.key())))?;
    if let Some(parent) = &parent {
        inventory.read(parent);
    }
    let id = inventory.id();

    // Resolve every kind: the lab's, the Secrets apply creates, and the inventory's.
    let Rendered { objects, secrets: to_create, .. } = rendered;
    let labelled = |mut object: Object| {
        object.manifest["metadata"]["labels"][APPLYSET_PART_OF] = Value::String(id.clone());
        let api_version = object.api_version().to_owned();
        (object, api_version)
    };
    let mut objects: Vec<(Object, String)> = objects.into_iter().map(labelled).collect();
    let secret_keys: Vec<ObjectKey> = to_create.iter().map(|s| secrets::secret_key(&s.namespace, &s.name)).collect();
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for (object, api_version) in &objects {
        wanted.insert((api_version.clone(), object.key.kind.clone()));
    }
    if !secret_keys.is_empty() {
        wanted.insert(("v1".into(), "Secret".into()));
    }
    let crds: Vec<&Value> = objects
        .iter()
        .filter(|(o, _)| o.key.kind == "CustomResourceDefinition" && o.key.group == "apiextensions.k8s.io")
        .map(|(o, _)| &o.manifest)
        .collect();
    let (mut resolved, not_served_yet) = resolve(cluster, &wanted, &crds).await?;
    let mut stale_kinds = Vec::new();
    for (key, api_version) in &inventory.members {
        let pair = (api_version.clone(), key.kind.clone());
        if resolved.contains_key(&pair) {
            continue;
        }
        match cluster.kind(api_version, &key.kind).await {
            Ok(found) => {
                resolved.insert(pair, found);
            }
            Err(ClusterError::UnknownKind { .. }) => stale_kinds.push(key.clone()),
            Err(other) => return Err(failed(format!("cannot resolve {}", key.kind))(other)),
        }
    }

    // One LIST per kind and namespace.
    let mut lists: BTreeSet<ListTarget> = BTreeSet::new();
    let namespaces = |key: &ObjectKey, kind: &Kind| if kind.namespaced { key.namespace.clone() } else { None };
    for (object, api_version) in &objects {
        let kind = &resolved[&(api_version.clone(), object.key.kind.clone())];
        lists.insert((api_version.clone(), object.key.kind.clone(), namespaces(&object.key, kind)));
    }
    for key in &secret_keys {
        lists.insert(("v1".into(), "Secret".into(), key.namespace.clone()));
    }
    for (key, api_version) in &inventory.members {
        if let Some(kind) = resolved.get(&(api_version.clone(), key.kind.clone())) {
            lists.insert((api_version.clone(), key.kind.clone(), namespaces(key, kind)));
        }
    }
    lists.retain(|(api_version, kind, _)| !not_served_yet.contains(&(api_version.clone(), kind.clone())));
    let desired: HashMap<&ObjectKey, &Value> = objects.iter().map(|(o, _)| (&o.key, &o.manifest)).collect();
    let keep = Keep { desired, secrets: secret_keys.iter().collect(), lab: &lab_name };
    let (live, unchanged) = list_all(cluster, &resolved, lists, &keep).await?;

    // The Secrets apply creates, filled from the live ones and the environment.
    let created = secrets::materialize(&to_create, &live, &base_dir(lab), &lab_name).map_err(PlanError::Secret)?;
    objects.extend(created.into_iter().map(labelled));

    let mut plan = Plan {
        lab: lab_name.clone(),
        steps: Vec::new(),
        problems: Vec::new(),
        inventory: inventory.clone(),
        inventory_stale: false,
        kinds: HashMap::new(),
    };
    let mut to_check = Vec::new();
    for (object, api_version) in objects {
        let kind = resolved[&(api_version.clone(), object.key.kind.clone())].clone();
        plan.kinds.insert(object.key.clone(), kind);
        let manifest = object.manifest;
        let component = manifest["metadata"]["labels"][COMPONENT].as_str().unwrap_or_default().to_owned();
        let mut step = Step {
            object: object.key.to_string(),
            key: object.key,
            component,
            action: Action::Create,
            diff: Vec::new(),
            note: None,
            destructive: false,
            manifest: Some(manifest),
            api_version,
            force: options.force_conflicts,
        };
        if let Some(current) = live.get(&step.key) {
            if !owned(current, &lab_name) && !options.adopt {
                let labels = &current["metadata"]["labels"];
                let owner = match (labels[MANAGED_BY].as_str(), labels[PART_OF].as_str()) {
                    (Some("seclab"), Some(other)) => Some(format!("seclab lab {other}")),
                    (manager, _) => manager.map(str::to_owned),
                };
                plan.problems.push(Problem::Unowned { object: step.object.clone(), owner });
                step.action = Action::Unchanged;
                step.manifest = None;
            } else if unchanged.contains(&step.key)
                // Listed objects were compared as they arrived; the Secrets apply fills in
                // are compared here, now that their values are known.
                || (owned(current, &lab_name) && compare::unchanged(step.manifest.as_ref().expect("set"), current))
            {
                step.action = Action::Unchanged;
            } else {
                step.action = Action::Update;
                step.force |= !owned(current, &lab_name);
                to_check.push(plan.steps.len());
            }
        }
        plan.steps.push(step);
    }

    // A dry-run for every object that differs: the field-level diff, conflicts, immutables.
    let dry_runs: Vec<(usize, Result<Value, ClusterError>)> = stream::iter(to_check)
        .map(|index| {
            let step = &plan.steps[index];
            let kind = &plan.kinds[&step.key];
            let manifest = step.manifest.as_ref().expect("updates carry a manifest");
            async move { (index, cluster.dry_run_apply(kind, manifest, step.force).await) }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (index, result) in dry_runs {
        let step = &mut plan.steps[index];
        let current = &live[&step.key];
        match result {
            Ok(after) => {
                step.diff = diff(current, &after);
                if step.diff.is_empty() && owned(current, &lab_name) {
                    step.action = Action::Unchanged;
                }
            }
            Err(error) if error.is_immutable() => {
                step.action = Action::Replace;
                step.note = Some(error.to_string());
                if step.key.kind == "PersistentVolumeClaim" || step.key.kind == "PersistentVolume" {
                    step.destructive = true;
                }
                if !options.recreate {
                    plan.problems.push(Problem::Immutable { object: step.object.clone(), message: error.to_string() });
                }
            }
            Err(ClusterError::Api { conflicts, .. }) if !conflicts.is_empty() => {
                plan.problems.push(Problem::Conflict { object: step.object.clone(), conflicts });
            }
            Err(error) => {
                plan.problems.push(Problem::Rejected { object: step.object.clone(), message: error.to_string() })
            }
        }
    }
    plan.steps.sort_by_key(|step| order::stage(&step.key));
    plan.problems.sort_by_key(|problem| problem.to_string());

    // Prunes: the inventory's members and the live objects labelled as the set's, that have
    // left the file and still carry this lab's labels.
    let desired: BTreeSet<&ObjectKey> = plan.steps.iter().map(|s| &s.key).collect();
    let mut candidates: BTreeMap<ObjectKey, String> = inventory.members.clone();
    for (key, object) in &live {
        if object["metadata"]["labels"][APPLYSET_PART_OF] == id.as_str() && !candidates.contains_key(key) {
            candidates.insert(key.clone(), object["apiVersion"].as_str().unwrap_or_default().to_owned());
        }
    }
    let mut prunes = Vec::new();
    for (key, api_version) in candidates {
        if desired.contains(&key) || !options.prune {
            continue;
        }
        let Some(current) = live.get(&key) else { continue };
        if !owned(current, &lab_name) {
            continue;
        }
        let destructive = matches!(key.kind.as_str(), "Namespace" | "PersistentVolume" | "PersistentVolumeClaim")
            && key.group.is_empty();
        let component = current["metadata"]["labels"][COMPONENT].as_str().unwrap_or_default().to_owned();
        plan.kinds.insert(key.clone(), resolved[&(api_version.clone(), key.kind.clone())].clone());
        prunes.push(Step {
            object: key.to_string(),
            key,
            component,
            action: Action::Prune,
            diff: Vec::new(),
            note: destructive.then(|| "deletes stored data".to_owned()),
            destructive,
            manifest: None,
            api_version,
            force: false,
        });
    }
    let members = inventory.members.len();
    if members > 0 && prunes.len() * 2 > members {
        let reason = format!("the prune deletes {} of the {members} objects in the inventory", prunes.len());
        for step in &mut prunes {
            step.destructive = true;
            step.note.get_or_insert(reason.clone());
        }
    }
    prunes.sort_by_key(|step| std::cmp::Reverse(order::stage(&step.key)));
    plan.steps.extend(prunes);
    if !options.allow_destructive {
        for step in plan.steps.iter().filter(|s| s.destructive && s.action != Action::Unchanged) {
            let reason = step.note.clone().unwrap_or_default();
            plan.problems.push(Problem::Destructive { object: step.object.clone(), reason });
        }
    }
    for key in stale_kinds {
        tracing::warn!("{key} is in the inventory but the cluster no longer serves its kind; it is left alone");
    }
    let recorded = record(&plan, &BTreeMap::new());
    plan.inventory_stale = parent.is_none() || recorded.members != inventory.members;
    Ok(plan)
}

/// Resolves the lab's kinds. A kind the cluster does not serve yet may come from a CRD in
/// the lab itself: it is resolved from that CRD and returned among the kinds not served yet,
/// whose objects are all new (apply creates them once the CRD is established).
async fn resolve(
    cluster: &Cluster,
    wanted: &BTreeSet<(String, String)>,
    crds: &[&Value],
) -> Result<(HashMap<(String, String), Kind>, HashSet<(String, String)>), PlanError> {
    let mut resolved = HashMap::new();
    let mut not_served_yet = HashSet::new();
    for (api_version, kind) in wanted {
        let pair = (api_version.clone(), kind.clone());
        let found = match cluster.kind(api_version, kind).await {
            Ok(found) => found,
            Err(unknown @ ClusterError::UnknownKind { .. }) => {
                let Some(defined) = crds.iter().find_map(|crd| Kind::defined_by(crd, api_version, kind)) else {
                    return Err(failed(format!("cannot apply {kind}"))(unknown));
                };
                not_served_yet.insert(pair.clone());
                defined
            }
            Err(other) => return Err(failed(format!("cannot apply {kind}"))(other)),
        };
        resolved.insert(pair, found);
    }
    Ok((resolved, not_served_yet))
}

/// Whether `live` carries this lab's labels.
pub fn owned(live: &Value, lab: &str) -> bool {
    let labels = &live["metadata"]["labels"];
    labels[MANAGED_BY] == "seclab" && labels[PART_OF] == lab
}

/// The inventory that records every desired object and `kept` (objects that must stay
/// listed, e.g. prunes not done yet).
pub fn record(plan: &Plan, kept: &BTreeMap<ObjectKey, String>) -> Inventory {
    let mut inventory = plan.inventory.clone();
    inventory.members = kept.clone();
    let recorded = |s: &&Step| s.action == Action::Keep || (s.action != Action::Prune && s.manifest.is_some());
    for step in plan.steps.iter().filter(recorded) {
        inventory.members.insert(step.key.clone(), step.api_version.clone());
    }
    inventory
}

/// What the plan keeps of each listed object.
struct Keep<'a> {
    /// The lab's objects, by key.
    desired: HashMap<&'a ObjectKey, &'a Value>,
    /// The Secrets apply fills in, whose live values it reuses.
    secrets: HashSet<&'a ObjectKey>,
    /// The lab's name.
    lab: &'a str,
}

impl Keep<'_> {
    /// Sorts out one listed object. A desired object that already is as wanted, and an
    /// object the file does not have (a prune candidate, or someone else's), are reduced to
    /// their identity and labels, all that pruning and ownership checks read; a desired
    /// object that differs, and a Secret apply fills in, keep what a diff needs. Returns
    /// whether the object is unchanged.
    fn sort(&self, key: &ObjectKey, live: &mut Value) -> bool {
        let is_unchanged = self.desired.get(key).is_some_and(|d| owned(live, self.lab) && compare::unchanged(d, live));
        if is_unchanged || !(self.desired.contains_key(key) || self.secrets.contains(key)) {
            identity_only(live);
        } else {
            compare::slim(live);
        }
        is_unchanged
    }
}

/// Keeps `apiVersion`, `kind`, and the name, namespace and labels of an object.
fn identity_only(live: &mut Value) {
    let Value::Object(object) = live else { return };
    object.retain(|field, _| matches!(field.as_str(), "apiVersion" | "kind" | "metadata"));
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.retain(|field, _| matches!(field.as_str(), "name" | "namespace" | "labels"));
    }
}

/// Lists every target; returns the live objects (as `Keep` leaves them) and the keys of
/// the desired ones that are unchanged.
async fn list_all(
    cluster: &Cluster,
    kinds: &HashMap<(String, String), Kind>,
    lists: BTreeSet<ListTarget>,
    keep: &Keep<'_>,
) -> Result<(HashMap<ObjectKey, Value>, HashSet<ObjectKey>), PlanError> {
    let results: Vec<Vec<(ObjectKey, Value, bool)>> = stream::iter(lists)
        .map(|(api_version, kind_name, namespace)| {
            let kind = &kinds[&(api_version.clone(), kind_name.clone())];
            async move {
                let where_ = namespace.as_deref().map(|ns| format!(" in {ns}")).unwrap_or_default();
                cluster
                    .list(kind, namespace.as_deref(), |mut item| {
                        let key = ObjectKey {
                            group: kind.resource.group.clone(),
                            kind: kind_name.clone(),
                            namespace: item["metadata"]["namespace"].as_str().map(str::to_owned),
                            name: item["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                        };
                        let unchanged = keep.sort(&key, &mut item);
                        Some((key, item, unchanged))
                    })
                    .await
                    .map_err(failed(format!("cannot list {kind_name}{where_}")))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut live = HashMap::new();
    let mut unchanged = HashSet::new();
    for (key, object, is_unchanged) in results.into_iter().flatten() {
        if is_unchanged {
            unchanged.insert(key.clone());
        }
        live.insert(key, object);
    }
    Ok((live, unchanged))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey { group: String::new(), kind: "ConfigMap".into(), namespace: Some("n".into()), name: name.into() }
    }

    fn config_map(name: &str, value: &str, part_of: &str) -> Value {
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": "n", "uid": "u", "annotations": { "a": "b" },
                "labels": { MANAGED_BY: "seclab", PART_OF: part_of } },
            "data": { "k": value } })
    }

    #[test]
    fn keeps_whole_only_the_listed_objects_a_diff_or_a_secret_needs() {
        let (same, changed, other, secret) = (key("same"), key("changed"), key("other"), key("secret"));
        let (want_same, want_changed) = (config_map("same", "1", "lab"), config_map("changed", "2", "lab"));
        let keep = Keep {
            desired: HashMap::from([(&same, &want_same), (&changed, &want_changed)]),
            secrets: HashSet::from([&secret]),
            lab: "lab",
        };
        let identity = |name: &str, part_of: &str| {
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": name, "namespace": "n", "labels": { MANAGED_BY: "seclab", PART_OF: part_of } } })
        };

        let mut live = config_map("same", "1", "lab");
        assert!(keep.sort(&same, &mut live), "unchanged");
        assert_eq!(live, identity("same", "lab"));

        let mut live = config_map("changed", "1", "lab");
        assert!(!keep.sort(&changed, &mut live));
        assert_eq!(live, config_map("changed", "1", "lab"), "kept for the diff");

        let mut live = config_map("same", "1", "another-lab");
        assert!(!keep.sort(&same, &mut live), "not the lab's, so not unchanged");
        assert_eq!(live["data"]["k"], "1", "kept: the plan reports it");

        let mut live = config_map("other", "1", "lab");
        assert!(!keep.sort(&other, &mut live));
        assert_eq!(live, identity("other", "lab"), "a prune candidate needs only its labels");

        let mut live = config_map("secret", "1", "lab");
        assert!(!keep.sort(&secret, &mut live));
        assert_eq!(live["data"]["k"], "1", "a Secret's values are reused");
    }
}
