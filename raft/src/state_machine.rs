//! The replicated state machine and its snapshots: openraft's `RaftStateMachine` and
//! `RaftSnapshotBuilder`.
//!
//! The state ([`AppliedState`]) lives in memory. `apply` turns each committed entry into a
//! [`Response`]: a `Configure` creates or reconciles the `ClusterState`, an `Event` goes through
//! `mmm_core::step`, a membership entry is stored, a blank entry does nothing. Readers (the
//! HTTP API) get the state through a [`StateReader`], which hands out the state as of the end
//! of the last applied batch without waiting for the state machine.
//!
//! A snapshot is the whole `AppliedState` encoded with [`codec`](crate::codec). Building or
//! installing one stores it, with its metadata, in the `snapshot` tree and flushes; opening the
//! directory loads it back, and openraft re-applies the committed entries after it.
//!
//! Invariant: a refused request changes nothing. The event is applied to a copy of the state,
//! which replaces the state only if `step` succeeds.
//!
//! Tests: `raft/tests/state_machine.rs` and openraft's suite (`raft/tests/suite.rs`).

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mmm_core::{ClusterState, Level, Notice, Outcome, Topology};
use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::store::CURRENT_SNAPSHOT_KEY;
use crate::typ::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership};
use crate::{ApplyError, Request, Response, TypeConfig};

/// Everything the replicated log has produced so far. This is also the snapshot format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppliedState {
    /// The last entry applied.
    pub last_applied: Option<LogId>,
    /// The membership of the monitor group, and the entry that set it.
    pub membership: StoredMembership,
    /// The topology, once configured.
    pub topology: Option<Topology>,
    /// The cluster's state, once configured.
    pub state: Option<ClusterState>,
}

/// The stored snapshot did not load.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// sled could not read it.
    #[error(transparent)]
    Sled(#[from] sled::Error),
    /// It does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Its data does not match its metadata.
    #[error("its data was applied up to {data:?} but its metadata says {meta:?}")]
    Mismatch {
        /// The last log id in the metadata.
        meta: Option<LogId>,
        /// The last log id in the data.
        data: Option<LogId>,
    },
}

/// A snapshot as stored in the `snapshot` tree: metadata and encoded [`AppliedState`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StoredSnapshot {
    /// The state this snapshot holds, checked against its metadata.
    fn decode_state(&self) -> Result<AppliedState, SnapshotError> {
        decode_snapshot(&self.meta, &self.data)
    }

    fn into_snapshot(self) -> Snapshot {
        Snapshot {
            meta: self.meta,
            snapshot: Box::new(Cursor::new(self.data)),
        }
    }
}

/// Decodes snapshot data and checks it against its metadata.
fn decode_snapshot(meta: &SnapshotMeta, data: &[u8]) -> Result<AppliedState, SnapshotError> {
    let state: AppliedState = codec::decode("snapshot", data)?;
    if state.last_applied != meta.last_log_id || state.membership != meta.last_membership {
        return Err(SnapshotError::Mismatch {
            meta: meta.last_log_id,
            data: state.last_applied,
        });
    }
    Ok(state)
}

/// The `snapshot` tree. Shared by the state machine and its snapshot builders.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotStore {
    /// The database, flushed after every write.
    db: sled::Db,
    /// Holds the current snapshot.
    tree: sled::Tree,
    /// Serializes the read-compare-write of `save`, so that a builder finishing late cannot
    /// replace a newer snapshot installed meanwhile.
    write: Arc<Mutex<()>>,
    /// Counts snapshots built by this process, to make snapshot ids unique.
    built: Arc<AtomicU64>,
}

