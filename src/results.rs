//! What a run produced: per report, its outcome and files. Writers turn this into files.

use std::fs::File;
use std::io;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::job::TenantKind;
use crate::period::Period;
use crate::report::{BillingRule, Format, ReportKind, ReportLevel};

/// The record of one run; serialised in this field order as `manifest.json`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The version of this record's layout (1); `verify` refuses any other.
    pub manifest_version: u32,
    /// The program that wrote the record.
    pub tool: Tool,
    /// When the run started.
    pub started_at: Timestamp,
    /// When the run finished.
    pub finished_at: Timestamp,
    /// The day the job's periods were resolved against.
    pub as_of: Date,
    /// The job file the run followed.
    pub job: JobRef,
    /// The API base URL the run talked to.
    pub base_url: String,
    /// In plan order.
    pub reports: ReportLog,
    /// Which part of the plan this run covered (`run --shard I/N`); absent for a whole run and
    /// for the output of `merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// What each `children_of` entry found, and which tenants were in scope and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovery: Vec<DiscoveryRecord>,
    /// Files the run derived from the report files (`billing.csv`): listed in `SHA256SUMS` and
    /// verified like the report files, which they never replace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_files: Vec<DerivedFile>,
    /// How `billing.csv` chose each line's billable value (the job's `billing` section); the
    /// vendor's rule in manifests written before it was recorded.
    #[serde(default)]
    pub billing_rule: BillingRule,
    /// Only in a period's own `manifest.json`: the period folder (e.g. `2026-10`) that the
    /// paths of this record are relative to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_folder: Option<String>,
    /// Only in the root `manifest.json` of a trail: what the run did to each period it covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail: Option<TrailRecord>,
}

/// What a run did to the periods of the output folder (the trail).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailRecord {
    /// The periods this run covered, in date order.
    pub periods: Vec<PeriodEntry>,
    /// What else a reader of the trail should know (an upgrade from the single-run layout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

/// One period folder of the trail after the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodEntry {
    /// The folder, relative to the output folder (the period's label, e.g. `2026-10`).
    pub folder: String,
    pub(crate) outcome: PeriodOutcome,
    /// Reports the period's delivery holds, and how many of them are ok.
    pub(crate) reports: usize,
    pub(crate) ok: usize,
    /// Reports of this run whose attempt failed while the period kept an earlier record of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) kept_earlier: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a run did to one period folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PeriodOutcome {
    /// Its delivery was written anew (new reports or files, another billing rule, an upgrade).
    Written,
    /// Every report of the run was already in the delivery as it was: not a byte changed.
    Unchanged,
}

/// A file written from the report files rather than downloaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedFile {
    /// Relative to the output folder, with `/` separators.
    pub path: String,
    /// The file's size.
    pub bytes: u64,
    pub(crate) sha256: String,
    /// What it was derived from, in one sentence.
    pub(crate) source: String,
}

/// One shard of a sharded run: `index` of `total`, 1-based (like GitLab's `CI_NODE_INDEX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub(crate) index: u32,
    pub(crate) total: u32,
    /// Reports in the whole plan, over all shards: `merge` checks that the shards ran the same
    /// plan and that together they hold all of it.
    pub(crate) plan_reports: usize,
}

impl std::fmt::Display for ShardInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// A program and its version, as the manifest records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// The crate's name (`acronis-reports`).
    pub name: String,
    pub(crate) version: String,
}

impl Tool {
    /// This program.
    pub fn current() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// A job file, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    /// The path as given on the command line.
    pub path: String,
    /// SHA-256 (hex) of its bytes.
    pub sha256: String,
}

/// Whether a report was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every file downloaded and checked.
    Ok,
    /// The report, or one of its files, could not be delivered; `error` says why.
    Failed,
}

