//! The vocabulary of the Acronis reports API: kinds, levels and file formats.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a report measures.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Metrics for each day of the period.
    UsageDaily,
    /// Metrics at the end of the period and the difference between its start and end.
    UsageSummary,
    /// Current metrics for the previous day, within each child tenant's billing period.
    UsageCurrent,
    /// Metrics and their changes for each day.
    UsageBreakdown,
}

/// Which tenants a report covers: the subject tenant itself, or which tenants below it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportLevel {
    /// The subject tenant alone, without the tenants below it.
    Itself,
    /// Direct customers and partners.
    DirectPartners,
    /// All partners.
    AllPartners,
    /// All customers and partners.
    AllCustomers,
    /// All customers and partners, with user-account details.
    Accounts,
}

/// A file format the server can store a report in.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Legacy table-formatted CSV.
    Csv,
    /// HTML table.
    Html,
    /// API v1-compatible JSON.
    JsonV1,
    /// CSV, version 2.0: the format meant for billing automation.
    #[serde(rename = "csv_v2_0")]
    CsvV2,
    /// JSON, version 2.0: the format meant for billing automation.
    #[serde(rename = "json_v2_0")]
    JsonV2,
}

impl ReportKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::UsageDaily => "usage_daily",
            Self::UsageSummary => "usage_summary",
            Self::UsageCurrent => "usage_current",
            Self::UsageBreakdown => "usage_breakdown",
        }
    }
}

impl ReportLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Itself => "itself",
            Self::DirectPartners => "direct_partners",
            Self::AllPartners => "all_partners",
            Self::AllCustomers => "all_customers",
            Self::Accounts => "accounts",
        }
    }
}

impl Format {
    pub(crate) const ALL: [Format; 5] = [
        Self::Csv,
        Self::Html,
        Self::JsonV1,
        Self::CsvV2,
        Self::JsonV2,
    ];

    /// The format's name in the API and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Html => "html",
            Self::JsonV1 => "json_v1",
            Self::CsvV2 => "csv_v2_0",
            Self::JsonV2 => "json_v2_0",
        }
    }

    /// The format named `text`, as [`Format::as_str`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    pub(crate) fn extension(self) -> &'static str {
        match self {
            Self::Csv | Self::CsvV2 => "csv",
            Self::Html => "html",
            Self::JsonV1 | Self::JsonV2 => "json",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(ReportKind, ReportLevel, Format);

/// Which scope of a `csv_v2_0` usage figure is billed.
#[allow(
    missing_docs,
    reason = "doc comments on the variants would become descriptions in schema/job.schema.json"
)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingScope {
    /// The vendor's rule: `total` for a customer's row, `production` for any other (partner,
    /// reseller, folder).
    #[default]
    Auto,
    // The total of production and trial.
    Total,
    // Production usage only.
    Production,
    // Trial usage only.
    Trial,
}

/// Which measure of a usage row is billed.
#[allow(
    missing_docs,
    reason = "doc comments on the variants would become descriptions in schema/job.schema.json"
)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingMeasure {
    /// The vendor's rule: `delta` (consumed in the period) for the items of `delta_items`,
    /// `absolute` (in use at the period's end) for every other item.
    #[default]
    Auto,
    // `absolute`: in use at the period's end.
    Absolute,
    // `delta`: consumed during the period.
    Delta,
    // `effective`: the third figure `csv_v2_0` gives each item, next to `absolute` and `delta`.
    Effective,
}

/// The offering items the vendor's own billing integration bills on `delta`: the compute-point
/// items (`MetricsFetcher.php` of acronis/acronis-cyber-cloud-whmcs).
pub(crate) const VENDOR_DELTA_ITEMS: [&str; 4] = [
    "compute_points",
    "pw_compute_points",
    "dre_compute_points",
    "p_dre_compute_points",
];

/// How a usage row's billable value is chosen: `usage.<measure>.<scope>` of a `csv_v2_0` row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingRule {
    /// The scope billed (`billing.scope`).
    pub scope: BillingScope,
    /// The measure billed (`billing.measure`).
    pub measure: BillingMeasure,
    /// With `measure: auto`, the offering items billed on `delta`.
    pub delta_items: Vec<String>,
}

impl Default for BillingRule {
    fn default() -> Self {
        Self {
            scope: BillingScope::Auto,
            measure: BillingMeasure::Auto,
            delta_items: VENDOR_DELTA_ITEMS.iter().map(|i| (*i).to_owned()).collect(),
        }
    }
}

impl BillingScope {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Total => "total",
            Self::Production => "production",
            Self::Trial => "trial",
        }
    }
}

impl BillingMeasure {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Absolute => "absolute",
            Self::Delta => "delta",
            Self::Effective => "effective",
        }
    }
}
display_as_str!(BillingScope, BillingMeasure);
