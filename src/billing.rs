//! `billing.csv`: invoice lines from the report files of the ok reports, by the vendor's rule.
//!
//! One line per period × report tenant × row tenant × offering item (× infra backend, × day for
//! day-by-day reports), summing the file's rows of that key, in plan order and then in the order
//! each key first appears in the file. Lines come from the `csv_v2_0` file of a report (the
//! layout the vendor's own billing integration reads), else from its `json_v2_0` file; with both,
//! the JSON file is a cross-check and a disagreement is a warning. Files are read through
//! [`crate::content`], the one reader of report files, and never changed.
//!
//! The billable value of a row is `usage.<measure>.<scope>` (see [`BillingRule`]): by default
//! scope `total` for a customer's row and `production` for any other, measure `delta` for the
//! compute-point items and `absolute` for the rest — the rule of `MetricsFetcher.php` in the
//! vendor's WHMCS integration. A `json_v2_0` usage object has no scopes: `absolute` reads its
//! `absolute_value` (else `value`), `delta` and `effective` its `value`. Summing `billable_value`
//! per tenant and item never double counts: the vendor's integration sums every row per tenant,
//! so rows are each tenant's own usage, not aggregates of others.
//!
//! Disaster Recovery compute points arrive in point-seconds in both formats: a line's
//! `billable_value` is ÷ 3600, rounded to 2 decimals, in `points`. Bytes stay bytes, with the
//! GiB figure beside them.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::Path;

use crate::content::{self, Amount, ContentError, Measure, Measures, UsageRow};
use crate::period::Period;
use crate::report::{BillingMeasure, BillingRule, BillingScope, Format};
use crate::results::{ReportLog, ReportResult, Status};

/// The file's name in the output folder.
pub const BILLING_CSV: &str = "billing.csv";

/// What `billing.csv` is derived from, as its `derived_files` entry in the manifest says.
pub const SOURCE: &str = "invoice lines (one per period × report tenant × row tenant × offering item × infra backend) from the csv_v2_0 files of the ok reports (the json_v2_0 file where a report has no csv_v2_0 file), in plan order, by the billing rule in the manifest";

/// Columns before the measures.
const KEY_COLUMNS: [&str; 13] = [
    "period_start",
    "period_end",
    "report_tenant_id",
    "report_tenant_name",
    "tenant_id",
    "tenant_kind",
    "tenant_name",
    "offering_item",
    "infra_backend_type",
    "edition",
    "sku",
    "day",
    "rows",
];
/// Columns after the measures.
const BILLABLE_COLUMNS: [&str; 5] = [
    "billable_measure",
    "billable_value",
    "unit",
    "billable_gib",
    "source",
];

/// The header of `billing.csv`.
pub fn columns() -> Vec<&'static str> {
    KEY_COLUMNS
        .into_iter()
        .chain(Measure::ALL.map(Measure::name))
        .chain(BILLABLE_COLUMNS)
        .collect()
}

/// Unit of converted compute points.
pub const POINTS: &str = "points";
const SECONDS_PER_POINT: i128 = 3600;
const GIB: i128 = 1 << 30;
/// Invoice rows `summary.md` can show; the rest are counted. billing.csv has them all.
const INVOICE_ROWS_KEPT: usize = 5000;
/// Examples of disagreeing lines named in one warning.
const EXAMPLES: usize = 2;

/// What writing `billing.csv` found, besides the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Billing {
    pub summary: BillingSummary,
    /// Warnings for reports, by their position in the list given to [`write`].
    pub warnings: Vec<(usize, String)>,
    /// Disaster Recovery compute points of reports with such lines, by position: the sum of
    /// their lines' billable values. Failed reports with a readable file are counted too.
    pub dr_compute_points: Vec<(usize, f64)>,
}

/// What `summary.md` shows of `billing.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BillingSummary {
    /// Invoice lines written.
    pub lines: u64,
    /// Reports whose lines are in the file.
    pub reports: usize,
    /// Ok reports with neither a `csv_v2_0` nor a `json_v2_0` file, so not in the file.
    pub reports_without_source: usize,
    /// Per period, tenant and SKU (offering item where there is no SKU): what an invoice is
    /// made from, sorted. A tenant that appears in two reports counts once, from the first.
    pub invoice: Vec<InvoiceRow>,
    /// Invoice rows beyond what is kept for the summary.
    pub invoice_left_out: usize,
    /// Lines of a tenant, item and period already billed by an earlier report of the run,
    /// left out of `invoice` (not of billing.csv).
    pub repeated_lines: u64,
}

