//! What the API handlers and the leader loop of one replica share: this replica's check table,
//! the leader's combined observations, the fence gate, the lease settings, the monotonic clock
//! and a way to probe a host's mysqld at once (the fast path).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use mmm_core::fence::FenceGate;
use mmm_core::observe::Observations;
use mmm_core::{CheckKind, HostName, Probe};
use tokio::sync::Notify;

use crate::checker::Table;
use crate::lease::Leases;
use crate::{Clock, WallClock};

/// Probes one check of one host now.
pub type ProbeNow =
    Arc<dyn Fn(HostName, CheckKind) -> Pin<Box<dyn Future<Output = Probe> + Send>> + Send + Sync>;

/// Shared by the API and the leader loop.
pub struct Shared {
    /// This replica's name.
    pub this: String,
    /// This replica's monotonic clock (check traps, leases, freshness).
    pub clock: Clock,
    /// The wall clock the leader stamps events with.
    pub wall: WallClock,
    /// This replica's check verdicts.
    pub table: Table,
    /// Every replica's verdicts, as the leader combines them.
    observations: Mutex<Observations>,
    /// Leases given and demotions confirmed.
    gate: Mutex<FenceGate>,
    /// The lease settings.
    pub leases: Leases,
    /// Probes a check now.
    pub probe_now: ProbeNow,
    /// Something the leader loop should look at now.
    pub wake: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The shared state of replica `this` in a group of `members`.
    pub fn new(
        this: String,
        members: usize,
        table: Table,
        leases: Leases,
        clock_drift: f64,
        fresh: std::time::Duration,
        probe_now: ProbeNow,
    ) -> Shared {
        Shared {
            observations: Mutex::new(Observations::new(this.clone(), members, fresh)),
            gate: Mutex::new(FenceGate::new(leases.lease(), clock_drift)),
            this,
            clock: Clock::new(),
            wall: Arc::new(crate::now),
            table,
            leases,
            probe_now,
            wake: Notify::new(),
        }
    }

    /// The same, on other clocks (the deterministic simulation's virtual time).
    pub fn with_clocks(self, clock: Clock, wall: WallClock) -> Shared {
        Shared {
            clock,
            wall,
            ..self
        }
    }

    /// The observations, locked (never across an await).
    pub fn observations(&self) -> MutexGuard<'_, Observations> {
        lock(&self.observations)
    }

    /// The fence gate, locked (never across an await).
    pub fn gate(&self) -> MutexGuard<'_, FenceGate> {
        lock(&self.gate)
    }
}
