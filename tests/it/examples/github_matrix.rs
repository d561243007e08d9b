//! examples/github-matrix.yml: its structure (matrix, merge job, pinned actions, no `${{ }}` in
//! scripts, least privilege), and its merge step run with bash over shard artifacts.

use super::*;

/// Does `name` match the glob `pattern` (`*` only, as in the artifact patterns used here)?
fn glob_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len())
                    .any(|skip| glob_matches(tail, &name[head.len() + skip..]))
        }
    }
}

/// The matrix job: its id and its shard numbers.
fn matrix_job(workflow: &Value) -> (String, Vec<u64>) {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    let mut found = jobs.iter().filter_map(|(id, job)| {
        let shards = job["strategy"]["matrix"]["shard"].as_array()?;
        Some((
            id.clone(),
            shards
                .iter()
                .map(|n| n.as_u64().expect("shard numbers"))
                .collect::<Vec<_>>(),
        ))
    });
    let found_one = found.next().expect("a job with strategy.matrix.shard");
    assert!(found.next().is_none(), "one matrix job");
    found_one
}

/// The step of `job` whose `uses:` starts with `prefix`.
fn step_using<'a>(workflow: &'a Value, job: &str, prefix: &str) -> &'a Value {
    let mut found = workflow["jobs"][job]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(prefix)));
    let step = found
        .next()
        .unwrap_or_else(|| panic!("{job} uses {prefix}"));
    assert!(found.next().is_none(), "{job} uses {prefix} once");
    step
}

#[test]
fn the_github_matrix_example_shards_merges_and_pins_everything() {
    let workflow = yaml("examples/github-matrix.yml");
    assert_eq!(workflow["permissions"], serde_json::json!({}));

    // A matrix of shards 1..=N …
    let (matrix, shards) = matrix_job(&workflow);
    assert!(shards.len() >= 2, "{shards:?}");
    assert_eq!(shards, (1..=shards.len() as u64).collect::<Vec<_>>());
    let matrix_job = &workflow["jobs"][&matrix];
    assert_eq!(matrix_job["strategy"]["fail-fast"], false);
    let action = step_using(&workflow, &matrix, "OWNER/acronis-reports@");
    assert_eq!(
        action["with"]["shard"],
        "${{ matrix.shard }}/${{ strategy.job-total }}"
    );
    assert_eq!(
        action["with"]["upload-artifact"],
        Value::Null,
        "default: true"
    );
    for secret in ["ACRONIS_CLIENT_ID", "ACRONIS_CLIENT_SECRET"] {
        assert_eq!(
            action["env"][secret],
            format!("${{{{ secrets.{secret} }}}}"),
            "{secret} from the step's env"
        );
    }

    // … then a merge job that waits for all of them, and runs also when one failed.
    let merge = &workflow["jobs"]["merge"];
    assert!(needs(merge).contains(&matrix), "{:?}", needs(merge));
    assert!(
        merge["if"]
            .as_str()
            .expect("merge if")
            .contains("!cancelled()"),
        "{}",
        merge["if"]
    );
    let merge_run = merge["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|run| run.contains("acronis-reports merge"))
        .expect("the merge job runs acronis-reports merge");
    assert!(merge_run.contains("--out billing-reports"), "{merge_run}");
    step_using(&workflow, "merge", "actions/download-artifact@");
    let uploads = workflow["jobs"]["merge"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        });
    assert!(
        uploads
            .filter(|s| s["with"]["path"] == "billing-reports")
            .all(|s| s["if"].as_str().unwrap().contains("!cancelled()")),
    );
    assert!(
        workflow["jobs"]["merge"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["with"]["path"] == "billing-reports"),
        "the merge job uploads the merged folder"
    );

    // The merge job's binary comes from the same commit of the action, installed only.
    let install = step_using(&workflow, "merge", "OWNER/acronis-reports@");
    assert_eq!(install["uses"], action["uses"]);
    assert_eq!(install["with"]["install-only"], true);
    assert_eq!(
        install["with"].as_object().unwrap().len(),
        1,
        "{}",
        install["with"]
    );

    // The audit checksums are committed by a job that may write and runs nothing else.
    let writers: Vec<&String> = workflow["jobs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, job)| job["permissions"]["contents"] == "write")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(writers.len(), 1, "{writers:?}");
    let audit = &workflow["jobs"][writers[0].as_str()];
    let audit_run: String = audit["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(audit_run.contains("cp \"$AUDIT_DIR/SHA256SUMS\" \"$AUDIT_DIR/manifest.json\""));
    assert!(audit_run.contains("dest=\"audit/$PERIOD\""), "{audit_run}");
    assert!(audit["if"].as_str().unwrap().contains("!cancelled()"));

    // Least privilege, pinned actions, credentials kept out of git, no expressions in scripts.
    for (id, job) in workflow["jobs"].as_object().unwrap() {
        assert!(
            job["permissions"].is_object(),
            "{id} declares its permissions"
        );
        for (scope, level) in job["permissions"].as_object().unwrap() {
            assert!(
                matches!(scope.as_str(), "contents")
                    && matches!(text(level).as_str(), "read" | "write"),
                "{id}: {scope}: {level}"
            );
        }
    }
    for (job, step) in steps(&workflow) {
        if let Some(uses) = step["uses"].as_str() {
            let (_, reference) = uses.split_once('@').expect("uses: owner/repo@ref");
            assert!(
                is_commit_sha(reference),
                "{job}: {uses} is not pinned to a commit"
            );
            if uses.starts_with("actions/checkout@") {
                assert_eq!(step["with"]["persist-credentials"], false, "{job}: {step}");
            }
        }
        if let Some(run) = step["run"].as_str() {
            assert!(
                !run.contains("${{"),
                "{job}: an expression in a script:\n{run}"
            );
        }
    }
}

