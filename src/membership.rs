//! Adding and removing monitor replicas: `add_monitor NAME HOST:PORT`, `remove_monitor NAME`.
//!
//! These are mmm-raft commands, not MMM's, so they are recognised before MMM's parser. They
//! run on the leader: a new replica first joins as a learner and catches up, then becomes a
//! voter; a removed replica leaves the voters. The change lives in the Raft log; the
//! `<monitor_node>` sections in every replica's files should be edited to match, so that the
//! group still knows its members after a restart from scratch.

use std::net::SocketAddr;
use std::time::Duration;

use mmm_raft::typ::{Node, Raft};

use crate::group::node_id;

/// How long a new replica may take to catch up before it becomes a voter.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a membership change may take to commit.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A membership command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCommand {
    /// `add_monitor NAME HOST:PORT`
    Add {
        /// The replica's name, as in its `<monitor_node NAME>`.
        name: String,
        /// Where it listens.
        addr: SocketAddr,
    },
    /// `remove_monitor NAME`
    Remove {
        /// The replica's name.
        name: String,
    },
}

impl GroupCommand {
    /// `None` for anything that is not a membership command; `Some(Err(reply))` for one with
    /// bad arguments.
    pub fn parse(line: &str) -> Option<Result<GroupCommand, String>> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["add_monitor", name, addr] => Some(
                addr.parse()
                    .map(|addr| GroupCommand::Add {
                        name: name.to_string(),
                        addr,
                    })
                    .map_err(|_| format!("ERROR: '{addr}' is not an address of the form IP:PORT!")),
            ),
            ["add_monitor", ..] => {
                Some(Err("ERROR: usage: add_monitor <name> <ip:port>".to_string()))
            }
            ["remove_monitor", name] => Some(Ok(GroupCommand::Remove {
                name: name.to_string(),
            })),
            ["remove_monitor", ..] => Some(Err("ERROR: usage: remove_monitor <name>".to_string())),
            _ => None,
        }
    }
}

/// Runs a membership command on the leader and returns the reply.
pub async fn execute(raft: &Raft, cmd: GroupCommand) -> String {
    let voters: std::collections::BTreeSet<u64> = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    match cmd {
        GroupCommand::Add { name, addr } => {
            let id = node_id(&name);
            if voters.contains(&id) {
                return format!(
                    "OK: Monitor replica '{name}' is already a member. Skipping command."
                );
            }
            let learner = raft.add_learner(id, Node::new(addr.to_string()), true);
            match tokio::time::timeout(CATCH_UP_TIMEOUT, learner).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return format!("ERROR: Can't add monitor replica '{name}': {e}"),
                Err(_) => {
                    return format!(
                        "ERROR: Monitor replica '{name}' at {addr} did not catch up within {} s; is it running?",
                        CATCH_UP_TIMEOUT.as_secs()
                    )
                }
            }
            let mut next = voters.clone();
            next.insert(id);
            let count = next.len();
            change(raft, next, &name).await.unwrap_or_else(|| {
                tracing::info!(node = %name, %addr, members = count, "monitor replica added");
                format!(
                    "OK: Monitor replica '{name}' ({addr}) added. The monitor group now has {count} members; add its <monitor_node> section to every replica's configuration."
                )
            })
        }
        GroupCommand::Remove { name } => {
            let id = node_id(&name);
            if !voters.contains(&id) {
                return format!("ERROR: Unknown monitor replica '{name}'!");
            }
            if voters.len() == 1 {
                return "ERROR: Can't remove the last monitor replica.".to_string();
            }
            let mut next = voters.clone();
            next.remove(&id);
            let count = next.len();
            change(raft, next, &name).await.unwrap_or_else(|| {
                tracing::info!(node = %name, members = count, "monitor replica removed");
                format!(
                    "OK: Monitor replica '{name}' removed. The monitor group now has {count} members; remove its <monitor_node> section from every replica's configuration."
                )
            })
        }
    }
}

/// Commits a new voter set; `Some(reply)` if it failed.
async fn change(
    raft: &Raft,
    voters: std::collections::BTreeSet<u64>,
    name: &str,
) -> Option<String> {
    match tokio::time::timeout(CHANGE_TIMEOUT, raft.change_membership(voters, false)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("ERROR: Can't change the monitor group for '{name}': {e}")),
        Err(_) => Some(format!(
            "ERROR: The change for '{name}' was not committed within {} s; a majority may be unreachable.",
            CHANGE_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_commands_parse_and_others_pass_through() {
        assert_eq!(
            GroupCommand::parse("add_monitor mon4 10.0.0.4:9988"),
            Some(Ok(GroupCommand::Add {
                name: "mon4".into(),
                addr: "10.0.0.4:9988".parse().unwrap()
            }))
        );
        assert_eq!(
            GroupCommand::parse("remove_monitor mon4"),
            Some(Ok(GroupCommand::Remove {
                name: "mon4".into()
            }))
        );
        assert_eq!(
            GroupCommand::parse("add_monitor mon4 nowhere"),
            Some(Err(
                "ERROR: 'nowhere' is not an address of the form IP:PORT!".into()
            ))
        );
        assert_eq!(
            GroupCommand::parse("remove_monitor"),
            Some(Err("ERROR: usage: remove_monitor <name>".into()))
        );
        assert_eq!(GroupCommand::parse("show"), None);
        assert_eq!(GroupCommand::parse("set_online db1"), None);
    }
}
