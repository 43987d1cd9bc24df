//! MariaDB GTID positions (`@@gtid_binlog_pos`, `@@gtid_slave_pos`, `@@gtid_current_pos`):
//! a list of `domain-server-sequence`, one per replication domain, comma-separated.
//!
//! Within a domain sequence numbers only grow (with `gtid_strict_mode` the server enforces it),
//! so a server has applied a position when, in every domain of it, the server's own sequence
//! number is at least as high. That is how a new writer knows it has everything the old
//! writer wrote before it takes writes itself.
//!
//! `@@gtid_binlog_state` ([`BinlogState`]) keeps the last GTID of every server of a domain;
//! comparing a host's with the active master's finds errant transactions ([`errant`]): the
//! ones only the host has, typically an old writer's last writes that never reached the
//! others. The rep_threads check reports them in a message this module writes and reads back.

use std::collections::BTreeMap;
use std::fmt;

/// A position that is not `domain-server-sequence[,...]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MariaDB GTID position: '{text}' ({reason})")]
pub struct GtidError {
    /// What was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gtid {
    /// The replication domain.
    pub domain: u32,
    /// The server that wrote it.
    pub server: u32,
    /// Its sequence number in the domain.
    pub seq: u64,
}

/// The last GTID of each domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, Gtid>);

impl GtidPos {
    /// Parses a position as MariaDB prints it (spaces and newlines around entries are allowed;
    /// the empty string is the empty position).
    pub fn parse(text: &str) -> Result<GtidPos, GtidError> {
        let error = |reason: String| GtidError {
            text: text.to_string(),
            reason,
        };
        let mut pos = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let gtid = parse_gtid(text, entry)?;
            if pos.insert(gtid.domain, gtid).is_some() {
                return Err(error(format!("domain {} appears twice", gtid.domain)));
            }
        }
        Ok(GtidPos(pos))
    }

    /// Whether there is no GTID at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Per domain, the later of the two: what a server has executed when `self` is its
    /// `gtid_binlog_pos` and `other` its `gtid_slave_pos`.
    pub fn merge(&self, other: &GtidPos) -> GtidPos {
        let mut merged = self.0.clone();
        for (domain, gtid) in &other.0 {
            merged
                .entry(*domain)
                .and_modify(|g| {
                    if gtid.seq > g.seq {
                        *g = *gtid;
                    }
                })
                .or_insert(*gtid);
        }
        GtidPos(merged)
    }

    /// The GTIDs of `wanted` this position has not reached: a domain it lacks, or a lower
    /// sequence number. Empty when it covers `wanted`.
    pub fn missing(&self, wanted: &GtidPos) -> Vec<Gtid> {
        wanted
            .0
            .values()
            .filter(|w| self.0.get(&w.domain).is_none_or(|have| have.seq < w.seq))
            .copied()
            .collect()
    }

    /// Whether this position has reached every domain of `wanted`.
    pub fn covers(&self, wanted: &GtidPos) -> bool {
        self.missing(wanted).is_empty()
    }

    /// How far `other` is ahead of this position: per domain, the sequence numbers it has
    /// beyond this one's (all of them in a domain this one lacks), summed. Zero when this
    /// position covers `other`. A new writer fetches from the peer furthest ahead first.
    pub fn behind(&self, other: &GtidPos) -> u64 {
        self.missing(other)
            .iter()
            .map(|g| {
                let have = self.0.get(&g.domain).map_or(0, |h| h.seq);
                g.seq.saturating_sub(have)
            })
            .fold(0u64, u64::saturating_add)
    }
}

/// `@@gtid_binlog_state`: the last GTID of every (domain, server) pair in a server's binary
/// log. Unlike a position it keeps one entry per server of a domain, so it tells which
/// server's transactions a host has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinlogState(BTreeMap<(u32, u32), u64>);

