//! How a run shows what it is doing, on standard error.
//!
//! - **Bar** (text log, standard error is a terminal, not CI, no `-q`): a live indicatif display
//!   of how many reports were created and are generating, downloading, done and failed, with the
//!   elapsed time, and a final line. Log lines never tear it: every tracing line is written
//!   through the bar's `suspend` (the bar is cleared, the line printed, the bar redrawn). While
//!   it is shown, the per-report info lines of the run are left out by default (the bar counts
//!   them); warnings, errors and the other info lines still print above the bar, and `-v` or
//!   `RUST_LOG` bring every line back.
//! - **Lines** (text log in CI, in a pipe or with `-q`): the log's own lines, one per state change,
//!   never a spinner; on GitHub Actions the run's per-report lines sit in one
//!   `::group::Reports` … `::endgroup::`, closed before the run's annotations are printed.
//! - **Json** (`--log-format json`): one JSON object per line and nothing else: every
//!   [`Event`] with a `"ts"` (RFC 3339) before its own fields, and every log record as
//!   `{"ts":…,"event":"log","level":"warn","message":…}`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use acronis_reports::results::Status;
use acronis_reports::run::{Event, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::args::LogFormat;

/// How this process writes to standard error, decided once from the flags and environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Bar,
    Lines,
    Json,
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    mode: Mode,
    /// ANSI colours in text output (NO_COLOR unset and standard error a terminal).
    color: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The bar on screen, if any: tracing lines are written through it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn settings() -> Settings {
    *SETTINGS.get_or_init(|| Settings {
        mode: Mode::Lines,
        color: false,
    })
}

/// CI systems set these; a CI log is no place for a live display, even on a pseudo-terminal.
fn in_ci() -> bool {
    ["CI", "GITHUB_ACTIONS", "GITLAB_CI"].iter().any(|name| {
        std::env::var(name)
            .is_ok_and(|v| !v.trim().is_empty() && v.trim() != "false" && v.trim() != "0")
    })
}

/// Sets up logging for the process: decides the [`Mode`] and installs the tracing subscriber.
pub fn init(format: LogFormat, verbose: u8, quiet: bool) {
    let terminal = std::io::stderr().is_terminal();
    let mode = match format {
        LogFormat::Json => Mode::Json,
        LogFormat::Text if terminal && !quiet && !in_ci() => Mode::Bar,
        LogFormat::Text => Mode::Lines,
    };
    // CLICOLOR_FORCE (the common convention) asks for colours where they would not be on, e.g.
    // in a CI log that renders ANSI, or in the tests of the coloured output.
    let forced = std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0");
    let color = mode != Mode::Json
        && (forced || terminal)
        && std::env::var_os("NO_COLOR").is_none_or(|_| forced);
    let _ = SETTINGS.set(Settings { mode, color });

    let default = match (quiet, verbose, mode) {
        (true, _, _) => "warn",
        // The events carry every state change; log records add the problems.
        (false, 0, Mode::Json) => "warn",
        // The bar counts what the run's info lines would say.
        (false, 0, Mode::Bar) => "info,acronis_reports::run=warn",
        (false, 0, Mode::Lines) => "info",
        (false, 1, _) => "acronis_reports=debug,info",
        (false, _, _) => "debug",
    };
    // The certificate verifier logs every rejection as an error of its own; ours says it once,
    // with what to do.
    let default = format!("{default},rustls_platform_verifier=off");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    match mode {
        Mode::Json => {
            tracing_subscriber::registry()
                .with(filter)
                .with(JsonLog)
                .init();
        }
        Mode::Bar | Mode::Lines => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(|| LineWriter(Vec::new()))
                .with_target(false)
                .without_time()
                .with_ansi(color)
                .init();
        }
    }
}

/// Whether human-readable lines may go to standard error (false with `--log-format json`).
pub fn human_stderr() -> bool {
    settings().mode != Mode::Json
}

/// Whether standard error takes ANSI colours.
pub fn color() -> bool {
    settings().color
}

