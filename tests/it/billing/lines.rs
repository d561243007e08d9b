//! The invoice lines: exactly the vendor's billable value per tenant and item, whatever the
//! layout; unknown layouts, HTML pages, missing SKU access and disagreeing formats; the job's
//! billing rule; merged shards.

use super::*;

/// The invoice lines the vendor's rule gives for the `csv_v2_0` files of a run, recomputed here
/// from the files with the `csv` crate: (report tenant, tenant, item, backend) → billable value
/// as billing.csv writes it.
fn expected_lines(out: &Path) -> BTreeMap<(String, String, String, String), String> {
    const DELTA_ITEMS: [&str; 4] = [
        "compute_points",
        "pw_compute_points",
        "dre_compute_points",
        "p_dre_compute_points",
    ];
    let mut sums: BTreeMap<(String, String, String, String), i128> = BTreeMap::new();
    for report in delivery(out)["reports"].as_array().unwrap() {
        if report["status"] != "ok" {
            continue;
        }
        let Some(file) = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["format"] == "csv_v2_0")
        else {
            continue;
        };
        let path = period_dir(out).join(file["path"].as_str().unwrap());
        let mut reader = csv::Reader::from_path(path).unwrap();
        let header = reader.headers().unwrap().clone();
        let column = |name: &str| header.iter().position(|h| h == name);
        for record in reader.records() {
            let record = record.unwrap();
            let cell = |name: &str| column(name).map_or("", |at| &record[at]);
            let item = cell("name");
            let measure = if DELTA_ITEMS.contains(&item) {
                "delta"
            } else {
                "absolute"
            };
            let scope = if cell("tenant.kind") == "customer" {
                "total"
            } else {
                "production"
            };
            let value: i128 = cell(&format!("usage.{measure}.{scope}")).parse().unwrap();
            *sums
                .entry((
                    report["tenant_id"].as_str().unwrap().to_owned(),
                    cell("tenant.id").to_owned(),
                    item.to_owned(),
                    cell("infra.backend_type").to_owned(),
                ))
                .or_default() += value;
        }
    }
    sums.into_iter()
        .map(|(key, sum)| {
            let text = if key.2.ends_with("compute_points") {
                // Point-seconds ÷ 3600 to 2 decimals, half up (the values are not negative).
                let hundredths = (sum * 100 + 1800) / 3600;
                format!("{}.{:02}", hundredths / 100, hundredths % 100)
            } else {
                sum.to_string()
            };
            (key, text)
        })
        .collect()
}

/// billing.csv as (report tenant, tenant, item, backend) → billable value; one line per key.
fn written_lines(out: &Path) -> BTreeMap<(String, String, String, String), String> {
    let mut lines = BTreeMap::new();
    for row in billing_rows(out) {
        let key = (
            row["report_tenant_id"].clone(),
            row["tenant_id"].clone(),
            row["offering_item"].clone(),
            row["infra_backend_type"].clone(),
        );
        assert!(
            lines.insert(key, row["billable_value"].clone()).is_none(),
            "one line per tenant, item and backend: {row:?}"
        );
    }
    lines
}

