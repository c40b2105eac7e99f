//! `seclab bootstrap`: the node files, the operators, then the lab, each shown before it is
//! done. Everything that can fail without a change (the file, the manifests, the node files
//! and their permissions, the plans) is checked before the first write.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use seclab::bootstrap::node::{self, NodeFileChange};
use seclab::bootstrap::operators::{self, OperatorManifest};
use seclab::bootstrap::service;
use seclab::cluster::Cluster;
use seclab::config::Lab;
use seclab::reconcile::apply::{self, OnProblems, Outcome};
use seclab::reconcile::model::{Action, Desired, Options, Plan, Step};
use seclab::reconcile::plan;
use seclab::reconcile::scan_database::{base_dir, scan_directory};
use seclab::reconcile::sequence::{self, Hooks, SequenceError};
use seclab::reconcile::wait;
use seclab::render::Rendered;
use seclab::words::count;

use super::cluster::{
    Progress, apply_failure, ask, connect_with, counts, options, plan_changes, problems_text, runtime, seconds,
};
use super::{Failure, Secrets, load_with_secrets, print, render_lab, say};
use crate::{BootstrapArgs, Cli, Output};

/// Where k3s writes its admin kubeconfig, under the node's root.
const K3S_KUBECONFIG: &str = "etc/rancher/k3s/k3s.yaml";

/// The kubeconfig bootstrap uses: `--kubeconfig` (or `KUBECONFIG`); else k3s's own under
/// `root`, when k3s has written it (as `k3s kubectl` does), said on stderr; else kube's
/// defaults (`~/.kube/config`, in-cluster).
fn kubeconfig(cli: &Cli, root: &Path, text: bool) -> Option<PathBuf> {
    if cli.kubeconfig.is_some() {
        return cli.kubeconfig.clone();
    }
    let k3s = root.join(K3S_KUBECONFIG);
    if !k3s.is_file() {
        return None;
    }
    if text {
        say!("using k3s's kubeconfig {} (--kubeconfig or KUBECONFIG to choose another)", k3s.display());
    }
    Some(k3s)
}

