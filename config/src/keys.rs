//! The table of every key MMM 2.2.1 knows, per scope, with the programs that require it.
//!
//! This is MMM's `$RULESET` from `Config.pm` (reference section 1.12 and the check keys of
//! section 1.4), plus the monitor-group keys of our extension. Defaults and types live with the
//! typed model in `model.rs`; this table decides which keys exist where (anything else is an
//! unknown-key error) and which program needs which key. Requirements that depend on another
//! value (`peer` when `mode master`, the SSL files when `type ssl`, `incremental_command` when
//! `incremental`, `<monitor> ip` when there are no monitor nodes) are checked in `validate.rs`.

use crate::files::Program;
use crate::syntax::SectionKind;

/// One key of one scope.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeySpec {
    pub name: &'static str,
    /// The programs that fail to start without it.
    pub required_by: &'static [Program],
    /// Whether an empty value means something (only `ssh_parameters`, whose default is '').
    pub may_be_empty: bool,
}

const A: Program = Program::Agent;
const M: Program = Program::Monitor;
const C: Program = Program::Control;
const T: Program = Program::Tools;
const ALL: &[Program] = &[A, M, C, T];
const NONE: &[Program] = &[];

const fn key(name: &'static str, required_by: &'static [Program]) -> KeySpec {
    KeySpec {
        name,
        required_by,
        may_be_empty: false,
    }
}

/// Keys at the top level.
pub(crate) const GLOBAL: &[KeySpec] = &[
    key("this", &[A, T]),
    key("debug", NONE),
    key("active_master_role", &[A, M]),
    key("max_kill_retries", NONE),
    // MMM's copy methods are read but not needed: the tools stream with mariabackup.
    key("default_copy_method", NONE),
    key("clone_dirs", NONE),
];

/// Keys of `<monitor>`: MMM's, then the monitor-group extension.
pub(crate) const MONITOR: &[KeySpec] = &[
    key("ip", &[M, C]),
    key("port", NONE),
    key("pid_path", &[M]),
    key("bin_path", &[M]),
    key("status_path", &[M]),
    key("ping_interval", NONE),
    key("ping_ips", &[M]),
    key("flap_duration", NONE),
    key("flap_count", NONE),
    key("auto_set_online", NONE),
    key("kill_host_bin", NONE),
    key("careful_startup", NONE),
    key("mode", NONE),
    key("wait_for_other_master", NONE),
    key("node", NONE),
    key("data_dir", NONE),
    key("lease", NONE),
    key("lease_renew_interval", NONE),
    key("clock_drift", NONE),
    key("raft_heartbeat", NONE),
    key("election_timeout_min", NONE),
    key("election_timeout_max", NONE),
];

/// Keys of `<socket>`: MMM's, whose files are required only with `type ssl` (see
/// `validate.rs`), then the secret files of the extension (required by the daemons when they
/// start, see the `mmm-transport` crate).
pub(crate) const SOCKET: &[KeySpec] = &[
    key("type", NONE),
    key("cert_file", NONE),
    key("key_file", NONE),
    key("ca_file", NONE),
    key("api_secret_file", NONE),
    key("api_readonly_secret_file", NONE),
    key("raft_secret_file", NONE),
    key("agent_secret_file", NONE),
];

/// Keys of `<host NAME>`.
pub(crate) const HOST: &[KeySpec] = &[
    key("ip", &[A, M, T]),
    key("mode", &[A, M]),
    key("peer", NONE),
    key("pid_path", &[A]),
    key("bin_path", &[A]),
    key("agent_port", NONE),
    key("cluster_interface", &[A]),
    key("state_dir", NONE),
    key("fence_margin", NONE),
    key("catchup_timeout", NONE),
    key("catchup_policy", NONE),
    key("mysql_port", NONE),
    key("mysql_pidfile", NONE),
    key("mysql_rcscript", NONE),
    key("mysql_cnf", NONE),
    key("agent_user", &[A]),
    key("agent_password", &[A]),
    key("monitor_user", &[M]),
    key("monitor_password", &[M]),
    key("replication_user", &[A, T]),
    key("replication_password", &[A, T]),
    // MMM's tools needed SSH, LVM and a tools account; these stream through the agents with
    // mariabackup, so the keys are read but none is required.
    key("ssh_user", NONE),
    key("ssh_port", NONE),
    KeySpec {
        name: "ssh_parameters",
        required_by: NONE,
        may_be_empty: true,
    },
    key("tools_user", NONE),
    key("tools_password", NONE),
    key("backup_dir", NONE),
    key("restore_dir", NONE),
    key("lvm_bin_lvcreate", NONE),
    key("lvm_bin_lvremove", NONE),
    key("lvm_snapshot_size", NONE),
    key("lvm_logical_volume", NONE),
    key("lvm_volume_group", NONE),
    key("lvm_mount_dir", NONE),
    key("lvm_mount_opts", NONE),
];

