//! The monitor group as this replica sees it: every member's name, Raft id and address.
//!
//! A member's Raft id is derived from its name (FNV-1a), so ids stay the same whatever the
//! order of the `<monitor_node>` sections and when members are added later.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{anyhow, bail};
use mmm_config::Config;
use mmm_raft::typ::{Node, NodeId};

/// One replica of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name from the configuration.
    pub name: String,
    /// Its Raft id.
    pub id: NodeId,
    /// Where it serves the API and Raft.
    pub addr: SocketAddr,
}

/// The group and which member this process is.
#[derive(Debug, Clone)]
pub struct Group {
    /// Every member, by name.
    pub members: Vec<Member>,
    /// This replica.
    pub this: Member,
    /// The group id recorded in every replica's store: the cluster name (`@NAME`) or
    /// `default`.
    pub id: String,
}

/// The Raft id of a member name: FNV-1a 64, never zero.
pub fn node_id(name: &str) -> NodeId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

impl Group {
    /// The group from the monitor configuration.
    pub fn from_config(config: &Config, cluster: Option<&str>) -> anyhow::Result<Group> {
        let group = config
            .monitor_group()
            .ok_or_else(|| anyhow!("the configuration defines no monitor group (<monitor> ip or <monitor_node> sections)"))?;
        let members: Vec<Member> = group
            .members
            .iter()
            .map(|m| Member {
                name: m.name.clone(),
                id: node_id(&m.name),
                addr: m.addr,
            })
            .collect();
        let mut ids = BTreeMap::new();
        for m in &members {
            if let Some(other) = ids.insert(m.id, &m.name) {
                bail!(
                    "monitor nodes '{other}' and '{}' have the same Raft id; rename one",
                    m.name
                );
            }
        }
        let this_name = group
            .this
            .ok_or_else(|| anyhow!("<monitor> node is not set: which replica is this?"))?;
        let this = members
            .iter()
            .find(|m| m.name == this_name)
            .cloned()
            .ok_or_else(|| anyhow!("<monitor> node '{this_name}' is not a <monitor_node>"))?;
        Ok(Group {
            members,
            this,
            id: cluster.unwrap_or("default").to_string(),
        })
    }

    /// The members as openraft's membership.
    pub fn nodes(&self) -> BTreeMap<NodeId, Node> {
        self.members
            .iter()
            .map(|m| (m.id, Node::new(m.addr.to_string())))
            .collect()
    }

    /// The name of a member id (or the id itself for a member not in the configuration).
    pub fn name_of(&self, id: NodeId) -> String {
        self.members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("node-{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_depend_only_on_the_name() {
        assert_eq!(node_id("mon1"), node_id("mon1"));
        assert_ne!(node_id("mon1"), node_id("mon2"));
        assert_ne!(node_id(""), 0);
    }
}
