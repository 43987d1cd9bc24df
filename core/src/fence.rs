//! The writer fence: when the leader may let the writer of the current epoch take writes.
//!
//! A host may hold a writer lease granted under an older epoch (by this leader or by an
//! earlier one) until it runs out. So the leader grants the writer's lease, and tells the
//! writer its status, only once every other host that can take the writer role is known not
//! to write:
//!
//! - it acknowledged a status of the current epoch (or a later one) without the writer role,
//!   and its agent said it is not an active writer: an agent that has seen an epoch refuses
//!   every older one, and it fenced itself when it lost the role; or
//! - every lease it could hold has certainly ended: `lease × (1 + ρ)` after the later of this
//!   replica becoming leader (an older leader's last grant was confirmed by a quorum before
//!   this one was elected) and this replica's own last grant to it.
//!
//! Times are this replica's monotonic clock in milliseconds; they are never compared with
//! another machine's.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::state::ClusterState;
use crate::topology::Topology;
use crate::types::{Epoch, HostName, Time};

/// Why the writer may not take writes yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    /// This replica is not the leader.
    #[error("this monitor replica is not the leader")]
    NotLeader,
    /// Another host may still hold a lease.
    #[error(
        "'{host}' has not confirmed its demotion; its lease has certainly ended in {left_ms} ms"
    )]
    Waiting {
        /// The host that may still write.
        host: HostName,
        /// When its lease has certainly ended.
        until: Time,
        /// How long that is from now.
        left_ms: u64,
    },
}

/// The leader's record of leases given and demotions confirmed.
#[derive(Debug, Clone)]
pub struct FenceGate {
    bound: Duration,
    leader_since: Option<Time>,
    grants: BTreeMap<HostName, Time>,
    confirmed: BTreeMap<HostName, Epoch>,
}

impl FenceGate {
    /// A gate for leases of `lease`, with clock rates differing by at most `drift` (0.01 for
    /// 1 %).
    pub fn new(lease: Duration, drift: f64) -> FenceGate {
        let factor = if drift.is_finite() && drift > 0.0 {
            1.0 + drift
        } else {
            1.0
        };
        FenceGate {
            bound: lease.mul_f64(factor),
            leader_since: None,
            grants: BTreeMap::new(),
            confirmed: BTreeMap::new(),
        }
    }

    /// How long after its last possible grant a lease has certainly ended.
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// This replica became leader at `now`.
    pub fn became_leader(&mut self, now: Time) {
        self.leader_since = Some(now);
    }

    /// This replica is no longer leader; its confirmations are forgotten (a later term starts
    /// over).
    pub fn lost_leadership(&mut self) {
        self.leader_since = None;
        self.confirmed.clear();
    }

    /// Whether this replica leads.
    pub fn is_leader(&self) -> bool {
        self.leader_since.is_some()
    }

    /// A lease was granted to `host` at `now`.
    pub fn granted(&mut self, host: &HostName, now: Time) {
        self.grants.insert(host.clone(), now);
    }

    /// When this replica last granted `host` a lease.
    pub fn last_grant(&self, host: &HostName) -> Option<Time> {
        self.grants.get(host).copied()
    }

    /// `host`'s agent acknowledged a status of `epoch` without the writer role and said it is
    /// not an active writer.
    pub fn confirm(&mut self, host: &HostName, epoch: Epoch) {
        let e = self.confirmed.entry(host.clone()).or_insert(epoch);
        if *e < epoch {
            *e = epoch;
        }
    }

