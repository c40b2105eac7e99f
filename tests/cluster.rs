//! The test control plane behaves as a real cluster: workloads roll out on kwok's fake
//! nodes, Jobs complete, claims bind, CRDs are established, RBAC refuses, and the audit
//! log tells who wrote what. Every test works in a namespace of its own.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use support::cluster::{Cluster, count_by_verb_and_user};

/// Polls `check` until it returns `Some`, failing after a generous two minutes.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An admin client and a fresh namespace.
async fn setup(name: &str) -> (kube::Client, String) {
    let cluster = Cluster::get();
    let client = cluster.client(&cluster.admin_kubeconfig()).await;
    let namespace = format!("{name}-{}", std::process::id());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": namespace } })).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("the namespace is created");
    (client, namespace)
}

fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn pod_template(labels: serde_json::Value, restart: &str) -> serde_json::Value {
    json!({
        "metadata": { "labels": labels },
        "spec": { "restartPolicy": restart, "containers": [{ "name": "main", "image": "registry.invalid/app:1" }] }
    })
}

#[tokio::test]
async fn a_deployment_becomes_available_on_kwok_nodes() {
    let (client, ns) = setup("deploy").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = from(json!({
        "metadata": { "name": "web" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } }, "template": pod_template(json!({ "app": "web" }), "Always") }
    }));
    api.create(&PostParams::default(), &deployment).await.unwrap();
    eventually("the Deployment to become Available", || async {
        let d = api.get("web").await.ok()?;
        let status = d.status?;
        let available = status
            .conditions?
            .iter()
            .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"));
        (available && status.available_replicas == Some(2)).then_some(())
    })
    .await;
    let pods = Api::<Pod>::namespaced(client, &ns);
    eventually("both pods Running and Ready on kwok nodes", || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        let ready = |pod: &Pod| {
            let on_kwok = pod.spec.as_ref()?.node_name.as_ref()?.starts_with("kwok-node-");
            let status = pod.status.as_ref()?;
            let running = status.phase.as_deref() == Some("Running");
            let ready = status.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            Some(on_kwok && running && ready)
        };
        (list.items.len() == 2 && list.items.iter().all(|pod| ready(pod) == Some(true))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_cronjobs_job_runs_and_completes() {
    let (client, ns) = setup("cron").await;
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &ns);
    let cronjob: CronJob = from(json!({
        "metadata": { "name": "scan" },
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": { "spec": { "backoffLimit": 0, "template": pod_template(json!({ "app": "scan" }), "Never") } }
        }
    }));
    cronjobs.create(&PostParams::default(), &cronjob).await.unwrap();
    // The CronJob controller schedules at most once a minute.
    let jobs: Api<Job> = Api::namespaced(client, &ns);
    eventually("a Job of the CronJob to complete", || async {
        let list = jobs.list(&ListParams::default()).await.ok()?;
        list.items.iter().find(|job| {
            let owned = job.metadata.owner_references.iter().flatten().any(|o| o.kind == "CronJob" && o.name == "scan");
            owned && job.status.as_ref().and_then(|s| s.succeeded) == Some(1)
        })?;
        Some(())
    })
    .await;
}

