//! Authenticated, optionally encrypted HTTP between the programs: `mmm_control` and the tools
//! to the monitor API, monitor replica to monitor replica (Raft and the API), monitors and
//! tools to agents, agents to monitors.
//!
//! - Every request carries `Authorization: Bearer <token>`. The tokens come from the files
//!   named in `<socket>` (`api_secret_file` for admin calls, `api_readonly_secret_file` for
//!   reads, `raft_secret_file` between replicas, `agent_secret_file` to and from agents). A
//!   listener compares the token with each token it knows in constant time; what matched
//!   decides the caller's [`Roles`], and the listener's [`Policy`] decides what each route
//!   needs. No token or an unknown one gets 401, a known token without the right role 403;
//!   either is logged with the peer's address, never with a token.
//! - With `<socket> type ssl`, every listener speaks TLS and requires a client certificate
//!   from `ca_file`, and every client presents `cert_file` (see [`tls`]).
//! - Listeners bound what a client can hold: the number of connections, the time to finish a
//!   TLS handshake and to send request headers, the time for a whole request; request bodies
//!   are bounded by axum's extractors (2 MB unless a route says otherwise).
//!
//! The files are read when a program starts; a missing, unreadable, short or world-readable
//! secret stops it with the key and the path named.

mod secret;
mod server;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmm_config::{Secret, Socket, SocketType};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use subtle::ConstantTimeEq;

pub use secret::MIN_TOKEN_LEN;

/// How long a client keeps an idle connection. A listener closes a connection that sends no
/// request headers for [`Limits::header_timeout`] (10 s), idle ones included; a client that
/// lets go first never sends on a connection the server is closing.
pub const CLIENT_IDLE: std::time::Duration = std::time::Duration::from_secs(5);
pub use server::{serve, Access, Limits, Policy};
pub use tls::Tls;

