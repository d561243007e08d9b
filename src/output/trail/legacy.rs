//! A folder of the single-run layout (one `SHA256SUMS` for everything, written by 0.1): its root
//! record cut into periods, so that the next run upgrades it into a trail.

use std::collections::BTreeMap;
use std::path::Path;

use super::intent::Move;
use super::open::read_seal;
use super::{LEGACY, TrailError, is_report_path, relative_to};
use crate::output::billing::BILLING_CSV;
use crate::output::{MANIFEST, SHA256SUMS, SUMMARY};
use crate::results::{ReportLog, ReportResult, RunResult};
use crate::state::STATE_DIR;

/// The root records of the single-run layout, moved to `.acronis-reports/legacy/` by the upgrade.
const ROOT_RECORDS: [&str; 4] = [SHA256SUMS, MANIFEST, SUMMARY, BILLING_CSV];

/// A root record of the single-run layout, cut into periods.
pub(super) struct Legacy {
    pub periods: BTreeMap<String, Vec<ReportResult>>,
    header: RunResult,
}

impl Legacy {
    pub(crate) fn of(dir: &Path, record: RunResult) -> Result<Self, TrailError> {
        let manifest = dir.join(MANIFEST);
        let unreadable = |source| TrailError::Io {
            path: manifest.clone(),
            source,
        };
        // The old root SHA256SUMS is the seal; the old manifest was never listed in it, so a
        // file's checksum is taken from the seal where it has one.
        let sealed = read_seal(&dir.join(SHA256SUMS))
            .ok()
            .flatten()
            .map(|seal| seal.listed)
            .unwrap_or_default();
        let mut periods: BTreeMap<String, Vec<ReportResult>> = BTreeMap::new();
        for report in record.reports.iter() {
            let mut report = report.map_err(unreadable)?;
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
            if let Some(file) = local.files.iter().find(|f| !is_report_path(&f.path)) {
                return Err(TrailError::Record {
                    path: manifest.clone(),
                    reason: format!(
                        "it lists the report file {prefix}{:?} of {who}, which is not a path inside its period folder; the record was edited, and no run acts on it",
                        file.path
                    ),
                });
            }
            periods.entry(label).or_default().push(local);
        }
        let header = RunResult {
            reports: ReportLog::with_slots(0).map_err(unreadable)?,
            ..record
        };
        Ok(Self { periods, header })
    }

    /// The period's part of the single-run record, as the period's delivery would record it.
    pub(crate) fn record_of(&self, label: &str) -> Option<RunResult> {
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

    /// The renames that take the single-run root records out of the way of the trail's, into
    /// `.acronis-reports/legacy/`; refused when that folder already holds one of them (it would
    /// be lost, and undoing an interrupted upgrade could not tell the two apart).
    pub(crate) fn moves(dir: &Path) -> Result<Vec<Move>, String> {
        let mut moves = Vec::new();
        for name in ROOT_RECORDS {
            let to = format!("{STATE_DIR}/{LEGACY}/{name}");
            if std::fs::symlink_metadata(dir.join(&to)).is_ok() {
                return Err(format!(
                    "{to} is already there (left by another upgrade); move it out of the folder and run again"
                ));
            }
            if std::fs::symlink_metadata(dir.join(name)).is_ok() {
                moves.push(Move::undone(name.to_owned(), to));
            }
        }
        Ok(moves)
    }
}
