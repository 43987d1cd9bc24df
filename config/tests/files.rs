//! Files: the include search (own directory, then the search path; `.conf` appended; first
//! readable wins), include cycles, missing includes, MMM's refusal of world-writable and
//! world-readable files (reference 1.12, `Config.pm:130-132`), and locating a program's file.

mod common;

use common::{load_memory, messages, ok, Fixture, COMMON, MONITOR};
use mmm_config::{config_file_name, Program};

#[test]
fn include_is_found_in_the_including_files_directory_first() {
    let fixture = Fixture::new();
    fixture.write("conf/mmm_common.conf", COMMON);
    fixture.write("etc/mmm_common.conf", "this is not a valid line <\n");
    fixture.write(
        "conf/mmm_mon.conf",
        &format!("include mmm_common.conf\n{MONITOR}"),
    );
    let config = ok(fixture.load("conf/mmm_mon.conf", Program::Monitor));
    assert_eq!(
        config.files,
        vec![
            fixture.path("conf/mmm_mon.conf"),
            fixture.path("conf/mmm_common.conf")
        ]
    );
}

#[test]
fn include_falls_back_to_the_search_path_and_appends_conf() {
    let fixture = Fixture::new();
    fixture.write("etc/mmm_common.conf", COMMON);
    fixture.write(
        "conf/mmm_mon.conf",
        &format!("include mmm_common\n{MONITOR}"),
    );
    let config = ok(fixture.load("conf/mmm_mon.conf", Program::Monitor));
    assert_eq!(
        config.files,
        vec![
            fixture.path("conf/mmm_mon.conf"),
            fixture.path("etc/mmm_common.conf")
        ]
    );
}

#[test]
fn include_with_an_absolute_path_is_read_from_there() {
    let fixture = Fixture::new();
    let common = fixture.write("elsewhere/shared.conf", COMMON);
    fixture.write(
        "mmm_mon.conf",
        &format!("include {}\n{MONITOR}", common.display()),
    );
    let config = ok(fixture.load("mmm_mon.conf", Program::Monitor));
    assert_eq!(config.files.last(), Some(&common));
}

#[test]
fn missing_include_lists_every_place_tried() {
    let fixture = Fixture::new();
    let main = fixture.write(
        "mmm_mon.conf",
        &format!("include mmm_comon.conf\n{MONITOR}"),
    );
    assert_eq!(
        messages(fixture.load("mmm_mon.conf", Program::Monitor)),
        vec![format!(
            "{}:1: include 'mmm_comon.conf': no readable file found (tried {}, {})",
            main.display(),
            fixture.path("mmm_comon.conf").display(),
            fixture.path("etc/mmm_comon.conf").display()
        )]
    );
}

#[test]
fn missing_include_is_reported_without_its_consequences() {
    // Without the include every host and role would be "missing"; only the cause is shown.
    let errors = messages(load_memory(
        &[(
            "mmm_mon.conf",
            &format!("include mmm_common.conf\n{MONITOR}"),
        )],
        "mmm_mon.conf",
        Program::Monitor,
    ));
    assert_eq!(
        errors,
        vec!["mmm_mon.conf:1: include 'mmm_common.conf': no readable file found (tried mmm_common.conf)"]
    );
}

#[test]
fn include_cycle_names_the_chain() {
    let errors = messages(load_memory(
        &[
            ("a.conf", "include b.conf\n"),
            ("b.conf", "debug 1\ninclude c\n"),
            ("c.conf", "include a.conf\n"),
        ],
        "a.conf",
        Program::Control,
    ));
    assert_eq!(
        errors,
        vec!["c.conf:1: include cycle: a.conf -> b.conf -> c.conf -> a.conf"]
    );
}

#[test]
fn file_including_itself_is_a_cycle() {
    let fixture = Fixture::new();
    let main = fixture.write("mmm_mon.conf", "include mmm_mon.conf\n");
    let shown = main.display();
    assert_eq!(
        messages(fixture.load("mmm_mon.conf", Program::Control)),
        vec![format!("{shown}:1: include cycle: {shown} -> {shown}")]
    );
}

#[test]
fn the_same_file_may_be_included_twice_without_a_cycle() {
    let mon = format!("include mmm_common.conf\ninclude mmm_common.conf\n{MONITOR}");
    ok(load_memory(
        &[("mmm_mon.conf", &mon), ("mmm_common.conf", COMMON)],
        "mmm_mon.conf",
        Program::Monitor,
    ));
}

