//! Real MariaDB servers for integration tests, from Debian's `mariadb-server` package
//! (`/usr/sbin/mariadbd`, `/usr/bin/mariadb-install-db`).
//!
//! A [`MariaDb`] is one server in a temporary directory (data, socket, error log), listening on
//! a free port of 127.0.0.1 only, with binary logging, `log_slave_updates`, GTID strict mode
//! and small buffers so several start in a second or two on a small machine. It has four
//! accounts besides `root` (socket, no password): [`AGENT_USER`] (all privileges, like the
//! agent's), [`REPL_USER`] (`REPLICATION SLAVE`), [`APP_USER`] (plain reads and writes,
//! bound by `read_only`) and [`MONITOR_USER`] (the monitor's checks). Helpers set up
//! replication ([`MariaDb::replicate_from`]), wait for it ([`MariaDb::sync_with`]), and break
//! the server ([`MariaDb::kill9`], [`MariaDb::freeze`]).
//! [`MariaDb::start_tls`] gives a server a certificate from a throwaway CA (`crate::pki`,
//! files in its directory) and, if asked, `require_secure_transport=ON`.
//! Dropping it kills the server and removes the directory.
//!
//! A missing `mariadbd` is an error telling to install `mariadb-server`; nothing is skipped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};
use tokio::time::{sleep, timeout, Instant};

/// The server binary.
pub const MARIADBD: &str = "/usr/sbin/mariadbd";
/// The data directory initializer.
pub const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
/// What to do when they are missing.
pub const INSTALL_HINT: &str = "install Debian's mariadb-server (apt-get install mariadb-server)";

