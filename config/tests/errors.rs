//! Every error the loader reports, each with its exact message: file, line, section, key and
//! what was expected (reference 1.12 for MMM's rules; the crate docs for the additions).
//! Files live in memory here so the messages carry short names like `mmm_common.conf:22`.

mod common;

use common::{load_memory, messages, ok, COMMON, MONITOR};
use mmm_config::Program;

/// The 1-based number of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("'{needle}' is not in the text"))
}

/// Loads `common` as mmm_common.conf through an mmm_mon.conf with a valid <monitor>.
fn monitor_with_common(common: &str) -> Vec<String> {
    let mon = format!("include mmm_common.conf\n{MONITOR}");
    messages(load_memory(
        &[("mmm_mon.conf", &mon), ("mmm_common.conf", common)],
        "mmm_mon.conf",
        Program::Monitor,
    ))
}

fn common_with(from: &str, to: &str) -> String {
    assert!(COMMON.contains(from), "{from}");
    COMMON.replacen(from, to, 1)
}

#[test]
fn the_test_common_file_is_valid_for_the_monitor() {
    let mon = format!("include mmm_common.conf\n{MONITOR}");
    ok(load_memory(
        &[("mmm_mon.conf", &mon), ("mmm_common.conf", COMMON)],
        "mmm_mon.conf",
        Program::Monitor,
    ));
}

#[test]
fn unknown_key_suggests_the_closest_known_key() {
    let common = common_with("    mode slave\n", "    mod slave\n");
    let line = line_of(&common, "mod slave");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <host db3>: key 'mod' is unknown (did you mean 'mode'?)"
        )]
    );
}

#[test]
fn unknown_key_says_where_a_key_of_another_scope_belongs() {
    let text = "ip 10.0.0.1\n<role writer>\n    this db1\n</role>\n<host db1>\n    monitor x\n</host>\n<monitor>\n    ip 10.0.0.1\n    flap 1\n</monitor>\n";
    assert_eq!(
        messages(load_memory(&[("x.conf", text)], "x.conf", Program::Control)),
        vec![
            "x.conf:1: key 'ip' is unknown here (it belongs in <monitor> or <host> or <monitor_node>)",
            "x.conf:3: <role writer>: key 'this' is unknown here (it belongs at the top level, outside sections)",
            "x.conf:6: <host db1>: key 'monitor' is unknown ('monitor' is a section: <monitor> ... </monitor>)",
            "x.conf:10: <monitor>: key 'flap' is unknown",
        ]
    );
}

#[test]
fn invalid_ip_in_a_list_names_the_item() {
    let common = common_with("10.0.0.102, 10.0.0.103", "10.0.0.102, 10.0.0.300");
    let line = line_of(&common, "10.0.0.300");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <role reader>: 'ips': '10.0.0.300' is not an IP address"
        )]
    );
}

#[test]
fn invalid_host_ip_is_reported() {
    let common = common_with("ip 10.0.0.3", "ip db3.example.com");
    let line = line_of(&common, "db3.example.com");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <host db3>: 'ip': 'db3.example.com' is not an IP address"
        )]
    );
}

#[test]
fn port_out_of_range_is_reported() {
    let common = common_with(
        "    ip 10.0.0.3\n",
        "    ip 10.0.0.3\n    mysql_port 70000\n",
    );
    let line = line_of(&common, "70000");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <host db3>: 'mysql_port': '70000' is not a port number (1-65535)"
        )]
    );
}

