//! The Prometheus metrics `watch` serves at `/metrics`, named after controller-runtime's and
//! Flux's conventions.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::cluster::requests::Verb;
use crate::scan::alerts::Attempt;

/// Label values that are one of a few words, each written as its metric says it.
macro_rules! label_value {
    ($(#[$doc:meta])* $name:ident { $($(#[$variant_doc:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
        pub enum $name {
            $($(#[$variant_doc])* $variant),*
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
                encoder.write_str(match self { $(Self::$variant => $text),* })
            }
        }
    };
}

label_value! {
    /// How a reconcile pass ended.
    Pass {
        /// The lab was reconciled.
        Success => "success",
        /// The pass failed; it is retried.
        Error => "error",
        /// The saved file was not valid; nothing was changed.
        Rejected => "rejected",
    }
}

label_value! {
    /// What became of a scan file.
    Ingest {
        /// Stored, and compared with the scan before.
        Ingested => "ingested",
        /// Stored before.
        AlreadyIngested => "already_ingested",
        /// Incomplete or malformed: recorded as a failed scan.
        Rejected => "rejected",
    }
}

label_value! {
    /// The state of one of the lab's objects.
    ObjectState {
        /// As the file wants it.
        InSync => "in_sync",
        /// Different, and being healed or reported.
        Drifted => "drifted",
        /// Left alone for a problem.
        Problem => "problem",
    }
}

/// The `result` label of a reconcile pass.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabel {
    /// How it ended.
    pub result: Pass,
}

/// The `result` label of a scan file's ingest.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabel {
    /// What became of it.
    pub result: Ingest,
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
    pub state: ObjectState,
}

impl EncodeLabelValue for Verb {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

/// `verb` and `code` labels of a request to the API server.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The verb, as the audit log names it (`get`, `list`, `watch`, `apply`, `dryrun`...).
    pub verb: Verb,
    /// The HTTP status code, `0` when no answer came.
    pub code: String,
}

/// `route` and `result` labels of an alert delivery.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// The route.
    pub route: String,
    /// How the attempt ended.
    pub result: Attempt,
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
    pub reconciles: Family<PassLabel, Counter>,
    /// How long each reconcile pass took.
    pub reconcile_duration: Histogram,
    /// Objects re-applied because someone else changed or deleted them.
    pub drift_corrections: Family<KindLabel, Counter>,
    /// The lab's objects by state (`in_sync`, `drifted`, `problem`).
    pub objects: Family<StateLabel, Gauge>,
    /// Requests to the API server by verb and code.
    pub api_requests: Family<RequestLabels, Counter>,
    /// Scan files ingested by result.
    pub scans_ingested: Family<IngestLabel, Counter>,
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
        let reconciles = Family::<PassLabel, Counter>::default();
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
        let scans_ingested = Family::<IngestLabel, Counter>::default();
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
    pub fn reconciled(&self, result: Pass, seconds: f64) {
        self.reconciles.get_or_create(&PassLabel { result }).inc();
        self.reconcile_duration.observe(seconds);
    }
}

impl EncodeLabelValue for Attempt {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_written_as_their_metrics_say_them() {
        let metrics = Metrics::default();
        metrics.reconciled(Pass::Rejected, 0.1);
        metrics.scans_ingested.get_or_create(&IngestLabel { result: Ingest::AlreadyIngested }).inc();
        metrics.objects.get_or_create(&StateLabel { state: ObjectState::InSync }).set(3);
        metrics.alerts.get_or_create(&AlertLabels { route: "hook".into(), result: Attempt::Delivered }).inc();
        let text = metrics.encode();
        for line in [
            r#"seclab_reconcile_total{result="rejected"} 1"#,
            r#"seclab_scans_ingested_total{result="already_ingested"} 1"#,
            r#"seclab_objects{state="in_sync"} 3"#,
            r#"seclab_alerts_total{route="hook",result="delivered"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
