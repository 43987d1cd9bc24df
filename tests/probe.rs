//! `LiveProber` against real hosts: MariaDB servers from `mmm_testkit` for the mysql and
//! replication checks (as the testkit's `mmm_monitor` account, `REPLICATION CLIENT`,
//! `SLAVE MONITOR`, `PROCESS`), network namespaces for ping. Each test says which behaviour of
//! MMM's checks (reference §1.4) it proves. Check `timeout` is 1 s here to keep them short.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use mmm_config::Secret;
use mmm_core::{CheckKind, HostName, Probe};
use mmm_mond::probe::{CheckParams, LiveProber, Prober, Target, ALARM_MARGIN, NO_ICMP_SOCKET};
use mmm_testkit::mariadb::{MariaDb, APP_PASSWORD, APP_USER, MONITOR_PASSWORD, MONITOR_USER};
use mmm_testkit::netns::Lab;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// The checks' `timeout` in these tests.
const TIMEOUT: Duration = Duration::from_secs(1);

/// How much later than its bound a probe that must give up may finish here (CI is loaded).
const SLACK: Duration = Duration::from_secs(2);

fn target_on(port: u16, user: &str, password: &str) -> Target {
    Target {
        ip: IpAddr::from([127, 0, 0, 1]),
        mysql_port: port,
        user: user.to_string(),
        password: Secret::new(password),
    }
}

fn monitor_target(db: &MariaDb) -> Target {
    target_on(db.port(), MONITOR_USER, MONITOR_PASSWORD)
}

fn prober(hosts: Vec<(&str, Target)>) -> LiveProber {
    prober_with_backlog(hosts, Duration::from_secs(60))
}

fn prober_with_backlog(hosts: Vec<(&str, Target)>, max_backlog: Duration) -> LiveProber {
    let targets: BTreeMap<HostName, Target> = hosts
        .into_iter()
        .map(|(name, target)| (HostName::new(name), target))
        .collect();
    let params = CheckParams {
        timeout: TIMEOUT,
        max_backlog,
    };
    LiveProber::new(targets, params.for_every_check()).expect("prober")
}

fn text(probe: &Probe) -> &str {
    match probe {
        Probe::Ok(s) | Probe::Error(s) | Probe::Unknown(s) => s,
    }
}

/// Runs one probe; returns its message and how long it took.
async fn run(prober: &LiveProber, host: &str, check: CheckKind) -> (String, Duration) {
    let started = Instant::now();
    let probe = prober.probe(&HostName::new(host), check).await;
    let message = text(&probe).to_string();
    // The message prefix and the probe kind always agree.
    assert_eq!(probe, Probe::from_message(&message), "{message}");
    (message, started.elapsed())
}

async fn message(prober: &LiveProber, host: &str, check: CheckKind) -> String {
    run(prober, host, check).await.0
}

async fn start(server_id: u32) -> MariaDb {
    MariaDb::start(server_id).await.expect("MariaDB starts")
}

