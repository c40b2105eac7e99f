//! What `watch` knows and shows: read by the HTTP endpoints, written by the reconcile loop.

use std::sync::Mutex;

use serde::Serialize;

use crate::scan::store::{EventRecord, GroupStatus};

use super::metrics::Metrics;

/// The state shared between the reconcile loop and the endpoints.
pub struct Shared {
    /// The metrics.
    pub metrics: Metrics,
    /// Everything else, replaced piece by piece.
    pub view: Mutex<View>,
    /// Requests the API server answered (with any status), so far.
    pub answered: std::sync::atomic::AtomicU64,
}

/// What the status page and `/readyz` show.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// The lab's name.
    pub lab: String,
    /// Whether this process is the active reconciler.
    pub active: bool,
    /// Whether a reconcile has succeeded since the start.
    pub reconciled: bool,
    /// Why the API server is not reachable, while it is not.
    pub unreachable: Option<String>,
    /// The last reconcile: when (RFC 3339) and what it did.
    pub last_reconcile: Option<(String, String)>,
    /// The last save of the file that was rejected, with file:line:column; cleared by the
    /// next valid save.
    pub rejected_edit: Option<String>,
    /// Objects that cannot be applied as the file says, and why.
    pub problems: Vec<String>,
    /// Objects that are not ready, and why.
    pub not_ready: Vec<(String, String)>,
    /// Drift seen and, with `watch.drift: report`, left in place.
    pub drift: Vec<String>,
    /// Scan groups: last scan and hosts by status code.
    pub groups: Vec<GroupStatus>,
    /// The newest changes found between scans, by group.
    pub deltas: Vec<(String, EventRecord)>,
}

impl Shared {
    /// Fresh state for lab `lab`.
    pub fn new(lab: &str) -> Self {
        Self {
            metrics: Metrics::default(),
            view: Mutex::new(View { lab: lab.to_owned(), ..View::default() }),
            answered: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Changes the view.
    pub fn update(&self, change: impl FnOnce(&mut View)) {
        change(&mut self.view.lock().expect("view lock"));
    }

    /// A copy of the view.
    pub fn view(&self) -> View {
        self.view.lock().expect("view lock").clone()
    }

    /// Whether `/readyz` says ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        let view = self.view.lock().expect("view lock");
        // First: a watch that cannot reach the API server cannot hold the Lease either.
        if let Some(reason) = &view.unreachable {
            return Err(format!("the API server is not reachable: {reason}"));
        }
        if !view.active {
            return Err("standing by: another seclab watch holds the Lease and reconciles this lab".into());
        }
        if !view.reconciled {
            return Err("no reconcile has succeeded yet".into());
        }
        Ok(())
    }
}
