//! What the leader proposes on its own: the topology, then ticks of time.
//!
//! On every tick, if this replica leads: when the committed topology differs from the one in
//! this replica's configuration files, it proposes `Configure` (so the leader's files win; keep
//! them identical on every replica); once the cluster has started, it proposes a `Tick` so the
//! time-based rules run. Followers only watch.

use std::time::Duration;

use mmm_core::{Event, Topology};
use mmm_raft::typ::Raft;
use mmm_raft::{Request, StateReader};
use tokio_util::sync::CancellationToken;

use crate::group::Group;

/// Runs until `stop` is cancelled.
pub async fn run(
    raft: Raft,
    reader: StateReader,
    group: Group,
    topology: Topology,
    tick: Duration,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        let leader = raft.metrics().borrow().current_leader;
        if leader != Some(group.this.id) {
            continue;
        }
        let applied = reader.read();
        let request = if applied.topology.as_ref() != Some(&topology) {
            tracing::info!(node = %group.this.name, "proposing the configured topology");
            Request::Configure {
                topology: topology.clone(),
                now: crate::now(),
            }
        } else if applied.state.as_ref().is_some_and(|s| s.started) {
            Request::Event {
                now: crate::now(),
                event: Event::Tick,
            }
        } else {
            continue;
        };
        if let Err(e) = raft.client_write(request).await {
            tracing::debug!(error = %e, "leader proposal not committed");
        }
    }
}
