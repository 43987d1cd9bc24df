//! The raw probes of MMM's four checks against the real hosts (reference §1.4, MMM 2.2.1's
//! `Monitor/Checker/Checks.pm`): each answers with MMM's message text (`OK`,
//! `ERROR: Could not ping 10.0.0.1`, `UNKNOWN: Too many connections! …`) as a [`Probe`]; the
//! check trap and the checker loop decide what results mean over time.
//!
//! - ping: one ICMP echo, MMM's hard-coded 0.5 s timeout. One ICMP socket per address family,
//!   opened at the first ping (in that runtime and network namespace) and reused; it needs root
//!   or `CAP_NET_RAW`, and failing to open it is logged once and reported by every ping.
//! - mysql: connect as `monitor_user`, `SELECT NOW()`. rep_threads, rep_backlog:
//!   `SHOW SLAVE STATUS` (`SHOW REPLICA STATUS` from MySQL 8.0.22), columns read by name in
//!   MariaDB's or MySQL 8's spelling (the latter unit-tested only).
//! - Bounds as MMM's: connecting (TCP, greeting, login) within the check's `timeout`, else a
//!   connect error (`mysql_connect_timeout`); the whole probe within `timeout` + 1 s, else
//!   `ERROR: Timeout` (the `alarm`). Each probe is a task of its own, so a hung host delays no
//!   other probe and a driver panic is `UNKNOWN: Error occurred: …` (MMM's answer to a `die`).
//! - Connections are opened by `mmm_agent::mysql_tls::connect`, the agent's: plain, or TLS
//!   (certificate not verified) when the server refuses a plain login, remembered per address.
//!
//! Deliberate differences from MMM: a NULL `Seconds_Behind_Master` fails rep_backlog with
//! `ERROR: Backlog is null (replication is not running)` (MMM: `OK: Backlog is null`, §1.15
//! defect 2; a lag of 0 is plain `OK`); rep_threads fails on any thread state but `Yes`
//! (`Connecting` too; MMM only on `No`), with MMM's `ERROR: Replication is broken`.
//!
//! Beyond MMM, on MariaDB rep_threads also compares the host's `@@gtid_binlog_state` with the
//! active master's and fails with `ERROR: Errant transactions not on the active master …`
//! when the host has transactions the writer lacks (`mmm_core::gtid::errant`); the rules keep
//! such a host out of rotation. MySQL's GTID sets are not compared.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, Context};
use mmm_config::{CheckName, Config, Secret};
use mmm_core::gtid::{self, BinlogState};
use mmm_core::{CheckKind, HostName, Probe};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};
use surge_ping::{IcmpPacket, PingIdentifier, PingSequence, SurgeError, ICMP};
use tokio::time::timeout;

/// MMM's hard-coded ping timeout (`Net::Ping->ping($ip, 0.5)`).
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// How much longer than the check's `timeout` a whole probe may take (MMM's
/// `alarm($timeout + 1)`).
pub const ALARM_MARGIN: Duration = Duration::from_secs(1);

/// The message of a probe that ran out of time.
pub const TIMEOUT_MESSAGE: &str = "ERROR: Timeout";

/// Why the ping check fails when the ICMP socket cannot be opened (after `ERROR: `, before
/// the system's error).
pub const NO_ICMP_SOCKET: &str =
    "cannot open an ICMP socket (run mmm_mond as root or give it CAP_NET_RAW)";

/// The payload of our echo requests.
const PING_PAYLOAD: &[u8] = b"mmm_mond";

/// The largest packet the probes accept (their answers are a few hundred bytes).
const MAX_ALLOWED_PACKET: usize = 4 * 1024 * 1024;

/// A host's binary log state (MariaDB).
const BINLOG_STATE: &str = "SELECT @@gtid_binlog_state";

/// The active master's binary log state, and whether it is writable yet.
const WRITER_BINLOG_STATE: &str = "SELECT @@gtid_binlog_state, @@read_only";

/// MySQL's `ER_CON_COUNT_ERROR`: too many connections.
const ER_CON_COUNT_ERROR: u16 = 1040;

/// MySQL's `ER_SPECIFIC_ACCESS_DENIED_ERROR`: a privilege is missing.
const ER_SPECIFIC_ACCESS_DENIED_ERROR: u16 = 1227;

/// Where and as whom one host is probed (`ip`, `mysql_port`, `monitor_user`,
/// `monitor_password` of its `<host>` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host's address.
    pub ip: IpAddr,
    /// Its MySQL port.
    pub mysql_port: u16,
    /// The monitor's MySQL account.
    pub user: String,
    /// That account's password.
    pub password: Secret,
}

/// The parameters of one check that concern its probe (from `<check NAME>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckParams {
    /// `timeout`: the connect timeout; the whole probe gets [`ALARM_MARGIN`] more. Ignored by
    /// ping.
    pub timeout: Duration,
    /// `max_backlog`: the largest `Seconds_Behind_Master` that passes rep_backlog.
    pub max_backlog: Duration,
}

impl Default for CheckParams {
    /// MMM's defaults: `timeout` 2 s, `max_backlog` 60 s.
    fn default() -> Self {
        CheckParams {
            timeout: Duration::from_secs(2),
            max_backlog: Duration::from_secs(60),
        }
    }
}

impl CheckParams {
    /// These parameters for each of the four checks.
    pub fn for_every_check(self) -> BTreeMap<CheckKind, CheckParams> {
        CheckKind::ALL.into_iter().map(|c| (c, self)).collect()
    }
}

/// Why a [`LiveProber`] cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeSetupError {
    /// A check has no parameters.
    #[error("no parameters for the {0} check")]
    MissingParams(CheckKind),
    /// A check that talks to MySQL has a zero timeout: it could never pass.
    #[error("<check {0}>: timeout is zero, so the check could never pass")]
    ZeroTimeout(CheckKind),
    /// A host's monitor user is empty.
    #[error("<host {0}>: monitor_user is empty")]
    EmptyUser(HostName),
}

