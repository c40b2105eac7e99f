//! What keeps a workload's pods from running, in the kubelet's words: the state of a
//! container that does not run (`ImagePullBackOff`, `CrashLoopBackOff`...), or why the pod
//! is not scheduled, and the newest Warning event about the pod.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

use super::Cluster;
use crate::identity::ObjectKey;

/// The pod label naming the tenant a pod serves (set by the tenants' templates).
const TENANT_LABEL: &str = "seclab.dev/tenant";

impl Cluster {
    /// Why the pods of the workload `key` (a Deployment, StatefulSet, DaemonSet or Job) are
    /// not ready: the first such pod's trouble and its newest Warning event. `None` for other
    /// kinds, when every pod is fine, or when the cluster cannot be read (this only adds
    /// detail to a message about the workload).
    pub async fn pod_trouble(&self, key: &ObjectKey) -> Option<String> {
        let namespace = key.namespace.as_deref()?;
        let group_version = match (key.group.as_str(), key.kind.as_str()) {
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet") => ("apps", "v1"),
            ("batch", "Job") => ("batch", "v1"),
            _ => return None,
        };
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group_version.0, group_version.1, &key.kind));
        let workload = Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &resource)
            .get(&key.name)
            .await
            .ok()?;
        let labels = workload.data["spec"]["selector"]["matchLabels"].as_object()?;
        let selector: Vec<String> = labels.iter().filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?))).collect();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut list = pods.list(&ListParams::default().labels(&selector.join(","))).await.ok()?.items;
        // The newest pod first: the one a rollout waits on.
        list.sort_by_key(|pod| std::cmp::Reverse(pod.metadata.creation_timestamp.clone().map(|t| t.0)));
        let (pod, trouble) = list.iter().find_map(|pod| Some((pod, trouble(pod)?)))?;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let tenant = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(TENANT_LABEL))
            .map(|tenant| format!(" (tenant {tenant})"))
            .unwrap_or_default();
        let pod_key = ObjectKey {
            group: String::new(),
            kind: "Pod".into(),
            namespace: Some(namespace.to_owned()),
            name: name.clone(),
        };
        let event = self.last_warning(&pod_key).await.map(|event| format!("; last event {event}")).unwrap_or_default();
        Some(format!("pod {name}{tenant}: {trouble}{event}"))
    }
}

/// What keeps `pod` from being ready, as its status says; `None` when it is ready, finished,
/// or simply starting.
fn trouble(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded")) {
        return None;
    }
    let containers = status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
    if let Some(trouble) = containers.filter_map(container_trouble).next() {
        return Some(trouble);
    }
    let unscheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| format!("not scheduled: {}", c.message.clone().or(c.reason.clone()).unwrap_or_default()));
    unscheduled.or_else(|| (status.phase.as_deref() == Some("Failed")).then(|| failed(status.reason.as_deref())))
}

fn failed(reason: Option<&str>) -> String {
    format!("the pod failed{}", reason.map(|r| format!(" ({r})")).unwrap_or_default())
}

/// A container that waits for a reason other than starting, or ended in failure.
fn container_trouble(container: &ContainerStatus) -> Option<String> {
    let state = container.state.as_ref()?;
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().unwrap_or("Waiting");
        if matches!(reason, "ContainerCreating" | "PodInitializing") {
            return None;
        }
        let message = waiting.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        let last = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| format!("; it last exited with code {}", t.exit_code))
            .unwrap_or_default();
        return Some(format!("container {}: {reason}{message}{last}", container.name));
    }
    let terminated = state.terminated.as_ref().filter(|t| t.exit_code != 0)?;
    let reason = terminated.reason.as_deref().unwrap_or("Error");
    Some(format!("container {}: {reason}, exit code {}", container.name, terminated.exit_code))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "p" }, "status": status })).unwrap()
    }

    #[test]
    fn the_kubelets_reason_is_the_trouble() {
        let pulling = pod(json!({ "phase": "Pending", "containerStatuses": [{ "name": "netdelta", "image": "x",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\"" } } }] }));
        assert_eq!(trouble(&pulling).unwrap(), "container netdelta: ImagePullBackOff (Back-off pulling image \"x\")");
        let crashing = pod(json!({ "phase": "Running", "containerStatuses": [{ "name": "app", "image": "x",
            "imageID": "", "ready": false, "restartCount": 3,
            "state": { "waiting": { "reason": "CrashLoopBackOff" } },
            "lastState": { "terminated": { "exitCode": 2 } } }] }));
        assert_eq!(trouble(&crashing).unwrap(), "container app: CrashLoopBackOff; it last exited with code 2");
        let unscheduled = pod(json!({ "phase": "Pending", "conditions": [{ "type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available" }] }));
        assert_eq!(trouble(&unscheduled).unwrap(), "not scheduled: 0/3 nodes are available");
    }

    #[test]
    fn a_starting_or_finished_pod_is_no_trouble() {
        let creating = pod(json!({ "phase": "Pending", "containerStatuses": [{ "name": "a", "image": "x",
            "imageID": "", "ready": false, "restartCount": 0, "state": { "waiting": { "reason": "ContainerCreating" } } }] }));
        assert_eq!(trouble(&creating), None);
        let done = pod(json!({ "phase": "Succeeded" }));
        assert_eq!(trouble(&done), None);
        let running = pod(json!({ "phase": "Running", "containerStatuses": [{ "name": "a", "image": "x",
            "imageID": "", "ready": true, "restartCount": 0, "state": { "running": {} } }] }));
        assert_eq!(trouble(&running), None);
    }
}
