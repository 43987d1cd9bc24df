//! The `mmm_control` binary against monitor replicas that answer with the real `mmm_core`
//! (`common::Cluster`), or against a real monitor group (`MMM_CONTROL_TEST_MONITORS`, see
//! `common`). Output is compared byte for byte with MMM 2.2.1's strings (reference §1.1 for
//! the client, §1.2 for the commands); MMM's client prints the reply plus "\n", so replies that
//! end in a newline (show, checks, help) end in a blank line.

mod common;

use common::{dead_address, mmm_control, Behaviour, Cluster, Target};

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

/// MMM's help text (Commands.pm::help), verbatim from reference §1.2.
const MMM_HELP: &str = "Valid commands are:
    help                              - show this message
    ping                              - ping monitor
    show                              - show status
    checks [<host>|all [<check>|all]] - show checks status
    set_online <host>                 - set host <host> online
    set_offline <host>                - set host <host> offline
    mode                              - print current mode.
    set_active                        - switch into active mode.
    set_manual                        - switch into manual mode.
    set_passive                       - switch into passive mode.
    move_role [--force] <role> <host> - move exclusive role <role> to host <host>
                                        (Only use --force if you know what you are doing!)
    set_ip <ip> <host>                - set role with ip <ip> to host <host>
";

/// `show` for the seed document's cluster after a healthy start.
const SEED_SHOW: &str = "  master1(192.168.197.184) master/ONLINE. Roles: writer(192.168.197.101)
  master2(192.168.197.187) master/ONLINE. Roles: reader(192.168.197.102)
  slave1(192.168.197.186) slave/ONLINE. Roles: reader(192.168.197.103)
  slave2(192.168.197.188) slave/ONLINE. Roles: reader(192.168.197.104)
";

fn assert_run(run: &common::Run, code: i32, stdout: &str) {
    assert_eq!(run.stdout, stdout, "stdout; stderr was: {}", run.stderr);
    assert_eq!(run.code, code, "exit status; stderr was: {}", run.stderr);
}

// MMM's commands, byte for byte.

#[test]
fn help_prints_mmm_help_text_and_a_blank_line() -> Result {
    let target = Target::seed()?;
    assert_run(&target.run(&["help"])?, 0, &format!("{MMM_HELP}\n"));
    Ok(())
}

#[test]
fn ping_prints_pinged_successfully() -> Result {
    let target = Target::seed()?;
    assert_run(&target.run(&["ping"])?, 0, "OK: Pinged successfully!\n");
    Ok(())
}

#[test]
fn show_prints_the_seed_hosts_roles_and_a_blank_line() -> Result {
    let target = Target::seed()?;
    assert_run(&target.run(&["show"])?, 0, &format!("{SEED_SHOW}\n"));
    Ok(())
}

#[test]
fn mode_prints_active() -> Result {
    let target = Target::seed()?;
    assert_run(&target.run(&["mode"])?, 0, "ACTIVE\n");
    Ok(())
}

#[test]
fn checks_of_one_host_prints_its_four_checks() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["checks", "master1"])?;
    let expected = "\
master1  ping         [last change: DATE]  OK
master1  mysql        [last change: DATE]  OK
master1  rep_threads  [last change: DATE]  OK
master1  rep_backlog  [last change: DATE]  OK

";
    if target.in_test().is_some() {
        let expected = expected.replace("DATE", "2017/01/09 21:31:47");
        assert_run(&run, 0, &expected);
    } else {
        assert_run(&run, 0, &mask_dates(&run.stdout, expected));
    }
    Ok(())
}

#[test]
fn checks_of_one_host_and_check_prints_one_line() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["checks", "slave2", "rep_backlog"])?;
    let expected = "slave2  rep_backlog  [last change: DATE]  OK\n";
    if target.in_test().is_some() {
        assert_run(&run, 0, &expected.replace("DATE", "2017/01/09 21:31:47"));
    } else {
        assert_run(&run, 0, &mask_dates(&run.stdout, expected));
    }
    Ok(())
}

