//! The host state rules: MMM 2.2.1 `Monitor.pm::_check_host_states` (reference §1.3, §1.6, §1.9).
//!
//! One pass over the hosts in name order; each host changes state at most once per pass. The
//! pass does nothing before the startup vote or while the monitor's network is down. WAIT mode
//! is resolved at the end of the pass.

use std::time::Duration;

use crate::notice::{ModeCause, Notice, Reason};
use crate::step::Ctx;
use crate::types::{CheckKind, HostName, HostState, Mode};

/// MMM ignores replication failures while the peer became ONLINE less than this long ago
/// (the default `master-connect-retry`).
pub const PEER_ONLINE_GRACE: Duration = Duration::from_secs(60);

/// An uptime that grew by less than this since the host was last ONLINE means a short outage
/// without a reboot.
pub const SHORT_OUTAGE: Duration = Duration::from_secs(60);

pub(crate) fn check_host_states(ctx: &mut Ctx<'_>) {
    if !ctx.st.started || !ctx.st.network_up {
        return;
    }
    let active_master = ctx.active_master();
    let hosts: Vec<HostName> = ctx.topo.hosts.keys().cloned().collect();
    for host in &hosts {
        check_host(ctx, host, active_master.as_ref());
    }
    if ctx.st.mode == Mode::Wait {
        resolve_wait(ctx);
    }
}

fn change(ctx: &mut Ctx<'_>, host: &HostName, to: HostState, reason: Reason) {
    let from = ctx.st.state_of(host);
    ctx.notice(Notice::StateChanged {
        host: host.clone(),
        from,
        to,
        reason,
    });
    ctx.set_state(host, to);
}

fn check_host(ctx: &mut Ctx<'_>, host: &HostName, active_master: Option<&HostName>) {
    let now = ctx.now;
    let Some(h) = ctx.st.hosts.get(host) else {
        return;
    };
    let state = h.state;
    let ping = h.check(CheckKind::Ping);
    let mysql = h.check(CheckKind::Mysql);
    let rep_threads = h.check(CheckKind::RepThreads);
    let rep_backlog = h.check(CheckKind::RepBacklog);
    let flapping = h.flapping;
    let in_state = now.since(h.last_state_change);
    let last_check_change = h.last_check_change().unwrap_or(now);
    let uptime_grew = h.uptime_ms.checked_sub(h.last_uptime_ms);
    let errant = h.errant().map(|r| Reason::Errant {
        writer: HostName::new(r.writer.as_str()),
        count: r.errant.count().to_string(),
        gtids: r.errant.to_string(),
    });
    let last_uptime_ms = h.last_uptime_ms;

    let peer = ctx.topo.peer_of(host, active_master);
    let (peer_online, peer_recent, peer_healthy) = match &peer {
        Some(p) => match ctx.st.hosts.get(p) {
            Some(ph) => (
                ph.state == HostState::Online,
                ph.online_since
                    .is_some_and(|t| now.since(t) <= PEER_ONLINE_GRACE),
                ph.check(CheckKind::Ping) && ph.check(CheckKind::Mysql),
            ),
            None => (false, false, false),
        },
        None => (false, false, false),
    };
    let manual = ctx.st.mode.is_manual();
    let settings = &ctx.topo.settings;
    let auto_set_online = settings.auto_set_online;
    let flap_duration = settings.flap_duration;

    match state {
        HostState::AdminOffline | HostState::Unknown => {}
        HostState::Online => {
            let to = if !(ping && mysql) {
                Some((HostState::HardOffline, Reason::Checks { ping, mysql }))
            } else if active_master == Some(host) {
                // Replication failure on the active master is irrelevant.
                None
            } else if let Some(reason) = errant.clone() {
                // Not a transient failure: no grace.
                Some((HostState::ReplicationFail, reason))
            } else if peer_online && peer_recent {
                // Replication errors are ignored while the peer has only just come ONLINE.
                None
            } else if !rep_threads && peer_online && peer_healthy {
                Some((HostState::ReplicationFail, Reason::Plain))
            } else if !rep_backlog && rep_threads && peer_online && peer_healthy {
                Some((HostState::ReplicationDelay, Reason::Plain))
            } else {
                None
            };
            if let Some((to, reason)) = to {
                change(ctx, host, to, reason);
                if !manual {
                    ctx.clear_roles(host);
                }
            }
        }
        HostState::AwaitingRecovery => {
            if !(ping && mysql) {
                change(ctx, host, HostState::HardOffline, Reason::Plain);
                return;
            }
            if let Some(reason) = errant {
                change(ctx, host, HostState::ReplicationFail, reason);
                return;
            }
            if !(rep_backlog && rep_threads) {
                return;
            }
            let waited_secs = in_state.as_secs();
            if flapping {
                if auto_set_online > Duration::ZERO && now.since(last_check_change) >= flap_duration
                {
                    change(
                        ctx,
                        host,
                        HostState::Online,
                        Reason::FlapDurationPassed {
                            flap_secs: flap_duration.as_secs(),
                            waited_secs,
                        },
                    );
                }
                return;
            }
            if let Some(grew) = uptime_grew.filter(|g| last_uptime_ms > 0 && *g > 0) {
                let grew = Duration::from_millis(grew);
                if grew < SHORT_OUTAGE {
                    change(
                        ctx,
                        host,
                        HostState::Online,
                        Reason::ShortOutage {
                            secs: grew.as_secs(),
                        },
                    );
                    return;
                }
            }
            if auto_set_online > Duration::ZERO && auto_set_online <= in_state {
                change(
                    ctx,
                    host,
                    HostState::Online,
                    Reason::AutoSetOnline {
                        auto_secs: auto_set_online.as_secs(),
                        waited_secs,
                    },
                );
            }
        }
        HostState::HardOffline => {
            if !(ping && mysql) {
                return;
            }
            let may_check_replication =
                active_master.is_some() || !ctx.topo.can_handle(&ctx.topo.active_master_role, host);
            let (to, reason) = if may_check_replication && !rep_threads {
                (HostState::ReplicationFail, errant.unwrap_or(Reason::Plain))
            } else if may_check_replication && !rep_backlog {
                (HostState::ReplicationDelay, Reason::Plain)
            } else {
                (HostState::AwaitingRecovery, Reason::Plain)
            };
            change(ctx, host, to, reason);
        }
        HostState::ReplicationFail | HostState::ReplicationDelay => {
            if ping && mysql {
                if state == HostState::ReplicationFail && !rep_backlog && rep_threads {
                    change(ctx, host, HostState::ReplicationDelay, Reason::Plain);
                    return;
                }
                if state == HostState::ReplicationDelay && !rep_threads {
                    change(
                        ctx,
                        host,
                        HostState::ReplicationFail,
                        errant.unwrap_or(Reason::Plain),
                    );
                    return;
                }
                if errant.is_some() {
                    // Only rebuilding it (or the writer getting those transactions) ends it.
                    return;
                }
                if (rep_backlog && rep_threads) || !peer_online {
                    if flapping {
                        change(ctx, host, HostState::AwaitingRecovery, Reason::Flapping);
                    } else {
                        change(ctx, host, HostState::Online, Reason::Plain);
                    }
                }
            } else {
                change(
                    ctx,
                    host,
                    HostState::HardOffline,
                    Reason::Checks { ping, mysql },
                );
            }
        }
    }
}

