//! Runs the golden scripts in `core/tests/golden/<area>/<behaviour>`.
//!
//! Each script drives one cluster through `mmm_core::step` and records what came out: replies,
//! notices (as `LEVEL message`, MMM's log text) and effects. Regenerate with
//! `UPDATE_GOLDENFILES=1 cargo test -p mmm-core --test golden` and review the diff.
//!
//! Commands:
//! - `host NAME ip=IP mode=master|slave [peer=HOST]`, `role NAME mode=exclusive|balanced
//!   hosts=A,B ips=IP,IP [prefer=HOST]`: define a custom topology, then `topology`.
//! - `topology [seed] [active_master_role=R] [prefer=HOST] [mode=M] [auto_set_online=S]
//!   [flap_count=N] [flap_duration=S] [wait_for_other_master=S] [careful_startup=BOOL]`:
//!   build the cluster (`seed` is the seed document's four hosts, writer and reader roles).
//! - `startup [stored.H="STATE|roles"] [agent.H="STATE|roles|master"]
//!   [system.H="writable|roles|master"]`: the startup vote, with MMM's wire formats.
//! - `bootstrap`: every check OK on every host, then a startup with every host stored ONLINE
//!   and every agent answering with no roles, then a tick that distributes the roles.
//! - `check HOST|all CHECK=ok|fail... [msg=TEXT]`: check results, applied together.
//! - `tick [SECS]`: advance the clock (default 1 s) and run the time-based rules.
//! - `agent HOST up|down`, `uptime HOST SECS`, `network up|down`.
//! - `cmd WORDS...` (or `cmd "WORDS"` for words goldenscript must quote): an mmm_control
//!   command; `show` is short for `cmd show`.
//! - `state`: mode, epoch and every host's state, roles and flags.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use goldenscript::{Argument, Command as Script, Context};
use mmm_core::{
    render, step, AgentReport, CheckKind, CheckReport, ClusterState, Command, Effect, Epoch, Event,
    HostMode, HostName, HostSpec, Outcome, RoleIp, RoleMode, RoleName, RoleSpec, Settings,
    StartupReport, StoredStatus, SystemReport, Time, Topology,
};
use test_each_file::test_each_path;

mod common;

test_each_path! { in "core/tests/golden" as golden => run_script }

fn run_script(path: &std::path::Path) {
    if let Err(e) = goldenscript::run(&mut Runner::default(), path) {
        panic!("{}: {e}", path.display());
    }
}

/// The seed document's first timestamp, 2017/01/09 21:31:47 UTC.
const START: u64 = 1_483_997_507;

#[derive(Default)]
struct Runner {
    hosts: BTreeMap<HostName, HostSpec>,
    roles: BTreeMap<RoleName, RoleSpec>,
    cluster: Option<(Topology, ClusterState)>,
    now: u64,
}

type Res = Result<String, Box<dyn Error>>;

fn ip(s: &str) -> Result<IpAddr, Box<dyn Error>> {
    s.parse().map_err(|_| format!("bad ip '{s}'").into())
}

fn names(s: &str) -> Vec<HostName> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(HostName::from)
        .collect()
}

fn roles(s: &str) -> Result<Vec<RoleIp>, Box<dyn Error>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|r| r.parse::<RoleIp>().map_err(|e| e.into()))
        .collect()
}

fn opt_host(s: Option<&str>) -> Option<HostName> {
    s.filter(|s| !s.is_empty()).map(HostName::from)
}

impl Runner {
    fn time(&self) -> Time {
        Time::from_secs(START + self.now)
    }

    fn cluster(&mut self) -> Result<&mut (Topology, ClusterState), Box<dyn Error>> {
        self.cluster
            .as_mut()
            .ok_or_else(|| "no topology yet: run 'topology' first".into())
    }

