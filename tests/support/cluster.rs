//! The test Kubernetes control plane (`testcluster/`, `scripts/testcluster`).
//!
//! `scripts/test` starts one cluster for the whole run and exports `SECLAB_TESTCLUSTER_DIR`;
//! every test binary reuses it. Run alone (`cargo test`), a test binary starts its own and
//! stops it when the binary exits. If the cluster cannot start, the test fails loudly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A running control plane: its state directory and the variables `env` prints.
pub struct Cluster {
    /// The state directory.
    pub dir: PathBuf,
    env: HashMap<String, String>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static OWNED_DIR: OnceLock<PathBuf> = OnceLock::new();

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testcluster")
}

/// Stops a cluster this process started (registered with `atexit`).
extern "C" fn stop_owned_cluster() {
    if let Some(dir) = OWNED_DIR.get() {
        let _ = Command::new(script()).arg("down").env("SECLAB_TESTCLUSTER_DIR", dir).status();
    }
}

impl Cluster {
    /// The shared cluster, started on first use.
    pub fn get() -> &'static Cluster {
        CLUSTER.get_or_init(|| {
            let dir = match std::env::var_os("SECLAB_TESTCLUSTER_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => {
                    let dir = std::env::temp_dir().join(format!("seclab-testcluster-{}", std::process::id()));
                    let status = Command::new(script()).arg("up").env("SECLAB_TESTCLUSTER_DIR", &dir).status();
                    assert!(
                        matches!(status, Ok(s) if s.success()),
                        "the test cluster did not start ({status:?}); see {}/logs",
                        dir.display()
                    );
                    OWNED_DIR.set(dir.clone()).ok();
                    // SAFETY: registers a plain function without arguments to run at exit.
                    unsafe { libc::atexit(stop_owned_cluster) };
                    dir
                }
            };
            let text = std::fs::read_to_string(dir.join("env")).unwrap_or_else(|e| {
                panic!("no running test cluster in {}: {e}; run `scripts/testcluster up`", dir.display())
            });
            let env = text
                .lines()
                .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.trim_matches(['\'', '"']).to_owned()))
                .collect();
            Cluster { dir, env }
        })
    }

    /// A variable of the cluster's env file, when it sets it.
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    /// kubectl of the cluster's own version.
    pub fn kubectl(&self) -> PathBuf {
        self.var("SECLAB_TESTCLUSTER_KUBECTL")
    }

    fn var(&self, name: &str) -> PathBuf {
        PathBuf::from(self.env.get(name).unwrap_or_else(|| panic!("{name} missing from {}/env", self.dir.display())))
    }

    /// The API server's address.
    pub fn server(&self) -> std::net::SocketAddr {
        let url = self.env.get("SECLAB_TESTCLUSTER_SERVER").expect("SECLAB_TESTCLUSTER_SERVER in the env file");
        url.trim_start_matches("https://").parse().expect("the server is an address and port")
    }

    /// The kubeconfig of the admin token (system:masters).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.var("SECLAB_TESTCLUSTER_ADMIN_KUBECONFIG")
    }

    /// The kubeconfig of the least-privilege token (user `seclab-limited`).
    pub fn limited_kubeconfig(&self) -> PathBuf {
        self.var("SECLAB_TESTCLUSTER_LIMITED_KUBECONFIG")
    }

    /// The API server's audit log (one JSON event per line).
    pub fn audit_log(&self) -> PathBuf {
        self.var("SECLAB_TESTCLUSTER_AUDIT_LOG")
    }

    /// What the cluster shows of its nodes and of `namespace` (pods, latest events), for the
    /// message of a test whose wait failed.
    pub fn describe(&self, namespace: &str) -> String {
        let kubectl = |args: &[&str]| {
            Command::new(self.kubectl())
                .arg("--kubeconfig")
                .arg(self.admin_kubeconfig())
                .args(args)
                .output()
                .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
                .unwrap_or_else(|e| format!("kubectl did not run: {e}\n"))
        };
        format!(
            "nodes:\n{}pods in {namespace}:\n{}events in {namespace}:\n{}",
            kubectl(&["get", "nodes", "-o", "wide"]),
            kubectl(&["get", "pods", "-n", namespace, "-o", "wide"]),
            kubectl(&["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]),
        )
    }

    /// A kube-rs client with the credentials of `kubeconfig`.
    pub async fn client(&self, kubeconfig: &Path) -> kube::Client {
        let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("the kubeconfig reads");
        let config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .expect("the kubeconfig is valid");
        kube::Client::try_from(config).expect("a client")
    }

    /// Every request the API server has logged so far.
    pub fn audit(&self) -> Vec<AuditEvent> {
        let text = std::fs::read_to_string(self.audit_log()).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|e| AuditEvent::from_json(&e))
            .collect()
    }
}

/// One request from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// `get`, `list`, `create`, `patch`, `update`, `delete`...
    pub verb: String,
    /// Who sent it.
    pub user: String,
    /// The resource (`deployments`), the namespace and the object's name, when any.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// The HTTP status code.
    pub code: u16,
    /// The request URI, query included.
    pub uri: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

impl AuditEvent {
    fn from_json(event: &serde_json::Value) -> Self {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        Self {
            verb: text(&event["verb"]),
            user: text(&event["user"]["username"]),
            resource: text(&event["objectRef"]["resource"]),
            namespace: text(&event["objectRef"]["namespace"]),
            name: text(&event["objectRef"]["name"]),
            code: event["responseStatus"]["code"].as_u64().unwrap_or_default() as u16,
            uri: text(&event["requestURI"]),
            user_agent: text(&event["userAgent"]),
        }
    }

    /// Whether the request could change something (a dry-run cannot).
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
            && !self.uri.contains("dryRun=")
    }
}

/// Counts requests by (verb, user) among `events`.
pub fn count_by_verb_and_user(events: &[AuditEvent]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for event in events {
        *counts.entry((event.verb.clone(), event.user.clone())).or_insert(0) += 1;
    }
    counts
}
