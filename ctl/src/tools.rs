//! MMM's tools, `mmm_backup`, `mmm_restore` and `mmm_clone`, with MMM's command lines and
//! `mmm_tools.conf`, done through the agents instead of SSH and LVM snapshots.
//!
//! - `mmm_clone --host SRC --clone-mode MODE` runs on the host to rebuild (`this`): its agent
//!   streams a hot copy from SRC's agent and makes the host replicate (`mmm_agent::clone`).
//! - `mmm_backup --host H [--dest-dir D]` runs anywhere: it streams a hot copy from H's agent
//!   into `D/H-<time>/` (`backup_dir` of `<host H>` by default), prepares it and records where
//!   it came from (`_mmm/status.json`). An interrupted backup is left as `D/.H-<time>.incomplete`.
//! - `mmm_restore --src-dir DIR [--mode MODE]` runs on the host to restore: its agent installs
//!   the backup like a clone (the server stopped only once the copy is in place) and, in
//!   master-slave or slave-slave mode, makes it replicate from the backup's host or that
//!   host's master; `data-only` copies the files to `--dest-dir` without touching any server.
//!
//! MMM's copy methods (scp, rdiff, ssh-gz shell commands) are not run: a `--copy-method` other
//! than `mariabackup` is refused with the reason. Progress (bytes, rate, ETA) is printed as
//! the copy goes.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use mmm_agent::protocol::{
    BackupReport, BackupStatus, CloneMode, CloneProgress, CloneRequest, BACKUP_PATH,
    BACKUP_REPORT_PATH, CLONE_PATH, ESTIMATE_HEADER,
};
use mmm_config::{Config, Loader, Program};
use mmm_transport::{Channel, SecretKey, Transport, Want};

use mmm_agent::clone::{MMM_DIR, STATUS_FILE};

use crate::rejoin;
use crate::{EXIT_ERROR, EXIT_OK, EXIT_USAGE};

/// The only copy method: a hot physical copy streamed by mariabackup.
pub const COPY_METHOD: &str = "mariabackup";

/// `--config` of every tool: a file, or a name looked for in MMM's search path.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The tools' configuration (MMM's `mmm_tools.conf`): a path, or a name looked for in
    /// /etc, /etc/mmm, /etc/mysql-mmm.
    #[arg(long, value_name = "FILE", default_value = "mmm_tools")]
    pub config: String,
}

impl ConfigArg {
    /// Loads it, or says on `err` why not (as `program`): `Err` with the exit status.
    fn load_or_say(
        &self,
        program: &str,
        err: &mut dyn Write,
    ) -> std::io::Result<Result<Config, u8>> {
        match self.load() {
            Ok(c) => Ok(Ok(c)),
            Err(e) => {
                writeln!(err, "{program}: {e}")?;
                Ok(Err(EXIT_USAGE))
            }
        }
    }

