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

mod lines;
mod records;
mod summary_md;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use acronis_reports::output::billing::{self, BillingSummary, InvoiceRow, SkuTotal};
use acronis_reports::output::summary;
use acronis_reports::period::Period;
use acronis_reports::report::{Format, ReportKind, ReportLevel};
use acronis_reports::results::{
    ContentCheck, FileResult, JobRef, ReportLog, ReportResult, RunResult, SkuCheck, SkuStatus,
    Status, Tool,
};
use assert_cmd::Command;
use serde_json::Value;

use crate::support::{ACME, AS_OF, GLOBEX, INITECH, bare_cmd, manifest, read, sha256_file};

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
        let mut cmd = bare_cmd();
        cmd.current_dir(self.dir.path());
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

/// The period's delivery folder in the output folder `out`.
fn period_dir(out: &Path) -> PathBuf {
    out.join(PERIOD)
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
