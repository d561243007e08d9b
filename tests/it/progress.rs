//! What a run shows on standard error: a live progress display on a terminal (a real
//! pseudo-terminal here), plain lines in a pipe or CI, a JSON event log with `--log-format json`;
//! and the generated shell completions and man page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::{ACME, AS_OF, GLOBEX, INITECH};

/// A scratch folder with a job file and a sandbox scenario in it.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A job of both formats for last month of the given tenants, `concurrency` at a time,
    /// against a sandbox whose reports take `delay` and where `failing` tenants fail.
    fn new(tenants: &[(&str, &str)], concurrency: u32, delay: &str, failing: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut job = format!(
            "version: 1\n\
             polling:\n  initial_interval: 50ms\n  max_interval: 200ms\n  timeout: 20s\n\
             concurrency: {concurrency}\n\
             defaults:\n  formats: [csv_v2_0, json_v2_0]\n  periods: [previous_month]\n\
             tenants:\n"
        );
        for (id, name) in tenants {
            job.push_str(&format!("  - id: {id}\n    name: {name}\n"));
        }
        std::fs::write(dir.path().join("job.yml"), job).expect("write job");
        let mut scenario = format!("generation_delay: {delay}\n");
        if !failing.is_empty() {
            scenario.push_str("tenants:\n");
            for id in failing {
                scenario.push_str(&format!("  {id}: {{fail: true}}\n"));
            }
        }
        std::fs::write(dir.path().join("scenario.yml"), scenario).expect("write scenario");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `run job.yml --sandbox …` with a clean environment (no CI variables) plus `env`.
    fn run(&self, extra: &[&str], env: Env) -> Command {
        let mut cmd = bare_cmd(self.dir.path(), env);
        cmd.arg("run")
            .arg(self.path("job.yml"))
            .arg("--out")
            .arg(self.path("out"))
            .args(["--as-of", AS_OF, "--sandbox", "--sandbox-scenario"])
            .arg(self.path("scenario.yml"))
            .args(extra);
        cmd
    }
}

/// Environment variables for the binary.
type Env<'a> = &'a [(&'a str, &'a str)];

/// The binary with nothing inherited that could change what it shows (CI, NO_COLOR, RUST_LOG…).
fn bare_cmd(dir: &Path, env: Env) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_acronis-reports"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

/// Runs with standard output and standard error on pipes, bounded in time.
fn run_piped(cmd: &mut Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("binary starts");
    let _watchdog = Watchdog::new(child.id());
    child.wait_with_output().expect("binary runs")
}

/// Kills the child if the test takes far too long, so that a hang fails instead of blocking.
struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
}

impl Watchdog {
    fn new(pid: u32) -> Self {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                wait.recv_timeout(std::time::Duration::from_secs(120))
            {
                #[cfg(unix)]
                if let Ok(pid) = i32::try_from(pid) {
                    // SAFETY: plain kill(2) of our own child, which has not been reaped yet.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
                #[cfg(not(unix))]
                let _ = pid;
            }
        });
        Self { done: Some(done) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Braille spinner frames, the default spinner, or any of the usual ASCII ones after a `\r`.
fn has_spinner_noise(output: &str) -> bool {
    output
        .chars()
        .any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
        || output.contains('\r')
        || output.contains("\x1b[")
}

/// The status words of the progress display.
const STATUS_WORDS: &str = "generating ·";

#[cfg(unix)]
mod pty {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::{Command, ExitStatus, Stdio};

    use super::Watchdog;

    /// Runs `cmd` with standard error on a fresh pseudo-terminal of 100×30 and standard output
    /// on a pipe; returns the exit status, what the terminal showed, and standard output.
    pub fn run(mut cmd: Command) -> (ExitStatus, String, String) {
        let mut master = -1;
        let mut slave = -1;
        let size = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the given ints; the name and termios
        // pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned by nobody else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        cmd.stdout(Stdio::piped()).stderr(Stdio::from(slave));
        let mut child = cmd.spawn().expect("binary starts");
        // Our copy of the terminal's slave side must go, or the reader never sees its end.
        drop(cmd);
        let watchdog = Watchdog::new(child.id());
        let reader = std::thread::spawn(move || {
            let mut terminal = std::fs::File::from(master);
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                // Linux answers EIO once the last slave descriptor is closed.
                match terminal.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buffer[..n]),
                }
            }
            seen
        });
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .expect("stdout piped")
            .read_to_string(&mut stdout)
            .expect("read stdout");
        let status = child.wait().expect("binary runs");
        let seen = reader.join().expect("terminal reader");
        drop(watchdog);
        (status, String::from_utf8_lossy(&seen).into_owned(), stdout)
    }
}

