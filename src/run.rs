//! Executing a plan: each report is created (or resumed from the state journal), polled,
//! downloaded and checked, up to `concurrency` at a time. One report's failure never stops the
//! others — except a refusal of the credentials, after which no report that needs the API
//! starts; cancellation stops everything promptly without leaving partial files.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{
    ApiError, Client, CreateReport, CreatedReport, PeriodDates, ReportParameters, UsageHistory,
};
use crate::checks::FileFacts;
use crate::history::{self, Expected, History};
use crate::job::{Cleanup, Polling};
use crate::plan::{Plan, ReportRequest};
use crate::poll::{self, GenerationModel, PollError, Waited};
use crate::report::BillingRule;
use crate::results::{ReportLog, ReportResult, Status};
use crate::retry::Backoff;
use crate::state::{StateStore, report_key};

mod files;

#[derive(Clone, Debug)]
pub(crate) struct RunConfig {
    pub(crate) out_dir: PathBuf,
    pub concurrency: usize,
    pub polling: Polling,
    /// Attempts per file when a transfer breaks.
    pub(crate) download_attempts: u32,
    /// What every download must satisfy (`checks.size`, …).
    pub(crate) download: crate::download::Policy,
    pub(crate) cleanup: Cleanup,
    /// The job's billing rule: every row of a checked file must have the value it reads.
    pub(crate) billing_rule: Arc<BillingRule>,
}

impl RunConfig {
    /// What the job file says a run into `out_dir` must do.
    pub(crate) fn for_job(job: &crate::job::Job, out_dir: &std::path::Path) -> Self {
        RunConfig {
            out_dir: out_dir.to_owned(),
            concurrency: job.concurrency,
            polling: job.polling,
            download_attempts: 3,
            download: crate::download::Policy {
                size: job.size_policy,
                max_file_size: job.limits.max_file_size,
                deadline: job.limits.download_timeout,
                ..Default::default()
            },
            cleanup: job.cleanup,
            billing_rule: Arc::new(job.billing.clone()),
        }
    }
}

/// A state change of one report, for progress displays and machine-readable event logs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The report exists on the server: created now, or recorded by an earlier run.
    Created {
        /// Position of the report in the whole plan (0-based).
        index: usize,
        /// The tenant's name.
        tenant: String,
        /// The period's label (e.g. `2026-10`).
        period: String,
        /// The API's id of the report.
        report_id: String,
        /// Whether an earlier run created it and this run took it up from the resume state.
        resumed: bool,
    },
    /// Every requested format is saved on the server; downloads start.
    Ready {
        /// Position of the report in the whole plan (0-based).
        index: usize,
        /// The tenant's name.
        tenant: String,
        /// The period's label (e.g. `2026-10`).
        period: String,
        /// The API's id of the report.
        report_id: String,
        /// Milliseconds from its creation (for a resumed report, from when this run took it up) until it was ready.
        waited_ms: u64,
    },
    /// One file is on disk under its final name.
    Saved {
        /// Position of the report in the whole plan (0-based).
        index: usize,
        /// The tenant's name.
        tenant: String,
        /// The period's label (e.g. `2026-10`).
        period: String,
        /// Where the file is, relative to the output folder.
        path: String,
        /// The file's size.
        bytes: u64,
        /// SHA-256 (hex) of the file's bytes.
        sha256: String,
        /// Whether an intact file from an earlier run was kept instead of downloading it again.
        reused: bool,
    },
    /// The report is done, well or not.
    Finished {
        /// Position of the report in the whole plan (0-based).
        index: usize,
        /// The tenant's name.
        tenant: String,
        /// The period's label (e.g. `2026-10`).
        period: String,
        /// Whether the report was delivered.
        status: Status,
        /// Why it failed, when it did.
        error: Option<String>,
    },
}

/// Receives [`Event`]s as they happen, from many tasks at once.
pub trait Observer: Send + Sync {
    /// Called once per event, from whichever task the change happened in.
    fn on(&self, event: Event);
}

