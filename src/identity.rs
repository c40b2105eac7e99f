//! What makes an object seclab's, at the bottom of every layer: an object's identity, the
//! labels that mark the lab and ApplySet it belongs to, and the name seclab manages under.
//! Nothing here imports another of seclab's modules.

use std::fmt;

use serde_json::{Value, json};

/// The name seclab manages objects under: the managed-by label's value and the field
/// manager of every server-side apply.
pub const MANAGER: &str = "seclab";

/// Label naming the tool that manages an object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the lab (or operator set) an object belongs to.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// Label naming the component (template folder) an object comes from.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// ApplySet label on the parent (the inventory): the set's id.
pub const APPLYSET_ID: &str = "applyset.kubernetes.io/id";
/// ApplySet label on every member: the id of its set.
pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";

/// What identifies an object in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// API group; empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.group.is_empty() { self.kind.clone() } else { format!("{}.{}", self.kind, self.group) };
        match &self.namespace {
            Some(namespace) => write!(f, "{kind} {namespace}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

impl ObjectKey {
    /// What is wrong with the object's namespace, for a kind whose objects live in namespaces
    /// (`namespaced`) or not.
    pub fn scope_problem(&self, namespaced: bool) -> Option<String> {
        let (kind, name) = (&self.kind, &self.name);
        match (&self.namespace, namespaced) {
            (Some(namespace), false) => {
                Some(format!("{kind} {name} is cluster-scoped but sets namespace `{namespace}`"))
            }
            (None, true) => {
                Some(format!("{kind} {name} has no `metadata.namespace` (seclab sets every namespace explicitly)"))
            }
            _ => None,
        }
    }
}

/// A kind as a manifest names it: its `apiVersion` (group and version) and `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindName {
    /// `apiVersion`: `v1`, `apps/v1`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
}

impl KindName {
    /// The kind `kind` of `api_version`.
    pub fn new(api_version: impl Into<String>, kind: impl Into<String>) -> Self {
        Self { api_version: api_version.into(), kind: kind.into() }
    }
}

/// The labels that make an object the set `set`'s (a lab's, or an operator's).
pub fn labels(set: &str) -> Value {
    json!({ MANAGED_BY: MANAGER, PART_OF: set })
}

/// Whether `live` carries the labels of the set `set`.
pub fn owned(live: &Value, set: &str) -> bool {
    let labels = &live["metadata"]["labels"];
    labels[MANAGED_BY] == MANAGER && labels[PART_OF] == set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_the_sets_whose_labels_it_carries() {
        let live = json!({ "metadata": { "labels": labels("lab") } });
        assert!(owned(&live, "lab"));
        assert!(!owned(&live, "other"));
        assert!(!owned(&json!({ "metadata": { "labels": { PART_OF: "lab" } } }), "lab"));
    }
}
