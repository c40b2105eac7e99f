//! The plan: what applying the lab would do to each object. It is made in three parts, so
//! that `watch` can feed the same decision from its caches: [`observe`](super::observe)
//! reads the inventory and the live objects, [`decide`](super::decide) is the pure decision,
//! and [`confirm`] asks the API server (a server-side dry-run) about the objects that differ.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::diff::FieldChange;
use crate::cluster::inventory::Inventory;
use crate::cluster::{Cluster, ClusterError, Conflict, Kind, describe_conflicts};
use crate::config::Lab;
use crate::render::{MANAGED_BY, ObjectKey, PART_OF, Rendered};

use super::decide::{self, Desired};
use super::fan_out::{Cancelled, fan_out};
use super::observe::{self, KindName, Observed, ReadAhead};
use super::scan_database::base_dir;

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

/// What happens to one object, as `plan` shows it.
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

/// What happens to one object, with what doing it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Created from this manifest.
    Create(Arc<Value>),
    /// This manifest applied over the live object; `diff` is what the server says changes.
    Update {
        /// The manifest to apply.
        manifest: Arc<Value>,
        /// The fields that change (empty until confirmed by a dry-run).
        diff: Vec<FieldChange>,
    },
    /// Deleted and created again from this manifest, because a field that cannot change does.
    Replace {
        /// The manifest to apply.
        manifest: Arc<Value>,
        /// The server's words about the immutable field.
        immutable: String,
    },
    /// The lab's object, as wanted.
    Unchanged,
    /// An object of the same name that is not the lab's: left alone, and not recorded.
    NotOurs,
    /// It left the file: deleted.
    Prune(PruneRisk),
    /// Left in place by `destroy`: it holds data.
    Keep,
}

/// What a prune puts at risk beyond configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneRisk {
    /// A Namespace, PersistentVolume, claim or CRD (deleting it deletes stored data), or a
    /// Secret holding a generated credential that stored data outlives.
    pub holds_data: bool,
    /// The prune deletes this many of this many objects in the inventory, over half of it.
    pub most_of_lab: Option<(usize, usize)>,
}

impl PruneRisk {
    /// Whether the prune needs `--allow-destructive`.
    pub fn is_destructive(&self) -> bool {
        self.holds_data || self.most_of_lab.is_some()
    }

    /// Why the prune needs `--allow-destructive`.
    pub fn reason(&self) -> Option<String> {
        if self.holds_data {
            return Some("deletes stored data".to_owned());
        }
        let (pruned, of) = self.most_of_lab?;
        Some(format!("the prune deletes {pruned} of the {of} objects in the inventory"))
    }
}

/// Kinds whose objects hold data: deleting one deletes what it stores (a CRD: every object
/// of its kind in the cluster).
pub fn holds_data(key: &ObjectKey) -> bool {
    (key.group.is_empty() && matches!(key.kind.as_str(), "Namespace" | "PersistentVolume" | "PersistentVolumeClaim"))
        || is_crd(key)
}

fn is_crd(key: &ObjectKey) -> bool {
    key.group == "apiextensions.k8s.io" && key.kind == "CustomResourceDefinition"
}

/// One object's part of the plan.
#[derive(Debug, Clone)]
pub struct Step {
    /// The object, as `Kind.group namespace/name`.
    pub object: String,
    /// Its identity.
    pub key: ObjectKey,
    /// The component it belongs to.
    pub component: String,
    /// What happens to it.
    pub change: Change,
    /// The `apiVersion` it is applied or deleted with.
    pub api_version: String,
    /// Apply with force: conflicts were allowed, or the object is adopted.
    pub force: bool,
}

impl Step {
    /// What happens to it, in one word.
    pub fn action(&self) -> Action {
        match self.change {
            Change::Create(_) => Action::Create,
            Change::Update { .. } => Action::Update,
            Change::Replace { .. } => Action::Replace,
            Change::Unchanged | Change::NotOurs => Action::Unchanged,
            Change::Prune(_) => Action::Prune,
            Change::Keep => Action::Keep,
        }
    }

