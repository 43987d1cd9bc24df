//! The startup vote: MMM 2.2.1 `StartupStatus.pm` and `Monitor.pm::init` (reference §1.8).
//!
//! From the stored status (MMM's status file, so a cluster moves over from MMM with its
//! roles), what each agent says it holds and what each system really has configured, it
//! decides every host's state and every role's owner. If the writer IP is configured on more
//! than one host and `careful_startup` is on, the monitor goes PASSIVE and shows why.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::notice::{ModeCause, Notice};
use crate::step::Ctx;
use crate::types::{HostName, HostState, Mode, RoleIp};

/// A host's line in MMM's status file: `host|STATE|role(ip),role(ip)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredStatus {
    /// The stored state.
    pub state: HostState,
    /// The stored roles.
    pub roles: Vec<RoleIp>,
}

/// An agent's GET_AGENT_STATUS: what it believes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The state the agent was last told.
    pub state: HostState,
    /// The roles the agent was last told.
    pub roles: Vec<RoleIp>,
    /// The active master the agent was last told.
    pub master: Option<HostName>,
}

/// An agent's GET_SYSTEM_STATUS: what is really configured on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemReport {
    /// `read_only` is off.
    pub writable: bool,
    /// Role IPs found on the interface.
    pub roles: Vec<RoleIp>,
    /// The host this one replicates from.
    pub master: Option<HostName>,
}

/// Everything the startup vote looks at. A host missing from `agents` or `systems` did not
/// answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartupReport {
    /// The status file, by host.
    pub stored: BTreeMap<HostName, StoredStatus>,
    /// Agent status, by host.
    pub agents: BTreeMap<HostName, AgentReport>,
    /// System status, by host.
    pub systems: BTreeMap<HostName, SystemReport>,
}

impl StartupReport {
    /// Every host the report mentions.
    pub fn hosts(&self) -> impl Iterator<Item = &HostName> {
        self.stored
            .keys()
            .chain(self.agents.keys())
            .chain(self.systems.keys())
            .chain(
                self.agents
                    .values()
                    .filter_map(|a| a.master.as_ref())
                    .chain(self.systems.values().filter_map(|s| s.master.as_ref())),
            )
    }
}

/// Who claims a role on one host.
#[derive(Debug, Clone, Copy, Default)]
struct Claims {
    stored: bool,
    system: bool,
    agent: bool,
}

pub(crate) fn determine(ctx: &mut Ctx<'_>, report: &StartupReport) {
    let topo = ctx.topo;
    let manual = ctx.st.mode.is_manual();

    // Agents that did not answer although mysql and ping pass are marked down.
    for host in topo.hosts.keys() {
        let stored_admin_offline = report
            .stored
            .get(host)
            .is_some_and(|s| s.state == HostState::AdminOffline);
        let answered = report.agents.contains_key(host) && report.systems.contains_key(host);
        let healthy = ctx.st.check(host, crate::types::CheckKind::Ping)
            && ctx.st.check(host, crate::types::CheckKind::Mysql);
        if !answered && !stored_admin_offline && healthy {
            if let Some(h) = ctx.st.hosts.get_mut(host) {
                h.agent_down = true;
            }
            ctx.notice(Notice::AgentUnreachable { host: host.clone() });
        }
    }

    // Collect the claims, dropping roles that no longer fit the configuration.
    let mut claims: BTreeMap<RoleIp, BTreeMap<HostName, Claims>> = BTreeMap::new();
    let mut dropped = Vec::new();
    let sources = topo.hosts.keys().flat_map(|host| {
        let stored = report.stored.get(host).map(|s| &s.roles);
        let agent = report.agents.get(host).map(|a| &a.roles);
        let system = report.systems.get(host).map(|s| &s.roles);
        [(0, stored), (1, agent), (2, system)]
            .into_iter()
            .filter_map(move |(kind, roles)| roles.map(|r| (host, kind, r)))
    });
    for (host, kind, roles) in sources {
        for role in roles {
            let exists = topo
                .roles
                .get(&role.role)
                .is_some_and(|r| r.ips.contains(&role.ip));
            if !exists || !topo.can_handle(&role.role, host) {
                dropped.push(Notice::StartupRoleDropped {
                    host: host.clone(),
                    role: role.clone(),
                    removed: !exists,
                });
                continue;
            }
            let c = claims
                .entry(role.clone())
                .or_default()
                .entry(host.clone())
                .or_default();
            match kind {
                0 => c.stored = true,
                1 => c.agent = true,
                _ => c.system = true,
            }
        }
    }
    for n in dropped {
        ctx.notice(n);
    }

    // Host states by precedence over the stored and the agent's state.
    let mut states: BTreeMap<HostName, HostState> = BTreeMap::new();
    for host in topo.hosts.keys() {
        let stored = report.stored.get(host).map(|s| s.state);
        let agent = report.agents.get(host).map(|a| a.state);
        let state = [
            HostState::AdminOffline,
            HostState::HardOffline,
            HostState::ReplicationFail,
            HostState::ReplicationDelay,
            HostState::Online,
        ]
        .into_iter()
        .find(|s| stored == Some(*s) || agent == Some(*s))
        .unwrap_or(HostState::AwaitingRecovery);
        states.insert(host.clone(), state);
    }

    // Vote for every claimed role.
    let mut conflict = false;
    let mut winners: Vec<(RoleIp, HostName)> = Vec::new();
    for (role, hosts) in &claims {
        let writer = role.role == topo.active_master_role;
        let mut best: Option<(&HostName, u32)> = None;
        let mut system_cnt = 0;
        for (host, c) in hosts {
            let state = states.get(host).copied().unwrap_or(HostState::Unknown);
            let mut votes = 0;
            if writer {
                if report.systems.get(host).is_some_and(|s| s.writable) {
                    votes += 4;
                }
                if c.system {
                    votes += 2;
                }
                votes += u32::from(c.stored) + u32::from(c.agent);
                let slaves = report
                    .systems
                    .iter()
                    .filter(|(h, s)| !topo.is_master(h) && s.master.as_ref() == Some(host))
                    .count();
                votes += u32::try_from(slaves).unwrap_or(0);
                if state == HostState::AdminOffline || (state == HostState::HardOffline && !manual)
                {
                    votes = 0;
                }
            } else {
                if c.system {
                    votes += 4;
                }
                if c.stored {
                    votes += 2;
                }
                votes += u32::from(c.agent);
                if state == HostState::AdminOffline
                    || (!manual
                        && !matches!(state, HostState::Online | HostState::AwaitingRecovery))
                {
                    votes = 0;
                }
            }
            if c.system {
                system_cnt += 1;
            }
            if votes > best.map_or(0, |(_, v)| v) {
                best = Some((host, votes));
            }
        }
        if system_cnt > 1 {
            ctx.notice(Notice::StartupConflict {
                role: role.clone(),
                hosts: system_cnt,
            });
            if writer {
                conflict = true;
            }
        }
        if let Some((host, _)) = best {
            let state = states.get(host).copied().unwrap_or(HostState::Unknown);
            let promote = if writer {
                !manual
                    || matches!(
                        state,
                        HostState::ReplicationFail | HostState::ReplicationDelay
                    )
            } else {
                state == HostState::AwaitingRecovery
            };
            if promote {
                states.insert(host.clone(), HostState::Online);
            }
            winners.push((role.clone(), host.clone()));
        }
    }

    let table = startup_table(ctx, report, &claims);
    ctx.notice(Notice::StartupTable {
        table: table.clone(),
    });
    // MMM loaded the status file through the state setter before applying the vote, so a
    // stored ONLINE host voted into a failed state counts one departure for flap detection.
    for (host, stored) in &report.stored {
        ctx.set_state(host, stored.state);
    }
    for (host, state) in states {
        ctx.set_state(&host, state);
    }
    // Exclusive roles move as a whole, so the owner of an exclusive role is the winner for its
    // first voted IP.
    let mut exclusive_done = BTreeSet::new();
    for (role, host) in winners {
        if ctx.is_exclusive(&role.role) && !exclusive_done.insert(role.role.clone()) {
            continue;
        }
        ctx.set_role(&role.role, role.ip, &host);
    }
    ctx.st.started = true;
    if conflict && topo.settings.careful_startup {
        let from = ctx.st.mode;
        ctx.st.mode = Mode::Passive;
        ctx.st.passive_info = format!("Conflicting roles during startup:\n\n{table}");
        ctx.notice(Notice::ModeChanged {
            from,
            to: Mode::Passive,
            cause: ModeCause::StartupConflict,
        });
    } else if ctx.st.mode != Mode::Passive {
        ctx.cleanup = true;
    }
}

