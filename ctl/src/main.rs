//! The `mmm_control` binary: runs [`mmm_control::run`] on the process's arguments and exits
//! with its status. The library holds everything else.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`mmm_control show | head -1`) is not worth a message.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(mmm_control::EXIT_ERROR),
        Err(e) => {
            let _ = writeln!(io::stderr(), "mmm_control: {e:#}");
            ExitCode::from(mmm_control::EXIT_ERROR)
        }
    }
}

fn run() -> anyhow::Result<u8> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let code = mmm_control::run(std::env::args_os().collect(), &mut out, &mut err)
        .context("cannot write the output")?;
    out.flush().context("cannot write the output")?;
    Ok(code)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}