/// `seclab bootstrap`.
pub fn bootstrap(cli: &Cli, args: &BootstrapArgs) -> Result<(), Failure> {
    let lab = load_with_secrets(cli, Secrets::Apply)?;
    let rendered = render_lab(cli, &lab)?;
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let text = cli.output == Output::Text;
    let kubeconfig = kubeconfig(cli, &root, text);
    let mut files = node::plan(&rendered.node_files, &root).map_err(Failure::of)?;
    if !args.no_service {
        let unit = watch_service(cli, &lab, &rendered, kubeconfig.as_deref(), &root)?.unit();
        let purpose = "the systemd service that runs `seclab watch` on the lab";
        files.push(node::plan_whole(&root, service::UNIT_PATH, purpose, "seclab-watch", unit).map_err(Failure::of)?);
    }
    let dnsmasq = rendered.node_files.iter().find(|f| f.name == "dnsmasq.conf").map(|f| router_lines(&f.content));
    runtime()?.block_on(async {
        // A dry run shows what it can compute offline even when a manifest cannot be fetched
        // or the cluster cannot be reached, and then names what it could not check.
        let mut unchecked = Vec::new();
        let mut manifests = Vec::new();
        for operator in &lab.spec().operators {
            match operators::load(&lab, operator).await {
                Ok(manifest) => manifests.push(manifest),
                Err(error) if args.dry_run => {
                    // The error names the operator; its hint goes on the same line.
                    unchecked.push(seclab::causes::one_line(&error).replace('\n', "; "));
                }
                Err(error) => return Err(Failure::of(error)),
            }
        }
        if !args.dry_run {
            node::check_writable(&files).map_err(Failure::of)?;
        }
        let never = CancellationToken::new();
        let options = options(&args.apply.change);
        let planned = async {
            let cluster = connect_with(cli, &lab, kubeconfig.as_deref()).await?;
            let mut operator_plans = Vec::new();
            for manifest in &manifests {
                let plan = operators::plan(&cluster, &lab, manifest, options, &never).await.map_err(Failure::of)?;
                operator_plans.push(plan);
            }
            let lab_plan = plan_lab(&cluster, &lab, rendered.clone(), &manifests, options, &never).await?;
            Ok::<_, Failure>((cluster, operator_plans, lab_plan))
        };
        // Only a dry run gets here with something unchecked (otherwise it returned above).
        let planned = if unchecked.is_empty() {
            Some(planned.await)
        } else {
            drop(planned);
            None
        };
        let (cluster, operator_plans, lab_plan) = match planned {
            Some(Ok(planned)) => planned,
            Some(Err(failure)) if !args.dry_run => return Err(failure),
            not_planned => {
                unchecked.push(match not_planned {
                    Some(Err(failure)) => format!("the cluster: {}", reason(&failure)),
                    _ => "the cluster: not compared while an operator's manifest is missing".into(),
                });
                return Err(offline(&lab, &rendered, &files, &root, dnsmasq.as_deref(), &manifests, &unchecked, text));
            }
        };

        if text {
            print(&preview(&files, &root, dnsmasq.as_deref(), &manifests, &operator_plans, &lab_plan))?;
        }
        let problems = operator_plans.iter().chain([&lab_plan]).map(|p| p.problems.len()).sum::<usize>();
        if problems > 0 {
            let errors = operator_plans
                .iter()
                .chain([&lab_plan])
                .flat_map(|p| &p.problems)
                .map(|p| json!({ "message": p.to_string(), "object": p.object }))
                .collect();
            let message =
                format!("bootstrap stops before any change: {} above", count(problems as u64, "problem", "problems"));
            return Err(Failure::error(message).with_errors(errors).with(json!({ "lab": lab.name(),
                "operators": operator_plans, "plan": lab_plan, "nodeFiles": files_json(&files) })));
        }
        let changes = files.iter().filter(|f| f.changes()).count()
            + operator_plans.iter().chain([&lab_plan]).map(|p| p.changes().count()).sum::<usize>();
        if args.dry_run {
            if text {
                print("Dry run: nothing was changed.")?;
            } else {
                let document = json!({ "lab": lab.name(), "dryRun": true, "nodeFiles": files_json(&files), "router": dnsmasq,
                    "operators": operator_plans, "plan": lab_plan });
                print(&document.to_string())?;
            }
            return Ok(());
        }
        if changes > 0 && !args.apply.yes && std::io::stdin().is_terminal() {
            ask(&format!("Make {}? [y/N] ", count(changes as u64, "this change", "these changes")), &["y", "yes"])?;
        }

        for file in files.iter().filter(|f| f.changes()) {
            node::write(file).map_err(Failure::of)?;
            if text {
                let backup = file.backup().map(|b| format!(" (as it was: {})", b.display())).unwrap_or_default();
                say!("wrote {}{backup}", file.path.display());
            }
        }
        let mut operator_outcomes = Vec::new();
        for (manifest, plan) in manifests.iter().zip(&operator_plans) {
            operator_outcomes.push(install(&cluster, &lab, manifest, plan, args.timeout, text, &never).await?);
        }
        // The operators' kinds are served now: plan the lab again against them.
        let lab_plan = if operator_plans.iter().any(|p| p.changes().next().is_some()) {
            plan::plan(&cluster, &lab, rendered, options, &never).await.map_err(Failure::of)?
        } else {
            lab_plan
        };
        let (outcome, ready_in) = apply_lab(&cluster, &lab, &lab_plan, args.timeout, text, &never).await?;
        let objects = sequence::kept_objects(&lab_plan).len();
        let changed = files.iter().any(|f| f.changes())
            || operator_outcomes.iter().any(|o| o.changed() > 0)
            || outcome.changed() > 0;
        let service = start_service(&files, &root, text)?;
        let mut next = next_steps(cli, &lab, &files, dnsmasq.as_deref());
        if let Some(note) = &service {
            next.push(format!("  {note}"));
        }
        if text {
            let mut out = if changed {
                format!("Bootstrapped lab {}: all {objects} objects are ready ({}).", lab.name(), seconds(ready_in))
            } else {
                format!(
                    "Nothing to change: the node files, {} and lab {} are as the file says, and ready.",
                    count(manifests.len() as u64, "operator", "operators"),
                    lab.name()
                )
            };
            out.push_str("\n\nNext:\n");
            out.push_str(&next.join("\n"));
            print(&out)
        } else {
            let operators: Vec<_> = manifests
                .iter()
                .zip(&operator_outcomes)
                .map(|(m, outcome)| json!({ "name": m.name, "source": m.source, "sha256": m.sha256, "outcome": outcome }))
                .collect();
            let document = json!({ "lab": lab.name(), "dryRun": false, "changed": changed, "nodeFiles": files_json(&files),
                "router": dnsmasq, "operators": operators, "outcome": outcome, "ready": true, "service": service,
                "next": next });
            print(&document.to_string())
        }
    })
}

