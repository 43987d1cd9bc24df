//! Notices: what the core tells the operator about each change, with MMM's log wording.
//!
//! A notice is typed (host, role, states, reason), so the daemons log it with structured
//! fields; `Display` gives the MMM 2.2.1 message and `level` its Log4perl level (MMM logs every
//! state change at FATAL, its alerting channel).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{Epoch, HostName, HostState, Mode, RoleIp, RoleName};

/// Log level of a notice, as MMM used them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// State changes and admin actions: MMM's alerting channel.
    Fatal,
    /// Something failed.
    Error,
    /// Something unexpected that the monitor worked around.
    Warn,
    /// Routine role movements and mode changes.
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Fatal => "FATAL",
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
        })
    }
}

/// Why a host changed state, where MMM's message says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// No explanation in the message.
    Plain,
    /// Leaving for HARD_OFFLINE: which of ping and mysql failed.
    Checks {
        /// ping check result.
        ping: bool,
        /// mysql check result.
        mysql: bool,
    },
    /// A flapping host goes to AWAITING_RECOVERY instead of ONLINE.
    Flapping,
    /// Back ONLINE because the agent's uptime shows a short outage without reboot.
    ShortOutage {
        /// Seconds the host was down.
        secs: u64,
    },
    /// Back ONLINE because `auto_set_online` passed.
    AutoSetOnline {
        /// The configured seconds.
        auto_secs: u64,
        /// Seconds spent in AWAITING_RECOVERY.
        waited_secs: u64,
    },
    /// A flapping host back ONLINE because `flap_duration` passed without another failure.
    FlapDurationPassed {
        /// The configured flap_duration in seconds.
        flap_secs: u64,
        /// Seconds spent in AWAITING_RECOVERY.
        waited_secs: u64,
    },
    /// Changed by `move_role --force`.
    ForcedMove,
    /// Out of rotation: the host has transactions the active master lacks.
    Errant {
        /// The active master it was compared with.
        writer: HostName,
        /// How many (`5`, `at least 2`).
        count: String,
        /// Which, as `gtid::Errant` prints them.
        gtids: String,
    },
}

/// Why the mode changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModeCause {
    /// An admin command.
    Admin,
    /// WAIT ended because both masters are ONLINE.
    BothMastersOnline {
        /// First master.
        first: HostName,
        /// Second master.
        second: HostName,
    },
    /// WAIT ended because the other master did not come ONLINE in time.
    WaitedTooLong {
        /// The master that stayed down.
        dead: HostName,
        /// wait_for_other_master in seconds.
        secs: u64,
    },
    /// Startup found the writer IP on more than one host and `careful_startup` is on.
    StartupConflict,
}

/// One thing worth telling the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// A host changed state by a rule.
    StateChanged {
        /// The host.
        host: HostName,
        /// Old state.
        from: HostState,
        /// New state.
        to: HostState,
        /// Why, where MMM says it.
        reason: Reason,
    },
    /// An admin changed a host's state.
    AdminStateChanged {
        /// The host.
        host: HostName,
        /// Old state.
        from: HostState,
        /// New state.
        to: HostState,
    },
    /// A host left ONLINE too often.
    Flapping {
        /// The host.
        host: HostName,
    },
    /// A role was taken from a host.
    RoleRemoved {
        /// The host.
        host: HostName,
        /// The role.
        role: RoleIp,
    },
    /// An unassigned role IP was given to a host.
    OrphanAssigned {
        /// The role.
        role: RoleIp,
        /// The host.
        host: HostName,
    },
    /// An exclusive role went back to its preferred host.
    MovedToPreferred {
        /// The role.
        role: RoleIp,
        /// Previous owner.
        from: Option<HostName>,
        /// The preferred host.
        to: HostName,
    },
    /// A balanced role IP moved to even out the load.
    MovedForBalance {
        /// The role.
        role: RoleIp,
        /// Busiest host.
        from: HostName,
        /// Idlest host.
        to: HostName,
    },
    /// `move_role` moved a role.
    AdminMovedRole {
        /// The role.
        role: RoleName,
        /// Previous owner.
        from: Option<HostName>,
        /// New owner.
        to: HostName,
        /// Whether `--force` was given.
        forced: bool,
    },
    /// `set_ip` set a role in PASSIVE mode.
    AdminSetRole {
        /// The role.
        role: RoleIp,
        /// The host.
        host: HostName,
    },
    /// The mode changed.
    ModeChanged {
        /// Old mode.
        from: Mode,
        /// New mode.
        to: Mode,
        /// Why.
        cause: ModeCause,
    },
    /// The writer assignment changed, so the writer epoch moved on.
    WriterChanged {
        /// Previous writer.
        from: Option<HostName>,
        /// New writer.
        to: Option<HostName>,
        /// The new epoch.
        epoch: Epoch,
    },
    /// The new writer's agent confirmed the writer role: the writer change is complete.
    WriterActive {
        /// The new writer.
        host: HostName,
        /// Its epoch.
        epoch: Epoch,
        /// Milliseconds since the change was decided.
        took_ms: u64,
    },
    /// At startup a role IP was found configured on several hosts.
    StartupConflict {
        /// The role.
        role: RoleIp,
        /// On how many hosts.
        hosts: usize,
    },
    /// At startup a reported role no longer fits the configuration.
    StartupRoleDropped {
        /// The host that reported it.
        host: HostName,
        /// The role as reported.
        role: RoleIp,
        /// True if the role/IP no longer exists, false if the host can no longer take it.
        removed: bool,
    },
    /// At startup the agent on a host that passes ping and mysql did not answer.
    AgentUnreachable {
        /// The host.
        host: HostName,
    },
    /// The startup vote table.
    StartupTable {
        /// The table, as MMM logs it.
        table: String,
    },
}