/// An observer that ignores everything.
#[cfg(test)]
pub(crate) struct Unobserved;

#[cfg(test)]
impl Observer for Unobserved {
    fn on(&self, _: Event) {}
}

/// What a run needs besides the plan.
pub(crate) struct Runner {
    /// Told of every state change.
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) client: Arc<Client>,
    pub(crate) state: Arc<StateStore>,
    pub(crate) config: Arc<RunConfig>,
    /// Cancelled on SIGINT/SIGTERM: no new report starts, running ones stop at once.
    pub(crate) cancel: CancellationToken,
    /// The generation times of earlier periods: the order reports start in, and their polls.
    pub(crate) history: Arc<History>,
}

pub(crate) const INTERRUPTED: &str =
    "interrupted before it finished (the run was cancelled); run again to resume";

/// Runs every report of the plan; the results are in plan order. Reports start in plan order,
/// or, when the history knows their tenants, longest expected generation time first (see
/// [`history::start_order`]). The plan is consumed: a request is dropped as soon as its report
/// is done, and its result goes to a [`ReportLog`] on disk, so that what a long run holds
/// follows the concurrency, not the plan. Fails only when the results cannot be kept (the
/// temporary folder is full or unwritable).
pub(crate) async fn execute(runner: &Runner, plan: Plan) -> io::Result<ReportLog> {
    let permits = Arc::new(Semaphore::new(runner.config.concurrency.max(1)));
    let generation = Arc::new(GenerationModel::new());
    let mut tasks: JoinSet<(usize, ReportResult)> = JoinSet::new();
    // The requests of the reports running now, for the rare task that cannot be joined.
    let mut running: HashMap<tokio::task::Id, (usize, ReportRequest)> = HashMap::new();
    let mut results = Collected {
        log: ReportLog::with_slots(plan.reports.len())?,
        error: None,
        stop: runner.cancel.child_token(),
    };
    let expected: Vec<Option<Expected>> = plan
        .reports
        .iter()
        .map(|request| runner.history.expected(request))
        .collect();
    let order = history::start_order(&expected);
    // Taken out one by one in start order; results are still filed by plan position.
    let mut waiting: Vec<Option<(ReportRequest, Option<Expected>)>> =
        plan.reports.into_iter().zip(expected).map(Some).collect();
    let mut requests = order
        .into_iter()
        .filter_map(|index| Some((index, waiting.get_mut(index)?.take()?)));
    for (index, (request, expected)) in requests.by_ref() {
        let permit = tokio::select! {
            biased;
            _ = results.stop.cancelled() => None,
            permit = permits.clone().acquire_owned() => permit.ok(),
        };
        let Some(permit) = permit else {
            results.put(index, &interrupted(runner, &request));
            break;
        };
        let job = ReportJob {
            observer: runner.observer.clone(),
            generation: generation.clone(),
            client: runner.client.clone(),
            state: runner.state.clone(),
            config: runner.config.clone(),
            key: report_key(&request),
            request: request.clone(),
            expected,
        };
        let cancel = results.stop.clone();
        let task = tasks.spawn(async move {
            let _permit = permit;
            // A bug in one report must not lose the results of all the others.
            let work = std::panic::AssertUnwindSafe(job.run()).catch_unwind();
            let outcome = tokio::select! {
                biased;
                // Dropping the work drops any temporary download file with it.
                _ = cancel.cancelled() => job.failed(INTERRUPTED.into()),
                outcome = work => outcome.unwrap_or_else(|_| {
                    job.failed("internal error while running this report (a bug; please report it)".into())
                }),
            };
            job.observer.on(Event::Finished {
                index: job.request.index,
                tenant: job.request.tenant_name.clone(),
                period: job.request.period.label(),
                status: outcome.status,
                error: outcome.error.clone(),
            });
            job.state.finished(&job.key);
            (index, outcome)
        });
        running.insert(task.id(), (index, request));
        // Collect finished reports as we go, so memory follows the concurrency, not the plan.
        while let Some(joined) = tasks.try_join_next_with_id() {
            keep(runner, &mut results, &mut running, joined);
        }
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        keep(runner, &mut results, &mut running, joined);
    }
    for (index, (request, _)) in requests {
        results.put(index, &interrupted(runner, &request));
    }
    if let Some(error) = results.error {
        return Err(error);
    }
    debug_assert!(results.log.is_complete(), "a plan index without a result");
    Ok(results.log)
}

