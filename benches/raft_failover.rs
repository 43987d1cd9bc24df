//! Benchmark (not a test) of the monitor group: `cargo bench --bench raft_failover`.
//!
//! - Commit latency: admin commands sent to the leader, each committed by a majority and
//!   applied, measured at the client (p50, p99).
//! - Failover: the leader is SIGKILLed; time until another replica accepts a state-changing
//!   command (median, p90, max over the runs). The killed replica is restarted between runs.

#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::{agreed_leader, caught_up, command, Group};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Waits until every replica has applied the configuration (and so answers `mode`).
async fn configured(g: &Group) {
    for i in 0..3 {
        while command(g.ports[i], "mode").await.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("FAILOVER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let writes: usize = std::env::var("COMMIT_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    // Extra <monitor> lines, e.g. "election_timeout_min 0.3\nelection_timeout_max 0.5\n".
    let extra = std::env::var("MONITOR_KEYS")
        .unwrap_or_default()
        .replace("\\n", "\n");
    if !extra.is_empty() {
        println!("<monitor> additions: {extra:?}");
    }
    let mut g = Group::with_monitor_keys(&extra);
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    configured(&g).await;

    let mut lat = Vec::with_capacity(writes);
    for i in 0..writes {
        let line = if i % 2 == 0 {
            "set_manual"
        } else {
            "set_active"
        };
        let t = Instant::now();
        let r = command(g.ports[leader], line).await;
        lat.push(t.elapsed());
        assert!(r.is_some_and(|r| r.ok), "write {i} failed");
    }
    lat.sort();
    println!(
        "commit latency over {writes} admin commands to the leader: p50 {}, p99 {}, max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat[lat.len() - 1])
    );

    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let old = agreed_leader(&g, &[0, 1, 2], None).await;
        configured(&g).await;
        caught_up(&g).await;
        let t = Instant::now();
        g.kill(old);
        let rest: Vec<usize> = (0..3).filter(|&i| i != old).collect();
        let line = if run % 2 == 0 {
            "set_manual"
        } else {
            "set_active"
        };
        'wait: loop {
            for &i in &rest {
                if command(g.ports[i], line).await.is_some_and(|r| r.ok) {
                    break 'wait;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = t.elapsed();
        println!(
            "run {run}: leader mon{} killed, new leader accepted a command after {}",
            old + 1,
            ms(took)
        );
        times.push(took);
        g.start(old);
        agreed_leader(&g, &[0, 1, 2], Some(old)).await;
    }
    times.sort();
    println!(
        "leader SIGKILL to a command accepted by the new leader, {runs} runs: median {}, p90 {}, max {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(times[times.len() - 1])
    );
}
