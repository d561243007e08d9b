//! The run's summary section on time: how long the run took against what the trail's earlier
//! periods let us expect, and the tenants whose generation time moved most from their history.
//! Written only when there was history to expect anything from.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use super::summary::inline;
use crate::history::Estimate;
use crate::results::{Changed, ReportLog, Timing};

/// Rows of the table of changed tenants: the largest changes are the ones to look at.
const MAX_ROWS: usize = 10;
/// A change smaller than this share of the expected time is month-to-month noise.
const SHOWN_FROM: f64 = 0.25;
const NAME_CHARS: usize = 80;

/// One report whose generation time moved from its tenant's history.
#[derive(Clone, Debug, PartialEq)]
struct Moved {
    tenant_name: String,
    tenant_id: String,
    expected: f64,
    /// This run's time: the middle of its last pending and first saved polls, or only the
    /// first saved one (an upper bound) when its first poll saw it saved.
    actual: f64,
    at_most: bool,
    changed: Option<Changed>,
}

impl Moved {
    fn of(tenant_name: String, tenant_id: String, timing: &Timing) -> Option<Moved> {
        let expected = timing.expected_ms? as f64 / 1000.0;
        let high = timing.ready_after_ms as f64 / 1000.0;
        let (actual, at_most) = match timing.pending_at_ms {
            Some(low) => ((low as f64 / 1000.0 + high) / 2.0, false),
            None => (high, true),
        };
        (expected > 0.0).then_some(Moved {
            tenant_name,
            tenant_id,
            expected,
            actual,
            at_most,
            changed: timing.changed,
        })
    }

    /// How far it moved, as a factor either way (2 = twice or half the time).
    fn factor(&self) -> f64 {
        let ratio = self.actual / self.expected;
        if ratio >= 1.0 { ratio } else { 1.0 / ratio }
    }

    fn shown(&self) -> bool {
        self.changed.is_some() || (self.actual / self.expected - 1.0).abs() >= SHOWN_FROM
    }
}

/// The "Duration" section of the run's summary; `None` without history (no `estimate`).
/// `actual` is the time from the run's start to its last report.
pub(crate) fn section(
    reports: &ReportLog,
    estimate: Option<&Estimate>,
    actual: Duration,
) -> io::Result<Option<String>> {
    let Some(estimate) = estimate else {
        return Ok(None);
    };
    let mut moved = Vec::new();
    let (mut timed, mut compared) = (0usize, 0usize);
    for report in reports.iter() {
        let report = report?;
        let Some(timing) = &report.timing else {
            continue;
        };
        timed += 1;
        if let Some(m) = Moved::of(report.tenant_name, report.tenant_id, timing) {
            compared += 1;
            if m.shown() {
                moved.push(m);
            }
        }
    }
    // A run that generated nothing (every report failed early, or was finished by an earlier
    // run) took a time that says nothing about generation.
    if timed == 0 {
        return Ok(None);
    }
    moved.sort_by(|a, b| {
        b.factor()
            .total_cmp(&a.factor())
            .then_with(|| a.tenant_name.cmp(&b.tenant_name))
    });
    Ok(Some(render(estimate, actual, &moved, compared)))
}

fn render(estimate: &Estimate, actual: Duration, moved: &[Moved], compared: usize) -> String {
    let mut out = "## Duration\n\n".to_owned();
    let ratio = actual.as_secs_f64() / estimate.duration.as_secs_f64().max(1e-3);
    let periods = estimate.periods.join(", ");
    let _ = writeln!(
        out,
        "This run took **{}**; the generation times recorded in {periods} led to expect {} ({:.2}× that) for its {} reports at {} at a time, slowest first.{}\n",
        span(actual),
        span(estimate.duration),
        ratio,
        estimate.reports,
        estimate.slots,
        match estimate.reports - estimate.known {
            0 => String::new(),
            unknown => format!(
                " {unknown} of them had no history and counted at the median of the others."
            ),
        }
    );
    if moved.is_empty() {
        let _ = writeln!(
            out,
            "No tenant's generation time moved by {:.0} % or more from its history ({compared} reports compared).\n",
            SHOWN_FROM * 100.0
        );
        return out;
    }
    out.push_str("| Tenant | Expected | This run | Change |\n| --- | ---: | ---: | --- |\n");
    for m in moved.iter().take(MAX_ROWS) {
        let change = (m.actual / m.expected - 1.0) * 100.0;
        let note = match m.changed {
            Some(Changed::Slower) => {
                "; much slower than its history, so polled like a tenant without it"
            }
            Some(Changed::Faster) => {
                "; saved at a first poll made before its expected time: faster by an unknown amount; timed afresh next run"
            }
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} (`{}`) | {} | {}{} | {}{:.0} %{note} |",
            inline(&m.tenant_name, NAME_CHARS),
            inline(&m.tenant_id, NAME_CHARS),
            span_secs(m.expected),
            if m.at_most { "≤ " } else { "" },
            span_secs(m.actual),
            if change >= 0.0 { "+" } else { "" },
            change
        );
    }
    out.push('\n');
    if moved.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "{} reports' generation time moved by {:.0} % or more; the {MAX_ROWS} that moved most are shown (each report's `timing` in manifest.json has them all).\n",
            moved.len(),
            SHOWN_FROM * 100.0
        );
    }
    out
}