/// One tenant's billable value of one SKU in one period, over the reports of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRow {
    pub period: Period,
    pub tenant_name: String,
    pub tenant_id: String,
    pub sku: String,
    pub offering_item: String,
    pub unit: String,
    pub value: String,
}

/// One invoice line of one report file: its key, what it repeats, and the sums of its rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    pub tenant_id: String,
    pub tenant_kind: String,
    pub tenant_name: String,
    pub offering_item: String,
    pub infra_backend: String,
    pub edition: String,
    pub sku: String,
    pub day: String,
    pub unit: String,
    /// `usage_name` of the first row (JSON), which helps recognise compute points.
    pub usage_name: String,
    pub rows: u64,
    /// Sums of each measure over the line's rows; `None` where no row had it.
    pub measures: Measures,
    /// The billable measure's name, as the first row chose it.
    pub billable_measure: &'static str,
    /// Sum over the rows of each row's billable value, in the file's unit.
    pub billable_raw: Amount,
    /// Rows that disagreed on edition or SKU, for a warning.
    pub conflicts: Vec<String>,
}

/// The billable value of a line as `billing.csv` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Billable {
    pub value: Amount,
    /// Digits shown: 2 for compute points, else as exact as the sum.
    pub text: String,
    pub unit: String,
    pub gib: Option<String>,
}

impl Line {
    /// Whether this line counts Disaster Recovery compute points in point-seconds: a
    /// compute-point item (by name or usage name), unit seconds or unsaid.
    pub fn is_compute_points(&self) -> bool {
        let item = self.offering_item.to_ascii_lowercase();
        let points = item == "compute_points"
            || item.ends_with("_compute_points")
            || self.usage_name.eq_ignore_ascii_case("compute_points");
        points && (self.unit.is_empty() || self.unit.eq_ignore_ascii_case("seconds"))
    }

    /// The unit of the file's values: as the file says, else `bytes` for storage items (the
    /// vendor's reports count storage in bytes; `csv_v2_0` has no unit column).
    pub fn file_unit(&self) -> &str {
        if !self.unit.is_empty() {
            &self.unit
        } else if self.is_compute_points() {
            "seconds"
        } else if self.offering_item.to_ascii_lowercase().contains("storage") {
            "bytes"
        } else {
            ""
        }
    }

    pub fn billable(&self) -> Billable {
        if self.is_compute_points() {
            let value = self.billable_raw.div_round(SECONDS_PER_POINT, 2);
            return Billable {
                value,
                text: value.fixed(2),
                unit: POINTS.to_owned(),
                gib: None,
            };
        }
        let unit = self.file_unit();
        let bytes = unit.eq_ignore_ascii_case("bytes") || unit.eq_ignore_ascii_case("byte");
        Billable {
            value: self.billable_raw,
            text: self.billable_raw.to_string(),
            unit: unit.to_owned(),
            gib: bytes.then(|| self.billable_raw.div_round(GIB, 4).fixed(4)),
        }
    }
}

/// The billable measure of `row` by `rule`, and its value; `None` when the row lacks it.
pub fn billable_of(rule: &BillingRule, row: &UsageRow<'_>) -> Option<(Measure, Amount)> {
    let measure = match rule.measure {
        BillingMeasure::Auto => {
            if rule.delta_items.iter().any(|i| i == row.offering_item) {
                BillingMeasure::Delta
            } else {
                BillingMeasure::Absolute
            }
        }
        chosen => chosen,
    };
    let scope = match rule.scope {
        BillingScope::Auto if row.tenant_kind == "customer" => BillingScope::Total,
        BillingScope::Auto => BillingScope::Production,
        chosen => chosen,
    };
    let csv = match (measure, scope) {
        (BillingMeasure::Delta, BillingScope::Production) => Measure::DeltaProduction,
        (BillingMeasure::Delta, BillingScope::Trial) => Measure::DeltaTrial,
        (BillingMeasure::Delta, _) => Measure::DeltaTotal,
        (BillingMeasure::Effective, BillingScope::Production) => Measure::EffectiveProduction,
        (BillingMeasure::Effective, BillingScope::Trial) => Measure::EffectiveTrial,
        (BillingMeasure::Effective, _) => Measure::EffectiveTotal,
        (_, BillingScope::Production) => Measure::AbsoluteProduction,
        (_, BillingScope::Trial) => Measure::AbsoluteTrial,
        (_, _) => Measure::AbsoluteTotal,
    };
    let json: &[Measure] = match measure {
        BillingMeasure::Delta | BillingMeasure::Effective => &[Measure::Value],
        _ => &[Measure::AbsoluteValue, Measure::Value],
    };
    std::iter::once(csv)
        .chain(json.iter().copied())
        .find_map(|m| row.measures.get(m).map(|a| (m, a)))
}

