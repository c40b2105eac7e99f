//! The data one reconcile passes from step to step: what the file wants ([`Desired`]), what
//! the cluster holds ([`Observed`]), and the plan made from both ([`Plan`], its [`Step`]s and
//! [`Problem`]s). The steps that make and use them (`observe`, `decide`, `plan::confirm`,
//! `apply`) live beside this module and import it; it imports none of them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::certs::CertError;
use crate::cluster::diff::FieldChange;
use crate::cluster::inventory::Inventory;
use crate::cluster::{ClusterError, Conflict, Kind, describe_conflicts};
use crate::config::ResolveError;
use crate::identity::{APPLYSET_PART_OF, KindName, ObjectKey};
use crate::render::{Object, Rendered, SecretToCreate};

use super::fan_out::Cancelled;

/// The key of a Secret.
pub fn secret_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey { group: String::new(), kind: "Secret".into(), namespace: Some(namespace.into()), name: name.into() }
}

/// One LIST: a kind, in one namespace (none for cluster-scoped kinds).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListTarget {
    /// The kind.
    pub kind: KindName,
    /// The namespace; `None` for a cluster-scoped kind.
    pub namespace: Option<String>,
}

impl ListTarget {
    /// `kind` in `namespace`.
    pub fn new(kind: KindName, namespace: Option<String>) -> Self {
        Self { kind, namespace }
    }
}

/// Live objects by key, shared (the watch caches hand out the objects they hold).
pub type Live = HashMap<ObjectKey, Arc<Value>>;

/// What the cluster holds of a lab.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The inventory as the cluster holds it (empty when there is none).
    pub inventory: Inventory,
    /// Whether the inventory object exists.
    pub inventory_exists: bool,
    /// Every kind the lab and its inventory use, resolved.
    pub kinds: HashMap<KindName, Kind>,
    /// Kinds that a CRD of the lab itself defines and the cluster does not serve yet: all
    /// their objects are new.
    pub not_served_yet: HashSet<KindName>,
    /// The live objects that matter to the plan: the lab's, its inventory's members, and
    /// whatever else has the same names. Trimmed (see [`Trim`]).
    pub live: Live,
    /// Desired objects already found to be as wanted (compared while listing).
    pub unchanged: HashSet<ObjectKey>,
}

/// The lab as the file wants it: its objects, labelled as members of its ApplySet, each
/// with the `apiVersion` it is applied with, and the Secrets apply fills in.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The lab's name.
    pub lab: String,
    /// The objects and their `apiVersion`s.
    pub objects: Vec<(Object, String)>,
    /// The Secrets apply creates, not filled in yet.
    pub secrets: Vec<SecretToCreate>,
    /// Their keys.
    pub secret_keys: Vec<ObjectKey>,
    /// CRDs an earlier step applies (`bootstrap`'s operators): their kinds are planned as
    /// new before the cluster serves them.
    pub upcoming_crds: Vec<Arc<Value>>,
}

impl Desired {
    /// The desired state of `rendered`, its objects labelled with the ApplySet `applyset_id`.
    pub fn new(rendered: Rendered, lab: &str, applyset_id: &str) -> Self {
        let Rendered { objects, secrets, .. } = rendered;
        let objects = objects.into_iter().map(|object| labelled(object, applyset_id)).collect();
        let secret_keys = secrets.iter().map(|s| secret_key(&s.namespace, &s.name)).collect();
        Self { lab: lab.to_owned(), objects, secrets, secret_keys, upcoming_crds: Vec::new() }
    }

    /// Every kind the lab applies, as `apiVersion` and kind.
    pub fn kinds(&self) -> BTreeSet<(&str, &str)> {
        let mut kinds: BTreeSet<(&str, &str)> =
            self.objects.iter().map(|(o, api_version)| (api_version.as_str(), o.key.kind.as_str())).collect();
        if !self.secret_keys.is_empty() {
            kinds.insert(("v1", "Secret"));
        }
        kinds
    }

