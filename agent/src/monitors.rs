//! The agent's way to the monitor group: asking for the writer lease, and reporting that the
//! local mysqld died (the fast failover path). Any replica will do (followers forward to the
//! leader). The request goes first to the replica that answered last; when that one has not
//! answered within [`HEDGE_AFTER`] or has failed, the next is asked too, without waiting for
//! the first: a dead or frozen leader whose address no longer answers (a SYN with no reply)
//! would otherwise cost a whole timeout on every lease renewal, and the writer would fence
//! itself while a new leader is ready to renew its lease.

use futures::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mmm_core::api::{HostReport, LeaseGrant, LeaseRequest, ReportReply, LEASE_PATH, REPORT_PATH};
use mmm_transport::{Channel, Transport};

/// How long a request waits for one replica before the next is asked as well.
pub const HEDGE_AFTER: Duration = Duration::from_millis(100);

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
    transport: Transport,
    next: AtomicUsize,
}

impl HttpMonitors {
    /// The replicas at `replicas`, asked with the agents' token (and TLS when configured);
    /// each request waits at most `timeout` for one replica.
    pub fn new(
        transport: &Transport,
        replicas: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Result<HttpMonitors, String> {
        let client = transport
            .client(Channel::Agent)
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpMonitors {
            replicas,
            client,
            transport: transport.clone(),
            next: AtomicUsize::new(0),
        })
    }
}

impl HttpMonitors {
    /// Posts `body` to `path`: to the replica that answered last, then to the next one as well
    /// whenever [`HEDGE_AFTER`] passes with no answer or a request fails, until every replica
    /// was asked. The first answer that is a success or a 409 (a refusal that every replica
    /// would give) wins; the requests still in flight are dropped.
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
        let ask = |k: usize| {
            let i = (start + k) % n;
            let addr = self.replicas[i];
            let sent = self
                .client
                .post(self.transport.url(addr, path))
                .json(body)
                .send();
            async move {
                let answer = match sent.await {
                    Ok(r)
                        if r.status().is_success()
                            || r.status() == reqwest::StatusCode::CONFLICT =>
                    {
                        Ok(r)
                    }
                    Ok(r) => {
                        let status = r.status();
                        Err(format!("{status}: {}", crate::client::error_text(r).await))
                    }
                    Err(e) => Err(e.to_string()),
                };
                (i, addr, answer)
            }
        };
        let mut pending = FuturesUnordered::new();
        pending.push(ask(0));
        let mut asked = 1;
        let mut errors = Vec::new();
        loop {
            let hedge = tokio::time::sleep(HEDGE_AFTER);
            tokio::select! {
                done = pending.next() => match done {
                    Some((i, addr, Ok(resp))) => {
                        self.next.store(i, Ordering::Relaxed);
                        return Ok((addr, resp));
                    }
                    Some((_, addr, Err(e))) => errors.push(format!("{addr}: {e}")),
                    None => {}
                },
                _ = hedge, if asked < n => {}
            }
            if asked < n {
                pending.push(ask(asked));
                asked += 1;
            } else if pending.is_empty() {
                break;
            }
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
