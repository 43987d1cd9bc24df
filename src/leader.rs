//! The leader loop: what the leader commits on its own, and the agents it drives.
//!
//! While this replica leads, every 100 ms (or at once when something changed):
//! 1. when the committed topology differs from this replica's configuration files, it proposes
//!    `Configure` (the leader's files win; keep them identical on every replica);
//! 2. before the cluster has started: once its own checks have run, it commits their combined
//!    result, asks every agent for its status and commits MMM's startup vote;
//! 3. it commits this replica's network check when it changed, and the check results the
//!    replicas' combined observations (`mmm_core::observe`) give that differ from the
//!    committed ones; a tick every `tick` runs the time-based rules;
//! 4. the driver (`driver.rs`) brings every agent to its committed status, the writer last
//!    and only through the fence gate, and its answers become reachability and uptime events.
//!
//! On a follower, the loop sends this replica's check table to the leader every 500 ms and at
//! once when a verdict changes.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mmm_agent::client::AgentApi;
use mmm_core::api::OBSERVATIONS_PATH;
use mmm_core::observe::ReplicaReport;
use mmm_core::{CheckKind, Event, HostName, Time, Topology};
use mmm_raft::typ::Raft;
use mmm_raft::{Request, StateReader};
use tokio_util::sync::CancellationToken;

use crate::driver::Driver;
use crate::group::Group;
use crate::shared::Shared;

/// How often the loop looks, at the latest.
const POLL: Duration = Duration::from_millis(100);

/// How often a follower sends its table when nothing changed.
const PUSH_EVERY: Duration = Duration::from_millis(500);

/// How long a proposal may wait to be committed.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a new leader waits for its own first round of checks before the startup vote.
const FIRST_ROUND_LIMIT: Duration = Duration::from_secs(15);

/// Sends this replica's check table to the leader at an address (the leader's Raft node
/// address); the answer says why not, when it was not taken.
pub type PushTable = Arc<
    dyn Fn(String, ReplicaReport) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// What the leader loop works with.
pub struct LeaderConfig<C> {
    /// This replica's Raft node.
    pub raft: Raft,
    /// The applied state.
    pub reader: StateReader,
    /// The group.
    pub group: Group,
    /// The topology from this replica's configuration files.
    pub topology: Topology,
    /// How often the time-based rules run.
    pub tick: Duration,
    /// Shared with the API.
    pub shared: Arc<Shared>,
    /// Every agent's address.
    pub agents: BTreeMap<HostName, SocketAddr>,
    /// The client for agent calls.
    pub client: C,
    /// How a follower's check table reaches the leader.
    pub push: PushTable,
}

/// Commits `event` stamped with the wall clock. A refusal is logged by the state machine, a
/// commit that fails here is logged, and the loop tries again on its next pass.
async fn propose(raft: &Raft, shared: &Shared, event: Event) {
    commit(
        raft,
        Request::Event {
            now: (shared.wall)(),
            event,
        },
    )
    .await
}

/// Commits `request` (see `propose`).
async fn commit(raft: &Raft, request: Request) {
    match tokio::time::timeout(COMMIT_TIMEOUT, raft.client_write(request)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "leader proposal not committed"),
        Err(_) => tracing::warn!("leader proposal not committed within {COMMIT_TIMEOUT:?}"),
    }
}

