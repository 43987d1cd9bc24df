//! The leader's view of the checks: what the monitor replicas observed, combined.
//!
//! Every monitor replica probes every host and runs MMM's trap itself (`detector`); it keeps a
//! table of its current verdicts, and followers send theirs to the leader. A single monitor
//! that lost sight of a host (its own link, a slow path) must not fail that host over, so the
//! leader commits a failure only when a majority of the group's replicas report it, counting
//! only fresh reports from replicas whose own network check passes. A success needs no
//! majority: once fewer than a majority see the failure, the check passes again.
//!
//! The fast path: when a host's agent reports that its mysqld died and the leader's own probe
//! confirms it, two observers agree and the failure is committed at once, without the trap
//! period or the other replicas. The confirmation lasts until the leader itself sees the check
//! pass again in a table made after the confirmation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::ClusterState;
use crate::step::CheckReport;
use crate::types::{CheckKind, HostName, Time};

/// One replica's current verdict on one check of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The host.
    pub host: HostName,
    /// The check.
    pub check: CheckKind,
    /// Whether it passes, after the trap.
    pub ok: bool,
    /// The probe's message.
    pub message: String,
}

/// A replica's whole table, as it sends it to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaReport {
    /// The replica's name.
    pub replica: String,
    /// Whether its own network check (`ping_ips`) passes; a replica that is cut off does not
    /// count.
    pub network_up: bool,
    /// Its verdicts.
    pub verdicts: Vec<Observed>,
}

type Key = (HostName, CheckKind);

#[derive(Debug, Clone)]
struct Table {
    at: Time,
    network_up: bool,
    verdicts: BTreeMap<Key, (bool, String)>,
}

/// What the leader knows of every replica's checks.
#[derive(Debug, Clone)]
pub struct Observations {
    this: String,
    quorum: usize,
    fresh: Duration,
    tables: BTreeMap<String, Table>,
    /// Failures confirmed by two observers, with when and the message.
    confirmed: BTreeMap<Key, (Time, String)>,
}

impl Observations {
    /// The observations of a group of `members` replicas, kept by replica `this`; a table
    /// older than `fresh` no longer counts.
    pub fn new(this: impl Into<String>, members: usize, fresh: Duration) -> Observations {
        Observations {
            this: this.into(),
            quorum: members / 2 + 1,
            fresh,
            tables: BTreeMap::new(),
            confirmed: BTreeMap::new(),
        }
    }

    /// How many replicas must see a failure.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Records a replica's table, made at `at` (on the leader's clock). This replica's own
    /// table ends a confirmation it no longer supports: a pass seen after it.
    pub fn record(&mut self, at: Time, report: ReplicaReport) {
        let verdicts: BTreeMap<Key, (bool, String)> = report
            .verdicts
            .into_iter()
            .map(|o| ((o.host, o.check), (o.ok, o.message)))
            .collect();
        if report.replica == self.this {
            self.confirmed.retain(|key, (since, _)| {
                !(at > *since && verdicts.get(key).is_some_and(|(ok, _)| *ok))
            });
        }
        self.tables.insert(
            report.replica,
            Table {
                at,
                network_up: report.network_up,
                verdicts,
            },
        );
    }

    /// A failure two observers agree on (the agent's report and the leader's own probe).
    pub fn confirm(&mut self, at: Time, host: HostName, check: CheckKind, message: String) {
        self.confirmed.insert((host, check), (at, message));
    }

    /// Whether a failure of this check is confirmed by the fast path.
    pub fn is_confirmed(&self, host: &HostName, check: CheckKind) -> bool {
        self.confirmed.contains_key(&(host.clone(), check))
    }

    /// Forgets every replica's table and confirmation (on losing the leadership).
    pub fn clear(&mut self) {
        self.tables.clear();
        self.confirmed.clear();
    }

    /// The replicas whose tables count at `now`.
    fn counting(&self, now: Time) -> impl Iterator<Item = (&String, &Table)> {
        self.tables
            .iter()
            .filter(move |(_, t)| t.network_up && now.since(t.at) <= self.fresh)
    }

    /// Whether this replica's own table is fresh and its network up: without it the leader
    /// decides nothing.
    pub fn can_decide(&self, now: Time) -> bool {
        self.counting(now).any(|(name, _)| name == &self.this)
    }

