//! The checker: pure functions over a run's history. It proves, or refutes, that
//! - every acknowledged write is on every host at the end ([`lost`]), and no write the client
//!   saw refused is there ([`phantom`]);
//! - the counter equals the increments acknowledged, give or take the ones whose outcome is
//!   unknown ([`counter`]): two writable masters in master-master lose increments;
//! - no two hosts were writable (`read_only=0`) or held the writer VIP at the same moment
//!   ([`overlaps`]).
//!
//! The samples of two hosts are never taken at the same instant, so an overlap is reported
//! only when it is certain: a host counts as holding a flag from the end of one sample to the
//! start of the next while consecutive samples (at most `max_gap` apart) all say so, and a
//! second host overlaps when one of its own such spans, or one of its samples as a whole,
//! falls inside. The resolution is the sampling period: a dual writer shorter than it can go
//! unseen, never a false one reported.

use crate::history::{Nanos, Op, OpKind, Outcome, Sample, Seen};
use std::collections::{BTreeMap, BTreeSet};

/// Values acknowledged as written but missing from `present`.
pub fn lost(ops: &[Op], present: &BTreeSet<u64>) -> Vec<u64> {
    writes(ops, Outcome::Ok)
        .filter(|v| !present.contains(v))
        .collect()
}

/// Values whose write the client saw refused (so certainly not executed) but present.
pub fn phantom(ops: &[Op], present: &BTreeSet<u64>) -> Vec<u64> {
    writes(ops, Outcome::Fail)
        .filter(|v| present.contains(v))
        .collect()
}

fn writes(ops: &[Op], outcome: Outcome) -> impl Iterator<Item = u64> + '_ {
    ops.iter().filter_map(move |op| match op.kind {
        OpKind::Write { v } if op.outcome == outcome => Some(v),
        _ => None,
    })
}

/// Checks the final counter `n` against the increments: at least every acknowledged one, at
/// most those plus the ones whose outcome is unknown. Returns what was expected on failure.
pub fn counter(ops: &[Op], n: u64) -> Result<(), String> {
    let count = |want| {
        ops.iter()
            .filter(|op| op.kind == OpKind::Incr && op.outcome == want)
            .count() as u64
    };
    let (acked, unknown) = (count(Outcome::Ok), count(Outcome::Unknown));
    if n < acked {
        Err(format!(
            "the counter is {n} but {acked} increments were acknowledged: {} lost",
            acked - n
        ))
    } else if n > acked + unknown {
        Err(format!(
            "the counter is {n}, more than the {acked} acknowledged and {unknown} unknown increments"
        ))
    } else {
        Ok(())
    }
}

/// A moment when two hosts both held a flag that only one may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub hosts: (String, String),
    pub from: Nanos,
    pub to: Nanos,
}

/// When each host held the flag `holds` reads from a sample (`Some(None)`: the sample could
/// not tell; `None`: a sample of another kind): the certain spans and every sample that says so.
struct Held {
    spans: Vec<(Nanos, Nanos)>,
    points: Vec<(Nanos, Nanos)>,
}

fn held(
    samples: &[&Sample],
    max_gap: Nanos,
    holds: &dyn Fn(&Sample) -> Option<Option<bool>>,
) -> Held {
    let mut h = Held {
        spans: Vec::new(),
        points: Vec::new(),
    };
    // The current run of samples that say so: (complete of its first, invoke and complete of
    // its last).
    let mut run: Option<(Nanos, Nanos, Nanos)> = None;
    for s in samples {
        let yes = matches!(holds(s), Some(Some(true)));
        if yes {
            h.points.push((s.invoke, s.complete));
        }
        run = match (run, yes) {
            (Some((first, _, last_c)), true) if s.invoke.saturating_sub(last_c) <= max_gap => {
                Some((first, s.invoke, s.complete))
            }
            (run, yes) => {
                if let Some((first, last_i, _)) = run {
                    if last_i > first {
                        h.spans.push((first, last_i));
                    }
                }
                yes.then_some((s.complete, s.invoke, s.complete))
            }
        };
    }
    if let Some((first, last_i, _)) = run {
        if last_i > first {
            h.spans.push((first, last_i));
        }
    }
    h
}

