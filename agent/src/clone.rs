//! Rebuilding this host from another one (MMM's mmm_clone, and `mmm_control rejoin
//! --reclone`), done by the agents: the source's agent streams a hot physical copy
//! (`backup`), this agent unpacks it (`mbstream`) into a staging directory beside the data
//! directory and prepares it (`mariabackup --prepare`). Only then does it stop the local
//! server (`mysql_rcscript stop`), swap the directories, start the server on the copy and
//! point it at its master by GTID (the copy's position becomes `gtid_binlog_state` and
//! `gtid_slave_pos`), and check that replication runs.
//!
//! Until the swap the host is untouched: a failed or interrupted copy leaves only the staging
//! directory, marked by a file named [`INCOMPLETE_MARKER`], which the next clone removes. A
//! server that does not start on the copy gets its old data directory back. The host must not
//! be the writer nor hold roles, checked at the start and again, under the agent's
//! maintenance guard, before the server is stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use mmm_core::api::ApiError;
use mmm_transport::{Channel, Transport};
use mysql_async::prelude::Queryable;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::agent::{lock, Agent, Refusal};
use crate::backup::{self, CopySettings};
use crate::monitors::Monitors;
use crate::mysql::quote;
use crate::ops::{BinlogPos, Mysql, Source, Vips};
use crate::protocol::{
    BackupReport, BackupStatus, CloneMode, ClonePhase, CloneProgress, CloneRequest, Repoint,
    RepointReply, BACKUP_PATH, BACKUP_REPORT_PATH, CLONE_PATH, ESTIMATE_HEADER, REPOINT_PATH,
};

/// Where `mmm_backup` keeps its notes in a backup directory (MMM's `_mmm`).
pub const MMM_DIR: &str = "_mmm";
/// The `BackupStatus` in a backup directory.
pub const STATUS_FILE: &str = "_mmm/status.json";
/// The file that marks a staging directory as an unfinished copy.
pub const INCOMPLETE_MARKER: &str = "MMM_CLONE_INCOMPLETE";
/// How long the init script may take to stop or start the server.
const RCSCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the server may take to answer after its init script returned.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long replication may take to run once pointed.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(60);
/// What is kept free beyond the copy's estimated size.
const SPACE_MARGIN: u64 = 64 * 1024 * 1024;
/// Connecting to a server for a statement of the clone job.
const SQL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One query of the clone job that should answer at once.
const SQL_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A clone in progress or finished.
struct Job {
    progress: CloneProgress,
    started: Instant,
    copy_started: Option<Instant>,
    copy_ended: Option<Instant>,
}

/// Both sides of cloning on one agent: the backup it streams to others and the clone onto
/// its own host.
pub struct Cloner {
    settings: CopySettings,
    /// TLS (when configured) for fetching the backup from the source's agent.
    transport: Transport,
    sources: BTreeMap<String, Source>,
    job: SyncMutex<Option<Job>>,
    report: Arc<SyncMutex<Option<BackupReport>>>,
    streaming: Arc<tokio::sync::Semaphore>,
}

fn refusal(code: StatusCode, error: impl Into<String>) -> Response {
    crate::server::error_response(code, error.into())
}

