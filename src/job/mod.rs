//! The job file: what to fetch, for whom, for which periods (see `spec/job-file.md`).
//!
//! Loading happens in two steps. Serde reads the YAML into the `*File` types below, which mirror
//! the format one to one (and generate the JSON Schema); every value keeps its line and column.
//! Then [`load`] checks what serde cannot (dates against the as-of day, cross-field rules) and
//! builds the validated [`Job`]. Every problem is reported with its position and a fix.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Date;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::duration;
use crate::output::compare::CompareOptions;
use crate::paths::safe_component;
use crate::period::{Period, PeriodSpec};
use crate::report::{BillingMeasure, BillingRule, BillingScope, Format, ReportKind, ReportLevel};

mod diagnostic;
mod schema;
mod suggest;

pub use diagnostic::key_path;
pub use schema::{SCHEMA_URL, json_schema, modeline};

/// Job files larger than this are refused before parsing; 10 000 tenants take about 1 MiB.
const MAX_JOB_FILE_BYTES: u64 = 32 * 1024 * 1024;
const MAX_CONCURRENCY: u32 = 1_000;

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

/// A value together with where the job file wrote it.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct At<T>(pub Spanned<T>);

impl<T> At<T> {
    pub fn value(&self) -> &T {
        &self.0.value
    }

    pub fn pos(&self) -> Pos {
        Pos {
            line: self.0.referenced.line(),
            column: self.0.referenced.column(),
        }
    }
}

impl<T: JsonSchema> JsonSchema for At<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// An acronis-reports job file: which usage reports to create, for which tenants and periods.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "acronis-reports job file")]
pub struct JobFile {
    /// Version of the job-file format. Always 1.
    pub version: At<u32>,
    /// Where the API is.
    pub api: Option<ApiSection>,
    /// Report settings that apply to every tenant unless the tenant overrides them.
    pub defaults: Option<ReportSettings>,
    /// Checks run on the downloaded files.
    pub checks: Option<ChecksSection>,
    /// How billing.csv chooses each line's billable value. Default: the vendor's own rule.
    pub billing: Option<BillingSection>,
    /// How a period is compared with the one before it in the output folder's trail.
    pub compare: Option<CompareSection>,
    /// How often to ask whether a report is ready, and for how long.
    pub polling: Option<PollingSection>,
    /// Bounds on each download, whatever the server sends.
    pub limits: Option<LimitsSection>,
    /// How many reports are in flight at once (1 to 1000). Default: 4.
    pub concurrency: Option<At<u32>>,
    /// Where the files go.
    pub output: Option<OutputSection>,
    /// What to do with each report on the server once its files are safely on disk:
    /// `keep` (default) or `delete`.
    pub cleanup: Option<At<Cleanup>>,
    /// The tenants to report on. Each tenant × period is one report.
    pub tenants: At<Vec<TenantEntry>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Data-center URL, e.g. https://eu2-cloud.acronis.com (`/api/2` is appended). The
    /// ACRONIS_BASE_URL variable and the --base-url flag take precedence.
    pub base_url: Option<At<String>>,
}

/// Settings of one report request. Every field may appear in `defaults` and in a tenant entry.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Report kind. Default: usage_summary.
    pub kind: Option<At<ReportKind>>,
    /// Which tenants the report covers: itself, or which tenants under it. Default: direct_partners.
    pub level: Option<At<ReportLevel>>,
    /// File formats; each becomes one file. Default: [csv_v2_0, json_v2_0].
    pub formats: Option<At<Vec<At<Format>>>>,
    /// Leave out offering items without usage. Default: false.
    pub hide_zero_usage: Option<At<bool>>,
    /// Include SKUs (checked by `checks.skus`). Default: true.
    pub show_skus: Option<At<bool>>,
    /// Billing periods. Default: [previous_month].
    pub periods: Option<At<Vec<At<PeriodValue>>>>,
}

/// One tenant (`id`), or the children of a partner found at run time (`children_of`), with any
/// report settings that differ from `defaults`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    // Settings a tenant rarely has are boxed: with their spans they would make every entry of a
    // 10 000-tenant list ~1 KiB while the list is parsed.
    /// Tenant UUID, as shown in the management console.
    pub id: Option<At<String>>,
    /// Label used in output paths and the summary. Default: the id. Only with `id`.
    pub name: Option<At<String>>,
    /// Instead of `id`: report on the children of this tenant (UUID), listed from the API when
    /// the job runs. Each child is labelled by its name on the server.
    pub children_of: Option<Box<At<String>>>,
    /// With `children_of`: which kinds of children to report on. Default: [customer].
    pub kinds: Option<Box<At<Vec<At<TenantKind>>>>>,
    /// With `children_of`: only children whose UUID or name matches one of these (name globs with
    /// `*` and `?`, case-insensitive). Default: all.
    pub include: Option<Box<At<Vec<At<String>>>>>,
    /// With `children_of`: leave out children whose UUID or name matches one of these.
    pub exclude: Option<Box<At<Vec<At<String>>>>>,
    /// With `children_of`: also descend into child partners and folders. Default: false.
    pub recursive: Option<Box<At<bool>>>,
    /// With `children_of`: also report on disabled tenants. Default: false.
    pub include_disabled: Option<Box<At<bool>>>,
    /// With `children_of`: also report on trial tenants (`pricing_mode: trial`). Default: false.
    pub include_trial: Option<Box<At<bool>>>,
    /// Overrides `defaults.kind`.
    pub kind: Option<Box<At<ReportKind>>>,
    /// Overrides `defaults.level`.
    pub level: Option<Box<At<ReportLevel>>>,
    /// Overrides `defaults.formats`.
    pub formats: Option<Box<At<Vec<At<Format>>>>>,
    /// Overrides `defaults.hide_zero_usage`.
    pub hide_zero_usage: Option<Box<At<bool>>>,
    /// Overrides `defaults.show_skus`.
    pub show_skus: Option<Box<At<bool>>>,
    /// Overrides `defaults.periods`.
    pub periods: Option<Box<At<Vec<At<PeriodValue>>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecksSection {
    /// What to do when SKUs were asked for and rows lack them: `required` fails the report,
    /// `warn` only reports it, `off` skips the check. Default: required.
    pub skus: Option<At<SkuPolicy>>,
    /// Whether a downloaded file must be as long as the stored list's `size` says (as
    /// transferred, which is the compressed length, or decoded): `required` fetches it again
    /// and then fails the report, `warn` only reports it, `off` skips the check (for a server
    /// whose `size` means something else). Default: required.
    pub size: Option<At<SizePolicy>>,
}

