//! The sharded CI examples, checked and run:
//! - examples/github-matrix.yml: its structure (matrix, merge job, pinned actions, no `${{ }}` in
//!   scripts, least privilege), and its merge step's script run with bash over shard artifacts laid
//!   out as actions/download-artifact would, under the names the action gives them;
//! - examples/gitlab-ci.yml, sharded variant: the `script:` lines of every `parallel:` job and then
//!   of the merge job, run with bash as written, against the sandbox on loopback.
//!
//! Both merged folders must verify and have the `SHA256SUMS` of an unsharded run of the same job.
//!
//! Also: examples/github-monthly.yml (the twin of our monthly workflow, its least privilege, and
//! its trail job committing into a local git remote), and where examples/gitlab-ci.yml gets the
//! binary (the image; or a release archive from a local server, checked against a pinned
//! SHA-256) and how its jobs cope when nothing could be attempted.

// The scripts need bash: they run on Unix only.
#![cfg_attr(not(unix), allow(dead_code))]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use acronis_reports_sandbox::{Sandbox, Scenario, TenantBehaviour};
use serde_json::Value;

use crate::support::release_server::ReleaseServer;
use crate::support::trail::{sha256_hex, write_trail};

const BIN: &str = env!("CARGO_BIN_EXE_acronis-reports");
const REPO: &str = env!("CARGO_MANIFEST_DIR");
const AS_OF: &str = "2026-11-27";
/// The pipeline's creation time that GitLab would give the jobs: its day is AS_OF.
const PIPELINE_CREATED_AT: &str = "2026-11-27T06:17:00Z";
const PERIOD: &str = "2026-10";
const POLLING: &str = "polling:\n  initial_interval: 50ms\n  max_interval: 200ms\n  timeout: 20s\n";
const TENANTS: usize = 10;

// ---------------------------------------------------------------------------------------------
// Sandboxes, job files, processes.

/// A sandbox on loopback with deterministic report ids, on its own runtime: two of them started
/// from the same scenario serve the same content, so a sharded run against one and an unsharded
/// run against the other must give the same files.
struct Server {
    runtime: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
}

impl Server {
    fn start(failing: Option<&str>) -> Self {
        let mut scenario = Scenario {
            deterministic_ids: true,
            generation_delay: Duration::from_millis(100),
            ..Scenario::default()
        };
        if let Some(id) = failing {
            scenario.tenants.insert(
                id.to_owned(),
                TenantBehaviour {
                    fail: true,
                    ..TenantBehaviour::default()
                },
            );
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime");
        let sandbox = runtime
            .block_on(Sandbox::start(scenario, 0))
            .expect("sandbox starts");
        Server {
            runtime,
            sandbox: Some(sandbox),
        }
    }

    /// The sandbox's address and credentials, as CI variables would hold them.
    fn credentials(&self) -> Vec<(&'static str, String)> {
        let sandbox = self.sandbox.as_ref().expect("sandbox running");
        vec![
            ("ACRONIS_BASE_URL", sandbox.base_url()),
            ("ACRONIS_CLIENT_ID", sandbox.client_id().to_owned()),
            ("ACRONIS_CLIENT_SECRET", sandbox.client_secret().to_owned()),
        ]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.runtime.block_on(sandbox.shutdown());
        }
    }
}

/// `TENANTS` tenants with made-up UUIDs, named `customer-NN`.
fn tenants() -> Vec<(String, String)> {
    (1..=TENANTS)
        .map(|i| {
            (
                format!("00000000-0000-4000-8000-0000e{i:07}"),
                format!("customer-{i:02}"),
            )
        })
        .collect()
}

fn job_text() -> String {
    let mut text = format!("version: 1\ndefaults:\n  formats: [csv_v2_0]\n{POLLING}tenants:\n");
    for (id, name) in tenants() {
        text.push_str(&format!("  - id: {id}\n    name: {name}\n"));
    }
    text
}

