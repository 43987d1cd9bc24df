//! The failover history: every change of writer, when it was decided, why, and when the new
//! writer's agent confirmed it holds the role. Part of the replicated state, so every replica
//! can show it (`mmm_control history`) and it survives any monitor's death.
//!
//! An entry is opened by the step that moves the writer (its `decided` time is the time of the
//! event that caused it) and completed by `Event::WriterActive`, which the leader proposes when
//! the new writer's agent acknowledges the writer role at that epoch. The time between the two
//! is what the monitor spent fencing the old writer and promoting the new one.

use serde::{Deserialize, Serialize};

use crate::notice::{Notice, Reason};
use crate::render::format_local;
use crate::state::HostStatus;
use crate::types::{CheckKind, Epoch, HostName, Time};

/// How many entries the state keeps; older ones are dropped.
pub const HISTORY_LEN: usize = 100;

/// One change of writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    /// The epoch the change created.
    pub epoch: Epoch,
    /// When it was decided: the time of the event that moved the role.
    pub decided: Time,
    /// The writer before.
    pub from: Option<HostName>,
    /// The writer after (none when no host could take the role).
    pub to: Option<HostName>,
    /// Why, in words.
    pub cause: String,
    /// When the new writer's agent confirmed it holds the role at this epoch.
    pub active: Option<Time>,
}

impl Failover {
    /// Milliseconds from the decision to the new writer's confirmation.
    pub fn took_ms(&self) -> Option<u64> {
        self.active.map(|a| a.0.saturating_sub(self.decided.0))
    }

    /// Whether this change made `host` the writer at `epoch` and waits for its confirmation.
    pub fn awaits(&self, host: &HostName, epoch: Epoch) -> bool {
        self.epoch == epoch && self.to.as_ref() == Some(host) && self.active.is_none()
    }
}

/// Appends an entry, dropping the oldest beyond [`HISTORY_LEN`].
pub(crate) fn record(history: &mut Vec<Failover>, entry: Failover) {
    history.push(entry);
    if history.len() > HISTORY_LEN {
        let excess = history.len() - HISTORY_LEN;
        history.drain(..excess);
    }
}

/// Whether a change to `host` at `epoch` waits for the new writer's confirmation: the leader
/// proposes `Event::WriterActive` only then.
pub fn awaits(history: &[Failover], host: &HostName, epoch: Epoch) -> bool {
    history.iter().any(|f| f.awaits(host, epoch))
}

/// Marks the entry of `epoch` as completed at `now` if `host` is its new writer and it is not
/// completed yet. Returns how long it took, for the notice.
pub(crate) fn complete(
    history: &mut [Failover],
    host: &HostName,
    epoch: Epoch,
    now: Time,
) -> Option<u64> {
    let entry = history.iter_mut().rev().find(|f| f.awaits(host, epoch))?;
    entry.active = Some(now);
    entry.took_ms()
}

/// Why the writer moved, from what the step did: the admin command that moved it, or the old
/// writer's state change and the checks that failed, or a role movement.
pub(crate) fn cause(
    admin: Option<&str>,
    from: Option<&HostName>,
    old_writer: Option<&HostStatus>,
    notices: &[Notice],
) -> String {
    if let Some(cmd) = admin {
        return format!("admin: {cmd}");
    }
    let Some(from) = from else {
        return "writer role assigned".to_string();
    };
    for n in notices {
        match n {
            Notice::StateChanged {
                host,
                from: old,
                to,
                reason,
            } if host == from => {
                let mut s = format!("{host} {old} -> {to}");
                if let Reason::Checks { .. } = reason {
                    let failed = failed_checks(old_writer);
                    if !failed.is_empty() {
                        s.push_str(&format!(" ({failed})"));
                    }
                }
                return s;
            }
            Notice::MovedToPreferred { to, .. } => {
                return format!("moved back to the preferred host {to}");
            }
            _ => {}
        }
    }
    if old_writer.is_some_and(|h| h.agent_down) {
        return format!("{from}: agent unreachable");
    }
    format!("{from} lost the writer role")
}

