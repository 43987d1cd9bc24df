//! Failover end to end, on the seed document's cluster in network namespaces (`support/lab.rs`):
//! three real `mmm_mond` replicas, four real MariaDB servers with their real `mmm_agentd`, a
//! client writing through the writer VIP every 50 ms and a prober sampling every host's
//! read_only and writer VIP.
//!
//! For each fault the test proves: writes through the writer VIP resume on the new master, no
//! acknowledged write is lost, no two hosts were ever writable or held the writer VIP at the
//! same time, and the replicas replicate from the new master afterwards. The outage it
//! measures is printed; targets are checked by the benchmark, not asserted here.
//!
//! A planned `mmm_control switchover` goes through the same harness: the same checks, and
//! with the new master lagging behind the old one it still loses no write.

#[path = "support/lab.rs"]
mod lab;

use std::sync::Arc;
use std::time::Duration;

use lab::{
    acked_after, crash_with_standby_behind, fail_over, fail_over_tuned, leader_index, lost,
    one_lab, replicates_from, switchover_fault, switchover_printed, wait_until, Cluster, Fault,
    Prober, Tuning, Writer,
};
use tokio::sync::RwLock;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_mysqld_fails_over_to_the_other_master_without_losing_writes() {
    let fault: Fault = Box::new(|c| Box::pin(async move { c.db_mut("db1").kill9() }));
    fail_over("master mysqld SIGKILL", fault, "db2").await;
}

/// db2 stops receiving for half a second before db1's mysqld dies: the writes of that half
/// second were acknowledged by the slaves (semi-sync) and db2 never got them. The new writer
/// fetches them from the slave furthest ahead before it takes writes; a promotion that applied
/// only its own relay log would lose them, and the slaves could not replicate from it.
/// `<socket> type ssl`: every channel (mmm_control and the test's client to the monitors, the
/// replicas to each other, monitors to agents and back) runs over TLS with client
/// certificates from the lab's CA and the tokens. A client whose certificate comes from
/// another CA reaches no monitor and no agent, even with the right tokens; the failover then
/// runs as over plain HTTP. Like every failover here, no log holds a password or a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_a_killed_master_fails_over_and_strangers_get_nowhere() {
    let fault: Fault = Box::new(|c| {
        Box::pin(async move {
            assert!(
                !c.stranger_gets_an_answer().await,
                "a client with a foreign certificate got an answer"
            );
            c.db_mut("db1").kill9()
        })
    });
    let tuning = Tuning {
        tls: true,
        ..Tuning::default()
    };
    fail_over_tuned(
        "master mysqld SIGKILL, TLS on every channel",
        tuning,
        fault,
        "db2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_writer_that_missed_the_last_writes_fetches_them_from_a_slave() {
    let fault = crash_with_standby_behind(Duration::from_millis(500));
    fail_over(
        "master mysqld SIGKILL, the other master behind the slaves",
        fault,
        "db2",
    )
    .await;
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

/// A replica whose replication breaks (an SQL error, as after a conflicting local write) goes
/// REPLICATION_FAIL and its reader VIP moves to another reader; once it replicates again it is
/// ONLINE and the balancing gives it a reader VIP back. The writer stays where it is.
///
/// As in MMM, a replica's replication failures count only once its master has been ONLINE for
/// `PEER_ONLINE_GRACE` (60 s), so on a fresh cluster this takes a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_whose_replication_breaks_hands_its_reader_vip_over_until_fixed() {
    let _one = one_lab().await;
    let c = Cluster::start(Tuning::default()).await;
    let limit = Duration::from_secs(20);
    wait_until(&c, limit, "db3 holds one reader VIP", async || {
        c.reader_vips_on("db3").await == Some(1)
    })
    .await;

    // A row written on db3 alone, then the same key on the master: db3's SQL thread stops
    // on the duplicate key (1062).
    c.db("db3")
        .exec("SET sql_log_bin=0; INSERT INTO chaos.w (v) VALUES (-1)")
        .await
        .expect("a local write on db3");
    c.db("db1")
        .exec("INSERT INTO chaos.w (v) VALUES (-1)")
        .await
        .expect("the same key on the master");
    wait_until(
        &c,
        mmm_core::PEER_ONLINE_GRACE + limit,
        "db3 REPLICATION_FAIL, its reader VIP on another reader",
        async || {
            c.shown("db3").await.contains("slave/REPLICATION_FAIL.")
                && c.reader_vips_on("db3").await == Some(0)
        },
    )
    .await;
    assert!(
        c.shown("db1").await.contains("writer("),
        "the writer stays on db1: {}",
        c.show().await
    );

    c.db("db3")
        .exec("STOP SLAVE; SET sql_log_bin=0; DELETE FROM chaos.w WHERE v = -1; START SLAVE")
        .await
        .expect("db3 repaired");
    wait_until(
        &c,
        limit,
        "db3 ONLINE with a reader VIP again",
        async || {
            c.shown("db3").await.contains("slave/ONLINE.")
                && c.reader_vips_on("db3").await == Some(1)
        },
    )
    .await;
}

