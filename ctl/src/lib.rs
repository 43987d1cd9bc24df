//! `mmm_control`: MMM 2.2.1's command line client, against any replica of the monitor group.
//!
//! MMM's commands (help, ping, show, checks, set_online, set_offline, mode, set_active,
//! set_manual, set_passive, move_role, set_ip, and anything else) are sent to the monitor as
//! one line, the arguments joined by single spaces, exactly as MMM's client sent them; the
//! monitor answers with MMM's text (`mmm_core::render` and `mmm_core::step`), and we print it
//! followed by a newline, so the output is MMM's byte for byte. Scripts that parse
//! `mmm_control show` or `checks` and test the exit status keep working.
//!
//! What is new: the monitor is a group of replicas, tried in order until one answers
//! ([`client`]); `status` shows every replica's view ([`status`]); `--json` prints JSON;
//! `--verbose` says who answered; completions and a man page come from the clap definitions
//! ([`cli`]).
//!
//! Exit status (MMM's where MMM had one): 0 for an OK reply; 1 for an ERROR reply
//! ([`mmm_core::api::reply_is_error`]), an unreachable group or a group without a leader; 2 for
//! bad options or a bad configuration; 255 when no command is given, as MMM's `die` did (we
//! print MMM's sentence without Perl's " at FILE line 34.").
//!
//! `history` reads the replicated failover history from the state any replica serves.
//! `switchover <host>` sends the command, then follows that history until the new writer has
//! confirmed the role, and says how long the move took. `rejoin <host> [--reclone]` brings
//! back a host kept out of rotation through its agent ([`rejoin`]). MMM's tools `mmm_backup`,
//! `mmm_restore` and `mmm_clone` are the binaries of `src/bin/` over [`tools`].
//!
//! Tests: unit tests beside the code; `ctl/tests/control.rs` runs the binary against in-test
//! monitor replicas that answer with the real `mmm_core`.

pub mod address;
pub mod cli;
pub mod client;
pub mod rejoin;
pub mod replicas;
pub mod status;
pub mod tools;

use std::ffi::OsString;
use std::io::{self, Write};

use clap::Parser;
use mmm_config::{Config, Loader, Program};
use mmm_core::api::{reply_is_error, CommandReply, CommandRequest, StateReply, STATE_PATH};
use mmm_core::Command;
use mmm_transport::{Keys, Transport};

use crate::cli::Cli;
use crate::client::{Client, Outcome, Request};
use crate::replicas::Replica;

/// The reply was OK, or the requested output was printed.
pub const EXIT_OK: u8 = 0;
/// The reply was an error, or the monitor group could not answer.
pub const EXIT_ERROR: u8 = 1;
/// Bad options or a bad configuration.
pub const EXIT_USAGE: u8 = 2;
/// No command was given (MMM's `die`).
pub const EXIT_NO_COMMAND: u8 = 255;

/// MMM's message when no command is given.
pub const NO_COMMAND: &str = "See 'mmm_control help' for usage information";

/// MMM's message when the monitor cannot be reached.
pub const CANNOT_CONNECT: &str = "ERROR: Can't connect to monitor daemon!";

/// The first line printed when replicas answer but none knows a leader.
pub const NO_LEADER: &str = "ERROR: The monitor group has no leader.";

