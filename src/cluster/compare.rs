//! Whether a live object already is what seclab would apply, decided without asking the
//! server: the check that lets an unchanged lab send no write at all.

use serde_json::Value;

use super::MANAGER;

/// Whether `live` holds every field of `desired` with the same value, and seclab's own
/// field set on `live` names no field that `desired` has dropped.
///
/// `false` can be a false alarm (the server writes some values in another form), so a
/// caller confirms with a dry-run before reporting a change; `true` is exact.
pub fn unchanged(desired: &Value, live: &Value) -> bool {
    let (Value::Object(desired_fields), Value::Object(_)) = (desired, live) else { return false };
    let fields_match = desired_fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "apiVersion" | "kind"))
        .all(|(key, value)| live.get(key).map_or_else(|| is_empty(value), |live| contains(value, live)));
    fields_match && !manages_dropped_field(desired, live)
}

/// Drops what neither the comparison nor a diff reads from a listed object: its `status`,
/// and the field sets of every manager but seclab's apply. Most of a live object's size is
/// there, and a plan holds every object of the lab.
pub fn slim(live: &mut Value) {
    if let Value::Object(object) = live {
        object.remove("status");
    }
    drop_other_managers(live);
}

/// Drops the field sets of every manager but seclab's apply, which the comparison reads.
pub fn drop_other_managers(live: &mut Value) {
    let Value::Object(object) = live else { return };
    if let Some(Value::Array(entries)) = object.get_mut("metadata").and_then(|m| m.get_mut("managedFields")) {
        entries.retain(|entry| entry["manager"] == MANAGER && entry["operation"] == "Apply");
    }
}

/// Whether `live` has `desired`'s value: every key of a mapping, lists element by element.
fn contains(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(desired), Value::Object(live)) => desired
            .iter()
            .all(|(key, value)| live.get(key).map_or_else(|| is_empty(value), |live| contains(value, live))),
        (Value::Array(desired), Value::Array(live)) => {
            desired.len() == live.len() && desired.iter().zip(live).all(|(d, l)| contains(d, l))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (desired, live) => desired == live,
    }
}

/// Values the server may leave out when stored.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

/// Drops the field sets of other managers, as [`drop_other_managers`], and keeps seclab's as
/// its JSON text: for an object held for a long time (`watch`'s caches), where the set, a
/// tree as large as the object's spec, is read only when the object is compared again.
pub fn pack_field_sets(live: &mut Value) {
    drop_other_managers(live);
    let Some(Value::Array(entries)) = live.get_mut("metadata").and_then(|m| m.get_mut("managedFields")) else {
        return;
    };
    for entry in entries {
        if let Some(set) = entry.get_mut("fieldsV1").filter(|set| set.is_object()) {
            *set = Value::String(set.to_string());
        }
    }
}

/// Whether seclab's last apply set a field that `desired` no longer has (so applying would
/// remove it).
fn manages_dropped_field(desired: &Value, live: &Value) -> bool {
    let Some(entries) = live["metadata"]["managedFields"].as_array() else { return false };
    entries.iter().filter(|entry| entry["manager"] == MANAGER && entry["operation"] == "Apply").any(|entry| {
        match &entry["fieldsV1"] {
            // Packed by `pack_field_sets`; one that does not parse back counts as changed.
            Value::String(text) => serde_json::from_str(text).map_or(true, |set| !covers(&set, desired)),
            set => !covers(set, desired),
        }
    })
}

/// Whether every field of a managed field set (FieldsV1: `f:name`, `k:{key}`, `v:value`,
/// `i:index`) is present in `value`.
fn covers(set: &Value, value: &Value) -> bool {
    let Some(set) = set.as_object() else { return true };
    set.iter().all(|(key, child)| {
        let found = if let Some(field) = key.strip_prefix("f:") {
            value.get(field)
        } else if let Some(keyed) = key.strip_prefix("k:") {
            find_keyed(value, keyed)
        } else if let Some(member) = key.strip_prefix("v:") {
            serde_json::from_str::<Value>(member)
                .ok()
                .and_then(|member| value.as_array()?.iter().find(|v| **v == member))
        } else if let Some(index) = key.strip_prefix("i:") {
            index.parse::<usize>().ok().and_then(|i| value.get(i))
        } else {
            return true; // "." marks the node itself
        };
        found.is_some_and(|found| covers(child, found))
    })
}

