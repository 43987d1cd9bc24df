//! The leader's hands: it brings every agent to the status the committed state gives it.
//!
//! The driver does not replay effects; it compares, for every host, the status the committed
//! state gives it (`mmm_core::agent_status`) with the last status that host's agent
//! acknowledged to this leader, and sends whatever differs. A new leader has acknowledged
//! nothing, so it sends every agent its status once: each step is idempotent on the agent, and
//! a failover a dead leader left half-done is finished. Each host has at most one call in
//! flight, each call its own timeout, so one slow agent never delays another.
//!
//! The writer is told last: its status goes out only when the fence gate opens (every other
//! host that could write has acknowledged its demotion at this epoch, or its lease has
//! certainly ended). Agents are pinged every second; their answers update reachability and
//! uptime in the committed state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mmm_agent::client::{AgentApi, CallError};
use mmm_agent::protocol::{ClearBadRoles, Pong, SetStatus, StatusReply, SystemStatus, WriterState};
use mmm_core::{
    agent_status, AgentReport, AgentStatus, ClusterState, Epoch, Event, HostName, HostState, Mode,
    RoleIp, StartupReport, SystemReport, Time, Topology,
};
use tokio::sync::mpsc;

use crate::shared::Shared;

/// How long a status call may take: a promotion waits for the relay log and a lease.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// The pause before calling an agent again after a failed call.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often every agent is pinged.
const PING_EVERY: Duration = Duration::from_secs(1);

/// How long an agent must fail every call before it counts as unreachable.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(2);

/// A reported uptime that differs from the committed one by more than this is committed.
const UPTIME_SLACK_MS: u64 = 5_000;

/// A finished call.
#[derive(Debug)]
enum Done {
    Status {
        host: HostName,
        status: AgentStatus,
        result: Result<StatusReply, CallError>,
    },
    Ping {
        host: HostName,
        result: Result<Pong, CallError>,
    },
}

/// The driver of one leadership term.
pub struct Driver<C> {
    shared: Arc<Shared>,
    agents: BTreeMap<HostName, SocketAddr>,
    client: C,
    delivered: BTreeMap<HostName, AgentStatus>,
    in_flight: BTreeSet<HostName>,
    pinging: BTreeSet<HostName>,
    retry_at: BTreeMap<HostName, Time>,
    failing_since: BTreeMap<HostName, Time>,
    cleared: BTreeSet<HostName>,
    /// Per writer epoch, the last position the old writer reported once demoted: the new
    /// writer executes it before taking writes (a planned move loses no write).
    drained: BTreeMap<Epoch, String>,
    last_ping: Option<Time>,
    logged_block: Option<String>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
}

