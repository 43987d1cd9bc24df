//! mmm_control commands: parsing as MMM's dispatcher did, and executing the ones that change
//! state with MMM 2.2.1's exact replies (`Commands.pm`, reference §1.2).
//!
//! Names stay strings until they are looked up, because MMM's errors echo what was typed.
//! "Can the agent be reached" is the monitor's latest knowledge (ping check and agent
//! reachability), not a fresh PING: the leader keeps that knowledge current every tick.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::notice::{ModeCause, Notice, Reason};
use crate::rules::strip_roles_from_failed_hosts;
use crate::step::Ctx;
use crate::types::{CheckKind, HostName, HostState, Mode, RoleIp, RoleName};

/// One mmm_control command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `help`
    Help,
    /// `ping`
    Ping,
    /// `show`
    Show,
    /// `checks [<host>|all [<check>|all]]`
    Checks {
        /// Host name or `all`.
        host: Option<String>,
        /// Check name or `all`.
        check: Option<String>,
    },
    /// `mode`
    Mode,
    /// `set_active`
    SetActive,
    /// `set_manual`
    SetManual,
    /// `set_passive`
    SetPassive,
    /// `set_online <host>`
    SetOnline(String),
    /// `set_offline <host>`
    SetOffline(String),
    /// `move_role [--force] <role> <host>`
    MoveRole {
        /// The role.
        role: String,
        /// The target host.
        host: String,
        /// `--force`.
        force: bool,
    },
    /// `set_ip <ip> <host>`
    SetIp {
        /// The IP, as typed.
        ip: String,
        /// The target host.
        host: String,
    },
    /// Anything else; answered with MMM's "Invalid command" and the help text.
    Invalid(String),
    /// `switchover <host>` (not in MMM): a planned move of the active master role to a healthy
    /// host while the current writer is healthy too. The old writer stops writing (VIP off,
    /// read_only=1, sessions killed) and reports its last GTID position; the new writer takes
    /// writes only once it has executed that position, so no acknowledged write is lost.
    Switchover(String),
}

impl Command {
    /// Parses a command line the way MMM's `_process_commands` did: split on whitespace,
    /// exact argument counts, anything else is invalid.
    pub fn parse(line: &str) -> Command {
        let args: Vec<&str> = line.split_whitespace().collect();
        let s = |i: usize| args[i].to_string();
        match (args.first().copied(), args.len()) {
            (Some("help"), 1) => Command::Help,
            (Some("ping"), 1) => Command::Ping,
            (Some("show"), 1) => Command::Show,
            (Some("checks"), n @ 1..=3) => Command::Checks {
                host: (n > 1).then(|| s(1)),
                check: (n > 2).then(|| s(2)),
            },
            (Some("mode"), 1) => Command::Mode,
            (Some("set_active"), 1) => Command::SetActive,
            (Some("set_manual"), 1) => Command::SetManual,
            (Some("set_passive"), 1) => Command::SetPassive,
            (Some("set_online"), 2) => Command::SetOnline(s(1)),
            (Some("set_offline"), 2) => Command::SetOffline(s(1)),
            (Some("move_role"), 3) => Command::MoveRole {
                role: s(1),
                host: s(2),
                force: false,
            },
            (Some("move_role"), 4) if args[1] == "--force" => Command::MoveRole {
                role: s(2),
                host: s(3),
                force: true,
            },
            (Some("set_ip"), 3) => Command::SetIp {
                ip: s(1),
                host: s(2),
            },
            (Some("switchover"), 2) => Command::Switchover(s(1)),
            _ => Command::Invalid(line.to_string()),
        }
    }

    /// Whether the command only reads state (answered by any replica without Raft).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Command::Help
                | Command::Ping
                | Command::Show
                | Command::Checks { .. }
                | Command::Mode
                | Command::Invalid(_)
        )
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Help => f.write_str("help"),
            Command::Ping => f.write_str("ping"),
            Command::Show => f.write_str("show"),
            Command::Checks { host, check } => {
                f.write_str("checks")?;
                for a in host.iter().chain(check.iter()) {
                    write!(f, " {a}")?;
                }
                Ok(())
            }
            Command::Mode => f.write_str("mode"),
            Command::SetActive => f.write_str("set_active"),
            Command::SetManual => f.write_str("set_manual"),
            Command::SetPassive => f.write_str("set_passive"),
            Command::SetOnline(h) => write!(f, "set_online {h}"),
            Command::SetOffline(h) => write!(f, "set_offline {h}"),
            Command::MoveRole { role, host, force } => {
                let flag = if *force { "--force " } else { "" };
                write!(f, "move_role {flag}{role} {host}")
            }
            Command::SetIp { ip, host } => write!(f, "set_ip {ip} {host}"),
            Command::Switchover(h) => write!(f, "switchover {h}"),
            Command::Invalid(line) => f.write_str(line),
        }
    }
}

