//! What an agent does, over the `Vips`, `Mysql` and `Monitors` traits (so the simulation runs
//! this very code): applying a status, the writer lease, self-fencing, and reconciliation.
//!
//! The writer role is active (read_only off, writer VIP on) only under a lease for the epoch the
//! agent was told. Activation and fencing serialize on one gate, and activation re-checks the
//! lease inside it, so a fence can never be overtaken by a late activation. Demotion removes the
//! VIP first, then sets read_only and kills client sessions; promotion waits for the relay log
//! (after an unplanned move also fetching what a peer executed beyond it), obtains a lease, then
//! clears read_only and adds the VIP. Any host that is not the active
//! writer is kept read-only with no writer VIP by the reconciliation loop.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex as SyncMutex;
use std::time::Duration;

use mmm_config::CatchupPolicy;
use mmm_core::api::{HostReport, LeaseRequest};
use mmm_core::gtid::{self, BinlogState, GtidPos};
use mmm_core::{AgentStatus, HostMode, HostState, RoleIp, RoleName};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use crate::monitors::{Monitors, RenewError};
use crate::ops::{Mysql, MysqlError, RepointMethod, Source, Vips};
use crate::protocol::{
    ClearBadRoles, Cleared, Pong, SetStatus, StatusReply, SystemStatus, WriterState,
};
use crate::store::{Persisted, Store, StoreError};

/// How long a new writer waits for a peer's executed position (connecting included): a peer
/// that does not answer by then is skipped, so a host cut off delays no promotion longer.
const PEER_SURVEY: Duration = Duration::from_secs(2);
/// Of that, how long a peer may take to apply its relay log before its position is read.
const PEER_APPLY: Duration = Duration::from_secs(1);
/// How soon a fence that could not reach MySQL is tried again ([`Agent::run_fence_retry`]).
pub const FENCE_RETRY: Duration = Duration::from_millis(50);
/// How long a new writer waits for a connection to a peer the monitors have HARD_OFFLINE
/// ([`SetStatus::offline_peers`]): one back on the network answers within milliseconds, and
/// one still cut off must not hold the promotion for the whole connect timeout.
const OFFLINE_PEER_CONNECT: Duration = Duration::from_millis(300);

/// A role as the configuration defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDef {
    /// Its IPs.
    pub ips: Vec<IpAddr>,
    /// The hosts that may hold it.
    pub hosts: Vec<String>,
}

/// What the agent knows from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This host (`this`).
    pub host: String,
    /// Its mode: only slaves are re-pointed when the active master changes.
    pub mode: HostMode,
    /// The active master role (`active_master_role`).
    pub writer_role: RoleName,
    /// Every role.
    pub roles: BTreeMap<RoleName, RoleDef>,
    /// Every other host as a replication source.
    pub sources: BTreeMap<String, Source>,
    /// `max_kill_retries`.
    pub max_kill_retries: u32,
    /// The pause between passes of the session killer.
    pub kill_pause: Duration,
    /// How long before the lease ends the agent fences itself.
    pub fence_margin: Duration,
    /// How long a promotion waits for the relay log.
    pub catchup_timeout: Duration,
    /// What a promotion does when it cannot catch up (`catchup_policy`).
    pub catchup_policy: CatchupPolicy,
    /// How often to renew before the first grant says otherwise.
    pub renew_every: Duration,
    /// The machine's uptime in seconds ([`uptime_secs`]; virtual in the simulation).
    pub uptime: fn() -> f64,
}

impl Settings {
    fn writer_ips(&self) -> Vec<IpAddr> {
        self.roles
            .get(&self.writer_role)
            .map(|r| r.ips.clone())
            .unwrap_or_default()
    }

    fn role_ips(&self) -> BTreeSet<IpAddr> {
        self.roles.values().flat_map(|r| r.ips.clone()).collect()
    }
}

/// A request the agent refuses; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The request is for another host.
    #[error("this is the agent of '{this}', not of '{asked}'")]
    WrongHost {
        /// This host.
        this: String,
        /// The host named in the request.
        asked: String,
    },
    /// The request carries an epoch lower than one already seen.
    #[error("stale writer epoch {got}: this agent has seen epoch {seen}")]
    StaleEpoch {
        /// The request's epoch.
        got: u64,
        /// The highest seen.
        seen: u64,
    },
    /// The status comes from the leader of an earlier Raft term than one already heard from
    /// at the same epoch.
    #[error("stale leader term {got}: this agent has heard from the leader of term {seen}")]
    StaleTerm {
        /// The request's term.
        got: u64,
        /// The highest seen.
        seen: u64,
    },
    /// A role or IP the configuration does not give this host.
    #[error("{0}")]
    BadRole(String),
    /// The state file could not be written, so nothing was applied.
    #[error("cannot record the status: {0}")]
    Store(#[from] StoreError),
}

/// The lease as this agent holds it.
#[derive(Debug, Clone, Copy, Default)]
struct Lease {
    /// The epoch it was granted for.
    epoch: u64,
    /// When the agent must start fencing; `None` without a grant.
    fence_at: Option<Instant>,
}

impl Lease {
    fn valid_for(&self, epoch: u64, now: Instant) -> bool {
        self.epoch == epoch && self.fence_at.is_some_and(|t| now < t)
    }
}

/// What `apply_status` serializes on.
#[derive(Debug, Default)]
struct Inner {
    persisted: Persisted,
    /// The master this slave was last re-pointed to successfully (MMM remembered it only on OK).
    repointed_to: Option<String>,
    /// When that re-pointing was done: reconciliation watches closely for a while after it.
    repointed_at: Option<Instant>,
    /// The epoch whose promotion already waited for the relay log.
    caught_up: Option<u64>,
    /// For the writer: the hosts it may have to fetch transactions from (the latest
    /// [`SetStatus::peers`]).
    peers: Vec<String>,
    /// Of those, the ones to ask with a short connect timeout ([`SetStatus::offline_peers`]).
    offline_peers: Vec<String>,
    /// A monitor sent a status since this process started. Until then the remembered status
    /// may be stale (its roles moved while the agent was down), so reconciliation restores
    /// no reader VIP from it: it would put an address back that another host now holds.
    confirmed: bool,
}

