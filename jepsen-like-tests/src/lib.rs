//! The jepsen-like chaos suite for the docker-compose cluster.
//!
//! - [`workload`]: clients writing unique values and counter increments through the writer
//!   VIP (fresh and kept connections) and reading through the reader VIPs;
//! - [`prober`]: samples `read_only` and the addresses of every database host;
//! - [`nemesis`]: kills, pauses and partitions mysqld, agents and monitor replicas, alone and
//!   together, on a fixed schedule or a random one from a seed;
//! - [`checker`]: no acknowledged write lost, no two writers at once, replicas converged;
//! - [`run`]: one whole run, its history files and its human-readable summary.

pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod prober;
pub mod run;
pub mod workload;
