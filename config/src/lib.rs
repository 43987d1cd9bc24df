//! MMM configuration files.
//!
//! This crate parses `mmm_common.conf`, `mmm_agent.conf`, `mmm_mon.conf` and `mmm_tools.conf`
//! as MMM 2.2.1 did (includes, `<host default>` templates, comma lists, boolean spellings,
//! world-readable refusal), gives every key MMM's default and a type, validates each program's
//! required keys and the references between sections, and reads the monitor-group extension.
//! Every error names the file, the line and the section or key, and one load reports as many
//! errors as it can find.
//!
//! The layers, each in its own module:
//! - `syntax`: one line at a time (comments, tags, `key value`); documents the comment rule.
//! - `reader`: files, permissions, includes and sections into a raw document.
//! - `keys`: the table of keys per section and which program requires them.
//! - `model` and `build`: typed values, defaults, templates, merging of repeated sections.
//! - `validate`: per-program requirements and cross-references.
//! - `summary`: what was understood, in words, for `--check-config`.
//!
//! Loading is `syntax → reader → build → validate`; when reading fails (a missing include, a
//! malformed line), the requirement checks are skipped so that the report names causes rather
//! than their consequences. Unit tests sit in each module; `tests/` holds the seed files, MMM's
//! sample files, a monitor-group config, one test per error message and the fuzz test.
//!
//! # The monitor-group extension
//!
//! New keys in `<monitor>`: `node` (which replica this file is for), `data_dir` (default
//! `/var/lib/mysql-mmm/raft`), `lease` (1.5 s), `lease_renew_interval` (0.3 s), `clock_drift`
//! (0.01), `raft_heartbeat` (0.1 s), `election_timeout_min` (0.3 s), `election_timeout_max`
//! (0.5 s). New keys in `<socket>`: the secret files `api_secret_file`,
//! `api_readonly_secret_file`, `raft_secret_file` and `agent_secret_file` (which program needs
//! which is decided by `mmm-transport` when the program starts). New sections
//! `<monitor_node NAME>` with `ip` (required) and `port` (default 9988). With monitor nodes, `node` must name one of them (the
//! monitor requires it) and `<monitor> ip` is no longer required; without them the group is the
//! single replica at `<monitor> ip:port` (see [`Config::monitor_group`]). New keys in `<host>`
//! for the agent: `state_dir` (default `/var/lib/mysql-mmm/agent`, the persisted writer epoch),
//! `fence_margin` (0.3 s before the lease ends, the writer fences itself),
//! `catchup_timeout` (10 s, the relay-log wait of a promotion or a re-pointing) and
//! `catchup_policy` (`wait`, or `promote`: take writes even when the catch-up failed). The agent
//! also needs the monitor nodes (in the common file) to ask for its lease.

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::string_slice
    )
)]

mod build;
mod error;
mod files;
mod keys;
mod model;
mod reader;
mod secret;
mod summary;
mod syntax;
mod validate;
mod value;

use std::path::{Path, PathBuf};

pub use error::{Error, Errors, KeyHint, Location, Scope, Warning};
pub use files::{
    cluster_from_arg, config_file_name, DiskFiles, Files, InvalidClusterName, MemoryFiles, Program,
    DEFAULT_SEARCH_PATH,
};
pub use model::{
    CatchupPolicy, Check, CheckName, Config, CopyMethod, Host, HostMode, Monitor, MonitorGroup,
    MonitorMember, MonitorMode, MonitorNode, Role, RoleMode, Socket, SocketType, UnknownWord,
    IMPLICIT_MONITOR_NODE,
};
pub use secret::Secret;
pub use summary::summary;
pub use syntax::SectionKind;
pub use value::format_seconds;

/// Loads configuration files with a given include search path.
#[derive(Clone, Debug)]
pub struct Loader {
    search_path: Vec<PathBuf>,
}

impl Default for Loader {
    fn default() -> Self {
        Loader::new()
    }
}

impl Loader {
    /// A loader with MMM's search path, `/etc`, `/etc/mmm`, `/etc/mysql-mmm`.
    pub fn new() -> Self {
        Loader::with_search_path(DEFAULT_SEARCH_PATH)
    }

    /// A loader that looks for included files (after the including file's own directory) and
    /// for [`Loader::locate`]d files in these directories, in order.
    pub fn with_search_path<P: Into<PathBuf>>(dirs: impl IntoIterator<Item = P>) -> Self {
        Loader {
            search_path: dirs.into_iter().map(Into::into).collect(),
        }
    }