    /// The CustomResourceDefinitions the lab ships, and those an earlier step applies.
    pub fn crds(&self) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|(o, _)| o.key.kind == "CustomResourceDefinition" && o.key.group == "apiextensions.k8s.io")
            .map(|(o, _)| o.manifest.as_ref())
            .chain(self.upcoming_crds.iter().map(Arc::as_ref))
            .collect()
    }

    /// Every object's key and `apiVersion`, the Secrets apply fills in included.
    pub fn keys(&self) -> impl Iterator<Item = (&ObjectKey, &str)> {
        let objects = self.objects.iter().map(|(o, api_version)| (&o.key, api_version.as_str()));
        objects.chain(self.secret_keys.iter().map(|key| (key, "v1")))
    }
}

pub(super) fn labelled(mut object: Object, applyset_id: &str) -> (Object, String) {
    // Objects rendered for `watch` carry the label already, shared with the last render.
    if object.manifest["metadata"]["labels"][APPLYSET_PART_OF] != applyset_id {
        let manifest = Arc::make_mut(&mut object.manifest);
        manifest["metadata"]["labels"][APPLYSET_PART_OF] = Value::String(applyset_id.to_owned());
    }
    let api_version = object.api_version().to_owned();
    (object, api_version)
}

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

impl Action {
    /// The action done, as a log line or a command's output says it (`created`, `pruned`).
    pub fn done(self) -> &'static str {
        match self {
            Self::Create => "created",
            Self::Update => "updated",
            Self::Replace => "replaced",
            Self::Prune => "pruned",
            Self::Unchanged => "unchanged",
            Self::Keep => "kept",
        }
    }
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
    /// The object's namespace does not fit its kind as the API server serves it.
    Scope {
        /// What is wrong.
        message: String,
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
            ProblemKind::Scope { message } => {
                write!(f, "{object}: {message}, as the API server serves its kind; fix its template")
            }
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
        &self.kinds[&KindName::new(step.api_version.clone(), step.key.kind.clone())]
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
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The plan was stopped.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// Why a Secret apply creates could not be filled in. It names Secrets and references, never
/// a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A value the file points at (`env:`, `file:`) cannot be read here.
    #[error("cannot fill key `{entry}` of {key}")]
    Unresolved {
        /// The Secret.
        key: String,
        /// Its key.
        entry: String,
        /// Why the value cannot be read.
        source: ResolveError,
    },
    /// A certificate cannot be issued, or the live one used.
    #[error("cannot issue the certificate in {key}")]
    Certificate {
        /// The certificate's Secret.
        key: String,
        /// Why.
        source: CertError,
    },
    /// Cortex's trust stores cannot be written.
    #[error("cannot fill {key}")]
    Stores {
        /// Their Secret.
        key: String,
        /// Why.
        source: CertError,
    },
    /// OpenSearch's users file cannot be written.
    #[error("cannot fill {key}")]
    UsersFile {
        /// Its Secret.
        key: String,
        /// Why the password cannot be hashed.
        source: bcrypt::BcryptError,
    },
    /// What it is made from is not a Secret seclab fills.
    #[error("cannot fill {key}: {reason}")]
    NotSeclabs {
        /// The Secret.
        key: String,
        /// What it needs.
        reason: String,
    },
    /// The OpenSearch admin password changed after OpenSearch was set up with it.
    #[error(
        "the OpenSearch admin password in {holder} is not the one OpenSearch was set up with (its security index keeps the first): put the old password back, or change it in OpenSearch first (securityadmin.sh with the admin certificate); on a search cluster whose data is new, delete {key} and apply again"
    )]
    AdminPassword {
        /// The Secret holding the password.
        holder: String,
        /// The users file's Secret.
        key: String,
    },
    /// No random bytes for a password.
    #[error("the system has no randomness to generate a password")]
    Randomness(#[source] getrandom::Error),
}

/// Adds what seclab was doing to a cluster error.
pub(crate) fn failed(context: impl Into<String>) -> impl FnOnce(ClusterError) -> PlanError {
    let context = context.into();
    move |source| PlanError::Cluster { context, source }
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