/// A configuration problem found when a program starts. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A secret file this program needs is not configured.
    #[error("<socket> {key} is not set: {why}; put a random token of at least 16 printable characters in a file only root can read (head -c 32 /dev/urandom | base64 > /etc/mysql-mmm/{file}; chmod 600 /etc/mysql-mmm/{file}) and name it with {key} in <socket> (mmm_common.conf)")]
    MissingSecret {
        /// The key.
        key: &'static str,
        /// What it protects.
        why: &'static str,
        /// A suggested file name.
        file: &'static str,
    },
    /// A secret file cannot be read.
    #[error("<socket> {key}: cannot read {}: {reason}", .path.display())]
    Unreadable {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// A secret file others may read or write (MMM refuses world-readable files too).
    #[error("<socket> {key}: {} is readable or writable by others (mode {mode:04o}); refusing it: chmod o-rwx {}", .path.display(), .path.display())]
    OpenToOthers {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A token file whose content cannot be a token.
    #[error("<socket> {key}: {} is not a usable token: {why}", .path.display())]
    BadToken {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// `type ssl` without one of its files (the config validation reports this first).
    #[error("<socket> type ssl needs {key}")]
    MissingTlsKey {
        /// The missing key.
        key: &'static str,
    },
    /// A certificate, key or CA file that rustls refuses.
    #[error("<socket> {key}: {}: {reason}", .path.display())]
    Tls {
        /// The key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls' or the PEM parser's reason.
        reason: String,
    },
}

/// What a caller may do, decided by the token it presented. A token configured for several
/// roles (one file named by several keys) has all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl Roles {
    /// No role: no token, or an unknown one.
    pub const NONE: Roles = Roles(0);
    /// `api_secret_file`: every monitor API call.
    pub const ADMIN: Roles = Roles(1);
    /// `api_readonly_secret_file`: reading the monitor API (`show`, `checks`, status).
    pub const READ_ONLY: Roles = Roles(2);
    /// `raft_secret_file`: another monitor replica.
    pub const MONITOR: Roles = Roles(4);
    /// `agent_secret_file`: an agent, or a monitor or tool calling one.
    pub const AGENT: Roles = Roles(8);

    /// Both sets of roles.
    pub const fn or(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    /// Whether any role of `other` is here.
    pub const fn any_of(self, other: Roles) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no role is here.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether this caller may change the cluster through the monitor API (admin, or another
    /// replica forwarding a command it accepted).
    pub const fn may_administer(self) -> bool {
        self.any_of(Roles::ADMIN.or(Roles::MONITOR))
    }
}

/// Which token a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// To the monitor API as an operator: the admin token, else the read-only one.
    Api,
    /// To another monitor replica.
    Monitor,
    /// To an agent, or from an agent to the monitors.
    Agent,
}

/// The tokens a program knows.
#[derive(Clone, Default)]
pub struct Keys {
    /// `api_secret_file`.
    pub admin: Option<Secret>,
    /// `api_readonly_secret_file`.
    pub read_only: Option<Secret>,
    /// `raft_secret_file`.
    pub monitor: Option<Secret>,
    /// `agent_secret_file`.
    pub agent: Option<Secret>,
}

impl Keys {
    /// The roles whose token equals `token`. Every configured token is compared, in constant
    /// time, whatever matched before.
    pub fn roles_of(&self, token: &[u8]) -> Roles {
        let mut roles = Roles::NONE;
        for (key, role) in [
            (&self.admin, Roles::ADMIN),
            (&self.read_only, Roles::READ_ONLY),
            (&self.monitor, Roles::MONITOR),
            (&self.agent, Roles::AGENT),
        ] {
            if let Some(key) = key {
                if bool::from(key.expose().as_bytes().ct_eq(token)) {
                    roles = roles.or(role);
                }
            }
        }
        roles
    }

    fn for_channel(&self, channel: Channel) -> Option<&Secret> {
        match channel {
            Channel::Api => self.admin.as_ref().or(self.read_only.as_ref()),
            Channel::Monitor => self.monitor.as_ref(),
            Channel::Agent => self.agent.as_ref(),
        }
    }
}

/// One of the secret files in `<socket>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKey {
    /// `api_secret_file`.
    Api,
    /// `api_readonly_secret_file`.
    ApiReadOnly,
    /// `raft_secret_file`.
    Raft,
    /// `agent_secret_file`.
    Agent,
}

impl SecretKey {
    fn key(self) -> &'static str {
        match self {
            SecretKey::Api => "api_secret_file",
            SecretKey::ApiReadOnly => "api_readonly_secret_file",
            SecretKey::Raft => "raft_secret_file",
            SecretKey::Agent => "agent_secret_file",
        }
    }

    fn why(self) -> &'static str {
        match self {
            SecretKey::Api => "the monitor API accepts admin commands only with this token",
            SecretKey::ApiReadOnly => "the monitor API's read-only token",
            SecretKey::Raft => "monitor replicas accept Raft messages only from each other, by this token",
            SecretKey::Agent => "agents accept commands only with this token, and the monitors accept agents' reports only with it",
        }
    }

    fn file(self) -> &'static str {
        match self {
            SecretKey::Api => "api.secret",
            SecretKey::ApiReadOnly => "api-readonly.secret",
            SecretKey::Raft => "raft.secret",
            SecretKey::Agent => "agent.secret",
        }
    }

    fn path(self, s: &Socket) -> Option<&Path> {
        match self {
            SecretKey::Api => s.api_secret_file.as_deref(),
            SecretKey::ApiReadOnly => s.api_readonly_secret_file.as_deref(),
            SecretKey::Raft => s.raft_secret_file.as_deref(),
            SecretKey::Agent => s.agent_secret_file.as_deref(),
        }
    }
}

/// Whether a program needs a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// It cannot start without it.
    Required,
    /// Used when configured; a configured file must be valid.
    Optional,
    /// Used when configured and this user may read it (mmm_control run by a user who may
    /// only read); any other problem with it is an error.
    IfReadable,
}

