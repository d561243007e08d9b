//! `billing.csv`: invoice lines from the report files of the ok reports, by the vendor's rule.
//!
//! One line per period × report tenant × row tenant × offering item (× infra backend, × day for
//! day-by-day reports), summing the file's rows of that key, in plan order and then in the order
//! each key first appears in the file. Lines come from the `csv_v2_0` file of a report (the
//! layout the vendor's own billing integration reads), else from its `json_v2_0` file; with both,
//! the JSON file is a cross-check and a disagreement is a warning. Files are read through
//! [`crate::content`], the one reader of report files, and never changed.
//!
//! A line's billable value follows the billing rule (see [`crate::content::lines`]). Summing
//! `billable_value` per tenant and item never double counts: the vendor's integration sums every
//! row per tenant, so rows are each tenant's own usage, not aggregates of others.
//!
//! Disaster Recovery compute points arrive in point-seconds in both formats: a line's
//! `billable_value` is ÷ 3600, rounded to 2 decimals, in `points`. Bytes stay bytes, with the
//! GiB figure beside them.

mod csv_out;
mod invoice;
mod key_hash;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::Path;

use self::csv_out::Records;
use self::invoice::Invoice;
use self::key_hash::{Hashes, key_hash};
pub(crate) use crate::content::lines::POINTS;
use crate::content::lines::{Billable, Line, LinesError, lines_of};
use crate::content::{self, Amount, ContentError, Measure, Measures, spill};
use crate::period::Period;
use crate::report::{BillingMeasure, BillingRule, Format};
use crate::results::{ReportLog, ReportResult, Status};

/// The file's name in the output folder.
pub(crate) const BILLING_CSV: &str = "billing.csv";

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
pub(crate) fn columns() -> Vec<&'static str> {
    KEY_COLUMNS
        .into_iter()
        .chain(Measure::ALL.map(Measure::name))
        .chain(BILLABLE_COLUMNS)
        .collect()
}

/// Invoice rows `summary.md` can show; the rest are counted. billing.csv has them all.
const INVOICE_ROWS_KEPT: usize = 5000;
/// Examples of disagreeing lines named in one warning.
const EXAMPLES: usize = 2;

/// What writing `billing.csv` found, besides the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Billing {
    pub(crate) summary: BillingSummary,
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
    /// Per period and SKU (offering item, with its infra backend, where there is no SKU), over
    /// the tenants, sorted; a tenant that appears in two reports counts once.
    pub skus: Vec<SkuTotal>,
    /// SKUs beyond what is kept for the summary.
    pub skus_left_out: usize,
    /// Lines of a tenant, item and period already billed by an earlier report of the run,
    /// left out of `invoice` (not of billing.csv).
    pub repeated_lines: u64,
    /// Lines of day-by-day reports, in billing.csv but not summed in `invoice` and `skus`: a
    /// day's level is not the period's, and a month of daily device counts summed would count
    /// each device once a day. Compute points, used up each day, are summed.
    pub day_lines: u64,
}

/// One tenant's billable value of one SKU in one period, over the reports of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRow {
    /// The period the value belongs to.
    pub period: Period,
    /// The tenant's name, as the job file or discovery gave it.
    pub tenant_name: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// The SKU, as the report names it.
    pub sku: String,
    /// The offering item the SKU's rows belong to.
    pub offering_item: String,
    /// The unit `value` is in.
    pub unit: String,
    /// The summed billable value, as exact decimal text.
    pub value: String,
}

/// One SKU's billable value in one period, over the tenants of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkuTotal {
    /// The period the value belongs to.
    pub period: Period,
    /// The SKU, as the report names it.
    pub sku: String,
    /// The offering item the SKU's rows belong to.
    pub offering_item: String,
    /// The unit `value` is in.
    pub unit: String,
    /// The billable value summed over the tenants, as exact decimal text.
    pub value: String,
    /// How many tenants have the SKU in this period.
    pub tenants: u64,
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

/// Line keys already written for one report file, to say when rows of one key are not next to
/// each other (each such run is a line of its own). Exact for the first [`KEYS_CHECKED`] lines.
#[derive(Default)]
struct KeysSeen {
    keys: Hashes,
    /// Two bits a key, as a Bloom filter: most lines are of a new key, and the filter (128 KiB)
    /// says so without a look into `keys` (over 1 MiB, a cache miss a line).
    filter: Vec<u64>,
}

