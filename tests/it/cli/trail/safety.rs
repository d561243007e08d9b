//! What the trail must survive: a report whose level changed, a tenant folder reused for another
//! tenant, a damaged sealed file, a merge into a folder a run holds, a failed upgrade, a record
//! edited to name a file elsewhere, a failed attempt where a sealed file went missing, and
//! numbers no seal vouches for. Each leaves every sealed byte where it was.

use std::path::Path;

use super::{
    NOVEMBER, OCTOBER, run_as_of, run_november_in_two_shards, sha256sum_down_the_tree, snapshot,
    verify_clean,
};
use crate::support::*;

const ACME_FILE: &str = "2026-10/acme/usage_summary.csv_v2_0.csv";
const GLOBEX_FILE: &str = "2026-10/globex/usage_summary.csv_v2_0.csv";

/// A scenario whose report files differ in bytes from the quick one's.
fn padded() -> World {
    World::new(acronis_reports_sandbox::Scenario {
        pad_bytes: 10,
        ..quick_scenario()
    })
}

/// Level is part of a report's identity but not of its path: the new record replaces the
/// earlier one of its tenant, rather than both listing one file and bricking the period.
#[test]
fn a_level_change_replaces_the_tenants_earlier_record() {
    let world = World::quick();
    let out = world.out();
    let direct = job_text(&[(ACME, "acme")], "");
    let all = job_text(&[(ACME, "acme")], "defaults:\n  level: all_customers\n");
    run_as_of(&world, &world.job(&direct), &out, OCTOBER).success();
    let sealed = snapshot(&out);

    run_as_of(&world, &world.job(&all), &out, OCTOBER).success();
    verify_clean(&world, &out);
    assert_eq!(sha256sum_down_the_tree(&out), ["2026-10"]);
    let period = read_json(&out.join("2026-10/manifest.json"));
    let reports = period["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{period}");
    assert_eq!(reports[0]["level"], "all_customers");
    let root = manifest(&out);
    assert!(
        root["reports"][0]["warnings"]
            .to_string()
            .contains("replaces that record"),
        "{root}"
    );
    // What the record replaced is kept: its file and its records.
    let superseded = out.join(".acronis-reports/superseded/2026-10");
    assert_eq!(
        std::fs::read(superseded.join("manifest.json")).unwrap(),
        sealed["2026-10/manifest.json"]
    );
    assert_eq!(
        std::fs::read(superseded.join("acme/usage_summary.csv_v2_0.csv")).unwrap(),
        sealed[ACME_FILE]
    );
    assert!(
        !out.join(".acronis-reports/staging").exists(),
        "no empty staging folders stay behind"
    );

    // And back: the period is never bricked.
    run_as_of(&world, &world.job(&direct), &out, OCTOBER).success();
    verify_clean(&world, &out);
    let period = read_json(&out.join("2026-10/manifest.json"));
    assert_eq!(period["reports"][0]["level"], "direct_partners");
}

/// Another tenant given the name (the folder) of a tenant the period holds is refused before
/// anything is created or written, naming both tenants and what to do.
#[test]
fn another_tenant_in_a_sealed_tenant_folder_is_refused_before_anything_runs() {
    let world = World::quick();
    let out = world.out();
    let both = job_text(&[(ACME, "acme"), (GLOBEX, "globex")], "");
    run_as_of(&world, &world.job(&both), &out, OCTOBER).success();
    let sealed = snapshot(&out);
    let created = world.stats().create_requests;

    let impostor = world.job(&job_text(&[(INITECH, "acme")], ""));
    for fresh in [false, true] {
        let mut cmd = world.cmd();
        cmd.arg("run").arg(&impostor).arg("--out").arg(&out);
        cmd.args(["--as-of", OCTOBER]);
        if fresh {
            cmd.arg("--fresh");
        }
        let refused = cmd.assert().code(2);
        let stderr = stderr_of(&refused);
        for needle in [
            ACME,
            INITECH,
            "2026-10/acme/",
            "another `name`",
            "nothing was run",
        ] {
            assert!(stderr.contains(needle), "{needle}: {stderr}");
        }
    }
    assert_eq!(
        world.stats().create_requests,
        created,
        "nothing was created"
    );
    assert_eq!(snapshot(&out), sealed);
    verify_clean(&world, &out);
}