    /// The check results that differ from the committed state `st`, as the group sees them at
    /// `now`: failed when confirmed or when a majority of replicas report the failure, passing
    /// when some counting replica sees it pass and no majority sees it fail. Nothing while
    /// this replica's own table does not count.
    ///
    /// Errant transactions need no majority: one counting replica that found them compared
    /// the host's binary log with the writable active master's, a fact rather than a view of
    /// the network, and a returning host must not go ONLINE while the others have yet to
    /// look. Their message is committed whenever it changes (a new count, or their end).
    pub fn decide(&self, now: Time, st: &ClusterState) -> Vec<CheckReport> {
        if !self.can_decide(now) {
            return Vec::new();
        }
        let counting: Vec<(&String, &Table)> = self.counting(now).collect();
        let keys: BTreeSet<&Key> = counting
            .iter()
            .flat_map(|(_, t)| t.verdicts.keys())
            .chain(self.confirmed.keys())
            .collect();
        let mut out = Vec::new();
        for key in keys {
            let seen: Vec<(bool, &String, &String)> = counting
                .iter()
                .filter_map(|(name, t)| t.verdicts.get(key).map(|(ok, m)| (*ok, m, *name)))
                .collect();
            let failing = seen.iter().filter(|(ok, _, _)| !ok).count();
            // This replica's message first, then the others in name order.
            let message_of = |want: bool| {
                seen.iter()
                    .filter(|(ok, _, _)| *ok == want)
                    .min_by_key(|(_, _, name)| *name != &self.this)
                    .map(|(_, m, _)| (*m).clone())
            };
            let errant = seen
                .iter()
                .filter(|(ok, m, _)| !ok && is_errant(m))
                .min_by_key(|(_, _, name)| *name != &self.this)
                .map(|(_, m, _)| (*m).clone());
            let desired = if let Some((_, message)) = self.confirmed.get(key) {
                Some((false, message.clone()))
            } else if let Some(message) = errant {
                Some((false, message))
            } else if failing >= self.quorum {
                message_of(false).map(|m| (false, m))
            } else {
                message_of(true).map(|m| (true, m))
            };
            let Some((ok, message)) = desired else {
                continue;
            };
            let (host, check) = key;
            let committed = st.hosts.get(host).and_then(|h| h.checks.get(check));
            let changed = match committed {
                None => true,
                Some(c) => {
                    c.ok != ok
                        || (c.message != message && (is_errant(&c.message) || is_errant(&message)))
                }
            };
            if changed {
                out.push(CheckReport {
                    host: host.clone(),
                    check: *check,
                    ok,
                    message,
                });
            }
        }
        out
    }
}

