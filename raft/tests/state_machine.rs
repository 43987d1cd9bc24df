//! The state machine on a sled store: applying requests through `mmm_core::step`, recording
//! refusals as results, snapshots, and what survives closing and reopening the directory.

mod common;

use common::{
    all_checks_ok, configure_entry, event_entry, log_id, membership_entry, request_entry, topology,
    GROUP,
};
use mmm_core::{
    ClusterState, Command, Event, HostName, Outcome, StartupReport, StepError, Time, Topology,
};
use mmm_raft::typ::Vote;
use mmm_raft::{ApplyError, Request, Store};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{RaftLogReader, RaftSnapshotBuilder};

/// The events every test drives through the state machine after `Configure`: the startup vote,
/// every check passing, then time passing.
fn events() -> Vec<(Time, Event)> {
    let topo = topology();
    vec![
        (
            Time::from_secs(101),
            Event::Startup(StartupReport::default()),
        ),
        (Time::from_secs(102), all_checks_ok(&topo)),
        (Time::from_secs(200), Event::Tick),
    ]
}

/// What the core itself computes for `events()` on a fresh state.
fn core_outcomes() -> (Vec<Outcome>, ClusterState) {
    let topo = topology();
    let mut state = ClusterState::new(&topo, Time::from_secs(100));
    let outcomes = events()
        .into_iter()
        .map(|(now, event)| mmm_core::step(&topo, &mut state, now, event).unwrap())
        .collect();
    (outcomes, state)
}

#[tokio::test]
async fn configure_then_events_yield_the_cores_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();

    let mut entries = vec![
        membership_entry(1),
        configure_entry(2, Time::from_secs(100)),
    ];
    for (i, (now, event)) in events().into_iter().enumerate() {
        entries.push(event_entry(3 + i as u64, now, event));
    }
    let replies = sm.apply(entries).await.unwrap();

    let (expected, expected_state) = core_outcomes();
    assert_eq!(replies.len(), 5, "one reply per entry");
    assert_eq!(replies[0], Ok(Outcome::default()), "membership");
    assert_eq!(replies[1], Ok(Outcome::default()), "configure");
    let outcomes: Vec<Outcome> = replies[2..].iter().cloned().map(Result::unwrap).collect();
    assert_eq!(outcomes, expected);
    assert!(
        outcomes.iter().any(|o| !o.effects.is_empty()),
        "the events must do something for this test to mean anything"
    );

    let read = sm.read();
    assert_eq!(read.last_applied, Some(log_id(5)));
    assert_eq!(read.topology, Some(topology()));
    assert_eq!(read.state, Some(expected_state));
    let (last_applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(5)));
    assert_eq!(membership.log_id(), &Some(log_id(1)));
}

#[tokio::test]
async fn an_event_before_configure_is_recorded_as_not_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();

    let replies = sm
        .apply([event_entry(1, Time::from_secs(1), Event::Tick)])
        .await
        .unwrap();

    assert_eq!(replies, vec![Err(ApplyError::NotConfigured)]);
    let read = sm.read();
    assert_eq!(
        read.last_applied,
        Some(log_id(1)),
        "the refusal counts as applied"
    );
    assert_eq!(read.state, None);
}

#[tokio::test]
async fn a_refused_event_is_recorded_and_leaves_the_state_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();
    sm.apply([configure_entry(1, Time::from_secs(100))])
        .await
        .unwrap();
    let before = sm.read().state.clone();

    let unknown_host = Event::AgentReachable {
        host: HostName::from("db9"),
        reachable: false,
    };
    let read_only = Event::Admin(Command::Show);
    let replies = sm
        .apply([
            event_entry(2, Time::from_secs(500), unknown_host),
            event_entry(3, Time::from_secs(600), read_only),
        ])
        .await
        .unwrap();

    assert_eq!(
        replies,
        vec![
            Err(ApplyError::Step(StepError::UnknownHost("db9".into()))),
            Err(ApplyError::Step(StepError::ReadOnly("show".into()))),
        ]
    );
    let read = sm.read();
    assert_eq!(read.last_applied, Some(log_id(3)));
    assert_eq!(read.state, before, "not even the clock moves");
}

