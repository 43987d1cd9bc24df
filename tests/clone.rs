//! Cloning between real MariaDB 10.11 servers by real `mmm_agentd` processes, each host in a
//! network namespace of its own, the server stopped and started by its init script
//! (`mysql_rcscript`), the copy streamed by `mariabackup` from the source's agent.
//!
//! Proven here, with a client writing to the master all along: a clone in each of MMM's modes
//! (slave-slave from a replica, master-slave, master-master) ends with the clone replicating
//! from the right master (and, master-master, the source from the clone), holding every
//! acknowledged write, with every table's CHECKSUM equal to the master's; progress is shown
//! and the source's lock times are reported. Refused: a backup without or with the wrong
//! replication account; a clone onto a host holding roles, from itself or an unknown host; a
//! copy that cannot be fetched fails and leaves the target's server and data as they were.

#[path = "support/clone_lab.rs"]
mod clone_lab;

use std::path::PathBuf;
use std::time::Duration;

use clone_lab::*;
use mmm_agent::client::CallError;
use mmm_agent::protocol::{CloneMode, ClonePhase, CloneRequest, SetStatus, BACKUP_PATH};
use mmm_core::{AgentStatus, Epoch, HostName, HostState, RoleIp, RoleName};
use mmm_testkit::mariadb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_in_each_mmm_mode_under_write_load_and_refuses_what_it_must() {
    let _one = ONE_LAB.lock().await;
    let s = Setup::start().await;
    let [h1, h2, h3] = &s.hosts;
    let [db1, db2, db3] = &s.dbs;
    let (lab, mon) = (&s.lab, &s.mon);
    let writer = Writer::start(db1);

    // slave-slave: db3 from the replica db2, then replicating from db2's master db1.
    let p = clone_and_wait(mon, h3, "db2", CloneMode::SlaveSlave);
    assert_eq!(p.phase, ClonePhase::Done, "slave-slave clone: {p:?}");
    assert_eq!(p.master.as_deref(), Some("db1"));
    assert!(
        p.bytes > 4_000_000,
        "the copy carried the data: {} bytes",
        p.bytes
    );
    let report = p.source_report.clone().expect("the source's report");
    assert!(
        report.error.is_none() && report.bytes == p.bytes,
        "{report:?}"
    );
    eprintln!(
        "slave-slave: {} bytes in {} ms; the source blocked commits {} ms, DDL {} ms",
        p.bytes, p.copy_ms, report.commit_blocked_ms, report.ddl_blocked_ms
    );
    assert_eq!(
        slave_field(db3, "Master_Host").await.as_deref(),
        Some(ip_of(h1).as_str())
    );
    assert_eq!(
        db3.scalar(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='only_on_db3'"
        )
        .await
        .expect("query")
        .as_deref(),
        Some("0"),
        "db3's own data was replaced"
    );

    // master-slave: db3 again, now from db1 itself.
    let p = clone_and_wait(mon, h3, "db1", CloneMode::MasterSlave);
    assert_eq!(p.phase, ClonePhase::Done, "master-slave clone: {p:?}");
    assert_eq!(
        slave_field(db3, "Master_Host").await.as_deref(),
        Some(ip_of(h1).as_str())
    );

    // master-master: db2 from db1, and db1 pointed back at db2.
    let p = clone_and_wait(mon, h2, "db1", CloneMode::MasterMaster);
    assert_eq!(p.phase, ClonePhase::Done, "master-master clone: {p:?}");
    assert_eq!(
        slave_field(db2, "Master_Host").await.as_deref(),
        Some(ip_of(h1).as_str())
    );
    assert_eq!(
        slave_field(db1, "Master_Host").await.as_deref(),
        Some(ip_of(h2).as_str())
    );
    assert_eq!(
        slave_field(db1, "Slave_IO_Running").await.as_deref(),
        Some("Yes")
    );
    assert_eq!(
        slave_field(db1, "Slave_SQL_Running").await.as_deref(),
        Some("Yes")
    );

    let acked = writer.finish().await;
    assert!(
        acked > 100,
        "the client kept writing during the clones ({acked} writes)"
    );
    for db in [db2, db3] {
        matches_db1(db, db1, acked).await;
    }

    // Refusals. A backup needs the replication account.
    let backup_url = format!("http://{}{BACKUP_PATH}", agent_addr(h1));
    let statuses = mon
        .run_async(move || async move {
            let http = reqwest::Client::new();
            let none = http.get(&backup_url).send().await.expect("answer").status();
            let wrong = http
                .get(&backup_url)
                .basic_auth(mariadb::REPL_USER, Some("guess"))
                .send()
                .await
                .expect("answer")
                .status();
            (none.as_u16(), wrong.as_u16())
        })
        .expect("runs");
    assert_eq!(statuses, (401, 403), "no credentials, then wrong ones");

    // Not from itself, not from an unknown host, not onto a host with roles.
    let refused = |source: &str| {
        let req = CloneRequest {
            host: "db3".into(),
            source: source.into(),
            mode: CloneMode::MasterSlave,
            from_dir: None,
        };
        let addr = agent_addr(h3);
        call(mon, move |c| {
            Box::pin(async move { c.start_clone(addr, &req).await })
        })
    };
    for (source, code, text) in [("db3", 400, "from itself"), ("db9", 400, "not a host")] {
        match refused(source) {
            Err(CallError::Refused { status, error, .. }) => {
                assert_eq!(status, code, "{error}");
                assert!(error.contains(text), "{error}");
            }
            other => panic!("a clone from {source} is refused: {other:?}"),
        }
    }
    let reader = lab.spare_ip(1);
    let with_roles = SetStatus::from(AgentStatus {
        host: HostName::new("db3"),
        state: HostState::Online,
        roles: vec![RoleIp::new(RoleName::new("reader"), reader.into())],
        active_master: Some(HostName::new("db1")),
        epoch: Epoch(1),
    });
    let addr3 = agent_addr(h3);
    call(mon, move |c| {
        Box::pin(async move {
            c.set_status(addr3, &with_roles, Duration::from_secs(20))
                .await
        })
    })
    .expect("db3 takes a reader role");
    match refused("db1") {
        Err(CallError::Refused {
            status: 409, error, ..
        }) => {
            assert!(error.contains("holds roles"), "{error}")
        }
        other => panic!("a clone onto a host with roles is refused: {other:?}"),
    }
    let without_roles = SetStatus::from(AgentStatus {
        host: HostName::new("db3"),
        state: HostState::AdminOffline,
        roles: vec![],
        active_master: Some(HostName::new("db1")),
        epoch: Epoch(1),
    });
    call(mon, move |c| {
        Box::pin(async move {
            c.set_status(addr3, &without_roles, Duration::from_secs(20))
                .await
        })
    })
    .expect("db3 gives up its role");

    // A copy that cannot be fetched (the source's agent is gone) changes nothing on the target.
    lab.kill(s.agents[0]).expect("db1's agent killed");
    let before = db3
        .scalar("SELECT @@gtid_current_pos")
        .await
        .expect("db3 answers");
    let p = clone_and_wait(mon, h3, "db1", CloneMode::MasterSlave);
    assert_eq!(p.phase, ClonePhase::Failed, "{p:?}");
    let error = p.error.unwrap_or_default();
    assert!(error.contains("asking db1's agent for a backup"), "{error}");
    assert_eq!(
        db3.scalar("SELECT @@gtid_current_pos")
            .await
            .expect("db3 still answers"),
        before
    );
    let parent = db3.datadir().parent().expect("parent").to_path_buf();
    assert!(
        !parent.join(".data.mmm-clone").exists() && !parent.join(".data.mmm-old").exists(),
        "no staging or old directory is left"
    );
}

