//! A deterministic model of the MariaDB hosts for the simulation: mysqld up or down, read_only,
//! a binary log of GTIDs, asynchronous replication with an IO and a SQL thread, semi-sync
//! acknowledgements of client commits, client sessions, and the VIPs on each host's interface
//! with the gratuitous-ARP cache that decides where traffic to a VIP goes.
//!
//! The agent drives a host through [`SimMysql`] ([`mmm_agent::ops::Mysql`]) and [`SimVips`]
//! ([`mmm_agent::ops::Vips`]); the monitors see it through [`World::probe`]; the harness injects
//! faults ([`World::crash_mysqld`], [`World::start_mysqld`], [`World::set_apply_delay`]; network
//! partitions live in the harness and are consulted through [`Reach`]) and runs a client
//! workload ([`World::write`]).
//!
//! A replica, or a catch-up connection, asks its source to start after its own last GTID, as
//! MariaDB does: a source whose binary log lacks that GTID while it holds later sequence
//! numbers refuses with error 1236, so histories that parted never merge silently.
//!
//! Everything is deterministic given the seed: the state sits behind one mutex never held
//! across an `.await`, randomness comes from one seeded [`StdRng`], maps are ordered, and time
//! is tokio's (virtual, paused) clock. Replication advances in one background task
//! ([`World::spawn_replication`]) every 5 ms of virtual time.
//!
//! What it does not model: row data (a transaction is one number), more than one GTID domain
//! (domain 0 only), engine crash recovery (a crash loses nothing that reached the binary log,
//! and the relay log survives as it was), `gtid_strict_mode` errors (a replicated transaction
//! with a sequence number the replica already executed is skipped), multi-source replication,
//! replication lag measured from the master's clock (the lag is the age of the oldest relay log
//! entry), and the IO thread's "Connecting" state (a running IO thread that cannot reach its
//! master says it runs, and fetches nothing).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use mmm_agent::ops::{
    BinlogPos, Killed, Mysql, MysqlError, ReplicaStatus, RepointMethod, Repointed, ServerStatus,
    Source, VipError, Vips,
};
use mmm_core::{CheckKind, Probe};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::{sleep, Instant};

/// Whether host (or process) `from` can now reach host `to` over the network. Owned by the
/// harness; called with the world's lock held, so it must not call into the [`World`].
pub type Reach = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// How often the replication task advances the IO and SQL threads.
pub const REPLICATION_TICK: Duration = Duration::from_millis(5);
/// The longest the replication task sleeps when it has nothing to do (a safety net: every
/// change that creates work wakes it).
pub const IDLE_TICK: Duration = Duration::from_secs(1);
/// How often waits on the server (relay log, GTID) look again.
const WAIT_POLL: Duration = Duration::from_millis(5);
/// How often a client waiting for its commit looks again.
const COMMIT_POLL: Duration = Duration::from_millis(2);
/// MMM's default `max_backlog` for the rep_backlog check.
pub const MAX_BACKLOG_SECS: u64 = 60;
/// The version every simulated server reports.
pub const VERSION: &str = "10.11.6-MariaDB-sim";
/// The binlog file name every simulated server reports.
const BINLOG_FILE: &str = "mysql-bin.000001";
/// The MySQL port.
const PORT: u16 = 3306;
/// How long a re-pointing waits for the relay log to be applied first, as the real agent does
/// (`catchup_timeout`'s default).
const REPOINT_CATCHUP: Duration = mmm_agent::mysql::DEFAULT_CATCHUP_TIMEOUT;

/// Timing of the model.
#[derive(Debug, Clone)]
pub struct Params {
    /// `rpl_semi_sync_master_timeout`: how long a commit waits for a replica's acknowledgement
    /// before the master falls back to asynchronous replication (and acknowledges).
    pub semi_sync_timeout: Duration,
    /// The SQL thread applies each relay log transaction after a random delay in `0..=this`.
    pub apply_delay_max: Duration,
    /// The IO thread receives each transaction after a random delay in `0..=this`.
    pub io_delay_max: Duration,
    /// What each `Mysql` call, VIP operation, probe and client statement takes.
    pub op_latency: Duration,
    /// How long a connection attempt to an unreachable server takes to fail.
    pub connect_timeout: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            semi_sync_timeout: Duration::from_secs(3),
            apply_delay_max: Duration::from_millis(50),
            io_delay_max: Duration::from_millis(20),
            op_latency: Duration::from_millis(1),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

/// One transaction: its MariaDB GTID and the one value it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Txn {
    /// The GTID domain (always 0).
    pub domain: u32,
    /// The server that committed it first.
    pub server_id: u32,
    /// Its sequence number in the domain.
    pub seq: u64,
    /// What the client wrote.
    pub value: u64,
}