#[test]
fn checks_of_an_unknown_check_is_an_error() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["checks", "all", "nope"])?;
    assert_run(&run, 1, "ERROR: Unknown check 'nope'!\n");
    Ok(())
}

#[test]
fn unknown_command_prints_invalid_command_and_help_and_exits_1() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["failover", "now"])?;
    assert_run(
        &run,
        1,
        &format!("Invalid command 'failover now'\n\n{MMM_HELP}\n"),
    );
    Ok(())
}

#[test]
fn wrong_argument_count_prints_invalid_command_and_help() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["set_online"])?;
    assert_run(
        &run,
        1,
        &format!("Invalid command 'set_online'\n\n{MMM_HELP}\n"),
    );
    Ok(())
}

#[test]
fn set_online_of_unknown_host_prints_error_and_exits_1() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["set_online", "db9"])?;
    assert_run(&run, 1, "ERROR: Unknown host name 'db9'!\n");
    Ok(())
}

#[test]
fn set_online_of_an_online_host_is_ok() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["set_online", "slave1"])?;
    assert_run(
        &run,
        0,
        "OK: This host is already ONLINE. Skipping command.\n",
    );
    Ok(())
}

#[test]
fn set_passive_switches_mode_and_show_prints_the_passive_header() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["set_passive"])?;
    assert_run(&run, 0, "OK: Switched into passive mode.\n");
    let show = target.run(&["show"])?;
    let mode = target.run(&["mode"])?;
    let again = target.run(&["set_passive"])?;
    let back = target.run(&["set_active"])?;
    assert_run(
        &show,
        0,
        &format!(
            "# --- Monitor is in PASSIVE MODE ---\n# Cause: Admin switched to passive mode.\n\
             {SEED_SHOW}\n"
        ),
    );
    assert_run(&mode, 0, "PASSIVE\n");
    assert_run(&again, 0, "OK: Already in passive mode.\n");
    assert_run(&back, 0, "OK: Switched into active mode.\n");
    Ok(())
}

#[test]
fn move_role_moves_the_writer_and_show_reflects_it() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["move_role", "writer", "master2"])?;
    let show = target.run(&["show"])?;
    let back = target.run(&["move_role", "writer", "master1"])?;
    assert_run(
        &run,
        0,
        "OK: Role 'writer' has been moved from 'master1' to 'master2'. Now you can wait some \
         time and check new roles info!\n",
    );
    assert_run(
        &show,
        0,
        "  master1(192.168.197.184) master/ONLINE. Roles: \n\
         \x20 master2(192.168.197.187) master/ONLINE. Roles: reader(192.168.197.102), writer(192.168.197.101)\n\
         \x20 slave1(192.168.197.186) slave/ONLINE. Roles: reader(192.168.197.103)\n\
         \x20 slave2(192.168.197.188) slave/ONLINE. Roles: reader(192.168.197.104)\n\n",
    );
    assert_eq!(back.code, 0, "{back:?}");
    Ok(())
}

#[test]
fn history_lists_each_writer_change_with_its_cause_and_json_gives_the_entries() -> Result {
    let target = Target::seed()?;
    target.run(&["move_role", "writer", "master2"])?;
    let run = target.run(&["history"])?;
    let json = target.run(&["--json", "history"])?;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header and two entries: {}", run.stdout);
    assert!(lines[0].starts_with("epoch  decided"), "{}", run.stdout);
    assert!(lines[1].starts_with("1 "), "{}", run.stdout);
    assert!(lines[1].contains("writer role assigned"), "{}", run.stdout);
    assert!(lines[2].starts_with("2 "), "{}", run.stdout);
    assert!(
        lines[2].contains("master1  master2  pending  admin: move_role writer master2"),
        "{}",
        run.stdout
    );
    assert_eq!(json.code, 0, "{json:?}");
    let entries: serde_json::Value = serde_json::from_str(&json.stdout)?;
    assert_eq!(entries[1]["from"], "master1");
    assert_eq!(entries[1]["to"], "master2");
    assert_eq!(entries[1]["epoch"], 2);
    assert_eq!(entries[1]["active"], serde_json::Value::Null);
    Ok(())
}

