//! The source side of a clone: a hot physical copy of the local server streamed over the
//! agent's API (MMM's mmm_clone snapshot, with no LVM, no SSH and no long global lock).
//!
//! `mariabackup --backup --stream=xbstream` copies the running server; MariaDB's backup
//! stages block DDL for the end of the copy and commits only for the last moment, which the
//! redo log copy interval (10 ms here, 1 s by default) bounds. The lock times are measured
//! from mariabackup's own messages, timestamped as they arrive, and kept in a
//! [`BackupReport`]. Only the replication account may ask for it: that account can
//! already read every row through replication, so the stream gives it nothing more. The
//! password reaches mariabackup through a private options file, never its command line.
//!
//! Connections go through [`crate::mysql_tls::connect`] (TLS when the server refuses a plain
//! login). mariabackup connects over TCP too (`--host`, `--port`); when the local server is
//! known to need TLS it gets `--ssl` (TLS when offered, certificate not verified). Debian's
//! MariaDB 10.11 mariabackup has `ssl` on by default already and reaches a server with
//! `require_secure_transport=ON` without the flag (and one without TLS with it); the flag is
//! for builds whose default is off.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::Stream;
use mmm_config::Secret;
use mysql_async::prelude::Queryable;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use crate::protocol::BackupReport;

/// What both sides of a clone need: the local server, how to run it and the tools.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// This host.
    pub host: String,
    /// The local server (`<host this> ip`, `mysql_port`).
    pub mysql_addr: SocketAddr,
    /// `agent_user`.
    pub mysql_user: String,
    /// `agent_password`.
    pub mysql_password: Secret,
    /// This host's `replication_user`: the account that may ask for a backup.
    pub replication_user: String,
    /// Its password.
    pub replication_password: Secret,
    /// `state_dir`: where the options file and mariabackup's scratch directory go.
    pub state_dir: PathBuf,
    /// `mysql_rcscript`: `stop` and `start` the local server.
    pub rcscript: PathBuf,
    /// The mariabackup program.
    pub mariabackup: PathBuf,
    /// The mbstream program.
    pub mbstream: PathBuf,
    /// Every host's agent (`ip`, `agent_port`), to fetch a copy from.
    pub agents: std::collections::BTreeMap<String, SocketAddr>,
}

/// What to tell the operator when the tools are missing.
pub const INSTALL_HINT: &str = "install Debian's mariadb-backup (apt-get install mariadb-backup)";

/// How long connecting to and querying the local server may take.
const SQL_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the local server with the agent's account.
pub async fn local_conn(s: &CopySettings) -> Result<mysql_async::Conn, String> {
    conn_to(
        &s.mysql_addr.ip().to_string(),
        s.mysql_addr.port(),
        &s.mysql_user,
        &s.mysql_password,
    )
    .await
}

/// A connection to `host:port` with `user` (over TLS when the server demands it).
pub async fn conn_to(
    host: &str,
    port: u16,
    user: &str,
    password: &Secret,
) -> Result<mysql_async::Conn, String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(user.to_string()))
        .pass(Some(password.expose().to_string()))
        .prefer_socket(false);
    match tokio::time::timeout(SQL_TIMEOUT, crate::mysql_tls::connect(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect to MySQL at {host}:{port}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to MySQL at {host}:{port}: no answer within {SQL_TIMEOUT:?}"
        )),
    }
}

/// One string value (`SELECT @@datadir`, ...), bounded by [`SQL_TIMEOUT`].
pub async fn scalar(conn: &mut mysql_async::Conn, query: &str) -> Result<Option<String>, String> {
    match tokio::time::timeout(SQL_TIMEOUT, conn.query_first::<Option<String>, _>(query)).await {
        Ok(Ok(v)) => Ok(v.flatten()),
        Ok(Err(e)) => Err(format!("{query}: {e}")),
        Err(_) => Err(format!("{query}: no answer within {SQL_TIMEOUT:?}")),
    }
}