/// Which figure of a usage row `billing.csv` bills. The default is the rule of the vendor's own
/// billing integration (acronis/acronis-cyber-cloud-whmcs, `MetricsFetcher.php`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingSection {
    /// `auto` (default): `total` for a customer's row, `production` for a partner's or any
    /// other; or `total`, `production`, `trial` for every row.
    pub scope: Option<At<BillingScope>>,
    /// `auto` (default): `delta` for the items of `delta_items`, `absolute` for the rest; or
    /// `absolute`, `delta`, `effective` for every row.
    pub measure: Option<At<BillingMeasure>>,
    /// With `measure: auto`: the offering items billed on `delta` (exact names). Default:
    /// [compute_points, pw_compute_points, dre_compute_points, p_dre_compute_points].
    pub delta_items: Option<At<Vec<At<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareSection {
    /// A tenant × offering item whose billable value changed by this share of the previous
    /// period's value or more is a warning (an annotation in CI), e.g. `50%`; `off` for none.
    /// Default: 50%.
    pub warn_change: Option<At<ChangeThreshold>>,
}

/// A share of the previous value in whole percent (`50%`, or `50`), or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeThreshold(pub Option<u32>);

impl ChangeThreshold {
    fn parse(text: &str) -> Result<Option<u32>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let number = text.strip_suffix('%').unwrap_or(text).trim();
        match number.parse::<u32>() {
            Ok(percent) if (1..=100_000).contains(&percent) => Ok(Some(percent)),
            _ => Err(format!(
                "{text:?} is not a change threshold: give whole percent from 1% to 100000%, e.g. 50%, or off"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for ChangeThreshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ThresholdVisitor;
        impl Visitor<'_> for ThresholdVisitor {
            type Value = ChangeThreshold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a share such as 50% or off")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                ChangeThreshold::parse(v)
                    .map(ChangeThreshold)
                    .map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom("give the threshold, e.g. 50%, rather than true"))
                } else {
                    Ok(ChangeThreshold(None))
                }
            }
        }
        deserializer.deserialize_any(ThresholdVisitor)
    }
}

impl JsonSchema for ChangeThreshold {
    fn schema_name() -> Cow<'static, str> {
        "ChangeThreshold".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "integer", "boolean"],
            // Not zero: a 0% threshold would warn on every unchanged line too (the parser
            // refuses it; the schema lets editors say so first).
            "pattern": "^([0-9]*[1-9][0-9]* ?%?|[Oo][Ff][Ff])$",
            "minimum": 1,
            "maximum": 100000,
            "description": "Whole percent of the previous value (e.g. 50%), or off.",
            "examples": ["50%", "off"]
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollingSection {
    /// The pace of polling while the run has learnt nothing yet, e.g. 5s. Default: 5s. A few
    /// scout reports first look after a quarter of it and then every ~15 % of the time elapsed;
    /// the others wait for what the scouts learn (looking themselves after 5× this at the
    /// latest). Once reports have finished, polls aim at the generation time learnt.
    pub initial_interval: Option<At<DurationValue>>,
    /// Longest wait between two polls of one report. Default: 60s (or initial_interval if longer).
    pub max_interval: Option<At<DurationValue>>,
    /// Give up on one report after this long; that report fails. Default: 30m.
    pub timeout: Option<At<DurationValue>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// The largest file a download may write (decoded), e.g. 8GiB or 500MB; a server sending
    /// more fails that report. Default: 4GiB.
    pub max_file_size: Option<At<ByteSize>>,
    /// The longest one download may take, all attempts' waits aside, e.g. 1h; a slower one
    /// fails that report. Default: 1h.
    pub download_timeout: Option<At<DurationValue>>,
}

/// A number of bytes: a whole number, or one with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB,
/// TiB), e.g. `8GiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    fn parse(text: &str) -> Result<u64, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit_bytes: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            other => {
                return Err(format!(
                    "`{other}` is not a size unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. 8GiB)"
                ));
            }
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_bytes))
            .ok_or_else(|| format!("`{text}` is not a size such as 500MB or 8GiB"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 500MB or 8GiB")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                ByteSize::parse(v).map(ByteSize).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ByteSize(v))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "integer"],
            "pattern": "^[0-9]+ ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$",
            "minimum": 1,
            "description": "Bytes: a whole number, or one with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB).",
            "examples": ["8GiB", "500MB"]
        })
    }
}

/// `limits`, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_file_size: u64,
    pub download_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_size: 4 << 30,
            download_timeout: Duration::from_secs(60 * 60),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Output folder, relative to the current directory. Default: billing-reports.
    pub dir: Option<At<String>>,
}

/// A tenant's place in the hierarchy.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    JsonSchema,
    serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TenantKind {
    Partner,
    Folder,
    Customer,
    Unit,
}

impl TenantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::Folder => "folder",
            Self::Customer => "customer",
            Self::Unit => "unit",
        }
    }
}

/// What a failed SKU check does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkuPolicy {
    /// A report with rows lacking SKUs fails (its files are still kept).
    Required,
    /// Rows lacking SKUs are reported as a warning.
    Warn,
    /// No SKU check.
    Off,
}

/// What a downloaded file whose length differs from the announced `size` does to its report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizePolicy {
    /// The file is fetched again; if it stays different, the report fails.
    #[default]
    Required,
    /// The file is kept and the difference reported as a warning.
    Warn,
    /// No size check.
    Off,
}

