//! The monitor daemon `mmm_mond`.
//!
//! Every replica of the monitor group runs one: it opens its Raft store, joins the group over
//! HTTP, serves the monitor API (`api`) and, while it leads, proposes what the cluster model
//! needs (`leader`): the topology from the configuration files, then ticks of time. The
//! checkers, the failure detector and the agent calls are not built yet.
//!
//! Tests: `tests/group.rs` runs three replicas as separate processes.

pub mod api;
pub mod group;
pub mod leader;
pub mod lease;
pub mod membership;
pub mod replica;
pub mod topology;

/// The wall clock as the core's `Time`. Only a leader stamps events with it.
pub fn now() -> mmm_core::Time {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    mmm_core::Time(ms)
}