#[cfg(unix)]
#[test]
fn a_terminal_gets_a_live_progress_display() {
    let scratch = Scratch::new(&[(ACME, "acme"), (GLOBEX, "globex")], 1, "400ms", &[]);
    let (status, terminal, stdout) = pty::run(scratch.run(&[], &[("TERM", "xterm-256color")]));
    assert!(status.success(), "{status}\n{terminal}\n{stdout}");
    // indicatif redraws its line in place: carriage returns and erase-line sequences.
    assert!(terminal.contains("\x1b[2K"), "no redraw:\n{terminal:?}");
    assert!(
        terminal.contains(STATUS_WORDS),
        "no status line:\n{terminal}"
    );
    assert!(terminal.contains("/2 reports"), "no bar:\n{terminal}");
    assert!(
        terminal.contains("2 of 2 report(s) finished in") && terminal.contains("2 done, 0 failed"),
        "no final line:\n{terminal}"
    );
    // The bar counts the run's per-report info lines instead of printing them.
    assert!(!terminal.contains("created report"), "{terminal}");
    assert!(stdout.contains("2 report(s) ok"), "{stdout}");
    assert!(!has_spinner_noise(&stdout), "{stdout:?}");
}

/// `text` without ANSI escape sequences (CSI: ESC `[` parameters, one final letter).
fn strip_escapes(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(unix)]
#[test]
fn a_terminal_gets_log_lines_with_verbose_and_none_of_them_tear_the_bar() {
    let scratch = Scratch::new(&[(ACME, "acme"), (GLOBEX, "globex")], 2, "300ms", &[]);
    let env = [("TERM", "xterm-256color"), ("NO_COLOR", "1")];
    let (status, terminal, _) = pty::run(scratch.run(&["-v"], &env));
    assert!(status.success(), "{status}\n{terminal}");
    assert!(
        terminal.contains(STATUS_WORDS),
        "no status line:\n{terminal}"
    );
    assert!(
        !terminal.contains("\x1b[3"),
        "NO_COLOR, yet colours:\n{terminal:?}"
    );
    // Each log line is whole: the bar is erased first (the last erase-line before the line's
    // text is followed by nothing printable but the text) and drawn again only after it.
    let mut checked = 0;
    for line in terminal
        .split('\n')
        .filter(|l| l.contains(": created report"))
    {
        let text_at = line
            .find("INFO")
            .unwrap_or_else(|| panic!("not a log line: {line:?}"));
        let erased_at = line[..text_at]
            .rfind("\x1b[2K")
            .unwrap_or_else(|| panic!("written over the bar: {line:?}"));
        let between = strip_escapes(&line[erased_at..text_at]);
        assert!(between.trim().is_empty(), "torn line: {line:?}");
        assert!(!line[text_at..].contains("reports"), "torn line: {line:?}");
        checked += 1;
    }
    assert_eq!(checked, 2, "{terminal}");
}

#[cfg(unix)]
#[test]
fn quiet_ci_and_json_show_no_bar_even_on_a_terminal() {
    let scratch = Scratch::new(&[(ACME, "acme")], 1, "200ms", &[]);
    let cases: [(&[&str], Env); 3] = [
        (&["-q"], &[]),
        (&[], &[("CI", "true")]),
        (&["--log-format", "json"], &[]),
    ];
    for (args, env) in cases {
        let mut env = env.to_vec();
        env.push(("TERM", "xterm-256color"));
        let (status, terminal, _) = pty::run(scratch.run(args, &env));
        assert!(status.success(), "{args:?} {env:?}: {status}\n{terminal}");
        assert!(
            !terminal.contains("\x1b[2K") && !terminal.contains(STATUS_WORDS),
            "{args:?} {env:?} drew a bar:\n{terminal:?}"
        );
        if args.contains(&"json") {
            // The terminal turns each \n into \r\n.
            let lines: Vec<&str> = terminal.lines().map(|l| l.trim_end_matches('\r')).collect();
            for line in &lines {
                assert!(
                    serde_json::from_str::<Value>(line).is_ok(),
                    "not JSON: {line:?}"
                );
            }
            // created, ready, saved (two files) and finished at least: the loop saw lines.
            assert!(lines.len() >= 5, "{terminal:?}");
        }
    }
}

