//! Every type problem of a file at once: when the file does not deserialize, its YAML is
//! checked against the JSON Schema, which reports each wrong value (rather than serde's first),
//! in the user's words; the wrong values are then left out and the rest deserialized, so that
//! the semantic checks run on what remains.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, JsonTypeSet};
use serde_json::Value;

use super::diagnostics::Diagnostic;
use super::model::LabFile;
use super::path::{FieldPath, Segment};
use super::source::SourceFile;

/// What the schema finds wrong in the file's values, and the file without them (`None` when
/// it still does not deserialize, a required field being wrong for instance).
pub struct TypeProblems {
    /// One per wrong value; unknown fields as `(path, None)`, for the caller's did-you-mean.
    pub problems: Vec<(FieldPath, Option<Diagnostic>)>,
    /// The file with every wrong value left out, deserialized.
    pub rest: Option<LabFile>,
}

/// The file's type problems, or `None` when its YAML does not parse (a syntax error: serde's
/// own message says where) or the schema finds nothing (serde's message is then the one).
pub fn check(source: &SourceFile, schema: &Value) -> Option<TypeProblems> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(source.text()).ok()?;
    let mut json = serde_json::to_value(&yaml).ok()?;
    let validator = jsonschema::validator_for(schema).ok()?;
    let errors: Vec<_> = validator.iter_errors(&json).collect();
    let mut found = Vec::new();
    for error in &errors {
        closest(error, &mut found);
    }
    // An object with an unknown key is also missing the key meant: the unknown one says it.
    let unknown_in: Vec<&str> = found
        .iter()
        .filter(|e| matches!(e.kind(), ValidationErrorKind::AdditionalProperties { .. }))
        .map(|e| e.instance_path().as_str())
        .collect();
    let mut problems = Vec::new();
    let mut wrong = Vec::new();
    for error in &found {
        let path = field_path(&json, error.instance_path().as_str());
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    let field = path.key(key);
                    wrong.push((field.clone(), None));
                    problems.push((field, None));
                }
            }
            ValidationErrorKind::Required { .. } if unknown_in.contains(&error.instance_path().as_str()) => {}
            kind => {
                if problems.iter().any(|(p, _)| *p == path) {
                    continue;
                }
                let (message, hint) = describe(kind, error.instance());
                let location = source.value_location(&path);
                let diagnostic =
                    Diagnostic { location, path: Some(path.clone()), message, hint, at_key: false, secret: false };
                wrong.push((path.clone(), stand_in(kind)));
                problems.push((path, Some(diagnostic)));
            }
        }
    }
    if problems.is_empty() {
        return None;
    }
    // Deepest first, so that removing one never shifts another's index.
    wrong.sort_by_key(|(path, _)| std::cmp::Reverse(path.segments().len()));
    for (path, stand_in) in wrong {
        put(&mut json, &path, stand_in);
    }
    let rest = serde_json::from_value(json).ok();
    Some(TypeProblems { problems, rest })
}

/// The errors that say what is wrong: for a value that matches none of a field's forms (a
/// secret as text, or as `secretRef: {name, key}`), the errors of the form it came closest
/// to (the one whose errors reach deepest into the value), when that is deeper than the
/// field itself; else the error as it is.
fn closest<'e, 'v>(error: &'e ValidationError<'v>, out: &mut Vec<&'e ValidationError<'v>>) {
    if let ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } = error.kind() {
        let branch_reach = |branch: &Vec<ValidationError<'static>>| branch.iter().map(reach).max().unwrap_or(0);
        if let Some(branch) = context.iter().max_by_key(|branch| branch_reach(branch))
            && branch_reach(branch) > depth(error)
        {
            for inner in branch {
                closest(inner, out);
            }
            return;
        }
    }
    out.push(error);
}

/// How deep into the value an error is (its path's length).
fn depth(error: &ValidationError<'_>) -> usize {
    error.instance_path().as_str().matches('/').count()
}

/// How deep an error reaches, through the forms of a field (nested `anyOf`/`oneOf`) too.
fn reach(error: &ValidationError<'_>) -> usize {
    match error.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            context.iter().flatten().map(reach).max().unwrap_or(0).max(depth(error))
        }
        _ => depth(error),
    }
}

/// The field path of a JSON pointer into `json` (a number is an index only inside a list).
fn field_path(json: &Value, pointer: &str) -> FieldPath {
    let mut path = FieldPath::root();
    let mut node = Some(json);
    for raw in pointer.split('/').skip(1) {
        let part = raw.replace("~1", "/").replace("~0", "~");
        match (node, part.parse::<usize>()) {
            (Some(Value::Array(items)), Ok(index)) => {
                node = items.get(index);
                path = path.index(index);
            }
            _ => {
                node = node.and_then(|n| n.get(&part));
                path = path.key(&part);
            }
        }
    }
    path
}