/// How soon reconciliation comes back while a re-pointing is due or recent.
pub const REPOINT_WATCH: Duration = Duration::from_millis(200);

/// How long after a re-pointing reconciliation watches at [`REPOINT_WATCH`].
pub const REPOINT_WATCH_FOR: Duration = Duration::from_secs(10);

/// The writer gate: activation and fencing hold it.
#[derive(Debug, Default)]
struct Gate {
    active: bool,
    /// Why the writer is not active, when it is told to be.
    waiting: String,
}

/// One agent.
pub struct Agent<M, V, N> {
    settings: Settings,
    mysql: M,
    vips: V,
    monitors: N,
    store: Store,
    inner: Mutex<Inner>,
    gate: Mutex<Gate>,
    /// The epoch at which this host is told to be writer (read without the `inner` lock).
    writer_epoch: SyncMutex<Option<u64>>,
    /// The highest epoch seen and the status last told, as in `inner` (read without its
    /// lock, which a promotion holds while it catches up: pings and metrics never wait).
    seen: SyncMutex<(u64, Option<AgentStatus>)>,
    /// A monitor sent a status to this process (`Inner::confirmed`, read without its lock).
    confirmed: std::sync::atomic::AtomicBool,
    lease: SyncMutex<Lease>,
    renew_every: SyncMutex<Duration>,
    lease_changed: Notify,
    /// The last fence could not reach MySQL (the session kill or read_only=1 failed): retried
    /// by [`Agent::run_fence_retry`] until it lands.
    fence_pending: std::sync::atomic::AtomicBool,
    /// Wakes [`Agent::run_fence_retry`].
    fence_failed: Notify,
}

/// A std mutex's guard, also after a panic elsewhere poisoned it.
pub(crate) fn lock<T>(m: &SyncMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The machine's uptime from `/proc/uptime`, 0 where it cannot be read.
pub fn uptime_secs() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0.0)
}

impl<M: Mysql, V: Vips, N: Monitors> Agent<M, V, N> {
    /// An agent with its memory loaded from `store`.
    pub fn new(
        settings: Settings,
        mysql: M,
        vips: V,
        monitors: N,
        store: Store,
    ) -> Result<Self, StoreError> {
        let persisted = store.load()?;
        let writer_epoch = writer_epoch_of(persisted.told.as_ref(), &settings.writer_role);
        let renew_every = settings.renew_every;
        Ok(Agent {
            settings,
            mysql,
            vips,
            monitors,
            store,
            inner: Mutex::new(Inner {
                peers: persisted.peers.clone(),
                offline_peers: persisted.offline_peers.clone(),
                persisted: persisted.clone(),
                ..Inner::default()
            }),
            gate: Mutex::new(Gate::default()),
            writer_epoch: SyncMutex::new(writer_epoch),
            seen: SyncMutex::new((persisted.epoch, persisted.told.clone())),
            confirmed: std::sync::atomic::AtomicBool::new(false),
            lease: SyncMutex::new(Lease::default()),
            renew_every: SyncMutex::new(renew_every),
            lease_changed: Notify::new(),
            fence_pending: std::sync::atomic::AtomicBool::new(false),
            fence_failed: Notify::new(),
        })
    }

    /// This host's name.
    pub fn host(&self) -> &str {
        &self.settings.host
    }

    /// The highest epoch seen.
    pub async fn epoch(&self) -> u64 {
        lock(&self.seen).0
    }

    /// MMM's PING, with the status this process applied last (`None` until a monitor sends
    /// one after a start): the leader sends the status again when it is not the one it
    /// believes delivered (another leader's older status arrived later, or the agent
    /// restarted and waits to be told before it restores reader VIPs).
    pub async fn pong(&self) -> Pong {
        let (epoch, told) = lock(&self.seen).clone();
        let confirmed = self.confirmed.load(std::sync::atomic::Ordering::SeqCst);
        Pong {
            host: self.settings.host.clone(),
            uptime_secs: (self.settings.uptime)(),
            epoch,
            told: told.filter(|_| confirmed),
        }
    }

    fn check_host_and_epoch(&self, host: &str, epoch: u64, seen: u64) -> Result<(), Refusal> {
        if host != self.settings.host {
            return Err(Refusal::WrongHost {
                this: self.settings.host.clone(),
                asked: host.to_string(),
            });
        }
        if epoch < seen {
            return Err(Refusal::StaleEpoch { got: epoch, seen });
        }
        Ok(())
    }

    fn check_roles(&self, roles: &[RoleIp]) -> Result<(), Refusal> {
        for r in roles {
            let Some(def) = self.settings.roles.get(&r.role) else {
                return Err(Refusal::BadRole(format!("unknown role '{}'", r.role)));
            };
            if !def.ips.contains(&r.ip) {
                return Err(Refusal::BadRole(format!(
                    "{} is not an IP of role '{}'",
                    r.ip, r.role
                )));
            }
            if !def.hosts.iter().any(|h| h == &self.settings.host) {
                return Err(Refusal::BadRole(format!(
                    "role '{}' is not configured for host '{}'",
                    r.role, self.settings.host
                )));
            }
        }
        Ok(())
    }

    /// MMM's SET_STATUS: records the status durably, then makes the host match it.
    pub async fn apply_status(&self, status: AgentStatus) -> Result<StatusReply, Refusal> {
        self.apply(status.into()).await
    }