#[test]
fn history_takes_no_arguments() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["history", "master1"])?;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("'history' takes no arguments"),
        "{run:?}"
    );
    Ok(())
}

#[test]
fn move_role_force_reaches_the_monitor_as_typed() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["move_role", "--force", "writer", "master2"])?;
    assert_run(
        &run,
        1,
        "ERROR: Can't force move of role to host with state ONLINE.\n",
    );
    if let Some(cluster) = target.in_test() {
        assert_eq!(cluster.model().lines, ["move_role --force writer master2"]);
    }
    Ok(())
}

#[test]
fn options_after_the_command_are_sent_as_typed_with_a_hint() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["show", "--json"])?;
    assert_run(
        &run,
        1,
        &format!("Invalid command 'show --json'\n\n{MMM_HELP}\n"),
    );
    assert!(
        run.stderr.contains("options go before the command"),
        "{}",
        run.stderr
    );
    Ok(())
}

/// Replaces each `DATE` in `expected` by the date found at the same place in `actual`, so that
/// a real monitor's check times do not matter.
fn mask_dates(actual: &str, expected: &str) -> String {
    let mut out = String::new();
    for (want, got) in expected.lines().zip(actual.lines()) {
        match (want.split_once("DATE"), got.split_once("[last change: ")) {
            (Some((before, after)), Some((_, rest))) => {
                let date = rest.split_once(']').map_or("", |(d, _)| d);
                out.push_str(&format!("{before}{date}{after}\n"));
            }
            _ => {
                out.push_str(want);
                out.push('\n');
            }
        }
    }
    out
}

// Finding a replica that answers.

#[test]
fn a_dead_first_replica_is_passed_over() -> Result {
    let cluster = Cluster::healthy()?;
    let monitors = format!("{},{}", dead_address()?, cluster.replicas[1].addr);
    let run = mmm_control(&["--verbose", "--monitor", &monitors, "show"])?;
    assert_run(&run, 0, &format!("{SEED_SHOW}\n"));
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(lines[0].contains("Connection refused"), "{}", run.stderr);
    assert_eq!(
        lines[1],
        format!(
            "mmm_control: answered by replica mon2 (asked {}); leader: mon1; log index: 3",
            cluster.replicas[1].addr
        )
    );
    Ok(())
}

#[test]
fn a_dead_first_replica_is_passed_over_for_state_changes_too() -> Result {
    let cluster = Cluster::healthy()?;
    let monitors = format!("{},{}", dead_address()?, cluster.replicas[1].addr);
    let run = mmm_control(&["--monitor", &monitors, "set_offline", "slave2"])?;
    assert_run(
        &run,
        0,
        "OK: State of 'slave2' changed to ADMIN_OFFLINE. Now you can wait some time and check \
         all roles!\n",
    );
    Ok(())
}

#[test]
fn all_replicas_dead_prints_cant_connect_and_exits_1() -> Result {
    let monitors = format!(
        "{},{},{}",
        dead_address()?,
        dead_address()?,
        dead_address()?
    );
    let run = mmm_control(&["--monitor", &monitors, "show"])?;
    assert_run(&run, 1, "ERROR: Can't connect to monitor daemon!\n");
    assert_eq!(run.stderr, "");
    Ok(())
}

#[test]
fn no_leader_anywhere_says_so_and_what_to_check() -> Result {
    let cluster = Cluster::start(&[
        Behaviour::NoLeader,
        Behaviour::NoLeader,
        Behaviour::NoLeader,
    ])?;
    let run = mmm_control(&["--monitor", &cluster.monitors(), "set_online", "slave1"])?;
    assert_run(
        &run,
        1,
        "ERROR: The monitor group has no leader.\n\
         3 of 3 monitor replicas answered and none knows a leader: a majority (2 of 3) must be \
         running and able to reach each other; 'mmm_control status' shows each replica's view.\n",
    );
    assert!(cluster.model().lines.is_empty());
    Ok(())
}

