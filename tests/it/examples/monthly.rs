//! examples/github-monthly.yml and its running twin .github/workflows/monthly-billing.yml.

use super::*;

/// The workflow's text without its leading comment block.
fn without_header(text: &str) -> &str {
    let start = text.find("\nname: ").expect("a name after the header") + 1;
    &text[start..]
}

#[test]
fn the_monthly_example_is_our_monthly_workflow_with_the_action_pinned() {
    let ours = read(&Path::new(REPO).join(".github/workflows/monthly-billing.yml"));
    let example = read(&Path::new(REPO).join("examples/github-monthly.yml"));
    let (ours, example) = (without_header(&ours), without_header(&example));
    let ours_lines: Vec<&str> = ours.lines().collect();
    let example_lines: Vec<&str> = example.lines().collect();
    assert_eq!(ours_lines.len(), example_lines.len());
    let differences: Vec<(&str, &str)> = ours_lines
        .iter()
        .zip(&example_lines)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (*a, *b))
        .collect();
    assert_eq!(
        differences,
        [
            (
                "  JOB_FILE: examples/monthly.yml",
                "  JOB_FILE: billing.yml"
            ),
            (
                "        uses: ./",
                "        uses: OWNER/acronis-reports@0000000000000000000000000000000000000000 # v0.1.0"
            ),
        ]
    );
}