/// The outcome of one report of the plan, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportResult {
    /// The tenant the report is about.
    pub tenant_id: String,
    /// The tenant's name.
    pub tenant_name: String,
    /// The period the report covers.
    pub period: Period,
    /// The report's `type`.
    pub kind: ReportKind,
    /// The report's `level`.
    pub level: ReportLevel,
    /// The API's id of the report, once it was created.
    pub report_id: Option<String>,
    /// Whether the report was delivered.
    pub status: Status,
    /// Why the report failed, in one sentence.
    pub error: Option<String>,
    /// The files downloaded, one per format asked for (fewer when it failed).
    pub files: Vec<FileResult>,
    /// Disaster Recovery compute points (seconds ÷ 3600, 2 decimals), when the report has them.
    pub dr_compute_points: Option<f64>,
    /// Problems that did not fail the report (a SKU warning, a failed cleanup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Position of this report in the whole job's plan (0-based), also in a shard's manifest:
    /// `merge` puts the reports of all shards back in this order.
    pub plan_index: usize,
    /// How long the server took to generate it, when this run created it (the next runs order
    /// and aim their polls by it, see [`crate::history`]). Absent in records written before it
    /// was recorded, and for reports taken over from an earlier run or whose files were reused;
    /// a value that does not read as one is taken as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "Timing::lenient"
    )]
    pub timing: Option<Timing>,
}

/// What one report's generation took, as this run's polls saw it (times from its creation, as
/// the client measured it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// The first poll that saw every format saved: the generation time, plus at most the gap
    /// since the poll before it.
    pub(crate) ready_after_ms: u64,
    /// The last poll before that which saw the report still pending: the generation time lies
    /// between the two. Absent when the first poll already saw it saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending_at_ms: Option<u64>,
    /// Polls of the stored list, from the first to the one that saw it saved.
    pub(crate) polls: u32,
    /// The generation time the trail's earlier periods led this run to expect for its tenant;
    /// absent for a tenant without history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expected_ms: Option<u64>,
    /// Set when this run found the tenant much slower or faster than its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) changed: Option<Changed>,
}

/// How a tenant broke with its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Changed {
    /// Still pending at [`crate::poll`]'s limit past the expected time: it was polled like a
    /// tenant without history from there.
    Slower,
    /// Saved at a first poll that came before the expected time: how much faster is unknown.
    Faster,
}

impl Timing {
    /// A timing that does not read (a hand-edited or damaged record) is left out rather than
    /// making the whole record unreadable: it only ever guides polling.
    fn lenient<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Timing>, D::Error> {
        let value = Option::<serde_json::Value>::deserialize(deserializer)?;
        Ok(value.and_then(|value| serde_json::from_value(value).ok()))
    }
}

/// One downloaded file of a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    /// The file's format.
    pub format: Format,
    /// Relative to the output folder, with `/` separators.
    pub path: String,
    /// The id of the stored file on the server it was downloaded from.
    pub stored_report_id: String,
    /// The file's size.
    pub bytes: u64,
    /// SHA-256 (hex) of the file's bytes.
    pub sha256: String,
    /// Whether each row has a SKU, when SKUs were asked for.
    pub sku_check: SkuCheck,
    /// Whether the file is a report we can bill from; absent in manifests written before the
    /// check existed.
    #[serde(default = "ContentCheck::not_recorded")]
    pub content_check: ContentCheck,
}

/// The outcome of a check on a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The check passed.
    Ok,
    /// The check failed; the report fails with it.
    Failed,
    /// The check did not apply (a legacy format, or nothing asked for it).
    Skipped,
}

/// The content check of one file: a layout we can read, well-formed rows, a billable value in
/// each. A failed check fails its report; the file is still kept and listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentCheck {
    /// Whether the file passed.
    pub status: CheckStatus,
    /// Usage rows read (up to the problem, when it failed).
    pub rows: u64,
    /// What is wrong, naming the line and column or the columns found and expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl ContentCheck {
    /// The check of a file that is not checked (a legacy format).
    pub const SKIPPED: ContentCheck = ContentCheck {
        status: CheckStatus::Skipped,
        rows: 0,
        problem: None,
    };

    fn not_recorded() -> ContentCheck {
        ContentCheck::SKIPPED
    }
}

/// The outcome of the SKU check of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkuStatus {
    /// Every row has a SKU.
    Ok,
    /// Some rows have no SKU (or the file has no SKU column).
    Missing,
    /// SKUs were not asked for, or the format has none.
    Skipped,
}

