//! A copy of an example lab under its own name and namespace, run against the test cluster,
//! and what the tests read back from the cluster (objects by label, the audit log).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use super::cluster::{AuditEvent, Cluster};

/// The database password of the first apply.
pub const SECRET_ONE: &str = "first-db-password-7f3a";
/// A second database password.
pub const SECRET_TWO: &str = "second-db-password-91c2";

/// An object by kind, namespace and name.
type ObjectId = (String, Option<String>, String);

/// A copy of an example under its own name and namespace, in a temporary directory.
pub struct TestLab {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub kubeconfig: PathBuf,
    pub password: String,
    /// More environment variables for seclab.
    pub env: Vec<(String, String)>,
    /// Whether runs grant the limited user the lab's permissions first (as an admin would).
    pub grants: bool,
    /// The permissions granted to the limited user so far, by kind, namespace and name.
    granted: Mutex<BTreeMap<ObjectId, Value>>,
}

impl TestLab {
    /// `examples/<example>` renamed to `name` (lab and namespace), run as the limited user.
    pub fn new(example: &str, name: &str) -> Self {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example)).unwrap();
        let mut spec: Value = serde_yaml::from_str(&text).unwrap();
        spec["metadata"]["name"] = json!(name);
        spec["cluster"]["namespace"] = json!(name);
        let dir = tempfile::tempdir().unwrap();
        // The example's secrets exist on this machine, as where seclab runs: its files beside
        // the lab (not under /etc), its variables in the environment seclab gets.
        if let Some(routes) = spec.pointer_mut("/alerts/routes").and_then(Value::as_array_mut) {
            for route in routes {
                let Some(password) = route.pointer_mut("/email/smtp/password") else { continue };
                if let Some(file) = password.as_str().and_then(|p| p.strip_prefix("file:/")) {
                    let name = std::path::Path::new(file).file_name().unwrap().to_str().unwrap().to_owned();
                    std::fs::write(dir.path().join(&name), "test-smtp-password\n").unwrap();
                    *password = json!(format!("file:{name}"));
                }
            }
        }
        let lab = Self {
            dir,
            name: name.to_owned(),
            kubeconfig: Cluster::get().limited_kubeconfig(),
            password: SECRET_ONE.to_owned(),
            env: vec![("SECLAB_WEBHOOK_SECRET".into(), "test-webhook-secret".into())],
            grants: true,
            granted: Mutex::default(),
        };
        lab.write(&spec);
        lab
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("lab.yaml")
    }

    pub fn spec(&self) -> Value {
        serde_yaml::from_str(&std::fs::read_to_string(self.file()).unwrap()).unwrap()
    }

    /// Writes the lab file, after granting the limited user what it needs for it (a running
    /// `watch` may read it at once).
    pub fn write(&self, spec: &Value) {
        let next = self.dir.path().join("next.yaml");
        std::fs::write(&next, serde_yaml::to_string(spec).unwrap()).unwrap();
        self.grant(&next);
        std::fs::rename(next, self.file()).unwrap();
    }

    /// A template file added or overridden for this lab only.
    pub fn template(&self, name: &str, text: &str) {
        let path = self.dir.path().join("templates").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self.grant(&self.file());
    }

    /// Grants the limited user what `seclab render --rbac-for-seclab` says the lab in `file`
    /// needs, as an admin would, keeping what it was granted before (rules only grow: a
    /// prune needs the rules that named the pruned object). The lab's Namespaces are applied
    /// as it renders them now, so that a namespace it pruned stays gone. Nothing is granted
    /// for a file that does not render: the run under test reports that.
    pub fn grant(&self, file: &Path) {
        if !self.grants {
            return;
        }
        let mut command = assert_cmd::Command::cargo_bin("seclab").unwrap();
        command.arg("--file").arg(file).args(["render", "--rbac-for-seclab", "--for-user", "seclab-limited"]);
        command.args(["--output", "json"]).env_remove("SECLAB_TEMPLATES").env("NO_COLOR", "1");
        command.env("BARBICAN_DB_PASSWORD", &self.password).env("OPENSEARCH_ADMIN_PASSWORD", &self.password);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let templates = self.dir.path().join("templates");
        if templates.is_dir() {
            command.arg("--templates").arg(templates);
        }
        let output = command.output().unwrap();
        let Ok(list) = serde_json::from_slice::<Value>(&output.stdout) else { return };
        let mut granted = self.granted.lock().unwrap();
        let mut apply = Vec::new();
        for mut object in list["items"].as_array().cloned().unwrap_or_default() {
            let kind = object["kind"].as_str().unwrap().to_owned();
            if kind == "Namespace" {
                apply.push(object);
                continue;
            }
            let metadata = &object["metadata"];
            let key = (
                kind,
                metadata["namespace"].as_str().map(str::to_owned),
                metadata["name"].as_str().unwrap().to_owned(),
            );
            if let Some(before) = granted.get(&key) {
                let mut rules = before["rules"].as_array().cloned().unwrap_or_default();
                for rule in object["rules"].as_array().cloned().unwrap_or_default() {
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
                if object.get("rules").is_some() {
                    object["rules"] = Value::Array(rules);
                }
            }
            granted.insert(key, object);
        }
        apply.extend(granted.values().cloned());
        let cluster = Cluster::get();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    let client = cluster.client(&cluster.admin_kubeconfig()).await;
                    let params = kube::api::PatchParams::apply("seclab-test-admin").force();
                    for object in &apply {
                        let (api_version, kind) =
                            (object["apiVersion"].as_str().unwrap(), object["kind"].as_str().unwrap());
                        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
                        let api = api(&client, group, version, kind, object["metadata"]["namespace"].as_str());
                        let name = object["metadata"]["name"].as_str().unwrap();
                        // A Role in a namespace the lab pruned cannot be applied, nor needed.
                        if let Err(error) = api.patch(name, &params, &kube::api::Patch::Apply(object)).await {
                            eprintln!("test harness: cannot grant {kind} {name}: {error}");
                        }
                    }
                });
            });
        });
    }

    pub fn remove_template(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join("templates").join(name)).unwrap();
    }

    pub fn seclab(&self, args: &[&str]) -> Output {
        self.grant(&self.file());
        let templates = self.dir.path().join("templates");
        let mut command = assert_cmd::Command::cargo_bin("seclab").unwrap();
        command
            .arg("--file")
            .arg(self.file())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("BARBICAN_DB_PASSWORD", &self.password)
            .env("OPENSEARCH_ADMIN_PASSWORD", &self.password)
            .env_remove("SECLAB_TEMPLATES")
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if templates.is_dir() {
            command.arg("--templates").arg(templates);
        }
        command.output().unwrap()
    }

    /// Runs seclab and asserts it exits with `code`; returns stdout and stderr together.
    pub fn run(&self, args: &[&str], code: i32) -> String {
        let output = self.seclab(args);
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if output.status.code() != Some(code) && args.contains(&"--wait") {
            // A wait that fails on the test cluster: what kwok's nodes and pods looked like.
            panic!("seclab {args:?} said:\n{text}\n{}", Cluster::get().describe(&self.name));
        }
        assert_eq!(output.status.code(), Some(code), "seclab {args:?} said:\n{text}");
        text
    }

    /// The keys (`Kind namespace/name`) of the objects the lab renders.
    pub fn rendered(&self) -> BTreeSet<String> {
        let output = self.run(&["render", "--output", "json"], 0);
        let document: Value = serde_json::from_str(&output).unwrap();
        let mut keys: BTreeSet<String> = document["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                key(
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["namespace"].as_str(),
                    o["metadata"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        for secret in document["secrets"].as_array().unwrap() {
            keys.insert(key("Secret", secret["namespace"].as_str(), secret["name"].as_str().unwrap()));
        }
        keys
    }

    /// Write requests by seclab against this lab's objects in `events`.
    pub fn writes(&self, events: &[AuditEvent]) -> Vec<AuditEvent> {
        events
            .iter()
            .filter(|e| e.is_write() && e.user == "seclab-limited")
            .filter(|e| {
                e.namespace == self.name || e.name == self.name || e.name.starts_with(&format!("{}-", self.name))
            })
            .cloned()
            .collect()
    }
}

/// An object's key as the tests compare it. A Job named after the Secrets it reads (the
/// tenants' setup Job) ends in a hash that apply sets: it is compared without it.
pub fn key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    let name = match name.rsplit_once('-') {
        Some((stem, hash)) if kind == "Job" && hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{stem}-*")
        }
        _ => name.to_owned(),
    };
    match namespace {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Everything the audit log has recorded after running `action`.
pub fn audited(action: impl FnOnce()) -> Vec<AuditEvent> {
    let cluster = Cluster::get();
    let before = cluster.audit().len();
    action();
    cluster.audit().split_off(before)
}

pub async fn admin() -> kube::Client {
    let cluster = Cluster::get();
    cluster.client(&cluster.admin_kubeconfig()).await
}

pub fn api(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// The keys of every object in the cluster labelled as part of `lab`, by kind.
pub async fn labelled(client: &kube::Client, lab: &str) -> BTreeSet<String> {
    let selector = format!("app.kubernetes.io/part-of={lab}");
    let kinds = [
        ("", "v1", "Namespace", false),
        ("", "v1", "PersistentVolume", false),
        ("", "v1", "PersistentVolumeClaim", true),
        ("", "v1", "Secret", true),
        ("", "v1", "ConfigMap", true),
        ("", "v1", "Service", true),
        ("", "v1", "ServiceAccount", true),
        ("apps", "v1", "Deployment", true),
        ("apps", "v1", "StatefulSet", true),
        ("batch", "v1", "CronJob", true),
        ("batch", "v1", "Job", true),
        ("networking.k8s.io", "v1", "Ingress", true),
        ("rbac.authorization.k8s.io", "v1", "Role", true),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", true),
    ];
    let mut found = BTreeSet::new();
    for (group, version, kind, namespaced) in kinds {
        let all = api(client, group, version, kind, None);
        for object in all.list(&ListParams::default().labels(&selector)).await.unwrap().items {
            let terminating = object.metadata.deletion_timestamp.is_some();
            let namespace = if namespaced { object.metadata.namespace.as_deref() } else { None };
            let inventory = object.metadata.name.as_deref() == Some(&format!("seclab-{lab}"));
            if !terminating && !inventory {
                found.insert(key(kind, namespace, object.metadata.name.as_deref().unwrap()));
            }
        }
    }
    found
}
