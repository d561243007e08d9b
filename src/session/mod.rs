//! One `run`, from a loaded job to a committed delivery: the credentials, the connection (or the
//! built-in sandbox), the plan and its shard, the resume journal and lock, the history that
//! orders the reports, the run itself, the outputs of the trail, and what CI is told. The
//! command line only parses arguments, shows progress, listens for signals and turns a
//! [`Delivered`] or a [`SessionError`] into an exit code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::ci;
use crate::download;
use crate::history::{self, History};
use crate::job::Job;
use crate::output;
use crate::plan::Plan;
use crate::results::{DiscoveryRecord, JobRef, RunResult, ShardInfo, Tool};
use crate::run::{self, Observer, RunConfig, Runner};
use crate::shard::{self, ShardSpec};
use crate::state::StateStore;

mod connection;
mod error;
pub mod simulator;
mod target;
// The tests run jobs against the built-in sandbox.
#[cfg(all(test, feature = "sandbox"))]
mod tests;

use connection::Endpoint;
pub use connection::{Connection, ConnectionOptions};
pub use error::SessionError;
pub(crate) use target::Target;

/// The async runtime, with room for `downloads` downloads at once: each holds
/// [`download::THREADS_PER_DOWNLOAD`] blocking threads until it ends, and a download whose
/// threads had to queue for a place would hold up the ones it already has.
pub fn runtime(downloads: usize) -> Result<tokio::runtime::Runtime, SessionError> {
    const TOKIO_DEFAULT_BLOCKING_THREADS: usize = 512;
    // Room for the other blocking work as well: file-system calls, journal writes.
    let blocking = download::THREADS_PER_DOWNLOAD * downloads + 64;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking.max(TOKIO_DEFAULT_BLOCKING_THREADS))
        .build()
        .map_err(SessionError::Runtime)
}

/// Which part of the plan a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardChoice {
    /// `--shard I/N`.
    Given(ShardSpec),
    /// `--no-shard`: every report.
    All,
    /// GitLab's `CI_NODE_INDEX`/`CI_NODE_TOTAL` when both are set, else every report.
    FromCi,
}

/// Where the generation times of earlier periods come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistorySource {
    /// The output folder's own trail.
    Output,
    /// `--history DIR`: another trail (for a first run into a fresh folder).
    Dir(PathBuf),
    /// `--no-history`: the order and polling of a first run.
    Off,
}

