//! The prober: every 50 ms, for every database host, `@@read_only` over a connection to the
//! host's own address, and the IPv4 addresses on its `eth0`, read by `ip` in the container's
//! network namespace (so the sample is taken inside the host, whatever the network does).
//! The address reader runs as one shell loop per host that prints the wall clock before and
//! after each read; it is started again whenever the container's namespace changes.

use crate::cluster::{Docker, DB_HOSTS};
use crate::history::{now, stop_and_take, Sample, Seen};
use crate::workload::app_opts;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PERIOD: Duration = Duration::from_millis(50);

/// The running prober.
pub struct Prober {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Prober {
    pub fn start(docker: Arc<Docker>) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (host, ip) in DB_HOSTS {
            let (s, out) = (stop.clone(), samples.clone());
            tasks.push(tokio::spawn(read_only(host, ip, s, out)));
            let (s, out, d) = (stop.clone(), samples.clone(), docker.clone());
            tasks.push(tokio::spawn(addresses(host, d, s, out)));
        }
        Prober {
            stop,
            samples,
            tasks,
        }
    }

    /// The latest address sample of each host taken after `since`.
    pub fn latest_addresses(&self, since: u64) -> Vec<(String, Option<Vec<String>>)> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        DB_HOSTS
            .iter()
            .filter_map(|(host, _)| {
                samples.iter().rev().find_map(|s| match &s.seen {
                    Seen::Addresses { addresses } if s.host == *host && s.invoke >= since => {
                        Some((host.to_string(), addresses.clone()))
                    }
                    _ => None,
                })
            })
            .collect()
    }

    /// Stops sampling; every sample, oldest first.
    pub async fn finish(self) -> Vec<Sample> {
        stop_and_take(&self.stop, self.tasks, &self.samples, |s| s.invoke).await
    }
}

fn push(out: &Mutex<Vec<Sample>>, s: Sample) {
    out.lock().unwrap_or_else(|e| e.into_inner()).push(s);
}

async fn read_only(
    host: &'static str,
    ip: &'static str,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Sample>>>,
) {
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        let invoke = now();
        let attempt = async {
            let mut c = match conn.take() {
                Some(c) => c,
                None => Conn::new(app_opts(ip)).await.ok()?,
            };
            let ro: Option<u8> = c.query_first("SELECT @@read_only").await.ok()?;
            Some((ro? == 0, c))
        };
        let writable = match tokio::time::timeout(Duration::from_millis(1000), attempt).await {
            Ok(Some((w, c))) => {
                conn = Some(c);
                Some(w)
            }
            _ => None,
        };
        push(
            &out,
            Sample {
                host: host.to_string(),
                invoke,
                complete: now(),
                seen: Seen::Writable { writable },
            },
        );
        tokio::time::sleep(PERIOD).await;
    }
}

/// The shell loop run in a host's network namespace: wall clock, addresses, wall clock.
const ADDRESS_LOOP: &str = "while :; do date +%s%N; ip -o -4 addr show dev eth0 2>&1; date +%s%N; echo END; sleep 0.05; done";

async fn addresses(
    host: &'static str,
    docker: Arc<Docker>,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Sample>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let pid = match docker.pid(host).await {
            Ok(pid) => pid,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let child = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "sh", "-c", ADDRESS_LOOP])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(mut child) = child else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Some(stdout) = child.stdout.take() else {
            continue;
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut block: Vec<String> = Vec::new();
        let mut checked = now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let line = match tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await {
                Ok(Ok(Some(l))) => l,
                _ => break,
            };
            if line != "END" {
                block.push(line);
                continue;
            }
            let parsed = parse_block(&block);
            block.clear();
            match parsed {
                Some((invoke, complete, addrs)) => {
                    let gone = addrs.is_none();
                    push(
                        &out,
                        Sample {
                            host: host.to_string(),
                            invoke,
                            complete,
                            seen: Seen::Addresses { addresses: addrs },
                        },
                    );
                    // eth0 gone: the container was restarted in a new namespace.
                    if gone {
                        break;
                    }
                }
                None => break,
            }
            // A restarted container has a new namespace: follow it.
            if now().saturating_sub(checked) > 1_000_000_000 {
                checked = now();
                if docker.pid(host).await.ok() != Some(pid) {
                    break;
                }
            }
        }
        let _ = child.kill().await;
    }
}

/// One block of the loop's output: (clock before, clock after, addresses or `None` when eth0
/// could not be read).
fn parse_block(block: &[String]) -> Option<(u64, u64, Option<Vec<String>>)> {
    let (first, rest) = block.split_first()?;
    let (last, lines) = rest.split_last()?;
    let invoke: u64 = first.trim().parse().ok()?;
    let complete: u64 = last.trim().parse().ok()?;
    let addrs: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            Some(words.next()?.split('/').next()?.to_string())
        })
        .collect();
    Some((invoke, complete, (!addrs.is_empty()).then_some(addrs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_block_gives_the_addresses_between_the_two_clock_readings() {
        let b = lines(
            "1700000000000000000\n\
             2: eth0    inet 10.214.0.21/24 brd 10.214.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
             2: eth0    inet 10.214.0.100/32 scope global eth0\\       valid_lft forever preferred_lft forever\n\
             1700000000001000000",
        );
        let (i, c, a) = parse_block(&b).unwrap();
        assert_eq!(
            (i, c),
            (1_700_000_000_000_000_000, 1_700_000_000_001_000_000)
        );
        assert_eq!(a.unwrap(), vec!["10.214.0.21", "10.214.0.100"]);
    }

    #[test]
    fn a_missing_interface_reads_as_unknown_and_garbage_as_no_sample() {
        let b = lines("1\nDevice \"eth0\" does not exist.\n2");
        assert_eq!(parse_block(&b), Some((1, 2, None)));
        assert_eq!(parse_block(&lines("x\n2")), None);
        assert_eq!(parse_block(&lines("1")), None);
    }
}