/// WAIT mode ends when both masters are ONLINE, or when one has been ONLINE for
/// `wait_for_other_master` (zero: wait forever). On switching, roles are stripped from every
/// host that is not ONLINE.
fn resolve_wait(ctx: &mut Ctx<'_>) {
    let masters = ctx.topo.master_hosts().to_vec();
    let first = masters.first().cloned();
    let second = masters.get(1).cloned();
    let online =
        |h: &Option<HostName>| h.as_ref().map(|h| ctx.st.state_of(h)) == Some(HostState::Online);
    let (one, two) = (online(&first), online(&second));
    let wait = ctx.topo.settings.wait_for_other_master;
    let cause = if one && two {
        match (first, second) {
            (Some(first), Some(second)) => Some(ModeCause::BothMastersOnline { first, second }),
            _ => None,
        }
    } else if wait > Duration::ZERO && (one || two) {
        let (living, dead) = if one {
            (first, second)
        } else {
            (second, first)
        };
        let since = living
            .as_ref()
            .and_then(|h| ctx.st.hosts.get(h))
            .and_then(|h| h.online_since);
        match since {
            Some(t) if ctx.now.since(t) >= wait => Some(ModeCause::WaitedTooLong {
                dead: dead.unwrap_or_else(|| HostName::new("")),
                secs: wait.as_secs(),
            }),
            _ => None,
        }
    } else {
        None
    };
    let Some(cause) = cause else {
        return;
    };
    ctx.notice(Notice::ModeChanged {
        from: Mode::Wait,
        to: Mode::Active,
        cause,
    });
    ctx.st.mode = Mode::Active;
    strip_roles_from_failed_hosts(ctx);
}

/// Leaving MANUAL or WAIT: roles come off every host that is not ONLINE.
pub(crate) fn strip_roles_from_failed_hosts(ctx: &mut Ctx<'_>) {
    let hosts: Vec<HostName> = ctx.topo.hosts.keys().cloned().collect();
    for host in &hosts {
        if ctx.st.state_of(host) != HostState::Online && !ctx.st.host_roles(host).is_empty() {
            ctx.clear_roles(host);
        }
    }
}
