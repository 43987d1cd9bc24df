//! In-test monitor replicas for the mmm_control tests, and how to run the binary against them
//! or against real ones.
//!
//! A [`Cluster`] is a few HTTP servers (axum on 127.0.0.1:0, each on its own thread) that serve
//! the monitor API of `mmm_core::api` from one shared, real cluster model: an `mmm_core`
//! `Topology` and `ClusterState` built from the seed document's four hosts and bootstrapped
//! healthy as `core/tests/golden.rs` does. Read-only commands are answered with
//! `mmm_core::render::query`, the others with `mmm_core::step`: no reply text is canned here.
//! Each replica can instead answer 503 (no leader) or redirect to another one.
//!
//! Pointing the tests at real servers: set `MMM_CONTROL_TEST_MONITORS=HOST:PORT,...` to a
//! running monitor group whose cluster is the seed document's (`core/tests/golden.rs`,
//! `topology seed`), healthy and ACTIVE. [`Target::seed`] then gives that group instead of
//! in-test replicas, so every test written against `Target::seed` checks the real daemon
//! byte for byte; tests that change state put it back, and they run one at a time. Tests that
//! need a dead, leaderless or redirecting replica always use in-test replicas.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::Command as Process;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mmm_core::api::{
    reply_is_error, ApiError, CommandReply, CommandRequest, GroupStatus, LeaderInfo, Member,
    StateReply, COMMAND_PATH, HEALTHZ_PATH, LEADER_PATH, STATE_PATH, STATUS_PATH,
};
use mmm_core::{
    render, step, AgentReport, CheckKind, CheckReport, ClusterState, Command, Event, HostMode,
    HostName, HostSpec, HostState, RoleMode, RoleSpec, Settings, StartupReport, StoredStatus,
    SystemReport, Time, Topology,
};
use tokio::sync::oneshot;

/// The environment variable naming real monitor replicas to test against.
pub const LIVE_MONITORS: &str = "MMM_CONTROL_TEST_MONITORS";

/// The seed document's first timestamp, 2017/01/09 21:31:47 UTC, when the cluster boots.
pub const START: u64 = 1_483_997_507;

/// The term every in-test replica reports.
const TERM: u64 = 2;

/// The cluster model shared by the replicas of one group.
pub struct Model {
    /// The static definition.
    pub topo: Topology,
    /// The replicated state.
    pub state: ClusterState,
    /// How many events were applied, standing in for the Raft log index.
    pub log_index: u64,
    /// Every command line received, in order.
    pub lines: Vec<String>,
}

/// The seed document's topology: master1/master2 co-masters, slave1, slave2; an exclusive
/// writer role and a balanced reader role with three IPs.
pub fn seed_topology() -> Result<Topology, Box<dyn std::error::Error>> {
    let host =
        |ip: &str, mode, peer: Option<&str>| -> Result<HostSpec, Box<dyn std::error::Error>> {
            Ok(HostSpec {
                ip: ip.parse()?,
                mode,
                peer: peer.map(HostName::from),
            })
        };
    let topo = Topology {
        hosts: BTreeMap::from([
            (
                "master1".into(),
                host("192.168.197.184", HostMode::Master, Some("master2"))?,
            ),
            (
                "master2".into(),
                host("192.168.197.187", HostMode::Master, Some("master1"))?,
            ),
            (
                "slave1".into(),
                host("192.168.197.186", HostMode::Slave, None)?,
            ),
            (
                "slave2".into(),
                host("192.168.197.188", HostMode::Slave, None)?,
            ),
        ]),
        roles: BTreeMap::from([
            (
                "writer".into(),
                RoleSpec {
                    mode: RoleMode::Exclusive,
                    hosts: vec!["master1".into(), "master2".into()],
                    ips: vec!["192.168.197.101".parse()?],
                    prefer: None,
                },
            ),
            (
                "reader".into(),
                RoleSpec {
                    mode: RoleMode::Balanced,
                    hosts: vec!["master2".into(), "slave1".into(), "slave2".into()],
                    ips: vec![
                        "192.168.197.102".parse()?,
                        "192.168.197.103".parse()?,
                        "192.168.197.104".parse()?,
                    ],
                    prefer: None,
                },
            ),
        ]),
        active_master_role: "writer".into(),
        settings: Settings::default(),
    };
    topo.validate()?;
    Ok(topo)
}

