//! The agent's HTTP API (paths and bodies in `protocol`), served by `mmm_agentd` for the
//! monitor's leader. A refusal is a JSON `ApiError` with 400 (wrong host, bad role), 409
//! (stale epoch) or 500 (the state file could not be written); nothing was changed.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mmm_core::api::ApiError;
use mmm_transport::{Access, Roles};

use crate::agent::{Agent, Refusal};
use crate::monitors::Monitors;
use crate::ops::{Mysql, Vips};
use crate::protocol::{
    ClearBadRoles, Pong, SetStatus, CLEAR_BAD_ROLES_PATH, PING_PATH, STATUS_PATH, SYSTEM_PATH,
};

/// The largest request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// What each route of the agent's listener needs (see `mmm_transport`): the backup routes
/// check the replication account themselves (the source's agent is asked by another agent);
/// everything else takes the agents' token.
pub fn policy(_: &axum::http::Method, path: &str) -> Access {
    match path {
        crate::protocol::BACKUP_PATH | crate::protocol::BACKUP_REPORT_PATH => Access::Open,
        _ => Access::Roles(Roles::AGENT),
    }
}

/// The routes, over one agent.
pub fn router<M, V, N>(agent: Arc<Agent<M, V, N>>) -> Router
where
    M: Mysql + 'static,
    V: Vips + 'static,
    N: Monitors + 'static,
{
    Router::new()
        .route(PING_PATH, get(ping::<M, V, N>))
        .route(STATUS_PATH, post(set_status::<M, V, N>))
        .route(SYSTEM_PATH, get(system::<M, V, N>))
        .route(CLEAR_BAD_ROLES_PATH, post(clear_bad_roles::<M, V, N>))
        .route(crate::metrics::METRICS_PATH, get(metrics::<M, V, N>))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(agent)
}

fn refused(r: Refusal) -> Response {
    let code = match r {
        Refusal::WrongHost { .. } | Refusal::BadRole(_) => StatusCode::BAD_REQUEST,
        Refusal::StaleEpoch { .. } | Refusal::StaleTerm { .. } => StatusCode::CONFLICT,
        Refusal::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!(error = %r, "request refused");
    error_response(code, r.to_string())
}

/// A refusal: `code` with an `ApiError` body.
pub(crate) fn error_response(code: StatusCode, error: String) -> Response {
    (code, Json(ApiError { error })).into_response()
}

async fn ping<M: Mysql, V: Vips, N: Monitors>(
    State(agent): State<Arc<Agent<M, V, N>>>,
) -> Json<Pong> {
    Json(agent.pong().await)
}

async fn set_status<M: Mysql, V: Vips, N: Monitors>(
    State(agent): State<Arc<Agent<M, V, N>>>,
    Json(req): Json<SetStatus>,
) -> Response {
    match agent.apply(req).await {
        Ok(reply) => Json(reply).into_response(),
        Err(r) => refused(r),
    }
}

async fn metrics<M: Mysql, V: Vips, N: Monitors>(
    State(agent): State<Arc<Agent<M, V, N>>>,
) -> Response {
    let text = crate::metrics::agent(&agent.system_status().await);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}

async fn system<M: Mysql, V: Vips, N: Monitors>(
    State(agent): State<Arc<Agent<M, V, N>>>,
) -> Response {
    Json(agent.system_status().await).into_response()
}

async fn clear_bad_roles<M: Mysql, V: Vips, N: Monitors>(
    State(agent): State<Arc<Agent<M, V, N>>>,
    Json(req): Json<ClearBadRoles>,
) -> Response {
    match agent.clear_bad_roles(&req).await {
        Ok(c) => Json(c).into_response(),
        Err(r) => refused(r),
    }
}
