//! `step`: the one function that changes a cluster's state.
//!
//! An event goes in (a batch of check results, a tick of time, an agent's reachability or
//! uptime, the monitor's network state, the startup report or an admin command); the state
//! changes and an `Outcome` comes out with the admin reply, the notices to log and the effects
//! for the leader to execute.
//!
//! Effects are derived, not scattered: the state remembers what each agent was last told, and
//! after every step each host whose agent status (state, roles, active master, epoch) differs
//! from that gets a `SendStatus`, ordered so that the old writer is told first and the new
//! writer last. In PASSIVE mode and while the network is down nothing is sent; what changed
//! meanwhile goes out as soon as sending is allowed again. Any change of writer moves the epoch
//! on by exactly one per step.

use serde::{Deserialize, Serialize};

use crate::commands::Command;
use crate::notice::Notice;
use crate::startup::StartupReport;
use crate::state::{CheckStatus, ClusterState};
use crate::topology::Topology;
use crate::types::{CheckKind, Epoch, HostName, HostState, Mode, RoleIp, RoleName, Time};

/// One check result from the failure detector, after MMM's trap_period filtering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The host checked.
    pub host: HostName,
    /// Which check.
    pub check: CheckKind,
    /// Whether it passes.
    pub ok: bool,
    /// The checker's message.
    pub message: String,
}

/// Something that happened, stamped by the caller with the time it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Time passed; time-based rules (auto_set_online, WAIT mode, the peer grace) re-run.
    Tick,
    /// New check results, applied together before the host rules run.
    Checks(Vec<CheckReport>),
    /// The monitor reached, or failed to reach, a host's agent.
    AgentReachable {
        /// The host.
        host: HostName,
        /// Whether its agent answered.
        reachable: bool,
    },
    /// An agent reported its uptime (MMM's `|UP:<uptime>`), used to detect short outages.
    AgentUptime {
        /// The host.
        host: HostName,
        /// Its uptime in milliseconds.
        uptime_ms: u64,
    },
    /// The monitor's own network check (`ping_ips`) changed.
    Network {
        /// Whether any ping_ip answers.
        up: bool,
    },
    /// The startup vote, once, from stored, agent and system status. Roles are distributed
    /// from the next tick on.
    Startup(StartupReport),
    /// An admin command that changes state.
    Admin(Command),
    /// The new writer's agent acknowledged the writer role at this epoch: the failover that
    /// created the epoch is complete (recorded in the history).
    WriterActive {
        /// The host.
        host: HostName,
        /// The epoch it acknowledged.
        epoch: Epoch,
    },
}

/// What an agent is told: its state, its roles, the active master and the writer epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The agent's host.
    pub host: HostName,
    /// The host's state.
    pub state: HostState,
    /// The roles it must hold, sorted.
    pub roles: Vec<RoleIp>,
    /// The host every replica must replicate from.
    pub active_master: Option<HostName>,
    /// The writer epoch this status belongs to.
    pub epoch: Epoch,
}

impl AgentStatus {
    /// Whether the status gives the host `role` (at any of its IPs).
    pub fn holds(&self, role: &RoleName) -> bool {
        self.roles.iter().any(|r| &r.role == role)
    }
}

/// Work for the leader, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// The writer changed; the leader must make sure the old writer is fenced (demoted or its
    /// lease expired) before the new writer is told.
    WriterChanged {
        /// The old writer.
        from: Option<HostName>,
        /// The new writer.
        to: Option<HostName>,
        /// The new epoch.
        epoch: Epoch,
    },
    /// Send this status to the agent (MMM's SET_STATUS).
    SendStatus {
        /// The status.
        status: AgentStatus,
        /// The host just lost its roles because it failed: if its agent cannot be told, it
        /// must be fenced (kill_host, or waiting out its lease).
        fence: bool,
    },
    /// Remove role IPs the agent holds but should not (MMM's CLEAR_BAD_ROLES).
    ClearBadRoles {
        /// The host.
        host: HostName,
    },
}

/// The result of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The reply to an admin command, MMM's exact text.
    pub reply: Option<String>,
    /// What to log.
    pub notices: Vec<Notice>,
    /// What the leader must do.
    pub effects: Vec<Effect>,
}

