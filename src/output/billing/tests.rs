use super::*;
use crate::report::BillingScope;
use crate::results::{ContentCheck, FileResult, SkuCheck};

const HEADER: &str = "tenant.id,tenant.kind,name,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial,sku";

fn october() -> Period {
    Period {
        start: jiff::civil::date(2026, 10, 1),
        end: jiff::civil::date(2026, 10, 31),
    }
}

fn report(dir: &Path, status: Status, files: &[(Format, &str)]) -> ReportResult {
    let files = files
        .iter()
        .enumerate()
        .map(|(i, (format, text))| {
            let path = format!("r{i}.{}", format.extension());
            std::fs::write(dir.join(&path), text).unwrap();
            FileResult {
                format: *format,
                path,
                stored_report_id: format!("s{i}"),
                bytes: text.len() as u64,
                sha256: String::new(),
                content_check: ContentCheck::SKIPPED,
                sku_check: SkuCheck::SKIPPED,
            }
        })
        .collect();
    ReportResult {
        tenant_id: "p".into(),
        tenant_name: "Partner".into(),
        period: october(),
        kind: crate::report::ReportKind::UsageSummary,
        level: crate::report::ReportLevel::DirectPartners,
        report_id: Some("r".into()),
        status,
        error: None,
        files,
        dr_compute_points: None,
        warnings: Vec::new(),
        plan_index: 0,
        timing: None,
    }
}

fn run(dir: &Path, reports: Vec<ReportResult>) -> (String, Billing) {
    let mut out = Vec::new();
    let billing = write(
        dir,
        &ReportLog::of(reports).unwrap(),
        &BillingRule::default(),
        &mut out,
    )
    .unwrap();
    (String::from_utf8(out).unwrap(), billing)
}

const CSV: &str = "c,customer,pw_base_storage,1,3,2,0,0,0,1,3,2,S1\np,partner,compute_points,36000,72000,36000,3600,7200,3600,0,0,0,S2\n";
const JSON_SAME: &str = r#"{"tenants": [
  {"tenant_uuid": "c", "name": "pw_base_storage", "usage_name": "storage", "value": 3, "absolute_value": 3, "range_start": "2026-10-01T00:00:00Z"},
  {"tenant_uuid": "p", "name": "compute_points", "usage_name": "compute_points", "measurement_unit": "seconds", "value": 7200, "absolute_value": 72000}
]}"#;

#[test]
fn lines_come_from_the_csv_file_and_agree_with_the_json_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("{HEADER}\n{CSV}");
    let (text, billing) = run(
        dir.path(),
        vec![report(
            dir.path(),
            Status::Ok,
            &[(Format::CsvV2, &csv), (Format::JsonV2, JSON_SAME)],
        )],
    );
    assert_eq!(billing.warnings, Vec::new());
    assert_eq!(billing.summary.lines, 2);
    assert!(
        text.lines()
            .all(|l| l.ends_with(",source") || l.ends_with("r0.csv"))
    );
    // The partner's own compute points bill on delta production: 3600 s = 1 point.
    assert_eq!(billing.dr_compute_points, vec![(0, 1.0)]);
    let partner = text.lines().find(|l| l.contains(",partner,")).unwrap();
    assert!(
        partner.contains("usage.delta.production,1.00,points"),
        "{partner}"
    );
}

/// The billing of one ok report with the CSV file of `CSV` and the JSON file `json`.
fn with_json_beside_the_csv(json: &str) -> Billing {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("{HEADER}\n{CSV}");
    let (_, billing) = run(
        dir.path(),
        vec![report(
            dir.path(),
            Status::Ok,
            &[(Format::CsvV2, &csv), (Format::JsonV2, json)],
        )],
    );
    billing
}