/// Every certain overlap of the flag `holds` between two hosts. `holds` returns `None` for a
/// sample that does not bear on the flag, `Some(None)` when the sample could not tell.
pub fn overlaps(
    samples: &[Sample],
    max_gap: Nanos,
    holds: impl Fn(&Sample) -> Option<Option<bool>>,
) -> Vec<Overlap> {
    let mut by_host: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        if holds(s).is_some() {
            by_host.entry(s.host.as_str()).or_default().push(s);
        }
    }
    let held: Vec<(&str, Held)> = by_host
        .into_iter()
        .map(|(host, mut v)| {
            v.sort_by_key(|s| (s.invoke, s.complete));
            (host, held(&v, max_gap, &holds))
        })
        .collect();
    let mut found = Vec::new();
    for (i, (a, ha)) in held.iter().enumerate() {
        for (b, hb) in &held[i + 1..] {
            let mut push = |from, to| {
                found.push(Overlap {
                    hosts: (a.to_string(), b.to_string()),
                    from,
                    to,
                })
            };
            for &(from, to) in &ha.spans {
                for &(bf, bt) in &hb.spans {
                    let (lo, hi) = (from.max(bf), to.min(bt));
                    if lo < hi {
                        push(lo, hi);
                    }
                }
            }
            // A sample of one host inside a certain span of the other.
            for (spans, points) in [(&ha.spans, &hb.points), (&hb.spans, &ha.points)] {
                for &(from, to) in spans {
                    for &(pi, pc) in points.iter().filter(|(pi, pc)| from <= *pi && *pc <= to) {
                        push(pi, pc);
                    }
                }
            }
        }
    }
    found.sort_by_key(|o| (o.from, o.to));
    found.dedup();
    found
}

/// `read_only=0`, from a writable sample.
pub fn writable(s: &Sample) -> Option<Option<bool>> {
    match &s.seen {
        Seen::Writable { writable } => Some(*writable),
        Seen::Addresses { .. } => None,
    }
}

/// Holds `vip`, from an addresses sample.
pub fn holds_vip(vip: String) -> impl Fn(&Sample) -> Option<Option<bool>> + 'static {
    move |s| match &s.seen {
        Seen::Addresses { addresses } => Some(addresses.as_ref().map(|a| a.contains(&vip))),
        Seen::Writable { .. } => None,
    }
}

