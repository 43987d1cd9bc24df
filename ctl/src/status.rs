//! `mmm_control status` (new, not in MMM): every configured replica's own view of the monitor
//! group, asked all at once, as a table or as JSON.
//!
//! The group is healthy when a majority of the configured replicas name the same leader; the
//! command then exits 0, otherwise 1. Lag is how far a replica's applied index is behind the
//! leader's last log index, when the leader answered.

use std::fmt::Write as _;

use mmm_core::api::{GroupStatus, STATUS_PATH};
use serde::Serialize;

use crate::client::{Attempt, Client, Request};
use crate::replicas::Replica;

/// One replica's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The replica's name from the configuration (its address with `--monitor`).
    pub name: String,
    /// Where it was asked.
    pub address: String,
    /// Its view of the group, if it answered.
    pub status: Option<GroupStatus>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// What the rows say about the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The leader named by the most replicas, if any names one.
    pub leader: Option<String>,
    /// How many replicas name it.
    pub votes: usize,
    /// How many replicas answered.
    pub answered: usize,
    /// How many replicas are configured.
    pub total: usize,
    /// Whether the votes are a majority of the configured replicas.
    pub majority: bool,
}

/// `status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One entry per configured replica, in the order they are asked.
    pub replicas: Vec<Row>,
    /// The group's health.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Asks every replica for its status, all at once.
