//! The Raft log and vote on sled: openraft's `RaftLogStorage` and `RaftLogReader`.
//!
//! Entries live in the `logs` tree under their index in big-endian bytes, so sled's key order
//! is log order and a range of indexes is a range of keys. The vote, the committed log id and
//! the last purged log id live in the `meta` tree.
//!
//! Invariant: nothing is reported durable before it is. `append` calls `LogFlushed` only after
//! `flush_async` has returned, and `save_vote`, `truncate` and `purge` flush before they
//! return. (openraft's examples call `LogFlushed` without flushing; a replica that acknowledges
//! an entry it then loses in a crash can make a committed entry disappear.)
//!
//! Tests: openraft's conformance suite (`raft/tests/suite.rs`) and the SIGKILL test
//! (`raft/tests/crash.rs`).

// openraft's `StorageError` is large, and every trait method returns it; the helpers return
// the same type rather than box it only to unbox it again.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::store::{COMMITTED_KEY, LAST_PURGED_KEY, VOTE_KEY};
use crate::typ::{Entry, LogId, LogState, StorageError, Vote};
use crate::TypeConfig;

/// A replica's log and vote. Cloning is cheap and gives another handle on the same trees, which
/// is how openraft's replication tasks get their readers.
#[derive(Debug, Clone)]
pub struct LogStore {
    /// The database, flushed after every write.
    db: sled::Db,
    /// Entries by big-endian index.
    logs: sled::Tree,
    /// The vote, committed and last purged log ids.
    meta: sled::Tree,
}

/// The `logs` key of an index.
fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index of a `logs` key, or `None` for a key that is not 8 bytes long.
fn index_of(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

/// A range of `logs` keys.
type KeyRange = (Bound<[u8; 8]>, Bound<[u8; 8]>);

/// The sled key range for a range of indexes, or `None` when it is empty.
fn key_range(range: &impl RangeBounds<u64>) -> Option<KeyRange> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) if e >= start => Bound::Included(key(e)),
        Bound::Excluded(&e) if e > start => Bound::Excluded(key(e)),
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(_) | Bound::Excluded(_) => return None,
    };
    Some((Bound::Included(key(start)), end))
}

/// An IO error about `subject`.
fn io_error<E: std::error::Error + 'static>(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: &E,
) -> StorageError {
    StorageIOError::new(subject, verb, e).into()
}

impl LogStore {
    pub(crate) fn new(db: sled::Db, logs: sled::Tree, meta: sled::Tree) -> Self {
        LogStore { db, logs, meta }
    }

