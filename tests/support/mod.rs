//! Helpers shared by the integration tests: running the real `seclab` binary on files.
#![allow(dead_code)] // Each test crate uses a different subset.

pub mod browser;
pub mod certs;
pub mod cluster;
pub mod eck;
pub mod lab;
pub mod mariadb;
pub mod nmap;
pub mod node;
pub mod outage;
pub mod postgres;
pub mod receivers;
pub mod watch;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An example file's path.
pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// The example files, by name.
pub const EXAMPLES: [&str; 3] = ["homelab.yaml", "opensearch.yaml", "tenants.yaml"];

/// `seclab` with colour off, run in `dir`.
pub fn seclab(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("seclab").expect("the seclab binary is built");
    command.current_dir(dir).env("NO_COLOR", "1").env_remove("SECLAB_FILE").env_remove("SECLAB_TEMPLATES");
    command
}

/// Runs `seclab` and returns (exit code, stdout, stderr).
pub fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = seclab(dir).args(args).output().expect("seclab runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    )
}

/// A temporary directory holding `seclab.yaml` with `text`.
pub fn lab_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("seclab.yaml"), text).expect("the file is written");
    dir
}

/// Runs `seclab` in `dir` and returns (exit code, stdout, stderr, peak RSS in KiB) of that
/// very process (`wait4`, not the whole test's children).
#[allow(clippy::zombie_processes)] // reaped by `wait4` below, which also reads its peak memory
pub fn run_measured(dir: &Path, args: &[&str]) -> (i32, String, String, u64) {
    use std::io::Read;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("seclab"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SECLAB_FILE")
        .env_remove("SECLAB_TEMPLATES")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("seclab runs");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).map(|_| text)
    });
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let stdout = reader.join().unwrap().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; the child is ours and not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid, "seclab is waited for");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, stdout, stderr, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

/// A CustomResourceDefinition of the group `test.seclab.dev`, version `v1`, of any content:
/// `kind` with the resource name `plural`, of `scope` (`Namespaced` or `Cluster`).
pub fn test_crd(kind: &str, plural: &str, scope: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.test.seclab.dev\n\
         spec:\n  group: test.seclab.dev\n  scope: {scope}\n  names: {{plural: {plural}, singular: {singular}, kind: {kind}}}\n\
         \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n\
         \x20     openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
        singular = kind.to_lowercase()
    )
}