/// Waits until `column` of `SHOW SLAVE STATUS` on `db` is `value`.
async fn wait_slave_status(db: &MariaDb, column: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = db.slave_status(column).await.expect("SHOW SLAVE STATUS");
        if now.as_deref() == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{column} is {now:?}, not {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// mysql: a live server answers `OK`; once it is killed, the mysql check is MMM's
/// `ERROR: Connect error (host = ip:port, user = …)! <errstr>` and the replication checks say
/// the same as `UNKNOWN` (they leave reachability to the mysql check).
#[tokio::test]
async fn mysql_passes_on_a_live_server_and_is_a_connect_error_once_it_is_killed() {
    let mut db = start(11).await;
    let port = db.port();
    let p = prober(vec![("db1", monitor_target(&db))]);
    let (ok, took) = run(&p, "db1", CheckKind::Mysql).await;
    assert_eq!(ok, "OK");
    assert!(took < TIMEOUT, "a live server answers at once ({took:?})");

    db.kill9();
    let prefix = format!("Connect error (host = 127.0.0.1:{port}, user = mmm_monitor)! ");
    let refused = message(&p, "db1", CheckKind::Mysql).await;
    assert!(
        refused.starts_with(&format!(
            "ERROR: {prefix}Can't connect to MySQL server on '127.0.0.1' (Connection refused"
        )),
        "{refused}"
    );
    for check in [CheckKind::RepThreads, CheckKind::RepBacklog] {
        let m = message(&p, "db1", check).await;
        assert!(m.starts_with(&format!("UNKNOWN: {prefix}")), "{check}: {m}");
    }
}

/// A frozen server (SIGSTOP: TCP is accepted by the kernel, nothing answers) fails within the
/// check's timeout as a connect error (MMM's `mysql_connect_timeout` covers the greeting) —
/// ERROR for mysql, UNKNOWN for the replication checks — and probes of another host meanwhile
/// are not delayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_fails_within_the_timeout_without_delaying_other_probes() {
    let (frozen, live) = {
        let mut dbs = MariaDb::start_many(&[21, 22]).await.expect("servers");
        let live = dbs.pop().expect("two");
        (dbs.pop().expect("two"), live)
    };
    let p = prober(vec![
        ("frozen", monitor_target(&frozen)),
        ("live", monitor_target(&live)),
    ]);
    frozen.freeze().expect("SIGSTOP");

    let slow = {
        let p = p.clone();
        tokio::spawn(async move {
            let mysql = run(&p, "frozen", CheckKind::Mysql);
            let threads = run(&p, "frozen", CheckKind::RepThreads);
            tokio::join!(mysql, threads)
        })
    };
    // While those wait on the frozen server, the live one is probed as usual.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (ok, took) = run(&p, "live", CheckKind::Mysql).await;
    assert_eq!(ok, "OK");
    // Before the frozen probes (started 100 ms earlier) could possibly have given up.
    assert!(
        took < TIMEOUT - Duration::from_millis(100),
        "live probe took {took:?}"
    );
    assert!(!slow.is_finished(), "the frozen probes are still waiting");

    let ((mysql, mysql_took), (threads, threads_took)) = slow.await.expect("no panic");
    let expected = format!(
        "Connect error (host = 127.0.0.1:{}, user = mmm_monitor)! Can't connect to MySQL server \
         on '127.0.0.1' (no answer within 1 s)",
        frozen.port()
    );
    assert_eq!(mysql, format!("ERROR: {expected}"));
    assert_eq!(threads, format!("UNKNOWN: {expected}"));
    for took in [mysql_took, threads_took] {
        assert!(
            took >= TIMEOUT && took < TIMEOUT + SLACK,
            "gave up after {took:?}"
        );
    }
    frozen.thaw().expect("SIGCONT");
}

/// A TCP proxy to `upstream` that forwards everything until the client's first command
/// (`COM_QUERY`, sequence 0), then holds the connection without answering: a server that
/// hangs after the login.
async fn stalling_proxy(upstream: std::net::SocketAddr) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
                    // Keep the client's side open when the server's ends.
                    std::future::pending::<()>().await;
                });
                loop {
                    let mut header = [0u8; 4];
                    if client_rx.read_exact(&mut header).await.is_err() {
                        break;
                    }
                    let len = usize::from(header[0])
                        | usize::from(header[1]) << 8
                        | usize::from(header[2]) << 16;
                    let mut payload = vec![0u8; len];
                    if client_rx.read_exact(&mut payload).await.is_err() {
                        break;
                    }
                    if header[3] == 0 && payload.first() == Some(&0x03) {
                        // The first query: hold everything from here on.
                        std::future::pending::<()>().await;
                    }
                    if server_tx.write_all(&header).await.is_err()
                        || server_tx.write_all(&payload).await.is_err()
                    {
                        break;
                    }
                }
                down.abort();
            });
        }
    });
    (port, task)
}

/// A server that accepts the login and then never answers the statement: every MySQL check
/// is MMM's `ERROR: Timeout` after timeout + 1 s (the `alarm`), not later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_after_the_login_is_a_timeout() {
    let db = start(31).await;
    let (port, proxy) = stalling_proxy(db.addr()).await;
    let p = prober(vec![(
        "db1",
        target_on(port, MONITOR_USER, MONITOR_PASSWORD),
    )]);
    let (mysql, threads, backlog) = tokio::join!(
        run(&p, "db1", CheckKind::Mysql),
        run(&p, "db1", CheckKind::RepThreads),
        run(&p, "db1", CheckKind::RepBacklog)
    );
    for (check, (message, took)) in [
        (CheckKind::Mysql, mysql),
        (CheckKind::RepThreads, threads),
        (CheckKind::RepBacklog, backlog),
    ] {
        assert_eq!(message, "ERROR: Timeout", "{check}");
        assert!(
            took >= TIMEOUT + ALARM_MARGIN && took < TIMEOUT + ALARM_MARGIN + SLACK,
            "{check} gave up after {took:?}"
        );
    }
    proxy.abort();
}