#[test]
fn world_readable_main_file_is_refused_with_mmms_message() {
    let fixture = Fixture::new();
    let main = fixture.write_with_mode(
        "mmm_mon.conf",
        format!("{COMMON}{MONITOR}").as_bytes(),
        0o644,
    );
    assert_eq!(
        messages(fixture.load("mmm_mon.conf", Program::Monitor)),
        vec![format!(
            "Configuration file {} is world readable!",
            main.display()
        )]
    );
}

#[test]
fn world_writable_file_is_refused_before_world_readable() {
    let fixture = Fixture::new();
    let main = fixture.write_with_mode(
        "mmm_mon.conf",
        format!("{COMMON}{MONITOR}").as_bytes(),
        0o666,
    );
    assert_eq!(
        messages(fixture.load("mmm_mon.conf", Program::Monitor)),
        vec![format!(
            "Configuration file {} is world writable!",
            main.display()
        )]
    );
    let fixture = Fixture::new();
    let main = fixture.write_with_mode(
        "mmm_mon.conf",
        format!("{COMMON}{MONITOR}").as_bytes(),
        0o602,
    );
    assert_eq!(
        messages(fixture.load("mmm_mon.conf", Program::Monitor)),
        vec![format!(
            "Configuration file {} is world writable!",
            main.display()
        )]
    );
}

#[test]
fn world_readable_included_file_is_refused() {
    let fixture = Fixture::new();
    let common = fixture.write_with_mode("mmm_common.conf", COMMON.as_bytes(), 0o604);
    fixture.write(
        "mmm_mon.conf",
        &format!("include mmm_common.conf\n{MONITOR}"),
    );
    assert_eq!(
        messages(fixture.load("mmm_mon.conf", Program::Monitor)),
        vec![format!(
            "Configuration file {} is world readable!",
            common.display()
        )]
    );
}

#[test]
fn world_writable_included_file_is_refused() {
    let fixture = Fixture::new();
    let common = fixture.write_with_mode("mmm_common.conf", COMMON.as_bytes(), 0o662);
    fixture.write(
        "mmm_mon.conf",
        &format!("include mmm_common.conf\n{MONITOR}"),
    );
    assert_eq!(
        messages(fixture.load("mmm_mon.conf", Program::Monitor)),
        vec![format!(
            "Configuration file {} is world writable!",
            common.display()
        )]
    );
}

#[test]
fn group_readable_files_are_accepted_as_in_mmm() {
    let fixture = Fixture::new();
    fixture.write_with_mode(
        "mmm_mon.conf",
        format!("{COMMON}{MONITOR}").as_bytes(),
        0o640,
    );
    ok(fixture.load("mmm_mon.conf", Program::Monitor));
}

#[test]
fn missing_main_file_is_reported() {
    let fixture = Fixture::new();
    let path = fixture.path("mmm_mon.conf");
    let errors = messages(fixture.load("mmm_mon.conf", Program::Monitor));
    assert_eq!(errors.len(), 1);
    assert!(
        errors
            .first()
            .is_some_and(|e| e.starts_with(&format!("{}: cannot read the file: ", path.display()))),
        "{errors:?}"
    );
}

#[test]
fn locate_finds_a_programs_file_in_the_search_path() {
    let fixture = Fixture::new();
    fixture.write("etc/mmm_mon_prod.conf", "debug 0\n");
    let loader = fixture.loader();
    let name = config_file_name(Program::Control, Some("prod")).unwrap_or_default();
    assert_eq!(
        loader.locate(&name),
        Some(fixture.path("etc/mmm_mon_prod.conf"))
    );
    assert_eq!(
        loader.locate("mmm_mon_prod"),
        Some(fixture.path("etc/mmm_mon_prod.conf"))
    );
    assert_eq!(loader.locate("mmm_agent"), None);
}

#[test]
fn includes_nested_too_deep_are_refused() {
    let names: Vec<String> = (0..40).map(|i| format!("f{i}.conf")).collect();
    let contents: Vec<String> = (0..40)
        .map(|i| format!("include f{}.conf\n", i + 1))
        .collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&contents)
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        messages(load_memory(&files, "f0.conf", Program::Control)),
        vec!["f31.conf:1: includes are nested more than 32 files deep"]
    );
}
