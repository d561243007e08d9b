//! Words shared by `--help` and the man page: where the job format is described, the
//! environment, the exit codes, the files, examples. One list each, so the two never disagree.

/// (variable, what it does) for every environment variable the program reads.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "ACRONIS_CLIENT_ID, ACRONIS_CLIENT_SECRET",
        "an API client's credentials (run, doctor, plan with children_of)",
    ),
    (
        "ACRONIS_TOKEN",
        "a ready bearer token, instead of the API client",
    ),
    (
        "ACRONIS_BASE_URL",
        "the data-center URL; --base-url wins, it wins over the job file's api.base_url",
    ),
    (
        "CI, GITHUB_ACTIONS, GITLAB_CI",
        "a CI system: one log line per state change, no live display; the CI outputs",
    ),
    (
        "GITHUB_OUTPUT, GITHUB_STEP_SUMMARY",
        "where the GitHub outputs and step summary go",
    ),
    (
        "CI_NODE_INDEX, CI_NODE_TOTAL",
        "run one shard (GitLab `parallel:`), unless --shard or --no-shard",
    ),
    (
        "HTTPS_PROXY, NO_PROXY",
        "the proxy for the API, as for other tools",
    ),
    (
        "NO_COLOR, CLICOLOR_FORCE",
        "turn colours off, or on where standard error is not a terminal",
    ),
    ("RUST_LOG", "the log filter, e.g. acronis_reports=debug"),
];

/// (code, meaning) of every exit status.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "every report is ok and every check passed"),
    (
        "1",
        "the run finished but a report or a required check failed (good files are still written); for verify, a missing, extra or changed file",
    ),
    (
        "2",
        "nothing was attempted: bad arguments, an invalid job file, missing or refused credentials; for doctor, a check failed",
    ),
];

/// (path, what it is) of the files a run reads and writes.
pub const FILES: &[(&str, &str)] = &[
    (
        "JOB.yml",
        "the job file; its format: `acronis-reports schema` (JSON Schema) and the README's \"The job file\"",
    ),
    (
        "billing-reports/",
        "the output folder (output.dir or --out), one folder per period: PERIOD/ holds the TENANT/KIND.FORMAT files, billing.csv, manifest.json, summary.md and their SHA256SUMS; the top holds the run's manifest.json and summary.md and a SHA256SUMS over those and every PERIOD/SHA256SUMS",
    ),
];

/// (command, what it does) examples.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "acronis-reports run examples/monthly.yml --sandbox",
        "try a job against the built-in sandbox, without credentials",
    ),
    (
        "acronis-reports doctor job.yml",
        "check URL, network, TLS, credentials and the job's tenants before a run; creates nothing",
    ),
    (
        "acronis-reports validate job.yml",
        "check a job file and list its reports; touches no network",
    ),
    (
        "acronis-reports schema --modeline",
        "the first line for a job file, so editors check it as it is typed",
    ),
    (
        "acronis-reports verify billing-reports",
        "check an output folder against its checksums",
    ),
];

fn list(title: &str, rows: &[(&str, &str)]) -> String {
    let mut out = format!("{title}:\n");
    for (name, what) in rows {
        out.push_str(&format!("  {name}\n          {what}\n"));
    }
    out
}

/// The end of `run --help`: where the job format is, the environment and the exit codes.
pub fn run_after_help() -> String {
    format!(
        "The job file:\n  `acronis-reports schema` prints its JSON Schema (`schema --modeline` the line that \
         points editors at it); the README's \"The job file\" section describes every key; \
         `acronis-reports man` prints the manual.\n\n{}\n{}",
        list("Environment", ENVIRONMENT),
        list("Exit status", EXIT_STATUS)
    )
}

/// The sandbox's scenario keys with what each does (`sandbox --help`).
pub const SCENARIO_KEYS: &[(&str, &str)] = &[
    (
        "client_id, client_secret",
        "the API client the token endpoint accepts",
    ),
    ("generation_delay", "from create to `saved`, e.g. 3s"),
    (
        "generation_jitter",
        "relative jitter of that delay, 0 to <1 (0.3 = ±30 %)",
    ),
    (
        "generation_spread, generation_floor",
        "each tenant its own fixed time: log-normal σ around generation_delay (the median), drawn from its id, above a floor",
    ),
    ("token_lifetime", "lifetime of issued tokens"),
    ("response_delay", "extra latency before every answer"),
    (
        "gzip, gzip_without_header",
        "compressed downloads, with or without Content-Encoding",
    ),
    ("tenants", "per tenant UUID: fail, delays, content keys"),
    (
        "faults",
        "injected faults (status codes, resets, truncation), checked in order",
    ),
    (
        "duplicate_stored",
        "also list an older stored file per format",
    ),
    (
        "empty_stored_list_at_first",
        "no stored files for the first third of the generation time",
    ),
    ("pad_bytes", "extra rows appended to every csv_v2_0 file"),
    (
        "deterministic_ids",
        "ids derived from the request, for comparing runs",
    ),
    (
        "tenant_tree",
        "tenants under /tenants/{id}/children (default: a partner with customers, a sub-partner, a disabled and a trial customer)",
    ),
    ("children_page_size", "page size of the children listing"),
    (
        "content",
        "layout of the report files: columns, order, extra rows",
    ),
];

/// The end of `sandbox --help`: what a scenario file may contain.
pub fn sandbox_after_help() -> String {
    format!(
        "{}\nEvery key is optional; the README's \"Trying it\" section has an example.",
        list("A scenario file (YAML) may contain", SCENARIO_KEYS)
    )
}

/// Escapes text for roff: backslashes and dashes (which roff would turn into hyphens).
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    // A line starting with `.` or `'` would be read as a request.
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

/// A man-page section of tagged paragraphs.
pub fn man_section(title: &str, rows: &[(&str, &str)]) -> String {
    let mut out = format!(".SH {title}\n");
    for (name, what) in rows {
        out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(name), roff(what)));
    }
    out
}

/// The COMMANDS section: each subcommand by name and what it does (this page is the only one,
/// so it names no other pages).
pub fn man_commands(cmd: &clap::Command) -> String {
    let mut out = ".SH COMMANDS\n".to_owned();
    let mut subs: Vec<&clap::Command> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    subs.sort_by_key(|s| s.get_display_order());
    for sub in subs {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        out.push_str(&format!(
            ".TP\n\\fBacronis\\-reports {}\\fR\n{}\n",
            roff(sub.get_name()),
            roff(&about)
        ));
    }
    out.push_str(".PP\n`acronis\\-reports COMMAND \\-\\-help` describes each command's options.\n");
    out
}
