//! The nemesis: the faults, how each is applied to the compose cluster and healed, and the
//! schedules (the short fixed one for CI; random ones from a seed). A fault names its target
//! by what it is to the cluster ("the writer", "the monitor leader", "a slave"), resolved when
//! it is applied, so a schedule stays meaningful after failovers.

use crate::cluster::{Docker, Monitors, DB_HOSTS, MONITORS, OBSERVER, SUBNET};
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use std::fmt;

/// Who a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The database host with the writer role.
    Writer,
    /// The other master.
    Standby,
    /// The first slave (slave1).
    Slave,
    /// The monitor replica that leads.
    Leader,
    /// A monitor replica that does not lead.
    Follower,
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SIGKILL mariadbd; healed by starting it again.
    KillMysqld,
    /// SIGSTOP mariadbd (a hung server); healed by SIGCONT.
    PauseMysqld,
    /// SIGKILL mmm_agentd (the container ends with it and Docker restarts it).
    KillAgent,
    /// Drop everything between the host and the other containers (nft in its namespace).
    Partition,
    /// SIGKILL the monitor container; healed by starting it.
    KillMonitor,
    /// Freeze the monitor container (SIGSTOP-like); healed by thawing it.
    PauseMonitor,
    /// `mmm_control switchover` to the other master; nothing to heal.
    Switchover,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::KillMysqld => "kill-mysqld",
            Kind::PauseMysqld => "pause-mysqld",
            Kind::KillAgent => "kill-agent",
            Kind::Partition => "partition",
            Kind::KillMonitor => "kill-monitor",
            Kind::PauseMonitor => "pause-monitor",
            Kind::Switchover => "switchover",
        }
    }
}

/// A fault and its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: Kind,
    pub target: Target,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.target {
            Target::Writer => "writer",
            Target::Standby => "standby",
            Target::Slave => "slave",
            Target::Leader => "leader",
            Target::Follower => "follower",
        };
        write!(f, "{}({t})", self.kind.name())
    }
}

/// One step of a schedule: faults applied together, held, then healed together.
#[derive(Debug, Clone)]
pub struct Step {
    pub faults: Vec<Fault>,
    pub hold_ms: u64,
}

impl Step {
    /// The kind for the report: the fault names joined by `+`.
    pub fn kind(&self) -> String {
        self.faults
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("+")
    }
}

const fn f(kind: Kind, target: Target) -> Fault {
    Fault { kind, target }
}

/// A schedule from (faults applied together, hold in milliseconds).
fn steps(list: &[(&[Fault], u64)]) -> Vec<Step> {
    list.iter()
        .map(|(faults, hold_ms)| Step {
            faults: faults.to_vec(),
            hold_ms: *hold_ms,
        })
        .collect()
}

/// The short suite: every kind of fault once, on the target that matters most, then the two
/// combinations that hit the writer and the monitor group together.
pub fn short_schedule() -> Vec<Step> {
    use Kind::*;
    use Target::*;
    steps(&[
        (&[f(KillMysqld, Writer)], 6000),
        (&[f(KillMonitor, Leader)], 6000),
        (&[f(Partition, Writer)], 8000),
        (&[f(PauseMonitor, Leader)], 6000),
        (&[f(KillAgent, Writer)], 6000),
        (&[f(PauseMysqld, Writer)], 8000),
        (&[f(Partition, Leader)], 6000),
        (&[f(Switchover, Standby)], 0),
        (&[f(KillMysqld, Slave)], 4000),
        (&[f(KillMonitor, Leader), f(KillMysqld, Writer)], 6000),
        (&[f(PauseMonitor, Leader), f(Partition, Writer)], 8000),
    ])
}

/// The CI suite: the faults the cluster heals from on its own today, each once: the monitor
/// group's (leader killed, frozen, cut off; a follower cut off), a slave's mysqld killed, the
/// writer's agent killed, and a switchover. The faults that make the writer move unplanned
/// (its mysqld killed or frozen, its host cut off) are left out: the old writer can come back
/// with transactions the new one lacks, and replication stops on the GTID conflict until a
/// DBA rebuilds the host (see the chaos suite in README.md); `short` and `long` play them.
pub fn ci_schedule() -> Vec<Step> {
    use Kind::*;
    use Target::*;
    steps(&[
        (&[f(KillMonitor, Leader)], 6000),
        (&[f(PauseMonitor, Leader)], 6000),
        (&[f(Partition, Leader)], 6000),
        (&[f(KillMysqld, Slave)], 4000),
        (&[f(Switchover, Standby)], 0),
        (&[f(KillAgent, Writer)], 6000),
        (&[f(Partition, Follower)], 4000),
        (&[f(KillMonitor, Leader), f(KillMysqld, Slave)], 6000),
    ])
}