/// A damaged sealed file of one tenant stops the period before anything in it moves (another
/// tenant's sealed file is not displaced), and the message says what mends it.
#[test]
fn a_refused_period_moves_nothing_and_says_what_mends_it() {
    let world = World::quick();
    let out = world.out();
    let both = job_text(&[(ACME, "acme"), (GLOBEX, "globex")], "");
    run_as_of(&world, &world.job(&both), &out, OCTOBER).success();
    let sealed = snapshot(&out);
    let globex = out.join(GLOBEX_FILE);
    let mut damaged = sealed[GLOBEX_FILE].clone();
    damaged.extend_from_slice(b"x\n");
    std::fs::write(&globex, &damaged).unwrap();

    // acme alone, with other bytes: a new delivery of acme would rewrite the period.
    let other = padded();
    let acme_only = other.job(&job_text(&[(ACME, "acme")], ""));
    let failed = run_as_of(&other, &acme_only, &out, OCTOBER).code(1);
    let stderr = stderr_of(&failed);
    for needle in [
        GLOBEX_FILE,
        "restore the file",
        "run globex's report for 2026-10 again",
        "nothing in it was moved",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("--fresh"), "{stderr}");
    assert_eq!(
        std::fs::read(out.join(ACME_FILE)).unwrap(),
        sealed[ACME_FILE]
    );
    assert!(!out.join(".acronis-reports/superseded").exists());
    let verify = world.cmd().arg("verify").arg(&out).assert().code(1);
    let stdout = stdout_of(&verify);
    assert!(
        stdout.contains(&format!("changed: {GLOBEX_FILE}")),
        "{stdout}"
    );
    assert!(!stdout.contains("acme"), "{stdout}");

    // Restored, the same run goes through.
    std::fs::write(&globex, &sealed[GLOBEX_FILE]).unwrap();
    run_as_of(&other, &acme_only, &out, OCTOBER).success();
    verify_clean(&world, &out);
    assert_ne!(
        std::fs::read(out.join(ACME_FILE)).unwrap(),
        sealed[ACME_FILE]
    );
}