/// The address every test server listens on.
pub const HOST: &str = "127.0.0.1";
/// An account with all privileges (what `agent_user` has in production).
pub const AGENT_USER: &str = "mmm_agent";
/// Its password.
pub const AGENT_PASSWORD: &str = "agent-pw";
/// The replication account.
pub const REPL_USER: &str = "mmm_repl";
/// Its password: a quote and a backslash, so re-pointing code must quote it properly.
pub const REPL_PASSWORD: &str = "re'pl\\pw#1";
/// An application account: SELECT/INSERT/UPDATE/DELETE/CREATE/DROP, no `READ_ONLY ADMIN`, so
/// `read_only` stops its writes.
pub const APP_USER: &str = "mmm_app";
/// Its password.
pub const APP_PASSWORD: &str = "app-pw";
/// The monitor's account (`monitor_user`): what MMM's documentation grants it, `REPLICATION
/// CLIENT` and `PROCESS`, plus `SLAVE MONITOR`, which MariaDB 10.5.9 and later require for
/// `SHOW SLAVE STATUS` (there `REPLICATION CLIENT` only means `BINLOG MONITOR`).
pub const MONITOR_USER: &str = "mmm_monitor";
/// Its password.
pub const MONITOR_PASSWORD: &str = "monitor-pw";

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `mariadb-install-db` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound for the kit's own statements and connections.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A string literal for the kit's SQL.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes a URL user-info component.
fn url_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The accounts, created by `mariadb-install-db --extra-file` (before binary logging exists,
/// so they are no transactions of the server's own).
fn accounts_sql() -> String {
    format!(
        "FLUSH PRIVILEGES;\n\
         CREATE USER '{AGENT_USER}'@'%' IDENTIFIED BY {agent};\n\
         GRANT ALL PRIVILEGES ON *.* TO '{AGENT_USER}'@'%' WITH GRANT OPTION;\n\
         CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY {repl};\n\
         GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'%';\n\
         CREATE USER '{APP_USER}'@'%' IDENTIFIED BY {app};\n\
         GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON *.* TO '{APP_USER}'@'%';\n\
         CREATE USER '{MONITOR_USER}'@'%' IDENTIFIED BY {monitor};\n\
         GRANT REPLICATION CLIENT, SLAVE MONITOR, PROCESS ON *.* TO '{MONITOR_USER}'@'%';\n",
        agent = quote(AGENT_PASSWORD),
        repl = quote(REPL_PASSWORD),
        app = quote(APP_PASSWORD),
        monitor = quote(MONITOR_PASSWORD),
    )
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails with [`INSTALL_HINT`] when the MariaDB binaries are missing.
pub fn check_installed() -> Result<()> {
    for bin in [MARIADBD, INSTALL_DB] {
        if !Path::new(bin).exists() {
            bail!("{bin} not found: {INSTALL_HINT}");
        }
    }
    Ok(())
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to find a port")?;
    Ok(listener.local_addr()?.port())
}

/// The last `lines` lines of a file, or why it could not be read.
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// Kills a process group when dropped, unless its pgid was taken out.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: kill(2) on the process group this kit created (`process_group(0)`).
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// One MariaDB server in a temporary directory (see the module documentation).
#[derive(Debug)]
pub struct MariaDb {
    dir: tempfile::TempDir,
    server_id: u32,
    port: u16,
    child: Option<Child>,
    /// A network namespace and address to listen on instead of 127.0.0.1.
    place: Option<(String, Ipv4Addr)>,
    /// Extra `mariadbd` options for every later start, as a my.cnf would give them.
    options: Vec<String>,
    /// Its certificate, when it offers TLS.
    tls: Option<TlsFiles>,
    /// `require_secure_transport=ON`: the kit's own connections use the Unix socket.
    secure_only: bool,
}

/// A test server's TLS files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The throwaway CA's certificate (`--ssl-ca`).
    pub ca_file: PathBuf,
    /// The server's certificate (`--ssl-cert`), for `localhost` and 127.0.0.1.
    pub cert_file: PathBuf,
    /// Its key (`--ssl-key`).
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// The `mariadbd` options that make a server offer TLS with these files.
    pub fn options(&self) -> Vec<String> {
        vec![
            format!("--ssl-ca={}", self.ca_file.display()),
            format!("--ssl-cert={}", self.cert_file.display()),
            format!("--ssl-key={}", self.key_file.display()),
        ]
    }
}

impl MariaDb {
    /// Initializes a data directory and starts a server with this `server_id`; returns once it
    /// accepts connections.
    pub async fn start(server_id: u32) -> Result<MariaDb> {
        Self::start_placed(server_id, None, None).await
    }

    /// Like [`MariaDb::start`], but the server offers TLS with a certificate from a throwaway
    /// CA made for it, and with `require_secure_transport` it refuses every TCP login that is
    /// not encrypted (the Unix socket still counts as secure, so the kit's own connections use
    /// it, as `root`).
    pub async fn start_tls(server_id: u32, require_secure_transport: bool) -> Result<MariaDb> {
        Self::start_placed(server_id, None, Some(require_secure_transport)).await
    }

    /// Like [`MariaDb::start`], but the server runs in network namespace `ns` and listens on
    /// `ip:3306` there. Its Unix socket ([`MariaDb::root_opts`]) still reaches it from anywhere.
    pub async fn start_in(server_id: u32, ns: &str, ip: Ipv4Addr) -> Result<MariaDb> {
        Self::start_placed(server_id, Some((ns.to_string(), ip)), None).await
    }

    /// `tls`: offer TLS, and whether to require it (`require_secure_transport`).
    async fn start_placed(
        server_id: u32,
        place: Option<(String, Ipv4Addr)>,
        tls: Option<bool>,
    ) -> Result<MariaDb> {
        check_installed()?;
        let dir = tempfile::Builder::new()
            .prefix("mmm-mariadb-")
            .tempdir_in("/tmp")
            .context("creating a directory for MariaDB under /tmp")?;
        let extra = dir.path().join("accounts.sql");
        std::fs::write(&extra, accounts_sql()).context("writing accounts.sql")?;
        let datadir = dir.path().join("data");
        // A tmpdir of its own: concurrent bootstraps in a shared /tmp collide on temporary
        // table names.
        let tmpdir = dir.path().join("tmp");
        std::fs::create_dir(&tmpdir).context("creating the server's tmpdir")?;
        let mut install = tokio::process::Command::new(INSTALL_DB);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--skip-name-resolve")
            .arg(format!("--extra-file={}", extra.display()))
            .arg(format!("--tmpdir={}", tmpdir.display()))
            .arg("--innodb-log-file-size=4M")
            .arg("--innodb-buffer-pool-size=8M")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if running_as_root() {
            install.arg("--user=root");
        }
        let child = install
            .spawn()
            .with_context(|| format!("running {INSTALL_DB} ({INSTALL_HINT})"))?;
        // Declared after `dir`, so dropped before it: a cancelled start kills the script's
        // `mariadbd --bootstrap` before the directory is removed.
        let mut group = GroupGuard(child.id());
        let output = timeout(INSTALL_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| anyhow!("{INSTALL_DB} did not finish within {INSTALL_TIMEOUT:?}"))?
            .with_context(|| format!("running {INSTALL_DB}"))?;
        group.0 = None;
        if !output.status.success() {
            // The cause is at the top; the rest is boilerplate advice.
            let out = String::from_utf8_lossy(&output.stdout);
            let err = String::from_utf8_lossy(&output.stderr);
            bail!(
                "{INSTALL_DB} failed ({}):\n{}\n{}",
                output.status,
                out.lines().take(8).collect::<Vec<_>>().join("\n"),
                err.lines().take(20).collect::<Vec<_>>().join("\n"),
            );
        }
        let mut server = MariaDb {
            dir,
            server_id,
            port: 0,
            child: None,
            place,
            options: Vec::new(),
            tls: None,
            secure_only: false,
        };
        if let Some(require) = tls {
            server.make_tls_files()?;
            server.secure_only = require;
        }
        if server.place.is_some() {
            server.port = 3306;
            server.launch().await?;
        } else {
            server.launch_on_a_free_port().await?;
        }
        Ok(server)
    }

    /// Starts one server per `server_id`, concurrently. Every start runs to its end (none is
    /// cancelled half-way); then the first failure, if any, is returned.
    pub async fn start_many(server_ids: &[u32]) -> Result<Vec<MariaDb>> {
        let mut set = tokio::task::JoinSet::new();
        for (i, &id) in server_ids.iter().enumerate() {
            set.spawn(async move { (i, MariaDb::start(id).await) });
        }
        let mut started: Vec<Option<Result<MariaDb>>> = server_ids.iter().map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined.context("a server start panicked")?;
            started[i] = Some(result);
        }
        started
            .into_iter()
            .zip(server_ids)
            .map(|(s, id)| {
                s.ok_or_else(|| anyhow!("a server start vanished"))?
                    .with_context(|| format!("starting server_id {id}"))
            })
            .collect()
    }

    /// Picks a port and launches; another process may grab the port in between, so a bind
    /// failure is retried with a new one.
    async fn launch_on_a_free_port(&mut self) -> Result<()> {
        let mut last = None;
        for _ in 0..5 {
            self.port = free_port()?;
            match self.launch().await {
                Ok(()) => return Ok(()),
                Err(e) if tail(&self.error_log(), 20).contains("Address already in use") => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("no free port")))
    }

    /// A throwaway CA and a certificate for the server, in its directory.
    fn make_tls_files(&mut self) -> Result<()> {
        let dir = self.dir.path().join("tls");
        let ca = crate::pki::Pki::new(&dir, "mariadb-test").context("making a test CA")?;
        let issued = ca
            .issue("mariadb")
            .context("issuing the server's certificate")?;
        self.tls = Some(TlsFiles {
            ca_file: ca.ca_file.clone(),
            cert_file: issued.cert_file,
            key_file: issued.key_file,
        });
        Ok(())
    }

    /// Its TLS files, when it offers TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Whether it runs with `require_secure_transport=ON`.
    pub fn secure_only(&self) -> bool {
        self.secure_only
    }

    /// Restarts it without TLS (no certificate, `require_secure_transport` off): a server
    /// that stopped offering TLS.
    pub async fn restart_without_tls(&mut self) -> Result<()> {
        self.stop().await?;
        self.tls = None;
        self.secure_only = false;
        self.launch().await
    }

    /// The `mariadbd` command line for this server (without the namespace wrapper).
    fn server_args(&self) -> Vec<String> {
        let dir = self.dir.path();
        let mut args = vec!["--no-defaults".to_string()];
        if running_as_root() {
            args.push("--user=root".into());
        }
        // In a namespace of its own the server takes every address, VIPs included.
        let bind = if self.place.is_some() {
            "0.0.0.0".to_string()
        } else {
            self.host()
        };
        args.extend([
            format!("--datadir={}", dir.join("data").display()),
            format!("--tmpdir={}", dir.join("tmp").display()),
            format!("--socket={}", self.socket_path().display()),
            format!("--port={}", self.port),
            format!("--bind-address={bind}"),
            format!("--pid-file={}", self.pidfile().display()),
            format!("--log-error={}", self.error_log().display()),
            format!("--server-id={}", self.server_id),
        ]);
        args.extend(
            [
                "--log-bin=mysql-bin",
                "--relay-log=relay-bin",
                "--log-slave-updates",
                "--gtid-strict-mode=1",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=8M",
                "--innodb-log-file-size=4M",
                "--innodb-flush-log-at-trx-commit=2",
                "--innodb-use-native-aio=0",
                "--sync-binlog=0",
                "--performance-schema=OFF",
                "--max-connections=200",
            ]
            .map(String::from),
        );
        if let Some(tls) = &self.tls {
            args.extend(tls.options());
        }
        if self.secure_only {
            args.push("--require-secure-transport=ON".into());
        }
        args.extend(self.options.iter().cloned());
        args
    }

    /// The program and its leading arguments: `mariadbd`, or `ip netns exec NS mariadbd`.
    fn program(&self) -> Vec<String> {
        match &self.place {
            Some((ns, _)) => vec![
                "ip".into(),
                "netns".into(),
                "exec".into(),
                ns.clone(),
                MARIADBD.into(),
            ],
            None => vec![MARIADBD.into()],
        }
    }

    /// Starts `mariadbd` on the existing data directory and port; waits until it accepts
    /// connections.
    async fn launch(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(self.error_log());
        let program = self.program();
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..])
            .args(self.server_args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {MARIADBD} ({INSTALL_HINT})"))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Writes an init script for this server (what `mysql_rcscript` names in production):
    /// `stop` shuts it down cleanly (SIGTERM to the pid file's process, waiting up to 60 s),
    /// `start` starts it with this kit's options and waits up to 60 s for its socket. A
    /// server the script started is not this struct's child: dropping the struct still
    /// kills it (through the pid file).
    pub fn write_rcscript(&self) -> Result<PathBuf> {
        let path = self.dir.path().join("rc.sh");
        let words: Vec<String> = self
            .program()
            .into_iter()
            .chain(self.server_args())
            .map(|w| shell_quote(&w))
            .collect();
        let script = RCSCRIPT
            .replace("@PORT@", &self.port.to_string())
            .replace(
                "@PIDFILE@",
                &shell_quote(&self.pidfile().display().to_string()),
            )
            .replace(
                "@SOCKET@",
                &shell_quote(&self.socket_path().display().to_string()),
            )
            .replace("@COMMAND@", &words.join(" "));
        std::fs::write(&path, script).context("writing the init script")?;
        let mut perms = std::fs::metadata(&path)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).context("making the init script executable")?;
        Ok(path)
    }

    /// The data directory.
    pub fn datadir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("checking on mariadbd")? {
                    self.child = None;
                    bail!(
                        "mariadbd (server_id {}, port {}) exited ({status}) before accepting connections; \
                         the end of its error log:\n{}",
                        self.server_id,
                        self.port,
                        tail(&self.error_log(), 30)
                    );
                }
            }
            let attempt = timeout(Duration::from_secs(2), Conn::new(self.root_opts())).await;
            if let Ok(Ok(conn)) = attempt {
                let _ = conn.disconnect().await;
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill9();
                bail!(
                    "mariadbd (server_id {}, port {}) did not accept connections within {START_TIMEOUT:?}; \
                     the end of its error log:\n{}",
                    self.server_id,
                    self.port,
                    tail(&self.error_log(), 30)
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its `server_id`.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// The address it listens on: [`HOST`], or its namespace address.
    pub fn host(&self) -> String {
        match &self.place {
            Some((_, ip)) => ip.to_string(),
            None => HOST.to_string(),
        }
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address and port.
    pub fn addr(&self) -> SocketAddr {
        let ip = self.place.as_ref().map_or(Ipv4Addr::LOCALHOST, |p| p.1);
        SocketAddr::from((ip, self.port))
    }

    /// Its Unix socket.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("mariadbd.sock")
    }

    /// Its pid file (`--pid-file`).
    pub fn pidfile(&self) -> PathBuf {
        self.dir.path().join("mariadbd.pid")
    }

    /// Its error log.
    pub fn error_log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// The end of its error log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.error_log(), lines)
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running (it may be frozen).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// TCP connection options for an account.
    pub fn opts(&self, user: &str, password: &str) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host())
            .tcp_port(self.port)
            .user(Some(user))
            .pass(Some(password))
            .prefer_socket(false)
            .into()
    }

    /// [`AGENT_USER`]'s options.
    pub fn agent_opts(&self) -> Opts {
        self.opts(AGENT_USER, AGENT_PASSWORD)
    }

    /// [`APP_USER`]'s options.
    pub fn app_opts(&self) -> Opts {
        self.opts(APP_USER, APP_PASSWORD)
    }

    /// [`MONITOR_USER`]'s options.
    pub fn monitor_opts(&self) -> Opts {
        self.opts(MONITOR_USER, MONITOR_PASSWORD)
    }

    /// `root` over the Unix socket (no password).
    pub fn root_opts(&self) -> Opts {
        OptsBuilder::default()
            .socket(Some(self.socket_path().to_string_lossy().into_owned()))
            .user(Some("root"))
            .into()
    }

    /// A `mysql://` URL for an account (percent-encoded).
    pub fn url(&self, user: &str, password: &str) -> String {
        format!(
            "mysql://{}:{}@{}:{}/?prefer_socket=false",
            url_escape(user),
            url_escape(password),
            self.host(),
            self.port
        )
    }

    /// A connection, within a few seconds.
    pub async fn connect(&self, opts: Opts) -> Result<Conn> {
        timeout(CONNECT_TIMEOUT, Conn::new(opts))
            .await
            .map_err(|_| {
                anyhow!(
                    "no connection to port {} within {CONNECT_TIMEOUT:?}",
                    self.port
                )
            })?
            .with_context(|| format!("connecting to MariaDB on port {}", self.port))
    }

    /// A connection as [`AGENT_USER`].
    pub async fn agent_conn(&self) -> Result<Conn> {
        self.connect(self.agent_opts()).await
    }

    /// The kit's own connection: [`AGENT_USER`] over TCP, or `root` over the socket for a
    /// server in a namespace (its address is not reachable from the test process) or one that
    /// refuses unencrypted TCP logins.
    async fn kit_conn(&self) -> Result<Conn> {
        if self.place.is_some() || self.secure_only {
            self.connect(self.root_opts()).await
        } else {
            self.agent_conn().await
        }
    }

    /// A connection as [`APP_USER`].
    pub async fn app_conn(&self) -> Result<Conn> {
        self.connect(self.app_opts()).await
    }

    /// Runs statements as [`AGENT_USER`] on a fresh connection.
    pub async fn exec(&self, sql: &str) -> Result<()> {
        let mut conn = self.kit_conn().await?;
        conn.query_drop(sql)
            .await
            .with_context(|| format!("{sql} on port {}", self.port))?;
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// TLS handshakes the server completed (global `Ssl_finished_accepts`), read through the
    /// kit's own connection (the Unix socket on a TLS-only server, plain TCP otherwise).
    pub async fn tls_accepts(&self) -> Result<u64> {
        let value = self
            .scalar(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'SSL_FINISHED_ACCEPTS'",
            )
            .await?
            .ok_or_else(|| anyhow::anyhow!("no Ssl_finished_accepts"))?;
        Ok(value.parse()?)
    }

    /// The first column of the first row of a query as [`AGENT_USER`]; `None` for no row or
    /// NULL.
    pub async fn scalar(&self, sql: &str) -> Result<Option<String>> {
        let mut conn = self.kit_conn().await?;
        let row: Option<Row> = conn
            .query_first(sql)
            .await
            .with_context(|| format!("{sql} on port {}", self.port))?;
        let _ = conn.disconnect().await;
        Ok(row.and_then(|mut r| r.take::<Option<String>, _>(0).flatten()))
    }

    /// One column of `SHOW SLAVE STATUS`, `None` when not a replica.
    pub async fn slave_status(&self, column: &str) -> Result<Option<String>> {
        let mut conn = self.kit_conn().await?;
        let row: Option<Row> = conn.query_first("SHOW SLAVE STATUS").await?;
        let _ = conn.disconnect().await;
        Ok(row.and_then(|mut r| r.take::<Option<String>, _>(column).flatten()))
    }

    /// Makes this server replicate from `master` (replication account, connect retry 1 s),
    /// by GTID (`MASTER_USE_GTID=slave_pos`) or from the start of its first binlog
    /// (`MASTER_USE_GTID=no`), and waits until both threads run. Encrypted
    /// (`MASTER_SSL=1`) when the master requires secure transport.
    pub async fn replicate_from(&self, master: &MariaDb, gtid: bool) -> Result<()> {
        let sql = format!(
            "STOP SLAVE; CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, \
             MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID={}{}; START SLAVE",
            quote(&master.host()),
            master.port,
            quote(REPL_USER),
            quote(REPL_PASSWORD),
            if gtid { "slave_pos" } else { "no" },
            if master.secure_only {
                ", MASTER_SSL=1"
            } else {
                ""
            }
        );
        self.exec(&sql)
            .await
            .with_context(|| format!("making port {} replicate from {}", self.port, master.port))?;
        self.wait_replicating(Duration::from_secs(10)).await
    }

    /// Waits until the IO and SQL threads both run; fails with their error if either stops on
    /// one.
    pub async fn wait_replicating(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let mut conn = self.kit_conn().await?;
            let row: Option<Row> = conn.query_first("SHOW SLAVE STATUS").await?;
            let _ = conn.disconnect().await;
            let mut row = row.ok_or_else(|| anyhow!("port {} is not a replica", self.port))?;
            let mut col = |name: &str| {
                row.take::<Option<String>, _>(name)
                    .flatten()
                    .unwrap_or_default()
            };
            let (io, sql) = (col("Slave_IO_Running"), col("Slave_SQL_Running"));
            let (io_error, sql_error) = (col("Last_IO_Error"), col("Last_SQL_Error"));
            if io == "Yes" && sql == "Yes" {
                return Ok(());
            }
            if !sql_error.is_empty() {
                bail!("port {}: SQL thread error: {sql_error}", self.port);
            }
            if Instant::now() >= deadline {
                bail!(
                    "port {}: replication not running within {limit:?} (IO {io}, SQL {sql}, IO error: {io_error})",
                    self.port
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until this server has applied everything in `master`'s binlog
    /// (`MASTER_GTID_WAIT` of its `gtid_binlog_pos`; MariaDB tracks GTIDs in file/position
    /// replication too).
    pub async fn sync_with(&self, master: &MariaDb, limit: Duration) -> Result<()> {
        let pos = master
            .scalar("SELECT @@gtid_binlog_pos")
            .await?
            .unwrap_or_default();
        let answer = self
            .scalar(&format!(
                "SELECT MASTER_GTID_WAIT({}, {})",
                quote(&pos),
                limit.as_secs_f64()
            ))
            .await?;
        match answer.as_deref() {
            Some("0") => Ok(()),
            other => bail!(
                "port {} did not apply {pos} from port {} within {limit:?} (answer {other:?}; IO error: {:?}; SQL error: {:?})",
                self.port,
                master.port,
                self.slave_status("Last_IO_Error").await.ok().flatten(),
                self.slave_status("Last_SQL_Error").await.ok().flatten(),
            ),
        }
    }

    fn signal(&self, signal: libc::c_int) -> Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| anyhow!("mariadbd is not running"))?;
        let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: kill(2) with a pid this struct spawned and has not reaped yet.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error()).context("kill(2) on mariadbd");
        }
        Ok(())
    }

    /// `kill -9`, then reaps it. Nothing when it is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process dies of SIGKILL too.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether every thread of the server is stopped (state `T` in `/proc`).
    fn all_threads_stopped(&self) -> Result<bool> {
        let pid = self
            .pid()
            .ok_or_else(|| anyhow!("mariadbd is not running"))?;
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).context("reading /proc")?;
        for task in tasks {
            let stat = std::fs::read_to_string(task?.path().join("stat"))?;
            // `pid (comm) S ...`: the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            if state != "T" && state != "t" {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `SIGSTOP`: the server hangs (connections open, nothing answered). Returns once every
    /// thread has stopped (signal delivery is asynchronous).
    pub fn freeze(&self) -> Result<()> {
        self.signal(libc::SIGSTOP)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !self.all_threads_stopped()? {
            if std::time::Instant::now() >= deadline {
                bail!("mariadbd on port {} did not stop on SIGSTOP", self.port);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// `SIGCONT` after [`MariaDb::freeze`].
    pub fn thaw(&self) -> Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// A clean shutdown (`SIGTERM`), killed if it takes longer than 30 s.
    pub async fn stop(&mut self) -> Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        let _ = self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while self.is_running() {
            if Instant::now() >= deadline {
                self.kill9();
                bail!(
                    "mariadbd on port {} ignored SIGTERM for {STOP_TIMEOUT:?}",
                    self.port
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Adds `mariadbd` options for every later start (a restart reads them as it would read
    /// a my.cnf; what `SET GLOBAL` changed does not survive a restart).
    pub fn add_options(&mut self, options: &[&str]) {
        self.options.extend(options.iter().map(|o| o.to_string()));
    }

    /// Starts it again on the same data directory and port (after [`MariaDb::stop`] or
    /// [`MariaDb::kill9`]; stops it first if it runs).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.launch().await
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill9();
        // A server its init script started (not this struct's child).
        if let Some(pid) = std::fs::read_to_string(self.pidfile())
            .ok()
            .and_then(|p| p.trim().parse::<libc::pid_t>().ok())
            .filter(|p| *p > 0)
        {
            // SAFETY: kill(2) on the pid the server wrote; at worst ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The init script [`MariaDb::write_rcscript`] writes, with its placeholders.
const RCSCRIPT: &str = r#"#!/bin/bash
# Init script of the test server on port @PORT@.
pidfile=@PIDFILE@
socket=@SOCKET@
# Running, and not a zombie (a server this kit spawned stays one until the test reaps it).
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
case "$1" in
stop)
    pid=$(cat "$pidfile" 2>/dev/null) || exit 0
    kill -TERM "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 600); do alive "$pid" || exit 0; sleep 0.1; done
    echo "mariadbd $pid did not stop" >&2; exit 1 ;;
start)
    rm -f "$pidfile"
    setsid @COMMAND@ </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 600); do [ -S "$socket" ] && [ -s "$pidfile" ] && exit 0; sleep 0.1; done
    echo "mariadbd did not start" >&2; exit 1 ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
"#;

/// A word for a bash script, single-quoted.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_url_escaping() {
        assert_eq!(quote("re'pl\\pw"), "'re\\'pl\\\\pw'");
        assert_eq!(url_escape("re'pl\\pw#1"), "re%27pl%5Cpw%231");
    }

    #[tokio::test]
    async fn a_server_starts_accepts_its_accounts_and_restarts() {
        let mut db = MariaDb::start(7).await.expect("starts");
        assert_eq!(
            db.scalar("SELECT @@server_id")
                .await
                .expect("query")
                .as_deref(),
            Some("7")
        );
        let mut app = db.app_conn().await.expect("app account");
        app.query_drop("CREATE DATABASE kit")
            .await
            .expect("app may create");
        let mut root = db
            .connect(db.root_opts())
            .await
            .expect("root over the socket");
        root.query_drop("SELECT 1").await.expect("root");
        let url_conn = Conn::from_url(db.url(AGENT_USER, AGENT_PASSWORD))
            .await
            .expect("url works");
        drop(url_conn);
        db.kill9();
        assert!(db.agent_conn().await.is_err(), "killed");
        db.restart().await.expect("restarts after kill -9");
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='kit'")
                .await
                .expect("query")
                .as_deref(),
            Some("1")
        );
    }
}