/// Keys of `<role NAME>`.
pub(crate) const ROLE: &[KeySpec] = &[
    key("mode", &[M]),
    key("hosts", &[M]),
    key("ips", &[A, M]),
    key("prefer", NONE),
];

/// Keys of `<check NAME>`.
pub(crate) const CHECK: &[KeySpec] = &[
    key("check_period", NONE),
    key("trap_period", NONE),
    key("timeout", NONE),
    key("restart_after", NONE),
    key("max_backlog", NONE),
];

/// Keys of `<copy_method NAME>`.
pub(crate) const COPY_METHOD: &[KeySpec] = &[
    key("backup_command", ALL),
    key("restore_command", ALL),
    key("incremental_command", NONE),
    key("incremental", NONE),
    key("single_run", NONE),
    key("true_copy", NONE),
];

/// Keys of `<monitor_node NAME>` (extension).
pub(crate) const MONITOR_NODE: &[KeySpec] = &[key("ip", ALL), key("port", NONE)];

/// The key table of a scope (`None` for the top level).
pub(crate) fn table(kind: Option<SectionKind>) -> &'static [KeySpec] {
    match kind {
        None => GLOBAL,
        Some(SectionKind::Monitor) => MONITOR,
        Some(SectionKind::Socket) => SOCKET,
        Some(SectionKind::Host) => HOST,
        Some(SectionKind::Role) => ROLE,
        Some(SectionKind::Check) => CHECK,
        Some(SectionKind::CopyMethod) => COPY_METHOD,
        Some(SectionKind::MonitorNode) => MONITOR_NODE,
    }
}

/// The spec of `name` in a scope.
pub(crate) fn find(kind: Option<SectionKind>, name: &str) -> Option<&'static KeySpec> {
    table(kind).iter().find(|spec| spec.name == name)
}

/// The sections (other than `kind`) that have a key called `name`.
pub(crate) fn sections_with(kind: Option<SectionKind>, name: &str) -> Vec<SectionKind> {
    SectionKind::ALL
        .into_iter()
        .filter(|other| Some(*other) != kind && find(Some(*other), name).is_some())
        .collect()
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo:
/// at most two edits, and at most a third of the candidate's length. Swapping two adjacent
/// characters counts as one edit.
pub(crate) fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|candidate| (typo_distance(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2 && distance * 3 <= candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The edit distance, except that a single swap of adjacent characters counts as one.
fn typo_distance(a: &str, b: &str) -> usize {
    let (x, y): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if x.len() == y.len() {
        let differing: Vec<usize> = (0..x.len()).filter(|&i| x.get(i) != y.get(i)).collect();
        if let &[first, second] = differing.as_slice() {
            let swapped = second == first + 1
                && x.get(first) == y.get(second)
                && x.get(second) == y.get(first);
            if swapped {
                return 1;
            }
        }
    }
    edit_distance(a, b)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        if let Some(first) = current.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let deletion = previous.get(j + 1).copied().unwrap_or(0) + 1;
            let insertion = current.get(j).copied().unwrap_or(0) + 1;
            if let Some(cell) = current.get_mut(j + 1) {
                *cell = substitution.min(deletion).min(insertion);
            }
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("mod", "mode"), 1);
        assert_eq!(edit_distance("mode", "mode"), 0);
        assert_eq!(edit_distance("pord", "port"), 1);
        assert_eq!(edit_distance("", "ip"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_suggests_only_near_misses() {
        let names: Vec<&str> = HOST.iter().map(|k| k.name).collect();
        assert_eq!(closest("mod", &names), Some("mode"));
        assert_eq!(closest("agent_pasword", &names), Some("agent_password"));
        assert_eq!(closest("xx", &names), None);
        assert_eq!(closest("pnig", &["ping", "mysql"]), Some("ping"));
        assert_eq!(closest("completely_different", &names), None);
    }

    #[test]
    fn key_names_are_unique_within_each_scope() {
        for kind in std::iter::once(None).chain(SectionKind::ALL.into_iter().map(Some)) {
            let names: Vec<&str> = table(kind).iter().map(|k| k.name).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "{kind:?}");
        }
    }
}
