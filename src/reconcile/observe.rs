//! Observing a lab in the cluster: its inventory, the kinds it uses, and its live objects,
//! read with one LIST per kind and namespace and trimmed as they arrive to what the decision
//! needs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::inventory::Inventory;
use crate::cluster::{Cluster, ClusterError, Kind, compare};
use crate::identity::{KindName, ObjectKey, owned};

use super::fan_out::fan_out;
use super::model::{Desired, ListTarget, Live, Observed, PlanError, failed};
use super::secrets;

/// What is read of a lab before its desired objects are known: the inventory and, for each
/// kind and namespace it records, the LIST's body, unread. A re-apply names the same objects,
/// so `apply` and `plan` read them while the file is still rendering.
#[derive(Debug)]
pub struct ReadAhead {
    /// The inventory, read from its object when that has been fetched.
    inventory: Inventory,
    /// The inventory object: `None` until fetched, then whether it exists.
    parent: Option<Option<Value>>,
    /// LIST bodies by target.
    bodies: HashMap<ListTarget, String>,
}

impl From<Inventory> for ReadAhead {
    /// Nothing read ahead yet.
    fn from(inventory: Inventory) -> Self {
        Self { inventory, parent: None, bodies: HashMap::new() }
    }
}

/// Reads the inventory of `inventory`'s set and LISTs every kind and namespace it records
/// (a kind the cluster no longer serves is left out: [`observe`] warns of it).
pub async fn read_ahead(
    cluster: &Cluster,
    inventory: Inventory,
    cancel: &CancellationToken,
) -> Result<ReadAhead, PlanError> {
    let mut ahead = ReadAhead::from(inventory);
    read_inventory(cluster, &mut ahead).await?;
    let mut kinds = HashMap::new();
    // Kinds no longer served are left out; `observe` warns of them.
    resolve_member_kinds(cluster, &ahead.inventory, &mut kinds).await?;
    let lists = list_targets_of(ahead.inventory.places(), &kinds, &HashSet::new());
    let bodies = fan_out(lists, cancel, |target| {
        let kind = &kinds[&target.kind];
        async move {
            let body = cluster.list_body(kind, target.namespace.as_deref()).await;
            match body {
                Ok(body) => Ok((target, body)),
                Err(error) => Err(cannot_list(&target.kind.kind, target.namespace.as_deref())(error)),
            }
        }
    })
    .await?;
    ahead.bodies = bodies.into_iter().collect::<Result<_, _>>()?;
    Ok(ahead)
}

/// Fetches the inventory object, unless it was read ahead.
async fn read_inventory(cluster: &Cluster, ahead: &mut ReadAhead) -> Result<(), PlanError> {
    if ahead.parent.is_some() {
        return Ok(());
    }
    let config_map = cluster.kind("v1", "ConfigMap").await.map_err(failed("cannot resolve ConfigMaps"))?;
    let inventory = &mut ahead.inventory;
    let parent = cluster
        .get(&config_map, Some(&inventory.namespace), &inventory.name)
        .await
        .map_err(failed(format!("cannot read the inventory {}", inventory.key())))?;
    if let Some(parent) = &parent {
        inventory.read(parent);
    }
    ahead.parent = Some(parent);
    Ok(())
}

/// Reads the inventory and every object of the lab's kinds in its namespaces, using what was
/// read ahead.
pub async fn observe(
    cluster: &Cluster,
    ahead: impl Into<ReadAhead>,
    desired: &Desired,
    cancel: &CancellationToken,
) -> Result<Observed, PlanError> {
    let mut ahead = ahead.into();
    read_inventory(cluster, &mut ahead).await?;
    let ReadAhead { inventory, parent, mut bodies } = ahead;
    let (kinds, not_served_yet) = resolve_kinds(cluster, desired, &inventory).await?;
    let lists = list_targets(desired, &inventory, &kinds, &not_served_yet);
    let lists = lists.into_iter().map(|target| {
        let body = bodies.remove(&target);
        (target, body)
    });
    let trim = Arc::new(Trim::new(desired));
    let (live, unchanged) = list_all(cluster, &kinds, lists.collect::<Vec<_>>(), trim, cancel).await?;
    let inventory_exists = parent.is_some_and(|parent| parent.is_some());
    Ok(Observed { inventory, inventory_exists, kinds, not_served_yet, live, unchanged })
}

/// Resolves the lab's kinds, the Secrets', and the inventory's. A kind the cluster does not
/// serve yet may come from a CRD in the lab itself; an inventory member whose kind is gone
/// is left alone, with a warning.
pub async fn resolve_kinds(
    cluster: &Cluster,
    desired: &Desired,
    inventory: &Inventory,
) -> Result<(HashMap<KindName, Kind>, HashSet<KindName>), PlanError> {
    let (kinds, not_served_yet, unserved) = resolve_kinds_or_unserved(cluster, desired, inventory).await?;
    match unserved.into_iter().next() {
        Some((kind, error)) => Err(failed(format!("cannot apply {}", kind.kind))(error)),
        None => Ok((kinds, not_served_yet)),
    }
}

