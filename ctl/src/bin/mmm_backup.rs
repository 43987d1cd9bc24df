//! `mmm_backup`: see `mmm_control::tools`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mmm_control::tools::BackupCli::parse();
    let code = mmm_control::tools::backup_main(cli, &mut std::io::stdout(), &mut std::io::stderr())
        .unwrap_or(mmm_control::EXIT_ERROR);
    ExitCode::from(code)
}
