//! Re-runs, interruptions and cleanup: no report is created twice, no file is lost, no partial
//! file ever sits under a final name.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use acronis_reports_sandbox::Scenario;

use crate::support::*;

fn spawn_run(world: &World, job: &Path) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_acronis-reports"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ACRONIS_BASE_URL", world.sandbox().base_url())
        .env("ACRONIS_CLIENT_ID", world.sandbox().client_id())
        .env("ACRONIS_CLIENT_SECRET", world.sandbox().client_secret())
        .current_dir(world.dir.path())
        .arg("run")
        .arg(job)
        .arg("--out")
        .arg(world.out())
        .args(["--as-of", AS_OF])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn journal(world: &World) -> String {
    std::fs::read_to_string(world.out().join(".acronis-reports/state.jsonl")).unwrap_or_default()
}

fn partial_files(out: &Path) -> Vec<String> {
    tree(out)
        .into_iter()
        .filter(|f| f.contains(".partial"))
        .collect()
}

#[cfg(unix)]
fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn a_rerun_reuses_reports_and_files_and_creates_nothing() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    world.run(&job).assert().success();
    let first = world.stats();
    let sums = file_sums(&world.out());
    assert!(
        !sums.contains(".acronis-reports"),
        "the state file is never checksummed"
    );

    world.run(&job).assert().success();
    let second = world.stats();
    assert_eq!(
        second.create_requests, first.create_requests,
        "no report created again"
    );
    assert_eq!(
        second.download_requests, first.download_requests,
        "no file fetched again"
    );
    assert_eq!(file_sums(&world.out()), sums);
    let manifest = manifest(&world.out());
    let mut ids: Vec<&str> = manifest["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report_id"].as_str().unwrap())
        .collect();
    // Reports are created concurrently, so compare without order.
    let mut created: Vec<&str> = first.reports.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    created.sort_unstable();
    assert_eq!(
        ids, created,
        "the manifest names the reports of the first run"
    );
}

/// The journal's reports live on the API that created them: a run against another API (another
/// data center, another sandbox) creates its own reports instead of taking those over.
#[test]
fn records_of_another_api_are_not_reused() {
    let first = World::quick();
    let job = first.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    first.run(&job).assert().success();
    let other = World::quick();
    other
        .cmd()
        .arg("run")
        .arg(&job)
        .arg("--out")
        .arg(first.out())
        .args(["--as-of", AS_OF])
        .assert()
        .success();
    let stats = other.stats();
    assert_eq!(
        stats.create_requests, 2,
        "each report created on the other API"
    );
    assert!(stats.download_requests >= 2);
    let ids: Vec<String> = manifest(&first.out())["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        assert!(
            stats.reports.iter().any(|r| &r.id == id),
            "{id} is the other API's"
        );
    }
}

#[test]
fn a_changed_file_is_fetched_again_and_the_mismatch_reported() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let csv = world.out().join("2026-10/acme/usage_summary.csv_v2_0.csv");
    let original = std::fs::read(&csv).unwrap();
    std::fs::write(&csv, b"tampered\n").unwrap();
    let downloads = world.stats().download_requests;

    world.run(&job).assert().success();
    assert_eq!(
        std::fs::read(&csv).unwrap(),
        original,
        "the file is restored byte for byte"
    );
    assert_eq!(
        world.stats().download_requests,
        downloads + 1,
        "only the changed file is fetched"
    );
    assert_eq!(world.stats().create_requests, 1);
    let manifest = manifest(&world.out());
    let warnings = manifest["reports"][0]["warnings"].to_string();
    assert!(warnings.contains("did not match"), "{warnings}");
}

#[test]
fn fresh_ignores_the_recorded_reports() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    world.run(&job).arg("--fresh").assert().success();
    assert_eq!(world.stats().create_requests, 2);
    assert_eq!(check_sums(&world.out()), 2);
}

#[cfg(unix)]
#[test]
fn killed_while_polling_then_rerun_creates_no_second_report() {
    let world = World::new(Scenario {
        generation_delay: Duration::from_millis(1500),
        ..Scenario::default()
    });
    let job = world.job(&job_text(
        &[(ACME, "acme"), (GLOBEX, "globex"), (INITECH, "initech")],
        "",
    ));
    let mut child = spawn_run(&world, &job);
    wait_for("three created reports in the journal", || {
        journal(&world).matches("\"created\"").count() == 3
    });
    signal(&child, "KILL");
    child.wait().unwrap();
    assert_eq!(world.stats().create_requests, 3);

    world.run(&job).assert().success();
    assert_eq!(
        world.stats().create_requests,
        3,
        "the rerun resumed the recorded reports"
    );
    assert_eq!(check_sums(&world.out()), 6);
}

