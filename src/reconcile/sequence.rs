//! The apply sequence, the same for `seclab apply`, `seclab watch` and `seclab bootstrap`:
//! a plan carried out, the lab's objects waited for, the file's tenants and scan groups
//! reconciled into the scan database, and the tenants' databases on an external server.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, Kind};
use crate::config::Lab;
use crate::identity::ObjectKey;
use crate::scan::store::{StoreError, SyncChange};

use super::apply::{self, ApplyError, OnProblems, Outcome};
use super::model::{Action, Plan, Step};
use super::scan_database;
use super::tenant_databases::{self, DatabaseError};
use super::wait::{self, ObjectState, WaitError};

/// What the sequence tells its caller as it goes.
pub struct Hooks<'a> {
    /// After each object is applied or pruned, with the verb (`created`, `pruned`...).
    pub step: &'a (dyn Fn(&Step, Action) + Sync),
    /// After the objects are applied, before the wait.
    pub applied: &'a mut (dyn FnMut(&Outcome, Duration) + Send),
    /// After each look while waiting: what is still not ready.
    pub waiting: &'a mut (dyn FnMut(&[ObjectState]) + Send),
}

/// What the sequence did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// What the apply did to the objects.
    pub outcome: Outcome,
    /// How long the apply took.
    #[serde(skip)]
    pub applied_in: Duration,
    /// How long the wait for readiness took, when there was one.
    #[serde(skip)]
    pub ready_in: Option<Duration>,
    /// The rows the scan database sync changed, when the lab has a scan database.
    pub scan_database: Option<Vec<SyncChange>>,
    /// What was done to the tenants' databases, when they are on an external server.
    pub tenant_databases: Option<Vec<tenant_databases::Step>>,
}

/// Why the sequence stopped.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    /// The apply stopped.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The lab is applied but did not become ready.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The cluster is applied, but the scan database is not.
    #[error("the cluster is applied, but the scan database is not: {0}")]
    ScanDatabase(#[from] StoreError),
    /// The cluster is applied, but the tenants' databases are not.
    #[error("the cluster is applied, but the tenants' databases are not: {0}")]
    TenantDatabases(#[from] DatabaseError),
}

/// Carries out `plan`, waits (for at most `wait`, when given) until every object the lab
/// keeps is ready, then reconciles the scan database.
pub async fn apply_planned(
    cluster: &Cluster,
    lab: &Lab,
    plan: &Plan,
    on_problems: OnProblems,
    wait: Option<Duration>,
    hooks: Hooks<'_>,
    cancel: &CancellationToken,
) -> Result<Applied, SequenceError> {
    let started = Instant::now();
    let outcome = apply::apply(cluster, plan, on_problems, hooks.step, cancel).await?;
    let applied_in = started.elapsed();
    (hooks.applied)(&outcome, applied_in);
    let ready_in = match wait {
        Some(timeout) => {
            let waited = Instant::now();
            let objects = kept_objects(plan);
            wait::wait(cluster, &objects, &lab.spec().cluster.readiness, timeout, hooks.waiting, cancel).await?;
            Some(waited.elapsed())
        }
        None => None,
    };
    let scan_database = sync_scan_database(lab).await?;
    // After the prunes: a tenant's database is dropped only once its app is gone.
    let tenant_databases = if tenant_databases::is_external(lab) {
        Some(tenant_databases::reconcile(cluster, lab, plan.allow_destructive).await?)
    } else {
        None
    };
    Ok(Applied { outcome, applied_in, ready_in, scan_database, tenant_databases })
}

/// Every object the plan keeps in the cluster, with its kind.
pub fn kept_objects(plan: &Plan) -> Vec<(ObjectKey, Kind)> {
    let blocked = plan.blocked();
    plan.steps
        .iter()
        .filter(|s| s.is_recorded() && !blocked.contains(&s.key))
        .map(|s| (s.key.clone(), plan.kind_of(s).clone()))
        .collect()
}

/// Reconciles tenants and scan groups into the scan database, when the lab has any or a
/// database already exists.
pub async fn sync_scan_database(lab: &Lab) -> Result<Option<Vec<SyncChange>>, StoreError> {
    let spec = lab.spec();
    let has_scans = spec.tenants.iter().any(|t| !t.scans.is_empty());
    let exists =
        spec.scan_database.url.is_some() || scan_database::base_dir(lab).join(&spec.scan_database.path).exists();
    if !has_scans && !exists {
        return Ok(None);
    }
    let store = scan_database::open(lab).await?;
    Ok(Some(store.sync(spec).await?))
}
