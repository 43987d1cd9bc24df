//! Benchmark (not a test) of failover end to end: `cargo bench --bench failover`.
//!
//! Each fault of `tests/failover.rs` runs `MMM_BENCH_RUNS` times (default 10) on a fresh lab
//! (three monitors, four MariaDB hosts with agents, a client writing through the writer VIP
//! every 50 ms): the write outage (the longest time without an acknowledged write from the
//! fault on) is reported as median and max per fault; `switchover` is a planned
//! `mmm_control switchover db2`, `behind` a crash after db2 missed 0.5 s of writes. Every run
//! also checks what the tests check: no two writers, no lost acknowledged write, the slaves
//! follow the new master. Needs root, iproute2 and Debian's mariadb-server, and the agent
//! binary (`cargo build --workspace --bins`). `MMM_BENCH_FAULTS=cut,crash` picks faults.

#[path = "../tests/support/lab.rs"]
mod lab;

use std::time::Duration;

use lab::{
    crash_with_standby_behind, fail_over, leader_index, switchover_fault, switchover_printed,
    Fault, SwitchoverRun,
};

fn fault(name: &str, ran: &SwitchoverRun) -> Option<(&'static str, &'static str, Fault)> {
    Some(match name {
        "switchover" => (
            "planned switchover (mmm_control switchover)",
            "db2",
            switchover_fault(None, ran.clone()),
        ),
        "crash" => (
            "master mysqld SIGKILL",
            "db2",
            Box::new(|c| Box::pin(async move { c.db_mut("db1").kill9() })),
        ),
        "behind" => (
            "master mysqld SIGKILL, the other master 0.5 s behind the slaves",
            "db2",
            crash_with_standby_behind(Duration::from_millis(500)),
        ),
        "cut" => (
            "master cut from the network",
            "db2",
            Box::new(|c| Box::pin(async move { c.lab.cut("db1").expect("cut db1") })),
        ),
        "leader" => (
            "monitor leader SIGKILL",
            "db1",
            Box::new(|c| {
                Box::pin(async move {
                    let leader = leader_index(c).await;
                    c.kill_monitor(leader);
                })
            }),
        ),
        "leader+crash" => (
            "monitor leader and master mysqld SIGKILL",
            "db2",
            Box::new(|c| {
                Box::pin(async move {
                    let leader = leader_index(c).await;
                    c.kill_monitor(leader);
                    c.db_mut("db1").kill9();
                })
            }),
        ),
        _ => return None,
    })
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn main() {
    let runs: usize = std::env::var("MMM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .max(1);
    let faults = std::env::var("MMM_BENCH_FAULTS")
        .unwrap_or_else(|_| "crash,behind,cut,leader,leader+crash,switchover".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut report = Vec::new();
    for name in faults.split(',') {
        let mut outages = Vec::new();
        let mut title = name.to_string();
        for run in 0..runs {
            let ran = SwitchoverRun::default();
            let Some((t, new_writer, f)) = fault(name, &ran) else {
                eprintln!("unknown fault {name:?}: crash, cut, leader, leader+crash, switchover");
                std::process::exit(2);
            };
            title = t.to_string();
            let outage = rt.block_on(fail_over(t, f, new_writer));
            if name == "switchover" {
                switchover_printed(&ran);
            }
            eprintln!("{t}: run {} of {runs}: {}", run + 1, ms(outage));
            outages.push(outage);
        }
        outages.sort();
        let median = outages[outages.len() / 2];
        let max = outages[outages.len() - 1];
        report.push(format!(
            "{title:<45} runs {runs:>3}  median {:>8}  max {:>8}",
            ms(median),
            ms(max)
        ));
    }
    println!(
        "write outage per fault (the longest time without an acknowledged write from the fault on)"
    );
    for line in report {
        println!("{line}");
    }
}
