//! The summary's views of `billing.csv`: per tenant × SKU and per SKU, as far as `summary.md`
//! can show them. Every line of the file passes through [`Invoice::add`], so it builds no key
//! it does not need: a file of millions of tenants has far more lines than the views keep.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use super::key_hash::{AlreadyHashed, Hashes, key_hash};
use super::{BillingSummary, INVOICE_ROWS_KEPT, InvoiceRow, POINTS, SkuTotal};
use crate::content::Amount;
use crate::content::lines::{Billable, Line};
use crate::period::Period;

/// One row of the view per tenant × SKU: its texts are ranges of [`Invoice::text`], so a row is
/// one fixed-size entry and no allocation of its own. A map keyed by five `String`s held ~360
/// bytes a row, ~380 with the allocator's own (1.9 MB for the 5 000 rows kept, held through
/// `billing.csv` at the end of a large run, its peak); this holds ~180.
struct Row {
    period: Period,
    /// Lines without a SKU sort after those with one.
    no_sku: bool,
    /// Where the tenant's name, its id, the SKU, the offering item and the unit are in the text.
    texts: [(u32, u32); 5],
    sum: Amount,
    /// The next row whose key has the same hash, if any.
    next: Option<u32>,
}

const NAME: usize = 0;
const ID: usize = 1;
const SKU: usize = 2;
const ITEM: usize = 3;
const UNIT: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SkuKey {
    period: Period,
    no_sku: bool,
    sku: String,
    offering_item: String,
}

/// A SKU's sum, its tenants (lines), and its unit as the first line that said it gives it.
type SkuSum = (Amount, u64, String);

/// The summary's views of the lines, as far as it can show them.
#[derive(Default)]
pub(super) struct Invoice {
    /// Per tenant × SKU, in the order first met: the sum, and the unit as the first line that
    /// said it gives it.
    rows: Vec<Row>,
    /// The rows' texts, end to end.
    text: String,
    /// The first row of each key hash (the others of that hash follow [`Row::next`]).
    row_index: HashMap<u64, u32, BuildHasherDefault<AlreadyHashed>>,
    rows_left_out: usize,
    /// Per SKU over all tenants: the sum, the tenants, the unit.
    skus: BTreeMap<SkuKey, SkuSum>,
    /// The last line's SKU key, and what the lines of it since it came add up to, not yet in
    /// `skus`: lines of one SKU mostly follow each other, and a look into the map for each
    /// line was a thirtieth of writing billing.csv.
    last_sku: Option<(SkuKey, SkuSum)>,
    skus_left_out: usize,
    /// Each billed tenant × item × backend × day × period. Only when the run has several
    /// reports, which is when two can overlap.
    seen: Option<Billed>,
    repeated: u64,
    /// Day-by-day lines, not summed (see [`BillingSummary::day_lines`]).
    day_lines: u64,
    /// The line's item with its backend, and its tenant id in lower case, reused line to line.
    label: String,
    lower: String,
    /// The last period and its hash: lines come a report, so a period, at a time.
    period: Option<(Period, u64)>,
}

/// The lines a run has billed, by period × tenant (lower case) and item × backend × day, to
/// tell a line already billed (by an earlier report of the run, or earlier in the same file)
/// from a new one.
///
/// A run bills ~30 lines a tenant from a few dozen items: a set of whole keys held 8 bytes a
/// line for the whole of `billing.csv` (~5–7 MB for 10 000 reports, the largest item of a
/// large run's peak). Here a tenant holds one 64-bit word, a bit for each of the run's first
/// [`ITEM_BITS`] items; only lines of the items after those are held as whole keys. Each key
/// part is a [`key_hash`], so two keys are told apart as surely as the whole key's hash did.
///
/// The tenants' words are kept in [`SHARDS`] lists by their hash's top bits, each sorted by
/// tenant and grown by an eighth at a time: ~18 bytes a tenant. A map of them doubled its table
/// at once, old and new held together: 1.7 MB at the end of the scale case's run (45 000 row
/// tenants), the largest item `billing.csv` added to the run's peak.
#[derive(Default)]
pub(super) struct Billed {
    /// The run's first items, each with its bit.
    items: HashMap<u64, u32, BuildHasherDefault<AlreadyHashed>>,
    /// Per tenant and period, the bits of the items billed: `SHARDS` lists (none until the
    /// first tenant), each sorted by tenant.
    tenants: Vec<Vec<(u64, u64)>>,
    /// Lines of the other items, as hashes of tenant and item.
    others: Hashes,
}

/// Items with a bit of their own.
const ITEM_BITS: usize = 64;
/// The tenants' lists, by the top bits of the tenant's hash: 256 of them, so a list of a run of
/// 100 000 tenants holds ~400 and a tenant's insertion moves a few KiB at most.
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;