impl BinlogState {
    /// Parses a state as MariaDB prints it (the empty string is the empty state).
    pub fn parse(text: &str) -> Result<BinlogState, GtidError> {
        let mut state = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let g = parse_gtid(text, entry)?;
            if state.insert((g.domain, g.server), g.seq).is_some() {
                return Err(GtidError {
                    text: text.to_string(),
                    reason: format!("{}-{} appears twice", g.domain, g.server),
                });
            }
        }
        Ok(BinlogState(state))
    }

    /// The GTIDs of `position` this binary log lacks: per domain, the position's last GTID
    /// when this log has nothing from its server or only an earlier sequence number of it. A
    /// peer whose position has the same sequence number as this server's own but from another
    /// server (two histories that parted) is missing something here, which comparing the two
    /// positions' sequence numbers alone cannot tell.
    pub fn lacks(&self, position: &GtidPos) -> Vec<Gtid> {
        position
            .0
            .values()
            .filter(|g| {
                self.0
                    .get(&(g.domain, g.server))
                    .is_none_or(|have| *have < g.seq)
            })
            .copied()
            .collect()
    }

    /// This state with the GTIDs of `position` in it (after fetching up to that position).
    pub fn with_position(&self, position: &GtidPos) -> BinlogState {
        let mut state = self.0.clone();
        for g in position.0.values() {
            let e = state.entry((g.domain, g.server)).or_insert(g.seq);
            if *e < g.seq {
                *e = g.seq;
            }
        }
        BinlogState(state)
    }

    /// The binary log state a server had when it had executed exactly `position`, from a
    /// state read later (`self`): each domain's entry for the server that wrote the
    /// position's last GTID is that GTID, and the other servers' entries stay where they were
    /// if they are older (in GTID strict mode sequence numbers only grow in a domain, so those
    /// are unchanged since); entries written after the position by another server are left
    /// out, their earlier value being unknown. A copy of the server restored elsewhere gets
    /// this state, so replicas that had reached any of its servers' transactions can
    /// replicate from the copy.
    pub fn at_position(&self, position: &GtidPos) -> BinlogState {
        let mut state = BTreeMap::new();
        for (&(domain, server), &seq) in &self.0 {
            match position.0.get(&domain) {
                Some(last) if last.server != server && seq < last.seq => {
                    state.insert((domain, server), seq);
                }
                Some(_) => {}
                None => {
                    state.insert((domain, server), seq);
                }
            }
        }
        for g in position.0.values() {
            state.insert((g.domain, g.server), g.seq);
        }
        BinlogState(state)
    }
}

impl fmt::Display for BinlogState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (&(domain, server), seq) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{domain}-{server}-{seq}")?;
        }
        Ok(())
    }
}

/// Transactions of one server in one domain that a host has and the writer lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrantRange {
    /// The domain.
    pub domain: u32,
    /// The server that wrote them.
    pub server: u32,
    /// The first of them, when known: the one after the writer's last GTID of that server.
    /// Unknown when the writer has none of that server's transactions (the binary log state
    /// keeps only the last GTID of each server).
    pub first: Option<u64>,
    /// The last of them.
    pub last: u64,
}

/// A host's errant transactions: what its binary log has that the active master's lacks.
/// Such a host must not serve reads or take the writer role, and replicating into it would
/// hide the difference: it is kept out of rotation until it is rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errant(Vec<ErrantRange>);

/// The text before every errant-transactions check message.
const ERRANT_PREFIX: &str = "ERROR: Errant transactions not on the active master ";

/// How `mmm_control checks` words the rep_threads failure of a host with errant transactions.
/// [`ErrantReport::from_message`] reads it back.
pub fn errant_message(writer: &str, errant: &Errant) -> String {
    format!("{ERRANT_PREFIX}{writer}: {} ({errant})", errant.count())
}

/// What an errant-transactions check message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrantReport {
    /// The active master the host was compared with.
    pub writer: String,
    /// The transactions it lacks.
    pub errant: Errant,
}

impl ErrantReport {
    /// Reads a message made by [`errant_message`]; `None` for any other message.
    pub fn from_message(message: &str) -> Option<ErrantReport> {
        let rest = message.strip_prefix(ERRANT_PREFIX)?;
        let (writer, rest) = rest.split_once(": ")?;
        let (_, set) = rest.split_once(" (")?;
        let errant = Errant::parse(set.strip_suffix(')')?)?;
        (!errant.is_empty()).then(|| ErrantReport {
            writer: writer.to_string(),
            errant,
        })
    }
}