/// The results so far, and the first failure to keep one.
struct Collected {
    log: ReportLog,
    error: Option<io::Error>,
    /// The run's cancellation, and also cancelled when a result cannot be kept: a run that
    /// cannot record its results stops rather than work on for nothing.
    stop: CancellationToken,
}

impl Collected {
    fn put(&mut self, index: usize, result: &ReportResult) {
        if let Err(error) = self.log.set(index, result) {
            self.error.get_or_insert(error);
            self.stop.cancel();
        }
    }
}

/// Files a finished task's result under its plan position. A task that panicked has already
/// turned that into a failed result; one that could not even be joined counts as interrupted.
fn keep(
    runner: &Runner,
    results: &mut Collected,
    running: &mut HashMap<tokio::task::Id, (usize, ReportRequest)>,
    joined: Result<(tokio::task::Id, (usize, ReportResult)), tokio::task::JoinError>,
) {
    match joined {
        Ok((id, (index, result))) => {
            running.remove(&id);
            results.put(index, &result);
        }
        Err(error) => {
            if let Some((index, request)) = running.remove(&error.id()) {
                results.put(index, &interrupted(runner, &request));
            }
        }
    }
}

/// The result of a report the run did not finish.
fn interrupted(runner: &Runner, request: &ReportRequest) -> ReportResult {
    let report_id = runner.state.current_report_id(&report_key(request));
    failed(request, report_id, INTERRUPTED.into())
}

fn failed(request: &ReportRequest, report_id: Option<String>, error: String) -> ReportResult {
    ReportResult {
        tenant_id: request.tenant_id.clone(),
        tenant_name: request.tenant_name.clone(),
        period: request.period,
        kind: request.kind,
        level: request.level,
        report_id,
        status: Status::Failed,
        error: Some(error),
        files: Vec::new(),
        dr_compute_points: None,
        warnings: Vec::new(),
        plan_index: request.index,
        timing: None,
    }
}

/// The exact `POST /reports` body for one request.
pub fn create_body(request: &ReportRequest) -> CreateReport {
    CreateReport::once(ReportParameters {
        tenant_id: request.tenant_id.clone(),
        kind: request.kind,
        level: request.level,
        formats: request.formats.clone(),
        period: PeriodDates {
            start: request.period.start.to_string(),
            end: request.period.end.to_string(),
        },
        hide_zero_usage: request.hide_zero_usage,
        show_skus: request.show_skus,
    })
}

/// One report request on its way through create → poll → download → check → cleanup.
struct ReportJob {
    observer: Arc<dyn Observer>,
    generation: Arc<GenerationModel>,
    client: Arc<Client>,
    state: Arc<StateStore>,
    config: Arc<RunConfig>,
    request: ReportRequest,
    key: String,
    /// What the tenant's history leads us to expect of this report.
    expected: Option<Expected>,
}

/// Why a report could not be created.
#[derive(Debug, thiserror::Error)]
enum CreateError {
    #[error("could not create the report: {0}")]
    Api(ApiError),
    #[error(
        "could not create the report: the server prepares the usage history between 01:00 and 06:00 UTC and it is not ready yet; run again after 06:00 UTC ({0})"
    )]
    HistoryNotYetDue(ApiError),
    #[error(
        "could not create the report: the usage history was still not ready after {}s of asking (polling.timeout), although the server says it should be by now; run again later ({source})",
        waited.as_secs()
    )]
    HistoryOverdue {
        waited: std::time::Duration,
        source: ApiError,
    },
}

