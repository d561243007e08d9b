//! Invoice lines: a report file's usage rows summed per tenant × offering item (× infra
//! backend, × day), each with its billable value by the billing rule. The content check and
//! `billing.csv` both read files through [`lines_of`], so a file the check passes gives its lines.
//!
//! The billable value of a row is `usage.<measure>.<scope>` (see [`BillingRule`]): by default
//! scope `total` for a customer's row and `production` for any other, measure `delta` for the
//! compute-point items and `absolute` for the rest — the rule of `MetricsFetcher.php` in the
//! vendor's WHMCS integration. A `json_v2_0` usage object has no scopes: `absolute` reads its
//! `absolute_value` (else `value`), `delta` and `effective` its `value`.

use std::io;

use super::{Amount, ContentError, Measure, Measures, UsageRow, read_rows_at_most};
use crate::report::{BillingMeasure, BillingRule, BillingScope, Format};

/// Unit of converted compute points.
pub(crate) const POINTS: &str = "points";
const SECONDS_PER_POINT: i128 = 3600;
const GIB: i128 = 1 << 30;
/// Disagreeing rows of one line named in its warnings.
const EXAMPLES: usize = 2;

/// One invoice line of one report file: its key, what it repeats, and the sums of its rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    pub(crate) tenant_id: String,
    pub(crate) tenant_kind: String,
    pub(crate) tenant_name: String,
    pub(crate) offering_item: String,
    pub(crate) infra_backend: String,
    pub(crate) edition: String,
    pub(crate) sku: String,
    pub(crate) day: String,
    pub(crate) unit: String,
    /// `usage_name` of the first row (JSON), which helps recognise compute points.
    pub(crate) usage_name: String,
    /// How many rows of the file were summed into this line.
    pub rows: u64,
    /// Sums of each measure over the line's rows; `None` where no row had it.
    pub(crate) measures: Measures,
    /// The billable measure's name, as the first row chose it.
    pub(crate) billable_measure: &'static str,
    /// Sum over the rows of each row's billable value, in the file's unit.
    pub(crate) billable_raw: Amount,
    /// Rows that disagreed on tenant kind or SKU, for a warning.
    pub(crate) conflicts: Vec<String>,
    /// Rows without a SKU (none in the file's SKU column, or no such column).
    pub rows_without_sku: u64,
}

/// The billable value of a line as `billing.csv` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Billable {
    pub(crate) value: Amount,
    /// Digits shown: 2 for compute points, else as exact as the sum.
    pub(crate) text: String,
    pub(crate) unit: String,
    pub(crate) gib: Option<String>,
}

impl Line {
    /// Makes this the line of `row`'s key, with no rows yet.
    fn start(&mut self, row: &UsageRow<'_>, billable_measure: &'static str) {
        let set = |field: &mut String, text: &str| {
            field.clear();
            field.push_str(text);
        };
        set(&mut self.tenant_id, row.tenant_id);
        set(&mut self.tenant_kind, row.tenant_kind);
        set(&mut self.tenant_name, row.tenant_name);
        set(&mut self.offering_item, row.offering_item);
        set(&mut self.infra_backend, row.infra_backend);
        set(&mut self.edition, row.edition);
        set(&mut self.sku, row.sku.unwrap_or(""));
        set(&mut self.day, row.day);
        set(&mut self.unit, row.unit);
        set(&mut self.usage_name, row.usage_name);
        self.rows = 0;
        self.measures = Measures::default();
        self.billable_measure = billable_measure;
        self.billable_raw = Amount::ZERO;
        self.conflicts.clear();
        self.rows_without_sku = 0;
    }

