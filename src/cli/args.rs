use std::path::PathBuf;

use acronis_reports::ci::Provider;
use acronis_reports::shard::ShardSpec;
use clap::{Args, Parser, Subcommand, ValueEnum};
use jiff::civil::Date;

/// Turn a YAML job file into verified, checksummed billing reports from the Acronis Cyber
/// Protect Cloud reports API.
///
/// Credentials come from the environment only: ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET (an
/// API client), or ACRONIS_TOKEN (a ready bearer token). ACRONIS_BASE_URL is the data-center URL.
/// Exit codes: 0 all reports ok; 1 some report or required check failed; 2 nothing was attempted
/// (bad arguments, invalid job file, missing or refused credentials).
///
/// Progress and logs go to standard error: on a terminal `run` shows a live progress display;
/// in CI (CI, GITHUB_ACTIONS or GITLAB_CI set) or when standard error is not a terminal, one line
/// per state change (in a `::group::` on GitHub Actions); `--log-format json` writes one JSON
/// object per line instead (every report event with a "ts" timestamp; warnings and errors as
/// {"event":"log","level":...,"message":...}). NO_COLOR turns colours off; RUST_LOG sets the
/// log filter.
/// Shell completions: `acronis-reports completions SHELL`; man page: `acronis-reports man`.
#[derive(Debug, Parser)]
#[command(
    name = "acronis-reports",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    // The logging options are global (they may follow the subcommand), so every subcommand's
    // help lists them: one line each here, the details once in the top-level help. Their
    // display order is fixed after every subcommand's own options (and before -h and -V, at
    // clap's 999): left to clap, it would follow the count of subcommands, which numbers
    // these from the same counter, and mix them into a subcommand's options.
    /// More detail in the log (repeat for even more).
    #[arg(
        short,
        long,
        global = true,
        action = clap::ArgAction::Count,
        conflicts_with = "quiet",
        display_order = 900
    )]
    pub verbose: u8,
    /// Only warnings and errors in the log, and no progress display.
    #[arg(short, long, global = true, display_order = 901)]
    pub quiet: bool,
    /// The log on standard error: text for people, or json (one object per line; see
    /// `acronis-reports --help`).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        display_order = 902
    )]
    pub log_format: LogFormat,
}