/// Runs one check's probe on one host.
pub trait Prober: Send + Sync + 'static {
    /// Probes `host` for `check`. Never panics; a live prober finishes within the check's
    /// `timeout` + 1 s (ping: 0.5 s).
    fn probe(&self, host: &HostName, check: CheckKind) -> impl Future<Output = Probe> + Send;
}

/// The prober that talks to the real hosts (see the module documentation).
#[derive(Clone)]
pub struct LiveProber {
    inner: Arc<Inner>,
}

impl fmt::Debug for LiveProber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveProber")
            .field("targets", &self.inner.targets)
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}

/// What the probe tasks share; read-only but for the lazily opened ICMP sockets and the
/// sequence counter, neither of which is held across an await.
struct Inner {
    targets: BTreeMap<HostName, Target>,
    params: BTreeMap<CheckKind, CheckParams>,
    icmp_v4: OnceLock<Result<surge_ping::Client, String>>,
    icmp_v6: OnceLock<Result<surge_ping::Client, String>>,
    /// The identifier of our echo requests (raw sockets; datagram sockets get the kernel's).
    ident: u16,
    /// The sequence number of the next echo request: every ping in flight has its own.
    seq: AtomicU16,
    /// Where rep_threads learns the active master, to compare binary logs with, and the
    /// committed errant finding of a host.
    writer: OnceLock<(WriterSource, FindingSource)>,
    /// The latest errant-transactions message of each host found with them.
    errant: std::sync::Mutex<BTreeMap<HostName, String>>,
}

/// Names the active master as the committed state has it.
type WriterSource = Box<dyn Fn() -> Option<HostName> + Send + Sync>;
/// The errant-transactions message the committed state holds for a host, if any.
type FindingSource = Box<dyn Fn(&HostName) -> Option<String> + Send + Sync>;

/// Tells echo identifiers of probers in one process apart.
static PROBERS: AtomicU16 = AtomicU16::new(0);

impl LiveProber {
    /// A prober for these hosts, with these parameters for each of the four checks.
    pub fn new(
        targets: BTreeMap<HostName, Target>,
        params: BTreeMap<CheckKind, CheckParams>,
    ) -> Result<LiveProber, ProbeSetupError> {
        for check in CheckKind::ALL {
            let p = params
                .get(&check)
                .ok_or(ProbeSetupError::MissingParams(check))?;
            if check != CheckKind::Ping && p.timeout.is_zero() {
                return Err(ProbeSetupError::ZeroTimeout(check));
            }
        }
        if let Some((host, _)) = targets.iter().find(|(_, t)| t.user.is_empty()) {
            return Err(ProbeSetupError::EmptyUser(host.clone()));
        }
        // Truncation intended: any 16 bits of the pid do.
        let pid = std::process::id() as u16;
        let ident = pid ^ PROBERS.fetch_add(1, Ordering::Relaxed).rotate_left(8);
        Ok(LiveProber {
            inner: Arc::new(Inner {
                targets,
                params,
                icmp_v4: OnceLock::new(),
                icmp_v6: OnceLock::new(),
                ident,
                seq: AtomicU16::new(0),
                writer: OnceLock::new(),
                errant: std::sync::Mutex::default(),
            }),
        })
    }

    /// A prober for the `<host>` sections of `config` (`ip`, `mysql_port`, `monitor_user`,
    /// `monitor_password`) with the `timeout` and `max_backlog` of its `<check>` sections.
    pub fn from_config(config: &Config) -> anyhow::Result<LiveProber> {
        let mut targets = BTreeMap::new();
        for (name, host) in &config.hosts {
            let ip = host.ip.ok_or_else(|| anyhow!("<host {name}>: no ip"))?;
            let unset = |key: &str| {
                anyhow!(
                    "<host {name}>: {key} is not set (the mysql and replication checks log in \
                     with it)"
                )
            };
            let user = host
                .monitor_user
                .clone()
                .ok_or_else(|| unset("monitor_user"))?;
            let password = host
                .monitor_password
                .clone()
                .ok_or_else(|| unset("monitor_password"))?;
            targets.insert(
                HostName::new(name.as_str()),
                Target {
                    ip,
                    mysql_port: host.mysql_port,
                    user,
                    password,
                },
            );
        }
        let params = CheckName::ALL
            .into_iter()
            .map(|name| {
                let check = config.check(name);
                (
                    check_kind(name),
                    CheckParams {
                        timeout: check.timeout,
                        max_backlog: check.max_backlog,
                    },
                )
            })
            .collect();
        LiveProber::new(targets, params).context("setting up the checks")
    }

    /// From now on rep_threads also compares each host's binary log with the active master's
    /// (named by `writer`, read at every probe) and fails a host with errant transactions.
    /// While no writer can be compared with, a finding stands: this prober's own, or else the
    /// one the committed state holds (`committed`: after this replica restarted, or when the
    /// writer it was made against is gone). Only the first call counts.
    pub fn compare_with_writer(
        &self,
        writer: impl Fn() -> Option<HostName> + Send + Sync + 'static,
        committed: impl Fn(&HostName) -> Option<String> + Send + Sync + 'static,
    ) {
        let _ = self
            .inner
            .writer
            .set((Box::new(writer), Box::new(committed)));
    }

    /// MMM's `ping_ip` (the network check of `<monitor> ping_ips`): whether `ip` answers one
    /// ICMP echo within [`PING_TIMEOUT`]. Shares the ping check's socket.
    pub async fn ping_ip(&self, ip: IpAddr) -> bool {
        self.inner.ping(ip).await == "OK"
    }
}

/// The core's name for a config check.
fn check_kind(name: CheckName) -> CheckKind {
    match name {
        CheckName::Ping => CheckKind::Ping,
        CheckName::Mysql => CheckKind::Mysql,
        CheckName::RepThreads => CheckKind::RepThreads,
        CheckName::RepBacklog => CheckKind::RepBacklog,
    }
}

