//! The writer lease as the leader sees it: its length and renewal interval (from `<monitor>`),
//! and whether the committed state lets a host hold it. When it may be granted is the fence
//! gate's decision (`mmm_core::fence`, see ARCHITECTURE.md).

use std::time::Duration;

use mmm_core::api::{LeaseGrant, LeaseRequest};
use mmm_core::{ClusterState, HostName, Topology};
use mmm_raft::typ::Raft;
use mmm_raft::StateReader;

use crate::shared::Shared;

/// Why the leader did not grant a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Not now (leadership not confirmed, no configuration, the fence gate closed): ask again.
    Unavailable(String),
    /// The committed state does not name the host writer at that epoch: it must fence.
    Refused(String),
}

/// The leader grants the writer's lease: only after confirming with a quorum, within
/// `confirm_within`, that it still leads (after the request arrived), only while the
/// committed state names the host writer at that epoch, and only through the fence gate.
pub async fn grant(
    raft: &Raft,
    reader: &StateReader,
    shared: &Shared,
    confirm_within: Duration,
    req: LeaseRequest,
) -> Result<LeaseGrant, Denied> {
    match tokio::time::timeout(confirm_within, raft.ensure_linearizable()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(Denied::Unavailable(format!(
                "no lease: cannot confirm leadership: {e}"
            )))
        }
        Err(_) => {
            return Err(Denied::Unavailable(
                "no lease: a quorum did not confirm leadership in time".into(),
            ))
        }
    }
    let applied = reader.read();
    let (Some(topo), Some(st)) = (&applied.topology, &applied.state) else {
        return Err(Denied::Unavailable(
            "no lease: the monitor group has not applied its configuration yet".into(),
        ));
    };
    if let Err(why) = may_hold(topo, st, &req.host, req.epoch) {
        tracing::warn!(host = %req.host, epoch = req.epoch, "lease refused: {why}");
        return Err(Denied::Refused(why));
    }
    let host = HostName::new(req.host.as_str());
    {
        let now = shared.clock.now();
        let mut gate = shared.gate();
        if let Err(blocked) = gate.check(topo, st, &host, now) {
            drop(gate);
            tracing::info!(host = %req.host, epoch = req.epoch, "lease not granted yet: {blocked}");
            return Err(Denied::Unavailable(format!("no lease yet: {blocked}")));
        }
        gate.granted(&host, now);
    }
    Ok(LeaseGrant {
        host: req.host,
        epoch: req.epoch,
        lease_ms: shared.leases.lease_ms(),
        renew_ms: shared.leases.renew_ms(),
        replica: shared.this.clone(),
    })
}

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
