//! The job file's YAML shape: one type per section, mirroring the format one to one (these
//! types also generate the JSON Schema). Every value keeps its place in the file ([`At`]).

use std::borrow::Cow;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::report::{BillingMeasure, BillingScope, Format, ReportKind, ReportLevel};

use super::*;

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

/// A value together with where the job file wrote it.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct At<T>(pub Spanned<T>);

impl<T> At<T> {
    pub(crate) fn value(&self) -> &T {
        &self.0.value
    }

    pub(crate) fn pos(&self) -> Pos {
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
pub(crate) struct JobFile {
    /// Version of the job-file format. Always 1.
    pub(crate) version: At<u32>,
    /// Where the API is.
    pub(crate) api: Option<ApiSection>,
    /// Report settings that apply to every tenant unless the tenant overrides them.
    pub(crate) defaults: Option<ReportSettings>,
    /// Checks run on the downloaded files.
    pub checks: Option<ChecksSection>,
    /// How billing.csv chooses each line's billable value. Default: the vendor's own rule.
    pub(crate) billing: Option<BillingSection>,
    /// How a period is compared with the one before it in the output folder's trail.
    pub(crate) compare: Option<CompareSection>,
    /// How often to ask whether a report is ready, and for how long.
    pub polling: Option<PollingSection>,
    /// Bounds on each download, whatever the server sends.
    pub(crate) limits: Option<LimitsSection>,
    /// How many reports are in flight at once (1 to 1000). Default: 4.
    pub concurrency: Option<At<u32>>,
    /// Where the files go.
    pub(crate) output: Option<OutputSection>,
    /// What to do with each report on the server once its files are safely on disk:
    /// `keep` (default) or `delete`.
    pub(crate) cleanup: Option<At<Cleanup>>,
    /// The tenants to report on. Each tenant × period is one report.
    pub tenants: At<Vec<TenantEntry>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiSection {
    /// Data-center URL, e.g. https://eu2-cloud.acronis.com (`/api/2` is appended). The
    /// ACRONIS_BASE_URL variable and the --base-url flag take precedence.
    pub(crate) base_url: Option<At<String>>,
}

/// Settings of one report request. Every field may appear in `defaults` and in a tenant entry.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportSettings {
    /// Report kind. Default: usage_summary.
    pub(crate) kind: Option<At<ReportKind>>,
    /// Which tenants the report covers: itself, or which tenants under it. Default: direct_partners.
    pub(crate) level: Option<At<ReportLevel>>,
    /// File formats; each becomes one file. Default: [csv_v2_0, json_v2_0].
    pub formats: Option<At<Vec<At<Format>>>>,
    /// Leave out offering items without usage. Default: false.
    pub(crate) hide_zero_usage: Option<At<bool>>,
    /// Include SKUs (checked by `checks.skus`). Default: true.
    pub(crate) show_skus: Option<At<bool>>,
    /// Billing periods. Default: [previous_month].
    pub periods: Option<At<Vec<At<PeriodValue>>>>,
}

/// One tenant (`id`), or the children of a partner found at run time (`children_of`), with any
/// report settings that differ from `defaults`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantEntry {
    // Settings a tenant rarely has are boxed: with their spans they would make every entry of a
    // 10 000-tenant list ~1 KiB while the list is parsed.
    /// Tenant UUID, as shown in the management console.
    pub(crate) id: Option<At<String>>,
    /// Label used in output paths and the summary. Default: the id. Only with `id`.
    pub name: Option<At<String>>,
    /// Instead of `id`: report on the children of this tenant (UUID), listed from the API when
    /// the job runs. Each child is labelled by its name on the server.
    pub(crate) children_of: Option<Box<At<String>>>,
    /// With `children_of`: which kinds of children to report on. Default: [customer].
    pub(crate) kinds: Option<Box<At<Vec<At<TenantKind>>>>>,
    /// With `children_of`: only children whose UUID or name matches one of these (name globs with
    /// `*` and `?`, case-insensitive). Default: all.
    pub(crate) include: Option<Box<At<Vec<At<String>>>>>,
    /// With `children_of`: leave out children whose UUID or name matches one of these.
    pub(crate) exclude: Option<Box<At<Vec<At<String>>>>>,
    /// With `children_of`: also descend into child partners and folders. Default: false.
    pub(crate) recursive: Option<Box<At<bool>>>,
    /// With `children_of`: also report on disabled tenants. Default: false.
    pub(crate) include_disabled: Option<Box<At<bool>>>,
    /// With `children_of`: also report on trial tenants (`pricing_mode: trial`). Default: false.
    pub(crate) include_trial: Option<Box<At<bool>>>,
    /// Overrides `defaults.kind`.
    pub(crate) kind: Option<Box<At<ReportKind>>>,
    /// Overrides `defaults.level`.
    pub(crate) level: Option<Box<At<ReportLevel>>>,
    /// Overrides `defaults.formats`.
    pub formats: Option<Box<At<Vec<At<Format>>>>>,
    /// Overrides `defaults.hide_zero_usage`.
    pub(crate) hide_zero_usage: Option<Box<At<bool>>>,
    /// Overrides `defaults.show_skus`.
    pub(crate) show_skus: Option<Box<At<bool>>>,
    /// Overrides `defaults.periods`.
    pub periods: Option<Box<At<Vec<At<PeriodValue>>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChecksSection {
    /// What to do when SKUs were asked for and rows lack them: `required` fails the report,
    /// `warn` only reports it, `off` skips the check. Default: required.
    pub(crate) skus: Option<At<SkuPolicy>>,
    /// Whether a downloaded file must be as long as the stored list's `size` says (as
    /// transferred, which is the compressed length, or decoded): `required` fetches it again
    /// and then fails the report, `warn` only reports it, `off` skips the check (for a server
    /// whose `size` means something else). Default: required.
    pub(crate) size: Option<At<SizePolicy>>,
}

/// Which figure of a usage row `billing.csv` bills. The default is the rule of the vendor's own
/// billing integration (acronis/acronis-cyber-cloud-whmcs, `MetricsFetcher.php`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BillingSection {
    /// `auto` (default): `total` for a customer's row, `production` for a partner's or any
    /// other; or `total`, `production`, `trial` for every row.
    pub(crate) scope: Option<At<BillingScope>>,
    /// `auto` (default): `delta` for the items of `delta_items`, `absolute` for the rest; or
    /// `absolute`, `delta`, `effective` for every row.
    pub(crate) measure: Option<At<BillingMeasure>>,
    /// With `measure: auto`: the offering items billed on `delta` (exact names). Default:
    /// [compute_points, pw_compute_points, dre_compute_points, p_dre_compute_points].
    pub(crate) delta_items: Option<At<Vec<At<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareSection {
    /// A tenant × offering item whose billable value changed by this share of the previous
    /// period's value or more is a warning (an annotation in CI), e.g. `50%`; `off` for none.
    /// Default: 50%.
    pub(crate) warn_change: Option<At<ChangeThreshold>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PollingSection {
    /// The pace of polling while the run has learnt nothing yet, e.g. 5s. Default: 5s. A few
    /// scout reports first look after a quarter of it and then every ~15 % of the time elapsed;
    /// the others wait for what the scouts learn (looking themselves after 5× this at the
    /// latest). Once reports have finished, polls aim at the generation time learnt.
    pub initial_interval: Option<At<DurationValue>>,
    /// Longest wait between two polls of one report. Default: 60s (or initial_interval if longer).
    pub(crate) max_interval: Option<At<DurationValue>>,
    /// Give up on one report after this long; that report fails. Default: 30m.
    pub(crate) timeout: Option<At<DurationValue>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsSection {
    /// The largest file a download may write (decoded), e.g. 8GiB or 500MB; a server sending
    /// more fails that report. Default: 4GiB.
    pub(crate) max_file_size: Option<At<ByteSize>>,
    /// The longest one download may take, all attempts' waits aside, e.g. 1h; a slower one
    /// fails that report. Default: 1h.
    pub(crate) download_timeout: Option<At<DurationValue>>,
}

/// `limits`, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_file_size: u64,
    pub(crate) download_timeout: Duration,
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
pub(crate) struct OutputSection {
    /// Output folder, relative to the current directory. Default: billing-reports.
    pub(crate) dir: Option<At<String>>,
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
#[allow(
    missing_docs,
    reason = "doc comments on the variants would become descriptions in schema/job.schema.json"
)]
#[serde(rename_all = "snake_case")]
pub enum TenantKind {
    // A partner: a reseller with tenants of its own.
    Partner,
    // A folder grouping tenants of a partner.
    Folder,
    // A customer: an end client.
    Customer,
    // A unit: a division inside a customer.
    Unit,
}

impl TenantKind {
    /// The kind as the API and the job file write it.
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
pub(crate) enum SizePolicy {
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
pub(crate) enum Cleanup {
    /// Leave the report on the server.
    Keep,
    /// Delete the report (`DELETE /reports/{id}`); a failed deletion is only a warning.
    Delete,
}
