//! The least-privilege permissions seclab itself needs for one lab: a ClusterRole for the
//! cluster-scoped objects the lab has (by name), a Role in each of the lab's namespaces for
//! the rest, the bindings of both to whoever runs seclab, and the lab's Namespaces (a Role
//! needs its namespace before seclab's first apply).
//!
//! Kubernetes lets a user grant only what it holds (or may `bind`): the rules of the lab's
//! own Roles are held in their namespace only, those of its ClusterRoles cluster-wide.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::identity;

use super::Object;
use super::kinds::resource_name;

/// The label that marks the permissions rendered for a lab (its value: the lab).
const PERMISSIONS_OF: &str = "seclab.dev/permissions-of";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const EVERY_VERB: [&str; 7] = ["get", "list", "watch", "create", "patch", "update", "delete"];
const READ: [&str; 3] = ["get", "list", "watch"];
/// What seclab does to one object by its name. Server-side apply creates with a PATCH, in
/// which the name is known, so the API server checks `create` against `resourceNames` too.
const BY_NAME: [&str; 5] = ["get", "create", "patch", "update", "delete"];
/// A LIST cannot be limited to names: it reads the kind, whose contents are not secret here.
const LIST: [&str; 2] = ["list", "watch"];

/// Who runs seclab: the subject of the bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user of the kubeconfig.
    User(String),
    /// A ServiceAccount (namespace, name): `seclab watch` in a pod.
    ServiceAccount(String, String),
}

impl Subject {
    fn manifest(&self) -> Value {
        match self {
            Self::User(name) => json!({ "kind": "User", "apiGroup": RBAC_GROUP, "name": name }),
            Self::ServiceAccount(namespace, name) => {
                json!({ "kind": "ServiceAccount", "namespace": namespace, "name": name })
            }
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(name) => write!(f, "user {name}"),
            Self::ServiceAccount(namespace, name) => write!(f, "ServiceAccount {namespace}/{name}"),
        }
    }
}

/// What a lab is made of, as far as seclab's own permissions go.
pub struct Lab<'a> {
    /// The lab's name.
    pub name: &'a str,
    /// The namespace of its inventory and of `watch`'s Lease.
    pub home: &'a str,
    /// Its rendered objects.
    pub objects: &'a [Object],
    /// The namespaces of the Secrets apply fills in.
    pub secret_namespaces: BTreeSet<&'a str>,
}

/// The objects that give `subject` what seclab needs to apply, watch, prune and destroy
/// `lab`, in the order to apply them: Namespaces, the ClusterRole and its binding, then a
/// Role and its binding per namespace.
pub fn permissions(lab: &Lab, subject: &Subject) -> Vec<Value> {
    let name = format!("seclab-{}", lab.name);
    let (cluster, roles) = rules(lab);
    let labels = json!({ PERMISSIONS_OF: lab.name });
    let mut objects: Vec<Value> = lab
        .objects
        .iter()
        .filter(|o| o.key.group.is_empty() && o.key.kind == "Namespace")
        .map(|o| {
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": o.key.name, "labels": identity::labels(lab.name) } })
        })
        .collect();
    objects.push(json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": { "name": name, "labels": labels }, "rules": compact(cluster) }));
    objects.push(json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": name, "labels": labels },
        "roleRef": { "apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name },
        "subjects": [subject.manifest()] }));
    for (namespace, rules) in roles {
        objects.push(json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": { "name": name, "namespace": namespace, "labels": labels }, "rules": compact(rules) }));
        objects.push(json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": name, "namespace": namespace, "labels": labels },
            "roleRef": { "apiGroup": RBAC_GROUP, "kind": "Role", "name": name },
            "subjects": [subject.manifest()] }));
    }
    objects
}

