//! The layouts the vendor no longer documents: the old CSV and an HTML page served instead of a
//! file.

use super::*;

/// Human units for the legacy table formats: GB for storage and, per the docs,
/// DR compute points already divided by 3600.
pub(super) fn legacy_value(item: &Item, value: u64) -> (String, &'static str) {
    match item.unit {
        Unit::Bytes => (
            format_hundredths(u128::from(value) * 100 / u128::from(GIB)),
            "GB",
        ),
        Unit::Seconds => (format_hundredths(u128::from(value) * 100 / 3600), "points"),
        Unit::Quantity => (value.to_string(), "pcs"),
    }
}

pub(super) fn format_hundredths(v: u128) -> String {
    format!("{}.{:02}", v / 100, v % 100)
}

pub(super) const LEGACY_HEADER: [&str; 10] = [
    "Customer",
    "Customer ID",
    "Type",
    "Edition",
    "Service",
    "Usage",
    "Unit",
    "SKU",
    "From",
    "To",
];

pub(super) fn legacy_cells(ctx: &Ctx, r: &Row) -> [String; 10] {
    let t = &ctx.tenants[r.tenant];
    let item = &ITEMS[r.item];
    let period = &ctx.periods[r.period];
    let (value, unit) = legacy_value(item, r.usage.value(r.item));
    let service = match r.backend.and_then(|b| BACKENDS.get(b)) {
        Some(b) => format!("{} ({b})", item.title),
        None => item.title.to_owned(),
    };
    [
        t.name.clone(),
        t.uuid.clone(),
        t.kind.to_owned(),
        EDITION.to_owned(),
        service,
        value,
        unit.to_owned(),
        ctx.sku(r.item).to_owned(),
        period.start.to_string(),
        period.end.to_string(),
    ]
}

pub(super) fn render_legacy_csv(ctx: &Ctx) -> String {
    let mut out = String::with_capacity(ctx.rows.len() * 140);
    csv_line(&mut out, &LEGACY_HEADER);
    for r in &ctx.rows {
        let cells = legacy_cells(ctx, r);
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        csv_line(&mut out, &refs);
    }
    out
}

pub(super) fn render_html(ctx: &Ctx) -> String {
    let spec = ctx.spec;
    let mut out = String::with_capacity(ctx.rows.len() * 300);
    let title = format!(
        "Usage report for {} ({} to {})",
        ctx.tenants[0].name, spec.start, spec.end
    );
    out.push_str("<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>");
    out.push_str(&html_escape(&title));
    out.push_str("</title></head>\n<body>\n<h1>");
    out.push_str(&html_escape(&title));
    out.push_str("</h1>\n<table>\n<thead><tr>");
    for h in LEGACY_HEADER {
        out.push_str("<th>");
        out.push_str(h);
        out.push_str("</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &ctx.rows {
        out.push_str("<tr>");
        for c in legacy_cells(ctx, r) {
            out.push_str("<td>");
            out.push_str(&html_escape(&c));
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}