#[test]
fn formats_that_disagree_are_a_warning_naming_the_item() {
    let billing = with_json_beside_the_csv(
        &JSON_SAME.replace("\"absolute_value\": 3,", "\"absolute_value\": 4,"),
    );
    assert_eq!(billing.warnings.len(), 1, "{:?}", billing.warnings);
    let warning = &billing.warnings[0].1;
    assert_eq!(
        warning,
        "the csv_v2_0 and json_v2_0 files disagree (2 line(s) in r0.csv, 2 in r1.json): pw_base_storage: 3 in r0.csv, 4 in r1.json; billing.csv follows r0.csv"
    );
}

#[test]
fn an_unreadable_csv_falls_back_to_json_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (text, billing) = run(
        dir.path(),
        vec![report(
            dir.path(),
            Status::Ok,
            &[(Format::CsvV2, "Col A\n1\n"), (Format::JsonV2, JSON_SAME)],
        )],
    );
    assert_eq!(billing.summary.lines, 2);
    assert!(text.contains("r1.json"));
    assert!(
        billing.warnings[0]
            .1
            .contains("billing.csv has no lines from r0.csv")
    );
}

#[test]
fn failed_reports_write_no_lines_but_count_their_compute_points() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("{HEADER}\n{CSV}");
    let (text, billing) = run(
        dir.path(),
        vec![report(dir.path(), Status::Failed, &[(Format::CsvV2, &csv)])],
    );
    assert_eq!(text.lines().count(), 1, "only the header");
    assert_eq!(billing.summary.reports, 0);
    assert_eq!(billing.dr_compute_points, vec![(0, 1.0)]);
}

#[test]
fn a_tenant_in_two_reports_counts_once_in_the_invoice_view() {
    let dir = tempfile::tempdir().unwrap();
    let one = format!("{HEADER}\n{CSV}");
    let first = report(dir.path(), Status::Ok, &[(Format::CsvV2, &one)]);
    let mut second = first.clone();
    second.tenant_id = "c".into();
    second.tenant_name = "Kunde".into();
    let (text, billing) = run(dir.path(), vec![first, second]);
    assert_eq!(
        billing.summary.lines, 4,
        "billing.csv keeps both reports' lines"
    );
    assert_eq!(billing.summary.repeated_lines, 2);
    assert_eq!(billing.summary.invoice.len(), 2);
    // The customer's name comes from the run when the file has none.
    assert!(
        text.contains(",c,customer,Kunde,pw_base_storage,"),
        "{text}"
    );
}

#[test]
fn a_write_error_is_the_only_error() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let log = ReportLog::of(vec![report(
        dir.path(),
        Status::Ok,
        &[(Format::CsvV2, "not a report")],
    )])
    .unwrap();
    let error = write(dir.path(), &log, &BillingRule::default(), Full).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
}

#[test]
fn the_same_totals_with_lines_moved_between_tenants_still_disagree() {
    let billing = with_json_beside_the_csv(
        &JSON_SAME.replace("\"tenant_uuid\": \"c\"", "\"tenant_uuid\": \"d\""),
    );
    assert_eq!(billing.warnings.len(), 1, "{:?}", billing.warnings);
    assert!(
        billing.warnings[0]
            .1
            .contains("the same totals per item, but not the same tenants or values line by line"),
        "{:?}",
        billing.warnings
    );
}

#[test]
fn a_large_file_is_streamed_line_by_line() {
    // 200 000 tenants: the lines go out as they are read, nothing holds them all.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{HEADER}\n");
    for i in 0..200_000 {
        csv.push_str(&format!(
            "c{i},customer,pw_base_storage,1,1,0,0,0,0,1,1,0,S1\n"
        ));
    }
    let log = ReportLog::of(vec![report(
        dir.path(),
        Status::Ok,
        &[(Format::CsvV2, &csv)],
    )])
    .unwrap();
    let mut lines = 0u64;
    struct Count<'a>(&'a mut u64);
    impl Write for Count<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            *self.0 += buf.iter().filter(|b| **b == b'\n').count() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let billing = write(dir.path(), &log, &BillingRule::default(), Count(&mut lines)).unwrap();
    assert_eq!(billing.summary.lines, 200_000);
    assert_eq!(lines, 200_001);
    // The summary keeps a capped view; the SKU total covers every line.
    assert_eq!(billing.summary.invoice.len(), INVOICE_ROWS_KEPT);
    assert_eq!(
        billing.summary.invoice_left_out,
        200_000 - INVOICE_ROWS_KEPT
    );
    assert_eq!(billing.summary.skus.len(), 1);
    assert_eq!(billing.summary.skus[0].value, "200000");
    assert_eq!(billing.summary.skus[0].tenants, 200_000);
}