impl<C: AgentApi> Driver<C> {
    /// A driver for agents at `agents`.
    pub fn new(shared: Arc<Shared>, agents: BTreeMap<HostName, SocketAddr>, client: C) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Driver {
            shared,
            agents,
            client,
            delivered: BTreeMap::new(),
            in_flight: BTreeSet::new(),
            pinging: BTreeSet::new(),
            retry_at: BTreeMap::new(),
            failing_since: BTreeMap::new(),
            cleared: BTreeSet::new(),
            drained: BTreeMap::new(),
            last_ping: None,
            logged_block: None,
            done_tx,
            done_rx,
        }
    }

    /// Forgets what agents acknowledged (on losing or gaining the leadership). Calls still in
    /// flight finish, but their answers are dropped.
    pub fn reset(&mut self) {
        let agents = std::mem::take(&mut self.agents);
        *self = Driver::new(self.shared.clone(), agents, self.client.clone());
    }

    /// Resolves when a call has finished; pass its result to `absorb`.
    pub async fn next_done(&mut self) -> Option<DoneCall> {
        self.done_rx.recv().await.map(DoneCall)
    }

    /// Sends every agent whose acknowledged status differs from the committed one its status,
    /// stamped with this leader's Raft `term`, and pings agents every second.
    pub fn drive(&mut self, topo: &Topology, st: &ClusterState, term: u64) {
        let now = self.shared.clock.now();
        let sending = st.started && st.mode != Mode::Passive && st.network_up;
        if sending {
            let writer = st.active_master(topo).cloned();
            for host in topo.hosts.keys() {
                let desired = agent_status(topo, st, host);
                if self.delivered.get(host) == Some(&desired)
                    || self.in_flight.contains(host)
                    || self.retry_at.get(host).is_some_and(|t| now < *t)
                {
                    continue;
                }
                if writer.as_ref() == Some(host) {
                    let check = self.shared.gate().check(topo, st, host, now);
                    if let Err(blocked) = check {
                        let line = format!("{host}@{}: {blocked}", st.epoch.0);
                        if self.logged_block.as_ref() != Some(&line) {
                            tracing::warn!(host = %host, epoch = st.epoch.0, "writer not told yet: {blocked}");
                            self.logged_block = Some(line);
                        }
                        continue;
                    }
                }
                let (catch_up_to, (peers, offline_peers)) = if writer.as_ref() == Some(host) {
                    (
                        self.drained.get(&st.epoch).cloned(),
                        st.catch_up_peers(host),
                    )
                } else {
                    (None, (Vec::new(), Vec::new()))
                };
                self.send_status(SetStatus {
                    status: desired,
                    catch_up_to,
                    peers,
                    offline_peers,
                    term,
                });
            }
        }
        if self.last_ping.is_none_or(|t| now.since(t) >= PING_EVERY) {
            self.last_ping = Some(now);
            for host in topo.hosts.keys() {
                if !self.in_flight.contains(host) && !self.pinging.contains(host) {
                    self.ping(host.clone());
                }
            }
        }
    }

    fn send_status(&mut self, req: SetStatus) {
        let status = &req.status;
        let host = status.host.clone();
        let Some(addr) = self.agents.get(&host).copied() else {
            return;
        };
        self.in_flight.insert(host.clone());
        tracing::info!(host = %host, state = %status.state, roles = ?status.roles, master = ?status.active_master, epoch = status.epoch.0, catch_up_to = ?req.catch_up_to, peers = ?req.peers, offline_peers = ?req.offline_peers, "sending status to agent");
        let client = self.client.clone();
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let result = client.set_status(addr, &req, STATUS_TIMEOUT).await;
            let _ = tx.send(Done::Status {
                host,
                status: req.status,
                result,
            });
        });
    }

    fn ping(&mut self, host: HostName) {
        let Some(addr) = self.agents.get(&host).copied() else {
            return;
        };
        self.pinging.insert(host.clone());
        let client = self.client.clone();
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let result = client.ping(addr).await;
            let _ = tx.send(Done::Ping { host, result });
        });
    }

    /// Takes in a finished call; returns the events to commit (agent reachability, uptime).
    pub fn absorb(&mut self, done: DoneCall, topo: &Topology, st: &ClusterState) -> Vec<Event> {
        let now = self.shared.clock.now();
        let mut events = Vec::new();
        let (host, answered, uptime_secs) = match done.0 {
            Done::Status {
                host,
                status,
                result,
            } => {
                self.in_flight.remove(&host);
                match result {
                    Ok(reply) => {
                        let writer_active = status.holds(&topo.active_master_role)
                            && matches!(reply.writer, WriterState::Active { .. })
                            && mmm_core::history::awaits(&st.history, &host, status.epoch);
                        if writer_active {
                            events.push(Event::WriterActive {
                                host: host.clone(),
                                epoch: status.epoch,
                            });
                        }
                        self.drained_at(topo, st, &host, &status, &reply);
                        self.acknowledged(topo, &host, status, &reply);
                        (host, true, Some(reply.uptime_secs))
                    }
                    Err(e) => {
                        self.retry_at.insert(host.clone(), now.plus(RETRY_AFTER));
                        let writer = &topo.active_master_role;
                        let lost_writer =
                            self.delivered.get(&host).is_some_and(|d| d.holds(writer))
                                && !status.holds(writer);
                        if lost_writer {
                            tracing::error!(host = %host, epoch = status.epoch.0, error = %e, "Can't send offline status notification to '{host}' - its writer lease runs out by itself within {} ms of its last renewal", self.shared.gate().bound().as_millis());
                        } else {
                            tracing::warn!(host = %host, epoch = status.epoch.0, error = %e, "cannot send status to agent");
                        }
                        if let CallError::Refused { .. } = e {
                            // The agent answered: it is reachable, but refused (stale epoch,
                            // a role it is not configured for). Retried after a pause.
                            (host, true, None)
                        } else {
                            (host, false, None)
                        }
                    }
                }
            }
            Done::Ping { host, result } => {
                self.pinging.remove(&host);
                match result {
                    Ok(pong) => {
                        let stale = self
                            .delivered
                            .get(&host)
                            .is_some_and(|d| pong.told.as_ref() != Some(d));
                        if stale && !self.in_flight.contains(&host) {
                            // Another leader's older status arrived after ours, or the agent
                            // restarted: it holds something else than what it acknowledged.
                            tracing::warn!(host = %host, told = ?pong.told.as_ref().map(|t| (&t.state, &t.roles, t.epoch.0)), "the agent's status is not the one it acknowledged: sending it again");
                            self.delivered.remove(&host);
                        }
                        (host, true, Some(pong.uptime_secs))
                    }
                    Err(_) => (host, false, None),
                }
            }
        };
        let committed = st.hosts.get(&host);
        if answered {
            self.failing_since.remove(&host);
            if committed.is_some_and(|h| h.agent_down) {
                tracing::info!(host = %host, "agent answers again");
                events.push(Event::AgentReachable {
                    host: host.clone(),
                    reachable: true,
                });
            }
        } else {
            let since = *self.failing_since.entry(host.clone()).or_insert(now);
            if now.since(since) >= UNREACHABLE_AFTER && committed.is_some_and(|h| !h.agent_down) {
                tracing::error!(host = %host, "agent unreachable for {} ms", now.since(since).as_millis());
                events.push(Event::AgentReachable {
                    host: host.clone(),
                    reachable: false,
                });
            }
        }
        if let (Some(secs), Some(h)) = (uptime_secs, committed) {
            let uptime_ms = (secs * 1000.0) as u64;
            let slack = if h.state == HostState::Online {
                UPTIME_SLACK_MS
            } else {
                1_000
            };
            if uptime_ms.abs_diff(h.uptime_ms) > slack {
                events.push(Event::AgentUptime { host, uptime_ms });
            }
        }
        events
    }

    /// Remembers the position a demoted writer reported at the epoch that took the role away
    /// from it: the first report, made right after its fence.
    fn drained_at(
        &mut self,
        topo: &Topology,
        st: &ClusterState,
        host: &HostName,
        status: &AgentStatus,
        reply: &StatusReply,
    ) {
        let Some(position) = reply.position.as_ref() else {
            return;
        };
        let was_writer = st
            .history
            .iter()
            .any(|f| f.epoch == status.epoch && f.from.as_ref() == Some(host));
        if was_writer
            && !status.holds(&topo.active_master_role)
            && !matches!(reply.writer, WriterState::Active { .. })
            && !self.drained.contains_key(&status.epoch)
        {
            tracing::info!(host = %host, epoch = status.epoch.0, position = %position, "the demoted writer stopped writing at this position");
            self.drained.insert(status.epoch, position.clone());
        }
    }

    fn acknowledged(
        &mut self,
        topo: &Topology,
        host: &HostName,
        status: AgentStatus,
        reply: &StatusReply,
    ) {
        if !status.holds(&topo.active_master_role)
            && !matches!(reply.writer, WriterState::Active { .. })
        {
            self.shared.gate().confirm(host, status.epoch);
        }
        if reply.ok() {
            tracing::info!(host = %host, epoch = status.epoch.0, done = ?reply.done, writer = ?reply.writer, "agent applied its status");
        } else {
            tracing::error!(host = %host, epoch = status.epoch.0, done = ?reply.done, failed = ?reply.failed, writer = ?reply.writer, "agent applied its status with failures");
        }
        if !self.cleared.contains(host) {
            // MMM's cleanup after startup and for a new leader: role IPs the agent is not
            // told to hold go away.
            self.cleared.insert(host.clone());
            if let Some(addr) = self.agents.get(host).copied() {
                let client = self.client.clone();
                let req = ClearBadRoles {
                    host: host.to_string(),
                    epoch: status.epoch.0,
                };
                let host = host.clone();
                tokio::spawn(async move {
                    match client.clear_bad_roles(addr, &req).await {
                        Ok(c) if !c.removed.is_empty() || !c.failed.is_empty() => {
                            tracing::warn!(host = %host, removed = ?c.removed, failed = ?c.failed, "cleared bad roles");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(host = %host, error = %e, "CLEAR_BAD_ROLES"),
                    }
                });
            }
        }
        self.delivered.insert(host.clone(), status);
    }

    /// MMM's startup vote input: every agent's GET_AGENT_STATUS and GET_SYSTEM_STATUS (two
    /// tries each), gathered concurrently.
    pub async fn startup_report(&self, topo: &Topology) -> StartupReport {
        let mut set = tokio::task::JoinSet::new();
        for (host, addr) in &self.agents {
            let (client, host, addr) = (self.client.clone(), host.clone(), *addr);
            set.spawn(async move {
                let mut last = None;
                for _ in 0..3 {
                    match client.system(addr).await {
                        Ok(s) => return (host, Ok(s)),
                        Err(e) => last = Some(e),
                    }
                }
                (host, Err(last))
            });
        }
        let mut report = StartupReport::default();
        while let Some(joined) = set.join_next().await {
            let Ok((host, answer)) = joined else {
                continue;
            };
            match answer {
                Ok(sys) => {
                    let (agent, system) = startup_entries(topo, &sys);
                    report.agents.insert(host.clone(), agent);
                    report.systems.insert(host, system);
                }
                Err(e) => {
                    tracing::warn!(host = %host, error = ?e.map(|e| e.to_string()), "agent did not answer the startup status requests");
                }
            }
        }
        report
    }
}

