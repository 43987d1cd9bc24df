//! A plain-text account of what the loader understood, for `--check-config`.
//!
//! It lists what the given program will use: the monitor group and this replica, the mode,
//! hosts with ip/mode/peer, roles with mode/hosts/ips/prefer, the checks with their periods,
//! and the warnings. It spells out in words what `auto_set_online` does, because guides
//! disagree with MMM 2.2.1 about what 0 means (reference section 1.9). Passwords never appear:
//! the summary only says whether one is set.

use std::fmt::Write as _;

use crate::files::Program;
use crate::model::{Config, Host, Monitor, MonitorMode};
use crate::secret::Secret;
use crate::value::format_seconds;

/// Renders what `config` means for `program`.
pub fn summary(config: &Config, program: Program) -> String {
    let mut out = String::new();
    let files: Vec<String> = config
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    line(&mut out, format!("Configuration for {program}"));
    line(&mut out, format!("  files read: {}", files.join(", ")));

    if matches!(program, Program::Monitor | Program::Control) {
        monitor_group(&mut out, config, program);
    }
    if program == Program::Monitor {
        if let Some(monitor) = &config.monitor {
            monitor_settings(&mut out, monitor);
        }
    }
    if matches!(program, Program::Agent | Program::Tools) {
        line(&mut out, "");
        match config.this_host() {
            Some(host) => line(
                &mut out,
                format!(
                    "This host: {} ({})",
                    host.name,
                    host.ip
                        .map_or_else(|| "no ip".to_string(), |ip| ip.to_string())
                ),
            ),
            None => line(&mut out, "This host: not set ('this')"),
        }
        if program == Program::Agent {
            line(
                &mut out,
                format!("  max_kill_retries: {}", config.max_kill_retries),
            );
        }
    }
    hosts(&mut out, config, program);
    roles(&mut out, config);
    if program == Program::Monitor {
        checks(&mut out, config);
    }
    if program == Program::Tools {
        tools(&mut out, config);
    }
    if program != Program::Tools {
        line(&mut out, "");
        line(&mut out, format!("Socket: {}", config.socket.kind));
        for (key, value) in [
            ("cert_file", &config.socket.cert_file),
            ("key_file", &config.socket.key_file),
            ("ca_file", &config.socket.ca_file),
            ("api_secret_file", &config.socket.api_secret_file),
            (
                "api_readonly_secret_file",
                &config.socket.api_readonly_secret_file,
            ),
            ("raft_secret_file", &config.socket.raft_secret_file),
            ("agent_secret_file", &config.socket.agent_secret_file),
        ] {
            if let Some(path) = value {
                line(&mut out, format!("  {key}: {}", path.display()));
            }
        }
    }
    if config.debug {
        line(&mut out, "");
        line(
            &mut out,
            "debug is on: it has no effect (the daemons always run in the foreground and log to stderr; RUST_LOG=debug gives debug logs)",
        );
    }
    if !config.warnings.is_empty() {
        line(&mut out, "");
        line(&mut out, "Warnings");
        for warning in &config.warnings {
            line(&mut out, format!("  {warning}"));
        }
    }
    out
}

/// Names longer than this are not padded to, so one odd name cannot blow up every line.
const MAX_WIDTH: usize = 32;

fn column_width(lengths: impl Iterator<Item = usize>) -> usize {
    lengths.max().unwrap_or(0).min(MAX_WIDTH)
}

fn line(out: &mut String, text: impl AsRef<str>) {
    out.push_str(text.as_ref());
    out.push('\n');
}

fn monitor_group(out: &mut String, config: &Config, program: Program) {
    line(out, "");
    let Some(group) = config.monitor_group() else {
        line(
            out,
            "Monitor group: none (no <monitor> ip and no <monitor_node>)",
        );
        return;
    };
    if group.implicit {
        line(
            out,
            "Monitor group: a single replica (plain MMM config: <monitor> ip and port)",
        );
    } else {
        line(
            out,
            format!("Monitor group: {} replicas", group.members.len()),
        );
    }
    let width = group
        .members
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0)
        .min(MAX_WIDTH);
    for member in &group.members {
        // mmm_control is a client, not a replica, so it has no "this replica".
        let is_this = group.this.as_deref() == Some(member.name.as_str());
        let this = if is_this && program == Program::Monitor {
            "  <- this replica"
        } else {
            ""
        };
        line(
            out,
            format!("  {:width$}  {}{this}", member.name, member.addr),
        );
    }
}