#[test]
fn a_pipe_gets_one_plain_line_per_state_change() {
    let scratch = Scratch::new(&[(ACME, "acme"), (GLOBEX, "globex")], 2, "100ms", &[]);
    let output = run_piped(&mut scratch.run(&[], &[]));
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!has_spinner_noise(&stderr), "{stderr:?}");
    assert!(!stderr.contains(STATUS_WORDS), "{stderr}");
    assert!(!stderr.contains("::group::"), "not on GitHub: {stderr}");
    for tenant in ["acme", "globex"] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(&format!("{tenant} 2026-10:")))
            .collect();
        let position = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no `{needle}` line for {tenant}:\n{stderr}"))
        };
        assert!(position("created report") < position("is ready after"));
        assert!(position("is ready after") < position("saved "));
        assert!(position("saved ") < position(": done"));
        assert_eq!(lines.len(), 5, "one line per state change:\n{stderr}");
    }
}

#[test]
fn github_actions_gets_the_report_lines_in_one_group() {
    let scratch = Scratch::new(
        &[(ACME, "acme"), (INITECH, "initech")],
        2,
        "100ms",
        &[INITECH],
    );
    let output = run_piped(&mut scratch.run(&[], &[("GITHUB_ACTIONS", "true")]));
    let stderr = text(&output.stderr);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!has_spinner_noise(&stderr), "{stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    let opens: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i] == "::group::Reports")
        .collect();
    let closes: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i] == "::endgroup::")
        .collect();
    assert_eq!((opens.len(), closes.len()), (1, 1), "{stderr}");
    let (open, close) = (opens[0], closes[0]);
    assert!(open < close);
    let mut grouped = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.contains("created report") || line.ends_with(": done") || line.ends_with(": failed")
        {
            assert!(open < i && i < close, "outside the group: {line}\n{stderr}");
            grouped += 1;
        }
        // Workflow commands of the run (annotations) are never inside the group.
        if line.starts_with("::error") || line.starts_with("::warning") {
            assert!(i > close, "annotation inside the group: {line}");
        }
    }
    // Both reports were created and finished (one done, one failed): the loop saw them.
    assert!(grouped >= 4, "{stderr}");
    // The annotations are printed on standard output after the run, outside the group.
    assert!(stdout.contains("::error title=initech"), "{stdout}");
    assert!(!stdout.contains("::group::"), "{stdout}");
}

/// Runs the job with `--log-format json` and returns the exit code and every stderr line as
/// JSON (failing on a line that is not), and standard error as text.
fn json_log(scratch: &Scratch, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec!["--log-format", "json"];
    args.extend_from_slice(extra);
    let output = run_piped(&mut scratch.run(&args, &[]));
    let stderr = text(&output.stderr);
    let values = stderr
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{stderr}"))
        })
        .collect();
    (output.status.code(), values, stderr)
}

/// Checks that every report's events come in a valid order: `created`, `ready`, one or more
/// `saved`, `finished` (or `created` → `finished` for a report that failed on the server), and
/// that every event and log line has its timestamp.
fn assert_valid_order(events: &[Value]) -> BTreeMap<u64, Vec<String>> {
    let mut per_report: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for event in events {
        let ts = event["ts"].as_str().expect("every line has a ts");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "not RFC 3339: {ts}");
        let kind = event["event"].as_str().expect("every line has an event");
        if kind == "log" {
            assert!(event["level"].is_string() && event["message"].is_string());
            continue;
        }
        let index = event["index"].as_u64().expect("events have an index");
        per_report.entry(index).or_default().push(kind.to_owned());
    }
    for (index, kinds) in &per_report {
        let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
        let valid = match kinds.as_slice() {
            ["created", "finished"] => true,
            ["created", "ready", saved @ .., "finished"] => saved.iter().all(|k| *k == "saved"),
            _ => false,
        };
        assert!(valid, "report {index}: events out of order: {kinds:?}");
    }
    per_report
}

