//! `billing.csv`: the usage rows of every ok report in one table, ready for invoicing.
//!
//! Rows are read from the downloaded `json_v2_0` file of a report (the `csv_v2_0` file when the
//! report has no usable JSON), in plan order and then in the order of the file, and written out
//! as they are read: nothing holds more than one report's rows, and that only to compare the two
//! formats when a report has both. The report files themselves are only read, never changed.
//!
//! As in [`crate::checks`], the layout of both formats is not documented, so CSV columns are
//! found by header name (without case, spaces or punctuation) and JSON usage entries are the
//! objects that carry a `usage_name`, wherever they sit; tenant fields missing from an entry are
//! taken from the objects around it. A file in a layout we cannot read gives a warning, never a
//! panic, and leaves that file's rows out.
//!
//! Normalised values: Disaster Recovery compute points (usage name `compute_points`, unit
//! seconds) ÷ 3600 rounded to 2 decimals, in `points`; anything measured in bytes ÷ 1024³ with
//! 4 decimals, in `GiB`; everything else as it is.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::checks::{compute_points, is_dr_seconds, normalise_header};
use crate::period::Period;
use crate::report::{Format, ReportKind};
use crate::results::{ReportResult, Status};

/// The file's name in the output folder.
pub const BILLING_CSV: &str = "billing.csv";

/// What `billing.csv` is derived from, as its `derived_files` entry in the manifest says.
pub const SOURCE: &str = "usage rows of the json_v2_0 files of the ok reports (of the csv_v2_0 file where a report has no json_v2_0 file), in plan order";

/// The header of `billing.csv`.
pub const COLUMNS: [&str; 19] = [
    "period_start",
    "period_end",
    "tenant_id",
    "tenant_name",
    "scope",
    "customer_id",
    "customer_name",
    "customer_kind",
    "usage_start",
    "usage_end",
    "edition",
    "offering_item",
    "usage_name",
    "sku",
    "unit",
    "value",
    "normalised_value",
    "normalised_unit",
    "source",
];

/// `scope` of a row of the report's own tenant: it covers every tenant below it, so adding it
/// to the other rows of the report would count their usage twice.
pub const SCOPE_TOTAL: &str = "total";
/// `scope` of a row of a tenant below the report's tenant.
pub const SCOPE_CHILD: &str = "child";

const GIB: f64 = (1u64 << 30) as f64;
const BUFFER: usize = 256 * 1024;
/// Examples of disagreeing rows named in one warning.
const EXAMPLES: usize = 2;

/// One usage row of a report file, as text from the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub customer_id: String,
    pub customer_name: String,
    pub customer_kind: String,
    pub edition: String,
    pub offering_item: String,
    pub usage_name: String,
    pub sku: String,
    pub unit: String,
    pub usage_start: String,
    pub usage_end: String,
    pub value: String,
}

impl UsageRow {
    fn as_row(&self) -> Row<'_> {
        Row {
            customer_id: &self.customer_id,
            customer_name: &self.customer_name,
            customer_kind: &self.customer_kind,
            edition: &self.edition,
            offering_item: &self.offering_item,
            usage_name: &self.usage_name,
            sku: &self.sku,
            unit: &self.unit,
            usage_start: &self.usage_start,
            usage_end: &self.usage_end,
            value: &self.value,
        }
    }
}

/// One usage row, borrowed from where it was read: a CSV row costs no allocation.
#[derive(Clone, Copy, Debug)]
struct Row<'a> {
    customer_id: &'a str,
    customer_name: &'a str,
    customer_kind: &'a str,
    edition: &'a str,
    offering_item: &'a str,
    usage_name: &'a str,
    sku: &'a str,
    unit: &'a str,
    usage_start: &'a str,
    usage_end: &'a str,
    value: &'a str,
}

#[cfg(test)]
impl Row<'_> {
    fn to_owned(self) -> UsageRow {
        UsageRow {
            customer_id: self.customer_id.to_owned(),
            customer_name: self.customer_name.to_owned(),
            customer_kind: self.customer_kind.to_owned(),
            edition: self.edition.to_owned(),
            offering_item: self.offering_item.to_owned(),
            usage_name: self.usage_name.to_owned(),
            sku: self.sku.to_owned(),
            unit: self.unit.to_owned(),
            usage_start: self.usage_start.to_owned(),
            usage_end: self.usage_end.to_owned(),
            value: self.value.to_owned(),
        }
    }
}

/// What writing `billing.csv` found, besides the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Billing {
    pub summary: BillingSummary,
    /// Warnings for reports, by their position in the list given to [`write`].
    pub warnings: Vec<(usize, String)>,
    /// Disaster Recovery compute points of reports with such rows, by position, counted as the
    /// totals are: the report tenant's own rows where it has them, else all rows. This is the
    /// one count of them, for every report with a file to read (failed ones too, whose rows
    /// are not in `billing.csv`).
    pub dr_compute_points: Vec<(usize, f64)>,
}

/// What `summary.md` shows of `billing.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BillingSummary {
    /// Usage rows written.
    pub rows: u64,
    /// Reports whose rows are in the file.
    pub reports: usize,
    /// Ok reports with neither a `csv_v2_0` nor a `json_v2_0` file, so not in the file.
    pub reports_without_source: usize,
    /// Some report adds up values per day (`usage_daily`, `usage_breakdown`).
    pub daily: bool,
    /// Per period and SKU, sorted.
    pub totals: Vec<SkuTotal>,
}

/// The usage of one SKU (offering item, unit) in one period, over all reports of the run.
///
/// Each report counts once: the rows of its own tenant, which cover the tenants below it, where
/// it has them for that SKU; else the sum of its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkuTotal {
    pub period: Period,
    pub sku: String,
    pub offering_item: String,
    pub unit: String,
    /// Sum of the values as the files have them.
    pub total: String,
    /// The sum normalised (compute points, GiB) or as it is.
    pub normalised: String,
    pub normalised_unit: String,
}

/// How a value is normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Class {
    ComputePoints,
    Bytes,
    AsIs,
}

fn class_of(usage_name: &str, offering_item: &str, unit: &str) -> Class {
    if is_dr_seconds(usage_name, offering_item, unit) {
        Class::ComputePoints
    } else if unit.eq_ignore_ascii_case("bytes") || unit.eq_ignore_ascii_case("byte") {
        Class::Bytes
    } else {
        Class::AsIs
    }
}

/// The normalised value and unit of a row: compute points from seconds (÷ 3600, 2 decimals),
/// GiB from bytes (÷ 1024³, 4 decimals), else the value and unit unchanged. A value that is not
/// a number leaves the normalised value empty.
pub fn normalise(
    usage_name: &str,
    offering_item: &str,
    unit: &str,
    value: &str,
) -> (String, String) {
    normalised(
        class_of(usage_name, offering_item, unit),
        unit,
        value,
        parse_number(value),
    )
}

