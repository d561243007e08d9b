//! What we check in a downloaded file: SKUs where they were asked for, and the Disaster Recovery
//! compute points a summary should show.
//!
//! The column layout of `csv_v2_0` and the row shape of `json_v2_0` are not documented, so
//! columns are found by header name and JSON usage entries by their keys — never by position.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::Value;

use crate::report::Format;
use crate::results::{SkuCheck, SkuStatus};

/// Whether a usage row is Disaster Recovery compute points counted in point-seconds: usage name
/// `compute_points` (or an offering item `…_dr_compute_points`), unit `seconds` or none.
/// Absent fields are passed as "".
pub(crate) fn is_dr_seconds(usage_name: &str, offering_item: &str, unit: &str) -> bool {
    let dr = usage_name.eq_ignore_ascii_case("compute_points")
        || offering_item
            .to_ascii_lowercase()
            .ends_with("_dr_compute_points");
    dr && (unit.is_empty() || unit.eq_ignore_ascii_case("seconds"))
}

/// What one file tells us.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileFacts {
    pub sku_check: SkuCheck,
    /// Sum of DR compute-point usage in seconds, when the file has any.
    pub dr_compute_seconds: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{format} file {path} is not valid: {detail}")]
    Malformed {
        format: Format,
        path: String,
        detail: String,
    },
}

/// Inspects a downloaded file. `check_skus` is whether SKUs were asked for.
pub fn inspect_file(
    path: &Path,
    format: Format,
    check_skus: bool,
) -> Result<FileFacts, CheckError> {
    let io = |source| CheckError::Io {
        path: path.display().to_string(),
        source,
    };
    let reader = BufReader::with_capacity(256 * 1024, File::open(path).map_err(io)?);
    let malformed = |detail: String| CheckError::Malformed {
        format,
        path: path.display().to_string(),
        detail,
    };
    match format {
        Format::CsvV2 => inspect_csv(reader, check_skus).map_err(malformed),
        Format::JsonV2 => inspect_json(reader, check_skus).map_err(malformed),
        // Legacy formats carry no documented SKU field, and their DR values are already points.
        Format::Csv | Format::Html | Format::JsonV1 => Ok(FileFacts {
            sku_check: SkuCheck::SKIPPED,
            dr_compute_seconds: None,
        }),
    }
}

/// Header names compared without case, spaces or punctuation: "Usage Name" = "usage_name".
pub(crate) fn normalise_header(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub fn inspect_csv(reader: impl Read, check_skus: bool) -> Result<FileFacts, String> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(normalise_header)
        .collect();
    let column = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.iter().position(|h| h == n))
    };
    let sku = column(&["sku"]);
    let usage_name = column(&["usagename"]);
    let offering = column(&["offeringitem", "offeringitemname"]);
    let unit = column(&["measurementunit", "unit"]);
    let value = column(&[
        "usage",
        "value",
        "endusage",
        "endvalue",
        "totalusage",
        "quantity",
    ]);

    let (mut rows, mut without_sku) = (0u64, 0u64);
    let mut dr_seconds: Option<f64> = None;
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record).map_err(|e| e.to_string())? {
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        rows += 1;
        let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).map(str::trim);
        if cell(sku).is_none_or(str::is_empty) {
            without_sku += 1;
        }
        let is_dr = is_dr_seconds(
            cell(usage_name).unwrap_or(""),
            cell(offering).unwrap_or(""),
            cell(unit).unwrap_or(""),
        );
        if is_dr && let Some(seconds) = cell(value).and_then(|v| v.parse::<f64>().ok()) {
            *dr_seconds.get_or_insert(0.0) += seconds;
        }
    }
    Ok(FileFacts {
        sku_check: sku_check(check_skus, rows, without_sku),
        dr_compute_seconds: dr_seconds,
    })
}

pub fn inspect_json(reader: impl Read, check_skus: bool) -> Result<FileFacts, String> {
    let document: Value = serde_json::from_reader(reader).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    collect_usage_entries(&document, &mut entries);
    if entries.is_empty() {
        // Without any `usage_name`, each element of the top-level `tenants` array is an entry.
        if let Some(tenants) = document.get("tenants").and_then(Value::as_array) {
            entries.extend(tenants.iter().filter(|t| t.is_object()));
        }
    }
    let rows = entries.len() as u64;
    let without_sku = entries.iter().filter(|entry| !has_sku(entry)).count() as u64;
    let mut dr_seconds: Option<f64> = None;
    for entry in &entries {
        let text = |key: &str| entry.get(key).and_then(Value::as_str);
        let is_dr = is_dr_seconds(
            text("usage_name").unwrap_or(""),
            offering_name(entry).unwrap_or(""),
            text("measurement_unit").unwrap_or(""),
        );
        if is_dr && let Some(seconds) = entry.get("value").and_then(number) {
            *dr_seconds.get_or_insert(0.0) += seconds;
        }
    }
    Ok(FileFacts {
        sku_check: sku_check(check_skus, rows, without_sku),
        dr_compute_seconds: dr_seconds,
    })
}

