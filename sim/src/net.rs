//! The simulated network and the processes on it.
//!
//! Hosts are names ("m1", "db1", "client"); processes live on hosts ("m1" the monitor replica,
//! "db1/agent" the agent; mysqld is the world model's). A process has an incarnation, bumped
//! when it crashes, and a task set: crashing it aborts every task it runs, including the
//! handlers of calls it was serving. A call from a host to a process is a request and a reply,
//! each delayed at random and each crossing the link only while it is not cut (cuts are
//! directed, so one-way partitions exist) and not lost; a lost message or a cut link costs the
//! caller its whole timeout, a dead process behind a live host answers at once with a reset.
//! Every random choice comes from the network's own seeded generator, so a run replays exactly.
//!
//! A process can also be paused (SIGSTOP): its tasks are not polled until it resumes (their
//! timers fire meanwhile and are seen at once on resuming), calls to it wait, and calls from its
//! host wait before they leave. openraft's own tasks inside a monitor are not the harness's, so
//! they keep running; everything they send waits like the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Why a call did not return an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFail {
    /// No answer within the timeout (lost, cut, or too slow).
    Timeout,
    /// The host answered that nothing listens (the process is down) or the process died while
    /// serving the call.
    Refused,
}

impl std::fmt::Display for CallFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFail::Timeout => write!(f, "timed out"),
            CallFail::Refused => write!(f, "connection refused or reset"),
        }
    }
}

/// Message timing and loss.
#[derive(Debug, Clone, Copy)]
pub struct Links {
    /// Each message takes between this and `delay_max`.
    pub delay_min: Duration,
    /// See `delay_min`.
    pub delay_max: Duration,
    /// Chance in a million that a message is lost.
    pub loss_ppm: u32,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            delay_min: Duration::from_micros(200),
            delay_max: Duration::from_millis(2),
            loss_ppm: 0,
        }
    }
}

struct Proc {
    host: String,
    incarnation: u64,
    alive: bool,
    tasks: JoinSet<()>,
    gate: Arc<Gate>,
}

/// Whether a process is paused, and the tasks to wake when it resumes.
#[derive(Default)]
struct Gate {
    inner: Mutex<(bool, Vec<Waker>)>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, (bool, Vec<Waker>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the process is paused; if so, `waker` is woken when it resumes.
    fn closed(&self, waker: &Waker) -> bool {
        let mut g = self.lock();
        if g.0 {
            g.1.push(waker.clone());
        }
        g.0
    }

    fn set(&self, paused: bool) {
        let wake = {
            let mut g = self.lock();
            g.0 = paused;
            if paused {
                Vec::new()
            } else {
                std::mem::take(&mut g.1)
            }
        };
        for w in wake {
            w.wake();
        }
    }
}

/// A task of a process: not polled while the process is paused.
struct Gated<F> {
    gate: Arc<Gate>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if this.gate.closed(cx.waker()) {
            return Poll::Pending;
        }
        this.inner.as_mut().poll(cx)
    }
}

/// Resolves once the gate is open.
struct Opened(Arc<Gate>);

