//! `mmm_control rejoin <host> [--reclone]`: bringing back a host the monitors keep out of
//! rotation, typically a former writer that returned after a failover.
//!
//! The committed state says who the active master is and what is wrong with the host. A host
//! with errant transactions (its binary log has transactions the active master lacks) cannot
//! simply replicate again: `rejoin` refuses and names them, and `rejoin --reclone` rebuilds
//! it from the active master (the host's agent streams a hot copy from the master's agent,
//! see `mmm_agent::clone`), in master-master mode when the host is the master's peer. A clean
//! host is re-pointed at the active master by GTID. Nothing destructive happens without
//! `--reclone`; the writer, a host holding roles or a master that is not ONLINE are refused.
//! The monitors then set the host ONLINE as for any recovered host (`set_online`, or
//! `auto_set_online`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mmm_agent::protocol::{
    CloneMode, ClonePhase, CloneProgress, CloneRequest, Repoint, RepointReply, CLONE_PATH,
    REPOINT_PATH,
};
use mmm_config::Config;
use mmm_core::api::ApiError;
use mmm_core::{ClusterState, HostName, HostState};
use serde::de::DeserializeOwned;

use crate::tools::AgentLink;
use crate::{EXIT_ERROR, EXIT_OK, EXIT_USAGE};

/// How often the clone's progress is read.
const POLL: Duration = Duration::from_secs(1);
/// How many progress reads in a row may fail before the agent counts as lost.
const LOST_AFTER: u32 = 30;

/// What `rejoin` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The host to bring back.
    pub host: String,
    /// Rebuild it from the active master.
    pub reclone: bool,
}

/// Reads `rejoin <host> [--reclone]` (the flag before or after the host).
pub fn parse(words: &[String]) -> Result<Args, String> {
    let mut host = None;
    let mut reclone = false;
    for w in words.iter().skip(1) {
        match w.as_str() {
            "--reclone" => reclone = true,
            flag if flag.starts_with('-') => {
                return Err(format!("rejoin: unknown option '{flag}' (only --reclone)"))
            }
            name if host.is_none() => host = Some(name.to_string()),
            extra => return Err(format!("rejoin: unexpected argument '{extra}'")),
        }
    }
    let host = host.ok_or("usage: rejoin <host> [--reclone]")?;
    Ok(Args { host, reclone })
}

/// What to do, decided from the committed state and the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Re-point the host at the active master.
    Repoint {
        /// The active master.
        master: String,
    },
    /// Rebuild the host from the active master.
    Reclone {
        /// The active master.
        master: String,
        /// master-master for the master's peer, master-slave otherwise.
        mode: CloneMode,
    },
}

/// Decides what `rejoin` does, or why it must not.
pub fn plan(args: &Args, state: &ClusterState, config: &Config) -> Result<Plan, String> {
    let host = &args.host;
    let name = HostName::new(host.as_str());
    let status = state
        .hosts
        .get(&name)
        .ok_or_else(|| format!("unknown host '{host}'"))?;
    let writer_role = config
        .active_master_role
        .clone()
        .ok_or("the configuration has no active_master_role")?;
    let master = state
        .roles
        .iter()
        .filter(|(r, _)| r.as_str() == writer_role)
        .flat_map(|(_, slots)| slots.iter())
        .find_map(|s| s.owner.clone())
        .ok_or("there is no active master to rejoin: no host holds the writer role")?;
    if master == name {
        return Err(format!("'{host}' is the active master"));
    }
    let held: Vec<String> = state
        .roles
        .iter()
        .flat_map(|(r, slots)| {
            slots
                .iter()
                .filter(|s| s.owner.as_ref() == Some(&name))
                .map(move |s| format!("{r}({})", s.ip))
        })
        .collect();
    if !held.is_empty() {
        return Err(format!(
            "'{host}' holds roles ({}): rejoin is for a host out of rotation (set_offline {host} first)",
            held.join(", ")
        ));
    }
    let master_state = state.hosts.get(&master).map(|h| h.state);
    if master_state != Some(HostState::Online) {
        return Err(format!(
            "the active master '{master}' is not ONLINE ({}): it is no healthy source",
            master_state.map(|s| s.to_string()).unwrap_or_default()
        ));
    }
    let master = master.as_str().to_string();
    if !args.reclone {
        if let Some(report) = status.errant() {
            return Err(format!(
                "'{host}' has {} transaction(s) the active master '{}' lacks ({}): replicating would keep them; rebuild it from '{master}' with 'rejoin {host} --reclone' (this replaces its data)",
                report.errant.count(),
                report.writer,
                report.errant
            ));
        }
        return Ok(Plan::Repoint { master });
    }
    let peer_of_master = config
        .hosts
        .get(host.as_str())
        .is_some_and(|h| h.peer.as_deref() == Some(master.as_str()));
    Ok(Plan::Reclone {
        mode: if peer_of_master {
            CloneMode::MasterMaster
        } else {
            CloneMode::MasterSlave
        },
        master,
    })
}

