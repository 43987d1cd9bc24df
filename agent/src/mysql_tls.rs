//! TLS for MySQL connections, used when the server demands it: the one way the agent
//! ([`crate::mysql`], [`crate::backup`]) and the monitor's checks open a connection.
//!
//! The MySQL client's `--ssl-mode=REQUIRED` when the server demands it, `DISABLED` otherwise:
//!
//! - A server not known to need TLS is tried plain first. When it refuses the login with
//!   `ER_ACCESS_DENIED_ERROR` (1045) or MySQL's `ER_SECURE_TRANSPORT_REQUIRED` (3159), the
//!   login is tried again over TLS. MariaDB 10.11 answers 1045 in both cases where TLS is
//!   needed, exactly as it answers a wrong password: `require_secure_transport=ON` refuses a
//!   plain TCP login with "Access denied for user 'u'@'h' (using password: YES)" (it has no
//!   error of its own for it), and so does an account created `REQUIRE SSL`. A server that
//!   offers no TLS ends the retry at once, and the plain refusal is the answer.
//! - A login that succeeds over TLS after a plain refusal marks the address (host as given,
//!   port) as needing TLS, logged once at `info`; later connections to it go straight to TLS.
//!   When such a connection finds that the server no longer offers TLS, the mark is removed
//!   (logged too) and the connection is made plain.
//! - Unix sockets are never encrypted (MariaDB and MySQL count them as a secure transport).
//! - The server's certificate is **not verified**: nothing in MMM's configuration names a CA
//!   for MySQL, so this is the MySQL client's `--ssl-mode=REQUIRED` (encrypted, not
//!   authenticated), which keeps passwords and data off the wire but does not stop an active
//!   man in the middle. The handshake is rustls with the `ring` provider.
//!
//! Nothing here logs or returns a password: the server's refusals name the user and host only.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Mutex, Once, OnceLock};

use mysql_async::{Conn, DriverError, Opts, OptsBuilder, SslOpts};
use tracing::info;

/// `ER_ACCESS_DENIED_ERROR`: what MariaDB answers a plain login that needs TLS (and a wrong
/// password).
pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
/// MySQL's `ER_SECURE_TRANSPORT_REQUIRED` (5.7+): `require_secure_transport=ON` and a plain
/// TCP login. MariaDB 10.11 has no such error (it answers 1045).
pub const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;

/// The addresses known to need TLS: (host as dialled, port).
fn known() -> &'static Mutex<BTreeSet<(String, u16)>> {
    static KNOWN: OnceLock<Mutex<BTreeSet<(String, u16)>>> = OnceLock::new();
    KNOWN.get_or_init(|| Mutex::new(BTreeSet::new()))
}

fn with_known<T>(f: impl FnOnce(&mut BTreeSet<(String, u16)>) -> T) -> T {
    let mut set = known().lock().unwrap_or_else(|e| e.into_inner());
    f(&mut set)
}

/// Whether connections to `host:port` go straight to TLS (a plain login was refused and one
/// over TLS succeeded, and the server has not stopped offering TLS since).
pub fn needs_tls(host: &str, port: u16) -> bool {
    with_known(|k| k.contains(&(host.to_string(), port)))
}

fn remember(host: &str, port: u16) {
    if with_known(|k| k.insert((host.to_string(), port))) {
        info!(
            host,
            port,
            "the MySQL server refuses unencrypted logins: connecting with TLS from now on (server certificate not verified)"
        );
    }
}

fn forget(host: &str, port: u16) {
    if with_known(|k| k.remove(&(host.to_string(), port))) {
        info!(
            host,
            port, "the MySQL server no longer offers TLS: connecting unencrypted again"
        );
    }
}

/// Makes `ring` the process's rustls provider unless one is installed already, so the TLS
/// configuration mysql_async builds never depends on which providers the build enabled.
fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is installed already: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The TLS settings: encrypted, the server's certificate not verified (see the module
/// documentation). mysql_async builds its verifier from a root store that must not be
/// empty, so the built-in roots stay in; nothing is checked against them.
pub fn tls_opts() -> SslOpts {
    SslOpts::default()
        .with_danger_accept_invalid_certs(true)
        .with_danger_skip_domain_validation(true)
}

/// `opts` with TLS.
fn with_tls(opts: &Opts) -> Opts {
    OptsBuilder::from_opts(opts.clone())
        .ssl_opts(Some(tls_opts()))
        .into()
}

/// Whether a plain login's failure may mean that the server wants TLS.
fn refused_plain(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s)
        if s.code == ER_ACCESS_DENIED_ERROR || s.code == ER_SECURE_TRANSPORT_REQUIRED)
}

/// Whether a TLS attempt failed because the server does not offer TLS.
fn no_tls_offered(e: &mysql_async::Error) -> bool {
    matches!(
        e,
        mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer)
    )
}

