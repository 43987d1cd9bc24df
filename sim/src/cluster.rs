//! The simulated cluster: three monitor replicas running the real `mmm_mond` code (openraft
//! with the production state machine, the checkers, the leader loop and its driver, the lease
//! grant and the fast-path confirmation), four agents running the real `mmm_agent::Agent`, on
//! the model of MySQL hosts and VIPs in `db`, all configured from MMM configuration text through
//! `mmm_config`, all talking over the simulated network of `net`.
//!
//! What is not the production code: the HTTP layer (requests become calls on the simulated
//! network, with the same timeouts and the same follower-to-leader forwarding), sled (the
//! store in `store`), and MySQL and the kernel's VIPs (the model).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use mmm_agent::agent::Agent;
use mmm_agent::client::{AgentApi, CallError};
use mmm_agent::monitors::{Monitors, RenewError, HEDGE_AFTER};
use mmm_agent::protocol::{ClearBadRoles, Cleared, Pong, SetStatus, StatusReply, SystemStatus};
use mmm_agent::store::Store;
use mmm_config::{Config, MemoryFiles, Program};
use mmm_core::api::{HostReport, LeaseGrant, LeaseRequest, ReportReply};
use mmm_core::{CheckKind, HostName, Probe, Time, Topology};
use mmm_mond::group::Group;
use mmm_mond::probe::Prober;
use mmm_mond::shared::Shared;
use mmm_raft::typ::{NodeId, Raft};
use mmm_raft::StateReader;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::db::{SimMysql, SimVips, World};
use crate::net::{CallFail, Net};
use crate::raftnet::SimRaftNet;
use crate::store::Dir;

/// The database hosts.
pub const DBS: [&str; 4] = ["db1", "db2", "db3", "db4"];
/// The monitor replicas.
pub const MONS: [&str; 3] = ["m1", "m2", "m3"];
/// The client's host (also the monitors' `ping_ips` target).
pub const CLIENT: &str = "client";
/// The writer VIP.
pub const WRITER_VIP: &str = "10.0.0.100";

/// The agent's process name on `host`.
pub fn agent_proc(host: &str) -> String {
    format!("{host}/agent")
}

fn host_ip(host: &str) -> String {
    match host {
        "db1" => "10.0.0.1",
        "db2" => "10.0.0.2",
        "db3" => "10.0.0.3",
        "db4" => "10.0.0.4",
        "m1" => "10.0.1.1",
        "m2" => "10.0.1.2",
        "m3" => "10.0.1.3",
        _ => "10.0.9.1",
    }
    .to_string()
}

fn host_of_ip(ip: IpAddr) -> String {
    let ip = ip.to_string();
    DBS.iter()
        .chain(MONS.iter())
        .find(|h| host_ip(h) == ip)
        .map(|h| h.to_string())
        .unwrap_or_else(|| CLIENT.to_string())
}

/// The configuration files of the simulated cluster, as an operator would write them.
fn files(checks: &str, monitor_extra: &str) -> MemoryFiles {
    let mut files = MemoryFiles::default();
    let mut common = String::from(
        "active_master_role writer\n<host default>\n    cluster_interface eth0\n    agent_user mmm_agent\n    agent_password agent-secret\n    replication_user repl\n    replication_password repl-secret\n    monitor_user mmm_monitor\n    monitor_password monitor-secret\n    bin_path /usr/lib/mysql-mmm\n</host>\n",
    );
    for (i, db) in DBS.iter().enumerate() {
        let (mode, peer) = match i {
            0 => ("master", "    peer db2\n"),
            1 => ("master", "    peer db1\n"),
            _ => ("slave", ""),
        };
        common += &format!(
            "<host {db}>\n    ip {}\n    mode {mode}\n{peer}    state_dir /var/lib/mmm/{db}\n    pid_path /run/mmm/{db}-agent.pid\n</host>\n",
            host_ip(db)
        );
    }
    common += &format!(
        "<role writer>\n    hosts db1, db2\n    ips {WRITER_VIP}\n    mode exclusive\n</role>\n<role reader>\n    hosts db2, db3, db4\n    ips 10.0.0.101, 10.0.0.102, 10.0.0.103\n    mode balanced\n</role>\n<check default>\n{checks}</check>\n"
    );
    for m in MONS {
        common += &format!(
            "<monitor_node {m}>\n    ip {}\n    port 9988\n</monitor_node>\n",
            host_ip(m)
        );
    }
    files.insert_with_mode("/etc/mmm/mmm_common.conf", common, 0o600);
    for m in MONS {
        files.insert_with_mode(
            format!("/etc/mmm/{m}.conf"),
            format!(
                "include mmm_common.conf\n<monitor>\n    node {m}\n    data_dir /var/lib/mmm/{m}\n    pid_path /run/mmm/{m}.pid\n    bin_path /usr/lib/mysql-mmm\n    status_path /var/lib/mmm/{m}.status\n    ping_ips {}\n{monitor_extra}</monitor>\n",
                host_ip(CLIENT)
            ),
            0o600,
        );
    }
    for db in DBS {
        files.insert_with_mode(
            format!("/etc/mmm/{db}.conf"),
            format!("include mmm_common.conf\nthis {db}\n"),
            0o600,
        );
    }
    files
}