/// A command with nothing inherited but PATH, with the binary's folder in front of it (as if
/// the binary had been installed).
fn hermetic(program: &str) -> Command {
    let mut cmd = Command::new(program);
    let bin_dir = Path::new(BIN).parent().expect("binary folder");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    cmd.env_clear().env("PATH", path).env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` with standard output and error into one log; returns the exit code and the log.
fn run_logged(cmd: &mut Command, scratch: &Path) -> (i32, String) {
    let log_path = scratch.join(format!("log-{}.txt", uuid::Uuid::new_v4()));
    let log = fs::File::create(&log_path).expect("log file");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .status()
        .expect("command runs");
    let output = fs::read_to_string(&log_path).expect("read log");
    fs::remove_file(&log_path).expect("remove log");
    (status.code().expect("exited, not killed"), output)
}

/// Runs `script` with bash, as a CI runner's shell would (errexit, pipefail).
fn bash(script: &str, dir: &Path, env: &[(String, String)], scratch: &Path) -> (i32, String) {
    let file = scratch.join(format!("script-{}.sh", uuid::Uuid::new_v4()));
    fs::write(&file, script).expect("write script");
    let mut cmd = hermetic("bash");
    cmd.current_dir(dir)
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&file)
        .env("HOME", scratch.join("home"))
        .envs(env.iter().map(|(k, v)| (k, v)));
    run_logged(&mut cmd, scratch)
}

/// The file lines of every period's `SHA256SUMS` of a trail, with paths from its root: what
/// merged and unsharded folders share (their `manifest.json` and `summary.md` carry run times).
fn file_sums(out: &Path) -> String {
    let root = read(&out.join("SHA256SUMS"));
    let mut lines = Vec::new();
    for folder in root
        .lines()
        .filter_map(|l| l[66..].strip_suffix("/SHA256SUMS"))
    {
        for line in read(&out.join(folder).join("SHA256SUMS")).lines() {
            let name = &line[66..];
            if name != "manifest.json" && name != "summary.md" {
                lines.push(format!("{}  {folder}/{name}\n", &line[..64]));
            }
        }
    }
    assert!(!lines.is_empty(), "{} lists no period", out.display());
    lines.sort();
    lines.concat()
}

/// The whole job in one run, against its own sandbox: the reference the merged folders must
/// equal. Returns the file lines of its checksums.
fn unsharded_checksums(scratch: &Path, failing: Option<&str>) -> String {
    let server = Server::start(failing);
    let dir = scratch.join("unsharded");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("billing.yml"), job_text()).unwrap();
    let mut cmd = hermetic(BIN);
    cmd.current_dir(&dir)
        .envs(server.credentials())
        .args(["run", "billing.yml", "--out", "out", "--as-of", AS_OF])
        .args(["--ci", "none", "--no-shard"]);
    let (code, log) = run_logged(&mut cmd, scratch);
    assert_eq!(code, i32::from(failing.is_some()), "{log}");
    file_sums(&dir.join("out"))
}

/// `acronis-reports verify DIR`: exit 0, or the log.
fn assert_verifies(dir: &Path, scratch: &Path) {
    let mut cmd = hermetic(BIN);
    cmd.arg("verify").arg(dir);
    let (code, log) = run_logged(&mut cmd, scratch);
    assert_eq!(code, 0, "verify {}: {log}", dir.display());
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(path: &str) -> Value {
    let text = read(&Path::new(REPO).join(path));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Copies a folder with everything in it, hidden files included.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=value");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// `name=value` lines of `$GITHUB_OUTPUT` (the merge step writes no multi-line values).
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    parse_dotenv(text)
}

// ---------------------------------------------------------------------------------------------
// examples/github-matrix.yml

/// Replaces every `${{ expression }}` in `text` by what `evaluate` says it is.
fn substitute(text: &str, evaluate: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("expression ends") + start;
        out.push_str(&evaluate(rest[start + 3..end].trim()));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

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

fn is_commit_sha(reference: &str) -> bool {
    reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit())
}

/// Every step of every job, with its job's id.
fn steps(workflow: &Value) -> Vec<(String, &Value)> {
    let mut all = Vec::new();
    for (id, job) in workflow["jobs"].as_object().expect("jobs") {
        for step in job["steps"].as_array().expect("steps") {
            all.push((id.clone(), step));
        }
    }
    all
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

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().map(text).collect(),
        Value::Null => Vec::new(),
        other => panic!("needs: {other}"),
    }
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
    let server = Server::start(failing);
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

// ---------------------------------------------------------------------------------------------
// examples/gitlab-ci.yml, sharded variant

/// A job's `script:` lines, joined as GitLab's shell executor runs them: one shell.
fn script(job: &Value) -> String {
    job["script"]
        .as_array()
        .expect("script lines")
        .iter()
        .map(|line| line.as_str().expect("a line").to_owned() + "\n")
        .collect()
}

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
    let server = Server::start(failing);
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

// ---------------------------------------------------------------------------------------------
// examples/github-monthly.yml and its running twin .github/workflows/monthly-billing.yml

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

// ---------------------------------------------------------------------------------------------
// examples/gitlab-ci.yml: where the binary comes from, and the notify job

fn gitlab_job<'a>(pipeline: &'a Value, name: &str) -> &'a Value {
    let job = &pipeline[name];
    assert!(job.is_object(), "the pipeline has {name}");
    job
}

fn lines_of(job: &Value, key: &str) -> Vec<String> {
    job[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key}"))
        .iter()
        .map(|l| l.as_str().expect("a line").to_owned())
        .collect()
}

#[test]
fn the_gitlab_jobs_run_in_the_released_image_by_default() {
    let pipeline = yaml("examples/gitlab-ci.yml");
    assert_eq!(
        pipeline["variables"]["ACRONIS_REPORTS_VERSION"],
        env!("CARGO_PKG_VERSION")
    );
    // Every job that runs acronis-reports extends .acronis-reports, which extends the image.
    let runners: Vec<&String> = pipeline
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, job)| {
            !name.starts_with('.')
                && job["script"].as_array().is_some_and(|lines| {
                    lines
                        .iter()
                        .any(|l| l.as_str().unwrap_or("").starts_with("acronis-reports "))
                })
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(runners.len(), 3, "{runners:?}");
    for name in runners {
        assert_eq!(pipeline[name]["extends"], ".acronis-reports", "{name}");
    }
    assert_eq!(
        pipeline[".acronis-reports"]["extends"],
        ".acronis-reports-image"
    );
    let image = &gitlab_job(&pipeline, ".acronis-reports-image")["image"];
    // The image release.yml pushes (ghcr.io/<owner>/acronis-reports:<version>), with the
    // entrypoint reset so that GitLab can run the script with the image's shell.
    assert_eq!(
        image["name"],
        "ghcr.io/OWNER/acronis-reports:$ACRONIS_REPORTS_VERSION"
    );
    assert_eq!(image["entrypoint"], serde_json::json!([""]));
    let release = read(&Path::new(REPO).join(".github/workflows/release.yml"));
    assert!(release.contains(r#"image="ghcr.io/${GITHUB_REPOSITORY,,}""#));
    assert!(release.contains(r#"--tag "$image:$VERSION""#));
    // Nothing installs or builds in the default path.
    assert!(
        pipeline[".acronis-reports-image"]
            .get("before_script")
            .is_none()
    );
    assert!(!read(&Path::new(REPO).join("examples/gitlab-ci.yml")).contains("cargo install"));
}

/// Runs the alternative's `before_script:` and then the billing job's `script:`, as written, in
/// a project on a runner where acronis-reports is not installed, with the release served by
/// `server` and ACRONIS_REPORTS_SHA256 set to `pinned`.
fn run_gitlab_from_release(
    server: &ReleaseServer,
    pinned: &str,
) -> (i32, String, PathBuf, tempfile::TempDir) {
    let scratch = tempfile::tempdir().unwrap();
    let pipeline = yaml("examples/gitlab-ci.yml");
    let alternative = gitlab_job(&pipeline, ".acronis-reports-from-release");
    let billing = gitlab_job(&pipeline, "billing-reports");
    let mut variables: Vec<(String, String)> = Vec::new();
    for scope in [
        &pipeline["variables"],
        &alternative["variables"],
        &billing["variables"],
    ] {
        if let Some(map) = scope.as_object() {
            variables.extend(map.iter().map(|(k, v)| (k.clone(), text(v))));
        }
    }
    let releases = variables
        .iter_mut()
        .find(|(k, _)| k == "ACRONIS_REPORTS_RELEASES")
        .expect("ACRONIS_REPORTS_RELEASES");
    assert_eq!(
        releases.1,
        "https://github.com/OWNER/acronis-reports/releases/download"
    );
    releases.1 = format!(
        "{}/OWNER/acronis-reports/releases/download",
        server.base_url()
    );
    let sha = variables
        .iter_mut()
        .find(|(k, _)| k == "ACRONIS_REPORTS_SHA256")
        .expect("ACRONIS_REPORTS_SHA256");
    assert_eq!(sha.1, "", "nothing pinned until the user pastes it");
    sha.1 = pinned.to_owned();

    let project = scratch.path().join("project");
    fs::create_dir_all(&project).unwrap();
    let job_file = variables
        .iter()
        .find(|(k, _)| k == "JOB_FILE")
        .unwrap()
        .1
        .clone();
    fs::write(project.join(job_file), job_text()).unwrap();
    let sandbox = Server::start(None);
    let mut env = variables;
    env.extend(
        [
            ("CI", "true"),
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "schedule"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env.push(("CI_PROJECT_DIR".to_owned(), project.display().to_string()));
    env.extend(
        sandbox
            .credentials()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let script: String = lines_of(alternative, "before_script")
        .into_iter()
        .chain(lines_of(billing, "script"))
        .map(|l| l + "\n")
        .collect();
    let file = scratch.path().join("job.sh");
    fs::write(&file, script).unwrap();
    // A runner's PATH: no acronis-reports anywhere on it.
    let path = std::env::join_paths(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .filter(|dir| !dir.join("acronis-reports").exists()),
    )
    .unwrap();
    let mut cmd = Command::new("bash");
    cmd.env_clear()
        .env("PATH", path)
        .env("HOME", scratch.path().join("home"))
        .envs(env)
        .current_dir(&project)
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&file);
    let (code, log) = run_logged(&mut cmd, scratch.path());
    drop(sandbox);
    (code, log, project, scratch)
}

/// A release archive (the binary at its root, as release.yml packs it) of an executable that
/// runs the binary under test.
#[cfg(unix)]
fn stand_in_archive(dir: &Path) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt;
    let staging = dir.join("staging");
    fs::create_dir_all(&staging).unwrap();
    let exe = staging.join("acronis-reports");
    fs::write(&exe, format!("#!/bin/sh\nexec '{BIN}' \"$@\"\n")).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let archive = dir.join("archive.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&staging)
        .arg("acronis-reports")
        .status()
        .unwrap();
    assert!(status.success());
    fs::read(archive).unwrap()
}

fn release_path() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "/OWNER/acronis-reports/releases/download/v{version}/acronis-reports-{version}-x86_64-unknown-linux-musl.tar.gz"
    )
}

#[cfg(unix)]
#[test]
fn the_gitlab_alternative_downloads_the_release_archive_and_checks_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let archive = stand_in_archive(dir.path());
    let server = ReleaseServer::http(BTreeMap::from([(release_path(), archive.clone())]));
    let (code, log, project, _scratch) = run_gitlab_from_release(&server, &sha256_hex(&archive));
    assert_eq!(code, 0, "{log}");
    assert_eq!(server.requests(), [release_path()]);
    assert!(log.contains(": OK"), "sha256sum said it checked: {log}");
    let dotenv = parse_dotenv(&read(&project.join("billing-reports/outputs.env")));
    assert_eq!(dotenv["ACRONIS_REPORTS_OK"], TENANTS.to_string());
    assert_eq!(dotenv["ACRONIS_EXIT_CODE"], "0");
}

#[cfg(unix)]
#[test]
fn the_gitlab_alternative_refuses_an_archive_that_is_not_the_pinned_one() {
    let dir = tempfile::tempdir().unwrap();
    let archive = stand_in_archive(dir.path());
    let mut tampered = archive.clone();
    tampered.extend_from_slice(b"!");
    let server = ReleaseServer::http(BTreeMap::from([(release_path(), tampered)]));
    let (code, log, project, _scratch) = run_gitlab_from_release(&server, &sha256_hex(&archive));
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("FAILED"), "{log}");
    // Nothing was unpacked or run.
    assert!(!project.join(".tools/bin/acronis-reports").exists());
    assert!(!project.join("billing-reports").exists(), "{log}");
    // Nothing pinned is refused too.
    let server = ReleaseServer::http(BTreeMap::from([(release_path(), archive)]));
    let (code, log, _, _scratch) = run_gitlab_from_release(&server, "");
    assert_ne!(code, 0, "{log}");
}

#[cfg(unix)]
#[test]
fn the_gitlab_billing_job_leaves_outputs_env_when_nothing_could_be_attempted() {
    let scratch = tempfile::tempdir().unwrap();
    let pipeline = yaml("examples/gitlab-ci.yml");
    let project = scratch.path().join("project");
    fs::create_dir_all(&project).unwrap();
    // No job file, no credentials: exit 2 before the binary writes its outputs.
    let env: Vec<(String, String)> = [
        ("JOB_FILE", "billing.yml"),
        ("CI", "true"),
        ("GITLAB_CI", "true"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let (code, log) = bash(
        &script(&pipeline["billing-reports"]),
        &project,
        &env,
        scratch.path(),
    );
    assert_eq!(code, 2, "{log}");
    let dotenv = pipeline["billing-reports"]["artifacts"]["reports"]["dotenv"]
        .as_str()
        .unwrap();
    assert_eq!(
        parse_dotenv(&read(&project.join(dotenv))),
        BTreeMap::from([("ACRONIS_EXIT_CODE".to_owned(), "2".to_owned())])
    );
}

#[cfg(unix)]
#[test]
fn the_gitlab_notify_job_copes_with_or_without_outputs() {
    let scratch = tempfile::tempdir().unwrap();
    let pipeline = yaml("examples/gitlab-ci.yml");
    let notify = script(&pipeline["notify"]);
    // The reports job left no outputs.env: no ACRONIS_* variables at all.
    let (code, log) = bash(&notify, scratch.path(), &[], scratch.path());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("no outputs from the reports job"), "{log}");
    // Exit 2: only the exit code.
    let only_code = [("ACRONIS_EXIT_CODE".to_owned(), "2".to_owned())];
    let (code, log) = bash(&notify, scratch.path(), &only_code, scratch.path());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("0 ok, 0 failed (exit code 2)"), "{log}");
    assert!(log.contains("checksums - none"), "{log}");
    // A run: the counts.
    let full: Vec<(String, String)> = [
        ("ACRONIS_EXIT_CODE", "1"),
        ("ACRONIS_REPORTS_OK", "9"),
        ("ACRONIS_REPORTS_FAILED", "1"),
        ("ACRONIS_CHECKSUMS", "billing-reports/SHA256SUMS"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let (code, log) = bash(&notify, scratch.path(), &full, scratch.path());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("9 ok, 1 failed (exit code 1)"), "{log}");
    assert!(
        log.contains("checksums - billing-reports/SHA256SUMS"),
        "{log}"
    );
}
