//! Bootstrap: what a fresh node needs before the lab's first apply. The node-side files
//! ([`node`]) merged into the node's own, and the operators the file names ([`operators`])
//! installed as sets of their own; the lab itself is then applied with the same sequence as
//! `apply --wait`; last, the systemd service that runs `seclab watch` ([`service`]).

pub mod node;
pub mod operators;
pub mod service;
