//! When an object counts as ready, read from its live state.

use serde::Serialize;
use serde_json::Value;

use crate::config::model::ReadinessRule;
use crate::identity::ObjectKey;

/// An object's readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Not yet; the reason says what it waits for.
    Waiting(String),
    /// It will not become ready without a change (a failed Job, a stuck rollout).
    Failed(String),
}

impl Readiness {
    /// Whether the object is ready.
    pub fn is_ready(&self) -> bool {
        *self == Self::Ready
    }
}

/// The readiness of `live`, the live object of `key`, under the file's `rules`.
pub fn assess(key: &ObjectKey, live: &Value, rules: &[ReadinessRule]) -> Readiness {
    if let Some(rule) = rules.iter().find(|r| r.group == key.group && r.kind == key.kind) {
        return by_rule(rule, live);
    }
    let status = &live["status"];
    match (key.group.as_str(), key.kind.as_str()) {
        ("apps", "Deployment") => deployment(live),
        ("apps", "StatefulSet") => stateful_set(live),
        ("apps", "DaemonSet") => rolled_out(live).unwrap_or_else(|| {
            let (wanted, ready) = (int(&status["desiredNumberScheduled"]), int(&status["numberReady"]));
            let updated = int(&status["updatedNumberScheduled"]);
            if ready >= wanted && updated >= wanted {
                Readiness::Ready
            } else {
                waiting(format!("{ready} of {wanted} pods ready"))
            }
        }),
        ("", "PersistentVolumeClaim") => match status["phase"].as_str() {
            Some("Bound") => Readiness::Ready,
            Some("Lost") => Readiness::Failed("its volume is lost".into()),
            phase => waiting(format!("not bound (phase {})", phase.unwrap_or("unknown"))),
        },
        ("", "Pod") => condition(live, "Ready"),
        ("batch", "Job") => job(live),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => condition(live, "Established"),
        ("elasticsearch.k8s.elastic.co", "Elasticsearch") => elasticsearch(status),
        (group, _) if is_built_in(group) => Readiness::Ready,
        _ => custom(live),
    }
}

/// ECK's health, with its phase and, while it is not green or yellow, the message of the
/// first of its conditions that is false (cloud-on-k8s v2.16.1,
/// pkg/apis/elasticsearch/v1/status.go: ElasticsearchIsReachable,
/// ReconciliationComplete).
fn elasticsearch(status: &Value) -> Readiness {
    let mut reason = match status["health"].as_str() {
        Some("green" | "yellow") => return Readiness::Ready,
        Some(health) => format!("health is {health}"),
        None => "no health reported yet".to_owned(),
    };
    if let Some(phase) = status["phase"].as_str() {
        reason.push_str(&format!(", phase {phase}"));
    }
    let conditions = status["conditions"].as_array().map(Vec::as_slice).unwrap_or_default();
    let cause = ["ElasticsearchIsReachable", "ReconciliationComplete"]
        .iter()
        .find_map(|kind| conditions.iter().find(|c| c["type"] == *kind && c["status"] == "False")?["message"].as_str());
    if let Some(message) = cause {
        reason.push_str(&format!(": {message}"));
    }
    waiting(reason)
}

