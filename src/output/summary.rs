//! `summary.md`: the run for a human, outcome first: how many reports are ok and failed, and the
//! usage per SKU from `billing.csv`; then a table per period; then the problems, each with what
//! to do. Also appended to `$GITHUB_STEP_SUMMARY`, which GitHub refuses above 1 MiB, so the text
//! is kept under that whatever the run's size (long tables are folded, and cut with a note);
//! `manifest.json` and `billing.csv` always have everything.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::io;

use crate::api::one_line;
use crate::output::billing::BillingSummary;
use crate::period::Period;
use crate::report::{BillingMeasure, BillingRule, BillingScope, ReportKind, ReportLevel};
use crate::results::{
    FileResult, ProblemKey, ReportLog, ReportResult, RunResult, SkuStatus, Status,
};

/// GitHub's limit for one step summary.
pub const MAX_BYTES: usize = 1024 * 1024;
/// A longer table is unreadable anyway; manifest.json is the place for the rest.
const MAX_ROWS_PER_PERIOD: usize = 1000;
/// Tables longer than this are folded so that the problems below stay in sight.
const FOLD_ROWS_ABOVE: usize = 50;
/// The problems list is the most useful part, so it gets its room before the tables.
const PROBLEMS_BUDGET: usize = 256 * 1024;
/// Room for a period's heading, table header, fold and note, and for the closing note.
const SECTION_OVERHEAD: usize = 2 * 1024;
/// SKUs are few in practice; a file that had thousands would drown the outcome.
const MAX_TOTAL_ROWS: usize = 200;
const NAME_CHARS: usize = 100;
const MESSAGE_CHARS: usize = 400;
const DASH: &str = "—";
/// Room for the extra sections of one summary (changes since the previous period, the trail).
const SECTIONS_BUDGET: usize = 256 * 1024;
/// What one extra section may take: a run over many periods still leaves room for the others.
pub(crate) const SECTION_MAX_BYTES: usize = 64 * 1024;

/// The summary of `result`; `billing` is what `billing.csv` holds, when it was written. Reads
/// the reports back one at a time, and keeps a [`Listed`] entry only for the rows a table can
/// show and for the reports with problems.
///
/// `sections` (already rendered, each under [`SECTION_MAX_BYTES`]) follow the usage: what changed
/// since the previous period, and the trail.
pub fn render(
    result: &RunResult,
    billing: Option<&BillingSummary>,
    sections: &[String],
) -> io::Result<String> {
    let scan = Scan::of(&result.reports)?;
    let head = head(result, scan.warnings);
    let usage = billing
        .map(|b| usage(b, &result.billing_rule))
        .unwrap_or_default();
    let mut extra = String::new();
    for section in sections {
        if extra.len() + section.len() > SECTIONS_BUDGET {
            extra.push_str("_More sections were left out to keep this summary readable._\n\n");
            break;
        }
        extra.push_str(section);
    }
    let problems = problems(&result.reports, scan.problems)?;
    let tables_budget = MAX_BYTES
        .saturating_sub(head.len() + usage.len() + extra.len() + problems.len())
        .saturating_sub(SECTION_OVERHEAD);
    let tables = tables(&result.reports, scan.periods, tables_budget)?;
    let text = format!("{head}{usage}{extra}{tables}{problems}");
    debug_assert!(text.len() < MAX_BYTES, "summary.md is {} bytes", text.len());
    Ok(text)
}

/// What the summary orders a report by; the rest of the record is read again only for the rows
/// and problems that are shown.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    tenant_name: String,
    tenant_id: String,
    kind: ReportKind,
    level: ReportLevel,
    position: usize,
}

/// A period's table before it is rendered: its counts, and the rows that can be shown.
#[derive(Default)]
struct PeriodRows {
    reports: usize,
    failed: usize,
    /// At most [`MAX_ROWS_PER_PERIOD`] candidates, keyed so that the greatest is the first to
    /// leave: a report without problems (`true`), late in table order.
    candidates: BinaryHeap<(bool, Listed)>,
}

/// What one pass over the reports gathers.
struct Scan {
    periods: BTreeMap<Period, PeriodRows>,
    problems: Vec<ProblemKey>,
    warnings: usize,
}