/// The figure both formats carry for a line, to compare them: the total scope of the measure
/// the rule picks, which a JSON usage object holds as `absolute_value` or `value`.
fn comparable(rule: &BillingRule, line: &Line) -> Option<Amount> {
    let delta = match rule.measure {
        BillingMeasure::Auto => rule.delta_items.contains(&line.offering_item),
        measure => measure != BillingMeasure::Absolute,
    };
    let (csv, json) = if delta {
        (Measure::DeltaTotal, Measure::Value)
    } else {
        (Measure::AbsoluteTotal, Measure::AbsoluteValue)
    };
    line.measures
        .get(csv)
        .or_else(|| line.measures.get(json))
        .or_else(|| line.measures.get(Measure::Value))
}

/// Why a row has no billable value.
fn no_billable(format: Format, rule: &BillingRule, row: &UsageRow<'_>) -> ContentError {
    ContentError::Data {
        at: content::place(format, row.at),
        field: format!("`{}`", row.offering_item),
        detail: format!(
            "no billable value: the row has none of the measures the billing rule (scope {}, measure {}) reads",
            rule.scope, rule.measure
        ),
    }
}

/// The invoice lines of one report file, in the order their keys first appear.
pub fn lines_of(
    format: Format,
    reader: impl io::Read,
    rule: &BillingRule,
) -> Result<Vec<Line>, ContentError> {
    let mut lines: Vec<Line> = Vec::new();
    let mut index: HashMap<(String, String, String, String), usize> = HashMap::new();
    content::read_rows(format, reader, &mut |row| {
        let Some((measure, amount)) = billable_of(rule, row) else {
            return Err(io::Error::other(no_billable(format, rule, row).to_string()));
        };
        let refuse = |field: &str, detail: String| {
            io::Error::other(
                ContentError::Data {
                    at: content::place(format, row.at),
                    field: format!("`{field}`"),
                    detail,
                }
                .to_string(),
            )
        };
        let key = (
            row.tenant_id.to_owned(),
            row.offering_item.to_owned(),
            row.infra_backend.to_owned(),
            row.day.to_owned(),
        );
        let at = *index.entry(key).or_insert_with(|| {
            lines.push(Line {
                tenant_id: row.tenant_id.to_owned(),
                tenant_kind: row.tenant_kind.to_owned(),
                tenant_name: row.tenant_name.to_owned(),
                offering_item: row.offering_item.to_owned(),
                infra_backend: row.infra_backend.to_owned(),
                edition: row.edition.to_owned(),
                sku: row.sku.unwrap_or("").to_owned(),
                day: row.day.to_owned(),
                unit: row.unit.to_owned(),
                usage_name: row.usage_name.to_owned(),
                billable_measure: measure.name(),
                ..Line::default()
            });
            lines.len() - 1
        });
        let line = &mut lines[at];
        // Rows of one line billed on different measures (a tenant that is a customer in one row
        // and a partner in another, or a usage object with `absolute_value` beside one with only
        // `value`) would sum figures that mean different things under one measure's name.
        if measure.name() != line.billable_measure {
            return Err(refuse(
                measure.name(),
                format!(
                    "{} of {} is billed on `{}` here but on `{}` in an earlier row{}: one sum cannot mix them",
                    line.offering_item,
                    line.tenant_id,
                    measure.name(),
                    line.billable_measure,
                    if row.tenant_kind == line.tenant_kind {
                        String::new()
                    } else {
                        format!(
                            " (tenant kind {} here, {} there)",
                            or_none(row.tenant_kind),
                            or_none(&line.tenant_kind)
                        )
                    },
                ),
            ));
        }
        let overflow = || {
            refuse(
                measure.name(),
                format!(
                    "the sum of the rows of {} of {} does not fit an exact number",
                    line.offering_item, line.tenant_id
                ),
            )
        };
        line.rows += 1;
        line.billable_raw = line.billable_raw.checked_add(amount).ok_or_else(overflow)?;
        for (measure, amount) in row.measures.present() {
            let sum = line.measures.get(measure).unwrap_or(Amount::ZERO);
            let sum = sum.checked_add(amount).ok_or_else(overflow)?;
            line.measures.set(measure, Some(sum));
        }
        if row.tenant_kind != line.tenant_kind && line.conflicts.len() < EXAMPLES {
            line.conflicts.push(format!(
                "tenant kind {} and {} ({})",
                or_none(&line.tenant_kind),
                or_none(row.tenant_kind),
                content::place(format, row.at)
            ));
        }
        let sku = row.sku.unwrap_or("");
        if line.sku.is_empty() {
            line.sku = sku.to_owned();
        } else if !sku.is_empty() && sku != line.sku && line.conflicts.len() < EXAMPLES {
            line.conflicts.push(format!(
                "SKU {} and {sku} ({})",
                line.sku,
                content::place(format, row.at)
            ));
        }
        Ok(())
    })
    .map_err(|e| match e {
        // The callback's own refusal is a data error of the file, not a write failure.
        ContentError::Sink(e) => ContentError::Syntax(e.to_string()),
        other => other,
    })?;
    Ok(lines)
}

