//! The typed configuration: what every key means, with MMM's defaults.
//!
//! Keys that some program requires and that have no default are `Option`s; after
//! [`crate::load`] succeeds for a program, every key that program requires is `Some` (see the
//! table in `keys.rs`). Keys with a default hold the default when the file does not set them.
//! Each section type has a `set` method that parses one `key value` into its field; the loader
//! calls it for template values first and then for the section's own lines, so the last value
//! written wins, as in MMM.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Warning;
use crate::secret::Secret;
use crate::value::{self, Parsed};

/// A parse failure for an enum spelled differently from the config words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid value")]
pub struct UnknownWord(pub String);

macro_rules! config_words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value with its config spelling.
            pub const WORDS: &'static [(&'static str, $name)] = &[$(($word, $name::$variant)),+];

            /// The config spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::WORDS
                    .iter()
                    .find(|(word, _)| *word == s)
                    .map(|(_, value)| *value)
                    .ok_or_else(|| UnknownWord(s.to_string()))
            }
        }
    };
}

config_words!(
    /// `<host> mode`.
    HostMode {
        /// One of the two co-masters; needs a `peer`.
        Master => "master",
        /// A replica of the active master.
        Slave => "slave",
    }
);

config_words!(
    /// `<host> catchup_policy` (extension): what a promotion does when the new writer cannot
    /// catch up within `catchup_timeout`.
    CatchupPolicy {
        /// Stay read-only and try again on every pass until it has caught up: no write the
        /// old writer or a peer acknowledged is lost, but there is no writer meanwhile.
        Wait => "wait",
        /// Take writes anyway, with an error in the log and the status saying what may be
        /// missing: the writer is back at once, at the risk of losing acknowledged writes.
        Promote => "promote",
    }
);

config_words!(
    /// `<role> mode`.
    RoleMode {
        /// One host holds every IP of the role (the writer).
        Exclusive => "exclusive",
        /// The IPs are spread over the role's hosts (the readers).
        Balanced => "balanced",
    }
);

config_words!(
    /// `<monitor> mode` (reference section 1.6).
    MonitorMode {
        /// Full automation.
        Active => "active",
        /// State changes happen but roles are not taken from failed hosts.
        Manual => "manual",
        /// Like manual until both masters are online or `wait_for_other_master` passes.
        Wait => "wait",
        /// No role changes and no agent traffic.
        Passive => "passive",
    }
);

config_words!(
    /// `<socket> type`.
    SocketType {
        /// Plain TCP.
        Plain => "plain",
        /// TLS with client certificates.
        Ssl => "ssl",
    }
);

config_words!(
    /// The four checks MMM runs on every host.
    CheckName {
        /// ICMP reachability.
        Ping => "ping",
        /// A MySQL connection and `SELECT NOW()`.
        Mysql => "mysql",
        /// Both replication threads running.
        RepThreads => "rep_threads",
        /// Replication lag within `max_backlog`.
        RepBacklog => "rep_backlog",
    }
);

impl CheckName {
    /// The checks in the order MMM lists them.
    pub const ALL: [CheckName; 4] = [
        CheckName::Ping,
        CheckName::Mysql,
        CheckName::RepThreads,
        CheckName::RepBacklog,
    ];
}