impl Prober for LiveProber {
    fn probe(&self, host: &HostName, check: CheckKind) -> impl Future<Output = Probe> + Send {
        let inner = Arc::clone(&self.inner);
        let host = host.clone();
        async move {
            let message = isolated(async move { inner.run(&host, check).await }).await;
            Probe::from_message(&message)
        }
    }
}

/// Aborts a task when dropped, so a cancelled probe does not run on.
struct AbortOnDrop(tokio::task::JoinHandle<String>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one probe as a task of its own; a panic becomes `UNKNOWN: Error occurred: …`.
async fn isolated<F>(probe: F) -> String
where
    F: Future<Output = String> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return "UNKNOWN: Error occurred: the probe ran outside a tokio runtime".to_string();
    };
    let mut task = AbortOnDrop(runtime.spawn(probe));
    match (&mut task.0).await {
        Ok(message) => message,
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            format!("UNKNOWN: Error occurred: {text}")
        }
        Err(e) => format!("UNKNOWN: Error occurred: {e}"),
    }
}

impl Inner {
    async fn run(&self, host: &HostName, check: CheckKind) -> String {
        let Some(target) = self.targets.get(host) else {
            return format!("ERROR: Invalid host '{host}'");
        };
        let params = self.params.get(&check).copied().unwrap_or_default();
        match check {
            CheckKind::Ping => self.ping(target.ip).await,
            CheckKind::Mysql => {
                let session = with_session(target, params.timeout, |mut conn| async move {
                    let result = conn.query_drop("SELECT NOW()").await;
                    (conn, result)
                });
                match session.await {
                    Some(session) => mysql_message(target, &session),
                    None => TIMEOUT_MESSAGE.to_string(),
                }
            }
            CheckKind::RepThreads => {
                // The comparison must end before the checker's own limit (timeout + 1 s).
                let deadline = tokio::time::Instant::now() + params.timeout + ALARM_MARGIN
                    - Duration::from_millis(200);
                let session = with_session(target, params.timeout, |mut conn| async move {
                    let statement = replica_status_statement(conn.server_version());
                    let mariadb = conn.server_version().0 >= 10;
                    let row = match conn.query_first::<Row, _>(statement).await {
                        Ok(row) => row.map(|row| row_cells(&row)),
                        Err(e) => return (conn, Err(e)),
                    };
                    // MariaDB only: MySQL's GTID sets are not compared (see the module doc).
                    let binlog_state = if mariadb {
                        match conn.query_first::<Option<String>, _>(BINLOG_STATE).await {
                            Ok(state) => Ok(Some(state.flatten().unwrap_or_default())),
                            Err(e) => Err(format!("cannot read @@gtid_binlog_state: {e}")),
                        }
                    } else {
                        Ok(None)
                    };
                    (conn, Ok((row, binlog_state)))
                });
                let Some(session) = session.await else {
                    return TIMEOUT_MESSAGE.to_string();
                };
                let (session, binlog_state) = match session {
                    Session::Done((row, state)) => (Session::Done(row), state),
                    Session::ConnectFailed(e) => (Session::ConnectFailed(e), Ok(None)),
                    Session::QueryFailed(e) => (Session::QueryFailed(e), Ok(None)),
                };
                let comparison = match binlog_state {
                    Ok(Some(state)) => self.compare_binlog(host, &state, deadline).await,
                    Ok(None) if !matches!(session, Session::Done(_)) => Comparison::Unreached,
                    Ok(None) => Comparison::Writer,
                    Err(why) => Comparison::NotCompared(why),
                };
                // A finding stands while the writer cannot be compared with: errant
                // transactions do not go away because it is unreachable.
                let mut found = self.errant.lock().unwrap_or_else(|p| p.into_inner());
                match comparison {
                    Comparison::Errant(message) => {
                        found.insert(host.clone(), message.clone());
                        message
                    }
                    Comparison::NotCompared(why) => {
                        let standing = found.get(host).cloned().or_else(|| {
                            self.writer.get().and_then(|(_, committed)| committed(host))
                        });
                        match standing {
                            Some(message) => {
                                tracing::debug!(%host, %why, "binary log not compared: the errant finding stands");
                                message
                            }
                            None => rep_threads_message(target, &session),
                        }
                    }
                    Comparison::Unreached => rep_threads_message(target, &session),
                    Comparison::Clean | Comparison::Writer => {
                        found.remove(host);
                        rep_threads_message(target, &session)
                    }
                }
            }
            CheckKind::RepBacklog => {
                let session = with_session(target, params.timeout, |mut conn| async move {
                    let statement = replica_status_statement(conn.server_version());
                    let result = conn.query_first::<Row, _>(statement).await;
                    (conn, result.map(|row| row.map(|row| row_cells(&row))))
                });
                match session.await {
                    Some(session) => rep_backlog_message(target, &session, params.max_backlog),
                    None => TIMEOUT_MESSAGE.to_string(),
                }
            }
        }
    }

    /// How `host`'s binary log, whose `@@gtid_binlog_state` was just read as `own`, compares
    /// with the active master's: read after it (so nothing the host got from it in between
    /// looks errant), only while that master is writable (a new writer is still catching up
    /// from its peers until then), all before `deadline`.
    async fn compare_binlog(
        &self,
        host: &HostName,
        own: &str,
        deadline: tokio::time::Instant,
    ) -> Comparison {
        let Some(writer) = self.writer.get().and_then(|(w, _)| w()) else {
            return Comparison::NotCompared("no active master".into());
        };
        if &writer == host {
            return Comparison::Writer;
        }
        let Some(target) = self.targets.get(&writer) else {
            return Comparison::NotCompared(format!("no address for {writer}"));
        };
        let params = self
            .params
            .get(&CheckKind::RepThreads)
            .copied()
            .unwrap_or_default();
        let session = with_session(target, params.timeout, |mut conn| async move {
            let result = conn
                .query_first::<(Option<String>, Option<i64>), _>(WRITER_BINLOG_STATE)
                .await;
            (conn, result)
        });
        let writer_state = match tokio::time::timeout_at(deadline, session).await {
            Ok(Some(Session::Done(Some((Some(state), Some(0)))))) => state,
            Ok(Some(Session::Done(Some((_, Some(_)))))) => {
                return Comparison::NotCompared(format!("{writer} is not writable yet"))
            }
            Ok(Some(Session::ConnectFailed(e) | Session::QueryFailed(e))) => {
                return Comparison::NotCompared(format!("{writer}: {}", e.text))
            }
            Err(_) | Ok(None) => {
                return Comparison::NotCompared(format!("{writer} did not answer in time"))
            }
            Ok(_) => return Comparison::NotCompared(format!("{writer} gave no binary log state")),
        };
        let parse = |text: &str| BinlogState::parse(text).map_err(|e| e.to_string());
        match (parse(own), parse(&writer_state)) {
            (Ok(own), Ok(theirs)) => {
                let errant = gtid::errant(&own, &theirs);
                if errant.is_empty() {
                    Comparison::Clean
                } else {
                    Comparison::Errant(gtid::errant_message(writer.as_str(), &errant))
                }
            }
            (Err(e), _) | (_, Err(e)) => Comparison::NotCompared(e),
        }
    }

