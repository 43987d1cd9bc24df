//! The agent's logic (status, epochs, lease, fencing, order of steps) over recording
//! in-memory hands, on tokio's paused clock. The real hands are proven in `vip.rs`,
//! `mysql.rs` and `daemon.rs`; here the point is what the agent decides and in which order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mmm_agent::agent::{Agent, Refusal, RoleDef, Settings};
use mmm_agent::monitors::{Monitors, RenewError};
use mmm_agent::ops::{
    BinlogPos, Killed, Mysql, MysqlError, ReplicaStatus, RepointMethod, Repointed, ServerStatus,
    Source, VipError, Vips,
};
use mmm_agent::protocol::{SetStatus, WriterState};
use mmm_agent::store::Store;
use mmm_config::{CatchupPolicy, Secret};
use mmm_core::api::{HostReport, LeaseGrant, LeaseRequest, ReportReply};
use mmm_core::{AgentStatus, Epoch, HostMode, HostName, HostState, RoleIp, RoleName};

const WRITER_IP: &str = "10.0.0.100";
const READER_IP: &str = "10.0.0.101";

/// Every operation on the hands, in order.
#[derive(Default)]
struct World {
    ops: Vec<String>,
    vips: BTreeSet<IpAddr>,
    read_only: bool,
    grants: VecDeque<Result<u64, RenewError>>,
    default_grant: Option<Result<u64, RenewError>>,
    /// The local mysqld does not answer.
    mysqld_down: bool,
    /// A ping never returns (a hung server).
    ping_hangs: bool,
    /// The server is frozen (SIGSTOP): `read_only` and the session kill wait for it up to a
    /// second (the connect timeout) and fail if it is still frozen then.
    frozen: bool,
    /// What the pid file says: the server's process is gone.
    process_gone: Option<String>,
    /// The server's executed GTID position.
    executed: Option<String>,
    /// Its `@@gtid_binlog_state`, when it has one.
    binlog_state: Option<String>,
    /// `wait_executed` fails (the position never arrives).
    never_executes: bool,
    /// How many re-pointings fail before one works.
    repoint_failures: u32,
    /// What the monitor answers to a report: confirmed or not.
    confirm_reports: bool,
    /// What each peer has executed; a peer missing here does not answer.
    peer_positions: BTreeMap<String, String>,
    /// The peers asked with a shorter connect timeout than the usual one.
    hurried_peers: Vec<String>,
    /// Fetching from a peer fails.
    fetch_fails: bool,
    /// What `SHOW SLAVE STATUS` says.
    replica: Option<ReplicaStatus>,
    /// `status()` does not answer while set (`SHOW MASTER STATUS` behind commits that wait
    /// for a semi-sync acknowledgement).
    status_hangs: bool,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<World>>);

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
    fn take_ops(&self) -> Vec<String> {
        self.with(|w| std::mem::take(&mut w.ops))
    }
    /// Waits while the server is frozen, a second at most.
    async fn wait_thawed(&self) -> Result<(), MysqlError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.with(|w| w.frozen) {
            if tokio::time::Instant::now() >= deadline {
                return Err(MysqlError::Unreachable {
                    addr: "127.0.0.1:3306".into(),
                    reason: "no connection within 1s".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

impl Vips for Shared {
    async fn configured(&self) -> Result<Vec<IpAddr>, VipError> {
        Ok(self.with(|w| w.vips.iter().copied().collect()))
    }
    async fn add(&self, ip: IpAddr) -> Result<bool, VipError> {
        Ok(self.with(|w| {
            let added = w.vips.insert(ip);
            if added {
                w.ops.push(format!("vip+ {ip}"));
            }
            added
        }))
    }
    async fn remove(&self, ip: IpAddr) -> Result<bool, VipError> {
        Ok(self.with(|w| {
            let removed = w.vips.remove(&ip);
            if removed {
                w.ops.push(format!("vip- {ip}"));
            }
            removed
        }))
    }
}

impl Mysql for Shared {
    async fn ping(&self) -> Result<(), MysqlError> {
        if self.with(|w| w.ping_hangs) {
            std::future::pending::<()>().await;
        }
        if self.with(|w| w.mysqld_down) {
            return Err(MysqlError::Unreachable {
                addr: "127.0.0.1:3306".into(),
                reason: "Connection refused".into(),
            });
        }
        Ok(())
    }
    fn process_gone(&self) -> Option<String> {
        self.with(|w| w.process_gone.clone())
    }
    async fn status(&self) -> Result<ServerStatus, MysqlError> {
        while self.with(|w| w.status_hangs) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(ServerStatus {
            version: "10.11".into(),
            mariadb: true,
            read_only: self.with(|w| w.read_only),
            super_read_only: None,
            uptime_secs: 1,
            binlog: None,
            gtid_executed: None,
            replica: self.with(|w| w.replica.clone()),
        })
    }
    async fn set_read_only(&self, on: bool) -> Result<(), MysqlError> {
        self.wait_thawed().await?;
        self.with(|w| {
            w.read_only = on;
            w.ops.push(format!("read_only={}", u8::from(on)));
        });
        Ok(())
    }
    async fn kill_client_sessions(&self, _: u32, _: Duration) -> Result<Killed, MysqlError> {
        self.wait_thawed().await?;
        self.with(|w| w.ops.push("kill".into()));
        Ok(Killed::default())
    }
    async fn executed_position(&self) -> Result<Option<String>, MysqlError> {
        Ok(self.with(|w| w.executed.clone()))
    }
    async fn binlog_state(&self) -> Result<Option<String>, MysqlError> {
        Ok(self.with(|w| w.binlog_state.clone()))
    }
    async fn wait_executed(&self, position: &str, timeout: Duration) -> Result<(), MysqlError> {
        self.with(|w| w.ops.push(format!("wait {position}")));
        if self.with(|w| w.never_executes) {
            return Err(MysqlError::Timeout {
                what: format!("executing GTID position {position}"),
                timeout,
            });
        }
        Ok(())
    }
    async fn peer_executed(
        &self,
        peer: &Source,
        connect: Option<Duration>,
        _: Duration,
    ) -> Result<Option<String>, MysqlError> {
        if connect.is_some() {
            self.with(|w| w.hurried_peers.push(peer.name.clone()));
        }
        self.with(|w| w.peer_positions.get(&peer.name).cloned())
            .map(Some)
            .ok_or_else(|| MysqlError::Unreachable {
                addr: peer.name.clone(),
                reason: "no route to host".into(),
            })
    }
    async fn catch_up_from(
        &self,
        peer: &Source,
        position: &str,
        timeout: Duration,
    ) -> Result<(), MysqlError> {
        self.with(|w| w.ops.push(format!("fetch {position} from {}", peer.name)));
        if self.with(|w| w.fetch_fails) {
            return Err(MysqlError::Timeout {
                what: format!("fetching GTID position {position}"),
                timeout,
            });
        }
        self.with(|w| w.executed = Some(position.to_string()));
        Ok(())
    }
    async fn wait_relay_applied(&self, _: Duration) -> Result<(), MysqlError> {
        self.with(|w| w.ops.push("catch-up".into()));
        Ok(())
    }
    async fn repoint(&self, source: &Source, _: RepointMethod) -> Result<Repointed, MysqlError> {
        let fail = self.with(|w| {
            w.ops.push(format!("repoint {}", source.name));
            let fail = w.repoint_failures > 0;
            w.repoint_failures = w.repoint_failures.saturating_sub(1);
            fail
        });
        if fail {
            return Err(MysqlError::Statement {
                statement: "START SLAVE".into(),
                reason: "GTID 0-1-35 is not in the master's binlog".into(),
            });
        }
        Ok(Repointed::Gtid)
    }
    async fn set_replication(&self, running: bool) -> Result<(), MysqlError> {
        self.with(|w| w.ops.push(format!("replication={running}")));
        Ok(())
    }
}

impl Monitors for Shared {
    async fn renew(&self, req: &LeaseRequest) -> Result<LeaseGrant, RenewError> {
        let answer = self.with(|w| {
            w.ops.push(format!("renew {}", req.epoch));
            w.grants
                .pop_front()
                .or_else(|| w.default_grant.clone())
                .unwrap_or(Err(RenewError::Unavailable("no monitor".into())))
        });
        answer.map(|epoch| LeaseGrant {
            host: req.host.clone(),
            epoch,
            lease_ms: 1500,
            renew_ms: 300,
            replica: "mon1".into(),
        })
    }

    async fn report(&self, report: &HostReport) -> Result<ReportReply, String> {
        Ok(self.with(|w| {
            w.ops.push(format!("report {}", report.message));
            ReportReply {
                confirmed: w.confirm_reports,
                detail: String::new(),
            }
        }))
    }
}

type TestAgent = Agent<Shared, Shared, Shared>;

fn settings(mode: HostMode) -> Settings {
    let role = |ip: &str| RoleDef {
        ips: vec![ip.parse().unwrap()],
        hosts: vec!["db1".into(), "db2".into()],
    };
    let source = |name: &str| Source {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 3306,
        replication_user: "repl".into(),
        replication_password: Secret::new("x"),
        agent_user: "agent".into(),
        agent_password: Secret::new("y"),
    };
    Settings {
        host: "db1".into(),
        mode,
        writer_role: RoleName::new("writer"),
        roles: BTreeMap::from([
            (RoleName::new("writer"), role(WRITER_IP)),
            (RoleName::new("reader"), role(READER_IP)),
        ]),
        sources: ["db1", "db2", "db3", "db4"]
            .into_iter()
            .map(|h| (h.to_string(), source(h)))
            .collect(),
        max_kill_retries: 10,
        kill_pause: Duration::from_millis(100),
        fence_margin: Duration::from_millis(300),
        catchup_timeout: Duration::from_secs(10),
        catchup_policy: CatchupPolicy::Wait,
        renew_every: Duration::from_millis(300),
        uptime: mmm_agent::agent::uptime_secs,
    }
}

fn agent(world: &Shared, dir: &std::path::Path, mode: HostMode) -> Arc<TestAgent> {
    agent_with(world, dir, settings(mode))
}

fn agent_with(world: &Shared, dir: &std::path::Path, settings: Settings) -> Arc<TestAgent> {
    Arc::new(
        Agent::new(
            settings,
            world.clone(),
            world.clone(),
            world.clone(),
            Store::new(dir),
        )
        .unwrap(),
    )
}

fn status(roles: &[(&str, &str)], master: Option<&str>, epoch: u64) -> AgentStatus {
    AgentStatus {
        host: HostName::new("db1"),
        state: HostState::Online,
        roles: roles
            .iter()
            .map(|(r, ip)| RoleIp::new(RoleName::new(*r), ip.parse().unwrap()))
            .collect(),
        active_master: master.map(HostName::new),
        epoch: Epoch(epoch),
    }
}

fn writer(epoch: u64) -> AgentStatus {
    status(&[("writer", WRITER_IP)], Some("db1"), epoch)
}

/// A master's agent made the active writer at epoch 1 (one grant), its operations so far
/// taken.
async fn active_writer(dir: &std::path::Path) -> (Shared, Arc<TestAgent>) {
    let world = Shared::default();
    world.with(|w| w.grants.push_back(Ok(1)));
    let a = agent(&world, dir, HostMode::Master);
    a.apply_status(writer(1)).await.unwrap();
    world.take_ops();
    (world, a)
}

#[tokio::test(start_paused = true)]
async fn promotion_catches_up_then_gets_a_lease_then_clears_read_only_then_adds_the_vip() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| w.grants.push_back(Ok(1)));
    let a = agent(&world, dir.path(), HostMode::Master);
    let reply = a.apply_status(writer(1)).await.unwrap();
    assert!(reply.ok(), "{reply:?}");
    assert_eq!(
        world.take_ops(),
        ["catch-up", "renew 1", "read_only=0", "vip+ 10.0.0.100"]
    );
    assert!(matches!(reply.writer, WriterState::Active { .. }));
}

#[tokio::test(start_paused = true)]
async fn an_unplanned_promotion_fetches_from_the_peer_furthest_ahead_before_taking_writes() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.executed = Some("0-1-100".into());
        w.read_only = true;
        // db2 (the old writer, HARD_OFFLINE) does not answer; db3 acknowledged two more
        // transactions than this host received, db4 one: fetching from db3 covers db4.
        w.peer_positions = BTreeMap::from([
            ("db3".to_string(), "0-1-102".to_string()),
            ("db4".to_string(), "0-1-101".to_string()),
        ]);
        w.fetch_fails = true;
        w.default_grant = Some(Ok(1));
    });
    let a = agent(&world, dir.path(), HostMode::Master);
    let req = |status| SetStatus {
        status,
        catch_up_to: None,
        peers: vec!["db2".into(), "db3".into(), "db4".into()],
        offline_peers: vec!["db2".into()],
        term: 0,
    };
    let reply = a.apply(req(writer(1))).await.unwrap();
    assert_eq!(
        world.with(|w| std::mem::take(&mut w.hurried_peers)),
        ["db2"],
        "only the HARD_OFFLINE peer is asked with a short connect timeout"
    );
    assert!(
        matches!(&reply.writer, WriterState::Waiting { reason } if reason.contains("fetching 0-1-102 from db3")),
        "a peer ahead that cannot be fetched from holds the promotion: {reply:?}"
    );
    assert_eq!(world.take_ops(), ["catch-up", "fetch 0-1-102 from db3"]);
    assert!(world.with(|w| w.read_only), "still read-only");

    world.with(|w| w.fetch_fails = false);
    let reply = a.apply(req(writer(1))).await.unwrap();
    assert!(
        matches!(reply.writer, WriterState::Active { .. }),
        "{reply:?}"
    );
    assert!(
        reply
            .done
            .iter()
            .any(|d| d.contains("fetched up to 0-1-102 from db3")),
        "{reply:?}"
    );
    assert_eq!(
        world.take_ops(),
        [
            "catch-up",
            "fetch 0-1-102 from db3",
            "renew 1",
            "read_only=0",
            "vip+ 10.0.0.100"
        ]
    );
}