fn span(d: Duration) -> String {
    span_secs(d.as_secs_f64())
}

/// Seconds as a person reads them: `0.85 s`, `12.3 s`, `4 min 05 s`, `1 h 02 min`.
fn span_secs(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".to_owned();
    }
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        let whole = s.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        let minutes = (s / 60.0).round() as u64;
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate() -> Estimate {
        Estimate {
            duration: Duration::from_millis(9_200),
            reports: 60,
            known: 58,
            slots: 10,
            periods: vec!["2026-10".into()],
        }
    }

    fn moved(name: &str, expected: f64, actual: f64, changed: Option<Changed>) -> Moved {
        Moved {
            tenant_name: name.into(),
            tenant_id: format!("{name}-id"),
            expected,
            actual,
            at_most: changed == Some(Changed::Faster),
            changed,
        }
    }

    #[test]
    fn says_the_estimate_and_the_actual_duration() {
        let text = render(&estimate(), Duration::from_millis(9_700), &[], 58);
        assert!(text.starts_with("## Duration\n"), "{text}");
        assert!(text.contains("took **9.70 s**"), "{text}");
        assert!(text.contains("expect 9.20 s (1.05× that)"), "{text}");
        assert!(text.contains("2 of them had no history"), "{text}");
        assert!(text.contains("No tenant's generation time moved"), "{text}");
    }

    #[test]
    fn the_largest_changes_lead_and_the_table_is_capped() {
        let mut rows: Vec<Moved> = (0..15)
            .map(|i| moved(&format!("t{i:02}"), 1.0, 1.3 + i as f64 / 10.0, None))
            .collect();
        rows.push(moved("quick", 4.0, 1.0, Some(Changed::Faster)));
        rows.push(moved("slow", 1.0, 5.0, Some(Changed::Slower)));
        rows.sort_by(|a, b| b.factor().total_cmp(&a.factor()));
        let text = render(&estimate(), Duration::from_secs(10), &rows, 60);
        let table: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
            .collect();
        assert_eq!(table.len(), 1 + MAX_ROWS, "{text}");
        assert!(table[1].starts_with("| slow"), "{text}");
        assert!(table[1].contains("+400 %; much slower"), "{text}");
        assert!(
            table[2].contains("≤ 1.00 s | -75 %; saved at a first poll"),
            "{text}"
        );
        assert!(text.contains("17 reports' generation time moved"), "{text}");
    }

    #[test]
    fn names_cannot_break_the_table() {
        let rows = [moved("a|b\nc", 1.0, 2.0, None)];
        let text = render(&estimate(), Duration::from_secs(10), &rows, 1);
        assert!(text.contains("a\\|b c"), "{text}");
    }

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span_secs(0.854), "0.85 s");
        assert_eq!(span_secs(12.34), "12.3 s");
        assert_eq!(span_secs(245.0), "4 min 05 s");
        assert_eq!(span_secs(3720.0), "1 h 02 min");
        assert_eq!(span_secs(f64::NAN), "?");
    }

    #[test]
    fn a_report_counts_only_against_an_expectation() {
        let timing = Timing {
            ready_after_ms: 2_000,
            pending_at_ms: Some(1_000),
            polls: 3,
            expected_ms: None,
            changed: None,
        };
        assert_eq!(Moved::of("a".into(), "a-id".into(), &timing), None);
        let timing = Timing {
            expected_ms: Some(1_000),
            ..timing
        };
        let m = Moved::of("a".into(), "a-id".into(), &timing).unwrap();
        assert_eq!((m.actual, m.at_most), (1.5, false));
        assert!(m.shown());
    }
}
