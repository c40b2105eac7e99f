//! One reconcile pass of `watch`, and what the loop learns between passes. A pass observes
//! the lab from the watch caches when they cover it (no LIST; a GET only for an object the
//! file adds, to catch a name taken by someone else), else with LISTs; then decides,
//! confirms and applies like `seclab apply`, leaving out objects with a problem.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::inventory::{Inventory, Members};
use crate::cluster::readiness::{Readiness, assess};
use crate::cluster::{Cluster, ClusterError, Kind, compare};
use crate::config::model::DriftPolicy;
use crate::config::{self, Lab, LoadError};
use crate::identity::{KindName, ObjectKey};
use crate::reconcile::apply::{self, ApplyError, OnProblems, Outcome};
use crate::reconcile::certificates;
use crate::reconcile::decide;
use crate::reconcile::fan_out::{Cancelled, fan_out};
use crate::reconcile::model::{
    Action, Change, Desired, ListTarget, Observed, Options, Plan, PlanError, ProblemKind, Step, failed,
};
use crate::reconcile::observe;
use crate::reconcile::plan;
use crate::reconcile::scan_database::base_dir;
use crate::reconcile::secrets;
use crate::reconcile::sequence::{self, Hooks, SequenceError};
use crate::render::{self, ParsedDocuments, SecretToCreate, Templates};
use crate::scan::files::ScanFile;
use crate::scan::store::{IngestOutcome, Store, StoreError};
use crate::words::count;

use super::cache::{Cache, Followers, Notice};
use super::metrics::{KindLabel, ObjectState, Pass, SecretLabel, StateLabel};
use super::state::Shared;

/// Why a pass runs; a stronger trigger covers a weaker one pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    /// The resync interval passed, or a watcher listed again.
    Resync,
    /// Someone changed or deleted an object of the lab.
    Drift,
    /// The file or a template was saved.
    Save,
    /// `watch` started: everything is read with LISTs.
    Start,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// The lab was reconciled.
    Reconciled,
    /// The saved file was rejected; nothing was changed.
    Rejected,
    /// The caches are still filling; the watchers' news triggers the pass again.
    Deferred,
}

impl Trigger {
    /// This trigger or the one pending, whichever does more.
    pub fn over(self, pending: Option<Trigger>) -> Option<Trigger> {
        Some(pending.map_or(self, |p| p.max(self)))
    }
}

/// Why a pass failed; the loop retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The plan could not be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The apply stopped.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The apply sequence stopped.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The pass was stopped.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl PassError {
    /// Whether the API server could not be reached at all.
    fn unreachable(&self) -> Option<String> {
        let cluster = match self {
            Self::Plan(PlanError::Cluster { source, .. }) => source,
            Self::Apply(ApplyError::Inventory { source, .. }) => source,
            Self::Sequence(SequenceError::Apply(ApplyError::Inventory { source, .. })) => source,
            _ => return None,
        };
        matches!(cluster, ClusterError::Transport { .. }).then(|| crate::causes::one_line(cluster))
    }
}

/// The reconcile loop's state between passes.
pub struct Reconciler {
    /// The cluster.
    cluster: Arc<Cluster>,
    /// The desired-state file.
    file: PathBuf,
    /// The templates it renders with.
    templates: Templates,
    /// The last good desired-state file.
    lab: Arc<Lab>,
    /// Where a new good file is announced (the deliverer reads its routes there).
    lab_tx: tokio::sync::watch::Sender<Arc<Lab>>,
    /// The live objects the watchers hold.
    cache: Arc<Cache>,
    /// The watchers.
    followers: Followers,
    /// What the endpoints show.
    shared: Arc<Shared>,
    /// The scan database, when the lab scans.
    store: Option<Store>,
    /// The last desired state applied, its Secrets filled in.
    desired: Option<Arc<Desired>>,
    /// Its objects, by key: what a watcher's news is compared with.
    manifests: HashMap<ObjectKey, usize>,
    /// The kinds the lab uses, resolved.
    kinds: HashMap<KindName, Kind>,
    /// The problems last logged, so that each is logged once.
    problems: Vec<String>,
    /// The documents of the last render: a save re-parses only the documents it changed.
    parsed: ParsedDocuments,
    /// The inventory's members as last read, and the live parent they were read from.
    inventory_read: Option<(Arc<Value>, Arc<Members>)>,
    /// The lab's objects not ready, and why.
    not_ready: BTreeMap<ObjectKey, String>,
    /// The objects the last pass found as wanted, with the two manifests compared: while
    /// neither is replaced (by a save or by the watchers), they are not compared again.
    in_sync: HashMap<ObjectKey, (Arc<Value>, Arc<Value>)>,
    /// The certificate Secrets the file asks for: a resync checks whether one is due.
    certificates: Vec<SecretToCreate>,
}

