//! The monitor-group extension: `<monitor_node NAME>` sections, `<monitor> node` and the Raft
//! and lease timings, with each validation rule's exact message (crate docs, design "Config").

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{load_memory, messages, ok, Fixture, COMMON};
use mmm_config::{Program, IMPLICIT_MONITOR_NODE};

/// A `<monitor>` section for a group: everything the monitor needs except `ip`, plus `extra`.
fn group(extra: &str, nodes: &str) -> String {
    format!(
        "include mmm_common.conf\n<monitor>\n    pid_path /run/mmm_mond.pid\n    bin_path /usr/lib/mysql-mmm/\n    status_path /var/lib/misc/mmm_mond.status\n    ping_ips 10.0.0.254\n{extra}</monitor>\n{nodes}"
    )
}

const THREE_NODES: &str = "<monitor_node mon1>\n    ip 10.0.0.21\n</monitor_node>\n<monitor_node mon2>\n    ip 10.0.0.22\n</monitor_node>\n<monitor_node mon3>\n    ip 10.0.0.23\n</monitor_node>\n";

fn load(mon: &str, program: Program) -> Result<mmm_config::Config, mmm_config::Errors> {
    load_memory(
        &[("mmm_mon.conf", mon), ("mmm_common.conf", COMMON)],
        "mmm_mon.conf",
        program,
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("'{needle}' is not in the text"))
}

#[test]
fn three_node_group_file_parses_with_its_settings() {
    let fixture = Fixture::new();
    fixture.copy("group/mmm_mon.conf", "mmm_mon.conf");
    fixture.copy("group/mmm_common.conf", "mmm_common.conf");
    let config = ok(fixture.load("mmm_mon.conf", Program::Monitor));

    let group = config.monitor_group().expect("a group");
    assert!(!group.implicit);
    let members: Vec<(String, String)> = group
        .members
        .iter()
        .map(|m| (m.name.clone(), m.addr.to_string()))
        .collect();
    assert_eq!(
        members,
        vec![
            ("mon1".to_string(), "10.0.0.21:9988".to_string()),
            ("mon2".to_string(), "10.0.0.22:9990".to_string()),
            ("mon3".to_string(), "10.0.0.23:9988".to_string()),
        ]
    );
    assert_eq!(group.this.as_deref(), Some("mon2"));
    assert_eq!(
        group.this_member().map(|m| m.addr.to_string()),
        Some("10.0.0.22:9990".to_string())
    );

    let monitor = config.monitor.as_ref().expect("<monitor>");
    assert_eq!(monitor.ip, None);
    assert_eq!(monitor.data_dir, PathBuf::from("/var/lib/mysql-mmm/raft"));
    assert_eq!(monitor.lease, Duration::from_secs(2));
    assert_eq!(monitor.lease_renew_interval, Duration::from_millis(400));
    assert!((monitor.clock_drift - 0.02).abs() < f64::EPSILON);
    assert_eq!(monitor.raft_heartbeat, Duration::from_millis(50));
    assert_eq!(monitor.election_timeout_min, Duration::from_millis(300));
    assert_eq!(monitor.election_timeout_max, Duration::from_millis(600));
    assert_eq!(
        config.socket.api_secret_file,
        Some(PathBuf::from("/etc/mysql-mmm/api.secret"))
    );
    assert_eq!(config.socket.api_readonly_secret_file, None);
    assert_eq!(
        config.socket.raft_secret_file,
        Some(PathBuf::from("/etc/mysql-mmm/raft.secret"))
    );
    assert_eq!(config.socket.agent_secret_file, None);
    assert_eq!(config.warnings, vec![]);

    // mmm_control reads the same file and needs no <monitor> ip either.
    ok(fixture.load("mmm_mon.conf", Program::Control));
}

#[test]
fn plain_mmm_config_gets_the_extension_defaults() {
    let mon = "include mmm_common.conf\n<monitor>\n    ip 127.0.0.1\n    pid_path p\n    bin_path b\n    status_path s\n    ping_ips 10.0.0.254\n</monitor>\n";
    let config = ok(load(mon, Program::Monitor));
    let monitor = config.monitor.as_ref().expect("<monitor>");
    assert_eq!(monitor.node, None);
    assert_eq!(monitor.data_dir, PathBuf::from("/var/lib/mysql-mmm/raft"));
    assert_eq!(monitor.lease, Duration::from_millis(1500));
    assert_eq!(monitor.lease_renew_interval, Duration::from_millis(300));
    assert!((monitor.clock_drift - 0.01).abs() < f64::EPSILON);
    assert_eq!(monitor.raft_heartbeat, Duration::from_millis(100));
    assert_eq!(monitor.election_timeout_min, Duration::from_millis(300));
    assert_eq!(monitor.election_timeout_max, Duration::from_millis(500));
    let group = config.monitor_group().expect("a group");
    assert!(group.implicit);
    assert_eq!(group.this.as_deref(), Some(IMPLICIT_MONITOR_NODE));
}