    fn seed(&mut self) {
        let h = |ip: &str, mode, peer: Option<&str>| HostSpec {
            ip: ip.parse().expect("seed ip"),
            mode,
            peer: peer.map(HostName::from),
        };
        self.hosts = BTreeMap::from([
            (
                "master1".into(),
                h("192.168.197.184", HostMode::Master, Some("master2")),
            ),
            (
                "master2".into(),
                h("192.168.197.187", HostMode::Master, Some("master1")),
            ),
            ("slave1".into(), h("192.168.197.186", HostMode::Slave, None)),
            ("slave2".into(), h("192.168.197.188", HostMode::Slave, None)),
        ]);
        self.roles = BTreeMap::from([
            (
                "writer".into(),
                RoleSpec {
                    mode: RoleMode::Exclusive,
                    hosts: names("master1,master2"),
                    ips: vec!["192.168.197.101".parse().expect("seed ip")],
                    prefer: None,
                },
            ),
            (
                "reader".into(),
                RoleSpec {
                    mode: RoleMode::Balanced,
                    hosts: names("master2,slave1,slave2"),
                    ips: ["192.168.197.102", "192.168.197.103", "192.168.197.104"]
                        .iter()
                        .map(|s| s.parse().expect("seed ip"))
                        .collect(),
                    prefer: None,
                },
            ),
        ]);
    }

    fn topology(&mut self, cmd: &Script) -> Res {
        let mut args = cmd.consume_args();
        if let Some(p) = args.next_pos() {
            match p {
                "seed" => self.seed(),
                other => return Err(format!("unknown preset '{other}'").into()),
            }
        }
        let mut settings = Settings::default();
        let mut amr = RoleName::from("writer");
        while let Some((k, v)) = args.next_key() {
            let secs =
                || -> Result<Duration, Box<dyn Error>> { Ok(Duration::from_secs(v.parse()?)) };
            match k {
                "active_master_role" => amr = RoleName::from(v),
                "prefer" => {
                    if let Some(r) = self.roles.get_mut("writer") {
                        r.prefer = Some(HostName::from(v));
                    }
                }
                "mode" => settings.mode = v.parse()?,
                "auto_set_online" => settings.auto_set_online = secs()?,
                "flap_duration" => settings.flap_duration = secs()?,
                "flap_count" => settings.flap_count = v.parse()?,
                "wait_for_other_master" => settings.wait_for_other_master = secs()?,
                "careful_startup" => settings.careful_startup = v.parse()?,
                _ => return Err(format!("unknown topology option '{k}'").into()),
            }
        }
        args.reject_next()?;
        let topo = Topology {
            hosts: self.hosts.clone(),
            roles: self.roles.clone(),
            active_master_role: amr,
            settings,
        };
        topo.validate()?;
        let st = ClusterState::new(&topo, self.time());
        self.cluster = Some((topo, st));
        Ok(String::new())
    }

    fn event(&mut self, event: Event) -> Res {
        let now = self.time();
        let (topo, st) = self.cluster()?;
        let out = step(topo, st, now, event)?;
        Ok(format_outcome(&out))
    }

    fn startup(&mut self, cmd: &Script) -> Res {
        let mut report = StartupReport::default();
        let mut args = cmd.consume_args();
        while let Some((k, v)) = args.next_key() {
            let (kind, host) = k
                .split_once('.')
                .ok_or("expected stored.HOST, agent.HOST or system.HOST")?;
            let host = HostName::from(host);
            let f: Vec<&str> = v.split('|').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            match kind {
                "stored" => {
                    report.stored.insert(
                        host,
                        StoredStatus {
                            state: get(0).parse()?,
                            roles: roles(get(1))?,
                        },
                    );
                }
                "agent" => {
                    report.agents.insert(
                        host,
                        AgentReport {
                            state: get(0).parse()?,
                            roles: roles(get(1))?,
                            master: opt_host(f.get(2).copied()),
                        },
                    );
                }
                "system" => {
                    report.systems.insert(
                        host,
                        SystemReport {
                            writable: get(0) == "1",
                            roles: roles(get(1))?,
                            master: opt_host(f.get(2).copied()),
                        },
                    );
                }
                _ => return Err(format!("unknown startup source '{kind}'").into()),
            }
        }
        args.reject_next()?;
        self.event(Event::Startup(report))
    }

