//! `mysql::Server` against real MariaDB servers (Debian's `mariadb-server`, started by
//! `mmm-testkit`): read_only, the connection killer on demotion, the relay-log catch-up before a
//! promotion, re-pointing replicas by GTID and by file/position, status, and failures
//! (kill -9, SIGSTOP, wrong credentials), and the server's process seen through its pid file.

use std::time::{Duration, Instant};

use mmm_agent::mysql::{Endpoint, Server, ServerOptions};
use mmm_agent::ops::{Mysql, MysqlError, ReplicaStatus, RepointMethod, Repointed, Source};
use mmm_agent::pidfile::PidState;
use mmm_config::Secret;
use mmm_testkit::mariadb::{MariaDb, AGENT_PASSWORD, AGENT_USER, REPL_PASSWORD, REPL_USER};
use mysql_async::prelude::Queryable;

const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

fn options(db: &MariaDb) -> ServerOptions {
    ServerOptions {
        endpoint: Endpoint::Tcp {
            host: db.host().to_string(),
            port: db.port(),
        },
        user: AGENT_USER.to_string(),
        password: Secret::new(AGENT_PASSWORD),
        connect_timeout: Duration::from_secs(1),
        query_timeout: QUERY_TIMEOUT,
        catchup_timeout: Duration::from_secs(5),
        pidfile: None,
    }
}

fn server(db: &MariaDb) -> Server {
    Server::new(options(db))
}

fn source(name: &str, db: &MariaDb) -> Source {
    Source {
        name: name.to_string(),
        host: db.host().to_string(),
        port: db.port(),
        replication_user: REPL_USER.to_string(),
        replication_password: Secret::new(REPL_PASSWORD),
        agent_user: AGENT_USER.to_string(),
        agent_password: Secret::new(AGENT_PASSWORD),
    }
}

/// Rows in `t.x` on `db`.
async fn rows(db: &MariaDb) -> u64 {
    db.scalar("SELECT COUNT(*) FROM t.x")
        .await
        .expect("count")
        .expect("a count")
        .parse()
        .expect("a number")
}

/// Inserts `n` rows on `db`, one transaction each, as the agent account (not bound by
/// read_only).
async fn insert(db: &MariaDb, n: usize) {
    let mut conn = db.agent_conn().await.expect("connect");
    for _ in 0..n {
        conn.query_drop("INSERT INTO t.x (v) VALUES ('row')")
            .await
            .expect("insert");
    }
}

const SCHEMA: &str =
    "CREATE DATABASE t; CREATE TABLE t.x (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))";

/// The error code of a server error.
fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// `ER_OPTION_PREVENTS_STATEMENT`: "running with the --read-only option".
const ER_READ_ONLY: u16 = 1290;

#[tokio::test]
async fn read_only_is_set_reported_and_stops_client_writes() {
    let db = MariaDb::start(1).await.expect("MariaDB starts");
    let s = server(&db);
    db.exec(SCHEMA).await.expect("schema");

    let st = s.status().await.expect("status");
    assert!(st.mariadb && st.version.contains("MariaDB"), "{st:?}");
    assert!(!st.read_only);
    assert_eq!(st.super_read_only, None, "MariaDB has no super_read_only");

    s.set_read_only(true).await.expect("read_only on");
    assert!(s.status().await.expect("status").read_only);
    s.set_read_only(true).await.expect("again: nothing to do");
    let mut app = db.app_conn().await.expect("app connects");
    let err = app
        .query_drop("INSERT INTO t.x (v) VALUES ('no')")
        .await
        .expect_err("read_only stops the application");
    assert_eq!(server_code(&err), Some(ER_READ_ONLY), "{err}");

    s.set_read_only(false).await.expect("read_only off");
    assert!(!s.status().await.expect("status").read_only);
    app.query_drop("INSERT INTO t.x (v) VALUES ('yes')")
        .await
        .expect("writable again");
    assert_eq!(rows(&db).await, 1);

    // Not a replica: nothing to wait for, start or stop.
    let t0 = Instant::now();
    s.wait_relay_applied(Duration::from_secs(5))
        .await
        .expect("not a replica");
    assert!(t0.elapsed() < Duration::from_secs(1));
    s.set_replication(true).await.expect("nothing to start");
    s.set_replication(false).await.expect("nothing to stop");

    // The same over the Unix socket.
    let mut over_socket = options(&db);
    over_socket.endpoint = Endpoint::Socket(db.socket_path());
    let by_socket = Server::new(over_socket);
    by_socket.ping().await.expect("ping over the socket");
    assert!(!by_socket.status().await.expect("status").read_only);
}

