//! release.yml makes what action.yml, `cargo binstall` and the image expect; the Dockerfile;
//! the one name of the repository.

use super::install::{action_checkout, release_target};
use super::runner::*;
use super::*;

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
        run_logged(&mut cmd, world.dir.path())
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
    // Everything a stage copies from the build context is let through: the context is
    // everything-but, and a source left out fails the build only where it runs.
    let let_through: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    let mut copied = 0;
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        if words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        let sources = &words[..words.len() - 1];
        for source in sources.iter().filter(|w| !w.starts_with("--")) {
            assert!(
                let_through
                    .iter()
                    .any(|allowed| source == allowed || source.starts_with(&format!("{allowed}/"))),
                "{line}: {source} is not let through .dockerignore:\n{ignore}"
            );
            copied += 1;
        }
    }
    assert!(
        copied >= 5,
        "the source stage copies the workspace: {copied}"
    );
    // The toolchain of a source build is the crate's rust-version.
    assert!(dockerfile.contains(&format!(
        "ARG RUST=rust:{}-alpine",
        env!("CARGO_PKG_RUST_VERSION")
    )));
}