/// A text field for a message: "none" when empty.
fn or_none(text: &str) -> &str {
    if text.is_empty() { "none" } else { text }
}

/// Writes `billing.csv` to `out` from the files (under `dir`) of the ok reports of `reports`,
/// in their order, by `rule`. Problems with a report's files become warnings for it; only a
/// failure to write to `out` is an error.
pub fn write(
    dir: &Path,
    reports: &ReportLog,
    rule: &BillingRule,
    out: impl Write,
) -> io::Result<Billing> {
    let mut csv = csv::WriterBuilder::new()
        .buffer_capacity(256 * 1024)
        .from_writer(out);
    csv.write_record(columns())?;
    let mut billing = Billing::default();
    let mut invoice = Invoice::default();
    // Rows often lack tenant names (csv_v2_0 has no name column): the run's own names fill in.
    let mut names: HashMap<String, String> = HashMap::new();
    for report in reports.iter() {
        let report = report?;
        names.insert(report.tenant_id.to_ascii_lowercase(), report.tenant_name);
    }
    for (position, report) in reports.iter().enumerate() {
        let report = &report?;
        let ok = report.status == Status::Ok;
        let mut warnings = Vec::new();
        let Some((source, lines)) = report_lines(dir, report, rule, &mut warnings) else {
            if ok && !report.files.iter().any(|f| content::readable(f.format)) {
                billing.summary.reports_without_source += 1;
            }
            if ok {
                billing
                    .warnings
                    .extend(warnings.into_iter().map(|w| (position, w)));
            }
            continue;
        };
        let mut points: Option<Amount> = None;
        for line in &lines {
            let billable = line.billable();
            if line.is_compute_points() {
                points = Some(
                    points
                        .unwrap_or(Amount::ZERO)
                        .saturating_add(billable.value),
                );
            }
            if !ok {
                continue;
            }
            let tenant_name = if line.tenant_name.is_empty() {
                names
                    .get(&line.tenant_id.to_ascii_lowercase())
                    .map_or("", String::as_str)
            } else {
                &line.tenant_name
            };
            let mut record: Vec<String> = vec![
                report.period.start.to_string(),
                report.period.end.to_string(),
                report.tenant_id.clone(),
                report.tenant_name.clone(),
                line.tenant_id.clone(),
                line.tenant_kind.clone(),
                tenant_name.to_owned(),
                line.offering_item.clone(),
                line.infra_backend.clone(),
                line.edition.clone(),
                line.sku.clone(),
                line.day.clone(),
                line.rows.to_string(),
            ];
            record.extend(Measure::ALL.map(|m| {
                line.measures
                    .get(m)
                    .map_or_else(String::new, |a| a.to_string())
            }));
            record.extend([
                line.billable_measure.to_owned(),
                billable.text.clone(),
                billable.unit.clone(),
                billable.gib.clone().unwrap_or_default(),
                source.clone(),
            ]);
            csv.write_record(&record)?;
            billing.summary.lines += 1;
            invoice.add(report.period, line, tenant_name, &billable);
            for conflict in &line.conflicts {
                warnings.push(format!(
                    "{source}: rows of {} for {} disagree: {conflict}; billing.csv keeps the first",
                    line.offering_item, line.tenant_id
                ));
            }
        }
        if let Some(points) = points {
            billing
                .dr_compute_points
                .push((position, points.as_f64() + 0.0));
        }
        if ok {
            billing.summary.reports += 1;
            billing
                .warnings
                .extend(warnings.into_iter().map(|w| (position, w)));
        }
    }
    csv.flush()?;
    invoice.finish(&mut billing.summary);
    Ok(billing)
}

