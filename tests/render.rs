//! `seclab validate`, `render`, `init` and `schema` on good files.

mod support;

use serde::Deserialize;
use serde_json::Value;
use support::{EXAMPLES, example, lab_dir, root, run};

fn render_json(file: &std::path::Path) -> Value {
    let (code, stdout, stderr) = run(&root(), &["--file", file.to_str().unwrap(), "render", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("render --output json prints one JSON document")
}

#[test]
fn every_example_validates() {
    for name in EXAMPLES {
        let (code, stdout, stderr) = run(&root(), &["--file", example(name).to_str().unwrap(), "validate"]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.contains("is valid"), "{name}: {stdout}");
    }
}

#[test]
fn every_example_renders_the_same_bytes_twice() {
    for name in EXAMPLES {
        let file = example(name);
        let args = ["--file", file.to_str().unwrap(), "render"];
        let (first, second) = (run(&root(), &args), run(&root(), &args));
        assert_eq!(first.0, 0, "{name}: {}", first.2);
        assert_eq!(first.1, second.1, "{name}: two renders differ");
        insta::assert_snapshot!(format!("render_{name}"), first.1);
    }
}

/// Serialises a typed object back to JSON, for comparison with what was rendered.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(manifest: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(manifest.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Every built-in object deserialises into its k8s-openapi type and loses no field doing so
/// (a misspelt or misplaced field would be dropped, and the comparison would fail).
#[test]
fn every_rendered_object_is_a_valid_kubernetes_object() {
    use k8s_openapi::api::{
        apps::v1 as apps, batch::v1 as batch, core::v1 as core, networking::v1 as net, rbac::v1 as rbac,
    };
    let mut kinds = std::collections::BTreeSet::new();
    for name in EXAMPLES {
        let rendered = render_json(&example(name));
        for manifest in rendered["objects"].as_array().unwrap() {
            let api_version = manifest["apiVersion"].as_str().unwrap();
            let kind = manifest["kind"].as_str().unwrap();
            kinds.insert(format!("{api_version}/{kind}"));
            let typed = match (api_version, kind) {
                ("v1", "Namespace") => round_trip::<core::Namespace>(manifest),
                ("v1", "PersistentVolume") => round_trip::<core::PersistentVolume>(manifest),
                ("v1", "PersistentVolumeClaim") => round_trip::<core::PersistentVolumeClaim>(manifest),
                ("v1", "Service") => round_trip::<core::Service>(manifest),
                ("v1", "ServiceAccount") => round_trip::<core::ServiceAccount>(manifest),
                ("v1", "ConfigMap") => round_trip::<core::ConfigMap>(manifest),
                ("apps/v1", "Deployment") => round_trip::<apps::Deployment>(manifest),
                ("apps/v1", "StatefulSet") => round_trip::<apps::StatefulSet>(manifest),
                ("batch/v1", "CronJob") => round_trip::<batch::CronJob>(manifest),
                ("batch/v1", "Job") => round_trip::<batch::Job>(manifest),
                ("networking.k8s.io/v1", "Ingress") => round_trip::<net::Ingress>(manifest),
                ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::Role>(manifest),
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<rbac::RoleBinding>(manifest),
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<rbac::ClusterRole>(manifest),
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                    round_trip::<rbac::ClusterRoleBinding>(manifest)
                }
                // A custom resource: no k8s-openapi type; its shape is checked by the cluster tests.
                ("elasticsearch.k8s.elastic.co/v1", "Elasticsearch") => Ok(manifest.clone()),
                _ => panic!("{name}: add {api_version}/{kind} to this test"),
            };
            let typed = typed.unwrap_or_else(|e| panic!("{name}: {kind} {}: {e}", manifest["metadata"]["name"]));
            assert_eq!(&typed, manifest, "{name}: {kind} {} changed in a round trip", manifest["metadata"]["name"]);
        }
    }
    for expected in [
        "apps/v1/StatefulSet",
        "batch/v1/CronJob",
        "batch/v1/Job",
        "v1/PersistentVolume",
        "elasticsearch.k8s.elastic.co/v1/Elasticsearch",
    ] {
        assert!(kinds.contains(expected), "no example renders {expected}: {kinds:?}");
    }
}

#[test]
fn every_object_carries_the_lab_labels() {
    let rendered = render_json(&example("homelab.yaml"));
    for manifest in rendered["objects"].as_array().unwrap() {
        let labels = &manifest["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "seclab", "{manifest}");
        assert_eq!(labels["app.kubernetes.io/part-of"], "homelab", "{manifest}");
        assert!(labels["app.kubernetes.io/component"].is_string(), "{manifest}");
    }
}

#[test]
fn the_homelab_matches_the_cortex_seed() {
    let rendered = render_json(&example("homelab.yaml"));
    let objects = rendered["objects"].as_array().unwrap();
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let es = find("Elasticsearch", "esquickstart");
    assert_eq!(es["spec"]["version"], "7.10.2");
    assert_eq!(es["spec"]["nodeSets"][0]["count"], 1);
    assert_eq!(es["spec"]["nodeSets"][0]["config"]["node.store.allow_mmap"], false);
    let pv = find("PersistentVolume", "homelab-cortex-data");
    assert_eq!(pv["spec"]["hostPath"]["path"], "/mnt/data");
    assert_eq!(pv["spec"]["accessModes"][0], "ReadWriteMany");
    let config = find("ConfigMap", "cortex-config")["data"]["application.conf"].as_str().unwrap();
    for line in [
        "runners = [kubernetes]",
        "persistentVolumeClaimName = \"data\"",
        "uri = \"https://esquickstart-es-http:9200\"",
        // A one-node search cluster stays green; Cortex starts with the analyzers of its catalog.
        "nbreplicas = 0",
        "analyzer.urls = [\"https://catalogs.download.strangebee.com/latest/json/analyzers.json\"]",
        "responder.urls = [\"https://catalogs.download.strangebee.com/latest/json/responders.json\"]",
    ] {
        assert!(config.contains(line), "{line} missing from\n{config}");
    }
    let cortex = find("Deployment", "cortex");
    let env = cortex["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(env.contains("esquickstart-es-elastic-user"), "{env}");
    assert_eq!(find("Ingress", "registry")["spec"]["rules"][0]["host"], "registry.k.my.domain");
    assert_eq!(find("Ingress", "cortex")["spec"]["rules"][0]["host"], "cortex.k.my.domain");
    let files: Vec<&str> =
        rendered["nodeFiles"].as_array().unwrap().iter().map(|f| f["installPath"].as_str().unwrap()).collect();
    assert!(
        files.contains(&"/etc/rancher/k3s/registries.yaml") && files.contains(&"/etc/docker/daemon.json"),
        "{files:?}"
    );
    let dnsmasq = rendered["nodeFiles"].as_array().unwrap().iter().find(|f| f["name"] == "dnsmasq.conf").unwrap();
    assert!(dnsmasq["content"].as_str().unwrap().contains("address=/k.my.domain/192.168.1.20"));
}

#[test]
fn scan_cronjobs_write_complete_files_atomically() {
    let rendered = render_json(&example("tenants.yaml"));
    let cronjob = rendered["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "CronJob" && o["metadata"]["name"] == "barbican-dmz-scan")
        .expect("a CronJob per group");
    assert_eq!(cronjob["spec"]["schedule"], "0 2 * * *");
    assert_eq!(cronjob["spec"]["timeZone"], "Europe/London");
    let container = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<&str> = container["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let script = command[2];
    assert!(script.contains("partial=\"$dir/.$start.xml.partial\""), "{script}");
    assert!(script.contains("nmap --host-timeout 30m -oX \"$partial\" \"$@\" &"), "{script}");
    assert!(script.contains("mv \"$partial\" \"$dir/$start.xml\""), "{script}");
    assert_eq!(
        &command[4..],
        ["-sV", "-p", "21-23,25,53,80,110,143,443,445,3306,3389,8000-8100", "198.51.100.0/28", "198.51.100.40-50"]
    );
    // It mounts its group's directory only.
    assert_eq!(container["volumeMounts"][0]["subPath"], "scans/barbican/dmz");
}

#[test]
fn secrets_are_referenced_and_never_rendered() {
    let dir = lab_dir(&std::fs::read_to_string(example("tenants.yaml")).unwrap());
    let (code, stdout, stderr) = seclab_env(dir.path(), &["render"], "BARBICAN_DB_PASSWORD", "s3cr3t-value");
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("s3cr3t-value"));
    assert!(
        stdout.contains("#   netdelta/netdelta-barbican-db key password: from env:BARBICAN_DB_PASSWORD"),
        "{stdout}"
    );
    let rendered = render_json(&example("opensearch.yaml"));
    let secrets: Vec<String> = rendered["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}/{}", s["name"].as_str().unwrap(), s["key"].as_str().unwrap()))
        .collect();
    for expected in
        ["opensearch-transport-certs/tls.key", "opensearch-http-certs/tls.crt", "oslab-opensearch-admin/password"]
    {
        assert!(secrets.contains(&expected.to_string()), "{expected} missing from {secrets:?}");
    }
}

fn seclab_env(dir: &std::path::Path, args: &[&str], key: &str, value: &str) -> (i32, String, String) {
    let output = support::seclab(dir).args(args).env(key, value).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn render_out_writes_one_file_per_object_and_replaces_its_own_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("manifests");
    let file = example("homelab.yaml");
    let args = ["--file", file.to_str().unwrap(), "render", "--out", out.to_str().unwrap()];
    let (code, stdout, stderr) = run(dir.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("wrote 14 objects and 3 node files under"), "{stdout}");
    assert!(out.join("cortex/deployment-cortex.yaml").is_file());
    assert!(out.join("cluster/persistentvolume-homelab-cortex-data.yaml").is_file());
    assert!(out.join("node/registries.yaml").is_file());
    // A second render replaces the first's files, and stops at a file it did not write.
    assert_eq!(run(dir.path(), &args).0, 0);
    std::fs::write(out.join("cortex/notes.yaml"), "mine").unwrap();
    let (code, _, stderr) = run(dir.path(), &args);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("holds files seclab render did not write: cortex/notes.yaml;"), "{stderr}");
    assert!(stderr.contains("pass --force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(out.join("cortex/notes.yaml")).unwrap(), "mine");
    let forced: Vec<&str> = args.iter().copied().chain(["--force"]).collect();
    assert_eq!(run(dir.path(), &forced).0, 0);
    assert!(!out.join("cortex/notes.yaml").exists(), "--force replaces the whole directory");

    let foreign = dir.path().join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    let (code, _, stderr) =
        run(dir.path(), &["--file", file.to_str().unwrap(), "render", "--out", foreign.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("holds files seclab render did not write: notes.txt;"), "{stderr}");
    assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).unwrap(), "keep me");
}

#[test]
fn templates_directory_overrides_and_extends_the_built_in_set() {
    let dir = lab_dir(&std::fs::read_to_string(example("homelab.yaml")).unwrap());
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(templates.join("registry")).unwrap();
    std::fs::create_dir_all(templates.join("extra")).unwrap();
    std::fs::write(templates.join("registry/registry.yaml"), "").unwrap();
    std::fs::write(
        templates.join("extra/note.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: note\n  namespace: {{ cluster.namespace }}\ndata:\n  lab: {{ lab.name }}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["--templates", "templates", "render", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let rendered: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<String> = rendered["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
        .collect();
    assert!(names.contains(&"\"ConfigMap\"/\"note\"".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("registry")), "the override emptied the registry: {names:?}");
}

#[test]
fn template_errors_name_the_template_file_and_line() {
    let dir = lab_dir(&std::fs::read_to_string(example("homelab.yaml")).unwrap());
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(templates.join("cortex")).unwrap();
    std::fs::write(
        templates.join("cortex/cortex.yaml"),
        "apiVersion: v1\nkind: ConfigMap\n{{ cortex.no_such_field }}\n",
    )
    .unwrap();
    let (code, _, stderr) = run(dir.path(), &["--templates", "templates", "render"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("templates/cortex/cortex.yaml:3"), "{stderr}");
    assert!(stderr.contains("undefined value"), "{stderr}");

    std::fs::write(templates.join("cortex/cortex.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
        .unwrap();
    let (code, _, stderr) = run(dir.path(), &["--templates", "templates", "render"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("templates/cortex/cortex.yaml rendered an invalid object"), "{stderr}");
    assert!(stderr.contains("ConfigMap x has no `metadata.namespace`"), "{stderr}");
}

/// `plan` and `apply` render while they read the cluster: a template error is the error
/// reported, and it stops the reading (here, of an API server that accepts connections and
/// never answers, which would hold the command for the 30 s connect timeout).
#[test]
fn a_template_error_stops_plan_and_apply_before_the_cluster_answers() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || silent.incoming().take(64).collect::<Vec<_>>());
    let dir = lab_dir(&std::fs::read_to_string(example("homelab.yaml")).unwrap());
    std::fs::write(
        dir.path().join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
             clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n"
        ),
    )
    .unwrap();
    let templates = dir.path().join("templates/cortex");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("cortex.yaml"), "apiVersion: v1\nkind: ConfigMap\n{{ cortex.no_such_field }}\n")
        .unwrap();
    for command in [&["plan"][..], &["apply", "--yes"]] {
        let output = support::seclab(dir.path())
            .args(["--kubeconfig", "kubeconfig", "--templates", "templates"])
            .args(command)
            .timeout(std::time::Duration::from_secs(15))
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{command:?} (killed after 15 s if no code): {stderr}");
        assert!(stderr.contains("templates/cortex/cortex.yaml:3"), "{command:?}: {stderr}");
        assert!(!stderr.contains("127.0.0.1"), "the cluster is not the error: {stderr}");
    }
    drop(held);
}

#[test]
fn init_writes_a_starter_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run(dir.path(), &["init"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("wrote seclab.yaml"), "{stdout}");
    assert_eq!(run(dir.path(), &["validate"]).0, 0);
    std::fs::write(dir.path().join("seclab.yaml"), "mine").unwrap();
    let (code, _, stderr) = run(dir.path(), &["init"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("seclab.yaml already exists; pass --force to replace it"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("seclab.yaml")).unwrap(), "mine");
    assert_eq!(run(dir.path(), &["init", "--force"]).0, 0);
}

#[test]
fn init_homelab_writes_the_cortex_home_lab_with_its_operator_for_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run(dir.path(), &["init", "--homelab"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("seclab bootstrap --dry-run"), "{stdout}");
    let (code, stdout, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("lab `homelab` renders"), "{stdout}");
    let text = std::fs::read_to_string(dir.path().join("seclab.yaml")).unwrap();
    let spec: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(spec["elasticsearch"]["version"], "7.10.2");
    assert_eq!(spec["operators"][1]["name"], "eck");
    let (code, stdout, _) = run(dir.path(), &["render", "--output", "json"]);
    assert_eq!(code, 0);
    let rendered: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let node_files: Vec<&str> =
        rendered["nodeFiles"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(node_files, ["daemon.json", "dnsmasq.conf", "registries.yaml"]);
}

#[test]
fn a_ten_line_file_yields_a_complete_lab() {
    let dir = lab_dir(
        "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: tiny\ncluster:\n  domain: lab.example.org\n",
    );
    let (code, stdout, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("renders 14 objects"), "{stdout}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, _) = run(&root(), &["completions", shell]);
        assert_eq!(code, 0);
        assert!(stdout.contains("seclab"), "{shell}");
    }
}

#[test]
fn a_pipe_closed_early_ends_seclab_quietly() {
    use std::io::{BufRead, BufReader};
    let tenants: String = (0..300).map(|i| format!("  - name: site{i}\n")).collect();
    let dir =
        lab_dir(&format!("apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: big\ntenants:\n{tenants}"));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("seclab"))
        .current_dir(dir.path())
        .arg("render")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(!first.is_empty());
    // The reader is gone (as `seclab render | head -1` leaves it); seclab has more to write.
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn completions_written_to_a_closed_pipe_end_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("seclab"))
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_usage_error_with_json_output_prints_one_json_document() {
    let dir = lab_dir("apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n");
    let (code, stdout, stderr) = run(dir.path(), &["--output", "json", "plan", "--bogus"]);
    assert_eq!(code, 2);
    let document: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    assert_eq!(document["usage"], true);
    assert!(document["error"].as_str().unwrap().contains("--bogus"), "{document}");
    assert!(stderr.contains("--bogus"), "the message still goes to stderr: {stderr}");
    let (code, stdout, _) = run(dir.path(), &["plan", "--bogus"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "text output: nothing on stdout");
    let (code, stdout, _) = run(dir.path(), &["-o", "json", "scan"]);
    assert_eq!(code, 2);
    assert!(serde_json::from_str::<serde_json::Value>(&stdout).is_ok(), "a missing subcommand: {stdout}");
    // plan asks nothing, so it takes no --yes.
    let (code, _, stderr) = run(dir.path(), &["plan", "--yes"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
}

/// A kind of the lab's own CRD takes the scope that CRD gives it: a cluster-scoped custom
/// kind renders without a namespace (seclab's permissions name it cluster-wide, by the CRD's
/// plural), and one that sets a namespace is refused naming its template and the CRD. A
/// built-in kind's scope comes from k8s-openapi, its API group included.
#[test]
fn a_custom_kind_has_the_scope_its_crd_gives_it() {
    let dir = lab_dir("apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n");
    let extra = dir.path().join("templates/extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("crd.yaml"), support::test_crd("Gizmo", "gizmoes", "Cluster")).unwrap();
    let gizmo = "apiVersion: test.seclab.dev/v1\nkind: Gizmo\nmetadata:\n  name: g\nspec: {}\n";
    std::fs::write(extra.join("gizmo.yaml"), gizmo).unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["--templates", "templates", "render", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let rendered: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let found = rendered["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Gizmo").unwrap().clone();
    assert!(found["metadata"].get("namespace").is_none(), "{found}");
    let (code, stdout, stderr) = run(dir.path(), &["--templates", "templates", "render", "--rbac-for-seclab"]);
    assert_eq!(code, 0, "{stderr}");
    let role = stdout.split("---").find(|d| d.contains("kind: ClusterRole\n")).unwrap();
    assert!(role.contains("gizmoes") && role.contains("- g\n"), "by name, by the CRD's plural: {role}");

    let namespaced = gizmo.replace("  name: g\n", "  name: g\n  namespace: lab\n");
    std::fs::write(extra.join("gizmo.yaml"), namespaced).unwrap();
    let (code, _, stderr) = run(dir.path(), &["--templates", "templates", "validate"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("extra/gizmo.yaml")
            && stderr.contains("Gizmo g is cluster-scoped but sets namespace `lab` (as its CustomResourceDefinition gizmoes.test.seclab.dev says)"),
        "{stderr}"
    );
    // A kind of another group than the built-in one of the same name is not taken for it.
    let other = "apiVersion: example.dev/v1\nkind: Namespace\nmetadata:\n  name: n\n  namespace: lab\n";
    std::fs::write(extra.join("gizmo.yaml"), other).unwrap();
    let (code, _, stderr) = run(dir.path(), &["--templates", "templates", "render"]);
    assert_eq!(code, 0, "{stderr}");
    let core = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  namespace: lab\n";
    std::fs::write(extra.join("gizmo.yaml"), core).unwrap();
    let (code, _, stderr) = run(dir.path(), &["--templates", "templates", "render"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Namespace n is cluster-scoped but sets namespace `lab`"), "{stderr}");
}

/// A command's help lists the global flags it reads and no other; the others are still
/// accepted there, as scripts may put them before any command.
#[test]
fn each_help_lists_only_the_global_flags_its_command_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (&["init"], &["--file", "--output", "--verbose"], &["--kubeconfig", "--context", "--templates"]),
        (&["validate"], &["--file", "--templates"], &["--kubeconfig", "--context"]),
        (&["plan"], &["--file", "--templates", "--kubeconfig", "--context"], &[]),
        (&["scan", "diff"], &["--file", "--output"], &["--kubeconfig", "--context", "--templates"]),
        (&["schema"], &["--verbose"], &["--file", "--output", "--kubeconfig"]),
        (&["certs", "status"], &["--kubeconfig", "--templates"], &[]),
    ];
    for (command, listed, hidden) in cases {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let (code, help, _) = run(dir.path(), &args);
        assert_eq!(code, 0, "{args:?}");
        for flag in *listed {
            assert!(help.contains(flag), "{command:?} reads {flag}: {help}");
        }
        for flag in *hidden {
            assert!(!help.contains(flag), "{command:?} does not read {flag}: {help}");
        }
    }
    let (code, _, stderr) = run(dir.path(), &["init", "--kubeconfig", "unused", "--file", "lab.yaml"]);
    assert_eq!(code, 0, "a hidden global flag is still accepted: {stderr}");
}

#[test]
fn an_error_keeps_its_causes_in_text_and_in_one_json_document() {
    let dir = lab_dir("apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n");
    // A kubeconfig naming a loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = dir.path().join("dead.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: not-a-secret\ncontexts:\n- name: dead\n  context: {{cluster: dead, user: u}}\ncurrent-context: dead\n"
        ),
    )
    .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["--kubeconfig", kubeconfig, "plan"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let server = format!("cannot reach the API server https://127.0.0.1:{port}/ (context dead of {kubeconfig})");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(&server), "{stderr}");
    assert!(lines.iter().any(|l| l.starts_with("  caused by: ") && l.contains("Connection refused")), "{stderr}");
    assert_eq!(
        lines.len(),
        stderr.lines().filter(|l| l.starts_with("error: ") || l.starts_with("  caused by: ")).count(),
        "only the error and its causes: {stderr}"
    );

    let (code, stdout, _) = run(dir.path(), &["--kubeconfig", kubeconfig, "--output", "json", "plan"]);
    assert_eq!(code, 1);
    let document: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    let causes = document["errors"][0]["causes"].as_array().unwrap();
    assert!(causes.iter().any(|c| c.as_str().unwrap().contains("Connection refused")), "{document}");

    let (_, _, stderr) = run(dir.path(), &["--kubeconfig", "no-such.kubeconfig", "plan"]);
    assert!(stderr.starts_with("error: cannot read the kubeconfig no-such.kubeconfig\n  caused by: "), "{stderr}");
}

/// Placement (`nodeSelector`, `tolerations`, `resources`) reaches the pod spec of every
/// workload seclab renders, and each object stays a valid Kubernetes object.
#[test]
fn placement_reaches_every_workload_pod_spec() {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch};
    let placement = |node: &str| {
        format!(
            "  nodeSelector: {{kubernetes.io/hostname: {node}}}\n  tolerations: [{{key: dedicated, operator: Equal, value: {node}, effect: NoSchedule}}]\n  resources: {{requests: {{cpu: 250m, memory: 256Mi}}, limits: {{memory: 1Gi}}}}\n"
        )
    };
    let indented = |text: String| text.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let file = format!(
        "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: placed\nregistry:\n{}elasticsearch:\n  mode: opensearch\n  volume: data\n{}cortex:\n{}tenantDatabase:\n  engine: mariadb\n  volume: data\n{}tenants:\n  - name: site\n{}    scans:\n      - {{name: dmz, targets: [127.0.0.1], schedule: \"0 2 * * *\"}}\n",
        placement("disk"),
        placement("big"),
        placement("big"),
        placement("db"),
        indented(placement("apps")),
    );
    let dir = lab_dir(&file);
    let rendered = render_json(&dir.path().join("seclab.yaml"));
    let mut placed = Vec::new();
    for manifest in rendered["objects"].as_array().unwrap() {
        let kind = manifest["kind"].as_str().unwrap();
        let name = manifest["metadata"]["name"].as_str().unwrap();
        let (pod, typed) = match kind {
            "Deployment" => (&manifest["spec"]["template"]["spec"], round_trip::<apps::Deployment>(manifest)),
            "StatefulSet" => (&manifest["spec"]["template"]["spec"], round_trip::<apps::StatefulSet>(manifest)),
            "Job" => (&manifest["spec"]["template"]["spec"], round_trip::<batch::Job>(manifest)),
            "CronJob" => {
                (&manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"], round_trip::<batch::CronJob>(manifest))
            }
            _ => continue,
        };
        assert_eq!(&typed.unwrap_or_else(|e| panic!("{kind} {name}: {e}")), manifest, "{kind} {name}");
        let node =
            pod["nodeSelector"]["kubernetes.io/hostname"].as_str().unwrap_or_else(|| panic!("{kind} {name}: {pod}"));
        assert_eq!(pod["tolerations"][0]["value"], node, "{kind} {name}");
        let resources = &pod["containers"][0]["resources"];
        // Jobs that serve another workload (scans, the database's setup) share its node only.
        let expected = if matches!(kind, "Job" | "CronJob") {
            serde_json::Value::Null
        } else {
            serde_json::json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}})
        };
        assert_eq!(resources, &expected, "{kind} {name}");
        placed.push(format!("{kind}/{name}@{node}"));
    }
    placed.sort();
    let setup = placed.iter().find(|p| p.starts_with("Job/mysql-netdelta-setup-")).cloned().unwrap_or_default();
    assert_eq!(
        placed,
        [
            "CronJob/site-dmz-scan@apps",
            "Deployment/cortex@big",
            "Deployment/netdelta-site@apps",
            "Deployment/registry@disk",
            setup.as_str(),
            "StatefulSet/elasticsearch@big",
            "StatefulSet/mysql-netdelta@db",
        ]
    );
    assert!(setup.ends_with("@db"), "{setup}");

    // ECK makes the pods itself: the placement goes into its podTemplate.
    let eck = lab_dir(&format!(
        "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: eck\ncortex:\n  enabled: false\nelasticsearch:\n{}",
        placement("big")
    ));
    let rendered = render_json(&eck.path().join("seclab.yaml"));
    let es = rendered["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Elasticsearch").unwrap();
    let pod = &es["spec"]["nodeSets"][0]["podTemplate"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "big");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert_eq!(pod["containers"][0]["name"], "elasticsearch");
    assert_eq!(pod["containers"][0]["resources"]["limits"]["memory"], "1Gi");
}

/// Each JVM's heap is half its container's memory, where nothing else sizes it: OpenSearch,
/// Cortex, and Elasticsearch before 7.11 (later ones size it themselves; ECK's default 2 GiB
/// suits the 1 GiB of jvm.options).
#[test]
fn each_jvm_heap_is_half_its_memory_where_nothing_else_sizes_it() {
    let heap = |elasticsearch: &str, cortex: &str| {
        let dir = lab_dir(&format!(
            "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: heap\nelasticsearch:\n{elasticsearch}cortex:\n{cortex}"
        ));
        let rendered = render_json(&dir.path().join("seclab.yaml"));
        let objects = rendered["objects"].as_array().unwrap().clone();
        let env_of = |kind: &str, container: &Value, name: &str| {
            let env = container["env"].as_array().cloned().unwrap_or_default();
            let value = env.iter().find(|e| e["name"] == name).map(|e| e["value"].clone());
            (kind.to_owned(), value.unwrap_or(Value::Null))
        };
        objects
            .iter()
            .filter_map(|o| match o["kind"].as_str().unwrap() {
                "Elasticsearch" => Some(env_of(
                    "Elasticsearch",
                    &o["spec"]["nodeSets"][0]["podTemplate"]["spec"]["containers"][0],
                    "ES_JAVA_OPTS",
                )),
                "StatefulSet" => {
                    Some(env_of("OpenSearch", &o["spec"]["template"]["spec"]["containers"][0], "OPENSEARCH_JAVA_OPTS"))
                }
                "Deployment" if o["metadata"]["name"] == "cortex" => {
                    Some(env_of("Cortex", &o["spec"]["template"]["spec"]["containers"][0], "JAVA_OPTS"))
                }
                _ => None,
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let memory = |quantity: &str| format!("  resources: {{limits: {{memory: {quantity}}}}}\n");
    let options = |mebibytes: u32| Value::from(format!("-Xms{mebibytes}m -Xmx{mebibytes}m"));
    // ECK's defaults (2 GiB, jvm.options' 1 GiB heap) are left to ECK; Cortex gets 2 GiB.
    let defaults = heap("  name: es\n", "");
    assert_eq!(defaults["Elasticsearch"], Value::Null);
    assert_eq!(defaults["Cortex"], options(1024));
    let sized = heap(&format!("  name: es\n{}", memory("4Gi")), &memory("3Gi"));
    assert_eq!(sized["Elasticsearch"], options(2048));
    assert_eq!(sized["Cortex"], options(1536));
    let newer = heap(&format!("  name: es\n  version: 7.17.0\n{}", memory("4Gi")), "  version: 3.2.0\n");
    assert_eq!(newer["Elasticsearch"], Value::Null, "7.11 and later size their heap themselves");
    let opensearch = heap(&format!("  mode: opensearch\n{}", memory("3Gi")), "");
    assert_eq!(opensearch["OpenSearch"], options(1536));
    let chosen = heap("  mode: opensearch\n  javaOpts: -Xms700m -Xmx700m\n", "");
    assert_eq!(chosen["OpenSearch"], Value::from("-Xms700m -Xmx700m"));
}

/// A tenant's app gets its database under the variable names it reads.
#[test]
fn a_tenants_database_variables_take_the_names_the_app_reads() {
    let dir = lab_dir(
        "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: named\ntenantDatabase: {}\ntenants:\n  - name: site\n    database:\n      variables: {name: NETDELTA_DB, password: NETDELTA_DB_PASSWORD}\n",
    );
    let rendered = render_json(&dir.path().join("seclab.yaml"));
    let app = rendered["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "netdelta-site")
        .unwrap();
    let env = &app["spec"]["template"]["spec"]["containers"][0]["env"];
    let names: Vec<&str> = env.as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["NETDELTA_SITE", "NETDELTA_DB", "DB_HOST", "DB_USER", "NETDELTA_DB_PASSWORD"]);
    assert_eq!(env[1]["value"], "netdelta-site");
    assert_eq!(env[4]["valueFrom"]["secretKeyRef"]["name"], "named-site-db");
}

/// `init --file` names the file in the next commands it prints; the default file is found
/// spelt `seclab.yml` too, and its absence says both names.
#[test]
fn init_names_its_file_in_the_next_commands_and_seclab_yml_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = support::run(dir.path(), &["--file", "my lab.yaml", "init"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("then run `seclab --file 'my lab.yaml' validate` and `seclab --file 'my lab.yaml' render`"),
        "{out}"
    );
    std::fs::rename(dir.path().join("my lab.yaml"), dir.path().join("seclab.yml")).unwrap();
    let (code, out, err) = support::run(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("seclab.yml is valid"), "{out}");
    std::fs::remove_file(dir.path().join("seclab.yml")).unwrap();
    let (code, _, err) = support::run(dir.path(), &["validate"]);
    assert_ne!(code, 0);
    assert!(err.contains("seclab.yaml does not exist (nor does seclab.yml)"), "{err}");
}

/// The README's "Permissions" shows what `render --rbac-for-seclab` prints for the home lab.
#[test]
fn the_readme_shows_the_permissions_the_home_lab_needs() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("### Permissions").expect("a Permissions section")..];
    let block = section.split("```yaml\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
    let shown: Vec<Value> =
        serde_yaml::Deserializer::from_str(block).map(|document| Value::deserialize(document).unwrap()).collect();
    let (code, out, err) =
        run(&root(), &["--file", "examples/homelab.yaml", "render", "--rbac-for-seclab", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(Value::Array(shown), printed["items"], "update the README's Permissions from this command");
}

/// An `env:` or `file:` secret that cannot be read here: a warning for `validate` (it may run
/// where the secrets are not), an error naming each one before anything is done for the
/// commands that use them, the scan commands that only read the database excepted.
#[test]
fn a_secret_that_cannot_be_read_here_warns_in_validate_and_stops_plan_and_ingest() {
    let dir = lab_dir(
        "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n\
         tenants:\n  - name: site\n    database: { password: \"env:SECLAB_TEST_NEVER_SET\" }\n\
         alerts:\n  routes:\n    - name: hook\n      webhook: { url: \"https://hooks.example.org/x\", secret: \"file:hook.secret\" }\n",
    );
    let (code, out, err) = run(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(1 tenant, 0 scan groups)"), "one is singular: {out}");
    for expected in [
        "warning: tenants[0].database.password: `env:SECLAB_TEST_NEVER_SET`: the environment variable SECLAB_TEST_NEVER_SET is not set",
        "warning: alerts.routes[0].webhook.secret: `file:hook.secret`: cannot read",
    ] {
        assert!(out.contains(expected), "{expected:?} in {out}");
    }
    // Each command stops on the secrets it reads: apply not on the alerts', ingest on them.
    for (args, named) in [
        (&["plan"][..], "SECLAB_TEST_NEVER_SET"),
        (&["scan", "ingest"], "hook.secret"),
        (&["scan", "deliver"], "hook.secret"),
    ] {
        let (code, _, err) = run(dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.starts_with("error: 1 secret of seclab.yaml cannot be read here; nothing was changed"), "{err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
    let (code, _, err) = run(dir.path(), &["scan", "status"]);
    assert_eq!(code, 0, "reading the database needs no alert secret: {err}");
}
