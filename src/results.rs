//! What a run produced: per report, its outcome and files. Writers turn this into files.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::discover::DiscoveryRecord;
use crate::period::Period;
use crate::report::{Format, ReportKind, ReportLevel};

/// The record of one run; serialised in this field order as `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub manifest_version: u32,
    pub tool: Tool,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub as_of: Date,
    pub job: JobRef,
    pub base_url: String,
    pub reports: Vec<ReportResult>,
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
}

/// A file written from the report files rather than downloaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedFile {
    /// Relative to the output folder, with `/` separators.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// What it was derived from, in one sentence.
    pub source: String,
}

/// One shard of a sharded run: `index` of `total`, 1-based (like GitLab's `CI_NODE_INDEX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub total: u32,
    /// Reports in the whole plan, over all shards: `merge` checks that the shards ran the same
    /// plan and that together they hold all of it.
    pub plan_reports: usize,
}

impl std::fmt::Display for ShardInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn current() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    pub path: String,
    pub sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportResult {
    pub tenant_id: String,
    pub tenant_name: String,
    pub period: Period,
    pub kind: ReportKind,
    pub level: ReportLevel,
    pub report_id: Option<String>,
    pub status: Status,
    /// Why the report failed, in one sentence.
    pub error: Option<String>,
    pub files: Vec<FileResult>,
    /// Disaster Recovery compute points (seconds ÷ 3600, 2 decimals), when the report has them.
    pub dr_compute_points: Option<f64>,
    /// Problems that did not fail the report (a SKU warning, a failed cleanup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Position of this report in the whole job's plan (0-based), also in a shard's manifest:
    /// `merge` puts the reports of all shards back in this order.
    pub plan_index: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    pub format: Format,
    /// Relative to the output folder, with `/` separators.
    pub path: String,
    pub stored_report_id: String,
    pub bytes: u64,
    pub sha256: String,
    pub sku_check: SkuCheck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkuStatus {
    Ok,
    Missing,
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuCheck {
    pub status: SkuStatus,
    pub rows: u64,
    pub rows_without_sku: u64,
}

impl SkuCheck {
    pub const SKIPPED: SkuCheck = SkuCheck {
        status: SkuStatus::Skipped,
        rows: 0,
        rows_without_sku: 0,
    };
}

impl RunResult {
    pub fn ok_count(&self) -> usize {
        self.reports
            .iter()
            .filter(|r| r.status == Status::Ok)
            .count()
    }

    pub fn failed_count(&self) -> usize {
        self.reports.len() - self.ok_count()
    }

    /// Every file of the run, sorted by path: what `SHA256SUMS` lists.
    pub fn files(&self) -> Vec<&FileResult> {
        let mut files: Vec<&FileResult> = self.reports.iter().flat_map(|r| &r.files).collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }
}