/// A deposed leader that has not noticed yet keeps sending the status of its own committed
/// state; once the agent has heard from the leader of a later term, those are refused and
/// change nothing, so the two leaders do not undo each other's work.
#[tokio::test(start_paused = true)]
async fn a_status_from_the_leader_of_an_earlier_term_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    let a = agent(&world, dir.path(), HostMode::Slave);
    let reader = |ip: &str| status(&[("reader", ip)], Some("db1"), 1);
    let with_term = |status, term| SetStatus {
        status,
        catch_up_to: None,
        peers: vec![],
        offline_peers: vec![],
        term,
    };
    a.apply(with_term(reader(READER_IP), 5)).await.unwrap();
    world.take_ops();
    let stale = a.apply(with_term(status(&[], Some("db1"), 1), 4)).await;
    assert!(
        matches!(stale, Err(Refusal::StaleTerm { got: 4, seen: 5 })),
        "{stale:?}"
    );
    assert!(world.take_ops().is_empty(), "nothing done");
    assert_eq!(
        a.pong().await.told.map(|t| t.roles.len()),
        Some(1),
        "the reader role stays"
    );
    // The term survives a restart.
    drop(a);
    let a = agent(&world, dir.path(), HostMode::Slave);
    let stale = a.apply(with_term(status(&[], Some("db1"), 1), 4)).await;
    assert!(matches!(stale, Err(Refusal::StaleTerm { .. })), "{stale:?}");
    // The same or a later term is taken, and so is an earlier one that moves the epoch on
    // (a monitor group rebuilt from scratch counts terms from 1 again).
    a.apply(with_term(status(&[], Some("db1"), 1), 6))
        .await
        .unwrap();
    a.apply(with_term(status(&[], Some("db1"), 2), 1))
        .await
        .unwrap();
}

