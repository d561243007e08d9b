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

mod github_matrix;
mod gitlab_release;
mod gitlab_sharded;
mod monthly;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use acronis_reports_sandbox::Scenario;
use serde_json::Value;

use crate::support::release_server::ReleaseServer;
use crate::support::scripts::{
    hermetic, parse_dotenv, parse_github_output, run_logged, substitute,
};
use crate::support::trail::write_trail;
use crate::support::{
    AS_OF, BIN, FAST_POLLING, REPO, Served, copy_tree, fail_tenant, file_sums, read, sha256_hex,
    yaml,
};

/// The pipeline's creation time that GitLab would give the jobs: its day is AS_OF.
const PIPELINE_CREATED_AT: &str = "2026-11-27T06:17:00Z";
const PERIOD: &str = "2026-10";
const TENANTS: usize = 10;

// ---------------------------------------------------------------------------------------------
// Sandboxes, job files, processes.

/// A sandbox with deterministic report ids, failing every report of `failing`: two of them
/// started alike serve the same content, so a sharded run against one and an unsharded run
/// against the other must give the same files.
fn server(failing: Option<&str>) -> Served {
    let mut scenario = Scenario {
        deterministic_ids: true,
        generation_delay: Duration::from_millis(100),
        ..Scenario::default()
    };
    if let Some(id) = failing {
        fail_tenant(&mut scenario, id);
    }
    Served::start(scenario)
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
    let mut text =
        format!("version: 1\ndefaults:\n  formats: [csv_v2_0]\n{FAST_POLLING}tenants:\n");
    for (id, name) in tenants() {
        text.push_str(&format!("  - id: {id}\n    name: {name}\n"));
    }
    text
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

/// The whole job in one run, against its own sandbox: the reference the merged folders must
/// equal. Returns the file lines of its checksums.
fn unsharded_checksums(scratch: &Path, failing: Option<&str>) -> String {
    let server = server(failing);
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
    let sums = file_sums(&dir.join("out"));
    assert!(!sums.is_empty(), "the unsharded run lists no period");
    sums
}

/// `acronis-reports verify DIR`: exit 0, or the log.
fn assert_verifies(dir: &Path, scratch: &Path) {
    let mut cmd = hermetic(BIN);
    cmd.arg("verify").arg(dir);
    let (code, log) = run_logged(&mut cmd, scratch);
    assert_eq!(code, 0, "verify {}: {log}", dir.display());
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
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

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().map(text).collect(),
        Value::Null => Vec::new(),
        other => panic!("needs: {other}"),
    }
}

/// A job's `script:` lines, joined as GitLab's shell executor runs them: one shell.
fn script(job: &Value) -> String {
    job["script"]
        .as_array()
        .expect("script lines")
        .iter()
        .map(|line| line.as_str().expect("a line").to_owned() + "\n")
        .collect()
}
