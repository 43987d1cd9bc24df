//! The command line: MMM's `mmm_control [@CLUSTER] COMMAND [ARGS...]` plus our options.
//!
//! MMM's command words are not clap subcommands: they go to the monitor as one line, exactly
//! as typed, so that the monitor answers unknown commands and wrong argument counts with
//! MMM's own "Invalid command" text. Our options go before the command; once the first word is
//! seen everything after it is the command's, `--force` included (`trailing_var_arg`).
//!
//! `@CLUSTER` is MMM's first argument. We also accept it after our options (as the first
//! word), and options after it (`mmm_control @prod --verbose show`): [`split_cluster`] takes
//! it out before clap parses the rest.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use clap_complete::Shell;

use crate::address::AddressList;

/// What `--version` prints after the program name.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (mmm-raft; MMM 2.2.1 commands)");

/// MMM's default timeout for talking to the monitor, in seconds.
pub const DEFAULT_TIMEOUT_SECS: &str = "10";

/// How long `switchover` waits for the new writer by default, in seconds.
pub const DEFAULT_WAIT_SECS: &str = "30";

const ABOUT: &str = "MMM's command line client, against any replica of the mmm-raft monitor group";

const AFTER_HELP: &str = "\
MMM commands (sent to the monitor as typed; replies are MMM 2.2.1's, byte for byte):
  help                              - show MMM's list of commands
  ping                              - ping monitor
  show                              - show status
  checks [<host>|all [<check>|all]] - show checks status
  set_online <host>                 - set host <host> online
  set_offline <host>                - set host <host> offline
  mode                              - print current mode.
  set_active                        - switch into active mode.
  set_manual                        - switch into manual mode.
  set_passive                       - switch into passive mode.
  move_role [--force] <role> <host> - move exclusive role <role> to host <host>
  set_ip <ip> <host>                - set role with ip <ip> to host <host>

mmm-raft commands (new, not in MMM):
  status                            - every replica's view of the monitor group: reachable,
                                      Raft state, term, leader, last log, applied, lag;
                                      exits 0 only if a majority knows one leader
  add_monitor <name> <ip:port>      - add a replica to the monitor group (it must be running
                                      with a configuration that names it)
  remove_monitor <name>             - remove a replica from the monitor group
  history                           - every writer change (newest 100): epoch, when it was
                                      decided, old and new writer, how long until the new
                                      writer confirmed, and why; then every host kept
                                      out of rotation for errant transactions
  switchover <host>                 - planned move of the writer to <host>: the writer
                                      stops writing, <host> takes writes once it has
                                      executed all of them (no acknowledged write is lost);
                                      waits until <host> writes (--wait) and says how long
                                      it took
  rejoin <host> [--reclone]         - bring back a host kept out of rotation: re-point it
                                      at the active master, or with --reclone rebuild it
                                      from the active master (its data is replaced by a hot
                                      copy; needed when it has errant transactions);
                                      shows the copy's progress

Options go before the command: everything after it is sent to the monitor untouched.
With --json, show and checks print the replicated state, status prints every replica's view,
history prints its entries, and other commands print the monitor's reply as JSON.

Exit status: 0 for an OK reply; 1 for an ERROR reply, an unreachable monitor group or a group
without a leader; 2 for bad options or a bad configuration; 255 when no command is given
(MMM's 'See 'mmm_control help' for usage information', without Perl's ' at FILE line 34.').";

/// The parsed command line (without `@CLUSTER`, see [`split_cluster`]).
#[derive(Debug, Parser)]
#[command(
    name = "mmm_control",
    bin_name = "mmm_control",
    version = VERSION,
    about = ABOUT,
    after_help = AFTER_HELP,
    override_usage = "mmm_control [@CLUSTER] [OPTIONS] COMMAND [ARGS...]",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Read this configuration file instead of mmm_mon[_CLUSTER].conf from /etc, /etc/mmm or
    /// /etc/mysql-mmm.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Ask these monitor replicas, in order, instead of the configuration's (no configuration
    /// file is read then).
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    pub monitor: Option<AddressList>,

    /// Say on stderr which replica answered, the leader and the log index, and why each
    /// replica that did not answer failed.
    #[arg(long)]
    pub verbose: bool,

    /// Print JSON instead of MMM's text.
    #[arg(long)]
    pub json: bool,

    /// switchover: how many seconds to wait for the new writer to take writes.
    #[arg(long, value_name = "SECS", default_value = DEFAULT_WAIT_SECS, value_parser = parse_timeout)]
    pub wait: Duration,

    /// Give up after this many seconds in all (each connection attempt gets at most 1 s).
    #[arg(long, value_name = "SECS", default_value = DEFAULT_TIMEOUT_SECS, value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Check the configuration, print what was understood and exit (0 if valid, 2 if not).
    #[arg(long)]
    pub check_config: bool,

    /// Print a shell completion script to stdout and exit.
    #[arg(
        long,
        value_name = "SHELL",
        help_heading = "Generated from these definitions"
    )]
    pub completions: Option<Shell>,

    /// Print the man page (roff) to stdout and exit.
    #[arg(long, help_heading = "Generated from these definitions")]
    pub man: bool,

    /// The command and its arguments, sent to the monitor as one line.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub words: Vec<String>,
}

