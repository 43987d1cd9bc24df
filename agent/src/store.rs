//! The agent's durable memory: the highest writer epoch it has seen and the status it was last
//! told, in `<state_dir>/agent.json`. Written to a temporary file, fsync'd, renamed over the old
//! one and the directory fsync'd, so a crash leaves either the old or the new content. The
//! epoch is what lets the agent refuse a deposed leader's commands after a restart; the status
//! lets a restarted writer's agent ask for its lease again without waiting for the monitor.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use mmm_core::AgentStatus;
use serde::{Deserialize, Serialize};

/// The file name inside `state_dir`.
pub const FILE_NAME: &str = "agent.json";

/// What survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// The highest writer epoch seen.
    pub epoch: u64,
    /// The status last applied.
    pub told: Option<AgentStatus>,
    /// When `told` makes this host the writer: the old writer's last position to execute
    /// before taking writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_to: Option<String>,
    /// The highest Raft term of a leader that sent a status.
    #[serde(default)]
    pub term: u64,
    /// When `told` makes this host the writer after an unplanned move: the hosts it may have
    /// to fetch acknowledged transactions from first (a restarted agent still fetches them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Of `peers`, those asked with a short connect timeout ([`SetStatus::offline_peers`]).
    ///
    /// [`SetStatus::offline_peers`]: crate::protocol::SetStatus::offline_peers
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offline_peers: Vec<String>,
}

/// Reading or writing the state file failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file exists but does not hold what this agent wrote.
    #[error("{path}: not an agent state file ({reason}); move it away if it is not needed")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The state file of one agent.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// What was saved; the default (epoch 0, nothing told) when there is no file yet.
    pub fn load(&self) -> Result<Persisted, StoreError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Persisted::default()),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Saves durably: when this returns, the content survives a crash or power loss.
    pub fn save(&self, state: &Persisted) -> Result<(), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path();
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_core::{Epoch, HostName, HostState};

    #[test]
    fn a_missing_file_means_epoch_zero_and_nothing_told() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("agent"));
        assert_eq!(store.load().unwrap(), Persisted::default());
    }

    #[test]
    fn what_is_saved_is_loaded_by_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let saved = Persisted {
            epoch: 7,
            told: Some(AgentStatus {
                host: HostName::from("db1"),
                state: HostState::Online,
                roles: vec![],
                active_master: Some(HostName::from("db1")),
                epoch: Epoch(7),
            }),
            catch_up_to: Some("0-1-42".into()),
            term: 3,
            peers: vec!["db3".into(), "db4".into()],
            offline_peers: vec!["db4".into()],
        };
        Store::new(dir.path()).save(&saved).unwrap();
        assert_eq!(Store::new(dir.path()).load().unwrap(), saved);
        assert!(!dir.path().join("agent.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{ not json").unwrap();
        let err = Store::new(dir.path()).load().unwrap_err().to_string();
        assert!(err.contains("agent.json"), "{err}");
        assert!(err.contains("not an agent state file"), "{err}");
    }
}
