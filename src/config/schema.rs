//! The JSON Schema of the desired-state file, and field names looked up in it.

use serde_json::Value;

use super::model::LabFile;
use super::path::{FieldPath, Segment};

/// The JSON Schema (draft 2020-12) of the desired-state file, for yaml-language-server.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(LabFile).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert("$id".into(), "https://seclab.dev/schemas/lab-v1alpha1.json".into());
    }
    schema
}

/// The field names allowed in the mapping at `path`, for "did you mean" hints.
pub fn fields_at(schema: &Value, path: &FieldPath) -> Vec<String> {
    let mut nodes = vec![schema];
    for segment in path.segments() {
        nodes = nodes.into_iter().flat_map(|node| step(schema, node, segment)).collect();
    }
    let mut names: Vec<String> = nodes
        .into_iter()
        .flat_map(|node| expand(schema, node))
        .filter_map(|node| node.get("properties").and_then(Value::as_object))
        .flat_map(|properties| properties.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn step<'a>(root: &'a Value, node: &'a Value, segment: &Segment) -> Vec<&'a Value> {
    expand(root, node)
        .into_iter()
        .filter_map(|node| match segment {
            Segment::Key(key) => node.get("properties").and_then(|p| p.get(key)),
            Segment::Index(_) => node.get("items"),
        })
        .collect()
}

/// A node with its `$ref` resolved and its `anyOf`/`oneOf`/`allOf` branches flattened.
fn expand<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        if let Some(target) = node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#'))
            && let Some(resolved) = root.pointer(target)
        {
            pending.push(resolved);
        }
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let Some(branches) = node.get(combinator).and_then(Value::as_array) {
                pending.extend(branches);
            }
        }
        out.push(node);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_through_refs_options_and_lists() {
        let schema = json_schema();
        let top = fields_at(&schema, &FieldPath::root());
        assert!(top.contains(&"scanDatabase".to_string()), "{top:?}");
        let scan = FieldPath::root().key("tenants").index(0).key("scans").index(3);
        let fields = fields_at(&schema, &scan);
        assert!(fields.contains(&"downAfter".to_string()), "{fields:?}");
        let smtp = FieldPath::root().key("alerts").key("routes").index(0).key("email").key("smtp");
        assert!(fields_at(&schema, &smtp).contains(&"password".to_string()));
    }
}