/// The simulation found this: db1 crashed with a transaction of its own in its binary log that
/// no replica received (0-1-538), db2 took over and its first write, 0-2-538, was acknowledged
/// by db4; db2 was then cut off and db1 came back and was promoted. Compared by sequence number
/// alone, db4's position (538) is not ahead of db1's (538), so db1 took writes without db4's
/// acknowledged transaction. By the binary log state, db1 lacks 0-2-538 and fetches it first.
#[tokio::test(start_paused = true)]
async fn a_peer_at_the_same_sequence_number_from_another_server_is_fetched_from() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.executed = Some("0-1-538".into());
        w.binlog_state = Some("0-1-538,0-2-412".into());
        w.read_only = true;
        w.peer_positions = BTreeMap::from([
            ("db3".to_string(), "0-1-537".to_string()),
            ("db4".to_string(), "0-2-538".to_string()),
        ]);
        w.default_grant = Some(Ok(1));
    });
    let a = agent(&world, dir.path(), HostMode::Master);
    let reply = a
        .apply(SetStatus {
            status: writer(1),
            catch_up_to: None,
            peers: vec!["db2".into(), "db3".into(), "db4".into()],
            offline_peers: vec![],
            term: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        world.take_ops(),
        [
            "catch-up",
            "fetch 0-2-538 from db4",
            "renew 1",
            "read_only=0",
            "vip+ 10.0.0.100"
        ],
        "{reply:?}"
    );
}

