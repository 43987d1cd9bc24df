//! The nouns of an MMM cluster: names, states, modes, checks, epochs and time.
//!
//! Every type here parses from and displays as MMM's own spelling (`HARD_OFFLINE`, `ACTIVE`,
//! `rep_threads`, `writer(10.0.0.1)`), so MMM text appears only at the edges.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A value that is not one of the spellings MMM accepts for a type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {what}")]
pub struct ParseError {
    /// What was being parsed, for example "host state".
    pub what: &'static str,
    /// The text that did not parse.
    pub value: String,
}

impl ParseError {
    fn new(what: &'static str, value: &str) -> Self {
        ParseError {
            what,
            value: value.to_string(),
        }
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a name.
            pub fn new(name: impl Into<String>) -> Self {
                $name(name.into())
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

name_type!(
    /// The name of a database host, as in `<host db1>`.
    HostName
);
name_type!(
    /// The name of a role, as in `<role writer>`.
    RoleName
);

/// One IP of one role, MMM's `writer(10.0.0.1)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleIp {
    /// The role.
    pub role: RoleName,
    /// One of the role's IPs.
    pub ip: IpAddr,
}

impl RoleIp {
    /// Pairs a role with one of its IPs.
    pub fn new(role: RoleName, ip: IpAddr) -> Self {
        RoleIp { role, ip }
    }
}

impl fmt::Display for RoleIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.role, self.ip)
    }
}

/// MMM sorts roles as strings (`reader(…)` before `writer(…)`, `10.0.0.10` before `10.0.0.9`).
impl Ord for RoleIp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for RoleIp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for RoleIp {
    type Err = ParseError;

    /// Parses `name(ip)`, the form used in MMM's status file and agent replies.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError::new("role", s);
        let (name, rest) = s.trim().split_once('(').ok_or_else(err)?;
        let ip = rest.strip_suffix(')').ok_or_else(err)?;
        if name.is_empty() {
            return Err(err());
        }
        let ip = ip.parse().map_err(|_| err())?;
        Ok(RoleIp::new(RoleName::new(name), ip))
    }
}

/// The writer epoch: it increases every time the writer assignment changes. Agents refuse any
/// command carrying an epoch lower than the highest they have seen.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The next epoch.
    pub fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A point in time: milliseconds since the Unix epoch, stamped on each event by the process
/// that proposes it. The core never reads a clock.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    /// A time from whole seconds since the Unix epoch.
    pub fn from_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1000))
    }

    /// Whole seconds since the Unix epoch.
    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The time `d` later.
    pub fn plus(self, d: std::time::Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Time) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// The state of a host (MMM 2.2.1 §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HostState {
    /// Healthy; the only state in which a host holds roles (outside MANUAL and WAIT modes).
    Online,
    /// Taken out by an admin with `set_offline`; automation never touches it.
    AdminOffline,
    /// ping or mysql failed.
    HardOffline,
    /// Healthy again after a failure, waiting for `set_online` or an automatic rule.
    AwaitingRecovery,
    /// The replica's backlog is too big.
    ReplicationDelay,
    /// The replication threads are not running.
    ReplicationFail,
    /// Not yet determined (before the monitor's startup).
    Unknown,
}

impl HostState {
    /// Every state, in MMM's order of precedence at startup and then the others.
    pub const ALL: [HostState; 7] = [
        HostState::AdminOffline,
        HostState::HardOffline,
        HostState::ReplicationFail,
        HostState::ReplicationDelay,
        HostState::Online,
        HostState::AwaitingRecovery,
        HostState::Unknown,
    ];

    /// MMM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Online => "ONLINE",
            HostState::AdminOffline => "ADMIN_OFFLINE",
            HostState::HardOffline => "HARD_OFFLINE",
            HostState::AwaitingRecovery => "AWAITING_RECOVERY",
            HostState::ReplicationDelay => "REPLICATION_DELAY",
            HostState::ReplicationFail => "REPLICATION_FAIL",
            HostState::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HostState {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseError::new("host state", s))
    }
}