#[test]
fn days_compare_as_days() {
    assert_eq!(day_key("2026-10-01"), "2026-10-01");
    assert_eq!(day_key("2026-10-01T00:00:00Z"), "2026-10-01");
    assert_eq!(day_key("1790812800"), "2026-10-01");
}

/// The lines of a file, collected.
fn collect_lines(format: Format, text: &str, rule: &BillingRule) -> Result<Vec<Line>, LinesError> {
    let mut lines = Vec::new();
    lines_of(format, text.as_bytes(), rule, &mut |line| {
        lines.push(line.clone());
        Ok(())
    })?;
    Ok(lines)
}

fn lines_error(format: Format, text: &str, rule: &BillingRule) -> String {
    collect_lines(format, text, rule).unwrap_err().to_string()
}

#[test]
fn rows_of_one_line_billed_on_different_measures_are_refused_not_summed() {
    // A tenant that is a customer in one row and a partner in the next: total 7 + production 5
    // used to be billed as 12 under `usage.absolute.total`.
    let text = format!(
        "{HEADER}\nc,customer,pw_base_storage,5,7,2,0,0,0,0,0,0,S\nc,partner,pw_base_storage,5,7,2,0,0,0,0,0,0,S\n"
    );
    assert_eq!(
        lines_error(Format::CsvV2, &text, &BillingRule::default()),
        "line 3, `usage.absolute.production`: pw_base_storage of c is billed on `usage.absolute.production` here but on `usage.absolute.total` in an earlier row (tenant kind partner here, customer there): one sum cannot mix them"
    );
    // With a scope that does not depend on the kind, the kinds' disagreement is a warning.
    let rule = BillingRule {
        scope: BillingScope::Total,
        ..BillingRule::default()
    };
    let lines = collect_lines(Format::CsvV2, &text, &rule).unwrap();
    assert_eq!(lines[0].billable().text, "14");
    assert_eq!(
        lines[0].conflicts,
        vec!["tenant kind customer and partner (line 3)"]
    );
    // A usage object with `absolute_value` and one with only `value`: 7 + 5 used to be 12
    // under `absolute_value`.
    let json = r#"{"tenants": [{"tenant_uuid": "t", "name": "pw_base_storage", "absolute_value": 7},
        {"tenant_uuid": "t", "name": "pw_base_storage", "value": 5}]}"#;
    assert_eq!(
        lines_error(Format::JsonV2, json, &BillingRule::default()),
        "usage object 2, `value`: pw_base_storage of t is billed on `value` here but on `absolute_value` in an earlier row: one sum cannot mix them"
    );
}

#[test]
fn a_row_without_the_billable_measure_is_named_by_line_or_usage_object() {
    let json = r#"{"tenants": [{"tenant_uuid": "t", "name": "pw_base_storage", "value": null}]}"#;
    assert!(
        lines_error(Format::JsonV2, json, &BillingRule::default())
            .starts_with("usage object 1, `pw_base_storage`: no billable value"),
    );
}

#[test]
fn sums_of_the_largest_values_stay_exact() {
    let big = "1000000000000000000";
    let row = format!("c,customer,pw_base_storage,0,{big},0,0,0,0,0,0,0,S\n");
    let text = format!("{HEADER}\n{}", row.repeat(3));
    let lines = collect_lines(Format::CsvV2, &text, &BillingRule::default()).unwrap();
    assert_eq!(lines[0].billable().text, "3000000000000000000");
}

