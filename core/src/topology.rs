//! The static definition of a cluster: hosts, roles and the monitor settings the rules use.
//!
//! It is built from the configuration files by the daemons (the `config` crate parses and
//! reports errors with file and line); `Topology::validate` is the core's own guard so that
//! no later rule can meet an undefined host or role.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::{HostMode, HostName, Mode, RoleMode, RoleName};

/// One `<host NAME>` section, as far as the core needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    /// The host's own address (`ip`).
    pub ip: IpAddr,
    /// `mode master` or `mode slave`.
    pub mode: HostMode,
    /// The other master, for `mode master`.
    pub peer: Option<HostName>,
}

/// One `<role NAME>` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSpec {
    /// `exclusive` or `balanced`.
    pub mode: RoleMode,
    /// The hosts that may hold the role, in configured order.
    pub hosts: Vec<HostName>,
    /// The role's IPs, in configured order. The first is the one MMM's exclusive-role
    /// functions look at.
    pub ips: Vec<IpAddr>,
    /// The preferred host; honoured for exclusive roles only, as in MMM.
    pub prefer: Option<HostName>,
}

/// The `<monitor>` settings used by the rules (MMM 2.2.1 §1.12 for defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Window in which leaving ONLINE more than `flap_count` times marks a host flapping.
    pub flap_duration: Duration,
    /// How many departures from ONLINE a window tolerates; 0 disables flap detection.
    pub flap_count: u32,
    /// Time in AWAITING_RECOVERY after which a healthy host goes ONLINE; zero means never.
    pub auto_set_online: Duration,
    /// How long WAIT mode waits for the second master; zero means forever.
    pub wait_for_other_master: Duration,
    /// Go PASSIVE at startup when the writer IP is found on more than one host.
    pub careful_startup: bool,
    /// The mode the monitor starts in.
    pub mode: Mode,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            flap_duration: Duration::from_secs(3600),
            flap_count: 3,
            auto_set_online: Duration::ZERO,
            wait_for_other_master: Duration::from_secs(120),
            careful_startup: true,
            mode: Mode::Active,
        }
    }
}

/// The whole static cluster definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Every host, by name.
    pub hosts: BTreeMap<HostName, HostSpec>,
    /// Every role, by name.
    pub roles: BTreeMap<RoleName, RoleSpec>,
    /// The exclusive role that means "writable master" (usually `writer`).
    pub active_master_role: RoleName,
    /// Monitor settings.
    pub settings: Settings,
}

/// A topology that the rules cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// A role or peer names a host that is not defined.
    #[error("{context}: host '{host}' is not defined")]
    UnknownHost {
        /// Where the name appeared.
        context: String,
        /// The undefined host.
        host: HostName,
    },
    /// The active master role is not defined as an exclusive role.
    #[error("active_master_role '{0}' is not an exclusive role")]
    BadActiveMasterRole(RoleName),
    /// More than two hosts can take the active master role (MMM refuses to start).
    #[error("There are more than two hosts configured which can handle the active master role.")]
    TooManyMasters,
    /// An IP belongs to two roles, or twice to one.
    #[error("ip {0} is listed more than once")]
    DuplicateIp(IpAddr),
    /// `prefer` is not one of the role's hosts.
    #[error("role '{role}': preferred host '{host}' is not one of its hosts")]
    PreferNotInHosts {
        /// The role.
        role: RoleName,
        /// The preferred host.
        host: HostName,
    },
}

impl Topology {
    /// Checks that every name refers to something defined, that the active master role is an
    /// exclusive role with at most two hosts, and that no IP is used twice.
    pub fn validate(&self) -> Result<(), TopologyError> {
        for (name, host) in &self.hosts {
            if let Some(peer) = &host.peer {
                if !self.hosts.contains_key(peer) {
                    return Err(TopologyError::UnknownHost {
                        context: format!("host '{name}' peer"),
                        host: peer.clone(),
                    });
                }
            }
        }
        let mut ips = std::collections::BTreeSet::new();
        for (name, role) in &self.roles {
            for host in role.hosts.iter().chain(role.prefer.iter()) {
                if !self.hosts.contains_key(host) {
                    return Err(TopologyError::UnknownHost {
                        context: format!("role '{name}'"),
                        host: host.clone(),
                    });
                }
            }
            if let Some(prefer) = &role.prefer {
                if !role.hosts.contains(prefer) {
                    return Err(TopologyError::PreferNotInHosts {
                        role: name.clone(),
                        host: prefer.clone(),
                    });
                }
            }
            for ip in &role.ips {
                if !ips.insert(*ip) {
                    return Err(TopologyError::DuplicateIp(*ip));
                }
            }
        }
        match self.roles.get(&self.active_master_role) {
            Some(r) if r.mode == RoleMode::Exclusive => {
                if r.hosts.len() > 2 {
                    return Err(TopologyError::TooManyMasters);
                }
            }
            _ => {
                return Err(TopologyError::BadActiveMasterRole(
                    self.active_master_role.clone(),
                ))
            }
        }
        Ok(())
    }

    /// The host's configured peer or, for a slave, the current active master (MMM's rule).
    pub fn peer_of(&self, host: &HostName, active_master: Option<&HostName>) -> Option<HostName> {
        let spec = self.hosts.get(host)?;
        match (&spec.peer, spec.mode) {
            (Some(p), _) => Some(p.clone()),
            (None, HostMode::Slave) => active_master.cloned(),
            (None, HostMode::Master) => None,
        }
    }

    /// Whether `host` is listed in the role's `hosts` (MMM's `can_handle`).
    pub fn can_handle(&self, role: &RoleName, host: &HostName) -> bool {
        self.roles
            .get(role)
            .is_some_and(|r| r.hosts.iter().any(|h| h == host))
    }

    /// Whether `host` can take the active master role (MMM's `is_master`).
    pub fn is_master(&self, host: &HostName) -> bool {
        self.can_handle(&self.active_master_role, host)
    }

    /// The hosts that can take the active master role, in configured order.
    pub fn master_hosts(&self) -> &[HostName] {
        self.roles
            .get(&self.active_master_role)
            .map(|r| r.hosts.as_slice())
            .unwrap_or(&[])
    }

    /// The role that owns `ip`, if any.
    pub fn role_of_ip(&self, ip: IpAddr) -> Option<&RoleName> {
        self.roles
            .iter()
            .find(|(_, r)| r.ips.contains(&ip))
            .map(|(n, _)| n)
    }
}