fn normalised(class: Class, unit: &str, text: &str, number: Option<f64>) -> (String, String) {
    match class {
        // Adding 0.0 turns a -0.0 into 0.0, so no "-0.00" appears.
        Class::ComputePoints => (
            number.map_or_else(String::new, |s| format!("{:.2}", compute_points(s) + 0.0)),
            "points".to_owned(),
        ),
        Class::Bytes => (
            number.map_or_else(String::new, |b| format!("{:.4}", b / GIB + 0.0)),
            "GiB".to_owned(),
        ),
        Class::AsIs => (text.to_owned(), unit.to_owned()),
    }
}

fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A sum of values exact for whole numbers (bytes of 10 000 tenants overflow an `f64`'s 53 bits).
#[derive(Clone, Debug, Default)]
struct Sum {
    whole: i128,
    fraction: f64,
    any_fraction: bool,
}

impl Sum {
    fn add(&mut self, text: &str) {
        let text = text.trim();
        if let Ok(whole) = text.parse::<i128>() {
            self.whole = self.whole.saturating_add(whole);
        } else if let Some(number) = parse_number(text) {
            self.fraction += number;
            self.any_fraction = true;
        }
    }

    fn merge(&mut self, other: &Sum) {
        self.whole = self.whole.saturating_add(other.whole);
        self.fraction += other.fraction;
        self.any_fraction |= other.any_fraction;
    }

    fn as_f64(&self) -> f64 {
        self.whole as f64 + self.fraction
    }

    fn text(&self) -> String {
        if !self.any_fraction {
            return self.whole.to_string();
        }
        let text = format!("{:.6}", self.as_f64() + 0.0);
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TotalKey {
    period: Period,
    /// Rows without a SKU sort after those with one.
    no_sku: bool,
    sku: String,
    offering_item: String,
    unit: String,
    class: Class,
}

/// One report's sums: of its own tenant's rows, and of the others.
#[derive(Default)]
struct ReportSums {
    own: BTreeMap<TotalKey, usize>,
    others: BTreeMap<TotalKey, usize>,
    sums: Vec<Sum>,
    /// The key of the previous row (own or not) and its sum: rows of one SKU come in runs, and
    /// a run costs neither a key nor a lookup.
    last: Option<(bool, TotalKey, usize)>,
}

impl ReportSums {
    fn add(&mut self, period: Period, own: bool, class: Class, row: &Row<'_>) {
        let same = |key: &TotalKey| {
            key.class == class
                && key.sku == row.sku
                && key.offering_item == row.offering_item
                && key.unit == row.unit
        };
        let index = match &self.last {
            Some((last_own, key, index)) if *last_own == own && same(key) => *index,
            _ => {
                let key = TotalKey {
                    period,
                    no_sku: row.sku.is_empty(),
                    sku: row.sku.to_owned(),
                    offering_item: row.offering_item.to_owned(),
                    unit: row.unit.to_owned(),
                    class,
                };
                let map = if own { &mut self.own } else { &mut self.others };
                let index = match map.get(&key) {
                    Some(index) => *index,
                    None => {
                        self.sums.push(Sum::default());
                        map.insert(key.clone(), self.sums.len() - 1);
                        self.sums.len() - 1
                    }
                };
                self.last = Some((own, key, index));
                index
            }
        };
        self.sums[index].add(row.value);
    }

    /// The sums that count: the report tenant's own where it has them, else the others.
    fn counted(self) -> impl Iterator<Item = (TotalKey, Sum)> {
        let ReportSums {
            own,
            others,
            mut sums,
            ..
        } = self;
        let mut take = move |index: usize| std::mem::take(&mut sums[index]);
        let mut counted: Vec<(TotalKey, Sum)> = Vec::with_capacity(own.len() + others.len());
        for (key, index) in &own {
            counted.push((key.clone(), take(*index)));
        }
        for (key, index) in others {
            if !own.contains_key(&key) {
                let sum = take(index);
                counted.push((key, sum));
            }
        }
        counted.into_iter()
    }
}

/// Writes `billing.csv` to `out` from the files (under `dir`) of the ok reports of `reports`,
/// in their order. Problems with a report's files become warnings for it; only a failure to
/// write to `out` is an error.
pub fn write(
    dir: &Path,
    reports: impl IntoIterator<Item = io::Result<ReportResult>>,
    out: impl Write,
) -> io::Result<Billing> {
    let mut sink = Sink {
        out: csv::WriterBuilder::new()
            .buffer_capacity(BUFFER)
            .from_writer(out),
        writing: true,
        report: ReportText::default(),
        number: String::new(),
    };
    sink.out.write_record(COLUMNS)?;
    let mut billing = Billing::default();
    let mut totals: BTreeMap<TotalKey, Sum> = BTreeMap::new();
    for (index, report) in reports.into_iter().enumerate() {
        let report = &report?;
        let ok = report.status == Status::Ok;
        // A failed report's rows stay out of the file, but its DR compute points are counted
        // the same way, so no report shows a number counted otherwise.
        sink.writing = ok;
        sink.report = ReportText::of(report);
        let mut warnings = Vec::new();
        let mut sums = ReportSums::default();
        let read = report_rows(dir, report, &mut sink, &mut sums, &mut warnings)?;
        if ok {
            match read {
                Some(rows) => {
                    billing.summary.rows += rows;
                    billing.summary.reports += 1;
                    billing.summary.daily |= matches!(
                        report.kind,
                        ReportKind::UsageDaily | ReportKind::UsageBreakdown
                    );
                }
                None => {
                    if !report
                        .files
                        .iter()
                        .any(|f| matches!(f.format, Format::CsvV2 | Format::JsonV2))
                    {
                        billing.summary.reports_without_source += 1;
                    }
                }
            }
        }
        let mut dr_seconds: Option<Sum> = None;
        for (key, sum) in sums.counted() {
            if key.class == Class::ComputePoints {
                dr_seconds.get_or_insert_default().merge(&sum);
            }
            if ok {
                totals.entry(key).or_default().merge(&sum);
            }
        }
        if let Some(seconds) = dr_seconds {
            billing
                .dr_compute_points
                .push((index, compute_points(seconds.as_f64()) + 0.0));
        }
        if ok {
            billing
                .warnings
                .extend(warnings.into_iter().map(|w| (index, w)));
        }
    }
    sink.out.flush()?;
    billing.summary.totals = totals
        .into_iter()
        .map(|(key, sum)| {
            let total = sum.text();
            let (normalised, normalised_unit) =
                normalised(key.class, &key.unit, &total, Some(sum.as_f64()));
            SkuTotal {
                period: key.period,
                sku: key.sku,
                offering_item: key.offering_item,
                unit: key.unit,
                total,
                normalised,
                normalised_unit,
            }
        })
        .collect();
    Ok(billing)
}

struct Sink<W: Write> {
    out: csv::Writer<W>,
    /// Rows are written (an ok report), or only counted (a failed one).
    writing: bool,
    /// The current report's cells, as text once per report rather than once per row.
    report: ReportText,
    /// The normalised value of the current row.
    number: String,
}

/// What every row of one report repeats.
#[derive(Default)]
struct ReportText {
    period: Option<Period>,
    start: String,
    end: String,
    tenant_id: String,
    tenant_name: String,
}

impl ReportText {
    fn of(report: &ReportResult) -> Self {
        ReportText {
            period: Some(report.period),
            start: report.period.start.to_string(),
            end: report.period.end.to_string(),
            tenant_id: report.tenant_id.clone(),
            tenant_name: report.tenant_name.clone(),
        }
    }
}

impl<W: Write> Sink<W> {
    fn row(&mut self, source: &str, row: Row<'_>, sums: &mut ReportSums) -> io::Result<()> {
        let report = &self.report;
        let own =
            !row.customer_id.is_empty() && row.customer_id.eq_ignore_ascii_case(&report.tenant_id);
        let class = class_of(row.usage_name, row.offering_item, row.unit);
        if let Some(period) = report.period {
            sums.add(period, own, class, &row);
        }
        if !self.writing {
            return Ok(());
        }
        let (value, unit) = normalised_into(class, row.unit, row.value, &mut self.number);
        self.out.write_record([
            report.start.as_str(),
            &report.end,
            &report.tenant_id,
            &report.tenant_name,
            if own { SCOPE_TOTAL } else { SCOPE_CHILD },
            row.customer_id,
            row.customer_name,
            row.customer_kind,
            row.usage_start,
            row.usage_end,
            row.edition,
            row.offering_item,
            row.usage_name,
            row.sku,
            row.unit,
            row.value,
            value,
            unit,
            source,
        ])?;
        Ok(())
    }
}

/// [`normalised`] without allocating: a number is formatted into `buffer`.
fn normalised_into<'a>(
    class: Class,
    unit: &'a str,
    text: &'a str,
    buffer: &'a mut String,
) -> (&'a str, &'a str) {
    use std::fmt::Write as _;
    buffer.clear();
    match class {
        Class::AsIs => (text, unit),
        Class::ComputePoints => {
            if let Some(seconds) = parse_number(text) {
                let _ = write!(buffer, "{:.2}", compute_points(seconds) + 0.0);
            }
            (buffer.as_str(), "points")
        }
        Class::Bytes => {
            if let Some(bytes) = parse_number(text) {
                let _ = write!(buffer, "{:.4}", bytes / GIB + 0.0);
            }
            (buffer.as_str(), "GiB")
        }
    }
}

/// Why a file gave no rows, or not all of them.
#[derive(Debug)]
enum ReadError {
    /// The file cannot be opened.
    Open(io::Error),
    /// A layout we cannot read; nothing was read.
    Layout(String),
    /// Broken, maybe after some rows were read.
    Malformed(String),
    /// Writing a row failed: the run's error, not the file's.
    Write(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Open(e) | ReadError::Write(e) => write!(f, "{e}"),
            ReadError::Layout(detail) | ReadError::Malformed(detail) => f.write_str(detail),
        }
    }
}

/// Writes one report's rows; `Some(rows)` when a file was read, `None` when none could be.
fn report_rows<W: Write>(
    dir: &Path,
    report: &ReportResult,
    sink: &mut Sink<W>,
    sums: &mut ReportSums,
    warnings: &mut Vec<String>,
) -> io::Result<Option<u64>> {
    let json = report.files.iter().find(|f| f.format == Format::JsonV2);
    let csv = report.files.iter().find(|f| f.format == Format::CsvV2);
    // The CSV reader buffers by itself; the JSON reader reads byte by byte, so it gets a buffer.
    let open = |relative: &str| File::open(dir.join(relative));

    // With both formats, the CSV's header decides how rows are matched, so it is read first.
    // Only for rows that are written: a failed report's rows are just counted.
    let mut comparison = None;
    if let (Some(_), Some(csv_file), true) = (json, csv, sink.writing) {
        match open(&csv_file.path)
            .map_err(ReadError::Open)
            .and_then(|r| CsvRows::new(r).map_err(ReadError::Layout))
        {
            Ok(rows) => comparison = Some((Comparison::new(&rows.columns), rows)),
            Err(e) => warnings.push(format!(
                "the csv_v2_0 and json_v2_0 files were not compared: cannot read {}: {e}",
                csv_file.path
            )),
        }
    }

    let mut written = None;
    if let Some(json_file) = json {
        let source = json_file.path.as_str();
        let mut rows = 0u64;
        let outcome = open(source).map_err(ReadError::Open).and_then(|file| {
            read_json(BufReader::with_capacity(BUFFER, file), |row| {
                rows += 1;
                if let Some((comparison, _)) = &mut comparison {
                    comparison.add_json(&row);
                }
                sink.row(source, row, sums)
            })
        });
        match outcome {
            Ok(n) => written = Some(n),
            Err(ReadError::Write(e)) => return Err(e),
            Err(e) => {
                comparison = None;
                if rows > 0 {
                    written = Some(rows);
                    warnings.push(format!(
                        "billing.csv holds only the first {} of {source}: {e}",
                        row_count(rows)
                    ));
                } else {
                    let fallback = if csv.is_some() {
                        "; its rows come from the csv_v2_0 file"
                    } else {
                        ""
                    };
                    warnings.push(format!(
                        "billing.csv has no rows from {source}: {e}{fallback}"
                    ));
                }
            }
        }
    }
    if written.is_none()
        && let Some(csv_file) = csv
    {
        let source = csv_file.path.as_str();
        let mut rows = 0u64;
        let outcome = open(source)
            .map_err(ReadError::Open)
            .and_then(|reader| CsvRows::new(reader).map_err(ReadError::Layout))
            .and_then(|mut reader| {
                reader.for_each(|row| {
                    rows += 1;
                    sink.row(source, row, sums)
                })
            });
        match outcome {
            Ok(n) => written = Some(n),
            Err(ReadError::Write(e)) => return Err(e),
            Err(e) if rows > 0 => {
                written = Some(rows);
                warnings.push(format!(
                    "billing.csv holds only the first {} of {source}: {e}",
                    row_count(rows)
                ));
            }
            Err(e) => warnings.push(format!("billing.csv has no rows from {source}: {e}")),
        }
    }

    if let Some((mut comparison, mut rows)) = comparison {
        let outcome = rows.for_each(|row| {
            comparison.check_csv(&row);
            Ok(())
        });
        match outcome {
            Ok(_) => warnings.extend(comparison.finish()),
            Err(e) => warnings.push(format!(
                "the csv_v2_0 and json_v2_0 files were not compared: {} is not valid: {e}",
                csv.map_or("", |f| f.path.as_str())
            )),
        }
    }
    Ok(written)
}

/// Whether the `csv_v2_0` and `json_v2_0` files of one report hold the same usage rows (matched
/// by customer, edition, offering item, usage name and dates; compared by value, unit and SKU).
/// `Ok(None)` when they agree, `Ok(Some(warning))` saying what differs, `Err` when either file
/// cannot be read.
pub fn compare_formats(csv: impl Read, json: impl Read) -> Result<Option<String>, String> {
    let mut csv = CsvRows::new(csv)?;
    let mut comparison = Comparison::new(&csv.columns);
    read_json(json, |row| {
        comparison.add_json(&row);
        Ok(())
    })
    .map_err(|e| format!("json_v2_0: {e}"))?;
    csv.for_each(|row| {
        comparison.check_csv(&row);
        Ok(())
    })
    .map_err(|e| format!("csv_v2_0: {e}"))?;
    Ok(comparison.finish())
}

const ID_NAMES: [&str; 4] = ["tenantuuid", "customeruuid", "tenantid", "customerid"];
const NAME_NAMES: [&str; 2] = ["tenantname", "customername"];
const KIND_NAMES: [&str; 2] = ["tenantkind", "customerkind"];
const EDITION_NAMES: [&str; 2] = ["edition", "editionname"];
const OFFERING_NAMES: [&str; 2] = ["offeringitem", "offeringitemname"];
const USAGE_NAMES: [&str; 1] = ["usagename"];
const UNIT_NAMES: [&str; 2] = ["measurementunit", "unit"];
const SKU_NAMES: [&str; 1] = ["sku"];
const START_NAMES: [&str; 3] = ["startdate", "rangestart", "start"];
const END_NAMES: [&str; 3] = ["enddate", "rangeend", "end"];
const VALUE_NAMES: [&str; 6] = [
    "usage",
    "value",
    "endusage",
    "endvalue",
    "totalusage",
    "quantity",
];

/// Where each field is in a CSV file.
#[derive(Clone, Debug)]
struct CsvColumns {
    id: Option<usize>,
    name: Option<usize>,
    kind: Option<usize>,
    edition: Option<usize>,
    offering: Option<usize>,
    usage_name: Option<usize>,
    unit: Option<usize>,
    sku: Option<usize>,
    start: Option<usize>,
    end: Option<usize>,
    value: usize,
}

impl CsvColumns {
    fn find(headers: &csv::StringRecord) -> Result<Self, String> {
        let keys: Vec<String> = headers.iter().map(normalise_header).collect();
        let column = |names: &[&str]| names.iter().find_map(|n| keys.iter().position(|k| k == n));
        let value = column(&VALUE_NAMES).ok_or(
            "it has no usage column (looked for a header named Usage, Value or Quantity); columns are found by header name",
        )?;
        let columns = CsvColumns {
            id: column(&ID_NAMES),
            name: column(&NAME_NAMES),
            kind: column(&KIND_NAMES),
            edition: column(&EDITION_NAMES),
            offering: column(&OFFERING_NAMES),
            usage_name: column(&USAGE_NAMES),
            unit: column(&UNIT_NAMES),
            sku: column(&SKU_NAMES),
            start: column(&START_NAMES),
            end: column(&END_NAMES),
            value,
        };
        if columns.offering.is_none() && columns.usage_name.is_none() {
            return Err("it has neither an Offering Item nor a Usage Name column, so its rows cannot be told apart; columns are found by header name".to_owned());
        }
        Ok(columns)
    }

    fn row<'r>(&self, record: &'r csv::StringRecord) -> Row<'r> {
        let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).map_or("", str::trim);
        Row {
            customer_id: cell(self.id),
            customer_name: cell(self.name),
            customer_kind: cell(self.kind),
            edition: cell(self.edition),
            offering_item: cell(self.offering),
            usage_name: cell(self.usage_name),
            sku: cell(self.sku),
            unit: cell(self.unit),
            usage_start: cell(self.start),
            usage_end: cell(self.end),
            value: cell(Some(self.value)),
        }
    }
}

