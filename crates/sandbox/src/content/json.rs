//! The json_v2_0 layout (and the older json_v1 one).

use serde::Serialize;

use super::*;

/// A JSON value with keys kept in the order given (serde_json's map would sort them).
pub(super) enum JVal {
    Null,
    Num(u64),
    Str(String),
    Obj(Vec<(String, JVal)>),
}

pub(super) fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn write_json(out: &mut String, v: &JVal) {
    match v {
        JVal::Null => out.push_str("null"),
        JVal::Num(n) => out.push_str(&n.to_string()),
        JVal::Str(s) => write_json_str(out, s),
        JVal::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, k);
                out.push(':');
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

/// Put `value` at a dotted path, reusing an object already there (matched regardless of case,
/// as `Offering_Item.SKU` means the `offering_item` object).
pub(super) fn insert_path(fields: &mut Vec<(String, JVal)>, path: &[&str], value: JVal) {
    match path {
        [] => {}
        [last] => fields.push(((*last).to_owned(), value)),
        [head, rest @ ..] => {
            let existing = fields
                .iter_mut()
                .find(|(k, v)| k.eq_ignore_ascii_case(head) && matches!(v, JVal::Obj(_)));
            if let Some((_, JVal::Obj(inner))) = existing {
                insert_path(inner, rest, value);
            } else {
                let mut inner = Vec::new();
                insert_path(&mut inner, rest, value);
                fields.push(((*head).to_owned(), JVal::Obj(inner)));
            }
        }
    }
}

/// One key of a `json_v2_0` row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Key {
    TenantUuid,
    TenantId,
    TenantName,
    TenantKind,
    ApplicationId,
    ApplicationName,
    Edition,
    InfraId,
    InfraBackendType,
    MeasurementUnit,
    Name,
    UsageName,
    OfferingItem,
    RangeStart,
    Value,
    AbsoluteValue,
    Type,
    Sku,
}

pub(super) fn json_keys(spec: &ReportSpec) -> Vec<Key> {
    let o = &spec.content;
    let mut keys = vec![Key::TenantUuid, Key::TenantId];
    if o.extra_columns {
        keys.extend([Key::TenantName, Key::TenantKind]);
    }
    keys.push(Key::ApplicationId);
    if o.extra_columns {
        keys.push(Key::ApplicationName);
    }
    if o.edition_column {
        keys.push(Key::Edition);
    }
    keys.extend([
        Key::InfraId,
        Key::InfraBackendType,
        Key::MeasurementUnit,
        Key::Name,
        Key::UsageName,
        Key::OfferingItem,
        Key::RangeStart,
        Key::Value,
        Key::AbsoluteValue,
        Key::Type,
    ]);
    if spec.show_skus {
        keys.push(Key::Sku);
    }
    if o.reorder_columns {
        shuffle(&mut keys, &["reorder-json", &spec.tenant_id]);
    }
    keys
}

pub(super) fn json_row(ctx: &Ctx, keys: &[Key], r: &Row) -> JVal {
    let spec = ctx.spec;
    let t = &ctx.tenants[r.tenant];
    let item = &ITEMS[r.item];
    let mut fields: Vec<(String, JVal)> = Vec::with_capacity(keys.len() + 1);
    let mut sku_at = None;
    for key in keys {
        let (name, value) = match key {
            Key::TenantUuid => ("tenant_uuid", JVal::Str(t.uuid.clone())),
            Key::TenantId => ("tenant_id", JVal::Num(t.number)),
            Key::TenantName => ("tenant_name", JVal::Str(t.name.clone())),
            Key::TenantKind => ("tenant_kind", JVal::Str(t.kind.to_owned())),
            Key::ApplicationId => (
                "application_id",
                JVal::Str(ctx.apps[item.app.index()].clone()),
            ),
            Key::ApplicationName => ("application_name", JVal::Str(item.app.title().to_owned())),
            Key::Edition => ("edition", JVal::Str(EDITION.to_owned())),
            Key::InfraId => (
                "infra_id",
                r.backend
                    .and_then(|b| ctx.infra.get(b))
                    .map_or(JVal::Null, |(id, _)| JVal::Str(id.clone())),
            ),
            Key::InfraBackendType => match r.backend.and_then(|b| BACKENDS.get(b)) {
                Some(b) => ("infra_backend_type", JVal::Str((*b).to_owned())),
                None => continue,
            },
            Key::MeasurementUnit => ("measurement_unit", JVal::Str(item.unit.as_str().to_owned())),
            Key::Name => ("name", JVal::Str(item_name(spec, r.item).to_owned())),
            Key::UsageName => ("usage_name", JVal::Str(item.usage_name.to_owned())),
            Key::OfferingItem => {
                let quota = if item.unit == Unit::Quantity {
                    let h = num(&["quota", &t.uuid, item.offering_item]);
                    if h.is_multiple_of(2) {
                        JVal::Num(50 + h % 50)
                    } else {
                        JVal::Null
                    }
                } else {
                    JVal::Null
                };
                (
                    "offering_item",
                    JVal::Obj(vec![
                        ("quota".to_owned(), quota),
                        ("status".to_owned(), JVal::Num(1)),
                    ]),
                )
            }
            Key::RangeStart => (
                "range_start",
                JVal::Str(ctx.periods[r.period].range_start.clone()),
            ),
            Key::Value => ("value", JVal::Num(r.usage.value(r.item))),
            Key::AbsoluteValue => ("absolute_value", JVal::Num(r.usage.absolute.total())),
            Key::Type => (
                "type",
                JVal::Str(
                    if r.item == COMPUTE {
                        "infra"
                    } else {
                        "feature"
                    }
                    .to_owned(),
                ),
            ),
            Key::Sku => {
                sku_at = Some(fields.len());
                continue;
            }
        };
        fields.push((name.to_owned(), value));
    }
    if let Some(at) = sku_at {
        let sku = JVal::Str(ctx.sku(r.item).to_owned());
        let path: Vec<&str> = spec.content.sku_column.split('.').collect();
        let nests_in_existing = path.len() > 1
            && fields
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(path[0]) && matches!(v, JVal::Obj(_)));
        if nests_in_existing {
            insert_path(&mut fields, &path, sku);
        } else {
            // Built apart so it lands where the key order put the SKU.
            let mut holder = Vec::new();
            insert_path(&mut holder, &path, sku);
            for (offset, field) in holder.into_iter().enumerate() {
                fields.insert((at + offset).min(fields.len()), field);
            }
        }
    }
    JVal::Obj(fields)
}

