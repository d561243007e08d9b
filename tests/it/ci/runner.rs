//! action.yml in a simulated runner: its `run:` steps executed by bash as a runner would.

use super::*;

/// What one step of the composite action did.
#[derive(Debug, Default)]
pub(super) struct StepRun {
    pub(super) ran: bool,
    pub(super) exit_code: i32,
    pub(super) log: String,
    pub(super) outputs: BTreeMap<String, String>,
    pub(super) summary: String,
    /// The folders the step added to `$GITHUB_PATH`.
    pub(super) path_added: Vec<String>,
}

/// Where the simulated runner finds the action and what it runs it with.
pub(super) struct Runner {
    /// `$GITHUB_ACTION_PATH`: the action's checkout (action.yml is read from there).
    pub(super) action_dir: PathBuf,
    /// `$GITHUB_ACTION_REPOSITORY`: empty for a local action (`uses: ./`).
    pub(super) repository: String,
    /// `$GITHUB_SERVER_URL`.
    pub(super) server_url: String,
    /// `$PATH`; `None`: the test binary's folder first (acronis-reports already installed).
    pub(super) path: Option<std::ffi::OsString>,
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

/// Runs the `run:` steps of action.yml as a runner would: each with the `env:` it declares
/// (expressions evaluated against `inputs` and earlier steps' outputs), a fresh
/// `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY`, `bash --noprofile --norc -eo pipefail`, in the
/// workspace. `uses:` steps (cache, upload, attest) are skipped; after a failed step the rest
/// are skipped too, like steps without `if: always()`.
pub(super) fn run_action(
    world: &World,
    inputs: &[(&str, &str)],
    caller_env: &[(&str, &str)],
) -> BTreeMap<String, StepRun> {
    run_action_with(world, &Runner::default(), inputs, caller_env)
}

/// [`run_action`] with another checkout of the action, repository, server or PATH.
pub(super) fn run_action_with(
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
        let (exit_code, log) = run_logged(&mut cmd, &temp);
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
pub(super) fn runner_platform() -> (&'static str, &'static str) {
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

pub(super) fn fixture(name: &str) -> String {
    Path::new(REPO)
        .join("fixtures/ci")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Runs only the action's `plan` step, for an action checked out at `action_dir`, with no
/// acronis-reports on PATH. Returns the exit code, log and outputs.
pub(super) fn run_plan_step(
    world: &World,
    action_dir: &Path,
    version: &str,
    repository: &str,
) -> (i32, String, BTreeMap<String, String>) {
    run_plan_step_on(world, action_dir, version, repository, runner_platform())
}

/// [`run_plan_step`] on a runner of another OS and architecture (`RUNNER_OS`, `RUNNER_ARCH`).
pub(super) fn run_plan_step_on(
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
    let path = path_without_acronis_reports(None);
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
    let (code, log) = run_logged(&mut cmd, &temp);
    let outputs = parse_github_output(&fs::read_to_string(&output).unwrap_or_default());
    (code, log, outputs)
}