/// The whole configuration as one program sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `this`: the host this agent (or tool) runs on.
    pub this: Option<String>,
    /// `debug` (default off): run in the foreground and log at DEBUG to stdout.
    pub debug: bool,
    /// `active_master_role`: the exclusive role that means "writable master", usually `writer`.
    pub active_master_role: Option<String>,
    /// `max_kill_retries` (default 10): passes of the connection killer on demotion.
    pub max_kill_retries: u32,
    /// `default_copy_method` (tools).
    pub default_copy_method: Option<String>,
    /// `clone_dirs` (tools): directories below the snapshot to copy.
    pub clone_dirs: Vec<String>,
    /// `<monitor>`, if the files have one.
    pub monitor: Option<Monitor>,
    /// `<socket>` (always present; plain by default).
    pub socket: Socket,
    /// `<host NAME>` sections, by name, with `<host default>` applied.
    pub hosts: BTreeMap<String, Host>,
    /// `<role NAME>` sections, by name.
    pub roles: BTreeMap<String, Role>,
    /// The four checks, always present, with `<check default>` and MMM's defaults applied.
    pub checks: BTreeMap<CheckName, Check>,
    /// `<copy_method NAME>` sections (tools), with `<copy_method default>` applied.
    pub copy_methods: BTreeMap<String, CopyMethod>,
    /// `<monitor_node NAME>` sections (extension): the replicas of the monitor group.
    pub monitor_nodes: BTreeMap<String, MonitorNode>,
    /// Every file read, in reading order, spelled as given or as found.
    pub files: Vec<PathBuf>,
    /// Things MMM accepted silently but that look like mistakes.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// A configuration with no sections and every top-level default.
    pub(crate) fn empty() -> Self {
        Config {
            this: None,
            debug: false,
            active_master_role: None,
            max_kill_retries: 10,
            default_copy_method: None,
            clone_dirs: Vec::new(),
            monitor: None,
            socket: Socket::default(),
            hosts: BTreeMap::new(),
            roles: BTreeMap::new(),
            checks: CheckName::ALL
                .into_iter()
                .map(|name| (name, Check::new(name)))
                .collect(),
            copy_methods: BTreeMap::new(),
            monitor_nodes: BTreeMap::new(),
            files: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        match key {
            "this" => self.this = Some(value::name(text)?),
            "debug" => self.debug = value::boolean(text)?,
            "active_master_role" => self.active_master_role = Some(value::name(text)?),
            "max_kill_retries" => self.max_kill_retries = value::count(text)?,
            "default_copy_method" => self.default_copy_method = Some(value::name(text)?),
            "clone_dirs" => return value::store(&mut self.clone_dirs, value::name_list(text)),
            _ => return unknown(key),
        }
        Ok(())
    }

    /// The host named by `this`.
    pub fn this_host(&self) -> Option<&Host> {
        self.this.as_ref().and_then(|name| self.hosts.get(name))
    }

    /// The role named by `active_master_role`.
    pub fn active_master(&self) -> Option<&Role> {
        self.active_master_role
            .as_ref()
            .and_then(|name| self.roles.get(name))
    }

    /// The parameters of one check.
    pub fn check(&self, name: CheckName) -> Check {
        self.checks
            .get(&name)
            .cloned()
            .unwrap_or_else(|| Check::new(name))
    }

    /// The monitor group: its members and which one this file is for.
    ///
    /// With `<monitor_node NAME>` sections, the members are those nodes (sorted by name) and
    /// this replica is `<monitor> node`. Without them, the group is the single replica at
    /// `<monitor> ip:port`, named after `node` if set and `mon1` otherwise, and it is this
    /// replica. `None` when there is neither a monitor node nor a `<monitor> ip`.
    pub fn monitor_group(&self) -> Option<MonitorGroup> {
        let node = self.monitor.as_ref().and_then(|m| m.node.clone());
        if !self.monitor_nodes.is_empty() {
            let members = self
                .monitor_nodes
                .values()
                .map(|node| MonitorMember {
                    name: node.name.clone(),
                    addr: node.addr(),
                })
                .collect();
            return Some(MonitorGroup {
                members,
                this: node.filter(|name| self.monitor_nodes.contains_key(name)),
                implicit: false,
            });
        }
        let monitor = self.monitor.as_ref()?;
        let ip = monitor.ip?;
        let name = node.unwrap_or_else(|| IMPLICIT_MONITOR_NODE.to_string());
        Some(MonitorGroup {
            members: vec![MonitorMember {
                name: name.clone(),
                addr: SocketAddr::new(ip, monitor.port),
            }],
            this: Some(name),
            implicit: true,
        })
    }
}

/// The name of the single replica of a config without `<monitor_node>` sections (unless
/// `<monitor> node` names it).
pub const IMPLICIT_MONITOR_NODE: &str = "mon1";

/// The replicas of the monitor group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorGroup {
    /// Every replica, sorted by name.
    pub members: Vec<MonitorMember>,
    /// The replica this file is for, if the file says (`<monitor> node`).
    pub this: Option<String>,
    /// Whether the group is the implicit single replica of a plain MMM config.
    pub implicit: bool,
}