    /// Loads and validates it for the tools.
    pub fn load(&self) -> Result<Config, String> {
        let loader = Loader::new();
        let path = if Path::new(&self.config).is_file() {
            PathBuf::from(&self.config)
        } else {
            loader.locate(&self.config).ok_or_else(|| {
                format!(
                    "configuration '{}' not found (looked in {}); give --config FILE",
                    self.config,
                    loader
                        .search_path()
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?
        };
        loader
            .load(&path, Program::Tools)
            .map_err(|e| e.to_string())
    }
}

/// `--copy-method`: only mariabackup; MMM's shell methods are refused with the reason.
fn check_copy_method(method: Option<&str>) -> Result<(), String> {
    match method {
        None | Some(COPY_METHOD) => Ok(()),
        Some(other) => Err(format!(
            "copy method '{other}' is not supported: the tools stream a hot copy with mariabackup through the agents (no SSH, no LVM); leave --copy-method out or give '{COPY_METHOD}'"
        )),
    }
}

/// `this` of the configuration.
fn this_host(config: &Config) -> Result<String, String> {
    config
        .this
        .clone()
        .ok_or_else(|| "'this' is not set: name the host this tool runs on".to_string())
}

/// The agent of `host`.
pub(crate) fn agent_of(config: &Config, host: &str) -> Result<SocketAddr, String> {
    let h = config
        .hosts
        .get(host)
        .ok_or_else(|| format!("unknown host '{host}': no <host {host}> section"))?;
    let ip =
        h.ip.ok_or_else(|| format!("<host {host}>: 'ip' is not set"))?;
    Ok(SocketAddr::new(ip, h.agent_port))
}

/// An HTTP client for the agents, with their token (and TLS when configured) from
/// `<socket>`.
pub struct AgentLink {
    /// The client.
    pub http: reqwest::blocking::Client,
    transport: Transport,
}

impl AgentLink {
    /// A client for the agents named in `config`; requests end after `timeout` (`None`: no
    /// limit, for streams).
    pub fn new(config: &Config, timeout: Option<Duration>) -> Result<AgentLink, String> {
        let transport = Transport::load(&config.socket, &[(SecretKey::Agent, Want::Required)])
            .map_err(|e| e.to_string())?;
        let http = transport
            .blocking_client(Channel::Agent)
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(AgentLink { http, transport })
    }

    /// The URL of `path` on the agent at `addr`.
    pub fn url(&self, addr: SocketAddr, path: &str) -> String {
        self.transport.url(addr, path)
    }
}

/// Starts a clone (or restore) on the agent of `req.host` and follows it to its end.
fn run_on_agent(config: &Config, req: &CloneRequest, out: &mut dyn Write) -> std::io::Result<u8> {
    let addr = match agent_of(config, &req.host) {
        Ok(a) => a,
        Err(e) => {
            writeln!(out, "ERROR: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let link = match AgentLink::new(config, Some(Duration::from_secs(30))) {
        Ok(c) => c,
        Err(e) => {
            writeln!(out, "ERROR: {e}")?;
            return Ok(EXIT_ERROR);
        }
    };
    let sent = link.http.post(link.url(addr, CLONE_PATH)).json(req);
    if let Err(e) = rejoin::agent_call::<CloneProgress>(addr, sent) {
        writeln!(out, "ERROR: {}", e.text)?;
        return Ok(EXIT_ERROR);
    }
    let end = rejoin::follow(&link, addr, out)?;
    rejoin::report(&req.host, &req.source, req.from_dir.is_some(), end, out)
}

/// `mmm_clone`'s command line (MMM's).
#[derive(Debug, Parser)]
#[command(
    name = "mmm_clone",
    version,
    about = "Rebuild this host (the configuration's 'this') from another one: its data is replaced by a hot copy of the other host's, then it replicates (MMM's mmm_clone, through the agents)"
)]
pub struct CloneCli {
    #[command(flatten)]
    config: ConfigArg,
    /// The host to copy from.
    #[arg(long, value_name = "HOST")]
    host: String,
    /// master-master (replicate from HOST, and HOST from this host), master-slave (replicate
    /// from HOST) or slave-slave (replicate from HOST's master).
    #[arg(long, value_name = "MODE", value_parser = parse_clone_mode)]
    clone_mode: CloneMode,
    /// Only 'mariabackup'.
    #[arg(long, value_name = "METHOD")]
    copy_method: Option<String>,
    /// Not supported: the copy always replaces the local server's data directory.
    #[arg(long, value_name = "DIR")]
    dest_dir: Option<PathBuf>,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    dry_run: bool,
}

fn parse_clone_mode(s: &str) -> Result<CloneMode, String> {
    s.parse()
}

/// `mmm_clone`.
pub fn clone_main(cli: CloneCli, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<u8> {
    let config = match cli.config.load_or_say("mmm_clone", err)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let checked = check_copy_method(cli.copy_method.as_deref())
        .and_then(|()| match &cli.dest_dir {
            Some(d) => Err(format!(
                "--dest-dir {} is not supported: the copy replaces the local server's data directory, wherever its datadir is",
                d.display()
            )),
            None => Ok(()),
        })
        .and_then(|()| this_host(&config))
        .and_then(|this| {
            agent_of(&config, &cli.host)?;
            agent_of(&config, &this)?;
            if this == cli.host {
                return Err(format!("'{this}' cannot be cloned from itself"));
            }
            Ok(this)
        });
    let this = match checked {
        Ok(t) => t,
        Err(e) => {
            writeln!(err, "mmm_clone: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    if cli.dry_run {
        writeln!(
            out,
            "Would rebuild '{this}' from '{}' ({}): stream a hot copy from {}'s agent, prepare it beside the data directory, stop mysqld (mysql_rcscript), put the copy in place, start mysqld and replicate{}.",
            cli.host,
            cli.clone_mode,
            cli.host,
            match cli.clone_mode {
                CloneMode::MasterMaster => format!(" from '{}', and point '{}' back at '{this}'", cli.host, cli.host),
                CloneMode::SlaveSlave => format!(" from the master of '{}'", cli.host),
                _ => format!(" from '{}'", cli.host),
            }
        )?;
        return Ok(EXIT_OK);
    }
    let req = CloneRequest {
        host: this,
        source: cli.host,
        mode: cli.clone_mode,
        from_dir: None,
    };
    run_on_agent(&config, &req, out)
}

/// `mmm_backup`'s command line (MMM's).
#[derive(Debug, Parser)]
#[command(
    name = "mmm_backup",
    version,
    about = "Back up a host: a hot copy streamed from its agent into a directory here, prepared, with its GTID position recorded (MMM's mmm_backup, without LVM or SSH)"
)]
pub struct BackupCli {
    #[command(flatten)]
    config: ConfigArg,
    /// The host to back up.
    #[arg(long, value_name = "HOST")]
    host: String,
    /// Only 'mariabackup'.
    #[arg(long, value_name = "METHOD")]
    copy_method: Option<String>,
    /// Where the backup directory goes (default: backup_dir of <host HOST>).
    #[arg(long, value_name = "DIR")]
    dest_dir: Option<PathBuf>,
}

/// `mmm_backup`.
pub fn backup_main(
    cli: BackupCli,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<u8> {
    let config = match cli.config.load_or_say("mmm_backup", err)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let dest = check_copy_method(cli.copy_method.as_deref()).and_then(|()| {
        agent_of(&config, &cli.host)?;
        cli.dest_dir
            .clone()
            .or_else(|| {
                config
                    .hosts
                    .get(&cli.host)
                    .and_then(|h| h.backup_dir.clone())
            })
            .ok_or_else(|| {
                format!(
                    "no destination: give --dest-dir or set backup_dir in <host {}>",
                    cli.host
                )
            })
    });
    let dest = match dest {
        Ok(d) => d,
        Err(e) => {
            writeln!(err, "mmm_backup: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    match backup(&config, &cli.host, &dest, out) {
        Ok((dir, status)) => {
            let report = status.report.clone().unwrap_or_default();
            writeln!(
                out,
                "OK: backup of '{}' in {} ({:.1} MiB; GTID position {}; '{}' blocked commits for {} ms and DDL for {} ms).",
                cli.host,
                dir.display(),
                report.bytes as f64 / 1048576.0,
                status.gtid,
                cli.host,
                report.commit_blocked_ms,
                report.ddl_blocked_ms,
            )?;
            Ok(EXIT_OK)
        }
        Err(e) => {
            writeln!(out, "ERROR: the backup of '{}' failed: {e}", cli.host)?;
            Ok(EXIT_ERROR)
        }
    }
}

/// Streams a backup of `host` into a new directory under `dest`; the directory and its notes.
fn backup(
    config: &Config,
    host: &str,
    dest: &Path,
    out: &mut dyn Write,
) -> Result<(PathBuf, BackupStatus), String> {
    let addr = agent_of(config, host)?;
    let h = &config.hosts[host];
    let (user, password) = match (&h.replication_user, &h.replication_password) {
        (Some(u), Some(p)) => (u.clone(), p.clone()),
        _ => return Err(format!("<host {host}>: replication_user and replication_password are needed to ask its agent for a backup")),
    };
    std::fs::create_dir_all(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let taken_at = chrono::Local::now();
    let name = format!("{host}-{}", taken_at.format("%Y%m%d-%H%M%S"));
    let dir = dest.join(&name);
    let stage = dest.join(format!(".{name}.incomplete"));
    if dir.exists() {
        return Err(format!("{} exists already", dir.display()));
    }
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir(&stage).map_err(|e| format!("creating {}: {e}", stage.display()))?;
    let link = AgentLink::new(config, None)?;
    let mut resp = link
        .http
        .get(link.url(addr, BACKUP_PATH))
        .basic_auth(&user, Some(password.expose()))
        .send()
        .map_err(|e| format!("asking {host}'s agent at {addr} for a backup: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        return Err(format!("{host}'s agent refused ({status}): {text}"));
    }
    let estimated = resp
        .headers()
        .get(ESTIMATE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut mbstream = Command::new("mbstream")
        .arg("-x")
        .arg("-C")
        .arg(&stage)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "running mbstream: {e} ({})",
                mmm_agent::backup::INSTALL_HINT
            )
        })?;
    let mut stdin = mbstream.stdin.take().ok_or("mbstream's input")?;
    let started = Instant::now();
    let mut progress = CloneProgress {
        host: host.to_string(),
        source: host.to_string(),
        mode: CloneMode::Single,
        phase: mmm_agent::protocol::ClonePhase::Copying,
        bytes: 0,
        estimated_bytes: estimated,
        elapsed_ms: 0,
        copy_ms: 0,
        master: None,
        gtid: None,
        source_report: None,
        done: vec![],
        error: None,
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut shown = Instant::now();
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = mbstream.kill();
                return Err(format!(
                    "the copy broke off after {} bytes: {e}; the partial copy is in {}",
                    progress.bytes,
                    stage.display()
                ));
            }
        };
        stdin
            .write_all(&buf[..n])
            .map_err(|e| format!("writing into {}: {e}", stage.display()))?;
        progress.bytes += n as u64;
        if shown.elapsed() >= Duration::from_secs(1) {
            progress.copy_ms = started.elapsed().as_millis() as u64;
            let _ = writeln!(out, "{}", backup_line(&progress));
            shown = Instant::now();
        }
    }
    drop(stdin);
    progress.copy_ms = started.elapsed().as_millis() as u64;
    let _ = writeln!(out, "{}", backup_line(&progress));
    let done = mbstream
        .wait_with_output()
        .map_err(|e| format!("waiting for mbstream: {e}"))?;
    if !done.status.success() {
        return Err(format!(
            "mbstream failed ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        ));
    }
    let report: Option<BackupReport> = link
        .http
        .get(link.url(addr, BACKUP_REPORT_PATH))
        .basic_auth(&user, Some(password.expose()))
        .send()
        .ok()
        .filter(|r| r.status().is_success())
        .and_then(|r| r.json().ok());
    let _ = writeln!(out, "{host}: preparing the copy");
    let prepared = Command::new("mariabackup")
        .arg("--prepare")
        .arg(format!("--target-dir={}", stage.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "running mariabackup: {e} ({})",
                mmm_agent::backup::INSTALL_HINT
            )
        })?;
    if !prepared.status.success() {
        let text = String::from_utf8_lossy(&prepared.stderr);
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        return Err(format!(
            "mariabackup --prepare failed ({}): {}; the copy stays in {}",
            prepared.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            stage.display()
        ));
    }
    let gtid = mmm_agent::clone::binlog_info(&stage)?.ok_or_else(|| {
        format!("the copy carries no GTID position: {host} must run with log_bin")
    })?;
    let binlog_state = mmm_agent::clone::binlog_state_of_copy(
        &gtid,
        report.as_ref().and_then(|r| r.binlog_state.as_deref()),
    );
    let status = BackupStatus {
        host: host.to_string(),
        taken_at: taken_at.to_rfc3339(),
        gtid,
        binlog_state,
        master: report.as_ref().and_then(|r| r.master.clone()),
        report,
    };
    let notes = stage.join(STATUS_FILE);
    let written = notes
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| {
            let json = serde_json::to_vec_pretty(&status).map_err(std::io::Error::other)?;
            std::fs::write(&notes, json)
        });
    written.map_err(|e| format!("writing {}: {e}", notes.display()))?;
    std::fs::write(
        stage.join(MMM_DIR).join("copy_method.txt"),
        format!("{COPY_METHOD}\n"),
    )
    .map_err(|e| format!("writing the copy method: {e}"))?;
    std::fs::rename(&stage, &dir)
        .map_err(|e| format!("renaming {} to {}: {e}", stage.display(), dir.display()))?;
    Ok((dir, status))
}

fn backup_line(p: &CloneProgress) -> String {
    let mut s = format!("{}: copying, {:.1} MiB", p.host, p.bytes as f64 / 1048576.0);
    if let Some(total) = p.estimated_bytes {
        s.push_str(&format!(" of ~{:.1} MiB", total as f64 / 1048576.0));
    }
    s.push_str(&format!(" at {:.1} MiB/s", p.rate() / 1048576.0));
    if let Some(eta) = p.eta_secs() {
        s.push_str(&format!(", ETA {eta} s"));
    }
    s
}

/// MMM's restore modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreMode {
    /// Only the files, into `--dest-dir`; no server is touched.
    DataOnly,
    /// A standalone server (MMM's single-single, slave-single, master-single).
    Single,
    /// Replicate from the backup's host (a master).
    MasterSlave,
    /// Replicate from the master of the backup's host (a slave).
    SlaveSlave,
}

fn parse_restore_mode(s: &str) -> Result<RestoreMode, String> {
    match s {
        "data-only" => Ok(RestoreMode::DataOnly),
        "single-single" | "slave-single" | "master-single" => Ok(RestoreMode::Single),
        "master-slave" => Ok(RestoreMode::MasterSlave),
        "slave-slave" => Ok(RestoreMode::SlaveSlave),
        other => Err(format!(
            "unknown mode '{other}': data-only, single-single, slave-single, master-single, master-slave or slave-slave"
        )),
    }
}

/// `mmm_restore`'s command line (MMM's).
#[derive(Debug, Parser)]
#[command(
    name = "mmm_restore",
    disable_version_flag = true,
    about = "Restore a backup made by mmm_backup onto this host (the configuration's 'this'): the server is stopped only once the backup is copied beside its data directory (MMM's mmm_restore, through the agent)"
)]
pub struct RestoreCli {
    #[command(flatten)]
    config: ConfigArg,
    /// data-only, single-single, slave-single, master-single, master-slave or slave-slave.
    #[arg(long, value_name = "MODE", default_value = "single-single", value_parser = parse_restore_mode)]
    mode: RestoreMode,
    /// 'list' shows the backups under --src-dir (or backup_dir); other versions are not
    /// supported (backups are full copies, not rdiff increments).
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,
    /// The backup directory (default: the newest under backup_dir of this host).
    #[arg(long, value_name = "DIR")]
    src_dir: Option<PathBuf>,
    /// data-only: where to put the files.
    #[arg(long, value_name = "DIR")]
    dest_dir: Option<PathBuf>,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The complete backups (with their notes) under `dir`, oldest first.
fn backups_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .filter(|p| p.join(STATUS_FILE).is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// `mmm_restore`.
pub fn restore_main(
    cli: RestoreCli,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<u8> {
    let config = match cli.config.load_or_say("mmm_restore", err)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let this = match this_host(&config) {
        Ok(t) => t,
        Err(e) => {
            writeln!(err, "mmm_restore: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let backup_dir = config.hosts.get(&this).and_then(|h| h.backup_dir.clone());
    if let Some(v) = &cli.version {
        if v != "list" {
            writeln!(err, "mmm_restore: --version {v} is not supported: backups are full copies (no rdiff increments); --version list shows them")?;
            return Ok(EXIT_USAGE);
        }
        let Some(dir) = cli.src_dir.clone().or(backup_dir) else {
            writeln!(
                err,
                "mmm_restore: give --src-dir or set backup_dir in <host {this}>"
            )?;
            return Ok(EXIT_USAGE);
        };
        for b in backups_in(&dir) {
            writeln!(out, "{}", b.display())?;
        }
        return Ok(EXIT_OK);
    }
    let src = match cli
        .src_dir
        .clone()
        .or_else(|| backup_dir.as_deref().and_then(|d| backups_in(d).pop()))
    {
        Some(s) => s,
        None => {
            writeln!(err, "mmm_restore: no backup: give --src-dir (a directory made by mmm_backup), or set backup_dir in <host {this}>")?;
            return Ok(EXIT_USAGE);
        }
    };
    let src = std::fs::canonicalize(&src).unwrap_or(src);
    let status: BackupStatus = match std::fs::read(src.join(STATUS_FILE))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            writeln!(
                err,
                "mmm_restore: {} is not a backup made by mmm_backup ({STATUS_FILE}: {e})",
                src.display()
            )?;
            return Ok(EXIT_USAGE);
        }
    };
    let mode = match cli.mode {
        RestoreMode::DataOnly => {
            let Some(dest) = cli.dest_dir else {
                writeln!(err, "mmm_restore: data-only needs --dest-dir")?;
                return Ok(EXIT_USAGE);
            };
            if cli.dry_run {
                writeln!(
                    out,
                    "Would copy the backup {} into {}.",
                    src.display(),
                    dest.display()
                )?;
                return Ok(EXIT_OK);
            }
            return match copy_files(&src, &dest) {
                Ok(n) => {
                    writeln!(
                        out,
                        "OK: {n} bytes of {} copied into {} (no server touched).",
                        src.display(),
                        dest.display()
                    )?;
                    Ok(EXIT_OK)
                }
                Err(e) => {
                    writeln!(
                        out,
                        "ERROR: copying {} into {}: {e}",
                        src.display(),
                        dest.display()
                    )?;
                    Ok(EXIT_ERROR)
                }
            };
        }
        RestoreMode::Single => CloneMode::Single,
        RestoreMode::MasterSlave => CloneMode::MasterSlave,
        RestoreMode::SlaveSlave => CloneMode::SlaveSlave,
    };
    if cli.dest_dir.is_some() {
        writeln!(err, "mmm_restore: --dest-dir is only for data-only: the other modes replace the local server's data directory")?;
        return Ok(EXIT_USAGE);
    }
    if cli.dry_run {
        writeln!(
            out,
            "Would restore the backup of '{}' taken at {} (GTID {}) onto '{this}' ({mode}): copy it beside the data directory, stop mysqld, put it in place, start mysqld{}.",
            status.host,
            status.taken_at,
            status.gtid,
            match mode {
                CloneMode::MasterSlave => format!(" and replicate from '{}'", status.host),
                CloneMode::SlaveSlave => format!(" and replicate from the master of '{}'", status.host),
                _ => String::new(),
            }
        )?;
        return Ok(EXIT_OK);
    }
    let req = CloneRequest {
        host: this,
        source: status.host,
        mode,
        from_dir: Some(src),
    };
    run_on_agent(&config, &req, out)
}

/// Copies the files of a backup (not its notes) into `dest`; the bytes copied.
fn copy_files(src: &Path, dest: &Path) -> std::io::Result<u64> {
    let copied = std::sync::atomic::AtomicU64::new(0);
    mmm_agent::clone::copy_backup(src, dest, &copied)?;
    Ok(copied.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_lines_are_well_formed() {
        use clap::CommandFactory;
        CloneCli::command().debug_assert();
        BackupCli::command().debug_assert();
        RestoreCli::command().debug_assert();
    }

    #[test]
    fn only_mariabackup_copies() {
        assert!(check_copy_method(None).is_ok());
        assert!(check_copy_method(Some("mariabackup")).is_ok());
        let e = check_copy_method(Some("scp")).unwrap_err();
        assert!(e.contains("'scp' is not supported"), "{e}");
    }

    #[test]
    fn restore_modes_are_mmms() {
        assert_eq!(parse_restore_mode("single-single"), Ok(RestoreMode::Single));
        assert_eq!(parse_restore_mode("slave-single"), Ok(RestoreMode::Single));
        assert_eq!(parse_restore_mode("master-single"), Ok(RestoreMode::Single));
        assert_eq!(
            parse_restore_mode("master-slave"),
            Ok(RestoreMode::MasterSlave)
        );
        assert_eq!(
            parse_restore_mode("slave-slave"),
            Ok(RestoreMode::SlaveSlave)
        );
        assert_eq!(parse_restore_mode("data-only"), Ok(RestoreMode::DataOnly));
        assert!(parse_restore_mode("master-master").is_err());
    }

    #[test]
    fn backups_are_listed_oldest_first_and_incomplete_ones_left_out() {
        let d = tempfile::tempdir().expect("tempdir");
        for name in [
            "db2-20261204-120000",
            "db2-20261203-120000",
            ".db2-20261205-120000.incomplete",
        ] {
            std::fs::create_dir_all(d.path().join(name).join("_mmm")).expect("mkdir");
            std::fs::write(d.path().join(name).join(STATUS_FILE), b"{}").expect("write");
        }
        std::fs::create_dir_all(d.path().join("db2-20261206-120000")).expect("no notes");
        let names: Vec<String> = backups_in(d.path())
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, vec!["db2-20261203-120000", "db2-20261204-120000"]);
    }
}
