//! Deterministic report files.
//!
//! Every byte is derived from the report's inputs through SHA-256, never from
//! the clock or an RNG, so two sandboxes given the same request produce
//! byte-identical files and end-to-end tests can compare checksums across runs.

use bytes::Bytes;
use jiff::civil::Date;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Daily,
    Summary,
    Current,
    Breakdown,
}

impl Kind {
    pub(crate) const NAMES: [&'static str; 4] = [
        "usage_daily",
        "usage_summary",
        "usage_current",
        "usage_breakdown",
    ];

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "usage_daily" => Kind::Daily,
            "usage_summary" => Kind::Summary,
            "usage_current" => Kind::Current,
            "usage_breakdown" => Kind::Breakdown,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Daily => "usage_daily",
            Kind::Summary => "usage_summary",
            Kind::Current => "usage_current",
            Kind::Breakdown => "usage_breakdown",
        }
    }

    /// Numeric kind in `json_v2_0` params. Only 4 = day-by-day is documented;
    /// the others continue the sequence as a plausible guess.
    fn json_code(self) -> u32 {
        match self {
            Kind::Daily => 4,
            Kind::Summary => 5,
            Kind::Current => 6,
            Kind::Breakdown => 7,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Itself,
    DirectPartners,
    AllPartners,
    AllCustomers,
    Accounts,
}

impl Level {
    pub(crate) const NAMES: [&'static str; 5] = [
        "itself",
        "direct_partners",
        "all_partners",
        "all_customers",
        "accounts",
    ];

    pub(crate) fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "itself" => Level::Itself,
            "direct_partners" => Level::DirectPartners,
            "all_partners" => Level::AllPartners,
            "all_customers" => Level::AllCustomers,
            "accounts" => Level::Accounts,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Itself => "itself",
            Level::DirectPartners => "direct_partners",
            Level::AllPartners => "all_partners",
            Level::AllCustomers => "all_customers",
            Level::Accounts => "accounts",
        }
    }

    /// Documented numeric `report_level` of `json_v2_0`.
    fn json_code(self) -> u32 {
        match self {
            // Not documented; 0 stays clear of the documented codes.
            Level::Itself => 0,
            Level::DirectPartners => 1,
            Level::AllCustomers => 2,
            Level::Accounts => 3,
            Level::AllPartners => 4,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Html,
    JsonV1,
    CsvV2,
    JsonV2,
}

impl Format {
    pub(crate) const NAMES: [&'static str; 5] = ["csv", "html", "json_v1", "csv_v2_0", "json_v2_0"];

    pub(crate) fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "csv" => Format::Csv,
            "html" => Format::Html,
            "json_v1" => Format::JsonV1,
            "csv_v2_0" => Format::CsvV2,
            "json_v2_0" => Format::JsonV2,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Html => "html",
            Format::JsonV1 => "json_v1",
            Format::CsvV2 => "csv_v2_0",
            Format::JsonV2 => "json_v2_0",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Csv | Format::CsvV2 => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::JsonV1 | Format::JsonV2 => "application/json",
        }
    }
}

/// Everything the file content depends on.
#[derive(Clone, Debug)]
pub(crate) struct ReportSpec {
    /// Lower-case canonical UUID, so letter case does not change the content.
    pub tenant_id: String,
    pub kind: Kind,
    pub level: Level,
    pub start: Date,
    pub end: Date,
    pub show_skus: bool,
    pub hide_zero_usage: bool,
    pub no_skus: bool,
}

pub(crate) const CSV_V2_HEADER: &str = "Tenant Name,Tenant UUID,Tenant Kind,Edition,Offering Item,Usage Name,Measurement Unit,SKU,Start Date,End Date,Usage";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Bytes,
    Quantity,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Quantity => "quantity",
            Unit::Seconds => "seconds",
        }
    }
}

struct Item {
    edition: &'static str,
    offering_item: &'static str,
    usage_name: &'static str,
    unit: Unit,
    sku: &'static str,
    title: &'static str,
}