impl Scan {
    fn of(reports: &ReportLog) -> io::Result<Scan> {
        let mut scan = Scan {
            periods: BTreeMap::new(),
            problems: Vec::new(),
            warnings: 0,
        };
        for (position, report) in reports.iter().enumerate() {
            let report = report?;
            let failed = report.status == Status::Failed;
            scan.warnings += report.warnings.len();
            scan.problems.extend(ProblemKey::of(position, &report));
            let rows = scan.periods.entry(report.period).or_default();
            rows.reports += 1;
            rows.failed += usize::from(failed);
            rows.candidates.push((
                !has_problem(&report),
                Listed {
                    tenant_name: report.tenant_name,
                    tenant_id: report.tenant_id,
                    kind: report.kind,
                    level: report.level,
                    position,
                },
            ));
            if rows.candidates.len() > MAX_ROWS_PER_PERIOD {
                rows.candidates.pop();
            }
        }
        Ok(scan)
    }
}

/// The billable usage from `billing.csv`: totals per SKU, then per tenant × SKU (what an
/// invoice is made from), each table capped and folded like the report tables.
fn usage(billing: &BillingSummary, rule: &BillingRule) -> String {
    let mut out = "## Billable usage\n\n".to_owned();
    if billing.reports_without_source > 0 {
        let _ = writeln!(
            out,
            "_{} no csv\\_v2\\_0 or json\\_v2\\_0 file, so {} not in billing.csv._\n",
            if billing.reports_without_source == 1 {
                "1 ok report has".to_owned()
            } else {
                format!("{} ok reports have", billing.reports_without_source)
            },
            if billing.reports_without_source == 1 {
                "it is"
            } else {
                "they are"
            },
        );
    }
    if billing.invoice.is_empty() && billing.invoice_left_out == 0 && billing.day_lines > 0 {
        let _ = writeln!(
            out,
            "billing.csv holds {} of day-by-day reports; they are not summed here (a day's level is not the period's).\n",
            plural(
                usize::try_from(billing.day_lines).unwrap_or(usize::MAX),
                "line"
            )
        );
        return out;
    }
    if billing.invoice.is_empty() && billing.invoice_left_out == 0 {
        let _ = writeln!(
            out,
            "billing.csv has no invoice lines{}.\n",
            if billing.reports == 0 {
                ""
            } else {
                ": the reports have no usage"
            }
        );
        return out;
    }
    let vendor = *rule == BillingRule::default();
    let _ = writeln!(
        out,
        "From billing.csv: {} of {}, billed on {} (`billing` in the job file{}).{}{}\n",
        plural(
            usize::try_from(billing.lines).unwrap_or(usize::MAX),
            "invoice line"
        ),
        plural(billing.reports, "report"),
        describe_rule(rule),
        if vendor {
            "; the vendor's own rule"
        } else {
            ""
        },
        if billing.day_lines > 0 {
            format!(
                " {} of day-by-day reports {} in billing.csv but not summed below: a day's level is not the period's (compute points, used up each day, are).",
                plural(
                    usize::try_from(billing.day_lines).unwrap_or(usize::MAX),
                    "line"
                ),
                if billing.day_lines == 1 { "is" } else { "are" }
            )
        } else {
            String::new()
        },
        if billing.repeated_lines > 0 {
            format!(
                " {} of a tenant already billed by an earlier report of this run {} counted once below.",
                plural(
                    usize::try_from(billing.repeated_lines).unwrap_or(usize::MAX),
                    "line"
                ),
                if billing.repeated_lines == 1 {
                    "is"
                } else {
                    "are"
                }
            )
        } else {
            String::new()
        },
    );
    let periods: BTreeSet<Period> = billing.skus.iter().map(|t| t.period).collect();
    let by_period = periods.len() > 1;
    let cell = |text: &str| {
        if text.is_empty() {
            DASH.to_owned()
        } else {
            inline(text, NAME_CHARS)
        }
    };

    // Per SKU, over the tenants.
    out.push_str("### By SKU\n\n");
    let mut table = String::new();
    if by_period {
        table.push_str("| Period ");
    }
    table.push_str("| SKU | Offering item | Tenants | Billable |\n");
    if by_period {
        table.push_str("| --- ");
    }
    table.push_str("| --- | --- | ---: | ---: |\n");
    for total in billing.skus.iter().take(MAX_TOTAL_ROWS) {
        if by_period {
            let _ = write!(table, "| {} ", period_name(&total.period));
        }
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} |",
            cell(&total.sku),
            cell(&total.offering_item),
            total.tenants,
            cell(&amount(&total.value, &total.unit, &total.offering_item)),
        );
    }
    let left_out = billing.skus.len().saturating_sub(MAX_TOTAL_ROWS) + billing.skus_left_out;
    out.push_str(&fold(table, billing.skus.len().min(MAX_TOTAL_ROWS), "SKUs"));
    if left_out > 0 {
        let _ = writeln!(
            out,
            "_{} not shown; billing.csv has every line._\n",
            plural(left_out, "more SKU")
        );
    }

    // Per tenant × SKU.
    out.push_str("### By tenant and SKU\n\n");
    let mut table = String::new();
    if by_period {
        table.push_str("| Period ");
    }
    table.push_str("| Tenant | SKU | Offering item | Billable |\n");
    if by_period {
        table.push_str("| --- ");
    }
    table.push_str("| --- | --- | --- | ---: |\n");
    let shown = billing.invoice.len().min(MAX_ROWS_PER_PERIOD);
    for row in billing.invoice.iter().take(shown) {
        if by_period {
            let _ = write!(table, "| {} ", period_name(&row.period));
        }
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} |",
            cell(&row.tenant_name),
            cell(&row.sku),
            cell(&row.offering_item),
            cell(&amount(&row.value, &row.unit, &row.offering_item)),
        );
    }
    out.push_str(&fold(table, shown, "tenant × SKU rows"));
    let left_out = billing.invoice.len() - shown + billing.invoice_left_out;
    if left_out > 0 {
        let _ = writeln!(
            out,
            "_{} not shown, to keep this summary short; billing.csv has every line._\n",
            plural(left_out, "more tenant × SKU row")
        );
    }
    out
}

