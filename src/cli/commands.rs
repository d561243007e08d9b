use std::path::Path;
use std::sync::Arc;

use acronis_reports::api::{self, Client, ClientOptions, Credentials};
use acronis_reports::discover;
use acronis_reports::download;
use acronis_reports::history::{self, History};
use acronis_reports::job::{self, Job};
use acronis_reports::output;
use acronis_reports::plan::{self, Plan};
use acronis_reports::results::DiscoveryRecord;
use acronis_reports::results::{JobRef, RunResult, ShardInfo, Tool};
use acronis_reports::run::{self, RunConfig, Runner};
use acronis_reports::secret::Secret;
use acronis_reports::shard::{self, ShardSpec};
use acronis_reports::state::StateStore;
use acronis_reports::{duration, merge, verify};
use jiff::Timestamp;
use jiff::civil::Date;

use super::args::{
    CompareArgs, CompareFormat, ConnectionArgs, DoctorArgs, JobArgs, MergeArgs, PlanArgs, RunArgs,
    SandboxArgs, SchemaArgs, VerifyArgs,
};
use super::signals::Interruption;
use super::simulator;
use super::{EXIT_FAILED, EXIT_OK, Fatal};

type Outcome = Result<u8, Fatal>;

fn today_utc() -> Date {
    Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
}

fn load_job(args: &JobArgs) -> Result<Job, Fatal> {
    let today = today_utc();
    let as_of = args.as_of.unwrap_or(today);
    check_as_of(as_of, today, args.allow_future_as_of)?;
    job::load(&args.job, as_of).map_err(|e| Fatal::job(&e))
}

/// A day after today would let periods that have not happened pass; a year before 2000 is a
/// typo (and `0001-01-01` made a period `0000-12`). The platform's usage data starts later still.
fn check_as_of(as_of: Date, today: Date, allow_future: bool) -> Result<(), Fatal> {
    if as_of.year() < 2000 {
        return Err(Fatal::input(format!(
            "--as-of {as_of} is before the year 2000; give the day the periods are resolved against, e.g. --as-of {today}"
        )));
    }
    if as_of > today && !allow_future {
        return Err(Fatal::input(format!(
            "--as-of {as_of} is after today ({today}, UTC): periods would include days not measured yet; pass --allow-future-as-of if that is meant"
        )));
    }
    Ok(())
}

/// The async runtime, with room for `downloads` downloads at once: each holds
/// [`download::THREADS_PER_DOWNLOAD`] blocking threads until it ends, and a download whose
/// threads had to queue for a place would hold up the ones it already has.
fn runtime(downloads: usize) -> Result<tokio::runtime::Runtime, Fatal> {
    const TOKIO_DEFAULT_BLOCKING_THREADS: usize = 512;
    // Room for the other blocking work as well: file-system calls, journal writes.
    let blocking = download::THREADS_PER_DOWNLOAD * downloads + 64;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking.max(TOKIO_DEFAULT_BLOCKING_THREADS))
        .build()
        .map_err(|e| Fatal::failed(format!("cannot start the async runtime: {e}")))
}

pub fn validate(args: JobArgs) -> Outcome {
    let job = load_job(&args)?;
    let plan = plan::build(&job);
    println!(
        "{} is valid: {} tenant(s), {} report(s), as of {}",
        args.job.display(),
        job.tenants.len(),
        plan.reports.len(),
        job.as_of
    );
    print_plan_lines(&plan);
    for discovery in &job.discoveries {
        let kinds: Vec<&str> = discovery.kinds.iter().map(|k| k.as_str()).collect();
        println!(
            "  + children of {} ({}{}), listed when the job runs; `plan` shows them",
            discovery.parent_id,
            kinds.join(", "),
            if discovery.recursive {
                ", recursive"
            } else {
                ""
            }
        );
    }
    Ok(EXIT_OK)
}

