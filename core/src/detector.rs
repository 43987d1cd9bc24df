//! The check trap: MMM 2.2.1 `Checker.pm` (reference §1.4), which turns raw probe results
//! into the check results the host rules see.
//!
//! A failure is reported only after it has lasted `trap_period`; a success is reported at once,
//! but only if a failure (or nothing yet) had been reported; an UNKNOWN result reports nothing,
//! keeps the last reported result and restarts the trap timer. One `Trap` per host and check.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::Time;

/// What one probe found, classified as MMM did by the message prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// `OK…`
    Ok(String),
    /// `ERROR…`
    Error(String),
    /// `UNKNOWN…`: the probe could not tell (for example "Too many connections").
    Unknown(String),
}

impl Probe {
    /// Classifies a checker message by its prefix; anything unrecognised is an error.
    pub fn from_message(message: &str) -> Probe {
        if message.starts_with("OK") {
            Probe::Ok(message.to_string())
        } else if message.starts_with("UNKNOWN") {
            Probe::Unknown(message.to_string())
        } else {
            Probe::Error(message.to_string())
        }
    }
}

/// Where a check stands between reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Nothing seen yet.
    Undefined,
    /// Last seen OK, and that was reported.
    Ok,
    /// Failing since `since`, not yet reported.
    Failing,
    /// Failure reported.
    Failed,
    /// Last seen UNKNOWN.
    Unknown,
}

/// A result to report: whether the check passes and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the check passes.
    pub ok: bool,
    /// The probe's message.
    pub message: String,
}

/// The trap of one check on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trap {
    phase: Phase,
    since: Time,
    /// The errant-transactions failure last reported, if the reported failure is one.
    errant: Option<String>,
    /// Whether the result last reported was a pass (`None`: nothing reported yet). A pass is
    /// reported only over a reported failure, whatever was seen in between: a failure
    /// reported, then UNKNOWN, then a new failure still in its trap, then a pass must report
    /// the pass, or the old failure would stand for good.
    #[serde(default)]
    reported_ok: Option<bool>,
}

impl Default for Trap {
    fn default() -> Self {
        Trap {
            phase: Phase::Undefined,
            since: Time(0),
            errant: None,
            reported_ok: None,
        }
    }
}

impl Trap {
    /// The trap after a check's very first probe, and the result to report at once: as in
    /// MMM's initial round (`ChecksStatus.pm:38-39`) anything but `OK` (UNKNOWN included)
    /// counts as a reported failure, with no trap_period.
    pub fn first(probe: Probe, now: Time) -> (Trap, Verdict) {
        let (phase, verdict) = match probe {
            Probe::Ok(message) => (Phase::Ok, Verdict { ok: true, message }),
            Probe::Error(message) | Probe::Unknown(message) => {
                (Phase::Failed, Verdict { ok: false, message })
            }
        };
        let errant = crate::gtid::ErrantReport::from_message(&verdict.message)
            .map(|_| verdict.message.clone());
        let trap = Trap {
            phase,
            since: now,
            errant,
            reported_ok: Some(verdict.ok),
        };
        (trap, verdict)
    }

    /// Feeds one probe result seen at `now`; returns the result to report, if any.
    pub fn observe(&mut self, probe: Probe, now: Time, trap_period: Duration) -> Option<Verdict> {
        let verdict = self.next(probe, now, trap_period);
        if let Some(v) = &verdict {
            self.reported_ok = Some(v.ok);
        }
        verdict
    }