impl Billed {
    /// Whether no line of `tenant` (its period and id, as a [`key_hash`]) and `item` (its item,
    /// backend and day, as one) was billed before; from now on one was.
    pub(super) fn first(&mut self, tenant: u64, item: u64) -> bool {
        let known = self.items.len();
        let bit = match self.items.get(&item) {
            Some(&bit) => bit,
            None if known < ITEM_BITS => {
                // `known` < 64: the cast keeps it.
                let bit = known as u32;
                self.items.insert(item, bit);
                bit
            }
            None => return self.others.insert(key_hash((tenant, item))),
        };
        if self.tenants.is_empty() {
            self.tenants.resize_with(SHARDS, Vec::new);
        }
        // The top bits: `SHARD_BITS` of them, below `SHARDS`.
        let list = &mut self.tenants[(tenant >> (u64::BITS - SHARD_BITS)) as usize];
        let word = match list.binary_search_by_key(&tenant, |&(key, _)| key) {
            Ok(at) => &mut list[at].1,
            Err(at) => {
                if list.len() == list.capacity() {
                    list.reserve_exact(list.len() / 8 + 4);
                }
                list.insert(at, (tenant, 0));
                &mut list[at].1
            }
        };
        let mask = 1u64 << bit;
        let first = *word & mask == 0;
        *word |= mask;
        first
    }
}

/// Texts of the view's rows beyond which a new row is left out: their ranges are 32-bit.
const TEXT_MAX: usize = u32::MAX as usize - 5 * (1 << 20);

/// Appends `part` to `text`; where it is. `text` is kept below [`TEXT_MAX`] and each part is
/// one cell (at most 1 MiB), so the ends fit.
fn push_text(text: &mut String, part: &str) -> (u32, u32) {
    make_room(text, part.len());
    let at = |text: &String| u32::try_from(text.len()).unwrap_or(u32::MAX);
    let start = at(text);
    text.push_str(part);
    (start, at(text))
}

/// Room in `text` for `more` bytes, grown by an eighth at least rather than doubled: the view's
/// text is kept to the end of `billing.csv`, and a doubled one is up to half slack.
fn make_room(text: &mut String, more: usize) {
    if text.capacity() - text.len() < more {
        text.reserve_exact(more.max(text.len() / 8).max(4096));
    }
}

fn text_of(text: &str, (start, end): (u32, u32)) -> &str {
    text.get(start as usize..end as usize).unwrap_or("")
}

/// SKUs the summary sums; more is not a price list but an attack on memory.
pub(super) const SKUS_KEPT: usize = 10_000;

/// Adds the sum of a run of lines of one SKU to `skus`, as adding them one by one would: to
/// the SKU's entry, else to a new one while there is room, else to the lines left out.
fn file_sku(
    skus: &mut BTreeMap<SkuKey, SkuSum>,
    left_out: &mut usize,
    (key, (sum, tenants, unit)): (SkuKey, SkuSum),
) {
    if let Some((total, count, known)) = skus.get_mut(&key) {
        *total = total.saturating_add(sum);
        *count += tenants;
        if known.is_empty() {
            *known = unit;
        }
    } else if skus.len() < SKUS_KEPT {
        skus.insert(key, (sum, tenants, unit));
    } else {
        *left_out += usize::try_from(tenants).unwrap_or(usize::MAX);
    }
}

impl Invoice {
    pub(super) fn new(several_reports: bool) -> Self {
        Invoice {
            seen: several_reports.then(Billed::default),
            ..Invoice::default()
        }
    }

    pub(super) fn add(
        &mut self,
        period: Period,
        line: &Line,
        tenant_name: &str,
        billable: &Billable,
    ) {
        // A day's compute points are used up that day: the days add up to the period's. Any
        // other day's value is a level on that day, and a month of them summed is no figure.
        if !line.day.is_empty() && !line.is_compute_points() {
            self.day_lines += 1;
            return;
        }
        let period_key = match self.period {
            Some((last, key)) if last == period => key,
            _ => self.period.insert((period, key_hash(period))).1,
        };
        if let Some(seen) = &mut self.seen {
            self.lower.clear();
            self.lower.push_str(&line.tenant_id);
            self.lower.make_ascii_lowercase();
            let tenant = key_hash((period_key, self.lower.as_str()));
            let item = key_hash((&line.offering_item, &line.infra_backend, &line.day));
            if !seen.first(tenant, item) {
                self.repeated += 1;
                return;
            }
        }
        self.label.clear();
        self.label.push_str(&line.offering_item);
        if !line.infra_backend.is_empty() {
            self.label.push_str(" (");
            self.label.push_str(&line.infra_backend);
            self.label.push(')');
        }
        self.add_to_sku(period, line, billable);
        self.add_to_row(period, period_key, line, tenant_name, billable);
    }

    fn add_to_sku(&mut self, period: Period, line: &Line, billable: &Billable) {
        let Invoice {
            skus,
            last_sku,
            label,
            skus_left_out,
            ..
        } = self;
        let same = last_sku.as_ref().is_some_and(|(k, _)| {
            k.period == period && k.sku == line.sku && k.offering_item == *label
        });
        if !same {
            let key = SkuKey {
                period,
                no_sku: line.sku.is_empty(),
                sku: line.sku.clone(),
                offering_item: label.clone(),
            };
            if let Some(done) = last_sku.replace((key, (Amount::ZERO, 0, String::new()))) {
                file_sku(skus, skus_left_out, done);
            }
        }
        let Some((_, (sum, tenants, unit))) = last_sku.as_mut() else {
            return;
        };
        *sum = sum.saturating_add(billable.value);
        *tenants += 1;
        if unit.is_empty() {
            unit.clone_from(&billable.unit);
        }
    }