/// The element of a list whose key fields match `keyed` (a JSON object). A key field the
/// element lacks was defaulted by the server (a port's `protocol`), so it does not count.
fn find_keyed<'a>(list: &'a Value, keyed: &str) -> Option<&'a Value> {
    let Ok(Value::Object(key)) = serde_json::from_str::<Value>(keyed) else { return None };
    list.as_array()?.iter().find(|element| {
        let mut matched = 0;
        let consistent = key.iter().all(|(field, wanted)| match element.get(field) {
            Some(have) if contains(have, wanted) => {
                matched += 1;
                true
            }
            Some(_) => false,
            None => true,
        });
        consistent && matched > 0
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn live(spec: Value, fields: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "a", "namespace": "n", "resourceVersion": "7",
                "managedFields": [{ "manager": "seclab", "operation": "Apply", "fieldsV1": fields }] },
            "spec": spec,
        })
    }

    #[test]
    fn defaults_added_by_the_server_do_not_count() {
        let desired = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "a", "namespace": "n" },
            "spec": { "replicas": 1, "template": { "spec": { "containers": [{ "name": "c", "ports": [{ "containerPort": 80 }] }], "volumes": [] } } } });
        let fields = json!({ "f:spec": { "f:replicas": {}, "f:template": { "f:spec": { "f:containers": {
            "k:{\"name\":\"c\"}": { ".": {}, "f:name": {}, "f:ports": { "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": { "f:containerPort": {} } } } } } } } });
        let spec = json!({ "replicas": 1, "revisionHistoryLimit": 10, "template": { "spec": { "containers": [
            { "name": "c", "imagePullPolicy": "Always", "ports": [{ "containerPort": 80, "protocol": "TCP" }] }] } } });
        assert!(unchanged(&desired, &live(spec.clone(), fields.clone())));

        let mut changed = desired.clone();
        changed["spec"]["replicas"] = json!(2);
        assert!(!unchanged(&changed, &live(spec.clone(), fields.clone())));
        let mut renamed = desired.clone();
        renamed["spec"]["template"]["spec"]["containers"][0]["name"] = json!("d");
        assert!(!unchanged(&renamed, &live(spec, fields)));
    }

    #[test]
    fn a_field_dropped_from_the_file_is_a_change() {
        let desired = json!({ "metadata": { "name": "a" }, "spec": { "replicas": 1 } });
        let fields = json!({ "f:spec": { "f:replicas": {}, "f:paused": {} } });
        let spec = json!({ "replicas": 1, "paused": true });
        assert!(!unchanged(&desired, &live(spec.clone(), fields)));
        // The same live field owned by someone else is theirs to keep.
        assert!(unchanged(&desired, &live(spec, json!({ "f:spec": { "f:replicas": {} } }))));
    }

    #[test]
    fn a_packed_field_set_compares_as_the_set_itself() {
        let desired = json!({ "metadata": { "name": "a" }, "spec": { "replicas": 1 } });
        let spec = json!({ "replicas": 1, "paused": true });
        let mut dropped = live(spec.clone(), json!({ "f:spec": { "f:replicas": {}, "f:paused": {} } }));
        let mut kept = live(spec, json!({ "f:spec": { "f:replicas": {} } }));
        for object in [&mut dropped, &mut kept] {
            pack_field_sets(object);
            assert!(object["metadata"]["managedFields"][0]["fieldsV1"].is_string());
        }
        assert!(!unchanged(&desired, &dropped));
        assert!(unchanged(&desired, &kept));
        kept["metadata"]["managedFields"][0]["fieldsV1"] = json!("{not json");
        assert!(!unchanged(&desired, &kept), "a set that cannot be read counts as changed");
    }

    #[test]
    fn set_members_and_numbers() {
        let desired = json!({ "metadata": { "name": "a", "finalizers": ["x"] }, "spec": { "weight": 1 } });
        let live = json!({ "metadata": { "name": "a", "finalizers": ["x"], "managedFields": [{ "manager": "seclab",
            "operation": "Apply", "fieldsV1": { "f:metadata": { "f:finalizers": { "v:\"x\"": {}, "v:\"y\"": {} } } } }] },
            "spec": { "weight": 1.0 } });
        assert!(!unchanged(&desired, &live), "y was dropped");
        let mut kept = desired.clone();
        kept["metadata"]["finalizers"] = json!(["x", "y"]);
        assert!(!unchanged(&kept, &live), "the live list is shorter");
    }

    #[test]
    fn slim_keeps_seclab_s_field_set_and_drops_status_and_other_managers() {
        let mut object = live(json!({ "replicas": 1 }), json!({ "f:spec": { "f:replicas": {} } }));
        object["status"] = json!({ "replicas": 1 });
        object["metadata"]["managedFields"].as_array_mut().unwrap().extend([
            json!({ "manager": "kube-controller-manager", "operation": "Update", "fieldsV1": { "f:status": {} } }),
            json!({ "manager": "seclab", "operation": "Update", "fieldsV1": { "f:metadata": {} } }),
        ]);
        slim(&mut object);
        assert!(object.get("status").is_none());
        let entries = object["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0]["manager"].as_str(), entries[0]["operation"].as_str()), (Some("seclab"), Some("Apply")));
        assert_eq!(object["spec"], json!({ "replicas": 1 }));
    }
}
