//! Three database hosts in network namespaces for the cloning tests and benchmark: real
//! MariaDB 10.11 servers with their init scripts (`mysql_rcscript`), real `mmm_agentd`
//! processes, and a host (`mon`) to call the agents from. db1 is a master with data (InnoDB and
//! Aria), db2 replicates from it, db3 has only data of its own. Around them: a [`Writer`]
//! inserting into db1 every 5 ms, and helpers to start clones and run MMM's tools.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmm_agent::client::AgentClient;
use mmm_agent::protocol::{CloneMode, ClonePhase, CloneProgress, CloneRequest};
use mmm_testkit::mariadb::{self, MariaDb};
use mmm_testkit::netns::{Host, Lab};
use mmm_transport::{Keys, Transport};
use mysql_async::prelude::Queryable;

pub const HOSTS: [&str; 3] = ["db1", "db2", "db3"];

/// The agents' token of every lab in this process.
pub fn agent_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| mmm_testkit::pki::random_token().expect("a token"))
}

/// The test's side of the agents' channel.
pub fn agent_transport() -> Transport {
    let keys = Keys {
        agent: Some(mmm_config::Secret::new(agent_token())),
        ..Keys::default()
    };
    Transport::new(keys, None)
}

pub fn write_config(dir: &Path, lab: &Lab, this: &str, rcscripts: &[PathBuf]) -> PathBuf {
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
    let secret = mmm_testkit::pki::write_token(dir, "agent", agent_token()).expect("token file");
    text.push_str(&format!(
        "<socket>\n    agent_secret_file {}\n</socket>\n",
        secret.display()
    ));
    let path = dir.join(format!("mmm_agent_{this}.conf"));
    std::fs::write(&path, text).expect("config written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

pub fn agent_addr(h: &Host) -> SocketAddr {
    SocketAddr::from((h.ip, 9989))
}

/// Runs an agent call from the monitor's namespace.
pub fn call<T: Send + 'static>(
    mon: &Host,
    f: impl FnOnce(AgentClient) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send,
) -> T {
    mon.run_async(move || async move {
        let client = AgentClient::new(
            &agent_transport(),
            Duration::from_secs(1),
            Duration::from_secs(20),
        )
        .expect("HTTP client");
        f(client).await
    })
    .expect("runs in the monitor's namespace")
}

/// Starts a clone and follows it to its end, printing its progress.
pub fn clone_and_wait(mon: &Host, target: &Host, source: &str, mode: CloneMode) -> CloneProgress {
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

pub async fn slave_field(db: &MariaDb, field: &str) -> Option<String> {
    let mut c = db.connect(db.root_opts()).await.expect("root connection");
    let row: Option<mysql_async::Row> = c.query_first("SHOW SLAVE STATUS").await.expect("query");
    row.and_then(|r| {
        r.get_opt::<Option<String>, _>(field)
            .and_then(Result::ok)
            .flatten()
    })
}

pub async fn checksums(db: &MariaDb) -> Vec<(String, String)> {
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

pub fn ip_of(h: &Host) -> String {
    Ipv4Addr::to_string(&h.ip)
}

/// One lab at a time: each runs three MariaDB servers and their agents on two cores.
pub static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A built binary of the workspace (`cargo test --workspace` builds them beside mmm_mond).
pub fn binary(name: &str) -> PathBuf {
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
pub struct Setup {
    pub lab: Lab,
    pub hosts: [Host; 3],
    pub mon: Host,
    pub dbs: [MariaDb; 3],
    pub dir: tempfile::TempDir,
    pub agents: Vec<u32>,
}

impl Setup {
    /// The hosts with 20 thousand bulk rows.
    pub async fn start() -> Setup {
        Self::start_with(20, 1000, &[]).await
    }

    /// The hosts, with `bulk` batches of `batch` rows of 200 bytes on db1 (and db2), db1
    /// started with `db1_options` too.
    pub async fn start_with(bulk: usize, batch: usize, db1_options: &[&str]) -> Setup {
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
        let mut dbs = [db1.expect("db1"), db2.expect("db2"), db3.expect("db3")];
        if !db1_options.is_empty() {
            dbs[0].add_options(db1_options);
            dbs[0]
                .restart()
                .await
                .expect("db1 restarts with its options");
        }
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
        for _ in 0..bulk {
            c1.query_drop(format!(
                "INSERT INTO clonetest.bulk (pad) SELECT REPEAT('x', 200) FROM clonetest.seq_1_to_{batch}"
            ))
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
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    /// The longest time an insert took, in microseconds, since the last reset.
    slowest_us: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    pub fn start(db: &MariaDb) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let slowest_us = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, acked, slowest) = (stop.clone(), acked.clone(), slowest_us.clone());
            let opts = db.root_opts();
            async move {
                let mut conn = mysql_async::Conn::new(opts).await.expect("writer connects");
                let mut next = 1u64;
                while !stop.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let done = conn
                        .exec_drop("INSERT INTO clonetest.acked VALUES (?)", (next,))
                        .await;
                    slowest.fetch_max(sent.elapsed().as_micros() as u64, Ordering::SeqCst);
                    if done.is_ok() {
                        acked.store(next, Ordering::SeqCst);
                        next += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Writer {
            stop,
            acked,
            slowest_us,
            task,
        }
    }

    /// The longest insert since the last call, and starts measuring afresh.
    pub fn take_slowest(&self) -> Duration {
        Duration::from_micros(self.slowest_us.swap(0, Ordering::SeqCst))
    }

    /// Stops writing; how many writes were acknowledged.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("writer ends");
        self.acked.load(Ordering::SeqCst)
    }
}

/// `db` caught up with db1 holds every acknowledged write and the same data.
pub async fn matches_db1(db: &MariaDb, db1: &MariaDb, acked: u64) {
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

/// Runs one of MMM's tools in `host`'s namespace; its exit code and output.
pub fn tool(host: &Host, name: &str, args: &[&str]) -> (i32, String) {
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
