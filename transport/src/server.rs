//! The listener every daemon serves its routes on: TLS when configured, the bearer check
//! against the route's [`Policy`], and bounds on what one client can hold.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::{Roles, Transport};

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (`/healthz`; routes that check their own credentials).
    Open,
    /// A token with one of these roles.
    Roles(Roles),
}

/// Decides what each route needs, by method and path.
pub type Policy = fn(&Method, &str) -> Access;

/// Bounds on what clients can hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time to complete a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// Time from a request's headers to its response's headers (the body of a streamed
    /// response is not bounded: a backup streams for as long as it takes).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// How long connections may take to finish after shutdown is asked.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// their requests (at most [`DRAIN`]).
pub async fn serve(
    transport: Transport,
    listener: TcpListener,
    app: Router,
    policy: Policy,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let acceptor = transport
        .tls()
        .map(|tls| tokio_rustls::TlsAcceptor::from(tls.server.clone()));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            transport: transport.clone(),
            app: app.clone(),
            policy,
            limits,
            peer,
        };
        let stop = stop_rx.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => conn.run(stream, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => conn.run(tls, stop).await,
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "TLS handshake refused")
                        }
                        Err(_) => tracing::warn!(
                            %peer,
                            timeout_secs = limits.handshake_timeout.as_secs_f64(),
                            "TLS handshake not completed in time"
                        ),
                    }
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
    Ok(())
}

/// One client connection.
struct Conn {
    transport: Transport,
    app: Router,
    policy: Policy,
    limits: Limits,
    peer: SocketAddr,
}

impl Conn {
    async fn run<I>(self, io: I, mut stop: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let limits = self.limits;
        let this = Arc::new(self);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let this = this.clone();
            async move { Ok::<_, Infallible>(this.handle(req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let roles = bearer(&req).map_or(Roles::NONE, |t| self.transport.keys().roles_of(t));
        if let Access::Roles(needed) = (self.policy)(req.method(), req.uri().path()) {
            if let Some(refusal) = self.refuse(&req, roles, needed) {
                return refusal;
            }
        }
        req.extensions_mut().insert(roles);
        match tokio::time::timeout(self.limits.request_timeout, self.app.clone().oneshot(req)).await
        {
            Ok(Ok(resp)) => resp,
            Ok(Err(never)) => match never {},
            Err(_) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request took longer than {} s",
                    self.limits.request_timeout.as_secs()
                ),
            ),
        }
    }

    fn refuse(&self, req: &Request<Body>, roles: Roles, needed: Roles) -> Option<Response> {
        let (peer, method, path) = (self.peer, req.method(), req.uri().path());
        if roles.is_empty() {
            let reason = if req.headers().contains_key(header::AUTHORIZATION) {
                "unknown token"
            } else {
                "no token"
            };
            tracing::warn!(%peer, %method, path, reason, "request refused: not authenticated");
            let mut resp = error(
                StatusCode::UNAUTHORIZED,
                format!("authentication required: {reason} (send Authorization: Bearer <token from the <socket> secret file>)"),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"mmm\""),
            );
            return Some(resp);
        }
        if roles.any_of(needed) {
            return None;
        }
        tracing::warn!(%peer, %method, path, "request refused: the token does not allow it");
        Some(error(
            StatusCode::FORBIDDEN,
            format!("{method} {path} is not allowed with this token"),
        ))
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(req: &Request<Body>) -> Option<&[u8]> {
    let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value.get(7..))
        .flatten()
}

/// The daemons' error body, `{"error": "..."}`.
pub(crate) fn error(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