impl MonitorGroup {
    /// The member this file is for.
    pub fn this_member(&self) -> Option<&MonitorMember> {
        let this = self.this.as_ref()?;
        self.members.iter().find(|member| &member.name == this)
    }
}

/// One replica of the monitor group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorMember {
    /// The node's name.
    pub name: String,
    /// Where it listens (API and Raft).
    pub addr: SocketAddr,
}

/// `<monitor>`: MMM's monitor settings plus the monitor-group extension.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    /// `ip`: where mmm_control connects and the monitor listens.
    pub ip: Option<IpAddr>,
    /// `port` (default 9988).
    pub port: u16,
    /// `pid_path`.
    pub pid_path: Option<PathBuf>,
    /// `bin_path`: MMM's helper directory.
    pub bin_path: Option<PathBuf>,
    /// `status_path`: the state file.
    pub status_path: Option<PathBuf>,
    /// `ping_interval` (default 1 s): how often the network check pings `ping_ips`.
    pub ping_interval: Duration,
    /// `ping_ips`: the network is up when any of them answers.
    pub ping_ips: Vec<IpAddr>,
    /// `flap_duration` (default 3600 s).
    pub flap_duration: Duration,
    /// `flap_count` (default 3).
    pub flap_count: u32,
    /// `auto_set_online` (default 0 = never; see [`Monitor::auto_set_online_after`]).
    pub auto_set_online: Duration,
    /// `kill_host_bin` (default `kill_host`; see [`Monitor::kill_host_path`]).
    pub kill_host_bin: String,
    /// `careful_startup` (default on).
    pub careful_startup: bool,
    /// `mode` (default active).
    pub mode: MonitorMode,
    /// `wait_for_other_master` (default 120 s; 0 = wait forever).
    pub wait_for_other_master: Duration,
    /// `node` (extension): which `<monitor_node>` this file is for.
    pub node: Option<String>,
    /// `data_dir` (extension, default `/var/lib/mysql-mmm/raft`): Raft log and state.
    pub data_dir: PathBuf,
    /// `lease` (extension, default 1.5 s): how long a writer's lease lasts.
    pub lease: Duration,
    /// `lease_renew_interval` (extension, default 0.3 s): how often the writer renews it.
    pub lease_renew_interval: Duration,
    /// `clock_drift` (extension, default 0.01): the bound on clock-rate difference, a fraction.
    pub clock_drift: f64,
    /// `raft_heartbeat` (extension, default 0.1 s).
    pub raft_heartbeat: Duration,
    /// `election_timeout_min` (extension, default 0.3 s).
    pub election_timeout_min: Duration,
    /// `election_timeout_max` (extension, default 0.5 s: openraft makes followers refuse votes
    /// for this long after the leader's last heartbeat, so failover takes about this plus one
    /// election round; see BENCHMARKS.md).
    pub election_timeout_max: Duration,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            ip: None,
            port: 9988,
            pid_path: None,
            bin_path: None,
            status_path: None,
            ping_interval: Duration::from_secs(1),
            ping_ips: Vec::new(),
            flap_duration: Duration::from_secs(3600),
            flap_count: 3,
            auto_set_online: Duration::ZERO,
            kill_host_bin: "kill_host".to_string(),
            careful_startup: true,
            mode: MonitorMode::Active,
            wait_for_other_master: Duration::from_secs(120),
            node: None,
            data_dir: PathBuf::from("/var/lib/mysql-mmm/raft"),
            lease: Duration::from_millis(1500),
            lease_renew_interval: Duration::from_millis(300),
            clock_drift: 0.01,
            raft_heartbeat: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(500),
        }
    }
}