/// The longest time without an acknowledged write in `[from, to]`, counted from the last
/// acknowledged write before `from`: the write outage a fault caused.
pub fn outage(ops: &[Op], from: Nanos, to: Nanos) -> Nanos {
    let mut acked: Vec<Nanos> = ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Write { .. }) && op.outcome == Outcome::Ok)
        .map(|op| op.complete)
        .collect();
    acked.sort_unstable();
    let first = acked.partition_point(|t| *t <= from);
    let mut last = if first > 0 { acked[first - 1] } else { from };
    let mut longest = 0;
    for &t in acked[first..].iter().take_while(|t| **t <= to) {
        longest = longest.max(t - last);
        last = t;
    }
    longest.max(to.saturating_sub(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn op(kind: OpKind, outcome: Outcome, complete_ms: u64) -> Op {
        Op {
            process: 0,
            fresh: true,
            kind,
            invoke: complete_ms.saturating_sub(1) * MS,
            complete: complete_ms * MS,
            outcome,
            error: None,
        }
    }

    fn ro(host: &str, at_ms: u64, w: Option<bool>) -> Sample {
        Sample {
            host: host.into(),
            invoke: at_ms * MS,
            complete: at_ms * MS + MS / 2,
            seen: Seen::Writable { writable: w },
        }
    }

    fn addrs(host: &str, at_ms: u64, a: &[&str]) -> Sample {
        Sample {
            host: host.into(),
            invoke: at_ms * MS,
            complete: at_ms * MS + MS / 2,
            seen: Seen::Addresses {
                addresses: Some(a.iter().map(|s| s.to_string()).collect()),
            },
        }
    }

    #[test]
    fn an_acknowledged_write_missing_at_the_end_is_lost_and_a_refused_one_present_is_a_phantom() {
        let ops = vec![
            op(OpKind::Write { v: 1 }, Outcome::Ok, 1),
            op(OpKind::Write { v: 2 }, Outcome::Ok, 2),
            op(OpKind::Write { v: 3 }, Outcome::Unknown, 3),
            op(OpKind::Write { v: 4 }, Outcome::Fail, 4),
            op(OpKind::Write { v: 5 }, Outcome::Fail, 5),
        ];
        let present: BTreeSet<u64> = [1, 3, 5].into();
        assert_eq!(lost(&ops, &present), vec![2]);
        assert_eq!(phantom(&ops, &present), vec![5]);
        let all: BTreeSet<u64> = [1, 2].into();
        assert!(lost(&ops, &all).is_empty() && phantom(&ops, &all).is_empty());
    }

    #[test]
    fn the_counter_must_lie_between_the_acknowledged_and_the_possible_increments() {
        let ops = vec![
            op(OpKind::Incr, Outcome::Ok, 1),
            op(OpKind::Incr, Outcome::Ok, 2),
            op(OpKind::Incr, Outcome::Unknown, 3),
            op(OpKind::Incr, Outcome::Fail, 4),
        ];
        assert!(counter(&ops, 2).is_ok());
        assert!(counter(&ops, 3).is_ok());
        assert!(counter(&ops, 1).unwrap_err().contains("1 lost"));
        assert!(counter(&ops, 4).unwrap_err().contains("more than"));
    }

    #[test]
    fn two_hosts_writable_across_each_others_samples_overlap() {
        // master1 writable from 0 to 300 ms, master2 from 200 ms on: certain from 200 to 300.
        let mut s: Vec<Sample> = (0..=3)
            .map(|i| ro("master1", i * 100, Some(true)))
            .collect();
        s.extend((2..=5).map(|i| ro("master2", i * 100 + 10, Some(true))));
        let found = overlaps(&s, 500 * MS, writable);
        assert!(!found.is_empty());
        assert_eq!(found[0].hosts, ("master1".into(), "master2".into()));
        assert!(found
            .iter()
            .all(|o| o.from >= 200 * MS && o.to <= 300 * MS + MS));
    }

    #[test]
    fn a_handover_between_two_samples_is_not_an_overlap() {
        // master1 writable at 0 and 100, read-only at 200; master2 read-only at 150, writable
        // at 250: the samples cannot tell who was first, so nothing certain is reported.
        let s = vec![
            ro("master1", 0, Some(true)),
            ro("master1", 100, Some(true)),
            ro("master1", 200, Some(false)),
            ro("master2", 150, Some(false)),
            ro("master2", 199, Some(true)),
            ro("master2", 300, Some(true)),
        ];
        assert!(overlaps(&s, 500 * MS, writable).is_empty());
    }

    #[test]
    fn a_sample_straddling_the_end_of_a_certain_span_is_not_an_overlap() {
        // master1 is certainly writable from 0.5 to 100 ms; master2's read ran somewhere
        // between 99.8 and 101 ms, so it may have come after master1 stopped.
        let straddling = Sample {
            host: "master2".into(),
            invoke: 99 * MS + 800_000,
            complete: 101 * MS,
            seen: Seen::Writable {
                writable: Some(true),
            },
        };
        let mut s = vec![
            ro("master1", 0, Some(true)),
            ro("master1", 100, Some(true)),
            ro("master1", 200, Some(false)),
            straddling,
            ro("master2", 300, Some(false)),
        ];
        assert!(overlaps(&s, 500 * MS, writable).is_empty());
        // Inside the span, the same read is an overlap.
        s[3].invoke = 50 * MS;
        s[3].complete = 51 * MS;
        assert_eq!(overlaps(&s, 500 * MS, writable).len(), 1);
    }

    #[test]
    fn a_sample_that_could_not_tell_or_a_long_gap_breaks_the_certain_span() {
        // master1 true, unknown, true: not certain in between, so master2's single true
        // sample at 100 is no overlap; the same with a gap longer than max_gap.
        let s = vec![
            ro("master1", 0, Some(true)),
            ro("master1", 100, None),
            ro("master1", 200, Some(true)),
            ro("master2", 120, Some(true)),
        ];
        assert!(overlaps(&s, 500 * MS, writable).is_empty());
        let s = vec![
            ro("master1", 0, Some(true)),
            ro("master1", 1000, Some(true)),
            ro("master2", 500, Some(true)),
        ];
        assert!(overlaps(&s, 500 * MS, writable).is_empty());
        assert_eq!(overlaps(&s, 2000 * MS, writable).len(), 1);
    }

    #[test]
    fn the_writer_vip_on_two_hosts_overlaps_and_other_addresses_do_not() {
        let vip = "10.214.0.100";
        let s = vec![
            addrs("master1", 0, &["10.214.0.21", vip]),
            addrs("master1", 100, &["10.214.0.21", vip]),
            addrs("master2", 50, &["10.214.0.22", vip]),
            addrs("slave1", 0, &["10.214.0.23", "10.214.0.101"]),
            addrs("slave1", 100, &["10.214.0.23", "10.214.0.101"]),
            ro("slave2", 50, Some(true)),
        ];
        let found = overlaps(&s, 500 * MS, holds_vip(vip.into()));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].hosts, ("master1".into(), "master2".into()));
        assert!(overlaps(&s, 500 * MS, holds_vip("10.214.0.101".into())).is_empty());
    }

    #[test]
    fn the_outage_is_the_longest_gap_between_acknowledged_writes_around_the_fault() {
        let ops: Vec<Op> = [10, 20, 30, 1030, 1040, 5000]
            .into_iter()
            .map(|t| op(OpKind::Write { v: t }, Outcome::Ok, t))
            .chain([op(OpKind::Write { v: 7 }, Outcome::Fail, 500)])
            .collect();
        // Fault at 25 ms: the gap from the write at 30 to the one at 1030 is the longest (the
        // refused write at 500 does not count).
        assert_eq!(outage(&ops, 25 * MS, 2000 * MS), 1000 * MS);
        // Fault at 35 ms: counted from the write at 30, before the fault.
        assert_eq!(outage(&ops, 35 * MS, 1035 * MS), 1000 * MS);
        // No write after 1040 until the window ends at 3000.
        assert_eq!(outage(&ops, 1035 * MS, 3000 * MS), (3000 - 1040) * MS);
    }
}