/// Runs mmm_control with `args` (the program name first), writing to `out` and `err`, and
/// returns the exit status. Only failing to write is an error.
pub fn run(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<u8> {
    let (cluster, rest) = cli::split_cluster(args);
    let cli = match Cli::try_parse_from(rest) {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e, out, err),
    };
    if let Some(shell) = cli.completions {
        clap_complete::generate(shell, &mut cli::command(), "mmm_control", out);
        return Ok(EXIT_OK);
    }
    if cli.man {
        clap_mangen::Man::new(cli::command()).render(out)?;
        return Ok(EXIT_OK);
    }
    if let Some(first) = cli
        .words
        .first()
        .filter(|w| w.len() > 1 && w.starts_with('-'))
    {
        let e = cli::command().error(
            clap::error::ErrorKind::UnknownArgument,
            format!("unexpected argument '{first}' found"),
        );
        return clap_error(&e, out, err);
    }
    if cli.check_config {
        return check_config(&cli, cluster.as_deref(), out, err);
    }
    if cli.words.is_empty() {
        writeln!(err, "{NO_COMMAND}")?;
        return Ok(EXIT_NO_COMMAND);
    }
    let (replicas, config) = match find_replicas(&cli, cluster.as_deref(), err)? {
        Some(found) => found,
        None => return Ok(EXIT_USAGE),
    };
    // Without a configuration (--monitor alone) there is no token: the monitor refuses and
    // says so.
    let transport = match config
        .as_ref()
        .map(|c| Transport::load_for_control(&c.socket))
    {
        None => Transport::new(Keys::default(), None),
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            writeln!(err, "mmm_control: {e}")?;
            return Ok(EXIT_USAGE);
        }
    };
    let client = match Client::new(&transport, cli.timeout) {
        Ok(client) => client,
        Err(e) => {
            writeln!(err, "mmm_control: cannot set up the HTTP client: {e}")?;
            return Ok(EXIT_ERROR);
        }
    };
    match cli.words.first().map(String::as_str) {
        Some(word @ ("status" | "history")) if cli.words.len() > 1 => {
            let e = cli::command().error(
                clap::error::ErrorKind::TooManyValues,
                format!("'{word}' takes no arguments"),
            );
            return clap_error(&e, out, err);
        }
        Some("status") => return group_status(&client, &replicas, cli.json, out),
        Some("history") => return history(&cli, &client, &replicas, out, err),
        Some("switchover") if cli.words.len() == 2 => {
            return switchover(&cli, &client, &replicas, out, err)
        }
        Some("rejoin") => return rejoin(&cli, cluster.as_deref(), &client, &replicas, out, err),
        _ => {}
    }
    mmm_command(&cli, &client, &replicas, out, err)
}

/// `mmm_control history`: the writer changes recorded in the replicated state, from any
/// replica, times in local time.
fn history(
    cli: &Cli,
    client: &Client,
    replicas: &[Replica],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let mut notes = Vec::new();
    let code = match read_state(client, replicas, &mut notes, out)? {
        Ok(state) => {
            let entries = &state.history;
            if cli.json {
                serde_json::to_writer_pretty(&mut *out, entries)?;
                writeln!(out)?;
            } else {
                let offset = chrono::Local::now().offset().local_minus_utc();
                write!(
                    out,
                    "{}{}",
                    mmm_core::history::render(entries, i64::from(offset)),
                    mmm_core::history::render_errant(&state.hosts, i64::from(offset))
                )?;
            }
            EXIT_OK
        }
        Err(code) => code,
    };
    print_notes(cli.verbose, notes, err)?;
    Ok(code)
}

/// The replicated state, from any replica; `Err` with the exit status after printing why
/// there is none.
fn read_state(
    client: &Client,
    replicas: &[Replica],
    notes: &mut Vec<String>,
    out: &mut dyn Write,
) -> io::Result<Result<mmm_core::ClusterState, u8>> {
    let outcome: Outcome<StateReply> =
        client.ask(replicas, Request::Get(STATE_PATH), true, &mut |n| {
            notes.push(n)
        });
    match outcome {
        Outcome::Answer { replica, value } => match value.state {
            Some(state) => {
                notes.push(format!(
                    "answered by replica {} (asked {replica})",
                    value.replica
                ));
                Ok(Ok(state))
            }
            None => {
                writeln!(
                    out,
                    "ERROR: replica {} has no cluster state yet (no topology configured)",
                    value.replica
                )?;
                Ok(Err(EXIT_ERROR))
            }
        },
        failure => Ok(Err(group_failure(&failure, out)?)),
    }
}