impl Monitor {
    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        match key {
            "ip" => self.ip = Some(value::ip(text)?),
            "port" => self.port = value::port(text)?,
            "pid_path" => self.pid_path = Some(PathBuf::from(text)),
            "bin_path" => self.bin_path = Some(PathBuf::from(text)),
            "status_path" => self.status_path = Some(PathBuf::from(text)),
            "ping_interval" => self.ping_interval = value::seconds(text)?,
            "ping_ips" => return value::store(&mut self.ping_ips, value::ip_list(text)),
            "flap_duration" => self.flap_duration = value::seconds(text)?,
            "flap_count" => self.flap_count = value::count(text)?,
            "auto_set_online" => self.auto_set_online = value::seconds(text)?,
            "kill_host_bin" => self.kill_host_bin = text.to_string(),
            "careful_startup" => self.careful_startup = value::boolean(text)?,
            "mode" => self.mode = value::one_of(text, MonitorMode::WORDS)?,
            "wait_for_other_master" => self.wait_for_other_master = value::seconds(text)?,
            "node" => self.node = Some(value::name(text)?),
            "data_dir" => self.data_dir = PathBuf::from(text),
            "lease" => self.lease = value::seconds(text)?,
            "lease_renew_interval" => self.lease_renew_interval = value::seconds(text)?,
            "clock_drift" => self.clock_drift = value::drift_fraction(text)?,
            "raft_heartbeat" => self.raft_heartbeat = value::seconds(text)?,
            "election_timeout_min" => self.election_timeout_min = value::seconds(text)?,
            "election_timeout_max" => self.election_timeout_max = value::seconds(text)?,
            _ => return unknown(key),
        }
        Ok(())
    }

    /// How long a healthy host waits in AWAITING_RECOVERY before going ONLINE by itself;
    /// `None` for `auto_set_online 0`, which in MMM 2.2.1 means never (reference 1.9).
    pub fn auto_set_online_after(&self) -> Option<Duration> {
        (!self.auto_set_online.is_zero()).then_some(self.auto_set_online)
    }

    /// How long WAIT mode waits for the second master; `None` for 0, which means forever.
    pub fn wait_for_other_master_limit(&self) -> Option<Duration> {
        (!self.wait_for_other_master.is_zero()).then_some(self.wait_for_other_master)
    }

    /// The kill-host program: `kill_host_bin` as is when absolute, otherwise relative to
    /// `<bin_path>/monitor/` (`Monitor.pm:119-129`); `None` when that needs an unset `bin_path`.
    pub fn kill_host_path(&self) -> Option<PathBuf> {
        if self.kill_host_bin.starts_with('/') {
            return Some(PathBuf::from(&self.kill_host_bin));
        }
        self.bin_path
            .as_ref()
            .map(|bin| bin.join("monitor").join(&self.kill_host_bin))
    }
}

/// `<socket>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    /// `type` (default plain).
    pub kind: SocketType,
    /// `cert_file` (required with ssl).
    pub cert_file: Option<PathBuf>,
    /// `key_file` (required with ssl).
    pub key_file: Option<PathBuf>,
    /// `ca_file` (required with ssl).
    pub ca_file: Option<PathBuf>,
    /// `api_secret_file` (extension): the admin token of the monitor API (`mmm_control`).
    pub api_secret_file: Option<PathBuf>,
    /// `api_readonly_secret_file` (extension): a token that may only read the monitor API.
    pub api_readonly_secret_file: Option<PathBuf>,
    /// `raft_secret_file` (extension): the token between monitor replicas.
    pub raft_secret_file: Option<PathBuf>,
    /// `agent_secret_file` (extension): the token between the monitors (and the tools) and the
    /// agents.
    pub agent_secret_file: Option<PathBuf>,
}

impl Default for Socket {
    fn default() -> Self {
        Socket {
            kind: SocketType::Plain,
            cert_file: None,
            key_file: None,
            ca_file: None,
            api_secret_file: None,
            api_readonly_secret_file: None,
            raft_secret_file: None,
            agent_secret_file: None,
        }
    }
}

impl Socket {
    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        match key {
            "type" => self.kind = value::one_of(text, SocketType::WORDS)?,
            "cert_file" => self.cert_file = Some(PathBuf::from(text)),
            "key_file" => self.key_file = Some(PathBuf::from(text)),
            "ca_file" => self.ca_file = Some(PathBuf::from(text)),
            "api_secret_file" => self.api_secret_file = Some(PathBuf::from(text)),
            "api_readonly_secret_file" => {
                self.api_readonly_secret_file = Some(PathBuf::from(text));
            }
            "raft_secret_file" => self.raft_secret_file = Some(PathBuf::from(text)),
            "agent_secret_file" => self.agent_secret_file = Some(PathBuf::from(text)),
            _ => return unknown(key),
        }
        Ok(())
    }
}

