//! `seclab plan|apply|status|destroy` against the real test control plane, as the
//! least-privilege user bound to seclab's ClusterRole unless a test says otherwise. Each test
//! runs its own copy of an example under its own lab name and namespace; writes are counted
//! in the API server's audit log.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine;
use kube::api::{Patch, PatchParams};
use seclab::cluster::inventory::Inventory;
use serde_json::{Value, json};
use support::cluster::{AuditEvent, Cluster};
use support::lab::{SECRET_ONE, SECRET_TWO, TestLab, admin, api, audited, labelled};

fn assert_applies_and_reapplies_without_writes(example: &str, name: &str) {
    let lab = TestLab::new(example, name);
    let output = lab.run(&["apply", "--wait", "--timeout", "120s"], 0);
    assert!(output.contains(&format!("Applied lab {name}")) && output.contains("objects are ready"), "{output}");
    let status: Value = serde_json::from_str(&lab.run(&["status", "--output", "json"], 0)).unwrap();
    assert_eq!(status["ready"], true, "{status:#}");

    let events = audited(|| {
        let output = lab.run(&["apply"], 0);
        assert!(output.contains("is up to date"), "{output}");
    });
    let writes = lab.writes(&events);
    assert!(writes.is_empty(), "an unchanged lab sent writes: {writes:#?}");
    assert!(events.iter().any(|e| e.verb == "list" && e.namespace == name), "the re-apply did read the lab");
    let unnamed: Vec<&AuditEvent> =
        events.iter().filter(|e| e.user == "seclab-limited" && !e.user_agent.starts_with("seclab/")).collect();
    assert!(unnamed.is_empty(), "requests without seclab's User-Agent: {unnamed:#?}");
    lab.run(&["plan", "--detailed-exitcode"], 0);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn the_home_lab_applies_becomes_ready_and_reapplies_without_writes() {
    assert_applies_and_reapplies_without_writes("homelab.yaml", "t-homelab");
}

#[test]
fn the_opensearch_lab_applies_with_its_own_certificates_and_reapplies_without_writes() {
    assert_applies_and_reapplies_without_writes("opensearch.yaml", "t-opensearch");
}

#[test]
fn the_tenants_lab_applies_becomes_ready_and_reapplies_without_writes() {
    assert_applies_and_reapplies_without_writes("tenants.yaml", "t-tenants");
}

#[tokio::test]
async fn removing_a_tenant_prunes_exactly_its_objects_and_unowned_names_are_left_alone() {
    let lab = TestLab::new("tenants.yaml", "t-prune");
    lab.run(&["apply"], 0);
    let client = admin().await;
    let before = lab.rendered();
    assert_eq!(labelled(&client, "t-prune").await, before);

    let mut spec = lab.spec();
    spec["tenants"].as_array_mut().unwrap().retain(|t| t["name"] != "xynexis");
    lab.write(&spec);
    let gone: BTreeSet<String> = before.difference(&lab.rendered()).cloned().collect();
    assert!(gone.len() >= 4 && gone.iter().all(|k| k.contains("xynexis")), "{gone:?}");
    let plan: Value = serde_json::from_str(&lab.run(&["plan", "--output", "json"], 0)).unwrap();
    let pruned: BTreeSet<String> = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "prune")
        .map(|o| {
            o["object"]
                .as_str()
                .unwrap()
                .replace(".apps ", " ")
                .replace(".batch ", " ")
                .replace(".networking.k8s.io ", " ")
        })
        .collect();
    // The tenants' setup Job is named after the tenants: the old one goes, a new one comes.
    let (setup, pruned): (BTreeSet<String>, BTreeSet<String>) =
        pruned.into_iter().partition(|k| k.starts_with("Job t-prune/mysql-netdelta-setup-"));
    assert_eq!(setup.len(), 1, "{setup:?}");
    assert_eq!(pruned, gone);
    let output = lab.run(&["apply"], 0);
    assert!(output.contains(&format!("{} pruned", gone.len() + 1)), "{output}");
    assert_eq!(labelled(&client, "t-prune").await, lab.rendered());

    // A new tenant whose Service name is taken by an object nobody gave to seclab.
    let services = api(&client, "", "v1", "Service", Some("t-prune"));
    let foreign = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "netdelta-zeta", "namespace": "t-prune" },
        "spec": { "ports": [{ "port": 80 }] } });
    let foreign =
        services.patch("netdelta-zeta", &PatchParams::apply("someone-else"), &Patch::Apply(foreign)).await.unwrap();
    let mut zeta = spec["tenants"][0].clone();
    zeta["name"] = json!("zeta");
    zeta["args"][0] = json!("zeta");
    zeta["database"] =
        json!({ "name": "netdelta-zeta", "password": { "secretRef": { "name": "zeta-db", "key": "password" } } });
    zeta["scans"] = json!([]);
    spec["tenants"].as_array_mut().unwrap().push(zeta);
    lab.write(&spec);
    let events = audited(|| {
        let output = lab.run(&["apply"], 1);
        assert!(
            output.contains("Service t-prune/netdelta-zeta already exists") && output.contains("--adopt"),
            "{output}"
        );
    });
    assert!(lab.writes(&events).is_empty(), "a refused apply wrote: {:#?}", lab.writes(&events));
    let untouched = services.get("netdelta-zeta").await.unwrap();
    assert_eq!(untouched.metadata.resource_version, foreign.metadata.resource_version);

    // Removing every tenant and the registry prunes most of the lab: refused without
    // --allow-destructive.
    spec["tenants"] = json!([]);
    spec["registry"]["enabled"] = json!(false);
    lab.write(&spec);
    let output = lab.run(&["apply"], 1);
    assert!(output.contains("--allow-destructive") && output.contains("of the"), "{output}");
    assert!(labelled(&client, "t-prune").await.iter().any(|k| k.contains("barbican")), "nothing was pruned");
    lab.run(&["apply", "--allow-destructive"], 0);
    assert_eq!(labelled(&client, "t-prune").await, lab.rendered());
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    services.delete("netdelta-zeta", &Default::default()).await.ok();
}

