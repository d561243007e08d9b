//! The checklist as lines for people or as JSON: pure functions of a [`Report`].

use super::{Report, Verdict};
use crate::api::one_line;

/// One line per check that ran: `✔ title: detail`, or `✘ title: detail → what to do`. Server
/// text is flattened to one line without control characters (no escape sequence reaches the
/// terminal). Checks that did not run are left out; [`summary`] counts them.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for check in &report.checks {
        let mark = match check.status {
            Verdict::Pass => "✔",
            Verdict::Fail => "✘",
            Verdict::Skipped => continue,
        };
        out.push_str(&format!(
            "{mark} {}: {}",
            one_line(&check.title, 80),
            one_line(&check.detail, 2000)
        ));
        if let (Verdict::Fail, Some(hint)) = (check.status, &check.hint) {
            out.push_str(&format!(" → {}", one_line(hint, 2000)));
        }
        out.push('\n');
    }
    out
}

/// The report as one pretty-printed JSON document (with a final newline).
pub fn render_json(report: &Report) -> String {
    // Plain data: serialising it cannot fail.
    let mut text = serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// One closing line: how many checks passed, failed, did not run.
pub fn summary(report: &Report) -> String {
    let (passed, failed, skipped) = (
        report.count(Verdict::Pass),
        report.count(Verdict::Fail),
        report.count(Verdict::Skipped),
    );
    let not_run = if skipped > 0 {
        format!("; {skipped} not run (they need what failed, or do not apply)")
    } else {
        String::new()
    };
    if failed == 0 {
        format!("all {passed} check(s) passed{not_run}")
    } else {
        format!("{failed} of {} check(s) failed{not_run}", passed + failed)
    }
}
