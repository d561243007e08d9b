use super::*;

fn usage(label: &str, items: &[(&str, &str, &str, &str)]) -> PeriodUsage {
    PeriodUsage {
        label: label.to_owned(),
        items: items
            .iter()
            .map(|(tenant, item, value, unit)| {
                (
                    ((*tenant).to_owned(), (*item).to_owned()),
                    Usage {
                        tenant_name: tenant.to_uppercase(),
                        sku: format!("SKU-{item}"),
                        unit: (*unit).to_owned(),
                        value: Amount::parse(value).unwrap(),
                        report_tenant_id: "partner".to_owned(),
                    },
                )
            })
            .collect(),
        ..PeriodUsage::default()
    }
}

#[test]
fn a_rise_from_a_negative_value_is_a_rise_and_from_zero_has_no_share() {
    let before = usage(
        "2026-10",
        &[("a", "credit", "-3", ""), ("a", "seats", "0", "")],
    );
    let after = usage(
        "2026-11",
        &[("a", "credit", "3", ""), ("a", "seats", "4", "")],
    );
    let changes = diff(&before, &after);
    let credit = changes
        .rows
        .iter()
        .find(|c| c.offering_item == "credit")
        .unwrap();
    assert_eq!(credit.relative(), Some(2.0));
    let seats = changes
        .rows
        .iter()
        .find(|c| c.offering_item == "seats")
        .unwrap();
    assert_eq!(
        (seats.relative(), seats.status(false, false)),
        (None, "changed")
    );
    let section = render_section(&changes, &CompareOptions::default());
    assert!(section.contains("| +200.0 % ⚠ |"), "{section}");
    assert!(section.contains("| from zero |"), "{section}");
}

#[test]
fn values_of_a_failed_report_are_not_compared() {
    let before = usage(
        "2026-10",
        &[("a", "seats", "4", ""), ("b", "seats", "2", "")],
    );
    let mut after = usage("2026-11", &[("b", "seats", "2", "")]);
    // `usage` bills every tenant from the report of tenant `partner`.
    after.record.failed_reports = BTreeMap::from([("partner".to_owned(), "Partner".to_owned())]);
    let changes = diff(&before, &after);
    assert!(changes.vanished_tenants.is_empty(), "{changes:?}");
    assert_eq!(changes.vanished_items().count(), 0);
    let a = changes.rows.iter().find(|c| c.tenant_id == "a").unwrap();
    assert_eq!(a.report_failed_in.as_deref(), Some("2026-11"));
    assert_eq!(a.status(false, false), "report_failed");
    let section = render_section(&changes, &CompareOptions::default());
    assert!(
        section.contains("The report of Partner failed"),
        "{section}"
    );
}

#[test]
fn another_billing_rule_and_day_lines_are_told() {
    let mut before = usage("2026-10", &[("a", "seats", "4", "")]);
    let mut after = usage("2026-11", &[("a", "seats", "5", "")]);
    before.record.billing_rule = Some("{\"scope\":\"total\"}".into());
    after.record.billing_rule = Some("{\"scope\":\"auto\"}".into());
    after.day_lines = 30;
    let section = render_section(&diff(&before, &after), &CompareOptions::default());
    assert!(section.contains("The billing rules differ"), "{section}");
    assert!(
        section.contains("30 day-by-day line(s) are left out"),
        "{section}"
    );
}