#[tokio::test]
async fn a_field_owned_by_another_manager_is_a_conflict_until_forced() {
    let lab = TestLab::new("tenants.yaml", "t-conflict");
    lab.run(&["apply"], 0);
    let deployments = api(&admin().await, "apps", "v1", "Deployment", Some("t-conflict"));
    let params = PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() };
    deployments.patch("netdelta-barbican", &params, &Patch::Merge(json!({ "spec": { "replicas": 3 } }))).await.unwrap();

    let output = lab.run(&["apply"], 1);
    assert!(
        output.contains("Deployment.apps t-conflict/netdelta-barbican")
            && output.contains(".spec.replicas is owned by field manager \"kubectl-edit\"")
            && output.contains("--force-conflicts"),
        "{output}"
    );
    lab.run(&["apply", "--force-conflicts"], 0);
    let live = deployments.get("netdelta-barbican").await.unwrap();
    assert_eq!(live.data["spec"]["replicas"], 1);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn plan_shows_field_level_changes_and_never_a_secret_value() {
    let mut lab = TestLab::new("tenants.yaml", "t-plan");
    lab.run(&["apply"], 0);
    let mut spec = lab.spec();
    spec["tenants"][0]["image"] = json!("registry.netdelta.home.arpa/netdelta/barbican:1.1");
    lab.write(&spec);
    lab.password = SECRET_TWO.to_owned();

    let text = lab.run(&["plan", "--detailed-exitcode"], 3);
    assert!(text.contains("~ update  Deployment.apps t-plan/netdelta-barbican"), "{text}");
    assert!(
        text.contains(
            "~ spec.template.spec.containers[netdelta].image: registry.netdelta.home.arpa/netdelta/barbican:1.0 -> registry.netdelta.home.arpa/netdelta/barbican:1.1"
        ),
        "{text}"
    );
    assert!(text.contains("~ data.password (changed): <secret value>"), "{text}");
    let json = lab.run(&["plan", "--output", "json"], 0);
    let document: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(document["summary"]["update"], 2, "{document:#}");
    let applied = lab.run(&["apply", "-vv"], 0);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for output in [&text, &json, &applied] {
        for secret in [SECRET_ONE, SECRET_TWO] {
            assert!(!output.contains(secret) && !output.contains(&b64(secret)), "a secret leaked:\n{output}");
        }
    }
    lab.run(&["plan", "--detailed-exitcode"], 0);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[tokio::test]
async fn a_changed_selector_is_flagged_immutable_refused_and_recreated_on_request() {
    let lab = TestLab::new("tenants.yaml", "t-immutable");
    lab.run(&["apply"], 0);
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/tenants/netdelta.yaml")).unwrap();
    let selector = "      app.kubernetes.io/instance: {{ tenant.app | tojson }}\n  template:";
    assert!(template.contains(selector), "the tenant template changed; update this test");
    let changed = template.replace(selector, "      app.kubernetes.io/instance: {{ tenant.app | tojson }}\n      seclab.dev/tenant: {{ tenant.name | tojson }}\n  template:");
    lab.template("tenants/netdelta.yaml", &changed);

    let plan = lab.run(&["plan"], 1);
    assert!(
        plan.contains("! replace Deployment.apps t-immutable/netdelta-barbican") && plan.contains("immutable"),
        "{plan}"
    );
    let refused = lab.run(&["apply"], 1);
    assert!(refused.contains("--recreate") && refused.contains("nothing was applied"), "{refused}");
    let output = lab.run(&["apply", "--recreate"], 0);
    assert!(output.contains("replaced Deployment.apps t-immutable/netdelta-barbican"), "{output}");
    let live =
        api(&admin().await, "apps", "v1", "Deployment", Some("t-immutable")).get("netdelta-barbican").await.unwrap();
    assert_eq!(live.data["spec"]["selector"]["matchLabels"]["seclab.dev/tenant"], "barbican");
    lab.run(&["plan", "--detailed-exitcode"], 0);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[tokio::test]
async fn an_apply_that_fails_midway_converges_next_time_and_destroy_removes_everything() {
    let lab = TestLab::new("tenants.yaml", "t-partial");
    // The last stage holds an Ingress the API server rejects (a relative path).
    lab.template(
        "extra/zz-broken.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: broken\n  namespace: t-partial\nspec:\n  rules:\n    - http:\n        paths:\n          - path: relative\n            pathType: Prefix\n            backend:\n              service:\n                name: x\n                port:\n                  number: 80\n",
    );
    let output = lab.run(&["apply"], 1);
    assert!(
        output.contains("the ingresses stage failed") && output.contains("Ingress.networking.k8s.io t-partial/broken"),
        "{output}"
    );
    let client = admin().await;
    let existing = labelled(&client, "t-partial").await;
    assert!(existing.contains("Deployment t-partial/netdelta-barbican"), "earlier stages were applied: {existing:?}");
    let inventory = api(&client, "", "v1", "ConfigMap", Some("t-partial")).get("seclab-t-partial").await.unwrap();
    let mut read = Inventory::new("t-partial", "t-partial");
    read.read(&serde_json::to_value(&inventory).unwrap());
    let listed: Vec<&str> = read.places().map(|(member, _)| member.name.as_str()).collect();
    for object in &existing {
        let name = object.rsplit(['/', ' ']).next().unwrap();
        // A name compared without its hash (see `key`) is listed with it.
        let found = match name.strip_suffix('*') {
            Some(stem) => listed.iter().any(|l| l.starts_with(stem)),
            None => listed.contains(&name),
        };
        assert!(found, "{object} is missing from the inventory: {listed:?}");
    }

    lab.remove_template("extra/zz-broken.yaml");
    lab.run(&["apply"], 0);
    assert_eq!(labelled(&client, "t-partial").await, lab.rendered());
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    assert_eq!(labelled(&client, "t-partial").await, BTreeSet::new());
}

#[test]
fn wait_times_out_naming_what_is_stuck_and_why() {
    let lab = TestLab::new("tenants.yaml", "t-stuck");
    lab.template(
        "storage/zz-stuck.yaml",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: stuck\n  namespace: t-stuck\nspec:\n  storageClassName: no-such-class\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n",
    );
    let output = lab.run(&["apply", "--wait", "--timeout", "4s"], 1);
    assert!(
        output.contains("timed out after 4s")
            && output.contains("PersistentVolumeClaim t-stuck/stuck: not bound (phase Pending)"),
        "{output}"
    );
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[tokio::test]
async fn a_lab_ships_a_crd_with_its_first_custom_resource_which_needs_a_status_or_a_rule_to_be_ready() {
    let lab = TestLab::new("tenants.yaml", "t-custom");
    lab.template("extra/zz-widget-crd.yaml", &support::test_crd("Widget", "widgets", "Namespaced"));
    lab.template(
        "extra/zz-widget.yaml",
        "apiVersion: test.seclab.dev/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: t-custom\nspec: {}\n",
    );
    let plan = lab.run(&["plan"], 0);
    assert!(
        plan.contains("+ create  CustomResourceDefinition.apiextensions.k8s.io widgets.test.seclab.dev")
            && plan.contains("+ create  Widget.test.seclab.dev t-custom/w"),
        "a kind the lab's own CRD defines is planned before the cluster serves it: {plan}"
    );
    let output = lab.run(&["apply", "--wait", "--timeout", "3s"], 1);
    assert!(output.contains("Widget.test.seclab.dev t-custom/w: no status"), "{output}");

    let mut spec = lab.spec();
    spec["cluster"]["readiness"] = json!([{ "group": "test.seclab.dev", "kind": "Widget", "always": true }]);
    lab.write(&spec);
    lab.run(&["apply", "--wait", "--timeout", "60s"], 0);
    let events = audited(|| {
        lab.run(&["apply"], 0);
    });
    let writes: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.is_write() && e.user_agent.starts_with("seclab/"))
        .filter(|e| e.namespace == "t-custom" || e.name == "widgets.test.seclab.dev")
        .collect();
    assert!(writes.is_empty(), "the re-apply wrote: {writes:#?}");

    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    let client = admin().await;
    let crds = api(&client, "apiextensions.k8s.io", "v1", "CustomResourceDefinition", None);
    let left = crds.get_opt("widgets.test.seclab.dev").await.unwrap();
    assert!(left.is_none_or(|crd| crd.metadata.deletion_timestamp.is_some()), "destroy removes the lab's CRD");
}

/// A custom kind of cluster scope (its CRD shipped by the lab) renders without a namespace,
/// plans, applies with seclab's least privilege, re-applies with no write, and is destroyed.
#[tokio::test]
async fn a_cluster_scoped_custom_kind_plans_and_applies() {
    let lab = TestLab::new("tenants.yaml", "t-gizmo");
    lab.template("extra/zz-gizmo-crd.yaml", &support::test_crd("Gizmo", "gizmos", "Cluster"));
    lab.template(
        "extra/zz-gizmo.yaml",
        "apiVersion: test.seclab.dev/v1\nkind: Gizmo\nmetadata:\n  name: t-gizmo-one\nspec: {}\n",
    );
    let mut spec = lab.spec();
    spec["cluster"]["readiness"] = json!([{ "group": "test.seclab.dev", "kind": "Gizmo", "always": true }]);
    lab.write(&spec);
    let plan = lab.run(&["plan"], 0);
    assert!(plan.contains("+ create  Gizmo.test.seclab.dev t-gizmo-one\n"), "cluster-scoped, no namespace: {plan}");
    lab.run(&["apply", "--wait", "--timeout", "60s"], 0);
    let client = admin().await;
    let gizmos = api(&client, "test.seclab.dev", "v1", "Gizmo", None);
    let live = gizmos.get("t-gizmo-one").await.unwrap();
    assert_eq!(live.metadata.labels.as_ref().unwrap()["app.kubernetes.io/part-of"], "t-gizmo");
    let events = audited(|| {
        lab.run(&["apply"], 0);
    });
    let writes: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.is_write() && e.user_agent.starts_with("seclab/"))
        .filter(|e| e.namespace == "t-gizmo" || e.name.starts_with("t-gizmo") || e.name == "gizmos.test.seclab.dev")
        .collect();
    assert!(writes.is_empty(), "the re-apply wrote: {writes:#?}");
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    let crds = api(&client, "apiextensions.k8s.io", "v1", "CustomResourceDefinition", None);
    let left = crds.get_opt("gizmos.test.seclab.dev").await.unwrap();
    assert!(left.is_none_or(|crd| crd.metadata.deletion_timestamp.is_some()), "destroy removes the lab's CRD");
}

#[test]
fn a_broken_file_changes_nothing_in_the_cluster() {
    let lab = TestLab::new("tenants.yaml", "t-broken");
    let text = std::fs::read_to_string(lab.file()).unwrap().replacen("image:", "imgae:", 1);
    std::fs::write(lab.file(), text).unwrap();
    let events = audited(|| {
        let output = lab.run(&["apply"], 2);
        assert!(output.contains("lab.yaml:"), "the error names the file and line: {output}");
    });
    let seclab = events.iter().filter(|e| e.user_agent.starts_with("seclab/"));
    assert!(seclab.clone().all(|e| e.namespace != "t-broken" && !e.name.starts_with("t-broken")), "{events:#?}");
}

/// Whether the limited user may `verb` `resource` (`name` in `namespace`), as the API
/// server's authorizer answers.
async fn may(verb: &str, resource: &str, namespace: Option<&str>, name: Option<&str>) -> bool {
    use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
    let cluster = Cluster::get();
    let limited = cluster.client(&cluster.limited_kubeconfig()).await;
    let (resource, subresource) = resource.split_once('/').map_or((resource, None), |(r, s)| (r, Some(s)));
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({ "spec": { "resourceAttributes": {
        "verb": verb, "resource": resource, "subresource": subresource, "namespace": namespace, "name": name } } }))
    .unwrap();
    let answer = kube::Api::<SelfSubjectAccessReview>::all(limited)
        .create(&Default::default(), &review)
        .await
        .expect("a SelfSubjectAccessReview is answered");
    answer.status.unwrap().allowed
}