/// `catchup_policy promote`: a promotion that cannot fetch what a peer acknowledged takes
/// writes anyway and says what may be missing (with `wait`, the test above: it holds).
#[tokio::test(start_paused = true)]
async fn with_catchup_policy_promote_a_promotion_that_cannot_catch_up_takes_writes_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.executed = Some("0-1-100".into());
        w.read_only = true;
        w.peer_positions = BTreeMap::from([("db3".to_string(), "0-1-102".to_string())]);
        w.fetch_fails = true;
        w.default_grant = Some(Ok(1));
    });
    let mut s = settings(HostMode::Master);
    s.catchup_policy = CatchupPolicy::Promote;
    let a = agent_with(&world, dir.path(), s);
    let reply = a
        .apply(SetStatus {
            status: writer(1),
            catch_up_to: None,
            peers: vec!["db2".into(), "db3".into()],
            offline_peers: vec![],
            term: 0,
        })
        .await
        .unwrap();
    assert!(
        matches!(reply.writer, WriterState::Active { .. }),
        "{reply:?}"
    );
    assert!(
        reply
            .done
            .iter()
            .any(|d| d.contains("taking writes anyway") && d.contains("fetching 0-1-102 from db3")),
        "{reply:?}"
    );
    assert_eq!(
        world.take_ops(),
        [
            "catch-up",
            "fetch 0-1-102 from db3",
            "renew 1",
            "read_only=0",
            "vip+ 10.0.0.100"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn demotion_removes_the_vip_before_read_only_and_the_session_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (world, a) = active_writer(dir.path()).await;
    let reply = a
        .apply_status(status(&[("reader", READER_IP)], Some("db2"), 2))
        .await
        .unwrap();
    assert!(reply.ok(), "{reply:?}");
    assert_eq!(
        world.take_ops(),
        ["vip- 10.0.0.100", "read_only=1", "kill", "vip+ 10.0.0.101"]
    );
    assert_eq!(reply.writer, WriterState::NotWriter);
}

#[tokio::test(start_paused = true)]
async fn without_a_lease_the_writer_stays_read_only_and_is_activated_by_the_first_grant() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| w.read_only = true);
    let a = agent(&world, dir.path(), HostMode::Master);
    let reply = a.apply_status(writer(1)).await.unwrap();
    assert!(
        matches!(reply.writer, WriterState::Waiting { .. }),
        "{reply:?}"
    );
    assert!(world.with(|w| w.vips.is_empty() && w.read_only));
    world.with(|w| w.default_grant = Some(Ok(1)));
    let lease = tokio::spawn({
        let a = a.clone();
        async move { a.run_lease().await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(a.writer_state().await, WriterState::Active { .. }));
    assert!(world.with(|w| !w.read_only && w.vips.len() == 1));
    lease.abort();
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_runs_out_fences_the_writer_before_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let start = tokio::time::Instant::now();
    let (world, a) = active_writer(dir.path()).await;
    let watchdog = tokio::spawn({
        let a = a.clone();
        async move { a.run_watchdog().await }
    });
    // The monitors stop answering: no renewal. Lease 1.5 s, fence margin 0.3 s.
    tokio::time::sleep(Duration::from_millis(1150)).await;
    assert!(matches!(a.writer_state().await, WriterState::Active { .. }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(world.take_ops(), ["vip- 10.0.0.100", "read_only=1", "kill"]);
    assert!(tokio::time::Instant::now() - start < Duration::from_millis(1500));
    assert!(matches!(
        a.writer_state().await,
        WriterState::Waiting { .. }
    ));
    watchdog.abort();
}

/// The writer's mysqld is frozen (SIGSTOP) when its lease runs out: the VIP goes, but the kill
/// and read_only=1 cannot reach the server. They are retried, and land within a retry interval
/// of the server answering again, long before the next reconciliation and before commits it
/// held could outlast their semi-sync wait (3 s) and return OK.
#[tokio::test(start_paused = true)]
async fn a_fence_that_cannot_reach_a_frozen_mysqld_lands_as_soon_as_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (world, a) = active_writer(dir.path()).await;
    world.with(|w| w.frozen = true);
    let tasks = [
        tokio::spawn({
            let a = a.clone();
            async move { a.run_watchdog().await }
        }),
        tokio::spawn({
            let a = a.clone();
            async move { a.run_fence_retry().await }
        }),
    ];
    // No renewal: the lease (1.5 s, fence margin 0.3 s) runs out at 1.2 s.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert_eq!(
        world.take_ops(),
        ["vip- 10.0.0.100"],
        "only the VIP could go"
    );
    assert!(!world.with(|w| w.read_only));

    world.with(|w| w.frozen = false);
    let thawed = tokio::time::Instant::now();
    let mut ops = Vec::new();
    while !(ops.iter().any(|o| o == "kill") && ops.iter().any(|o| o == "read_only=1")) {
        assert!(
            thawed.elapsed() < Duration::from_secs(5),
            "the fence never landed: {ops:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        ops.extend(world.take_ops());
    }
    let took = thawed.elapsed();
    assert!(
        took <= Duration::from_millis(150),
        "the fence landed {took:?} after the server answered again: {ops:?}"
    );
    assert!(world.with(|w| w.read_only));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        world.take_ops().is_empty(),
        "nothing more once the fence has landed"
    );
    for t in tasks {
        t.abort();
    }
}

/// MySQL's status hangs (SHOW MASTER STATUS waits while commits wait for a semi-sync
/// acknowledgement, as on a new writer before any slave replicates from it): reconciliation
/// waits, but the lease keeps being renewed and the writer stays active. Found in the lab: the
/// renewal loop used to wait for the gate a hung reconciliation held, the lease ran out and
/// the writer fenced itself, killing the commits that were waiting.
#[tokio::test(start_paused = true)]
async fn a_writer_whose_mysql_status_hangs_keeps_its_lease_and_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let (world, a) = active_writer(dir.path()).await;
    world.with(|w| {
        w.default_grant = Some(Ok(1));
        w.status_hangs = true;
    });
    let tasks = [
        tokio::spawn({
            let a = a.clone();
            async move { a.run_lease().await }
        }),
        tokio::spawn({
            let a = a.clone();
            async move { a.run_watchdog().await }
        }),
        tokio::spawn({
            let a = a.clone();
            async move { a.run_reconcile(Duration::from_secs(1)).await }
        }),
    ];
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ops = world.take_ops();
    assert!(
        !ops.iter().any(|o| o.starts_with("vip-") || o == "kill"),
        "the writer fenced itself: {ops:?}"
    );
    assert!(
        ops.iter().filter(|o| o.starts_with("renew")).count() >= 10,
        "{ops:?}"
    );
    assert!(matches!(a.writer_state().await, WriterState::Active { .. }));
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_runs_out_while_mysql_holds_up_a_reconciliation_is_fenced_and_stays_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let start = tokio::time::Instant::now();
    let (world, a) = active_writer(dir.path()).await;
    // A reconciliation waits for MySQL's status (outside the gate); the lease is not renewed.
    world.with(|w| w.status_hangs = true);
    let reconcile = tokio::spawn({
        let a = a.clone();
        async move { a.reconcile().await }
    });
    let watchdog = tokio::spawn({
        let a = a.clone();
        async move { a.run_watchdog().await }
    });
    tokio::time::sleep(Duration::from_millis(1250)).await;
    // Fenced before the lease (1.5 s) ends.
    assert_eq!(world.take_ops(), ["vip- 10.0.0.100", "read_only=1", "kill"]);
    assert!(tokio::time::Instant::now() - start < Duration::from_millis(1500));
    // MySQL answers again: the reconciliation, which read the status from before the
    // fence, does not make the host writable again.
    world.with(|w| w.status_hangs = false);
    reconcile.await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ops = world.take_ops();
    assert!(
        !ops.iter()
            .any(|o| o == "read_only=0" || o.starts_with("vip+")),
        "{ops:?}"
    );
    assert!(world.with(|w| w.read_only && w.vips.is_empty()));
    assert!(matches!(
        a.writer_state().await,
        WriterState::Waiting { .. }
    ));
    watchdog.abort();
}