/// An event the core refuses; the state is unchanged. Every replica refuses it alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StepError {
    /// The event names a host the topology does not define.
    #[error("unknown host '{0}'")]
    UnknownHost(HostName),
    /// A read-only command was sent as an event; answer it with `render::query`.
    #[error("'{0}' does not change state; answer it from the state")]
    ReadOnly(String),
    /// Startup already ran.
    #[error("the startup vote already ran")]
    AlreadyStarted,
}

/// The mutable context every rule works in.
pub(crate) struct Ctx<'a> {
    pub topo: &'a Topology,
    pub st: &'a mut ClusterState,
    pub now: Time,
    pub notices: Vec<Notice>,
    /// Set by MMM's `cleanup_and_send_status`: send every agent its status and a
    /// CLEAR_BAD_ROLES, whether or not its status changed.
    pub cleanup: bool,
}

impl<'a> Ctx<'a> {
    /// A context for one step at `now`; the state's clock never goes back.
    pub fn new(topo: &'a Topology, st: &'a mut ClusterState, now: Time) -> Self {
        if now > st.now {
            st.now = now;
        }
        Ctx {
            topo,
            st,
            now,
            notices: Vec::new(),
            cleanup: false,
        }
    }

    pub fn notice(&mut self, n: Notice) {
        self.notices.push(n);
    }

    /// MMM's `Agent::state` setter: records the change time, ONLINE time and flapping.
    pub fn set_state(&mut self, host: &HostName, new: HostState) {
        let now = self.now;
        let flap_count = self.topo.settings.flap_count;
        let flap_duration = self.topo.settings.flap_duration;
        let Some(h) = self.st.hosts.get_mut(host) else {
            return;
        };
        let old = h.state;
        if old == new {
            return;
        }
        h.last_state_change = now;
        if new == HostState::Online {
            h.online_since = Some(now);
        }
        let mut flapping_now = false;
        if flap_count > 0 && old == HostState::Online && new != HostState::AdminOffline {
            let window_open = h
                .flap_start
                .is_some_and(|start| now.since(start) <= flap_duration);
            if window_open {
                h.flap_count += 1;
                if h.flap_count > flap_count {
                    h.flapping = true;
                    h.flap_start = None;
                    flapping_now = true;
                }
            } else {
                h.flap_start = Some(now);
                h.flap_count = 1;
            }
        }
        h.state = new;
        if flapping_now {
            self.notice(Notice::Flapping { host: host.clone() });
        }
    }

    /// Removes every role from a host (MMM's `clear_roles`).
    pub fn clear_roles(&mut self, host: &HostName) {
        for (name, slots) in self.st.roles.iter_mut() {
            for slot in slots.iter_mut() {
                if slot.owner.as_ref() == Some(host) {
                    slot.owner = None;
                    self.notices.push(Notice::RoleRemoved {
                        host: host.clone(),
                        role: RoleIp::new(name.clone(), slot.ip),
                    });
                }
            }
        }
    }

    /// Gives a role IP to a host. For an exclusive role every IP moves together, so an
    /// exclusive role is never split over two hosts (MMM could split one with several IPs).
    pub fn set_role(&mut self, role: &RoleName, ip: std::net::IpAddr, host: &HostName) {
        let exclusive = self.is_exclusive(role);
        if let Some(slots) = self.st.roles.get_mut(role) {
            for slot in slots.iter_mut() {
                if exclusive || slot.ip == ip {
                    slot.owner = Some(host.clone());
                }
            }
        }
    }

    pub fn is_exclusive(&self, role: &RoleName) -> bool {
        self.topo
            .roles
            .get(role)
            .is_some_and(|r| r.mode == crate::types::RoleMode::Exclusive)
    }

    pub fn active_master(&self) -> Option<HostName> {
        self.st.active_master(self.topo).cloned()
    }
}

/// The status the monitor sends to a host's agent.
pub fn agent_status(topo: &Topology, st: &ClusterState, host: &HostName) -> AgentStatus {
    AgentStatus {
        host: host.clone(),
        state: st.state_of(host),
        roles: st.host_roles(host),
        active_master: st.active_master(topo).cloned(),
        epoch: st.epoch,
    }
}