    /// The ICMP client for `ip`'s family, opened on first use.
    fn icmp_client(&self, ip: IpAddr) -> Result<surge_ping::Client, String> {
        let (cell, kind) = match ip {
            IpAddr::V4(_) => (&self.icmp_v4, ICMP::V4),
            IpAddr::V6(_) => (&self.icmp_v6, ICMP::V6),
        };
        cell.get_or_init(|| {
            // A datagram ICMP socket where `ping_group_range` allows one, else a raw socket
            // (root or CAP_NET_RAW, like MMM's Net::Ping 'icmp').
            let config = surge_ping::Config::builder().kind(kind).build();
            surge_ping::Client::new(&config).map_err(|e| {
                let e = socket_error_text(&e);
                tracing::error!("{NO_ICMP_SOCKET}: {e}; every ping check fails until restarted");
                e
            })
        })
        .clone()
    }

    async fn ping(&self, ip: IpAddr) -> String {
        let client = match self.icmp_client(ip) {
            Ok(client) => client,
            Err(e) => return format!("ERROR: {NO_ICMP_SOCKET}: {e}"),
        };
        let mut pinger = client.pinger(ip, PingIdentifier(self.ident)).await;
        pinger.timeout(PING_TIMEOUT);
        let seq = PingSequence(self.seq.fetch_add(1, Ordering::Relaxed));
        // The pinger's own timeout bounds the wait for the reply; this one bounds the send.
        let answer = timeout(PING_TIMEOUT, pinger.ping(seq, PING_PAYLOAD)).await;
        ping_message(ip, answer.ok())
    }
}

/// The cause of a failure to open an ICMP socket, on one line (surge-ping wraps a denied
/// datagram socket in advice over several lines, ending with the original error).
fn socket_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once("Original error: ") {
        Some((_, original)) => original.trim().to_string(),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The ping check's message for what came back (`None`: nothing in time).
fn ping_message(ip: IpAddr, answer: Option<Result<(IcmpPacket, Duration), SurgeError>>) -> String {
    match answer {
        Some(Ok((packet, _))) if is_echo_reply(&packet) => "OK".to_string(),
        _ => format!("ERROR: Could not ping {ip}"),
    }
}

/// Whether `packet` is an echo reply, not an ICMP error quoting our request (destination
/// unreachable, time exceeded), which surge-ping also hands back.
fn is_echo_reply(packet: &IcmpPacket) -> bool {
    match packet {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == 0,
        IcmpPacket::V6(p) => p.get_icmpv6_type().0 == 129,
    }
}

/// A server or driver error as MMM's messages quote it (DBI's `errstr`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DbError {
    /// The server's error code, when the server sent one.
    code: Option<u16>,
    /// The text.
    text: String,
}

impl DbError {
    /// An error while connecting to `ip`.
    fn connecting(ip: IpAddr, e: &mysql_async::Error) -> DbError {
        match e {
            mysql_async::Error::Server(e) => DbError::server(e),
            mysql_async::Error::Io(e) => DbError::text(format!(
                "Can't connect to MySQL server on '{ip}' ({})",
                io_text(e)
            )),
            other => DbError::text(other.to_string()),
        }
    }

    /// An error while running a statement.
    fn querying(e: &mysql_async::Error) -> DbError {
        match e {
            mysql_async::Error::Server(e) => DbError::server(e),
            mysql_async::Error::Io(e) => DbError::text(format!(
                "Lost connection to MySQL server during query ({})",
                io_text(e)
            )),
            other => DbError::text(other.to_string()),
        }
    }

    fn server(e: &mysql_async::ServerError) -> DbError {
        DbError {
            code: Some(e.code),
            text: e.message.clone(),
        }
    }

    fn text(text: String) -> DbError {
        DbError { code: None, text }
    }
}

/// An IO error without mysql_async's "Input/output error:" prefix.
fn io_text(e: &mysql_async::IoError) -> String {
    match e {
        mysql_async::IoError::Io(e) => e.to_string(),
        #[allow(unreachable_patterns)]
        other => other.to_string(),
    }
}

/// What one session with a server came to, before it is worded as a check result.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Session<T> {
    /// No connection (including none within the connect timeout).
    ConnectFailed(DbError),
    /// Connected, but the statement failed.
    QueryFailed(DbError),
    /// The statement's answer.
    Done(T),
}

