//! Writes the seed corpora under `fuzz/corpus/<target>/`: real Raft RPCs and stored values
//! encoded with `mmm_raft::codec`, the API bodies built from their types with serde_json,
//! GTID texts, basic-auth headers, and the project's real config files (passwords replaced
//! by `SECRETMARK`). Files are named after what they hold; running it again rewrites them.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example
//! make_seeds` (see docs/fuzzing.md).

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use mmm_agent::ops::{BinlogPos, ReplicaStatus, ServerStatus};
use mmm_agent::protocol::{
    BackupReport, BackupStatus, ClearBadRoles, Cleared, CloneMode, ClonePhase, CloneProgress,
    CloneRequest, Pong, Repoint, RepointReply, SetStatus, StatusReply, SystemStatus, WriterState,
};
use mmm_core::api::{
    ApiError, CommandReply, CommandRequest, GroupStatus, HostReport, LeaderInfo, LeaseGrant,
    LeaseRequest, Member, ReportReply, StateReply,
};
use mmm_core::observe::{Observed, ReplicaReport};
use mmm_core::{
    agent_status, step, CheckKind, CheckReport, ClusterState, Command, Event, HostName,
    StartupReport, Time,
};
use mmm_fuzz::seed_topology;
use mmm_raft::codec;
use mmm_raft::typ::{Entry, LogId, SnapshotMeta, StoredMembership, Vote};
use mmm_raft::{AppliedState, Request, TypeConfig};
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership, SnapshotSegmentId};
use serde::Serialize;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    raft(&corpus)?;
    monitor_api(&corpus)?;
    agent(&corpus)?;
    basic_auth(&corpus)?;
    gtid(&corpus)?;
    config(&corpus, root.parent().ok_or("fuzz/ has no parent")?)?;
    println!("seeds written under {}", corpus.display());
    Ok(())
}