/// The SKU check of one file: how many rows lack a SKU, when SKUs were asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuCheck {
    /// The outcome.
    pub status: SkuStatus,
    /// Usage rows read.
    pub rows: u64,
    /// Rows without a SKU.
    pub rows_without_sku: u64,
    /// The SKU column (or JSON key) as the file names it; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl SkuCheck {
    /// The check of a file whose SKUs are not checked.
    pub const SKIPPED: SkuCheck = SkuCheck {
        status: SkuStatus::Skipped,
        rows: 0,
        rows_without_sku: 0,
        column: None,
    };
}

impl RunResult {
    /// How many reports were delivered.
    pub fn ok_count(&self) -> usize {
        self.reports.ok_count()
    }

    /// How many reports failed.
    pub fn failed_count(&self) -> usize {
        self.reports.failed_count()
    }
}

/// What the summary and the CI annotations keep of a report with problems (it failed, or has
/// warnings) while they read a run's reports: its sort key — period, tenant name and id, then
/// plan position — and how many problems it has.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ProblemKey {
    pub period: Period,
    pub(crate) tenant_name: String,
    pub(crate) tenant_id: String,
    pub(crate) position: usize,
    pub(crate) failed: bool,
    pub(crate) warnings: usize,
}

impl ProblemKey {
    /// The key of the report at `position`, if it has a problem.
    pub(crate) fn of(position: usize, report: &ReportResult) -> Option<ProblemKey> {
        let failed = report.status == Status::Failed;
        (failed || !report.warnings.is_empty()).then(|| ProblemKey {
            period: report.period,
            tenant_name: report.tenant_name.clone(),
            tenant_id: report.tenant_id.clone(),
            position,
            failed,
            warnings: report.warnings.len(),
        })
    }

    /// Its failure, if any, and each warning: one item each.
    pub(crate) fn count(&self) -> usize {
        usize::from(self.failed) + self.warnings
    }
}

/// The reports of a run, one slot per plan position, held in an anonymous temporary file rather
/// than in memory: a run of 10 000 reports keeps a few bytes per report, and its outputs read the
/// records back one at a time. Slots can be filled in any order and replaced.
pub struct ReportLog {
    file: File,
    end: u64,
    slots: Vec<Option<Slot>>,
    ok: usize,
    files: usize,
}

/// Where a record is in the file, and the counts [`ReportLog`] answers without reading it.
#[derive(Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
    ok: bool,
    files: u32,
}

