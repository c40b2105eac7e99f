//! The lab's workloads on the test cluster's real node, where containers really start: the
//! registry serving a push and a pull through its Service, drift healed with a pod that runs
//! again, a tenant whose image cannot be pulled named with the kubelet's reason, and the scan
//! loop from a CronJob's nmap to a webhook.

mod support;

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::cluster::Cluster;
use support::lab::TestLab;
use support::node::{RealNode, kubectl, kubectl_output, pods, runs_for_real, tiny_image, wait_running};
use support::receivers::Receiver;
use support::watch::{Watch, eventually};

/// A lab of `name` with no registry, search engine or Cortex, its storage volume in its own
/// temporary directory (the real node mounts it from this machine).
fn small_lab(name: &str) -> TestLab {
    let lab = TestLab::new("homelab.yaml", name);
    let mut spec = lab.spec();
    spec["registry"]["enabled"] = json!(false);
    spec["elasticsearch"]["enabled"] = json!(false);
    spec["cortex"]["enabled"] = json!(false);
    spec["storage"]["volumes"][0]["hostPath"] = json!(lab.dir.path().join("data"));
    lab.write(&spec);
    // What a failed run on the same cluster left (a developer's cluster, not CI's fresh one).
    lab.seclab(&["destroy", "--yes", "--allow-destructive"]);
    support::node::kubectl_output(&["wait", "--for=delete", &format!("namespace/{name}"), "--timeout=90s"]);
    lab
}