/// A report on the server that this run works with.
struct ServerReport {
    id: String,
    version: Option<u64>,
    /// When this run created it or took it over; the polling deadline counts from here.
    since: Instant,
    /// Created by this run (so `since` is its true creation time).
    created_now: bool,
}

/// A file read from disk: its SHA-256, its size and its check.
type OnDisk = (String, u64, FileFacts);

impl ReportJob {
    fn label(&self) -> String {
        format!("{} {}", self.request.tenant_name, self.request.period)
    }

    fn failed(&self, error: String) -> ReportResult {
        failed(
            &self.request,
            self.state.current_report_id(&self.key),
            error,
        )
    }

    async fn run(&self) -> ReportResult {
        let mut result = self.run_unscrubbed().await;
        // Server text reaches a report's record by many paths (a stored status, a cell or title
        // quoted by the content check): every credential is taken out of all of it at once,
        // before the manifest, the summary or an annotation repeats it.
        let scrub = |text: &mut String| *text = self.client.scrub(text);
        if let Some(error) = &mut result.error {
            scrub(error);
        }
        result.warnings.iter_mut().for_each(scrub);
        for file in &mut result.files {
            if let Some(problem) = &mut file.content_check.problem {
                scrub(problem);
            }
        }
        result
    }

    async fn run_unscrubbed(&self) -> ReportResult {
        let label = self.label();
        let recorded = self.state.recorded(&self.key).cloned();
        if let Some(recorded) = &recorded
            && let Some(result) = self.reuse_saved_files(recorded).await
        {
            tracing::info!(
                "{label}: all files already saved by an earlier run of report {}",
                recorded.report_id
            );
            return result;
        }
        // Refused credentials would fail every call the same way: once the server has refused
        // them, a report that needs the API is not started (one whose files are all on disk
        // already is kept, above).
        if let Some(refusal) = self.client.refused() {
            return self.failed(format!("not started: {refusal}"));
        }
        let mut report = match &recorded {
            Some(recorded) if !recorded.deleted => {
                tracing::info!(
                    "{label}: resuming report {} recorded by an earlier run",
                    recorded.report_id
                );
                self.observer.on(Event::Created {
                    index: self.request.index,
                    tenant: self.request.tenant_name.clone(),
                    period: self.request.period.label(),
                    report_id: recorded.report_id.clone(),
                    resumed: true,
                });
                ServerReport {
                    id: recorded.report_id.clone(),
                    version: recorded.version,
                    since: Instant::now(),
                    created_now: false,
                }
            }
            _ => match self.create().await {
                Ok(report) => report,
                Err(result) => return *result,
            },
        };
        let ready = match self.wait(&report).await {
            // A report taken over from an earlier run that the server no longer knows, or that
            // failed there, is created anew: a re-run is how a user retries.
            Err(
                error @ (PollError::Api(ApiError::Status { status: 404, .. })
                | PollError::Failed(_)),
            ) if !report.created_now => {
                tracing::warn!(
                    "{label}: recorded report {} cannot be used ({error}); creating a new one",
                    report.id
                );
                report = match self.create().await {
                    Ok(report) => report,
                    Err(result) => return *result,
                };
                self.wait(&report).await
            }
            other => other,
        };
        let Waited {
            files: ready,
            timing,
        } = match ready {
            Ok(ready) => ready,
            Err(error) => {
                tracing::error!("{label}: report {} failed: {error}", report.id);
                return failed(&self.request, Some(report.id), error.to_string());
            }
        };
        tracing::info!(
            "{label}: report {} is ready after {:.1}s",
            report.id,
            report.since.elapsed().as_secs_f64()
        );
        self.observer.on(Event::Ready {
            index: self.request.index,
            tenant: self.request.tenant_name.clone(),
            period: self.request.period.label(),
            report_id: report.id.clone(),
            waited_ms: u64::try_from(report.since.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        let mut result = self
            .collect_files(&report.id, &ready, recorded.as_ref())
            .await;
        result.timing = timing;
        if result.status == Status::Ok && self.config.cleanup == Cleanup::Delete {
            self.delete(&report, &mut result).await;
        }
        result
    }

    async fn create(&self) -> Result<ServerReport, Box<ReportResult>> {
        let label = self.label();
        // Its generation time counts from the moment the request that created it was sent: the
        // server cannot have started before, so a late answer (a loaded machine, a slow link)
        // never makes a report look faster than it was; nor does the journal's sync below.
        let (created, since) = self.create_when_history_is_ready().await.map_err(|error| {
            tracing::error!("{label}: {error}");
            Box::new(failed(&self.request, None, error.to_string()))
        })?;
        // Recorded before anything else happens to the report, so a re-run never creates it again.
        if let Err(error) =
            self.state
                .record_created(&self.key, &self.request, &created.id, created.version)
        {
            tracing::error!(
                "{label}: cannot record report {} in {}: {error}",
                created.id,
                self.state.path().display()
            );
            return Err(Box::new(failed(
                &self.request,
                Some(created.id),
                format!(
                    "cannot record the report in the resume state ({error}); stopped to avoid creating it twice on a re-run"
                ),
            )));
        }
        tracing::info!("{label}: created report {}", created.id);
        self.observer.on(Event::Created {
            index: self.request.index,
            tenant: self.request.tenant_name.clone(),
            period: self.request.period.label(),
            report_id: created.id.clone(),
            resumed: false,
        });
        Ok(ServerReport {
            id: created.id,
            version: created.version,
            since,
            created_now: true,
        })
    }

    /// `POST /reports`, asked again with backoff while the server says the usage history is
    /// late (it created nothing then), until `polling.timeout` has passed since the first try.
    /// With the report, the moment the request that created it was sent.
    async fn create_when_history_is_ready(&self) -> Result<(CreatedReport, Instant), CreateError> {
        let body = create_body(&self.request);
        let polling = &self.config.polling;
        let started = Instant::now();
        let mut backoff = Backoff::new(polling.initial_interval, polling.max_interval);
        loop {
            let sent = Instant::now();
            let error = match self.client.create_report(&body).await {
                Ok(created) => return Ok((created, sent)),
                Err(error) => error,
            };
            match error.usage_history_not_ready() {
                None => return Err(CreateError::Api(error)),
                Some(UsageHistory::NotYetDue) => return Err(CreateError::HistoryNotYetDue(error)),
                Some(UsageHistory::Overdue) => {
                    let wait = error.retry_after().unwrap_or_else(|| backoff.next_delay());
                    if started.elapsed() + wait > polling.timeout {
                        return Err(CreateError::HistoryOverdue {
                            waited: started.elapsed(),
                            source: error,
                        });
                    }
                    tracing::warn!(
                        "{}: the usage history is late; asking again in {:.1}s ({error})",
                        self.label(),
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn wait(&self, report: &ServerReport) -> Result<Waited, PollError> {
        let waiting = poll::Waiting {
            report_id: &report.id,
            formats: &self.request.formats,
            created: report.since,
            created_here: report.created_now,
            expected: self.expected,
        };
        poll::wait_until_ready(
            &self.client,
            &waiting,
            &self.config.polling,
            &self.generation,
        )
        .await
    }

    /// `cleanup: delete`: removes the report on the server once its files are on disk. A failure
    /// is a warning; the files are what matters.
    async fn delete(&self, report: &ServerReport, result: &mut ReportResult) {
        let label = self.label();
        let Some(version) = report.version else {
            result.warnings.push(format!(
                "report {} was not deleted: the server gave no version for it",
                report.id
            ));
            return;
        };
        match self.client.delete_report(&report.id, version).await {
            Ok(()) => {
                tracing::info!("{label}: deleted report {} on the server", report.id);
                if let Err(error) = self.state.record_deleted(&self.key, &report.id) {
                    tracing::warn!("{label}: could not record the deletion: {error}");
                }
            }
            Err(error) => {
                tracing::warn!("{label}: could not delete report {}: {error}", report.id);
                result.warnings.push(format!(
                    "report {} was not deleted on the server: {error}",
                    report.id
                ));
            }
        }
    }
}