/// Connects to `target` (within `connect_timeout`), runs `work`, closes the connection in the
/// background; `None` when it all took longer than `connect_timeout` + [`ALARM_MARGIN`].
async fn with_session<T, F, Fut>(
    target: &Target,
    connect_timeout: Duration,
    work: F,
) -> Option<Session<T>>
where
    F: FnOnce(Conn) -> Fut,
    Fut: Future<Output = (Conn, Result<T, mysql_async::Error>)>,
{
    let session = async {
        let opts = OptsBuilder::default()
            .ip_or_hostname(target.ip.to_string())
            .tcp_port(target.mysql_port)
            .user(Some(target.user.as_str()))
            .pass(Some(target.password.expose()))
            // Probe over the network even on 127.0.0.1, and with nothing but the handshake
            // before the statement (the settings mysql_async would otherwise query are given).
            .prefer_socket(false)
            .stmt_cache_size(0)
            .max_allowed_packet(Some(MAX_ALLOWED_PACKET))
            .wait_timeout(Some(28_800));
        let conn = match timeout(connect_timeout, mmm_agent::mysql_tls::connect(opts)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Session::ConnectFailed(DbError::connecting(target.ip, &e)),
            Err(_) => {
                return Session::ConnectFailed(DbError::text(format!(
                    "Can't connect to MySQL server on '{}' (no answer within {})",
                    target.ip,
                    mmm_config::format_seconds(connect_timeout)
                )))
            }
        };
        let (conn, result) = work(conn).await;
        close(conn);
        match result {
            Ok(answer) => Session::Done(answer),
            Err(e) => Session::QueryFailed(DbError::querying(&e)),
        }
    };
    timeout(connect_timeout + ALARM_MARGIN, session).await.ok()
}

/// How a host's binary log compares with the active master's.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Comparison {
    /// Nothing the writer lacks.
    Clean,
    /// Errant transactions: rep_threads fails with this message.
    Errant(String),
    /// Not compared, and why: an earlier errant finding stands.
    NotCompared(String),
    /// Nothing to compare: the host is the active master, or a MySQL server.
    Writer,
    /// The host did not answer: rep_threads says so (MMM's UNKNOWN), a finding is kept.
    Unreached,
}

/// Says goodbye to the server without making the probe wait for it.
fn close(conn: Conn) {
    tokio::spawn(async move {
        // Dropped after a second: mysql_async then closes it on its own.
        let _ = timeout(ALARM_MARGIN, conn.disconnect()).await;
    });
}

/// MMM's connect error, naming the target as `host = <ip>:<port>, user = <user>`.
fn connect_error(target: &Target, e: &DbError) -> String {
    format!(
        "Connect error (host = {}:{}, user = {})! {}",
        target.ip, target.mysql_port, target.user, e.text
    )
}

/// The mysql check's message.
fn mysql_message(target: &Target, session: &Session<()>) -> String {
    match session {
        Session::ConnectFailed(e) if e.code == Some(ER_CON_COUNT_ERROR) => {
            format!("UNKNOWN: Too many connections! {}", e.text)
        }
        Session::ConnectFailed(e) => format!("ERROR: {}", connect_error(target, e)),
        Session::QueryFailed(e) => format!("ERROR: SQL Query Error: {}", e.text),
        Session::Done(()) => "OK".to_string(),
    }
}

/// The part of the replication checks' messages they share; `Ok` carries the status row.
fn replication_status(
    target: &Target,
    session: &Session<Option<Cells>>,
) -> Result<ReplicaStatus, String> {
    let user = &target.user;
    match session {
        Session::ConnectFailed(e) => Err(format!("UNKNOWN: {}", connect_error(target, e))),
        Session::QueryFailed(e) if e.code == Some(ER_SPECIFIC_ACCESS_DENIED_ERROR) => Err(format!(
            "ERROR: The monitor user '{user}' doesn't have the required REPLICATION CLIENT \
                 privilege! {}",
            e.text
        )),
        Session::QueryFailed(e) => {
            Err(format!("UNKNOWN: Unknown state. Execute error: {}", e.text))
        }
        Session::Done(None) => Err("ERROR: Replication is not set up".to_string()),
        Session::Done(Some(cells)) => ReplicaStatus::from_cells(cells).map_err(|missing| {
            format!("UNKNOWN: Unknown state. The replica status has no {missing} column")
        }),
    }
}

/// The rep_threads check's message.
fn rep_threads_message(target: &Target, session: &Session<Option<Cells>>) -> String {
    match replication_status(target, session) {
        Err(message) => message,
        Ok(status) if status.io_running == "Yes" && status.sql_running == "Yes" => "OK".to_string(),
        Ok(_) => "ERROR: Replication is broken".to_string(),
    }
}

/// The rep_backlog check's message.
fn rep_backlog_message(
    target: &Target,
    session: &Session<Option<Cells>>,
    max_backlog: Duration,
) -> String {
    match replication_status(target, session) {
        Err(message) => message,
        Ok(status) => backlog_message(status.seconds_behind.as_deref(), max_backlog),
    }
}

/// rep_backlog's verdict on a `Seconds_Behind_Master` value (`None`: NULL).
pub fn backlog_message(seconds_behind: Option<&str>, max_backlog: Duration) -> String {
    let Some(text) = seconds_behind else {
        return "ERROR: Backlog is null (replication is not running)".to_string();
    };
    match text.trim().parse::<u64>() {
        Ok(lag) if Duration::from_secs(lag) > max_backlog => {
            "ERROR: Backlog is too big".to_string()
        }
        Ok(_) => "OK".to_string(),
        Err(_) => format!("UNKNOWN: Unknown state. Seconds_Behind_Master is '{text}'"),
    }
}

/// The statement that shows the replica status: `SHOW REPLICA STATUS` from MySQL 8.0.22 on
/// (8.4 dropped `SHOW SLAVE STATUS`), `SHOW SLAVE STATUS` before and on MariaDB (whose
/// versions, 10 and up, mysql_async reports without the `5.5.5-` prefix).
pub fn replica_status_statement(version: (u16, u16, u16)) -> &'static str {
    if version >= (8, 0, 22) && version.0 < 10 {
        "SHOW REPLICA STATUS"
    } else {
        "SHOW SLAVE STATUS"
    }
}

/// A status row as column names and text values (`None`: NULL).
type Cells = Vec<(String, Option<String>)>;

/// A row as [`Cells`].
fn row_cells(row: &Row) -> Cells {
    row.columns_ref()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = match row.as_ref(i) {
                None | Some(Value::NULL) => None,
                Some(Value::Bytes(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
                Some(Value::Int(n)) => Some(n.to_string()),
                Some(Value::UInt(n)) => Some(n.to_string()),
                Some(other) => Some(other.as_sql(true)),
            };
            (column.name_str().into_owned(), value)
        })
        .collect()
}