fn mode_words(mode: MonitorMode) -> &'static str {
    match mode {
        MonitorMode::Active => {
            "full automation: failed hosts lose their roles, orphaned roles are assigned, 'prefer' is obeyed, balanced roles are spread"
        }
        MonitorMode::Manual => {
            "hosts change state but keep their roles when they fail; move roles with `mmm_control move_role`"
        }
        MonitorMode::Wait => {
            "like manual until both masters are ONLINE or wait_for_other_master passes, then active"
        }
        MonitorMode::Passive => "no role changes and no commands to agents",
    }
}

fn monitor_settings(out: &mut String, monitor: &Monitor) {
    line(out, "");
    line(out, "Monitor");
    line(
        out,
        format!("  mode: {} ({})", monitor.mode, mode_words(monitor.mode)),
    );
    if monitor.mode == MonitorMode::Wait {
        let wait = match monitor.wait_for_other_master_limit() {
            Some(limit) => format!("at most {}", format_seconds(limit)),
            None => "forever (0)".to_string(),
        };
        line(out, format!("  wait_for_other_master: {wait}"));
    }
    let pings: Vec<String> = monitor.ping_ips.iter().map(ToString::to_string).collect();
    line(
        out,
        format!(
            "  ping_ips: {} (pinged every {}; the network counts as up while any answers)",
            pings.join(", "),
            format_seconds(monitor.ping_interval)
        ),
    );
    let auto = match monitor.auto_set_online_after() {
        None => "0: never: hosts stay in AWAITING_RECOVERY until `mmm_control set_online` (some guides claim 0 means \"online immediately\"; in MMM 2.2.1 it means never)".to_string(),
        Some(after) => format!(
            "{}: a healthy host goes from AWAITING_RECOVERY to ONLINE by itself after {} (flapping hosts wait for flap_duration instead)",
            after.as_secs(),
            format_seconds(after)
        ),
    };
    line(out, format!("  auto_set_online {auto}"));
    if monitor.flap_count == 0 {
        line(out, "  flap detection: off (flap_count 0)");
    } else {
        line(
            out,
            format!(
                "  flap detection: a host that leaves ONLINE more than {} times within {} is flapping",
                monitor.flap_count,
                format_seconds(monitor.flap_duration)
            ),
        );
    }
    line(
        out,
        format!(
            "  careful_startup: {}",
            if monitor.careful_startup {
                "on (conflicting writer roles at startup put the monitor in PASSIVE mode)"
            } else {
                "off"
            }
        ),
    );
    let kill = monitor.kill_host_path().map_or_else(
        || monitor.kill_host_bin.clone(),
        |p| p.display().to_string(),
    );
    line(out, format!("  kill_host_bin: {kill}"));
    for (key, value) in [
        ("pid_path", &monitor.pid_path),
        ("bin_path", &monitor.bin_path),
        ("status_path", &monitor.status_path),
    ] {
        if let Some(path) = value {
            line(out, format!("  {key}: {}", path.display()));
        }
    }
    line(
        out,
        format!(
            "  monitor group: data_dir {}, lease {} renewed every {}, clock_drift {}, raft_heartbeat {}, election timeout {} to {}",
            monitor.data_dir.display(),
            format_seconds(monitor.lease),
            format_seconds(monitor.lease_renew_interval),
            monitor.clock_drift,
            format_seconds(monitor.raft_heartbeat),
            format_seconds(monitor.election_timeout_min),
            format_seconds(monitor.election_timeout_max)
        ),
    );
}

fn user(name: &str, user: &Option<String>, password: &Option<Secret>) -> String {
    let user = user.as_deref().unwrap_or("(not set)");
    let password = if password.is_some() {
        "password <redacted>"
    } else {
        "no password"
    };
    format!("{name} {user} ({password})")
}