impl Notice {
    /// The level MMM logged this at.
    pub fn level(&self) -> Level {
        match self {
            Notice::StateChanged { .. }
            | Notice::AdminStateChanged { .. }
            | Notice::Flapping { .. }
            | Notice::AdminMovedRole { .. }
            | Notice::AdminSetRole { .. } => Level::Fatal,
            Notice::AgentUnreachable { .. } => Level::Error,
            Notice::StartupConflict { .. } | Notice::StartupRoleDropped { .. } => Level::Warn,
            Notice::ModeChanged {
                cause: ModeCause::WaitedTooLong { .. },
                ..
            } => Level::Warn,
            Notice::RoleRemoved { .. }
            | Notice::OrphanAssigned { .. }
            | Notice::MovedToPreferred { .. }
            | Notice::MovedForBalance { .. }
            | Notice::ModeChanged { .. }
            | Notice::WriterChanged { .. }
            | Notice::WriterActive { .. }
            | Notice::StartupTable { .. } => Level::Info,
        }
    }

    /// The host the notice is about, for structured logs.
    pub fn host(&self) -> Option<&HostName> {
        match self {
            Notice::StateChanged { host, .. }
            | Notice::AdminStateChanged { host, .. }
            | Notice::Flapping { host }
            | Notice::RoleRemoved { host, .. }
            | Notice::OrphanAssigned { host, .. }
            | Notice::AdminSetRole { host, .. }
            | Notice::StartupRoleDropped { host, .. }
            | Notice::WriterActive { host, .. }
            | Notice::AgentUnreachable { host } => Some(host),
            Notice::MovedToPreferred { to, .. }
            | Notice::MovedForBalance { to, .. }
            | Notice::AdminMovedRole { to, .. } => Some(to),
            Notice::WriterChanged { to, .. } => to.as_ref(),
            Notice::ModeChanged { .. }
            | Notice::StartupConflict { .. }
            | Notice::StartupTable { .. } => None,
        }
    }
}

fn or_empty(h: &Option<HostName>) -> &str {
    h.as_ref().map(|h| h.as_str()).unwrap_or("")
}

