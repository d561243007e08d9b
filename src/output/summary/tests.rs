use super::*;
use crate::output::billing::{InvoiceRow, SkuTotal};
use crate::results::SkuCheck;
use crate::results::fixtures::contract_run;
use jiff::civil::date;

fn report(tenant: &str, period: Period) -> ReportResult {
    let mut report = contract_run().reports.get(0).unwrap();
    report.tenant_name = tenant.to_owned();
    report.period = period;
    for file in &mut report.files {
        file.sha256 = "0123456789abcdef".repeat(4);
    }
    report
}

fn october() -> Period {
    Period {
        start: date(2026, 10, 1),
        end: date(2026, 10, 31),
    }
}

fn run_of(reports: Vec<ReportResult>) -> RunResult {
    RunResult {
        reports: ReportLog::of(reports).unwrap(),
        ..contract_run()
    }
}

fn table_rows(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Tenant") && !l.starts_with("| ---"))
        .collect()
}

#[test]
fn all_ok_leads_with_the_outcome() {
    let text = render(&run_of(vec![report("acme", october())]), None, &[]).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# Acronis billing reports — 2026-11-01"));
    assert_eq!(lines.next(), Some(""));
    let outcome = lines.next().unwrap();
    assert!(
        outcome.starts_with("**1 of 1 report ok** · 1 file · as of 2026-11-01 · job billing.yml"),
        "{outcome}"
    );
    assert!(
            text.contains("Run from 2026-11-01T06:00:00Z to 2026-11-01T06:04:10Z (4m 10s) against https://eu2-cloud.acronis.com"),
            "{text}"
        );
    assert!(text.contains("## 2026-10\n"), "{text}");
    assert_eq!(
        table_rows(&text),
        ["| acme | csv_v2_0 | ok | 42 | — | `0123456789ab` |"]
    );
    assert!(!text.contains("## Problems"));
}

#[test]
fn a_shard_says_so() {
    let mut run = run_of(vec![report("acme", october())]);
    assert!(!render(&run, None, &[]).unwrap().contains("shard"));
    run.shard = Some(crate::results::ShardInfo {
        index: 2,
        total: 7,
        plan_reports: 10,
    });
    let text = render(&run, None, &[]).unwrap();
    let outcome = text.lines().nth(2).unwrap();
    assert!(outcome.contains(" · shard 2 of 7 ("), "{outcome}");
}

#[test]
fn failures_are_counted_and_explained() {
    let mut failed = report("globex", october());
    failed.status = Status::Failed;
    failed.report_id = Some("r-1".into());
    failed.error =
        Some("not ready after 1800s (polling.timeout); still waiting for csv_v2_0".into());
    failed.files.clear();
    let mut denied = report("initech", october());
    denied.status = Status::Failed;
    denied.report_id = None;
    denied.error = Some("POST /api/2/reports failed with HTTP 403: Access denied".into());
    denied.files.clear();
    let text = render(
        &run_of(vec![report("acme", october()), failed, denied]),
        None,
        &[],
    )
    .unwrap();

    assert!(
        text.contains("**1 of 3 reports ok, 2 failed** · 1 file ·"),
        "{text}"
    );
    assert!(
        text.contains("| globex — **failed** | — | — | — | — | — |"),
        "{text}"
    );
    let problems = &text[text.find("## Problems").unwrap()..];
    assert!(problems.contains(
            "- **globex** · 2026-10 · report `r-1`: failed: not ready after 1800s (polling.timeout); still waiting for csv\\_v2\\_0 — *what to do:* raise `polling.timeout`"
        ), "{problems}");
    assert!(
            problems.contains("- **initech** · 2026-10: failed: POST /api/2/reports failed with HTTP 403: Access denied — *what to do:* the API client lacks permission"),
            "{problems}"
        );
}