/// The example's merge step, run by bash over shard artifacts as actions/download-artifact lays
/// them out (`path: shards`, one folder per artifact, named as the action names them), with a
/// stale earlier attempt of one shard (as "Re-run failed jobs" leaves it) that must be ignored.
fn run_github_merge_step(failing: Option<&str>) -> (tempfile::TempDir, i32, String) {
    let scratch = tempfile::tempdir().unwrap();
    let expected = unsharded_checksums(scratch.path(), failing);

    let workflow = yaml("examples/github-matrix.yml");
    let (matrix, shards) = matrix_job(&workflow);
    let total = shards.len();
    let (run_id, attempt) = ("4242", 10);
    let evaluate = |expression: &str| -> String {
        match expression {
            "needs.period.outputs.period" => PERIOD.to_owned(),
            "github.run_id" => run_id.to_owned(),
            other => panic!("unexpected expression {other}"),
        }
    };
    let action = step_using(&workflow, &matrix, "OWNER/acronis-reports@");
    let prefix = substitute(action["with"]["artifact-name"].as_str().unwrap(), &evaluate);
    let download = step_using(&workflow, "merge", "actions/download-artifact@");
    let pattern = substitute(download["with"]["pattern"].as_str().unwrap(), &evaluate);
    let downloads = download["with"]["path"].as_str().expect("download path");
    // As the action names a shard's artifact (see action.yml, step "run").
    let artifact = |shard: usize, attempt: u32| {
        format!("{prefix}-{matrix}-{run_id}-{attempt}-shard-{shard}-of-{total}")
    };

    // The shards, side by side like the matrix, against one sandbox.
    let project = scratch.path().join("workspace");
    fs::create_dir_all(project.join(downloads)).unwrap();
    fs::write(scratch.path().join("billing.yml"), job_text()).unwrap();
    let server = server(failing);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (1..=total)
            .map(|shard| {
                let out = project.join(downloads).join(artifact(shard, attempt));
                let mut cmd = hermetic(BIN);
                cmd.current_dir(scratch.path())
                    .envs(server.credentials())
                    .args(["run", "billing.yml", "--as-of", AS_OF, "--ci", "none"])
                    .arg("--out")
                    .arg(&out)
                    .args(["--shard", &format!("{shard}/{total}")]);
                let scratch = scratch.path();
                scope.spawn(move || run_logged(&mut cmd, scratch))
            })
            .collect();
        for run in runs {
            let (code, log) = run.join().unwrap();
            assert!(code <= 1, "{log}");
        }
    });
    drop(server);
    for shard in 1..=total {
        let name = artifact(shard, attempt);
        assert!(
            glob_matches(&pattern, &name),
            "{pattern} does not match {name}"
        );
        // actions/upload-artifact leaves hidden files out: no resume journal in the artifact.
        let dir = project.join(downloads).join(&name);
        fs::remove_dir_all(dir.join(".acronis-reports")).unwrap();
    }
    // An earlier attempt of shard 2, whose files no longer match its SHA256SUMS: taking it
    // would make merge refuse.
    let stale = project.join(downloads).join(artifact(2, 2));
    copy_tree(&project.join(downloads).join(artifact(2, attempt)), &stale);
    let manifest: Value = serde_json::from_str(&read(&stale.join("manifest.json"))).unwrap();
    let file = manifest["reports"][0]["files"][0]["path"].as_str().unwrap();
    fs::write(stale.join(file), "tampered").unwrap();

    let step = workflow["jobs"]["merge"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "merge")
        .expect("the merge step");
    let mut env: Vec<(String, String)> = step["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), substitute(&text(v), &evaluate)))
        .collect();
    let github_output = scratch.path().join("github_output");
    let step_summary = scratch.path().join("step_summary");
    fs::write(&github_output, "").unwrap();
    env.extend([
        ("GITHUB_ACTIONS".to_owned(), "true".to_owned()),
        ("GITHUB_RUN_ID".to_owned(), run_id.to_owned()),
        ("GITHUB_RUN_ATTEMPT".to_owned(), attempt.to_string()),
        (
            "GITHUB_OUTPUT".to_owned(),
            github_output.display().to_string(),
        ),
        (
            "GITHUB_STEP_SUMMARY".to_owned(),
            step_summary.display().to_string(),
        ),
    ]);
    let (code, log) = bash(
        step["run"].as_str().unwrap(),
        &project,
        &env,
        scratch.path(),
    );

    let outputs = parse_github_output(&read(&github_output));
    assert_eq!(
        outputs.get("merged").map(String::as_str),
        Some("true"),
        "{log}"
    );
    assert_eq!(
        outputs["artifact"],
        format!("billing-{PERIOD}-{run_id}-{attempt}")
    );
    let merged = project.join("billing-reports");
    assert_verifies(&merged, scratch.path());
    assert_eq!(file_sums(&merged), expected);
    assert_eq!(
        read(&step_summary),
        read(&merged.join("summary.md")),
        "{log}"
    );
    (scratch, code, log)
}

#[cfg(unix)]
#[test]
fn the_github_matrix_merge_step_merges_the_latest_attempt_of_every_shard() {
    let (_scratch, code, log) = run_github_merge_step(None);
    assert_eq!(code, 0, "{log}");
}

#[cfg(unix)]
#[test]
fn the_github_matrix_merge_step_merges_and_fails_when_a_report_failed() {
    let failing = tenants()[3].0.clone();
    let (_scratch, code, log) = run_github_merge_step(Some(&failing));
    assert_eq!(code, 1, "{log}");
}