impl Txn {
    /// The GTID as MariaDB prints it: `domain-server_id-seq`.
    pub fn gtid(&self) -> String {
        format!("{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

/// What a client learned of its write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Committed and acknowledged by `host`.
    Ok {
        /// The server that took the write.
        host: String,
    },
    /// Refused or never sent: nothing happened.
    Fail(String),
    /// The connection was lost during the commit: it may or may not have happened.
    Unknown(String),
}

/// A transaction the IO thread received, waiting for the SQL thread.
#[derive(Debug, Clone)]
struct RelayEntry {
    txn: Txn,
    received_at: Instant,
}

/// One host's mysqld and network interface.
#[derive(Debug)]
struct Server {
    name: String,
    server_id: u32,
    up: bool,
    incarnation: u64,
    started_at: Instant,
    read_only: bool,
    /// Strictly increasing `seq` (every append checks it).
    binlog: Vec<Txn>,
    master: Option<String>,
    /// `MASTER_USE_GTID=slave_pos` rather than a file/position.
    use_gtid: bool,
    /// By file/position: the IO thread starts after this sequence number of the master.
    fetch_floor: u64,
    io_running: bool,
    sql_running: bool,
    /// The threads' state when mysqld went down, restored when it starts.
    resume_io: bool,
    resume_sql: bool,
    relay: VecDeque<RelayEntry>,
    last_io_error: Option<String>,
    last_sql_error: Option<String>,
    /// Transactions the IO thread is receiving, with when each arrives (non-decreasing).
    io_sched: VecDeque<(Txn, Instant)>,
    io_last_arrival: Option<Instant>,
    /// When the SQL thread finishes applying the relay log's first entry.
    sql_next: Option<Instant>,
    sql_last_at: Option<Instant>,
    /// A slow SQL thread: each transaction takes this long, one after the other.
    apply_delay: Option<Duration>,
    sessions: BTreeSet<u64>,
    vips: BTreeSet<IpAddr>,
}

impl Server {
    fn new(name: &str, server_id: u32, now: Instant) -> Server {
        Server {
            name: name.to_string(),
            server_id,
            up: true,
            incarnation: 0,
            started_at: now,
            read_only: true,
            binlog: Vec::new(),
            master: None,
            use_gtid: true,
            fetch_floor: 0,
            io_running: false,
            sql_running: false,
            resume_io: false,
            resume_sql: false,
            relay: VecDeque::new(),
            last_io_error: None,
            last_sql_error: None,
            io_sched: VecDeque::new(),
            io_last_arrival: None,
            sql_next: None,
            sql_last_at: None,
            apply_delay: None,
            sessions: BTreeSet::new(),
            vips: BTreeSet::new(),
        }
    }

    fn executed_seq(&self) -> u64 {
        self.binlog.last().map_or(0, |t| t.seq)
    }

    /// The last transaction received (relay log) or executed, whichever is later.
    fn last_received(&self) -> Option<Txn> {
        let relay = self.relay.back().map(|e| e.txn);
        let binlog = self.binlog.last().copied();
        match (relay, binlog) {
            (Some(r), Some(b)) => Some(if r.seq >= b.seq { r } else { b }),
            (r, b) => r.or(b),
        }
    }

    fn received_seq(&self) -> u64 {
        self.last_received()
            .map_or(0, |t| t.seq)
            .max(self.fetch_floor)
    }

    /// The master's name when this server is a replica (a master that is not itself).
    fn master_name(&self) -> Option<&str> {
        self.master.as_deref().filter(|m| *m != self.name)
    }

    fn executed_position(&self) -> Option<String> {
        self.binlog.last().map(Txn::gtid)
    }

    fn has_txn(&self, txn: &Txn) -> bool {
        find_seq(&self.binlog, txn.seq).is_some_and(|t| t == *txn)
            || self.relay.iter().rev().any(|e| e.txn == *txn)
    }

    fn stop_io(&mut self) {
        self.io_running = false;
        self.io_sched.clear();
    }

    fn stop_sql(&mut self) {
        self.sql_running = false;
        self.sql_next = None;
    }

    fn seconds_behind(&self, now: Instant) -> Option<u64> {
        if !(self.io_running && self.sql_running) {
            return None;
        }
        Some(self.relay.front().map_or(0, |e| {
            now.saturating_duration_since(e.received_at).as_secs()
        }))
    }

    /// Appends a transaction if it is later than everything executed (MariaDB would skip an
    /// already applied GTID with `gtid_ignore_duplicates`-like behaviour; see the module doc).
    fn append(&mut self, txn: Txn) -> bool {
        if txn.seq > self.executed_seq() {
            self.binlog.push(txn);
            true
        } else {
            false
        }
    }
}

/// `@@gtid_binlog_state` of a server: the last GTID of each (domain, server) in its binlog.
fn binlog_state_of(s: &Server) -> String {
    let mut last: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for t in &s.binlog {
        last.insert((t.domain, t.server_id), t.seq);
    }
    last.iter()
        .map(|((d, id), q)| format!("{d}-{id}-{q}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The transaction with sequence number `seq` in a binlog (strictly increasing `seq`).
fn find_seq(binlog: &[Txn], seq: u64) -> Option<Txn> {
    binlog
        .binary_search_by_key(&seq, |t| t.seq)
        .ok()
        .map(|i| binlog[i])
}

/// Where a stream from `master` starts for a server whose last GTID is `last`: MariaDB's
/// slave connects with its GTID position and the master looks that GTID up in its binlog.
/// Found: the stream is what follows it. Absent while the master has later sequence numbers:
/// the histories parted (error 1236, nothing is sent). Absent and the master has nothing
/// later: the slave is ahead and waits for what comes after.
fn stream_start(last: Option<Txn>, master: &Server) -> Result<usize, String> {
    let Some(last) = last else {
        return Ok(0);
    };
    match master.binlog.binary_search_by_key(&last.seq, |t| t.seq) {
        Ok(i) if master.binlog[i].server_id == last.server_id => Ok(i + 1),
        Err(i) if i == master.binlog.len() => Ok(i),
        _ => Err(format!(
            "Got fatal error 1236 from master when reading data from binary log: 'Error: connecting \
             slave requested to start from GTID {}, which is not in the master's binlog'",
            last.gtid()
        )),
    }
}

/// The IO thread's complaint when the GTID this server would ask `master` to start from (the
/// last it received or executed) is not in the master's binlog; `None` when history agrees.
fn divergence(replica: &Server, master: &Server) -> Option<String> {
    stream_start(replica.last_received(), master).err()
}

/// The domain-0 sequence number of a MariaDB GTID position (0 when it has no domain 0).
fn parse_position(text: &str) -> Result<u64, MysqlError> {
    let bad = |reason: String| MysqlError::Unexpected {
        query: format!("the GTID position '{text}'"),
        reason,
    };
    let mut seq = 0;
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parts: Vec<&str> = entry.split('-').collect();
        let [domain, server, number] = parts.as_slice() else {
            return Err(bad(format!("'{entry}' is not domain-server-sequence")));
        };
        let domain: u32 = domain
            .parse()
            .map_err(|_| bad(format!("bad domain in '{entry}'")))?;
        let _server: u32 = server
            .parse()
            .map_err(|_| bad(format!("bad server id in '{entry}'")))?;
        let number: u64 = number
            .parse()
            .map_err(|_| bad(format!("bad sequence number in '{entry}'")))?;
        if domain == 0 {
            seq = number;
        }
    }
    Ok(seq)
}

fn random_delay(rng: &mut StdRng, max: Duration) -> Duration {
    let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    if micros == 0 {
        Duration::ZERO
    } else {
        Duration::from_micros(rng.gen_range(0..=micros))
    }
}

/// Everything behind the world's lock.
struct State {
    /// Sorted by name.
    servers: Vec<Server>,
    arp: BTreeMap<IpAddr, String>,
    rng: StdRng,
    next_session: u64,
}

impl State {
    fn index(&self, host: &str) -> Option<usize> {
        self.servers
            .binary_search_by(|s| s.name.as_str().cmp(host))
            .ok()
    }

    fn server(&self, host: &str) -> Option<&Server> {
        self.index(host).map(|i| &self.servers[i])
    }

    fn server_mut(&mut self, host: &str) -> Option<&mut Server> {
        self.index(host).map(move |i| &mut self.servers[i])
    }

    /// The host traffic to `vip` goes to: the last one that announced it, if it still has it.
    fn vip_target(&self, vip: IpAddr) -> Option<String> {
        let host = self.arp.get(&vip)?;
        self.server(host)
            .filter(|s| s.vips.contains(&vip))
            .map(|s| s.name.clone())
    }

    /// Whether a replica of `master` has received or executed `txn` (a semi-sync ack).
    fn acked(&self, master: &str, txn: &Txn) -> bool {
        self.servers
            .iter()
            .any(|s| s.master_name() == Some(master) && s.has_txn(txn))
    }

    /// Advances every IO and SQL thread to `now`; true when replication is idle: nothing will
    /// happen until something changes (a commit, a thread started, mysqld started), which
    /// wakes the replication task. A replica cut off from a running master is never idle: the
    /// network may heal at any time without telling the world.
    fn tick(&mut self, now: Instant, reach: &dyn Fn(&str, &str) -> bool, params: &Params) -> bool {
        for i in 0..self.servers.len() {
            self.tick_io(i, now, reach, params);
            self.tick_sql(i, now, params);
        }
        self.servers.iter().all(|s| self.idle(s, reach))
    }

    fn idle(&self, s: &Server, reach: &dyn Fn(&str, &str) -> bool) -> bool {
        if !s.up {
            return true;
        }
        if s.sql_running && !s.relay.is_empty() {
            return false;
        }
        if !s.io_running {
            return true;
        }
        let Some(master) = s.master_name().and_then(|m| self.server(m)) else {
            return true;
        };
        if !master.up {
            return true;
        }
        s.io_sched.is_empty()
            && master.executed_seq() <= s.received_seq()
            && reach(&s.name, &master.name)
            && reach(&master.name, &s.name)
    }

    fn tick_io(
        &mut self,
        i: usize,
        now: Instant,
        reach: &dyn Fn(&str, &str) -> bool,
        params: &Params,
    ) {
        let replica = &self.servers[i];
        if !replica.up || !replica.io_running {
            return;
        }
        let Some(m) = replica.master_name().and_then(|m| self.index(m)) else {
            return;
        };
        let master = &self.servers[m];
        if !(master.up && reach(&replica.name, &master.name) && reach(&master.name, &replica.name))
        {
            self.servers[i].io_sched.clear();
            return;
        }
        if replica.use_gtid {
            if let Some(error) = divergence(replica, master) {
                let replica = &mut self.servers[i];
                replica.stop_io();
                replica.last_io_error = Some(error);
                return;
            }
        }
        let start = if replica.use_gtid {
            let last = replica
                .io_sched
                .back()
                .map(|(t, _)| *t)
                .or_else(|| replica.last_received());
            match stream_start(last, master) {
                Ok(start) => start,
                Err(error) => {
                    let replica = &mut self.servers[i];
                    replica.stop_io();
                    replica.last_io_error = Some(error);
                    return;
                }
            }
        } else {
            let upto = replica
                .io_sched
                .back()
                .map_or_else(|| replica.received_seq(), |(t, _)| t.seq);
            master.binlog.partition_point(|t| t.seq <= upto)
        };
        let new: Vec<Txn> = master.binlog[start..].to_vec();
        let State { servers, rng, .. } = self;
        let replica = &mut servers[i];
        for txn in new {
            let at = now + random_delay(rng, params.io_delay_max);
            let at = replica.io_last_arrival.map_or(at, |last| last.max(at));
            replica.io_last_arrival = Some(at);
            replica.io_sched.push_back((txn, at));
        }
        while replica.io_sched.front().is_some_and(|(_, at)| *at <= now) {
            if let Some((txn, at)) = replica.io_sched.pop_front() {
                replica.relay.push_back(RelayEntry {
                    txn,
                    received_at: at,
                });
            }
        }
    }

    fn tick_sql(&mut self, i: usize, now: Instant, params: &Params) {
        let State { servers, rng, .. } = self;
        let s = &mut servers[i];
        if !s.up || !s.sql_running {
            return;
        }
        loop {
            let Some(head) = s.relay.front() else {
                s.sql_next = None;
                return;
            };
            let at = match s.sql_next {
                Some(at) => at,
                None => {
                    let at = match s.apply_delay {
                        Some(slow) => {
                            s.sql_last_at
                                .map_or(head.received_at, |l| l.max(head.received_at))
                                + slow
                        }
                        None => {
                            let at = head.received_at + random_delay(rng, params.apply_delay_max);
                            s.sql_last_at.map_or(at, |l| l.max(at))
                        }
                    };
                    s.sql_next = Some(at);
                    at
                }
            };
            if at > now {
                return;
            }
            s.sql_next = None;
            s.sql_last_at = Some(at);
            if let Some(entry) = s.relay.pop_front() {
                s.append(entry.txn);
            }
        }
    }

    fn snapshot(&self) -> String {
        let mut out = String::new();
        for s in &self.servers {
            if !out.is_empty() {
                out.push(' ');
            }
            let vips: Vec<String> = s.vips.iter().map(IpAddr::to_string).collect();
            let _ = write!(
                out,
                "{}[{} {} gtid={} master={} io/sql={}/{} relay={} vips={}{}]",
                s.name,
                if s.up { "up" } else { "down" },
                if s.read_only { "ro" } else { "rw" },
                s.executed_position().unwrap_or_else(|| "-".into()),
                s.master.as_deref().unwrap_or("-"),
                yes_no(s.io_running),
                yes_no(s.sql_running),
                s.relay.len(),
                if vips.is_empty() {
                    "-".to_string()
                } else {
                    vips.join(",")
                },
                s.last_io_error
                    .as_ref()
                    .map_or(String::new(), |_| " io_error".to_string()),
            );
        }
        out
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

struct Inner {
    state: Mutex<State>,
    /// Wakes an idle replication task.
    wake: Arc<tokio::sync::Notify>,
    reach: Reach,
    params: Params,
}

/// The simulated hosts. Cheap to clone: every clone is the same world.
#[derive(Clone)]
pub struct World {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    inner.state.lock().unwrap_or_else(|p| p.into_inner())
}

fn down(host: &str) -> MysqlError {
    MysqlError::Unreachable {
        addr: format!("{host}:{PORT}"),
        reason: "Can't connect to MySQL server (111 \"Connection refused\")".into(),
    }
}

fn timed_out(host: &str) -> MysqlError {
    MysqlError::Unreachable {
        addr: format!("{host}:{PORT}"),
        reason: "Can't connect to MySQL server (110 \"Connection timed out\")".into(),
    }
}

impl World {
    /// Hosts `(name, server_id)`, all with mysqld up, `read_only` on, empty binary logs, no
    /// replication and no VIPs. Duplicate names keep the first.
    pub fn new(seed: u64, hosts: &[(&str, u32)], params: Params, reach: Reach) -> World {
        let now = Instant::now();
        let mut servers: Vec<Server> = Vec::new();
        for (name, id) in hosts {
            if !servers.iter().any(|s| s.name == *name) {
                servers.push(Server::new(name, *id, now));
            }
        }
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        World {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    servers,
                    arp: BTreeMap::new(),
                    rng: StdRng::seed_from_u64(seed),
                    next_session: 1,
                }),
                wake: Arc::new(tokio::sync::Notify::new()),
                reach,
                params,
            }),
        }
    }

    /// The timing parameters.
    pub fn params(&self) -> &Params {
        &self.inner.params
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut lock(&self.inner))
    }

    fn reach(&self, from: &str, to: &str) -> bool {
        from == to || (self.inner.reach)(from, to)
    }

    fn reach_both(&self, a: &str, b: &str) -> bool {
        self.reach(a, b) && self.reach(b, a)
    }

    /// Starts the task that advances every replica's IO and SQL threads every
    /// [`REPLICATION_TICK`] while there is replication work; when there is none it sleeps
    /// until a change wakes it (at most [`IDLE_TICK`]). It ends when every handle on the world
    /// is gone.
    pub fn spawn_replication(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        tokio::spawn(async move {
            loop {
                let idle = {
                    let Some(inner) = weak.upgrade() else {
                        return;
                    };
                    let now = Instant::now();
                    let reach = |a: &str, b: &str| a == b || (inner.reach)(a, b);
                    let mut state = lock(&inner);
                    state.tick(now, &reach, &inner.params)
                };
                if idle {
                    tokio::select! {
                        biased;
                        () = wake.notified() => {}
                        () = sleep(IDLE_TICK) => {}
                    }
                } else {
                    sleep(REPLICATION_TICK).await;
                }
            }
        })
    }

    /// Advances replication once, now (what the background task does every tick); true when
    /// there is nothing left to do until something changes.
    pub fn tick_replication(&self) -> bool {
        let reach = |a: &str, b: &str| self.reach(a, b);
        let now = Instant::now();
        self.with(|st| st.tick(now, &reach, &self.inner.params))
    }

    /// Tells the replication task that something changed.
    fn wake(&self) {
        self.inner.wake.notify_one();
    }

    // ----- faults -----

    /// mysqld dies: threads stop (the relay log stays), every session ends, VIPs stay.
    pub fn crash_mysqld(&self, host: &str) {
        self.with(|st| {
            if let Some(s) = st.server_mut(host) {
                if !s.up {
                    return;
                }
                s.up = false;
                s.incarnation += 1;
                s.resume_io = s.io_running;
                s.resume_sql = s.sql_running;
                s.stop_io();
                s.stop_sql();
                s.sessions.clear();
            }
        });
        tracing::debug!(host, "mysqld crashed");
    }

    /// mysqld starts: `read_only` on, replication threads as they were before the crash.
    pub fn start_mysqld(&self, host: &str) {
        let now = Instant::now();
        self.with(|st| {
            if let Some(s) = st.server_mut(host) {
                if s.up {
                    return;
                }
                s.up = true;
                s.incarnation += 1;
                s.started_at = now;
                s.read_only = true;
                let replica = s.master_name().is_some();
                s.io_running = replica && s.resume_io;
                s.sql_running = replica && s.resume_sql;
                s.io_last_arrival = None;
                s.sql_last_at = None;
            }
        });
        self.wake();
        tracing::debug!(host, "mysqld started");
    }

    /// Makes one replica's SQL thread slow: from now on each transaction takes `delay` to
    /// apply, one after the other (the relay log falls behind when writes come faster).
    pub fn set_apply_delay(&self, host: &str, delay: Duration) {
        self.with(|st| {
            if let Some(s) = st.server_mut(host) {
                s.apply_delay = Some(delay);
                s.sql_next = None;
            }
        });
        self.wake();
    }

    /// Back to the random apply delay of [`Params::apply_delay_max`].
    pub fn clear_apply_delay(&self, host: &str) {
        self.with(|st| {
            if let Some(s) = st.server_mut(host) {
                s.apply_delay = None;
                s.sql_next = None;
            }
        });
        self.wake();
    }

    // ----- setup helpers (no latency) -----

    /// Sets `read_only` directly (initial topology).
    pub fn set_read_only(&self, host: &str, on: bool) {
        self.with(|st| {
            if let Some(s) = st.server_mut(host) {
                s.read_only = on;
            }
        });
    }

    /// Makes `host` replicate from `master` by GTID with both threads running (initial
    /// topology).
    pub fn configure_replica(&self, host: &str, master: &str) {
        self.with(|st| {
            if let Some(s) = st.server_mut(host) {
                point(s, master, true, 0);
                let running = s.up && s.master_name().is_some();
                s.io_running = running;
                s.sql_running = running;
            }
        });
        self.wake();
    }

    // ----- client workload -----

    /// A client's write of `value` through `vip`. The traffic goes to the host that last
    /// announced the VIP if it still has it (else `Fail`); an unreachable host fails after
    /// `connect_timeout`, a stopped mysqld refuses at once, `read_only` refuses (ERROR 1290):
    /// nothing happened. Otherwise the commit enters the binlog at once (`AFTER_SYNC`) and waits
    /// for a replica of that host to receive it (the semi-sync ack) or for
    /// `semi_sync_timeout` (MariaDB then falls back to asynchronous replication and
    /// acknowledges): `Ok`. A killed session, a crash, or the client cut off from the host
    /// meanwhile: `Unknown` (the transaction is in the binlog).
    pub async fn write(&self, client: &str, vip: IpAddr, value: u64) -> WriteOutcome {
        let params = self.inner.params.clone();
        sleep(params.op_latency).await;
        let Some(target) = self.with(|st| st.vip_target(vip)) else {
            return WriteOutcome::Fail("no host holds the VIP".into());
        };
        if !self.reach_both(client, &target) {
            sleep(params.connect_timeout).await;
            return WriteOutcome::Fail(format!(
                "Can't connect to MySQL server on '{vip}' ({target}): timed out"
            ));
        }
        let begun = self.with(|st| {
            let session = st.next_session;
            let Some(s) = st.server_mut(&target) else {
                return Err(WriteOutcome::Fail("no such host".into()));
            };
            if !s.up {
                return Err(WriteOutcome::Fail(format!(
                    "Can't connect to MySQL server on '{vip}' ({target}): connection refused"
                )));
            }
            if s.read_only {
                return Err(WriteOutcome::Fail(
                    "ERROR 1290 (HY000): The MariaDB server is running with the --read-only \
                     option so it cannot execute this statement"
                        .into(),
                ));
            }
            let txn = Txn {
                domain: 0,
                server_id: s.server_id,
                seq: s.executed_seq() + 1,
                value,
            };
            s.binlog.push(txn);
            s.sessions.insert(session);
            let incarnation = s.incarnation;
            st.next_session += 1;
            Ok((txn, session, incarnation))
        });
        let (txn, session, incarnation) = match begun {
            Ok(b) => b,
            Err(outcome) => return outcome,
        };
        self.wake();
        let deadline = Instant::now() + params.semi_sync_timeout;
        loop {
            sleep(COMMIT_POLL).await;
            let connected = self.reach_both(client, &target);
            let now = Instant::now();
            let verdict = self.with(|st| {
                let Some(s) = st.server(&target) else {
                    return Some(false);
                };
                if !s.up || s.incarnation != incarnation || !s.sessions.contains(&session) {
                    return Some(false);
                }
                if !connected {
                    return Some(false);
                }
                let done = st.acked(&target, &txn) || now >= deadline;
                if done {
                    if let Some(s) = st.server_mut(&target) {
                        s.sessions.remove(&session);
                    }
                    Some(true)
                } else {
                    None
                }
            });
            match verdict {
                None => continue,
                Some(true) => return WriteOutcome::Ok { host: target },
                Some(false) if !connected => {
                    self.with(|st| {
                        if let Some(s) = st.server_mut(&target) {
                            s.sessions.remove(&session);
                        }
                    });
                    sleep(params.connect_timeout).await;
                    return WriteOutcome::Unknown(format!(
                        "lost the connection to {target} during commit: timed out"
                    ));
                }
                Some(false) => {
                    return WriteOutcome::Unknown("connection lost during commit".into());
                }
            }
        }
    }

    /// The values in a host's binlog, in order.
    pub fn read_values(&self, host: &str) -> Vec<u64> {
        self.with(|st| {
            st.server(host)
                .map(|s| s.binlog.iter().map(|t| t.value).collect())
                .unwrap_or_default()
        })
    }

    /// A host's binlog.
    pub fn binlog(&self, host: &str) -> Vec<Txn> {
        self.with(|st| {
            st.server(host)
                .map(|s| s.binlog.clone())
                .unwrap_or_default()
        })
    }

    /// A host's `@@gtid_binlog_state`: the last GTID of every server in its binary log.
    pub fn binlog_state(&self, host: &str) -> String {
        self.with(|st| st.server(host).map(binlog_state_of).unwrap_or_default())
    }

    /// A host's last GTID (`None` when its binlog is empty).
    pub fn last_position(&self, host: &str) -> Option<String> {
        self.with(|st| st.server(host).and_then(Server::executed_position))
    }

    // ----- inspection -----

    /// Every host's name, sorted.
    pub fn hosts(&self) -> Vec<String> {
        self.with(|st| st.servers.iter().map(|s| s.name.clone()).collect())
    }

    /// Hosts with mysqld up and `read_only` off.
    pub fn writable_hosts(&self) -> Vec<String> {
        self.with(|st| {
            st.servers
                .iter()
                .filter(|s| s.up && !s.read_only)
                .map(|s| s.name.clone())
                .collect()
        })
    }

    /// Hosts with `ip` on their interface.
    pub fn hosts_with_vip(&self, ip: IpAddr) -> Vec<String> {
        self.with(|st| {
            st.servers
                .iter()
                .filter(|s| s.vips.contains(&ip))
                .map(|s| s.name.clone())
                .collect()
        })
    }

    /// The host traffic to `vip` now reaches, if any.
    pub fn vip_target(&self, vip: IpAddr) -> Option<String> {
        self.with(|st| st.vip_target(vip))
    }

    /// One line describing every host, deterministic (no times).
    pub fn snapshot(&self) -> String {
        self.with(|st| st.snapshot())
    }

    /// A host's `server_id` (0 for an unknown host).
    pub fn server_id(&self, host: &str) -> u32 {
        self.with(|st| st.server(host).map_or(0, |s| s.server_id))
    }

    /// Whether mysqld runs on `host`.
    pub fn is_up(&self, host: &str) -> bool {
        self.with(|st| st.server(host).is_some_and(|s| s.up))
    }

    /// A host's `read_only`.
    pub fn read_only(&self, host: &str) -> bool {
        self.with(|st| st.server(host).is_some_and(|s| s.read_only))
    }

    /// The configured master (`None` when none).
    pub fn master_of(&self, host: &str) -> Option<String> {
        self.with(|st| st.server(host).and_then(|s| s.master.clone()))
    }

    /// The last executed sequence number in domain 0 (0 when none).
    pub fn executed_seq(&self, host: &str) -> u64 {
        self.with(|st| st.server(host).map_or(0, Server::executed_seq))
    }

    /// Transactions received and not yet applied.
    pub fn relay_len(&self, host: &str) -> usize {
        self.with(|st| st.server(host).map_or(0, |s| s.relay.len()))
    }

    /// `(io_running, sql_running)`.
    pub fn threads(&self, host: &str) -> (bool, bool) {
        self.with(|st| {
            st.server(host)
                .map_or((false, false), |s| (s.io_running, s.sql_running))
        })
    }

    /// `Last_IO_Error`, when set.
    pub fn last_io_error(&self, host: &str) -> Option<String> {
        self.with(|st| st.server(host).and_then(|s| s.last_io_error.clone()))
    }

    /// Open client sessions on a host.
    pub fn sessions(&self, host: &str) -> usize {
        self.with(|st| st.server(host).map_or(0, |s| s.sessions.len()))
    }

    // ----- monitor probes -----

    /// One of MMM's checks of `host`, run from `from` (a monitor).
    pub async fn probe(&self, from: &str, host: &str, check: CheckKind) -> Probe {
        let params = &self.inner.params;
        sleep(params.op_latency).await;
        let known = self.with(|st| st.index(host).is_some());
        let reachable = known && self.reach_both(from, host);
        if check == CheckKind::Ping {
            if reachable {
                return Probe::Ok("OK: Pinged successfully".into());
            }
            sleep(params.connect_timeout).await;
            return Probe::Error(format!("ERROR: Could not ping {host}"));
        }
        let connect_error = || {
            Probe::Error(format!(
                "ERROR: Connect error (host = {host}:{PORT}, user = mmm_monitor)! Can't connect \
                 to MySQL server"
            ))
        };
        if !reachable {
            sleep(params.connect_timeout).await;
            return connect_error();
        }
        let now = Instant::now();
        self.with(|st| {
            let Some(s) = st.server(host) else {
                return connect_error();
            };
            if !s.up {
                return connect_error();
            }
            let replica = s.master_name().is_some();
            match check {
                CheckKind::Ping | CheckKind::Mysql => Probe::Ok("OK".into()),
                CheckKind::RepThreads => {
                    if !replica || (s.io_running && s.sql_running) {
                        Probe::Ok("OK".into())
                    } else {
                        Probe::Error("ERROR: Replication is broken".into())
                    }
                }
                CheckKind::RepBacklog => {
                    if !replica {
                        return Probe::Ok("OK".into());
                    }
                    match s.seconds_behind(now) {
                        None => Probe::Error("ERROR: Replication backlog is NULL".into()),
                        Some(n) if n > MAX_BACKLOG_SECS => {
                            Probe::Error(format!("ERROR: Backlog is {n}"))
                        }
                        Some(_) => Probe::Ok("OK".into()),
                    }
                }
            }
        })
    }
}

/// `CHANGE MASTER TO` on a server whose threads are stopped.
fn point(s: &mut Server, master: &str, use_gtid: bool, fetch_floor: u64) {
    s.stop_io();
    s.stop_sql();
    s.master = Some(master.to_string());
    s.use_gtid = use_gtid;
    s.fetch_floor = fetch_floor;
    s.relay.clear();
    s.last_io_error = None;
    s.last_sql_error = None;
    s.io_last_arrival = None;
    s.sql_last_at = None;
}

/// `START SLAVE`: both threads, errors cleared; the IO thread's divergence check runs at once
/// when the master can be reached (as `START SLAVE` followed by a look at the status would
/// see it).
fn start_threads(st: &mut State, host: &str, reach: &dyn Fn(&str, &str) -> bool) {
    let Some(i) = st.index(host) else {
        return;
    };
    let s = &mut st.servers[i];
    if s.master_name().is_none() || !s.up {
        return;
    }
    s.io_running = true;
    s.sql_running = true;
    s.last_io_error = None;
    s.last_sql_error = None;
    let s = &st.servers[i];
    let Some(m) = s.master_name().and_then(|m| st.index(m)) else {
        return;
    };
    let master = &st.servers[m];
    if !s.use_gtid || !master.up || !reach(&s.name, &master.name) || !reach(&master.name, &s.name) {
        return;
    }
    if let Some(error) = divergence(s, master) {
        let s = &mut st.servers[i];
        s.stop_io();
        s.last_io_error = Some(error);
    }
}

/// The agent's local server on `host`.
#[derive(Clone, Debug)]
pub struct SimMysql {
    /// The world.
    pub world: World,
    /// The agent's host.
    pub host: String,
}

impl SimMysql {
    /// The server on `host`.
    pub fn new(world: World, host: impl Into<String>) -> SimMysql {
        SimMysql {
            world,
            host: host.into(),
        }
    }