    /// [`Agent::apply_status`], and for a new writer the old writer's last position to
    /// execute before taking writes (kept while the writer epoch stays the same).
    pub async fn apply(&self, req: SetStatus) -> Result<StatusReply, Refusal> {
        let SetStatus {
            status,
            catch_up_to,
            peers,
            offline_peers,
            term,
        } = req;
        let mut inner = self.inner.lock().await;
        self.check_host_and_epoch(status.host.as_str(), status.epoch.0, inner.persisted.epoch)?;
        // Within an epoch only: a status that moves the epoch on is what a failover needs,
        // and a monitor group rebuilt from scratch counts its terms from 1 again.
        if term > 0 && status.epoch.0 == inner.persisted.epoch && term < inner.persisted.term {
            return Err(Refusal::StaleTerm {
                got: term,
                seen: inner.persisted.term,
            });
        }
        self.check_roles(&status.roles)?;
        let old = inner.persisted.told.clone();
        let writer = &self.settings.writer_role;
        let old_writer_epoch = writer_epoch_of(old.as_ref(), writer);
        let new_writer_epoch = writer_epoch_of(Some(&status), writer);
        let catch_up_to = match new_writer_epoch {
            None => None,
            Some(_) if old_writer_epoch == new_writer_epoch => {
                catch_up_to.or_else(|| inner.persisted.catch_up_to.clone())
            }
            Some(_) => catch_up_to,
        };
        // Kept like the position: a status resent without them (another leader) and a
        // restarted agent still fetch from the peers before taking writes.
        let (peers, offline_peers) = match new_writer_epoch {
            None => (Vec::new(), Vec::new()),
            Some(_) if old_writer_epoch == new_writer_epoch && peers.is_empty() => (
                inner.persisted.peers.clone(),
                inner.persisted.offline_peers.clone(),
            ),
            Some(_) => (peers, offline_peers),
        };
        let new_persisted = Persisted {
            epoch: status.epoch.0.max(inner.persisted.epoch),
            told: Some(status.clone()),
            catch_up_to,
            term: if status.epoch.0 > inner.persisted.epoch {
                term
            } else {
                term.max(inner.persisted.term)
            },
            peers: peers.clone(),
            offline_peers: offline_peers.clone(),
        };
        if new_persisted != inner.persisted {
            self.store.save(&new_persisted)?;
            *lock(&self.seen) = (new_persisted.epoch, new_persisted.told.clone());
            inner.persisted = new_persisted;
        }
        inner.confirmed = true;
        self.confirmed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        inner.peers = peers;
        inner.offline_peers = offline_peers;
        let mut log = Log::default();
        if old_writer_epoch != new_writer_epoch {
            *lock(&self.writer_epoch) = new_writer_epoch;
            if self.gate.lock().await.active || old_writer_epoch.is_some() {
                let reason = match new_writer_epoch {
                    None => "the writer role was taken away".to_string(),
                    Some(e) => format!("the writer epoch moved to {e}"),
                };
                self.fence(&reason, &mut log).await;
            }
        }

        let old_roles: BTreeSet<RoleIp> = old
            .as_ref()
            .map(|t| t.roles.iter().cloned().collect())
            .unwrap_or_default();
        let new_roles: BTreeSet<RoleIp> = status.roles.iter().cloned().collect();
        for r in old_roles
            .difference(&new_roles)
            .filter(|r| &r.role != writer)
        {
            match self.vips.remove(r.ip).await {
                Ok(true) => log.done(format!("removed VIP {} ({})", r.ip, r.role)),
                Ok(false) => {}
                Err(e) => log.failed(format!("removing VIP {} ({}): {e}", r.ip, r.role)),
            }
        }

        let old_state = old.as_ref().map(|t| t.state);
        if old_state != Some(status.state) {
            if status.state == HostState::AdminOffline {
                match self.mysql.set_replication(false).await {
                    Ok(()) => log.done("stopped replication (ADMIN_OFFLINE)".into()),
                    Err(e) => log.failed(format!("STOP SLAVE: {e}")),
                }
            } else if old_state == Some(HostState::AdminOffline) {
                match self.mysql.set_replication(true).await {
                    Ok(()) => log.done("started replication (left ADMIN_OFFLINE)".into()),
                    Err(e) => log.failed(format!("START SLAVE: {e}")),
                }
            }
        }

        if let Some(master) = self.due_repoint(&inner) {
            self.repoint(&master, &mut inner, &mut log).await;
        }

        // Every told reader VIP, not only the new ones: after a restart or a reboot the
        // remembered status says nothing about what is on the interface.
        for r in new_roles.iter().filter(|r| &r.role != writer) {
            match self.vips.add(r.ip).await {
                Ok(true) => log.done(format!("added VIP {} ({})", r.ip, r.role)),
                Ok(false) if !old_roles.contains(r) => {
                    log.done(format!("VIP {} ({}) already configured", r.ip, r.role))
                }
                Ok(false) => {}
                Err(e) => log.failed(format!("adding VIP {} ({}): {e}", r.ip, r.role)),
            }
        }

        if let Some(epoch) = new_writer_epoch {
            if !self.gate.lock().await.active {
                self.promote(epoch, &mut inner, &mut log).await;
            }
        }
        let epoch = inner.persisted.epoch;
        drop(inner);
        // A master that does not write says how far it got: if it was the writer, the new one
        // waits for exactly that before it takes writes.
        let position = if self.settings.mode == HostMode::Master
            && new_writer_epoch.is_none()
            && !self.gate.lock().await.active
        {
            match self.mysql.executed_position().await {
                Ok(p) => p,
                Err(e) => {
                    log.failed(format!("reading the executed GTID position: {e}"));
                    None
                }
            }
        } else {
            None
        };
        Ok(StatusReply {
            host: self.settings.host.clone(),
            epoch,
            done: log.done,
            failed: log.failed,
            writer: self.writer_state().await,
            uptime_secs: (self.settings.uptime)(),
            position,
        })
    }

    /// The master this slave must be re-pointed to: the told active master, unless it
    /// replicates from it already (or is offline).
    fn due_repoint(&self, inner: &Inner) -> Option<String> {
        let told = inner.persisted.told.as_ref()?;
        let master = told.active_master.as_ref()?.as_str();
        let due = self.settings.mode == HostMode::Slave
            && !matches!(told.state, HostState::AdminOffline | HostState::HardOffline)
            && master != self.settings.host
            && inner.repointed_to.as_deref() != Some(master);
        due.then(|| master.to_string())
    }

