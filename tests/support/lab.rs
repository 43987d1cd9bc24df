//! The seed document's cluster for real, in network namespaces: three `mmm_mond` replicas
//! (mon1-3), four MariaDB 10.11 servers each with its `mmm_agentd` (db1 and db2 masters in
//! master-master, db3 and db4 replicating from db1; GTID and semi-sync on), and a client host.
//! Everything talks over one bridge on 10.213.0.0/24; the writer VIP and the reader VIPs are
//! spare addresses of that subnet.
//!
//! Around it: a [`Writer`] that inserts a unique value through the writer VIP every 50 ms with
//! a fresh connection, recording every acknowledged write, and a [`Prober`] that samples every
//! host's `read_only` (over the server's Unix socket, which no network fault touches) and
//! writer VIP every 50 ms and records every moment two hosts could take writes.

#![allow(dead_code)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmm_agent::metrics::METRICS_PATH;
use mmm_core::api::{CommandReply, CommandRequest, StateReply, COMMAND_PATH, STATE_PATH};
use mmm_core::Failover;
use mmm_testkit::mariadb::{self, MariaDb};
use mmm_testkit::netns::{Host, Lab};
use mmm_testkit::pki::{Pki, Secrets};
use mmm_transport::{Channel, SecretKey, Transport, Want};
use mysql_async::prelude::Queryable;
use tokio::sync::RwLock;

/// The database hosts, in order.
pub const DBS: [&str; 4] = ["db1", "db2", "db3", "db4"];
const MONS: [&str; 3] = ["mon1", "mon2", "mon3"];
const MONITOR_PORT: u16 = 9988;
const AGENT_PORT: u16 = 9989;

/// Tunables of a lab run, written into the configuration.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// `<check default>` lines.
    pub checks: &'static str,
    /// Extra `<monitor>` lines.
    pub monitor: &'static str,
    /// `<socket> type ssl` with a throwaway CA (the tokens are always on).
    pub tls: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            checks: "    check_period 1\n    trap_period 2\n    timeout 1\n",
            monitor: "    lease 1.5\n    lease_renew_interval 0.3\n",
            tls: false,
        }
    }
}

/// The whole lab.
pub struct Cluster {
    pub lab: Lab,
    pub dbs: Vec<MariaDb>,
    /// Configuration files, logs and state; removed on drop unless `MMM_LAB_KEEP` is set.
    dir: PathBuf,
    _dir_guard: Option<tempfile::TempDir>,
    monitors: Vec<Option<u32>>,
    agents: Vec<Option<u32>>,
    pub writer_vip: Ipv4Addr,
    pub reader_vips: Vec<Ipv4Addr>,
    /// The tokens in the `<socket>` section.
    pub secrets: Secrets,
    /// The test's own client side: the admin and agent tokens, TLS when the lab has it.
    transport: Transport,
}

fn binary(name: &str, env: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    // The agent is another package's binary; `cargo test --workspace` builds it beside ours.
    let mond = PathBuf::from(env!("CARGO_BIN_EXE_mmm_mond"));
    let p = mond.with_file_name(name);
    assert!(
        p.exists(),
        "{} not found: build it first (cargo build --workspace --bins) or set {env}",
        p.display()
    );
    p
}