impl SnapshotStore {
    pub(crate) fn new(db: sled::Db, tree: sled::Tree) -> Self {
        SnapshotStore {
            db,
            tree,
            write: Arc::new(Mutex::new(())),
            built: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The stored snapshot, if any.
    fn load(&self) -> Result<Option<StoredSnapshot>, SnapshotError> {
        match self.tree.get(CURRENT_SNAPSHOT_KEY)? {
            Some(bytes) => Ok(Some(codec::decode("stored snapshot", &bytes)?)),
            None => Ok(None),
        }
    }

    /// Stores a snapshot and flushes. Unless `replace` is set, a stored snapshot that covers
    /// more of the log is kept instead.
    async fn save(&self, snapshot: &StoredSnapshot, replace: bool) -> Result<(), StorageError> {
        let signature = Some(snapshot.meta.signature());
        let write_err = |e: &(dyn std::error::Error + 'static)| {
            StorageError::from(StorageIOError::write_snapshot(
                signature.clone(),
                AnyError::from_dyn(e, None),
            ))
        };
        let bytes = codec::encode("stored snapshot", snapshot).map_err(|e| write_err(&e))?;
        {
            // A poisoned lock guards no data, only the order of writes; go on.
            let _order = self.write.lock().unwrap_or_else(|p| p.into_inner());
            if !replace {
                let current = self.load().map_err(|e| write_err(&e))?;
                if current.is_some_and(|c| c.meta.last_log_id > snapshot.meta.last_log_id) {
                    return Ok(());
                }
            }
            self.tree
                .insert(CURRENT_SNAPSHOT_KEY, bytes)
                .map_err(|e| write_err(&e))?;
        }
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| write_err(&e))
    }

    /// A new snapshot id: the last log id it covers and a counter, unique within this process;
    /// the time makes it unique across restarts.
    fn next_id(&self, last: Option<LogId>) -> String {
        let n = self.built.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        match last {
            Some(id) => format!(
                "{}-{}-{}-{nanos}-{n}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => format!("none-{nanos}-{n}"),
        }
    }
}

/// A cheap handle for reading the applied state, for the HTTP API. Cloning shares it.
#[derive(Debug, Clone)]
pub struct StateReader {
    published: Arc<RwLock<Arc<AppliedState>>>,
}

impl StateReader {
    /// A reader that sees `state` until the next [`StateReader::publish`].
    pub fn new(state: AppliedState) -> StateReader {
        StateReader {
            published: Arc::new(RwLock::new(Arc::new(state))),
        }
    }

    /// The state as of the end of the last applied batch (or the last installed snapshot).
    /// This never waits for `apply`: the state machine publishes a new `Arc` after each batch.
    pub fn read(&self) -> Arc<AppliedState> {
        // The lock only guards the swap of an `Arc`, which cannot be left half done.
        match self.published.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `state` what readers see (a state machine does this after each batch).
    pub fn publish(&self, state: AppliedState) {
        let state = Arc::new(state);
        match self.published.write() {
            Ok(mut guard) => *guard = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }
}

/// The state machine openraft drives. Give [`StateMachineStore::reader`] to whoever needs to
/// read the state before handing the store to `openraft::Raft::new`.
#[derive(Debug)]
pub struct StateMachineStore {
    /// The authoritative state, changed only by `apply` and `install_snapshot`.
    applied: AppliedState,
    /// What readers see: a copy of `applied` after each batch.
    reader: StateReader,
    /// The `snapshot` tree.
    snapshots: SnapshotStore,
}

impl StateMachineStore {
    /// The state machine as of the stored snapshot, or empty.
    pub(crate) fn load(snapshots: SnapshotStore) -> Result<Self, SnapshotError> {
        let applied = match snapshots.load()? {
            Some(stored) => stored.decode_state()?,
            None => AppliedState::default(),
        };
        let reader = StateReader::new(applied.clone());
        Ok(StateMachineStore {
            applied,
            reader,
            snapshots,
        })
    }

    /// A handle that reads the applied state.
    pub fn reader(&self) -> StateReader {
        self.reader.clone()
    }

    /// The applied state, as a reader sees it.
    pub fn read(&self) -> Arc<AppliedState> {
        self.reader.read()
    }
}

impl AppliedState {
    /// Applies one committed entry: a blank does nothing, a membership is recorded, a request
    /// goes through the core. A refused request is the result and leaves the state unchanged.
    pub fn apply(&mut self, entry: Entry) -> Response {
        let log_id = entry.log_id;
        self.last_applied = Some(log_id);
        let reply = match entry.payload {
            EntryPayload::Blank => Ok(Outcome::default()),
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(log_id), membership);
                Ok(Outcome::default())
            }
            EntryPayload::Normal(request) => apply_request(self, log_id.index, request),
        };
        if let Err(e) = &reply {
            tracing::info!(index = log_id.index, reason = %e, "request refused");
        }
        reply
    }
}

/// Applies one request. A refusal is the result, not an error: the state is left unchanged.
fn apply_request(applied: &mut AppliedState, index: u64, request: Request) -> Response {
    match request {
        Request::Configure { topology, now } => {
            let invalid = |e: mmm_core::TopologyError| ApplyError::InvalidTopology(e.to_string());
            let outcome = match &mut applied.state {
                Some(state) => {
                    let mut next = state.clone();
                    let outcome =
                        mmm_core::reconfigure(&topology, &mut next, now).map_err(invalid)?;
                    *state = next;
                    outcome
                }
                None => {
                    topology.validate().map_err(invalid)?;
                    applied.state = Some(ClusterState::new(&topology, now));
                    Outcome::default()
                }
            };
            for notice in &outcome.notices {
                log_notice(index, notice);
            }
            tracing::info!(index, hosts = topology.hosts.len(), "topology configured");
            applied.topology = Some(topology);
            Ok(outcome)
        }
        Request::Event { now, event } => {
            let (Some(topology), Some(state)) = (&applied.topology, &mut applied.state) else {
                return Err(ApplyError::NotConfigured);
            };
            let mut next = state.clone();
            let outcome = mmm_core::step(topology, &mut next, now, event)?;
            *state = next;
            for notice in &outcome.notices {
                log_notice(index, notice);
            }
            Ok(outcome)
        }
    }
}

/// Logs a state change once, where it is applied, at its MMM level.
fn log_notice(index: u64, notice: &Notice) {
    let host = notice.host().map(|h| h.as_str());
    match notice.level() {
        Level::Fatal | Level::Error => tracing::error!(index, host, "{notice}"),
        Level::Warn => tracing::warn!(index, host, "{notice}"),
        _ => tracing::info!(index, host, "{notice}"),
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let replies = entries
            .into_iter()
            .map(|entry| self.applied.apply(entry))
            .collect();
        self.reader.publish(self.applied.clone());
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            applied: self.applied.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let applied = decode_snapshot(meta, &data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.snapshots.save(&stored, true).await?;
        tracing::info!(snapshot = %meta, "snapshot installed");
        self.applied = applied;
        self.reader.publish(self.applied.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored = self
            .snapshots
            .load()
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        Ok(stored.map(StoredSnapshot::into_snapshot))
    }
}

/// Builds a snapshot of the state as it was when the builder was made.
#[derive(Debug)]
pub struct SnapshotBuilder {
    /// The state to snapshot.
    applied: AppliedState,
    /// Where to store it.
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let meta = SnapshotMeta {
            last_log_id: self.applied.last_applied,
            last_membership: self.applied.membership.clone(),
            snapshot_id: self.snapshots.next_id(self.applied.last_applied),
        };
        let data = codec::encode("snapshot", &self.applied).map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let stored = StoredSnapshot { meta, data };
        self.snapshots.save(&stored, false).await?;
        tracing::info!(snapshot = %stored.meta, "snapshot built");
        Ok(stored.into_snapshot())
    }
}