/// The error that ends the command: `error: …` (or its drawn `report`, which says `error:`
/// itself), or a JSON log record of the plain message in JSON mode.
pub fn fatal(message: &str, report: Option<&str>) {
    if human_stderr() {
        match report {
            // A drawn job-file report quotes the user's own file, under line-number gutters.
            Some(report) => eprintln!("{report}"),
            None => eprintln!("error: {}", one_log_line(message)),
        }
    } else {
        json_line(&log_record("error", message, &serde_json::Map::new()));
    }
}

fn now() -> String {
    // Milliseconds are plenty for a log, and keep the lines short.
    format!("{:.3}", jiff::Timestamp::now())
}

/// Writes one whole line to standard error, not interleaved with other threads' lines.
fn json_line(json: &str) {
    let mut line = String::with_capacity(json.len() + 1);
    line.push_str(json);
    line.push('\n');
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.flush();
}

/// `{"ts":…,"event":…, …the event's fields}`: the timestamp first, then the event as serde
/// writes it (its `event` tag first).
fn event_json(event: &Event) -> String {
    let body = serde_json::to_string(event).unwrap_or_else(|e| {
        serde_json::json!({"event": "log", "level": "error", "message": format!("cannot write an event: {e}")})
            .to_string()
    });
    let rest = body.strip_prefix('{').unwrap_or(&body);
    let ts = serde_json::Value::String(now());
    if rest == "}" {
        format!("{{\"ts\":{ts}}}")
    } else {
        format!("{{\"ts\":{ts},{rest}")
    }
}

fn log_record(
    level: &str,
    message: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> String {
    // Written by hand to keep the keys in the order of the events: ts, event, then the rest.
    let text = |value: &str| serde_json::Value::from(value).to_string();
    let mut line = format!(
        "{{\"ts\":{},\"event\":\"log\",\"level\":{},\"message\":{}",
        text(&now()),
        text(level),
        text(message)
    );
    if !fields.is_empty() {
        // Extra structured fields of the record, after the fixed ones.
        let extra = serde_json::Value::Object(fields.clone());
        let _ = write!(line, ",\"fields\":{extra}");
    }
    line.push('}');
    line
}

/// The tracing layer of JSON mode: every record as a `log` event.
struct JsonLog;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JsonLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        json_line(&log_record(&level, &fields.message, &fields.extra));
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &tracing::field::Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
        } else {
            self.extra.insert(field.name().to_owned(), value);
        }
    }
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.put(field, value.into());
    }
}

/// One formatted tracing line; written on drop, through the bar when one is on screen.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One record as exactly one line: a tenant name, server id or server message holding a line
/// break would otherwise start a line of its own, which a CI runner reads as a workflow command
/// (`::error::…`, `::add-mask::…`) or a log reader as another record. Line breaks become `\n`
/// and `\r`, other control characters (but the ESC of colours) `\u{…}`, and a line that would
/// still begin with `::` gets a leading `\`.
pub fn one_log_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' | '\u{1b}' => out.push(c),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    if out.trim_start().starts_with("::") {
        out.insert(0, '\\');
    }
    out
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let mut line = one_log_line(text.strip_suffix('\n').unwrap_or(&text));
        line.push('\n');
        let bytes = line.into_bytes();
        self.0.clear();
        let write = move || {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&bytes);
            let _ = stderr.flush();
        };
        // Cloned out of the lock: `suspend` must not run while we hold it.
        let bar = ACTIVE_BAR
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// Where a report is, as far as the display is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Generating,
    Downloading,
    Done,
    Failed,
}

/// Counts of reports per stage, kept up to date event by event.
#[derive(Debug, Default)]
struct Tally {
    stages: HashMap<usize, Stage>,
    created: usize,
    generating: usize,
    downloading: usize,
    done: usize,
    failed: usize,
}

impl Tally {
    fn count(&mut self, stage: Stage) -> &mut usize {
        match stage {
            Stage::Generating => &mut self.generating,
            Stage::Downloading => &mut self.downloading,
            Stage::Done => &mut self.done,
            Stage::Failed => &mut self.failed,
        }
    }

