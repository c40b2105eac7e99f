//! `seclab watch` against the real test control plane, as the least-privilege user: saves
//! applied, drift healed or reported, bad edits ignored, unchanged resyncs that send nothing,
//! scans ingested and delivered, the endpoints and a clean stop.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::browser;
use support::cluster::AuditEvent;
use support::cluster::Cluster;
use support::lab::{TestLab, admin, api, audited};
use support::nmap::{Service, free_port, scan};
use support::outage::Relay;
use support::receivers::Receiver;
use support::watch::{Watch, eventually};

/// The tenants example without scans or alert routes (nothing to deliver anywhere), with
/// a short debounce and resync interval.
fn tenants_lab(name: &str, drift: &str) -> TestLab {
    let lab = TestLab::new("tenants.yaml", name);
    let mut spec = lab.spec();
    for tenant in spec["tenants"].as_array_mut().unwrap() {
        tenant["scans"] = json!([]);
    }
    spec["alerts"] = json!({ "routes": [] });
    spec["watch"] = json!({ "debounce": "50ms", "resyncInterval": "1s", "drift": drift });
    lab.write(&spec);
    lab
}

/// One runtime for every client of the test process: a client's connections live on the
/// runtime it was made on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
    });
    &RUNTIME
}

fn deployment(name: &str, lab: &str) -> Option<Value> {
    runtime().block_on(async {
        let deployments = api(&admin().await, "apps", "v1", "Deployment", Some(lab));
        deployments.get_opt(name).await.unwrap().map(|d| serde_json::to_value(d).unwrap())
    })
}

/// seclab's writes to the lab's objects in `namespace` (the Lease's renewals are the
/// election's, not the lab's).
fn seclab_writes(events: &[AuditEvent], namespace: &str) -> Vec<AuditEvent> {
    events
        .iter()
        .filter(|e| e.is_write() && e.user_agent.starts_with("seclab/") && e.namespace == namespace)
        .filter(|e| e.resource != "leases")
        .cloned()
        .collect()
}