#[test]
fn sku_missing_and_dr_points() {
    let mut r = report("acme", october());
    r.files[0].sku_check = SkuCheck {
        status: SkuStatus::Missing,
        rows: 42,
        rows_without_sku: 3,
        column: Some("sku".into()),
    };
    r.files.push(FileResult {
        format: crate::report::Format::JsonV2,
        path: "2026-10/acme/usage_summary.json_v2_0.json".into(),
        bytes: 9000,
        sha256: "fedcba9876543210".repeat(4),
        content_check: crate::results::ContentCheck::SKIPPED,
        sku_check: SkuCheck::SKIPPED,
        ..r.files[0].clone()
    });
    r.dr_compute_points = Some(12.345);
    r.warnings = vec!["3 of 42 rows in the csv_v2_0 file lack a SKU".into()];
    let mut strict = report("globex", october());
    strict.status = Status::Failed;
    strict.error =
        Some("3 of 42 rows in the csv_v2_0 file lack a SKU (checks.skus: required)".into());
    let text = render(&run_of(vec![r, strict]), None, &[]).unwrap();

    assert!(text.contains("· 1 warning ·"), "{text}");
    assert_eq!(
        table_rows(&text)[0],
        "| acme | csv_v2_0, json_v2_0 | missing 3/42, skipped | 42, — | 12.35 | `0123456789ab`, `fedcba987654` |"
    );
    assert!(text.contains("warning: 3 of 42 rows in the csv\\_v2\\_0 file lack a SKU — *what to do:* the partner may lack SKU access: ask Acronis support to enable it\n"), "{text}");
    assert!(text.contains("(checks.skus: required) — *what to do:* the partner may lack SKU access: ask Acronis support to enable it, or set `checks.skus: warn`"), "{text}");
}

#[test]
fn user_text_cannot_break_the_table() {
    let r = report("a|b\nc *d* <script> `x`", october());
    let text = render(&run_of(vec![r]), None, &[]).unwrap();
    let rows = table_rows(&text);
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].starts_with("| a\\|b c \\*d\\* \\<script\\> \\`x\\` | csv_v2_0 |"),
        "{}",
        rows[0]
    );
    // Seven cells: eight unescaped pipes.
    let bare_pipes = rows[0]
        .match_indices('|')
        .filter(|(i, _)| !rows[0][..*i].ends_with('\\'))
        .count();
    assert_eq!(bare_pipes, 7);
}

#[test]
fn periods_are_sorted_and_ranges_named_by_dates() {
    let range = Period {
        start: date(2026, 11, 1),
        end: date(2026, 11, 15),
    };
    let september = Period {
        start: date(2026, 9, 1),
        end: date(2026, 9, 30),
    };
    let text = render(
        &run_of(vec![
            report("a", range),
            report("b", october()),
            report("c", september),
        ]),
        None,
        &[],
    )
    .unwrap();
    let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(
        headings,
        ["## 2026-09", "## 2026-10", "## 2026-11-01 to 2026-11-15"]
    );
}

fn invoice(period: Period, tenant: &str, sku: &str, value: &str, unit: &str) -> InvoiceRow {
    InvoiceRow {
        period,
        tenant_name: tenant.into(),
        tenant_id: format!("id-{tenant}"),
        sku: sku.into(),
        offering_item: format!("pw_{sku}"),
        unit: unit.into(),
        value: value.into(),
    }
}

fn sku(period: Period, sku: &str, value: &str, unit: &str, tenants: u64) -> SkuTotal {
    SkuTotal {
        period,
        sku: sku.into(),
        offering_item: format!("pw_{sku}"),
        unit: unit.into(),
        value: value.into(),
        tenants,
    }
}

