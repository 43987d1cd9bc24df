//! The replicated state of a cluster: each host's state, checks, flap counters and agent
//! reachability, the role table, the mode and the writer epoch.
//!
//! Only `step` (in `step.rs`) mutates it; everything here is queries and small helpers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::step::AgentStatus;
use crate::topology::Topology;
use crate::types::{CheckKind, Epoch, HostName, HostState, Mode, RoleIp, RoleName, Time};

/// The latest result of one check on one host, as the monitor's failure detector reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// Whether the check passes.
    pub ok: bool,
    /// When `ok` last changed.
    pub last_change: Time,
    /// The checker's raw message, e.g. `OK` or `ERROR: Replication is broken`.
    pub message: String,
}

/// Everything the monitor knows about one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// The host's state.
    pub state: HostState,
    /// When `state` last changed.
    pub last_state_change: Time,
    /// When the host last became ONLINE.
    pub online_since: Option<Time>,
    /// Set when the host left ONLINE more than `flap_count` times within `flap_duration`.
    pub flapping: bool,
    /// Start of the current flap window.
    pub flap_start: Option<Time>,
    /// Departures from ONLINE in the current window.
    pub flap_count: u32,
    /// The monitor could not reach the host's agent.
    pub agent_down: bool,
    /// The agent's last reported uptime, in milliseconds.
    pub uptime_ms: u64,
    /// The agent's uptime last reported while the host was ONLINE, in milliseconds.
    pub last_uptime_ms: u64,
    /// The check results; a check with no result yet counts as failed.
    pub checks: BTreeMap<CheckKind, CheckStatus>,
}

impl HostStatus {
    pub(crate) fn new(now: Time) -> Self {
        HostStatus {
            state: HostState::Unknown,
            last_state_change: now,
            online_since: None,
            flapping: false,
            flap_start: None,
            flap_count: 0,
            agent_down: false,
            uptime_ms: 0,
            last_uptime_ms: 0,
            checks: BTreeMap::new(),
        }
    }

    /// Whether a check passes (no result yet counts as a failure, as at MMM's startup).
    pub fn check(&self, kind: CheckKind) -> bool {
        self.checks.get(&kind).is_some_and(|c| c.ok)
    }

    /// The latest change of any check (MMM's `last_change($host)`).
    pub fn last_check_change(&self) -> Option<Time> {
        self.checks.values().map(|c| c.last_change).max()
    }

    /// The errant transactions the rep_threads check found: the host has transactions the
    /// active master lacks, so it stays out of rotation until it no longer has them.
    pub fn errant(&self) -> Option<crate::gtid::ErrantReport> {
        self.errant_message()
            .and_then(crate::gtid::ErrantReport::from_message)
    }

    /// The rep_threads failure message that reports the errant transactions, as the checks
    /// recorded it: what a prober keeps saying while it cannot compare the host with a writer.
    pub fn errant_message(&self) -> Option<&str> {
        self.checks
            .get(&CheckKind::RepThreads)
            .filter(|c| !c.ok && crate::gtid::ErrantReport::from_message(&c.message).is_some())
            .map(|c| c.message.as_str())
    }

    /// Whether the monitor can talk to the agent: MMM sends nothing to a host whose ping
    /// check fails, and remembers agents that did not answer.
    pub fn agent_reachable(&self) -> bool {
        self.check(CheckKind::Ping) && !self.agent_down
    }
}

/// One IP of a role and the host it is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSlot {
    /// The IP.
    pub ip: IpAddr,
    /// The host holding it, if any.
    pub owner: Option<HostName>,
}

/// The replicated state of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The monitor's mode.
    pub mode: Mode,
    /// Why the monitor is PASSIVE (shown by `show`).
    pub passive_info: String,
    /// Whether the startup vote has run; no host state changes before it.
    pub started: bool,
    /// MMM's network check: while false, no state changes and nothing is sent to agents.
    pub network_up: bool,
    /// Every host's status, by name.
    pub hosts: BTreeMap<HostName, HostStatus>,
    /// Every role's IPs in configured order, with their owners.
    pub roles: BTreeMap<RoleName, Vec<IpSlot>>,
    /// The writer epoch.
    pub epoch: Epoch,
    /// The time of the latest event applied.
    pub now: Time,
    /// The status each agent was last told (by an effect). Whatever differs from it is
    /// announced as soon as sending is allowed again, so nothing decided while PASSIVE or
    /// while the network was down is lost.
    pub announced: BTreeMap<HostName, AgentStatus>,
    /// The writer as last announced.
    pub announced_writer: Option<HostName>,
    /// Every change of writer, oldest first (the newest `history::HISTORY_LEN`).
    pub history: Vec<crate::history::Failover>,
}

