//! `mmm_sim`: runs the deterministic simulation.
//!
//! - `mmm_sim --seed N [--trace]` runs one seed (with `--trace`, every log line of the real
//!   code too, stamped with virtual time) and prints what happened;
//! - `mmm_sim --seeds COUNT [--from N]` or `--budget SECS` runs many, in parallel, and stops
//!   at the first violation with its seed and trace;
//! - `--replay-check` runs every seed twice and fails if the two traces differ.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use mmm_sim::run::{run, Plan, Stats, Violation};

#[derive(Parser, Debug)]
#[command(
    name = "mmm_sim",
    about = "Deterministic simulation of mmm-raft's failover protocol"
)]
struct Args {
    /// Run this one seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many seeds (from --from).
    #[arg(long)]
    seeds: Option<u64>,
    /// The first seed of a batch.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Run seeds until this many seconds have passed (instead of --seeds).
    #[arg(long)]
    budget: Option<u64>,
    /// Parallel runs (default: the number of CPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds of faults per run (virtual).
    #[arg(long, default_value_t = 60)]
    fault_window: u64,
    /// With --seed: print the real code's log lines too.
    #[arg(long)]
    trace: bool,
    /// Run every seed twice and compare the traces.
    #[arg(long)]
    replay_check: bool,
    /// Let faults that take database hosts away overlap (two at once: outside the promise).
    #[arg(long)]
    overlap_db_faults: bool,
    /// Do not stop at the first violation: list every failing seed with what failed.
    #[arg(long)]
    keep_going: bool,
}

fn plan(args: &Args, seed: u64) -> Plan {
    Plan {
        fault_window: Duration::from_secs(args.fault_window),
        overlap_db: args.overlap_db_faults,
        ..Plan::new(seed)
    }
}

fn report_violation(seed: u64, v: &Violation, args: &Args) {
    eprintln!("{}", v.trace);
    eprintln!(
        "VIOLATION (seed {seed}, at {}.{:03} s): {}",
        v.at_ms / 1000,
        v.at_ms % 1000,
        v.what
    );
    eprintln!(
        "replay: mmm_sim --seed {seed} --fault-window {} --trace",
        args.fault_window
    );
}

fn one(args: &Args, seed: u64) -> ExitCode {
    if args.trace {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .with_timer(mmm_sim::run::VirtualTime)
            .with_ansi(false)
            .with_writer(std::io::stdout)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        return print_one(args, seed);
    }
    print_one(args, seed)
}

fn print_one(args: &Args, seed: u64) -> ExitCode {
    let started = Instant::now();
    match run(&plan(args, seed)) {
        Ok(stats) => {
            println!("{}", stats.trace);
            println!(
                "seed {seed}: clean; {} s simulated in {:.2} s; {} writes acknowledged, {} failed; final epoch {}; faults: {:?}",
                stats.simulated.as_secs(),
                started.elapsed().as_secs_f64(),
                stats.acked,
                stats.failed,
                stats.epochs,
                stats.faults
            );
            ExitCode::SUCCESS
        }
        Err(v) => {
            report_violation(seed, &v, args);
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Totals {
    runs: u64,
    simulated: Duration,
    faults: std::collections::BTreeMap<&'static str, u64>,
    acked: u64,
    epochs: u64,
    violations: u64,
    interventions: u64,
}

fn many(args: &Args) -> ExitCode {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let next = AtomicU64::new(args.from);
    let end = args.seeds.map(|n| args.from + n);
    let deadline = args.budget.map(|s| Instant::now() + Duration::from_secs(s));
    let stop = AtomicBool::new(false);
    let totals = Mutex::new(Totals::default());
    let failed: Mutex<Option<(u64, Violation)>> = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                    return;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if end.is_some_and(|e| seed >= e) {
                    return;
                }
                let result = run(&plan(args, seed));
                let result = match (result, args.replay_check) {
                    (Ok(a), true) => match run(&plan(args, seed)) {
                        Ok(b) if a.trace == b.trace => Ok(a),
                        Ok(b) => Err(Violation {
                            at_ms: 0,
                            what: format!("not deterministic: the replay's trace differs\n--- first run\n{}\n--- replay\n{}", a.trace, b.trace),
                            trace: String::new(),
                        }),
                        Err(v) => Err(Violation {
                            what: format!("not deterministic: the first run was clean, the replay failed: {}", v.what),
                            ..v
                        }),
                    },
                    (r, _) => r,
                };
                match result {
                    Ok(stats) => add(&totals, &stats),
                    Err(v) if args.keep_going => {
                        let first = v.what.lines().next().unwrap_or_default().to_string();
                        println!("seed {seed}: {first}");
                        totals.lock().unwrap_or_else(|p| p.into_inner()).violations += 1;
                    }
                    Err(v) => {
                        stop.store(true, Ordering::Relaxed);
                        let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                        if f.as_ref().is_none_or(|(s, _)| seed < *s) {
                            *f = Some((seed, v));
                        }
                        return;
                    }
                }
            });
        }
    });
    let wall = started.elapsed();
    let t = totals.lock().unwrap_or_else(|p| p.into_inner());
    let minutes = wall.as_secs_f64() / 60.0;
    println!(
        "{} clean runs in {:.1} s ({jobs} jobs): {:.1} seeds per minute, {:.0} simulated seconds per wall second; {} s simulated, {} writes acknowledged, {} writer changes",
        t.runs,
        wall.as_secs_f64(),
        t.runs as f64 / minutes.max(1e-9),
        t.simulated.as_secs_f64() / wall.as_secs_f64().max(1e-9),
        t.simulated.as_secs(),
        t.acked,
        t.epochs
    );
    println!("fault mix: {:?}", t.faults);
    println!(
        "operator interventions (move_role or set_online when no writer works 15 s after healing): {}",
        t.interventions
    );
    if t.violations > 0 {
        println!("{} seeds failed", t.violations);
        return ExitCode::FAILURE;
    }
    let _ = std::io::stdout().flush();
    if let Some((seed, v)) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        report_violation(seed, &v, args);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn add(totals: &Mutex<Totals>, stats: &Stats) {
    let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
    t.runs += 1;
    t.simulated += stats.simulated;
    t.acked += stats.acked;
    t.epochs += stats.epochs;
    t.interventions += stats.interventions;
    for (k, n) in &stats.faults {
        *t.faults.entry(k).or_default() += u64::from(*n);
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.seed {
        Some(seed) => one(&args, seed),
        None if args.seeds.is_some() || args.budget.is_some() => many(&args),
        None => {
            eprintln!("mmm_sim: give --seed N, --seeds COUNT or --budget SECS");
            ExitCode::from(2)
        }
    }
}