#[test]
fn a_full_invoice_view_still_sums_the_tenants_it_holds() {
    // Past the rows the view keeps, a line of a tenant it holds still adds to that tenant.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{HEADER}\n");
    for i in 0..INVOICE_ROWS_KEPT + 1000 {
        csv.push_str(&format!(
            "c{i:05},customer,pw_base_storage,1,1,0,0,0,0,1,1,0,S1\n"
        ));
    }
    csv.push_str("c00000,customer,pw_base_storage,1,1,0,0,0,0,1,1,0,S1\n");
    let (_, billing) = run(
        dir.path(),
        vec![report(dir.path(), Status::Ok, &[(Format::CsvV2, &csv)])],
    );
    let summary = &billing.summary;
    assert_eq!(summary.invoice_left_out, 1000);
    let first = summary
        .invoice
        .iter()
        .find(|r| r.tenant_id == "c00000")
        .unwrap();
    assert_eq!(first.value, "2");
    assert_eq!(
        summary.skus[0].value,
        (INVOICE_ROWS_KEPT + 1001).to_string()
    );
    assert!(
        billing.warnings[0].1.contains("are not next to each other"),
        "{:?}",
        billing.warnings
    );
}

#[test]
fn each_line_has_its_own_measures_however_its_neighbours_repeat_or_change_them() {
    // The measures' cells are made again only when a line's differ from the last line's:
    // runs of the same, a change, a change back, decimals and signs must all come out as each
    // line's own.
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        "1,1,0,0,0,0,1,1,0",
        "1,1,0,0,0,0,1,1,0",
        "1,1,0,0,0,0,1,1,0",
        "2,1,0,0,0,0,1,1,0",
        "1,1,0,0,0,0,1,1,0",
        "0.5,-3,1e3,0,0,0,0,0,0.000000001",
        "0.5,-3,1e3,0,0,0,0,0,0.000000001",
        "1,1,0,0,0,0,1,1,0",
    ];
    let mut csv = format!("{HEADER}\n");
    for (i, values) in rows.iter().enumerate() {
        csv.push_str(&format!("c{i},customer,pw_base_storage,{values},S1\n"));
    }
    let (text, _) = run(
        dir.path(),
        vec![report(dir.path(), Status::Ok, &[(Format::CsvV2, &csv)])],
    );
    let lines = collect_lines(Format::CsvV2, &csv, &BillingRule::default()).unwrap();
    let written: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(written.len(), lines.len());
    for (written, line) in written.iter().zip(&lines) {
        let cells: Vec<&str> = written.split(',').collect();
        let measures: Vec<String> = Measure::ALL
            .iter()
            .map(|m| {
                line.measures
                    .get(*m)
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            cells[KEY_COLUMNS.len()..KEY_COLUMNS.len() + Measure::ALL.len()],
            measures,
            "{written}"
        );
    }
}

