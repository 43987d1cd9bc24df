//! The local MySQL/MariaDB server, driven with mysql_async: the real [`Mysql`] implementation
//! the daemon uses ([`Server`]).
//!
//! - **Connections.** A tiny pool (at most [`MAX_IDLE`] idle connections); an idle connection is
//!   pinged before reuse, and a connection that failed, timed out or was cancelled mid-statement
//!   is dropped, so the next operation reconnects. Every network wait is bounded: connecting by
//!   [`ServerOptions::connect_timeout`], each statement by [`ServerOptions::query_timeout`]
//!   (waits such as `MASTER_GTID_WAIT` by their own limit plus that), and the server's own
//!   `lock_wait_timeout` is set to the statement limit so a statement the agent gave up on does
//!   not stay queued for a lock server-side. Every connection is opened by
//!   [`crate::mysql_tls::connect`]: plain, or TLS when the server refuses a plain login.
//! - **Errors.** Connect failures, resets and statements without an answer are
//!   [`MysqlError::Unreachable`]; server errors are [`MysqlError::Statement`] with the statement
//!   text. Passwords never appear in errors or logs: `CHANGE MASTER` is shown with
//!   `MASTER_PASSWORD='<redacted>'`, and a server message that quotes the password (a syntax
//!   error "near ...") has it replaced too. Statements are logged at `debug`, redacted.
//! - **Flavours.** MariaDB or MySQL is told from `@@version` ([`Flavor`]); every statement whose
//!   syntax differs is built by a pure function with unit tests. MariaDB is tested against real
//!   servers; the **MySQL path is unit-tested only** (no MySQL server on the test machines).
//! - **Fencing.** [`Server::set_read_only`]`(true)` does not wait behind running writes: if
//!   `SET GLOBAL read_only=1` has not returned after [`READ_ONLY_BLOCKED_AFTER`] it kills the
//!   client sessions holding it up (the demotion kills them anyway) until it goes through.
//!   [`Server::kill_client_sessions`] follows MMM's `kill_sql`, except that statements that
//!   write are killed in the first pass like everything else (MMM spared them until the last
//!   retry, which delayed the fence).
//! - **Encrypted replication.** Re-pointing a replica (and the catch-up connection) asks the
//!   new source first, logging in with the replication account: when that login needed TLS or
//!   the source has `require_secure_transport` on, `CHANGE MASTER` says `MASTER_SSL=1`;
//!   otherwise the replica's setting is left as it is ([`MasterSsl`]). A MariaDB 10.11 replica
//!   left with `MASTER_SSL=1` still replicates from a source without TLS (unencrypted).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use mmm_config::Secret;
use mmm_core::gtid::{self, GtidPos};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, info, warn};

use crate::ops::{
    BinlogPos, Killed, Mysql, MysqlError, ReplicaStatus, RepointMethod, Repointed, ServerStatus,
    Source,
};
use crate::pidfile::{PidFile, PidState};

/// Default [`ServerOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default [`ServerOptions::query_timeout`].
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`ServerOptions::catchup_timeout`] (the config's `catchup_timeout` default).
pub const DEFAULT_CATCHUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
pub const MAX_IDLE: usize = 2;
/// How long `SET GLOBAL read_only=1` may wait behind running statements before
/// [`Server::set_read_only`] kills the client sessions that hold it up.
pub const READ_ONLY_BLOCKED_AFTER: Duration = Duration::from_millis(200);
/// How often the replication threads are polled after `START SLAVE` (and a stopped SQL thread
/// during a file/position catch-up).
const POLL: Duration = Duration::from_millis(50);
/// MariaDB's `ER_NO_SUCH_THREAD`: the session to kill is already gone.
const ER_NO_SUCH_THREAD: u16 = 1094;
/// `ER_CONNECTION_KILLED` (MariaDB) and `ER_SERVER_SHUTDOWN`: this connection is finished.
const CONNECTION_FINISHED: [u16; 2] = [1927, 1053];

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix socket.
    Socket(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How to reach the local server and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where it listens.
    pub endpoint: Endpoint,
    /// The agent's account (`agent_user`).
    pub user: String,
    /// Its password (`agent_password`).
    pub password: Secret,
    /// Limit for opening a connection (TCP connect, handshake, login).
    pub connect_timeout: Duration,
    /// Limit for one statement. Waits with a limit of their own get that limit plus this.
    pub query_timeout: Duration,
    /// How long [`Server::repoint`] waits for the relay log to be applied before it changes
    /// the source (the config's `catchup_timeout`).
    pub catchup_timeout: Duration,
    /// The server's pid file (`mysql_pidfile`), a second sign of its death for the watch.
    pub pidfile: Option<PathBuf>,
}

impl ServerOptions {
    /// TCP to `addr`, with the default limits.
    pub fn tcp(addr: SocketAddr, user: impl Into<String>, password: Secret) -> Self {
        Self::tcp_host(addr.ip().to_string(), addr.port(), user, password)
    }

    /// TCP to `host:port` (a name or an address), with the default limits.
    pub fn tcp_host(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: Secret,
    ) -> Self {
        Self::with_endpoint(
            Endpoint::Tcp {
                host: host.into(),
                port,
            },
            user.into(),
            password,
        )
    }

    /// A Unix socket, with the default limits.
    pub fn socket(path: impl Into<PathBuf>, user: impl Into<String>, password: Secret) -> Self {
        Self::with_endpoint(Endpoint::Socket(path.into()), user.into(), password)
    }

    fn with_endpoint(endpoint: Endpoint, user: String, password: Secret) -> Self {
        ServerOptions {
            endpoint,
            user,
            password,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            catchup_timeout: DEFAULT_CATCHUP_TIMEOUT,
            pidfile: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Flavour and version
// ---------------------------------------------------------------------------------------------

/// MariaDB or MySQL, and which version: decides the syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// MariaDB rather than MySQL.
    pub mariadb: bool,
    /// major, minor, patch.
    pub version: (u32, u32, u32),
}

impl Flavor {
    /// Parses `@@version`: `10.11.19-MariaDB-0+deb12u1-log`, `8.0.36`, `5.7.44-log`,
    /// `5.5.5-10.11.2-MariaDB` (the old replication-compatible prefix is skipped).
    pub fn parse(version: &str) -> Option<Flavor> {
        let mariadb = version.contains("MariaDB");
        let text = match version.strip_prefix("5.5.5-") {
            Some(rest) if mariadb => rest,
            _ => version,
        };
        let numeric = text
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?;
        let mut parts = numeric.split('.').map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().unwrap_or(Ok(0)).ok()?;
        let patch = parts.next().unwrap_or(Ok(0)).ok()?;
        Some(Flavor {
            mariadb,
            version: (major, minor, patch),
        })
    }

    fn mysql_at_least(self, version: (u32, u32, u32)) -> bool {
        !self.mariadb && self.version >= version
    }

    /// `SHOW REPLICA STATUS` on MySQL 8.0.22+, else `SHOW SLAVE STATUS`.
    /// MySQL path: unit-tested only.
    pub fn show_replica_status(self) -> &'static str {
        if self.mysql_at_least((8, 0, 22)) {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }

    /// `START REPLICA` on MySQL 8.0.22+, else `START SLAVE`. MySQL path: unit-tested only.
    pub fn start_replica(self) -> &'static str {
        if self.mysql_at_least((8, 0, 22)) {
            "START REPLICA"
        } else {
            "START SLAVE"
        }
    }

    /// `STOP REPLICA` on MySQL 8.0.22+, else `STOP SLAVE`. MySQL path: unit-tested only.
    pub fn stop_replica(self) -> &'static str {
        if self.mysql_at_least((8, 0, 22)) {
            "STOP REPLICA"
        } else {
            "STOP SLAVE"
        }
    }

    /// `SHOW BINARY LOG STATUS` on MySQL 8.2+ (8.4 removed `SHOW MASTER STATUS`), else
    /// `SHOW MASTER STATUS`. MySQL path: unit-tested only.
    pub fn show_binlog_status(self) -> &'static str {
        if self.mysql_at_least((8, 2, 0)) {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        }
    }

    /// The executed GTID set: `gtid_current_pos` (MariaDB) or `gtid_executed` (MySQL).
    pub fn gtid_executed_variable(self) -> &'static str {
        if self.mariadb {
            "gtid_current_pos"
        } else {
            "gtid_executed"
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------------

/// A statement, and how it may be shown (without any password).
#[derive(Clone)]
pub struct Sql {
    text: String,
    shown: String,
    secret: Option<Secret>,
}

impl Sql {
    /// A statement without secrets.
    pub fn plain(text: impl Into<String>) -> Sql {
        let text = text.into();
        Sql {
            shown: text.clone(),
            text,
            secret: None,
        }
    }

    /// What is sent to the server.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is logged and put into errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Replaces the secret in a message (a server error may quote the statement).
    fn redact(&self, message: &str) -> String {
        match &self.secret {
            Some(s) if !s.expose().is_empty() => message.replace(s.expose(), "<redacted>"),
            _ => message.to_string(),
        }
    }
}

impl fmt::Debug for Sql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A string literal, escaped as `mysql_real_escape_string` does. The agent's sessions run with
/// an empty `sql_mode`, so backslash escapes always apply.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// How a replica positions itself on its new source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Positioning {
    /// MariaDB `MASTER_USE_GTID=slave_pos`.
    SlavePos,
    /// MariaDB 10.10+ `MASTER_USE_GTID=slave_pos, MASTER_DEMOTE_TO_SLAVE=1`: this server has
    /// transactions of its own (a former master) that `gtid_slave_pos` does not include.
    SlavePosDemote,
    /// MariaDB before 10.10, same situation: `MASTER_USE_GTID=current_pos`.
    CurrentPos,
    /// MySQL `MASTER_AUTO_POSITION=1` / `SOURCE_AUTO_POSITION=1`. MySQL path: unit-tested only.
    AutoPosition,
    /// At this coordinate of the new source, GTID positioning off.
    File(BinlogPos),
}

/// Where `CHANGE MASTER TO` points a replica.
#[derive(Debug, Clone)]
pub struct ChangeSource<'a> {
    /// Host.
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// Replication account.
    pub user: &'a str,
    /// Its password.
    pub password: &'a Secret,
    /// How to position.
    pub positioning: Positioning,
    /// A named replication connection (MariaDB multi-source `CHANGE MASTER 'name' TO`, MySQL
    /// `FOR CHANNEL 'name'`) instead of the default one.
    pub connection: Option<&'a str>,
    /// TLS on the replication connection.
    pub ssl: MasterSsl,
}

/// What `CHANGE MASTER` says about TLS on the replication connection (`MASTER_SSL`, MySQL
/// 8.0.23+ `SOURCE_SSL`). The server's certificate is not verified either way
/// (`MASTER_SSL_VERIFY_SERVER_CERT` is left alone: off unless an operator set it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterSsl {
    /// Nothing: the replica keeps its current setting (what MMM did).
    Keep,
    /// `MASTER_SSL=1`: the source refuses unencrypted replication connections.
    On,
}

impl MasterSsl {
    /// What to append to a MariaDB (or MySQL before 8.0.23) `CHANGE MASTER TO`: nothing or
    /// `, MASTER_SSL=1`.
    pub fn clause(self) -> &'static str {
        match self {
            MasterSsl::Keep => "",
            MasterSsl::On => ", MASTER_SSL=1",
        }
    }
}

/// Decides [`MasterSsl`] from what the source said: whether a login with the replication
/// account needed TLS, and its `require_secure_transport` (absent on servers that lack it).
pub fn master_ssl(login_needed_tls: bool, require_secure_transport: Option<&str>) -> MasterSsl {
    let on = |v: &str| matches!(v.trim().to_ascii_uppercase().as_str(), "ON" | "1" | "YES");
    if login_needed_tls || require_secure_transport.is_some_and(on) {
        MasterSsl::On
    } else {
        MasterSsl::Keep
    }
}

