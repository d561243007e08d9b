//! What changed between two periods of a trail, read from their `billing.csv` lines only (so it
//! works on any trail, merged shards included): per tenant × offering item, the billable value,
//! and which tenants and items came or went. Rendered into the summary ("Changes since …") and
//! by `acronis-reports compare` as Markdown or CSV.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::content::Amount;
use crate::output::billing::BILLING_CSV;
use crate::period::Period;
use crate::results::RunResult;

/// Large changes are warned about from this share of the earlier value on (job file:
/// `compare.warn_change`).
pub(crate) const DEFAULT_WARN_CHANGE_PERCENT: u32 = 50;
/// Rows of each table in the summary; `compare --format csv` has them all.
const ROWS_SHOWN: usize = 20;
/// Change warnings in one run; the rest are counted in one more.
const WARNINGS_MAX: usize = 20;
const NAME_CHARS: usize = 80;

/// How the job file's `compare` section sets up the comparison with the period before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompareOptions {
    /// A change of at least this many percent of the earlier value becomes a warning; `None`
    /// turns the warnings off.
    pub(crate) warn_change_percent: Option<u32>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            warn_change_percent: Some(DEFAULT_WARN_CHANGE_PERCENT),
        }
    }
}

impl CompareOptions {
    /// The threshold as a share of the earlier value (0.5 for 50 %).
    fn warn_change(&self) -> Option<f64> {
        self.warn_change_percent.map(|p| f64::from(p) / 100.0)
    }
}

/// Why `compare` could not compare two periods.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The folder holds no period of that label with a `billing.csv`.
    #[error(
        "{} has no period {label}: {}",
        dir.display(),
        if available.is_empty() {
            "it holds no period with a billing.csv".to_owned()
        } else {
            format!("it holds {}", available.join(", "))
        }
    )]
    NoPeriod {
        /// The output folder.
        dir: PathBuf,
        /// The period asked for.
        label: String,
        /// The periods it does hold.
        available: Vec<String>,
    },
    /// A `billing.csv` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A line of a `billing.csv` is malformed.
    #[error("{}, line {line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number (1-based).
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A `billing.csv` lacks a column it needs.
    #[error("{} has no column `{column}`; is it a billing.csv of acronis-reports?", path.display())]
    Column {
        /// The file.
        path: PathBuf,
        /// The missing column's name.
        column: &'static str,
    },
}

/// One tenant's billable value of one offering item in a period.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Usage {
    pub(crate) tenant_name: String,
    pub(crate) sku: String,
    pub(crate) unit: String,
    pub(crate) value: Amount,
    /// The report that billed it (its tenant), to attach a warning to.
    pub(crate) report_tenant_id: String,
}

/// A period's billable values, by (tenant id, offering item).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeriodUsage {
    pub(crate) label: String,
    pub(crate) items: BTreeMap<(String, String), Usage>,
    /// Lines of day-by-day reports, left out: a day's value is not the period's, and summing
    /// the days of a gauge (devices, storage) would count it once per day.
    pub(crate) day_lines: usize,
    /// What the period's record says beside billing.csv (nothing when it cannot be read).
    pub(crate) record: PeriodFacts,
}

/// What a period's `manifest.json` adds to its billing.csv: a comparison must not take a report
/// that failed for a tenant that left, nor a change of billing rule for a change of usage.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PeriodFacts {
    /// The billing rule, as the record writes it.
    pub(crate) billing_rule: Option<String>,
    /// Report tenants (id → name) whose report of the period is not ok.
    pub(crate) failed_reports: BTreeMap<String, String>,
}

impl PeriodFacts {
    /// The facts of a period's record before it is on disk (while its delivery is written).
    pub(crate) fn of_record(record: &RunResult) -> io::Result<PeriodFacts> {
        let mut failed_reports = BTreeMap::new();
        for report in record.reports.iter() {
            let report = report?;
            if report.status != crate::results::Status::Ok {
                failed_reports.insert(report.tenant_id, report.tenant_name);
            }
        }
        Ok(PeriodFacts {
            // Through a `Value`, as when read back: the same text for the same rule.
            billing_rule: serde_json::to_value(&record.billing_rule)
                .ok()
                .map(|rule| rule.to_string()),
            failed_reports,
        })
    }