/// MMM's startup table (`StartupStatus::to_string`), rows sorted.
fn startup_table(
    ctx: &Ctx<'_>,
    report: &StartupReport,
    claims: &BTreeMap<RoleIp, BTreeMap<HostName, Claims>>,
) -> String {
    use std::fmt::Write as _;
    let topo = ctx.topo;
    let role_len = topo
        .roles
        .keys()
        .map(|r| r.as_str().len())
        .fold(4, usize::max)
        + 17;
    let host_len = topo
        .hosts
        .keys()
        .map(|h| h.as_str().len())
        .fold(6, usize::max);
    let yes = |b: bool| if b { "Yes" } else { "-" };
    let mut out = String::from("Startup status:\n\nRoles:\n");
    let _ = writeln!(
        out,
        "    {:<role_len$}  {:<host_len$}  {:<6}  {:<6}  {:<5}",
        "Role", "Host", "Stored", "System", "Agent"
    );
    for (role, hosts) in claims {
        for (host, c) in hosts {
            let _ = writeln!(
                out,
                "    {:<role_len$}  {:<host_len$}  {:<6}  {:<6}  {:<5}",
                role.to_string(),
                host.as_str(),
                yes(c.stored),
                yes(c.system),
                yes(c.agent)
            );
        }
    }
    out.push_str("\nHosts:\n");
    let _ = writeln!(
        out,
        "    {:<host_len$}  {:<host_len$}  {:<8}  {:<16}  {:<16}",
        "Host", "Master", "Writable", "Stored state", "Agent state"
    );
    for host in topo.hosts.keys() {
        let system = report.systems.get(host);
        let master = if topo.is_master(host) {
            "-".to_string()
        } else {
            system
                .map(|s| s.master.as_ref().map(|m| m.to_string()).unwrap_or_default())
                .unwrap_or_else(|| "?".to_string())
        };
        let writable = match system {
            Some(s) if s.writable => "Yes",
            Some(_) => "No",
            None => "?",
        };
        let stored = report
            .stored
            .get(host)
            .map(|s| s.state.as_str())
            .unwrap_or("UNKNOWN");
        let agent = report
            .agents
            .get(host)
            .map(|a| a.state.as_str())
            .unwrap_or("?");
        let _ = writeln!(
            out,
            "    {:<host_len$}  {:<host_len$}  {:<8}  {:<16}  {:<16}",
            host.as_str(),
            master,
            writable,
            stored,
            agent
        );
    }
    out
}