impl Model {
    /// The seed cluster bootstrapped healthy: every check OK, a startup where every host was
    /// stored ONLINE and every agent answers ONLINE without roles, then a tick that hands out
    /// the roles (as `bootstrap` in `core/tests/golden.rs`).
    pub fn healthy_seed() -> Result<Model, Box<dyn std::error::Error>> {
        let topo = seed_topology()?;
        let now = Time::from_secs(START);
        let mut state = ClusterState::new(&topo, now);
        let mut checks = Vec::new();
        let mut startup = StartupReport::default();
        for host in topo.hosts.keys() {
            for kind in CheckKind::ALL {
                checks.push(CheckReport {
                    host: host.clone(),
                    check: kind,
                    ok: true,
                    message: "OK".into(),
                });
            }
            startup.stored.insert(
                host.clone(),
                StoredStatus {
                    state: HostState::Online,
                    roles: vec![],
                },
            );
            startup.agents.insert(
                host.clone(),
                AgentReport {
                    state: HostState::Online,
                    roles: vec![],
                    master: None,
                },
            );
            startup.systems.insert(
                host.clone(),
                SystemReport {
                    writable: false,
                    roles: vec![],
                    master: None,
                },
            );
        }
        for event in [Event::Checks(checks), Event::Startup(startup), Event::Tick] {
            step(&topo, &mut state, now, event)?;
        }
        Ok(Model {
            topo,
            state,
            log_index: 3,
            lines: Vec::new(),
        })
    }

    /// Answers a command line as the monitor does: read-only commands from the state,
    /// the others through `step`.
    fn answer(&mut self, line: &str) -> Result<String, String> {
        self.lines.push(line.to_string());
        let command = Command::parse(line);
        if command.is_read_only() {
            return render::query(&self.topo, &self.state, &command, 0)
                .ok_or_else(|| format!("'{line}' has no read-only answer"));
        }
        let now = Time::from_secs(START + 10 + self.log_index);
        let outcome = step(&self.topo, &mut self.state, now, Event::Admin(command))
            .map_err(|e| e.to_string())?;
        self.log_index += 1;
        outcome
            .reply
            .ok_or_else(|| format!("'{line}' changed state but gave no reply"))
    }
}

/// How an in-test replica answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Serves the API from the model (the group has a leader).
    Serve,
    /// Knows no leader: 503 on `/leader` and `/api/command`.
    NoLeader,
    /// Answers `/api/command` and `/api/state` with 307 to this base URL.
    RedirectTo(String),
}

#[derive(Clone)]
struct Shared {
    name: String,
    id: u64,
    behaviour: Behaviour,
    model: Arc<Mutex<Model>>,
    members: Vec<Member>,
}

impl Shared {
    fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn leader(&self) -> Option<String> {
        match self.behaviour {
            Behaviour::NoLeader => None,
            _ => Some("mon1".to_string()),
        }
    }
}

/// One in-test replica; it stops when dropped.
pub struct Replica {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Replica {
    fn start(listener: TcpListener, shared: Shared) -> Result<Replica, Box<dyn std::error::Error>> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .route(HEALTHZ_PATH, get(|| async { StatusCode::OK }))
            .route(LEADER_PATH, get(leader))
            .route(STATUS_PATH, get(status))
            .route(COMMAND_PATH, post(command))
            .route(STATE_PATH, get(state))
            .with_state(shared);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(Replica {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn leader(State(s): State<Shared>) -> Response {
    let leader = s.leader();
    let info = LeaderInfo {
        replica: s.name.clone(),
        leader_addr: leader.as_ref().and_then(|l| {
            s.members
                .iter()
                .find(|m| &m.name == l)
                .map(|m| m.addr.clone())
        }),
        leader,
        term: TERM,
    };
    let code = if info.leader.as_deref() == Some(s.name.as_str()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(info)).into_response()
}

async fn status(State(s): State<Shared>) -> Json<GroupStatus> {
    let index = s.model().log_index;
    let leader = s.leader();
    let raft_state = match (&leader, s.name.as_str()) {
        (None, _) => "Candidate",
        (Some(l), name) if l == name => "Leader",
        _ => "Follower",
    };
    Json(GroupStatus {
        replica: s.name.clone(),
        id: s.id,
        raft_state: raft_state.to_string(),
        term: TERM,
        leader,
        last_log_index: Some(index),
        last_applied_index: Some(index),
        replication: vec![],
        members: s.members.clone(),
        millis_since_quorum_ack: None,
        snapshot_index: None,
        purged_index: None,
    })
}

fn redirect(base: &str, path: &str) -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, format!("{base}{path}"))],
    )
        .into_response()
}

