//! The writer lease as the leader sees it: its length and renewal interval (from `<monitor>`),
//! and whether the committed state lets a host hold it. When it may be granted is the fence
//! gate's decision (`mmm_core::fence`, see ARCHITECTURE.md).

use std::time::Duration;

use mmm_core::{ClusterState, Topology};

/// Whether the committed state lets `host` hold the writer role at `epoch`: it must hold the
/// active master role and the epoch must be the current one. The refusal says who the writer is.
pub fn may_hold(
    topo: &Topology,
    state: &ClusterState,
    host: &str,
    epoch: u64,
) -> Result<(), String> {
    let writer = state.active_master(topo).map(|h| h.as_str());
    if writer == Some(host) && state.epoch.0 == epoch {
        return Ok(());
    }
    Err(format!(
        "no lease for '{host}' at epoch {epoch}: the writer is {} at epoch {}",
        writer.unwrap_or("nobody"),
        state.epoch.0
    ))
}

/// Lease settings.
#[derive(Debug, Clone, Copy)]
pub struct Leases {
    lease: Duration,
    renew: Duration,
}

impl Leases {
    /// Leases of `lease`, renewed every `renew`.
    pub fn new(lease: Duration, renew: Duration) -> Leases {
        Leases { lease, renew }
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The lease length in milliseconds.
    pub fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    /// The renewal interval in milliseconds.
    pub fn renew_ms(&self) -> u64 {
        u64::try_from(self.renew.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_core::IpSlot;
    use mmm_core::{Epoch, HostMode, HostName, HostSpec, RoleMode, RoleName, RoleSpec, Settings};
    use std::collections::BTreeMap;

    fn topo() -> Topology {
        let host = |ip: &str, peer: &str| HostSpec {
            ip: ip.parse().unwrap(),
            mode: HostMode::Master,
            peer: Some(HostName::new(peer)),
        };
        Topology {
            hosts: BTreeMap::from([
                (HostName::new("db1"), host("10.0.0.1", "db2")),
                (HostName::new("db2"), host("10.0.0.2", "db1")),
            ]),
            roles: BTreeMap::from([(
                RoleName::new("writer"),
                RoleSpec {
                    mode: RoleMode::Exclusive,
                    hosts: vec![HostName::new("db1"), HostName::new("db2")],
                    ips: vec!["10.0.0.100".parse().unwrap()],
                    prefer: None,
                },
            )]),
            active_master_role: RoleName::new("writer"),
            settings: Settings::default(),
        }
    }

    fn state(topo: &Topology, writer: Option<&str>, epoch: u64) -> ClusterState {
        let mut st = ClusterState::new(topo, mmm_core::Time::default());
        st.roles.insert(
            RoleName::new("writer"),
            vec![IpSlot {
                ip: "10.0.0.100".parse().unwrap(),
                owner: writer.map(HostName::new),
            }],
        );
        st.epoch = Epoch(epoch);
        st
    }

    #[test]
    fn the_writer_at_the_current_epoch_gets_its_lease() {
        let t = topo();
        assert_eq!(may_hold(&t, &state(&t, Some("db1"), 4), "db1", 4), Ok(()));
    }

    #[test]
    fn an_old_epoch_or_another_host_is_refused_with_the_current_writer_named() {
        let t = topo();
        let st = state(&t, Some("db2"), 5);
        assert_eq!(
            may_hold(&t, &st, "db1", 4),
            Err("no lease for 'db1' at epoch 4: the writer is db2 at epoch 5".into())
        );
        assert!(
            may_hold(&t, &st, "db2", 4).is_err(),
            "the right host at an old epoch"
        );
        let nobody = state(&t, None, 5);
        assert_eq!(
            may_hold(&t, &nobody, "db1", 5),
            Err("no lease for 'db1' at epoch 5: the writer is nobody at epoch 5".into())
        );
    }
}
