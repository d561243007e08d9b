//! examples/gitlab-ci.yml, its script lines as written.

use super::*;

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
    let (code, log) = run_logged(&mut cmd, world.dir.path());
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