/// Applies one event at time `now`.
pub fn step(
    topo: &Topology,
    st: &mut ClusterState,
    now: Time,
    event: Event,
) -> Result<Outcome, StepError> {
    validate_event(topo, &event)?;
    if matches!(event, Event::Startup(_)) && st.started {
        return Err(StepError::AlreadyStarted);
    }
    if let Event::Admin(cmd) = &event {
        if cmd.is_read_only() {
            return Err(StepError::ReadOnly(cmd.to_string()));
        }
    }
    let writer_before = st.active_master(topo).cloned();
    let admin = match &event {
        Event::Admin(cmd) => Some(cmd.to_string()),
        _ => None,
    };
    let mut ctx = Ctx::new(topo, st, now);
    let mut reply = None;
    match event {
        Event::Tick => {
            crate::rules::check_host_states(&mut ctx);
            crate::roles::distribute(&mut ctx);
        }
        Event::Checks(reports) => {
            for r in reports {
                apply_check(&mut ctx, r);
            }
            crate::rules::check_host_states(&mut ctx);
            crate::roles::distribute(&mut ctx);
        }
        Event::AgentReachable { host, reachable } => {
            if let Some(h) = ctx.st.hosts.get_mut(&host) {
                h.agent_down = !reachable;
            }
            crate::roles::distribute(&mut ctx);
        }
        Event::AgentUptime { host, uptime_ms } => {
            if let Some(h) = ctx.st.hosts.get_mut(&host) {
                h.uptime_ms = uptime_ms;
                if h.state == HostState::Online {
                    h.last_uptime_ms = uptime_ms;
                }
            }
        }
        Event::Network { up } => {
            ctx.st.network_up = up;
        }
        Event::Startup(report) => {
            // Only the vote: as in MMM's main loop, the next tick runs the host rules before
            // the first distribution, so a host voted ONLINE whose checks fail gets no role.
            crate::startup::determine(&mut ctx, &report);
        }
        Event::Admin(cmd) => {
            reply = Some(crate::commands::execute(&mut ctx, &cmd));
            crate::roles::distribute(&mut ctx);
        }
        Event::WriterActive { host, epoch } => {
            if let Some(took_ms) = crate::history::complete(&mut ctx.st.history, &host, epoch, now)
            {
                ctx.notice(Notice::WriterActive {
                    host,
                    epoch,
                    took_ms,
                });
            }
        }
    }
    let Ctx {
        notices, cleanup, ..
    } = ctx;
    Ok(finish(
        topo,
        st,
        writer_before,
        admin.as_deref(),
        reply,
        notices,
        cleanup,
    ))
}

/// Adapts the state to an edited topology (`ClusterState::reconcile`) and, once the cluster
/// has started, redistributes roles. A writer that loses its role this way moves the epoch on
/// and is announced like any other writer change.
pub fn reconfigure(
    topo: &Topology,
    st: &mut ClusterState,
    now: Time,
) -> Result<Outcome, crate::topology::TopologyError> {
    topo.validate()?;
    let writer_before = st.active_master(topo).cloned();
    st.reconcile(topo);
    let mut ctx = Ctx::new(topo, st, now);
    if ctx.st.started {
        crate::roles::distribute(&mut ctx);
    }
    let Ctx {
        notices, cleanup, ..
    } = ctx;
    Ok(finish(
        topo,
        st,
        writer_before,
        Some("configuration changed"),
        None,
        notices,
        cleanup,
    ))
}

/// The end of every step: if the writer changed, the epoch moves on and the change goes into
/// the history (`admin` names the command or edit that caused it, if any); then whatever
/// agents have not been told yet is announced.
fn finish(
    topo: &Topology,
    st: &mut ClusterState,
    writer_before: Option<HostName>,
    admin: Option<&str>,
    reply: Option<String>,
    notices: Vec<Notice>,
    cleanup: bool,
) -> Outcome {
    let mut out = Outcome {
        reply,
        notices,
        effects: Vec::new(),
    };
    let writer_after = st.active_master(topo).cloned();
    if writer_after != writer_before {
        st.epoch = st.epoch.next();
        let old = writer_before.as_ref().and_then(|h| st.hosts.get(h));
        let entry = crate::history::Failover {
            epoch: st.epoch,
            decided: st.now,
            from: writer_before.clone(),
            to: writer_after.clone(),
            cause: crate::history::cause(admin, writer_before.as_ref(), old, &out.notices),
            active: None,
        };
        crate::history::record(&mut st.history, entry);
        out.notices.push(Notice::WriterChanged {
            from: writer_before,
            to: writer_after,
            epoch: st.epoch,
        });
    }
    if st.started && st.mode != Mode::Passive && st.network_up {
        out.effects.extend(announce(topo, st, cleanup));
    }
    out
}

