//! One monitor replica: its Raft node, its listener and its lifetime.
//!
//! Start: open the store (refusing another group's directory), create the Raft node, bind the
//! listener, initialize the group if this store is pristine (safe on every member at once, with
//! the same membership), then serve Raft RPCs and the API and run the leader loop.
//! Stop (the token is cancelled): stop accepting, let in-flight requests finish, stop the
//! leader loop, shut Raft down; sled has flushed every acknowledged write already.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mmm_core::{CheckKind, HostName, Topology};
use mmm_raft::typ::Raft;
use mmm_raft::{HttpNetwork, Store};
use mmm_transport::{Channel, Transport};
use tokio_util::sync::CancellationToken;

use crate::checker::{Schedule, Table};
use crate::group::Group;
use crate::probe::{LiveProber, Prober};
use crate::shared::Shared;

/// Raft timing, from `<monitor>`.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Leader heartbeat.
    pub heartbeat: Duration,
    /// Election timeout, lower bound.
    pub election_min: Duration,
    /// Election timeout, upper bound.
    pub election_max: Duration,
    /// How often the leader proposes a tick.
    pub tick: Duration,
    /// The writer's lease.
    pub lease: Duration,
    /// How often the writer's agent renews it.
    pub lease_renew: Duration,
}

/// The checks this replica runs.
#[derive(Debug, Clone)]
pub struct Checking {
    /// Each check's schedule (`<check NAME>`).
    pub schedules: BTreeMap<CheckKind, Schedule>,
    /// MMM's network check: the replica's checks count only while one of these answers.
    pub ping_ips: Vec<IpAddr>,
    /// How often the network check runs.
    pub ping_interval: Duration,
}

/// Everything a replica needs to run.
pub struct ReplicaConfig {
    /// Tokens and TLS for every channel.
    pub transport: mmm_transport::Transport,
    /// The group and this member.
    pub group: Group,
    /// The topology from this replica's configuration files.
    pub topology: Topology,
    /// The store directory.
    pub data_dir: std::path::PathBuf,
    /// Raft timing.
    pub timing: Timing,
    /// The checks.
    pub checking: Checking,
    /// The probes behind the checks.
    pub prober: Arc<LiveProber>,
    /// Every agent's address (`<host> ip` and `agent_port`).
    pub agents: BTreeMap<HostName, SocketAddr>,
    /// The bound on clock rate differences (`clock_drift`).
    pub clock_drift: f64,
}

/// How old a replica's check table may be and still count.
const OBSERVATIONS_FRESH: Duration = Duration::from_secs(3);

/// Agent calls: connect within this.
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Agent calls other than a status: answered within this.
const AGENT_TIMEOUT: Duration = Duration::from_secs(2);

fn raft_config(group: &Group, t: &Timing) -> anyhow::Result<Arc<openraft::Config>> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let config = openraft::Config {
        cluster_name: group.id.clone(),
        heartbeat_interval: ms(t.heartbeat),
        election_timeout_min: ms(t.election_min),
        election_timeout_max: ms(t.election_max),
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    };
    Ok(Arc::new(config.validate().context("Raft timing")?))
}

/// Another member that is already part of a running group (its term is above zero), if any.
/// A pristine replica initializes the group only when none is: every member of a new group
/// initializes with the same membership (safe), while a replica added to a running group must
/// not start one of its own with a different membership.
async fn formed_group_peer(group: &Group, transport: &Transport) -> Option<String> {
    let client = transport
        .client(Channel::Monitor)
        .timeout(Duration::from_secs(1))
        .build()
        .ok()?;
    for m in group.members.iter().filter(|m| m.id != group.this.id) {
        let url = transport.url(m.addr, mmm_core::api::LEADER_PATH);
        let Ok(resp) = client.get(&url).send().await else {
            continue;
        };
        if let Ok(info) = resp.json::<mmm_core::api::LeaderInfo>().await {
            if info.term > 0 {
                return Some(m.name.clone());
            }
        }
    }
    None
}

