//! `seclab bootstrap` against the real test control plane: node files under a temporary
//! root, a local operator manifest (a CRD, a namespace, RBAC and a Deployment) installed
//! under an inventory of its own, then the lab with a custom resource of the operator's kind.
//! Writes are counted in the API server's audit log; each test names its objects with its
//! own prefix, so that tests running side by side do not see each other's writes.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

use serde_json::{Value, json};
use support::cluster::{AuditEvent, Cluster};
use support::lab::{admin, api, audited};

/// An operator manifest like ECK's: its CRD, namespace, RBAC and controller Deployment.
fn operator_manifest(prefix: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{prefix}.seclab.dev
spec:
  group: {prefix}.seclab.dev
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {prefix}-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {prefix}-operator
  namespace: {prefix}-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {prefix}-operator
rules:
- apiGroups: [{prefix}.seclab.dev]
  resources: [gadgets, gadgets/status]
  verbs: [get, list, watch, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {prefix}-operator
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {prefix}-operator}}
subjects:
- {{kind: ServiceAccount, name: {prefix}-operator, namespace: {prefix}-system}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {prefix}-operator
  namespace: {prefix}-system
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {prefix}-operator}}
  template:
    metadata:
      labels: {{app: {prefix}-operator}}
    spec:
      serviceAccountName: {prefix}-operator
      containers:
      - name: manager
        image: registry.invalid/gadget-operator:1.0
"#
    )
}

/// A lab named `prefix` with a registry (so node files), the operator `manifest`, and a
/// template that renders one Gadget.
struct BootstrapLab {
    dir: tempfile::TempDir,
    prefix: String,
}

impl BootstrapLab {
    fn new(prefix: &str, manifest: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("operator.yaml"), operator_manifest(prefix)).unwrap();
        let lab = json!({
            "apiVersion": "seclab.dev/v1alpha1",
            "kind": "Lab",
            "metadata": { "name": prefix },
            "cluster": {
                "domain": "lab.test",
                "namespace": prefix,
                "nodeAddress": "127.0.0.1",
                "readiness": [{ "group": format!("{prefix}.seclab.dev"), "kind": "Gadget", "always": true }],
            },
            "storage": { "volumes": [{ "name": "data", "hostPath": format!("/tmp/{prefix}-data"), "size": "1Gi" }] },
            "elasticsearch": { "enabled": false },
            "cortex": { "enabled": false },
            "operators": [{ "name": format!("{prefix}-gadget"), "manifest": manifest }],
        });
        std::fs::write(dir.path().join("lab.yaml"), serde_yaml::to_string(&lab).unwrap()).unwrap();
        let template = dir.path().join("templates/extra/gadget.yaml");
        std::fs::create_dir_all(template.parent().unwrap()).unwrap();
        let gadget = format!(
            "apiVersion: {prefix}.seclab.dev/v1\nkind: Gadget\nmetadata:\n  name: g\n  namespace: {prefix}\nspec: {{}}\n"
        );
        std::fs::write(template, gadget).unwrap();
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        Self { dir, prefix: prefix.to_owned() }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Runs seclab as the cluster admin (an operator's RBAC needs more than seclab's role):
    /// `bootstrap` with k3s's kubeconfig under the root when the test put one there.
    fn seclab(&self, args: &[&str], env: &[(&str, &Path)]) -> (i32, String) {
        let mut command = support::seclab(self.dir.path());
        command.arg("--file").arg(self.dir.path().join("lab.yaml"));
        if args.first() != Some(&"bootstrap") || !self.root().join("etc/rancher/k3s/k3s.yaml").exists() {
            command.arg("--kubeconfig").arg(Cluster::get().admin_kubeconfig());
        }
        command
            .arg("--templates")
            .arg(self.dir.path().join("templates"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("SSL_CERT_FILE");
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code().unwrap_or(-1), text)
    }

    fn run(&self, args: &[&str], code: i32) -> String {
        let (got, text) = self.seclab(args, &[]);
        assert_eq!(got, code, "seclab {args:?} said:\n{text}");
        text
    }

    /// seclab's write requests against this test's objects among `events`.
    fn writes(&self, events: &[AuditEvent]) -> Vec<AuditEvent> {
        events
            .iter()
            .filter(|e| e.is_write() && e.user_agent.starts_with("seclab/"))
            .filter(|e| e.namespace.starts_with(&self.prefix) || e.name.contains(&self.prefix))
            .cloned()
            .collect()
    }

    async fn remove_operator(&self) {
        let client = admin().await;
        let prefix = &self.prefix;
        let delete = kube::api::DeleteParams::default();
        let kinds = [
            ("apiextensions.k8s.io", "CustomResourceDefinition", None, format!("gadgets.{prefix}.seclab.dev")),
            ("", "Namespace", None, format!("{prefix}-system")),
            ("rbac.authorization.k8s.io", "ClusterRole", None, format!("{prefix}-operator")),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding", None, format!("{prefix}-operator")),
            ("", "ConfigMap", Some("kube-system"), format!("seclab-operator-{prefix}-gadget")),
        ];
        for (group, kind, namespace, name) in kinds {
            let _ = api(&client, group, "v1", kind, namespace).delete(&name, &delete).await;
        }
    }
}

/// Every file under `root` with its content and modification time.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (String, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(path.clone(), (std::fs::read_to_string(&path).unwrap(), modified));
            }
        }
    }
    files
}

