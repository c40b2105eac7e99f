//! Reconciling: the desired state applied to what exists, in the cluster (plan, apply,
//! wait, destroy) and in the scan database.

pub mod apply;
pub mod destroy;
pub mod plan;
pub mod scan_database;
pub mod secrets;
pub mod wait;