/// An agent call that failed; `conflict` when the agent refused for its host's present
/// status (409: a role, the writer, a clone running).
pub(crate) struct CallFailed {
    conflict: bool,
    pub(crate) text: String,
}

/// One call to an agent: its answer, or why there is none.
pub(crate) fn agent_call<T: DeserializeOwned>(
    addr: SocketAddr,
    req: reqwest::blocking::RequestBuilder,
) -> Result<T, CallFailed> {
    let failed = |conflict, text| CallFailed { conflict, text };
    let resp = req
        .send()
        .map_err(|e| failed(false, format!("cannot reach the agent at {addr}: {e}")))?;
    let status = resp.status();
    if status.is_success() {
        return resp.json::<T>().map_err(|e| {
            failed(
                false,
                format!("unreadable answer from the agent at {addr}: {e}"),
            )
        });
    }
    let error = resp
        .json::<ApiError>()
        .map(|e| e.error)
        .unwrap_or_else(|e| format!("unreadable error: {e}"));
    Err(failed(
        status == reqwest::StatusCode::CONFLICT,
        format!("the agent at {addr} refused ({status}): {error}"),
    ))
}

/// How long a host's agent may take to apply the status the committed state gives it (no
/// role): right after a partition heals, it may still hold the roles it was last told.
const SETTLE: Duration = Duration::from_secs(30);

/// `agent_call` of `make()`, tried again every second while the agent refuses for a status
/// it has not caught up with (see [`SETTLE`]); says once on `out` that it waits.
fn call_settled<T: DeserializeOwned>(
    host: &str,
    addr: SocketAddr,
    make: impl Fn() -> reqwest::blocking::RequestBuilder,
    out: &mut dyn Write,
) -> io::Result<Result<T, String>> {
    let started = Instant::now();
    let mut said = false;
    loop {
        match agent_call::<T>(addr, make()) {
            Ok(v) => return Ok(Ok(v)),
            Err(f) if f.conflict && started.elapsed() < SETTLE => {
                if !said {
                    writeln!(
                        out,
                        "Waiting up to {} s for the agent of '{host}' to take the status the monitors gave it: {}",
                        SETTLE.as_secs(),
                        f.text
                    )?;
                    said = true;
                }
                std::thread::sleep(POLL);
            }
            Err(f) => return Ok(Err(f.text)),
        }
    }
}