/// What a failure says, with its causes, on one line (as its JSON document holds them).
fn reason(failure: &Failure) -> String {
    let json = &failure.json;
    let causes = json["errors"][0]["causes"].as_array().into_iter().flatten();
    let parts: Vec<&str> = std::iter::once(&json["error"]).chain(causes).filter_map(|v| v.as_str()).collect();
    parts.join(": ")
}

/// A dry run that could not check everything: the node files and the lab's objects as far as
/// they are known offline, what could not be checked, and exit 1.
#[allow(clippy::too_many_arguments)]
fn offline(
    lab: &Lab,
    rendered: &Rendered,
    files: &[NodeFileChange],
    root: &Path,
    router: Option<&str>,
    manifests: &[OperatorManifest],
    unchecked: &[String],
    text: bool,
) -> Failure {
    let objects: Vec<String> = rendered.objects.iter().map(|o| o.key.to_string()).collect();
    if text {
        let mut out = node_files_text(files, root, router);
        for manifest in manifests {
            out.push_str(&format!(
                "Operator {} ({}, sha256 {}): not compared with the cluster.\n",
                manifest.name, manifest.source, manifest.sha256
            ));
        }
        out.push_str(&format!("Lab {}: {} objects, not compared with the cluster:\n", lab.name(), objects.len()));
        for object in &objects {
            out.push_str(&format!("  {object}\n"));
        }
        out.push_str("Could not check:\n");
        for item in unchecked {
            out.push_str(&format!("  - {item}\n"));
        }
        out.push_str("Dry run: nothing was changed.");
        // Shown before the error, which names the count.
        let _ = print(&out);
    }
    let error = format!(
        "the dry run could not check {}; fix them and run it again",
        count(unchecked.len() as u64, "thing", "things")
    );
    let errors = unchecked.iter().map(|u| json!({ "message": format!("could not check {u}") })).collect();
    Failure::error(error).with_errors(errors).with(json!({ "lab": lab.name(), "dryRun": true,
        "nodeFiles": files_json(files), "router": router, "objects": objects, "unchecked": unchecked }))
}

/// The lab's plan before anything is applied: kinds the operators define count as served.
async fn plan_lab(
    cluster: &Cluster,
    lab: &Lab,
    rendered: Rendered,
    manifests: &[OperatorManifest],
    options: Options,
    cancel: &CancellationToken,
) -> Result<Plan, Failure> {
    let inventory = plan::lab_inventory(lab);
    let mut desired = Desired::new(rendered, lab.name(), &inventory.id());
    desired.upcoming_crds = manifests.iter().flat_map(OperatorManifest::crds).collect();
    plan::plan_desired(cluster, desired, inventory, &base_dir(lab), options, cancel).await.map_err(Failure::of)
}

