//! Shell completions and the man page, generated from the command-line definition so they never
//! drift from `--help`.

use std::io::Write;

use super::args::command;
use super::help;
use super::{EXIT_OK, Fatal};

/// The name the scripts complete (the binary's name, whatever the executable was renamed to).
const BIN: &str = "acronis-reports";

/// `completions SHELL`: the completion script on standard output.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, Fatal> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), BIN, &mut script);
    write_stdout(&script, "the completion script")
}

/// `man`: the man page (roff) on standard output.
pub fn man() -> Result<u8, Fatal> {
    let cmd = command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    // clap_mangen's own subcommand section names a page per command (acronis-reports-run(1)),
    // which we do not ship; ours lists the commands on this one page.
    (|| -> std::io::Result<()> {
        man.render_title(&mut page)?;
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        page.extend_from_slice(help::man_commands(&cmd).as_bytes());
        page.extend_from_slice(help::man_section("ENVIRONMENT", help::ENVIRONMENT).as_bytes());
        page.extend_from_slice(help::man_section("EXIT STATUS", help::EXIT_STATUS).as_bytes());
        page.extend_from_slice(help::man_section("FILES", help::FILES).as_bytes());
        page.extend_from_slice(help::man_section("EXAMPLES", help::EXAMPLES).as_bytes());
        man.render_version_section(&mut page)
    })()
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
