//! The job file: what to fetch, for whom, for which periods (the README's "The job file" section
//! describes it for users; `schema/job.schema.json` is generated from the types here).
//!
//! Loading happens in two steps. Serde reads the YAML into the `*File` types below, which mirror
//! the format one to one (and generate the JSON Schema); every value keeps its line and column.
//! Then [`load`] checks what serde cannot (dates against the as-of day, cross-field rules) and
//! builds the validated [`Job`]. Every problem is reported with its position and a fix.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Date;
use sha2::{Digest, Sha256};

use crate::output::compare::CompareOptions;
use crate::period::Period;
use crate::report::{BillingRule, Format, ReportKind, ReportLevel};

mod diagnostic;
mod file;
mod schema;
mod suggest;
#[cfg(test)]
mod tests;
mod validate;
use validate::Validator;
mod values;

pub(crate) use diagnostic::key_path;
pub use file::*;
pub use schema::{SCHEMA_URL, json_schema, modeline};
pub(crate) use values::*;

/// Job files larger than this are refused before parsing; 10 000 tenants take about 1 MiB.
const MAX_JOB_FILE_BYTES: u64 = 32 * 1024 * 1024;
const MAX_CONCURRENCY: u32 = 1_000;

// ---------------------------------------------------------------------------------------------
// The validated job
// ---------------------------------------------------------------------------------------------

/// A job file that parsed and validated: every tenant with its settings resolved, every period
/// resolved against `as_of`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The job file's path, as given.
    pub path: PathBuf,
    /// SHA-256 of the job file's bytes, recorded in the manifest.
    pub sha256: String,
    /// The day periods were resolved against (today, unless `--as-of` says otherwise).
    pub as_of: Date,
    pub(crate) base_url: Option<String>,
    pub(crate) sku_policy: SkuPolicy,
    /// `checks.size`.
    pub(crate) size_policy: SizePolicy,
    /// `limits`.
    pub(crate) limits: Limits,
    pub(crate) billing: BillingRule,
    /// `compare`.
    pub(crate) compare: CompareOptions,
    /// `polling`: how often to ask whether a report is ready, and for how long.
    pub polling: Polling,
    /// `concurrency`: how many reports are in flight at once.
    pub concurrency: usize,
    pub(crate) output_dir: PathBuf,
    pub(crate) cleanup: Cleanup,
    /// The tenants listed by id, in job-file order.
    pub tenants: Vec<Tenant>,
    /// `children_of` entries, expanded at run time (see `discover`).
    pub discoveries: Vec<Discovery>,
}

/// A `children_of` entry: whose children, which of them, and the report settings for each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The tenant whose children are listed.
    pub parent_id: String,
    /// The kinds of child to keep (`kinds`).
    pub kinds: Vec<TenantKind>,
    pub(crate) include: Vec<String>,
    pub(crate) exclude: Vec<String>,
    /// Whether grandchildren and below are listed too, not just direct children.
    pub recursive: bool,
    pub(crate) include_disabled: bool,
    pub(crate) include_trial: bool,
    /// Report settings for every child; `id`, `name` and `dir_name` are filled per child.
    pub(crate) template: Tenant,
    /// How many `id` entries come before this one, so expanded children keep their place.
    pub(crate) after: usize,
}

/// How often to ask whether a report is ready, and for how long (`polling` in the job file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polling {
    /// The wait before the first poll of a report whose generation time is unknown.
    pub initial_interval: Duration,
    /// The longest wait between two polls.
    pub max_interval: Duration,
    /// How long a report may take to be ready before it fails.
    pub timeout: Duration,
}

/// One tenant to report on, with its settings resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub(crate) id: String,
    /// The display name, used in file names, logs and the summary.
    pub name: String,
    /// The tenant's folder name inside each period folder.
    pub dir_name: String,
    pub(crate) kind: ReportKind,
    pub(crate) level: ReportLevel,
    /// The file formats to download.
    pub formats: Vec<Format>,
    pub(crate) hide_zero_usage: bool,
    pub(crate) show_skus: bool,
    /// The periods to report, one report each.
    pub periods: Vec<Period>,
}

/// A line and column in the job file (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: u64,
    pub(crate) column: u64,
}

/// One thing wrong with a job file: what, where, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub(crate) pos: Option<Pos>,
    pub(crate) message: String,
    /// What to write instead, when the message alone does not say it.
    pub(crate) help: Option<String>,
}

