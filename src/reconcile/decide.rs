//! The decision, without I/O: from the desired objects and what the cluster holds, what to
//! do with each object (create, update, replace, leave, prune), what stops the plan, and
//! what needs `--allow-destructive`. The server's dry-run answers are folded in by
//! [`settle`].

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::cluster::diff::diff;
use crate::cluster::{ClusterError, compare, order};
use crate::identity::{APPLYSET_PART_OF, COMPONENT, KindName, MANAGED_BY, MANAGER, ObjectKey, PART_OF, owned};

use super::model::{Change, Desired, Observed, Options, Plan, Problem, ProblemKind, PruneRisk, Step, holds_data};
use super::secrets;

/// Decides every object's step. Objects that differ are planned as updates with an empty
/// diff: [`settle`] completes them with the server's dry-run, and [`finish`] then marks what
/// needs `--allow-destructive`.
pub fn decide(lab: &str, desired: &Desired, observed: &Observed, options: Options) -> Plan {
    let mut plan = Plan {
        lab: lab.to_owned(),
        steps: Vec::new(),
        problems: Vec::new(),
        inventory: observed.inventory.clone(),
        inventory_stale: false,
        kinds: observed.kinds.clone(),
        allow_destructive: options.allow_destructive,
    };
    for (object, api_version) in &desired.objects {
        let (key, manifest) = (&object.key, &object.manifest);
        // A kind rendering could not place (neither built in nor defined by the lab's CRDs).
        let kind = observed.kinds.get(&KindName::new(api_version.clone(), key.kind.clone()));
        if let Some(message) = kind.and_then(|kind| key.scope_problem(kind.namespaced)) {
            plan.problems.push(Problem::new(key, ProblemKind::Scope { message }));
        }
        let mut force = options.force_conflicts;
        let change = match observed.live.get(key) {
            None => Change::Create(manifest.clone()),
            // Found as wanted (and so the lab's) while observing: nothing to read again.
            Some(_) if observed.unchanged.contains(key) => Change::Unchanged,
            Some(live) if !owned(live, lab) && !options.adopt => {
                plan.problems.push(Problem::new(key, ProblemKind::Unowned { owner: owner(live) }));
                Change::NotOurs
            }
            Some(live) if owned(live, lab) && compare::unchanged(manifest, live) => Change::Unchanged,
            Some(live) => {
                force |= !owned(live, lab);
                plan.problems.extend(data_format_change(key, manifest, live));
                Change::Update { manifest: manifest.clone(), diff: Vec::new() }
            }
        };
        plan.steps.push(step(key.clone(), object.component(), api_version.clone(), change, force));
    }
    plan.steps.sort_by_key(|step| order::stage(&step.key));

    let prunes = if options.prune { prunes(lab, &plan, observed, options.allow_destructive) } else { Vec::new() };
    plan.steps.extend(prunes);
    plan.inventory_stale = !observed.inventory_exists || !plan.records_exactly(&observed.inventory.members);
    plan
}

/// The annotation naming the program whose on-disk format an object's data is in (the
/// tenants' database server: `mariadb` or `mysql`).
const DATA_FORMAT: &str = "seclab.dev/data-format";

/// A problem when `manifest` would run another program than the one that wrote `live`'s
/// data, which no flag allows: `--recreate` would start it on the same data directory.
fn data_format_change(key: &ObjectKey, manifest: &Value, live: &Value) -> Option<Problem> {
    let format = |object: &Value| object["metadata"]["annotations"][DATA_FORMAT].as_str().map(str::to_owned);
    let (was, wanted) = (format(live)?, format(manifest)?);
    (was != wanted).then(|| Problem::new(key, ProblemKind::DataFormat { was, wanted }))
}

fn component(object: &Value) -> String {
    object["metadata"]["labels"][COMPONENT].as_str().unwrap_or_default().to_owned()
}

fn step(key: ObjectKey, component: &str, api_version: String, change: Change, force: bool) -> Step {
    Step { object: key.to_string(), key, component: component.to_owned(), change, api_version, force }
}

/// Who manages an object that is not the lab's, from its labels.
fn owner(live: &Value) -> Option<String> {
    let labels = &live["metadata"]["labels"];
    match (labels[MANAGED_BY].as_str(), labels[PART_OF].as_str()) {
        (Some(MANAGER), Some(other)) => Some(format!("seclab lab {other}")),
        (manager, _) => manager.map(str::to_owned),
    }
}

