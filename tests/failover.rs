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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lab::{lost, outage, Cluster, Prober, Tuning, Writer};
use tokio::sync::RwLock;

/// Writes until `n` have been acknowledged after `from`, or fails after `limit`.
async fn acked_after(w: &Writer, from: Duration, n: usize, limit: Duration, c: &Cluster) {
    let start = std::time::Instant::now();
    loop {
        if w.acked().iter().filter(|x| x.at > from).count() >= n {
            return;
        }
        if start.elapsed() >= limit {
            let last_error = w.last_error.lock().unwrap().clone();
            panic!(
                "writes did not resume within {limit:?} (last error: {last_error}):\n{}\n{}",
                c.show().await,
                c.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn replicates_from(c: &Cluster, db: &str, master: &str) {
    let want = c.lab.host(master).ip.to_string();
    let start = std::time::Instant::now();
    loop {
        let host = c.db(db).slave_status("Master_Host").await.ok().flatten();
        let io = c
            .db(db)
            .slave_status("Slave_IO_Running")
            .await
            .ok()
            .flatten();
        if host.as_deref() == Some(want.as_str()) && io.as_deref() == Some("Yes") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{db} does not replicate from {master} ({host:?}, IO {io:?}):\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One lab at a time: each runs seven MariaDB and daemon processes on two cores.
static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fault, injected at a moment the test records.
type Fault = Box<
    dyn for<'a> FnOnce(&'a mut Cluster) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + Send,
>;

/// Starts the lab, writes through the writer VIP, injects `fault` and checks that `new_writer`
/// takes over: writes resume, none is lost, never two writers, the slaves follow. Returns the
/// outage.
async fn fail_over(name: &str, fault: Fault, new_writer: &str) -> Duration {
    let _one = ONE_LAB.lock().await;
    let c = Arc::new(RwLock::new(Cluster::start(Tuning::default()).await));
    let prober = Prober::start(c.clone());
    let writer = {
        let g = c.read().await;
        Writer::start(g.client(), g.writer_vip)
    };
    {
        let g = c.read().await;
        acked_after(&writer, Duration::ZERO, 20, Duration::from_secs(20), &g).await;
    }

    let fault_at = writer.started.elapsed();
    fault(&mut *c.write().await).await;
    {
        let g = c.read().await;
        g.wait_writable(new_writer, Duration::from_secs(30)).await;
        acked_after(&writer, fault_at, 20, Duration::from_secs(20), &g).await;
    }
    let writes = writer.finish();
    let (samples, violations) = prober.finish().await;
    let g = c.read().await;
    let outage = outage(&writes, fault_at).expect("writes before and after the fault");
    eprintln!(
        "{name}: write outage {} ms ({} writes acknowledged, {samples} prober samples)",
        outage.as_millis(),
        writes.len()
    );
    assert!(
        violations.is_empty(),
        "{name}: two writers at once: {violations:?}\n{}",
        g.logs()
    );
    assert!(samples > 20, "the prober ran ({samples} samples)");
    for slave in ["db3", "db4"] {
        replicates_from(&g, slave, new_writer).await;
        g.db(slave)
            .sync_with(g.db(new_writer), Duration::from_secs(20))
            .await
            .expect("the slave catches up with the new writer");
    }
    let missing = lost(g.db(new_writer), &writes).await;
    assert!(
        missing.is_empty(),
        "{name}: acknowledged writes lost: {missing:?}"
    );
    let shown = g.show().await;
    assert!(
        shown.contains(&format!("{new_writer}("))
            && shown.contains(&format!("writer({})", g.writer_vip)),
        "{shown}"
    );
    outage
}

/// The monitor replica that leads now (0-based), as the group says.
async fn leader_index(c: &Cluster) -> usize {
    let reply = c.command("mode").await;
    let leader = reply.leader.expect("a leader");
    leader
        .trim_start_matches("mon")
        .parse::<usize>()
        .expect("monN")
        - 1
}

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