#[test]
fn watch_applies_saves_heals_drift_and_ignores_a_bad_edit() {
    let lab = tenants_lab("t-watch", "heal");
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();
    assert!(deployment("netdelta-barbican", "t-watch").is_some(), "the first pass applied the lab");

    // A one-line change saved to the file is live.
    let mut spec = lab.spec();
    spec["tenants"][0]["image"] = json!("registry.netdelta.home.arpa/netdelta/barbican:1.1");
    let saved = Instant::now();
    lab.write(&spec);
    let image = |d: &Value| d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned();
    let live = eventually(Duration::from_secs(30), || {
        deployment("netdelta-barbican", "t-watch").is_some_and(|d| image(&d).ends_with(":1.1"))
    });
    assert!(live, "the saved change was not applied:\n{}", watch.log());
    println!("save-to-applied latency: {} ms", saved.elapsed().as_millis());

    // A managed Deployment deleted by someone comes back.
    let client = runtime().block_on(admin());
    let deployments = api(&client, "apps", "v1", "Deployment", Some("t-watch"));
    let uid = deployment("netdelta-barbican", "t-watch").unwrap()["metadata"]["uid"].clone();
    runtime().block_on(deployments.delete("netdelta-barbican", &Default::default())).unwrap();
    let back = eventually(Duration::from_secs(30), || {
        deployment("netdelta-barbican", "t-watch").is_some_and(|d| d["metadata"]["uid"] != uid)
    });
    assert!(back, "the deleted Deployment did not come back:\n{}", watch.log());

    // A field the file sets, changed by another manager, is taken back; an unmanaged object
    // in the same namespace is left alone.
    let config_maps = api(&client, "", "v1", "ConfigMap", Some("t-watch"));
    let foreign = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "not-the-labs" }, "data": { "a": "1" } });
    let events = audited(|| {
        runtime()
            .block_on(config_maps.patch("not-the-labs", &PatchParams::apply("someone-else"), &Patch::Apply(&foreign)))
            .unwrap();
        let edit = PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() };
        let replicas = json!({ "spec": { "replicas": 3 } });
        runtime().block_on(deployments.patch("netdelta-xynexis", &edit, &Patch::Merge(&replicas))).unwrap();
        let restored = eventually(Duration::from_secs(30), || {
            deployment("netdelta-xynexis", "t-watch").is_some_and(|d| d["spec"]["replicas"] == 1)
        });
        assert!(restored, "the changed field was not taken back:\n{}", watch.log());
    });
    let touched: Vec<&AuditEvent> =
        events.iter().filter(|e| e.name == "not-the-labs" && e.user_agent.starts_with("seclab/")).collect();
    assert!(touched.is_empty(), "watch touched an object outside the lab: {touched:#?}");
    assert!(
        watch.log().contains(".spec.replicas was changed by field manager \"kubectl-edit\"; taking it back"),
        "{}",
        watch.log()
    );
    assert!(watch.metric("seclab_drift_corrections_total", &[("kind", "Deployment")]) >= 2.0);

    // A bad save changes nothing and is shown; the next good save applies.
    let text = std::fs::read_to_string(lab.file()).unwrap();
    let events = audited(|| {
        std::fs::write(lab.file(), text.replacen("image:", "imgae:", 1)).unwrap();
        let shown = eventually(Duration::from_secs(30), || watch.get("/", None).1.contains("lab.yaml:"));
        assert!(shown, "the status page does not show the rejected edit:\n{}", watch.get("/", None).1);
    });
    let writes = seclab_writes(&events, "t-watch");
    assert!(writes.is_empty(), "a rejected edit wrote: {writes:#?}");
    assert!(watch.metric("seclab_reconcile_total", &[("result", "rejected")]) >= 1.0);
    spec["tenants"][0]["image"] = json!("registry.netdelta.home.arpa/netdelta/barbican:1.2");
    lab.write(&spec);
    let live = eventually(Duration::from_secs(30), || {
        deployment("netdelta-barbican", "t-watch").is_some_and(|d| image(&d).ends_with(":1.2"))
    });
    assert!(live, "the good save after a bad one was not applied:\n{}", watch.log());
    assert!(!watch.get("/", None).1.contains("Last edit rejected"), "a good save clears the rejected edit");
    assert!(watch.metric("seclab_reconcile_total", &[("result", "success")]) >= 3.0);

    assert_eq!(watch.terminate(), Some(0), "SIGTERM stops watch with exit code 0");
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    runtime().block_on(config_maps.delete("not-the-labs", &Default::default())).ok();
}

#[test]
fn an_unchanged_lab_resyncs_from_the_caches_without_a_list_or_a_write() {
    let lab = tenants_lab("t-resync", "heal");
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();
    // Let the watchers list and the first resyncs settle, then watch several resyncs.
    let settled =
        eventually(Duration::from_secs(30), || watch.metric("seclab_reconcile_total", &[("result", "success")]) >= 3.0);
    assert!(settled, "{}", watch.log());
    let requests = |verb| watch.metric("seclab_api_requests_total", &[("verb", verb)]);
    let (lists, applies) = (requests("list"), requests("apply"));
    assert!(lists >= 1.0 && applies >= 1.0, "the start listed and applied ({lists} lists, {applies} applies)");
    let before = watch.metric("seclab_reconcile_total", &[("result", "success")]);
    let events = audited(|| std::thread::sleep(Duration::from_secs(4)));
    let after = watch.metric("seclab_reconcile_total", &[("result", "success")]);
    assert!(after >= before + 2.0, "several resyncs ran ({before} -> {after})");
    assert_eq!((requests("list"), requests("apply")), (lists, applies), "its own count: no LIST, no apply");
    // Other tests run seclab at the same time: count what concerns this lab.
    let seclab: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| {
            e.user_agent.starts_with("seclab/") && (e.namespace == "t-resync" || e.name.starts_with("t-resync"))
        })
        .collect();
    // The Lease is renewed by design; everything else must be quiet.
    let lists_or_writes: Vec<&&AuditEvent> = seclab
        .iter()
        .filter(|e| e.resource != "leases" && (e.is_write() || e.verb == "list" || e.verb == "get"))
        .collect();
    assert!(lists_or_writes.is_empty(), "an unchanged resync sent requests: {lists_or_writes:#?}");
    assert_eq!(watch.terminate(), Some(0));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// A pass whose apply fails after its dry-run passed leaves nothing half-remembered: the next