/// A random step: one fault (four times in five) or a database fault with a monitor fault.
/// `healable`: only what the `ci` schedule holds, at random: database faults never hit the
/// writer's mysqld or host (its agent may be killed), so the writer never moves unplanned.
pub fn random_step(rng: &mut impl Rng, healable: bool) -> Step {
    use Kind::*;
    use Target::*;
    const DB: [Kind; 4] = [KillMysqld, PauseMysqld, KillAgent, Partition];
    const MON: [Kind; 3] = [KillMonitor, PauseMonitor, Partition];
    const DB_TARGETS: [Target; 4] = [Writer, Writer, Standby, Slave];
    const HEALABLE_TARGETS: [Target; 2] = [Standby, Slave];
    const MON_TARGETS: [Target; 3] = [Leader, Leader, Follower];
    let db_targets: &[Target] = if healable {
        &HEALABLE_TARGETS
    } else {
        &DB_TARGETS
    };
    let pick = |rng: &mut dyn rand::RngCore, kinds: &[Kind], targets: &[Target]| Fault {
        kind: *kinds.choose(rng).unwrap_or(&KillMysqld),
        target: *targets.choose(rng).unwrap_or(&Writer),
    };
    let db = |rng: &mut dyn rand::RngCore| {
        if healable && rng.gen_range(0..8) == 0 {
            f(KillAgent, Writer)
        } else {
            pick(rng, &DB, db_targets)
        }
    };
    let faults = match rng.gen_range(0..10) {
        0 => vec![f(Switchover, Standby)],
        1 | 2 => vec![pick(rng, &MON, &MON_TARGETS), db(rng)],
        3..=5 => vec![pick(rng, &MON, &MON_TARGETS)],
        _ => vec![db(rng)],
    };
    let hold_ms = if faults[0].kind == Switchover {
        0
    } else {
        rng.gen_range(2000..15000)
    };
    Step { faults, hold_ms }
}

/// A fault as applied: what to undo.
#[derive(Debug, Clone)]
pub struct Applied {
    pub fault: Fault,
    /// The container it hit.
    pub svc: String,
}

/// The nft table a partition adds: the host keeps talking to the observer (the harness on
/// the bridge's gateway) and to itself (its own addresses go over `lo`), and nothing else on
/// the cluster network.
fn partition_rules() -> String {
    format!(
        "table inet mmm_jepsen {{\n\
         chain input {{ type filter hook input priority -10; policy accept; iifname \"lo\" accept; ip saddr {SUBNET} ip saddr != {OBSERVER} drop; }}\n\
         chain output {{ type filter hook output priority -10; policy accept; oifname \"lo\" accept; ip daddr {SUBNET} ip daddr != {OBSERVER} drop; }}\n\
         }}\n"
    )
}

/// Resolves a target to a container, from the leader's state.
pub async fn resolve(target: Target, monitors: &Monitors) -> Result<String> {
    match target {
        Target::Leader | Target::Follower => {
            let Some(leader) = monitors.leader().await else {
                bail!("no monitor knows a leader");
            };
            if target == Target::Leader {
                return Ok(leader);
            }
            MONITORS
                .iter()
                .map(|(n, _)| n.to_string())
                .find(|n| *n != leader)
                .ok_or_else(|| anyhow::anyhow!("no monitor besides the leader"))
        }
        Target::Writer | Target::Standby | Target::Slave => {
            let Some(state) = monitors.state().await else {
                bail!("the monitor leader's state cannot be read");
            };
            let Some(writer) = crate::cluster::writer(&state) else {
                bail!("no host has the writer role");
            };
            let pick = match target {
                Target::Writer => Some(writer.clone()),
                Target::Standby => ["master1", "master2"]
                    .into_iter()
                    .find(|m| *m != writer)
                    .map(str::to_string),
                _ => DB_HOSTS
                    .iter()
                    .map(|(n, _)| *n)
                    .find(|n| n.starts_with("slave"))
                    .map(str::to_string),
            };
            pick.ok_or_else(|| anyhow::anyhow!("no host for {target:?}"))
        }
    }
}