/// The transactions in `host`'s binary log state that `writer`'s lacks: per (domain, server),
/// a later sequence number than the writer's last of that server, or a server the writer has
/// nothing from. Read the host's state before the writer's: the writer only gains
/// transactions, so nothing the host got from it in between looks errant.
pub fn errant(host: &BinlogState, writer: &BinlogState) -> Errant {
    Errant(
        host.0
            .iter()
            .filter_map(|(&(domain, server), &last)| {
                let have = writer.0.get(&(domain, server)).copied();
                // Built only when the host is ahead: then `w < last`, so `w + 1` fits.
                (have.is_none_or(|w| w < last)).then(|| ErrantRange {
                    domain,
                    server,
                    first: have.map(|w| w + 1),
                    last,
                })
            })
            .collect(),
    )
}

/// How many errant transactions there are: exact when every range's first GTID is known and
/// each server numbered its transactions in the domain one after the other (the usual case: a
/// writer alone in its domain); otherwise a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrantCount {
    /// The number (a lower bound when not `exact`).
    pub n: u64,
    /// Whether it is exact.
    pub exact: bool,
}

impl fmt::Display for ErrantCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.exact {
            f.write_str("at least ")?;
        }
        write!(f, "{}", self.n)
    }
}

impl Errant {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ranges, by domain and server.
    pub fn ranges(&self) -> &[ErrantRange] {
        &self.0
    }

    /// How many transactions the ranges hold.
    pub fn count(&self) -> ErrantCount {
        self.0
            .iter()
            .fold(ErrantCount { n: 0, exact: true }, |acc, r| match r.first {
                Some(first) => ErrantCount {
                    n: acc
                        .n
                        .saturating_add(r.last.saturating_sub(first).saturating_add(1)),
                    exact: acc.exact,
                },
                None => ErrantCount {
                    n: acc.n.saturating_add(1),
                    exact: false,
                },
            })
    }

    /// Parses what `Display` prints.
    fn parse(text: &str) -> Option<Errant> {
        let mut ranges = Vec::new();
        for entry in text.split(',').map(str::trim) {
            let range = if let Some(last) = entry.strip_prefix("up to ") {
                let g = parse_gtid(text, last).ok()?;
                ErrantRange {
                    domain: g.domain,
                    server: g.server,
                    first: None,
                    last: g.seq,
                }
            } else {
                let (a, b) = entry.split_once("..").unwrap_or((entry, entry));
                let (a, b) = (parse_gtid(text, a).ok()?, parse_gtid(text, b).ok()?);
                if (a.domain, a.server) != (b.domain, b.server) || a.seq > b.seq {
                    return None;
                }
                ErrantRange {
                    domain: a.domain,
                    server: a.server,
                    first: Some(a.seq),
                    last: b.seq,
                }
            };
            ranges.push(range);
        }
        Some(Errant(ranges))
    }
}

impl fmt::Display for Errant {
    /// `0-2-101..0-2-105`, `0-2-101` for one, `up to 0-3-61` when the first is unknown;
    /// comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let (d, s) = (r.domain, r.server);
            match r.first {
                None => write!(f, "up to {d}-{s}-{}", r.last)?,
                Some(first) if first == r.last => write!(f, "{d}-{s}-{first}")?,
                Some(first) => write!(f, "{d}-{s}-{first}..{d}-{s}-{}", r.last)?,
            }
        }
        Ok(())
    }
}

/// One `domain-server-sequence` entry of `text`.
fn parse_gtid(text: &str, entry: &str) -> Result<Gtid, GtidError> {
    let error = |reason: String| GtidError {
        text: text.to_string(),
        reason,
    };
    let parts: Vec<&str> = entry.trim().split('-').collect();
    let [domain, server, seq] = parts.as_slice() else {
        return Err(error(format!("'{entry}' is not domain-server-sequence")));
    };
    let number = |what: &str, s: &str| {
        s.parse::<u64>()
            .map_err(|_| error(format!("'{entry}': {what} '{s}' is not a number")))
    };
    Ok(Gtid {
        domain: u32::try_from(number("domain", domain)?)
            .map_err(|_| error(format!("'{entry}': domain out of range")))?,
        server: u32::try_from(number("server id", server)?)
            .map_err(|_| error(format!("'{entry}': server id out of range")))?,
        seq: number("sequence number", seq)?,
    })
}