const EDITION: &str = "pck_per_workload";

const ITEMS: [Item; 7] = [
    Item {
        edition: EDITION,
        offering_item: "pw_base_storage",
        usage_name: "storage",
        unit: Unit::Bytes,
        sku: "SP4ASTENS",
        title: "Backup storage",
    },
    Item {
        edition: EDITION,
        offering_item: "pw_base_workstations",
        usage_name: "workstations",
        unit: Unit::Quantity,
        sku: "SP4AWSENS",
        title: "Workstations",
    },
    Item {
        edition: EDITION,
        offering_item: "pw_base_servers",
        usage_name: "servers",
        unit: Unit::Quantity,
        sku: "SP4ASRENS",
        title: "Servers",
    },
    Item {
        edition: EDITION,
        offering_item: "pw_base_vms",
        usage_name: "vms",
        unit: Unit::Quantity,
        sku: "SP4AVMENS",
        title: "Virtual machines",
    },
    Item {
        edition: EDITION,
        offering_item: "pw_base_m365_seats",
        usage_name: "m365_seats",
        unit: Unit::Quantity,
        sku: "SP4AMSENS",
        title: "Microsoft 365 seats",
    },
    Item {
        edition: EDITION,
        offering_item: "pw_base_mobiles",
        usage_name: "mobiles",
        unit: Unit::Quantity,
        sku: "SP4AMBENS",
        title: "Mobile devices",
    },
    Item {
        edition: EDITION,
        offering_item: "pw_base_adv_dr_compute_points",
        usage_name: "compute_points",
        unit: Unit::Seconds,
        sku: "SP4ADRENS",
        title: "Disaster Recovery compute points",
    },
];

/// Hash of length-prefixed parts, so ("ab","c") and ("a","bc") differ.
fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

fn num(parts: &[&str]) -> u64 {
    let d = digest(parts);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_le_bytes(first)
}