    /// Waits `op_latency`, then fails when mysqld is down.
    async fn enter(&self) -> Result<(), MysqlError> {
        sleep(self.world.inner.params.op_latency).await;
        self.up()
    }

    fn up(&self) -> Result<(), MysqlError> {
        if self.world.is_up(&self.host) {
            Ok(())
        } else {
            Err(down(&self.host))
        }
    }

    /// Waits until `done` holds on this server, polling; `Ok(false)` on timeout.
    async fn wait_local(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&Server) -> bool,
    ) -> Result<bool, MysqlError> {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = self.world.with(|st| match st.server(&self.host) {
                Some(s) if s.up => Ok(done(s)),
                _ => Err(down(&self.host)),
            })?;
            if ready {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            sleep(WAIT_POLL).await;
        }
    }

    /// Connects to a peer's server: reachable both ways and up.
    /// A connection to `peer`'s server: a timeout after `connect` (at most the usual connect
    /// timeout) when it cannot be reached.
    async fn connect_peer(&self, peer: &str, connect: Option<Duration>) -> Result<(), MysqlError> {
        let known = self.world.with(|st| st.index(peer).is_some());
        if !known || !self.world.reach_both(&self.host, peer) {
            let usual = self.world.inner.params.connect_timeout;
            sleep(connect.map_or(usual, |c| c.min(usual))).await;
            return Err(timed_out(peer));
        }
        if !self.world.is_up(peer) {
            return Err(down(peer));
        }
        Ok(())
    }
}