/// A `csv_v2_0` file whose header has been read.
struct CsvRows<R: Read> {
    reader: csv::Reader<R>,
    columns: CsvColumns,
}

impl<R: Read> CsvRows<R> {
    fn new(reader: R) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(BUFFER)
            .from_reader(reader);
        let headers = reader
            .headers()
            .map_err(|e| format!("its header cannot be read: {e}"))?;
        let columns = CsvColumns::find(headers)?;
        Ok(Self { reader, columns })
    }

    /// Passes every non-empty row to `each`; returns how many.
    fn for_each(
        &mut self,
        mut each: impl FnMut(Row<'_>) -> io::Result<()>,
    ) -> Result<u64, ReadError> {
        let mut record = csv::StringRecord::new();
        let mut rows = 0;
        loop {
            match self.reader.read_record(&mut record) {
                Ok(false) => return Ok(rows),
                Ok(true) => {}
                Err(e) => return Err(ReadError::Malformed(e.to_string())),
            }
            if record.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            rows += 1;
            each(self.columns.row(&record)).map_err(ReadError::Write)?;
        }
    }
}

/// Streams the usage entries of a `json_v2_0` document to `emit`; returns how many.
fn read_json(
    reader: impl Read,
    emit: impl FnMut(Row<'_>) -> io::Result<()>,
) -> Result<u64, ReadError> {
    let mut state = WalkState {
        emit,
        rows: 0,
        elements: 0,
        write_error: None,
    };
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let walked = Walk {
        state: &mut state,
        around: Rc::default(),
    }
    .deserialize(&mut deserializer)
    .and_then(|_| deserializer.end());
    if let Some(e) = state.write_error {
        return Err(ReadError::Write(e));
    }
    if let Err(e) = walked {
        return Err(ReadError::Malformed(format!("it is not valid JSON: {e}")));
    }
    if state.rows == 0 && state.elements > 0 {
        return Err(ReadError::Layout(
            "it has no usage entries (objects with a `usage_name`)".to_owned(),
        ));
    }
    Ok(state.rows)
}

struct WalkState<F> {
    emit: F,
    rows: u64,
    /// Array elements seen: a document with some but no usage entries is in an unknown layout.
    elements: u64,
    write_error: Option<io::Error>,
}

/// Tenant fields of the objects around a usage entry, for entries that lack their own: id, name
/// and kind, each with the rank of its key in [`ID_NAMES`] (…) so that `tenant_uuid` wins over
/// `tenant_id` in one object. The nearest object that has a field gives it.
#[derive(Clone, Debug, Default)]
struct Around {
    fields: [Option<(usize, String)>; 3],
}

impl Around {
    const NAMES: [&'static [&'static str]; 3] = [&ID_NAMES, &NAME_NAMES, &KIND_NAMES];

    fn get(&self, slot: usize) -> String {
        self.fields[slot]
            .as_ref()
            .map_or_else(String::new, |(_, text)| text.clone())
    }
}

