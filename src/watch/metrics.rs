//! The Prometheus metrics `watch` serves at `/metrics`, named after controller-runtime's and
//! Flux's conventions.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A `result` label: `success`, `error`, `rejected`...
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// The result.
    pub result: String,
}

/// A `kind` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: String,
}

/// A `state` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state.
    pub state: String,
}

/// `verb` and `code` labels of a request to the API server.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The verb, as the audit log names it (`get`, `list`, `watch`, `apply`, `dryrun`...).
    pub verb: String,
    /// The HTTP status code, `0` when no answer came.
    pub code: String,
}

/// `route` and `result` labels of an alert delivery.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// The route.
    pub route: String,
    /// `delivered` or `failed`.
    pub result: String,
}

/// A `secret` label: a Secret as `namespace/name`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecretLabel {
    /// The Secret.
    pub secret: String,
}

/// Every metric, registered once.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Reconcile passes by result.
    pub reconciles: Family<ResultLabel, Counter>,
    /// How long each reconcile pass took.
    pub reconcile_duration: Histogram,
    /// Objects re-applied because someone else changed or deleted them.
    pub drift_corrections: Family<KindLabel, Counter>,
    /// The lab's objects by state (`in_sync`, `drifted`, `problem`).
    pub objects: Family<StateLabel, Gauge>,
    /// Requests to the API server by verb and code.
    pub api_requests: Family<RequestLabels, Counter>,
    /// Scan files ingested by result.
    pub scans_ingested: Family<ResultLabel, Counter>,
    /// Changes found between scans, by kind.
    pub scan_changes: Family<KindLabel, Counter>,
    /// Alert deliveries by route and result.
    pub alerts: Family<AlertLabels, Counter>,
    /// When the lab was last applied, in seconds since the epoch.
    pub last_applied: Gauge<f64, AtomicU64>,
    /// When each certificate seclab issued expires.
    pub certificate_expiry: Family<SecretLabel, Gauge<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register("seclab_reconcile", "Reconcile passes, by result", reconciles.clone());
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "seclab_reconcile_duration_seconds",
            "How long each reconcile pass took",
            reconcile_duration.clone(),
        );
        let drift_corrections = Family::<KindLabel, Counter>::default();
        registry.register(
            "seclab_drift_corrections",
            "Objects re-applied after someone else changed or deleted them, by kind",
            drift_corrections.clone(),
        );
        let objects = Family::<StateLabel, Gauge>::default();
        registry.register("seclab_objects", "The lab's objects, by state", objects.clone());
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register("seclab_api_requests", "Requests to the API server, by verb and code", api_requests.clone());
        let scans_ingested = Family::<ResultLabel, Counter>::default();
        registry.register("seclab_scans_ingested", "Scan files ingested, by result", scans_ingested.clone());
        let scan_changes = Family::<KindLabel, Counter>::default();
        registry.register("seclab_scan_changes", "Changes found between scans, by kind", scan_changes.clone());
        let alerts = Family::<AlertLabels, Counter>::default();
        registry.register("seclab_alerts", "Alert deliveries, by route and result", alerts.clone());
        let last_applied = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "seclab_last_applied_timestamp_seconds",
            "When the lab was last applied, in seconds since the epoch",
            last_applied.clone(),
        );
        let certificate_expiry = Family::<SecretLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "seclab_certificate_expiry_timestamp_seconds",
            "When each certificate seclab issued expires, in seconds since the epoch",
            certificate_expiry.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            drift_corrections,
            objects,
            api_requests,
            scans_ingested,
            scan_changes,
            alerts,
            last_applied,
            certificate_expiry,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// Counts a reconcile pass.
    pub fn reconciled(&self, result: &str, seconds: f64) {
        self.reconciles.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
        self.reconcile_duration.observe(seconds);
    }
}
