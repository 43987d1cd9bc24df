//! The loader never panics: on random bytes, on random lines made of config tokens, and on
//! mutations of the valid fixture files (lines deleted, duplicated, swapped, characters
//! inserted). Each case runs the loader for every program and, when it succeeds, the summary.
//!
//! The case count is proptest's default (256 per property) unless `PROPTEST_CASES` says
//! otherwise, e.g. `PROPTEST_CASES=200000 cargo test -p mmm-config --release --test fuzz`.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use mmm_config::{summary, Loader, MemoryFiles, Program};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// The fixture files, by the path they get in memory; read from disk once.
fn fixtures() -> &'static [(String, Vec<u8>)] {
    static FIXTURES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FIXTURES.get_or_init(read_fixtures)
}

fn read_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["seed", "mmm", "group"] {
        for name in [
            "mmm_common.conf",
            "mmm_agent.conf",
            "mmm_mon.conf",
            "mmm_tools.conf",
        ] {
            let path = common::data_dir().join(dir).join(name);
            if let Ok(content) = std::fs::read(&path) {
                files.push((format!("{dir}/{name}"), content));
            }
        }
    }
    files
}

/// Loads `main` for every program from the fixtures plus `replaced`, and renders what loads.
fn run(replaced: &str, content: &[u8], main: &str) {
    let mut memory = MemoryFiles::new();
    for (path, bytes) in fixtures() {
        memory.insert(path, bytes.clone());
    }
    memory.insert(replaced, content.to_vec());
    let loader = Loader::with_search_path(["seed", "etc"]);
    for program in Program::ALL {
        match loader.load_from(&memory, Path::new(main), program) {
            Ok(config) => {
                let text = summary(&config, program);
                assert!(text.starts_with("Configuration for "));
                let _ = config.monitor_group();
            }
            Err(errors) => {
                assert!(!errors.errors().is_empty());
                let _ = errors.to_string();
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Insert(usize, char),
    ReplaceLine(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Mutation::Insert(at, c)),
        (any::<usize>(), token_line()).prop_map(|(at, line)| Mutation::ReplaceLine(at, line)),
        (
            any::<usize>(),
            prop::sample::select(vec!['#', '<', '>', '/', ',', ' ', '\t', '\n', '.', '0'])
        )
            .prop_map(|(at, c)| Mutation::Insert(at, c)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for mutation in mutations {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match mutation {
            Mutation::Delete(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Mutation::Swap(a, b) => lines.swap(a % n, b % n),
            Mutation::Insert(at, c) => {
                let line = &mut lines[at % n];
                let boundaries: Vec<usize> = line
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(line.len()))
                    .collect();
                let position = boundaries[at % boundaries.len()];
                line.insert(position, *c);
            }
            Mutation::ReplaceLine(at, text) => lines[at % n] = text.clone(),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// A line made of config-ish tokens, to reach deeper than random bytes do.
fn token_line() -> impl Strategy<Value = String> {
    let tokens = vec![
        "<host db1>",
        "<host default>",
        "</host>",
        "<role writer>",
        "</role>",
        "<monitor>",
        "</monitor>",
        "<socket/>",
        "<check ping>",
        "<check default>",
        "</check>",
        "<monitor_node mon1>",
        "</monitor_node>",
        "<copy_method scp>",
        "</copy_method>",
        "include mmm_common.conf",
        "include mmm_mon",
        "include seed/mmm_common.conf",
        "ip",
        "10.0.0.1",
        "::1",
        "10.0.0.300",
        "mode",
        "master",
        "slave",
        "exclusive",
        "balanced",
        "peer",
        "db1",
        "db2",
        "hosts",
        "ips",
        "prefer",
        "this",
        "active_master_role",
        "writer",
        "node",
        "mon1",
        "lease",
        "1.5",
        "0.3",
        "clock_drift",
        "0.49",
        "port",
        "65536",
        "9988",
        "check_period",
        "#",
        "# comment",
        ",",
        ", ",
        "pa#ss",
        "type",
        "ssl",
        "incremental",
        "1",
        "yes",
        "ping_ips",
        "election_timeout_min",
        "election_timeout_max",
        "\t",
        "  ",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..6).prop_map(|parts| parts.join(" "))
}

fn config() -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES. Failures are saved next to this file
    // (proptest cannot find a lib.rs above an integration test to put them beside).
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_make_the_loader_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        run("fuzz/main.conf", &bytes, "fuzz/main.conf");
    }

    #[test]
    fn random_token_lines_never_make_the_loader_panic(lines in prop::collection::vec(token_line(), 0..60)) {
        let text = lines.join("\n");
        run("fuzz/main.conf", text.as_bytes(), "fuzz/main.conf");
    }

    #[test]
    fn mutated_valid_files_never_make_the_loader_panic(
        which in 0usize..8,
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let targets = [
            ("seed/mmm_common.conf", "seed/mmm_mon.conf"),
            ("seed/mmm_mon.conf", "seed/mmm_mon.conf"),
            ("seed/mmm_agent.conf", "seed/mmm_agent.conf"),
            ("mmm/mmm_common.conf", "mmm/mmm_agent.conf"),
            ("mmm/mmm_mon.conf", "mmm/mmm_mon.conf"),
            ("mmm/mmm_tools.conf", "mmm/mmm_tools.conf"),
            ("group/mmm_mon.conf", "group/mmm_mon.conf"),
            ("group/mmm_common.conf", "group/mmm_mon.conf"),
        ];
        let (target, main) = targets[which % targets.len()];
        let original = fixtures()
            .iter()
            .find(|(path, _)| path == target)
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
            .unwrap_or_default();
        prop_assert!(!original.is_empty());
        let mutated = apply(&original, &mutations);
        run(target, mutated.as_bytes(), main);
    }
}