impl ReportLog {
    /// A log of `len` empty slots, to be filled with [`ReportLog::set`].
    pub(crate) fn with_slots(len: usize) -> io::Result<Self> {
        let file = tempfile::tempfile().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a temporary file for the run's results: {e}"),
            )
        })?;
        let mut slots = Vec::new();
        slots.resize_with(len, || None);
        Ok(ReportLog {
            file,
            end: 0,
            slots,
            ok: 0,
            files: 0,
        })
    }

    /// A log holding `reports`, in their order.
    pub fn of(reports: impl IntoIterator<Item = ReportResult>) -> io::Result<Self> {
        let mut log = Self::with_slots(0)?;
        for report in reports {
            log.push(&report)?;
        }
        Ok(log)
    }

    /// Adds a slot holding `report`.
    pub fn push(&mut self, report: &ReportResult) -> io::Result<()> {
        self.slots.push(None);
        self.set(self.slots.len() - 1, report)
    }

    /// How many slots the log holds: the reports of the plan (or of the shard).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the log holds no slot.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Reports whose status is ok.
    pub(crate) fn ok_count(&self) -> usize {
        self.ok
    }

    /// Reports that failed, or whose slot was never filled.
    pub(crate) fn failed_count(&self) -> usize {
        self.len() - self.ok
    }

    /// Files of all reports.
    pub(crate) fn file_count(&self) -> usize {
        self.files
    }

    /// Puts `report` in slot `position`, replacing what was there.
    ///
    /// # Panics
    /// If `position` is not below [`ReportLog::len`].
    pub(crate) fn set(&mut self, position: usize, report: &ReportResult) -> io::Result<()> {
        let bytes = serde_json::to_vec(report)?;
        let len = u32::try_from(bytes.len()).map_err(|_| {
            io::Error::other(format!(
                "the record of {} {} is too large to keep ({} bytes)",
                report.tenant_name,
                report.period,
                bytes.len()
            ))
        })?;
        write_all_at(&self.file, &bytes, self.end).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot keep the result of {} {} in the run's temporary file: {e}",
                    report.tenant_name, report.period
                ),
            )
        })?;
        let slot = Slot {
            offset: self.end,
            len,
            ok: report.status == Status::Ok,
            files: u32::try_from(report.files.len()).unwrap_or(u32::MAX),
        };
        self.end += u64::from(len);
        if let Some(old) = self.slots[position].replace(slot) {
            self.ok -= usize::from(old.ok);
            self.files -= old.files as usize;
        }
        self.ok += usize::from(slot.ok);
        self.files += slot.files as usize;
        Ok(())
    }

    /// The report in slot `position`.
    ///
    /// # Panics
    /// If `position` is not below [`ReportLog::len`].
    pub(crate) fn get(&self, position: usize) -> io::Result<ReportResult> {
        let Some(slot) = self.slots[position] else {
            return Err(io::Error::other(format!(
                "no result was recorded for report {position} of the run"
            )));
        };
        let mut bytes = vec![0; slot.len as usize];
        read_exact_at(&self.file, &mut bytes, slot.offset).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read the run's results back from their temporary file: {e}"),
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::other(format!(
                "the result of report {position} of the run is damaged in its temporary file: {e}"
            ))
        })
    }

    /// Changes the report in slot `position`.
    pub(crate) fn update(
        &mut self,
        position: usize,
        change: impl FnOnce(&mut ReportResult),
    ) -> io::Result<()> {
        let mut report = self.get(position)?;
        change(&mut report);
        self.set(position, &report)
    }

    /// The reports in slot order, read one at a time.
    pub fn iter(&self) -> impl Iterator<Item = io::Result<ReportResult>> + '_ {
        (0..self.len()).map(|position| self.get(position))
    }

    /// Whether every slot holds a report.
    pub(crate) fn is_complete(&self) -> bool {
        self.slots.iter().all(Option::is_some)
    }

    /// Every report, in memory: for the few places that need them all at once.
    pub(crate) fn to_vec(&self) -> io::Result<Vec<ReportResult>> {
        self.iter().collect()
    }
}

impl std::fmt::Debug for ReportLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_vec() {
            Ok(reports) => f.debug_list().entries(reports).finish(),
            Err(e) => write!(f, "<{} reports: {e}>", self.len()),
        }
    }
}

impl PartialEq for ReportLog {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| matches!((a, b), (Ok(a), Ok(b)) if a == b))
    }
}

