//! The agent's requests to the monitor group over real HTTP on loopback: a replica that
//! accepts connections but never answers (a frozen leader) must not hold up a lease renewal
//! while another replica can grant it, and refusals and failures are told apart.

use axum::{routing::post, Json, Router};
use mmm_agent::monitors::{HttpMonitors, Monitors, RenewError};
use mmm_core::api::{ApiError, LeaseGrant, LeaseRequest, LEASE_PATH};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A replica that accepts and then says nothing, as a frozen process whose socket is open.
async fn silent() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (addr, task)
}

/// A replica that grants every lease (`grant`) or refuses it with 409.
async fn replica(grant: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let app = Router::new().route(
        LEASE_PATH,
        post(move |Json(req): Json<LeaseRequest>| async move {
            if grant {
                Ok(Json(LeaseGrant {
                    host: req.host,
                    epoch: req.epoch,
                    lease_ms: 1500,
                    renew_ms: 300,
                    replica: "mon2".into(),
                }))
            } else {
                Err((
                    axum::http::StatusCode::CONFLICT,
                    Json(ApiError {
                        error: "the writer is db2 at epoch 8".into(),
                    }),
                ))
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

fn request() -> LeaseRequest {
    LeaseRequest {
        host: "db1".into(),
        epoch: 7,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_replica_does_not_hold_up_the_grant_of_another() {
    let (dead, _t) = silent().await;
    let live = replica(true).await;
    // A per-replica timeout of a minute: asking the replicas one after the other would wait
    // it out on the silent one first.
    let m = HttpMonitors::new(
        &mmm_transport::Transport::new(Default::default(), None),
        vec![dead, live],
        Duration::from_secs(60),
    )
    .expect("client");
    let start = Instant::now();
    let grant = tokio::time::timeout(Duration::from_secs(20), m.renew(&request()))
        .await
        .expect("the renewal waited for the silent replica")
        .expect("granted");
    assert_eq!((grant.host.as_str(), grant.epoch), ("db1", 7));
    // And the next renewal starts with the replica that answered.
    let again = tokio::time::timeout(Duration::from_secs(20), m.renew(&request())).await;
    assert!(again.is_ok_and(|g| g.is_ok()));
    println!("granted after {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_ends_the_round_and_an_unreachable_group_is_unavailable() {
    let refusing = replica(false).await;
    let m = HttpMonitors::new(
        &mmm_transport::Transport::new(Default::default(), None),
        vec![refusing],
        Duration::from_secs(5),
    )
    .expect("client");
    match m.renew(&request()).await {
        Err(RenewError::Refused(why)) => assert!(why.contains("epoch 8"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Nothing listens on these ports (bound, then closed).
    let closed: Vec<SocketAddr> = {
        let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        vec![a.local_addr().expect("a"), b.local_addr().expect("b")]
    };
    let m = HttpMonitors::new(
        &mmm_transport::Transport::new(Default::default(), None),
        closed.clone(),
        Duration::from_secs(5),
    )
    .expect("client");
    match m.renew(&request()).await {
        Err(RenewError::Unavailable(why)) => {
            for addr in closed {
                assert!(why.contains(&addr.to_string()), "{why}");
            }
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}
