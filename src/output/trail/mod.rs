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
//! - a file fetched again is downloaded beside the trail ([`staged_path`]) and moved into place
//!   together with its record, so no file changes under a record that does not describe it;
//! - a folder written by the single-run layout (one `SHA256SUMS` for everything) is upgraded:
//!   its reports become period deliveries, its root records move to [`LEGACY`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{MANIFEST, SHA256SUMS, SUMMARY, checksums, manifest, summary};
use crate::billing::{BILLING_CSV, BillingSummary};
use crate::output::compare::{self, CompareOptions};
use crate::paths::ensure_dir_inside;
use crate::report::{ReportKind, ReportLevel};
use crate::results::{
    PeriodEntry, PeriodOutcome, ReportLog, ReportResult, RunResult, Status, TrailRecord,
};
use crate::state::{STATE_DIR, staging_dir};

/// Under the state folder: files of failed attempts that did not replace an earlier record; only
/// the latest run's are kept.
pub const REJECTED: &str = "rejected";
/// Under the state folder: files of a replaced record that the new record does not have.
pub const SUPERSEDED: &str = "superseded";
/// Under the state folder: the root records of a folder upgraded from the single-run layout.
pub const LEGACY: &str = "legacy";

/// The largest record read whole: far above the manifest of a run of 100 000 reports.
const MAX_RECORD_BYTES: u64 = 1 << 30;

/// Why the trail cannot take a run; raised before anything is fetched.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error(
        "{} cannot be read ({reason}); it records an earlier delivery, so nothing was run: restore it from the trail's history (e.g. `git checkout -- {}`), or write into another folder with --out",
        path.display(),
        path.display()
    )]
    Record { path: PathBuf, reason: String },
    #[error("cannot look at {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// What [`Trail::commit`] needs besides the run.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    pub compare: CompareOptions,
}

/// An output folder about to receive a run: the earlier records of the periods the run covers,
/// read (and checked) before the run starts.
pub struct Trail {
    dir: PathBuf,
    /// The earlier delivery of each period the run covers, where there is one.
    earlier: BTreeMap<String, RunResult>,
    legacy: Option<Legacy>,
    /// The period seals the root `SHA256SUMS` lists (`<folder>/SHA256SUMS` → SHA-256): kept as
    /// they are for the periods this run does not write.
    sealed: BTreeMap<String, String>,
}

/// A root record of the single-run layout, cut into periods.
struct Legacy {
    periods: BTreeMap<String, Vec<ReportResult>>,
    header: RunResult,
}

/// The period folders (labels) of `reports`.
pub fn labels_of(reports: &ReportLog) -> io::Result<BTreeSet<String>> {
    let mut labels = BTreeSet::new();
    for report in reports.iter() {
        labels.insert(report?.period.label());
    }
    Ok(labels)
}

/// Where a file of the trail at `relative` is downloaded when a file is already there: beside
/// the trail, until [`Trail::commit`] moves it in with its record.
pub fn staged_path(dir: &Path, relative: &str) -> PathBuf {
    staging_dir(dir).join(relative)
}

/// Empties the staging and rejected folders left by an earlier run. Only for a run that holds
/// the folder's lock.
pub fn clear_scratch(dir: &Path) {
    for path in [staging_dir(dir), dir.join(STATE_DIR).join(REJECTED)] {
        match fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot empty {}: {e}", path.display()),
        }
    }
}

/// A `SHA256SUMS` read once: the SHA-256 of the file itself, and the lines it lists.
struct Seal {
    sha256: String,
    /// Path → SHA-256.
    listed: BTreeMap<String, String>,
}

