//! GitHub Actions: workflow commands on standard output (`::add-mask::`, `::error::`, …) and the
//! `$GITHUB_OUTPUT` file, as pure functions to text. The step summary is `summary.md` itself
//! ([`crate::output::summary::render`]), which stays under GitHub's 1 MiB.
//!
//! Workflow commands are escaped as the runner unescapes them: in the message, `%`, CR and LF;
//! in a property (`title=`), also `:` and `,`. So text from a job file or a server can neither
//! end a command early nor start another one.

use std::fmt::Write as _;
use std::io;

use super::{Outputs, Value};
use crate::results::{ProblemKey, RunResult};

/// GitHub shows at most 10 error and 10 warning annotations per step; we send at most this many
/// in all, then one notice that counts the rest.
pub(crate) const MAX_ANNOTATIONS: usize = 10;
const NAME_CHARS: usize = 100;
const MESSAGE_CHARS: usize = 1000;

/// Escapes the message part of a workflow command.
pub(crate) fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a property value of a workflow command (`title=...`).
pub(crate) fn escape_property(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' => out.push_str("%3A"),
            ',' => out.push_str("%2C"),
            _ => out.push(c),
        }
    }
    out
}

/// Prints [`mask_commands`] for `secrets` on standard output at once, where the runner reads
/// workflow commands, before anything that could contain them is printed.
pub fn print_masks(secrets: &[String]) {
    use std::io::Write as _;
    let masks = mask_commands(secrets);
    if !masks.is_empty() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(masks.as_bytes());
        let _ = stdout.flush();
    }
}

/// `::add-mask::` for each secret; a secret of several lines is masked line by line, as GitHub
/// masks a log line by line. Empty values and lines are skipped.
pub(crate) fn mask_commands(secrets: &[String]) -> String {
    let mut out = String::new();
    for secret in secrets {
        for line in secret.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if !line.trim().is_empty() {
                let _ = writeln!(out, "::add-mask::{}", escape_data(line));
            }
        }
    }
    out
}

/// One annotation per failed report, then one per warning (each in period, tenant order), at
/// most [`MAX_ANNOTATIONS`]; then one `::notice` for the rest, if any.
pub(crate) fn annotations(result: &RunResult) -> io::Result<String> {
    // Only keys of the reports with a problem are kept; the few annotated are read again.
    let mut found = Vec::new();
    for (position, report) in result.reports.iter().enumerate() {
        found.extend(ProblemKey::of(position, &report?));
    }
    found.sort_unstable();
    let failures = found
        .iter()
        .filter(|key| key.failed)
        .map(|key| ("error", key.position, None));
    let warnings = found
        .iter()
        .flat_map(|key| (0..key.warnings).map(move |w| ("warning", key.position, Some(w))));
    let mut out = String::new();
    let (mut shown, mut failed_left, mut warnings_left) = (0, 0, 0);
    for (command, position, warning) in failures.chain(warnings) {
        if shown == MAX_ANNOTATIONS {
            if command == "error" {
                failed_left += 1;
            } else {
                warnings_left += 1;
            }
            continue;
        }
        let report = result.reports.get(position)?;
        let (what, message) = match warning {
            None => (
                "report failed",
                report.error.as_deref().unwrap_or("no reason was recorded"),
            ),
            Some(w) => ("warning", report.warnings[w].as_str()),
        };
        shown += 1;
        let tenant = cut(&report.tenant_name, NAME_CHARS);
        let title = format!("{tenant} · {}: {what}", report.period);
        let text = format!(
            "{tenant} ({}), period {} ({} to {}), {} / {}: {}",
            cut(&report.tenant_id, NAME_CHARS),
            report.period,
            report.period.start,
            report.period.end,
            report.kind,
            report.level,
            cut(message, MESSAGE_CHARS)
        );
        let _ = writeln!(
            out,
            "::{command} title={}::{}",
            escape_property(&title),
            escape_data(&text)
        );
    }
    let left = failed_left + warnings_left;
    if left > 0 {
        let text = format!(
            "{} not annotated ({} failed, {}): GitHub shows only the first {MAX_ANNOTATIONS}. The step summary and manifest.json list every problem.",
            plural(left, "more problem"),
            plural(failed_left, "report"),
            plural(warnings_left, "warning"),
        );
        let _ = writeln!(
            out,
            "::notice title={}::{}",
            escape_property(&plural(left, "more problem")),
            escape_data(&text)
        );
    }
    Ok(out)
}

/// The `$GITHUB_OUTPUT` lines: counts as `name=value`; paths, which could hold a line break, in
/// the `name<<DELIMITER` form. `delimiter` must not be a line of any value ([`delimiter_for`]).
pub(crate) fn output_file(outputs: &Outputs, delimiter: &str) -> String {
    let mut out = String::new();
    for (name, value) in outputs.named() {
        match value {
            Value::Number(n) => {
                let _ = writeln!(out, "{name}={n}");
            }
            Value::Path(text) => {
                let _ = writeln!(out, "{name}<<{delimiter}\n{text}\n{delimiter}");
            }
        }
    }
    out
}

