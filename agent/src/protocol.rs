//! The agent's HTTP API, shared by `mmm_agentd` (server) and the monitor (client).
//!
//! MMM's wire commands become paths: PING, SET_STATUS, GET_SYSTEM_STATUS and CLEAR_BAD_ROLES.
//! Every request names the host it is meant for, and every state-changing request carries the
//! writer epoch; the agent refuses another host's request (400) and an epoch lower than the
//! highest it has seen (409), changing nothing. Unlike MMM's "OK: Status applied successfully!"
//! the reply lists what was done and what failed, with the error.

use std::net::IpAddr;

use mmm_core::AgentStatus;
use serde::{Deserialize, Serialize};

use crate::ops::ServerStatus;

/// `GET`: a `Pong` (MMM's PING).
pub const PING_PATH: &str = "/agent/ping";
/// `POST` a `SetStatus`, answered with a `StatusReply` (MMM's SET_STATUS).
pub const STATUS_PATH: &str = "/agent/status";
/// `GET`: a `SystemStatus` (MMM's GET_SYSTEM_STATUS and GET_AGENT_STATUS).
pub const SYSTEM_PATH: &str = "/agent/system";
/// `POST` a `ClearBadRoles`, answered with a `Cleared` (MMM's CLEAR_BAD_ROLES).
pub const CLEAR_BAD_ROLES_PATH: &str = "/agent/clear_bad_roles";

/// The answer to a ping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// The agent's host.
    pub host: String,
    /// The machine's uptime in seconds (`/proc/uptime`), for reboot detection as in MMM.
    pub uptime_secs: f64,
    /// The highest writer epoch the agent has seen.
    pub epoch: u64,
    /// The status this agent process applied last; absent until a monitor sent one after
    /// the agent started.
    #[serde(default)]
    pub told: Option<AgentStatus>,
}

/// Where the writer role stands on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "writer", rename_all = "snake_case")]
pub enum WriterState {
    /// This host is not told to be the writer.
    NotWriter,
    /// Told to be the writer, but not writable: it has no valid lease (yet), or the promotion
    /// failed (see `reason`).
    Waiting {
        /// Why it is not writable.
        reason: String,
    },
    /// Writable with the writer VIP, under a lease with this much left.
    Active {
        /// Milliseconds until the agent fences itself unless the lease is renewed.
        lease_left_ms: u64,
    },
}

/// A status to apply (the body of `POST` [`STATUS_PATH`]): what the committed state gives
/// the host, and for a new writer the position it must have executed before it takes writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStatus {
    /// The host's status.
    #[serde(flatten)]
    pub status: AgentStatus,
    /// The old writer's last executed GTID position, as it reported it once demoted; absent
    /// when it could not report one (then the promotion waits for the relay log only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_to: Option<String>,
    /// For a new writer without that position (an unplanned move): the other hosts, whose
    /// servers may have executed more than it; it fetches from the one furthest ahead before
    /// it takes writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Of `peers`, those the committed state has HARD_OFFLINE (they still answered pings):
    /// asked with a short connect timeout, since one that is back answers at once and one
    /// still cut off would hold the promotion for a whole connect timeout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offline_peers: Vec<String>,
    /// The Raft term of the leader that sends it (0: not said). At the same epoch, an agent
    /// refuses a status from the leader of an earlier term than one it has heard from: a
    /// deposed leader that has not noticed yet must not undo what its successor told it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub term: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<AgentStatus> for SetStatus {
    /// A status with nothing to catch up to.
    fn from(status: AgentStatus) -> Self {
        SetStatus {
            status,
            catch_up_to: None,
            peers: Vec::new(),
            offline_peers: Vec::new(),
            term: 0,
        }
    }
}

/// What applying a status did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReply {
    /// The agent's host.
    pub host: String,
    /// The epoch now recorded.
    pub epoch: u64,
    /// What was done, in order, e.g. `removed VIP 10.0.0.100 (writer)`.
    pub done: Vec<String>,
    /// What failed, with the error. Empty when everything was applied.
    pub failed: Vec<String>,
    /// The writer role on this host after applying.
    pub writer: WriterState,
    /// The machine's uptime in seconds.
    pub uptime_secs: f64,
    /// What the server has executed, reported by a master that is not the active writer (a
    /// demoted writer's last writes, for the new writer to wait for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

