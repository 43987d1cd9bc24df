//! `mmm_agentd` itself, in a network namespace with a real MariaDB 10.11 beside it and its
//! writer VIP on a real interface. The lease comes from a stand-in for the monitor group in a
//! second namespace that serves only `/api/lease` (the real monitor's grant rule is tested in
//! `mmm-mond`); stopping it is "no monitor running".
//!
//! Proven here: a host that is not the writer is made read-only at start; a writer status with
//! a grant puts the VIP on the interface (reachable from the other namespace) and clears
//! read_only; with no monitor the writer fences itself before its lease ends (VIP gone,
//! read_only=1, a held client session cannot write); stale epochs and other hosts' requests are
//! refused; a restarted agent remembers its epoch and status and becomes writer again only
//! once a lease is granted; a refused renewal fences at once. The agent refuses callers
//! without its token, and sends that token with its lease renewals (the stand-in monitor
//! grants nothing without it).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use mmm_agent::client::{AgentClient, CallError};
use mmm_agent::protocol::WriterState;
use mmm_core::api::{ApiError, LeaseGrant, LeaseRequest, LEASE_PATH};
use mmm_core::{AgentStatus, Epoch, HostName, HostState, RoleIp, RoleName};
use mmm_testkit::mariadb::{self, MariaDb};
use mmm_testkit::netns::{Host, Lab};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

const GRANT: u8 = 0;
const REFUSE: u8 = 1;
const LEASE_MS: u64 = 1500;

/// The agents' token, written to `agent_secret_file`.
fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| mmm_testkit::pki::random_token().expect("a token"))
}

fn transport(token: Option<&str>) -> mmm_transport::Transport {
    let keys = mmm_transport::Keys {
        agent: token.map(mmm_config::Secret::new),
        ..mmm_transport::Keys::default()
    };
    mmm_transport::Transport::new(keys, None)
}

