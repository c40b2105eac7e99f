//! `plan`, `apply`, `status` and `destroy`: the lab against the cluster.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use seclab::cluster::readiness::Readiness;
use seclab::cluster::{Cluster, ClusterError};
use seclab::config::Lab;
use seclab::reconcile::apply::{ApplyError, OnProblems, Outcome};
use seclab::reconcile::model::{Action, Change, Options, Plan, PlanError, Step};
use seclab::reconcile::observe::{self, ReadAhead};
use seclab::reconcile::plan;
use seclab::reconcile::sequence::{self, Hooks, SequenceError};
use seclab::reconcile::wait::ObjectState;
use seclab::reconcile::{certificates, destroy, status as lab_status, tenant_databases};
use seclab::render::Rendered;
use seclab::words::count;

use super::{Failure, Secrets, exit, load, load_with_secrets, print, render_lab, say};
use crate::{ApplyArgs, ChangeArgs, Cli, Output};

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::of)
}

pub(super) async fn connect(cli: &Cli, lab: &Lab) -> Result<Cluster, Failure> {
    connect_with(cli, lab, cli.kubeconfig.as_deref()).await
}

/// Connects as [`connect`] does, with `kubeconfig` instead of the command line's.
pub(super) async fn connect_with(cli: &Cli, lab: &Lab, kubeconfig: Option<&Path>) -> Result<Cluster, Failure> {
    let context = cli.context.as_deref().or(lab.spec().cluster.context.as_deref());
    Cluster::connect(kubeconfig, context).await.map_err(Failure::of)
}

pub(super) fn options(args: &ChangeArgs) -> Options {
    Options {
        force_conflicts: args.force_conflicts,
        allow_destructive: args.allow_destructive,
        adopt: args.adopt,
        recreate: args.recreate,
        prune: !args.no_prune,
    }
}

/// The lab rendered, and the cluster connected with what was read of the lab meanwhile.
struct Read {
    rendered: Rendered,
    cluster: Cluster,
    ahead: ReadAhead,
}

/// Renders the lab (`render`, on a thread of its own) while `runtime` connects and reads the
/// lab's inventory and the objects it records ([`observe::read_ahead`]): a re-apply names the
/// same objects, and the API server answers while seclab renders. The file comes first: a
/// render that fails stops the reading and is the error reported.
fn render_reading_ahead(
    cli: &Cli,
    lab: &Lab,
    runtime: &tokio::runtime::Runtime,
    render: impl FnOnce() -> Result<Rendered, Failure> + Send,
) -> Result<Read, Failure> {
    let stop = CancellationToken::new();
    std::thread::scope(|scope| {
        let rendering = scope.spawn(|| {
            let rendered = render();
            if rendered.is_err() {
                stop.cancel();
            }
            rendered
        });
        let reading = runtime.block_on(async {
            let read = async {
                let cluster = connect(cli, lab).await?;
                let ahead = observe::read_ahead(&cluster, plan::lab_inventory(lab), &stop)
                    .await
                    .map_err(|e| plan_failure(lab, e))?;
                Ok::<_, Failure>((cluster, ahead))
            };
            tokio::select! {
                () = stop.cancelled() => None,
                read = read => Some(read),
            }
        });
        let rendered = rendering.join().unwrap_or_else(|panicked| std::panic::resume_unwind(panicked))?;
        let (cluster, ahead) = reading.expect("only a failed render stops the reading")?;
        Ok(Read { rendered, cluster, ahead })
    })
}

/// `seclab plan`.
pub fn plan(cli: &Cli, args: &ChangeArgs, detailed_exitcode: bool) -> Result<(), Failure> {
    let lab = load_with_secrets(cli, Secrets::Apply)?;
    let runtime = runtime()?;
    let Read { rendered, cluster, ahead } = render_reading_ahead(cli, &lab, &runtime, || render_lab(cli, &lab))?;
    runtime.block_on(async {
        let never = CancellationToken::new();
        let plan = plan::plan_read_ahead(&cluster, &lab, rendered, ahead, options(args), &never)
            .await
            .map_err(|e| plan_failure(&lab, e))?;
        let warnings = unpinned_volumes(&cluster, &lab).await;
        let databases = if tenant_databases::is_external(&lab) {
            tenant_databases::plan(&cluster, &lab, args.allow_destructive).await.map_err(Failure::of)?
        } else {
            Vec::new()
        };
        match cli.output {
            Output::Json => {
                let mut document = plan_json(&plan);
                if tenant_databases::is_external(&lab) {
                    document["tenantDatabases"] = json!(databases);
                }
                document["warnings"] = json!(warnings);
                print(&document.to_string())?;
            }
            Output::Text => {
                warnings.iter().for_each(|w| eprintln!("warning: {w}"));
                print(&format!("{}{}", database_lines(&databases), plan_text(&plan)))?;
            }
        }
        if !plan.problems.is_empty() {
            let problems = count(plan.problems.len() as u64, "problem", "problems");
            let text = format!("error: apply would refuse this plan ({problems} above)");
            // The JSON plan already names the problems; print no second document.
            return Err(Failure { code: exit::ERROR, text, json: json!(null) });
        }
        let database_changes = databases.iter().any(|s| s.action != tenant_databases::Action::Keep);
        if detailed_exitcode && (plan.changes().next().is_some() || database_changes) {
            return Err(Failure { code: exit::DIFFERENT, text: String::new(), json: json!(null) });
        }
        Ok(())
    })
}