/// The cluster-wide rules, and the rules of each namespace.
fn rules(lab: &Lab) -> (Vec<Value>, BTreeMap<String, Vec<Value>>) {
    // Waiting for CRDs to be established; how many nodes there are (a hostPath volume not
    // pinned to one is warned about). Neither holds secrets.
    let mut cluster = vec![
        rule("apiextensions.k8s.io", "customresourcedefinitions", &READ, None),
        rule("", "nodes", &["list"], None),
    ];
    let mut namespaces: BTreeSet<&str> = lab.secret_namespaces.iter().copied().collect();
    namespaces.insert(lab.home);
    namespaces.extend(lab.objects.iter().filter_map(|o| o.key.namespace.as_deref()));

    // Cluster-scoped objects, by name: the lab's namespaces and whatever else it renders.
    let mut named: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    named.entry((String::new(), "namespaces".into())).or_default().extend(namespaces.iter().copied());
    for object in lab.objects.iter().filter(|o| o.key.namespace.is_none()) {
        named
            .entry((object.key.group.clone(), resource_name(lab.objects, &object.key)))
            .or_default()
            .insert(&object.key.name);
    }
    for ((group, resource), names) in &named {
        cluster.push(rule(group, resource, &LIST, None));
        cluster.push(rule(group, resource, &BY_NAME, Some(names)));
    }

    // In each namespace: readiness (pods, their logs, events) and the lab's kinds there.
    let mut roles: BTreeMap<String, Vec<Value>> = namespaces
        .iter()
        .map(|ns| {
            (
                (*ns).to_owned(),
                vec![rule("", "pods", &READ, None), rule("", "pods/log", &READ, None), rule("", "events", &READ, None)],
            )
        })
        .collect();
    for object in lab.objects {
        if let Some(namespace) = &object.key.namespace {
            grant(
                roles.entry(namespace.clone()).or_default(),
                rule(&object.key.group, &resource_name(lab.objects, &object.key), &EVERY_VERB, None),
            );
        }
    }
    for namespace in &lab.secret_namespaces {
        grant(roles.entry((*namespace).to_owned()).or_default(), rule("", "secrets", &EVERY_VERB, None));
    }
    // The inventory (followed by `watch` with the lab's ConfigMaps) and `watch`'s Lease,
    // which its library creates with a POST: a create that names nothing yet.
    let home = roles.entry(lab.home.to_owned()).or_default();
    let (inventory, lease) = (format!("seclab-{}", lab.name), format!("seclab-{}-watch", lab.name));
    grant(home, rule("", "configmaps", &LIST, None));
    grant(home, rule("", "configmaps", &BY_NAME, Some(&BTreeSet::from([inventory.as_str()]))));
    grant(home, rule("coordination.k8s.io", "leases", &["create"], None));
    grant(
        home,
        rule("coordination.k8s.io", "leases", &["get", "patch", "update"], Some(&BTreeSet::from([lease.as_str()]))),
    );

    // What the lab's own roles grant, where they grant it; and `bind` on the ClusterRoles
    // its bindings name that it does not define (the built-in `view`, say).
    let defined: BTreeSet<&str> = lab
        .objects
        .iter()
        .filter(|o| o.key.group == RBAC_GROUP && o.key.kind == "ClusterRole")
        .map(|o| o.key.name.as_str())
        .collect();
    for object in lab.objects.iter().filter(|o| o.key.group == RBAC_GROUP) {
        let manifest = &object.manifest;
        let into = match &object.key.namespace {
            Some(namespace) => roles.entry(namespace.clone()).or_default(),
            None => &mut cluster,
        };
        match object.key.kind.as_str() {
            "Role" | "ClusterRole" => {
                for granted in manifest["rules"].as_array().into_iter().flatten() {
                    grant(into, granted.clone());
                }
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let role = &manifest["roleRef"];
                let name = role["name"].as_str().unwrap_or_default();
                if role["kind"] == "ClusterRole" && !defined.contains(name) {
                    grant(into, rule(RBAC_GROUP, "clusterroles", &["bind"], Some(&BTreeSet::from([name]))));
                }
            }
            _ => {}
        }
    }
    (cluster, roles)
}

fn rule(group: &str, resource: &str, verbs: &[&str], names: Option<&BTreeSet<&str>>) -> Value {
    let mut rule = json!({ "apiGroups": [group], "resources": [resource], "verbs": verbs });
    if let Some(names) = names {
        rule["resourceNames"] = json!(names);
    }
    rule
}

/// Adds `rule` unless `rules` already grant all of it.
fn grant(rules: &mut Vec<Value>, rule: Value) {
    if !granted(rules, &rule) && !rules.contains(&rule) {
        rules.push(rule);
    }
}

/// Rules that differ only in their resources, as one rule: what a person would write.
fn compact(rules: Vec<Value>) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::new();
    for rule in rules {
        let same = |other: &&mut Value| {
            ["apiGroups", "verbs", "resourceNames", "nonResourceURLs"]
                .iter()
                .all(|field| other.get(field) == rule.get(field))
                && other.get("resources").is_some()
        };
        match merged.iter_mut().find(same) {
            Some(other) => {
                let resources = other["resources"].as_array_mut().expect("a rule with resources");
                for resource in strings(&rule["resources"]) {
                    if !resources.iter().any(|r| r == resource) {
                        resources.push(json!(resource));
                    }
                }
            }
            None => merged.push(rule),
        }
    }
    merged
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn holds(rules: &[Value], group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().filter(|rule| rule.get("resourceNames").is_none()).any(|rule| {
        strings(&rule["apiGroups"]).any(|g| g == group || g == "*")
            && strings(&rule["resources"]).any(|r| r == resource || r == "*")
            && strings(&rule["verbs"]).any(|v| v == verb || v == "*")
    })
}