/// mysql: error 1040 is MMM's `UNKNOWN: Too many connections! <errstr>`, so a busy server
/// changes no state.
#[tokio::test]
async fn too_many_connections_is_unknown() {
    let db = start(41).await;
    db.exec("SET GLOBAL max_connections = 10")
        .await
        .expect("max_connections");
    // The application account has no CONNECTION ADMIN, like the monitor: fill its slots.
    let mut held: Vec<Conn> = Vec::new();
    loop {
        match db.connect(db.opts(APP_USER, APP_PASSWORD)).await {
            Ok(conn) => held.push(conn),
            Err(e) => {
                assert!(format!("{e:#}").contains("1040"), "{e:#}");
                break;
            }
        }
        assert!(held.len() < 50, "max_connections is not enforced");
    }
    let p = prober(vec![("db1", monitor_target(&db))]);
    assert_eq!(
        message(&p, "db1", CheckKind::Mysql).await,
        "UNKNOWN: Too many connections! Too many connections"
    );
    for conn in held {
        let _ = conn.disconnect().await;
    }
    assert_eq!(message(&p, "db1", CheckKind::Mysql).await, "OK");
}

/// rep_threads and rep_backlog on a server that is no replica (a master): MMM's
/// `ERROR: Replication is not set up` (SHOW SLAVE STATUS has no row).
#[tokio::test]
async fn replication_checks_on_a_master_say_replication_is_not_set_up() {
    let db = start(51).await;
    let p = prober(vec![("db1", monitor_target(&db))]);
    for check in [CheckKind::RepThreads, CheckKind::RepBacklog] {
        assert_eq!(
            message(&p, "db1", check).await,
            "ERROR: Replication is not set up",
            "{check}"
        );
    }
    assert_eq!(message(&p, "db1", CheckKind::Mysql).await, "OK");
}

/// A replica replicating passes both replication checks; after `STOP SLAVE` rep_threads is
/// MMM's `ERROR: Replication is broken` and rep_backlog fails on the NULL lag (the deliberate
/// difference from MMM, which said `OK: Backlog is null`); after `START SLAVE` both pass again.
#[tokio::test]
async fn replication_checks_pass_on_a_running_replica_and_fail_after_stop_slave() {
    let dbs = MariaDb::start_many(&[61, 62]).await.expect("servers");
    let (master, replica) = (&dbs[0], &dbs[1]);
    replica
        .replicate_from(master, true)
        .await
        .expect("replicates");
    let p = prober(vec![("db2", monitor_target(replica))]);
    assert_eq!(message(&p, "db2", CheckKind::RepThreads).await, "OK");
    assert_eq!(message(&p, "db2", CheckKind::RepBacklog).await, "OK");

    replica.exec("STOP SLAVE").await.expect("STOP SLAVE");
    assert_eq!(
        message(&p, "db2", CheckKind::RepThreads).await,
        "ERROR: Replication is broken"
    );
    assert_eq!(
        message(&p, "db2", CheckKind::RepBacklog).await,
        "ERROR: Backlog is null (replication is not running)"
    );

    replica.exec("START SLAVE").await.expect("START SLAVE");
    replica
        .wait_replicating(Duration::from_secs(10))
        .await
        .expect("replicating again");
    assert_eq!(message(&p, "db2", CheckKind::RepThreads).await, "OK");
    assert_eq!(message(&p, "db2", CheckKind::RepBacklog).await, "OK");
}