#[test]
fn billable_usage_by_sku_and_by_tenant_follows_the_outcome() {
    let billing = BillingSummary {
        lines: 3,
        reports: 1,
        skus: vec![
            sku(october(), "DR", "0.50", "points", 1),
            sku(october(), "S1", "1073741829", "bytes", 2),
            sku(october(), "", "7", "", 1),
        ],
        invoice: vec![
            invoice(october(), "Kunde", "S1", "1073741824", "bytes"),
            invoice(october(), "Kunde", "", "7", ""),
            invoice(october(), "Zeta", "S1", "5", "bytes"),
            invoice(october(), "Zeta", "DR", "0.50", "points"),
        ],
        ..BillingSummary::default()
    };
    let text = render(
        &run_of(vec![report("acme", october())]),
        Some(&billing),
        &[],
    )
    .unwrap();
    let usage = &text[text.find("## Billable usage").unwrap()..text.find("## 2026-10").unwrap()];
    assert_eq!(
        usage,
        "## Billable usage\n\n\
             From billing.csv: 3 invoice lines of 1 report, billed on scope auto (total for customers, production for partners), measure auto (delta for compute\\_points, pw\\_compute\\_points, dre\\_compute\\_points, p\\_dre\\_compute\\_points; absolute for the rest) (`billing` in the job file; the vendor's own rule).\n\n\
             ### By SKU\n\n\
             | SKU | Offering item | Tenants | Billable |\n\
             | --- | --- | ---: | ---: |\n\
             | DR | pw\\_DR | 1 | 0.50 points |\n\
             | S1 | pw\\_S1 | 2 | 1.0 GiB |\n\
             | — | pw\\_ | 1 | 7 |\n\n\
             ### By tenant and SKU\n\n\
             | Tenant | SKU | Offering item | Billable |\n\
             | --- | --- | --- | ---: |\n\
             | Kunde | S1 | pw\\_S1 | 1.0 GiB |\n\
             | Kunde | — | pw\\_ | 7 |\n\
             | Zeta | S1 | pw\\_S1 | 5 B |\n\
             | Zeta | DR | pw\\_DR | 0.50 points |\n\n"
    );
    assert!(text.find("**1 of 1 report ok**").unwrap() < text.find("## Billable usage").unwrap());
    // Without billing.csv (e.g. rendered for CI from the record alone) there is no section.
    assert!(
        !render(&run_of(vec![report("acme", october())]), None, &[])
            .unwrap()
            .contains("Billable usage")
    );
}

#[test]
fn billable_amounts_read_as_people_write_them() {
    let cases = [
        ("219586702131", "bytes", "pw_base_storage", "204.5 GiB"),
        ("1073741824", "bytes", "storage", "1.0 GiB"),
        ("1536", "bytes", "storage", "1.5 KiB"),
        ("1099511627776", "bytes", "storage", "1.0 TiB"),
        ("512", "bytes", "storage", "512 B"),
        (
            "3308.56",
            "points",
            "pw_base_adv_dr_compute_points",
            "3308.56 points",
        ),
        ("189", "quantity", "pw_base_m365_seats", "189 seats"),
        ("1", "", "pw_base_m365_seats", "1 seat"),
        ("36", "quantity", "pw_base_servers", "36 devices"),
        ("45", "", "pw_base_vms", "45 devices"),
        ("1", "quantity", "pw_base_workstations", "1 device"),
        ("7", "quantity", "pw_base_backup_jobs", "7"),
        ("7", "", "", "7"),
        ("2", "GB", "x", "2 GB"),
        ("", "bytes", "storage", ""),
    ];
    for (value, unit, item, expected) in cases {
        assert_eq!(amount(value, unit, item), expected, "{value} {unit} {item}");
    }
}