/// Runs until `stop` is cancelled.
pub async fn run<C: AgentApi>(cfg: LeaderConfig<C>, stop: CancellationToken) {
    let LeaderConfig {
        raft,
        reader,
        group,
        topology,
        tick,
        shared,
        agents,
        client,
        push,
    } = cfg;
    let mut driver = Driver::new(shared.clone(), agents, client);
    let mut leading_since: Option<Time> = None;
    let mut last_tick: Option<Time> = None;
    let mut last_push: Option<Time> = None;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let checks_per_round = topology.hosts.len() * CheckKind::ALL.len();
    loop {
        let mut finished = None;
        let mut table_changed = false;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = poll.tick() => {}
            _ = shared.wake.notified() => {}
            _ = shared.table.changed() => table_changed = true,
            done = driver.next_done() => finished = done,
        }
        let now = shared.clock.now();
        let is_leader = raft.metrics().borrow().current_leader == Some(group.this.id);
        if !is_leader {
            if leading_since.take().is_some() {
                tracing::warn!(node = %group.this.name, "no longer the leader: stopped driving agents");
                shared.gate().lost_leadership();
                shared.observations().clear();
                driver.reset();
            }
            if table_changed || last_push.is_none_or(|t| now.since(t) >= PUSH_EVERY) {
                last_push = Some(now);
                push_table(&raft, &group, &shared, &push).await;
            }
            continue;
        }
        let since = match leading_since {
            Some(t) => t,
            None => {
                tracing::info!(node = %group.this.name, "leading: driving the agents");
                shared.gate().became_leader(now);
                driver.reset();
                leading_since = Some(now);
                now
            }
        };
        shared.observations().record(now, shared.table.report());

        let applied = reader.read();
        if applied.topology.as_ref() != Some(&topology) {
            tracing::info!(node = %group.this.name, "proposing the configured topology");
            let request = Request::Configure {
                topology: topology.clone(),
                now: (shared.wall)(),
            };
            commit(&raft, request).await;
            continue;
        }
        let (Some(topo), Some(st)) = (&applied.topology, &applied.state) else {
            continue;
        };

        if let Some(done) = finished {
            for event in driver.absorb(done, topo, st) {
                propose(&raft, &shared, event).await;
            }
        }

        if !st.started {
            let first_round =
                shared.table.len() >= checks_per_round || now.since(since) >= FIRST_ROUND_LIMIT;
            if !first_round {
                continue;
            }
            let checks = shared.observations().decide(now, st);
            if !checks.is_empty() {
                propose(&raft, &shared, Event::Checks(checks)).await;
            }
            tracing::info!(node = %group.this.name, "startup: asking every agent for its status");
            let report = driver.startup_report(topo).await;
            propose(&raft, &shared, Event::Startup(report)).await;
            continue;
        }

        let network_up = shared.table.network_up();
        if network_up != st.network_up {
            propose(&raft, &shared, Event::Network { up: network_up }).await;
        }
        let checks = shared.observations().decide(now, st);
        if !checks.is_empty() {
            propose(&raft, &shared, Event::Checks(checks)).await;
        }
        if last_tick.is_none_or(|t| now.since(t) >= tick) {
            last_tick = Some(now);
            propose(&raft, &shared, Event::Tick).await;
        }
        let applied = reader.read();
        if let (Some(topo), Some(st)) = (&applied.topology, &applied.state) {
            let term = raft.metrics().borrow().current_term;
            driver.drive(topo, st, term);
        }
    }
}

/// Sends this replica's check table to the leader.
async fn push_table(raft: &Raft, group: &Group, shared: &Shared, push: &PushTable) {
    let metrics = raft.metrics().borrow().clone();
    let Some(leader) = metrics.current_leader else {
        return;
    };
    let Some(addr) = metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.addr.clone())
    else {
        return;
    };
    if let Err(e) = push(addr, shared.table.report()).await {
        tracing::debug!(node = %group.this.name, error = %e, "cannot send the check table to the leader");
    }
}

/// Sends check tables over HTTP with the replicas' token.
pub fn http_push(transport: &mmm_transport::Transport) -> anyhow::Result<PushTable> {
    let http = transport
        .client(mmm_transport::Channel::Monitor)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(1))
        .build()
        .context("HTTP client for the check table")?;
    let transport = transport.clone();
    Ok(Arc::new(move |addr: String, report: ReplicaReport| {
        let sent = http
            .post(transport.url(addr, OBSERVATIONS_PATH))
            .json(&report)
            .send();
        Box::pin(async move {
            match sent.await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("the leader did not take it: {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        })
    }))
}
