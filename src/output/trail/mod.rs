//! The output folder as an audit trail: one self-contained delivery per period, and a root that
//! seals them all, so that one folder can receive every month's run and stay verifiable.
//!
//! ```text
//! DIR/SHA256SUMS        every <period>/SHA256SUMS, and the root manifest.json and summary.md
//! DIR/manifest.json     the latest run's record (paths relative to DIR), with `trail`
//! DIR/summary.md        the latest run for a human
//! DIR/2026-10/          one delivery: report files, billing.csv, manifest.json (paths relative
//!                       to the period folder, `period_folder`), summary.md, and a SHA256SUMS
//!                       listing all of them: `cd DIR/2026-10 && sha256sum -c SHA256SUMS`
//! ```
//!
//! What a run may do to the trail:
//! - it writes only the periods it ran, and a period only when one of its reports has a new
//!   delivery (another report id or other bytes), the billing rule changed, or the folder is
//!   upgraded: re-running a complete period changes no byte of it;
//! - a failed attempt never replaces an earlier record of the same report (tenant, kind,
//!   level): the earlier files and lines stay listed, and the attempt is recorded in the root
//!   manifest and summary only, its files moved aside to [`REJECTED`];
//! - a new record replaces every earlier record of its tenant whose files have its paths (a
//!   report whose level changed); a path of another tenant's record is never taken over;
//! - a file fetched again is downloaded beside the trail ([`staged_path`]) and moved into place
//!   together with its record, so no file changes under a record that does not describe it;
//! - each period is planned and checked before anything in it changes ([`period`]), and a
//!   commit that changes records first leaves its intent in the state folder ([`intent`]), so
//!   that a run killed half-way is completed or undone by the next one, never taken for an
//!   outside edit;
//! - a folder written by the single-run layout (one `SHA256SUMS` for everything) is upgraded,
//!   all or nothing: its reports become period deliveries, its root records move to [`LEGACY`].

mod commit;
mod intent;
mod legacy;
mod open;
mod period;
mod root;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) use intent::pending as commit_pending;

use crate::output::compare::CompareOptions;
use crate::results::{ReportLog, ReportResult, RunResult};
use crate::state::{STATE_DIR, staging_dir};

use legacy::Legacy;

/// Under the state folder: files of failed attempts that did not replace an earlier record; only
/// the latest run's are kept.
pub(crate) const REJECTED: &str = "rejected";
/// Under the state folder: files of a replaced record that the new record does not have.
pub(crate) const SUPERSEDED: &str = "superseded";
/// Under the state folder: the root records of a folder upgraded from the single-run layout.
pub(crate) const LEGACY: &str = "legacy";

/// Why the trail cannot take a run; raised before anything is fetched.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error(
        "{} cannot be read ({reason}); it records an earlier delivery, so nothing was run: restore it from the trail's history (e.g. `git checkout -- {}`), or write into another folder with --out",
        path.display(),
        path.display()
    )]
    Record { path: PathBuf, reason: String },
    #[error("{0}; nothing was run")]
    Taken(TakenFolder),
    #[error(
        "{} records a commit that an earlier run left half-way, and it cannot be finished or undone ({reason}); nothing was run: see `acronis-reports verify` for the state of the folder, restore the periods it names from the trail's history, then remove {}",
        path.display(),
        path.display()
    )]
    Interrupted { path: PathBuf, reason: String },
    #[error("cannot look at {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A file of a run that would land in a tenant folder holding another tenant's sealed files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenFolder {
    pub(crate) label: String,
    /// The file, from the output folder.
    pub path: String,
    /// `id (name)` of the tenant whose sealed record lists the path.
    pub(crate) earlier: String,
    /// `id (name)` of the tenant of this run.
    pub new: String,
}

impl fmt::Display for TakenFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let folder = self.path.rsplit_once('/').map_or("", |(folder, _)| folder);
        write!(
            f,
            "{folder}/ holds the sealed files of tenant {}, and tenant {} of this run would put {} there: a tenant folder belongs to one tenant (its name in the job names the folder); give one of the two another `name` in the job, or write into another folder with --out",
            self.earlier, self.new, self.path
        )
    }
}

/// Why a commit did not (wholly) happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    /// Reading the run's own records back (its temporary file) failed.
    #[error("cannot read back this run's records: {0}")]
    Log(io::Error),
    #[error(
        "could not write {}; the other periods and the root records were written",
        failures.join(", ")
    )]
    Periods { failures: Vec<String> },
    #[error(
        "this folder of the single-run layout was not upgraded, and none of its files or records was changed: {reason}"
    )]
    Upgrade { reason: String },
    #[error(
        "cannot record the commit about to begin in {}: {source}; nothing in the trail was changed",
        path.display()
    )]
    Intent { path: PathBuf, source: io::Error },
    #[error(
        "cannot write the root records in {}: {source}; the periods written are completed and sealed by the next run into this folder",
        dir.display()
    )]
    Root { dir: PathBuf, source: io::Error },
}

impl From<CommitError> for io::Error {
    fn from(error: CommitError) -> Self {
        io::Error::other(error.to_string())
    }
}

/// What [`Trail::commit`] needs besides the run.
#[derive(Clone, Debug, Default)]
pub(crate) struct CommitOptions {
    pub(crate) compare: CompareOptions,
    /// More sections for the run's summary (already rendered), after the trail's own.
    pub(crate) sections: Vec<String>,
}

