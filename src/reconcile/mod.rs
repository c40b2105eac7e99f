//! Reconciling: the desired state applied to what exists, in the cluster and in the scan
//! database.
//!
//! A plan is made in three parts ([`observe`], the pure [`decide`], and
//! [`plan::confirm`] with server-side dry-runs), carried out by [`apply`] and followed by
//! [`wait`]; [`sequence`] strings them together with the scan database sync for every
//! command that applies.

pub mod apply;
pub mod certificates;
pub mod decide;
pub mod destroy;
pub mod fan_out;
pub mod model;
pub mod observe;
pub mod plan;
pub mod scan_database;
pub mod secrets;
pub mod sequence;
pub mod status;
pub mod tenant_databases;
pub mod wait;