#[test]
fn billing_csv_has_exactly_the_vendors_billable_value_per_tenant_and_item() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let expected = expected_lines(&out);
    // acme and globex have csv_v2_0 files; initech's json_v2_0 lines are checked below.
    assert!(expected.len() > 20, "{expected:?}");
    let written: BTreeMap<_, _> = written_lines(&out)
        .into_iter()
        .filter(|(key, _)| key.0 != INITECH)
        .collect();
    assert_eq!(written, expected);

    let rows = billing_rows(&out);
    let mut dr_per_report: BTreeMap<String, f64> = BTreeMap::new();
    for row in &rows {
        let item = row["offering_item"].as_str();
        if item.ends_with("compute_points") {
            assert_eq!(row["unit"], "points", "{row:?}");
            *dr_per_report
                .entry(row["report_tenant_id"].clone())
                .or_default() += row["billable_value"].parse::<f64>().unwrap();
        }
        if item == "pw_base_storage" {
            assert_eq!(row["unit"], "bytes", "{row:?}");
            let gib = row["billable_value"].parse::<f64>().unwrap() / (1u64 << 30) as f64;
            assert_eq!(row["billable_gib"], format!("{gib:.4}"), "{row:?}");
        }
        // Customers bill on total, partners on production.
        let scope = if row["tenant_kind"] == "customer" {
            "total"
        } else {
            "production"
        };
        if row["source"].ends_with(".csv") {
            assert!(row["billable_measure"].ends_with(scope), "{row:?}");
        }
    }
    // Partner rows and customer rows with trial usage are both there, so scope matters.
    assert!(rows.iter().any(|r| r["tenant_kind"] == "partner"));
    assert!(rows.iter().any(|r| r["tenant_kind"] == "customer"
        && r["usage.absolute.trial"] != "0"
        && !r["usage.absolute.trial"].is_empty()));
    // The manifests' DR compute points (the delivery's and the run's) are the sum of the
    // report's DR lines.
    for record in [delivery(&out), manifest(&out)] {
        for report in record["reports"].as_array().unwrap() {
            let id = report["tenant_id"].as_str().unwrap();
            assert_eq!(
                format!("{:.2}", report["dr_compute_points"].as_f64().unwrap_or(0.0)),
                format!("{:.2}", dr_per_report.get(id).copied().unwrap_or(0.0)),
                "{id}"
            );
        }
    }
    // Lines come in plan order, each report from its csv_v2_0 file where it has one (named
    // from the period folder, where billing.csv is).
    let mut sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str()).collect();
    sources.dedup();
    assert_eq!(
        sources,
        [
            "acme/usage_summary.csv_v2_0.csv",
            "globex/usage_summary.csv_v2_0.csv",
            "initech/usage_summary.json_v2_0.json",
        ]
    );
    for source in sources {
        assert!(period_dir(&out).join(source).is_file(), "{source}");
    }
    // acme's two formats agree: no warning anywhere.
    for record in [delivery(&out), manifest(&out)] {
        for report in record["reports"].as_array().unwrap() {
            assert_eq!(report["warnings"], Value::Null, "{report}");
        }
    }
}

/// Every layout variant the sandbox can play gives the same exact lines (as recomputed from the
/// downloaded file), and the run is ok.
#[test]
fn every_layout_variant_is_read_exactly() {
    let variants = [
        "content: {sku_column: offering_item.sku}",
        "content: {sku_column: SKU, extra_columns: true, reorder_columns: true}",
        "content: {edition_column: false}",
        "content: {infra_rows: true}",
        "content: {compute_points_item: compute_points}",
        "content: {compute_points_item: pw_compute_points}",
        "content: {compute_points_item: dre_compute_points}",
        "content: {compute_points_item: p_dre_compute_points}",
    ];
    let scratch = Scratch::new(SCENARIO);
    for (i, variant) in variants.iter().enumerate() {
        std::fs::write(
            scratch.path("scenario.yml"),
            format!("{SCENARIO}{variant}\n"),
        )
        .unwrap();
        let out = format!("out-{i}");
        scratch.run(&out, &[]).success();
        let out = scratch.path(&out);
        let written: BTreeMap<_, _> = written_lines(&out)
            .into_iter()
            .filter(|(key, _)| key.0 != INITECH)
            .collect();
        assert_eq!(written, expected_lines(&out), "{variant}");
        for record in [delivery(&out), manifest(&out)] {
            for report in record["reports"].as_array().unwrap() {
                assert_eq!(report["warnings"], Value::Null, "{variant}: {report}");
            }
        }
        if variant.contains("infra_rows") {
            assert!(written.keys().any(|k| k.3 == "azure"), "{variant}");
        }
        if let Some(item) = variant.strip_prefix("content: {compute_points_item: ") {
            let item = item.trim_end_matches('}');
            let dr: Vec<_> = written.iter().filter(|(k, _)| k.2 == item).collect();
            assert!(!dr.is_empty(), "{variant}");
            // Billed on delta: the sandbox's compute points are consumed in the period.
            for row in billing_rows(&out)
                .iter()
                .filter(|r| r["offering_item"] == item)
            {
                let measure = row["billable_measure"].as_str();
                // json_v2_0 has no scopes: a delta is its `value`.
                assert!(
                    measure.starts_with("usage.delta.") || measure == "value",
                    "{row:?}"
                );
            }
        }
    }
}