/// A name-based UUID (version 5 layout) so child tenants keep their ids across runs.
pub(crate) fn derived_uuid(parts: &[&str]) -> String {
    let d = digest(parts);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

struct Tenant {
    uuid: String,
    name: String,
    kind: &'static str,
    has_dr: bool,
}

/// Realistic company-name tails; some need CSV quoting or are non-ASCII on purpose.
const NAME_SUFFIXES: [&str; 6] = [
    "",
    ", Inc.",
    " GmbH",
    " \"Nord\" AG",
    " Müller & Söhne",
    " S.A.",
];

fn tenants(spec: &ReportSpec, stale: bool) -> Vec<Tenant> {
    let tid = spec.tenant_id.as_str();
    let short = tid.get(..8).unwrap_or(tid);
    let mut subject_name = format!("Partner {short}");
    if stale {
        subject_name.push_str(" (stale)");
    }
    let mut out = vec![Tenant {
        uuid: tid.to_owned(),
        name: subject_name,
        kind: "partner",
        has_dr: false,
    }];
    let children = 2 + num(&["children", tid]) % 4;
    // At least one child always has DR usage, so every report carries a DR row.
    let forced_dr = 1 + num(&["dr-forced", tid]) % children;
    let (label, kind) = match spec.level {
        Level::AllPartners => ("Partner", "partner"),
        _ => ("Customer", "customer"),
    };
    for i in 1..=children {
        let idx = i.to_string();
        let suffix_ix = num(&["suffix", tid, &idx]) % NAME_SUFFIXES.len() as u64;
        let suffix = NAME_SUFFIXES[suffix_ix as usize];
        out.push(Tenant {
            uuid: derived_uuid(&["child", tid, &idx]),
            name: format!("{label} {i:02} of {short}{suffix}"),
            kind,
            has_dr: i == forced_dr || num(&["dr", tid, &idx]).is_multiple_of(2),
        });
    }
    out
}

const GIB: u64 = 1 << 30;

/// Usage of one item for one child at the end of the period.
fn base_value(child: &Tenant, item: usize, salt: &str) -> u64 {
    let h = num(&["value", &child.uuid, ITEMS[item].offering_item, salt]);
    let h2 = h >> 20;
    match item {
        0 => (10 + h % 110) * GIB + h2 % GIB,
        1 => 1 + h % 40,
        2 => optional(h, 1 + h2 % 6),
        3 => optional(h, 1 + h2 % 12),
        4 => optional(h, 5 + h2 % 60),
        // Nobody backs up phones here: a guaranteed zero row for hide_zero_usage.
        5 => 0,
        _ => {
            if child.has_dr {
                // Multiples of 36 s make points (value / 3600) exact to 2 decimals.
                36 * (200 + h2 % 19_800)
            } else {
                0
            }
        }
    }
}

fn optional(h: u64, v: u64) -> u64 {
    if h.is_multiple_of(3) { 0 } else { v }
}

/// Day-to-day variation of ±10 % around the base value.
fn day_value(base: u64, child: &Tenant, item: usize, day: &str, salt: &str) -> u64 {
    if base == 0 {
        return 0;
    }
    let factor = 900 + num(&["day", &child.uuid, ITEMS[item].offering_item, day, salt]) % 201;
    let v = (u128::from(base) * u128::from(factor) / 1000) as u64;
    match ITEMS[item].unit {
        Unit::Seconds => (v / 36).max(1) * 36,
        _ => v.max(1),
    }
}

struct Row {
    tenant: usize,
    item: usize,
    start: String,
    end: String,
    value: u64,
}

fn periods(spec: &ReportSpec) -> Vec<(String, String)> {
    match spec.kind {
        Kind::Summary => vec![(spec.start.to_string(), spec.end.to_string())],
        Kind::Current => vec![(spec.end.to_string(), spec.end.to_string())],
        Kind::Daily | Kind::Breakdown => {
            let mut out = Vec::new();
            let mut d = spec.start;
            while d <= spec.end {
                out.push((d.to_string(), d.to_string()));
                match d.tomorrow() {
                    Ok(next) => d = next,
                    Err(_) => break,
                }
            }
            out
        }
    }
}

fn rows(spec: &ReportSpec, tenants: &[Tenant], stale: bool) -> Vec<Row> {
    let salt = if stale { "stale" } else { "" };
    let periods = periods(spec);
    let single = periods.len() == 1;
    // values[child][item][period]
    let values: Vec<Vec<Vec<u64>>> = tenants[1..]
        .iter()
        .map(|child| {
            (0..ITEMS.len())
                .map(|item| {
                    let base = base_value(child, item, salt);
                    periods
                        .iter()
                        .map(|(day, _)| {
                            if single {
                                base
                            } else {
                                day_value(base, child, item, day, salt)
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for (t, _) in tenants.iter().enumerate() {
        for item in 0..ITEMS.len() {
            for (p, (start, end)) in periods.iter().enumerate() {
                // The partner's own rows aggregate its children, as in real reports.
                let value = if t == 0 {
                    values.iter().map(|c| c[item][p]).sum()
                } else {
                    values[t - 1][item][p]
                };
                if value == 0 && spec.hide_zero_usage {
                    continue;
                }
                out.push(Row {
                    tenant: t,
                    item,
                    start: start.clone(),
                    end: end.clone(),
                    value,
                });
            }
        }
    }
    out
}

fn sku_cell(spec: &ReportSpec, item: &Item) -> &'static str {
    if spec.show_skus && !spec.no_skus {
        item.sku
    } else {
        ""
    }
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push('\n');
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm); infallible unlike a
/// time-zone conversion, and dates here are already validated.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn unix_midnight(d: Date) -> i64 {
    days_from_civil(
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    ) * 86_400
}

/// `2019-08-08T07:36:58+00:00`, the form the docs show for `created_at`.
pub(crate) fn rfc3339_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Render one stored file (without padding).
pub(crate) fn render(spec: &ReportSpec, format: Format, stale: bool) -> Vec<u8> {
    let tenants = tenants(spec, stale);
    let rows = rows(spec, &tenants, stale);
    match format {
        Format::CsvV2 => render_csv_v2(spec, &tenants, &rows).into_bytes(),
        Format::JsonV2 => render_json_v2(spec, &tenants, &rows),
        Format::JsonV1 => render_json_v1(spec, &tenants, &rows),
        Format::Csv => render_legacy_csv(spec, &tenants, &rows).into_bytes(),
        Format::Html => render_html(spec, &tenants, &rows).into_bytes(),
    }
}

fn render_csv_v2(spec: &ReportSpec, tenants: &[Tenant], rows: &[Row]) -> String {
    let mut out = String::with_capacity(rows.len() * 160);
    out.push_str(CSV_V2_HEADER);
    out.push('\n');
    for r in rows {
        let t = &tenants[r.tenant];
        let item = &ITEMS[r.item];
        let value = r.value.to_string();
        csv_line(
            &mut out,
            &[
                &t.name,
                &t.uuid,
                t.kind,
                item.edition,
                item.offering_item,
                item.usage_name,
                item.unit.as_str(),
                sku_cell(spec, item),
                &r.start,
                &r.end,
                &value,
            ],
        );
    }
    out
}

#[derive(Serialize)]
struct JsonV2<'a> {
    params: JsonV2Params<'a>,
    tenants: Vec<JsonV2Row<'a>>,
}

#[derive(Serialize)]
struct JsonV2Params<'a> {
    kind: u32,
    gen_date: i64,
    begin_date: i64,
    end_date: i64,
    group_id: u64,
    name: &'a str,
    report_level: u32,
    report_type: u32,
}

#[derive(Serialize)]
struct JsonV2Row<'a> {
    tenant_uuid: &'a str,
    tenant_name: &'a str,
    tenant_kind: &'a str,
    edition: &'a str,
    offering_item: &'a str,
    usage_name: &'a str,
    measurement_unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<&'a str>,
    range_start: &'a str,
    range_end: &'a str,
    value: u64,
}

fn group_id(spec: &ReportSpec) -> u64 {
    1_000_000 + num(&["group", &spec.tenant_id]) % 9_000_000
}

fn render_json_v2(spec: &ReportSpec, tenants: &[Tenant], rows: &[Row]) -> Vec<u8> {
    let begin = unix_midnight(spec.start);
    let end_next_day = unix_midnight(spec.end) + 86_400;
    let doc = JsonV2 {
        params: JsonV2Params {
            kind: spec.kind.json_code(),
            gen_date: end_next_day,
            begin_date: begin,
            end_date: end_next_day - 1,
            group_id: group_id(spec),
            name: &tenants[0].name,
            report_level: spec.level.json_code(),
            report_type: 1,
        },
        tenants: rows
            .iter()
            .map(|r| {
                let t = &tenants[r.tenant];
                let item = &ITEMS[r.item];
                JsonV2Row {
                    tenant_uuid: &t.uuid,
                    tenant_name: &t.name,
                    tenant_kind: t.kind,
                    edition: item.edition,
                    offering_item: item.offering_item,
                    usage_name: item.usage_name,
                    measurement_unit: item.unit.as_str(),
                    sku: spec.show_skus.then(|| sku_cell(spec, item)),
                    range_start: &r.start,
                    range_end: &r.end,
                    value: r.value,
                }
            })
            .collect(),
    };
    // Only strings and integers: serialisation cannot fail.
    serde_json::to_vec(&doc).unwrap_or_default()
}

#[derive(Serialize)]
struct JsonV1<'a> {
    report: JsonV1Report<'a>,
    usages: Vec<JsonV1Usage<'a>>,
}

#[derive(Serialize)]
struct JsonV1Report<'a> {
    tenant_id: &'a str,
    tenant_name: &'a str,
    group_id: u64,
    kind: &'a str,
    level: &'a str,
    period_start: String,
    period_end: String,
}

#[derive(Serialize)]
struct JsonV1Usage<'a> {
    tenant_id: &'a str,
    tenant_name: &'a str,
    tenant_kind: &'a str,
    edition: &'a str,
    offering_item: &'a str,
    name: &'a str,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<&'a str>,
    start: &'a str,
    end: &'a str,
    value: u64,
}