#[test]
fn skus_sum_their_lines_whether_or_not_they_follow_each_other() {
    // A run of lines of one SKU is summed apart and then added to the SKU's total: runs
    // broken by another SKU must still add up, and count each line's tenant.
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "{HEADER}\n\
         c1,customer,pw_base_storage,0,1,0,0,0,0,0,0,0,S1\n\
         c2,customer,pw_base_storage,0,2,0,0,0,0,0,0,0,S1\n\
         c3,customer,pw_base_storage,0,5,0,0,0,0,0,0,0,S2\n\
         c4,customer,pw_base_storage,0,4,0,0,0,0,0,0,0,S1\n\
         c5,customer,pw_seats,0,7,0,0,0,0,0,0,0,\n\
         c6,customer,pw_seats,0,1.5,0,0,0,0,0,0,0,\n"
    );
    let (_, billing) = run(
        dir.path(),
        vec![report(dir.path(), Status::Ok, &[(Format::CsvV2, &csv)])],
    );
    let skus: Vec<(&str, &str, &str, &str, u64)> = billing
        .summary
        .skus
        .iter()
        .map(|s| {
            (
                s.sku.as_str(),
                s.offering_item.as_str(),
                s.value.as_str(),
                s.unit.as_str(),
                s.tenants,
            )
        })
        .collect();
    assert_eq!(
        skus,
        vec![
            ("S1", "pw_base_storage", "7", "bytes", 3),
            ("S2", "pw_base_storage", "5", "bytes", 1),
            ("", "pw_seats", "8.5", "", 2),
        ]
    );
    assert_eq!(billing.summary.skus_left_out, 0);
}

#[test]
fn past_the_skus_kept_a_new_skus_lines_are_left_out_and_a_known_one_still_adds() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{HEADER}\n");
    let row = |tenant: usize, sku: usize| {
        format!("c{tenant},customer,pw_base_storage,0,1,0,0,0,0,0,0,0,S{sku:05}\n")
    };
    for i in 0..invoice::SKUS_KEPT {
        csv.push_str(&row(i, i));
    }
    // A new SKU in a run of two lines, then the first SKU again.
    let more = invoice::SKUS_KEPT;
    csv.push_str(&row(more, more));
    csv.push_str(&row(more + 1, more));
    csv.push_str(&row(more + 2, 0));
    let (_, billing) = run(
        dir.path(),
        vec![report(dir.path(), Status::Ok, &[(Format::CsvV2, &csv)])],
    );
    let summary = &billing.summary;
    assert_eq!(summary.skus_left_out, 2);
    assert_eq!(summary.skus.len(), invoice::SKUS_KEPT);
    let first = summary.skus.iter().find(|s| s.sku == "S00000").unwrap();
    assert_eq!((first.value.as_str(), first.tenants), ("2", 2));
}

/// Lines of `items` items for tenant `tenant`, one row each, value `value`.
fn rows_of(tenant: &str, items: std::ops::Range<usize>, value: u32) -> String {
    items
        .map(|i| format!("{tenant},customer,item{i:03},0,{value},0,0,0,0,0,0,0,S{i}\n"))
        .collect()
}

#[test]
fn lines_billed_before_are_left_out_of_the_sums_across_and_within_files() {
    // 70 items: more than have a bit of their own (`ITEM_BITS`), so both ways of remembering
    // a line are crossed, in one file and across files, and a tenant id in other case is the
    // same tenant.
    let dir = tempfile::tempdir().unwrap();
    let mut one = format!("{HEADER}\n{}", rows_of("c", 0..70, 1));
    // Rows of a key apart within the file: a line of its own, billed already.
    one.push_str(&rows_of("c", 3..4, 5));
    one.push_str(&rows_of("c", 68..69, 5));
    one.push_str(&rows_of("d", 0..70, 2));
    let mut two = format!("{HEADER}\n{}", rows_of("C", 0..70, 7));
    two.push_str(&rows_of("e", 60..70, 3));
    two.push_str(&rows_of("d", 65..67, 9));
    let first = report(dir.path(), Status::Ok, &[(Format::CsvV2, &one)]);
    let mut second = report(dir.path(), Status::Ok, &[]);
    let path = "second.csv";
    std::fs::write(dir.path().join(path), &two).unwrap();
    second.files = vec![FileResult {
        path: path.into(),
        bytes: two.len() as u64,
        ..first.files[0].clone()
    }];
    second.tenant_id = "c".into();
    let (text, billing) = run(dir.path(), vec![first, second]);
    let summary = &billing.summary;
    assert_eq!(summary.lines, 72 + 70 + 70 + 10 + 2);
    assert_eq!(summary.repeated_lines, 2 + 70 + 2);
    let value = |tenant: &str, item: &str| {
        summary
            .invoice
            .iter()
            .find(|r| r.tenant_id == tenant && r.offering_item == item)
            .map(|r| r.value.as_str())
    };
    assert_eq!(value("c", "item003"), Some("1"));
    assert_eq!(value("c", "item068"), Some("1"));
    assert_eq!(value("C", "item003"), None);
    assert_eq!(value("d", "item066"), Some("2"));
    assert_eq!(value("e", "item069"), Some("3"));
    let sku = |sku: &str| summary.skus.iter().find(|s| s.sku == sku).unwrap();
    assert_eq!((sku("S66").value.as_str(), sku("S66").tenants), ("6", 3));
    assert_eq!((sku("S3").value.as_str(), sku("S3").tenants), ("3", 2));
    // billing.csv itself keeps every line.
    assert_eq!(text.lines().count() as u64, 1 + summary.lines);
}