pub fn collect(client: &Client, replicas: &[Replica]) -> Vec<Row> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = replicas
            .iter()
            .map(|replica| {
                scope.spawn(move || {
                    let budget = client.remaining();
                    let attempt: Attempt<GroupStatus> =
                        client.attempt(replica, Request::Get(STATUS_PATH), budget, &mut |_| {});
                    row(replica, attempt)
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(replicas)
            .map(|(handle, replica)| {
                handle.join().unwrap_or_else(|_| Row {
                    name: replica.name.clone(),
                    address: replica.address.to_string(),
                    status: None,
                    error: Some("the request thread failed".into()),
                })
            })
            .collect()
    })
}

fn row(replica: &Replica, attempt: Attempt<GroupStatus>) -> Row {
    let (status, error) = match attempt {
        Attempt::Answer(status) => (Some(status), None),
        Attempt::Unreachable(why) | Attempt::Failed(why) | Attempt::NoReply(why) => {
            (None, Some(why))
        }
        Attempt::NoLeader(why) => (None, Some(format!("answered 503: {why}"))),
    };
    let address = replica.address.to_string();
    // A replica given by address alone (`--monitor`) is named as it names itself.
    let name = match &status {
        Some(status) if replica.name == address => status.replica.clone(),
        _ => replica.name.clone(),
    };
    Row {
        name,
        address,
        status,
        error,
    }
}

/// Which leader the replicas name, and whether a majority does.
pub fn verdict(rows: &[Row]) -> Verdict {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for leader in rows
        .iter()
        .filter_map(|r| r.status.as_ref()?.leader.clone())
    {
        match counts.iter_mut().find(|(name, _)| *name == leader) {
            Some((_, n)) => *n += 1,
            None => counts.push((leader, 1)),
        }
    }
    let best = counts
        .into_iter()
        .fold(None::<(String, usize)>, |best, (name, n)| match best {
            Some((_, m)) if m >= n => best,
            _ => Some((name, n)),
        });
    let total = rows.len();
    let (leader, votes) = best.map_or((None, 0), |(name, n)| (Some(name), n));
    Verdict {
        leader,
        votes,
        answered: rows.iter().filter(|r| r.status.is_some()).count(),
        total,
        majority: votes > total / 2,
    }
}

/// The table printed by `mmm_control status`.
pub fn table(rows: &[Row], verdict: &Verdict) -> String {
    const HEADER: [&str; 9] = [
        "REPLICA",
        "ADDRESS",
        "REACHABLE",
        "RAFT STATE",
        "TERM",
        "LEADER",
        "LAST LOG",
        "APPLIED",
        "LAG",
    ];
    let leader_last = verdict.leader.as_ref().and_then(|leader| {
        rows.iter()
            .filter_map(|r| r.status.as_ref())
            .find(|s| &s.replica == leader)
            .and_then(|s| s.last_log_index)
    });
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match (&r.status, &r.error) {
            (Some(s), _) => vec![
                r.name.clone(),
                r.address.clone(),
                "yes".into(),
                s.raft_state.clone(),
                s.term.to_string(),
                s.leader.clone().unwrap_or_else(|| "-".into()),
                opt(s.last_log_index),
                opt(s.last_applied_index),
                opt(leader_last
                    .zip(s.last_applied_index)
                    .map(|(last, applied)| last.saturating_sub(applied))),
            ],
            (None, error) => vec![
                r.name.clone(),
                r.address.clone(),
                format!("no: {}", error.as_deref().unwrap_or("no answer")),
            ],
        })
        .collect();
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
    for line in &lines {
        // A row for a replica that did not answer ends with its error, which is not aligned.
        let aligned = if line.len() == HEADER.len() {
            line.len()
        } else {
            2
        };
        for (width, cell) in widths.iter_mut().zip(line.iter().take(aligned)) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    for line in std::iter::once(&header).chain(&lines) {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out.push_str(&summary(verdict));
    out.push('\n');
    out
}

/// The last line of the table: the leader, or what to check.
pub fn summary(v: &Verdict) -> String {
    let need = v.total / 2 + 1;
    match &v.leader {
        Some(leader) if v.majority => format!(
            "Leader {leader} is known by {} of {} replicas.",
            v.votes, v.total
        ),
        _ => format!(
            "No leader is known by a majority: {} of {} replicas answered; a majority ({need}) \
             must be running and able to reach each other.",
            v.answered, v.total
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, state: &str, leader: Option<&str>, last: u64, applied: u64) -> Row {
        Row {
            name: name.into(),
            address: format!("10.0.0.{}:9988", name.len()),
            status: Some(GroupStatus {
                replica: name.into(),
                id: 1,
                raft_state: state.into(),
                term: 3,
                leader: leader.map(str::to_string),
                last_log_index: Some(last),
                last_applied_index: Some(applied),
                replication: vec![],
                members: vec![],
                millis_since_quorum_ack: None,
                snapshot_index: None,
                purged_index: None,
            }),
            error: None,
        }
    }

    fn down(name: &str) -> Row {
        Row {
            name: name.into(),
            address: "10.0.0.9:9988".into(),
            status: None,
            error: Some("Connection refused (os error 111)".into()),
        }
    }

    #[test]
    fn a_leader_named_by_two_of_three_is_a_majority() {
        let rows = [
            up("mon1", "Leader", Some("mon1"), 10, 10),
            up("mon2", "Follower", Some("mon1"), 10, 8),
            down("mon3"),
        ];
        let v = verdict(&rows);
        assert_eq!(v.leader.as_deref(), Some("mon1"));
        assert_eq!((v.votes, v.answered, v.total, v.majority), (2, 2, 3, true));
    }

    #[test]
    fn one_of_three_is_not_a_majority() {
        let rows = [
            up("mon1", "Candidate", Some("mon1"), 10, 10),
            down("mon2"),
            down("mon3"),
        ];
        assert!(!verdict(&rows).majority);
        let rows = [
            up("mon1", "Candidate", None, 10, 10),
            up("mon2", "Candidate", None, 10, 10),
        ];
        let v = verdict(&rows);
        assert_eq!((v.leader, v.majority), (None, false));
    }

    #[test]
    fn the_table_aligns_columns_and_shows_lag_behind_the_leader() {
        let rows = [
            up("mon1", "Leader", Some("mon1"), 12, 12),
            up("mon2", "Follower", Some("mon1"), 12, 9),
            down("mon3"),
        ];
        let text = table(&rows, &verdict(&rows));
        assert_eq!(
            text,
            "\
REPLICA  ADDRESS        REACHABLE  RAFT STATE  TERM  LEADER  LAST LOG  APPLIED  LAG
mon1     10.0.0.4:9988  yes        Leader      3     mon1    12        12       0
mon2     10.0.0.4:9988  yes        Follower    3     mon1    12        9        3
mon3     10.0.0.9:9988  no: Connection refused (os error 111)
Leader mon1 is known by 2 of 3 replicas.
"
        );
    }

    #[test]
    fn without_majority_the_summary_says_what_to_check() {
        let rows = [
            down("mon1"),
            down("mon2"),
            up("mon3", "Candidate", None, 1, 1),
        ];
        assert_eq!(
            summary(&verdict(&rows)),
            "No leader is known by a majority: 1 of 3 replicas answered; a majority (2) must be \
             running and able to reach each other."
        );
    }
}