/// The form of the log on standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people; a live progress display on a terminal.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, wait for, download and check every report of a job file.
    ///
    /// Writes one file per tenant × period × format under the output folder, plus SHA256SUMS,
    /// manifest.json and summary.md. Try it without credentials: `--sandbox`.
    #[command(after_long_help = super::help::run_after_help())]
    Run(RunArgs),
    /// Check a job file and print the reports it resolves to. Touches no network.
    Validate(JobArgs),
    /// Print every report request that `run` would send (as JSON with --json).
    Plan(PlanArgs),
    /// Check the set-up before a run: URL, network, TLS, credentials, tenants. Creates nothing.
    ///
    /// Prints a checklist, one line per check, ✔ or ✘ with what to do: ACRONIS_BASE_URL (or
    /// --base-url, or the job file's api.base_url) is a well-formed data-center URL, its host
    /// resolves, takes a TCP connection and completes TLS with a trusted certificate, and the
    /// server answers like the API; the credentials (ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET,
    /// or ACRONIS_TOKEN) are accepted; the API client's own tenant and, with a job file, every
    /// tenant it lists and every children_of root are visible. Each network step gives up after
    /// a few seconds, without retries. With --create-test-report, one small usage_current report
    /// (csv_v2_0, with SKUs) is created for the job's first tenant (else the API client's own),
    /// waited for, downloaded into a temporary folder, its SKU column checked, and deleted.
    ///
    /// Exit 0 when every check passes, 2 otherwise.
    ///
    /// Example: acronis-reports doctor billing.yml --create-test-report
    Doctor(DoctorArgs),
    /// Check an output folder's files against its SHA256SUMS and manifest.json files.
    ///
    /// In a trail: the root SHA256SUMS (every period's SHA256SUMS, the root manifest.json and
    /// summary.md), then every period folder, or only --period. Exit 0 when everything
    /// matches, 1 when a file is missing, extra or changed.
    Verify(VerifyArgs),
    /// Compare two periods of an output folder: billable values per tenant × offering item.
    ///
    /// Reads only the two periods' billing.csv (no network): new and vanished tenants and
    /// offering items, and the largest changes. Exit 0, or 2 when a period is not there.
    ///
    /// Example: acronis-reports compare billing-reports --from 2026-10 --to 2026-11 --format csv
    Compare(CompareArgs),
    /// Serve the built-in simulator of the reports API on loopback, for trying jobs and CI.
    #[command(after_long_help = super::help::sandbox_after_help())]
    Sandbox(SandboxArgs),
    /// Print the JSON Schema of the job file (for editor completion and validation).
    ///
    /// With --modeline, print the line that points yaml-language-server editors (VS Code, Neovim,
    /// Helix…) at this release's schema; put it first in a job file.
    Schema(SchemaArgs),
    /// Combine the output folders of a sharded run (`run --shard I/N`) into one folder.
    ///
    /// Give the output folder of every shard (in any order) and a new or empty --out folder.
    /// Each shard is verified first and all must come from the same job file, as-of day, API and
    /// version, with every shard 1..N present once; otherwise nothing is written (exit 2). The
    /// report files are copied into --out (nothing is downloaded; the trail shares no file
    /// with a shard), and SHA256SUMS, manifest.json and summary.md are written as an unsharded
    /// run of the job would have written them (times aside).
    /// Exit 0 when every report is ok, 1 when some report failed.
    ///
    /// Example: acronis-reports merge shard-1 shard-2 shard-3 --out billing-reports
    Merge(MergeArgs),
    /// Print the shell completion script for SHELL to standard output.
    ///
    /// Examples: `acronis-reports completions bash > /etc/bash_completion.d/acronis-reports`;
    /// `acronis-reports completions zsh > "${fpath[1]}/_acronis-reports"`;
    /// `acronis-reports completions fish > ~/.config/fish/completions/acronis-reports.fish`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to standard output.
    ///
    /// Example: `acronis-reports man > acronis-reports.1 && man ./acronis-reports.1`.
    Man,
}