fn load(files: &MemoryFiles, name: &str, program: Program) -> anyhow::Result<Config> {
    mmm_config::Loader::with_search_path(["/etc/mmm"])
        .load_from(files, Path::new(&format!("/etc/mmm/{name}.conf")), program)
        .map_err(|e| anyhow::anyhow!("{name}.conf: {e}"))
}

/// Timing of the simulated deployment.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// `<check default>` lines.
    pub checks: String,
    /// Extra `<monitor>` lines.
    pub monitor: String,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            checks: "    check_period 1\n    trap_period 2\n    timeout 1\n".into(),
            monitor: "    lease 1.5\n    lease_renew_interval 0.3\n    auto_set_online 3\n".into(),
        }
    }
}

/// A monitor replica as it runs now.
#[derive(Clone)]
pub struct MonHandle {
    /// Its Raft node.
    pub raft: Raft,
    /// Its applied state.
    pub reader: StateReader,
    /// What its API and leader loop share.
    pub shared: Arc<Shared>,
    /// Its monitor group.
    pub group: Group,
}

/// The agent type of the simulation.
pub type SimAgent = Agent<SimMysql, SimVips, SimMonitors>;

#[derive(Default)]
struct Running {
    monitors: BTreeMap<String, MonHandle>,
    agents: BTreeMap<String, Arc<SimAgent>>,
}

/// Who runs where now; shared by every simulated caller.
#[derive(Clone, Default)]
pub struct Registry {
    running: Arc<Mutex<Running>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The monitor replica `name`, when it runs.
    pub fn monitor(&self, name: &str) -> Option<MonHandle> {
        self.lock().monitors.get(name).cloned()
    }

    /// The agent on `host`, when it runs.
    pub fn agent(&self, host: &str) -> Option<Arc<SimAgent>> {
        self.lock().agents.get(host).cloned()
    }
}

/// The whole simulated cluster.
pub struct Cluster {
    /// The network.
    pub net: Net,
    /// The MySQL hosts and VIPs.
    pub world: World,
    /// Who runs.
    pub registry: Registry,
    /// The topology every replica is configured with.
    pub topology: Topology,
    configs: BTreeMap<String, Config>,
    groups: BTreeMap<String, Group>,
    dirs: BTreeMap<String, Dir>,
    booted: BTreeMap<String, bool>,
    drift_ppm: BTreeMap<String, i64>,
    rng: StdRng,
    state_dir: tempfile::TempDir,
    /// When the simulation started (virtual).
    pub t0: Instant,
}

/// The wall clock of the simulation: virtual milliseconds since a fixed date.
fn wall(t0: Instant, drift_ppm: i64) -> mmm_mond::WallClock {
    Arc::new(move || {
        let ms = t0.elapsed().as_millis() as i128;
        let ms = ms + ms * i128::from(drift_ppm) / 1_000_000;
        Time(1_800_000_000_000 + u64::try_from(ms.max(0)).unwrap_or(0))
    })
}

thread_local! {
    static START: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Virtual milliseconds since the current run started (0 outside a run).
pub fn virtual_ms() -> u64 {
    START
        .with(|s| s.get())
        .map(|t| t.elapsed().as_millis() as u64)
        .unwrap_or(0)
}

/// The agents' machine uptime: virtual seconds since the simulation started, plus a day.
fn sim_uptime() -> f64 {
    let start = START.with(|s| s.get());
    86_400.0 + start.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0)
}

