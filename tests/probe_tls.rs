//! The monitor's checks (`LiveProber`) against MariaDB servers that demand TLS and servers
//! that do not, from `mmm_testkit` (`MariaDb::start_tls`: a certificate from a throwaway CA,
//! optionally `require_secure_transport=ON`). The checks connect through
//! `mmm_agent::mysql_tls`: plain first, TLS when the server refuses a plain login.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use mmm_agent::mysql_tls;
use mmm_config::Secret;
use mmm_core::{CheckKind, HostName, Probe};
use mmm_mond::probe::{CheckParams, LiveProber, Prober, Target};
use mmm_testkit::mariadb::{MariaDb, MONITOR_PASSWORD, MONITOR_USER};

fn target(db: &MariaDb) -> Target {
    Target {
        ip: IpAddr::from([127, 0, 0, 1]),
        mysql_port: db.port(),
        user: MONITOR_USER.to_string(),
        password: Secret::new(MONITOR_PASSWORD),
    }
}

fn prober(hosts: Vec<(&str, &MariaDb)>) -> LiveProber {
    let targets: BTreeMap<HostName, Target> = hosts
        .into_iter()
        .map(|(name, db)| (HostName::new(name), target(db)))
        .collect();
    let params = CheckParams {
        timeout: Duration::from_secs(2),
        max_backlog: Duration::from_secs(60),
    };
    LiveProber::new(targets, params.for_every_check()).expect("prober")
}

async fn message(prober: &LiveProber, host: &str, check: CheckKind) -> String {
    match prober.probe(&HostName::new(host), check).await {
        Probe::Ok(s) | Probe::Error(s) | Probe::Unknown(s) => s,
    }
}

/// TLS handshakes the server completed.
async fn tls_accepts(db: &MariaDb) -> u64 {
    db.tls_accepts().await.expect("Ssl_finished_accepts")
}

/// The mysql check and the replication checks pass against a replica that runs with
/// `require_secure_transport=ON`, over TLS; against a master that offers TLS but does not
/// demand it they pass over plain connections.
#[tokio::test]
async fn checks_pass_encrypted_on_a_secure_transport_only_server_and_plain_elsewhere() {
    let (master, replica) = tokio::join!(MariaDb::start_tls(1, false), MariaDb::start_tls(2, true));
    let master = master.expect("a master offering TLS starts");
    let replica = replica.expect("a TLS-only replica starts");
    replica
        .replicate_from(&master, false)
        .await
        .expect("replication");
    let p = prober(vec![("db1", &master), ("db2", &replica)]);

    assert_eq!(message(&p, "db1", CheckKind::Mysql).await, "OK");
    assert_eq!(message(&p, "db2", CheckKind::Mysql).await, "OK");
    assert_eq!(message(&p, "db2", CheckKind::RepThreads).await, "OK");
    assert_eq!(message(&p, "db2", CheckKind::RepBacklog).await, "OK");

    // The replica's checks were TLS handshakes (and it refuses anything else over TCP); the
    // master's were plain, though it offers TLS.
    assert!(tls_accepts(&replica).await >= 3);
    assert!(mysql_tls::needs_tls("127.0.0.1", replica.port()));
    assert_eq!(tls_accepts(&master).await, 0);
    assert!(!mysql_tls::needs_tls("127.0.0.1", master.port()));

    // A wrong monitor password on the TLS-only server: MMM's connect error, the server's
    // refusal, no password in it.
    let mut wrong = target(&replica);
    wrong.password = Secret::new("wrong-monitor-pw-0451");
    let targets = BTreeMap::from([(HostName::new("db2"), wrong)]);
    let params = CheckParams {
        timeout: Duration::from_secs(2),
        max_backlog: Duration::from_secs(60),
    };
    let p = LiveProber::new(targets, params.for_every_check()).expect("prober");
    let refused = message(&p, "db2", CheckKind::Mysql).await;
    assert!(
        refused.starts_with(&format!(
            "ERROR: Connect error (host = 127.0.0.1:{}, user = mmm_monitor)! Access denied for user 'mmm_monitor'@'127.0.0.1'",
            replica.port()
        )),
        "{refused}"
    );
    assert!(!refused.contains("0451"), "{refused}");
}