#[test]
fn bad_enum_boolean_and_duration_values_say_what_is_expected() {
    let text = "debug maybe\n<host db1>\n    mode Master\n</host>\n<role r>\n    mode shared\n</role>\n<monitor>\n    mode automatic\n    flap_duration 1h\n    careful_startup 2\n    flap_count -1\n    ip 127.0.0.1\n</monitor>\n<socket>\n    type tls\n</socket>\n";
    assert_eq!(
        messages(load_memory(&[("x.conf", text)], "x.conf", Program::Control)),
        vec![
            "x.conf:1: 'debug': 'maybe' is not a boolean (true, on, yes or 1; false, off, no or 0)",
            "x.conf:3: <host db1>: 'mode': 'Master' is not one of 'master', 'slave'",
            "x.conf:6: <role r>: 'mode': 'shared' is not one of 'exclusive', 'balanced'",
            "x.conf:9: <monitor>: 'mode': 'automatic' is not one of 'active', 'manual', 'wait', 'passive'",
            "x.conf:10: <monitor>: 'flap_duration': '1h' is not a number of seconds (such as 5 or 1.5)",
            "x.conf:11: <monitor>: 'careful_startup': '2' is not a boolean (true, on, yes or 1; false, off, no or 0)",
            "x.conf:12: <monitor>: 'flap_count': '-1' is not a whole number",
            "x.conf:16: <socket>: 'type': 'tls' is not one of 'plain', 'ssl'",
        ]
    );
}

#[test]
fn key_without_value_is_reported() {
    let text = "<host db1>\n    ip\n    agent_password #secret\n</host>\n";
    assert_eq!(
        messages(load_memory(&[("x.conf", text)], "x.conf", Program::Control)),
        vec![
            "x.conf:2: <host db1>: key 'ip' has no value",
            "x.conf:3: <host db1>: key 'agent_password' has no value (a '#' after whitespace starts a comment)",
            "x.conf: the <monitor> section is missing (needed by mmm_control)",
        ]
    );
}

#[test]
fn role_naming_an_undefined_host_is_reported() {
    let common = common_with("hosts db1, db2\n", "hosts db1, db7\n");
    let line = line_of(&common, "hosts db1, db7");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <role writer>: host 'db7' is not defined"
        )]
    );
}

#[test]
fn prefer_outside_the_roles_hosts_is_reported() {
    let common = common_with(
        "    mode exclusive\n",
        "    mode exclusive\n    prefer db3\n",
    );
    let line = line_of(&common, "prefer db3");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <role writer>: 'prefer': host 'db3' is not one of the role's hosts (db1, db2)"
        )]
    );
}

#[test]
fn role_ip_listed_twice_in_one_role_is_reported() {
    let common = common_with("10.0.0.102, 10.0.0.103", "10.0.0.102, 10.0.0.101");
    let line = line_of(&common, "10.0.0.101, 10.0.0.102, 10.0.0.101");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <role reader>: IP 10.0.0.101 is already used by <role reader> (mmm_common.conf:{line})"
        )]
    );
}

#[test]
fn role_ip_listed_in_two_roles_is_reported() {
    let common = common_with("10.0.0.101, 10.0.0.102", "10.0.0.100, 10.0.0.102");
    let writer = line_of(&common, "ips 10.0.0.100\n".trim_end());
    let reader = line_of(&common, "ips 10.0.0.100, 10.0.0.102");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{reader}: <role reader>: IP 10.0.0.100 is already used by <role writer> (mmm_common.conf:{writer})"
        )]
    );
}

#[test]
fn peer_naming_an_undefined_host_is_reported() {
    let common = common_with("peer db2\n", "peer db9\n");
    let line = line_of(&common, "peer db9");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <host db1>: host 'db9' is not defined"
        )]
    );
}

#[test]
fn peer_that_is_not_a_master_is_reported() {
    let common = common_with("peer db2\n", "peer db3\n");
    let line = line_of(&common, "peer db3");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <host db1>: 'peer': host 'db3' is not a master (its mode is slave)"
        )]
    );
}

#[test]
fn host_that_is_its_own_peer_is_reported() {
    let common = common_with("peer db2\n", "peer db1\n");
    let line = line_of(&common, "peer db1");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <host db1>: 'peer': a host cannot be its own peer"
        )]
    );
}