impl Cluster {
    /// A cluster whose random choices come from `seed`; nothing runs yet.
    pub fn new(seed: u64, tuning: &Tuning, world: World, net: Net) -> anyhow::Result<Cluster> {
        let files = files(&tuning.checks, &tuning.monitor);
        let mut configs = BTreeMap::new();
        let mut groups = BTreeMap::new();
        for m in MONS {
            let c = load(&files, m, Program::Monitor)?;
            groups.insert(m.to_string(), Group::from_config(&c, None)?);
            configs.insert(m.to_string(), c);
        }
        for db in DBS {
            configs.insert(db.to_string(), load(&files, db, Program::Agent)?);
        }
        let topology = mmm_mond::topology::topology(&configs["m1"])?;
        for m in MONS {
            net.add_proc(m, m);
        }
        for db in DBS {
            net.add_proc(&agent_proc(db), db);
        }
        let t0 = Instant::now();
        START.with(|s| s.set(Some(t0)));
        let state_dir = tempfile::Builder::new().prefix("mmm-sim-").tempdir_in(
            if Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            },
        )?;
        Ok(Cluster {
            net,
            world,
            registry: Registry::default(),
            topology,
            configs,
            groups,
            dirs: MONS
                .iter()
                .map(|m| (m.to_string(), Dir::default()))
                .collect(),
            booted: BTreeMap::new(),
            drift_ppm: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_c1a5),
            state_dir,
            t0,
        })
    }

    /// A replica's data directory (to slow its disk).
    pub fn dir(&self, name: &str) -> Option<&Dir> {
        self.dirs.get(name)
    }

    /// Makes replica `name`'s clocks run `ppm` parts per million fast or slow from its next
    /// start.
    pub fn set_drift(&mut self, name: &str, ppm: i64) {
        self.drift_ppm.insert(name.to_string(), ppm);
    }

    /// Starts monitor replica `name` (its data directory as its last run left it).
    pub async fn start_monitor(&mut self, name: &str) -> anyhow::Result<()> {
        let config = &self.configs[name];
        let group = self.groups[name].clone();
        let monitor = config
            .monitor
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{name}: no <monitor>"))?;
        let incarnation = self.net.start(name);
        let (log, sm) = self.dirs[name]
            .open()
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let reader = sm.reader();
        // openraft draws each election timeout from its thread's random generator, which no
        // seed controls: a window one millisecond wide makes the draw fixed, and the window's
        // place comes from the simulation's seed instead.
        let min = monitor.election_timeout_min.as_millis() as u64;
        let max = monitor.election_timeout_max.as_millis() as u64;
        let timeout = self.rng.gen_range(min..max.max(min + 1));
        let raft_config = openraft::Config {
            cluster_name: group.id.clone(),
            heartbeat_interval: monitor.raft_heartbeat.as_millis() as u64,
            election_timeout_min: timeout,
            election_timeout_max: timeout + 1,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(200),
            max_in_snapshot_log_to_keep: 50,
            ..Default::default()
        }
        .validate()?;
        let names: Vec<(NodeId, String)> = group
            .members
            .iter()
            .map(|m| (m.id, m.name.clone()))
            .collect();
        let registry = self.registry.clone();
        let network = SimRaftNet {
            net: self.net.clone(),
            this: name.to_string(),
            id: group.this.id,
            incarnation,
            nodes: Arc::new(move |n: &str| registry.monitor(n).map(|h| h.raft)),
            names: Arc::new(names),
        };
        let raft = Raft::new(group.this.id, Arc::new(raft_config), network, log, sm).await?;
        if !self.booted.get(name).copied().unwrap_or(false) {
            self.booted.insert(name.to_string(), true);
            if let Err(e) = raft.initialize(group.nodes()).await {
                tracing::debug!(node = name, error = %e, "initialize");
            }
        }
        let table = mmm_mond::checker::Table::new(name);
        let prober = Arc::new(SimProber {
            world: self.world.clone(),
            net: self.net.clone(),
            from: name.to_string(),
            reader: reader.clone(),
            found: Mutex::default(),
        });
        let probe_now: mmm_mond::shared::ProbeNow = {
            let prober = prober.clone();
            Arc::new(move |host: HostName, check: CheckKind| {
                let prober = prober.clone();
                Box::pin(async move { prober.probe(&host, check).await })
            })
        };
        let drift = self.drift_ppm.get(name).copied().unwrap_or(0);
        let shared = Arc::new(
            Shared::new(
                name.to_string(),
                group.members.len(),
                table.clone(),
                mmm_mond::lease::Leases::new(monitor.lease, monitor.lease_renew_interval),
                monitor.clock_drift,
                Duration::from_secs(3),
                probe_now,
            )
            .with_clocks(mmm_mond::Clock::drifting(drift), wall(self.t0, drift)),
        );
        self.registry.lock().monitors.insert(
            name.to_string(),
            MonHandle {
                raft: raft.clone(),
                reader: reader.clone(),
                shared: shared.clone(),
                group: group.clone(),
            },
        );
        let stop = CancellationToken::new();
        let hosts: Vec<HostName> = self.topology.hosts.keys().cloned().collect();
        self.net.spawn(
            name,
            mmm_mond::checker::run(
                prober,
                table.clone(),
                hosts,
                mmm_mond::checks_from_config(config),
                shared.clock,
                stop.child_token(),
            ),
        );
        let (net, from) = (self.net.clone(), name.to_string());
        self.net.spawn(
            name,
            mmm_mond::checker::run_network(
                monitor.ping_ips.clone(),
                monitor.ping_interval,
                move |ip| {
                    let reach = net.reach(&from, &host_of_ip(ip));
                    async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        reach
                    }
                },
                table,
                stop.child_token(),
            ),
        );
        let agents = mmm_mond::agents_from_config(config)?;
        let client = SimAgents {
            net: self.net.clone(),
            from: name.to_string(),
            registry: self.registry.clone(),
        };
        let push = push_table(self.net.clone(), name.to_string(), self.registry.clone());
        self.net.spawn(
            name,
            mmm_mond::leader::run(
                mmm_mond::leader::LeaderConfig {
                    raft,
                    reader,
                    group,
                    topology: self.topology.clone(),
                    tick: Duration::from_secs(1),
                    shared,
                    agents,
                    client,
                    push,
                },
                stop,
            ),
        );
        Ok(())
    }

    /// Kills monitor replica `name`: its tasks stop where they are, Raft stops, its data
    /// directory stays as the last acknowledged write left it.
    pub fn crash_monitor(&mut self, name: &str) {
        self.net.crash(name);
        if let Some(h) = self.registry.lock().monitors.remove(name) {
            tokio::spawn(async move {
                let _ = h.raft.shutdown().await;
            });
        }
    }

    /// Starts the agent on `host` (its state directory as it was).
    pub async fn start_agent(&mut self, host: &str) -> anyhow::Result<()> {
        let config = &self.configs[host];
        let mut cfg =
            mmm_agent::settings::from_config(config).map_err(|e| anyhow::anyhow!("{host}: {e}"))?;
        cfg.settings.uptime = sim_uptime;
        let proc = agent_proc(host);
        self.net.start(&proc);
        let monitors = SimMonitors {
            net: self.net.clone(),
            host: host.to_string(),
            replicas: MONS.iter().map(|m| m.to_string()).collect(),
            registry: self.registry.clone(),
            next: Arc::new(Mutex::new(0)),
        };
        let store = Store::new(self.state_dir.path().join(host));
        let agent = Arc::new(Agent::new(
            cfg.settings,
            SimMysql::new(self.world.clone(), host),
            SimVips::new(self.world.clone(), host),
            monitors,
            store,
        )?);
        self.registry
            .lock()
            .agents
            .insert(host.to_string(), agent.clone());
        let a = agent.clone();
        let net = self.net.clone();
        let this = proc.clone();
        self.net.spawn(&proc, async move {
            a.start().await;
            // The agent's own tasks, paused with it.
            let spawn = |task: Pin<Box<dyn Future<Output = ()> + Send>>| {
                tokio::spawn(net.gated(&this, task))
            };
            let tasks = [
                spawn(Box::pin({
                    let a = a.clone();
                    async move { a.run_lease().await }
                })),
                spawn(Box::pin({
                    let a = a.clone();
                    async move { a.run_watchdog().await }
                })),
                spawn(Box::pin({
                    let a = a.clone();
                    async move { a.run_reconcile(Duration::from_secs(1)).await }
                })),
                spawn(Box::pin({
                    let a = a.clone();
                    async move { a.run_mysql_watch(Duration::from_millis(100)).await }
                })),
                spawn(Box::pin({
                    let a = a.clone();
                    async move { a.run_fence_retry().await }
                })),
            ];
            // Aborting this task (a crash) aborts the agent's loops with it.
            let _guard = AbortAll(tasks.iter().map(|t| t.abort_handle()).collect());
            for t in tasks {
                let _ = t.await;
            }
        });
        Ok(())
    }

    /// The replica that believes it leads, if one does (a paused one may still believe it).
    pub fn leader(&self) -> Option<String> {
        MONS.iter()
            .find(|m| {
                self.registry.monitor(m).is_some_and(|h| {
                    h.raft.metrics().borrow().current_leader == Some(mmm_mond::group::node_id(m))
                })
            })
            .map(|m| m.to_string())
    }

    /// Kills the agent on `host`: whatever it was doing stops where it is.
    pub fn crash_agent(&mut self, host: &str) {
        self.net.crash(&agent_proc(host));
        self.registry.lock().agents.remove(host);
    }
}

