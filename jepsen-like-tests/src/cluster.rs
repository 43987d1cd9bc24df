//! The compose cluster as the harness reaches it: its containers through the docker CLI (exec,
//! kill, pause, and `nsenter` into a container's network namespace for nft rules and address
//! reads), and its monitors over their HTTP API for the replicated state. Nothing here goes
//! anywhere but the containers of the compose project on their own bridge.

use anyhow::{anyhow, bail, Context, Result};
use mmm_core::api::{LeaderInfo, StateReply, LEADER_PATH, STATE_PATH};
use mmm_core::{ClusterState, HostState};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The database hosts of the demo cluster, their addresses and the VIPs (docker-compose.yml).
pub const DB_HOSTS: [(&str, &str); 4] = [
    ("master1", "10.214.0.21"),
    ("master2", "10.214.0.22"),
    ("slave1", "10.214.0.23"),
    ("slave2", "10.214.0.24"),
];
pub const MONITORS: [(&str, &str); 3] = [
    ("monitor1", "10.214.0.11:9988"),
    ("monitor2", "10.214.0.12:9988"),
    ("monitor3", "10.214.0.13:9988"),
];
pub const WRITER_VIP: &str = "10.214.0.100";
pub const READER_VIPS: [&str; 3] = ["10.214.0.101", "10.214.0.102", "10.214.0.103"];
/// The harness' own address on the bridge (the gateway): partitions never cut it, as a
/// Jepsen control node is never cut off, so clients and the prober see both sides.
pub const OBSERVER: &str = "10.214.0.1";
pub const SUBNET: &str = "10.214.0.0/24";

/// How long a docker command may take before it counts as hung.
const DOCKER_LIMIT: Duration = Duration::from_secs(60);

/// Runs `cmd`, feeding it `stdin`; its standard output, or an error naming the command with
/// its standard error.
async fn run(mut cmd: Command, stdin: Option<&str>) -> Result<String> {
    let what = format!("{:?}", cmd.as_std());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
    }
    let out = tokio::time::timeout(DOCKER_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("{what} did not finish within {DOCKER_LIMIT:?}"))??;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The containers of one compose project, by service name.
pub struct Docker {
    ids: BTreeMap<String, String>,
}

impl Docker {
    /// Finds the containers of compose project `project`.
    pub async fn new(project: &str) -> Result<Docker> {
        let mut cmd = Command::new("docker");
        cmd.args([
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.ID}} {{.Label \"com.docker.compose.service\"}}",
        ]);
        let out = run(cmd, None).await?;
        let ids: BTreeMap<String, String> = out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, svc)| (svc.to_string(), id.to_string()))
            .collect();
        for svc in DB_HOSTS.iter().chain(&MONITORS).map(|(n, _)| *n) {
            if !ids.contains_key(svc) {
                bail!("compose project {project} has no container for {svc}: is the demo cluster up (./demo.sh)?");
            }
        }
        Ok(Docker { ids })
    }

    fn id(&self, svc: &str) -> Result<&str> {
        self.ids
            .get(svc)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("no container for service {svc}"))
    }

    /// `docker <verb> <container>`: kill -s KILL, pause, unpause, start.
    pub async fn container(&self, verb: &[&str], svc: &str) -> Result<String> {
        let mut cmd = Command::new("docker");
        cmd.args(verb).arg(self.id(svc)?);
        run(cmd, None).await
    }

    /// Runs `args` inside the container.
    pub async fn exec(&self, svc: &str, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("docker");
        cmd.args(["exec", self.id(svc)?]).args(args);
        run(cmd, None).await
    }

    /// The container's main process as the host sees it; an error when it is not running.
    pub async fn pid(&self, svc: &str) -> Result<u32> {
        let out = self
            .container(&["inspect", "-f", "{{.State.Pid}} {{.State.Status}}"], svc)
            .await?;
        let mut words = out.split_whitespace();
        let pid: u32 = words.next().unwrap_or("0").parse().unwrap_or(0);
        let status = words.next().unwrap_or("?");
        if pid == 0 || status != "running" {
            bail!("{svc} is not running ({status})");
        }
        Ok(pid)
    }

    /// Whether the container is frozen (`docker pause`).
    pub async fn paused(&self, svc: &str) -> Result<bool> {
        let out = self
            .container(&["inspect", "-f", "{{.State.Paused}}"], svc)
            .await?;
        Ok(out.trim() == "true")
    }

    /// Whether the container is running (and not paused).
    pub async fn running(&self, svc: &str) -> bool {
        self.pid(svc).await.is_ok()
    }

    /// A command run by the host in the container's network namespace, `script` on its stdin.
    pub async fn in_netns(&self, svc: &str, args: &[&str], script: Option<&str>) -> Result<String> {
        let pid = self.pid(svc).await?.to_string();
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid, "-n"]).args(args);
        run(cmd, script).await
    }

    /// `mmm_control` in the client container.
    pub async fn control(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["mmm_control"];
        all.extend_from_slice(args);
        self.exec("client", &all).await
    }
}