    /// Reads `DIR/<label>/manifest.json`; whatever cannot be read is simply not known.
    fn read(dir: &Path, label: &str) -> PeriodFacts {
        let path = dir.join(label).join(crate::output::MANIFEST);
        let Ok(bytes) = crate::disk::paths::read_regular(&path, MAX_RECORD_BYTES) else {
            return PeriodFacts::default();
        };
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return PeriodFacts::default();
        };
        let text = |value: &serde_json::Value, key: &str| {
            value
                .get(key)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let failed_reports = record
            .get("reports")
            .and_then(serde_json::Value::as_array)
            .map(|reports| {
                reports
                    .iter()
                    .filter(|r| r.get("status").and_then(serde_json::Value::as_str) != Some("ok"))
                    .map(|r| (text(r, "tenant_id"), text(r, "tenant_name")))
                    .filter(|(id, _)| !id.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        PeriodFacts {
            billing_rule: record
                .get("billing_rule")
                .filter(|rule| !rule.is_null())
                .map(serde_json::Value::to_string),
            failed_reports,
        }
    }
}

/// A period record larger than this is not read for a comparison.
const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;

/// The columns of billing.csv that a comparison reads.
const COLUMNS: [&str; 7] = [
    "report_tenant_id",
    "tenant_id",
    "tenant_name",
    "offering_item",
    "sku",
    "billable_value",
    "unit",
];
/// Read when there: a billing.csv of day-by-day lines has it.
const DAY_COLUMN: &str = "day";

/// Reads `DIR/<label>/billing.csv`. A tenant that two reports cover (a partner's report and its
/// customer's own) counts once, from the first report that has it, as in the summary.
pub fn read_usage(dir: &Path, label: &str) -> Result<PeriodUsage, CompareError> {
    let no_period = || CompareError::NoPeriod {
        dir: dir.to_owned(),
        label: label.to_owned(),
        available: periods_of(dir),
    };
    // Only a period folder of the trail itself: not a path elsewhere, not a link out of it.
    if Period::from_label(label).is_none()
        || fs::symlink_metadata(dir.join(label)).is_ok_and(|m| !m.is_dir())
    {
        return Err(no_period());
    }
    let path = dir.join(label).join(BILLING_CSV);
    let file = crate::disk::paths::open_regular(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            CompareError::NoPeriod {
                dir: dir.to_owned(),
                label: label.to_owned(),
                available: periods_of(dir),
            }
        } else {
            CompareError::Read {
                path: path.clone(),
                source,
            }
        }
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(io::BufReader::with_capacity(256 * 1024, file));
    let headers = reader.headers().map_err(|e| line_error(&path, &e))?.clone();
    let mut at = [0usize; COLUMNS.len()];
    for (slot, column) in at.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h == column)
            .ok_or(CompareError::Column {
                path: path.clone(),
                column,
            })?;
    }
    let [report_tenant, tenant, name, item, sku, value, unit] = at;
    let day = headers.iter().position(|h| h == DAY_COLUMN);
    let mut usage = PeriodUsage {
        label: label.to_owned(),
        items: BTreeMap::new(),
        day_lines: 0,
        record: PeriodFacts::read(dir, label),
    };
    // Which report a tenant is billed from: the first that has it.
    let mut billed_by: BTreeMap<String, String> = BTreeMap::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| line_error(&path, &e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or_default();
        if day.is_some_and(|day| !field(day).is_empty()) {
            usage.day_lines += 1;
            continue;
        }
        let by = billed_by
            .entry(field(tenant).to_owned())
            .or_insert_with(|| field(report_tenant).to_owned());
        if by != field(report_tenant) {
            continue;
        }
        let text = field(value);
        let amount = if text.is_empty() {
            Amount::ZERO
        } else {
            Amount::parse(text).ok_or_else(|| CompareError::Line {
                path: path.clone(),
                line,
                reason: format!("billable_value {text:?} is not a number"),
            })?
        };
        let entry = usage
            .items
            .entry((field(tenant).to_owned(), field(item).to_owned()))
            .or_insert_with(|| Usage {
                tenant_name: field(name).to_owned(),
                sku: field(sku).to_owned(),
                unit: field(unit).to_owned(),
                value: Amount::ZERO,
                report_tenant_id: field(report_tenant).to_owned(),
            });
        entry.value = entry.value.saturating_add(amount);
    }
    Ok(usage)
}

fn line_error(path: &Path, error: &csv::Error) -> CompareError {
    CompareError::Line {
        path: path.to_owned(),
        line: error.position().map_or(0, |p| p.line()),
        reason: error.to_string(),
    }
}

/// The period folders of a trail that have a `billing.csv`, in date order.
pub(crate) fn periods_of(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut periods: Vec<(Period, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let period = Period::from_label(&name)?;
            if !entry.file_type().ok()?.is_dir() {
                return None;
            }
            let billing = fs::symlink_metadata(entry.path().join(BILLING_CSV)).ok()?;
            billing.is_file().then_some((period, name))
        })
        .collect();
    periods.sort();
    periods.into_iter().map(|(_, name)| name).collect()
}