impl StatusReply {
    /// True when every action succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The host as it really is (MMM's GET_SYSTEM_STATUS) and what the agent was told (its
/// GET_AGENT_STATUS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// The agent's host.
    pub host: String,
    /// The machine's uptime in seconds.
    pub uptime_secs: f64,
    /// The highest writer epoch the agent has seen.
    pub epoch: u64,
    /// The status last applied, if any.
    pub told: Option<AgentStatus>,
    /// The writer role on this host.
    pub writer: WriterState,
    /// The local server, when it answered.
    pub mysql: Option<ServerStatus>,
    /// Why the local server did not answer.
    pub mysql_error: Option<String>,
    /// The configured role IPs that are really on the cluster interface.
    pub vips: Vec<IpAddr>,
    /// Why the interface could not be read.
    pub vips_error: Option<String>,
}

/// Remove every configured role IP that is on the interface but not in the agent's roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearBadRoles {
    /// The host the request is for.
    pub host: String,
    /// The sender's writer epoch.
    pub epoch: u64,
}

/// What CLEAR_BAD_ROLES removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleared {
    /// The IPs removed.
    pub removed: Vec<IpAddr>,
    /// What failed.
    pub failed: Vec<String>,
}

/// `GET` (source side): a hot physical copy of the local server as an xbstream
/// (`mariabackup --backup --stream=xbstream`), for the replication account only (HTTP basic
/// authentication). The body ends cleanly only when the backup completed; a failed backup
/// breaks the connection. [`ESTIMATE_HEADER`] says how many bytes to expect.
pub const BACKUP_PATH: &str = "/agent/backup";
/// `GET` (source side): a `BackupReport` of the last backup streamed.
pub const BACKUP_REPORT_PATH: &str = "/agent/backup/report";
/// `POST` a `CloneRequest` to start a clone onto this host (answered with its first
/// `CloneProgress`); `GET` its `CloneProgress`.
pub const CLONE_PATH: &str = "/agent/clone";
/// `POST` a `Repoint`: make this host replicate from another one now (`mmm_control rejoin`),
/// answered with a `Repointed`. Refused for the writer or a host holding roles.
pub const REPOINT_PATH: &str = "/agent/repoint";
/// The size of the source's data directory (binary and relay logs left out), in bytes.
pub const ESTIMATE_HEADER: &str = "x-mmm-estimated-bytes";

/// Replicate from `master` (the body of `POST` [`REPOINT_PATH`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repoint {
    /// The host the request is for.
    pub host: String,
    /// The host to replicate from.
    pub master: String,
}

/// What a re-pointing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepointReply {
    /// The host.
    pub host: String,
    /// What was done, e.g. `replicating from db1 (Gtid)`.
    pub done: String,
}

/// MMM's clone modes (`mmm_clone --clone-mode`): who the clone replicates from afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloneMode {
    /// The source is a master: the clone replicates from it, and the source is pointed back
    /// at the clone (the clone becomes its peer).
    MasterMaster,
    /// The source is a master: the clone replicates from it.
    MasterSlave,
    /// The source is a slave: the clone replicates from the source's master.
    SlaveSlave,
    /// No replication afterwards (mmm_restore's single-single, slave-single and
    /// master-single modes): a standalone server with the copy's data and GTID state.
    Single,
}

impl CloneMode {
    /// The modes of `mmm_clone --clone-mode`, as MMM spells them.
    pub const ALL: [CloneMode; 3] = [
        CloneMode::MasterMaster,
        CloneMode::MasterSlave,
        CloneMode::SlaveSlave,
    ];

    /// MMM's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            CloneMode::MasterMaster => "master-master",
            CloneMode::MasterSlave => "master-slave",
            CloneMode::SlaveSlave => "slave-slave",
            CloneMode::Single => "single",
        }
    }
}

impl std::fmt::Display for CloneMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CloneMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CloneMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown clone mode '{s}': use master-master, master-slave or slave-slave")
            })
    }
}

/// Rebuild this host from `source` (the body of `POST` [`CLONE_PATH`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneRequest {
    /// The host the request is for (the target: this agent's host).
    pub host: String,
    /// The host to copy from.
    pub source: String,
    /// Who the clone replicates from afterwards.
    pub mode: CloneMode,
    /// Restore this backup directory on this host (made by `mmm_backup` from `source`)
    /// instead of streaming a copy from `source`'s agent (`mmm_restore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_dir: Option<std::path::PathBuf>,
}

/// What `mmm_backup` records beside a backup, in `_mmm/status.json`: where it came from and
/// the GTID state `mmm_restore` gives the restored server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStatus {
    /// The host backed up.
    pub host: String,
    /// When, in RFC 3339.
    pub taken_at: String,
    /// The copy's GTID position.
    pub gtid: String,
    /// The host's binary log state at that position.
    pub binlog_state: String,
    /// The host's master then, if it was a slave.
    pub master: Option<String>,
    /// The host's agent's report (lock times).
    pub report: Option<BackupReport>,
}