/// The tokens (always) and a CA with one certificate for the whole cluster (with `tls`, as
/// MMM's single `<socket>` section has it), in `dir/pki`; the `<socket>` section naming them;
/// and the test's own client side, which uses the same files.
fn channel_security(dir: &Path, tls: bool) -> (Secrets, String, Transport) {
    let pki_dir = dir.join("pki");
    let secrets = Secrets::create(&pki_dir).expect("token files");
    let mut socket_cfg = mmm_config::Socket {
        api_secret_file: Some(pki_dir.join("api.secret")),
        agent_secret_file: Some(pki_dir.join("agent.secret")),
        ..mmm_config::Socket::default()
    };
    let socket = if tls {
        let pki = Pki::new(&pki_dir, "lab").expect("a CA");
        let issued = pki.issue("cluster").expect("a certificate");
        socket_cfg.kind = mmm_config::SocketType::Ssl;
        socket_cfg.ca_file = Some(pki.ca_file.clone());
        socket_cfg.cert_file = Some(issued.cert_file.clone());
        socket_cfg.key_file = Some(issued.key_file.clone());
        pki.socket_section(&issued, &secrets.lines)
    } else {
        secrets.socket_section()
    };
    let transport = Transport::load(
        &socket_cfg,
        &[
            (SecretKey::Api, Want::Required),
            (SecretKey::Agent, Want::Required),
        ],
    )
    .expect("the lab's own transport");
    (secrets, socket, transport)
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write config");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

impl Cluster {
    /// Starts everything and waits until db1 is the writer with every host ONLINE.
    pub async fn start(tuning: Tuning) -> Cluster {
        let names: Vec<&str> = MONS
            .iter()
            .chain(DBS.iter())
            .copied()
            .chain(["client"])
            .collect();
        let lab = Lab::new(&names).expect("network namespaces (run as root with iproute2)");
        let mut starts = Vec::new();
        for (i, db) in DBS.iter().enumerate() {
            let h = lab.host(db).clone();
            starts.push(tokio::spawn(async move {
                MariaDb::start_in(i as u32 + 1, &h.ns, h.ip).await
            }));
        }
        let mut dbs = Vec::new();
        for s in starts {
            dbs.push(s.await.expect("join").expect("MariaDB in a namespace"));
        }
        for db in &dbs {
            db.exec(
                "SET GLOBAL rpl_semi_sync_master_enabled=1, rpl_semi_sync_slave_enabled=1, \
                 rpl_semi_sync_master_timeout=3000, rpl_semi_sync_master_wait_point='AFTER_SYNC'",
            )
            .await
            .expect("semi-sync on");
        }
        for db in &mut dbs {
            // What a restarted server starts with, as MMM's my.cnf advice: read-only until its
            // agent is told otherwise, semi-sync as above.
            db.add_options(&[
                "--read-only=1",
                "--rpl-semi-sync-master-enabled=1",
                "--rpl-semi-sync-slave-enabled=1",
                "--rpl-semi-sync-master-timeout=3000",
                "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
            ]);
        }
        dbs[0]
            .exec("CREATE DATABASE chaos; CREATE TABLE chaos.w (v BIGINT PRIMARY KEY, t TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3))")
            .await
            .expect("the writes table");
        dbs[1]
            .replicate_from(&dbs[0], true)
            .await
            .expect("db2 from db1");
        dbs[0]
            .replicate_from(&dbs[1], true)
            .await
            .expect("db1 from db2");
        dbs[2]
            .replicate_from(&dbs[0], true)
            .await
            .expect("db3 from db1");
        dbs[3]
            .replicate_from(&dbs[0], true)
            .await
            .expect("db4 from db1");

        let guard = tempfile::tempdir().expect("temp dir");
        let (dir, guard) = if std::env::var_os("MMM_LAB_KEEP").is_some() {
            let kept = guard.keep();
            eprintln!("lab files kept in {}", kept.display());
            (kept, None)
        } else {
            (guard.path().to_path_buf(), Some(guard))
        };
        let writer_vip = lab.spare_ip(1);
        let reader_vips = vec![lab.spare_ip(2), lab.spare_ip(3), lab.spare_ip(4)];
        let (secrets, socket, transport) = channel_security(&dir, tuning.tls);
        let mut c = Cluster {
            lab,
            dbs,
            dir,
            _dir_guard: guard,
            monitors: vec![None; 3],
            agents: vec![None; 4],
            writer_vip,
            reader_vips,
            secrets,
            transport,
        };
        c.write_configs(&tuning, &socket);
        for i in 0..4 {
            c.start_agent(i);
        }
        for i in 0..3 {
            c.start_monitor(i);
        }
        c.wait_started().await;
        for db in DBS {
            // An agent that started after the monitors' startup vote counts as unreachable
            // until the leader's next ping reaches it.
            let start = Instant::now();
            loop {
                let reply = c.command(&format!("set_online {db}")).await;
                if reply.ok {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "set_online {db}: {}\n{}",
                    reply.reply,
                    c.logs()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        c.wait_writable("db1", Duration::from_secs(30)).await;
        c
    }

    fn host(&self, name: &str) -> &Host {
        self.lab.host(name)
    }

    fn write_configs(&self, tuning: &Tuning, socket: &str) {
        let d = self.dir.as_path();
        let mut hosts = String::new();
        for (i, db) in DBS.iter().enumerate() {
            let h = self.host(db);
            let (mode, peer) = match i {
                0 => ("master", "    peer db2\n"),
                1 => ("master", "    peer db1\n"),
                _ => ("slave", ""),
            };
            hosts += &format!(
                "<host {db}>\n    ip {}\n    mode {mode}\n{peer}    state_dir {}/{db}-state\n    pid_path {}/{db}-agent.pid\n    mysql_pidfile {}\n    mysql_rcscript {}\n</host>\n",
                h.ip,
                d.display(),
                d.display(),
                self.dbs[i].pidfile().display(),
                self.dbs[i]
                    .write_rcscript()
                    .expect("the server's init script")
                    .display()
            );
        }
        let nodes: String = MONS
            .iter()
            .map(|m| {
                format!(
                    "<monitor_node {m}>\n    ip {}\n    port {MONITOR_PORT}\n</monitor_node>\n",
                    self.host(m).ip
                )
            })
            .collect();
        let readers: Vec<String> = self.reader_vips.iter().map(|ip| ip.to_string()).collect();
        let common = format!(
            "active_master_role writer\n\
             <host default>\n\
             \x20   cluster_interface eth0\n\
             \x20   agent_user {au}\n    agent_password {ap}\n\
             \x20   replication_user {ru}\n    replication_password {rp}\n\
             \x20   monitor_user {mu}\n    monitor_password {mp}\n\
             \x20   bin_path /usr/lib/mysql-mmm\n\
             </host>\n{hosts}\
             <role writer>\n    hosts db1, db2\n    ips {writer}\n    mode exclusive\n</role>\n\
             <role reader>\n    hosts db2, db3, db4\n    ips {readers}\n    mode balanced\n</role>\n\
             <check default>\n{checks}</check>\n{nodes}{socket}",
            au = mariadb::AGENT_USER,
            ap = mariadb::AGENT_PASSWORD,
            ru = mariadb::REPL_USER,
            rp = mariadb::REPL_PASSWORD,
            mu = mariadb::MONITOR_USER,
            mp = mariadb::MONITOR_PASSWORD,
            writer = self.writer_vip,
            readers = readers.join(", "),
            checks = tuning.checks,
        );
        write_private(&d.join("mmm_common.conf"), &common);
        for (i, m) in MONS.iter().enumerate() {
            let text = format!(
                "include mmm_common.conf\n<monitor>\n    node {m}\n    data_dir {d}/{m}-data\n    pid_path {d}/{m}.pid\n    bin_path /usr/lib/mysql-mmm\n    status_path {d}/{m}.status\n    ping_ips {client}\n{extra}</monitor>\n",
                d = d.display(),
                client = self.host("client").ip,
                extra = tuning.monitor,
            );
            write_private(&d.join(format!("mon{}.conf", i + 1)), &text);
        }
        for db in DBS {
            write_private(
                &d.join(format!("{db}-agent.conf")),
                &format!("include mmm_common.conf\nthis {db}\n"),
            );
        }
    }

    /// Starts (or restarts) monitor replica `i` (0-based).
    pub fn start_monitor(&mut self, i: usize) {
        let bin = binary("mmm_mond", "MMM_MOND");
        let mut cmd = Lab::command(&self.host(MONS[i]).ns, &bin.to_string_lossy());
        let log = std::fs::File::create(self.dir.as_path().join(format!("{}.log", MONS[i])))
            .expect("monitor log");
        cmd.arg("--config")
            .arg(self.dir.as_path().join(format!("mon{}.conf", i + 1)))
            .env(
                "RUST_LOG",
                std::env::var("MMM_LAB_MONITOR_LOG")
                    .unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stderr(log);
        self.monitors[i] = Some(self.lab.spawn(cmd).expect("mmm_mond"));
    }

    /// Starts (or restarts) the agent of db `i` (0-based).
    pub fn start_agent(&mut self, i: usize) {
        let bin = binary("mmm_agentd", "MMM_AGENTD");
        let mut cmd = Lab::command(&self.host(DBS[i]).ns, &bin.to_string_lossy());
        let log = std::fs::File::create(self.dir.as_path().join(format!("{}-agent.log", DBS[i])))
            .expect("agent log");
        cmd.arg("--config")
            .arg(self.dir.as_path().join(format!("{}-agent.conf", DBS[i])))
            .env(
                "RUST_LOG",
                std::env::var("MMM_LAB_AGENT_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stderr(log);
        self.agents[i] = Some(self.lab.spawn(cmd).expect("mmm_agentd"));
    }

    /// SIGKILLs monitor replica `i`.
    pub fn kill_monitor(&mut self, i: usize) {
        if let Some(pid) = self.monitors[i].take() {
            self.lab.kill(pid).expect("kill mmm_mond");
        }
    }

    /// A monitor replica's log so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.as_path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Fails if any log of the run (monitors, agents) holds a configured password or token.
    pub fn assert_no_secrets_in_logs(&self) {
        let passwords = [
            mariadb::AGENT_PASSWORD,
            mariadb::REPL_PASSWORD,
            mariadb::MONITOR_PASSWORD,
        ];
        let mut read = 0;
        for name in MONS
            .iter()
            .map(|m| m.to_string())
            .chain(DBS.iter().map(|d| format!("{d}-agent")))
        {
            let text = self.log(&name);
            read += text.len();
            for secret in passwords.iter().chain(self.secrets.all().iter()) {
                assert!(
                    !text.contains(secret),
                    "{name}.log holds a configured password or token"
                );
            }
        }
        assert!(read > 0, "the logs were read");
    }

    /// Every log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in MONS
            .iter()
            .map(|m| m.to_string())
            .chain(DBS.iter().map(|d| format!("{d}-agent")))
        {
            let text = self.log(&name);
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out += &format!("--- {name} (last 40 lines)\n");
            for l in tail.into_iter().rev() {
                out += l;
                out.push('\n');
            }
        }
        out
    }

    /// Sends a request from the client host to each address in turn until one answers with a
    /// success and a body that `decode` accepts. `request` gets the client (with the token of
    /// `channel`) and the base URL (`http://ADDR` or `https://ADDR`).
    async fn fetch<T, D, F>(
        &self,
        addrs: Vec<SocketAddr>,
        channel: Channel,
        decode: D,
        request: F,
    ) -> Option<T>
    where
        T: Send + 'static,
        D: Fn(&str) -> Option<T> + Send + 'static,
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + 'static,
    {
        let client = self.host("client").clone();
        let transport = self.transport.clone();
        tokio::task::spawn_blocking(move || {
            client.run_async(move || async move {
                let http = transport
                    .client(channel)
                    .timeout(Duration::from_secs(8))
                    .build()
                    .ok()?;
                for addr in addrs {
                    if let Ok(r) = request(&http, &transport.url(addr, "")).send().await {
                        if r.status().is_success() {
                            if let Some(v) = r.text().await.ok().as_deref().and_then(&decode) {
                                return Some(v);
                            }
                        }
                    }
                }
                None
            })
        })
        .await
        .expect("join")
        .expect("namespace")
    }

    fn monitor_addrs(&self) -> Vec<SocketAddr> {
        MONS.iter()
            .map(|m| SocketAddr::new(self.host(m).ip.into(), MONITOR_PORT))
            .collect()
    }

    /// From the client host, with a certificate of another CA and the right tokens: whether
    /// any monitor or agent answered (with TLS, none may).
    pub async fn stranger_gets_an_answer(&self) -> bool {
        let dir = self.dir.as_path().join("stranger");
        let pki = Pki::new(&dir, "stranger").expect("a CA");
        let issued = pki.issue("stranger").expect("a certificate");
        let socket = mmm_config::Socket {
            kind: mmm_config::SocketType::Ssl,
            cert_file: Some(issued.cert_file),
            key_file: Some(issued.key_file),
            ca_file: Some(pki.ca_file.clone()),
            ..mmm_config::Socket::default()
        };
        let tls = mmm_transport::Tls::load(&socket).expect("the stranger's TLS");
        let stranger = Transport::new(self.transport.keys().clone(), Some(tls));
        let targets: Vec<(SocketAddr, Channel, &str)> = self
            .monitor_addrs()
            .into_iter()
            .map(|a| (a, Channel::Api, STATE_PATH))
            .chain(DBS.iter().map(|d| {
                (
                    SocketAddr::new(self.host(d).ip.into(), AGENT_PORT),
                    Channel::Agent,
                    METRICS_PATH,
                )
            }))
            .collect();
        let client = self.host("client").clone();
        tokio::task::spawn_blocking(move || {
            client.run_async(move || async move {
                for (addr, channel, path) in targets {
                    let Ok(http) = stranger
                        .client(channel)
                        .timeout(Duration::from_secs(5))
                        .build()
                    else {
                        continue;
                    };
                    if http.get(stranger.url(addr, path)).send().await.is_ok() {
                        return true;
                    }
                }
                false
            })
        })
        .await
        .expect("join")
        .expect("namespace")
    }

    /// `mmm_control --monitor <the three replicas> ARGS...`, to run on the client host (the
    /// tokens come from mon1's configuration).
    pub fn control(&self, args: &[&str]) -> std::process::Command {
        let bin = binary("mmm_control", "MMM_CONTROL");
        let mut cmd = Lab::command(&self.host("client").ns, &bin.to_string_lossy());
        let monitors: Vec<String> = self
            .monitor_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        cmd.arg("--monitor")
            .arg(monitors.join(","))
            .arg("--config")
            .arg(self.dir.as_path().join("mon1.conf"))
            .args(args);
        cmd
    }

    /// `mmm_control --config mon1.conf ARGS...` on the client host: for the commands that
    /// reach agents (rejoin), which need the hosts from the configuration.
    pub fn control_with_config(&self, args: &[&str]) -> std::process::Command {
        let bin = binary("mmm_control", "MMM_CONTROL");
        let mut cmd = Lab::command(&self.host("client").ns, &bin.to_string_lossy());
        cmd.arg("--config")
            .arg(self.dir.as_path().join("mon1.conf"))
            .args(args);
        cmd
    }

    /// Sends a request to the monitors from the client host, trying each replica until one
    /// answers with a success and a body that decodes.
    async fn ask<T, F>(&self, request: F) -> Option<T>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + 'static,
    {
        self.fetch(
            self.monitor_addrs(),
            Channel::Api,
            |body| serde_json::from_str(body).ok(),
            request,
        )
        .await
    }

    /// `/metrics` of a monitor replica (`mon1`...) or of a host's agent (`db1`...).
    pub async fn metrics(&self, name: &str) -> String {
        let (port, channel) = if name.starts_with("mon") {
            (MONITOR_PORT, Channel::Api)
        } else {
            (AGENT_PORT, Channel::Agent)
        };
        let addr = SocketAddr::new(self.host(name).ip.into(), port);
        self.fetch(
            vec![addr],
            channel,
            |body| Some(body.to_string()),
            |http, base| http.get(format!("{base}{METRICS_PATH}")),
        )
        .await
        .unwrap_or_default()
    }

    /// Sends an mmm_control command line to the monitors.
    pub async fn command(&self, line: &str) -> CommandReply {
        let req = CommandRequest {
            line: line.to_string(),
            linearizable: false,
        };
        let tried = self
            .ask(move |http, base| http.post(format!("{base}{COMMAND_PATH}")).json(&req))
            .await;
        tried.unwrap_or_else(|| CommandReply {
            reply: "no monitor replica answered".into(),
            ok: false,
            replica: String::new(),
            leader: None,
            log_index: None,
            stale: true,
        })
    }

    /// The failover history, as `mmm_control history` reads it from any replica.
    pub async fn history(&self) -> Vec<Failover> {
        let reply: Option<StateReply> = self
            .ask(|http, base| http.get(format!("{base}{STATE_PATH}")))
            .await;
        reply
            .and_then(|r| r.state)
            .map(|s| s.history)
            .unwrap_or_default()
    }

    /// `mmm_control show`.
    pub async fn show(&self) -> String {
        self.command("show").await.reply
    }

    async fn wait_started(&self) {
        let start = Instant::now();
        loop {
            let shown = self.show().await;
            if DBS.iter().all(|db| shown.contains(&format!("{db}("))) && !shown.contains("/UNKNOWN")
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "the monitors did not start the cluster within 40 s:\n{shown}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `db` has read_only=0 and the writer VIP, and no other host has either.
    pub async fn wait_writable(&self, db: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let s = sample(self).await;
            let writable: Vec<&str> = s.writable.iter().map(|s| s.as_str()).collect();
            let vip: Vec<&str> = s.vip.iter().map(|s| s.as_str()).collect();
            if writable == [db] && vip == [db] {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "{db} did not become the only writer within {limit:?} (writable {writable:?}, VIP on {vip:?}):\n{}\n{}",
                self.show().await,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `db`'s line of `mmm_control show`, e.g. `db3(10.213.0.6) slave/ONLINE. Roles: ...`.
    pub async fn shown(&self, db: &str) -> String {
        let show = self.show().await;
        let prefix = format!("{db}(");
        show.lines()
            .map(str::trim)
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_default()
            .to_string()
    }

    /// The IPv4 addresses on `db`'s interface, as `ip addr` prints them (`a.b.c.d/len`).
    async fn addresses(&self, db: &str) -> anyhow::Result<Vec<String>> {
        let host = self.lab.host(db).clone();
        tokio::task::spawn_blocking(move || host.ipv4_addresses())
            .await
            .expect("join")
    }

    /// How many reader VIPs are on `db`'s interface, if every reader VIP is on exactly one
    /// host; `None` while one is on none or on several.
    pub async fn reader_vips_on(&self, db: &str) -> Option<usize> {
        let mut holders = vec![Vec::new(); self.reader_vips.len()];
        for host in DBS {
            let addrs = self.addresses(host).await.expect("ip addr");
            for (ip, on) in self.reader_vips.iter().zip(&mut holders) {
                if addrs.contains(&format!("{ip}/32")) {
                    on.push(host);
                }
            }
        }
        holders
            .iter()
            .all(|on| on.len() == 1)
            .then(|| holders.iter().filter(|on| on.contains(&db)).count())
    }

    /// The client host.
    pub fn client(&self) -> Host {
        self.host("client").clone()
    }

    /// The database host called `name`.
    pub fn db(&self, name: &str) -> &MariaDb {
        let i = DBS.iter().position(|d| *d == name).expect("a db host");
        &self.dbs[i]
    }

    /// The database host called `name`, mutably.
    pub fn db_mut(&mut self, name: &str) -> &mut MariaDb {
        let i = DBS.iter().position(|d| *d == name).expect("a db host");
        &mut self.dbs[i]
    }
}

/// Who could take writes at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Hosts whose mysqld answers with read_only=0.
    pub writable: Vec<String>,
    /// Hosts with the writer VIP on their interface.
    pub vip: Vec<String>,
}

async fn sample(c: &Cluster) -> Sample {
    let vip = format!("{}/32", c.writer_vip);
    let probes = DBS.iter().enumerate().map(|(i, db)| {
        let vip = &vip;
        async move {
            let ro = c.dbs[i].scalar("SELECT @@read_only").await;
            let writable = matches!(ro.as_ref().map(|v| v.as_deref()), Ok(Some("0")));
            let has_vip = c.addresses(db).await.is_ok_and(|a| a.contains(vip));
            (db.to_string(), writable, has_vip)
        }
    });
    let mut s = Sample::default();
    for (db, writable, has_vip) in futures::future::join_all(probes).await {
        if writable {
            s.writable.push(db.clone());
        }
        if has_vip {
            s.vip.push(db);
        }
    }
    s
}

/// Samples who could take writes every 50 ms, until dropped.
pub struct Prober {
    stop: Arc<AtomicBool>,
    /// Every sample where two hosts were writable or held the writer VIP.
    pub violations: Arc<Mutex<Vec<(Duration, Sample)>>>,
    task: Option<tokio::task::JoinHandle<usize>>,
}

impl Prober {
    /// Starts sampling `c` (shared with the test through an `Arc`).
    pub fn start(c: Arc<tokio::sync::RwLock<Cluster>>) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), violations.clone());
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                let sample = sample(&*c.read().await).await;
                n += 1;
                if sample.writable.len() > 1 || sample.vip.len() > 1 {
                    v.lock().unwrap().push((start.elapsed(), sample));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            n
        });
        Prober {
            stop,
            violations,
            task: Some(task),
        }
    }

    /// Stops sampling; returns how many samples were taken and the violations.
    pub async fn finish(mut self) -> (usize, Vec<(Duration, Sample)>) {
        self.stop.store(true, Ordering::Relaxed);
        let n = match self.task.take() {
            Some(t) => t.await.unwrap_or(0),
            None => 0,
        };
        let v = std::mem::take(&mut *self.violations.lock().unwrap());
        (n, v)
    }
}

/// One write through the writer VIP.
#[derive(Debug, Clone, Copy)]
pub struct Write {
    /// The value.
    pub v: u64,
    /// When it was acknowledged, since the writer started.
    pub at: Duration,
}

/// Starts an insert of a unique value through the writer VIP every 50 ms, from the client host,
/// each with a fresh connection and its own 2.5 s limit, so a hanging write never delays the
/// next one.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Write>>>,
    /// The latest failure, for a test's failure message.
    pub last_error: Arc<Mutex<String>>,
    pub started: Instant,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts writing to `vip`.
    pub fn start(client: Host, vip: Ipv4Addr) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let last_error = Arc::new(Mutex::new(String::new()));
        let (s, a, e) = (stop.clone(), acked.clone(), last_error.clone());
        let thread = std::thread::spawn(move || {
            let _ = client.run_async(move || async move {
                let mut v: u64 = 0;
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                while !s.load(Ordering::Relaxed) {
                    tick.tick().await;
                    v += 1;
                    let (a, e) = (a.clone(), e.clone());
                    tokio::spawn(async move {
                        let opts = mysql_async::OptsBuilder::default()
                            .ip_or_hostname(vip.to_string())
                            .tcp_port(3306)
                            .user(Some(mariadb::APP_USER))
                            .pass(Some(mariadb::APP_PASSWORD))
                            .prefer_socket(false);
                        let attempt = async {
                            let mut conn = mysql_async::Conn::new(opts)
                                .await
                                .map_err(|e| format!("connect: {e}"))?;
                            conn.exec_drop("INSERT INTO chaos.w (v) VALUES (?)", (v,))
                                .await
                                .map_err(|e| format!("insert: {e}"))?;
                            let _ = conn.disconnect().await;
                            Ok::<(), String>(())
                        };
                        match tokio::time::timeout(Duration::from_millis(2500), attempt).await {
                            Ok(Ok(())) => a.lock().unwrap().push(Write {
                                v,
                                at: started.elapsed(),
                            }),
                            Ok(Err(err)) => *e.lock().unwrap() = err,
                            Err(_) => *e.lock().unwrap() = "timed out after 2.5 s".into(),
                        }
                    });
                }
                // Let the writes in flight finish.
                tokio::time::sleep(Duration::from_millis(2600)).await;
            });
        });
        Writer {
            stop,
            acked,
            last_error,
            started,
            thread: Some(thread),
        }
    }

    /// The acknowledged writes so far.
    pub fn acked(&self) -> Vec<Write> {
        self.acked.lock().unwrap().clone()
    }

    /// Stops writing; returns every acknowledged write.
    pub fn finish(mut self) -> Vec<Write> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.acked()
    }
}

/// The write outage around `fault_at`: from the last acknowledged write before it to the first
/// after it.
pub fn outage(writes: &[Write], fault_at: Duration) -> Option<Duration> {
    let before = writes
        .iter()
        .filter(|w| w.at <= fault_at)
        .map(|w| w.at)
        .max()?;
    let after = writes
        .iter()
        .filter(|w| w.at > fault_at)
        .map(|w| w.at)
        .min()?;
    Some(after - before)
}

/// The longest time without an acknowledged write after `from`: the outage of a fault whose
/// moment is not known exactly (a switchover running in the background).
pub fn longest_gap(writes: &[Write], from: Duration) -> Duration {
    let mut times: Vec<Duration> = writes.iter().map(|w| w.at).collect();
    times.sort();
    let first = times.partition_point(|t| *t <= from).saturating_sub(1);
    times[first..]
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

/// Values acknowledged but missing from `db`.
pub async fn lost(db: &MariaDb, writes: &[Write]) -> Vec<u64> {
    let mut conn = db.connect(db.root_opts()).await.expect("root connection");
    let present: Vec<u64> = conn
        .query("SELECT v FROM chaos.w")
        .await
        .expect("read the writes");
    let present: std::collections::BTreeSet<u64> = present.into_iter().collect();
    writes
        .iter()
        .map(|w| w.v)
        .filter(|v| !present.contains(v))
        .collect()
}

/// Writes until `n` have been acknowledged after `from`, or fails after `limit`.
pub async fn acked_after(w: &Writer, from: Duration, n: usize, limit: Duration, c: &Cluster) {
    let start = std::time::Instant::now();
    loop {
        if w.acked().iter().filter(|x| x.at > from).count() >= n {
            return;
        }
        if start.elapsed() >= limit {
            let last_error = w.last_error.lock().unwrap().clone();
            panic!(
                "writes did not resume within {limit:?} (last error: {last_error}):\n{}\n{}",
                c.show().await,
                c.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn replicates_from(c: &Cluster, db: &str, master: &str) {
    let want = c.lab.host(master).ip.to_string();
    let start = std::time::Instant::now();
    loop {
        let host = c.db(db).slave_status("Master_Host").await.ok().flatten();
        let io = c
            .db(db)
            .slave_status("Slave_IO_Running")
            .await
            .ok()
            .flatten();
        if host.as_deref() == Some(want.as_str()) && io.as_deref() == Some("Yes") {
            return;
        }
        if start.elapsed() >= Duration::from_secs(20) {
            let error = c.db(db).slave_status("Last_IO_Error").await.ok().flatten();
            panic!(
                "{db} does not replicate from {master} ({host:?}, IO {io:?}, {error:?}):\n{}",
                c.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One lab at a time: each runs eleven MariaDB and daemon processes on two cores.
static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds the lab for one test.
pub async fn one_lab() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_LAB.lock().await
}

/// Polls `ok` every 100 ms until it holds; fails after `limit` with `what`, the monitors' view
/// and the logs.
pub async fn wait_until(
    c: &Cluster,
    limit: Duration,
    what: &str,
    mut ok: impl AsyncFnMut() -> bool,
) {
    let start = Instant::now();
    while !ok().await {
        assert!(
            start.elapsed() < limit,
            "not within {limit:?}: {what}\n{}\n{}",
            c.show().await,
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fault, injected at a moment the test records.
pub type Fault = Box<
    dyn for<'a> FnOnce(&'a mut Cluster) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + Send,
>;

/// Starts the lab, writes through the writer VIP, injects `fault` and checks that `new_writer`
/// takes over: writes resume, none is lost, never two writers, the slaves follow. Returns the
/// outage.
pub async fn fail_over(name: &str, fault: Fault, new_writer: &str) -> Duration {
    fail_over_tuned(name, Tuning::default(), fault, new_writer).await
}

/// [`fail_over`] with other settings.
pub async fn fail_over_tuned(
    name: &str,
    tuning: Tuning,
    fault: Fault,
    new_writer: &str,
) -> Duration {
    let _one = one_lab().await;
    let c = Arc::new(RwLock::new(Cluster::start(tuning).await));
    let prober = Prober::start(c.clone());
    let writer = {
        let g = c.read().await;
        Writer::start(g.client(), g.writer_vip)
    };
    {
        let g = c.read().await;
        acked_after(&writer, Duration::ZERO, 20, Duration::from_secs(20), &g).await;
    }

    let fault_at = writer.started.elapsed();
    fault(&mut *c.write().await).await;
    {
        let g = c.read().await;
        g.wait_writable(new_writer, Duration::from_secs(30)).await;
        acked_after(&writer, fault_at, 20, Duration::from_secs(20), &g).await;
    }
    let writes = writer.finish();
    let (samples, violations) = prober.finish().await;
    let g = c.read().await;
    let around = outage(&writes, fault_at).expect("writes before and after the fault");
    // A fault that runs in the background (a switchover) starts after `fault_at`: the longest
    // time without an acknowledged write since then is its outage; for an instant fault the
    // two are the same.
    let outage = longest_gap(&writes, fault_at).max(around);
    eprintln!(
        "{name}: write outage {} ms ({} writes acknowledged, {samples} prober samples)",
        outage.as_millis(),
        writes.len()
    );
    assert!(
        violations.is_empty(),
        "{name}: two writers at once: {violations:?}\n{}",
        g.logs()
    );
    assert!(samples > 20, "the prober ran ({samples} samples)");
    for slave in ["db3", "db4"] {
        replicates_from(&g, slave, new_writer).await;
        g.db(slave)
            .sync_with(g.db(new_writer), Duration::from_secs(20))
            .await
            .expect("the slave catches up with the new writer");
    }
    let missing = lost(g.db(new_writer), &writes).await;
    assert!(
        missing.is_empty(),
        "{name}: acknowledged writes lost: {missing:?}"
    );
    g.assert_no_secrets_in_logs();
    let shown = g.show().await;
    assert!(
        shown.contains(&format!("{new_writer}("))
            && shown.contains(&format!("writer({})", g.writer_vip)),
        "{shown}"
    );
    if new_writer != "db1" {
        completed_in_history(&g, new_writer).await;
    }
    metrics_show(&g, new_writer).await;
    outage
}

/// db2 stops receiving from db1 for `behind`, then db1's mysqld is killed: the slaves have
/// (and acknowledged) the writes of that time, db2 does not.
pub fn crash_with_standby_behind(behind: Duration) -> Fault {
    Box::new(move |c| {
        Box::pin(async move {
            c.db("db2")
                .exec("STOP SLAVE IO_THREAD")
                .await
                .expect("db2 stops receiving");
            tokio::time::sleep(behind).await;
            c.db_mut("db1").kill9();
        })
    })
}

/// `mmm_control switchover db2` from the client host, in a thread of its own so that the
/// prober keeps sampling while it runs. With `hold_replication`, db1's replication stream to
/// db2 is held back (its packets dropped, so TCP resends them later) from `hold.0` before the
/// switchover until `hold.1` after it: db2 lacks db1's last acknowledged writes when it is
/// told to take over.
pub fn switchover_fault(
    hold_replication: Option<(Duration, Duration)>,
    ran: SwitchoverRun,
) -> Fault {
    Box::new(move |c: &mut Cluster| {
        Box::pin(async move {
            let mut ctl = c.control(&["switchover", "db2"]);
            let db1_ns = c.lab.host("db1").ns.clone();
            let db2_ip = c.lab.host("db2").ip.to_string();
            let thread = std::thread::spawn(move || {
                let nft = |args: &str| {
                    let argv: Vec<&str> = args.split_whitespace().collect();
                    mmm_testkit::netns::exec_ok(&db1_ns, &argv)
                        .expect("nft (apt-get install nftables)");
                };
                if let Some((before, _)) = hold_replication {
                    nft("nft add table inet mmmhold");
                    nft("nft add chain inet mmmhold out { type filter hook output priority 0 ; }");
                    nft(&format!(
                        "nft add rule inet mmmhold out ip daddr {db2_ip} tcp sport 3306 drop"
                    ));
                    std::thread::sleep(before);
                }
                let child = ctl
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("mmm_control starts");
                if let Some((_, after)) = hold_replication {
                    std::thread::sleep(after);
                    nft("nft delete table inet mmmhold");
                }
                child.wait_with_output().expect("mmm_control runs")
            });
            *ran.lock().unwrap() = Some(thread);
        })
    })
}

/// The thread running a switchover, and what `mmm_control` printed.
pub type SwitchoverRun = Arc<Mutex<Option<std::thread::JoinHandle<std::process::Output>>>>;

/// What `mmm_control switchover` printed: it waited until db2 took writes, and said so.
pub fn switchover_printed(
    ran: &std::sync::Mutex<Option<std::thread::JoinHandle<std::process::Output>>>,
) {
    let handle = ran.lock().unwrap().take().expect("the switchover ran");
    let output = handle.join().expect("the switchover thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("mmm_control switchover db2:\n{stdout}");
    assert!(
        output.status.success()
            && stdout.starts_with("OK: Switching role 'writer' over from 'db1' to 'db2'")
            && stdout.contains("OK: 'db2' is the writer at epoch"),
        "{output:?}"
    );
}

/// The monitors' and agents' `/metrics` say who writes: the leader's role and lease, the new
/// writer's agent active under a lease.
async fn metrics_show(c: &Cluster, writer: &str) {
    let leader = MONS[leader_index(c).await];
    let text = c.metrics(leader).await;
    for want in [
        "mmm_raft_is_leader 1".to_string(),
        format!(
            "mmm_role{{role=\"writer\",ip=\"{}\",host=\"{writer}\"}} 1",
            c.writer_vip
        ),
        format!("mmm_host_state{{host=\"{writer}\",state=\"ONLINE\"}} 1"),
        "mmm_writer_lease_remaining_seconds ".to_string(),
    ] {
        assert!(
            text.contains(&want),
            "{leader}'s /metrics lacks '{want}':\n{text}"
        );
    }
    let agent = c.metrics(writer).await;
    assert!(
        agent.contains("mmm_agent_writer_active 1"),
        "{writer}'s agent /metrics:\n{agent}"
    );
}

/// The failover is in the replicated history: db1 to `new_writer`, completed once the new
/// writer's agent confirmed the role.
async fn completed_in_history(c: &Cluster, new_writer: &str) {
    let start = Instant::now();
    loop {
        let history = c.history().await;
        let done = history.last().filter(|f| {
            f.from.as_ref().map(|h| h.as_str()) == Some("db1")
                && f.to.as_ref().map(|h| h.as_str()) == Some(new_writer)
        });
        if let Some((f, took)) = done.and_then(|f| f.took_ms().map(|t| (f, t))) {
            eprintln!(
                "history: db1 -> {new_writer} at epoch {}, {took} ms from decision to confirmation ({})",
                f.epoch.0, f.cause
            );
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the failover to {new_writer} is not completed in the history: {history:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The monitor replica that leads now (0-based), as the group says.
pub async fn leader_index(c: &Cluster) -> usize {
    let reply = c.command("mode").await;
    let leader = reply.leader.expect("a leader");
    leader
        .trim_start_matches("mon")
        .parse::<usize>()
        .expect("monN")
        - 1
}
