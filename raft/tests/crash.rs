//! Crash durability of the sled log store. sled is beta software, so this is tested rather than
//! assumed: a child process appends entries and saves votes, printing each one only after the
//! store has reported it durable; the parent kills the child with SIGKILL mid-run, reopens the
//! directory and checks that every acknowledged entry and vote is there and decodes.
//!
//! The child is this test binary run again with `MMM_RAFT_CRASH_CHILD` naming the directory,
//! filtered to this one test.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{event_entry, log_id, GROUP};
use mmm_core::{Event, Time};
use mmm_raft::typ::Vote;
use mmm_raft::{Request, Store};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{EntryPayload, RaftLogReader};

/// Set in the child: the directory to write to.
const CHILD_ENV: &str = "MMM_RAFT_CRASH_CHILD";
/// The child saves a new vote every this many entries.
const VOTE_EVERY: u64 = 10;
/// The child stops by itself after this many entries, should it never be killed.
const MAX_ENTRIES: u64 = 100_000;

/// The child: append entries one at a time, acknowledging each after it is durable.
fn run_child(dir: &Path) -> ! {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut log, _sm) = Store::open(dir, GROUP).unwrap();
        for index in 1..=MAX_ENTRIES {
            // `blocking_append` returns only once the store has called `LogFlushed`.
            log.blocking_append([event_entry(index, Time(index), Event::Tick)])
                .await
                .unwrap();
            println!("ack={index}");
            if index % VOTE_EVERY == 0 {
                let term = index / VOTE_EVERY;
                log.save_vote(&Vote::new(term, 1)).await.unwrap();
                println!("vote={term}");
            }
        }
    });
    std::process::exit(0)
}

/// What the child acknowledged before it died.
#[derive(Debug, Default)]
struct Acked {
    last_index: u64,
    last_vote_term: u64,
}

impl Acked {
    /// Reads one line of the child's output. The test harness prints its own words on the
    /// same line as the first acknowledgement, so acknowledgements are found by token.
    fn record(&mut self, line: &str) {
        for token in line.split_whitespace() {
            if let Some(n) = token.strip_prefix("ack=") {
                self.last_index = n.parse().unwrap();
            } else if let Some(n) = token.strip_prefix("vote=") {
                self.last_vote_term = n.parse().unwrap();
            }
        }
    }
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Once the child has acknowledged this entry index.
    Entry(u64),
    /// Once the child has acknowledged the vote of this term, before the next entry flushes it
    /// a second time.
    Vote(u64),
}

impl KillAt {
    fn reached(self, acked: &Acked) -> bool {
        match self {
            KillAt::Entry(index) => acked.last_index >= index,
            KillAt::Vote(term) => acked.last_vote_term >= term,
        }
    }
}

/// Runs a child until `kill_at`, waits `delay` so that the kill lands in the middle of a
/// write, kills it and returns what it acknowledged.
fn write_and_kill(dir: &Path, kill_at: KillAt, delay: Duration) -> Acked {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "every_acknowledged_entry_and_vote_survives_sigkill",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Acked::default();
    for line in lines.by_ref() {
        acked.record(&line.unwrap());
        if kill_at.reached(&acked) {
            break;
        }
    }
    assert!(
        kill_at.reached(&acked),
        "the child stopped early: {acked:?}"
    );
    std::thread::sleep(delay);
    // `Child::kill` sends SIGKILL: no destructor, no flush on exit.
    child.kill().unwrap();
    // Lines already in the pipe were printed after their acknowledgement.
    for line in lines {
        acked.record(&line.unwrap());
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    acked
}

#[test]
fn every_acknowledged_entry_and_vote_survives_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let runs = [
        (KillAt::Entry(1), 0),
        (KillAt::Entry(25), 3),
        (KillAt::Vote(3), 0),
        (KillAt::Entry(120), 1),
        (KillAt::Vote(17), 0),
        (KillAt::Entry(300), 7),
    ];
    for (kill_at, delay_ms) in runs {
        let dir = tempfile::tempdir().unwrap();
        let acked = write_and_kill(dir.path(), kill_at, Duration::from_millis(delay_ms));

        rt.block_on(async {
            let (mut log, _sm) = Store::open(dir.path(), GROUP).unwrap();
            let entries = log.try_get_log_entries(..).await.unwrap();
            assert!(
                entries.len() as u64 >= acked.last_index,
                "{kill_at:?}: {} entries on disk, {} acknowledged",
                entries.len(),
                acked.last_index
            );
            for (i, entry) in entries.iter().enumerate() {
                let index = i as u64 + 1;
                assert_eq!(entry.log_id, log_id(index), "no hole in the log");
                assert_eq!(
                    entry.payload,
                    EntryPayload::Normal(Request::Event {
                        now: Time(index),
                        event: Event::Tick
                    })
                );
            }
            let state = log.get_log_state().await.unwrap();
            assert!(state.last_log_id >= Some(log_id(acked.last_index)));
            let vote = log.read_vote().await.unwrap();
            if acked.last_vote_term > 0 {
                let vote = vote.unwrap_or_else(|| panic!("{kill_at:?}: vote lost"));
                assert!(
                    vote.leader_id().term >= acked.last_vote_term,
                    "{kill_at:?}: vote {vote} older than acknowledged term {}",
                    acked.last_vote_term
                );
            }
        });
    }
}