impl Cloner {
    /// A cloner with the copy settings and every host as a replication source.
    pub fn new(
        settings: CopySettings,
        sources: BTreeMap<String, Source>,
        transport: Transport,
    ) -> Self {
        Cloner {
            settings,
            transport,
            sources,
            job: SyncMutex::new(None),
            report: Arc::new(SyncMutex::new(None)),
            streaming: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// The clone's progress now, if one was started since the agent started.
    pub fn progress(&self) -> Option<CloneProgress> {
        let job = lock(&self.job);
        let job = job.as_ref()?;
        let mut p = job.progress.clone();
        if !p.finished() {
            p.elapsed_ms = job.started.elapsed().as_millis() as u64;
        }
        if let Some(start) = job.copy_started {
            let end = job.copy_ended.unwrap_or_else(Instant::now);
            p.copy_ms = end.saturating_duration_since(start).as_millis() as u64;
        }
        Some(p)
    }

    fn update(&self, f: impl FnOnce(&mut Job)) {
        if let Some(job) = lock(&self.job).as_mut() {
            f(job);
        }
    }

    fn phase(&self, phase: ClonePhase) {
        tracing::info!(host = %self.settings.host, phase = crate::protocol::phase_name(phase), "clone");
        self.update(|j| j.progress.phase = phase);
    }

    /// The copy begins, of about `estimated` bytes.
    fn copy_starts(&self, estimated: Option<u64>) {
        self.update(|j| {
            j.progress.estimated_bytes = estimated;
            j.copy_started = Some(Instant::now());
        });
    }

    fn did(&self, what: impl Into<String>) {
        let what = what.into();
        tracing::info!(host = %self.settings.host, "clone: {what}");
        self.update(|j| j.progress.done.push(what));
    }

    /// Starts a clone onto this host; refused when one runs, the request is not for this
    /// host, names an unknown source or this host, or the host may not be rebuilt now.
    pub async fn start<M, V, N>(
        self: &Arc<Self>,
        agent: &Arc<Agent<M, V, N>>,
        req: CloneRequest,
    ) -> Result<CloneProgress, (StatusCode, String)>
    where
        M: Mysql + 'static,
        V: Vips + 'static,
        N: Monitors + 'static,
    {
        let bad = |e: String| (StatusCode::BAD_REQUEST, e);
        if req.host != self.settings.host {
            return Err(bad(Refusal::WrongHost {
                this: self.settings.host.clone(),
                asked: req.host.clone(),
            }
            .to_string()));
        }
        if req.source == self.settings.host && req.from_dir.is_none() {
            return Err(bad(format!("'{}' cannot be cloned from itself", req.host)));
        }
        let needs_source = req.from_dir.is_none() || req.mode != CloneMode::Single;
        if needs_source
            && (!self.sources.contains_key(&req.source)
                || !self.settings.agents.contains_key(&req.source))
        {
            return Err(bad(format!(
                "'{}' is not a host of the configuration",
                req.source
            )));
        }
        if let Some(dir) = &req.from_dir {
            if !dir.is_absolute() || !dir.join("xtrabackup_checkpoints").is_file() {
                return Err(bad(format!(
                    "{} is not a backup directory (made by mmm_backup: an absolute path holding xtrabackup_checkpoints)",
                    dir.display()
                )));
            }
        }
        agent
            .maintenance()
            .await
            .map(drop)
            .map_err(|e| (StatusCode::CONFLICT, e))?;
        {
            let mut job = lock(&self.job);
            if job.as_ref().is_some_and(|j| !j.progress.finished()) {
                return Err((
                    StatusCode::CONFLICT,
                    format!("a clone onto {} is already running", self.settings.host),
                ));
            }
            *job = Some(Job {
                progress: CloneProgress {
                    host: req.host.clone(),
                    source: req.source.clone(),
                    mode: req.mode,
                    phase: ClonePhase::Copying,
                    bytes: 0,
                    estimated_bytes: None,
                    elapsed_ms: 0,
                    copy_ms: 0,
                    master: None,
                    gtid: None,
                    source_report: None,
                    done: Vec::new(),
                    error: None,
                },
                started: Instant::now(),
                copy_started: None,
                copy_ended: None,
            });
        }
        tracing::warn!(host = %req.host, source = %req.source, mode = %req.mode, "clone started: this host's data will be replaced");
        let me = self.clone();
        let agent = agent.clone();
        tokio::spawn(async move {
            let result = me.run(&agent, &req).await;
            me.update(|j| {
                j.progress.elapsed_ms = j.started.elapsed().as_millis() as u64;
                match &result {
                    Ok(()) => j.progress.phase = ClonePhase::Done,
                    Err(e) => {
                        j.progress.phase = ClonePhase::Failed;
                        j.progress.error = Some(e.clone());
                    }
                }
            });
            match result {
                Ok(()) => {
                    tracing::warn!(host = %req.host, source = %req.source, "clone finished: replicating")
                }
                Err(e) => {
                    tracing::error!(host = %req.host, source = %req.source, error = %e, "clone failed")
                }
            }
        });
        self.progress().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the clone vanished".into(),
        ))
    }