/// Writes one seed.
fn write(corpus: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = corpus.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn json<T: Serialize>(corpus: &Path, target: &str, name: &str, value: &T) -> Result<()> {
    write(corpus, target, name, &serde_json::to_vec_pretty(value)?)
}

fn encoded<T: Serialize>(corpus: &Path, target: &str, name: &str, value: &T) -> Result<()> {
    write(corpus, target, name, &codec::encode("seed", value)?)
}

fn log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

/// The seed cluster after startup and a round of passing checks, and the events that got it
/// there.
fn cluster() -> Result<(ClusterState, Vec<Event>)> {
    let topo = seed_topology();
    let mut st = ClusterState::new(&topo, Time(0));
    let checks: Vec<CheckReport> = topo
        .hosts
        .keys()
        .flat_map(|host| {
            [
                CheckKind::Ping,
                CheckKind::Mysql,
                CheckKind::RepThreads,
                CheckKind::RepBacklog,
            ]
            .map(|check| CheckReport {
                host: host.clone(),
                check,
                ok: true,
                message: "OK".to_string(),
            })
        })
        .collect();
    let events = vec![
        Event::Startup(StartupReport::default()),
        Event::Checks(checks),
        Event::Tick,
        Event::Admin(Command::SetOnline("db3".to_string())),
    ];
    for (i, event) in events.iter().enumerate() {
        // A refused event (e.g. set_online of a host already ONLINE) leaves the state as is.
        let _ = step(&topo, &mut st, Time(1_000 * (i as u64 + 1)), event.clone());
    }
    Ok((st, events))
}

fn membership() -> Membership<u64, BasicNode> {
    let voters = BTreeSet::from([1, 2, 3]);
    let nodes = BTreeMap::from([
        (1, BasicNode::new("10.0.0.11:9988")),
        (2, BasicNode::new("10.0.0.12:9988")),
        (3, BasicNode::new("10.0.0.13:9988")),
    ]);
    Membership::new(vec![voters], nodes)
}

fn raft(corpus: &Path) -> Result<()> {
    let topo = seed_topology();
    let (st, events) = cluster()?;
    let mut entries: Vec<Entry> = vec![
        Entry {
            log_id: log_id(1, 1, 1),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(1, 1, 2),
            payload: EntryPayload::Membership(membership()),
        },
        Entry {
            log_id: log_id(1, 1, 3),
            payload: EntryPayload::Normal(Request::Configure {
                topology: topo.clone(),
                now: Time(1_000),
            }),
        },
    ];
    for (i, event) in events.into_iter().enumerate() {
        entries.push(Entry {
            log_id: log_id(1, 1, 4 + i as u64),
            payload: EntryPayload::Normal(Request::Event {
                now: Time(2_000 + i as u64),
                event,
            }),
        });
    }
    let vote = Vote::new_committed(1, 1);
    let last = entries.last().map(|e| e.log_id);
    let stored = StoredMembership::new(Some(log_id(1, 1, 2)), membership());
    let applied = AppliedState {
        last_applied: last,
        membership: stored.clone(),
        topology: Some(topo),
        state: Some(st),
    };
    let meta = SnapshotMeta {
        last_log_id: last,
        last_membership: stored,
        snapshot_id: "1-1-7-1".to_string(),
    };
    let snapshot_data = codec::encode("snapshot", &applied)?;

    let t = "raft_rpc";
    encoded(
        corpus,
        t,
        "append_heartbeat",
        &AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: last,
            leader_commit: last,
            entries: Vec::new(),
        },
    )?;
    encoded(
        corpus,
        t,
        "append_entries",
        &AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: None,
            leader_commit: Some(log_id(1, 1, 2)),
            entries: entries.clone(),
        },
    )?;
    encoded(
        corpus,
        t,
        "vote_request",
        &VoteRequest::<u64>::new(Vote::new(2, 3), last),
    )?;
    encoded(
        corpus,
        t,
        "snapshot_request",
        &InstallSnapshotRequest::<TypeConfig> {
            vote,
            meta: meta.clone(),
            offset: 0,
            data: snapshot_data.clone(),
            done: true,
        },
    )?;
    let ok: std::result::Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Ok(AppendEntriesResponse::Success);
    encoded(corpus, t, "append_success", &ok)?;
    let conflict: std::result::Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Ok(AppendEntriesResponse::HigherVote(Vote::new(3, 2)));
    encoded(corpus, t, "append_higher_vote", &conflict)?;
    let fatal: std::result::Result<AppendEntriesResponse<u64>, RaftError<u64>> =
        Err(RaftError::Fatal(Fatal::Stopped));
    encoded(corpus, t, "append_fatal", &fatal)?;
    let granted: std::result::Result<VoteResponse<u64>, RaftError<u64>> =
        Ok(VoteResponse::new(Vote::new(2, 3), last, true));
    encoded(corpus, t, "vote_granted", &granted)?;
    let installed: std::result::Result<
        InstallSnapshotResponse<u64>,
        RaftError<u64, InstallSnapshotError>,
    > = Ok(InstallSnapshotResponse { vote });
    encoded(corpus, t, "snapshot_installed", &installed)?;
    let mismatch: std::result::Result<
        InstallSnapshotResponse<u64>,
        RaftError<u64, InstallSnapshotError>,
    > = Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
        SnapshotMismatch {
            expect: SnapshotSegmentId {
                id: "1-1-7-1".to_string(),
                offset: 0,
            },
            got: SnapshotSegmentId {
                id: "1-1-7-2".to_string(),
                offset: 100,
            },
        },
    )));
    encoded(corpus, t, "snapshot_mismatch", &mismatch)?;

    let t = "raft_store";
    for entry in &entries {
        encoded(corpus, t, &format!("entry_{}", entry.log_id.index), entry)?;
    }
    encoded(corpus, t, "vote", &vote)?;
    encoded(corpus, t, "committed", &log_id(1, 1, 7))?;
    encoded(corpus, t, "group_id", &"mmm-7f3a9c")?;
    write(corpus, t, "applied_state", &snapshot_data)?;
    #[derive(Serialize)]
    struct StoredSnapshot {
        meta: SnapshotMeta,
        data: Vec<u8>,
    }
    encoded(
        corpus,
        t,
        "stored_snapshot",
        &StoredSnapshot {
            meta,
            data: snapshot_data,
        },
    )?;
    Ok(())
}

