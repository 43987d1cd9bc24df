//! The `--check-config` summary: what was understood, `auto_set_online` in words (reference
//! 1.9), the monitor group, and never a password.

mod common;

use common::{load_memory, ok, Fixture, COMMON, MONITOR};
use mmm_config::{summary, Program};

fn mon(extra: &str) -> String {
    format!("include mmm_common.conf\n{MONITOR}{extra}")
}

fn load(mon: &str, program: Program) -> mmm_config::Config {
    ok(load_memory(
        &[("mmm_mon.conf", mon), ("mmm_common.conf", COMMON)],
        "mmm_mon.conf",
        program,
    ))
}

#[test]
fn summary_lists_hosts_roles_checks_group_and_mode() {
    let config = load(&mon(""), Program::Monitor);
    let text = summary(&config, Program::Monitor);
    for expected in [
        "Configuration for mmm_mond",
        "  files read: mmm_mon.conf, mmm_common.conf",
        "Monitor group: a single replica (plain MMM config: <monitor> ip and port)",
        "  mon1  127.0.0.1:9988  <- this replica",
        "  mode: active (full automation:",
        "  db1  10.0.0.1  master  peer db2  mysql_port 3306  agent_port 9989",
        "  db3  10.0.0.3  slave   mysql_port 3306  agent_port 9989",
        "       monitor_user mmm_monitor (password <redacted>)",
        "  writer  exclusive  hosts db1, db2  ips 10.0.0.100  (active master role)",
        "  reader  balanced   hosts db1, db2, db3  ips 10.0.0.101, 10.0.0.102, 10.0.0.103",
        "  ping         check_period 5 s  trap_period 10 s  timeout 2 s  restart_after 10000",
        "  rep_backlog  check_period 5 s  trap_period 10 s  timeout 2 s  restart_after 10000  max_backlog 60 s",
        "Socket: plain",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn auto_set_online_zero_is_explained_as_never() {
    let text = summary(&load(&mon(""), Program::Monitor), Program::Monitor);
    assert!(
        text.contains("  auto_set_online 0: never: hosts stay in AWAITING_RECOVERY until `mmm_control set_online` (some guides claim 0 means \"online immediately\"; in MMM 2.2.1 it means never)\n"),
        "{text}"
    );
}

#[test]
fn auto_set_online_above_zero_is_explained_as_a_delay() {
    let config = load(
        &mon("<monitor>\n    auto_set_online 60\n</monitor>\n"),
        Program::Monitor,
    );
    let text = summary(&config, Program::Monitor);
    assert!(
        text.contains("  auto_set_online 60: a healthy host goes from AWAITING_RECOVERY to ONLINE by itself after 60 s"),
        "{text}"
    );
}

#[test]
fn summary_names_this_replica_of_a_monitor_group() {
    let fixture = Fixture::new();
    fixture.copy("group/mmm_mon.conf", "mmm_mon.conf");
    fixture.copy("group/mmm_common.conf", "mmm_common.conf");
    let config = ok(fixture.load("mmm_mon.conf", Program::Monitor));
    let text = summary(&config, Program::Monitor);
    assert!(text.contains("Monitor group: 3 replicas\n  mon1  10.0.0.21:9988\n  mon2  10.0.0.22:9990  <- this replica\n  mon3  10.0.0.23:9988\n"), "{text}");
    assert!(
        text.contains("lease 2 s renewed every 0.4 s, clock_drift 0.02"),
        "{text}"
    );
}

#[test]
fn summary_for_the_agent_names_this_host() {
    let agent = format!("{COMMON}this db2\n");
    let config = ok(load_memory(&[("a.conf", &agent)], "a.conf", Program::Agent));
    let text = summary(&config, Program::Agent);
    assert!(text.contains("This host: db2 (10.0.0.2)"), "{text}");
    assert!(
        text.contains("agent_user mmm_agent (password <redacted>), replication_user replication (password <redacted>), cluster_interface eth0"),
        "{text}"
    );
}

#[test]
fn summary_never_shows_a_password() {
    let fixture = Fixture::new();
    for name in [
        "mmm_common.conf",
        "mmm_agent.conf",
        "mmm_mon.conf",
        "mmm_tools.conf",
    ] {
        fixture.copy(&format!("mmm/{name}"), name);
    }
    for (file, program) in [
        ("mmm_agent.conf", Program::Agent),
        ("mmm_mon.conf", Program::Monitor),
        ("mmm_mon.conf", Program::Control),
        ("mmm_tools.conf", Program::Tools),
    ] {
        let config = ok(fixture.load(file, program));
        let text = summary(&config, program);
        // The replication password of the samples is "slave", which is also a host mode, so it is
        // not searched for.
        for password in ["RepAgent", "RepMonitor", "RepTools"] {
            assert!(
                !text.contains(password),
                "{password} shown for {program}:\n{text}"
            );
        }
    }
}

#[test]
fn passive_mode_is_explained() {
    let config = load(
        &mon("<monitor>\n    mode passive\n</monitor>\n"),
        Program::Monitor,
    );
    let text = summary(&config, Program::Monitor);
    assert!(
        text.contains("  mode: passive (no role changes and no commands to agents)"),
        "{text}"
    );
}

#[test]
fn summary_lists_warnings() {
    let config = load(&mon("<check ping>\n</host>\n"), Program::Monitor);
    let text = summary(&config, Program::Monitor);
    assert!(text.contains("Warnings\n  mmm_mon.conf:"), "{text}");
}