    async fn run<M, V, N>(&self, agent: &Agent<M, V, N>, req: &CloneRequest) -> Result<(), String>
    where
        M: Mysql,
        V: Vips,
        N: Monitors,
    {
        let mut conn = backup::local_conn(&self.settings).await?;
        let version = backup::scalar(&mut conn, "SELECT @@version")
            .await?
            .unwrap_or_default();
        if !version.to_ascii_lowercase().contains("mariadb") {
            return Err(format!(
                "{} runs {version}: cloning uses mariabackup and needs MariaDB (MySQL with xtrabackup is not supported)",
                self.settings.host
            ));
        }
        let (datadir, _) = backup::datadir_of(&mut conn).await?;
        let _ = conn.disconnect().await;
        let master = self.master_for(req).await?;
        self.update(|j| j.progress.master = master.clone());
        let dirs = Dirs::beside(&datadir)?;
        dirs.clear_leftovers()?;

        let stage = match dirs.create_stage() {
            Err(e) => Err(e),
            Ok(()) => match &req.from_dir {
                Some(dir) => self.copy_dir(dir, &dirs).await,
                None => self.copy(req, &dirs).await,
            },
        };
        let (gtid, binlog_state) = match stage {
            Ok(copied) => copied,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dirs.stage);
                return Err(e);
            }
        };
        let mut m = match agent.maintenance().await {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dirs.stage);
                return Err(format!("{e}: the copy was discarded and nothing changed"));
            }
        };
        self.phase(ClonePhase::Stopping);
        self.rcscript("stop").await?;
        self.wait_server(false, START_TIMEOUT).await?;
        self.did("stopped mysqld");
        self.phase(ClonePhase::Installing);
        dirs.install()?;
        self.did(format!(
            "installed the copy in {} (the old data is in {} until the end)",
            dirs.datadir.display(),
            dirs.old.display()
        ));
        self.phase(ClonePhase::Starting);
        if let Err(e) = self.start_server().await {
            return Err(self.roll_back(&dirs, e).await);
        }
        self.did("started mysqld on the copy");
        self.phase(ClonePhase::Replicating);
        let start = self.adopt_position(&gtid, &binlog_state).await?;
        self.did(format!(
            "set gtid_slave_pos to {gtid} and gtid_binlog_state to {binlog_state}"
        ));
        if let Some(master) = &master {
            let how = agent.repoint_now(&mut m, master).await?;
            drop(m);
            self.did(how);
            self.wait_replicating().await?;
            self.did(format!("replication from {master} runs"));
        } else {
            drop(m);
            self.did("no replication: a standalone server");
        }
        if req.mode == CloneMode::MasterMaster {
            let source = self
                .sources
                .get(&req.source)
                .ok_or_else(|| format!("'{}' is not a host of the configuration", req.source))?;
            self.point_back(source, &start).await?;
        }
        let old = dirs.old.clone();
        match tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&old)).await {
            Ok(Ok(())) => self.did(format!("removed {}", dirs.old.display())),
            Ok(Err(e)) => self.did(format!("could not remove {}: {e}", dirs.old.display())),
            Err(e) => self.did(format!("could not remove {}: {e}", dirs.old.display())),
        }
        Ok(())
    }

    /// The master the clone will replicate from: the source, or (slave-slave) the source's
    /// own master, or none (single). The source must answer, and in slave-slave mode
    /// replicate.
    async fn master_for(&self, req: &CloneRequest) -> Result<Option<String>, String> {
        if req.mode == CloneMode::Single {
            return Ok(None);
        }
        let source = self
            .sources
            .get(&req.source)
            .ok_or_else(|| format!("'{}' is not a host of the configuration", req.source))?;
        let mut conn = backup::conn_to(
            &source.host,
            source.port,
            &source.agent_user,
            &source.agent_password,
        )
        .await
        .map_err(|e| format!("the source {} is not healthy: {e}", req.source))?;
        let row: Option<mysql_async::Row> = conn
            .query_first("SHOW SLAVE STATUS")
            .await
            .map_err(|e| format!("SHOW SLAVE STATUS on {}: {e}", req.source))?;
        let _ = conn.disconnect().await;
        let field = |r: &mysql_async::Row, name: &str| -> String {
            r.get_opt::<Option<String>, _>(name)
                .and_then(Result::ok)
                .flatten()
                .unwrap_or_default()
        };
        match req.mode {
            CloneMode::Single => Ok(None),
            CloneMode::MasterMaster | CloneMode::MasterSlave => Ok(Some(req.source.clone())),
            CloneMode::SlaveSlave => {
                let row = row.ok_or_else(|| {
                    format!(
                        "{} is not a slave: use --clone-mode master-slave",
                        req.source
                    )
                })?;
                if field(&row, "Slave_IO_Running") != "Yes"
                    || field(&row, "Slave_SQL_Running") != "Yes"
                {
                    return Err(format!(
                        "the source {} is not healthy: its replication does not run",
                        req.source
                    ));
                }
                let host = field(&row, "Master_Host");
                let port: u16 = field(&row, "Master_Port").parse().unwrap_or(3306);
                self.sources
                    .values()
                    .find(|s| s.host == host && s.port == port)
                    .map(|s| Some(s.name.clone()))
                    .ok_or_else(|| {
                        format!(
                            "{} replicates from {host}:{port}, which is no host of the configuration",
                            req.source
                        )
                    })
            }
        }
    }

    /// Receives the copy into the staging directory and prepares it; its GTID position and
    /// the binary log state that goes with it.
    async fn copy(&self, req: &CloneRequest, dirs: &Dirs) -> Result<(String, String), String> {
        let source = &self.sources[&req.source];
        let addr = self.settings.agents[&req.source];
        // The backup routes take the replication account by basic authentication, which
        // replaces the agents' token this client would otherwise send.
        let client = self
            .transport
            .client(Channel::Agent)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| format!("building an HTTP client: {e}"))?;
        let url = self.transport.url(addr, BACKUP_PATH);
        let resp = client
            .get(&url)
            .basic_auth(
                &source.replication_user,
                Some(source.replication_password.expose()),
            )
            .send()
            .await
            .map_err(|e| format!("asking {}'s agent for a backup: {e}", req.source))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Err(format!(
                "{}'s agent refused the backup ({status}): {body}",
                req.source
            ));
        }
        let estimated = resp
            .headers()
            .get(ESTIMATE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(total) = estimated {
            dirs.check_space(total)?;
        }
        self.copy_starts(estimated);
        let mut mbstream = tokio::process::Command::new(&self.settings.mbstream)
            .arg("-x")
            .arg("-C")
            .arg(&dirs.stage)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "running {}: {e} ({})",
                    self.settings.mbstream.display(),
                    backup::INSTALL_HINT
                )
            })?;
        let mut stdin = mbstream
            .stdin
            .take()
            .ok_or("mbstream's input could not be opened")?;
        let mut body = resp.bytes_stream();
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = mbstream.kill().await;
                    return Err(format!(
                        "the copy from {} broke off after {received} bytes: {e}",
                        req.source
                    ));
                }
            };
            if let Err(e) = stdin.write_all(&chunk).await {
                let _ = mbstream.kill().await;
                return Err(format!(
                    "writing the copy into {}: {e}",
                    dirs.stage.display()
                ));
            }
            received += chunk.len() as u64;
            self.update(|j| j.progress.bytes = received);
        }
        drop(stdin);
        let out = mbstream
            .wait_with_output()
            .await
            .map_err(|e| format!("waiting for mbstream: {e}"))?;
        self.update(|j| j.copy_ended = Some(Instant::now()));
        if !out.status.success() {
            return Err(format!(
                "mbstream failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let report: Option<BackupReport> = match client
            .get(self.transport.url(addr, BACKUP_REPORT_PATH))
            .basic_auth(
                &source.replication_user,
                Some(source.replication_password.expose()),
            )
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            _ => None,
        };
        // The source's binary log state, read by its agent just after the backup.
        let later_state = report.as_ref().and_then(|r| r.binlog_state.clone());
        self.update(|j| j.progress.source_report = report);
        self.did(format!("received {received} bytes from {}", req.source));
        self.prepare_stage(dirs, &req.source, later_state.as_deref())
            .await
    }

    /// Copies a backup directory made by `mmm_backup` into the staging directory and
    /// prepares it; its GTID position and binary log state (recorded by `mmm_backup`).
    async fn copy_dir(&self, dir: &Path, dirs: &Dirs) -> Result<(String, String), String> {
        let status: Option<BackupStatus> = std::fs::read(dir.join(STATUS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let total = {
            let d = dir.to_path_buf();
            tokio::task::spawn_blocking(move || backup::estimate(&d, &[]))
                .await
                .unwrap_or(0)
        };
        dirs.check_space(total)?;
        self.copy_starts(Some(total));
        let (from, to) = (dir.to_path_buf(), dirs.stage.clone());
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let copying = tokio::task::spawn_blocking({
            let counter = counter.clone();
            move || copy_backup(&from, &to, &counter)
        });
        tokio::pin!(copying);
        let copied = loop {
            tokio::select! {
                done = &mut copying => break done,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    let n = counter.load(std::sync::atomic::Ordering::Relaxed);
                    self.update(|j| j.progress.bytes = n);
                }
            }
        };
        copied
            .map_err(|e| format!("copying {}: {e}", dir.display()))?
            .map_err(|e| format!("copying {}: {e}", dir.display()))?;
        let n = counter.load(std::sync::atomic::Ordering::Relaxed);
        self.update(|j| {
            j.progress.bytes = n;
            j.copy_ended = Some(Instant::now());
            j.progress.source_report = status.as_ref().and_then(|s| s.report.clone());
        });
        self.did(format!("copied {n} bytes from {}", dir.display()));
        let state = status.map(|s| s.binlog_state);
        self.prepare_stage(dirs, &dir.display().to_string(), state.as_deref())
            .await
    }

    /// Prepares the copy in the staging directory (`mariabackup --prepare`); its GTID
    /// position and the binary log state for it, from the source's state read after it.
    async fn prepare_stage(
        &self,
        dirs: &Dirs,
        from: &str,
        later_state: Option<&str>,
    ) -> Result<(String, String), String> {
        self.phase(ClonePhase::Preparing);
        let out = tokio::process::Command::new(&self.settings.mariabackup)
            .arg("--prepare")
            .arg(format!("--target-dir={}", dirs.stage.display()))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| {
                format!(
                    "running {}: {e} ({})",
                    self.settings.mariabackup.display(),
                    backup::INSTALL_HINT
                )
            })?;
        if !out.status.success() {
            return Err(format!(
                "mariabackup --prepare failed ({}): {}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 10)
            ));
        }
        self.did("prepared the copy");
        let gtid = binlog_info(&dirs.stage)?.ok_or_else(|| {
            format!("the copy carries no binary log position: {from} must run with log_bin")
        })?;
        self.update(|j| j.progress.gtid = Some(gtid.clone()));
        let state = binlog_state_of_copy(&gtid, later_state);
        Ok((gtid, state))
    }

    /// Runs `mysql_rcscript <action>`.
    async fn rcscript(&self, action: &str) -> Result<(), String> {
        let script = &self.settings.rcscript;
        let run = tokio::process::Command::new(script)
            .arg(action)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(RCSCRIPT_TIMEOUT, run).await {
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => Err(format!(
                "{} {action} failed ({}): {}",
                script.display(),
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 5)
            )),
            Ok(Err(e)) => Err(format!(
                "running {} {action}: {e} (set mysql_rcscript)",
                script.display()
            )),
            Err(_) => Err(format!(
                "{} {action} did not finish within {RCSCRIPT_TIMEOUT:?}",
                script.display()
            )),
        }
    }

    /// Waits until the local server answers (`up`) or refuses connections (`!up`).
    async fn wait_server(&self, up: bool, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let answers = match backup::local_conn(&self.settings).await {
                Ok(c) => {
                    let _ = c.disconnect().await;
                    true
                }
                Err(_) => false,
            };
            if answers == up {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the local mysqld {} within {limit:?}",
                    if up {
                        "did not answer"
                    } else {
                        "still answers"
                    }
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn start_server(&self) -> Result<(), String> {
        self.rcscript("start").await?;
        self.wait_server(true, START_TIMEOUT).await
    }

    /// The server did not start on the copy: the old data directory goes back.
    async fn roll_back(&self, dirs: &Dirs, error: String) -> String {
        let _ = self.rcscript("stop").await;
        let failed = dirs.parent.join(format!(".{}.mmm-failed", dirs.name));
        let _ = std::fs::remove_dir_all(&failed);
        let moved = std::fs::rename(&dirs.datadir, &failed)
            .and_then(|()| std::fs::rename(&dirs.old, &dirs.datadir));
        match moved {
            Ok(()) => {
                let restarted = match self.start_server().await {
                    Ok(()) => "and mysqld runs on it again".to_string(),
                    Err(e) => format!("but mysqld does not start on it either: {e}"),
                };
                format!(
                    "mysqld did not start on the copy ({error}); the old data directory is back in place {restarted}; the copy is in {}",
                    failed.display()
                )
            }
            Err(e) => format!(
                "mysqld did not start on the copy ({error}), and putting the old data directory back failed ({e}): the old data is in {}",
                dirs.old.display()
            ),
        }
    }

    /// The copy's position becomes the server's slave position and its binary log state the
    /// source's at that position, so it replicates from there and can serve replicas of its
    /// own (its peer included) though it has no binary log yet.
    /// Returns where its binary log begins.
    async fn adopt_position(&self, gtid: &str, binlog_state: &str) -> Result<BinlogPos, String> {
        let mut conn = backup::local_conn(&self.settings).await?;
        for sql in [
            "STOP SLAVE".to_string(),
            "RESET SLAVE ALL".to_string(),
            "RESET MASTER".to_string(),
            format!("SET GLOBAL gtid_binlog_state = {}", quote(binlog_state)),
            format!("SET GLOBAL gtid_slave_pos = {}", quote(gtid)),
            "SET GLOBAL read_only = 1".to_string(),
        ] {
            conn.query_drop(&sql)
                .await
                .map_err(|e| format!("{sql}: {e}"))?;
        }
        let status: Option<mysql_async::Row> = conn
            .query_first("SHOW MASTER STATUS")
            .await
            .map_err(|e| format!("SHOW MASTER STATUS: {e}"))?;
        let _ = conn.disconnect().await;
        let status = status.ok_or("SHOW MASTER STATUS: no binary log (log_bin is off)")?;
        let file: Option<String> = status.get_opt("File").and_then(Result::ok);
        let pos: Option<u64> = status.get_opt("Position").and_then(Result::ok);
        match (file, pos) {
            (Some(file), Some(pos)) => Ok(BinlogPos { file, pos }),
            _ => Err("SHOW MASTER STATUS: no File/Position".into()),
        }
    }

    /// Waits until both replication threads run, with no error.
    async fn wait_replicating(&self) -> Result<(), String> {
        let deadline = Instant::now() + REPLICATION_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Ok(mut conn) = backup::local_conn(&self.settings).await {
                let row: Result<Option<mysql_async::Row>, _> =
                    conn.query_first("SHOW SLAVE STATUS").await;
                let _ = conn.disconnect().await;
                if let Ok(Some(row)) = row {
                    let f = |n: &str| -> String {
                        row.get_opt::<Option<String>, _>(n)
                            .and_then(Result::ok)
                            .flatten()
                            .unwrap_or_default()
                    };
                    if f("Slave_IO_Running") == "Yes" && f("Slave_SQL_Running") == "Yes" {
                        return Ok(());
                    }
                    last = format!(
                        "IO thread {}, SQL thread {}; {} {}",
                        f("Slave_IO_Running"),
                        f("Slave_SQL_Running"),
                        f("Last_IO_Error"),
                        f("Last_SQL_Error")
                    );
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "replication does not run after {REPLICATION_TIMEOUT:?}: {}",
                    last.trim()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// master-master: the source replicates from the clone. Its replication is set up
    /// afresh: the relay log it kept from the host's former data (errant transactions, say)
    /// is purged, and it starts where the clone's binary log began (`start`, read when the
    /// clone's position was set): everything the clone logs from there on came from the
    /// source itself. By file and position: by GTID the source would ask either for what it
    /// applied from its peer long ago, which that binary log does not reach back to, or for
    /// its own latest writes, which the clone may not have received yet.
    async fn point_back(&self, source: &Source, start: &BinlogPos) -> Result<(), String> {
        let this = self
            .sources
            .get(&self.settings.host)
            .ok_or_else(|| format!("'{}' is not in the configuration", self.settings.host))?;
        let mut conn = backup::conn_to(
            &source.host,
            source.port,
            &source.agent_user,
            &source.agent_password,
        )
        .await?;
        // The source logs in to the clone as its replication account: over TLS when the
        // clone's server requires it.
        let ssl = crate::mysql::replication_ssl(this, SQL_CONNECT_TIMEOUT, SQL_QUERY_TIMEOUT).await;
        let change = format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1, MASTER_LOG_FILE={}, MASTER_LOG_POS={}, MASTER_USE_GTID=no{}",
            quote(&this.host),
            this.port,
            quote(&this.replication_user),
            quote(this.replication_password.expose()),
            quote(&start.file),
            start.pos,
            ssl.clause(),
        );
        let statements = [
            ("STOP SLAVE", "STOP SLAVE"),
            ("RESET SLAVE", "RESET SLAVE"),
            (change.as_str(), "CHANGE MASTER TO ... (password not shown)"),
            ("START SLAVE", "START SLAVE"),
        ];
        for (sql, shown) in statements {
            conn.query_drop(sql).await.map_err(|e| {
                format!(
                    "pointing {} back at {}: {shown}: {e}",
                    source.name, self.settings.host
                )
            })?;
        }
        let _ = conn.disconnect().await;
        self.did(format!(
            "{} replicates from {} from {}:{} on (relay log purged)",
            source.name, self.settings.host, start.file, start.pos
        ));
        Ok(())
    }
}

/// The data directory and its siblings: the staging directory and the old data's place.
struct Dirs {
    datadir: PathBuf,
    parent: PathBuf,
    name: String,
    stage: PathBuf,
    old: PathBuf,
}

impl Dirs {
    fn beside(datadir: &Path) -> Result<Dirs, String> {
        let parent = datadir
            .parent()
            .ok_or_else(|| format!("the data directory {} has no parent", datadir.display()))?
            .to_path_buf();
        let name = datadir
            .file_name()
            .ok_or_else(|| format!("the data directory {} has no name", datadir.display()))?
            .to_string_lossy()
            .into_owned();
        Ok(Dirs {
            stage: parent.join(format!(".{name}.mmm-clone")),
            old: parent.join(format!(".{name}.mmm-old")),
            datadir: datadir.to_path_buf(),
            parent,
            name,
        })
    }

    /// Whether the file system of the data directory has room for a copy of `total` bytes.
    fn check_space(&self, total: u64) -> Result<(), String> {
        let free = free_bytes(&self.parent)?;
        if free < total + SPACE_MARGIN {
            return Err(format!(
                "not enough disk space in {}: the copy needs about {} MiB (plus {} MiB to spare), {} MiB are free",
                self.parent.display(),
                total >> 20,
                SPACE_MARGIN >> 20,
                free >> 20
            ));
        }
        Ok(())
    }

    /// The staging directory, marked as an unfinished copy until it is installed.
    fn create_stage(&self) -> Result<(), String> {
        std::fs::create_dir(&self.stage)
            .map_err(|e| format!("creating {}: {e}", self.stage.display()))?;
        std::fs::write(
            self.stage.join(INCOMPLETE_MARKER),
            b"a copy in progress or interrupted\n",
        )
        .map_err(|e| format!("writing in {}: {e}", self.stage.display()))
    }

    /// Removes an interrupted copy; refuses to go on over old data a clone left behind.
    fn clear_leftovers(&self) -> Result<(), String> {
        if self.stage.exists() {
            std::fs::remove_dir_all(&self.stage).map_err(|e| {
                format!("removing an interrupted copy {}: {e}", self.stage.display())
            })?;
            tracing::warn!(dir = %self.stage.display(), "removed an interrupted copy");
        }
        if self.old.exists() {
            return Err(format!(
                "{} holds the data an earlier clone replaced: move or remove it first",
                self.old.display()
            ));
        }
        Ok(())
    }

    /// The copy replaces the data directory, owned as the old one was.
    fn install(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.datadir)
            .map_err(|e| format!("reading {}: {e}", self.datadir.display()))?;
        std::fs::remove_file(self.stage.join(INCOMPLETE_MARKER))
            .map_err(|e| format!("removing the marker in {}: {e}", self.stage.display()))?;
        std::fs::rename(&self.datadir, &self.old).map_err(|e| {
            format!(
                "moving {} to {}: {e}",
                self.datadir.display(),
                self.old.display()
            )
        })?;
        if let Err(e) = std::fs::rename(&self.stage, &self.datadir) {
            let back = std::fs::rename(&self.old, &self.datadir);
            return Err(format!(
                "moving the copy into {}: {e}{}",
                self.datadir.display(),
                match back {
                    Ok(()) => String::new(),
                    Err(b) => format!("; the old data stays in {} ({b})", self.old.display()),
                }
            ));
        }
        chown_tree(&self.datadir, meta.uid(), meta.gid())
            .map_err(|e| format!("giving {} to its owner: {e}", self.datadir.display()))?;
        std::fs::set_permissions(&self.datadir, meta.permissions())
            .map_err(|e| format!("setting the mode of {}: {e}", self.datadir.display()))
    }
}

/// The files of a backup made by `mmm_backup` (not its notes, [`MMM_DIR`]) copied into `to`,
/// counting the bytes copied in `counter`.
pub fn copy_backup(
    from: &Path,
    to: &Path,
    counter: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    copy_tree_but(from, to, counter, Some(MMM_DIR))
}

/// `cp -a from to`: regular files and directories (modes kept), counting the bytes copied
/// in `counter`.
fn copy_tree(
    from: &Path,
    to: &Path,
    counter: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    copy_tree_but(from, to, counter, None)
}

/// [`copy_tree`] without the top-level entry named `skip`.
fn copy_tree_but(
    from: &Path,
    to: &Path,
    counter: &std::sync::atomic::AtomicU64,
    skip: Option<&str>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if skip.is_some_and(|s| e.file_name() == s) {
            continue;
        }
        copy_entry(&e, &to.join(e.file_name()), counter)?;
    }
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())
}