/// Reads the `SHA256SUMS` at `path`, or `None` when there is none.
fn read_seal(path: &Path) -> Result<Option<Seal>, TrailError> {
    let unreadable = |reason: String| TrailError::Record {
        path: path.to_owned(),
        reason,
    };
    let bytes = match crate::paths::read_regular(path, MAX_RECORD_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let listed =
        crate::verify::parse_checksums(path, bytes).map_err(|e| unreadable(e.to_string()))?;
    Ok(Some(Seal { sha256, listed }))
}

/// Checks that a period's record is the one its seals vouch for: the root `SHA256SUMS` line of
/// the period's `SHA256SUMS`, and that file's line of `manifest.json`. A record changed since
/// would otherwise be carried forward and sealed anew.
fn check_sealed(
    dir: &Path,
    label: &str,
    sealed: &BTreeMap<String, String>,
) -> Result<(), TrailError> {
    let altered = |path: PathBuf, what: &str| TrailError::Record {
        path,
        reason: format!(
            "{what}; the period's earlier delivery was changed after it was sealed (`acronis-reports verify --period {label}` shows what)"
        ),
    };
    let sums_path = dir.join(label).join(SHA256SUMS);
    let Some(Seal {
        sha256: sums_hash,
        listed,
    }) = read_seal(&sums_path)?
    else {
        return Err(altered(sums_path, "it is missing"));
    };
    match sealed.get(&format!("{label}/{SHA256SUMS}")) {
        Some(expected) if *expected == sums_hash => {}
        Some(_) => return Err(altered(sums_path, "it does not match the root SHA256SUMS")),
        None => return Err(altered(sums_path, "the root SHA256SUMS does not list it")),
    }
    let listed = listed.get(MANIFEST).cloned();
    let manifest_path = dir.join(label).join(MANIFEST);
    let manifest_hash = crate::verify::hash_file(&manifest_path)
        .map(|(sha256, _)| sha256)
        .map_err(|e| altered(manifest_path.clone(), &format!("it cannot be read ({e})")))?;
    if listed.as_deref() != Some(manifest_hash.as_str()) {
        return Err(altered(
            manifest_path,
            "it does not match the period's SHA256SUMS",
        ));
    }
    Ok(())
}

/// Reads a record (`manifest.json`), or `None` when there is none.
fn read_record(path: &Path) -> Result<Option<RunResult>, TrailError> {
    let bytes = match crate::paths::read_regular(path, MAX_RECORD_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TrailError::Record {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| TrailError::Record {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

impl Trail {
    /// Reads what `dir` holds of the periods `labels`: their deliveries, or the single-run
    /// record of a folder that predates the trail. A record that cannot be read stops the run
    /// before it starts, since writing the period would lose what it describes.
    pub fn open(dir: &Path, labels: BTreeSet<String>) -> Result<Self, TrailError> {
        let root = read_record(&dir.join(MANIFEST))?;
        let is_trail = root.as_ref().is_some_and(|r| r.trail.is_some());
        let legacy = match root {
            Some(record) if record.trail.is_none() && record.period_folder.is_none() => {
                Some(Legacy::of(dir, record).map_err(|source| TrailError::Io {
                    path: dir.join(MANIFEST),
                    source,
                })?)
            }
            _ => None,
        };
        let sums = dir.join(SHA256SUMS);
        let mut sealed = BTreeMap::new();
        if legacy.is_none() {
            match read_seal(&sums)? {
                Some(Seal { listed, .. }) => {
                    sealed.extend(
                        listed
                            .into_iter()
                            .filter(|(path, _)| is_period_checksums(path)),
                    );
                }
                // A trail without its root seal would be sealed anew over whatever is there.
                None if is_trail => {
                    return Err(TrailError::Record {
                        path: sums,
                        reason: "it is missing".to_owned(),
                    });
                }
                None => {}
            }
        }
        let mut wanted = labels;
        if let Some(legacy) = &legacy {
            wanted.extend(legacy.periods.keys().cloned());
        }
        let mut earlier = BTreeMap::new();
        for label in wanted {
            let path = dir.join(&label).join(MANIFEST);
            if let Some(record) = read_record(&path)? {
                if record.period_folder.as_deref() != Some(label.as_str()) {
                    return Err(TrailError::Record {
                        path,
                        reason: format!("it is not the record of the period {label}"),
                    });
                }
                if legacy.is_none() {
                    check_sealed(dir, &label, &sealed)?;
                }
                earlier.insert(label, record);
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            earlier,
            legacy,
            sealed,
        })
    }

    /// Writes `run` (paths relative to the folder) into the trail: each period it covers, the
    /// root records, and last the root `SHA256SUMS`. Returns the run's record as written to the
    /// root `manifest.json`.
    pub fn commit(mut self, mut run: RunResult, options: &CommitOptions) -> io::Result<RunResult> {
        fs::create_dir_all(&self.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", self.dir.display()),
            )
        })?;
        let mut positions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (position, report) in run.reports.iter().enumerate() {
            positions
                .entry(report?.period.label())
                .or_default()
                .push(position);
        }
        let mut labels: BTreeSet<String> = positions.keys().cloned().collect();
        let mut notes = Vec::new();
        let legacy = self.legacy.take();
        if let Some(legacy) = &legacy {
            labels.extend(legacy.periods.keys().cloned());
            notes.push(format!(
                "This folder was upgraded from the single-run layout: the reports of {} now form period deliveries, each with its own SHA256SUMS; the earlier root SHA256SUMS, manifest.json, summary.md and billing.csv are kept in {STATE_DIR}/{LEGACY}/.",
                super::and_list(&legacy.periods.keys().cloned().collect::<Vec<_>>(), 12)
            ));
        }
        let mut entries = Vec::new();
        let mut sections = Vec::new();
        let mut billing = Vec::new();
        let mut failures = Vec::new();
        for label in &labels {
            let earlier = match self.earlier.remove(label) {
                Some(record) => Some(record),
                None => legacy.as_ref().and_then(|l| l.record_of(label)),
            };
            let upgraded = legacy
                .as_ref()
                .is_some_and(|l| l.periods.contains_key(label));
            let period = PeriodRun {
                dir: &self.dir,
                label,
                earlier,
                upgraded,
                positions: positions.get(label).map(Vec::as_slice).unwrap_or_default(),
            };
            match period.commit(&mut run, options) {
                Ok((entry, section, summary)) => {
                    entries.push(entry);
                    sections.extend(section);
                    billing.extend(summary);
                }
                Err(error) => {
                    tracing::error!("cannot write the period {label}: {error}");
                    failures.push(format!("{label}/ ({error})"));
                }
            }
        }
        if let Some(legacy) = &legacy
            && failures.is_empty()
        {
            legacy.move_aside(&self.dir)?;
        }
        let record = TrailRecord {
            periods: entries,
            notes,
        };
        sections.insert(0, trail_section(&record));
        run.trail = Some(record);
        run.period_folder = None;
        run.derived_files.clear();
        let root = Root {
            covered: &labels,
            sealed: std::mem::take(&mut self.sealed),
            sections: &sections,
            billing: merged_billing(billing),
        };
        root.write(&self.dir, &run)?;
        if failures.is_empty() {
            Ok(run)
        } else {
            Err(io::Error::other(format!(
                "could not write {}; the other periods and the root records were written",
                failures.join(", ")
            )))
        }
    }
}

impl Legacy {
    fn of(dir: &Path, record: RunResult) -> io::Result<Self> {
        // The old root SHA256SUMS is the seal; the old manifest was never listed in it, so a
        // file's checksum is taken from the seal where it has one.
        let sealed = read_seal(&dir.join(SHA256SUMS))
            .ok()
            .flatten()
            .map(|seal| seal.listed)
            .unwrap_or_default();
        let mut periods: BTreeMap<String, Vec<ReportResult>> = BTreeMap::new();
        for report in record.reports.iter() {
            let mut report = report?;
            for file in &mut report.files {
                if let Some(sha256) = sealed.get(&file.path) {
                    file.sha256.clone_from(sha256);
                }
            }
            let label = report.period.label();
            let prefix = format!("{label}/");
            let who = format!("{} {}", report.tenant_name, report.period);
            let Some(local) = relative_to(report, &prefix) else {
                tracing::warn!("{who}: its files are not under {prefix}; left as they are");
                continue;
            };
            periods.entry(label).or_default().push(local);
        }
        let header = RunResult {
            reports: ReportLog::with_slots(0)?,
            ..record
        };
        Ok(Self { periods, header })
    }

    /// The period's part of the single-run record, as the period's delivery would record it.
    fn record_of(&self, label: &str) -> Option<RunResult> {
        let reports = self.periods.get(label)?;
        let log = ReportLog::of(reports.iter().cloned()).ok()?;
        Some(RunResult {
            manifest_version: self.header.manifest_version,
            tool: self.header.tool.clone(),
            started_at: self.header.started_at,
            finished_at: self.header.finished_at,
            as_of: self.header.as_of,
            job: self.header.job.clone(),
            base_url: self.header.base_url.clone(),
            reports: log,
            shard: None,
            discovery: Vec::new(),
            derived_files: Vec::new(),
            billing_rule: self.header.billing_rule.clone(),
            period_folder: Some(label.to_owned()),
            trail: None,
        })
    }

    /// Moves the single-run root records out of the way of the trail's, keeping them.
    fn move_aside(&self, dir: &Path) -> io::Result<()> {
        for name in [SHA256SUMS, MANIFEST, SUMMARY, BILLING_CSV] {
            move_aside(
                dir,
                &dir.join(name),
                &format!("{STATE_DIR}/{LEGACY}/{name}"),
            )?;
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

/// What makes two records the same report of a period: a newer record of it replaces the
/// older one.
type Identity = (String, ReportKind, ReportLevel);

fn identity(report: &ReportResult) -> Identity {
    (report.tenant_id.clone(), report.kind, report.level)
}

/// Whether two records describe the same delivery: the same report on the server, the same
/// outcome and the same bytes at the same paths.
fn same_delivery(a: &ReportResult, b: &ReportResult) -> bool {
    fn files(r: &ReportResult) -> Vec<(&str, &str, &str)> {
        let mut files: Vec<(&str, &str, &str)> = r
            .files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    f.sha256.as_str(),
                    f.stored_report_id.as_str(),
                )
            })
            .collect();
        files.sort_unstable();
        files
    }
    a.report_id == b.report_id && a.status == b.status && files(a) == files(b)
}

/// The order of a period's records: by tenant, then kind and level, whatever the order of the
/// runs that fetched them.
fn canonical_order(a: &ReportResult, b: &ReportResult) -> std::cmp::Ordering {
    (&a.tenant_name, &a.tenant_id, a.kind, a.level).cmp(&(
        &b.tenant_name,
        &b.tenant_id,
        b.kind,
        b.level,
    ))
}

/// One period of a run being written into the trail.
struct PeriodRun<'a> {
    dir: &'a Path,
    label: &'a str,
    earlier: Option<RunResult>,
    /// Whether the earlier record comes from a single-run folder being upgraded.
    upgraded: bool,
    /// Positions of the run's reports of this period.
    positions: &'a [usize],
}

/// A record of the period's delivery, and where it is in the run, if the run made it.
struct Entry {
    report: ReportResult,
    position: Option<usize>,
}

impl PeriodRun<'_> {
    fn commit(
        self,
        run: &mut RunResult,
        options: &CommitOptions,
    ) -> io::Result<(PeriodEntry, Option<String>, Option<BillingSummary>)> {
        let label = self.label;
        let prefix = format!("{label}/");
        // Never through a symbolic link: the delivery is written inside the folder or not at all.
        let period_dir = ensure_dir_inside(self.dir, label)?;
        let earlier_reports = match &self.earlier {
            Some(record) => record.reports.to_vec()?,
            None => Vec::new(),
        };
        let mut earlier_of: HashMap<Identity, usize> = HashMap::new();
        for (i, report) in earlier_reports.iter().enumerate() {
            earlier_of.insert(identity(report), i);
        }
        let mut changed = self
            .earlier
            .as_ref()
            .is_none_or(|earlier| self.upgraded || earlier.billing_rule != run.billing_rule);
        let mut replaced = BTreeSet::new();
        let mut accepted: Vec<Entry> = Vec::new();
        let mut kept_earlier = 0;
        for &position in self.positions {
            let report = run.reports.get(position)?;
            let plan_index = report.plan_index;
            let Some(local) = relative_to(report, &prefix) else {
                return Err(io::Error::other(format!(
                    "a report of {label} has files outside {prefix}"
                )));
            };
            match earlier_of.get(&identity(&local)) {
                Some(&i) if same_delivery(&earlier_reports[i], &local) => {
                    // Nothing new: the run's record is the delivery's, warnings and all. A file
                    // fetched again because the one on disk had changed takes its place.
                    for file in &local.files {
                        move_in(self.dir, label, &file.path)?;
                    }
                    let mut kept = rooted(earlier_reports[i].clone(), &prefix);
                    kept.plan_index = plan_index;
                    // What this run met on the way (a file fetched again) is the run's to tell.
                    for warning in local.warnings {
                        if !kept.warnings.contains(&warning) {
                            kept.warnings.push(warning);
                        }
                    }
                    run.reports.set(position, &kept)?;
                }
                Some(&i)
                    if local.status == Status::Failed
                        && earlier_reports[i].status == Status::Ok =>
                {
                    kept_earlier += 1;
                    let kept_id = earlier_reports[i].report_id.clone().unwrap_or_default();
                    let listed: BTreeSet<&str> = earlier_reports
                        .iter()
                        .flat_map(|r| r.files.iter().map(|f| f.path.as_str()))
                        .collect();
                    let mut attempt = local;
                    for file in &mut attempt.files {
                        file.path = reject(self.dir, label, &file.path, &listed)?;
                    }
                    attempt.warnings.push(format!(
                        "this attempt failed, so {label}/ keeps its earlier delivery of this report (report {kept_id}){}",
                        if attempt.files.is_empty() {
                            String::new()
                        } else {
                            format!("; the files of this attempt are in {STATE_DIR}/{REJECTED}/")
                        }
                    ));
                    run.reports.set(position, &attempt)?;
                }
                earlier => {
                    if let Some(&i) = earlier {
                        replaced.insert(i);
                    }
                    changed = true;
                    accepted.push(Entry {
                        report: local,
                        position: Some(position),
                    });
                }
            }
        }
        // The new files take their places, and files only a replaced record had step aside.
        for entry in &accepted {
            for file in &entry.report.files {
                move_in(self.dir, label, &file.path)?;
            }
        }
        let kept_paths: BTreeSet<String> = accepted
            .iter()
            .map(|e| &e.report)
            .chain(
                earlier_reports
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !replaced.contains(i))
                    .map(|(_, r)| r),
            )
            .flat_map(|r| r.files.iter().map(|f| f.path.clone()))
            .collect();
        for &i in &replaced {
            for file in &earlier_reports[i].files {
                if !kept_paths.contains(&file.path) {
                    move_aside(
                        self.dir,
                        &period_dir.join(&file.path),
                        &format!("{STATE_DIR}/{SUPERSEDED}/{label}/{}", file.path),
                    )?;
                }
            }
        }

        let mut entries: Vec<Entry> = earlier_reports
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !replaced.contains(i))
            .map(|(_, report)| Entry {
                report,
                position: None,
            })
            .chain(accepted)
            .collect();
        entries.sort_by(|a, b| canonical_order(&a.report, &b.report));
        let reports = entries.len();
        let ok = entries
            .iter()
            .filter(|e| e.report.status == Status::Ok)
            .count();

        if changed {
            for entry in entries.iter().filter(|e| e.position.is_none()) {
                for file in &entry.report.files {
                    let path = period_dir.join(&file.path);
                    let found = crate::verify::hash_file(&path).map(|(sha256, _)| sha256);
                    if found.as_deref().ok() != Some(file.sha256.as_str()) {
                        return Err(io::Error::other(format!(
                            "{} is no longer what the delivery of {label} recorded, so the period was not rewritten over it: restore it, or fetch the period again with --fresh",
                            path.display()
                        )));
                    }
                }
            }
        }
        let (outcome, changes, billing) = if changed {
            let record = RunResult {
                manifest_version: run.manifest_version,
                tool: run.tool.clone(),
                started_at: run.started_at,
                finished_at: run.finished_at,
                as_of: run.as_of,
                job: run.job.clone(),
                base_url: run.base_url.clone(),
                reports: ReportLog::of(entries.iter().map(|e| e.report.clone()))?,
                shard: run.shard,
                discovery: Vec::new(),
                derived_files: Vec::new(),
                billing_rule: run.billing_rule.clone(),
                period_folder: Some(label.to_owned()),
                trail: None,
            };
            let mut found = None;
            let (written, billing): (RunResult, Option<BillingSummary>) =
                super::write_delivery(&period_dir, record, |_| {
                    found = compare::changes_for(self.dir, label, &options.compare);
                    found
                        .iter()
                        .map(|changes| compare::render_section(changes, &options.compare))
                        .collect()
                })?;
            // The run's record gets what writing the delivery found (DR compute points, the
            // warnings of billing.csv).
            for (slot, entry) in entries.iter().enumerate() {
                if let Some(position) = entry.position {
                    let mut report = rooted(written.reports.get(slot)?, &prefix);
                    report.plan_index = run.reports.get(position)?.plan_index;
                    run.reports.set(position, &report)?;
                }
            }
            (PeriodOutcome::Written, found, billing)
        } else {
            (
                PeriodOutcome::Unchanged,
                compare::changes_for(self.dir, label, &options.compare),
                None,
            )
        };
        // What changed since the previous period: in the run's summary too, and its warnings.
        let section = match changes {
            Some(changes) => {
                compare::warn(run, &changes, &options.compare)?;
                Some(compare::render_section(&changes, &options.compare))
            }
            None => None,
        };
        Ok((
            PeriodEntry {
                folder: label.to_owned(),
                outcome,
                reports,
                ok,
                kept_earlier,
            },
            section,
            billing,
        ))
    }
}

