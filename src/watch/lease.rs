//! One active reconciler per lab: `watch` processes elect one with a
//! `coordination.k8s.io` Lease in the lab's namespace. The others serve their endpoints as
//! standbys and take over within the lease's duration when the holder stops; a clean stop
//! releases the Lease at once.

use std::time::Duration;

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, ClusterError};
use crate::identity::{self, MANAGER};

/// How long a holder keeps the Lease without renewing it.
const DURATION_SECONDS: u64 = 15;
/// How long before expiry the holder renews it.
const GRACE_SECONDS: u64 = 5;

/// Why the election could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The Lease could not be read or created.
    #[error("cannot use the Lease {name} in {namespace} (one active watch per lab): {source}")]
    Lease {
        /// The Lease's name.
        name: String,
        /// Its namespace.
        namespace: String,
        /// The reason.
        source: LeaseManagerError,
    },
    /// The lab's namespace could not be created for the Lease.
    #[error("cannot create the namespace {namespace} for the Lease: {source}")]
    Namespace {
        /// The namespace.
        namespace: String,
        /// The reason.
        source: ClusterError,
    },
}

/// This process's place in the election.
pub struct Election {
    leader: tokio::sync::watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election for `lab`, whose namespace is `namespace` (created when missing,
    /// as the lab's own first apply would).
    pub async fn join(cluster: &Cluster, lab: &str, namespace: &str) -> Result<Self, LeaseError> {
        let name = format!("seclab-{lab}-watch");
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "seclab".into());
        let identity = format!("{host}-{}", std::process::id());
        let build = || {
            LeaseManagerBuilder::new(cluster.client(), &name)
                .with_namespace(namespace)
                .with_identity(&identity)
                .with_duration(DURATION_SECONDS)
                .with_grace(GRACE_SECONDS)
                .with_field_manager(MANAGER)
                .build()
        };
        let manager = match build().await {
            Ok(manager) => manager,
            Err(first) => {
                let missing = |source| LeaseError::Namespace { namespace: namespace.to_owned(), source };
                let kind = cluster.kind("v1", "Namespace").await.map_err(missing)?;
                if cluster.get(&kind, None, namespace).await.map_err(missing)?.is_some() {
                    return Err(LeaseError::Lease { name, namespace: namespace.to_owned(), source: first });
                }
                let manifest = json!({ "apiVersion": "v1", "kind": "Namespace",
                    "metadata": { "name": namespace, "labels": identity::labels(lab) } });
                cluster.apply(&kind, &manifest, false).await.map_err(missing)?;
                build().await.map_err(|source| LeaseError::Lease { name, namespace: namespace.to_owned(), source })?
            }
        };
        let (leader, task) = manager.watch().await;
        Ok(Self { leader, task })
    }

    /// Waits until this process becomes the leader or stops being it; returns which, or
    /// `None` once the election has ended.
    pub async fn changed(&mut self) -> Option<bool> {
        self.leader.changed().await.ok()?;
        Some(*self.leader.borrow_and_update())
    }

    /// Leaves the election, releasing the Lease if this process holds it.
    pub async fn resign(self) {
        let Self { leader, task } = self;
        drop(leader);
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(error))) => tracing::warn!("cannot release the Lease: {}", crate::causes::one_line(&error)),
            Ok(Err(error)) => tracing::warn!("cannot release the Lease: {}", crate::causes::one_line(&error)),
            Err(_) => tracing::warn!("the Lease was not released within 5s; it expires by itself"),
        }
    }
}
