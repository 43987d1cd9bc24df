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
        from_dir: None,
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

/// One lab at a time: each runs three MariaDB servers and their agents on two cores.
static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A built binary of the workspace (`cargo test --workspace` builds them beside mmm_mond).
fn binary(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_mmm_mond")).with_file_name(name);
    assert!(
        p.exists(),
        "{} not found: build it first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// Three hosts with MariaDB and their agents, and a host to call them from: db1 is a master
/// with some data (InnoDB and Aria), db2 replicates from it, db3 has only data of its own.
struct Setup {
    lab: Lab,
    hosts: [Host; 3],
    mon: Host,
    dbs: [MariaDb; 3],
    dir: tempfile::TempDir,
    agents: Vec<u32>,
}

impl Setup {
    async fn start() -> Setup {
        mariadb::check_installed().expect("MariaDB is installed");
        let lab = Lab::new(&["db1", "db2", "db3", "mon"])
            .expect("network namespaces (run as root with iproute2)");
        let hosts = HOSTS.map(|n| lab.host(n).clone());
        let mon = lab.host("mon").clone();
        let [h1, h2, h3] = &hosts;
        let (db1, db2, db3) = tokio::join!(
            MariaDb::start_in(1, &h1.ns, h1.ip),
            MariaDb::start_in(2, &h2.ns, h2.ip),
            MariaDb::start_in(3, &h3.ns, h3.ip),
        );
        let dbs = [db1.expect("db1"), db2.expect("db2"), db3.expect("db3")];
        let rcscripts: Vec<PathBuf> = dbs
            .iter()
            .map(|d| d.write_rcscript().expect("init script"))
            .collect();
        let [db1, db2, db3] = &dbs;
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
        db2.replicate_from(db1, true)
            .await
            .expect("db2 replicates from db1");
        let mut c3 = db3.connect(db3.root_opts()).await.expect("db3");
        c3.query_drop("CREATE DATABASE only_on_db3")
            .await
            .expect("db3's own data");

        let dir = tempfile::tempdir().expect("tempdir");
        let mut agents = Vec::new();
        for h in &hosts {
            let config = write_config(dir.path(), &lab, &h.name, &rcscripts);
            let mut cmd = Lab::command(&h.ns, &binary("mmm_agentd").to_string_lossy());
            cmd.arg("--config").arg(&config).env("RUST_LOG", "info");
            agents.push(lab.spawn(cmd).expect("agent started"));
        }
        for h in &hosts {
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
        Setup {
            lab,
            hosts,
            mon,
            dbs,
            dir,
            agents,
        }
    }
}

/// A client inserting increasing ids into db1 every 5 ms, counting what was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(db: &MariaDb) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, acked) = (stop.clone(), acked.clone());
            let opts = db.root_opts();
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
        Writer { stop, acked, task }
    }

    /// Stops writing; how many writes were acknowledged.
    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("writer ends");
        self.acked.load(Ordering::SeqCst)
    }
}

