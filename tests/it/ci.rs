//! CI integrations end to end, against the sandbox on loopback:
//! - the binary in GitHub Actions mode (outputs, step summary, masks, annotations) and in GitLab
//!   mode (dotenv, JUnit);
//! - the `run:` steps of action.yml, executed by bash in a simulated runner: the binary already
//!   on PATH, a release asset from a local HTTPS server (verified, or refused when tampered), a
//!   build from source through a stub rustup; `args`, `install-only`, the one attested subject;
//! - release.yml's packing against what action.yml and `cargo binstall` download, the
//!   Dockerfile, and the one name of the repository;
//! - the README's auditor recipe, on an audit trail written by hand (tests/support/trail.rs);
//! - the `script:` lines of examples/gitlab-ci.yml, executed as written.

// The simulated runner and the GitLab example need bash: they run on Unix only.
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
const POLLING: &str = "polling:\n  initial_interval: 50ms\n  max_interval: 200ms\n  timeout: 20s\n";
const SECRET: &str = "caller-secret-value-4f1d";
const TOKEN: &str = "caller-token-value-9c2e";

// ---------------------------------------------------------------------------------------------
// A sandbox, a scratch folder, and processes with a hermetic environment.

struct World {
    runtime: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
    dir: tempfile::TempDir,
}

impl World {
    /// A sandbox whose reports are ready after 150 ms, failing every report of `failing`.
    fn new(failing: &[String]) -> Self {
        let mut scenario = Scenario {
            generation_delay: Duration::from_millis(150),
            ..Scenario::default()
        };
        for id in failing {
            scenario.tenants.insert(
                id.clone(),
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
        World {
            runtime,
            sandbox: Some(sandbox),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Only a scratch folder: for runs that start their own sandbox (`--sandbox`).
    fn scratch() -> Self {
        World {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("test runtime"),
            sandbox: None,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("sandbox running")
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes a job file for `tenants` (id, name) into the scratch folder.
    fn job(&self, name: &str, tenants: &[(String, String)]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, job_text(tenants)).expect("write job");
        path
    }

    /// The sandbox's address and credentials, as the caller's environment would hold them.
    fn credentials(&self) -> Vec<(String, String)> {
        vec![
            ("ACRONIS_BASE_URL".into(), self.sandbox().base_url()),
            (
                "ACRONIS_CLIENT_ID".into(),
                self.sandbox().client_id().into(),
            ),
            (
                "ACRONIS_CLIENT_SECRET".into(),
                self.sandbox().client_secret().into(),
            ),
        ]
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.runtime.block_on(sandbox.shutdown());
        }
    }
}

fn job_text(tenants: &[(String, String)]) -> String {
    let mut text = format!("version: 1\ndefaults:\n  formats: [csv_v2_0]\n{POLLING}tenants:\n");
    for (id, name) in tenants {
        text.push_str(&format!("  - id: {id}\n    name: {name}\n"));
    }
    text
}

/// `count` tenants with made-up UUIDs, named `<prefix>NN`.
fn tenants(prefix: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            let id = format!("00000000-0000-4000-8000-{:04}{:08}", prefix.len(), i + 1);
            (id, format!("{prefix}{:02}", i + 1))
        })
        .collect()
}

/// A command with nothing inherited but PATH (and the binary's folder in front of it).
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

/// Runs `cmd` with standard output and error into one file, so that their order is kept.
/// Returns the exit code and the output.
fn run_merged(cmd: &mut Command, scratch: &Path) -> (i32, String) {
    let log_path = scratch.join(format!("log-{}.txt", uuid::Uuid::new_v4()));
    let log = fs::File::create(&log_path).expect("log file");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .status()
        .expect("command runs");
    let output = fs::read_to_string(&log_path).expect("read log");
    (status.code().expect("exited, not killed"), output)
}

/// Parses a `$GITHUB_OUTPUT` file as the runner does: `name=value` and `name<<DELIMITER`.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(eq), Some(h)) if eq < h => {
                values.insert(line[..eq].to_owned(), line[eq + 1..].to_owned());
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                let mut value = Vec::new();
                loop {
                    let next = lines.next().expect("the delimiter closes the value");
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                values.insert(name.to_owned(), value.join("\n"));
            }
            (Some(eq), None) => {
                values.insert(line[..eq].to_owned(), line[eq + 1..].to_owned());
            }
            (None, None) => panic!("not an output line: {line:?}"),
        }
    }
    values
}

fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=value");
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{key}"
            );
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// A minimal look at a JUnit report: (test cases, failures), checked against the totals the
/// root element declares.
fn junit_counts(xml: &str) -> (usize, usize) {
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
    let cases = xml.matches("<testcase ").count();
    let failures = xml.matches("<failure ").count();
    let root = &xml[xml.find("<testsuites ").expect("root")..];
    let root = &root[..root.find('>').expect("root tag ends")];
    assert!(root.contains(&format!(" tests=\"{cases}\"")), "{root}");
    assert!(
        root.contains(&format!(" failures=\"{failures}\"")),
        "{root}"
    );
    (cases, failures)
}