fn host_users(host: &Host, program: Program) -> Vec<String> {
    match program {
        Program::Agent => vec![
            user("agent_user", &host.agent_user, &host.agent_password),
            user(
                "replication_user",
                &host.replication_user,
                &host.replication_password,
            ),
        ],
        Program::Monitor => vec![user(
            "monitor_user",
            &host.monitor_user,
            &host.monitor_password,
        )],
        Program::Tools => vec![
            user("tools_user", &host.tools_user, &host.tools_password),
            user(
                "replication_user",
                &host.replication_user,
                &host.replication_password,
            ),
        ],
        Program::Control => Vec::new(),
    }
}

fn hosts(out: &mut String, config: &Config, program: Program) {
    line(out, "");
    line(out, format!("Hosts ({})", config.hosts.len()));
    let width = column_width(config.hosts.keys().map(String::len));
    let ip_text = |host: &Host| host.ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    let ip_width = config
        .hosts
        .values()
        .map(|h| ip_text(h).len())
        .max()
        .unwrap_or(0);
    for host in config.hosts.values() {
        let ip = format!("{:ip_width$}", ip_text(host));
        let mode = format!("{:6}", host.mode.map_or("-", |m| m.as_str()));
        let peer = host
            .peer
            .as_ref()
            .map_or_else(String::new, |p| format!("  peer {p}"));
        line(
            out,
            format!(
                "  {:width$}  {ip}  {mode}{peer}  mysql_port {}  agent_port {}",
                host.name, host.mysql_port, host.agent_port
            ),
        );
        let mut details = host_users(host, program);
        if program == Program::Agent {
            if let Some(interface) = &host.cluster_interface {
                details.push(format!("cluster_interface {interface}"));
            }
        }
        if program == Program::Tools {
            if let Some(ssh_user) = &host.ssh_user {
                details.push(format!("ssh_user {ssh_user} (ssh_port {})", host.ssh_port));
            }
        }
        if !details.is_empty() {
            line(out, format!("  {:width$}  {}", "", details.join(", ")));
        }
    }
}

fn roles(out: &mut String, config: &Config) {
    line(out, "");
    line(out, format!("Roles ({})", config.roles.len()));
    let width = column_width(config.roles.keys().map(String::len));
    for role in config.roles.values() {
        let mode = format!("{:9}", role.mode.map_or("-", |m| m.as_str()));
        let ips: Vec<String> = role.ips.iter().map(ToString::to_string).collect();
        let mut text = format!(
            "  {:width$}  {mode}  hosts {}  ips {}",
            role.name,
            role.hosts.join(", "),
            ips.join(", ")
        );
        if let Some(prefer) = &role.prefer {
            let _ = write!(text, "  prefer {prefer}");
        }
        if config.active_master_role.as_deref() == Some(role.name.as_str()) {
            text.push_str("  (active master role)");
        }
        line(out, text);
    }
}

fn checks(out: &mut String, config: &Config) {
    line(out, "");
    line(out, "Checks");
    for check in config.checks.values() {
        let mut text = format!(
            "  {:11}  check_period {}  trap_period {}  timeout {}  restart_after {}",
            check.name.as_str(),
            format_seconds(check.check_period),
            format_seconds(check.trap_period),
            format_seconds(check.timeout),
            check.restart_after
        );
        if check.name == crate::model::CheckName::RepBacklog {
            let _ = write!(text, "  max_backlog {}", format_seconds(check.max_backlog));
        }
        line(out, text);
    }
}

fn tools(out: &mut String, config: &Config) {
    line(out, "");
    line(
        out,
        format!(
            "Tools: default_copy_method {}, clone_dirs {}",
            config.default_copy_method.as_deref().unwrap_or("-"),
            config.clone_dirs.join(", ")
        ),
    );
    for method in config.copy_methods.values() {
        line(
            out,
            format!(
                "  copy_method {}: incremental {}, single_run {}, true_copy {}",
                method.name, method.incremental, method.single_run, method.true_copy
            ),
        );
    }
}
