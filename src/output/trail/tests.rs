//! The commit stopped at every step, as a kill would stop it (see `output::kill_point`), and
//! the next open settling what it left; the root sealed from fresh seals.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::intent::{Intent, IntentPeriod};
use super::*;
use crate::output::{KILL_AT, MANIFEST, SHA256SUMS};
use crate::period::Period;
use crate::results::fixtures::contract_run;
use crate::results::{FileResult, ReportResult};

const ACME: (&str, &str) = ("ede9f834-70b3-476c-83d9-736f9f8c7dae", "acme");
const GLOBEX: (&str, &str) = ("0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11", "globex");

/// A usage summary that `billing.csv` reads, with `value` bytes of storage.
fn csv(value: u64) -> String {
    format!(
        "tenant.id,tenant.kind,name,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial\nc,customer,pw_base_storage,{value},{value},0,0,0,0,{value},{value},0\n"
    )
}

/// A report of `tenant` for the period `label` holding `content`, its file written where a run
/// leaves it: in the period, or in the staging folder when it was fetched again.
fn report(
    dir: &Path,
    tenant: (&str, &str),
    label: &str,
    content: &str,
    staged: bool,
) -> ReportResult {
    let mut report = contract_run().reports.get(0).unwrap();
    report.tenant_id = tenant.0.to_owned();
    report.tenant_name = tenant.1.to_owned();
    report.period = Period::from_label(label).unwrap();
    report.report_id = Some(format!("report-{}", hex::encode(Sha256::digest(content))));
    let path = format!("{label}/{}/usage_summary.csv_v2_0.csv", tenant.1);
    let on_disk = if staged {
        staged_path(dir, &path)
    } else {
        dir.join(&path)
    };
    fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
    fs::write(&on_disk, content).unwrap();
    report.files = vec![FileResult {
        path,
        bytes: content.len() as u64,
        sha256: hex::encode(Sha256::digest(content)),
        ..report.files[0].clone()
    }];
    report
}

fn run_of(reports: Vec<ReportResult>) -> RunResult {
    let mut run = contract_run();
    let reports = reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| ReportResult { plan_index: i, ..r });
    run.reports = ReportLog::of(reports).unwrap();
    run
}

fn commit(dir: &Path, run: RunResult) -> Result<RunResult, CommitError> {
    let labels = labels_of(&run.reports).unwrap();
    Trail::open(dir, labels)
        .unwrap()
        .commit(run, &CommitOptions::default())
}

/// Commits `run` into `dir`, stopped right after `step` as a kill would stop it.
fn killed(dir: &Path, run: RunResult, step: &'static str) {
    KILL_AT.with(|at| at.set(Some(step)));
    let outcome = catch_unwind(AssertUnwindSafe(|| commit(dir, run)));
    KILL_AT.with(|at| at.set(None));
    assert!(outcome.is_err(), "the commit never reached {step}");
}

/// Every file under `dir` outside the state folder, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if relative.starts_with(STATE_DIR) {
                continue;
            }
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// Asserts two snapshots are alike, naming the files that differ rather than their bytes.
fn assert_same(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>, context: &str) {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let differ: Vec<&&String> = names.iter().filter(|n| a.get(**n) != b.get(**n)).collect();
    assert!(differ.is_empty(), "{context}: {differ:?} differ");
}

/// The files of one period folder.
fn period_files(files: &BTreeMap<String, Vec<u8>>, label: &str) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(path, _)| path.starts_with(&format!("{label}/")))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect()
}

fn assert_clean(dir: &Path, context: &str) {
    let report = crate::verify::verify(dir).unwrap();
    assert!(report.is_clean(), "{context}: {report}");
}

fn labels(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|l| (*l).to_owned()).collect()
}

const ACME_OCTOBER: &str = "2026-10/acme/usage_summary.csv_v2_0.csv";

