//! examples/gitlab-ci.yml, sharded variant: every `parallel:` job, then the merge job.

use super::*;

fn rule_conditions(job: &Value) -> Vec<(String, String)> {
    job["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| {
            (
                rule["if"].as_str().expect("if").to_owned(),
                rule["when"].as_str().unwrap_or("on_success").to_owned(),
            )
        })
        .collect()
}

/// `$NAME` and `${NAME}` in an artifact path, expanded as the runner does.
fn expand(path: &str, variables: &[(String, String)]) -> String {
    let mut out = path.to_owned();
    // Longest names first: `$CI` must not eat the start of `$CI_NODE_INDEX`.
    let mut variables: Vec<&(String, String)> = variables.iter().collect();
    variables.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in variables {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    assert!(!out.contains('$'), "{path} has an unknown variable");
    out
}

/// Runs the sharded variant: every `parallel:` job in its own project folder (like jobs on
/// different runners), then the merge job in a fresh one holding the artifacts of them all, as
/// `needs: artifacts: true` extracts them. Returns the scratch folder, the merge job's project
/// folder, its exit code and log.
fn run_gitlab_sharded(failing: Option<&str>) -> (tempfile::TempDir, PathBuf, i32, String) {
    let scratch = tempfile::tempdir().unwrap();
    let expected = unsharded_checksums(scratch.path(), failing);

    let pipeline = yaml("examples/gitlab-ci.yml");
    let jobs = pipeline.as_object().unwrap();
    let (shard_name, shard_job) = jobs
        .iter()
        .find(|(_, job)| job.get("parallel").is_some())
        .expect("a job with parallel:");
    let total = shard_job["parallel"].as_u64().expect("parallel: N") as usize;
    assert!(total >= 2);
    let (_, merge_job) = jobs
        .iter()
        .find(|(_, job)| {
            job["needs"].as_array().is_some_and(|needs| {
                needs
                    .iter()
                    .any(|n| n["job"] == shard_name.as_str() && n["artifacts"] == true)
            })
        })
        .expect("a job that needs the shards' artifacts");

    // Opt-in: the sharded jobs only with SHARDED=true, the single job never then.
    for job in [shard_job, merge_job] {
        for (condition, _) in rule_conditions(job) {
            assert!(condition.contains(r#"$SHARDED == "true""#), "{condition}");
        }
    }
    assert!(
        rule_conditions(merge_job)
            .iter()
            .all(|(_, when)| when == "always"),
        "the merge job runs also after a failed shard"
    );
    assert_eq!(
        rule_conditions(&pipeline["billing-reports"])[0],
        (r#"$SHARDED == "true""#.to_owned(), "never".to_owned())
    );

    let mut variables: Vec<(String, String)> = Vec::new();
    for scope in [&pipeline["variables"], &shard_job["variables"]] {
        if let Some(map) = scope.as_object() {
            variables.extend(map.iter().map(|(k, v)| (k.clone(), text(v))));
        }
    }
    variables.push(("SHARDED".to_owned(), "true".to_owned()));
    let job_file = variables
        .iter()
        .find(|(k, _)| k == "JOB_FILE")
        .map(|(_, v)| v.clone())
        .expect("JOB_FILE");
    let ci = |project: &Path| -> Vec<(String, String)> {
        [
            ("CI", "true"),
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "schedule"),
            ("CI_PIPELINE_CREATED_AT", PIPELINE_CREATED_AT),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("CI_PROJECT_DIR".to_owned(), project.display().to_string())])
        .collect()
    };

    // The shards, one after another, against one sandbox.
    let server = server(failing);
    let merge_project = scratch.path().join("merge");
    fs::create_dir_all(&merge_project).unwrap();
    let mut junit_cases = 0;
    for index in 1..=total {
        let project = scratch.path().join(format!("shard-job-{index}"));
        fs::create_dir_all(&project).unwrap();
        fs::write(project.join(&job_file), job_text()).unwrap();
        let mut env = variables.clone();
        env.extend(ci(&project));
        env.push(("CI_NODE_INDEX".to_owned(), index.to_string()));
        env.push(("CI_NODE_TOTAL".to_owned(), total.to_string()));
        env.extend(
            server
                .credentials()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        let (code, log) = bash(&script(shard_job), &project, &env, scratch.path());
        assert!(code <= 1, "shard {index}: {log}");

        // Its artifacts, into the merge job's folder; no two shards may write the same path.
        assert_eq!(shard_job["artifacts"]["when"], "always");
        let junit = expand(
            shard_job["artifacts"]["reports"]["junit"].as_str().unwrap(),
            &env,
        );
        junit_cases += read(&project.join(junit)).matches("<testcase ").count();
        for path in shard_job["artifacts"]["paths"].as_array().unwrap() {
            let path = expand(path.as_str().unwrap(), &env);
            let path = path.trim_end_matches('/');
            let target = merge_project.join(path);
            assert!(!target.exists(), "shard {index}: {path} collides");
            copy_tree(&project.join(path), &target);
        }
    }
    drop(server);
    assert_eq!(junit_cases, TENANTS, "one JUnit test case per report");

    // The merge job: no credentials, no network.
    let mut env = variables.clone();
    env.extend(ci(&merge_project));
    let (code, log) = bash(&script(merge_job), &merge_project, &env, scratch.path());
    let merged_dir = merge_job["artifacts"]["paths"][0]
        .as_str()
        .expect("the merged folder")
        .trim_end_matches('/');
    let merged = merge_project.join(merged_dir);
    assert_verifies(&merged, scratch.path());
    assert_eq!(file_sums(&merged), expected, "{log}");
    let dotenv = merge_job["artifacts"]["reports"]["dotenv"]
        .as_str()
        .expect("dotenv");
    let outputs = parse_dotenv(&read(&merge_project.join(dotenv)));
    let failed = usize::from(failing.is_some());
    assert_eq!(outputs["ACRONIS_OUTPUT_DIR"], merged_dir);
    assert_eq!(
        outputs["ACRONIS_CHECKSUMS"],
        format!("{merged_dir}/SHA256SUMS")
    );
    assert_eq!(
        outputs["ACRONIS_REPORTS_OK"],
        (TENANTS - failed).to_string()
    );
    assert_eq!(outputs["ACRONIS_REPORTS_FAILED"], failed.to_string());
    assert_eq!(outputs["ACRONIS_EXIT_CODE"], code.to_string());
    (scratch, merge_project, code, log)
}

#[cfg(unix)]
#[test]
fn the_gitlab_sharded_variant_merges_into_the_unsharded_output() {
    let (_scratch, merge_project, code, log) = run_gitlab_sharded(None);
    assert_eq!(code, 0, "{log}");
    let manifest: Value =
        serde_json::from_str(&read(&merge_project.join("billing-reports/manifest.json"))).unwrap();
    assert_eq!(
        manifest["as_of"], AS_OF,
        "as-of from CI_PIPELINE_CREATED_AT"
    );
    assert_eq!(manifest["reports"].as_array().unwrap().len(), TENANTS);
}

#[cfg(unix)]
#[test]
fn the_gitlab_merge_job_keeps_the_good_reports_and_fails_when_a_shard_failed() {
    let failing = tenants()[6].0.clone();
    let (_scratch, _merge_project, code, log) = run_gitlab_sharded(Some(&failing));
    assert_eq!(code, 1, "{log}");
}