#[test]
fn day_lines_and_the_record_are_read_beside_billing_csv() {
    let dir = tempfile::tempdir().unwrap();
    let period = dir.path().join("2026-10");
    std::fs::create_dir_all(&period).unwrap();
    let header = crate::output::billing::columns().join(",");
    let line = |day: &str, value: &str| {
        crate::output::billing::columns()
            .iter()
            .map(|c| match *c {
                "day" => day,
                "report_tenant_id" | "tenant_id" => "t1",
                "offering_item" => "seats",
                "billable_value" => value,
                _ => "",
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    std::fs::write(
        period.join(BILLING_CSV),
        format!(
            "{header}\n{}\n{}\n{}\n",
            line("", "7"),
            line("2026-10-01", "7"),
            line("2026-10-02", "7")
        ),
    )
    .unwrap();
    std::fs::write(
            period.join("manifest.json"),
            r#"{"billing_rule":{"scope":"total"},"reports":[{"tenant_id":"t9","tenant_name":"Gone","status":"failed"},{"tenant_id":"t1","status":"ok"}]}"#,
        )
        .unwrap();
    let read = read_usage(dir.path(), "2026-10").unwrap();
    assert_eq!(read.day_lines, 2);
    assert_eq!(read.items.len(), 1);
    assert_eq!(
        read.items.values().next().unwrap().value,
        Amount::parse("7").unwrap()
    );
    assert_eq!(
        read.record.billing_rule.as_deref(),
        Some(r#"{"scope":"total"}"#)
    );
    assert_eq!(
        read.record.failed_reports,
        BTreeMap::from([("t9".to_owned(), "Gone".to_owned())])
    );
}

#[test]
fn new_vanished_and_changed_are_told_apart() {
    let before = usage(
        "2026-10",
        &[
            ("a", "storage", "1073741824", "bytes"),
            ("a", "seats", "10", ""),
            ("b", "seats", "4", ""),
            ("gone", "seats", "7", ""),
        ],
    );
    let after = usage(
        "2026-11",
        &[
            ("a", "storage", "3221225472", "bytes"),
            ("a", "vms", "2", ""),
            ("b", "seats", "5", ""),
            ("new", "seats", "1", ""),
        ],
    );
    let changes = diff(&before, &after);
    assert_eq!(changes.new_tenants.keys().collect::<Vec<_>>(), ["new"]);
    assert_eq!(
        changes.vanished_tenants.keys().collect::<Vec<_>>(),
        ["gone"]
    );
    let items = |list: Vec<&Change>| -> Vec<String> {
        list.iter()
            .map(|c| format!("{}/{}", c.tenant_id, c.offering_item))
            .collect()
    };
    assert_eq!(items(changes.new_items().collect()), ["a/vms"]);
    assert_eq!(items(changes.vanished_items().collect()), ["a/seats"]);
    // Largest relative change first: +200 % before +25 %.
    assert_eq!(items(changes.changed()), ["a/storage", "b/seats"]);
    assert_eq!(items(changes.large(0.5)), ["a/storage"]);

    let text = render_section(&changes, &CompareOptions::default());
    assert!(text.starts_with("## Changes since 2026-10\n"), "{text}");
    for expected in [
        "### New tenants",
        "| NEW | new |",
        "### Vanished tenants",
        "| GONE | gone |",
        "### New offering items of tenants billed before",
        "### Vanished offering items of tenants still billed",
        "| A | storage | SKU-storage | 1.0 GiB | 3.0 GiB | +2.0 GiB | +200.0 % ⚠ |",
        "| B | seats | SKU-seats | 4 seats | 5 seats | +1 seat | +25.0 % |",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }

    let mut csv = Vec::new();
    write_csv(&changes, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    for expected in [
        "a,A,storage,SKU-storage,bytes,1073741824,3221225472,2147483648,2.0000,changed",
        "a,A,seats,SKU-seats,,10,,-10,-1.0000,vanished_item",
        "gone,GONE,seats,SKU-seats,,7,,-7,-1.0000,vanished_tenant",
        "new,NEW,seats,SKU-seats,,,1,1,,new_tenant",
        "a,A,vms,SKU-vms,,,2,2,,new_item",
    ] {
        assert!(csv.contains(expected), "{expected} in\n{csv}");
    }
}

#[test]
fn names_that_a_spreadsheet_would_run_are_written_as_text() {
    let before = usage("2026-10", &[("=HYPERLINK(\"x\")", "@seats", "1", "")]);
    let after = usage("2026-11", &[("=HYPERLINK(\"x\")", "@seats", "3", "")]);
    let mut csv = Vec::new();
    write_csv(&diff(&before, &after), &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"x\"\")\",\"'=HYPERLINK(\"\"X\"\")\",'@seats,SKU-@seats,"),
        "{csv}"
    );
    // Numbers keep their sign: only texts are defused.
    let fell = diff(&after, &before);
    let mut csv = Vec::new();
    write_csv(&fell, &mut csv).unwrap();
    assert!(String::from_utf8(csv).unwrap().contains(",3,1,-2,"));
}

#[test]
fn the_previous_period_is_the_latest_that_ends_before() {
    let dir = tempfile::tempdir().unwrap();
    for label in [
        "2026-08",
        "2026-10",
        "2026-11-01_2026-11-15",
        "2026-12",
        "notes",
    ] {
        std::fs::create_dir_all(dir.path().join(label)).unwrap();
        std::fs::write(dir.path().join(label).join(BILLING_CSV), "x").unwrap();
    }
    assert_eq!(
        periods_of(dir.path()),
        ["2026-08", "2026-10", "2026-11-01_2026-11-15", "2026-12"]
    );
    assert_eq!(
        previous_of(dir.path(), "2026-10").as_deref(),
        Some("2026-08")
    );
    assert_eq!(
        previous_of(dir.path(), "2026-12").as_deref(),
        Some("2026-11-01_2026-11-15")
    );
    assert_eq!(previous_of(dir.path(), "2026-08"), None);
}

#[test]
fn a_billing_csv_that_is_not_ours_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("2026-10")).unwrap();
    std::fs::write(dir.path().join("2026-10").join(BILLING_CSV), "a,b\n1,2\n").unwrap();
    let err = read_usage(dir.path(), "2026-10").unwrap_err();
    assert!(
        err.to_string().contains("no column `report_tenant_id`"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("2026-10").join(BILLING_CSV),
        format!("{}\np,t,n,i,s,lots,\n", COLUMNS.join(",")),
    )
    .unwrap();
    let err = read_usage(dir.path(), "2026-10").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(
        err.to_string().contains("\"lots\" is not a number"),
        "{err}"
    );
}
