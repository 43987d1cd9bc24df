//! The workload and the invariants.
//!
//! A client writes a new value through the writer VIP every 50 ms and records each outcome.
//! Checked every 5 ms of virtual time:
//! - at most one MySQL server is writable (up with `read_only=0`): the old writer is fenced
//!   before a new one takes writes, whatever was lost or delayed;
//! - the committed state is the same on every replica that applied the same log index, and
//!   the writer epoch never goes down along the log;
//! - no agent's epoch ever goes down (a restarted agent keeps it on disk).
//!
//! After the faults stop and everything is healed: within the bound, exactly one writable host
//! holds the writer VIP and is the committed writer, every VIP is on exactly one host and that
//! host is ONLINE, every other ONLINE host replicates from the writer and has caught up, and
//! every acknowledged write is in the writer's binary log.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mmm_core::HostState;
use mmm_raft::AppliedState;
use tokio::time::Instant;

use crate::cluster::{Cluster, Registry, CLIENT, DBS, MONS};
use crate::db::{World, WriteOutcome};
use crate::run::Trace;

/// How often the invariants are checked.
const EVERY: Duration = Duration::from_millis(5);

/// How long after the healing (and between interventions) the operator looks at a stuck
/// cluster.
const OPERATOR_AFTER: Duration = Duration::from_secs(15);

/// What the client saw.
#[derive(Clone, Default)]
pub struct History {
    inner: Arc<Mutex<HistoryInner>>,
}

#[derive(Default)]
struct HistoryInner {
    acked: Vec<(u64, String)>,
    failed: u64,
    writing: bool,
}

impl History {
    fn lock(&self) -> MutexGuard<'_, HistoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes acknowledged, writes not.
    pub fn counts(&self) -> (u64, u64) {
        let h = self.lock();
        (h.acked.len() as u64, h.failed)
    }

    fn record(&self, value: u64, outcome: WriteOutcome, trace: &Trace) {
        let mut h = self.lock();
        match outcome {
            WriteOutcome::Ok { host } => {
                if !h.writing {
                    trace.log(format!(
                        "client: writes go through again (value {value} on {host})"
                    ));
                    h.writing = true;
                }
                h.acked.push((value, host));
            }
            WriteOutcome::Fail(why) | WriteOutcome::Unknown(why) => {
                if h.writing {
                    trace.log(format!("client: write {value} failed: {why}"));
                    h.writing = false;
                }
                h.failed += 1;
            }
        }
    }

    /// Every acknowledged value with the host that acknowledged it.
    pub fn acked(&self) -> Vec<(u64, String)> {
        self.lock().acked.clone()
    }
}

