//! MMM 2.2.1's shipped sample files (`etc/mysql-mmm/`, reference 1.12) load for the program
//! each is meant for: agent, monitor, mmm_control and the tools.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{ok, Fixture};
use mmm_config::{CheckName, HostMode, Program, RoleMode};

fn samples() -> Fixture {
    let fixture = Fixture::new();
    for name in [
        "mmm_common.conf",
        "mmm_agent.conf",
        "mmm_mon.conf",
        "mmm_tools.conf",
    ] {
        fixture.copy(&format!("mmm/{name}"), name);
    }
    fixture
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a test IP")
}

#[test]
fn shipped_agent_file_loads_for_the_agent() {
    let config = ok(samples().load("mmm_agent.conf", Program::Agent));
    assert_eq!(config.this.as_deref(), Some("db1"));
    let db1 = config.this_host().expect("db1");
    assert_eq!(db1.ip, Some(ip("192.168.0.31")));
    assert_eq!(db1.mode, Some(HostMode::Master));
    assert_eq!(db1.peer.as_deref(), Some("db2"));
    // Every host takes the template's agent settings.
    for host in config.hosts.values() {
        assert_eq!(
            host.cluster_interface.as_deref(),
            Some("eth0"),
            "{}",
            host.name
        );
        assert_eq!(host.agent_user.as_deref(), Some("mmm_agent"));
        assert_eq!(
            host.agent_password.as_ref().map(|s| s.expose()),
            Some("RepAgent")
        );
        assert_eq!(host.replication_user.as_deref(), Some("replication"));
        assert_eq!(
            host.pid_path,
            Some(PathBuf::from("/var/run/mmm_agentd.pid"))
        );
    }
    assert_eq!(config.roles["writer"].ips, vec![ip("192.168.0.50")]);
}

#[test]
fn shipped_monitor_file_loads_for_the_monitor_and_for_mmm_control() {
    let fixture = samples();
    let config = ok(fixture.load("mmm_mon.conf", Program::Monitor));
    let monitor = config.monitor.as_ref().expect("<monitor>");
    assert_eq!(monitor.ip, Some(ip("127.0.0.1")));
    assert_eq!(
        monitor.ping_ips,
        vec![ip("192.168.0.1"), ip("192.168.0.2"), ip("192.168.0.3")]
    );
    assert_eq!(
        config.hosts["db3"].monitor_user.as_deref(),
        Some("mmm_monitor")
    );
    assert_eq!(config.roles["reader"].mode, Some(RoleMode::Balanced));
    assert_eq!(config.roles["reader"].hosts, vec!["db1", "db2", "db3"]);
    assert_eq!(
        config.check(CheckName::RepBacklog).max_backlog,
        Duration::from_secs(60)
    );

    let control = ok(fixture.load("mmm_mon.conf", Program::Control));
    let group = control.monitor_group().expect("a group");
    assert_eq!(
        group.members.first().map(|m| m.addr),
        Some("127.0.0.1:9988".parse().expect("an address"))
    );
}

#[test]
fn shipped_tools_file_loads_for_the_tools() {
    let config = ok(samples().load("mmm_tools.conf", Program::Tools));
    assert_eq!(config.this.as_deref(), Some("db1"));
    assert_eq!(config.default_copy_method.as_deref(), Some("scp"));
    assert_eq!(config.clone_dirs, vec!["data", "logs"]);
    let db2 = &config.hosts["db2"];
    assert_eq!(db2.ssh_user.as_deref(), Some("root"));
    assert_eq!(db2.ssh_port, 22);
    assert_eq!(db2.ssh_parameters, "");
    assert_eq!(db2.lvm_snapshot_size.as_deref(), Some("1G"));
    assert_eq!(db2.lvm_mount_opts.as_deref(), Some("-orw,nouuid"));
    assert_eq!(db2.lvm_bin_lvcreate, "lvcreate");
    assert_eq!(db2.backup_dir, Some(PathBuf::from("/mmm_backup")));
    assert_eq!(
        db2.mysql_pidfile,
        PathBuf::from("/var/run/mysqld/mysqld.pid")
    );

    let names: Vec<&str> = config.copy_methods.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["rdiff", "scp", "ssh-gz"]);
    let scp = &config.copy_methods["scp"];
    assert!(scp.true_copy && !scp.incremental && !scp.single_run);
    assert_eq!(
        scp.restore_command.as_deref(),
        Some("cp -axv %BACKUP_DIR%/* %DEST_DIR%/")
    );
    let rdiff = &config.copy_methods["rdiff"];
    assert!(rdiff.incremental && rdiff.single_run);
    assert_eq!(
        rdiff.incremental_command.as_deref(),
        Some("rdiff-backup --parsable-output -l %BACKUP_DIR%")
    );
    let gz = &config.copy_methods["ssh-gz"];
    assert_eq!(
        gz.backup_command.as_deref(),
        Some("ssh -c blowfish %SSH_USER%@%IP% \"cd '%SNAPSHOT%'; tar cv !'%CLONE_DIR%'!\" | gzip > %DEST_DIR%/backup.tar.gz")
    );
}

#[test]
fn shipped_common_file_alone_is_missing_each_programs_own_keys() {
    let fixture = samples();
    let main = fixture.path("mmm_common.conf").display().to_string();
    let errors = common::messages(fixture.load("mmm_common.conf", Program::Agent));
    assert_eq!(
        errors,
        vec![format!(
            "{main}: required key 'this' is missing (needed by mmm_agentd)"
        )]
    );
    let errors = common::messages(fixture.load("mmm_common.conf", Program::Control));
    assert_eq!(
        errors,
        vec![format!(
            "{main}: the <monitor> section is missing (needed by mmm_control)"
        )]
    );
}