fn failed_checks(h: Option<&HostStatus>) -> String {
    let Some(h) = h else {
        return String::new();
    };
    [CheckKind::Ping, CheckKind::Mysql]
        .into_iter()
        .filter_map(|k| h.checks.get(&k).filter(|c| !c.ok).map(|c| (k, c)))
        .map(|(k, c)| format!("{k}: {}", c.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `mmm_control history`: one line per writer change, oldest first, times in the given UTC
/// offset.
pub fn render(history: &[Failover], utc_offset_secs: i64) -> String {
    if history.is_empty() {
        return "No writer changes recorded.\n".to_string();
    }
    let rows: Vec<[String; 6]> = history
        .iter()
        .map(|f| {
            [
                f.epoch.0.to_string(),
                format_local(f.decided, utc_offset_secs),
                f.from.as_ref().map_or("-", |h| h.as_str()).to_string(),
                f.to.as_ref().map_or("-", |h| h.as_str()).to_string(),
                f.took_ms()
                    .map_or_else(|| "pending".to_string(), |ms| format!("{ms} ms")),
                f.cause.clone(),
            ]
        })
        .collect();
    let header = ["epoch", "decided", "from", "to", "took", "cause"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == cells.len() - 1 {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line([
            &row[0], &row[1], &row[2], &row[3], &row[4], &row[5],
        ]));
    }
    out
}

/// The hosts out of rotation because of errant transactions, one line each, for after the
/// history's table: since when, which and how many (empty when there are none).
pub fn render_errant<'a>(
    hosts: impl IntoIterator<Item = (&'a HostName, &'a HostStatus)>,
    utc_offset_secs: i64,
) -> String {
    let mut out = String::new();
    for (name, h) in hosts {
        let (Some(report), Some(check)) = (h.errant(), h.checks.get(&CheckKind::RepThreads)) else {
            continue;
        };
        out.push_str(&format!(
            "# Since {}: {name} has {} errant transactions that the active master {} does not have ({}); out of rotation until rebuilt from {}\n",
            format_local(check.last_change, utc_offset_secs),
            report.errant.count(),
            report.writer,
            report.errant,
            report.writer
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: u64, to: &str) -> Failover {
        Failover {
            epoch: Epoch(epoch),
            decided: Time(1_000),
            from: None,
            to: Some(to.into()),
            cause: String::new(),
            active: None,
        }
    }

    #[test]
    fn hosts_with_errant_transactions_are_listed_after_the_history() {
        let mut h = HostStatus::new(Time(0));
        let message =
            "ERROR: Errant transactions not on the active master db2: 5 (0-1-101..0-1-105)";
        h.checks.insert(
            CheckKind::RepThreads,
            crate::state::CheckStatus {
                ok: false,
                last_change: Time(1_483_997_507_000),
                message: message.into(),
            },
        );
        let db1 = HostName::from("db1");
        assert_eq!(
            render_errant([(&db1, &h)], 0),
            "# Since 2017/01/09 21:31:47: db1 has 5 errant transactions that the active master db2 does not have (0-1-101..0-1-105); out of rotation until rebuilt from db2\n"
        );
        if let Some(c) = h.checks.get_mut(&CheckKind::RepThreads) {
            c.message = "ERROR: Replication is broken".into();
        }
        assert_eq!(render_errant([(&db1, &h)], 0), "");
    }

    #[test]
    fn the_history_keeps_the_newest_entries() {
        let mut h = Vec::new();
        for e in 0..(HISTORY_LEN as u64 + 5) {
            record(&mut h, entry(e, "db1"));
        }
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h[0].epoch, Epoch(5));
    }

    #[test]
    fn completion_needs_the_same_epoch_and_the_new_writer_and_happens_once() {
        let mut h = vec![entry(2, "db2")];
        assert_eq!(complete(&mut h, &"db1".into(), Epoch(2), Time(1_100)), None);
        assert_eq!(complete(&mut h, &"db2".into(), Epoch(1), Time(1_100)), None);
        assert_eq!(
            complete(&mut h, &"db2".into(), Epoch(2), Time(1_120)),
            Some(120)
        );
        assert_eq!(complete(&mut h, &"db2".into(), Epoch(2), Time(9_000)), None);
        assert_eq!(h[0].active, Some(Time(1_120)));
    }
}
