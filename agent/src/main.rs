//! `mmm_agentd [@CLUSTER] [--config FILE] [--check-config]`: the agent on one database host.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Parser;
use mmm_agent::agent::Agent;
use mmm_agent::monitors::HttpMonitors;
use mmm_agent::pidfile::PidState;
use mmm_agent::settings::{self, AgentConfig};
use mmm_agent::store::Store;
use mmm_agent::vip::NetlinkVips;
use mmm_config::{Config, Program};
use mmm_transport::{Limits, SecretKey, Transport, Want};

/// The mmm-raft agent (MMM 2.2.1's mmm_agentd): VIPs, read_only and replication on this host,
/// the writer role only under a lease from the monitor group.
#[derive(Parser, Debug)]
#[command(name = "mmm_agentd", version)]
struct Args {
    /// `@NAME` selects cluster NAME: mmm_agent_NAME.conf instead of mmm_agent.conf.
    cluster: Option<String>,
    /// The configuration file (default: mmm_agent[_NAME].conf in /etc, /etc/mmm, /etc/mysql-mmm).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print what the configuration means and exit: 0 if it is valid, 2 with the errors.
    #[arg(long)]
    check_config: bool,
}

/// How often the host is re-checked against what it was told.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// How often the local server is pinged.
const WATCH_EVERY: Duration = Duration::from_millis(100);

fn load(args: &Args) -> Result<(Config, AgentConfig, Transport), ExitCode> {
    let fail = |e: anyhow::Error| {
        eprintln!("mmm_agentd: {e:#}");
        ExitCode::from(2)
    };
    let (path, _cluster) = mmm_config::daemon_config(
        Program::Agent,
        args.config.as_deref(),
        args.cluster.as_deref(),
    )
    .map_err(|e| fail(e.into()))?;
    let config = match mmm_config::load(&path, Program::Agent) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Err(ExitCode::from(2));
        }
    };
    let agent =
        settings::from_config(&config).map_err(|e| fail(anyhow!("{}: {e}", path.display())))?;
    let transport = Transport::load(&config.socket, &[(SecretKey::Agent, Want::Required)])
        .map_err(|e| fail(anyhow!("{}: {e}", path.display())))?;
    Ok((config, agent, transport))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (config, agent, transport) = match load(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.check_config {
        print!("{}", mmm_config::summary(&config, Program::Agent));
        return ExitCode::SUCCESS;
    }
    mmm_agent::logging::init("info");
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mmm_agentd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(agent, transport)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("mmm_agentd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: AgentConfig, transport: Transport) -> anyhow::Result<()> {
    let vips = NetlinkVips::new(&cfg.interface)
        .await
        .with_context(|| format!("cluster_interface '{}'", cfg.interface))?;
    let mut options = mmm_agent::mysql::ServerOptions::tcp(
        cfg.mysql_addr,
        cfg.mysql_user.clone(),
        cfg.mysql_password.clone(),
    );
    options.catchup_timeout = cfg.settings.catchup_timeout;
    options.pidfile = Some(cfg.mysql_pidfile.clone());
    let mysql = mmm_agent::mysql::Server::new(options);
    match mysql.pidfile_state() {
        Some(PidState::Alive(pid)) => {
            tracing::info!(pidfile = %cfg.mysql_pidfile.display(), pid, "watching the local mysqld's process")
        }
        Some(PidState::Unknown(why) | PidState::Gone(why)) => tracing::info!(
            reason = %why,
            "mysql_pidfile names no live process yet; the local mysqld is watched by ping until it does"
        ),
        None => {}
    }
    let monitors = HttpMonitors::new(&transport, cfg.monitors.clone(), Duration::from_millis(500))
        .map_err(|e| anyhow!(e))?;
    let store = Store::new(&cfg.state_dir);
    let agent = Arc::new(
        Agent::new(cfg.settings.clone(), mysql, vips, monitors, store)
            .context("loading the agent's state")?,
    );
    let fixed = agent.start().await;
    tracing::info!(host = %agent.host(), epoch = agent.epoch().await, fixed = fixed.len(), listen = %cfg.listen, "agent started");
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let tasks = [
        tokio::spawn({
            let a = agent.clone();
            async move { a.run_lease().await }
        }),
        tokio::spawn({
            let a = agent.clone();
            async move { a.run_watchdog().await }
        }),
        tokio::spawn({
            let a = agent.clone();
            async move { a.run_reconcile(RECONCILE_EVERY).await }
        }),
        tokio::spawn({
            let a = agent.clone();
            async move { a.run_mysql_watch(WATCH_EVERY).await }
        }),
        tokio::spawn({
            let a = agent.clone();
            async move { a.run_fence_retry().await }
        }),
    ];
    let cloner = Arc::new(mmm_agent::clone::Cloner::new(
        cfg.copy.clone(),
        cfg.settings.sources.clone(),
        transport.clone(),
    ));
    let app = mmm_agent::server::router(agent.clone())
        .merge(mmm_agent::clone::router(agent.clone(), cloner));
    // A status change may wait for the relay log (catchup_timeout) before it answers.
    let limits = Limits {
        request_timeout: cfg.settings.catchup_timeout * 3 + Duration::from_secs(60),
        ..Limits::default()
    };
    mmm_transport::serve(
        transport,
        listener,
        app,
        mmm_agent::server::policy,
        limits,
        mmm_agent::signals::until_stop("mmm_agentd"),
    )
    .await
    .context("serving the agent API")?;
    for t in tasks {
        t.abort();
    }
    agent.shutdown().await;
    tracing::info!(host = %agent.host(), "agent stopped");
    Ok(())
}