/// Where the client container keeps the admin token of the monitor API (docker/secrets/).
pub const API_TOKEN_FILE: &str = "/etc/mysql-mmm/api.secret";

/// The monitor group, over its HTTP API.
pub struct Monitors {
    http: reqwest::Client,
}

impl Monitors {
    /// A client that reads with `token` (the API's admin token).
    pub fn new(token: &str) -> Result<Monitors> {
        reqwest::header::HeaderValue::from_str(token.trim())
            .context("the API token is not a valid header value")?;
        let keys = mmm_transport::Keys {
            admin: Some(mmm_config::Secret::new(token.trim())),
            ..mmm_transport::Keys::default()
        };
        let http = mmm_transport::Transport::new(keys, None)
            .client(mmm_transport::Channel::Api)
            .timeout(Duration::from_millis(1500))
            .build()
            .context("the HTTP client")?;
        Ok(Monitors { http })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, addr: &str, path: &str) -> Option<T> {
        let reply = self
            .http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .ok()?;
        reply.json().await.ok()
    }

    /// The leader's name, as the first monitor that knows one says.
    pub async fn leader(&self) -> Option<String> {
        for (_, addr) in MONITORS {
            if let Some(info) = self.get::<LeaderInfo>(addr, LEADER_PATH).await {
                if info.leader.is_some() {
                    return info.leader;
                }
            }
        }
        None
    }

    /// The replicated state as the leader has applied it.
    pub async fn state(&self) -> Option<ClusterState> {
        let leader = self.leader().await?;
        let addr = MONITORS.iter().find(|(n, _)| *n == leader)?.1;
        self.get::<StateReply>(addr, STATE_PATH).await?.state
    }
}

/// The host holding the writer role.
pub fn writer(state: &ClusterState) -> Option<String> {
    state
        .roles
        .get("writer")?
        .iter()
        .find_map(|slot| slot.owner.as_ref().map(|h| h.to_string()))
}

/// Every host ONLINE and one writer: what the nemesis waits for after healing.
pub fn stable(state: &ClusterState) -> bool {
    state.started
        && state.network_up
        && writer(state).is_some()
        && state.hosts.values().all(|h| h.state == HostState::Online)
}

/// The hosts waiting for an operator's `set_online`.
pub fn awaiting_recovery(state: &ClusterState) -> Vec<String> {
    state
        .hosts
        .iter()
        .filter(|(_, h)| h.state == HostState::AwaitingRecovery)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// The hosts the monitors keep out of rotation for errant transactions.
pub fn with_errant_transactions(state: &ClusterState) -> Vec<String> {
    state
        .hosts
        .iter()
        .filter(|(_, h)| h.errant().is_some())
        .map(|(n, _)| n.to_string())
        .collect()
}

/// One line per host: name, state and roles, for progress and failure messages.
pub fn describe(state: &ClusterState) -> String {
    let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (role, slots) in &state.roles {
        for slot in slots {
            if let Some(owner) = &slot.owner {
                roles
                    .entry(owner.to_string())
                    .or_default()
                    .push(format!("{role}({})", slot.ip));
            }
        }
    }
    state
        .hosts
        .iter()
        .map(|(name, h)| {
            let r = roles
                .get(name.as_str())
                .map(|r| r.join(","))
                .unwrap_or_default();
            format!("{name} {:?} {r}", h.state)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