/// Kinds resolved and not served yet by a CRD of the lab, as [`resolve_kinds`], and the
/// kinds the cluster does not serve at all with the error saying so (for `status`, which
/// lists their objects as missing).
pub async fn resolve_kinds_or_unserved(
    cluster: &Cluster,
    desired: &Desired,
    inventory: &Inventory,
) -> Result<(HashMap<KindName, Kind>, HashSet<KindName>, Vec<(KindName, ClusterError)>), PlanError> {
    let mut unserved = Vec::new();
    let mut resolved = HashMap::new();
    let mut not_served_yet = HashSet::new();
    let crds = desired.crds();
    for (api_version, kind) in desired.kinds() {
        let pair = KindName::new(api_version, kind);
        let found = match cluster.kind(api_version, kind).await {
            Ok(found) => found,
            Err(unknown @ ClusterError::UnknownKind { .. }) => {
                let Some(defined) = crds.iter().find_map(|crd| Kind::defined_by(crd, api_version, kind)) else {
                    unserved.push((pair, unknown));
                    continue;
                };
                not_served_yet.insert(pair.clone());
                defined
            }
            Err(other) => return Err(failed(format!("cannot apply {kind}"))(other)),
        };
        resolved.insert(pair, found);
    }
    for (kind, key) in resolve_member_kinds(cluster, inventory, &mut resolved).await? {
        let KindName { api_version, kind } = kind;
        tracing::warn!(
            "the inventory lists {kind} objects ({key} among them) but the cluster no longer serves \
             {api_version} {kind}; they are left alone"
        );
    }
    Ok((resolved, not_served_yet, unserved))
}

/// Resolves the kinds of the inventory's members that `resolved` lacks, into it. Returns the
/// kinds the cluster no longer serves, each with one of its members.
async fn resolve_member_kinds<'a>(
    cluster: &Cluster,
    inventory: &'a Inventory,
    resolved: &mut HashMap<KindName, Kind>,
) -> Result<Vec<(KindName, &'a ObjectKey)>, PlanError> {
    // One member of each kind stands for all.
    let mut members: BTreeMap<(&str, &str), &ObjectKey> = BTreeMap::new();
    for (key, api_version) in inventory.places() {
        members.entry((api_version, key.kind.as_str())).or_insert(key);
    }
    let mut unserved = Vec::new();
    for ((api_version, kind), key) in members {
        let pair = KindName::new(api_version, kind);
        if resolved.contains_key(&pair) {
            continue;
        }
        match cluster.kind(api_version, kind).await {
            Ok(found) => {
                resolved.insert(pair, found);
            }
            Err(ClusterError::UnknownKind { .. }) => unserved.push((pair, key)),
            Err(other) => return Err(failed(format!("cannot resolve {}", key.kind))(other)),
        }
    }
    Ok(unserved)
}

/// One LIST per kind and namespace of the lab's objects, its Secrets and its inventory's
/// members, except kinds not served yet.
pub fn list_targets(
    desired: &Desired,
    inventory: &Inventory,
    kinds: &HashMap<KindName, Kind>,
    not_served_yet: &HashSet<KindName>,
) -> BTreeSet<ListTarget> {
    list_targets_of(desired.keys().chain(inventory.places()), kinds, not_served_yet)
}

/// One LIST per kind and namespace of `objects` (keys with their `apiVersion`s), for the
/// kinds resolved in `kinds` except those not served yet.
fn list_targets_of<'a>(
    objects: impl Iterator<Item = (&'a ObjectKey, &'a str)>,
    kinds: &HashMap<KindName, Kind>,
    not_served_yet: &HashSet<KindName>,
) -> BTreeSet<ListTarget> {
    // Thousands of objects share a few kinds and namespaces: those are found first.
    let places: BTreeSet<(&str, &str, Option<&str>)> =
        objects.map(|(key, api_version)| (api_version, key.kind.as_str(), key.namespace.as_deref())).collect();
    let mut lists = BTreeSet::new();
    for (api_version, kind_name, namespace) in places {
        let name = KindName::new(api_version, kind_name);
        if let Some(kind) = kinds.get(&name).filter(|_| !not_served_yet.contains(&name)) {
            let namespace = namespace.filter(|_| kind.namespaced).map(str::to_owned);
            lists.insert(ListTarget::new(name, namespace));
        }
    }
    lists
}

/// What the plan keeps of each listed object. It owns what it reads (the manifests are
/// shared), so that LIST bodies are read on other threads while more arrive.
pub struct Trim {
    /// The lab's objects, by key.
    desired: HashMap<ObjectKey, Arc<Value>>,
    /// The Secrets apply fills in, whose live values it reuses.
    secrets: HashSet<ObjectKey>,
    /// Jobs named after the Secrets they read, by namespace and name without the last part
    /// (their final names are known only once the Secrets are filled in). A handful.
    rerun_jobs: Vec<(Option<String>, String)>,
    /// The lab's name.
    lab: String,
}