#[test]
fn no_leader_counts_only_the_replicas_that_answered() -> Result {
    let cluster = Cluster::start(&[Behaviour::NoLeader, Behaviour::NoLeader])?;
    let monitors = format!("{},{}", cluster.monitors(), dead_address()?);
    let run = mmm_control(&["--monitor", &monitors, "ping"])?;
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.starts_with(
            "ERROR: The monitor group has no leader.\n2 of 3 monitor replicas answered"
        ),
        "{}",
        run.stdout
    );
    Ok(())
}

#[test]
fn a_redirect_to_the_leader_is_followed() -> Result {
    let leader = Cluster::healthy()?;
    let follower = Cluster::start(&[Behaviour::RedirectTo(leader.replicas[0].url())])?;
    let run = mmm_control(&[
        "--verbose",
        "--monitor",
        &follower.monitors(),
        "set_passive",
    ])?;
    assert_run(&run, 0, "OK: Switched into passive mode.\n");
    assert_eq!(leader.model().lines, ["set_passive"]);
    assert!(follower.model().lines.is_empty());
    assert!(
        run.stderr.contains(&format!(
            "redirected to {}/api/command",
            leader.replicas[0].url()
        )),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn a_second_redirect_is_not_followed() -> Result {
    let first = Cluster::start(&[Behaviour::Serve])?;
    let second = Cluster::start(&[Behaviour::RedirectTo(first.replicas[0].url())])?;
    let loop_start = Cluster::start(&[Behaviour::RedirectTo(second.replicas[0].url())])?;
    let run = mmm_control(&["--monitor", &loop_start.monitors(), "set_passive"])?;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("redirected twice"), "{}", run.stdout);
    assert!(first.model().lines.is_empty());
    Ok(())
}

#[test]
fn a_silent_replica_is_passed_over_for_read_only_commands() -> Result {
    let cluster = Cluster::healthy()?;
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let monitors = format!("{},{}", silent.local_addr()?, cluster.replicas[0].addr);
    let run = mmm_control(&["--timeout", "2", "--monitor", &monitors, "ping"])?;
    assert_run(&run, 0, "OK: Pinged successfully!\n");
    Ok(())
}

#[test]
fn a_silent_replica_stops_a_state_change_rather_than_risk_applying_it_twice() -> Result {
    let cluster = Cluster::healthy()?;
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let monitors = format!("{},{}", silent.local_addr()?, cluster.replicas[0].addr);
    let run = mmm_control(&["--timeout", "1", "--monitor", &monitors, "set_passive"])?;
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.starts_with("ERROR: Monitor replica ")
            && run.stdout.contains("no answer within 1 s")
            && run.stdout.contains("may or may not have been applied"),
        "{}",
        run.stdout
    );
    assert!(cluster.model().lines.is_empty());
    Ok(())
}

// New commands and options.

#[test]
fn status_prints_every_replica_and_the_leader() -> Result {
    let cluster = Cluster::healthy()?;
    let dead = dead_address()?;
    let monitors = format!("{},{dead}", cluster.monitors());
    let run = mmm_control(&["--monitor", &monitors, "status"])?;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "REPLICA",
            "ADDRESS",
            "REACHABLE",
            "RAFT",
            "STATE",
            "TERM",
            "LEADER",
            "LAST",
            "LOG",
            "APPLIED",
            "LAG"
        ]
    );
    let words = |i: usize| -> Vec<&str> { lines[i].split_whitespace().collect() };
    let a = cluster.replicas[0].addr.to_string();
    assert_eq!(
        words(1),
        ["mon1", &a, "yes", "Leader", "2", "mon1", "3", "3", "0"]
    );
    assert_eq!(words(2)[3], "Follower");
    assert!(
        lines[4].starts_with(&dead) && lines[4].contains("no: "),
        "{}",
        run.stdout
    );
    assert_eq!(lines[5], "Leader mon1 is known by 3 of 4 replicas.");
    Ok(())
}

