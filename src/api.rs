//! The monitor API on every replica (paths and types in `mmm_core::api`).
//!
//! Read-only commands are answered from this replica's applied state; with `linearizable`,
//! the leader first confirms it still leads (a follower forwards such a read). Commands that
//! change state go through Raft: the leader commits them, a follower forwards them to the
//! leader once (a forwarded request is never forwarded again). With no leader the answer is
//! 503 and says so.

use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mmm_core::api::{
    reply_is_error, ApiError, CommandReply, CommandRequest, GroupStatus, HostReport, LeaderInfo,
    LeaseRequest, Member, ReportReply, StateReply, COMMAND_PATH, HEALTHZ_PATH, LEADER_PATH,
    LEASE_PATH, OBSERVATIONS_PATH, REPORT_PATH, STATE_PATH, STATUS_PATH,
};
use mmm_core::observe::ReplicaReport;
use mmm_core::{render, CheckKind, Command, Event, HostName, Probe};
use mmm_raft::typ::Raft;
use mmm_raft::{Request, StateReader};
use mmm_transport::{Access, Channel, Roles, Transport};
use openraft::error::{ClientWriteError, RaftError};

use crate::group::Group;
use crate::shared::Shared;

/// How long a state-changing command may wait to be committed by a majority.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a read waits for the leader to confirm the commit point.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Marks a command a follower forwarded, so that it is never forwarded twice.
const FORWARDED: &str = "x-mmm-forwarded";

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    raft: Raft,
    reader: StateReader,
    group: Group,
    /// For forwarding to the leader.
    client: reqwest::Client,
    /// The check tables, the fence gate and the lease settings, shared with the leader loop.
    shared: std::sync::Arc<Shared>,
    /// Tokens and TLS, for URLs of the leader.
    transport: Transport,
}

impl Api {
    /// The API of one replica.
    pub fn new(
        raft: Raft,
        reader: StateReader,
        group: Group,
        shared: std::sync::Arc<Shared>,
        transport: Transport,
    ) -> anyhow::Result<Api> {
        let client = transport
            .client(Channel::Monitor)
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .build()
            .context("HTTP client for forwarding")?;
        Ok(Api {
            raft,
            reader,
            group,
            client,
            shared,
            transport,
        })
    }

    fn leader(&self) -> Option<(u64, Option<String>)> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone());
        Some((id, addr))
    }

    fn leader_name(&self) -> Option<String> {
        self.leader().map(|(id, _)| self.group.name_of(id))
    }
}

/// What each route on a monitor's listener needs (see `mmm_transport`): `/healthz` is open;
/// reads take the admin, read-only or replicas' token; `/api/command` takes the admin or
/// read-only token (the handler keeps state-changing commands for admin) or the replicas' one
/// (a forwarded command); the agents' reports and lease renewals take the agents' token (or
/// the replicas', when a follower forwards them); check tables and Raft take the replicas'.
pub fn policy(method: &axum::http::Method, path: &str) -> Access {
    let operator = Roles::ADMIN.or(Roles::READ_ONLY).or(Roles::MONITOR);
    let agent = Roles::AGENT.or(Roles::MONITOR);
    match path {
        HEALTHZ_PATH => Access::Open,
        LEADER_PATH | STATUS_PATH | STATE_PATH | COMMAND_PATH => Access::Roles(operator),
        p if p == mmm_agent::metrics::METRICS_PATH => Access::Roles(operator),
        LEASE_PATH | REPORT_PATH => Access::Roles(agent),
        _ if method == axum::http::Method::GET => Access::Roles(operator),
        _ => Access::Roles(Roles::MONITOR),
    }
}

/// The routes, with the API state.
pub fn router(api: Api) -> Router {
    Router::new()
        .route(HEALTHZ_PATH, get(|| async { "OK\n" }))
        .route(LEADER_PATH, get(leader))
        .route(STATUS_PATH, get(status))
        .route(STATE_PATH, get(state))
        .route(COMMAND_PATH, post(command))
        .route(LEASE_PATH, post(lease))
        .route(OBSERVATIONS_PATH, post(observations))
        .route(REPORT_PATH, post(report))
        .route(mmm_agent::metrics::METRICS_PATH, get(metrics))
        .with_state(api)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

fn no_leader(api: &Api) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the monitor group has no leader (replica {} sees none); a majority of the {} replicas must run and reach each other",
            api.group.this.name,
            api.group.members.len()
        ),
    )
}