fn monitor_api(corpus: &Path) -> Result<()> {
    let t = "monitor_api";
    let lines = [
        "help",
        "ping",
        "show",
        "checks",
        "checks db1",
        "checks all rep_backlog",
        "mode",
        "set_active",
        "set_manual",
        "set_passive",
        "set_online db1",
        "set_offline db3",
        "move_role writer db2",
        "move_role --force writer db2",
        "set_ip 10.0.0.101 db4",
        "switchover db2",
        "add_monitor mon4 10.0.0.14:9988",
        "remove_monitor mon3",
        "frobnicate",
    ];
    for (i, line) in lines.iter().enumerate() {
        json(
            corpus,
            t,
            &format!("command_{i:02}"),
            &CommandRequest {
                line: line.to_string(),
                linearizable: i % 2 == 0,
            },
        )?;
    }
    json(
        corpus,
        t,
        "lease_request",
        &LeaseRequest {
            host: "db1".into(),
            epoch: 4,
        },
    )?;
    json(
        corpus,
        t,
        "host_report",
        &HostReport {
            host: "db2".into(),
            message: "mysqld does not answer: Connection refused".into(),
        },
    )?;
    let verdicts = ["db1", "db2", "db3"]
        .into_iter()
        .map(|h| Observed {
            host: HostName::from(h),
            check: CheckKind::Mysql,
            ok: h != "db2",
            message: if h == "db2" {
                "ERROR: Connect error (host = 10.0.0.2:3306, user = mmm_monitor)".into()
            } else {
                "OK".into()
            },
        })
        .collect();
    json(
        corpus,
        t,
        "replica_report",
        &ReplicaReport {
            replica: "mon2".into(),
            network_up: true,
            verdicts,
        },
    )?;
    json(
        corpus,
        t,
        "leader_info",
        &LeaderInfo {
            replica: "mon2".into(),
            leader: Some("mon1".into()),
            leader_addr: Some("10.0.0.11:9988".into()),
            term: 3,
        },
    )?;
    json(
        corpus,
        t,
        "command_reply",
        &CommandReply {
            reply: "OK: State of 'db1' changed to ONLINE. Now you can wait some time and check its new roles!".into(),
            ok: true,
            replica: "mon1".into(),
            leader: Some("mon1".into()),
            log_index: Some(42),
            stale: false,
        },
    )?;
    json(
        corpus,
        t,
        "lease_grant",
        &LeaseGrant {
            host: "db1".into(),
            epoch: 4,
            lease_ms: 1_500,
            renew_ms: 300,
            replica: "mon1".into(),
        },
    )?;
    let (st, _) = cluster()?;
    json(
        corpus,
        t,
        "state_reply",
        &StateReply {
            replica: "mon1".into(),
            log_index: Some(7),
            topology: Some(seed_topology()),
            state: Some(st),
        },
    )?;
    json(
        corpus,
        t,
        "report_reply",
        &ReportReply {
            confirmed: true,
            detail: "ERROR: Connect error".into(),
        },
    )?;
    json(
        corpus,
        t,
        "group_status",
        &GroupStatus {
            replica: "mon1".into(),
            id: 1,
            raft_state: "Leader".into(),
            term: 3,
            leader: Some("mon1".into()),
            last_log_index: Some(42),
            last_applied_index: Some(42),
            replication: vec![("mon2".into(), Some(42)), ("mon3".into(), None)],
            members: vec![Member {
                name: "mon1".into(),
                id: 1,
                addr: "10.0.0.11:9988".into(),
            }],
            millis_since_quorum_ack: Some(12),
            snapshot_index: Some(40),
            purged_index: None,
        },
    )?;
    json(
        corpus,
        t,
        "api_error",
        &ApiError {
            error: "the monitor group has no leader".into(),
        },
    )?;
    Ok(())
}

