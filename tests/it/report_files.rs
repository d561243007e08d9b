//! The reader of report files against files written by hand from the vendor's column list
//! (`fixtures/reports/`, never by the sandbox): for each, what the content and SKU checks say
//! and the exact `billing.csv` lines, as snapshots.

use std::path::Path;
use std::sync::Arc;

use acronis_reports::checks::Inspection;
use acronis_reports::output::billing;
use acronis_reports::period::Period;
use acronis_reports::report::{BillingRule, Format, ReportKind, ReportLevel};
use acronis_reports::results::{CheckStatus, FileResult, ReportLog, ReportResult, Status};

const REPORT_TENANT: &str = "a1b2c3d4-0000-4000-8000-000000000001";

/// Every fixture, with its format and whether its content check passes. Listed rather than
/// globbed, so a missing file fails instead of being skipped.
const FIXTURES: [(&str, Format, bool); 10] = [
    (
        "vendor-reordered-bom-crlf.csv_v2_0.csv",
        Format::CsvV2,
        true,
    ),
    (
        "no-edition-offering-item-sku.csv_v2_0.csv",
        Format::CsvV2,
        true,
    ),
    ("no-sku-column.csv_v2_0.csv", Format::CsvV2, true),
    // Every row well formed, but the rows of one line bill on two measures: no lines, a warning.
    ("one-tenant-two-kinds.csv_v2_0.csv", Format::CsvV2, false),
    ("usage-objects.json_v2_0.json", Format::JsonV2, true),
    ("unknown-header.csv_v2_0.csv", Format::CsvV2, false),
    ("login-page.csv_v2_0.csv", Format::CsvV2, false),
    ("bad-number.csv_v2_0.csv", Format::CsvV2, false),
    ("no-usage-objects.json_v2_0.json", Format::JsonV2, false),
    // The same login page where a JSON report was expected.
    ("login-page.csv_v2_0.csv", Format::JsonV2, false),
];

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/reports"))
}

/// What the checks and billing make of one fixture, as text for a snapshot.
fn describe(name: &str, format: Format, rule: &BillingRule) -> (bool, String) {
    let path = fixtures().join(name);
    let inspection = Inspection {
        format,
        check_skus: true,
        rule: Arc::new(rule.clone()),
    };
    let facts = inspection
        .inspect(std::fs::File::open(&path).expect("fixture"))
        .expect("fixture readable");
    let ok = facts.content_check.status == CheckStatus::Ok;
    let mut text = format!(
        "content check: {:?}, {} rows{}\nsku check: {:?}, {} of {} rows without, column {:?}\n",
        facts.content_check.status,
        facts.content_check.rows,
        facts
            .content_check
            .problem
            .as_ref()
            .map(|p| format!("\n  {p}"))
            .unwrap_or_default(),
        facts.sku_check.status,
        facts.sku_check.rows_without_sku,
        facts.sku_check.rows,
        facts.sku_check.column,
    );
    let report = ReportResult {
        tenant_id: REPORT_TENANT.into(),
        tenant_name: "northwind".into(),
        period: Period {
            start: jiff::civil::date(2026, 10, 1),
            end: jiff::civil::date(2026, 10, 31),
        },
        kind: ReportKind::UsageSummary,
        level: ReportLevel::DirectPartners,
        report_id: Some("r1".into()),
        status: if ok { Status::Ok } else { Status::Failed },
        error: None,
        files: vec![FileResult {
            format,
            path: name.into(),
            stored_report_id: "s1".into(),
            bytes: 0,
            sha256: String::new(),
            content_check: facts.content_check,
            sku_check: facts.sku_check,
        }],
        dr_compute_points: None,
        warnings: Vec::new(),
        plan_index: 0,
        timing: None,
    };
    let mut out = Vec::new();
    let written = billing::write(
        fixtures(),
        &ReportLog::of(vec![report]).expect("log"),
        rule,
        &mut out,
    )
    .expect("billing.csv written");
    text.push_str("billing.csv:\n");
    text.push_str(&String::from_utf8(out).expect("UTF-8"));
    for (_, warning) in &written.warnings {
        text.push_str(&format!("warning: {warning}\n"));
    }
    for (_, points) in &written.dr_compute_points {
        text.push_str(&format!("DR compute points: {points:.2}\n"));
    }
    (ok, text)
}

#[test]
fn every_fixture_gives_its_checks_and_billing_lines() {
    let mut seen = 0;
    for (name, format, passes) in FIXTURES {
        let (ok, text) = describe(name, format, &BillingRule::default());
        assert_eq!(ok, passes, "{name} as {format}:\n{text}");
        insta::assert_snapshot!(format!("{name}-as-{format}"), text);
        seen += 1;
    }
    assert_eq!(seen, FIXTURES.len());
}

#[test]
fn the_billing_rule_can_be_overridden() {
    let rule = BillingRule {
        scope: acronis_reports::report::BillingScope::Total,
        measure: acronis_reports::report::BillingMeasure::Absolute,
        delta_items: Vec::new(),
    };
    let (_, text) = describe(
        "vendor-reordered-bom-crlf.csv_v2_0.csv",
        Format::CsvV2,
        &rule,
    );
    insta::assert_snapshot!(text);
}
