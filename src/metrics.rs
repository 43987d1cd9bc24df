//! `/metrics` on every monitor replica (Prometheus/OpenMetrics text): the replicated cluster
//! state as this replica applied it (host states, role holders, committed check results, the
//! writer epoch, writer changes and the last failover's duration, the mode), its Raft view
//! (term, leader, log and applied index, quorum contact), its own probes (latency of each
//! check, the network check) and, on the leader, how much of the writer's lease is left.
//!
//! Everything is read at scrape time: `render` is a pure function of a [`Snapshot`].

use std::time::Duration;

use mmm_agent::metrics::{flag, labels, Sheet};
use mmm_core::{CheckKind, ClusterState, HostName, HostState, Mode, Topology};

/// What one scrape reads.
pub struct Snapshot<'a> {
    /// This replica's name.
    pub replica: &'a str,
    /// Raft: the current term.
    pub term: u64,
    /// Raft: whether this replica leads.
    pub is_leader: bool,
    /// Raft: the leader's name, if one is known.
    pub leader: Option<String>,
    /// Raft: the last log index.
    pub last_log_index: Option<u64>,
    /// Raft: the last applied index.
    pub last_applied_index: Option<u64>,
    /// Raft, leader only: milliseconds since a quorum last acknowledged this leader.
    pub millis_since_quorum_ack: Option<u64>,
    /// The applied topology and state, once configured.
    pub cluster: Option<(&'a Topology, &'a ClusterState)>,
    /// This replica's network check (`ping_ips`).
    pub network_up: bool,
    /// How long each of this replica's latest probes took.
    pub latencies: Vec<(HostName, CheckKind, Duration)>,
    /// Leader only: the writer's lease left, counted from this leader's last grant.
    pub lease_left: Option<Duration>,
}

const STATES: [HostState; 7] = [
    HostState::Online,
    HostState::AdminOffline,
    HostState::HardOffline,
    HostState::AwaitingRecovery,
    HostState::ReplicationDelay,
    HostState::ReplicationFail,
    HostState::Unknown,
];

const MODES: [Mode; 4] = [Mode::Active, Mode::Manual, Mode::Wait, Mode::Passive];

/// The text of one scrape.
pub fn render(s: &Snapshot<'_>) -> String {
    let mut sheet = Sheet::new();
    let me = s.replica;
    sheet.gauge("mmm_raft_term", "This replica's Raft term", s.term as f64);
    sheet.gauge(
        "mmm_raft_is_leader",
        "Whether this replica leads the monitor group",
        flag(s.is_leader),
    );
    sheet.gauges(
        "mmm_raft_leader",
        "The leader this replica knows (1 on its name)",
        s.leader
            .iter()
            .map(|l| (labels([("replica", me), ("leader", l)]), 1.0)),
    );
    sheet.gauge(
        "mmm_raft_last_log_index",
        "This replica's last Raft log index",
        s.last_log_index.unwrap_or(0) as f64,
    );
    sheet.gauge(
        "mmm_raft_applied_index",
        "The last log index this replica applied",
        s.last_applied_index.unwrap_or(0) as f64,
    );
    if let Some(ms) = s.millis_since_quorum_ack {
        sheet.gauge(
            "mmm_raft_quorum_ack_age_seconds",
            "Seconds since a quorum last acknowledged this leader",
            ms as f64 / 1000.0,
        );
    }
    sheet.gauge(
        "mmm_network_up",
        "This replica's network check: whether any ping_ip answers",
        flag(s.network_up),
    );
    sheet.gauges(
        "mmm_check_duration_seconds",
        "How long this replica's latest probe of each check took",
        s.latencies.iter().map(|(h, c, d)| {
            (
                labels([("host", h.as_str()), ("check", &c.to_string())]),
                d.as_secs_f64(),
            )
        }),
    );
    if let Some(left) = s.lease_left {
        sheet.gauge(
            "mmm_writer_lease_remaining_seconds",
            "On the leader: the writer's lease left, counted from the last grant",
            left.as_secs_f64(),
        );
    }
    if let Some((topo, st)) = s.cluster {
        cluster(&mut sheet, topo, st);
    }
    sheet.render()
}