#[test]
fn a_kill_at_any_step_of_a_rewrite_is_finished_or_undone_by_the_next_open() {
    let steps = [
        ("intent", false),
        ("records aside", false),
        ("move", false),
        ("billing.csv", false),
        ("summary.md", false),
        ("manifest.json", false),
        ("SHA256SUMS", true),
        ("root summary.md", true),
        ("root manifest.json", true),
        ("root SHA256SUMS", true),
    ];
    for (step, adopted) in steps {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let sealed = run_of(vec![
            report(dir, ACME, "2026-10", &csv(1), false),
            report(dir, GLOBEX, "2026-10", &csv(2), false),
        ]);
        commit(dir, sealed).unwrap();
        let before = snapshot(dir);
        // acme fetched again with other bytes: staged until its record is written.
        killed(
            dir,
            run_of(vec![report(dir, ACME, "2026-10", &csv(3), true)]),
            step,
        );
        assert!(dir.join(STATE_DIR).join("commit.json").exists(), "{step}");
        // Until it is settled, verify says so rather than "all match".
        if let Ok(found) = crate::verify::verify(dir) {
            assert!(
                found.to_string().contains("was interrupted"),
                "{step}: {found}"
            );
        }

        let trail = Trail::open(dir, labels(&["2026-10"])).unwrap();
        assert_clean(dir, step);
        assert!(!dir.join(STATE_DIR).join("commit.json").exists(), "{step}");
        assert!(!intent::backups(dir).exists(), "{step}");
        let after = snapshot(dir);
        if adopted {
            assert_eq!(after[ACME_OCTOBER], csv(3).as_bytes(), "{step}");
            // Sealed whole, the commit had nothing left to tell.
            if step != "root SHA256SUMS" {
                assert!(
                    trail.notes[0].contains("now sealed"),
                    "{step}: {:?}",
                    trail.notes
                );
            }
        } else {
            assert_same(&after, &before, step);
            // The file the killed run fetched waits where it was, for the run to move it in.
            let staged = staged_path(dir, ACME_OCTOBER);
            assert_eq!(fs::read(staged).unwrap(), csv(3).as_bytes(), "{step}");
            assert!(
                trail.notes[0].contains("was undone"),
                "{step}: {:?}",
                trail.notes
            );
        }
        // The run goes on and writes the period.
        drop(trail);
        commit(
            dir,
            run_of(vec![report(dir, ACME, "2026-10", &csv(3), true)]),
        )
        .unwrap();
        assert_clean(dir, step);
        assert_eq!(snapshot(dir)[ACME_OCTOBER], csv(3).as_bytes(), "{step}");
    }
}

/// A period whose writing fails before its seal is put back as it was, files and records, in
/// the same run; the files the run fetched wait in staging again.
#[test]
fn a_rewrite_that_fails_is_put_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let sealed = run_of(vec![
        report(dir, ACME, "2026-10", &csv(1), false),
        report(dir, GLOBEX, "2026-10", &csv(2), false),
    ]);
    commit(dir, sealed).unwrap();
    let before = snapshot(dir);
    let run = run_of(vec![report(dir, ACME, "2026-10", &csv(3), true)]);
    let trail = Trail::open(dir, labels(&["2026-10"])).unwrap();
    // Something in the way of the new SHA256SUMS (after the trail was read).
    let sums = dir.join("2026-10").join(SHA256SUMS);
    let kept = dir.join("sums-kept-aside");
    fs::rename(&sums, &kept).unwrap();
    fs::create_dir(&sums).unwrap();
    let error = trail.commit(run, &CommitOptions::default()).unwrap_err();
    assert!(
        error.to_string().contains("was put back as it was"),
        "{error}"
    );
    fs::remove_dir(&sums).unwrap();
    fs::rename(&kept, &sums).unwrap();
    // The period as it was; the root records tell of the run (and its failure).
    assert_same(
        &period_files(&snapshot(dir), "2026-10"),
        &period_files(&before, "2026-10"),
        "put back",
    );
    assert_clean(dir, "put back");
    assert_eq!(
        fs::read(staged_path(dir, ACME_OCTOBER)).unwrap(),
        csv(3).as_bytes()
    );
    assert!(!dir.join(STATE_DIR).join("commit.json").exists());
}

/// A kill between the periods of one commit (the first one's `SHA256SUMS` written, the second
/// one half-way): the first is adopted, the second undone.
#[test]
fn a_kill_between_two_periods_keeps_the_first_and_undoes_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    commit(
        dir,
        run_of(vec![
            report(dir, ACME, "2026-10", &csv(1), false),
            report(dir, ACME, "2026-11", &csv(2), false),
        ]),
    )
    .unwrap();
    let before = period_files(&snapshot(dir), "2026-11");
    killed(
        dir,
        run_of(vec![
            report(dir, ACME, "2026-10", &csv(3), true),
            report(dir, ACME, "2026-11", &csv(4), true),
        ]),
        "SHA256SUMS",
    );
    let trail = Trail::open(dir, labels(&["2026-10", "2026-11"])).unwrap();
    assert_clean(dir, "after the kill");
    let after = snapshot(dir);
    assert_eq!(after[ACME_OCTOBER], csv(3).as_bytes());
    assert_same(&period_files(&after, "2026-11"), &before, "November");
    assert_eq!(trail.notes.len(), 2, "{:?}", trail.notes);
    // The replaced records of October are kept with its replaced file.
    let superseded = dir.join(STATE_DIR).join(SUPERSEDED).join("2026-10");
    assert!(superseded.join(MANIFEST).is_file());
    assert_eq!(
        fs::read(superseded.join("acme/usage_summary.csv_v2_0.csv")).unwrap(),
        csv(1).as_bytes()
    );
}

