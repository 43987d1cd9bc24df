//! The nemesis: fault episodes drawn from the seed, each started at a time and undone after a
//! while, overlapping freely, so combinations (a partition during a leader crash, a slow disk
//! while the writer's mysqld dies) come up on their own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use crate::cluster::{Cluster, CLIENT, DBS, MONS};
use crate::net::Links;
use crate::run::Trace;

/// One kind of fault, with its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// mysqld on a host is killed (SIGKILL), restarted when undone.
    CrashMysqld(String),
    /// A monitor replica is killed, restarted with its data directory when undone.
    CrashMonitor(String),
    /// Whichever replica leads at that moment is killed.
    CrashLeader,
    /// An agent is killed, restarted when undone.
    CrashAgent(String),
    /// A host is cut from every other host, both ways.
    Isolate(String),
    /// Messages from one host to another are dropped (one way).
    OneWay(String, String),
    /// The monitor replicas are split: one alone with some database hosts, the others with
    /// the rest.
    Split(String, Vec<String>),
    /// A monitor replica is cut from the other replicas only: it still reaches every agent
    /// (a deposed leader that has not noticed keeps driving them).
    MonitorCut(String),
    /// Every message has this chance in a million to be lost.
    Loss(u32),
    /// Messages take up to this long.
    Delay(Duration),
    /// A replica's disk writes take up to this long.
    SlowDisk(String, Duration),
    /// A replica restarts with its clocks running fast or slow (ppm, within `clock_drift`).
    Drift(String, i64),
    /// A replica's SQL thread applies each transaction this late.
    RelayLag(String, Duration),
    /// A process is paused (SIGSTOP: a monitor replica `m1`, an agent `db1/agent`) and goes on
    /// where it was when undone.
    Pause(String),
    /// Whichever replica leads at that moment is paused.
    PauseLeader,
}

impl Fault {
    /// Whether the fault takes a database host away: its mysqld, its agent, or its network.
    /// By default such faults never overlap (see [`Schedule::draw`]).
    pub fn hits_a_database_host(&self) -> bool {
        let db = |h: &str| DBS.contains(&h);
        match self {
            Fault::CrashMysqld(_) | Fault::CrashAgent(_) => true,
            Fault::Pause(p) => p.ends_with("/agent"),
            Fault::Isolate(h) => db(h),
            Fault::OneWay(a, b) => db(a) || db(b),
            Fault::Split(_, dbs) => !dbs.is_empty(),
            _ => false,
        }
    }

    /// The kind, for the fault mix.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::CrashMysqld(_) => "mysqld crash",
            Fault::CrashMonitor(_) => "monitor crash",
            Fault::CrashLeader => "leader crash",
            Fault::CrashAgent(_) => "agent crash",
            Fault::Isolate(_) => "host isolated",
            Fault::OneWay(..) => "one-way cut",
            Fault::Split(..) => "monitor split",
            Fault::MonitorCut(_) => "monitor cut from monitors",
            Fault::Loss(_) => "message loss",
            Fault::Delay(_) => "message delay",
            Fault::SlowDisk(..) => "slow disk",
            Fault::Drift(..) => "clock drift",
            Fault::RelayLag(..) => "relay lag",
            Fault::Pause(p) if p.ends_with("/agent") => "agent paused",
            Fault::Pause(_) => "monitor paused",
            Fault::PauseLeader => "leader paused",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::CrashMysqld(h) => write!(f, "kill mysqld on {h}"),
            Fault::CrashMonitor(m) => write!(f, "kill monitor {m}"),
            Fault::CrashLeader => write!(f, "kill the leader"),
            Fault::CrashAgent(h) => write!(f, "kill the agent on {h}"),
            Fault::Isolate(h) => write!(f, "isolate {h}"),
            Fault::OneWay(a, b) => write!(f, "drop messages {a} -> {b}"),
            Fault::Split(m, dbs) => write!(f, "split {m} with {dbs:?} from the rest"),
            Fault::MonitorCut(m) => write!(f, "cut {m} from the other monitors only"),
            Fault::Loss(ppm) => write!(f, "lose {:.1}% of messages", *ppm as f64 / 10_000.0),
            Fault::Delay(d) => write!(f, "delay messages up to {} ms", d.as_millis()),
            Fault::SlowDisk(m, d) => {
                write!(f, "slow disk on {m}: writes up to {} ms", d.as_millis())
            }
            Fault::Drift(m, ppm) => write!(f, "restart {m} with its clock {ppm:+} ppm"),
            Fault::RelayLag(h, d) => write!(f, "relay log of {h} {} ms late", d.as_millis()),
            Fault::Pause(p) => write!(f, "pause {p}"),
            Fault::PauseLeader => write!(f, "pause the leader"),
        }
    }
}