/// The prunes: the inventory's members, and live objects labelled as the set's, that have
/// left the file and still carry this lab's labels; in reverse apply order. A generated
/// password that stored data outlives is kept, as the data is, unless `allow_destructive`.
fn prunes(lab: &str, plan: &Plan, observed: &Observed, allow_destructive: bool) -> Vec<Step> {
    let id = observed.inventory.id();
    let desired: HashSet<&ObjectKey> = plan.steps.iter().map(|s| &s.key).collect();
    let mut candidates: BTreeMap<&ObjectKey, &str> = observed
        .inventory
        .members
        .iter()
        .filter(|(key, _)| !desired.contains(key))
        .map(|(key, api_version)| (key, api_version.as_str()))
        .collect();
    for (key, live) in observed.live.iter().filter(|(key, _)| !desired.contains(key)) {
        if live["metadata"]["labels"][APPLYSET_PART_OF] == id.as_str() {
            candidates.entry(key).or_insert_with(|| live["apiVersion"].as_str().unwrap_or_default());
        }
    }
    let mut prunes = Vec::new();
    for (key, api_version) in candidates {
        let resolved = observed.kinds.contains_key(&KindName::new(api_version, key.kind.clone()));
        let Some(live) = observed.live.get(key).filter(|live| resolved && owned(live, lab)) else {
            continue;
        };
        let guarded = secrets::guards_data(key, live);
        let change = if guarded && !allow_destructive {
            Change::Keep
        } else {
            Change::Prune(PruneRisk { holds_data: holds_data(key) || guarded, most_of_lab: None })
        };
        prunes.push(step(key.clone(), &component(live), api_version.to_owned(), change, false));
    }
    // Kept Secrets are not deleted: they do not count towards "most of the lab".
    let pruned = prunes.iter().filter(|step| matches!(step.change, Change::Prune(_))).count();
    let members = observed.inventory.members.len();
    if members > 0 && pruned * 2 > members {
        for step in &mut prunes {
            if let Change::Prune(risk) = &mut step.change {
                risk.most_of_lab = Some((pruned, members));
            }
        }
    }
    prunes.sort_by_key(|step| std::cmp::Reverse(order::stage(&step.key)));
    prunes
}

/// Folds the server's dry-run answer about an update into its step: the field-level diff
/// (nothing to do when it is empty), a replace for an immutable field, or the problem that
/// stops it.
pub fn settle(
    step: &mut Step,
    live: &Value,
    lab: &str,
    dry_run: Result<Value, ClusterError>,
    options: Options,
) -> Option<Problem> {
    let error = match dry_run {
        Ok(after) => {
            let changes = diff(live, &after);
            if changes.is_empty() && owned(live, lab) {
                step.change = Change::Unchanged;
            } else if let Change::Update { diff, .. } = &mut step.change {
                *diff = changes;
            }
            return None;
        }
        Err(error) => error,
    };
    if error.is_immutable() {
        let Change::Update { manifest, .. } = std::mem::replace(&mut step.change, Change::Unchanged) else {
            return None;
        };
        step.change = Change::Replace { manifest, immutable: error.to_string() };
        return (!options.recreate)
            .then(|| Problem::new(&step.key, ProblemKind::Immutable { message: error.to_string() }));
    }
    let kind = match error {
        ClusterError::Api { conflicts, .. } if !conflicts.is_empty() => ProblemKind::Conflict { conflicts },
        other => ProblemKind::Rejected { message: other.to_string() },
    };
    Some(Problem::new(&step.key, kind))
}

/// Sorts the problems, and adds one for each destructive step unless it is allowed. Run again
/// after more steps are settled, it gives the same problems once.
pub fn finish(plan: &mut Plan, options: Options) {
    plan.problems.retain(|problem| !matches!(problem.kind, ProblemKind::Destructive { .. }));
    plan.problems.sort_by_key(|problem| problem.to_string());
    if options.allow_destructive {
        return;
    }
    let destructive: Vec<Problem> = plan
        .changes()
        .filter(|s| s.is_destructive())
        .map(|step| Problem::new(&step.key, ProblemKind::Destructive { reason: step.note().unwrap_or_default() }))
        .collect();
    plan.problems.extend(destructive);
}

#[cfg(test)]
mod tests {
    use kube::core::ApiResource;
    use serde_json::json;

