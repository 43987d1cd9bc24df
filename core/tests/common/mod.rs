//! Helpers shared by the core's integration tests.

use mmm_core::{AgentReport, HostState, StartupReport, StoredStatus, SystemReport, Topology};

/// A startup report for a healthy cluster that never ran: every host stored ONLINE, every
/// agent answering ONLINE with no roles, no host writable.
pub fn healthy_startup(topo: &Topology) -> StartupReport {
    let mut report = StartupReport::default();
    for h in topo.hosts.keys() {
        let stored = StoredStatus {
            state: HostState::Online,
            roles: vec![],
        };
        let agent = AgentReport {
            state: HostState::Online,
            roles: vec![],
            master: None,
        };
        let system = SystemReport {
            writable: false,
            roles: vec![],
            master: None,
        };
        report.stored.insert(h.clone(), stored);
        report.agents.insert(h.clone(), agent);
        report.systems.insert(h.clone(), system);
    }
    report
}