/// The period of the trail that `label` follows: the one that ends latest before it starts.
pub(crate) fn previous_of(dir: &Path, label: &str) -> Option<String> {
    let this = Period::from_label(label)?;
    periods_of(dir)
        .into_iter()
        .filter_map(|name| Some((Period::from_label(&name)?, name)))
        .filter(|(period, _)| period.end < this.start)
        .max_by_key(|(period, _)| (period.end, std::cmp::Reverse(period.start)))
        .map(|(_, name)| name)
}

/// How one tenant × offering item moved.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub(crate) tenant_id: String,
    pub(crate) tenant_name: String,
    pub(crate) offering_item: String,
    pub(crate) sku: String,
    pub(crate) unit: String,
    pub(crate) before: Option<Amount>,
    pub(crate) after: Option<Amount>,
    pub(crate) report_tenant_id: String,
    /// The period in which this value's report failed, when that is why it is missing: not
    /// compared, rather than called new or vanished.
    pub(crate) report_failed_in: Option<String>,
}

impl Change {
    pub(crate) fn difference(&self) -> Amount {
        self.after
            .unwrap_or(Amount::ZERO)
            .saturating_sub(self.before.unwrap_or(Amount::ZERO))
    }

    /// The change as a share of the earlier value's size (so a rise is positive even from a
    /// negative value); `None` when there was none, or it was zero.
    pub(crate) fn relative(&self) -> Option<f64> {
        let before = self.before?;
        let share = self.difference().ratio(before)?;
        Some(if before < Amount::ZERO { -share } else { share })
    }

    pub(crate) fn status(&self, new_tenant: bool, vanished_tenant: bool) -> &'static str {
        if self.report_failed_in.is_some() {
            return "report_failed";
        }
        match (self.before, self.after) {
            (None, _) if new_tenant => "new_tenant",
            (None, _) => "new_item",
            (_, None) if vanished_tenant => "vanished_tenant",
            (_, None) => "vanished_item",
            _ if self.difference().is_zero() => "unchanged",
            _ => "changed",
        }
    }
}

/// Everything that differs between two periods, and what stayed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    pub(crate) from: String,
    pub(crate) to: String,
    /// Every tenant × item of either period, by tenant name, id and item.
    pub rows: Vec<Change>,
    /// Tenants (id → name) only in `to`, and only in `from`.
    pub(crate) new_tenants: BTreeMap<String, String>,
    pub(crate) vanished_tenants: BTreeMap<String, String>,
    /// Report tenants (id → name) whose report failed in either period: their values are not
    /// compared.
    pub(crate) failed_reports: BTreeMap<String, String>,
    /// The two periods' billing rules, when they differ: a change may come from the rule.
    pub(crate) rules_differ: Option<(String, String)>,
    /// Day-by-day lines left out, in both periods together.
    pub(crate) day_lines: usize,
}