/// GTIDs as MariaDB lists them, comma-separated (for messages such as the ones
/// [`GtidPos::missing`] leads to).
pub fn list(gtids: &[Gtid]) -> String {
    gtids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for g in self.0.values() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Inputs the fuzz target `gtid_text` found or reproduces (fuzz/artifacts-found/): the
    /// arithmetic saturates instead of overflowing (a panic in debug builds, a wrong count or
    /// distance in release builds).
    #[test]
    fn sequence_numbers_at_the_top_of_their_range_do_not_overflow() {
        let top = super::BinlogState::parse("0-4294967295-18446744073709551615").expect("parses");
        assert!(super::errant(&top, &top).is_empty());

        let empty = super::GtidPos::parse("").expect("parses");
        let far = super::GtidPos::parse("0-1-18446744073709551615,1-1-18446744073709551615")
            .expect("parses");
        assert_eq!(empty.behind(&far), u64::MAX);

        let report = super::ErrantReport::from_message(
            "ERROR: Errant transactions not on the active master db1: 1 (0-1-5..0-1-18446744073709551615)",
        );
        if let Some(report) = report {
            let _ = super::errant_message("db1", &report.errant);
        }
        let wide = super::Errant(vec![
            super::ErrantRange {
                domain: 0,
                server: 1,
                first: Some(5),
                last: u64::MAX,
            },
            super::ErrantRange {
                domain: 1,
                server: 1,
                first: Some(0),
                last: u64::MAX,
            },
        ]);
        assert_eq!(wide.count().n, u64::MAX);
    }

    use super::*;
    use proptest::prelude::*;

    fn pos(s: &str) -> GtidPos {
        GtidPos::parse(s).unwrap()
    }

    #[test]
    fn a_copys_binlog_state_keeps_older_servers_and_drops_later_writes() {
        let later = BinlogState::parse("0-1-100,0-2-180,1-3-7,0-4-190").unwrap();
        // The copy was taken at 0-2-150 in domain 0; domain 1 is not in the position.
        let at = later.at_position(&pos("0-2-150"));
        assert_eq!(at.to_string(), "0-1-100,0-2-150,1-3-7");
        // A position in a domain the state has not seen yet.
        assert_eq!(
            BinlogState::default()
                .at_position(&pos("2-5-9"))
                .to_string(),
            "2-5-9"
        );
    }

    #[test]
    fn positions_parse_as_mariadb_prints_them() {
        assert_eq!(pos("0-1-100").to_string(), "0-1-100");
        assert_eq!(pos("1-2-5, 0-1-100\n").to_string(), "0-1-100,1-2-5");
        assert!(pos("").is_empty());
        for bad in [
            "0-1",
            "0-1-x",
            "a-1-2",
            "0-1-2-3",
            "0-1-2,0-2-3",
            "4294967296-1-1",
        ] {
            let e = GtidPos::parse(bad).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn covering_is_per_domain_by_sequence_number() {
        let old_writer = pos("0-1-100,1-1-7");
        assert!(
            pos("0-2-100,1-1-7").covers(&old_writer),
            "server ids do not matter"
        );
        assert!(pos("0-1-101,1-1-9,2-3-1").covers(&old_writer));
        assert_eq!(
            pos("0-1-99,1-1-7").missing(&old_writer),
            [Gtid {
                domain: 0,
                server: 1,
                seq: 100
            }]
        );
        assert_eq!(
            pos("0-1-100").missing(&old_writer).len(),
            1,
            "domain 1 lacking"
        );
        assert_eq!(
            list(&pos("0-1-99,1-1-6").missing(&old_writer)),
            "0-1-100,1-1-7"
        );
        assert!(pos("0-1-5").covers(&GtidPos::default()));
    }

    #[test]
    fn how_far_behind_sums_the_missing_sequence_numbers_of_every_domain() {
        let new_writer = pos("0-1-100,1-2-7");
        assert_eq!(new_writer.behind(&pos("0-1-100,1-2-7")), 0);
        assert_eq!(
            new_writer.behind(&pos("0-1-90,1-2-3")),
            0,
            "behind it, not ahead"
        );
        assert_eq!(new_writer.behind(&pos("0-1-103")), 3);
        assert_eq!(
            new_writer.behind(&pos("0-3-102,1-2-8")),
            3,
            "server ids do not matter"
        );
        assert_eq!(
            new_writer.behind(&pos("2-1-4")),
            4,
            "a domain it lacks counts whole"
        );
    }

    #[test]
    fn merging_keeps_the_later_of_each_domain() {
        // A replica's binlog has what it wrote itself; its slave position what it applied.
        let binlog = pos("0-2-50,1-2-3");
        let slave = pos("0-1-120");
        assert_eq!(binlog.merge(&slave).to_string(), "0-1-120,1-2-3");
    }

    fn state(s: &str) -> BinlogState {
        BinlogState::parse(s).unwrap()
    }

    #[test]
    fn an_old_writers_last_writes_are_errant_on_return() {
        // db2 (server 2) wrote 0-2-101..105 that never reached db1; db1 then wrote on.
        let returning = state("0-1-100,0-2-105");
        let writer = state("0-1-140,0-2-100");
        let e = errant(&returning, &writer);
        assert_eq!(e.to_string(), "0-2-101..0-2-105");
        assert_eq!(e.count().to_string(), "5");
        assert!(errant(&writer, &writer).is_empty());
        assert!(
            errant(&state("0-1-120,0-2-100"), &writer).is_empty(),
            "a host behind the writer is not errant"
        );
        assert!(
            errant(&BinlogState::default(), &writer).is_empty(),
            "no binary log, nothing errant"
        );
    }

    #[test]
    fn a_server_the_writer_never_heard_of_gives_a_lower_bound() {
        // Someone wrote on slave db3 (server 3) directly, in domain 0 and in a domain of its own.
        let slave = state("0-1-140,0-3-141,7-3-2");
        let writer = state("0-1-150,0-2-100");
        let e = errant(&slave, &writer);
        assert_eq!(e.to_string(), "up to 0-3-141,up to 7-3-2");
        assert_eq!(e.count().to_string(), "at least 2");
        let one = errant(&state("0-2-101"), &writer);
        assert_eq!(one.to_string(), "0-2-101");
        assert_eq!(one.count(), ErrantCount { n: 1, exact: true });
    }

    #[test]
    fn the_check_message_names_writer_count_and_set_and_reads_back() {
        let e = errant(&state("0-2-105,0-3-9"), &state("0-2-100"));
        let message = errant_message("db1", &e);
        assert_eq!(
            message,
            "ERROR: Errant transactions not on the active master db1: at least 6 (0-2-101..0-2-105,up to 0-3-9)"
        );
        let report = ErrantReport::from_message(&message).unwrap();
        assert_eq!(report.writer, "db1");
        assert_eq!(report.errant, e);
        for other in [
            "ERROR: Replication is broken",
            "OK",
            "ERROR: Errant transactions not on the active master db1: 5 (garbage)",
            "ERROR: Errant transactions not on the active master db1: 5 (0-2-9..0-2-3)",
            "ERROR: Errant transactions not on the active master db1: 5 (0-2-1..0-3-3)",
        ] {
            assert_eq!(ErrantReport::from_message(other), None, "{other}");
        }
    }

    #[test]
    fn binlog_states_parse_with_several_servers_per_domain() {
        assert_eq!(state("0-1-5, 0-2-7").0.len(), 2);
        assert!(BinlogState::parse("0-1-5,0-1-6").is_err());
        assert!(BinlogState::parse("0-1").is_err());
    }

    proptest! {
        #[test]
        fn errant_messages_read_back(entries in proptest::collection::btree_map((0u32..3, 0u32..4), (proptest::option::of(0u64..50), 0u64..50), 1..5)) {
            let e = Errant(entries.into_iter().map(|((domain, server), (first, extra))| ErrantRange {
                domain, server, first, last: first.unwrap_or(0) + extra,
            }).collect());
            let report = ErrantReport::from_message(&errant_message("db1", &e)).unwrap();
            prop_assert_eq!(report.errant, e);
        }
    }

    proptest! {
        #[test]
        fn a_printed_position_parses_back(entries in proptest::collection::btree_map(0u32..5, (0u32..4, 0u64..1_000_000), 0..5)) {
            let p = GtidPos(entries.into_iter().map(|(d, (s, n))| (d, Gtid { domain: d, server: s, seq: n })).collect());
            prop_assert_eq!(GtidPos::parse(&p.to_string()).unwrap(), p.clone());
            prop_assert!(p.covers(&p));
            prop_assert!(p.merge(&GtidPos::default()) == p);
        }
    }
}