/// Usage entries are the objects that carry a `usage_name`; their insides are not searched.
fn collect_usage_entries<'a>(value: &'a Value, entries: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) if map.contains_key("usage_name") => entries.push(value),
        Value::Object(map) => map.values().for_each(|v| collect_usage_entries(v, entries)),
        Value::Array(items) => items.iter().for_each(|v| collect_usage_entries(v, entries)),
        _ => {}
    }
}

fn has_sku(entry: &Value) -> bool {
    let non_empty = |v: &Value| match v {
        Value::String(s) => !s.trim().is_empty(),
        Value::Number(_) => true,
        _ => false,
    };
    entry.get("sku").is_some_and(non_empty)
        || entry
            .get("offering_item")
            .and_then(|o| o.get("sku"))
            .is_some_and(non_empty)
}

fn offering_name(entry: &Value) -> Option<&str> {
    match entry.get("offering_item")? {
        Value::String(name) => Some(name),
        item => item.get("name").and_then(Value::as_str),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn sku_check(check_skus: bool, rows: u64, rows_without_sku: u64) -> SkuCheck {
    if !check_skus {
        return SkuCheck::SKIPPED;
    }
    SkuCheck {
        status: if rows_without_sku == 0 {
            SkuStatus::Ok
        } else {
            SkuStatus::Missing
        },
        rows,
        rows_without_sku,
    }
}

/// Compute points from point-seconds, as the API guide says: ÷ 3600, rounded to 2 decimals.
pub fn compute_points(seconds: f64) -> f64 {
    (seconds / 3600.0 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\u{feff}Tenant Name,Usage Name,Measurement Unit,SKU,Usage\n\
        a,storage,bytes,SKU-1,100\n\
        a,compute_points,seconds,SKU-2,7200\n\
        b,compute_points,seconds,,5400\n\
        \n\
        b,workstations,quantity,\"\",3\n";

    #[test]
    fn csv_finds_columns_by_name_in_any_order_and_case() {
        let facts = inspect_csv(CSV.as_bytes(), true).unwrap();
        assert_eq!(
            facts.sku_check,
            SkuCheck {
                status: SkuStatus::Missing,
                rows: 4,
                rows_without_sku: 2
            }
        );
        assert_eq!(facts.dr_compute_seconds, Some(12600.0));
        let reordered = "usage,sku,USAGE_NAME\n5,x,storage\n";
        let facts = inspect_csv(reordered.as_bytes(), true).unwrap();
        assert_eq!(facts.sku_check.status, SkuStatus::Ok);
        assert_eq!(facts.dr_compute_seconds, None);
    }

    #[test]
    fn csv_without_sku_column_counts_every_row_missing() {
        let facts = inspect_csv("name,usage\na,1\nb,2\n".as_bytes(), true).unwrap();
        assert_eq!(facts.sku_check.rows_without_sku, 2);
        assert_eq!(
            inspect_csv("name\na\n".as_bytes(), false)
                .unwrap()
                .sku_check,
            SkuCheck::SKIPPED
        );
    }

    #[test]
    fn json_usage_entries_need_a_non_empty_sku() {
        let json = r#"{"params":{"kind":5},"tenants":[
            {"usage_name":"storage","sku":"S1","value":1},
            {"usage_name":"compute_points","measurement_unit":"seconds","sku":"","value":"3600"},
            {"usage_name":"compute_points","measurement_unit":"points","value":99},
            {"usage_name":"seats","offering_item":{"name":"m365","sku":"M1"},"value":2}
        ]}"#;
        let facts = inspect_json(json.as_bytes(), true).unwrap();
        assert_eq!(
            facts.sku_check,
            SkuCheck {
                status: SkuStatus::Missing,
                rows: 4,
                rows_without_sku: 2
            }
        );
        assert_eq!(facts.dr_compute_seconds, Some(3600.0));
        assert!(inspect_json("not json".as_bytes(), true).is_err());
    }

    #[test]
    fn compute_points_round_to_two_decimals() {
        assert_eq!(compute_points(7200.0), 2.0);
        assert_eq!(compute_points(1000.0), 0.28);
        assert_eq!(compute_points(0.0), 0.0);
    }
}
