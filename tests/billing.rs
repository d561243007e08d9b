//! `billing.csv` and `summary.md` on a fixed sandbox scenario: snapshots of both, the derived
//! file's place in `SHA256SUMS`, the manifest and `verify`, the normalisation rules, the
//! disagreement of the two formats, and the size limit of the summary.

use std::path::{Path, PathBuf};

use acronis_reports::billing::{self, BillingSummary, SkuTotal};
use acronis_reports::output::summary;
use acronis_reports::period::Period;
use acronis_reports::report::{Format, ReportKind, ReportLevel};
use acronis_reports::results::{
    FileResult, JobRef, ReportLog, ReportResult, RunResult, SkuCheck, SkuStatus, Status, Tool,
};
use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};

const ACME: &str = "ede9f834-70b3-476c-83d9-736f9f8c7dae";
const GLOBEX: &str = "0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11";
const INITECH: &str = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
const AS_OF: &str = "2026-11-27";

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

fn manifest(out: &Path) -> Value {
    serde_json::from_str(&read(&out.join("manifest.json"))).expect("valid JSON")
}

/// The rows of `billing.csv` as header name → cell.
fn billing_rows(out: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(out.join("billing.csv")).expect("billing.csv");
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
    let out = scratch.path("out");
    insta::assert_snapshot!("billing_csv", read(&out.join("billing.csv")));
    insta::assert_snapshot!(
        "summary_md",
        without_run_line(&read(&out.join("summary.md")))
    );
}

#[test]
fn billing_csv_is_checksummed_recorded_and_verified() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let sha256 = sha256_file(&out.join("billing.csv"));
    let sums = read(&out.join("SHA256SUMS"));
    assert!(
        sums.lines().any(|l| l == format!("{sha256}  billing.csv")),
        "{sums}"
    );
    // Four report files and billing.csv.
    assert_eq!(sums.lines().count(), 5, "{sums}");
    let manifest = manifest(&out);
    assert_eq!(
        manifest["derived_files"],
        serde_json::json!([{
            "path": "billing.csv",
            "bytes": std::fs::metadata(out.join("billing.csv")).unwrap().len(),
            "sha256": sha256,
            "source": billing::SOURCE,
        }])
    );
    scratch
        .cmd()
        .args(["verify", "out"])
        .assert()
        .success()
        .stdout(predicates::str::contains("verified 5 files: all match"));

    // A changed row is caught like a changed report file.
    let path = out.join("billing.csv");
    let text = read(&path).replacen(",acme,", ",acme-renamed,", 1);
    std::fs::write(&path, text).unwrap();
    scratch
        .cmd()
        .args(["verify", "out"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("changed: billing.csv"));
}

#[test]
fn originals_stay_byte_exact_and_billing_csv_is_reproducible() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("first", &[]).success();
    scratch.run("second", &[]).success();
    let files = |out: &str| -> Vec<(String, String)> {
        let dir = scratch.path(out);
        manifest(&dir)["reports"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["files"].as_array().unwrap().clone())
            .map(|f| {
                let path = f["path"].as_str().unwrap().to_owned();
                let sha256 = f["sha256"].as_str().unwrap().to_owned();
                // On disk exactly as recorded: deriving billing.csv changed nothing.
                assert_eq!(sha256_file(&dir.join(&path)), sha256, "{out}/{path}");
                (path, sha256)
            })
            .collect()
    };
    let first = files("first");
    assert_eq!(first.len(), 4);
    assert_eq!(
        first,
        files("second"),
        "the sandbox sent the same bytes twice"
    );
    assert_eq!(
        read(&scratch.path("first/billing.csv")),
        read(&scratch.path("second/billing.csv"))
    );
}

