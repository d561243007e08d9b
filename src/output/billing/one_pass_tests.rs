//! `billing.csv` written from the lines the download's check kept (each file read once) is the
//! `billing.csv` of reading every file again, byte for byte and warning for warning, for every
//! layout the sandbox serves: real runs against it, over loopback HTTP.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::api::{Client, ClientOptions, Credentials, api_base};
use crate::content::spill::{self, one_store_at_a_time};
use crate::run::{RunConfig, Runner, Unobserved};
use crate::secret::Secret;
use crate::state::{STATE_DIR, StateStore};
use acronis_reports_sandbox::{Sandbox, Scenario};

const AS_OF: &str = "2026-11-27";
const TENANTS: [&str; 10] = [
    "10000000-0000-4000-8000-000000000001",
    "10000000-0000-4000-8000-000000000002",
    "10000000-0000-4000-8000-000000000003",
    "10000000-0000-4000-8000-000000000004",
    "10000000-0000-4000-8000-000000000005",
    "10000000-0000-4000-8000-000000000006",
    "10000000-0000-4000-8000-000000000007",
    "10000000-0000-4000-8000-000000000008",
    "10000000-0000-4000-8000-000000000009",
    "10000000-0000-4000-8000-00000000000a",
];

/// A job for `tenants` (YAML lines after `- id:` of each), both formats and SKUs by default.
fn job(tenants: &[(&str, &str)]) -> String {
    let mut yaml = String::from(
        "version: 1\n\
         polling: {initial_interval: 20ms, max_interval: 100ms, timeout: 60s}\n\
         concurrency: 4\n\
         checks: {skus: required}\n\
         defaults: {formats: [csv_v2_0, json_v2_0], periods: [previous_month], show_skus: true}\n\
         tenants:\n",
    );
    for (id, more) in tenants {
        yaml.push_str(&format!("  - id: {id}\n    name: t-{}\n", &id[34..]));
        for line in more.lines() {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    yaml
}

/// What `billing.csv` is, written both ways after one run of `job` against `scenario`.
struct Both {
    spills: usize,
    one_pass: (String, Billing),
    two_pass: (String, Billing),
    reports: usize,
    failed: usize,
    /// Files the sandbox served, over all runs.
    downloads: u64,
}

/// [`run_both_ways_async`] on a runtime of its own, so that a test holds the store's lock
/// outside any `await`.
fn run_both_ways(scenario: &str, job_yaml: &str) -> Both {
    run_both_ways_after(scenario, job_yaml, 1)
}

/// [`run_both_ways`] after `runs` runs of the job into one folder: the later ones keep the
/// files the first saved, reading each once for its checksum and check.
fn run_both_ways_after(scenario: &str, job_yaml: &str, runs: usize) -> Both {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run_both_ways_async(scenario, job_yaml, runs))
}

async fn run_both_ways_async(scenario: &str, job_yaml: &str, runs: usize) -> Both {
    let scenario = Scenario::from_yaml_str(scenario).expect("scenario");
    let sandbox = Sandbox::start(scenario, 0).await.expect("sandbox");
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let job_path = scratch.path().join("job.yml");
    let job = crate::job::parse(&job_path, job_yaml.as_bytes(), AS_OF.parse().expect("date"))
        .expect("job");
    let client = Client::new(
        api_base(&sandbox.base_url()).unwrap(),
        Credentials::Client {
            id: sandbox.client_id().to_owned(),
            secret: Secret::new(sandbox.client_secret()),
        },
        ClientOptions::default(),
    )
    .unwrap();
    let client = Arc::new(client);
    let mut ran = None;
    for run in 0..runs {
        // A store of this run's own: only what this run read is kept.
        drop(ran.take());
        let state = StateStore::open(&out, &sandbox.base_url(), run == 0).unwrap();
        let store = spill::install(&out.join(STATE_DIR)).unwrap();
        let log = execute(&job, &out, &client, state).await;
        ran = Some((store, log));
    }
    let Some((_store, log)) = ran else {
        panic!("no run");
    };
    let folder = out.join(STATE_DIR).join(spill::FOLDER);
    let spills = spill_count(&folder);
    let bill = || {
        let mut text = Vec::new();
        let billing = write(&out, &log, &job.billing, &mut text).unwrap();
        (String::from_utf8(text).unwrap(), billing)
    };
    let one_pass = bill();
    assert_eq!(spill_count(&folder), 0, "every spill was replayed");
    let two_pass = bill();
    Both {
        spills,
        one_pass,
        two_pass,
        reports: log.len(),
        failed: log.failed_count(),
        downloads: sandbox.stats().download_requests,
    }
}

/// One run of `job`'s plan into `out`.
async fn execute(
    job: &crate::job::Job,
    out: &Path,
    client: &Arc<Client>,
    state: StateStore,
) -> ReportLog {
    let runner = Runner {
        observer: Arc::new(Unobserved),
        client: Arc::clone(client),
        state: Arc::new(state),
        config: Arc::new(RunConfig::for_job(job, out)),
        cancel: tokio_util::sync::CancellationToken::new(),
        history: Arc::new(crate::history::History::none()),
    };
    crate::run::execute(&runner, crate::plan::build(job))
        .await
        .unwrap()
}

fn spill_count(folder: &Path) -> usize {
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

fn assert_same(both: &Both) {
    assert!(both.spills > 0, "the run kept lines");
    let (one, two) = (&both.one_pass, &both.two_pass);
    assert!(
        one.0 == two.0,
        "billing.csv differs:\n{}\n----\n{}",
        one.0,
        two.0
    );
    assert_eq!(one.1, two.1);
}

#[test]
fn every_layout_bills_the_same_from_the_check_as_from_the_files() {
    let _one = one_store_at_a_time();
    let t = TENANTS;
    let scenario = format!(
        "generation_delay: 50ms\ndeterministic_ids: true\ntenants:\n\
         \x20 {}: {{extra_columns: true, reorder_columns: true, sku_column: SKU}}\n\
         \x20 {}: {{edition_column: false, compute_points_item: dre_compute_points, infra_rows: true}}\n\
         \x20 {}: {{compute_points_item: p_dre_compute_points, customer_trial: false, partner_trial: false, sku_column: offering_item.sku}}\n\
         \x20 {}: {{compute_points_item: compute_points, no_skus: true}}\n\
         \x20 {}: {{layout: unknown}}\n\
         \x20 {}: {{layout: html}}\n\
         \x20 {}: {{compute_points_item: pw_compute_points, infra_rows: true}}\n",
        t[1], t[2], t[3], t[4], t[5], t[6], t[7]
    );
    let job = job(&[
        (t[0], ""),
        (t[1], ""),
        (t[2], "level: all_customers"),
        (t[3], ""),
        // Its rows lack SKUs: it fails, and its file still counts DR compute points.
        (t[4], ""),
        (t[5], ""),
        (t[6], ""),
        // Day by day: a line per day.
        (t[7], "kind: usage_daily"),
        (t[8], "formats: [json_v2_0]"),
        (t[9], "formats: [csv_v2_0]\nkind: usage_current"),
    ]);
    let both = run_both_ways(&scenario, &job);
    assert_same(&both);
    assert_eq!(
        (both.reports, both.failed),
        (10, 3),
        "{:?}",
        both.one_pass.1
    );
    let billing = &both.one_pass.1;
    assert!(billing.summary.lines > 50, "{}", billing.summary.lines);
    assert!(billing.dr_compute_points.iter().any(|(at, _)| *at == 4));
    assert!(both.one_pass.0.contains(",usage.delta."), "compute points");
}

#[test]
fn compressed_transfers_bill_the_same() {
    let _one = one_store_at_a_time();
    for compression in ["gzip: true", "gzip_without_header: true"] {
        let scenario = format!("generation_delay: 20ms\n{compression}\n");
        let job = job(&[(TENANTS[0], ""), (TENANTS[1], "kind: usage_daily")]);
        let both = run_both_ways(&scenario, &job);
        assert_same(&both);
        assert_eq!(both.failed, 0, "{compression}");
    }
}

#[test]
fn a_large_file_bills_the_same_and_its_formats_still_disagree() {
    let _one = one_store_at_a_time();
    // Past the size that gets a thread for each of writing, hashing and checking; the padding
    // rows are in the csv_v2_0 file only, so the json_v2_0 file disagrees with it.
    let scenario = format!("generation_delay: 20ms\npad_bytes: {}\n", 17 << 20);
    let both = run_both_ways(&scenario, &job(&[(TENANTS[0], "")]));
    assert_same(&both);
    let billing = &both.one_pass.1;
    assert!(billing.summary.lines > 100_000, "{}", billing.summary.lines);
    assert!(
        billing
            .warnings
            .iter()
            .any(|(_, w)| w.contains("the csv_v2_0 and json_v2_0 files disagree")),
        "{:?}",
        billing.warnings
    );
}

#[test]
fn files_kept_from_an_earlier_run_bill_the_same() {
    let _one = one_store_at_a_time();
    // The second run downloads nothing: it reads each kept file once, for its checksum and
    // check, and bills from what that read kept.
    let job = job(&[(TENANTS[0], ""), (TENANTS[1], "kind: usage_daily")]);
    let both = run_both_ways_after("generation_delay: 20ms\ndeterministic_ids: true\n", &job, 2);
    assert_same(&both);
    assert_eq!(both.spills, 4, "both files of both reports");
    assert_eq!(both.downloads, 4, "fetched by the first run only");
}
