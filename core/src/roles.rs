//! Role distribution: MMM 2.2.1 `Monitor.pm::_distribute_roles` and `Roles.pm` (reference §1.5).
//!
//! Orphaned exclusive roles first, then balanced ones; each goes to the `prefer` host if it is
//! eligible, else to the eligible host with the fewest roles (the active master role counts
//! half). In ACTIVE mode exclusive roles return to their preferred host. Balanced roles are
//! then evened out until the spread is at most one. Nothing moves in PASSIVE mode.
//!
//! Ties go to the host listed first in the role's `hosts`, roles are visited in name order and
//! IPs in configured order: MMM used Perl hash order here, which is random.

use std::collections::BTreeMap;

use crate::notice::Notice;
use crate::step::Ctx;
use crate::types::{HostName, Mode, RoleIp, RoleMode, RoleName};

pub(crate) fn distribute(ctx: &mut Ctx<'_>) {
    if ctx.st.mode == Mode::Passive {
        return;
    }
    process_orphans(ctx, RoleMode::Exclusive);
    process_orphans(ctx, RoleMode::Balanced);
    if ctx.st.mode == Mode::Active {
        obey_preferences(ctx);
    }
    balance(ctx);
}

/// The preferred host of an exclusive role (`prefer` is ignored on balanced roles).
fn preferred(ctx: &Ctx<'_>, role: &RoleName) -> Option<HostName> {
    let spec = ctx.topo.roles.get(role)?;
    if spec.mode != RoleMode::Exclusive {
        return None;
    }
    spec.prefer.clone()
}

/// MMM's `find_eligible_host`.
fn find_eligible_host(ctx: &Ctx<'_>, role: &RoleName) -> Option<HostName> {
    if let Some(p) = preferred(ctx, role) {
        if ctx.st.eligible(&p) {
            return Some(p);
        }
    }
    let spec = ctx.topo.roles.get(role)?;
    let mut best: Option<(&HostName, u32)> = None;
    for host in &spec.hosts {
        if !ctx.st.eligible(host) {
            continue;
        }
        let w = ctx.st.role_weight_halves(ctx.topo, host);
        if best.is_none_or(|(_, bw)| w < bw) {
            best = Some((host, w));
        }
    }
    best.map(|(h, _)| h.clone())
}

fn process_orphans(ctx: &mut Ctx<'_>, mode: RoleMode) {
    let roles: Vec<RoleName> = ctx
        .topo
        .roles
        .iter()
        .filter(|(_, r)| r.mode == mode)
        .map(|(n, _)| n.clone())
        .collect();
    for role in roles {
        let slots = ctx.st.roles.get(&role).cloned().unwrap_or_default();
        for slot in slots.iter().filter(|s| s.owner.is_none()) {
            // An exclusive role with an owner keeps all its IPs on that owner.
            let owner = ctx.st.exclusive_owner_any(&role).cloned();
            let host = match (mode, owner) {
                (RoleMode::Exclusive, Some(o)) => Some(o),
                _ => find_eligible_host(ctx, &role),
            };
            let Some(host) = host else {
                break;
            };
            if let Some(s) = ctx
                .st
                .roles
                .get_mut(&role)
                .and_then(|v| v.iter_mut().find(|s| s.ip == slot.ip))
            {
                s.owner = Some(host.clone());
            }
            ctx.notice(Notice::OrphanAssigned {
                role: RoleIp::new(role.clone(), slot.ip),
                host,
            });
        }
    }
}

fn obey_preferences(ctx: &mut Ctx<'_>) {
    let roles: Vec<RoleName> = ctx.topo.roles.keys().cloned().collect();
    for role in roles {
        let Some(host) = preferred(ctx, &role) else {
            continue;
        };
        if !ctx.st.eligible(&host) {
            continue;
        }
        let Some(first) = ctx.st.roles.get(&role).and_then(|s| s.first()).cloned() else {
            continue;
        };
        if first.owner.as_ref() == Some(&host) {
            continue;
        }
        ctx.set_role(&role, first.ip, &host);
        ctx.notice(Notice::MovedToPreferred {
            role: RoleIp::new(role.clone(), first.ip),
            from: first.owner,
            to: host,
        });
    }
}

fn balance(ctx: &mut Ctx<'_>) {
    let roles: Vec<RoleName> = ctx
        .topo
        .roles
        .iter()
        .filter(|(_, r)| r.mode == RoleMode::Balanced)
        .map(|(n, _)| n.clone())
        .collect();
    for role in roles {
        let Some(spec) = ctx.topo.roles.get(&role) else {
            continue;
        };
        // Weights in halves, in the role's host order (MMM's find_eligible_hosts).
        let mut hosts: Vec<(HostName, i64)> = Vec::new();
        let mut seen = BTreeMap::new();
        for h in &spec.hosts {
            if ctx.st.eligible(h) && seen.insert(h.clone(), ()).is_none() {
                hosts.push((h.clone(), i64::from(ctx.st.role_weight_halves(ctx.topo, h))));
            }
        }
        if hosts.len() < 2 {
            continue;
        }
        loop {
            let mut max = 0;
            let mut min = 0;
            for (i, (_, w)) in hosts.iter().enumerate() {
                if *w > hosts[max].1 {
                    max = i;
                }
                if *w < hosts[min].1 {
                    min = i;
                }
            }
            if hosts[max].1 - hosts[min].1 <= 2 {
                break;
            }
            let (from, to) = (hosts[max].0.clone(), hosts[min].0.clone());
            move_one_ip(ctx, &role, &from, &to);
            hosts[max].1 -= 2;
            hosts[min].1 += 2;
        }
    }
}

fn move_one_ip(ctx: &mut Ctx<'_>, role: &RoleName, from: &HostName, to: &HostName) {
    let Some(slot) = ctx
        .st
        .roles
        .get_mut(role)
        .and_then(|v| v.iter_mut().find(|s| s.owner.as_ref() == Some(from)))
    else {
        return;
    };
    slot.owner = Some(to.clone());
    let ip = slot.ip;
    ctx.notice(Notice::MovedForBalance {
        role: RoleIp::new(role.clone(), ip),
        from: from.clone(),
        to: to.clone(),
    });
}