/// Executes a state-changing command and returns MMM's reply.
pub(crate) fn execute(ctx: &mut Ctx<'_>, cmd: &Command) -> String {
    match cmd {
        Command::SetOnline(h) => set_online(ctx, h),
        Command::SetOffline(h) => set_offline(ctx, h),
        Command::MoveRole {
            role,
            host,
            force: false,
        } => move_role(ctx, role, host),
        Command::MoveRole {
            role,
            host,
            force: true,
        } => forced_move_role(ctx, role, host),
        Command::SetIp { ip, host } => set_ip(ctx, ip, host),
        Command::Switchover(host) => switchover(ctx, host),
        Command::SetActive => set_active(ctx),
        Command::SetManual => set_manual(ctx),
        Command::SetPassive => set_passive(ctx),
        Command::Help
        | Command::Ping
        | Command::Show
        | Command::Checks { .. }
        | Command::Mode
        | Command::Invalid(_) => String::new(),
    }
}

fn known_host(ctx: &Ctx<'_>, name: &str) -> Option<HostName> {
    ctx.topo.hosts.get_key_value(name).map(|(k, _)| k.clone())
}

fn known_role(ctx: &Ctx<'_>, name: &str) -> Option<RoleName> {
    ctx.topo.roles.get_key_value(name).map(|(k, _)| k.clone())
}

fn unknown_host(name: &str) -> String {
    format!("ERROR: Unknown host name '{name}'!")
}

fn agent_reachable(ctx: &Ctx<'_>, host: &HostName) -> bool {
    ctx.st.hosts.get(host).is_some_and(|h| h.agent_reachable())
}

