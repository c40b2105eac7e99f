//! Reading a LIST response one item at a time: each item is handed to the caller as soon as
//! it is parsed, so a list of thousands of objects is never held whole as values.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Parses a LIST response body, passing each item (with `apiVersion` and `kind` filled in,
/// which the server leaves out of items) to `each` and keeping what it returns.
pub(super) fn items<T>(
    body: &str,
    api_version: &str,
    kind: &str,
    each: impl FnMut(Value) -> Option<T>,
) -> serde_json::Result<Vec<T>> {
    let mut out = Vec::new();
    let seed = Items { api_version, kind, each, out: &mut out };
    let mut deserializer = serde_json::Deserializer::from_str(body);
    deserializer.deserialize_map(ListVisitor(seed))?;
    deserializer.end()?;
    Ok(out)
}

struct Items<'a, T, F> {
    api_version: &'a str,
    kind: &'a str,
    each: F,
    out: &'a mut Vec<T>,
}

/// The list object: only `items` is read.
struct ListVisitor<'a, T, F>(Items<'a, T, F>);

impl<'de, T, F: FnMut(Value) -> Option<T>> Visitor<'de> for ListVisitor<'_, T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes list")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" {
                map.next_value_seed(&mut self.0)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de, T, F: FnMut(Value) -> Option<T>> DeserializeSeed<'de> for &mut Items<'_, T, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self) // an array, or null for no items
    }
}

impl<'de, T, F: FnMut(Value) -> Option<T>> Visitor<'de> for &mut Items<'_, T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(()) // `"items": null` in an empty list
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(mut item) = seq.next_element::<Value>()? {
            if let Value::Object(fields) = &mut item {
                fields.entry("apiVersion").or_insert_with(|| Value::String(self.api_version.to_owned()));
                fields.entry("kind").or_insert_with(|| Value::String(self.kind.to_owned()));
            }
            if let Some(kept) = (self.each)(item) {
                self.out.push(kept);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_over_each_item_with_its_type_and_keeps_what_the_caller_returns() {
        let body = r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"7"},
            "items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"},"data":{"x":"1"}}]}"#;
        let names = items(body, "v1", "ConfigMap", |item| {
            assert_eq!((item["apiVersion"].as_str(), item["kind"].as_str()), (Some("v1"), Some("ConfigMap")));
            let name = item["metadata"]["name"].as_str()?.to_owned();
            (name != "a").then_some(name)
        })
        .unwrap();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn an_empty_list_and_a_null_list_have_no_items() {
        for body in [r#"{"items":[]}"#, r#"{"items":null}"#, r#"{"kind":"List"}"#] {
            assert!(items(body, "v1", "Pod", Some).unwrap().is_empty(), "{body}");
        }
    }

    #[test]
    fn a_cut_body_is_an_error() {
        assert!(items(r#"{"items":[{"metadata":{}}"#, "v1", "Pod", Some).is_err());
    }
}