/// A finished agent call, for `Driver::absorb`.
#[derive(Debug)]
pub struct DoneCall(Done);

/// What an agent's system status says for the startup vote.
fn startup_entries(topo: &Topology, sys: &SystemStatus) -> (AgentReport, SystemReport) {
    let agent = match &sys.told {
        Some(t) => AgentReport {
            state: t.state,
            roles: t.roles.clone(),
            master: t.active_master.clone(),
        },
        None => AgentReport {
            state: HostState::Unknown,
            roles: vec![],
            master: None,
        },
    };
    let roles = sys
        .vips
        .iter()
        .flat_map(|ip| {
            topo.roles
                .iter()
                .filter(move |(_, r)| r.ips.contains(ip))
                .map(move |(name, _)| RoleIp::new(name.clone(), *ip))
        })
        .collect();
    let master = sys
        .mysql
        .as_ref()
        .and_then(|m| m.replica.as_ref())
        .and_then(|r| {
            topo.hosts
                .iter()
                .find(|(name, spec)| {
                    spec.ip.to_string() == r.master_host || name.as_str() == r.master_host
                })
                .map(|(name, _)| name.clone())
        });
    let system = SystemReport {
        writable: sys.mysql.as_ref().is_some_and(|m| !m.read_only),
        roles,
        master,
    };
    (agent, system)
}
