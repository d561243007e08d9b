//! The command line: parses arguments, wires the library together, maps outcomes to exit codes.

mod args;
mod commands;
mod generate;
mod help;
mod progress;
mod signals;

use std::process::ExitCode;

use clap::FromArgMatches;

use args::{Cli, Command};

/// Exit codes of the contract (the README's "Exit codes" table).
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_NOTHING_ATTEMPTED: u8 = 2;

/// An error that ends the command, with the exit code it means.
#[derive(Debug)]
pub struct Fatal {
    pub code: u8,
    pub message: String,
    /// The message drawn for a terminal (e.g. job-file snippets), if it has such a form.
    pub report: Option<String>,
}

impl Fatal {
    /// Nothing was attempted: bad input, missing or refused credentials.
    pub fn input(message: impl std::fmt::Display) -> Self {
        Self {
            code: EXIT_NOTHING_ATTEMPTED,
            message: message.to_string(),
            report: None,
        }
    }

    /// A job file that cannot be used: its problems drawn as snippets, in colour on a terminal.
    pub fn job(error: &acronis_reports::job::JobError) -> Self {
        Self {
            code: EXIT_NOTHING_ATTEMPTED,
            message: error.to_string(),
            report: Some(error.render(progress::color())),
        }
    }

    /// The run started but could not finish its bookkeeping (e.g. the disk is full).
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            code: EXIT_FAILED,
            message: message.to_string(),
            report: None,
        }
    }
}

impl From<acronis_reports::session::SessionError> for Fatal {
    fn from(error: acronis_reports::session::SessionError) -> Self {
        if error.nothing_attempted() {
            Self::input(error)
        } else {
            Self::failed(error)
        }
    }
}

pub fn main() -> ExitCode {
    // Before any credential is read: a core dump would hold the secret and tokens.
    let protected = acronis_reports::secret::protect_process();
    let cli = Cli::from_arg_matches(&args::command().get_matches()).unwrap_or_else(|e| e.exit());
    progress::init(cli.log_format, cli.verbose, cli.quiet);
    if let Err(error) = protected {
        tracing::warn!("cannot keep this process out of core dumps: {error}");
    }
    let outcome = match cli.command {
        Command::Run(args) => commands::run(args),
        Command::Validate(args) => commands::validate(args),
        Command::Plan(args) => commands::plan(args),
        Command::Doctor(args) => commands::doctor(args),
        Command::Verify(args) => commands::verify(args),
        Command::Compare(args) => commands::compare(args),
        Command::Sandbox(args) => commands::sandbox(args),
        Command::Schema(args) => commands::schema(&args),
        Command::Merge(args) => commands::merge(args),
        Command::Completions(args) => generate::completions(args.shell),
        Command::Man => generate::man(),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(fatal) => {
            progress::fatal(&fatal.message, fatal.report.as_deref());
            ExitCode::from(fatal.code)
        }
    }
}