impl Changes {
    fn compared(&self) -> impl Iterator<Item = &Change> {
        self.rows.iter().filter(|c| c.report_failed_in.is_none())
    }

    fn new_items(&self) -> impl Iterator<Item = &Change> {
        self.compared()
            .filter(|c| c.before.is_none() && !self.new_tenants.contains_key(&c.tenant_id))
    }

    fn vanished_items(&self) -> impl Iterator<Item = &Change> {
        self.compared()
            .filter(|c| c.after.is_none() && !self.vanished_tenants.contains_key(&c.tenant_id))
    }

    /// Values in both periods that differ, largest relative change first (then largest
    /// difference).
    fn changed(&self) -> Vec<&Change> {
        let mut changed: Vec<&Change> = self
            .compared()
            .filter(|c| c.before.is_some() && c.after.is_some() && !c.difference().is_zero())
            .collect();
        changed.sort_by(|a, b| {
            let key = |c: &Change| c.relative().map_or(f64::INFINITY, f64::abs);
            key(b)
                .total_cmp(&key(a))
                .then_with(|| b.difference().abs_cmp(a.difference()))
        });
        changed
    }

    /// Changes at or above `threshold` (a share of the earlier value).
    fn large(&self, threshold: f64) -> Vec<&Change> {
        self.changed()
            .into_iter()
            .filter(|c| c.relative().is_none_or(|r| r.abs() >= threshold))
            .collect()
    }
}

/// Compares two periods' usage.
pub fn diff(before: &PeriodUsage, after: &PeriodUsage) -> Changes {
    let keys: BTreeSet<&(String, String)> = before.items.keys().chain(after.items.keys()).collect();
    let tenants = |usage: &PeriodUsage| -> BTreeMap<String, String> {
        usage
            .items
            .iter()
            .map(|((id, _), u)| (id.clone(), u.tenant_name.clone()))
            .collect()
    };
    // A value missing because its report failed in that period is not compared.
    let failed_in = |report_tenant: &str, old: Option<&Usage>, new: Option<&Usage>| {
        let failed = |usage: &PeriodUsage| usage.record.failed_reports.contains_key(report_tenant);
        match (old, new) {
            (Some(_), None) if failed(after) => Some(after.label.clone()),
            (None, Some(_)) if failed(before) => Some(before.label.clone()),
            _ => None,
        }
    };
    let mut rows: Vec<Change> = keys
        .into_iter()
        .map(|key| {
            let (old, new) = (before.items.get(key), after.items.get(key));
            let any = new.or(old).expect("a key of one of the two maps");
            Change {
                tenant_id: key.0.clone(),
                tenant_name: any.tenant_name.clone(),
                offering_item: key.1.clone(),
                sku: any.sku.clone(),
                unit: any.unit.clone(),
                before: old.map(|u| u.value),
                after: new.map(|u| u.value),
                report_tenant_id: any.report_tenant_id.clone(),
                report_failed_in: failed_in(&any.report_tenant_id, old, new),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.tenant_name, &a.tenant_id, &a.offering_item).cmp(&(
            &b.tenant_name,
            &b.tenant_id,
            &b.offering_item,
        ))
    });
    // Tenants only in one period, unless only a failed report keeps them out of the other.
    let not_compared: BTreeSet<&str> = rows
        .iter()
        .filter(|c| c.report_failed_in.is_some())
        .map(|c| c.tenant_id.as_str())
        .collect();
    let (was, is) = (tenants(before), tenants(after));
    let only_in = |these: &BTreeMap<String, String>, those: &BTreeMap<String, String>| {
        these
            .iter()
            .filter(|(id, _)| !those.contains_key(*id) && !not_compared.contains(id.as_str()))
            .map(|(id, name)| (id.clone(), name.clone()))
            .collect()
    };
    let (new_tenants, vanished_tenants) = (only_in(&is, &was), only_in(&was, &is));
    let mut failed_reports = before.record.failed_reports.clone();
    failed_reports.extend(after.record.failed_reports.clone());
    let rules_differ = match (&before.record.billing_rule, &after.record.billing_rule) {
        (Some(old), Some(new)) if old != new => Some((old.clone(), new.clone())),
        _ => None,
    };
    Changes {
        from: before.label.clone(),
        to: after.label.clone(),
        rows,
        new_tenants,
        vanished_tenants,
        failed_reports,
        rules_differ,
        day_lines: before.day_lines + after.day_lines,
    }
}