/// One JSON value, walked without building the document: arrays are streamed and dropped, a
/// usage entry is emitted and dropped, and any other object is kept (without its arrays) for the
/// object around it. Nesting depth is bounded by serde_json's recursion limit.
struct Walk<'s, F> {
    state: &'s mut WalkState<F>,
    around: Rc<Around>,
}

impl<'de, F: FnMut(Row<'_>) -> io::Result<()>> DeserializeSeed<'de> for Walk<'_, F> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Row<'_>) -> io::Result<()>> Visitor<'de> for Walk<'_, F> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Some(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Some(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let state = self.state;
        while seq
            .next_element_seed(Walk {
                state: &mut *state,
                around: self.around.clone(),
            })?
            .is_some()
        {
            state.elements += 1;
        }
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let state = self.state;
        let mut around = self.around;
        // Which fields this object gave itself, rather than inherited.
        let mut own = [false; 3];
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Walk {
                state: &mut *state,
                around: around.clone(),
            })?;
            let Some(value) = value else { continue };
            if let Some(text) = scalar_text(&value).filter(|t| !t.is_empty()) {
                let k = normalise_header(&key);
                for (slot, names) in Around::NAMES.iter().enumerate() {
                    let Some(rank) = names.iter().position(|n| *n == k) else {
                        continue;
                    };
                    let better =
                        !own[slot] || around.fields[slot].as_ref().is_none_or(|(r, _)| rank < *r);
                    if better {
                        Rc::make_mut(&mut around).fields[slot] = Some((rank, text.clone()));
                        own[slot] = true;
                    }
                }
            }
            fields.insert(key, value);
        }
        if !fields.keys().any(|k| normalise_header(k) == "usagename") {
            return Ok(Some(Value::Object(fields)));
        }
        state.rows += 1;
        let row = json_row(&fields, &around);
        if let Err(e) = (state.emit)(row.as_row()) {
            state.write_error = Some(e);
            return Err(de::Error::custom("stopped: billing.csv cannot be written"));
        }
        Ok(None)
    }
}