#[test]
fn the_json_event_log_is_json_only_and_in_order() {
    let scratch = Scratch::new(&[(ACME, "acme"), (GLOBEX, "globex")], 1, "100ms", &[]);
    let (code, mut events, stderr) = json_log(&scratch, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let per_report = assert_valid_order(&events);
    assert_eq!(per_report.len(), 2, "{stderr}");
    assert!(
        per_report
            .values()
            .all(|kinds| kinds.iter().filter(|k| *k == "saved").count() == 2),
        "two files per report: {per_report:?}"
    );
    // One report at a time, so the order is fixed; sorting by index keeps it so regardless.
    events.sort_by_key(|e| e["index"].as_u64());
    insta::assert_json_snapshot!("json_event_log", events, {
        "[].ts" => "[ts]",
        "[].report_id" => "[report id]",
        "[].sha256" => "[sha256]",
        "[].waited_ms" => "[ms]",
        // Sizes depend on the sandbox's sample data, which is not what this test is about.
        "[].bytes" => insta::dynamic_redaction(|value, _| {
            assert!(value.as_u64().is_some_and(|n| n > 0), "{value:?}");
            "[bytes]"
        }),
    });
}

#[test]
fn failures_and_warnings_are_json_log_records() {
    let scratch = Scratch::new(
        &[(ACME, "acme"), (INITECH, "initech")],
        2,
        "100ms",
        &[INITECH],
    );
    // `-v` adds the info records, as log events too.
    let (code, events, stderr) = json_log(&scratch, &["-v"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_valid_order(&events);
    let finished = |tenant: &str| {
        events
            .iter()
            .find(|e| e["event"] == "finished" && e["tenant"] == tenant)
            .unwrap_or_else(|| panic!("no finished event for {tenant}:\n{stderr}"))
    };
    assert_eq!(finished("acme")["status"], "ok");
    assert_eq!(finished("acme")["error"], Value::Null);
    assert_eq!(finished("initech")["status"], "failed");
    assert!(finished("initech")["error"].is_string());
    let logs: Vec<&Value> = events.iter().filter(|e| e["event"] == "log").collect();
    assert!(
        logs.iter()
            .any(|e| e["level"] == "error" && e["message"].as_str().unwrap().contains("initech")),
        "no error record:\n{stderr}"
    );
    assert!(
        logs.iter().any(|e| e["level"] == "info"),
        "-v brings the info records:\n{stderr}"
    );
}

#[test]
fn a_fatal_error_is_a_json_log_record_too() {
    let scratch = Scratch::new(&[(ACME, "acme")], 1, "100ms", &[]);
    std::fs::write(scratch.path("job.yml"), "version: 1\nfromats: []\n").unwrap();
    let (code, events, stderr) = json_log(&scratch, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let last = events.last().expect("an error record");
    assert_eq!(last["event"], "log");
    assert_eq!(last["level"], "error");
    assert!(
        last["message"].as_str().unwrap().contains("fromats"),
        "{stderr}"
    );
}

fn generate(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = run_piped(bare_cmd(dir.path(), &[]).args(args));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
    text(&output.stdout)
}

#[test]
fn completions_name_every_subcommand() {
    let bash = generate(&["completions", "bash"]);
    for name in [
        "run",
        "validate",
        "plan",
        "verify",
        "compare",
        "sandbox",
        "schema",
        "merge",
        "completions",
        "man",
        "--log-format",
        "--sandbox-scenario",
    ] {
        assert!(bash.contains(name), "bash completions lack {name}");
    }
    assert!(bash.contains("complete -F") && bash.contains("acronis-reports"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let script = generate(&["completions", shell]);
        assert!(
            script.contains("acronis-reports") && script.contains("validate"),
            "{shell}: {script}"
        );
    }
}

#[test]
fn the_man_page_is_roff() {
    let page = generate(&["man"]);
    assert!(page.contains(".TH"), "{page}");
    assert!(page.contains("acronis\\-reports"), "{page}");
    assert!(page.contains("completions"), "{page}");
    assert!(page.contains("log\\-format"), "{page}");
}

#[test]
fn help_documents_completions_man_and_log_format() {
    let help = generate(&["--help"]);
    for needle in ["completions", "man", "--log-format", "NO_COLOR"] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}
