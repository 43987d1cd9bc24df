//! TLS to MySQL when the server demands it (`mmm_agent::mysql_tls`), against real MariaDB
//! 10.11 servers from `mmm-testkit` with a certificate from a throwaway CA
//! (`MariaDb::start_tls`): what MariaDB answers a plain login that needs TLS, the agent's
//! connections (`mysql::Server`, `backup`) to a server with `require_secure_transport=ON`
//! and to servers that do not demand TLS, the memory of which servers need it, and replicas
//! re-pointed to masters that accept only encrypted replication connections.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use mmm_agent::backup::{self, CopySettings};
use mmm_agent::mysql::{quote, Server, ServerOptions};
use mmm_agent::mysql_tls::{self, ER_ACCESS_DENIED_ERROR};
use mmm_agent::ops::{Mysql, RepointMethod, Repointed, Source};
use mmm_config::Secret;
use mmm_testkit::mariadb::{
    MariaDb, AGENT_PASSWORD, AGENT_USER, MONITOR_PASSWORD, MONITOR_USER, REPL_PASSWORD, REPL_USER,
};
use mysql_async::{Conn, OptsBuilder};

/// An account that may log in only over TLS.
const SSL_USER: &str = "mmm_ssl_only";
const SSL_PASSWORD: &str = "ssl-only-pw";

fn tcp(db: &MariaDb, user: &str, password: &str) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname(db.host())
        .tcp_port(db.port())
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false)
}

fn server_as(db: &MariaDb, user: &str, password: &str) -> Server {
    let mut options = ServerOptions::tcp(db.addr(), user, Secret::new(password));
    options.connect_timeout = Duration::from_secs(3);
    options.catchup_timeout = Duration::from_secs(5);
    Server::new(options)
}

fn agent_server(db: &MariaDb) -> Server {
    server_as(db, AGENT_USER, AGENT_PASSWORD)
}

fn source(name: &str, db: &MariaDb) -> Source {
    Source {
        name: name.to_string(),
        host: db.host(),
        port: db.port(),
        replication_user: REPL_USER.to_string(),
        replication_password: Secret::new(REPL_PASSWORD),
        agent_user: AGENT_USER.to_string(),
        agent_password: Secret::new(AGENT_PASSWORD),
    }
}

/// TLS handshakes the server completed.
async fn tls_accepts(db: &MariaDb) -> u64 {
    db.tls_accepts().await.expect("Ssl_finished_accepts")
}

/// Whether `mysql_tls::connect` reaches `db` as `user` encrypted.
async fn connects_encrypted(db: &MariaDb, user: &str, password: &str) -> bool {
    let mut conn = mysql_tls::connect(tcp(db, user, password))
        .await
        .unwrap_or_else(|e| panic!("{user} connects to port {}: {e}", db.port()));
    let encrypted = mysql_tls::is_encrypted(&mut conn)
        .await
        .expect("Ssl_cipher");
    let _ = conn.disconnect().await;
    encrypted
}

/// The server's refusal of a plain login: (code, SQL state, message).
async fn plain_refusal(db: &MariaDb, user: &str, password: &str) -> (u16, String, String) {
    match Conn::new(tcp(db, user, password)).await {
        Ok(_) => panic!("a plain login as {user} was accepted"),
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        Err(e) => panic!("not a server error: {e}"),
    }
}

fn access_denied(user: &str) -> (u16, String, String) {
    (
        ER_ACCESS_DENIED_ERROR,
        "28000".to_string(),
        format!("Access denied for user '{user}'@'127.0.0.1' (using password: YES)"),
    )
}

