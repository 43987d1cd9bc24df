//! Cloning between real MariaDB 10.11 servers by real `mmm_agentd` processes, each host in a
//! network namespace of its own, the server stopped and started by its init script
//! (`mysql_rcscript`), the copy streamed by `mariabackup` from the source's agent.
//!
//! Proven here, with a client writing to the master all along: a clone in each of MMM's modes
//! (slave-slave from a replica, master-slave, master-master) ends with the clone replicating
//! from the right master (and, master-master, the source from the clone), holding every
//! acknowledged write, with every table's CHECKSUM equal to the master's; progress is shown
//! and the source's lock times are reported. Refused: a backup without or with the wrong
//! replication account; a clone onto a host holding roles, from itself or an unknown host; a
//! copy that cannot be fetched fails and leaves the target's server and data as they were.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_agent::client::{AgentClient, CallError};
use mmm_agent::protocol::{
    CloneMode, ClonePhase, CloneProgress, CloneRequest, SetStatus, BACKUP_PATH,
};
use mmm_core::{AgentStatus, Epoch, HostName, HostState, RoleIp, RoleName};
use mmm_testkit::mariadb::{self, MariaDb};
use mmm_testkit::netns::{Host, Lab};
use mysql_async::prelude::Queryable;

const HOSTS: [&str; 3] = ["db1", "db2", "db3"];

fn write_config(dir: &Path, lab: &Lab, this: &str, rcscripts: &[PathBuf]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut text = format!(
        "active_master_role writer\n\
         this {this}\n\
         <host default>\n\
         \x20   agent_user {agent_user}\n\
         \x20   agent_password {agent_pw}\n\
         \x20   replication_user {repl_user}\n\
         \x20   replication_password {repl_pw}\n\
         \x20   pid_path {dir}/{this}.pid\n\
         \x20   bin_path /usr/lib/mysql-mmm\n\
         </host>\n",
        agent_user = mariadb::AGENT_USER,
        agent_pw = mariadb::AGENT_PASSWORD,
        repl_user = mariadb::REPL_USER,
        repl_pw = mariadb::REPL_PASSWORD,
        dir = dir.display(),
    );
    for (i, name) in HOSTS.iter().enumerate() {
        let h = lab.host(name);
        let mode = if *name == "db3" {
            "mode slave\n".to_string()
        } else {
            format!(
                "mode master\n    peer {}\n",
                if *name == "db1" { "db2" } else { "db1" }
            )
        };
        text.push_str(&format!(
            "<host {name}>\n    ip {ip}\n    {mode}    cluster_interface {iface}\n    state_dir {dir}/state-{name}\n    mysql_rcscript {rc}\n</host>\n",
            ip = h.ip,
            iface = h.interface,
            dir = dir.display(),
            rc = rcscripts[i].display(),
        ));
    }
    text.push_str(&format!(
        "<role writer>\n    hosts db1, db2\n    ips {w}\n    mode exclusive\n</role>\n\
         <role reader>\n    hosts db1, db2, db3\n    ips {r}\n    mode balanced\n</role>\n\
         <monitor_node mon1>\n    ip {mon}\n    port 9988\n</monitor_node>\n",
        w = lab.spare_ip(0),
        r = lab.spare_ip(1),
        mon = lab.host("mon").ip,
    ));
    let path = dir.join(format!("mmm_agent_{this}.conf"));
    std::fs::write(&path, text).expect("config written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn agent_addr(h: &Host) -> SocketAddr {
    SocketAddr::from((h.ip, 9989))
}

/// Runs an agent call from the monitor's namespace.
fn call<T: Send + 'static>(
    mon: &Host,
    f: impl FnOnce(AgentClient) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send,
) -> T {
    mon.run_async(move || async move {
        let client =
            AgentClient::new(Duration::from_secs(1), Duration::from_secs(20)).expect("HTTP client");
        f(client).await
    })
    .expect("runs in the monitor's namespace")
}