/// The changes of period `label` of the trail in `dir` since the period before it, when the
/// trail holds one. A billing.csv that cannot be read is logged and leaves the section out.
/// `facts` are those of `label`'s record when it is being written (its `manifest.json` on disk
/// is then the earlier one, or none).
pub(crate) fn changes_for(
    dir: &Path,
    label: &str,
    _options: &CompareOptions,
    facts: Option<PeriodFacts>,
) -> Option<Changes> {
    let previous = previous_of(dir, label)?;
    let read = |label: &str| {
        read_usage(dir, label)
            .map_err(|e| tracing::warn!("cannot compare {label} with {previous}: {e}"))
            .ok()
    };
    let mut now = read(label)?;
    if let Some(facts) = facts {
        now.record = facts;
    }
    Some(diff(&read(&previous)?, &now))
}

/// Adds a warning to the run's report of each tenant whose value changed by the threshold or
/// more, or that vanished (at most [`WARNINGS_MAX`], the rest counted in one more).
pub(crate) fn warn(
    run: &mut RunResult,
    changes: &Changes,
    options: &CompareOptions,
) -> io::Result<()> {
    let Some(threshold) = options.warn_change() else {
        return Ok(());
    };
    let mut warnings: Vec<(String, String)> = Vec::new();
    if let Some((old, new)) = &changes.rules_differ {
        warnings.push((
            String::new(),
            format!(
                "billing.csv of {} follows another billing rule than {} ({new} against {old}): compare the changes with that in mind",
                changes.to, changes.from
            ),
        ));
    }
    for change in changes.large(threshold) {
        warnings.push((
            change.report_tenant_id.clone(),
            format!(
                "{} {} changed by {} since {} ({} → {}), at least the {}% that compare.warn_change warns from",
                name_of(change),
                change.offering_item,
                percent(change.relative()),
                changes.from,
                shown(change.before, change),
                shown(change.after, change),
                options.warn_change_percent.unwrap_or_default(),
            ),
        ));
    }
    for change in changes
        .rows
        .iter()
        .filter(|c| c.after.is_none() && changes.vanished_tenants.contains_key(&c.tenant_id))
    {
        warnings.push((
            change.report_tenant_id.clone(),
            format!(
                "{} had {} of {} in {} and has no line in {}: a customer that left, or usage missing from the report",
                name_of(change),
                shown(change.before, change),
                change.offering_item,
                changes.from,
                changes.to
            ),
        ));
    }
    if warnings.is_empty() {
        return Ok(());
    }
    let total = warnings.len();
    let mut positions: BTreeMap<String, usize> = BTreeMap::new();
    for (position, report) in run.reports.iter().enumerate() {
        let report = report?;
        if report.period.label() == changes.to {
            positions.entry(report.tenant_id).or_insert(position);
        }
    }
    let fallback = positions.values().next().copied();
    for (index, (report_tenant, warning)) in warnings.into_iter().enumerate() {
        let warning = if index + 1 == WARNINGS_MAX && total > WARNINGS_MAX {
            format!(
                "{} more tenant × offering item changes of {} since {} are large; summary.md and `acronis-reports compare` list them",
                total - WARNINGS_MAX + 1,
                changes.to,
                changes.from
            )
        } else {
            warning
        };
        let Some(position) = positions.get(&report_tenant).copied().or(fallback) else {
            break;
        };
        run.reports.update(position, |report| {
            if !report.warnings.contains(&warning) {
                report.warnings.push(warning);
            }
        })?;
        if index + 1 == WARNINGS_MAX {
            break;
        }
    }
    Ok(())
}

mod render;

use render::*;
pub use render::{render_section, write_csv};

#[cfg(test)]
mod tests;
