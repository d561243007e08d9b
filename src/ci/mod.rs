//! CI integrations: what a run tells the CI system it runs in.
//!
//! [`Provider`] says which system that is (detected from the environment, or chosen with `--ci`);
//! [`Context`] holds where its outputs go. The formats are pure functions from a
//! [`RunResult`] to text, one module per system ([`github`], [`gitlab`]); [`publish`] is the one
//! place that puts that text where the CI system reads it.
//!
//! Every system gets the same [`Outputs`]: the output folder, `manifest.json`, `SHA256SUMS`, how
//! many reports are ok and failed, and the exit code of the run.

pub mod github;
pub(crate) mod gitlab;

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::output;
use crate::results::RunResult;

/// The JUnit report's name inside the output folder when no `--junit` path is given.
pub(crate) const JUNIT: &str = "junit.xml";
/// The dotenv file's name inside the output folder when no `--dotenv` path is given.
pub(crate) const DOTENV: &str = "outputs.env";
/// Environment variables whose values are masked in GitHub Actions logs.
pub(crate) const SECRET_VARIABLES: [&str; 2] = ["ACRONIS_CLIENT_SECRET", "ACRONIS_TOKEN"];

/// The exit code of a run that finished: 0 when every report is ok (required checks included:
/// a failed required check fails its report), else 1. The `exit-code` output says the same.
pub(crate) fn exit_code(result: &RunResult) -> u8 {
    if result.failed_count() == 0 { 0 } else { 1 }
}

/// The CI system a run reports to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, annotations and masks on standard output.
    GitHub,
    /// A dotenv file and a JUnit report (`artifacts:reports:dotenv` and `:junit`).
    GitLab,
    /// Nothing beyond the output folder (and the `--junit`/`--dotenv` files when asked).
    None,
}

