//! The JSON Schema of the job file, as strict as [`super::load`] wherever a schema can say it.
//!
//! schemars derives the shape from the `*File` types; [`tighten`] then adds the rules that live in
//! the validator (version, UUIDs, non-empty lists, ranges) and drops the `null` alternatives of
//! optional keys: an optional key is one that is not `required`, and `anyOf [X, null]` makes
//! editors report "is not of type 'null'" as the best match for a mistake inside X.

use schemars::Schema;
use serde_json::{Value, json};

/// Where editors find the schema of this release: a URL that works from any repository.
pub const SCHEMA_URL: &str = concat!(
    "https://raw.githubusercontent.com/OWNER/acronis-reports/v",
    env!("CARGO_PKG_VERSION"),
    "/schema/job.schema.json"
);

/// The first line of a job file that points editors (yaml-language-server) at the schema.
pub fn modeline() -> String {
    format!("# yaml-language-server: $schema={SCHEMA_URL}")
}

/// A tenant UUID as `validate` takes it (any case, surrounding spaces trimmed).
const UUID_PATTERN: &str =
    r"^\s*[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\s*$";

/// The JSON Schema of the job file, for editors and `acronis-reports schema`.
pub fn json_schema() -> Schema {
    let mut value = schemars::schema_for!(super::JobFile).to_value();
    drop_nulls(&mut value);
    tighten(&mut value);
    Schema::try_from(value).expect("the tightened schema is still an object")
}

/// `anyOf [X, {type: null}]` becomes X, `type: [T, null]` becomes T.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(options)) = map.get("anyOf") {
                let kept: Vec<Value> = options
                    .iter()
                    .filter(|o| o.get("type").is_none_or(|t| t != "null"))
                    .cloned()
                    .collect();
                if kept.len() == 1 {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &kept[0] {
                        for (k, v) in inner {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            // schemars' integer formats say nothing an editor uses; the ranges below do.
            if map.get("format").is_some_and(|f| f == "uint32") {
                map.remove("format");
            }
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn set(value: &mut Value, pointer: &str, extra: Value) {
    let target = value
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the schema has no {pointer}"));
    if let Value::Object(extra) = extra {
        target.extend(extra);
    }
}

/// The validator's rules, written into the schema.
fn tighten(schema: &mut Value) {
    let non_empty_unique = json!({"minItems": 1, "uniqueItems": true});
    let non_blank = json!({"pattern": r"\S"});
    set(schema, "/properties/version", json!({"const": 1}));
    if let Some(version) = schema
        .pointer_mut("/properties/version")
        .and_then(Value::as_object_mut)
    {
        version.remove("minimum");
    }
    set(
        schema,
        "/properties/concurrency",
        json!({"minimum": 1, "maximum": 1000}),
    );
    set(schema, "/properties/tenants", json!({"minItems": 1}));
    for settings in ["ReportSettings", "TenantEntry"] {
        for list in ["formats", "periods"] {
            set(
                schema,
                &format!("/$defs/{settings}/properties/{list}"),
                non_empty_unique.clone(),
            );
        }
    }
    set(
        schema,
        "/$defs/TenantEntry/properties/kinds",
        non_empty_unique.clone(),
    );
    set(
        schema,
        "/$defs/BillingSection/properties/delta_items/items",
        non_blank.clone(),
    );
    set(schema, "/$defs/TenantEntry/properties/name", non_blank);
    for key in ["id", "children_of"] {
        set(
            schema,
            &format!("/$defs/TenantEntry/properties/{key}"),
            json!({"pattern": UUID_PATTERN}),
        );
    }
    // Zero is refused, so a duration starts with a non-zero digit after any leading zeros.
    set(
        schema,
        "/$defs/Duration",
        json!({"pattern": "^0*[1-9][0-9]*(ms|s|m|h)$"}),
    );
    let discovery_only = [
        "kinds",
        "include",
        "exclude",
        "recursive",
        "include_disabled",
        "include_trial",
    ];
    let refused = |keys: &[&str]| {
        Value::Object(
            keys.iter()
                .map(|k| ((*k).to_owned(), json!(false)))
                .collect(),
        )
    };
    set(
        schema,
        "/$defs/TenantEntry",
        json!({
            // One tenant by `id`, or a partner's children by `children_of`.
            "oneOf": [{"required": ["id"]}, {"required": ["children_of"]}],
            "dependentSchemas": {
                "id": {"properties": refused(&discovery_only)},
                "children_of": {"properties": refused(&["name"])}
            }
        }),
    );
    // `delta_items` only with `measure: auto` (or no measure, which means auto).
    set(
        schema,
        "/$defs/BillingSection",
        json!({
            "dependentSchemas": {
                "delta_items": {"properties": {"measure": {"const": "auto"}}}
            }
        }),
    );
}