impl ClusterState {
    /// The state before startup: every host UNKNOWN, every role orphaned, the configured mode.
    pub fn new(topo: &Topology, now: Time) -> Self {
        let mode = topo.settings.mode;
        let passive_info = if mode == Mode::Passive {
            "Configured to start up in passive mode.".to_string()
        } else {
            String::new()
        };
        ClusterState {
            mode,
            passive_info,
            started: false,
            network_up: true,
            hosts: topo
                .hosts
                .keys()
                .map(|h| (h.clone(), HostStatus::new(now)))
                .collect(),
            roles: topo
                .roles
                .iter()
                .map(|(name, spec)| {
                    let slots = spec
                        .ips
                        .iter()
                        .map(|ip| IpSlot {
                            ip: *ip,
                            owner: None,
                        })
                        .collect();
                    (name.clone(), slots)
                })
                .collect(),
            epoch: Epoch(0),
            now,
            announced: BTreeMap::new(),
            announced_writer: None,
            history: Vec::new(),
        }
    }

    /// Adapts the state to a changed topology (a configuration edit): hosts that are gone are
    /// dropped, new hosts start UNKNOWN, and a role IP keeps its owner only if the IP still
    /// belongs to the role and the owner may still hold it. Everything else is kept.
    pub fn reconcile(&mut self, topo: &Topology) {
        let now = self.now;
        self.hosts.retain(|h, _| topo.hosts.contains_key(h));
        self.announced.retain(|h, _| topo.hosts.contains_key(h));
        for h in topo.hosts.keys() {
            self.hosts
                .entry(h.clone())
                .or_insert_with(|| HostStatus::new(now));
        }
        let old = std::mem::take(&mut self.roles);
        for (name, spec) in &topo.roles {
            let slots = spec
                .ips
                .iter()
                .map(|ip| {
                    let owner = old
                        .get(name)
                        .and_then(|v| v.iter().find(|s| s.ip == *ip))
                        .and_then(|s| s.owner.clone())
                        .filter(|o| spec.hosts.contains(o));
                    IpSlot { ip: *ip, owner }
                })
                .collect();
            self.roles.insert(name.clone(), slots);
        }
    }

    /// A host's state, UNKNOWN for a name not in the state.
    pub fn state_of(&self, host: &HostName) -> HostState {
        self.hosts
            .get(host)
            .map(|h| h.state)
            .unwrap_or(HostState::Unknown)
    }

    /// The hosts a new writer may have to fetch transactions from after an unplanned move:
    /// every other host. Second, those of them that are HARD_OFFLINE: the new writer gives
    /// them a short connect timeout. One may be cut off (asking it would only delay the
    /// promotion), or back from a cut or a restart before the committed state has noticed
    /// (the checks lag behind): an old writer holding the transactions it acknowledged before
    /// it went, or a slave that acknowledged the old writer's last transactions under
    /// semi-sync after it came back. Skipping it would lose them.
    pub fn catch_up_peers(&self, writer: &HostName) -> (Vec<String>, Vec<String>) {
        let peers: Vec<(&HostName, &HostStatus)> = self
            .hosts
            .iter()
            .filter(|(name, _)| *name != writer)
            .collect();
        let offline = peers
            .iter()
            .filter(|(_, h)| h.state == HostState::HardOffline)
            .map(|(name, _)| name.to_string())
            .collect();
        (
            peers.iter().map(|(name, _)| name.to_string()).collect(),
            offline,
        )
    }

    /// Whether a check passes on a host.
    pub fn check(&self, host: &HostName, kind: CheckKind) -> bool {
        self.hosts.get(host).is_some_and(|h| h.check(kind))
    }

    /// The roles a host holds, sorted as MMM prints them.
    pub fn host_roles(&self, host: &HostName) -> Vec<RoleIp> {
        let mut out: Vec<RoleIp> = self
            .roles
            .iter()
            .flat_map(|(name, slots)| {
                slots
                    .iter()
                    .filter(|s| s.owner.as_ref() == Some(host))
                    .map(|s| RoleIp::new(name.clone(), s.ip))
            })
            .collect();
        out.sort();
        out
    }

    /// The owner of an exclusive role: the owner of its first IP (MMM's
    /// `get_exclusive_role_owner`).
    pub fn exclusive_owner(&self, role: &RoleName) -> Option<&HostName> {
        self.roles
            .get(role)
            .and_then(|slots| slots.first())
            .and_then(|s| s.owner.as_ref())
    }