fn granted(rules: &[Value], rule: &Value) -> bool {
    if rule.get("nonResourceURLs").is_some() {
        return false;
    }
    strings(&rule["apiGroups"]).all(|group| {
        strings(&rule["resources"])
            .all(|resource| strings(&rule["verbs"]).all(|verb| holds(rules, group, resource, verb)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ObjectKey;

    fn object(group: &str, kind: &str, namespace: Option<&str>, name: &str, manifest: Value) -> Object {
        let key = ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        };
        Object { key, template: "t/t.yaml".into(), manifest: manifest.into() }
    }

    fn find<'a>(objects: &'a [Value], kind: &str, namespace: Option<&str>) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["namespace"].as_str() == namespace)
            .unwrap_or_else(|| panic!("no {kind} in {namespace:?}: {objects:#?}"))
    }

    #[test]
    fn cluster_scoped_by_name_and_namespaced_rules_stay_in_their_namespace() {
        let objects = [
            object("", "Namespace", None, "lab", json!({})),
            object("", "PersistentVolume", None, "data", json!({})),
            object("apps", "Deployment", Some("lab"), "app", json!({})),
            object("example.dev", "Widget", Some("lab"), "w", json!({})),
            object(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                None,
                "widgets.example.dev",
                json!({ "spec": { "group": "example.dev", "names": { "kind": "Widget", "plural": "widgetz" } } }),
            ),
            object(
                RBAC_GROUP,
                "Role",
                Some("jobs"),
                "runner",
                json!({ "rules": [
                { "apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"] },
                { "apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "deletecollection"] },
            ] }),
            ),
            object(
                RBAC_GROUP,
                "RoleBinding",
                Some("jobs"),
                "viewer",
                json!({ "roleRef": { "kind": "ClusterRole", "name": "view" } }),
            ),
        ];
        let lab = Lab { name: "lab", home: "lab", objects: &objects, secret_namespaces: BTreeSet::from(["lab"]) };
        let all = permissions(&lab, &Subject::User("me".into()));
        let kinds: Vec<&str> = all.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["Namespace", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Role", "RoleBinding"]
        );

        let cluster = &find(&all, "ClusterRole", None)["rules"];
        let text = cluster.to_string();
        assert!(!text.contains("secrets") && !text.contains("pods/exec") && !text.contains("deployments"), "{text}");
        let by_name: Vec<&Value> =
            cluster.as_array().unwrap().iter().filter(|r| r.get("resourceNames").is_some()).collect();
        assert!(
            by_name
                .iter()
                .any(|r| r["resources"] == json!(["persistentvolumes"]) && r["resourceNames"] == json!(["data"])),
            "{cluster:#}"
        );
        assert!(
            by_name
                .iter()
                .any(|r| r["resources"] == json!(["namespaces"]) && r["resourceNames"] == json!(["jobs", "lab"])),
            "{cluster:#}"
        );
        assert!(by_name.iter().all(|r| !strings(&r["verbs"]).any(|v| v == "list")), "a LIST cannot be limited by name");

        let home = find(&all, "Role", Some("lab"))["rules"].to_string();
        for needed in ["deployments", "widgetz", "secrets", "seclab-lab-watch", "\"seclab-lab\""] {
            assert!(home.contains(needed), "{needed} missing: {home}");
        }
        let jobs = find(&all, "Role", Some("jobs"))["rules"].to_string();
        assert!(jobs.contains("pods/exec") && jobs.contains("deletecollection") && jobs.contains("\"view\""), "{jobs}");
        assert!(!jobs.contains("secrets"), "no Secrets in that namespace: {jobs}");
        assert_eq!(find(&all, "RoleBinding", Some("jobs"))["subjects"][0]["name"], "me");
    }

    #[test]
    fn built_in_kinds_by_their_own_resource_names() {
        let objects = [
            object("", "Endpoints", Some("n"), "e", json!({})),
            object("networking.k8s.io", "NetworkPolicy", Some("n"), "p", json!({})),
            object("networking.k8s.io", "Ingress", Some("n"), "i", json!({})),
        ];
        let names: Vec<String> = objects.iter().map(|o| resource_name(&objects, &o.key)).collect();
        assert_eq!(names, ["endpoints", "networkpolicies", "ingresses"]);
    }
}