#[test]
fn status_without_a_majority_for_a_leader_exits_1() -> Result {
    let cluster = Cluster::start(&[Behaviour::Serve])?;
    let monitors = format!(
        "{},{},{}",
        cluster.monitors(),
        dead_address()?,
        dead_address()?
    );
    let run = mmm_control(&["--monitor", &monitors, "status"])?;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.ends_with(
            "No leader is known by a majority: 1 of 3 replicas answered; a majority (2) must \
             be running and able to reach each other.\n"
        ),
        "{}",
        run.stdout
    );
    Ok(())
}

#[test]
fn status_json_lists_every_replica_view() -> Result {
    let cluster = Cluster::healthy()?;
    let run = mmm_control(&["--json", "--monitor", &cluster.monitors(), "status"])?;
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(json["leader"], "mon1");
    assert_eq!(json["majority"], true);
    assert_eq!(json["replicas"][2]["status"]["raft_state"], "Follower");
    Ok(())
}

#[test]
fn json_show_prints_the_replicated_state() -> Result {
    let cluster = Cluster::healthy()?;
    let run = mmm_control(&["--json", "--monitor", &cluster.monitors(), "show"])?;
    assert_eq!(run.code, 0, "{run:?}");
    let got: serde_json::Value = serde_json::from_str(&run.stdout)?;
    let want = serde_json::to_value(&cluster.model().state)?;
    assert_eq!(got["state"], want);
    assert_eq!(got["replica"], "mon1");
    Ok(())
}

#[test]
fn json_mode_prints_the_reply() -> Result {
    let cluster = Cluster::healthy()?;
    let run = mmm_control(&["--json", "--monitor", &cluster.monitors(), "mode"])?;
    assert_eq!(run.code, 0, "{run:?}");
    let got: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(got["reply"], "ACTIVE");
    assert_eq!(got["ok"], true);
    assert_eq!(got["replica"], "mon1");
    Ok(())
}

// Configuration.

/// Writes an mmm_mon.conf for mmm_control naming these replicas, readable by its owner only.
fn write_config(dir: &std::path::Path, name: &str, cluster: &Cluster) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut text =
        String::from("<host master1>\n    ip 192.168.197.184\n    mode master\n</host>\n");
    for (i, replica) in cluster.replicas.iter().enumerate() {
        text.push_str(&format!(
            "<monitor_node mon{}>\n    ip 127.0.0.1\n    port {}\n</monitor_node>\n",
            i + 1,
            replica.addr.port()
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path.display().to_string())
}

#[test]
fn replicas_come_from_the_configuration_file() -> Result {
    let cluster = Cluster::healthy()?;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), "mmm_mon_prod.conf", &cluster)?;
    let run = mmm_control(&["@prod", "--config", &config, "--verbose", "ping"])?;
    assert_run(&run, 0, "OK: Pinged successfully!\n");
    assert!(
        run.stderr.contains("answered by replica mon1"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn check_config_prints_the_summary_and_exits_0() -> Result {
    let cluster = Cluster::healthy()?;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), "mmm_mon.conf", &cluster)?;
    let run = mmm_control(&["--check-config", "--config", &config])?;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("Configuration for mmm_control\n"),
        "{}",
        run.stdout
    );
    Ok(())
}

#[test]
fn check_config_prints_errors_on_stderr_and_exits_2() -> Result {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("mmm_mon.conf");
    std::fs::write(&path, "<monitor_node mon1>\n    port 1\n</monitor_node>\n")?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let run = mmm_control(&["--check-config", "--config", &path.display().to_string()])?;
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(run.stderr.contains("mmm_mon.conf"), "{}", run.stderr);
    Ok(())
}

