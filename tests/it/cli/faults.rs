//! Every fault the sandbox can inject is survived (or fails exactly the report it hits), the
//! files are byte-identical to a fault-free run, and no report is ever created twice.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use acronis_reports_sandbox::{Endpoint, FaultRule, Scenario, Stats, TenantBehaviour};
use serde_json::Value;

use crate::support::*;

const TWO: [(&str, &str); 2] = [(ACME, "acme"), (GLOBEX, "globex")];
const THREE: [(&str, &str); 3] = [(ACME, "acme"), (GLOBEX, "globex"), (INITECH, "initech")];

/// The quick scenario with some changes.
fn scenario(change: impl FnOnce(&mut Scenario)) -> Scenario {
    let mut scenario = quick_scenario();
    change(&mut scenario);
    scenario
}

fn status_fault(endpoint: Endpoint, status: u16, times: u32) -> FaultRule {
    FaultRule {
        endpoint,
        times,
        status: Some(status),
        ..FaultRule::default()
    }
}

fn tenant(change: impl FnOnce(&mut TenantBehaviour)) -> TenantBehaviour {
    let mut behaviour = TenantBehaviour::default();
    change(&mut behaviour);
    behaviour
}

/// A job like `job_text`, with another `polling.timeout`.
fn job_with_timeout(tenants: &[(&str, &str)], timeout: &str) -> String {
    let text = job_text(tenants, "");
    let changed = text.replace("  timeout: 20s\n", &format!("  timeout: {timeout}\n"));
    assert_ne!(text, changed, "FAST_POLLING no longer sets timeout: 20s");
    changed
}

fn sums_text(out: &std::path::Path) -> String {
    file_sums(out)
}

/// `SHA256SUMS` of the same job against a healthy sandbox (the sandbox's files are deterministic).
fn fault_free_sums(job: &str) -> String {
    let world = World::quick();
    let path = world.job(job);
    world.run(&path).assert().success();
    sums_text(&world.out())
}

/// The lines of a `SHA256SUMS` text that belong to one tenant's folder.
fn tenant_lines(sums: &str, tenant_name: &str) -> Vec<String> {
    sums.lines()
        .filter(|line| line.contains(&format!("/{tenant_name}/")))
        .map(str::to_owned)
        .collect()
}

/// Runs the job and checks the exit code; returns stderr.
fn run_job(world: &World, job: &str, code: i32) -> String {
    let path = world.job(job);
    let output = world.run(&path).assert().code(code).get_output().clone();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn report<'a>(manifest: &'a Value, tenant_name: &str) -> &'a Value {
    manifest["reports"]
        .as_array()
        .expect("reports array")
        .iter()
        .find(|r| r["tenant_name"] == tenant_name)
        .unwrap_or_else(|| panic!("no report for {tenant_name} in {manifest}"))
}

fn assert_all_ok(manifest: &Value, expected_reports: usize) {
    let reports = manifest["reports"].as_array().expect("reports array");
    assert_eq!(reports.len(), expected_reports, "{manifest}");
    for r in reports {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["error"], Value::Null, "{r}");
        assert!(r["report_id"].is_string(), "{r}");
    }
}

/// Exactly `expected` reports were created on the server, at most one per tenant and period,
/// and every report id in the manifest is one of them.
fn assert_created_once(stats: &Stats, manifest: &Value, expected: usize) {
    assert_eq!(stats.reports.len(), expected, "{:?}", stats.reports);
    let ids: BTreeSet<&str> = stats.reports.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), expected, "duplicate ids in {:?}", stats.reports);
    let keys: BTreeSet<(String, &str)> = stats
        .reports
        .iter()
        .map(|r| (r.tenant_id.to_ascii_lowercase(), r.period_start.as_str()))
        .collect();
    assert_eq!(
        keys.len(),
        expected,
        "a tenant × period was created twice: {:?}",
        stats.reports
    );
    for r in manifest["reports"].as_array().expect("reports array") {
        if let Some(id) = r["report_id"].as_str() {
            assert!(ids.contains(id), "manifest report {id} was never created");
        }
    }
}

