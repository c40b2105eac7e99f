//! Carrying out a plan: stages in order with bounded parallelism inside each, the inventory
//! written before any object so that an interrupted apply orphans nothing, prunes in
//! reverse order, and the inventory trimmed at the end.
//!
//! No lock or "in progress" marker is kept anywhere: a killed apply leaves an inventory that
//! lists every object it may have created, and the next apply simply plans again.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cluster::inventory::Inventory;
use crate::cluster::{Cluster, ClusterError, describe_conflicts, order};
use crate::identity::ObjectKey;

use super::fan_out::{Cancelled, fan_out};
use super::model::{Action, Change, Plan, Problem, Step};

/// How long a replaced object may take to go away before it is created again.
const GONE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a CRD the lab applies may take to be established.
const CRD_TIMEOUT: Duration = Duration::from_secs(60);

/// What an apply does with a plan that has problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnProblems {
    /// Refuse the whole plan before the first write (`seclab apply`).
    Refuse,
    /// Leave the objects with problems as they are and apply the rest (`seclab watch`: one
    /// object that cannot be applied must not stop the repair of the others).
    SkipThem,
}

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
    /// Objects left out because of a problem (only when problems are skipped).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// Objects that failed, with the reason.
    pub failed: Vec<Failed>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Outcome {
    /// How many objects the apply changed.
    pub fn changed(&self) -> usize {
        self.created + self.updated + self.replaced + self.pruned
    }
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
    /// The apply was stopped; the inventory lists everything it may have created.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// Applies `plan`, calling `report` after each object is done.
pub async fn apply(
    cluster: &Cluster,
    plan: &Plan,
    on_problems: OnProblems,
    report: &(dyn Fn(&Step, Action) + Sync),
    cancel: &CancellationToken,
) -> Result<Outcome, ApplyError> {
    if on_problems == OnProblems::Refuse && !plan.problems.is_empty() {
        return Err(ApplyError::Refused(plan.problems.clone()));
    }
    let blocked = plan.blocked();
    let skipped = |step: &Step| blocked.contains(&step.key);
    let mut outcome = Outcome {
        unchanged: plan.count(Action::Unchanged),
        skipped: plan.changes().filter(|s| skipped(s)).count(),
        ..Outcome::default()
    };
    if plan.changes().all(skipped) && !plan.inventory_stale {
        return Ok(outcome);
    }
    // Record every object this apply may create before creating any. The inventory lives in
    // the lab's namespace, which the first stage may have to create.
    let before = plan.record(&plan.inventory.members);
    let mut written = plan.inventory.clone();
    let mut first_stage_done = false;
    if before.members != written.members || plan.inventory_stale {
        match write_inventory(cluster, &before, &plan.lab).await {
            Ok(()) => written = before.clone(),
            Err(ApplyError::Inventory { source, .. }) if source.code() == 404 => {
                run_stage(cluster, plan, &blocked, 0, &mut outcome, report, cancel).await?;
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
        run_stage(cluster, plan, &blocked, stage, &mut outcome, report, cancel).await?;
        if stage == 0 {
            wait_for_crds(cluster, plan).await;
        }
    }

    // Prunes skipped for a problem, and prunes that fail, stay in the inventory.
    let mut kept: BTreeMap<ObjectKey, String> = BTreeMap::new();
    let prunes: Vec<&Step> = plan.steps.iter().filter(|s| s.action() == Action::Prune).collect();
    for step in prunes.iter().filter(|s| skipped(s)) {
        kept.insert(step.key.clone(), step.api_version.clone());
    }
    for stage in (0..order::STAGES.len()).rev() {
        let batch = prunes.iter().copied().filter(|s| order::stage(&s.key) == stage && !skipped(s));
        let results =
            fan_out(batch, cancel, |step| async move { (step, cluster.delete(plan.kind_of(step), &step.key).await) })
                .await?;
        for (step, result) in results {
            match result {
                Ok(()) => {
                    outcome.pruned += 1;
                    report(step, Action::Prune);
                }
                Err(error) => {
                    kept.insert(step.key.clone(), step.api_version.clone());
                    outcome.failed.push(Failed { object: step.object.clone(), error: error.to_string() });
                }
            }
        }
    }
    let after = plan.record(&kept);
    if after.members != written.members {
        write_inventory(cluster, &after, &plan.lab).await?;
    }
    if !outcome.failed.is_empty() {
        return Err(ApplyError::Failed { stage: "prune", outcome });
    }
    Ok(outcome)
}

/// Applies one stage's changes but the `blocked` objects', in parallel; stops the apply if
/// any fails.
async fn run_stage(
    cluster: &Cluster,
    plan: &Plan,
    blocked: &HashSet<&ObjectKey>,
    stage: usize,
    outcome: &mut Outcome,
    report: &(dyn Fn(&Step, Action) + Sync),
    cancel: &CancellationToken,
) -> Result<(), ApplyError> {
    let batch = plan
        .steps
        .iter()
        .filter(|s| s.manifest().is_some() && order::stage(&s.key) == stage && !blocked.contains(&s.key));
    let results = fan_out(batch, cancel, |step| async move { (step, apply_step(cluster, plan, step).await) }).await?;
    for (step, result) in results {
        match result {
            Ok(()) => {
                let action = step.action();
                match action {
                    Action::Create => outcome.created += 1,
                    Action::Replace => outcome.replaced += 1,
                    _ => outcome.updated += 1,
                }
                report(step, action);
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

fn describe(error: &ClusterError) -> String {
    match error {
        ClusterError::Api { conflicts, .. } if !conflicts.is_empty() => describe_conflicts(conflicts),
        other => other.to_string(),
    }
}

async fn apply_step(cluster: &Cluster, plan: &Plan, step: &Step) -> Result<(), ClusterError> {
    let kind = plan.kind_of(step);
    let manifest = step.manifest().expect("applied steps carry a manifest");
    if let Change::Replace { .. } = step.change {
        cluster.delete(kind, &step.key).await?;
        cluster.wait_gone(kind, &step.key, GONE_TIMEOUT).await?;
    }
    cluster.apply(kind, manifest, step.force).await
}

async fn write_inventory(cluster: &Cluster, inventory: &Inventory, lab: &str) -> Result<(), ApplyError> {
    let failed = |source| ApplyError::Inventory { object: inventory.key().to_string(), source };
    let kind = cluster.kind("v1", "ConfigMap").await.map_err(failed)?;
    cluster.apply(&kind, &inventory.manifest(lab), true).await.map_err(failed)?;
    Ok(())
}

/// Waits until the CRDs this apply changed are established, so that the kinds they define
/// can be used by later stages. One that is not is reported by the stage that needs it.
async fn wait_for_crds(cluster: &Cluster, plan: &Plan) {
    let crds = plan
        .steps
        .iter()
        .filter(|s| s.key.kind == "CustomResourceDefinition" && matches!(s.action(), Action::Create | Action::Update));
    for step in crds {
        if let Err(error) = cluster.wait_established(&step.key.name, CRD_TIMEOUT).await {
            tracing::warn!("{}: {error}", step.object);
        }
    }
}