/// The old master comes back after a failover: it goes through AWAITING_RECOVERY, does not
/// take the writer role back (no `prefer`), stays read-only without the VIP, and replicates
/// from the new master with every write made while it was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_master_that_returns_does_not_take_the_writer_back() {
    let _one = one_lab().await;
    let c = Arc::new(RwLock::new(Cluster::start(Tuning::default()).await));
    let prober = Prober::start(c.clone());
    let writer = {
        let g = c.read().await;
        Writer::start(g.client(), g.writer_vip)
    };
    let limit = Duration::from_secs(30);
    acked_after(&writer, Duration::ZERO, 20, limit, &*c.read().await).await;

    c.write().await.db_mut("db1").kill9();
    c.read().await.wait_writable("db2", limit).await;
    let back_at = writer.started.elapsed();
    c.write()
        .await
        .db_mut("db1")
        .restart()
        .await
        .expect("db1's mysqld starts again");
    {
        let g = c.read().await;
        wait_until(
            &g,
            limit,
            "db1 AWAITING_RECOVERY after HARD_OFFLINE",
            async || {
                g.log("mon1")
                    .contains("State of host 'db1' changed from HARD_OFFLINE to AWAITING_RECOVERY")
            },
        )
        .await;
        replicates_from(&g, "db1", "db2").await;
        acked_after(&writer, back_at, 60, limit, &g).await;
        g.wait_writable("db2", Duration::from_secs(1)).await;
        let line = g.shown("db1").await;
        assert!(
            !line.contains("writer("),
            "db1 took the writer back: {line}"
        );
    }
    let writes = writer.finish();
    let (samples, violations) = prober.finish().await;
    let g = c.read().await;
    assert!(
        violations.is_empty(),
        "two writers at once: {violations:?}\n{}",
        g.logs()
    );
    assert!(samples > 20, "the prober ran ({samples} samples)");
    g.db("db1")
        .sync_with(g.db("db2"), Duration::from_secs(20))
        .await
        .expect("db1 catches up with db2");
    let missing = lost(g.db("db1"), &writes).await;
    assert!(
        missing.is_empty(),
        "db1 misses acknowledged writes: {missing:?}"
    );
}

