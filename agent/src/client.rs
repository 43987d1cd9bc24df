//! The monitor's side of the agent API: one call per MMM command, each bounded by a timeout,
//! each error saying which agent and what happened.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use mmm_core::api::ApiError;
use mmm_transport::{Channel, Transport};
use serde::de::DeserializeOwned;

use crate::protocol::{
    ClearBadRoles, Cleared, CloneProgress, CloneRequest, Pong, SetStatus, StatusReply,
    SystemStatus, CLEAR_BAD_ROLES_PATH, CLONE_PATH, PING_PATH, STATUS_PATH, SYSTEM_PATH,
};

/// A call to an agent that failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The agent could not be reached or did not answer in time.
    #[error("agent at {addr}: {reason}")]
    Unreachable {
        /// The agent's address.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
    /// The agent refused the request (wrong host, stale epoch, bad role) and changed nothing.
    #[error("agent at {addr} refused: {status}: {error}")]
    Refused {
        /// The agent's address.
        addr: SocketAddr,
        /// The HTTP status.
        status: u16,
        /// The agent's explanation.
        error: String,
    },
}

/// The explanation in an `ApiError` body (from an agent or a monitor replica).
pub(crate) async fn error_text(resp: reqwest::Response) -> String {
    resp.json::<ApiError>()
        .await
        .map(|e| e.error)
        .unwrap_or_else(|e| format!("unreadable error body: {e}"))
}

/// A client for agents, shared by all calls (connections are reused).
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    transport: Transport,
}

impl AgentClient {
    /// A client with the agents' token (and TLS, when configured) whose connects take at most
    /// `connect` and whose calls take at most `timeout` unless a call says otherwise.
    pub fn new(
        transport: &Transport,
        connect: Duration,
        timeout: Duration,
    ) -> Result<AgentClient, String> {
        let http = transport
            .client(Channel::Agent)
            .connect_timeout(connect)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(AgentClient {
            http,
            transport: transport.clone(),
        })
    }

    async fn answer<T: DeserializeOwned>(
        addr: SocketAddr,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<T, CallError> {
        let unreachable = |e: reqwest::Error| CallError::Unreachable {
            addr,
            reason: e.to_string(),
        };
        let resp = sent.map_err(unreachable)?;
        let status = resp.status();
        if status.is_success() {
            return resp.json::<T>().await.map_err(unreachable);
        }
        let error = error_text(resp).await;
        Err(CallError::Refused {
            addr,
            status: status.as_u16(),
            error,
        })
    }

    /// MMM's PING.
    pub async fn ping(&self, addr: SocketAddr) -> Result<Pong, CallError> {
        let sent = self
            .http
            .get(self.transport.url(addr, PING_PATH))
            .send()
            .await;
        Self::answer(addr, sent).await
    }

    /// MMM's SET_STATUS; `timeout` covers a promotion's relay-log wait.
    pub async fn set_status(
        &self,
        addr: SocketAddr,
        status: &SetStatus,
        timeout: Duration,
    ) -> Result<StatusReply, CallError> {
        let sent = self
            .http
            .post(self.transport.url(addr, STATUS_PATH))
            .timeout(timeout)
            .json(status)
            .send()
            .await;
        Self::answer(addr, sent).await
    }

    /// MMM's GET_SYSTEM_STATUS (with GET_AGENT_STATUS).
    pub async fn system(&self, addr: SocketAddr) -> Result<SystemStatus, CallError> {
        let sent = self
            .http
            .get(self.transport.url(addr, SYSTEM_PATH))
            .send()
            .await;
        Self::answer(addr, sent).await
    }

    /// Starts a clone onto the agent's host (`POST` [`CLONE_PATH`]).
    pub async fn start_clone(
        &self,
        addr: SocketAddr,
        req: &CloneRequest,
    ) -> Result<CloneProgress, CallError> {
        let sent = self
            .http
            .post(self.transport.url(addr, CLONE_PATH))
            .json(req)
            .send()
            .await;
        Self::answer(addr, sent).await
    }

    /// The clone onto the agent's host, as it goes (`GET` [`CLONE_PATH`]).
    pub async fn clone_progress(&self, addr: SocketAddr) -> Result<CloneProgress, CallError> {
        let sent = self
            .http
            .get(self.transport.url(addr, CLONE_PATH))
            .send()
            .await;
        Self::answer(addr, sent).await
    }

    /// MMM's CLEAR_BAD_ROLES.
    pub async fn clear_bad_roles(
        &self,
        addr: SocketAddr,
        req: &ClearBadRoles,
    ) -> Result<Cleared, CallError> {
        let sent = self
            .http
            .post(self.transport.url(addr, CLEAR_BAD_ROLES_PATH))
            .json(req)
            .send()
            .await;
        Self::answer(addr, sent).await
    }
}

/// The agent calls the leader's driver makes: over HTTP in `mmm_mond` ([`AgentClient`]), over a
/// simulated network in the deterministic simulation.
pub trait AgentApi: Clone + Send + Sync + 'static {
    /// MMM's PING.
    fn ping(&self, addr: SocketAddr) -> impl Future<Output = Result<Pong, CallError>> + Send;
    /// MMM's SET_STATUS; `timeout` covers a promotion's relay-log wait.
    fn set_status(
        &self,
        addr: SocketAddr,
        status: &SetStatus,
        timeout: Duration,
    ) -> impl Future<Output = Result<StatusReply, CallError>> + Send;
    /// MMM's GET_SYSTEM_STATUS (with GET_AGENT_STATUS).
    fn system(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<SystemStatus, CallError>> + Send;
    /// MMM's CLEAR_BAD_ROLES.
    fn clear_bad_roles(
        &self,
        addr: SocketAddr,
        req: &ClearBadRoles,
    ) -> impl Future<Output = Result<Cleared, CallError>> + Send;
}

impl AgentApi for AgentClient {
    fn ping(&self, addr: SocketAddr) -> impl Future<Output = Result<Pong, CallError>> + Send {
        AgentClient::ping(self, addr)
    }

    fn set_status(
        &self,
        addr: SocketAddr,
        status: &SetStatus,
        timeout: Duration,
    ) -> impl Future<Output = Result<StatusReply, CallError>> + Send {
        AgentClient::set_status(self, addr, status, timeout)
    }

    fn system(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<SystemStatus, CallError>> + Send {
        AgentClient::system(self, addr)
    }

    fn clear_bad_roles(
        &self,
        addr: SocketAddr,
        req: &ClearBadRoles,
    ) -> impl Future<Output = Result<Cleared, CallError>> + Send {
        AgentClient::clear_bad_roles(self, addr, req)
    }
}
