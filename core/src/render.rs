//! MMM's text: `show`, `checks`, `help`, `mode` and the answers to every read-only command,
//! byte for byte as MMM 2.2.1 printed them (`Commands.pm`, `Agents.pm`, `Roles.pm`;
//! reference §1.2). mmm_control prints the reply followed by a newline.
//!
//! Two deliberate differences: hosts in `checks` are sorted by name (MMM used Perl hash
//! order), and preference lines follow role name order.

use crate::commands::Command;
use crate::state::ClusterState;
use crate::topology::Topology;
use crate::types::{CheckKind, Mode, Time};

/// MMM's help text, verbatim.
pub const HELP: &str = "Valid commands are:
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

/// Answers a read-only command from the state. `utc_offset_secs` is the local time zone used
/// for the dates in `checks` (MMM printed local time). Returns `None` for commands that change
/// state.
pub fn query(
    topo: &Topology,
    st: &ClusterState,
    cmd: &Command,
    utc_offset_secs: i64,
) -> Option<String> {
    Some(match cmd {
        Command::Help => HELP.to_string(),
        Command::Ping => "OK: Pinged successfully!".to_string(),
        Command::Show => show(topo, st),
        Command::Mode => st.mode.as_str().to_string(),
        Command::Checks { host, check } => checks(
            topo,
            st,
            host.as_deref().unwrap_or("all"),
            check.as_deref().unwrap_or("all"),
            utc_offset_secs,
        ),
        Command::Invalid(line) => format!("Invalid command '{line}'\n\n{HELP}"),
        _ => return None,
    })
}

/// `mmm_control show`.
pub fn show(topo: &Topology, st: &ClusterState) -> String {
    let mut out = String::new();
    if st.mode == Mode::Passive {
        let header = format!(
            "--- Monitor is in PASSIVE MODE ---\nCause: {}\n",
            st.passive_info
        );
        for line in header.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    for (name, h) in &st.hosts {
        if h.agent_down {
            out.push_str(&format!(
                "# Warning: agent on host {name} is not reachable\n"
            ));
        }
    }
    for (name, h) in &st.hosts {
        if let Some(report) = h.errant() {
            out.push_str(&format!(
                "# Warning: host {name} has {} errant transactions that the active master {} does not have ({}); it stays out of rotation until it is rebuilt from {}\n",
                report.errant.count(),
                report.writer,
                report.errant,
                report.writer
            ));
        }
    }
    for (name, h) in &st.hosts {
        let Some(spec) = topo.hosts.get(name) else {
            continue;
        };
        let roles: Vec<String> = st.host_roles(name).iter().map(|r| r.to_string()).collect();
        out.push_str(&format!(
            "  {name}({}) {}/{}. Roles: {}\n",
            spec.ip,
            spec.mode,
            h.state,
            roles.join(", ")
        ));
    }
    for (role, spec) in &topo.roles {
        let Some(prefer) = &spec.prefer else {
            continue;
        };
        if spec.mode != crate::types::RoleMode::Exclusive {
            continue;
        }
        match st.exclusive_owner(role) {
            Some(owner) if owner == prefer => out.push_str(&format!(
                "# Role {role} is assigned to it's preferred host {prefer}.\n"
            )),
            Some(owner) => out.push_str(&format!(
                "# Role {role} has {prefer} configured as it's preferred host but is assigned to {owner} at the moment.\n"
            )),
            None => out.push_str(&format!(
                "# Role {role} has {prefer} configured as it's preferred host.\n"
            )),
        }
    }
    out
}

/// `mmm_control checks [<host>|all [<check>|all]]`, in MMM's four formats.
pub fn checks(
    topo: &Topology,
    st: &ClusterState,
    host: &str,
    check: &str,
    utc_offset_secs: i64,
) -> String {
    let kinds: Vec<CheckKind> = if check == "all" {
        CheckKind::ALL.to_vec()
    } else {
        match check.parse::<CheckKind>() {
            Ok(k) => vec![k],
            Err(_) => return format!("ERROR: Unknown check '{check}'!"),
        }
    };
    let line = |h: &str, k: CheckKind| -> (String, String) {
        let c = st.hosts.get(h).and_then(|s| s.checks.get(&k));
        let when = c
            .map(|c| format_local(c.last_change, utc_offset_secs))
            .unwrap_or_else(|| "-".to_string());
        let msg = c
            .map(|c| c.message.clone())
            .unwrap_or_else(|| format!("UNKNOWN: Checker '{k}' has not reported yet"));
        (when, msg)
    };
    let mut out = String::new();
    if host != "all" {
        if !topo.hosts.contains_key(host) {
            return format!("ERROR: Unknown host name '{host}'!");
        }
        if check != "all" {
            let (when, msg) = line(host, kinds[0]);
            return format!("{host}  {check}  [last change: {when}]  {msg}");
        }
        for k in kinds {
            let (when, msg) = line(host, k);
            out.push_str(&format!(
                "{host}  {:<11}  [last change: {when}]  {msg}\n",
                k.as_str()
            ));
        }
        return out;
    }
    let width = topo
        .hosts
        .keys()
        .map(|h| h.as_str().len())
        .max()
        .unwrap_or(0);
    for h in topo.hosts.keys() {
        for &k in &kinds {
            let (when, msg) = line(h.as_str(), k);
            if check == "all" {
                out.push_str(&format!(
                    "{:<width$}  {:<11}  [last change: {when}]  {msg}\n",
                    h.as_str(),
                    k.as_str()
                ));
            } else {
                out.push_str(&format!(
                    "{:<width$}  {}  [last change: {when}]  {msg}\n",
                    h.as_str(),
                    k.as_str()
                ));
            }
        }
    }
    out
}

/// Formats a time as Log4perl's `yyyy/MM/dd HH:mm:ss` in the given UTC offset.
pub fn format_local(t: Time, utc_offset_secs: i64) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX) + utc_offset_secs;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_like_log4perl() {
        // 2017-01-09 21:31:47 UTC, the seed document's first check time.
        assert_eq!(
            format_local(Time::from_secs(1_483_997_507), 0),
            "2017/01/09 21:31:47"
        );
        assert_eq!(
            format_local(Time::from_secs(1_483_997_507), 8 * 3600),
            "2017/01/10 05:31:47"
        );
        assert_eq!(
            format_local(Time::from_secs(951_782_400), 0),
            "2000/02/29 00:00:00"
        );
        assert_eq!(format_local(Time(0), -3600), "1969/12/31 23:00:00");
    }
}
