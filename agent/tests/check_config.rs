//! `mmm_agentd --check-config`: the seed document's MMM files, as an MMM user has them, are
//! refused with what to add (the agent must know the monitor replicas to ask for its lease,
//! and needs the agents' token); with a monitor node and the token added they are summarised
//! without passwords and exit 0; world-readable files are refused as MMM did.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn seed_dir(mode: u32, monitor_node: bool) -> tempfile::TempDir {
    seed_dir_with(mode, monitor_node, monitor_node)
}

fn seed_dir_with(mode: u32, monitor_node: bool, token: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/tests/data/seed");
    for f in ["mmm_common.conf", "mmm_agent.conf"] {
        let to = dir.path().join(f);
        std::fs::copy(format!("{seed}/{f}"), &to).expect("copy seed file");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    if monitor_node {
        append(
            &dir,
            "<monitor_node mon1>\n    ip 192.168.137.20\n</monitor_node>",
        );
    }
    if token {
        let (path, _) = mmm_testkit::pki::token(dir.path(), "agent").expect("token file");
        append(
            &dir,
            &format!(
                "<socket>\n    agent_secret_file {}\n</socket>",
                path.display()
            ),
        );
    }
    dir
}

/// Appends `text` as lines to the copied mmm_common.conf.
fn append(dir: &tempfile::TempDir, text: &str) {
    let mut common = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("mmm_common.conf"))
        .expect("open common");
    writeln!(common, "{text}").expect("append");
}

fn check(dir: &tempfile::TempDir) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmm_agentd"))
        .arg("--config")
        .arg(dir.path().join("mmm_agent.conf"))
        .arg("--check-config")
        .output()
        .expect("run mmm_agentd")
}

#[test]
fn plain_mmm_files_are_refused_with_what_to_add() {
    let out = check(&seed_dir(0o600, false));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mmm_agent.conf: no monitor replica is configured"),
        "{err}"
    );
    assert!(err.contains("<monitor_node NAME>"), "{err}");
}

#[test]
fn with_a_monitor_node_the_files_are_summarised_without_passwords() {
    let out = check(&seed_dir(0o600, true));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("Configuration for mmm_agentd\n"), "{text}");
    assert!(!text.contains("pwd123"), "a password was printed:\n{text}");
}

#[test]
fn world_readable_files_are_refused() {
    let dir = seed_dir(0o644, true);
    let out = check(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is world readable!"), "{err}");
}

#[test]
fn without_the_agents_token_the_agent_says_how_to_make_one() {
    let out = check(&seed_dir_with(0o600, true, false));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("<socket> agent_secret_file is not set"),
        "{err}"
    );
    assert!(err.contains("chmod 600"), "{err}");
}
