//! Opening a replica's storage: one sled database per directory, split into the log store and
//! the state machine store that openraft drives.
//!
//! Invariant: a directory belongs to one monitor group. The group id is recorded the first
//! time the directory is opened, and opening it for another group fails, so that a replica
//! whose configuration points at the wrong directory cannot join a foreign group with its log.
//!
//! Tests: `raft/tests/group.rs`, and every other test in `raft/tests/` opens stores here.

use std::path::{Path, PathBuf};

use crate::codec::{self, CodecError};
use crate::log_store::LogStore;
use crate::state_machine::{SnapshotError, SnapshotStore, StateMachineStore};

/// The tree of log entries, keyed by big-endian index.
pub(crate) const LOGS_TREE: &str = "logs";
/// The tree of single values: the vote, the committed and last purged log ids, the group id.
pub(crate) const META_TREE: &str = "meta";
/// The tree holding the latest snapshot.
pub(crate) const SNAPSHOT_TREE: &str = "snapshot";

/// `meta` key of the vote.
pub(crate) const VOTE_KEY: &[u8] = b"vote";
/// `meta` key of the committed log id.
pub(crate) const COMMITTED_KEY: &[u8] = b"committed";
/// `meta` key of the last purged log id.
pub(crate) const LAST_PURGED_KEY: &[u8] = b"last_purged";
/// `meta` key of the group id.
pub(crate) const GROUP_ID_KEY: &[u8] = b"group_id";
/// `snapshot` key of the current snapshot.
pub(crate) const CURRENT_SNAPSHOT_KEY: &[u8] = b"current";

/// A replica's storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed to open or read the directory.
    #[error("{}: cannot open the Raft store: {source}", dir.display())]
    Sled {
        /// The replica's directory.
        dir: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// Another process (or a store not yet fully closed) holds the directory.
    #[error(
        "{}: the Raft store is in use by another process (is another mmm_mond running with this data_dir?)",
        dir.display()
    )]
    Locked {
        /// The replica's directory.
        dir: PathBuf,
    },
    /// A stored value does not decode.
    #[error("{}: {source}", dir.display())]
    Codec {
        /// The replica's directory.
        dir: PathBuf,
        /// What failed to decode and why.
        source: CodecError,
    },
    /// The stored snapshot cannot be loaded.
    #[error("{}: cannot load the stored snapshot: {source}", dir.display())]
    Snapshot {
        /// The replica's directory.
        dir: PathBuf,
        /// Why.
        source: SnapshotError,
    },
    /// The directory holds another group's data.
    #[error(
        "{}: this directory holds the Raft data of monitor group '{stored}', not '{given}'; a replica must not join a foreign group",
        dir.display()
    )]
    ForeignGroup {
        /// The replica's directory.
        dir: PathBuf,
        /// The group recorded in the directory.
        stored: String,
        /// The group this replica was started for.
        given: String,
    },
}

/// Opens replicas' storage.
#[derive(Debug, Clone, Copy)]
pub struct Store;

impl Store {
    /// Opens (or creates) the sled database in `dir` for the monitor group `group_id` and
    /// returns the two halves openraft needs. The first open records `group_id`; a later open
    /// with another id fails with [`StoreError::ForeignGroup`]. The state machine starts from
    /// the stored snapshot, if any; openraft then re-applies the committed entries after it.
    ///
    /// This blocks on disk IO; call it before the runtime is busy, or from `spawn_blocking`.
    pub fn open(dir: &Path, group_id: &str) -> Result<(LogStore, StateMachineStore), StoreError> {
        let sled_err = |source| StoreError::Sled {
            dir: dir.to_path_buf(),
            source,
        };
        let codec_err = |source| StoreError::Codec {
            dir: dir.to_path_buf(),
            source,
        };
        let db = open_db(dir)?;
        let logs = db.open_tree(LOGS_TREE).map_err(sled_err)?;
        let meta = db.open_tree(META_TREE).map_err(sled_err)?;
        let snapshot = db.open_tree(SNAPSHOT_TREE).map_err(sled_err)?;

        match meta.get(GROUP_ID_KEY).map_err(sled_err)? {
            Some(bytes) => {
                let stored: String = codec::decode("group id", &bytes).map_err(codec_err)?;
                if stored != group_id {
                    return Err(StoreError::ForeignGroup {
                        dir: dir.to_path_buf(),
                        stored,
                        given: group_id.to_string(),
                    });
                }
            }
            None => {
                let bytes = codec::encode("group id", group_id).map_err(codec_err)?;
                meta.insert(GROUP_ID_KEY, bytes).map_err(sled_err)?;
                db.flush().map_err(sled_err)?;
            }
        }

        let snapshots = SnapshotStore::new(db.clone(), snapshot);
        let sm = StateMachineStore::load(snapshots).map_err(|source| StoreError::Snapshot {
            dir: dir.to_path_buf(),
            source,
        })?;
        Ok((LogStore::new(db, logs, meta), sm))
    }
}

/// How long `open` waits for the directory's lock: sled's background flusher keeps a closed
/// store's lock for up to its flush interval, and a restarted replica may overlap the exit of
/// the previous process.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the sled database, waiting up to `LOCK_WAIT` for a lock held by a closing store.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let start = std::time::Instant::now();
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                if start.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::Locked {
                        dir: dir.to_path_buf(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(source) => {
                return Err(StoreError::Sled {
                    dir: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// sled reports a held lock as an IO error wrapping `WouldBlock`, with this text.
fn is_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}
