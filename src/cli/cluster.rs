//! `plan`, `apply`, `status` and `destroy`: the lab against the cluster.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use seclab::cluster::readiness::Readiness;
use seclab::cluster::{Cluster, Kind};
use seclab::config::Lab;
use seclab::reconcile::apply::{self, ApplyError, Outcome};
use seclab::reconcile::plan::{self, Action, Options, Plan, Step};
use seclab::reconcile::wait::{self, ObjectState};
use seclab::reconcile::{destroy, scan_database, secrets};
use seclab::render::ObjectKey;

use super::{Failure, exit, load, print, render_lab};
use crate::{ApplyArgs, Cli, Output};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::error)
}

async fn connect(cli: &Cli, lab: &Lab) -> Result<Cluster, Failure> {
    let context = cli.context.as_deref().or(lab.spec().cluster.context.as_deref());
    Cluster::connect(cli.kubeconfig.as_deref(), context).await.map_err(Failure::error)
}

fn options(args: &ApplyArgs) -> Options {
    Options {
        force_conflicts: args.force_conflicts,
        allow_destructive: args.allow_destructive,
        adopt: args.adopt,
        recreate: args.recreate,
        prune: !args.no_prune,
    }
}

/// `seclab plan`.
pub fn plan(cli: &Cli, args: &ApplyArgs, detailed_exitcode: bool) -> Result<(), Failure> {
    let lab = load(cli)?;
    let rendered = render_lab(cli, &lab)?;
    runtime()?.block_on(async {
        let cluster = connect(cli, &lab).await?;
        let plan = plan::plan(&cluster, &lab, rendered, options(args)).await.map_err(Failure::error)?;
        match cli.output {
            Output::Json => print(&plan_json(&plan).to_string())?,
            Output::Text => print(&plan_text(&plan))?,
        }
        if !plan.problems.is_empty() {
            let text = format!("error: apply would refuse this plan ({} problem(s) above)", plan.problems.len());
            // The JSON plan already names the problems; print no second document.
            return Err(Failure { code: exit::ERROR, text, json: json!(null) });
        }
        if detailed_exitcode && plan.changes().next().is_some() {
            return Err(Failure { code: exit::DIFFERENT, text: String::new(), json: json!(null) });
        }
        Ok(())
    })
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
    let mut out = String::new();
    for step in plan.changes() {
        let (mark, verb) = match step.action {
            Action::Create => ('+', "create"),
            Action::Update => ('~', "update"),
            Action::Replace => ('!', "replace"),
            _ => ('-', "prune"),
        };
        out.push_str(&format!("{mark} {verb:<7} {}", step.object));
        if let Some(note) = &step.note {
            out.push_str(&format!("  ({note})"));
        }
        out.push('\n');
        for change in &step.diff {
            out.push_str(&format!("      {change}\n"));
        }
    }
    out.push_str(&format!(
        "Plan for lab {}: {} to create, {} to update, {} to replace, {} to prune, {} unchanged.",
        plan.lab,
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Replace),
        plan.count(Action::Prune),
        plan.count(Action::Unchanged)
    ));
    if !plan.problems.is_empty() {
        out.push_str("\n\nProblems (apply refuses until they are solved):");
        for problem in &plan.problems {
            out.push_str(&format!("\n  - {problem}"));
        }
    }
    out
}

