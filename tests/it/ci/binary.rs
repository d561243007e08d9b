//! The binary itself in GitHub Actions (outputs, step summary, masks, annotations) and in
//! GitLab CI (dotenv, JUnit), and those files on request outside any CI.

use super::*;

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

    let (code, log) = run_logged(&mut github_run(&world, &job), world.dir.path());
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
    let (code, log) = run_logged(&mut github_run(&world, &job), world.dir.path());
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
    let (code, log) = run_logged(&mut cmd, world.dir.path());
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
    let (code, log) = run_logged(&mut cmd, world.dir.path());
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
    let (code, log) = run_logged(&mut verify, world.dir.path());
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
    let (code, log) = run_logged(&mut cmd, world.dir.path());
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
    let (code, log) = run_logged(&mut cmd, dir.path());
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("github") && log.contains("gitlab"), "{log}");
}