    fn next(&mut self, probe: Probe, now: Time, trap_period: Duration) -> Option<Verdict> {
        match probe {
            Probe::Ok(message) => {
                let report = self.reported_ok != Some(true);
                self.phase = Phase::Ok;
                self.errant = None;
                report.then_some(Verdict { ok: true, message })
            }
            Probe::Unknown(_) => {
                if self.phase != Phase::Unknown {
                    self.phase = Phase::Unknown;
                    self.since = now;
                }
                None
            }
            Probe::Error(message) => {
                let errant = crate::gtid::ErrantReport::from_message(&message).is_some();
                let reported = self.phase == Phase::Failed;
                let report_now = if errant {
                    !(reported && self.errant.as_ref() == Some(&message))
                } else {
                    reported && self.errant.is_some()
                };
                if report_now {
                    // Errant transactions are a fact, not a symptom that may pass: reported
                    // at once (so a returning host never goes ONLINE in between), again when
                    // they change, and their end as soon as the failure is another one.
                    self.phase = Phase::Failed;
                    self.since = now;
                    self.errant = errant.then(|| message.clone());
                    return Some(Verdict { ok: false, message });
                }
                match self.phase {
                    Phase::Failed => return None,
                    Phase::Failing => {}
                    Phase::Undefined | Phase::Ok | Phase::Unknown => {
                        self.phase = Phase::Failing;
                        self.since = now;
                    }
                }
                if now.since(self.since) < trap_period {
                    return None;
                }
                self.phase = Phase::Failed;
                self.errant = None;
                Some(Verdict { ok: false, message })
            }
        }
    }

