//! What a run produced: per report, its outcome and files. Writers turn this into files.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::period::Period;
use crate::report::{Format, ReportKind, ReportLevel};

/// The record of one run; serialised in this field order as `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunResult {
    pub manifest_version: u32,
    pub tool: Tool,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub as_of: Date,
    pub job: JobRef,
    pub base_url: String,
    pub reports: Vec<ReportResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobRef {
    pub path: String,
    pub sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileResult {
    pub format: Format,
    /// Relative to the output folder, with `/` separators.
    pub path: String,
    pub stored_report_id: String,
    pub bytes: u64,
    pub sha256: String,
    pub sku_check: SkuCheck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkuStatus {
    Ok,
    Missing,
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