/// `mmm_control rejoin <host> [--reclone]` (see `rejoin`).
fn rejoin(
    cli: &Cli,
    cluster: Option<&str>,
    client: &Client,
    replicas: &[Replica],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let args = match rejoin::parse(&cli.words) {
        Ok(a) => a,
        Err(e) => {
            let e = cli::command().error(clap::error::ErrorKind::InvalidValue, e);
            return clap_error(&e, out, err);
        }
    };
    let loader = Loader::new();
    let config = match replicas::config_path(&loader, cli.config.as_deref(), cluster)
        .and_then(|path| replicas::load(&loader, &path))
    {
        Ok(c) => c,
        Err(e) => {
            writeln!(
                err,
                "mmm_control: rejoin reaches the host's agent, so it needs the configuration that names it: {e}"
            )?;
            return Ok(EXIT_USAGE);
        }
    };
    let mut notes = Vec::new();
    let state = match read_state(client, replicas, &mut notes, out)? {
        Ok(state) => state,
        Err(code) => return Ok(code),
    };
    print_notes(cli.verbose, notes, err)?;
    match rejoin::plan(&args, &state, &config) {
        Ok(plan) => rejoin::execute(&args.host, &plan, &config, cli.timeout, out),
        Err(e) => {
            writeln!(out, "ERROR: {e}")?;
            Ok(EXIT_ERROR)
        }
    }
}