/// A warning for each hostPath volume not pinned to a node, on a cluster of several nodes:
/// pods scheduled on different nodes would each see a directory of their own. Text output
/// prints them on stderr; JSON output lists them under `warnings`.
async fn unpinned_volumes(cluster: &Cluster, lab: &Lab) -> Vec<String> {
    let volumes = &lab.spec().storage.volumes;
    let unpinned: Vec<_> = volumes.iter().filter(|v| v.host_path.is_some() && v.node.is_none()).collect();
    if unpinned.is_empty() {
        return Vec::new();
    }
    let nodes = cluster.node_names().await.unwrap_or_default();
    if nodes.len() < 2 {
        return Vec::new();
    }
    unpinned
        .iter()
        .map(|v| {
            let path = v.host_path.as_deref().unwrap_or_default();
            format!(
                "storage volume `{}` (hostPath {path}) is not pinned to a node, and the cluster has {} nodes: pods on different nodes each see their own {path}. Set its `node` to the node that holds the directory, or use a `storageClass` (NFS, Longhorn) to share it across nodes.",
                v.name,
                nodes.len()
            )
        })
        .collect()
}

/// A plan that could not be made; a kind the cluster does not serve in a lab that names
/// operators most likely needs `bootstrap` first.
fn plan_failure(lab: &Lab, error: PlanError) -> Failure {
    let unserved = matches!(&error, PlanError::Cluster { source: ClusterError::UnknownKind { .. }, .. });
    let failure = Failure::of(error);
    if unserved && !lab.spec().operators.is_empty() {
        return failure.with_help("The file names operators: run `seclab bootstrap` to install them first.");
    }
    failure
}

/// One line per step on the tenants' databases.
fn database_lines(steps: &[tenant_databases::Step]) -> String {
    steps.iter().map(|step| format!("{}\n", step.line())).collect()
}

fn summary(plan: &Plan) -> serde_json::Value {
    json!({
        "create": plan.count(Action::Create),
        "update": plan.count(Action::Update),
        "replace": plan.count(Action::Replace),
        "prune": plan.count(Action::Prune),
        "unchanged": plan.count(Action::Unchanged),
    })
}

fn plan_json(plan: &Plan) -> serde_json::Value {
    json!({ "lab": plan.lab, "summary": summary(plan), "objects": plan.steps, "problems": plan.problems })
}

fn plan_text(plan: &Plan) -> String {
    let mut out = plan_changes(plan);
    out.push_str(&format!("Plan for lab {}: {}.", plan.lab, counts(plan)));
    out.push_str(&problems_text(plan));
    out
}

/// How many objects the plan creates, updates, replaces, prunes and leaves.
pub(super) fn counts(plan: &Plan) -> String {
    format!(
        "{} to create, {} to update, {} to replace, {} to prune, {} unchanged",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Replace),
        plan.count(Action::Prune),
        plan.count(Action::Unchanged)
    )
}

/// The plan's problems, as a paragraph (empty without any).
pub(super) fn problems_text(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.problems.is_empty() {
        out.push_str("\n\nProblems (apply refuses until they are solved):");
        for problem in &plan.problems {
            out.push_str(&format!("\n  - {problem}"));
        }
    }
    out
}

/// One line per object that changes (with the field-level diff of updates).
pub(super) fn plan_changes(plan: &Plan) -> String {
    let mut out = String::new();
    for step in plan.changes() {
        let (mark, verb) = match step.action() {
            Action::Create => ('+', "create"),
            Action::Update => ('~', "update"),
            Action::Replace => ('!', "replace"),
            _ => ('-', "prune"),
        };
        out.push_str(&format!("{mark} {verb:<7} {}", step.object));
        if let Some(note) = step.note() {
            out.push_str(&format!("  ({note})"));
        }
        out.push('\n');
        if let Change::Update { diff, .. } = &step.change {
            for change in diff {
                out.push_str(&format!("      {change}\n"));
            }
        }
    }
    out
}