async fn leader(State(api): State<Api>) -> Response {
    let m = api.raft.metrics().borrow().clone();
    let info = LeaderInfo {
        replica: api.group.this.name.clone(),
        leader: api.leader_name(),
        leader_addr: api.leader().and_then(|(_, a)| a),
        term: m.current_term,
    };
    let code = if m.current_leader == Some(api.group.this.id) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(info)).into_response()
}

async fn status(State(api): State<Api>) -> Json<GroupStatus> {
    let m = api.raft.metrics().borrow().clone();
    let replication = m
        .replication
        .as_ref()
        .map(|r| {
            r.iter()
                .map(|(id, matched)| (api.group.name_of(*id), matched.map(|l| l.index)))
                .collect()
        })
        .unwrap_or_default();
    Json(GroupStatus {
        replica: api.group.this.name.clone(),
        id: api.group.this.id,
        raft_state: format!("{:?}", m.state),
        term: m.current_term,
        leader: api.leader_name(),
        last_log_index: m.last_log_index,
        last_applied_index: m.last_applied.map(|l| l.index),
        replication,
        members: api
            .group
            .members
            .iter()
            .map(|m| Member {
                name: m.name.clone(),
                id: m.id,
                addr: m.addr.to_string(),
            })
            .collect(),
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
    })
}

async fn metrics(State(api): State<Api>) -> Response {
    let m = api.raft.metrics().borrow().clone();
    let applied = api.reader.read();
    let is_leader = m.current_leader == Some(api.group.this.id);
    let cluster = applied.topology.as_ref().zip(applied.state.as_ref());
    let lease_left = cluster
        .filter(|_| is_leader)
        .and_then(|(topo, st)| st.active_master(topo))
        .and_then(|writer| api.shared.gate().last_grant(writer))
        .map(|granted| {
            let since = api.shared.clock.now().since(granted);
            api.shared.leases.lease().saturating_sub(since)
        });
    let text = crate::metrics::render(&crate::metrics::Snapshot {
        replica: &api.group.this.name,
        term: m.current_term,
        is_leader,
        leader: api.leader_name(),
        last_log_index: m.last_log_index,
        last_applied_index: m.last_applied.map(|l| l.index),
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        cluster,
        network_up: api.shared.table.network_up(),
        latencies: api.shared.table.latencies(),
        lease_left,
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            mmm_agent::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}

async fn state(State(api): State<Api>) -> Response {
    let applied = api.reader.read();
    Json(StateReply {
        replica: api.group.this.name.to_string(),
        log_index: applied.last_applied.map(|l| l.index),
        topology: applied.topology.clone(),
        state: applied.state.clone(),
    })
    .into_response()
}

/// The local UTC offset, for the dates in `checks` (MMM printed local time).
fn utc_offset_secs() -> i64 {
    i64::from(chrono::Local::now().offset().local_minus_utc())
}

/// The refusal of a state-changing command to a caller with the read-only token.
fn read_only_refusal(line: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        format!(
            "'{}' changes the cluster and needs the admin token (api_secret_file); this one may only read",
            line.split_whitespace().next().unwrap_or_default()
        ),
    )
}

async fn command(
    State(api): State<Api>,
    axum::Extension(roles): axum::Extension<Roles>,
    headers: HeaderMap,
    Json(req): Json<CommandRequest>,
) -> Response {
    let forwarded = headers.contains_key(FORWARDED) && roles.any_of(Roles::MONITOR);
    if let Some(parsed) = crate::membership::GroupCommand::parse(&req.line) {
        if !roles.may_administer() {
            return read_only_refusal(&req.line);
        }
        let is_leader = is_leader(&api);
        let reply = match parsed {
            Err(usage) => usage,
            Ok(_) if !is_leader => return forward_command(&api, &req, forwarded).await,
            Ok(gc) => crate::membership::execute(&api.raft, gc).await,
        };
        return Json(CommandReply {
            ok: !reply_is_error(&reply),
            reply,
            replica: api.group.this.name.clone(),
            leader: api.leader_name(),
            log_index: api.raft.metrics().borrow().last_applied.map(|l| l.index),
            stale: false,
        })
        .into_response();
    }
    let cmd = Command::parse(&req.line);
    let is_leader = is_leader(&api);
    if cmd.is_read_only() {
        return read(&api, &req, &cmd, is_leader, forwarded).await;
    }
    if !roles.may_administer() {
        tracing::warn!(command = %req.line.split_whitespace().next().unwrap_or_default(), "state-changing command refused: read-only token");
        return read_only_refusal(&req.line);
    }
    let request = Request::Event {
        now: (api.shared.wall)(),
        event: Event::Admin(cmd),
    };
    let written = tokio::time::timeout(COMMIT_TIMEOUT, api.raft.client_write(request)).await;
    let Ok(written) = written else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not committed within {} s: replica {} cannot reach a majority of the {} replicas; the command may still be applied if they return",
                COMMIT_TIMEOUT.as_secs(),
                api.group.this.name,
                api.group.members.len()
            ),
        );
    };
    match written {
        Ok(resp) => match resp.data {
            Ok(outcome) => {
                let reply = outcome.reply.unwrap_or_default();
                Json(CommandReply {
                    ok: !reply_is_error(&reply),
                    reply,
                    replica: api.group.this.name.clone(),
                    leader: api.leader_name(),
                    log_index: Some(resp.log_id.index),
                    stale: false,
                })
                .into_response()
            }
            Err(mmm_raft::ApplyError::NotConfigured) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the monitor group has not applied its configuration yet",
            ),
            Err(e) => error(StatusCode::CONFLICT, e.to_string()),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
            forward_command(&api, &req, forwarded).await
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not committed: {e}"),
        ),
    }
}

