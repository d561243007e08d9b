//! The job file's scalars that read more than serde's types do (`50%`, `8GiB`, `5s`, a period),
//! each with its JSON Schema.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::duration;
use crate::period::PeriodSpec;

/// A share of the previous value in whole percent (`50%`, or `50`), or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChangeThreshold(pub Option<u32>);

impl ChangeThreshold {
    pub(super) fn parse(text: &str) -> Result<Option<u32>, String> {
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

/// A number of bytes: a whole number, or one with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB,
/// TiB), e.g. `8GiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ByteSize(pub u64);

impl ByteSize {
    pub(super) fn parse(text: &str) -> Result<u64, String> {
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

/// `500ms`, `5s`, `2m` or `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DurationValue(pub Duration);

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
pub(crate) struct PeriodValue(pub PeriodSpec);

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
