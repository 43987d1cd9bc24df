//! The simulation replays a seed exactly, and a few seeds run clean. The long runs are
//! `mmm_sim --seeds N` (test.sh runs 2000 of them in release).

use mmm_sim::run::{run, Plan};

#[test]
fn a_seed_replays_byte_for_byte() {
    let first = run(&Plan::new(3)).unwrap_or_else(|v| panic!("{}\n{}", v.trace, v.what));
    let again = run(&Plan::new(3)).unwrap_or_else(|v| panic!("{}\n{}", v.trace, v.what));
    assert!(
        first.trace.lines().count() > 20,
        "the run did something: {}",
        first.trace
    );
    assert_eq!(first.trace, again.trace, "the same seed gave another run");
    assert_eq!(
        (first.acked, first.failed),
        (again.acked, again.failed),
        "the same writes"
    );
}

#[test]
fn different_seeds_give_different_runs() {
    let a = run(&Plan::new(5)).unwrap_or_else(|v| panic!("{}\n{}", v.trace, v.what));
    let b = run(&Plan::new(6)).unwrap_or_else(|v| panic!("{}\n{}", v.trace, v.what));
    assert_ne!(a.trace, b.trace);
}
