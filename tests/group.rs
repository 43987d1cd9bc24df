//! Three `mmm_mond` replicas as separate processes on loopback, configured by real MMM files
//! with the monitor-group extension: they elect a leader, commit an admin command sent to a
//! follower on all three, survive SIGKILL and SIGSTOP of replicas, and a killed replica
//! restarted from its sled directory catches up.

#[path = "support/cluster.rs"]
mod cluster;

use cluster::{
    agreed_leader, command, eventually, free_port, group_status, mode_is, write_config, Group,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_to_a_follower_is_committed_on_all_three() {
    let g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    let follower = (leader + 1) % 3;
    let reply = eventually(&g, 15, "set_passive through a follower", || {
        command(g.ports[follower], "set_passive")
    })
    .await;
    assert_eq!(reply.reply, "OK: Switched into passive mode.");
    assert!(reply.ok);
    // Read your writes: every replica answers with the acknowledged change at once.
    for i in 0..3 {
        let r = command(g.ports[i], "mode").await.expect("mode");
        assert_eq!(
            (r.reply.as_str(), r.stale),
            ("PASSIVE", false),
            "mon{}",
            i + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_another_and_the_restarted_replica_catches_up() {
    let mut g = Group::new();
    let old = agreed_leader(&g, &[0, 1, 2], None).await;
    eventually(&g, 15, "set_manual", || command(g.ports[old], "set_manual")).await;
    for i in 0..3 {
        mode_is(&g, i, "MANUAL").await;
    }

    g.kill(old);
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let new = agreed_leader(&g, &rest, Some(old)).await;
    for &i in &rest {
        mode_is(&g, i, "MANUAL").await;
    }
    let reply = eventually(&g, 15, "set_passive on the new leader", || {
        command(g.ports[new], "set_passive")
    })
    .await;
    assert_eq!(reply.reply, "OK: Switched into passive mode.");

    assert!(g.data_dir(old).exists());
    g.start(old);
    mode_is(&g, old, "PASSIVE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replica_does_not_block_the_other_two() {
    let mut g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    let paused = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    g.signal(paused, "-STOP");
    let reply = eventually(&g, 15, "set_passive with a follower paused", || {
        command(g.ports[other], "set_passive")
    })
    .await;
    assert!(reply.ok, "{}", reply.reply);
    mode_is(&g, leader, "PASSIVE").await;

    // Pausing the leader too would leave no majority; pause only the leader instead.
    g.signal(paused, "-CONT");
    mode_is(&g, paused, "PASSIVE").await;
    g.signal(leader, "-STOP");
    let rest: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new = agreed_leader(&g, &rest, Some(leader)).await;
    let reply = eventually(&g, 15, "set_manual with the old leader paused", || {
        command(g.ports[new], "set_manual")
    })
    .await;
    assert_eq!(reply.reply, "OK: Switched into manual mode.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_replica_catches_up_by_snapshot() {
    let mut g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    mode_is(&g, leader, "ACTIVE").await;
    // More entries than the snapshot policy (1000) so the leader snapshots and purges its log.
    for i in 0..1100 {
        let line = if i % 2 == 0 {
            "set_manual"
        } else {
            "set_passive"
        };
        eventually(&g, 15, line, || command(g.ports[leader], line)).await;
    }
    let purged = eventually(&g, 30, "the leader snapshotted and purged", || async {
        let s = group_status(g.ports[leader]).await?;
        s.snapshot_index?;
        s.purged_index
    })
    .await;

    let victim = (leader + 1) % 3;
    g.kill(victim);
    std::fs::remove_dir_all(g.data_dir(victim)).expect("wipe the replica's data");
    g.start(victim);

    eventually(&g, 30, "the wiped replica installed a snapshot", || async {
        let s = group_status(g.ports[victim]).await?;
        (s.snapshot_index? >= purged).then_some(())
    })
    .await;
    mode_is(&g, victim, "PASSIVE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_ignored_and_sigterm_stops_a_replica_cleanly() {
    let mut g = Group::new();
    agreed_leader(&g, &[0, 1, 2], None).await;
    // A log rotation script's SIGHUP would end the process by default.
    g.signal(0, "-HUP");
    assert_eq!(
        g.wait(0, std::time::Duration::from_millis(500)),
        None,
        "SIGHUP stopped the replica\n{}",
        g.log(0)
    );
    assert!(g.log(0).contains("SIGHUP ignored"), "{}", g.log(0));
    g.signal(0, "-TERM");
    let status = g.wait(0, std::time::Duration::from_secs(10));
    assert_eq!(status, Some(0), "exit status after SIGTERM\n{}", g.log(0));
    assert!(g.log(0).contains("monitor replica stopped"), "{}", g.log(0));
}

/// Kills the extra replica when the test ends, however it ends.
struct Extra(std::process::Child);

impl Drop for Extra {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_replica_waits_until_added_and_can_be_removed() {
    let g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    eventually(&g, 15, "set_passive", || {
        command(g.ports[leader], "set_passive")
    })
    .await;

    let port4 = free_port();
    let ports = [g.ports[0], g.ports[1], g.ports[2], port4];
    write_config(g.dir(), 4, &ports, "");
    let log = std::fs::File::create(g.dir().join("mon4.log")).expect("log file");
    let _mon4 = Extra(
        std::process::Command::new(env!("CARGO_BIN_EXE_mmm_mond"))
            .arg("--config")
            .arg(g.dir().join("mon4.conf"))
            .stderr(log)
            .spawn()
            .expect("start mon4"),
    );
    let log4 = || std::fs::read_to_string(g.dir().join("mon4.log")).unwrap_or_default();
    eventually(&g, 15, "mon4 waits to be added", || async {
        log4().contains("waiting to be added").then_some(())
    })
    .await;
    assert!(
        command(port4, "mode").await.is_none(),
        "mon4 must hold no state yet"
    );

    let follower = (leader + 1) % 3;
    let add = format!("add_monitor mon4 127.0.0.1:{port4}");
    let reply = eventually(&g, 40, "add_monitor", || command(g.ports[follower], &add)).await;
    assert!(reply.ok, "{}", reply.reply);
    assert!(
        reply
            .reply
            .starts_with("OK: Monitor replica 'mon4' (127.0.0.1:"),
        "{}",
        reply.reply
    );
    eventually(&g, 15, "mon4 has the state", || async {
        (command(port4, "mode").await?.reply == "PASSIVE").then_some(())
    })
    .await;
    let status = group_status(g.ports[leader]).await.expect("leader status");
    assert_eq!(status.replication.len(), 4, "{status:?}");

    let reply = eventually(&g, 15, "remove_monitor", || {
        command(g.ports[leader], "remove_monitor mon4")
    })
    .await;
    assert_eq!(
        reply.reply,
        "OK: Monitor replica 'mon4' removed. The monitor group now has 3 members; remove its <monitor_node> section from every replica's configuration."
    );
    let reply = command(g.ports[leader], "remove_monitor mon4")
        .await
        .expect("reply");
    assert_eq!(
        (reply.ok, reply.reply.as_str()),
        (false, "ERROR: Unknown monitor replica 'mon4'!")
    );
}

/// Sends `method path` with `body` and `token` (none: no header) to the replica on `port`;
/// the status code.
async fn status_with(port: u16, method: &str, path: &str, body: &str, token: Option<&str>) -> u16 {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut req = match method {
        "GET" => http.get(url),
        _ => http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string()),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("an answer").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_raft_refuse_callers_without_the_right_token() {
    let g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    let port = g.ports[leader];
    let show = r#"{"line":"show"}"#;
    let offline = r#"{"line":"set_offline db3"}"#;
    let (admin, reader) = (cluster::admin_token(), cluster::readonly_token());
    eventually(&g, 15, "the configuration applied", || {
        command(port, "show")
    })
    .await;

    // No token, or one the replica does not know: 401, on every route but /healthz.
    assert_eq!(status_with(port, "GET", "/healthz", "", None).await, 200);
    for token in [None, Some("a-token-nobody-configured-0123")] {
        assert_eq!(status_with(port, "GET", "/status", "", token).await, 401);
        assert_eq!(status_with(port, "GET", "/metrics", "", token).await, 401);
        assert_eq!(
            status_with(port, "POST", "/api/command", show, token).await,
            401
        );
        assert_eq!(
            status_with(port, "POST", "/raft/vote", "", token).await,
            401
        );
        assert_eq!(
            status_with(port, "POST", "/api/lease", "{}", token).await,
            401
        );
    }
    // The read-only token reads, and may not change anything.
    assert_eq!(
        status_with(port, "POST", "/api/command", show, Some(reader)).await,
        200
    );
    assert_eq!(
        status_with(port, "GET", "/status", "", Some(reader)).await,
        200
    );
    assert_eq!(
        status_with(port, "POST", "/api/command", offline, Some(reader)).await,
        403
    );
    assert_eq!(
        status_with(
            port,
            "POST",
            "/api/command",
            r#"{"line":"remove_monitor mon3"}"#,
            Some(reader)
        )
        .await,
        403
    );
    // The admin token is no replica: Raft messages and check tables are refused.
    assert_eq!(
        status_with(port, "POST", "/raft/vote", "", Some(admin)).await,
        403
    );
    assert_eq!(
        status_with(port, "POST", "/api/observations", "{}", Some(admin)).await,
        403
    );
    // Nor is it an agent.
    assert_eq!(
        status_with(port, "POST", "/api/lease", "{}", Some(admin)).await,
        403
    );
    // The admin token changes state, through any replica (a follower forwards it with the
    // replicas' token).
    let follower = (leader + 1) % 3;
    let reply = eventually(&g, 15, "set_passive with the admin token", || {
        command(g.ports[follower], "set_passive")
    })
    .await;
    assert!(reply.ok, "{}", reply.reply);
    let logs = (0..3).map(|i| g.log(i)).collect::<String>();
    assert!(
        logs.contains("request refused: not authenticated"),
        "{logs}"
    );
    for token in [admin, reader] {
        assert!(!logs.contains(token), "a token was logged");
    }
}