/// A JSON scalar as the text a CSV cell would hold.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_row(fields: &Map<String, Value>, around: &Around) -> UsageRow {
    let keys: Vec<(String, &Value)> = fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (normalise_header(k), v))
        .collect();
    // The first of `names` that the entry has: their order is their priority.
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| keys.iter().find(|(k, _)| k == n).map(|(_, v)| *v))
    };
    let text = |names: &[&str]| get(names).and_then(scalar_text).unwrap_or_default();
    // `offering_item` is a name, or an object with a `name` (and maybe a `sku`).
    let offering = get(&OFFERING_NAMES);
    let offering_field = |key: &str| {
        offering
            .and_then(|o| o.get(key))
            .and_then(scalar_text)
            .unwrap_or_default()
    };
    let offering_item = match offering {
        Some(Value::Object(_)) => offering_field("name"),
        Some(value) => scalar_text(value).unwrap_or_default(),
        None => String::new(),
    };
    let mut sku = text(&SKU_NAMES);
    if sku.is_empty() {
        sku = offering_field("sku");
    }
    // The entry's own fields are in `around` already (it is the innermost object).
    UsageRow {
        customer_id: around.get(0),
        customer_name: around.get(1),
        customer_kind: around.get(2),
        edition: text(&EDITION_NAMES),
        offering_item,
        usage_name: text(&USAGE_NAMES),
        sku,
        unit: text(&UNIT_NAMES),
        usage_start: text(&START_NAMES),
        usage_end: text(&END_NAMES),
        value: text(&VALUE_NAMES),
    }
}

/// Which fields rows are matched on: those the CSV file has.
#[derive(Clone, Copy, Debug)]
struct MatchOn {
    id: bool,
    name: bool,
    edition: bool,
    offering: bool,
    usage_name: bool,
    start: bool,
    end: bool,
    sku: bool,
    unit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RowKey {
    customer: String,
    edition: String,
    offering_item: String,
    usage_name: String,
    start: String,
    end: String,
}

struct JsonSide {
    /// Position in the JSON file, to name left-over rows in file order.
    position: u64,
    customer_name: String,
    value: String,
    sku: String,
    unit: String,
}

/// The rows of the two formats of one report, matched up.
struct Comparison {
    on: MatchOn,
    json: HashMap<RowKey, VecDeque<JsonSide>>,
    json_rows: u64,
    csv_rows: u64,
    differ: u64,
    only_csv: u64,
    examples: Vec<String>,
}

impl Comparison {
    fn new(columns: &CsvColumns) -> Self {
        Self {
            on: MatchOn {
                id: columns.id.is_some(),
                name: columns.name.is_some(),
                edition: columns.edition.is_some(),
                offering: columns.offering.is_some(),
                usage_name: columns.usage_name.is_some(),
                start: columns.start.is_some(),
                end: columns.end.is_some(),
                sku: columns.sku.is_some(),
                unit: columns.unit.is_some(),
            },
            json: HashMap::new(),
            json_rows: 0,
            csv_rows: 0,
            differ: 0,
            only_csv: 0,
            examples: Vec::new(),
        }
    }

    fn key(&self, row: &Row<'_>) -> RowKey {
        let keep = |on: bool, text: &str| if on { text.to_owned() } else { String::new() };
        let customer = if self.on.id {
            row.customer_id.to_ascii_lowercase()
        } else {
            keep(self.on.name, row.customer_name)
        };
        RowKey {
            customer,
            edition: keep(self.on.edition, row.edition),
            offering_item: keep(self.on.offering, row.offering_item),
            usage_name: keep(self.on.usage_name, row.usage_name),
            start: keep(self.on.start, &date_key(row.usage_start)),
            end: keep(self.on.end, &date_key(row.usage_end)),
        }
    }

    fn add_json(&mut self, row: &Row<'_>) {
        let side = JsonSide {
            position: self.json_rows,
            customer_name: row.customer_name.to_owned(),
            value: row.value.to_owned(),
            sku: row.sku.to_owned(),
            unit: row.unit.to_owned(),
        };
        self.json_rows += 1;
        self.json.entry(self.key(row)).or_default().push_back(side);
    }

    fn check_csv(&mut self, row: &Row<'_>) {
        self.csv_rows += 1;
        let key = self.key(row);
        let Some(json) = self.json.get_mut(&key).and_then(VecDeque::pop_front) else {
            self.only_csv += 1;
            self.example(|| format!("{}: only in csv_v2_0", describe(&key, row.customer_name)));
            return;
        };
        let mut differences = Vec::new();
        if !same_amount(row.value, &json.value) {
            differences.push(format!(
                "value {} in csv_v2_0, {} in json_v2_0",
                shown(row.value),
                shown(&json.value)
            ));
        }
        if self.on.unit && !row.unit.eq_ignore_ascii_case(&json.unit) {
            differences.push(format!(
                "unit {} in csv_v2_0, {} in json_v2_0",
                shown(row.unit),
                shown(&json.unit)
            ));
        }
        if self.on.sku && row.sku != json.sku {
            differences.push(format!(
                "SKU {} in csv_v2_0, {} in json_v2_0",
                shown(row.sku),
                shown(&json.sku)
            ));
        }
        if !differences.is_empty() {
            self.differ += 1;
            self.example(|| {
                format!(
                    "{}: {}",
                    describe(&key, row.customer_name),
                    differences.join(", ")
                )
            });
        }
    }