#[derive(Serialize)]
pub(super) struct JsonV2Params<'a> {
    pub(super) kind: u32,
    pub(super) gen_date: i64,
    pub(super) begin_date: i64,
    pub(super) end_date: i64,
    pub(super) group_id: u64,
    pub(super) name: &'a str,
    pub(super) report_level: u32,
    pub(super) report_type: u32,
}

pub(super) fn group_id(spec: &ReportSpec) -> u64 {
    1_000_000 + num(&["group", &spec.tenant_id]) % 9_000_000
}

pub(super) fn render_json_v2(ctx: &Ctx) -> Vec<u8> {
    let spec = ctx.spec;
    let end_next_day = gen_date(spec);
    let params = JsonV2Params {
        kind: spec.kind.json_code(),
        gen_date: end_next_day,
        begin_date: unix_midnight(spec.start),
        end_date: end_next_day - 1,
        group_id: group_id(spec),
        name: &ctx.tenants[0].name,
        report_level: spec.level.json_code(),
        report_type: 1,
    };
    let keys = json_keys(spec);
    let mut out = String::with_capacity(ctx.rows.len() * 420 + 256);
    out.push_str("{\"params\":");
    // Only strings and integers: serialisation cannot fail.
    out.push_str(&serde_json::to_string(&params).unwrap_or_default());
    out.push_str(",\"tenants\":[");
    for (i, r) in ctx.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json(&mut out, &json_row(ctx, &keys, r));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// `layout: unknown`: a well-formed file that has nothing a report reader looks for.
pub(super) fn render_unknown(ctx: &Ctx, format: Format) -> Vec<u8> {
    let mut out = String::new();
    if format == Format::JsonV2 {
        out.push_str("{\"data\":[");
        for (i, r) in ctx.rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"foo\":{}}}", r.usage.absolute.total()));
        }
        out.push_str("]}");
    } else {
        out.push_str("Col A,Col B,Col C\n");
        for r in &ctx.rows {
            let a = &ctx.tenants[r.tenant].uuid;
            let b = ITEMS[r.item].title;
            csv_line(&mut out, &[a, b, &r.usage.absolute.total().to_string()]);
        }
    }
    out.into_bytes()
}

#[derive(Serialize)]
pub(super) struct JsonV1<'a> {
    pub(super) report: JsonV1Report<'a>,
    pub(super) usages: Vec<JsonV1Usage<'a>>,
}

#[derive(Serialize)]
pub(super) struct JsonV1Report<'a> {
    pub(super) tenant_id: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) group_id: u64,
    pub(super) kind: &'a str,
    pub(super) level: &'a str,
    pub(super) period_start: String,
    pub(super) period_end: String,
}

#[derive(Serialize)]
pub(super) struct JsonV1Usage<'a> {
    pub(super) tenant_id: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) tenant_kind: &'a str,
    pub(super) edition: &'a str,
    pub(super) offering_item: &'a str,
    pub(super) name: &'a str,
    pub(super) unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sku: Option<&'a str>,
    pub(super) start: String,
    pub(super) end: String,
    pub(super) value: u64,
}

pub(super) fn render_json_v1(ctx: &Ctx) -> Vec<u8> {
    let spec = ctx.spec;
    let doc = JsonV1 {
        report: JsonV1Report {
            tenant_id: &ctx.tenants[0].uuid,
            tenant_name: &ctx.tenants[0].name,
            group_id: group_id(spec),
            kind: spec.kind.as_str(),
            level: spec.level.as_str(),
            period_start: spec.start.to_string(),
            period_end: spec.end.to_string(),
        },
        usages: ctx
            .rows
            .iter()
            .map(|r| {
                let t = &ctx.tenants[r.tenant];
                let item = &ITEMS[r.item];
                let period = &ctx.periods[r.period];
                JsonV1Usage {
                    tenant_id: &t.uuid,
                    tenant_name: &t.name,
                    tenant_kind: t.kind,
                    edition: EDITION,
                    offering_item: item_name(spec, r.item),
                    name: item.usage_name,
                    unit: item.unit.as_str(),
                    sku: spec.show_skus.then(|| ctx.sku(r.item)),
                    start: period.start.to_string(),
                    end: period.end.to_string(),
                    value: r.usage.value(r.item),
                }
            })
            .collect(),
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}