/// Whether a check message reports errant transactions.
fn is_errant(message: &str) -> bool {
    crate::gtid::ErrantReport::from_message(message).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Duration = Duration::from_secs(3);

    fn db1() -> HostName {
        HostName::new("db1")
    }

    fn table(replica: &str, ok: bool) -> ReplicaReport {
        ReplicaReport {
            replica: replica.into(),
            network_up: true,
            verdicts: vec![Observed {
                host: db1(),
                check: CheckKind::Mysql,
                ok,
                message: if ok {
                    "OK".into()
                } else {
                    format!("ERROR: Connect error (seen by {replica})")
                },
            }],
        }
    }

    fn committed(ok: bool) -> ClusterState {
        crate::fixtures::with_check("db1", CheckKind::Mysql, ok)
    }

    fn at(ms: u64) -> Time {
        Time(ms)
    }

    #[test]
    fn a_failure_seen_by_one_replica_of_three_is_not_committed() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon1", false));
        o.record(at(0), table("mon2", true));
        o.record(at(0), table("mon3", true));
        assert_eq!(o.decide(at(10), &committed(true)), vec![]);
    }

    #[test]
    fn a_failure_seen_by_a_majority_is_committed_with_the_leaders_message() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon1", false));
        o.record(at(0), table("mon3", false));
        let d = o.decide(at(10), &committed(true));
        assert_eq!(d.len(), 1);
        assert!(!d[0].ok);
        assert_eq!(d[0].message, "ERROR: Connect error (seen by mon1)");
    }

    #[test]
    fn a_majority_of_followers_commits_a_failure_the_leader_does_not_see() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon1", true));
        o.record(at(0), table("mon2", false));
        o.record(at(0), table("mon3", false));
        let d = o.decide(at(10), &committed(true));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].message, "ERROR: Connect error (seen by mon2)");
    }

    #[test]
    fn stale_tables_and_cut_off_replicas_do_not_count() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon2", false));
        o.record(at(4000), table("mon1", false));
        assert_eq!(
            o.decide(at(4000), &committed(true)),
            vec![],
            "mon2's table is older than FRESH"
        );
        let mut cut = table("mon3", false);
        cut.network_up = false;
        o.record(at(4000), cut);
        assert_eq!(o.decide(at(4000), &committed(true)), vec![]);
        o.record(at(4000), table("mon3", false));
        assert_eq!(o.decide(at(4000), &committed(true)).len(), 1);
    }

    fn rep_threads(replica: &str, message: &str) -> ReplicaReport {
        ReplicaReport {
            replica: replica.into(),
            network_up: true,
            verdicts: vec![Observed {
                host: db1(),
                check: CheckKind::RepThreads,
                ok: message == "OK",
                message: message.into(),
            }],
        }
    }

    #[test]
    fn errant_transactions_found_by_one_replica_are_committed_and_follow_their_changes() {
        let errant = |n: u64| {
            format!(
                "ERROR: Errant transactions not on the active master db2: {n} (0-1-3..0-1-{})",
                2 + n
            )
        };
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), rep_threads("mon1", "OK"));
        o.record(at(0), rep_threads("mon2", &errant(3)));
        o.record(at(0), rep_threads("mon3", "OK"));
        let mut st = crate::fixtures::with_check("db1", CheckKind::RepThreads, true);
        let d = o.decide(at(10), &st);
        assert_eq!(d.len(), 1, "no majority needed");
        assert_eq!((d[0].ok, d[0].message.clone()), (false, errant(3)));

        let set = |st: &mut ClusterState, message: String| {
            if let Some(c) = st
                .hosts
                .get_mut(&db1())
                .and_then(|h| h.checks.get_mut(&CheckKind::RepThreads))
            {
                c.ok = false;
                c.message = message;
            }
        };
        set(&mut st, errant(3));
        assert_eq!(o.decide(at(10), &st), vec![], "committed already");
        o.record(at(20), rep_threads("mon2", &errant(4)));
        let d = o.decide(at(30), &st);
        assert_eq!(
            d.first().map(|r| r.message.clone()),
            Some(errant(4)),
            "a new count"
        );

        set(&mut st, errant(4));
        for r in ["mon1", "mon2", "mon3"] {
            o.record(at(40), rep_threads(r, "ERROR: Replication is broken"));
        }
        let d = o.decide(at(50), &st);
        assert_eq!(
            d.first().map(|r| (r.ok, r.message.clone())),
            Some((false, "ERROR: Replication is broken".to_string())),
            "their end is committed though the check still fails"
        );
    }

    #[test]
    fn nothing_is_decided_without_the_leaders_own_fresh_table() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon2", false));
        o.record(at(0), table("mon3", false));
        assert_eq!(o.decide(at(10), &committed(true)), vec![]);
    }

    #[test]
    fn recovery_is_committed_once_fewer_than_a_majority_see_the_failure() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon1", true));
        o.record(at(0), table("mon2", false));
        o.record(at(0), table("mon3", false));
        assert_eq!(o.decide(at(10), &committed(false)), vec![]);
        o.record(at(20), table("mon3", true));
        let d = o.decide(at(30), &committed(false));
        assert_eq!(d.len(), 1);
        assert!(d[0].ok);
        assert_eq!(d[0].message, "OK");
    }

    #[test]
    fn a_confirmed_failure_is_committed_alone_and_ends_with_a_later_pass_of_the_leader() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon1", true));
        o.record(at(0), table("mon2", true));
        o.confirm(at(5), db1(), CheckKind::Mysql, "ERROR: mysqld died".into());
        let d = o.decide(at(6), &committed(true));
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].ok, d[0].message.as_str()),
            (false, "ERROR: mysqld died")
        );
        o.record(at(5), table("mon1", true));
        assert!(
            o.is_confirmed(&db1(), CheckKind::Mysql),
            "a table made at the same moment does not end it"
        );
        o.record(at(9), table("mon2", true));
        assert!(
            o.is_confirmed(&db1(), CheckKind::Mysql),
            "a follower's does not"
        );
        o.record(at(9), table("mon1", true));
        assert!(!o.is_confirmed(&db1(), CheckKind::Mysql));
        assert_eq!(o.decide(at(10), &committed(false)).len(), 1);
    }

    #[test]
    fn a_single_replica_group_decides_alone() {
        let mut o = Observations::new("mon1", 1, FRESH);
        o.record(at(0), table("mon1", false));
        assert_eq!(o.decide(at(1), &committed(true)).len(), 1);
    }

    #[test]
    fn an_uncommitted_check_is_reported_either_way() {
        let mut o = Observations::new("mon1", 3, FRESH);
        o.record(at(0), table("mon1", true));
        let st = ClusterState::new(&crate::fixtures::seed(), Time(0));
        let d = o.decide(at(1), &st);
        assert_eq!(d.len(), 1);
        assert!(d[0].ok);
    }
}