    use super::*;
    use crate::cluster::Kind;
    use crate::cluster::inventory::Inventory;
    use crate::reconcile::model::Action;
    use crate::render::Object;
    use std::sync::Arc;

    const LAB: &str = "lab";

    fn key(kind: &str, name: &str) -> ObjectKey {
        let namespace = (!matches!(kind, "Namespace" | "PersistentVolume")).then(|| "n".to_owned());
        ObjectKey { group: String::new(), kind: kind.into(), namespace, name: name.into() }
    }

    fn manifest(key: &ObjectKey, value: &str, part_of: Option<&str>) -> Value {
        let mut labels = json!({ COMPONENT: "c" });
        if let Some(lab) = part_of {
            labels[MANAGED_BY] = json!(MANAGER);
            labels[PART_OF] = json!(lab);
        }
        let mut object = json!({ "apiVersion": "v1", "kind": key.kind, "metadata": { "name": key.name, "labels": labels },
            "data": { "k": value } });
        if let Some(namespace) = &key.namespace {
            object["metadata"]["namespace"] = json!(namespace);
        }
        object
    }

    /// A desired state of ConfigMaps named `wanted` (value "1"), and a cluster holding
    /// `live` (name, value, owning lab) with `members` in the inventory.
    fn scene(wanted: &[&str], live: &[(ObjectKey, &str, Option<&str>)], members: &[ObjectKey]) -> (Desired, Observed) {
        let objects = wanted
            .iter()
            .map(|name| {
                let key = key("ConfigMap", name);
                let object = Object { manifest: manifest(&key, "1", Some(LAB)).into(), key, template: "t".into() };
                (object, "v1".to_owned())
            })
            .collect();
        let desired = Desired {
            lab: LAB.into(),
            objects,
            secrets: Vec::new(),
            secret_keys: Vec::new(),
            upcoming_crds: Vec::new(),
        };
        let mut inventory = Inventory::new(LAB, "n");
        inventory.members = Arc::new(members.iter().map(|k| (k.clone(), "v1".to_owned())).collect());
        let kinds = ["ConfigMap", "Namespace", "PersistentVolume", "PersistentVolumeClaim"]
            .into_iter()
            .map(|kind| {
                let resource = ApiResource {
                    group: String::new(),
                    version: "v1".into(),
                    api_version: "v1".into(),
                    kind: kind.into(),
                    plural: format!("{}s", kind.to_lowercase()),
                };
                let namespaced = !matches!(kind, "Namespace" | "PersistentVolume");
                (KindName::new("v1", kind), Kind { resource, namespaced })
            })
            .collect();
        let live = live
            .iter()
            .map(|(key, value, part_of)| (key.clone(), std::sync::Arc::new(manifest(key, value, *part_of))))
            .collect();
        let observed = Observed {
            inventory,
            inventory_exists: true,
            kinds,
            not_served_yet: HashSet::new(),
            live,
            unchanged: HashSet::new(),
        };
        (desired, observed)
    }

    fn actions(plan: &Plan) -> Vec<(String, Action)> {
        plan.steps.iter().map(|s| (s.key.name.clone(), s.action())).collect()
    }

    fn problems(plan: &Plan) -> Vec<(String, &'static str)> {
        let word = |kind: &ProblemKind| match kind {
            ProblemKind::Unowned { .. } => "unowned",
            ProblemKind::Conflict { .. } => "conflict",
            ProblemKind::Immutable { .. } => "immutable",
            ProblemKind::Destructive { .. } => "destructive",
            ProblemKind::DataFormat { .. } => "data format",
            ProblemKind::Scope { .. } => "scope",
            ProblemKind::Rejected { .. } => "rejected",
        };
        plan.problems.iter().map(|p| (p.key.name.clone(), word(&p.kind))).collect()
    }

    /// A kind rendering could not place (a custom one no CRD of the lab defines) is checked
    /// against the scope the API server serves it with.
    #[test]
    fn an_object_whose_namespace_does_not_fit_its_kind_is_a_problem() {
        let (mut desired, observed) = scene(&["a", "b"], &[], &[]);
        desired.objects[0].0.key.namespace = None;
        let plan = decide(LAB, &desired, &observed, Options::default());
        assert_eq!(problems(&plan), [("a".to_owned(), "scope")]);
        let message = plan.problems[0].to_string();
        assert!(
            message.contains("ConfigMap a has no `metadata.namespace`") && message.contains("template"),
            "{message}"
        );
    }

