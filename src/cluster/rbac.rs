//! The least-privilege ClusterRole seclab itself needs for a lab.

use serde_json::{Value, json};

use crate::render::Object;

/// The rules every lab needs (the built-in templates' kinds, readiness, CRDs).
pub const BASE_CLUSTER_ROLE: &str = include_str!("clusterrole.yaml");

const VERBS: [&str; 7] = ["get", "list", "watch", "create", "patch", "update", "delete"];

/// The ClusterRole seclab needs to reconcile `objects`: the base rules, one rule for each
/// kind they hold that the base does not cover, and every rule their own Roles and
/// ClusterRoles grant that seclab does not hold yet (the API server refuses to let anyone
/// grant what it does not hold).
pub fn cluster_role(objects: &[Object]) -> Value {
    let mut role: Value = serde_yaml::from_str(BASE_CLUSTER_ROLE).expect("the built-in ClusterRole is valid YAML");
    let mut rules: Vec<Value> = role["rules"].as_array().cloned().unwrap_or_default();
    for object in objects {
        let resource = plural(&object.key.kind);
        if !VERBS.iter().all(|verb| holds(&rules, &object.key.group, &resource, verb)) {
            rules.push(json!({ "apiGroups": [object.key.group], "resources": [resource], "verbs": VERBS }));
        }
        if matches!(object.key.kind.as_str(), "Role" | "ClusterRole") && object.key.group == "rbac.authorization.k8s.io"
        {
            for rule in object.manifest["rules"].as_array().into_iter().flatten() {
                if !granted(&rules, rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    role["rules"] = Value::Array(rules);
    role
}

/// The resource name of a kind: lower case, plural.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") || lower.ends_with("sh") {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u'])) {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
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
    use crate::render::ObjectKey;

    fn object(group: &str, kind: &str, manifest: Value) -> Object {
        let key = ObjectKey { group: group.into(), kind: kind.into(), namespace: Some("n".into()), name: "a".into() };
        Object { key, template: "t/t.yaml".into(), manifest: manifest.into() }
    }

    #[test]
    fn adds_custom_kinds_and_granted_rules_only() {
        let base = cluster_role(&[]);
        let count = base["rules"].as_array().unwrap().len();
        let objects = [
            object("apps", "Deployment", json!({})),
            object("cert-manager.io", "Certificate", json!({})),
            object(
                "rbac.authorization.k8s.io",
                "Role",
                json!({ "rules": [
                { "apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete"] },
                { "apiGroups": [""], "resources": ["nodes"], "verbs": ["get"] },
            ] }),
            ),
        ];
        let role = cluster_role(&objects);
        let added = &role["rules"].as_array().unwrap()[count..];
        assert_eq!(added.len(), 2, "{added:?}");
        assert_eq!(added[0]["resources"], json!(["certificates"]));
        assert_eq!(added[1]["resources"], json!(["nodes"]));
        assert_eq!(plural("Elasticsearch"), "elasticsearches");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
    }
}
