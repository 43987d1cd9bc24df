//! Property tests: for any sequence of events on the seed cluster, the safety invariants of
//! the role table hold after every step.
//!
//! - An exclusive role is held by at most one host.
//! - In ACTIVE mode only ONLINE hosts hold roles.
//! - A role is only held by a host listed in its `hosts`.
//! - Every role IP appears in at most one host's role list, and only IPs of that role.
//! - The writer epoch never decreases, and it increases by exactly one in every step that
//!   changes the writer and in no other.
//! - No event on known hosts is refused, and nothing panics.
//!
//! Run longer with `PROPTEST_CASES=100000 cargo test -p mmm-core --test properties`.

use std::collections::BTreeSet;
use std::time::Duration;

use mmm_core::{
    step, CheckKind, CheckReport, ClusterState, Command, Event, HostMode, HostName, HostSpec,
    HostState, Mode, RoleMode, RoleName, RoleSpec, Settings, Time, Topology,
};
use proptest::prelude::*;

mod common;

const HOSTS: [&str; 4] = ["master1", "master2", "slave1", "slave2"];

fn topology(prefer: bool, mode: Mode) -> Topology {
    let host = |ip: &str, mode, peer: Option<&str>| HostSpec {
        ip: ip.parse().expect("literal ip"),
        mode,
        peer: peer.map(HostName::from),
    };
    Topology {
        hosts: [
            (
                "master1",
                host("10.0.0.1", HostMode::Master, Some("master2")),
            ),
            (
                "master2",
                host("10.0.0.2", HostMode::Master, Some("master1")),
            ),
            ("slave1", host("10.0.0.3", HostMode::Slave, None)),
            ("slave2", host("10.0.0.4", HostMode::Slave, None)),
        ]
        .into_iter()
        .map(|(n, s)| (HostName::from(n), s))
        .collect(),
        roles: [
            (
                "writer",
                RoleSpec {
                    mode: RoleMode::Exclusive,
                    hosts: vec!["master1".into(), "master2".into()],
                    ips: vec!["10.0.1.1".parse().expect("literal ip")],
                    prefer: prefer.then(|| "master1".into()),
                },
            ),
            (
                "reader",
                RoleSpec {
                    mode: RoleMode::Balanced,
                    hosts: vec!["master2".into(), "slave1".into(), "slave2".into()],
                    ips: ["10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4"]
                        .iter()
                        .map(|s| s.parse().expect("literal ip"))
                        .collect(),
                    prefer: None,
                },
            ),
            (
                "vip",
                RoleSpec {
                    mode: RoleMode::Exclusive,
                    hosts: vec!["slave1".into(), "slave2".into()],
                    ips: ["10.0.3.1", "10.0.3.2"]
                        .iter()
                        .map(|s| s.parse().expect("literal ip"))
                        .collect(),
                    prefer: None,
                },
            ),
        ]
        .into_iter()
        .map(|(n, s)| (RoleName::from(n), s))
        .collect(),
        active_master_role: "writer".into(),
        settings: Settings {
            auto_set_online: Duration::from_secs(30),
            flap_duration: Duration::from_secs(300),
            wait_for_other_master: Duration::from_secs(60),
            mode,
            ..Settings::default()
        },
    }
}

fn host() -> impl Strategy<Value = String> {
    prop::sample::select(HOSTS.to_vec()).prop_map(str::to_string)
}

fn check_kind() -> impl Strategy<Value = CheckKind> {
    prop::sample::select(CheckKind::ALL.to_vec())
}