fn render_json_v1(spec: &ReportSpec, tenants: &[Tenant], rows: &[Row]) -> Vec<u8> {
    let doc = JsonV1 {
        report: JsonV1Report {
            tenant_id: &tenants[0].uuid,
            tenant_name: &tenants[0].name,
            group_id: group_id(spec),
            kind: spec.kind.as_str(),
            level: spec.level.as_str(),
            period_start: spec.start.to_string(),
            period_end: spec.end.to_string(),
        },
        usages: rows
            .iter()
            .map(|r| {
                let t = &tenants[r.tenant];
                let item = &ITEMS[r.item];
                JsonV1Usage {
                    tenant_id: &t.uuid,
                    tenant_name: &t.name,
                    tenant_kind: t.kind,
                    edition: item.edition,
                    offering_item: item.offering_item,
                    name: item.usage_name,
                    unit: item.unit.as_str(),
                    sku: spec.show_skus.then(|| sku_cell(spec, item)),
                    start: &r.start,
                    end: &r.end,
                    value: r.value,
                }
            })
            .collect(),
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Human units for the legacy table formats: GB for storage and, per the docs,
/// DR compute points already divided by 3600.
fn legacy_value(item: &Item, value: u64) -> (String, &'static str) {
    match item.unit {
        Unit::Bytes => (
            format_hundredths(u128::from(value) * 100 / u128::from(GIB)),
            "GB",
        ),
        Unit::Seconds => (format_hundredths(u128::from(value) * 100 / 3600), "points"),
        Unit::Quantity => (value.to_string(), "pcs"),
    }
}

fn format_hundredths(v: u128) -> String {
    format!("{}.{:02}", v / 100, v % 100)
}

const LEGACY_HEADER: [&str; 10] = [
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

fn legacy_cells(spec: &ReportSpec, tenants: &[Tenant], r: &Row) -> [String; 10] {
    let t = &tenants[r.tenant];
    let item = &ITEMS[r.item];
    let (value, unit) = legacy_value(item, r.value);
    [
        t.name.clone(),
        t.uuid.clone(),
        t.kind.to_owned(),
        item.edition.to_owned(),
        item.title.to_owned(),
        value,
        unit.to_owned(),
        sku_cell(spec, item).to_owned(),
        r.start.clone(),
        r.end.clone(),
    ]
}

fn render_legacy_csv(spec: &ReportSpec, tenants: &[Tenant], rows: &[Row]) -> String {
    let mut out = String::with_capacity(rows.len() * 140);
    csv_line(&mut out, &LEGACY_HEADER);
    for r in rows {
        let cells = legacy_cells(spec, tenants, r);
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        csv_line(&mut out, &refs);
    }
    out
}

fn render_html(spec: &ReportSpec, tenants: &[Tenant], rows: &[Row]) -> String {
    let mut out = String::with_capacity(rows.len() * 300);
    let title = format!(
        "Usage report for {} ({} to {})",
        tenants[0].name, spec.start, spec.end
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
    for r in rows {
        out.push_str("<tr>");
        for c in legacy_cells(spec, tenants, r) {
            out.push_str("<td>");
            out.push_str(&html_escape(&c));
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}

/// Extra `csv_v2_0` rows, generated on demand so a multi-GiB body never sits in memory.
///
/// Every row has the same length except the last, which absorbs the
/// remainder so the padding is exactly `pad_bytes` long (or one row long when
/// `pad_bytes` is smaller than a row).
#[derive(Clone, Debug)]
pub(crate) struct Padding {
    rows: u64,
    row_len: u64,
    extra: u64,
    suffix: String,
}

const PAD_PREFIX: &str = "Padding Row ";

impl Padding {
    pub(crate) fn new(spec: &ReportSpec, pad_bytes: u64) -> Option<Padding> {
        if pad_bytes == 0 {
            return None;
        }
        let uuid = derived_uuid(&["padding", &spec.tenant_id]);
        // A SKU like the real rows, so clients checking SKU presence are not misled.
        let sku = if spec.show_skus && !spec.no_skus {
            "SP4APDENS"
        } else {
            ""
        };
        let suffix = format!(
            ",{uuid},customer,{EDITION},pw_padding,padding,quantity,{sku},{},{},1\n",
            spec.start, spec.end
        );
        let row_len = (PAD_PREFIX.len() + 12 + suffix.len()) as u64;
        let (rows, extra) = if pad_bytes < row_len {
            (1, 0)
        } else {
            (pad_bytes / row_len, pad_bytes % row_len)
        };
        Some(Padding {
            rows,
            row_len,
            extra,
            suffix,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.rows * self.row_len + self.extra
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    pub(crate) fn write_rows(&self, from: u64, to: u64, out: &mut Vec<u8>) {
        // The row number as 12 digits, counted up in place: formatting each of the millions of
        // rows of a GiB body made the sandbox, not the client, the limit of streaming benches.
        let mut digits = [b'0'; 12];
        let mut n = from;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        for i in from..to.min(self.rows) {
            out.extend_from_slice(PAD_PREFIX.as_bytes());
            out.extend_from_slice(&digits);
            for digit in digits.iter_mut().rev() {
                if *digit == b'9' {
                    *digit = b'0';
                } else {
                    *digit += 1;
                    break;
                }
            }
            if i + 1 == self.rows {
                out.resize(out.len() + self.extra as usize, b'x');
            }
            out.extend_from_slice(self.suffix.as_bytes());
        }
    }
}

/// The decoded bytes of one stored file: the rendered report plus optional padding.
#[derive(Debug)]
pub(crate) struct StoredBody {
    pub base: Bytes,
    pub padding: Option<Padding>,
}

impl StoredBody {
    pub(crate) fn build(spec: &ReportSpec, format: Format, stale: bool, pad_bytes: u64) -> Self {
        let padding = if format == Format::CsvV2 && !stale {
            Padding::new(spec, pad_bytes)
        } else {
            None
        };
        StoredBody {
            base: Bytes::from(render(spec, format, stale)),
            padding,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.base.len() as u64 + self.padding.as_ref().map_or(0, Padding::len)
    }

    /// The whole body in memory; callers only do this below the streaming threshold.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match &self.padding {
            None => self.base.clone(),
            Some(p) => {
                let mut out = Vec::with_capacity(self.len() as usize);
                out.extend_from_slice(&self.base);
                p.write_rows(0, p.rows(), &mut out);
                Bytes::from(out)
            }
        }
    }
}

/// Yields a stored body in chunks of roughly `CHUNK` bytes.
pub(crate) struct ChunkCursor {
    body: std::sync::Arc<StoredBody>,
    base_sent: bool,
    next_row: u64,
}

const CHUNK: usize = 64 * 1024;

impl ChunkCursor {
    pub(crate) fn new(body: std::sync::Arc<StoredBody>) -> Self {
        ChunkCursor {
            body,
            base_sent: false,
            next_row: 0,
        }
    }

    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.base_sent {
            self.base_sent = true;
            if !self.body.base.is_empty() {
                return Some(self.body.base.clone());
            }
        }
        let p = self.body.padding.as_ref()?;
        if self.next_row >= p.rows() {
            return None;
        }
        let per_chunk = (CHUNK as u64 / p.row_len).max(1);
        let to = (self.next_row + per_chunk).min(p.rows());
        let mut out = Vec::with_capacity(CHUNK + p.extra as usize + p.row_len as usize);
        p.write_rows(self.next_row, to, &mut out);
        self.next_row = to;
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind) -> ReportSpec {
        ReportSpec {
            tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
            kind,
            level: Level::AllCustomers,
            start: "2024-05-01".parse().unwrap(),
            end: "2024-05-31".parse().unwrap(),
            show_skus: true,
            hide_zero_usage: false,
            no_skus: false,
        }
    }

    fn csv_rows(bytes: &[u8]) -> Vec<csv::StringRecord> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        r.records().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn same_inputs_same_bytes() {
        for f in Format::NAMES {
            let f = Format::parse(f).unwrap();
            for k in [Kind::Daily, Kind::Summary, Kind::Current, Kind::Breakdown] {
                assert_eq!(render(&spec(k), f, false), render(&spec(k), f, false));
            }
        }
        let mut other = spec(Kind::Summary);
        other.tenant_id = "ede9f834-70b3-476c-83d9-736f9f8c7dae"
            .to_uppercase()
            .to_lowercase();
        assert_eq!(
            render(&other, Format::CsvV2, false),
            render(&spec(Kind::Summary), Format::CsvV2, false)
        );
        other.tenant_id = "0b4b1a7e-0000-4000-8000-000000000001".into();
        assert_ne!(
            render(&other, Format::CsvV2, false),
            render(&spec(Kind::Summary), Format::CsvV2, false)
        );
        assert_ne!(
            render(&spec(Kind::Summary), Format::CsvV2, true),
            render(&spec(Kind::Summary), Format::CsvV2, false)
        );
    }

    #[test]
    fn csv_v2_header_and_shape() {
        let body = render(&spec(Kind::Summary), Format::CsvV2, false);
        let text = String::from_utf8(body.clone()).unwrap();
        assert_eq!(text.lines().next(), Some(CSV_V2_HEADER));
        let rows = csv_rows(&body);
        assert!(rows.len() >= 3 * ITEMS.len());
        for r in &rows {
            assert_eq!(r.len(), 11);
            assert!(!r[7].is_empty(), "SKU expected with show_skus");
            assert_eq!(&r[8], "2024-05-01");
            assert_eq!(&r[9], "2024-05-31");
            r[10].parse::<u64>().unwrap();
        }
        assert!(rows.iter().any(|r| &r[10] == "0"), "zero rows expected");
        assert!(text.len() > 1000 && text.len() < 20_000, "{}", text.len());
    }

    #[test]
    fn dr_row_present_in_every_report() {
        for n in 0..40 {
            let mut s = spec(Kind::Summary);
            s.tenant_id = derived_uuid(&["t", &n.to_string()]);
            s.hide_zero_usage = true;
            let rows = csv_rows(&render(&s, Format::CsvV2, false));
            let dr: Vec<_> = rows
                .iter()
                .filter(|r| &r[4] == "pw_base_adv_dr_compute_points")
                .collect();
            assert!(dr.len() >= 2, "subject + at least one child");
            for r in dr {
                assert_eq!(&r[3], "pck_per_workload");
                assert_eq!(&r[5], "compute_points");
                assert_eq!(&r[6], "seconds");
                let v: u64 = r[10].parse().unwrap();
                assert!(v >= 7200 && v.is_multiple_of(36), "{v}");
            }
            assert!(rows.iter().all(|r| &r[10] != "0"));
        }
    }

    #[test]
    fn skus_hidden_or_missing() {
        let mut s = spec(Kind::Summary);
        s.no_skus = true;
        assert!(
            csv_rows(&render(&s, Format::CsvV2, false))
                .iter()
                .all(|r| r[7].is_empty())
        );
        let json: serde_json::Value =
            serde_json::from_slice(&render(&s, Format::JsonV2, false)).unwrap();
        assert_eq!(json["tenants"][0]["sku"], "");
        s.no_skus = false;
        s.show_skus = false;
        assert!(
            csv_rows(&render(&s, Format::CsvV2, false))
                .iter()
                .all(|r| r[7].is_empty())
        );
        let json: serde_json::Value =
            serde_json::from_slice(&render(&s, Format::JsonV2, false)).unwrap();
        assert!(json["tenants"][0].get("sku").is_none());
    }

    #[test]
    fn json_v2_matches_csv_v2() {
        let s = spec(Kind::Daily);
        let rows = csv_rows(&render(&s, Format::CsvV2, false));
        let json: serde_json::Value =
            serde_json::from_slice(&render(&s, Format::JsonV2, false)).unwrap();
        let items = json["tenants"].as_array().unwrap();
        assert_eq!(items.len(), rows.len());
        for (r, j) in rows.iter().zip(items) {
            assert_eq!(j["tenant_uuid"], &r[1]);
            assert_eq!(j["offering_item"], &r[4]);
            assert_eq!(j["range_start"], &r[8]);
            assert_eq!(j["value"].as_u64().unwrap().to_string(), &r[10]);
        }
        assert_eq!(json["params"]["kind"], 4);
        assert_eq!(json["params"]["begin_date"], 1_714_521_600);
        assert_eq!(json["params"]["gen_date"], 1_717_200_000);
        // 31 days of daily rows.
        assert_eq!(
            rows.iter()
                .filter(|r| &r[1] == s.tenant_id.as_str() && &r[4] == "pw_base_storage")
                .count(),
            31
        );
    }

    #[test]
    fn legacy_formats_convert_dr_to_points() {
        let s = spec(Kind::Summary);
        let v2 = csv_rows(&render(&s, Format::CsvV2, false));
        let secs: u64 = v2
            .iter()
            .find(|r| &r[4] == "pw_base_adv_dr_compute_points" && r[10] != *"0")
            .unwrap()[10]
            .parse()
            .unwrap();
        let legacy = String::from_utf8(render(&s, Format::Csv, false)).unwrap();
        let points = format_hundredths(u128::from(secs) * 100 / 3600);
        assert!(legacy.contains(&format!("{points},points")), "{points}");
        let html = String::from_utf8(render(&s, Format::Html, false)).unwrap();
        assert!(html.contains("<table>") && html.contains("points"));
        serde_json::from_slice::<serde_json::Value>(&render(&s, Format::JsonV1, false)).unwrap();
    }

    #[test]
    fn padding_rows_are_numbered_in_twelve_digits_from_any_start() {
        let padding = Padding::new(&spec(Kind::Summary), 100_000_000).unwrap();
        for (from, to) in [(0u64, 3u64), (8, 12), (999, 1001), (99_999, 100_001)] {
            let mut out = Vec::new();
            padding.write_rows(from, to, &mut out);
            let expected: String = (from..to)
                .map(|i| format!("{PAD_PREFIX}{i:012}{}", padding.suffix))
                .collect();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn padding_is_exact_and_streams() {
        let s = spec(Kind::Summary);
        for pad in [1u64, 150, 151, 10_000, 1_000_003] {
            let body = std::sync::Arc::new(StoredBody::build(&s, Format::CsvV2, false, pad));
            let whole = body.to_bytes();
            assert_eq!(whole.len() as u64, body.len());
            let row_len = body.padding.as_ref().unwrap().row_len;
            let base = body.base.len() as u64;
            if pad >= row_len {
                assert_eq!(body.len(), base + pad);
            } else {
                assert_eq!(body.len(), base + row_len);
            }
            let mut cursor = ChunkCursor::new(body.clone());
            let mut streamed = Vec::new();
            while let Some(c) = cursor.next_chunk() {
                streamed.extend_from_slice(&c);
            }
            assert_eq!(streamed, whole.to_vec());
            // Padding rows are still valid 11-column rows.
            for r in csv_rows(&whole) {
                assert_eq!(r.len(), 11);
            }
        }
    }

    #[test]
    fn time_helpers() {
        assert_eq!(rfc3339_utc(1_565_249_818), "2019-08-08T07:36:58+00:00");
        assert_eq!(unix_midnight("2024-03-01".parse().unwrap()), 1_709_251_200);
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }
}