/// `merge` into a folder takes the run's lock: while a run holds it, the merge is refused and
/// nothing changes; a run's root seal can then never un-list what a merge sealed.
#[test]
fn a_merge_into_a_folder_a_run_holds_is_refused() {
    let world = World::quick();
    let tenants = [(ACME, "acme"), (GLOBEX, "globex")];
    let job = world.job(&job_text(&tenants, ""));
    let trail = world.path("trail");
    run_as_of(&world, &job, &trail, OCTOBER).success();
    run_november_in_two_shards(&world, &job);
    let before = snapshot(&trail);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(trail.join(".acronis-reports/lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let refused = world
        .cmd()
        .args(["merge", "shard-1", "shard-2", "--out", "trail"])
        .assert()
        .code(2);
    let stderr = stderr_of(&refused);
    assert!(
        stderr.contains("another acronis-reports run is writing into this folder"),
        "{stderr}"
    );
    assert_eq!(snapshot(&trail), before);
    drop(lock);
    world
        .cmd()
        .args(["merge", "shard-1", "shard-2", "--out", "trail"])
        .assert()
        .success();
    assert_eq!(sha256sum_down_the_tree(&trail), ["2026-10", "2026-11"]);
}

fn copy_fixture(out: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trail/single-run-0.1");
    for (file, bytes) in snapshot(&fixture) {
        let path = out.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// An upgrade that cannot be made (a file changed since the single-run seal) changes nothing:
/// the old root records are the only record of that delivery.
#[test]
fn a_failed_upgrade_changes_no_record() {
    let world = World::quick();
    let out = world.out();
    copy_fixture(&out);
    let initech = out.join("2026-10/initech/usage_summary.csv_v2_0.csv");
    let original = std::fs::read(&initech).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"x\n");
    std::fs::write(&initech, &changed).unwrap();
    let before = snapshot(&out);

    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let failed = run_as_of(&world, &job, &out, NOVEMBER).code(1);
    let stderr = stderr_of(&failed);
    for needle in ["was not upgraded", "initech", "restore the file"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    let mut after = snapshot(&out);
    after.retain(|path, _| !path.starts_with("2026-11/"));
    assert_eq!(after, before, "no record of the single-run folder changed");
    assert!(!out.join(".acronis-reports/legacy").exists());

    std::fs::write(&initech, &original).unwrap();
    run_as_of(&world, &job, &out, NOVEMBER).success();
    verify_clean(&world, &out);
    assert_eq!(
        std::fs::read(out.join(".acronis-reports/legacy/manifest.json")).unwrap(),
        before["manifest.json"]
    );
}

/// A period record edited (and re-sealed) to name a file elsewhere is refused before anything
/// moves: no run takes a file from outside the folder.
#[test]
fn a_record_naming_a_file_outside_its_period_is_refused() {
    let world = World::quick();
    let out = world.out();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    run_as_of(&world, &job, &out, OCTOBER).success();
    let victim = world.path("victim.txt");
    std::fs::write(&victim, "precious, outside the trail\n").unwrap();
    let absolute = victim.to_string_lossy().into_owned();
    for forged in [absolute.as_str(), "../../victim.txt"] {
        let record = out.join("2026-10/manifest.json");
        let mut value = read_json(&record);
        value["reports"][0]["files"][0]["path"] = forged.into();
        value["reports"][0]["files"][0]["sha256"] = sha256_file(&victim).into();
        std::fs::write(&record, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        reseal(
            &out.join("2026-10/SHA256SUMS"),
            "manifest.json",
            &sha256_file(&record),
        );
        reseal(
            &out.join("SHA256SUMS"),
            "2026-10/SHA256SUMS",
            &sha256_file(&out.join("2026-10/SHA256SUMS")),
        );
        let refused = run_as_of(&world, &job, &out, OCTOBER).code(2);
        let stderr = stderr_of(&refused);
        assert!(
            stderr.contains("not a path inside its period folder"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"precious, outside the trail\n"
        );
        assert!(!out.join(".acronis-reports/superseded").exists());
    }
}

/// Replaces the checksum of `name` in the `SHA256SUMS` at `sums`, as one who edits a trail would.
fn reseal(sums: &Path, name: &str, sha256: &str) {
    let text = std::fs::read_to_string(sums).unwrap();
    let text: String = text
        .lines()
        .map(|line| match line.split_once("  ") {
            Some((_, listed)) if listed == name => format!("{sha256}  {name}\n"),
            _ => format!("{line}\n"),
        })
        .collect();
    std::fs::write(sums, text).unwrap();
}

/// A sealed file gone missing, then a failed attempt at its report: the attempt was saved under
/// the sealed name (nothing was there), and must not stay there.
#[test]
fn a_failed_attempt_never_stays_under_a_sealed_name() {
    let world = World::quick();
    let out = world.out();
    let both = job_text(&[(ACME, "acme"), (GLOBEX, "globex")], "");
    run_as_of(&world, &world.job(&both), &out, OCTOBER).success();
    std::fs::remove_file(out.join(ACME_FILE)).unwrap();
    let mut scenario = quick_scenario();
    scenario.tenants.insert(
        ACME.to_owned(),
        acronis_reports_sandbox::TenantBehaviour {
            no_skus: true,
            ..Default::default()
        },
    );
    let no_skus = World::new(scenario);

    // acme alone: the period keeps its records, the attempt's file goes aside.
    let acme_only = no_skus.job(&job_text(&[(ACME, "acme")], ""));
    run_as_of(&no_skus, &acme_only, &out, OCTOBER).code(1);
    let rejected = out.join(".acronis-reports/rejected").join(ACME_FILE);
    assert!(
        rejected.is_file(),
        "the attempt's file is where the record says"
    );
    assert!(!out.join(ACME_FILE).exists());
    let warnings = manifest(&out)["reports"][0]["warnings"].to_string();
    for needle in [
        "keeps its earlier delivery",
        ".acronis-reports/rejected/",
        "of the earlier delivery is missing",
    ] {
        assert!(warnings.contains(needle), "{needle}: {warnings}");
    }
    let verify = world.cmd().arg("verify").arg(&out).assert().code(1);
    assert!(stdout_of(&verify).contains(&format!("missing: {ACME_FILE}")));

    // Both: globex's new delivery would rewrite the period over the missing file, so it is
    // refused, and the attempt's file still goes aside.
    let both = no_skus.job(&both);
    let failed = run_as_of(&no_skus, &both, &out, OCTOBER).code(1);
    let stderr = stderr_of(&failed);
    assert!(stderr.contains(&format!("{ACME_FILE} (acme's")), "{stderr}");
    assert!(stderr.contains("is missing"), "{stderr}");
    assert!(rejected.is_file());
    assert!(!out.join(ACME_FILE).exists());
}

/// The "Changes since" section compares only sealed numbers: a stray `billing.csv` no seal
/// lists, or a sealed one edited since, leaves the section out and says why.
#[test]
fn changes_are_compared_only_with_sealed_numbers() {
    let world = World::quick();
    let out = world.out();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    std::fs::create_dir_all(out.join("2026-09")).unwrap();
    std::fs::write(
        out.join("2026-09/billing.csv"),
        format!(
            "report_tenant_id,tenant_id,tenant_name,offering_item,sku,billable_value,unit\n{ACME},{ACME},acme,pw_base_workstations,SP4AWSENS,9999,\n"
        ),
    )
    .unwrap();
    run_as_of(&world, &job, &out, OCTOBER).success();
    let summary = std::fs::read_to_string(out.join("2026-10/summary.md")).unwrap();
    assert!(!summary.contains("Changes since 2026-09"), "{summary}");
    let root = manifest(&out);
    assert!(!root.to_string().contains("9999"), "{root}");
    let notes = root["trail"]["notes"].to_string();
    assert!(notes.contains("2026-09/ is not a sealed period"), "{notes}");

    let billing = out.join("2026-10/billing.csv");
    let mut edited = std::fs::read(&billing).unwrap();
    edited.extend_from_slice(b"\n");
    std::fs::write(&billing, edited).unwrap();
    run_as_of(&world, &job, &out, NOVEMBER).success();
    let summary = std::fs::read_to_string(out.join("2026-11/summary.md")).unwrap();
    assert!(!summary.contains("Changes since 2026-10"), "{summary}");
    let notes = manifest(&out)["trail"]["notes"].to_string();
    assert!(notes.contains("changed after it was sealed"), "{notes}");
}
