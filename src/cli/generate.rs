//! Shell completions and the man page, generated from the command-line definition so they never
//! drift from `--help`.

use std::io::Write;

use clap::CommandFactory;

use super::args::Cli;
use super::{EXIT_OK, Fatal};

/// The name the scripts complete (the binary's name, whatever the executable was renamed to).
const BIN: &str = "acronis-reports";

/// `completions SHELL`: the completion script on standard output.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, Fatal> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    write_stdout(&script, "the completion script")
}

/// `man`: the man page (roff) on standard output.
pub fn man() -> Result<u8, Fatal> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Fatal::failed(format!("cannot render the man page: {e}")))?;
    write_stdout(&page, "the man page")
}

fn write_stdout(bytes: &[u8], what: &str) -> Result<u8, Fatal> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Fatal::failed(format!("cannot print {what}: {e}")))?;
    Ok(EXIT_OK)
}