#[test]
fn an_unknown_layout_or_an_html_page_fails_that_report_and_keeps_the_file() {
    let scenario = format!(
        "{SCENARIO}tenants:\n  {GLOBEX}: {{layout: unknown}}\n  {INITECH}: {{layout: html}}\n"
    );
    let scratch = Scratch::new(&scenario);
    scratch.run("out", &[]).code(1);
    let out = scratch.path("out");
    let manifest = manifest(&out);
    let reports = manifest["reports"].as_array().unwrap();
    assert_eq!(reports[0]["status"], "ok");
    let globex = &reports[1];
    assert_eq!(globex["status"], "failed");
    let error = globex["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "the csv_v2_0 file failed its content check (kept as downloaded): unrecognised layout"
        ),
        "{error}"
    );
    assert!(error.contains("found `Col A`, `Col B`, `Col C`"), "{error}");
    assert!(
        error.contains("expected `tenant.id`, `tenant.kind`, `name`"),
        "{error}"
    );
    let file = &globex["files"][0];
    assert_eq!(file["content_check"]["status"], "failed");
    assert!(out.join(file["path"].as_str().unwrap()).is_file());
    // The period's delivery records the same failure, its file named from the period folder.
    let delivered = delivery(&out);
    let delivered = &delivered["reports"][1];
    assert_eq!(delivered["status"], "failed");
    assert_eq!(delivered["error"], globex["error"]);
    let file = &delivered["files"][0];
    assert_eq!(file["path"], "globex/usage_summary.csv_v2_0.csv");
    assert_eq!(file["content_check"]["status"], "failed");
    assert!(
        period_dir(&out)
            .join(file["path"].as_str().unwrap())
            .is_file()
    );
    // An HTML page labelled text/html fails its download: nothing is saved for it.
    let initech = &reports[2];
    assert_eq!(initech["status"], "failed");
    let error = initech["error"].as_str().unwrap();
    assert!(
        error.contains("answered with text/html") && error.contains("it begins \"<"),
        "{initech}"
    );
    // Only the ok report is billed; the failed files are still checksummed, in the period's
    // SHA256SUMS.
    let rows = billing_rows(&out);
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["report_tenant_id"] == ACME));
    let sums = read(&period_dir(&out).join("SHA256SUMS"));
    assert!(
        sums.lines()
            .any(|l| l.ends_with("  globex/usage_summary.csv_v2_0.csv")),
        "{sums}"
    );
    assert!(!sums.contains("initech/"), "{sums}");
    assert!(
        !period_dir(&out)
            .join("initech/usage_summary.json_v2_0.json")
            .exists()
    );
    scratch.cmd().args(["verify", "out"]).assert().success();
}

#[test]
fn a_tenant_without_sku_access_fails_the_sku_check_but_is_billed_when_warned() {
    let scenario = format!("{SCENARIO}tenants:\n  {GLOBEX}: {{no_skus: true}}\n");
    let scratch = Scratch::new(&scenario);
    scratch.run("out", &[]).code(1);
    let manifest = manifest(&scratch.path("out"));
    let globex = &manifest["reports"][1];
    assert_eq!(globex["status"], "failed");
    assert!(
        globex["error"]
            .as_str()
            .unwrap()
            .contains("lack a SKU (checks.skus: required)"),
        "{globex}"
    );
}

#[test]
fn formats_that_disagree_are_reported() {
    // Padding rows are extra csv_v2_0 rows that the json_v2_0 file does not have.
    let scratch = Scratch::new(&format!("{SCENARIO}pad_bytes: 1\n"));
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    // The delivery's record and the run's carry the warning, which names the files as
    // billing.csv does: from the period folder.
    for record in [delivery(&out), manifest(&out)] {
        let warnings = |i: usize| record["reports"][i]["warnings"].clone();
        let acme = warnings(0);
        assert_eq!(acme.as_array().map(Vec::len), Some(1), "{acme}");
        let warning = acme[0].as_str().unwrap();
        assert_eq!(
            warning,
            "the csv_v2_0 and json_v2_0 files disagree (22 line(s) in acme/usage_summary.csv_v2_0.csv, 21 in acme/usage_summary.json_v2_0.json): pw_padding only in acme/usage_summary.csv_v2_0.csv; billing.csv follows acme/usage_summary.csv_v2_0.csv"
        );
        // Only acme has both formats.
        assert_eq!(warnings(1), Value::Null);
        assert_eq!(warnings(2), Value::Null);
    }
    for summary in [period_dir(&out).join("summary.md"), out.join("summary.md")] {
        let summary = read(&summary);
        assert!(summary.contains("· 1 warning ·"), "{summary}");
        assert!(
            summary.contains("*what to do:* both files are kept"),
            "{summary}"
        );
    }
    scratch.cmd().args(["verify", "out"]).assert().success();
}

