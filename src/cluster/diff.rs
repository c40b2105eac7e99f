//! Field-level differences between a live object and the same object after a (dry-run)
//! apply, with Secret data never shown.

use serde::Serialize;
use serde_json::Value;

/// One field that an apply would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// Where, as `spec.template.spec.containers[app].image`.
    pub path: String,
    /// The live value; absent when the field is added, or when it is secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The new value; absent when the field is removed, or when it is secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// A Secret's data: only the fact that it changes is shown.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// Metadata the server maintains; a difference there is not a change anyone asked for.
const SERVER_METADATA: [&str; 6] =
    ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"];

/// The changes from `before` to `after`. For a Secret, `data` and `stringData` values are
/// replaced by the mere fact of a change.
pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let secret = after["kind"] == "Secret" || before["kind"] == "Secret";
    let mut changes = Vec::new();
    let (Value::Object(b), Value::Object(a)) = (before, after) else { return changes };
    let mut keys: Vec<&String> = b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))).collect();
    keys.retain(|k| !matches!(k.as_str(), "status" | "apiVersion" | "kind"));
    for key in keys {
        let (before, after) = (b.get(key), a.get(key));
        if key == "metadata" {
            let strip = |value: Option<&Value>| {
                let mut value = value.cloned().unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    map.retain(|k, _| !SERVER_METADATA.contains(&k.as_str()));
                }
                value
            };
            walk("metadata".into(), Some(&strip(before)), Some(&strip(after)), false, &mut changes);
        } else {
            let hidden = secret && matches!(key.as_str(), "data" | "stringData");
            walk(key.clone(), before, after, hidden, &mut changes);
        }
    }
    changes
}

fn walk(path: String, before: Option<&Value>, after: Option<&Value>, secret: bool, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            for (key, value) in b {
                walk(child(&path, key), Some(value), a.get(key), secret, out);
            }
            for (key, value) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                walk(child(&path, key), None, Some(value), secret, out);
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) if b.len() == a.len() && !secret => {
            for (index, (b, a)) in b.iter().zip(a).enumerate() {
                let label = match (b["name"].as_str(), a["name"].as_str()) {
                    (Some(x), Some(y)) if x == y => x.to_owned(),
                    _ => index.to_string(),
                };
                walk(format!("{path}[{label}]"), Some(b), Some(a), secret, out);
            }
        }
        (before, after) if before == after => {}
        (before, after) if secret => {
            out.push(FieldChange { path, before: None, after: None, secret: true }.hide(before, after))
        }
        (before, after) => {
            out.push(FieldChange { path, before: before.cloned(), after: after.cloned(), secret: false })
        }
    }
}

impl FieldChange {
    /// A secret change keeps only which of added / removed / changed it is, in the path.
    fn hide(mut self, before: Option<&Value>, after: Option<&Value>) -> Self {
        let what = match (before, after) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        };
        self.path = format!("{} ({what})", self.path);
        self
    }
}

fn child(path: &str, key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Value| match v {
            Value::String(s) if !s.contains('\n') => s.clone(),
            other => other.to_string(),
        };
        match (&self.before, &self.after) {
            _ if self.secret => write!(f, "~ {}: <secret value>", self.path),
            (None, Some(after)) => write!(f, "+ {}: {}", self.path, show(after)),
            (Some(before), None) => write!(f, "- {}: {}", self.path, show(before)),
            (Some(before), Some(after)) => write!(f, "~ {}: {} -> {}", self.path, show(before), show(after)),
            (None, None) => write!(f, "~ {}", self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_named_by_path() {
        let before = json!({ "kind": "Deployment", "metadata": { "name": "a", "resourceVersion": "1", "labels": { "app.kubernetes.io/name": "a" } },
            "spec": { "replicas": 1, "template": { "spec": { "containers": [{ "name": "app", "image": "x:1" }] } } }, "status": { "replicas": 1 } });
        let after = json!({ "kind": "Deployment", "metadata": { "name": "a", "resourceVersion": "2", "labels": { "app.kubernetes.io/name": "b" } },
            "spec": { "replicas": 2, "paused": true, "template": { "spec": { "containers": [{ "name": "app", "image": "x:2" }] } } }, "status": {} });
        let lines: Vec<String> = diff(&before, &after).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "~ metadata.labels[\"app.kubernetes.io/name\"]: a -> b",
                "~ spec.replicas: 1 -> 2",
                "~ spec.template.spec.containers[app].image: x:1 -> x:2",
                "+ spec.paused: true",
            ]
        );
    }

    #[test]
    fn secret_values_never_show() {
        let before = json!({ "kind": "Secret", "metadata": { "name": "s" }, "data": { "password": "aHVudGVyMg==", "old": "eA==" } });
        let after = json!({ "kind": "Secret", "metadata": { "name": "s" }, "data": { "password": "c3dvcmRmaXNo", "new": "eQ==" } });
        let changes = diff(&before, &after);
        let text = format!("{changes:?} {}", serde_json::to_string(&changes).unwrap());
        for value in ["aHVudGVyMg==", "c3dvcmRmaXNo", "eA==", "eQ=="] {
            assert!(!text.contains(value), "{text}");
        }
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "~ data.password (changed): <secret value>",
                "~ data.old (removed): <secret value>",
                "~ data.new (added): <secret value>"
            ]
        );
    }
}