impl Serialize for ReportLog {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for report in self.iter() {
            seq.serialize_element(&report.map_err(S::Error::custom)?)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ReportLog {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Records;
        impl<'de> serde::de::Visitor<'de> for Records {
            type Value = ReportLog;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of reports")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ReportLog, A::Error> {
                use serde::de::Error;
                let mut log = ReportLog::with_slots(0).map_err(A::Error::custom)?;
                while let Some(report) = seq.next_element::<ReportResult>()? {
                    log.push(&report).map_err(A::Error::custom)?;
                }
                Ok(log)
            }
        }
        deserializer.deserialize_seq(Records)
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, bytes: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        let n = file.seek_write(bytes, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut bytes: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        let n = file.seek_read(bytes, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        bytes = &mut bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

/// What one `children_of` entry found: the record of which children were in scope, and why
/// each one left out was. Here, beside the run's other records, so that the manifest's types
/// depend on nothing that talks to the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryRecord {
    pub(crate) children_of: String,
    pub(crate) recursive: bool,
    pub(crate) kinds: Vec<TenantKind>,
    /// The tenants listed, whether they were kept or not.
    pub tenants: Vec<DiscoveredTenant>,
}

/// One tenant a `children_of` entry listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredTenant {
    pub(crate) id: String,
    /// The tenant's display name, as the API gave it.
    pub name: String,
    pub(crate) kind: Option<String>,
    pub(crate) enabled: Option<bool>,
    pub(crate) pricing_mode: Option<String>,
    pub(crate) included: bool,
    /// Why a tenant was left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures::contract_run;

    fn named(name: &str, status: Status, files: usize) -> ReportResult {
        let mut report = contract_run().reports.get(0).unwrap();
        report.tenant_name = name.to_owned();
        report.status = status;
        let file = report.files[0].clone();
        report.files = vec![file; files];
        report
    }

    #[test]
    fn slots_filled_out_of_order_read_back_in_slot_order() {
        let mut log = ReportLog::with_slots(3).unwrap();
        assert!(!log.is_complete());
        log.set(2, &named("c", Status::Ok, 1)).unwrap();
        log.set(0, &named("a", Status::Failed, 0)).unwrap();
        let err = log.get(1).unwrap_err();
        assert!(err.to_string().contains("report 1"), "{err}");
        log.set(1, &named("b", Status::Ok, 2)).unwrap();
        assert!(log.is_complete());
        let names: Vec<String> = log.iter().map(|r| r.unwrap().tenant_name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(
            (log.ok_count(), log.failed_count(), log.file_count()),
            (2, 1, 3)
        );
    }

    #[test]
    fn replacing_a_report_replaces_its_counts() {
        let mut log =
            ReportLog::of([named("a", Status::Ok, 2), named("b", Status::Ok, 1)]).unwrap();
        log.update(0, |r| {
            r.status = Status::Failed;
            r.files.clear();
            r.warnings.push("w".into());
        })
        .unwrap();
        assert_eq!(
            (log.ok_count(), log.failed_count(), log.file_count()),
            (1, 1, 1)
        );
        assert_eq!(log.get(0).unwrap().warnings, ["w"]);
        assert_eq!(log.get(1).unwrap(), named("b", Status::Ok, 1));
    }

    #[test]
    fn a_timing_is_optional_and_one_that_does_not_read_is_left_out() {
        let mut report = named("a", Status::Ok, 1);
        report.timing = Some(Timing {
            ready_after_ms: 1500,
            pending_at_ms: Some(1450),
            polls: 3,
            expected_ms: Some(1480),
            changed: Some(Changed::Slower),
        });
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["timing"],
            serde_json::json!({"ready_after_ms": 1500, "pending_at_ms": 1450, "polls": 3, "expected_ms": 1480, "changed": "slower"})
        );
        assert_eq!(
            serde_json::from_value::<ReportResult>(json.clone()).unwrap(),
            report
        );
        for odd in [
            serde_json::json!(null),
            serde_json::json!({"ready_after_ms": -1, "polls": 1}),
            serde_json::json!({"ready_after_ms": "soon"}),
            serde_json::json!([1, 2]),
            serde_json::json!({"ready_after_ms": 1, "polls": 1, "changed": "sideways"}),
        ] {
            let mut json = json.clone();
            json["timing"] = odd;
            let read: ReportResult = serde_json::from_value(json).expect("the record still reads");
            assert_eq!(read.timing, None);
        }
        let mut older = json;
        older.as_object_mut().unwrap().remove("timing");
        assert_eq!(
            serde_json::from_value::<ReportResult>(older)
                .unwrap()
                .timing,
            None
        );
    }

    #[test]
    fn serialises_as_the_list_it_holds() {
        let reports = vec![named("a", Status::Ok, 1), named("b", Status::Failed, 0)];
        let log = ReportLog::of(reports.clone()).unwrap();
        let json = serde_json::to_string(&log).unwrap();
        assert_eq!(json, serde_json::to_string(&reports).unwrap());
        let back: ReportLog = serde_json::from_str(&json).unwrap();
        assert_eq!(back, log);
        assert_eq!(back.to_vec().unwrap(), reports);
        assert_eq!((back.ok_count(), back.file_count()), (1, 1));
    }
}