    /// Reads and decodes one `meta` value.
    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
        subject: ErrorSubject<u64>,
    ) -> Result<Option<T>, StorageError> {
        let bytes = self
            .meta
            .get(key)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, &e))?;
        bytes
            .map(|b| codec::decode(what, &b))
            .transpose()
            .map_err(|e| io_error(subject, ErrorVerb::Read, &e))
    }

    /// Encodes and writes one `meta` value, without flushing.
    fn write_meta<T: Serialize>(
        &self,
        key: &[u8],
        what: &'static str,
        value: &T,
        subject: ErrorSubject<u64>,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode(what, value)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, &e))?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| io_error(subject, ErrorVerb::Write, &e))?;
        Ok(())
    }

    /// Decodes the entry stored under `key`, checking that it is the entry for that index.
    fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, StorageError> {
        let Some(index) = index_of(key) else {
            return Err(StorageIOError::read_logs(AnyError::error(format!(
                "a key in the logs tree is {} bytes long, not 8",
                key.len()
            )))
            .into());
        };
        let entry: Entry = codec::decode("log entry", value)
            .map_err(|e| StorageIOError::read_log_at_index(index, &e))?;
        if entry.log_id.index != index {
            return Err(StorageIOError::read_log_at_index(
                index,
                AnyError::error(format!(
                    "the entry stored at index {index} has log id {}",
                    entry.log_id
                )),
            )
            .into());
        }
        Ok(entry)
    }

    /// Flushes every write so far to disk.
    async fn flush(&self, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| io_error(subject, ErrorVerb::Write, &e))
    }

    /// Removes the entries in a range of indexes (not flushed).
    fn remove_range(&self, range: impl RangeBounds<u64>) -> Result<(), StorageError> {
        let Some(range) = key_range(&range) else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for key in self.logs.range(range).keys() {
            let key = key.map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))?;
            batch.remove(key);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let Some(range) = key_range(&range) else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for item in self.logs.range(range) {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            entries.push(Self::decode_entry(&key, &value)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState, StorageError> {
        let last_purged: Option<LogId> =
            self.read_meta(LAST_PURGED_KEY, "last purged log id", ErrorSubject::Logs)?;
        let last = match self
            .logs
            .last()
            .map_err(|e| StorageIOError::read_logs(&e))?
        {
            Some((key, value)) => Some(Self::decode_entry(&key, &value)?.log_id),
            None => None,
        };
        // A crash between recording a purge and removing its entries can leave entries at or
        // below the purge point; the last log id is then the purge point.
        let last_log_id = last.max(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(VOTE_KEY, "vote", vote, ErrorSubject::Vote)?;
        self.flush(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE_KEY, "vote", ErrorSubject::Vote)
    }

    /// Records the committed log id without flushing: it rides on the next flush. Losing it
    /// in a crash only means the replica re-applies less at start and learns the rest from the
    /// leader; it never names an entry that is not on disk, because sled recovers writes in
    /// order and entries are flushed before they count towards a commit.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        match committed {
            Some(log_id) => self.write_meta(
                COMMITTED_KEY,
                "committed log id",
                &log_id,
                ErrorSubject::Store,
            ),
            None => self
                .meta
                .remove(COMMITTED_KEY)
                .map(|_| ())
                .map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Delete, &e)),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_meta(COMMITTED_KEY, "committed log id", ErrorSubject::Store)
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
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = codec::encode("log entry", &entry)
                .map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
            batch.insert(&key(entry.log_id.index)[..], bytes);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        match self.db.flush_async().await {
            Ok(_) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_range(log_id.index..)?;
        self.flush(ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purge point is written first: if the process dies before the entries are gone,
        // the log state is still right and the leftover entries are never read.
        self.write_meta(
            LAST_PURGED_KEY,
            "last purged log id",
            &log_id,
            ErrorSubject::Logs,
        )?;
        self.remove_range(..=log_id.index)?;
        self.flush(ErrorSubject::Logs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes(range: impl RangeBounds<u64>) -> Option<(Bound<u64>, Bound<u64>)> {
        let map = |b: Bound<[u8; 8]>| match b {
            Bound::Included(k) => Bound::Included(u64::from_be_bytes(k)),
            Bound::Excluded(k) => Bound::Excluded(u64::from_be_bytes(k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        key_range(&range).map(|(s, e)| (map(s), map(e)))
    }

    #[test]
    fn key_range_maps_every_bound_and_empties_reversed_ranges() {
        use Bound::*;
        assert_eq!(indexes(..), Some((Included(0), Unbounded)));
        assert_eq!(indexes(3..7), Some((Included(3), Excluded(7))));
        assert_eq!(indexes(3..=7), Some((Included(3), Included(7))));
        assert_eq!(
            indexes((Excluded(3), Included(4))),
            Some((Included(4), Included(4)))
        );
        assert_eq!(indexes(3..3), None);
        assert_eq!(indexes((Included(5), Excluded(3))), None);
        assert_eq!(indexes((Excluded(u64::MAX), Unbounded)), None);
    }

    #[test]
    fn big_endian_keys_sort_in_index_order() {
        assert!(key(255) < key(256));
        assert!(key(1 << 32) > key(u64::from(u32::MAX)));
        assert_eq!(index_of(&key(42)), Some(42));
        assert_eq!(index_of(b"short"), None);
    }
}