/// A billable figure as a person writes it: bytes in binary units with one decimal (billing.csv
/// keeps the exact bytes), points with their word, and a count of seats or devices where the
/// offering item says which (the vendor's `quantity`, or no unit at all in csv_v2_0 files);
/// any other count stays a plain number.
pub(crate) fn amount(value: &str, unit: &str, item: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    match unit {
        "bytes" => match value.parse::<f64>() {
            Ok(bytes) if bytes.abs() >= 1024.0 => {
                let mut scaled = bytes;
                let mut prefix = "B";
                for next in ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] {
                    if scaled.abs() < 1024.0 {
                        break;
                    }
                    scaled /= 1024.0;
                    prefix = next;
                }
                format!("{scaled:.1} {prefix}")
            }
            _ => format!("{value} B"),
        },
        "points" => format!("{value} points"),
        "quantity" | "" => {
            let item = item.to_ascii_lowercase();
            let noun = if item.contains("seat") || item.contains("mailbox") {
                Some(("seat", "seats"))
            } else if ["workstation", "server", "vms", "mobile", "device"]
                .iter()
                .any(|word| item.contains(word))
            {
                Some(("device", "devices"))
            } else {
                None
            };
            match noun {
                Some((one, _)) if value == "1" => format!("1 {one}"),
                Some((_, many)) => format!("{value} {many}"),
                None => value.to_owned(),
            }
        }
        other => format!("{value} {other}"),
    }
}