/// Where a clone stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClonePhase {
    /// Receiving the copy into the staging directory; the server still runs untouched.
    Copying,
    /// Applying the copy's redo log (`mariabackup --prepare`).
    Preparing,
    /// Stopping the local server (`mysql_rcscript stop`).
    Stopping,
    /// Putting the copy in place of the data directory.
    Installing,
    /// Starting the server on the copy (`mysql_rcscript start`).
    Starting,
    /// Pointing it at its master and checking that replication runs.
    Replicating,
    /// Finished: the host replicates from its master.
    Done,
    /// Stopped on an error (see `error`); the data directory is the old one unless the error
    /// says otherwise.
    Failed,
}

/// How long the source's backup blocked its server, and what it copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    /// Bytes streamed.
    pub bytes: u64,
    /// From the start of the backup to its end.
    pub duration_ms: u64,
    /// How long DDL was blocked (`BACKUP STAGE BLOCK_DDL` to the unlock).
    pub ddl_blocked_ms: u64,
    /// How long commits were blocked (`BACKUP STAGE BLOCK_COMMIT`, or `FLUSH TABLES WITH
    /// READ LOCK`, to the unlock): the only time writes waited.
    pub commit_blocked_ms: u64,
    /// The copy's GTID position (`xtrabackup_binlog_info`), when mariabackup printed it.
    pub gtid: Option<String>,
    /// The server's `@@gtid_binlog_state` read just after the backup (see
    /// `core::gtid::BinlogState::at_position`).
    #[serde(default)]
    pub binlog_state: Option<String>,
    /// The host the server replicated from then, if it was a slave of a configured host.
    #[serde(default)]
    pub master: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A clone onto this host, as it goes (`GET` [`CLONE_PATH`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneProgress {
    /// The target host.
    pub host: String,
    /// The source host.
    pub source: String,
    /// The mode.
    pub mode: CloneMode,
    /// Where it stands.
    pub phase: ClonePhase,
    /// Bytes received so far.
    pub bytes: u64,
    /// The source's estimate of the total, when it sent one.
    pub estimated_bytes: Option<u64>,
    /// Since the clone started.
    pub elapsed_ms: u64,
    /// Time spent receiving the copy so far.
    pub copy_ms: u64,
    /// The master the clone replicates from, once known.
    pub master: Option<String>,
    /// The copy's GTID position, once known.
    pub gtid: Option<String>,
    /// The source's report on its backup (lock times), once the copy is received.
    pub source_report: Option<BackupReport>,
    /// What has been done, in order.
    pub done: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl CloneProgress {
    /// The copy rate so far, in bytes per second.
    pub fn rate(&self) -> f64 {
        if self.copy_ms == 0 {
            0.0
        } else {
            self.bytes as f64 * 1000.0 / self.copy_ms as f64
        }
    }

    /// Seconds left to copy at the rate so far, while copying with an estimate.
    pub fn eta_secs(&self) -> Option<u64> {
        let total = self.estimated_bytes?;
        let rate = self.rate();
        (self.phase == ClonePhase::Copying && rate > 0.0)
            .then(|| (total.saturating_sub(self.bytes) as f64 / rate).ceil() as u64)
    }

    /// Finished, one way or the other.
    pub fn finished(&self) -> bool {
        matches!(self.phase, ClonePhase::Done | ClonePhase::Failed)
    }

    /// One line for a terminal: the phase, and while copying bytes, rate and ETA.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}: {} ({} from {})",
            self.host,
            phase_name(self.phase),
            self.mode,
            self.source
        );
        if self.phase == ClonePhase::Copying {
            s.push_str(&format!(", {}", mib(self.bytes)));
            if let Some(total) = self.estimated_bytes {
                s.push_str(&format!(" of ~{}", mib(total)));
            }
            s.push_str(&format!(" at {}/s", mib(self.rate() as u64)));
        }
        if let Some(eta) = self.eta_secs() {
            s.push_str(&format!(", ETA {eta} s"));
        }
        s
    }
}

/// The phase as a verb for humans.
pub fn phase_name(phase: ClonePhase) -> &'static str {
    match phase {
        ClonePhase::Copying => "copying",
        ClonePhase::Preparing => "preparing the copy",
        ClonePhase::Stopping => "stopping mysqld",
        ClonePhase::Installing => "installing the copy",
        ClonePhase::Starting => "starting mysqld",
        ClonePhase::Replicating => "starting replication",
        ClonePhase::Done => "done",
        ClonePhase::Failed => "failed",
    }
}

/// Bytes in MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
