//! The agent's two hands, behind small traits: the VIPs on the cluster interface and the local
//! MySQL server. The daemon uses the real ones (`vip::NetlinkVips`, `mysql::Server`); the
//! deterministic simulation supplies models with the same contract.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use mmm_config::Secret;
use serde::{Deserialize, Serialize};

/// A VIP operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// The interface does not exist on this host.
    #[error("interface '{0}' does not exist")]
    NoInterface(String),
    /// Only IPv4 VIPs can be announced with gratuitous ARP.
    #[error("{0}: only IPv4 VIPs are supported")]
    NotIpv4(IpAddr),
    /// Netlink refused or failed.
    #[error("netlink: {0}")]
    Netlink(String),
    /// The gratuitous ARP could not be sent.
    #[error("gratuitous ARP for {ip} on '{interface}': {reason}")]
    Arp {
        /// The VIP.
        ip: IpAddr,
        /// The interface.
        interface: String,
        /// What failed.
        reason: String,
    },
}

/// The VIPs on this host's `cluster_interface`.
pub trait Vips: Send + Sync {
    /// Every address now on the interface.
    fn configured(&self) -> impl Future<Output = Result<Vec<IpAddr>, VipError>> + Send;
    /// Puts `ip/32` on the interface if it is absent, then announces it with gratuitous ARP
    /// (requests and replies, several times). `Ok(true)` when it was added, `Ok(false)` when it
    /// was already there (then nothing is sent).
    fn add(&self, ip: IpAddr) -> impl Future<Output = Result<bool, VipError>> + Send;
    /// Takes `ip/32` off the interface if it is there. `Ok(true)` when it was removed.
    fn remove(&self, ip: IpAddr) -> impl Future<Output = Result<bool, VipError>> + Send;
}

/// A MySQL operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    /// The server cannot be reached (refused, reset, timed out): it may be down.
    #[error("cannot connect to MySQL at {addr}: {reason}")]
    Unreachable {
        /// host:port or socket path.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// A statement failed.
    #[error("{statement}: {reason}")]
    Statement {
        /// The statement, without any password.
        statement: String,
        /// The server's error.
        reason: String,
    },
    /// The server answered something this agent cannot use.
    #[error("unexpected answer to {query}: {reason}")]
    Unexpected {
        /// The query.
        query: String,
        /// What was wrong.
        reason: String,
    },
    /// A wait ran out of time.
    #[error("{what} did not finish within {timeout:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The limit.
        timeout: Duration,
    },
}

/// A binary log coordinate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPos {
    /// The binlog file name.
    pub file: String,
    /// The offset in it.
    pub pos: u64,
}

/// What `SHOW SLAVE STATUS` (`SHOW REPLICA STATUS`) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// `Master_Host`.
    pub master_host: String,
    /// `Master_Port`.
    pub master_port: u16,
    /// `Slave_IO_Running` is `Yes`.
    pub io_running: bool,
    /// `Slave_SQL_Running` is `Yes`.
    pub sql_running: bool,
    /// `Seconds_Behind_Master`; `None` when NULL.
    pub seconds_behind: Option<u64>,
    /// `Master_Log_File` / `Read_Master_Log_Pos`: how far the IO thread has received.
    pub received: BinlogPos,
    /// `Relay_Master_Log_File` / `Exec_Master_Log_Pos`: how far the SQL thread has applied.
    pub applied: BinlogPos,
    /// Replicating by GTID (MariaDB `Using_Gtid` is not `No`; MySQL `Auto_Position` is 1).
    pub using_gtid: bool,
    /// `Gtid_IO_Pos` (MariaDB) or `Retrieved_Gtid_Set` (MySQL), when present.
    pub gtid_received: Option<String>,
    /// `Last_IO_Error`, when not empty.
    pub last_io_error: Option<String>,
    /// `Last_SQL_Error`, when not empty.
    pub last_sql_error: Option<String>,
}

/// The local server as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// `@@version`.
    pub version: String,
    /// MariaDB rather than MySQL.
    pub mariadb: bool,
    /// `@@read_only`.
    pub read_only: bool,
    /// `@@super_read_only`, where the server has it (MySQL only).
    pub super_read_only: Option<bool>,
    /// `Uptime` in seconds.
    pub uptime_secs: u64,
    /// `SHOW MASTER STATUS`, when binary logging is on.
    pub binlog: Option<BinlogPos>,
    /// The executed GTID set: `@@gtid_current_pos` (MariaDB) or `@@gtid_executed` (MySQL).
    pub gtid_executed: Option<String>,
    /// The replication source, when this server is a replica.
    pub replica: Option<ReplicaStatus>,
}

/// Where a replica should replicate from, and with which account.
#[derive(Debug, Clone)]
pub struct Source {
    /// The new master's host name in the config (for logs).
    pub name: String,
    /// The address replicas connect to (`<host> ip`).
    pub host: String,
    /// `mysql_port`.
    pub port: u16,
    /// `replication_user`: what the IO thread logs in as, and what the agent logs in as first
    /// to learn whether the source needs TLS for it (`MASTER_SSL=1`).
    pub replication_user: String,
    /// `replication_password`.
    pub replication_password: Secret,
    /// The agent's own account (`agent_user`/`agent_password`), used to read the new master's
    /// `SHOW MASTER STATUS` for the file/position method.
    pub agent_user: String,
    /// See `agent_user`.
    pub agent_password: Secret,
}