/// Pins down what the retry over TLS relies on: MariaDB 10.11 refuses a plain TCP login that
/// needs TLS, because of `require_secure_transport=ON` or an account `REQUIRE SSL`, with
/// `ER_ACCESS_DENIED_ERROR`, word for word what it answers a wrong password, and accepts the
/// same login over TLS.
#[tokio::test]
async fn mariadb_refuses_plain_logins_that_need_tls_with_access_denied() {
    let (secure_only, offers_tls) =
        tokio::join!(MariaDb::start_tls(11, true), MariaDb::start_tls(12, false));
    let secure_only = secure_only.expect("a TLS-only server starts");
    let offers_tls = offers_tls.expect("a server offering TLS starts");
    offers_tls
        .exec(&format!(
            "CREATE USER '{SSL_USER}'@'%' IDENTIFIED BY '{SSL_PASSWORD}' REQUIRE SSL"
        ))
        .await
        .expect("an account REQUIRE SSL");

    // require_secure_transport=ON, the right password.
    assert_eq!(
        plain_refusal(&secure_only, AGENT_USER, AGENT_PASSWORD).await,
        access_denied(AGENT_USER)
    );
    // A wrong password: the same answer.
    assert_eq!(
        plain_refusal(&secure_only, AGENT_USER, "wrong-password").await,
        access_denied(AGENT_USER)
    );
    // An account REQUIRE SSL, the right password, a server that does not require TLS.
    assert_eq!(
        plain_refusal(&offers_tls, SSL_USER, SSL_PASSWORD).await,
        access_denied(SSL_USER)
    );
    // The same logins over TLS are accepted.
    for (db, user, password) in [
        (&secure_only, AGENT_USER, AGENT_PASSWORD),
        (&offers_tls, SSL_USER, SSL_PASSWORD),
    ] {
        let opts = tcp(db, user, password).ssl_opts(Some(mysql_tls::tls_opts()));
        let mut conn = Conn::new(opts).await.expect("accepted over TLS");
        assert!(mysql_tls::is_encrypted(&mut conn).await.expect("cipher"));
        let _ = conn.disconnect().await;
    }
}

#[tokio::test]
async fn the_agent_connects_encrypted_to_a_server_that_requires_secure_transport() {
    let db = MariaDb::start_tls(21, true)
        .await
        .expect("a TLS-only server starts");
    assert!(!mysql_tls::needs_tls(&db.host(), db.port()));

    // The shared connect: plain refused, TLS, remembered.
    assert!(connects_encrypted(&db, MONITOR_USER, MONITOR_PASSWORD).await);
    assert!(mysql_tls::needs_tls(&db.host(), db.port()));
    // Straight to TLS from now on, for every account.
    assert!(connects_encrypted(&db, AGENT_USER, AGENT_PASSWORD).await);

    // The agent's Server: every operation works; each connection it opened was a TLS
    // handshake (the server refuses anything else over TCP anyway).
    let before = tls_accepts(&db).await;
    let s = agent_server(&db);
    let status = s.status().await.expect("status over TLS");
    assert!(status.mariadb, "{status:?}");
    s.set_read_only(true).await.expect("read_only over TLS");
    assert!(s.status().await.expect("status").read_only);
    s.ping().await.expect("ping");
    assert!(
        tls_accepts(&db).await > before,
        "the agent's connections were TLS handshakes"
    );

    // A wrong password is still refused, and the error says so without the password.
    let e = mysql_tls::connect(tcp(&db, AGENT_USER, "not-the-password-0451"))
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(&e, mysql_async::Error::Server(s) if s.code == ER_ACCESS_DENIED_ERROR),
        "{e}"
    );
    assert!(!e.to_string().contains("0451"), "{e}");
    let wrong = server_as(&db, AGENT_USER, "not-the-password-0451");
    let e = wrong.ping().await.expect_err("refused");
    assert!(e.to_string().contains("Access denied"), "{e}");
    assert!(!e.to_string().contains("0451"), "{e}");
}

#[tokio::test]
async fn servers_that_do_not_demand_tls_are_reached_unencrypted() {
    let (offers_tls, no_tls) = tokio::join!(MariaDb::start_tls(31, false), MariaDb::start(32));
    let offers_tls = offers_tls.expect("a server offering TLS starts");
    let no_tls = no_tls.expect("a server without TLS starts");

    for db in [&offers_tls, &no_tls] {
        assert!(!connects_encrypted(db, AGENT_USER, AGENT_PASSWORD).await);
        assert!(!mysql_tls::needs_tls(&db.host(), db.port()));
        agent_server(db).status().await.expect("status");
    }
    assert_eq!(
        tls_accepts(&offers_tls).await,
        0,
        "no TLS handshake with a server that allows plain logins"
    );

    // A wrong password to a server without TLS: its refusal, nothing remembered.
    let e = mysql_tls::connect(tcp(&no_tls, AGENT_USER, "wrong"))
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(&e, mysql_async::Error::Server(s) if s.code == ER_ACCESS_DENIED_ERROR),
        "{e}"
    );
    assert!(!mysql_tls::needs_tls(&no_tls.host(), no_tls.port()));
}

