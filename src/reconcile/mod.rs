//! Reconciling: the desired state applied to what exists. Today, the scan database.

pub mod scan_database;