#[tokio::test(start_paused = true)]
async fn renewals_keep_the_writer_active_past_the_first_lease() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| w.default_grant = Some(Ok(1)));
    let a = agent(&world, dir.path(), HostMode::Master);
    a.apply_status(writer(1)).await.unwrap();
    let tasks = [
        tokio::spawn({
            let a = a.clone();
            async move { a.run_lease().await }
        }),
        tokio::spawn({
            let a = a.clone();
            async move { a.run_watchdog().await }
        }),
    ];
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(matches!(a.writer_state().await, WriterState::Active { .. }));
    assert!(!world.take_ops().iter().any(|o| o == "read_only=1"));
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_renewal_fences_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.grants.push_back(Ok(1));
        w.default_grant = Some(Err(RenewError::Refused(
            "the writer is db2 at epoch 2".into(),
        )));
    });
    let a = agent(&world, dir.path(), HostMode::Master);
    a.apply_status(writer(1)).await.unwrap();
    world.take_ops();
    let lease = tokio::spawn({
        let a = a.clone();
        async move { a.run_lease().await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        world.take_ops(),
        ["renew 1", "vip- 10.0.0.100", "read_only=1", "kill"]
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !world.take_ops().iter().any(|o| o.starts_with("renew")),
        "a deposed writer stops asking"
    );
    assert_eq!(a.writer_state().await, WriterState::NotWriter);
    lease.abort();
}

#[tokio::test(start_paused = true)]
async fn a_lower_epoch_is_refused_and_changes_nothing_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| w.grants.push_back(Ok(5)));
    let a = agent(&world, dir.path(), HostMode::Master);
    a.apply_status(writer(5)).await.unwrap();
    drop(a);
    let world2 = Shared::default();
    let b = agent(&world2, dir.path(), HostMode::Master);
    assert_eq!(b.epoch().await, 5);
    let err = b
        .apply_status(status(&[("reader", READER_IP)], Some("db2"), 4))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Refusal::StaleEpoch { got: 4, seen: 5 }),
        "{err}"
    );
    assert!(world2.take_ops().is_empty());
}