/// A value of the expected kind to put in place of a wrong one, so that the rest of the file
/// deserializes (what the checks then say of it is not reported); `None` to leave it out.
fn stand_in(kind: &ValidationErrorKind) -> Option<Value> {
    match kind {
        ValidationErrorKind::Type { kind: TypeKind::Single(expected) } => match expected {
            JsonType::Array => Some(Value::Array(Vec::new())),
            JsonType::Object => Some(Value::Object(serde_json::Map::new())),
            JsonType::String => Some(Value::String(String::new())),
            JsonType::Integer | JsonType::Number => Some(Value::from(0)),
            JsonType::Boolean => Some(Value::Bool(false)),
            JsonType::Null => Some(Value::Null),
        },
        ValidationErrorKind::Enum { options } => options.as_array().and_then(|o| o.first()).cloned(),
        _ => None,
    }
}

/// Puts `value` at `path` in `json`, or leaves the value there out (a key is removed and its
/// default applies; a list item too) when there is none.
fn put(json: &mut Value, path: &FieldPath, value: Option<Value>) {
    let Some((last, parents)) = path.segments().split_last() else { return };
    let mut node = json;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Key(key), Value::Object(map)) => map.get_mut(key),
            (Segment::Index(index), Value::Array(items)) => items.get_mut(*index),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    match (last, node, value) {
        (Segment::Key(key), Value::Object(map), Some(value)) => {
            map.insert(key.clone(), value);
        }
        (Segment::Key(key), Value::Object(map), None) => {
            map.remove(key);
        }
        (Segment::Index(index), Value::Array(items), Some(value)) if *index < items.len() => {
            items[*index] = value;
        }
        (Segment::Index(index), Value::Array(items), None) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

/// The message and hint for one wrong value, in the file's terms.
fn describe(kind: &ValidationErrorKind, found: &Value) -> (String, Option<String>) {
    let schema_hint = || Some("`seclab schema` prints the type of every field".to_owned());
    match kind {
        ValidationErrorKind::Type { kind } => {
            let types: Vec<JsonType> = match kind {
                TypeKind::Single(one) => vec![*one],
                TypeKind::Multiple(set) => JsonTypeSet::iter(set).collect(),
            };
            let expected: Vec<&str> = types.iter().filter(|t| **t != JsonType::Null).map(|t| type_name(*t)).collect();
            let expected = if expected.is_empty() { "nothing".to_owned() } else { expected.join(" or ") };
            let hint = match found {
                Value::String(text) if types.contains(&JsonType::Integer) && text.trim().parse::<i64>().is_ok() => {
                    Some(format!("write the number without quotes: `{}`", text.trim()))
                }
                Value::String(text) if types.contains(&JsonType::Array) => {
                    Some(format!("write a list, even of one: `[{text}]`"))
                }
                _ => schema_hint(),
            };
            (format!("expected {expected}, found {}", value_name(found)), hint)
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options.as_array().into_iter().flatten().map(plain).collect();
            (format!("{} is not one of: {}", plain(found), options.join(", ")), None)
        }
        ValidationErrorKind::Minimum { limit } => (format!("{} is below the minimum, {limit}", plain(found)), None),
        ValidationErrorKind::Maximum { limit } => (format!("{} is above the maximum, {limit}", plain(found)), None),
        ValidationErrorKind::Required { property } => (format!("`{}` is missing here", plain(property)), None),
        ValidationErrorKind::Pattern { .. } => {
            (format!("{} is not written as this field expects", plain(found)), schema_hint())
        }
        _ => (format!("{} is not what this field takes", value_name(found)), schema_hint()),
    }
}

fn type_name(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Null => "nothing",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "a whole number",
        JsonType::Number => "a number",
        JsonType::String => "text",
        JsonType::Array => "a list",
        JsonType::Object => "a mapping (keys and values)",
    }
}

/// A value as the message names it: its kind and, when short, itself.
fn value_name(value: &Value) -> String {
    match value {
        Value::Null => "nothing (an empty value)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => {
            let text = plain(value).replace('\n', " ");
            let short: String = text.chars().take(60).collect();
            format!("the text {short}{}", if short.len() < text.len() { "...\"" } else { "" })
        }
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

/// A value as written in a message: text quoted, anything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => format!("\"{text}\""),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wrong_value_at_once_then_the_rest() {
        let text = "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n\
            elasticsearch:\n  nodes: \"3\"\n\
            tenants:\n  - name: a\n    replicas: two\n    scans:\n      - name: dmz\n        targets: 198.51.100.0/28\n        schedule: \"0 2 * * *\"\n";
        let source = SourceFile::new("lab.yaml", text);
        let found = check(&source, &super::super::json_schema()).expect("problems");
        let messages: Vec<String> = found
            .problems
            .iter()
            .filter_map(|(_, d)| d.as_ref().map(|d| format!("{}: {}", d.path.as_ref().unwrap(), d.message)))
            .collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(
            messages.iter().any(|m| m.contains("expected a whole number, found the text \"two\"")),
            "{messages:#?}"
        );
        assert!(found.rest.is_some(), "the rest deserializes without them");
    }
}