    /// The manifest to apply, for creates, updates and replaces.
    pub fn manifest(&self) -> Option<&Value> {
        match &self.change {
            Change::Create(manifest) | Change::Update { manifest, .. } | Change::Replace { manifest, .. } => {
                Some(manifest.as_ref())
            }
            _ => None,
        }
    }

    /// Whether the object belongs in the inventory once the step is done.
    pub fn is_recorded(&self) -> bool {
        !matches!(self.change, Change::NotOurs | Change::Prune(_))
    }

    /// Whether the step needs `--allow-destructive`: it deletes stored data or most of the lab.
    pub fn is_destructive(&self) -> bool {
        match &self.change {
            Change::Prune(risk) => risk.is_destructive(),
            Change::Replace { .. } | Change::Keep => holds_data(&self.key),
            _ => false,
        }
    }

    /// Why it is replaced, kept, or why a prune is destructive.
    pub fn note(&self) -> Option<String> {
        match &self.change {
            Change::Replace { immutable, .. } => Some(immutable.clone()),
            Change::Prune(risk) if risk.holds_data && is_crd(&self.key) => {
                Some("deletes every object of its kind in the cluster".to_owned())
            }
            Change::Prune(risk) => risk.reason(),
            Change::Keep => Some("holds data, or a password its data needs; --allow-destructive deletes it".to_owned()),
            _ => None,
        }
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct View<'a> {
            object: &'a str,
            component: &'a str,
            action: Action,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            diff: &'a [FieldChange],
            #[serde(skip_serializing_if = "Option::is_none")]
            note: Option<String>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            destructive: bool,
        }
        let diff = match &self.change {
            Change::Update { diff, .. } => diff.as_slice(),
            _ => &[],
        };
        View {
            object: &self.object,
            component: &self.component,
            action: self.action(),
            diff,
            note: self.note(),
            destructive: self.is_destructive(),
        }
        .serialize(serializer)
    }
}

/// Something that stops one object's step from being applied as it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The object's identity.
    #[serde(skip)]
    pub key: ObjectKey,
    /// The object.
    pub object: String,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

/// What is wrong with one object's step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "problem")]
pub enum ProblemKind {
    /// An object of the same name exists and is not this lab's.
    Unowned {
        /// Who manages it, from its labels, if anyone says.
        owner: Option<String>,
    },
    /// Other managers own fields the lab sets.
    Conflict {
        /// Who owns which field.
        conflicts: Vec<Conflict>,
    },
    /// A change to an immutable field, and `--recreate` was not given.
    Immutable {
        /// The server's words.
        message: String,
    },
    /// A destructive step without `--allow-destructive`.
    Destructive {
        /// Why it is destructive.
        reason: String,
    },
    /// The object's data on disk was written by another program than the one it would run
    /// (its `seclab.dev/data-format` annotation changes), which cannot read it.
    DataFormat {
        /// The program that wrote the data.
        was: String,
        /// The program the file asks for.
        wanted: String,
    },
    /// The server rejects the object.
    Rejected {
        /// The server's words.
        message: String,
    },
}