fn role_hosts(ctx: &Ctx<'_>, role: &RoleName) -> String {
    ctx.topo
        .roles
        .get(role)
        .map(|r| {
            r.hosts
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn admin_state(ctx: &mut Ctx<'_>, host: &HostName, to: HostState) {
    let from = ctx.st.state_of(host);
    ctx.notice(Notice::AdminStateChanged {
        host: host.clone(),
        from,
        to,
    });
    ctx.set_state(host, to);
}

fn set_online(ctx: &mut Ctx<'_>, name: &str) -> String {
    let Some(host) = known_host(ctx, name) else {
        return unknown_host(name);
    };
    let state = ctx.st.state_of(&host);
    if state == HostState::Online {
        return "OK: This host is already ONLINE. Skipping command.".into();
    }
    if !matches!(state, HostState::AdminOffline | HostState::AwaitingRecovery) {
        return format!(
            "ERROR: Host '{host}' is '{state}' at the moment. It can't be switched to ONLINE."
        );
    }
    if !(ctx.st.check(&host, CheckKind::Ping) && ctx.st.check(&host, CheckKind::Mysql)) {
        return format!(
            "ERROR: Checks ping and/or mysql are not ok for host '{host}'. It can't be switched to ONLINE."
        );
    }
    if let Some(peer) = ctx.topo.hosts.get(&host).and_then(|s| s.peer.clone()) {
        if ctx.st.state_of(&peer) == HostState::Online
            && !(ctx.st.check(&peer, CheckKind::RepThreads)
                && ctx.st.check(&peer, CheckKind::RepBacklog))
        {
            return format!(
                "ERROR: Some replication checks failed on peer '{peer}'. We can't set '{host}' online now. Please, wait some time."
            );
        }
    }
    if let Some(report) = ctx.st.hosts.get(&host).and_then(|h| h.errant()) {
        return format!(
            "ERROR: Host '{host}' has {} errant transactions that the active master '{}' does not have ({}). It can't be switched to ONLINE until it is rebuilt from '{}' (docs/errant-transactions.md).",
            report.errant.count(),
            report.writer,
            report.errant,
            report.writer
        );
    }
    if !agent_reachable(ctx, &host) {
        return format!("ERROR: Can't reach agent daemon on '{host}'! Can't switch its state!");
    }
    admin_state(ctx, &host, HostState::Online);
    if let Some(h) = ctx.st.hosts.get_mut(&host) {
        h.flapping = false;
    }
    format!(
        "OK: State of '{host}' changed to ONLINE. Now you can wait some time and check its new roles!"
    )
}

fn set_offline(ctx: &mut Ctx<'_>, name: &str) -> String {
    let Some(host) = known_host(ctx, name) else {
        return unknown_host(name);
    };
    let state = ctx.st.state_of(&host);
    if state == HostState::AdminOffline {
        return "OK: This host is already ADMIN_OFFLINE. Skipping command.".into();
    }
    if !matches!(
        state,
        HostState::Online | HostState::ReplicationFail | HostState::ReplicationDelay
    ) {
        return format!(
            "ERROR: Host '{host}' is '{state}' at the moment. It can't be switched to ADMIN_OFFLINE."
        );
    }
    if !agent_reachable(ctx, &host) {
        return format!("ERROR: Can't reach agent daemon on '{host}'! Can't switch its state!");
    }
    admin_state(ctx, &host, HostState::AdminOffline);
    ctx.clear_roles(&host);
    format!(
        "OK: State of '{host}' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"
    )
}

fn set_ip(ctx: &mut Ctx<'_>, ip_text: &str, name: &str) -> String {
    if ctx.st.mode != Mode::Passive {
        return "ERROR: This command is only allowed in passive mode".into();
    }
    let found = ip_text
        .parse::<IpAddr>()
        .ok()
        .and_then(|ip| ctx.topo.role_of_ip(ip).map(|r| (r.clone(), ip)));
    let Some((role, ip)) = found else {
        return format!("ERROR: Unknown ip '{ip_text}'!");
    };
    let Some(host) = known_host(ctx, name) else {
        return unknown_host(name);
    };
    if !ctx.topo.can_handle(&role, &host) {
        return format!(
            "ERROR: Host '{host}' can't handle role '{role}'. Following hosts could: {}",
            role_hosts(ctx, &role)
        );
    }
    let state = ctx.st.state_of(&host);
    if state != HostState::Online {
        return format!(
            "ERROR: Host '{host}' is '{state}' at the moment. Can't move role with ip '{ip}' there."
        );
    }
    let role_ip = RoleIp::new(role.clone(), ip);
    ctx.notice(Notice::AdminSetRole {
        role: role_ip.clone(),
        host: host.clone(),
    });
    ctx.set_role(&role, ip, &host);
    format!("OK: Set role '{role_ip}' to host '{host}'.")
}

/// The checks both forms of move_role share, in MMM's order: can the host take the role, is
/// it there already, can its agent be reached. Returns the current owner.
fn move_role_checks(
    ctx: &Ctx<'_>,
    role: &RoleName,
    host: &HostName,
) -> Result<Option<HostName>, String> {
    if !ctx.topo.can_handle(role, host) {
        return Err(format!(
            "ERROR: Host '{host}' can't handle role '{role}'. Only following hosts could: {}",
            role_hosts(ctx, role)
        ));
    }
    let old = ctx.st.exclusive_owner(role).cloned();
    if old.as_ref() == Some(host) {
        return Err(format!(
            "OK: Role is on '{host}' already. Skipping command."
        ));
    }
    if !agent_reachable(ctx, host) {
        return Err(format!(
            "ERROR: Can't reach agent daemon on '{host}'! Can't move roles there!"
        ));
    }
    Ok(old)
}

/// The IP MMM's exclusive-role functions use: the role's first.
fn exclusive_ip(ctx: &Ctx<'_>, role: &RoleName) -> Result<IpAddr, String> {
    ctx.st
        .roles
        .get(role)
        .and_then(|s| s.first())
        .map(|s| s.ip)
        .ok_or_else(|| format!("Error: Role {role} has no IP."))
}

fn or_empty(h: &Option<HostName>) -> &str {
    h.as_ref().map(|h| h.as_str()).unwrap_or("")
}

/// The checks both forms start with: not in PASSIVE mode, a known role, a known host.
fn role_and_host(
    ctx: &Ctx<'_>,
    role_name: &str,
    name: &str,
) -> Result<(RoleName, HostName), String> {
    if ctx.st.mode == Mode::Passive {
        return Err("ERROR: This command is not allowed in passive mode".into());
    }
    let Some(role) = known_role(ctx, role_name) else {
        return Err(format!("ERROR: Unknown role name '{role_name}'!"));
    };
    let Some(host) = known_host(ctx, name) else {
        return Err(unknown_host(name));
    };
    Ok((role, host))
}

fn move_role(ctx: &mut Ctx<'_>, role_name: &str, name: &str) -> String {
    match try_move_role(ctx, role_name, name) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn try_move_role(ctx: &mut Ctx<'_>, role_name: &str, name: &str) -> Result<String, String> {
    let (role, host) = role_and_host(ctx, role_name, name)?;
    if !ctx.is_exclusive(&role) {
        // MMM's quirk, kept: for a balanced role move_role only drops that role's IPs from the
        // host; distribution then gives them to another eligible host.
        let mut removed = Vec::new();
        if let Some(slots) = ctx.st.roles.get_mut(&role) {
            for s in slots.iter_mut().filter(|s| s.owner.as_ref() == Some(&host)) {
                s.owner = None;
                removed.push(RoleIp::new(role.clone(), s.ip));
            }
        }
        for r in removed {
            ctx.notice(Notice::RoleRemoved {
                host: host.clone(),
                role: r,
            });
        }
        return Ok(format!(
            "OK: Balanced role {role} has been removed from host '{host}'. Now you can wait some time and check new roles info!"
        ));
    }
    let state = ctx.st.state_of(&host);
    if state != HostState::Online {
        return Err(format!(
            "ERROR: Can't move role to host with state {state}."
        ));
    }
    let old = move_role_checks(ctx, &role, &host)?;
    let prefer = ctx.topo.roles.get(&role).and_then(|r| r.prefer.clone());
    if ctx.st.mode == Mode::Active && prefer.is_some() && prefer == old {
        return Err(format!(
            "ERROR: Role '{role}' is assigned to preferred host '{}'. Can't move it!",
            or_empty(&old)
        ));
    }
    let ip = exclusive_ip(ctx, &role)?;
    ctx.notice(Notice::AdminMovedRole {
        role: role.clone(),
        from: old.clone(),
        to: host.clone(),
        forced: false,
    });
    ctx.set_role(&role, ip, &host);
    Ok(format!(
        "OK: Role '{role}' has been moved from '{}' to '{host}'. Now you can wait some time and check new roles info!",
        or_empty(&old)
    ))
}

fn switchover(ctx: &mut Ctx<'_>, name: &str) -> String {
    match try_switchover(ctx, name) {
        Ok(reply) | Err(reply) => reply,
    }
}

/// A planned writer move: both hosts healthy (ONLINE, agents reachable, every check passing),
/// the monitor in ACTIVE or MANUAL mode, the new writer able to take the role.
fn try_switchover(ctx: &mut Ctx<'_>, name: &str) -> Result<String, String> {
    let role = ctx.topo.active_master_role.clone();
    let (role, host) = role_and_host(ctx, role.as_str(), name)?;
    let old = ctx.st.exclusive_owner(&role).cloned();
    let Some(old) = old else {
        return Err(format!(
            "ERROR: No host has the '{role}' role: there is no writer to switch over from. Use 'move_role {role} {host}'."
        ));
    };
    // The new writer must replicate, and be current, to catch up; the old one only has to
    // be alive to stop writing and say where it stopped.
    let needs: [(&HostName, &[CheckKind]); 2] = [
        (&old, &[CheckKind::Ping, CheckKind::Mysql]),
        (&host, &CheckKind::ALL),
    ];
    for (h, checks) in needs {
        let state = ctx.st.state_of(h);
        if state != HostState::Online {
            return Err(format!(
                "ERROR: Host '{h}' is '{state}': a switchover needs both hosts ONLINE. Use 'move_role' (or 'move_role --force') instead."
            ));
        }
        let failing: Vec<&str> = checks
            .iter()
            .filter(|c| !ctx.st.check(h, **c))
            .map(|c| c.as_str())
            .collect();
        if !failing.is_empty() {
            return Err(format!(
                "ERROR: Host '{h}' fails the check(s) {}: not switching over to or from it.",
                failing.join(", ")
            ));
        }
        if !agent_reachable(ctx, h) {
            return Err(format!(
                "ERROR: Can't reach agent daemon on '{h}'! Can't switch over."
            ));
        }
    }
    let old = move_role_checks(ctx, &role, &host)?.unwrap_or(old);
    let prefer = ctx.topo.roles.get(&role).and_then(|r| r.prefer.clone());
    if ctx.st.mode == Mode::Active && prefer.as_ref() == Some(&old) {
        return Err(format!(
            "ERROR: Role '{role}' is assigned to preferred host '{old}'. Can't move it!"
        ));
    }
    let ip = exclusive_ip(ctx, &role)?;
    ctx.notice(Notice::AdminMovedRole {
        role: role.clone(),
        from: Some(old.clone()),
        to: host.clone(),
        forced: false,
    });
    ctx.set_role(&role, ip, &host);
    Ok(format!(
        "OK: Switching role '{role}' over from '{old}' to '{host}': '{old}' stops writing, '{host}' takes writes once it has executed everything '{old}' wrote."
    ))
}

fn forced_move_role(ctx: &mut Ctx<'_>, role_name: &str, name: &str) -> String {
    match try_forced_move_role(ctx, role_name, name) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn try_forced_move_role(ctx: &mut Ctx<'_>, role_name: &str, name: &str) -> Result<String, String> {
    let (role, host) = role_and_host(ctx, role_name, name)?;
    if role != ctx.topo.active_master_role {
        return Err(
            "ERROR: move_role --forced may be used for the active master role only!".into(),
        );
    }
    let state = ctx.st.state_of(&host);
    if !matches!(
        state,
        HostState::ReplicationFail | HostState::ReplicationDelay
    ) {
        return Err(format!(
            "ERROR: Can't force move of role to host with state {state}."
        ));
    }
    let old = move_role_checks(ctx, &role, &host)?;
    let ip = exclusive_ip(ctx, &role)?;
    ctx.notice(Notice::AdminMovedRole {
        role: role.clone(),
        from: old.clone(),
        to: host.clone(),
        forced: true,
    });
    ctx.set_role(&role, ip, &host);
    ctx.notice(Notice::StateChanged {
        host: host.clone(),
        from: state,
        to: HostState::Online,
        reason: Reason::ForcedMove,
    });
    ctx.set_state(&host, HostState::Online);
    if let Some(old) = &old {
        let to = if !ctx.st.check(old, CheckKind::RepThreads) {
            Some(HostState::ReplicationFail)
        } else if !ctx.st.check(old, CheckKind::RepBacklog) {
            Some(HostState::ReplicationDelay)
        } else {
            None
        };
        if let Some(to) = to {
            let from = ctx.st.state_of(old);
            ctx.notice(Notice::StateChanged {
                host: old.clone(),
                from,
                to,
                reason: Reason::ForcedMove,
            });
            ctx.set_state(old, to);
            if ctx.st.mode == Mode::Active {
                ctx.clear_roles(old);
            }
        }
    }
    Ok(format!(
        "OK: Role '{role}' has been moved from '{}' to '{host}' enforcedly. Now you can wait some time and check new roles info!",
        or_empty(&old)
    ))
}

fn mode_changed(ctx: &mut Ctx<'_>, to: Mode) {
    let from = ctx.st.mode;
    ctx.notice(Notice::ModeChanged {
        from,
        to,
        cause: ModeCause::Admin,
    });
}

/// Leaving PASSIVE: every agent gets its status and a CLEAR_BAD_ROLES.
fn leave_passive(ctx: &mut Ctx<'_>, to: Mode) {
    ctx.st.mode = to;
    ctx.st.passive_info.clear();
    ctx.cleanup = true;
}

fn set_active(ctx: &mut Ctx<'_>) -> String {
    let mode = ctx.st.mode;
    if mode == Mode::Active {
        return "OK: Already in active mode.".into();
    }
    mode_changed(ctx, Mode::Active);
    if mode == Mode::Passive {
        leave_passive(ctx, Mode::Active);
    }
    // MMM stripped roles from failed hosts only when leaving MANUAL or WAIT; a PASSIVE mode
    // entered from MANUAL can hold such roles too, and ACTIVE must never keep them.
    strip_roles_from_failed_hosts(ctx);
    ctx.st.mode = Mode::Active;
    "OK: Switched into active mode.".into()
}

fn set_manual(ctx: &mut Ctx<'_>) -> String {
    let mode = ctx.st.mode;
    if mode.is_manual() {
        return "OK: Already in manual mode.".into();
    }
    mode_changed(ctx, Mode::Manual);
    if mode == Mode::Passive {
        leave_passive(ctx, Mode::Manual);
    }
    ctx.st.mode = Mode::Manual;
    "OK: Switched into manual mode.".into()
}

fn set_passive(ctx: &mut Ctx<'_>) -> String {
    if ctx.st.mode == Mode::Passive {
        return "OK: Already in passive mode.".into();
    }
    mode_changed(ctx, Mode::Passive);
    ctx.st.mode = Mode::Passive;
    ctx.st.passive_info = "Admin switched to passive mode.".into();
    "OK: Switched into passive mode.".into()
}
