//! Processes as a CI runner starts them, and the files a runner reads back: for the tests of
//! the action, the workflows and the CI examples.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::BIN;

/// A command with nothing inherited but PATH, with the binary's folder in front of it (as if
/// the binary had been installed).
pub fn hermetic(program: &str) -> Command {
    let mut cmd = Command::new(program);
    let bin_dir = Path::new(BIN).parent().expect("binary folder");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    cmd.env_clear().env("PATH", path).env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` with standard output and error into one log, so that their order is kept;
/// returns the exit code and the log.
pub fn run_logged(cmd: &mut Command, scratch: &Path) -> (i32, String) {
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

/// Parses a `$GITHUB_OUTPUT` file as the runner does: `name=value` and `name<<DELIMITER`.
pub fn parse_github_output(text: &str) -> BTreeMap<String, String> {
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

/// A dotenv file as the binary writes one: `KEY=value` lines, upper-case keys.
pub fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
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

/// Replaces every `${{ expression }}` in `text` by what `evaluate` says it is.
pub fn substitute(text: &str, evaluate: &dyn Fn(&str) -> String) -> String {
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

/// The system's PATH without any folder that holds an acronis-reports, after `first` (if any).
pub fn path_without_acronis_reports(first: Option<&Path>) -> std::ffi::OsString {
    std::env::join_paths(
        first.map(Path::to_owned).into_iter().chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .filter(|dir| !dir.join("acronis-reports").exists()),
        ),
    )
    .expect("PATH")
}

/// An executable `acronis-reports` that stands in for the real one (it runs the binary under
/// test), so that an archive of it is small.
#[cfg(unix)]
fn write_stand_in(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap();
    let path = dir.join("acronis-reports");
    fs::write(&path, format!("#!/bin/sh\nexec '{BIN}' \"$@\"\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A release archive as release.yml packs it (the binary at its root) of a stand-in
/// `acronis-reports`, written as `name` in `dir`.
#[cfg(unix)]
pub fn stand_in_archive(dir: &Path, name: &str) -> Vec<u8> {
    let staging = dir.join(format!("staging-{name}"));
    write_stand_in(&staging);
    let archive = dir.join(name);
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
