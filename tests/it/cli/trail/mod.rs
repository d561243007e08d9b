//! One output folder over many months: each period a self-contained delivery, nothing good ever
//! un-listed, every `SHA256SUMS` in the tree checkable with `sha256sum -c --strict`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::*;

mod safety;

const OCTOBER: &str = "2026-11-15";
const NOVEMBER: &str = "2026-12-02";

fn run_as_of(world: &World, job: &Path, out: &Path, as_of: &str) -> assert_cmd::assert::Assert {
    world
        .cmd()
        .arg("run")
        .arg(job)
        .arg("--out")
        .arg(out)
        .args(["--as-of", as_of])
        .assert()
}

/// November's reports in two shard folders, `shard-1` and `shard-2`, for a merge.
fn run_november_in_two_shards(world: &World, job: &Path) {
    for index in 1..=2 {
        world
            .cmd()
            .arg("run")
            .arg(job)
            .arg("--out")
            .arg(world.path(&format!("shard-{index}")))
            .args(["--as-of", NOVEMBER, "--shard", &format!("{index}/2")])
            .assert()
            .success();
    }
}

/// Every file under `dir` outside the hidden state folder, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    tree(dir)
        .into_iter()
        .filter(|f| !f.starts_with(".acronis-reports/"))
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

fn under(files: &BTreeMap<String, Vec<u8>>, folder: &str) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(f, _)| f.starts_with(&format!("{folder}/")))
        .map(|(f, b)| (f.clone(), b.clone()))
        .collect()
}

/// `sha256sum -c --strict` in the root and in every period folder it lists, as an auditor runs
/// it; returns the period folders.
fn sha256sum_down_the_tree(out: &Path) -> Vec<String> {
    let check = |dir: &Path| {
        let output = std::process::Command::new("sha256sum")
            .args(["--strict", "-c", "SHA256SUMS"])
            .current_dir(dir)
            .output()
            .expect("sha256sum runs");
        assert!(
            output.status.success(),
            "sha256sum -c in {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    check(out);
    let root = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let periods: Vec<String> = root
        .lines()
        .filter_map(|l| l[66..].strip_suffix("/SHA256SUMS").map(str::to_owned))
        .collect();
    for period in &periods {
        check(&out.join(period));
    }
    periods
}

fn verify_clean(world: &World, out: &Path) -> String {
    let assert = world.cmd().arg("verify").arg(out).assert().success();
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

#[test]
fn months_accumulate_in_one_folder_and_each_checks_alone() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    let out = world.out();
    run_as_of(&world, &job, &out, OCTOBER).success();
    assert_eq!(sha256sum_down_the_tree(&out), ["2026-10"]);
    let october = under(&snapshot(&out), "2026-10");
    for record in ["SHA256SUMS", "billing.csv", "manifest.json", "summary.md"] {
        assert!(
            october.contains_key(&format!("2026-10/{record}")),
            "{record}"
        );
    }

    run_as_of(&world, &job, &out, NOVEMBER).success();
    let after = snapshot(&out);
    assert_eq!(under(&after, "2026-10"), october, "October is not touched");
    assert_eq!(sha256sum_down_the_tree(&out), ["2026-10", "2026-11"]);
    assert!(
        verify_clean(&world, &out).contains("in 2 periods: all match"),
        "verify covers both months"
    );
    world
        .cmd()
        .args(["verify", "--period", "2026-10"])
        .arg(&out)
        .assert()
        .success();

    let root = manifest(&out);
    assert_eq!(root["trail"]["periods"][0]["folder"], "2026-11");
    assert_eq!(root["trail"]["periods"][0]["outcome"], "written");
    let delivery: serde_json::Value =
        serde_json::from_slice(&after["2026-11/manifest.json"]).unwrap();
    assert_eq!(delivery["period_folder"], "2026-11");
    assert_eq!(
        delivery["reports"][0]["files"][0]["path"],
        "acme/usage_summary.csv_v2_0.csv"
    );
    let summary = String::from_utf8_lossy(&after["2026-11/summary.md"]).into_owned();
    assert!(summary.contains("## Changes since 2026-10"), "{summary}");

    // The same month again, from the journal: nothing created, not a byte of it rewritten.
    let created = world.stats().create_requests;
    run_as_of(&world, &job, &out, NOVEMBER).success();
    assert_eq!(world.stats().create_requests, created);
    let again = snapshot(&out);
    assert_eq!(under(&again, "2026-10"), under(&after, "2026-10"));
    assert_eq!(under(&again, "2026-11"), under(&after, "2026-11"));
    assert_eq!(
        manifest(&out)["trail"]["periods"][0]["outcome"],
        "unchanged"
    );
    sha256sum_down_the_tree(&out);
    verify_clean(&world, &out);
}

#[test]
fn a_run_whose_reports_all_fail_keeps_the_earlier_delivery() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    let out = world.out();
    run_as_of(&world, &job, &out, OCTOBER).success();
    let october = under(&snapshot(&out), "2026-10");

    // The same month from a server that now refuses every report, without the journal (a CI
    // runner that only has the committed trail).
    let mut scenario = quick_scenario();
    for id in [ACME, GLOBEX] {
        scenario.tenants.insert(
            id.to_owned(),
            acronis_reports_sandbox::TenantBehaviour {
                fail: true,
                ..Default::default()
            },
        );
    }
    let refusing = World::new(scenario);
    let assert = run_as_of(&refusing, &job, &out, OCTOBER)
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&assert.stderr);
    assert!(stderr.contains("failed"), "{stderr}");

    assert_eq!(
        under(&snapshot(&out), "2026-10"),
        october,
        "the good October delivery is listed and unchanged"
    );
    let root = manifest(&out);
    let reports = root["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    for report in reports {
        assert_eq!(report["status"], "failed", "{report}");
        assert!(
            report["warnings"]
                .to_string()
                .contains("keeps its earlier delivery"),
            "{report}"
        );
    }
    assert_eq!(root["trail"]["periods"][0]["kept_earlier"], 2);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("earlier delivery kept"), "{summary}");
    sha256sum_down_the_tree(&out);
    verify_clean(&world, &out);

    // A good run after it replaces the delivery, files and lines together.
    std::fs::remove_dir_all(out.join(".acronis-reports")).unwrap();
    run_as_of(&world, &job, &out, OCTOBER).success();
    let replaced = manifest(&out);
    assert_eq!(replaced["trail"]["periods"][0]["outcome"], "written");
    sha256sum_down_the_tree(&out);
    verify_clean(&world, &out);
}