    fn example(&mut self, text: impl FnOnce() -> String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(text());
        }
    }

    /// The warning, when the files disagree.
    fn finish(mut self) -> Option<String> {
        let mut left: Vec<(RowKey, JsonSide)> = self
            .json
            .drain()
            .flat_map(|(key, sides)| sides.into_iter().map(move |side| (key.clone(), side)))
            .collect();
        left.sort_by_key(|(_, side)| side.position);
        let only_json = left.len() as u64;
        for (key, side) in &left {
            self.example(|| format!("{}: only in json_v2_0", describe(key, &side.customer_name)));
        }
        if self.differ + self.only_csv + only_json == 0 {
            return None;
        }
        let mut parts = Vec::new();
        if self.differ > 0 {
            parts.push(format!("{} with other values", row_count(self.differ)));
        }
        if self.only_csv > 0 {
            parts.push(format!("{} only in csv_v2_0", row_count(self.only_csv)));
        }
        if only_json > 0 {
            parts.push(format!("{} only in json_v2_0", row_count(only_json)));
        }
        Some(format!(
            "the csv_v2_0 and json_v2_0 files disagree ({} csv_v2_0 and {} json_v2_0 rows: {}); billing.csv uses json_v2_0. First: {}",
            self.csv_rows,
            self.json_rows,
            parts.join(", "),
            self.examples.join("; ")
        ))
    }
}

fn row_count(n: u64) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    }
}

/// A row named for a person: customer, offering item (or usage name), day.
fn describe(key: &RowKey, customer_name: &str) -> String {
    let mut text = if customer_name.is_empty() {
        shown(&key.customer)
    } else {
        shown(customer_name)
    };
    let what = if key.offering_item.is_empty() {
        &key.usage_name
    } else {
        &key.offering_item
    };
    if !what.is_empty() {
        text.push_str(" / ");
        text.push_str(what);
    }
    if !key.start.is_empty() && key.start == key.end {
        text.push_str(" on ");
        text.push_str(&key.start);
    }
    text
}

/// A cell's value in a message: `""` for an empty one.
fn shown(text: &str) -> String {
    if text.is_empty() {
        "\"\"".to_owned()
    } else {
        text.chars().take(100).collect()
    }
}

/// Dates compared by day, whether written `2026-10-01`, `2026-10-01T00:00:00Z` or as UNIX seconds.
fn date_key(text: &str) -> String {
    let text = text.trim();
    if let Some(day) = text.get(..10)
        && day.parse::<jiff::civil::Date>().is_ok()
    {
        return day.to_owned();
    }
    if let Ok(seconds) = text.parse::<i64>()
        && let Ok(at) = jiff::Timestamp::from_second(seconds)
    {
        return jiff::tz::Offset::UTC.to_datetime(at).date().to_string();
    }
    text.to_owned()
}

