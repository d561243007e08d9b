//! Strict validation of `POST /reports` bodies.
//!
//! The real service's tolerance is undocumented, so the sandbox errs on the
//! strict side: a client that passes here sends exactly what the docs describe.

use jiff::civil::Date;
use serde_json::{Map, Value, json};

use super::content::{Format, Kind, Level};
use super::scenario::is_canonical_uuid;
use super::server::ApiError;

#[derive(Debug)]
pub(crate) struct CreateRequest {
    /// As sent, for the echo.
    pub(crate) tenant_id: String,
    pub(crate) kind: Kind,
    pub(crate) level: Level,
    pub(crate) start: Date,
    pub(crate) end: Date,
    pub(crate) formats: Vec<Format>,
    pub(crate) show_skus: bool,
    pub(crate) hide_zero_usage: bool,
    pub(crate) generation_date: Option<String>,
    /// The normalised `parameters` object the create response echoes.
    pub(crate) echo: Value,
}

const TOP_LEVEL: [&str; 5] = [
    "parameters",
    "schedule",
    "result_action",
    "recipients",
    "generation_date",
];
const PARAMETERS: [&str; 7] = [
    "tenant_id",
    "kind",
    "level",
    "formats",
    "period",
    "hide_zero_usage",
    "show_skus",
];

/// Short description of a JSON value for error messages; long strings are cut
/// so a huge body cannot be reflected back.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let cut: String = s.chars().take(40).collect();
            if cut.len() < s.len() {
                format!("string \"{cut}…\"")
            } else {
                format!("string \"{cut}\"")
            }
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn reject_unknown(
    obj: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), ApiError> {
    if let Some(key) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        let field = format!("{prefix}{key}");
        return Err(ApiError::bad_field(
            &field,
            format!("Unknown field '{field}'; allowed: {}", allowed.join(", ")),
        ));
    }
    Ok(())
}

fn required<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<&'a Value, ApiError> {
    obj.get(key)
        .ok_or_else(|| ApiError::bad_field(field, format!("Field '{field}' is required")))
}

fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| {
        ApiError::bad_field(
            field,
            format!("Field '{field}' must be a string, got {}", describe(v)),
        )
    })
}

fn one_of<T>(
    v: &Value,
    field: &str,
    names: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, ApiError> {
    let s = string(v, field)?;
    parse(s).ok_or_else(|| {
        ApiError::bad_field(
            field,
            format!(
                "Field '{field}' has invalid value {}; expected one of: {}",
                describe(v),
                names.join(", ")
            ),
        )
    })
}

fn optional_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => {
            let field = format!("parameters.{key}");
            Err(ApiError::bad_field(
                &field,
                format!(
                    "Field '{field}' must be a JSON boolean (true or false), got {}",
                    describe(other)
                ),
            ))
        }
    }
}

/// Only `YYYY-MM-DD`; jiff alone would also take other ISO 8601 spellings.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    s.parse().ok()
}

fn date_field(obj: &Map<String, Value>, key: &str) -> Result<Date, ApiError> {
    let field = format!("parameters.period.{key}");
    let v = required(obj, key, &field)?;
    let s = string(v, &field)?;
    parse_date(s).ok_or_else(|| {
        ApiError::invalid_parameters(
            &field,
            format!(
                "Field '{field}' must be a calendar date as YYYY-MM-DD, got {}",
                describe(v)
            ),
        )
    })
}

