//! What a run records: the clients' operations, the prober's samples and the nemesis' faults,
//! each with wall-clock times in nanoseconds since the Unix epoch (the containers share the
//! host's clock, so samples taken inside them compare with the harness' own times). Written
//! as JSON lines, one file each, so a failed run can be read afterwards.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub type Nanos = u64;

/// The wall clock now.
pub fn now() -> Nanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Ends recording tasks (the workload's clients, the prober's samplers): raises `stop`, waits
/// for each task to finish what it is doing, and returns what they recorded, oldest first by
/// `invoke`.
pub async fn stop_and_take<T>(
    stop: &AtomicBool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    records: &Mutex<Vec<T>>,
    invoke: impl Fn(&T) -> Nanos,
) -> Vec<T> {
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let mut all = std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()));
    all.sort_by_key(invoke);
    all
}

/// How an operation ended, as the client knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged by the server.
    Ok,
    /// Certainly not executed: no connection, or the server refused it with an error.
    Fail,
    /// The connection broke or timed out after the statement was sent: it may have run.
    Unknown,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum OpKind {
    /// Inserted the unique value `v` through the writer VIP.
    Write { v: u64 },
    /// Added one to the counter row through the writer VIP.
    Incr,
    /// Read through the reader VIP `vip`.
    Read { vip: String },
}

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client process.
    pub process: u32,
    /// Whether the process opens a fresh connection per operation (else it keeps one).
    pub fresh: bool,
    #[serde(flatten)]
    pub kind: OpKind,
    pub invoke: Nanos,
    pub complete: Nanos,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the prober saw on one database host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Seen {
    /// `@@read_only` through the host's own address; `None`: no answer.
    Writable { writable: Option<bool> },
    /// The IPv4 addresses on the host's cluster interface; `None`: could not be read.
    Addresses { addresses: Option<Vec<String>> },
}

/// One prober sample: it was taken at some moment between `invoke` and `complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub host: String,
    pub invoke: Nanos,
    pub complete: Nanos,
    #[serde(flatten)]
    pub seen: Seen,
}

/// One fault the nemesis injected, and when it was healed and the cluster stable again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// The fault's kind, e.g. `kill-mysqld`.
    pub kind: String,
    /// What it was applied to, e.g. `master1` (resolved: "the writer" is named).
    pub targets: Vec<String>,
    pub start: Nanos,
    pub healed: Nanos,
    /// When every host was ONLINE with one writer again; `None`: not within the limit.
    pub stable: Option<Nanos>,
    /// The writer before the fault and once stable.
    pub writer_before: Option<String>,
    pub writer_after: Option<String>,
}