#[cfg(unix)]
#[test]
fn sigterm_during_a_download_leaves_no_partial_file_and_exits_143() {
    let world = World::new(Scenario {
        generation_delay: Duration::from_millis(100),
        pad_bytes: 1_500_000_000,
        ..Scenario::default()
    });
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  formats: [csv_v2_0]\n  show_skus: false\n",
    ));
    let mut child = spawn_run(&world, &job);
    wait_for("a download in progress", || {
        !partial_files(&world.out()).is_empty()
    });
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let out = world.out();
    assert!(partial_files(&out).is_empty(), "{:?}", tree(&out));
    assert!(!out.join("2026-10/acme/usage_summary.csv_v2_0.csv").exists());
    let manifest = manifest(&out);
    assert_eq!(manifest["reports"][0]["status"], "failed");
    assert!(
        manifest["reports"][0]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(check_sums(&out), 0);
}

#[cfg(unix)]
#[test]
fn sigint_while_polling_exits_130_with_records_written() {
    let world = World::new(Scenario {
        generation_delay: Duration::from_secs(10),
        ..Scenario::default()
    });
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let mut child = spawn_run(&world, &job);
    wait_for("the report to be created", || {
        journal(&world).contains("\"created\"")
    });
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let manifest = manifest(&world.out());
    assert_eq!(
        manifest["reports"][0]["report_id"],
        world.stats().reports[0].id.as_str()
    );
    assert!(world.out().join("summary.md").exists());
}

#[test]
fn cleanup_delete_removes_exactly_the_created_reports() {
    let world = World::quick();
    let job = world.job(&job_text(
        &[(ACME, "acme"), (GLOBEX, "globex")],
        "cleanup: delete\n",
    ));
    world.run(&job).assert().success();
    let stats = world.stats();
    assert_eq!(stats.delete_requests, 2);
    assert_eq!(stats.reports.len(), 2);
    assert!(
        stats.reports.iter().all(|r| r.deleted),
        "{:?}",
        stats.reports
    );
    assert_eq!(check_sums(&world.out()), 4);
    // A rerun finds the files intact and needs the server for nothing.
    world.run(&job).assert().success();
    assert_eq!(world.stats().create_requests, 2);
    assert_eq!(world.stats().delete_requests, 2);
}

#[test]
fn a_failed_deletion_is_only_a_warning() {
    let world = World::new(Scenario {
        faults: vec![acronis_reports_sandbox::FaultRule {
            endpoint: acronis_reports_sandbox::Endpoint::Delete,
            status: Some(409),
            times: 100,
            ..Default::default()
        }],
        ..quick_scenario()
    });
    let job = world.job(&job_text(&[(ACME, "acme")], "cleanup: delete\n"));
    world.run(&job).assert().success();
    let manifest = manifest(&world.out());
    assert_eq!(manifest["reports"][0]["status"], "ok");
    assert!(
        manifest["reports"][0]["warnings"]
            .to_string()
            .contains("not deleted")
    );
    assert_eq!(check_sums(&world.out()), 2);
}

#[test]
fn a_report_that_failed_on_the_server_is_created_anew_on_a_rerun() {
    let world = World::new(Scenario {
        tenants: [(
            ACME.to_owned(),
            acronis_reports_sandbox::TenantBehaviour {
                fail: true,
                ..Default::default()
            },
        )]
        .into(),
        ..quick_scenario()
    });
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().code(1);
    world.run(&job).assert().code(1);
    assert_eq!(
        world.stats().create_requests,
        2,
        "the failed report is not reused"
    );
}