/// Where the server keeps its data, and the file name prefixes of its binary and relay logs
/// (which a physical copy leaves out).
pub async fn datadir_of(conn: &mut mysql_async::Conn) -> Result<(PathBuf, Vec<String>), String> {
    let datadir = scalar(conn, "SELECT @@datadir")
        .await?
        .ok_or("the server reports no datadir")?;
    let mut logs = Vec::new();
    for var in ["@@log_bin_basename", "@@relay_log_basename"] {
        if let Some(base) = scalar(conn, &format!("SELECT {var}")).await? {
            if let Some(name) = Path::new(&base).file_name() {
                logs.push(name.to_string_lossy().into_owned());
            }
        }
    }
    Ok((
        PathBuf::from(datadir.trim_end_matches('/').to_string()),
        logs,
    ))
}

/// The bytes under `dir`, leaving out top-level files whose names start with one of
/// `skip_prefixes` (binary and relay logs): what a physical copy will roughly send.
pub fn estimate(dir: &Path, skip_prefixes: &[String]) -> u64 {
    fn walk(dir: &Path, skip: &[String], top: bool) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if top && skip.iter().any(|p| name.starts_with(p.as_str())) {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => total += walk(&e.path(), skip, false),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
        total
    }
    walk(dir, skip_prefixes, true)
}

/// Why a backup request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Basic` header (answered 401).
    #[error("no credentials: the replication account is required")]
    Missing,
    /// Not the replication account (answered 403).
    #[error("wrong credentials")]
    Wrong,
}

/// Checks an `Authorization` header against the replication account, in constant time.
pub fn check_basic_auth(
    header: Option<&str>,
    user: &str,
    password: &Secret,
) -> Result<(), AuthError> {
    let encoded = header
        .and_then(|h| h.strip_prefix("Basic "))
        .ok_or(AuthError::Missing)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthError::Wrong)?;
    let expected = format!("{user}:{}", password.expose());
    if bool::from(decoded.ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::Wrong)
    }
}