/// What happens to a report on the server after its files are saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    /// Leave the report on the server.
    Keep,
    /// Delete the report (`DELETE /reports/{id}`); a failed deletion is only a warning.
    Delete,
}

/// `500ms`, `5s`, `2m` or `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 500ms, 5s, 2m or 1h")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                duration::parse(v).map(DurationValue).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "`{v}` has no unit; durations need one: {v}ms, {v}s, {v}m or {v}h"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "`{v}` is not a duration; write a whole number and a unit, e.g. 5s"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!(
                    "`{v}` is not a duration; write a whole number and a unit, e.g. 500ms or 5s"
                )))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for DurationValue {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h)$",
            "description": "A whole number and a unit: ms, s, m or h (e.g. 500ms, 5s, 2m, 1h).",
            "examples": ["5s", "60s", "30m"]
        })
    }
}

/// `previous_month`, `month_to_date`, `YYYY-MM` or `{start: YYYY-MM-DD, end: YYYY-MM-DD}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodValue(pub PeriodSpec);

impl<'de> Deserialize<'de> for PeriodValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PeriodVisitor;
        impl<'de> Visitor<'de> for PeriodVisitor {
            type Value = PeriodValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "previous_month, month_to_date, YYYY-MM, or {start: YYYY-MM-DD, end: YYYY-MM-DD}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                PeriodSpec::parse_keyword(v)
                    .map(PeriodValue)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut start, mut end) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "start" => &mut start,
                        "end" => &mut end,
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown period key `{other}`; a date range has exactly `start` and `end`"
                            )));
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format!("duplicate period key `{key}`")));
                    }
                    let text: String = map.next_value()?;
                    *slot = Some(PeriodSpec::parse_date(&text).map_err(de::Error::custom)?);
                }
                match (start, end) {
                    (Some(start), Some(end)) => Ok(PeriodValue(PeriodSpec::Range { start, end })),
                    _ => Err(de::Error::custom(
                        "a date range needs both `start` and `end`, e.g. {start: 2026-11-01, end: 2026-11-15}",
                    )),
                }
            }
        }
        deserializer.deserialize_any(PeriodVisitor)
    }
}

impl JsonSchema for PeriodValue {
    fn schema_name() -> Cow<'static, str> {
        "Period".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "previous_month (the calendar month before the as-of date), month_to_date (from the first of the as-of month to the day before the as-of date; refused on the first), a month as YYYY-MM, or an inclusive date range.",
            "oneOf": [
                {"type": "string", "enum": ["previous_month", "month_to_date"]},
                {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["start", "end"],
                    "properties": {
                        "start": {"type": "string", "format": "date", "description": "First day, YYYY-MM-DD."},
                        "end": {"type": "string", "format": "date", "description": "Last day (inclusive), YYYY-MM-DD."}
                    }
                }
            ]
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The validated job
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub path: PathBuf,
    /// SHA-256 of the job file's bytes, recorded in the manifest.
    pub sha256: String,
    pub as_of: Date,
    pub base_url: Option<String>,
    pub sku_policy: SkuPolicy,
    /// `checks.size`.
    pub size_policy: SizePolicy,
    /// `limits`.
    pub limits: Limits,
    pub billing: BillingRule,
    /// `compare`.
    pub compare: CompareOptions,
    pub polling: Polling,
    pub concurrency: usize,
    pub output_dir: PathBuf,
    pub cleanup: Cleanup,
    /// The tenants listed by id, in job-file order.
    pub tenants: Vec<Tenant>,
    /// `children_of` entries, expanded at run time (see `discover`).
    pub discoveries: Vec<Discovery>,
}

/// A `children_of` entry: whose children, which of them, and the report settings for each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    pub parent_id: String,
    pub kinds: Vec<TenantKind>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub recursive: bool,
    pub include_disabled: bool,
    pub include_trial: bool,
    /// Report settings for every child; `id`, `name` and `dir_name` are filled per child.
    pub template: Tenant,
    /// How many `id` entries come before this one, so expanded children keep their place.
    pub after: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polling {
    pub initial_interval: Duration,
    pub max_interval: Duration,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// The tenant's folder name inside each period folder.
    pub dir_name: String,
    pub kind: ReportKind,
    pub level: ReportLevel,
    pub formats: Vec<Format>,
    pub hide_zero_usage: bool,
    pub show_skus: bool,
    pub periods: Vec<Period>,
}

/// A line and column in the job file (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub pos: Option<Pos>,
    pub message: String,
    /// What to write instead, when the message alone does not say it.
    pub help: Option<String>,
}

/// Everything wrong with a job file, each with its place.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Displayed as plain snippets (`render` draws them in colour).
    #[error("{}", diagnostic::render(path, text.as_deref(), problems, false))]
    Invalid {
        path: PathBuf,
        /// The file's text, to show the lines the problems are on (None when it is not text).
        text: Option<String>,
        problems: Vec<Problem>,
    },
}

impl JobError {
    /// The problems drawn as snippets; `color` for a terminal.
    pub fn render(&self, color: bool) -> String {
        match self {
            Self::Invalid {
                path,
                text,
                problems,
            } => diagnostic::render(path, text.as_deref(), problems, color),
            Self::Read { .. } => self.to_string(),
        }
    }
}

