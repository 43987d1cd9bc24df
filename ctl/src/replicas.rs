//! Which monitor replicas to ask: the `--monitor` list, or the monitor group of the
//! configuration file (`mmm_mon[_CLUSTER].conf`, or `--config FILE`).
//!
//! With a monitor group, the replica the file is for (`<monitor> node`) is asked first, since
//! mmm_control usually runs beside it; the others follow in name order. A plain MMM file gives
//! the single replica at `<monitor> ip:port`.

use std::fmt;
use std::path::{Path, PathBuf};

use mmm_config::{Config, Errors, InvalidClusterName, Loader, Program};

use crate::address::{Address, AddressList};

/// One monitor replica to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Its name from the configuration (its address when given with `--monitor`).
    pub name: String,
    /// Where its HTTP API listens.
    pub address: Address,
}

impl fmt::Display for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = self.address.to_string();
        if self.name == address {
            f.write_str(&address)
        } else {
            write!(f, "{} ({address})", self.name)
        }
    }
}

/// Why the configuration gave no replicas.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `@CLUSTER` cannot be part of a file name.
    #[error(transparent)]
    Cluster(#[from] InvalidClusterName),
    /// No such file.
    #[error("configuration file '{name}' not found (looked in {}); give --config FILE or --monitor HOST:PORT", search.join(", "))]
    NotFound {
        /// The name looked for.
        name: String,
        /// Where it was looked for.
        search: Vec<String>,
    },
    /// The file does not validate for mmm_control.
    #[error("{0}")]
    Invalid(Errors),
    /// The file validates but names no monitor.
    #[error("{}: no monitor address: add '<monitor> ip' or '<monitor_node NAME>' sections", .0.display())]
    NoMonitor(PathBuf),
}

/// The replicas named by `--monitor`, each named by its address.
pub fn from_list(list: &AddressList) -> Vec<Replica> {
    list.0
        .iter()
        .map(|address| Replica {
            name: address.to_string(),
            address: address.clone(),
        })
        .collect()
}

/// The configuration file to read: `--config FILE` (as given, or looked for in the search path
/// if there is no such file), else `mmm_mon[_CLUSTER].conf` in the search path.
pub fn config_path(
    loader: &Loader,
    config: Option<&Path>,
    cluster: Option<&str>,
) -> Result<PathBuf, ConfigError> {
    let name = match config {
        Some(path) if path.is_file() => return Ok(path.to_path_buf()),
        Some(path) => path.display().to_string(),
        None => mmm_config::config_file_name(Program::Control, cluster)?,
    };
    loader.locate(&name).ok_or_else(|| ConfigError::NotFound {
        name,
        search: loader
            .search_path()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    })
}

/// Loads and validates the configuration for mmm_control.
pub fn load(loader: &Loader, path: &Path) -> Result<Config, ConfigError> {
    loader
        .load(path, Program::Control)
        .map_err(ConfigError::Invalid)
}

/// The monitor group's replicas, the one this file is for first.
pub fn from_config(config: &Config, path: &Path) -> Result<Vec<Replica>, ConfigError> {
    let group = config
        .monitor_group()
        .ok_or_else(|| ConfigError::NoMonitor(path.to_path_buf()))?;
    let mut replicas: Vec<Replica> = group
        .members
        .iter()
        .map(|member| Replica {
            name: member.name.clone(),
            address: Address::from(member.addr),
        })
        .collect();
    if let Some(this) = &group.this {
        replicas.sort_by_key(|r| &r.name != this);
    }
    if replicas.is_empty() {
        return Err(ConfigError::NoMonitor(path.to_path_buf()));
    }
    Ok(replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_config::MemoryFiles;

    const HOSTS: &str = "<host db1>\n    ip 192.168.0.31\n    mode master\n</host>\n";

    fn replicas(text: &str) -> Result<Vec<String>, String> {
        let mut files = MemoryFiles::new();
        files.insert("/etc/mmm_mon.conf", format!("{HOSTS}{text}"));
        let path = Path::new("/etc/mmm_mon.conf");
        let config = Loader::new()
            .load_from(&files, path, Program::Control)
            .map_err(|e| e.to_string())?;
        let replicas = from_config(&config, path).map_err(|e| e.to_string())?;
        Ok(replicas.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_plain_mmm_config_gives_the_single_monitor() {
        assert_eq!(
            replicas("<monitor>\n    ip 127.0.0.1\n</monitor>\n"),
            Ok(vec!["mon1 (127.0.0.1:9988)".to_string()])
        );
    }

    #[test]
    fn the_replica_this_file_is_for_is_asked_first() {
        let text = "<monitor>\n    node mon2\n</monitor>\n\
            <monitor_node mon1>\n    ip 10.0.0.21\n</monitor_node>\n\
            <monitor_node mon2>\n    ip 10.0.0.22\n    port 9990\n</monitor_node>\n\
            <monitor_node mon3>\n    ip 10.0.0.23\n</monitor_node>\n";
        assert_eq!(
            replicas(text),
            Ok(vec![
                "mon2 (10.0.0.22:9990)".to_string(),
                "mon1 (10.0.0.21:9988)".to_string(),
                "mon3 (10.0.0.23:9988)".to_string(),
            ])
        );
    }

    #[test]
    fn monitor_nodes_without_node_key_are_asked_in_name_order() {
        let text = "<monitor_node b>\n    ip 10.0.0.2\n</monitor_node>\n\
            <monitor_node a>\n    ip 10.0.0.1\n</monitor_node>\n";
        assert_eq!(
            replicas(text),
            Ok(vec![
                "a (10.0.0.1:9988)".to_string(),
                "b (10.0.0.2:9988)".to_string()
            ])
        );
    }

    #[test]
    fn a_config_without_monitor_is_refused() {
        let err = replicas("").err().unwrap_or_default();
        assert!(err.contains("<monitor>"), "{err}");
    }

    #[test]
    fn monitor_list_replicas_are_named_by_address() -> Result<(), crate::address::AddressError> {
        let list: AddressList = "127.0.0.1:1,[::1]:2".parse()?;
        let shown: Vec<String> = from_list(&list).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.1:1", "[::1]:2"]);
        Ok(())
    }

    #[test]
    fn a_missing_config_names_the_file_and_the_search_path() {
        let loader = Loader::with_search_path(["/nonexistent-a", "/nonexistent-b"]);
        let err = config_path(&loader, None, Some("prod")).map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(
                "configuration file 'mmm_mon_prod.conf' not found (looked in /nonexistent-a, \
                 /nonexistent-b); give --config FILE or --monitor HOST:PORT"
                    .to_string()
            )
        );
    }

    #[test]
    fn a_cluster_name_that_could_escape_the_search_path_is_refused() {
        let err = config_path(&Loader::new(), None, Some("../x")).map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(
                "cluster name '../x' is invalid: use letters, digits, '_' and '-' only".to_string()
            )
        );
    }
}
