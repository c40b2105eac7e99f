//! The lab at a glance: every object it renders, whether it exists and is ready, by
//! component.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::cluster::readiness::Readiness;
use crate::config::Lab;
use crate::identity::{COMPONENT, KindName, ObjectKey};
use crate::render::Rendered;

use super::model::{Desired, PlanError, failed, secret_key};
use super::observe::resolve_kinds_or_unserved;
use super::plan;
use super::secrets;
use super::wait::{self, ObjectState, WaitError};

/// The component of the Secrets apply creates.
const SECRETS: &str = "secrets";

/// Every object of a lab, with its readiness, by component.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabStatus {
    /// The lab's name.
    pub lab: String,
    /// The objects of each component, sorted.
    pub components: BTreeMap<String, Vec<ObjectState>>,
}

impl LabStatus {
    /// Every object.
    pub fn objects(&self) -> impl Iterator<Item = &ObjectState> {
        self.components.values().flatten()
    }

    /// How many objects are ready.
    pub fn ready(&self) -> usize {
        self.objects().filter(|s| s.readiness.is_ready()).count()
    }

    /// How many objects the lab has.
    pub fn total(&self) -> usize {
        self.components.values().map(Vec::len).sum()
    }
}

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// A kind could not be resolved.
    #[error(transparent)]
    Kinds(#[from] PlanError),
    /// Readiness could not be read.
    #[error(transparent)]
    Readiness(#[from] WaitError),
}

/// Names the Jobs that follow the values of Secrets as apply named them, from the Secrets
/// the cluster holds (one LIST per namespace).
async fn name_rerun_jobs(cluster: &Cluster, desired: &mut Desired) -> Result<(), PlanError> {
    let read = secrets::read_by_rerun_jobs(&desired.objects, &desired.secret_keys);
    let mut wanted: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for (secret, _) in &read {
        wanted.entry(secret.namespace.as_deref().unwrap_or_default()).or_default().insert(&secret.name);
    }
    let mut live: HashMap<ObjectKey, Value> = HashMap::new();
    for (namespace, names) in &wanted {
        let found = secrets::secret_data(cluster, namespace, names)
            .await
            .map_err(failed(format!("cannot list the Secrets in {namespace}")))?;
        live.extend(found.into_iter().map(|(name, data)| (secret_key(namespace, &name), data)));
    }
    let value_of = |secret: &ObjectKey, key: &str| live.get(secret)?[key].as_str().map(str::to_owned);
    secrets::name_rerun_jobs(&mut desired.objects, &desired.secret_keys, &value_of);
    Ok(())
}

/// Reads the readiness of every object `rendered` holds. Objects of a kind that a CRD of
/// the lab defines and the cluster does not serve yet are missing, not an error.
pub async fn status(
    cluster: &Cluster,
    lab: &Lab,
    rendered: Rendered,
    cancel: &CancellationToken,
) -> Result<LabStatus, StatusError> {
    let inventory = plan::lab_inventory(lab);
    let mut desired = Desired::new(rendered, lab.name(), &inventory.id());
    name_rerun_jobs(cluster, &mut desired).await?;
    // The inventory is not read: status shows the file's objects, not what was pruned.
    let (kinds, not_served_yet, unserved) = resolve_kinds_or_unserved(cluster, &desired, &inventory).await?;
    let unserved: HashSet<KindName> = unserved.into_iter().map(|(kind, _)| kind).collect();
    let mut component_of: HashMap<_, String> = HashMap::new();
    for (object, _) in &desired.objects {
        let component = object.manifest["metadata"]["labels"][COMPONENT].as_str().unwrap_or_default();
        component_of.insert(object.key.clone(), component.to_owned());
    }
    let mut served = Vec::new();
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    for (key, api_version) in desired.keys() {
        let pair = KindName::new(api_version, key.kind.clone());
        let why = if not_served_yet.contains(&pair) {
            Some("not applied yet (its kind's CRD is not applied either)".to_owned())
        } else if unserved.contains(&pair) {
            Some(format!(
                "not applied yet: the cluster does not serve {} in {}; install its CRD or operator (`seclab bootstrap` installs the file's operators)",
                pair.kind, pair.api_version
            ))
        } else {
            None
        };
        if let Some(why) = why {
            missing.push(ObjectState {
                object: key.to_string(),
                key: key.clone(),
                exists: false,
                readiness: Readiness::Waiting(why),
                warning: None,
                pods: None,
            });
        } else if seen.insert(key) {
            served.push((key.clone(), kinds[&pair].clone()));
        }
    }
    let states = wait::states(cluster, &served, &lab.spec().cluster.readiness, cancel).await?;
    let states = wait::explained(cluster, states).await;
    let mut components: BTreeMap<String, Vec<ObjectState>> = BTreeMap::new();
    let absent = |mut state: ObjectState| {
        if !state.exists {
            state.readiness = Readiness::Waiting("not applied yet".into());
        }
        state
    };
    for state in states.into_iter().map(absent).chain(missing) {
        let component = component_of.get(&state.key).cloned().unwrap_or_else(|| SECRETS.to_owned());
        components.entry(component).or_default().push(state);
    }
    for list in components.values_mut() {
        list.sort_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(LabStatus { lab: lab.name().to_owned(), components })
}