    /// Whether this line counts Disaster Recovery compute points in point-seconds: a
    /// compute-point item (by name or usage name), unit seconds or unsaid.
    pub(crate) fn is_compute_points(&self) -> bool {
        // Compared in place, ignoring ASCII case: this runs for every line of billing.csv.
        const SUFFIX: &[u8] = b"_compute_points";
        let item = self.offering_item.as_bytes();
        let points = item.eq_ignore_ascii_case(b"compute_points")
            || item.len() >= SUFFIX.len()
                && item[item.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
            || self.usage_name.eq_ignore_ascii_case("compute_points");
        points && (self.unit.is_empty() || self.unit.eq_ignore_ascii_case("seconds"))
    }

    /// The unit of the file's values: as the file says, else `bytes` for storage items (the
    /// vendor's reports count storage in bytes; `csv_v2_0` has no unit column).
    pub(crate) fn file_unit(&self) -> &str {
        if !self.unit.is_empty() {
            &self.unit
        } else if self.is_compute_points() {
            "seconds"
        } else if self
            .offering_item
            .as_bytes()
            .windows(7)
            .any(|w| w.eq_ignore_ascii_case(b"storage"))
        {
            "bytes"
        } else {
            ""
        }
    }

    /// The line's billable value, as `billable.csv` writes it.
    pub fn billable(&self) -> Billable {
        let mut billable = Billable::default();
        self.billable_into(&mut billable);
        billable
    }

    /// [`Line::billable`] into `out`, reusing its text: once for every line of billing.csv.
    pub(crate) fn billable_into(&self, out: &mut Billable) {
        out.text.clear();
        out.unit.clear();
        if self.is_compute_points() {
            out.value = self.billable_raw.div_round(SECONDS_PER_POINT, 2);
            out.text.push_str(&out.value.fixed(2));
            out.unit.push_str(POINTS);
            out.gib = None;
            return;
        }
        let unit = self.file_unit();
        let bytes = unit.eq_ignore_ascii_case("bytes") || unit.eq_ignore_ascii_case("byte");
        out.value = self.billable_raw;
        self.billable_raw.push_to(&mut out.text);
        out.unit.push_str(unit);
        out.gib = bytes.then(|| self.billable_raw.div_round(GIB, 4).fixed(4));
    }
}

/// The billable measure of `row` by `rule`, and its value; `None` when the row lacks it.
pub(crate) fn billable_of(rule: &BillingRule, row: &UsageRow<'_>) -> Option<(Measure, Amount)> {
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

/// Why a row has no billable value.
fn no_billable(rule: &BillingRule, row: &UsageRow<'_>) -> ContentError {
    ContentError::Data {
        at: row.place(),
        field: format!("`{}`", row.offering_item),
        detail: format!(
            "no billable value: the row has none of the measures the billing rule (scope {}, measure {}) reads",
            rule.scope, rule.measure
        ),
    }
}

/// Why the lines of a file stopped.
#[derive(Debug)]
pub(crate) enum LinesError {
    /// The file: its layout, a row, or reading it.
    Content(ContentError),
    /// Handing a line on (writing `billing.csv`): not the file's fault.
    Write(io::Error),
}

impl std::fmt::Display for LinesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinesError::Content(e) => write!(f, "{e}"),
            LinesError::Write(e) => write!(f, "{e}"),
        }
    }
}

/// Turns the invoice lines of one report file over to `on_line`, in file order; returns how
/// many. Rows of one key that follow each other make one line; memory holds one line, however
/// large the file. (The vendor's files have one row per tenant × item × backend, so every key
/// is one line; rows of a key that are not next to each other would give one line each, and
/// the sums per key stay the same.)
pub(crate) fn lines_of(
    format: Format,
    reader: impl io::Read,
    rule: &BillingRule,
    on_line: &mut dyn FnMut(&Line) -> io::Result<()>,
) -> Result<LinesRead, LinesError> {
    lines_of_at_most(format, reader, None, rule, on_line)
}