/// One step of a schedule.
#[derive(Debug, Clone)]
pub struct Step {
    /// When, from the end of the warm-up.
    pub at: Duration,
    /// Which episode.
    pub episode: u64,
    /// Start (false) or undo (true).
    pub undo: bool,
    /// The fault.
    pub fault: Fault,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.undo {
            write!(f, "end #{}: {}", self.episode, self.fault)
        } else {
            write!(f, "#{}: {}", self.episode, self.fault)
        }
    }
}

/// The steps of a run, in time order.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// The steps.
    pub steps: Vec<Step>,
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.gen_range(0..from.len())]
}

fn draw_fault(rng: &mut StdRng) -> Fault {
    let any_host: Vec<&str> = DBS.iter().chain(MONS.iter()).copied().collect();
    match rng.gen_range(0..110) {
        0..=17 => Fault::CrashMysqld(pick(rng, &["db1", "db1", "db2", "db3", "db4"]).into()),
        18..=27 => Fault::CrashMonitor(pick(rng, &MONS).into()),
        28..=37 => Fault::CrashLeader,
        38..=45 => Fault::CrashAgent(pick(rng, &DBS).into()),
        46..=60 => Fault::Isolate(pick(rng, &any_host).into()),
        61..=67 => {
            let a = pick(rng, &any_host);
            let b = loop {
                let b = pick(rng, &any_host);
                if b != a {
                    break b;
                }
            };
            Fault::OneWay(a.into(), b.into())
        }
        68..=74 => {
            let m = pick(rng, &MONS);
            let dbs = DBS
                .iter()
                .filter(|_| rng.gen_bool(0.5))
                .map(|d| d.to_string())
                .collect();
            Fault::Split(m.into(), dbs)
        }
        75..=77 => Fault::MonitorCut(pick(rng, &MONS).into()),
        78..=80 => Fault::Loss(rng.gen_range(10_000..200_000)),
        81..=85 => Fault::Delay(Duration::from_millis(rng.gen_range(5..400))),
        86..=90 => Fault::SlowDisk(
            pick(rng, &MONS).into(),
            Duration::from_millis(rng.gen_range(5..500)),
        ),
        91..=94 => Fault::Drift(pick(rng, &MONS).into(), rng.gen_range(-5_000..=5_000)),
        95..=99 => Fault::RelayLag(
            pick(rng, &["db2", "db3", "db4"]).into(),
            Duration::from_millis(rng.gen_range(100..3_000)),
        ),
        100..=102 => Fault::PauseLeader,
        103..=104 => Fault::Pause(pick(rng, &MONS).into()),
        _ => Fault::Pause(crate::cluster::agent_proc(pick(
            rng,
            &["db1", "db1", "db2", "db3", "db4"],
        ))),
    }
}

impl Schedule {
    /// Episodes over `window`: each starts 0.5 to 8 s after the previous one and lasts 0.2 to
    /// 15 s (ending by the end of the window). Unless `overlap_db` is set, a fault that takes
    /// a database host away starts only once the previous such fault has ended: the promise
    /// is about one failure of a database host at a time (semi-sync with one acknowledgement
    /// cannot keep a write whose only other copy is cut off at the same time, and an agent
    /// that is dead while its host is cut off cannot fence it; see ARCHITECTURE.md). Monitor,
    /// network-wide and disk faults overlap freely, and with everything else.
    pub fn draw(rng: &mut StdRng, window: Duration, overlap_db: bool) -> Schedule {
        let mut steps = Vec::new();
        let mut t = Duration::from_millis(rng.gen_range(0..3_000));
        let mut episode = 0;
        let mut db_busy_until = Duration::ZERO;
        while t < window {
            episode += 1;
            let mut fault = draw_fault(rng);
            while !overlap_db && t < db_busy_until && fault.hits_a_database_host() {
                fault = draw_fault(rng);
            }
            if let (false, Fault::Split(_, dbs)) = (overlap_db, &mut fault) {
                // Cutting two database hosts off together is two failures at once.
                dbs.truncate(1);
            }
            let lasts = Duration::from_millis(rng.gen_range(200..15_000));
            let end = (t + lasts).min(window);
            if fault.hits_a_database_host() {
                db_busy_until = db_busy_until.max(end);
            }
            steps.push(Step {
                at: t,
                episode,
                undo: false,
                fault: fault.clone(),
            });
            steps.push(Step {
                at: end,
                episode,
                undo: true,
                fault,
            });
            t += Duration::from_millis(rng.gen_range(500..8_000));
        }
        steps.sort_by_key(|s| (s.at, s.episode, s.undo));
        Schedule { steps }
    }
}