/// One entry of [`copy_tree`]: a directory copied whole, a regular file, nothing else.
fn copy_entry(
    e: &std::fs::DirEntry,
    target: &Path,
    counter: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    let kind = e.file_type()?;
    if kind.is_dir() {
        copy_tree(&e.path(), target, counter)?;
    } else if kind.is_file() {
        let n = std::fs::copy(e.path(), target)?;
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// `chown -R uid:gid dir` (symbolic links themselves, not their targets).
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            chown_tree(&e.path(), uid, gid)?;
        } else {
            std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// Free bytes for an unprivileged user on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64, String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL byte", dir.display()))?;
    // SAFETY: statvfs(3) with a valid C string and a zeroed struct it fills in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(format!(
            "reading the free space of {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The copy's GTID position from `xtrabackup_binlog_info` (or `mariadb_backup_binlog_info`):
/// `file<TAB>position<TAB>gtid`.
pub fn binlog_info(stage: &Path) -> Result<Option<String>, String> {
    for name in ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"] {
        let path = stage.join(name);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(parse_binlog_info(&text));
        }
    }
    Ok(None)
}

/// The binary log state for a copy at `gtid`, from the source's state read just after it
/// (`core::gtid::BinlogState::at_position`); the position itself when that cannot be read.
pub fn binlog_state_of_copy(gtid: &str, later: Option<&str>) -> String {
    let Ok(position) = mmm_core::gtid::GtidPos::parse(gtid) else {
        return gtid.to_string();
    };
    match later.map(mmm_core::gtid::BinlogState::parse) {
        Some(Ok(state)) => state.at_position(&position).to_string(),
        _ => position.to_string(),
    }
}