/// The stand-in monitor: grants, refuses, or is not running at all.
struct Grants {
    mode: Arc<AtomicU8>,
    last_grant: Arc<Mutex<Option<Instant>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Grants {
    fn start(mon: &Host, epoch: u64) -> Grants {
        let mode = Arc::new(AtomicU8::new(GRANT));
        let last_grant = Arc::new(Mutex::new(None));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (m, l, host) = (mode.clone(), last_grant.clone(), mon.clone());
        let ip = mon.ip;
        let thread = std::thread::spawn(move || {
            let served = host.run_async(move || async move {
                let app =
                    Router::new().route(
                        LEASE_PATH,
                        post(
                            move |headers: axum::http::HeaderMap, Json(req): Json<LeaseRequest>| async move {
                                let sent = headers
                                    .get(axum::http::header::AUTHORIZATION)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_string();
                                if sent != format!("Bearer {}", token()) {
                                    return (StatusCode::UNAUTHORIZED, "no token").into_response();
                                }
                                lease(&m, &l, epoch, req)
                            },
                        ),
                    );
                let listener = tokio::net::TcpListener::bind((ip, 9988)).await.unwrap();
                ready_tx.send(()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
            served.unwrap();
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the stand-in monitor listens");
        Grants {
            mode,
            last_grant,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Grants {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lease(
    mode: &AtomicU8,
    last: &Mutex<Option<Instant>>,
    epoch: u64,
    req: LeaseRequest,
) -> Response {
    if mode.load(Ordering::SeqCst) == REFUSE || req.epoch != epoch {
        let error = format!(
            "no lease for '{}' at epoch {}: the writer is db2",
            req.host, req.epoch
        );
        return (StatusCode::CONFLICT, Json(ApiError { error })).into_response();
    }
    *last.lock().unwrap() = Some(Instant::now());
    Json(LeaseGrant {
        host: req.host,
        epoch,
        lease_ms: LEASE_MS,
        renew_ms: 300,
        replica: "mon1".into(),
    })
    .into_response()
}

fn write_config(
    dir: &Path,
    db1: &Host,
    mon: &Host,
    writer_ip: Ipv4Addr,
    reader_ip: Ipv4Addr,
    db2_ip: Ipv4Addr,
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let text = format!(
        "active_master_role writer\n\
         this db1\n\
         <host default>\n\
         \x20   cluster_interface {iface}\n\
         \x20   agent_user {agent_user}\n\
         \x20   agent_password {agent_pw}\n\
         \x20   replication_user {repl_user}\n\
         \x20   replication_password {repl_pw}\n\
         \x20   state_dir {state}\n\
         \x20   pid_path {state}/mmm_agentd.pid\n\
         \x20   bin_path /usr/lib/mysql-mmm\n\
         </host>\n\
         <host db1>\n    ip {db1_ip}\n    mode master\n    peer db2\n</host>\n\
         <host db2>\n    ip {db2_ip}\n    mode master\n    peer db1\n</host>\n\
         <role writer>\n    hosts db1, db2\n    ips {writer_ip}\n    mode exclusive\n</role>\n\
         <role reader>\n    hosts db1, db2\n    ips {reader_ip}\n    mode balanced\n</role>\n\
         <monitor_node mon1>\n    ip {mon_ip}\n    port 9988\n</monitor_node>\n\
         <socket>\n    agent_secret_file {secret}\n</socket>\n",
        iface = db1.interface,
        agent_user = mariadb::AGENT_USER,
        agent_pw = mariadb::AGENT_PASSWORD,
        repl_user = mariadb::REPL_USER,
        repl_pw = mariadb::REPL_PASSWORD,
        state = dir.join("state").display(),
        db1_ip = db1.ip,
        mon_ip = mon.ip,
        secret = mmm_testkit::pki::write_token(dir, "agent", token())
            .unwrap()
            .display(),
    );
    let path = dir.join("mmm_agent.conf");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn status(roles: &[(&str, Ipv4Addr)], epoch: u64) -> AgentStatus {
    AgentStatus {
        host: HostName::new("db1"),
        state: HostState::Online,
        roles: roles
            .iter()
            .map(|(r, ip)| RoleIp::new(RoleName::new(*r), (*ip).into()))
            .collect(),
        active_master: Some(HostName::new("db1")),
        epoch: Epoch(epoch),
    }
}

/// Calls the agent from the monitor's namespace, with the agents' token.
fn call<T: Send>(
    mon: &Host,
    f: impl FnOnce(AgentClient) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send,
) -> T {
    call_with(mon, Some(token()), f)
}

/// Calls the agent from the monitor's namespace with `token`.
fn call_with<T: Send>(
    mon: &Host,
    token: Option<&str>,
    f: impl FnOnce(AgentClient) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send,
) -> T {
    let transport = transport(token);
    mon.run_async(move || async move {
        let client =
            AgentClient::new(&transport, Duration::from_secs(1), Duration::from_secs(20)).unwrap();
        f(client).await
    })
    .unwrap()
}

async fn read_only(db: &MariaDb) -> bool {
    db.scalar("SELECT @@read_only").await.unwrap().as_deref() == Some("1")
}

/// Waits for read_only=1: a fence removes the VIP first, then sets read_only.
async fn wait_read_only(db: &MariaDb, limit: Duration) {
    let start = Instant::now();
    while !read_only(db).await {
        assert!(
            start.elapsed() < limit,
            "read_only=1 after the fence: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn has_ip(host: &Host, ip: Ipv4Addr) -> bool {
    host.ipv4_addresses()
        .unwrap()
        .iter()
        .any(|a| a.starts_with(&format!("{ip}/")))
}

fn spawn_agent(lab: &Lab, db1: &Host, config: &Path) -> u32 {
    // MMM_AGENTD picks another build (the release binary, to report its memory).
    let bin =
        std::env::var("MMM_AGENTD").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mmm_agentd").into());
    let mut cmd = Lab::command(&db1.ns, &bin);
    cmd.arg("--config").arg(config).env("RUST_LOG", "info");
    lab.spawn(cmd).unwrap()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_holds_its_role_only_under_a_lease() {
    let lab = Lab::new(&["db1", "mon"]).expect("network namespaces (run as root with iproute2)");
    let db1 = lab.host("db1").clone();
    let mon = lab.host("mon").clone();
    let (writer_ip, reader_ip, db2_ip) = (lab.spare_ip(0), lab.spare_ip(1), lab.spare_ip(2));
    let db = MariaDb::start_in(1, &db1.ns, db1.ip)
        .await
        .expect("MariaDB in db1's namespace");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db1, &mon, writer_ip, reader_ip, db2_ip);
    let agent_addr = SocketAddr::from((db1.ip, 9989));

    let mut grants = Grants::start(&mon, 1);
    let pid = spawn_agent(&lab, &db1, &config);
    wait_for("the agent answers", Duration::from_secs(10), || {
        call(&mon, move |c| {
            Box::pin(async move { c.ping(agent_addr).await.is_ok() })
        })
    });
    assert!(
        read_only(&db).await,
        "a host that is not the writer is made read-only at start"
    );
    for wrong in [None, Some("not-the-agents-token-at-all")] {
        let refused = call_with(&mon, wrong, move |c| {
            Box::pin(async move { c.ping(agent_addr).await })
        });
        assert!(
            matches!(refused, Err(CallError::Refused { status: 401, .. })),
            "token {wrong:?}: {refused:?}"
        );
    }

    // Promotion: a writer status with a lease available.
    let reply = call(&mon, move |c| {
        Box::pin(async move {
            c.set_status(
                agent_addr,
                &status(&[("writer", writer_ip), ("reader", reader_ip)], 1).into(),
                Duration::from_secs(20),
            )
            .await
            .unwrap()
        })
    });
    assert!(reply.ok(), "{reply:?}");
    assert!(
        matches!(reply.writer, WriterState::Active { .. }),
        "{reply:?}"
    );
    assert!(has_ip(&db1, writer_ip) && has_ip(&db1, reader_ip));
    assert!(!read_only(&db).await);
    assert!(
        mon.ping(writer_ip, Duration::from_secs(2)).unwrap(),
        "the VIP answers from the other namespace"
    );

    // A client session (over the socket) writes while the writer is active.
    let app = OptsBuilder::default()
        .socket(Some(db.socket_path().to_string_lossy().into_owned()))
        .user(Some(mariadb::APP_USER))
        .pass(Some(mariadb::APP_PASSWORD));
    let mut held = Conn::new(app).await.unwrap();
    held.query_drop("CREATE DATABASE IF NOT EXISTS t")
        .await
        .unwrap();
    held.query_drop("CREATE TABLE t.w (v INT)").await.unwrap();
    held.query_drop("INSERT INTO t.w VALUES (1)").await.unwrap();

    // Stale epoch and another host: refused, nothing changes.
    let refused = call(&mon, move |c| {
        Box::pin(async move {
            c.set_status(agent_addr, &status(&[], 0).into(), Duration::from_secs(5))
                .await
        })
    });
    assert!(
        matches!(refused, Err(CallError::Refused { status: 409, .. })),
        "{refused:?}"
    );
    let mut other = status(&[], 1);
    other.host = HostName::new("db2");
    let refused = call(&mon, move |c| {
        Box::pin(async move {
            c.set_status(agent_addr, &other.clone().into(), Duration::from_secs(5))
                .await
        })
    });
    assert!(
        matches!(refused, Err(CallError::Refused { status: 400, .. })),
        "{refused:?}"
    );
    assert!(has_ip(&db1, writer_ip) && !read_only(&db).await);

    // No monitor running: the writer fences itself before the lease ends.
    grants.stop();
    let last = grants
        .last_grant
        .lock()
        .unwrap()
        .expect("a grant was given");
    wait_for("the writer VIP is removed", Duration::from_secs(5), || {
        !has_ip(&db1, writer_ip)
    });
    let vip_gone = last.elapsed();
    wait_read_only(&db, Duration::from_secs(5)).await;
    let fenced = last.elapsed();
    assert!(
        fenced < Duration::from_millis(LEASE_MS),
        "fenced {fenced:?} after the last grant; the lease is {LEASE_MS} ms (VIP gone after {vip_gone:?})"
    );
    assert!(
        held.query_drop("INSERT INTO t.w VALUES (2)").await.is_err(),
        "a session held across the fence cannot write"
    );
    assert!(has_ip(&db1, reader_ip), "reader roles stay");

    // Restart: the agent remembers epoch 1 and its status, and takes the writer role back
    // only once a lease is granted again.
    lab_kill(pid);
    let pid = spawn_agent(&lab, &db1, &config);
    wait_for(
        "the restarted agent answers",
        Duration::from_secs(10),
        || {
            call(&mon, move |c| {
                Box::pin(async move {
                    c.ping(agent_addr)
                        .await
                        .map(|p| p.epoch == 1)
                        .unwrap_or(false)
                })
            })
        },
    );
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        !has_ip(&db1, writer_ip) && read_only(&db).await,
        "no lease, no writer"
    );
    let grants = Grants::start(&mon, 1);
    wait_for("the writer is active again", Duration::from_secs(5), || {
        has_ip(&db1, writer_ip)
    });
    assert!(!read_only(&db).await);

    // A log rotation script's SIGHUP: ignored, the writer stays active (by default it would
    // end the agent on the spot, leaving the VIP up with no watchdog to fence it).
    // SAFETY: kill(2) on a child this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGHUP);
    }
    std::thread::sleep(Duration::from_millis(300));
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        state.split_whitespace().nth(2).is_some_and(|s| s != "Z"),
        "SIGHUP ended the agent: {state}"
    );
    assert!(has_ip(&db1, writer_ip) && !read_only(&db).await);

    // A refused renewal (the group moved the writer away) fences at once.
    let refusing = Instant::now();
    grants.mode.store(REFUSE, Ordering::SeqCst);
    wait_for("a refused renewal fences", Duration::from_secs(3), || {
        !has_ip(&db1, writer_ip)
    });
    wait_read_only(&db, Duration::from_secs(3)).await;
    let took = refusing.elapsed();
    assert!(
        took < Duration::from_millis(LEASE_MS),
        "fenced {took:?} after the refusal began"
    );
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        });
    eprintln!("mmm_agentd resident memory after the run: {rss:?}");
    lab_kill(pid);
    drop(grants);
}

fn lab_kill(pid: u32) {
    // SAFETY: kill(2) on a child this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(100));
}
