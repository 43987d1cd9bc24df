//! Three replicas talking Raft over real HTTP on loopback: they elect a leader, replicate a
//! write to all three, survive the loss of the leader, and refuse malformed RPC bodies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mmm_core::Time;
use mmm_raft::typ::{Node, NodeId, Raft};
use mmm_raft::{router, HttpNetwork, Request, StateReader, Store};
use tokio::task::JoinHandle;

mod common;

/// One replica: its Raft handle, its state reader, its HTTP server and its directory.
struct Replica {
    raft: Raft,
    reader: StateReader,
    server: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn config() -> Arc<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        ..Default::default()
    };
    Arc::new(config.validate().unwrap())
}

async fn start(id: NodeId, listener: tokio::net::TcpListener) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm) = Store::open(dir.path(), common::GROUP).unwrap();
    let reader = sm.reader();
    let raft = Raft::new(
        id,
        config(),
        HttpNetwork::new(id, reqwest::Client::builder(), "http").unwrap(),
        log,
        sm,
    )
    .await
    .unwrap();
    let app = router(raft.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Replica {
        raft,
        reader,
        server,
        _dir: dir,
    }
}

async fn cluster() -> (Vec<Replica>, BTreeMap<NodeId, Node>) {
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        members.insert(id, Node::new(l.local_addr().unwrap().to_string()));
        listeners.push((id, l));
    }
    let mut replicas = Vec::new();
    for (id, l) in listeners {
        replicas.push(start(id, l).await);
    }
    replicas[0].raft.initialize(members.clone()).await.unwrap();
    (replicas, members)
}

async fn leader_of(replicas: &[&Replica]) -> NodeId {
    let m = replicas[0]
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .unwrap();
    m.current_leader.unwrap()
}

async fn applied_on_all(replicas: &[&Replica], index: u64) {
    for r in replicas {
        r.raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(index), "write applied")
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_elect_a_leader_and_replicate_a_write_over_http() {
    let (replicas, _) = cluster().await;
    let all: Vec<&Replica> = replicas.iter().collect();
    let leader = leader_of(&all).await;
    let r = replicas[(leader - 1) as usize]
        .raft
        .client_write(Request::Configure {
            topology: common::topology(),
            now: Time::from_secs(100),
        })
        .await
        .unwrap();
    applied_on_all(&all, r.log_id.index).await;
    for replica in &replicas {
        let state = replica.reader.read();
        assert_eq!(state.topology, Some(common::topology()));
        assert!(state.state.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leader_elects_another_that_accepts_writes() {
    let (replicas, _) = cluster().await;
    let all: Vec<&Replica> = replicas.iter().collect();
    let old = leader_of(&all).await;
    // The followers must hold the membership before the leader goes, or they cannot elect.
    applied_on_all(&all, 1).await;
    let victim = &replicas[(old - 1) as usize];
    victim.server.abort();
    victim.raft.shutdown().await.unwrap();

    let rest: Vec<&Replica> = replicas
        .iter()
        .filter(|r| r.raft.metrics().borrow().id != old)
        .collect();
    let m = rest[0]
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != old),
            "a new leader",
        )
        .await
        .unwrap();
    let new = m.current_leader.unwrap();
    let leader = rest
        .iter()
        .find(|r| r.raft.metrics().borrow().id == new)
        .unwrap();
    let r = leader
        .raft
        .client_write(Request::Configure {
            topology: common::topology(),
            now: Time::from_secs(100),
        })
        .await
        .unwrap();
    applied_on_all(&rest, r.log_id.index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_rpc_body_gets_400_with_the_reason() {
    let (replicas, members) = cluster().await;
    let addr = &members[&1].addr;
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/raft/vote"))
        .body(vec![1u8, 0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("vote request"), "{text}");
    // The replica is still serving.
    let all: Vec<&Replica> = replicas.iter().collect();
    leader_of(&all).await;
}