/// Answers a read-only command. `show`, `checks` and `mode` are answered at the leader's
/// confirmed commit point (on the leader after `ensure_linearizable`, or forwarded to it), so a
/// command's effect is visible on every replica as soon as it was acknowledged. When no leader
/// can confirm within `READ_TIMEOUT`, the replica answers from its own state and marks the
/// reply stale, unless the request demands a linearizable read.
async fn read(
    api: &Api,
    req: &CommandRequest,
    cmd: &Command,
    is_leader: bool,
    forwarded: bool,
) -> Response {
    let needs_state = matches!(cmd, Command::Show | Command::Checks { .. } | Command::Mode);
    let mut stale = false;
    if needs_state {
        if is_leader {
            let confirmed =
                tokio::time::timeout(READ_TIMEOUT, api.raft.ensure_linearizable()).await;
            stale = !matches!(confirmed, Ok(Ok(_)));
        } else if forwarded {
            // The forwarder falls back to its own state.
            return no_leader(api);
        } else {
            match relay(api, COMMAND_PATH, req, READ_TIMEOUT).await {
                Ok((code, body)) if code == StatusCode::OK => return relayed(code, body),
                _ => stale = true,
            }
        }
        if stale && req.linearizable {
            return no_leader(api);
        }
    }
    let applied = api.reader.read();
    let (Some(topo), Some(st)) = (&applied.topology, &applied.state) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the monitor group has not applied its configuration yet",
        );
    };
    let reply = render::query(topo, st, cmd, utc_offset_secs()).unwrap_or_default();
    Json(CommandReply {
        ok: !reply_is_error(&reply),
        reply,
        replica: api.group.this.name.clone(),
        leader: api.leader_name(),
        log_index: applied.last_applied.map(|l| l.index),
        stale,
    })
    .into_response()
}

/// Sends a request to the leader once; its status and body.
async fn relay<T: serde::Serialize>(
    api: &Api,
    path: &str,
    req: &T,
    timeout: Duration,
) -> Result<(StatusCode, axum::body::Bytes), Response> {
    let Some((_, Some(addr))) = api.leader() else {
        return Err(no_leader(api));
    };
    if addr == api.group.this.addr.to_string() {
        return Err(no_leader(api));
    }
    let url = api.transport.url(&addr, path);
    let sent = api
        .client
        .post(&url)
        .timeout(timeout)
        .header(FORWARDED, "1")
        .json(req)
        .send()
        .await;
    let resp = sent.map_err(|e| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot reach the leader at {addr}: {e}"),
        )
    })?;
    let code = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = resp
        .bytes()
        .await
        .map_err(|e| error(StatusCode::BAD_GATEWAY, format!("leader at {addr}: {e}")))?;
    Ok((code, body))
}

/// A JSON body relayed from the leader, with its status.
fn relayed(code: StatusCode, body: axum::body::Bytes) -> Response {
    (code, [("content-type", "application/json")], body).into_response()
}

/// Sends a request to the leader once and relays its answer; a request that was itself
/// forwarded is not forwarded again.
async fn forward<T: serde::Serialize>(
    api: &Api,
    path: &str,
    req: &T,
    timeout: Duration,
    forwarded: bool,
) -> Response {
    if forwarded {
        return no_leader(api);
    }
    match relay(api, path, req, timeout).await {
        Ok((code, body)) => relayed(code, body),
        Err(resp) => resp,
    }
}

/// Forwards a state-changing command to the leader.
async fn forward_command(api: &Api, req: &CommandRequest, forwarded: bool) -> Response {
    let timeout = COMMIT_TIMEOUT + Duration::from_secs(1);
    forward(api, COMMAND_PATH, req, timeout, forwarded).await
}