    fn check(&mut self, cmd: &Script) -> Res {
        let mut args = cmd.consume_args();
        let target = args
            .next_pos()
            .ok_or("check needs a host or 'all'")?
            .to_string();
        let msg = args.take_key("msg").map(str::to_string);
        let (topo, _) = self.cluster()?;
        let hosts: Vec<(HostName, IpAddr)> = if target == "all" {
            topo.hosts.iter().map(|(h, s)| (h.clone(), s.ip)).collect()
        } else {
            let spec = topo.hosts.get(target.as_str());
            vec![(
                HostName::from(target.as_str()),
                spec.map(|s| s.ip).unwrap_or(IpAddr::from([0, 0, 0, 0])),
            )]
        };
        let mut reports = Vec::new();
        let mut pairs = Vec::new();
        while let Some((k, v)) = args.next_key() {
            let kind: CheckKind = k.parse()?;
            let ok = match v {
                "ok" => true,
                "fail" => false,
                _ => return Err(format!("expected ok or fail, got '{v}'").into()),
            };
            pairs.push((kind, ok));
        }
        args.reject_next()?;
        for (host, addr) in &hosts {
            for &(kind, ok) in &pairs {
                let message = msg
                    .clone()
                    .unwrap_or_else(|| default_message(kind, ok, *addr));
                reports.push(CheckReport {
                    host: host.clone(),
                    check: kind,
                    ok,
                    message,
                });
            }
        }
        self.event(Event::Checks(reports))
    }

    fn admin(&mut self, line: &str) -> Res {
        let cmd = Command::parse(line);
        if cmd.is_read_only() {
            let (topo, st) = self.cluster()?;
            return render::query(topo, st, &cmd, 0).ok_or_else(|| "no answer".into());
        }
        let now = self.time();
        let (topo, st) = self.cluster()?;
        let out = step(topo, st, now, Event::Admin(cmd))?;
        let mut s = String::new();
        if let Some(r) = &out.reply {
            writeln!(s, "{r}")?;
        }
        s.push_str(&format_outcome(&out));
        Ok(s)
    }

    fn state(&mut self) -> Res {
        let (topo, st) = self.cluster()?;
        let writer = st
            .active_master(topo)
            .map(|h| h.to_string())
            .unwrap_or_else(|| "-".into());
        let mut s = format!(
            "mode={} epoch={} writer={writer} network={}\n",
            st.mode,
            st.epoch,
            if st.network_up { "up" } else { "down" }
        );
        if !st.passive_info.is_empty() {
            writeln!(s, "passive_info={:?}", st.passive_info)?;
        }
        for (name, h) in &st.hosts {
            let roles: Vec<String> = st.host_roles(name).iter().map(|r| r.to_string()).collect();
            write!(s, "{name} {} roles=[{}]", h.state, roles.join(", "))?;
            if h.flapping {
                s.push_str(" flapping");
            }
            if h.flap_count > 0 {
                write!(s, " flaps={}", h.flap_count)?;
            }
            if h.agent_down {
                s.push_str(" agent_down");
            }
            s.push('\n');
        }
        Ok(s)
    }
}

fn default_message(kind: CheckKind, ok: bool, addr: IpAddr) -> String {
    match (kind, ok) {
        (_, true) => "OK".into(),
        (CheckKind::Ping, false) => format!("ERROR: Could not ping {addr}"),
        (CheckKind::Mysql, false) => format!(
            "ERROR: Connect error (host = {addr}:3306, user = mmm_monitor)! Can't connect to MySQL server on '{addr}' (111)"
        ),
        (CheckKind::RepThreads, false) => "ERROR: Replication is broken".into(),
        (CheckKind::RepBacklog, false) => "ERROR: Backlog is too big".into(),
    }
}

fn format_outcome(out: &Outcome) -> String {
    let mut s = String::new();
    for n in &out.notices {
        for line in n.to_string().lines() {
            let _ = writeln!(s, "{} {line}", n.level());
        }
    }
    for e in &out.effects {
        let _ = match e {
            Effect::WriterChanged { from, to, epoch } => writeln!(
                s,
                "effect: writer_changed {} -> {} epoch={epoch}",
                from.as_ref().map(|h| h.as_str()).unwrap_or("-"),
                to.as_ref().map(|h| h.as_str()).unwrap_or("-")
            ),
            Effect::SendStatus { status, fence } => {
                let roles: Vec<String> = status.roles.iter().map(|r| r.to_string()).collect();
                writeln!(
                    s,
                    "effect: send_status {} {} roles=[{}] master={} epoch={}{}",
                    status.host,
                    status.state,
                    roles.join(", "),
                    status
                        .active_master
                        .as_ref()
                        .map(|h| h.as_str())
                        .unwrap_or("-"),
                    status.epoch,
                    if *fence { " fence" } else { "" }
                )
            }
            Effect::ClearBadRoles { host } => writeln!(s, "effect: clear_bad_roles {host}"),
        };
    }
    s
}

