//! Editing the topology of a running cluster (`reconfigure`) keeps the writer-epoch rule: a
//! writer that loses its role through the edit moves the epoch on and is announced.

use mmm_core::{
    reconfigure, step, ClusterState, Effect, Event, HostMode, HostName, HostSpec, RoleMode,
    RoleName, RoleSpec, Settings, Time, Topology,
};

mod common;

fn topology(writer_hosts: &[&str]) -> Topology {
    let host = |ip: [u8; 4], peer: &str| HostSpec {
        ip: ip.into(),
        mode: HostMode::Master,
        peer: Some(HostName::from(peer)),
    };
    Topology {
        hosts: [
            (HostName::from("db1"), host([10, 0, 0, 1], "db2")),
            (HostName::from("db2"), host([10, 0, 0, 2], "db1")),
        ]
        .into(),
        roles: [(
            RoleName::from("writer"),
            RoleSpec {
                mode: RoleMode::Exclusive,
                hosts: writer_hosts.iter().map(|h| HostName::from(*h)).collect(),
                ips: vec![[10, 0, 1, 1].into()],
                prefer: None,
            },
        )]
        .into(),
        active_master_role: RoleName::from("writer"),
        settings: Settings::default(),
    }
}

fn healthy(topo: &Topology) -> ClusterState {
    let now = Time::from_secs(100);
    let mut st = ClusterState::new(topo, now);
    let checks = topo
        .hosts
        .keys()
        .flat_map(|h| {
            mmm_core::CheckKind::ALL.map(|check| mmm_core::CheckReport {
                host: h.clone(),
                check,
                ok: true,
                message: "OK".into(),
            })
        })
        .collect();
    for event in [
        Event::Checks(checks),
        Event::Startup(common::healthy_startup(topo)),
        Event::Tick,
    ] {
        step(topo, &mut st, now, event).expect("healthy bootstrap");
    }
    st
}

#[test]
fn removing_the_writers_host_from_the_role_moves_the_writer_and_the_epoch() {
    let before = topology(&["db1", "db2"]);
    let mut st = healthy(&before);
    assert_eq!(st.active_master(&before).map(|h| h.as_str()), Some("db1"));
    let epoch = st.epoch;

    let after = topology(&["db2"]);
    let out = reconfigure(&after, &mut st, Time::from_secs(200)).expect("valid topology");

    assert_eq!(st.active_master(&after).map(|h| h.as_str()), Some("db2"));
    assert_eq!(st.epoch, epoch.next());
    assert!(matches!(
        out.effects.first(),
        Some(Effect::WriterChanged { from: Some(f), to: Some(t), .. })
            if f.as_str() == "db1" && t.as_str() == "db2"
    ));
    let told: Vec<&str> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendStatus { status, .. } => Some(status.host.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(told, ["db1", "db2"], "old writer first, new writer last");
}

#[test]
fn an_unchanged_topology_changes_nothing() {
    let topo = topology(&["db1", "db2"]);
    let mut st = healthy(&topo);
    let copy = st.clone();
    let out = reconfigure(&topo, &mut st, Time::from_secs(100)).expect("valid topology");
    assert!(out.effects.is_empty());
    assert_eq!(st, copy);
}