/// Writes value 1, 2, 3... through `vip` every 50 ms, forever.
pub async fn write_loop(world: World, vip: IpAddr, history: History, trace: Trace) {
    let mut value = 0u64;
    loop {
        value += 1;
        let outcome = world.write(CLIENT, vip, value).await;
        history.record(value, outcome, &trace);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the cluster looked like once it converged.
#[derive(Debug, Clone)]
pub struct Converged {
    /// The writer.
    pub writer: String,
    /// The final writer epoch.
    pub epoch: u64,
}

/// The invariant checker.
pub struct Checker {
    world: World,
    registry: Registry,
    trace: Trace,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Applied states by log index (the latest few hundred).
    states: BTreeMap<u64, Arc<AppliedState>>,
    agent_epochs: BTreeMap<String, u64>,
    writable: Vec<String>,
    committed: Option<(u64, Option<String>)>,
    interventions: u64,
}

impl Checker {
    /// A checker of this world and these processes.
    pub fn new(world: World, registry: Registry, trace: Trace) -> Checker {
        Checker {
            world,
            registry,
            trace,
            seen: Mutex::new(Seen::default()),
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the invariants every few milliseconds until `deadline`.
    pub async fn watch_until(&self, deadline: Instant) -> Result<(), String> {
        while Instant::now() < deadline {
            self.check_now().await?;
            tokio::time::sleep(EVERY.min(deadline - Instant::now())).await;
        }
        self.check_now().await
    }

    async fn check_now(&self) -> Result<(), String> {
        let writable = self.world.writable_hosts();
        if writable.len() > 1 {
            return Err(format!(
                "two writers: {} are writable at once ({})",
                writable.join(" and "),
                self.world.snapshot()
            ));
        }
        {
            let mut seen = self.seen();
            if seen.writable != writable {
                self.trace.log(format!("writable: {:?}", writable));
                seen.writable = writable;
            }
        }
        for m in MONS {
            let Some(h) = self.registry.monitor(m) else {
                continue;
            };
            let state = h.reader.read();
            let Some(index) = state.last_applied.map(|l| l.index) else {
                continue;
            };
            let mut seen = self.seen();
            if let Some(other) = seen.states.get(&index) {
                if **other != *state {
                    return Err(format!(
                        "replicas diverge: {m}'s state at log index {index} differs from another replica's"
                    ));
                }
            } else {
                let epoch = |s: &AppliedState| s.state.as_ref().map(|s| s.epoch.0).unwrap_or(0);
                let here = epoch(&state);
                if let Some((i, before)) = seen.states.range(..index).next_back() {
                    if epoch(before) > here {
                        return Err(format!(
                            "the writer epoch went down along the log: {} at index {i}, {here} at index {index}",
                            epoch(before)
                        ));
                    }
                }
                if let Some((i, after)) = seen.states.range(index + 1..).next() {
                    if epoch(after) < here {
                        return Err(format!(
                            "the writer epoch went down along the log: {here} at index {index}, {} at index {i}",
                            epoch(after)
                        ));
                    }
                }
                if let Some(st) = &state.state {
                    let writer = state
                        .topology
                        .as_ref()
                        .and_then(|t| st.active_master(t).map(|h| h.to_string()));
                    let now = (st.epoch.0, writer);
                    if seen.committed.as_ref().is_none_or(|c| c.0 < now.0) {
                        self.trace.log(format!(
                            "committed: epoch {} writer {:?} (index {index}, seen on {m})",
                            now.0, now.1
                        ));
                        seen.committed = Some(now);
                    }
                }
                seen.states.insert(index, state);
                while seen.states.len() > 512 {
                    seen.states.pop_first();
                }
            }
        }
        for db in DBS {
            let Some(agent) = self.registry.agent(db) else {
                continue;
            };
            let epoch = agent.epoch().await;
            let mut seen = self.seen();
            let before = seen.agent_epochs.entry(db.to_string()).or_insert(epoch);
            if epoch < *before {
                return Err(format!(
                    "the agent on {db} went back from epoch {before} to {epoch}"
                ));
            }
            *before = epoch;
        }
        Ok(())
    }

    /// After healing: checks the invariants until the cluster has converged (see the module
    /// documentation), or fails at `deadline` saying what was still wrong.
    pub async fn converge(
        &self,
        cluster: &Cluster,
        history: &History,
        deadline: Instant,
    ) -> Result<Converged, String> {
        let mut operator_at = Instant::now() + OPERATOR_AFTER;
        loop {
            self.check_now().await?;
            if Instant::now() >= operator_at {
                operator_at = Instant::now() + OPERATOR_AFTER;
                self.operator(cluster).await;
            }
            match self.converged(cluster) {
                Ok(c) => {
                    // Stop judging on the first look: let the writes in flight settle.
                    self.trace.log(format!(
                        "converged: writer {} at epoch {}",
                        c.writer, c.epoch
                    ));
                    let values = self.world.read_values(&c.writer);
                    let present: std::collections::BTreeSet<u64> = values.into_iter().collect();
                    let lost: Vec<String> = history
                        .acked()
                        .into_iter()
                        .filter(|(v, _)| !present.contains(v))
                        .map(|(v, h)| format!("{v} (acknowledged by {h})"))
                        .collect();
                    if !lost.is_empty() {
                        // Where the lost values are, and what each host has around them.
                        let lost_seqs: Vec<u64> = DBS
                            .iter()
                            .flat_map(|d| self.world.binlog(d))
                            .filter(|t| !present.contains(&t.value))
                            .filter(|t| history.acked().iter().any(|(v, _)| *v == t.value))
                            .map(|t| t.seq)
                            .collect();
                        let mut whereabouts = String::new();
                        for db in DBS {
                            let near: Vec<String> = self
                                .world
                                .binlog(db)
                                .iter()
                                .filter(|t| {
                                    lost_seqs.iter().any(|q| t.seq + 2 >= *q && t.seq <= q + 2)
                                })
                                .map(|t| format!("{}={}", t.gtid(), t.value))
                                .collect();
                            whereabouts += &format!("\n  {db}: {near:?}");
                        }
                        return Err(format!(
                            "acknowledged writes lost: {} are not in the writer {}'s binary log{whereabouts}",
                            lost.join(", "),
                            c.writer
                        ));
                    }
                    return Ok(c);
                }
                Err(why) if Instant::now() >= deadline => {
                    return Err(format!(
                        "did not converge after the faults stopped: {why}\n  {}\n  {}",
                        self.world.snapshot(),
                        self.states(cluster)
                    ));
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What a DBA does, through the real command path, when 15 s after the faults ended the
    /// cluster has no working writer. The chosen writer cannot take writes (typically its
    /// history parted from a peer's: it has transactions of its own that nobody acknowledged,
    /// the peer has acknowledged ones it lacks, and MariaDB refuses to replicate across the
    /// fork): `move_role writer` to the other master (`set_online` first if it waits in
    /// AWAITING_RECOVERY, as MMM makes a DBA do). No writer at all, one master out with
    /// errant transactions and the other kept in AWAITING_RECOVERY because its replication
    /// from the first is broken: `set_online` the second.
    async fn operator(&self, cluster: &Cluster) {
        let Some(leader) = self.leader(cluster) else {
            return;
        };
        let applied = leader.reader.read();
        let (Some(topo), Some(st)) = (&applied.topology, &applied.state) else {
            return;
        };
        let line = match st.active_master(topo).map(|h| h.to_string()) {
            Some(writer) => {
                let Some(agent) = self.registry.agent(&writer) else {
                    return;
                };
                let mmm_agent::protocol::WriterState::Waiting { reason } =
                    agent.writer_state().await
                else {
                    return;
                };
                let Some(other) = ["db1", "db2"].into_iter().find(|h| *h != writer) else {
                    return;
                };
                self.trace
                    .log(format!("operator: {writer} cannot take writes ({reason})"));
                let waiting = st
                    .hosts
                    .get(&mmm_core::HostName::new(other))
                    .is_some_and(|s| s.state == HostState::AwaitingRecovery);
                if waiting {
                    // MMM refuses to move a role to a host in AWAITING_RECOVERY: set it
                    // online first, move the role at the next look.
                    format!("set_online {other}")
                } else {
                    format!("move_role writer {other}")
                }
            }
            None => {
                // No writer: a master kept in AWAITING_RECOVERY because its replication from
                // the other one (out with errant transactions) is broken is set online by hand.
                let Some(host) = ["db1", "db2"].into_iter().find(|h| {
                    st.hosts
                        .get(&mmm_core::HostName::new(*h))
                        .is_some_and(|s| s.state == HostState::AwaitingRecovery)
                }) else {
                    return;
                };
                self.trace.log("operator: no writer");
                format!("set_online {host}")
            }
        };
        self.trace.log(format!("operator: mmm_control {line}"));
        let request = mmm_raft::Request::Event {
            now: (leader.shared.wall)(),
            event: mmm_core::Event::Admin(mmm_core::Command::parse(&line)),
        };
        match leader.raft.client_write(request).await {
            Ok(r) => self.trace.log(format!(
                "operator: {}",
                match r.data {
                    Ok(o) => o.reply.unwrap_or_default().trim().to_string(),
                    Err(e) => e.to_string(),
                }
            )),
            Err(e) => self.trace.log(format!("operator: not committed: {e}")),
        }
        self.seen().interventions += 1;
    }

    /// Every host's committed state and check results, for a failure message.
    fn states(&self, cluster: &Cluster) -> String {
        let Some(leader) = self.leader(cluster) else {
            return "no leader".into();
        };
        let applied = leader.reader.read();
        let Some(st) = &applied.state else {
            return "not configured".into();
        };
        st.hosts
            .iter()
            .map(|(h, s)| {
                let failing: Vec<String> = s
                    .checks
                    .iter()
                    .filter(|(_, c)| !c.ok)
                    .map(|(k, c)| format!("{k}: {}", c.message))
                    .collect();
                format!("{h} {} {failing:?}", s.state)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Operator interventions so far.
    pub fn interventions(&self) -> u64 {
        self.seen().interventions
    }

    fn leader(&self, cluster: &Cluster) -> Option<crate::cluster::MonHandle> {
        MONS.iter()
            .filter_map(|m| cluster.registry.monitor(m))
            .find(|h| {
                let id = mmm_mond::group::node_id(&h.shared.this);
                h.raft.metrics().borrow().current_leader == Some(id)
            })
    }

    fn converged(&self, cluster: &Cluster) -> Result<Converged, String> {
        let leader = self.leader(cluster).ok_or("no leader")?;
        let applied = leader.reader.read();
        let (Some(topo), Some(st)) = (&applied.topology, &applied.state) else {
            return Err("not configured".into());
        };
        let writer = st
            .active_master(topo)
            .map(|h| h.to_string())
            .ok_or("no writer committed")?;
        let writable = self.world.writable_hosts();
        if writable != [writer.clone()] {
            return Err(format!(
                "the committed writer is {writer}, writable: {writable:?}"
            ));
        }
        for (role, slots) in &st.roles {
            for slot in slots {
                let holders = self.world.hosts_with_vip(slot.ip);
                let owner = slot.owner.as_ref().map(|h| h.to_string());
                if holders.len() != 1 || owner.as_ref() != holders.first() {
                    return Err(format!(
                        "{role} VIP {} is on {holders:?}, committed to {owner:?}",
                        slot.ip
                    ));
                }
                let online = slot
                    .owner
                    .as_ref()
                    .and_then(|o| st.hosts.get(o))
                    .is_some_and(|h| h.state == HostState::Online);
                if !online {
                    return Err(format!("{role} VIP {} is on a host not ONLINE", slot.ip));
                }
            }
        }
        let target = self.world.executed_seq(&writer);
        for (host, status) in &st.hosts {
            let host = host.as_str();
            if host == writer || status.state != HostState::Online {
                continue;
            }
            if self.world.master_of(host).as_deref() != Some(writer.as_str()) {
                return Err(format!("{host} does not replicate from {writer}"));
            }
            if self.world.executed_seq(host) != target {
                return Err(format!("{host} has not caught up with {writer}"));
            }
        }
        Ok(Converged {
            writer,
            epoch: st.epoch.0,
        })
    }
}