/// The success path shared by the "survived" cases: exit 0, all ok, checksums right, files equal
/// to a fault-free run, one report per tenant created once.
fn assert_survived(scenario: Scenario, tenants: &[(&str, &str)]) -> Stats {
    let world = World::new(scenario);
    let job = job_text(tenants, "");
    run_job(&world, &job, 0);
    let out = world.out();
    let manifest = manifest(&out);
    assert_all_ok(&manifest, tenants.len());
    assert_eq!(check_sums(&out), 2 * tenants.len());
    assert_eq!(sums_text(&out), fault_free_sums(&job), "files differ");
    let files = tree(&out);
    assert!(files.iter().all(|f| !f.contains(".partial")), "{files:?}");
    let stats = world.stats();
    assert_eq!(stats.create_requests as usize, tenants.len());
    assert_created_once(&stats, &manifest, tenants.len());
    stats
}

#[test]
fn throttled_stored_list_is_retried_after_retry_after() {
    // Three seconds: well above the client's own backoff (0.5–1 s at first), so a poll that
    // came back sooner ignored the server's word.
    let stats = assert_survived(
        scenario(|s| {
            s.faults = vec![FaultRule {
                retry_after: Some("3".into()),
                ..status_fault(Endpoint::StoredList, 429, 1)
            }];
        }),
        &TWO,
    );
    assert_eq!(stats.faults_injected, 1);
    let waited_us = |r: &acronis_reports_sandbox::CreatedReport| {
        r.first_saved_list_us
            .unwrap_or(0)
            .saturating_sub(r.created_us)
    };
    let mut waits: Vec<u64> = stats.reports.iter().map(waited_us).collect();
    waits.sort_unstable();
    // The throttled report waited out the Retry-After; the other one did not wait for it.
    assert!(waits[1] >= 2_900_000, "{waits:?}");
    assert!(waits[0] < 2_900_000, "{waits:?}");
}

#[test]
fn a_new_report_not_listed_yet_is_waited_for() {
    // The stored list of a report created moments ago answers 404 at first.
    let stats = assert_survived(
        scenario(|s| s.faults = vec![status_fault(Endpoint::StoredList, 404, 3)]),
        &TWO,
    );
    assert_eq!(stats.faults_injected, 3);
}

#[test]
fn throttled_create_is_retried_without_creating_twice() {
    let world = World::new(scenario(|s| {
        s.faults = vec![FaultRule {
            retry_after: Some("1".into()),
            ..status_fault(Endpoint::Create, 429, 1)
        }];
    }));
    let job = job_text(&TWO, "");
    run_job(&world, &job, 0);
    let out = world.out();
    let manifest = manifest(&out);
    assert_all_ok(&manifest, 2);
    assert_eq!(check_sums(&out), 4);
    assert_eq!(sums_text(&out), fault_free_sums(&job));
    let stats = world.stats();
    assert_eq!(stats.faults_injected, 1);
    // Two reports plus the one refused request; the refused one created nothing.
    assert_eq!(stats.create_requests, 3);
    assert_created_once(&stats, &manifest, 2);
}

#[test]
fn service_unavailable_on_download_and_stored_list_is_survived() {
    let stats = assert_survived(
        scenario(|s| {
            s.faults = vec![
                status_fault(Endpoint::Download, 503, 2),
                status_fault(Endpoint::StoredList, 503, 3),
            ];
        }),
        &TWO,
    );
    assert_eq!(stats.faults_injected, 5);
    // Four files, two of the download requests answered 503.
    assert_eq!(stats.download_requests, 6);
}

#[test]
fn truncated_download_is_fetched_again_from_scratch() {
    let stats = assert_survived(
        scenario(|s| {
            s.faults = vec![FaultRule {
                endpoint: Endpoint::Download,
                truncate: true,
                ..FaultRule::default()
            }];
        }),
        &TWO,
    );
    assert_eq!(stats.faults_injected, 1);
    assert_eq!(stats.download_requests, 5);
}