/// rep_threads compares a replica's binary log with the active master's: a clean replica
/// passes; one with a transaction of its own fails with the GTID named; the finding stands
/// while the master cannot be compared with (read-only, then gone) and ends once the replica's
/// own binary log is forgotten and the master is back.
#[tokio::test]
async fn rep_threads_finds_errant_transactions_and_keeps_the_finding_while_blind() {
    let mut dbs = replicated_table(&[71, 72], "errant").await;
    let p = prober(vec![
        ("db1", monitor_target(&dbs[0])),
        ("db2", monitor_target(&dbs[1])),
    ]);
    p.compare_with_writer(|| Some(HostName::new("db1")), |_| None);
    assert_eq!(message(&p, "db2", CheckKind::RepThreads).await, "OK");
    assert_eq!(
        message(&p, "db1", CheckKind::RepThreads).await,
        "ERROR: Replication is not set up",
        "the writer is not compared with itself"
    );

    dbs[1]
        .exec("INSERT INTO errant.t (id) VALUES (-1)")
        .await
        .expect("a write on the replica alone");
    let found = message(&p, "db2", CheckKind::RepThreads).await;
    assert!(
        found.starts_with(
            "ERROR: Errant transactions not on the active master db1: at least 1 (up to 0-72-"
        ),
        "{found}"
    );

    dbs[0]
        .exec("SET GLOBAL read_only=1")
        .await
        .expect("read_only");
    assert_eq!(
        message(&p, "db2", CheckKind::RepThreads).await,
        found,
        "not writable: it stands"
    );
    dbs[0].kill9();
    assert_eq!(
        message(&p, "db2", CheckKind::RepThreads).await,
        found,
        "gone: it stands"
    );
    // A prober of a restarted replica, with no active master any more: the committed finding
    // stands (found by the simulation, seed 7751 of a long run: without it the host went
    // ONLINE and was given the writer role).
    let fresh = prober(vec![
        ("db1", monitor_target(&dbs[0])),
        ("db2", monitor_target(&dbs[1])),
    ]);
    let committed = found.clone();
    fresh.compare_with_writer(
        || None,
        move |h| (h.as_str() == "db2").then(|| committed.clone()),
    );
    assert_eq!(
        message(&fresh, "db2", CheckKind::RepThreads).await,
        found,
        "no writer: the committed finding stands"
    );

    dbs[1]
        .exec("STOP SLAVE; SET @pos = @@gtid_slave_pos; RESET MASTER; SET GLOBAL gtid_slave_pos = @pos")
        .await
        .expect("the replica forgets its binary log");
    dbs[0].restart().await.expect("the master again");
    dbs[0]
        .exec("SET GLOBAL read_only=0")
        .await
        .expect("writable");
    assert_eq!(
        message(&p, "db2", CheckKind::RepThreads).await,
        "ERROR: Replication is broken",
        "compared again: clean, the threads judge"
    );
}

/// A master (`ids[0]`) with table `<db>.t (id INT PRIMARY KEY)` and a replica (`ids[1]`)
/// replicating from it by GTID, caught up.
async fn replicated_table(ids: &[u32; 2], db: &str) -> Vec<MariaDb> {
    let dbs = MariaDb::start_many(ids).await.expect("servers");
    let (master, replica) = (&dbs[0], &dbs[1]);
    master
        .exec(&format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY)"
        ))
        .await
        .expect("table");
    replica
        .replicate_from(master, true)
        .await
        .expect("replicates");
    replica
        .sync_with(master, Duration::from_secs(10))
        .await
        .expect("caught up");
    dbs
}

