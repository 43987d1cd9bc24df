//! This replica's checks: every check of every host runs in a task of its own, every
//! `check_period`, bounded by its timeout, so one slow host never delays another. Each result
//! goes through MMM's trap (`mmm_core::Trap`), and the verdicts form this replica's table, which
//! the leader combines with the other replicas' (`mmm_core::observe`). A network task pings
//! `ping_ips` every `ping_interval`: while none answers, this replica's table does not count.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mmm_core::observe::{Observed, ReplicaReport};
use mmm_core::{CheckKind, HostName, Probe, Time, Trap, Verdict};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::probe::Prober;

/// When and how often a check runs (`<check NAME>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The pause between two probes.
    pub check_period: Duration,
    /// How long a failure must last before it is reported.
    pub trap_period: Duration,
    /// The probe's own timeout; the task gives it one second more.
    pub timeout: Duration,
}

type Key = (HostName, CheckKind);

#[derive(Debug, Default)]
struct Inner {
    traps: BTreeMap<Key, Trap>,
    verdicts: BTreeMap<Key, Verdict>,
    /// How long each check's latest probe took.
    latencies: BTreeMap<Key, Duration>,
    /// Hosts whose mysql check passes again, held back until a rep_threads probe reaches
    /// them: the passing probe, when and with what trap period it was seen.
    held: BTreeMap<HostName, (Probe, Time, Duration)>,
    network_up: bool,
}

impl Inner {
    /// One probe through its trap; the verdict to report, if any (also recorded).
    fn apply(&mut self, key: Key, probe: Probe, now: Time, trap: Duration) -> Option<Verdict> {
        let reported = match self.traps.get_mut(&key) {
            Some(t) => t.observe(probe, now, trap),
            None => {
                let (t, v) = Trap::first(probe, now);
                self.traps.insert(key.clone(), t);
                Some(v)
            }
        };
        if let Some(v) = &reported {
            self.verdicts.insert(key, v.clone());
        }
        reported
    }
}