/// A plain login refused and the retry over TLS failed in the handshake: both reasons.
#[derive(Debug)]
pub struct TlsRetryFailed {
    /// The plain login's refusal.
    pub plain: String,
    /// Why the TLS attempt failed.
    pub tls: String,
}

impl fmt::Display for TlsRetryFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; the login over TLS failed too: {}",
            self.plain, self.tls
        )
    }
}

impl std::error::Error for TlsRetryFailed {}

/// Opens a connection with `opts`, over TLS when the server demands it (see the module
/// documentation). `opts` must not carry TLS settings of its own (they are used as given).
/// Unbounded: callers put their own time limit around it.
pub async fn connect(opts: impl Into<Opts>) -> Result<Conn, mysql_async::Error> {
    let opts: Opts = opts.into();
    if opts.socket().is_some() || opts.ssl_opts().is_some() {
        return Conn::new(opts).await;
    }
    install_provider();
    let host = opts.ip_or_hostname().to_string();
    let port = opts.tcp_port();
    if needs_tls(&host, port) {
        return match Conn::new(with_tls(&opts)).await {
            Err(e) if no_tls_offered(&e) => {
                forget(&host, port);
                Conn::new(opts).await
            }
            other => other,
        };
    }
    let plain = match Conn::new(opts.clone()).await {
        Err(e) if refused_plain(&e) => e,
        other => return other,
    };
    match Conn::new(with_tls(&opts)).await {
        Ok(conn) => {
            remember(&host, port);
            Ok(conn)
        }
        // No TLS to try, or refused over TLS as well (the account or its password): the
        // plain refusal is the answer.
        Err(e) if no_tls_offered(&e) => Err(plain),
        Err(mysql_async::Error::Server(_)) => Err(plain),
        Err(tls) => Err(mysql_async::Error::Other(Box::new(TlsRetryFailed {
            plain: plain.to_string(),
            tls: tls.to_string(),
        }))),
    }
}

/// Whether `conn` is encrypted (its session's `Ssl_cipher` is not empty).
pub async fn is_encrypted(conn: &mut Conn) -> Result<bool, mysql_async::Error> {
    use mysql_async::prelude::Queryable;
    let row: Option<(String, String)> = conn.query_first("SHOW STATUS LIKE 'Ssl_cipher'").await?;
    Ok(row.is_some_and(|(_, cipher)| !cipher.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log lines written while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn the_memory_is_per_address_and_each_change_is_logged_once() {
        let log = logged(|| {
            assert!(!needs_tls("192.0.2.7", 3306));
            remember("192.0.2.7", 3306);
            remember("192.0.2.7", 3306);
            assert!(needs_tls("192.0.2.7", 3306));
            assert!(!needs_tls("192.0.2.7", 3307));
            assert!(!needs_tls("192.0.2.8", 3306));
            forget("192.0.2.7", 3306);
            forget("192.0.2.7", 3306);
            assert!(!needs_tls("192.0.2.7", 3306));
        });
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines[0].contains(" INFO "), "{log}");
        assert!(lines[0].contains("refuses unencrypted logins"), "{log}");
        assert!(lines[0].ends_with(r#"host="192.0.2.7" port=3306"#), "{log}");
        assert!(lines[1].contains("no longer offers TLS"), "{log}");
    }

    #[test]
    fn which_failures_lead_to_a_retry_over_tls() {
        let server = |code: u16| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "Access denied for user 'u'@'10.0.0.1' (using password: YES)".into(),
                state: "28000".into(),
            })
        };
        assert!(refused_plain(&server(ER_ACCESS_DENIED_ERROR)));
        assert!(refused_plain(&server(ER_SECURE_TRANSPORT_REQUIRED)));
        assert!(!refused_plain(&server(1040)), "too many connections");
        assert!(!refused_plain(&mysql_async::Error::Driver(
            DriverError::NoClientSslFlagFromServer
        )));
        assert!(no_tls_offered(&mysql_async::Error::Driver(
            DriverError::NoClientSslFlagFromServer
        )));
        assert!(!no_tls_offered(&server(ER_ACCESS_DENIED_ERROR)));
    }

    #[test]
    fn a_failed_retry_names_both_reasons() {
        let e = TlsRetryFailed {
            plain: "ERROR 28000 (1045): Access denied for user 'u'@'h' (using password: YES)"
                .into(),
            tls: "handshake failure".into(),
        };
        assert_eq!(
            e.to_string(),
            "ERROR 28000 (1045): Access denied for user 'u'@'h' (using password: YES); \
             the login over TLS failed too: handshake failure"
        );
    }

    #[test]
    fn certificates_are_not_verified() {
        let tls = tls_opts();
        assert!(tls.accept_invalid_certs());
        assert!(tls.skip_domain_validation());
        assert!(tls.root_certs().is_empty());
        assert!(tls.client_identity().is_none());
    }
}