#[test]
fn shards_merge_into_a_trail() {
    let world = World::quick();
    let tenants = [(ACME, "acme"), (GLOBEX, "globex"), (INITECH, "initech")];
    let job = world.job(&job_text(&tenants, ""));
    let trail = world.path("trail");
    run_as_of(&world, &job, &trail, OCTOBER).success();
    let october = under(&snapshot(&trail), "2026-10");

    run_november_in_two_shards(&world, &job);
    world
        .cmd()
        .args(["merge", "shard-1", "shard-2", "--out", "trail"])
        .assert()
        .success();
    let merged = snapshot(&trail);
    assert_eq!(under(&merged, "2026-10"), october);
    assert_eq!(sha256sum_down_the_tree(&trail), ["2026-10", "2026-11"]);
    verify_clean(&world, &trail);

    // The merged month is what one unsharded run writes.
    let whole = world.path("whole");
    run_as_of(&world, &job, &whole, NOVEMBER).success();
    let november = file_sums(&trail)
        .lines()
        .filter(|l| l.contains("  2026-11/"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert_eq!(november, file_sums(&whole));
}

/// A period of the trail that no longer verifies is not merged into: refused before anything
/// moves, rather than rewritten and then reported as failed.
#[test]
fn a_merge_into_a_damaged_period_changes_nothing() {
    let world = World::quick();
    let tenants = [(ACME, "acme"), (GLOBEX, "globex")];
    let job = world.job(&job_text(&tenants, ""));
    let trail = world.path("trail");
    run_as_of(&world, &job, &trail, NOVEMBER).success();
    run_november_in_two_shards(&world, &job);
    std::fs::write(trail.join("2026-11/notes.txt"), "left by hand\n").unwrap();
    let before = snapshot(&trail);
    let refused = world
        .cmd()
        .args(["merge", "shard-1", "shard-2", "--out", "trail"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        stderr.contains("2026-11")
            && stderr.contains("does not verify")
            && stderr.contains("notes.txt"),
        "{stderr}"
    );
    assert_eq!(snapshot(&trail), before);
}

/// The root record must agree with the seals: a period it names that the root `SHA256SUMS`
/// does not list, or other report counts than the period's own record, is a problem even when
/// every checksum was made to match.
#[test]
fn verify_cross_checks_the_root_record_with_the_periods() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    let out = world.out();
    run_as_of(&world, &job, &out, NOVEMBER).success();
    let reseal = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut root = manifest(&out);
        edit(&mut root);
        std::fs::write(
            out.join("manifest.json"),
            serde_json::to_vec_pretty(&root).unwrap(),
        )
        .unwrap();
        let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
        let sums: String = sums
            .lines()
            .map(|line| match line.split_once("  ") {
                Some((_, "manifest.json")) => {
                    format!(
                        "{}  manifest.json\n",
                        sha256_file(&out.join("manifest.json"))
                    )
                }
                _ => format!("{line}\n"),
            })
            .collect();
        std::fs::write(out.join("SHA256SUMS"), sums).unwrap();
    };
    let verify_says = || {
        let assert = world.cmd().arg("verify").arg(&out).assert().code(1);
        String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
    };
    reseal(&|root| root["trail"]["periods"][0]["ok"] = 1.into());
    let said = verify_says();
    assert!(
        said.contains("records 2 report(s), 1 ok, for period 2026-11"),
        "{said}"
    );
    reseal(&|root| {
        root["trail"]["periods"][0]["ok"] = 2.into();
        root["trail"]["periods"][0]["folder"] = "2026-09".into();
    });
    let said = verify_says();
    assert!(
        said.contains("records period 2026-09, but the root SHA256SUMS does not list"),
        "{said}"
    );
}

#[test]
fn a_single_run_folder_is_verified_and_upgraded_by_the_next_run() {
    let world = World::quick();
    let out = world.out();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/trail/single-run-0.1");
    let old = snapshot(&fixture);
    assert!(old.len() > 5, "the fixture is there: {old:?}");
    for (file, bytes) in &old {
        let path = out.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let stdout = verify_clean(&world, &out);
    assert!(stdout.contains("verified 6 files: all match"), "{stdout}");

    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    run_as_of(&world, &job, &out, NOVEMBER).success();
    assert_eq!(sha256sum_down_the_tree(&out), ["2026-10", "2026-11"]);
    verify_clean(&world, &out);

    // Every report file the old SHA256SUMS listed is in October's, with the same hash.
    let old_sums = String::from_utf8_lossy(&old["SHA256SUMS"]).into_owned();
    let october_sums = std::fs::read_to_string(out.join("2026-10/SHA256SUMS")).unwrap();
    let mut report_files = 0;
    for line in old_sums.lines().filter(|l| l.contains("  2026-10/")) {
        let moved = line.replacen("  2026-10/", "  ", 1);
        assert!(october_sums.contains(&moved), "{moved} in\n{october_sums}");
        report_files += 1;
    }
    assert_eq!(report_files, 5);
    // October's billing.csv is the old one, its sources now named from the period folder.
    let billing = std::fs::read_to_string(out.join("2026-10/billing.csv")).unwrap();
    let old_billing = String::from_utf8_lossy(&old["billing.csv"]).replace(",2026-10/", ",");
    assert_eq!(billing, old_billing);
    // The old root records are kept, not lost.
    for name in ["SHA256SUMS", "manifest.json", "summary.md", "billing.csv"] {
        assert_eq!(
            std::fs::read(out.join(".acronis-reports/legacy").join(name)).unwrap(),
            old[name],
            "{name}"
        );
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("upgraded from the single-run layout"),
        "{summary}"
    );
}

#[test]
fn compare_prints_the_changes_between_two_periods() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    let out = world.out();
    run_as_of(&world, &job, &out, OCTOBER).success();
    run_as_of(&world, &job, &out, NOVEMBER).success();
    let compare = |format: &str| {
        let assert = world
            .cmd()
            .arg("compare")
            .arg(&out)
            .args(["--from", "2026-10", "--to", "2026-11", "--format", format])
            .assert()
            .success();
        String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
    };
    let markdown = compare("markdown");
    let section = std::fs::read_to_string(out.join("2026-11/summary.md")).unwrap();
    assert!(
        section.contains(&markdown),
        "the summary's section is compare's"
    );
    insta::assert_snapshot!("compare_markdown", markdown);
    insta::assert_snapshot!("compare_csv", compare("csv"));

    let missing = world
        .cmd()
        .arg("compare")
        .arg(&out)
        .args(["--from", "2026-09", "--to", "2026-11"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&missing.get_output().stderr).into_owned();
    assert!(stderr.contains("no period 2026-09"), "{stderr}");
    assert!(stderr.contains("2026-10, 2026-11"), "{stderr}");
}

/// A trail changed after it was sealed is never sealed anew: the run refuses (a record or a
/// seal changed) or leaves the period as it is (a report file changed), and `verify` still
/// names the change.
#[test]
fn a_tampered_trail_is_not_sealed_again() {
    let world = World::quick();
    let both = world.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    let out = world.out();
    run_as_of(&world, &both, &out, OCTOBER).success();
    let acme_only = world.job(&job_text(&[(ACME, "acme")], ""));
    let clean = snapshot(&out);

    // A report file forged, and its line in the period's record with it.
    let forged = out.join("2026-10/globex/usage_summary.csv_v2_0.csv");
    std::fs::write(&forged, "forged\n").unwrap();
    let record = out.join("2026-10/manifest.json");
    let text = std::fs::read_to_string(&record).unwrap();
    let real = &clean["2026-10/globex/usage_summary.csv_v2_0.csv"];
    let text = text.replace(&sha256_hex(real), &sha256_hex(b"forged\n"));
    std::fs::write(&record, text).unwrap();
    let refused = run_as_of(&world, &acme_only, &out, OCTOBER).code(2);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(stderr.contains("changed after it was sealed"), "{stderr}");
    world.cmd().arg("verify").arg(&out).assert().code(1);

    // The report file alone: the period is not rewritten over it.
    std::fs::write(&record, &clean["2026-10/manifest.json"]).unwrap();
    let failed = world
        .cmd()
        .arg("run")
        .arg(&acme_only)
        .arg("--out")
        .arg(&out)
        .args(["--as-of", OCTOBER, "--fresh"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    assert!(
        stderr.contains("is no longer what it recorded") && stderr.contains("restore the file"),
        "{stderr}"
    );
    let verify = world.cmd().arg("verify").arg(&out).assert().code(1);
    let stdout = String::from_utf8_lossy(&verify.get_output().stdout).into_owned();
    assert!(
        stdout.contains("changed: 2026-10/globex/usage_summary.csv_v2_0.csv"),
        "{stdout}"
    );

    // No root seal in a trail: refused rather than sealed anew over whatever is there.
    std::fs::write(&forged, real).unwrap();
    std::fs::remove_file(out.join("SHA256SUMS")).unwrap();
    run_as_of(&world, &acme_only, &out, OCTOBER).code(2);
}

/// A month whose report failed for a tenant does not show that tenant (and the customers its
/// report covers) as vanished: the period's own record says the report failed.
#[test]
fn a_failed_report_is_not_compared_as_a_tenant_that_left() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme"), (GLOBEX, "globex")], ""));
    let out = world.out();
    run_as_of(&world, &job, &out, OCTOBER).success();
    let mut scenario = quick_scenario();
    scenario.tenants.insert(
        ACME.to_owned(),
        acronis_reports_sandbox::TenantBehaviour {
            fail: true,
            ..Default::default()
        },
    );
    let failing = World::new(scenario);
    run_as_of(&failing, &job, &out, NOVEMBER).code(1);
    let summary = std::fs::read_to_string(out.join("2026-11/summary.md")).unwrap();
    let section = summary
        .split("## Changes since 2026-10")
        .nth(1)
        .unwrap_or_else(|| panic!("no changes section:\n{summary}"));
    assert!(section.contains("The report of acme failed"), "{section}");
    assert!(
        !section.contains("| acme |"),
        "acme listed as vanished:\n{section}"
    );
    assert!(!section.contains("### Vanished tenants"), "{section}");
}
