//! The pure model of an MMM cluster.
//!
//! `step(topology, state, now, event)` applies one event (check results, a tick, agent
//! reachability or uptime, the monitor's network state, the startup vote, an admin command) to
//! the replicated `ClusterState` and returns an `Outcome`: MMM's reply text, the notices to
//! log and the effects for the leader to execute. `render` answers the read-only commands with
//! MMM's exact text. The rules are MMM 2.2.1's (see the table below), except where MMM was
//! wrong.
//!
//! Architecture invariant: no IO, no clock reads, no randomness. Time is an input, maps are
//! ordered, so every replica that applies the same events reaches the same state.
//!
//! Tests: golden scripts in `core/tests/golden/<area>/<behaviour>`, run by
//! `core/tests/golden.rs`; property tests in `core/tests/properties.rs`.

pub mod commands;
pub mod detector;
pub mod notice;
pub mod render;
mod roles;
mod rules;
pub mod startup;
pub mod state;
pub mod step;
pub mod topology;
pub mod types;

pub use commands::Command;
pub use detector::{Probe, Trap, Verdict};
pub use notice::{Level, ModeCause, Notice, Reason};
pub use rules::{PEER_ONLINE_GRACE, SHORT_OUTAGE};
pub use startup::{AgentReport, StartupReport, StoredStatus, SystemReport};
pub use state::{CheckStatus, ClusterState, HostStatus, IpSlot};
pub use step::{agent_status, step, AgentStatus, CheckReport, Effect, Event, Outcome, StepError};
pub use topology::{HostSpec, RoleSpec, Settings, Topology, TopologyError};
pub use types::{
    CheckKind, Epoch, HostMode, HostName, HostState, Mode, ParseError, RoleIp, RoleMode, RoleName,
    Time,
};
