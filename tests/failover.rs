//! Failover end to end, on the seed document's cluster in network namespaces (`support/lab.rs`):
//! three real `mmm_mond` replicas, four real MariaDB servers with their real `mmm_agentd`, a
//! client writing through the writer VIP every 50 ms and a prober sampling every host's
//! read_only and writer VIP.
//!
//! For each fault the test proves: writes through the writer VIP resume on the new master, no
//! acknowledged write is lost, no two hosts were ever writable or held the writer VIP at the
//! same time, and the replicas replicate from the new master afterwards. The outage it
//! measures is printed; targets are checked by the benchmark, not asserted here.

#[path = "support/lab.rs"]
mod lab;

use std::time::Duration;

use lab::{fail_over, fail_over_tuned, leader_index, Fault, Tuning};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_mysqld_fails_over_to_the_other_master_without_losing_writes() {
    let fault: Fault = Box::new(|c| Box::pin(async move { c.db_mut("db1").kill9() }));
    fail_over("master mysqld SIGKILL", fault, "db2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_cut_from_the_network_fences_itself_and_the_other_master_takes_over() {
    let fault: Fault = Box::new(|c| Box::pin(async move { c.lab.cut("db1").expect("cut db1") }));
    fail_over("master cut from the network", fault, "db2").await;
}

/// With a lease longer than failure detection, the monitors see the cut master fail while it
/// still holds its lease: the new master must wait until that lease has certainly ended (the
/// fence gate). Without the wait, the prober sees two writable masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_master_whose_lease_outlasts_detection_is_waited_out_before_promotion() {
    let fault: Fault = Box::new(|c| Box::pin(async move { c.lab.cut("db1").expect("cut db1") }));
    let tuning = Tuning {
        monitor: "    lease 8\n    lease_renew_interval 0.3\n",
        ..Tuning::default()
    };
    let outage = fail_over_tuned("master cut, 8 s lease", tuning, fault, "db2").await;
    assert!(
        outage >= Duration::from_secs(7),
        "the new master took writes {} ms after the cut, before the old one's lease could end",
        outage.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_monitor_leader_does_not_move_or_stop_the_writer() {
    let fault: Fault = Box::new(|c| {
        Box::pin(async move {
            let leader = leader_index(c).await;
            c.kill_monitor(leader);
        })
    });
    fail_over("monitor leader SIGKILL", fault, "db1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_monitor_leader_and_the_master_mysqld_killed_together_fail_over() {
    let fault: Fault = Box::new(|c| {
        Box::pin(async move {
            let leader = leader_index(c).await;
            c.kill_monitor(leader);
            c.db_mut("db1").kill9();
        })
    });
    fail_over("monitor leader and master mysqld SIGKILL", fault, "db2").await;
}
