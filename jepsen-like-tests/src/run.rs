//! One chaos run: wait for a stable cluster, create the test tables, start the prober and the
//! clients, play the schedule (apply, hold, heal, wait until stable), then stop the clients,
//! wait for the replicas to converge and check the history. Writes `ops.jsonl`,
//! `samples.jsonl`, `faults.jsonl` and `summary.txt` to the output directory.

use crate::checker::{self, Overlap};
use crate::cluster::{self, Docker, Monitors, DB_HOSTS, READER_VIPS, WRITER_VIP};
use crate::history::{now, FaultRecord, Nanos, Op, OpKind, Outcome};
use crate::nemesis::{self, Step};
use crate::prober::Prober;
use crate::workload::{app_opts, Mix, Workload};
use anyhow::{bail, Context, Result};
use mmm_core::gtid::GtidPos;
use mmm_core::ClusterState;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which faults to play.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every kind of fault once; only the steps whose name contains `only`.
    Short { only: Option<String> },
    /// The faults the cluster heals from on its own today (the CI suite).
    Ci,
    /// Random steps from `seed` for `duration`; `healable`: only faults that do not move the
    /// writer unplanned (see `nemesis::random_step`).
    Random {
        seed: u64,
        duration: Duration,
        healable: bool,
    },
}

/// What a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub project: String,
    pub schedule: Schedule,
    pub out: PathBuf,
    pub mix: Mix,
    /// How long the cluster may take to be stable again after a fault is healed.
    pub stable_limit: Duration,
}

/// One check's verdict.
struct Check {
    name: String,
    passed: bool,
    detail: String,
}

fn check(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        passed,
        detail: detail.into(),
    }
}

fn secs(ns: Nanos) -> f64 {
    ns as f64 / 1e9
}

/// Prints a progress line with the time since `t0`.
fn say(t0: Nanos, text: &str) {
    println!("[{:7.1}s] {text}", secs(now().saturating_sub(t0)));
}

