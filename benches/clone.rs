//! Rebuilding a host from a 1 GB data set while a client writes to the source: how fast the
//! copy goes and how long the source held writes back.
//!
//! `cargo bench --bench clone` (as root: network namespaces), after `cargo build --release
//! --workspace --bins` (the agents it starts are the built ones beside the benchmark's
//! `mmm_mond`). `MMM_BENCH_CLONE_ROWS` sets the rows of 200 bytes on the source (default
//! 3,500,000: about 1 GB of data files). Prints the data set's size, the bytes copied, the
//! copy time and rate, the whole rebuild's time, the source's commit and DDL blocking as
//! mariabackup's stages show them, and the slowest insert of a client writing every 5 ms to
//! the source before and during the rebuild.

#[path = "../tests/support/clone_lab.rs"]
mod clone_lab;

use std::time::{Duration, Instant};

use clone_lab::{clone_and_wait, matches_db1, Setup, Writer};
use mmm_agent::protocol::{CloneMode, ClonePhase};

const BATCH: usize = 100_000;

fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("MMM_BENCH_CLONE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_500_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let load = Instant::now();
        let s = Setup::start_with(
            rows.div_ceil(BATCH),
            BATCH,
            &["--innodb-buffer-pool-size=256M", "--innodb-log-file-size=128M"],
        )
        .await;
        let [db1, _, db3] = &s.dbs;
        let size = db1
            .scalar(
                "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA='clonetest'",
            )
            .await?
            .unwrap_or_default();
        println!(
            "data set: {} rows, {:.0} MiB of table data, loaded in {:.0} s",
            rows.div_ceil(BATCH) * BATCH,
            size.parse::<f64>().unwrap_or(0.0) / 1048576.0,
            load.elapsed().as_secs_f64()
        );
        let writer = Writer::start(db1);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = writer.take_slowest();
        let started = Instant::now();
        let p = clone_and_wait(&s.mon, &s.hosts[2], "db1", CloneMode::MasterSlave);
        let whole = started.elapsed();
        let during = writer.take_slowest();
        anyhow::ensure!(p.phase == ClonePhase::Done, "the rebuild failed: {:?}", p.error);
        let report = p.source_report.clone().unwrap_or_default();
        println!("copied: {:.0} MiB in {:.1} s: {:.1} MiB/s", p.bytes as f64 / 1048576.0, p.copy_ms as f64 / 1000.0, p.rate() / 1048576.0);
        println!("whole rebuild (copy, prepare, restart, replication running): {:.1} s", whole.as_secs_f64());
        println!(
            "source blocked commits {} ms and DDL {} ms (mariabackup's stages)",
            report.commit_blocked_ms, report.ddl_blocked_ms
        );
        println!(
            "slowest insert on the source, every 5 ms: {} ms in the 5 s before, {} ms during the rebuild",
            before.as_millis(),
            during.as_millis()
        );
        let acked = writer.finish().await;
        matches_db1(db3, db1, acked).await;
        println!("the rebuilt host holds all {acked} acknowledged writes and matches the source table by table");
        Ok(())
    })
}