/// The rule in words, e.g. "scope auto (total for customers, production for others), measure
/// auto (delta for compute_points, …; absolute for the rest)".
fn describe_rule(rule: &BillingRule) -> String {
    let scope = match rule.scope {
        BillingScope::Auto => {
            "scope auto (total for customers, production for partners)".to_owned()
        }
        scope => format!("scope {scope}"),
    };
    let measure = match rule.measure {
        BillingMeasure::Auto if rule.delta_items.is_empty() => {
            "measure auto (absolute for every item)".to_owned()
        }
        BillingMeasure::Auto => format!(
            "measure auto (delta for {}; absolute for the rest)",
            rule.delta_items
                .iter()
                .map(|i| inline(i, NAME_CHARS))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        measure => format!("measure {measure}"),
    };
    format!("{scope}, {measure}")
}

/// A table, folded when it is long so that what follows stays in sight.
fn fold(table: String, rows: usize, what: &str) -> String {
    if rows > FOLD_ROWS_ABOVE {
        format!("<details><summary>{rows} {what}</summary>\n\n{table}\n</details>\n\n")
    } else {
        format!("{table}\n")
    }
}

fn period_name(period: &Period) -> String {
    if period.is_whole_month() {
        period.label()
    } else {
        format!("{} to {}", period.start, period.end)
    }
}

fn head(result: &RunResult, warnings: usize) -> String {
    let total = result.reports.len();
    let failed = result.failed_count();
    let files = result.reports.file_count();

    let mut outcome = format!("{} of {} ok", result.ok_count(), plural(total, "report"));
    if total == 0 {
        outcome = "no reports".to_owned();
    } else if failed > 0 {
        let _ = write!(outcome, ", {failed} failed");
    }

    let mut out = format!("# Acronis billing reports — {}\n\n", result.as_of);
    let _ = write!(out, "**{outcome}**");
    if warnings > 0 {
        let _ = write!(out, " · {}", plural(warnings, "warning"));
    }
    let _ = write!(
        out,
        " · {} · as of {} · job {} (sha256 {})",
        plural(files, "file"),
        result.as_of,
        inline(&result.job.path, NAME_CHARS),
        code(prefix(&result.job.sha256)),
    );
    if let Some(shard) = result.shard {
        let _ = write!(
            out,
            " · shard {} of {} (combine the shards with `acronis-reports merge`)",
            shard.index, shard.total
        );
    }
    out.push_str("\n\n");
    let seconds = result.finished_at.as_second() - result.started_at.as_second();
    let _ = writeln!(
        out,
        "Run from {} to {} ({}) against {}, by {} {}.\n",
        result.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        result.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        elapsed(seconds),
        inline(&result.base_url, NAME_CHARS),
        inline(&result.tool.name, NAME_CHARS),
        inline(&result.tool.version, NAME_CHARS),
    );
    out
}

/// One section per period, in date order; tenants by name within it.
fn tables(
    reports: &ReportLog,
    periods: BTreeMap<Period, PeriodRows>,
    budget: usize,
) -> io::Result<String> {
    let mut out = String::new();
    let mut remaining = budget;
    let mut left_out_periods = 0;
    let mut left_out_reports = 0;
    for (period, rows) in periods {
        if remaining < SECTION_OVERHEAD {
            left_out_periods += 1;
            left_out_reports += rows.reports;
            continue;
        }
        let section = section(&period, rows, reports, remaining - SECTION_OVERHEAD)?;
        remaining = remaining.saturating_sub(section.len());
        out.push_str(&section);
    }
    if left_out_periods > 0 {
        let _ = writeln!(
            out,
            "_{} with {} not shown, to keep this summary under 1 MiB; manifest.json lists every report._\n",
            plural(left_out_periods, "more period"),
            plural(left_out_reports, "report"),
        );
    }
    Ok(out)
}

fn section(
    period: &Period,
    rows: PeriodRows,
    reports: &ReportLog,
    rows_budget: usize,
) -> io::Result<String> {
    // When rows must be left out, those with problems are kept first.
    let mut shown: Vec<(Listed, String)> = Vec::new();
    let mut used = 0;
    for (_, listed) in rows.candidates.into_sorted_vec() {
        let text = row(&reports.get(listed.position)?);
        if used + text.len() > rows_budget {
            break;
        }
        used += text.len();
        shown.push((listed, text));
    }
    // Shown in the table's order, whatever order they were picked in.
    shown.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));

    let mut out = format!("## {}\n\n", period_name(period));
    let counts = format!(
        "{}: {} ok, {} failed",
        plural(rows.reports, "report"),
        rows.reports - rows.failed,
        rows.failed
    );
    let fold = shown.len() > FOLD_ROWS_ABOVE;
    if fold {
        let _ = write!(out, "<details><summary>{counts}</summary>\n\n");
    }
    out.push_str("| Tenant | Formats | SKU check | Rows | DR compute points | SHA-256 |\n");
    out.push_str("| --- | --- | --- | ---: | ---: | --- |\n");
    for (_, row) in &shown {
        out.push_str(row);
    }
    if fold {
        out.push_str("\n</details>\n");
    }
    out.push('\n');
    let left_out = rows.reports - shown.len();
    if left_out > 0 {
        let _ = writeln!(
            out,
            "_{} of {} for this period not shown (reports with problems come first), to keep this summary short and under 1 MiB; manifest.json lists every report._\n",
            left_out,
            plural(rows.reports, "report"),
        );
    }
    Ok(out)
}

fn has_problem(report: &ReportResult) -> bool {
    report.status == Status::Failed
        || !report.warnings.is_empty()
        || report
            .files
            .iter()
            .any(|f| f.sku_check.status == SkuStatus::Missing)
}

