//! Rendered Kubernetes objects: parsed back from YAML, checked, and labelled as seclab's.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::config::fields;

/// Label naming the tool that manages an object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label naming the lab an object belongs to.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// Label naming the component (template folder) an object comes from.
pub const COMPONENT: &str = "app.kubernetes.io/component";

/// Kinds without a namespace (the built-in ones seclab renders or users may add).
const CLUSTER_SCOPED: [&str; 12] = [
    "Namespace",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
    "Node",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];
/// Kinds whose names must be DNS-1123 labels rather than subdomains.
const LABEL_NAMED: [&str; 2] = ["Namespace", "Service"];

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

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its identity.
    pub key: ObjectKey,
    /// The template it was rendered from (`component/file`).
    pub template: String,
    /// The whole manifest, labels included, in the template's field order.
    pub manifest: Value,
}

impl Object {
    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.manifest["apiVersion"].as_str().unwrap_or_default()
    }
}

/// Documents already parsed, by their text: `watch` renders on every save, and most of a
/// lab's documents come out the same.
#[derive(Debug)]
pub struct ParsedDocuments {
    by_text: HashMap<String, Value>,
    /// Whether documents are kept at all (a one-shot render has no use for them).
    keep: bool,
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self { by_text: HashMap::new(), keep: true }
    }
}

impl ParsedDocuments {
    /// Keeps nothing: for a render that is not followed by another.
    pub(crate) fn none() -> Self {
        Self { by_text: HashMap::new(), keep: false }
    }

    /// An empty set that keeps documents as `self` does.
    pub(crate) fn like(&self) -> Self {
        Self { by_text: HashMap::new(), keep: self.keep }
    }
}

/// Output above this size is parsed on two threads.
const PARALLEL_ABOVE: usize = 256 * 1024;

/// Parses one template's output into checked, labelled objects. Documents found in
/// `earlier` are not parsed again; every document parsed or reused goes into `kept`.
pub(crate) fn parse(
    text: &str,
    template: &str,
    component: &str,
    lab: &str,
    earlier: &mut ParsedDocuments,
    kept: &mut ParsedDocuments,
) -> Result<Vec<Object>, String> {
    let documents = documents(text);
    let fresh: Vec<&str> = documents.iter().copied().filter(|d| !earlier.by_text.contains_key(*d)).collect();
    let parse_all = |docs: &[&str]| -> Vec<(String, Result<Value, String>)> {
        docs.iter().map(|d| ((*d).to_owned(), serde_yaml::from_str::<Value>(d).map_err(|e| e.to_string()))).collect()
    };
    let parsed = if text.len() > PARALLEL_ABOVE && fresh.len() > 1 {
        let (first, second) = fresh.split_at(fresh.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| parse_all(second));
            let mut all = parse_all(first);
            all.extend(other.join().expect("the parsing thread does not panic"));
            all
        })
    } else {
        parse_all(&fresh)
    };
    let mut newly: HashMap<String, Result<Value, String>> = parsed.into_iter().collect();
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        // Moved from `earlier` to `kept`, or parsed just now; a document twice in one
        // template is found in `kept` the second time.
        let (text, value) = match earlier.by_text.remove_entry(document) {
            Some((text, value)) => (Some(text), value),
            None => match newly.remove(document) {
                Some(parsed) => (None, parsed.map_err(|e| format!("document {} is not valid YAML: {e}", index + 1))?),
                None => (None, kept.by_text.get(document).cloned().unwrap_or(Value::Null)),
            },
        };
        if kept.keep {
            kept.by_text.insert(text.unwrap_or_else(|| document.to_owned()), value.clone());
        }
        match value {
            Value::Null => continue,
            Value::Object(mut manifest) => {
                let key = check(&manifest).map_err(|e| format!("document {}: {e}", index + 1))?;
                label(&mut manifest, lab, component);
                objects.push(Object { key, template: template.to_owned(), manifest: Value::Object(manifest) });
            }
            _ => return Err(format!("document {} is not a mapping", index + 1)),
        }
    }
    Ok(objects)
}

/// The documents of a YAML stream: split at each `---` line (a document marker at the
/// start of a line always starts a new document in YAML, even inside a block scalar).
fn documents(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let marker =
            line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r']));
        if marker {
            documents.push(&text[start..offset]);
            start = offset + 3; // the rest of the marker line belongs to the document
        }
        offset += line.len();
    }
    documents.push(&text[start..]);
    documents.retain(|d| !d.trim().is_empty());
    documents
}