/// Moves a file fetched again from the staging folder into its place in the period.
fn move_in(dir: &Path, label: &str, relative: &str) -> io::Result<()> {
    let staged = staged_path(dir, &format!("{label}/{relative}"));
    match fs::symlink_metadata(&staged) {
        Ok(_) => {
            let target = dir.join(label).join(relative);
            if let Some(parent) = Path::new(label).join(relative).parent() {
                ensure_dir_inside(dir, &parent.to_string_lossy())?;
            }
            // The earlier bytes step aside rather than vanish: a run killed before the new
            // record is written leaves them recoverable.
            move_aside(
                dir,
                &target,
                &format!("{STATE_DIR}/{SUPERSEDED}/{label}/{relative}"),
            )?;
            fs::rename(&staged, &target).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot move {} to {}: {e}",
                        staged.display(),
                        target.display()
                    ),
                )
            })?;
            super::sync_dir(target.parent().unwrap_or(dir));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Puts a file of a failed attempt aside (from staging, or from the period folder when no record
/// lists that path), and returns where it is now, relative to the output folder.
fn reject(dir: &Path, label: &str, relative: &str, listed: &BTreeSet<&str>) -> io::Result<String> {
    let rooted = format!("{label}/{relative}");
    let aside = format!("{STATE_DIR}/{REJECTED}/{rooted}");
    let staged = staged_path(dir, &rooted);
    if fs::symlink_metadata(&staged).is_ok() {
        move_aside(dir, &staged, &aside)?;
    } else if !listed.contains(relative) {
        move_aside(dir, &dir.join(&rooted), &aside)?;
    } else {
        // The file at that path is the earlier delivery's: the attempt's never got there.
        return Ok(rooted);
    }
    Ok(aside)
}

/// Moves `from` to `aside` (relative to the output folder, inside its state folder), creating
/// the folders on the way but never through a symbolic link.
fn move_aside(dir: &Path, from: &Path, aside: &str) -> io::Result<()> {
    if fs::symlink_metadata(from).is_err() {
        return Ok(());
    }
    let (folder, name) = aside.rsplit_once('/').unwrap_or(("", aside));
    let to = ensure_dir_inside(dir, folder)?.join(name);
    fs::rename(from, &to).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot move {} to {}: {e}", from.display(), to.display()),
        )
    })
}