/// Lines of one file whose keys are remembered: ~2 MiB.
const KEYS_CHECKED: usize = 100_000;
const FILTER_BITS: u32 = 20;
/// Keys before the filter is worth its 128 KiB.
const FILTER_FROM: usize = 4096;

impl KeysSeen {
    fn repeated(&mut self, line: &Line) -> bool {
        let hash = key_hash((
            &line.tenant_id,
            &line.offering_item,
            &line.infra_backend,
            &line.day,
        ));
        if self.filter.is_empty() {
            if self.keys.len() < FILTER_FROM {
                return !self.keys.insert(hash);
            }
            self.filter = vec![0; 1 << (FILTER_BITS - 6)];
            for &key in &self.keys {
                for (word, bit) in filter_bits(key) {
                    self.filter[word] |= bit;
                }
            }
        }
        let bits = filter_bits(hash);
        let maybe = bits.iter().all(|&(word, bit)| self.filter[word] & bit != 0);
        if maybe && self.keys.contains(&hash) {
            return true;
        }
        if self.keys.len() < KEYS_CHECKED {
            self.keys.insert(hash);
            for (word, bit) in bits {
                self.filter[word] |= bit;
            }
        }
        false
    }
}

/// The filter's two bits of a key: its word and the bit in it.
fn filter_bits(hash: u64) -> [(usize, u64); 2] {
    [hash, hash >> FILTER_BITS].map(|h| {
        let bit = (h & ((1 << FILTER_BITS) - 1)) as usize;
        (bit / 64, 1u64 << (bit % 64))
    })
}

/// The run's tenant names by tenant id (in lower case), for rows that carry none: the ids and
/// names end to end in one text, and a sorted index of the ids' hashes. A map of two `String`s
/// held ~160 bytes a report through `billing.csv` (1.6 MB for 10 000 reports, more than the
/// file's own buffers); this holds the text and 24 bytes.
#[derive(Default)]
struct Names {
    text: String,
    /// The id's hash, where the id starts, where it ends and the name starts, where the name
    /// ends; sorted by hash, then in the order added.
    index: Vec<(u64, u32, u32, u32)>,
}

/// Reports up to which [`Names::get_any_case`] looks through every id.
const FEW_NAMES: usize = 8;

impl Names {
    fn with_capacity(reports: usize) -> Self {
        Names {
            text: String::new(),
            index: Vec::with_capacity(reports),
        }
    }

    fn add(&mut self, id: &str, name: &str) {
        // Past 4 GiB of ids and names (no job is that large) a name is not found: the row's
        // name stays empty rather than wrong.
        let at = |text: &String| u32::try_from(text.len()).unwrap_or(u32::MAX);
        let start = at(&self.text);
        self.text.push_str(id);
        let middle = at(&self.text);
        self.text.push_str(name);
        self.index
            .push((key_hash(id), start, middle, at(&self.text)));
    }

    fn sort(&mut self) {
        // Stable: of two reports of one tenant, the later one's name is found, as when a map
        // took each in turn.
        self.index.sort_by_key(|entry| entry.0);
        self.text.shrink_to_fit();
        self.index.shrink_to_fit();
    }

    /// The name of `id` in any case, by the last report of that id; `lower` is reused text.
    fn get_any_case<'a>(&'a self, id: &str, lower: &mut String) -> Option<&'a str> {
        // A run of a few reports (the usual case) is looked through without making the id
        // lower case or hashing it: this runs for each line without a name, millions in a
        // large file. Ids are stored in lower case, so ignoring case finds what `get` finds.
        if self.index.len() <= FEW_NAMES {
            return self
                .index
                .iter()
                .rev()
                .find(|entry| {
                    self.text
                        .get(entry.1 as usize..entry.2 as usize)
                        .is_some_and(|known| known.eq_ignore_ascii_case(id))
                })
                .and_then(|entry| self.text.get(entry.2 as usize..entry.3 as usize));
        }
        lower.clear();
        lower.push_str(id);
        lower.make_ascii_lowercase();
        self.get(lower)
    }

    /// The name of `id` (in lower case), by the last report of that id.
    fn get(&self, id: &str) -> Option<&str> {
        let hash = key_hash(id);
        let end = self.index.partition_point(|entry| entry.0 <= hash);
        self.index[..end]
            .iter()
            .rev()
            .take_while(|entry| entry.0 == hash)
            .find(|entry| self.text.get(entry.1 as usize..entry.2 as usize) == Some(id))
            .and_then(|entry| self.text.get(entry.2 as usize..entry.3 as usize))
    }
}

