//! Deterministic simulation of the whole failover protocol.
//!
//! One run puts the real monitor group (three `mmm_mond` replicas: openraft with the
//! production state machine, the checkers, the leader loop, the driver, the lease grant) and
//! four real agents (`mmm_agent::Agent`: status, promotion, lease, watchdog, fencing,
//! reconciliation) on one single-threaded tokio runtime with paused time, over a simulated
//! network (`net`) and a model of the MySQL servers and VIPs (`db`). Every random choice,
//! including tokio's own, comes from the run's seed, so a seed replays the same run event for
//! event. Faults come from the seed too (`faults`); the invariants are checked every 5 ms of
//! virtual time (`check`). `mmm_sim --seed N --trace` replays one run with every log line of
//! the real code, stamped with virtual time.
//!
//! `cluster` wires the real code to the simulated world, `store` is the replicas' storage in
//! memory, `raftnet` carries Raft RPCs, `run` drives one run.

#[cfg(not(tokio_unstable))]
compile_error!(
    "the simulation needs tokio's seeded scheduler: build with RUSTFLAGS=\"--cfg tokio_unstable\" (the workspace's .cargo/config.toml sets it; an RUSTFLAGS environment variable overrides that file)"
);

pub mod check;
pub mod cluster;
pub mod db;
pub mod faults;
pub mod net;
pub mod raftnet;
pub mod run;
pub mod store;