    /// How long the current failure has lasted, if one is being trapped or was reported.
    pub fn failing_for(&self, now: Time) -> Option<Duration> {
        matches!(self.phase, Phase::Failing | Phase::Failed).then(|| now.since(self.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAP: Duration = Duration::from_secs(10);

    fn at(s: u64) -> Time {
        Time::from_secs(s)
    }

    fn err() -> Probe {
        Probe::Error("ERROR: Connect error".into())
    }

    fn ok() -> Probe {
        Probe::Ok("OK".into())
    }

    fn errant_text(n: u64) -> String {
        format!(
            "ERROR: Errant transactions not on the active master db1: {n} (0-2-101..0-2-{})",
            100 + n
        )
    }

    fn errant(n: u64) -> Probe {
        Probe::Error(errant_text(n))
    }

    #[test]
    fn a_pass_clears_a_reported_failure_even_after_unknown_and_a_new_failure_in_its_trap() {
        // Seen in the chaos suite: errant transactions reported; the host rebuilt (its server
        // unreachable: UNKNOWN); restarted but not replicating yet (a failure, trapped); then
        // replicating. The pass must be reported, or the errant finding stands for good.
        let mut t = Trap::default();
        t.observe(ok(), at(0), TRAP);
        assert!(t.observe(errant(3), at(1), TRAP).is_some());
        assert_eq!(
            t.observe(Probe::Unknown("UNKNOWN: x".into()), at(2), TRAP),
            None
        );
        assert_eq!(t.observe(err(), at(3), TRAP), None, "in its trap");
        assert_eq!(
            t.observe(ok(), at(4), TRAP),
            Some(Verdict {
                ok: true,
                message: "OK".into()
            })
        );
        assert_eq!(t.observe(ok(), at(5), TRAP), None, "reported once");
        // A failure never reported needs no pass either.
        assert_eq!(t.observe(err(), at(6), TRAP), None);
        assert_eq!(t.observe(ok(), at(7), TRAP), None);
    }

    #[test]
    fn errant_transactions_are_reported_at_once_and_again_when_they_change() {
        let mut t = Trap::default();
        t.observe(ok(), at(0), TRAP);
        assert_eq!(
            t.observe(errant(5), at(1), TRAP).map(|v| v.message),
            Some(errant_text(5)),
            "no trap_period for a fact"
        );
        assert_eq!(t.observe(errant(5), at(2), TRAP), None, "reported once");
        assert!(
            t.observe(errant(6), at(3), TRAP).is_some(),
            "a new count is news"
        );
        let broken = Probe::Error("ERROR: Replication is broken".into());
        assert_eq!(
            t.observe(broken.clone(), at(4), TRAP).map(|v| v.message),
            Some("ERROR: Replication is broken".to_string()),
            "no longer errant: the other failure replaces it at once"
        );
        assert_eq!(t.observe(broken, at(5), TRAP), None);
        assert!(t.observe(errant(1), at(6), TRAP).is_some());
        assert_eq!(t.observe(ok(), at(7), TRAP).map(|v| v.ok), Some(true));
        let (first, v) = Trap::first(errant(2), at(8));
        assert!(!v.ok);
        let mut first = first;
        assert_eq!(first.observe(errant(2), at(9), TRAP), None);
    }

    #[test]
    fn failure_is_reported_only_after_trap_period() {
        let mut t = Trap::default();
        assert_eq!(t.observe(ok(), at(0), TRAP).map(|v| v.ok), Some(true));
        assert_eq!(t.observe(err(), at(5), TRAP), None);
        assert_eq!(t.observe(err(), at(14), TRAP), None);
        let v = t.observe(err(), at(15), TRAP);
        assert_eq!(
            v.map(|v| (v.ok, v.message)),
            Some((false, "ERROR: Connect error".into()))
        );
        assert_eq!(
            t.observe(err(), at(16), TRAP),
            None,
            "a failure is reported once"
        );
        assert_eq!(t.failing_for(at(20)), Some(Duration::from_secs(15)));
    }

    #[test]
    fn success_is_reported_at_once_but_only_after_a_reported_failure() {
        let mut t = Trap::default();
        t.observe(ok(), at(0), TRAP);
        assert_eq!(
            t.observe(ok(), at(1), TRAP),
            None,
            "unchanged success is not reported"
        );
        t.observe(err(), at(2), TRAP);
        assert_eq!(
            t.observe(ok(), at(3), TRAP),
            None,
            "a failure shorter than trap_period is never reported, nor its end"
        );
        t.observe(err(), at(4), TRAP);
        t.observe(err(), at(14), TRAP);
        assert_eq!(t.observe(ok(), at(15), TRAP).map(|v| v.ok), Some(true));
    }

    #[test]
    fn unknown_keeps_the_state_and_restarts_the_trap_timer() {
        let mut t = Trap::default();
        t.observe(ok(), at(0), TRAP);
        t.observe(err(), at(1), TRAP);
        assert_eq!(
            t.observe(
                Probe::Unknown("UNKNOWN: Too many connections!".into()),
                at(9),
                TRAP
            ),
            None
        );
        assert_eq!(
            t.observe(err(), at(12), TRAP),
            None,
            "the trap restarted at 12"
        );
        assert_eq!(t.observe(err(), at(21), TRAP), None);
        assert_eq!(t.observe(err(), at(22), TRAP).map(|v| v.ok), Some(false));
    }

    #[test]
    fn the_first_probe_is_reported_at_once_and_unknown_counts_as_failed() {
        let (mut t, v) = Trap::first(Probe::Unknown("UNKNOWN: Connect error".into()), at(0));
        assert!(
            !v.ok,
            "an initial UNKNOWN is a failure, as in MMM's initial round"
        );
        assert_eq!(
            t.observe(ok(), at(1), TRAP).map(|v| v.ok),
            Some(true),
            "the end of the initial failure is reported at once"
        );
        let (mut t, v) = Trap::first(ok(), at(0));
        assert!(v.ok);
        assert_eq!(t.observe(err(), at(1), TRAP), None, "then the trap applies");
    }

    #[test]
    fn zero_trap_period_reports_the_first_failure() {
        let mut t = Trap::default();
        assert_eq!(
            t.observe(err(), at(0), Duration::ZERO).map(|v| v.ok),
            Some(false)
        );
    }

    #[test]
    fn messages_are_classified_by_prefix() {
        assert!(matches!(
            Probe::from_message("OK: Backlog is null"),
            Probe::Ok(_)
        ));
        assert!(matches!(
            Probe::from_message("UNKNOWN: Connect error"),
            Probe::Unknown(_)
        ));
        assert!(matches!(
            Probe::from_message("ERROR: Timeout"),
            Probe::Error(_)
        ));
        assert!(matches!(Probe::from_message("garbage"), Probe::Error(_)));
    }
}