/// What the nemesis has broken and not yet repaired.
#[derive(Default)]
pub struct Nemesis {
    cuts: BTreeMap<u64, Vec<(String, String)>>,
    down: BTreeMap<String, u32>,
    killed_leader: BTreeMap<u64, String>,
    paused: BTreeMap<String, u32>,
    paused_leader: BTreeMap<u64, String>,
    loss: BTreeMap<u64, u32>,
    delay: BTreeMap<u64, Duration>,
}

fn both_ways(a: &str, b: &str) -> [(String, String); 2] {
    [(a.into(), b.into()), (b.into(), a.into())]
}

impl Nemesis {
    fn apply_cuts(&self, cluster: &Cluster) {
        let all: BTreeSet<&(String, String)> = self.cuts.values().flatten().collect();
        cluster.net.heal();
        for (a, b) in all {
            cluster.net.cut(a, b);
        }
    }

    fn apply_links(&self, cluster: &Cluster) {
        let base = Links::default();
        cluster.net.set_links(Links {
            delay_min: base.delay_min,
            delay_max: self
                .delay
                .values()
                .copied()
                .max()
                .unwrap_or(base.delay_max)
                .max(base.delay_max),
            loss_ppm: self.loss.values().copied().max().unwrap_or(0),
        });
    }

    /// Takes `what` down (counted: overlapping episodes restart it only when the last ends).
    async fn down(&mut self, cluster: &mut Cluster, what: &str, trace: &Trace) {
        let n = self.down.entry(what.to_string()).or_default();
        *n += 1;
        if *n > 1 {
            return;
        }
        match what.split_once(':') {
            Some(("mysqld", h)) => cluster.world.crash_mysqld(h),
            Some(("monitor", m)) => cluster.crash_monitor(m),
            Some(("agent", h)) => cluster.crash_agent(h),
            _ => {}
        }
        trace.log(format!("  down: {what}"));
    }

    async fn up(&mut self, cluster: &mut Cluster, what: &str, trace: &Trace) {
        let Some(n) = self.down.get_mut(what) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n > 0 {
            return;
        }
        self.down.remove(what);
        let result = match what.split_once(':') {
            Some(("mysqld", h)) => {
                cluster.world.start_mysqld(h);
                Ok(())
            }
            Some(("monitor", m)) => cluster.start_monitor(m).await,
            Some(("agent", h)) => cluster.start_agent(h).await,
            _ => Ok(()),
        };
        match result {
            Ok(()) => trace.log(format!("  up: {what}")),
            Err(e) => trace.log(format!("  cannot start {what}: {e:#}")),
        }
    }