#[tokio::test]
async fn an_account_created_require_ssl_is_reached_over_tls() {
    let db = MariaDb::start_tls(41, false)
        .await
        .expect("a server offering TLS starts");
    db.exec(&format!(
        "CREATE USER '{SSL_USER}'@'%' IDENTIFIED BY '{SSL_PASSWORD}' REQUIRE SSL; \
         GRANT ALL PRIVILEGES ON *.* TO '{SSL_USER}'@'%'"
    ))
    .await
    .expect("an account REQUIRE SSL");
    let s = server_as(&db, SSL_USER, SSL_PASSWORD);
    s.status().await.expect("status as the REQUIRE SSL account");
    assert!(mysql_tls::needs_tls(&db.host(), db.port()));
    assert!(connects_encrypted(&db, SSL_USER, SSL_PASSWORD).await);
    assert!(tls_accepts(&db).await >= 2);
}

#[tokio::test]
async fn a_server_that_stops_offering_tls_is_reached_plain_again_and_forgotten() {
    let mut db = MariaDb::start_tls(51, true)
        .await
        .expect("a TLS-only server starts");
    let s = agent_server(&db);
    s.status().await.expect("status over TLS");
    assert!(mysql_tls::needs_tls(&db.host(), db.port()));

    db.restart_without_tls()
        .await
        .expect("restarts without TLS");
    // The pooled connection died with the server; the next one finds no TLS and goes plain.
    s.status().await.expect("status, plain");
    assert!(!mysql_tls::needs_tls(&db.host(), db.port()));
    assert!(!connects_encrypted(&db, AGENT_USER, AGENT_PASSWORD).await);
}

