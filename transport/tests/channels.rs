//! The listener's guarantees, over real sockets: a route is refused without a token, with an
//! unknown one (401) or with one of the wrong role (403), and served with the right one; each
//! refusal is logged with the peer's address and never with a token. With TLS, a client must
//! present a certificate from the cluster's CA and only trusts servers with one; a client that
//! sends its headers too slowly is cut off.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use axum::routing::get;
use axum::Router;
use mmm_config::{Secret, Socket, SocketType};
use mmm_testkit::pki::Pki;
use mmm_transport::{Access, Channel, Keys, Limits, Roles, Tls, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "admin-token-0123456789";
const READER: &str = "reader-token-0123456789";
const AGENT: &str = "agent-token-0123456789";

fn policy(_: &Method, path: &str) -> Access {
    match path {
        "/open" => Access::Open,
        "/read" => Access::Roles(Roles::ADMIN.or(Roles::READ_ONLY)),
        "/admin" => Access::Roles(Roles::ADMIN),
        _ => Access::Roles(Roles::AGENT),
    }
}

fn keys(admin: Option<&str>, read: Option<&str>, agent: Option<&str>) -> Keys {
    Keys {
        admin: admin.map(Secret::new),
        read_only: read.map(Secret::new),
        monitor: None,
        agent: agent.map(Secret::new),
    }
}

fn server_keys() -> Keys {
    keys(Some(ADMIN), Some(READER), Some(AGENT))
}

/// Log lines written while the test runs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::ErrorKind::Other)?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

async fn start(server: Transport, limits: Limits) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route("/open", get(|| async { "open" }))
        .route("/read", get(|| async { "read" }))
        .route("/admin", get(|| async { "admin" }))
        .route("/agent", get(|| async { "agent" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(mmm_transport::serve(
        server,
        listener,
        app,
        policy,
        limits,
        std::future::pending(),
    ));
    Ok(addr)
}

async fn status(
    client: &Transport,
    channel: Channel,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<u16> {
    let http = client
        .client(channel)
        .timeout(Duration::from_secs(5))
        .build()?;
    Ok(http
        .get(client.url(addr, path))
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn each_route_needs_a_token_of_its_role_and_refusals_are_logged_without_tokens(
) -> anyhow::Result<()> {
    let (logs, _guard) = capture();
    let addr = start(Transport::new(server_keys(), None), Limits::default()).await?;
    let nobody = Transport::new(Keys::default(), None);
    let stranger = Transport::new(keys(Some("stranger-token-0123456789"), None, None), None);
    let admin = Transport::new(keys(Some(ADMIN), None, None), None);
    let reader = Transport::new(keys(None, Some(READER), None), None);
    let agent = Transport::new(keys(None, None, Some(AGENT)), None);

    assert_eq!(status(&nobody, Channel::Api, addr, "/open").await?, 200);
    assert_eq!(status(&nobody, Channel::Api, addr, "/read").await?, 401);
    assert_eq!(status(&stranger, Channel::Api, addr, "/read").await?, 401);
    assert_eq!(status(&reader, Channel::Api, addr, "/read").await?, 200);
    assert_eq!(status(&reader, Channel::Api, addr, "/admin").await?, 403);
    assert_eq!(status(&admin, Channel::Api, addr, "/admin").await?, 200);
    assert_eq!(status(&admin, Channel::Api, addr, "/agent").await?, 403);
    assert_eq!(status(&agent, Channel::Agent, addr, "/agent").await?, 200);
    // An agent token does not open the operator's routes.
    assert_eq!(status(&agent, Channel::Agent, addr, "/read").await?, 403);

    let text = logs.text();
    assert!(text.contains("no token"), "{text}");
    assert!(text.contains("unknown token"), "{text}");
    assert!(text.contains("the token does not allow it"), "{text}");
    assert!(
        text.contains("127.0.0.1:"),
        "the peer's address is logged: {text}"
    );
    for token in [ADMIN, READER, AGENT, "stranger-token-0123456789"] {
        assert!(!text.contains(token), "a token was logged: {text}");
    }
    Ok(())
}

#[tokio::test]
async fn a_malformed_authorization_header_is_refused() -> anyhow::Result<()> {
    let addr = start(Transport::new(server_keys(), None), Limits::default()).await?;
    let http = reqwest::Client::new();
    for value in [
        "",
        "Bearer",
        "Bearer ",
        "Basic YWdlbnQ6eA==",
        &format!("Token {AGENT}"),
        &format!("Bearer  {AGENT}"),
    ] {
        let status = http
            .get(format!("http://{addr}/agent"))
            .header("authorization", value)
            .send()
            .await?
            .status();
        assert_eq!(status, 401, "header {value:?}");
    }
    let status = http
        .get(format!("http://{addr}/agent"))
        .header("authorization", format!("bearer {AGENT}"))
        .send()
        .await?
        .status();
    assert_eq!(status, 200, "the scheme is case-insensitive");
    Ok(())
}

fn tls_of(pki: &Pki, name: &str) -> anyhow::Result<Tls> {
    let issued = pki.issue(name)?;
    Ok(Tls::load(&Socket {
        kind: SocketType::Ssl,
        cert_file: Some(issued.cert_file),
        key_file: Some(issued.key_file),
        ca_file: Some(pki.ca_file.clone()),
        ..Socket::default()
    })?)
}

#[tokio::test]
async fn with_tls_only_certificates_from_the_cluster_ca_get_through() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = Pki::new(&dir.path().join("cluster"), "cluster")?;
    let other = Pki::new(&dir.path().join("other"), "other")?;
    let (logs, _guard) = capture();
    let addr = start(
        Transport::new(server_keys(), Some(tls_of(&pki, "db1")?)),
        Limits::default(),
    )
    .await?;

    // Right certificate, right token: served, over TLS.
    let good = Transport::new(keys(None, None, Some(AGENT)), Some(tls_of(&pki, "mon1")?));
    assert_eq!(status(&good, Channel::Agent, addr, "/agent").await?, 200);
    // Right certificate, no token: the TLS layer lets it in, the token check does not.
    let tokenless = Transport::new(Keys::default(), Some(tls_of(&pki, "mon2")?));
    assert_eq!(
        status(&tokenless, Channel::Agent, addr, "/agent").await?,
        401
    );
    // A certificate from another CA: the handshake fails, whatever the token.
    let foreign = Transport::new(keys(None, None, Some(AGENT)), Some(tls_of(&other, "mon1")?));
    assert!(status(&foreign, Channel::Agent, addr, "/agent")
        .await
        .is_err());
    // No certificate at all (a plain HTTPS client trusting the CA).
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_file)?)?;
    let anonymous = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build();
    if let Ok(anonymous) = anonymous {
        assert!(anonymous
            .get(format!("https://{addr}/open"))
            .send()
            .await
            .is_err());
    }
    // Plain HTTP to a TLS listener gets nothing.
    assert!(status(
        &Transport::new(server_keys(), None),
        Channel::Agent,
        addr,
        "/agent"
    )
    .await
    .is_err());
    let text = logs.text();
    assert!(text.contains("TLS handshake refused"), "{text}");

    // A server whose certificate comes from another CA is not trusted by our clients, even
    // one that would accept their certificates (it trusts both CAs).
    let both = dir.path().join("both-ca.pem");
    std::fs::write(
        &both,
        [std::fs::read(&other.ca_file)?, std::fs::read(&pki.ca_file)?].concat(),
    )?;
    let impostor_cert = other.issue("db1-impostor")?;
    let impostor_tls = Tls::load(&Socket {
        kind: SocketType::Ssl,
        cert_file: Some(impostor_cert.cert_file),
        key_file: Some(impostor_cert.key_file),
        ca_file: Some(both),
        ..Socket::default()
    })?;
    let impostor = start(
        Transport::new(server_keys(), Some(impostor_tls)),
        Limits::default(),
    )
    .await?;
    let foreign_trusted = Transport::new(keys(None, None, Some(AGENT)), Some(tls_of(&other, "x")?));
    assert_eq!(
        status(&foreign_trusted, Channel::Agent, impostor, "/agent").await?,
        200,
        "the impostor serves clients that trust it"
    );
    assert!(status(&good, Channel::Agent, impostor, "/agent")
        .await
        .is_err());
    Ok(())
}

#[tokio::test]
async fn a_client_that_sends_its_headers_too_slowly_is_cut_off() -> anyhow::Result<()> {
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let addr = start(Transport::new(server_keys(), None), limits).await?;
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(b"GET /open HTTP/1.1\r\nHost: x\r\n").await?;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server closed the connection within its header timeout"
    );
    Ok(())
}

#[tokio::test]
async fn a_request_that_runs_too_long_gets_503() -> anyhow::Result<()> {
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let app = Router::new().route(
        "/open",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(mmm_transport::serve(
        Transport::new(server_keys(), None),
        listener,
        app,
        policy,
        limits,
        std::future::pending(),
    ));
    let resp = reqwest::get(format!("http://{addr}/open")).await?;
    assert_eq!(resp.status(), 503);
    Ok(())
}

#[test]
fn a_program_without_its_secret_file_does_not_start_and_says_how_to_make_one() {
    let e = Transport::load(
        &Socket::default(),
        &[(
            mmm_transport::SecretKey::Agent,
            mmm_transport::Want::Required,
        )],
    )
    .expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("<socket> agent_secret_file is not set"),
        "{text}"
    );
    assert!(text.contains("chmod 600"), "{text}");
}

#[test]
fn one_file_named_by_two_keys_gives_both_roles() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (path, token) = mmm_testkit::pki::token(dir.path(), "shared")?;
    let socket = Socket {
        api_secret_file: Some(path.clone()),
        agent_secret_file: Some(path),
        ..Socket::default()
    };
    use mmm_transport::{SecretKey, Want};
    let t = Transport::load(
        &socket,
        &[
            (SecretKey::Api, Want::Required),
            (SecretKey::Agent, Want::Required),
        ],
    )?;
    let roles = t.keys().roles_of(token.as_bytes());
    assert!(roles.any_of(Roles::ADMIN) && roles.any_of(Roles::AGENT));
    assert_eq!(t.keys().roles_of(b"something else entirely"), Roles::NONE);
    Ok(())
}