#[test]
fn the_monthly_workflows_keep_credentials_and_write_access_in_different_jobs() {
    for path in [
        ".github/workflows/monthly-billing.yml",
        "examples/github-monthly.yml",
    ] {
        let workflow = yaml(path);
        assert_eq!(workflow["permissions"], serde_json::json!({}), "{path}");
        let jobs = workflow["jobs"].as_object().unwrap();
        let with_secrets: Vec<&String> = jobs
            .iter()
            .filter(|(_, job)| job.to_string().contains("secrets."))
            .map(|(id, _)| id)
            .collect();
        let writers: Vec<&String> = jobs
            .iter()
            .filter(|(_, job)| {
                job["permissions"]
                    .as_object()
                    .expect("every job declares its permissions")
                    .values()
                    .any(|level| level == "write")
                    && job["permissions"]["contents"] == "write"
            })
            .map(|(id, _)| id)
            .collect();
        assert_eq!(with_secrets, ["reports"], "{path}");
        assert_eq!(writers, ["trail"], "{path}");
        let reports = &jobs["reports"];
        assert_eq!(reports["environment"], "billing", "{path}");
        assert_eq!(
            reports["permissions"],
            serde_json::json!({"contents": "read", "id-token": "write", "attestations": "write"}),
            "{path}"
        );
        let trail = &jobs["trail"];
        assert_eq!(
            trail["permissions"],
            serde_json::json!({"contents": "write"}),
            "{path}"
        );
        assert!(trail.get("environment").is_none(), "{path}");
        assert_eq!(needs(trail), ["reports"], "{path}");
        assert!(
            trail["if"].as_str().unwrap().contains("!cancelled()"),
            "{path}"
        );
        // The writer runs only GitHub's own checkout and download.
        for step in trail["steps"].as_array().unwrap() {
            if let Some(uses) = step["uses"].as_str() {
                assert!(
                    uses.starts_with("actions/checkout@")
                        || uses.starts_with("actions/download-artifact@"),
                    "{path}: {uses}"
                );
            }
        }
        // The action attests and writes into the trail.
        let action = reports["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "reports")
            .unwrap();
        assert_eq!(action["with"]["output-dir"], "${{ env.TRAIL }}");
        assert_eq!(workflow["env"]["TRAIL"], "billing-reports");
        assert!(action["with"]["attest"].is_string());
        for (job, step) in steps(&workflow) {
            if let Some(uses) = step["uses"].as_str() {
                if uses == "./" {
                    assert_eq!(path, ".github/workflows/monthly-billing.yml");
                    continue;
                }
                let (_, reference) = uses.split_once('@').expect("owner/repo@ref");
                assert!(is_commit_sha(reference), "{path}: {job}: {uses}");
                if uses.starts_with("actions/checkout@") {
                    assert_eq!(step["with"]["persist-credentials"], false, "{path}: {job}");
                }
            }
            if let Some(run) = step["run"].as_str() {
                assert!(!run.contains("${{"), "{path}: {job}: {run}");
            }
        }
    }
    // The copy for users' repositories names the release it pins.
    let example = read(&Path::new(REPO).join("examples/github-monthly.yml"));
    assert!(
        example.lines().any(|l| l.trim()
            == "uses: OWNER/acronis-reports@0000000000000000000000000000000000000000 # v0.1.0"),
        "{example}"
    );
}

/// `git` in `dir` with a hermetic environment; panics unless it succeeds; returns its stdout.
fn git(dir: &Path, args: &[&str], home: &Path) -> String {
    let output = Command::new("git")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[cfg(unix)]
#[test]
fn the_monthly_trail_job_commits_the_periods_records_and_a_root_that_checks() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let identity = [
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
    ];

    // The billing repository after September's run: the trail's records of 2026-09.
    let origin = scratch.path().join("origin.git");
    git(
        scratch.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "origin.git",
        ],
        &home,
    );
    let seed = scratch.path().join("seed");
    let september = scratch.path().join("september");
    write_trail(&september, &["2026-09"]);
    let records = |period: &str| -> Vec<String> {
        [
            format!("{period}/SHA256SUMS"),
            format!("{period}/manifest.json"),
            format!("{period}/billing.csv"),
            "SHA256SUMS".to_owned(),
            "manifest.json".to_owned(),
            "summary.md".to_owned(),
        ]
        .to_vec()
    };
    for file in records("2026-09") {
        let to = seed.join("billing-reports").join(&file);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(september.join(&file), to).unwrap();
    }
    git(
        scratch.path(),
        &["init", "--quiet", "--initial-branch=main", "seed"],
        &home,
    );
    git(&seed, &["add", "."], &home);
    git(
        &seed,
        &[
            identity.as_slice(),
            &["commit", "--quiet", "-m", "September"],
        ]
        .concat(),
        &home,
    );
    git(
        &seed,
        &["push", "--quiet", origin.to_str().unwrap(), "main"],
        &home,
    );

    // October's run, as its artifact holds it: September's committed records (the run wrote into
    // the checked-out trail) and all of October, with a root that lists both periods.
    let artifact = scratch.path().join("artifact");
    write_trail(&artifact, &["2026-09", "2026-10"]);
    for file in [
        "acme/usage_summary.csv_v2_0.csv",
        "globex/usage_summary.csv_v2_0.csv",
        "summary.md",
    ] {
        fs::remove_file(artifact.join("2026-09").join(file)).unwrap();
    }

    let workflow = yaml("examples/github-monthly.yml");
    let step = workflow["jobs"]["trail"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["run"].is_string())
        .expect("the commit step");
    let workspace = scratch.path().join("workspace");
    git(
        scratch.path(),
        &["clone", "--quiet", origin.to_str().unwrap(), "workspace"],
        &home,
    );
    let env: Vec<(String, String)> = [
        ("REPORTS", artifact.display().to_string()),
        ("PERIOD", "2026-10".to_owned()),
        ("TRAIL", text(&workflow["env"]["TRAIL"])),
        ("GITHUB_TOKEN", "not-a-real-token".to_owned()),
        ("GITHUB_REF_NAME", "main".to_owned()),
        ("GITHUB_RUN_ID", "4242".to_owned()),
        ("GIT_CONFIG_NOSYSTEM", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let script = step["run"].as_str().unwrap();
    let (code, log) = bash(script, &workspace, &env, scratch.path());
    assert_eq!(code, 0, "{log}");

    // Exactly October's records and the new root went in; no report file.
    let changed = git(
        &origin,
        &["diff-tree", "--no-commit-id", "--name-only", "-r", "main"],
        &home,
    );
    let mut expected: Vec<String> = records("2026-10")
        .iter()
        .map(|f| format!("billing-reports/{f}"))
        .collect();
    expected.sort();
    let mut changed: Vec<&str> = changed.lines().collect();
    changed.sort();
    assert_eq!(changed, expected, "{log}");
    let subject = git(&origin, &["log", "-1", "--format=%s", "main"], &home);
    assert_eq!(subject.trim(), "Billing audit trail: 2026-10 (run 4242)");

    // A fresh clone checks from the root down to each period's SHA256SUMS.
    git(
        scratch.path(),
        &["clone", "--quiet", origin.to_str().unwrap(), "auditor"],
        &home,
    );
    let (code, log) = bash(
        "cd billing-reports && sha256sum -c --strict SHA256SUMS\n",
        &scratch.path().join("auditor"),
        &[],
        scratch.path(),
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(log.matches(": OK").count(), 4, "{log}");

    // The same records again: nothing to commit.
    let before = git(&origin, &["rev-parse", "main"], &home);
    let (code, log) = bash(script, &workspace, &env, scratch.path());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("are unchanged"), "{log}");
    assert_eq!(git(&origin, &["rev-parse", "main"], &home), before);

    // A run that delivered nothing of the period commits nothing and says why.
    fs::remove_dir_all(artifact.join("2026-10")).unwrap();
    let (code, log) = bash(script, &workspace, &env, scratch.path());
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("the reports hold no 2026-10/SHA256SUMS"),
        "{log}"
    );
    assert_eq!(git(&origin, &["rev-parse", "main"], &home), before);
}