/// A MySQL option file value, double-quoted with `\` and `"` escaped.
fn option_value(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The options file that gives mariabackup the account (`[client]` and `[mariabackup]`
/// groups), so the password is on no command line.
pub fn credentials_file(user: &str, password: &Secret) -> String {
    let body = format!(
        "user={}\npassword={}\n",
        option_value(user),
        option_value(password.expose())
    );
    format!("[client]\n{body}[mariabackup]\n{body}")
}

/// mariabackup's option for a server that demands TLS: TLS (when the server offers it),
/// the certificate not verified, as for every other connection of the agent.
pub const MARIABACKUP_TLS_ARG: &str = "--ssl";

/// Writes `text` to `path`, readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The lock times of a backup, from mariabackup's messages and when each arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockClock {
    ddl_since: Option<u64>,
    commit_since: Option<u64>,
    /// DDL blocked in total, in ms.
    pub ddl_ms: u64,
    /// Commits blocked in total, in ms.
    pub commit_ms: u64,
    /// The GTID of the copy, from "MySQL binlog position: ... GTID of the last change '...'".
    pub gtid: Option<String>,
}

impl LockClock {
    /// Takes one line of mariabackup's output that arrived at `at_ms`.
    pub fn line(&mut self, at_ms: u64, line: &str) {
        // mariabackup says "Started BACKUP STAGE BLOCK_DDL" (10.11) or "Starting ...".
        if line.contains("BACKUP STAGE BLOCK_DDL")
            && (line.contains("Start") || line.contains("Acquired"))
        {
            self.ddl_since.get_or_insert(at_ms);
        }
        if line.contains("Starting BACKUP STAGE BLOCK_COMMIT")
            || line.contains("Executing FLUSH TABLES WITH READ LOCK")
        {
            self.commit_since.get_or_insert(at_ms);
            self.ddl_since.get_or_insert(at_ms);
        }
        if line.contains("All tables unlocked") || line.contains("Executing UNLOCK TABLES") {
            self.unlock(at_ms);
        }
        if let Some(rest) = line.split("GTID of the last change '").nth(1) {
            if let Some(gtid) = rest.split('\'').next().filter(|g| !g.is_empty()) {
                self.gtid = Some(gtid.to_string());
            }
        }
    }

    /// Everything held is released at `at_ms` (also when the backup ends without saying so).
    pub fn unlock(&mut self, at_ms: u64) {
        if let Some(t) = self.ddl_since.take() {
            self.ddl_ms += at_ms.saturating_sub(t);
        }
        if let Some(t) = self.commit_since.take() {
            self.commit_ms += at_ms.saturating_sub(t);
        }
    }
}

/// A running backup: its estimated size and the stream of its bytes. The report is stored
/// in `report` when the backup ends.
pub struct Backup {
    /// The estimate of the total bytes.
    pub estimated: u64,
    /// The xbstream bytes; ends with an error when mariabackup fails.
    pub stream: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
}

/// Starts `mariabackup --backup --stream=xbstream` of the local server.
pub async fn start(
    s: &CopySettings,
    report: Arc<SyncMutex<Option<BackupReport>>>,
) -> Result<Backup, String> {
    let mut conn = local_conn(s).await?;
    let (datadir, logs) = datadir_of(&mut conn).await?;
    let _ = conn.disconnect().await;
    let estimated = {
        let d = datadir.clone();
        tokio::task::spawn_blocking(move || estimate(&d, &logs))
            .await
            .unwrap_or(0)
    };
    std::fs::create_dir_all(&s.state_dir)
        .map_err(|e| format!("creating {}: {e}", s.state_dir.display()))?;
    let cnf = s.state_dir.join("backup-client.cnf");
    write_private(&cnf, &credentials_file(&s.mysql_user, &s.mysql_password))
        .map_err(|e| format!("writing {}: {e}", cnf.display()))?;
    let scratch = s.state_dir.join("backup-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let mut mariabackup = tokio::process::Command::new(&s.mariabackup);
    mariabackup
        // First: mariabackup reads `--defaults-extra-file` only as its first argument.
        .arg(format!("--defaults-extra-file={}", cnf.display()))
        .arg("--backup")
        .arg("--stream=xbstream")
        // The redo log is copied every 10 ms instead of every second: the end of the backup
        // waits for its last pass with commits blocked (measured: 1 s by default, a few ms so).
        .arg("--log-copy-interval=10")
        .arg(format!("--target-dir={}", scratch.display()))
        .arg(format!("--datadir={}", datadir.display()))
        .arg(format!("--host={}", s.mysql_addr.ip()))
        .arg(format!("--port={}", s.mysql_addr.port()));
    // The connection just made learned whether the server demands TLS.
    if crate::mysql_tls::needs_tls(&s.mysql_addr.ip().to_string(), s.mysql_addr.port()) {
        mariabackup.arg(MARIABACKUP_TLS_ARG);
    }
    let mut child = mariabackup
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("running {}: {e} ({INSTALL_HINT})", s.mariabackup.display()))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("mariabackup's output could not be read".into());
    };
    let started = Instant::now();
    let clock = Arc::new(SyncMutex::new((LockClock::default(), Vec::<String>::new())));
    let stderr_task = tokio::spawn({
        let clock = clock.clone();
        async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let at = started.elapsed().as_millis() as u64;
                let mut c = crate::agent::lock(&clock);
                c.0.line(at, &line);
                c.1.push(line);
                if c.1.len() > 20 {
                    c.1.remove(0);
                }
            }
        }
    });
    tracing::info!(host = %s.host, datadir = %datadir.display(), estimated, "streaming a backup");
    let host = s.host.clone();
    let cleanup = (cnf, scratch);
    let state = StreamState {
        settings: s.clone(),
        reader: Some(tokio_util::io::ReaderStream::with_capacity(
            stdout,
            256 * 1024,
        )),
        child: Some(child),
        stderr_task: Some(stderr_task),
        clock,
        report,
        started,
        bytes: 0,
        host,
        cleanup,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        use futures::StreamExt;
        if let Some(reader) = st.reader.as_mut() {
            match reader.next().await {
                Some(Ok(b)) => {
                    st.bytes += b.len() as u64;
                    return Some((Ok(b), st));
                }
                Some(Err(e)) => {
                    st.reader = None;
                    st.finish(Some(format!("reading mariabackup's output: {e}")))
                        .await;
                    return Some((Err(e), st));
                }
                None => st.reader = None,
            }
        }
        st.child.as_ref()?;
        st.finish(None)
            .await
            .map(|error| (Err(std::io::Error::other(error)), st))
    });
    Ok(Backup {
        estimated,
        stream: Box::pin(stream),
    })
}