/// This replica's verdicts, shared by the check tasks, the API and the leader.
#[derive(Debug, Clone)]
pub struct Table {
    this: String,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl Table {
    /// The empty table of replica `this`; the network counts as up until the network check
    /// says otherwise.
    pub fn new(this: impl Into<String>) -> Table {
        Table {
            this: this.into(),
            inner: Arc::new(Mutex::new(Inner {
                network_up: true,
                ..Inner::default()
            })),
            changed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Feeds one probe result seen at `now` (monotonic); wakes whoever waits on a change.
    ///
    /// A host whose mysql check failed and now passes is not reported back until a
    /// rep_threads probe has reached it too: a returning old writer with errant transactions
    /// must be seen as such before the rules can set it ONLINE (rep_threads kept its last
    /// result while the host was unreachable). Both results are then reported together.
    pub fn observe(
        &self,
        host: &HostName,
        check: CheckKind,
        probe: Probe,
        now: Time,
        trap: Duration,
    ) {
        let reported = {
            let mut inner = self.lock();
            let mysql_key = (host.clone(), CheckKind::Mysql);
            if check == CheckKind::Mysql {
                let back = matches!(probe, Probe::Ok(_))
                    && inner.verdicts.get(&mysql_key).is_some_and(|v| !v.ok);
                if back {
                    inner.held.insert(host.clone(), (probe, now, trap));
                    return;
                }
                inner.held.remove(host);
            }
            let reached = check == CheckKind::RepThreads && !matches!(probe, Probe::Unknown(_));
            let mut reported = Vec::new();
            if let Some(v) = inner.apply((host.clone(), check), probe, now, trap) {
                reported.push((check, v));
            }
            if let Some((held, seen, trap)) = reached.then(|| inner.held.remove(host)).flatten() {
                if let Some(v) = inner.apply(mysql_key, held, seen, trap) {
                    reported.push((CheckKind::Mysql, v));
                }
            }
            reported
        };
        if reported.is_empty() {
            return;
        }
        for (check, v) in reported {
            if v.ok {
                tracing::info!(host = %host, check = %check, message = %v.message, "check passes");
            } else {
                tracing::warn!(host = %host, check = %check, message = %v.message, "check fails");
            }
        }
        self.changed.notify_waiters();
    }

    /// Marks a check failed at once (the fast path: the agent and this replica's own probe
    /// agree); it passes again only when a later probe passes.
    pub fn force_failed(&self, host: &HostName, check: CheckKind, message: String, now: Time) {
        {
            let mut inner = self.lock();
            let key = (host.clone(), check);
            let (t, v) = Trap::first(Probe::Error(message), now);
            inner.traps.insert(key.clone(), t);
            inner.verdicts.insert(key, v);
        }
        self.changed.notify_waiters();
    }

    /// Records this replica's network check.
    pub fn set_network(&self, up: bool) {
        let changed = {
            let mut inner = self.lock();
            std::mem::replace(&mut inner.network_up, up) != up
        };
        if changed {
            if up {
                tracing::info!(replica = %self.this, "network check passes again: this replica's checks count");
            } else {
                tracing::error!(replica = %self.this, "network check fails: no ping_ip answers; this replica's checks do not count");
            }
            self.changed.notify_waiters();
        }
    }

    /// Whether this replica's network check passes.
    pub fn network_up(&self) -> bool {
        self.lock().network_up
    }

    /// The table as it stands, to send to the leader.
    pub fn report(&self) -> ReplicaReport {
        let inner = self.lock();
        ReplicaReport {
            replica: self.this.clone(),
            network_up: inner.network_up,
            verdicts: inner
                .verdicts
                .iter()
                .map(|((host, check), v)| Observed {
                    host: host.clone(),
                    check: *check,
                    ok: v.ok,
                    message: v.message.clone(),
                })
                .collect(),
        }
    }

    /// Records how long a probe took (for `/metrics`).
    pub fn record_latency(&self, host: &HostName, check: CheckKind, took: Duration) {
        self.lock().latencies.insert((host.clone(), check), took);
    }

    /// How long each check's latest probe took.
    pub fn latencies(&self) -> Vec<(HostName, CheckKind, Duration)> {
        self.lock()
            .latencies
            .iter()
            .map(|((h, c), d)| (h.clone(), *c, *d))
            .collect()
    }

    /// How many checks have a verdict.
    pub fn len(&self) -> usize {
        self.lock().verdicts.len()
    }

    /// Whether no check has a verdict yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves at the next change of a verdict or of the network check.
    pub fn changed(&self) -> impl Future<Output = ()> + '_ {
        self.changed.notified()
    }
}

/// Runs every check of every host until `stop` is cancelled.
pub async fn run<P: Prober>(
    prober: Arc<P>,
    table: Table,
    hosts: Vec<HostName>,
    schedules: BTreeMap<CheckKind, Schedule>,
    clock: crate::Clock,
    stop: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for host in hosts {
        for (check, schedule) in &schedules {
            let (prober, table, host, check, schedule, clock, stop) = (
                prober.clone(),
                table.clone(),
                host.clone(),
                *check,
                *schedule,
                clock,
                stop.clone(),
            );
            tasks.spawn(async move {
                loop {
                    let limit = schedule.timeout + Duration::from_secs(1);
                    let started = tokio::time::Instant::now();
                    let probe = tokio::select! {
                        _ = stop.cancelled() => return,
                        p = tokio::time::timeout(limit, prober.probe(&host, check)) => {
                            p.unwrap_or_else(|_| Probe::Error("ERROR: Timeout".into()))
                        }
                    };
                    table.record_latency(&host, check, started.elapsed());
                    table.observe(&host, check, probe, clock.now(), schedule.trap_period);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(schedule.check_period) => {}
                    }
                }
            });
        }
    }
    stop.cancelled().await;
    tasks.shutdown().await;
}

/// MMM's network check: every `interval`, the network is up if any of `ping_ips` answers.
/// Without `ping_ips` it is always up.
pub async fn run_network<F, Fut>(
    ping_ips: Vec<IpAddr>,
    interval: Duration,
    ping: F,
    table: Table,
    stop: CancellationToken,
) where
    F: Fn(IpAddr) -> Fut,
    Fut: Future<Output = bool>,
{
    if ping_ips.is_empty() {
        return;
    }
    loop {
        let mut up = false;
        for ip in &ping_ips {
            if ping(*ip).await {
                up = true;
                break;
            }
        }
        table.set_network(up);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAP: Duration = Duration::from_secs(2);

    fn db1() -> HostName {
        HostName::new("db1")
    }

    fn verdict(table: &Table) -> Option<(bool, String)> {
        table
            .report()
            .verdicts
            .into_iter()
            .next()
            .map(|o| (o.ok, o.message))
    }

    #[test]
    fn the_first_result_counts_then_the_trap_applies() {
        let t = Table::new("mon1");
        t.observe(
            &db1(),
            CheckKind::Mysql,
            Probe::Ok("OK".into()),
            Time(0),
            TRAP,
        );
        assert_eq!(verdict(&t), Some((true, "OK".into())));
        let err = || Probe::Error("ERROR: Connect error".into());
        t.observe(&db1(), CheckKind::Mysql, err(), Time(1000), TRAP);
        assert_eq!(verdict(&t).map(|v| v.0), Some(true), "trapped");
        t.observe(&db1(), CheckKind::Mysql, err(), Time(3000), TRAP);
        assert_eq!(verdict(&t).map(|v| v.0), Some(false), "after trap_period");
    }

    #[test]
    fn a_forced_failure_holds_until_a_probe_passes() {
        let t = Table::new("mon1");
        t.observe(
            &db1(),
            CheckKind::Mysql,
            Probe::Ok("OK".into()),
            Time(0),
            TRAP,
        );
        t.force_failed(
            &db1(),
            CheckKind::Mysql,
            "ERROR: mysqld died".into(),
            Time(10),
        );
        assert_eq!(verdict(&t), Some((false, "ERROR: mysqld died".into())));
        t.observe(
            &db1(),
            CheckKind::Mysql,
            Probe::Error("ERROR: Connect error".into()),
            Time(20),
            TRAP,
        );
        assert_eq!(verdict(&t).map(|v| v.0), Some(false));
        t.observe(
            &db1(),
            CheckKind::Mysql,
            Probe::Ok("OK".into()),
            Time(30),
            TRAP,
        );
        t.observe(
            &db1(),
            CheckKind::RepThreads,
            Probe::Ok("OK".into()),
            Time(40),
            TRAP,
        );
        assert_eq!(check(&t, CheckKind::Mysql), Some((true, "OK".into())));
    }

    fn check(table: &Table, kind: CheckKind) -> Option<(bool, String)> {
        table
            .report()
            .verdicts
            .into_iter()
            .find(|o| o.check == kind)
            .map(|o| (o.ok, o.message))
    }

    /// A returning host's mysql check passes only together with a rep_threads result that
    /// reached it, so errant transactions are known before the rules could set it ONLINE.
    #[test]
    fn a_returning_host_is_reported_back_with_its_replication_looked_at() {
        let t = Table::new("mon1");
        let ok = || Probe::Ok("OK".into());
        t.observe(&db1(), CheckKind::Mysql, ok(), Time(0), TRAP);
        t.observe(&db1(), CheckKind::RepThreads, ok(), Time(0), TRAP);
        let down = || Probe::Error("ERROR: Connect error".into());
        t.observe(&db1(), CheckKind::Mysql, down(), Time(1000), TRAP);
        t.observe(&db1(), CheckKind::Mysql, down(), Time(4000), TRAP);
        assert_eq!(check(&t, CheckKind::Mysql).map(|v| v.0), Some(false));

        t.observe(&db1(), CheckKind::Mysql, ok(), Time(5000), TRAP);
        assert_eq!(
            check(&t, CheckKind::Mysql).map(|v| v.0),
            Some(false),
            "held until rep_threads reaches the host"
        );
        let unreachable = Probe::Unknown("UNKNOWN: Connect error".into());
        t.observe(&db1(), CheckKind::RepThreads, unreachable, Time(5100), TRAP);
        assert_eq!(
            check(&t, CheckKind::Mysql).map(|v| v.0),
            Some(false),
            "a probe that did not reach the host says nothing"
        );
        let errant =
            "ERROR: Errant transactions not on the active master db2: 5 (0-1-101..0-1-105)";
        t.observe(
            &db1(),
            CheckKind::RepThreads,
            Probe::Error(errant.into()),
            Time(5200),
            TRAP,
        );
        assert_eq!(check(&t, CheckKind::Mysql), Some((true, "OK".into())));
        assert_eq!(
            check(&t, CheckKind::RepThreads),
            Some((false, errant.to_string())),
            "errant transactions are reported at once, with the mysql check"
        );

        t.observe(&db1(), CheckKind::Mysql, ok(), Time(6000), TRAP);
        assert_eq!(
            check(&t, CheckKind::Mysql).map(|v| v.0),
            Some(true),
            "no hold when passing"
        );
    }

    #[test]
    fn a_cut_off_replica_says_so_in_its_table() {
        let t = Table::new("mon1");
        assert!(t.report().network_up);
        t.set_network(false);
        assert!(!t.report().network_up);
    }
}