fn print_plan_lines(plan: &Plan) {
    for report in &plan.reports {
        let formats: Vec<&str> = report.formats.iter().map(|f| f.as_str()).collect();
        println!(
            "  {}  {}  {} ({} .. {})  {} / {}  [{}]",
            report.dir,
            report.tenant_id,
            report.period,
            report.period.start,
            report.period.end,
            report.kind,
            report.level,
            formats.join(", ")
        );
    }
}

pub fn plan(args: PlanArgs) -> Outcome {
    let job = load_job(&args.job)?;
    let (plan, discovery) = if job.discoveries.is_empty() {
        (plan::build(&job), Vec::new())
    } else {
        // `children_of` entries are only known by asking the API.
        runtime(0)?.block_on(async {
            let connection = Connection::open(&args.connection, &job, false).await?;
            let planned = full_plan(&connection.client, &job).await;
            connection.close().await;
            planned
        })?
    };
    if args.json {
        print_plan_json(&job, &plan, &discovery)
            .map_err(|e| Fatal::failed(format!("cannot print the plan: {e}")))?;
    } else {
        println!(
            "{} report(s) as of {}, {} at a time, each given up after {}:",
            plan.reports.len(),
            job.as_of,
            job.concurrency,
            duration::format(job.polling.timeout)
        );
        for report in &plan.reports {
            let body = serde_json::to_string(&run::create_body(report))
                .map_err(|e| Fatal::failed(format!("cannot print the plan: {e}")))?;
            println!("POST /api/2/reports {body}");
        }
    }
    Ok(EXIT_OK)
}

/// One line of `plan --json`'s `reports`.
#[derive(serde::Serialize)]
struct PlannedReport<'a> {
    tenant_id: &'a str,
    tenant_name: &'a str,
    period: &'a acronis_reports::period::Period,
    kind: &'a acronis_reports::report::ReportKind,
    level: &'a acronis_reports::report::ReportLevel,
    files: Vec<String>,
    sku_check: &'a acronis_reports::job::SkuPolicy,
    request: acronis_reports::api::CreateReport,
}

/// The plan as one JSON document, written report by report: a plan of 10 000 reports never
/// sits in memory twice.
fn print_plan_json(job: &Job, plan: &Plan, discovery: &[DiscoveryRecord]) -> std::io::Result<()> {
    use std::io::Write;
    let header = serde_json::json!({
        "job": {"path": portable_path(&job.path), "sha256": job.sha256},
        "as_of": job.as_of,
        "concurrency": job.concurrency,
        "polling": {
            "initial_interval": duration::format(job.polling.initial_interval),
            "max_interval": duration::format(job.polling.max_interval),
            "timeout": duration::format(job.polling.timeout),
        },
        "discovery": discovery,
    });
    let header = serde_json::to_string_pretty(&header)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // The header object without its closing brace, then the reports, one per line.
    out.write_all(
        header
            .trim_end()
            .trim_end_matches('}')
            .trim_end()
            .as_bytes(),
    )?;
    out.write_all(b",\n  \"reports\": [")?;
    for (i, r) in plan.reports.iter().enumerate() {
        out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
        // Serialised straight from the request, not through a `serde_json::Value`: building
        // and dropping ten thousand maps was a fifth of `plan --json`'s time.
        serde_json::to_writer(
            &mut out,
            &PlannedReport {
                tenant_id: &r.tenant_id,
                tenant_name: &r.tenant_name,
                period: &r.period,
                kind: &r.kind,
                level: &r.level,
                files: r.formats.iter().map(|f| r.file_path(*f)).collect(),
                sku_check: &r.sku_check,
                request: run::create_body(r),
            },
        )?;
    }
    out.write_all(b"\n  ]\n}\n")?;
    out.flush()
}

pub fn schema(args: &SchemaArgs) -> Outcome {
    if args.modeline {
        println!("{}", job::modeline());
        return Ok(EXIT_OK);
    }
    let text = serde_json::to_string_pretty(&job::json_schema())
        .map_err(|e| Fatal::failed(format!("cannot print the schema: {e}")))?;
    println!("{text}");
    Ok(EXIT_OK)
}

