//! summary.md: its size limit, and day-by-day lines never summed.

use super::*;

fn october() -> Period {
    Period {
        start: jiff::civil::date(2026, 10, 1),
        end: jiff::civil::date(2026, 10, 31),
    }
}

#[test]
fn ten_thousand_tenants_summarise_under_one_mib() {
    let reports: Vec<ReportResult> = (0..10_000)
        .map(|i| {
            let name = format!("tenant {i:05} {}", "x".repeat(60));
            let file = |format: Format, ext: &str| FileResult {
                format,
                path: format!("2026-10/{name}/usage_summary.{format}.{ext}"),
                stored_report_id: format!("stored-{i}"),
                bytes: 4945,
                sha256: "ab".repeat(32),
                sku_check: SkuCheck {
                    status: SkuStatus::Ok,
                    rows: 42,
                    rows_without_sku: 0,
                    column: Some("sku".into()),
                },
                content_check: ContentCheck::SKIPPED,
            };
            let failed = i % 1000 == 999;
            ReportResult {
                tenant_id: format!("00000000-0000-4000-8000-{i:012}"),
                tenant_name: name.clone(),
                period: october(),
                kind: ReportKind::UsageSummary,
                level: ReportLevel::DirectPartners,
                report_id: Some(format!("report-{i}")),
                status: if failed { Status::Failed } else { Status::Ok },
                error: failed.then(|| format!("HTTP 500 {}", "e".repeat(500))),
                files: if failed {
                    Vec::new()
                } else {
                    vec![file(Format::CsvV2, "csv"), file(Format::JsonV2, "json")]
                },
                dr_compute_points: Some(12.5),
                warnings: if i % 100 == 0 {
                    vec![format!(
                        "the csv_v2_0 and json_v2_0 files disagree {}",
                        "w".repeat(300)
                    )]
                } else {
                    Vec::new()
                },
                plan_index: i,
                timing: None,
            }
        })
        .collect();
    let result = RunResult {
        manifest_version: 1,
        tool: Tool::current(),
        started_at: "2026-11-01T06:00:00Z".parse().unwrap(),
        finished_at: "2026-11-01T07:00:00Z".parse().unwrap(),
        as_of: jiff::civil::date(2026, 11, 1),
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
    };
    // Far more tenant × SKU rows than the summary shows.
    let invoice = (0..5_000)
        .map(|i| InvoiceRow {
            period: october(),
            tenant_name: format!("tenant {i:05} {}", "t".repeat(60)),
            tenant_id: format!("00000000-0000-4000-8000-{i:012}"),
            sku: format!("SKU{i:05}{}", "s".repeat(80)),
            offering_item: format!("offering {i} {}", "o".repeat(80)),
            unit: "bytes".into(),
            value: "1073741824000".into(),
        })
        .collect();
    let skus = (0..5_000)
        .map(|i| SkuTotal {
            period: october(),
            sku: format!("SKU{i:05}{}", "s".repeat(80)),
            offering_item: format!("offering {i} {}", "o".repeat(80)),
            unit: "bytes".into(),
            value: "1073741824000".into(),
            tenants: 9_990,
        })
        .collect();
    let billing = BillingSummary {
        lines: 420_000,
        reports: 9_990,
        invoice,
        skus,
        invoice_left_out: 100_000,
        ..BillingSummary::default()
    };
    let text = summary::render(&result, Some(&billing), &[]).unwrap();
    assert!(text.len() < summary::MAX_BYTES, "{} bytes", text.len());
    assert!(text.starts_with("# Acronis billing reports"));
    assert!(
        text.contains("**9990 of 10000 reports ok, 10 failed**"),
        "{}",
        &text[..400]
    );
    assert!(text.contains("From billing.csv: 420000 invoice lines of 9990 reports"));
    assert!(
        text.contains("_4800 more SKUs not shown"),
        "totals are cut with a note"
    );
    assert!(
        text.contains("_104000 more tenant × SKU rows not shown"),
        "the invoice view is cut with a note"
    );
    assert!(text.contains("<details><summary>10000 reports: 9990 ok, 10 failed</summary>"));
    assert!(
        text.contains("for this period not shown"),
        "the table is cut with a note"
    );
    // Problems come last and every failure is among them.
    let problems = &text[text.find("## Problems").expect("a problems section")..];
    assert_eq!(problems.matches(": failed: HTTP 500").count(), 10);
}

/// A day-by-day report's lines are in billing.csv, but the summary's tables do not sum a month
/// of days (each device would count once a day).
#[test]
fn day_by_day_lines_are_not_summed_in_the_summary() {
    let scratch = Scratch::new(SCENARIO);
    let job = JOB.replace(
        "  periods: [previous_month]\n",
        "  periods: [previous_month]\n  kind: usage_daily\n",
    );
    assert_ne!(job, JOB);
    std::fs::write(scratch.path("job.yml"), job).unwrap();
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let billing = std::fs::read_to_string(out.join("2026-10/billing.csv")).unwrap();
    let day = billing
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "day")
        .unwrap();
    let daily = billing
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(day).is_some_and(|d| !d.is_empty()))
        .count();
    assert!(daily > 28, "a month of days: {daily}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("of day-by-day reports are in billing.csv but not summed below"),
        "{summary}"
    );
    // Levels (devices) are not summed over the days; only compute points are.
    assert!(!summary.contains("pw\\_base\\_workstations"), "{summary}");
}