fn agent(corpus: &Path) -> Result<()> {
    let t = "agent_protocol";
    let topo = seed_topology();
    let (st, _) = cluster()?;
    let status = agent_status(&topo, &st, &HostName::from("db1"));
    json(
        corpus,
        t,
        "set_status",
        &SetStatus {
            status: status.clone(),
            catch_up_to: Some("0-1-100,1-2-5".into()),
            peers: vec!["db3".into(), "db4".into()],
            offline_peers: vec!["db4".into()],
            term: 3,
        },
    )?;
    json(
        corpus,
        t,
        "set_status_plain",
        &SetStatus::from(status.clone()),
    )?;
    json(
        corpus,
        t,
        "clear_bad_roles",
        &ClearBadRoles {
            host: "db3".into(),
            epoch: 4,
        },
    )?;
    json(
        corpus,
        t,
        "repoint",
        &Repoint {
            host: "db3".into(),
            master: "db1".into(),
        },
    )?;
    json(
        corpus,
        t,
        "clone_request",
        &CloneRequest {
            host: "db4".into(),
            source: "db3".into(),
            mode: CloneMode::SlaveSlave,
            from_dir: Some(PathBuf::from("/var/lib/mmm-db/backups/db3")),
        },
    )?;
    json(
        corpus,
        t,
        "pong",
        &Pong {
            host: "db1".into(),
            uptime_secs: 86_400.25,
            epoch: 4,
            told: None,
        },
    )?;
    json(
        corpus,
        t,
        "status_reply",
        &StatusReply {
            host: "db1".into(),
            epoch: 4,
            done: vec!["added VIP 10.0.0.100 (writer)".into()],
            failed: vec![],
            writer: WriterState::Active {
                lease_left_ms: 1_200,
            },
            uptime_secs: 86_400.25,
            position: Some("0-1-100".into()),
        },
    )?;
    let server = ServerStatus {
        version: "10.11.6-MariaDB".into(),
        mariadb: true,
        read_only: false,
        super_read_only: None,
        uptime_secs: 3_600,
        binlog: Some(BinlogPos {
            file: "mysql-bin.000003".into(),
            pos: 1_234,
        }),
        gtid_executed: Some("0-1-100".into()),
        replica: Some(ReplicaStatus {
            master_host: "10.0.0.2".into(),
            master_port: 3306,
            io_running: true,
            sql_running: true,
            seconds_behind: Some(0),
            received: BinlogPos {
                file: "mysql-bin.000007".into(),
                pos: 4,
            },
            applied: BinlogPos {
                file: "mysql-bin.000007".into(),
                pos: 4,
            },
            using_gtid: true,
            gtid_received: Some("0-2-55".into()),
            last_io_error: None,
            last_sql_error: None,
        }),
    };
    json(
        corpus,
        t,
        "system_status",
        &SystemStatus {
            host: "db1".into(),
            uptime_secs: 86_400.25,
            epoch: 4,
            told: Some(status),
            writer: WriterState::Waiting {
                reason: "no lease yet".into(),
            },
            mysql: Some(server),
            mysql_error: None,
            vips: vec![IpAddr::from([10, 0, 0, 100])],
            vips_error: None,
        },
    )?;
    json(
        corpus,
        t,
        "cleared",
        &Cleared {
            removed: vec![IpAddr::from([10, 0, 0, 101])],
            failed: vec!["10.0.0.102: Operation not permitted".into()],
        },
    )?;
    json(
        corpus,
        t,
        "repoint_reply",
        &RepointReply {
            host: "db3".into(),
            done: "replicating from db1 (Gtid)".into(),
        },
    )?;
    let report = BackupReport {
        bytes: 10_485_760,
        duration_ms: 4_000,
        ddl_blocked_ms: 30,
        commit_blocked_ms: 12,
        gtid: Some("0-1-100".into()),
        binlog_state: Some("0-1-100,0-2-50".into()),
        master: None,
        error: None,
    };
    json(
        corpus,
        t,
        "clone_progress",
        &CloneProgress {
            host: "db4".into(),
            source: "db3".into(),
            mode: CloneMode::MasterSlave,
            phase: ClonePhase::Copying,
            bytes: 5_000_000,
            estimated_bytes: Some(10_485_760),
            elapsed_ms: 2_000,
            copy_ms: 1_500,
            master: Some("db1".into()),
            gtid: None,
            source_report: Some(report.clone()),
            done: vec!["copying from db3".into()],
            error: None,
        },
    )?;
    json(corpus, t, "backup_report", &report)?;
    json(
        corpus,
        t,
        "backup_status",
        &BackupStatus {
            host: "db3".into(),
            taken_at: "2024-05-01T12:00:00Z".into(),
            gtid: "0-1-100".into(),
            binlog_state: "0-1-100,0-2-50".into(),
            master: Some("db1".into()),
            report: Some(report),
        },
    )?;
    Ok(())
}