/// Everything wrong with a job file, each with its place.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The file could not be read.
    #[error("cannot read job file {}: {source}", path.display())]
    Read {
        /// The job file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Displayed as plain snippets (`render` draws them in colour).
    #[error("{}", diagnostic::render(path, text.as_deref(), problems, false))]
    Invalid {
        /// The job file.
        path: PathBuf,
        /// The file's text, to show the lines the problems are on (None when it is not text).
        text: Option<String>,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl JobError {
    /// The problems drawn as snippets; `color` for a terminal.
    pub fn render(&self, color: bool) -> String {
        match self {
            Self::Invalid {
                path,
                text,
                problems,
            } => diagnostic::render(path, text.as_deref(), problems, color),
            Self::Read { .. } => self.to_string(),
        }
    }
}

/// Reads, parses and checks a job file. Periods are resolved against `as_of`.
pub fn load(path: &Path, as_of: Date) -> Result<Job, JobError> {
    let read_error = |source| JobError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_JOB_FILE_BYTES {
        return Err(JobError::Invalid {
            path: path.to_owned(),
            text: None,
            problems: vec![Problem {
                pos: None,
                message: format!(
                    "the file is {size} bytes; job files are limited to {MAX_JOB_FILE_BYTES} bytes"
                ),
                help: None,
            }],
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    parse(path, &bytes, as_of)
}

/// Parses and checks job-file bytes; `path` is only used to name the file in errors.
pub fn parse(path: &Path, bytes: &[u8], as_of: Date) -> Result<Job, JobError> {
    let text = std::str::from_utf8(bytes).map_err(|e| JobError::Invalid {
        path: path.to_owned(),
        text: None,
        problems: vec![Problem {
            pos: None,
            message: format!("the file is not UTF-8 text (byte {})", e.valid_up_to()),
            help: Some("save the job file as UTF-8".into()),
        }],
    })?;
    let invalid = |problems| JobError::Invalid {
        path: path.to_owned(),
        text: Some(text.to_owned()),
        problems,
    };
    if let Some(problem) = suggest::layout_problem(text) {
        return Err(invalid(vec![problem]));
    }
    // Serde stops at the first error. So that one pass fixes them all, a line with an error
    // that can be left out (an optional `key: value` on one line) is blanked and the file read
    // again, collecting each error, up to the number shown.
    let mut problems = Vec::new();
    let mut attempt = Cow::Borrowed(text);
    let file = loop {
        match serde_saphyr::from_str_with_options::<JobFile>(&attempt, yaml_options()) {
            Ok(file) => break Some(file),
            Err(e) => {
                problems.push(yaml_problem(&e, text));
                let line = e.location().map(|loc| loc.line());
                match line.and_then(|line| without_line(&attempt, line)) {
                    Some(next) if problems.len() < diagnostic::MAX_SHOWN => {
                        attempt = Cow::Owned(next);
                    }
                    _ => break None,
                }
            }
        }
    };
    let Some(file) = file else {
        return Err(invalid(problems));
    };
    let sha256 = hex::encode(Sha256::digest(bytes));
    match Validator::default().validate(file, path, sha256, as_of) {
        Ok(job) if problems.is_empty() => Ok(job),
        Ok(_) => Err(invalid(problems)),
        Err(more) => {
            problems.extend(more);
            problems.sort_by_key(|p| p.pos);
            Err(invalid(problems))
        }
    }
}

/// `text` with line `line` (1-based) blanked, if that line is an optional `key: value` whose
/// value is all on it (nothing indented below), so the rest still parses the same way.
fn without_line(text: &str, line: u64) -> Option<String> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    let lines: Vec<&str> = text.lines().collect();
    let this = *lines.get(index)?;
    let indent = this.len() - this.trim_start().len();
    let (key, value) = this.trim_start().split_once(':')?;
    let simple_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !simple_key || matches!(key, "version" | "tenants") || value.trim().is_empty() {
        return None;
    }
    let nested = lines[index + 1..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|next| next.len() - next.trim_start().len() > indent);
    if nested {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if i != index {
            out.push_str(l);
        }
        out.push('\n');
    }
    Some(out)
}

fn yaml_options() -> serde_saphyr::Options {
    // Limits far above any real job file (10 000 tenants use ~100 000 events) that still stop
    // alias bombs and deep nesting early, in bounded memory.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 2_000_000;
    budget.max_nodes = 1_000_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 32;
    budget.max_documents = 1;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 4 * 1024 * 1024;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.alias_limits.max_total_replayed_events = 100_000;
    options
}

fn yaml_problem(error: &serde_saphyr::Error, text: &str) -> Problem {
    let pos = error.location().map(|loc| Pos {
        line: loc.line(),
        column: loc.column(),
    });
    let raw = error.without_snippet().to_string();
    let message = strip_location_suffix(&raw);
    // A missing key is missing from the whole file, not from the line the reader stopped at.
    let pos = pos.filter(|_| !message.starts_with("missing field"));
    let key = pos.and_then(|pos| key_path(text, pos));
    let (message, help) = suggest::explain(message, key.as_deref());
    Problem { pos, message, help }
}

/// Removes the ` at line N, column M` that the YAML error adds, since the snippet shows where.
fn strip_location_suffix(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains("column") => &message[..i],
        _ => message,
    }
}

pub(crate) fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}
