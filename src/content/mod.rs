//! The one reader of report files: a downloaded `csv_v2_0` or `json_v2_0` file becomes usage
//! rows. The SKU and layout checks (while a file downloads), the Disaster Recovery compute
//! points, `billing.csv` and `summary.md` all read files through [`read_rows`]; what the check
//! read is kept for `billing.csv` ([`spill`]), so a file downloaded by the run is read once.
//!
//! The layouts follow the vendor's own reader of usage reports (see the README's list of
//! assumptions): `csv_v2_0` columns are found by name in any order (`tenant.id`, `tenant.kind`,
//! `name`, nine `usage.<measure>.<scope>` columns, optional `edition`, `infra.*` and a SKU
//! column), and `json_v2_0` rows are the objects under `tenants` that carry the keys of the
//! documented tenant service usage object, at any depth. A file that fits neither is an error
//! naming what it has, never an empty success.

mod amount;
mod columns;
mod csv_rows;
mod json_rows;
mod limit;
pub mod lines;
pub(crate) mod spill;

use std::io::{self, BufRead, BufReader, Read};

pub(crate) use amount::push_digits;
pub use amount::{Amount, NotAnAmount};
pub use columns::{EXPECTED_CSV_COLUMNS, is_sku_name};

use crate::report::Format;

/// A number a usage row carries: the nine of `csv_v2_0` (absolute = state at the period's end,
/// delta = change over the period, effective; each for production, trial and their total), and
/// the two of the documented `json_v2_0` usage object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Measure {
    AbsoluteProduction,
    AbsoluteTotal,
    AbsoluteTrial,
    DeltaProduction,
    DeltaTotal,
    DeltaTrial,
    EffectiveProduction,
    EffectiveTotal,
    EffectiveTrial,
    /// `value` of a json_v2_0 usage object: the usage in the report's range.
    Value,
    /// `absolute_value` of a json_v2_0 usage object: the accumulated usage.
    AbsoluteValue,
}

impl Measure {
    pub(crate) const ALL: [Measure; 11] = [
        Measure::AbsoluteProduction,
        Measure::AbsoluteTotal,
        Measure::AbsoluteTrial,
        Measure::DeltaProduction,
        Measure::DeltaTotal,
        Measure::DeltaTrial,
        Measure::EffectiveProduction,
        Measure::EffectiveTotal,
        Measure::EffectiveTrial,
        Measure::Value,
        Measure::AbsoluteValue,
    ];

    /// The column (csv_v2_0) or key (json_v2_0) it is read from.
    pub fn name(self) -> &'static str {
        match self {
            Measure::AbsoluteProduction => "usage.absolute.production",
            Measure::AbsoluteTotal => "usage.absolute.total",
            Measure::AbsoluteTrial => "usage.absolute.trial",
            Measure::DeltaProduction => "usage.delta.production",
            Measure::DeltaTotal => "usage.delta.total",
            Measure::DeltaTrial => "usage.delta.trial",
            Measure::EffectiveProduction => "usage.effective.production",
            Measure::EffectiveTotal => "usage.effective.total",
            Measure::EffectiveTrial => "usage.effective.trial",
            Measure::Value => "value",
            Measure::AbsoluteValue => "absolute_value",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The measures of one row; `None` where the file has no such column or key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Measures([Option<Amount>; 11]);

impl Measures {
    pub(crate) fn get(&self, measure: Measure) -> Option<Amount> {
        self.0[measure.index()]
    }

    pub(crate) fn set(&mut self, measure: Measure, amount: Option<Amount>) {
        self.0[measure.index()] = amount;
    }

    /// Those the row has, in [`Measure::ALL`] order.
    pub(crate) fn present(&self) -> impl Iterator<Item = (Measure, Amount)> + '_ {
        Measure::ALL
            .into_iter()
            .filter_map(|m| self.get(m).map(|a| (m, a)))
    }
}

/// One usage row, borrowed from the reader: a CSV row costs no allocation. Text fields the file
/// does not have are "".
#[derive(Clone, Copy, Debug)]
pub(crate) struct UsageRow<'a> {
    /// Where the row is: its line in a CSV file, its position (1-based) among the usage objects
    /// of a JSON file.
    pub(crate) at: u64,
    /// What `at` counts: "line" or "usage object".
    pub(crate) at_kind: &'static str,
    pub(crate) tenant_id: &'a str,
    /// `customer`, `partner`, `folder`, `unit`… as the file says.
    pub(crate) tenant_kind: &'a str,
    pub(crate) tenant_name: &'a str,
    /// The offering item's name (`name` in both layouts), e.g. `pw_base_storage`.
    pub(crate) offering_item: &'a str,
    /// `usage_name` of a JSON usage object (the item without its edition prefix).
    pub(crate) usage_name: &'a str,
    pub(crate) edition: &'a str,
    pub(crate) infra_backend: &'a str,
    /// `None` when the file has no SKU column (or the JSON row no SKU key).
    pub(crate) sku: Option<&'a str>,
    /// The measurement unit, when the file says it (`measurement_unit` in JSON).
    pub(crate) unit: &'a str,
    /// The day a row of a day-by-day report is for, when the file says it.
    pub(crate) day: &'a str,
    pub(crate) measures: Measures,
}

impl UsageRow<'_> {
    /// Where the row is, for a message: "line 12" (CSV) or "usage object 3" (JSON).
    pub(crate) fn place(&self) -> String {
        format!("{} {}", self.at_kind, self.at)
    }
}

/// What the reader learnt of a file's layout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The SKU column (or JSON key) as the file names it, when it has one.
    pub(crate) sku_column: Option<String>,
    pub rows: u64,
}