/// Values compared as numbers: `5`, `5.0` and ` 5` are one value.
fn same_amount(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a == b {
        return true;
    }
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x == y;
    }
    match (parse_number(a), parse_number(b)) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\u{feff}Tenant Name,Tenant UUID,Tenant Kind,Edition,Offering Item,Usage Name,Measurement Unit,SKU,Start Date,End Date,Usage\n\
        Partner,P,partner,e,pw_base_storage,storage,bytes,S1,2026-10-01,2026-10-31,3221225472\n\
        \"Kunde, GmbH\",C1,customer,e,pw_base_storage,storage,bytes,S1,2026-10-01,2026-10-31,1073741824\n\
        \"Kunde, GmbH\",C1,customer,e,pw_base_adv_dr_compute_points,compute_points,seconds,S2,2026-10-01,2026-10-31,1000\n\
        \n";

    fn json_rows(text: &str) -> Result<Vec<UsageRow>, ReadError> {
        let mut rows = Vec::new();
        read_json(text.as_bytes(), |row| {
            rows.push(row.to_owned());
            Ok(())
        })?;
        Ok(rows)
    }

    #[test]
    fn normalises_compute_points_and_bytes() {
        assert_eq!(
            normalise("compute_points", "x", "seconds", "1000"),
            ("0.28".into(), "points".into())
        );
        assert_eq!(
            normalise("other", "pw_base_adv_dr_compute_points", "", "7200"),
            ("2.00".into(), "points".into())
        );
        // Points already (legacy formats): unchanged.
        assert_eq!(
            normalise("compute_points", "x", "points", "3"),
            ("3".into(), "points".into())
        );
        assert_eq!(
            normalise("storage", "x", "bytes", "1610612736"),
            ("1.5000".into(), "GiB".into())
        );
        assert_eq!(
            normalise("seats", "x", "quantity", "12"),
            ("12".into(), "quantity".into())
        );
        assert_eq!(
            normalise("storage", "x", "Bytes", "n/a"),
            (String::new(), "GiB".into())
        );
    }

    #[test]
    fn sums_are_exact_for_whole_numbers() {
        let mut sum = Sum::default();
        for _ in 0..10_000 {
            sum.add("900719925474099");
        }
        assert_eq!(sum.text(), "9007199254740990000");
        let mut sum = Sum::default();
        sum.add("0.1");
        sum.add("0.2");
        sum.add("1");
        sum.add("n/a");
        assert_eq!(sum.text(), "1.3");
    }

    #[test]
    fn csv_columns_by_name_in_any_order() {
        let mut rows = CsvRows::new(CSV.as_bytes()).unwrap();
        let mut read = Vec::new();
        let n = rows
            .for_each(|row| {
                read.push(row.to_owned());
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(read[1].customer_name, "Kunde, GmbH");
        assert_eq!(read[1].customer_id, "C1");
        assert_eq!(read[1].value, "1073741824");
        assert_eq!(read[2].sku, "S2");

        let reordered = "USAGE,sku,offering_item\n5,x,o\n";
        let mut rows = CsvRows::new(reordered.as_bytes()).unwrap();
        rows.for_each(|row| {
            assert_eq!((row.value, row.offering_item), ("5", "o"));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn unknown_csv_layouts_are_refused_before_any_row() {
        let err = CsvRows::new("name,sku\na,b\n".as_bytes()).err().unwrap();
        assert!(err.contains("no usage column"), "{err}");
        let err = CsvRows::new("name,usage\na,1\n".as_bytes()).err().unwrap();
        assert!(err.contains("neither an Offering Item"), "{err}");
    }

    #[test]
    fn json_entries_anywhere_with_tenant_fields_from_around_them() {
        let json = r#"{"params":{"name":"P"},"tenants":[
            {"tenant_uuid":"C1","tenant_name":"One","usage_name":"storage","offering_item":"pw_base_storage","measurement_unit":"bytes","sku":"S1","value":5},
            {"tenant_id":1234,"tenant_uuid":"C2","tenant_name":"Two","tenant_kind":"customer","usages":[
                {"usage_name":"seats","offering_item":{"name":"m365","sku":"M1"},"value":"2","unit":"quantity"}
            ],"children":[{"tenant_uuid":"C3","usages":[{"usage_name":"seats","value":1}]}]}
        ]}"#;
        let rows = json_rows(json).unwrap();
        assert_eq!(rows.len(), 3);
        // The nearest object's tenant, the rest from further out.
        assert_eq!(
            (rows[2].customer_id.as_str(), rows[2].customer_name.as_str()),
            ("C3", "Two")
        );
        assert_eq!(rows[0].customer_id, "C1");
        assert_eq!(rows[0].value, "5");
        assert_eq!(
            (
                rows[1].customer_id.as_str(),
                rows[1].customer_name.as_str(),
                rows[1].customer_kind.as_str(),
                rows[1].offering_item.as_str(),
                rows[1].sku.as_str(),
                rows[1].value.as_str(),
                rows[1].unit.as_str()
            ),
            ("C2", "Two", "customer", "m365", "M1", "2", "quantity")
        );
    }

    #[test]
    fn json_in_an_unknown_layout_or_broken_is_an_error_not_a_panic() {
        assert!(matches!(
            json_rows(r#"{"tenants":[{"name":"a","amount":1}]}"#),
            Err(ReadError::Layout(_))
        ));
        // An empty report is no problem.
        assert_eq!(json_rows(r#"{"params":{},"tenants":[]}"#).unwrap(), []);
        let mut read = 0;
        let broken = read_json(
            r#"{"tenants":[{"usage_name":"a","value":1},{"usage_name":"#.as_bytes(),
            |_| {
                read += 1;
                Ok(())
            },
        );
        assert!(matches!(broken, Err(ReadError::Malformed(_))), "{broken:?}");
        assert_eq!(read, 1);
        assert!(matches!(json_rows("[1] x"), Err(ReadError::Malformed(_))));
        let deep = "[".repeat(10_000);
        assert!(matches!(json_rows(&deep), Err(ReadError::Malformed(_))));
    }

    fn json_of(csv: &str) -> String {
        let mut rows = Vec::new();
        CsvRows::new(csv.as_bytes())
            .unwrap()
            .for_each(|row| {
                rows.push(serde_json::json!({
                    "tenant_uuid": row.customer_id, "tenant_name": row.customer_name,
                    "tenant_kind": row.customer_kind, "edition": row.edition,
                    "offering_item": row.offering_item, "usage_name": row.usage_name,
                    "measurement_unit": row.unit, "sku": row.sku,
                    "range_start": row.usage_start, "range_end": row.usage_end,
                    "value": row.value.parse::<u64>().unwrap(),
                }));
                Ok(())
            })
            .unwrap();
        serde_json::json!({"params": {"kind": 5}, "tenants": rows}).to_string()
    }

    #[test]
    fn formats_that_agree() {
        let json = json_of(CSV);
        assert_eq!(compare_formats(CSV.as_bytes(), json.as_bytes()), Ok(None));
        // Dates as timestamps, values as text and another order still agree.
        let json = r#"{"tenants":[
            {"tenant_uuid":"c1","usage_name":"compute_points","offering_item":"pw_base_adv_dr_compute_points","edition":"e","measurement_unit":"seconds","sku":"S2","range_start":1790812800,"range_end":"2026-10-31T23:59:59Z","value":"1000.0"},
            {"tenant_uuid":"C1","usage_name":"storage","offering_item":"pw_base_storage","edition":"e","measurement_unit":"bytes","sku":"S1","range_start":"2026-10-01","range_end":"2026-10-31","value":1073741824},
            {"tenant_uuid":"P","usage_name":"storage","offering_item":"pw_base_storage","edition":"e","measurement_unit":"bytes","sku":"S1","range_start":"2026-10-01","range_end":"2026-10-31","value":3221225472}
        ]}"#;
        assert_eq!(compare_formats(CSV.as_bytes(), json.as_bytes()), Ok(None));
    }

    #[test]
    fn formats_that_disagree_say_what_differs() {
        let json = json_of(CSV)
            .replace("1073741824", "1073741825")
            .replace("\"S2\"", "\"S9\"");
        let csv = format!(
            "{CSV}Extra,C3,customer,e,pw_base_vms,vms,quantity,S3,2026-10-01,2026-10-01,4\n"
        );
        let warning = compare_formats(csv.as_bytes(), json.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            warning,
            "the csv_v2_0 and json_v2_0 files disagree (4 csv_v2_0 and 3 json_v2_0 rows: 2 rows with other values, 1 row only in csv_v2_0); billing.csv uses json_v2_0. First: Kunde, GmbH / pw_base_storage: value 1073741824 in csv_v2_0, 1073741825 in json_v2_0; Kunde, GmbH / pw_base_adv_dr_compute_points: SKU S2 in csv_v2_0, S9 in json_v2_0"
        );

        let header = CSV.lines().next().unwrap();
        let json_only = compare_formats(format!("{header}\n").as_bytes(), json_of(CSV).as_bytes())
            .unwrap()
            .unwrap();
        assert!(
            json_only.contains("(0 csv_v2_0 and 3 json_v2_0 rows: 3 rows only in json_v2_0)"),
            "{json_only}"
        );
        assert!(
            json_only.ends_with("First: Partner / pw_base_storage: only in json_v2_0; Kunde, GmbH / pw_base_storage: only in json_v2_0"),
            "{json_only}"
        );
        assert!(compare_formats("a,b\n".as_bytes(), "{}".as_bytes()).is_err());
        assert!(compare_formats(CSV.as_bytes(), "{".as_bytes()).is_err());
    }

    #[test]
    fn a_missing_json_sku_equals_an_empty_csv_cell() {
        let csv = "Tenant UUID,Offering Item,SKU,Usage\nc,o,,1\n";
        let json =
            r#"{"tenants":[{"tenant_uuid":"c","offering_item":"o","usage_name":"u","value":1}]}"#;
        assert_eq!(compare_formats(csv.as_bytes(), json.as_bytes()), Ok(None));
    }

    /// A report of `tenant` with the given files (path, content) written under `dir`.
    fn report_with(dir: &Path, tenant: &str, files: &[(Format, &str, &str)]) -> ReportResult {
        let mut report = crate::ci::tests::ok_report(tenant, crate::ci::tests::october());
        report.tenant_id = "P".to_owned();
        report.files = files
            .iter()
            .map(|(format, path, content)| {
                let full = dir.join(path);
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, content).unwrap();
                crate::results::FileResult {
                    format: *format,
                    path: (*path).to_owned(),
                    ..report.files[0].clone()
                }
            })
            .collect();
        report
    }

    fn written(dir: &Path, reports: &[ReportResult]) -> (Billing, String) {
        let mut out = Vec::new();
        let billing = write(dir, reports.iter().cloned().map(Ok), &mut out).unwrap();
        (billing, String::from_utf8(out).unwrap())
    }

    #[test]
    fn writes_rows_in_plan_order_and_counts_each_report_once() {
        let dir = tempfile::tempdir().unwrap();
        let both = report_with(
            dir.path(),
            "both",
            &[
                (Format::CsvV2, "a/r.csv", CSV),
                (Format::JsonV2, "a/r.json", &json_of(CSV)),
            ],
        );
        let mut failed = report_with(dir.path(), "failed", &[(Format::CsvV2, "f/r.csv", CSV)]);
        failed.status = Status::Failed;
        let html = report_with(dir.path(), "html", &[(Format::Html, "h/r.html", "<p>")]);
        // No row of its own tenant: its rows add up.
        let children = report_with(
            dir.path(),
            "children",
            &[(
                Format::CsvV2,
                "c/r.csv",
                "Tenant UUID,Offering Item,Measurement Unit,SKU,Usage\nX,pw_base_storage,bytes,S1,1073741824\nY,pw_base_storage,bytes,S1,1073741824\n",
            )],
        );
        let (billing, text) = written(dir.path(), &[both, failed, html, children]);
        assert!(billing.warnings.is_empty(), "{:?}", billing.warnings);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(lines.len(), 1 + 3 + 2);
        assert_eq!(
            lines[2],
            "2026-10-01,2026-10-31,P,both,child,C1,\"Kunde, GmbH\",customer,2026-10-01,2026-10-31,e,pw_base_storage,storage,S1,bytes,1073741824,1.0000,GiB,a/r.json"
        );
        assert!(lines[1].contains(",total,P,Partner,"), "{}", lines[1]);
        assert!(
            lines[3].ends_with(",seconds,1000,0.28,points,a/r.json"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].ends_with(",X,,,,,,pw_base_storage,,S1,bytes,1073741824,1.0000,GiB,c/r.csv"),
            "{}",
            lines[4]
        );

        let summary = &billing.summary;
        assert_eq!(
            (
                summary.rows,
                summary.reports,
                summary.reports_without_source
            ),
            (5, 2, 1)
        );
        // Storage: the first report's own row (3 GiB) and the second's two child rows (2 GiB).
        let storage = &summary.totals[0];
        assert_eq!(
            (
                storage.sku.as_str(),
                storage.total.as_str(),
                storage.normalised.as_str(),
                storage.normalised_unit.as_str()
            ),
            ("S1", "5368709120", "5.0000", "GiB")
        );
        // DR: only a child row, so it counts.
        let dr = &summary.totals[1];
        assert_eq!(
            (dr.total.as_str(), dr.normalised.as_str()),
            ("1000", "0.28")
        );
        // The failed report's rows are not in the file, but its DR points are counted alike.
        assert_eq!(billing.dr_compute_points, [(0, 0.28), (1, 0.28)]);
    }

    #[test]
    fn dr_points_are_the_report_tenants_own_rows_for_failed_reports_too() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "Tenant UUID,Offering Item,Usage Name,Measurement Unit,SKU,Usage\n\
            P,pw_base_adv_dr_compute_points,compute_points,seconds,S2,10800\n\
            C1,pw_base_adv_dr_compute_points,compute_points,seconds,S2,3600\n\
            C2,pw_base_adv_dr_compute_points,compute_points,seconds,S2,7200\n";
        let ok = report_with(dir.path(), "ok", &[(Format::CsvV2, "o/r.csv", csv)]);
        let mut failed = report_with(dir.path(), "failed", &[(Format::CsvV2, "f/r.csv", csv)]);
        failed.status = Status::Failed;
        let (billing, text) = written(dir.path(), &[ok, failed]);
        // The own row covers its children: 3 points, not 6.
        assert_eq!(billing.dr_compute_points, [(0, 3.0), (1, 3.0)]);
        assert_eq!(text.lines().count(), 1 + 3);
        assert_eq!(billing.summary.reports, 1);
        assert_eq!(billing.summary.totals.len(), 1);
        assert_eq!(billing.summary.totals[0].total, "10800");
    }

    #[test]
    fn unreadable_files_are_warnings_and_json_falls_back_to_csv() {
        let dir = tempfile::tempdir().unwrap();
        let odd_json = report_with(
            dir.path(),
            "odd",
            &[
                (Format::CsvV2, "o/r.csv", CSV),
                (
                    Format::JsonV2,
                    "o/r.json",
                    r#"{"rows":[{"customer":"x","amount":1}]}"#,
                ),
            ],
        );
        let odd_csv = report_with(
            dir.path(),
            "odd csv",
            &[(Format::CsvV2, "c/r.csv", "Name,Amount\nx,1\n")],
        );
        let mut missing = report_with(dir.path(), "missing", &[(Format::JsonV2, "m/r.json", "{}")]);
        std::fs::remove_file(dir.path().join("m/r.json")).unwrap();
        missing.files[0].path = "m/r.json".into();
        let broken = report_with(
            dir.path(),
            "broken",
            &[(
                Format::JsonV2,
                "b/r.json",
                r#"{"tenants":[{"usage_name":"a","value":1},"#,
            )],
        );
        let (billing, text) = written(dir.path(), &[odd_json, odd_csv, missing, broken]);
        let warnings: Vec<String> = billing
            .warnings
            .iter()
            .map(|(i, w)| format!("{i}: {w}"))
            .collect();
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        assert_eq!(
            warnings[0],
            "0: billing.csv has no rows from o/r.json: it has no usage entries (objects with a `usage_name`); its rows come from the csv_v2_0 file"
        );
        assert!(
            warnings[1]
                .starts_with("1: billing.csv has no rows from c/r.csv: it has no usage column"),
            "{}",
            warnings[1]
        );
        assert!(
            warnings[2].starts_with("2: billing.csv has no rows from m/r.json: "),
            "{}",
            warnings[2]
        );
        assert!(
            warnings[3].starts_with(
                "3: billing.csv holds only the first 1 row of b/r.json: it is not valid JSON"
            ),
            "{}",
            warnings[3]
        );
        // The CSV rows of the first report, and the row read before the JSON broke.
        assert_eq!(text.lines().count(), 1 + 3 + 1);
        assert_eq!(text.lines().filter(|l| l.ends_with(",o/r.csv")).count(), 3);
    }

    #[test]
    fn a_write_error_is_the_only_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let report = report_with(
            dir.path(),
            "t",
            &[(Format::JsonV2, "t/r.json", &json_of(CSV))],
        );
        let err = write(dir.path(), [Ok(report)], Full).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }

    #[test]
    fn dates_by_day() {
        assert_eq!(date_key("2026-10-01"), "2026-10-01");
        assert_eq!(date_key("2026-10-01T12:00:00+02:00"), "2026-10-01");
        assert_eq!(date_key("1790812800"), "2026-10-01");
        assert_eq!(date_key("soon"), "soon");
    }
}