#[tokio::test(start_paused = true)]
async fn requests_for_another_host_or_foreign_roles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    let a = agent(&world, dir.path(), HostMode::Master);
    let mut other = writer(1);
    other.host = HostName::new("db2");
    assert!(matches!(
        a.apply_status(other).await,
        Err(Refusal::WrongHost { .. })
    ));
    let bad_ip = status(&[("reader", "10.9.9.9")], None, 1);
    let err = a.apply_status(bad_ip).await.unwrap_err().to_string();
    assert_eq!(err, "10.9.9.9 is not an IP of role 'reader'");
    let unknown = status(&[("backup", READER_IP)], None, 1);
    let err = a.apply_status(unknown).await.unwrap_err().to_string();
    assert_eq!(err, "unknown role 'backup'");
    assert!(world.take_ops().is_empty());
    assert_eq!(a.epoch().await, 0, "a refused request records nothing");
}

#[tokio::test(start_paused = true)]
async fn a_restarted_writer_agent_fences_first_then_reactivates_on_a_grant() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| w.grants.push_back(Ok(3)));
    let a = agent(&world, dir.path(), HostMode::Master);
    a.apply_status(writer(3)).await.unwrap();
    drop(a);
    world.take_ops();
    // The process restarts; the VIP and read_only=0 are still there.
    let b = agent(&world, dir.path(), HostMode::Master);
    b.start().await;
    assert_eq!(world.take_ops(), ["vip- 10.0.0.100", "read_only=1"]);
    world.with(|w| w.default_grant = Some(Ok(3)));
    let lease = tokio::spawn({
        let b = b.clone();
        async move { b.run_lease().await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        world.take_ops(),
        ["renew 3", "catch-up", "read_only=0", "vip+ 10.0.0.100"]
    );
    lease.abort();
}

/// The simulation found this: a new writer waiting to fetch what a peer acknowledged (the
/// fetch failing) had its agent restarted; the restarted agent knew its status from disk but
/// not the peers, so on the next grant it took writes without them and the peer's
/// acknowledged transactions were lost. The peers are kept on disk with the status.
#[tokio::test(start_paused = true)]
async fn a_restarted_agent_still_fetches_from_the_peers_before_taking_writes() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.executed = Some("0-1-100".into());
        w.read_only = true;
        w.peer_positions = BTreeMap::from([("db3".to_string(), "0-1-102".to_string())]);
        w.fetch_fails = true;
        w.default_grant = Some(Ok(1));
    });
    let a = agent(&world, dir.path(), HostMode::Master);
    let reply = a
        .apply(SetStatus {
            status: writer(1),
            catch_up_to: None,
            peers: vec!["db3".into()],
            offline_peers: vec![],
            term: 0,
        })
        .await
        .unwrap();
    assert!(
        matches!(&reply.writer, WriterState::Waiting { reason } if reason.contains("from db3")),
        "{reply:?}"
    );
    drop(a);
    world.take_ops();
    let b = agent(&world, dir.path(), HostMode::Master);
    b.start().await;
    let lease = tokio::spawn({
        let b = b.clone();
        async move { b.run_lease().await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    lease.abort();
    let ops = world.take_ops();
    assert!(
        ops.contains(&"fetch 0-1-102 from db3".to_string()),
        "the restarted agent asks the peer again: {ops:?}"
    );
    assert!(
        world.with(|w| w.read_only),
        "no writes without the peer's: {ops:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slave_is_repointed_once_per_new_master_and_admin_offline_stops_replication() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    let a = agent(&world, dir.path(), HostMode::Slave);
    a.apply_status(status(&[("reader", READER_IP)], Some("db2"), 1))
        .await
        .unwrap();
    assert_eq!(world.take_ops(), ["repoint db2", "vip+ 10.0.0.101"]);
    a.apply_status(status(&[("reader", READER_IP)], Some("db2"), 1))
        .await
        .unwrap();
    assert!(world.take_ops().is_empty(), "nothing to do the second time");
    let mut offline = status(&[], Some("db2"), 1);
    offline.state = HostState::AdminOffline;
    a.apply_status(offline).await.unwrap();
    assert_eq!(world.take_ops(), ["vip- 10.0.0.101", "replication=false"]);
    a.apply_status(status(&[], Some("db2"), 1)).await.unwrap();
    assert_eq!(world.take_ops(), ["replication=true"]);
}

#[tokio::test(start_paused = true)]
async fn reconciliation_puts_back_what_an_active_writer_lost_and_strips_others() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| w.grants.push_back(Ok(1)));
    let a = agent(&world, dir.path(), HostMode::Master);
    a.apply_status(writer(1)).await.unwrap();
    world.with(|w| {
        w.vips.clear();
        w.read_only = true;
    });
    world.take_ops();
    let fixed = a.reconcile().await;
    assert_eq!(fixed.len(), 2, "{fixed:?}");
    assert_eq!(world.take_ops(), ["vip+ 10.0.0.100", "read_only=0"]);

    let world2 = Shared::default();
    world2.with(|w| {
        w.vips.insert(WRITER_IP.parse().unwrap());
    });
    let dir2 = tempfile::tempdir().unwrap();
    let b = agent(&world2, dir2.path(), HostMode::Slave);
    b.reconcile().await;
    assert_eq!(world2.take_ops(), ["vip- 10.0.0.100", "read_only=1"]);
}

/// A reader VIP the agent was told before it stopped may have moved to another host while it
/// was down: a restarted agent does not put it back until a monitor tells it again.
#[tokio::test(start_paused = true)]
async fn a_restarted_agent_restores_reader_vips_only_once_a_monitor_confirms_them() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    let a = agent(&world, dir.path(), HostMode::Slave);
    a.apply_status(status(&[("reader", READER_IP)], Some("db2"), 1))
        .await
        .unwrap();
    drop(a);
    world.with(|w| w.vips.clear());
    world.take_ops();
    let b = agent(&world, dir.path(), HostMode::Slave);
    b.start().await;
    b.reconcile().await;
    assert!(
        !world.take_ops().iter().any(|op| op.starts_with("vip+")),
        "no reader VIP restored from the remembered status"
    );
    b.apply_status(status(&[("reader", READER_IP)], Some("db2"), 2))
        .await
        .unwrap();
    assert_eq!(
        world.take_ops(),
        ["repoint db2", "vip+ 10.0.0.101"],
        "the same roles as remembered: the VIP is put back all the same"
    );
    world.with(|w| w.vips.clear());
    b.reconcile().await;
    assert_eq!(
        world.take_ops(),
        ["vip+ 10.0.0.101"],
        "restored once confirmed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dead_mysqld_is_reported_until_the_monitor_confirms_it_and_again_after_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    let a = agent(&world, dir.path(), HostMode::Master);
    let watch = tokio::spawn({
        let a = a.clone();
        async move { a.run_mysql_watch(Duration::from_millis(100)).await }
    });
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        world.take_ops(),
        Vec::<String>::new(),
        "nothing while mysqld answers"
    );

    world.with(|w| w.mysqld_down = true);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let reports = world.take_ops();
    assert!(
        reports.len() >= 2,
        "reported every interval until confirmed: {reports:?}"
    );
    assert!(reports[0].starts_with("report mysqld does not answer: cannot connect"));

    world.with(|w| w.confirm_reports = true);
    tokio::time::sleep(Duration::from_millis(150)).await;
    world.take_ops();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        world.take_ops(),
        Vec::<String>::new(),
        "no more reports once confirmed"
    );

    world.with(|w| w.mysqld_down = false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    world.with(|w| w.mysqld_down = true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(world.take_ops().len(), 1, "a new death is reported again");
    watch.abort();
}

#[tokio::test(start_paused = true)]
async fn a_gone_process_is_reported_without_waiting_for_a_hung_ping() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    let a = agent(&world, dir.path(), HostMode::Master);
    let watch = tokio::spawn({
        let a = a.clone();
        async move { a.run_mysql_watch(Duration::from_millis(100)).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(world.take_ops(), Vec::<String>::new());

    // The connection hangs (a dying server's socket) but its process is gone.
    world.with(|w| {
        w.ping_hangs = true;
        w.process_gone = Some("its process 42 (from /run/mysqld/mysqld.pid) is gone".into());
    });
    let t0 = tokio::time::Instant::now();
    while world.with(|w| w.ops.is_empty()) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        t0.elapsed() <= Duration::from_millis(100),
        "reported within one watch interval, not after the ping's limit: {:?}",
        t0.elapsed()
    );
    assert_eq!(
        world.take_ops(),
        ["report mysqld is gone: its process 42 (from /run/mysqld/mysqld.pid) is gone"]
    );

    // A hung server whose process runs: reported once the ping's limit ran out.
    world.with(|w| w.process_gone = None);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let ops = world.take_ops();
    assert!(
        ops.iter()
            .all(|o| o == "report mysqld does not answer: no reply to a ping within 200ms"),
        "{ops:?}"
    );
    assert!(!ops.is_empty(), "a hung server is reported too");
    watch.abort();
}

#[tokio::test(start_paused = true)]
async fn a_demoted_master_reports_where_it_stopped_and_a_new_writer_executes_that_first() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.grants.push_back(Ok(1));
        w.executed = Some("0-1-500".into());
    });
    let a = agent(&world, dir.path(), HostMode::Master);
    let reply = a.apply_status(writer(1)).await.unwrap();
    assert_eq!(reply.position, None, "an active writer reports no position");
    world.take_ops();
    let reply = a
        .apply_status(status(&[("reader", READER_IP)], Some("db2"), 2))
        .await
        .unwrap();
    assert_eq!(
        reply.position.as_deref(),
        Some("0-1-500"),
        "read after the fence"
    );

    // Writer again at epoch 3, told to catch up with another host's last position first: it
    // waits for it instead of the relay log, and stays read-only until it has it.
    world.with(|w| {
        w.never_executes = true;
        w.default_grant = Some(Ok(3));
    });
    world.take_ops();
    let req = SetStatus {
        status: writer(3),
        catch_up_to: Some("0-2-900".into()),
        peers: vec!["db2".into()],
        offline_peers: vec![],
        term: 0,
    };
    let reply = a.apply(req).await.unwrap();
    assert!(
        matches!(&reply.writer, WriterState::Waiting { reason } if reason.contains("the old writer's last writes")),
        "{reply:?}"
    );
    assert_eq!(world.take_ops(), ["vip- 10.0.0.101", "wait 0-2-900"]);
    assert!(world.with(|w| w.read_only), "still read-only");

    // A resent status without the position (another leader) keeps it; the lease loop retries.
    a.apply_status(writer(3)).await.unwrap();
    world.with(|w| w.never_executes = false);
    world.take_ops();
    let lease = tokio::spawn({
        let a = a.clone();
        async move { a.run_lease().await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ops = world.take_ops();
    let wait = ops.iter().position(|o| o == "wait 0-2-900");
    let writable = ops.iter().position(|o| o == "read_only=0");
    assert!(
        wait.is_some() && writable.is_some() && wait < writable,
        "the position first, then writable: {ops:?}"
    );
    assert!(!ops.contains(&"catch-up".to_string()), "{ops:?}");
    lease.abort();
}

/// A new writer's first commits wait for a semi-sync acknowledgement until a slave
/// replicates from it, so a failed re-pointing is not left to the next regular pass (1 s):
/// reconciliation comes back within `REPOINT_WATCH`.
#[tokio::test(start_paused = true)]
async fn a_failed_repointing_is_retried_within_the_watch_interval_not_the_regular_one() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.repoint_failures = 1;
        w.read_only = true;
    });
    let a = agent(&world, dir.path(), HostMode::Slave);
    a.apply_status(status(&[("reader", READER_IP)], Some("db2"), 2))
        .await
        .unwrap();
    assert_eq!(
        world.take_ops(),
        ["repoint db2", "vip+ 10.0.0.101"],
        "the first try fails"
    );
    let looping = tokio::spawn({
        let a = a.clone();
        async move { a.run_reconcile(Duration::from_secs(1)).await }
    });
    tokio::time::sleep(mmm_agent::agent::REPOINT_WATCH + Duration::from_millis(50)).await;
    assert_eq!(
        world.take_ops(),
        ["repoint db2"],
        "retried after {:?}, well before the regular second",
        mmm_agent::agent::REPOINT_WATCH
    );
    looping.abort();
}

