//! Scans in continuous mode: every finished file under the scan directory ingested once
//! (off the async executor, so a large scan never stalls the endpoints), and a deliverer
//! that sends the alerts it raises, with retries, for as long as `watch` runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Lab;
use crate::reconcile::scan_database::base_dir;
use crate::scan::alerts;
use crate::scan::diff::NoisePolicy;
use crate::scan::files::{self, ScanFile};
use crate::scan::store::{IngestOutcome, Store, StoreError};

use super::metrics::{AlertLabels, Ingest, IngestLabel, KindLabel};
use super::state::Shared;

/// How often the deliverer retries alerts still waiting when nothing new arrives.
const RETRY_EVERY: Duration = Duration::from_secs(15);

/// The scan files under `dir` that are finished (named `*.xml`, not hidden).
pub fn finished(dir: &Path) -> Vec<ScanFile> {
    if !dir.is_dir() {
        return Vec::new();
    }
    files::find(dir).unwrap_or_else(|error| {
        tracing::warn!(
            "cannot read the scan directory {}: {error}; scans already there are not ingested",
            dir.display()
        );
        Vec::new()
    })
}

/// The scan file at `path`, when it is a finished scan of a group (`<tenant>/<group>/*.xml`).
pub fn scan_file(path: &Path) -> Option<ScanFile> {
    let name = path.file_name()?.to_str()?;
    if !name.ends_with(".xml") || name.starts_with('.') || !path.is_file() {
        return None;
    }
    let (tenant, group) = files::group_of(path)?;
    Some(ScanFile { tenant, group, path: path.to_owned() })
}

/// Ingests `file` into `store` on a blocking thread; counts the result and its changes.
pub async fn ingest(store: &Store, lab: &Lab, file: ScanFile, shared: &Shared) -> Result<IngestOutcome, StoreError> {
    let alerts = &lab.spec().alerts;
    let noise = NoisePolicy::of(alerts);
    let repeat_window = alerts.repeat_window;
    let (handle, owned_store) = (tokio::runtime::Handle::current(), store.clone());
    let (tenant, group, path) = (file.tenant.clone(), file.group.clone(), file.path.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        handle.block_on(owned_store.ingest(&tenant, &group, &path, noise, repeat_window))
    })
    .await
    .map_err(|e| StoreError::Query(format!("the ingest of {} stopped: {e}", file.path.display())))??;
    // The changes first: a scan counted as ingested has its changes counted already.
    if let IngestOutcome::Ingested(ingested) = &outcome
        && ingested.events > 0
    {
        let changes = store.event_history(&file.tenant, &file.group, None, ingested.events as i64).await?;
        for change in changes.iter().filter(|c| c.scan_id == ingested.scan_id) {
            shared.metrics.scan_changes.get_or_create(&KindLabel { kind: change.kind.clone() }).inc();
        }
    }
    let result = match &outcome {
        IngestOutcome::Ingested(_) => Ingest::Ingested,
        IngestOutcome::AlreadyIngested { .. } => Ingest::AlreadyIngested,
        IngestOutcome::Rejected { .. } => Ingest::Rejected,
    };
    shared.metrics.scans_ingested.get_or_create(&IngestLabel { result }).inc();
    Ok(outcome)
}

/// Delivers alerts whenever `wake` is notified, and every [`RETRY_EVERY`] while some wait,
/// until `stop` fires.
pub async fn deliverer(
    store: Store,
    lab: tokio::sync::watch::Receiver<Arc<Lab>>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        let current = lab.borrow().clone();
        match alerts::deliver(&store, current.spec(), &base_dir(&current), Duration::from_secs(5)).await {
            Ok(report) => {
                for ((route, result), count) in &report.attempts {
                    let labels = AlertLabels { route: route.clone(), result: *result };
                    shared.metrics.alerts.get_or_create(&labels).inc_by(*count);
                }
            }
            Err(error) => tracing::warn!("cannot deliver alerts: {}", crate::causes::one_line(&error)),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}