#[tokio::test]
async fn an_invalid_topology_is_recorded_as_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();
    let mut topo = topology();
    topo.active_master_role = "nosuchrole".into();

    let replies = sm
        .apply([request_entry(
            1,
            Request::Configure {
                topology: topo,
                now: Time::from_secs(1),
            },
        )])
        .await
        .unwrap();

    assert_eq!(
        replies,
        vec![Err(ApplyError::InvalidTopology(
            "active_master_role 'nosuchrole' is not an exclusive role".into()
        ))]
    );
    assert_eq!(sm.read().topology, None);
}

#[tokio::test]
async fn a_second_configure_reconciles_the_existing_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();
    let mut entries = vec![configure_entry(1, Time::from_secs(100))];
    for (i, (now, event)) in events().into_iter().enumerate() {
        entries.push(event_entry(2 + i as u64, now, event));
    }
    sm.apply(entries).await.unwrap();
    let mut smaller: Topology = topology();
    smaller.hosts.remove("db3");
    if let Some(reader) = smaller.roles.get_mut("reader") {
        reader.hosts.retain(|h| h.as_str() != "db3");
    }

    let replies = sm
        .apply([request_entry(
            5,
            Request::Configure {
                topology: smaller.clone(),
                now: Time::from_secs(300),
            },
        )])
        .await
        .unwrap();

    let (_, mut expected) = core_outcomes();
    let outcome = mmm_core::reconfigure(&smaller, &mut expected, Time::from_secs(300)).unwrap();
    assert_eq!(replies, vec![Ok(outcome)]);
    let read = sm.read();
    assert_eq!(read.topology, Some(smaller));
    assert_eq!(read.state, Some(expected));
}

#[tokio::test]
async fn a_snapshot_installed_on_a_fresh_store_reproduces_the_state() {
    let leader_dir = tempfile::tempdir().unwrap();
    let (_log, mut leader) = Store::open(leader_dir.path(), GROUP).unwrap();
    let mut entries = vec![
        membership_entry(1),
        configure_entry(2, Time::from_secs(100)),
    ];
    for (i, (now, event)) in events().into_iter().enumerate() {
        entries.push(event_entry(3 + i as u64, now, event));
    }
    leader.apply(entries).await.unwrap();
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(5)));

    let follower_dir = tempfile::tempdir().unwrap();
    let (_log, mut follower) = Store::open(follower_dir.path(), GROUP).unwrap();
    let mut received = follower.begin_receiving_snapshot().await.unwrap();
    *received = *snapshot.snapshot;
    follower
        .install_snapshot(&snapshot.meta, received)
        .await
        .unwrap();

    assert_eq!(*follower.read(), *leader.read());
    assert_eq!(
        follower.applied_state().await.unwrap(),
        leader.applied_state().await.unwrap()
    );
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);
}

#[tokio::test]
async fn a_snapshot_whose_data_contradicts_its_meta_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();
    sm.apply([configure_entry(1, Time::from_secs(100))])
        .await
        .unwrap();
    let mut snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    snapshot.meta.last_log_id = Some(log_id(9));

    let other_dir = tempfile::tempdir().unwrap();
    let (_log, mut other) = Store::open(other_dir.path(), GROUP).unwrap();
    let result = other
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await;

    assert!(result.is_err(), "{result:?}");
    assert_eq!(other.read().last_applied, None);
    assert!(other.get_current_snapshot().await.unwrap().is_none());
}