/// A replica whose SQL thread stopped on an error (a duplicate key), and one whose IO thread
/// keeps reconnecting to a dead master (`Connecting`), fail rep_threads
/// (`ERROR: Replication is broken`) and rep_backlog (NULL lag).
#[tokio::test]
async fn a_failed_sql_thread_or_a_reconnecting_io_thread_is_broken_replication() {
    let mut dbs = replicated_table(&[71, 72], "clash").await;
    {
        let (master, replica) = (&dbs[0], &dbs[1]);
        replica
            .exec("SET SESSION sql_log_bin = 0; INSERT INTO clash.t VALUES (1)")
            .await
            .expect("local row");
        master
            .exec("INSERT INTO clash.t VALUES (1)")
            .await
            .expect("master row");
        wait_slave_status(replica, "Slave_SQL_Running", "No").await;
        let sql_error = replica
            .slave_status("Last_SQL_Error")
            .await
            .expect("status")
            .unwrap_or_default();
        assert!(!sql_error.is_empty(), "the SQL thread stopped on an error");
        let p = prober(vec![("db2", monitor_target(replica))]);
        assert_eq!(
            message(&p, "db2", CheckKind::RepThreads).await,
            "ERROR: Replication is broken"
        );
        assert_eq!(
            message(&p, "db2", CheckKind::RepBacklog).await,
            "ERROR: Backlog is null (replication is not running)"
        );
        // Repair: remove the local row and let the SQL thread run again.
        replica
            .exec("SET SESSION sql_log_bin = 0; DELETE FROM clash.t; START SLAVE")
            .await
            .expect("repair");
        replica
            .wait_replicating(Duration::from_secs(10))
            .await
            .expect("replicating again");
        assert_eq!(message(&p, "db2", CheckKind::RepThreads).await, "OK");
    }
    dbs[0].kill9();
    let replica = &dbs[1];
    wait_slave_status(replica, "Slave_IO_Running", "Connecting").await;
    let p = prober(vec![("db2", monitor_target(replica))]);
    assert_eq!(
        message(&p, "db2", CheckKind::RepThreads).await,
        "ERROR: Replication is broken"
    );
    assert_eq!(
        message(&p, "db2", CheckKind::RepBacklog).await,
        "ERROR: Backlog is null (replication is not running)"
    );
}

/// rep_backlog with real lag: an event waits on the replica behind a table lock, so
/// `Seconds_Behind_Master` grows past max_backlog (2 s here): `ERROR: Backlog is too big`
/// while rep_threads still passes; once the lock is gone and the replica caught up, `OK`.
#[tokio::test]
async fn a_lagging_replica_has_too_big_a_backlog() {
    let dbs = replicated_table(&[81, 82], "lag").await;
    let (master, replica) = (&dbs[0], &dbs[1]);
    let mut lock = replica.agent_conn().await.expect("connection");
    lock.query_drop("LOCK TABLES lag.t WRITE")
        .await
        .expect("lock");
    master
        .exec("INSERT INTO lag.t VALUES (1)")
        .await
        .expect("insert");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lag = replica
            .slave_status("Seconds_Behind_Master")
            .await
            .expect("status");
        if lag.as_deref().and_then(|s| s.parse::<u64>().ok()) > Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "no lag ({lag:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = prober_with_backlog(
        vec![("db2", monitor_target(replica))],
        Duration::from_secs(2),
    );
    assert_eq!(
        message(&p, "db2", CheckKind::RepBacklog).await,
        "ERROR: Backlog is too big"
    );
    assert_eq!(message(&p, "db2", CheckKind::RepThreads).await, "OK");
    lock.query_drop("UNLOCK TABLES").await.expect("unlock");
    replica
        .sync_with(master, Duration::from_secs(10))
        .await
        .expect("caught up");
    assert_eq!(message(&p, "db2", CheckKind::RepBacklog).await, "OK");
}

/// A monitor account without the privilege SHOW SLAVE STATUS needs gets MMM's error 1227
/// message on both replication checks (with MariaDB's text naming the privilege); its mysql
/// check still passes. On MariaDB 10.5.9+ `REPLICATION CLIENT` alone (MMM's documented grant)
/// is such an account: SHOW SLAVE STATUS wants `SLAVE MONITOR`.
#[tokio::test]
async fn a_monitor_without_the_replication_privilege_gets_mmms_privilege_error() {
    let db = start(91).await;
    db.exec(
        "CREATE USER 'weak'@'%' IDENTIFIED BY 'weak-pw'; \
         CREATE USER 'mmm_doc'@'%' IDENTIFIED BY 'doc-pw'; \
         GRANT REPLICATION CLIENT, PROCESS ON *.* TO 'mmm_doc'@'%'",
    )
    .await
    .expect("accounts");
    let p = prober(vec![
        ("weak", target_on(db.port(), "weak", "weak-pw")),
        ("doc", target_on(db.port(), "mmm_doc", "doc-pw")),
    ]);
    for (host, user) in [("weak", "weak"), ("doc", "mmm_doc")] {
        for check in [CheckKind::RepThreads, CheckKind::RepBacklog] {
            let m = message(&p, host, check).await;
            assert!(
                m.starts_with(&format!(
                    "ERROR: The monitor user '{user}' doesn't have the required REPLICATION \
                     CLIENT privilege! Access denied; you need (at least one of) the "
                )),
                "{host} {check}: {m}"
            );
            assert!(m.contains("SLAVE MONITOR"), "{m}");
        }
        assert_eq!(message(&p, host, CheckKind::Mysql).await, "OK");
    }
}