/// `seclab apply`.
pub fn apply(cli: &Cli, args: &ApplyArgs, wait: bool, timeout: Duration) -> Result<(), Failure> {
    let lab = load(cli)?;
    let rendered = render_lab(cli, &lab)?;
    let started = Instant::now();
    runtime()?.block_on(async {
        let cluster = connect(cli, &lab).await?;
        let plan = plan::plan(&cluster, &lab, rendered, options(args)).await.map_err(Failure::error)?;
        confirm_apply(&plan, args.yes)?;
        let text = cli.output == Output::Text;
        let report = |step: &Step, verb: &str| {
            if text {
                println!("{verb} {}", step.object);
            }
        };
        let outcome = match apply::apply(&cluster, &plan, &report).await {
            Ok(outcome) => outcome,
            Err(error) => return Err(apply_failure(&plan, error)),
        };
        let changed = outcome.created + outcome.updated + outcome.replaced + outcome.pruned;
        if text {
            let took = seconds(started.elapsed());
            if changed == 0 {
                print(&format!("Lab {} is up to date: {} objects unchanged ({took}).", plan.lab, outcome.unchanged))?;
            } else {
                print(&format!(
                    "Applied lab {}: {} created, {} updated, {} replaced, {} pruned, {} unchanged ({took}).",
                    plan.lab, outcome.created, outcome.updated, outcome.replaced, outcome.pruned, outcome.unchanged
                ))?;
            }
        }
        let ready = if wait {
            let objects = desired_objects(&plan);
            let rules = &lab.spec().cluster.readiness;
            let mut progress = Progress::new(cli.output == Output::Text);
            let waited = Instant::now();
            let result = wait::wait(&cluster, &objects, rules, timeout, &mut |p| progress.show(p)).await;
            progress.finish();
            if let Err(error) = result {
                return Err(Failure::error(format!("{error}\nThe lab is applied; run `seclab status` to follow it.")));
            }
            if text {
                print(&format!("All {} objects are ready ({}).", objects.len(), seconds(waited.elapsed())))?;
            }
            Some(true)
        } else {
            None
        };
        let scans = sync_scans(&lab).await?;
        if cli.output == Output::Json {
            print(&json!({ "lab": plan.lab, "outcome": outcome, "ready": ready, "scanDatabase": scans }).to_string())?;
        } else if let Some(changes) = scans.filter(|c| !c.is_empty()) {
            print(&format!("scan database: {} change(s) to tenants and groups", changes.len()))?;
        }
        Ok(())
    })
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Asks before pruning or replacing, on a terminal only and unless `--yes`.
fn confirm_apply(plan: &Plan, yes: bool) -> Result<(), Failure> {
    let (prunes, replaces) = (plan.count(Action::Prune), plan.count(Action::Replace));
    if yes || (prunes == 0 && replaces == 0) || !plan.problems.is_empty() || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    for step in plan.steps.iter().filter(|s| matches!(s.action, Action::Prune | Action::Replace)) {
        eprintln!("  {} {}", if step.action == Action::Prune { "prune  " } else { "replace" }, step.object);
    }
    ask(&format!("Prune {prunes} and replace {replaces} object(s) of lab {}? [y/N] ", plan.lab), &["y", "yes"])
}

fn ask(question: &str, accepted: &[&str]) -> Result<(), Failure> {
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(Failure::error)?;
    if accepted.contains(&answer.trim()) { Ok(()) } else { Err(Failure::error("not confirmed; nothing was changed")) }
}

fn apply_failure(plan: &Plan, error: ApplyError) -> Failure {
    let hint = match &error {
        ApplyError::Refused(_) => "\nRun `seclab plan` to see the whole plan.",
        ApplyError::Failed { .. } => {
            "\nObjects applied so far are recorded in the lab's inventory; fix the file and apply again."
        }
        ApplyError::Inventory { .. } => "\nNothing after the inventory was applied.",
    };
    let json = match &error {
        ApplyError::Refused(problems) => json!({ "lab": plan.lab, "error": error.to_string(), "problems": problems }),
        ApplyError::Failed { outcome, .. } => {
            json!({ "lab": plan.lab, "error": error.to_string(), "outcome": outcome })
        }
        ApplyError::Inventory { .. } => json!({ "lab": plan.lab, "error": error.to_string() }),
    };
    Failure { code: exit::ERROR, text: format!("error: {error}{hint}"), json }
}

/// Every object the plan keeps in the cluster, with its kind.
fn desired_objects(plan: &Plan) -> Vec<(ObjectKey, Kind)> {
    plan.steps
        .iter()
        .filter(|s| s.manifest.is_some() && s.action != Action::Prune)
        .map(|s| (s.key.clone(), plan.kinds[&s.key].clone()))
        .collect()
}

/// Reconciles tenants and scan groups into the scan database, when the lab has any or a
/// database already exists.
async fn sync_scans(lab: &Lab) -> Result<Option<Vec<serde_json::Value>>, Failure> {
    let spec = lab.spec();
    let has_scans = spec.tenants.iter().any(|t| !t.scans.is_empty());
    let exists =
        spec.scan_database.url.is_some() || scan_database::base_dir(lab).join(&spec.scan_database.path).exists();
    if !has_scans && !exists {
        return Ok(None);
    }
    let store = scan_database::open(lab)
        .await
        .map_err(|e| Failure::error(format!("the cluster is applied, but the scan database is not: {e}")))?;
    let changes = store.sync(spec).await.map_err(Failure::error)?;
    Ok(Some(changes.iter().map(|c| serde_json::to_value(c).unwrap_or_default()).collect()))
}

/// What `--wait` shows: one line rewritten on a terminal, plain lines otherwise.
struct Progress {
    enabled: bool,
    terminal: bool,
    last: String,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self { enabled, terminal: std::io::stderr().is_terminal(), last: String::new() }
    }

    fn show(&mut self, pending: &[ObjectState]) {
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

    fn finish(&self) {
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
        let mut objects: Vec<(ObjectKey, String, String)> = rendered
            .objects
            .iter()
            .map(|o| {
                let component = o.manifest["metadata"]["labels"][seclab::render::COMPONENT].as_str().unwrap_or_default();
                (o.key.clone(), o.api_version().to_owned(), component.to_owned())
            })
            .collect();
        for secret in &rendered.secrets {
            let key = secrets::secret_key(&secret.namespace, &secret.name);
            if !objects.iter().any(|(k, _, _)| *k == key) {
                objects.push((key, "v1".into(), "secrets".into()));
            }
        }
        let mut resolved = Vec::new();
        for (key, api_version, _) in &objects {
            let kind = cluster.kind(api_version, &key.kind).await.map_err(Failure::error)?;
            resolved.push((key.clone(), kind));
        }
        let states = wait::states(&cluster, &resolved, &lab.spec().cluster.readiness).await.map_err(Failure::error)?;
        let components_by_key: HashMap<&ObjectKey, &str> =
            objects.iter().map(|(key, _, component)| (key, component.as_str())).collect();
        let component_of = |key: &ObjectKey| components_by_key.get(key).copied().unwrap_or_default().to_owned();
        let mut components: BTreeMap<String, Vec<&ObjectState>> = BTreeMap::new();
        for state in &states {
            components.entry(component_of(&state.key)).or_default().push(state);
        }
        let ready = states.iter().filter(|s| s.readiness.is_ready()).count();
        match cli.output {
            Output::Json => print(
                &json!({
                    "lab": lab.name(),
                    "ready": ready == states.len(),
                    "objects": states.len(),
                    "readyObjects": ready,
                    "components": components.iter().map(|(name, list)| json!({ "name": name, "objects": list })).collect::<Vec<_>>(),
                })
                .to_string(),
            ),
            Output::Text => {
                let mut out = String::new();
                for (name, list) in &components {
                    out.push_str(&format!("{name}\n"));
                    for state in list {
                        let (word, reason) = match &state.readiness {
                            _ if !state.exists => ("missing", "not applied yet: run `seclab apply`".to_owned()),
                            Readiness::Ready => ("ready", String::new()),
                            Readiness::Waiting(r) => ("waiting", r.clone()),
                            Readiness::Failed(r) => ("failed", r.clone()),
                        };
                        let reason = if reason.is_empty() { reason } else { format!("  {reason}") };
                        out.push_str(&format!("  {word:<8} {}{reason}\n", state.object));
                    }
                }
                out.push_str(&format!("Lab {}: {ready} of {} objects ready.", lab.name(), states.len()));
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
        let plan = destroy::plan(&cluster, &lab, allow_destructive).await.map_err(Failure::error)?;
        let doomed = plan.count(Action::Prune);
        if !yes && doomed > 0 {
            if !std::io::stdin().is_terminal() {
                return Err(Failure::error(format!(
                    "destroy deletes {doomed} object(s) of lab {}; confirm with --yes",
                    plan.lab
                )));
            }
            for step in plan.steps.iter().filter(|s| s.action == Action::Prune) {
                eprintln!("  delete {}", step.object);
            }
            ask(&format!("Delete these {doomed} object(s)? Type the lab name ({}) to confirm: ", plan.lab), &[&plan.lab])?;
        }
        let text = cli.output == Output::Text;
        let report = |step: &Step, _: &str| {
            if text {
                println!("deleted {}", step.object);
            }
        };
        let outcome: Outcome = destroy::destroy(&cluster, &plan, &report).await.map_err(|e| apply_failure(&plan, e))?;
        let kept: Vec<&str> = plan.steps.iter().filter(|s| s.action == Action::Keep).map(|s| s.object.as_str()).collect();
        match cli.output {
            Output::Json => print(&json!({ "lab": plan.lab, "deleted": outcome.pruned, "kept": kept }).to_string()),
            Output::Text => {
                let mut out = format!("Destroyed lab {}: {} object(s) deleted.", plan.lab, outcome.pruned);
                if !kept.is_empty() {
                    out.push_str(&format!(
                        "\nKept {} object(s) that hold data (run again with --allow-destructive to delete them too):\n  {}",
                        kept.len(),
                        kept.join("\n  ")
                    ));
                }
                print(&out)
            }
        }
    })
}