mod billed {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::super::invoice::Billed;
    use super::*;

    /// A line's key: period, tenant (its case varies), item, backend, day.
    type Key = (u8, String, String, String, String);

    fn key() -> impl Strategy<Value = Key> {
        (
            0u8..2,
            prop_oneof![Just("c"), Just("C"), Just("d"), Just("e1"), Just("E1")],
            // More items than have a bit each, and a few that recur often.
            prop_oneof![0usize..4, 0usize..90],
            prop_oneof![Just(""), Just("azure")],
            prop_oneof![Just(""), Just("2026-10-01"), Just("2026-10-02")],
        )
            .prop_map(|(period, tenant, item, backend, day)| {
                (
                    period,
                    tenant.to_owned(),
                    format!("item{item}"),
                    backend.to_owned(),
                    day.to_owned(),
                )
            })
    }

    fn first(billed: &mut Billed, (period, tenant, item, backend, day): &Key) -> bool {
        let tenant = key_hash((*period, tenant.to_ascii_lowercase().as_str()));
        billed.first(tenant, key_hash((item, backend, day)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// The same answer, line by line, as a set of every whole key: repeated keys within a
        /// file and across files are both just keys seen before.
        #[test]
        fn tells_a_line_billed_before_as_a_set_of_whole_keys_does(
            keys in proptest::collection::vec(key(), 0..600)
        ) {
            let mut billed = Billed::default();
            let mut whole: HashSet<(u8, String, String, String, String)> = HashSet::new();
            for key in &keys {
                let lower = (key.0, key.1.to_ascii_lowercase(), key.2.clone(), key.3.clone(), key.4.clone());
                prop_assert_eq!(first(&mut billed, key), whole.insert(lower), "{:?}", key);
            }
        }
    }

    #[test]
    fn a_run_of_many_tenants_holds_bytes_per_tenant_not_per_line() {
        // 10 000 tenants × 31 items, as the scale case bills: the set of whole keys held
        // 8 bytes a line, ~4.7 MB (7.1 MB while it doubled); a map of a word per tenant 41
        // bytes a tenant at its peak (while its table doubled), the sorted lists 18.
        let (tenants, items) = (10_000u32, 31u32);
        let item_keys: Vec<u64> = (0..items)
            .map(|i| key_hash((format!("item{i}"), "", "")))
            .collect();
        let (billed, peak) = crate::heap::peak_of(|| {
            let mut billed = Billed::default();
            for round in 0..2 {
                for t in 0..tenants {
                    let tenant = key_hash((0u8, format!("tenant-{t:05}").as_str()));
                    for &item in &item_keys {
                        assert_eq!(billed.first(tenant, item), round == 0);
                    }
                }
            }
            billed
        });
        drop(billed);
        let per_tenant = peak / tenants as usize;
        assert!(
            per_tenant <= 24,
            "{peak} bytes at the peak, {per_tenant} per tenant of {items} lines"
        );
    }
}

#[test]
fn the_runs_names_are_found_by_id_the_last_report_winning() {
    let mut names = Names::default();
    for i in 0..1000 {
        names.add(&format!("tenant-{i}"), &format!("Name {i}"));
    }
    names.add("tenant-7", "Renamed");
    names.add("", "No id");
    names.sort();
    assert_eq!(names.get("tenant-7"), Some("Renamed"));
    assert_eq!(names.get("tenant-999"), Some("Name 999"));
    assert_eq!(names.get(""), Some("No id"));
    assert_eq!(names.get("tenant-1000"), None);
    assert_eq!(names.get("tenant-"), None);
    // 10 000 reports' UUIDs and names: a map of `String`s held ~160 bytes each.
    let (names, peak) = crate::heap::peak_of(|| {
        let mut names = Names::with_capacity(10_000);
        for i in 0..10_000u32 {
            names.add(
                &format!("{i:08x}-0000-4000-8000-000000000000"),
                &format!("Customer {i}"),
            );
        }
        names.sort();
        names
    });
    assert_eq!(
        names.get("0000002a-0000-4000-8000-000000000000"),
        Some("Customer 42")
    );
    assert!(peak / 10_000 <= 120, "{peak} bytes");
}

#[test]
fn a_few_reports_names_are_found_in_any_case_as_many_reports_names_are() {
    let mut lower = String::new();
    for reports in [0, 1, 3, FEW_NAMES, FEW_NAMES + 1, 40] {
        let mut names = Names::with_capacity(reports);
        for i in 0..reports {
            // Ids repeat from the sixth report on: the later report's name must win.
            names.add(&format!("tenant-{}", i % 5), &format!("Name {i}"));
        }
        names.sort();
        for id in [
            "tenant-0", "TENANT-1", "Tenant-4", "tenant-5", "tenant-", "",
        ] {
            assert_eq!(
                names.get_any_case(id, &mut lower),
                names.get(&id.to_ascii_lowercase()),
                "{id} among {reports} reports"
            );
        }
        if reports == FEW_NAMES {
            assert_eq!(names.get_any_case("TENANT-0", &mut lower), Some("Name 5"));
        }
    }
}

#[test]
fn the_invoice_view_holds_a_fixed_entry_and_its_text_per_row() {
    // The scale case's rows: UUIDs, short names, a SKU and an item each; more keys than kept,
    // each met twice (a second report of the same tenants).
    let lines: Vec<Line> = (0..INVOICE_ROWS_KEPT + 500)
        .map(|i| Line {
            tenant_id: format!("{i:08x}-0000-4000-8000-000000000000"),
            offering_item: "storage_total".to_owned(),
            sku: format!("SKU{}", i % 7),
            ..Line::default()
        })
        .collect();
    let billable = Billable {
        value: Amount::parse("1.5").unwrap(),
        unit: "bytes".to_owned(),
        ..Billable::default()
    };
    // What billing.csv holds while it is written: the view, 5 000 rows of it.
    let (invoice, peak) = crate::heap::peak_of(|| {
        let mut invoice = Invoice::new(false);
        for _ in 0..2 {
            for (i, line) in lines.iter().enumerate() {
                invoice.add(october(), line, &format!("Customer {i}"), &billable);
            }
        }
        invoice
    });
    let mut summary = BillingSummary::default();
    invoice.finish(&mut summary);
    assert_eq!(summary.invoice.len(), INVOICE_ROWS_KEPT);
    assert_eq!(summary.invoice_left_out, 2 * 500);
    assert_eq!(summary.invoice[0].value, "3");
    assert_eq!(summary.invoice[0].tenant_name, "Customer 0");
    // A map of `String` keys held 363 bytes a row (its nodes, five texts each); rows of
    // ranges into one text 184.
    let per_row = peak / INVOICE_ROWS_KEPT;
    assert!(per_row <= 224, "{peak} bytes at the peak, {per_row} a row");
}
