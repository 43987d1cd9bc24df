//! One simulated run: build the cluster from a seed, let it elect and start, write through the
//! writer VIP while faults drawn from the seed hit it, then heal everything and check that it
//! converges and lost nothing. The invariants are checked every few milliseconds of virtual
//! time throughout; the first violation ends the run with the trace of what happened.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;

use crate::cluster::{Cluster, Tuning, DBS, MONS, WRITER_VIP};
use crate::db::{Params, World};
use crate::faults::{Nemesis, Schedule};
use crate::net::Net;

/// What a run is made of.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed: every random choice of the run follows from it.
    pub seed: u64,
    /// How long faults are injected (virtual time).
    pub fault_window: Duration,
    /// How long the cluster has to converge after the last fault is healed.
    pub converge_within: Duration,
    /// Let faults that take database hosts away overlap (outside what is promised).
    pub overlap_db: bool,
}

impl Plan {
    /// The default plan for `seed`.
    pub fn new(seed: u64) -> Plan {
        Plan {
            seed,
            fault_window: Duration::from_secs(60),
            converge_within: Duration::from_secs(60),
            overlap_db: false,
        }
    }
}

/// What a clean run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Virtual time simulated.
    pub simulated: Duration,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u32>,
    /// Writes acknowledged.
    pub acked: u64,
    /// Writes that failed or whose outcome is unknown.
    pub failed: u64,
    /// The final writer epoch.
    pub epochs: u64,
    /// Times the simulated operator had to move the writer role by hand.
    pub interventions: u64,
    /// The run's trace.
    pub trace: String,
}

/// Log timestamps in virtual time since the run started.
pub struct VirtualTime;

impl tracing_subscriber::fmt::time::FormatTime for VirtualTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let ms = crate::cluster::virtual_ms();
        write!(w, "{:>7}.{:03}", ms / 1000, ms % 1000)
    }
}

/// A broken invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    /// When (virtual milliseconds since the start).
    pub at_ms: u64,
    /// Which invariant and how.
    pub what: String,
    /// The run's events up to then.
    pub trace: String,
}

/// The run's own event log, with virtual timestamps.
#[derive(Clone, Default)]
pub struct Trace {
    lines: Arc<Mutex<Vec<String>>>,
    t0: Arc<Mutex<Option<Instant>>>,
}

impl Trace {
    fn start(&self) {
        *self.t0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Milliseconds since the run started.
    pub fn ms(&self) -> u64 {
        self.t0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| t.elapsed().as_millis() as u64)
            .unwrap_or(0)
    }

    /// Records one event.
    pub fn log(&self, line: impl AsRef<str>) {
        let ms = self.ms();
        let line = format!("{:>7}.{:03} {}", ms / 1000, ms % 1000, line.as_ref());
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Everything recorded.
    pub fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for l in lines.iter() {
            let _ = writeln!(out, "{l}");
        }
        out
    }
}

/// Runs `plan` on a fresh single-threaded runtime with paused time, seeded from the plan.
pub fn run(plan: &Plan) -> Result<Stats, Violation> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true);
    builder.rng_seed(tokio::runtime::RngSeed::from_bytes(
        &plan.seed.to_le_bytes(),
    ));
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            return Err(Violation {
                at_ms: 0,
                what: format!("cannot build the runtime: {e}"),
                trace: String::new(),
            })
        }
    };
    let trace = Trace::default();
    let result = runtime.block_on(run_in(plan, trace.clone()));
    // Tasks still running (Raft cores, agent loops) are dropped with the runtime.
    runtime.shutdown_background();
    result.map_err(|(at_ms, what)| Violation {
        at_ms,
        what,
        trace: trace.text(),
    })
}

type Failure = (u64, String);

async fn run_in(plan: &Plan, trace: Trace) -> Result<Stats, Failure> {
    trace.start();
    let fail = |what: String| (trace.ms(), what);
    let net = Net::new(plan.seed);
    let reach = {
        let net = net.clone();
        Arc::new(move |a: &str, b: &str| net.reach(a, b))
    };
    let hosts: Vec<(&str, u32)> = DBS
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, i as u32 + 1))
        .collect();
    let world = World::new(plan.seed ^ 0xdb, &hosts, Params::default(), reach);
    // The seed document's topology: db1 and db2 replicate from each other, db3 and db4 from db1.
    for (replica, master) in [
        ("db1", "db2"),
        ("db2", "db1"),
        ("db3", "db1"),
        ("db4", "db1"),
    ] {
        world.configure_replica(replica, master);
    }
    world.spawn_replication();
    let tuning = Tuning::default();
    let mut cluster = Cluster::new(plan.seed, &tuning, world.clone(), net.clone())
        .map_err(|e| fail(format!("building the cluster: {e:#}")))?;
    for m in MONS {
        cluster
            .start_monitor(m)
            .await
            .map_err(|e| fail(format!("starting {m}: {e:#}")))?;
    }
    for db in DBS {
        cluster
            .start_agent(db)
            .await
            .map_err(|e| fail(format!("starting the agent on {db}: {e:#}")))?;
    }
    let vip: IpAddr = WRITER_VIP
        .parse()
        .map_err(|e| fail(format!("writer VIP: {e}")))?;

    let history = crate::check::History::default();
    let workload = tokio::spawn(crate::check::write_loop(
        world.clone(),
        vip,
        history.clone(),
        trace.clone(),
    ));
    let checker =
        crate::check::Checker::new(world.clone(), cluster.registry.clone(), trace.clone());

    // Let the group form and the writer start before the first fault.
    let warmup = Instant::now() + Duration::from_secs(15);
    checker.watch_until(warmup).await.map_err(fail)?;

    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0xfa017);
    let schedule = Schedule::draw(&mut rng, plan.fault_window, plan.overlap_db);
    let mut nemesis = Nemesis::default();
    let mut stats = Stats::default();
    for step in schedule.steps {
        checker.watch_until(warmup + step.at).await.map_err(fail)?;
        trace.log(format!("fault {step}"));
        if !step.undo {
            *stats.faults.entry(step.fault.kind()).or_default() += 1;
        }
        nemesis.step(&mut cluster, &step, &trace).await;
    }
    let end = warmup + plan.fault_window;
    checker.watch_until(end).await.map_err(fail)?;
    trace.log("healing everything; the client stops writing");
    workload.abort();
    nemesis.heal_all(&mut cluster, &trace).await;

    let deadline = Instant::now() + plan.converge_within;
    let converged = checker
        .converge(&cluster, &history, deadline)
        .await
        .map_err(fail)?;
    let (acked, failed) = history.counts();
    stats.acked = acked;
    stats.failed = failed;
    stats.epochs = converged.epoch;
    stats.interventions = checker.interventions();
    stats.simulated = Duration::from_millis(trace.ms());
    stats.trace = trace.text();
    Ok(stats)
}