    /// Whether `writer` may take writes at the committed epoch of `st`, at `now`.
    pub fn check(
        &self,
        topo: &Topology,
        st: &ClusterState,
        writer: &HostName,
        now: Time,
    ) -> Result<(), Blocked> {
        let since = self.leader_since.ok_or(Blocked::NotLeader)?;
        let mut latest: Option<(HostName, Time)> = None;
        for host in topo.master_hosts().iter().filter(|h| *h != writer) {
            if self.confirmed.get(host).is_some_and(|e| *e >= st.epoch) {
                continue;
            }
            let from = self.grants.get(host).map_or(since, |g| (*g).max(since));
            let until = from.plus(self.bound);
            if now < until && latest.as_ref().is_none_or(|(_, t)| *t < until) {
                latest = Some((host.clone(), until));
            }
        }
        match latest {
            None => Ok(()),
            Some((host, until)) => Err(Blocked::Waiting {
                host,
                until,
                left_ms: until.0.saturating_sub(now.0),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::seed;

    const LEASE: Duration = Duration::from_millis(1500);

    fn db(n: u8) -> HostName {
        HostName::new(format!("db{n}"))
    }

    fn state(epoch: u64) -> ClusterState {
        let mut st = ClusterState::new(&seed(), Time(0));
        st.epoch = Epoch(epoch);
        st
    }

    fn waiting_until(r: Result<(), Blocked>) -> Option<u64> {
        match r {
            Err(Blocked::Waiting { until, .. }) => Some(until.0),
            _ => None,
        }
    }

    #[test]
    fn a_replica_that_does_not_lead_never_opens() {
        let g = FenceGate::new(LEASE, 0.01);
        assert_eq!(
            g.check(&seed(), &state(1), &db(2), Time(100_000)),
            Err(Blocked::NotLeader)
        );
    }

    #[test]
    fn a_new_leader_waits_out_an_older_leaders_leases() {
        let mut g = FenceGate::new(LEASE, 0.01);
        g.became_leader(Time(10_000));
        assert_eq!(
            waiting_until(g.check(&seed(), &state(2), &db(2), Time(10_000))),
            Some(11_515),
            "lease × (1 + ρ) after the election"
        );
        assert_eq!(g.check(&seed(), &state(2), &db(2), Time(11_515)), Ok(()));
    }

    #[test]
    fn the_wait_counts_from_the_last_grant_to_the_old_writer() {
        let mut g = FenceGate::new(LEASE, 0.01);
        g.became_leader(Time(0));
        g.granted(&db(1), Time(20_000));
        assert_eq!(
            waiting_until(g.check(&seed(), &state(2), &db(2), Time(20_100))),
            Some(21_515)
        );
        assert!(g.check(&seed(), &state(2), &db(2), Time(21_514)).is_err());
        assert_eq!(g.check(&seed(), &state(2), &db(2), Time(21_515)), Ok(()));
    }

    #[test]
    fn a_confirmed_demotion_at_the_current_epoch_opens_at_once() {
        let mut g = FenceGate::new(LEASE, 0.01);
        g.became_leader(Time(0));
        g.granted(&db(1), Time(20_000));
        g.confirm(&db(1), Epoch(1));
        assert!(
            g.check(&seed(), &state(2), &db(2), Time(20_100)).is_err(),
            "a confirmation of an older epoch does not count"
        );
        g.confirm(&db(1), Epoch(2));
        assert_eq!(g.check(&seed(), &state(2), &db(2), Time(20_100)), Ok(()));
        g.confirm(&db(1), Epoch(1));
        assert_eq!(
            g.check(&seed(), &state(2), &db(2), Time(20_100)),
            Ok(()),
            "a late, older confirmation does not undo a newer one"
        );
    }

    #[test]
    fn slaves_that_cannot_take_the_writer_role_are_not_waited_for() {
        let mut g = FenceGate::new(LEASE, 0.01);
        g.became_leader(Time(0));
        g.granted(&db(3), Time(20_000));
        assert_eq!(g.check(&seed(), &state(2), &db(2), Time(20_100)), Ok(()));
    }

    #[test]
    fn losing_the_leadership_forgets_confirmations() {
        let mut g = FenceGate::new(LEASE, 0.01);
        g.became_leader(Time(0));
        g.confirm(&db(1), Epoch(2));
        g.lost_leadership();
        g.became_leader(Time(50_000));
        assert!(g.check(&seed(), &state(2), &db(2), Time(50_001)).is_err());
    }
}