fn row(report: &ReportResult) -> String {
    let mut tenant = inline(&report.tenant_name, NAME_CHARS);
    if report.status == Status::Failed {
        tenant.push_str(" — **failed**");
    }
    let per_file = |cell: fn(&FileResult) -> String| {
        if report.files.is_empty() {
            DASH.to_owned()
        } else {
            report.files.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
    };
    let formats = per_file(|f| f.format.to_string());
    let sku = per_file(|f| match f.sku_check.status {
        SkuStatus::Ok => "ok".to_owned(),
        SkuStatus::Missing => format!(
            "missing {}/{}",
            f.sku_check.rows_without_sku, f.sku_check.rows
        ),
        SkuStatus::Skipped => "skipped".to_owned(),
    });
    // A skipped check did not count rows, so its 0 means "unknown", not "empty".
    let rows = per_file(|f| match &f.sku_check {
        c if c.status == SkuStatus::Skipped && c.rows == 0 => DASH.to_owned(),
        c => c.rows.to_string(),
    });
    let dr = report
        .dr_compute_points
        .map_or_else(|| DASH.to_owned(), |p| format!("{p:.2}"));
    // File sizes are not usage; they stay in manifest.json, next to the checksums.
    let sha = per_file(|f| code(prefix(&f.sha256)));
    format!("| {tenant} | {formats} | {sku} | {rows} | {dr} | {sha} |\n")
}

fn problems(reports: &ReportLog, mut found: Vec<ProblemKey>) -> io::Result<String> {
    found.sort_unstable();
    let mut out = "## Problems\n\n".to_owned();
    let (mut shown, mut left_out) = (0, 0);
    for key in found {
        // Once one item does not fit, the rest are only counted: rendering them costs time.
        if left_out > 0 {
            left_out += key.count();
            continue;
        }
        let report = reports.get(key.position)?;
        let failure = (report.status == Status::Failed).then(|| {
            let error = report.error.as_deref().unwrap_or("no reason was recorded");
            ("failed", error)
        });
        let warnings = report.warnings.iter().map(|w| ("warning", w.as_str()));
        for (what, message) in failure.into_iter().chain(warnings) {
            if left_out == 0 {
                let item = item(&report, what, message);
                if out.len() + item.len() <= PROBLEMS_BUDGET {
                    out.push_str(&item);
                    shown += 1;
                    continue;
                }
            }
            left_out += 1;
        }
    }
    if shown + left_out == 0 {
        return Ok(String::new());
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "- … and {} not shown, to keep this summary under 1 MiB; manifest.json has every error and warning.",
            plural(left_out, "more problem")
        );
    }
    out.push('\n');
    Ok(out)
}

fn item(report: &ReportResult, what: &str, message: &str) -> String {
    let mut line = format!(
        "- **{}** · {}",
        inline(&report.tenant_name, NAME_CHARS),
        report.period
    );
    if let Some(id) = &report.report_id {
        let _ = write!(line, " · report {}", code(id));
    }
    let _ = write!(line, ": {what}: {}", inline(message, MESSAGE_CHARS));
    if let Some(hint) = hint(message) {
        let _ = write!(line, " — *what to do:* {hint}");
    }
    line.push('\n');
    line
}

/// Advice for the failures users meet most, recognised from the wording of our own errors.
fn hint(message: &str) -> Option<&'static str> {
    let text = message.to_lowercase();
    let has = |needle: &str| text.contains(needle);
    if has("files disagree") {
        return Some(
            "both files are kept as downloaded and billing.csv follows csv\\_v2\\_0; compare the two files, and tell Acronis support if they differ",
        );
    }
    if has("billing.csv") {
        return Some(
            "the report file is kept as downloaded; take its usage from the file itself, and tell the maintainers of acronis-reports about its layout",
        );
    }
    if has("sku") {
        return Some(if has("checks.skus: required") {
            "the partner may lack SKU access: ask Acronis support to enable it, or set `checks.skus: warn` to accept such reports"
        } else {
            "the partner may lack SKU access: ask Acronis support to enable it"
        });
    }
    if has("timeout") || has("timed out") {
        return Some(
            "raise `polling.timeout` in the job file; large reports can take a long time to build",
        );
    }
    if has("http 401") || has("invalid_client") || has("authentication") {
        return Some(
            "check ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET (or ACRONIS_TOKEN), and that the API client is enabled",
        );
    }
    if has("http 403") || has("forbidden") || has("permission") {
        return Some(
            "the API client lacks permission for this tenant: give it a role on the tenant or on one above it",
        );
    }
    if has("http 404") || has("not found") {
        return Some(
            "check the tenant id in the job file; the tenant may have been moved or deleted",
        );
    }
    if has("http 429") || has("too many requests") {
        return Some(
            "the API is throttling requests: lower `concurrency` in the job file or run later",
        );
    }
    if has("http 5") {
        return Some("the Acronis service had trouble; run the job again later");
    }
    None
}

/// User-supplied text as one line of Markdown that cannot break a table or start markup.
pub(crate) fn inline(text: &str, max_chars: usize) -> String {
    let line = one_line(text, max_chars);
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code span for identifiers we can trust not to close it; anything else is escaped text.
fn code(text: &str) -> String {
    if !text.is_empty()
        && text.len() <= NAME_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        format!("`{text}`")
    } else {
        inline(text, NAME_CHARS)
    }
}

/// The first 12 hex digits: enough to tell files apart at a glance.
fn prefix(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn elapsed(seconds: i64) -> String {
    // Clocks can step backwards during a run; a negative duration would only confuse.
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests;