pub fn verify(args: VerifyArgs) -> Outcome {
    let report = match &args.period {
        Some(period) => verify::verify_period(&args.dir, period),
        None => verify::verify(&args.dir),
    }
    .map_err(Fatal::input)?;
    println!("{report}");
    Ok(if report.is_clean() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

pub fn compare(args: CompareArgs) -> Outcome {
    use acronis_reports::output::compare;
    let before = compare::read_usage(&args.dir, &args.from).map_err(Fatal::input)?;
    let after = compare::read_usage(&args.dir, &args.to).map_err(Fatal::input)?;
    let changes = compare::diff(&before, &after);
    let printed = match args.format {
        CompareFormat::Csv => compare::write_csv(&changes, std::io::stdout().lock()),
        CompareFormat::Markdown => {
            use std::io::Write;
            let text = compare::render_section(&changes, &compare::CompareOptions::default());
            std::io::stdout().lock().write_all(text.as_bytes())
        }
    };
    printed.map_err(|e| Fatal::failed(format!("cannot print the comparison: {e}")))?;
    Ok(EXIT_OK)
}

/// `doctor`: the checklist on standard output (text or JSON), a count on standard error; exit 0
/// when every check passed, 2 otherwise.
pub fn doctor(args: DoctorArgs) -> Outcome {
    use acronis_reports::doctor;
    let mut options = doctor::Options::new(doctor::Environment::from_process());
    options.job = args.job;
    options.base_url = args.base_url;
    options.create_test_report = args.create_test_report;
    // Masks go to standard output, which --json keeps for the document alone.
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") && !args.json {
        options.on_new_secret = Some(Arc::new(|secret: &str| {
            acronis_reports::ci::github::print_masks(&[secret.to_owned()]);
        }));
    }
    let report = runtime(0)?.block_on(doctor::examine(options));
    if args.json {
        print!("{}", doctor::render_json(&report));
    } else {
        print!("{}", doctor::render_text(&report));
        if super::progress::human_stderr() {
            eprintln!("doctor: {}", doctor::summary(&report));
        }
    }
    Ok(if report.ok {
        EXIT_OK
    } else {
        super::EXIT_NOTHING_ATTEMPTED
    })
}

pub fn sandbox(args: SandboxArgs) -> Outcome {
    runtime(0)?.block_on(async {
        let sandbox = simulator::start(args.scenario.as_deref(), args.port).await?;
        // The sandbox's credentials are fixed, public test values, not secrets.
        println!(
            "Sandbox of the Acronis reports API listening on {}",
            sandbox.base_url()
        );
        println!("  export ACRONIS_BASE_URL={}", sandbox.base_url());
        println!("  export ACRONIS_CLIENT_ID={}", sandbox.client_id());
        println!("  export ACRONIS_CLIENT_SECRET={}", sandbox.client_secret());
        println!(
            "Statistics: {}/_sandbox/stats · stop with Ctrl-C",
            sandbox.base_url()
        );
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Fatal::failed(format!("cannot wait for Ctrl-C: {e}")))?;
        sandbox.shutdown().await;
        Ok(EXIT_OK)
    })
}