/// `mmm_control switchover <host>`: the command, then the history followed until `host`
/// confirmed the writer role at a newer epoch (or another change overtook it, or `--wait`
/// ran out).
fn switchover(
    cli: &Cli,
    client: &Client,
    replicas: &[Replica],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let host = cli.words[1].clone();
    let mut notes = Vec::new();
    let before = match read_state(client, replicas, &mut notes, out)? {
        Ok(state) => state.epoch,
        Err(code) => return Ok(code),
    };
    print_notes(cli.verbose, std::mem::take(&mut notes), err)?;
    let code = mmm_command(cli, client, replicas, out, err)?;
    if code != EXIT_OK {
        return Ok(code);
    }
    let started = std::time::Instant::now();
    loop {
        if let Ok(state) = read_state(client, replicas, &mut notes, &mut io::sink())? {
            let newer = state.history.iter().filter(|f| f.epoch > before);
            for f in newer {
                let to = f.to.as_ref().map(|h| h.as_str());
                if to != Some(host.as_str()) {
                    writeln!(
                        out,
                        "ERROR: another writer change overtook the switchover: epoch {} moved the writer to '{}' ({}).",
                        f.epoch.0,
                        to.unwrap_or("nobody"),
                        f.cause
                    )?;
                    return Ok(EXIT_ERROR);
                }
            }
            let done = state
                .history
                .iter()
                .rev()
                .find(|f| f.epoch > before && f.took_ms().is_some());
            if let Some(f) = done {
                if cli.json {
                    serde_json::to_writer_pretty(&mut *out, f)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "OK: '{host}' is the writer at epoch {}: it took writes {} ms after the switchover was decided.",
                        f.epoch.0,
                        f.took_ms().unwrap_or_default()
                    )?;
                }
                return Ok(EXIT_OK);
            }
        }
        if started.elapsed() >= cli.wait {
            writeln!(
                out,
                "ERROR: '{host}' has not confirmed the writer role within {} s; 'mmm_control show' and 'mmm_control history' say where it stands, its agent's log says why.",
                cli.wait.as_secs()
            )?;
            print_notes(cli.verbose, notes, err)?;
            return Ok(EXIT_ERROR);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// With `--verbose`, which replica answered and what was tried, on stderr.
fn print_notes(verbose: bool, notes: Vec<String>, err: &mut dyn Write) -> io::Result<()> {
    if verbose {
        for n in notes {
            writeln!(err, "mmm_control: {n}")?;
        }
    }
    Ok(())
}

/// Prints a clap error (or help, or version) where clap says, and returns clap's status.
fn clap_error(e: &clap::Error, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<u8> {
    let text = e.render().to_string();
    if e.use_stderr() {
        write!(err, "{text}")?;
    } else {
        write!(out, "{text}")?;
    }
    Ok(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE))
}

/// `--check-config`: the summary on stdout and 0, or the errors on stderr and 2.
fn check_config(
    cli: &Cli,
    cluster: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let loader = Loader::new();
    let loaded = replicas::config_path(&loader, cli.config.as_deref(), cluster)
        .and_then(|path| replicas::load(&loader, &path));
    match loaded {
        Ok(config) => {
            write!(out, "{}", mmm_config::summary(&config, Program::Control))?;
            Ok(EXIT_OK)
        }
        Err(e) => {
            writeln!(err, "{e}")?;
            Ok(EXIT_USAGE)
        }
    }
}

/// The replicas to ask, or `None` after saying on stderr why there are none.
/// The replicas to ask, and the configuration when one was read: `--monitor` names the
/// replicas, and its tokens then come from `--config` if given, else from the default file if
/// there is one.
fn find_replicas(
    cli: &Cli,
    cluster: Option<&str>,
    err: &mut dyn Write,
) -> io::Result<Option<(Vec<Replica>, Option<Config>)>> {
    let loader = Loader::new();
    if let Some(list) = &cli.monitor {
        let config = replicas::config_path(&loader, cli.config.as_deref(), cluster)
            .and_then(|path| replicas::load(&loader, &path));
        let config = match config {
            Ok(c) => Some(c),
            Err(e) if cli.config.is_some() => {
                writeln!(err, "mmm_control: {e}")?;
                return Ok(None);
            }
            Err(_) => None,
        };
        return Ok(Some((replicas::from_list(list), config)));
    }
    let found = replicas::config_path(&loader, cli.config.as_deref(), cluster).and_then(|path| {
        let config = replicas::load(&loader, &path)?;
        Ok((replicas::from_config(&config, &path)?, config))
    });
    match found {
        Ok((replicas, config)) => {
            if cli.verbose {
                for warning in &config.warnings {
                    writeln!(err, "mmm_control: {warning}")?;
                }
            }
            Ok(Some((replicas, Some(config))))
        }
        Err(e) => {
            writeln!(err, "mmm_control: {e}")?;
            Ok(None)
        }
    }
}

/// `mmm_control status`.
fn group_status(
    client: &Client,
    replicas: &[Replica],
    json: bool,
    out: &mut dyn Write,
) -> io::Result<u8> {
    let rows = status::collect(client, replicas);
    let verdict = status::verdict(&rows);
    let code = if verdict.majority {
        EXIT_OK
    } else {
        EXIT_ERROR
    };
    if json {
        let report = status::Report {
            replicas: rows,
            verdict,
        };
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", status::table(&rows, &verdict))?;
    }
    Ok(code)
}

/// One of MMM's commands (or anything else the monitor will call invalid).
fn mmm_command(
    cli: &Cli,
    client: &Client,
    replicas: &[Replica],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let line = cli.words.join(" ");
    let command = Command::parse(&line);
    let verbose = cli.verbose;
    let mut notes = Vec::new();
    let mut note = |n: String| notes.push(n);
    let code = if cli.json && matches!(command, Command::Show | Command::Checks { .. }) {
        let outcome: Outcome<serde_json::Value> =
            client.ask(replicas, Request::Get(STATE_PATH), true, &mut note);
        match outcome {
            Outcome::Answer { replica, value } => {
                notes.push(format!("answered by {replica}"));
                serde_json::to_writer_pretty(&mut *out, &value)?;
                writeln!(out)?;
                EXIT_OK
            }
            failure => group_failure(&failure, out)?,
        }
    } else {
        let request = CommandRequest {
            line: line.clone(),
            linearizable: false,
        };
        let outcome: Outcome<CommandReply> = client.ask(
            replicas,
            Request::Command(&request),
            command.is_read_only(),
            &mut note,
        );
        match outcome {
            Outcome::Answer { replica, value } => {
                notes.push(answered(&replica, &value));
                if value.stale {
                    // stdout stays MMM's bytes; the warning goes to stderr.
                    writeln!(
                        err,
                        "mmm_control: warning: no monitor leader confirmed this answer; it is replica {}'s own state (log index {}) and may miss the latest changes",
                        value.replica,
                        value.log_index.map_or_else(|| "-".to_string(), |i| i.to_string())
                    )?;
                }
                if cli.json {
                    serde_json::to_writer_pretty(&mut *out, &value)?;
                    writeln!(out)?;
                } else {
                    // MMM printed the reply, then a newline of its own.
                    writeln!(out, "{}", value.reply)?;
                }
                if reply_is_error(&value.reply) || !value.ok {
                    EXIT_ERROR
                } else {
                    EXIT_OK
                }
            }
            failure => group_failure(&failure, out)?,
        }
    };
    print_notes(verbose, notes, err)?;
    if matches!(command, Command::Invalid(_)) {
        if let Some(option) = misplaced_option(&cli.words) {
            writeln!(
                err,
                "mmm_control: '{option}' after the command was sent to the monitor as part of \
                 it; options go before the command: mmm_control [@CLUSTER] [OPTIONS] COMMAND \
                 [ARGS...]"
            )?;
        }
    }
    Ok(code)
}

/// The `--verbose` line for an answer.
fn answered(replica: &Replica, reply: &CommandReply) -> String {
    format!(
        "answered by replica {} (asked {replica}); leader: {}; log index: {}",
        reply.replica,
        reply.leader.as_deref().unwrap_or("none known"),
        reply
            .log_index
            .map_or_else(|| "unknown".to_string(), |i| i.to_string())
    )
}

/// Prints why the group gave no answer and returns the exit status.
fn group_failure<T>(outcome: &Outcome<T>, out: &mut dyn Write) -> io::Result<u8> {
    match outcome {
        Outcome::Answer { .. } => return Ok(EXIT_OK),
        Outcome::CannotConnect => writeln!(out, "{CANNOT_CONNECT}")?,
        Outcome::NoLeader { answered, total } => {
            writeln!(out, "{NO_LEADER}")?;
            writeln!(out, "{}", no_leader_hint(*answered, *total))?;
        }
        Outcome::Failed(why) => writeln!(out, "ERROR: {why}")?,
    }
    Ok(EXIT_ERROR)
}

/// What to check when no replica knows a leader.
pub fn no_leader_hint(answered: usize, total: usize) -> String {
    format!(
        "{answered} of {total} monitor replicas answered and none knows a leader: a majority \
         ({} of {total}) must be running and able to reach each other; 'mmm_control status' \
         shows each replica's view.",
        total / 2 + 1
    )
}

/// One of our own options found among the command's words, if any.
fn misplaced_option(words: &[String]) -> Option<&str> {
    let cmd = cli::command();
    words.iter().skip(1).map(String::as_str).find(|word| {
        word.strip_prefix("--").is_some_and(|long| {
            let long = long.split('=').next().unwrap_or(long);
            cmd.get_arguments().any(|a| a.get_long() == Some(long))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(args: &[&str]) -> (u8, String, String) {
        let args = std::iter::once("mmm_control")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(args, &mut out, &mut err).unwrap_or(99);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    fn dead_monitor() -> String {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "127.0.0.1:1".into())
    }

    #[test]
    fn no_command_prints_mmm_sentence_on_stderr_and_exits_255() {
        let (code, out, err) = run_with(&[]);
        assert_eq!((code, out.as_str()), (255, ""));
        assert_eq!(err, "See 'mmm_control help' for usage information\n");
    }

    #[test]
    fn version_prints_crate_version_and_mmm_commands() {
        let (code, out, _) = run_with(&["--version"]);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            format!(
                "mmm_control {} (mmm-raft; MMM 2.2.1 commands)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn help_flag_lists_mmm_and_new_commands_separately_and_exits_0() {
        let (code, out, _) = run_with(&["--help"]);
        assert_eq!(code, 0);
        for part in [
            "MMM commands (sent to the monitor as typed",
            "mmm-raft commands (new, not in MMM):",
            "  status ",
            "--completions <SHELL>",
            "--man",
            "Generated from these definitions",
        ] {
            assert!(out.contains(part), "missing {part:?} in:\n{out}");
        }
    }

    #[test]
    fn unknown_option_before_the_command_is_a_usage_error() {
        let (code, out, err) = run_with(&["--bogus", "show"]);
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(err.contains("unexpected argument '--bogus' found"), "{err}");
    }

    #[test]
    fn unreachable_monitor_prints_mmm_error_and_exits_1() {
        let (code, out, err) = run_with(&["--monitor", &dead_monitor(), "ping"]);
        assert_eq!(code, 1);
        assert_eq!(out, "ERROR: Can't connect to monitor daemon!\n");
        assert_eq!(err, "");
    }

    #[test]
    fn verbose_says_why_each_replica_failed() {
        let (a, b) = (dead_monitor(), dead_monitor());
        let (code, _, err) = run_with(&["--verbose", "--monitor", &format!("{a},{b}"), "show"]);
        assert_eq!(code, 1);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines
            .first()
            .is_some_and(|l| l.starts_with(&format!("mmm_control: {a}: "))));
        assert!(lines
            .get(1)
            .is_some_and(|l| l.starts_with(&format!("mmm_control: {b}: "))));
    }

    #[test]
    fn status_with_no_replica_answering_exits_1() {
        let (code, out, _) = run_with(&["--monitor", &dead_monitor(), "status"]);
        assert_eq!(code, 1);
        assert!(out.starts_with("REPLICA "), "{out}");
        assert!(
            out.ends_with("must be running and able to reach each other.\n"),
            "{out}"
        );
    }

    #[test]
    fn status_with_arguments_is_a_usage_error() {
        let (code, _, err) = run_with(&["--monitor", &dead_monitor(), "status", "x"]);
        assert_eq!(code, 2);
        assert!(err.contains("'status' takes no arguments"), "{err}");
    }

    #[test]
    fn bad_monitor_address_exits_2_and_names_it() {
        let (code, _, err) = run_with(&["--monitor", "127.0.0.1:9988,mon2", "ping"]);
        assert_eq!(code, 2);
        assert!(err.contains("invalid monitor address 'mon2'"), "{err}");
    }

    #[test]
    fn a_missing_config_file_exits_2_and_names_it() {
        let (code, _, err) = run_with(&["--config", "/nonexistent/mmm_mon_x.conf", "ping"]);
        assert_eq!(code, 2);
        assert!(
            err.contains("'/nonexistent/mmm_mon_x.conf' not found"),
            "{err}"
        );
    }

    #[test]
    fn check_config_of_a_missing_file_exits_2() {
        let (code, out, err) = run_with(&["--check-config", "--config", "/nonexistent/x.conf"]);
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn completions_and_man_page_are_generated_from_the_definitions() {
        for shell in ["bash", "zsh", "fish"] {
            let (code, out, _) = run_with(&["--completions", shell]);
            assert_eq!(code, 0, "{shell}");
            assert!(out.contains("mmm_control"), "{shell}");
            assert!(out.contains("check-config"), "{shell}");
        }
        let (code, out, _) = run_with(&["--man"]);
        assert_eq!(code, 0);
        assert!(out.contains(".TH mmm_control"), "{out}");
        assert!(out.contains("MMM commands"), "{out}");
    }

    #[test]
    fn options_after_an_invalid_command_get_a_hint() {
        assert_eq!(
            misplaced_option(&["show".into(), "--json".into()]),
            Some("--json")
        );
        assert_eq!(
            misplaced_option(&["move_role".into(), "--force".into(), "w".into()]),
            None
        );
        assert_eq!(misplaced_option(&["--json".into()]), None);
    }

    #[test]
    fn no_leader_hint_counts_answers_and_the_majority() {
        assert_eq!(
            no_leader_hint(1, 3),
            "1 of 3 monitor replicas answered and none knows a leader: a majority (2 of 3) \
             must be running and able to reach each other; 'mmm_control status' shows each \
             replica's view."
        );
    }
}