#[cfg(unix)]
#[test]
fn a_second_signal_exits_at_once_without_a_partial_file_under_a_final_name() {
    let world = World::new(Scenario {
        generation_delay: Duration::from_millis(100),
        pad_bytes: 1_500_000_000,
        ..Scenario::default()
    });
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  formats: [csv_v2_0]\n  show_skus: false\n",
    ));
    let mut child = spawn_run(&world, &job);
    wait_for("a download in progress", || {
        !partial_files(&world.out()).is_empty()
    });
    // Two signals sent together may reach the process as one (a pending signal is not queued
    // twice): the second goes only once the run has said it is finishing up.
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            if said.send(line).is_err() {
                break;
            }
        }
    });
    signal(&child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = heard
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the run says it received SIGTERM");
        if line.contains("received SIGTERM") {
            break;
        }
    }
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    // At once: not even the records a single signal writes (see the test above).
    assert!(
        !world.out().join("manifest.json").exists(),
        "{:?}",
        tree(&world.out())
    );
    assert!(
        !world
            .out()
            .join("2026-10/acme/usage_summary.csv_v2_0.csv")
            .exists()
    );
    let finals: Vec<String> = tree(&world.out())
        .into_iter()
        .filter(|f| {
            // A report file (2026-10/<tenant>/<file>), not the period's records beside them.
            f.starts_with("2026-10/")
                && f.matches('/').count() == 2
                && !f.rsplit('/').next().unwrap_or("").starts_with('.')
        })
        .collect();
    assert!(
        finals.is_empty(),
        "only hidden temporary files may remain: {finals:?}"
    );
}

#[test]
fn a_run_that_cannot_keep_its_results_fails_clearly_and_a_rerun_finishes() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let output = world
        .run(&job)
        .env("TMPDIR", world.path("no-such-folder"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot create a temporary file for the run's results"),
        "{stderr}"
    );
    assert!(!world.out().join("manifest.json").exists());

    world.run(&job).assert().success();
    assert_eq!(
        check_sums(&world.out()),
        2,
        "the report file and billing.csv"
    );
}

#[test]
fn a_second_run_into_a_folder_in_use_is_refused_and_touches_nothing() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let journal_before = journal(&world);
    let sums_before = file_sums(&world.out());
    let creates_before = world.stats().create_requests;

    // What a run still writing into the folder holds, and what it writes there.
    let lock = world.out().join(".acronis-reports/lock");
    std::fs::write(&lock, "process 4242 since 2026-12-03T14:00:00Z\n").unwrap();
    let held = std::fs::File::open(&lock).unwrap();
    held.lock().unwrap();
    let output = world.run(&job).arg("--fresh").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "nothing attempted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another acronis-reports run is writing into this folder"),
        "{stderr}"
    );
    #[cfg(unix)]
    assert!(stderr.contains("process 4242 since"), "{stderr}");
    assert_eq!(journal(&world), journal_before, "--fresh did not wipe it");
    assert_eq!(file_sums(&world.out()), sums_before);
    assert_eq!(world.stats().create_requests, creates_before);

    drop(held);
    world.run(&job).assert().success();
}

#[test]
fn after_a_refusal_saved_reports_are_kept_and_the_rest_are_not_started() {
    const WRONG: &str = "expired-token-4d9a61c2";
    let world = World::quick();
    world
        .run(&world.job(&job_text(&[(ACME, "acme")], "")))
        .assert()
        .success();
    let creates_before = world.stats().create_requests;

    // globex needs the API and is refused; acme, after it, is all on disk; initech is not tried.
    let job = world.job(&job_text(
        &[(GLOBEX, "globex"), (ACME, "acme"), (INITECH, "initech")],
        "concurrency: 1\n",
    ));
    let output = world
        .run(&job)
        .env_remove("ACRONIS_CLIENT_ID")
        .env_remove("ACRONIS_CLIENT_SECRET")
        .env("ACRONIS_TOKEN", WRONG)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "acme is ok, the others failed"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(WRONG), "the echoed token leaked: {stderr}");
    assert_eq!(world.stats().create_requests, creates_before + 1);

    let manifest = manifest(&world.out());
    let text = manifest.to_string();
    assert!(!text.contains(WRONG), "{text}");
    let by_tenant = |name: &str| {
        manifest["reports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["tenant_name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_tenant("acme")["status"], "ok");
    let globex = by_tenant("globex")["error"].as_str().unwrap().to_owned();
    assert!(globex.contains("authentication refused"), "{globex}");
    let initech = by_tenant("initech")["error"].as_str().unwrap().to_owned();
    assert!(
        initech.starts_with("not started: authentication refused"),
        "{initech}"
    );
    assert_eq!(check_sums(&world.out()), 2, "acme's file and billing.csv");
}

