//! Helpers shared by the fuzz targets in `fuzz_targets/` (see `docs/fuzzing.md`).
//!
//! - [`CountingAlloc`] is the global allocator of every target: it counts live heap bytes so
//!   that a target can check how much a decoder allocates ([`peak_during`]).
//! - [`codec_round_trip`] and [`json_round_trip`] decode one type from the fuzzer's bytes and,
//!   when that succeeds, check that the value survives encode → decode unchanged.
//! - [`seed_topology`] is the four-host cluster of the seed document, for running commands.
//!
//! In this crate a panic is the report: every `assert!` and `panic!` below states an invariant
//! of the project's decoders, and a violation is a finding.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use mmm_core::{HostMode, HostName, HostSpec, RoleMode, RoleName, RoleSpec, Settings, Topology};
use mmm_raft::codec;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Live heap bytes allocated through Rust's allocator.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The highest value `LIVE` reached since the last [`peak_during`] started.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes and their peak.
pub struct CountingAlloc;

impl CountingAlloc {
    fn grew(by: usize) {
        let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }

    fn shrank(by: usize) {
        LIVE.fetch_sub(by, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                Self::grew(new_size - layout.size());
            } else {
                Self::shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result and the most heap it held at once beyond what was live
/// before it started, in bytes.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = f();
    let peak = PEAK.load(Ordering::Relaxed);
    (result, peak.saturating_sub(before))
}

/// Decodes `data` as a `T` with `mmm_raft::codec::decode`, as the Raft server, client and
/// store do. Checks that decoding allocates at most `codec::MAX_ENCODED_LEN` bytes and that the
/// error, if any, displays. For a value that decodes, checks the round trip: it encodes, the
/// encoding decodes, and that second value encodes to the same bytes. Returns both values.
pub fn codec_round_trip<T>(what: &'static str, data: &[u8]) -> Option<(T, T)>
where
    T: Serialize + DeserializeOwned + Debug,
{
    let (decoded, peak) = peak_during(|| codec::decode::<T>(what, data));
    assert!(
        peak <= codec::MAX_ENCODED_LEN,
        "decoding a {what} from {} bytes held {peak} bytes of heap at once, more than codec::MAX_ENCODED_LEN ({})",
        data.len(),
        codec::MAX_ENCODED_LEN
    );
    let first = match decoded {
        Ok(v) => v,
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(what),
                "the error does not name the {what}: {message}"
            );
            return None;
        }
    };
    let bytes = codec::encode(what, &first)
        .unwrap_or_else(|e| panic!("a decoded {what} does not encode: {e}\n{first:?}"));
    let second: T = codec::decode(what, &bytes)
        .unwrap_or_else(|e| panic!("a re-encoded {what} does not decode: {e}\n{first:?}"));
    let again = codec::encode(what, &second)
        .unwrap_or_else(|e| panic!("a twice-decoded {what} does not encode: {e}\n{second:?}"));
    assert_eq!(
        bytes, again,
        "{what}: encode → decode → encode changed the bytes\n{first:?}\n{second:?}"
    );
    Some((first, second))
}

/// [`codec_round_trip`], and the two values are equal.
pub fn codec_round_trip_eq<T>(what: &'static str, data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug + PartialEq,
{
    let (first, second) = codec_round_trip::<T>(what, data)?;
    assert_eq!(
        first, second,
        "{what}: decode → encode → decode changed the value"
    );
    Some(first)
}

/// Decodes `data` as a `T` with `serde_json::from_slice`, as axum's `Json` extractor (server)
/// and reqwest's `Response::json` (client) do. For a value that decodes, checks that it
/// serializes, that the JSON decodes again, and that the second value serializes to the same
/// JSON. Returns both values.
pub fn json_round_trip<T>(data: &[u8]) -> Option<(T, T)>
where
    T: Serialize + DeserializeOwned + Debug,
{
    let name = std::any::type_name::<T>();
    let first: T = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    let json = serde_json::to_vec(&first)
        .unwrap_or_else(|e| panic!("a decoded {name} does not serialize: {e}\n{first:?}"));
    let second: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "a re-serialized {name} does not decode: {e}\n{first:?}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    let again = serde_json::to_vec(&second)
        .unwrap_or_else(|e| panic!("a twice-decoded {name} does not serialize: {e}\n{second:?}"));
    assert_eq!(
        String::from_utf8_lossy(&json),
        String::from_utf8_lossy(&again),
        "{name}: serialize → decode → serialize changed the JSON"
    );
    Some((first, second))
}

/// [`json_round_trip`], and the two values are equal.
pub fn json_round_trip_eq<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug + PartialEq,
{
    let (first, second) = json_round_trip::<T>(data)?;
    assert_eq!(
        first,
        second,
        "{}: decode → serialize → decode changed the value",
        std::any::type_name::<T>()
    );
    Some(first)
}

/// The seed document's cluster: db1 and db2 are masters (peers) that can take `writer`
/// (10.0.0.100); db3 and db4 are slaves; all four can take `reader` (10.0.0.101-104). The same
/// as `mmm_core`'s test fixture, which is not public.
pub fn seed_topology() -> Topology {
    let host = |n: u8, mode: HostMode, peer: Option<&str>| HostSpec {
        ip: IpAddr::from([10, 0, 0, n]),
        mode,
        peer: peer.map(HostName::from),
    };
    let hosts = BTreeMap::from([
        (
            HostName::from("db1"),
            host(1, HostMode::Master, Some("db2")),
        ),
        (
            HostName::from("db2"),
            host(2, HostMode::Master, Some("db1")),
        ),
        (HostName::from("db3"), host(3, HostMode::Slave, None)),
        (HostName::from("db4"), host(4, HostMode::Slave, None)),
    ]);
    let all: Vec<HostName> = hosts.keys().cloned().collect();
    let roles = BTreeMap::from([
        (
            RoleName::from("writer"),
            RoleSpec {
                mode: RoleMode::Exclusive,
                hosts: vec![HostName::from("db1"), HostName::from("db2")],
                ips: vec![IpAddr::from([10, 0, 0, 100])],
                prefer: None,
            },
        ),
        (
            RoleName::from("reader"),
            RoleSpec {
                mode: RoleMode::Balanced,
                hosts: all,
                ips: (101..=104).map(|n| IpAddr::from([10, 0, 0, n])).collect(),
                prefer: None,
            },
        ),
    ]);
    Topology {
        hosts,
        roles,
        active_master_role: RoleName::from("writer"),
        settings: Settings::default(),
    }
}

/// Splits `data` at the first `sep` byte: the part before and, when `sep` occurs, the part
/// after it.
pub fn split_once(data: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    }
}

/// [`json_round_trip`] for a type with one `f64` field, reached by `float`: the two values
/// are equal once that field is, and the field moved by at most a few ULPs. serde_json, built
/// without its `float_roundtrip` feature (as the project builds it), parses floats with a fast
/// algorithm that can miss the nearest double; that is serde_json's documented trade-off, not
/// a finding. Nor is a float near `f64::MAX` whose printed digits that parser then refuses as
/// out of range.
pub fn json_round_trip_floats<T>(data: &[u8], float: impl Fn(&mut T) -> &mut f64) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug + PartialEq,
{
    let name = std::any::type_name::<T>();
    let mut first: T = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    let json = serde_json::to_vec(&first)
        .unwrap_or_else(|e| panic!("a decoded {name} does not serialize: {e}\n{first:?}"));
    let a = *float(&mut first);
    let mut second: T = match serde_json::from_slice(&json) {
        Ok(v) => v,
        // Near f64::MAX the lossy parser can overflow on the printed digits ("number out of
        // range"): serde_json's limitation, for uptimes no machine reaches.
        Err(e) if e.to_string().starts_with("number out of range") && a.abs() > 1e300 => {
            return Some(first)
        }
        Err(e) => panic!(
            "a re-serialized {name} does not decode: {e}\n{first:?}\n{}",
            String::from_utf8_lossy(&json)
        ),
    };
    let b = *float(&mut second);
    assert!(
        ulps_apart(a, b) <= 4,
        "{name}: the float {a:e} came back as {b:e}"
    );
    *float(&mut second) = a;
    assert_eq!(
        first, second,
        "{name}: decode → serialize → decode changed the value"
    );
    Some(first)
}

/// How many representable doubles lie between `a` and `b` (both finite, same sign or zero).
fn ulps_apart(a: f64, b: f64) -> u64 {
    if a == b {
        return 0;
    }
    if a.is_sign_negative() != b.is_sign_negative() {
        return u64::MAX;
    }
    a.to_bits().abs_diff(b.to_bits())
}