/// `<host NAME>`, with `<host default>` applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The section name.
    pub name: String,
    /// `ip`.
    pub ip: Option<IpAddr>,
    /// `mode`.
    pub mode: Option<HostMode>,
    /// `peer`: the other master (required when mode is master).
    pub peer: Option<String>,
    /// `pid_path` (agent).
    pub pid_path: Option<PathBuf>,
    /// `bin_path` (agent).
    pub bin_path: Option<PathBuf>,
    /// `agent_port` (default 9989).
    pub agent_port: u16,
    /// `cluster_interface` (agent): where the role IPs go.
    pub cluster_interface: Option<String>,
    /// `state_dir` (extension, agent, default `/var/lib/mysql-mmm/agent`): where the agent keeps
    /// the highest writer epoch it has seen.
    pub state_dir: PathBuf,
    /// `fence_margin` (extension, agent, default 0.3 s): how long before its lease runs out the
    /// writer's agent starts fencing itself, so the fence is complete when the lease ends.
    pub fence_margin: Duration,
    /// `catchup_timeout` (extension, agent, default 10 s): how long a promotion or re-pointing
    /// waits for the relay log to be applied before it gives up and reports it.
    pub catchup_timeout: Duration,
    /// `catchup_policy` (extension, agent, default `wait`): what a promotion does when it cannot
    /// catch up within `catchup_timeout`.
    pub catchup_policy: CatchupPolicy,
    /// `mysql_port` (default 3306).
    pub mysql_port: u16,
    /// `mysql_pidfile` (default `/var/run/mysqld/mysqld.pid`).
    pub mysql_pidfile: PathBuf,
    /// `mysql_rcscript` (default `/etc/init.d/mysql`).
    pub mysql_rcscript: PathBuf,
    /// `mysql_cnf` (default `/etc/my.cnf`).
    pub mysql_cnf: PathBuf,
    /// `agent_user` (agent).
    pub agent_user: Option<String>,
    /// `agent_password` (agent).
    pub agent_password: Option<Secret>,
    /// `monitor_user` (monitor).
    pub monitor_user: Option<String>,
    /// `monitor_password` (monitor).
    pub monitor_password: Option<Secret>,
    /// `replication_user` (agent, tools).
    pub replication_user: Option<String>,
    /// `replication_password` (agent, tools).
    pub replication_password: Option<Secret>,
    /// `ssh_user` (tools).
    pub ssh_user: Option<String>,
    /// `ssh_port` (default 22).
    pub ssh_port: u16,
    /// `ssh_parameters` (default empty).
    pub ssh_parameters: String,
    /// `tools_user` (tools).
    pub tools_user: Option<String>,
    /// `tools_password` (tools).
    pub tools_password: Option<Secret>,
    /// `backup_dir` (tools).
    pub backup_dir: Option<PathBuf>,
    /// `restore_dir` (tools).
    pub restore_dir: Option<PathBuf>,
    /// `lvm_bin_lvcreate` (default `lvcreate`).
    pub lvm_bin_lvcreate: String,
    /// `lvm_bin_lvremove` (default `lvremove`).
    pub lvm_bin_lvremove: String,
    /// `lvm_snapshot_size` (tools), such as `1G`.
    pub lvm_snapshot_size: Option<String>,
    /// `lvm_logical_volume` (tools).
    pub lvm_logical_volume: Option<String>,
    /// `lvm_volume_group` (tools).
    pub lvm_volume_group: Option<String>,
    /// `lvm_mount_dir` (tools).
    pub lvm_mount_dir: Option<PathBuf>,
    /// `lvm_mount_opts` (tools), such as `-orw,nouuid` (one string, not a list).
    pub lvm_mount_opts: Option<String>,
}

