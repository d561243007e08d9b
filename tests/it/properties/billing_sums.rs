//! Billing: the sum of billable values per tenant and item is the vendor's rule applied to the
//! rows.

use super::*;

/// The vendor's csv_v2_0 columns, in their documented order.
const VENDOR_COLUMNS: [&str; 17] = [
    "tenant.id",
    "tenant.kind",
    "application.id",
    "edition",
    "name",
    "infra.id",
    "infra.owner_id",
    "infra.backend_type",
    "usage.absolute.production",
    "usage.absolute.total",
    "usage.absolute.trial",
    "usage.delta.production",
    "usage.delta.total",
    "usage.delta.trial",
    "usage.effective.production",
    "usage.effective.total",
    "usage.effective.trial",
];

const ITEMS: [&str; 6] = [
    "pw_base_storage",
    "pw_base_workstations",
    "compute_points",
    "pw_compute_points",
    "dre_compute_points",
    "p_dre_compute_points",
];

/// One generated row: tenant index, item index, backend index, nine values in hundredths.
type GeneratedRow = (usize, usize, usize, [u64; 9]);

fn any_row() -> impl Strategy<Value = GeneratedRow> {
    (
        0usize..4,
        0usize..ITEMS.len(),
        0usize..3,
        proptest::array::uniform9(0u64..10_000_000_000),
    )
}

fn hundredths(value: u64) -> String {
    if value.is_multiple_of(100) {
        (value / 100).to_string()
    } else {
        format!("{}.{:02}", value / 100, value % 100)
    }
}

/// What the rule gives, in hundredths of the billed unit, per (tenant, item, backend): each
/// run of rows of one key is one line (compute points are rounded per line, as billed).
fn expected_billing(rows: &[GeneratedRow]) -> BTreeMap<(String, String, String), u128> {
    let mut sums: BTreeMap<(String, String, String), u128> = BTreeMap::new();
    let mut runs: Vec<((String, String, String), u128)> = Vec::new();
    for (tenant, item, backend, values) in rows {
        // Tenants 0 and 1 are customers (scope total), 2 and 3 partners (scope production);
        // compute-point items bill on delta, the rest on absolute.
        let customer = *tenant < 2;
        let delta = *item >= 2;
        let column = match (delta, customer) {
            (false, false) => 0,
            (false, true) => 1,
            (true, false) => 3,
            (true, true) => 4,
        };
        let key = (
            format!("t{tenant}"),
            ITEMS[*item].to_owned(),
            ["", "azure", "google"][*backend].to_owned(),
        );
        match runs.last_mut() {
            Some((last, sum)) if *last == key => *sum += u128::from(values[column]),
            _ => runs.push((key, u128::from(values[column]))),
        }
    }
    for (key, mut sum) in runs {
        if key.1.contains("compute_points") {
            // Point-seconds to points, 2 decimals, half away from zero: hundredths of a second
            // ÷ 3600 are hundredths of a point.
            sum = (sum + 1800) / 3600;
        }
        *sums.entry(key).or_default() += sum;
    }
    sums
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn billable_sums_per_tenant_and_item_follow_the_rule(
        rows in proptest::collection::vec(any_row(), 0..40),
        order in Just(VENDOR_COLUMNS.to_vec()).prop_shuffle(),
        sku_header in prop_oneof![Just("sku"), Just("SKU"), Just("offering_item.sku")],
        crlf in any::<bool>(),
        grouped in any::<bool>(),
    ) {
        let mut rows = rows;
        if grouped {
            // As the vendor writes them: the rows of a tenant and item next to each other.
            rows.sort_by_key(|(tenant, item, backend, _)| (*tenant, *item, *backend));
        }
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut header: Vec<&str> = order.clone();
        header.push(sku_header);
        header.insert(1, "report.extra");
        let mut text = header.join(",") + newline;
        for (tenant, item, backend, values) in &rows {
            let cells: Vec<String> = header
                .iter()
                .map(|column| match *column {
                    "tenant.id" => format!("t{tenant}"),
                    "tenant.kind" => (if *tenant < 2 { "customer" } else { "partner" }).to_owned(),
                    "name" => ITEMS[*item].to_owned(),
                    "infra.backend_type" => ["", "azure", "google"][*backend].to_owned(),
                    "report.extra" => "\"x, y\"".to_owned(),
                    c if c.starts_with("usage.") => {
                        let at = VENDOR_COLUMNS.iter().position(|v| v == &c).unwrap() - 8;
                        hundredths(values[at])
                    }
                    c if c == sku_header => format!("SKU{item}"),
                    _ => String::new(),
                })
                .collect();
            text.push_str(&cells.join(","));
            text.push_str(newline);
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.csv"), &text).unwrap();
        let report = ReportResult {
            tenant_id: "p".into(),
            tenant_name: "p".into(),
            period: Period { start: jiff::civil::date(2026, 10, 1), end: jiff::civil::date(2026, 10, 31) },
            kind: ReportKind::UsageSummary,
            level: ReportLevel::DirectPartners,
            report_id: None,
            status: Status::Ok,
            error: None,
            files: vec![FileResult {
                format: Format::CsvV2,
                path: "r.csv".into(),
                stored_report_id: "s".into(),
                bytes: 0,
                sha256: String::new(),
                sku_check: SkuCheck::SKIPPED,
                content_check: ContentCheck::SKIPPED,
            }],
            dr_compute_points: None,
            warnings: Vec::new(),
            plan_index: 0,
            timing: None,
        };
        let mut out = Vec::new();
        let written = billing::write(
            dir.path(),
            &ReportLog::of(vec![report]).unwrap(),
            &BillingRule::default(),
            &mut out,
        ).unwrap();
        // Rows of one key apart from each other give a line each, and say so; never otherwise.
        for (_, warning) in &written.warnings {
            prop_assert!(warning.contains("are not next to each other"), "{}", warning);
        }
        if grouped {
            prop_assert_eq!(written.warnings.len(), 0);
        }
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let columns = reader.headers().unwrap().clone();
        let at = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let mut billed: BTreeMap<(String, String, String), u128> = BTreeMap::new();
        for record in reader.records() {
            let record = record.unwrap();
            let value = Amount::parse(&record[at("billable_value")]).unwrap();
            let hundredths: u128 = value.fixed(2).replace('.', "").parse().unwrap();
            let key = (
                record[at("tenant_id")].to_owned(),
                record[at("offering_item")].to_owned(),
                record[at("infra_backend_type")].to_owned(),
            );
            let lines = billed.entry(key).or_default();
            // A key's lines are summed here; compute points round per line, as billed.
            *lines += hundredths;
        }
        prop_assert_eq!(billed, expected_billing(&rows));
    }
}