/// Both threads of the replica run, and `Master_SSL_Allowed` says the replication connection
/// is encrypted.
async fn assert_replicates_encrypted(replica: &MariaDb, master: &MariaDb) {
    replica
        .wait_replicating(Duration::from_secs(10))
        .await
        .expect("replicating");
    assert_eq!(
        replica
            .slave_status("Master_SSL_Allowed")
            .await
            .expect("status")
            .as_deref(),
        Some("Yes")
    );
    master
        .exec("CREATE DATABASE tls_check; CREATE TABLE tls_check.t (id INT PRIMARY KEY); INSERT INTO tls_check.t VALUES (1)")
        .await
        .expect("a write on the master");
    replica
        .sync_with(master, Duration::from_secs(10))
        .await
        .expect("the replica applies it");
    assert_eq!(
        replica
            .scalar("SELECT COUNT(*) FROM tls_check.t")
            .await
            .expect("count")
            .as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn a_replica_repointed_to_a_secure_transport_only_master_replicates_over_tls() {
    let (master, replica) = tokio::join!(MariaDb::start_tls(61, true), MariaDb::start(62));
    let master = master.expect("a TLS-only master starts");
    let replica = replica.expect("a replica starts");

    // A fresh replica has no GTID history: the file/position method, which reads the
    // master's SHOW MASTER STATUS over TLS too.
    let how = agent_server(&replica)
        .repoint(&source("db1", &master), RepointMethod::Auto)
        .await
        .expect("re-pointed to the TLS-only master");
    assert!(matches!(how, Repointed::FilePosition(_)), "{how:?}");
    assert_eq!(
        replica
            .slave_status("Slave_IO_Running")
            .await
            .expect("status")
            .as_deref(),
        Some("Yes")
    );
    assert_replicates_encrypted(&replica, &master).await;
}

/// `MASTER_SSL=1` stays with the replica through later `CHANGE MASTER`s (the agent leaves it
/// alone when the new master does not demand TLS); a MariaDB 10.11 replica moved on to a
/// master that has no TLS at all still replicates (unencrypted).
#[tokio::test]
async fn a_replica_moved_from_a_tls_only_master_to_one_without_tls_still_replicates() {
    let (secure_only, replica, no_tls) = tokio::join!(
        MariaDb::start_tls(101, true),
        MariaDb::start(102),
        MariaDb::start(103)
    );
    let secure_only = secure_only.expect("a TLS-only master starts");
    let replica = replica.expect("a replica starts");
    let no_tls = no_tls.expect("a master without TLS starts");
    let s = agent_server(&replica);
    s.repoint(&source("db1", &secure_only), RepointMethod::FilePosition)
        .await
        .expect("re-pointed to the TLS-only master");
    assert_eq!(
        replica
            .slave_status("Master_SSL_Allowed")
            .await
            .expect("status")
            .as_deref(),
        Some("Yes")
    );

    s.repoint(&source("db3", &no_tls), RepointMethod::FilePosition)
        .await
        .expect("re-pointed to the master without TLS");
    for (column, value) in [
        ("Slave_IO_Running", "Yes"),
        ("Slave_SQL_Running", "Yes"),
        ("Master_SSL_Allowed", "Yes"),
    ] {
        assert_eq!(
            replica
                .slave_status(column)
                .await
                .expect("status")
                .as_deref(),
            Some(value),
            "{column}"
        );
    }
}

/// A replica pointed at a TLS-only master without TLS (before the agent knew, or before the
/// master demanded it) has an IO thread that cannot log in; re-pointing it there finds it
/// already pointed and sets `MASTER_SSL=1` before starting it again.
#[tokio::test]
async fn a_replica_already_pointed_at_a_tls_only_master_without_tls_is_started_over_tls() {
    let (master, replica) = tokio::join!(MariaDb::start_tls(91, true), MariaDb::start(92));
    let master = master.expect("a TLS-only master starts");
    let replica = replica.expect("a replica starts");
    replica
        .exec(&format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, \
             MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=no; START SLAVE",
            quote(&master.host()),
            master.port(),
            quote(REPL_USER),
            quote(REPL_PASSWORD)
        ))
        .await
        .expect("pointed without TLS");
    assert_ne!(
        replica
            .slave_status("Slave_IO_Running")
            .await
            .expect("status")
            .as_deref(),
        Some("Yes")
    );

    let how = agent_server(&replica)
        .repoint(&source("db1", &master), RepointMethod::Auto)
        .await
        .expect("started over TLS");
    assert_eq!(how, Repointed::AlreadyThere);
    assert_replicates_encrypted(&replica, &master).await;
}

#[tokio::test]
async fn a_replica_repointed_to_a_master_whose_replication_account_requires_ssl_replicates_over_tls(
) {
    let (master, replica) = tokio::join!(MariaDb::start_tls(71, false), MariaDb::start(72));
    let master = master.expect("a master offering TLS starts");
    let replica = replica.expect("a replica starts");
    master
        .exec(&format!("ALTER USER '{REPL_USER}'@'%' REQUIRE SSL"))
        .await
        .expect("the replication account requires TLS");
    assert!(!mysql_tls::needs_tls(&master.host(), master.port()));

    agent_server(&replica)
        .repoint(&source("db1", &master), RepointMethod::FilePosition)
        .await
        .expect("re-pointed");
    assert_replicates_encrypted(&replica, &master).await;
}

#[tokio::test]
async fn mariabackup_copies_a_server_that_requires_secure_transport() {
    let db = MariaDb::start_tls(81, true)
        .await
        .expect("a TLS-only server starts");
    let state = tempfile::tempdir().expect("a state directory");
    let settings = CopySettings {
        host: "db1".into(),
        mysql_addr: db.addr(),
        mysql_user: AGENT_USER.into(),
        mysql_password: Secret::new(AGENT_PASSWORD),
        replication_user: REPL_USER.into(),
        replication_password: Secret::new(REPL_PASSWORD),
        state_dir: state.path().to_path_buf(),
        rcscript: db.write_rcscript().expect("an init script"),
        mariabackup: "/usr/bin/mariabackup".into(),
        mbstream: "/usr/bin/mbstream".into(),
        agents: BTreeMap::new(),
    };
    assert!(
        settings.mariabackup.exists(),
        "{} not found: {}",
        settings.mariabackup.display(),
        backup::INSTALL_HINT
    );
    let report = Arc::new(Mutex::new(None));
    let mut copy = backup::start(&settings, report.clone())
        .await
        .expect("the backup starts");
    assert!(mysql_tls::needs_tls(&db.host(), db.port()));
    let mut bytes = 0usize;
    while let Some(chunk) = copy.stream.next().await {
        bytes += chunk.expect("mariabackup streams").len();
    }
    let report = report
        .lock()
        .expect("report")
        .clone()
        .expect("a report at the end");
    assert_eq!(report.error, None);
    assert!(bytes > 1024 * 1024, "a copy of the server ({bytes} bytes)");
}