impl Host {
    pub(crate) fn new(name: &str) -> Self {
        Host {
            name: name.to_string(),
            ip: None,
            mode: None,
            peer: None,
            pid_path: None,
            bin_path: None,
            agent_port: 9989,
            cluster_interface: None,
            state_dir: PathBuf::from("/var/lib/mysql-mmm/agent"),
            fence_margin: Duration::from_millis(300),
            catchup_timeout: Duration::from_secs(10),
            catchup_policy: CatchupPolicy::Wait,
            mysql_port: 3306,
            mysql_pidfile: PathBuf::from("/var/run/mysqld/mysqld.pid"),
            mysql_rcscript: PathBuf::from("/etc/init.d/mysql"),
            mysql_cnf: PathBuf::from("/etc/my.cnf"),
            agent_user: None,
            agent_password: None,
            monitor_user: None,
            monitor_password: None,
            replication_user: None,
            replication_password: None,
            ssh_user: None,
            ssh_port: 22,
            ssh_parameters: String::new(),
            tools_user: None,
            tools_password: None,
            backup_dir: None,
            restore_dir: None,
            lvm_bin_lvcreate: "lvcreate".to_string(),
            lvm_bin_lvremove: "lvremove".to_string(),
            lvm_snapshot_size: None,
            lvm_logical_volume: None,
            lvm_volume_group: None,
            lvm_mount_dir: None,
            lvm_mount_opts: None,
        }
    }

    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        let string = || Some(text.to_string());
        let path = || Some(PathBuf::from(text));
        let secret = || Some(Secret::new(text));
        match key {
            "ip" => self.ip = Some(value::ip(text)?),
            "mode" => self.mode = Some(value::one_of(text, HostMode::WORDS)?),
            "peer" => self.peer = Some(value::name(text)?),
            "pid_path" => self.pid_path = path(),
            "bin_path" => self.bin_path = path(),
            "agent_port" => self.agent_port = value::port(text)?,
            "cluster_interface" => self.cluster_interface = string(),
            "state_dir" => self.state_dir = PathBuf::from(text),
            "fence_margin" => self.fence_margin = value::seconds(text)?,
            "catchup_timeout" => self.catchup_timeout = value::seconds(text)?,
            "catchup_policy" => {
                self.catchup_policy = value::one_of(text, CatchupPolicy::WORDS)?;
            }
            "mysql_port" => self.mysql_port = value::port(text)?,
            "mysql_pidfile" => self.mysql_pidfile = PathBuf::from(text),
            "mysql_rcscript" => self.mysql_rcscript = PathBuf::from(text),
            "mysql_cnf" => self.mysql_cnf = PathBuf::from(text),
            "agent_user" => self.agent_user = string(),
            "agent_password" => self.agent_password = secret(),
            "monitor_user" => self.monitor_user = string(),
            "monitor_password" => self.monitor_password = secret(),
            "replication_user" => self.replication_user = string(),
            "replication_password" => self.replication_password = secret(),
            "ssh_user" => self.ssh_user = string(),
            "ssh_port" => self.ssh_port = value::port(text)?,
            "ssh_parameters" => self.ssh_parameters = text.to_string(),
            "tools_user" => self.tools_user = string(),
            "tools_password" => self.tools_password = secret(),
            "backup_dir" => self.backup_dir = path(),
            "restore_dir" => self.restore_dir = path(),
            "lvm_bin_lvcreate" => self.lvm_bin_lvcreate = text.to_string(),
            "lvm_bin_lvremove" => self.lvm_bin_lvremove = text.to_string(),
            "lvm_snapshot_size" => self.lvm_snapshot_size = string(),
            "lvm_logical_volume" => self.lvm_logical_volume = string(),
            "lvm_volume_group" => self.lvm_volume_group = string(),
            "lvm_mount_dir" => self.lvm_mount_dir = path(),
            "lvm_mount_opts" => self.lvm_mount_opts = string(),
            _ => return unknown(key),
        }
        Ok(())
    }
}

/// `<role NAME>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// The section name.
    pub name: String,
    /// `mode` (monitor).
    pub mode: Option<RoleMode>,
    /// `hosts`: who may hold the role, in the order written.
    pub hosts: Vec<String>,
    /// `ips`: the role's virtual IPs, in the order written.
    pub ips: Vec<IpAddr>,
    /// `prefer`: the host an exclusive role moves back to when it is online.
    pub prefer: Option<String>,
}