impl Problem {
    /// A problem with the object `key`.
    pub fn new(key: &ObjectKey, kind: ProblemKind) -> Self {
        Self { key: key.clone(), object: key.to_string(), kind }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let object = &self.object;
        match &self.kind {
            ProblemKind::Unowned { owner } => write!(
                f,
                "{object} already exists and is not this lab's{}; seclab leaves it alone. Rename the object in the file, delete it, or run with --adopt to take it over",
                owner.as_ref().map(|o| format!(" (managed by {o})")).unwrap_or_default()
            ),
            ProblemKind::Conflict { conflicts } => write!(f, "{object}: {}", describe_conflicts(conflicts)),
            ProblemKind::Immutable { message } => write!(
                f,
                "{object} changes a field that cannot change ({message}); run with --recreate to delete and create it again"
            ),
            ProblemKind::Destructive { reason } => {
                write!(f, "{object} would be deleted ({reason}); run with --allow-destructive if that is what you want")
            }
            ProblemKind::DataFormat { was, wanted } => write!(
                f,
                "{object} would run {wanted} on data written by {was}, which {wanted} cannot read; keep {was}, or move the data: dump it with {was}, delete {object} and its data directory, apply, and restore the dump"
            ),
            ProblemKind::Rejected { message } => write!(f, "{object} is rejected by the API server: {message}"),
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
    /// The kinds of the steps' objects, resolved, by `apiVersion` and kind.
    #[serde(skip)]
    pub kinds: HashMap<KindName, Kind>,
    /// Whether destructive steps were allowed (the tenants' databases follow it too).
    #[serde(skip)]
    pub allow_destructive: bool,
}

impl Plan {
    /// The resolved kind of `step`'s object.
    pub fn kind_of(&self, step: &Step) -> &Kind {
        &self.kinds[&(step.api_version.clone(), step.key.kind.clone())]
    }

    /// Steps that change something.
    pub fn changes(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| !matches!(s.action(), Action::Unchanged | Action::Keep))
    }

    /// How many steps take `action`.
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action() == action).count()
    }

    /// The objects that have a problem: what an apply that skips problems leaves alone.
    pub fn blocked(&self) -> HashSet<&ObjectKey> {
        self.problems.iter().map(|p| &p.key).collect()
    }

    /// Whether recording the plan would give exactly `members` (compared without copying).
    pub fn records_exactly(&self, members: &BTreeMap<ObjectKey, String>) -> bool {
        let mut recorded = 0;
        for step in self.steps.iter().filter(|s| s.is_recorded()) {
            if members.get(&step.key) != Some(&step.api_version) {
                return false;
            }
            recorded += 1;
        }
        recorded == members.len()
    }

    /// The inventory that records every object the lab keeps, and `kept` (objects that
    /// must stay listed, e.g. prunes not done yet).
    pub fn record(&self, kept: &BTreeMap<ObjectKey, String>) -> Inventory {
        let mut members = kept.clone();
        for step in self.steps.iter().filter(|s| s.is_recorded()) {
            members.insert(step.key.clone(), step.api_version.clone());
        }
        Inventory { members: Arc::new(members), ..self.inventory.clone() }
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
    /// The plan was stopped.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// Adds what seclab was doing to a cluster error.
pub(crate) fn failed(context: impl Into<String>) -> impl FnOnce(ClusterError) -> PlanError {
    let context = context.into();
    move |source| PlanError::Cluster { context, source }
}

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
    desired.fill_secrets(&observed.live, base_dir, &set).map_err(PlanError::Secret)?;
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
    let to_check: Vec<usize> = (0..plan.steps.len()).filter(|&i| plan.steps[i].action() == Action::Update).collect();
    let dry_runs = fan_out(to_check, cancel, |index| {
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
    decide::finish(plan, options);
    Ok(())
}

/// Whether `live` carries this lab's labels.
pub fn owned(live: &Value, lab: &str) -> bool {
    let labels = &live["metadata"]["labels"];
    labels[MANAGED_BY] == "seclab" && labels[PART_OF] == lab
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prune(group: &str, kind: &str, namespace: Option<&str>) -> Step {
        let key = ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: "x".into(),
        };
        let risk = PruneRisk { holds_data: holds_data(&key), most_of_lab: None };
        Step {
            object: key.to_string(),
            key,
            component: "c".into(),
            change: Change::Prune(risk),
            api_version: "v1".into(),
            force: false,
        }
    }

    #[test]
    fn pruning_a_crd_or_a_claim_is_destructive_and_says_why() {
        let crd = prune("apiextensions.k8s.io", "CustomResourceDefinition", None);
        assert!(crd.is_destructive());
        assert_eq!(crd.note().as_deref(), Some("deletes every object of its kind in the cluster"));
        let claim = prune("", "PersistentVolumeClaim", Some("n"));
        assert!(claim.is_destructive());
        assert_eq!(claim.note().as_deref(), Some("deletes stored data"));
        let other_crd_named = prune("example.org", "CustomResourceDefinition", Some("n"));
        assert!(!other_crd_named.is_destructive(), "only apiextensions' CRDs");
        assert!(!prune("apps", "Deployment", Some("n")).is_destructive());
    }
}
