//! The README's commands and examples work as written.

use std::path::Path;

use assert_cmd::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The fenced blocks of one language, in order.
fn blocks(text: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l == format!("```{language}") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn binary() -> Command {
    let mut cmd = Command::cargo_bin("acronis-reports").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn readme_opens_with_the_run_and_test_commands() {
    let text = readme();
    let first = blocks(&text, "sh")
        .into_iter()
        .next()
        .expect("a first sh block");
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines[0].starts_with("cargo run --release -- run examples/monthly.yml --sandbox"),
        "{first}"
    );
    assert!(lines[1].starts_with("cargo test --locked"), "{first}");
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test --locked"),
        ".ci/run runs the README's test command"
    );
}

#[test]
fn the_first_command_runs_the_example_job_against_the_sandbox() {
    // `cargo run --release -- run examples/monthly.yml --sandbox`, with the built binary and a
    // quick sandbox so the test stays fast.
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::copy(
        root.join("examples/monthly.yml"),
        dir.path().join("examples/monthly.yml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("quick.yml"), "generation_delay: 100ms\n").unwrap();
    binary()
        .current_dir(dir.path())
        .args([
            "run",
            "examples/monthly.yml",
            "--sandbox",
            "--sandbox-scenario",
            "quick.yml",
        ])
        .assert()
        .success();
    binary()
        .current_dir(dir.path())
        .args(["verify", "billing-reports"])
        .assert()
        .success();
}

#[test]
fn every_job_file_in_the_readme_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<String> = blocks(&readme(), "yaml")
        .into_iter()
        .filter(|b| b.lines().any(|l| l == "version: 1"))
        .collect();
    assert!(!jobs.is_empty());
    for (i, job) in jobs.iter().enumerate() {
        let path = dir.path().join(format!("job{i}.yml"));
        std::fs::write(&path, job).unwrap();
        binary()
            .args(["validate", "--as-of", "2026-11-27"])
            .arg(&path)
            .assert()
            .success();
    }
}

#[test]
fn the_sandbox_scenario_in_the_readme_loads() {
    let scenarios: Vec<String> = blocks(&readme(), "yaml")
        .into_iter()
        .filter(|b| b.starts_with("generation_delay"))
        .collect();
    assert!(!scenarios.is_empty());
    for scenario in scenarios {
        acronis_reports_sandbox::Scenario::from_yaml_str(&scenario).unwrap();
    }
}

/// Runs `job` (a README example) with `run --sandbox` as a user would, with a quick sandbox, and
/// returns the manifest.
fn run_against_the_sandbox(job: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("job.yml"), job).unwrap();
    std::fs::write(dir.path().join("quick.yml"), "generation_delay: 100ms\n").unwrap();
    binary()
        .current_dir(dir.path())
        .args([
            "run",
            "job.yml",
            "--sandbox",
            "--sandbox-scenario",
            "quick.yml",
        ])
        .args(["--as-of", "2026-11-27", "--out", "out"])
        .assert()
        .success();
    let manifest = std::fs::read_to_string(dir.path().join("out/manifest.json")).unwrap();
    serde_json::from_str(&manifest).unwrap()
}

#[test]
fn every_job_file_in_the_readme_runs_against_the_sandbox() {
    let jobs: Vec<String> = blocks(&readme(), "yaml")
        .into_iter()
        .filter(|b| b.lines().any(|l| l == "version: 1"))
        .collect();
    assert!(!jobs.is_empty());
    for job in jobs {
        let manifest = run_against_the_sandbox(&job);
        let reports = manifest["reports"].as_array().unwrap();
        assert!(!reports.is_empty(), "{job}");
    }
}

#[test]
fn the_children_of_example_in_the_readme_runs_against_the_default_sandbox_tree() {
    let fragment = blocks(&readme(), "yaml")
        .into_iter()
        .find(|b| b.contains("children_of:"))
        .expect("a children_of example");
    let manifest = run_against_the_sandbox(&format!("version: 1\n{fragment}"));
    let mut names: Vec<&str> = manifest["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant_name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    // `*GmbH*`, recursive, without `Test *`, the disabled and the trial customer.
    assert_eq!(
        names,
        ["Alpenblick GmbH", "Brenner Bau GmbH", "Donau Logistik GmbH"]
    );
}

#[test]
fn the_children_of_example_in_the_readme_is_valid() {
    let fragment = blocks(&readme(), "yaml")
        .into_iter()
        .find(|b| b.contains("children_of:"))
        .expect("a children_of example");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.yml");
    std::fs::write(&path, format!("version: 1\n{fragment}")).unwrap();
    binary()
        .args(["validate", "--as-of", "2026-11-27"])
        .arg(&path)
        .assert()
        .success();
}

#[test]
fn the_readme_documents_every_field_of_the_job_file_schema() {
    fn names(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        if let Some(properties) = value.get("properties").and_then(|p| p.as_object()) {
            for (name, property) in properties {
                out.insert(name.clone());
                names(property, out);
            }
        }
        if let Some(defs) = value.get("$defs").and_then(|d| d.as_object()) {
            defs.values().for_each(|d| names(d, out));
        }
    }
    let schema = serde_json::to_value(acronis_reports::job::json_schema()).unwrap();
    let mut fields = std::collections::BTreeSet::new();
    names(&schema, &mut fields);
    assert!(fields.len() > 20, "{fields:?}");
    let text = readme();
    let undocumented: Vec<&String> = fields
        .iter()
        .filter(|f| !text.contains(&format!("{f}:")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "README lacks these job-file fields: {undocumented:?}"
    );
}
