//! The grammar as MMM's `Config.pm` reads it (reference 1.12), plus the trailing-comment rule:
//! comments, key/value lines, lists, booleans, durations, empty sections, templates, merging of
//! repeated sections, and the warnings for what MMM accepted silently.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{load_memory, ok, COMMON, MONITOR};
use mmm_config::{CheckName, Config, Program};

fn monitor(extra_common: &str, mon: &str) -> Config {
    let common = format!("{COMMON}{extra_common}");
    ok(load_memory(
        &[("mmm_mon.conf", mon), ("mmm_common.conf", &common)],
        "mmm_mon.conf",
        Program::Monitor,
    ))
}

fn with_monitor(extra: &str) -> String {
    format!("include mmm_common.conf\n{MONITOR}{extra}")
}

fn warnings(config: &Config) -> Vec<String> {
    config.warnings.iter().map(ToString::to_string).collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a test IP")
}

#[test]
fn trailing_hash_after_whitespace_is_a_comment() {
    let config = monitor(
        "<host db4>   # a comment after a tag\n    ip 10.0.0.4  # db4\n\tmode slave\t# tab before the hash\n</host>  # done\n",
        &with_monitor(""),
    );
    assert_eq!(config.hosts["db4"].ip, Some(ip("10.0.0.4")));
}

#[test]
fn hash_inside_a_value_is_kept() {
    let config = monitor(
        "<host db4>\n    ip 10.0.0.4\n    mode slave\n    monitor_password pa#ss # and a comment\n</host>\n",
        &with_monitor(""),
    );
    assert_eq!(
        config.hosts["db4"]
            .monitor_password
            .as_ref()
            .map(|s| s.expose()),
        Some("pa#ss")
    );
}

#[test]
fn indented_and_unindented_comments_and_keys_work() {
    let mon = "include mmm_common.conf\n<monitor>\n  # indented comment\nip 127.0.0.1\n\tpid_path /p\n    bin_path /b\nstatus_path /s\nping_ips\t10.0.0.254\n    #restart_after 10000\n</monitor>\n";
    let config = monitor("", mon);
    let m = config.monitor.as_ref().expect("<monitor>");
    assert_eq!(m.ping_ips, vec![ip("10.0.0.254")]);
}

#[test]
fn windows_line_endings_are_accepted() {
    let mon = with_monitor("").replace('\n', "\r\n");
    let common = COMMON.replace('\n', "\r\n");
    let config = ok(load_memory(
        &[("mmm_mon.conf", &mon), ("mmm_common.conf", &common)],
        "mmm_mon.conf",
        Program::Monitor,
    ));
    assert_eq!(config.hosts["db1"].peer.as_deref(), Some("db2"));
}

#[test]
fn lists_accept_commas_with_or_without_spaces() {
    let config = monitor(
        "<role extra>\n    hosts db1,db2 ,  db3,\n    ips 10.0.0.201,10.0.0.202\n    mode balanced\n</role>\n",
        &with_monitor(""),
    );
    let extra = &config.roles["extra"];
    assert_eq!(extra.hosts, vec!["db1", "db2", "db3"]);
    assert_eq!(extra.ips, vec![ip("10.0.0.201"), ip("10.0.0.202")]);
}

#[test]
fn booleans_accept_every_mmm_spelling() {
    for (word, value) in [
        ("true", true),
        ("on", true),
        ("YES", true),
        ("1", true),
        ("false", false),
        ("Off", false),
        ("no", false),
        ("0", false),
    ] {
        let mon = with_monitor(&format!(
            "debug {word}\n<monitor>\n    careful_startup {word}\n</monitor>\n"
        ));
        let config = monitor("", &mon);
        assert_eq!(config.debug, value, "{word}");
        assert_eq!(
            config.monitor.as_ref().map(|m| m.careful_startup),
            Some(value),
            "{word}"
        );
    }
}

#[test]
fn durations_accept_fractional_seconds() {
    let mon = with_monitor("<check mysql>\n    check_period 1.5\n    timeout 0.25\n</check>\n");
    let config = monitor("", &mon);
    let mysql = config.check(CheckName::Mysql);
    assert_eq!(mysql.check_period, Duration::from_millis(1500));
    assert_eq!(mysql.timeout, Duration::from_millis(250));
    assert_eq!(
        config.check(CheckName::Ping).check_period,
        Duration::from_secs(5)
    );
}

#[test]
fn check_template_applies_to_every_check_and_a_check_section_overrides_it() {
    let mon = with_monitor(
        "<check default>\n    trap_period 20\n    max_backlog 120\n</check>\n<check rep_backlog>\n    max_backlog 300\n</check>\n",
    );
    let config = monitor("", &mon);
    for name in CheckName::ALL {
        assert_eq!(
            config.check(name).trap_period,
            Duration::from_secs(20),
            "{name}"
        );
        assert_eq!(
            config.check(name).check_period,
            Duration::from_secs(5),
            "{name}"
        );
    }
    assert_eq!(
        config.check(CheckName::Ping).max_backlog,
        Duration::from_secs(120)
    );
    assert_eq!(
        config.check(CheckName::RepBacklog).max_backlog,
        Duration::from_secs(300)
    );
}

