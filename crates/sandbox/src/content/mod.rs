//! Deterministic report files.
//!
//! Every byte is derived from the report's inputs through SHA-256, never from
//! the clock or an RNG, so two sandboxes given the same request produce
//! byte-identical files and end-to-end tests can compare checksums across runs.

use jiff::civil::Date;

use super::scenario::{ComputePointsItem, Layout};

mod csv_v2;
mod json;
mod legacy;
mod stored;
#[cfg(test)]
mod tests;
mod usage;

use csv_v2::*;
use json::*;
use legacy::*;
pub(crate) use stored::*;
use usage::*;

pub(crate) use csv_v2::RESERVED_NAMES;
pub(crate) use usage::{derived_uuid, digest};

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
    /// Only the report tenant's own usage.
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

    /// Documented numeric `report_level` of `json_v2_0` (`itself` has none documented: 0 is a
    /// guess).
    fn json_code(self) -> u32 {
        match self {
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
    pub(crate) tenant_id: String,
    pub(crate) kind: Kind,
    pub(crate) level: Level,
    pub(crate) start: Date,
    pub(crate) end: Date,
    pub(crate) show_skus: bool,
    pub(crate) hide_zero_usage: bool,
    pub(crate) no_skus: bool,
    /// The scenario's layout knobs as they apply to this report's tenant.
    pub(crate) content: ContentOptions,
}

/// Layout knobs with every default filled in (`scenario::ContentKnobs` says what each does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContentOptions {
    pub(crate) layout: Layout,
    pub(crate) sku_column: String,
    pub(crate) extra_columns: bool,
    pub(crate) reorder_columns: bool,
    pub(crate) edition_column: bool,
    pub(crate) compute_points_item: ComputePointsItem,
    pub(crate) infra_rows: bool,
    pub(crate) customer_trial: bool,
    pub(crate) partner_trial: bool,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            layout: Layout::Vendor,
            sku_column: "sku".to_owned(),
            extra_columns: false,
            reorder_columns: false,
            edition_column: true,
            compute_points_item: ComputePointsItem::default(),
            infra_rows: false,
            customer_trial: true,
            partner_trial: true,
        }
    }
}

/// `layout: html`: what a captive portal or an expired SSO session answers instead of a file.
pub(super) const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign in</title></head><body><h1>Sign in</h1><form method=\"post\" action=\"/login\"><label>Login <input name=\"login\"></label><label>Password <input type=\"password\" name=\"password\"></label><button type=\"submit\">Sign in</button></form></body></html>\n";

/// The `Content-Type` a stored file is served with.
pub(crate) fn content_type(spec: &ReportSpec, format: Format) -> &'static str {
    if spec.content.layout == Layout::Html {
        Format::Html.content_type()
    } else {
        format.content_type()
    }
}

pub(super) fn html_escape(s: &str) -> String {
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

/// UNIX time of `d`'s midnight UTC (dates reaching here are validated, so the fallback is
/// never used).
pub(crate) fn unix_midnight(d: Date) -> i64 {
    d.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map_or(0, |z| z.timestamp().as_second())
}

/// `2019-08-08T07:36:58+00:00`, the form the docs show for `created_at`.
pub(crate) fn rfc3339_utc(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// Render one stored file (without padding).
pub(crate) fn render(spec: &ReportSpec, format: Format, stale: bool) -> Vec<u8> {
    if spec.content.layout == Layout::Html {
        return LOGIN_PAGE.as_bytes().to_vec();
    }
    let ctx = Ctx::new(spec, stale);
    match format {
        Format::CsvV2 | Format::JsonV2 if spec.content.layout == Layout::Unknown => {
            render_unknown(&ctx, format)
        }
        Format::CsvV2 => render_csv_v2(&ctx).into_bytes(),
        Format::JsonV2 => render_json_v2(&ctx),
        Format::JsonV1 => render_json_v1(&ctx),
        Format::Csv => render_legacy_csv(&ctx).into_bytes(),
        Format::Html => render_html(&ctx).into_bytes(),
    }
}