    fn move_to(&mut self, index: usize, stage: Stage) {
        match self.stages.insert(index, stage) {
            Some(previous) => *self.count(previous) -= 1,
            None if stage == Stage::Generating => self.created += 1,
            None => {}
        }
        *self.count(stage) += 1;
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Created { index, .. } => {
                // A recorded report that is gone is created again: counted once.
                self.move_to(*index, Stage::Generating);
            }
            Event::Ready { index, .. } => self.move_to(*index, Stage::Downloading),
            // Files reused from an earlier run come without a `created` or `ready`.
            Event::Saved { index, .. } => {
                if !self.stages.contains_key(index) {
                    self.move_to(*index, Stage::Downloading);
                }
            }
            // The last event of a report: it is counted, no longer tracked, so that what a
            // long run holds follows the reports in flight.
            Event::Finished { index, status, .. } => {
                if let Some(previous) = self.stages.remove(index) {
                    *self.count(previous) -= 1;
                }
                let stage = match status {
                    Status::Ok => Stage::Done,
                    _ => Stage::Failed,
                };
                *self.count(stage) += 1;
            }
        }
    }

    fn finished(&self) -> usize {
        self.done + self.failed
    }

    fn status_line(&self) -> String {
        format!(
            "{} created · {} generating · {} downloading · {} done · {} failed",
            self.created, self.generating, self.downloading, self.done, self.failed
        )
    }
}

/// What the observer does with each event.
enum Display {
    Bar(ProgressBar),
    Lines,
    Json,
}

struct Shared {
    display: Display,
    tally: Mutex<Tally>,
}

impl Observer for Shared {
    fn on(&self, event: Event) {
        match &self.display {
            Display::Json => json_line(&event_json(&event)),
            Display::Bar(bar) => {
                let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
                tally.apply(&event);
                bar.set_position(tally.finished() as u64);
                bar.set_message(tally.status_line());
            }
            Display::Lines => {
                self.tally
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(&event);
                // The run logs created, ready and saved itself; the end of a report is ours.
                if let Event::Finished {
                    tenant,
                    period,
                    status,
                    ..
                } = &event
                {
                    match status {
                        Status::Ok => tracing::info!("{tenant} {period}: done"),
                        _ => tracing::info!("{tenant} {period}: failed"),
                    }
                }
            }
        }
    }
}

/// The progress display of one run, from before the first report to after the last.
pub struct Progress {
    shared: Arc<Shared>,
    started: Instant,
    /// A `::group::` is open on standard error.
    group: bool,
    done: bool,
}

const GROUP_TITLE: &str = "Reports";

impl Progress {
    /// Starts the display for a run of `total` reports; `github` says the run reports to
    /// GitHub Actions, whose log gets the per-report lines in a collapsible group.
    pub fn start(total: usize, github: bool) -> Self {
        let settings = settings();
        let display = match settings.mode {
            Mode::Json => Display::Json,
            Mode::Lines => Display::Lines,
            Mode::Bar => {
                let bar = new_bar(total, settings.color);
                *ACTIVE_BAR.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
                Display::Bar(bar)
            }
        };
        let group = github && settings.mode == Mode::Lines;
        if group {
            // On standard error, the stream of the lines it groups, so the order holds.
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "::group::{GROUP_TITLE}");
            let _ = stderr.flush();
        }
        Self {
            shared: Arc::new(Shared {
                display,
                tally: Mutex::new(Tally::default()),
            }),
            started: Instant::now(),
            group,
            done: false,
        }
    }

    /// The observer to give the runner.
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.shared.clone()
    }

    /// Takes the display down: clears the bar and prints the final line, or closes the group.
    pub fn finish(mut self) {
        self.close(true);
    }

    fn close(&mut self, summary: bool) {
        if self.done {
            return;
        }
        self.done = true;
        if let Display::Bar(bar) = &self.shared.display {
            *ACTIVE_BAR.lock().unwrap_or_else(PoisonError::into_inner) = None;
            bar.finish_and_clear();
            if summary {
                let tally = self
                    .shared
                    .tally
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                eprintln!(
                    "{} of {} report(s) finished in {}: {} done, {} failed",
                    tally.finished(),
                    bar.length().unwrap_or_default(),
                    format_elapsed(self.started.elapsed()),
                    tally.done,
                    tally.failed
                );
            }
        }
        if self.group {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "::endgroup::");
            let _ = stderr.flush();
        }
    }
}

