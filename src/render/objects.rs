//! Rendered Kubernetes objects: parsed back from YAML, checked, and labelled as seclab's.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::fields;
use crate::identity::{APPLYSET_PART_OF, COMPONENT, MANAGED_BY, MANAGER, ObjectKey, PART_OF};

use super::kinds;

/// Kinds whose names must be DNS-1123 labels rather than subdomains.
const LABEL_NAMED: [&str; 2] = ["Namespace", "Service"];

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its identity.
    pub key: ObjectKey,
    /// The template it was rendered from (`component/file`).
    pub template: String,
    /// The whole manifest, labels included, in the template's field order. Shared: `watch`
    /// keeps the objects a save did not change, and compares them only when the cluster's
    /// copy changed.
    pub manifest: Arc<Value>,
}

impl Object {
    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.manifest["apiVersion"].as_str().unwrap_or_default()
    }

    /// The component it belongs to: its template's folder, else its component label.
    pub fn component(&self) -> &str {
        match self.template.split_once('/') {
            Some((component, _)) => component,
            None => self.manifest["metadata"]["labels"][COMPONENT].as_str().unwrap_or_default(),
        }
    }
}

/// What the last render gave, kept for the next: each template's output with its documents
/// parsed, checked and labelled, and the inputs it was rendered from. `watch` renders on every
/// save, and most of a lab's documents come out the same, as the same shared manifest; a
/// per-tenant template whose inputs did not change is not rendered at all.
#[derive(Debug)]
pub struct ParsedDocuments {
    /// By template, and tenant for the per-tenant templates.
    outputs: HashMap<OutputKey, Arc<KeptOutput>>,
    /// Whether anything is kept at all (a one-shot render has no use for it).
    keep: bool,
    /// The ApplySet every object is labelled a member of, when the renders are applied.
    applyset: Option<String>,
    /// The context the kept outputs were rendered from.
    pub(super) inputs: super::Inputs,
}

/// Which render an output comes from: a template, and the tenant it was rendered for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OutputKey {
    /// The template (`component/file`).
    pub template: String,
    /// The tenant, for a template rendered once per tenant.
    pub tenant: Option<String>,
}

impl fmt::Display for OutputKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(tenant) => write!(f, "{} (tenant `{tenant}`)", self.template),
            None => f.write_str(&self.template),
        }
    }
}

/// One output, and each of its documents (a range of the text) parsed.
#[derive(Debug)]
struct KeptOutput {
    text: String,
    documents: Vec<(Range<usize>, Parsed)>,
}

/// A document's object (`None`: an empty document).
type Parsed = Option<(ObjectKey, Arc<Value>)>;

impl ParsedDocuments {
    /// Keeps nothing: for a render that is not followed by another.
    pub(crate) fn none() -> Self {
        Self { outputs: HashMap::new(), keep: false, applyset: None, inputs: super::Inputs::default() }
    }

    /// Keeps each render's documents for the next one, and labels every object a member of
    /// the ApplySet `applyset_id` (as the reconcile's desired state does).
    pub fn for_applyset(applyset_id: &str) -> Self {
        Self {
            outputs: HashMap::new(),
            keep: true,
            applyset: Some(applyset_id.to_owned()),
            inputs: super::Inputs::default(),
        }
    }

    /// The ApplySet the objects are labelled for.
    pub fn applyset(&self) -> Option<&str> {
        self.applyset.as_deref()
    }

    /// Whether renders are kept for the next one.
    pub(crate) fn keeps(&self) -> bool {
        self.keep
    }

    /// An empty set that keeps documents as `self` does.
    pub(crate) fn like(&self) -> Self {
        Self {
            outputs: HashMap::new(),
            keep: self.keep,
            applyset: self.applyset.clone(),
            inputs: super::Inputs::default(),
        }
    }

    /// Keeps `output`'s documents (when `self` keeps documents at all).
    pub(crate) fn keep(&mut self, output: TemplateObjects) -> Vec<Object> {
        if let Some(kept) = output.kept.filter(|_| self.keep) {
            self.outputs.insert(output.key, kept);
        }
        output.objects
    }

