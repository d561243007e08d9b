//! `billing.csv` and `summary.md` end to end against the sandbox, which serves the vendor's
//! layouts: snapshots of both, exact invoice lines recomputed here from the downloaded files by
//! the vendor's rule, every layout variant the sandbox can play, unknown layouts and HTML pages
//! failing their report, the derived file's place in its period's `SHA256SUMS`, the period's
//! manifest and `verify`, merged shards, and the size limit of the summary.
//!
//! The output folder is a trail: the job's one period is delivered in `out/2026-10/` (report
//! files, `billing.csv`, `manifest.json` and `summary.md`, paths relative to that folder, and a
//! `SHA256SUMS` of them all); the root holds the run's `manifest.json` (paths relative to the
//! output folder), its `summary.md`, and a `SHA256SUMS` sealing the period's.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use acronis_reports::billing::{self, BillingSummary, InvoiceRow, SkuTotal};
use acronis_reports::output::summary;
use acronis_reports::period::Period;
use acronis_reports::report::{Format, ReportKind, ReportLevel};
use acronis_reports::results::{
    ContentCheck, FileResult, JobRef, ReportLog, ReportResult, RunResult, SkuCheck, SkuStatus,
    Status, Tool,
};
use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};

const ACME: &str = "ede9f834-70b3-476c-83d9-736f9f8c7dae";
const GLOBEX: &str = "0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11";
const INITECH: &str = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
const AS_OF: &str = "2026-11-27";
/// The period the job's `previous_month` resolves to, and its folder in the trail.
const PERIOD: &str = "2026-10";

/// acme in both formats, globex in csv_v2_0 only, initech in json_v2_0 only without zero rows.
const JOB: &str = "\
version: 1
polling:
  initial_interval: 50ms
  max_interval: 200ms
  timeout: 20s
defaults:
  formats: [csv_v2_0, json_v2_0]
  periods: [previous_month]
tenants:
  - id: ede9f834-70b3-476c-83d9-736f9f8c7dae
    name: acme
  - id: 0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11
    name: globex
    formats: [csv_v2_0]
  - id: 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f
    name: initech
    formats: [json_v2_0]
    hide_zero_usage: true
";

const SCENARIO: &str = "generation_delay: 100ms\ndeterministic_ids: true\n";

/// A scratch folder holding `job.yml` and `scenario.yml`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(scenario: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("job.yml"), JOB).expect("write job");
        std::fs::write(dir.path().join("scenario.yml"), scenario).expect("write scenario");
        Self { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The binary with nothing inherited that could change its behaviour.
    fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("acronis-reports").expect("binary built");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .timeout(std::time::Duration::from_secs(120));
        cmd
    }

    /// `run job.yml --sandbox --sandbox-scenario scenario.yml --as-of AS_OF --out OUT [extra]`.
    fn run(&self, out: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
        self.cmd()
            .args([
                "run",
                "job.yml",
                "--sandbox",
                "--sandbox-scenario",
                "scenario.yml",
            ])
            .args(["--as-of", AS_OF, "--out", out])
            .args(extra)
            .assert()
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read file")))
}

/// The period's delivery folder in the output folder `out`.
fn period_dir(out: &Path) -> PathBuf {
    out.join(PERIOD)
}

/// The run's record at the root of `out` (file paths relative to `out`).
fn manifest(out: &Path) -> Value {
    serde_json::from_str(&read(&out.join("manifest.json"))).expect("valid JSON")
}

/// The period's delivery record, `out/2026-10/manifest.json` (file paths relative to the
/// period folder, `derived_files`, and the warnings of billing.csv).
fn delivery(out: &Path) -> Value {
    let value: Value =
        serde_json::from_str(&read(&period_dir(out).join("manifest.json"))).expect("valid JSON");
    assert_eq!(value["period_folder"], PERIOD, "{}", out.display());
    value
}

/// The rows of the period's `billing.csv` as header name → cell.
fn billing_rows(out: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(period_dir(out).join("billing.csv")).expect("billing.csv");
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, c)| (h.to_owned(), c.to_owned()))
                .collect()
        })
        .collect()
}