// The binary's own exits.

#[test]
fn no_command_exits_255_with_mmm_sentence() -> Result {
    let run = mmm_control(&[])?;
    assert_eq!((run.code, run.stdout.as_str()), (255, ""));
    assert_eq!(run.stderr, "See 'mmm_control help' for usage information\n");
    Ok(())
}

#[test]
fn version_exits_0() -> Result {
    let run = mmm_control(&["--version"])?;
    assert_run(
        &run,
        0,
        &format!(
            "mmm_control {} (mmm-raft; MMM 2.2.1 commands)\n",
            env!("CARGO_PKG_VERSION")
        ),
    );
    Ok(())
}

#[test]
fn a_bad_monitor_address_exits_2_and_names_it() -> Result {
    let run = mmm_control(&["--monitor", "127.0.0.1", "ping"])?;
    assert_eq!((run.code, run.stdout.as_str()), (2, ""));
    assert!(
        run.stderr
            .contains("invalid monitor address '127.0.0.1': expected HOST:PORT"),
        "{}",
        run.stderr
    );
    Ok(())
}

/// Confirms the writer role for `host` at the newest epoch in the in-test model, `after_ms`
/// after the change was decided, once the change is there (as the leader does when the new
/// writer's agent acknowledges it).
fn confirm_when_switched(cluster: &common::Cluster, host: &str, after_ms: u64) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        {
            let mut m = cluster.model();
            let pending = m
                .state
                .history
                .last()
                .filter(|f| f.to.as_ref().map(|h| h.as_str()) == Some(host) && f.active.is_none())
                .map(|f| (f.epoch, f.decided));
            if let Some((epoch, decided)) = pending {
                let model = &mut *m;
                mmm_core::step(
                    &model.topo,
                    &mut model.state,
                    mmm_core::Time(decided.0 + after_ms),
                    mmm_core::Event::WriterActive {
                        host: host.into(),
                        epoch,
                    },
                )
                .expect("WriterActive applies");
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn switchover_waits_until_the_new_writer_takes_writes_and_says_how_long_it_took() -> Result {
    let target = Target::seed()?;
    let Some(cluster) = target.in_test() else {
        // A real group confirms by itself once the new writer's agent takes the role.
        let run = target.run(&["switchover", "master2"])?;
        assert!(
            run.stdout.starts_with("OK: Switching role 'writer'"),
            "{run:?}"
        );
        assert!(
            run.stdout.contains("OK: 'master2' is the writer at epoch"),
            "{run:?}"
        );
        return Ok(());
    };
    let run = std::thread::scope(|s| {
        s.spawn(|| confirm_when_switched(cluster, "master2", 312));
        target.run(&["switchover", "master2"])
    })?;
    assert_run(
        &run,
        0,
        "OK: Switching role 'writer' over from 'master1' to 'master2': 'master1' stops writing, \
         'master2' takes writes once it has executed everything 'master1' wrote.\n\
         OK: 'master2' is the writer at epoch 2: it took writes 312 ms after the switchover was \
         decided.\n",
    );
    Ok(())
}

#[test]
fn a_switchover_never_confirmed_gives_up_after_wait_and_exits_1() -> Result {
    let target = Target::seed()?;
    let run = target.run(&["--wait", "1", "switchover", "master2"])?;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.ends_with(
            "ERROR: 'master2' has not confirmed the writer role within 1 s; 'mmm_control show' \
             and 'mmm_control history' say where it stands, its agent's log says why.\n"
        ),
        "{run:?}"
    );
    Ok(())
}

#[test]
fn a_refused_switchover_prints_the_refusal_and_does_not_wait() -> Result {
    let target = Target::seed()?;
    let started = std::time::Instant::now();
    let run = target.run(&["switchover", "slave1"])?;
    assert_run(
        &run,
        1,
        "ERROR: Host 'slave1' can't handle role 'writer'. Only following hosts could: master1, master2\n",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    Ok(())
}