/// pass applies again, and heals. The API server refuses the heal itself (a
/// ValidatingAdmissionPolicy that lets dry-runs through and refuses seclab's real writes to
/// one Deployment) until the policy's binding is removed.
#[test]
fn a_pass_whose_apply_fails_is_applied_again_by_the_next() {
    let lab = tenants_lab("t-wfail", "heal");
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();
    let client = runtime().block_on(admin());
    let policies = api(&client, "admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", None);
    let bindings = api(&client, "admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", None);
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": { "name": "t-wfail-refuse-heal" },
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": { "resourceRules": [{ "apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["UPDATE"], "resources": ["deployments"] }] },
            "validations": [{
                "expression": "request.dryRun == true || request.userInfo.username != 'seclab-limited' || object.metadata.name != 'netdelta-barbican'",
                "message": "refused for the test",
            }],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": { "name": "t-wfail-refuse-heal" },
        "spec": { "policyName": "t-wfail-refuse-heal", "validationActions": ["Deny"],
            "matchResources": { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "t-wfail" } } } },
    });
    let create = PostParams::default();
    runtime().block_on(async {
        policies.create(&create, &serde_json::from_value(policy).unwrap()).await.unwrap();
        bindings.create(&create, &serde_json::from_value(binding).unwrap()).await.unwrap();
    });
    // The policy is in force once the limited user's own (empty) update is refused.
    let limited = runtime().block_on(Cluster::get().client(&Cluster::get().limited_kubeconfig()));
    let as_seclab = api(&limited, "apps", "v1", "Deployment", Some("t-wfail"));
    let in_force = eventually(Duration::from_secs(30), || {
        let tried =
            runtime().block_on(as_seclab.patch("netdelta-barbican", &PatchParams::default(), &Patch::Merge(json!({}))));
        tried.is_err_and(|e| e.to_string().contains("refused for the test"))
    });
    assert!(in_force, "the policy never refused the limited user's update");

    let deployments = api(&client, "apps", "v1", "Deployment", Some("t-wfail"));
    let edit = PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() };
    runtime()
        .block_on(deployments.patch("netdelta-barbican", &edit, &Patch::Merge(json!({ "spec": { "replicas": 3 } }))))
        .unwrap();
    let failed =
        eventually(Duration::from_secs(30), || watch.metric("seclab_reconcile_total", &[("result", "error")]) >= 1.0);
    assert!(failed, "the heal did not fail:\n{}", watch.log());
    assert!(watch.log().contains("reconcile failed, retrying in"), "{}", watch.log());
    assert_eq!(deployment("netdelta-barbican", "t-wfail").unwrap()["spec"]["replicas"], 3, "not healed yet");

    runtime().block_on(async {
        bindings.delete("t-wfail-refuse-heal", &Default::default()).await.unwrap();
        policies.delete("t-wfail-refuse-heal", &Default::default()).await.unwrap();
    });
    let healed = eventually(Duration::from_secs(90), || {
        deployment("netdelta-barbican", "t-wfail").is_some_and(|d| d["spec"]["replicas"] == 1)
    });
    assert!(healed, "the next pass did not apply again:\n{}", watch.log());
    assert_eq!(watch.terminate(), Some(0));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn drift_is_only_reported_when_the_file_says_so() {
    let lab = tenants_lab("t-report", "report");
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();
    let client = runtime().block_on(admin());
    let deployments = api(&client, "apps", "v1", "Deployment", Some("t-report"));
    let edit = PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() };
    let replicas = json!({ "spec": { "replicas": 3 } });
    let events = audited(|| {
        runtime().block_on(deployments.patch("netdelta-barbican", &edit, &Patch::Merge(&replicas))).unwrap();
        let reported = eventually(Duration::from_secs(30), || watch.get("/", None).1.contains("Drift (reported"));
        assert!(reported, "drift was not reported:\n{}", watch.log());
        std::thread::sleep(Duration::from_secs(2));
    });
    assert_eq!(deployment("netdelta-barbican", "t-report").unwrap()["spec"]["replicas"], 3, "drift stays");
    let writes = seclab_writes(&events, "t-report");
    assert!(writes.is_empty(), "report mode wrote: {writes:#?}");
    assert!(watch.log().contains("drift (reported, not healed"), "{}", watch.log());
    assert_eq!(watch.terminate(), Some(0));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn off_loopback_the_endpoints_need_a_token() {
    let mut lab = tenants_lab("t-token", "heal");
    let output = lab.seclab(&["watch", "--listen", "0.0.0.0:0"]);
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("not a loopback address") && text.contains("watch.token"), "{text}");

    let mut spec = lab.spec();
    spec["watch"]["token"] = json!("env:SECLAB_WATCH_TOKEN");
    lab.write(&spec);
    lab.env.push(("SECLAB_WATCH_TOKEN".into(), "short".into()));
    let output = lab.seclab(&["watch", "--listen", "0.0.0.0:0"]);
    lab.env.pop();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("watch.token: it is 5 characters long; use at least 16"), "{text}");
    let token = "watch-token-5b1e";
    let mut local = Watch::start(&lab, &["--listen", "0.0.0.0:0"], &[("SECLAB_WATCH_TOKEN", token)]);
    local.address = SocketAddr::from(([127, 0, 0, 1], local.address.port()));
    assert_eq!(local.get("/healthz", None).0, 200, "/healthz needs no token");
    for path in ["/", "/readyz", "/metrics"] {
        assert_eq!(local.get(path, None).0, 401, "{path} without the token");
        assert_eq!(local.get(path, Some("wrong")).0, 401, "{path} with a wrong token");
    }
    let ready = eventually(Duration::from_secs(120), || local.get("/readyz", Some(token)).0 == 200);
    assert!(ready, "{}", local.log());
    assert!(!local.log().contains(token), "the token appears in the log");
    assert_eq!(local.terminate(), Some(0));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn two_watches_on_one_lab_elect_one_reconciler_and_the_standby_takes_over() {
    let lab = tenants_lab("t-lease", "heal");
    let first = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    first.wait_ready();
    let second = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    std::thread::sleep(Duration::from_secs(3));
    let (code, body) = second.get("/readyz", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("standing by"), "{body}");
    assert_eq!(second.metric("seclab_reconcile_total", &[]), 0.0, "the standby does not reconcile");
    assert!(first.metric("seclab_reconcile_total", &[("result", "success")]) >= 1.0);

    let first_pid = first.child.id();
    assert_eq!(first.terminate(), Some(0));
    let leases = runtime().block_on(async {
        let client = admin().await;
        api(&client, "coordination.k8s.io", "v1", "Lease", Some("t-lease")).get("seclab-t-lease-watch").await.unwrap()
    });
    let holder = leases.data["spec"]["holderIdentity"].as_str().unwrap_or_default().to_owned();
    assert!(!holder.ends_with(&format!("-{first_pid}")), "the stopped watch still holds the Lease: {holder}");
    let took_over = eventually(Duration::from_secs(30), || second.get("/readyz", None).0 == 200);
    assert!(took_over, "the standby did not take over (lease holder after the stop: {holder:?}):\n{}", second.log());

    // The new holder heals drift.
    let client = runtime().block_on(admin());
    let deployments = api(&client, "apps", "v1", "Deployment", Some("t-lease"));
    runtime().block_on(deployments.delete("netdelta-barbican", &Default::default())).unwrap();
    let back = eventually(Duration::from_secs(30), || deployment("netdelta-barbican", "t-lease").is_some());
    assert!(back, "{}", second.log());
    assert_eq!(second.terminate(), Some(0));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// The tenants lab scanning loopback: barbican's group `dmz` covers 127.0.0.2-4 on `ports`,
/// and alerts go to a webhook on loopback `hook_port`.
fn scanning_lab(name: &str, ports: (u16, u16), hook_port: u16) -> TestLab {
    let lab = tenants_lab(name, "heal");
    let mut spec = lab.spec();
    spec["tenants"][0]["scans"] = json!([{ "name": "dmz", "targets": ["127.0.0.2-4"],
        "ports": format!("{},{}", ports.0, ports.1), "schedule": "0 2 * * *", "downAfter": 2, "alerts": ["hook"] }]);
    spec["alerts"] =
        json!({ "routes": [{ "name": "hook", "webhook": { "url": format!("http://127.0.0.1:{hook_port}/alerts") } }] });
    spec["scanDatabase"] = json!({ "path": "scans.db", "scanDirectory": "scans" });
    lab.write(&spec);
    std::fs::create_dir_all(lab.dir.path().join("scans/barbican/dmz")).unwrap();
    lab
}

/// A real nmap scan of loopback with `services` up, renamed into the group's directory as
/// `name`, the way the CronJobs write theirs.
fn drop_scan(lab: &TestLab, ports: (u16, u16), services: &[(u8, u16, &'static str)], name: &str) {
    let _running: Vec<Service> = services
        .iter()
        .map(|(last, port, banner)| Service::start(std::net::Ipv4Addr::new(127, 0, 0, *last), *port, banner))
        .collect();
    let partial = lab.dir.path().join(format!("scans/barbican/dmz/.{name}.partial"));
    scan(&["127.0.0.2-4"], &[ports.0, ports.1], &partial);
    std::fs::rename(&partial, lab.dir.path().join("scans/barbican/dmz").join(name)).unwrap();
}

#[test]
fn a_scan_dropped_into_the_scan_directory_is_ingested_once_and_its_alerts_sent_once_across_a_kill() {
    const SSH: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
    const FTP: &str = "220 (vsFTPd 3.0.3)\r\n";
    let ports = (free_port(), free_port());
    let nobody = free_port(); // nothing listens here: deliveries wait in the outbox
    let lab = scanning_lab("t-wscan", ports, nobody);
    lab.template(
        "storage/zz-stuck.yaml",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: stuck\n  namespace: t-wscan\nspec:\n  storageClassName: no-such-class\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n",
    );
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();

    drop_scan(&lab, ports, &[(2, ports.0, SSH)], "20261201T020000Z.xml");
    let baseline = eventually(Duration::from_secs(30), || {
        watch.metric("seclab_scans_ingested_total", &[("result", "ingested")]) == 1.0
    });
    assert!(baseline, "the first scan was not ingested:\n{}", watch.log());
    drop_scan(&lab, ports, &[(2, ports.0, SSH), (3, ports.1, FTP)], "20261202T020000Z.xml");
    let compared = eventually(Duration::from_secs(30), || {
        watch.metric("seclab_scans_ingested_total", &[("result", "ingested")]) == 2.0
    });
    assert!(compared, "the second scan was not ingested:\n{}", watch.log());
    assert!(watch.metric("seclab_scan_changes_total", &[]) >= 1.0, "the new host is a change");
    let failed = eventually(Duration::from_secs(30), || {
        watch.metric("seclab_alerts_total", &[("route", "hook"), ("result", "failed")]) >= 1.0
    });
    assert!(failed, "the delivery was not attempted:\n{}", watch.log());
    // What a person sees in a browser: the tenant's group, hosts by status code, the newest
    // change, and the object that is not ready.
    let url = format!("http://{}/", watch.address);
    let seen = browser::dom(&url);
    for expected in [
        "barbican/dmz",
        "1 changed, 2 up",
        "127.0.0.3: port",
        "opened",
        "PersistentVolumeClaim t-wscan/stuck",
        "not bound",
    ] {
        assert!(seen.contains(expected), "the page in the browser lacks {expected:?}:\n{seen}");
    }
    let picture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/watch-status-page.png");
    browser::screenshot(&url, &picture);

    // Killed before any alert got through; the receiver comes up, watch comes back.
    let mut killed = watch;
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let receiver = Receiver::start("http", &lab.dir.path().join("hook"));
    let mut spec = lab.spec();
    spec["alerts"]["routes"][0]["webhook"]["url"] = json!(format!("http://127.0.0.1:{}/alerts", receiver.port));
    lab.write(&spec);
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();
    let received = receiver.wait_for(1);
    assert!(!received.is_empty(), "the queued alert was not delivered after the restart:\n{}", watch.log());
    assert!(received.iter().any(|body| body.contains("127.0.0.3")), "{received:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        watch.metric("seclab_scans_ingested_total", &[("result", "ingested")]),
        0.0,
        "the files already ingested are not ingested again"
    );
    assert_eq!(watch.terminate(), Some(0));
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.received(), received, "nothing is delivered twice");
    assert_eq!(watch.terminate(), Some(0));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn while_the_api_server_is_unreachable_watch_is_not_ready_and_a_save_made_meanwhile_is_applied_after() {
    let mut lab = tenants_lab("t-outage", "heal");
    let server = Cluster::get().server();
    let relay = Relay::start(server);
    lab.kubeconfig = relay.kubeconfig(&Cluster::get().limited_kubeconfig(), server, lab.dir.path());
    let mut watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();

    relay.down();
    let unready = eventually(Duration::from_secs(30), || watch.get("/readyz", None).0 == 503);
    assert!(unready, "/readyz stayed ready while the API server was unreachable:\n{}", watch.log());
    let (_, reason) = watch.get("/readyz", None);
    assert!(reason.contains("not reachable"), "{reason}\n{}", watch.log());
    let mut spec = lab.spec();
    spec["tenants"][0]["image"] = json!("registry.netdelta.home.arpa/netdelta/barbican:1.1");
    lab.write(&spec);
    std::thread::sleep(Duration::from_secs(4));
    assert!(watch.child.try_wait().unwrap().is_none(), "watch exited during the outage:\n{}", watch.log());
    assert_eq!(watch.get("/healthz", None).0, 200);

    relay.up();
    let image = |d: &Value| d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned();
    let applied = eventually(Duration::from_secs(60), || {
        deployment("netdelta-barbican", "t-outage").is_some_and(|d| image(&d).ends_with(":1.1"))
    });
    assert!(applied, "the save made during the outage was not applied:\n{}", watch.log());
    let ready = eventually(Duration::from_secs(60), || watch.get("/readyz", None).0 == 200);
    assert!(ready, "/readyz did not come back:\n{}", watch.log());
    assert_eq!(watch.terminate(), Some(0));
    lab.kubeconfig = Cluster::get().limited_kubeconfig();
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn watch_renews_a_certificate_that_falls_due_and_exports_when_each_expires() {
    let name = "t-wcerts";
    let lab = TestLab::new("opensearch.yaml", name);
    let mut spec = lab.spec();
    spec["watch"] = json!({ "debounce": "50ms", "resyncInterval": "1s" });
    lab.write(&spec);
    lab.run(&["apply"], 0);
    // The test plays the clock: the REST certificate is stored (as seclab stores it) with 60
    // seconds more than `renewBefore` (30 days) to live, so it falls due while watch runs.
    let margin = 60;
    let planted = runtime().block_on(async {
        let client = admin().await;
        let validity = Duration::from_secs(30 * 86_400 + margin);
        support::certs::store_short_lived_rest_certificate(&client, name, validity).await as f64
    });
    let password = lab.password.clone();
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[("OPENSEARCH_ADMIN_PASSWORD", &password)]);
    watch.wait_ready();
    let secret = format!("{name}/opensearch-http-certs");
    let expiry = || watch.metric("seclab_certificate_expiry_timestamp_seconds", &[("secret", &secret)]);
    // Not due yet: kept, and its expiry exported.
    assert!(eventually(Duration::from_secs(20), || expiry() == planted), "{} != {planted}", expiry());

    // Once due, a resync issues it again; the metric follows.
    let renewed = eventually(Duration::from_secs(margin + 60), || expiry() > planted + 600.0 * 86_400.0);
    assert!(renewed, "watch did not renew the certificate:\n{}", watch.log());
    assert!(watch.log().contains("a certificate is due"), "{}", watch.log());
    let status: Value = serde_json::from_str(&lab.run(&["certs", "status", "--output", "json"], 0)).unwrap();
    let certificates = status["certificates"].as_array().unwrap();
    assert!(certificates.iter().all(|c| c["state"] == "ok"), "{certificates:#?}");
    assert_eq!(watch.terminate(), Some(0));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// Without a token, the endpoints answer loopback names only (a page elsewhere cannot reach
/// them by DNS rebinding), every answer keeps the page out of caches and frames, and a client
/// that never finishes its headers is cut off.
#[test]
fn without_a_token_the_endpoints_answer_loopback_names_only_and_cut_slow_clients_off() {
    use std::io::{Read, Write};
    let lab = tenants_lab("t-host", "heal");
    let watch = Watch::start(&lab, &[], &[]);
    let port = watch.address.port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "localhost".to_owned()] {
        let answer = watch.raw(&format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
        for header in [
            "cache-control: no-store",
            "x-content-type-options: nosniff",
            "content-security-policy: default-src 'none'",
        ] {
            assert!(answer.to_ascii_lowercase().contains(header), "{host}: {header} missing in {answer}");
        }
    }
    for host in ["rebound.example", "rebound.example:9464", "10.0.0.1"] {
        let answer = watch.raw(&format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        assert!(answer.starts_with("HTTP/1.1 421"), "{host}: {answer}");
    }
    // Half a request, then nothing: the connection is closed after the header deadline (10 s).
    let mut slow = std::net::TcpStream::connect(watch.address).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(25), "the slow client was held {waited:?}");
    assert_eq!(watch.get("/healthz", None).0, 200, "{}", watch.log());
    drop(watch);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// A watch started before the cluster answers (a boot order) does not exit: `/readyz` says
/// why it waits, and it reconciles the lab once the API server is reachable. A missing scan
/// directory is made.
#[test]
fn a_watch_started_before_the_api_server_answers_waits_for_it_and_then_reconciles() {
    let mut lab = tenants_lab("t-boot-order", "heal");
    let mut spec = lab.spec();
    spec["tenants"][0]["scans"] = json!([{ "name": "dmz", "targets": ["127.0.0.1"], "schedule": "0 2 * * *" }]);
    spec["scanDatabase"] = json!({ "path": "scans.db", "scanDirectory": "not-yet/scans" });
    lab.write(&spec);
    let server = Cluster::get().server();
    let relay = Relay::start(server);
    lab.kubeconfig = relay.kubeconfig(&Cluster::get().limited_kubeconfig(), server, lab.dir.path());
    relay.down();
    let mut watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    let waiting = eventually(Duration::from_secs(30), || watch.get("/readyz", None).1.contains("not reachable"));
    assert!(waiting, "{:?}\n{}", watch.get("/readyz", None), watch.log());
    std::thread::sleep(Duration::from_secs(3));
    assert!(watch.child.try_wait().unwrap().is_none(), "watch exited before the cluster answered:\n{}", watch.log());
    assert!(lab.dir.path().join("not-yet/scans").is_dir(), "the scan directory is made");

    relay.up();
    let ready = eventually(Duration::from_secs(90), || watch.get("/readyz", None).0 == 200);
    assert!(ready, "watch did not reconcile once the API server answered:\n{}", watch.log());
    assert!(deployment("netdelta-barbican", "t-boot-order").is_some(), "{}", watch.log());
    assert_eq!(watch.terminate(), Some(0));
    lab.kubeconfig = Cluster::get().limited_kubeconfig();
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}