#[test]
fn normalised_values_follow_the_rules() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let rows = billing_rows(&out);
    let (mut dr, mut storage) = (0, 0);
    for row in &rows {
        let value: f64 = row["value"].parse().unwrap();
        match (row["usage_name"].as_str(), row["unit"].as_str()) {
            ("compute_points", "seconds") => {
                dr += 1;
                assert_eq!(row["normalised_unit"], "points");
                let points = (value / 3600.0 * 100.0).round() / 100.0;
                assert_eq!(row["normalised_value"], format!("{points:.2}"), "{row:?}");
            }
            (_, "bytes") => {
                storage += 1;
                assert_eq!(row["normalised_unit"], "GiB");
                let gib = value / (1u64 << 30) as f64;
                assert_eq!(row["normalised_value"], format!("{gib:.4}"), "{row:?}");
            }
            _ => {
                assert_eq!(row["normalised_value"], row["value"]);
                assert_eq!(row["normalised_unit"], row["unit"]);
            }
        }
    }
    assert!(
        dr >= 3 && storage >= 3,
        "{dr} DR rows, {storage} storage rows"
    );

    // Rows come in plan order, each report from its preferred file.
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str()).collect();
    let mut order = sources.clone();
    order.dedup();
    assert_eq!(
        order,
        [
            "2026-10/acme/usage_summary.json_v2_0.json",
            "2026-10/globex/usage_summary.csv_v2_0.csv",
            "2026-10/initech/usage_summary.json_v2_0.json",
        ]
    );
    // hide_zero_usage: initech has no zero rows.
    assert!(
        rows.iter()
            .filter(|r| r["tenant_name"] == "initech")
            .all(|r| r["value"] != "0")
    );

    // The manifest's DR compute points are the report tenant's own row (which covers its
    // children), as billing.csv counts them.
    let manifest = manifest(&out);
    for (report, id) in manifest["reports"]
        .as_array()
        .unwrap()
        .iter()
        .zip([ACME, GLOBEX, INITECH])
    {
        let own = rows
            .iter()
            .find(|r| {
                r["customer_id"] == id
                    && r["usage_name"] == "compute_points"
                    && r["scope"] == "total"
            })
            .expect("the report tenant's own DR row");
        assert_eq!(
            format!("{:.2}", report["dr_compute_points"].as_f64().unwrap()),
            own["normalised_value"]
        );
    }
}

#[test]
fn formats_that_disagree_are_reported() {
    // A padding row is an extra csv_v2_0 row that the json_v2_0 file does not have.
    let scratch = Scratch::new(&format!("{SCENARIO}pad_bytes: 1\n"));
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let manifest = manifest(&out);
    let warnings = |i: usize| manifest["reports"][i]["warnings"].clone();
    let acme = warnings(0);
    assert_eq!(acme.as_array().map(Vec::len), Some(1), "{acme}");
    assert_eq!(
        acme[0],
        "the csv_v2_0 and json_v2_0 files disagree (22 csv_v2_0 and 21 json_v2_0 rows: 1 row only in csv_v2_0); billing.csv uses json_v2_0. First: Padding Row 000000000000 / pw_padding: only in csv_v2_0"
    );
    // Only acme has both formats.
    assert_eq!(warnings(1), Value::Null);
    assert_eq!(warnings(2), Value::Null);
    let summary = read(&out.join("summary.md"));
    assert!(summary.contains("· 1 warning ·"), "{summary}");
    assert!(
        summary.contains("warning: the csv\\_v2\\_0 and json\\_v2\\_0 files disagree"),
        "{summary}"
    );
    assert!(
        summary.contains("*what to do:* both files are kept"),
        "{summary}"
    );
    // billing.csv follows json_v2_0, so no padding row from acme; globex's csv has them.
    let rows = billing_rows(&out);
    let padding = |tenant: &str| {
        rows.iter()
            .filter(|r| r["tenant_name"] == tenant && r["offering_item"] == "pw_padding")
            .count()
    };
    assert_eq!((padding("acme"), padding("globex")), (0, 1));
    scratch.cmd().args(["verify", "out"]).assert().success();
}

