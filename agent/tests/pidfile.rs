//! `PidFile` on real processes: a live process is alive; once killed it is gone, as a zombie
//! not yet reaped and after it was reaped; a removed pid file means a stopped server; and a
//! file that never named a live process here (another pid namespace, a wrong path) never
//! makes a server look dead.

use std::process::{Child, Command};

use mmm_agent::pidfile::{PidFile, PidState};

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawning sleep (coreutils)")
}

fn write_pid(path: &std::path::Path, pid: u32) {
    std::fs::write(path, format!("{pid}\n")).expect("writing the pid file");
}

#[test]
fn a_killed_process_is_gone_as_a_zombie_and_after_it_is_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mysqld.pid");
    let mut child = sleeper();
    write_pid(&path, child.id());
    let watch = PidFile::new(&path);
    assert_eq!(watch.check(), PidState::Alive(child.id()));

    child.kill().expect("SIGKILL");
    // Not reaped: /proc still lists it, as a zombie.
    let mut waited = 0;
    while !matches!(watch.check(), PidState::Gone(_)) {
        assert!(
            waited < 200,
            "a zombie still counts as alive: {:?}",
            watch.check()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        waited += 1;
    }
    assert!(
        std::path::Path::new(&format!("/proc/{}", child.id())).exists(),
        "the test needs the zombie still listed in /proc"
    );
    child.wait().expect("reaping");
    match watch.check() {
        PidState::Gone(reason) => assert!(
            reason.contains(&format!(
                "process {} (from {}) is gone",
                child.id(),
                path.display()
            )),
            "{reason}"
        ),
        other => panic!("reaped process: {other:?}"),
    }
}

#[test]
fn a_removed_pid_file_is_a_stopped_server_once_the_file_was_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mysqld.pid");
    let mut child = sleeper();
    write_pid(&path, child.id());
    let watch = PidFile::new(&path);
    assert_eq!(watch.check(), PidState::Alive(child.id()));
    std::fs::remove_file(&path).unwrap();
    match watch.check() {
        PidState::Gone(reason) => assert!(reason.contains("was removed"), "{reason}"),
        other => panic!("removed pid file: {other:?}"),
    }
    // A restarted server writes a new file: alive again.
    let mut second = sleeper();
    write_pid(&path, second.id());
    assert_eq!(watch.check(), PidState::Alive(second.id()));
    for c in [&mut child, &mut second] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn a_file_that_never_named_a_live_process_proves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mysqld.pid");
    let watch = PidFile::new(&path);
    assert!(
        matches!(watch.check(), PidState::Unknown(ref r) if r.contains("No such file")),
        "missing file: {:?}",
        watch.check()
    );

    // A pid from elsewhere (here: a process that ended): not trusted, so not "gone".
    let mut child = sleeper();
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    write_pid(&path, pid);
    assert!(
        matches!(watch.check(), PidState::Unknown(ref r) if r.contains("does not run here")),
        "{:?}",
        watch.check()
    );

    std::fs::write(&path, "mysqld\n").unwrap();
    assert!(
        matches!(watch.check(), PidState::Unknown(ref r) if r.contains("not a process id")),
        "{:?}",
        watch.check()
    );
}
