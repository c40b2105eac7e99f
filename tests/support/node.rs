//! The test cluster's real node (`scripts/testcluster`, `testcluster/node.sh`): its pods really
//! run, on a bridge of this machine. Workloads go there with the placement the lab file
//! gives them; kwok's simulated nodes take everything else.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::cluster::Cluster;
use super::watch::eventually;

/// The real node's name, taint and bridge, as the cluster's env file names them.
pub struct RealNode {
    pub name: String,
    pub taint: String,
    pub bridge: String,
}

impl RealNode {
    /// The running cluster's real node; fails the test when the cluster has none.
    pub fn get() -> RealNode {
        let cluster = Cluster::get();
        let var = |name: &str| {
            cluster.env_var(name).unwrap_or_else(|| {
                panic!(
                    "the test cluster in {} has no real node ({name} unset): it starts with one unless SECLAB_TESTCLUSTER_REAL_NODE=0; see {}/logs",
                    cluster.dir.display(),
                    cluster.dir.display()
                )
            })
        };
        RealNode {
            name: var("SECLAB_TESTCLUSTER_REAL_NODE_NAME"),
            taint: var("SECLAB_TESTCLUSTER_REAL_NODE_TAINT"),
            bridge: var("SECLAB_TESTCLUSTER_NODE_BRIDGE"),
        }
    }

    /// The placement fields that put a workload on this node.
    pub fn placement(&self) -> (Value, Value) {
        (
            json!({ "kubernetes.io/hostname": self.name }),
            json!([{ "key": self.taint, "operator": "Exists", "effect": "NoSchedule" }]),
        )
    }

    /// Puts the section `section` of `spec` (e.g. `spec["registry"]`) on this node.
    pub fn place(&self, section: &mut Value) {
        let (node_selector, tolerations) = self.placement();
        section["nodeSelector"] = node_selector;
        section["tolerations"] = tolerations;
    }

    /// Fails the test unless traffic to `address` goes to the node's bridge: a test sends
    /// nothing to an address that would leave this machine.
    pub fn assert_routed_to_bridge(&self, address: IpAddr) {
        let output = Command::new("ip").args(["route", "get", &address.to_string()]).output().expect("ip runs");
        let route = String::from_utf8_lossy(&output.stdout);
        assert!(
            route.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w == ["dev", self.bridge.as_str()]),
            "refusing to send anything to {address}: its route is not the node's bridge {}:\n{route}",
            self.bridge
        );
    }
}

/// kubectl (of the cluster's own version) as the admin; returns stdout, failing the test
/// on an error.
pub fn kubectl(args: &[&str]) -> String {
    let output = kubectl_output(args);
    assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// kubectl as the admin, whatever it returns.
pub fn kubectl_output(args: &[&str]) -> std::process::Output {
    let cluster = Cluster::get();
    Command::new(cluster.kubectl())
        .arg("--kubeconfig")
        .arg(cluster.admin_kubeconfig())
        .args(args)
        .output()
        .expect("kubectl runs")
}

/// A key of a Secret's data, decoded, as the admin reads it.
pub fn secret_value(namespace: &str, secret: &str, key: &str) -> Vec<u8> {
    use base64::Engine as _;
    let path = format!("jsonpath={{.data.{}}}", key.replace('.', "\\."));
    let encoded = kubectl(&["get", "secret", secret, "-n", namespace, "-o", &path]);
    base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap()
}

/// The pods of `namespace` matching `selector`, as JSON.
pub fn pods(namespace: &str, selector: &str) -> Vec<Value> {
    let list: Value =
        serde_json::from_str(&kubectl(&["get", "pods", "-n", namespace, "-l", selector, "-o", "json"])).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Whether `pod` runs for real on `node`: scheduled there, its containers started by
/// containerd (kwok's simulated pods have no container IDs) and running.
pub fn runs_for_real(pod: &Value, node: &str) -> bool {
    let statuses = pod["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
    pod["spec"]["nodeName"] == node
        && !statuses.is_empty()
        && statuses.iter().all(|c| {
            c["containerID"].as_str().is_some_and(|id| id.starts_with("containerd://"))
                && c["state"]["running"].is_object()
        })
}

/// Waits until a pod of `namespace` matching `selector` runs for real on `node`; returns it.
pub fn wait_running(namespace: &str, selector: &str, node: &str, within: Duration) -> Value {
    let mut found = None;
    let ok = eventually(within, || {
        found = pods(namespace, selector).into_iter().find(|p| runs_for_real(p, node));
        found.is_some()
    });
    assert!(ok, "no pod {selector} runs on {node}:\n{}", Cluster::get().describe(namespace));
    found.unwrap()
}

/// A docker archive of a one-file image named `name`, written to `out` by the same packer
/// the test cluster's images use (`testcluster/image.py`).
pub fn tiny_image(name: &str, content: &str, out: &Path) {
    let dir = out.parent().unwrap();
    let rootfs = dir.join("rootfs.tar");
    let files = dir.join("rootfs");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("hello.txt"), content).unwrap();
    let status = Command::new("tar").arg("-C").arg(&files).arg("-cf").arg(&rootfs).arg("hello.txt").status().unwrap();
    assert!(status.success());
    let images = dir.join("images.json");
    std::fs::write(&images, json!({ name: { "Cmd": ["/hello.txt"] } }).to_string()).unwrap();
    let packer = Path::new(env!("CARGO_MANIFEST_DIR")).join("testcluster/image.py");
    let status = Command::new("python3").arg(packer).arg(&rootfs).arg(out).arg(&images).status().unwrap();
    assert!(status.success());
}
