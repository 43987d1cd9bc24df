//! Per-program requirements and cross-references between sections.
//!
//! Required keys follow MMM's "required by" column (`keys.rs`); a key counts as present when it
//! is written in the section or its template, even if its value was bad (that error is already
//! reported). The cross-checks are MMM's own (`refvalues`: hosts, peer, prefer, `this`,
//! `active_master_role`, `default_copy_method`; the monitor's "at most two hosts can take the
//! writer role") plus a few MMM lacked and that make a cluster unworkable: a role IP listed
//! twice, a peer that is not a master, a host that is its own peer, a balanced active master
//! role, and the monitor-group rules (`node`; heartbeat < election timeout min < max;
//! lease renewal < lease; duplicate node addresses).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::build::Origins;
use crate::error::{Error, Location, Scope, Warning};
use crate::files::Program;
use crate::keys::{self, KeySpec};
use crate::model::{Config, HostMode, RoleMode, SocketType};
use crate::syntax::SectionKind;
use crate::value::format_seconds;

pub(crate) struct Validator<'a> {
    config: &'a Config,
    origins: &'a Origins,
    program: Program,
    errors: &'a mut Vec<Error>,
    warnings: &'a mut Vec<Warning>,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(
        config: &'a Config,
        origins: &'a Origins,
        program: Program,
        errors: &'a mut Vec<Error>,
        warnings: &'a mut Vec<Warning>,
    ) -> Self {
        Validator {
            config,
            origins,
            program,
            errors,
            warnings,
        }
    }

    pub(crate) fn run(&mut self) {
        self.required_globals();
        self.required_sections();
        self.monitor_section();
        self.socket();
        self.hosts();
        self.roles();
        self.active_master_role();
        self.copy_methods();
        self.monitor_group();
    }

    fn needs(&self, spec: &KeySpec) -> bool {
        spec.required_by.contains(&self.program)
    }

    fn main_file(&self) -> Location {
        Location::file(&self.origins.main)
    }

    fn required_globals(&mut self) {
        for spec in keys::GLOBAL {
            if self.needs(spec) && !self.origins.global.contains_key(spec.name) {
                self.errors.push(Error::MissingKey {
                    at: self.main_file(),
                    scope: Scope::Global,
                    key: spec.name,
                    program: self.program,
                });
            }
        }
        if let Some(this) = &self.config.this {
            if !self.config.hosts.contains_key(this) {
                self.errors.push(Error::UndefinedHost {
                    at: self.origins.global_key("this"),
                    scope: Scope::Global,
                    host: this.clone(),
                });
            }
        }
    }

    fn required_sections(&mut self) {
        let program = self.program;
        let missing = |section: &str| Error::MissingSection {
            at: Location::file(&self.origins.main),
            section: section.to_string(),
            program,
        };
        let mut found = Vec::new();
        if self.config.hosts.is_empty() {
            found.push(missing("a <host NAME> section"));
        }
        if matches!(program, Program::Agent | Program::Monitor) && self.config.roles.is_empty() {
            found.push(missing("a <role NAME> section"));
        }
        let monitor_needed = program == Program::Monitor
            || (program == Program::Control && self.config.monitor_nodes.is_empty());
        if monitor_needed && self.config.monitor.is_none() {
            found.push(missing("the <monitor> section"));
        }
        self.errors.append(&mut found);
    }

    /// Required keys of every section of a kind.
    fn required_keys(&mut self, kind: SectionKind, names: Vec<String>, skip: &[&str]) {
        for name in names {
            for spec in keys::table(Some(kind)) {
                if !self.needs(spec) || skip.contains(&spec.name) {
                    continue;
                }
                if !self.origins.has(kind, &name, spec.name) {
                    let scope = if kind.is_named() {
                        Scope::named(kind, &name)
                    } else {
                        Scope::unique(kind)
                    };
                    self.errors.push(Error::MissingKey {
                        at: self.origins.opened(kind, &name),
                        scope,
                        key: spec.name,
                        program: self.program,
                    });
                }
            }
        }
    }

    fn monitor_section(&mut self) {
        if self.config.monitor.is_none() {
            return;
        }
        // With monitor nodes, each replica listens on its node's address instead.
        let skip: &[&str] = if self.config.monitor_nodes.is_empty() {
            &[]
        } else {
            &["ip"]
        };
        self.required_keys(SectionKind::Monitor, vec![String::new()], skip);
    }

    fn socket(&mut self) {
        let socket = &self.config.socket;
        if socket.kind != SocketType::Ssl {
            return;
        }
        // MMM's control did not need ca_file, as it never checked the monitor's certificate;
        // ours does, and the tools talk to the agents, so every program needs all three.
        let wanted = [
            ("cert_file", socket.cert_file.is_some()),
            ("key_file", socket.key_file.is_some()),
            ("ca_file", socket.ca_file.is_some()),
        ];
        for (key, _) in wanted.into_iter().filter(|(_, present)| !present) {
            self.errors.push(Error::RequiredBecause {
                at: self.origins.key_or_section(SectionKind::Socket, "", "type"),
                scope: Scope::unique(SectionKind::Socket),
                key,
                because_key: "type",
                because_value: "ssl".to_string(),
            });
        }
    }

    fn hosts(&mut self) {
        let names: Vec<String> = self.config.hosts.keys().cloned().collect();
        self.required_keys(SectionKind::Host, names, &[]);
        let config = self.config;
        for (name, host) in &config.hosts {
            let scope = Scope::named(SectionKind::Host, name);
            if let Some(peer) = &host.peer {
                let at = self.origins.key_or_section(SectionKind::Host, name, "peer");
                match config.hosts.get(peer) {
                    _ if peer == name => self.errors.push(Error::OwnPeer {
                        at,
                        scope: scope.clone(),
                    }),
                    None => self.errors.push(Error::UndefinedHost {
                        at,
                        scope: scope.clone(),
                        host: peer.clone(),
                    }),
                    Some(other) if other.mode == Some(HostMode::Slave) => {
                        self.errors.push(Error::PeerNotMaster {
                            at,
                            scope: scope.clone(),
                            peer: peer.clone(),
                            mode: HostMode::Slave.to_string(),
                        });
                    }
                    Some(_) => {}
                }
            }
            let peer_needed = matches!(self.program, Program::Agent | Program::Monitor);
            if peer_needed && host.mode == Some(HostMode::Master) && host.peer.is_none() {
                self.errors.push(Error::RequiredBecause {
                    at: self.origins.key_or_section(SectionKind::Host, name, "mode"),
                    scope,
                    key: "peer",
                    because_key: "mode",
                    because_value: HostMode::Master.to_string(),
                });
            }
        }
    }

    fn role_order(&self) -> Vec<String> {
        self.origins
            .order
            .iter()
            .filter(|(kind, _)| *kind == SectionKind::Role)
            .map(|(_, name)| name.clone())
            .collect()
    }

    fn roles(&mut self) {
        let order = self.role_order();
        self.required_keys(SectionKind::Role, order.clone(), &[]);
        let config = self.config;
        let mut seen: BTreeMap<IpAddr, (Location, Scope)> = BTreeMap::new();
        for name in &order {
            let Some(role) = config.roles.get(name) else {
                continue;
            };
            let scope = Scope::named(SectionKind::Role, name);
            let hosts_at = self
                .origins
                .key_or_section(SectionKind::Role, name, "hosts");
            for host in &role.hosts {
                if !config.hosts.contains_key(host) {
                    self.errors.push(Error::UndefinedHost {
                        at: hosts_at.clone(),
                        scope: scope.clone(),
                        host: host.clone(),
                    });
                }
            }
            if let Some(prefer) = &role.prefer {
                let at = self
                    .origins
                    .key_or_section(SectionKind::Role, name, "prefer");
                if !role.hosts.contains(prefer) {
                    self.errors.push(Error::PreferNotInHosts {
                        at,
                        scope: scope.clone(),
                        host: prefer.clone(),
                        hosts: role.hosts.clone(),
                    });
                } else if role.mode == Some(RoleMode::Balanced) {
                    self.warnings.push(Warning {
                        at,
                        message: format!(
                            "{scope}: 'prefer' is ignored on a balanced role (MMM honours it for exclusive roles only)"
                        ),
                    });
                }
            }
            let ips_at = self.origins.key_or_section(SectionKind::Role, name, "ips");
            if role.mode == Some(RoleMode::Exclusive) && role.ips.len() > 1 {
                self.warnings.push(Warning {
                    at: ips_at.clone(),
                    message: format!(
                        "{scope}: an exclusive role should have one IP; MMM 2.2.1 assigns all {} but tracks only one of them",
                        role.ips.len()
                    ),
                });
            }
            for ip in &role.ips {
                match seen.get(ip) {
                    Some((first_at, first_scope)) => self.errors.push(Error::DuplicateRoleIp {
                        at: ips_at.clone(),
                        scope: scope.clone(),
                        ip: *ip,
                        first_at: first_at.clone(),
                        first_scope: first_scope.clone(),
                    }),
                    None => {
                        seen.insert(*ip, (ips_at.clone(), scope.clone()));
                    }
                }
            }
        }
    }

    fn active_master_role(&mut self) {
        let config = self.config;
        let Some(name) = &config.active_master_role else {
            return;
        };
        let at = self.origins.global_key("active_master_role");
        let Some(role) = config.roles.get(name) else {
            self.errors.push(Error::UndefinedRole {
                at,
                scope: Scope::Global,
                key: "active_master_role",
                role: name.clone(),
            });
            return;
        };
        if role.mode == Some(RoleMode::Balanced) {
            self.errors.push(Error::ActiveMasterRoleNotExclusive {
                at,
                role: name.clone(),
            });
        }
        if role.hosts.len() > 2 {
            self.errors.push(Error::TooManyActiveMasterHosts {
                at: self
                    .origins
                    .key_or_section(SectionKind::Role, name, "hosts"),
                scope: Scope::named(SectionKind::Role, name),
                hosts: role.hosts.clone(),
            });
        }
    }

    fn copy_methods(&mut self) {
        let config = self.config;
        let names: Vec<String> = config.copy_methods.keys().cloned().collect();
        self.required_keys(SectionKind::CopyMethod, names, &[]);
        for (name, method) in &config.copy_methods {
            if method.incremental && method.incremental_command.is_none() {
                self.errors.push(Error::RequiredBecause {
                    at: self
                        .origins
                        .key_or_section(SectionKind::CopyMethod, name, "incremental"),
                    scope: Scope::named(SectionKind::CopyMethod, name),
                    key: "incremental_command",
                    because_key: "incremental",
                    because_value: "1".to_string(),
                });
            }
        }
        if let Some(default) = &config.default_copy_method {
            if !config.copy_methods.contains_key(default) {
                self.errors.push(Error::UndefinedCopyMethod {
                    at: self.origins.global_key("default_copy_method"),
                    name: default.clone(),
                });
            }
        }
    }

    fn monitor_group(&mut self) {
        let config = self.config;
        let node_order: Vec<String> = self
            .origins
            .order
            .iter()
            .filter(|(kind, _)| *kind == SectionKind::MonitorNode)
            .map(|(_, name)| name.clone())
            .collect();
        self.required_keys(SectionKind::MonitorNode, node_order.clone(), &[]);

        let mut seen: BTreeMap<SocketAddr, Scope> = BTreeMap::new();
        for name in &node_order {
            let Some(node) = config.monitor_nodes.get(name) else {
                continue;
            };
            if node.ip.is_none() {
                continue;
            }
            let scope = Scope::named(SectionKind::MonitorNode, name);
            let addr = node.addr();
            match seen.get(&addr) {
                Some(first) => self.errors.push(Error::DuplicateMonitorAddress {
                    at: self
                        .origins
                        .key_or_section(SectionKind::MonitorNode, name, "ip"),
                    scope,
                    addr,
                    first: first.clone(),
                }),
                None => {
                    seen.insert(addr, scope);
                }
            }
        }

        let defined: Vec<String> = config.monitor_nodes.keys().cloned().collect();
        let monitor = config.monitor.as_ref();
        let node = monitor.and_then(|m| m.node.as_ref());
        if !defined.is_empty() {
            match node {
                Some(node) if !config.monitor_nodes.contains_key(node) => {
                    self.errors.push(Error::UndefinedMonitorNode {
                        at: self
                            .origins
                            .key_or_section(SectionKind::Monitor, "", "node"),
                        node: node.clone(),
                        defined: defined.clone(),
                    });
                }
                None if self.program == Program::Monitor => {
                    self.errors.push(Error::MonitorNodeRequired {
                        at: self.origins.opened(SectionKind::Monitor, ""),
                        defined: defined.clone(),
                    });
                }
                _ => {}
            }
            for key in ["ip", "port"] {
                if let Some(at) = self.origins.key(SectionKind::Monitor, "", key) {
                    self.warnings.push(Warning {
                        at: at.clone(),
                        message: format!(
                            "<monitor>: '{key}' is ignored because <monitor_node> sections define the monitor group"
                        ),
                    });
                }
            }
        }

        let Some(monitor) = monitor else {
            return;
        };
        self.order(
            ("election_timeout_min", monitor.election_timeout_min),
            ("election_timeout_max", monitor.election_timeout_max),
        );
        self.order(
            ("raft_heartbeat", monitor.raft_heartbeat),
            ("election_timeout_min", monitor.election_timeout_min),
        );
        self.order(
            ("lease_renew_interval", monitor.lease_renew_interval),
            ("lease", monitor.lease),
        );
    }

    /// Reports `smaller` not being less than `larger` (two `<monitor>` durations).
    fn order(&mut self, smaller: (&'static str, Duration), larger: (&'static str, Duration)) {
        if smaller.1 < larger.1 {
            return;
        }
        let at = self
            .origins
            .key(SectionKind::Monitor, "", smaller.0)
            .or_else(|| self.origins.key(SectionKind::Monitor, "", larger.0))
            .cloned()
            .unwrap_or_else(|| self.origins.opened(SectionKind::Monitor, ""));
        self.errors.push(Error::DurationOrder {
            at,
            scope: Scope::unique(SectionKind::Monitor),
            smaller_key: smaller.0,
            smaller: format_seconds(smaller.1),
            larger_key: larger.0,
            larger: format_seconds(larger.1),
        });
    }
}