struct AbortAll(Vec<tokio::task::AbortHandle>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// MMM's checks as a monitor replica sees the hosts, with the errant-transaction comparison
/// of `mmm_mond::probe::LiveProber` on rep_threads: the host's `@@gtid_binlog_state` against
/// the writable active master's, through `mmm_core::gtid`; a finding stands while the writer
/// cannot be compared with.
pub struct SimProber {
    world: World,
    net: Net,
    from: String,
    reader: StateReader,
    found: Mutex<BTreeMap<String, String>>,
}

impl SimProber {
    fn errant(&self, host: &str) -> Option<String> {
        let applied = self.reader.read();
        let writer = applied
            .state
            .as_ref()
            .zip(applied.topology.as_ref())
            .and_then(|(st, t)| st.active_master(t).map(|h| h.to_string()));
        let comparable = writer.as_ref().filter(|w| {
            w.as_str() != host
                && self.world.is_up(w)
                && !self.world.read_only(w)
                && self.net.reach(&self.from, w)
                && self.net.reach(w, &self.from)
        });
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writer) = comparable else {
            // The committed finding stands too (this replica restarted, or the writer it was
            // made against is gone), as in `LiveProber`.
            return found.get(host).cloned().or_else(|| {
                applied
                    .state
                    .as_ref()?
                    .hosts
                    .get(&HostName::new(host))?
                    .errant_message()
                    .map(str::to_string)
            });
        };
        let own = mmm_core::gtid::BinlogState::parse(&self.world.binlog_state(host)).ok()?;
        let theirs = mmm_core::gtid::BinlogState::parse(&self.world.binlog_state(writer)).ok()?;
        let errant = mmm_core::gtid::errant(&own, &theirs);
        if errant.is_empty() {
            found.remove(host);
            None
        } else {
            let message = mmm_core::gtid::errant_message(writer, &errant);
            found.insert(host.to_string(), message.clone());
            Some(message)
        }
    }
}