/// Reads, parses and checks a job file. Periods are resolved against `as_of`.
pub fn load(path: &Path, as_of: Date) -> Result<Job, JobError> {
    let read_error = |source| JobError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_JOB_FILE_BYTES {
        return Err(JobError::Invalid {
            path: path.to_owned(),
            text: None,
            problems: vec![Problem {
                pos: None,
                message: format!(
                    "the file is {size} bytes; job files are limited to {MAX_JOB_FILE_BYTES} bytes"
                ),
                help: None,
            }],
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    parse(path, &bytes, as_of)
}

/// Parses and checks job-file bytes; `path` is only used to name the file in errors.
pub fn parse(path: &Path, bytes: &[u8], as_of: Date) -> Result<Job, JobError> {
    let text = std::str::from_utf8(bytes).map_err(|e| JobError::Invalid {
        path: path.to_owned(),
        text: None,
        problems: vec![Problem {
            pos: None,
            message: format!("the file is not UTF-8 text (byte {})", e.valid_up_to()),
            help: Some("save the job file as UTF-8".into()),
        }],
    })?;
    let invalid = |problems| JobError::Invalid {
        path: path.to_owned(),
        text: Some(text.to_owned()),
        problems,
    };
    if let Some(problem) = suggest::layout_problem(text) {
        return Err(invalid(vec![problem]));
    }
    // Serde stops at the first error. So that one pass fixes them all, a line with an error
    // that can be left out (an optional `key: value` on one line) is blanked and the file read
    // again, collecting each error, up to the number shown.
    let mut problems = Vec::new();
    let mut attempt = Cow::Borrowed(text);
    let file = loop {
        match serde_saphyr::from_str_with_options::<JobFile>(&attempt, yaml_options()) {
            Ok(file) => break Some(file),
            Err(e) => {
                problems.push(yaml_problem(&e, text));
                let line = e.location().map(|loc| loc.line());
                match line.and_then(|line| without_line(&attempt, line)) {
                    Some(next) if problems.len() < diagnostic::MAX_SHOWN => {
                        attempt = Cow::Owned(next);
                    }
                    _ => break None,
                }
            }
        }
    };
    let Some(file) = file else {
        return Err(invalid(problems));
    };
    let sha256 = hex::encode(Sha256::digest(bytes));
    match Validator::default().validate(file, path, sha256, as_of) {
        Ok(job) if problems.is_empty() => Ok(job),
        Ok(_) => Err(invalid(problems)),
        Err(more) => {
            problems.extend(more);
            problems.sort_by_key(|p| p.pos);
            Err(invalid(problems))
        }
    }
}

/// `text` with line `line` (1-based) blanked, if that line is an optional `key: value` whose
/// value is all on it (nothing indented below), so the rest still parses the same way.
fn without_line(text: &str, line: u64) -> Option<String> {
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    let lines: Vec<&str> = text.lines().collect();
    let this = *lines.get(index)?;
    let indent = this.len() - this.trim_start().len();
    let (key, value) = this.trim_start().split_once(':')?;
    let simple_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !simple_key || matches!(key, "version" | "tenants") || value.trim().is_empty() {
        return None;
    }
    let nested = lines[index + 1..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|next| next.len() - next.trim_start().len() > indent);
    if nested {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if i != index {
            out.push_str(l);
        }
        out.push('\n');
    }
    Some(out)
}

fn yaml_options() -> serde_saphyr::Options {
    // Limits far above any real job file (10 000 tenants use ~100 000 events) that still stop
    // alias bombs and deep nesting early, in bounded memory.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 2_000_000;
    budget.max_nodes = 1_000_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 32;
    budget.max_documents = 1;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 4 * 1024 * 1024;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.alias_limits.max_total_replayed_events = 100_000;
    options
}

fn yaml_problem(error: &serde_saphyr::Error, text: &str) -> Problem {
    let pos = error.location().map(|loc| Pos {
        line: loc.line(),
        column: loc.column(),
    });
    let raw = error.without_snippet().to_string();
    let message = strip_location_suffix(&raw);
    // A missing key is missing from the whole file, not from the line the reader stopped at.
    let pos = pos.filter(|_| !message.starts_with("missing field"));
    let key = pos.and_then(|pos| key_path(text, pos));
    let (message, help) = suggest::explain(message, key.as_deref());
    Problem { pos, message, help }
}

/// Removes the ` at line N, column M` that the YAML error adds, since the snippet shows where.
fn strip_location_suffix(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains("column") => &message[..i],
        _ => message,
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn problem(&mut self, pos: Pos, message: impl Into<String>) {
        // The messages put the fix after the first `; `; the snippet shows it as help.
        let message: String = message.into();
        let (message, help) = match message.split_once("; ") {
            Some((what, fix)) => (what.to_owned(), Some(fix.to_owned())),
            None => (message, None),
        };
        self.problems.push(Problem {
            pos: Some(pos),
            message,
            help,
        });
    }

    fn validate(
        mut self,
        file: JobFile,
        path: &Path,
        sha256: String,
        as_of: Date,
    ) -> Result<Job, Vec<Problem>> {
        if *file.version.value() != 1 {
            self.problem(
                file.version.pos(),
                format!(
                    "unsupported job-file version {}; this tool reads version 1",
                    file.version.value()
                ),
            );
        }
        let concurrency = match &file.concurrency {
            Some(c) if !(1..=MAX_CONCURRENCY).contains(c.value()) => {
                self.problem(
                    c.pos(),
                    format!(
                        "concurrency must be between 1 and {MAX_CONCURRENCY}, not {}; write a whole number in that range (default 4)",
                        c.value()
                    ),
                );
                1
            }
            Some(c) => *c.value() as usize,
            None => 4,
        };
        let polling = self.polling(file.polling.as_ref());
        let sku_policy = file
            .checks
            .as_ref()
            .and_then(|c| c.skus.as_ref())
            .map_or(SkuPolicy::Required, |p| *p.value());
        let size_policy = file
            .checks
            .as_ref()
            .and_then(|c| c.size.as_ref())
            .map_or(SizePolicy::Required, |p| *p.value());
        let limits = self.limits(file.limits.as_ref());
        let billing = self.billing(file.billing.as_ref());
        let compare = CompareOptions {
            warn_change_percent: file
                .compare
                .as_ref()
                .and_then(|c| c.warn_change.as_ref())
                .map_or(CompareOptions::default().warn_change_percent, |t| {
                    t.value().0
                }),
        };
        let defaults = file.defaults.unwrap_or_default();
        let (tenants, discoveries) = self.tenants(&file.tenants, &defaults, as_of);
        if !self.problems.is_empty() {
            self.problems.sort_by_key(|p| p.pos);
            return Err(self.problems);
        }
        Ok(Job {
            path: path.to_owned(),
            sha256,
            as_of,
            base_url: file
                .api
                .and_then(|api| api.base_url)
                .map(|url| url.value().clone()),
            sku_policy,
            size_policy,
            limits,
            billing,
            compare,
            polling,
            concurrency,
            output_dir: file.output.and_then(|o| o.dir).map_or_else(
                || PathBuf::from("billing-reports"),
                |d| PathBuf::from(d.value()),
            ),
            cleanup: file.cleanup.map_or(Cleanup::Keep, |c| *c.value()),
            tenants,
            discoveries,
        })
    }

    fn billing(&mut self, section: Option<&BillingSection>) -> BillingRule {
        let mut rule = BillingRule::default();
        let Some(section) = section else {
            return rule;
        };
        if let Some(scope) = &section.scope {
            rule.scope = *scope.value();
        }
        if let Some(measure) = &section.measure {
            rule.measure = *measure.value();
        }
        if let Some(items) = &section.delta_items {
            if rule.measure != BillingMeasure::Auto {
                self.problem(
                    items.pos(),
                    format!(
                        "billing.delta_items only applies with `measure: auto`; with `measure: {}` every item is billed on that measure: remove delta_items or set measure to auto",
                        rule.measure
                    ),
                );
            }
            rule.delta_items.clear();
            for item in items.value() {
                let name = item.value().trim();
                if name.is_empty() {
                    self.problem(item.pos(), "an empty name in billing.delta_items; give an offering item name such as pw_compute_points");
                } else if !rule.delta_items.iter().any(|i| i == name) {
                    rule.delta_items.push(name.to_owned());
                }
            }
        }
        rule
    }

    fn limits(&mut self, section: Option<&LimitsSection>) -> Limits {
        let defaults = Limits::default();
        let Some(section) = section else {
            return defaults;
        };
        if let Some(size) = section.max_file_size.as_ref().filter(|s| s.value().0 == 0) {
            self.problem(size.pos(), "limits.max_file_size must be larger than zero");
        }
        if let Some(t) = section
            .download_timeout
            .as_ref()
            .filter(|t| t.value().0.is_zero())
        {
            self.problem(t.pos(), "limits.download_timeout must be longer than zero");
        }
        Limits {
            max_file_size: section
                .max_file_size
                .as_ref()
                .map_or(defaults.max_file_size, |s| s.value().0),
            download_timeout: section
                .download_timeout
                .as_ref()
                .map_or(defaults.download_timeout, |t| t.value().0),
        }
    }

    fn polling(&mut self, section: Option<&PollingSection>) -> Polling {
        let get = |field: Option<&At<DurationValue>>, default: u64| {
            field.map_or(Duration::from_secs(default), |d| d.value().0)
        };
        let initial_interval = get(section.and_then(|s| s.initial_interval.as_ref()), 5);
        let polling = Polling {
            initial_interval,
            // An initial interval above the default cap raises the cap with it.
            max_interval: section
                .and_then(|s| s.max_interval.as_ref())
                .map_or(Duration::from_secs(60).max(initial_interval), |d| {
                    d.value().0
                }),
            timeout: get(section.and_then(|s| s.timeout.as_ref()), 30 * 60),
        };
        if let Some(section) = section {
            for (name, field) in [
                ("initial_interval", &section.initial_interval),
                ("max_interval", &section.max_interval),
                ("timeout", &section.timeout),
            ] {
                if let Some(f) = field.as_ref().filter(|f| f.value().0.is_zero()) {
                    self.problem(
                        f.pos(),
                        format!("polling.{name} must be longer than zero; e.g. 5s"),
                    );
                }
            }
            if let Some(max) = &section.max_interval
                && polling.max_interval < polling.initial_interval
            {
                self.problem(
                    max.pos(),
                    format!(
                        "polling.max_interval ({}) is shorter than polling.initial_interval ({}); make it at least as long",
                        duration::format(polling.max_interval),
                        duration::format(polling.initial_interval)
                    ),
                );
            }
        }
        polling
    }

    fn tenants(
        &mut self,
        entries: &At<Vec<TenantEntry>>,
        defaults: &ReportSettings,
        as_of: Date,
    ) -> (Vec<Tenant>, Vec<Discovery>) {
        if entries.value().is_empty() {
            self.problem(
                entries.pos(),
                "no tenants; list at least one under `tenants:` as `- id: <tenant UUID>`",
            );
        }
        let mut seen_names: HashMap<String, Pos> = HashMap::new();
        let mut seen_reports: BTreeMap<(String, Period, ReportKind, ReportLevel), Pos> =
            BTreeMap::new();
        let mut tenants = Vec::with_capacity(entries.value().len());
        let mut discoveries = Vec::new();
        for entry in entries.value() {
            let (id_field, discovery) = match (&entry.id, &entry.children_of) {
                (Some(id), None) => {
                    self.refuse_discovery_keys(entry);
                    (id, false)
                }
                (None, Some(parent)) => (&**parent, true),
                (Some(id), Some(_)) => {
                    self.problem(
                        id.pos(),
                        "an entry has either `id` (one tenant) or `children_of` (a partner's children), not both; keep one of them",
                    );
                    continue;
                }
                (None, None) => {
                    self.problem(
                        entries.pos(),
                        "a tenant entry has neither `id` nor `children_of`; add `id: <tenant UUID>` for one tenant, or `children_of: <partner UUID>` for a partner's children",
                    );
                    continue;
                }
            };
            let id = id_field.value().trim().to_ascii_lowercase();
            if !is_uuid(&id) {
                self.problem(
                    id_field.pos(),
                    format!(
                        "tenant id `{}` is not a UUID; use the tenant's UUID (e.g. ede9f834-70b3-476c-83d9-736f9f8c7dae) and put a label in `name`",
                        id_field.value()
                    ),
                );
            }
            let name = if discovery {
                if let Some(name) = &entry.name {
                    self.problem(
                        name.pos(),
                        "`name` labels one tenant; children found with `children_of` are labelled by their names on the server",
                    );
                }
                format!("children of {id}")
            } else {
                entry
                    .name
                    .as_ref()
                    .map_or_else(|| id.clone(), |n| n.value().trim().to_owned())
            };
            let name_pos = entry.name.as_ref().map_or(id_field.pos(), At::pos);
            if name.is_empty() {
                self.problem(
                    name_pos,
                    "tenant name is empty; give a label or leave `name` out",
                );
            }
            let dir_name = safe_component(&name);
            // Folder names must differ even on case-insensitive file systems (macOS, Windows).
            if !discovery && let Some(first) = seen_names.insert(dir_name.to_lowercase(), name_pos)
            {
                self.problem(
                    name_pos,
                    format!(
                        "tenant name `{name}` is already used on line {} (names label output folders and must be unique, ignoring case); give one of them another `name`",
                        first.line
                    ),
                );
            }
            let kind = pick(entry.kind.as_deref(), defaults.kind.as_ref())
                .unwrap_or(ReportKind::UsageSummary);
            let level = pick(entry.level.as_deref(), defaults.level.as_ref())
                .unwrap_or(ReportLevel::DirectPartners);
            let formats = self.formats(entry.formats.as_deref().or(defaults.formats.as_ref()));
            let periods_field = entry.periods.as_deref().or(defaults.periods.as_ref());
            let periods = self.periods(periods_field, &name, as_of, id_field.pos());
            if !discovery {
                for period in &periods {
                    let key = (id.clone(), *period, kind, level);
                    if let Some(first) = seen_reports.insert(key, id_field.pos()) {
                        self.problem(
                            id_field.pos(),
                            format!(
                                "tenant {name} asks for the {kind} / {level} report of {period} a second time (first on line {}); remove the duplicate",
                                first.line
                            ),
                        );
                    }
                }
            }
            let tenant = Tenant {
                id,
                name,
                dir_name,
                kind,
                level,
                formats,
                hide_zero_usage: pick(
                    entry.hide_zero_usage.as_deref(),
                    defaults.hide_zero_usage.as_ref(),
                )
                .unwrap_or(false),
                show_skus: pick(entry.show_skus.as_deref(), defaults.show_skus.as_ref())
                    .unwrap_or(true),
                periods,
            };
            if discovery {
                discoveries.push(self.discovery(entry, tenant, tenants.len()));
            } else {
                tenants.push(tenant);
            }
        }
        (tenants, discoveries)
    }

    fn refuse_discovery_keys(&mut self, entry: &TenantEntry) {
        let positions = [
            ("kinds", entry.kinds.as_deref().map(At::pos)),
            ("include", entry.include.as_deref().map(At::pos)),
            ("exclude", entry.exclude.as_deref().map(At::pos)),
            ("recursive", entry.recursive.as_deref().map(At::pos)),
            (
                "include_disabled",
                entry.include_disabled.as_deref().map(At::pos),
            ),
            ("include_trial", entry.include_trial.as_deref().map(At::pos)),
        ];
        for (key, pos) in positions {
            if let Some(pos) = pos {
                self.problem(
                    pos,
                    format!("`{key}` only applies to `children_of` entries, not to a tenant given by `id`; remove it, or write `children_of:` instead of `id:` to report on the tenant's children"),
                );
            }
        }
    }

    fn discovery(&mut self, entry: &TenantEntry, template: Tenant, after: usize) -> Discovery {
        let patterns = |field: Option<&At<Vec<At<String>>>>| -> Vec<String> {
            field
                .map(|list| {
                    list.value()
                        .iter()
                        .map(|p| p.value().trim().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let kinds = match entry.kinds.as_deref() {
            Some(kinds) if kinds.value().is_empty() => {
                self.problem(
                    kinds.pos(),
                    "`kinds` is empty; list at least one, e.g. [customer]",
                );
                Vec::new()
            }
            Some(kinds) => kinds.value().iter().map(|k| *k.value()).collect(),
            None => vec![TenantKind::Customer],
        };
        let flag = |field: Option<&At<bool>>| field.is_some_and(|f| *f.value());
        Discovery {
            parent_id: template.id.clone(),
            kinds,
            include: patterns(entry.include.as_deref()),
            exclude: patterns(entry.exclude.as_deref()),
            recursive: flag(entry.recursive.as_deref()),
            include_disabled: flag(entry.include_disabled.as_deref()),
            include_trial: flag(entry.include_trial.as_deref()),
            template,
            after,
        }
    }

    fn formats(&mut self, field: Option<&At<Vec<At<Format>>>>) -> Vec<Format> {
        let Some(field) = field else {
            return vec![Format::CsvV2, Format::JsonV2];
        };
        if field.value().is_empty() {
            self.problem(
                field.pos(),
                "`formats` is empty; list at least one, e.g. [csv_v2_0]",
            );
        }
        let mut formats: Vec<Format> = Vec::new();
        for format in field.value() {
            if formats.contains(format.value()) {
                self.problem(
                    format.pos(),
                    format!("format {} is listed twice; remove one", format.value()),
                );
            } else {
                formats.push(*format.value());
            }
        }
        formats
    }

    fn periods(
        &mut self,
        field: Option<&At<Vec<At<PeriodValue>>>>,
        tenant: &str,
        as_of: Date,
        tenant_pos: Pos,
    ) -> Vec<Period> {
        let specs: Vec<(PeriodSpec, Pos)> = match field {
            None => vec![(PeriodSpec::PreviousMonth, tenant_pos)],
            Some(list) => {
                if list.value().is_empty() {
                    self.problem(
                        list.pos(),
                        "`periods` is empty; list at least one, e.g. [previous_month]",
                    );
                }
                list.value()
                    .iter()
                    .map(|p| (p.value().0.clone(), p.pos()))
                    .collect()
            }
        };
        let mut periods = Vec::with_capacity(specs.len());
        for (spec, pos) in specs {
            match spec.resolve(as_of) {
                Ok(period) if periods.contains(&period) => self.problem(
                    pos,
                    format!("tenant {tenant}: period {period} is listed twice"),
                ),
                Ok(period) => periods.push(period),
                Err(e) => self.problem(pos, format!("tenant {tenant}: {e}")),
            }
        }
        periods
    }
}

fn pick<T: Copy>(own: Option<&At<T>>, default: Option<&At<T>>) -> Option<T> {
    own.or(default).map(|v| *v.value())
}

pub(crate) fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_take_units() {
        assert_eq!(ByteSize::parse("8GiB"), Ok(8 << 30));
        assert_eq!(ByteSize::parse("500MB"), Ok(500_000_000));
        assert_eq!(ByteSize::parse("1024"), Ok(1024));
        assert_eq!(ByteSize::parse("7 KiB"), Ok(7 << 10));
        assert!(
            ByteSize::parse("5 parsecs")
                .unwrap_err()
                .contains("not a size unit")
        );
        assert!(ByteSize::parse("99999999999TiB").is_err());
        assert!(ByteSize::parse("GiB").is_err());
    }
    use jiff::civil::date;

    const ACME: &str = "ede9f834-70b3-476c-83d9-736f9f8c7dae";

    fn parse_text(text: &str) -> Result<Job, JobError> {
        parse(Path::new("job.yml"), text.as_bytes(), date(2026, 11, 27))
    }

    fn problems(text: &str) -> String {
        parse_text(text)
            .expect_err("job should be refused")
            .to_string()
    }

    #[test]
    fn minimal_job_gets_defaults() {
        let job = parse_text(&format!("version: 1\ntenants:\n  - id: {ACME}\n")).unwrap();
        let tenant = &job.tenants[0];
        assert_eq!(tenant.name, ACME);
        assert_eq!(tenant.formats, vec![Format::CsvV2, Format::JsonV2]);
        assert_eq!(tenant.periods[0].label(), "2026-10");
        assert_eq!(job.concurrency, 4);
        assert_eq!(job.polling.timeout, Duration::from_secs(1800));
        assert_eq!(job.output_dir, PathBuf::from("billing-reports"));
    }

    #[test]
    fn tenant_overrides_defaults() {
        let job = parse_text(&format!(
            "version: 1\ndefaults:\n  kind: usage_daily\n  formats: [json_v2_0]\n  periods: [2026-09]\ntenants:\n  - id: {ACME}\n    name: acme\n    formats: [csv_v2_0]\n    periods: [{{start: 2026-11-01, end: 2026-11-15}}]\n"
        ))
        .unwrap();
        let tenant = &job.tenants[0];
        assert_eq!(tenant.kind, ReportKind::UsageDaily);
        assert_eq!(tenant.formats, vec![Format::CsvV2]);
        assert_eq!(tenant.periods[0].label(), "2026-11-01_2026-11-15");
    }

    #[test]
    fn unknown_key_names_position_and_nearest_key() {
        let message = problems(&format!(
            "version: 1\ntenants:\n  - id: {ACME}\n    fromats: [csv]\n"
        ));
        assert!(message.contains("--> job.yml:4:5"), "{message}");
        assert!(
            message.contains("fromats") && message.contains("did you mean `formats`?"),
            "{message}"
        );
    }

    #[test]
    fn unknown_kind_lists_valid_kinds() {
        let message = problems(&format!(
            "version: 1\ndefaults:\n  kind: usage_sumary\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(message.contains("--> job.yml:3"), "{message}");
        assert!(
            message.contains("usage_daily") && message.contains("did you mean `usage_summary`?"),
            "{message}"
        );
    }

    #[test]
    fn level_itself_is_accepted_and_suggested() {
        let job = parse_text(&format!(
            "version: 1\ndefaults:\n  level: itself\ntenants:\n  - id: {ACME}\n"
        ))
        .unwrap();
        assert_eq!(job.tenants[0].level, ReportLevel::Itself);
        let message = problems(&format!(
            "version: 1\ndefaults:\n  level: itsef\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(message.contains("--> job.yml:3"), "{message}");
        assert!(message.contains("did you mean `itself`?"), "{message}");
    }

    #[test]
    fn billing_rule_defaults_to_the_vendors_and_can_be_overridden() {
        let job = parse_text(&format!("version: 1\ntenants:\n  - id: {ACME}\n")).unwrap();
        assert_eq!(job.billing, BillingRule::default());
        let job = parse_text(&format!(
            "version: 1\nbilling:\n  scope: total\n  delta_items: [pw_compute_points, pw_base_adv_dr_compute_points, pw_compute_points]\ntenants:\n  - id: {ACME}\n"
        ))
        .unwrap();
        assert_eq!(job.billing.scope, BillingScope::Total);
        assert_eq!(job.billing.measure, BillingMeasure::Auto);
        assert_eq!(
            job.billing.delta_items,
            ["pw_compute_points", "pw_base_adv_dr_compute_points"]
        );
    }

    #[test]
    fn billing_settings_that_cannot_apply_are_refused_with_their_place() {
        let message = problems(&format!(
            "version: 1\nbilling:\n  measure: absolute\n  delta_items: [compute_points]\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(message.contains("--> job.yml:4"), "{message}");
        assert!(
            message.contains("only applies with `measure: auto`"),
            "{message}"
        );
        let message = problems(&format!(
            "version: 1\nbilling:\n  delta_items: [\" \"]\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(
            message.contains("an empty name in billing.delta_items"),
            "{message}"
        );
        let message = problems(&format!(
            "version: 1\nbilling:\n  scope: customer\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(message.contains("--> job.yml:3"), "{message}");
        assert!(message.contains("production"), "{message}");
    }

    #[test]
    fn bare_number_duration_asks_for_a_unit() {
        let message = problems(&format!(
            "version: 1\npolling:\n  timeout: 30\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(message.contains("--> job.yml:3"), "{message}");
        assert!(message.contains("30s"), "{message}");
    }

    #[test]
    fn future_and_reversed_periods_name_tenant_and_line() {
        let message = problems(&format!(
            "version: 1\ntenants:\n  - id: {ACME}\n    name: acme\n    periods:\n      - 2026-12\n      - {{start: 2026-10-10, end: 2026-10-01}}\n"
        ));
        assert!(
            message.contains("job.yml:6:")
                && message.contains("tenant acme")
                && message.contains("future"),
            "{message}"
        );
        assert!(
            message.contains("job.yml:7:") && message.contains("swap"),
            "{message}"
        );
    }

    #[test]
    fn month_to_date_on_the_first_names_the_place_and_previous_month() {
        let text = format!(
            "version: 1\ntenants:\n  - id: {ACME}\n    name: acme\n    periods: [previous_month, month_to_date]\n"
        );
        let message = parse(Path::new("job.yml"), text.as_bytes(), date(2026, 12, 1))
            .expect_err("refused on the first")
            .to_string();
        assert!(message.contains("--> job.yml:5:31"), "{message}");
        assert!(
            message.contains("tenant acme") && message.contains("use previous_month"),
            "{message}"
        );
        let job = parse(Path::new("job.yml"), text.as_bytes(), date(2026, 12, 2)).unwrap();
        assert_eq!(job.tenants[0].periods[1].label(), "2026-12-01_2026-12-01");
    }

    #[test]
    fn duplicate_keys_and_malformed_yaml_are_refused_with_position() {
        let message = problems(&format!(
            "version: 1\nversion: 1\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(
            message.contains("job.yml:2:") && message.to_lowercase().contains("duplicate"),
            "{message}"
        );
        let message = problems("version: 1\ntenants: [\n");
        assert!(message.contains("--> job.yml"), "{message}");
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        text.push_str(&format!("version: 1\ntenants:\n  - id: {ACME}\n"));
        let started = std::time::Instant::now();
        let message = problems(&text);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert!(message.contains("--> job.yml"), "{message}");
    }

    #[test]
    fn bad_ids_and_duplicate_names_are_reported_together() {
        let message = problems(&format!(
            "version: 1\ntenants:\n  - id: acme\n  - id: {ACME}\n    name: Acme\n  - id: 0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11\n    name: acme\n"
        ));
        assert!(
            message.contains("job.yml:3:") && message.contains("not a UUID"),
            "{message}"
        );
        assert!(
            message.contains("job.yml:7:") && message.contains("already used on line 5"),
            "{message}"
        );
    }

    #[test]
    fn independent_errors_are_reported_together_with_key_paths_and_fixes() {
        let message = problems(&format!(
            "version: 1\ndefaults:\n  fromats: [csv_v2_0]\n  kind: summary\npolling:\n  timeout: 120\ntenants:\n  - id: acme\n  - id: {ACME}\n    formats: [csv, json_v2]\n"
        ));
        for needle in [
            "--> job.yml:3:3",
            "in `defaults.fromats`",
            "did you mean `formats`?",
            "--> job.yml:4:9",
            "did you mean `usage_summary`?",
            "--> job.yml:6:12",
            "in `polling.timeout`",
            "120s",
            "--> job.yml:8:9",
            "in `tenants[0].id`",
            "in `tenants[1].formats[1]`",
            "did you mean `json_v2_0`?",
            "job.yml: 5 problems",
        ] {
            assert!(message.contains(needle), "{needle:?} not in:\n{message}");
        }
        // The next error of the same list item shows once the first is fixed.
        let message = problems(&format!(
            "version: 1\ntenants:\n  - id: {ACME}\n    formats: [csv, json_v2]\n"
        ));
        assert!(
            message.contains("in `tenants[0].formats[1]`")
                && message.contains("did you mean `json_v2_0`?"),
            "{message}"
        );
    }

    #[test]
    fn layout_mistakes_get_plain_words() {
        let message = problems("# nothing yet\n");
        assert!(
            message.contains("the job file is empty") && message.contains("version: 1"),
            "{message}"
        );
        let message = problems(&format!("version: 1\ntenants:\n\t- id: {ACME}\n"));
        assert!(
            message.contains("a tab in the indentation") && message.contains("--> job.yml:3:1"),
            "{message}"
        );
        let message = problems(&format!(
            "version: 1\ntenants:\n  - id: {ACME}\n   name: acme\n"
        ));
        assert!(
            message.contains("the indentation does not match") && message.contains("--> job.yml:4"),
            "{message}"
        );
        let message = problems(&format!(
            "version: 1\ndefaults:\n  periods: previous_month\ntenants:\n  - id: {ACME}\n"
        ));
        assert!(
            message.contains("`defaults.periods` takes a list")
                && message.contains("`periods: [previous_month]`"),
            "{message}"
        );
    }

    #[test]
    fn coloured_rendering_only_adds_styles() {
        let error = parse_text(&format!(
            "version: 1\npolling:\n  timeout: 120\ntenants:\n  - id: {ACME}\n"
        ))
        .expect_err("refused");
        let coloured = error.render(true);
        assert!(coloured.contains("\u{1b}["), "{coloured}");
        let stripped: String = {
            let mut out = String::new();
            let mut chars = coloured.chars();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        };
        assert_eq!(stripped, error.to_string());
    }

    #[test]
    fn schema_describes_every_field() {
        let schema = serde_json::to_value(json_schema()).unwrap();
        let text = schema.to_string();
        for word in [
            "tenants",
            "initial_interval",
            "usage_breakdown",
            "json_v2_0",
            "previous_month",
        ] {
            assert!(text.contains(word), "schema lacks {word}");
        }
    }
}