/// `CHANGE MASTER TO ...` (MariaDB, MySQL before 8.0.23) or `CHANGE REPLICATION SOURCE TO ...`
/// (MySQL 8.0.23+); shown with the password redacted. MySQL path: unit-tested only.
pub fn change_source_sql(flavor: Flavor, to: &ChangeSource<'_>) -> Sql {
    let source_syntax = flavor.mysql_at_least((8, 0, 23));
    let (head, k) = if source_syntax {
        ("CHANGE REPLICATION SOURCE", "SOURCE")
    } else {
        ("CHANGE MASTER", "MASTER")
    };
    let named = match to.connection {
        Some(name) if flavor.mariadb => format!(" {}", quote(name)),
        _ => String::new(),
    };
    let build = |password: &str| {
        let mut s = format!(
            "{head}{named} TO {k}_HOST={}, {k}_PORT={}, {k}_USER={}, {k}_PASSWORD={password}",
            quote(to.host),
            to.port,
            quote(to.user),
        );
        if to.ssl == MasterSsl::On {
            s.push_str(&format!(", {k}_SSL=1"));
        }
        match &to.positioning {
            Positioning::SlavePos => s.push_str(", MASTER_USE_GTID=slave_pos"),
            Positioning::SlavePosDemote => {
                s.push_str(", MASTER_USE_GTID=slave_pos, MASTER_DEMOTE_TO_SLAVE=1")
            }
            Positioning::CurrentPos => s.push_str(", MASTER_USE_GTID=current_pos"),
            Positioning::AutoPosition => s.push_str(&format!(", {k}_AUTO_POSITION=1")),
            Positioning::File(pos) => {
                s.push_str(&format!(
                    ", {k}_LOG_FILE={}, {k}_LOG_POS={}",
                    quote(&pos.file),
                    pos.pos
                ));
                if flavor.mariadb {
                    s.push_str(", MASTER_USE_GTID=no");
                } else if flavor.version >= (5, 6, 0) {
                    s.push_str(&format!(", {k}_AUTO_POSITION=0"));
                }
            }
        }
        if let (Some(name), false) = (to.connection, flavor.mariadb) {
            s.push_str(&format!(" FOR CHANNEL {}", quote(name)));
        }
        s
    };
    Sql {
        text: build(&quote(to.password.expose())),
        shown: build("'<redacted>'"),
        secret: Some(to.password.clone()),
    }
}

/// `CHANGE MASTER TO MASTER_SSL=1` alone (MySQL 8.0.23+: `CHANGE REPLICATION SOURCE TO
/// SOURCE_SSL=1`), which keeps the replica's source, position and relay log; `None` for
/// [`MasterSsl::Keep`]. MySQL path: unit-tested only.
pub fn ssl_change_sql(flavor: Flavor, ssl: MasterSsl) -> Option<String> {
    match ssl {
        MasterSsl::Keep => None,
        MasterSsl::On if flavor.mysql_at_least((8, 0, 23)) => {
            Some("CHANGE REPLICATION SOURCE TO SOURCE_SSL=1".to_string())
        }
        MasterSsl::On => Some("CHANGE MASTER TO MASTER_SSL=1".to_string()),
    }
}

/// The replication connection a new writer fetches a more advanced peer's transactions
/// through; it exists only while it does.
pub const CATCHUP_CONNECTION: &str = "mmm_catchup";

/// `START SLAVE 'name'`, `STOP SLAVE 'name'`, `RESET SLAVE 'name' ALL` and
/// `SHOW SLAVE 'name' STATUS` (MariaDB multi-source; MySQL's `FOR CHANNEL` forms, unit-tested
/// only), in that order.
pub fn named_connection_sql(flavor: Flavor, name: &str) -> [String; 4] {
    let name = quote(name);
    if flavor.mariadb {
        [
            format!("START SLAVE {name}"),
            format!("STOP SLAVE {name}"),
            format!("RESET SLAVE {name} ALL"),
            format!("SHOW SLAVE {name} STATUS"),
        ]
    } else {
        [
            format!("{} FOR CHANNEL {name}", flavor.start_replica()),
            format!("{} FOR CHANNEL {name}", flavor.stop_replica()),
            format!(
                "RESET {} ALL FOR CHANNEL {name}",
                if flavor.mysql_at_least((8, 0, 22)) {
                    "REPLICA"
                } else {
                    "SLAVE"
                }
            ),
            format!("{} FOR CHANNEL {name}", flavor.show_replica_status()),
        ]
    }
}

/// Waits until the GTIDs are applied: MariaDB `MASTER_GTID_WAIT(gtid, secs)` (0, or -1 on
/// timeout), MySQL `WAIT_FOR_EXECUTED_GTID_SET(set, secs)` (0, or 1 on timeout; whole seconds,
/// rounded up). MySQL path: unit-tested only.
pub fn gtid_wait_sql(flavor: Flavor, gtid: &str, limit: Duration) -> Sql {
    if flavor.mariadb {
        Sql::plain(format!(
            "SELECT MASTER_GTID_WAIT({}, {:.3})",
            quote(gtid),
            limit.as_secs_f64()
        ))
    } else {
        Sql::plain(format!(
            "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {})",
            quote(gtid),
            whole_seconds(limit)
        ))
    }
}

/// Waits until the SQL thread reached a coordinate: `MASTER_POS_WAIT(file, pos, secs)`, or
/// `SOURCE_POS_WAIT` on MySQL 8.0.26+ (8.4 removed `MASTER_POS_WAIT`). The limit is whole
/// seconds, rounded up (0 would mean no limit). MySQL path: unit-tested only.
pub fn pos_wait_sql(flavor: Flavor, pos: &BinlogPos, limit: Duration) -> Sql {
    let function = if flavor.mysql_at_least((8, 0, 26)) {
        "SOURCE_POS_WAIT"
    } else {
        "MASTER_POS_WAIT"
    };
    Sql::plain(format!(
        "SELECT {function}({}, {}, {})",
        quote(&pos.file),
        pos.pos,
        whole_seconds(limit)
    ))
}