impl Prober for SimProber {
    async fn probe(&self, host: &HostName, check: CheckKind) -> Probe {
        let probe = self.world.probe(&self.from, host.as_str(), check).await;
        let reached = !matches!(&probe, Probe::Error(m) if m.starts_with("ERROR: Connect error"));
        if check == CheckKind::RepThreads && reached {
            if let Some(message) = self.errant(host.as_str()) {
                return Probe::Error(message);
            }
        }
        probe
    }
}

/// A follower's check table to the leader, which takes it as its API does.
fn push_table(net: Net, from: String, registry: Registry) -> mmm_mond::leader::PushTable {
    Arc::new(move |addr: String, report| {
        let (net, from, registry) = (net.clone(), from.clone(), registry.clone());
        Box::pin(async move {
            let leader = addr
                .parse::<SocketAddr>()
                .map(|a| host_of_ip(a.ip()))
                .map_err(|e| e.to_string())?;
            let target = leader.clone();
            let answer = net
                .call(&from, &leader, Duration::from_secs(1), async move {
                    let Some(h) = registry.monitor(&target) else {
                        return Err("no replica".to_string());
                    };
                    if h.raft.metrics().borrow().current_leader
                        != Some(mmm_mond::group::node_id(&target))
                    {
                        return Err("not the leader".into());
                    }
                    mmm_mond::api::take_table(&h.group, &h.shared, report)
                })
                .await;
            answer.map_err(|e| e.to_string())?
        })
    })
}