const EXISTING_REGISTRIES: &str =
    "# mirrors written by hand\nmirrors:\n  docker.io:\n    endpoint:\n      - \"https://mirror.lab.test\"\n";
const EXISTING_DAEMON: &str = "{\"log-driver\": \"journald\", \"insecure-registries\": [\"other.lab.test:5000\"]}\n";

#[tokio::test]
async fn bootstrap_writes_node_files_installs_its_operator_then_the_lab_and_a_second_run_changes_nothing() {
    let lab = BootstrapLab::new("t-boot", "file:./operator.yaml");
    let root = lab.root();
    std::fs::create_dir_all(root.join("etc/rancher/k3s")).unwrap();
    std::fs::create_dir_all(root.join("etc/docker")).unwrap();
    std::fs::write(root.join("etc/rancher/k3s/registries.yaml"), EXISTING_REGISTRIES).unwrap();
    std::fs::write(root.join("etc/docker/daemon.json"), EXISTING_DAEMON).unwrap();
    // k3s's admin kubeconfig: found without --kubeconfig or KUBECONFIG, as `k3s kubectl` does.
    std::fs::copy(Cluster::get().admin_kubeconfig(), root.join("etc/rancher/k3s/k3s.yaml")).unwrap();
    let root_arg = root.to_str().unwrap();

    // --dry-run: everything shown, nothing changed anywhere.
    let before = snapshot(&root);
    let events = audited(|| {
        let output = lab.run(&["bootstrap", "--dry-run", "--root", root_arg], 0);
        assert!(output.contains(&format!("using k3s's kubeconfig {root_arg}/etc/rancher/k3s/k3s.yaml")), "{output}");
        assert!(output.contains("create    /etc/systemd/system/seclab-watch.service: the systemd service"), "{output}");
        assert!(output.contains("+ExecStart=") && output.contains("+Restart=always"), "the unit as a diff: {output}");
        let output = lab.run(&["bootstrap", "--dry-run", "--no-service", "--root", root_arg], 0);
        assert!(!output.contains("seclab-watch"), "--no-service: {output}");
        assert!(output.contains("+ create  CustomResourceDefinition.apiextensions.k8s.io gadgets.t-boot.seclab.dev"));
        assert!(output.contains("+ create  Gadget.t-boot.seclab.dev t-boot/g"), "{output}");
        assert!(
            output.contains("+  registry.lab.test:") && output.contains("Dry run: nothing was changed."),
            "{output}"
        );
        assert!(output.contains("address=/lab.test/127.0.0.1"), "the router's line is printed: {output}");
    });
    assert!(lab.writes(&events).is_empty(), "--dry-run wrote: {:#?}", lab.writes(&events));
    assert_eq!(snapshot(&root), before, "--dry-run changed the root directory");

    let output = lab.run(&["bootstrap", "--root", root_arg, "--timeout", "120s"], 0);
    assert!(output.contains("Operator t-boot-gadget is ready") && output.contains("Bootstrapped lab t-boot"));
    assert!(output.contains("sudo systemctl restart k3s"), "{output}");
    assert!(output.contains("the service is written under") && output.contains("nothing was started"), "{output}");
    assert!(output.contains("docker push registry.lab.test/busybox:1.36"), "{output}");

    // The service that keeps the lab true: `seclab watch` on the file with k3s's kubeconfig
    // at its node path, always restarted, hardened, as systemd itself reads it.
    let unit_path = root.join("etc/systemd/system/seclab-watch.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let file = lab.dir.path().join("lab.yaml");
    let exec = format!("--file {} --kubeconfig /etc/rancher/k3s/k3s.yaml --templates", file.display());
    assert!(unit.contains(&exec) && unit.contains(" watch\n"), "{unit}");
    for line in ["Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict", "MemoryMax=", "ReadWritePaths=-"] {
        assert!(unit.contains(line), "{line} in {unit}");
    }
    let verify = std::process::Command::new("systemd-analyze").arg("verify").arg(&unit_path).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}\n{unit}");

    // The node files: merged, parseable, nothing of the old content lost, backups kept.
    let registries = std::fs::read_to_string(root.join("etc/rancher/k3s/registries.yaml")).unwrap();
    assert!(registries.contains("# mirrors written by hand"), "{registries}");
    let parsed: Value = serde_yaml::from_str(&registries).unwrap();
    assert_eq!(parsed["mirrors"]["docker.io"]["endpoint"][0], "https://mirror.lab.test");
    assert_eq!(parsed["mirrors"]["registry.lab.test"]["endpoint"][0], "http://registry.lab.test:80");
    let daemon: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("etc/docker/daemon.json")).unwrap()).unwrap();
    assert_eq!(daemon["log-driver"], "journald");
    assert_eq!(daemon["insecure-registries"], json!(["other.lab.test:5000", "registry.lab.test"]));
    let backup = |name: &str| std::fs::read_to_string(root.join(format!("{name}.seclab-backup"))).unwrap();
    assert_eq!(backup("etc/rancher/k3s/registries.yaml"), EXISTING_REGISTRIES);
    assert_eq!(backup("etc/docker/daemon.json"), EXISTING_DAEMON);

    // The operator is a set of its own; the Gadget the lab renders exists.
    let client = admin().await;
    let inventory = api(&client, "", "v1", "ConfigMap", Some("kube-system")).get("seclab-operator-t-boot-gadget").await;
    let inventory = inventory.expect("the operator has its own inventory");
    let id = inventory.metadata.labels.as_ref().unwrap()["applyset.kubernetes.io/id"].clone();
    let deployment =
        api(&client, "apps", "v1", "Deployment", Some("t-boot-system")).get("t-boot-operator").await.unwrap();
    let labels = deployment.metadata.labels.unwrap();
    assert_eq!(labels["applyset.kubernetes.io/part-of"], id);
    assert_eq!(labels["app.kubernetes.io/part-of"], "operator-t-boot-gadget");
    api(&client, "t-boot.seclab.dev", "v1", "Gadget", Some("t-boot")).get("g").await.expect("the lab's Gadget");

    // A second run: no file written, no write request, and it says so.
    let before = snapshot(&root);
    let events = audited(|| {
        let output = lab.run(&["bootstrap", "--root", root_arg], 0);
        assert!(output.contains("Nothing to change"), "{output}");
    });
    assert!(lab.writes(&events).is_empty(), "the second bootstrap wrote: {:#?}", lab.writes(&events));
    assert_eq!(snapshot(&root), before, "the second bootstrap wrote a node file");

    // A manifest that drops its CRD would delete every Gadget: refused without
    // --allow-destructive, before any change.
    let manifest = lab.dir.path().join("operator.yaml");
    let full = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, &full[full.find("---").unwrap() + 4..]).unwrap();
    let events = audited(|| {
        let output = lab.run(&["bootstrap", "--root", root_arg], 1);
        assert!(output.contains("deletes every object of its kind in the cluster"), "{output}");
        assert!(output.contains("bootstrap stops before any change"), "{output}");
    });
    assert!(lab.writes(&events).is_empty(), "a refused bootstrap wrote: {:#?}", lab.writes(&events));
    std::fs::write(&manifest, full).unwrap();

    // destroy removes the lab and leaves the operator in place.
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    api(&client, "apps", "v1", "Deployment", Some("t-boot-system")).get("t-boot-operator").await.expect("kept");
    let crds = api(&client, "apiextensions.k8s.io", "v1", "CustomResourceDefinition", None);
    let crd = crds.get("gadgets.t-boot.seclab.dev").await.expect("the operator's CRD stays");
    assert!(crd.metadata.deletion_timestamp.is_none());
    lab.remove_operator().await;
}