/// The state of a backup stream.
struct StreamState {
    settings: CopySettings,
    reader: Option<tokio_util::io::ReaderStream<tokio::process::ChildStdout>>,
    child: Option<tokio::process::Child>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    clock: Arc<SyncMutex<(LockClock, Vec<String>)>>,
    report: Arc<SyncMutex<Option<BackupReport>>>,
    started: Instant,
    bytes: u64,
    host: String,
    cleanup: (PathBuf, PathBuf),
}

impl StreamState {
    /// Waits for mariabackup (killing it after a read error), records the report and
    /// removes the options file; the error, if the backup failed.
    async fn finish(&mut self, read_error: Option<String>) -> Option<String> {
        let mut error = read_error;
        if let Some(mut child) = self.child.take() {
            if error.is_some() {
                let _ = child.kill().await;
            }
            let status = child.wait().await;
            if let Some(t) = self.stderr_task.take() {
                let _ = t.await;
            }
            if error.is_none() {
                match status {
                    Ok(s) if s.success() => {}
                    Ok(s) => {
                        let tail = self
                            .clock
                            .lock()
                            .map(|c| c.1.join("\n"))
                            .unwrap_or_default();
                        error = Some(format!("mariabackup failed ({s}):\n{tail}"));
                    }
                    Err(e) => error = Some(format!("waiting for mariabackup: {e}")),
                }
            }
        }
        let at = self.started.elapsed().as_millis() as u64;
        let mut clock = self.clock.lock().map(|c| c.0.clone()).unwrap_or_default();
        clock.unlock(at);
        let (binlog_state, master) = match error {
            None => after_backup(&self.settings).await,
            Some(_) => (None, None),
        };
        let report = BackupReport {
            bytes: self.bytes,
            duration_ms: at,
            ddl_blocked_ms: clock.ddl_ms,
            commit_blocked_ms: clock.commit_ms,
            gtid: clock.gtid,
            binlog_state,
            master,
            error: error.clone(),
        };
        match &error {
            None => {
                tracing::info!(host = %self.host, bytes = report.bytes, duration_ms = report.duration_ms, commit_blocked_ms = report.commit_blocked_ms, ddl_blocked_ms = report.ddl_blocked_ms, "backup streamed")
            }
            Some(e) => tracing::error!(host = %self.host, error = %e, "backup failed"),
        }
        *crate::agent::lock(&self.report) = Some(report);
        let _ = std::fs::remove_file(&self.cleanup.0);
        let _ = std::fs::remove_dir_all(&self.cleanup.1);
        error
    }
}