/// The leader's calls to agents over the simulated network.
#[derive(Clone)]
pub struct SimAgents {
    net: Net,
    from: String,
    registry: Registry,
}

impl SimAgents {
    async fn call<T, F, Fut>(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        f: F,
    ) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<SimAgent>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, CallError>> + Send,
    {
        let host = host_of_ip(addr.ip());
        let registry = self.registry.clone();
        let h = host.clone();
        let answer = self
            .net
            .call(&self.from, &agent_proc(&host), timeout, async move {
                match registry.agent(&h) {
                    Some(agent) => f(agent).await,
                    None => Err(CallError::Unreachable {
                        addr,
                        reason: "no agent".into(),
                    }),
                }
            })
            .await;
        match answer {
            Ok(r) => r,
            Err(e) => Err(CallError::Unreachable {
                addr,
                reason: e.to_string(),
            }),
        }
    }
}

fn refused(addr: SocketAddr, e: impl std::fmt::Display) -> CallError {
    CallError::Refused {
        addr,
        status: 409,
        error: e.to_string(),
    }
}

/// The monitors' agent calls take at most this (`AGENT_TIMEOUT` in `mmm_mond::replica`).
const AGENT_TIMEOUT: Duration = Duration::from_secs(2);

impl AgentApi for SimAgents {
    async fn ping(&self, addr: SocketAddr) -> Result<Pong, CallError> {
        self.call(addr, AGENT_TIMEOUT, |a| async move { Ok(a.pong().await) })
            .await
    }

    async fn set_status(
        &self,
        addr: SocketAddr,
        status: &SetStatus,
        timeout: Duration,
    ) -> Result<StatusReply, CallError> {
        let req = status.clone();
        self.call(addr, timeout, move |a| async move {
            a.apply(req).await.map_err(|e| refused(addr, e))
        })
        .await
    }

    async fn system(&self, addr: SocketAddr) -> Result<SystemStatus, CallError> {
        self.call(addr, AGENT_TIMEOUT, |a| async move {
            Ok(a.system_status().await)
        })
        .await
    }

    async fn clear_bad_roles(
        &self,
        addr: SocketAddr,
        req: &ClearBadRoles,
    ) -> Result<Cleared, CallError> {
        let req = req.clone();
        self.call(addr, AGENT_TIMEOUT, move |a| async move {
            a.clear_bad_roles(&req).await.map_err(|e| refused(addr, e))
        })
        .await
    }
}

/// How long a replica waits for the leader to confirm it still leads (`READ_TIMEOUT` of the
/// API).
const CONFIRM_WITHIN: Duration = Duration::from_secs(2);

/// The agent's way to the monitor group over the simulated network: the same hedging as
/// `mmm_agent::monitors::HttpMonitors` (the replica that answered last first, the next one
/// after `HEDGE_AFTER` or a failure), and a follower forwards to its leader as the API does.
#[derive(Clone)]
pub struct SimMonitors {
    net: Net,
    host: String,
    replicas: Vec<String>,
    registry: Registry,
    next: Arc<Mutex<usize>>,
}

/// What a replica answers an agent.
enum Answer<T> {
    Ok(T),
    Refused(String),
    Unavailable(String),
}