/// ping: from host a of a lab, b answers (`OK`, also `ping_ip`), an address nobody has is
/// MMM's `ERROR: Could not ping <ip>` after the 0.5 s timeout.
#[test]
fn ping_answers_from_a_lab_neighbour_and_fails_for_an_unused_address() {
    let lab = Lab::new(&["a", "b"]).expect("lab");
    let b = IpAddr::V4(lab.host("b").ip);
    let spare = IpAddr::V4(lab.spare_ip(1));
    let target = |ip| Target {
        ip,
        mysql_port: 3306,
        user: MONITOR_USER.to_string(),
        password: Secret::new(MONITOR_PASSWORD),
    };
    lab.host("a")
        .run_async(|| async move {
            let p = prober(vec![("b", target(b)), ("spare", target(spare))]);
            for _ in 0..3 {
                let (ok, took) = run(&p, "b", CheckKind::Ping).await;
                assert_eq!(ok, "OK");
                assert!(took < Duration::from_millis(500), "{took:?}");
            }
            assert!(p.ping_ip(b).await);
            let (lost, took) = run(&p, "spare", CheckKind::Ping).await;
            assert_eq!(lost, format!("ERROR: Could not ping {spare}"));
            assert!(
                took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
                "{took:?}"
            );
            assert!(!p.ping_ip(spare).await);
            // Pings to both at once do not take each other's replies.
            let (ok, lost) = tokio::join!(
                run(&p, "b", CheckKind::Ping),
                run(&p, "spare", CheckKind::Ping)
            );
            assert_eq!((ok.0.as_str(), lost.0.starts_with("ERROR")), ("OK", true));
        })
        .expect("ran in the lab");
}

/// Marks the child half of the test below.
const NO_RAW_ENV: &str = "MMM_PROBE_TEST_NO_CAP_NET_RAW";

/// ping without the privilege to open an ICMP socket: every ping check says
/// `ERROR: cannot open an ICMP socket (run mmm_mond as root or give it CAP_NET_RAW): <err>`,
/// and the cause is logged once at error level, not once per probe. Runs this test binary
/// again without CAP_NET_RAW (setpriv, util-linux) in a new network namespace (unshare),
/// where `ping_group_range` allows no datagram ICMP sockets either; the child runs
/// `ping_without_cap_net_raw_child`.
#[test]
fn ping_without_cap_net_raw_says_why_and_logs_it_once() {
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("unshare")
        .args([
            "--net",
            "--",
            "setpriv",
            "--inh-caps=-net_raw",
            "--bounding-set=-net_raw",
            "--",
        ])
        .arg(exe)
        .args([
            "--exact",
            "ping_without_cap_net_raw_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(NO_RAW_ENV, "1")
        .output()
        .expect("unshare and setpriv (util-linux) run the child; they need root");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("1 passed"), "the child ran:\n{stdout}");
    let logged: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.contains("ERROR") && l.contains("mmm_mond::probe") && l.contains(NO_ICMP_SOCKET)
        })
        .collect();
    assert_eq!(logged.len(), 1, "logged once:\n{stdout}");
}

/// The child half of `ping_without_cap_net_raw_says_why_and_logs_it_once`; passes at once
/// when run directly.
#[test]
fn ping_without_cap_net_raw_child() {
    if std::env::var_os(NO_RAW_ENV).is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let p = prober(vec![("db1", target_on(3306, "u", "p"))]);
        for _ in 0..3 {
            let m = message(&p, "db1", CheckKind::Ping).await;
            assert!(
                m.starts_with(&format!("ERROR: {NO_ICMP_SOCKET}: ")) && m.len() > 80,
                "{m}"
            );
            println!("probe said: {m}");
        }
        assert!(!p.ping_ip(IpAddr::from([127, 0, 0, 1])).await);
    });
}