/// `seclab apply`.
pub fn apply(cli: &Cli, args: &ApplyArgs, wait: bool, timeout: Duration) -> Result<(), Failure> {
    let lab = load_with_secrets(cli, Secrets::Apply)?;
    let runtime = runtime()?;
    let read = render_reading_ahead(cli, &lab, &runtime, || render_lab(cli, &lab))?;
    apply_read(cli, &lab, &runtime, read, args, wait, timeout)
}

/// Applies `rendered` as `seclab apply` does (`certs rotate` marks certificates first).
pub fn apply_rendered(
    cli: &Cli,
    lab: &Lab,
    rendered: Rendered,
    args: &ApplyArgs,
    wait: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    let runtime = runtime()?;
    let read = render_reading_ahead(cli, lab, &runtime, || Ok(rendered))?;
    apply_read(cli, lab, &runtime, read, args, wait, timeout)
}

/// Plans and applies what `render_reading_ahead` gave.
fn apply_read(
    cli: &Cli,
    lab: &Lab,
    runtime: &tokio::runtime::Runtime,
    Read { rendered, cluster, ahead }: Read,
    args: &ApplyArgs,
    wait: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    runtime.block_on(async {
        let never = CancellationToken::new();
        let plan = plan::plan_read_ahead(&cluster, lab, rendered, ahead, options(&args.change), &never)
            .await
            .map_err(|e| plan_failure(lab, e))?;
        let warnings = unpinned_volumes(&cluster, lab).await;
        let text = cli.output == Output::Text;
        if text {
            warnings.iter().for_each(|w| eprintln!("warning: {w}"));
        }
        confirm_apply(&plan, args.yes)?;
        let report = |step: &Step, action: Action| {
            if text {
                say!("{} {}", action.done(), step.object);
            }
        };
        let mut summary = |outcome: &Outcome, took: Duration| {
            if !text {
                return;
            }
            let took = seconds(took);
            if outcome.changed() == 0 {
                say!("Lab {} is up to date: {} objects unchanged ({took}).", plan.lab, outcome.unchanged);
            } else {
                say!(
                    "Applied lab {}: {} created, {} updated, {} replaced, {} pruned, {} unchanged ({took}).",
                    plan.lab,
                    outcome.created,
                    outcome.updated,
                    outcome.replaced,
                    outcome.pruned,
                    outcome.unchanged
                );
            }
        };
        let mut progress = Progress::new(text);
        let hooks = Hooks { step: &report, applied: &mut summary, waiting: &mut |p| progress.show(p) };
        let timeout = wait.then_some(timeout);
        let result = sequence::apply_planned(&cluster, lab, &plan, OnProblems::Refuse, timeout, hooks, &never).await;
        progress.finish();
        let applied = match result {
            Ok(applied) => applied,
            Err(SequenceError::Apply(error)) => return Err(apply_failure(&plan, error)),
            Err(SequenceError::Wait(error)) => {
                let mut failure = Failure::of(error);
                failure.text.push_str("\nThe lab is applied; run `seclab status` to follow it.");
                return Err(failure);
            }
            Err(other) => return Err(Failure::of(other)),
        };
        if let Some(waited) = applied.ready_in.filter(|_| text) {
            let objects = sequence::kept_objects(&plan).len();
            print(&format!("All {objects} objects are ready ({}).", seconds(waited)))?;
        }
        if cli.output == Output::Json {
            let ready = applied.ready_in.map(|_| true);
            let document = json!({ "lab": plan.lab, "outcome": applied.outcome, "ready": ready,
                "scanDatabase": applied.scan_database, "tenantDatabases": applied.tenant_databases,
                "warnings": warnings });
            print(&document.to_string())?;
        } else {
            if let Some(changes) = applied.scan_database.filter(|c| !c.is_empty()) {
                print(&format!(
                    "scan database: {} to tenants and groups",
                    count(changes.len() as u64, "change", "changes")
                ))?;
            }
            if let Some(steps) = applied.tenant_databases.filter(|s| !s.is_empty()) {
                print(&format!("Tenant databases:\n{}", database_lines(&steps).trim_end()))?;
            }
        }
        Ok(())
    })
}