impl Mysql for SimMysql {
    async fn ping(&self) -> Result<(), MysqlError> {
        self.enter().await
    }

    async fn status(&self) -> Result<ServerStatus, MysqlError> {
        self.enter().await?;
        let now = Instant::now();
        self.world.with(|st| {
            let s = st
                .server(&self.host)
                .filter(|s| s.up)
                .ok_or_else(|| down(&self.host))?;
            let replica = s.master_name().map(|m| ReplicaStatus {
                master_host: m.to_string(),
                master_port: PORT,
                io_running: s.io_running,
                sql_running: s.sql_running,
                seconds_behind: s.seconds_behind(now),
                received: BinlogPos {
                    file: BINLOG_FILE.into(),
                    pos: s.received_seq() * 100,
                },
                applied: BinlogPos {
                    file: BINLOG_FILE.into(),
                    pos: s.executed_seq() * 100,
                },
                using_gtid: s.use_gtid,
                gtid_received: s.last_received().map(|t| t.gtid()),
                last_io_error: s.last_io_error.clone(),
                last_sql_error: s.last_sql_error.clone(),
            });
            Ok(ServerStatus {
                version: VERSION.into(),
                mariadb: true,
                read_only: s.read_only,
                super_read_only: None,
                uptime_secs: now.saturating_duration_since(s.started_at).as_secs(),
                binlog: Some(BinlogPos {
                    file: BINLOG_FILE.into(),
                    pos: s.binlog.len() as u64 * 100,
                }),
                gtid_executed: s.executed_position(),
                replica,
            })
        })
    }