/// How a replica is re-pointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepointMethod {
    /// GTID where the servers have it (MariaDB `MASTER_USE_GTID=slave_pos`, MySQL
    /// `MASTER_AUTO_POSITION=1`), else MMM's file/position method.
    Auto,
    /// MMM's method: the new master's current `SHOW MASTER STATUS`.
    FilePosition,
}

/// What a re-pointing did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Repointed {
    /// Already pointed at that source; nothing changed but, if its threads were stopped, a
    /// `START SLAVE`.
    AlreadyThere,
    /// Re-pointed by GTID.
    Gtid,
    /// Re-pointed to this coordinate of the new master.
    FilePosition(BinlogPos),
}

/// What the connection killer did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Killed {
    /// Client sessions killed.
    pub killed: u32,
    /// Passes over the process list.
    pub passes: u32,
}

/// The local MySQL server.
pub trait Mysql: Send + Sync {
    /// A cheap liveness probe (an already open connection's ping, or a fresh connect).
    fn ping(&self) -> impl Future<Output = Result<(), MysqlError>> + Send;
    /// Whether the server's process is known to be gone (its pid file names no live process),
    /// with how that was seen; `None` when it runs or nothing is known. Cheap: the watch asks
    /// before every ping.
    fn process_gone(&self) -> Option<String> {
        None
    }
    /// The server's status: variables, binlog position, replication.
    fn status(&self) -> impl Future<Output = Result<ServerStatus, MysqlError>> + Send;
    /// `read_only` on or off. On: `read_only=1` (and `super_read_only=1` where it exists).
    /// Off: `super_read_only=0` first where it exists, then `read_only=0`.
    fn set_read_only(&self, on: bool) -> impl Future<Output = Result<(), MysqlError>> + Send;
    /// Kills every client session except this one, replication threads and system threads, in
    /// up to `max_kill_retries + 1` passes `pause` apart, as MMM's kill_sql did; stops after a
    /// pass that found nothing left to kill.
    fn kill_client_sessions(
        &self,
        max_kill_retries: u32,
        pause: Duration,
    ) -> impl Future<Output = Result<Killed, MysqlError>> + Send;
    /// Waits until the SQL thread has applied everything the IO thread received
    /// (`MASTER_GTID_WAIT` by GTID, `MASTER_POS_WAIT` otherwise), at most `timeout`.
    /// `Ok(())` at once when the server is not a replica.
    fn wait_relay_applied(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), MysqlError>> + Send;
    /// What this server has executed, as a GTID position (MariaDB: per domain the later of
    /// `gtid_binlog_pos` and `gtid_slave_pos`) or set (MySQL: `@@gtid_executed`); `None`
    /// when it has no GTIDs. A demoted writer reports it so the new writer can wait for it.
    fn executed_position(&self) -> impl Future<Output = Result<Option<String>, MysqlError>> + Send;
    /// MariaDB's `@@gtid_binlog_state`: the last GTID of every server in this server's binary
    /// log; `None` where the server has no such thing (MySQL) or no binary log.
    fn binlog_state(&self) -> impl Future<Output = Result<Option<String>, MysqlError>> + Send {
        async { Ok(None) }
    }
    /// Waits until this server has executed `position` (another server's
    /// [`Mysql::executed_position`]), at most `timeout`.
    fn wait_executed(
        &self,
        position: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), MysqlError>> + Send;
    /// What another host's server (`peer`) has executed once it applied its relay log (at
    /// most `timeout` of waiting), and beyond that what its IO thread has received (a
    /// transaction is acknowledged under semi-sync once it is in the relay log); `None` when
    /// it has no GTIDs. A new writer asks every peer after an unplanned move: one of them may
    /// have received the old writer's last transactions (and acknowledged them) when this host
    /// did not. `connect`: a connect timeout shorter than the usual one.
    fn peer_executed(
        &self,
        peer: &Source,
        connect: Option<Duration>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Option<String>, MysqlError>> + Send;
    /// Fetches from `peer` what it has and this server lacks, until this server has executed
    /// `position` (at most `timeout`), leaving replication as it was.
    fn catch_up_from(
        &self,
        peer: &Source,
        position: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), MysqlError>> + Send;
    /// Makes this server replicate from `source`: `STOP SLAVE`, `CHANGE MASTER TO ...` (by GTID
    /// or at the new master's current binlog position), `START SLAVE`.
    fn repoint(
        &self,
        source: &Source,
        method: RepointMethod,
    ) -> impl Future<Output = Result<Repointed, MysqlError>> + Send;
    /// `START SLAVE` (leaving ADMIN_OFFLINE) or `STOP SLAVE` (entering it).
    fn set_replication(&self, running: bool)
        -> impl Future<Output = Result<(), MysqlError>> + Send;
}