/// How a program talks: its tokens and, with `type ssl`, its TLS configuration. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    tls: Option<Tls>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.inner.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport from tokens and optional TLS (tests, and [`Transport::load`]).
    pub fn new(keys: Keys, tls: Option<Tls>) -> Transport {
        Transport {
            inner: Arc::new(Inner { keys, tls }),
        }
    }

    /// Reads the secret files of `<socket>` that `wanted` names and, with `type ssl`, the
    /// TLS files.
    pub fn load(socket: &Socket, wanted: &[(SecretKey, Want)]) -> Result<Transport, Error> {
        let mut keys = Keys::default();
        for &(which, want) in wanted {
            let token = match which.path(socket) {
                None if want == Want::Required => {
                    return Err(Error::MissingSecret {
                        key: which.key(),
                        why: which.why(),
                        file: which.file(),
                    })
                }
                None => None,
                Some(path) => match secret::read_token(which.key(), path)? {
                    secret::Read::Token(t) => Some(t),
                    secret::Read::PermissionDenied if want == Want::IfReadable => None,
                    secret::Read::PermissionDenied => {
                        return Err(Error::Unreadable {
                            key: which.key(),
                            path: path.to_path_buf(),
                            reason: "permission denied".into(),
                        })
                    }
                },
            };
            let slot = match which {
                SecretKey::Api => &mut keys.admin,
                SecretKey::ApiReadOnly => &mut keys.read_only,
                SecretKey::Raft => &mut keys.monitor,
                SecretKey::Agent => &mut keys.agent,
            };
            *slot = token;
        }
        let tls = match socket.kind {
            SocketType::Ssl => Some(Tls::load(socket)?),
            SocketType::Plain => None,
        };
        Ok(Transport::new(keys, tls))
    }

    /// Like [`Transport::load`] for `mmm_control`: the admin token if this user can read it,
    /// else the read-only one, and the agents' token if readable (for `rejoin`). A command
    /// that finds none is refused by the monitor, which says so.
    pub fn load_for_control(socket: &Socket) -> Result<Transport, Error> {
        Transport::load(
            socket,
            &[
                (SecretKey::Api, Want::IfReadable),
                (SecretKey::ApiReadOnly, Want::IfReadable),
                (SecretKey::Agent, Want::IfReadable),
            ],
        )
    }

    /// The tokens.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The TLS configuration, with `type ssl`.
    pub fn tls(&self) -> Option<&Tls> {
        self.inner.tls.as_ref()
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.inner.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The URL of `path` at `addr` (`HOST:PORT`).
    pub fn url(&self, addr: impl std::fmt::Display, path: &str) -> String {
        format!("{}://{addr}{path}", self.scheme())
    }

    /// The headers every request on `channel` carries: the bearer token, marked sensitive so
    /// that no debug output shows it.
    pub fn headers(&self, channel: Channel) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(token) = self.inner.keys.for_channel(channel) {
            // A token is visible ASCII (checked when read), so this only fails for a token
            // built by hand in a test, which then goes out without one and is refused.
            if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
        }
        headers
    }

    /// An async HTTP client builder for `channel`: the token on every request and, with TLS,
    /// this program's certificate and the cluster's CA. Proxies from the environment are not
    /// used: every peer is on the cluster's own network.
    pub fn client(&self, channel: Channel) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(CLIENT_IDLE)
            .default_headers(self.headers(channel));
        match &self.inner.tls {
            Some(tls) => builder.use_preconfigured_tls(tls.client.clone()),
            None => builder,
        }
    }

    /// A blocking HTTP client builder for `channel` (for `mmm_control` and the tools).
    pub fn blocking_client(&self, channel: Channel) -> reqwest::blocking::ClientBuilder {
        let builder = reqwest::blocking::Client::builder()
            .no_proxy()
            .pool_idle_timeout(CLIENT_IDLE)
            .default_headers(self.headers(channel));
        match &self.inner.tls {
            Some(tls) => builder.use_preconfigured_tls(tls.client.clone()),
            None => builder,
        }
    }
}
