//! The comparison as people read it: the summary's "Changes since …" section in Markdown, and
//! every tenant × offering item as CSV for a spreadsheet.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::content::Amount;
use crate::output::summary::{SECTION_MAX_BYTES, amount as human_amount, inline};

use super::*;

pub(super) fn name_of(change: &Change) -> String {
    if change.tenant_name.is_empty() {
        change.tenant_id.clone()
    } else {
        change.tenant_name.clone()
    }
}

pub(super) fn shown(value: Option<Amount>, change: &Change) -> String {
    match value {
        Some(value) => human_amount(&value.to_string(), &change.unit, &change.offering_item),
        None => "—".to_owned(),
    }
}

pub(super) fn percent(share: Option<f64>) -> String {
    match share {
        Some(share) => format!("{:+.1} %", share * 100.0),
        // Only a value that was zero has no relative change.
        None => "from zero".to_owned(),
    }
}

/// A table cell: one line of Markdown, long names cut.
pub(super) fn cell(text: &str) -> String {
    inline(text, NAME_CHARS)
}

/// The "Changes since …" section of a summary (under [`SECTION_MAX_BYTES`]).
pub fn render_section(changes: &Changes, options: &CompareOptions) -> String {
    let mut out = format!("## Changes since {}\n\n", changes.from);
    let changed = changes.changed();
    let large = options
        .warn_change()
        .map(|t| changes.large(t).len())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "{} compared with {} (billable values per tenant × offering item, from both periods' billing.csv): {} new and {} vanished tenant(s), {} new and {} vanished offering item(s) of other tenants, {} value(s) changed{}.\n",
        changes.to,
        changes.from,
        changes.new_tenants.len(),
        changes.vanished_tenants.len(),
        changes.new_items().count(),
        changes.vanished_items().count(),
        changed.len(),
        match options.warn_change() {
            Some(threshold) => format!(
                ", {large} of them by {} or more",
                percent(Some(threshold)).trim_start_matches('+')
            ),
            None => String::new(),
        }
    );
    for note in notes(changes) {
        let _ = writeln!(out, "- ⚠ {}", inline(&note, SECTION_MAX_BYTES / 8));
    }
    if !notes(changes).is_empty() {
        out.push('\n');
    }
    let tenant_table = |title: &str, tenants: &BTreeMap<String, String>, out: &mut String| {
        if tenants.is_empty() {
            return;
        }
        let _ = writeln!(out, "### {title}\n\n| Tenant | Id |\n| --- | --- |");
        for (id, name) in tenants.iter().take(ROWS_SHOWN) {
            // csv_v2_0 rows carry no names: a tenant the run did not name is shown by id only.
            let name = if name.is_empty() { "—" } else { name };
            let _ = writeln!(out, "| {} | {} |", cell(name), cell(id));
        }
        more(out, tenants.len());
    };
    tenant_table("New tenants", &changes.new_tenants, &mut out);
    tenant_table("Vanished tenants", &changes.vanished_tenants, &mut out);
    let item_table = |title: &str, items: Vec<&Change>, out: &mut String| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "### {title}\n\n| Tenant | Offering item | SKU | {} | {} |\n| --- | --- | --- | ---: | ---: |",
            cell(&changes.from),
            cell(&changes.to)
        );
        for change in items.iter().take(ROWS_SHOWN) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&name_of(change)),
                cell(&change.offering_item),
                cell(&change.sku),
                cell(&shown(change.before, change)),
                cell(&shown(change.after, change)),
            );
        }
        more(out, items.len());
    };
    item_table(
        "New offering items of tenants billed before",
        changes.new_items().collect(),
        &mut out,
    );
    item_table(
        "Vanished offering items of tenants still billed",
        changes.vanished_items().collect(),
        &mut out,
    );
    if !changed.is_empty() {
        let _ = writeln!(
            out,
            "### Largest changes\n\n| Tenant | Offering item | SKU | {} | {} | Change | Relative |\n| --- | --- | --- | ---: | ---: | ---: | ---: |",
            cell(&changes.from),
            cell(&changes.to)
        );
        for change in changed.iter().take(ROWS_SHOWN) {
            let flag = match (options.warn_change(), change.relative()) {
                (Some(t), Some(r)) if r.abs() >= t => " ⚠",
                _ => "",
            };
            let difference = change.difference();
            let sign = if difference > Amount::ZERO { "+" } else { "" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {sign}{} | {}{flag} |",
                cell(&name_of(change)),
                cell(&change.offering_item),
                cell(&change.sku),
                cell(&shown(change.before, change)),
                cell(&shown(change.after, change)),
                cell(&human_amount(
                    &difference.to_string(),
                    &change.unit,
                    &change.offering_item
                )),
                percent(change.relative()),
            );
        }
        more(&mut out, changed.len());
    }
    if out.len() > SECTION_MAX_BYTES {
        let mut cut = SECTION_MAX_BYTES - 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n\n_Cut to keep this summary short; `acronis-reports compare` lists every change._\n\n");
    }
    out
}