/// The summary without the line that holds the run's times and the sandbox's port.
fn without_run_line(summary: &str) -> String {
    summary
        .lines()
        .map(|line| {
            if line.starts_with("Run from ") {
                "Run from [time] to [time] ([elapsed]) against [sandbox], by acronis-reports [version]."
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn snapshots_of_billing_csv_and_summary() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("out", &[]).success();
    let period = period_dir(&scratch.path("out"));
    insta::assert_snapshot!("billing_csv", read(&period.join("billing.csv")));
    insta::assert_snapshot!(
        "summary_md",
        without_run_line(&read(&period.join("summary.md")))
    );
}

#[test]
fn billing_csv_is_checksummed_recorded_and_verified() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let period = period_dir(&out);
    let sha256 = sha256_file(&period.join("billing.csv"));
    let sums = read(&period.join("SHA256SUMS"));
    assert!(
        sums.lines().any(|l| l == format!("{sha256}  billing.csv")),
        "{sums}"
    );
    // Four report files, billing.csv, and the period's manifest.json and summary.md.
    assert_eq!(sums.lines().count(), 7, "{sums}");
    for record in ["manifest.json", "summary.md"] {
        let line = format!("{}  {record}", sha256_file(&period.join(record)));
        assert!(sums.lines().any(|l| l == line), "{record}: {sums}");
    }
    // The root seals the period's SHA256SUMS; billing.csv is the period's only.
    let root = read(&out.join("SHA256SUMS"));
    let seal = format!(
        "{}  {PERIOD}/SHA256SUMS",
        sha256_file(&period.join("SHA256SUMS"))
    );
    assert!(root.lines().any(|l| l == seal), "{root}");
    assert!(!root.contains("billing.csv"), "{root}");
    assert!(!out.join("billing.csv").exists());
    assert_eq!(
        delivery(&out)["derived_files"],
        serde_json::json!([{
            "path": "billing.csv",
            "bytes": std::fs::metadata(period.join("billing.csv")).unwrap().len(),
            "sha256": sha256,
            "source": billing::SOURCE,
        }])
    );
    assert_eq!(manifest(&out).get("derived_files"), None);
    // The root's three lines and the period's seven.
    scratch
        .cmd()
        .args(["verify", "out"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "verified 10 files in 1 period: all match",
        ));

    // A changed row is caught like a changed report file, by the whole trail's check and by
    // the period's.
    let path = period.join("billing.csv");
    let text = read(&path).replacen(",acme,", ",acme-renamed,", 1);
    std::fs::write(&path, text).unwrap();
    scratch
        .cmd()
        .args(["verify", "out"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("changed: 2026-10/billing.csv"));
    scratch
        .cmd()
        .args(["verify", "out", "--period", PERIOD])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("changed: 2026-10/billing.csv"));
}

#[test]
fn originals_stay_byte_exact_and_billing_csv_is_reproducible() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("first", &[]).success();
    scratch.run("second", &[]).success();
    // The files as a record lists them, relative to `dir`.
    let listed = |record: &Value, dir: &Path, out: &str| -> Vec<(String, String)> {
        record["reports"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["files"].as_array().unwrap().clone())
            .map(|f| {
                let path = f["path"].as_str().unwrap().to_owned();
                let sha256 = f["sha256"].as_str().unwrap().to_owned();
                // On disk exactly as recorded: deriving billing.csv changed nothing.
                assert_eq!(sha256_file(&dir.join(&path)), sha256, "{out}: {path}");
                (path, sha256)
            })
            .collect()
    };
    let files = |out: &str| -> Vec<(String, String)> {
        let dir = scratch.path(out);
        let delivered = listed(&delivery(&dir), &period_dir(&dir), out);
        // The run's record names the same files from the output folder.
        let rooted: Vec<(String, String)> = delivered
            .iter()
            .map(|(path, sha256)| (format!("{PERIOD}/{path}"), sha256.clone()))
            .collect();
        assert_eq!(listed(&manifest(&dir), &dir, out), rooted, "{out}");
        delivered
    };
    let first = files("first");
    assert_eq!(first.len(), 4);
    assert_eq!(
        first,
        files("second"),
        "the sandbox sent the same bytes twice"
    );
    assert_eq!(
        read(&period_dir(&scratch.path("first")).join("billing.csv")),
        read(&period_dir(&scratch.path("second")).join("billing.csv"))
    );
}

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