/// Why a file gave no rows, or not all of them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContentError {
    #[error(
        "the body is an HTML page{}, not a report: a login page, proxy or captive portal answered instead of the API",
        title.as_ref().map(|t| format!(" (\"{t}\")")).unwrap_or_default()
    )]
    Html { title: Option<String> },
    #[error(
        "unrecognised layout: {what}; found {}; expected {}",
        list(found),
        list(expected)
    )]
    Layout {
        what: &'static str,
        found: Vec<String>,
        expected: Vec<String>,
    },
    #[error("{at}, {field}: {detail}")]
    Data {
        /// "line 12" or "usage object 3".
        at: String,
        /// The column or key.
        field: String,
        detail: String,
    },
    #[error(
        "the body is gzip-compressed bytes that were not decoded (it starts with 1f 8b), not a report"
    )]
    Compressed,
    #[error("{0}")]
    Syntax(String),
    /// A line, string or number too long to be a report's.
    #[error("{0}")]
    TooLong(String),
    #[error("cannot read it: {0}")]
    Read(#[source] io::Error),
    /// The row callback failed (writing `billing.csv`, say): not the file's fault.
    #[error("{0}")]
    Sink(#[source] io::Error),
    /// A problem found when the file was read earlier in the run (while it downloaded), in the
    /// words it had then: replayed from [`spill`] rather than found again.
    #[error("{0}")]
    Recorded(String),
}

/// At most this many names in one message: a file with a thousand columns says so briefly.
const NAMES_SHOWN: usize = 40;

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "nothing".to_owned();
    }
    let mut text = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| format!("`{}`", crate::api::one_line(n, 80)))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    text
}

/// Whether the format is one this module reads; the legacy formats (`csv`, `html`, `json_v1`)
/// carry no documented layout and are kept as they are.
pub(crate) fn readable(format: Format) -> bool {
    matches!(format, Format::CsvV2 | Format::JsonV2)
}

/// Bytes read at a time.
const READ_BUFFER: usize = 256 * 1024;
/// The least read buffer, however small the file.
const LEAST_READ_BUFFER: usize = 4 * 1024;

/// The read buffer for a file of at most `at_most` bytes, when that is known: one byte more
/// than the file, up to [`READ_BUFFER`]. A read into it then returns what one into the full
/// buffer would, so the first read still holds the whole start of the file (an HTML page's
/// title is looked for in the first read alone). A run checks hundreds of small files at once,
/// each with this buffer and csv's own as large: at 256 KiB each they were a large part of a
/// run's memory (`BENCHMARKS.md`, the scale case, ninth session).
fn read_buffer(at_most: Option<u64>) -> usize {
    at_most.map_or(READ_BUFFER, |bytes| {
        usize::try_from(bytes.saturating_add(1))
            .unwrap_or(READ_BUFFER)
            .clamp(LEAST_READ_BUFFER, READ_BUFFER)
    })
}

/// Reads every usage row of a `csv_v2_0` or `json_v2_0` file, in file order, handing each to
/// `on_row`. Stops at the first problem. Memory does not grow with the file: rows are dropped
/// once handed over.
#[cfg(test)]
pub(crate) fn read_rows(
    format: Format,
    reader: impl Read,
    on_row: &mut dyn FnMut(&UsageRow<'_>) -> io::Result<()>,
) -> Result<Layout, ContentError> {
    read_rows_at_most(format, reader, None, on_row)
}

/// Reads every usage row of a `csv_v2_0` or `json_v2_0` file, in file order, handing each to
/// `on_row`, from a reader known to give at most `at_most` bytes (a file received whole):
/// its read buffers are no larger than such a file needs. A reader that gives more is still
/// read to its end.
pub(crate) fn read_rows_at_most(
    format: Format,
    reader: impl Read,
    at_most: Option<u64>,
    on_row: &mut dyn FnMut(&UsageRow<'_>) -> io::Result<()>,
) -> Result<Layout, ContentError> {
    let buffer = read_buffer(at_most);
    let mut reader = BufReader::with_capacity(buffer, reader);
    reject_html(&mut reader)?;
    match format {
        Format::CsvV2 => csv_rows::read(reader, buffer, on_row),
        Format::JsonV2 => json_rows::read(reader, on_row),
        Format::Csv | Format::Html | Format::JsonV1 => Err(ContentError::Syntax(format!(
            "{format} files have no documented layout to read"
        ))),
    }
}

/// A report never starts with `<`; an HTML page answering 200 (a login page, a proxy's error, a
/// captive portal) does. Named here because as CSV it would be "a column we do not know".
fn reject_html(reader: &mut BufReader<impl Read>) -> Result<(), ContentError> {
    let start = loop {
        match reader.fill_buf() {
            Ok(buffer) => break buffer,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ContentError::Read(e)),
        }
    };
    // A proxy that strips `Content-Encoding` leaves the gzip bytes: say so, not "column `\u{1f}…`".
    if start.starts_with(&[0x1f, 0x8b]) {
        return Err(ContentError::Compressed);
    }
    let text = start.strip_prefix(b"\xef\xbb\xbf").unwrap_or(start);
    let first = text.iter().position(|b| !b.is_ascii_whitespace());
    if first.is_none_or(|at| text[at] != b'<') {
        return Ok(());
    }
    Err(ContentError::Html {
        title: html_title(text),
    })
}

fn html_title(text: &[u8]) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let open = memchr::memmem::find(&lower, b"<title")?;
    let start = open + memchr::memchr(b'>', &lower[open..])? + 1;
    let end = start + memchr::memmem::find(&lower[start..], b"</title")?;
    let title = String::from_utf8_lossy(&text[start..end]);
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    // Not cut short here: the run scrubs credentials from what it records, and a credential cut
    // in half would survive that.
    (!title.is_empty()).then(|| crate::api::one_line(&title, 1000))
}

#[cfg(test)]
mod tests;