#[test]
fn empty_section_forms_create_sections_with_template_values() {
    // mmm_control does not need a host's ip or mode, so db4 may stay empty.
    let common = format!("{COMMON}<host db4/>\n<socket/>\n");
    let config = ok(load_memory(
        &[
            (
                "mmm_mon.conf",
                &with_monitor("<check ping />\n<monitor/>\n"),
            ),
            ("mmm_common.conf", &common),
        ],
        "mmm_mon.conf",
        Program::Control,
    ));
    let db4 = &config.hosts["db4"];
    assert_eq!(db4.ip, None);
    assert_eq!(db4.monitor_user.as_deref(), Some("mmm_monitor"));
    assert_eq!(db4.agent_port, 9989);
}

#[test]
fn host_key_overrides_the_template() {
    let config = monitor(
        "<host db4>\n    ip 10.0.0.4\n    mode slave\n    monitor_user special\n</host>\n",
        &with_monitor(""),
    );
    assert_eq!(config.hosts["db4"].monitor_user.as_deref(), Some("special"));
    assert_eq!(
        config.hosts["db3"].monitor_user.as_deref(),
        Some("mmm_monitor")
    );
}

#[test]
fn templates_in_several_files_merge() {
    // The common file's <host default> has the agent keys; the monitor file adds mysql_port.
    let config = monitor(
        "",
        &with_monitor("<host default>\n    mysql_port 3307\n</host>\n"),
    );
    for host in config.hosts.values() {
        assert_eq!(host.mysql_port, 3307, "{}", host.name);
        assert_eq!(
            host.cluster_interface.as_deref(),
            Some("eth0"),
            "{}",
            host.name
        );
    }
    assert_eq!(config.warnings, vec![]);
}

#[test]
fn repeated_named_section_merges_keys_as_mmm_does() {
    let config = monitor(
        "",
        &with_monitor("<host db3>\n    mysql_port 3310\n</host>\n"),
    );
    let db3 = &config.hosts["db3"];
    assert_eq!(db3.mysql_port, 3310);
    assert_eq!(db3.ip, Some(ip("10.0.0.3")));
}

#[test]
fn repeated_key_takes_the_last_value_with_a_warning() {
    let mon = with_monitor("<host db3>\n    ip 10.0.0.33\n</host>\n");
    let config = monitor("", &mon);
    assert_eq!(config.hosts["db3"].ip, Some(ip("10.0.0.33")));
    let second = mon
        .lines()
        .position(|l| l.contains("10.0.0.33"))
        .map_or(0, |i| i + 1);
    let first = COMMON
        .lines()
        .position(|l| l.contains("ip 10.0.0.3"))
        .map_or(0, |i| i + 1);
    assert_eq!(
        warnings(&config),
        vec![format!(
            "mmm_mon.conf:{second}: warning: <host db3>: 'ip' is set again; this value replaces the one from mmm_common.conf:{first} (MMM uses the last value)"
        )]
    );
}

#[test]
fn mismatched_closing_tag_closes_the_section_with_a_warning() {
    let mon = with_monitor("<check ping>\n    timeout 3\n</host>\n");
    let config = monitor("", &mon);
    assert_eq!(
        config.check(CheckName::Ping).timeout,
        Duration::from_secs(3)
    );
    let close = mon.lines().count();
    let open = close - 2;
    assert_eq!(
        warnings(&config),
        vec![format!(
            "mmm_mon.conf:{close}: warning: </host> closes <check> opened on line {open} (MMM closes it too; write </check>)"
        )]
    );
}

#[test]
fn section_left_open_at_the_end_of_a_file_is_closed_with_a_warning() {
    let mon = with_monitor("<check ping>\n    timeout 3\n");
    let config = monitor("", &mon);
    assert_eq!(
        config.check(CheckName::Ping).timeout,
        Duration::from_secs(3)
    );
    let open = mon.lines().count() - 1;
    assert_eq!(
        warnings(&config),
        vec![format!(
            "mmm_mon.conf:{open}: warning: <check> is not closed before the end of the file (MMM closes it there; add </check>)"
        )]
    );
}

#[test]
fn prefer_on_a_balanced_role_and_several_ips_on_an_exclusive_role_are_warned_about() {
    let common = COMMON
        .replace("    mode balanced\n", "    mode balanced\n    prefer db3\n")
        .replace("ips 10.0.0.100\n", "ips 10.0.0.100, 10.0.0.99\n");
    let config = ok(load_memory(
        &[
            ("mmm_mon.conf", &with_monitor("")),
            ("mmm_common.conf", &common),
        ],
        "mmm_mon.conf",
        Program::Monitor,
    ));
    let prefer = common
        .lines()
        .position(|l| l.contains("prefer db3"))
        .map_or(0, |i| i + 1);
    let ips = common
        .lines()
        .position(|l| l.contains("10.0.0.99"))
        .map_or(0, |i| i + 1);
    assert_eq!(
        warnings(&config),
        vec![
            format!("mmm_common.conf:{ips}: warning: <role writer>: an exclusive role should have one IP; MMM 2.2.1 assigns all 2 but tracks only one of them"),
            format!("mmm_common.conf:{prefer}: warning: <role reader>: 'prefer' is ignored on a balanced role (MMM honours it for exclusive roles only)"),
        ]
    );
}

#[test]
fn debug_output_of_a_config_never_shows_passwords() {
    let config = monitor("", &with_monitor(""));
    let debug = format!("{config:?}");
    for password in ["RepAgent", "RepMonitor", "slave\""] {
        assert!(!debug.contains(password), "{password} in {debug}");
    }
    assert!(debug.contains("<redacted>"));
}
