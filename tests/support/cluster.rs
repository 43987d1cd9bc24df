//! Three `mmm_mond` processes on loopback for tests and benchmarks: real MMM configuration
//! files with the monitor-group extension, a private data directory each, and HTTP helpers.
//! Every process is killed when the `Group` is dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mmm_core::api::{CommandReply, CommandRequest, GroupStatus, LeaderInfo};

const COMMON: &str = "active_master_role writer
<host default>
    cluster_interface eth0
    replication_user rep
    replication_password pwd123
    agent_user mmm_agent
    agent_password pwd123
    monitor_user mmm_monitor
    monitor_password pwd123
</host>
<host db1>
    ip 127.0.1.1
    mode master
    peer db2
</host>
<host db2>
    ip 127.0.1.2
    mode master
    peer db1
</host>
<host db3>
    ip 127.0.1.3
    mode slave
</host>
<role writer>
    hosts db1, db2
    ips 10.0.1.1
    mode exclusive
</role>
<role reader>
    hosts db2, db3
    ips 10.0.1.2, 10.0.1.3
    mode balanced
</role>
";

/// The admin token of every group in this process (the HTTP helpers below send it).
pub fn admin_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| mmm_testkit::pki::random_token().expect("a token"))
}

/// The read-only API token of every group in this process.
pub fn readonly_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| mmm_testkit::pki::random_token().expect("a token"))
}

/// `mmm_common.conf` with the `<socket>` section: the API tokens above, fresh replica and
/// agent tokens, their files in `dir`.
fn common(dir: &Path) -> String {
    let api = mmm_testkit::pki::write_token(dir, "api", admin_token()).expect("token file");
    let read =
        mmm_testkit::pki::write_token(dir, "api-readonly", readonly_token()).expect("token file");
    let (raft, _) = mmm_testkit::pki::token(dir, "raft").expect("token file");
    let (agent, _) = mmm_testkit::pki::token(dir, "agent").expect("token file");
    format!(
        "{COMMON}<socket>\n    api_secret_file {}\n    api_readonly_secret_file {}\n    raft_secret_file {}\n    agent_secret_file {}\n</socket>\n",
        api.display(),
        read.display(),
        raft.display(),
        agent.display()
    )
}

/// Writes `mon{n}.conf` for a group whose members are mon1.. on `ports`.
pub fn write_config(dir: &Path, n: usize, ports: &[u16], extra: &str) {
    let nodes: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            format!(
                "<monitor_node mon{}>\n    ip 127.0.0.1\n    port {port}\n</monitor_node>\n",
                i + 1
            )
        })
        .collect();
    let d = dir.display();
    let text = format!(
        "include mmm_common.conf\n<monitor>\n    node mon{n}\n    data_dir {d}/data{n}\n    pid_path {d}/mon{n}.pid\n    bin_path /usr/lib/mysql-mmm\n    status_path {d}/mon{n}.status\n    ping_ips 127.0.0.1\n{extra}</monitor>\n{nodes}"
    );
    write_private(&dir.join(format!("mon{n}.conf")), &text);
}

/// The three replicas; every process is killed when this is dropped.
pub struct Group {
    dir: tempfile::TempDir,
    pub ports: [u16; 3],
    procs: [Option<Child>; 3],
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write config");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

impl Group {
    /// Starts three replicas.
    pub fn new() -> Group {
        Group::with_monitor_keys("")
    }

    /// Starts three replicas with extra `<monitor>` lines (for example Raft timing).
    pub fn with_monitor_keys(extra: &str) -> Group {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = [free_port(), free_port(), free_port()];
        write_private(&dir.path().join("mmm_common.conf"), &common(dir.path()));
        for i in 0..3 {
            write_config(dir.path(), i + 1, &ports, extra);
        }
        let mut g = Group {
            dir,
            ports,
            procs: [None, None, None],
        };
        for i in 0..3 {
            g.start(i);
        }
        g
    }

    pub fn start(&mut self, i: usize) {
        let log = std::fs::File::create(self.dir.path().join(format!("mon{}.log", i + 1)))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_mmm_mond"))
            .arg("--config")
            .arg(self.dir.path().join(format!("mon{}.conf", i + 1)))
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mmm_mond");
        self.procs[i] = Some(child);
    }

    pub fn signal(&mut self, i: usize, sig: &str) {
        if let Some(c) = &self.procs[i] {
            let status = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {sig} failed");
        }
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `limit` for replica `i` to exit; its exit code, if it exited.
    pub fn wait(&mut self, i: usize, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = &mut self.procs[i] {
                if let Ok(Some(status)) = c.try_wait() {
                    self.procs[i] = None;
                    return status.code();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The directory holding the configuration files and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("data{}", i + 1))
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("mon{}.log", i + 1)))
            .unwrap_or_default()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for i in 0..3 {
            self.signal(i, "-CONT");
            self.kill(i);
        }
    }
}

fn client() -> reqwest::Client {
    let keys = mmm_transport::Keys {
        admin: Some(mmm_config::Secret::new(admin_token())),
        ..mmm_transport::Keys::default()
    };
    mmm_transport::Transport::new(keys, None)
        .client(mmm_transport::Channel::Api)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client")
}

pub async fn leader_info(port: u16) -> Option<LeaderInfo> {
    let r = client()
        .get(format!("http://127.0.0.1:{port}/leader"))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

pub async fn command(port: u16, line: &str) -> Option<CommandReply> {
    let r = client()
        .post(format!("http://127.0.0.1:{port}/api/command"))
        .json(&CommandRequest {
            line: line.into(),
            linearizable: false,
        })
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Waits until `f` gives Some, or panics after `secs` with `what` and the replicas' logs.
pub async fn eventually<T, F, Fut>(g: &Group, secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            panic!(
                "{what}: not after {secs} s\n--- mon1\n{}\n--- mon2\n{}\n--- mon3\n{}",
                g.log(0),
                g.log(1),
                g.log(2)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The index (0..3) of the replica every replica in `among` names leader, other than `not`.
pub async fn agreed_leader(g: &Group, among: &[usize], not: Option<usize>) -> usize {
    eventually(g, 15, "a leader all replicas agree on", || async {
        let mut leader = None;
        for &i in among {
            let name = leader_info(g.ports[i]).await?.leader?;
            if leader.get_or_insert(name.clone()) != &name {
                return None;
            }
        }
        let name = leader?;
        let index = name.strip_prefix("mon")?.parse::<usize>().ok()? - 1;
        (Some(index) != not).then_some(index)
    })
    .await
}

/// Waits until replica `i` answers `mode` with `want`.
pub async fn mode_is(g: &Group, i: usize, want: &str) {
    eventually(g, 15, &format!("mon{} in mode {want}", i + 1), || async {
        let r = command(g.ports[i], "mode").await?;
        (r.reply == want).then_some(())
    })
    .await
}

pub async fn group_status(port: u16) -> Option<GroupStatus> {
    let r = client()
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Waits until every replica has applied the same, latest log index.
pub async fn caught_up(g: &Group) {
    eventually(g, 30, "all replicas caught up", || async {
        let mut applied = Vec::new();
        for &port in &g.ports {
            let s = group_status(port).await?;
            applied.push((s.last_applied_index?, s.last_log_index?));
        }
        let first = applied[0].0;
        applied
            .iter()
            .all(|&(a, l)| a == first && l == first)
            .then_some(())
    })
    .await
}