    async fn repoint(&self, master: &str, inner: &mut Inner, log: &mut Log) {
        let Some(source) = self.settings.sources.get(master) else {
            log.failed(format!(
                "cannot re-point to '{master}': no such host in the configuration"
            ));
            return;
        };
        match self.mysql.repoint(source, RepointMethod::Auto).await {
            Ok(how) => {
                inner.repointed_to = Some(master.to_string());
                inner.repointed_at = Some(Instant::now());
                tracing::info!(host = %self.settings.host, master, ?how, "replicating from the active master");
                log.done(format!("replicating from {master} ({how:?})"));
            }
            Err(e) => {
                tracing::error!(host = %self.settings.host, master, error = %e, "re-pointing failed");
                log.failed(format!("re-pointing to {master}: {e}"));
            }
        }
    }

    /// Promotion: relay log applied, then a lease, then writable with the VIP.
    async fn promote(&self, epoch: u64, inner: &mut Inner, log: &mut Log) {
        if inner.caught_up != Some(epoch) {
            let limit = self.settings.catchup_timeout;
            let caught_up = match inner.persisted.catch_up_to.clone() {
                Some(p) => self
                    .mysql
                    .wait_executed(&p, limit)
                    .await
                    .map(|()| format!("executed the old writer's last position {p}"))
                    .map_err(|e| format!("waiting for the old writer's last writes: {e}")),
                None => match self.mysql.wait_relay_applied(limit).await {
                    Ok(()) => self
                        .catch_up_from_peers(&inner.peers, &inner.offline_peers, limit)
                        .await
                        .map(|fetched| match fetched {
                            Some(f) => format!("relay log applied; {f}"),
                            None => "relay log applied".to_string(),
                        }),
                    Err(e) => Err(format!("waiting for the relay log: {e}")),
                },
            };
            match caught_up {
                Ok(done) => {
                    inner.caught_up = Some(epoch);
                    tracing::info!(host = %self.settings.host, epoch, "{done}");
                    log.done(done);
                }
                Err(reason) if self.settings.catchup_policy == CatchupPolicy::Promote => {
                    // The operator chose a writer now over the writes it may lack.
                    let done = format!(
                        "not caught up ({reason}); taking writes anyway (catchup_policy promote): \
                         transactions the old writer or a peer acknowledged may be missing here"
                    );
                    inner.caught_up = Some(epoch);
                    tracing::error!(host = %self.settings.host, epoch, "{done}");
                    log.done(done);
                }
                Err(reason) => {
                    self.gate.lock().await.waiting = reason.clone();
                    log.failed(reason);
                    return;
                }
            }
        }
        let leased = lock(&self.lease).valid_for(epoch, Instant::now());
        if leased {
            return self.activate(epoch, log).await;
        }
        match self.renew(epoch).await {
            Ok(()) => self.activate(epoch, log).await,
            Err(e) => {
                let reason = format!("no lease yet ({e})");
                self.gate.lock().await.waiting = reason.clone();
                log.failed(reason);
            }
        }
    }