/// A random delimiter (as GitHub's own toolkit makes them) that no output value contains.
pub(crate) fn delimiter_for(outputs: &Outputs) -> String {
    loop {
        let delimiter = format!("ghadelimiter_{}", uuid::Uuid::new_v4());
        let clashes = outputs
            .named()
            .iter()
            .any(|(_, value)| value.to_string().contains(&delimiter));
        if !clashes {
            return delimiter;
        }
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max).collect::<String>() + "…"
    } else {
        text.to_owned()
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures::{failed_report, october, ok_report, run_of};
    use std::path::Path;

    /// Undoes the runner's escaping, to check that commands carry the text unchanged.
    fn unescape(text: &str) -> String {
        text.replace("%0D", "\r")
            .replace("%0A", "\n")
            .replace("%3A", ":")
            .replace("%2C", ",")
            .replace("%25", "%")
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn escapes_data_and_properties_as_the_runner_expects() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_data("a:b,c"), "a:b,c");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        let nasty = "x%0A::error::injected\n::warning::more, and: so on %25";
        assert_eq!(unescape(&escape_property(nasty)), nasty);
        assert_eq!(unescape(&escape_data(nasty)), nasty);
        assert!(!escape_data(nasty).contains('\n'));
    }

    #[test]
    fn masks_every_secret_line() {
        let secrets = vec![
            "s3cr%t".to_owned(),
            String::new(),
            "line one\r\nline two\n".to_owned(),
        ];
        assert_eq!(
            mask_commands(&secrets),
            "::add-mask::s3cr%25t\n::add-mask::line one\n::add-mask::line two\n"
        );
        assert_eq!(mask_commands(&[]), "");
    }

    #[test]
    fn no_annotations_for_a_clean_run() {
        assert_eq!(
            annotations(&run_of(vec![ok_report("acme", october())])).unwrap(),
            ""
        );
    }

    #[test]
    fn a_failed_report_is_an_error_naming_tenant_and_period() {
        let run = run_of(vec![
            ok_report("acme", october()),
            failed_report(
                "globex, inc: west",
                october(),
                "HTTP 404: tenant\nnot found",
            ),
        ]);
        let text = annotations(&run).unwrap();
        assert_eq!(
            lines(&text),
            [
                "::error title=globex%2C inc%3A west · 2026-10%3A report failed::globex, inc: west (globex, inc: west-id), period 2026-10 (2026-10-01 to 2026-10-31), usage_summary / direct_partners: HTTP 404: tenant%0Anot found"
            ]
        );
    }

    #[test]
    fn warnings_come_after_failures() {
        let mut warned = ok_report("acme", october());
        warned.warnings.push("2 of 3 rows lack a SKU".into());
        let run = run_of(vec![warned, failed_report("zeta", october(), "timed out")]);
        let text = annotations(&run).unwrap();
        let got = lines(&text);
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("::error title=zeta · 2026-10%3A report failed::"));
        assert!(got[1].starts_with("::warning title=acme · 2026-10%3A warning::"));
        assert!(got[1].ends_with(": 2 of 3 rows lack a SKU"));
    }

    #[test]
    fn at_most_ten_annotations_then_one_notice() {
        let mut reports: Vec<_> = (0..15)
            .map(|i| failed_report(&format!("tenant{i:02}"), october(), "failed"))
            .collect();
        let mut warned = ok_report("warned", october());
        warned.warnings = vec!["w1".into(), "w2".into()];
        reports.push(warned);
        let text = annotations(&run_of(reports)).unwrap();
        let got = lines(&text);
        assert_eq!(got.len(), MAX_ANNOTATIONS + 1);
        assert!(got[..10].iter().all(|l| l.starts_with("::error ")));
        assert!(got[0].contains("tenant00"));
        assert!(got[9].contains("tenant09"));
        assert_eq!(
            got[10],
            "::notice title=7 more problems::7 more problems not annotated (5 reports failed, 2 warnings): GitHub shows only the first 10. The step summary and manifest.json list every problem."
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let run = run_of(vec![failed_report("acme", october(), &"x".repeat(5000))]);
        let text = annotations(&run).unwrap();
        assert!(text.len() < MESSAGE_CHARS + 400, "{}", text.len());
        assert!(text.trim_end().ends_with('…'));
    }

    #[test]
    fn output_file_uses_delimiters_for_paths() {
        let run = run_of(vec![
            ok_report("acme", october()),
            failed_report("globex", october(), "boom"),
        ]);
        let outputs = Outputs::new(&run, Path::new("billing reports"));
        let sep = std::path::MAIN_SEPARATOR;
        assert_eq!(
            output_file(&outputs, "EOF_X"),
            format!(
                "output-dir<<EOF_X\nbilling reports\nEOF_X\n\
                 manifest<<EOF_X\nbilling reports{sep}manifest.json\nEOF_X\n\
                 checksums<<EOF_X\nbilling reports{sep}SHA256SUMS\nEOF_X\n\
                 reports-ok=1\nreports-failed=1\nexit-code=1\n"
            )
        );
    }

    #[test]
    fn a_path_with_a_line_break_stays_one_value() {
        let run = run_of(vec![failed_report("acme", october(), "boom")]);
        let outputs = Outputs::new(&run, Path::new("evil\nexit-code=0"));
        let delimiter = delimiter_for(&outputs);
        assert!(delimiter.starts_with("ghadelimiter_"));
        let text = output_file(&outputs, &delimiter);
        // Parse it as the runner does: `name<<D` takes every line up to the line `D`.
        let mut values = Vec::new();
        let mut it = text.lines();
        while let Some(line) = it.next() {
            if let Some((name, d)) = line.split_once("<<") {
                let mut value = Vec::new();
                for l in it.by_ref() {
                    if l == d {
                        break;
                    }
                    value.push(l);
                }
                values.push((name.to_owned(), value.join("\n")));
            } else {
                let (name, value) = line.split_once('=').unwrap();
                values.push((name.to_owned(), value.to_owned()));
            }
        }
        assert_eq!(values[0], ("output-dir".into(), "evil\nexit-code=0".into()));
        assert_eq!(values[5], ("exit-code".into(), "1".into()));
        assert_eq!(values.len(), 6);
    }
}