impl Trim {
    /// The trim for `desired`.
    pub fn new(desired: &Desired) -> Self {
        Self {
            desired: desired.objects.iter().map(|(o, _)| (o.key.clone(), o.manifest.clone())).collect(),
            secrets: desired.secret_keys.iter().cloned().collect(),
            rerun_jobs: desired
                .objects
                .iter()
                .filter_map(|(o, _)| secrets::rerun_stem(o).map(|stem| (o.key.namespace.clone(), stem.to_owned())))
                .collect(),
            lab: desired.lab.clone(),
        }
    }

    /// Sorts out one listed object. A desired object that already is as wanted, and an
    /// object the file does not have (a prune candidate, or someone else's), are reduced to
    /// their identity and labels, all that pruning and ownership checks read; a desired
    /// object that differs, and a Secret apply fills in, keep what a diff needs. Returns
    /// whether the object is unchanged.
    pub fn sort(&self, key: &ObjectKey, live: &mut Value) -> bool {
        let is_unchanged = self.desired.get(key).is_some_and(|d| owned(live, &self.lab) && compare::unchanged(d, live));
        let rerun_job = key.kind == "Job"
            && key.name.rsplit_once('-').is_some_and(|(stem, _)| {
                self.rerun_jobs.iter().any(|(namespace, name)| *namespace == key.namespace && name == stem)
            });
        if is_unchanged || !(self.desired.contains_key(key) || self.secrets.contains(key) || rerun_job) {
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

/// The identity of a listed object of `kind`.
pub fn key_of(kind: &Kind, item: &Value) -> ObjectKey {
    ObjectKey {
        group: kind.resource.group.clone(),
        kind: kind.resource.kind.clone(),
        namespace: item["metadata"]["namespace"].as_str().map(str::to_owned),
        name: item["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Adds which LIST failed to a cluster error.
fn cannot_list(kind: &str, namespace: Option<&str>) -> impl FnOnce(ClusterError) -> PlanError {
    let where_ = namespace.map(|ns| format!(" in {ns}")).unwrap_or_default();
    failed(format!("cannot list {kind}{where_}"))
}

/// Lists every target not read ahead; returns the live objects (as [`Trim`] leaves them)
/// and the keys of the desired ones that are unchanged. Each body is read on a blocking
/// thread as soon as it is there, while the rest are still coming: with thousands of
/// objects, reading them is a large share of a plan's CPU.
async fn list_all(
    cluster: &Cluster,
    kinds: &HashMap<KindName, Kind>,
    lists: Vec<(ListTarget, Option<String>)>,
    trim: Arc<Trim>,
    cancel: &CancellationToken,
) -> Result<(Live, HashSet<ObjectKey>), PlanError> {
    let results = fan_out(lists, cancel, |(ListTarget { kind: name, namespace }, read_ahead)| {
        let kind_name = name.kind.clone();
        let kind = kinds[&name].clone();
        let trim = trim.clone();
        async move {
            let body = match read_ahead {
                Some(body) => body,
                None => cluster
                    .list_body(&kind, namespace.as_deref())
                    .await
                    .map_err(cannot_list(&kind_name, namespace.as_deref()))?,
            };
            let read = tokio::task::spawn_blocking(move || {
                Cluster::read_list(&kind, &body, |mut item| {
                    let key = key_of(&kind, &item);
                    let unchanged = trim.sort(&key, &mut item);
                    Some((key, item, unchanged))
                })
            });
            let read = read.await.unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()));
            read.map_err(cannot_list(&kind_name, namespace.as_deref()))
        }
    })
    .await?;
    let mut live = HashMap::new();
    let mut unchanged = HashSet::new();
    for (key, object, is_unchanged) in results.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten() {
        if is_unchanged {
            unchanged.insert(key.clone());
        }
        live.insert(key, Arc::new(object));
    }
    Ok((live, unchanged))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::identity::{MANAGED_BY, PART_OF};

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
        let trim = Trim {
            desired: HashMap::from([(same.clone(), Arc::new(want_same)), (changed.clone(), Arc::new(want_changed))]),
            secrets: HashSet::from([secret.clone()]),
            rerun_jobs: Vec::new(),
            lab: "lab".into(),
        };
        let identity = |name: &str, part_of: &str| {
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": name, "namespace": "n", "labels": { MANAGED_BY: "seclab", PART_OF: part_of } } })
        };

        let mut live = config_map("same", "1", "lab");
        assert!(trim.sort(&same, &mut live), "unchanged");
        assert_eq!(live, identity("same", "lab"));

        let mut live = config_map("changed", "1", "lab");
        assert!(!trim.sort(&changed, &mut live));
        assert_eq!(live, config_map("changed", "1", "lab"), "kept for the diff");

        let mut live = config_map("same", "1", "another-lab");
        assert!(!trim.sort(&same, &mut live), "not the lab's, so not unchanged");
        assert_eq!(live["data"]["k"], "1", "kept: the plan reports it");

        let mut live = config_map("other", "1", "lab");
        assert!(!trim.sort(&other, &mut live));
        assert_eq!(live, identity("other", "lab"), "a prune candidate needs only its labels");

        let mut live = config_map("secret", "1", "lab");
        assert!(!trim.sort(&secret, &mut live));
        assert_eq!(live["data"]["k"], "1", "a Secret's values are reused");
    }
}