#[tokio::test]
async fn a_claim_binds_to_a_host_path_volume() {
    let (client, ns) = setup("pvc").await;
    let pv_name = format!("{ns}-data");
    let pv: PersistentVolume = from(json!({
        "metadata": { "name": pv_name },
        "spec": {
            "storageClassName": "manual", "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteMany"],
            "hostPath": { "path": "/mnt/data" }, "claimRef": { "namespace": ns, "name": "data" }
        }
    }));
    Api::<PersistentVolume>::all(client.clone()).create(&PostParams::default(), &pv).await.unwrap();
    let pvc: PersistentVolumeClaim = from(json!({
        "metadata": { "name": "data" },
        "spec": { "storageClassName": "manual", "accessModes": ["ReadWriteMany"], "resources": { "requests": { "storage": "3Gi" } } }
    }));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    claims.create(&PostParams::default(), &pvc).await.unwrap();
    eventually("the claim to bind", || async {
        let claim = claims.get("data").await.ok()?;
        (claim.status?.phase.as_deref() == Some("Bound")).then_some(())
    })
    .await;
    assert_eq!(claims.get("data").await.unwrap().spec.unwrap().volume_name.as_deref(), Some(pv_name.as_str()));
    Api::<PersistentVolume>::all(client).delete(&pv_name, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn a_crd_becomes_established_and_its_status_is_set_through_the_subresource() {
    let (client, ns) = setup("crd").await;
    let plural = format!("widgets{}", std::process::id());
    let name = format!("{plural}.test.seclab.dev");
    let crd: CustomResourceDefinition = from(json!({
        "metadata": { "name": name },
        "spec": {
            "group": "test.seclab.dev",
            "names": { "plural": plural, "singular": format!("widget{}", std::process::id()), "kind": format!("Widget{}", std::process::id()) },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true, "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } }
            }]
        }
    }));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    eventually("the CRD to be Established", || async {
        let crd = crds.get(&name).await.ok()?;
        crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.seclab.dev", "v1", &format!("Widget{}", std::process::id())),
        &plural,
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let widget: DynamicObject = from(json!({
        "apiVersion": "test.seclab.dev/v1", "kind": format!("Widget{}", std::process::id()),
        "metadata": { "name": "w" }, "spec": { "size": 1 }, "status": { "ignored": true }
    }));
    widgets.create(&PostParams::default(), &widget).await.unwrap();
    assert!(
        widgets.get("w").await.unwrap().data.get("status").is_none(),
        "status is only written through the subresource"
    );
    widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(json!({ "status": { "phase": "Ready" } })))
        .await
        .unwrap();
    assert_eq!(widgets.get("w").await.unwrap().data["status"]["phase"], "Ready");
    crds.delete(&name, &Default::default()).await.unwrap();

    // ECK's Elasticsearch kind is installed by the test cluster; kwok reports it healthy.
    let gvk = GroupVersionKind::gvk("elasticsearch.k8s.elastic.co", "v1", "Elasticsearch");
    let es_api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ApiResource::from_gvk(&gvk));
    let es: DynamicObject = from(json!({
        "apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
        "metadata": { "name": "es" }, "spec": { "version": "7.10.2", "nodeSets": [{ "name": "default", "count": 1 }] }
    }));
    es_api.create(&PostParams::default(), &es).await.unwrap();
    eventually("Elasticsearch health green", || async {
        (es_api.get("es").await.ok()?.data["status"]["health"] == "green").then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_least_privilege_token_holds_nothing_outside_what_labs_grant_it() {
    let (_, ns) = setup("rbac").await;
    let cluster = Cluster::get();
    let limited = cluster.client(&cluster.limited_kubeconfig()).await;
    // No binding at the cluster's start: each test lab grants its own (tests/reconcile.rs).
    let pods = Api::<Pod>::namespaced(limited.clone(), &ns);
    let refused = pods.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(status) if status.code == 403), "{refused:?}");
    let nodes = Api::<Node>::all(limited);
    let refused = nodes.get("real-node-0").await.unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(status) if status.code == 403), "{refused:?}");
}

#[tokio::test]
async fn the_audit_log_counts_requests_by_verb_and_user() {
    let (client, ns) = setup("audit").await;
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    for i in 0..3 {
        let cm: ConfigMap = from(json!({ "metadata": { "name": format!("cm-{i}") }, "data": { "i": i.to_string() } }));
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let apply = PatchParams::apply("seclab-test");
    let applied =
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "cm-applied" }, "data": { "i": "3" } });
    api.patch("cm-applied", &apply, &Patch::Apply(applied)).await.unwrap();
    let cluster = Cluster::get();
    let events = eventually("the audit events to be written", || async {
        let events: Vec<_> =
            cluster.audit().into_iter().filter(|e| e.namespace == ns && e.resource == "configmaps").collect();
        (events.iter().filter(|e| e.is_write()).count() >= 4).then_some(events)
    })
    .await;
    let counts = count_by_verb_and_user(&events);
    assert_eq!(counts.get(&("create".to_owned(), "admin".to_owned())), Some(&3), "{counts:?}");
    assert_eq!(
        counts.get(&("patch".to_owned(), "admin".to_owned())),
        Some(&1),
        "server-side apply is a patch: {counts:?}"
    );
    assert!(events.iter().filter(|e| e.is_write()).all(|e| e.code < 300));
}