#[test]
fn single_replica_is_named_after_node_when_given() {
    let mon = group("    ip 127.0.0.1\n    port 9000\n    node alpha\n", "");
    let config = ok(load(&mon, Program::Monitor));
    let group = config.monitor_group().expect("a group");
    let this = group.this_member().expect("this replica");
    assert_eq!(this.name, "alpha");
    assert_eq!(this.addr.to_string(), "127.0.0.1:9000");
}

#[test]
fn node_is_required_for_the_monitor_when_nodes_are_defined() {
    let mon = group("", THREE_NODES);
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec!["mmm_mon.conf:2: <monitor>: key 'node' is required because <monitor_node> sections are defined (one of: mon1, mon2, mon3)"]
    );
    // mmm_control talks to any replica; it does not need to be one.
    let config = ok(load(&mon, Program::Control));
    assert_eq!(config.monitor_group().and_then(|g| g.this), None);
}

#[test]
fn node_must_name_a_defined_monitor_node() {
    let mon = group("    node mon4\n", THREE_NODES);
    let line = line_of(&mon, "node mon4");
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec![format!(
            "mmm_mon.conf:{line}: <monitor>: 'node': monitor node 'mon4' is not defined (defined: mon1, mon2, mon3)"
        )]
    );
}

#[test]
fn election_timeout_min_must_be_below_max() {
    let mon = group(
        "    node mon1\n    election_timeout_min 0.8\n    election_timeout_max 0.8\n",
        THREE_NODES,
    );
    let line = line_of(&mon, "election_timeout_min");
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec![format!(
            "mmm_mon.conf:{line}: <monitor>: 'election_timeout_min' (0.8 s) must be less than 'election_timeout_max' (0.8 s)"
        )]
    );
}

#[test]
fn raft_heartbeat_must_be_below_election_timeout_min() {
    let mon = group("    node mon1\n    raft_heartbeat 0.5\n", THREE_NODES);
    let line = line_of(&mon, "raft_heartbeat");
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec![format!(
            "mmm_mon.conf:{line}: <monitor>: 'raft_heartbeat' (0.5 s) must be less than 'election_timeout_min' (0.3 s)"
        )]
    );
}

#[test]
fn lease_renew_interval_must_be_below_lease() {
    let mon = group("    node mon1\n    lease 1\n", THREE_NODES);
    let mon = mon.replace("    lease 1\n", "    lease_renew_interval 1.5\n");
    let line = line_of(&mon, "lease_renew_interval");
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec![format!(
            "mmm_mon.conf:{line}: <monitor>: 'lease_renew_interval' (1.5 s) must be less than 'lease' (1.5 s)"
        )]
    );
}

#[test]
fn clock_drift_must_be_a_fraction_below_one_half() {
    let mon = group("    node mon1\n    clock_drift 0.5\n", THREE_NODES);
    let line = line_of(&mon, "clock_drift");
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec![format!(
            "mmm_mon.conf:{line}: <monitor>: 'clock_drift': '0.5' is not a fraction from 0 up to (not including) 0.5, such as 0.01"
        )]
    );
}

#[test]
fn two_monitor_nodes_at_one_address_are_reported() {
    let nodes = "<monitor_node mon1>\n    ip 10.0.0.21\n</monitor_node>\n<monitor_node mon2>\n    ip 10.0.0.21\n    port 9988\n</monitor_node>\n";
    let mon = group("    node mon1\n", nodes);
    let line = line_of(&mon, "<monitor_node mon2>") + 1;
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec![format!(
            "mmm_mon.conf:{line}: <monitor_node mon2>: address 10.0.0.21:9988 is already used by <monitor_node mon1>"
        )]
    );
}

#[test]
fn monitor_node_without_ip_is_reported() {
    let nodes = "<monitor_node mon1>\n    port 9999\n</monitor_node>\n";
    let mon = group("    node mon1\n", nodes);
    let line = line_of(&mon, "<monitor_node mon1>");
    assert_eq!(
        messages(load(&mon, Program::Monitor)),
        vec![format!(
            "mmm_mon.conf:{line}: <monitor_node mon1>: required key 'ip' is missing (needed by mmm_mond)"
        )]
    );
}

#[test]
fn monitor_ip_next_to_monitor_nodes_is_ignored_with_a_warning() {
    let mon = group("    node mon1\n    ip 127.0.0.1\n", THREE_NODES);
    let line = line_of(&mon, "ip 127.0.0.1");
    let config = ok(load(&mon, Program::Monitor));
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        vec![format!(
            "mmm_mon.conf:{line}: warning: <monitor>: 'ip' is ignored because <monitor_node> sections define the monitor group"
        )]
    );
}
