//! How the action installs the binary: a verified release asset, a build from source with a
//! pinned toolchain, or the one already on PATH; then `args` and `install-only`.

use super::runner::*;
use super::*;

/// The release target and archive extension action.yml picks for a runner.
pub(super) fn release_target((os, arch): (&str, &str)) -> (&'static str, &'static str) {
    match (os, arch) {
        ("Linux", "X64") => ("x86_64-unknown-linux-musl", "tar.gz"),
        ("Linux", "ARM64") => ("aarch64-unknown-linux-musl", "tar.gz"),
        ("macOS", "X64") => ("x86_64-apple-darwin", "tar.gz"),
        ("macOS", "ARM64") => ("aarch64-apple-darwin", "tar.gz"),
        ("Windows", "X64") => ("x86_64-pc-windows-msvc", "zip"),
        other => panic!("no release target for {other:?}"),
    }
}

/// A checkout of the action (what `uses: OWNER/acronis-reports@sha` fetches) whose
/// release-checksums.txt is the committed one plus `extra_lines`.
pub(super) fn action_checkout(world: &World, extra_lines: &str) -> PathBuf {
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
    let archive = stand_in_archive(world.dir.path(), "good.tar.gz");
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
    let archive = stand_in_archive(world.dir.path(), "good.tar.gz");
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
    let (code, log) = run_logged(&mut later, world.dir.path());
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
