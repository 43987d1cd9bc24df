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
    /// For a new writer without that position (an unplanned move): the other hosts whose
    /// server may have executed more than it (every host the committed state does not have
    /// HARD_OFFLINE); it fetches from the one furthest ahead before it takes writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

impl From<AgentStatus> for SetStatus {
    /// A status with nothing to catch up to.
    fn from(status: AgentStatus) -> Self {
        SetStatus {
            status,
            catch_up_to: None,
            peers: Vec::new(),
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
