//! The seed document's three files (a Chinese MMM 2.2.1 guide, trailing `#` comments and all)
//! load for the monitor and the agent, with MMM's defaults filled in (reference 1.12, 1.4).

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{ok, Fixture};
use mmm_config::{summary, CheckName, HostMode, MonitorMode, Program, RoleMode, SocketType};

fn seed() -> Fixture {
    let fixture = Fixture::new();
    for name in ["mmm_common.conf", "mmm_agent.conf", "mmm_mon.conf"] {
        fixture.copy(&format!("seed/{name}"), name);
    }
    fixture
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a test IP")
}

#[test]
fn seed_monitor_config_loads_with_mmm_defaults() {
    let fixture = seed();
    let config = ok(fixture.load("mmm_mon.conf", Program::Monitor));

    assert_eq!(config.active_master_role.as_deref(), Some("writer"));
    assert!(!config.debug);
    assert_eq!(config.max_kill_retries, 10);
    assert_eq!(config.socket.kind, SocketType::Plain);

    let monitor = config.monitor.as_ref().expect("a <monitor> section");
    assert_eq!(monitor.ip, Some(ip("127.0.0.1")));
    assert_eq!(monitor.port, 9988);
    assert_eq!(
        monitor.pid_path,
        Some(PathBuf::from("/var/run/mmm_mond.pid"))
    );
    assert_eq!(monitor.bin_path, Some(PathBuf::from("/usr/lib/mysql-mmm/")));
    assert_eq!(
        monitor.status_path,
        Some(PathBuf::from("/var/lib/misc/mmm_mond.status"))
    );
    assert_eq!(
        monitor.ping_ips,
        vec![
            ip("192.168.197.184"),
            ip("192.168.197.187"),
            ip("192.168.197.186"),
            ip("192.168.197.188")
        ]
    );
    assert_eq!(monitor.ping_interval, Duration::from_secs(1));
    assert_eq!(monitor.auto_set_online, Duration::ZERO);
    assert_eq!(monitor.auto_set_online_after(), None);
    assert!(monitor.careful_startup);
    assert_eq!(monitor.mode, MonitorMode::Active);
    assert_eq!(monitor.flap_duration, Duration::from_secs(3600));
    assert_eq!(monitor.flap_count, 3);
    assert_eq!(monitor.wait_for_other_master, Duration::from_secs(120));
    assert_eq!(
        monitor.kill_host_path(),
        Some(PathBuf::from("/usr/lib/mysql-mmm/monitor/kill_host"))
    );

    let names: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["master1", "master2", "slave1", "slave2"]);
    let master1 = &config.hosts["master1"];
    assert_eq!(master1.ip, Some(ip("192.168.197.184")));
    assert_eq!(master1.mode, Some(HostMode::Master));
    assert_eq!(master1.peer.as_deref(), Some("master2"));
    assert_eq!(master1.agent_port, 9989);
    assert_eq!(master1.mysql_port, 3306);
    assert_eq!(master1.cluster_interface.as_deref(), Some("eno16777736"));
    assert_eq!(master1.monitor_user.as_deref(), Some("mmm_monitor"));
    assert_eq!(
        master1.monitor_password.as_ref().map(|s| s.expose()),
        Some("pwd123")
    );
    let master2 = &config.hosts["master2"];
    assert_eq!(master2.ip, Some(ip("192.168.197.187")));
    assert_eq!(master2.peer.as_deref(), Some("master1"));
    let slave1 = &config.hosts["slave1"];
    assert_eq!(slave1.mode, Some(HostMode::Slave));
    assert_eq!(slave1.peer, None);
    assert_eq!(slave1.ip, Some(ip("192.168.197.186")));
    assert_eq!(config.hosts["slave2"].ip, Some(ip("192.168.197.188")));

    let writer = &config.roles["writer"];
    assert_eq!(writer.mode, Some(RoleMode::Exclusive));
    assert_eq!(writer.hosts, vec!["master1", "master2"]);
    assert_eq!(writer.ips, vec![ip("192.168.197.101")]);
    let reader = &config.roles["reader"];
    assert_eq!(reader.mode, Some(RoleMode::Balanced));
    assert_eq!(reader.hosts, vec!["master2", "slave1", "slave2"]);
    assert_eq!(
        reader.ips,
        vec![
            ip("192.168.197.102"),
            ip("192.168.197.103"),
            ip("192.168.197.104")
        ]
    );

    for name in CheckName::ALL {
        let check = config.check(name);
        assert_eq!(check.check_period, Duration::from_secs(5), "{name}");
        assert_eq!(check.trap_period, Duration::from_secs(10), "{name}");
        assert_eq!(check.timeout, Duration::from_secs(2), "{name}");
        // `#restart_after 10000` is commented out in the seed, so this is MMM's default.
        assert_eq!(check.restart_after, 10_000, "{name}");
        assert_eq!(check.max_backlog, Duration::from_secs(86_400), "{name}");
    }

    let group = config.monitor_group().expect("a monitor group");
    assert!(group.implicit);
    assert_eq!(group.members.len(), 1);
    let this = group.this_member().expect("this replica");
    assert_eq!(this.name, "mon1");
    assert_eq!(this.addr, "127.0.0.1:9988".parse().expect("an address"));

    assert_eq!(
        config.files,
        vec![
            fixture.path("mmm_mon.conf"),
            fixture.path("mmm_common.conf")
        ]
    );
    assert_eq!(config.warnings, vec![]);
}

#[test]
fn seed_agent_config_loads_for_master1() {
    let fixture = seed();
    let config = ok(fixture.load("mmm_agent.conf", Program::Agent));
    assert_eq!(config.this.as_deref(), Some("master1"));
    let this = config.this_host().expect("the agent's host");
    assert_eq!(this.ip, Some(ip("192.168.197.184")));
    assert_eq!(this.cluster_interface.as_deref(), Some("eno16777736"));
    assert_eq!(
        this.pid_path,
        Some(PathBuf::from("/var/run/mmm_agentd.pid"))
    );
    assert_eq!(this.bin_path, Some(PathBuf::from("/usr/lib/mysql-mmm/")));
    assert_eq!(this.agent_user.as_deref(), Some("mmm_agent"));
    assert_eq!(
        this.agent_password.as_ref().map(|s| s.expose()),
        Some("pwd123")
    );
    assert_eq!(this.replication_user.as_deref(), Some("rep"));
    assert_eq!(
        this.replication_password.as_ref().map(|s| s.expose()),
        Some("pwd123")
    );
    assert_eq!(this.agent_port, 9989);
    // The agent's file has no <monitor> and no monitor users; it does not need them.
    assert_eq!(config.monitor, None);
    assert_eq!(this.monitor_user, None);
    assert_eq!(config.monitor_group(), None);
}

#[test]
fn seed_agent_config_is_not_enough_for_the_monitor() {
    let fixture = seed();
    let errors = common::messages(fixture.load("mmm_agent.conf", Program::Monitor));
    let main = fixture.path("mmm_agent.conf").display().to_string();
    assert_eq!(
        errors.first().map(String::as_str),
        Some(format!("{main}: the <monitor> section is missing (needed by mmm_mond)").as_str())
    );
}

#[test]
fn seed_monitor_summary_explains_auto_set_online_zero() {
    let fixture = seed();
    let config = ok(fixture.load("mmm_mon.conf", Program::Monitor));
    let text = summary(&config, Program::Monitor);
    assert!(
        text.contains(
            "auto_set_online 0: never: hosts stay in AWAITING_RECOVERY until `mmm_control set_online`"
        ),
        "{text}"
    );
    assert!(!text.contains("pwd123"), "{text}");
}