    async fn set_read_only(&self, on: bool) -> Result<(), MysqlError> {
        self.enter().await?;
        self.world.with(|st| match st.server_mut(&self.host) {
            Some(s) if s.up => {
                s.read_only = on;
                Ok(())
            }
            _ => Err(down(&self.host)),
        })
    }

    async fn kill_client_sessions(
        &self,
        max_kill_retries: u32,
        pause: Duration,
    ) -> Result<Killed, MysqlError> {
        self.enter().await?;
        let mut result = Killed::default();
        for pass in 0..=max_kill_retries {
            result.passes += 1;
            let killed = self.world.with(|st| match st.server_mut(&self.host) {
                Some(s) if s.up => {
                    let n = s.sessions.len();
                    s.sessions.clear();
                    Ok(u32::try_from(n).unwrap_or(u32::MAX))
                }
                _ => Err(down(&self.host)),
            })?;
            result.killed += killed;
            if killed == 0 {
                break;
            }
            if pass < max_kill_retries {
                sleep(pause).await;
            }
        }
        Ok(result)
    }

    async fn wait_relay_applied(&self, timeout: Duration) -> Result<(), MysqlError> {
        self.enter().await?;
        if self
            .wait_local(timeout, |s| s.master_name().is_none() || s.relay.is_empty())
            .await?
        {
            Ok(())
        } else {
            Err(MysqlError::Timeout {
                what: "applying the relay log".into(),
                timeout,
            })
        }
    }

    async fn executed_position(&self) -> Result<Option<String>, MysqlError> {
        self.enter().await?;
        self.world.with(|st| match st.server(&self.host) {
            Some(s) if s.up => Ok(s.executed_position()),
            _ => Err(down(&self.host)),
        })
    }

    async fn binlog_state(&self) -> Result<Option<String>, MysqlError> {
        self.enter().await?;
        self.world.with(|st| match st.server(&self.host) {
            Some(s) if s.up => Ok(Some(binlog_state_of(s)).filter(|t| !t.is_empty())),
            _ => Err(down(&self.host)),
        })
    }

    async fn wait_executed(&self, position: &str, timeout: Duration) -> Result<(), MysqlError> {
        let wanted = parse_position(position)?;
        self.enter().await?;
        if self
            .wait_local(timeout, |s| s.executed_seq() >= wanted)
            .await?
        {
            Ok(())
        } else {
            Err(MysqlError::Timeout {
                what: format!("executing GTID position {position}"),
                timeout,
            })
        }
    }

    async fn peer_executed(
        &self,
        peer: &Source,
        connect: Option<Duration>,
        timeout: Duration,
    ) -> Result<Option<String>, MysqlError> {
        sleep(self.world.inner.params.op_latency).await;
        let name = peer.name.as_str();
        self.connect_peer(name, connect).await?;
        let deadline = Instant::now() + timeout;
        loop {
            let reachable = self.world.reach_both(&self.host, name);
            let answer = self.world.with(|st| match st.server(name) {
                Some(s) if s.up && reachable => Ok((
                    s.master_name().is_none() || s.relay.is_empty(),
                    s.last_received().map(|t| t.gtid()),
                )),
                _ => Err(()),
            });
            let (applied, position) = match answer {
                Ok(a) => a,
                Err(()) => {
                    sleep(self.world.inner.params.connect_timeout).await;
                    return Err(timed_out(name));
                }
            };
            if applied || Instant::now() >= deadline {
                if !applied {
                    tracing::debug!(peer = name, "the peer has not applied its relay log");
                }
                return Ok(position);
            }
            sleep(WAIT_POLL).await;
        }
    }

