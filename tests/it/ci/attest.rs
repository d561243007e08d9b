//! The one subject the action attests (the root `SHA256SUMS`), and the README's auditor recipe
//! that checks a trail from that file down.

use super::runner::*;
use super::*;

#[cfg(unix)]
#[test]
fn the_action_attests_one_subject_the_root_sha256sums() {
    let world = World::scratch();
    let job = fixture("ok.yml");
    let scenario = fixture("quick-scenario.yml");
    let steps = run_action(
        &world,
        &[
            ("job-file", &job),
            ("as-of", AS_OF),
            ("sandbox", "true"),
            ("sandbox-scenario", &scenario),
            ("attest", "true"),
        ],
        &[],
    );
    let run = &steps["run"];
    assert_eq!(run.exit_code, 0, "{}", run.log);
    let action = yaml("action.yml");
    let attest = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "attest")
        .expect("an attest step");
    assert!(
        attest["uses"]
            .as_str()
            .unwrap()
            .starts_with("actions/attest-build-provenance@")
    );
    let condition = attest["if"].as_str().unwrap();
    assert!(condition.contains("inputs.attest == 'true'"), "{condition}");
    // Exactly one subject: a path, which is the run's `checksums` output.
    let with = attest["with"].as_object().unwrap();
    assert_eq!(with.keys().collect::<Vec<_>>(), ["subject-path"]);
    let subject = substitute(with["subject-path"].as_str().unwrap(), &|e: &str| {
        let output = e
            .trim()
            .strip_prefix("steps.run.outputs.")
            .expect("from the run step");
        run.outputs[output].clone()
    });
    assert_eq!(subject, run.outputs["checksums"]);
    assert_eq!(subject, "billing-reports/SHA256SUMS");
    let path = world.path("workspace").join(&subject);
    assert!(path.is_file(), "{}", path.display());
    assert!(
        !subject.contains(['*', '\n', ',']),
        "one file, not a pattern"
    );
}

#[cfg(unix)]
#[test]
fn the_readme_auditor_recipe_checks_a_trail_from_the_attested_file_down() {
    let readme = read(&Path::new(REPO).join("README.md"));
    let block = readme
        .split("```sh\n")
        .skip(1)
        .map(|b| &b[..b.find("```").expect("block ends")])
        .find(|b| b.contains("gh attestation verify billing-reports/"))
        .expect("a sh block with the auditor's recipe");
    let lines: Vec<&str> = block
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim_end())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        [
            "gh attestation verify billing-reports/SHA256SUMS --repo OWNER/REPO",
            "(cd billing-reports && sha256sum -c --strict SHA256SUMS)",
            "(cd billing-reports/2026-10 && sha256sum -c --strict SHA256SUMS)",
        ],
        "{block}"
    );
    // `gh` needs GitHub; the rest runs as written, for every period of the trail.
    let world = World::scratch();
    let periods = ["2026-09", "2026-10"];
    write_trail(&world.path("billing-reports"), &periods);
    let check = |what: &str| -> (i32, String) {
        let mut script = lines[1].to_owned() + "\n";
        for period in periods {
            script.push_str(&lines[2].replace("2026-10", period));
            script.push('\n');
        }
        let mut cmd = hermetic("bash");
        cmd.current_dir(world.dir.path()).args([
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
            &script,
        ]);
        let (code, log) = run_logged(&mut cmd, world.dir.path());
        println!("{what}: {log}");
        (code, log)
    };
    let (code, log) = check("intact");
    assert_eq!(code, 0, "{log}");
    assert_eq!(log.matches(": OK").count(), 4 + 2 * 5, "{log}");

    // A changed report file fails its period's check …
    let report = world.path("billing-reports/2026-09/globex/usage_summary.csv_v2_0.csv");
    fs::write(&report, "tenant.id,sku\nglobex,SKU-3\n").unwrap();
    let (code, log) = check("a report changed");
    assert_ne!(code, 0, "{log}");
    assert!(
        log.contains("globex/usage_summary.csv_v2_0.csv: FAILED"),
        "{log}"
    );
    // … and a period's SHA256SUMS rewritten to match fails the root's, the attested file.
    let sums = world.path("billing-reports/2026-09/SHA256SUMS");
    let text = read(&sums).replace(
        &sha256_hex(b"tenant.id,sku\nglobex,SKU-2\n"),
        &sha256_hex(b"tenant.id,sku\nglobex,SKU-3\n"),
    );
    fs::write(&sums, text).unwrap();
    let (code, log) = check("a period's SHA256SUMS rewritten");
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("2026-09/SHA256SUMS: FAILED"), "{log}");
}
