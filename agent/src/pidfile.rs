//! The local mysqld's pid file (`mysql_pidfile`), as a second way to see that the server died:
//! its process is gone (or a zombie nobody reaped) even while a connection attempt would still
//! be waiting for a timeout.
//!
//! The check is trusted only once it has seen the file name a live process: an agent in
//! another pid namespace, or a pid file at another path, never makes a live server look dead.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the pid file says of the server's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidState {
    /// The process named by the file runs.
    Alive(u32),
    /// The server's process is gone: the reason says how this was seen.
    Gone(String),
    /// Nothing can be said (no such file yet, unreadable, garbage, or never seen alive).
    Unknown(String),
}

/// Watches one pid file.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// The file once named a live process, so it is the server's and in our pid namespace.
    trusted: AtomicBool,
}

impl PidFile {
    /// Watches `path`, looking processes up in `/proc`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            trusted: AtomicBool::new(false),
        }
    }

    /// Reads the file and looks its process up.
    pub fn check(&self) -> PidState {
        let trusted = self.trusted.load(Ordering::Relaxed);
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if trusted && e.kind() == std::io::ErrorKind::NotFound => {
                // mysqld removes its pid file when it shuts down.
                return PidState::Gone(format!("its pid file {} was removed", self.path.display()));
            }
            Err(e) => return PidState::Unknown(format!("{}: {e}", self.path.display())),
        };
        let pid = match parse_pid(&text) {
            Some(pid) => pid,
            None => {
                return PidState::Unknown(format!(
                    "{}: not a process id: {:?}",
                    self.path.display(),
                    text.trim()
                ))
            }
        };
        match process_runs(pid) {
            Ok(true) => {
                self.trusted.store(true, Ordering::Relaxed);
                PidState::Alive(pid)
            }
            Ok(false) if trusted => PidState::Gone(format!(
                "its process {pid} (from {}) is gone",
                self.path.display()
            )),
            Ok(false) => PidState::Unknown(format!(
                "{}: process {pid} does not run here, and no process it named ever did",
                self.path.display()
            )),
            Err(e) => PidState::Unknown(format!("process {pid}: {e}")),
        }
    }
}

fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok().filter(|pid| *pid > 0)
}

/// Whether `pid` runs: it is in `/proc` and is not a zombie.
fn process_runs(pid: u32) -> std::io::Result<bool> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => Ok(!is_zombie(&stat)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// `/proc/<pid>/stat` is `pid (comm) state ...`; comm may hold spaces and parentheses, so the
/// state is the first field after the last `)`.
fn is_zombie(stat: &str) -> bool {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_read_after_the_last_parenthesis() {
        assert!(is_zombie("42 (mariadbd) Z 1 42 42 0"));
        assert!(is_zombie("42 (a) b) (c) Z 1"));
        assert!(!is_zombie("42 (a) Z) S 1"));
        assert!(!is_zombie("42 (mariadbd) S 1 42"));
        assert!(!is_zombie("garbage"));
    }

    #[test]
    fn a_pid_is_a_positive_number_on_its_own() {
        assert_eq!(parse_pid("1234\n"), Some(1234));
        assert_eq!(parse_pid("0"), None);
        assert_eq!(parse_pid("12 34"), None);
        assert_eq!(parse_pid(""), None);
    }
}