/// Parses `--timeout`: positive seconds, fractions allowed.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "'{s}' must be more than 0 and at most 86400 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The clap command, for help, completions and the man page.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Takes MMM's `@CLUSTER` out of the arguments: the first argument that is neither an option
/// nor an option's value, if it starts with `@`. Returns the cluster name (without `@`) and the
/// remaining arguments, the program name first.
pub fn split_cluster(args: Vec<OsString>) -> (Option<String>, Vec<OsString>) {
    let cmd = command();
    let takes_value = |long: &str| {
        cmd.get_arguments()
            .find(|a| a.get_long() == Some(long))
            .is_some_and(|a| a.get_action().takes_values())
    };
    let mut index = 1;
    while let Some(arg) = args.get(index) {
        let Some(text) = arg.to_str() else {
            break;
        };
        if text == "--" {
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            index += if long.contains('=') || !takes_value(long) {
                1
            } else {
                2
            };
            continue;
        }
        if text.len() > 1 && text.starts_with('-') {
            index += 1;
            continue;
        }
        if let Some(cluster) = text.strip_prefix('@') {
            let cluster = cluster.to_string();
            let mut rest = args;
            rest.remove(index);
            return (Some(cluster), rest);
        }
        break;
    }
    (None, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn parse(args: &[&str]) -> Result<(Option<String>, Cli), clap::Error> {
        let (cluster, rest) = split_cluster(os(args));
        Ok((cluster, Cli::try_parse_from(rest)?))
    }

    #[test]
    fn force_after_the_command_stays_a_command_word() -> Result<(), clap::Error> {
        let (_, cli) = parse(&["mmm_control", "move_role", "--force", "writer", "db2"])?;
        assert_eq!(cli.words, ["move_role", "--force", "writer", "db2"]);
        Ok(())
    }

    #[test]
    fn our_options_after_the_command_are_command_words() -> Result<(), clap::Error> {
        let (_, cli) = parse(&["mmm_control", "show", "--json", "--verbose"])?;
        assert_eq!(cli.words, ["show", "--json", "--verbose"]);
        assert!(!cli.json && !cli.verbose);
        Ok(())
    }

    #[test]
    fn options_before_the_command_are_ours() -> Result<(), clap::Error> {
        let (_, cli) = parse(&[
            "mmm_control",
            "--verbose",
            "--json",
            "--timeout",
            "2.5",
            "--monitor",
            "a:1,b:2",
            "checks",
            "db1",
            "all",
        ])?;
        assert!(cli.verbose && cli.json);
        assert_eq!(cli.timeout, Duration::from_millis(2500));
        assert_eq!(cli.monitor.map(|m| m.0.len()), Some(2));
        assert_eq!(cli.words, ["checks", "db1", "all"]);
        Ok(())
    }

    #[test]
    fn words_that_look_like_options_pass_through_untouched() -> Result<(), clap::Error> {
        let (_, cli) = parse(&["mmm_control", "set_online", "-h", "--", "@x"])?;
        assert_eq!(cli.words, ["set_online", "-h", "--", "@x"]);
        Ok(())
    }

    #[test]
    fn cluster_is_taken_from_the_first_argument() -> Result<(), clap::Error> {
        let (cluster, cli) = parse(&["mmm_control", "@prod", "--verbose", "show"])?;
        assert_eq!(cluster.as_deref(), Some("prod"));
        assert!(cli.verbose);
        assert_eq!(cli.words, ["show"]);
        Ok(())
    }

    #[test]
    fn cluster_may_follow_our_options() -> Result<(), clap::Error> {
        let (cluster, cli) = parse(&["mmm_control", "--timeout", "3", "@prod", "--json", "mode"])?;
        assert_eq!(cluster.as_deref(), Some("prod"));
        assert!(cli.json);
        assert_eq!(cli.words, ["mode"]);
        Ok(())
    }

    #[test]
    fn an_at_word_after_the_command_is_not_a_cluster() -> Result<(), clap::Error> {
        let (cluster, cli) = parse(&["mmm_control", "set_online", "@db1"])?;
        assert_eq!(cluster, None);
        assert_eq!(cli.words, ["set_online", "@db1"]);
        Ok(())
    }

    #[test]
    fn an_option_value_starting_with_at_is_not_a_cluster() -> Result<(), clap::Error> {
        let (cluster, cli) = parse(&["mmm_control", "--config", "@weird.conf", "show"])?;
        assert_eq!(cluster, None);
        assert_eq!(cli.config, Some(PathBuf::from("@weird.conf")));
        Ok(())
    }

    #[test]
    fn no_command_leaves_no_words() -> Result<(), clap::Error> {
        let (_, cli) = parse(&["mmm_control", "--verbose"])?;
        assert!(cli.words.is_empty());
        Ok(())
    }

    #[test]
    fn bad_monitor_address_is_a_usage_error_naming_it() {
        let err = parse(&["mmm_control", "--monitor", "a:1,nope", "ping"]).err();
        let err = err.map(|e| (e.exit_code(), e.to_string()));
        let (code, text) = err.unwrap_or_default();
        assert_eq!(code, 2);
        assert!(
            text.contains("invalid monitor address 'nope': expected HOST:PORT"),
            "{text}"
        );
    }

    #[test]
    fn bad_timeouts_are_usage_errors() {
        for bad in ["0", "-1", "x", "NaN", "inf"] {
            let err = parse(&["mmm_control", "--timeout", bad, "ping"]).err();
            assert_eq!(err.map(|e| e.exit_code()), Some(2), "{bad}");
        }
    }

    #[test]
    fn version_names_the_mmm_commands() {
        assert!(VERSION.ends_with(" (mmm-raft; MMM 2.2.1 commands)"));
        let err = parse(&["mmm_control", "--version"]).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            text,
            format!(
                "mmm_control {} (mmm-raft; MMM 2.2.1 commands)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn clap_definitions_are_consistent() {
        command().debug_assert();
    }
}