#[tokio::test(start_paused = true)]
async fn a_failed_repointing_is_retried_by_reconciliation_until_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let world = Shared::default();
    world.with(|w| {
        w.repoint_failures = 2;
        w.read_only = true;
    });
    let a = agent(&world, dir.path(), HostMode::Slave);
    let reply = a
        .apply_status(status(&[("reader", READER_IP)], Some("db2"), 2))
        .await
        .unwrap();
    assert!(
        reply
            .failed
            .iter()
            .any(|f| f.contains("not in the master's binlog")),
        "{reply:?}"
    );
    world.take_ops();
    a.reconcile().await;
    assert_eq!(
        world.take_ops(),
        ["repoint db2"],
        "tried again, fails again"
    );
    let fixed = a.reconcile().await;
    assert_eq!(world.take_ops(), ["repoint db2"]);
    assert_eq!(fixed, ["re-pointed to db2 after an earlier failure"]);
    a.reconcile().await;
    assert_eq!(world.take_ops(), Vec::<String>::new(), "done: not again");

    // The IO thread stops on an error afterwards (the new master lacked this slave's last
    // GTID when it first asked): reconciliation starts it again; a thread stopped without an
    // error (a DBA's STOP SLAVE) is left alone.
    let pos = BinlogPos {
        file: "mysql-bin.000002".into(),
        pos: 4,
    };
    let replica = |error: Option<&str>| ReplicaStatus {
        master_host: "127.0.0.1".into(),
        master_port: 3306,
        io_running: false,
        sql_running: true,
        seconds_behind: None,
        received: pos.clone(),
        applied: pos.clone(),
        using_gtid: true,
        gtid_received: None,
        last_io_error: error.map(String::from),
        last_sql_error: None,
    };
    world.with(|w| w.replica = Some(replica(None)));
    a.reconcile().await;
    assert_eq!(world.take_ops(), Vec::<String>::new(), "stopped by hand");
    world.with(|w| {
        w.replica = Some(replica(Some(
            "Got fatal error 1236 from master: the binlog is missing GTID 0-1-35",
        )))
    });
    let fixed = a.reconcile().await;
    assert_eq!(world.take_ops(), ["repoint db2"]);
    assert_eq!(fixed, ["re-pointed to db2 after an earlier failure"]);
}