/// Runs a replica until `shutdown` is cancelled.
pub async fn run(cfg: ReplicaConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ReplicaConfig {
        transport,
        group,
        topology,
        data_dir,
        timing,
        checking,
        prober,
        agents,
        clock_drift,
    } = cfg;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
    let (log, sm) = Store::open(&data_dir, &group.id)?;
    let reader = sm.reader();
    {
        let (reader, findings) = (reader.clone(), reader.clone());
        prober.compare_with_writer(
            move || {
                let applied = reader.read();
                let (topology, state) = (applied.topology.as_ref()?, applied.state.as_ref()?);
                state.active_master(topology).cloned()
            },
            move |host| {
                let applied = findings.read();
                let state = applied.state.as_ref()?;
                state.hosts.get(host)?.errant_message().map(str::to_string)
            },
        );
    }
    let network = HttpNetwork::new(
        group.this.id,
        transport.client(Channel::Monitor),
        transport.scheme(),
    )
    .context("HTTP client for Raft")?;
    let raft = Raft::new(
        group.this.id,
        raft_config(&group, &timing)?,
        network,
        log,
        sm,
    )
    .await
    .context("starting Raft")?;
    let listener = tokio::net::TcpListener::bind(group.this.addr)
        .await
        .with_context(|| format!("cannot listen on {}", group.this.addr))?;
    tracing::info!(node = %group.this.name, addr = %group.this.addr, group = %group.id, "monitor replica started");

    if let Some(peer) = formed_group_peer(&group, &transport).await {
        tracing::info!(
            node = %group.this.name,
            %peer,
            "the monitor group already exists: waiting to be added (mmm_control add_monitor {} {})",
            group.this.name,
            group.this.addr
        );
    } else {
        match raft.initialize(group.nodes()).await {
            Ok(()) => tracing::info!(members = group.members.len(), "monitor group initialized"),
            Err(openraft::error::RaftError::APIError(
                openraft::error::InitializeError::NotAllowed(_),
            )) => tracing::debug!("monitor group already initialized"),
            Err(e) => return Err(e).context("initializing the monitor group"),
        }
    }

    let table = Table::new(group.this.name.clone());
    let probe_now: crate::shared::ProbeNow = {
        let prober = prober.clone();
        Arc::new(move |host: HostName, check: CheckKind| {
            let prober = prober.clone();
            Box::pin(async move { prober.probe(&host, check).await })
        })
    };
    let shared = Arc::new(Shared::new(
        group.this.name.clone(),
        group.members.len(),
        table.clone(),
        crate::lease::Leases::new(timing.lease, timing.lease_renew),
        clock_drift,
        OBSERVATIONS_FRESH,
        probe_now,
    ));
    let app = crate::api::router(crate::api::Api::new(
        raft.clone(),
        reader.clone(),
        group.clone(),
        shared.clone(),
        transport.clone(),
    )?)
    .merge(mmm_raft::router(raft.clone()));
    let checks = tokio::spawn(crate::checker::run(
        prober.clone(),
        table.clone(),
        topology.hosts.keys().cloned().collect(),
        checking.schedules.clone(),
        shared.clock,
        shutdown.child_token(),
    ));
    let network = {
        let prober = prober.clone();
        tokio::spawn(crate::checker::run_network(
            checking.ping_ips.clone(),
            checking.ping_interval,
            move |ip| {
                let prober = prober.clone();
                async move { prober.ping_ip(ip).await }
            },
            table,
            shutdown.child_token(),
        ))
    };
    let client =
        mmm_agent::client::AgentClient::new(&transport, AGENT_CONNECT_TIMEOUT, AGENT_TIMEOUT)
            .map_err(|e| anyhow::anyhow!(e))?;
    let leader = tokio::spawn(crate::leader::run(
        crate::leader::LeaderConfig {
            raft: raft.clone(),
            reader,
            group: group.clone(),
            topology,
            tick: timing.tick,
            shared,
            agents,
            client,
            push: crate::leader::http_push(&transport)?,
        },
        shutdown.child_token(),
    ));
    let stop = shutdown.clone();
    mmm_transport::serve(
        transport,
        listener,
        app,
        crate::api::policy,
        mmm_transport::Limits::default(),
        async move { stop.cancelled().await },
    )
    .await
    .context("serving the API")?;
    shutdown.cancel();
    for (name, task) in [
        ("leader loop", leader),
        ("checks", checks),
        ("network check", network),
    ] {
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("the {name} did not stop in 5 s");
        }
    }
    match tokio::time::timeout(Duration::from_secs(5), raft.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "Raft shutdown"),
        Err(_) => tracing::warn!("Raft did not shut down in 5 s"),
    }
    tracing::info!(node = %group.this.name, "monitor replica stopped");
    Ok(())
}
