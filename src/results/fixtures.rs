//! Run records for unit tests: the contract's example, and small runs of named reports.

use jiff::civil::date;

use crate::period::Period;
use crate::report::{Format, ReportKind, ReportLevel};
use crate::results::{
    ContentCheck, FileResult, JobRef, ReportLog, ReportResult, RunResult, SkuCheck, SkuStatus,
    Status, Tool,
};

/// The run the contract example describes, as our types hold it.
pub(crate) fn contract_run() -> RunResult {
    RunResult {
        manifest_version: 1,
        tool: Tool {
            name: "acronis-reports".into(),
            version: "0.1.0".into(),
        },
        started_at: "2026-11-01T06:00:00Z".parse().unwrap(),
        finished_at: "2026-11-01T06:04:10Z".parse().unwrap(),
        as_of: date(2026, 11, 1),
        job: JobRef {
            path: "billing.yml".into(),
            sha256: "<hex>".into(),
        },
        base_url: "https://eu2-cloud.acronis.com".into(),
        reports: ReportLog::of(vec![ReportResult {
            tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
            tenant_name: "acme".into(),
            period: Period {
                start: date(2026, 10, 1),
                end: date(2026, 10, 31),
            },
            kind: ReportKind::UsageSummary,
            level: ReportLevel::DirectPartners,
            report_id: Some("20dffb36-d77b-45c6-b2fa-39276e98d5fc".into()),
            status: Status::Ok,
            error: None,
            files: vec![FileResult {
                format: Format::CsvV2,
                path: "2026-10/acme/usage_summary.csv_v2_0.csv".into(),
                stored_report_id: "479040dc-e18e-4136-98ce-635c3bc7dbae".into(),
                bytes: 4945,
                sha256: "<hex>".into(),
                content_check: ContentCheck::SKIPPED,
                sku_check: SkuCheck {
                    status: SkuStatus::Ok,
                    rows: 42,
                    rows_without_sku: 0,
                    column: Some("sku".into()),
                },
            }],
            dr_compute_points: None,
            warnings: Vec::new(),
            plan_index: 0,
            timing: None,
        }])
        .unwrap(),
        shard: None,
        discovery: Vec::new(),
        derived_files: Vec::new(),
        billing_rule: Default::default(),
        period_folder: None,
        trail: None,
    }
}

pub(crate) fn october() -> Period {
    Period {
        start: date(2026, 10, 1),
        end: date(2026, 10, 31),
    }
}

pub(crate) fn ok_report(tenant: &str, period: Period) -> ReportResult {
    ReportResult {
        tenant_id: format!("{tenant}-id"),
        tenant_name: tenant.to_owned(),
        period,
        kind: ReportKind::UsageSummary,
        level: ReportLevel::DirectPartners,
        report_id: Some(format!("{tenant}-report")),
        status: Status::Ok,
        error: None,
        files: vec![FileResult {
            format: Format::CsvV2,
            path: format!("{}/{tenant}/usage_summary.csv_v2_0.csv", period.label()),
            stored_report_id: format!("{tenant}-stored"),
            bytes: 100,
            sha256: "ab".repeat(32),
            content_check: ContentCheck::SKIPPED,
            sku_check: SkuCheck {
                status: SkuStatus::Ok,
                rows: 3,
                rows_without_sku: 0,
                column: Some("sku".into()),
            },
        }],
        dr_compute_points: None,
        warnings: Vec::new(),
        plan_index: 0,
        timing: None,
    }
}

pub(crate) fn failed_report(tenant: &str, period: Period, error: &str) -> ReportResult {
    ReportResult {
        status: Status::Failed,
        error: Some(error.to_owned()),
        files: Vec::new(),
        ..ok_report(tenant, period)
    }
}

pub(crate) fn run_of(reports: Vec<ReportResult>) -> RunResult {
    RunResult {
        manifest_version: 1,
        tool: Tool {
            name: "acronis-reports".into(),
            version: "0.1.0".into(),
        },
        started_at: "2026-11-01T06:00:00Z".parse().unwrap(),
        finished_at: "2026-11-01T06:04:10Z".parse().unwrap(),
        as_of: date(2026, 11, 1),
        job: JobRef {
            path: "billing.yml".into(),
            sha256: "cd".repeat(32),
        },
        base_url: "https://eu2-cloud.acronis.com".into(),
        reports: ReportLog::of(reports).unwrap(),
        shard: None,
        discovery: Vec::new(),
        derived_files: Vec::new(),
        billing_rule: Default::default(),
        period_folder: None,
        trail: None,
    }
}