fn ok(b: bool) -> &'static str {
    if b {
        "OK"
    } else {
        "not OK"
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::StateChanged {
                host,
                from,
                to,
                reason,
            } => match reason {
                Reason::Plain => write!(f, "State of host '{host}' changed from {from} to {to}"),
                Reason::Checks { ping, mysql } => write!(
                    f,
                    "State of host '{host}' changed from {from} to {to} (ping: {}, mysql: {})",
                    ok(*ping),
                    ok(*mysql)
                ),
                Reason::Flapping => write!(
                    f,
                    "State of host '{host}' changed from {from} to {to} (because it's flapping)"
                ),
                Reason::ShortOutage { secs } => write!(
                    f,
                    "State of host '{host}' changed from {from} to {to} because it was down for only {secs} seconds"
                ),
                Reason::AutoSetOnline {
                    auto_secs,
                    waited_secs,
                } => write!(
                    f,
                    "State of host '{host}' changed from {from} to {to} because of auto_set_online({auto_secs} seconds). It was in state AWAITING_RECOVERY for {waited_secs} seconds"
                ),
                Reason::FlapDurationPassed {
                    flap_secs,
                    waited_secs,
                } => write!(
                    f,
                    "State of flapping host '{host}' changed from {from} to {to} because of auto_set_online and flap_duration({flap_secs}) seconds passed without another failure. It was in state AWAITING_RECOVERY for {waited_secs} seconds"
                ),
                Reason::Errant {
                    writer,
                    count,
                    gtids,
                } => write!(
                    f,
                    "State of host '{host}' changed from {from} to {to} because it has {count} errant transactions that the active master '{writer}' does not have ({gtids}); it stays out of rotation until it is rebuilt from '{writer}'"
                ),
                Reason::ForcedMove => write!(
                    f,
                    "State of host '{host}' changed from {from} to {to} (because of move_role --force)"
                ),
            },
            Notice::AdminStateChanged { host, from, to } => {
                write!(f, "Admin changed state of '{host}' from {from} to {to}")
            }
            Notice::Flapping { host } => write!(f, "Host {host} is flapping!"),
            Notice::RoleRemoved { host, role } => {
                write!(f, "Removed role '{role}' from host '{host}'")
            }
            Notice::OrphanAssigned { role, host } => {
                write!(f, "Orphaned role '{role}' has been assigned to '{host}'")
            }
            Notice::MovedToPreferred { role, from, to } => write!(
                f,
                "Moving role '{role}' from host '{}' to preferred host '{to}'",
                or_empty(from)
            ),
            Notice::MovedForBalance { role, from, to } => {
                write!(f, "Moving role '{role}' from host '{from}' to host '{to}'")
            }
            Notice::AdminMovedRole {
                role,
                from,
                to,
                forced,
            } => {
                let verb = if *forced {
                    "forced move of"
                } else {
                    "moved"
                };
                write!(
                    f,
                    "Admin {verb} role '{role}' from '{}' to '{to}'",
                    or_empty(from)
                )
            }
            Notice::AdminSetRole { role, host } => {
                write!(f, "Admin set role '{role}' to host '{host}'")
            }
            Notice::ModeChanged { from, to, cause } => match cause {
                ModeCause::Admin => write!(f, "Admin changed mode from '{from}' to '{to}'"),
                ModeCause::BothMastersOnline { first, second } => write!(
                    f,
                    "Nodes {first} and {second} are ONLINE, switching from mode '{from}' to '{to}'."
                ),
                ModeCause::WaitedTooLong { dead, secs } => write!(
                    f,
                    "Master {dead} did not come online for {secs}(wait_for_other_master) seconds. Switching from mode '{from}' to '{to}'"
                ),
                ModeCause::StartupConflict => write!(
                    f,
                    "Conflicting roles during startup: switching from mode '{from}' to '{to}'"
                ),
            },
            Notice::WriterChanged { from, to, epoch } => write!(
                f,
                "Writer moved from '{}' to '{}' (epoch {epoch})",
                or_empty(from),
                or_empty(to)
            ),
            Notice::WriterActive {
                host,
                epoch,
                took_ms,
            } => write!(
                f,
                "Writer '{host}' active at epoch {epoch}, {took_ms} ms after the decision"
            ),
            Notice::StartupConflict { role, hosts } => write!(
                f,
                "Role '{role}' was configured on {hosts} hosts during monitor startup."
            ),
            Notice::StartupRoleDropped {
                host,
                role,
                removed,
            } => {
                if *removed {
                    write!(
                        f,
                        "Detected change in role definitions: Role '{role}' was removed."
                    )
                } else {
                    write!(
                        f,
                        "Detected change in role definitions: Host '{host}' can't handle role '{role}' anymore."
                    )
                }
            }
            Notice::AgentUnreachable { host } => write!(f, "Can't reach agent on host '{host}'"),
            Notice::StartupTable { table } => f.write_str(table.trim_end()),
        }
    }
}