/// What the replication checks read from the replica status row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaStatus {
    /// `Slave_IO_Running` / `Replica_IO_Running` (`Yes`, `No`, `Connecting`; NULL as empty).
    pub io_running: String,
    /// `Slave_SQL_Running` / `Replica_SQL_Running`.
    pub sql_running: String,
    /// `Seconds_Behind_Master` / `Seconds_Behind_Source`, `None` when NULL.
    pub seconds_behind: Option<String>,
}

impl ReplicaStatus {
    /// Reads the columns by name, in MariaDB's and MySQL 5.x's spelling (`Slave_…`,
    /// `…_Master`) or MySQL 8's (`Replica_…`, `…_Source`). Fails with the name of a missing
    /// column the checks need.
    pub fn from_cells(cells: &[(String, Option<String>)]) -> Result<ReplicaStatus, &'static str> {
        let find = |names: &[&str]| {
            cells
                .iter()
                .find(|(name, _)| names.contains(&name.as_str()))
                .map(|(_, value)| value.clone())
        };
        Ok(ReplicaStatus {
            io_running: find(&["Slave_IO_Running", "Replica_IO_Running"])
                .ok_or("Slave_IO_Running")?
                .unwrap_or_default(),
            sql_running: find(&["Slave_SQL_Running", "Replica_SQL_Running"])
                .ok_or("Slave_SQL_Running")?
                .unwrap_or_default(),
            seconds_behind: find(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
                .ok_or("Seconds_Behind_Master")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn target() -> Target {
        Target {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            mysql_port: 3306,
            user: "mmm_monitor".to_string(),
            password: Secret::new("pw"),
        }
    }

    fn server_error(code: u16, text: &str) -> DbError {
        DbError {
            code: Some(code),
            text: text.to_string(),
        }
    }

    fn mariadb_row(io: &str, sql: &str, lag: Option<&str>, sql_error: &str) -> Cells {
        [
            ("Slave_IO_State", Some("Waiting for master to send event")),
            ("Slave_IO_Running", Some(io)),
            ("Slave_SQL_Running", Some(sql)),
            ("Last_IO_Error", Some("")),
            ("Last_SQL_Error", Some(sql_error)),
            ("Seconds_Behind_Master", lag),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.map(str::to_string)))
        .collect()
    }

    /// The message classes MMM's checker relies on: `UNKNOWN` for too many connections, so no
    /// state changes; `ERROR` with MMM's exact wording for the rest.
    #[test]
    fn mysql_messages_are_mmms() {
        let t = target();
        assert_eq!(mysql_message(&t, &Session::Done(())), "OK");
        assert_eq!(
            mysql_message(
                &t,
                &Session::ConnectFailed(server_error(1040, "Too many connections"))
            ),
            "UNKNOWN: Too many connections! Too many connections"
        );
        assert_eq!(
            mysql_message(
                &t,
                &Session::ConnectFailed(server_error(
                    1045,
                    "Access denied for user 'mmm_monitor'@'10.0.0.9' (using password: YES)"
                ))
            ),
            "ERROR: Connect error (host = 10.0.0.1:3306, user = mmm_monitor)! Access denied for \
             user 'mmm_monitor'@'10.0.0.9' (using password: YES)"
        );
        assert_eq!(
            mysql_message(
                &t,
                &Session::QueryFailed(DbError::text("Lost connection".into()))
            ),
            "ERROR: SQL Query Error: Lost connection"
        );
    }

    /// The replication checks share MMM's errors: UNKNOWN on a connect error (the mysql check
    /// judges reachability), ERROR on a missing privilege or a server that is no replica.
    #[test]
    fn replication_errors_are_mmms() {
        let t = target();
        let refused = Session::ConnectFailed(DbError::text(
            "Can't connect to MySQL server on '10.0.0.1' (Connection refused (os error 111))"
                .into(),
        ));
        let denied = Session::QueryFailed(server_error(
            1227,
            "Access denied; you need (at least one of) the SUPER, SLAVE MONITOR privilege(s) \
             for this operation",
        ));
        let other = Session::QueryFailed(server_error(1064, "syntax"));
        let none = Session::Done(None);
        for message in [
            rep_threads_message(&t, &refused),
            rep_backlog_message(&t, &refused, Duration::from_secs(60)),
        ] {
            assert_eq!(
                message,
                "UNKNOWN: Connect error (host = 10.0.0.1:3306, user = mmm_monitor)! Can't connect \
                 to MySQL server on '10.0.0.1' (Connection refused (os error 111))"
            );
        }
        for message in [
            rep_threads_message(&t, &denied),
            rep_backlog_message(&t, &denied, Duration::from_secs(60)),
        ] {
            assert_eq!(
                message,
                "ERROR: The monitor user 'mmm_monitor' doesn't have the required REPLICATION \
                 CLIENT privilege! Access denied; you need (at least one of) the SUPER, SLAVE \
                 MONITOR privilege(s) for this operation"
            );
        }
        assert_eq!(
            rep_threads_message(&t, &other),
            "UNKNOWN: Unknown state. Execute error: syntax"
        );
        assert_eq!(
            rep_threads_message(&t, &none),
            "ERROR: Replication is not set up"
        );
        assert_eq!(
            rep_backlog_message(&t, &none, Duration::from_secs(60)),
            "ERROR: Replication is not set up"
        );
    }

    /// rep_threads passes only with both threads `Yes`; a stopped, failed or reconnecting
    /// thread is MMM's "Replication is broken".
    #[test]
    fn rep_threads_needs_both_threads_running() {
        let t = target();
        let threads = |io: &str, sql: &str, error: &str| {
            rep_threads_message(
                &t,
                &Session::Done(Some(mariadb_row(io, sql, Some("0"), error))),
            )
        };
        assert_eq!(threads("Yes", "Yes", ""), "OK");
        assert_eq!(threads("No", "No", ""), "ERROR: Replication is broken");
        assert_eq!(
            threads("Yes", "No", "Error 'Table 't' already exists'"),
            "ERROR: Replication is broken"
        );
        assert_eq!(
            threads("Connecting", "Yes", ""),
            "ERROR: Replication is broken"
        );
    }

    /// rep_backlog: NULL fails (the deliberate difference from MMM), 0 and up to max_backlog
    /// pass as plain `OK`, more is too big.
    #[test]
    fn backlog_verdicts() {
        let max = Duration::from_secs(60);
        assert_eq!(
            backlog_message(None, max),
            "ERROR: Backlog is null (replication is not running)"
        );
        assert_eq!(backlog_message(Some("0"), max), "OK");
        assert_eq!(backlog_message(Some("60"), max), "OK");
        assert_eq!(
            backlog_message(Some("61"), max),
            "ERROR: Backlog is too big"
        );
        assert_eq!(
            backlog_message(Some("soon"), max),
            "UNKNOWN: Unknown state. Seconds_Behind_Master is 'soon'"
        );
        let t = target();
        assert_eq!(
            rep_backlog_message(
                &t,
                &Session::Done(Some(mariadb_row("Yes", "Yes", Some("3600"), ""))),
                max
            ),
            "ERROR: Backlog is too big"
        );
        assert_eq!(
            rep_backlog_message(
                &t,
                &Session::Done(Some(mariadb_row("No", "No", None, ""))),
                max
            ),
            "ERROR: Backlog is null (replication is not running)"
        );
    }

    /// MySQL 8 only: unit-tested. `SHOW REPLICA STATUS` spells the columns `Replica_…` and
    /// `…_Source`; they map to the same fields as MariaDB's `Slave_…` and `…_Master`.
    #[test]
    fn mysql_8_column_names_map_like_mariadbs() {
        let cells: Cells = [
            ("Replica_IO_State", Some("Waiting for source to send event")),
            ("Replica_IO_Running", Some("Yes")),
            ("Replica_SQL_Running", Some("No")),
            ("Last_IO_Error", Some("")),
            ("Last_SQL_Error", Some("Coordinator stopped")),
            ("Seconds_Behind_Source", None),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.map(str::to_string)))
        .collect();
        assert_eq!(
            ReplicaStatus::from_cells(&cells),
            Ok(ReplicaStatus {
                io_running: "Yes".into(),
                sql_running: "No".into(),
                seconds_behind: None,
            })
        );
        let t = target();
        assert_eq!(
            rep_threads_message(&t, &Session::Done(Some(cells.clone()))),
            "ERROR: Replication is broken"
        );
        assert_eq!(
            rep_backlog_message(&t, &Session::Done(Some(cells)), Duration::from_secs(60)),
            "ERROR: Backlog is null (replication is not running)"
        );
    }

    #[test]
    fn mariadb_column_names_map_and_a_missing_column_is_unknown() {
        assert_eq!(
            ReplicaStatus::from_cells(&mariadb_row("Yes", "Yes", Some("7"), "")),
            Ok(ReplicaStatus {
                io_running: "Yes".into(),
                sql_running: "Yes".into(),
                seconds_behind: Some("7".into()),
            })
        );
        let mut cells = mariadb_row("Yes", "Yes", Some("7"), "");
        cells.retain(|(name, _)| name != "Slave_SQL_Running");
        assert_eq!(ReplicaStatus::from_cells(&cells), Err("Slave_SQL_Running"));
        assert_eq!(
            rep_threads_message(&target(), &Session::Done(Some(cells))),
            "UNKNOWN: Unknown state. The replica status has no Slave_SQL_Running column"
        );
    }

    /// MySQL 8 only (the MySQL branches): unit-tested.
    #[test]
    fn the_status_statement_follows_the_server_version() {
        assert_eq!(replica_status_statement((10, 11, 6)), "SHOW SLAVE STATUS");
        assert_eq!(replica_status_statement((11, 4, 2)), "SHOW SLAVE STATUS");
        assert_eq!(replica_status_statement((5, 7, 44)), "SHOW SLAVE STATUS");
        assert_eq!(replica_status_statement((8, 0, 21)), "SHOW SLAVE STATUS");
        assert_eq!(replica_status_statement((8, 0, 22)), "SHOW REPLICA STATUS");
        assert_eq!(replica_status_statement((8, 4, 0)), "SHOW REPLICA STATUS");
        assert_eq!(replica_status_statement((9, 1, 0)), "SHOW REPLICA STATUS");
    }

    /// Every message classifies into the probe kind its prefix says.
    #[test]
    fn messages_classify_by_prefix() {
        let t = target();
        assert!(matches!(
            Probe::from_message(&mysql_message(&t, &Session::Done(()))),
            Probe::Ok(_)
        ));
        assert!(matches!(
            Probe::from_message(&mysql_message(
                &t,
                &Session::ConnectFailed(server_error(1040, "Too many connections"))
            )),
            Probe::Unknown(_)
        ));
        assert!(matches!(
            Probe::from_message(TIMEOUT_MESSAGE),
            Probe::Error(_)
        ));
        assert!(matches!(
            Probe::from_message(&ping_message(t.ip, None)),
            Probe::Error(_)
        ));
        assert_eq!(ping_message(t.ip, None), "ERROR: Could not ping 10.0.0.1");
    }

    #[test]
    fn icmp_socket_errors_are_one_line() {
        let wrapped = std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "Permission denied creating ICMP socket. On Linux, you may need to:\n\
             1. Enable non-privileged ICMP: `sysctl ...`\n\
             2. Run with sudo or set CAP_NET_RAW\n\
             Original error: Permission denied (os error 13)",
        );
        assert_eq!(
            socket_error_text(&wrapped),
            "Permission denied (os error 13)"
        );
        let plain = std::io::Error::from_raw_os_error(1);
        assert_eq!(
            socket_error_text(&plain),
            "Operation not permitted (os error 1)"
        );
    }