/// [`lines_of`] from a reader known to give at most `at_most` bytes, read with buffers no
/// larger than that needs (see [`super::read_rows_at_most`]).
pub(crate) fn lines_of_at_most(
    format: Format,
    reader: impl io::Read,
    at_most: Option<u64>,
    rule: &BillingRule,
    on_line: &mut dyn FnMut(&Line) -> io::Result<()>,
) -> Result<LinesRead, LinesError> {
    let mut current: Option<Line> = None;
    let mut lines = 0u64;
    let mut stopped: Option<LinesError> = None;
    let read = read_rows_at_most(format, reader, at_most, &mut |row| {
        let mut stop = |error: LinesError| {
            stopped = Some(error);
            Err(io::Error::other("stopped"))
        };
        let Some((measure, amount)) = billable_of(rule, row) else {
            return stop(LinesError::Content(no_billable(rule, row)));
        };
        let refuse = |field: &str, detail: String| {
            LinesError::Content(ContentError::Data {
                at: row.place(),
                field: format!("`{field}`"),
                detail,
            })
        };
        let same = current.as_ref().is_some_and(|line| {
            line.tenant_id == row.tenant_id
                && line.offering_item == row.offering_item
                && line.infra_backend == row.infra_backend
                && line.day == row.day
        });
        if !same {
            if let Some(done) = &current {
                lines += 1;
                if let Err(e) = on_line(done) {
                    return stop(LinesError::Write(e));
                }
            }
            // The finished line's buffers are reused: files of millions of lines would
            // otherwise cost ten allocations a line.
            let line = current.get_or_insert_with(Line::default);
            line.start(row, measure.name());
        }
        let Some(line) = current.as_mut() else {
            return Ok(());
        };
        // Rows of one line billed on different measures (a tenant that is a customer in one row
        // and a partner in another, or a usage object with `absolute_value` beside one with only
        // `value`) would sum figures that mean different things under one measure's name.
        if measure.name() != line.billable_measure {
            let error = refuse(
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
            );
            return stop(error);
        }
        let overflow = |line: &Line| {
            refuse(
                measure.name(),
                format!(
                    "the sum of the rows of {} of {} does not fit an exact number",
                    line.offering_item, line.tenant_id
                ),
            )
        };
        line.rows += 1;
        match line.billable_raw.checked_add(amount) {
            Some(sum) => line.billable_raw = sum,
            None => {
                let error = overflow(line);
                return stop(error);
            }
        }
        for (measure, amount) in row.measures.present() {
            let sum = line.measures.get(measure).unwrap_or(Amount::ZERO);
            match sum.checked_add(amount) {
                Some(sum) => line.measures.set(measure, Some(sum)),
                None => {
                    let error = overflow(line);
                    return stop(error);
                }
            }
        }
        if row.tenant_kind != line.tenant_kind && line.conflicts.len() < EXAMPLES {
            line.conflicts.push(format!(
                "tenant kind {} and {} ({})",
                or_none(&line.tenant_kind),
                or_none(row.tenant_kind),
                row.place()
            ));
        }
        let sku = row.sku.unwrap_or("");
        if sku.is_empty() {
            line.rows_without_sku += 1;
        }
        if line.sku.is_empty() {
            line.sku = sku.to_owned();
        } else if !sku.is_empty() && sku != line.sku && line.conflicts.len() < EXAMPLES {
            line.conflicts
                .push(format!("SKU {} and {sku} ({})", line.sku, row.place()));
        }
        Ok(())
    });
    if let Some(stopped) = stopped {
        return Err(stopped);
    }
    let layout = read.map_err(LinesError::Content)?;
    if let Some(done) = current {
        lines += 1;
        on_line(&done).map_err(LinesError::Write)?;
    }
    Ok(LinesRead { lines, layout })
}

/// What [`lines_of`] read.
#[derive(Debug)]
pub struct LinesRead {
    /// How many lines the file had.
    pub lines: u64,
    pub(crate) layout: super::Layout,
}

/// A text field for a message: "none" when empty.
fn or_none(text: &str) -> &str {
    if text.is_empty() { "none" } else { text }
}
