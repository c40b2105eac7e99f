//! The scan side: nmap XML parsing, scan-to-scan deltas, the scan database, host
//! states and alerts. Parsing, comparing and state transitions are pure; the store and
//! the alert senders are the only parts that do I/O.

pub mod alerts;
pub mod chunks;
pub mod coverage;
pub mod diff;
pub mod files;
pub mod model;
pub mod parse;
pub mod report;
pub mod run;
pub mod state;
pub mod store;
pub mod xml;