fn command() -> impl Strategy<Value = Command> {
    let role =
        prop::sample::select(vec!["writer", "reader", "vip", "nope"]).prop_map(str::to_string);
    let ip = prop::sample::select(vec![
        "10.0.1.1", "10.0.2.1", "10.0.2.3", "10.0.3.2", "10.9.9.9",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        host().prop_map(Command::SetOnline),
        host().prop_map(Command::SetOffline),
        (role, host(), any::<bool>()).prop_map(|(role, host, force)| Command::MoveRole {
            role,
            host,
            force
        }),
        (ip, host()).prop_map(|(ip, host)| Command::SetIp { ip, host }),
        Just(Command::SetActive),
        Just(Command::SetManual),
        Just(Command::SetPassive),
    ]
}

/// An event and how many seconds pass before it.
fn event() -> impl Strategy<Value = (u64, Event)> {
    let ev = prop_oneof![
        4 => prop::collection::vec((host(), check_kind(), prop::bool::weighted(0.7)), 1..4)
            .prop_map(|v| Event::Checks(v.into_iter().map(|(h, check, ok)| CheckReport {
                host: HostName::from(h.as_str()),
                check,
                ok,
                message: if ok { "OK".into() } else { "ERROR: failed".into() },
            }).collect())),
        2 => Just(Event::Tick),
        1 => (host(), any::<bool>()).prop_map(|(h, reachable)| Event::AgentReachable {
            host: HostName::from(h.as_str()),
            reachable,
        }),
        1 => (host(), 0u64..200_000).prop_map(|(h, ms)| Event::AgentUptime {
            host: HostName::from(h.as_str()),
            uptime_ms: ms,
        }),
        1 => prop::bool::weighted(0.8).prop_map(|up| Event::Network { up }),
        2 => command().prop_map(Event::Admin),
    ];
    (prop::sample::select(vec![0u64, 1, 5, 30, 61, 400]), ev)
}

fn check_invariants(topo: &Topology, st: &ClusterState) -> Result<(), TestCaseError> {
    let mut seen = BTreeSet::new();
    for (role, slots) in &st.roles {
        let spec = &topo.roles[role];
        let owners: BTreeSet<&HostName> = slots.iter().filter_map(|s| s.owner.as_ref()).collect();
        if spec.mode == RoleMode::Exclusive {
            prop_assert!(owners.len() <= 1, "exclusive role {role} on {owners:?}");
        }
        for owner in owners {
            prop_assert!(
                spec.hosts.contains(owner),
                "{role} on {owner}, not in its hosts"
            );
        }
    }
    for h in topo.hosts.keys() {
        for r in st.host_roles(h) {
            prop_assert!(
                topo.roles[&r.role].ips.contains(&r.ip),
                "{r} is not an ip of its role"
            );
            prop_assert!(seen.insert(r.clone()), "{r} held twice");
        }
        if st.mode == Mode::Active && !st.host_roles(h).is_empty() {
            prop_assert_eq!(
                st.state_of(h),
                HostState::Online,
                "{} holds {:?} in ACTIVE mode",
                h,
                st.host_roles(h)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn role_table_invariants_hold_for_any_event_sequence(
        prefer in any::<bool>(),
        mode in prop::sample::select(vec![Mode::Active, Mode::Manual, Mode::Wait, Mode::Passive]),
        events in prop::collection::vec(event(), 1..80),
    ) {
        let topo = topology(prefer, mode);
        let mut now = Time::from_secs(1_000_000);
        let mut st = ClusterState::new(&topo, now);
        let boot = Event::Startup(common::healthy_startup(&topo));
        step(&topo, &mut st, now, boot).map_err(|e| TestCaseError::fail(e.to_string()))?;
        step(&topo, &mut st, now, Event::Tick).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_invariants(&topo, &st)?;
        for (secs, ev) in events {
            now = now.plus(Duration::from_secs(secs));
            let writer_before = st.active_master(&topo).cloned();
            let epoch_before = st.epoch;
            let out = step(&topo, &mut st, now, ev);
            prop_assert!(out.is_ok(), "event refused: {:?}", out);
            let writer_after = st.active_master(&topo).cloned();
            if writer_after == writer_before {
                prop_assert_eq!(st.epoch, epoch_before);
            } else {
                prop_assert_eq!(st.epoch, epoch_before.next());
            }
            check_invariants(&topo, &st)?;
        }
    }
}