#[test]
fn gzip_and_plain_transfers_give_identical_files() {
    let job = job_text(&TWO, "");
    let plain = World::new(scenario(|s| s.gzip = false));
    run_job(&plain, &job, 0);
    let gzipped = World::new(scenario(|s| s.gzip = true));
    run_job(&gzipped, &job, 0);
    assert_eq!(check_sums(&plain.out()), 4);
    assert_eq!(check_sums(&gzipped.out()), 4);
    assert_eq!(sums_text(&plain.out()), sums_text(&gzipped.out()));
    // The client asked for gzip and got it: every download of the gzip server was compressed.
    assert_eq!(plain.stats().gzip_downloads, 0);
    assert_eq!(
        gzipped.stats().gzip_downloads,
        gzipped.stats().download_requests
    );
    assert!(gzipped.stats().download_requests >= 4);
    // The files are the decoded bytes, not gzip streams.
    for file in tree(&gzipped.out()) {
        let bytes = std::fs::read(gzipped.out().join(&file)).unwrap();
        assert!(!bytes.starts_with(&[0x1f, 0x8b]), "{file} is still gzipped");
    }
    for world in [&plain, &gzipped] {
        let manifest = manifest(&world.out());
        assert_all_ok(&manifest, 2);
        assert_created_once(&world.stats(), &manifest, 2);
    }
}

#[test]
fn a_gzip_body_without_content_encoding_is_saved_decoded() {
    let job = job_text(&TWO, "");
    let bare = World::new(scenario(|s| s.gzip_without_header = true));
    run_job(&bare, &job, 0);
    assert_eq!(check_sums(&bare.out()), 4);
    assert_eq!(
        sums_text(&bare.out()),
        fault_free_sums(&job),
        "files differ"
    );
    for file in tree(&bare.out()) {
        let bytes = std::fs::read(bare.out().join(&file)).unwrap();
        assert!(!bytes.starts_with(&[0x1f, 0x8b]), "{file} is still gzipped");
    }
    let manifest = manifest(&bare.out());
    assert_all_ok(&manifest, 2);
}

const HISTORY_NOT_YET: &str =
    "Usage history is not ready and shouldn't be ready yet (from 1 to 6 am)";
const HISTORY_LATE: &str =
    "Usage history is not ready but should be available already (after 6 am)";

fn history_fault(status: u16, message: &str, times: u32) -> FaultRule {
    FaultRule {
        message: Some(message.into()),
        ..status_fault(Endpoint::Create, status, times)
    }
}

#[test]
fn usage_history_not_ready_before_6_fails_that_report_and_says_when_to_run() {
    let world = World::new(scenario(|s| {
        s.faults = vec![history_fault(400, HISTORY_NOT_YET, 1)];
    }));
    run_job(&world, &job_text(&TWO, ""), 1);
    let manifest = manifest(&world.out());
    let reports = manifest["reports"].as_array().expect("reports");
    let failed: Vec<&Value> = reports.iter().filter(|r| r["status"] != "ok").collect();
    assert_eq!(failed.len(), 1, "{manifest}");
    let error = failed[0]["error"].as_str().expect("an error");
    assert!(
        error.contains("run again after 06:00 UTC") && error.contains("HTTP 400"),
        "{error}"
    );
    let stats = world.stats();
    assert_eq!(stats.create_requests, 2, "the refusal is not asked again");
    assert_eq!(stats.reports.len(), 1);
}

#[test]
fn usage_history_late_after_6_is_asked_again_until_it_is_ready() {
    let world = World::new(scenario(|s| {
        s.faults = vec![history_fault(500, HISTORY_LATE, 3)];
    }));
    let job = job_text(&TWO, "");
    run_job(&world, &job, 0);
    let out = world.out();
    let manifest = manifest(&out);
    assert_all_ok(&manifest, 2);
    assert_eq!(sums_text(&out), fault_free_sums(&job), "files differ");
    let stats = world.stats();
    assert_eq!(stats.create_requests, 2 + 3);
    assert_created_once(&stats, &manifest, 2);
}