#[test]
fn the_job_files_billing_rule_reaches_billing_csv_and_the_manifest() {
    let scratch = Scratch::new(SCENARIO);
    let job = JOB.replace(
        "polling:",
        "billing:\n  scope: total\n  measure: absolute\npolling:",
    );
    std::fs::write(scratch.path("job.yml"), job).unwrap();
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let rows = billing_rows(&out);
    assert!(!rows.is_empty());
    for row in &rows {
        let expected = if row["source"].ends_with(".csv") {
            "usage.absolute.total"
        } else {
            "absolute_value"
        };
        assert_eq!(row["billable_measure"], expected, "{row:?}");
    }
    let rule = serde_json::json!({"scope": "total", "measure": "absolute", "delta_items": [
        "compute_points", "pw_compute_points", "dre_compute_points", "p_dre_compute_points"
    ]});
    assert_eq!(delivery(&out)["billing_rule"], rule);
    assert_eq!(manifest(&out)["billing_rule"], rule);
    assert!(
        read(&period_dir(&out).join("summary.md"))
            .contains("billed on scope total, measure absolute (`billing` in the job file)."),
        "the period's summary names the rule"
    );
}

#[test]
fn merged_shards_write_the_unsharded_billing_csv() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("full", &[]).success();
    scratch.run("shard-1", &["--shard", "1/2"]).success();
    scratch.run("shard-2", &["--shard", "2/2"]).success();
    // Each shard's billing.csv holds only its own reports.
    let shard_rows =
        billing_rows(&scratch.path("shard-1")).len() + billing_rows(&scratch.path("shard-2")).len();
    assert_eq!(shard_rows, billing_rows(&scratch.path("full")).len());
    scratch
        .cmd()
        .args(["merge", "shard-2", "shard-1", "--out", "merged"])
        .assert()
        .success();
    let (full, merged) = (scratch.path("full"), scratch.path("merged"));
    assert_eq!(
        read(&period_dir(&full).join("billing.csv")),
        read(&period_dir(&merged).join("billing.csv"))
    );
    assert!(!merged.join("billing.csv").exists());
    // The period holds the same files with the same bytes: its SHA256SUMS but for the lines of
    // manifest.json and summary.md, which carry the run's times (the root SHA256SUMS seals
    // those too, so it differs as well).
    let files = |out: &Path| -> Vec<String> {
        read(&period_dir(out).join("SHA256SUMS"))
            .lines()
            .filter(|l| !l.ends_with("  manifest.json") && !l.ends_with("  summary.md"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(files(&full).len(), 5, "four report files and billing.csv");
    assert_eq!(files(&full), files(&merged));
    // The delivery records the same reports and the same billing.csv; how long each report took
    // to generate is the run's own measurement, like its times.
    let untimed = |out: &Path| {
        let mut delivery = delivery(out);
        for report in delivery["reports"].as_array_mut().unwrap() {
            assert!(report["timing"]["ready_after_ms"].is_u64(), "{report}");
            report.as_object_mut().unwrap().remove("timing");
        }
        delivery
    };
    for key in ["reports", "derived_files", "billing_rule", "period_folder"] {
        assert_eq!(untimed(&full)[key], untimed(&merged)[key], "{key}");
    }
    for summary in [
        PathBuf::from(PERIOD).join("summary.md"),
        "summary.md".into(),
    ] {
        assert_eq!(
            without_run_line(&read(&full.join(&summary))),
            without_run_line(&read(&merged.join(&summary))),
            "{}",
            summary.display()
        );
    }
    scratch.cmd().args(["verify", "merged"]).assert().success();
}