/// The server's binary log state just after a backup, and the configured host it replicates
/// from, as far as they can be read.
async fn after_backup(s: &CopySettings) -> (Option<String>, Option<String>) {
    let Ok(mut conn) = local_conn(s).await else {
        return (None, None);
    };
    let state = scalar(&mut conn, "SELECT @@gtid_binlog_state")
        .await
        .ok()
        .flatten();
    let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await.ok().flatten();
    let _ = conn.disconnect().await;
    let master_host: Option<String> = row
        .and_then(|r| r.get_opt::<Option<String>, _>("Master_Host"))
        .and_then(Result::ok)
        .flatten();
    let master = master_host.and_then(|ip| {
        s.agents
            .iter()
            .find(|(_, addr)| addr.ip().to_string() == ip)
            .map(|(name, _)| name.clone())
    });
    (state, master)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_times_come_from_the_stage_messages() {
        let mut c = LockClock::default();
        c.line(100, "[00] 2026-12-04 17:11:40 Starting BACKUP STAGE START");
        c.line(
            900,
            "[00] 2026-12-04 17:11:41 Started BACKUP STAGE BLOCK_DDL",
        );
        c.line(
            950,
            "[00] 2026-12-04 17:11:41 Acquired locks for BACKUP STAGE BLOCK_DDL",
        );
        c.line(
            1400,
            "[00] 2026-12-04 17:11:41 Finished BACKUP STAGE BLOCK_DDL",
        );
        c.line(
            1500,
            "[00] 2026-12-04 17:11:41 Starting BACKUP STAGE BLOCK_COMMIT",
        );
        c.line(1540, "[00] 2026-12-04 17:11:41 Executing BACKUP STAGE END");
        c.line(1560, "[00] 2026-12-04 17:11:41 All tables unlocked");
        c.line(
            1570,
            "[00] 2026-12-04 17:11:41 MySQL binlog position: filename 'mysql-bin.000001', position '780', GTID of the last change '0-7-3,1-2-9'",
        );
        assert_eq!(c.ddl_ms, 660);
        assert_eq!(c.commit_ms, 60);
        assert_eq!(c.gtid.as_deref(), Some("0-7-3,1-2-9"));
    }

    #[test]
    fn a_global_read_lock_counts_as_blocked_commits_and_an_unfinished_one_ends_with_the_backup() {
        let mut c = LockClock::default();
        c.line(10, "Executing FLUSH TABLES WITH READ LOCK...");
        c.unlock(260);
        assert_eq!((c.commit_ms, c.ddl_ms), (250, 250));
    }

    #[test]
    fn only_the_replication_account_may_ask_for_a_backup() {
        let pw = Secret::new("re'pl\\pw#1");
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("repl:re'pl\\pw#1")
        );
        assert_eq!(check_basic_auth(Some(&good), "repl", &pw), Ok(()));
        assert_eq!(check_basic_auth(None, "repl", &pw), Err(AuthError::Missing));
        assert_eq!(
            check_basic_auth(Some("Bearer x"), "repl", &pw),
            Err(AuthError::Missing)
        );
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("repl:guess")
        );
        assert_eq!(
            check_basic_auth(Some(&wrong), "repl", &pw),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            check_basic_auth(Some("Basic !!!"), "repl", &pw),
            Err(AuthError::Wrong)
        );
    }

    #[test]
    fn the_credentials_file_quotes_the_password() {
        let f = credentials_file("agent", &Secret::new("a\"b\\c#d"));
        assert!(f.contains("password=\"a\\\"b\\\\c#d\"\n"), "{f}");
        assert!(f.starts_with("[client]\n") && f.contains("[mariabackup]\n"));
    }

    #[test]
    fn the_estimate_leaves_out_binary_and_relay_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ibdata1"), vec![0u8; 1000]).expect("write");
        std::fs::write(dir.path().join("mysql-bin.000001"), vec![0u8; 500]).expect("write");
        std::fs::write(dir.path().join("relay-bin.000002"), vec![0u8; 300]).expect("write");
        std::fs::create_dir(dir.path().join("db")).expect("mkdir");
        std::fs::write(dir.path().join("db").join("t.ibd"), vec![0u8; 24]).expect("write");
        let skip = vec!["mysql-bin".to_string(), "relay-bin".to_string()];
        assert_eq!(estimate(dir.path(), &skip), 1024);
    }
}