/// What a reader must know before trusting the numbers: another billing rule, reports that
/// failed, lines left out.
pub(super) fn notes(changes: &Changes) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some((old, new)) = &changes.rules_differ {
        notes.push(format!(
            "The billing rules differ ({} bills by {old}, {} by {new}): a change below may come from the rule, not from usage.",
            changes.from, changes.to
        ));
    }
    if !changes.failed_reports.is_empty() {
        let names: Vec<String> = changes
            .failed_reports
            .iter()
            .take(ROWS_SHOWN)
            .map(|(id, name)| {
                if name.is_empty() {
                    id.clone()
                } else {
                    name.clone()
                }
            })
            .collect();
        let not_compared = changes
            .rows
            .iter()
            .filter(|c| c.report_failed_in.is_some())
            .count();
        notes.push(format!(
            "The report of {}{} failed in one of the periods: {not_compared} of its value(s) are not compared (neither new nor vanished).",
            names.join(", "),
            if changes.failed_reports.len() > ROWS_SHOWN { " and others" } else { "" }
        ));
    }
    if changes.day_lines > 0 {
        notes.push(format!(
            "{} day-by-day line(s) are left out: a day's value is not the period's.",
            changes.day_lines
        ));
    }
    notes
}

pub(super) fn more(out: &mut String, total: usize) {
    out.push('\n');
    if total > ROWS_SHOWN {
        let _ = writeln!(
            out,
            "_{} more; `acronis-reports compare DIR --from … --to … --format csv` lists them all._\n",
            total - ROWS_SHOWN
        );
    }
}

/// A text cell a spreadsheet will not run: this CSV is made to be opened in one, and names come
/// from the server, so one starting like a formula gets a leading `'` (the usual defence, which
/// spreadsheets show as text). `billing.csv` keeps its texts as the report has them, for joins.
pub(super) fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// Every tenant × offering item of either period as CSV, for reconciling in a spreadsheet.
pub fn write_csv(changes: &Changes, out: impl Write) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record([
        "tenant_id",
        "tenant_name",
        "offering_item",
        "sku",
        "unit",
        &format!("billable_{}", changes.from),
        &format!("billable_{}", changes.to),
        "change",
        "relative_change",
        "status",
    ])?;
    for change in &changes.rows {
        let text = |value: Option<Amount>| value.map(|v| v.to_string()).unwrap_or_default();
        csv.write_record([
            inert(&change.tenant_id).as_ref(),
            inert(&change.tenant_name).as_ref(),
            inert(&change.offering_item).as_ref(),
            inert(&change.sku).as_ref(),
            inert(&change.unit).as_ref(),
            &text(change.before),
            &text(change.after),
            &change.difference().to_string(),
            &change
                .relative()
                .map(|r| format!("{r:.4}"))
                .unwrap_or_default(),
            change.status(
                changes.new_tenants.contains_key(&change.tenant_id),
                changes.vanished_tenants.contains_key(&change.tenant_id),
            ),
        ])?;
    }
    csv.flush()
}
