//! The monitor replicas' storage in memory: openraft's log storage and state machine with the
//! semantics of the sled store (`mmm_raft::LogStore`, `StateMachineStore`): every write is
//! durable when it returns, the applied state is rebuilt from the last snapshot on restart,
//! and entries are applied by the same code (`AppliedState::apply`). sled itself is not under
//! simulation (its IO runs on its own threads, which would break replay); its crash durability
//! is tested in `raft/tests/`. A write may take a random time (a slow disk).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mmm_raft::typ::{Entry, LogId, LogState, Snapshot, SnapshotMeta, StorageError, Vote};
use mmm_raft::{AppliedState, Response, StateReader, TypeConfig};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{AnyError, OptionalSend, RaftLogReader, RaftSnapshotBuilder, StorageIOError};

/// What survives a crash of a replica (its data directory).
#[derive(Debug, Default)]
pub struct Disk {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
    logs: BTreeMap<u64, Entry>,
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    built: u64,
}

/// A replica's data directory, shared by its log and state machine, kept across restarts.
/// Each open is a new generation: the stores of a killed process (whose Raft core may still be
/// winding down) can no longer write, as the directory's lock would stop them.
#[derive(Debug, Clone, Default)]
pub struct Dir {
    disk: Arc<Mutex<Disk>>,
    /// The longest a write may take.
    slow: Arc<Mutex<Duration>>,
    /// The generation of the latest open.
    generation: Arc<std::sync::atomic::AtomicU64>,
    /// The generation this handle belongs to.
    mine: u64,
}

impl Dir {
    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The disk for writing, unless a newer process opened the directory.
    // openraft's error type, which every storage method returns anyway.
    #[allow(clippy::result_large_err)]
    fn write(&self) -> Result<MutexGuard<'_, Disk>, StorageError> {
        let current = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        if current != self.mine {
            return Err(StorageIOError::write_logs(AnyError::error(
                "the data directory was opened by a newer process",
            ))
            .into());
        }
        Ok(self.lock())
    }

    /// Makes writes take up to `d` (a slow disk); zero: instant.
    pub fn set_slow(&self, d: Duration) {
        *self.slow.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }

    async fn write_delay(&self) {
        let d = *self.slow.lock().unwrap_or_else(|p| p.into_inner());
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// The log store and the state machine over this directory.
    pub fn open(&self) -> Result<(MemLog, MemSm), String> {
        let mine = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let this = Dir {
            mine,
            ..self.clone()
        };
        let applied = match &self.lock().snapshot {
            Some((meta, data)) => decode_snapshot(meta, data)?,
            None => AppliedState::default(),
        };
        Ok((
            MemLog { dir: this.clone() },
            MemSm {
                reader: StateReader::new(applied.clone()),
                applied,
                dir: this,
            },
        ))
    }
}

fn decode_snapshot(meta: &SnapshotMeta, data: &[u8]) -> Result<AppliedState, String> {
    let state: AppliedState =
        mmm_raft::codec::decode("snapshot", data).map_err(|e| e.to_string())?;
    if state.last_applied != meta.last_log_id {
        return Err(format!(
            "snapshot data at {:?}, metadata at {:?}",
            state.last_applied, meta.last_log_id
        ));
    }
    Ok(state)
}

/// The log.
#[derive(Debug, Clone)]
pub struct MemLog {
    dir: Dir,
}

impl RaftLogReader<TypeConfig> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self
            .dir
            .lock()
            .logs
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLog {
    type LogReader = MemLog;

    async fn get_log_state(&mut self) -> Result<LogState, StorageError> {
        let d = self.dir.lock();
        let last = d.logs.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: d.last_purged,
            last_log_id: last.max(d.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.dir.write_delay().await;
        self.dir.write()?.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.dir.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.dir.write()?.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.dir.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        self.dir.write_delay().await;
        {
            let mut d = self.dir.write()?;
            for e in entries {
                d.logs.insert(e.log_id.index, e);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.dir.write_delay().await;
        self.dir.write()?.logs.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.dir.write_delay().await;
        let mut d = self.dir.write()?;
        d.last_purged = Some(log_id);
        let keep = d.logs.split_off(&(log_id.index + 1));
        d.logs = keep;
        Ok(())
    }
}

/// The state machine.
#[derive(Debug)]
pub struct MemSm {
    applied: AppliedState,
    reader: StateReader,
    dir: Dir,
}

impl MemSm {
    /// A handle that reads the applied state.
    pub fn reader(&self) -> StateReader {
        self.reader.clone()
    }
}

fn write_err(meta: Option<&SnapshotMeta>, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(meta.map(|m| m.signature()), AnyError::error(e.to_string()))
        .into()
}

impl RaftStateMachine<TypeConfig> for MemSm {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, mmm_raft::typ::StoredMembership), StorageError> {
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

    async fn get_snapshot_builder(&mut self) -> Builder {
        Builder {
            applied: self.applied.clone(),
            dir: self.dir.clone(),
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
        let applied = decode_snapshot(meta, &data).map_err(|e| write_err(Some(meta), e))?;
        self.dir.write_delay().await;
        self.dir.write()?.snapshot = Some((meta.clone(), data));
        self.applied = applied;
        self.reader.publish(self.applied.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self
            .dir
            .lock()
            .snapshot
            .clone()
            .map(|(meta, data)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
    }
}

/// Builds a snapshot of the state as it was when the builder was made.
#[derive(Debug)]
pub struct Builder {
    applied: AppliedState,
    dir: Dir,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let n = {
            let mut d = self.dir.lock();
            d.built += 1;
            d.built
        };
        let last = self.applied.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.applied.membership.clone(),
            snapshot_id: format!("{}-{n}", last.map(|l| l.index).unwrap_or(0)),
        };
        let data = mmm_raft::codec::encode("snapshot", &self.applied)
            .map_err(|e| write_err(Some(&meta), e))?;
        self.dir.write_delay().await;
        {
            let mut d = self.dir.write()?;
            let newer = d
                .snapshot
                .as_ref()
                .is_some_and(|(m, _)| m.last_log_id > meta.last_log_id);
            if !newer {
                d.snapshot = Some((meta.clone(), data.clone()));
            }
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