    async fn catch_up_from(
        &self,
        peer: &Source,
        position: &str,
        timeout: Duration,
    ) -> Result<(), MysqlError> {
        let wanted = parse_position(position)?;
        self.enter().await?;
        let name = peer.name.as_str();
        self.connect_peer(name, None).await?;
        let deadline = Instant::now() + timeout;
        loop {
            let connected = self.world.reach_both(&self.host, name);
            let result = self.world.with(|st| {
                let (Some(me), Some(p)) = (st.index(&self.host), st.index(name)) else {
                    return Err(down(name));
                };
                if !st.servers[me].up {
                    return Err(down(&self.host));
                }
                let from = &st.servers[p];
                if connected && from.up {
                    if let Some(error) = divergence(&st.servers[me], from) {
                        return Err(MysqlError::Statement {
                            statement: "START SLAVE 'mmm_catchup'".into(),
                            reason: error,
                        });
                    }
                    let start = match stream_start(st.servers[me].binlog.last().copied(), from) {
                        Ok(start) => start,
                        Err(reason) => {
                            return Err(MysqlError::Statement {
                                statement: "START SLAVE 'mmm_catchup'".into(),
                                reason,
                            })
                        }
                    };
                    let new: Vec<Txn> = from.binlog[start..].to_vec();
                    let me = &mut st.servers[me];
                    for txn in new {
                        me.append(txn);
                    }
                }
                Ok(st.servers[me].executed_seq() >= wanted)
            })?;
            self.world.wake();
            if result {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(MysqlError::Timeout {
                    what: format!("fetching GTID position {position} from {name}"),
                    timeout,
                });
            }
            sleep(WAIT_POLL).await;
        }
    }

    async fn repoint(
        &self,
        source: &Source,
        method: RepointMethod,
    ) -> Result<Repointed, MysqlError> {
        self.enter().await?;
        let world = &self.world;
        let target = source.name.as_str();
        let (current, running, has_history) = world.with(|st| match st.server(&self.host) {
            Some(s) if s.up => Ok((
                s.master.clone(),
                s.io_running && s.sql_running,
                !s.binlog.is_empty(),
            )),
            _ => Err(down(&self.host)),
        })?;
        let reach = |a: &str, b: &str| world.reach(a, b);
        if current.as_deref() == Some(target) {
            if !running {
                world.with(|st| start_threads(st, &self.host, &reach));
                world.wake();
                check_running(world, &self.host)?;
            }
            return Ok(Repointed::AlreadyThere);
        }
        let by_gtid = method == RepointMethod::Auto && has_history;
        // MMM's method reads the new master's SHOW MASTER STATUS with the agent's account.
        let floor = if by_gtid {
            None
        } else {
            self.connect_peer(target, None).await?;
            Some(world.with(|st| {
                st.server(target)
                    .map_or((0, 0), |s| (s.executed_seq(), s.binlog.len() as u64 * 100))
            }))
        };
        if current.is_some() {
            // As the real agent: the relay log first (a failure is no reason to stop by GTID).
            let applied = self
                .wait_local(REPOINT_CATCHUP, |s| {
                    s.master_name().is_none() || s.relay.is_empty()
                })
                .await?;
            if !applied && !by_gtid {
                return Err(MysqlError::Timeout {
                    what: "applying the relay log".into(),
                    timeout: REPOINT_CATCHUP,
                });
            }
            if !applied {
                // As the real agent: not by GTID either while the relay log holds what the
                // new master lacks (discarding it would lose those transactions).
                self.connect_peer(target, None).await?;
                let lacking = world.with(|st| {
                    let theirs: std::collections::BTreeSet<String> = st
                        .server(target)
                        .map(|s| s.binlog.iter().map(|t| t.gtid()).collect())
                        .unwrap_or_default();
                    st.server(&self.host).map_or(0, |s| {
                        s.relay
                            .iter()
                            .filter(|e| !theirs.contains(&e.txn.gtid()))
                            .count()
                    })
                });
                if lacking > 0 {
                    return Err(MysqlError::Unexpected {
                        query: "re-pointing".into(),
                        reason: format!(
                            "the relay log is not applied and holds {lacking} transactions {target} lacks"
                        ),
                    });
                }
            }
        }
        world.with(|st| match st.server_mut(&self.host) {
            Some(s) if s.up => {
                point(s, target, by_gtid, floor.map_or(0, |(seq, _)| seq));
                Ok(())
            }
            _ => Err(down(&self.host)),
        })?;
        world.with(|st| start_threads(st, &self.host, &reach));
        world.wake();
        check_running(world, &self.host)?;
        tracing::debug!(host = %self.host, source = target, by_gtid, "re-pointed");
        Ok(match floor {
            None => Repointed::Gtid,
            Some((_, pos)) => Repointed::FilePosition(BinlogPos {
                file: BINLOG_FILE.into(),
                pos,
            }),
        })
    }

    async fn set_replication(&self, running: bool) -> Result<(), MysqlError> {
        self.enter().await?;
        let world = &self.world;
        let reach = |a: &str, b: &str| world.reach(a, b);
        world.with(|st| {
            let s = match st.server_mut(&self.host) {
                Some(s) if s.up => s,
                _ => return Err(down(&self.host)),
            };
            if s.master_name().is_none() {
                return Ok(());
            }
            if !running {
                s.stop_io();
                s.stop_sql();
            } else if !(s.io_running && s.sql_running) {
                start_threads(st, &self.host, &reach);
            }
            Ok(())
        })?;
        world.wake();
        Ok(())
    }
}

/// After `START SLAVE`: an IO thread that stopped at once is an error, as the real agent
/// reports it.
fn check_running(world: &World, host: &str) -> Result<(), MysqlError> {
    let error = world.with(|st| {
        st.server(host)
            .filter(|s| !s.io_running)
            .and_then(|s| s.last_io_error.clone())
    });
    match error {
        Some(reason) => Err(MysqlError::Statement {
            statement: "START SLAVE".into(),
            reason: format!("the IO thread stopped: {reason}"),
        }),
        None => Ok(()),
    }
}

/// The VIPs on `host`'s interface.
#[derive(Clone, Debug)]
pub struct SimVips {
    /// The world.
    pub world: World,
    /// The host.
    pub host: String,
}

impl SimVips {
    /// The interface of `host`.
    pub fn new(world: World, host: impl Into<String>) -> SimVips {
        SimVips {
            world,
            host: host.into(),
        }
    }
}

impl Vips for SimVips {
    async fn configured(&self) -> Result<Vec<IpAddr>, VipError> {
        sleep(self.world.inner.params.op_latency).await;
        self.world.with(|st| match st.server(&self.host) {
            Some(s) => Ok(s.vips.iter().copied().collect()),
            None => Err(VipError::NoInterface(self.host.clone())),
        })
    }

    async fn add(&self, ip: IpAddr) -> Result<bool, VipError> {
        sleep(self.world.inner.params.op_latency).await;
        if !ip.is_ipv4() {
            return Err(VipError::NotIpv4(ip));
        }
        self.world.with(|st| {
            let Some(s) = st.server_mut(&self.host) else {
                return Err(VipError::NoInterface(self.host.clone()));
            };
            if !s.vips.insert(ip) {
                return Ok(false);
            }
            st.arp.insert(ip, self.host.clone());
            Ok(true)
        })
    }