impl goldenscript::Runner for Runner {
    type Command = Script;

    fn run(&mut self, cmd: &Script, _ctx: &Context) -> Res {
        let pos = |cmd: &Script| -> Vec<String> {
            cmd.args
                .iter()
                .map(|a| match a {
                    Argument::Positional(v) => v.clone(),
                    other => other.to_string(),
                })
                .collect()
        };
        match cmd.name.as_str() {
            "host" => {
                let mut args = cmd.consume_args();
                let name = args.next_pos().ok_or("host needs a name")?;
                let spec = HostSpec {
                    ip: ip(args.take_key("ip").ok_or("host needs ip=")?)?,
                    mode: args.take_key("mode").unwrap_or("slave").parse()?,
                    peer: args.take_key("peer").map(HostName::from),
                };
                args.reject_next()?;
                self.hosts.insert(HostName::from(name), spec);
                Ok(String::new())
            }
            "role" => {
                let mut args = cmd.consume_args();
                let name = args.next_pos().ok_or("role needs a name")?;
                let spec = RoleSpec {
                    mode: args.take_key("mode").unwrap_or("balanced").parse()?,
                    hosts: names(args.take_key("hosts").unwrap_or("")),
                    ips: args
                        .take_key("ips")
                        .unwrap_or("")
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(ip)
                        .collect::<Result<_, _>>()?,
                    prefer: args.take_key("prefer").map(HostName::from),
                };
                args.reject_next()?;
                self.roles.insert(RoleName::from(name), spec);
                Ok(String::new())
            }
            "topology" => self.topology(cmd),
            "startup" => self.startup(cmd),
            "bootstrap" => {
                let (topo, _) = self.cluster()?;
                let report = common::healthy_startup(topo);
                let mut checks = Vec::new();
                let (topo, _) = self.cluster()?;
                for (h, spec) in &topo.hosts {
                    for kind in CheckKind::ALL {
                        checks.push(CheckReport {
                            host: h.clone(),
                            check: kind,
                            ok: true,
                            message: default_message(kind, true, spec.ip),
                        });
                    }
                }
                let mut s = self.event(Event::Checks(checks))?;
                s.push_str(&self.event(Event::Startup(report))?);
                s.push_str(&self.event(Event::Tick)?);
                Ok(s)
            }
            "check" => self.check(cmd),
            "tick" => {
                let secs: u64 = match cmd.args.first() {
                    Some(Argument::Positional(v)) => v.parse()?,
                    _ => 1,
                };
                self.now += secs;
                self.event(Event::Tick)
            }
            "agent" => {
                let p = pos(cmd);
                let [host, dir] = p.as_slice() else {
                    return Err("agent HOST up|down".into());
                };
                self.event(Event::AgentReachable {
                    host: HostName::from(host.as_str()),
                    reachable: dir == "up",
                })
            }
            "uptime" => {
                let p = pos(cmd);
                let [host, secs] = p.as_slice() else {
                    return Err("uptime HOST SECS".into());
                };
                let secs: u64 = secs.parse()?;
                self.event(Event::AgentUptime {
                    host: HostName::from(host.as_str()),
                    uptime_ms: secs * 1000,
                })
            }
            "network" => {
                let p = pos(cmd);
                self.event(Event::Network {
                    up: p.first().map(String::as_str) == Some("up"),
                })
            }
            "writer_active" => {
                let p = pos(cmd);
                let [host, epoch] = p.as_slice() else {
                    return Err("writer_active HOST EPOCH".into());
                };
                self.event(Event::WriterActive {
                    host: HostName::from(host.as_str()),
                    epoch: Epoch(epoch.parse()?),
                })
            }
            "history" => {
                let (_, st) = self.cluster()?;
                Ok(mmm_core::history::render(&st.history, 0))
            }
            "cmd" => self.admin(&pos(cmd).join(" ")),
            "show" => self.admin("show"),
            "state" => self.state(),
            "mode" => {
                let (_, st) = self.cluster()?;
                Ok(format!("{}\n", st.mode))
            }
            other => Err(format!("unknown command '{other}'").into()),
        }
    }
}