    /// The objects of the output kept under `key`, shared, without rendering or parsing it:
    /// for a template whose inputs did not change.
    pub(crate) fn reuse(&self, key: &OutputKey) -> Option<TemplateObjects> {
        let kept = self.outputs.get(key)?;
        let objects = kept
            .documents
            .iter()
            .filter_map(|(_, parsed)| parsed.as_ref())
            .map(|(object, manifest)| Object {
                key: object.clone(),
                template: key.template.clone(),
                manifest: manifest.clone(),
            })
            .collect();
        Some(TemplateObjects { objects, key: key.clone(), kept: Some(kept.clone()) })
    }
}

/// Output above this size is parsed on two threads.
const PARALLEL_ABOVE: usize = 256 * 1024;

/// What one template's output gave: its objects, and its documents for the next render.
pub(crate) struct TemplateObjects {
    pub objects: Vec<Object>,
    key: OutputKey,
    kept: Option<Arc<KeptOutput>>,
}

/// Parses one template's output into checked, labelled objects. Documents the same
/// template gave in `earlier` are not parsed again: each is compared with the document at
/// the same place first (a save seldom moves documents), then looked up by its text.
pub(crate) fn parse(
    text: String,
    key: &OutputKey,
    component: &str,
    lab: &str,
    earlier: &ParsedDocuments,
) -> Result<TemplateObjects, String> {
    let template = key.template.as_str();
    let ranges = documents(&text);
    let previous = earlier.outputs.get(key);
    let mut by_text: Option<HashMap<&str, &Parsed, foldhash::fast::RandomState>> = None;
    let mut reused: Vec<Option<Parsed>> = Vec::with_capacity(ranges.len());
    for (index, range) in ranges.iter().enumerate() {
        let document = &text[range.clone()];
        let found = previous.and_then(|previous| {
            let same_place = previous.documents.get(index).filter(|(r, _)| &previous.text[r.clone()] == document);
            if let Some((_, parsed)) = same_place {
                return Some(parsed.clone());
            }
            let index = by_text.get_or_insert_with(|| {
                previous.documents.iter().map(|(r, parsed)| (&previous.text[r.clone()], parsed)).collect()
            });
            index.get(document).map(|parsed| (*parsed).clone())
        });
        reused.push(found);
    }
    let fresh: Vec<usize> = (0..ranges.len()).filter(|i| reused[*i].is_none()).collect();
    let applyset = earlier.applyset.as_deref();
    let parse_all = |indexes: &[usize]| -> Vec<(usize, Result<Parsed, String>)> {
        indexes.iter().map(|i| (*i, parse_one(&text[ranges[*i].clone()], *i, component, lab, applyset))).collect()
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
    for (index, result) in parsed {
        reused[index] = Some(result?);
    }
    let mut objects = Vec::new();
    let mut documents = Vec::with_capacity(ranges.len());
    for (range, parsed) in ranges.into_iter().zip(reused) {
        let parsed = parsed.expect("every document is reused or parsed");
        if let Some((key, manifest)) = &parsed {
            objects.push(Object { key: key.clone(), template: template.to_owned(), manifest: manifest.clone() });
        }
        documents.push((range, parsed));
    }
    let kept = earlier.keep.then(|| Arc::new(KeptOutput { text, documents }));
    Ok(TemplateObjects { objects, key: key.clone(), kept })
}

/// Parses, checks and labels the document at `index` (from 0) of a template's output.
fn parse_one(
    document: &str,
    index: usize,
    component: &str,
    lab: &str,
    applyset: Option<&str>,
) -> Result<Parsed, String> {
    let value = serde_yaml::from_str::<Value>(document)
        .map_err(|e| format!("document {} is not valid YAML: {e}", index + 1))?;
    match value {
        Value::Null => Ok(None),
        Value::Object(mut manifest) => {
            let key = check(&manifest).map_err(|e| format!("document {}: {e}", index + 1))?;
            label(&mut manifest, lab, component, applyset);
            Ok(Some((key, Arc::new(Value::Object(manifest)))))
        }
        _ => Err(format!("document {} is not a mapping", index + 1)),
    }
}

/// The documents of a YAML stream: split at each `---` line (a document marker at the
/// start of a line always starts a new document in YAML, even inside a block scalar).
fn documents(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let line_starts = bytes.starts_with(b"---").then_some(0).into_iter();
    let markers = line_starts.chain(memchr::memmem::find_iter(bytes, b"\n---").map(|newline| newline + 1));
    let mut documents = Vec::new();
    let mut start = 0;
    for marker in markers {
        if bytes.get(marker + 3).is_none_or(|next| matches!(next, b' ' | b'\t' | b'\n' | b'\r')) {
            documents.push(start..marker);
            start = marker + 3; // the rest of the marker line belongs to the document
        }
    }
    documents.push(start..text.len());
    documents.retain(|d| !text[d.clone()].trim().is_empty());
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
    if let Some(ns) = &namespace {
        fields::dns_label(ns).map_err(|p| format!("{kind} {name}: namespace {}", p.message))?;
    }
    let group = api_version.rsplit_once('/').map(|(group, _)| group.to_owned()).unwrap_or_default();
    let key = ObjectKey { group, kind, namespace, name };
    // Other kinds: checked against the lab's CRDs once every template has rendered, and
    // against the API server's discovery when a plan is made.
    match kinds::built_in_namespaced(&key.group, &key.kind).and_then(|namespaced| key.scope_problem(namespaced)) {
        Some(problem) => Err(problem),
        None => Ok(key),
    }
}

fn label(manifest: &mut Map<String, Value>, lab: &str, component: &str, applyset: Option<&str>) {
    let Some(Value::Object(metadata)) = manifest.get_mut("metadata") else { return };
    let labels = metadata.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Value::Object(labels) = labels {
        labels.insert(MANAGED_BY.into(), MANAGER.into());
        labels.insert(PART_OF.into(), lab.into());
        labels.insert(COMPONENT.into(), component.into());
        if let Some(id) = applyset {
            labels.insert(APPLYSET_PART_OF.into(), id.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(template: &str) -> OutputKey {
        OutputKey { template: template.into(), tenant: None }
    }

    #[test]
    fn labels_and_keys() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cortex\n  namespace: cortex\n  labels: {a: b}\n---\n";
        let objects = parse(text.into(), &key("cortex/deployment.yaml"), "cortex", "homelab", &ParsedDocuments::none())
            .unwrap()
            .objects;
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
        let split =
            |text: &'static str| -> Vec<&'static str> { documents(text).into_iter().map(|r| &text[r]).collect() };
        assert_eq!(split(text), ["\na: 1\n", " # c\nb: |\n  ---x\n  y\n"]);
        assert_eq!(split("a: 1\n"), ["a: 1\n"]);
        assert!(split("").is_empty() && split("---\n---\n").is_empty());
    }

    #[test]
    fn a_document_seen_before_is_not_parsed_again() {
        // Each document after a marker, as the templates write them.
        let doc =
            |name: &str| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: n}}\n");
        let text = format!("{}{}", doc("a"), doc("b"));
        let mut first = ParsedDocuments::for_applyset("x");
        let output = parse(text.clone(), &key("t/x.yaml"), "t", "lab", &first.like()).unwrap();
        let before = first.keep(output);
        assert_eq!(before[0].manifest["metadata"]["labels"][APPLYSET_PART_OF], "x");
        // The same text gives the same shared manifests, without parsing them again...
        let again = parse(text, &key("t/x.yaml"), "t", "lab", &first).unwrap().objects;
        assert!(Arc::ptr_eq(&before[0].manifest, &again[0].manifest));
        assert!(Arc::ptr_eq(&before[1].manifest, &again[1].manifest));
        // ...also when a new document moves them...
        let moved = parse(format!("{}{}{}", doc("c"), doc("a"), doc("b")), &key("t/x.yaml"), "t", "lab", &first);
        let moved = moved.unwrap().objects;
        assert_eq!(moved[0].key.name, "c");
        assert!(Arc::ptr_eq(&before[0].manifest, &moved[1].manifest));
        assert!(Arc::ptr_eq(&before[1].manifest, &moved[2].manifest));
        // ...but not for another template, whose component label differs.
        let other = parse(doc("a"), &key("u/x.yaml"), "u", "lab", &first).unwrap().objects;
        assert!(!Arc::ptr_eq(&before[0].manifest, &other[0].manifest));
        assert_eq!(other[0].manifest["metadata"]["labels"][COMPONENT], "u");
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
            let Err(error) = parse(text.into(), &key("t/x.yaml"), "t", "lab", &ParsedDocuments::none()) else {
                panic!("{text} is accepted");
            };
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