fn check(manifest: &Map<String, Value>) -> Result<ObjectKey, String> {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let api_version = text(manifest.get("apiVersion")).ok_or("it has no `apiVersion`")?;
    let kind = text(manifest.get("kind")).ok_or("it has no `kind`")?;
    let metadata =
        manifest.get("metadata").and_then(Value::as_object).ok_or_else(|| format!("the {kind} has no `metadata`"))?;
    let name = text(metadata.get("name")).ok_or_else(|| format!("the {kind} has no `metadata.name`"))?;
    let named =
        if LABEL_NAMED.contains(&kind.as_str()) { fields::dns_label(&name) } else { fields::dns_subdomain(&name) };
    named.map_err(|p| format!("{kind} name {}", p.message))?;
    let namespace = text(metadata.get("namespace"));
    let cluster_scoped = CLUSTER_SCOPED.contains(&kind.as_str());
    match (&namespace, cluster_scoped) {
        (Some(ns), true) => return Err(format!("{kind} {name} is cluster-scoped but sets namespace `{ns}`")),
        (None, false) => {
            return Err(format!("{kind} {name} has no `metadata.namespace` (seclab sets every namespace explicitly)"));
        }
        (Some(ns), false) => fields::dns_label(ns).map_err(|p| format!("{kind} {name}: namespace {}", p.message))?,
        (None, true) => {}
    }
    let group = api_version.rsplit_once('/').map(|(group, _)| group.to_owned()).unwrap_or_default();
    Ok(ObjectKey { group, kind, namespace, name })
}

fn label(manifest: &mut Map<String, Value>, lab: &str, component: &str) {
    let Some(Value::Object(metadata)) = manifest.get_mut("metadata") else { return };
    let labels = metadata.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Value::Object(labels) = labels {
        labels.insert(MANAGED_BY.into(), "seclab".into());
        labels.insert(PART_OF.into(), lab.into());
        labels.insert(COMPONENT.into(), component.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_keys() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cortex\n  namespace: cortex\n  labels: {a: b}\n---\n";
        let objects = parse(
            text,
            "cortex/deployment.yaml",
            "cortex",
            "homelab",
            &mut ParsedDocuments::default(),
            &mut ParsedDocuments::default(),
        )
        .unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key.to_string(), "Deployment.apps cortex/cortex");
        let labels = &objects[0].manifest["metadata"]["labels"];
        assert_eq!(labels["a"], "b");
        assert_eq!(labels[MANAGED_BY], "seclab");
        assert_eq!(labels[PART_OF], "homelab");
        assert_eq!(labels[COMPONENT], "cortex");
    }

    #[test]
    fn splits_documents_at_markers_only() {
        let text = "---\na: 1\n---\n\n--- # c\nb: |\n  ---x\n  y\n---\n";
        assert_eq!(documents(text), ["\na: 1\n", " # c\nb: |\n  ---x\n  y\n"]);
        assert_eq!(documents("a: 1\n"), ["a: 1\n"]);
        assert!(documents("").is_empty() && documents("---\n---\n").is_empty());
    }

    #[test]
    fn a_document_seen_before_is_not_parsed_again() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n";
        let (mut first, mut earlier) = (ParsedDocuments::default(), ParsedDocuments::default());
        parse(text, "t/x.yaml", "t", "lab", &mut earlier, &mut first).unwrap();
        assert_eq!(first.by_text.len(), 1);
        // A poisoned entry shows the reuse: the document is taken from the cache, unparsed.
        let key = first.by_text.keys().next().unwrap().clone();
        first.by_text.insert(
            key,
            serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "cached", "namespace": "n" } }),
        );
        let objects = parse(text, "t/x.yaml", "t", "lab", &mut first, &mut ParsedDocuments::default()).unwrap();
        assert_eq!(objects[0].key.name, "cached");
    }

    #[test]
    fn rejects_bad_objects() {
        let cases = [
            ("kind: Service\nmetadata: {name: a, namespace: b}", "apiVersion"),
            ("apiVersion: v1\nkind: Service\nmetadata: {name: a.b, namespace: c}", "not a valid name"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}", "no `metadata.namespace`"),
            ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: b}", "cluster-scoped"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: B}", "namespace"),
            ("- a\n- b", "not a mapping"),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n---\nkind: [",
                "document 2 is not valid YAML",
            ),
        ];
        for (text, expected) in cases {
            let error =
                parse(text, "t/x.yaml", "t", "lab", &mut ParsedDocuments::default(), &mut ParsedDocuments::default())
                    .unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
