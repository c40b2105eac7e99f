//! Continuous mode (`seclab watch`): the file applied on every valid save, the lab's objects
//! followed by watchers and healed when someone changes or deletes them, a resync from the
//! watch caches on an interval, new scans ingested as they land and their alerts delivered,
//! and health, metrics and a status page served over HTTP.
//!
//! One loop owns the reconciling and runs one pass at a time; everything else (watchers,
//! file watches, the deliverer, the endpoints) only tells it what happened or reads what it
//! shows.

pub mod cache;
mod files;
pub mod http;
mod lease;
pub mod memory;
pub mod metrics;
mod page;
mod pass;
mod scans;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::cluster::requests::RequestObserver;
use crate::cluster::{Cluster, ClusterError};
use crate::config::{self, Lab, LoadError, ResolveError};
use crate::reconcile::scan_database::{self, base_dir};
use crate::render::Templates;
use crate::scan::store::StoreError;

use self::files::FileEvent;
use self::lease::{Election, LeaseError};
use self::metrics::RequestLabels;
use self::pass::{Reconciler, Trigger};
use self::state::Shared;

/// How `watch` was started.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The desired-state file.
    pub file: PathBuf,
    /// Templates that override the built-in ones.
    pub templates: Option<PathBuf>,
    /// The kubeconfig, else the usual places.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context, else `cluster.context`, else the current one.
    pub context: Option<String>,
    /// The endpoints' address, instead of `watch.listen`.
    pub listen: Option<SocketAddr>,
}

