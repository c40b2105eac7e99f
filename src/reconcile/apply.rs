//! Carrying out a plan: stages in order with bounded parallelism inside each, the inventory
//! written before any object so that an interrupted apply orphans nothing, prunes in
//! reverse order, and the inventory trimmed at the end.
//!
//! No lock or "in progress" marker is kept anywhere: a killed apply leaves an inventory that
//! lists every object it may have created, and the next apply simply plans again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde::Serialize;

use crate::cluster::inventory::Inventory;
use crate::cluster::readiness::{self, Readiness};
use crate::cluster::{Cluster, ClusterError, describe_conflicts, order};
use crate::render::ObjectKey;

use super::plan::{Action, CONCURRENCY, Plan, Problem, Step, record};

/// How long a replaced object may take to go away before it is created again.
const GONE_TIMEOUT: Duration = Duration::from_secs(120);

/// What an apply did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Objects created.
    pub created: usize,
    /// Objects updated.
    pub updated: usize,
    /// Objects deleted and created again.
    pub replaced: usize,
    /// Objects pruned.
    pub pruned: usize,
    /// Objects left as they were.
    pub unchanged: usize,
    /// Objects that failed, with the reason.
    pub failed: Vec<Failed>,
}

/// An object the apply could not handle.
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    /// The object.
    pub object: String,
    /// Why.
    pub error: String,
}

/// Why an apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan has problems; nothing was written.
    #[error("nothing was applied:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<Problem>),
    /// Some objects failed; earlier stages were applied and recorded.
    #[error("the {stage} stage failed:\n{}", .outcome.failed.iter().map(|f| format!("  - {}: {}", f.object, f.error)).collect::<Vec<_>>().join("\n"))]
    Failed {
        /// The stage that failed.
        stage: &'static str,
        /// What was done before.
        outcome: Outcome,
    },
    /// The inventory could not be written; nothing after it was.
    #[error("cannot record the inventory {object}: {source}")]
    Inventory {
        /// The inventory object.
        object: String,
        /// The error.
        source: ClusterError,
    },
}

/// Applies `plan`, calling `report` after each object is done.
pub async fn apply(
    cluster: &Cluster,
    plan: &Plan,
    report: &(dyn Fn(&Step, &str) + Sync),
) -> Result<Outcome, ApplyError> {
    if !plan.problems.is_empty() {
        return Err(ApplyError::Refused(plan.problems.clone()));
    }
    let mut outcome = Outcome { unchanged: plan.count(Action::Unchanged), ..Outcome::default() };
    if plan.changes().next().is_none() && !plan.inventory_stale {
        return Ok(outcome);
    }
    // Record every object this apply may create before creating any. The inventory lives in
    // the lab's namespace, which the first stage may have to create.
    let before = record(plan, &plan.inventory.members);
    let mut written = plan.inventory.clone();
    let mut first_stage_done = false;
    if before.members != written.members || plan.inventory_stale {
        match write_inventory(cluster, &before, &plan.lab).await {
            Ok(()) => written = before.clone(),
            Err(ApplyError::Inventory { source, .. }) if source.code() == 404 => {
                run_stage(cluster, plan, 0, &mut outcome, report).await?;
                first_stage_done = true;
                write_inventory(cluster, &before, &plan.lab).await?;
                written = before.clone();
            }
            Err(other) => return Err(other),
        }
    }
    for stage in 0..order::STAGES.len() {
        if stage == 0 && first_stage_done {
            continue;
        }
        run_stage(cluster, plan, stage, &mut outcome, report).await?;
        if stage == 0 {
            wait_for_crds(cluster, plan).await;
        }
    }

    let prunes: Vec<&Step> = plan.steps.iter().filter(|s| s.action == Action::Prune).collect();
    let mut kept: BTreeMap<ObjectKey, String> = BTreeMap::new();
    for stage in (0..order::STAGES.len()).rev() {
        let batch = prunes.iter().copied().filter(|s| order::stage(&s.key) == stage);
        let results = in_parallel(batch, |step| cluster.delete(&plan.kinds[&step.key], &step.key)).await;
        for (step, result) in results {
            match result {
                Ok(()) => {
                    outcome.pruned += 1;
                    report(step, "pruned");
                }
                Err(error) => {
                    kept.insert(step.key.clone(), step.api_version.clone());
                    outcome.failed.push(Failed { object: step.object.clone(), error: error.to_string() });
                }
            }
        }
    }
    let after = record(plan, &kept);
    if after.members != written.members {
        write_inventory(cluster, &after, &plan.lab).await?;
    }
    if !outcome.failed.is_empty() {
        return Err(ApplyError::Failed { stage: "prune", outcome });
    }
    Ok(outcome)
}