/// Writes `billing.csv` to `out` from the files (under `dir`) of the ok reports of `reports`,
/// in their order, by `rule`. Problems with a report's files become warnings for it; only a
/// failure to write to `out` is an error. Memory follows one line of one file, plus what the
/// summary keeps (capped), plus, when the run has several reports (to count a tenant that two
/// reports cover once in the summary), a few dozen bytes per tenant (see `invoice::Billed`).
pub fn write(
    dir: &Path,
    reports: &ReportLog,
    rule: &BillingRule,
    out: impl Write,
) -> io::Result<Billing> {
    let mut csv = Records::new(out);
    csv.record(columns())?;
    let mut billing = Billing::default();
    // Rows often lack tenant names (csv_v2_0 has no name column): the run's own names fill in.
    let mut names = Names::with_capacity(reports.len());
    for report in reports.iter() {
        let report = report?;
        names.add(&report.tenant_id.to_ascii_lowercase(), &report.tenant_name);
    }
    names.sort();
    let mut invoice = Invoice::new(reports.len() > 1);
    // Text reused line to line: files of millions of lines would otherwise cost a dozen
    // allocations a line.
    let mut billable = Billable::default();
    let mut lower = String::new();
    let mut cells = String::new();
    // The last source and its encoded field: lines come a file at a time.
    let mut source_cell = (String::new(), Vec::new());
    // The last line's measures and their cells, each with its comma.
    let mut measure_cells: (Option<Measures>, String) = (None, String::new());
    for (position, report) in reports.iter().enumerate() {
        let report = &report?;
        let ok = report.status == Status::Ok;
        let mut warnings = Vec::new();
        let mut conflicts = Vec::new();
        let mut keys = KeysSeen::default();
        let mut points: Option<Amount> = None;
        // The fields every line of the report starts with, each with its comma.
        let mut head = Vec::new();
        for text in [
            report.period.start.to_string().as_str(),
            &report.period.end.to_string(),
            &report.tenant_id,
            &report.tenant_name,
        ] {
            csv_out::encode(&mut head, text);
            head.push(b',');
        }
        let mut sink = |line: &Line, source: &str| -> io::Result<()> {
            line.billable_into(&mut billable);
            if line.is_compute_points() {
                points = Some(
                    points
                        .unwrap_or(Amount::ZERO)
                        .saturating_add(billable.value),
                );
            }
            if !ok {
                return Ok(());
            }
            let tenant_name = if line.tenant_name.is_empty() {
                names
                    .get_any_case(&line.tenant_id, &mut lower)
                    .unwrap_or("")
            } else {
                &line.tenant_name
            };
            // The report's own fields, the numbers and the source are encoded once, not
            // scanned for quotes on each of millions of lines; the row's texts are.
            csv.raw(&head);
            for text in [&line.tenant_id, &line.tenant_kind] {
                csv.field(text);
                csv.comma();
            }
            csv.field(tenant_name);
            csv.comma();
            for text in [
                &line.offering_item,
                &line.infra_backend,
                &line.edition,
                &line.sku,
                &line.day,
            ] {
                csv.field(text);
                csv.comma();
            }
            // Numbers (digits, `-` and `.`) and a measure's name never need quotes.
            cells.clear();
            content::push_digits(&mut cells, line.rows, 1);
            cells.push(',');
            // Neighbouring lines mostly have the same measures (a seat, zeros): their text
            // is made again only when they change, not a dozen numbers for every line.
            if measure_cells.0 != Some(line.measures) {
                measure_cells.0 = Some(line.measures);
                let text = &mut measure_cells.1;
                text.clear();
                for measure in Measure::ALL {
                    if let Some(amount) = line.measures.get(measure) {
                        amount.push_to(text);
                    }
                    text.push(',');
                }
            }
            cells.push_str(&measure_cells.1);
            for text in [line.billable_measure, &billable.text] {
                cells.push_str(text);
                cells.push(',');
            }
            debug_assert!(!cells.contains(['"', '\n', '\r']), "{cells}");
            csv.raw(cells.as_bytes());
            csv.field(&billable.unit);
            csv.comma();
            csv.raw(billable.gib.as_deref().unwrap_or("").as_bytes());
            csv.comma();
            if source_cell.0 != source {
                source_cell.0.clear();
                source_cell.0.push_str(source);
                source_cell.1.clear();
                csv_out::encode(&mut source_cell.1, source);
            }
            csv.raw(&source_cell.1);
            csv.end()?;
            billing.summary.lines += 1;
            invoice.add(report.period, line, tenant_name, &billable);
            if keys.repeated(line) {
                conflicts.push(format!(
                    "{source}: rows of {}{} for {} are not next to each other, so billing.csv has more than one line for them (their sum is unaffected)",
                    line.offering_item,
                    if line.infra_backend.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", line.infra_backend)
                    },
                    line.tenant_id
                ));
            }
            for conflict in &line.conflicts {
                conflicts.push(format!(
                    "{source}: rows of {} for {} disagree: {conflict}; billing.csv keeps the first",
                    line.offering_item, line.tenant_id
                ));
            }
            Ok(())
        };
        let read = report_lines(dir, report, rule, &mut sink, &mut warnings)?;
        warnings.append(&mut conflicts);
        if let Some(points) = points {
            billing
                .dr_compute_points
                .push((position, points.as_f64() + 0.0));
        }
        if !ok {
            continue;
        }
        if read {
            billing.summary.reports += 1;
        } else if !report.files.iter().any(|f| content::readable(f.format)) {
            billing.summary.reports_without_source += 1;
        }
        billing
            .warnings
            .extend(warnings.into_iter().map(|w| (position, w)));
    }
    csv.flush()?;
    // Let go before the summary's views become lists: the end of a large run is its peak.
    drop(csv);
    drop(names);
    invoice.finish(&mut billing.summary);
    Ok(billing)
}