#[tokio::test]
async fn reopening_restores_the_last_snapshot_and_the_vote() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot_state;
    let snapshot_meta;
    {
        let (mut log, mut sm) = Store::open(dir.path(), GROUP).unwrap();
        log.save_vote(&Vote::new(3, 2)).await.unwrap();
        let mut entries = vec![
            membership_entry(1),
            configure_entry(2, Time::from_secs(100)),
        ];
        for (i, (now, event)) in events().into_iter().enumerate() {
            entries.push(event_entry(3 + i as u64, now, event));
        }
        sm.apply(entries).await.unwrap();
        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        snapshot_state = sm.read();
        snapshot_meta = snapshot.meta;
        // Applied after the snapshot: gone from memory on reopening, re-applied by openraft
        // from the log.
        sm.apply([event_entry(6, Time::from_secs(900), Event::Tick)])
            .await
            .unwrap();
    }

    let (mut log, mut sm) = Store::open(dir.path(), GROUP).unwrap();

    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
    assert_eq!(*sm.read(), *snapshot_state);
    let (last_applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(5)));
    assert_eq!(membership, snapshot_state.membership);
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot_meta);
}

#[tokio::test]
async fn reopening_keeps_the_log_committed_and_purged_ids() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _sm) = Store::open(dir.path(), GROUP).unwrap();
        let entries: Vec<_> = (1..=6)
            .map(|i| event_entry(i, Time(i), Event::Tick))
            .collect();
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries)
            .await
            .unwrap();
        log.save_committed(Some(log_id(5))).await.unwrap();
        log.purge(log_id(2)).await.unwrap();
        log.truncate(log_id(6)).await.unwrap();
    }

    let (mut log, _sm) = Store::open(dir.path(), GROUP).unwrap();

    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(2)));
    assert_eq!(state.last_log_id, Some(log_id(5)));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(5)));
    let indexes: Vec<u64> = log
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, [3, 4, 5]);
}

#[tokio::test]
async fn a_corrupt_log_entry_is_a_storage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _sm) = Store::open(dir.path(), GROUP).unwrap();
        let entries: Vec<_> = (1..=3)
            .map(|i| event_entry(i, Time(i), Event::Tick))
            .collect();
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries)
            .await
            .unwrap();
    }
    {
        let db = common::open_raw(dir.path());
        let logs = db.open_tree("logs").unwrap();
        logs.insert(2u64.to_be_bytes(), &[1, 0xff, 0xff, 0xff][..])
            .unwrap();
        logs.insert(3u64.to_be_bytes(), &[7, 0][..]).unwrap();
        db.flush().unwrap();
    }
    let (mut log, _sm) = Store::open(dir.path(), GROUP).unwrap();

    let err = log.try_get_log_entries(2..3).await.unwrap_err();
    assert!(err.to_string().contains("cannot decode log entry"), "{err}");
    let err = log.get_log_state().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot decode log entry: unknown format version 7"),
        "{err}"
    );
    assert_eq!(log.try_get_log_entries(1..2).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_corrupt_stored_snapshot_fails_open_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();
        sm.apply([configure_entry(1, Time::from_secs(100))])
            .await
            .unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    {
        let db = common::open_raw(dir.path());
        let tree = db.open_tree("snapshot").unwrap();
        tree.insert("current", &[1, 0xff][..]).unwrap();
        db.flush().unwrap();
    }

    let err = Store::open(dir.path(), GROUP).unwrap_err();

    assert!(
        err.to_string().starts_with(&format!(
            "{}: cannot load the stored snapshot: cannot decode stored snapshot:",
            dir.path().display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn the_reader_sees_each_applied_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = Store::open(dir.path(), GROUP).unwrap();
    let reader = sm.reader();
    assert_eq!(reader.read().state, None);

    sm.apply([configure_entry(1, Time::from_secs(100))])
        .await
        .unwrap();
    let first = reader.read();
    sm.apply([event_entry(
        2,
        Time::from_secs(101),
        Event::Startup(StartupReport::default()),
    )])
    .await
    .unwrap();

    assert_eq!(
        first.last_applied,
        Some(log_id(1)),
        "a read is a stable copy"
    );
    assert_eq!(reader.read().last_applied, Some(log_id(2)));
    assert!(reader.read().state.as_ref().is_some_and(|s| s.started));
}