impl Role {
    pub(crate) fn new(name: &str) -> Self {
        Role {
            name: name.to_string(),
            mode: None,
            hosts: Vec::new(),
            ips: Vec::new(),
            prefer: None,
        }
    }

    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        match key {
            "mode" => self.mode = Some(value::one_of(text, RoleMode::WORDS)?),
            "hosts" => return value::store(&mut self.hosts, value::name_list(text)),
            "ips" => return value::store(&mut self.ips, value::ip_list(text)),
            "prefer" => self.prefer = Some(value::name(text)?),
            _ => return unknown(key),
        }
        Ok(())
    }
}

/// `<check NAME>`, with `<check default>` and MMM's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Which check.
    pub name: CheckName,
    /// `check_period` (default 5 s): the pause between rounds over all hosts.
    pub check_period: Duration,
    /// `trap_period` (default 10 s): how long a failure must last before it is reported.
    pub trap_period: Duration,
    /// `timeout` (default 2 s).
    pub timeout: Duration,
    /// `restart_after` (default 10000 checks; does nothing in MMM 2.2.1).
    pub restart_after: u64,
    /// `max_backlog` (default 60 s): the replication lag that fails rep_backlog.
    pub max_backlog: Duration,
}

impl Check {
    pub(crate) fn new(name: CheckName) -> Self {
        Check {
            name,
            check_period: Duration::from_secs(5),
            trap_period: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            restart_after: 10_000,
            max_backlog: Duration::from_secs(60),
        }
    }

    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        match key {
            "check_period" => self.check_period = value::seconds(text)?,
            "trap_period" => self.trap_period = value::seconds(text)?,
            "timeout" => self.timeout = value::seconds(text)?,
            "restart_after" => self.restart_after = value::count(text)?,
            "max_backlog" => self.max_backlog = value::seconds(text)?,
            _ => return unknown(key),
        }
        Ok(())
    }
}

/// `<copy_method NAME>` (tools), with `<copy_method default>` applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyMethod {
    /// The section name.
    pub name: String,
    /// `backup_command` (required).
    pub backup_command: Option<String>,
    /// `restore_command` (required).
    pub restore_command: Option<String>,
    /// `incremental_command` (required when `incremental`).
    pub incremental_command: Option<String>,
    /// `incremental` (default off).
    pub incremental: bool,
    /// `single_run` (default off).
    pub single_run: bool,
    /// `true_copy` (default off): usable by mmm_clone.
    pub true_copy: bool,
}

impl CopyMethod {
    pub(crate) fn new(name: &str) -> Self {
        CopyMethod {
            name: name.to_string(),
            backup_command: None,
            restore_command: None,
            incremental_command: None,
            incremental: false,
            single_run: false,
            true_copy: false,
        }
    }

    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        match key {
            "backup_command" => self.backup_command = Some(text.to_string()),
            "restore_command" => self.restore_command = Some(text.to_string()),
            "incremental_command" => self.incremental_command = Some(text.to_string()),
            "incremental" => self.incremental = value::boolean(text)?,
            "single_run" => self.single_run = value::boolean(text)?,
            "true_copy" => self.true_copy = value::boolean(text)?,
            _ => return unknown(key),
        }
        Ok(())
    }
}

/// `<monitor_node NAME>` (extension): one replica of the monitor group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorNode {
    /// The section name.
    pub name: String,
    /// `ip` (required).
    pub ip: Option<IpAddr>,
    /// `port` (default 9988).
    pub port: u16,
}

impl MonitorNode {
    pub(crate) fn new(name: &str) -> Self {
        MonitorNode {
            name: name.to_string(),
            ip: None,
            port: 9988,
        }
    }

    pub(crate) fn set(&mut self, key: &str, text: &str) -> Parsed<()> {
        match key {
            "ip" => self.ip = Some(value::ip(text)?),
            "port" => self.port = value::port(text)?,
            _ => return unknown(key),
        }
        Ok(())
    }

    /// Where the node listens. A node without `ip` fails validation, so a loaded config
    /// never shows the unspecified address used here as a stand-in.
    pub fn addr(&self) -> SocketAddr {
        let ip = self
            .ip
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, self.port)
    }
}

/// The `set` fallback; the loader checks keys against `keys.rs` first, so this is not reached
/// for keys of the table.
fn unknown(key: &str) -> Parsed<()> {
    Err(vec![value::Bad {
        value: key.to_string(),
        expected: "a known key".to_string(),
    }])
}