pub(crate) fn parse_create(body: &[u8], today: Date) -> Result<CreateRequest, ApiError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}"), None))?;
    let Value::Object(top) = &doc else {
        return Err(ApiError::bad_request(
            format!("Request body must be a JSON object, got {}", describe(&doc)),
            None,
        ));
    };
    reject_unknown(top, &TOP_LEVEL, "")?;

    let result_action = string(
        required(top, "result_action", "result_action")?,
        "result_action",
    )?;
    if result_action != "save" {
        return Err(ApiError::bad_field(
            "result_action",
            format!(
                "Field 'result_action' is \"{}\"; the sandbox supports only \"save\" (it cannot send e-mail)",
                result_action.chars().take(40).collect::<String>()
            ),
        ));
    }
    if top.contains_key("recipients") {
        return Err(ApiError::bad_field(
            "recipients",
            "Field 'recipients' is only allowed with result_action \"send\"".into(),
        ));
    }

    let schedule = required(top, "schedule", "schedule")?;
    let Value::Object(schedule) = schedule else {
        return Err(ApiError::bad_field(
            "schedule",
            format!(
                "Field 'schedule' must be an object, got {}",
                describe(schedule)
            ),
        ));
    };
    reject_unknown(schedule, &["type", "enabled"], "schedule.")?;
    let schedule_type = string(
        required(schedule, "type", "schedule.type")?,
        "schedule.type",
    )?;
    match schedule_type {
        "once" => {}
        "monthly" => {
            return Err(ApiError::bad_field(
                "schedule.type",
                "Field 'schedule.type' is \"monthly\"; the sandbox supports only \"once\"".into(),
            ));
        }
        _ => {
            return Err(ApiError::bad_field(
                "schedule.type",
                format!(
                    "Field 'schedule.type' has invalid value {}; expected one of: once, monthly",
                    describe(&schedule["type"])
                ),
            ));
        }
    }
    if let Some(enabled) = schedule.get("enabled")
        && !enabled.is_boolean()
    {
        return Err(ApiError::bad_field(
            "schedule.enabled",
            format!(
                "Field 'schedule.enabled' must be a JSON boolean, got {}",
                describe(enabled)
            ),
        ));
    }

    let generation_date = match top.get("generation_date") {
        None => None,
        Some(v) => {
            let s = string(v, "generation_date")?;
            if parse_date(s).is_none() {
                return Err(ApiError::bad_field(
                    "generation_date",
                    format!(
                        "Field 'generation_date' must be a date as YYYY-MM-DD, got {}",
                        describe(v)
                    ),
                ));
            }
            Some(s.to_owned())
        }
    };

    let params = required(top, "parameters", "parameters")?;
    let Value::Object(params) = params else {
        return Err(ApiError::bad_field(
            "parameters",
            format!(
                "Field 'parameters' must be an object, got {}",
                describe(params)
            ),
        ));
    };
    reject_unknown(params, &PARAMETERS, "parameters.")?;

    let tenant_v = required(params, "tenant_id", "parameters.tenant_id")?;
    let tenant_id = string(tenant_v, "parameters.tenant_id")?;
    if !is_canonical_uuid(tenant_id) {
        return Err(ApiError::bad_field(
            "parameters.tenant_id",
            format!(
                "Field 'parameters.tenant_id' must be a tenant UUID, got {}",
                describe(tenant_v)
            ),
        ));
    }
    let kind = one_of(
        required(params, "kind", "parameters.kind")?,
        "parameters.kind",
        &Kind::NAMES,
        Kind::parse,
    )?;
    let level = one_of(
        required(params, "level", "parameters.level")?,
        "parameters.level",
        &Level::NAMES,
        Level::parse,
    )?;

    let formats_v = required(params, "formats", "parameters.formats")?;
    let Value::Array(format_items) = formats_v else {
        return Err(ApiError::bad_field(
            "parameters.formats",
            format!(
                "Field 'parameters.formats' must be an array, got {}",
                describe(formats_v)
            ),
        ));
    };
    if format_items.is_empty() {
        return Err(ApiError::bad_field(
            "parameters.formats",
            "Field 'parameters.formats' must name at least one format".into(),
        ));
    }
    let mut formats = Vec::with_capacity(format_items.len());
    for (i, v) in format_items.iter().enumerate() {
        let field = format!("parameters.formats[{i}]");
        let f = one_of(v, &field, &Format::NAMES, Format::parse)?;
        if formats.contains(&f) {
            return Err(ApiError::bad_field(
                &field,
                format!(
                    "Format \"{}\" is listed twice in 'parameters.formats'",
                    f.as_str()
                ),
            ));
        }
        formats.push(f);
    }

    let hide_zero_usage = optional_bool(params, "hide_zero_usage")?;
    let show_skus = optional_bool(params, "show_skus")?;

    let (start, end, period_echo) = match params.get("period") {
        None if kind == Kind::Current => {
            // The official examples omit the period for usage_current; the
            // previous day is what "current" means there.
            let day = today.yesterday().unwrap_or(today);
            (day, day, None)
        }
        None => {
            return Err(ApiError::bad_field(
                "parameters.period",
                format!(
                    "Field 'parameters.period' is required for kind {}",
                    kind.as_str()
                ),
            ));
        }
        Some(Value::Object(period)) => {
            reject_unknown(period, &["start", "end"], "parameters.period.")?;
            let start = date_field(period, "start")?;
            let end = date_field(period, "end")?;
            if start > end {
                return Err(ApiError::invalid_parameters(
                    "parameters.period",
                    format!("Report period start {start} is after its end {end}"),
                ));
            }
            if end > today {
                return Err(ApiError::invalid_parameters(
                    "parameters.period.end",
                    format!(
                        "Report period must not be in the future: end {end} is after today {today} (UTC)"
                    ),
                ));
            }
            let echo = json!({"start": start.to_string(), "end": end.to_string()});
            (start, end, Some(echo))
        }
        Some(other) => {
            return Err(ApiError::bad_field(
                "parameters.period",
                format!(
                    "Field 'parameters.period' must be an object with start and end, got {}",
                    describe(other)
                ),
            ));
        }
    };

    let mut echo = Map::new();
    echo.insert("tenant_id".into(), json!(tenant_id));
    echo.insert("kind".into(), json!(kind.as_str()));
    echo.insert("level".into(), json!(level.as_str()));
    echo.insert(
        "formats".into(),
        json!(formats.iter().map(|f| f.as_str()).collect::<Vec<_>>()),
    );
    if let Some(p) = period_echo {
        echo.insert("period".into(), p);
    }
    if let Some(b) = hide_zero_usage {
        echo.insert("hide_zero_usage".into(), json!(b));
    }
    if let Some(b) = show_skus {
        echo.insert("show_skus".into(), json!(b));
    }

    Ok(CreateRequest {
        tenant_id: tenant_id.to_owned(),
        kind,
        level,
        start,
        end,
        formats,
        show_skus: show_skus.unwrap_or(false),
        hide_zero_usage: hide_zero_usage.unwrap_or(false),
        generation_date,
        echo: Value::Object(echo),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        "2026-11-15".parse().unwrap()
    }

    fn body(params: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "parameters": params,
            "schedule": {"type": "once"},
            "result_action": "save"
        }))
        .unwrap()
    }

    fn good() -> Value {
        json!({
            "tenant_id": "ede9f834-70b3-476c-83d9-736f9f8c7dae",
            "kind": "usage_summary",
            "level": "direct_partners",
            "formats": ["csv_v2_0", "json_v2_0"],
            "period": {"start": "2026-10-01", "end": "2026-10-31"},
            "hide_zero_usage": true,
            "show_skus": true
        })
    }

    fn err(params: Value) -> ApiError {
        parse_create(&body(params), today()).unwrap_err()
    }

    #[test]
    fn accepts_documented_body() {
        let req = parse_create(&body(good()), today()).unwrap();
        assert_eq!(req.formats, vec![Format::CsvV2, Format::JsonV2]);
        assert!(req.show_skus && req.hide_zero_usage);
        assert_eq!(req.echo["period"]["end"], "2026-10-31");
    }

    #[test]
    fn every_level_of_the_vendor_is_accepted() {
        for level in [
            "itself",
            "direct_partners",
            "all_partners",
            "all_customers",
            "accounts",
        ] {
            let mut p = good();
            p["level"] = json!(level);
            let req = parse_create(&body(p), today()).unwrap();
            assert_eq!(req.level.as_str(), level);
            assert_eq!(req.echo["level"], level);
        }
    }

    #[test]
    fn booleans_as_strings_are_rejected() {
        let mut p = good();
        p["show_skus"] = json!("true");
        let e = err(p);
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("parameters.show_skus"), "{}", e.message);
        let mut p = good();
        p["hide_zero_usage"] = json!("false");
        assert!(err(p).message.contains("hide_zero_usage"));
    }

    #[test]
    fn field_errors_name_the_field() {
        let cases = [
            ("tenant_id", json!("not-a-uuid")),
            ("kind", json!("usage_weekly")),
            ("level", json!("everyone")),
            ("formats", json!([])),
            ("formats", json!(["pdf"])),
            ("formats", json!(["csv", "csv"])),
            (
                "period",
                json!({"start": "2026-10-31", "end": "2026-10-01"}),
            ),
            (
                "period",
                json!({"start": "2026/10/01", "end": "2026-10-31"}),
            ),
            (
                "period",
                json!({"start": "2026-10-01", "end": "2026-12-31"}),
            ),
            ("period", json!("2026-10")),
        ];
        for (field, value) in cases {
            let mut p = good();
            p[field] = value;
            let e = err(p);
            assert_eq!(e.status.as_u16(), 400);
            assert!(e.message.contains(field), "{field}: {}", e.message);
        }
        let mut p = good();
        p["show_sku"] = json!(true);
        assert!(err(p).message.contains("show_sku"));
        let mut p = good();
        p.as_object_mut().unwrap().remove("level");
        assert!(err(p).message.contains("parameters.level"));
    }

    #[test]
    fn period_errors_use_string_code() {
        let mut p = good();
        p["period"] = json!({"start": "2026-10-31", "end": "2026-10-01"});
        assert_eq!(err(p).code, json!("InvalidReportParameters"));
        let mut p = good();
        p["kind"] = json!("usage_weekly");
        assert_eq!(err(p).code, json!(400));
    }

    #[test]
    fn top_level_rules() {
        let t = today();
        assert!(
            parse_create(b"{", t)
                .unwrap_err()
                .message
                .contains("not valid JSON")
        );
        assert!(parse_create(b"[]", t).is_err());
        let send =
            json!({"parameters": good(), "schedule": {"type": "once"}, "result_action": "send"});
        assert!(
            parse_create(&serde_json::to_vec(&send).unwrap(), t)
                .unwrap_err()
                .message
                .contains("result_action")
        );
        let monthly =
            json!({"parameters": good(), "schedule": {"type": "monthly"}, "result_action": "save"});
        assert!(
            parse_create(&serde_json::to_vec(&monthly).unwrap(), t)
                .unwrap_err()
                .message
                .contains("schedule.type")
        );
        let no_schedule = json!({"parameters": good(), "result_action": "save"});
        assert!(
            parse_create(&serde_json::to_vec(&no_schedule).unwrap(), t)
                .unwrap_err()
                .message
                .contains("schedule")
        );
    }

    #[test]
    fn usage_current_may_omit_period() {
        let mut p = good();
        p["kind"] = json!("usage_current");
        p.as_object_mut().unwrap().remove("period");
        let req = parse_create(&body(p), today()).unwrap();
        assert_eq!(req.end.to_string(), "2026-11-14");
        assert!(req.echo.get("period").is_none());
    }
}