fn skopeo(args: &[&str]) -> String {
    let output = Command::new("skopeo").arg("--insecure-policy").args(args).output().expect("skopeo runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "skopeo {args:?}:\n{text}");
    text
}

#[test]
fn the_registry_runs_on_the_real_node_serves_a_push_and_a_pull_and_comes_back_when_deleted() {
    let node = RealNode::get();
    let lab = small_lab("real-registry");
    let mut spec = lab.spec();
    spec["registry"]["enabled"] = json!(true);
    spec["registry"]["image"] = json!("seclab.test/registry:debian12");
    node.place(&mut spec["registry"]);
    lab.write(&spec);
    lab.run(&["apply", "--wait", "--timeout", "120s"], 0);
    let selector = "app.kubernetes.io/name=registry";
    let pod = wait_running(&lab.name, selector, &node.name, Duration::from_secs(10));

    // A push and a pull through the registry's Service, from this machine.
    let address: IpAddr =
        kubectl(&["get", "service", "registry", "-n", &lab.name, "-o", "jsonpath={.spec.clusterIP}"]).parse().unwrap();
    node.assert_routed_to_bridge(address);
    // kube-proxy answers for a Service a moment after its endpoints change.
    let answering = eventually(Duration::from_secs(30), || {
        std::net::TcpStream::connect_timeout(&(address, 80).into(), Duration::from_secs(2)).is_ok()
    });
    assert!(answering, "the registry's Service {address}:80 does not answer");
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("hello.tar");
    tiny_image("seclab.test/hello:1", "hello from the real node\n", &archive);
    let reference = format!("docker://{address}:80/lab/hello:1");
    skopeo(&["copy", "--dest-tls-verify=false", &format!("docker-archive:{}", archive.display()), &reference]);
    let pulled = work.path().join("pulled");
    skopeo(&["copy", "--src-tls-verify=false", &reference, &format!("dir:{}", pulled.display())]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pulled.join("manifest.json")).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let listing = Command::new("tar").arg("-tf").arg(pulled.join(layer)).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout).trim(), "hello.txt");
    // The images are on the lab's volume, where the Deployment mounts it (subPath `registry`).
    let stored = lab.dir.path().join("data/registry/docker/registry/v2/repositories/lab/hello");
    assert!(stored.is_dir(), "{} holds the pushed image", stored.display());

    // Drift with real pods: the Deployment deleted, watch applies it again and a new pod runs.
    let watch = Watch::start(&lab, &[], &[]);
    watch.wait_ready();
    kubectl(&["delete", "deployment", "registry", "-n", &lab.name, "--wait=true"]);
    let old = pod["metadata"]["uid"].clone();
    let mut new = None;
    let back = eventually(Duration::from_secs(90), || {
        new =
            pods(&lab.name, selector).into_iter().find(|p| p["metadata"]["uid"] != old && runs_for_real(p, &node.name));
        new.is_some()
    });
    assert!(back, "the registry did not run again:\n{}\n{}", watch.log(), Cluster::get().describe(&lab.name));
    drop(watch);
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[test]
fn a_tenant_whose_image_cannot_be_pulled_is_reported_with_the_kubelets_reason() {
    let node = RealNode::get();
    let lab = small_lab("real-ghost");
    let mut spec = lab.spec();
    // Nothing is pulled from outside the machine: the node's registries are a closed port.
    spec["tenants"] = json!([{ "name": "ghost", "image": "seclab.test/ghost:1" }]);
    node.place(&mut spec["tenants"][0]);
    lab.write(&spec);
    let output = lab.seclab(&["apply", "--wait", "--timeout", "40s"]);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{text}");
    for expected in [
        "timed out after 40s",
        "Deployment.apps real-ghost/netdelta-ghost",
        "(tenant ghost): container netdelta:",
        "seclab.test/ghost:1",
        "last event Failed:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("ErrImagePull") || text.contains("ImagePullBackOff"), "{text}");

    let status = lab.seclab(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("waiting  Deployment.apps real-ghost/netdelta-ghost"), "{text}");
    assert!(text.contains("(tenant ghost): container netdelta: "), "{text}");
    // The kubelet alternates between the two while it backs off.
    assert!(text.contains("ImagePullBackOff") || text.contains("ErrImagePull"), "{text}");
    let json = lab.seclab(&["status", "--output", "json"]);
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let tenants = document["components"].as_array().unwrap().iter().find(|c| c["name"] == "tenants").unwrap();
    let deployment = tenants["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"].as_str().unwrap().starts_with("Deployment.apps"));
    let pods = deployment.unwrap()["pods"].as_str().unwrap();
    assert!(pods.contains("ImagePullBackOff") || pods.contains("ErrImagePull"), "{document}");
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// Runs the scan group's CronJob once, as a Job named `job`, and waits until it completes.
fn trigger_scan(namespace: &str, cron_job: &str, job: &str) {
    kubectl(&["create", "job", job, "-n", namespace, &format!("--from=cronjob/{cron_job}")]);
    let done =
        kubectl_output(&["wait", "-n", namespace, "--for=condition=Complete", &format!("job/{job}"), "--timeout=120s"]);
    assert!(
        done.status.success(),
        "the scan Job {job} did not complete: {}\n{}\nlogs:\n{}",
        String::from_utf8_lossy(&done.stderr),
        Cluster::get().describe(namespace),
        String::from_utf8_lossy(&kubectl_output(&["logs", "-n", namespace, &format!("job/{job}")]).stdout)
    );
}

/// The whole scan loop with nothing done by hand: a scan group's CronJob runs nmap in a pod
/// on the real node against a tenant's app, writes its XML on the scan volume, and a running
/// `seclab watch` ingests it and sends the alert to a webhook on loopback. A port opened
/// between two scans is alerted.
#[test]
fn a_scan_cronjob_runs_nmap_on_the_real_node_and_watch_alerts_on_a_port_opened_between_scans() {
    let node = RealNode::get();
    let lab = small_lab("real-scan");
    let receiver = Receiver::start("http", &lab.dir.path().join("hook"));
    let mut spec = lab.spec();
    spec["tenants"] = json!([{ "name": "site", "image": "seclab.test/tenant-app:1", "port": 9004 }]);
    node.place(&mut spec["tenants"][0]);
    spec["alerts"] = json!({ "routes": [{ "name": "hook",
        "webhook": { "url": format!("http://127.0.0.1:{}/alerts", receiver.port) } }] });
    spec["scanDatabase"] = json!({ "path": "scans.db", "scanVolume": "data" });
    lab.write(&spec);
    lab.run(&["apply", "--wait", "--timeout", "120s"], 0);
    let app = wait_running(&lab.name, "app.kubernetes.io/name=netdelta", &node.name, Duration::from_secs(30));
    let target: IpAddr = app["status"]["podIP"].as_str().unwrap().parse().unwrap();
    node.assert_routed_to_bridge(target);

    // The group scans the app's pod: the app's port is open, the next one closed.
    spec["tenants"][0]["scans"] = json!([{ "name": "dmz", "targets": [target.to_string()], "ports": "9004,9005",
        "nmapArgs": ["-sT", "-n", "-Pn"], "image": "seclab.test/nmap:debian12", "schedule": "0 2 * * *",
        "alerts": ["hook"] }]);
    lab.write(&spec);
    lab.run(&["apply", "--wait", "--timeout", "60s"], 0);
    // The scan volume's directory on this machine is the scan directory watch reads.
    let scans = lab.dir.path().join("data/scans");
    std::fs::create_dir_all(&scans).unwrap();
    let watch = Watch::start(&lab, &["--listen", "127.0.0.1:0"], &[]);
    watch.wait_ready();

    trigger_scan(&lab.name, "site-dmz-scan", "scan-1");
    let files = |dir: &std::path::Path| {
        std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect::<Vec<_>>())
    };
    let group = scans.join("site/dmz");
    let written = files(&group).unwrap_or_default();
    assert_eq!(written.len(), 1, "one complete scan file, no partial one: {written:?}");
    assert!(written[0].ends_with("Z.xml") && !written[0].starts_with('.'), "{written:?}");
    let baseline = eventually(Duration::from_secs(30), || {
        watch.metric("seclab_scans_ingested_total", &[("result", "ingested")]) >= 1.0
    });
    assert!(baseline, "watch did not ingest the first scan:\n{}", watch.log());

    // A port opens in the app's pod; the second scan finds it and the webhook hears of it.
    let pod = app["metadata"]["name"].as_str().unwrap();
    kubectl(&["exec", "-n", &lab.name, pod, "--", "sh", "-c", "nohup python3 -m http.server 9005 >/dev/null 2>&1 &"]);
    std::thread::sleep(Duration::from_secs(1)); // the listener binds; the scan is a second later
    trigger_scan(&lab.name, "site-dmz-scan", "scan-2");
    let received = receiver.wait_for(1);
    let alerts: Vec<serde_json::Value> = received
        .iter()
        .map(|r| {
            let request: serde_json::Value = serde_json::from_str(r).unwrap();
            serde_json::from_str(request["body"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert!(
        alerts.iter().any(|a| a["kind"] == "port-opened"
            && a["address"] == target.to_string()
            && a["summary"].as_str().is_some_and(|s| s.contains("9005"))),
        "no alert for port 9005 opened on {target}: {alerts:#?}\n{}",
        watch.log()
    );
    assert_eq!(files(&group).unwrap().len(), 2);
    drop(watch);

    // A scan that fails (nmap refuses an option's value) fails its Job and leaves no partial file.
    spec["tenants"][0]["scans"][0]["nmapArgs"] = json!(["-sT", "-n", "-Pn", "--version-intensity=12"]);
    lab.write(&spec);
    lab.run(&["apply"], 0);
    kubectl(&["create", "job", "scan-3", "-n", &lab.name, "--from=cronjob/site-dmz-scan"]);
    let failed = kubectl_output(&["wait", "-n", &lab.name, "--for=condition=Failed", "job/scan-3", "--timeout=120s"]);
    assert!(failed.status.success(), "{}", Cluster::get().describe(&lab.name));
    assert_eq!(files(&group).unwrap().len(), 2, "no partial or new file: {:?}", files(&group));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// The value of `key` in the Secret `name`, as the admin reads it.
fn secret(namespace: &str, name: &str, key: &str) -> String {
    String::from_utf8(support::node::secret_value(namespace, name, key)).unwrap()
}

/// `tenantDatabase: inCluster` for real: the MariaDB server starts on the real node, the
/// setup Job creates each tenant's database and user, and each tenant's app becomes Ready
/// only through its own database with the password seclab generated; a tenant added later
/// gets its database (the Job runs again) and its app becomes Ready. No password is in a
/// log or an event.
#[test]
fn the_tenants_database_server_and_setup_job_run_for_real_and_each_app_is_ready_through_its_own_database() {
    let node = RealNode::get();
    let mut lab = small_lab("real-db");
    let mut spec = lab.spec();
    let tenant = |name: &str, port: u16| {
        let mut tenant =
            json!({ "name": name, "image": "seclab.test/tenant-app:1", "port": port, "readinessPath": "/ready" });
        node.place(&mut tenant);
        tenant
    };
    spec["tenants"] = json!([tenant("alpha", 9004)]);
    spec["tenantDatabase"] =
        json!({ "mode": "inCluster", "engine": "mariadb", "image": "seclab.test/mariadb:debian12", "volume": "data" });
    node.place(&mut spec["tenantDatabase"]);
    lab.write(&spec);
    lab.run(&["apply", "--wait", "--timeout", "240s"], 0);
    let namespace = lab.name.as_str();
    wait_running(namespace, "app.kubernetes.io/name=mariadb", &node.name, Duration::from_secs(10));
    let ready = |tenant: &str| {
        pods(namespace, &format!("seclab.dev/tenant={tenant}")).iter().any(|p| {
            runs_for_real(p, &node.name)
                && p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
    };
    assert!(ready("alpha"), "{}", Cluster::get().describe(namespace));
    let setup_jobs = || {
        let list: serde_json::Value =
            serde_json::from_str(&kubectl(&["get", "jobs", "-n", namespace, "-o", "json"])).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["metadata"]["name"].as_str().unwrap().to_owned())
            .filter(|name| name.starts_with("mysql-netdelta-setup-"))
            .collect::<Vec<_>>()
    };
    let first_jobs = setup_jobs();
    assert_eq!(first_jobs.len(), 1, "{first_jobs:?}");

    // A tenant joins: the setup Job runs again, under a new name, and the new app is Ready.
    // Its password ends in a newline (a Secret made from a file written by `echo`): the server
    // gets every byte of it, as the app does.
    let mut beta = tenant("beta", 9005);
    beta["database"] = json!({ "password": "env:BETA_DB_PASSWORD" });
    spec["tenants"].as_array_mut().unwrap().push(beta);
    lab.write(&spec);
    lab.env.push(("BETA_DB_PASSWORD".into(), "beta-password-ends-in-a-newline-4d1e\n".into()));
    lab.run(&["apply", "--wait", "--timeout", "240s"], 0);
    let second_jobs = setup_jobs();
    assert!(second_jobs.iter().any(|j| !first_jobs.contains(j)), "the setup Job did not run again: {second_jobs:?}");
    assert!(ready("beta"), "{}", Cluster::get().describe(namespace));
    assert!(ready("alpha"));

    // Each app reached its own database with its own password; none is printed anywhere.
    let passwords = [
        secret(namespace, "real-db-alpha-db", "password"),
        secret(namespace, "real-db-beta-db", "password"),
        secret(namespace, "real-db-mysql-netdelta-root", "password"),
    ];
    let mut seen = kubectl(&["get", "events", "-n", namespace, "-o", "json"]);
    let all: serde_json::Value =
        serde_json::from_str(&kubectl(&["get", "pods", "-n", namespace, "-o", "json"])).unwrap();
    for pod in all["items"].as_array().unwrap() {
        let name = pod["metadata"]["name"].as_str().unwrap();
        seen.push_str(&String::from_utf8_lossy(
            &kubectl_output(&["logs", "-n", namespace, name, "--all-containers"]).stdout,
        ));
    }
    assert!(seen.contains("tenant database(s) ready"), "the setup Job's log is among what was read");
    assert!(passwords[1].ends_with('\n'), "the newline reached beta's Secret as it reached its app");
    for password in &passwords {
        assert!(password.len() >= 16, "a generated password");
        assert!(!seen.contains(password.as_str()), "a password is in a log or an event");
    }

    // destroy keeps the data and the generated passwords it was made with; the next apply
    // reaches the same data directory again (the images apply a root password to an empty
    // one only).
    let kept = lab.run(&["destroy", "--yes"], 0);
    assert!(kept.contains("Kept"), "{kept}");
    lab.run(&["apply", "--wait", "--timeout", "240s"], 0);
    assert_eq!(secret(namespace, "real-db-mysql-netdelta-root", "password"), passwords[2]);
    assert!(ready("alpha") && ready("beta"), "{}", Cluster::get().describe(namespace));
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

/// One real node per machine: a second cluster's `up` refuses before it starts anything, and
/// names the cluster that has the node and how to stop it.
#[test]
fn a_second_cluster_cannot_take_the_real_node() {
    let node = RealNode::get();
    let other = tempfile::tempdir().unwrap();
    let output = Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testcluster"))
        .arg("up")
        .env("SECLAB_TESTCLUSTER_DIR", other.path().join("cluster"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let owner = Cluster::get().dir.display().to_string();
    for expected in [
        format!("a real node already runs for the test cluster in {owner} (one per machine)"),
        format!("SECLAB_TESTCLUSTER_DIR={owner}"),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(!other.path().join("cluster/pids").exists(), "nothing was started");
    let ready = kubectl(&["get", "node", &node.name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]);
    assert_eq!(ready, "True", "the first cluster's node is untouched");
}