#[test]
fn master_without_peer_is_an_error_for_monitor_and_agent_only() {
    let common = common_with("    peer db1\n", "");
    let line = line_of(&common, "ip 10.0.0.2") + 1;
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <host db2>: key 'peer' is required because 'mode' is 'master'"
        )]
    );
    let agent = format!("{common}this db3\n");
    assert_eq!(
        messages(load_memory(
            &[("mmm_agent.conf", &agent)],
            "mmm_agent.conf",
            Program::Agent
        )),
        vec![format!(
            "mmm_agent.conf:{line}: <host db2>: key 'peer' is required because 'mode' is 'master'"
        )]
    );
    let control = format!("{common}{MONITOR}");
    ok(load_memory(
        &[("mmm_mon.conf", &control)],
        "mmm_mon.conf",
        Program::Control,
    ));
}

#[test]
fn active_master_role_with_three_hosts_is_reported() {
    let common = common_with("hosts db1, db2\n", "hosts db1, db2, db3\n");
    let line = line_of(&common, "hosts db1, db2, db3");
    assert_eq!(
        monitor_with_common(&common),
        vec![format!(
            "mmm_common.conf:{line}: <role writer>: the active master role can be held by at most two hosts, but 'hosts' lists 3: db1, db2, db3"
        )]
    );
}

#[test]
fn other_exclusive_roles_may_have_more_than_two_hosts() {
    let extra =
        "<role backup>\n    hosts db1, db2, db3\n    ips 10.0.0.200\n    mode exclusive\n</role>\n";
    let common = format!("{COMMON}{extra}");
    let mon = format!("include mmm_common.conf\n{MONITOR}");
    ok(load_memory(
        &[("mmm_mon.conf", &mon), ("mmm_common.conf", &common)],
        "mmm_mon.conf",
        Program::Monitor,
    ));
}

#[test]
fn undefined_active_master_role_is_reported() {
    let common = common_with("active_master_role writer", "active_master_role writerr");
    assert_eq!(
        monitor_with_common(&common),
        vec!["mmm_common.conf:1: 'active_master_role': role 'writerr' is not defined"]
    );
}

#[test]
fn balanced_active_master_role_is_reported() {
    let common = common_with("active_master_role writer", "active_master_role reader");
    let hosts = line_of(&common, "hosts db1, db2, db3");
    assert_eq!(
        monitor_with_common(&common),
        vec![
            "mmm_common.conf:1: 'active_master_role': role 'reader' is balanced, but the active master role must be exclusive".to_string(),
            format!("mmm_common.conf:{hosts}: <role reader>: the active master role can be held by at most two hosts, but 'hosts' lists 3: db1, db2, db3"),
        ]
    );
}

#[test]
fn this_naming_an_undefined_host_is_reported() {
    let agent = "include mmm_common.conf\nthis db9\n";
    assert_eq!(
        messages(load_memory(
            &[("mmm_agent.conf", agent), ("mmm_common.conf", COMMON)],
            "mmm_agent.conf",
            Program::Agent
        )),
        vec!["mmm_agent.conf:2: host 'db9' is not defined"]
    );
}

#[test]
fn missing_required_keys_name_the_section_and_program() {
    let common = common_with("    agent_user mmm_agent\n", "");
    let common = common_with_text(&common, "    ip 10.0.0.3\n", "");
    let agent = format!("{common}this db1\n");
    let db1 = line_of(&agent, "<host db1>");
    let db2 = line_of(&agent, "<host db2>");
    let db3 = line_of(&agent, "<host db3>");
    assert_eq!(
        messages(load_memory(&[("mmm_agent.conf", &agent)], "mmm_agent.conf", Program::Agent)),
        vec![
            format!("mmm_agent.conf:{db1}: <host db1>: required key 'agent_user' is missing (needed by mmm_agentd)"),
            format!("mmm_agent.conf:{db2}: <host db2>: required key 'agent_user' is missing (needed by mmm_agentd)"),
            format!("mmm_agent.conf:{db3}: <host db3>: required key 'ip' is missing (needed by mmm_agentd)"),
            format!("mmm_agent.conf:{db3}: <host db3>: required key 'agent_user' is missing (needed by mmm_agentd)"),
        ]
    );
}

