//! The plan: what applying the lab would do to each object. It is made in three parts, so
//! that `watch` can feed the same decision from its caches: [`observe`](super::observe)
//! reads the inventory and the live objects, [`decide`](super::decide) is the pure decision,
//! and [`confirm`] asks the API server (a server-side dry-run) about the objects that differ.

use std::collections::HashSet;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::cluster::inventory::Inventory;
use crate::cluster::{Cluster, ClusterError};
use crate::config::Lab;
use crate::identity::ObjectKey;
use crate::render::Rendered;

use super::decide;
use super::fan_out::fan_out;
use super::model::{Action, Desired, Observed, Options, Plan, PlanError, failed};
use super::observe::{self, ReadAhead};
use super::scan_database::base_dir;
use super::secrets;

/// Makes the plan for `rendered` (empty for `destroy`) against the cluster, reading live
/// state with one LIST per kind and namespace.
pub async fn plan(
    cluster: &Cluster,
    lab: &Lab,
    rendered: Rendered,
    options: Options,
    cancel: &CancellationToken,
) -> Result<Plan, PlanError> {
    plan_read_ahead(cluster, lab, rendered, lab_inventory(lab).into(), options, cancel).await
}

/// Makes the plan as [`plan`] does, with what was read of the lab ahead of its render
/// ([`observe::read_ahead`] of its [`lab_inventory`]).
pub async fn plan_read_ahead(
    cluster: &Cluster,
    lab: &Lab,
    rendered: Rendered,
    ahead: ReadAhead,
    options: Options,
    cancel: &CancellationToken,
) -> Result<Plan, PlanError> {
    let desired = Desired::new(rendered, lab.name(), &lab_inventory(lab).id());
    plan_desired(cluster, desired, ahead, &base_dir(lab), options, cancel).await
}

/// The lab's inventory, empty: where the cluster records what the lab applied.
pub fn lab_inventory(lab: &Lab) -> Inventory {
    Inventory::new(lab.name(), &lab.spec().cluster.namespace)
}

/// Makes the plan for `desired`, a set of objects recorded in an inventory (the lab's, or an
/// operator's; given as is or with what was read of it ahead); `base_dir` is where `file:`
/// references of its Secrets are read from.
pub async fn plan_desired(
    cluster: &Cluster,
    mut desired: Desired,
    inventory: impl Into<ReadAhead>,
    base_dir: &Path,
    options: Options,
    cancel: &CancellationToken,
) -> Result<Plan, PlanError> {
    let observed = observe::observe(cluster, inventory, &desired, cancel).await?;
    let set = desired.lab.clone();
    secrets::fill(&mut desired, &observed.live, base_dir, &set).map_err(PlanError::Secret)?;
    let mut plan = decide::decide(&set, &desired, &observed, options);
    confirm(cluster, &mut plan, &observed, options, cancel).await?;
    // Freeing thousands of manifests and live objects took a tenth of an unchanged re-apply:
    // it is done beside the apply instead of before it.
    std::thread::spawn(move || drop((desired, observed)));
    Ok(plan)
}

/// Asks the API server, with a server-side dry-run, about every update the plan holds: the
/// field-level diff, conflicts and immutable fields; then marks what needs
/// `--allow-destructive`. A dry-run that does not reach the server fails the plan: only
/// the server's answers become problems of an object.
pub async fn confirm(
    cluster: &Cluster,
    plan: &mut Plan,
    observed: &Observed,
    options: Options,
    cancel: &CancellationToken,
) -> Result<(), PlanError> {
    let updates: Vec<usize> = (0..plan.steps.len()).filter(|&i| plan.steps[i].action() == Action::Update).collect();
    dry_run(cluster, plan, observed, updates, options, cancel).await?;
    decide::finish(plan, options);
    Ok(())
}

/// Asks the API server again about the updates to `keys`, with the force their steps now
/// carry (`watch` takes back the fields other managers took): the apply that follows is the
/// one the server was asked about.
pub async fn confirm_forced(
    cluster: &Cluster,
    plan: &mut Plan,
    observed: &Observed,
    keys: &HashSet<ObjectKey>,
    options: Options,
    cancel: &CancellationToken,
) -> Result<(), PlanError> {
    let forced: Vec<usize> = (0..plan.steps.len())
        .filter(|&i| plan.steps[i].action() == Action::Update && keys.contains(&plan.steps[i].key))
        .collect();
    dry_run(cluster, plan, observed, forced, options, cancel).await?;
    decide::finish(plan, options);
    Ok(())
}

/// Dry-runs the steps at `indices` and settles each with the server's answer.
async fn dry_run(
    cluster: &Cluster,
    plan: &mut Plan,
    observed: &Observed,
    indices: Vec<usize>,
    options: Options,
    cancel: &CancellationToken,
) -> Result<(), PlanError> {
    let dry_runs = fan_out(indices, cancel, |index| {
        let step = &plan.steps[index];
        let kind = plan.kind_of(step);
        let manifest = step.manifest().expect("updates carry a manifest");
        async move { (index, cluster.dry_run_apply(kind, manifest, step.force).await) }
    })
    .await?;
    for (index, result) in dry_runs {
        if let Err(unanswered @ (ClusterError::Transport { .. } | ClusterError::Timeout(_))) = result {
            let object = &plan.steps[index].object;
            return Err(failed(format!("cannot dry-run {object}"))(unanswered));
        }
        let step = &mut plan.steps[index];
        let live = &observed.live[&step.key];
        if let Some(problem) = decide::settle(step, live, &plan.lab, result, options) {
            plan.problems.push(problem);
        }
    }
    Ok(())
}
