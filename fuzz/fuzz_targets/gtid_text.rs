//! GTID text as MariaDB answers it and the monitor and agents parse it (`mmm_core::gtid`):
//! `GtidPos::parse` (`@@gtid_binlog_pos`, `@@gtid_current_pos`, a peer's executed position),
//! `BinlogState::parse` (`@@gtid_binlog_state`), `ErrantReport::from_message` (a rep_threads
//! check message, which followers send the leader), and the agent's `clone` helpers
//! `parse_binlog_info` and `binlog_state_of_copy`. The input is split at the first `|` into two
//! texts `a` and `b`, so that the operations on two positions or states (`merge`, `missing`,
//! `covers`, `behind`, `at_position`, `errant`) run on parsed values as the agent and the
//! checker run them.
//!
//! Invariants beyond "no panic": parse → to_string → parse gives the same value and printing
//! is canonical; a parse error carries the text it was given; `covers` is `missing` being
//! empty, and `behind` is zero then; a merge covers both sides; an errant-transactions
//! message made by `errant_message` reads back as the same report.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mmm_core::gtid::{self, BinlogState, ErrantReport, GtidPos};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('|').unwrap_or((text, ""));

    let pos_a = position(a);
    let pos_b = position(b);
    let state_a = binlog_state(a);
    let state_b = binlog_state(b);

    if let (Some(pa), Some(pb)) = (&pos_a, &pos_b) {
        let missing = pa.missing(pb);
        assert_eq!(pa.covers(pb), missing.is_empty());
        // Documented: zero when covering. (Not the converse: a domain `pb` has at sequence
        // number 0 and `pa` lacks is missing, yet counts 0 towards `behind`.)
        let behind = pa.behind(pb);
        if missing.is_empty() {
            assert_eq!(behind, 0);
        }
        assert!(pa.covers(pa));
        let merged = pa.merge(pb);
        assert!(
            merged.covers(pa) && merged.covers(pb),
            "{merged} of {pa} and {pb}"
        );
        let listed = gtid::list(&missing);
        let reparsed = GtidPos::parse(&listed)
            .unwrap_or_else(|e| panic!("gtid::list printed an unparsable position: {e}"));
        assert_eq!(reparsed.to_string(), listed);
    }
    if let (Some(sa), Some(pb)) = (&state_a, &pos_b) {
        let at = sa.at_position(pb);
        assert_eq!(binlog_state(&at.to_string()), Some(at));
    }
    if let (Some(sa), Some(sb)) = (&state_a, &state_b) {
        let errant = gtid::errant(sa, sb);
        assert!(gtid::errant(sa, sa).is_empty());
        if !errant.is_empty() {
            let message = gtid::errant_message("db1", &errant);
            let report = ErrantReport::from_message(&message)
                .unwrap_or_else(|| panic!("errant_message does not read back: {message}"));
            assert_eq!(report.writer, "db1");
            assert_eq!(report.errant, errant, "{message}");
        }
    }

    // A check message from a follower.
    if let Some(report) = ErrantReport::from_message(text) {
        let message = gtid::errant_message(&report.writer, &report.errant);
        let again = ErrantReport::from_message(&message)
            .unwrap_or_else(|| panic!("errant_message does not read back: {message}"));
        assert_eq!(again, report, "{message}");
        let _ = report.errant.count().to_string();
    }

    // The agent's clone helpers: an `xtrabackup_binlog_info` file and a copy's binlog state.
    let _ = mmm_agent::clone::parse_binlog_info(text);
    let copy = mmm_agent::clone::binlog_state_of_copy(a, Some(b));
    if let Some(pa) = &pos_a {
        if state_b.is_some() {
            assert!(binlog_state(&copy).is_some(), "not a binlog state: {copy}");
        } else {
            assert_eq!(copy, pa.to_string());
        }
    }
});

/// Parses a position and checks its round trip.
fn position(text: &str) -> Option<GtidPos> {
    match GtidPos::parse(text) {
        Ok(p) => {
            let printed = p.to_string();
            let again = GtidPos::parse(&printed)
                .unwrap_or_else(|e| panic!("a printed position does not parse: {e}"));
            assert_eq!(again, p, "{text:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed);
            Some(p)
        }
        Err(e) => {
            assert_eq!(e.text, text);
            let _ = e.to_string();
            None
        }
    }
}

/// Parses a binary log state and checks its round trip.
fn binlog_state(text: &str) -> Option<BinlogState> {
    match BinlogState::parse(text) {
        Ok(s) => {
            let printed = s.to_string();
            let again = BinlogState::parse(&printed)
                .unwrap_or_else(|e| panic!("a printed binlog state does not parse: {e}"));
            assert_eq!(again, s, "{text:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed);
            Some(s)
        }
        Err(e) => {
            assert_eq!(e.text, text);
            let _ = e.to_string();
            None
        }
    }
}