/// The lines of one report and the file they came from (relative path); `None` when no file
/// could be read. A disagreement between the two formats, or a file that cannot be read, is a
/// warning.
fn report_lines(
    dir: &Path,
    report: &ReportResult,
    rule: &BillingRule,
    warnings: &mut Vec<String>,
) -> Option<(String, Vec<Line>)> {
    let read = |format: Format| {
        let file = report.files.iter().find(|f| f.format == format)?;
        let lines = File::open(dir.join(&file.path))
            .map_err(ContentError::Read)
            .and_then(|reader| lines_of(format, reader, rule));
        Some((file.path.clone(), lines))
    };
    let csv = read(Format::CsvV2);
    let json = read(Format::JsonV2);
    match (csv, json) {
        (Some((csv_path, Ok(csv_lines))), json) => {
            match json {
                Some((json_path, Ok(json_lines))) => warnings.extend(compare(
                    rule,
                    &csv_path,
                    &csv_lines,
                    &json_path,
                    &json_lines,
                )),
                Some((json_path, Err(e))) => warnings.push(format!(
                    "the csv_v2_0 and json_v2_0 files were not compared: {json_path}: {e}"
                )),
                None => {}
            }
            Some((csv_path, csv_lines))
        }
        (Some((csv_path, Err(e))), Some((json_path, Ok(json_lines)))) => {
            warnings.push(format!(
                "billing.csv has no lines from {csv_path}: {e}; they come from {json_path}"
            ));
            Some((json_path, json_lines))
        }
        (None, Some((json_path, Ok(json_lines)))) => Some((json_path, json_lines)),
        (csv, json) => {
            for (path, result) in [csv, json].into_iter().flatten() {
                if let Err(e) = result {
                    warnings.push(format!("billing.csv has no lines from {path}: {e}"));
                }
            }
            None
        }
    }
}

/// A warning when the two formats of one report hold different lines or figures.
fn compare(
    rule: &BillingRule,
    csv_path: &str,
    csv: &[Line],
    json_path: &str,
    json: &[Line],
) -> Option<String> {
    // A JSON usage object carries its range's start even in a summary report, whose CSV rows
    // have no day: days are compared only when both files have them.
    let by_day = csv.iter().any(|l| !l.day.is_empty()) && json.iter().any(|l| !l.day.is_empty());
    let key = |l: &Line| {
        (
            l.tenant_id.to_ascii_lowercase(),
            l.offering_item.clone(),
            l.infra_backend.clone(),
            if by_day {
                day_key(&l.day)
            } else {
                String::new()
            },
        )
    };
    let mut json_by_key: HashMap<_, Option<Amount>> = HashMap::new();
    for line in json {
        let figure = comparable(rule, line);
        json_by_key
            .entry(key(line))
            .and_modify(|sum| {
                *sum = match (*sum, figure) {
                    (Some(a), Some(b)) => Some(a.saturating_add(b)),
                    (a, b) => a.or(b),
                }
            })
            .or_insert(figure);
    }
    let json_keys = json_by_key.len();
    let mut differences = Vec::new();
    let mut count = 0usize;
    let mut matched = 0usize;
    for line in csv {
        let what = match json_by_key.get(&key(line)) {
            None => Some(format!(
                "{} of {} is only in {csv_path}",
                line.offering_item, line.tenant_id
            )),
            Some(other) => {
                matched += 1;
                let (a, b) = (comparable(rule, line), *other);
                (a != b).then(|| {
                    format!(
                        "{} of {}: {} in {csv_path}, {} in {json_path}",
                        line.offering_item,
                        line.tenant_id,
                        a.map_or("nothing".into(), |a| a.to_string()),
                        b.map_or("nothing".into(), |b| b.to_string()),
                    )
                })
            }
        };
        if let Some(what) = what {
            count += 1;
            if differences.len() < EXAMPLES {
                differences.push(what);
            }
        }
    }
    let only_json = json_keys.saturating_sub(matched);
    if only_json > 0 {
        count += only_json;
        if differences.len() < EXAMPLES {
            differences.push(format!("{only_json} line(s) only in {json_path}"));
        }
    }
    (count > 0).then(|| {
        format!(
            "the csv_v2_0 and json_v2_0 files disagree on {count} line(s), e.g. {}; billing.csv follows {csv_path}",
            differences.join("; ")
        )
    })
}