/// Hands the lines of one report to `sink` with the file they came from: from its `csv_v2_0`
/// file, else its `json_v2_0` file; with both, the JSON file is read too and compared. Whether
/// any file could be read. Problems with the files are warnings; only `sink`'s failure is an
/// error.
fn report_lines(
    dir: &Path,
    report: &ReportResult,
    rule: &BillingRule,
    sink: &mut dyn FnMut(&Line, &str) -> io::Result<()>,
    warnings: &mut Vec<String>,
) -> io::Result<bool> {
    let file_of = |format: Format| report.files.iter().find(|f| f.format == format);
    let open =
        |path: &str| crate::disk::paths::open_regular_inside(dir, path).map_err(ContentError::Read);
    let (csv, json) = (file_of(Format::CsvV2), file_of(Format::JsonV2));
    // A digest is only ever compared with the other format's.
    let compared = csv.is_some() && json.is_some();
    let mut source: Option<(&str, Digest)> = None;
    for file in [csv, json].into_iter().flatten() {
        let path = file.path.as_str();
        let mut digest = Digest::default();
        let mut written = 0u64;
        let mut on_line = |line: &Line| {
            if compared {
                digest.add(rule, line);
            }
            // Once one file gave the lines, the other is only compared.
            if source.is_none() {
                written += 1;
                sink(line, path)?;
            }
            Ok(())
        };
        // The lines the run's own read of the file kept, if it did; else the file itself.
        let read = match spill::replay(&file.sha256, file.format, rule, &mut on_line) {
            Some(replayed) => replayed,
            None => open(path)
                .map_err(LinesError::Content)
                .and_then(|reader| lines_of(file.format, reader, rule, &mut on_line).map(|_| ())),
        };
        match read {
            Ok(_) => match &source {
                None => source = Some((path, digest)),
                Some((first, theirs)) => warnings.extend(theirs.compare(first, &digest, path)),
            },
            Err(LinesError::Write(e)) => return Err(e),
            Err(LinesError::Content(e)) if written > 0 => {
                warnings.push(format!(
                    "billing.csv holds only the first {written} line(s) of {path}: {e}"
                ));
                source = Some((path, Digest::default()));
                // The rest of the lines are not known: nothing to compare.
                break;
            }
            Err(LinesError::Content(e)) => match &source {
                None => warnings.push(format!(
                    "billing.csv has no lines from {path}: {e}{}",
                    if file.format == Format::CsvV2 && json.is_some() {
                        "; they come from the json_v2_0 file"
                    } else {
                        ""
                    }
                )),
                Some(_) => warnings.push(format!(
                    "the csv_v2_0 and json_v2_0 files were not compared: {path}: {e}"
                )),
            },
        }
    }
    Ok(source.is_some())
}