/// Applies one stage's changes, in parallel; stops the apply if any fails.
async fn run_stage(
    cluster: &Cluster,
    plan: &Plan,
    stage: usize,
    outcome: &mut Outcome,
    report: &(dyn Fn(&Step, &str) + Sync),
) -> Result<(), ApplyError> {
    let batch = plan.steps.iter().filter(|s| {
        matches!(s.action, Action::Create | Action::Update | Action::Replace) && order::stage(&s.key) == stage
    });
    for (step, result) in in_parallel(batch, |step| apply_step(cluster, plan, step)).await {
        match result {
            Ok(()) => {
                let verb = match step.action {
                    Action::Create => {
                        outcome.created += 1;
                        "created"
                    }
                    Action::Replace => {
                        outcome.replaced += 1;
                        "replaced"
                    }
                    _ => {
                        outcome.updated += 1;
                        "updated"
                    }
                };
                report(step, verb);
            }
            Err(error) => outcome.failed.push(Failed { object: step.object.clone(), error: describe(&error) }),
        }
    }
    if outcome.failed.is_empty() {
        Ok(())
    } else {
        outcome.failed.sort_by(|a, b| a.object.cmp(&b.object));
        Err(ApplyError::Failed { stage: order::STAGES[stage], outcome: std::mem::take(outcome) })
    }
}

/// Runs `action` on each step, `CONCURRENCY` at a time.
async fn in_parallel<'a, F, Fut>(
    steps: impl Iterator<Item = &'a Step>,
    action: F,
) -> Vec<(&'a Step, Result<(), ClusterError>)>
where
    F: Fn(&'a Step) -> Fut,
    Fut: Future<Output = Result<(), ClusterError>>,
{
    stream::iter(steps)
        .map(|step| {
            let done = action(step);
            async move { (step, done.await) }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

fn describe(error: &ClusterError) -> String {
    match error {
        ClusterError::Api { conflicts, .. } if !conflicts.is_empty() => describe_conflicts(conflicts),
        other => other.to_string(),
    }
}

async fn apply_step(cluster: &Cluster, plan: &Plan, step: &Step) -> Result<(), ClusterError> {
    let kind = &plan.kinds[&step.key];
    let manifest = step.manifest.as_ref().expect("applied steps carry a manifest");
    if step.action == Action::Replace {
        cluster.delete(kind, &step.key).await?;
        let started = Instant::now();
        while cluster.get(kind, step.key.namespace.as_deref(), &step.key.name).await?.is_some() {
            if started.elapsed() > GONE_TIMEOUT {
                return Err(ClusterError::Timeout(format!(
                    "it was still being deleted after {}s (a finalizer may hold it); apply again once it is gone",
                    GONE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    cluster.apply(kind, manifest, step.force).await
}

async fn write_inventory(cluster: &Cluster, inventory: &Inventory, lab: &str) -> Result<(), ApplyError> {
    let failed = |source| ApplyError::Inventory { object: inventory.key().to_string(), source };
    let kind = cluster.kind("v1", "ConfigMap").await.map_err(failed)?;
    cluster.apply(&kind, &inventory.manifest(lab), true).await.map_err(failed)?;
    Ok(())
}

/// Waits (up to a minute) until the CRDs this apply changed are established, so that the
/// kinds they define can be used by later stages.
async fn wait_for_crds(cluster: &Cluster, plan: &Plan) {
    let crds: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.key.kind == "CustomResourceDefinition" && matches!(s.action, Action::Create | Action::Update))
        .collect();
    if crds.is_empty() {
        return;
    }
    let started = Instant::now();
    for step in crds {
        let kind = &plan.kinds[&step.key];
        while started.elapsed() < Duration::from_secs(60) {
            match cluster.get(kind, None, &step.key.name).await {
                Ok(Some(live)) if readiness::assess(&step.key, &live, &[]) == Readiness::Ready => break,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    cluster.forget_kinds();
}