#[tokio::test]
async fn read_only_does_not_wait_behind_a_running_write() {
    let db = MariaDb::start(1).await.expect("MariaDB starts");
    let s = server(&db);
    db.exec(SCHEMA).await.expect("schema");

    // A write that holds its locks for 30 s: `SET GLOBAL read_only=1` waits for it.
    let mut app = db.app_conn().await.expect("app connects");
    let write =
        tokio::spawn(async move { app.query_drop("INSERT INTO t.x (v) SELECT SLEEP(30)").await });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running = db
            .scalar(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'INSERT INTO t.x (v) SELECT SLEEP%'",
            )
            .await
            .expect("processlist");
        if running.as_deref() == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "the write never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t0 = Instant::now();
    s.set_read_only(true)
        .await
        .expect("read_only goes through by killing the write");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}; waiting behind the write would take {QUERY_TIMEOUT:?} and fail"
    );
    assert!(s.status().await.expect("status").read_only);
    let outcome = tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .expect("the write ends at once")
        .expect("task");
    assert!(outcome.is_err(), "the write was killed");
    assert_eq!(rows(&db).await, 0, "nothing was written");
}

#[tokio::test]
async fn demotion_kills_client_sessions_but_not_replication() {
    let [a, b]: [MariaDb; 2] = MariaDb::start_many(&[1, 2])
        .await
        .expect("MariaDB starts")
        .try_into()
        .expect("two");
    b.replicate_from(&a, true).await.expect("b replicates a");
    a.exec(SCHEMA).await.expect("schema");
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("sync");
    let sa = server(&a);
    let sb = server(&b);
    sa.ping().await.expect("ping");
    let own = sa.own_connection_ids();
    assert!(!own.is_empty());

    // An idle session with an open transaction, and a busy one.
    let mut idle = a.app_conn().await.expect("app connects");
    idle.query_drop("BEGIN").await.expect("begin");
    idle.query_drop("INSERT INTO t.x (v) VALUES ('uncommitted')")
        .await
        .expect("insert");
    let mut busy = a.app_conn().await.expect("app connects");
    let busy = tokio::spawn(async move { busy.query_drop("SELECT SLEEP(60)").await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    sa.set_read_only(true).await.expect("read_only");
    let killed = sa
        .kill_client_sessions(10, Duration::from_millis(100))
        .await
        .expect("kill");
    assert!(killed.killed >= 2, "{killed:?}");
    assert!(
        killed.passes >= 2 && killed.passes <= 11,
        "a pass that kills is followed by one that finds nothing: {killed:?}"
    );

    let commit = idle.query_drop("COMMIT").await;
    assert!(commit.is_err(), "the idle session is gone: {commit:?}");
    let busy = tokio::time::timeout(Duration::from_secs(5), busy)
        .await
        .expect("the busy session ends at once")
        .expect("task");
    assert!(busy.is_err(), "the busy session was killed");
    assert_eq!(rows(&a).await, 0, "the open transaction was rolled back");

    // The agent's own connection survived; replication too.
    assert_eq!(sa.own_connection_ids(), own, "own connection kept");
    sa.ping().await.expect("ping");
    let dumps = a
        .scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        )
        .await
        .expect("processlist");
    assert_eq!(
        dumps.as_deref(),
        Some("1"),
        "the replica's dump thread is spared"
    );
    let replica = replica_status(&sb).await;
    assert!(replica.io_running && replica.sql_running, "{replica:?}");
    insert(&a, 3).await;
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("replication still flows");
    assert_eq!(rows(&b).await, 3);

    // The killer on a replica spares its IO and SQL threads.
    let mut reader = b.app_conn().await.expect("app connects to the replica");
    reader.query_drop("SELECT 1").await.expect("select");
    let killed = sb
        .kill_client_sessions(3, Duration::from_millis(50))
        .await
        .expect("kill on the replica");
    assert_eq!(killed.killed, 1, "only the application session: {killed:?}");
    assert!(reader.query_drop("SELECT 1").await.is_err(), "killed");
    let replica = replica_status(&sb).await;
    assert!(replica.io_running && replica.sql_running, "{replica:?}");
    insert(&a, 2).await;
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("replication still flows");
    assert_eq!(rows(&b).await, 5);
}

/// `SHOW SLAVE STATUS` through the agent's `Server`; the server must be a replica.
async fn replica_status(server: &Server) -> ReplicaStatus {
    server
        .status()
        .await
        .expect("status")
        .replica
        .expect("a replica")
}

/// `SHOW MASTER STATUS`: file and position.
async fn master_position(db: &MariaDb) -> (String, u64) {
    let mut conn = db.agent_conn().await.expect("connect");
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("master status")
        .expect("binlog on");
    let (file, pos, _, _): (String, u64, String, String) = mysql_async::from_row(row);
    (file, pos)
}

/// Waits until `replica`'s IO thread has received everything `master` has written.
async fn wait_received(replica: &Server, master: &MariaDb) {
    let (file, pos) = master_position(master).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = replica_status(replica).await;
        if r.received.file == file && r.received.pos == pos {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never received {file}:{pos}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn promotion_waits_for_the_relay_log_to_be_applied() {
    let [a, b, c]: [MariaDb; 3] = MariaDb::start_many(&[1, 2, 3])
        .await
        .expect("MariaDB starts")
        .try_into()
        .expect("three");
    b.replicate_from(&a, true)
        .await
        .expect("b replicates a by GTID");
    c.replicate_from(&a, false)
        .await
        .expect("c replicates a by file/position");
    a.exec(SCHEMA).await.expect("schema");
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("sync b");
    c.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("sync c");
    let (sb, sc) = (server(&b), server(&c));
    assert!(replica_status(&sb).await.using_gtid);
    assert!(!replica_status(&sc).await.using_gtid);

    b.exec("STOP SLAVE SQL_THREAD")
        .await
        .expect("stop b's SQL thread");
    c.exec("STOP SLAVE SQL_THREAD")
        .await
        .expect("stop c's SQL thread");
    insert(&a, 200).await;
    wait_received(&sb, &a).await;
    wait_received(&sc, &a).await;
    assert_eq!(rows(&b).await, 0);

    // Never restarted: a timeout that says why.
    for (s, how) in [(&sb, "GTID"), (&sc, "file/position")] {
        let t0 = Instant::now();
        let e = s
            .wait_relay_applied(Duration::from_millis(500))
            .await
            .expect_err("cannot catch up");
        assert!(matches!(e, MysqlError::Timeout { .. }), "{how}: {e}");
        assert!(
            e.to_string().contains("SQL thread is not running"),
            "{how}: {e}"
        );
        assert!(
            t0.elapsed() < Duration::from_millis(2500),
            "{how}: {:?}",
            t0.elapsed()
        );
    }

    // Restarted later: the wait blocks until then and returns once every row is applied.
    let restart_after = Duration::from_millis(1500);
    let t0 = Instant::now();
    async fn timed(
        how: &'static str,
        server: &Server,
        t0: Instant,
    ) -> (&'static str, Result<(), MysqlError>, Duration) {
        let r = server.wait_relay_applied(Duration::from_secs(30)).await;
        (how, r, t0.elapsed())
    }
    let restart = async {
        tokio::time::sleep(restart_after).await;
        b.exec("START SLAVE SQL_THREAD").await.expect("restart b");
        c.exec("START SLAVE SQL_THREAD").await.expect("restart c");
    };
    let (gtid, pos, ()) = tokio::join!(
        timed("GTID", &sb, t0),
        timed("file/position", &sc, t0),
        restart
    );
    for (how, result, took) in [gtid, pos] {
        result.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert!(
            took >= restart_after,
            "{how}: returned after {took:?}, before the restart"
        );
    }
    // Checked right after the waits returned.
    assert_eq!(rows(&b).await, 200, "all applied on b");
    assert_eq!(rows(&c).await, 200, "all applied on c");

    // A SQL thread stopped on an error fails the catch-up at once, with the error.
    c.exec("SET sql_log_bin=0; INSERT INTO t.x (id, v) VALUES (1000, 'conflict')")
        .await
        .expect("local row on c");
    a.exec("INSERT INTO t.x (id, v) VALUES (1000, 'from a')")
        .await
        .expect("row on a");
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .slave_status("Last_SQL_Error")
        .await
        .expect("status")
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "c's SQL thread never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    let e = sc
        .wait_relay_applied(Duration::from_secs(10))
        .await
        .expect_err("cannot catch up");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(e.to_string().contains("Duplicate entry"), "{e}");
}

#[tokio::test]
async fn repointing_by_gtid_and_by_file_position() {
    let [a, b, c]: [MariaDb; 3] = MariaDb::start_many(&[1, 2, 3])
        .await
        .expect("MariaDB starts")
        .try_into()
        .expect("three");
    // a and b co-masters, c a replica of a.
    b.replicate_from(&a, true).await.expect("b replicates a");
    a.replicate_from(&b, true).await.expect("a replicates b");
    c.replicate_from(&a, true).await.expect("c replicates a");
    a.exec(SCHEMA).await.expect("schema");
    insert(&a, 10).await;
    c.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("sync c");
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("sync b");
    let sc = server(&c);

    // By GTID, to b.
    let how = sc
        .repoint(&source("b", &b), RepointMethod::Auto)
        .await
        .expect("repoint");
    assert_eq!(how, Repointed::Gtid);
    let r = replica_status(&sc).await;
    assert_eq!(r.master_port, b.port());
    assert!(r.io_running && r.sql_running && r.using_gtid, "{r:?}");
    insert(&b, 5).await;
    c.sync_with(&b, Duration::from_secs(10))
        .await
        .expect("b's writes reach c");
    insert(&a, 5).await;
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("a to b");
    c.sync_with(&b, Duration::from_secs(10))
        .await
        .expect("a's writes reach c through b");
    assert_eq!(rows(&c).await, 20);

    let how = sc
        .repoint(&source("b", &b), RepointMethod::Auto)
        .await
        .expect("again");
    assert_eq!(how, Repointed::AlreadyThere);

    // Co-masters that both took writes (their own come back from the other) catch up at once:
    // the usual promotion of MMM's passive master.
    for co in [&a, &b] {
        let t0 = Instant::now();
        server(co)
            .wait_relay_applied(Duration::from_secs(5))
            .await
            .expect("a co-master catches up");
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    }

    // By file/position (MMM's method), back to a.
    let how = sc
        .repoint(&source("a", &a), RepointMethod::FilePosition)
        .await
        .expect("repoint");
    let Repointed::FilePosition(pos) = how else {
        panic!("{how:?}");
    };
    let a_file = a
        .scalar("SELECT @@log_bin_basename")
        .await
        .expect("basename")
        .expect("binlog on");
    assert!(
        a_file.ends_with(pos.file.split('.').next().expect("base")),
        "{pos:?}"
    );
    let r = replica_status(&sc).await;
    assert_eq!(r.master_port, a.port());
    assert!(r.io_running && r.sql_running && !r.using_gtid, "{r:?}");
    assert_eq!(r.received.file, pos.file);
    insert(&a, 7).await;
    c.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("a's writes reach c");
    assert_eq!(rows(&c).await, 27);

    // Auto goes back to GTID: c has GTID history.
    let how = sc
        .repoint(&source("b", &b), RepointMethod::Auto)
        .await
        .expect("repoint");
    assert_eq!(how, Repointed::Gtid);
    insert(&b, 1).await;
    c.sync_with(&b, Duration::from_secs(10))
        .await
        .expect("b's writes reach c");
    assert_eq!(rows(&c).await, 28);

    // The new master refuses the agent's account (file/position reads its binlog position):
    // an error, and replication from the old source goes on.
    let mut refused = source("a", &a);
    refused.agent_password = Secret::new("wrong-agent-pw");
    let e = sc
        .repoint(&refused, RepointMethod::FilePosition)
        .await
        .expect_err("cannot read a's position");
    assert!(matches!(e, MysqlError::Unreachable { .. }), "{e}");
    assert!(!e.to_string().contains("wrong-agent-pw"), "{e}");
    // START SLAVE returns before the IO thread has reconnected ("Connecting"): poll.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = replica_status(&sc).await;
        assert_eq!(r.master_port, b.port());
        if r.io_running && r.sql_running {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not restarted: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    insert(&b, 1).await;
    c.sync_with(&b, Duration::from_secs(10))
        .await
        .expect("still replicating from b");

    // Wrong replication password: the IO thread's error, and no password in it.
    let mut bad = source("a", &a);
    bad.replication_password = Secret::new("not-the-password");
    let e = sc
        .repoint(&bad, RepointMethod::Auto)
        .await
        .expect_err("cannot log in");
    let text = e.to_string();
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(!text.contains(REPL_PASSWORD), "{text}");
}

/// A failover re-points a semi-sync replica while its old source is gone (cut off, or hung as
/// here: SIGSTOP). MariaDB's `STOP SLAVE` on such a replica waits 2 s for the source (it
/// connects there to end its dump thread); the agent kills the IO thread first, so the
/// re-pointing does not wait, and the new master's first commits get their semi-sync
/// acknowledgement sooner.
#[tokio::test]
async fn repointing_a_semi_sync_replica_away_from_a_hung_source_does_not_wait_for_it() {
    let [a, b, c]: [MariaDb; 3] = MariaDb::start_many(&[1, 2, 3])
        .await
        .expect("MariaDB starts")
        .try_into()
        .expect("three");
    a.exec("SET GLOBAL rpl_semi_sync_master_enabled=1, rpl_semi_sync_master_timeout=3000")
        .await
        .expect("semi-sync on a");
    for replica in [&b, &c] {
        replica
            .exec("SET GLOBAL rpl_semi_sync_slave_enabled=1")
            .await
            .expect("semi-sync replica");
        replica
            .replicate_from(&a, true)
            .await
            .expect("replicates a");
    }
    a.exec(SCHEMA).await.expect("schema");
    insert(&a, 5).await;
    for replica in [&b, &c] {
        replica
            .sync_with(&a, Duration::from_secs(10))
            .await
            .expect("in sync");
    }
    let semi = c
        .scalar(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_SLAVE_STATUS'",
        )
        .await
        .expect("status");
    assert_eq!(semi.as_deref(), Some("ON"), "c is a semi-sync replica");
    a.freeze().expect("SIGSTOP a");

    let sc = server(&c);
    let t0 = Instant::now();
    let how = sc
        .repoint(&source("b", &b), RepointMethod::Auto)
        .await
        .expect("repoint");
    let took = t0.elapsed();
    a.thaw().expect("SIGCONT a");
    assert_eq!(how, Repointed::Gtid);
    let r = replica_status(&sc).await;
    assert!(
        r.io_running && r.sql_running && r.master_port == b.port(),
        "{r:?}"
    );
    // Without the kill: 2.0 s (MariaDB 10.11); with it, tens of milliseconds.
    assert!(
        took < Duration::from_millis(1500),
        "re-pointing waited for the hung source: {took:?}"
    );
    insert(&b, 3).await;
    c.sync_with(&b, Duration::from_secs(10))
        .await
        .expect("b's writes reach c");
    assert_eq!(rows(&c).await, 8);
}

#[tokio::test]
async fn status_of_a_master_and_a_replica() {
    let [a, b]: [MariaDb; 2] = MariaDb::start_many(&[1, 2])
        .await
        .expect("MariaDB starts")
        .try_into()
        .expect("two");
    b.replicate_from(&a, true).await.expect("b replicates a");
    a.exec(SCHEMA).await.expect("schema");
    insert(&a, 3).await;
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("sync");
    let (sa, sb) = (server(&a), server(&b));

    let gtid = a
        .scalar("SELECT @@gtid_binlog_pos")
        .await
        .expect("gtid")
        .expect("gtid");
    let (file, pos) = master_position(&a).await;

    let m = sa.status().await.expect("master status");
    assert!(
        m.mariadb && !m.read_only && m.super_read_only.is_none(),
        "{m:?}"
    );
    assert!(m.uptime_secs < 600, "{m:?}");
    let binlog = m.binlog.clone().expect("binlog");
    assert_eq!((binlog.file.as_str(), binlog.pos), (file.as_str(), pos));
    assert_eq!(m.gtid_executed.as_deref(), Some(gtid.as_str()));
    assert_eq!(m.replica, None);

    let s = sb.status().await.expect("replica status");
    assert_eq!(s.gtid_executed.as_deref(), Some(gtid.as_str()));
    let r = s.replica.expect("a replica");
    assert_eq!(
        (r.master_host.as_str(), r.master_port),
        ("127.0.0.1", a.port())
    );
    assert!(r.io_running && r.sql_running && r.using_gtid, "{r:?}");
    assert_eq!(r.seconds_behind, Some(0));
    assert_eq!(
        (r.received.file.as_str(), r.received.pos),
        (file.as_str(), pos)
    );
    assert_eq!(r.applied, r.received);
    assert_eq!(r.gtid_received.as_deref(), Some(gtid.as_str()));
    assert_eq!((r.last_io_error, r.last_sql_error), (None, None));

    // STOP SLAVE / START SLAVE.
    sb.set_replication(false).await.expect("stop");
    let r = replica_status(&sb).await;
    assert!(!r.io_running && !r.sql_running, "{r:?}");
    assert_eq!(r.seconds_behind, None, "NULL while stopped");
    sb.set_replication(true).await.expect("start");
    b.wait_replicating(Duration::from_secs(10))
        .await
        .expect("running again");
    insert(&a, 1).await;
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("flows again");
}

#[tokio::test]
async fn unreachable_when_killed_or_hung() {
    let mut db = MariaDb::start(1).await.expect("MariaDB starts");
    let s = server(&db);
    s.ping().await.expect("ping");

    // Hung (SIGSTOP): bounded, not stuck.
    db.freeze().expect("SIGSTOP");
    let t0 = Instant::now();
    let e = s.ping().await.expect_err("a hung server does not answer");
    assert!(matches!(e, MysqlError::Unreachable { .. }), "{e}");
    let e = s.status().await.expect_err("nor to status");
    assert!(matches!(e, MysqlError::Unreachable { .. }), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    db.thaw().expect("SIGCONT");
    s.ping().await.expect("answers again");
    s.status().await.expect("status again");

    // Killed: refused at once.
    db.kill9();
    let t0 = Instant::now();
    for e in [
        s.ping().await.expect_err("ping"),
        s.status().await.expect_err("status"),
        s.set_read_only(true).await.expect_err("read_only"),
        s.kill_client_sessions(1, Duration::ZERO)
            .await
            .expect_err("kill"),
    ] {
        match e {
            MysqlError::Unreachable { addr, .. } => {
                assert_eq!(addr, format!("127.0.0.1:{}", db.port()))
            }
            other => panic!("{other}"),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());

    // Back after a restart: a new connection.
    db.restart().await.expect("restart");
    s.ping().await.expect("ping after restart");
    assert!(!s.status().await.expect("status").read_only);
}

#[tokio::test]
async fn the_pid_file_shows_a_killed_or_stopped_server_gone_and_a_hung_one_alive() {
    let mut db = MariaDb::start(1).await.expect("MariaDB starts");
    let s = Server::new(ServerOptions {
        pidfile: Some(db.pidfile()),
        ..options(&db)
    });
    let pid = db.pid().expect("running");
    assert_eq!(s.pidfile_state(), Some(PidState::Alive(pid)));
    assert_eq!(s.process_gone(), None);

    // Hung is not dead: the ping decides that one.
    db.freeze().expect("SIGSTOP");
    assert_eq!(s.process_gone(), None, "a stopped process still runs");
    db.thaw().expect("SIGCONT");

    // kill -9 leaves the pid file behind, naming a process that is no more.
    db.kill9();
    let gone = s.process_gone().expect("a killed server is gone");
    assert!(gone.contains(&format!("process {pid} ")), "{gone}");

    db.restart().await.expect("restart");
    let pid = db.pid().expect("running again");
    assert_eq!(s.pidfile_state(), Some(PidState::Alive(pid)));
    assert_eq!(s.process_gone(), None);

    // A clean shutdown removes the file.
    db.stop().await.expect("stop");
    let gone = s.process_gone().expect("a stopped server is gone");
    assert!(gone.contains("was removed"), "{gone}");
}

#[tokio::test]
async fn a_new_writer_waits_until_it_has_executed_the_old_writers_last_position() {
    let mut dbs = MariaDb::start_many(&[1, 2]).await.expect("MariaDB starts");
    let b = dbs.pop().unwrap();
    let a = dbs.pop().unwrap();
    b.replicate_from(&a, true)
        .await
        .expect("b replicates from a");
    b.wait_replicating(Duration::from_secs(10))
        .await
        .expect("running");
    a.exec(SCHEMA).await.expect("schema");
    insert(&a, 3).await;
    let (sa, sb) = (server(&a), server(&b));
    let old = sa
        .executed_position()
        .await
        .expect("position")
        .expect("a has GTIDs");
    sb.wait_executed(&old, Duration::from_secs(10))
        .await
        .expect("b gets there");

    // b stops receiving; a writes on: b cannot have a's last writes.
    b.exec("STOP SLAVE IO_THREAD").await.expect("stop IO");
    insert(&a, 2).await;
    let last = sa
        .executed_position()
        .await
        .expect("position")
        .expect("GTIDs");
    assert_ne!(last, old);
    let t0 = Instant::now();
    let e = sb
        .wait_executed(&last, Duration::from_millis(300))
        .await
        .expect_err("b lacks a's last writes");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "waited the limit"
    );
    match &e {
        MysqlError::Timeout { what, .. } => assert!(what.contains(&last), "{e}"),
        other => panic!("{other}"),
    }

    // Once it receives them, the wait ends; b's own later writes do not confuse it.
    b.exec("START SLAVE IO_THREAD").await.expect("start IO");
    sb.wait_executed(&last, Duration::from_secs(10))
        .await
        .expect("b caught up");
    insert(&b, 1).await;
    let b_now = sb
        .executed_position()
        .await
        .expect("position")
        .expect("GTIDs");
    sb.wait_executed(&last, Duration::ZERO)
        .await
        .expect("still covered after b's own write");
    assert_ne!(b_now, last, "b's own write is in its position: {b_now}");

    let e = sb
        .wait_executed("not-a-position", Duration::ZERO)
        .await
        .expect_err("garbage");
    assert!(e.to_string().contains("not-a-position"), "{e}");
}

/// The replication connections a server has (MariaDB multi-source), by name.
async fn connections(db: &MariaDb) -> Vec<String> {
    let mut conn = db.agent_conn().await.expect("connect");
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW ALL SLAVES STATUS")
        .await
        .expect("SHOW ALL SLAVES STATUS");
    rows.iter()
        .map(|r| r.get::<String, _>("Connection_name").expect("a name"))
        .collect()
}

#[tokio::test]
async fn a_new_writer_fetches_what_a_more_advanced_peer_executed_and_leaves_replication_as_it_was()
{
    // a: the old writer; b: the new writer; c: a slave of a. b stops receiving, a writes two
    // more transactions that only c gets (c could have acknowledged them), then a dies.
    let mut dbs = MariaDb::start_many(&[1, 2, 3])
        .await
        .expect("MariaDB starts");
    let c = dbs.pop().unwrap();
    let b = dbs.pop().unwrap();
    let mut a = dbs.pop().unwrap();
    for r in [&b, &c] {
        r.replicate_from(&a, true).await.expect("replicates from a");
        r.wait_replicating(Duration::from_secs(10))
            .await
            .expect("running");
    }
    a.exec(SCHEMA).await.expect("schema");
    insert(&a, 3).await;
    b.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("b synced");
    b.exec("STOP SLAVE IO_THREAD").await.expect("stop b's IO");
    insert(&a, 2).await;
    c.sync_with(&a, Duration::from_secs(10))
        .await
        .expect("c synced");
    a.kill9();
    b.exec("START SLAVE IO_THREAD").await.expect("start b's IO");
    let (sb, sc) = (server(&b), server(&c));

    let peer = sb
        .peer_executed(&source("c", &c), None, Duration::from_secs(1))
        .await
        .expect("c's position")
        .expect("c has GTIDs");
    assert_eq!(Some(peer.clone()), sc.executed_position().await.expect("c"));
    let own = sb.executed_position().await.expect("b").expect("GTIDs");
    assert_ne!(own, peer, "b lacks c's last two transactions");
    assert_eq!(rows(&b).await, 3);

    // Semi-sync on at b, no replica of b connected: a fetched transaction must not wait for
    // an acknowledgement (it exists on c already).
    b.exec(
        "SET GLOBAL rpl_semi_sync_master_enabled=ON, rpl_semi_sync_master_timeout=4000, \
         rpl_semi_sync_master_wait_no_slave=ON",
    )
    .await
    .expect("semi-sync on b");
    sb.catch_up_from(&source("c", &c), &peer, Duration::from_secs(10))
        .await
        .expect("b fetches from c");
    assert_eq!(rows(&b).await, 5, "b has every transaction c has");
    let log = b.log_tail(200);
    assert!(
        !log.contains("Timeout waiting for reply of binlog"),
        "a fetched transaction waited for a semi-sync acknowledgement:\n{log}"
    );
    assert_eq!(
        b.scalar("SELECT @@rpl_semi_sync_master_enabled")
            .await
            .expect("variable")
            .as_deref(),
        Some("1"),
        "semi-sync is on again"
    );
    sb.wait_executed(&peer, Duration::ZERO)
        .await
        .expect("b has executed c's position");
    assert_eq!(
        connections(&b).await,
        [""],
        "the catch-up connection is gone"
    );
    let default = replica_status(&sb).await;
    assert_eq!(default.master_port, a.port(), "still pointed at a");
    assert!(
        default.sql_running,
        "the default connection runs again: {default:?}"
    );

    // c can now replicate from b: b has c's last GTID.
    let repointed = sc
        .repoint(&source("b", &b), RepointMethod::Auto)
        .await
        .expect("c re-points to b");
    assert_eq!(repointed, Repointed::Gtid);
    insert(&b, 1).await;
    c.sync_with(&b, Duration::from_secs(10))
        .await
        .expect("c follows b");
    assert_eq!(rows(&c).await, 6);

    // A peer that cannot give what it claims (its binlog was purged) fails with the reason,
    // and still leaves no catch-up connection behind.
    let e = sb
        .catch_up_from(&source("c", &c), "0-3-99999", Duration::from_secs(2))
        .await
        .expect_err("c never had that");
    assert!(e.to_string().contains("0-3-99999"), "{e}");
    assert_eq!(connections(&b).await, [""]);
}