fn no_leader() -> Response {
    let body = ApiError {
        error: "this replica knows no leader".into(),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn command(State(s): State<Shared>, Json(request): Json<CommandRequest>) -> Response {
    match &s.behaviour {
        Behaviour::NoLeader => return no_leader(),
        Behaviour::RedirectTo(base) => return redirect(base, COMMAND_PATH),
        Behaviour::Serve => {}
    }
    let mut model = s.model();
    match model.answer(&request.line) {
        Ok(reply) => Json(CommandReply {
            ok: !reply_is_error(&reply),
            reply,
            replica: s.name.clone(),
            leader: s.leader(),
            log_index: Some(model.log_index),
            stale: false,
        })
        .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, Json(ApiError { error })).into_response(),
    }
}

async fn state(State(s): State<Shared>) -> Response {
    if let Behaviour::RedirectTo(base) = &s.behaviour {
        return redirect(base, STATE_PATH);
    }
    let model = s.model();
    Json(StateReply {
        replica: s.name.clone(),
        log_index: Some(model.log_index),
        topology: Some(model.topo.clone()),
        state: Some(model.state.clone()),
    })
    .into_response()
}

/// A group of in-test replicas sharing one model, named mon1, mon2, ... in order.
pub struct Cluster {
    /// The replicas, in the order given.
    pub replicas: Vec<Replica>,
    /// The shared model.
    pub model: Arc<Mutex<Model>>,
}

impl Cluster {
    /// Replicas with these behaviours; mon1 is the leader unless it knows none.
    pub fn start(behaviours: &[Behaviour]) -> Result<Cluster, Box<dyn std::error::Error>> {
        let model = Arc::new(Mutex::new(Model::healthy_seed()?));
        let listeners = behaviours
            .iter()
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()?;
        let members = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(Member {
                    name: format!("mon{}", i + 1),
                    id: u64::try_from(i + 1)?,
                    addr: l.local_addr()?.to_string(),
                })
            })
            .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
        let mut replicas = Vec::new();
        for ((listener, behaviour), member) in listeners.into_iter().zip(behaviours).zip(&members) {
            let shared = Shared {
                name: member.name.clone(),
                id: member.id,
                behaviour: behaviour.clone(),
                model: Arc::clone(&model),
                members: members.clone(),
            };
            replicas.push(Replica::start(listener, shared)?);
        }
        Ok(Cluster { replicas, model })
    }

    /// Three healthy replicas, mon1 leading.
    pub fn healthy() -> Result<Cluster, Box<dyn std::error::Error>> {
        Cluster::start(&[Behaviour::Serve, Behaviour::Serve, Behaviour::Serve])
    }

    /// The replicas' addresses for `--monitor`.
    pub fn monitors(&self) -> String {
        let addrs: Vec<String> = self.replicas.iter().map(|r| r.addr.to_string()).collect();
        addrs.join(",")
    }

    /// The model, locked.
    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An address where nothing listens (it was free a moment ago).
pub fn dead_address() -> Result<String, std::io::Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string())
}

/// What one run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// The exit status (-1 if killed by a signal).
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

/// Runs the built `mmm_control` with these arguments.
pub fn mmm_control(args: &[&str]) -> Result<Run, std::io::Error> {
    let output = Process::new(env!("CARGO_BIN_EXE_mmm_control"))
        .args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()?;
    Ok(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Tests against real servers run one at a time, since some change the cluster's state.
static LIVE: Mutex<()> = Mutex::new(());

/// The monitor group a seed-cluster test runs against: the real one named by
/// [`LIVE_MONITORS`], or three in-test replicas.
pub enum Target {
    /// In-test replicas.
    InTest(Cluster),
    /// Real replicas, held for this test alone.
    Live {
        /// Their addresses for `--monitor`.
        monitors: String,
        /// Held while the test runs.
        _turn: MutexGuard<'static, ()>,
    },
}

impl Target {
    /// A healthy seed cluster in ACTIVE mode.
    pub fn seed() -> Result<Target, Box<dyn std::error::Error>> {
        match std::env::var(LIVE_MONITORS) {
            Ok(monitors) if !monitors.trim().is_empty() => Ok(Target::Live {
                monitors,
                _turn: LIVE.lock().unwrap_or_else(PoisonError::into_inner),
            }),
            _ => Ok(Target::InTest(Cluster::healthy()?)),
        }
    }

    /// The `--monitor` value.
    pub fn monitors(&self) -> String {
        match self {
            Target::InTest(cluster) => cluster.monitors(),
            Target::Live { monitors, .. } => monitors.clone(),
        }
    }

    /// Runs `mmm_control --monitor <these replicas> ARGS...`.
    pub fn run(&self, args: &[&str]) -> Result<Run, std::io::Error> {
        let monitors = self.monitors();
        let mut all = vec!["--monitor", monitors.as_str()];
        all.extend_from_slice(args);
        mmm_control(&all)
    }

    /// The in-test cluster, if this is one.
    pub fn in_test(&self) -> Option<&Cluster> {
        match self {
            Target::InTest(cluster) => Some(cluster),
            Target::Live { .. } => None,
        }
    }
}