/// What the root records are made of besides the run's record.
struct Root<'a> {
    /// The periods this run covered (their seals are hashed as they are now).
    covered: &'a BTreeSet<String>,
    /// The earlier root's period seals.
    sealed: BTreeMap<String, String>,
    sections: &'a [String],
    /// What the `billing.csv` files this run wrote hold, together.
    billing: Option<BillingSummary>,
}

impl Root<'_> {
    /// Writes `summary.md`, `manifest.json`, and last `SHA256SUMS`, which lists every period's
    /// `SHA256SUMS`: this run's as they are now, the others as the earlier root listed them (a
    /// file this run did not write is never hashed into the seal anew).
    fn write(self, dir: &Path, run: &RunResult) -> io::Result<()> {
        let mut lines = self.sealed;
        for folder in self.covered {
            let path = format!("{folder}/{SHA256SUMS}");
            match crate::verify::hash_file(&dir.join(&path)) {
                Ok((sha256, _)) => {
                    lines.insert(path, sha256);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot hash {path}: {e}"),
            }
        }
        let text = summary::render(run, self.billing.as_ref(), self.sections)?;
        super::write_atomic(&dir.join(SUMMARY), text.as_bytes())?;
        lines.insert(
            SUMMARY.to_owned(),
            hex::encode(Sha256::digest(text.as_bytes())),
        );
        let sha256 = super::write_hashed(&dir.join(MANIFEST), |out| manifest::write(out, run))?;
        lines.insert(MANIFEST.to_owned(), sha256);
        super::write_atomic_with(&dir.join(SHA256SUMS), |out| {
            checksums::write_sorted(
                out,
                lines
                    .iter()
                    .map(|(path, sha256)| (path.as_str(), sha256.as_str()))
                    .collect(),
            )
        })
    }
}