#[test]
fn usage_history_late_for_longer_than_the_timeout_fails_the_report() {
    let world = World::new(scenario(|s| {
        s.faults = vec![history_fault(500, HISTORY_LATE, 1_000)];
    }));
    let started = Instant::now();
    run_job(&world, &job_with_timeout(&[(ACME, "acme")], "1s"), 1);
    assert!(started.elapsed() < Duration::from_secs(30));
    let manifest = manifest(&world.out());
    let error = report(&manifest, "acme")["error"]
        .as_str()
        .expect("an error")
        .to_owned();
    assert!(
        error.contains("still not ready") && error.contains("polling.timeout"),
        "{error}"
    );
    assert!(world.stats().create_requests >= 2);
    assert!(world.stats().reports.is_empty());
}

#[test]
fn short_lived_tokens_are_renewed() {
    let stats = assert_survived(
        scenario(|s| {
            s.token_lifetime = Duration::from_secs(1);
            s.generation_delay = Duration::from_millis(2500);
        }),
        &TWO,
    );
    assert!(stats.token_requests > 1, "{stats:?}");
}

#[test]
fn a_failed_report_fails_alone() {
    let world = World::new(scenario(|s| {
        s.tenants.insert(ACME.into(), tenant(|t| t.fail = true));
    }));
    let job = job_text(&TWO, "");
    let stderr = run_job(&world, &job, 1);
    let out = world.out();
    let manifest = manifest(&out);
    let stats = world.stats();

    let acme = report(&manifest, "acme");
    assert_eq!(acme["status"], "failed", "{acme}");
    let error = acme["error"].as_str().expect("an error");
    assert!(error.contains("failed"), "{error}");
    assert!(!error.contains('\n'), "{error}");
    let acme_id = acme["report_id"].as_str().expect("report_id set");
    assert!(
        stats
            .reports
            .iter()
            .any(|r| r.id == acme_id && r.tenant_id.eq_ignore_ascii_case(ACME)),
        "{acme_id} is not acme's report"
    );
    assert_eq!(acme["files"].as_array().map(Vec::len), Some(0), "{acme}");
    assert!(stderr.contains("acme"), "{stderr}");

    let globex = report(&manifest, "globex");
    assert_eq!(globex["status"], "ok", "{globex}");
    assert_eq!(globex["error"], Value::Null);
    assert_eq!(check_sums(&out), 2);
    let sums = sums_text(&out);
    assert_eq!(tenant_lines(&sums, "acme"), Vec::<String>::new());
    assert_eq!(
        tenant_lines(&sums, "globex"),
        tenant_lines(&fault_free_sums(&job), "globex")
    );
    let files = tree(&out);
    assert!(files.iter().all(|f| !f.contains("/acme/")), "{files:?}");

    assert_eq!(stats.create_requests, 2);
    assert_created_once(&stats, &manifest, 2);
}

fn no_sku_world() -> World {
    World::new(scenario(|s| {
        s.tenants.insert(ACME.into(), tenant(|t| t.no_skus = true));
    }))
}

#[test]
fn tenant_without_sku_access_fails_a_required_check_but_keeps_its_files() {
    let world = no_sku_world();
    let job = job_text(&TWO, "");
    run_job(&world, &job, 1);
    let out = world.out();
    let manifest = manifest(&out);

    let acme = report(&manifest, "acme");
    assert_eq!(acme["status"], "failed", "{acme}");
    let error = acme["error"].as_str().expect("an error");
    assert!(error.contains("SKU"), "{error}");
    let files = acme["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{acme}");
    let sums = sums_text(&out);
    for file in files {
        let path = file["path"].as_str().unwrap();
        assert!(out.join(path).is_file(), "{path} missing");
        assert!(
            sums.lines()
                .any(|line| line.ends_with(&format!("  {path}"))),
            "{path} not in SHA256SUMS:\n{sums}"
        );
        let check = &file["sku_check"];
        assert_eq!(check["status"], "missing", "{file}");
        assert!(check["rows"].as_u64().unwrap() > 0, "{file}");
        assert_eq!(check["rows_without_sku"], check["rows"], "{file}");
    }

    let globex = report(&manifest, "globex");
    assert_eq!(globex["status"], "ok", "{globex}");
    for file in globex["files"].as_array().unwrap() {
        assert_eq!(file["sku_check"]["status"], "ok", "{file}");
    }
    assert_eq!(check_sums(&out), 4);
    assert_eq!(
        tenant_lines(&sums, "globex"),
        tenant_lines(&fault_free_sums(&job), "globex")
    );
    let stats = world.stats();
    assert_eq!(stats.create_requests, 2);
    assert_created_once(&stats, &manifest, 2);
}

