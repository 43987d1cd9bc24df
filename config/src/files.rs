//! Which file each program reads, where included files are looked for, and how files are read.
//!
//! MMM names its files after the program and an optional cluster (`@NAME` on the command line):
//! `mmm_mon[_NAME].conf` for the monitor and `mmm_control`, `mmm_agent[_NAME].conf` for the
//! agent, and `mmm_tools.conf` for the tools, which take no cluster. Relative names are looked
//! for in a search path, `/etc`, `/etc/mmm`, `/etc/mysql-mmm` by default, with `.conf` appended
//! when missing; the first readable file wins. Files are read through the [`Files`] trait so
//! tests and the fuzzer can load from memory ([`MemoryFiles`]) as well as from disk.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

/// A program that reads the configuration; each needs a different set of keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Program {
    /// `mmm_agentd`, on each MySQL host.
    Agent,
    /// `mmm_mond`, the monitor.
    Monitor,
    /// `mmm_control`, the command-line client.
    Control,
    /// `mmm_backup`, `mmm_restore` and `mmm_clone`.
    Tools,
}

impl Program {
    /// Every program.
    pub const ALL: [Program; 4] = [
        Program::Agent,
        Program::Monitor,
        Program::Control,
        Program::Tools,
    ];
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Program::Agent => "mmm_agentd",
            Program::Monitor => "mmm_mond",
            Program::Control => "mmm_control",
            Program::Tools => "mmm_backup/mmm_restore/mmm_clone",
        })
    }
}

/// MMM's search path for configuration files, in order.
pub const DEFAULT_SEARCH_PATH: [&str; 3] = ["/etc", "/etc/mmm", "/etc/mysql-mmm"];

/// A cluster name (`@NAME`) that is not safe to put in a file name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cluster name '{0}' is invalid: use letters, digits, '_' and '-' only")]
pub struct InvalidClusterName(pub String);

/// The file name a program reads, for the default cluster or for `@cluster`.
///
/// The tools have no cluster argument in MMM; for them the cluster is ignored and the name is
/// always `mmm_tools.conf`. A cluster name may hold ASCII letters, digits, `_` and `-`, so that
/// `@../../x` cannot point outside the search path.
pub fn config_file_name(
    program: Program,
    cluster: Option<&str>,
) -> Result<String, InvalidClusterName> {
    let base = match program {
        Program::Agent => "mmm_agent",
        Program::Monitor | Program::Control => "mmm_mon",
        Program::Tools => return Ok("mmm_tools.conf".to_string()),
    };
    match cluster {
        None => Ok(format!("{base}.conf")),
        Some(name) => {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if valid {
                Ok(format!("{base}_{name}.conf"))
            } else {
                Err(InvalidClusterName(name.to_string()))
            }
        }
    }
}

/// The cluster named by a command-line argument `@NAME`, or `None` if the argument is not one.
pub fn cluster_from_arg(arg: &str) -> Option<&str> {
    arg.strip_prefix('@')
}

/// `name` with `.conf` appended unless it already ends so, as MMM does for every file name.
pub(crate) fn with_conf_suffix(name: &str) -> String {
    if name.ends_with(".conf") {
        name.to_string()
    } else {
        format!("{name}.conf")
    }
}

/// Access to configuration files: on disk ([`DiskFiles`]) or in memory ([`MemoryFiles`]).
pub trait Files {
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The file's Unix permission bits (such as `0o600`).
    fn mode(&self, path: &Path) -> io::Result<u32>;
    /// Whether the path is a regular file that can be opened for reading.
    fn is_readable(&self, path: &Path) -> bool;
    /// A name that is the same for every spelling of the same file, for cycle detection.
    fn identity(&self, path: &Path) -> PathBuf;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskFiles;

impl Files for DiskFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    #[cfg(unix)]
    fn mode(&self, path: &Path) -> io::Result<u32> {
        use std::os::unix::fs::PermissionsExt;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
    }

    #[cfg(not(unix))]
    fn mode(&self, path: &Path) -> io::Result<u32> {
        std::fs::metadata(path).map(|_| 0o600)
    }

    fn is_readable(&self, path: &Path) -> bool {
        let is_file = std::fs::metadata(path).is_ok_and(|m| m.is_file());
        is_file && std::fs::File::open(path).is_ok()
    }

    fn identity(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path))
    }
}

/// Files held in memory, keyed by path; for tests and fuzzing.
#[derive(Clone, Debug, Default)]
pub struct MemoryFiles {
    files: BTreeMap<PathBuf, (Vec<u8>, u32)>,
}

impl MemoryFiles {
    /// No files.
    pub fn new() -> Self {
        MemoryFiles::default()
    }

    /// Adds a file with mode `0o600`.
    pub fn insert(&mut self, path: impl AsRef<Path>, content: impl Into<Vec<u8>>) {
        self.insert_with_mode(path, content, 0o600);
    }

    /// Adds a file with the given permission bits.
    pub fn insert_with_mode(
        &mut self,
        path: impl AsRef<Path>,
        content: impl Into<Vec<u8>>,
        mode: u32,
    ) {
        self.files
            .insert(normalize(path.as_ref()), (content.into(), mode));
    }
}

impl Files for MemoryFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(&normalize(path))
            .map(|(content, _)| content.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file in memory"))
    }

    fn mode(&self, path: &Path) -> io::Result<u32> {
        self.files
            .get(&normalize(path))
            .map(|(_, mode)| *mode)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file in memory"))
    }

    fn is_readable(&self, path: &Path) -> bool {
        self.files.contains_key(&normalize(path))
    }

    fn identity(&self, path: &Path) -> PathBuf {
        normalize(path)
    }
}

/// The path without `.` components and with `..` applied where possible, spelled lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let can_pop = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if can_pop {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_program_and_cluster() {
        let name = |p, c| config_file_name(p, c).unwrap_or_default();
        assert_eq!(name(Program::Monitor, None), "mmm_mon.conf");
        assert_eq!(name(Program::Monitor, Some("c1")), "mmm_mon_c1.conf");
        assert_eq!(name(Program::Control, None), "mmm_mon.conf");
        assert_eq!(name(Program::Control, Some("c1")), "mmm_mon_c1.conf");
        assert_eq!(name(Program::Agent, None), "mmm_agent.conf");
        assert_eq!(name(Program::Agent, Some("c1")), "mmm_agent_c1.conf");
        assert_eq!(name(Program::Tools, None), "mmm_tools.conf");
        assert_eq!(name(Program::Tools, Some("c1")), "mmm_tools.conf");
    }

    #[test]
    fn cluster_names_that_could_escape_the_directory_are_refused() {
        let err = config_file_name(Program::Monitor, Some("../x"));
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("cluster name '../x' is invalid: use letters, digits, '_' and '-' only".into())
        );
    }

    #[test]
    fn cluster_argument_starts_with_at() {
        assert_eq!(cluster_from_arg("@prod"), Some("prod"));
        assert_eq!(cluster_from_arg("show"), None);
    }

    #[test]
    fn conf_suffix_is_added_once() {
        assert_eq!(with_conf_suffix("mmm_common"), "mmm_common.conf");
        assert_eq!(with_conf_suffix("mmm_common.conf"), "mmm_common.conf");
    }

    #[test]
    fn memory_paths_are_normalised() {
        assert_eq!(
            normalize(Path::new("./a/./b/../c.conf")),
            PathBuf::from("a/c.conf")
        );
        assert_eq!(
            normalize(Path::new("../c.conf")),
            PathBuf::from("../c.conf")
        );
    }
}
