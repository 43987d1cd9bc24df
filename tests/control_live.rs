//! mmm_control's real client code against three real mmm_mond processes: MMM's output byte
//! for byte, commands through any replica, still working with the leader dead, and the
//! no-leader message once a majority is gone.

#[path = "support/cluster.rs"]
mod cluster;

use cluster::{agreed_leader, command, eventually, mode_is, Group};

/// Runs `mmm_control --monitor <all three> --config mon1.conf ARGS` (the tokens come from the
/// configuration) and returns (exit code, stdout, stderr).
async fn control(g: &Group, args: &[&str]) -> (u8, String, String) {
    let monitors = g
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut argv: Vec<std::ffi::OsString> = vec![
        "mmm_control".into(),
        "--monitor".into(),
        monitors.into(),
        "--config".into(),
        g.dir().join("mon1.conf").into(),
    ];
    argv.extend(args.iter().map(|a| a.into()));
    tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = mmm_control::run(argv, &mut out, &mut err).expect("writing output");
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    })
    .await
    .expect("mmm_control thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mmm_control_works_against_any_replica_and_says_when_there_is_no_leader() {
    let mut g = Group::new();
    let leader = agreed_leader(&g, &[0, 1, 2], None).await;
    eventually(&g, 15, "the configuration applied", || {
        command(g.ports[0], "mode")
    })
    .await;

    assert_eq!(
        control(&g, &["ping"]).await,
        (0, "OK: Pinged successfully!\n".into(), String::new())
    );
    // The hosts are loopback addresses where no MySQL and no agent listen: after the startup
    // vote every host fails its mysql check and goes HARD_OFFLINE.
    let offline = "  db1(127.0.1.1) master/HARD_OFFLINE. Roles: \n  db2(127.0.1.2) master/HARD_OFFLINE. Roles: \n  db3(127.0.1.3) slave/HARD_OFFLINE. Roles: \n\n";
    let mut out = String::new();
    for _ in 0..100 {
        let (code, shown, _) = control(&g, &["show"]).await;
        assert_eq!(code, 0);
        out = shown;
        if out == offline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(out, offline);
    let (code, out, _) = control(&g, &["set_online", "db9"]).await;
    assert_eq!(
        (code, out.as_str()),
        (1, "ERROR: Unknown host name 'db9'!\n")
    );
    let (code, out, _) = control(&g, &["set_passive"]).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "OK: Switched into passive mode.\n")
    );

    // Read your writes: another replica already answers with the acknowledged change.
    let (code, out, err) = control(&g, &["mode"]).await;
    assert_eq!((code, out.as_str(), err.as_str()), (0, "PASSIVE\n", ""));

    g.kill(leader);
    let rest: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    agreed_leader(&g, &rest, Some(leader)).await;
    let (code, out, err) = control(&g, &["mode"]).await;
    assert_eq!((code, out.as_str(), err.as_str()), (0, "PASSIVE\n", ""));
    let (code, out, _) = control(&g, &["set_manual"]).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "OK: Switched into manual mode.\n")
    );
    let new = agreed_leader(&g, &rest, Some(leader)).await;
    for &i in &rest {
        mode_is(&g, i, "MANUAL").await;
    }

    // Only the leader is left: it cannot commit without a majority and must say so in time.
    let follower = rest
        .iter()
        .copied()
        .find(|&i| i != new)
        .expect("a follower");
    g.kill(follower);
    let started = std::time::Instant::now();
    let (code, out, err) = control(&g, &["set_active"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("ERROR: "), "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "took {:?}",
        started.elapsed()
    );
    // Reads still work without a majority, marked as this replica's own view.
    let (code, out, err) = control(&g, &["mode"]).await;
    assert_eq!((code, out.as_str()), (0, "MANUAL\n"), "{err}");
    assert!(
        err.contains("no monitor leader confirmed this answer"),
        "{err}"
    );
}
