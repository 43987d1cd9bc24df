//! `mmm-jepsen`: runs the chaos suite against the running compose cluster (`./demo.sh`).
//! Exits 0 when every check passed, 1 when one failed, 2 when the run could not be made.

use clap::Parser;
use mmm_jepsen::run::{run, Options, Schedule};
use mmm_jepsen::workload::Mix;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Chaos suite for the mmm-raft compose cluster: workload, faults, checker")]
struct Args {
    /// `ci`: the faults the cluster heals from on its own (CI); `short`: every kind of fault
    /// once (a few minutes); `long`: random faults.
    #[arg(long, default_value = "short", value_parser = ["ci", "short", "long"])]
    suite: String,
    /// Minutes of random faults for the long suite.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Long suite: only faults that do not move the writer unplanned (those of `ci`).
    #[arg(long)]
    healable: bool,
    /// Seed of the long suite's schedule (default: the current time, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the history files and the summary go.
    #[arg(long, default_value = "target/jepsen")]
    out: PathBuf,
    /// The compose project.
    #[arg(long, default_value = "mmm-raft")]
    project: String,
    /// Plays only the short suite's steps whose name contains this, e.g. `partition(writer)`.
    #[arg(long)]
    only: Option<String>,
    /// Seconds the cluster may take to be stable again after a fault is healed.
    #[arg(long, default_value_t = 90)]
    stable_limit: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let schedule = if args.suite == "long" {
        let seed = args
            .seed
            .unwrap_or_else(|| mmm_jepsen::history::now() % 1_000_000);
        println!("long suite: {} minutes, seed {seed}", args.minutes);
        Schedule::Random {
            seed,
            duration: Duration::from_secs(args.minutes * 60),
            healable: args.healable,
        }
    } else if args.suite == "ci" {
        Schedule::Ci
    } else {
        Schedule::Short { only: args.only }
    };
    let opts = Options {
        project: args.project,
        schedule,
        out: args.out,
        mix: Mix::default(),
        stable_limit: Duration::from_secs(args.stable_limit),
    };
    match run(opts).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("mmm-jepsen: {e:#}");
            std::process::exit(2);
        }
    }
}
