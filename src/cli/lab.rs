//! `init`, `validate` and `render`.

use std::path::Path;

use serde_json::json;

use seclab::config;
use seclab::render::rbac::{self, Subject};
use seclab::render::{self, Rendered};
use seclab::words::count;

use super::{Failure, load, print};
use crate::{Cli, Output};

/// `seclab init`.
pub fn init(cli: &Cli, force: bool, homelab: bool) -> Result<(), Failure> {
    let path = &cli.file;
    if path.exists() && !force {
        return Err(Failure::error(format!("{} already exists; pass --force to replace it", path.display())));
    }
    // The next commands name the file too, unless it is the one they read anyway.
    let file = if path == Path::new("seclab.yaml") {
        String::new()
    } else {
        format!(" --file {}", shlex::try_quote(&path.to_string_lossy()).map_err(Failure::of)?)
    };
    let (starter, next) = if homelab {
        (config::STARTER_HOMELAB, format!("`seclab{file} bootstrap --dry-run`, then `seclab{file} bootstrap`"))
    } else {
        (config::STARTER, format!("`seclab{file} validate` and `seclab{file} render`"))
    };
    std::fs::write(path, starter).map_err(|e| Failure::error(format!("cannot write {}: {e}", path.display())))?;
    match cli.output {
        Output::Json => print(&json!({ "file": path.display().to_string(), "written": true }).to_string()),
        Output::Text => print(&format!("wrote {}: edit it, then run {next}", path.display())),
    }
}

/// `seclab validate`.
pub fn validate(cli: &Cli) -> Result<(), Failure> {
    let lab = load(cli)?;
    let rendered = super::render_lab(cli, &lab)?;
    let spec = lab.spec();
    let groups: usize = spec.tenants.iter().map(|t| t.scans.len()).sum();
    match cli.output {
        Output::Json => print(
            &json!({
                "file": cli.file.display().to_string(),
                "valid": true,
                "lab": lab.name(),
                "objects": rendered.objects.len(),
                "tenants": spec.tenants.len(),
                "scanGroups": groups,
                "errors": [],
                "notes": lab.notes(),
                "warnings": lab.unresolved_secrets(),
            })
            .to_string(),
        ),
        Output::Text => {
            let mut text = format!(
                "{} is valid: lab `{}` renders {} ({}, {})",
                cli.file.display(),
                lab.name(),
                count(rendered.objects.len() as u64, "object", "objects"),
                count(spec.tenants.len() as u64, "tenant", "tenants"),
                count(groups as u64, "scan group", "scan groups")
            );
            for note in lab.notes() {
                text.push_str(&format!("\nnote: {note}"));
            }
            // Not errors here: the file may be checked where its secrets are not.
            for warning in lab.unresolved_secrets() {
                text.push_str(&format!("\nwarning: {warning}; plan, apply, watch and the scan commands stop on it"));
            }
            print(&text)
        }
    }
}

/// `seclab render`.
pub fn render(cli: &Cli, out: Option<&Path>, force: bool, rbac_for: Option<&Subject>) -> Result<(), Failure> {
    let lab = load(cli)?;
    let mut rendered = super::render_lab(cli, &lab)?;
    // In the order apply takes (Namespaces and CRDs first), so that
    // `seclab render | kubectl apply -f -` works on an empty cluster.
    rendered.objects.sort_by_key(|object| seclab::cluster::order::stage(&object.key));
    if let Some(subject) = rbac_for {
        let of = rbac::Lab {
            name: lab.name(),
            home: &lab.spec().cluster.namespace,
            objects: &rendered.objects,
            secret_namespaces: rendered.secrets.iter().map(|s| s.namespace.as_str()).collect(),
        };
        let objects = rbac::permissions(&of, subject);
        return match cli.output {
            Output::Json => print(&json!({ "apiVersion": "v1", "kind": "List", "items": objects }).to_string()),
            Output::Text => {
                let mut text = format!(
                    "# What seclab needs to apply lab {} as {subject}: the lab's Namespaces, a ClusterRole\n\
                     # for its cluster-scoped objects (by name), a Role in each of its namespaces.\n\
                     # Apply as a cluster admin: seclab render --rbac-for-seclab | kubectl apply --server-side -f -\n\
                     # Again before an apply that adds a namespace or cluster-scoped object, and after one\n\
                     # that removes them (seclab deletes only what its rules still name).\n",
                    lab.name()
                );
                for object in &objects {
                    text.push_str("---\n");
                    text.push_str(&render::to_yaml(object));
                }
                print(text.trim_end())
            }
        };
    }
    if let Some(dir) = out {
        let written = rendered.write_to_dir(dir, force).map_err(Failure::of)?;
        return match cli.output {
            Output::Json => print(&json!({ "directory": dir.display().to_string(), "files": written }).to_string()),
            Output::Text => print(&format!(
                "wrote {} objects and {} node files under {}",
                rendered.objects.len(),
                rendered.node_files.len(),
                dir.display()
            )),
        };
    }
    match cli.output {
        Output::Json => {
            let objects: Vec<&serde_json::Value> = rendered.objects.iter().map(|o| o.manifest.as_ref()).collect();
            let document = json!({ "objects": objects, "nodeFiles": rendered.node_files, "secrets": rendered.secrets });
            print(&serde_json::to_string_pretty(&document).map_err(Failure::of)?)
        }
        Output::Text => print(&render_text(&rendered)),
    }
}

/// The YAML stream, then the node files and the Secrets apply creates, as YAML comments.
fn render_text(rendered: &Rendered) -> String {
    let mut out = rendered.to_yaml_stream();
    for file in &rendered.node_files {
        out.push_str(&format!("\n# Node file {}: {}\n", file.install_path, file.purpose));
        for line in file.content.trim_end().lines() {
            out.push_str(&format!("#   {line}\n"));
        }
    }
    if !rendered.secrets.is_empty() {
        out.push_str("\n# Secrets that `seclab apply` creates (values are never rendered):\n");
        for secret in &rendered.secrets {
            let origin = match &secret.origin {
                render::SecretOrigin::Generated => "generated".to_owned(),
                render::SecretOrigin::Env(var) => format!("from env:{var}"),
                render::SecretOrigin::File(path) => format!("from file:{path}"),
                render::SecretOrigin::Certificate(_) => "issued by seclab's CA".to_owned(),
                render::SecretOrigin::InternalUsers { secret, .. } => format!("the admin user, hashed from {secret}"),
                render::SecretOrigin::TrustStores(authority) => {
                    format!("PKCS#12 stores trusting the CA in {authority}")
                }
            };
            out.push_str(&format!("#   {}/{} key {}: {origin}\n", secret.namespace, secret.name, secret.key));
        }
    }
    out
}