/// The billing summaries of several periods as one, for the run's summary.
fn merged_billing(parts: Vec<BillingSummary>) -> Option<BillingSummary> {
    let mut parts = parts.into_iter();
    let mut all = parts.next()?;
    for part in parts {
        all.lines += part.lines;
        all.reports += part.reports;
        all.reports_without_source += part.reports_without_source;
        all.invoice.extend(part.invoice);
        all.invoice_left_out += part.invoice_left_out;
        all.skus.extend(part.skus);
        all.skus_left_out += part.skus_left_out;
        all.repeated_lines += part.repeated_lines;
    }
    Some(all)
}

/// Whether a line of the root `SHA256SUMS` is a period's seal: `<folder>/SHA256SUMS`.
pub fn is_period_checksums(path: &str) -> bool {
    path.strip_suffix(SHA256SUMS)
        .and_then(|folder| folder.strip_suffix('/'))
        .is_some_and(|folder| {
            !folder.is_empty() && !folder.contains('/') && !folder.starts_with('.')
        })
}

/// The root summary's account of the trail: what the run did to each period.
fn trail_section(record: &TrailRecord) -> String {
    let mut out = "## Trail\n\n".to_owned();
    if record.periods.is_empty() {
        out.push_str("This run covered no period.\n\n");
    } else {
        out.push_str(
            "| Period | This run | Reports in the delivery | Ok |\n| --- | --- | ---: | ---: |\n",
        );
        for period in &record.periods {
            let outcome = match period.outcome {
                PeriodOutcome::Written => "written",
                PeriodOutcome::Unchanged => "unchanged",
            };
            let kept = if period.kept_earlier > 0 {
                format!(
                    "; {} failed attempt(s), earlier delivery kept",
                    period.kept_earlier
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| [{0}]({0}/summary.md) | {outcome}{kept} | {1} | {2} |",
                period.folder, period.reports, period.ok
            );
        }
        out.push('\n');
    }
    for note in &record.notes {
        let _ = writeln!(out, "{note}\n");
    }
    let example = record
        .periods
        .first()
        .map_or("2026-10", |p| p.folder.as_str());
    let _ = writeln!(
        out,
        "Each period folder checks on its own (`cd {example} && sha256sum -c SHA256SUMS`); the root `SHA256SUMS` lists every period's `SHA256SUMS`.\n"
    );
    out
}