#[tokio::test]
async fn seclab_holds_cluster_objects_by_name_and_each_namespace_s_rules_in_that_namespace_only() {
    let mut lab = TestLab::new("tenants.yaml", "t-rbac");
    // A Role of the lab in a second namespace grants exec there: seclab must hold it there to
    // create the Role, and nowhere else.
    lab.template(
        "extra/zz-exec.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: t-rbac-jobs\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: exec\n  namespace: t-rbac-jobs\n\
         rules:\n- apiGroups: ['']\n  resources: [pods/exec]\n  verbs: [create]\n",
    );
    lab.run(&["apply"], 0);
    assert!(may("create", "pods/exec", Some("t-rbac-jobs"), Some("p")).await);
    assert!(!may("create", "pods/exec", Some("t-rbac"), Some("p")).await, "the Role's rules stay in its namespace");
    assert!(!may("create", "pods/exec", Some("kube-system"), Some("p")).await);
    assert!(may("get", "secrets", Some("t-rbac"), Some("t-rbac-barbican-db")).await);
    for (verb, namespace) in [("get", "kube-system"), ("list", "kube-system"), ("list", "default")] {
        assert!(!may(verb, "secrets", Some(namespace), None).await, "{verb} secrets in {namespace}");
    }
    let cluster = Cluster::get();
    let limited = cluster.client(&cluster.limited_kubeconfig()).await;
    let secrets = kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(limited, "kube-system");
    let refused = secrets.list(&Default::default()).await.unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(status) if status.code == 403), "{refused:?}");
    // Cluster-scoped objects by name: its namespaces, none other, nor a PersistentVolume.
    assert!(may("patch", "namespaces", None, Some("t-rbac-jobs")).await);
    assert!(!may("patch", "namespaces", None, Some("kube-system")).await);
    assert!(!may("create", "persistentvolumes", None, Some("root")).await, "no hostPath volume of its choosing");
    assert!(!may("create", "jobs", Some("kube-system"), None).await);
    assert!(may("list", "nodes", None, None).await && !may("get", "nodes", None, Some("real-node-0")).await);
    assert!(!may("*", "*", None, None).await);

    // What a refused request says: where seclab's permissions come from.
    lab.grants = false;
    lab.template(
        "extra/zz-volume.yaml",
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: t-rbac-extra\n\
        spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /srv/t-rbac}}\n",
    );
    let output = lab.run(&["apply"], 1);
    assert!(output.contains("forbidden") && output.contains("seclab render --rbac-for-seclab"), "{output}");
    lab.remove_template("extra/zz-volume.yaml");
    lab.grants = true;
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[tokio::test]
async fn destroy_without_allow_destructive_keeps_namespaces_volumes_and_claims() {
    let lab = TestLab::new("homelab.yaml", "t-keep");
    lab.run(&["apply"], 0);
    let holds_data = |key: &String| {
        key.starts_with("Namespace ")
            || key.starts_with("PersistentVolume ")
            || key.starts_with("PersistentVolumeClaim ")
    };
    let data: BTreeSet<String> = lab.rendered().into_iter().filter(holds_data).collect();
    assert!(data.len() >= 3, "the home lab has a namespace, a volume and a claim: {data:?}");

    let output = lab.run(&["destroy", "--yes"], 0);
    assert!(output.contains(&format!("Kept {} objects that hold data", data.len())), "{output}");
    let client = admin().await;
    assert_eq!(labelled(&client, "t-keep").await, data, "exactly the objects that hold data are left");
    let inventory = api(&client, "", "v1", "ConfigMap", Some("t-keep")).get_opt("seclab-t-keep").await.unwrap();
    assert!(inventory.is_some(), "the inventory stays while it lists what was kept");

    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    assert_eq!(labelled(&client, "t-keep").await, BTreeSet::new());
}