impl SimMonitors {
    /// Runs `serve` on the leader, reached through replica `first` (which forwards once when it
    /// does not lead).
    async fn ask<T, F, Fut>(
        net: Net,
        registry: Registry,
        from: String,
        first: String,
        serve: F,
    ) -> Answer<T>
    where
        T: Send + 'static,
        F: Fn(MonHandle) -> Fut + Send + Sync + Clone + 'static,
        Fut: std::future::Future<Output = Answer<T>> + Send,
    {
        let (net2, registry2, target) = (net.clone(), registry.clone(), first.clone());
        let answer = net
            .call(&from, &first, Duration::from_millis(500), async move {
                let Some(h) = registry2.monitor(&target) else {
                    return Answer::Unavailable("no replica".into());
                };
                let leader = h.raft.metrics().borrow().current_leader;
                if leader == Some(mmm_mond::group::node_id(&target)) {
                    return serve(h).await;
                }
                let Some(leader) =
                    leader.and_then(|id| MONS.iter().find(|m| mmm_mond::group::node_id(m) == id))
                else {
                    return Answer::Unavailable("no leader".into());
                };
                let registry3 = registry2.clone();
                let leader = leader.to_string();
                let l2 = leader.clone();
                let forwarded = net2
                    .call(&target, &leader, CONFIRM_WITHIN, async move {
                        match registry3.monitor(&l2) {
                            Some(h) => serve(h).await,
                            None => Answer::Unavailable("no replica".into()),
                        }
                    })
                    .await;
                forwarded.unwrap_or_else(|e| Answer::Unavailable(format!("forwarding: {e}")))
            })
            .await;
        match answer {
            Ok(a) => a,
            Err(CallFail::Timeout) => Answer::Unavailable(format!("{first}: timed out")),
            Err(CallFail::Refused) => Answer::Unavailable(format!("{first}: refused")),
        }
    }

    /// Asks the replicas with hedging; the first success or refusal wins.
    async fn post_any<T, F, Fut>(&self, serve: F) -> Answer<T>
    where
        T: Send + 'static,
        F: Fn(MonHandle) -> Fut + Send + Sync + Clone + 'static,
        Fut: std::future::Future<Output = Answer<T>> + Send,
    {
        let n = self.replicas.len();
        let start = *self.next.lock().unwrap_or_else(|p| p.into_inner()) % n;
        let ask = |k: usize| {
            let i = (start + k) % n;
            let fut = Self::ask(
                self.net.clone(),
                self.registry.clone(),
                self.host.clone(),
                self.replicas[i].clone(),
                serve.clone(),
            );
            async move { (i, fut.await) }
        };
        let mut pending = FuturesUnordered::new();
        pending.push(ask(0));
        let mut asked = 1;
        let mut errors = Vec::new();
        loop {
            let hedge = tokio::time::sleep(HEDGE_AFTER);
            tokio::select! {
                biased;
                done = pending.next() => match done {
                    Some((i, Answer::Unavailable(e))) => {
                        let _ = i;
                        errors.push(e);
                    }
                    Some((i, a)) => {
                        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = i;
                        return a;
                    }
                    None => {}
                },
                _ = hedge, if asked < n => {}
            }
            if asked < n {
                pending.push(ask(asked));
                asked += 1;
            } else if pending.is_empty() {
                break;
            }
        }
        Answer::Unavailable(errors.join("; "))
    }
}

impl Monitors for SimMonitors {
    async fn renew(&self, req: &LeaseRequest) -> Result<LeaseGrant, RenewError> {
        let req = req.clone();
        let answer = self
            .post_any(move |h: MonHandle| {
                let req = req.clone();
                async move {
                    match mmm_mond::lease::grant(&h.raft, &h.reader, &h.shared, CONFIRM_WITHIN, req)
                        .await
                    {
                        Ok(g) => Answer::Ok(g),
                        Err(mmm_mond::lease::Denied::Refused(e)) => Answer::Refused(e),
                        Err(mmm_mond::lease::Denied::Unavailable(e)) => Answer::Unavailable(e),
                    }
                }
            })
            .await;
        match answer {
            Answer::Ok(g) => Ok(g),
            Answer::Refused(e) => Err(RenewError::Refused(e)),
            Answer::Unavailable(e) => Err(RenewError::Unavailable(e)),
        }
    }

    async fn report(&self, report: &HostReport) -> Result<ReportReply, String> {
        let report = report.clone();
        let answer = self
            .post_any(move |h: MonHandle| {
                let report = report.clone();
                async move {
                    match mmm_mond::api::confirm_death(&h.reader, &h.shared, report).await {
                        Ok(r) => Answer::Ok(r),
                        Err(e) => Answer::Refused(e),
                    }
                }
            })
            .await;
        match answer {
            Answer::Ok(r) => Ok(r),
            Answer::Refused(e) | Answer::Unavailable(e) => Err(e),
        }
    }
}