/// MMM's tools on the same hosts: `mmm_backup` of the replica db2 under write load, then
/// `mmm_restore --mode slave-slave` of that backup onto db3, which then replicates from db1
/// and matches it table by table; `mmm_clone` onto db3 from db1; `mmm_restore --mode
/// data-only` and `--version list`; MMM's shell copy methods refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_and_clone_with_mmms_command_lines() {
    let _one = ONE_LAB.lock().await;
    let s = Setup::start().await;
    let [_, _, h3] = &s.hosts;
    let [db1, _, db3] = &s.dbs;
    let tools_conf = s.dir.path().join("mmm_tools.conf");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&tools_conf, "include mmm_agent_db3.conf\n").expect("tools config");
        std::fs::set_permissions(&tools_conf, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let conf = tools_conf.to_string_lossy().to_string();
    let backups = s.dir.path().join("backups");
    let dest = backups.to_string_lossy().to_string();
    let writer = Writer::start(db1);

    let (code, text) = tool(
        h3,
        "mmm_backup",
        &["--config", &conf, "--host", "db2", "--dest-dir", &dest],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("db2: copying") && text.contains("OK: backup of 'db2' in "),
        "{text}"
    );
    let made: Vec<PathBuf> = std::fs::read_dir(&backups)
        .expect("backups")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        made.len(),
        1,
        "one backup directory, nothing left incomplete: {made:?}"
    );
    let status = std::fs::read_to_string(made[0].join("_mmm/status.json")).expect("notes");
    assert!(
        status.contains("\"master\": \"db1\""),
        "the backup knows db2's master: {status}"
    );

    let (code, text) = tool(
        h3,
        "mmm_restore",
        &["--config", &conf, "--version", "list", "--src-dir", &dest],
    );
    assert_eq!((code, text.trim()), (0, made[0].to_string_lossy().as_ref()));

    let backup = made[0].to_string_lossy().to_string();
    let (code, text) = tool(
        h3,
        "mmm_restore",
        &[
            "--config",
            &conf,
            "--mode",
            "slave-slave",
            "--src-dir",
            &backup,
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("OK: 'db3' was restored from the backup of 'db2'")
            && text.contains("replicates from 'db1'"),
        "{text}"
    );
    assert_eq!(
        slave_field(db3, "Master_Host").await.as_deref(),
        Some(ip_of(&s.hosts[0]).as_str())
    );

    let files = s.dir.path().join("files");
    let files_s = files.to_string_lossy().to_string();
    let (code, text) = tool(
        h3,
        "mmm_restore",
        &[
            "--config",
            &conf,
            "--mode",
            "data-only",
            "--src-dir",
            &backup,
            "--dest-dir",
            &files_s,
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        files.join("ibdata1").is_file() && files.join("clonetest").is_dir(),
        "the files are there"
    );

    let (code, text) = tool(
        h3,
        "mmm_clone",
        &[
            "--config",
            &conf,
            "--host",
            "db1",
            "--clone-mode",
            "master-slave",
            "--copy-method",
            "scp",
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("copy method 'scp' is not supported"),
        "{text}"
    );
    let (code, text) = tool(
        h3,
        "mmm_clone",
        &[
            "--config",
            &conf,
            "--host",
            "db1",
            "--clone-mode",
            "master-slave",
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK: 'db3' was rebuilt from 'db1'"), "{text}");

    let acked = writer.finish().await;
    assert!(acked > 100, "the client kept writing ({acked} writes)");
    matches_db1(db3, db1, acked).await;
}