/// An output folder about to receive a run: the earlier records of the periods the run covers,
/// read (and checked) before the run starts.
pub(crate) struct Trail {
    dir: PathBuf,
    /// The earlier delivery of each period the run covers, where there is one.
    earlier: BTreeMap<String, RunResult>,
    legacy: Option<Legacy>,
    /// The period seals the root `SHA256SUMS` lists (`<folder>/SHA256SUMS` → SHA-256): kept as
    /// they are for the periods this run does not write.
    sealed: BTreeMap<String, String>,
    /// What opening the folder found worth telling in the run's records (an interrupted
    /// commit finished or undone).
    notes: Vec<String>,
}

/// A file a run is about to write: its tenant, and its path from the output folder.
#[derive(Clone, Debug)]
pub(crate) struct Wanted<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) tenant_name: &'a str,
    pub path: String,
}

/// The period folders (labels) of `reports`.
pub(crate) fn labels_of(reports: &ReportLog) -> io::Result<BTreeSet<String>> {
    let mut labels = BTreeSet::new();
    for report in reports.iter() {
        labels.insert(report?.period.label());
    }
    Ok(labels)
}

/// Where a file of the trail at `relative` is downloaded when a file is already there: beside
/// the trail, until [`Trail::commit`] moves it in with its record.
#[cfg(test)]
pub(crate) fn staged_path(dir: &Path, relative: &str) -> PathBuf {
    staging_dir(dir).join(relative)
}

/// Empties the staging and rejected folders, and the record copies of a finished commit, left
/// by an earlier run. Only for a run that holds the folder's lock, after [`Trail::open`] (which
/// needs them when an earlier commit was interrupted).
pub(crate) fn clear_scratch(dir: &Path) {
    for path in [
        staging_dir(dir),
        dir.join(STATE_DIR).join(REJECTED),
        intent::backups(dir),
    ] {
        match fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot empty {}: {e}", path.display()),
        }
    }
}

/// Whether a line of the root `SHA256SUMS` is a period's seal: `<folder>/SHA256SUMS`.
pub(crate) fn is_period_checksums(path: &str) -> bool {
    path.strip_suffix(super::SHA256SUMS)
        .and_then(|folder| folder.strip_suffix('/'))
        .is_some_and(|folder| {
            !folder.is_empty() && !folder.contains('/') && !folder.starts_with('.')
        })
}

/// Whether `path` (relative to a period folder) can be a report file: a plain relative path
/// inside the folder, nothing hidden, no `.` or `..`, and not one of the period's own records.
/// Records are read from files anyone with write access to the trail can edit, and a path from
/// them decides what a run moves.
fn is_report_path(path: &str) -> bool {
    let is_record = crate::disk::paths::DELIVERY_RECORDS
        .iter()
        .any(|record| record.eq_ignore_ascii_case(path));
    crate::verify::normalise(path).as_deref() == Some(path)
        && !is_record
        && path.split('/').all(|part| !part.starts_with('.'))
}

/// A path as the file systems of macOS and Windows compare it: two paths that differ only in
/// case are one file there, so the trail treats them as one everywhere.
fn folded(path: &str) -> String {
    path.to_lowercase()
}

impl Trail {
    /// Refuses a run whose files would land where another tenant's sealed files are: the
    /// period could not take them without losing one of the two. Checked before anything is
    /// fetched; [`Trail::commit`] checks the same again.
    pub(crate) fn check_wanted<'a>(
        &self,
        wanted: impl IntoIterator<Item = Wanted<'a>>,
    ) -> Result<(), TrailError> {
        let mut owners: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
        let mut own = |label: &str, report: &ReportResult| {
            for file in &report.files {
                owners.insert(
                    (label.to_owned(), folded(&file.path)),
                    (report.tenant_id.clone(), report.tenant_name.clone()),
                );
            }
        };
        for (label, record) in &self.earlier {
            for report in record.reports.iter() {
                let report = report.map_err(|source| TrailError::Io {
                    path: self.dir.join(label).join(super::MANIFEST),
                    source,
                })?;
                own(label, &report);
            }
        }
        for (label, reports) in self.legacy.iter().flat_map(|l| &l.periods) {
            for report in reports {
                own(label, report);
            }
        }
        for file in wanted {
            let Some((label, local)) = file.path.split_once('/') else {
                continue;
            };
            let owner = owners.get(&(label.to_owned(), folded(local)));
            if let Some((id, name)) = owner
                && id != file.tenant_id
            {
                return Err(TrailError::Taken(TakenFolder {
                    label: label.to_owned(),
                    path: file.path.clone(),
                    earlier: format!("{id} ({name})"),
                    new: format!("{} ({})", file.tenant_id, file.tenant_name),
                }));
            }
        }
        Ok(())
    }
}

/// `report` with its file paths made relative to its period folder (`prefix` is `<label>/`), or
/// `None` when a file is elsewhere.
fn relative_to(mut report: ReportResult, prefix: &str) -> Option<ReportResult> {
    for file in &mut report.files {
        file.path = file.path.strip_prefix(prefix)?.to_owned();
    }
    Some(report)
}

/// `report` (of a period delivery) with its file paths relative to the output folder again.
fn rooted(mut report: ReportResult, prefix: &str) -> ReportResult {
    for file in &mut report.files {
        file.path = format!("{prefix}{}", file.path);
    }
    report
}