/// Days compared as days, whether written `2026-10-01`, `2026-10-01T00:00:00Z` or UNIX seconds.
fn day_key(text: &str) -> String {
    if let Ok(seconds) = text.parse::<i64>()
        && let Ok(time) = jiff::Timestamp::from_second(seconds)
    {
        return time.strftime("%Y-%m-%d").to_string();
    }
    text.get(..10).unwrap_or(text).to_owned()
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InvoiceKey {
    period: Period,
    tenant_name: String,
    tenant_id: String,
    /// Lines without a SKU sort after those with one.
    no_sku: bool,
    sku: String,
    offering_item: String,
}

/// The per-tenant × SKU view, as far as the summary can show it.
#[derive(Default)]
struct Invoice {
    /// The sum, and the unit as the first line that said it gives it.
    rows: BTreeMap<InvoiceKey, (Amount, String)>,
    /// Whether each billed tenant × item × backend × day × period was seen, as a hash: 8 bytes
    /// a line however long its names.
    seen: HashSet<u64>,
    left_out: usize,
    repeated: u64,
}

impl Invoice {
    fn add(&mut self, period: Period, line: &Line, tenant_name: &str, billable: &Billable) {
        let mut hasher = DefaultHasher::new();
        (
            period,
            line.tenant_id.to_ascii_lowercase(),
            &line.offering_item,
            &line.infra_backend,
            &line.day,
        )
            .hash(&mut hasher);
        if !self.seen.insert(hasher.finish()) {
            self.repeated += 1;
            return;
        }
        let key = InvoiceKey {
            period,
            tenant_name: if tenant_name.is_empty() {
                line.tenant_id.clone()
            } else {
                tenant_name.to_owned()
            },
            tenant_id: line.tenant_id.clone(),
            no_sku: line.sku.is_empty(),
            sku: line.sku.clone(),
            offering_item: if line.infra_backend.is_empty() {
                line.offering_item.clone()
            } else {
                format!("{} ({})", line.offering_item, line.infra_backend)
            },
        };
        if let Some((sum, unit)) = self.rows.get_mut(&key) {
            *sum = sum.saturating_add(billable.value);
            if unit.is_empty() {
                unit.clone_from(&billable.unit);
            }
        } else if self.rows.len() < INVOICE_ROWS_KEPT {
            self.rows
                .insert(key, (billable.value, billable.unit.clone()));
        } else {
            self.left_out += 1;
        }
    }

    fn finish(self, summary: &mut BillingSummary) {
        summary.invoice_left_out = self.left_out;
        summary.repeated_lines = self.repeated;
        summary.invoice = self
            .rows
            .into_iter()
            .map(|(key, (value, unit))| InvoiceRow {
                period: key.period,
                value: if unit == POINTS {
                    value.fixed(2)
                } else {
                    value.to_string()
                },
                tenant_name: key.tenant_name,
                tenant_id: key.tenant_id,
                sku: key.sku,
                offering_item: key.offering_item,
                unit,
            })
            .collect();
    }
}

#[cfg(test)]
mod tests;