pub(super) fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Asks before pruning or replacing, on a terminal only and unless `--yes`.
fn confirm_apply(plan: &Plan, yes: bool) -> Result<(), Failure> {
    let (prunes, replaces) = (plan.count(Action::Prune), plan.count(Action::Replace));
    if yes || (prunes == 0 && replaces == 0) || !plan.problems.is_empty() || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    for step in plan.steps.iter().filter(|s| matches!(s.action(), Action::Prune | Action::Replace)) {
        eprintln!("  {} {}", if step.action() == Action::Prune { "prune  " } else { "replace" }, step.object);
    }
    let (prunes, replaces) = (count(prunes as u64, "object", "objects"), count(replaces as u64, "object", "objects"));
    ask(&format!("Prune {prunes} and replace {replaces} of lab {}? [y/N] ", plan.lab), &["y", "yes"])
}

pub(super) fn ask(question: &str, accepted: &[&str]) -> Result<(), Failure> {
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(Failure::of)?;
    if accepted.contains(&answer.trim()) { Ok(()) } else { Err(Failure::error("not confirmed; nothing was changed")) }
}

pub(super) fn apply_failure(plan: &Plan, error: ApplyError) -> Failure {
    let help = match &error {
        ApplyError::Refused(_) => "Run `seclab plan` to see the whole plan.",
        ApplyError::Failed { .. } => {
            "Objects applied so far are recorded in the lab's inventory; fix the file and apply again."
        }
        ApplyError::Inventory { .. } => "Nothing after the inventory was applied.",
        ApplyError::Cancelled(_) => "The inventory lists every object that may exist; apply again to finish.",
    };
    let failure = Failure::error(&error).with_help(help).with(json!({ "lab": plan.lab }));
    match &error {
        ApplyError::Refused(problems) => failure
            .with_errors(
                problems
                    .iter()
                    .map(|p| json!({ "message": p.to_string(), "object": p.object, "help": help }))
                    .collect(),
            )
            .with(json!({ "problems": problems })),
        ApplyError::Failed { outcome, .. } => failure.with(json!({ "outcome": outcome })),
        ApplyError::Inventory { .. } | ApplyError::Cancelled(_) => failure,
    }
}

/// What `--wait` shows: one line rewritten on a terminal, plain lines otherwise.
pub(super) struct Progress {
    enabled: bool,
    terminal: bool,
    last: String,
}

impl Progress {
    pub(super) fn new(enabled: bool) -> Self {
        Self { enabled, terminal: std::io::stderr().is_terminal(), last: String::new() }
    }

    pub(super) fn show(&mut self, pending: &[ObjectState]) {
        if !self.enabled || pending.is_empty() {
            return;
        }
        let first = &pending[0];
        let reason = match &first.readiness {
            Readiness::Waiting(r) | Readiness::Failed(r) => r,
            Readiness::Ready => "",
        };
        let more = if pending.len() > 1 { format!(" and {} more", pending.len() - 1) } else { String::new() };
        let line = format!("waiting for {}: {reason}{more}", first.object);
        if self.terminal {
            let width = 160;
            let shown: String = line.chars().take(width).collect();
            eprint!("\r\x1b[2K{shown}");
            std::io::stderr().flush().ok();
        } else if line != self.last {
            eprintln!("{line}");
        }
        self.last = line;
    }

    pub(super) fn finish(&self) {
        if self.enabled && self.terminal && !self.last.is_empty() {
            eprint!("\r\x1b[2K");
        }
    }
}