/// Grants the writer's lease (see `mmm_core::api::LEASE_PATH` and ARCHITECTURE.md): only the
/// leader grants, only after confirming with a quorum that it still leads (after the request
/// arrived), and only while the committed state names the host writer at that epoch.
async fn lease(
    State(api): State<Api>,
    headers: HeaderMap,
    Json(req): Json<LeaseRequest>,
) -> Response {
    let is_leader = is_leader(&api);
    if !is_leader {
        let forwarded = headers.contains_key(FORWARDED);
        return forward(&api, LEASE_PATH, &req, READ_TIMEOUT, forwarded).await;
    }
    match crate::lease::grant(&api.raft, &api.reader, &api.shared, READ_TIMEOUT, req).await {
        Ok(grant) => Json(grant).into_response(),
        Err(crate::lease::Denied::Unavailable(why)) => error(StatusCode::SERVICE_UNAVAILABLE, why),
        Err(crate::lease::Denied::Refused(why)) => error(StatusCode::CONFLICT, why),
    }
}

fn is_leader(api: &Api) -> bool {
    api.raft.metrics().borrow().current_leader == Some(api.group.this.id)
}

/// A follower's check table, kept by the leader.
async fn observations(State(api): State<Api>, Json(report): Json<ReplicaReport>) -> Response {
    if !is_leader(&api) {
        return no_leader(&api);
    }
    match take_table(&api.group, &api.shared, report) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

/// The leader takes a follower's check table.
pub fn take_table(group: &Group, shared: &Shared, report: ReplicaReport) -> Result<(), String> {
    if !group.members.iter().any(|m| m.name == report.replica) {
        return Err(format!(
            "'{}' is not a member of the monitor group",
            report.replica
        ));
    }
    let now = shared.clock.now();
    shared.observations().record(now, report);
    shared.wake.notify_one();
    Ok(())
}

/// The fast path: an agent saw its mysqld die. The leader probes the host itself; if its probe
/// cannot connect either, the failure is committed at once (see `mmm_core::observe`).
async fn report(
    State(api): State<Api>,
    headers: HeaderMap,
    Json(req): Json<HostReport>,
) -> Response {
    if !is_leader(&api) {
        let forwarded = headers.contains_key(FORWARDED);
        return forward(&api, REPORT_PATH, &req, READ_TIMEOUT, forwarded).await;
    }
    match confirm_death(&api.reader, &api.shared, req).await {
        Ok(reply) => Json(reply).into_response(),
        Err(why) => error(StatusCode::BAD_REQUEST, why),
    }
}

/// The leader's side of the fast path: it probes the reported host's mysqld itself and, when
/// its probe cannot connect either, marks the failure confirmed. `Err` for an unknown host.
pub async fn confirm_death(
    reader: &StateReader,
    shared: &Shared,
    req: HostReport,
) -> Result<ReportReply, String> {
    let applied = reader.read();
    let host = HostName::new(req.host.as_str());
    if !applied
        .topology
        .as_ref()
        .is_some_and(|t| t.hosts.contains_key(&host))
    {
        return Err(format!("unknown host '{}'", req.host));
    }
    if shared.observations().is_confirmed(&host, CheckKind::Mysql) {
        return Ok(ReportReply {
            confirmed: true,
            detail: "already confirmed".into(),
        });
    }
    let probe = (shared.probe_now)(host.clone(), CheckKind::Mysql).await;
    let reply = match probe {
        // Only a refused or failed connection confirms a death; a timeout may be a busy
        // server and goes through the trap like any other failure.
        Probe::Error(message) if message.starts_with("ERROR: Connect error") => {
            let message = format!("{message} (the agent reported: {})", req.message);
            tracing::error!(host = %host, %message, "mysqld death reported by the agent and confirmed by this replica's probe");
            let now = shared.clock.now();
            shared
                .table
                .force_failed(&host, CheckKind::Mysql, message.clone(), now);
            shared
                .observations()
                .confirm(now, host, CheckKind::Mysql, message.clone());
            shared.wake.notify_one();
            ReportReply {
                confirmed: true,
                detail: message,
            }
        }
        Probe::Ok(m) | Probe::Unknown(m) | Probe::Error(m) => {
            tracing::warn!(host = %host, agent = %req.message, probe = %m, "the agent reports mysqld down, but this replica's probe does not agree");
            ReportReply {
                confirmed: false,
                detail: m,
            }
        }
    };
    Ok(reply)
}
