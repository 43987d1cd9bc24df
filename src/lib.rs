//! The monitor daemon `mmm_mond`.
//!
//! Every replica of the monitor group runs one: it opens its Raft store, joins the group over
//! HTTP, serves the monitor API (`api`), runs MMM's checks on every host (`probe`, `checker`)
//! and, while it leads, commits what the cluster model needs and drives the agents (`leader`,
//! `driver`): the topology, the startup vote, the combined check results, ticks of time, and
//! every agent's status, the writer last and only through the fence gate.
//!
//! Tests: `tests/group.rs` runs three replicas as separate processes; `tests/probe.rs` runs the
//! probes against real MariaDB; `tests/failover.rs` runs the whole cluster in network
//! namespaces and breaks it.

pub mod api;
pub mod checker;
pub mod driver;
pub mod group;
pub mod leader;
pub mod lease;
pub mod membership;
pub mod metrics;
pub mod probe;
pub mod replica;
pub mod shared;
pub mod topology;

/// A monotonic clock in milliseconds since it was made, as the core's `Time`: for durations
/// measured on this machine only (check traps, leases), never compared with another's.
/// It reads tokio's clock, which is the machine's monotonic clock in the daemon and virtual
/// time in the deterministic simulation; there a clock may also run fast or slow by
/// `drift_ppm` parts per million (the daemon's never does).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: tokio::time::Instant,
    drift_ppm: i64,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock::drifting(0)
    }

    /// A clock starting now that runs `drift_ppm` parts per million fast (negative: slow).
    pub fn drifting(drift_ppm: i64) -> Clock {
        Clock {
            start: tokio::time::Instant::now(),
            drift_ppm,
        }
    }

    /// Milliseconds since the clock was made.
    pub fn now(&self) -> mmm_core::Time {
        let ms = i128::try_from(self.start.elapsed().as_millis()).unwrap_or(i128::MAX);
        let ms = ms + ms * i128::from(self.drift_ppm) / 1_000_000;
        mmm_core::Time(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// A wall clock as the core's `Time`: [`now`] in the daemon, virtual time in the simulation.
pub type WallClock = std::sync::Arc<dyn Fn() -> mmm_core::Time + Send + Sync>;

/// The wall clock as the core's `Time`. Only a leader stamps events with it.
pub fn now() -> mmm_core::Time {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    mmm_core::Time(ms)
}

/// Each check's schedule from `<check NAME>` (the config always has all four).
pub fn checks_from_config(
    config: &mmm_config::Config,
) -> std::collections::BTreeMap<mmm_core::CheckKind, checker::Schedule> {
    config
        .checks
        .values()
        .map(|c| {
            let kind = match c.name {
                mmm_config::CheckName::Ping => mmm_core::CheckKind::Ping,
                mmm_config::CheckName::Mysql => mmm_core::CheckKind::Mysql,
                mmm_config::CheckName::RepThreads => mmm_core::CheckKind::RepThreads,
                mmm_config::CheckName::RepBacklog => mmm_core::CheckKind::RepBacklog,
            };
            (
                kind,
                checker::Schedule {
                    check_period: c.check_period,
                    trap_period: c.trap_period,
                    timeout: c.timeout,
                },
            )
        })
        .collect()
}

/// Every agent's address: the host's `ip` and `agent_port`.
pub fn agents_from_config(
    config: &mmm_config::Config,
) -> anyhow::Result<std::collections::BTreeMap<mmm_core::HostName, std::net::SocketAddr>> {
    config
        .hosts
        .iter()
        .map(|(name, h)| {
            let ip =
                h.ip.ok_or_else(|| anyhow::anyhow!("<host {name}>: no ip"))?;
            Ok((
                mmm_core::HostName::new(name.as_str()),
                std::net::SocketAddr::new(ip, h.agent_port),
            ))
        })
        .collect()
}

/// The monitor's tokens and TLS settings from `<socket>`: the admin API token, the replicas'
/// token (unless the group is this replica alone) and the agents' token are required, the
/// read-only API token is used when configured.
pub fn transport_from_config(
    config: &mmm_config::Config,
    group: &group::Group,
) -> Result<mmm_transport::Transport, mmm_transport::Error> {
    use mmm_transport::{SecretKey, Want};
    let raft = if group.members.len() > 1 {
        Want::Required
    } else {
        Want::Optional
    };
    mmm_transport::Transport::load(
        &config.socket,
        &[
            (SecretKey::Api, Want::Required),
            (SecretKey::ApiReadOnly, Want::Optional),
            (SecretKey::Raft, raft),
            (SecretKey::Agent, Want::Required),
        ],
    )
}
