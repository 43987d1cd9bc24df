//! Raft RPCs between the simulated monitor replicas: every request and reply is encoded with
//! the production codec (`mmm_raft::codec`) and crosses the simulated network, and the callee
//! runs it on whatever Raft node its process has now. A replica that crashed sends nothing:
//! its factory is bound to the incarnation it started in.

use std::sync::Arc;
use std::time::Duration;

use mmm_raft::typ::{Node, NodeId, Raft};
use mmm_raft::TypeConfig;
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

use crate::net::{CallFail, Net};

/// Finds the Raft node a monitor process runs now.
pub type Nodes = Arc<dyn Fn(&str) -> Option<Raft> + Send + Sync>;

/// One replica's side of the network.
#[derive(Clone)]
pub struct SimRaftNet {
    /// The simulated network.
    pub net: Net,
    /// This replica's name (its process and host).
    pub this: String,
    /// Its id.
    pub id: NodeId,
    /// The incarnation it runs in.
    pub incarnation: u64,
    /// The other replicas' Raft nodes.
    pub nodes: Nodes,
    /// Names by node id.
    pub names: Arc<Vec<(NodeId, String)>>,
}

impl RaftNetworkFactory<TypeConfig> for SimRaftNet {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> Peer {
        let name = self
            .names
            .iter()
            .find(|(id, _)| *id == target)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        Peer {
            from: self.clone(),
            target,
            name,
        }
    }
}

/// The connection to one peer.
pub struct Peer {
    from: SimRaftNet,
    target: NodeId,
    name: String,
}

#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

impl Peer {
    async fn call<Req, Resp, E, F, Fut>(
        &self,
        action: RPCTypes,
        req: &Req,
        option: &RPCOption,
        serve: F,
    ) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Req: Serialize + DeserializeOwned + Send + 'static,
        Resp: Serialize + DeserializeOwned + Send + 'static,
        E: std::error::Error + Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(Raft, Req) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Resp, RaftError<NodeId, E>>> + Send,
    {
        let f = &self.from;
        if !f.net.alive(&f.this, f.incarnation) {
            return Err(Unreachable::new(&Failed("this replica is down".into())).into());
        }
        let body = mmm_raft::codec::encode("raft request", req)
            .map_err(|e| NetworkError::new(&Failed(e.to_string())))?;
        let timeout = option.hard_ttl().min(Duration::from_secs(10));
        let nodes = f.nodes.clone();
        let name = self.name.clone();
        let answer = f
            .net
            .call(&f.this, &self.name, timeout, async move {
                let raft = nodes(&name).ok_or_else(|| "no Raft node".to_string())?;
                let req: Req =
                    mmm_raft::codec::decode("raft request", &body).map_err(|e| e.to_string())?;
                let result = serve(raft, req).await;
                mmm_raft::codec::encode("raft response", &result).map_err(|e| e.to_string())
            })
            .await;
        let bytes = match answer {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => return Err(NetworkError::new(&Failed(e)).into()),
            Err(CallFail::Timeout) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: f.id,
                    target: self.target,
                    timeout,
                }))
            }
            Err(CallFail::Refused) => {
                return Err(Unreachable::new(&Failed("connection refused".into())).into())
            }
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            mmm_raft::codec::decode("raft response", &bytes)
                .map_err(|e| NetworkError::new(&Failed(e.to_string())))?;
        result.map_err(|e| RemoteError::new(self.target, e).into())
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call(
            RPCTypes::AppendEntries,
            &rpc,
            &option,
            |raft, req| async move { raft.append_entries(req).await },
        )
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
        self.call(
            RPCTypes::InstallSnapshot,
            &rpc,
            &option,
            |raft, req| async move { raft.install_snapshot(req).await },
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call(RPCTypes::Vote, &rpc, &option, |raft, req| async move {
            raft.vote(req).await
        })
        .await
    }
}