    /// After an unplanned move, once its relay log is applied: a peer may have received the
    /// old writer's last transactions (a slave that acknowledged them under semi-sync) when
    /// this host did not. Reads every peer's executed position (unreachable peers are
    /// skipped: they cannot be fetched from) and fetches from each one ahead, furthest first,
    /// so the slaves can replicate from this host and no acknowledged write is lost. Says
    /// what it fetched; an error when a peer ahead could not be fetched from (the promotion
    /// waits and tries again).
    async fn catch_up_from_peers(
        &self,
        peers: &[String],
        offline: &[String],
        limit: Duration,
    ) -> Result<Option<String>, String> {
        let sources: Vec<&Source> = peers
            .iter()
            .filter(|p| **p != self.settings.host)
            .filter_map(|p| self.settings.sources.get(p))
            .collect();
        if sources.is_empty() {
            return Ok(None);
        }
        let own = self
            .mysql
            .executed_position()
            .await
            .map_err(|e| format!("reading the executed GTID position: {e}"))?;
        let mut own = match GtidPos::parse(own.as_deref().unwrap_or_default()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(host = %self.settings.host, error = %e, "not a MariaDB GTID position: peers are not compared");
                return Ok(None);
            }
        };
        let read = sources.iter().map(|s| async move {
            let connect = offline.contains(&s.name).then_some(OFFLINE_PEER_CONNECT);
            let answer = tokio::time::timeout(
                PEER_SURVEY,
                self.mysql.peer_executed(s, connect, PEER_APPLY),
            )
            .await
            .unwrap_or_else(|_| {
                Err(MysqlError::Timeout {
                    what: format!("reading the executed position of {}", s.name),
                    timeout: PEER_SURVEY,
                })
            });
            (*s, answer)
        });
        // By the binary log state where the server has one: a peer at the same sequence
        // number from another server (this host's own unreplicated writes against what the
        // peer acknowledged from the old writer) has transactions this host lacks.
        let state = match self.mysql.binlog_state().await {
            Ok(Some(text)) => match BinlogState::parse(&text) {
                Ok(state) => Some(state),
                Err(e) => {
                    tracing::warn!(host = %self.settings.host, error = %e, "the binary log state does not parse: peers compared by position");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => return Err(format!("reading the binary log state: {e}")),
        };
        let lacks = |p: &GtidPos| match &state {
            Some(state) => !state.lacks(p).is_empty(),
            None => own.behind(p) > 0,
        };
        let mut ahead = Vec::new();
        for (source, answer) in futures::future::join_all(read).await {
            tracing::debug!(host = %self.settings.host, peer = %source.name, answer = ?answer, "peer's executed position");
            match answer.map(|p| p.map(|p| GtidPos::parse(&p))) {
                Ok(Some(Ok(p))) if lacks(&p) => ahead.push((source, p)),
                Ok(Some(Ok(_)) | None) => {}
                Ok(Some(Err(e))) => {
                    tracing::warn!(host = %self.settings.host, peer = %source.name, error = %e, "peer skipped")
                }
                Err(e) => {
                    tracing::warn!(host = %self.settings.host, peer = %source.name, error = %e, "peer skipped: its position cannot be read")
                }
            }
        }
        ahead.sort_by_key(|(s, p)| (std::cmp::Reverse(own.behind(p)), s.name.clone()));
        let mut fetched = Vec::new();
        let mut state = state;
        for (source, position) in ahead {
            let missing = match &state {
                Some(state) => gtid::list(&state.lacks(&position)),
                None => gtid::list(&own.missing(&position)),
            };
            if missing.is_empty() {
                continue;
            }
            tracing::warn!(host = %self.settings.host, peer = %source.name, %position, %missing, "a peer executed more than this new writer: fetching from it");
            self.mysql
                .catch_up_from(source, &position.to_string(), limit)
                .await
                .map_err(|e| format!("fetching {missing} from {}: {e}", source.name))?;
            own = own.merge(&position);
            state = state.map(|s| s.with_position(&position));
            fetched.push(format!("fetched up to {missing} from {}", source.name));
        }
        Ok((!fetched.is_empty()).then(|| fetched.join("; ")))
    }

    /// Asks for the lease once; on a grant, records its deadline. A refusal means this host
    /// is no longer the writer at `epoch`: it is fenced at once.
    async fn renew(&self, epoch: u64) -> Result<(), RenewError> {
        let sent = Instant::now();
        let req = LeaseRequest {
            host: self.settings.host.clone(),
            epoch,
        };
        match self.monitors.renew(&req).await {
            Ok(grant) if grant.epoch == epoch && *lock(&self.writer_epoch) == Some(epoch) => {
                let lease = Duration::from_millis(grant.lease_ms);
                let fence_at = sent + lease.saturating_sub(self.settings.fence_margin);
                *lock(&self.lease) = Lease {
                    epoch,
                    fence_at: Some(fence_at),
                };
                *lock(&self.renew_every) = Duration::from_millis(grant.renew_ms.max(10));
                self.lease_changed.notify_waiters();
                Ok(())
            }
            Ok(grant) => Err(RenewError::Refused(format!(
                "granted for epoch {} while this host holds epoch {epoch}",
                grant.epoch
            ))),
            Err(RenewError::Refused(why)) => {
                {
                    let mut w = lock(&self.writer_epoch);
                    if *w == Some(epoch) {
                        *w = None;
                    }
                }
                let mut log = Log::default();
                self.fence(&format!("lease refused: {why}"), &mut log).await;
                Err(RenewError::Refused(why))
            }
            Err(e) => Err(e),
        }
    }

    /// Makes the writer active if the lease for `epoch` is valid; inside the gate, bounded by
    /// the lease, so it cannot outlive it.
    async fn activate(&self, epoch: u64, log: &mut Log) {
        let mut gate = self.gate.lock().await;
        let lease = *lock(&self.lease);
        let fence_at = match lease.fence_at {
            Some(t) if lease.valid_for(epoch, Instant::now()) => t,
            _ => {
                gate.waiting = "the lease ran out before the promotion finished".into();
                log.failed(gate.waiting.clone());
                return;
            }
        };
        let work = async {
            self.mysql
                .set_read_only(false)
                .await
                .map_err(|e| format!("read_only=0: {e}"))?;
            for ip in self.settings.writer_ips() {
                self.vips
                    .add(ip)
                    .await
                    .map_err(|e| format!("adding writer VIP {ip}: {e}"))?;
            }
            Ok::<(), String>(())
        };
        let result = tokio::time::timeout_at(fence_at, work)
            .await
            .unwrap_or_else(|_| Err("the promotion did not finish within the lease".into()));
        match result {
            Ok(()) => {
                gate.active = true;
                gate.waiting.clear();
                self.fence_pending
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!(host = %self.settings.host, epoch, "writer role active: read_only=0, writer VIP on");
                log.done(format!(
                    "writer active at epoch {epoch}: read_only=0, writer VIP on"
                ));
            }
            Err(e) => {
                drop(gate);
                log.failed(e.clone());
                self.fence(&format!("the promotion failed half-way: {e}"), log)
                    .await;
            }
        }
    }

    /// Fences the writer: VIP off first, then read_only=1, then client sessions killed.
    async fn fence(&self, reason: &str, log: &mut Log) {
        let mut gate = self.gate.lock().await;
        *lock(&self.lease) = Lease::default();
        let was_active = gate.active;
        gate.active = false;
        self.remove_writer_vips(log).await;
        let read_only = self.mysql.set_read_only(true).await;
        let kill = self
            .mysql
            .kill_client_sessions(self.settings.max_kill_retries, self.settings.kill_pause)
            .await;
        self.fence_landed(read_only.is_ok() && kill.is_ok());
        match read_only {
            Ok(()) => log.done("read_only=1".into()),
            Err(e) => log.failed(format!("read_only=1: {e}")),
        }
        match kill {
            Ok(k) => log.done(format!(
                "killed {} client sessions in {} passes",
                k.killed, k.passes
            )),
            Err(e) => log.failed(format!("killing client sessions: {e}")),
        }
        gate.waiting = reason.to_string();
        if was_active {
            tracing::error!(host = %self.settings.host, reason, failed = ?log.failed, "writer fenced: VIP off, read_only=1, sessions killed");
        } else {
            tracing::info!(host = %self.settings.host, reason, "writer fence checked");
        }
    }

    /// The fence that cannot wait for the gate: the watchdog's, when the lease has run out
    /// while something holds the gate. A reconciliation or a status request may hold it for
    /// seconds while MySQL is slow to answer (`SHOW MASTER STATUS` waits behind commits that
    /// wait for a semi-sync acknowledgement, and once the semi-sync timeout passes those
    /// commits return OK to their clients with nobody else having them). The lease is cleared
    /// first, so nothing done under the gate makes the host writable again (`reconcile` and
    /// `activate` check it); then the writer VIP goes, the client sessions are killed before
    /// read_only is set (a commit waiting for its acknowledgement ends without an OK), and
    /// read_only is set. The gated fence follows as soon as the gate is free.
    async fn fence_without_gate(&self) {
        *lock(&self.lease) = Lease::default();
        let mut log = Log::default();
        self.remove_writer_vips(&mut log).await;
        let landed = self.fence_mysql(&mut log).await;
        self.fence_landed(landed);
        tracing::error!(host = %self.settings.host, done = ?log.done, failed = ?log.failed, "the writer lease ran out while the agent was busy: fenced without waiting");
    }

    /// The MySQL side of a fence that does not wait: client sessions killed first (a commit
    /// waiting for its semi-sync acknowledgement ends without an OK), then read_only=1.
    /// Whether both worked.
    async fn fence_mysql(&self, log: &mut Log) -> bool {
        let kill = self
            .mysql
            .kill_client_sessions(0, self.settings.kill_pause)
            .await;
        let read_only = self.mysql.set_read_only(true).await;
        let landed = kill.is_ok() && read_only.is_ok();
        match kill {
            Ok(k) => log.done(format!("killed {} client sessions", k.killed)),
            Err(e) => log.failed(format!("killing client sessions: {e}")),
        }
        match read_only {
            Ok(()) => log.done("read_only=1".into()),
            Err(e) => log.failed(format!("read_only=1: {e}")),
        }
        landed
    }

    /// Records whether a fence reached MySQL; one that did not is retried.
    fn fence_landed(&self, landed: bool) {
        use std::sync::atomic::Ordering::SeqCst;
        self.fence_pending.store(!landed, SeqCst);
        if !landed {
            self.fence_failed.notify_waiters();
        }
    }

    /// Retries a fence whose MySQL side failed (a frozen, overloaded or restarting server):
    /// client sessions killed, then read_only=1, every [`FENCE_RETRY`] until both work or the
    /// host is the active writer again. A server that was frozen (SIGSTOP, a stalled VM) while
    /// its writer's lease ran out thus gets read_only=1 as soon as it answers, before the
    /// commits it held can outlast their semi-sync wait and return OK; reconciliation would
    /// come up to a second later. Each attempt is bounded by the connect and query timeouts.
    pub async fn run_fence_retry(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        loop {
            let failed = self.fence_failed.notified();
            if !self.fence_pending.load(SeqCst) {
                failed.await;
                continue;
            }
            {
                // Without waiting for the gate: whoever holds it may wait on MySQL too. With
                // it when it is free, so an activation does not run in between.
                let gate = self.gate.try_lock().ok();
                if gate.as_ref().is_some_and(|g| g.active) || self.lease_valid_now() {
                    self.fence_pending.store(false, SeqCst);
                    continue;
                }
                let mut log = Log::default();
                if self.fence_mysql(&mut log).await {
                    self.fence_pending.store(false, SeqCst);
                    tracing::warn!(host = %self.settings.host, done = ?log.done, "fence completed: MySQL answers again");
                    continue;
                }
                tracing::debug!(host = %self.settings.host, failed = ?log.failed, "fence not landed yet");
            }
            tokio::time::sleep(FENCE_RETRY).await;
        }
    }

    /// Removes the writer VIPs: the first step of every fence.
    async fn remove_writer_vips(&self, log: &mut Log) {
        for ip in self.settings.writer_ips() {
            match self.vips.remove(ip).await {
                Ok(true) => log.done(format!("removed writer VIP {ip}")),
                Ok(false) => {}
                Err(e) => log.failed(format!("removing writer VIP {ip}: {e}")),
            }
        }
    }

    /// Whether the writer lease is valid now: what the writable side of a reconciliation
    /// needs, besides the gate.
    fn lease_valid_now(&self) -> bool {
        lock(&self.lease)
            .fence_at
            .is_some_and(|t| Instant::now() < t)
    }

    /// Where the writer role stands.
    pub async fn writer_state(&self) -> WriterState {
        if lock(&self.writer_epoch).is_none() {
            return WriterState::NotWriter;
        }
        let gate = self.gate.lock().await;
        if gate.active {
            let left = lock(&self.lease)
                .fence_at
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or_default();
            WriterState::Active {
                lease_left_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
            }
        } else {
            WriterState::Waiting {
                reason: if gate.waiting.is_empty() {
                    "no lease yet".into()
                } else {
                    gate.waiting.clone()
                },
            }
        }
    }

    /// Renews the lease forever while told to be writer; activates the writer on a grant.
    pub async fn run_lease(&self) {
        let mut unavailable_since: Option<Instant> = None;
        loop {
            let every = *lock(&self.renew_every);
            let next = Instant::now() + every;
            let epoch = *lock(&self.writer_epoch);
            if let Some(epoch) = epoch {
                match self.renew(epoch).await {
                    Ok(()) => {
                        if unavailable_since.take().is_some() {
                            tracing::info!(host = %self.settings.host, epoch, "lease renewed again");
                        }
                        // Never wait here for the gate or the state: a reconciliation or a
                        // status request may hold them while MySQL is slow (SHOW MASTER STATUS
                        // waits while commits wait for a semi-sync acknowledgement), and a
                        // renewal that waits lets the lease run out under an active writer.
                        // A promotion that is due is tried again after the next renewal.
                        let inactive = self.gate.try_lock().is_ok_and(|g| !g.active);
                        if inactive {
                            if let Ok(mut inner) = self.inner.try_lock() {
                                if *lock(&self.writer_epoch) == Some(epoch) {
                                    let mut log = Log::default();
                                    self.promote(epoch, &mut inner, &mut log).await;
                                }
                            }
                        }
                    }
                    Err(RenewError::Unavailable(why)) => {
                        if unavailable_since.is_none() {
                            unavailable_since = Some(Instant::now());
                            tracing::warn!(host = %self.settings.host, epoch, %why, "cannot renew the writer lease");
                        }
                    }
                    Err(RenewError::Refused(_)) => {}
                }
            }
            tokio::time::sleep_until(next).await;
        }
    }

    /// Fences the writer when its lease runs out.
    pub async fn run_watchdog(&self) {
        loop {
            let notified = self.lease_changed.notified();
            let fence_at = lock(&self.lease).fence_at;
            let now = Instant::now();
            match fence_at {
                Some(t) if t <= now => {
                    let gate = match self.gate.try_lock() {
                        Ok(gate) => gate,
                        Err(_) => {
                            self.fence_without_gate().await;
                            self.gate.lock().await
                        }
                    };
                    let active = gate.active;
                    drop(gate);
                    if active {
                        let mut log = Log::default();
                        self.fence("the writer lease ran out", &mut log).await;
                    } else {
                        *lock(&self.lease) = Lease::default();
                    }
                }
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Makes the host match what it was told (MMM's check_roles after every connection): an
    /// active writer keeps read_only off and its VIP on; any other host has no writer VIP and
    /// read_only on; told reader VIPs are on, once a monitor has confirmed them to this
    /// process.
    pub async fn reconcile(&self) -> Vec<String> {
        let mut fixed = Vec::new();
        // Read before taking the gate: MySQL may answer slowly (SHOW MASTER STATUS waits while
        // commits wait for a semi-sync acknowledgement), and the gate must not be held meanwhile.
        // A reading that is stale by the time the gate is taken errs on the safe side: the
        // writer's read_only is turned off only under a valid lease, and the fence sets
        // read_only=1 by itself.
        let server = self.mysql.status().await.ok();
        {
            let gate = self.gate.lock().await;
            let writer_ips = self.settings.writer_ips();
            if gate.active {
                // Not once the lease has run out: the watchdog is fencing.
                for ip in writer_ips.iter().filter(|_| self.lease_valid_now()) {
                    if let Ok(true) = self.vips.add(*ip).await {
                        fixed.push(format!("re-added missing writer VIP {ip}"));
                        if !self.lease_valid_now() {
                            let _ = self.vips.remove(*ip).await;
                        }
                    }
                }
            } else {
                for ip in &writer_ips {
                    if let Ok(true) = self.vips.remove(*ip).await {
                        fixed.push(format!(
                            "removed writer VIP {ip} from a host that is not the active writer"
                        ));
                    }
                }
            }
            if let Some(st) = &server {
                if gate.active
                    && st.read_only
                    && self.lease_valid_now()
                    && self.mysql.set_read_only(false).await.is_ok()
                {
                    fixed.push("read_only was on at the active writer: turned it off".into());
                }
                if !gate.active && !st.read_only && self.mysql.set_read_only(true).await.is_ok() {
                    fixed.push(
                        "read_only was off on a host that is not the active writer: turned it on"
                            .into(),
                    );
                }
            }
        }
        if let Ok(mut inner) = self.inner.try_lock() {
            // A re-pointing that failed (the new master may not have the slave's last GTID
            // yet while it catches up) is tried again on every pass; not from a remembered
            // status before a monitor confirms it (the master may have changed meanwhile).
            // So is one whose IO thread stopped on an error afterwards (the new master did not
            // have this slave's last GTID yet when it first asked): MariaDB does not retry that.
            let stalled = server
                .as_ref()
                .and_then(|st| st.replica.as_ref())
                .is_some_and(|r| !r.io_running && r.last_io_error.is_some());
            if stalled && self.settings.mode == HostMode::Slave {
                inner.repointed_to = None;
            }
            let due = self.due_repoint(&inner).filter(|_| inner.confirmed);
            if let Some(master) = due {
                let mut log = Log::default();
                self.repoint(&master, &mut inner, &mut log).await;
                if log.failed.is_empty() {
                    fixed.push(format!("re-pointed to {master} after an earlier failure"));
                }
            }
            let told: Vec<RoleIp> = inner
                .persisted
                .told
                .as_ref()
                .filter(|_| inner.confirmed)
                .map(|t| t.roles.clone())
                .unwrap_or_default();
            drop(inner);
            for r in told.iter().filter(|r| r.role != self.settings.writer_role) {
                if let Ok(true) = self.vips.add(r.ip).await {
                    fixed.push(format!("re-added missing VIP {} ({})", r.ip, r.role));
                }
            }
        }
        for f in &fixed {
            tracing::warn!(host = %self.settings.host, "{f}");
        }
        fixed
    }

    /// MMM's CLEAR_BAD_ROLES: removes configured role IPs the agent does not hold.
    pub async fn clear_bad_roles(&self, req: &ClearBadRoles) -> Result<Cleared, Refusal> {
        let inner = self.inner.lock().await;
        self.check_host_and_epoch(&req.host, req.epoch, inner.persisted.epoch)?;
        let held: BTreeSet<IpAddr> = inner
            .persisted
            .told
            .as_ref()
            .map(|t| t.roles.iter().map(|r| r.ip).collect())
            .unwrap_or_default();
        drop(inner);
        let mut cleared = Cleared {
            removed: vec![],
            failed: vec![],
        };
        let present = match self.vips.configured().await {
            Ok(p) => p,
            Err(e) => {
                cleared
                    .failed
                    .push(format!("Could not check if IP is configured: {e}"));
                return Ok(cleared);
            }
        };
        let writer_ips = self.settings.writer_ips();
        let role_ips = self.settings.role_ips();
        for ip in present {
            if !role_ips.contains(&ip) || held.contains(&ip) {
                continue;
            }
            if writer_ips.contains(&ip) {
                let mut log = Log::default();
                self.fence("CLEAR_BAD_ROLES found the writer VIP", &mut log)
                    .await;
                cleared.failed.extend(log.failed);
                cleared.removed.push(ip);
                continue;
            }
            match self.vips.remove(ip).await {
                Ok(_) => cleared.removed.push(ip),
                Err(e) => cleared.failed.push(format!("removing {ip}: {e}")),
            }
        }
        Ok(cleared)
    }

    /// MMM's GET_SYSTEM_STATUS and GET_AGENT_STATUS together.
    pub async fn system_status(&self) -> SystemStatus {
        let (epoch, told) = lock(&self.seen).clone();
        let (mysql, mysql_error) = match self.mysql.status().await {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let role_ips = self.settings.role_ips();
        let (vips, vips_error) = match self.vips.configured().await {
            Ok(p) => (
                p.into_iter().filter(|ip| role_ips.contains(ip)).collect(),
                None,
            ),
            Err(e) => (vec![], Some(e.to_string())),
        };
        SystemStatus {
            host: self.settings.host.clone(),
            uptime_secs: (self.settings.uptime)(),
            epoch,
            told,
            writer: self.writer_state().await,
            mysql,
            mysql_error,
            vips,
            vips_error,
        }
    }

    /// At startup: nothing is active until a lease is granted, so a host that restarted with
    /// the writer VIP or read_only off is fenced now.
    pub async fn start(&self) -> Vec<String> {
        self.reconcile().await
    }

    /// Re-checks the host every `every` (see `reconcile`), and every [`REPOINT_WATCH`] while
    /// a re-pointing is due or was done less than [`REPOINT_WATCH_FOR`] ago.
    pub async fn run_reconcile(&self, every: Duration) {
        loop {
            let pause = if self.watching_repoint() {
                every.min(REPOINT_WATCH)
            } else {
                every
            };
            tokio::time::sleep(pause).await;
            self.reconcile().await;
        }
    }

    /// Whether a re-pointing is due (it failed: the new master lacked this slave's last GTID
    /// while it caught up) or recent (its IO thread may still stop on that error). Until a
    /// slave replicates from it, a new writer's commits wait for a semi-sync acknowledgement,
    /// so these are retried at once rather than at the next regular pass.
    fn watching_repoint(&self) -> bool {
        let Ok(inner) = self.inner.try_lock() else {
            return false;
        };
        self.due_repoint(&inner)
            .filter(|_| inner.confirmed)
            .is_some()
            || inner
                .repointed_at
                .is_some_and(|t| t.elapsed() < REPOINT_WATCH_FOR)
    }

    /// Watches the local server every `every`: its process (the pid file, when the hand knows
    /// one), then a ping. While it is gone or does not answer, the agent reports
    /// it to the monitor group (every `every`, until the leader's own probe confirms it): the
    /// fast failover path.
    pub async fn run_mysql_watch(&self, every: Duration) {
        let mut alive = true;
        let mut confirmed = false;
        let limit = every.max(Duration::from_millis(200));
        loop {
            let up = match self.mysql.process_gone() {
                Some(gone) => Err(format!("mysqld is gone: {gone}")),
                None => match tokio::time::timeout(limit, self.mysql.ping()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("mysqld does not answer: {e}")),
                    Err(_) => Err(format!(
                        "mysqld does not answer: no reply to a ping within {limit:?}"
                    )),
                },
            };
            match up {
                Ok(()) => {
                    if !alive {
                        tracing::warn!(host = %self.settings.host, "local mysqld answers again");
                    }
                    alive = true;
                    confirmed = false;
                }
                Err(e) => {
                    if alive {
                        tracing::error!(host = %self.settings.host, error = %e, "local mysqld is down");
                    }
                    alive = false;
                    if !confirmed {
                        let report = HostReport {
                            host: self.settings.host.clone(),
                            message: e,
                        };
                        match self.monitors.report(&report).await {
                            Ok(r) if r.confirmed => {
                                confirmed = true;
                                tracing::warn!(host = %self.settings.host, detail = %r.detail, "the monitor confirmed the mysqld failure");
                            }
                            Ok(r) => {
                                tracing::info!(host = %self.settings.host, detail = %r.detail, "the monitor's probe does not confirm the mysqld failure yet")
                            }
                            Err(e) => {
                                tracing::warn!(host = %self.settings.host, error = %e, "cannot report the mysqld failure")
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Takes this host out of the agent's hands while a clone replaces its data: refused when
    /// it is (or is told to become) the writer or holds roles. While the returned guard lives
    /// no status is applied and reconciliation re-points nothing.
    pub async fn maintenance(&self) -> Result<Maintenance<'_>, String> {
        let inner = self.inner.lock().await;
        if self.gate.lock().await.active {
            return Err(format!("{} is the active writer", self.settings.host));
        }
        if lock(&self.writer_epoch).is_some() {
            return Err(format!("{} is told to be the writer", self.settings.host));
        }
        if let Some(told) = inner
            .persisted
            .told
            .as_ref()
            .filter(|t| !t.roles.is_empty())
        {
            let roles: Vec<String> = told
                .roles
                .iter()
                .map(|r| format!("{}({})", r.role, r.ip))
                .collect();
            return Err(format!(
                "{} holds roles ({}): take it out of rotation first (mmm_control set_offline {})",
                self.settings.host,
                roles.join(", "),
                self.settings.host
            ));
        }
        Ok(Maintenance { inner })
    }

    /// Under [`Agent::maintenance`]: makes the local server replicate from `master` now and
    /// remembers it, as a re-pointing ordered by a monitor would.
    pub async fn repoint_now(
        &self,
        m: &mut Maintenance<'_>,
        master: &str,
    ) -> Result<String, String> {
        let mut log = Log::default();
        self.repoint(master, &mut m.inner, &mut log).await;
        match log.failed.pop() {
            Some(e) => Err(e),
            None => Ok(log.done.join("; ")),
        }
    }

    /// Before the process exits: an active writer fences itself, since nobody would be left
    /// to fence it when its lease ends. The restarted agent asks for a new lease.
    pub async fn shutdown(&self) {
        if self.gate.lock().await.active {
            let mut log = Log::default();
            self.fence("the agent is stopping", &mut log).await;
        }
    }
}

/// Held while a clone replaces this host's data (see [`Agent::maintenance`]).
pub struct Maintenance<'a> {
    inner: tokio::sync::MutexGuard<'a, Inner>,
}

/// The epoch at which `status` makes this host the writer, if it does.
fn writer_epoch_of(status: Option<&AgentStatus>, writer: &RoleName) -> Option<u64> {
    status.filter(|t| t.holds(writer)).map(|t| t.epoch.0)
}

/// What one request did.
#[derive(Debug, Default)]
struct Log {
    done: Vec<String>,
    failed: Vec<String>,
}

impl Log {
    fn done(&mut self, what: String) {
        self.done.push(what);
    }
    fn failed(&mut self, what: String) {
        self.failed.push(what);
    }
}
