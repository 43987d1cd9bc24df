//! Three `mmm_mond` replicas as separate processes on loopback, configured by real MMM files
//! with the monitor-group extension: they elect a leader, commit an admin command sent to a
//! follower on all three, survive SIGKILL and SIGSTOP of replicas, and a killed replica
//! restarted from its sled directory catches up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mmm_core::api::{CommandReply, CommandRequest, LeaderInfo};

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
    ip 10.0.0.1
    mode master
    peer db2
</host>
<host db2>
    ip 10.0.0.2
    mode master
    peer db1
</host>
<host db3>
    ip 10.0.0.3
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

/// The three replicas; every process is killed when this is dropped.
struct Group {
    dir: tempfile::TempDir,
    ports: [u16; 3],
    procs: [Option<Child>; 3],
}

fn free_port() -> u16 {
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
    fn new() -> Group {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = [free_port(), free_port(), free_port()];
        write_private(&dir.path().join("mmm_common.conf"), COMMON);
        let nodes: String = (0..3)
            .map(|i| {
                format!(
                    "<monitor_node mon{}>\n    ip 127.0.0.1\n    port {}\n</monitor_node>\n",
                    i + 1,
                    ports[i]
                )
            })
            .collect();
        for i in 0..3 {
            let n = i + 1;
            let d = dir.path().display();
            let text = format!(
                "include mmm_common.conf\n<monitor>\n    node mon{n}\n    data_dir {d}/data{n}\n    pid_path {d}/mon{n}.pid\n    bin_path /usr/lib/mysql-mmm\n    status_path {d}/mon{n}.status\n    ping_ips 127.0.0.1\n</monitor>\n{nodes}"
            );
            write_private(&dir.path().join(format!("mon{n}.conf")), &text);
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

    fn start(&mut self, i: usize) {
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

    fn signal(&mut self, i: usize, sig: &str) {
        if let Some(c) = &self.procs[i] {
            let status = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {sig} failed");
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("data{}", i + 1))
    }

    fn log(&self, i: usize) -> String {
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
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client")
}

async fn leader_info(port: u16) -> Option<LeaderInfo> {
    let r = client()
        .get(format!("http://127.0.0.1:{port}/leader"))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

async fn command(port: u16, line: &str) -> Option<CommandReply> {
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
async fn eventually<T, F, Fut>(g: &Group, secs: u64, what: &str, mut f: F) -> T
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
async fn agreed_leader(g: &Group, among: &[usize], not: Option<usize>) -> usize {
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
async fn mode_is(g: &Group, i: usize, want: &str) {
    eventually(g, 15, &format!("mon{} in mode {want}", i + 1), || async {
        let r = command(g.ports[i], "mode").await?;
        (r.reply == want).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_to_a_follower_is_committed_on_all_three() {
    let g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    let follower = (leader + 1) % 3;
    let reply = eventually(&g, 15, "set_passive through a follower", || {
        command(g.ports[follower], "set_passive")
    })
    .await;
    assert_eq!(reply.reply, "OK: Switched into passive mode.");
    assert!(reply.ok);
    for i in 0..3 {
        mode_is(&g, i, "PASSIVE").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_another_and_the_restarted_replica_catches_up() {
    let mut g = Group::new();
    let old = agreed_leader(&g, &[0, 1, 2], None).await;
    eventually(&g, 15, "set_manual", || command(g.ports[old], "set_manual")).await;
    for i in 0..3 {
        mode_is(&g, i, "MANUAL").await;
    }

    g.kill(old);
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let new = agreed_leader(&g, &rest, Some(old)).await;
    for &i in &rest {
        mode_is(&g, i, "MANUAL").await;
    }
    let reply = eventually(&g, 15, "set_passive on the new leader", || {
        command(g.ports[new], "set_passive")
    })
    .await;
    assert_eq!(reply.reply, "OK: Switched into passive mode.");

    assert!(g.data_dir(old).exists());
    g.start(old);
    mode_is(&g, old, "PASSIVE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_does_not_block_the_other_two() {
    let mut g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    let paused = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    g.signal(paused, "-STOP");
    let reply = eventually(&g, 15, "set_passive with a follower paused", || {
        command(g.ports[other], "set_passive")
    })
    .await;
    assert!(reply.ok, "{}", reply.reply);
    mode_is(&g, leader, "PASSIVE").await;

    // Pausing the leader too would leave no majority; pause only the leader instead.
    g.signal(paused, "-CONT");
    mode_is(&g, paused, "PASSIVE").await;
    g.signal(leader, "-STOP");
    let rest: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new = agreed_leader(&g, &rest, Some(leader)).await;
    let reply = eventually(&g, 15, "set_manual with the old leader paused", || {
        command(g.ports[new], "set_manual")
    })
    .await;
    assert_eq!(reply.reply, "OK: Switched into manual mode.");
}