    fn targets() -> BTreeMap<HostName, Target> {
        [(HostName::new("db1"), target())].into_iter().collect()
    }

    #[test]
    fn setup_refuses_missing_params_zero_timeouts_and_empty_users() {
        let mut params = CheckParams::default().for_every_check();
        params.remove(&CheckKind::RepBacklog);
        assert_eq!(
            LiveProber::new(targets(), params).err(),
            Some(ProbeSetupError::MissingParams(CheckKind::RepBacklog))
        );
        let mut params = CheckParams::default().for_every_check();
        params.insert(
            CheckKind::Mysql,
            CheckParams {
                timeout: Duration::ZERO,
                max_backlog: Duration::from_secs(60),
            },
        );
        let err = LiveProber::new(targets(), params).err();
        assert_eq!(err, Some(ProbeSetupError::ZeroTimeout(CheckKind::Mysql)));
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("<check mysql>: timeout is zero, so the check could never pass")
        );
        let mut targets = targets();
        if let Some(t) = targets.get_mut("db1") {
            t.user.clear();
        }
        assert_eq!(
            LiveProber::new(targets, CheckParams::default().for_every_check()).err(),
            Some(ProbeSetupError::EmptyUser(HostName::new("db1")))
        );
    }

    fn load(text: &str) -> Config {
        let mut files = mmm_config::MemoryFiles::new();
        files.insert("/etc/mmm_mon.conf", text);
        mmm_config::Loader::new()
            .load_from(
                &files,
                std::path::Path::new("/etc/mmm_mon.conf"),
                mmm_config::Program::Monitor,
            )
            .unwrap_or_else(|e| panic!("config does not load: {e:?}"))
    }

    const CONFIG: &str = "active_master_role writer