/// The GTID field of a binlog info file, when there is one.
pub fn parse_binlog_info(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let gtid = line.split('\t').nth(2)?.trim();
    (!gtid.is_empty()).then(|| gtid.to_string())
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The clone routes: [`BACKUP_PATH`] and [`BACKUP_REPORT_PATH`] (source side, replication
/// account only), [`CLONE_PATH`] (target side).
pub fn router<M, V, N>(agent: Arc<Agent<M, V, N>>, cloner: Arc<Cloner>) -> Router
where
    M: Mysql + 'static,
    V: Vips + 'static,
    N: Monitors + 'static,
{
    Router::new()
        .route(BACKUP_PATH, get(stream_backup::<M, V, N>))
        .route(BACKUP_REPORT_PATH, get(backup_report::<M, V, N>))
        .route(
            CLONE_PATH,
            get(clone_progress::<M, V, N>).post(start_clone::<M, V, N>),
        )
        .route(REPOINT_PATH, axum::routing::post(repoint::<M, V, N>))
        .with_state((agent, cloner))
}

type CloneState<M, V, N> = State<(Arc<Agent<M, V, N>>, Arc<Cloner>)>;

/// The replication account's check: the refusal, logged with the peer's address, if any.
fn unauthorized(cloner: &Cloner, req: &Request) -> Option<Response> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let s = &cloner.settings;
    let e = backup::check_basic_auth(header, &s.replication_user, &s.replication_password).err()?;
    {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(peer = %peer, error = %e, path = %req.uri().path(), "backup request refused");
        match e {
            backup::AuthError::Missing => Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Basic realm=\"mmm_agentd\"")],
                    Json(ApiError {
                        error: e.to_string(),
                    }),
                )
                    .into_response(),
            ),
            backup::AuthError::Wrong => Some(refusal(StatusCode::FORBIDDEN, e.to_string())),
        }
    }
}