/// The node files with their diffs, and the router's line.
fn node_files_text(files: &[NodeFileChange], root: &Path, router: Option<&str>) -> String {
    let mut out = String::new();
    let under = if root == Path::new("/") { String::new() } else { format!(" (under {})", root.display()) };
    out.push_str(&format!("Node files{under}:\n"));
    if files.is_empty() {
        out.push_str("  none: the lab has no registry\n");
    }
    for file in files {
        let action = serde_json::to_value(file.action).unwrap_or_default();
        out.push_str(&format!(
            "  {:<9} {}: {}\n",
            action.as_str().unwrap_or_default(),
            file.install_path,
            file.purpose
        ));
        for line in file.diff().lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    if let Some(lines) = router {
        out.push_str("Router: seclab cannot reach it; add to its dnsmasq configuration:\n");
        out.push_str(&format!("    {}\n", lines.replace('\n', "\n    ")));
    }
    out
}

/// What bootstrap will do, before it does anything.
fn preview(
    files: &[NodeFileChange],
    root: &Path,
    router: Option<&str>,
    manifests: &[OperatorManifest],
    operator_plans: &[Plan],
    lab_plan: &Plan,
) -> String {
    let mut out = node_files_text(files, root, router);
    for (manifest, plan) in manifests.iter().zip(operator_plans) {
        out.push_str(&format!(
            "Operator {} ({}, sha256 {}): {}.\n",
            manifest.name,
            manifest.source,
            manifest.sha256,
            counts(plan)
        ));
        out.push_str(&indent(&plan_changes(plan)));
        out.push_str(&problems_text(plan));
    }
    out.push_str(&format!("Lab {}: {}.\n", lab_plan.lab, counts(lab_plan)));
    out.push_str(&indent(&plan_changes(lab_plan)));
    out.push_str(&problems_text(lab_plan));
    out
}

/// The node files for `--output json`, each with its diff.
fn files_json(files: &[NodeFileChange]) -> Vec<serde_json::Value> {
    files
        .iter()
        .map(|file| {
            let mut value = serde_json::to_value(file).unwrap_or_default();
            value["diff"] = file.diff().into();
            value
        })
        .collect()
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// The dnsmasq lines without their comments.
fn router_lines(content: &str) -> String {
    let lines: Vec<&str> = content.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    lines.join("\n")
}

/// Applies one operator's plan and waits until its objects are ready (CRDs established,
/// Deployments available).
async fn install(
    cluster: &Cluster,
    lab: &Lab,
    manifest: &OperatorManifest,
    plan: &Plan,
    timeout: Duration,
    text: bool,
    cancel: &CancellationToken,
) -> Result<Outcome, Failure> {
    let report = |step: &Step, action: Action| {
        if text {
            say!("{} {}", action.done(), step.object);
        }
    };
    let started = Instant::now();
    let outcome =
        apply::apply(cluster, plan, OnProblems::Refuse, &report, cancel).await.map_err(|e| apply_failure(plan, e))?;
    let mut progress = Progress::new(text);
    let objects = sequence::kept_objects(plan);
    let rules = &lab.spec().cluster.readiness;
    let waited = wait::wait(cluster, &objects, rules, timeout, &mut |p| progress.show(p), cancel).await;
    progress.finish();
    waited.map_err(|error| {
        Failure::error(format!(
            "operator {}: {error}\nIts objects are applied; run `seclab bootstrap` again once it is ready.",
            manifest.name
        ))
    })?;
    if text && outcome.changed() > 0 {
        say!("Operator {} is ready ({}).", manifest.name, seconds(started.elapsed()));
    }
    Ok(outcome)
}

/// The lab, as `apply --wait` applies it.
async fn apply_lab(
    cluster: &Cluster,
    lab: &Lab,
    plan: &Plan,
    timeout: Duration,
    text: bool,
    cancel: &CancellationToken,
) -> Result<(Outcome, Duration), Failure> {
    let report = |step: &Step, action: Action| {
        if text {
            say!("{} {}", action.done(), step.object);
        }
    };
    let mut applied = |_: &Outcome, _: Duration| {};
    let mut progress = Progress::new(text);
    let hooks = Hooks { step: &report, applied: &mut applied, waiting: &mut |p| progress.show(p) };
    let result = sequence::apply_planned(cluster, lab, plan, OnProblems::Refuse, Some(timeout), hooks, cancel).await;
    progress.finish();
    match result {
        Ok(done) => Ok((done.outcome, done.ready_in.unwrap_or_default())),
        Err(SequenceError::Apply(error)) => Err(apply_failure(plan, error)),
        Err(SequenceError::Wait(error)) => Err(Failure::error(format!(
            "{error}\nThe lab is applied; run `seclab status` to follow it, or `seclab bootstrap` again."
        ))),
        Err(other) => Err(Failure::of(other)),
    }
}

/// What to do after bootstrap: restarts, the router, the registry, Cortex, scans, `watch`.
fn next_steps(cli: &Cli, lab: &Lab, files: &[NodeFileChange], router: Option<&str>) -> Vec<String> {
    let spec = lab.spec();
    let mut next = Vec::new();
    // The service is started by bootstrap itself (or its note says how).
    for file in files.iter().filter(|f| f.changes() && f.install_path != service::UNIT_PATH) {
        next.push(format!(
            "  restart {} so that it reads {}:  sudo systemctl restart {}",
            file.restart, file.install_path, file.restart
        ));
    }
    if let Some(lines) = router {
        next.push(format!("  add to the router's dnsmasq (once):  {}", lines.replace('\n', "  ")));
    }
    if spec.registry.enabled {
        let host = spec.registry_host();
        let scheme = if spec.registry.insecure { "http" } else { "https" };
        next.push(format!("  registry: {scheme}://{host}; push a first image:"));
        next.push("    docker pull busybox:1.36".to_owned());
        next.push(format!("    docker tag busybox:1.36 {host}/busybox:1.36"));
        next.push(format!("    docker push {host}/busybox:1.36"));
    }
    if spec.cortex.enabled {
        next.push(format!("  Cortex: http://{}", spec.cortex_host()));
    }
    if spec.tenants.iter().any(|t| !t.scans.is_empty()) {
        let database = match &spec.scan_database.url {
            Some(_) => "PostgreSQL (scanDatabase.url)".to_owned(),
            None => base_dir(lab).join(&spec.scan_database.path).display().to_string(),
        };
        next.push(format!("  scan database: {database}; see it with `seclab scan status`"));
    }
    if !files.iter().any(|f| f.install_path == service::UNIT_PATH) {
        next.push(format!(
            "  keep the lab true, ingest scans as they land:  seclab watch --file {}",
            cli.file.display()
        ));
    }
    next
}

/// The service that runs `seclab watch` on the lab: this binary, the file and the kubeconfig
/// bootstrap used (k3s's at its path on the node), the scan directory and database writable.
fn watch_service(
    cli: &Cli,
    lab: &Lab,
    rendered: &Rendered,
    kubeconfig: Option<&Path>,
    root: &Path,
) -> Result<service::Service, Failure> {
    let absolute = |path: &Path| std::path::absolute(path).map_err(Failure::of);
    let binary = std::env::current_exe().and_then(|p| p.canonicalize()).map_err(Failure::of)?;
    let kubeconfig = match kubeconfig {
        Some(path) if path == root.join(K3S_KUBECONFIG) => Some(Path::new("/").join(K3S_KUBECONFIG)),
        Some(path) => Some(absolute(path)?),
        None => None,
    };
    let mut writable = vec![absolute(&scan_directory(lab))?];
    if lab.spec().scan_database.url.is_none() {
        let database = absolute(&base_dir(lab).join(&lab.spec().scan_database.path))?;
        writable.extend(database.parent().map(Path::to_path_buf));
    }
    Ok(service::Service {
        lab: lab.name().to_owned(),
        binary,
        file: absolute(&cli.file)?,
        kubeconfig,
        templates: cli.templates.as_deref().map(absolute).transpose()?,
        writable,
        objects: rendered.objects.len() + rendered.secrets.len(),
    })
}

/// Starts the service when bootstrap wrote it on this node and systemd runs here (again when
/// its unit changed); else says how to. `None` without a service.
fn start_service(files: &[NodeFileChange], root: &Path, text: bool) -> Result<Option<String>, Failure> {
    let Some(unit) = files.iter().find(|f| f.install_path == service::UNIT_PATH) else { return Ok(None) };
    let name = service::UNIT;
    if root != Path::new("/") {
        return Ok(Some(format!("the service is written under {}; nothing was started", root.display())));
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Ok(Some(format!("systemd is not running here: start the service with  systemctl enable --now {name}")));
    }
    let systemctl = |args: &[&str]| -> Result<(), Failure> {
        let output = std::process::Command::new("systemctl").args(args).output().map_err(Failure::of)?;
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err(Failure::error(format!(
            "systemctl {} failed: {said}
see: systemctl status {name}",
            args.join(" ")
        )))
    };
    if unit.changes() {
        systemctl(&["daemon-reload"])?;
        systemctl(&["enable", name])?;
        systemctl(&["restart", name])?;
        if text {
            say!("started {name}");
        }
    } else {
        systemctl(&["enable", "--now", name])?;
    }
    Ok(Some(format!("the lab keeps itself true:  systemctl status {name}  (its log: journalctl -u {name})")))
}
