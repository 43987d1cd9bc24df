//! The pure model of an MMM cluster.
//!
//! `step(topology, state, now, event)` applies one event (check results, a tick, agent
//! reachability or uptime, the monitor's network state, the startup vote, an admin command) to
//! the replicated `ClusterState` and returns an `Outcome`: MMM's reply text, the notices to
//! log and the effects for the leader to execute. `render` answers the read-only commands with
//! MMM's exact text. The rules are MMM 2.2.1's (see the table below), except where MMM was
//! wrong (ARCHITECTURE.md lists the deliberate differences).
//!
//! Architecture invariant: no IO, no clock reads, no randomness. Time is an input, maps are
//! ordered, so every replica that applies the same events reaches the same state.
//!
//! Tests: golden scripts in `core/tests/golden/<area>/<behaviour>`, run by
//! `core/tests/golden.rs`; property tests in `core/tests/properties.rs`.
//!
//! # Rules and the scripts that prove them
//!
//! Sections refer to the MMM 2.2.1 reference; scripts live under `core/tests/golden/`.
//!
//! | Rule (reference section) | Scripts |
//! |---|---|
//! | ONLINE → HARD_OFFLINE on ping or mysql failure (§1.3) | `states/online_to_hard_offline_when_ping_fails`, `states/online_to_hard_offline_when_mysql_fails` |
//! | ONLINE → REPLICATION_FAIL / REPLICATION_DELAY (§1.3) | `states/slave_online_to_replication_fail_when_rep_threads_fail`, `states/slave_online_to_replication_delay_when_backlog_too_big`, `states/passive_master_online_to_replication_fail`, `states/passive_master_online_to_replication_delay`, `states/both_rep_checks_failing_gives_replication_fail` |
//! | Active master never REPLICATION_*; 60 s peer grace; peer must pass ping and mysql (§1.3) | `states/active_master_never_goes_replication_fail`, `states/replication_failure_ignored_during_peer_online_grace`, `states/peer_online_grace_measured_from_peer_online_since`, `states/replication_failure_ignored_when_peer_fails_in_same_pass` |
//! | AWAITING_RECOVERY → HARD_OFFLINE / ONLINE (short outage, auto_set_online) (§1.3, §1.9) | `states/awaiting_recovery_to_hard_offline`, `states/awaiting_recovery_to_online_after_short_outage`, `states/awaiting_recovery_stays_after_reboot`, `states/awaiting_recovery_stays_after_outage_of_60_seconds`, `states/awaiting_recovery_to_online_by_auto_set_online`, `states/auto_set_online_zero_means_never`, `states/awaiting_recovery_needs_replication_checks_to_go_online` |
//! | HARD_OFFLINE → REPLICATION_* / AWAITING_RECOVERY, active-master guard (§1.3) | `states/hard_offline_to_replication_fail_when_rep_threads_fail`, `states/hard_offline_to_replication_delay_when_backlog_too_big`, `states/hard_offline_to_awaiting_recovery_when_checks_pass`, `states/hard_offline_master_ignores_replication_without_active_master`, `states/hard_offline_master_checks_replication_when_active_master_exists` |
//! | REPLICATION_FAIL ↔ REPLICATION_DELAY, → ONLINE, → HARD_OFFLINE (§1.3) | `states/replication_fail_to_replication_delay`, `states/replication_delay_to_replication_fail`, `states/replication_fail_to_online_on_recovery`, `states/replication_delay_to_online_on_recovery`, `states/replication_fail_to_online_when_peer_not_online`, `states/replication_fail_to_hard_offline`, `states/replication_delay_to_hard_offline` |
//! | ADMIN_OFFLINE and UNKNOWN untouched; network check freezes everything (§1.3, §1.4) | `states/admin_offline_skipped_by_automation`, `states/unknown_before_startup_changes_nothing`, `states/network_down_freezes_states_and_sends_nothing`, `states/network_up_sends_status_changed_while_down` |
//! | Flapping: count, window, ADMIN_OFFLINE exclusion, effects, set_online clears (§1.9) | every script in `flapping/` |
//! | Startup vote, careful_startup, dropped roles, unreachable agents, status file (§1.8) | every script in `startup/` |
//! | WAIT, MANUAL and PASSIVE modes (§1.6) | every script in `modes/` |
//! | Orphans, fewest roles (writer 0.5), prefer, failback, balancing (§1.5) | every script in `roles/` |
//! | Every mmm_control command and each of its replies, in MMM's order of checks (§1.2) | every script in `commands/`, one per reply string |
//! | Failover and the seed document's test; epochs; fencing; re-pointing (§1.7) | every script in `failover/` |
//! | `switchover` (not in MMM): a planned writer move between two healthy hosts | `commands/switchover_*` |

pub mod api;
pub mod commands;
pub mod detector;
pub mod fence;
#[cfg(test)]
mod fixtures;
pub mod gtid;
pub mod history;
pub mod notice;
pub mod observe;
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
pub use history::Failover;
pub use notice::{Level, ModeCause, Notice, Reason};
pub use rules::{PEER_ONLINE_GRACE, SHORT_OUTAGE};
pub use startup::{AgentReport, StartupReport, StoredStatus, SystemReport};
pub use state::{CheckStatus, ClusterState, HostStatus, IpSlot};
pub use step::{
    agent_status, reconfigure, step, AgentStatus, CheckReport, Effect, Event, Outcome, StepError,
};
pub use topology::{HostSpec, RoleSpec, Settings, Topology, TopologyError};
pub use types::{
    CheckKind, Epoch, HostMode, HostName, HostState, Mode, ParseError, RoleIp, RoleMode, RoleName,
    Time,
};