/// The old master comes back with transactions nobody else has (written while every replica
/// had stopped receiving from it, just before it crashed): the monitors find them as it
/// returns and keep it out of rotation (REPLICATION_FAIL, never ONLINE, no role, set_online
/// refused), naming the GTIDs and their count in `show`, `checks`, `history` and `/metrics`,
/// while writes go on at the new master. `mmm_control rejoin db1` refuses to re-point it and
/// names them; `rejoin db1 --reclone` rebuilds it from the writer under write load (its data
/// replaced by a hot copy, progress shown), after which it has no errant transaction, every
/// acknowledged write, replicates from the writer (and the writer, whose replication from it
/// broke on those transactions, from it again: master-master), and goes ONLINE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_master_back_with_errant_transactions_stays_out_until_rebuilt() {
    let _one = one_lab().await;
    let c = Arc::new(RwLock::new(Cluster::start(Tuning::default()).await));
    let limit = Duration::from_secs(30);
    {
        let mut g = c.write().await;
        g.wait_writable("db1", limit).await;
        for db in ["db2", "db3", "db4"] {
            g.db(db)
                .exec("STOP SLAVE IO_THREAD")
                .await
                .expect("the replicas stop receiving from db1");
        }
        // Three transactions only db1 has (semi-sync off: no replica acknowledges them).
        g.db("db1")
            .exec(
                "SET GLOBAL rpl_semi_sync_master_enabled=0; \
                 INSERT INTO chaos.w (v) VALUES (-11); INSERT INTO chaos.w (v) VALUES (-12); \
                 INSERT INTO chaos.w (v) VALUES (-13)",
            )
            .await
            .expect("writes on db1 alone");
        g.db_mut("db1").kill9();
        for db in ["db2", "db3", "db4"] {
            g.db(db)
                .exec("START SLAVE IO_THREAD")
                .await
                .expect("the replicas receive again");
        }
        g.wait_writable("db2", limit).await;
    }
    let writer = {
        let g = c.read().await;
        Writer::start(g.client(), g.writer_vip)
    };
    acked_after(&writer, Duration::ZERO, 20, limit, &*c.read().await).await;
    let log_before = c.read().await.log("mon1").len();
    let back_at = writer.started.elapsed();
    c.write()
        .await
        .db_mut("db1")
        .restart()
        .await
        .expect("db1's mysqld starts again");

    let g = c.read().await;
    let found = "to REPLICATION_FAIL because it has 3 errant transactions that the active master 'db2' does not have (0-1-";
    wait_until(
        &g,
        limit,
        "db1 found with 3 errant transactions",
        async || {
            g.log("mon1")
                .lines()
                .any(|l| l.contains("State of host 'db1' changed from") && l.contains(found))
        },
    )
    .await;
    // Long enough for a short outage or auto_set_online to have set it ONLINE.
    acked_after(&writer, back_at, 100, limit, &g).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let since_return = g.log("mon1")[log_before..].to_string();
    assert!(
        !since_return
            .lines()
            .any(|l| l.contains("State of host 'db1' changed") && l.contains("to ONLINE")),
        "db1 went ONLINE with errant transactions:\n{since_return}"
    );
    let line = g.shown("db1").await;
    assert!(
        line.contains("master/REPLICATION_FAIL.") && line.trim_end().ends_with("Roles:"),
        "db1 is out of rotation: {line}"
    );
    let show = g.show().await;
    assert!(
        show.contains("# Warning: host db1 has 3 errant transactions that the active master db2 does not have (0-1-"),
        "show says why: {show}"
    );
    let checks = g.command("checks db1 rep_threads").await.reply;
    assert!(
        checks.contains("ERROR: Errant transactions not on the active master db2: 3 (0-1-"),
        "checks names the GTIDs: {checks}"
    );
    let refused = g.command("set_online db1").await.reply;
    assert!(
        refused.starts_with("ERROR:"),
        "set_online is refused: {refused}"
    );
    let metrics = g.metrics("mon1").await;
    assert!(
        metrics.contains("mmm_host_errant_transactions{host=\"db1\"} 3"),
        "/metrics counts them:\n{metrics}"
    );
    let history = g
        .control(&["history"])
        .output()
        .expect("mmm_control history");
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(
        history.contains("db1 has 3 errant transactions"),
        "history lists it: {history}"
    );
    g.wait_writable("db2", Duration::from_secs(1)).await;

    // rejoin without --reclone would keep the errant transactions: refused, and says so.
    let refused = g
        .control_with_config(&["rejoin", "db1"])
        .output()
        .expect("mmm_control rejoin");
    let text = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(
        text.contains("'db1' has 3 transaction(s) the active master 'db2' lacks (0-1-")
            && text.contains("rejoin db1 --reclone"),
        "{text}"
    );
    // Rebuilt from the writer while the client keeps writing.
    let rebuilt = g
        .control_with_config(&["rejoin", "db1", "--reclone"])
        .output()
        .expect("mmm_control rejoin --reclone");
    let text = String::from_utf8_lossy(&rebuilt.stdout);
    println!("{text}");
    assert_eq!(
        rebuilt.status.code(),
        Some(0),
        "rejoin --reclone: {text}{}\n{}",
        String::from_utf8_lossy(&rebuilt.stderr),
        g.log("db1-agent")
    );
    assert!(
        text.contains("db1: copying (master-master from db2)")
            && text.contains("OK: 'db1' was rebuilt from 'db2'"),
        "{text}"
    );
    wait_until(&g, limit, "db1 goes ONLINE once rebuilt", async || {
        g.command("set_online db1").await;
        g.shown("db1").await.contains("master/ONLINE")
    })
    .await;
    replicates_from(&g, "db1", "db2").await;
    replicates_from(&g, "db2", "db1").await;
    acked_after(&writer, writer.started.elapsed(), 20, limit, &g).await;
    assert!(
        g.shown("db2").await.contains("master/ONLINE"),
        "the writer stays ONLINE: {}",
        g.show().await
    );
    drop(g);
    let writes = writer.finish();
    let g = c.read().await;
    for db in ["db2", "db1"] {
        g.db(db)
            .sync_with(g.db("db2"), Duration::from_secs(20))
            .await
            .expect("caught up with db2");
        let missing = lost(g.db(db), &writes).await;
        assert!(
            missing.is_empty(),
            "{db} misses acknowledged writes: {missing:?}"
        );
    }
    assert_eq!(
        g.db("db1")
            .scalar("SELECT COUNT(*) FROM chaos.w WHERE v BETWEEN -13 AND -11")
            .await
            .expect("query")
            .as_deref(),
        Some("0"),
        "the errant rows are gone from db1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switchover_under_write_load_loses_no_write() {
    let ran: lab::SwitchoverRun = Arc::default();
    let fault = switchover_fault(None, ran.clone());
    fail_over("switchover", fault, "db2").await;
    switchover_printed(&ran);
}

/// db2 is 0.5 s behind db1 when the switchover starts: a promotion that waited only for its
/// own relay log would take writes without db1's last ones, which then arrive out of order
/// (gtid_strict_mode stops db2's replication) and are missing on db2: lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switchover_to_a_lagging_master_waits_for_the_old_writers_last_writes() {
    let ran: lab::SwitchoverRun = Arc::default();
    let hold = (Duration::from_millis(500), Duration::from_millis(400));
    let fault = switchover_fault(Some(hold), ran.clone());
    fail_over("switchover to a lagging master", fault, "db2").await;
    switchover_printed(&ran);
}
