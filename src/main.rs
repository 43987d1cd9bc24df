//! `mmm_mond [@CLUSTER] [--config FILE] [--check-config]`: one replica of the monitor group.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mmm_config::{Config, Program};
use tokio_util::sync::CancellationToken;

/// One replica of the mmm-raft monitor group (MMM 2.2.1's mmm_mond).
#[derive(Parser, Debug)]
#[command(name = "mmm_mond", version)]
struct Args {
    /// `@NAME` selects cluster NAME: mmm_mon_NAME.conf instead of mmm_mon.conf.
    cluster: Option<String>,
    /// The configuration file (default: mmm_mon[_NAME].conf in /etc, /etc/mmm, /etc/mysql-mmm).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print what the configuration means and exit: 0 if it is valid, 2 with the errors.
    #[arg(long)]
    check_config: bool,
}

fn load(args: &Args) -> Result<(Config, Option<String>), ExitCode> {
    let fail = |e: anyhow::Error| {
        eprintln!("mmm_mond: {e:#}");
        ExitCode::from(2)
    };
    let (path, cluster) = mmm_config::daemon_config(
        Program::Monitor,
        args.config.as_deref(),
        args.cluster.as_deref(),
    )
    .map_err(|e| fail(e.into()))?;
    match mmm_config::load(&path, Program::Monitor) {
        Ok(c) => Ok((c, cluster)),
        Err(errors) => {
            eprintln!("{errors}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (config, cluster) = match load(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.check_config {
        print!("{}", mmm_config::summary(&config, Program::Monitor));
        // The secret and TLS files are part of what must be right for the daemon to start.
        let files = mmm_mond::group::Group::from_config(&config, cluster.as_deref())
            .map_err(|e| format!("{e:#}"))
            .and_then(|g| mmm_mond::transport_from_config(&config, &g).map_err(|e| e.to_string()));
        return match files {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mmm_mond: {e}");
                ExitCode::from(2)
            }
        };
    }
    mmm_agent::logging::init("info,openraft=warn");
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mmm_mond: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, cluster)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("mmm_mond: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, cluster: Option<String>) -> anyhow::Result<()> {
    let group = mmm_mond::group::Group::from_config(&config, cluster.as_deref())?;
    let topology = mmm_mond::topology::topology(&config)?;
    let monitor = config.monitor.as_ref().context("no <monitor> section")?;
    let transport = mmm_mond::transport_from_config(&config, &group)?;
    let cfg = mmm_mond::replica::ReplicaConfig {
        transport,
        group,
        topology,
        data_dir: monitor.data_dir.clone(),
        timing: mmm_mond::replica::Timing {
            heartbeat: monitor.raft_heartbeat,
            election_min: monitor.election_timeout_min,
            election_max: monitor.election_timeout_max,
            tick: std::time::Duration::from_secs(1),
            lease: monitor.lease,
            lease_renew: monitor.lease_renew_interval,
        },
        checking: mmm_mond::replica::Checking {
            schedules: mmm_mond::checks_from_config(&config),
            ping_ips: monitor.ping_ips.clone(),
            ping_interval: monitor.ping_interval,
        },
        prober: std::sync::Arc::new(mmm_mond::probe::LiveProber::from_config(&config)?),
        agents: mmm_mond::agents_from_config(&config)?,
        clock_drift: monitor.clock_drift,
    };
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        mmm_agent::signals::until_stop("mmm_mond").await;
        tracing::info!("shutting down");
        signals.cancel();
    });
    mmm_mond::replica::run(cfg, shutdown).await
}