/// Where the API is and who we are, from flags, then environment, then the job file.
struct Target {
    base_url: String,
    credentials: Credentials,
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn target_from_environment(args: &ConnectionArgs, job: &Job) -> Result<Target, Fatal> {
    let base_url = args
        .base_url
        .clone()
        .or_else(|| env_value("ACRONIS_BASE_URL"))
        .or_else(|| job.base_url.clone())
        .ok_or_else(|| {
            Fatal::input(
                "no API URL: pass --base-url, set ACRONIS_BASE_URL, or set api.base_url in the job file (e.g. https://eu2-cloud.acronis.com); or try the job with --sandbox",
            )
        })?;
    let credentials = match (
        env_value("ACRONIS_CLIENT_ID"),
        env_value("ACRONIS_CLIENT_SECRET").map(Secret::new),
        env_value("ACRONIS_TOKEN").map(Secret::new),
    ) {
        (Some(id), Some(secret), _) => Credentials::Client { id, secret },
        (Some(_), None, None) => {
            return Err(Fatal::input(
                "ACRONIS_CLIENT_ID is set but ACRONIS_CLIENT_SECRET is not; set both",
            ));
        }
        (None, Some(_), None) => {
            return Err(Fatal::input(
                "ACRONIS_CLIENT_SECRET is set but ACRONIS_CLIENT_ID is not; set both",
            ));
        }
        (_, _, Some(token)) => Credentials::Token(token),
        (None, None, None) => {
            return Err(Fatal::input(
                "no credentials: set ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET (an API client from the management console), or ACRONIS_TOKEN; or try the job with --sandbox",
            ));
        }
    };
    Ok(Target {
        base_url,
        credentials,
    })
}

/// `--shard I/N`, else GitLab's CI_NODE_INDEX/CI_NODE_TOTAL (unless `--no-shard`), else none.
fn resolve_shard(args: &RunArgs) -> Result<Option<ShardSpec>, Fatal> {
    if args.shard.is_some() || args.no_shard {
        return Ok(args.shard);
    }
    let shard = shard::from_ci_env(|name| std::env::var(name).ok())
        .map_err(|e| Fatal::input(format!("{e} (or pass --shard I/N, or --no-shard)")))?;
    if let Some(shard) = shard {
        tracing::info!(
            "running shard {shard} as set by {} and {} (--no-shard runs every report)",
            shard::CI_NODE_INDEX,
            shard::CI_NODE_TOTAL
        );
    }
    Ok(shard)
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

pub fn merge(args: MergeArgs) -> Outcome {
    let merged = merge::merge(&args.shards, &args.out).map_err(|e| match e {
        merge::MergeError::Refused(message) => Fatal::input(format!(
            "{message}; nothing was written to {}",
            args.out.display()
        )),
        merge::MergeError::Write(message) => Fatal::failed(message),
    })?;
    let result = &merged.result;
    println!(
        "merged {} shard(s): {} of {} report(s) ok, {} file(s) copied into {} (see {})",
        merged.shards,
        result.ok_count(),
        result.reports.len(),
        merged.copied,
        args.out.display(),
        args.out.join(output::SUMMARY).display()
    );
    print_failures(result);
    Ok(if result.failed_count() == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// A connection to the API: the target and, with `--sandbox`, the sandbox serving it.
struct Connection {
    client: Arc<Client>,
    sandbox: Option<simulator::Running>,
    base_url: String,
}

impl Connection {
    /// Starts the sandbox if asked, builds the client and checks the credentials, so that
    /// refused credentials stop everything before a report is created or a file written.
    /// With `github`, every credential the client derives or fetches (the Basic value, each
    /// token) is masked with `::add-mask::` before anything could print it.
    async fn open(args: &ConnectionArgs, job: &Job, github: bool) -> Result<Self, Fatal> {
        let (sandbox, target) = if args.sandbox {
            let sandbox = simulator::start(args.sandbox_scenario.as_deref(), 0).await?;
            tracing::info!("using the built-in sandbox at {}", sandbox.base_url());
            let target = Target {
                base_url: sandbox.base_url(),
                credentials: Credentials::Client {
                    id: sandbox.client_id().to_owned(),
                    secret: Secret::new(sandbox.client_secret()),
                },
            };
            (Some(sandbox), target)
        } else {
            (None, target_from_environment(args, job)?)
        };
        let base = api::api_base(&target.base_url).map_err(Fatal::input)?;
        let mut client = Client::new(base, target.credentials, ClientOptions::default())
            .map_err(Fatal::input)?;
        if github {
            acronis_reports::ci::github::print_masks(&client.derived_secrets());
            client = client.on_new_secret(std::sync::Arc::new(|token: &str| {
                acronis_reports::ci::github::print_masks(&[token.to_owned()]);
            }));
        }
        client.authenticate().await.map_err(Fatal::input)?;
        // One spelling for the journal and the manifest, however the URL was written.
        let base_url = api::canonical_base(client.base_url());
        Ok(Self {
            client: Arc::new(client),
            sandbox,
            base_url,
        })
    }

    async fn close(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}

/// The job's full plan, with `children_of` entries expanded through the API.
async fn full_plan(client: &Client, job: &Job) -> Result<(Plan, Vec<DiscoveryRecord>), Fatal> {
    if job.discoveries.is_empty() {
        return Ok((plan::build(job), Vec::new()));
    }
    let expansion = discover::expand(client, job).await.map_err(Fatal::input)?;
    for record in &expansion.records {
        let included = record.tenants.iter().filter(|t| t.included).count();
        tracing::info!(
            "children of {}: {included} of {} listed tenant(s) in scope",
            record.children_of,
            record.tenants.len()
        );
    }
    Ok((plan::build_for(job, &expansion.tenants), expansion.records))
}

pub fn run(args: RunArgs) -> Outcome {
    let ci = acronis_reports::ci::Context::start(args.ci, args.junit.clone(), args.dotenv.clone());
    let shard = resolve_shard(&args)?;
    let mut job = load_job(&args.job)?;
    if !args.connection.sandbox {
        // Missing credentials are reported before anything starts.
        target_from_environment(&args.connection, &job)?;
    }
    let out_dir = args.out.clone().unwrap_or_else(|| job.output_dir.clone());
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(Fatal::input(format!(
            "output folder {} exists and is not a folder",
            out_dir.display()
        )));
    }
    if let Some(dir) = &args.history
        && !dir.is_dir()
    {
        return Err(Fatal::input(format!(
            "--history {}: not a folder; give the output folder of earlier runs (the trail), or leave the option out",
            dir.display()
        )));
    }
    runtime(job.concurrency)?.block_on(async move {
        let github = ci.provider == acronis_reports::ci::Provider::GitHub;
        let connection = Connection::open(&args.connection, &job, github).await?;
        let outcome = async {
            let (plan, discovery) = full_plan(&connection.client, &job).await?;
            let (plan, shard) = shard_plan(plan, shard);
            // Every tenant is in the plan now; the list would only hold memory to the end.
            job.tenants = Vec::new();
            let run = Run {
                job: &job,
                plan,
                discovery,
                out_dir: &out_dir,
                fresh: args.fresh,
                history: if args.no_history {
                    None
                } else {
                    Some(args.history.as_deref().unwrap_or(&out_dir))
                },
                ci: &ci,
                shard,
            };
            execute(&connection, run).await
        }
        .await;
        connection.close().await;
        outcome
    })
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
    ci: &'a acronis_reports::ci::Context,
    shard: Option<ShardInfo>,
}

async fn execute(connection: &Connection, run: Run<'_>) -> Outcome {
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
    std::fs::create_dir_all(out_dir).map_err(|e| {
        Fatal::input(format!(
            "cannot create the output folder {}: {e}",
            out_dir.display()
        ))
    })?;
    let base_url = connection.base_url.clone();
    let state = StateStore::open(out_dir, &base_url, fresh).map_err(|e| {
        if e.kind() == std::io::ErrorKind::ResourceBusy {
            // Another run's lock: the message says so, and the resume state itself is fine.
            return Fatal::input(e.to_string());
        }
        Fatal::input(format!(
            "cannot open the resume state in {}: {e}",
            out_dir.display()
        ))
    })?;
    if state.holds_lock() {
        // With the lock held no other run writes here: hidden temporary files are a killed
        // run's leftovers (up to a report's size each), and nothing will ever finish them.
        let removed = acronis_reports::disk::remove_stale_temp_files(out_dir);
        if removed > 0 {
            tracing::info!("removed {removed} temporary file(s) left by an interrupted run");
        }
    }
    // The earlier deliveries of the periods this run covers are read before anything is
    // created: a damaged record stops the run here, not after its reports were fetched.
    let labels = plan.reports.iter().map(|r| r.period.label()).collect();
    let trail =
        output::trail::Trail::open(out_dir, labels).map_err(|e| Fatal::input(e.to_string()))?;
    // A tenant folder that holds another tenant's sealed files is refused before anything is
    // created: the period could not take this run's files without losing those.
    let wanted = plan.reports.iter().flat_map(|request| {
        request.formats.iter().map(|format| output::trail::Wanted {
            tenant_id: &request.tenant_id,
            tenant_name: &request.tenant_name,
            path: request.file_path(*format),
        })
    });
    trail
        .check_wanted(wanted)
        .map_err(|e| Fatal::input(e.to_string()))?;
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
    let _lines = state
        .holds_lock()
        .then(|| {
            let dir = out_dir.join(acronis_reports::state::STATE_DIR);
            acronis_reports::content::spill::install(&dir)
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
    let interruption = Interruption::listen();
    let progress = super::progress::Progress::start(
        plan.reports.len(),
        ci.provider == acronis_reports::ci::Provider::GitHub,
    );
    let runner = Runner {
        observer: progress.observer(),
        client: connection.client.clone(),
        state: Arc::new(state),
        config: Arc::new(RunConfig::for_job(job, out_dir)),
        cancel: interruption.cancel.clone(),
        history: Arc::new(history),
    };
    let reports = run::execute(&runner, plan).await;
    let took = clock.elapsed();
    progress.finish();
    let reports = reports.map_err(|e| {
        Fatal::failed(format!(
            "{e}; what finished is in the resume journal in {}: run again to finish",
            out_dir.display()
        ))
    })?;
    // Credentials refused before any report succeeded: exit 2 and no outputs, as when the token
    // endpoint refuses them up front, so the outputs of an earlier run stay as they were.
    if let Some(reason) = connection.client.refused()
        && reports.ok_count() == 0
        && interruption.exit_code().is_none()
    {
        return Err(Fatal::input(reason.to_owned()));
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
        .map_err(|e| Fatal::failed(format!("reading the run's results back: {e}")))?;
    let options = output::trail::CommitOptions {
        compare: job.compare.clone(),
        sections: timing.into_iter().collect(),
    };
    let result = trail
        .commit(result, &options)
        .map_err(|e| Fatal::failed(format!("writing the outputs in {}: {e}", out_dir.display())))?;
    acronis_reports::ci::publish(ci, &result, out_dir, interruption.exit_code())
        .map_err(Fatal::failed)?;
    let files = result.reports.file_count();
    let summary = out_dir.join("summary.md");
    if let Some(code) = interruption.exit_code() {
        if super::progress::human_stderr() {
            eprintln!(
                "interrupted: {} of {} report(s) finished; the state is saved, run again to resume",
                result.ok_count(),
                result.reports.len()
            );
        }
        return Ok(code);
    }
    if result.failed_count() == 0 {
        println!(
            "{} report(s) ok, {files} file(s) in {} (see {})",
            result.ok_count(),
            out_dir.display(),
            summary.display()
        );
        Ok(EXIT_OK)
    } else {
        print_failures(&result);
        println!(
            "{} of {} report(s) failed; {files} file(s) in {} (see {})",
            result.failed_count(),
            result.reports.len(),
            out_dir.display(),
            summary.display()
        );
        Ok(EXIT_FAILED)
    }
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

/// One line per failed report on stderr, for people; the JSON event log already has them.
fn print_failures(result: &RunResult) {
    if !super::progress::human_stderr() {
        return;
    }
    // A record that cannot be read back has already failed writing the outputs.
    for report in result
        .reports
        .iter()
        .flatten()
        .filter(|r| r.error.is_some())
    {
        // Server-chosen text: its escape sequences must not move the terminal's cursor.
        let line = format!(
            "failed: {} {}: {}",
            report.tenant_name,
            report.period,
            report.error.as_deref().unwrap_or_default()
        )
        .replace('\u{1b}', "\\u{1b}");
        eprintln!("{}", super::progress::one_log_line(&line));
    }
}

/// A path as text with `/` separators, for manifests read on any system.
fn portable_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '\\' {
        text.replace('\\', "/")
    } else {
        text.into_owned()
    }
}