impl Reconciler {
    /// A reconciler for the lab in `file`, last read as `lab`, that has applied nothing yet;
    /// its watchers send their notices to `notices`, a new good file goes to `lab_tx`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: Arc<Cluster>,
        file: PathBuf,
        templates: Templates,
        lab: Arc<Lab>,
        lab_tx: tokio::sync::watch::Sender<Arc<Lab>>,
        notices: tokio::sync::mpsc::UnboundedSender<Notice>,
        shared: Arc<Shared>,
        store: Option<Store>,
    ) -> Self {
        let cache = Arc::new(Cache::default());
        let followers = Followers::new(lab.name(), cache.clone(), notices);
        let parsed = ParsedDocuments::for_applyset(&plan::lab_inventory(&lab).id());
        Self {
            cluster,
            file,
            templates,
            lab,
            lab_tx,
            cache,
            followers,
            shared,
            store,
            desired: None,
            manifests: HashMap::new(),
            kinds: HashMap::new(),
            problems: Vec::new(),
            parsed,
            inventory_read: None,
            not_ready: BTreeMap::new(),
            in_sync: HashMap::new(),
            certificates: Vec::new(),
        }
    }

    /// The cluster it reconciles.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// How often everything is compared again.
    pub fn resync_interval(&self) -> std::time::Duration {
        self.lab.parsed().resync_interval
    }

    /// Stops the watchers.
    pub fn stop(&mut self) {
        self.followers.stop();
    }

    /// One pass. A save that does not validate or render is reported and ignored: the last
    /// good state stays applied.
    pub async fn pass(&mut self, trigger: Trigger, stop: &CancellationToken) -> Result<(), PassError> {
        let started = Instant::now();
        let shared = self.shared.clone();
        let answered = || shared.answered.load(std::sync::atomic::Ordering::Relaxed);
        let answered_before = answered();
        let result = self.reconcile(trigger, stop).await;
        let seconds = started.elapsed().as_secs_f64();
        // A resync from the caches sends no request: it says nothing of the API server.
        let heard_from_server = answered() > answered_before;
        match &result {
            Ok(Done::Rejected | Done::Deferred) => {}
            Ok(Done::Reconciled) => {
                self.shared.metrics.reconciled(Pass::Success, seconds);
                self.shared.update(|view| {
                    view.reconciled = true;
                    if heard_from_server {
                        view.unreachable = None;
                    }
                });
            }
            Err(error) => {
                self.shared.metrics.reconciled(Pass::Error, seconds);
                if let Some(reason) = error.unreachable() {
                    self.shared.update(|view| view.unreachable = Some(reason));
                }
            }
        }
        result.map(drop)
    }

    async fn reconcile(&mut self, trigger: Trigger, stop: &CancellationToken) -> Result<Done, PassError> {
        let mut laps = Laps::new(trigger);
        // Drift and resyncs compare with the last desired state applied; starts and saves read
        // the file (and fill its Secrets in once the live ones are known).
        let fresh = match (&self.desired, trigger) {
            (Some(_), Trigger::Resync) if self.certificates_due() => {
                tracing::info!("a certificate is due: issuing it again");
                match self.read_file() {
                    Some(desired) => Some(desired),
                    None => return Ok(Done::Rejected),
                }
            }
            (Some(_), Trigger::Resync | Trigger::Drift) => None,
            _ => match self.read_file() {
                Some(desired) => Some(desired),
                None => return Ok(Done::Rejected),
            },
        };
        laps.lap("read the file");
        let filled = fresh.is_none();
        let last = self.desired.clone();
        let desired: &Desired = match &fresh {
            Some(desired) => desired,
            None => last.as_deref().expect("drift and resyncs follow a pass"),
        };
        let lab = self.lab.clone();
        let mut inventory = plan::lab_inventory(&lab);
        let inventory_target = ListTarget::new(KindName::new("v1", "ConfigMap"), Some(inventory.namespace.clone()));
        let cached = match trigger {
            Trigger::Start => None,
            _ => {
                let parent = self.cache.get(&inventory.key());
                if let Some(parent) = &parent {
                    // Read again only when it changed: it lists every object of the lab.
                    match &self.inventory_read {
                        Some((read_from, members)) if Arc::ptr_eq(read_from, parent) => {
                            inventory.members = members.clone();
                        }
                        _ => {
                            inventory.read(parent);
                            self.inventory_read = Some((parent.clone(), inventory.members.clone()));
                        }
                    }
                }
                let (kinds, not_served_yet) = observe::resolve_kinds(&self.cluster, desired, &inventory).await?;
                let mut targets = observe::list_targets(desired, &inventory, &kinds, &not_served_yet);
                targets.insert(inventory_target.clone());
                (not_served_yet.is_empty() && self.cache.covers(&targets)).then_some((
                    inventory.clone(),
                    parent.is_some(),
                    kinds,
                ))
            }
        };
        laps.lap("resolve kinds");
        let observed = match cached {
            Some((inventory, exists, kinds)) => self.observe_cached(desired, inventory, exists, kinds, stop).await?,
            // Drift and resyncs read only the caches; those still filling trigger the pass
            // again once listed.
            None if filled => {
                tracing::debug!("{trigger:?} deferred: the watch caches are still filling");
                return Ok(Done::Deferred);
            }
            None => observe::observe(&self.cluster, inventory, desired, stop).await?,
        };
        laps.lap("observe");
        let desired: Arc<Desired> = match fresh {
            Some(mut desired) => {
                secrets::fill(&mut desired, &observed.live, &base_dir(&lab), lab.name()).map_err(PlanError::Secret)?;
                Arc::new(desired)
            }
            None => last.expect("drift and resyncs follow a pass"),
        };
        let mut targets =
            observe::list_targets(&desired, &observed.inventory, &observed.kinds, &observed.not_served_yet);
        targets.insert(inventory_target);
        let options = Options { prune: true, ..Options::default() };
        laps.lap("fill Secrets, find watch targets");
        let mut plan = decide::decide(lab.name(), &desired, &observed, options);
        laps.lap("decide");
        // The inventory is a ConfigMap, followed even when the lab itself has none.
        let config_map = self.cluster.kind("v1", "ConfigMap").await.map_err(failed("cannot resolve ConfigMaps"))?;
        plan::confirm(&self.cluster, &mut plan, &observed, options, stop).await?;
        laps.lap("dry-run");
        let taken = match choose(&mut plan, trigger, lab.spec().watch.drift) {
            Course::Report { drift } => {
                for line in &drift {
                    tracing::warn!("drift (reported, not healed: watch.drift is report): {line}");
                }
                self.shared.update(|view| view.drift = drift);
                self.commit(desired, &observed, &plan, config_map, !filled);
                self.count_objects(&plan);
                self.followers.follow(&self.cluster, &targets, &self.kinds);
                return Ok(Done::Reconciled);
            }
            Course::Heal { taken } => taken,
        };
        if !taken.is_empty() {
            for line in taken.values().flatten() {
                tracing::info!("{line}; taking it back");
            }
            let forced = taken.keys().cloned().collect();
            plan::confirm_forced(&self.cluster, &mut plan, &observed, &forced, options, stop).await?;
        }
        self.report_problems(&plan);
        self.shared.update(|view| view.drift.clear());
        let drifted = matches!(trigger, Trigger::Drift | Trigger::Resync);
        let metrics = &self.shared.metrics;
        let report = |step: &Step, action: Action| {
            let healed = drifted && action != Action::Prune;
            tracing::info!("{} {}{}", action.done(), step.object, if healed { " (drift healed)" } else { "" });
            if healed {
                metrics.drift_corrections.get_or_create(&KindLabel { kind: step.key.kind.clone() }).inc();
            }
        };
        let outcome = if matches!(trigger, Trigger::Start | Trigger::Save) {
            let hooks = Hooks { step: &report, applied: &mut |_, _| {}, waiting: &mut |_| {} };
            let applied =
                sequence::apply_planned(&self.cluster, &lab, &plan, OnProblems::SkipThem, None, hooks, stop).await?;
            for change in applied.scan_database.iter().flatten() {
                tracing::info!("scan database: {} {} {:?}", change.object, change.name, change.action);
            }
            applied.outcome
        } else {
            apply::apply(&self.cluster, &plan, OnProblems::SkipThem, &report, stop).await?
        };
        laps.lap("apply");
        // Only an applied state is remembered: a pass that failed leaves the last one.
        self.commit(desired, &observed, &plan, config_map, !filled);
        self.finished(trigger, &plan, &outcome);
        self.followers.follow(&self.cluster, &targets, &self.kinds);
        laps.lap("report");
        if matches!(trigger, Trigger::Start | Trigger::Save) {
            self.refresh_scans().await;
            laps.lap("read the scan database");
        }
        laps.log();
        Ok(Done::Reconciled)
    }

    /// Reads, checks and renders the file; on a problem, reports it and returns `None`.
    fn read_file(&mut self) -> Option<Desired> {
        let rejected = |shared: &Shared, text: String| {
            tracing::warn!("the saved file is not applied; the last good state stays:\n{text}");
            shared.metrics.reconciled(Pass::Rejected, 0.0);
            shared.update(|view| view.rejected_edit = Some(text));
        };
        let lab = match config::load(&self.file) {
            Ok(lab) => lab,
            Err(LoadError::Invalid(file)) => {
                rejected(&self.shared, file.report(false));
                return None;
            }
            Err(other) => {
                rejected(&self.shared, other.to_string());
                return None;
            }
        };
        let inventory = plan::lab_inventory(&lab);
        if self.parsed.applyset() != Some(inventory.id().as_str()) {
            self.parsed = ParsedDocuments::for_applyset(&inventory.id());
        }
        let rendered = match render::render_with(&lab, &self.templates, &mut self.parsed) {
            Ok(rendered) => rendered,
            Err(error) => {
                rejected(&self.shared, error.to_string());
                return None;
            }
        };
        self.shared.update(|view| view.rejected_edit = None);
        let desired = Desired::new(rendered, lab.name(), &inventory.id());
        self.certificates = certificates::requests(&desired.secrets).into_values().map(|(s, _)| s.clone()).collect();
        self.lab = Arc::new(lab);
        self.lab_tx.send_replace(self.lab.clone());
        Some(desired)
    }

    /// Whether a certificate the watchers hold is due (expiring within renewBefore, expired,
    /// or not as asked); exports each one's expiry.
    fn certificates_due(&self) -> bool {
        let (expiries, due) = certificates::expiries(&self.certificates, |key| self.cache.get(key));
        self.export_expiries(&expiries);
        due
    }

    fn export_expiries(&self, expiries: &[(String, i64)]) {
        for (secret, not_after) in expiries {
            let label = SecretLabel { secret: secret.clone() };
            self.shared.metrics.certificate_expiry.get_or_create(&label).set(*not_after as f64);
        }
    }

    /// The lab as the caches hold it, with a GET for each object the caches do not have.
    async fn observe_cached(
        &self,
        desired: &Desired,
        inventory: Inventory,
        inventory_exists: bool,
        kinds: HashMap<KindName, Kind>,
        stop: &CancellationToken,
    ) -> Result<Observed, PlanError> {
        let mut live = self.cache.snapshot();
        let missing: HashMap<&ObjectKey, &Kind> = desired
            .keys()
            .filter(|(key, _)| !live.contains_key(*key))
            .filter_map(|(key, api_version)| Some((key, kinds.get(&KindName::new(api_version, key.kind.clone()))?)))
            .collect();
        let found = fan_out(missing, stop, |(key, kind)| async move {
            (key, self.cluster.get(kind, key.namespace.as_deref(), &key.name).await)
        })
        .await?;
        for (key, result) in found {
            let object = result.map_err(failed(format!("cannot read {key}")))?;
            if let Some(mut object) = object {
                compare::slim(&mut object);
                live.insert(key.clone(), Arc::new(object));
            }
        }
        let unchanged = desired
            .objects
            .iter()
            .filter(|(object, _)| {
                let compared = self.in_sync.get(&object.key);
                compared.zip(live.get(&object.key)).is_some_and(|((wanted, had), live)| {
                    Arc::ptr_eq(wanted, &object.manifest) && Arc::ptr_eq(had, live)
                })
            })
            .map(|(object, _)| object.key.clone())
            .collect();
        Ok(Observed { inventory, inventory_exists, kinds, not_served_yet: Default::default(), live, unchanged })
    }

    /// Keeps the pairs `plan` found as wanted, for the next pass; after a new desired state,
    /// forgets the objects it no longer has.
    fn remember_in_sync(&mut self, observed: &Observed, plan: &Plan, new_desired: bool) {
        if new_desired {
            self.in_sync.retain(|key, _| self.manifests.contains_key(key));
        }
        let Some(desired) = &self.desired else { return };
        for step in &plan.steps {
            match step.change {
                // Found through `in_sync` itself: already there.
                Change::Unchanged if observed.unchanged.contains(&step.key) => {}
                Change::Unchanged => {
                    let wanted = self.manifests.get(&step.key).map(|index| &desired.objects[*index].0.manifest);
                    if let Some((wanted, live)) = wanted.zip(observed.live.get(&step.key)) {
                        self.in_sync.insert(step.key.clone(), (wanted.clone(), live.clone()));
                    }
                }
                _ => {
                    self.in_sync.remove(&step.key);
                }
            }
        }
    }

    /// Remembers what a pass applied (or chose to leave, reporting drift): the desired state
    /// and its kinds, the objects found as wanted, and for a new state its certificates'
    /// expiry for the metric. Run only once the pass succeeded.
    fn commit(&mut self, desired: Arc<Desired>, observed: &Observed, plan: &Plan, config_map: Kind, new: bool) {
        self.manifests =
            desired.objects.iter().enumerate().map(|(index, (object, _))| (object.key.clone(), index)).collect();
        self.kinds = observed.kinds.clone();
        self.kinds.insert(KindName::new("v1", "ConfigMap"), config_map);
        if new {
            let (expiries, _) = certificates::expiries(&self.certificates, |key| {
                self.manifests.get(key).map(|index| desired.objects[*index].0.manifest.clone())
            });
            self.export_expiries(&expiries);
        }
        self.desired = Some(desired);
        self.remember_in_sync(observed, plan, new);
    }

    fn report_problems(&mut self, plan: &Plan) {
        let problems: Vec<String> = plan.problems.iter().map(ToString::to_string).collect();
        for problem in problems.iter().filter(|p| !self.problems.contains(p)) {
            tracing::warn!("left as it is: {problem}");
        }
        self.problems = problems.clone();
        self.shared.update(|view| view.problems = problems);
    }

    fn finished(&mut self, trigger: Trigger, plan: &Plan, outcome: &Outcome) {
        let what = if outcome.changed() == 0 {
            format!("{} objects unchanged", outcome.unchanged)
        } else {
            format!(
                "{} created, {} updated, {} replaced, {} pruned, {} unchanged",
                outcome.created, outcome.updated, outcome.replaced, outcome.pruned, outcome.unchanged
            )
        };
        let skipped =
            if outcome.skipped > 0 { format!(", {} left out (problems)", outcome.skipped) } else { String::new() };
        let line = format!("{what}{skipped} ({trigger:?})").to_lowercase();
        if outcome.changed() > 0 || trigger >= Trigger::Save {
            tracing::info!("lab {}: {line}", plan.lab);
        }
        let now = jiff::Timestamp::now();
        self.shared.metrics.last_applied.set(now.as_millisecond() as f64 / 1000.0);
        self.shared
            .update(|view| view.last_reconcile = Some((now.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(), line)));
        self.count_objects(plan);
    }

    fn count_objects(&mut self, plan: &Plan) {
        let mut counts: HashMap<ObjectState, i64> =
            HashMap::from([(ObjectState::InSync, 0), (ObjectState::Drifted, 0), (ObjectState::Problem, 0)]);
        let blocked = plan.blocked();
        for step in plan.steps.iter().filter(|s| s.is_recorded()) {
            let state = if blocked.contains(&step.key) {
                ObjectState::Problem
            } else if matches!(step.change, Change::Unchanged) {
                ObjectState::InSync
            } else {
                ObjectState::Drifted
            };
            *counts.entry(state).or_default() += 1;
        }
        for (state, count) in counts {
            self.shared.metrics.objects.get_or_create(&StateLabel { state }).set(count);
        }
        self.refresh_readiness(None);
    }

    /// What the watchers reported: whether a pass is needed, and which.
    pub fn notices(&mut self, batch: Vec<Notice>) -> Option<Trigger> {
        tracing::debug!("watchers: {batch:?}");
        let mut trigger = None;
        let mut changed = Vec::new();
        for notice in batch {
            match notice {
                Notice::Changed(key) => {
                    let drifted = self.manifests.get(&key).is_some_and(|index| {
                        let desired = self.desired.as_ref().map(|d| &d.objects[*index].0.manifest);
                        match (desired, self.cache.get(&key)) {
                            (Some(desired), Some(live)) => !compare::unchanged(desired, &live),
                            _ => false,
                        }
                    });
                    if drifted {
                        tracing::info!("{key} was changed by someone else");
                        trigger = Trigger::Drift.over(trigger);
                    }
                    changed.push(key);
                    self.shared.update(|view| view.unreachable = None);
                }
                Notice::Deleted(key) => {
                    if self.manifests.contains_key(&key) {
                        tracing::info!("{key} was deleted by someone else");
                        trigger = Trigger::Drift.over(trigger);
                    }
                    changed.push(key);
                }
                Notice::Synced(_) => {
                    trigger = Trigger::Resync.over(trigger);
                    self.shared.update(|view| view.unreachable = None);
                }
                Notice::Unreachable(reason) => {
                    tracing::warn!("{reason}");
                    self.shared.update(|view| view.unreachable = Some(reason));
                }
            }
        }
        self.refresh_readiness(Some(&changed));
        trigger
    }

    /// Objects not ready, read from the caches: every object of the lab, or only `changed`.
    fn refresh_readiness(&mut self, changed: Option<&[ObjectKey]>) {
        let rules = &self.lab.spec().cluster.readiness;
        let cache = &self.cache;
        let reason = |key: &ObjectKey| match cache.get(key) {
            None => Some("it does not exist".to_owned()),
            Some(live) => match assess(key, &live, rules) {
                Readiness::Ready => None,
                Readiness::Waiting(reason) | Readiness::Failed(reason) => Some(reason),
            },
        };
        match changed {
            None => {
                self.not_ready = self.manifests.keys().filter_map(|key| Some((key.clone(), reason(key)?))).collect();
            }
            Some(keys) => {
                for key in keys.iter().filter(|key| self.manifests.contains_key(*key)) {
                    match reason(key) {
                        Some(reason) => self.not_ready.insert(key.clone(), reason),
                        None => self.not_ready.remove(key),
                    };
                }
            }
        }
        let not_ready: Vec<(String, String)> =
            self.not_ready.iter().map(|(key, reason)| (key.to_string(), reason.clone())).collect();
        self.shared.update(|view| view.not_ready = not_ready);
    }

    /// Ingests scan files, then shows what changed.
    pub async fn ingest(&self, files: Vec<ScanFile>) {
        let Some(store) = &self.store else { return };
        for file in files {
            self.ingest_one(store, file).await;
        }
        self.refresh_scans().await;
    }

    async fn ingest_one(&self, store: &Store, file: ScanFile) {
        let name = format!("{}/{} {}", file.tenant, file.group, file.path.display());
        match super::scans::ingest(store, &self.lab, file, &self.shared).await {
            Ok(IngestOutcome::Ingested(ingested)) => tracing::info!(
                "scan {name}: ingested, {}, {}, {}",
                count(ingested.hosts_up, "host up", "hosts up"),
                count(ingested.events, "change", "changes"),
                count(ingested.alerts, "alert queued", "alerts queued")
            ),
            Ok(IngestOutcome::AlreadyIngested { .. }) => tracing::debug!("scan {name}: already ingested"),
            Ok(IngestOutcome::Rejected { reason, .. }) => {
                tracing::warn!("scan {name}: rejected ({reason}); recorded as a failed scan")
            }
            Err(error) => tracing::warn!("scan {name}: not ingested: {}", crate::causes::one_line(&error)),
        }
    }

    async fn refresh_scans(&self) {
        let Some(store) = &self.store else { return };
        let loaded: Result<_, StoreError> = async {
            let groups = store.status().await?;
            let deltas = store.latest_events(20).await?;
            Ok((groups, deltas))
        }
        .await;
        match loaded {
            Ok((groups, deltas)) => self.shared.update(|view| {
                view.groups = groups;
                view.deltas = deltas;
            }),
            Err(error) => tracing::warn!("cannot read the scan database: {}", crate::causes::one_line(&error)),
        }
    }
}