/// `db` caught up with db1 holds every acknowledged write and the same data.
async fn matches_db1(db: &MariaDb, db1: &MariaDb, acked: u64) {
    db.sync_with(db1, Duration::from_secs(30))
        .await
        .expect("catches up with db1");
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
        checksums(db1).await,
        "server {} matches db1",
        db.server_id()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_in_each_mmm_mode_under_write_load_and_refuses_what_it_must() {
    let _one = ONE_LAB.lock().await;
    let s = Setup::start().await;
    let [h1, h2, h3] = &s.hosts;
    let [db1, db2, db3] = &s.dbs;
    let (lab, mon) = (&s.lab, &s.mon);
    let writer = Writer::start(db1);

    // slave-slave: db3 from the replica db2, then replicating from db2's master db1.
    let p = clone_and_wait(mon, h3, "db2", CloneMode::SlaveSlave);
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
        slave_field(db3, "Master_Host").await.as_deref(),
        Some(ip_of(h1).as_str())
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
    let p = clone_and_wait(mon, h3, "db1", CloneMode::MasterSlave);
    assert_eq!(p.phase, ClonePhase::Done, "master-slave clone: {p:?}");
    assert_eq!(
        slave_field(db3, "Master_Host").await.as_deref(),
        Some(ip_of(h1).as_str())
    );

    // master-master: db2 from db1, and db1 pointed back at db2.
    let p = clone_and_wait(mon, h2, "db1", CloneMode::MasterMaster);
    assert_eq!(p.phase, ClonePhase::Done, "master-master clone: {p:?}");
    assert_eq!(
        slave_field(db2, "Master_Host").await.as_deref(),
        Some(ip_of(h1).as_str())
    );
    assert_eq!(
        slave_field(db1, "Master_Host").await.as_deref(),
        Some(ip_of(h2).as_str())
    );
    assert_eq!(
        slave_field(db1, "Slave_IO_Running").await.as_deref(),
        Some("Yes")
    );
    assert_eq!(
        slave_field(db1, "Slave_SQL_Running").await.as_deref(),
        Some("Yes")
    );

    let acked = writer.finish().await;
    assert!(
        acked > 100,
        "the client kept writing during the clones ({acked} writes)"
    );
    for db in [db2, db3] {
        matches_db1(db, db1, acked).await;
    }

    // Refusals. A backup needs the replication account.
    let backup_url = format!("http://{}{BACKUP_PATH}", agent_addr(h1));
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
            from_dir: None,
        };
        let addr = agent_addr(h3);
        call(mon, move |c| {
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
    let addr3 = agent_addr(h3);
    call(mon, move |c| {
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
    call(mon, move |c| {
        Box::pin(async move {
            c.set_status(addr3, &without_roles, Duration::from_secs(20))
                .await
        })
    })
    .expect("db3 gives up its role");

    // A copy that cannot be fetched (the source's agent is gone) changes nothing on the target.
    lab.kill(s.agents[0]).expect("db1's agent killed");
    let before = db3
        .scalar("SELECT @@gtid_current_pos")
        .await
        .expect("db3 answers");
    let p = clone_and_wait(mon, h3, "db1", CloneMode::MasterSlave);
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

/// Runs one of MMM's tools in `host`'s namespace; its exit code and output.
fn tool(host: &Host, name: &str, args: &[&str]) -> (i32, String) {
    let out = Lab::command(&host.ns, &binary(name).to_string_lossy())
        .args(args)
        .output()
        .expect("the tool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("$ {name} {}\n{text}", args.join(" "));
    (out.status.code().unwrap_or(-1), text)
}

/// MMM's tools on the same hosts: `mmm_backup` of the replica db2 under write load, then
/// `mmm_restore --mode slave-slave` of that backup onto db3, which then replicates from db1
/// and matches it table by table; `mmm_clone` onto db3 from db1; `mmm_restore --mode
/// data-only` and `--version list`; MMM's shell copy methods refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_and_clone_with_mmms_command_lines() {
    let _one = ONE_LAB.lock().await;
    let s = Setup::start().await;
    let [_, _, h3] = &s.hosts;
    let [db1, _, db3] = &s.dbs;
    let tools_conf = s.dir.path().join("mmm_tools.conf");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&tools_conf, "include mmm_agent_db3.conf\n").expect("tools config");
        std::fs::set_permissions(&tools_conf, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let conf = tools_conf.to_string_lossy().to_string();
    let backups = s.dir.path().join("backups");
    let dest = backups.to_string_lossy().to_string();
    let writer = Writer::start(db1);

    let (code, text) = tool(
        h3,
        "mmm_backup",
        &["--config", &conf, "--host", "db2", "--dest-dir", &dest],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("db2: copying") && text.contains("OK: backup of 'db2' in "),
        "{text}"
    );
    let made: Vec<PathBuf> = std::fs::read_dir(&backups)
        .expect("backups")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        made.len(),
        1,
        "one backup directory, nothing left incomplete: {made:?}"
    );
    let status = std::fs::read_to_string(made[0].join("_mmm/status.json")).expect("notes");
    assert!(
        status.contains("\"master\": \"db1\""),
        "the backup knows db2's master: {status}"
    );

    let (code, text) = tool(
        h3,
        "mmm_restore",
        &["--config", &conf, "--version", "list", "--src-dir", &dest],
    );
    assert_eq!((code, text.trim()), (0, made[0].to_string_lossy().as_ref()));

    let backup = made[0].to_string_lossy().to_string();
    let (code, text) = tool(
        h3,
        "mmm_restore",
        &[
            "--config",
            &conf,
            "--mode",
            "slave-slave",
            "--src-dir",
            &backup,
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("OK: 'db3' was restored from the backup of 'db2'")
            && text.contains("replicates from 'db1'"),
        "{text}"
    );
    assert_eq!(
        slave_field(db3, "Master_Host").await.as_deref(),
        Some(ip_of(&s.hosts[0]).as_str())
    );

    let files = s.dir.path().join("files");
    let files_s = files.to_string_lossy().to_string();
    let (code, text) = tool(
        h3,
        "mmm_restore",
        &[
            "--config",
            &conf,
            "--mode",
            "data-only",
            "--src-dir",
            &backup,
            "--dest-dir",
            &files_s,
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        files.join("ibdata1").is_file() && files.join("clonetest").is_dir(),
        "the files are there"
    );

    let (code, text) = tool(
        h3,
        "mmm_clone",
        &[
            "--config",
            &conf,
            "--host",
            "db1",
            "--clone-mode",
            "master-slave",
            "--copy-method",
            "scp",
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("copy method 'scp' is not supported"),
        "{text}"
    );
    let (code, text) = tool(
        h3,
        "mmm_clone",
        &[
            "--config",
            &conf,
            "--host",
            "db1",
            "--clone-mode",
            "master-slave",
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK: 'db3' was rebuilt from 'db1'"), "{text}");

    let acked = writer.finish().await;
    assert!(acked > 100, "the client kept writing ({acked} writes)");
    matches_db1(db3, db1, acked).await;
}
