//! Removing a lab: every object its inventory lists (or that carries its ApplySet label),
//! in reverse apply order. Namespaces, PersistentVolumes and claims hold data and stay
//! unless destruction is allowed.

use crate::cluster::Cluster;
use crate::config::Lab;
use crate::render::Rendered;

use super::apply::{self, ApplyError, Outcome};
use super::plan::{self, Action, Options, Plan, PlanError, Step};

/// The plan of a destroy: a prune of everything, with data-holding kinds kept unless
/// `allow_destructive`.
pub async fn plan(cluster: &Cluster, lab: &Lab, allow_destructive: bool) -> Result<Plan, PlanError> {
    let nothing = Rendered { objects: Vec::new(), node_files: Vec::new(), secrets: Vec::new() };
    let options = Options { prune: true, allow_destructive: true, ..Options::default() };
    let mut plan = plan::plan(cluster, lab, nothing, options).await?;
    for step in &mut plan.steps {
        let holds_data = step.note.as_deref() == Some("deletes stored data");
        if holds_data && !allow_destructive {
            step.action = Action::Keep;
        }
        step.destructive = holds_data;
    }
    plan.problems.clear();
    Ok(plan)
}

/// Carries out a destroy plan, and removes the inventory once nothing is left in it.
pub async fn destroy(
    cluster: &Cluster,
    plan: &Plan,
    report: &(dyn Fn(&Step, &str) + Sync),
) -> Result<Outcome, ApplyError> {
    let outcome = apply::apply(cluster, plan, report).await?;
    if plan.count(Action::Keep) == 0 {
        let inventory = &plan.inventory;
        let failed = |source| ApplyError::Inventory { object: inventory.key().to_string(), source };
        let kind = cluster.kind("v1", "ConfigMap").await.map_err(failed)?;
        cluster.delete(&kind, &inventory.key()).await.map_err(failed)?;
    }
    Ok(outcome)
}