/// Where a pass's time goes, logged at debug level (`-vv`).
struct Laps {
    trigger: Trigger,
    started: Instant,
    last: Instant,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl Laps {
    fn new(trigger: Trigger) -> Self {
        let now = Instant::now();
        Self { trigger, started: now, last: now, laps: Vec::new() }
    }

    fn lap(&mut self, what: &'static str) {
        let now = Instant::now();
        self.laps.push((what, now - self.last));
        self.last = now;
    }

    fn log(&self) {
        let laps: Vec<String> =
            self.laps.iter().map(|(what, took)| format!("{what} {:.1} ms", took.as_secs_f64() * 1000.0)).collect();
        let total = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!("{:?} pass in {total:.1} ms: {}", self.trigger, laps.join(", "));
    }
}

/// What a pass does about the differences its plan found.
#[derive(Debug, PartialEq)]
enum Course {
    /// Apply the plan. The objects whose fields other managers took are taken back (their
    /// steps forced, to be dry-run again so): for each, a line per field and who had it.
    Heal { taken: BTreeMap<ObjectKey, Vec<String>> },
    /// Leave the differences as they are and say what they are (`watch.drift: report`).
    Report { drift: Vec<String> },
}

/// Heal or report: a start or a save always applies the file; drift and resyncs follow
/// `watch.drift`, and report only when something differs. Healing takes back the fields
/// other managers took (the file is the truth). Pure: the pass's decision, table-tested.
fn choose(plan: &mut Plan, trigger: Trigger, policy: DriftPolicy) -> Course {
    let mut taken: BTreeMap<ObjectKey, Vec<String>> = BTreeMap::new();
    for problem in &plan.problems {
        if let ProblemKind::Conflict { conflicts } = &problem.kind {
            let lines = conflicts
                .iter()
                .map(|c| format!("{}: {} was changed by field manager \"{}\"", problem.object, c.field, c.manager));
            taken.entry(problem.key.clone()).or_default().extend(lines);
        }
    }
    // A field another manager took is drift: taken back, or reported; never a problem.
    plan.problems.retain(|p| !matches!(p.kind, ProblemKind::Conflict { .. }));
    let heal = policy == DriftPolicy::Heal || matches!(trigger, Trigger::Start | Trigger::Save);
    if !heal {
        let blocked = plan.blocked();
        let mut drift: Vec<String> = taken.values().flatten().cloned().collect();
        let differing = plan.changes().filter(|s| !blocked.contains(&s.key));
        drift.extend(differing.map(describe));
        if !drift.is_empty() {
            return Course::Report { drift };
        }
    }
    for step in plan.steps.iter_mut().filter(|s| taken.contains_key(&s.key)) {
        step.force = true;
    }
    Course::Heal { taken }
}

fn describe(step: &Step) -> String {
    match &step.change {
        Change::Create(_) => format!("{} is missing", step.object),
        Change::Update { diff, .. } if !diff.is_empty() => {
            let fields: Vec<String> = diff.iter().map(ToString::to_string).collect();
            format!("{} differs: {}", step.object, fields.join("; "))
        }
        Change::Prune(_) => format!("{} is no longer in the file", step.object),
        _ => format!("{} differs", step.object),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::Conflict;
    use crate::reconcile::model::Problem;

    fn key(name: &str) -> ObjectKey {
        ObjectKey { group: "apps".into(), kind: "Deployment".into(), namespace: Some("n".into()), name: name.into() }
    }

    fn step(name: &str, change: Change) -> Step {
        let key = key(name);
        Step {
            object: key.to_string(),
            key,
            component: "c".into(),
            change,
            api_version: "apps/v1".into(),
            force: false,
        }
    }

    /// `same` unchanged, `edited` differing, `taken` differing with `.spec.replicas` taken by
    /// `kubectl-scale`, `rejected` refused by the server.
    fn plan() -> Plan {
        let update = || Change::Update { manifest: Arc::new(json!({})), diff: Vec::new() };
        let conflict = Conflict { manager: "kubectl-scale".into(), field: ".spec.replicas".into() };
        Plan {
            lab: "lab".into(),
            steps: vec![
                step("same", Change::Unchanged),
                step("edited", update()),
                step("taken", update()),
                step("rejected", update()),
            ],
            problems: vec![
                Problem::new(&key("taken"), ProblemKind::Conflict { conflicts: vec![conflict] }),
                Problem::new(&key("rejected"), ProblemKind::Rejected { message: "no".into() }),
            ],
            inventory: Inventory::new("lab", "seclab"),
            inventory_stale: false,
            kinds: HashMap::new(),
            allow_destructive: false,
        }
    }

    #[test]
    fn a_pass_heals_or_reports_as_its_trigger_and_the_drift_policy_say() {
        let taken_line = "Deployment.apps n/taken: .spec.replicas was changed by field manager \"kubectl-scale\"";
        let cases = [
            (Trigger::Start, DriftPolicy::Report, true),
            (Trigger::Save, DriftPolicy::Report, true),
            (Trigger::Drift, DriftPolicy::Heal, true),
            (Trigger::Resync, DriftPolicy::Heal, true),
            (Trigger::Drift, DriftPolicy::Report, false),
            (Trigger::Resync, DriftPolicy::Report, false),
        ];
        for (trigger, policy, heals) in cases {
            let mut plan = plan();
            let course = choose(&mut plan, trigger, policy);
            let what = format!("{trigger:?} with {policy:?}");
            let forced: Vec<&str> = plan.steps.iter().filter(|s| s.force).map(|s| s.key.name.as_str()).collect();
            let problems: Vec<String> = plan.problems.iter().map(|p| p.key.name.clone()).collect();
            assert_eq!(problems, ["rejected"], "{what}: a taken field is drift, a rejection stays a problem");
            if heals {
                let taken = BTreeMap::from([(key("taken"), vec![taken_line.to_owned()])]);
                assert_eq!(course, Course::Heal { taken }, "{what}");
                assert_eq!(forced, ["taken"], "{what}: only the taken object is forced");
            } else {
                let drift = vec![
                    taken_line.to_owned(),
                    "Deployment.apps n/edited differs".to_owned(),
                    "Deployment.apps n/taken differs".to_owned(),
                ];
                assert_eq!(course, Course::Report { drift }, "{what}");
                assert!(forced.is_empty(), "{what}: nothing is forced when nothing is applied");
            }
        }
    }

    #[test]
    fn reporting_with_nothing_different_applies_what_little_there_is() {
        let mut plan = plan();
        plan.steps.retain(|s| s.key.name == "same" || s.key.name == "rejected");
        plan.problems.retain(|p| p.key.name == "rejected");
        assert_eq!(choose(&mut plan, Trigger::Resync, DriftPolicy::Report), Course::Heal { taken: BTreeMap::new() });
    }
}
