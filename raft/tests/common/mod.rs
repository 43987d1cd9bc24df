//! Helpers shared by the integration tests: a small topology and entry builders.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use mmm_core::{
    CheckKind, CheckReport, Event, HostMode, HostName, HostSpec, RoleMode, RoleName, RoleSpec,
    Settings, Time, Topology,
};
use mmm_raft::typ::{Entry, LogId};
use mmm_raft::Request;
use openraft::{CommittedLeaderId, EntryPayload, Membership};

/// The id of the group every test opens.
pub const GROUP: &str = "test-group";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two masters (db1, db2) and a slave (db3), a writer role and a reader role: MMM's usual
/// layout.
pub fn topology() -> Topology {
    let host = |addr: &str, mode, peer: Option<&str>| HostSpec {
        ip: ip(addr),
        mode,
        peer: peer.map(HostName::from),
    };
    Topology {
        hosts: BTreeMap::from([
            (
                "db1".into(),
                host("10.0.0.1", HostMode::Master, Some("db2")),
            ),
            (
                "db2".into(),
                host("10.0.0.2", HostMode::Master, Some("db1")),
            ),
            ("db3".into(), host("10.0.0.3", HostMode::Slave, None)),
        ]),
        roles: BTreeMap::from([
            (
                RoleName::from("writer"),
                RoleSpec {
                    mode: RoleMode::Exclusive,
                    hosts: vec!["db1".into(), "db2".into()],
                    ips: vec![ip("10.0.1.1")],
                    prefer: None,
                },
            ),
            (
                RoleName::from("reader"),
                RoleSpec {
                    mode: RoleMode::Balanced,
                    hosts: vec!["db1".into(), "db2".into(), "db3".into()],
                    ips: vec![ip("10.0.1.2"), ip("10.0.1.3"), ip("10.0.1.4")],
                    prefer: None,
                },
            ),
        ]),
        active_master_role: RoleName::from("writer"),
        settings: Settings::default(),
    }
}

/// Every check passing on every host.
pub fn all_checks_ok(topo: &Topology) -> Event {
    let reports = topo
        .hosts
        .keys()
        .flat_map(|host| {
            CheckKind::ALL.into_iter().map(|check| CheckReport {
                host: host.clone(),
                check,
                ok: true,
                message: "OK".to_string(),
            })
        })
        .collect();
    Event::Checks(reports)
}

/// The log id of the entry at `index`, written in term 1 by node 1.
pub fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

/// A normal entry carrying `request`.
pub fn request_entry(index: u64, request: Request) -> Entry {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(request),
    }
}

/// A `Configure` entry with the test topology.
pub fn configure_entry(index: u64, now: Time) -> Entry {
    request_entry(
        index,
        Request::Configure {
            topology: topology(),
            now,
        },
    )
}

/// An `Event` entry.
pub fn event_entry(index: u64, now: Time, event: Event) -> Entry {
    request_entry(index, Request::Event { now, event })
}

/// A membership entry for nodes 1, 2 and 3.
pub fn membership_entry(index: u64) -> Entry {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Membership(Membership::new(
            vec![[1, 2, 3].into_iter().collect()],
            None,
        )),
    }
}

/// Opens a store's sled database directly, to corrupt it. A store that was just dropped keeps
/// its lock until sled's flusher thread exits, so this waits for it (up to 3 s).
pub fn open_raw(dir: &std::path::Path) -> sled::Db {
    let start = std::time::Instant::now();
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(_) if start.elapsed() < std::time::Duration::from_secs(3) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("cannot open {}: {e}", dir.display()),
        }
    }
}