/// What the comparison of two formats of one report needs of a file, in bounded memory: its
/// lines, the figure both formats carry summed per item (and backend), and an order-free
/// digest of every line's key and figure.
#[derive(Default)]
struct Digest {
    lines: u64,
    /// Days compared only when both files have them (a JSON usage object names its range's
    /// start even in a summary report, whose CSV rows have no day).
    with_days: bool,
    by_line_with_day: u64,
    by_line: u64,
    per_item: BTreeMap<(String, String), Option<Amount>>,
    items_left_out: bool,
}

/// Items whose sums a comparison keeps; a file with more is compared by its digest alone.
const ITEMS_COMPARED: usize = 10_000;

impl Digest {
    fn add(&mut self, rule: &BillingRule, line: &Line) {
        let figure = comparable(rule, line);
        let tenant = line.tenant_id.to_ascii_lowercase();
        let hash = |day: &str| {
            key_hash((
                &tenant,
                &line.offering_item,
                &line.infra_backend,
                day,
                figure,
            ))
        };
        self.lines += 1;
        self.with_days |= !line.day.is_empty();
        // Sums of hashes: the same lines in any order give the same digest.
        self.by_line_with_day = self
            .by_line_with_day
            .wrapping_add(hash(&day_key(&line.day)));
        self.by_line = self.by_line.wrapping_add(hash(""));
        let key = (line.offering_item.clone(), line.infra_backend.clone());
        if let Some(sum) = self.per_item.get_mut(&key) {
            *sum = match (*sum, figure) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                (a, b) => a.or(b),
            };
        } else if self.per_item.len() < ITEMS_COMPARED {
            self.per_item.insert(key, figure);
        } else {
            self.items_left_out = true;
        }
    }

    /// A warning when `other` (read from `other_path`) disagrees with this file (`path`).
    fn compare(&self, path: &str, other: &Digest, other_path: &str) -> Option<String> {
        let (mine, theirs) = if self.with_days && other.with_days {
            (self.by_line_with_day, other.by_line_with_day)
        } else {
            (self.by_line, other.by_line)
        };
        if self.lines == other.lines && mine == theirs {
            return None;
        }
        let shown = |a: Option<Amount>| a.map_or_else(|| "nothing".to_owned(), |a| a.to_string());
        let mut examples: Vec<String> = Vec::new();
        let keys: BTreeSet<&(String, String)> =
            self.per_item.keys().chain(other.per_item.keys()).collect();
        for key in keys {
            let (a, b) = (
                self.per_item.get(key).copied().flatten(),
                other.per_item.get(key).copied().flatten(),
            );
            let (in_a, in_b) = (
                self.per_item.contains_key(key),
                other.per_item.contains_key(key),
            );
            if in_a == in_b && a == b {
                continue;
            }
            let item = if key.1.is_empty() {
                key.0.clone()
            } else {
                format!("{} ({})", key.0, key.1)
            };
            examples.push(match (in_a, in_b) {
                (true, false) => format!("{item} only in {path}"),
                (false, true) => format!("{item} only in {other_path}"),
                _ => format!(
                    "{item}: {} in {path}, {} in {other_path}",
                    shown(a),
                    shown(b)
                ),
            });
            if examples.len() == EXAMPLES {
                break;
            }
        }
        if examples.is_empty() {
            examples.push(
                "the same totals per item, but not the same tenants or values line by line".into(),
            );
        }
        Some(format!(
            "the csv_v2_0 and json_v2_0 files disagree ({} line(s) in {path}, {} in {other_path}): {}; billing.csv follows {path}",
            self.lines,
            other.lines,
            examples.join("; ")
        ))
    }
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

#[cfg(test)]
mod one_pass_tests;
#[cfg(test)]
mod tests;
