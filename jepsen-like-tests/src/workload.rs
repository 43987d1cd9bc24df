//! The clients: processes that insert unique values and increment a counter through the
//! writer VIP, some with a fresh connection per operation and some keeping one (as a
//! connection pool does), and readers through the reader VIPs. Every operation is recorded
//! with its invoke and complete times and its outcome. A process never has more than one
//! operation in flight, and every operation has a time limit, so a hung server shows as an
//! `unknown` outcome and the process goes on.

use crate::history::{now, Op, OpKind, Outcome};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The application account of the demo cluster (docker/scripts/accounts.sql): no READ_ONLY
/// ADMIN, so `read_only=1` refuses its writes.
pub const APP_USER: &str = "mmm_app";
pub const APP_PASSWORD: &str = "app-pw";

/// How long one operation, connecting included, may take before its outcome is unknown.
pub const OP_LIMIT: Duration = Duration::from_secs(3);

/// Connection options for the application account at `ip`.
pub fn app_opts(ip: &str) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(3306)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .prefer_socket(false)
        .into()
}

/// How many client processes of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Inserting processes with a fresh connection per insert, and with a kept one.
    pub fresh_writers: u32,
    pub pooled_writers: u32,
    /// Incrementing processes (half fresh, half kept).
    pub incrementers: u32,
    /// Reading processes, round robin over the reader VIPs.
    pub readers: u32,
    /// The pause between two operations of one process.
    pub pause: Duration,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            fresh_writers: 2,
            pooled_writers: 2,
            incrementers: 2,
            readers: 2,
            pause: Duration::from_millis(20),
        }
    }
}

/// The running clients.
pub struct Workload {
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Vec<Op>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a process does once.
#[derive(Clone)]
enum Job {
    Write,
    Incr,
    Read(Vec<String>),
}

impl Workload {
    /// Starts the processes of `mix`; writes go to `writer_vip`.
    pub fn start(mix: Mix, writer_vip: &str, reader_vips: &[&str]) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(Mutex::new(Vec::new()));
        let mut jobs = Vec::new();
        jobs.extend((0..mix.fresh_writers).map(|_| (Job::Write, true)));
        jobs.extend((0..mix.pooled_writers).map(|_| (Job::Write, false)));
        jobs.extend((0..mix.incrementers).map(|i| (Job::Incr, i % 2 == 0)));
        let readers: Vec<String> = reader_vips.iter().map(|s| s.to_string()).collect();
        jobs.extend((0..mix.readers).map(|i| (Job::Read(readers.clone()), i % 2 == 0)));
        let tasks = jobs
            .into_iter()
            .enumerate()
            .map(|(p, (job, fresh))| {
                let (stop, ops, vip) = (stop.clone(), ops.clone(), writer_vip.to_string());
                tokio::spawn(process(p as u32, job, fresh, vip, mix.pause, stop, ops))
            })
            .collect();
        Workload { stop, ops, tasks }
    }

    /// How many operations ended with each outcome so far: (ok, fail, unknown).
    pub fn counts(&self) -> (usize, usize, usize) {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let n = |o| ops.iter().filter(|op| op.outcome == o).count();
        (n(Outcome::Ok), n(Outcome::Fail), n(Outcome::Unknown))
    }

    /// [`crate::checker::outage`] over the operations completed so far.
    pub fn outage(&self, from: crate::history::Nanos, to: crate::history::Nanos) -> u64 {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        crate::checker::outage(&ops, from, to)
    }

    /// Stops every process once its operation in flight ends; returns the whole history.
    pub async fn finish(self) -> Vec<Op> {
        crate::history::stop_and_take(&self.stop, self.tasks, &self.ops, |op| op.invoke).await
    }
}

async fn process(
    p: u32,
    job: Job,
    fresh: bool,
    writer_vip: String,
    pause: Duration,
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Vec<Op>>>,
) {
    let mut kept: Option<Conn> = None;
    let mut seq: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let (kind, target, sql) = match &job {
            Job::Write => {
                let v = (u64::from(p) << 40) | seq;
                let sql =
                    format!("INSERT INTO jepsen.w (v, sid, p) VALUES ({v}, @@server_id, {p})");
                (OpKind::Write { v }, writer_vip.clone(), sql)
            }
            Job::Incr => (
                OpKind::Incr,
                writer_vip.clone(),
                "UPDATE jepsen.c SET n = n + 1 WHERE id = 1".to_string(),
            ),
            Job::Read(vips) => {
                let vip = vips[(seq as usize) % vips.len()].clone();
                (
                    OpKind::Read { vip: vip.clone() },
                    vip,
                    "SELECT n FROM jepsen.c WHERE id = 1".to_string(),
                )
            }
        };
        let invoke = now();
        let conn = if fresh { None } else { kept.take() };
        let (outcome, error, conn) =
            match tokio::time::timeout(OP_LIMIT, run(conn, &target, &sql)).await {
                Ok(r) => r,
                Err(_) => (
                    Outcome::Unknown,
                    Some(format!("no answer within {OP_LIMIT:?}")),
                    None,
                ),
            };
        let op = Op {
            process: p,
            fresh,
            kind,
            invoke,
            complete: now(),
            outcome,
            error,
        };
        ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
        match conn {
            // A kept connection survives only operations that went through.
            Some(c) if !fresh && outcome == Outcome::Ok => kept = Some(c),
            Some(c) => {
                let _ = tokio::time::timeout(Duration::from_millis(200), c.disconnect()).await;
            }
            None => {}
        }
        tokio::time::sleep(pause).await;
    }
}

/// One statement on `conn`, or on a new connection to `ip`. A failed connect or a refusal by
/// the server is a certain failure; anything else going wrong leaves the outcome unknown.
async fn run(conn: Option<Conn>, ip: &str, sql: &str) -> (Outcome, Option<String>, Option<Conn>) {
    let mut conn = match conn {
        Some(c) => c,
        None => match Conn::new(app_opts(ip)).await {
            Ok(c) => c,
            Err(e) => return (Outcome::Fail, Some(format!("connect to {ip}: {e}")), None),
        },
    };
    match conn.query_drop(sql).await {
        Ok(()) => (Outcome::Ok, None, Some(conn)),
        Err(mysql_async::Error::Server(e)) => (
            Outcome::Fail,
            Some(format!("{ip}: error {}: {}", e.code, e.message)),
            Some(conn),
        ),
        Err(e) => (Outcome::Unknown, Some(format!("{ip}: {e}")), None),
    }
}