/// The monitor's mode (MMM 2.2.1 §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Full automation.
    Active,
    /// States change, but roles stay on failed hosts and `prefer` is not obeyed.
    Manual,
    /// Like MANUAL until both masters are ONLINE or `wait_for_other_master` has passed.
    Wait,
    /// No role distribution and no agent traffic.
    Passive,
}

impl Mode {
    /// MMM's spelling, as printed by `mmm_control mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "ACTIVE",
            Mode::Manual => "MANUAL",
            Mode::Wait => "WAIT",
            Mode::Passive => "PASSIVE",
        }
    }

    /// MMM's `is_manual`: true in MANUAL and in WAIT.
    pub fn is_manual(self) -> bool {
        matches!(self, Mode::Manual | Mode::Wait)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ParseError;

    /// Accepts the config spelling (`active`) and the display spelling (`ACTIVE`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "active" => Ok(Mode::Active),
            "manual" => Ok(Mode::Manual),
            "wait" => Ok(Mode::Wait),
            "passive" => Ok(Mode::Passive),
            _ => Err(ParseError::new("mode", s)),
        }
    }
}

/// The four checks, in the order MMM prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CheckKind {
    /// The host answers ICMP.
    Ping,
    /// mysqld accepts a connection and answers a query.
    Mysql,
    /// Both replication threads run.
    RepThreads,
    /// `Seconds_Behind_Master` is within `max_backlog`.
    RepBacklog,
}

impl CheckKind {
    /// All checks in MMM's order.
    pub const ALL: [CheckKind; 4] = [
        CheckKind::Ping,
        CheckKind::Mysql,
        CheckKind::RepThreads,
        CheckKind::RepBacklog,
    ];

    /// MMM's name for the check.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Ping => "ping",
            CheckKind::Mysql => "mysql",
            CheckKind::RepThreads => "rep_threads",
            CheckKind::RepBacklog => "rep_backlog",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CheckKind {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckKind::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ParseError::new("check", s))
    }
}

/// A host's configured `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostMode {
    /// A master, with a `peer`.
    Master,
    /// A replica of the active master.
    Slave,
}

impl HostMode {
    /// MMM's spelling, as in `show`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostMode::Master => "master",
            HostMode::Slave => "slave",
        }
    }
}

impl fmt::Display for HostMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HostMode {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "master" => Ok(HostMode::Master),
            "slave" => Ok(HostMode::Slave),
            _ => Err(ParseError::new("host mode", s)),
        }
    }
}

/// A role's configured `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoleMode {
    /// Held by one host at a time.
    Exclusive,
    /// IPs spread over the eligible hosts.
    Balanced,
}

impl FromStr for RoleMode {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exclusive" => Ok(RoleMode::Exclusive),
            "balanced" => Ok(RoleMode::Balanced),
            _ => Err(ParseError::new("role mode", s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ip_round_trips_mmm_spelling() {
        let r: RoleIp = "writer(192.168.197.101)".parse().unwrap();
        assert_eq!(r.role.as_str(), "writer");
        assert_eq!(r.to_string(), "writer(192.168.197.101)");
        assert!("writer".parse::<RoleIp>().is_err());
        assert!("writer(1.2.3)".parse::<RoleIp>().is_err());
        assert!("(1.2.3.4)".parse::<RoleIp>().is_err());
    }

    #[test]
    fn roles_sort_as_mmm_strings() {
        let mut v: Vec<RoleIp> = ["writer(10.0.0.1)", "reader(10.0.0.9)", "reader(10.0.0.10)"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            s,
            ["reader(10.0.0.10)", "reader(10.0.0.9)", "writer(10.0.0.1)"]
        );
    }

    #[test]
    fn host_states_parse_their_display() {
        for st in HostState::ALL {
            assert_eq!(st.as_str().parse::<HostState>(), Ok(st));
        }
        assert!("BACKLOG".parse::<HostState>().is_err());
    }
}