    /// The owner of any IP of a role.
    pub fn exclusive_owner_any(&self, role: &RoleName) -> Option<&HostName> {
        self.roles
            .get(role)
            .and_then(|slots| slots.iter().find_map(|s| s.owner.as_ref()))
    }

    /// The host holding the active master role.
    pub fn active_master<'a>(&'a self, topo: &Topology) -> Option<&'a HostName> {
        self.exclusive_owner(&topo.active_master_role)
    }

    /// MMM's `count_host_roles`: every role IP counts 1, the active master role 0.5. Returned
    /// in halves so that it stays an integer.
    pub fn role_weight_halves(&self, topo: &Topology, host: &HostName) -> u32 {
        self.roles
            .iter()
            .map(|(name, slots)| {
                let per = if *name == topo.active_master_role {
                    1
                } else {
                    2
                };
                let n = slots
                    .iter()
                    .filter(|s| s.owner.as_ref() == Some(host))
                    .count();
                per * u32::try_from(n).unwrap_or(u32::MAX)
            })
            .sum()
    }

    /// Whether a host can take a role right now: ONLINE and its agent reachable.
    pub fn eligible(&self, host: &HostName) -> bool {
        self.hosts
            .get(host)
            .is_some_and(|h| h.state == HostState::Online && !h.agent_down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{HostSpec, RoleSpec, Settings};
    use crate::types::{HostMode, RoleMode};

    fn topo(hosts: &[&str], reader_ips: &[&str]) -> Topology {
        Topology {
            hosts: hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let spec = HostSpec {
                        ip: IpAddr::from([10, 0, 0, u8::try_from(i).unwrap_or(0) + 1]),
                        mode: HostMode::Slave,
                        peer: None,
                    };
                    (HostName::from(*h), spec)
                })
                .collect(),
            roles: BTreeMap::from([(
                RoleName::from("reader"),
                RoleSpec {
                    mode: RoleMode::Balanced,
                    hosts: hosts.iter().map(|h| HostName::from(*h)).collect(),
                    ips: reader_ips.iter().map(|s| s.parse().unwrap()).collect(),
                    prefer: None,
                },
            )]),
            active_master_role: RoleName::from("writer"),
            settings: Settings::default(),
        }
    }

    #[test]
    fn a_new_writer_asks_every_other_host_and_hurries_the_hard_offline_ones() {
        let t = topo(&["db1", "db2", "db3", "db4", "db5"], &[]);
        let mut st = ClusterState::new(&t, Time(0));
        for (h, state, pings) in [
            // Cut off as far as the committed state knows: it may be back and hold
            // acknowledged transactions (found by the simulation, seed 5036 of a long run).
            ("db1", HostState::HardOffline, false),
            ("db2", HostState::Online, true),
            ("db3", HostState::ReplicationFail, true),
            ("db4", HostState::AdminOffline, true),
            // Back from a cut, not yet out of HARD_OFFLINE: it may hold what it acknowledged.
            ("db5", HostState::HardOffline, true),
        ] {
            let host = st.hosts.get_mut(h).unwrap();
            host.state = state;
            host.checks.insert(
                CheckKind::Ping,
                CheckStatus {
                    ok: pings,
                    last_change: Time(0),
                    message: String::new(),
                },
            );
        }
        let (peers, offline) = st.catch_up_peers(&"db2".into());
        assert_eq!(peers, ["db1", "db3", "db4", "db5"]);
        assert_eq!(
            offline,
            ["db1", "db5"],
            "asked with a short connect timeout"
        );
    }

    #[test]
    fn reconcile_drops_removed_hosts_and_ips_and_keeps_the_rest() {
        let before = topo(&["db1", "db2"], &["10.1.0.1", "10.1.0.2"]);
        let mut st = ClusterState::new(&before, Time(0));
        st.hosts.get_mut("db1").unwrap().state = HostState::Online;
        let slots = st.roles.get_mut("reader").unwrap();
        slots[0].owner = Some("db1".into());
        slots[1].owner = Some("db2".into());

        st.reconcile(&topo(&["db1", "db3"], &["10.1.0.1", "10.1.0.3"]));

        let names: Vec<&str> = st.hosts.keys().map(|h| h.as_str()).collect();
        assert_eq!(names, ["db1", "db3"]);
        assert_eq!(st.state_of(&"db1".into()), HostState::Online);
        assert_eq!(st.state_of(&"db3".into()), HostState::Unknown);
        let owners: Vec<Option<&str>> = st.roles["reader"]
            .iter()
            .map(|s| s.owner.as_ref().map(|h| h.as_str()))
            .collect();
        assert_eq!(owners, [Some("db1"), None]);
    }
}