    async fn remove(&self, ip: IpAddr) -> Result<bool, VipError> {
        sleep(self.world.inner.params.op_latency).await;
        self.world.with(|st| match st.server_mut(&self.host) {
            Some(s) => Ok(s.vips.remove(&ip)),
            None => Err(VipError::NoInterface(self.host.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_config::Secret;
    use std::net::Ipv4Addr;

    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    const HOSTS: [(&str, u32); 3] = [("db1", 1), ("db2", 2), ("db3", 3)];

    /// A partition table the tests can change: pairs that cannot talk (either direction).
    #[derive(Clone, Default)]
    struct Cuts(Arc<Mutex<BTreeSet<(String, String)>>>);

    impl Cuts {
        fn reach(&self) -> Reach {
            let cuts = self.0.clone();
            Arc::new(move |a: &str, b: &str| {
                let cuts = cuts.lock().unwrap_or_else(|p| p.into_inner());
                !cuts.contains(&(a.to_string(), b.to_string()))
                    && !cuts.contains(&(b.to_string(), a.to_string()))
            })
        }
        fn cut(&self, a: &str, b: &str) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((a.to_string(), b.to_string()));
        }
    }

    fn source(name: &str) -> Source {
        Source {
            name: name.into(),
            host: name.into(),
            port: PORT,
            replication_user: "repl".into(),
            replication_password: Secret::new("x"),
            agent_user: "agent".into(),
            agent_password: Secret::new("y"),
        }
    }

    /// db1 writable with the VIP, db2 and db3 its replicas, replication running.
    async fn cluster(seed: u64, cuts: &Cuts) -> World {
        let world = World::new(seed, &HOSTS, Params::default(), cuts.reach());
        world.set_read_only("db1", false);
        world.configure_replica("db2", "db1");
        world.configure_replica("db3", "db1");
        SimVips::new(world.clone(), "db1")
            .add(VIP)
            .await
            .expect("add");
        world.spawn_replication();
        world
    }

    #[tokio::test(start_paused = true)]
    async fn write_is_acked_after_a_replica_receives_it() {
        let cuts = Cuts::default();
        let world = cluster(1, &cuts).await;
        let start = Instant::now();
        let outcome = world.write("client", VIP, 7).await;
        assert_eq!(outcome, WriteOutcome::Ok { host: "db1".into() });
        let took = start.elapsed();
        assert!(took < Duration::from_millis(100), "took {took:?}");
        let received = ["db2", "db3"].iter().any(|h| {
            world.executed_seq(h) == 1
                || world.with(|st| st.server(h).is_some_and(|s| !s.relay.is_empty()))
        });
        assert!(received);
        sleep(Duration::from_millis(200)).await;
        assert_eq!(world.read_values("db2"), vec![7]);
        assert_eq!(world.read_values("db3"), vec![7]);
        assert_eq!(world.last_position("db3").as_deref(), Some("0-1-1"));
        assert_eq!(world.sessions("db1"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_replica_the_ack_waits_for_the_semi_sync_timeout() {
        let cuts = Cuts::default();
        let world = cluster(2, &cuts).await;
        cuts.cut("db1", "db2");
        cuts.cut("db1", "db3");
        let start = Instant::now();
        let outcome = world.write("client", VIP, 1).await;
        assert!(matches!(outcome, WriteOutcome::Ok { .. }), "{outcome:?}");
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(3), "took {took:?}");
        assert!(took < Duration::from_millis(3100), "took {took:?}");
        assert_eq!(world.read_values("db1"), vec![1]);
        assert_eq!(world.executed_seq("db2"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn killed_session_gives_unknown_and_the_write_stays() {
        let cuts = Cuts::default();
        let world = cluster(3, &cuts).await;
        cuts.cut("db1", "db2");
        cuts.cut("db1", "db3");
        let writer = {
            let world = world.clone();
            tokio::spawn(async move { world.write("client", VIP, 5).await })
        };
        sleep(Duration::from_millis(500)).await;
        assert_eq!(world.sessions("db1"), 1);
        let mysql = SimMysql::new(world.clone(), "db1");
        let killed = mysql
            .kill_client_sessions(2, Duration::from_millis(100))
            .await
            .expect("kill");
        assert_eq!(killed.killed, 1);
        assert_eq!(killed.passes, 2);
        let outcome = writer.await.expect("join");
        assert!(matches!(outcome, WriteOutcome::Unknown(_)), "{outcome:?}");
        assert_eq!(world.read_values("db1"), vec![5]);
    }

    #[tokio::test(start_paused = true)]
    async fn crash_during_commit_gives_unknown() {
        let cuts = Cuts::default();
        let world = cluster(4, &cuts).await;
        cuts.cut("db1", "db2");
        cuts.cut("db1", "db3");
        let writer = {
            let world = world.clone();
            tokio::spawn(async move { world.write("client", VIP, 5).await })
        };
        sleep(Duration::from_millis(100)).await;
        world.crash_mysqld("db1");
        let outcome = writer.await.expect("join");
        assert!(matches!(outcome, WriteOutcome::Unknown(_)), "{outcome:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn read_only_refuses_and_no_vip_fails() {
        let cuts = Cuts::default();
        let world = cluster(5, &cuts).await;
        let mysql = SimMysql::new(world.clone(), "db1");
        mysql.set_read_only(true).await.expect("ro");
        let outcome = world.write("client", VIP, 1).await;
        match outcome {
            WriteOutcome::Fail(m) => assert!(m.contains("1290"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(world.read_values("db1").is_empty());
        assert!(world.writable_hosts().is_empty());
        let vips = SimVips::new(world.clone(), "db1");
        assert!(vips.remove(VIP).await.expect("remove"));
        assert!(matches!(
            world.write("client", VIP, 1).await,
            WriteOutcome::Fail(_)
        ));
        // Another host announces it: traffic follows.
        let vips2 = SimVips::new(world.clone(), "db2");
        assert!(vips2.add(VIP).await.expect("add"));
        assert!(!vips2.add(VIP).await.expect("add again"));
        assert_eq!(world.hosts_with_vip(VIP), vec!["db2".to_string()]);
        assert_eq!(world.vip_target(VIP).as_deref(), Some("db2"));
    }

    #[tokio::test(start_paused = true)]
    async fn repoint_and_wait_executed() {
        let cuts = Cuts::default();
        let world = cluster(6, &cuts).await;
        for v in 0..5 {
            let _ = world.write("client", VIP, v).await;
        }
        // Promote db2: db1 read-only, db2 writable, db3 and db1 follow db2.
        let db1 = SimMysql::new(world.clone(), "db1");
        let db2 = SimMysql::new(world.clone(), "db2");
        let db3 = SimMysql::new(world.clone(), "db3");
        db1.set_read_only(true).await.expect("ro");
        let last = db1.executed_position().await.expect("pos").expect("some");
        assert_eq!(last, "0-1-5");
        db2.wait_executed(&last, Duration::from_secs(5))
            .await
            .expect("caught up");
        assert!(matches!(
            db2.wait_executed("0-1-99", Duration::from_millis(50)).await,
            Err(MysqlError::Timeout { .. })
        ));
        assert!(matches!(
            db2.wait_executed("garbage", Duration::from_millis(50))
                .await,
            Err(MysqlError::Unexpected { .. })
        ));
        db2.set_replication(false).await.expect("stop");
        db2.set_read_only(false).await.expect("rw");
        assert_eq!(
            db3.repoint(&source("db2"), RepointMethod::Auto)
                .await
                .expect("repoint"),
            Repointed::Gtid
        );
        assert_eq!(
            db3.repoint(&source("db2"), RepointMethod::Auto)
                .await
                .expect("repoint"),
            Repointed::AlreadyThere
        );
        assert_eq!(
            db1.repoint(&source("db2"), RepointMethod::Auto)
                .await
                .expect("repoint"),
            Repointed::Gtid
        );
        let vips1 = SimVips::new(world.clone(), "db1");
        let vips2 = SimVips::new(world.clone(), "db2");
        vips1.remove(VIP).await.expect("remove");
        vips2.add(VIP).await.expect("add");
        let outcome = world.write("client", VIP, 100).await;
        assert_eq!(outcome, WriteOutcome::Ok { host: "db2".into() });
        let pos = db2.executed_position().await.expect("pos").expect("some");
        assert_eq!(pos, "0-2-6");
        db3.wait_executed(&pos, Duration::from_secs(1))
            .await
            .expect("db3");
        db1.wait_executed(&pos, Duration::from_secs(1))
            .await
            .expect("db1");
        db1.wait_relay_applied(Duration::from_secs(1))
            .await
            .expect("relay");
        assert_eq!(world.read_values("db1"), vec![0, 1, 2, 3, 4, 100]);
        let status = db1.status().await.expect("status");
        let replica = status.replica.expect("replica");
        assert_eq!(replica.master_host, "db2");
        assert!(replica.io_running && replica.sql_running);
        assert_eq!(replica.seconds_behind, Some(0));
        assert_eq!(status.gtid_executed.as_deref(), Some("0-2-6"));
        let peer = db1
            .peer_executed(&source("db3"), None, Duration::from_secs(1))
            .await
            .expect("peer");
        assert_eq!(peer.as_deref(), Some("0-2-6"));
    }

    #[tokio::test(start_paused = true)]
    async fn crash_makes_ops_unreachable_and_start_comes_up_read_only() {
        let cuts = Cuts::default();
        let world = cluster(7, &cuts).await;
        let db1 = SimMysql::new(world.clone(), "db1");
        let db2 = SimMysql::new(world.clone(), "db2");
        world.crash_mysqld("db1");
        world.crash_mysqld("db2");
        assert!(matches!(
            db1.ping().await,
            Err(MysqlError::Unreachable { .. })
        ));
        assert!(matches!(
            db1.status().await,
            Err(MysqlError::Unreachable { .. })
        ));
        assert!(matches!(
            world.probe("m1", "db1", CheckKind::Mysql).await,
            Probe::Error(m) if m.starts_with("ERROR: Connect error")
        ));
        assert!(matches!(
            world.probe("m1", "db1", CheckKind::Ping).await,
            Probe::Ok(_)
        ));
        // The VIP stays; the client cannot connect.
        assert_eq!(world.hosts_with_vip(VIP), vec!["db1".to_string()]);
        assert!(matches!(
            world.write("client", VIP, 1).await,
            WriteOutcome::Fail(_)
        ));
        world.start_mysqld("db1");
        world.start_mysqld("db2");
        db1.ping().await.expect("up");
        let status = db1.status().await.expect("status");
        assert!(status.read_only);
        assert!(status.replica.is_none());
        let status2 = db2.status().await.expect("status");
        let replica = status2.replica.expect("replica");
        assert!(replica.io_running && replica.sql_running);
        assert!(matches!(
            world.probe("m1", "db2", CheckKind::RepThreads).await,
            Probe::Ok(_)
        ));
        cuts.cut("m1", "db3");
        let start = Instant::now();
        assert!(matches!(
            world.probe("m1", "db3", CheckKind::Ping).await,
            Probe::Error(_)
        ));
        assert!(start.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn diverged_history_stops_the_io_thread() {
        let cuts = Cuts::default();
        let world = cluster(8, &cuts).await;
        for v in 0..3 {
            let _ = world.write("client", VIP, v).await;
        }
        sleep(Duration::from_millis(200)).await;
        // db1 writes one more that nobody receives.
        cuts.cut("db1", "db2");
        cuts.cut("db1", "db3");
        let _ = world.write("client", VIP, 99).await;
        assert_eq!(world.last_position("db1").as_deref(), Some("0-1-4"));
        // db2 becomes the writer and writes seq 4 itself.
        let db2 = SimMysql::new(world.clone(), "db2");
        db2.set_replication(false).await.expect("stop");
        db2.set_read_only(false).await.expect("rw");
        SimVips::new(world.clone(), "db1")
            .remove(VIP)
            .await
            .expect("rm");
        SimVips::new(world.clone(), "db2")
            .add(VIP)
            .await
            .expect("add");
        let db3 = SimMysql::new(world.clone(), "db3");
        db3.repoint(&source("db2"), RepointMethod::Auto)
            .await
            .expect("db3");
        let _ = world.write("client", VIP, 200).await;
        assert_eq!(world.last_position("db2").as_deref(), Some("0-2-4"));
        // The old writer comes back as a replica of db2: its 0-1-4 is not in db2's binlog.
        cuts.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let db1 = SimMysql::new(world.clone(), "db1");
        let repointed = db1.repoint(&source("db2"), RepointMethod::Auto).await;
        assert!(
            matches!(&repointed, Err(MysqlError::Statement { reason, .. }) if reason.contains("0-1-4")),
            "{repointed:?}"
        );
        let status = db1.status().await.expect("status");
        let replica = status.replica.expect("replica");
        assert!(!replica.io_running);
        assert!(replica
            .last_io_error
            .expect("error")
            .contains("which is not in the master's binlog"));
        assert!(matches!(
            world.probe("m1", "db1", CheckKind::RepThreads).await,
            Probe::Error(_)
        ));
        assert!(matches!(
            world.probe("m1", "db1", CheckKind::RepBacklog).await,
            Probe::Error(m) if m.contains("NULL")
        ));
        // Started while cut off from db2 there is nothing to compare yet; the background IO
        // thread finds the divergence once the network heals.
        db1.set_replication(false).await.expect("stop");
        cuts.cut("db1", "db2");
        db1.set_replication(true).await.expect("start");
        sleep(Duration::from_millis(50)).await;
        assert_eq!(world.threads("db1"), (true, true));
        assert!(world.last_io_error("db1").is_none());
        cuts.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
        sleep(Duration::from_millis(20)).await;
        assert!(world.last_io_error("db1").is_some());
        assert_eq!(world.threads("db1"), (false, true));
        assert_eq!(world.read_values("db1"), vec![0, 1, 2, 99]);
    }

    #[tokio::test(start_paused = true)]
    async fn client_cut_off_during_commit_gets_unknown() {
        let cuts = Cuts::default();
        let world = cluster(10, &cuts).await;
        cuts.cut("db1", "db2");
        cuts.cut("db1", "db3");
        let writer = {
            let world = world.clone();
            tokio::spawn(async move { world.write("client", VIP, 5).await })
        };
        sleep(Duration::from_millis(100)).await;
        cuts.cut("client", "db1");
        let outcome = writer.await.expect("join");
        assert!(matches!(outcome, WriteOutcome::Unknown(_)), "{outcome:?}");
        assert_eq!(world.sessions("db1"), 0);
        // And a new write cannot connect at all: nothing happens.
        let start = Instant::now();
        assert!(matches!(
            world.write("client", VIP, 6).await,
            WriteOutcome::Fail(_)
        ));
        assert!(start.elapsed() >= Duration::from_secs(1));
        assert_eq!(world.read_values("db1"), vec![5]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_gtid_history_repoint_uses_the_file_position() {
        let cuts = Cuts::default();
        let world = World::new(11, &HOSTS, Params::default(), cuts.reach());
        world.spawn_replication();
        world.set_read_only("db1", false);
        SimVips::new(world.clone(), "db1")
            .add(VIP)
            .await
            .expect("add");
        let _ = world.write("client", VIP, 1).await;
        let db2 = SimMysql::new(world.clone(), "db2");
        let repointed = db2
            .repoint(&source("db1"), RepointMethod::Auto)
            .await
            .expect("repoint");
        assert_eq!(
            repointed,
            Repointed::FilePosition(BinlogPos {
                file: BINLOG_FILE.into(),
                pos: 100
            })
        );
        let _ = world.write("client", VIP, 2).await;
        sleep(Duration::from_millis(200)).await;
        // What was written before the coordinate is not replicated.
        assert_eq!(world.read_values("db2"), vec![2]);
        let status = db2.status().await.expect("status");
        assert!(!status.replica.expect("replica").using_gtid);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_sql_thread_falls_behind() {
        let cuts = Cuts::default();
        let world = cluster(9, &cuts).await;
        world.set_apply_delay("db3", Duration::from_secs(30));
        for v in 0..4 {
            let _ = world.write("client", VIP, v).await;
        }
        sleep(Duration::from_secs(70)).await;
        assert!(world.relay_len("db3") >= 1);
        assert!(matches!(
            world.probe("m1", "db3", CheckKind::RepBacklog).await,
            Probe::Error(m) if m.starts_with("ERROR: Backlog is")
        ));
        let db3 = SimMysql::new(world.clone(), "db3");
        assert!(matches!(
            db3.wait_relay_applied(Duration::from_secs(1)).await,
            Err(MysqlError::Timeout { .. })
        ));
        // A peer catches up from db1 directly.
        world.clear_apply_delay("db3");
        db3.set_replication(false).await.expect("stop");
        db3.catch_up_from(&source("db1"), "0-1-4", Duration::from_secs(1))
            .await
            .expect("catch up");
        assert_eq!(world.read_values("db3"), vec![0, 1, 2, 3]);
        assert_eq!(world.threads("db3"), (false, false));
    }

    async fn script(seed: u64) -> String {
        let cuts = Cuts::default();
        let world = cluster(seed, &cuts).await;
        let mut writers = Vec::new();
        for c in 0..4u64 {
            let world = world.clone();
            writers.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for v in 0..20 {
                    outcomes.push(world.write(&format!("c{c}"), VIP, c * 100 + v).await);
                }
                outcomes
            }));
        }
        sleep(Duration::from_millis(60)).await;
        world.crash_mysqld("db3");
        sleep(Duration::from_millis(30)).await;
        world.start_mysqld("db3");
        let mut outcomes = Vec::new();
        for w in writers {
            outcomes.push(format!("{:?}", w.await.expect("join")));
        }
        format!("{} {}", world.snapshot(), world.read_values("db2").len())
            + &format!("{:?}", world.read_values("db3"))
            + &outcomes.join("")
    }

    #[test]
    fn same_seed_same_run() {
        let run = |seed: u64| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            rt.block_on(script(seed))
        };
        let a = run(42);
        let b = run(42);
        assert_eq!(a, b);
        let others: BTreeSet<String> = (0..6).map(run).collect();
        assert!(others.len() > 1, "different seeds never differed");
    }

    #[test]
    fn positions_parse_leniently() {
        assert_eq!(parse_position("").ok(), Some(0));
        assert_eq!(parse_position("0-1-5").ok(), Some(5));
        assert_eq!(parse_position(" 1-2-9, 0-3-7 ").ok(), Some(7));
        assert_eq!(parse_position("1-2-9").ok(), Some(0));
        assert!(parse_position("0-1").is_err());
        assert!(parse_position("x-1-2").is_err());
    }
}