impl Future for Opened {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.closed(cx.waker()) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

struct State {
    rng: StdRng,
    links: Links,
    cut: BTreeSet<(String, String)>,
    procs: BTreeMap<String, Proc>,
}

/// The network (a cheap handle).
#[derive(Clone)]
pub struct Net {
    state: Arc<Mutex<State>>,
}

impl Net {
    /// A network whose random choices come from `seed`.
    pub fn new(seed: u64) -> Net {
        Net {
            state: Arc::new(Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                links: Links::default(),
                cut: BTreeSet::new(),
                procs: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets message timing and loss.
    pub fn set_links(&self, links: Links) {
        self.lock().links = links;
    }

    /// The current message timing and loss.
    pub fn links(&self) -> Links {
        self.lock().links
    }

    /// Registers a process on `host`, down until [`Net::start`].
    pub fn add_proc(&self, name: &str, host: &str) {
        self.lock().procs.insert(
            name.to_string(),
            Proc {
                host: host.to_string(),
                incarnation: 0,
                alive: false,
                tasks: JoinSet::new(),
                gate: Arc::default(),
            },
        );
    }

    /// Marks a process up; returns its incarnation.
    pub fn start(&self, name: &str) -> u64 {
        let mut st = self.lock();
        match st.procs.get_mut(name) {
            Some(p) => {
                p.alive = true;
                p.incarnation
            }
            None => 0,
        }
    }

    /// Kills a process: every task it runs is aborted and its incarnation moves on.
    pub fn crash(&self, name: &str) {
        let old = {
            let mut st = self.lock();
            match st.procs.get_mut(name) {
                Some(p) => {
                    p.alive = false;
                    p.incarnation += 1;
                    // The next incarnation starts running; the old tasks are aborted.
                    p.gate.set(false);
                    p.gate = Arc::default();
                    Some(std::mem::take(&mut p.tasks))
                }
                None => None,
            }
        };
        if let Some(mut tasks) = old {
            tasks.abort_all();
            // Dropping the set detaches nothing: aborted tasks stop at their next await.
            drop(tasks);
        }
    }

    /// Whether the process is up in this incarnation.
    pub fn alive(&self, name: &str, incarnation: u64) -> bool {
        self.lock()
            .procs
            .get(name)
            .is_some_and(|p| p.alive && p.incarnation == incarnation)
    }

    /// Whether the process is up.
    pub fn is_up(&self, name: &str) -> bool {
        self.lock().procs.get(name).is_some_and(|p| p.alive)
    }

    /// Pauses process `name` (SIGSTOP) or lets it go on (SIGCONT).
    pub fn set_paused(&self, name: &str, paused: bool) {
        let gate = self.lock().procs.get(name).map(|p| p.gate.clone());
        if let Some(gate) = gate {
            gate.set(paused);
        }
    }

    /// `task` as a task of process `name`, not polled while it is paused (for the tasks a
    /// process spawns itself; [`Net::spawn`] does this already).
    pub fn gated<F: Future>(&self, name: &str, task: F) -> impl Future<Output = F::Output> {
        let gate = self
            .lock()
            .procs
            .get(name)
            .map(|p| p.gate.clone())
            .unwrap_or_default();
        Gated {
            gate,
            inner: Box::pin(task),
        }
    }

    /// Waits while the process called `name`, if there is one, is paused.
    async fn wait_running(&self, name: &str) {
        let gate = self.lock().procs.get(name).map(|p| p.gate.clone());
        if let Some(gate) = gate {
            Opened(gate).await;
        }
    }

    /// Runs `task` as part of process `name` (aborted when it crashes, not polled while it is
    /// paused); dropped when it is down.
    pub fn spawn(&self, name: &str, task: impl Future<Output = ()> + Send + 'static) {
        let mut st = self.lock();
        if let Some(p) = st.procs.get_mut(name).filter(|p| p.alive) {
            let task = Gated {
                gate: p.gate.clone(),
                inner: Box::pin(task),
            };
            p.tasks.spawn(task);
            // Reap finished tasks so the set does not grow without bound.
            while p.tasks.try_join_next().is_some() {}
        }
    }

    /// Whether a message from host `from` gets to host `to` now.
    pub fn reach(&self, from: &str, to: &str) -> bool {
        from == to
            || !self
                .lock()
                .cut
                .contains(&(from.to_string(), to.to_string()))
    }

    /// Cuts the link from `from` to `to` (one way).
    pub fn cut(&self, from: &str, to: &str) {
        self.lock().cut.insert((from.to_string(), to.to_string()));
    }

    /// Heals every cut.
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// The cuts, for traces.
    pub fn cuts(&self) -> Vec<(String, String)> {
        self.lock().cut.iter().cloned().collect()
    }

    /// A random number from the network's generator (for the harness's own choices that must
    /// follow the same seed).
    fn sample(&self) -> (Duration, bool) {
        let mut st = self.lock();
        let Links {
            delay_min,
            delay_max,
            loss_ppm,
        } = st.links;
        let span = delay_max.saturating_sub(delay_min).as_micros() as u64;
        let delay = delay_min + Duration::from_micros(st.rng.gen_range(0..=span));
        let lost = loss_ppm > 0 && st.rng.gen_range(0..1_000_000) < loss_ppm;
        (delay, lost)
    }

    fn host_of(&self, name: &str) -> Option<(String, bool)> {
        self.lock()
            .procs
            .get(name)
            .map(|p| (p.host.clone(), p.alive))
    }

    /// Sends one message from host `from` to host `to`: its delay, then whether it arrived.
    /// The caller waits out `deadline` when it did not.
    async fn carry(&self, from: &str, to: &str, deadline: Instant) -> bool {
        let (delay, lost) = self.sample();
        let arrive = Instant::now() + delay;
        if arrive >= deadline {
            tokio::time::sleep_until(deadline).await;
            return false;
        }
        tokio::time::sleep_until(arrive).await;
        if lost || !self.reach(from, to) {
            tokio::time::sleep_until(deadline).await;
            return false;
        }
        true
    }

    /// Calls process `to` from host `from`: `serve` runs as part of `to` (aborted if it
    /// crashes), within `timeout` for the whole exchange.
    pub async fn call<T, F>(
        &self,
        from: &str,
        to: &str,
        timeout: Duration,
        serve: F,
    ) -> Result<T, CallFail>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        // A paused monitor replica's Raft tasks send only once it resumes.
        self.wait_running(from).await;
        let deadline = Instant::now() + timeout;
        let Some((to_host, _)) = self.host_of(to) else {
            return Err(CallFail::Refused);
        };
        if !self.carry(from, &to_host, deadline).await {
            return Err(CallFail::Timeout);
        }
        if !self.is_up(to) {
            return Err(CallFail::Refused);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.spawn(to, async move {
            let answer = serve.await;
            let _ = tx.send(answer);
        });
        let answer = match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(CallFail::Refused),
            Err(_) => return Err(CallFail::Timeout),
        };
        if !self.carry(&to_host, from, deadline).await {
            return Err(CallFail::Timeout);
        }
        Ok(answer)
    }
}