fn basic_auth(corpus: &Path) -> Result<()> {
    let t = "agent_basic_auth";
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let seeds: [(&str, String); 5] = [
        (
            "good",
            format!("mmm_repl\0pw\0Basic {}", b64("mmm_repl:pw")),
        ),
        (
            "colon_in_password",
            format!("u\0a:b\0Basic {}", b64("u:a:b")),
        ),
        (
            "wrong",
            format!("mmm_repl\0pw\0Basic {}", b64("mmm_repl:px")),
        ),
        ("bearer", "Bearer abc".to_string()),
        ("header_only", format!("Basic  {} ", b64("mmm_repl:pw"))),
    ];
    for (name, seed) in seeds {
        write(corpus, t, name, seed.as_bytes())?;
    }
    Ok(())
}

fn gtid(corpus: &Path) -> Result<()> {
    let t = "gtid_text";
    let seeds = [
        ("position", "0-1-100"),
        ("positions", "0-1-100,1-2-5|0-1-99, 1-2-7\n"),
        ("states", "0-1-100,0-2-105,1-3-7|0-1-140,0-2-100"),
        ("empty_and_one", "|2-5-9"),
        ("large", "0-4294967295-18446744073709551614|0-1-0"),
        (
            "errant_message",
            "ERROR: Errant transactions not on the active master db1: at least 6 (0-2-101..0-2-105,up to 0-3-9)",
        ),
        ("binlog_info", "mysql-bin.000003\t1234\t0-1-100\n"),
    ];
    for (name, seed) in seeds {
        write(corpus, t, name, seed.as_bytes())?;
    }
    Ok(())
}

/// Replaces the value of every password key with `SECRETMARK`.
fn mark_passwords(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let key = line.split_whitespace().next().unwrap_or_default();
        if key.ends_with("_password") {
            out.push_str(&format!("{indent}{key} SECRETMARK"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn config(corpus: &Path, repo: &Path) -> Result<()> {
    let t = "config_load";
    let read = |p: &str| -> Result<String> { Ok(std::fs::read_to_string(repo.join(p))?) };
    // (seed name, main file, included mmm_common.conf)
    let mut seeds: Vec<(String, String, Option<String>)> = Vec::new();
    let docker_common = read("docker/etc/mmm_common.conf")?;
    for main in [
        "docker/etc/monitor1/mmm_mon.conf",
        "docker/etc/client/mmm_mon.conf",
        "docker/etc/master1/mmm_agent.conf",
        "docker/etc/slave1/mmm_tools.conf",
    ] {
        let name = main.trim_start_matches("docker/etc/").replace('/', "_");
        seeds.push((
            format!("docker_{name}"),
            read(main)?,
            Some(docker_common.clone()),
        ));
    }
    for dir in ["seed", "mmm", "group"] {
        let common = read(&format!("config/tests/data/{dir}/mmm_common.conf")).ok();
        for file in ["mmm_mon.conf", "mmm_agent.conf", "mmm_tools.conf"] {
            if let Ok(main) = read(&format!("config/tests/data/{dir}/{file}")) {
                seeds.push((format!("tests_{dir}_{file}"), main, common.clone()));
            }
        }
        if let Some(common) = common {
            seeds.push((format!("tests_{dir}_common_alone"), common, None));
        }
    }
    for (name, main, common) in seeds {
        let mut bytes = mark_passwords(&main).into_bytes();
        if let Some(common) = common {
            bytes.push(0);
            bytes.extend_from_slice(mark_passwords(&common).as_bytes());
        }
        write(corpus, t, &name, &bytes)?;
    }
    Ok(())
}
