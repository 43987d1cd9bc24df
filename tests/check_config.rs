//! `mmm_mond --check-config` prints what the configuration means and exits 0, or prints the
//! errors and exits 2; it refuses world-readable files as MMM did, and a configuration without
//! the secret files the daemon needs to start.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn seed_dir(mode: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tests/data/seed");
    for f in ["mmm_common.conf", "mmm_mon.conf"] {
        let to = dir.path().join(f);
        std::fs::copy(format!("{seed}/{f}"), &to).expect("copy seed file");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    dir
}

fn check(dir: &tempfile::TempDir) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mmm_mond"))
        .arg("--config")
        .arg(dir.path().join("mmm_mon.conf"))
        .arg("--check-config")
        .output()
        .expect("run mmm_mond")
}

/// Adds the `<socket>` secret files to the copied mmm_common.conf.
fn with_secrets(dir: &tempfile::TempDir) {
    let mut lines = String::from("<socket>\n");
    for (key, name) in [
        ("api_secret_file", "api"),
        ("raft_secret_file", "raft"),
        ("agent_secret_file", "agent"),
    ] {
        let (path, _) = mmm_testkit::pki::token(dir.path(), name).expect("token file");
        lines.push_str(&format!("    {key} {}\n", path.display()));
    }
    lines.push_str("</socket>\n");
    let common = dir.path().join("mmm_common.conf");
    let text = std::fs::read_to_string(&common).expect("read") + &lines;
    std::fs::write(&common, text).expect("write");
}

#[test]
fn check_config_summarises_the_seed_files_and_exits_0() {
    let dir = seed_dir(0o600);
    with_secrets(&dir);
    let out = check(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("Configuration for mmm_mond\n"), "{text}");
    assert!(text.contains("auto_set_online 0: never"), "{text}");
    assert!(!text.contains("pwd123"), "a password was printed:\n{text}");
}

#[test]
fn check_config_refuses_world_readable_files_and_exits_2() {
    let dir = seed_dir(0o644);
    let out = check(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let path = dir.path().join("mmm_mon.conf");
    assert!(
        err.contains(&format!(
            "Configuration file {} is world readable!",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn check_config_refuses_a_configuration_without_secret_files_and_says_how_to_make_them() {
    let out = check(&seed_dir(0o600));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("<socket> api_secret_file is not set"), "{err}");
    assert!(err.contains("head -c 32 /dev/urandom"), "{err}");
}

#[test]
fn check_config_refuses_a_secret_file_others_can_read() {
    let dir = seed_dir(0o600);
    with_secrets(&dir);
    let agent = dir.path().join("agent.secret");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = check(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "<socket> agent_secret_file: {} is readable or writable by others (mode 0644)",
            agent.display()
        )),
        "{err}"
    );
}