/// A kubeconfig naming a loopback port nothing listens on.
fn dead_kubeconfig(dir: &Path) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = dir.join("dead.kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: not-a-secret\ncontexts:\n- name: dead\n  context: {{cluster: dead, user: u}}\ncurrent-context: dead\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_dry_run_without_the_cluster_or_a_manifest_shows_what_it_can_and_names_the_rest() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (manifest, could_not) in [
        (
            format!("https://127.0.0.1:{dead}/operator.yaml"),
            "  - operator t-boot-off-gadget: cannot fetch https://127.0.0.1:",
        ),
        (
            "file:./operator.yaml".to_owned(),
            "  - the cluster: cannot resolve ConfigMaps: cannot reach the API server https://127.0.0.1:",
        ),
    ] {
        let lab = BootstrapLab::new("t-boot-off", &manifest);
        let kubeconfig = dead_kubeconfig(lab.dir.path());
        let root = lab.root();
        let before = snapshot(&root);
        let output = support::seclab(lab.dir.path())
            .arg("--file")
            .arg(lab.dir.path().join("lab.yaml"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--templates")
            .arg(lab.dir.path().join("templates"))
            .args(["bootstrap", "--dry-run", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(1), "{text}");
        // What is known offline: the node files' diffs, the unit, the lab's objects.
        assert!(
            text.contains("create    /etc/rancher/k3s/registries.yaml") && text.contains("+  \"registry.lab.test\":"),
            "{text}"
        );
        let file = lab.dir.path().join("lab.yaml");
        assert!(text.contains("+ExecStart=") && text.contains(&format!("--file {} ", file.display())), "{text}");
        assert!(text.contains(&format!(" -{}\n", lab.dir.path().display())), "the database's directory: {text}");
        assert!(text.contains("not compared with the cluster:") && text.contains("t-boot-off/g"), "{text}");
        // Then what it could not check, and why.
        assert!(text.contains("Could not check:") && text.contains(could_not), "{text}");
        assert!(text.contains("error: the dry run could not check"), "{text}");
        assert_eq!(snapshot(&root), before, "a dry run changed the root directory");
    }
}

#[tokio::test]
async fn each_bootstrap_error_stops_before_any_change() {
    let lab = BootstrapLab::new("t-boot-err", "file:./operator.yaml");
    let root = lab.root();
    let root_arg = root.to_str().unwrap().to_owned();
    let spec_path = lab.dir.path().join("lab.yaml");
    let spec: Value = serde_yaml::from_str(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    let with_manifest = |manifest: &str| {
        let mut spec = spec.clone();
        spec["operators"][0]["manifest"] = json!(manifest);
        std::fs::write(&spec_path, serde_yaml::to_string(&spec).unwrap()).unwrap();
    };
    std::fs::write(lab.dir.path().join("not-yaml.yaml"), "apiVersion: v1\nkind: [unclosed\n").unwrap();
    let port = support::nmap::free_port();
    let unreachable = format!("https://127.0.0.1:{port}/operator.yaml");
    let nothing = |_: &Path| {};
    let unparsable = |root: &Path| {
        std::fs::create_dir_all(root.join("etc/rancher/k3s")).unwrap();
        std::fs::write(root.join("etc/rancher/k3s/registries.yaml"), "mirrors: [unclosed\n").unwrap();
    };
    let not_writable = |root: &Path| {
        let _ = std::fs::remove_dir_all(root.join("etc"));
        std::fs::write(root.join("etc"), "a file where a directory should be").unwrap();
    };
    type Prepare<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, &str, Prepare, &str); 5] = [
        ("missing manifest", "file:./nowhere.yaml", &nothing, "operator t-boot-err-gadget: cannot read"),
        ("unreachable URL", &unreachable, &nothing, "cannot fetch https://127.0.0.1"),
        ("not YAML", "file:./not-yaml.yaml", &nothing, "document 1 is not valid YAML"),
        ("unparsable node file", "file:./operator.yaml", &unparsable, "seclab never overwrites a file it cannot read"),
        (
            "no permission to write",
            "file:./operator.yaml",
            &not_writable,
            "is not a directory\nrun bootstrap as root (sudo), or pass --root DIR",
        ),
    ];
    for (case, manifest, prepare, message) in cases {
        with_manifest(manifest);
        prepare(&root);
        let before = snapshot(&root);
        let mut output = String::new();
        let events = audited(|| {
            let (code, text) = lab.seclab(&["bootstrap", "--root", &root_arg], &[]);
            assert_eq!(code, 1, "{case}: {text}");
            output = text;
        });
        assert!(output.contains(message), "{case}: {output}");
        assert!(!output.contains("panicked"), "{case}: {output}");
        assert!(lab.writes(&events).is_empty(), "{case}: wrote {:#?}", lab.writes(&events));
        assert_eq!(snapshot(&root), before, "{case}: the root directory changed");
    }

    // `apply` before the operator is installed says what to run.
    with_manifest("file:./operator.yaml");
    let output = lab.run(&["apply"], 1);
    assert!(output.contains("does not serve Gadget") && output.contains("run `seclab bootstrap`"), "{output}");
    // `status` lists the Gadget as missing, and why, rather than failing.
    let output = lab.run(&["status"], 0);
    assert!(output.contains("missing  Gadget.t-boot-err.seclab.dev t-boot-err/g"), "{output}");
    assert!(output.contains("the cluster does not serve Gadget"), "{output}");

    // A manifest over plain http is refused by validation, with the line and column.
    with_manifest("http://127.0.0.1:9/operator.yaml");
    let output = lab.run(&["bootstrap", "--root", &root_arg], 2);
    assert!(output.contains("lab.yaml:") && output.contains("is not https"), "{output}");
}

/// A loopback HTTPS server (Python's) serving `dir` with a certificate issued by a CA that
/// the test writes to `ca.pem`; `/to-http/X` and `/to-https/X` redirect to `X`.
struct HttpsServer {
    child: Child,
    port: u16,
}

impl HttpsServer {
    fn start(dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        let script = r#"
import functools, http.server, ssl, sys
directory = sys.argv[1]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(directory + "/server.pem", directory + "/server.key")
class Handler(http.server.SimpleHTTPRequestHandler):
    # /to-http/X and /to-https/X answer 302 to X on this server, over http or https.
    def do_GET(self):
        for prefix, scheme in (("/to-http/", "http"), ("/to-https/", "https")):
            if self.path.startswith(prefix):
                port = self.server.server_address[1]
                self.send_response(302)
                self.send_header("Location", f"{scheme}://127.0.0.1:{port}/{self.path[len(prefix):]}")
                self.end_headers()
                return
        super().do_GET()
handler = functools.partial(Handler, directory=directory)
server = http.server.HTTPServer(("127.0.0.1", 0), handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the HTTPS server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        Self { child, port }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_operator_manifest_is_fetched_over_https_from_a_server_its_ca_vouches_for() {
    let lab = BootstrapLab::new("t-boot-https", "file:./operator.yaml");
    let server = HttpsServer::start(lab.dir.path());
    let spec_path = lab.dir.path().join("lab.yaml");
    let mut spec: Value = serde_yaml::from_str(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
    spec["operators"][0]["manifest"] = json!(format!("https://127.0.0.1:{}/operator.yaml", server.port));
    std::fs::write(&spec_path, serde_yaml::to_string(&spec).unwrap()).unwrap();
    let root = lab.root();
    let args = ["bootstrap", "--dry-run", "--root", root.to_str().unwrap()];

    let (code, output) = lab.seclab(&args, &[]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("cannot fetch") && output.contains("certificate"), "an unknown CA is refused: {output}");

    let ca = lab.dir.path().join("ca.pem");
    let (code, output) = lab.seclab(&args, &[("SSL_CERT_FILE", &ca)]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("+ create  Deployment.apps t-boot-https-system/t-boot-https-operator"), "{output}");
}

/// The manifest's URL is https, and so is everything it redirects to: a redirect to http is
/// refused. A `sha256` pins the manifest: another one is refused, naming both digests, and
/// the digest of what was read is printed to pin.
#[test]
fn an_operator_manifest_redirected_off_https_or_unlike_its_pinned_digest_is_refused() {
    use sha2::Digest;
    let lab = BootstrapLab::new("t-boot-pin", "file:./operator.yaml");
    let server = HttpsServer::start(lab.dir.path());
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(lab.dir.path().join("operator.yaml")).unwrap()));
    let spec_path = lab.dir.path().join("lab.yaml");
    let pin = |path: &str, sha256: Option<&str>| {
        let mut spec: Value = serde_yaml::from_str(&std::fs::read_to_string(&spec_path).unwrap()).unwrap();
        spec["operators"][0]["manifest"] = json!(format!("https://127.0.0.1:{}/{path}", server.port));
        spec["operators"][0]["sha256"] = json!(sha256);
        std::fs::write(&spec_path, serde_yaml::to_string(&spec).unwrap()).unwrap();
    };
    let root = lab.root();
    let args = ["bootstrap", "--dry-run", "--root", root.to_str().unwrap()];
    let ca = lab.dir.path().join("ca.pem");
    let env = [("SSL_CERT_FILE", ca.as_path())];

    pin("to-http/operator.yaml", None);
    let (code, output) = lab.seclab(&args, &env);
    assert_eq!(code, 1, "{output}");
    let refused =
        format!("it redirects to http://127.0.0.1:{}/operator.yaml, which is not https; refused", server.port);
    assert!(output.contains(&refused), "{output}");

    pin("to-https/operator.yaml", None);
    let (code, output) = lab.seclab(&args, &env);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains(&format!("/to-https/operator.yaml, sha256 {digest})")), "{output}");

    pin("operator.yaml", Some(&digest));
    let (code, output) = lab.seclab(&args, &env);
    assert_eq!(code, 0, "{output}");
    let other = "0".repeat(64);
    pin("operator.yaml", Some(&other));
    let (code, output) = lab.seclab(&args, &env);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(&format!("has SHA-256 {digest}, not {other} as `sha256` says; nothing was applied")),
        "{output}"
    );
}