/// OpenSearch keeps the admin password it was set up with in its security index: a changed
/// one is refused before anything is written, naming the way out, never sent silently.
#[test]
fn a_changed_opensearch_admin_password_is_refused_before_any_write() {
    let mut lab = TestLab::new("opensearch.yaml", "t-osadmin");
    lab.run(&["apply"], 0);
    lab.password = SECRET_TWO.to_owned();
    let mut text = String::new();
    let events = audited(|| text = lab.run(&["apply"], 1));
    for expected in [
        "the OpenSearch admin password in Secret t-osadmin/t-osadmin-opensearch-admin is not the one OpenSearch was set up with",
        "put the old password back",
        "securityadmin.sh",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains(SECRET_ONE) && !text.contains(SECRET_TWO), "{text}");
    assert_eq!(lab.writes(&events), Vec::new(), "nothing was written");
    lab.password = SECRET_ONE.to_owned();
    lab.run(&["plan", "--detailed-exitcode"], 0);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// MariaDB and MySQL cannot read each other's data directory: switching the tenants' server
/// from one to the other is refused before any write, whatever the flags, and named.
#[test]
fn switching_the_tenant_database_engine_on_its_data_is_refused_before_any_write() {
    let lab = TestLab::new("tenants.yaml", "t-engine");
    lab.run(&["apply"], 0);
    let mut spec = lab.spec();
    assert_eq!(spec["tenantDatabase"]["engine"], "mariadb", "the example changed; update this test");
    spec["tenantDatabase"]["engine"] = serde_json::json!("mysql");
    lab.write(&spec);
    let plan = lab.run(&["plan"], 1);
    let refusal = "StatefulSet.apps t-engine/mysql-netdelta would run mysql on data written by mariadb, which mysql cannot read; keep mariadb, or move the data";
    assert!(plan.contains(refusal), "{plan}");
    let mut text = String::new();
    let events = audited(|| text = lab.run(&["apply", "--recreate", "--allow-destructive"], 1));
    assert!(text.contains(refusal) && text.contains("nothing was applied"), "{text}");
    assert_eq!(lab.writes(&events), Vec::new(), "nothing was written");
    spec["tenantDatabase"]["engine"] = serde_json::json!("mariadb");
    lab.write(&spec);
    lab.run(&["plan", "--detailed-exitcode"], 0);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// On a cluster of several nodes, a hostPath volume not pinned to one is warned about (pods
/// on different nodes would each see their own directory); pinned, it is not. The
/// least-privilege user can count the nodes.
#[test]
fn a_hostpath_volume_not_pinned_to_a_node_is_warned_about_on_several_nodes() {
    let lab = TestLab::new("homelab.yaml", "t-unpinned");
    let output = lab.seclab(&["plan"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning: storage volume `data` (hostPath /mnt/data) is not pinned to a node, and the cluster has "
        ) && stderr.contains("Set its `node` to the node that holds the directory"),
        "{stderr}"
    );
    // JSON output carries it in the document, stdout alone.
    let output = lab.seclab(&["plan", "--output", "json"]);
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document["warnings"][0].as_str().unwrap().contains("is not pinned to a node"), "{document}");
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut spec = lab.spec();
    spec["storage"]["volumes"][0]["node"] = serde_json::json!("kwok-node-0");
    lab.write(&spec);
    let output = lab.seclab(&["plan"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning:"), "{stderr}");
}

/// `seclab render` prints the objects in the order apply takes them (Namespaces first), so
/// piped to `kubectl apply -f -` they go into an empty cluster as they are.
#[test]
fn render_piped_to_kubectl_apply_creates_the_lab_from_nothing() {
    use std::io::Write;
    let lab = TestLab::new("tenants.yaml", "t-render-pipe");
    let output = lab.seclab(&["render"]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let kubectl = |verb: &str| {
        let cluster = support::cluster::Cluster::get();
        let mut child = std::process::Command::new(cluster.kubectl())
            .arg("--kubeconfig")
            .arg(cluster.admin_kubeconfig())
            .args([verb, "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&output.stdout).unwrap();
        child.wait_with_output().unwrap()
    };
    let applied = kubectl("apply");
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let first = String::from_utf8_lossy(&applied.stdout).lines().next().unwrap_or_default().to_owned();
    assert!(first.starts_with("namespace/t-render-pipe "), "the namespace comes first: {first}");
    let deleted = kubectl("delete");
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
}