<monitor>
    ip 127.0.0.1
    pid_path /tmp/mon.pid
    bin_path /usr/lib/mysql-mmm
    status_path /tmp/mon.status
    ping_ips 127.0.0.1
</monitor>
<check mysql>
    timeout 3
</check>
<check rep_backlog>
    max_backlog 5
</check>
<host default>
    monitor_user mmm_monitor
    monitor_password pw
</host>
<host db1>
    ip 10.0.0.1
    mode master
    peer db2
</host>
<host db2>
    ip 10.0.0.2
    mysql_port 3307
    mode master
    peer db1
</host>
<role writer>
    hosts db1, db2
    ips 10.0.1.1
    mode exclusive
</role>
";

    #[test]
    fn from_config_takes_hosts_and_check_parameters() {
        let prober = LiveProber::from_config(&load(CONFIG)).expect("prober");
        let db2 = prober.inner.targets.get("db2").expect("db2");
        assert_eq!(
            (db2.ip.to_string(), db2.mysql_port, db2.user.as_str()),
            ("10.0.0.2".to_string(), 3307, "mmm_monitor")
        );
        assert_eq!(db2.password.expose(), "pw");
        assert_eq!(
            prober
                .inner
                .params
                .get(&CheckKind::Mysql)
                .map(|p| p.timeout),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            prober
                .inner
                .params
                .get(&CheckKind::RepBacklog)
                .map(|p| (p.timeout, p.max_backlog)),
            Some((Duration::from_secs(2), Duration::from_secs(5)))
        );
    }

    /// The config crate already refuses a monitor config without these keys; a `Config` built
    /// another way still gets an error naming the host and the key.
    #[test]
    fn from_config_names_the_host_and_key_a_monitor_account_is_missing_from() {
        let mut config = load(CONFIG);
        if let Some(db2) = config.hosts.get_mut("db2") {
            db2.monitor_user = None;
        }
        let err = LiveProber::from_config(&config).map(|_| ());
        assert_eq!(
            err.map_err(|e| format!("{e:#}")),
            Err(
                "<host db2>: monitor_user is not set (the mysql and replication checks log in \
                 with it)"
                    .to_string()
            )
        );
        let mut config = load(CONFIG);
        if let Some(db1) = config.hosts.get_mut("db1") {
            db1.monitor_password = None;
        }
        let err = LiveProber::from_config(&config).map(|_| ());
        assert_eq!(
            err.map_err(|e| format!("{e:#}")),
            Err(
                "<host db1>: monitor_password is not set (the mysql and replication checks \
                 log in with it)"
                    .to_string()
            )
        );
    }

    #[tokio::test]
    async fn an_unknown_host_is_mmms_invalid_host() {
        let prober =
            LiveProber::new(targets(), CheckParams::default().for_every_check()).expect("prober");
        for check in CheckKind::ALL {
            assert_eq!(
                prober.probe(&HostName::new("db9"), check).await,
                Probe::Error("ERROR: Invalid host 'db9'".to_string())
            );
        }
    }

    /// A panic inside a probe (a driver bug) is MMM's `UNKNOWN: Error occurred`, not an unwind
    /// into the checker.
    #[tokio::test]
    async fn a_panicking_probe_is_unknown() {
        let message = isolated(async { panic!("driver bug") }).await;
        assert_eq!(message, "UNKNOWN: Error occurred: driver bug");
    }

    /// A server that accepts TCP but never greets (a frozen mysqld, a full accept queue) is a
    /// connect error after the check's `timeout`, as with MMM's `mysql_connect_timeout`.
    #[tokio::test]
    async fn a_silent_server_is_a_connect_error_after_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let t = Target {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mysql_port: port,
            ..target()
        };
        let started = tokio::time::Instant::now();
        let session = with_session(&t, Duration::from_millis(300), |conn| async move {
            (conn, Ok(()))
        })
        .await;
        let elapsed = started.elapsed();
        hold.abort();
        let message = session.map(|s| mysql_message(&t, &s));
        assert_eq!(
            message.as_deref(),
            Some(
                format!(
                    "ERROR: Connect error (host = 127.0.0.1:{port}, user = mmm_monitor)! Can't \
                     connect to MySQL server on '127.0.0.1' (no answer within 0.3 s)"
                )
                .as_str()
            )
        );
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
    }
}