fn validate_event(topo: &Topology, event: &Event) -> Result<(), StepError> {
    let known = |h: &HostName| {
        if topo.hosts.contains_key(h) {
            Ok(())
        } else {
            Err(StepError::UnknownHost(h.clone()))
        }
    };
    match event {
        Event::Checks(reports) => reports.iter().try_for_each(|r| known(&r.host)),
        Event::AgentReachable { host, .. } | Event::AgentUptime { host, .. } => known(host),
        Event::Startup(report) => report.hosts().try_for_each(known),
        Event::WriterActive { host, .. } => known(host),
        Event::Tick | Event::Network { .. } | Event::Admin(_) => Ok(()),
    }
}

/// MMM's `ChecksStatus::handle_result`: the message always updates, the change time only when
/// the result flips.
fn apply_check(ctx: &mut Ctx<'_>, r: CheckReport) {
    let now = ctx.now;
    if let Some(h) = ctx.st.hosts.get_mut(&r.host) {
        match h.checks.get_mut(&r.check) {
            Some(c) => {
                c.message = r.message;
                if c.ok != r.ok {
                    c.ok = r.ok;
                    c.last_change = now;
                }
            }
            None => {
                h.checks.insert(
                    r.check,
                    CheckStatus {
                        ok: r.ok,
                        last_change: now,
                        message: r.message,
                    },
                );
            }
        }
    }
}

/// The effects that bring every agent up to date: `WriterChanged` if the writer differs from
/// the one last announced, then a `SendStatus` for every host whose status differs from what it
/// was last told (every host, with a `ClearBadRoles`, after MMM's cleanup), the old writer first
/// and the new writer last. Records what was announced.
fn announce(topo: &Topology, st: &mut ClusterState, cleanup: bool) -> Vec<Effect> {
    let mut out = Vec::new();
    let writer = st.active_master(topo).cloned();
    if writer != st.announced_writer {
        out.push(Effect::WriterChanged {
            from: st.announced_writer.clone(),
            to: writer.clone(),
            epoch: st.epoch,
        });
    }
    let had_writer = |h: &HostName| {
        st.announced
            .get(h)
            .is_some_and(|a| a.holds(&topo.active_master_role))
    };
    let mut order: Vec<HostName> = Vec::new();
    if cleanup {
        // MMM's cleanup_and_send_status order: the passive master, the slaves, the active
        // master last.
        order.extend(
            topo.hosts
                .keys()
                .filter(|h| topo.is_master(h) && Some(*h) != writer.as_ref())
                .cloned(),
        );
        order.extend(topo.hosts.keys().filter(|h| !topo.is_master(h)).cloned());
    } else {
        let lost = |h: &&HostName| had_writer(h) && writer.as_ref() != Some(*h);
        order.extend(topo.hosts.keys().filter(lost).cloned());
        order.extend(
            topo.hosts
                .keys()
                .filter(|h| !lost(h) && writer.as_ref() != Some(*h))
                .cloned(),
        );
    }
    order.extend(writer.iter().cloned());
    for host in order {
        let now = agent_status(topo, st, &host);
        let prev = st.announced.get(&host);
        if !cleanup && prev == Some(&now) {
            continue;
        }
        let lost_roles = prev.is_some_and(|p| p.roles.iter().any(|r| !now.roles.contains(r)));
        let failed = matches!(
            now.state,
            HostState::HardOffline | HostState::ReplicationFail | HostState::ReplicationDelay
        );
        out.push(Effect::SendStatus {
            status: now.clone(),
            fence: lost_roles && failed,
        });
        if cleanup {
            out.push(Effect::ClearBadRoles { host: host.clone() });
        }
        st.announced.insert(host, now);
    }
    st.announced_writer = writer;
    out
}
