//! seclab: one desired-state file to a running home-lab security stack on Kubernetes.
//!
//! The stages run in one direction: [`config`] reads and checks the file, [`render`] turns
//! it into Kubernetes objects and node-side files, [`reconcile`] applies them to the
//! [`cluster`] and the scan database; [`watch`] keeps doing so, and [`bootstrap`] prepares a
//! fresh node (its files, the operators the lab needs) before the first apply.

pub mod bootstrap;
pub mod causes;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod identity;
pub mod reconcile;
pub mod render;
pub mod scan;
pub mod watch;
pub mod words;
