use std::io;
use std::path::PathBuf;

use crate::api::ApiError;
use crate::discover::DiscoveryError;
use crate::output::trail::{CommitError, TrailError};
use crate::shard::ShardError;

/// Why a run (or the connection of `plan`) ended before its reports were done.
/// [`SessionError::nothing_attempted`] tells the errors that leave everything as it was (bad
/// input, refused credentials; exit 2) from those of a run that started (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No API base URL from any source (option, environment, job file).
    #[error(
        "no API URL: pass --base-url, set ACRONIS_BASE_URL, or set api.base_url in the job file (e.g. https://eu2-cloud.acronis.com); or try the job with --sandbox"
    )]
    NoBaseUrl,
    /// Only one half of a client id and secret pair is set.
    #[error("{set} is set but {missing} is not; set both")]
    HalfCredentials {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
    },
    /// Neither a client id and secret nor a token.
    #[error(
        "no credentials: set ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET (an API client from the management console), or ACRONIS_TOKEN; or try the job with --sandbox"
    )]
    NoCredentials,
    /// `--shard` (or the CI's node variables) could not be understood.
    #[error("{0} (or pass --shard I/N, or --no-shard)")]
    Shard(#[source] ShardError),
    /// The output path exists and is not a folder.
    #[error("output folder {} exists and is not a folder", .0.display())]
    OutputNotFolder(PathBuf),
    /// `--history` does not name a folder.
    #[error(
        "--history {}: not a folder; give the output folder of earlier runs (the trail), or leave the option out",
        .0.display()
    )]
    HistoryNotFolder(PathBuf),
    /// The `--scenario` file could not be loaded.
    #[cfg(feature = "sandbox")]
    #[error(transparent)]
    SandboxScenario(acronis_reports_sandbox::SandboxError),
    /// The sandbox could not start (TLS set-up, binding the port).
    #[cfg(feature = "sandbox")]
    #[error("cannot start the sandbox: {0}")]
    SandboxStart(#[source] acronis_reports_sandbox::SandboxError),
    /// `--sandbox` was asked of a build without the `sandbox` feature.
    #[error(
        "this build of acronis-reports has no built-in sandbox (it was built without the `sandbox` feature); install a release build, or build with the default features"
    )]
    NoSandbox,
    /// The URL, the client or the credentials (the message names which).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A `children_of` entry could not be listed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The output folder could not be created.
    #[error("cannot create the output folder {}: {source}", path.display())]
    CreateOutput {
        /// The output folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Another run holds the folder's lock; the message says which.
    #[error(transparent)]
    Locked(io::Error),
    /// The resume state (journal) in the output folder could not be opened.
    #[error("cannot open the resume state in {}: {source}", out_dir.display())]
    State {
        /// The output folder.
        out_dir: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The output folder's trail could not be read.
    #[error(transparent)]
    Trail(#[from] TrailError),
    /// The server refused the credentials before any report succeeded; its reason.
    #[error("{0}")]
    CredentialsRefused(String),
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The run itself failed on an I/O error; what finished is journalled for the next run.
    #[error("{source}; what finished is in the resume journal in {}: run again to finish", out_dir.display())]
    Run {
        /// The output folder, which holds the resume journal.
        out_dir: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The run's records could not be read back from their temporary file.
    #[error("reading the run's results back: {0}")]
    ReadBack(#[source] io::Error),
    /// The outputs could not be committed to the output folder.
    #[error("writing the outputs in {}: {source}", out_dir.display())]
    Commit {
        /// The output folder.
        out_dir: PathBuf,
        /// Why the commit failed.
        source: CommitError,
    },
    /// Telling the CI system (the error names the file).
    #[error(transparent)]
    Publish(io::Error),
}

impl SessionError {
    /// Nothing was attempted: no report was created and no file written, so the outputs of an
    /// earlier run stay as they were.
    pub fn nothing_attempted(&self) -> bool {
        !matches!(
            self,
            Self::Runtime(_)
                | Self::Run { .. }
                | Self::ReadBack(_)
                | Self::Commit { .. }
                | Self::Publish(_)
        )
    }
}
