//! The agent's way to the monitor group: asking for the writer lease, and reporting that the
//! local mysqld died (the fast failover path). Any replica will do (followers forward to the
//! leader); the replicas are tried in turn, starting with the one that answered last, each with
//! a short timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mmm_core::api::{HostReport, LeaseGrant, LeaseRequest, ReportReply, LEASE_PATH, REPORT_PATH};

/// Why no lease was granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenewError {
    /// The group's committed state does not name this host writer at that epoch: the agent
    /// must fence itself now.
    #[error("refused: {0}")]
    Refused(String),
    /// No replica could grant it now (no leader, no quorum, unreachable).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// The monitor group, as the agent needs it.
pub trait Monitors: Send + Sync {
    /// Asks for the writer lease.
    fn renew(
        &self,
        req: &LeaseRequest,
    ) -> impl Future<Output = Result<LeaseGrant, RenewError>> + Send;

    /// Reports that the local mysqld died; the answer says whether the leader's own probe
    /// confirmed it.
    fn report(
        &self,
        report: &HostReport,
    ) -> impl Future<Output = Result<ReportReply, String>> + Send;
}

/// The monitor group over HTTP.
#[derive(Debug)]
pub struct HttpMonitors {
    replicas: Vec<SocketAddr>,
    client: reqwest::Client,
    next: AtomicUsize,
}

impl HttpMonitors {
    /// The replicas at `replicas`; each request waits at most `timeout` for one replica.
    pub fn new(replicas: Vec<SocketAddr>, timeout: Duration) -> Result<HttpMonitors, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpMonitors {
            replicas,
            client,
            next: AtomicUsize::new(0),
        })
    }
}

impl HttpMonitors {
    /// Posts `body` to `path` on the replicas in turn; the first answer that is a success or
    /// a 409 (a refusal that every replica would give) ends the round.
    async fn post_any<T: serde::Serialize>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<(SocketAddr, reqwest::Response), String> {
        let n = self.replicas.len();
        if n == 0 {
            return Err("no monitor replica configured".into());
        }
        let start = self.next.load(Ordering::Relaxed) % n;
        let mut errors = Vec::new();
        for k in 0..n {
            let i = (start + k) % n;
            let Some(addr) = self.replicas.get(i) else {
                continue;
            };
            let url = format!("http://{addr}{path}");
            let resp = match self.client.post(&url).json(body).send().await {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            let status = resp.status();
            if status.is_success() || status == reqwest::StatusCode::CONFLICT {
                self.next.store(i, Ordering::Relaxed);
                return Ok((*addr, resp));
            }
            let text = crate::client::error_text(resp).await;
            errors.push(format!("{addr}: {status}: {text}"));
        }
        Err(errors.join("; "))
    }
}

impl Monitors for HttpMonitors {
    async fn renew(&self, req: &LeaseRequest) -> Result<LeaseGrant, RenewError> {
        let (addr, resp) = self
            .post_any(LEASE_PATH, req)
            .await
            .map_err(RenewError::Unavailable)?;
        if resp.status() == reqwest::StatusCode::CONFLICT {
            let text = crate::client::error_text(resp).await;
            return Err(RenewError::Refused(format!("{addr}: {text}")));
        }
        resp.json::<LeaseGrant>()
            .await
            .map_err(|e| RenewError::Unavailable(format!("{addr}: unreadable grant: {e}")))
    }

    async fn report(&self, report: &HostReport) -> Result<ReportReply, String> {
        let (addr, resp) = self.post_any(REPORT_PATH, report).await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = crate::client::error_text(resp).await;
            return Err(format!("{addr}: {status}: {text}"));
        }
        resp.json::<ReportReply>()
            .await
            .map_err(|e| format!("{addr}: unreadable reply: {e}"))
    }
}
