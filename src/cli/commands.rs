use std::sync::Arc;

use acronis_reports::job::{self, Job};
use acronis_reports::output;
use acronis_reports::plan::{self, Plan};
use acronis_reports::results::{DiscoveryRecord, RunResult};
use acronis_reports::run::{self, Observer};
use acronis_reports::session::{
    self, Connection, ConnectionOptions, Delivered, Frontend, HistorySource, ShardChoice, simulator,
};
use acronis_reports::{duration, merge, verify};
use jiff::Timestamp;
use jiff::civil::Date;
use tokio_util::sync::CancellationToken;

use super::args::{
    CompareArgs, CompareFormat, ConnectionArgs, DoctorArgs, JobArgs, MergeArgs, PlanArgs, RunArgs,
    SandboxArgs, SchemaArgs, VerifyArgs,
};
use super::signals::Interruption;
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

fn runtime(downloads: usize) -> Result<tokio::runtime::Runtime, Fatal> {
    Ok(session::runtime(downloads)?)
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
            let options = connection_options(&args.connection);
            let connection = Connection::open(&options, &job, &process_env, None).await?;
            let planned = connection.full_plan(&job).await;
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
        "job": {"path": session::portable_path(&job.path), "sha256": job.sha256},
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

/// The process's environment, as the library's `env` lookups take it.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn connection_options(args: &ConnectionArgs) -> ConnectionOptions {
    ConnectionOptions {
        base_url: args.base_url.clone(),
        sandbox: args.sandbox.then(|| args.sandbox_scenario.clone()),
    }
}

pub fn run(args: RunArgs) -> Outcome {
    let ci = acronis_reports::ci::Context::start(args.ci, args.junit.clone(), args.dotenv.clone());
    let shard = match (args.shard, args.no_shard) {
        (Some(spec), _) => ShardChoice::Given(spec),
        (None, true) => ShardChoice::All,
        (None, false) => ShardChoice::FromCi,
    };
    // Before the job file, so that a bad CI variable is named even when the job is bad too.
    let shard = session::resolve_shard(shard, &process_env)?;
    let history = match (&args.history, args.no_history) {
        (_, true) => HistorySource::Off,
        (Some(dir), false) => HistorySource::Dir(dir.clone()),
        (None, false) => HistorySource::Output,
    };
    let github = ci.provider == acronis_reports::ci::Provider::GitHub;
    let request = session::Request {
        connection: connection_options(&args.connection),
        out_dir: args.out,
        shard,
        fresh: args.fresh,
        history,
        ci,
    };
    let prepared = session::Prepared::new(load_job(&args.job)?, request, &process_env)?;
    let delivered = runtime(prepared.concurrency())?.block_on(async move {
        let mut terminal = Terminal::new(github);
        prepared.deliver(&mut terminal).await
    })?;
    Ok(report_delivery(&delivered))
}

/// What a person reads at the end of a run, and its exit code.
fn report_delivery(delivered: &Delivered) -> u8 {
    let result = &delivered.result;
    let files = delivered.file_count();
    let out_dir = &delivered.out_dir;
    let summary = out_dir.join(output::SUMMARY);
    if let Some(code) = delivered.interrupted {
        if super::progress::human_stderr() {
            eprintln!(
                "interrupted: {} of {} report(s) finished; the state is saved, run again to resume",
                result.ok_count(),
                result.reports.len()
            );
        }
        return code;
    }
    if result.failed_count() == 0 {
        println!(
            "{} report(s) ok, {files} file(s) in {} (see {})",
            result.ok_count(),
            out_dir.display(),
            summary.display()
        );
        EXIT_OK
    } else {
        print_failures(result);
        println!(
            "{} of {} report(s) failed; {files} file(s) in {} (see {})",
            result.failed_count(),
            result.reports.len(),
            out_dir.display(),
            summary.display()
        );
        EXIT_FAILED
    }
}

/// The run as a terminal or CI log shows it: the progress display, and SIGINT/SIGTERM as a
/// graceful stop.
struct Terminal {
    github: bool,
    cancel: CancellationToken,
    progress: Option<super::progress::Progress>,
    interruption: Option<Interruption>,
}

impl Terminal {
    fn new(github: bool) -> Self {
        Self {
            github,
            cancel: CancellationToken::new(),
            progress: None,
            interruption: None,
        }
    }
}

impl Frontend for Terminal {
    fn starting(&mut self, reports: usize) -> Arc<dyn Observer> {
        self.interruption = Some(Interruption::listen(self.cancel.clone()));
        let progress = super::progress::Progress::start(reports, self.github);
        let observer = progress.observer();
        self.progress = Some(progress);
        observer
    }

    fn finished(&mut self) {
        if let Some(progress) = self.progress.take() {
            progress.finish();
        }
    }

    fn cancel(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn interrupted(&self) -> Option<u8> {
        self.interruption.as_ref().and_then(Interruption::exit_code)
    }
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
