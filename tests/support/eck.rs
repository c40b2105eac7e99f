//! The ECK operator, run for real: the binary `scripts/testcluster build` makes from its Go
//! module (testcluster/eck), managing one namespace of the test cluster whose CRDs are ECK's
//! own. Elasticsearch's pods stay simulated by kwok.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::cluster::Cluster;
use super::node::kubectl_output;

/// A running operator; stopped, with its own namespace deleted, when dropped.
pub struct EckOperator {
    child: Child,
    log: PathBuf,
    /// The namespace it keeps its own state in (licensing, its UUID).
    pub namespace: String,
    _dir: tempfile::TempDir,
}

impl EckOperator {
    /// The operator managing `namespace` only, with its state in `<namespace>-eck`.
    pub fn start(namespace: &str) -> Self {
        let cluster = Cluster::get();
        let binary = cluster.env_var("SECLAB_TESTCLUSTER_ECK_OPERATOR").unwrap_or_else(|| {
            panic!(
                "SECLAB_TESTCLUSTER_ECK_OPERATOR missing from {}/env: restart the test cluster",
                cluster.dir.display()
            )
        });
        let own = format!("{namespace}-eck");
        let created = kubectl_output(&["create", "namespace", &own]);
        let error = String::from_utf8_lossy(&created.stderr);
        assert!(created.status.success() || error.contains("AlreadyExists"), "namespace {own}: {error}");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("operator.log");
        // As the manifests ECK publishes run it (config/operator/...), minus what needs a pod:
        // no webhook, no leader election, no telemetry, no metrics port.
        let child = Command::new(&binary)
            .args([
                "manager",
                &format!("--namespaces={namespace}"),
                &format!("--operator-namespace={own}"),
                "--enable-webhook=false",
                "--manage-webhook-certs=false",
                "--enable-leader-election=false",
                "--disable-telemetry",
                "--metrics-port=0",
            ])
            .env("KUBECONFIG", cluster.admin_kubeconfig())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(std::fs::File::options().append(true).open(&log).unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("the ECK operator {binary} does not start: {e}"));
        Self { child, log, namespace: own, _dir: dir }
    }

    /// The operator's log lines at warning level and above, and its last lines.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        // Each line cut short: the operator's errors carry whole stack traces.
        let short = |l: &&str| l.chars().take(400).collect::<String>();
        let notable: Vec<String> =
            lines.iter().filter(|l| l.contains("\"log.level\":\"error\"") || l.contains("\"warn")).map(short).collect();
        let lines: Vec<String> = lines.iter().map(short).collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        format!("ECK operator, errors and warnings:\n{}\nlast lines:\n{}", notable.join("\n"), tail.join("\n"))
    }
}

impl Drop for EckOperator {
    fn drop(&mut self) {
        // SAFETY: sends SIGTERM to our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = kubectl_output(&["delete", "namespace", &self.namespace, "--wait=false"]);
    }
}