/// A relative path as the binary prints it on this system.
fn native(path: &str) -> String {
    path.replace('/', std::path::MAIN_SEPARATOR_STR)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(path: &str) -> Value {
    let text = read(&Path::new(REPO).join(path));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The binary in GitHub Actions.

/// The binary as a plain `run:` step in GitHub Actions would start it.
fn github_run(world: &World, job: &Path) -> Command {
    let mut cmd = hermetic(BIN);
    cmd.current_dir(world.dir.path())
        .envs(world.credentials())
        .env("ACRONIS_TOKEN", TOKEN)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", world.path("github_output"))
        .env("GITHUB_STEP_SUMMARY", world.path("step_summary"))
        .arg("run")
        .arg(job)
        .args(["--out", "out", "--as-of", AS_OF]);
    cmd
}

#[test]
fn github_outputs_summary_masks_and_at_most_ten_annotations() {
    let failing = tenants("broken", 15);
    let ids: Vec<String> = failing.iter().map(|(id, _)| id.clone()).collect();
    let world = World::new(&ids);
    let mut all = failing.clone();
    all.push(("ede9f834-70b3-476c-83d9-736f9f8c7dae".into(), "acme".into()));
    let job = world.job("job.yml", &all);
    // Earlier steps' outputs and summary must survive: the binary appends.
    fs::write(world.path("github_output"), "earlier=kept\n").unwrap();
    fs::write(world.path("step_summary"), "# An earlier step\n\n").unwrap();

    let (code, log) = run_merged(&mut github_run(&world, &job), world.dir.path());
    assert_eq!(code, 1, "{log}");

    // Masks come first, before any log line that could show a secret.
    let lines: Vec<&str> = log.lines().collect();
    let secret = world.sandbox().client_secret();
    assert_eq!(lines[0], format!("::add-mask::{secret}"), "{log}");
    assert_eq!(lines[1], format!("::add-mask::{TOKEN}"), "{log}");
    assert!(
        lines[2..]
            .iter()
            .all(|l| !l.contains(secret) && !l.contains(TOKEN)),
        "{log}"
    );

    // Annotations: ten errors naming tenant and period, then one notice for the other five.
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(errors.len(), 10, "{log}");
    assert!(errors[0].starts_with("::error title=broken01 · 2026-10%3A report failed::broken01 ("));
    assert!(errors.iter().all(|l| l.contains("period 2026-10")));
    let notices: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("::notice "))
        .collect();
    assert_eq!(notices.len(), 1, "{log}");
    assert!(
        notices[0].contains("5 more problems not annotated"),
        "{log}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("::warning")).count(),
        0
    );

    // Outputs, appended after the earlier step's.
    let outputs = parse_github_output(&read(&world.path("github_output")));
    let expected: BTreeMap<String, String> = [
        ("earlier", "kept"),
        ("output-dir", "out"),
        ("manifest", &native("out/manifest.json")),
        ("checksums", &native("out/SHA256SUMS")),
        ("reports-ok", "1"),
        ("reports-failed", "15"),
        ("exit-code", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(outputs, expected);
    assert!(world.path(&outputs["manifest"]).is_file());
    assert!(world.path(&outputs["checksums"]).is_file());

    // The step summary is summary.md, appended, and under GitHub's 1 MiB.
    let summary = read(&world.path("step_summary"));
    assert!(summary.len() < 1024 * 1024);
    let own = read(&world.path("out/summary.md"));
    assert_eq!(summary, format!("# An earlier step\n\n{own}"));
    assert!(own.contains("**1 of 16 reports ok, 15 failed**"), "{own}");
    assert!(own.contains("broken15"), "{own}");
    // GitHub mode writes no GitLab files.
    assert!(!world.path("out/junit.xml").exists());
    assert!(!world.path("out/outputs.env").exists());
}

#[test]
fn github_is_detected_and_a_clean_run_has_exit_code_zero_and_no_annotations() {
    let world = World::new(&[]);
    let job = world.job("job.yml", &tenants("ok", 2));
    let (code, log) = run_merged(&mut github_run(&world, &job), world.dir.path());
    assert_eq!(code, 0, "{log}");
    assert!(
        !log.contains("::error") && !log.contains("::notice"),
        "{log}"
    );
    let outputs = parse_github_output(&read(&world.path("github_output")));
    assert_eq!(outputs["exit-code"], "0");
    assert_eq!(outputs["reports-ok"], "2");
    assert_eq!(outputs["reports-failed"], "0");
    assert!(read(&world.path("step_summary")).contains("**2 of 2 reports ok**"));
}

#[test]
fn ci_none_overrides_detection() {
    let world = World::new(&[]);
    let job = world.job("job.yml", &tenants("ok", 1));
    let mut cmd = github_run(&world, &job);
    cmd.args(["--ci", "none"]);
    let (code, log) = run_merged(&mut cmd, world.dir.path());
    assert_eq!(code, 0, "{log}");
    assert!(!world.path("github_output").exists());
    assert!(!world.path("step_summary").exists());
    // Inside GitHub Actions the secrets are masked all the same.
    assert!(log.starts_with("::add-mask::"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// The binary in GitLab CI, and the files on request anywhere.

#[test]
fn gitlab_gets_a_dotenv_file_and_a_junit_report() {
    let world = World::new(&["6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f".to_owned()]);
    let all = vec![
        ("ede9f834-70b3-476c-83d9-736f9f8c7dae".into(), "acme".into()),
        (
            "0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11".into(),
            "globex".into(),
        ),
        (
            "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f".into(),
            "initech".into(),
        ),
    ];
    let job = world.job("job.yml", &all);
    let mut cmd = hermetic(BIN);
    cmd.current_dir(world.dir.path())
        .envs(world.credentials())
        .env("GITLAB_CI", "true")
        .arg("run")
        .arg(&job)
        .args(["--out", "out", "--as-of", AS_OF]);
    let (code, log) = run_merged(&mut cmd, world.dir.path());
    assert_eq!(code, 1, "{log}");
    assert!(!log.contains("::"), "no GitHub commands on GitLab: {log}");

    let dotenv = parse_dotenv(&read(&world.path("out/outputs.env")));
    assert_eq!(dotenv["ACRONIS_OUTPUT_DIR"], "out");
    assert_eq!(dotenv["ACRONIS_MANIFEST"], native("out/manifest.json"));
    assert_eq!(dotenv["ACRONIS_CHECKSUMS"], native("out/SHA256SUMS"));
    assert_eq!(dotenv["ACRONIS_REPORTS_OK"], "2");
    assert_eq!(dotenv["ACRONIS_REPORTS_FAILED"], "1");
    assert_eq!(dotenv["ACRONIS_EXIT_CODE"], code.to_string());

    let xml = read(&world.path("out/junit.xml"));
    assert_eq!(junit_counts(&xml), (3, 1));
    assert!(
        xml.contains(r#"<testcase name="acme" classname="2026-10">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="initech" classname="2026-10">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<failure message="the server reports"#),
        "{xml}"
    );

    // The two files do not upset `verify`.
    let mut verify = hermetic(BIN);
    verify.current_dir(world.dir.path()).args(["verify", "out"]);
    let (code, log) = run_merged(&mut verify, world.dir.path());
    assert_eq!(code, 0, "{log}");
}

#[test]
fn junit_and_dotenv_paths_can_be_chosen_outside_any_ci() {
    let world = World::new(&[]);
    let job = world.job("job.yml", &tenants("ok", 2));
    let mut cmd = hermetic(BIN);
    cmd.current_dir(world.dir.path())
        .envs(world.credentials())
        .arg("run")
        .arg(&job)
        .args(["--out", "out", "--as-of", AS_OF])
        .args([
            "--junit",
            "ci/reports/junit.xml",
            "--dotenv",
            "ci/outputs.env",
        ]);
    let (code, log) = run_merged(&mut cmd, world.dir.path());
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        junit_counts(&read(&world.path("ci/reports/junit.xml"))),
        (2, 0)
    );
    let dotenv = parse_dotenv(&read(&world.path("ci/outputs.env")));
    assert_eq!(dotenv["ACRONIS_EXIT_CODE"], "0");
    assert!(!world.path("out/junit.xml").exists());
}

#[test]
fn an_unknown_ci_system_is_refused() {
    let mut cmd = hermetic(BIN);
    cmd.args(["run", "job.yml", "--ci", "jenkins"]);
    let dir = tempfile::tempdir().unwrap();
    let (code, log) = run_merged(&mut cmd, dir.path());
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("github") && log.contains("gitlab"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// action.yml in a simulated runner.

/// What one step of the composite action did.
#[derive(Debug, Default)]
struct StepRun {
    ran: bool,
    exit_code: i32,
    log: String,
    outputs: BTreeMap<String, String>,
    summary: String,
    /// The folders the step added to `$GITHUB_PATH`.
    path_added: Vec<String>,
}

/// Where the simulated runner finds the action and what it runs it with.
struct Runner {
    /// `$GITHUB_ACTION_PATH`: the action's checkout (action.yml is read from there).
    action_dir: PathBuf,
    /// `$GITHUB_ACTION_REPOSITORY`: empty for a local action (`uses: ./`).
    repository: String,
    /// `$GITHUB_SERVER_URL`.
    server_url: String,
    /// `$PATH`; `None`: the test binary's folder first (acronis-reports already installed).
    path: Option<std::ffi::OsString>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            action_dir: PathBuf::from(REPO),
            repository: String::new(),
            server_url: "https://github.com".to_owned(),
            path: None,
        }
    }
}

/// The system's PATH without any folder that holds an acronis-reports, after `first` (if any).
fn path_without_acronis_reports(first: Option<&Path>) -> std::ffi::OsString {
    std::env::join_paths(
        first.map(Path::to_owned).into_iter().chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .filter(|dir| !dir.join("acronis-reports").exists()),
        ),
    )
    .expect("PATH")
}

/// Runs the `run:` steps of action.yml as a runner would: each with the `env:` it declares
/// (expressions evaluated against `inputs` and earlier steps' outputs), a fresh
/// `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY`, `bash --noprofile --norc -eo pipefail`, in the
/// workspace. `uses:` steps (cache, upload, attest) are skipped; after a failed step the rest
/// are skipped too, like steps without `if: always()`.
fn run_action(
    world: &World,
    inputs: &[(&str, &str)],
    caller_env: &[(&str, &str)],
) -> BTreeMap<String, StepRun> {
    run_action_with(world, &Runner::default(), inputs, caller_env)
}

/// [`run_action`] with another checkout of the action, repository, server or PATH.
fn run_action_with(
    world: &World,
    runner: &Runner,
    inputs: &[(&str, &str)],
    caller_env: &[(&str, &str)],
) -> BTreeMap<String, StepRun> {
    let action: Value = serde_saphyr::from_str(&read(&runner.action_dir.join("action.yml")))
        .expect("action.yml is YAML");
    assert_eq!(action["runs"]["using"], "composite");
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (name, spec) in action["inputs"].as_object().expect("inputs") {
        let default = spec.get("default").and_then(Value::as_str).unwrap_or("");
        values.insert(name.clone(), default.to_owned());
    }
    for (name, value) in inputs {
        assert!(values.contains_key(*name), "action.yml has no input {name}");
        values.insert((*name).to_owned(), (*value).to_owned());
    }
    let workspace = world.path("workspace");
    let temp = world.path("runner-temp");
    fs::create_dir_all(&workspace).unwrap();
    fs::create_dir_all(&temp).unwrap();
    let (os, arch) = runner_platform();

    let base_path = runner.path.clone().unwrap_or_else(|| {
        hermetic("true")
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v.map(ToOwned::to_owned))
            .expect("hermetic PATH")
    });
    let mut added_to_path: Vec<String> = Vec::new();
    let mut steps: BTreeMap<String, StepRun> = BTreeMap::new();
    let mut failed = false;
    for (index, step) in action["runs"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
        let id = step["id"]
            .as_str()
            .expect("every step has an id")
            .to_owned();
        let Some(script) = step.get("run").and_then(Value::as_str) else {
            assert!(
                step.get("uses").is_some(),
                "step {id} neither runs nor uses"
            );
            steps.insert(id, StepRun::default());
            continue;
        };
        assert!(
            !script.contains("${{"),
            "step {id}: expressions belong in env:, not in the script"
        );
        assert!(
            step.get("if").is_none(),
            "step {id}: keep conditions in the script"
        );
        assert_eq!(step["shell"], "bash", "step {id}");
        if failed {
            steps.insert(id, StepRun::default());
            continue;
        }
        let evaluate = |expression: &str| -> String {
            let e = expression.trim();
            if let Some(name) = e.strip_prefix("inputs.") {
                return values.get(name).cloned().expect("a declared input");
            }
            if let Some(rest) = e.strip_prefix("steps.") {
                let (step_id, output) = rest.split_once(".outputs.").expect("steps.ID.outputs.X");
                return steps
                    .get(step_id)
                    .and_then(|s| s.outputs.get(output).cloned())
                    .unwrap_or_default();
            }
            panic!("the simulated runner does not know the expression `{e}`");
        };
        let mut env: Vec<(String, String)> = Vec::new();
        if let Some(declared) = step.get("env").and_then(Value::as_object) {
            for (name, value) in declared {
                let text = value.as_str().expect("env values are strings");
                env.push((name.clone(), substitute(text, &evaluate)));
            }
        }
        let script_path = temp.join(format!("step-{index}.sh"));
        fs::write(&script_path, script).unwrap();
        let output_file = temp.join(format!("output-{index}"));
        let summary_file = temp.join(format!("summary-{index}"));
        let path_file = temp.join(format!("path-{index}"));
        fs::write(&output_file, "").unwrap();
        fs::write(&summary_file, "").unwrap();
        fs::write(&path_file, "").unwrap();
        let mut cmd = hermetic("bash");
        // What earlier steps added to $GITHUB_PATH comes first, as on a runner.
        let path = std::env::join_paths(
            added_to_path
                .iter()
                .rev()
                .map(PathBuf::from)
                .chain(std::env::split_paths(&base_path)),
        )
        .expect("PATH");
        cmd.env("PATH", path);
        cmd.current_dir(&workspace)
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script_path)
            .env("HOME", world.path("home"))
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", &workspace)
            .env("GITHUB_ACTION_PATH", &runner.action_dir)
            .env("GITHUB_ACTION_REPOSITORY", &runner.repository)
            .env("GITHUB_JOB", "selftest")
            .env("GITHUB_RUN_ID", "4242")
            .env("GITHUB_RUN_ATTEMPT", "2")
            .env("GITHUB_SERVER_URL", &runner.server_url)
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_STEP_SUMMARY", &summary_file)
            .env("GITHUB_PATH", &path_file)
            .env("RUNNER_OS", os)
            .env("RUNNER_ARCH", arch)
            .env("RUNNER_TEMP", &temp)
            .envs(caller_env.iter().copied())
            .envs(env);
        let (exit_code, log) = run_merged(&mut cmd, &temp);
        failed = exit_code != 0;
        let path_added: Vec<String> = read(&path_file).lines().map(str::to_owned).collect();
        added_to_path.extend(path_added.iter().cloned());
        steps.insert(
            id,
            StepRun {
                ran: true,
                exit_code,
                log,
                outputs: parse_github_output(&read(&output_file)),
                summary: read(&summary_file),
                path_added,
            },
        );
    }
    steps
}

/// `RUNNER_OS` and `RUNNER_ARCH` as GitHub spells them for this machine.
fn runner_platform() -> (&'static str, &'static str) {
    let os = if cfg!(target_os = "macos") {
        "macOS"
    } else if cfg!(windows) {
        "Windows"
    } else {
        "Linux"
    };
    let arch = if cfg!(target_arch = "aarch64") {
        "ARM64"
    } else {
        "X64"
    };
    (os, arch)
}

/// Replaces each `${{ expression }}` in `text` with its value.
fn substitute(text: &str, evaluate: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("expression closes") + start;
        out.push_str(&evaluate(&rest[start + 3..end]));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn fixture(name: &str) -> String {
    Path::new(REPO)
        .join("fixtures/ci")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

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

/// Runs only the action's `plan` step, for an action checked out at `action_dir`, with no
/// acronis-reports on PATH. Returns the exit code, log and outputs.
fn run_plan_step(
    world: &World,
    action_dir: &Path,
    version: &str,
    repository: &str,
) -> (i32, String, BTreeMap<String, String>) {
    run_plan_step_on(world, action_dir, version, repository, runner_platform())
}

/// [`run_plan_step`] on a runner of another OS and architecture (`RUNNER_OS`, `RUNNER_ARCH`).
fn run_plan_step_on(
    world: &World,
    action_dir: &Path,
    version: &str,
    repository: &str,
    (os, arch): (&str, &str),
) -> (i32, String, BTreeMap<String, String>) {
    let action = yaml("action.yml");
    let plan = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "plan")
        .expect("a plan step");
    assert_eq!(plan["env"]["WANTED_VERSION"], "${{ inputs.version }}");
    let temp = world.path("runner-temp");
    fs::create_dir_all(&temp).unwrap();
    let script = temp.join("plan.sh");
    fs::write(&script, plan["run"].as_str().unwrap()).unwrap();
    let output = temp.join(format!("output-{}", uuid::Uuid::new_v4()));
    // PATH without any folder that holds an acronis-reports.
    let path = std::env::join_paths(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .filter(|dir| !dir.join("acronis-reports").exists()),
    )
    .unwrap();
    let mut cmd = Command::new("bash");
    cmd.env_clear()
        .env("PATH", path)
        .current_dir(world.dir.path())
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script)
        .env("WANTED_VERSION", version)
        .env("GITHUB_ACTION_PATH", action_dir)
        .env("GITHUB_ACTION_REPOSITORY", repository)
        .env("GITHUB_OUTPUT", &output)
        .env("RUNNER_OS", os)
        .env("RUNNER_ARCH", arch)
        .env("RUNNER_TEMP", &temp);
    let (code, log) = run_merged(&mut cmd, &temp);
    let outputs = parse_github_output(&fs::read_to_string(&output).unwrap_or_default());
    (code, log, outputs)
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

// ---------------------------------------------------------------------------------------------
// How the action installs the binary: a verified release asset, a build from source with a
// pinned toolchain, or the one already on PATH; then `args` and `install-only`.

/// The release target and archive extension action.yml picks for a runner.
fn release_target((os, arch): (&str, &str)) -> (&'static str, &'static str) {
    match (os, arch) {
        ("Linux", "X64") => ("x86_64-unknown-linux-musl", "tar.gz"),
        ("Linux", "ARM64") => ("aarch64-unknown-linux-musl", "tar.gz"),
        ("macOS", "X64") => ("x86_64-apple-darwin", "tar.gz"),
        ("macOS", "ARM64") => ("aarch64-apple-darwin", "tar.gz"),
        ("Windows", "X64") => ("x86_64-pc-windows-msvc", "zip"),
        other => panic!("no release target for {other:?}"),
    }
}

/// Copies `from` into `to`, folders and all.
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

/// A checkout of the action (what `uses: OWNER/acronis-reports@sha` fetches) whose
/// release-checksums.txt is the committed one plus `extra_lines`.
fn action_checkout(world: &World, extra_lines: &str) -> PathBuf {
    let dir = world.path("action");
    for file in ["action.yml", "Cargo.toml", "Cargo.lock"] {
        fs::create_dir_all(&dir).unwrap();
        fs::copy(Path::new(REPO).join(file), dir.join(file)).unwrap();
    }
    copy_tree(&Path::new(REPO).join("src"), &dir.join("src"));
    let committed = read(&Path::new(REPO).join("release-checksums.txt"));
    fs::write(
        dir.join("release-checksums.txt"),
        format!("{committed}{extra_lines}"),
    )
    .unwrap();
    dir
}

/// An executable `acronis-reports` that stands in for the real one (it runs the binary under
/// test), so that an archive of it is small.
#[cfg(unix)]
fn write_stand_in(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap();
    let path = dir.join("acronis-reports");
    fs::write(&path, format!("#!/bin/sh\nexec '{BIN}' \"$@\"\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A release archive as release.yml packs it (the binary at its root), of the stand-in.
#[cfg(unix)]
fn stand_in_archive(world: &World, name: &str) -> Vec<u8> {
    let staging = world.path(&format!("staging-{name}"));
    write_stand_in(&staging);
    let archive = world.path(name);
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&staging)
        .arg("acronis-reports")
        .status()
        .expect("tar runs");
    assert!(status.success());
    fs::read(&archive).unwrap()
}

/// The action, as `uses: OWNER/acronis-reports@sha` on a runner without acronis-reports, whose
/// release-checksums.txt lists `listed` (the archive's SHA-256) while the release server serves
/// `served` for that archive. Returns the steps, the server's requests and the asset's name.
#[cfg(unix)]
fn run_action_from_a_release(
    world: &World,
    listed: &[u8],
    served: Vec<u8>,
    inputs: &[(&str, &str)],
) -> (BTreeMap<String, StepRun>, Vec<String>, String) {
    let version = env!("CARGO_PKG_VERSION");
    let (target, ext) = release_target(runner_platform());
    let asset = format!("acronis-reports-{version}-{target}.{ext}");
    let action_dir = action_checkout(world, &format!("{}  {asset}\n", sha256_hex(listed)));
    let url_path = format!("/OWNER/acronis-reports/releases/download/v{version}/{asset}");
    let server = ReleaseServer::https(BTreeMap::from([(url_path, served)]));
    let ca = world.path("release-ca.pem");
    server.write_ca(&ca);
    let runner = Runner {
        action_dir,
        repository: "OWNER/acronis-reports".to_owned(),
        server_url: server.base_url(),
        path: Some(path_without_acronis_reports(None)),
    };
    let ca = ca.to_string_lossy().into_owned();
    let steps = run_action_with(world, &runner, inputs, &[("CURL_CA_BUNDLE", &ca)]);
    (steps, server.requests(), asset)
}

#[cfg(unix)]
#[test]
fn the_action_installs_a_listed_release_asset_after_checking_its_sha256_and_runs_it() {
    let world = World::scratch();
    let archive = stand_in_archive(&world, "good.tar.gz");
    let job = fixture("ok.yml");
    let scenario = fixture("quick-scenario.yml");
    let (steps, requests, asset) = run_action_from_a_release(
        &world,
        &archive,
        archive.clone(),
        &[
            ("job-file", &job),
            ("as-of", AS_OF),
            ("sandbox", "true"),
            ("sandbox-scenario", &scenario),
        ],
    );
    assert_eq!(
        steps["plan"].outputs["mode"], "release",
        "{}",
        steps["plan"].log
    );
    assert!(!steps["cache"].ran, "a release needs no cache");
    let install = &steps["install"];
    assert_eq!(install.exit_code, 0, "{}", install.log);
    assert_eq!(
        requests,
        [format!(
            "/OWNER/acronis-reports/releases/download/v{}/{asset}",
            env!("CARGO_PKG_VERSION")
        )]
    );
    assert_eq!(install.outputs["method"], "release");
    let install_dir = &steps["plan"].outputs["install-dir"];
    assert_eq!(
        install.outputs["bin"],
        format!("{install_dir}/bin/acronis-reports")
    );
    assert_eq!(install.path_added, [format!("{install_dir}/bin")]);
    // Which way, and how long it took.
    let said = install
        .log
        .lines()
        .find(|l| l.starts_with(&format!("acronis-reports {}: ", env!("CARGO_PKG_VERSION"))))
        .unwrap_or_else(|| panic!("no line saying how: {}", install.log));
    assert!(said.contains(&format!("release asset {asset}")), "{said}");
    assert!(said.contains(&sha256_hex(&archive)), "{said}");
    assert!(said.ends_with(" s"), "{said}");
    assert!(!install.log.contains("::notice"), "{}", install.log);
    // The verified binary runs the job.
    let run = &steps["run"];
    assert_eq!(run.exit_code, 0, "{}", run.log);
    assert_eq!(run.outputs["reports-ok"], "2");
}

#[cfg(unix)]
#[test]
fn the_action_refuses_a_release_asset_whose_sha256_is_not_the_listed_one() {
    let world = World::scratch();
    let archive = stand_in_archive(&world, "good.tar.gz");
    let mut tampered = archive.clone();
    tampered.extend_from_slice(b"one more byte");
    let job = fixture("ok.yml");
    let (steps, requests, asset) =
        run_action_from_a_release(&world, &archive, tampered.clone(), &[("job-file", &job)]);
    assert_eq!(requests.len(), 1, "{requests:?}");
    let install = &steps["install"];
    assert_eq!(install.exit_code, 1, "{}", install.log);
    let expected = format!(
        "::error title=acronis-reports::{asset} has SHA-256 {}, but release-checksums.txt says {}: refusing to install it",
        sha256_hex(&tampered),
        sha256_hex(&archive)
    );
    assert!(install.log.contains(&expected), "{}", install.log);
    // Nothing was unpacked, nothing is on PATH, nothing ran.
    let install_dir = PathBuf::from(&steps["plan"].outputs["install-dir"]);
    assert!(!install_dir.join("bin/acronis-reports").exists());
    assert!(install.path_added.is_empty());
    assert!(!install.outputs.contains_key("bin"));
    assert!(!steps["run"].ran);
}

/// A `rustup` that records its arguments in `log` and, for `rustup run … cargo install …
/// --root R`, installs the stand-in into R/bin; and a `cargo` that fails, so that a build with
/// the runner's own toolchain is caught.
#[cfg(unix)]
fn stub_toolchain(dir: &Path, log: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap();
    let rustup = format!(
        r#"#!/bin/sh
printf '%s\n' "$*" >>'{log}'
case "$1" in
  toolchain) exit 0 ;;
  run)
    [ "$3" = cargo ] && [ "$4" = install ] || exit 90
    root=""
    while [ $# -gt 0 ]; do
      if [ "$1" = --root ]; then root=$2; fi
      shift
    done
    mkdir -p "$root/bin"
    printf '#!/bin/sh\nexec %s "$@"\n' "'{bin}'" >"$root/bin/acronis-reports"
    chmod +x "$root/bin/acronis-reports"
    ;;
  *) exit 91 ;;
esac
"#,
        log = log.display(),
        bin = BIN
    );
    let cargo = "#!/bin/sh\necho \"the runner's own cargo was used: $*\" >&2\nexit 97\n";
    for (name, text) in [("rustup", rustup.as_str()), ("cargo", cargo)] {
        fs::write(dir.join(name), text).unwrap();
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn the_action_builds_from_source_with_its_pinned_toolchain_when_no_asset_is_listed() {
    let world = World::scratch();
    let stubs = world.path("stubs");
    let rustup_log = world.path("rustup.log");
    stub_toolchain(&stubs, &rustup_log);
    let runner = Runner {
        // The action as `uses: ./` (no repository to download from), on a runner without
        // acronis-reports.
        path: Some(path_without_acronis_reports(Some(&stubs))),
        ..Runner::default()
    };
    let steps = run_action_with(&world, &runner, &[("install-only", "true")], &[]);
    let plan = &steps["plan"];
    assert_eq!(plan.outputs["mode"], "source", "{}", plan.log);
    let toolchain = env!("CARGO_PKG_RUST_VERSION");
    assert_eq!(plan.outputs["toolchain"], toolchain);
    let install = &steps["install"];
    assert_eq!(install.exit_code, 0, "{}", install.log);
    let install_dir = &plan.outputs["install-dir"];
    // rustup installs the pinned toolchain and builds with it (never the runner's cargo).
    assert_eq!(
        read(&rustup_log).lines().collect::<Vec<_>>(),
        [
            format!("toolchain install {toolchain} --profile minimal --no-self-update"),
            format!("run {toolchain} cargo install --locked --path {REPO} --root {install_dir}"),
        ]
    );
    assert_eq!(install.outputs["method"], "source");
    assert!(
        install.log.contains(&format!(
            "acronis-reports {}: built from source with Rust {toolchain}, in ",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        install.log
    );
    assert!(
        install
            .log
            .contains("::notice title=acronis-reports::built from source in "),
        "{}",
        install.log
    );
    assert_eq!(install.path_added, [format!("{install_dir}/bin")]);

    // install-only: nothing runs, nothing is uploaded or attested …
    let run = &steps["run"];
    assert_eq!(run.exit_code, 0, "{}", run.log);
    assert!(run.log.contains("install-only"), "{}", run.log);
    assert!(run.outputs.is_empty(), "{:?}", run.outputs);
    // … and a later step finds the binary on PATH.
    let path = std::env::join_paths(
        install
            .path_added
            .iter()
            .map(PathBuf::from)
            .chain(std::env::split_paths(&path_without_acronis_reports(None))),
    )
    .unwrap();
    let mut later = Command::new("bash");
    later
        .env_clear()
        .env("PATH", path)
        .args(["-c", "acronis-reports --version"]);
    let (code, log) = run_merged(&mut later, world.dir.path());
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        log.trim(),
        format!("acronis-reports {}", env!("CARGO_PKG_VERSION"))
    );
}

#[cfg(unix)]
#[test]
fn install_only_needs_no_job_file_and_must_be_a_boolean() {
    let world = World::scratch();
    let steps = run_action(&world, &[("install-only", "true")], &[]);
    assert_eq!(steps["install"].outputs["method"], "present");
    assert!(steps["install"].path_added.is_empty(), "already on PATH");
    let run = &steps["run"];
    assert_eq!(run.exit_code, 0, "{}", run.log);
    assert!(run.outputs.is_empty(), "{:?}", run.outputs);

    let steps = run_action(&world, &[("install-only", "yes")], &[]);
    assert_eq!(steps["run"].exit_code, 2, "{}", steps["run"].log);
    assert!(
        steps["run"]
            .log
            .contains("install-only input must be true or false"),
        "{}",
        steps["run"].log
    );
    // Without install-only, the job file is required.
    let steps = run_action(&world, &[], &[]);
    assert_eq!(steps["run"].exit_code, 2, "{}", steps["run"].log);
    assert!(
        steps["run"].log.contains("the job-file input is required"),
        "{}",
        steps["run"].log
    );
}

#[cfg(unix)]
#[test]
fn the_action_passes_args_one_per_line_intact_and_never_through_the_shell() {
    let world = World::scratch();
    let job = fixture("ok.yml");
    let scenario = fixture("quick-scenario.yml");
    // A folder name a shell would split, unquote, expand and glob; a blank line; CRLF endings.
    let folder = r#"reports 'single' "double" $(touch pwned) $HOME *"#;
    let args = format!("--out\r\n{folder}\n\n--fresh\n");
    let steps = run_action(
        &world,
        &[
            ("job-file", &job),
            ("as-of", AS_OF),
            ("sandbox", "true"),
            ("sandbox-scenario", &scenario),
            ("args", &args),
        ],
        &[],
    );
    let run = &steps["run"];
    assert_eq!(run.exit_code, 0, "{}", run.log);
    assert_eq!(run.outputs["output-dir"], folder);
    let workspace = world.path("workspace");
    assert!(workspace.join(folder).join("SHA256SUMS").is_file());
    assert!(!workspace.join("pwned").exists());
    assert_eq!(
        fs::read_dir(&workspace).unwrap().count(),
        1,
        "only the output folder"
    );
}

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
        let (code, log) = run_merged(&mut cmd, world.dir.path());
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

// ---------------------------------------------------------------------------------------------
// release.yml makes what action.yml, `cargo binstall` and the image expect.

/// The `run:` of the step named `name` in job `job` of a workflow.
fn workflow_step<'a>(workflow: &'a Value, job: &str, name: &str) -> &'a Value {
    workflow["jobs"][job]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("job {job}"))
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("{job} has a step {name}"))
}

#[cfg(unix)]
#[test]
fn the_release_workflow_packs_the_archives_the_action_installs() {
    use std::os::unix::fs::PermissionsExt;
    let workflow = yaml(".github/workflows/release.yml");
    let version = env!("CARGO_PKG_VERSION");
    let world = World::scratch();
    let work = world.path("release");
    fs::create_dir_all(&work).unwrap();
    // `7z a -tzip ARCHIVE FILE` as a stub (the Windows runner has 7-Zip): a zip of FILE.
    let stubs = world.path("stubs");
    fs::create_dir_all(&stubs).unwrap();
    fs::write(
        stubs.join("7z"),
        "#!/bin/sh\n[ \"$1\" = a ] && [ \"$2\" = -tzip ] || exit 90\nprintf 'zip of %s' \"$4\" >\"$3\"\n",
    )
    .unwrap();
    fs::set_permissions(stubs.join("7z"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(std::iter::once(stubs.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let bash = |script: &str, env: &[(&str, &str)]| -> (i32, String) {
        let file = world.path(&format!("step-{}.sh", uuid::Uuid::new_v4()));
        fs::write(&file, script).unwrap();
        let output = world.path("github_output");
        let mut cmd = Command::new("bash");
        cmd.env_clear()
            .env("PATH", &path)
            .env("GITHUB_OUTPUT", &output)
            .envs(env.iter().copied())
            .current_dir(&work)
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&file);
        run_merged(&mut cmd, world.dir.path())
    };

    // Every target of the build matrix, packed by the Package step.
    let targets: Vec<String> = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap().to_owned())
        .collect();
    let platforms = [
        ("Linux", "X64"),
        ("Linux", "ARM64"),
        ("macOS", "X64"),
        ("macOS", "ARM64"),
        ("Windows", "X64"),
    ];
    let mut expected: Vec<String> = platforms
        .iter()
        .map(|p| release_target(*p).0.to_owned())
        .collect();
    expected.sort();
    let mut sorted = targets.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "one target per platform the action knows");
    let package = workflow_step(&workflow, "build", "Package")["run"]
        .as_str()
        .unwrap();
    for target in &targets {
        let release = work.join("target").join(target).join("release");
        fs::create_dir_all(&release).unwrap();
        let exe = if target.contains("windows") {
            "acronis-reports.exe"
        } else {
            "acronis-reports"
        };
        fs::write(release.join(exe), format!("binary for {target}")).unwrap();
        let (code, log) = bash(package, &[("TARGET", target), ("VERSION", version)]);
        assert_eq!(code, 0, "{target}: {log}");
    }

    // The release job's SHA256SUMS, then the checksums job's edit of release-checksums.txt.
    let (code, log) = bash(
        &format!(
            "cd dist\n{}",
            workflow_step(&workflow, "release", "SHA256SUMS")["run"]
                .as_str()
                .unwrap()
                .replace("cd dist\n", "")
        ),
        &[("VERSION", version)],
    );
    assert_eq!(code, 0, "{log}");
    let sums = read(&work.join("dist/SHA256SUMS"));
    assert_eq!(sums.lines().count(), 5, "{sums}");
    fs::copy(
        Path::new(REPO).join("release-checksums.txt"),
        work.join("release-checksums.txt"),
    )
    .unwrap();
    let append = workflow_step(&workflow, "checksums", "Add the release's lines")["run"]
        .as_str()
        .unwrap();
    let sums_path = work.join("dist/SHA256SUMS").display().to_string();
    let (code, log) = bash(append, &[("VERSION", version), ("SUMS", &sums_path)]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("added 5 lines"), "{log}");
    // Idempotent: a second run adds nothing.
    let (code, log) = bash(append, &[("VERSION", version), ("SUMS", &sums_path)]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("added 0 lines"), "{log}");
    let list = read(&work.join("release-checksums.txt"));
    assert!(
        !list.contains("No release has been published yet"),
        "{list}"
    );

    // With that list, the action installs each platform's archive.
    let action_dir = action_checkout(&world, "");
    fs::copy(
        work.join("release-checksums.txt"),
        action_dir.join("release-checksums.txt"),
    )
    .unwrap();
    for platform in platforms {
        let (target, ext) = release_target(platform);
        let asset = format!("acronis-reports-{version}-{target}.{ext}");
        let (code, log, outputs) =
            run_plan_step_on(&world, &action_dir, "", "OWNER/acronis-reports", platform);
        assert_eq!(code, 0, "{platform:?}: {log}");
        assert_eq!(outputs["mode"], "release", "{platform:?}: {log}");
        assert_eq!(outputs["asset"], asset);
        assert_eq!(
            outputs["asset-sha256"],
            sha256_hex(&fs::read(work.join("dist").join(&asset)).unwrap())
        );
    }
}

/// `key = "value"` of Cargo.toml's `[section]`.
fn cargo_toml_value(section: &str, key: &str) -> String {
    let text = format!("\n{}", read(&Path::new(REPO).join("Cargo.toml")));
    let start = text
        .find(&format!("\n[{section}]\n"))
        .unwrap_or_else(|| panic!("Cargo.toml has [{section}]"));
    text[start..]
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            (k == key).then(|| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("[{section}] {key}"))
}

#[test]
fn cargo_binstall_finds_the_release_archives() {
    let repo = cargo_toml_value("package", "repository");
    let version = env!("CARGO_PKG_VERSION");
    for platform in [("Linux", "X64"), ("macOS", "ARM64"), ("Windows", "X64")] {
        let (target, ext) = release_target(platform);
        let section = if target.contains("windows") {
            format!("package.metadata.binstall.overrides.{target}")
        } else {
            "package.metadata.binstall".to_owned()
        };
        let url = cargo_toml_value(&section, "pkg-url")
            .replace("{ repo }", &repo)
            .replace("{ version }", version)
            .replace("{ name }", "acronis-reports")
            .replace("{ target }", target);
        // The URL the action downloads (action.yml, install step).
        assert_eq!(
            url,
            format!("{repo}/releases/download/v{version}/acronis-reports-{version}-{target}.{ext}")
        );
    }
    assert_eq!(
        cargo_toml_value("package.metadata.binstall", "bin-dir"),
        "{ bin }{ binary-ext }",
        "the binary at the archive's root, as release.yml packs it"
    );
}

#[test]
fn the_repository_is_named_once_and_every_mention_agrees() {
    let repo = cargo_toml_value("package", "repository");
    let slug = repo
        .strip_prefix("https://github.com/")
        .expect("a GitHub repository");
    let (owner, name) = slug.split_once('/').unwrap();
    assert_eq!(name, "acronis-reports");
    let mut files: Vec<PathBuf> = [
        "README.md",
        "action.yml",
        "Dockerfile",
        "release-checksums.txt",
        "src/job/schema.rs",
    ]
    .iter()
    .map(|f| Path::new(REPO).join(f))
    .collect();
    for dir in ["examples", ".github/workflows"] {
        for entry in fs::read_dir(Path::new(REPO).join(dir)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    let mut mentions = 0;
    for file in &files {
        let text = read(file);
        for (at, _) in text.match_indices("/acronis-reports") {
            // The owner: the path segment before "/acronis-reports", after a host or a space.
            let before = &text[..at];
            let owner_start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .map_or(0, |i| i + 1);
            let found = &before[owner_start..];
            let prefix = &before[..owner_start];
            let hosted = ["github.com/", "ghcr.io/", "githubusercontent.com/"]
                .iter()
                .any(|h| prefix.ends_with(h));
            let uses = text[at..].starts_with("/acronis-reports@") && prefix.ends_with(' ');
            let named = ["--repo ", "repository: "]
                .iter()
                .any(|p| prefix.ends_with(p));
            if hosted || uses || named {
                mentions += 1;
                assert_eq!(
                    found,
                    owner,
                    "{}: '{found}/acronis-reports' is not the repository of Cargo.toml ({repo})",
                    file.display()
                );
            }
        }
    }
    assert!(mentions >= 15, "only {mentions} mentions found");
}

#[test]
fn the_dockerfile_runs_the_binary_as_a_non_root_user_from_the_release_binaries() {
    let dockerfile = read(&Path::new(REPO).join("Dockerfile"));
    let instructions: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap();
    let last_stage = &instructions[last_from..];
    assert!(
        last_stage.contains(&"USER 65534:65534"),
        "non-root: {last_stage:?}"
    );
    assert!(last_stage.contains(&r#"ENTRYPOINT ["acronis-reports"]"#));
    assert!(
        last_stage
            .iter()
            .any(|l| l.ends_with(" /usr/local/bin/acronis-reports")),
        "on PATH (GitLab's script lines call it by name): {last_stage:?}"
    );
    assert!(
        !last_stage.iter().any(|l| l.starts_with("RUN ")),
        "nothing runs in the final stage: a multi-arch build needs no emulation"
    );
    // release.yml lays the binaries out where the prebuilt stage copies them from.
    assert!(
        dockerfile.contains("COPY dist/docker/${TARGETARCH}/acronis-reports /out/acronis-reports")
    );
    let release = read(&Path::new(REPO).join(".github/workflows/release.yml"));
    assert!(release.contains(r#"mkdir -p "dist/docker/$arch""#));
    assert!(release.contains("for pair in amd64:x86_64 arm64:aarch64; do"));
    assert!(release.contains("--platform linux/amd64,linux/arm64"));
    assert!(release.contains("--build-arg BINARY=prebuilt"));
    let ignore = read(&Path::new(REPO).join(".dockerignore"));
    assert!(ignore.lines().any(|l| l == "!dist/docker/"), "{ignore}");
    // The toolchain of a source build is the crate's rust-version.
    assert!(dockerfile.contains(&format!(
        "ARG RUST=rust:{}-alpine",
        env!("CARGO_PKG_RUST_VERSION")
    )));
}

// ---------------------------------------------------------------------------------------------
// examples/gitlab-ci.yml, its script lines as written.

/// Runs the `script:` of the example's billing job with bash, as GitLab's shell executor
/// would, in a project folder holding `job_text`; returns the exit code, log and the dotenv and
/// JUnit files that `artifacts:reports` names.
fn run_gitlab_example(world: &World) -> (i32, String, String, String) {
    let pipeline = yaml("examples/gitlab-ci.yml");
    let job = &pipeline["billing-reports"];
    let rules = serde_json::to_string(&job["rules"]).unwrap();
    assert!(
        rules.contains(r#"$CI_PIPELINE_SOURCE == \"schedule\""#),
        "{rules}"
    );
    assert!(job["artifacts"]["expire_in"].is_string());
    assert_eq!(job["artifacts"]["when"], "always");
    let junit = job["artifacts"]["reports"]["junit"]
        .as_str()
        .expect("junit");
    let dotenv = job["artifacts"]["reports"]["dotenv"]
        .as_str()
        .expect("dotenv");
    let lines: Vec<&str> = job["script"]
        .as_array()
        .expect("script lines")
        .iter()
        .map(|l| l.as_str().expect("a line"))
        .collect();

    let project = world.path("project");
    fs::create_dir_all(&project).unwrap();
    let mut variables: Vec<(String, String)> = Vec::new();
    for scope in [&pipeline["variables"], &job["variables"]] {
        if let Some(map) = scope.as_object() {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                variables.push((name.clone(), value));
            }
        }
    }
    let job_file = variables
        .iter()
        .find(|(k, _)| k == "JOB_FILE")
        .map(|(_, v)| v.clone())
        .expect("the example names its job file in JOB_FILE");
    let tenants = vec![
        (
            "ede9f834-70b3-476c-83d9-736f9f8c7dae".to_owned(),
            "acme".to_owned(),
        ),
        (
            "0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11".to_owned(),
            "globex".to_owned(),
        ),
        (
            "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f".to_owned(),
            "initech".to_owned(),
        ),
    ];
    fs::write(project.join(&job_file), job_text(&tenants)).unwrap();
    let script = project.join(".script.sh");
    fs::write(&script, lines.join("\n") + "\n").unwrap();

    let mut cmd = hermetic("bash");
    cmd.current_dir(&project)
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script)
        .env("HOME", world.path("home"))
        .env("CI", "true")
        .env("GITLAB_CI", "true")
        .env("CI_PIPELINE_SOURCE", "schedule")
        .env("CI_PROJECT_DIR", &project)
        .envs(variables)
        .envs(world.credentials());
    let (code, log) = run_merged(&mut cmd, world.dir.path());
    (
        code,
        log,
        read(&project.join(dotenv)),
        read(&project.join(junit)),
    )
}

#[cfg(unix)]
#[test]
fn the_gitlab_example_delivers_dotenv_and_junit() {
    let world = World::new(&[]);
    let (code, log, dotenv, junit) = run_gitlab_example(&world);
    assert_eq!(code, 0, "{log}");
    let dotenv = parse_dotenv(&dotenv);
    assert_eq!(dotenv["ACRONIS_REPORTS_OK"], "3");
    assert_eq!(dotenv["ACRONIS_REPORTS_FAILED"], "0");
    assert_eq!(dotenv["ACRONIS_EXIT_CODE"], "0");
    assert_eq!(dotenv["ACRONIS_OUTPUT_DIR"], "billing-reports");
    assert_eq!(junit_counts(&junit), (3, 0));
}

#[cfg(unix)]
#[test]
fn the_gitlab_example_fails_the_job_and_keeps_the_reports_when_a_tenant_fails() {
    let world = World::new(&["6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f".to_owned()]);
    let (code, log, dotenv, junit) = run_gitlab_example(&world);
    assert_eq!(code, 1, "{log}");
    let dotenv = parse_dotenv(&dotenv);
    assert_eq!(dotenv["ACRONIS_REPORTS_OK"], "2");
    assert_eq!(dotenv["ACRONIS_REPORTS_FAILED"], "1");
    assert_eq!(dotenv["ACRONIS_EXIT_CODE"], "1");
    assert_eq!(junit_counts(&junit), (3, 1));
    assert!(junit.contains(r#"<testcase name="initech""#), "{junit}");
}
