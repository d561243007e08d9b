//! Request and response bodies of the reports API.

use serde::{Deserialize, Serialize};

use crate::report::{Format, ReportKind, ReportLevel};

/// Body of `POST /reports` for a one-time report saved on the server.
#[derive(Clone, Debug, Serialize)]
pub struct CreateReport {
    pub(crate) parameters: ReportParameters,
    pub(crate) schedule: Schedule,
    pub(crate) result_action: &'static str,
}

/// The `parameters` of a create request: whose report, of what, for which period, in which formats.
#[derive(Clone, Debug, Serialize)]
pub struct ReportParameters {
    pub(crate) tenant_id: String,
    pub(crate) kind: ReportKind,
    pub(crate) level: ReportLevel,
    /// The file formats to generate, one stored file each.
    pub formats: Vec<Format>,
    /// The period the report covers.
    pub period: PeriodDates,
    pub(crate) hide_zero_usage: bool,
    pub(crate) show_skus: bool,
}

/// A report period as the API takes it: first and last day, both inclusive, as `YYYY-MM-DD`.
#[derive(Clone, Debug, Serialize)]
pub struct PeriodDates {
    /// The first day.
    pub start: String,
    /// The last day (inclusive).
    pub end: String,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Schedule {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
}

impl CreateReport {
    pub(crate) fn once(parameters: ReportParameters) -> Self {
        Self {
            parameters,
            schedule: Schedule { kind: "once" },
            result_action: "save",
        }
    }
}

/// What `POST /reports` answers: the new report's id and revision (needed to delete it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedReport {
    /// The report's id, for polling, downloading and deleting it.
    pub id: String,
    pub(crate) version: Option<u64>,
}

/// One entry of `GET /reports/{id}/stored`. Every field is optional because the API documents
/// only the finished state; the poller decides what a missing field means.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct StoredItem {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) report_format: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub(crate) size: Option<u64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) created_at: Option<String>,
}

/// A tenant as `GET /tenants/{id}` and `GET /tenants/{id}/children?include_details=true`
/// describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TenantInfo {
    #[serde(deserialize_with = "required_string")]
    pub(crate) id: String,
    /// The tenant's display name, when the API gives one.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// `partner`, `folder`, `customer`, `unit`, …
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    /// `production` or `trial`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub(crate) pricing_mode: Option<String>,
}

/// What `GET /clients/{client_id}` tells of an API client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The tenant the API client belongs to: it sees this tenant and the ones below it.
    pub(crate) tenant_id: String,
    pub(crate) enabled: Option<bool>,
}

/// One page of `GET /tenants/{id}/children`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildrenPage {
    /// The tenants on this page, in the API's order.
    pub tenants: Vec<TenantInfo>,
    /// Cursor of the next page, when there is one.
    pub(crate) next: Option<String>,
}

fn required_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    lenient_string(d)?.ok_or_else(|| serde::de::Error::custom("expected a string"))
}

/// Accepts a string or a number as text, and treats anything else (null, objects) as absent.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(as_u64(&serde_json::Value::deserialize(d)?))
}

pub(crate) fn as_u64(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::*;

    #[test]
    fn create_body_is_typed_as_documented() {
        let body = CreateReport::once(ReportParameters {
            tenant_id: "t".into(),
            kind: ReportKind::UsageSummary,
            level: ReportLevel::DirectPartners,
            formats: vec![Format::CsvV2, Format::JsonV2],
            period: PeriodDates {
                start: "2026-10-01".into(),
                end: "2026-10-31".into(),
            },
            hide_zero_usage: true,
            show_skus: false,
        });
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "parameters": {
                    "tenant_id": "t", "kind": "usage_summary", "level": "direct_partners",
                    "formats": ["csv_v2_0", "json_v2_0"],
                    "period": {"start": "2026-10-01", "end": "2026-10-31"},
                    "hide_zero_usage": true, "show_skus": false
                },
                "schedule": {"type": "once"},
                "result_action": "save"
            })
        );
    }

    #[test]
    fn stored_items_tolerate_odd_shapes() {
        let item: StoredItem =
            serde_json::from_str(r#"{"id": 7, "status": null, "size": "42", "extra": [1]}"#)
                .unwrap();
        assert_eq!(item.id.as_deref(), Some("7"));
        assert_eq!(item.status, None);
        assert_eq!(item.size, Some(42));
    }
}