/// Carries out `plan` for `host`, printing progress on `out`.
pub fn execute(
    host: &str,
    plan: &Plan,
    config: &Config,
    timeout: Duration,
    out: &mut dyn Write,
) -> io::Result<u8> {
    let addr = match crate::tools::agent_of(config, host) {
        Ok(a) => a,
        Err(e) => {
            writeln!(out, "ERROR: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let link = match AgentLink::new(config, Some(timeout)) {
        Ok(h) => h,
        Err(e) => {
            writeln!(out, "ERROR: {e}")?;
            return Ok(EXIT_ERROR);
        }
    };
    let http = &link.http;
    match plan {
        Plan::Repoint { master } => {
            let body = Repoint {
                host: host.to_string(),
                master: master.clone(),
            };
            let make = || http.post(link.url(addr, REPOINT_PATH)).json(&body);
            match call_settled::<RepointReply>(host, addr, make, out)? {
                Ok(r) => {
                    writeln!(
                        out,
                        "OK: '{host}' {}. The monitors set it online once its checks pass (mmm_control set_online {host}, unless auto_set_online).",
                        r.done
                    )?;
                    Ok(EXIT_OK)
                }
                Err(e) => {
                    writeln!(out, "ERROR: {e}")?;
                    Ok(EXIT_ERROR)
                }
            }
        }
        Plan::Reclone { master, mode } => {
            let body = CloneRequest {
                host: host.to_string(),
                source: master.clone(),
                mode: *mode,
                from_dir: None,
            };
            writeln!(
                out,
                "Rebuilding '{host}' from '{master}' ({mode}): its data will be replaced."
            )?;
            let make = || http.post(link.url(addr, CLONE_PATH)).json(&body);
            if let Err(e) = call_settled::<CloneProgress>(host, addr, make, out)? {
                writeln!(out, "ERROR: {e}")?;
                return Ok(EXIT_ERROR);
            }
            let end = follow(&link, addr, out)?;
            report(host, master, false, end, out)
        }
    }
}

/// Follows a clone on the agent at `addr` to its end, printing each new progress line.
pub fn follow(
    link: &AgentLink,
    addr: SocketAddr,
    out: &mut dyn Write,
) -> io::Result<Result<CloneProgress, String>> {
    let mut last = String::new();
    let mut failures = 0;
    let started = Instant::now();
    loop {
        let req = link.http.get(link.url(addr, CLONE_PATH));
        match agent_call::<CloneProgress>(addr, req).map_err(|f| f.text) {
            Ok(p) => {
                failures = 0;
                let line = p.line();
                if line != last {
                    writeln!(out, "{line}")?;
                    out.flush()?;
                    last = line;
                }
                if p.finished() {
                    return Ok(Ok(p));
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= LOST_AFTER {
                    return Ok(Err(format!(
                        "lost the agent after {} s: {e}",
                        started.elapsed().as_secs()
                    )));
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The last line of a rebuild (from `source`'s agent, or from a backup of `source` when
/// `restored`), and its exit status.
pub fn report(
    host: &str,
    source: &str,
    restored: bool,
    end: Result<CloneProgress, String>,
    out: &mut dyn Write,
) -> io::Result<u8> {
    match end {
        Ok(p) if p.phase == ClonePhase::Done => {
            let locks = p
                .source_report
                .as_ref()
                .map(|r| {
                    format!(
                        "; '{source}' blocked commits for {} ms and DDL for {} ms",
                        r.commit_blocked_ms, r.ddl_blocked_ms
                    )
                })
                .unwrap_or_default();
            let how = if restored {
                format!("restored from the backup of '{source}'")
            } else {
                format!("rebuilt from '{source}'")
            };
            let then = match &p.master {
                Some(m) => format!("replicates from '{m}'"),
                None => "runs on its own (no replication)".to_string(),
            };
            writeln!(
                out,
                "OK: '{host}' was {how} ({:.1} MiB copied in {:.1} s at {:.1} MiB/s{locks}) and {then}. The monitors set it online once its checks pass (mmm_control set_online {host}, unless auto_set_online).",
                p.bytes as f64 / 1048576.0,
                p.copy_ms as f64 / 1000.0,
                p.rate() / 1048576.0,
            )?;
            Ok(EXIT_OK)
        }
        Ok(p) => {
            writeln!(
                out,
                "ERROR: the rebuild of '{host}' failed: {}",
                p.error.unwrap_or_else(|| "no reason given".into())
            )?;
            Ok(EXIT_ERROR)
        }
        Err(e) => {
            writeln!(
                out,
                "ERROR: the rebuild of '{host}' may still be running: {e}; its agent's log says where it stands."
            )?;
            Ok(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_flag_goes_before_or_after_the_host() {
        let want = Args {
            host: "db1".into(),
            reclone: true,
        };
        assert_eq!(parse(&words("rejoin db1 --reclone")), Ok(want.clone()));
        assert_eq!(parse(&words("rejoin --reclone db1")), Ok(want));
        assert_eq!(parse(&words("rejoin db1")).map(|a| a.reclone), Ok(false));
        assert!(parse(&words("rejoin")).is_err());
        assert!(parse(&words("rejoin db1 db2")).is_err());
        assert!(parse(&words("rejoin db1 --force")).is_err());
    }
}