fn common_with_text(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn missing_sections_are_reported_per_program() {
    let empty = "debug 0\n";
    assert_eq!(
        messages(load_memory(
            &[("x.conf", empty)],
            "x.conf",
            Program::Monitor
        )),
        vec![
            "x.conf: required key 'active_master_role' is missing (needed by mmm_mond)",
            "x.conf: a <host NAME> section is missing (needed by mmm_mond)",
            "x.conf: a <role NAME> section is missing (needed by mmm_mond)",
            "x.conf: the <monitor> section is missing (needed by mmm_mond)",
        ]
    );
    assert_eq!(
        messages(load_memory(&[("x.conf", empty)], "x.conf", Program::Tools)),
        vec![
            "x.conf: required key 'this' is missing (needed by mmm_backup/mmm_restore/mmm_clone)",
            "x.conf: a <host NAME> section is missing (needed by mmm_backup/mmm_restore/mmm_clone)",
        ]
    );
}

#[test]
fn ssl_socket_requires_its_files() {
    let text = format!(
        "{COMMON}{MONITOR}<socket>\n    type ssl\n    cert_file /etc/mmm/cert.pem\n</socket>\n"
    );
    let line = line_of(&text, "type ssl");
    assert_eq!(
        messages(load_memory(
            &[("mmm_mon.conf", &text)],
            "mmm_mon.conf",
            Program::Monitor
        )),
        vec![
            format!(
                "mmm_mon.conf:{line}: <socket>: key 'key_file' is required because 'type' is 'ssl'"
            ),
            format!(
                "mmm_mon.conf:{line}: <socket>: key 'ca_file' is required because 'type' is 'ssl'"
            ),
        ]
    );
    // MMM's mmm_control needed no CA file (reference 1.12); ours checks the monitor's
    // certificate against it, so it needs one too.
    let text = format!(
        "{COMMON}{MONITOR}<socket>\n    type ssl\n    cert_file c\n    key_file k\n</socket>\n"
    );
    let line = line_of(&text, "type ssl");
    assert_eq!(
        messages(load_memory(
            &[("mmm_mon.conf", &text)],
            "mmm_mon.conf",
            Program::Control
        )),
        vec![format!(
            "mmm_mon.conf:{line}: <socket>: key 'ca_file' is required because 'type' is 'ssl'"
        )]
    );
}

#[test]
fn incremental_copy_method_requires_its_command() {
    let text = "<copy_method rdiff>\n    backup_command b\n    restore_command r\n    incremental yes\n</copy_method>\n<host db1>\n</host>\n";
    assert_eq!(
        messages(load_memory(&[("x.conf", text)], "x.conf", Program::Agent)),
        vec![
            "x.conf: required key 'this' is missing (needed by mmm_agentd)",
            "x.conf: required key 'active_master_role' is missing (needed by mmm_agentd)",
            "x.conf: a <role NAME> section is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'ip' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'mode' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'pid_path' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'bin_path' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'cluster_interface' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'agent_user' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'agent_password' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'replication_user' is missing (needed by mmm_agentd)",
            "x.conf:6: <host db1>: required key 'replication_password' is missing (needed by mmm_agentd)",
            "x.conf:4: <copy_method rdiff>: key 'incremental_command' is required because 'incremental' is '1'",
        ]
    );
}

#[test]
fn default_copy_method_must_be_defined() {
    let text = "default_copy_method scp\n<copy_method rsync>\n    backup_command b\n    restore_command r\n</copy_method>\n<host db1>\n    ip 10.0.0.1\n</host>\n";
    assert_eq!(
        messages(load_memory(&[("x.conf", text)], "x.conf", Program::Control)),
        vec![
            "x.conf: the <monitor> section is missing (needed by mmm_control)",
            "x.conf:1: 'default_copy_method': copy method 'scp' is not defined",
        ]
    );
}

#[test]
fn malformed_lines_and_tags_are_reported() {
    let text = "<host db1\n<hots db1>\nip 1.2.3.4\n</hots>\n<host>\n<monitor mon1>\n<check pnig>\n</check>\n</role>\n";
    assert_eq!(
        messages(load_memory(&[("x.conf", text)], "x.conf", Program::Control)),
        vec![
            "x.conf:1: a section tag must end with '>' and stand alone on its line (forms: <kind>, <kind name>, <kind/>, <kind name/> or </kind>)",
            "x.conf:2: unknown section <hots> (did you mean <host>?)",
            "x.conf:5: section <host> needs a name, as in <host NAME>",
            "x.conf:6: section <monitor> takes no name (found 'mon1')",
            "x.conf:7: <check pnig>: unknown check (did you mean 'ping'?); the checks are ping, mysql, rep_threads and rep_backlog, and <check default> is their template",
            "x.conf:9: </role> closes no open section",
        ]
    );
}

#[test]
fn nested_sections_and_includes_inside_sections_are_reported() {
    let text = "<host db1>\n    include other.conf\n    <role writer>\n    </role>\n";
    assert_eq!(
        messages(load_memory(&[("x.conf", text)], "x.conf", Program::Control)),
        vec![
            "x.conf:2: <host db1>: include is only allowed outside sections",
            "x.conf:3: <role writer> cannot be opened inside <host db1> (opened on line 1); close <host db1> first",
        ]
    );
}

#[test]
fn text_that_is_not_utf8_outside_comments_is_reported() {
    let mut memory = mmm_config::MemoryFiles::new();
    memory.insert("x.conf", b"this db\xff1\n# comment \xff is fine\n".to_vec());
    let result = mmm_config::Loader::with_search_path(Vec::<std::path::PathBuf>::new()).load_from(
        &memory,
        std::path::Path::new("x.conf"),
        Program::Control,
    );
    assert_eq!(
        messages(result),
        vec!["x.conf:1: the line is not valid UTF-8 (only comments may use another encoding)"]
    );
}

#[test]
fn one_load_reports_every_error_it_can_find() {
    let common = common_with("mode slave\n", "mod slave\n");
    let common = common_with_text(&common, "10.0.0.103", "10.0.0.300");
    let common = common_with_text(&common, "hosts db1, db2\n", "hosts db1, db7\n");
    let common = common_with_text(&common, "10.0.0.101, 10.0.0.102", "10.0.0.100, 10.0.0.102");
    let errors = monitor_with_common(&common);
    let mode = line_of(&common, "mod slave");
    let writer_hosts = line_of(&common, "hosts db1, db7");
    let writer_ips = line_of(&common, "ips 10.0.0.100\n".trim_end());
    let reader_ips = line_of(&common, "10.0.0.300");
    assert_eq!(
        errors,
        vec![
            format!("mmm_common.conf:{mode}: <host db3>: key 'mod' is unknown (did you mean 'mode'?)"),
            format!("mmm_common.conf:{reader_ips}: <role reader>: 'ips': '10.0.0.300' is not an IP address"),
            format!("mmm_common.conf:{writer_hosts}: <role writer>: host 'db7' is not defined"),
            format!("mmm_common.conf:{reader_ips}: <role reader>: IP 10.0.0.100 is already used by <role writer> (mmm_common.conf:{writer_ips})"),
        ]
    );
    let joined = load_memory(
        &[
            (
                "mmm_mon.conf",
                &format!("include mmm_common.conf\n{MONITOR}"),
            ),
            ("mmm_common.conf", &common),
        ],
        "mmm_mon.conf",
        Program::Monitor,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert_eq!(joined, errors.join("\n"));
}