/// Why `watch` could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The file cannot be read or has problems at the start.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The endpoints cannot be served.
    #[error(transparent)]
    Serve(#[from] http::ServeError),
    /// The token cannot be read.
    #[error("cannot read watch.token")]
    Token(#[source] ResolveError),
    /// The token is too short to keep anyone out.
    #[error(
        "watch.token: it is {0} characters long; use at least {min} (e.g. `openssl rand -hex 16`)",
        min = http::MIN_TOKEN
    )]
    ShortToken(usize),
    /// The kubeconfig cannot be used.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The files cannot be watched.
    #[error("cannot watch the files: {0}")]
    Files(#[from] notify_debouncer_full::notify::Error),
    /// The scan database cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The election of the active watch cannot be joined.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// Runs continuous mode until `stop` fires; calls `ready` with the endpoints' address once
/// they are served.
pub async fn run(
    settings: Settings,
    stop: CancellationToken,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), WatchError> {
    memory::hold_little();
    let lab = config::load(&settings.file)?;
    let spec = lab.spec().watch.clone();
    let listen = settings.listen.unwrap_or(lab.parsed().listen);
    let token = spec.token.as_ref().map(|t| t.resolve(&base_dir(&lab))).transpose().map_err(WatchError::Token)?;
    if let Some(short) = token.as_ref().filter(|t| t.chars().count() < http::MIN_TOKEN) {
        return Err(WatchError::ShortToken(short.chars().count()));
    }
    let listener = http::bind(listen, token.as_deref()).await?;
    let address = listener.local_addr().map_err(|source| http::ServeError::Bind { address: listen, source })?;
    let shared = Arc::new(Shared::new(lab.name()));
    let context = settings.context.as_deref().or(lab.spec().cluster.context.as_deref());
    let counted = shared.clone();
    let observer: RequestObserver = Arc::new(move |verb, code| {
        let labels = RequestLabels { verb, code: code.to_string() };
        counted.metrics.api_requests.get_or_create(&labels).inc();
        if code != 0 {
            counted.answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let cluster = Arc::new(Cluster::connect_counted(settings.kubeconfig.as_deref(), context, Some(observer)).await?);

    let server = tokio::spawn(http::serve(listener, shared.clone(), token, stop.clone()));
    ready(address);
    tracing::info!("serving /healthz, /readyz, /metrics and the status page on http://{address}");

    let has_scans = lab.spec().tenants.iter().any(|t| !t.scans.is_empty());
    let store = if has_scans { Some(scan_database::open(&lab).await?) } else { None };
    let lab = Arc::new(lab);
    let (lab_tx, lab_rx) = tokio::sync::watch::channel(lab.clone());
    let wake = Arc::new(Notify::new());
    let deliverer = store
        .clone()
        .map(|store| tokio::spawn(scans::deliverer(store, lab_rx, shared.clone(), wake.clone(), stop.clone())));

    let (file_tx, mut file_events) = mpsc::unbounded_channel();
    let scan_dir = scan_database::scan_directory(&lab);
    let debounce = lab.parsed().debounce;
    let _watches = files::watch(&settings.file, settings.templates.as_deref(), &scan_dir, debounce, file_tx)?;
    if store.is_some()
        && !scan_dir.is_dir()
        && let Err(error) = std::fs::create_dir_all(&scan_dir)
    {
        tracing::warn!(
            "the scan directory {} does not exist and cannot be made ({error}), so new scans are not ingested; create it (or set scanDatabase.scanDirectory) and restart watch",
            scan_dir.display()
        );
    }
    let (notice_tx, mut notices) = mpsc::unbounded_channel();
    let templates = settings.templates.as_ref().map_or_else(Templates::embedded, Templates::with_overrides);
    let mut reconciler = Reconciler::new(
        cluster,
        settings.file.clone(),
        templates,
        lab.clone(),
        lab_tx,
        notice_tx,
        shared.clone(),
        store.clone(),
    );

    let Some(mut election) = join_when_reachable(reconciler.cluster(), &lab, &shared, &stop).await? else {
        // Stopped before the API server ever answered.
        finish(deliverer, store, server).await;
        return Ok(());
    };
    tracing::info!("waiting for the Lease: one watch per lab reconciles, the others stand by");

    let mut resync = tokio::time::interval(reconciler.resync_interval());
    resync.tick().await;
    let mut active = false;
    let mut pending = None;
    let mut backoff = backoff();
    let mut retry_at = tokio::time::Instant::now();
    loop {
        let still_written = pending.filter(|t| *t >= Trigger::Save).and_then(|_| settling(&settings.file, debounce));
        if let Some(wait) = still_written {
            // A file still being written may be cut short, and a cut file can be valid: read it
            // only once it has been left alone for the debounce time.
            retry_at = retry_at.max(tokio::time::Instant::now() + wait);
        }
        if let Some(trigger) = pending.filter(|_| active && tokio::time::Instant::now() >= retry_at) {
            let outcome = reconciler.pass(trigger, &stop).await;
            memory::release();
            match outcome {
                Ok(()) => {
                    pending = None;
                    backoff = self::backoff();
                }
                Err(error) if stop.is_cancelled() => {
                    tracing::info!("stopped during a reconcile: {error}");
                    break;
                }
                Err(error) => {
                    let delay = backoff.next().unwrap_or(MAX_BACKOFF);
                    tracing::warn!(
                        "reconcile failed, retrying in {:.1}s: {}",
                        delay.as_secs_f64(),
                        crate::causes::one_line(&error)
                    );
                    retry_at = tokio::time::Instant::now() + delay;
                }
            }
        }
        let retry = tokio::time::sleep_until(retry_at);
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(leader) = election.changed() => {
                if leader && !active {
                    tracing::info!("this watch holds the Lease and reconciles the lab");
                    active = true;
                    pending = Some(Trigger::Start);
                    if store.is_some() {
                        reconciler.ingest(scans::finished(&scan_dir)).await;
                        wake.notify_one();
                    }
                } else if !leader && active {
                    tracing::warn!("this watch lost the Lease; standing by");
                    active = false;
                    pending = None;
                    reconciler.stop();
                }
                shared.update(|view| view.active = active);
            }
            Some(event) = file_events.recv() => match event {
                FileEvent::Desired => pending = Trigger::Save.over(pending),
                FileEvent::Scan(path) if active => {
                    if let Some(file) = scans::scan_file(&path).filter(|_| store.is_some()) {
                        reconciler.ingest(vec![file]).await;
                        wake.notify_one();
                    }
                }
                FileEvent::Scan(_) => {}
                FileEvent::Failed(message) => tracing::warn!("{message}"),
            },
            Some(notice) = notices.recv() => {
                let mut batch = vec![notice];
                while let Ok(more) = notices.try_recv() {
                    batch.push(more);
                }
                if let Some(trigger) = reconciler.notices(batch) {
                    pending = trigger.over(pending);
                }
            }
            _ = resync.tick(), if active => pending = Trigger::Resync.over(pending),
            () = retry, if pending.is_some() => {}
        }
    }

    reconciler.stop();
    election.resign().await;
    finish(deliverer, store, server).await;
    Ok(())
}

/// The last of a stop: alerts in flight sent, the scan database closed, the endpoints done.
async fn finish<T, S>(
    deliverer: Option<tokio::task::JoinHandle<T>>,
    store: Option<crate::scan::store::Store>,
    server: tokio::task::JoinHandle<S>,
) {
    if let Some(deliverer) = deliverer {
        deliverer.await.ok();
    }
    if let Some(store) = store {
        store.close().await;
    }
    server.await.ok();
    tracing::info!("stopped");
}

/// Joins the lab's election, retrying with backoff while the API server cannot be reached (a
/// watch started at boot, before the cluster): `/readyz` says why meanwhile. `None` when
/// stopped first.
async fn join_when_reachable(
    cluster: &Cluster,
    lab: &Lab,
    shared: &Shared,
    stop: &CancellationToken,
) -> Result<Option<Election>, WatchError> {
    let mut backoff = backoff();
    loop {
        match Election::join(cluster, lab.name(), &lab.spec().cluster.namespace).await {
            Ok(election) => {
                shared.update(|view| view.unreachable = None);
                return Ok(Some(election));
            }
            Err(LeaseError::Namespace { source: source @ ClusterError::Transport { .. }, .. }) => {
                let reason = crate::causes::one_line(&source);
                let delay = backoff.next().unwrap_or(MAX_BACKOFF);
                tracing::warn!(
                    "the API server cannot be reached, trying again in {:.1}s: {reason}",
                    delay.as_secs_f64()
                );
                shared.update(|view| view.unreachable = Some(reason));
                tokio::select! {
                    () = stop.cancelled() => return Ok(None),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// How much longer to wait before reading `file`, when it changed less than `quiet` ago.
fn settling(file: &std::path::Path, quiet: Duration) -> Option<Duration> {
    let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok()?;
    let age = modified.elapsed().unwrap_or_default();
    (age < quiet).then(|| quiet - age)
}

/// Exponential backoff with jitter, from half a second to half a minute, without end.
fn backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(MAX_BACKOFF)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