async fn stream_backup<M: Mysql, V: Vips, N: Monitors>(
    State((_, cloner)): CloneState<M, V, N>,
    req: Request,
) -> Response {
    if let Some(r) = unauthorized(&cloner, &req) {
        return r;
    }
    let Ok(permit) = cloner.streaming.clone().try_acquire_owned() else {
        return refusal(
            StatusCode::CONFLICT,
            format!("{} is already streaming a backup", cloner.settings.host),
        );
    };
    match backup::start(&cloner.settings, cloner.report.clone()).await {
        Ok(b) => {
            // The permit goes with the stream: one backup at a time.
            let stream = b.stream.map(move |item| {
                let _held = &permit;
                item
            });
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (
                        header::HeaderName::from_static(ESTIMATE_HEADER),
                        b.estimated.to_string(),
                    ),
                ],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(host = %cloner.settings.host, error = %e, "cannot start a backup");
            refusal(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

async fn backup_report<M: Mysql, V: Vips, N: Monitors>(
    State((_, cloner)): CloneState<M, V, N>,
    req: Request,
) -> Response {
    if let Some(r) = unauthorized(&cloner, &req) {
        return r;
    }
    match lock(&cloner.report).clone() {
        Some(r) => Json(r).into_response(),
        None => refusal(StatusCode::NOT_FOUND, "no backup has been streamed"),
    }
}

async fn clone_progress<M: Mysql, V: Vips, N: Monitors>(
    State((_, cloner)): CloneState<M, V, N>,
) -> Response {
    match cloner.progress() {
        Some(p) => Json(p).into_response(),
        None => refusal(
            StatusCode::NOT_FOUND,
            format!(
                "no clone onto {} since its agent started",
                cloner.settings.host
            ),
        ),
    }
}

async fn start_clone<M, V, N>(
    State((agent, cloner)): CloneState<M, V, N>,
    Json(req): Json<CloneRequest>,
) -> Response
where
    M: Mysql + 'static,
    V: Vips + 'static,
    N: Monitors + 'static,
{
    match cloner.start(&agent, req).await {
        Ok(p) => (StatusCode::ACCEPTED, Json(p)).into_response(),
        Err((code, e)) => {
            tracing::warn!(error = %e, "clone refused");
            refusal(code, e)
        }
    }
}

async fn repoint<M: Mysql, V: Vips, N: Monitors>(
    State((agent, cloner)): CloneState<M, V, N>,
    Json(req): Json<Repoint>,
) -> Response {
    if req.host != cloner.settings.host {
        let wrong = Refusal::WrongHost {
            this: cloner.settings.host.clone(),
            asked: req.host.clone(),
        };
        return refusal(StatusCode::BAD_REQUEST, wrong.to_string());
    }
    if req.master == req.host || !cloner.sources.contains_key(&req.master) {
        return refusal(
            StatusCode::BAD_REQUEST,
            format!("'{}' cannot be the master of '{}'", req.master, req.host),
        );
    }
    if lock(&cloner.job)
        .as_ref()
        .is_some_and(|j| !j.progress.finished())
    {
        return refusal(
            StatusCode::CONFLICT,
            format!("a clone onto {} is running", req.host),
        );
    }
    let mut m = match agent.maintenance().await {
        Ok(m) => m,
        Err(e) => return refusal(StatusCode::CONFLICT, e),
    };
    match agent.repoint_now(&mut m, &req.master).await {
        Ok(done) => {
            tracing::warn!(host = %req.host, master = %req.master, "re-pointed on request");
            Json(RepointReply {
                host: req.host,
                done,
            })
            .into_response()
        }
        Err(e) => refusal(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binlog_info_gives_the_gtid_position() {
        assert_eq!(
            parse_binlog_info("mysql-bin.000001\t780\t0-7-3\n").as_deref(),
            Some("0-7-3")
        );
        assert_eq!(
            parse_binlog_info("mysql-bin.000002\t1234\t0-1-9,1-2-5\n").as_deref(),
            Some("0-1-9,1-2-5")
        );
        assert_eq!(parse_binlog_info("mysql-bin.000001\t780\n"), None);
        assert_eq!(parse_binlog_info(""), None);
    }

    #[test]
    fn a_copy_gets_the_sources_binlog_state_at_its_position() {
        assert_eq!(
            binlog_state_of_copy("0-2-150", Some("0-1-100,0-2-160")),
            "0-1-100,0-2-150"
        );
        assert_eq!(binlog_state_of_copy("0-2-150", None), "0-2-150");
        assert_eq!(binlog_state_of_copy("0-2-150", Some("garbage")), "0-2-150");
    }

    #[test]
    fn the_staging_and_old_directories_sit_beside_the_data_directory() {
        let d = Dirs::beside(Path::new("/var/lib/mysql")).expect("dirs");
        assert_eq!(d.stage, Path::new("/var/lib/.mysql.mmm-clone"));
        assert_eq!(d.old, Path::new("/var/lib/.mysql.mmm-old"));
        assert!(Dirs::beside(Path::new("/")).is_err());
    }

    #[test]
    fn an_interrupted_copy_is_removed_and_old_data_stops_the_next_clone() {
        let root = tempfile::tempdir().expect("tempdir");
        let datadir = root.path().join("data");
        std::fs::create_dir(&datadir).expect("mkdir");
        let d = Dirs::beside(&datadir).expect("dirs");
        std::fs::create_dir(&d.stage).expect("mkdir");
        std::fs::write(d.stage.join(INCOMPLETE_MARKER), b"x").expect("write");
        d.clear_leftovers().expect("an interrupted copy is removed");
        assert!(!d.stage.exists());
        std::fs::create_dir(&d.old).expect("mkdir");
        let e = d.clear_leftovers().expect_err("old data is kept");
        assert!(e.contains(".data.mmm-old"), "{e}");
    }

    #[test]
    fn a_copy_larger_than_the_free_space_is_refused_before_anything_is_written() {
        let root = tempfile::tempdir().expect("tempdir");
        let d = Dirs::beside(&root.path().join("data")).expect("dirs");
        d.check_space(1024).expect("a small copy fits");
        let e = d
            .check_space(u64::MAX / 4)
            .expect_err("no disk is that large");
        assert!(e.starts_with("not enough disk space in "), "{e}");
        assert!(!d.stage.exists());
    }

    #[test]
    fn installing_swaps_the_directories_and_keeps_the_old_one() {
        let root = tempfile::tempdir().expect("tempdir");
        let datadir = root.path().join("data");
        std::fs::create_dir(&datadir).expect("mkdir");
        std::fs::write(datadir.join("old-file"), b"old").expect("write");
        let d = Dirs::beside(&datadir).expect("dirs");
        std::fs::create_dir(&d.stage).expect("mkdir");
        std::fs::write(d.stage.join(INCOMPLETE_MARKER), b"x").expect("write");
        std::fs::write(d.stage.join("ibdata1"), b"new").expect("write");
        d.install().expect("installs");
        assert!(datadir.join("ibdata1").exists());
        assert!(
            !datadir.join(INCOMPLETE_MARKER).exists(),
            "the marker is gone"
        );
        assert!(d.old.join("old-file").exists());
        assert!(!d.stage.exists());
    }

    #[test]
    fn progress_gives_rate_and_eta_while_copying() {
        let mut p = CloneProgress {
            host: "db2".into(),
            source: "db1".into(),
            mode: CloneMode::MasterSlave,
            phase: ClonePhase::Copying,
            bytes: 50 * 1024 * 1024,
            estimated_bytes: Some(150 * 1024 * 1024),
            elapsed_ms: 6000,
            copy_ms: 5000,
            master: None,
            gtid: None,
            source_report: None,
            done: vec![],
            error: None,
        };
        assert_eq!(p.rate() as u64, 10 * 1024 * 1024);
        assert_eq!(p.eta_secs(), Some(10));
        assert_eq!(
            p.line(),
            "db2: copying (master-slave from db1), 50.0 MiB of ~150.0 MiB at 10.0 MiB/s, ETA 10 s"
        );
        p.phase = ClonePhase::Preparing;
        assert_eq!(p.eta_secs(), None);
    }

    #[test]
    fn clone_modes_are_spelled_as_in_mmm() {
        for m in CloneMode::ALL {
            assert_eq!(m.name().parse::<CloneMode>(), Ok(m));
            assert_eq!(
                serde_json::to_string(&m).expect("json"),
                format!("\"{}\"", m.name())
            );
        }
        assert!("master".parse::<CloneMode>().is_err());
    }
}