/// Applies `fault` to `svc`.
pub async fn apply(docker: &Docker, fault: Fault, svc: &str) -> Result<Applied> {
    match fault.kind {
        Kind::KillMysqld => {
            docker
                .exec(svc, &["pkill", "-KILL", "-x", "mariadbd"])
                .await?;
        }
        Kind::PauseMysqld => {
            docker
                .exec(svc, &["pkill", "-STOP", "-x", "mariadbd"])
                .await?;
        }
        Kind::KillAgent => {
            docker
                .exec(svc, &["pkill", "-KILL", "-x", "mmm_agentd"])
                .await?;
        }
        Kind::Partition => {
            docker
                .in_netns(svc, &["nft", "-f", "-"], Some(&partition_rules()))
                .await?;
        }
        Kind::KillMonitor => {
            docker.container(&["kill", "-s", "KILL"], svc).await?;
        }
        Kind::PauseMonitor => {
            docker.container(&["pause"], svc).await?;
        }
        Kind::Switchover => {
            docker.control(&["switchover", svc]).await?;
        }
    }
    Ok(Applied {
        fault,
        svc: svc.to_string(),
    })
}

/// Undoes an applied fault. Idempotent: healing what is already healed does nothing.
pub async fn heal(docker: &Docker, a: &Applied) -> Result<()> {
    let svc = a.svc.as_str();
    match a.fault.kind {
        Kind::KillMysqld => {
            if docker.running(svc).await {
                docker.exec(svc, &["mmm-start-mysqld"]).await?;
            }
        }
        Kind::PauseMysqld => {
            if docker.running(svc).await {
                docker
                    .exec(svc, &["pkill", "-CONT", "-x", "mariadbd"])
                    .await?;
            }
        }
        Kind::Partition => {
            if docker.running(svc).await {
                // Gone already when the container was restarted meanwhile.
                let _ = docker
                    .in_netns(svc, &["nft", "delete", "table", "inet", "mmm_jepsen"], None)
                    .await;
            }
        }
        Kind::PauseMonitor => {
            if docker.paused(svc).await? {
                docker.container(&["unpause"], svc).await?;
            }
        }
        Kind::KillAgent | Kind::KillMonitor | Kind::Switchover => {}
    }
    // Whatever the fault, a container that is not running is started again (a killed monitor,
    // an agent's container Docker has not restarted yet).
    if !docker.running(svc).await && !docker.paused(svc).await.unwrap_or(false) {
        docker.container(&["start"], svc).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_seed_gives_the_same_schedule_every_time() {
        let run = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| {
                    let s = random_step(&mut rng, false);
                    format!("{} {}", s.kind(), s.hold_ms)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn random_schedules_use_every_kind_of_fault() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let kinds: std::collections::BTreeSet<&str> = (0..500)
            .flat_map(|_| random_step(&mut rng, false).faults)
            .map(|f| f.kind.name())
            .collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
    }

    #[test]
    fn the_ci_schedule_never_hits_the_writers_mysqld_or_host_and_short_does() {
        let hits = |steps: Vec<Step>| {
            steps
                .into_iter()
                .flat_map(|s| s.faults)
                .any(|f| f.target == Target::Writer && f.kind != Kind::KillAgent)
        };
        assert!(!hits(ci_schedule()));
        assert!(hits(short_schedule()));
    }

    #[test]
    fn healable_schedules_never_hit_the_writers_mysqld_or_host() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let faults: Vec<Fault> = (0..2000)
            .flat_map(|_| random_step(&mut rng, true).faults)
            .collect();
        assert!(faults
            .iter()
            .filter(|f| f.target == Target::Writer)
            .all(|f| f.kind == Kind::KillAgent));
        assert!(faults.contains(&f(Kind::KillAgent, Target::Writer)));
        assert!(faults.iter().any(|f| f.target == Target::Standby));
    }

    #[test]
    fn a_partition_spares_the_observer_and_the_host_itself_and_cuts_the_cluster_network() {
        let rules = partition_rules();
        assert!(rules.contains("iifname \"lo\" accept") && rules.contains("oifname \"lo\" accept"));
        assert!(rules.contains("ip saddr 10.214.0.0/24 ip saddr != 10.214.0.1 drop"));
        assert!(rules.contains("ip daddr 10.214.0.0/24 ip daddr != 10.214.0.1 drop"));
    }
}
