//! The monitor group's replicated log and state machine.
//!
//! Three (or five) `mmm_mond` replicas form a Raft group. They do not replicate the cluster
//! state itself but the requests that change it: each log entry is a [`Request`], either
//! `Configure` (the topology read from the configuration files) or `Event` (check results, a
//! tick, an admin command, ...) stamped with the time it happened. Every replica applies the
//! committed entries in log order, and `Event`s only through `mmm_core::step`, which is
//! deterministic, so every replica holds the same `ClusterState`. Only the leader acts on the
//! effects in the resulting `Outcome`.
//!
//! # The replicated state
//!
//! The state machine ([`AppliedState`]) holds the last applied log id, the Raft membership, the
//! topology and the `ClusterState`: host states and flap counters, role owners, the mode and
//! the writer epoch. Per-probe check results are not in it: each replica keeps its own.
//!
//! Invariant: applying an entry reads no clock and does no IO. The state changes only through
//! `ClusterState::new`, `mmm_core::reconfigure` and `mmm_core::step`, with the time carried
//! in the entry, so replicas that apply the same log hold the same state.
//!
//! A request the rules refuse (an event naming an unknown host, an event before the first
//! `Configure`) is still applied: its [`Response`] is the error, the state is unchanged, and
//! every replica records the same refusal. This is toydb's rule: an error that every replica
//! hits alike counts as applied. An error reading or writing the disk is different: it is
//! returned to openraft as a `StorageError`, which stops this replica, because carrying on
//! could let it diverge from the others.
//!
//! # Storage
//!
//! One sled database per replica directory ([`Store::open`]) with three trees: `logs` holds
//! the entries keyed by big-endian index, so that sled's key order is log order; `meta` holds
//! the vote, the committed and last purged log ids and the group id; `snapshot` holds the
//! latest snapshot. The state machine lives in memory: on start it is the stored snapshot, and
//! openraft re-applies the committed entries after it. A log write or a vote is reported to
//! openraft only after sled has flushed it to disk. Every stored value goes through [`codec`],
//! which prefixes a format version.
//!
//! # Epochs and leases
//!
//! Raft keeps the monitors consistent; it does not stop a deposed MySQL master from taking
//! writes. Two mechanisms do, and both read the writer and its epoch from the replicated
//! state.
//!
//! *Epochs.* The step that changes the writer moves the writer epoch on by one, so the new
//! epoch is committed before any agent hears of the change. Every agent command carries the
//! epoch; an agent persists (with fsync) the highest epoch it has seen and refuses any command
//! with a lower one. A deposed leader or a delayed message can therefore never undo a newer
//! decision.
//!
//! *Leases.* The writer's agent holds the writer role only under a lease, and the agent asks
//! for each renewal: the leader never pushes one, because a pushed grant can sit in a network
//! buffer for seconds and arrive after a new writer exists. Each process measures durations on
//! its own monotonic clock only; clocks are never compared across machines, and their rates
//! differ by at most a factor ρ (about 1 %).
//!
//! 1. Every tick (about lease/5) the agent notes its own time `t0` and asks any replica to
//!    renew; followers forward the request to the leader.
//! 2. The leader first calls openraft's `ensure_linearizable` (one heartbeat round to a
//!    quorum), so it knows it was still the leader after the request arrived, and grants only
//!    if the committed state still names this host writer at this epoch. A grant names its
//!    epoch.
//! 3. On a grant the agent sets `expiry = t0 + lease`. When the lease runs out, the agent
//!    removes the writer VIP, sets `read_only=1` and kills client sessions by itself, and it
//!    never takes the role back without a new grant.
//!
//! This is safe because the grant was confirmed by a quorum at a moment after `t0`, and a new
//! leader is elected only after a quorum has stopped following the old one: the old writer's
//! lease has ended, in real time, before `election + lease × (1 + ρ)`. A new leader (or the
//! same leader, counting from the last grant it gave) that cannot reach the old writer's agent
//! waits out that bound before it promotes anyone; when the old agent answers and confirms its
//! demotion, there is no wait.
//!
//! This crate only stores and applies the state these rules read. The renewal request and
//! the grant live in the agent and the monitor daemon; the wait before promotion is
//! `mmm_core::fence`.
//!
//! Tests: `raft/tests/suite.rs` runs openraft's storage conformance suite on the sled store;
//! `state_machine.rs` covers applying, snapshots and reopening; `crash.rs` kills a writing
//! process with SIGKILL and checks every acknowledged write; `group.rs` covers the group id.

use std::io::Cursor;

use mmm_core::{Event, Outcome, StepError, Time, Topology};
use serde::{Deserialize, Serialize};

pub mod codec;
mod log_store;
pub mod network;
mod state_machine;
mod store;

pub use log_store::LogStore;
pub use network::{router, HttpNetwork};
pub use state_machine::{
    AppliedState, SnapshotBuilder, SnapshotError, StateMachineStore, StateReader,
};
pub use store::{Store, StoreError};

openraft::declare_raft_types!(
    /// The openraft type configuration of the monitor group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A request to change the replicated state: the payload of a normal log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Sets or changes the topology. The first one creates the state with every host UNKNOWN
    /// (`ClusterState::new`); a later one adapts the existing state (`mmm_core::reconfigure`).
    Configure {
        /// The cluster definition.
        topology: Topology,
        /// When it was proposed; the first configuration starts the state's clock here.
        now: Time,
    },
    /// Applies an event with `mmm_core::step`.
    Event {
        /// When the event happened.
        now: Time,
        /// The event.
        event: Event,
    },
}

/// The recorded result of applying one entry. Blank and membership entries give an empty
/// `Outcome`.
pub type Response = Result<Outcome, ApplyError>;

/// A request that the rules refused. It is recorded as the entry's result and leaves the state
/// unchanged; every replica refuses it alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ApplyError {
    /// The core refused the event.
    #[error(transparent)]
    Step(#[from] StepError),
    /// An event arrived before any topology was configured.
    #[error("no topology has been configured yet")]
    NotConfigured,
    /// The topology fails `Topology::validate`; the rules could not work with it.
    #[error("invalid topology: {0}")]
    InvalidTopology(String),
}

/// Short names for openraft's types instantiated with [`TypeConfig`].
pub mod typ {
    use super::TypeConfig;

    /// A replica's id.
    pub type NodeId = u64;
    /// A replica's address, as openraft stores it in the membership.
    pub type Node = openraft::BasicNode;
    /// A log id: the term and leader that wrote an entry, and its index.
    pub type LogId = openraft::LogId<NodeId>;
    /// A log entry.
    pub type Entry = openraft::Entry<TypeConfig>;
    /// A vote: the term and whom this replica voted for.
    pub type Vote = openraft::Vote<NodeId>;
    /// A membership and the id of the entry that set it.
    pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
    /// A snapshot's metadata.
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
    /// A snapshot: its metadata and its data.
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    /// The error that stops a replica: reading or writing its storage failed.
    pub type StorageError = openraft::StorageError<NodeId>;
    /// The log state: the last purged and the last log id.
    pub type LogState = openraft::LogState<TypeConfig>;
    /// The Raft node.
    pub type Raft = openraft::Raft<TypeConfig>;
}