#[test]
fn tenant_without_sku_access_only_warns_with_checks_skus_warn() {
    let world = no_sku_world();
    run_job(
        &world,
        &job_text(&[(ACME, "acme")], "checks:\n  skus: warn\n"),
        0,
    );
    let out = world.out();
    let manifest = manifest(&out);
    assert_all_ok(&manifest, 1);
    let acme = report(&manifest, "acme");
    for file in acme["files"].as_array().unwrap() {
        assert_eq!(file["sku_check"]["status"], "missing", "{file}");
    }
    // Warned, not silent: the record and the summary say it.
    let warnings = acme["warnings"].to_string();
    assert!(
        warnings.contains("lack a SKU") || warnings.contains("no SKU column"),
        "{acme}"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("warning") && summary.contains("SKU"),
        "{summary}"
    );
    assert_eq!(check_sums(&out), 2);
    assert_created_once(&world.stats(), &manifest, 1);
}

#[test]
fn sku_check_is_skipped_when_skus_are_not_requested() {
    let world = no_sku_world();
    run_job(
        &world,
        &job_text(&[(ACME, "acme")], "defaults:\n  show_skus: false\n"),
        0,
    );
    let out = world.out();
    let manifest = manifest(&out);
    assert_all_ok(&manifest, 1);
    let files = report(&manifest, "acme")["files"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(files.len(), 2);
    for file in &files {
        assert_eq!(file["sku_check"]["status"], "skipped", "{file}");
    }
    assert_eq!(check_sums(&out), 2);
    assert_created_once(&world.stats(), &manifest, 1);
}

#[test]
fn slow_responses_are_tolerated() {
    assert_survived(
        scenario(|s| s.response_delay = Duration::from_millis(300)),
        &TWO,
    );
}

#[test]
fn unknown_tenant_fails_only_that_report() {
    let world = World::new(scenario(|s| {
        s.tenants.insert(ACME.into(), tenant(|t| t.unknown = true));
    }));
    let job = job_text(&THREE, "");
    let stderr = run_job(&world, &job, 1);
    let out = world.out();
    let manifest = manifest(&out);

    let acme = report(&manifest, "acme");
    assert_eq!(acme["status"], "failed", "{acme}");
    assert_eq!(acme["report_id"], Value::Null, "{acme}");
    let error = acme["error"].as_str().expect("an error");
    assert!(error.contains("Tenant not found"), "{error}");
    assert!(!error.contains('\n') && !error.contains('{'), "{error}");
    assert!(stderr.contains("Tenant not found"), "{stderr}");

    let fault_free = fault_free_sums(&job);
    let sums = sums_text(&out);
    for name in ["globex", "initech"] {
        let r = report(&manifest, name);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(tenant_lines(&sums, name), tenant_lines(&fault_free, name));
    }
    assert_eq!(check_sums(&out), 4);
    let stats = world.stats();
    // Three requests, one refused: each tenant was asked for once.
    assert_eq!(stats.create_requests, 3);
    assert_created_once(&stats, &manifest, 2);
}

#[test]
fn polling_timeout_fails_the_report_without_waiting_for_it() {
    // The report would be ready after 30 s; the job gives up after 1 s.
    let world = World::new(scenario(|s| s.generation_delay = Duration::from_secs(30)));
    let started = Instant::now();
    let stderr = run_job(&world, &job_with_timeout(&[(ACME, "acme")], "1s"), 1);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");

    let out = world.out();
    let manifest = manifest(&out);
    let acme = report(&manifest, "acme");
    assert_eq!(acme["status"], "failed", "{acme}");
    assert!(acme["report_id"].is_string(), "{acme}");
    let error = acme["error"].as_str().expect("an error");
    assert!(error.contains("polling.timeout"), "{error}");
    assert!(stderr.contains("polling.timeout"), "{stderr}");
    assert_eq!(check_sums(&out), 0);
    let stats = world.stats();
    assert_eq!(stats.download_requests, 0);
    assert_created_once(&stats, &manifest, 1);
}

#[test]
fn newest_stored_file_is_taken_when_older_copies_are_listed() {
    let world = World::new(scenario(|s| s.duplicate_stored = true));
    let job = job_text(&TWO, "");
    run_job(&world, &job, 0);
    let out = world.out();
    let manifest = manifest(&out);
    assert_all_ok(&manifest, 2);
    assert_eq!(check_sums(&out), 4);
    assert_eq!(
        sums_text(&out),
        fault_free_sums(&job),
        "an older copy was taken"
    );
    for file in tree(&out) {
        let text = String::from_utf8_lossy(&std::fs::read(out.join(&file)).unwrap()).into_owned();
        assert!(!text.contains("(stale)"), "{file} is the older copy");
    }
    // Each report listed two saved files per format; only one of each was fetched.
    let stats = world.stats();
    assert_eq!(stats.download_requests, 4);
    assert_created_once(&stats, &manifest, 2);
}

/// Runs a job whose stored list answers 500 forever; returns the world, the stderr and the
/// acme report's error.
fn endless_server_errors() -> (World, String, String) {
    let world = World::new(scenario(|s| {
        s.faults = vec![status_fault(Endpoint::StoredList, 500, 1000)];
    }));
    let stderr = run_job(&world, &job_with_timeout(&[(ACME, "acme")], "3s"), 1);
    let manifest = manifest(&world.out());
    let acme = report(&manifest, "acme");
    assert_eq!(acme["status"], "failed", "{acme}");
    let error = acme["error"].as_str().expect("an error").to_owned();
    (world, stderr, error)
}

#[test]
fn endless_server_errors_fail_the_report_cleanly() {
    let (world, stderr, error) = endless_server_errors();
    assert!(!error.contains('\n'), "{error}");
    assert!(error.contains("polling.timeout"), "{error}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert_eq!(check_sums(&world.out()), 0);
    let stats = world.stats();
    assert!(stats.faults_injected > 1, "{stats:?}");
    assert_eq!(stats.download_requests, 0);
    assert_eq!(stats.create_requests, 1);
    assert_created_once(&stats, &manifest(&world.out()), 1);
}

#[test]
fn endless_server_errors_name_the_server_failure() {
    let (_world, _stderr, error) = endless_server_errors();
    assert!(error.contains("500"), "{error}");
}

/// Attack: a large report (written around the page cache, checked on a thread of its own that
/// may read the file behind the writer) cut mid-body on its first download is fetched again,
/// and the run ends as a clean one does: the same file, the same checks, the same billing.csv.
/// Gzip too, whose announced (compressed) size is small while the file decodes large.
#[test]
fn a_large_report_cut_mid_body_ends_as_a_clean_run() {
    for gzip in [false, true] {
        let run = |faults: Vec<FaultRule>| {
            let world = World::new(Scenario {
                pad_bytes: LARGE_REPORT_PAD,
                gzip,
                faults,
                ..quick_scenario()
            });
            let job = world.job(&job_text(
                &[(ACME, "acme")],
                "defaults:\n  formats: [csv_v2_0]\n",
            ));
            world.run(&job).assert().success();
            let out = world.out();
            let manifest = manifest(&out);
            let file = &manifest["reports"][0]["files"][0];
            let facts: Vec<Value> = ["bytes", "sha256", "sku_check", "content_check"]
                .iter()
                .map(|key| file[*key].clone())
                .collect();
            let billing = std::fs::read_to_string(out.join("2026-10/billing.csv")).unwrap();
            (world.stats().download_requests, facts, billing)
        };
        let (clean_requests, clean, clean_billing) = run(Vec::new());
        let (cut_requests, cut, cut_billing) = run(vec![FaultRule {
            endpoint: Endpoint::Download,
            truncate: true,
            ..FaultRule::default()
        }]);
        assert_eq!(cut_requests, clean_requests + 1, "gzip {gzip}");
        assert_eq!(cut, clean, "gzip {gzip}");
        assert!(cut_billing == clean_billing, "gzip {gzip}");
        assert!(clean_billing.lines().count() > 1, "{clean_billing}");
    }
}
