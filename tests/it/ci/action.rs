//! The action run end to end: a clean job, a failing report, a shard, exit code two, inputs.

use super::runner::*;
use super::*;

#[cfg(unix)]
#[test]
fn the_action_runs_a_clean_job_with_a_prebuilt_binary() {
    let world = World::scratch();
    let job = fixture("ok.yml");
    let scenario = fixture("quick-scenario.yml");
    let steps = run_action(
        &world,
        &[
            ("job-file", &job),
            ("output-dir", "billing reports"),
            ("as-of", AS_OF),
            ("sandbox", "true"),
            ("sandbox-scenario", &scenario),
        ],
        &[("ACRONIS_CLIENT_SECRET", SECRET)],
    );

    // The binary on PATH is the one to use: nothing is downloaded or built.
    let plan = &steps["plan"];
    assert_eq!(plan.exit_code, 0, "{}", plan.log);
    assert_eq!(plan.outputs["mode"], "present", "{}", plan.log);
    assert!(
        plan.outputs["cache-key"].starts_with(&format!(
            "acronis-reports-{}-{}-{}-",
            env!("CARGO_PKG_VERSION"),
            runner_platform().0,
            runner_platform().1
        )),
        "{:?}",
        plan.outputs
    );
    assert!(!steps["cache"].ran && !steps["upload"].ran && !steps["attest"].ran);
    let install = &steps["install"];
    assert_eq!(install.exit_code, 0, "{}", install.log);
    assert_eq!(
        fs::canonicalize(&install.outputs["bin"]).unwrap(),
        fs::canonicalize(BIN).unwrap()
    );

    let run = &steps["run"];
    assert_eq!(run.exit_code, 0, "{}", run.log);
    assert_eq!(
        run.log.lines().next(),
        Some(format!("::add-mask::{SECRET}").as_str()),
        "masking comes first: {}",
        run.log
    );
    assert_eq!(run.log.matches(SECRET).count(), 1, "{}", run.log);
    assert!(!run.log.contains("::error") && !run.log.contains("::notice"));
    let outputs = &run.outputs;
    assert_eq!(outputs["output-dir"], "billing reports");
    assert_eq!(outputs["manifest"], "billing reports/manifest.json");
    assert_eq!(outputs["checksums"], "billing reports/SHA256SUMS");
    assert_eq!(outputs["reports-ok"], "2");
    assert_eq!(outputs["reports-failed"], "0");
    assert_eq!(outputs["exit-code"], "0");
    assert_eq!(outputs["artifact-name"], "acronis-reports-selftest-4242-2");
    let workspace = world.path("workspace");
    // The root lists the period's seal and the root records; the period its four report
    // files, billing.csv, manifest.json and summary.md.
    let sums = read(&workspace.join(&outputs["checksums"]));
    let names: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    assert_eq!(
        names,
        ["2026-10/SHA256SUMS", "manifest.json", "summary.md"],
        "{sums}"
    );
    let period = read(&workspace.join("billing reports/2026-10/SHA256SUMS"));
    assert_eq!(period.lines().count(), 7, "{period}");
    assert!(period.contains("  billing.csv\n"), "{period}");
    assert!(run.summary.len() < 1024 * 1024);
    assert!(
        run.summary.contains("**2 of 2 reports ok**"),
        "{}",
        run.summary
    );
    assert_eq!(
        run.summary,
        read(&workspace.join("billing reports/summary.md"))
    );
}

#[cfg(unix)]
#[test]
fn the_action_fails_the_step_when_a_report_fails_and_still_reports() {
    let world = World::scratch();
    let job = fixture("failing.yml");
    let scenario = fixture("failing-scenario.yml");
    let steps = run_action(
        &world,
        &[
            ("job-file", &job),
            ("as-of", AS_OF),
            ("sandbox", "true"),
            ("sandbox-scenario", &scenario),
            ("artifact-name", "billing/2026:10"),
        ],
        &[],
    );
    let run = &steps["run"];
    assert_eq!(run.exit_code, 1, "{}", run.log);
    let outputs = &run.outputs;
    assert_eq!(outputs["exit-code"], "1");
    assert_eq!(outputs["reports-ok"], "2");
    assert_eq!(outputs["reports-failed"], "1");
    // The job file's output.dir, relative to the workspace.
    assert_eq!(outputs["output-dir"], "billing-reports");
    assert_eq!(
        outputs["artifact-name"], "billing-2026-10-selftest-4242-2",
        "names lose the characters artifacts refuse"
    );
    // Every credential the run derives or fetches (the Basic value, the token) is masked.
    assert!(
        run.log
            .lines()
            .filter(|l| l.starts_with("::add-mask::"))
            .count()
            >= 2,
        "{}",
        run.log
    );
    // Workflow commands other than the masks and the `::group::Reports` … `::endgroup::` around
    // the run's lines.
    let annotations: Vec<&str> = run
        .log
        .lines()
        .filter(|l| {
            l.starts_with("::")
                && !l.starts_with("::group::")
                && !l.starts_with("::add-mask::")
                && *l != "::endgroup::"
        })
        .collect();
    assert_eq!(annotations.len(), 1, "{}", run.log);
    assert!(
        annotations[0].starts_with("::error title=initech · 2026-10%3A report failed::"),
        "{}",
        run.log
    );
    assert!(run.summary.contains("1 failed"), "{}", run.summary);
}