/// `seclab status`.
pub fn status(cli: &Cli) -> Result<(), Failure> {
    let lab = load(cli)?;
    let rendered = render_lab(cli, &lab)?;
    runtime()?.block_on(async {
        let cluster = connect(cli, &lab).await?;
        let secrets = rendered.secrets.clone();
        let status = lab_status::status(&cluster, &lab, rendered, &CancellationToken::new())
            .await
            .map_err(Failure::of)?;
        let certificates = certificates::status(&cluster, &secrets).await.map_err(Failure::of)?;
        let due: Vec<_> = certificates.iter().filter(|c| c.is_due()).collect();
        let databases = match lab.spec().tenant_database.as_ref() {
            None => None,
            Some(_) if tenant_databases::is_external(&lab) => {
                Some(tenant_databases::status(&cluster, &lab).await.map_err(Failure::of)?)
            }
            Some(_) => Some(tenant_databases::in_cluster_presence(&lab, &status)),
        };
        let (ready, total) = (status.ready(), status.total());
        match cli.output {
            Output::Json => print(
                &json!({
                    "lab": status.lab,
                    "ready": ready == total,
                    "objects": total,
                    "readyObjects": ready,
                    "components": status.components.iter().map(|(name, list)| json!({ "name": name, "objects": list })).collect::<Vec<_>>(),
                    "certificatesDue": due,
                    "tenantDatabases": databases,
                })
                .to_string(),
            ),
            Output::Text => {
                let mut out = String::new();
                for (name, list) in &status.components {
                    out.push_str(&format!("{name}\n"));
                    for state in list {
                        let (word, reason) = match &state.readiness {
                            Readiness::Waiting(r) if !state.exists => ("missing", format!("{r}: run `seclab apply`")),
                            Readiness::Ready => ("ready", String::new()),
                            Readiness::Waiting(r) => ("waiting", r.clone()),
                            Readiness::Failed(r) => ("failed", r.clone()),
                        };
                        let reason = if reason.is_empty() { reason } else { format!("  {reason}") };
                        out.push_str(&format!("  {word:<8} {}{reason}\n", state.object));
                        for detail in state.warning.iter().map(|w| format!("last warning: {w}")).chain(state.pods.clone()) {
                            out.push_str(&format!("           {detail}\n"));
                        }
                    }
                }
                if !due.is_empty() {
                    out.push_str("certificates due (`seclab apply` issues them again; `seclab certs status` shows all)\n");
                    for cert in &due {
                        let reason = cert.reason.as_deref().unwrap_or_default();
                        out.push_str(&format!("  {:<8} {}  {reason}\n", cert.state, cert.secret));
                    }
                }
                if let Some(databases) = &databases {
                    out.push_str("tenant databases\n");
                    for db in databases {
                        let hint = match db.state {
                            "present" => String::new(),
                            "pending" => "  its setup Job has not completed".to_owned(),
                            _ => "  run `seclab apply`".to_owned(),
                        };
                        out.push_str(&format!("  {:<8} {} (tenant {}){hint}\n", db.state, db.database, db.tenant));
                    }
                }
                out.push_str(&format!("Lab {}: {ready} of {total} objects ready.", status.lab));
                print(&out)
            }
        }
    })
}

/// `seclab destroy`.
pub fn destroy(cli: &Cli, yes: bool, allow_destructive: bool) -> Result<(), Failure> {
    let lab = load(cli)?;
    runtime()?.block_on(async {
        let cluster = connect(cli, &lab).await?;
        let never = CancellationToken::new();
        let plan = destroy::plan(&cluster, &lab, allow_destructive, &never).await.map_err(Failure::of)?;
        let doomed = plan.count(Action::Prune);
        if !yes && doomed > 0 {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::error(format!(
                    "destroy deletes {} of lab {}; confirm with --yes",
                    count(doomed as u64, "object", "objects"),
                    plan.lab
                )));
            }
            for step in plan.steps.iter().filter(|s| s.action() == Action::Prune) {
                eprintln!("  delete {}", step.object);
            }
            let these = count(doomed as u64, "object", "objects");
            ask(&format!("Delete {these}? Type the lab name ({}) to confirm: ", plan.lab), &[&plan.lab])?;
        }
        let text = cli.output == Output::Text;
        let report = |step: &Step, _: Action| {
            if text {
                say!("deleted {}", step.object);
            }
        };
        let outcome: Outcome = destroy::destroy(&cluster, &plan, &report, &never).await.map_err(|e| apply_failure(&plan, e))?;
        let kept: Vec<&str> = plan.steps.iter().filter(|s| s.action() == Action::Keep).map(|s| s.object.as_str()).collect();
        let databases = if tenant_databases::is_external(&lab) {
            let steps = tenant_databases::remove_all(&cluster, &lab, allow_destructive).await.map_err(|e| {
                Failure::error(format!(
                    "the lab's objects are deleted, but its tenant databases are not: {}\nRun `seclab destroy` again once the server is reachable.",
                    seclab::causes::one_line(&e)
                ))
            })?;
            Some(steps)
        } else {
            None
        };
        match cli.output {
            Output::Json => print(
                &json!({ "lab": plan.lab, "deleted": outcome.pruned, "kept": kept, "tenantDatabases": databases })
                    .to_string(),
            ),
            Output::Text => {
                let mut out = database_lines(databases.as_deref().unwrap_or_default());
                let deleted = count(outcome.pruned as u64, "object", "objects");
                out.push_str(&format!("Destroyed lab {}: {deleted} deleted.", plan.lab));
                if !kept.is_empty() {
                    out.push_str(&format!(
                        "\nKept {} (run again with --allow-destructive to delete them too):\n  {}",
                        count(kept.len() as u64, "object that holds data", "objects that hold data"),
                        kept.join("\n  ")
                    ));
                }
                print(&out)
            }
        }
    })
}