/// The shard a run does, as chosen: `env` looks up the CI variables.
pub fn resolve_shard(
    choice: ShardChoice,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ShardSpec>, SessionError> {
    match choice {
        ShardChoice::Given(spec) => Ok(Some(spec)),
        ShardChoice::All => Ok(None),
        ShardChoice::FromCi => {
            let shard = shard::from_ci_env(env).map_err(SessionError::Shard)?;
            if let Some(shard) = shard {
                tracing::info!(
                    "running shard {shard} as set by {} and {} (--no-shard runs every report)",
                    shard::CI_NODE_INDEX,
                    shard::CI_NODE_TOTAL
                );
            }
            Ok(shard)
        }
    }
}

/// What a run is asked to do, besides the job.
#[derive(Debug)]
pub struct Request {
    /// The API URL and credentials, from the options and the environment.
    pub connection: ConnectionOptions,
    /// `--out`; the job file's `output.dir` without it.
    pub out_dir: Option<PathBuf>,
    /// The shard this run does ([`resolve_shard`]); every report without one.
    pub shard: Option<ShardSpec>,
    /// `--fresh`: the resume journal of earlier runs is ignored.
    pub fresh: bool,
    /// Which earlier runs' timings aim this run's polling (`--history`).
    pub history: HistorySource,
    /// The CI system the run reports to, if any.
    pub ci: ci::Context,
}

/// How a run is shown and stopped: the command line's progress display and signal handler,
/// or a test's recorder.
pub trait Frontend {
    /// The reports are about to start: `reports` of them. Returns who is told of each report's
    /// events.
    fn starting(&mut self, reports: usize) -> Arc<dyn Observer>;
    /// Every report has ended; the outputs are written next.
    fn finished(&mut self);
    /// Cancelling it stops the run gracefully: no new reports, in-flight work abandoned, the
    /// journal and outputs written.
    fn cancel(&self) -> CancellationToken;
    /// The exit code the reason for a cancellation asks for (130 for SIGINT, 143 for SIGTERM).
    fn interrupted(&self) -> Option<u8>;
}

/// A run that wrote its outputs.
#[derive(Debug)]
pub struct Delivered {
    /// The record as written to the output folder (with `billing.csv` and its warnings).
    pub result: RunResult,
    /// The output folder the run wrote.
    pub out_dir: PathBuf,
    /// Set when the run was cancelled: the exit code asked for.
    pub interrupted: Option<u8>,
}

impl Delivered {
    /// The number of files the run's reports hold.
    pub fn file_count(&self) -> usize {
        self.result.reports.file_count()
    }
}

/// A run checked before anything starts: the folders exist as needed and, without the sandbox,
/// credentials are there.
#[derive(Debug)]
pub struct Prepared {
    job: Job,
    request: Request,
    /// Resolved here, so that missing credentials are reported before anything starts.
    endpoint: Endpoint,
    out_dir: PathBuf,
}

impl Prepared {
    /// Checks what can be checked without the network: the credentials in `env` (read here
    /// once), the output and history folders.
    pub fn new(
        job: Job,
        request: Request,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SessionError> {
        let endpoint = Endpoint::resolve(&request.connection, &job, env)?;
        let out_dir = request
            .out_dir
            .clone()
            .unwrap_or_else(|| job.output_dir.clone());
        if out_dir.exists() && !out_dir.is_dir() {
            return Err(SessionError::OutputNotFolder(out_dir));
        }
        if let HistorySource::Dir(dir) = &request.history
            && !dir.is_dir()
        {
            return Err(SessionError::HistoryNotFolder(dir.clone()));
        }
        Ok(Self {
            job,
            request,
            endpoint,
            out_dir,
        })
    }

    /// The downloads the run may have going at once (the runtime's size).
    pub fn concurrency(&self) -> usize {
        self.job.concurrency
    }

    /// Runs the job: connects, plans, runs the reports and commits the outputs to the trail,
    /// then tells CI. Must run inside a [`runtime`] sized by [`Prepared::concurrency`].
    pub async fn deliver(self, frontend: &mut dyn Frontend) -> Result<Delivered, SessionError> {
        let Self {
            mut job,
            request,
            endpoint,
            out_dir,
        } = self;
        let on_secret: Option<crate::api::SecretHook> =
            (request.ci.provider == ci::Provider::GitHub).then(|| {
                Arc::new(|secret: &str| ci::github::print_masks(&[secret.to_owned()]))
                    as crate::api::SecretHook
            });
        let connection = Connection::connect(endpoint, on_secret).await?;
        let outcome = async {
            let (plan, discovery) = connection.full_plan(&job).await?;
            let (plan, shard) = shard_plan(plan, request.shard);
            // Every tenant is in the plan now; the list would only hold memory to the end.
            job.tenants = Vec::new();
            let history = match &request.history {
                HistorySource::Output => Some(out_dir.as_path()),
                HistorySource::Dir(dir) => Some(dir.as_path()),
                HistorySource::Off => None,
            };
            let run = Run {
                job: &job,
                plan,
                discovery,
                out_dir: &out_dir,
                fresh: request.fresh,
                history,
                ci: &request.ci,
                shard,
            };
            execute(&connection, run, frontend).await
        }
        .await;
        connection.close().await;
        let (result, interrupted) = outcome?;
        Ok(Delivered {
            result,
            out_dir,
            interrupted,
        })
    }
}

/// The part of the plan this run does (all of it, or one shard's reports), and the shard's
/// record for the manifest.
fn shard_plan(plan: Plan, shard: Option<ShardSpec>) -> (Plan, Option<ShardInfo>) {
    let Some(spec) = shard else {
        return (plan, None);
    };
    let part = shard::select(&plan, spec.index, spec.total);
    tracing::info!(
        "shard {spec}: {} of the job's {} report(s)",
        part.reports.len(),
        plan.reports.len()
    );
    let info = ShardInfo {
        index: spec.index,
        total: spec.total,
        plan_reports: plan.reports.len(),
    };
    (part, Some(info))
}

/// Everything `execute` needs besides the connection.
struct Run<'a> {
    job: &'a Job,
    plan: Plan,
    discovery: Vec<DiscoveryRecord>,
    out_dir: &'a Path,
    fresh: bool,
    /// The trail whose generation times guide the run, if any.
    history: Option<&'a Path>,
    ci: &'a ci::Context,
    shard: Option<ShardInfo>,
}

async fn execute(
    connection: &Connection,
    run: Run<'_>,
    frontend: &mut dyn Frontend,
) -> Result<(RunResult, Option<u8>), SessionError> {
    let Run {
        job,
        plan,
        discovery,
        out_dir,
        fresh,
        history,
        ci,
        shard,
    } = run;
    // What this run creates is taken back if the credentials turn out refused (below).
    let existed = out_dir.exists();
    let journal_existed = out_dir.join(crate::state::STATE_DIR).exists();
    std::fs::create_dir_all(out_dir).map_err(|source| SessionError::CreateOutput {
        path: out_dir.to_owned(),
        source,
    })?;
    let base_url = connection.base_url.clone();
    let state = StateStore::open(out_dir, &base_url, fresh).map_err(|source| {
        if source.kind() == std::io::ErrorKind::ResourceBusy {
            // Another run's lock: the message says so, and the resume state itself is fine.
            return SessionError::Locked(source);
        }
        SessionError::State {
            out_dir: out_dir.to_owned(),
            source,
        }
    })?;
    if state.holds_lock() {
        // With the lock held no other run writes here: hidden temporary files are a killed
        // run's leftovers (up to a report's size each), and nothing will ever finish them.
        let removed = crate::disk::remove_stale_temp_files(out_dir);
        if removed > 0 {
            tracing::info!("removed {removed} temporary file(s) left by an interrupted run");
        }
    }
    // The earlier deliveries of the periods this run covers are read before anything is
    // created: a damaged record stops the run here, not after its reports were fetched.
    let labels = plan.reports.iter().map(|r| r.period.label()).collect();
    let trail = output::trail::Trail::open(out_dir, labels)?;
    // A tenant folder that holds another tenant's sealed files is refused before anything is
    // created: the period could not take this run's files without losing those.
    let wanted = plan.reports.iter().flat_map(|request| {
        request.formats.iter().map(|format| output::trail::Wanted {
            tenant_id: &request.tenant_id,
            tenant_name: &request.tenant_name,
            path: request.file_path(*format),
        })
    });
    trail.check_wanted(wanted)?;
    if state.holds_lock() {
        output::trail::clear_scratch(out_dir);
    }
    let history = history.map_or_else(History::none, read_history);
    let estimate = history::estimate(&history, &plan.reports, job.concurrency);
    if let Some(estimate) = &estimate {
        tracing::info!(
            "generation times from {}: {} of {} report(s) known; slowest first, about {:.1}s expected",
            estimate.periods.join(", "),
            estimate.known,
            estimate.reports,
            estimate.duration.as_secs_f64()
        );
    }
    // What the content check reads of each file is kept for billing.csv, so a downloaded file
    // is read once; it needs a folder no other run uses. Without one, billing.csv reads the
    // files again.
    let spilling = state
        .holds_lock()
        .then(|| {
            let dir = out_dir.join(crate::state::STATE_DIR);
            crate::content::spill::install(&dir)
                .inspect_err(|e| tracing::debug!("billing.csv will read the files again: {e}"))
                .ok()
        })
        .flatten();
    let started_at = Timestamp::now();
    let clock = std::time::Instant::now();
    tracing::info!(
        "running {} report(s), {} at a time, into {}",
        plan.reports.len(),
        job.concurrency,
        out_dir.display()
    );
    let observer = frontend.starting(plan.reports.len());
    let runner = Runner {
        observer,
        client: connection.client.clone(),
        state: Arc::new(state),
        config: Arc::new(RunConfig::for_job(job, out_dir)),
        cancel: frontend.cancel(),
        history: Arc::new(history),
    };
    let reports = run::execute(&runner, plan).await;
    let took = clock.elapsed();
    frontend.finished();
    let reports = reports.map_err(|source| SessionError::Run {
        out_dir: out_dir.to_owned(),
        source,
    })?;
    let interrupted = frontend.interrupted();
    // Credentials refused before any report succeeded: exit 2 and no outputs, as when the token
    // endpoint refuses them up front, so the outputs of an earlier run stay as they were.
    if let Some(reason) = connection.client.refused()
        && reports.ok_count() == 0
        && interrupted.is_none()
    {
        let reason = reason.to_owned();
        // The lock and the spill folder are let go first: the folder can then be taken back.
        drop(runner);
        drop(spilling);
        if !journal_existed {
            crate::state::remove_if_unused(out_dir, !existed);
        }
        return Err(SessionError::CredentialsRefused(reason));
    }
    let result = RunResult {
        manifest_version: 1,
        tool: Tool::current(),
        started_at,
        finished_at: Timestamp::now(),
        as_of: job.as_of,
        job: JobRef {
            path: portable_path(&job.path),
            sha256: job.sha256.clone(),
        },
        base_url,
        reports,
        shard,
        discovery,
        derived_files: Vec::new(),
        billing_rule: job.billing.clone(),
        period_folder: None,
        trail: None,
    };
    // The record as written: with `billing.csv` and the warnings found while deriving it.
    let timing = output::timing::section(&result.reports, estimate.as_ref(), took)
        .map_err(SessionError::ReadBack)?;
    let options = output::trail::CommitOptions {
        compare: job.compare.clone(),
        sections: timing.into_iter().collect(),
    };
    let result = trail
        .commit(result, &options)
        .map_err(|source| SessionError::Commit {
            out_dir: out_dir.to_owned(),
            source,
        })?;
    ci::publish(ci, &result, out_dir, interrupted).map_err(SessionError::Publish)?;
    Ok((result, interrupted))
}
/// The generation times the trail in `dir` recorded; a trail without them (or none at all)
/// leaves the run as it would be without history.
fn read_history(dir: &Path) -> History {
    let history = History::read(dir);
    if history.is_empty() {
        tracing::debug!(
            "{} holds no generation times of earlier periods",
            dir.display()
        );
    }
    history
}

/// A path as text with `/` separators, for manifests read on any system.
pub fn portable_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '\\' {
        text.replace('\\', "/")
    } else {
        text.into_owned()
    }
}