#[cfg(unix)]
#[test]
fn the_action_runs_one_shard_under_its_own_artifact_name() {
    let world = World::scratch();
    let job = fixture("ok.yml");
    let scenario = fixture("quick-scenario.yml");
    let steps = run_action(
        &world,
        &[
            ("job-file", &job),
            ("as-of", AS_OF),
            ("shard", "2/2"),
            ("sandbox", "true"),
            ("sandbox-scenario", &scenario),
        ],
        &[],
    );
    let run = &steps["run"];
    assert_eq!(run.exit_code, 0, "{}", run.log);
    assert_eq!(run.outputs["reports-ok"], "1", "{}", run.log);
    assert_eq!(
        run.outputs["artifact-name"],
        "acronis-reports-selftest-4242-2-shard-2-of-2"
    );
}

#[cfg(unix)]
#[test]
fn the_action_passes_on_exit_code_two_when_nothing_was_attempted() {
    let world = World::scratch();
    let steps = run_action(
        &world,
        &[("job-file", "no-such-job.yml"), ("sandbox", "true")],
        &[],
    );
    let run = &steps["run"];
    assert_eq!(run.exit_code, 2, "{}", run.log);
    assert_eq!(run.outputs["exit-code"], "2");
    assert!(!run.outputs.contains_key("output-dir"), "{:?}", run.outputs);
}

#[cfg(unix)]
#[test]
fn the_action_refuses_a_sandbox_input_that_is_not_a_boolean() {
    let world = World::scratch();
    let job = fixture("ok.yml");
    let steps = run_action(&world, &[("job-file", &job), ("sandbox", "yes")], &[]);
    let run = &steps["run"];
    assert_eq!(run.exit_code, 2, "{}", run.log);
    assert!(run.log.contains("must be true or false"), "{}", run.log);
}

#[cfg(unix)]
#[test]
fn the_action_downloads_only_listed_release_assets_and_else_builds_its_own_version() {
    let world = World::scratch();
    let version = env!("CARGO_PKG_VERSION");
    let target = match runner_platform() {
        ("Linux", "X64") => "x86_64-unknown-linux-musl",
        ("Linux", "ARM64") => "aarch64-unknown-linux-musl",
        ("macOS", "X64") => "x86_64-apple-darwin",
        ("macOS", "ARM64") => "aarch64-apple-darwin",
        other => panic!("no release target for {other:?}"),
    };
    let asset = format!("acronis-reports-{version}-{target}.tar.gz");
    let digest = "0123456789abcdef".repeat(4);
    let action_dir = world.path("action");
    fs::create_dir_all(&action_dir).unwrap();
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs"] {
        let to = action_dir.join(file);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(Path::new(REPO).join(file), to).unwrap();
    }
    // The committed list has no release yet; it must still parse.
    let committed = read(&Path::new(REPO).join("release-checksums.txt"));
    assert!(
        committed
            .lines()
            .all(|l| l.starts_with('#') || l.trim().is_empty())
    );
    fs::write(
        action_dir.join("release-checksums.txt"),
        format!(
            "{committed}{}  acronis-reports-0.0.1-{target}.tar.gz\n{digest}  {asset}\n",
            "f".repeat(64)
        ),
    )
    .unwrap();

    let (code, log, outputs) = run_plan_step(&world, &action_dir, "", "owner/acronis-reports");
    assert_eq!(code, 0, "{log}");
    assert_eq!(outputs["mode"], "release", "{log}");
    assert_eq!(outputs["version"], version);
    assert_eq!(outputs["asset"], asset);
    assert_eq!(outputs["asset-sha256"], digest);

    // A leading v is accepted; a local action (`uses: ./`) has no releases to download from.
    let (code, log, outputs) = run_plan_step(&world, &action_dir, &format!("v{version}"), "");
    assert_eq!(code, 0, "{log}");
    assert_eq!(outputs["mode"], "source", "{log}");
    assert!(outputs["install-dir"].ends_with(&format!("acronis-reports-{version}")));

    // Another version with no listed asset cannot be built from this source.
    let (code, log, outputs) = run_plan_step(&world, &action_dir, "9.9.9", "owner/acronis-reports");
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("::error title=acronis-reports::version 9.9.9"),
        "{log}"
    );
    assert!(outputs.is_empty());
    let (code, log, _) = run_plan_step(&world, &action_dir, "../1.0.0", "owner/acronis-reports");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("must be a version"), "{log}");
}

#[test]
fn action_yml_pins_its_actions_and_declares_every_output() {
    let action = yaml("action.yml");
    for step in action["runs"]["steps"].as_array().unwrap() {
        if let Some(uses) = step.get("uses").and_then(Value::as_str) {
            let (_, reference) = uses.split_once('@').expect("uses: owner/repo@ref");
            assert!(
                reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
                "{uses} is not pinned to a commit"
            );
        }
    }
    let outputs = action["outputs"].as_object().unwrap();
    for name in [
        "output-dir",
        "manifest",
        "checksums",
        "reports-ok",
        "reports-failed",
        "exit-code",
    ] {
        assert_eq!(
            outputs[name]["value"],
            format!("${{{{ steps.run.outputs.{name} }}}}"),
            "{name}"
        );
    }
    for name in [
        "job-file",
        "output-dir",
        "as-of",
        "base-url",
        "shard",
        "sandbox",
        "upload-artifact",
        "artifact-name",
        "retention-days",
        "attest",
        "version",
    ] {
        assert!(action["inputs"].get(name).is_some(), "input {name}");
    }
    // The upload happens after a failed run too.
    let upload = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "upload")
        .unwrap();
    assert!(upload["if"].as_str().unwrap().contains("!cancelled()"));
}