impl Drop for Progress {
    /// A run that ends by a panic still leaves the terminal clean and the group closed.
    fn drop(&mut self) {
        self.close(false);
    }
}

fn new_bar(total: usize, color: bool) -> ProgressBar {
    // Two lines: the bar, and under it the counts, which then fit an 80-column terminal.
    let template = if color {
        "{spinner:.cyan} {elapsed_precise} [{bar:40.cyan/blue}] {pos}/{len} reports\n  {wide_msg}"
    } else {
        "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} reports\n  {wide_msg}"
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(Tally::default().status_line());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn format_elapsed(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    if seconds < 60 {
        format!("{:.1}s", elapsed.as_secs_f64())
    } else {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_never_breaks_into_a_workflow_command() {
        assert_eq!(
            one_log_line("acme\n::error::pwned\r\u{0}x"),
            "acme\\n::error::pwned\\r\\u{0}x"
        );
        assert_eq!(one_log_line("  ::add-mask::x"), "\\  ::add-mask::x");
        assert_eq!(one_log_line("\u{1b}[31mred\tok"), "\u{1b}[31mred\tok");
    }

    fn created(index: usize) -> Event {
        Event::Created {
            index,
            tenant: "acme".into(),
            period: "2026-10".into(),
            report_id: "r".into(),
            resumed: false,
        }
    }

    fn ready(index: usize) -> Event {
        Event::Ready {
            index,
            tenant: "acme".into(),
            period: "2026-10".into(),
            report_id: "r".into(),
            waited_ms: 5,
        }
    }

    fn saved(index: usize) -> Event {
        Event::Saved {
            index,
            tenant: "acme".into(),
            period: "2026-10".into(),
            path: "2026-10/acme/usage_summary.csv_v2_0.csv".into(),
            bytes: 10,
            sha256: "ab".repeat(32),
            reused: false,
        }
    }

    fn finished(index: usize, status: Status) -> Event {
        Event::Finished {
            index,
            tenant: "acme".into(),
            period: "2026-10".into(),
            status,
            error: (status != Status::Ok).then(|| "boom".into()),
        }
    }

    #[test]
    fn the_tally_follows_each_report_through_its_stages() {
        let mut tally = Tally::default();
        for event in [created(0), created(1), ready(0), saved(0)] {
            tally.apply(&event);
        }
        assert_eq!(
            tally.status_line(),
            "2 created · 1 generating · 1 downloading · 0 done · 0 failed"
        );
        // Created again after the recorded report vanished: still one report.
        tally.apply(&created(1));
        tally.apply(&finished(1, Status::Failed));
        tally.apply(&finished(0, Status::Ok));
        // A report whose files were all reused: saved, then finished.
        tally.apply(&saved(2));
        tally.apply(&finished(2, Status::Ok));
        assert_eq!(
            tally.status_line(),
            "2 created · 0 generating · 0 downloading · 2 done · 1 failed"
        );
        assert_eq!(tally.finished(), 3);
    }

    #[test]
    fn events_keep_their_fields_after_the_timestamp() {
        let line = event_json(&created(3));
        assert!(line.starts_with("{\"ts\":\""), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], "created");
        assert_eq!(value["index"], 3);
        assert_eq!(value["resumed"], false);
        let ts = value["ts"].as_str().unwrap();
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
    }

    #[test]
    fn log_records_are_json_with_their_extra_fields() {
        let line = log_record("warn", "a \"quoted\"\nmessage", &serde_json::Map::new());
        assert!(line.starts_with("{\"ts\":\""), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], "log");
        assert_eq!(value["level"], "warn");
        assert_eq!(value["message"], "a \"quoted\"\nmessage");
        assert!(value.get("fields").is_none());
        let mut extra = serde_json::Map::new();
        extra.insert("report".into(), "r1".into());
        let value: serde_json::Value =
            serde_json::from_str(&log_record("error", "m", &extra)).unwrap();
        assert_eq!(value["fields"]["report"], "r1");
    }

    #[test]
    fn elapsed_times_read_well() {
        assert_eq!(format_elapsed(Duration::from_millis(3_300)), "3.3s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m05s");
    }
}
