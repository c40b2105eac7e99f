//! Readiness of a lab's objects, read with one LIST per kind and namespace, and the wait
//! for all of them after an apply.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cluster::readiness::{Readiness, assess};
use crate::cluster::{Cluster, ClusterError, Kind};
use crate::config::model::ReadinessRule;
use crate::identity::{KindName, ObjectKey};
use crate::words::count;

use super::fan_out::{Cancelled, fan_out};
use super::model::ListTarget;

/// How often readiness is read again while waiting.
const POLL: Duration = Duration::from_secs(1);

/// One object's readiness.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectState {
    /// The object.
    pub object: String,
    /// Its identity.
    #[serde(skip)]
    pub key: ObjectKey,
    /// Whether it exists.
    pub exists: bool,
    /// Its readiness.
    pub readiness: Readiness,
    /// The newest Warning event about it, when it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// What keeps its pods from being ready, as the kubelet reports it (a workload only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<String>,
}

/// Why a wait ended without everything ready.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Time ran out.
    #[error("timed out after {} waiting for {}:\n{}", humantime::format_duration(*.after), count(.pending.len() as u64, "object", "objects"), list(.pending))]
    Timeout {
        /// The timeout.
        after: Duration,
        /// What was still not ready.
        pending: Vec<ObjectState>,
    },
    /// Some object failed for good (a Job out of retries, a rollout past its deadline).
    #[error("{} and will not become ready without a change:\n{}", count(.failed.len() as u64, "object failed", "objects failed"), list(.failed))]
    Failed {
        /// The failed objects.
        failed: Vec<ObjectState>,
    },
    /// Readiness could not be read.
    #[error("cannot read readiness: {0}")]
    Cluster(#[from] ClusterError),
    /// The wait was stopped.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

fn list(states: &[ObjectState]) -> String {
    states
        .iter()
        .map(|state| {
            let reason = match &state.readiness {
                Readiness::Waiting(reason) | Readiness::Failed(reason) => reason.as_str(),
                Readiness::Ready => "ready",
            };
            let warning = state.warning.as_ref().map(|w| format!("\n      last warning: {w}")).unwrap_or_default();
            let pods = state.pods.as_ref().map(|p| format!("\n      {p}")).unwrap_or_default();
            format!("  - {}: {reason}{warning}{pods}", state.object)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The readiness of every object in `objects`.
pub async fn states(
    cluster: &Cluster,
    objects: &[(ObjectKey, Kind)],
    rules: &[ReadinessRule],
    cancel: &CancellationToken,
) -> Result<Vec<ObjectState>, WaitError> {
    let mut groups: BTreeMap<ListTarget, (Kind, Vec<ObjectKey>)> = BTreeMap::new();
    for (key, kind) in objects {
        let namespace = if kind.namespaced { key.namespace.clone() } else { None };
        let entry = ListTarget::new(KindName::new(kind.resource.api_version.clone(), key.kind.clone()), namespace);
        groups.entry(entry).or_insert_with(|| (kind.clone(), Vec::new())).1.push(key.clone());
    }
    let lists = fan_out(groups, cancel, |(ListTarget { namespace, .. }, (kind, keys))| async move {
        let wanted: HashMap<&str, &ObjectKey> = keys.iter().map(|key| (key.name.as_str(), key)).collect();
        let mut found: HashMap<String, Readiness> = cluster
            .list(&kind, namespace.as_deref(), |item| {
                let key = wanted.get(item["metadata"]["name"].as_str()?)?;
                Some((key.name.clone(), assess(key, &item, rules)))
            })
            .await?
            .into_iter()
            .collect();
        Ok::<_, ClusterError>(
            keys.into_iter()
                .map(|key| {
                    let (exists, readiness) = match found.remove(&key.name) {
                        Some(readiness) => (true, readiness),
                        None => (false, Readiness::Waiting("it does not exist".into())),
                    };
                    ObjectState { object: key.to_string(), key, exists, readiness, warning: None, pods: None }
                })
                .collect::<Vec<_>>(),
        )
    })
    .await?;
    let mut states = Vec::new();
    for list in lists {
        states.extend(list.map_err(WaitError::Cluster)?);
    }
    states.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(states)
}

/// Waits until every object is ready, calling `progress` with what is still waiting after
/// each look. Fails at once when an object fails for good, and at `timeout` naming what is
/// stuck with its reason and newest warning event.
pub async fn wait(
    cluster: &Cluster,
    objects: &[(ObjectKey, Kind)],
    rules: &[ReadinessRule],
    timeout: Duration,
    progress: &mut (dyn FnMut(&[ObjectState]) + Send),
    cancel: &CancellationToken,
) -> Result<(), WaitError> {
    let started = Instant::now();
    loop {
        let pending: Vec<ObjectState> =
            states(cluster, objects, rules, cancel).await?.into_iter().filter(|s| !s.readiness.is_ready()).collect();
        progress(&pending);
        if pending.is_empty() {
            return Ok(());
        }
        let failed: Vec<ObjectState> =
            pending.iter().filter(|s| matches!(s.readiness, Readiness::Failed(_))).cloned().collect();
        if !failed.is_empty() {
            return Err(WaitError::Failed { failed: explained(cluster, failed).await });
        }
        if started.elapsed() + POLL > timeout {
            return Err(WaitError::Timeout { after: timeout, pending: explained(cluster, pending).await });
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(Cancelled.into()),
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// How many objects that are not ready get their events and pods read (a few requests each).
const MAX_EXPLAINED: usize = 20;

/// `states` with why each is not ready (the first [`MAX_EXPLAINED`]): its newest Warning
/// event, and its pods' trouble.
pub(super) async fn explained(cluster: &Cluster, mut states: Vec<ObjectState>) -> Vec<ObjectState> {
    for state in states.iter_mut().filter(|s| s.exists && !s.readiness.is_ready()).take(MAX_EXPLAINED) {
        state.warning = cluster.last_warning(&state.key).await;
        state.pods = cluster.pod_trouble(&state.key).await;
    }
    states
}