/// Waits up to `limit` until every host is ONLINE with one writer, doing what an operator
/// does: setting hosts that wait in AWAITING_RECOVERY online, and rebuilding a host the
/// monitors keep out for errant transactions (`mmm_control rejoin <host> --reclone`, once a
/// minute at most per host; its output is printed).
async fn wait_stable(
    docker: &Docker,
    monitors: &Monitors,
    limit: Duration,
) -> Option<ClusterState> {
    let start = Instant::now();
    let mut last_poke = Instant::now() - Duration::from_secs(10);
    let mut rebuilt: BTreeMap<String, Instant> = BTreeMap::new();
    while start.elapsed() < limit {
        if let Some(state) = monitors.state().await {
            if cluster::stable(&state) {
                return Some(state);
            }
            if last_poke.elapsed() >= Duration::from_secs(2) {
                last_poke = Instant::now();
                for host in cluster::awaiting_recovery(&state) {
                    let _ = docker.control(&["set_online", &host]).await;
                }
            }
            for host in cluster::with_errant_transactions(&state) {
                if rebuilt
                    .get(&host)
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
                {
                    continue;
                }
                rebuilt.insert(host.clone(), Instant::now());
                println!(
                    "          {host} has errant transactions: mmm_control rejoin {host} --reclone"
                );
                let out = docker.control(&["rejoin", &host, "--reclone"]).await;
                let text = match out {
                    Ok(t) => t,
                    Err(e) => format!("{e:#}"),
                };
                // Its verdict and what it waited for, not the progress lines.
                let progress = format!("{host}: ");
                for line in text
                    .lines()
                    .filter(|l| !l.starts_with(&progress) && !l.trim().is_empty())
                {
                    println!("          {line}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

async fn connect(ip: &str) -> Result<Conn> {
    tokio::time::timeout(Duration::from_secs(3), Conn::new(app_opts(ip)))
        .await
        .with_context(|| format!("connecting to {ip}: no answer within 3 s"))?
        .with_context(|| format!("connecting to {ip}"))
}

/// Creates the test tables through the writer VIP and waits until every host has them.
async fn create_tables() -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let mut c = connect(WRITER_VIP).await?;
            c.query_drop(
                "DROP DATABASE IF EXISTS jepsen; CREATE DATABASE jepsen; \
                 CREATE TABLE jepsen.w (v BIGINT UNSIGNED PRIMARY KEY, sid INT UNSIGNED NOT NULL, p INT UNSIGNED NOT NULL); \
                 CREATE TABLE jepsen.c (id INT PRIMARY KEY, n BIGINT UNSIGNED NOT NULL); \
                 INSERT INTO jepsen.c VALUES (1, 0)",
            )
            .await?;
            anyhow::Ok(())
        };
        match attempt.await {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("creating the test tables through the writer VIP"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    for (host, ip) in DB_HOSTS {
        loop {
            let has = async {
                let mut c = connect(ip).await?;
                let n: Option<u64> = c.query_first("SELECT COUNT(*) FROM jepsen.c").await?;
                anyhow::Ok(n == Some(1))
            };
            if matches!(has.await, Ok(true)) {
                break;
            }
            if Instant::now() > deadline {
                bail!("{host} does not have the test tables 30 s after they were created");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// A host's executed GTID position: binary log merged with what it applied as a slave.
async fn position(ip: &str) -> Result<GtidPos> {
    let mut c = connect(ip).await?;
    let row: Option<(String, String)> = c
        .query_first("SELECT @@gtid_binlog_pos, @@gtid_slave_pos")
        .await?;
    let (binlog, slave) = row.unwrap_or_default();
    let parse =
        |text: &str| GtidPos::parse(text).with_context(|| format!("{ip}: GTID position '{text}'"));
    Ok(parse(&binlog)?.merge(&parse(&slave)?))
}

/// Waits up to `limit` for every host's position to equal the writer's; returns the writer's
/// position and each host's last one.
async fn converge(writer: &str, limit: Duration) -> (String, BTreeMap<String, String>, bool) {
    let ip_of = |h: &str| DB_HOSTS.iter().find(|(n, _)| *n == h).map(|(_, ip)| *ip);
    let start = Instant::now();
    loop {
        let w = match ip_of(writer) {
            Some(ip) => position(ip).await.ok(),
            None => None,
        };
        let mut seen = BTreeMap::new();
        let mut all = w.is_some();
        for (host, ip) in DB_HOSTS {
            match position(ip).await {
                Ok(p) => {
                    if let Some(w) = &w {
                        all &= p.covers(w) && w.covers(&p);
                    }
                    seen.insert(host.to_string(), p.to_string());
                }
                Err(e) => {
                    all = false;
                    seen.insert(host.to_string(), format!("unreadable: {e:#}"));
                }
            }
        }
        let wp = w
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unreadable".into());
        if all || start.elapsed() > limit {
            return (wp, seen, all);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every value in `jepsen.w` on a host, and its counter.
async fn final_data(ip: &str) -> Result<(BTreeSet<u64>, u64)> {
    let mut c = connect(ip).await?;
    let vs: Vec<u64> = c.query("SELECT v FROM jepsen.w").await?;
    let n: Option<u64> = c.query_first("SELECT n FROM jepsen.c WHERE id = 1").await?;
    Ok((vs.into_iter().collect(), n.unwrap_or(0)))
}

fn write_jsonl<T: serde::Serialize>(path: &std::path::Path, items: &[T]) -> Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn describe_overlaps(o: &[Overlap], t0: Nanos) -> String {
    let shown: Vec<String> = o
        .iter()
        .take(5)
        .map(|o| {
            format!(
                "{} and {} at {:.3}-{:.3} s",
                o.hosts.0,
                o.hosts.1,
                secs(o.from.saturating_sub(t0)),
                secs(o.to.saturating_sub(t0))
            )
        })
        .collect();
    format!("{} overlap(s): {}", o.len(), shown.join("; "))
}

/// Plays the schedule; true when every check passed.
pub async fn run(opts: Options) -> Result<bool> {
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let docker = Arc::new(Docker::new(&opts.project).await?);
    let token = docker
        .exec("client", &["cat", cluster::API_TOKEN_FILE])
        .await
        .context("reading the API token in the client container")?;
    let monitors = Monitors::new(&token)?;
    let t0 = now();
    say(t0, "waiting for every host ONLINE with one writer");
    let Some(state) = wait_stable(&docker, &monitors, Duration::from_secs(180)).await else {
        bail!("the cluster is not stable (every host ONLINE, one writer) after 180 s");
    };
    say(t0, &format!("stable: {}", cluster::describe(&state)));
    create_tables().await?;
    let prober = Prober::start(docker.clone());
    let workload = Workload::start(opts.mix, WRITER_VIP, &READER_VIPS);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (ok, fail, unknown) = workload.counts();
    say(
        t0,
        &format!("workload running: {ok} ok, {fail} failed, {unknown} unknown"),
    );
    if ok == 0 {
        bail!("no operation succeeded in the first 5 s: the writer VIP {WRITER_VIP} is not reachable from here");
    }

    let mut steps_done: Vec<(Step, FaultRecord)> = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(match opts.schedule {
        Schedule::Random { seed, .. } => seed,
        Schedule::Short { .. } | Schedule::Ci => 0,
    });
    let steps = match opts.schedule {
        Schedule::Ci => nemesis::ci_schedule(),
        _ => nemesis::short_schedule(),
    };
    let mut fixed = steps.into_iter().filter(|step| match &opts.schedule {
        Schedule::Short { only: Some(only) } => step.kind().contains(only.as_str()),
        _ => true,
    });
    let run_start = Instant::now();
    loop {
        let step = match &opts.schedule {
            Schedule::Short { .. } | Schedule::Ci => match fixed.next() {
                Some(s) => s,
                None => break,
            },
            Schedule::Random {
                duration, healable, ..
            } => {
                if run_start.elapsed() >= *duration {
                    break;
                }
                nemesis::random_step(&mut rng, *healable)
            }
        };
        let before = monitors.state().await.as_ref().and_then(cluster::writer);
        let mut targets = Vec::new();
        for fault in &step.faults {
            match nemesis::resolve(fault.target, &monitors).await {
                Ok(svc) => targets.push((*fault, svc)),
                Err(e) => say(t0, &format!("{fault}: not applied: {e:#}")),
            }
        }
        let start = now();
        let mut applied = Vec::new();
        for (fault, svc) in &targets {
            match nemesis::apply(&docker, *fault, svc).await {
                Ok(a) => applied.push(a),
                Err(e) => say(t0, &format!("{fault} on {svc}: {e:#}")),
            }
        }
        let names: Vec<String> = targets.iter().map(|(_, s)| s.clone()).collect();
        say(t0, &format!("{} on {}", step.kind(), names.join("+")));
        tokio::time::sleep(Duration::from_millis(step.hold_ms)).await;
        let healed = now();
        for a in &applied {
            if let Err(e) = nemesis::heal(&docker, a).await {
                say(t0, &format!("healing {} on {}: {e:#}", a.fault, a.svc));
            }
        }
        let after_state = wait_stable(&docker, &monitors, opts.stable_limit).await;
        let stable = after_state.as_ref().map(|_| now());
        let after = after_state.as_ref().and_then(cluster::writer);
        let record = FaultRecord {
            kind: step.kind(),
            targets: names,
            start,
            healed,
            stable,
            writer_before: before,
            writer_after: after,
        };
        let outage = workload.outage(start, stable.unwrap_or(healed));
        say(
            t0,
            &format!(
                "  healed; {}; writer {} -> {}; longest write gap {:.3} s",
                match stable {
                    Some(s) => format!("stable {:.1} s after healing", secs(s - healed)),
                    None => format!("NOT stable within {:?}", opts.stable_limit),
                },
                record.writer_before.as_deref().unwrap_or("none"),
                record.writer_after.as_deref().unwrap_or("none"),
                secs(outage)
            ),
        );
        let unstable = stable.is_none();
        steps_done.push((step, record));
        if unstable {
            break;
        }
        let quiet = match opts.schedule {
            Schedule::Short { .. } | Schedule::Ci => 3000,
            Schedule::Random { .. } => rand::Rng::gen_range(&mut rng, 1000..5000),
        };
        tokio::time::sleep(Duration::from_millis(quiet)).await;
    }

    say(t0, "schedule done; writing for 3 more seconds");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ops = workload.finish().await;
    let final_state = wait_stable(&docker, &monitors, Duration::from_secs(60)).await;
    let writer = final_state.as_ref().and_then(cluster::writer);
    say(t0, "waiting for the replicas to converge");
    let (writer_pos, positions, converged) = match &writer {
        Some(w) => converge(w, Duration::from_secs(60)).await,
        None => ("no writer".into(), BTreeMap::new(), false),
    };
    // Addresses read after the last operation: the VIPs once stable.
    let settled = now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let addresses = prober.latest_addresses(settled);
    let samples = prober.finish().await;
    let end = now();

    let mut checks = Vec::new();
    let acked = ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Write { .. }) && o.outcome == Outcome::Ok)
        .count();
    let mut data = BTreeMap::new();
    for (host, ip) in DB_HOSTS {
        match final_data(ip).await {
            Ok(d) => {
                data.insert(host, d);
            }
            Err(e) => checks.push(check(
                format!("final data of {host}"),
                false,
                format!("{e:#}"),
            )),
        }
    }
    for (host, (present, n)) in &data {
        let lost = checker::lost(&ops, present);
        checks.push(check(
            format!("no acknowledged write lost on {host}"),
            lost.is_empty(),
            if lost.is_empty() {
                format!("all {acked} acknowledged writes present")
            } else {
                format!(
                    "{} of {acked} missing, e.g. {:?}",
                    lost.len(),
                    &lost[..lost.len().min(5)]
                )
            },
        ));
        let phantom = checker::phantom(&ops, present);
        checks.push(check(
            format!("no refused write present on {host}"),
            phantom.is_empty(),
            format!(
                "{} present: {:?}",
                phantom.len(),
                &phantom[..phantom.len().min(5)]
            ),
        ));
        let c = checker::counter(&ops, *n);
        checks.push(check(
            format!("counter on {host}"),
            c.is_ok(),
            c.err().unwrap_or_else(|| format!("{n}")),
        ));
    }
    let distinct: BTreeSet<(usize, u64, Option<u64>)> = data
        .values()
        .map(|(p, n)| (p.len(), *n, p.iter().next_back().copied()))
        .collect();
    checks.push(check(
        "every host has the same rows and counter",
        distinct.len() == 1 && data.len() == DB_HOSTS.len(),
        format!("{distinct:?}"),
    ));
    checks.push(check(
        "replicas converged to the writer's GTID position",
        converged,
        format!(
            "writer {} at {writer_pos}; {positions:?}",
            writer.as_deref().unwrap_or("none")
        ),
    ));
    let gap = 500_000_000;
    let writable = checker::overlaps(&samples, gap, checker::writable);
    let n_ro = samples
        .iter()
        .filter(|s| checker::writable(s).is_some())
        .count();
    checks.push(check(
        "never two hosts with read_only=0 at once",
        writable.is_empty(),
        if writable.is_empty() {
            format!("{n_ro} read_only samples")
        } else {
            describe_overlaps(&writable, t0)
        },
    ));
    let vip = checker::overlaps(&samples, gap, checker::holds_vip(WRITER_VIP.to_string()));
    checks.push(check(
        "never the writer VIP on two hosts at once",
        vip.is_empty(),
        if vip.is_empty() {
            format!("{} address samples", samples.len() - n_ro)
        } else {
            describe_overlaps(&vip, t0)
        },
    ));
    let holders = |ip: &str| -> Vec<String> {
        addresses
            .iter()
            .filter(|(_, a)| a.as_ref().is_some_and(|a| a.iter().any(|x| x == ip)))
            .map(|(h, _)| h.clone())
            .collect()
    };
    let w_holders = holders(WRITER_VIP);
    checks.push(check(
        "once stable, the writer VIP is on the writer only",
        writer.is_some() && w_holders == vec![writer.clone().unwrap_or_default()],
        format!("{WRITER_VIP} on {w_holders:?}, writer {writer:?}"),
    ));
    let readers: Vec<(String, Vec<String>)> = READER_VIPS
        .iter()
        .map(|ip| (ip.to_string(), holders(ip)))
        .collect();
    checks.push(check(
        "once stable, every reader VIP is on exactly one host",
        readers.iter().all(|(_, h)| h.len() == 1),
        format!("{readers:?}"),
    ));
    let unstable: Vec<&str> = steps_done
        .iter()
        .filter(|(_, r)| r.stable.is_none())
        .map(|(_, r)| r.kind.as_str())
        .collect();
    checks.push(check(
        "every fault healed to a stable cluster",
        unstable.is_empty() && final_state.is_some(),
        if unstable.is_empty() {
            format!("{} steps", steps_done.len())
        } else {
            format!("not stable after: {unstable:?}")
        },
    ));

    let records: Vec<FaultRecord> = steps_done.iter().map(|(_, r)| r.clone()).collect();
    write_jsonl(&opts.out.join("ops.jsonl"), &ops)?;
    write_jsonl(&opts.out.join("samples.jsonl"), &samples)?;
    write_jsonl(&opts.out.join("faults.jsonl"), &records)?;
    let summary = summary(&opts, &ops, &records, &checks, t0, end);
    std::fs::write(opts.out.join("summary.txt"), &summary)?;
    print!("{summary}");
    Ok(checks.iter().all(|c| c.passed))
}

fn summary(
    opts: &Options,
    ops: &[Op],
    records: &[FaultRecord],
    checks: &[Check],
    t0: Nanos,
    end: Nanos,
) -> String {
    let mut s = String::new();
    let schedule = match &opts.schedule {
        Schedule::Short { only: None } => "short (every fault once)".to_string(),
        Schedule::Short { only: Some(o) } => format!("short, only steps with '{o}'"),
        Schedule::Ci => "ci (the faults the cluster heals from on its own)".to_string(),
        Schedule::Random {
            seed,
            duration,
            healable,
        } => format!(
            "random{}, seed {seed}, {} min",
            if *healable { " (healable faults)" } else { "" },
            duration.as_secs() / 60
        ),
    };
    let _ = writeln!(
        s,
        "\n=== mmm-raft chaos run: {schedule}; {} steps in {:.0} s",
        records.len(),
        secs(end - t0)
    );
    let _ = writeln!(s, "history: {}", opts.out.display());
    type Pick = fn(&OpKind) -> bool;
    let picks: [(&str, Pick); 3] = [
        ("writes", |k| matches!(k, OpKind::Write { .. })),
        ("increments", |k| *k == OpKind::Incr),
        ("reads", |k| matches!(k, OpKind::Read { .. })),
    ];
    for (name, pick) in picks {
        let n = |o| {
            ops.iter()
                .filter(|op| pick(&op.kind) && op.outcome == o)
                .count()
        };
        let _ = writeln!(
            s,
            "{name:>10}: {} ok, {} failed, {} unknown",
            n(Outcome::Ok),
            n(Outcome::Fail),
            n(Outcome::Unknown)
        );
    }
    // The fault column is as wide as the longest fault name.
    let w = records
        .iter()
        .map(|r| r.kind.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        s,
        "\n  {:>4} {:>7}  {:<w$}  {:<17}  {:<19}  {:>7}  stable",
        "step", "at", "fault", "targets", "writer", "outage"
    );
    let mut by_kind: BTreeMap<String, Vec<(Nanos, bool)>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let to = r.stable.unwrap_or(r.healed);
        let o = checker::outage(ops, r.start, to);
        let moved = r.writer_before != r.writer_after;
        by_kind.entry(r.kind.clone()).or_default().push((o, moved));
        let _ = writeln!(
            s,
            "  {:>4} {:>6.1}s  {:<w$}  {:<17}  {:<19}  {:>6.2}s  {}",
            i + 1,
            secs(r.start.saturating_sub(t0)),
            r.kind,
            r.targets.join("+"),
            format!(
                "{}->{}",
                r.writer_before.as_deref().unwrap_or("-"),
                r.writer_after.as_deref().unwrap_or("-")
            ),
            secs(o),
            match r.stable {
                Some(t) => format!("{:.1}s after heal", secs(t - r.healed)),
                None => "NO".into(),
            }
        );
    }
    let _ = writeln!(s, "\n  write outage per fault type (longest gap between acknowledged writes, fault to stable)");
    let _ = writeln!(
        s,
        "  {:<w$}  {:>3}  {:>7}  {:>7}  {:>7}  writer moved",
        "fault", "n", "min", "median", "max"
    );
    for (kind, mut v) in by_kind {
        v.sort();
        let moved = v.iter().filter(|(_, m)| *m).count();
        let _ = writeln!(
            s,
            "  {:<w$}  {:>3}  {:>6.2}s  {:>6.2}s  {:>6.2}s  {moved}/{}",
            kind,
            v.len(),
            secs(v[0].0),
            secs(v[v.len() / 2].0),
            secs(v[v.len() - 1].0),
            v.len()
        );
    }
    let _ = writeln!(s, "\n  checks");
    for c in checks {
        let _ = writeln!(
            s,
            "  {}  {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let passed = checks.iter().all(|c| c.passed);
    let _ = writeln!(s, "\nRESULT: {}", if passed { "PASS" } else { "FAIL" });
    s
}