    /// The search path.
    pub fn search_path(&self) -> &[PathBuf] {
        &self.search_path
    }

    /// Finds a config file on disk by name, as MMM does: `.conf` is appended when missing, and
    /// the first readable file in the search path wins. A name with a directory part is used
    /// as it is.
    pub fn locate(&self, name: &str) -> Option<PathBuf> {
        self.locate_in(&DiskFiles, name)
    }

    /// [`Loader::locate`] over any [`Files`].
    pub fn locate_in(&self, files: &dyn Files, name: &str) -> Option<PathBuf> {
        let name = files::with_conf_suffix(name);
        let path = Path::new(&name);
        if path.components().count() > 1 || path.is_absolute() {
            return files.is_readable(path).then(|| path.to_path_buf());
        }
        self.search_path
            .iter()
            .map(|dir| dir.join(path))
            .find(|candidate| files.is_readable(candidate))
    }

    /// Loads `path` from disk and validates it for `program`.
    pub fn load(&self, path: impl AsRef<Path>, program: Program) -> Result<Config, Errors> {
        self.load_from(&DiskFiles, path.as_ref(), program)
    }

    /// Loads `path` from `files` (disk or memory) and validates it for `program`.
    pub fn load_from(
        &self,
        files: &dyn Files,
        path: &Path,
        program: Program,
    ) -> Result<Config, Errors> {
        let (doc, mut errors, mut warnings) =
            reader::Reader::new(files, &self.search_path).read(path);
        let structural = errors.iter().any(Error::is_structural);
        let (mut config, origins) = build::Builder::new(&mut errors, &mut warnings).build(&doc);
        if !structural {
            validate::Validator::new(&config, &origins, program, &mut errors, &mut warnings).run();
        }
        if errors.is_empty() {
            config.warnings = warnings;
            Ok(config)
        } else {
            Err(Errors(errors))
        }
    }
}

/// Why a daemon's configuration file could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// The cluster argument does not start with `@`.
    #[error("'{0}' is not a cluster: write @NAME")]
    NotACluster(String),
    /// The cluster name cannot be part of a file name.
    #[error(transparent)]
    Cluster(#[from] InvalidClusterName),
    /// No such readable file in the search path.
    #[error("no readable {0} in /etc, /etc/mmm or /etc/mysql-mmm; give --config")]
    NotFound(String),
}

/// The file a daemon (`mmm_mond`, `mmm_agentd`) reads and the cluster it serves:
/// `cluster_arg` is the `@NAME` argument; `config` (`--config FILE`) is used as given, else
/// the program's file for that cluster is looked for in MMM's search path.
pub fn daemon_config(
    program: Program,
    config: Option<&Path>,
    cluster_arg: Option<&str>,
) -> Result<(PathBuf, Option<String>), LocateError> {
    let cluster = match cluster_arg {
        None => None,
        Some(arg) => Some(
            cluster_from_arg(arg)
                .ok_or_else(|| LocateError::NotACluster(arg.to_string()))?
                .to_string(),
        ),
    };
    if let Some(path) = config {
        return Ok((path.to_path_buf(), cluster));
    }
    let name = config_file_name(program, cluster.as_deref())?;
    let path = Loader::new()
        .locate(&name)
        .ok_or(LocateError::NotFound(name))?;
    Ok((path, cluster))
}

/// Loads `path` from disk with MMM's search path and validates it for `program`.
pub fn load(path: impl AsRef<Path>, program: Program) -> Result<Config, Errors> {
    Loader::new().load(path, program)
}

#[cfg(test)]
mod daemon_config_tests {
    use super::*;

    #[test]
    fn the_cluster_argument_is_checked_even_with_a_config_file() {
        let given = Path::new("/tmp/x.conf");
        assert_eq!(
            daemon_config(Program::Agent, Some(given), None).unwrap(),
            (given.to_path_buf(), None)
        );
        assert_eq!(
            daemon_config(Program::Agent, Some(given), Some("@c1")).unwrap(),
            (given.to_path_buf(), Some("c1".to_string()))
        );
        let err = daemon_config(Program::Monitor, Some(given), Some("c1")).unwrap_err();
        assert_eq!(err.to_string(), "'c1' is not a cluster: write @NAME");
        let err = daemon_config(Program::Monitor, None, Some("@../x")).unwrap_err();
        assert!(matches!(err, LocateError::Cluster(_)), "{err}");
    }
}
