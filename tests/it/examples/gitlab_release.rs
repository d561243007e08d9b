//! examples/gitlab-ci.yml: where the binary comes from, and the notify job.

use super::*;
use crate::support::scripts::{path_without_acronis_reports, stand_in_archive};

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
    let sandbox = super::server(None);
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
    let path = path_without_acronis_reports(None);
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
    let archive = stand_in_archive(dir.path(), "archive.tar.gz");
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
    let archive = stand_in_archive(dir.path(), "archive.tar.gz");
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