impl Provider {
    /// The names `--ci` accepts.
    pub const NAMES: [&'static str; 3] = ["github", "gitlab", "none"];

    /// GitHub Actions sets `GITHUB_ACTIONS=true`; GitLab CI sets `GITLAB_CI=true`.
    pub(crate) fn detect(env: impl Fn(&str) -> Option<String>) -> Self {
        let is_true = |name: &str| env(name).is_some_and(|v| v.trim() == "true");
        if is_true("GITHUB_ACTIONS") {
            Provider::GitHub
        } else if is_true("GITLAB_CI") {
            Provider::GitLab
        } else {
            Provider::None
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::None => "none",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "github" => Ok(Provider::GitHub),
            "gitlab" => Ok(Provider::GitLab),
            "none" => Ok(Provider::None),
            _ => Err(format!(
                "unknown CI system `{text}`; use one of {}",
                Provider::NAMES.join(", ")
            )),
        }
    }
}

/// Where a run's CI outputs go: decided once, when `run` starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The CI system the run is in, if any.
    pub provider: Provider,
    /// `$GITHUB_OUTPUT` (GitHub only).
    pub(crate) github_output: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY` (GitHub only).
    pub(crate) github_step_summary: Option<PathBuf>,
    /// `--junit`: written whatever the provider (Jenkins, Azure Pipelines read JUnit too).
    pub(crate) junit: Option<PathBuf>,
    /// `--dotenv`: written whatever the provider.
    pub(crate) dotenv: Option<PathBuf>,
}

impl Context {
    /// The context for `choice` (`--ci`; detected when `None`), reading the environment
    /// through `env`.
    pub(crate) fn from_env(
        choice: Option<Provider>,
        junit: Option<PathBuf>,
        dotenv: Option<PathBuf>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let provider = choice.unwrap_or_else(|| Provider::detect(&env));
        let path = |name: &str| {
            (provider == Provider::GitHub)
                .then(|| env(name))
                .flatten()
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
        };
        Context {
            provider,
            github_output: path("GITHUB_OUTPUT"),
            github_step_summary: path("GITHUB_STEP_SUMMARY"),
            junit,
            dotenv,
        }
    }

    /// Detects the CI system from the process environment and, in GitHub Actions, prints the
    /// `::add-mask::` commands for the secrets in the environment ([`SECRET_VARIABLES`]) so
    /// that nothing printed later can show them. Call it before anything else is printed.
    pub fn start(
        choice: Option<Provider>,
        junit: Option<PathBuf>,
        dotenv: Option<PathBuf>,
    ) -> Self {
        let env = |name: &str| std::env::var(name).ok();
        let context = Self::from_env(choice, junit, dotenv, env);
        if context.provider == Provider::GitHub || Provider::detect(env) == Provider::GitHub {
            let secrets: Vec<String> = SECRET_VARIABLES.iter().filter_map(|n| env(n)).collect();
            let masks = github::mask_commands(&secrets);
            if !masks.is_empty() {
                let mut stdout = io::stdout().lock();
                let _ = stdout.write_all(masks.as_bytes());
                let _ = stdout.flush();
            }
        }
        context
    }

    /// Where the JUnit report goes: `--junit`, else `junit.xml` in the output folder on GitLab.
    pub(crate) fn junit_path(&self, out_dir: &Path) -> Option<PathBuf> {
        self.junit
            .clone()
            .or_else(|| (self.provider == Provider::GitLab).then(|| out_dir.join(JUNIT)))
    }

    /// Where the dotenv file goes: `--dotenv`, else `outputs.env` in the output folder on GitLab.
    pub(crate) fn dotenv_path(&self, out_dir: &Path) -> Option<PathBuf> {
        self.dotenv
            .clone()
            .or_else(|| (self.provider == Provider::GitLab).then(|| out_dir.join(DOTENV)))
    }
}

/// What every CI system is told about a run, in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outputs {
    /// The output folder, as it was given (relative paths stay relative: later jobs and steps
    /// find the folder at the same place in their own checkout).
    pub(crate) output_dir: String,
    pub(crate) manifest: String,
    pub(crate) checksums: String,
    pub(crate) reports_ok: usize,
    pub(crate) reports_failed: usize,
    pub(crate) exit_code: u8,
}

/// One output's value: a path (text that could hold anything, a newline included) or a count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Path(String),
    Number(u64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Path(text) => f.write_str(text),
            Value::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Outputs {
    pub fn new(result: &RunResult, out_dir: &Path) -> Self {
        let text = |path: &Path| path.to_string_lossy().into_owned();
        Outputs {
            output_dir: text(out_dir),
            manifest: text(&out_dir.join(output::MANIFEST)),
            checksums: text(&out_dir.join(output::SHA256SUMS)),
            reports_ok: result.ok_count(),
            reports_failed: result.failed_count(),
            exit_code: exit_code(result),
        }
    }

    /// The outputs by their GitHub names (`reports-ok`); GitLab's are derived from these.
    pub(crate) fn named(&self) -> [(&'static str, Value); 6] {
        [
            ("output-dir", Value::Path(self.output_dir.clone())),
            ("manifest", Value::Path(self.manifest.clone())),
            ("checksums", Value::Path(self.checksums.clone())),
            ("reports-ok", Value::Number(self.reports_ok as u64)),
            ("reports-failed", Value::Number(self.reports_failed as u64)),
            ("exit-code", Value::Number(u64::from(self.exit_code))),
        ]
    }
}

/// Tells the CI system of `context` what the run produced: on GitHub, the outputs appended to
/// `$GITHUB_OUTPUT`, the summary appended to `$GITHUB_STEP_SUMMARY` and the annotations printed;
/// the JUnit report and dotenv file where [`Context`] says. `interrupted` is the exit code of a
/// run stopped by a signal (130, 143), which the `exit-code` output then says instead of
/// [`exit_code`]. Errors name the file.
pub(crate) fn publish(
    context: &Context,
    result: &RunResult,
    out_dir: &Path,
    interrupted: Option<u8>,
) -> io::Result<()> {
    let mut outputs = Outputs::new(result, out_dir);
    if let Some(code) = interrupted {
        outputs.exit_code = code;
    }
    if context.provider == Provider::GitHub {
        if let Some(path) = &context.github_output {
            let delimiter = github::delimiter_for(&outputs);
            append(path, github::output_file(&outputs, &delimiter).as_bytes())?;
        }
        if let Some(path) = &context.github_step_summary {
            // summary.md itself, billing totals included; rendered anew only when it is not there.
            // Only a regular file under GitHub's 1 MiB limit is taken as it is.
            let on_disk = crate::disk::paths::read_regular(&out_dir.join(output::SUMMARY), 1 << 20)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            let summary = match on_disk {
                Some(summary) => summary,
                None => output::summary::render(result, None, &[])?,
            };
            append(path, summary.as_bytes())?;
        }
        let annotations = github::annotations(result)?;
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(annotations.as_bytes());
        let _ = stdout.flush();
    }
    if let Some(path) = context.dotenv_path(out_dir) {
        for (name, value) in outputs.named() {
            if !gitlab::dotenv_can_hold(&value.to_string()) {
                tracing::warn!(
                    "{} is left out of {}: its value has a line break",
                    gitlab::dotenv_key(name),
                    path.display()
                );
            }
        }
        write_new(&path, gitlab::dotenv(&outputs).as_bytes())?;
    }
    if let Some(path) = context.junit_path(out_dir) {
        write_new(&path, output::junit::render(result)?.as_bytes())?;
    }
    Ok(())
}

/// Adds to a file the CI runner owns (and may have filled already), creating it if needed.
fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot append to {}: {e}", path.display()),
        )
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(named)?;
    file.write_all(bytes).map_err(named)?;
    file.flush().map_err(named)
}

/// Writes one of our own files whole, creating its folder (`--junit reports/junit.xml`).
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    crate::disk::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures::{failed_report, october, ok_report, run_of};
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn detects_github_then_gitlab_then_nothing() {
        assert_eq!(
            Provider::detect(env_of(&[("GITHUB_ACTIONS", "true")])),
            Provider::GitHub
        );
        assert_eq!(
            Provider::detect(env_of(&[("GITLAB_CI", "true")])),
            Provider::GitLab
        );
        assert_eq!(
            Provider::detect(env_of(&[("GITHUB_ACTIONS", "false"), ("CI", "true")])),
            Provider::None
        );
        assert_eq!(Provider::detect(env_of(&[])), Provider::None);
    }

    #[test]
    fn the_flag_overrides_detection() {
        let env = env_of(&[("GITHUB_ACTIONS", "true"), ("GITHUB_OUTPUT", "/tmp/out")]);
        let context = Context::from_env(Some(Provider::None), None, None, &env);
        assert_eq!(context.provider, Provider::None);
        assert_eq!(context.github_output, None);
        let context = Context::from_env(None, None, None, &env);
        assert_eq!(context.provider, Provider::GitHub);
        assert_eq!(context.github_output, Some(PathBuf::from("/tmp/out")));
        let context = Context::from_env(Some(Provider::GitLab), None, None, &env);
        assert_eq!(context.provider, Provider::GitLab);
    }

    #[test]
    fn provider_names_parse_and_print() {
        for name in Provider::NAMES {
            assert_eq!(name.parse::<Provider>().unwrap().to_string(), name);
        }
        let err = "jenkins".parse::<Provider>().unwrap_err();
        assert!(err.contains("github, gitlab, none"), "{err}");
    }

    #[test]
    fn files_default_into_the_output_folder_on_gitlab_only() {
        let out = Path::new("reports");
        let gitlab = Context::from_env(Some(Provider::GitLab), None, None, env_of(&[]));
        assert_eq!(gitlab.junit_path(out), Some(out.join("junit.xml")));
        assert_eq!(gitlab.dotenv_path(out), Some(out.join("outputs.env")));
        let none = Context::from_env(Some(Provider::None), None, None, env_of(&[]));
        assert_eq!(none.junit_path(out), None);
        assert_eq!(none.dotenv_path(out), None);
        let chosen = Context::from_env(
            Some(Provider::None),
            Some("j.xml".into()),
            Some("o.env".into()),
            env_of(&[]),
        );
        assert_eq!(chosen.junit_path(out), Some(PathBuf::from("j.xml")));
        assert_eq!(chosen.dotenv_path(out), Some(PathBuf::from("o.env")));
    }

    #[test]
    fn exit_code_is_one_when_any_report_failed() {
        assert_eq!(exit_code(&run_of(vec![ok_report("acme", october())])), 0);
        assert_eq!(exit_code(&run_of(vec![])), 0);
        let run = run_of(vec![
            ok_report("acme", october()),
            failed_report("globex", october(), "boom"),
        ]);
        assert_eq!(exit_code(&run), 1);
        let outputs = Outputs::new(&run, Path::new("out"));
        assert_eq!(outputs.reports_ok, 1);
        assert_eq!(outputs.reports_failed, 1);
        assert_eq!(outputs.exit_code, 1);
        assert_eq!(
            outputs.manifest,
            Path::new("out").join("manifest.json").to_string_lossy()
        );
    }

    #[test]
    fn publish_appends_on_github_and_writes_gitlab_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        fs::create_dir_all(&out).unwrap();
        let github_output = dir.path().join("github_output");
        let summary = dir.path().join("summary");
        fs::write(&github_output, "earlier=1\n").unwrap();
        fs::write(&summary, "# earlier step\n").unwrap();
        let run = run_of(vec![ok_report("acme", october())]);
        let context = Context {
            provider: Provider::GitHub,
            github_output: Some(github_output.clone()),
            github_step_summary: Some(summary.clone()),
            junit: None,
            dotenv: None,
        };
        publish(&context, &run, &out, None).unwrap();
        let outputs = fs::read_to_string(&github_output).unwrap();
        assert!(outputs.starts_with("earlier=1\noutput-dir<<"), "{outputs}");
        assert!(outputs.contains("\nreports-ok=1\n"), "{outputs}");
        let text = fs::read_to_string(&summary).unwrap();
        assert!(
            text.starts_with("# earlier step\n# Acronis billing reports"),
            "{text}"
        );
        assert!(!out.join(JUNIT).exists());

        let context = Context::from_env(Some(Provider::GitLab), None, None, env_of(&[]));
        publish(&context, &run, &out, Some(130)).unwrap();
        assert!(
            fs::read_to_string(out.join(DOTENV))
                .unwrap()
                .contains("ACRONIS_REPORTS_OK=1\n")
        );
        assert!(
            fs::read_to_string(out.join(DOTENV))
                .unwrap()
                .ends_with("ACRONIS_EXIT_CODE=130\n"),
            "an interrupted run says its own exit code"
        );
        assert!(
            fs::read_to_string(out.join(JUNIT))
                .unwrap()
                .contains("<testcase name=\"acme\"")
        );
    }
}
