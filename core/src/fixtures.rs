//! Test fixtures shared by the unit tests: the seed document's topology.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::state::{CheckStatus, ClusterState};
use crate::topology::{HostSpec, RoleSpec, Settings, Topology};
use crate::types::{CheckKind, HostMode, HostName, RoleMode, RoleName, Time};

/// db1 and db2 are masters (peers) that can take `writer` (10.0.0.100); db3 and db4 are
/// slaves; all four can take `reader` (10.0.0.101-104).
pub(crate) fn seed() -> Topology {
    let host = |n: u8, mode: HostMode, peer: Option<&str>| HostSpec {
        ip: IpAddr::from([10, 0, 0, n]),
        mode,
        peer: peer.map(HostName::from),
    };
    let hosts = BTreeMap::from([
        (
            HostName::from("db1"),
            host(1, HostMode::Master, Some("db2")),
        ),
        (
            HostName::from("db2"),
            host(2, HostMode::Master, Some("db1")),
        ),
        (HostName::from("db3"), host(3, HostMode::Slave, None)),
        (HostName::from("db4"), host(4, HostMode::Slave, None)),
    ]);
    let all: Vec<HostName> = hosts.keys().cloned().collect();
    let roles = BTreeMap::from([
        (
            RoleName::from("writer"),
            RoleSpec {
                mode: RoleMode::Exclusive,
                hosts: vec![HostName::from("db1"), HostName::from("db2")],
                ips: vec![IpAddr::from([10, 0, 0, 100])],
                prefer: None,
            },
        ),
        (
            RoleName::from("reader"),
            RoleSpec {
                mode: RoleMode::Balanced,
                hosts: all,
                ips: (101..=104).map(|n| IpAddr::from([10, 0, 0, n])).collect(),
                prefer: None,
            },
        ),
    ]);
    Topology {
        hosts,
        roles,
        active_master_role: RoleName::from("writer"),
        settings: Settings::default(),
    }
}

/// The state of `seed()` before startup, with `host`'s `check` committed as `ok`.
pub(crate) fn with_check(host: &str, check: CheckKind, ok: bool) -> ClusterState {
    let mut st = ClusterState::new(&seed(), Time(0));
    if let Some(h) = st.hosts.get_mut(host) {
        h.checks.insert(
            check,
            CheckStatus {
                ok,
                last_change: Time(0),
                message: String::new(),
            },
        );
    }
    st
}