#[test]
fn billable_usage_by_period_and_reports_without_lines() {
    let november = Period {
        start: date(2026, 11, 1),
        end: date(2026, 11, 15),
    };
    let billing = BillingSummary {
        lines: 2,
        reports: 2,
        reports_without_source: 1,
        invoice: vec![
            invoice(october(), "a", "S1", "5", "x"),
            invoice(november, "a", "S1", "6", "x"),
        ],
        invoice_left_out: 3,
        repeated_lines: 1,
        skus: vec![
            sku(october(), "S1", "5", "x", 1),
            sku(november, "S1", "6", "x", 1),
        ],
        skus_left_out: 0,
        day_lines: 0,
    };
    let text = render(
        &run_of(vec![report("acme", october())]),
        Some(&billing),
        &[],
    )
    .unwrap();
    assert!(
        text.contains(
            "_1 ok report has no csv\\_v2\\_0 or json\\_v2\\_0 file, so it is not in billing.csv._"
        ),
        "{text}"
    );
    assert!(text.contains(" 1 line of a tenant already billed by an earlier report of this run is counted once below."), "{text}");
    assert!(
        text.contains("| Period | Tenant | SKU | Offering item | Billable |\n| --- | --- |"),
        "{text}"
    );
    assert!(text.contains("| 2026-10 | a | S1 |"), "{text}");
    assert!(
        text.contains("| 2026-11-01 to 2026-11-15 | a | S1 |"),
        "{text}"
    );
    assert!(
        text.contains("_3 more tenant × SKU rows not shown"),
        "{text}"
    );

    let empty = BillingSummary::default();
    let text = render(&run_of(vec![]), Some(&empty), &[]).unwrap();
    assert!(
        text.contains("## Billable usage\n\nbilling.csv has no invoice lines.\n"),
        "{text}"
    );
}

#[test]
fn disagreeing_formats_get_their_own_advice() {
    let mut r = report("acme", october());
    r.warnings = vec![
        "the csv_v2_0 and json_v2_0 files disagree (…): SKU S1 in csv_v2_0, \"\" in json_v2_0"
            .into(),
    ];
    let text = render(&run_of(vec![r]), None, &[]).unwrap();
    assert!(
        text.contains(
            "— *what to do:* both files are kept as downloaded and billing.csv follows csv\\_v2\\_0"
        ),
        "{text}"
    );
}

#[test]
fn ten_thousand_reports_stay_under_one_mib() {
    let mut reports: Vec<ReportResult> = (0..10_000)
        .map(|i| report(&format!("tenant {i:05} {}", "x".repeat(80)), october()))
        .collect();
    for r in reports.iter_mut().skip(9_990) {
        r.status = Status::Failed;
        r.error = Some(format!("HTTP 500 {}", "e".repeat(1000)));
    }
    let text = render(&run_of(reports), None, &[]).unwrap();
    assert!(text.len() < MAX_BYTES, "{} bytes", text.len());
    let rows = table_rows(&text);
    assert_eq!(rows.len(), MAX_ROWS_PER_PERIOD);
    // The failed ones are among those shown, the others are the first in name order, and
    // all are in table order.
    assert_eq!(rows.iter().filter(|r| r.contains("**failed**")).count(), 10);
    assert!(rows[0].contains("tenant 00000"), "{}", rows[0]);
    assert!(rows[989].contains("tenant 00989"), "{}", rows[989]);
    assert!(rows[990].contains("tenant 09990"), "{}", rows[990]);
    assert!(text.contains("<details><summary>10000 reports: 9990 ok, 10 failed</summary>"));
    assert!(
        text.contains("_9000 of 10000 reports for this period not shown"),
        "{text}"
    );
    assert!(text.contains("manifest.json lists every report"));
}

#[test]
fn many_periods_and_problems_stay_under_one_mib() {
    let reports: Vec<ReportResult> = (0..10_000)
        .map(|i| {
            let start = date(2000, 1, 1)
                .checked_add(jiff::Span::new().days(i))
                .unwrap();
            let mut r = report(&"ü|".repeat(200), Period { start, end: start });
            r.status = Status::Failed;
            r.error = Some("x".repeat(5000));
            r.warnings = vec!["w".repeat(5000)];
            r
        })
        .collect();
    let text = render(&run_of(reports), None, &[]).unwrap();
    assert!(text.len() < MAX_BYTES, "{} bytes", text.len());
    assert!(
        text.contains("more periods with"),
        "{}",
        &text[text.len() - 2000..]
    );
    assert!(text.contains("more problems not shown"));
}