#[test]
fn the_comparison_says_what_differs() {
    let csv = "Tenant Name,Tenant UUID,Offering Item,Usage Name,Measurement Unit,SKU,Start Date,End Date,Usage\n\
        Acme,a1,pw_base_storage,storage,bytes,SP4ASTENS,2026-10-01,2026-10-31,1073741824\n\
        Acme,a1,pw_base_adv_dr_compute_points,compute_points,seconds,SP4ADRENS,2026-10-01,2026-10-31,7200\n";
    let json = |storage: u64, dr_sku: &str| {
        serde_json::json!({"params": {"kind": 5}, "tenants": [
            {"tenant_uuid": "A1", "tenant_name": "Acme", "offering_item": "pw_base_storage",
             "usage_name": "storage", "measurement_unit": "bytes", "sku": "SP4ASTENS",
             "range_start": "2026-10-01", "range_end": "2026-10-31", "value": storage},
            {"tenant_uuid": "a1", "tenant_name": "Acme", "offering_item": "pw_base_adv_dr_compute_points",
             "usage_name": "compute_points", "measurement_unit": "seconds", "sku": dr_sku,
             "range_start": "2026-10-01", "range_end": "2026-10-31", "value": 7200},
        ]})
        .to_string()
    };
    let same = json(1 << 30, "SP4ADRENS");
    assert_eq!(
        billing::compare_formats(csv.as_bytes(), same.as_bytes()),
        Ok(None)
    );

    let other = json(2 << 30, "");
    let warning = billing::compare_formats(csv.as_bytes(), other.as_bytes())
        .unwrap()
        .expect("a disagreement");
    assert_eq!(
        warning,
        "the csv_v2_0 and json_v2_0 files disagree (2 csv_v2_0 and 2 json_v2_0 rows: 2 rows with other values); billing.csv uses json_v2_0. First: Acme / pw_base_storage: value 1073741824 in csv_v2_0, 2147483648 in json_v2_0; Acme / pw_base_adv_dr_compute_points: SKU SP4ADRENS in csv_v2_0, \"\" in json_v2_0"
    );

    // Unknown layouts are refused with a reason, not a panic.
    let err =
        billing::compare_formats("Name,Amount\nx,1\n".as_bytes(), same.as_bytes()).unwrap_err();
    assert!(err.contains("no usage column"), "{err}");
    let err = billing::compare_formats(csv.as_bytes(), r#"{"tenants":[{"x":1}]}"#.as_bytes())
        .unwrap_err();
    assert!(err.contains("no usage entries"), "{err}");
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
    assert_eq!(
        read(&scratch.path("full/billing.csv")),
        read(&scratch.path("merged/billing.csv"))
    );
    assert_eq!(
        read(&scratch.path("full/SHA256SUMS")),
        read(&scratch.path("merged/SHA256SUMS"))
    );
    assert_eq!(
        without_run_line(&read(&scratch.path("full/summary.md"))),
        without_run_line(&read(&scratch.path("merged/summary.md")))
    );
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
    };
    // Far more SKUs than any real report has.
    let totals = (0..5_000)
        .map(|i| SkuTotal {
            period: october(),
            sku: format!("SKU{i:05}{}", "s".repeat(80)),
            offering_item: format!("offering {i} {}", "o".repeat(80)),
            unit: "bytes".into(),
            total: "1073741824000".into(),
            normalised: "1000.0000".into(),
            normalised_unit: "GiB".into(),
        })
        .collect();
    let billing = BillingSummary {
        rows: 420_000,
        reports: 9_990,
        reports_without_source: 0,
        daily: false,
        totals,
    };
    let text = summary::render(&result, Some(&billing)).unwrap();
    assert!(text.len() < summary::MAX_BYTES, "{} bytes", text.len());
    assert!(text.starts_with("# Acronis billing reports"));
    assert!(
        text.contains("**9990 of 10000 reports ok, 10 failed**"),
        "{}",
        &text[..400]
    );
    assert!(text.contains("From billing.csv: 420000 usage rows of 9990 reports."));
    assert!(
        text.contains("_4800 more totals not shown"),
        "totals are cut with a note"
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