    /// Pauses or resumes process `what` (counted like [`Nemesis::down`]).
    fn pause(&mut self, cluster: &Cluster, what: &str, paused: bool, trace: &Trace) {
        let n = self.paused.entry(what.to_string()).or_default();
        if paused {
            *n += 1;
            if *n == 1 {
                cluster.net.set_paused(what, true);
                trace.log(format!("  paused: {what}"));
            }
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.paused.remove(what);
                cluster.net.set_paused(what, false);
                trace.log(format!("  resumed: {what}"));
            }
        }
    }

    /// Starts or undoes one step.
    pub async fn step(&mut self, cluster: &mut Cluster, step: &Step, trace: &Trace) {
        let id = step.episode;
        match (&step.fault, step.undo) {
            (Fault::CrashMysqld(h), undo) => {
                let what = format!("mysqld:{h}");
                if undo {
                    self.up(cluster, &what, trace).await
                } else {
                    self.down(cluster, &what, trace).await
                }
            }
            (Fault::CrashMonitor(m), undo) => {
                let what = format!("monitor:{m}");
                if undo {
                    self.up(cluster, &what, trace).await
                } else {
                    self.down(cluster, &what, trace).await
                }
            }
            (Fault::CrashLeader, false) => {
                if let Some(m) = cluster.leader() {
                    self.killed_leader.insert(id, m.clone());
                    self.down(cluster, &format!("monitor:{m}"), trace).await;
                } else {
                    trace.log("  no leader to kill");
                }
            }
            (Fault::Pause(p), undo) => self.pause(cluster, p, !undo, trace),
            (Fault::PauseLeader, false) => match cluster.leader() {
                Some(m) => {
                    self.paused_leader.insert(id, m.clone());
                    self.pause(cluster, &m, true, trace);
                }
                None => trace.log("  no leader to pause"),
            },
            (Fault::PauseLeader, true) => {
                if let Some(m) = self.paused_leader.remove(&id) {
                    self.pause(cluster, &m, false, trace);
                }
            }
            (Fault::CrashLeader, true) => {
                if let Some(m) = self.killed_leader.remove(&id) {
                    self.up(cluster, &format!("monitor:{m}"), trace).await;
                }
            }
            (Fault::CrashAgent(h), undo) => {
                let what = format!("agent:{h}");
                if undo {
                    self.up(cluster, &what, trace).await
                } else {
                    self.down(cluster, &what, trace).await
                }
            }
            (Fault::Isolate(h), false) => {
                let others = DBS.iter().chain(MONS.iter()).chain([CLIENT].iter());
                let cuts = others
                    .filter(|o| **o != h.as_str())
                    .flat_map(|o| both_ways(h, o))
                    .collect();
                self.cuts.insert(id, cuts);
                self.apply_cuts(cluster);
            }
            (Fault::OneWay(a, b), false) => {
                self.cuts.insert(id, vec![(a.clone(), b.clone())]);
                self.apply_cuts(cluster);
            }
            (Fault::Split(m, dbs), false) => {
                let side: BTreeSet<&str> = std::iter::once(m.as_str())
                    .chain(dbs.iter().map(|d| d.as_str()))
                    .collect();
                let everyone = DBS.iter().chain(MONS.iter()).chain([CLIENT].iter());
                let other: Vec<&str> = everyone.filter(|h| !side.contains(**h)).copied().collect();
                let cuts = side
                    .iter()
                    .flat_map(|a| other.iter().flat_map(move |b| both_ways(a, b)))
                    .collect();
                self.cuts.insert(id, cuts);
                self.apply_cuts(cluster);
            }
            (Fault::MonitorCut(m), false) => {
                let cuts = MONS
                    .iter()
                    .filter(|o| **o != m.as_str())
                    .flat_map(|o| both_ways(m, o))
                    .collect();
                self.cuts.insert(id, cuts);
                self.apply_cuts(cluster);
            }
            (
                Fault::Isolate(_) | Fault::OneWay(..) | Fault::Split(..) | Fault::MonitorCut(_),
                true,
            ) => {
                self.cuts.remove(&id);
                self.apply_cuts(cluster);
            }
            (Fault::Loss(ppm), undo) => {
                if undo {
                    self.loss.remove(&id);
                } else {
                    self.loss.insert(id, *ppm);
                }
                self.apply_links(cluster);
            }
            (Fault::Delay(d), undo) => {
                if undo {
                    self.delay.remove(&id);
                } else {
                    self.delay.insert(id, *d);
                }
                self.apply_links(cluster);
            }
            (Fault::SlowDisk(m, d), undo) => {
                if let Some(dir) = cluster.dir(m) {
                    dir.set_slow(if undo { Duration::ZERO } else { *d });
                }
            }
            (Fault::Drift(m, ppm), undo) => {
                let what = format!("monitor:{m}");
                self.down(cluster, &what, trace).await;
                cluster.set_drift(m, if undo { 0 } else { *ppm });
                self.up(cluster, &what, trace).await;
            }
            (Fault::RelayLag(h, d), undo) => {
                let lag = if undo {
                    crate::db::Params::default().apply_delay_max
                } else {
                    *d
                };
                cluster.world.set_apply_delay(h, lag);
            }
        }
    }

    /// Ends every fault: links healed, every process and server up, disks fast.
    pub async fn heal_all(&mut self, cluster: &mut Cluster, trace: &Trace) {
        self.cuts.clear();
        self.loss.clear();
        self.delay.clear();
        self.apply_cuts(cluster);
        self.apply_links(cluster);
        for m in MONS {
            if let Some(dir) = cluster.dir(m) {
                dir.set_slow(Duration::ZERO);
            }
        }
        for h in ["db2", "db3", "db4"] {
            cluster
                .world
                .set_apply_delay(h, crate::db::Params::default().apply_delay_max);
        }
        let paused: Vec<String> = self.paused.keys().cloned().collect();
        for what in paused {
            self.paused.insert(what.clone(), 1);
            self.pause(cluster, &what, false, trace);
        }
        self.paused_leader.clear();
        let down: Vec<String> = self.down.keys().cloned().collect();
        for what in down {
            self.down.insert(what.clone(), 1);
            self.up(cluster, &what, trace).await;
        }
    }
}