    fn add_to_row(
        &mut self,
        period: Period,
        period_key: u64,
        line: &Line,
        tenant_name: &str,
        billable: &Billable,
    ) {
        let tenant_name = if tenant_name.is_empty() {
            line.tenant_id.as_str()
        } else {
            tenant_name
        };
        // Equal keys hash alike; `no_sku` follows from `sku`.
        let hash = key_hash((
            period_key,
            tenant_name,
            &line.tenant_id,
            &line.sku,
            self.label.as_str(),
        ));
        if let Some(row) = self.row_of(hash, period, tenant_name, line) {
            let row = &mut self.rows[row];
            row.sum = row.sum.saturating_add(billable.value);
            if row.texts[UNIT].0 == row.texts[UNIT].1 && !billable.unit.is_empty() {
                row.texts[UNIT] = push_text(&mut self.text, &billable.unit);
            }
            return;
        }
        let Ok(at) = u32::try_from(self.rows.len()) else {
            self.rows_left_out += 1;
            return;
        };
        // Past 4 GiB of texts (5 000 rows of 1 MiB texts; no report is that) a row is left out
        // rather than shown wrong.
        if self.rows.len() >= INVOICE_ROWS_KEPT || self.text.len() > TEXT_MAX {
            self.rows_left_out += 1;
            return;
        }
        let text = &mut self.text;
        make_room(
            text,
            tenant_name.len()
                + line.tenant_id.len()
                + line.sku.len()
                + self.label.len()
                + billable.unit.len(),
        );
        let texts = [
            push_text(text, tenant_name),
            push_text(text, &line.tenant_id),
            push_text(text, &line.sku),
            push_text(text, &self.label),
            push_text(text, &billable.unit),
        ];
        let next = self.row_index.insert(hash, at);
        if self.rows.len() == self.rows.capacity() {
            // Doubling up to the cap, then exactly to it: no slack past the rows kept.
            let more = self
                .rows
                .len()
                .max(4)
                .min(INVOICE_ROWS_KEPT - self.rows.len());
            self.rows.reserve_exact(more);
        }
        self.rows.push(Row {
            period,
            no_sku: line.sku.is_empty(),
            texts,
            sum: billable.value,
            next,
        });
    }

    /// The row of this line's key, among those of its hash.
    fn row_of(&self, hash: u64, period: Period, tenant_name: &str, line: &Line) -> Option<usize> {
        let mut at = self.row_index.get(&hash).copied();
        while let Some(row) = at.map(|at| at as usize) {
            let found = &self.rows[row];
            let text = |i: usize| text_of(&self.text, found.texts[i]);
            if found.period == period
                && text(NAME) == tenant_name
                && text(ID) == line.tenant_id
                && text(SKU) == line.sku
                && text(ITEM) == self.label
            {
                return Some(row);
            }
            at = found.next;
        }
        None
    }

    pub(super) fn finish(mut self, summary: &mut BillingSummary) {
        if let Some(done) = self.last_sku.take() {
            file_sku(&mut self.skus, &mut self.skus_left_out, done);
        }
        // Let go before the views become lists: the end of a large run is its peak.
        self.seen = None;
        self.row_index = HashMap::default();
        let text = |value: Amount, unit: &str| {
            if unit == POINTS {
                value.fixed(2)
            } else {
                value.to_string()
            }
        };
        summary.invoice_left_out = self.rows_left_out;
        summary.skus_left_out = self.skus_left_out;
        summary.repeated_lines = self.repeated;
        summary.day_lines = self.day_lines;
        let texts = &self.text;
        let key = |row: &Row| {
            let text = |i: usize| text_of(texts, row.texts[i]);
            (
                row.period,
                text(NAME),
                text(ID),
                row.no_sku,
                text(SKU),
                text(ITEM),
            )
        };
        // Keys are unique: the order is the one a map sorted by the key had.
        self.rows.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        summary.invoice = self
            .rows
            .iter()
            .map(|row| {
                let owned = |i: usize| text_of(texts, row.texts[i]).to_owned();
                InvoiceRow {
                    period: row.period,
                    value: text(row.sum, text_of(texts, row.texts[UNIT])),
                    tenant_name: owned(NAME),
                    tenant_id: owned(ID),
                    sku: owned(SKU),
                    offering_item: owned(ITEM),
                    unit: owned(UNIT),
                }
            })
            .collect();
        drop(self.rows);
        drop(self.text);
        summary.skus = self
            .skus
            .into_iter()
            .map(|(key, (value, tenants, unit))| SkuTotal {
                period: key.period,
                value: text(value, &unit),
                tenants,
                sku: key.sku,
                offering_item: key.offering_item,
                unit,
            })
            .collect();
    }
}