fn cluster(sheet: &mut Sheet, topo: &Topology, st: &ClusterState) {
    sheet.gauges(
        "mmm_host_state",
        "Each host's state (1 on the current one)",
        st.hosts.iter().flat_map(|(h, hs)| {
            STATES.iter().map(move |state| {
                (
                    labels([("host", h.as_str()), ("state", &state.to_string())]),
                    flag(hs.state == *state),
                )
            })
        }),
    );
    sheet.gauges(
        "mmm_check_ok",
        "Each committed check result (1 passes, 0 fails)",
        st.hosts.iter().flat_map(|(h, hs)| {
            hs.checks.iter().map(move |(c, cs)| {
                (
                    labels([("host", h.as_str()), ("check", &c.to_string())]),
                    flag(cs.ok),
                )
            })
        }),
    );
    sheet.gauges(
        "mmm_host_errant_transactions",
        "Transactions a host has that the active master lacks (a lower bound where the first is unknown); such a host stays out of rotation",
        st.hosts.iter().map(|(h, hs)| {
            let n = hs.errant().map_or(0, |r| r.errant.count().n);
            (labels([("host", h.as_str())]), n as f64)
        }),
    );
    sheet.gauges(
        "mmm_role",
        "Who holds each role IP (1 on the holder)",
        st.roles.iter().flat_map(|(role, slots)| {
            slots.iter().filter_map(move |slot| {
                slot.owner.as_ref().map(|owner| {
                    (
                        labels([
                            ("role", role.as_str()),
                            ("ip", &slot.ip.to_string()),
                            ("host", owner.as_str()),
                        ]),
                        1.0,
                    )
                })
            })
        }),
    );
    sheet.gauges(
        "mmm_mode",
        "The monitor's mode (1 on the current one)",
        MODES
            .iter()
            .map(|m| (labels([("mode", &m.to_string())]), flag(st.mode == *m))),
    );
    sheet.gauge(
        "mmm_writer_epoch",
        "The writer epoch: it moves on by one with every writer change",
        st.epoch.0 as f64,
    );
    sheet.counter(
        "mmm_writer_changes",
        "Writer changes since the cluster was created",
        st.epoch.0,
    );
    sheet.gauge(
        "mmm_has_writer",
        "Whether a host holds the writer role",
        flag(st.active_master(topo).is_some()),
    );
    if let Some(last) = st.history.iter().rev().find(|f| f.active.is_some()) {
        if let Some(ms) = last.took_ms() {
            sheet.gauge(
                "mmm_last_failover_duration_seconds",
                "The latest completed writer change: from the decision to the new writer's confirmation",
                ms as f64 / 1000.0,
            );
        }
        sheet.gauge(
            "mmm_last_failover_timestamp_seconds",
            "When the latest completed writer change was decided (Unix time)",
            last.decided.0 as f64 / 1000.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_core::{
        CheckStatus, Epoch, HostMode, HostSpec, RoleMode, RoleName, RoleSpec, Settings, Time,
    };
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    /// Two masters, db1 ONLINE with the writer role and passing checks, db2 HARD_OFFLINE with
    /// five errant transactions.
    fn seed() -> (Topology, ClusterState) {
        let host = |last: u8, peer: &str| HostSpec {
            ip: IpAddr::from([10, 0, 0, last]),
            mode: HostMode::Master,
            peer: Some(peer.into()),
        };
        let topo = Topology {
            hosts: BTreeMap::from([
                ("db1".into(), host(1, "db2")),
                ("db2".into(), host(2, "db1")),
            ]),
            roles: BTreeMap::from([(
                RoleName::from("writer"),
                RoleSpec {
                    mode: RoleMode::Exclusive,
                    hosts: vec!["db1".into(), "db2".into()],
                    ips: vec![IpAddr::from([10, 0, 0, 100])],
                    prefer: None,
                },
            )]),
            active_master_role: RoleName::from("writer"),
            settings: Settings::default(),
        };
        let mut st = ClusterState::new(&topo, Time(1_000));
        for (h, state, ok) in [
            ("db1", HostState::Online, true),
            ("db2", HostState::HardOffline, false),
        ] {
            let hs = st.hosts.get_mut(h).expect("a host");
            hs.state = state;
            hs.checks.insert(
                CheckKind::Mysql,
                CheckStatus {
                    ok,
                    last_change: Time(1_000),
                    message: String::new(),
                },
            );
        }
        if let Some(hs) = st.hosts.get_mut("db2") {
            hs.checks.insert(
                CheckKind::RepThreads,
                CheckStatus {
                    ok: false,
                    last_change: Time(1_000),
                    message: "ERROR: Errant transactions not on the active master db1: 5 (0-2-101..0-2-105)".into(),
                },
            );
        }
        if let Some(slots) = st.roles.get_mut("writer") {
            slots[0].owner = Some("db1".into());
        }
        st.epoch = Epoch(3);
        (topo, st)
    }

    fn value(text: &str, sample: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(sample))
            .and_then(|rest| rest.trim().parse().ok())
    }

    #[test]
    fn a_scrape_shows_states_roles_checks_raft_and_the_lease() {
        let (topo, st) = seed();
        let text = render(&Snapshot {
            replica: "mon1",
            term: 3,
            is_leader: true,
            leader: Some("mon1".into()),
            last_log_index: Some(42),
            last_applied_index: Some(41),
            millis_since_quorum_ack: Some(250),
            cluster: Some((&topo, &st)),
            network_up: true,
            latencies: vec![("db1".into(), CheckKind::Mysql, Duration::from_millis(12))],
            lease_left: Some(Duration::from_millis(1_200)),
        });
        assert_eq!(value(&text, "mmm_raft_term "), Some(3.0), "{text}");
        assert_eq!(value(&text, "mmm_raft_is_leader "), Some(1.0));
        assert_eq!(
            value(&text, "mmm_raft_leader{replica=\"mon1\",leader=\"mon1\"} "),
            Some(1.0)
        );
        assert_eq!(value(&text, "mmm_raft_applied_index "), Some(41.0));
        assert_eq!(value(&text, "mmm_raft_quorum_ack_age_seconds "), Some(0.25));
        assert_eq!(
            value(&text, "mmm_host_state{host=\"db1\",state=\"ONLINE\"} "),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                "mmm_host_state{host=\"db1\",state=\"HARD_OFFLINE\"} "
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "mmm_check_ok{host=\"db2\",check=\"mysql\"} "),
            Some(0.0)
        );
        assert_eq!(
            value(
                &text,
                "mmm_role{role=\"writer\",ip=\"10.0.0.100\",host=\"db1\"} "
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(value(&text, "mmm_mode{mode=\"ACTIVE\"} "), Some(1.0));
        assert_eq!(
            value(&text, "mmm_host_errant_transactions{host=\"db2\"} "),
            Some(5.0),
            "{text}"
        );
        assert_eq!(
            value(&text, "mmm_host_errant_transactions{host=\"db1\"} "),
            Some(0.0)
        );
        assert_eq!(value(&text, "mmm_writer_epoch "), Some(3.0));
        assert_eq!(value(&text, "mmm_writer_changes_total "), Some(3.0));
        assert_eq!(
            value(
                &text,
                "mmm_check_duration_seconds{host=\"db1\",check=\"mysql\"} "
            ),
            Some(0.012)
        );
        assert_eq!(
            value(&text, "mmm_writer_lease_remaining_seconds "),
            Some(1.2)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_replica_without_state_shows_only_its_own_metrics() {
        let text = render(&Snapshot {
            replica: "mon2",
            term: 1,
            is_leader: false,
            leader: None,
            last_log_index: None,
            last_applied_index: None,
            millis_since_quorum_ack: None,
            cluster: None,
            network_up: false,
            latencies: Vec::new(),
            lease_left: None,
        });
        assert_eq!(value(&text, "mmm_raft_is_leader "), Some(0.0));
        assert_eq!(value(&text, "mmm_network_up "), Some(0.0));
        assert!(!text.contains("mmm_host_state{"), "{text}");
        assert!(
            !text.contains("mmm_writer_lease_remaining_seconds "),
            "{text}"
        );
    }
}