/// Starts a clone and follows it to its end, printing its progress.
fn clone_and_wait(mon: &Host, target: &Host, source: &str, mode: CloneMode) -> CloneProgress {
    let addr = agent_addr(target);
    let req = CloneRequest {
        host: target.name.clone(),
        source: source.to_string(),
        mode,
    };
    let first = call(mon, move |c| {
        Box::pin(async move { c.start_clone(addr, &req).await })
    })
    .unwrap_or_else(|e| panic!("the clone onto {} starts: {e}", target.name));
    assert_eq!(first.phase, ClonePhase::Copying);
    let start = Instant::now();
    let mut last_line = String::new();
    loop {
        let p = call(mon, move |c| {
            Box::pin(async move { c.clone_progress(addr).await })
        })
        .expect("progress");
        if p.line() != last_line {
            eprintln!("{}", p.line());
            last_line = p.line();
        }
        if p.finished() {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the clone onto {} did not finish within 240 s: {p:?}",
            target.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn slave_field(db: &MariaDb, field: &str) -> Option<String> {
    let mut c = db.connect(db.root_opts()).await.expect("root connection");
    let row: Option<mysql_async::Row> = c.query_first("SHOW SLAVE STATUS").await.expect("query");
    row.and_then(|r| {
        r.get_opt::<Option<String>, _>(field)
            .and_then(Result::ok)
            .flatten()
    })
}

async fn checksums(db: &MariaDb) -> Vec<(String, String)> {
    let mut c = db.connect(db.root_opts()).await.expect("root connection");
    let tables: Vec<String> = c
        .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='clonetest' ORDER BY TABLE_NAME")
        .await
        .expect("tables");
    let mut out = Vec::new();
    for t in tables {
        let row: Option<(String, Option<String>)> = c
            .query_first(format!("CHECKSUM TABLE clonetest.{t}"))
            .await
            .expect("checksum");
        let (name, sum) = row.expect("a checksum row");
        out.push((name, sum.unwrap_or_default()));
    }
    out
}

fn ip_of(h: &Host) -> String {
    Ipv4Addr::to_string(&h.ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_in_each_mmm_mode_under_write_load_and_refuses_what_it_must() {
    mariadb::check_installed().expect("MariaDB is installed");
    let lab = Lab::new(&["db1", "db2", "db3", "mon"])
        .expect("network namespaces (run as root with iproute2)");
    let [h1, h2, h3] = HOSTS.map(|n| lab.host(n).clone());
    let mon = lab.host("mon").clone();
    let (db1, db2, db3) = tokio::join!(
        MariaDb::start_in(1, &h1.ns, h1.ip),
        MariaDb::start_in(2, &h2.ns, h2.ip),
        MariaDb::start_in(3, &h3.ns, h3.ip),
    );
    let (db1, db2, db3) = (db1.expect("db1"), db2.expect("db2"), db3.expect("db3"));
    let rcscripts: Vec<PathBuf> = [&db1, &db2, &db3]
        .iter()
        .map(|d| d.write_rcscript().expect("init script"))
        .collect();

    // db1 is the master with some data; db2 replicates from it; db3 has only its own data.
    let mut c1 = db1.connect(db1.root_opts()).await.expect("db1");
    c1.query_drop(
        "CREATE DATABASE clonetest; \
         CREATE TABLE clonetest.bulk (id INT PRIMARY KEY AUTO_INCREMENT, pad VARCHAR(200)) ENGINE=InnoDB; \
         CREATE TABLE clonetest.acked (id BIGINT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE clonetest.flags (k VARCHAR(10) PRIMARY KEY, v INT) ENGINE=Aria",
    )
    .await
    .expect("schema");
    for _ in 0..20 {
        c1.query_drop(
            "INSERT INTO clonetest.bulk (pad) SELECT REPEAT('x', 200) FROM clonetest.seq_1_to_1000",
        )
        .await
        .expect("bulk rows");
    }
    c1.query_drop("INSERT INTO clonetest.flags VALUES ('a', 1), ('b', 2)")
        .await
        .expect("aria rows");
    db2.replicate_from(&db1, true)
        .await
        .expect("db2 replicates from db1");
    let mut c3 = db3.connect(db3.root_opts()).await.expect("db3");
    c3.query_drop("CREATE DATABASE only_on_db3")
        .await
        .expect("db3's own data");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut pids = Vec::new();
    for h in [&h1, &h2, &h3] {
        let config = write_config(dir.path(), &lab, &h.name, &rcscripts);
        let bin = env!("CARGO_BIN_EXE_mmm_agentd");
        let mut cmd = Lab::command(&h.ns, bin);
        cmd.arg("--config").arg(&config).env("RUST_LOG", "info");
        pids.push(lab.spawn(cmd).expect("agent started"));
    }
    for h in [&h1, &h2, &h3] {
        let addr = agent_addr(h);
        let start = Instant::now();
        while !call(&mon, move |c| {
            Box::pin(async move { c.ping(addr).await.is_ok() })
        }) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{}'s agent answers",
                h.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // A client writes to db1 all along; its acknowledged ids must all arrive.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let (stop, acked) = (stop.clone(), acked.clone());
        let opts = db1.root_opts();
        async move {
            let mut conn = mysql_async::Conn::new(opts).await.expect("writer connects");
            let mut next = 1u64;
            while !stop.load(Ordering::SeqCst) {
                if conn
                    .exec_drop("INSERT INTO clonetest.acked VALUES (?)", (next,))
                    .await
                    .is_ok()
                {
                    acked.store(next, Ordering::SeqCst);
                    next += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    // slave-slave: db3 from the replica db2, then replicating from db2's master db1.
    let p = clone_and_wait(&mon, &h3, "db2", CloneMode::SlaveSlave);
    assert_eq!(p.phase, ClonePhase::Done, "slave-slave clone: {p:?}");
    assert_eq!(p.master.as_deref(), Some("db1"));
    assert!(
        p.bytes > 4_000_000,
        "the copy carried the data: {} bytes",
        p.bytes
    );
    let report = p.source_report.clone().expect("the source's report");
    assert!(
        report.error.is_none() && report.bytes == p.bytes,
        "{report:?}"
    );
    eprintln!(
        "slave-slave: {} bytes in {} ms; the source blocked commits {} ms, DDL {} ms",
        p.bytes, p.copy_ms, report.commit_blocked_ms, report.ddl_blocked_ms
    );
    assert_eq!(
        slave_field(&db3, "Master_Host").await.as_deref(),
        Some(ip_of(&h1).as_str())
    );
    assert_eq!(
        db3.scalar(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='only_on_db3'"
        )
        .await
        .expect("query")
        .as_deref(),
        Some("0"),
        "db3's own data was replaced"
    );

    // master-slave: db3 again, now from db1 itself.
    let p = clone_and_wait(&mon, &h3, "db1", CloneMode::MasterSlave);
    assert_eq!(p.phase, ClonePhase::Done, "master-slave clone: {p:?}");
    assert_eq!(
        slave_field(&db3, "Master_Host").await.as_deref(),
        Some(ip_of(&h1).as_str())
    );

    // master-master: db2 from db1, and db1 pointed back at db2.
    let p = clone_and_wait(&mon, &h2, "db1", CloneMode::MasterMaster);
    assert_eq!(p.phase, ClonePhase::Done, "master-master clone: {p:?}");
    assert_eq!(
        slave_field(&db2, "Master_Host").await.as_deref(),
        Some(ip_of(&h1).as_str())
    );
    assert_eq!(
        slave_field(&db1, "Master_Host").await.as_deref(),
        Some(ip_of(&h2).as_str())
    );
    assert_eq!(
        slave_field(&db1, "Slave_IO_Running").await.as_deref(),
        Some("Yes")
    );
    assert_eq!(
        slave_field(&db1, "Slave_SQL_Running").await.as_deref(),
        Some("Yes")
    );

    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer ends");
    let acked = acked.load(Ordering::SeqCst);
    assert!(
        acked > 100,
        "the client kept writing during the clones ({acked} writes)"
    );
    for db in [&db2, &db3] {
        db.sync_with(&db1, Duration::from_secs(30))
            .await
            .expect("the clone catches up");
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM clonetest.acked")
                .await
                .expect("count")
                .as_deref(),
            Some(acked.to_string().as_str()),
            "every acknowledged write reached server {}",
            db.server_id()
        );
        assert_eq!(
            checksums(db).await,
            checksums(&db1).await,
            "server {} matches db1",
            db.server_id()
        );
    }

    // Refusals. A backup needs the replication account.
    let backup_url = format!("http://{}{BACKUP_PATH}", agent_addr(&h1));
    let statuses = mon
        .run_async(move || async move {
            let http = reqwest::Client::new();
            let none = http.get(&backup_url).send().await.expect("answer").status();
            let wrong = http
                .get(&backup_url)
                .basic_auth(mariadb::REPL_USER, Some("guess"))
                .send()
                .await
                .expect("answer")
                .status();
            (none.as_u16(), wrong.as_u16())
        })
        .expect("runs");
    assert_eq!(statuses, (401, 403), "no credentials, then wrong ones");

    // Not from itself, not from an unknown host, not onto a host with roles.
    let refused = |source: &str| {
        let req = CloneRequest {
            host: "db3".into(),
            source: source.into(),
            mode: CloneMode::MasterSlave,
        };
        let addr = agent_addr(&h3);
        call(&mon, move |c| {
            Box::pin(async move { c.start_clone(addr, &req).await })
        })
    };
    for (source, code, text) in [("db3", 400, "from itself"), ("db9", 400, "not a host")] {
        match refused(source) {
            Err(CallError::Refused { status, error, .. }) => {
                assert_eq!(status, code, "{error}");
                assert!(error.contains(text), "{error}");
            }
            other => panic!("a clone from {source} is refused: {other:?}"),
        }
    }
    let reader = lab.spare_ip(1);
    let with_roles = SetStatus::from(AgentStatus {
        host: HostName::new("db3"),
        state: HostState::Online,
        roles: vec![RoleIp::new(RoleName::new("reader"), reader.into())],
        active_master: Some(HostName::new("db1")),
        epoch: Epoch(1),
    });
    let addr3 = agent_addr(&h3);
    call(&mon, move |c| {
        Box::pin(async move {
            c.set_status(addr3, &with_roles, Duration::from_secs(20))
                .await
        })
    })
    .expect("db3 takes a reader role");
    match refused("db1") {
        Err(CallError::Refused {
            status: 409, error, ..
        }) => {
            assert!(error.contains("holds roles"), "{error}")
        }
        other => panic!("a clone onto a host with roles is refused: {other:?}"),
    }
    let without_roles = SetStatus::from(AgentStatus {
        host: HostName::new("db3"),
        state: HostState::AdminOffline,
        roles: vec![],
        active_master: Some(HostName::new("db1")),
        epoch: Epoch(1),
    });
    call(&mon, move |c| {
        Box::pin(async move {
            c.set_status(addr3, &without_roles, Duration::from_secs(20))
                .await
        })
    })
    .expect("db3 gives up its role");

    // A copy that cannot be fetched (the source's agent is gone) changes nothing on the target.
    lab.kill(pids[0]).expect("db1's agent killed");
    let before = db3
        .scalar("SELECT @@gtid_current_pos")
        .await
        .expect("db3 answers");
    let p = clone_and_wait(&mon, &h3, "db1", CloneMode::MasterSlave);
    assert_eq!(p.phase, ClonePhase::Failed, "{p:?}");
    let error = p.error.unwrap_or_default();
    assert!(error.contains("asking db1's agent for a backup"), "{error}");
    assert_eq!(
        db3.scalar("SELECT @@gtid_current_pos")
            .await
            .expect("db3 still answers"),
        before
    );
    let parent = db3.datadir().parent().expect("parent").to_path_buf();
    assert!(
        !parent.join(".data.mmm-clone").exists() && !parent.join(".data.mmm-old").exists(),
        "no staging or old directory is left"
    );
}