    #[test]
    fn each_object_gets_the_step_its_live_state_calls_for() {
        let cm = |name| key("ConfigMap", name);
        let allowed = Options { prune: true, allow_destructive: true, ..Options::default() };
        type Case<'a> = (&'a str, Vec<(ObjectKey, &'a str, Option<&'a str>)>, Options, Action, bool, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            ("a new object is created", vec![], allowed, Action::Create, false, vec![]),
            (
                "an object as wanted is left alone",
                vec![(cm("a"), "1", Some(LAB))],
                allowed,
                Action::Unchanged,
                false,
                vec![],
            ),
            (
                "the lab's object that differs is updated",
                vec![(cm("a"), "2", Some(LAB))],
                allowed,
                Action::Update,
                false,
                vec![],
            ),
            (
                "an unowned clash is a problem",
                vec![(cm("a"), "1", None)],
                allowed,
                Action::Unchanged,
                false,
                vec!["unowned"],
            ),
            (
                "another lab's object is not this one's",
                vec![(cm("a"), "1", Some("other"))],
                allowed,
                Action::Unchanged,
                false,
                vec!["unowned"],
            ),
            (
                "--adopt takes an unowned object over, by force",
                vec![(cm("a"), "1", None)],
                Options { adopt: true, ..allowed },
                Action::Update,
                true,
                vec![],
            ),
            (
                "--force-conflicts forces every apply",
                vec![(cm("a"), "2", Some(LAB))],
                Options { force_conflicts: true, ..allowed },
                Action::Update,
                true,
                vec![],
            ),
        ];
        for (what, live, options, action, force, expected) in cases {
            let (desired, observed) = scene(&["a"], &live, &[]);
            let mut plan = decide(LAB, &desired, &observed, options);
            finish(&mut plan, options);
            assert_eq!(actions(&plan), [("a".to_owned(), action)], "{what}");
            assert_eq!(plan.steps[0].force, force, "{what}");
            let found: Vec<&str> = problems(&plan).into_iter().map(|(_, p)| p).collect();
            assert_eq!(found, expected, "{what}");
            let unowned = plan.problems.first().map(|p| p.to_string()).unwrap_or_default();
            assert!(expected.is_empty() || unowned.contains("--adopt"), "{what}: {unowned}");
        }
    }

    #[test]
    fn prunes_take_only_the_labs_objects_and_data_needs_allow_destructive() {
        let (cm, ns, pv, pvc) = (
            key("ConfigMap", "gone"),
            key("Namespace", "n"),
            key("PersistentVolume", "v"),
            key("PersistentVolumeClaim", "c"),
        );
        let theirs = key("ConfigMap", "theirs");
        let live = vec![
            (cm.clone(), "1", Some(LAB)),
            (ns.clone(), "1", Some(LAB)),
            (pv.clone(), "1", Some(LAB)),
            (pvc.clone(), "1", Some(LAB)),
            (theirs.clone(), "1", None),
        ];
        let members: Vec<ObjectKey> = [&cm, &ns, &pv, &pvc, &theirs]
            .into_iter()
            .cloned()
            .chain((0..6).map(|i| key("ConfigMap", &format!("kept{i}"))))
            .collect();
        let wanted: Vec<String> = (0..6).map(|i| format!("kept{i}")).collect();
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();

        let refused = Options { prune: true, ..Options::default() };
        let (desired, observed) = scene(&wanted, &live, &members);
        let mut plan = decide(LAB, &desired, &observed, refused);
        finish(&mut plan, refused);
        let pruned: Vec<String> =
            plan.steps.iter().filter(|s| s.action() == Action::Prune).map(|s| s.key.name.clone()).collect();
        assert_eq!(pruned, ["gone", "v", "c", "n"], "reverse apply order; an unowned member is never pruned");
        assert_eq!(
            problems(&plan).into_iter().filter(|(_, p)| *p == "destructive").map(|(n, _)| n).collect::<Vec<_>>(),
            ["v", "c", "n"],
            "Namespaces, PersistentVolumes and claims need --allow-destructive"
        );
        assert_eq!(plan.steps.iter().find(|s| s.key == pvc).unwrap().note().as_deref(), Some("deletes stored data"));

        let allowed = Options { allow_destructive: true, ..refused };
        let (desired, observed) = scene(&wanted, &live, &members);
        let mut plan = decide(LAB, &desired, &observed, allowed);
        finish(&mut plan, allowed);
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);

        let kept = Options { prune: false, ..allowed };
        let (desired, observed) = scene(&wanted, &live, &members);
        let plan = decide(LAB, &desired, &observed, kept);
        assert_eq!(plan.count(Action::Prune), 0, "--no-prune");
    }

    #[test]
    fn pruning_more_than_half_of_the_inventory_is_destructive() {
        let members: Vec<ObjectKey> = ["a", "b", "c"].iter().map(|n| key("ConfigMap", n)).collect();
        let live: Vec<(ObjectKey, &str, Option<&str>)> = members.iter().map(|k| (k.clone(), "1", Some(LAB))).collect();
        let options = Options { prune: true, ..Options::default() };
        let (desired, observed) = scene(&["a"], &live, &members);
        let mut plan = decide(LAB, &desired, &observed, options);
        finish(&mut plan, options);
        assert_eq!(problems(&plan), [("b".into(), "destructive"), ("c".into(), "destructive")]);
        assert!(plan.problems[0].to_string().contains("the prune deletes 2 of the 3 objects"), "{}", plan.problems[0]);

        let (desired, observed) = scene(&["a", "b"], &live, &members);
        let mut plan = decide(LAB, &desired, &observed, options);
        finish(&mut plan, options);
        assert!(plan.problems.is_empty(), "one of three is not most of the lab");
    }

    #[test]
    fn the_dry_run_settles_an_update_into_a_diff_a_replace_or_a_problem() {
        let immutable = || ClusterError::Api {
            code: 422,
            reason: "Invalid".into(),
            message: "spec.selector: Invalid value: field is immutable".into(),
            conflicts: Vec::new(),
        };
        let conflict = || ClusterError::Api {
            code: 409,
            reason: "Conflict".into(),
            message: "Apply failed with 1 conflict".into(),
            conflicts: vec![crate::cluster::Conflict { manager: "kubectl-edit".into(), field: ".data.k".into() }],
        };
        let rejected = || ClusterError::Api {
            code: 422,
            reason: "Invalid".into(),
            message: "data.k: Invalid value".into(),
            conflicts: Vec::new(),
        };
        let none = Options { prune: true, ..Options::default() };
        let recreate = Options { recreate: true, ..none };
        type Case = (&'static str, ObjectKey, Result<(), fn() -> ClusterError>, Options, Action, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "an immutable change needs --recreate",
                key("ConfigMap", "a"),
                Err(immutable),
                none,
                Action::Replace,
                vec!["immutable"],
            ),
            (
                "with --recreate it is replaced",
                key("ConfigMap", "a"),
                Err(immutable),
                recreate,
                Action::Replace,
                vec![],
            ),
            (
                "a claim replaced loses data",
                key("PersistentVolumeClaim", "a"),
                Err(immutable),
                recreate,
                Action::Replace,
                vec!["destructive"],
            ),
            (
                "another manager's field is a conflict",
                key("ConfigMap", "a"),
                Err(conflict),
                none,
                Action::Update,
                vec!["conflict"],
            ),
            (
                "a rejected object is a problem",
                key("ConfigMap", "a"),
                Err(rejected),
                none,
                Action::Update,
                vec!["rejected"],
            ),
            ("an empty diff is nothing to do", key("ConfigMap", "a"), Ok(()), none, Action::Unchanged, vec![]),
        ];
        for (what, key, dry_run, options, action, expected) in cases {
            let live = manifest(&key, "2", Some(LAB));
            let mut plan = Plan {
                lab: LAB.into(),
                steps: vec![step(
                    key.clone(),
                    "c",
                    "v1".into(),
                    Change::Update { manifest: manifest(&key, "1", Some(LAB)).into(), diff: Vec::new() },
                    false,
                )],
                problems: Vec::new(),
                inventory: Inventory::new(LAB, "n"),
                inventory_stale: false,
                kinds: Default::default(),
                allow_destructive: options.allow_destructive,
            };
            let answer = dry_run.map(|()| live.clone()).map_err(|make| make());
            if let Some(problem) = settle(&mut plan.steps[0], &live, LAB, answer, options) {
                plan.problems.push(problem);
            }
            finish(&mut plan, options);
            assert_eq!(plan.steps[0].action(), action, "{what}");
            let found: Vec<&str> = problems(&plan).into_iter().map(|(_, p)| p).collect();
            assert_eq!(found, expected, "{what}");
        }
    }
}