/// A report file swapped for a link to `/dev/zero` was read until the kernel killed the run; a
/// FIFO hung it; a journal linked to `/dev/zero` aborted on a 4 GiB allocation.
#[cfg(unix)]
#[test]
fn traps_in_the_output_folder_are_not_read() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let csv = world.out().join("2026-10/acme/usage_summary.csv_v2_0.csv");
    let json = world
        .out()
        .join("2026-10/acme/usage_summary.json_v2_0.json");
    let original = std::fs::read(&csv).unwrap();
    std::fs::remove_file(&csv).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &csv).unwrap();
    std::fs::remove_file(&json).unwrap();
    let fifo = std::process::Command::new("mkfifo").arg(&json).status();
    assert!(fifo.is_ok_and(|s| s.success()), "mkfifo");

    world
        .run(&job)
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    assert!(
        !std::fs::symlink_metadata(&csv)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&csv).unwrap(), original, "fetched again");
    assert!(std::fs::symlink_metadata(&json).unwrap().is_file());
    assert_eq!(world.stats().create_requests, 1);

    let state = world.out().join(".acronis-reports/state.jsonl");
    std::fs::remove_file(&state).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &state).unwrap();
    let assert = world
        .run(&job)
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("symbolic link"), "{stderr}");
}

/// A tenant folder swapped for a link to a copy elsewhere, holding the recorded files: a re-run
/// must not call the report "ok" from outside the output folder; `verify` refuses an endless
/// `SHA256SUMS` instead of reading it.
#[test]
fn a_linked_folder_or_record_is_not_read_through() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let tenant = world.out().join("2026-10/acme");
    let elsewhere = world.path("elsewhere");
    std::fs::rename(&tenant, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &tenant).unwrap();
    let assert = world
        .run(&job)
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        !stderr.contains("already saved by an earlier run"),
        "{stderr}"
    );
    assert!(stderr.contains("symbolic link"), "{stderr}");

    let sums = world.out().join("SHA256SUMS");
    std::fs::remove_file(&sums).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &sums).unwrap();
    let assert = world
        .cmd()
        .arg("verify")
        .arg(world.out())
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("symbolic link"), "{stderr}");
}

/// Hidden partial files of a killed run were never removed.
#[test]
fn a_rerun_removes_stale_temporary_files() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let stale = world
        .out()
        .join("2026-10/acme/.usage_summary.csv_v2_0.csv.Xy12Ab.partial");
    std::fs::write(&stale, vec![b'x'; 1024]).unwrap();
    assert_eq!(partial_files(&world.out()).len(), 1);
    world.run(&job).assert().success();
    assert!(partial_files(&world.out()).is_empty());
    check_sums(&world.out());
}

/// The same API spelled differently (`HTTP://`, `/api/2/`, spaces) discarded the journal and
/// created the reports again.
#[test]
fn the_same_api_spelled_differently_keeps_the_journal() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let creates = world.stats().create_requests;
    let base = world.sandbox().base_url();
    let respelled = format!(
        "  {}/api/2/ ",
        base.trim_end_matches('/').replacen("http://", "HTTP://", 1)
    );
    world
        .run(&job)
        .env("ACRONIS_BASE_URL", &respelled)
        .assert()
        .success();
    assert_eq!(
        world.stats().create_requests,
        creates,
        "nothing created again"
    );
    assert_eq!(
        manifest(&world.out())["base_url"].as_str(),
        Some(base.trim_end_matches('/'))
    );
    // The same loopback server named `localhost`: still the same API.
    let localhost = base.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(localhost, base);
    world
        .run(&job)
        .env("ACRONIS_BASE_URL", &localhost)
        .assert()
        .success();
    assert_eq!(
        world.stats().create_requests,
        creates,
        "nothing created again through localhost"
    );
}

/// A failure writing billing.csv (a full disk) stopped SHA256SUMS, manifest.json and
/// summary.md from being written, leaving good files unchecksummed.
#[test]
fn a_failed_billing_csv_still_leaves_the_records_of_what_succeeded() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    // A non-empty folder where billing.csv goes: renaming the new file into place fails.
    std::fs::create_dir_all(world.out().join("2026-10/billing.csv/in-the-way")).unwrap();
    let assert = world.run(&job).assert().failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("could not write billing.csv"), "{stderr}");
    for file in ["SHA256SUMS", "manifest.json", "summary.md"] {
        assert!(world.out().join(file).is_file(), "{file}: {stderr}");
        assert!(
            world.out().join("2026-10").join(file).is_file(),
            "{file}: {stderr}"
        );
    }
    let sums = file_sums(&world.out());
    assert!(
        sums.contains("2026-10/acme/usage_summary.csv_v2_0.csv"),
        "{sums}"
    );
    assert!(!sums.contains("billing.csv"), "{sums}");
    check_sums(&world.out());
}
