//! The monitor's HTTP API, shared by `mmm_mond` (server) and `mmm_control` (client).
//!
//! Every replica serves every path. Read-only commands are answered from the replica's own
//! state (or, with `linearizable`, after the leader confirms it still leads); commands that
//! change state are forwarded to the leader. Replies carry MMM's exact text plus where the
//! answer came from. Errors are JSON `ApiError` bodies with a 4xx or 5xx status.

use serde::{Deserialize, Serialize};

/// `GET`: 200 while the process is alive.
pub const HEALTHZ_PATH: &str = "/healthz";
/// `GET`: 200 on the leader only (for load balancers), 503 elsewhere; body `LeaderInfo`.
pub const LEADER_PATH: &str = "/leader";
/// `GET`: this replica's view of the monitor group, `GroupStatus`.
pub const STATUS_PATH: &str = "/status";
/// `POST` a `CommandRequest`, answered with a `CommandReply`.
pub const COMMAND_PATH: &str = "/api/command";
/// `GET`: the whole replicated cluster state as JSON (a `StateReply`), for `--json` and
/// `history`.
pub const STATE_PATH: &str = "/api/state";

/// A replica's own applied state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateReply {
    /// The replica that answered.
    pub replica: String,
    /// The log index of the last applied entry.
    pub log_index: Option<u64>,
    /// The cluster definition, once configured.
    pub topology: Option<crate::Topology>,
    /// The replicated state, once configured.
    pub state: Option<crate::ClusterState>,
}

/// An mmm_control command line, as MMM sent it (arguments joined by spaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRequest {
    /// The command line, e.g. `set_online db1`.
    pub line: String,
    /// Answer a read-only command only after the leader confirms it still leads.
    #[serde(default)]
    pub linearizable: bool,
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    /// MMM's reply text, exactly; mmm_control prints it followed by a newline.
    pub reply: String,
    /// False when the reply reports an error (mmm_control then exits 1).
    pub ok: bool,
    /// The replica whose state answered.
    pub replica: String,
    /// The leader as that replica knows it.
    pub leader: Option<String>,
    /// The log index of the state that answered.
    pub log_index: Option<u64>,
    /// The answer comes from this replica's own state because no leader could confirm the
    /// latest commit: it may miss the most recent changes.
    #[serde(default)]
    pub stale: bool,
}

/// Which replica leads, as one replica knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// The replica answering.
    pub replica: String,
    /// The leader's name, if one is known.
    pub leader: Option<String>,
    /// The leader's address.
    pub leader_addr: Option<String>,
    /// The current term.
    pub term: u64,
}

/// One member of the monitor group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its name from the configuration.
    pub name: String,
    /// Its Raft id.
    pub id: u64,
    /// Its address.
    pub addr: String,
}

/// One replica's view of the monitor group (`mmm_control status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The replica answering.
    pub replica: String,
    /// Its Raft id.
    pub id: u64,
    /// Leader, Follower, Candidate, Learner or Shutdown.
    pub raft_state: String,
    /// The current term.
    pub term: u64,
    /// The leader's name, if known.
    pub leader: Option<String>,
    /// The index of the last log entry.
    pub last_log_index: Option<u64>,
    /// The index of the last applied entry.
    pub last_applied_index: Option<u64>,
    /// On the leader: how far each member's log is matched, by name.
    pub replication: Vec<(String, Option<u64>)>,
    /// The members.
    pub members: Vec<Member>,
    /// Milliseconds since this replica last heard from a quorum (on the leader).
    pub millis_since_quorum_ack: Option<u64>,
    /// The last log index covered by this replica's snapshot.
    #[serde(default)]
    pub snapshot_index: Option<u64>,
    /// The last log index purged from this replica's log (older entries live only in the
    /// snapshot).
    #[serde(default)]
    pub purged_index: Option<u64>,
}

/// `POST` a `LeaseRequest`: the writer's agent asks for its lease. 200 with a `LeaseGrant`;
/// 409 when the committed state does not name that host writer at that epoch (the agent must
/// fence itself at once); 503 when no leader can confirm it still leads (no grant: the lease
/// runs out unless a later request succeeds).
pub const LEASE_PATH: &str = "/api/lease";

/// A writer's request for its lease. The agent notes its own monotonic time before sending
/// and, on a grant, holds the role until that time plus the lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRequest {
    /// The agent's host.
    pub host: String,
    /// The writer epoch the agent holds the role under.
    pub epoch: u64,
}

/// A lease, granted only after the leader confirmed with a quorum, after the request
/// arrived, that it still leads, and only while the committed state names the host writer at
/// the requested epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    /// The host.
    pub host: String,
    /// The epoch the lease is for.
    pub epoch: u64,
    /// How long the lease lasts, counted from the agent's send time, in milliseconds.
    pub lease_ms: u64,
    /// How often the agent should renew, in milliseconds.
    pub renew_ms: u64,
    /// The replica that granted it (the leader).
    pub replica: String,
}

/// `POST` a `ReplicaReport` (`mmm_core::observe`): a follower's check verdicts, sent to the
/// leader. 200 on the leader; 503 elsewhere (never forwarded: the follower sends to the leader
/// it knows).
pub const OBSERVATIONS_PATH: &str = "/api/observations";

/// `POST` a `HostReport`: an agent saw its local mysqld die. Any replica takes it (followers
/// forward it to the leader); the leader probes the host itself and, if it agrees, fails the
/// check at once. Answered with a `ReportReply`.
pub const REPORT_PATH: &str = "/api/report";

/// An agent's report about its own host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    /// The agent's host.
    pub host: String,
    /// What the agent saw, e.g. `mysqld does not answer: Connection refused`.
    pub message: String,
}

/// What the leader made of a `HostReport`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportReply {
    /// The leader's own probe agreed: the failure is committed without waiting.
    pub confirmed: bool,
    /// What the leader's probe said.
    pub detail: String,
}

/// An error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong and what to check.
    pub error: String,
}

/// Whether an MMM reply reports an error: MMM's replies start with `ERROR:`, or `Error:` for
/// a role without an IP, or `Invalid command`.
pub fn reply_is_error(reply: &str) -> bool {
    reply.starts_with("ERROR")
        || reply.starts_with("Error:")
        || reply.starts_with("Invalid command")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_recognised_by_their_mmm_prefix() {
        assert!(reply_is_error("ERROR: Unknown host name 'x'!"));
        assert!(reply_is_error("Error: Role writer has no IP."));
        assert!(reply_is_error(
            "Invalid command 'foo'\n\nValid commands are:\n"
        ));
        assert!(!reply_is_error("OK: Pinged successfully!"));
        assert!(!reply_is_error(
            "OK: This host is already ONLINE. Skipping command."
        ));
        assert!(!reply_is_error("ACTIVE"));
    }
}