/// The command line, for parsing, completions and the man page. The commands that write no log
/// get hidden copies of the logging options: clap then does not propagate the global ones into
/// them, so their help does not list options that mean nothing there (they are still accepted).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let logging: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.clone().hide(true))
        .collect();
    ["schema", "completions", "man"]
        .into_iter()
        .fold(cmd, |cmd, name| {
            cmd.mut_subcommand(name, |sub| sub.args(logging.iter().cloned()))
        })
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the `# yaml-language-server: $schema=URL` line instead of the schema.
    #[arg(long)]
    pub modeline: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job file (YAML).
    pub job: PathBuf,
    /// Resolve periods such as previous_month against this day (YYYY-MM-DD). Default: today, UTC.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub as_of: Option<Date>,
    /// Accept an --as-of after today (UTC): periods then include days not measured yet.
    #[arg(long, requires = "as_of")]
    pub allow_future_as_of: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Print the plan as JSON, including the exact request bodies.
    #[arg(long)]
    pub json: bool,
    /// Where to list `children_of` tenants; only used when the job has such entries.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Which API to talk to.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Data-center URL, e.g. https://eu2-cloud.acronis.com. Overrides ACRONIS_BASE_URL and the
    /// job file's api.base_url.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Use the built-in sandbox (started in-process) instead of a real data center; needs no
    /// credentials.
    #[arg(long, conflicts_with = "base_url")]
    pub sandbox: bool,
    /// With --sandbox: a scenario file for the sandbox (delays, injected faults, tenant tree).
    #[arg(long, value_name = "FILE", requires = "sandbox")]
    pub sandbox_scenario: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Output folder. Default: the job file's output.dir, else ./billing-reports.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Ignore the resume state of earlier runs in the output folder: create every report anew.
    #[arg(long)]
    pub fresh: bool,
    /// Read the generation times of earlier periods from this trail instead of the output
    /// folder (for a first run into a fresh folder). With them, reports start slowest tenant
    /// first and each report's polls aim at its own tenant's time.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Use no generation times of earlier periods: start reports in job-file order and learn
    /// the times during the run only.
    #[arg(long, conflicts_with = "history")]
    pub no_history: bool,
    /// The CI system to report to: github ($GITHUB_OUTPUT, step summary, annotations), gitlab
    /// (dotenv file and JUnit report in the output folder) or none. Default: detected from
    /// GITHUB_ACTIONS / GITLAB_CI.
    #[arg(long, value_name = "SYSTEM", value_parser = ci_parser())]
    pub ci: Option<Provider>,
    /// Also write a JUnit XML report here (one test case per report). Default on GitLab:
    /// junit.xml in the output folder.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write the outputs (ACRONIS_REPORTS_OK=…) as a dotenv file here. Default on GitLab:
    /// outputs.env in the output folder.
    #[arg(long, value_name = "PATH")]
    pub dotenv: Option<PathBuf>,
    /// Run only shard I of N (1-based, e.g. 2/7): a deterministic, balanced part of the job's
    /// reports, for splitting a large job over the jobs of a CI matrix; combine the shards'
    /// output folders with `merge`. Default: from CI_NODE_INDEX and CI_NODE_TOTAL when both
    /// are set (GitLab `parallel:`), else every report.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<ShardSpec>,
    /// Run every report even when CI_NODE_INDEX and CI_NODE_TOTAL are set (GitLab also sets
    /// them for `parallel: matrix:` jobs, which may mean something else).
    #[arg(long, conflicts_with = "shard")]
    pub no_shard: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The output folders of all the shards of one run, in any order.
    #[arg(required = true, value_name = "SHARD_DIR")]
    pub shards: Vec<PathBuf>,
    /// Folder for the merged output; must not exist yet, or be empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A job file (YAML): also check that it reads and that its tenants are visible.
    pub job: Option<PathBuf>,
    /// Data-center URL, e.g. https://eu2-cloud.acronis.com. Overrides ACRONIS_BASE_URL and the
    /// job file's api.base_url.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Print the checklist as JSON: {"ok": bool, "checks": [{"check", "status" (pass, fail or
    /// skipped), "title", "detail", "hint", "tenant_id"}]}.
    #[arg(long)]
    pub json: bool,
    /// Also create one small report, download it into a temporary folder, check its SKU column
    /// and delete it: proves report creation and SKU access end to end.
    #[arg(long)]
    pub create_test_report: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The output folder of a run.
    pub dir: PathBuf,
    /// Check only this period of the trail (e.g. 2026-10): the root's line for its
    /// SHA256SUMS, then the period folder.
    #[arg(long, value_name = "PERIOD")]
    pub period: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The output folder (the trail) holding both periods.
    pub dir: PathBuf,
    /// The earlier period, as its folder is named (e.g. 2026-10).
    #[arg(long, value_name = "PERIOD")]
    pub from: String,
    /// The later period (e.g. 2026-11).
    #[arg(long, value_name = "PERIOD")]
    pub to: String,
    /// `markdown` (the summary's section, capped) or `csv` (every tenant × offering item).
    #[arg(long, value_enum, default_value_t = CompareFormat::Markdown)]
    pub format: CompareFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Markdown,
    Csv,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// A scenario file (YAML): delays, injected faults, the tenant tree; its keys are listed
    /// below (`sandbox --help`).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

fn ci_parser() -> impl clap::builder::TypedValueParser<Value = Provider> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Provider::NAMES)
        .map(|name| name.parse().expect("one of Provider::NAMES"))
}

fn parse_shard(text: &str) -> Result<ShardSpec, acronis_reports::shard::ShardError> {
    acronis_reports::shard::parse(text)
}

fn parse_date(text: &str) -> Result<Date, String> {
    acronis_reports::period::PeriodSpec::parse_date(text).map_err(|e| e.to_string())
}
