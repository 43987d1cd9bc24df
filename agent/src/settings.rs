//! From an agent's configuration (`mmm_agent.conf` and what it includes) to what `mmm_agentd`
//! needs: its host, roles, replication sources, where to listen, the cluster interface, the
//! local MySQL account and the monitor replicas it asks for leases. Every missing piece is an
//! error naming the section and key to add.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mmm_config::{Config, Secret};
use mmm_core::{HostMode, RoleName};

use crate::agent::{RoleDef, Settings};
use crate::backup::CopySettings;
use crate::ops::Source;

/// The pause between passes of the session killer. MMM slept 1 s; with read_only already on,
/// later passes only catch sessions that reconnected, so a short pause fences sooner.
pub const KILL_PAUSE: Duration = Duration::from_millis(100);

/// Everything `mmm_agentd` runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The agent logic's settings.
    pub settings: Settings,
    /// Where the API listens (`<host this> ip` and `agent_port`).
    pub listen: SocketAddr,
    /// `cluster_interface`.
    pub interface: String,
    /// The local server: `<host this> ip` and `mysql_port`.
    pub mysql_addr: SocketAddr,
    /// `agent_user`.
    pub mysql_user: String,
    /// `agent_password`.
    pub mysql_password: Secret,
    /// `state_dir`.
    pub state_dir: PathBuf,
    /// The monitor replicas.
    pub monitors: Vec<SocketAddr>,
    /// `mysql_pidfile`.
    pub mysql_pidfile: PathBuf,
    /// What cloning needs (`mysql_rcscript`, the tools, every host's agent).
    pub copy: CopySettings,
}

/// What is missing from the configuration.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

fn missing(what: impl Into<String>) -> SettingsError {
    SettingsError(what.into())
}

/// The agent's configuration from a loaded `Config`.
pub fn from_config(config: &Config) -> Result<AgentConfig, SettingsError> {
    let name = config
        .this
        .clone()
        .ok_or_else(|| missing("'this' is not set: name the host this agent runs on"))?;
    let host = config.this_host().ok_or_else(|| {
        missing(format!(
            "this is '{name}' but there is no <host {name}> section"
        ))
    })?;
    let key = |k: &str| format!("<host {name}>: '{k}' is not set");
    let ip = host.ip.ok_or_else(|| missing(key("ip")))?;
    let mode = match host.mode {
        Some(mmm_config::HostMode::Master) => HostMode::Master,
        Some(mmm_config::HostMode::Slave) => HostMode::Slave,
        None => return Err(missing(key("mode"))),
    };
    let writer_role = config
        .active_master_role
        .clone()
        .ok_or_else(|| missing("'active_master_role' is not set"))?;
    let roles = config
        .roles
        .iter()
        .map(|(n, r)| {
            (
                RoleName::new(n.as_str()),
                RoleDef {
                    ips: r.ips.clone(),
                    hosts: r.hosts.clone(),
                },
            )
        })
        .collect();
    let mut sources = BTreeMap::new();
    for (other, h) in &config.hosts {
        let Some(other_ip) = h.ip else { continue };
        let replication_user = host
            .replication_user
            .clone()
            .or_else(|| h.replication_user.clone())
            .ok_or_else(|| missing(key("replication_user")))?;
        let replication_password = host
            .replication_password
            .clone()
            .or_else(|| h.replication_password.clone())
            .ok_or_else(|| missing(key("replication_password")))?;
        let agent_user = h
            .agent_user
            .clone()
            .or_else(|| host.agent_user.clone())
            .ok_or_else(|| missing(format!("<host {other}>: 'agent_user' is not set")))?;
        let agent_password = h
            .agent_password
            .clone()
            .or_else(|| host.agent_password.clone())
            .ok_or_else(|| missing(format!("<host {other}>: 'agent_password' is not set")))?;
        sources.insert(
            other.clone(),
            Source {
                name: other.clone(),
                host: other_ip.to_string(),
                port: h.mysql_port,
                replication_user,
                replication_password,
                agent_user,
                agent_password,
            },
        );
    }
    let group = config.monitor_group().ok_or_else(|| {
        missing("no monitor replica is configured: the agent asks the monitor group for the writer lease, so add the <monitor_node NAME> sections (or <monitor> ip and port) to the common configuration")
    })?;
    let renew_every = config
        .monitor
        .as_ref()
        .map(|m| m.lease_renew_interval)
        .unwrap_or(Duration::from_millis(300));
    let this_source = sources
        .get(&name)
        .cloned()
        .ok_or_else(|| missing(key("ip")))?;
    let settings = Settings {
        host: name.clone(),
        mode,
        writer_role: RoleName::new(writer_role.as_str()),
        roles,
        sources,
        max_kill_retries: config.max_kill_retries,
        kill_pause: KILL_PAUSE,
        fence_margin: host.fence_margin,
        catchup_timeout: host.catchup_timeout,
        catchup_policy: host.catchup_policy,
        renew_every,
        uptime: crate::agent::uptime_secs,
    };
    let agent_user = host
        .agent_user
        .clone()
        .ok_or_else(|| missing(key("agent_user")))?;
    let agent_password = host
        .agent_password
        .clone()
        .ok_or_else(|| missing(key("agent_password")))?;
    let copy = CopySettings {
        host: name.clone(),
        mysql_addr: SocketAddr::new(ip, host.mysql_port),
        mysql_user: agent_user.clone(),
        mysql_password: agent_password.clone(),
        replication_user: this_source.replication_user,
        replication_password: this_source.replication_password,
        state_dir: host.state_dir.clone(),
        rcscript: host.mysql_rcscript.clone(),
        mariabackup: PathBuf::from("mariabackup"),
        mbstream: PathBuf::from("mbstream"),
        agents: config
            .hosts
            .iter()
            .filter_map(|(n, h)| {
                h.ip.map(|ip| (n.clone(), SocketAddr::new(ip, h.agent_port)))
            })
            .collect(),
    };
    Ok(AgentConfig {
        copy,
        settings,
        listen: SocketAddr::new(ip, host.agent_port),
        interface: host
            .cluster_interface
            .clone()
            .ok_or_else(|| missing(key("cluster_interface")))?,
        mysql_addr: SocketAddr::new(ip, host.mysql_port),
        mysql_user: agent_user,
        mysql_password: agent_password,
        state_dir: host.state_dir.clone(),
        monitors: group.members.iter().map(|m| m.addr).collect(),
        mysql_pidfile: host.mysql_pidfile.clone(),
    })
}
