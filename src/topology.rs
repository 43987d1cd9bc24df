//! From the configuration files to the core's `Topology`.
//!
//! The config crate has already checked every name and value against the monitor's rules;
//! what is still missing here is reported with the host or role it belongs to.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use mmm_config::Config;
use mmm_core::{
    HostMode, HostName, HostSpec, Mode, RoleMode, RoleName, RoleSpec, Settings, Topology,
};

/// Builds the topology the monitor group replicates.
pub fn topology(config: &Config) -> anyhow::Result<Topology> {
    let mut hosts = BTreeMap::new();
    for (name, host) in &config.hosts {
        let ip = host.ip.ok_or_else(|| anyhow!("<host {name}>: no ip"))?;
        let mode = match host.mode {
            Some(mmm_config::HostMode::Master) => HostMode::Master,
            Some(mmm_config::HostMode::Slave) => HostMode::Slave,
            None => return Err(anyhow!("<host {name}>: no mode")),
        };
        hosts.insert(
            HostName::new(name.as_str()),
            HostSpec {
                ip,
                mode,
                peer: host.peer.as_deref().map(HostName::new),
            },
        );
    }
    let mut roles = BTreeMap::new();
    for (name, role) in &config.roles {
        let mode = match role.mode {
            Some(mmm_config::RoleMode::Exclusive) => RoleMode::Exclusive,
            Some(mmm_config::RoleMode::Balanced) => RoleMode::Balanced,
            None => return Err(anyhow!("<role {name}>: no mode")),
        };
        roles.insert(
            RoleName::new(name.as_str()),
            RoleSpec {
                mode,
                hosts: role
                    .hosts
                    .iter()
                    .map(|h| HostName::new(h.as_str()))
                    .collect(),
                ips: role.ips.clone(),
                prefer: role.prefer.as_deref().map(HostName::new),
            },
        );
    }
    let monitor = config
        .monitor
        .as_ref()
        .ok_or_else(|| anyhow!("no <monitor> section"))?;
    let settings = Settings {
        flap_duration: monitor.flap_duration,
        flap_count: monitor.flap_count,
        auto_set_online: monitor.auto_set_online,
        wait_for_other_master: monitor.wait_for_other_master,
        careful_startup: monitor.careful_startup,
        mode: match monitor.mode {
            mmm_config::MonitorMode::Active => Mode::Active,
            mmm_config::MonitorMode::Manual => Mode::Manual,
            mmm_config::MonitorMode::Wait => Mode::Wait,
            mmm_config::MonitorMode::Passive => Mode::Passive,
        },
    };
    let active_master_role = config
        .active_master_role
        .as_deref()
        .ok_or_else(|| anyhow!("active_master_role is not set"))?;
    let topo = Topology {
        hosts,
        roles,
        active_master_role: RoleName::new(active_master_role),
        settings,
    };
    topo.validate().context("the configured cluster")?;
    Ok(topo)
}
