//! Removing a lab: every object its inventory lists (or that carries its ApplySet label),
//! in reverse apply order. Namespaces, PersistentVolumes and claims hold data and stay
//! unless destruction is allowed.

use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::Lab;
use crate::render::Rendered;

use super::apply::{self, ApplyError, OnProblems, Outcome};
use super::model::{Action, Change, Options, Plan, PlanError, Step};
use super::plan;

/// The plan of a destroy: a prune of everything, with data-holding kinds kept unless
/// `allow_destructive`.
pub async fn plan(
    cluster: &Cluster,
    lab: &Lab,
    allow_destructive: bool,
    cancel: &CancellationToken,
) -> Result<Plan, PlanError> {
    let nothing = Rendered { objects: Vec::new(), node_files: Vec::new(), secrets: Vec::new() };
    let options = Options { prune: true, allow_destructive: true, ..Options::default() };
    let mut plan = plan::plan(cluster, lab, nothing, options, cancel).await?;
    spare_data(&mut plan, allow_destructive);
    Ok(plan)
}

/// Turns the prunes of objects that hold data into keeps, unless `allow_destructive`; a
/// destroy has no other problems (everything it deletes was asked for).
fn spare_data(plan: &mut Plan, allow_destructive: bool) {
    for step in &mut plan.steps {
        if matches!(step.change, Change::Prune(risk) if risk.holds_data) && !allow_destructive {
            step.change = Change::Keep;
        }
    }
    plan.problems.clear();
}

/// Carries out a destroy plan, and removes the inventory once nothing is left in it.
pub async fn destroy(
    cluster: &Cluster,
    plan: &Plan,
    report: &(dyn Fn(&Step, Action) + Sync),
    cancel: &CancellationToken,
) -> Result<Outcome, ApplyError> {
    let outcome = apply::apply(cluster, plan, OnProblems::Refuse, report, cancel).await?;
    if plan.count(Action::Keep) == 0 {
        let inventory = &plan.inventory;
        let failed = |source| ApplyError::Inventory { object: inventory.key().to_string(), source };
        let kind = cluster.kind("v1", "ConfigMap").await.map_err(failed)?;
        cluster.delete(&kind, &inventory.key()).await.map_err(failed)?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cluster::inventory::Inventory;
    use crate::identity::ObjectKey;
    use crate::reconcile::model::PruneRisk;

    fn prune(kind: &str, risk: PruneRisk) -> Step {
        let key = ObjectKey { group: String::new(), kind: kind.into(), namespace: None, name: "x".into() };
        Step {
            object: key.to_string(),
            key,
            component: String::new(),
            change: Change::Prune(risk),
            api_version: "v1".into(),
            force: false,
        }
    }

    #[test]
    fn destroy_keeps_what_holds_data_by_its_kind_not_by_any_message() {
        let data = PruneRisk { holds_data: true, most_of_lab: Some((3, 3)) };
        let config = PruneRisk { holds_data: false, most_of_lab: Some((3, 3)) };
        let steps = vec![prune("PersistentVolumeClaim", data), prune("Namespace", data), prune("ConfigMap", config)];
        let plan = |steps| Plan {
            lab: "lab".into(),
            steps,
            problems: Vec::new(),
            inventory: Inventory::new("lab", "n"),
            inventory_stale: false,
            kinds: HashMap::new(),
            allow_destructive: false,
        };
        let mut kept = plan(steps.clone());
        spare_data(&mut kept, false);
        let actions: Vec<Action> = kept.steps.iter().map(Step::action).collect();
        assert_eq!(actions, [Action::Keep, Action::Keep, Action::Prune]);

        let mut all = plan(steps);
        spare_data(&mut all, true);
        assert_eq!(all.count(Action::Prune), 3);
    }
}