/// Seconds, rounded up, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// `read_only` on: `read_only=1` then `super_read_only=1`; off: `super_read_only=0` then
/// `read_only=0`. `super_read_only` only where the server has it (MySQL 5.7.8+).
pub fn read_only_sql(has_super_read_only: bool, on: bool) -> Vec<Sql> {
    let v = u8::from(on);
    let read_only = Sql::plain(format!("SET GLOBAL read_only={v}"));
    if !has_super_read_only {
        return vec![read_only];
    }
    let super_read_only = Sql::plain(format!("SET GLOBAL super_read_only={v}"));
    if on {
        vec![read_only, super_read_only]
    } else {
        vec![super_read_only, read_only]
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing answers
// ---------------------------------------------------------------------------------------------

/// One row, by column name; NULL is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record(Vec<(String, Option<String>)>);

impl Record {
    /// A record from `(column, value)` pairs.
    pub fn new<I, K>(pairs: I) -> Record
    where
        I: IntoIterator<Item = (K, Option<String>)>,
        K: Into<String>,
    {
        Record(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn from_row(row: &Row) -> Record {
        Record(
            row.columns_ref()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name_str().into_owned(), row.as_ref(i).and_then(text_of)))
                .collect(),
        )
    }

    /// The first of `names` present (case-insensitive): `Some(value)`, or `None` when no such
    /// column exists.
    fn column(&self, names: &[&str]) -> Option<&Option<String>> {
        names.iter().find_map(|n| {
            self.0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v)
        })
    }

    fn text(&self, query: &str, names: &[&str]) -> Result<String, MysqlError> {
        match self.column(names) {
            Some(Some(v)) => Ok(v.clone()),
            Some(None) => Err(unexpected(query, format!("column {} is NULL", names[0]))),
            None => Err(unexpected(
                query,
                format!("no column {}", names.join(" or ")),
            )),
        }
    }

    fn optional_text(&self, names: &[&str]) -> Option<String> {
        self.column(names)
            .and_then(|v| v.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn number(&self, query: &str, names: &[&str]) -> Result<u64, MysqlError> {
        let v = self.text(query, names)?;
        v.trim()
            .parse()
            .map_err(|_| unexpected(query, format!("column {} is '{v}', not a number", names[0])))
    }

    fn yes(&self, query: &str, names: &[&str]) -> Result<bool, MysqlError> {
        Ok(self.text(query, names)?.eq_ignore_ascii_case("yes"))
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn unexpected(query: &str, reason: impl Into<String>) -> MysqlError {
    MysqlError::Unexpected {
        query: query.to_string(),
        reason: reason.into(),
    }
}

/// Parses one `SHOW SLAVE STATUS` / `SHOW REPLICA STATUS` row, by column name (MariaDB's and
/// MySQL's old and new names). A missing or malformed column is [`MysqlError::Unexpected`]
/// naming it; NULL `Seconds_Behind_Master` is `None`.
pub fn parse_replica_status(query: &str, r: &Record) -> Result<ReplicaStatus, MysqlError> {
    let port = r.number(query, &["Master_Port", "Source_Port"])?;
    let master_port = u16::try_from(port)
        .map_err(|_| unexpected(query, format!("Master_Port {port} is not a port")))?;
    let seconds_behind = match r.column(&["Seconds_Behind_Master", "Seconds_Behind_Source"]) {
        None => {
            return Err(unexpected(query, "no column Seconds_Behind_Master"));
        }
        Some(None) => None,
        Some(Some(v)) if v.trim().is_empty() || v.eq_ignore_ascii_case("null") => None,
        Some(Some(v)) => Some(v.trim().parse().map_err(|_| {
            unexpected(
                query,
                format!("Seconds_Behind_Master is '{v}', not a number"),
            )
        })?),
    };
    let using_gtid = match (
        r.optional_text(&["Using_Gtid"]),
        r.optional_text(&["Auto_Position"]),
    ) {
        (Some(g), _) => !g.eq_ignore_ascii_case("no"),
        (None, Some(a)) => a == "1",
        (None, None) => false,
    };
    Ok(ReplicaStatus {
        master_host: r.text(query, &["Master_Host", "Source_Host"])?,
        master_port,
        io_running: r.yes(query, &["Slave_IO_Running", "Replica_IO_Running"])?,
        sql_running: r.yes(query, &["Slave_SQL_Running", "Replica_SQL_Running"])?,
        seconds_behind,
        received: BinlogPos {
            file: r.text(query, &["Master_Log_File", "Source_Log_File"])?,
            pos: r.number(query, &["Read_Master_Log_Pos", "Read_Source_Log_Pos"])?,
        },
        applied: BinlogPos {
            file: r.text(query, &["Relay_Master_Log_File", "Relay_Source_Log_File"])?,
            pos: r.number(query, &["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"])?,
        },
        using_gtid,
        gtid_received: r.optional_text(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"]),
        last_io_error: r.optional_text(&["Last_IO_Error"]),
        last_sql_error: r.optional_text(&["Last_SQL_Error"]),
    })
}

/// `ON`/`OFF`/`1`/`0` as a server prints a boolean variable.
pub fn parse_bool(query: &str, name: &str, value: &str) -> Result<bool, MysqlError> {
    match value.trim().to_ascii_uppercase().as_str() {
        "ON" | "1" | "YES" | "TRUE" => Ok(true),
        "OFF" | "0" | "NO" | "FALSE" => Ok(false),
        _ => Err(unexpected(query, format!("{name} is '{value}'"))),
    }
}

/// Orders binlog file names of one server: by the numeric extension when both have one.
fn binlog_file_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let ext = |s: &str| s.rsplit_once('.').and_then(|(_, e)| e.parse::<u64>().ok());
    match (ext(a), ext(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// The SQL thread has applied everything up to `target` (a coordinate of the same source).
pub fn applied_up_to(applied: &BinlogPos, target: &BinlogPos) -> bool {
    match binlog_file_cmp(&applied.file, &target.file) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => applied.pos >= target.pos,
        std::cmp::Ordering::Less => false,
    }
}

/// A MariaDB GTID position (`0-1-100,1-2-7`) as domain → sequence number; `None` when it does
/// not parse.
pub fn parse_gtid_pos(pos: &str) -> Option<HashMap<u32, u64>> {
    let mut out = HashMap::new();
    for gtid in pos.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        let mut parts = gtid.split('-');
        let domain = parts.next()?.parse().ok()?;
        let _server: u32 = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        out.insert(domain, seq);
    }
    Some(out)
}

/// MariaDB: does `gtid_slave_pos` include everything in `gtid_binlog_pos`, i.e. has this
/// server no transactions of its own beyond what it replicated? Unparsable is "no".
pub fn slave_pos_covers_binlog(slave_pos: &str, binlog_pos: &str) -> bool {
    let (Some(slave), Some(binlog)) = (parse_gtid_pos(slave_pos), parse_gtid_pos(binlog_pos))
    else {
        return false;
    };
    binlog
        .iter()
        .all(|(domain, seq)| slave.get(domain).is_some_and(|s| s >= seq))
}

/// How a MariaDB replica re-points by GTID, from its `gtid_slave_pos` and `gtid_binlog_pos`:
/// `slave_pos` when that includes all of the binlog; otherwise the server has transactions of
/// its own (it was a master), which `slave_pos` would ignore: `MASTER_DEMOTE_TO_SLAVE=1` on
/// 10.10+ (merges them into `gtid_slave_pos`), `current_pos` before. If the new master lacks
/// them, the IO thread fails (strict mode) and the re-pointing reports it.
pub fn mariadb_gtid_positioning(flavor: Flavor, slave_pos: &str, binlog_pos: &str) -> Positioning {
    if slave_pos_covers_binlog(slave_pos, binlog_pos) {
        Positioning::SlavePos
    } else if flavor.version >= (10, 10, 0) {
        Positioning::SlavePosDemote
    } else {
        Positioning::CurrentPos
    }
}

/// One `SHOW PROCESSLIST` row, as far as the killer cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// `Id`.
    pub id: u64,
    /// `User`.
    pub user: String,
    /// `Command`.
    pub command: String,
}

/// Commands of threads the killer never touches: replication (a source's dump threads, a
/// replica's IO/SQL/worker threads), the event scheduler and other daemons, and threads already
/// being killed.
const SPARED_COMMANDS: [&str; 8] = [
    "Binlog Dump",
    "Binlog Dump GTID",
    "Slave_IO",
    "Slave_SQL",
    "Slave_worker",
    "Daemon",
    "Killed",
    "Register Slave",
];

/// Users of threads the killer never touches (replica threads show as `system user`).
const SPARED_USERS: [&str; 3] = ["system user", "event_scheduler", "DELAYED"];

/// Whether the killer spares a thread for what it is (not whose it is).
fn spared(p: &Process) -> bool {
    SPARED_USERS.iter().any(|u| p.user.eq_ignore_ascii_case(u))
        || SPARED_COMMANDS
            .iter()
            .any(|c| p.command.eq_ignore_ascii_case(c))
}

/// MMM's `kill_sql` choice, minus its sparing of writes: every client session but the agent's
/// own (`own`), replication and system threads. Idle (`Sleep`) sessions are killed too: an open
/// transaction could otherwise commit after the demotion.
pub fn sessions_to_kill(processes: &[Process], own: &HashSet<u64>) -> Vec<u64> {
    processes
        .iter()
        .filter(|p| !own.contains(&p.id) && !spared(p))
        .map(|p| p.id)
        .collect()
}

/// The sessions holding up `SET GLOBAL read_only=1`: client sessions running something (not
/// `Sleep`). Used by [`Server::set_read_only`].
pub fn sessions_running_statements(processes: &[Process], own: &HashSet<u64>) -> Vec<u64> {
    processes
        .iter()
        .filter(|p| !own.contains(&p.id) && !spared(p))
        .filter(|p| !p.command.eq_ignore_ascii_case("Sleep"))
        .map(|p| p.id)
        .collect()
}

fn parse_processlist(query: &str, rows: &[Record]) -> Result<Vec<Process>, MysqlError> {
    rows.iter()
        .map(|r| {
            Ok(Process {
                id: r.number(query, &["Id"])?,
                user: r.optional_text(&["User"]).unwrap_or_default(),
                command: r.optional_text(&["Command"]).unwrap_or_default(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

/// A failed statement: the agent-facing error, and the server's error code when there is one.
struct RunError {
    code: Option<u16>,
    error: MysqlError,
}

impl From<RunError> for MysqlError {
    fn from(e: RunError) -> Self {
        e.error
    }
}

impl From<MysqlError> for RunError {
    fn from(error: MysqlError) -> Self {
        RunError { code: None, error }
    }
}

/// How to open connections to one server.
struct Connector {
    opts: Opts,
    addr: String,
    connect_timeout: Duration,
    query_timeout: Duration,
}

impl Connector {
    fn new(
        endpoint: &Endpoint,
        user: &str,
        password: &Secret,
        connect_timeout: Duration,
        query_timeout: Duration,
    ) -> Connector {
        // The session: no backslash surprises for `quote`, and lock waits no longer than the
        // agent waits for an answer.
        let init = vec![
            "SET SESSION sql_mode=''".to_string(),
            format!(
                "SET SESSION lock_wait_timeout={}",
                whole_seconds(query_timeout)
            ),
        ];
        let mut builder = OptsBuilder::default()
            .user(Some(user))
            .pass(Some(password.expose()))
            .prefer_socket(false)
            .stmt_cache_size(0)
            .init(init);
        builder = match endpoint {
            Endpoint::Tcp { host, port } => builder.ip_or_hostname(host.clone()).tcp_port(*port),
            Endpoint::Socket(path) => builder.socket(Some(path.to_string_lossy().into_owned())),
        };
        Connector {
            opts: builder.into(),
            addr: endpoint.to_string(),
            connect_timeout,
            query_timeout,
        }
    }

    fn unreachable(&self, reason: impl Into<String>) -> MysqlError {
        MysqlError::Unreachable {
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }

    async fn connect(&self) -> Result<Conn, MysqlError> {
        match timeout(
            self.connect_timeout,
            crate::mysql_tls::connect(self.opts.clone()),
        )
        .await
        {
            Ok(Ok(conn)) => {
                debug!(addr = %self.addr, id = conn.id(), "connected to MySQL");
                Ok(conn)
            }
            Ok(Err(e)) => Err(self.unreachable(e.to_string())),
            Err(_) => {
                Err(self.unreachable(format!("no connection within {:?}", self.connect_timeout)))
            }
        }
    }
}

/// The idle connections, and the ids of every connection this agent holds (the killer spares
/// them).
#[derive(Default)]
struct Pool {
    idle: Vec<Conn>,
    own: HashSet<u64>,
}

fn lock(pool: &StdMutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection in use. Dropped healthy, it goes back to the pool (if it came from one);
/// dropped after a connection-level failure, a timeout or mid-statement, it is closed.
struct Lease<'a> {
    connector: &'a Connector,
    pool: Option<&'a StdMutex<Pool>>,
    conn: Option<Conn>,
    id: u64,
    healthy: bool,
}

impl<'a> Lease<'a> {
    /// A connection of its own (not pooled) to `connector`'s server.
    async fn open(connector: &'a Connector) -> Result<Lease<'a>, MysqlError> {
        let conn = connector.connect().await?;
        Ok(Lease {
            connector,
            pool: None,
            id: u64::from(conn.id()),
            conn: Some(conn),
            healthy: true,
        })
    }

    /// Closes a connection of its own politely; best effort, bounded (the answers are in
    /// hand).
    async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = timeout(self.connector.query_timeout, conn.disconnect()).await;
        }
    }
}

impl Lease<'_> {
    /// Runs one statement, at most `limit`.
    async fn run_for(&mut self, sql: &Sql, limit: Duration) -> Result<Vec<Record>, RunError> {
        let addr = &self.connector.addr;
        let Some(conn) = self.conn.as_mut() else {
            return Err(self
                .connector
                .unreachable("connection already closed")
                .into());
        };
        debug!(%addr, statement = %sql.shown, "executing");
        self.healthy = false;
        match timeout(limit, conn.query::<Row, _>(sql.text.as_str())).await {
            Ok(Ok(rows)) => {
                self.healthy = true;
                Ok(rows.iter().map(Record::from_row).collect())
            }
            Ok(Err(mysql_async::Error::Server(e))) => {
                self.healthy = !CONNECTION_FINISHED.contains(&e.code);
                debug!(%addr, statement = %sql.shown, code = e.code, "statement failed");
                Err(RunError {
                    code: Some(e.code),
                    error: MysqlError::Statement {
                        statement: sql.shown.clone(),
                        reason: sql.redact(&e.to_string()),
                    },
                })
            }
            Ok(Err(e)) => Err(self
                .connector
                .unreachable(format!("{}: {}", sql.shown, sql.redact(&e.to_string())))
                .into()),
            Err(_) => Err(self
                .connector
                .unreachable(format!("no answer to {} within {limit:?}", sql.shown))
                .into()),
        }
    }

    /// Runs one statement within the query timeout.
    async fn run(&mut self, sql: &Sql) -> Result<Vec<Record>, RunError> {
        self.run_for(sql, self.connector.query_timeout).await
    }

    async fn query(&mut self, text: &str) -> Result<Vec<Record>, MysqlError> {
        Ok(self.run(&Sql::plain(text)).await?)
    }

    async fn exec(&mut self, sql: &Sql) -> Result<(), MysqlError> {
        self.run(sql).await?;
        Ok(())
    }

    /// Global variables by name; absent ones are absent from the map (names lower-case).
    /// MariaDB's `@@gtid_binlog_state`, `None` when empty or on MySQL.
    async fn gtid_binlog_state(&mut self) -> Result<Option<String>, MysqlError> {
        if !self.flavor().await?.mariadb {
            return Ok(None);
        }
        let vars = self.variables(&["gtid_binlog_state"]).await?;
        Ok(vars
            .get("gtid_binlog_state")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()))
    }

    async fn variables(&mut self, names: &[&str]) -> Result<HashMap<String, String>, MysqlError> {
        let list = names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",");
        let text = format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ({list})");
        let rows = self.query(&text).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.text(&text, &["Variable_name"])?.to_ascii_lowercase(),
                    r.column(&["Value"]).cloned().flatten().unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// MariaDB's `gtid_slave_pos` and `gtid_binlog_pos`, as the server prints them (empty when
    /// unset): what [`mariadb_gtid_positioning`] chooses from.
    async fn gtid_slave_and_binlog_pos(&mut self) -> Result<(String, String), MysqlError> {
        let vars = self
            .variables(&["gtid_slave_pos", "gtid_binlog_pos"])
            .await?;
        let get = |name: &str| vars.get(name).cloned().unwrap_or_default();
        Ok((get("gtid_slave_pos"), get("gtid_binlog_pos")))
    }

    /// MariaDB's executed GTIDs: `gtid_binlog_pos` merged with `gtid_slave_pos`.
    async fn mariadb_executed(&mut self) -> Result<GtidPos, MysqlError> {
        let text = "SELECT @@gtid_binlog_pos AS b, @@gtid_slave_pos AS s";
        let rows = self.query(text).await?;
        let row = rows.first().ok_or_else(|| unexpected(text, "no row"))?;
        let parse = |column: &str| {
            let value = row.column(&[column]).cloned().flatten().unwrap_or_default();
            GtidPos::parse(&value).map_err(|e| unexpected(text, e.to_string()))
        };
        Ok(parse("b")?.merge(&parse("s")?))
    }

    async fn flavor(&mut self) -> Result<Flavor, MysqlError> {
        let text = "SELECT @@version AS version";
        let rows = self.query(text).await?;
        let version = rows
            .first()
            .ok_or_else(|| unexpected(text, "no row"))?
            .text(text, &["version"])?;
        Flavor::parse(&version).ok_or_else(|| unexpected(text, format!("version '{version}'")))
    }

    async fn replica_status(
        &mut self,
        flavor: Flavor,
    ) -> Result<Option<ReplicaStatus>, MysqlError> {
        let text = flavor.show_replica_status();
        let rows = self.query(text).await?;
        match rows.first() {
            None => Ok(None),
            Some(r) => {
                let status = parse_replica_status(text, r)?;
                // `RESET SLAVE` without ALL leaves a row with an empty host.
                Ok((!status.master_host.is_empty()).then_some(status))
            }
        }
    }

    async fn binlog_status(&mut self, flavor: Flavor) -> Result<Option<BinlogPos>, MysqlError> {
        let text = flavor.show_binlog_status();
        let rows = self.query(text).await?;
        rows.first()
            .map(|r| {
                Ok(BinlogPos {
                    file: r.text(text, &["File"])?,
                    pos: r.number(text, &["Position"])?,
                })
            })
            .transpose()
    }

    async fn processes(&mut self) -> Result<Vec<Process>, MysqlError> {
        let text = "SHOW PROCESSLIST";
        let rows = self.query(text).await?;
        parse_processlist(text, &rows)
    }

    /// `KILL id`: `Ok(true)` when killed, `Ok(false)` when it was already gone.
    async fn kill(&mut self, id: u64) -> Result<bool, MysqlError> {
        match self.run(&Sql::plain(format!("KILL {id}"))).await {
            Ok(_) => Ok(true),
            Err(RunError {
                code: Some(ER_NO_SUCH_THREAD),
                ..
            }) => Ok(false),
            Err(e) => Err(e.error),
        }
    }

    /// A single-value `SELECT`: `None` for NULL.
    async fn select_value(
        &mut self,
        sql: &Sql,
        limit: Duration,
    ) -> Result<Option<i64>, MysqlError> {
        let rows = self.run_for(sql, limit).await?;
        let row = rows
            .first()
            .ok_or_else(|| unexpected(&sql.shown, "no row"))?;
        match row.0.first() {
            None => Err(unexpected(&sql.shown, "no column")),
            Some((_, None)) => Ok(None),
            Some((_, Some(v))) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| unexpected(&sql.shown, format!("'{v}' is not a number"))),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let Some(pool) = self.pool else {
            return;
        };
        let mut pool = lock(pool);
        if self.healthy && pool.idle.len() < MAX_IDLE {
            pool.idle.push(conn);
        } else {
            pool.own.remove(&self.id);
            drop(pool);
            debug!(addr = %self.connector.addr, id = self.id, "closing connection");
            drop(conn);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// The local MySQL/MariaDB server (see the module documentation).
pub struct Server {
    connector: Connector,
    pool: StdMutex<Pool>,
    catchup_timeout: Duration,
    pidfile: Option<PidFile>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.connector.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server handle; nothing is connected until the first operation.
    pub fn new(options: ServerOptions) -> Server {
        Server {
            connector: Connector::new(
                &options.endpoint,
                &options.user,
                &options.password,
                options.connect_timeout,
                options.query_timeout,
            ),
            pool: StdMutex::new(Pool::default()),
            catchup_timeout: options.catchup_timeout,
            pidfile: options.pidfile.map(PidFile::new),
        }
    }

    /// What the pid file says now, when one is watched.
    pub fn pidfile_state(&self) -> Option<PidState> {
        self.pidfile.as_ref().map(PidFile::check)
    }

    /// host:port or the socket path.
    pub fn address(&self) -> &str {
        &self.connector.addr
    }

    /// The ids of the connections this handle holds now (the killer spares them).
    pub fn own_connection_ids(&self) -> HashSet<u64> {
        lock(&self.pool).own.clone()
    }

    /// An idle connection that still answers a ping, or a new one.
    async fn lease(&self) -> Result<Lease<'_>, MysqlError> {
        loop {
            let idle = lock(&self.pool).idle.pop();
            let Some(mut conn) = idle else { break };
            let id = u64::from(conn.id());
            // A ping is one tiny round trip: bounded like a connect.
            match timeout(self.connector.connect_timeout, conn.ping()).await {
                Ok(Ok(())) => return Ok(self.lease_of(conn)),
                Ok(Err(e)) => {
                    debug!(addr = %self.connector.addr, id, error = %e, "stale connection")
                }
                Err(_) => debug!(addr = %self.connector.addr, id, "ping timed out"),
            }
            lock(&self.pool).own.remove(&id);
        }
        let conn = self.connector.connect().await?;
        lock(&self.pool).own.insert(u64::from(conn.id()));
        Ok(self.lease_of(conn))
    }

    fn lease_of(&self, conn: Conn) -> Lease<'_> {
        Lease {
            connector: &self.connector,
            pool: Some(&self.pool),
            id: u64::from(conn.id()),
            conn: Some(conn),
            healthy: true,
        }
    }

    /// One pass of the killer over `choose`'s victims; returns how many were killed. Kills
    /// every victim even when one `KILL` fails, then reports the first failure.
    async fn kill_pass(
        &self,
        lease: &mut Lease<'_>,
        choose: fn(&[Process], &HashSet<u64>) -> Vec<u64>,
    ) -> Result<u32, MysqlError> {
        let processes = lease.processes().await?;
        let victims = choose(&processes, &self.own_connection_ids());
        let mut killed = 0;
        let mut failed = None;
        for id in victims {
            match lease.kill(id).await {
                Ok(true) => killed += 1,
                Ok(false) => {}
                Err(e @ MysqlError::Unreachable { .. }) => return Err(e),
                Err(e) => {
                    warn!(addr = %self.connector.addr, id, error = %e, "could not kill a session");
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(killed),
        }
    }

    /// `SET GLOBAL read_only=1` that kills the client sessions holding it up when it has not
    /// gone through after [`READ_ONLY_BLOCKED_AFTER`].
    async fn set_read_only_unblocked(
        &self,
        lease: &mut Lease<'_>,
        sql: &Sql,
    ) -> Result<(), MysqlError> {
        let set = lease.exec(sql);
        tokio::pin!(set);
        loop {
            tokio::select! {
                result = &mut set => return result,
                () = sleep(READ_ONLY_BLOCKED_AFTER) => {}
            }
            warn!(addr = %self.connector.addr, "read_only=1 is waiting for running statements: killing them");
            let kill = async {
                let mut killer = self.lease().await?;
                self.kill_pass(&mut killer, sessions_running_statements)
                    .await
            };
            tokio::select! {
                result = &mut set => return result,
                killed = kill => match killed {
                    Ok(n) => info!(addr = %self.connector.addr, killed = n, "killed sessions holding up read_only=1"),
                    Err(e) => warn!(addr = %self.connector.addr, error = %e, "could not kill the sessions holding up read_only=1"),
                },
            }
        }
    }

    /// The catch-up of [`Mysql::wait_relay_applied`] on a given connection.
    async fn wait_applied(
        &self,
        lease: &mut Lease<'_>,
        flavor: Flavor,
        limit: Duration,
    ) -> Result<(), MysqlError> {
        let Some(status) = lease.replica_status(flavor).await? else {
            return Ok(());
        };
        check_sql_thread(flavor, &status)?;
        match status.gtid_received.as_deref() {
            Some(gtid) if status.using_gtid => {
                self.wait_gtid(lease, flavor, gtid, status.sql_running, limit)
                    .await
            }
            _ => self.wait_position(lease, flavor, status, limit).await,
        }
    }

    /// Waits for the received GTIDs to be applied. MariaDB's `MASTER_GTID_WAIT` also waits
    /// while the SQL thread is stopped, so a thread restarted in time still makes it.
    async fn wait_gtid(
        &self,
        lease: &mut Lease<'_>,
        flavor: Flavor,
        gtid: &str,
        sql_running: bool,
        limit: Duration,
    ) -> Result<(), MysqlError> {
        let sql = gtid_wait_sql(flavor, gtid, limit);
        let answer = lease
            .select_value(&sql, limit + self.connector.query_timeout)
            .await?;
        let timed_out = if flavor.mariadb { -1 } else { 1 };
        match answer {
            Some(0) => Ok(()),
            Some(n) if n == timed_out => {
                // Say why, if the SQL thread is the reason (it may have failed meanwhile).
                let stopped = match lease.replica_status(flavor).await {
                    Ok(Some(s)) => {
                        check_sql_thread(flavor, &s)?;
                        !s.sql_running
                    }
                    _ => !sql_running,
                };
                Err(MysqlError::Timeout {
                    what: format!(
                        "applying the relay log up to GTID {gtid}{}",
                        if stopped {
                            " (the SQL thread is not running)"
                        } else {
                            ""
                        }
                    ),
                    timeout: limit,
                })
            }
            other => Err(unexpected(
                sql.shown(),
                format!("answered {other:?}; the server could not wait for GTID {gtid}"),
            )),
        }
    }

    /// Waits for `Exec_Master_Log_Pos` to reach the `Read_Master_Log_Pos` seen at the start.
    /// `MASTER_POS_WAIT` answers NULL while the SQL thread is stopped, so a stopped (not failed)
    /// SQL thread is polled until it runs again or the time is up.
    async fn wait_position(
        &self,
        lease: &mut Lease<'_>,
        flavor: Flavor,
        mut status: ReplicaStatus,
        limit: Duration,
    ) -> Result<(), MysqlError> {
        let target = status.received.clone();
        if target.file.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        let what = |stopped: bool| MysqlError::Timeout {
            what: format!(
                "applying the relay log up to {}:{}{}",
                target.file,
                target.pos,
                if stopped {
                    " (the SQL thread is not running)"
                } else {
                    ""
                }
            ),
            timeout: limit,
        };
        loop {
            if applied_up_to(&status.applied, &target) {
                return Ok(());
            }
            check_sql_thread(flavor, &status)?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(what(!status.sql_running));
            }
            if status.sql_running {
                let sql = pos_wait_sql(flavor, &target, left);
                let waited = whole_seconds(left);
                let answer = lease
                    .select_value(
                        &sql,
                        Duration::from_secs(waited) + self.connector.query_timeout,
                    )
                    .await?;
                match answer {
                    Some(n) if n >= 0 => return Ok(()),
                    Some(_) => return Err(what(false)),
                    // NULL: the SQL thread stopped meanwhile; look again.
                    None => {}
                }
            } else {
                sleep(left.min(POLL * 2)).await;
            }
            status = lease.replica_status(flavor).await?.ok_or_else(|| {
                unexpected(
                    flavor.show_replica_status(),
                    "replication was reset during the catch-up",
                )
            })?;
        }
    }

    /// After `START SLAVE`: both threads running, or the reason they are not.
    async fn verify_running(
        &self,
        lease: &mut Lease<'_>,
        flavor: Flavor,
        source: &Source,
    ) -> Result<(), MysqlError> {
        let window = self.connector.connect_timeout + Duration::from_secs(1);
        let deadline = Instant::now() + window;
        let start = flavor.start_replica();
        loop {
            let status = lease.replica_status(flavor).await?.ok_or_else(|| {
                unexpected(
                    flavor.show_replica_status(),
                    "no replication after CHANGE MASTER",
                )
            })?;
            if status.io_running && status.sql_running {
                return Ok(());
            }
            let failure = if let Some(stopped) = stopped_thread(&status, source) {
                Some(stopped)
            } else if Instant::now() >= deadline {
                Some(format!(
                    "replication from {} ({}:{}) not running after {window:?} (IO thread running: {}, SQL thread running: {})",
                    source.name, source.host, source.port, status.io_running, status.sql_running
                ))
            } else {
                None
            };
            if let Some(reason) = failure {
                return Err(MysqlError::Statement {
                    statement: start.to_string(),
                    reason: redact_all(&reason, source),
                });
            }
            sleep(POLL).await;
        }
    }

    /// How to connect to another host's server: with the agent's account there.
    fn peer_connector(&self, source: &Source) -> Connector {
        Connector::new(
            &Endpoint::Tcp {
                host: source.host.clone(),
                port: source.port,
            },
            &source.agent_user,
            &source.agent_password,
            self.connector.connect_timeout,
            self.connector.query_timeout,
        )
    }

    /// MariaDB: ends the replica's IO thread with `KILL` just before `STOP SLAVE`. On a
    /// semi-sync replica, `STOP SLAVE` first connects to the source to end its dump thread
    /// there, and waits for that connection (2 s on MariaDB 10.11) when the source is cut off,
    /// which is when a failover re-points the replica; after `KILL` the thread ends at once
    /// (measured: `STOP SLAVE` 2.0 s, `KILL` and `STOP SLAVE` 10 ms). Only when there is
    /// exactly one `Slave_IO` thread: another would be a named connection's, left alone.
    /// Failures are logged and `STOP SLAVE` does the work.
    async fn end_io_thread(&self, lease: &mut Lease<'_>) {
        let io: Vec<u64> = match lease.processes().await {
            Ok(list) => list
                .into_iter()
                .filter(|p| p.command == "Slave_IO")
                .map(|p| p.id)
                .collect(),
            Err(e) => {
                debug!(addr = %self.connector.addr, error = %e, "processlist not read: STOP SLAVE alone");
                return;
            }
        };
        if let [id] = io[..] {
            match lease.kill(id).await {
                Ok(_) => {
                    debug!(addr = %self.connector.addr, id, "replication IO thread killed before STOP SLAVE")
                }
                Err(e) => {
                    debug!(addr = %self.connector.addr, error = %e, "IO thread not killed: STOP SLAVE alone")
                }
            }
        }
    }

    /// MariaDB: the transactions this replica received (`Gtid_IO_Pos`) that `source`'s binary
    /// log lacks, as a list, or `None`. Re-pointing by GTID discards the relay log: when it
    /// holds a transaction the new master lacks (one the old master had acknowledged under
    /// semi-sync, still unapplied here), that write would be lost. MySQL: `None` (not
    /// compared; unit-tested paths only).
    async fn source_lacks_received(
        &self,
        current: Option<&ReplicaStatus>,
        flavor: Flavor,
        source: &Source,
    ) -> Result<Option<String>, MysqlError> {
        let received = current
            .filter(|_| flavor.mariadb)
            .and_then(|r| r.gtid_received.as_deref())
            .and_then(|g| GtidPos::parse(g).ok());
        let Some(received) = received else {
            return Ok(None);
        };
        let connector = self.peer_connector(source);
        let mut lease = Lease::open(&connector).await?;
        let text = lease.gtid_binlog_state().await?.unwrap_or_default();
        lease.close().await;
        let state = mmm_core::gtid::BinlogState::parse(&text).map_err(|e| {
            unexpected(
                "SELECT @@gtid_binlog_state",
                format!("{}: {e}", source.name),
            )
        })?;
        let lacks = state.lacks(&received);
        Ok((!lacks.is_empty()).then(|| mmm_core::gtid::list(&lacks)))
    }

    /// [`replication_ssl`] with this handle's limits.
    async fn source_ssl(&self, source: &Source) -> MasterSsl {
        replication_ssl(
            source,
            self.connector.connect_timeout,
            self.connector.query_timeout,
        )
        .await
    }

    /// The new master's current binlog coordinate, read with the agent's account there.
    async fn source_binlog_position(&self, source: &Source) -> Result<BinlogPos, MysqlError> {
        let connector = self.peer_connector(source);
        let mut lease = Lease::open(&connector).await?;
        let flavor = lease.flavor().await?;
        let pos = lease.binlog_status(flavor).await?.ok_or_else(|| {
            unexpected(
                flavor.show_binlog_status(),
                format!(
                    "binary logging is off on {} ({})",
                    source.name, connector.addr
                ),
            )
        })?;
        lease.close().await;
        Ok(pos)
    }

    /// Removes the catch-up connection if it exists (`STOP SLAVE 'name'` answers "There is no
    /// master connection" when it does not).
    async fn drop_catchup_connection(
        &self,
        lease: &mut Lease<'_>,
        flavor: Flavor,
    ) -> Result<(), MysqlError> {
        let [_, stop, reset, _] = named_connection_sql(flavor, CATCHUP_CONNECTION);
        match lease.exec(&Sql::plain(stop)).await {
            Err(MysqlError::Statement { reason, .. })
                if reason.to_ascii_lowercase().contains("no master connection") =>
            {
                return Ok(());
            }
            other => other?,
        }
        lease.exec(&Sql::plain(reset)).await?;
        info!(addr = %self.connector.addr, "removed the catch-up replication connection");
        Ok(())
    }

    /// The fetching of [`Mysql::catch_up_from`], once the default connection is stopped:
    /// the catch-up connection replicates from `peer` by GTID until this server has executed
    /// `wanted`, or fails with what its threads say.
    async fn fetch_from_peer(
        &self,
        lease: &mut Lease<'_>,
        flavor: Flavor,
        peer: &Source,
        wanted: &GtidPos,
        limit: Duration,
    ) -> Result<(), MysqlError> {
        let [start, _, _, show] = named_connection_sql(flavor, CATCHUP_CONNECTION);
        let (slave_pos, binlog_pos) = lease.gtid_slave_and_binlog_pos().await?;
        let ssl = self.source_ssl(peer).await;
        let change = change_source_sql(
            flavor,
            &ChangeSource {
                host: &peer.host,
                port: peer.port,
                user: &peer.replication_user,
                password: &peer.replication_password,
                positioning: mariadb_gtid_positioning(flavor, &slave_pos, &binlog_pos),
                connection: Some(CATCHUP_CONNECTION),
                ssl,
            },
        );
        lease.exec(&change).await?;
        lease.exec(&Sql::plain(start.clone())).await?;
        info!(addr = %self.connector.addr, peer = %peer.name, %wanted, "fetching from a peer that executed more");
        let deadline = Instant::now() + limit;
        loop {
            let have = lease.mariadb_executed().await?;
            if have.covers(wanted) {
                return Ok(());
            }
            let rows = lease.query(&show).await?;
            if let Some(row) = rows.first() {
                let status = parse_replica_status(&show, row)?;
                if let Some(reason) = stopped_thread(&status, peer) {
                    return Err(MysqlError::Statement {
                        statement: start,
                        reason: redact_all(&reason, peer),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(MysqlError::Timeout {
                    what: format!(
                        "fetching GTID position {wanted} from {} (at {have}, {} not reached)",
                        peer.name,
                        gtid::list(&have.missing(wanted))
                    ),
                    timeout: limit,
                });
            }
            sleep(POLL).await;
        }
    }

    /// `CHANGE MASTER TO` the source, by GTID (`gtid`) or at its current binlog position,
    /// with `ssl`.
    async fn change_source(
        &self,
        lease: &mut Lease<'_>,
        flavor: Flavor,
        source: &Source,
        gtid: Option<Positioning>,
        ssl: MasterSsl,
    ) -> Result<Repointed, MysqlError> {
        let (positioning, outcome) = match gtid {
            Some(p) => (p, Repointed::Gtid),
            None => {
                let pos = self.source_binlog_position(source).await?;
                (Positioning::File(pos.clone()), Repointed::FilePosition(pos))
            }
        };
        let change = change_source_sql(
            flavor,
            &ChangeSource {
                host: &source.host,
                port: source.port,
                user: &source.replication_user,
                password: &source.replication_password,
                positioning,
                connection: None,
                ssl,
            },
        );
        lease.exec(&change).await?;
        Ok(outcome)
    }
}

/// How a replication connection to `source` is to be encrypted ([`master_ssl`]): logs in
/// there with the replication account, as the IO thread will (connecting within
/// `connect_timeout`, the statement within `query_timeout`), and reads
/// `require_secure_transport`. A source that cannot be asked (logged) gets what
/// an earlier login learned ([`crate::mysql_tls::needs_tls`]), else [`MasterSsl::Keep`].
pub async fn replication_ssl(
    source: &Source,
    connect_timeout: Duration,
    query_timeout: Duration,
) -> MasterSsl {
    let connector = Connector::new(
        &Endpoint::Tcp {
            host: source.host.clone(),
            port: source.port,
        },
        &source.replication_user,
        &source.replication_password,
        connect_timeout,
        query_timeout,
    );
    let asked = async {
        let mut lease = Lease::open(&connector).await?;
        let vars = lease.variables(&["require_secure_transport"]).await?;
        lease.close().await;
        Ok::<_, MysqlError>(vars)
    }
    .await;
    let learned = crate::mysql_tls::needs_tls(&source.host, source.port);
    match asked {
        Ok(vars) => master_ssl(
            learned,
            vars.get("require_secure_transport").map(String::as_str),
        ),
        Err(e) => {
            warn!(
                source = %source.name,
                addr = %connector.addr,
                error = %redact_all(&e.to_string(), source),
                "could not ask the source whether replication must be encrypted"
            );
            if learned {
                MasterSsl::On
            } else {
                MasterSsl::Keep
            }
        }
    }
}

/// Why a replication thread stopped on an error, if one did: the SQL thread first.
fn stopped_thread(status: &ReplicaStatus, source: &Source) -> Option<String> {
    if let (false, Some(e)) = (status.sql_running, &status.last_sql_error) {
        Some(format!("the SQL thread stopped: {e}"))
    } else if let (false, Some(e)) = (status.io_running, &status.last_io_error) {
        Some(format!(
            "the IO thread cannot replicate from {} ({}:{}): {e}",
            source.name, source.host, source.port
        ))
    } else {
        None
    }
}

/// A replica whose SQL thread stopped on an error cannot catch up: say so at once.
fn check_sql_thread(flavor: Flavor, status: &ReplicaStatus) -> Result<(), MysqlError> {
    match (&status.last_sql_error, status.sql_running) {
        (Some(e), false) => Err(unexpected(
            flavor.show_replica_status(),
            format!("the SQL thread stopped on an error, so the relay log cannot be applied: {e}"),
        )),
        _ => Ok(()),
    }
}

/// Both of a source's passwords out of a message.
fn redact_all(message: &str, source: &Source) -> String {
    let mut out = message.to_string();
    for secret in [&source.replication_password, &source.agent_password] {
        if !secret.expose().is_empty() {
            out = out.replace(secret.expose(), "<redacted>");
        }
    }
    out
}

impl Mysql for Server {
    /// An idle connection's ping, or a fresh connection.
    async fn ping(&self) -> Result<(), MysqlError> {
        self.lease().await.map(drop)
    }

    /// `mysql_pidfile` names a process that is gone (see [`PidFile`]).
    fn process_gone(&self) -> Option<String> {
        match self.pidfile.as_ref()?.check() {
            PidState::Gone(reason) => Some(reason),
            PidState::Alive(_) | PidState::Unknown(_) => None,
        }
    }

    /// `@@version`, `read_only`, `super_read_only` (MySQL), `Uptime`, `SHOW MASTER STATUS`, the
    /// executed GTID set (`None` when empty) and `SHOW SLAVE STATUS`.
    async fn status(&self) -> Result<ServerStatus, MysqlError> {
        let mut lease = self.lease().await?;
        let names = [
            "version",
            "read_only",
            "super_read_only",
            "gtid_current_pos",
            "gtid_executed",
        ];
        let vars = lease.variables(&names).await?;
        let query = "SHOW GLOBAL VARIABLES";
        let get = |name: &str| {
            vars.get(name)
                .ok_or_else(|| unexpected(query, format!("no variable {name}")))
        };
        let version = get("version")?.clone();
        let flavor = Flavor::parse(&version)
            .ok_or_else(|| unexpected(query, format!("version '{version}'")))?;
        let read_only = parse_bool(query, "read_only", get("read_only")?)?;
        let super_read_only = match vars.get("super_read_only") {
            Some(v) if !flavor.mariadb => Some(parse_bool(query, "super_read_only", v)?),
            _ => None,
        };
        let gtid_executed = vars
            .get(flavor.gtid_executed_variable())
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty());

        let uptime_query = "SHOW GLOBAL STATUS LIKE 'Uptime'";
        let rows = lease.query(uptime_query).await?;
        let uptime_secs = rows
            .first()
            .ok_or_else(|| unexpected(uptime_query, "no row"))?
            .number(uptime_query, &["Value"])?;

        let binlog = lease.binlog_status(flavor).await?;
        let replica = lease.replica_status(flavor).await?;
        Ok(ServerStatus {
            version,
            mariadb: flavor.mariadb,
            read_only,
            super_read_only,
            uptime_secs,
            binlog,
            gtid_executed,
            replica,
        })
    }

    /// Nothing to do when already in that state. Turning it on does not wait behind running
    /// writes: see [`READ_ONLY_BLOCKED_AFTER`].
    async fn set_read_only(&self, on: bool) -> Result<(), MysqlError> {
        let mut lease = self.lease().await?;
        let vars = lease
            .variables(&["version", "read_only", "super_read_only"])
            .await?;
        let query = "SHOW GLOBAL VARIABLES";
        let version = vars
            .get("version")
            .ok_or_else(|| unexpected(query, "no variable version"))?;
        let flavor = Flavor::parse(version)
            .ok_or_else(|| unexpected(query, format!("version '{version}'")))?;
        let read_only = parse_bool(
            query,
            "read_only",
            vars.get("read_only")
                .ok_or_else(|| unexpected(query, "no variable read_only"))?,
        )?;
        let super_read_only = match vars.get("super_read_only") {
            Some(v) if !flavor.mariadb => Some(parse_bool(query, "super_read_only", v)?),
            _ => None,
        };
        let done = read_only == on && super_read_only.is_none_or(|s| s == on);
        if done {
            debug!(addr = %self.connector.addr, on, "read_only already in place");
            return Ok(());
        }
        for sql in read_only_sql(super_read_only.is_some(), on) {
            if on {
                self.set_read_only_unblocked(&mut lease, &sql).await?;
            } else {
                lease.exec(&sql).await?;
            }
        }
        info!(addr = %self.connector.addr, on, "read_only set");
        Ok(())
    }

    /// Passes over `SHOW PROCESSLIST`, `pause` apart, killing every client session (idle ones
    /// and writes included) but the agent's own connections, replication and system threads;
    /// stops after a pass that killed nothing, or after `max_kill_retries + 1` passes.
    async fn kill_client_sessions(
        &self,
        max_kill_retries: u32,
        pause: Duration,
    ) -> Result<Killed, MysqlError> {
        let mut lease = self.lease().await?;
        let mut result = Killed::default();
        for pass in 0..=max_kill_retries {
            result.passes += 1;
            let killed = self.kill_pass(&mut lease, sessions_to_kill).await?;
            result.killed += killed;
            debug!(addr = %self.connector.addr, pass, killed, "kill pass");
            if killed == 0 {
                break;
            }
            if pass < max_kill_retries {
                sleep(pause).await;
            }
        }
        info!(addr = %self.connector.addr, killed = result.killed, passes = result.passes, "killed client sessions");
        Ok(result)
    }

    /// MariaDB: `gtid_binlog_pos` merged with `gtid_slave_pos` (what it wrote or logged, and
    /// what it applied as a replica, which a server without `log_slave_updates` has only
    /// there). MySQL: `@@gtid_executed` (MySQL path: unit-tested only).
    async fn executed_position(&self) -> Result<Option<String>, MysqlError> {
        let mut lease = self.lease().await?;
        let flavor = lease.flavor().await?;
        let position = if flavor.mariadb {
            lease.mariadb_executed().await?.to_string()
        } else {
            let vars = lease.variables(&["gtid_executed"]).await?;
            vars.get("gtid_executed").cloned().unwrap_or_default()
        };
        Ok(Some(position.trim().to_string()).filter(|p| !p.is_empty()))
    }

    async fn binlog_state(&self) -> Result<Option<String>, MysqlError> {
        self.lease().await?.gtid_binlog_state().await
    }

    /// MariaDB: polls [`Mysql::executed_position`] every 10 ms until it covers `position`
    /// (`MASTER_GTID_WAIT` looks at `gtid_slave_pos` only, which lacks what this server wrote
    /// itself). MySQL: `WAIT_FOR_EXECUTED_GTID_SET` (unit-tested only).
    async fn wait_executed(&self, position: &str, limit: Duration) -> Result<(), MysqlError> {
        let mut lease = self.lease().await?;
        let flavor = lease.flavor().await?;
        if !flavor.mariadb {
            let sql = gtid_wait_sql(flavor, position, limit);
            let answer = lease
                .select_value(&sql, limit + self.connector.query_timeout)
                .await?;
            return match answer {
                Some(0) => Ok(()),
                Some(1) => Err(MysqlError::Timeout {
                    what: format!("executing the GTID set {position}"),
                    timeout: limit,
                }),
                other => Err(unexpected(sql.shown(), format!("answered {other:?}"))),
            };
        }
        let wanted = GtidPos::parse(position).map_err(|e| MysqlError::Unexpected {
            query: "the position to wait for".into(),
            reason: e.to_string(),
        })?;
        let deadline = Instant::now() + limit;
        loop {
            let have = lease.mariadb_executed().await?;
            let missing = have.missing(&wanted);
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(MysqlError::Timeout {
                    what: format!(
                        "executing GTID position {wanted} (at {have}, {} not reached)",
                        gtid::list(&missing)
                    ),
                    timeout: limit,
                });
            }
            sleep(Duration::from_millis(10)).await;
        }
    }

    /// By GTID (`MASTER_GTID_WAIT` for the `Gtid_IO_Pos` seen at the start) when the replica
    /// replicates by GTID, else `MASTER_POS_WAIT` for `Master_Log_File`/`Read_Master_Log_Pos`.
    ///
    /// The SQL thread is never started here: a stopped SQL thread is either an operator's
    /// decision or a replication error, and the agent overrides neither. A thread stopped on
    /// an error fails at once with `Last_SQL_Error`; a thread stopped without one is waited
    /// for (it may be restarted in time), and the [`MysqlError::Timeout`] then says that the
    /// SQL thread is not running.
    async fn wait_relay_applied(&self, timeout: Duration) -> Result<(), MysqlError> {
        let mut lease = self.lease().await?;
        let flavor = lease.flavor().await?;
        self.wait_applied(&mut lease, flavor, timeout).await
    }

    /// Connects to `peer` with the agent's account there, gives it up to `limit` to apply its
    /// relay log, and reads what it executed (`gtid_binlog_pos` merged with `gtid_slave_pos`).
    /// MariaDB only: a MySQL peer is an error.
    async fn peer_executed(
        &self,
        peer: &Source,
        connect: Option<Duration>,
        limit: Duration,
    ) -> Result<Option<String>, MysqlError> {
        let mut connector = self.peer_connector(peer);
        if let Some(connect) = connect {
            connector.connect_timeout = connect.min(connector.connect_timeout);
        }
        let mut lease = Lease::open(&connector).await?;
        let flavor = lease.flavor().await?;
        if !flavor.mariadb {
            return Err(unexpected(
                "SELECT @@version",
                format!(
                    "{} runs MySQL: positions of peers are compared on MariaDB only",
                    peer.name
                ),
            ));
        }
        if let Err(e) = self.wait_applied(&mut lease, flavor, limit).await {
            if matches!(e, MysqlError::Unreachable { .. }) {
                return Err(e);
            }
            warn!(peer = %peer.name, error = %e, "the peer has not applied its relay log: taking its position as it is");
        }
        let executed = lease.mariadb_executed().await?;
        // What its IO thread received counts too: semi-sync acknowledges a transaction once it
        // is in the relay log, so a write the client saw committed may be nowhere else yet. The
        // catch-up then waits for the peer to apply it.
        let received = lease
            .replica_status(flavor)
            .await?
            .filter(|r| r.using_gtid)
            .and_then(|r| r.gtid_received)
            .and_then(|g| GtidPos::parse(&g).ok());
        let position = match received {
            Some(received) => executed.merge(&received),
            None => executed,
        };
        lease.close().await;
        Ok(Some(position.to_string()).filter(|p| !p.is_empty()))
    }

    /// MariaDB: stops the default replication connection (and semi-sync waits, if on: what is
    /// fetched exists on the peer already), replicates from `peer` through the catch-up
    /// connection until `position` is executed, then removes that connection, turns semi-sync
    /// back on and restarts the default connection if it ran, whatever happened. MySQL: an
    /// error (not implemented).
    async fn catch_up_from(
        &self,
        peer: &Source,
        position: &str,
        limit: Duration,
    ) -> Result<(), MysqlError> {
        let wanted = GtidPos::parse(position).map_err(|e| MysqlError::Unexpected {
            query: "the position to fetch".into(),
            reason: e.to_string(),
        })?;
        let mut lease = self.lease().await?;
        let flavor = lease.flavor().await?;
        if !flavor.mariadb {
            return Err(unexpected(
                "catching up from a peer",
                "implemented for MariaDB only",
            ));
        }
        // Left over by a catch-up that was cut short (the agent or the server stopped).
        self.drop_catchup_connection(&mut lease, flavor).await?;
        let default = lease.replica_status(flavor).await?;
        let was_running = default
            .as_ref()
            .is_some_and(|r| r.io_running || r.sql_running);
        if default.is_some() {
            lease.exec(&Sql::plain(flavor.stop_replica())).await?;
        }
        // The fetched transactions exist on the peer already; with semi-sync on and no replica
        // connected yet (they are waiting for this very catch-up), each would wait out
        // `rpl_semi_sync_master_timeout` for an acknowledgement. Off meanwhile, on again after.
        let semi_sync = match lease
            .variables(&["rpl_semi_sync_master_enabled"])
            .await?
            .get("rpl_semi_sync_master_enabled")
        {
            Some(v) => parse_bool("SHOW GLOBAL VARIABLES", "rpl_semi_sync_master_enabled", v)?,
            None => false,
        };
        if semi_sync {
            lease
                .exec(&Sql::plain("SET GLOBAL rpl_semi_sync_master_enabled=OFF"))
                .await?;
        }
        let fetched = self
            .fetch_from_peer(&mut lease, flavor, peer, &wanted, limit)
            .await;
        drop(lease);
        let cleanup = async {
            let mut lease = self.lease().await?;
            self.drop_catchup_connection(&mut lease, flavor).await?;
            if semi_sync {
                lease
                    .exec(&Sql::plain("SET GLOBAL rpl_semi_sync_master_enabled=ON"))
                    .await?;
            }
            if was_running {
                lease.exec(&Sql::plain(flavor.start_replica())).await?;
            }
            Ok::<(), MysqlError>(())
        }
        .await;
        match (fetched, cleanup) {
            (Err(e), Err(c)) => {
                warn!(addr = %self.connector.addr, error = %c, "could not remove the catch-up connection");
                Err(e)
            }
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => {
                info!(addr = %self.connector.addr, peer = %peer.name, %wanted, "fetched what a peer had executed");
                Ok(())
            }
        }
    }

    /// `AlreadyThere` when `Master_Host`/`Master_Port` are the source's already (the host
    /// compared as text, case-insensitively, so use the same address in `CHANGE MASTER` and
    /// the config). Otherwise: catch up with the relay log (at most
    /// [`ServerOptions::catchup_timeout`]; by GTID a failed catch-up is logged and the
    /// re-pointing goes on when the new master's binary log has everything this replica
    /// received, since it sends whatever was not applied, and is an error otherwise, since
    /// the relay log would be discarded with transactions nobody else may have; by
    /// file/position it is an error), `STOP SLAVE`,
    /// `CHANGE MASTER TO`, `START SLAVE`, then both threads are checked to run
    /// (`Last_IO_Error`/`Last_SQL_Error` reported otherwise). Before `STOP SLAVE` the source
    /// is asked whether replication must be encrypted ([`replication_ssl`]: `MASTER_SSL`).
    ///
    /// `Auto` uses GTID when this server has GTID state (MariaDB: `gtid_slave_pos` or
    /// `gtid_binlog_pos` not empty, see [`mariadb_gtid_positioning`]; MySQL: `gtid_mode=ON`).
    /// A MariaDB server without any GTID history would ask the new master for its whole binlog,
    /// so it gets MMM's method instead, like `FilePosition`: the new master's current
    /// `SHOW MASTER STATUS`, read with the agent's account there, and `MASTER_USE_GTID=no`.
    async fn repoint(
        &self,
        source: &Source,
        method: RepointMethod,
    ) -> Result<Repointed, MysqlError> {
        let mut lease = self.lease().await?;
        let flavor = lease.flavor().await?;
        let current = lease.replica_status(flavor).await?;
        if let Some(r) = &current {
            if r.master_host.eq_ignore_ascii_case(&source.host) && r.master_port == source.port {
                if !(r.io_running && r.sql_running) {
                    // Pointed there by an earlier attempt whose START SLAVE failed (the new
                    // master lacked this replica's last GTID while catching up): start again.
                    // The IO thread may also have been refused for want of TLS (pointed there
                    // without it, or the master demands it since): set MASTER_SSL first.
                    if let Some(change) = ssl_change_sql(flavor, self.source_ssl(source).await) {
                        lease.exec(&Sql::plain(flavor.stop_replica())).await?;
                        lease.exec(&Sql::plain(change)).await?;
                    }
                    lease.exec(&Sql::plain(flavor.start_replica())).await?;
                    self.verify_running(&mut lease, flavor, source).await?;
                    info!(addr = %self.connector.addr, source = %source.name, "replication from the new master started");
                }
                debug!(addr = %self.connector.addr, source = %source.name, "already replicating from the new master");
                return Ok(Repointed::AlreadyThere);
            }
        }

        let gtid = match method {
            RepointMethod::FilePosition => None,
            RepointMethod::Auto if flavor.mariadb => {
                let (slave_pos, binlog_pos) = lease.gtid_slave_and_binlog_pos().await?;
                if slave_pos.trim().is_empty() && binlog_pos.trim().is_empty() {
                    info!(addr = %self.connector.addr, "no GTID history: re-pointing by file/position");
                    None
                } else {
                    Some(mariadb_gtid_positioning(flavor, &slave_pos, &binlog_pos))
                }
            }
            RepointMethod::Auto => {
                let vars = lease.variables(&["gtid_mode"]).await?;
                vars.get("gtid_mode")
                    .filter(|m| m.eq_ignore_ascii_case("ON"))
                    .map(|_| Positioning::AutoPosition)
            }
        };

        if current.is_some() {
            if let Err(e) = self
                .wait_applied(&mut lease, flavor, self.catchup_timeout)
                .await
            {
                match (&gtid, &e) {
                    (_, MysqlError::Unreachable { .. }) | (None, _) => return Err(e),
                    (Some(_), _) => {
                        // Read again: the IO thread may have received more meanwhile.
                        let now = lease.replica_status(flavor).await?;
                        if let Some(lacking) = self
                            .source_lacks_received(now.as_ref(), flavor, source)
                            .await?
                        {
                            return Err(unexpected(
                                "re-pointing",
                                format!(
                                    "the relay log is not applied ({e}) and holds {lacking}, which {} lacks: not re-pointed, so it is not lost (tried again later)",
                                    source.name
                                ),
                            ));
                        }
                        warn!(addr = %self.connector.addr, error = %e, "relay log not applied; re-pointing by GTID anyway: the new master has everything it received")
                    }
                }
            }
        }

        let was_running = current
            .as_ref()
            .is_some_and(|r| r.io_running || r.sql_running);
        // Asked before replication stops: the stop lasts no longer than it must.
        let ssl = self.source_ssl(source).await;
        if flavor.mariadb && current.as_ref().is_some_and(|r| r.io_running) {
            self.end_io_thread(&mut lease).await;
        }
        lease.exec(&Sql::plain(flavor.stop_replica())).await?;
        let outcome = match self
            .change_source(&mut lease, flavor, source, gtid, ssl)
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                // Leave replication as it was found (the old source, still configured).
                if was_running {
                    if let Err(restart) = lease.exec(&Sql::plain(flavor.start_replica())).await {
                        warn!(addr = %self.connector.addr, error = %restart, "could not restart replication from the old source");
                    }
                }
                return Err(e);
            }
        };
        lease.exec(&Sql::plain(flavor.start_replica())).await?;
        self.verify_running(&mut lease, flavor, source).await?;
        info!(addr = %self.connector.addr, source = %source.name, how = ?outcome, ssl = ?ssl, "re-pointed");
        Ok(outcome)
    }

    /// `START SLAVE` / `STOP SLAVE`; nothing on a server that is not a replica.
    async fn set_replication(&self, running: bool) -> Result<(), MysqlError> {
        let mut lease = self.lease().await?;
        let flavor = lease.flavor().await?;
        if lease.replica_status(flavor).await?.is_none() {
            debug!(addr = %self.connector.addr, running, "not a replica: nothing to start or stop");
            return Ok(());
        }
        let sql = if running {
            flavor.start_replica()
        } else {
            flavor.stop_replica()
        };
        lease.exec(&Sql::plain(sql)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARIADB: Flavor = Flavor {
        mariadb: true,
        version: (10, 11, 19),
    };
    const MARIADB_10_6: Flavor = Flavor {
        mariadb: true,
        version: (10, 6, 0),
    };
    const MYSQL_57: Flavor = Flavor {
        mariadb: false,
        version: (5, 7, 44),
    };
    const MYSQL_8021: Flavor = Flavor {
        mariadb: false,
        version: (8, 0, 21),
    };
    const MYSQL_8022: Flavor = Flavor {
        mariadb: false,
        version: (8, 0, 22),
    };
    const MYSQL_8036: Flavor = Flavor {
        mariadb: false,
        version: (8, 0, 36),
    };
    const MYSQL_84: Flavor = Flavor {
        mariadb: false,
        version: (8, 4, 3),
    };

    #[test]
    fn versions_parse() {
        assert_eq!(
            Flavor::parse("10.11.19-MariaDB-0+deb12u1-log"),
            Some(MARIADB)
        );
        assert_eq!(
            Flavor::parse("5.5.5-10.11.19-MariaDB"),
            Some(Flavor {
                mariadb: true,
                version: (10, 11, 19)
            })
        );
        assert_eq!(Flavor::parse("8.0.36"), Some(MYSQL_8036));
        assert_eq!(Flavor::parse("5.7.44-log"), Some(MYSQL_57));
        assert_eq!(
            Flavor::parse("8.4"),
            Some(Flavor {
                mariadb: false,
                version: (8, 4, 0)
            })
        );
        assert_eq!(Flavor::parse("garbage"), None);
        assert_eq!(Flavor::parse(""), None);
    }

    #[test]
    fn replication_statements_by_flavour() {
        for f in [MARIADB, MARIADB_10_6, MYSQL_57, MYSQL_8021] {
            assert_eq!(f.show_replica_status(), "SHOW SLAVE STATUS");
            assert_eq!(f.start_replica(), "START SLAVE");
            assert_eq!(f.stop_replica(), "STOP SLAVE");
            assert_eq!(f.show_binlog_status(), "SHOW MASTER STATUS");
        }
        for f in [MYSQL_8022, MYSQL_8036, MYSQL_84] {
            assert_eq!(f.show_replica_status(), "SHOW REPLICA STATUS");
            assert_eq!(f.start_replica(), "START REPLICA");
            assert_eq!(f.stop_replica(), "STOP REPLICA");
        }
        assert_eq!(MYSQL_8036.show_binlog_status(), "SHOW MASTER STATUS");
        assert_eq!(MYSQL_84.show_binlog_status(), "SHOW BINARY LOG STATUS");
        assert_eq!(MARIADB.gtid_executed_variable(), "gtid_current_pos");
        assert_eq!(MYSQL_8036.gtid_executed_variable(), "gtid_executed");
    }

    fn change(f: Flavor, positioning: Positioning) -> Sql {
        change_with_ssl(f, positioning, MasterSsl::Keep)
    }

    fn change_with_ssl(f: Flavor, positioning: Positioning, ssl: MasterSsl) -> Sql {
        let password = Secret::new("s3cr'et");
        change_source_sql(
            f,
            &ChangeSource {
                host: "10.0.0.2",
                port: 3307,
                user: "repl",
                password: &password,
                positioning,
                connection: None,
                ssl,
            },
        )
    }

    #[test]
    fn change_master_asks_for_tls_only_when_the_source_requires_it() {
        let on = change_with_ssl(MARIADB, Positioning::SlavePos, MasterSsl::On);
        assert_eq!(
            on.text(),
            "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', \
             MASTER_PASSWORD='s3cr\\'et', MASTER_SSL=1, MASTER_USE_GTID=slave_pos"
        );
        assert_eq!(
            on.shown(),
            "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', \
             MASTER_PASSWORD='<redacted>', MASTER_SSL=1, MASTER_USE_GTID=slave_pos"
        );
        let file = change_with_ssl(
            MARIADB,
            Positioning::File(BinlogPos {
                file: "mysql-bin.000003".into(),
                pos: 4,
            }),
            MasterSsl::On,
        );
        assert!(file.text().contains(
            "MASTER_PASSWORD='s3cr\\'et', MASTER_SSL=1, MASTER_LOG_FILE='mysql-bin.000003'"
        ));
        // Keep: the statement MMM sent, nothing about TLS.
        assert!(!change(MARIADB, Positioning::SlavePos)
            .text()
            .contains("SSL"));
        // MySQL path: unit-tested only.
        assert!(
            change_with_ssl(MYSQL_8036, Positioning::AutoPosition, MasterSsl::On)
                .shown()
                .contains("SOURCE_PASSWORD='<redacted>', SOURCE_SSL=1, SOURCE_AUTO_POSITION=1")
        );
        assert!(
            change_with_ssl(MYSQL_57, Positioning::AutoPosition, MasterSsl::On)
                .shown()
                .contains("MASTER_PASSWORD='<redacted>', MASTER_SSL=1, MASTER_AUTO_POSITION=1")
        );
    }

    #[test]
    fn tls_for_replication_follows_what_the_source_says() {
        use MasterSsl::{Keep, On};
        // A TLS-only source: `require_secure_transport`, or a replication account that
        // needed TLS to log in (`REQUIRE SSL`).
        assert_eq!(master_ssl(false, Some("ON")), On);
        assert_eq!(master_ssl(false, Some("1")), On);
        assert_eq!(master_ssl(true, Some("OFF")), On);
        assert_eq!(master_ssl(true, None), On);
        // TLS not demanded: the replica's setting stays.
        assert_eq!(master_ssl(false, Some("OFF")), Keep);
        // Nothing known (a server without the variable): unchanged.
        assert_eq!(master_ssl(false, None), Keep);
        assert_eq!(On.clause(), ", MASTER_SSL=1");
        assert_eq!(Keep.clause(), "");
        assert_eq!(
            ssl_change_sql(MARIADB, On).as_deref(),
            Some("CHANGE MASTER TO MASTER_SSL=1")
        );
        assert_eq!(ssl_change_sql(MARIADB, Keep), None);
        // MySQL path: unit-tested only.
        assert_eq!(
            ssl_change_sql(MYSQL_8036, On).as_deref(),
            Some("CHANGE REPLICATION SOURCE TO SOURCE_SSL=1")
        );
        assert_eq!(
            ssl_change_sql(MYSQL_57, On).as_deref(),
            Some("CHANGE MASTER TO MASTER_SSL=1")
        );
    }

    #[test]
    fn change_master_on_mariadb() {
        let sql = change(MARIADB, Positioning::SlavePos);
        assert_eq!(
            sql.text(),
            "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', \
             MASTER_PASSWORD='s3cr\\'et', MASTER_USE_GTID=slave_pos"
        );
        assert_eq!(
            sql.shown(),
            "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', \
             MASTER_PASSWORD='<redacted>', MASTER_USE_GTID=slave_pos"
        );
        assert!(change(MARIADB, Positioning::SlavePosDemote)
            .text()
            .ends_with("MASTER_USE_GTID=slave_pos, MASTER_DEMOTE_TO_SLAVE=1"));
        assert!(change(MARIADB_10_6, Positioning::CurrentPos)
            .text()
            .ends_with("MASTER_USE_GTID=current_pos"));
        let file = change(
            MARIADB,
            Positioning::File(BinlogPos {
                file: "mysql-bin.000003".into(),
                pos: 1234,
            }),
        );
        assert!(file.text().ends_with(
            "MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1234, MASTER_USE_GTID=no"
        ));
        assert!(!file.shown().contains("s3cr"));
    }

    /// MySQL path: unit-tested only.
    #[test]
    fn change_source_on_mysql() {
        let old = change(MYSQL_57, Positioning::AutoPosition);
        assert_eq!(
            old.text(),
            "CHANGE MASTER TO MASTER_HOST='10.0.0.2', MASTER_PORT=3307, MASTER_USER='repl', \
             MASTER_PASSWORD='s3cr\\'et', MASTER_AUTO_POSITION=1"
        );
        let new = change(MYSQL_8036, Positioning::AutoPosition);
        assert_eq!(
            new.text(),
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.2', SOURCE_PORT=3307, \
             SOURCE_USER='repl', SOURCE_PASSWORD='s3cr\\'et', SOURCE_AUTO_POSITION=1"
        );
        assert!(new.shown().contains("SOURCE_PASSWORD='<redacted>'"));
        let pos = BinlogPos {
            file: "binlog.000007".into(),
            pos: 157,
        };
        assert!(change(MYSQL_8036, Positioning::File(pos.clone()))
            .text()
            .ends_with(
                "SOURCE_LOG_FILE='binlog.000007', SOURCE_LOG_POS=157, SOURCE_AUTO_POSITION=0"
            ));
        assert!(change(MYSQL_8022, Positioning::File(pos.clone()))
            .text()
            .ends_with(
                "MASTER_LOG_FILE='binlog.000007', MASTER_LOG_POS=157, MASTER_AUTO_POSITION=0"
            ));
        assert!(change(
            Flavor {
                mariadb: false,
                version: (5, 5, 62)
            },
            Positioning::File(pos)
        )
        .text()
        .ends_with("MASTER_LOG_POS=157"));
    }

    #[test]
    fn a_named_connection_on_each_flavour() {
        let password = Secret::new("pw");
        let to = |f| {
            change_source_sql(
                f,
                &ChangeSource {
                    host: "10.0.0.3",
                    port: 3306,
                    user: "repl",
                    password: &password,
                    positioning: Positioning::SlavePos,
                    connection: Some(CATCHUP_CONNECTION),
                    ssl: MasterSsl::Keep,
                },
            )
        };
        assert_eq!(
            to(MARIADB).shown(),
            "CHANGE MASTER 'mmm_catchup' TO MASTER_HOST='10.0.0.3', MASTER_PORT=3306, \
             MASTER_USER='repl', MASTER_PASSWORD='<redacted>', MASTER_USE_GTID=slave_pos"
        );
        assert_eq!(
            named_connection_sql(MARIADB, CATCHUP_CONNECTION),
            [
                "START SLAVE 'mmm_catchup'",
                "STOP SLAVE 'mmm_catchup'",
                "RESET SLAVE 'mmm_catchup' ALL",
                "SHOW SLAVE 'mmm_catchup' STATUS"
            ]
        );
        // MySQL path: unit-tested only.
        assert!(to(MYSQL_8036)
            .shown()
            .starts_with("CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.3'"));
        assert!(to(MYSQL_8036)
            .shown()
            .ends_with("FOR CHANNEL 'mmm_catchup'"));
        assert_eq!(
            named_connection_sql(MYSQL_8036, "c"),
            [
                "START REPLICA FOR CHANNEL 'c'",
                "STOP REPLICA FOR CHANNEL 'c'",
                "RESET REPLICA ALL FOR CHANNEL 'c'",
                "SHOW REPLICA STATUS FOR CHANNEL 'c'"
            ]
        );
        assert_eq!(
            named_connection_sql(MYSQL_57, "c")[2],
            "RESET SLAVE ALL FOR CHANNEL 'c'"
        );
    }

    #[test]
    fn waits_by_flavour() {
        let d = Duration::from_millis(2500);
        assert_eq!(
            gtid_wait_sql(MARIADB, "0-1-5,1-2-3", d).text(),
            "SELECT MASTER_GTID_WAIT('0-1-5,1-2-3', 2.500)"
        );
        assert_eq!(
            gtid_wait_sql(MYSQL_8036, "uuid:1-5", d).text(),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-5', 3)"
        );
        let pos = BinlogPos {
            file: "mysql-bin.000001".into(),
            pos: 42,
        };
        assert_eq!(
            pos_wait_sql(MARIADB, &pos, d).text(),
            "SELECT MASTER_POS_WAIT('mysql-bin.000001', 42, 3)"
        );
        assert_eq!(
            pos_wait_sql(MYSQL_57, &pos, Duration::ZERO).text(),
            "SELECT MASTER_POS_WAIT('mysql-bin.000001', 42, 1)"
        );
        assert_eq!(
            pos_wait_sql(MYSQL_84, &pos, Duration::from_secs(4)).text(),
            "SELECT SOURCE_POS_WAIT('mysql-bin.000001', 42, 4)"
        );
    }

    #[test]
    fn read_only_statements() {
        let texts = |v: Vec<Sql>| v.iter().map(|s| s.text().to_string()).collect::<Vec<_>>();
        assert_eq!(
            texts(read_only_sql(false, true)),
            ["SET GLOBAL read_only=1"]
        );
        assert_eq!(
            texts(read_only_sql(false, false)),
            ["SET GLOBAL read_only=0"]
        );
        // MySQL path: unit-tested only.
        assert_eq!(
            texts(read_only_sql(true, true)),
            ["SET GLOBAL read_only=1", "SET GLOBAL super_read_only=1"]
        );
        assert_eq!(
            texts(read_only_sql(true, false)),
            ["SET GLOBAL super_read_only=0", "SET GLOBAL read_only=0"]
        );
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("a'b\\c\n\0\"z"), "'a\\'b\\\\c\\n\\0\\\"z'");
    }

    #[test]
    fn server_messages_are_redacted() {
        let password = Secret::new("hunter2");
        let sql = change_source_sql(
            MARIADB,
            &ChangeSource {
                host: "h",
                port: 1,
                user: "u",
                password: &password,
                positioning: Positioning::SlavePos,
                connection: None,
                ssl: MasterSsl::On,
            },
        );
        let message = "You have an error in your SQL syntax near 'hunter2' MASTER_USE_GTID";
        assert_eq!(
            sql.redact(message),
            "You have an error in your SQL syntax near '<redacted>' MASTER_USE_GTID"
        );
        assert!(!format!("{sql:?}").contains("hunter2"));
        assert_eq!(Sql::plain("SELECT 1").redact("x"), "x");
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    fn mariadb_replica_row() -> Vec<(&'static str, Option<String>)> {
        vec![
            ("Slave_IO_State", some("Waiting for master to send event")),
            ("Master_Host", some("127.0.0.1")),
            ("Master_User", some("repl")),
            ("Master_Port", some("3306")),
            ("Master_Log_File", some("mysql-bin.000002")),
            ("Read_Master_Log_Pos", some("900")),
            ("Relay_Master_Log_File", some("mysql-bin.000002")),
            ("Slave_IO_Running", some("Yes")),
            ("Slave_SQL_Running", some("No")),
            ("Last_SQL_Error", some("")),
            ("Exec_Master_Log_Pos", some("767")),
            ("Seconds_Behind_Master", None),
            ("Last_IO_Error", some("")),
            ("Using_Gtid", some("Slave_Pos")),
            ("Gtid_IO_Pos", some("0-1-4")),
        ]
    }

    #[test]
    fn mariadb_replica_status_parses() {
        let q = "SHOW SLAVE STATUS";
        let s = parse_replica_status(q, &Record::new(mariadb_replica_row())).expect("parses");
        assert_eq!(
            s,
            ReplicaStatus {
                master_host: "127.0.0.1".into(),
                master_port: 3306,
                io_running: true,
                sql_running: false,
                seconds_behind: None,
                received: BinlogPos {
                    file: "mysql-bin.000002".into(),
                    pos: 900
                },
                applied: BinlogPos {
                    file: "mysql-bin.000002".into(),
                    pos: 767
                },
                using_gtid: true,
                gtid_received: Some("0-1-4".into()),
                last_io_error: None,
                last_sql_error: None,
            }
        );
        let mut row = mariadb_replica_row();
        row.retain(|(k, _)| *k != "Using_Gtid");
        row.push(("Using_Gtid", some("No")));
        row.retain(|(k, _)| *k != "Seconds_Behind_Master");
        row.push(("Seconds_Behind_Master", some("12")));
        let s = parse_replica_status(q, &Record::new(row)).expect("parses");
        assert!(!s.using_gtid);
        assert_eq!(s.seconds_behind, Some(12));
    }

    /// MySQL path: unit-tested only.
    #[test]
    fn mysql_replica_status_parses_with_new_names() {
        let row = vec![
            ("Source_Host", some("db2")),
            ("Source_Port", some("3306")),
            ("Source_Log_File", some("binlog.000009")),
            ("Read_Source_Log_Pos", some("157")),
            ("Relay_Source_Log_File", some("binlog.000009")),
            ("Exec_Source_Log_Pos", some("157")),
            ("Replica_IO_Running", some("Connecting")),
            ("Replica_SQL_Running", some("Yes")),
            ("Seconds_Behind_Source", some("0")),
            ("Last_IO_Error", some("error connecting to source")),
            ("Last_SQL_Error", some("")),
            (
                "Retrieved_Gtid_Set",
                some("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"),
            ),
            ("Auto_Position", some("1")),
        ];
        let s = parse_replica_status("SHOW REPLICA STATUS", &Record::new(row)).expect("parses");
        assert_eq!(s.master_host, "db2");
        assert!(!s.io_running, "Connecting is not running");
        assert!(s.sql_running);
        assert_eq!(s.seconds_behind, Some(0));
        assert!(s.using_gtid);
        assert_eq!(
            s.gtid_received.as_deref(),
            Some("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5")
        );
        assert_eq!(
            s.last_io_error.as_deref(),
            Some("error connecting to source")
        );
    }

    #[test]
    fn odd_replica_status_is_an_error_naming_the_column() {
        let q = "SHOW SLAVE STATUS";
        let mut row = mariadb_replica_row();
        row.retain(|(k, _)| *k != "Exec_Master_Log_Pos");
        let e = parse_replica_status(q, &Record::new(row)).expect_err("missing column");
        assert!(e.to_string().contains("Exec_Master_Log_Pos"), "{e}");

        let mut row = mariadb_replica_row();
        row.retain(|(k, _)| *k != "Master_Port");
        row.push(("Master_Port", some("99999")));
        let e = parse_replica_status(q, &Record::new(row)).expect_err("bad port");
        assert!(e.to_string().contains("Master_Port"), "{e}");

        let mut row = mariadb_replica_row();
        row.retain(|(k, _)| *k != "Seconds_Behind_Master");
        row.push(("Seconds_Behind_Master", some("soon")));
        let e = parse_replica_status(q, &Record::new(row)).expect_err("bad number");
        assert!(e.to_string().contains("Seconds_Behind_Master"), "{e}");
        assert!(matches!(e, MysqlError::Unexpected { .. }));
    }

    #[test]
    fn booleans_parse() {
        assert!(parse_bool("q", "read_only", "ON").expect("on"));
        assert!(!parse_bool("q", "read_only", "OFF").expect("off"));
        assert!(parse_bool("q", "read_only", "1").expect("1"));
        assert!(parse_bool("q", "read_only", "maybe").is_err());
    }

    #[test]
    fn positions_compare() {
        let p = |f: &str, pos| BinlogPos {
            file: f.into(),
            pos,
        };
        assert!(applied_up_to(&p("b.000002", 10), &p("b.000002", 10)));
        assert!(!applied_up_to(&p("b.000002", 9), &p("b.000002", 10)));
        assert!(applied_up_to(&p("b.000003", 4), &p("b.000002", 10)));
        assert!(!applied_up_to(&p("b.000001", 900), &p("b.000002", 10)));
        assert!(applied_up_to(&p("b.1000000", 4), &p("b.999999", 10)));
    }

    #[test]
    fn gtid_positions() {
        assert_eq!(
            parse_gtid_pos("0-1-100, 1-2-7"),
            Some(HashMap::from([(0, 100), (1, 7)]))
        );
        assert_eq!(parse_gtid_pos(""), Some(HashMap::new()));
        assert_eq!(parse_gtid_pos("0-1"), None);
        assert!(slave_pos_covers_binlog("0-1-100", "0-1-100"));
        assert!(slave_pos_covers_binlog("0-2-101,1-1-3", "0-1-100"));
        assert!(slave_pos_covers_binlog("0-1-5", ""));
        assert!(!slave_pos_covers_binlog("", "0-1-100"));
        assert!(!slave_pos_covers_binlog("0-2-99", "0-1-100"));
        assert!(!slave_pos_covers_binlog("0-2-200", "0-1-100,1-1-1"));
        assert!(!slave_pos_covers_binlog("junk", "0-1-1"));
        assert_eq!(
            mariadb_gtid_positioning(MARIADB, "0-1-10", "0-1-10"),
            Positioning::SlavePos
        );
        assert_eq!(
            mariadb_gtid_positioning(MARIADB, "0-2-9", "0-1-10"),
            Positioning::SlavePosDemote
        );
        assert_eq!(
            mariadb_gtid_positioning(MARIADB_10_6, "", "0-1-10"),
            Positioning::CurrentPos
        );
    }

    fn p(id: u64, user: &str, command: &str) -> Process {
        Process {
            id,
            user: user.into(),
            command: command.into(),
        }
    }

    #[test]
    fn the_killer_spares_only_itself_replication_and_system_threads() {
        let processes = vec![
            p(1, "system user", "Slave_IO"),
            p(2, "system user", "Slave_SQL"),
            p(3, "repl", "Binlog Dump"),
            p(4, "repl", "Binlog Dump GTID"),
            p(5, "event_scheduler", "Daemon"),
            p(6, "app", "Sleep"),
            p(7, "app", "Query"),
            p(8, "mmm_agent", "Query"),
            p(9, "mmm_agent", "Sleep"),
            p(10, "app", "Killed"),
            p(11, "unauthenticated user", "Connect"),
            p(12, "system user", "Connect"),
            p(13, "system user", "Slave_worker"),
            p(14, "root", "Query"),
        ];
        let own = HashSet::from([8]);
        assert_eq!(sessions_to_kill(&processes, &own), [6, 7, 9, 11, 14]);
        assert_eq!(sessions_running_statements(&processes, &own), [7, 11, 14]);
        assert!(sessions_to_kill(&[], &own).is_empty());
    }

    #[test]
    fn processlist_rows_parse() {
        let rows = vec![Record::new([
            ("Id", some("42")),
            ("User", some("app")),
            ("Host", some("127.0.0.1:5555")),
            ("db", None),
            ("Command", some("Sleep")),
            ("Info", None),
        ])];
        assert_eq!(
            parse_processlist("SHOW PROCESSLIST", &rows).expect("parses"),
            [p(42, "app", "Sleep")]
        );
        let bad = vec![Record::new([("User", some("app"))])];
        let e = parse_processlist("SHOW PROCESSLIST", &bad).expect_err("no Id");
        assert!(e.to_string().contains("Id"), "{e}");
    }

    #[test]
    fn endpoints_display() {
        let tcp = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 3306,
        };
        assert_eq!(tcp.to_string(), "127.0.0.1:3306");
        let v6 = Endpoint::Tcp {
            host: "::1".into(),
            port: 3306,
        };
        assert_eq!(v6.to_string(), "[::1]:3306");
        assert_eq!(
            Endpoint::Socket("/run/mysqld/mysqld.sock".into()).to_string(),
            "/run/mysqld/mysqld.sock"
        );
    }

    #[test]
    fn whole_seconds_round_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
    }
}
