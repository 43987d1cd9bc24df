//! Raft RPC between monitor replicas over HTTP.
//!
//! Client side: `HttpNetwork` is openraft's network factory. It holds one pooled HTTP client
//! for all peers (built by the monitor with its token and TLS settings), and each RPC is a POST whose body is the request encoded with `codec`, with
//! openraft's deadline (`RPCOption::hard_ttl`) as its timeout. A peer that cannot be reached
//! is reported as `Unreachable` (openraft backs off), a deadline as `Timeout`.
//!
//! Server side: `router` serves `/raft/append`, `/raft/vote` and `/raft/snapshot` on the
//! monitor's listener, which admits only callers with the replicas' token. The answer is the encoded `Result` of the local `Raft` call. A body that
//! does not decode gets 400 with the reason; nothing an RPC carries can panic the replica.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{self, MAX_ENCODED_LEN};
use crate::typ::{Node, NodeId, Raft};
use crate::TypeConfig;

/// The path prefix of the Raft RPCs on a monitor's listener.
pub const RAFT_PATH: &str = "/raft";

/// How long a new connection to a peer may take; openraft's RPC deadline bounds the whole call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// openraft's network factory: one pooled HTTP client shared by every peer connection.
#[derive(Clone)]
pub struct HttpNetwork {
    /// This replica's id, for timeout errors.
    id: NodeId,
    /// Keeps connections to peers alive between RPCs.
    client: reqwest::Client,
    /// `http` or `https`.
    scheme: &'static str,
}

impl HttpNetwork {
    /// A network for replica `id` whose RPCs go out through `builder` (which carries the
    /// token and TLS settings) to `scheme` URLs.
    pub fn new(
        id: NodeId,
        builder: reqwest::ClientBuilder,
        scheme: &'static str,
    ) -> Result<Self, reqwest::Error> {
        let client = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()?;
        Ok(HttpNetwork { id, client, scheme })
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            id: self.id,
            target,
            node: node.clone(),
            client: self.client.clone(),
            scheme: self.scheme,
        }
    }
}

/// The connection to one peer.
pub struct PeerClient {
    id: NodeId,
    target: NodeId,
    node: Node,
    client: reqwest::Client,
    scheme: &'static str,
}

impl PeerClient {
    /// Sends one RPC and decodes the peer's `Result`.
    async fn call<Req, Resp, E>(
        &self,
        action: RPCTypes,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = codec::encode("raft request", req).map_err(|e| NetworkError::new(&e))?;
        let url = format!("{}://{}{RAFT_PATH}/{path}", self.scheme, self.node.addr);
        let timeout = option.hard_ttl();
        let sent = self
            .client
            .post(&url)
            .timeout(timeout)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.id,
                    target: self.target,
                    timeout,
                }))
            }
            Err(e) if e.is_connect() => return Err(Unreachable::new(&e).into()),
            Err(e) => return Err(NetworkError::new(&e).into()),
        };
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| NetworkError::new(&e))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let err = std::io::Error::other(format!("{url}: HTTP {status}: {text}"));
            return Err(NetworkError::new(&err).into());
        }
        let result: Result<Resp, RaftError<NodeId, E>> =
            codec::decode("raft response", &bytes).map_err(|e| NetworkError::new(&e))?;
        result.map_err(|e| RemoteError::new_with_node(self.target, self.node.clone(), e).into())
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call(RPCTypes::AppendEntries, "append", &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(RPCTypes::InstallSnapshot, "snapshot", &rpc, &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call(RPCTypes::Vote, "vote", &rpc, &option).await
    }
}

/// The Raft RPC routes, to be nested in the monitor's listener at the root.
pub fn router(raft: Raft) -> Router {
    Router::new()
        .route(&format!("{RAFT_PATH}/append"), post(append))
        .route(&format!("{RAFT_PATH}/vote"), post(vote))
        .route(&format!("{RAFT_PATH}/snapshot"), post(snapshot))
        .layer(DefaultBodyLimit::max(MAX_ENCODED_LEN))
        .with_state(raft)
}

/// Decodes the request (400 naming what was wrong if it does not decode), makes the local
/// Raft call and encodes its `Result` as the reply.
async fn serve<Req, Resp, F, Fut>(what: &'static str, body: Bytes, call: F) -> Response
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = Resp>,
{
    let req: Req = match codec::decode(what, &body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    match codec::encode("raft response", &call(req).await) {
        Ok(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a raft reply");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
    }
}

async fn append(State(raft): State<Raft>, body: Bytes) -> Response {
    serve(
        "append request",
        body,
        |req: AppendEntriesRequest<TypeConfig>| async move { raft.append_entries(req).await },
    )
    .await
}

async fn vote(State(raft): State<Raft>, body: Bytes) -> Response {
    serve(
        "vote request",
        body,
        |req: VoteRequest<NodeId>| async move { raft.vote(req).await },
    )
    .await
}

async fn snapshot(State(raft): State<Raft>, body: Bytes) -> Response {
    serve(
        "snapshot request",
        body,
        |req: InstallSnapshotRequest<TypeConfig>| async move { raft.install_snapshot(req).await },
    )
    .await
}