/// An upgrade of a single-run folder stopped anywhere is undone as a whole: the folder is the
/// single-run folder it was, and upgraded by the next run.
#[test]
fn a_killed_upgrade_is_undone_whole() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trail/single-run-0.1");
    let old = snapshot(&fixture);
    for step in [
        "records aside",
        "SHA256SUMS",
        "legacy",
        "root manifest.json",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        for (file, bytes) in &old {
            let path = dir.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        killed(
            dir,
            run_of(vec![report(dir, ACME, "2026-11", &csv(5), false)]),
            step,
        );
        let trail = Trail::open(dir, labels(&["2026-11"])).unwrap();
        assert!(trail.legacy.is_some(), "{step}: a single-run folder again");
        let mut now = snapshot(dir);
        now.retain(|path, _| !path.starts_with("2026-11/"));
        assert_same(&now, &old, step);
        drop(trail);
        commit(
            dir,
            run_of(vec![report(dir, ACME, "2026-11", &csv(5), false)]),
        )
        .unwrap();
        assert_clean(dir, step);
        assert!(dir.join(STATE_DIR).join(LEGACY).join(MANIFEST).is_file());
    }
}

/// The root is sealed from the seals as they are when it is written: a period sealed by another
/// process while this run went on (a file system that cannot lock) stays listed.
#[test]
fn a_period_sealed_during_the_run_stays_listed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    commit(
        dir,
        run_of(vec![report(dir, ACME, "2026-10", &csv(1), false)]),
    )
    .unwrap();
    let november = Trail::open(dir, labels(&["2026-11"])).unwrap();
    commit(
        dir,
        run_of(vec![report(dir, ACME, "2026-09", &csv(2), false)]),
    )
    .unwrap();
    november
        .commit(
            run_of(vec![report(dir, ACME, "2026-11", &csv(3), false)]),
            &CommitOptions::default(),
        )
        .unwrap();
    let root = fs::read_to_string(dir.join(SHA256SUMS)).unwrap();
    for period in ["2026-09", "2026-10", "2026-11"] {
        assert!(root.contains(&format!("  {period}/SHA256SUMS\n")), "{root}");
    }
    assert_clean(dir, "three periods");
}

/// A record's paths decide what moves: only plain paths inside the period folder pass.
#[test]
fn report_paths_from_records_stay_inside_their_period() {
    for good in [
        "acme/usage_summary.csv_v2_0.csv",
        "back\\slash.csv",
        "Müller GmbH/x.csv",
    ] {
        assert!(is_report_path(good), "{good}");
    }
    for bad in [
        "/etc/passwd",
        "../2026-09/acme/x.csv",
        "acme/../../x",
        "./acme/x.csv",
        "acme//x.csv",
        ".acronis-reports/lock",
        "acme/.hidden",
        "manifest.json",
        "SHA256SUMS",
        "Billing.CSV",
        "",
    ] {
        assert!(!is_report_path(bad), "{bad}");
    }
}

/// An intent is read as hostile input: a rename out of the folder is refused, nothing moves.
#[test]
fn an_intent_naming_a_file_outside_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.txt");
    fs::write(&victim, "precious").unwrap();
    let dir = dir.path();
    commit(
        dir,
        run_of(vec![report(dir, ACME, "2026-10", &csv(1), false)]),
    )
    .unwrap();
    let forged = Intent {
        root_seal: None,
        upgrade: false,
        periods: vec![IntentPeriod {
            folder: "2026-10".into(),
            moves: vec![intent::Move::undone(
                victim.to_string_lossy().into_owned(),
                "2026-10/acme/x.csv".into(),
            )],
        }],
        legacy: Vec::new(),
    };
    forged.write(dir).unwrap();
    let Err(error) = Trail::open(dir, labels(&["2026-10"])) else {
        panic!("a forged intent was followed");
    };
    assert!(
        error.to_string().contains("not a rename the trail makes"),
        "{error}"
    );
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

/// Planning a period holds a few words per report of the run, not its records: a run of ten
/// thousand reports ended 1.5× above its half-time peak when it held them (`BENCHMARKS.md`,
/// ninth session).
#[test]
fn planning_a_period_holds_no_records() {
    let peak = |count: usize| {
        let dir = tempfile::tempdir().unwrap();
        let reports = (0..count)
            .map(|i| {
                let id = format!("5ca1ab1e-0000-4000-8000-{i:012x}");
                let name = format!("tenant {i:05} with a name as long as real ones are");
                let mut report = report(dir.path(), (&id, &name), "2026-10", &csv(i as u64), false);
                report.warnings = vec!["a warning of the kind a record may carry".to_owned(); 2];
                report
            })
            .collect();
        let run = run_of(reports);
        let positions: Vec<usize> = (0..count).collect();
        let period = period::PeriodRun {
            dir: dir.path(),
            label: "2026-10",
            earlier: None,
            upgraded: false,
            positions: &positions,
        };
        let (plan, bytes) = crate::heap::peak_of(|| period.plan(&run));
        let change = plan.outcome.unwrap();
        assert_eq!(change.reports, count);
        assert_eq!(change.record.unwrap().reports.len(), count);
        bytes
    };
    let (small, large) = (peak(200), peak(2200));
    let per_report = large.saturating_sub(small) / 2000;
    // A record in memory is ~1 KiB (ids, names, paths, hashes, warnings); what planning keeps
    // per report is its position, sort key and listed path.
    assert!(
        per_report < 512,
        "planning a period holds {per_report} bytes per report ({small} B for 200, {large} B for 2200)"
    );
}