fn waiting(reason: String) -> Readiness {
    Readiness::Waiting(reason)
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn is_built_in(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

/// `Waiting` while the controller has not seen the newest spec.
fn rolled_out(live: &Value) -> Option<Readiness> {
    let generation = int(&live["metadata"]["generation"]);
    let observed = int(&live["status"]["observedGeneration"]);
    (observed < generation).then(|| waiting("its controller has not seen the new spec yet".into()))
}

fn find_condition<'a>(live: &'a Value, kind: &str) -> Option<&'a Value> {
    live["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

fn describe(condition: &Value) -> String {
    let reason = condition["reason"].as_str().unwrap_or_default();
    let message = condition["message"].as_str().unwrap_or_default();
    format!(
        "{}={} {reason}: {message}",
        condition["type"].as_str().unwrap_or_default(),
        condition["status"].as_str().unwrap_or_default()
    )
    .trim_end_matches([' ', ':'])
    .to_owned()
}

fn condition(live: &Value, kind: &str) -> Readiness {
    match find_condition(live, kind) {
        Some(c) if c["status"] == "True" => Readiness::Ready,
        Some(c) => waiting(describe(c)),
        None => waiting(format!("no {kind} condition yet")),
    }
}

fn deployment(live: &Value) -> Readiness {
    if let Some(waiting) = rolled_out(live) {
        return waiting;
    }
    if let Some(progress) = find_condition(live, "Progressing").filter(|c| c["reason"] == "ProgressDeadlineExceeded") {
        return Readiness::Failed(describe(progress));
    }
    let status = &live["status"];
    let wanted = live["spec"]["replicas"].as_i64().unwrap_or(1);
    let (updated, available, total) =
        (int(&status["updatedReplicas"]), int(&status["availableReplicas"]), int(&status["replicas"]));
    if updated < wanted {
        return waiting(format!("{updated} of {wanted} replicas updated"));
    }
    if total > updated {
        return waiting(format!("{} old replicas still running", total - updated));
    }
    if available < wanted {
        let why = find_condition(live, "Available").filter(|c| c["status"] != "True").map(describe);
        return waiting(format!(
            "{available} of {wanted} replicas available{}",
            why.map(|w| format!(" ({w})")).unwrap_or_default()
        ));
    }
    Readiness::Ready
}

fn stateful_set(live: &Value) -> Readiness {
    if let Some(waiting) = rolled_out(live) {
        return waiting;
    }
    let status = &live["status"];
    let wanted = live["spec"]["replicas"].as_i64().unwrap_or(1);
    let (ready, updated) = (int(&status["readyReplicas"]), int(&status["updatedReplicas"]));
    if ready < wanted {
        return waiting(format!("{ready} of {wanted} replicas ready"));
    }
    let rolling = live["spec"]["updateStrategy"]["type"].as_str().unwrap_or("RollingUpdate") == "RollingUpdate";
    if rolling && (updated < wanted || status["currentRevision"] != status["updateRevision"]) {
        return waiting(format!("{updated} of {wanted} replicas updated"));
    }
    Readiness::Ready
}

fn job(live: &Value) -> Readiness {
    if find_condition(live, "Complete").is_some_and(|c| c["status"] == "True") {
        return Readiness::Ready;
    }
    if let Some(failed) = find_condition(live, "Failed").filter(|c| c["status"] == "True") {
        return Readiness::Failed(describe(failed));
    }
    let wanted = live["spec"]["completions"].as_i64().unwrap_or(1);
    waiting(format!("{} of {wanted} completions", int(&live["status"]["succeeded"])))
}

/// A custom resource is ready once its controller reports on it: a status, with a `Ready`
/// condition `True` when it has one, for the newest generation when it says which.
fn custom(live: &Value) -> Readiness {
    let status = &live["status"];
    if status.as_object().is_none_or(|s| s.is_empty()) {
        return waiting(
            "no status: its controller has not reported on it (give a rule in cluster.readiness if none ever will)"
                .into(),
        );
    }
    if let Some(observed) = status["observedGeneration"].as_i64()
        && observed < int(&live["metadata"]["generation"])
    {
        return waiting("its controller has not seen the new spec yet".into());
    }
    match find_condition(live, "Ready") {
        Some(c) if c["status"] != "True" => waiting(describe(c)),
        _ => Readiness::Ready,
    }
}

fn by_rule(rule: &ReadinessRule, live: &Value) -> Readiness {
    if rule.always {
        return Readiness::Ready;
    }
    if let Some(kind) = &rule.condition {
        return condition(live, kind);
    }
    let field = rule.field.as_deref().unwrap_or_default();
    let value = field.split('.').fold(live, |value, key| &value[key]);
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => return waiting(format!("{field} is not set")),
        other => other.to_string(),
    };
    if rule.values.contains(&text) { Readiness::Ready } else { waiting(format!("{field} is {text}")) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(group: &str, kind: &str) -> ObjectKey {
        ObjectKey { group: group.into(), kind: kind.into(), namespace: Some("n".into()), name: "a".into() }
    }

    #[test]
    fn deployments() {
        let k = key("apps", "Deployment");
        let mut live = json!({ "metadata": { "generation": 2 }, "spec": { "replicas": 2 },
            "status": { "observedGeneration": 1 } });
        assert!(matches!(assess(&k, &live, &[]), Readiness::Waiting(r) if r.contains("not seen")));
        live["status"] = json!({ "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1,
            "conditions": [{ "type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability." }] });
        assert_eq!(
            assess(&k, &live, &[]),
            Readiness::Waiting("1 of 2 replicas available (Available=False MinimumReplicasUnavailable: Deployment does not have minimum availability.)".into())
        );
        live["status"]["availableReplicas"] = json!(2);
        assert_eq!(assess(&k, &live, &[]), Readiness::Ready);
        live["status"]["conditions"] =
            json!([{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded" }]);
        assert!(matches!(assess(&k, &live, &[]), Readiness::Failed(_)));
    }

    #[test]
    fn claims_jobs_and_elasticsearch() {
        assert_eq!(
            assess(&key("", "PersistentVolumeClaim"), &json!({ "status": { "phase": "Bound" } }), &[]),
            Readiness::Ready
        );
        assert!(
            !assess(&key("", "PersistentVolumeClaim"), &json!({ "status": { "phase": "Pending" } }), &[]).is_ready()
        );
        let failed = json!({ "status": { "conditions": [{ "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded" }] } });
        assert!(
            matches!(assess(&key("batch", "Job"), &failed, &[]), Readiness::Failed(r) if r.contains("BackoffLimitExceeded"))
        );
        let es = key("elasticsearch.k8s.elastic.co", "Elasticsearch");
        assert_eq!(assess(&es, &json!({ "status": { "health": "yellow" } }), &[]), Readiness::Ready);
        assert!(!assess(&es, &json!({ "status": { "health": "red" } }), &[]).is_ready());
        assert!(!assess(&es, &json!({}), &[]).is_ready());
        // What the ECK operator wrote for a cluster whose pods have no address yet.
        let unreachable = json!({ "status": { "health": "unknown", "phase": "ApplyingChanges", "conditions": [
            { "type": "ReconciliationComplete", "status": "False", "message": "Elasticsearch cluster UUID is not reconciled" },
            { "type": "RunningDesiredVersion", "status": "True", "message": "All nodes are running version 7.10.2" },
            { "type": "ElasticsearchIsReachable", "status": "False", "message": "Service lab/es-es-internal-http has no endpoint" },
        ] } });
        assert_eq!(
            assess(&es, &unreachable, &[]),
            Readiness::Waiting(
                "health is unknown, phase ApplyingChanges: Service lab/es-es-internal-http has no endpoint".into()
            )
        );
        assert_eq!(assess(&key("", "ConfigMap"), &json!({}), &[]), Readiness::Ready);
    }

    #[test]
    fn custom_resources_need_a_status_or_a_rule() {
        let widget = key("example.com", "Widget");
        assert!(
            matches!(assess(&widget, &json!({ "spec": {} }), &[]), Readiness::Waiting(r) if r.contains("no status"))
        );
        assert!(matches!(assess(&widget, &json!({ "status": {} }), &[]), Readiness::Waiting(_)));
        assert_eq!(assess(&widget, &json!({ "status": { "phase": "Running" } }), &[]), Readiness::Ready);
        let not_ready =
            json!({ "status": { "conditions": [{ "type": "Ready", "status": "False", "reason": "Pending" }] } });
        assert!(!assess(&widget, &not_ready, &[]).is_ready());

        let rule = |json: Value| serde_json::from_value::<ReadinessRule>(json).unwrap();
        let always = rule(json!({ "group": "example.com", "kind": "Widget", "always": true }));
        assert_eq!(assess(&widget, &json!({}), &[always]), Readiness::Ready);
        let phase =
            rule(json!({ "group": "example.com", "kind": "Widget", "field": "status.phase", "values": ["Running"] }));
        assert_eq!(
            assess(&widget, &json!({ "status": { "phase": "Running" } }), std::slice::from_ref(&phase)),
            Readiness::Ready
        );
        assert!(!assess(&widget, &json!({ "status": { "phase": "Pending" } }), &[phase]).is_ready());
    }
}
