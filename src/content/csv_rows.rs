//! `csv_v2_0`: a header, then one row per tenant × offering item (× infra backend). RFC 4180
//! quoting, `\n` or `\r\n`, an optional byte-order mark, blank lines skipped.

mod records;

use std::io::{self, Read};

use self::records::Records;
use super::columns::{EXPECTED_CSV_COLUMNS, Field, Positions, normalise};
use super::limit::{Kind, Limited, TooLong};
use super::{Amount, ContentError, Layout, Measure, Measures, UsageRow};

pub(super) fn read(
    reader: impl Read,
    buffer: usize,
    on_row: &mut dyn FnMut(&UsageRow<'_>) -> io::Result<()>,
) -> Result<Layout, ContentError> {
    // As large as the reader's own buffer (`read_rows`), which then hands reads straight
    // through instead of copying every byte once more.
    let mut csv = Records::new(Limited::new(reader, Kind::CsvLine), buffer);
    let Some(record) = csv.next().map_err(read_error)? else {
        return Err(ContentError::Layout {
            what: "the csv_v2_0 file is empty (not even a header)",
            found: Vec::new(),
            expected: expected(),
        });
    };
    let header: Vec<String> = record
        .iter()
        .map(|name| normalise(&String::from_utf8_lossy(name)))
        .collect();
    let positions = Positions::find(&header);
    let missing: Vec<String> = EXPECTED_CSV_COLUMNS
        .iter()
        .filter(|name| !header.iter().any(|h| h == *name))
        .map(|name| (*name).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(ContentError::Layout {
            what: if missing.len() == EXPECTED_CSV_COLUMNS.len() {
                "the csv_v2_0 header has none of the columns of the vendor's layout"
            } else {
                "the csv_v2_0 header lacks columns of the vendor's layout"
            },
            found: record
                .iter()
                .map(|name| String::from_utf8_lossy(name).trim().to_owned())
                .collect(),
            expected: missing,
        });
    }
    // Two columns of one name leave it open which holds the value (the vendor's parser keeps
    // the last, a spreadsheet shows the first): a column we read must be there once.
    let mut twice: Vec<String> = positions.read_twice(&header).cloned().collect();
    twice.sort();
    twice.dedup();
    if !twice.is_empty() {
        return Err(ContentError::Layout {
            what: "the csv_v2_0 header names a column it must have once more than once",
            found: twice,
            expected: vec!["each column once".to_owned()],
        });
    }
    let names: Vec<String> = record
        .iter()
        .map(|name| {
            String::from_utf8_lossy(name)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_owned()
        })
        .collect();
    let mut layout = Layout {
        sku_column: positions.sku.map(|at| names[at].clone()),
        rows: 0,
    };
    let width = header.len();
    while let Some(record) = csv.next().map_err(read_error)? {
        let line = record.line;
        if record.len() < width {
            return Err(ContentError::Data {
                at: format!("line {line}"),
                field: format!("column {}", record.len() + 1),
                detail: format!(
                    "the row has {} fields where the header has {width}",
                    record.len()
                ),
            });
        }
        // Extra fields that are not empty mean the row's fields are shifted (an unquoted comma
        // in a name, say): every value after it would be read from the wrong column.
        if let Some(extra) =
            (width..record.len()).find(|&i| !record.get(i).iter().all(u8::is_ascii_whitespace))
        {
            return Err(ContentError::Data {
                at: format!("line {line}"),
                field: format!("column {}", extra + 1),
                detail: format!(
                    "the row has {} fields where the header has {width}: its values may be in the wrong columns",
                    record.len()
                ),
            });
        }
        let text = |at: usize| -> Result<&str, ContentError> {
            std::str::from_utf8(record.get(at)).map_err(|_| ContentError::Data {
                at: format!("line {line}"),
                field: format!("`{}`", names[at]),
                detail: "not valid UTF-8".to_owned(),
            })
        };
        let field =
            |f: Field| -> Result<&str, ContentError> { positions.field(f).map_or(Ok(""), &text) };
        let required = |f: Field| -> Result<&str, ContentError> {
            let value = trim(field(f)?);
            if value.is_empty() {
                let at = positions.field(f).unwrap_or(0);
                return Err(ContentError::Data {
                    at: format!("line {line}"),
                    field: format!("`{}`", names[at]),
                    detail: "empty, but every row must have it".to_owned(),
                });
            }
            Ok(value)
        };
        let mut measures = Measures::default();
        for measure in Measure::ALL {
            let Some(at) = positions.measures[measure as usize] else {
                continue;
            };
            if let Some(amount) = Amount::parse_digits(record.get(at)) {
                measures.set(measure, Some(amount));
                continue;
            }
            let cell = text(at)?;
            let amount = Amount::parse_why(cell).map_err(|why| ContentError::Data {
                at: format!("line {line}"),
                field: format!("`{}`", names[at]),
                detail: format!(
                    "{} {why}",
                    if cell.trim().is_empty() {
                        "an empty cell".to_owned()
                    } else {
                        format!("\"{}\"", crate::api::one_line(cell, 40))
                    }
                ),
            })?;
            measures.set(measure, Some(amount));
        }
        let row = UsageRow {
            at: line,
            at_kind: "line",
            tenant_id: required(Field::TenantId)?,
            tenant_kind: trim(field(Field::TenantKind)?),
            tenant_name: trim(field(Field::TenantName)?),
            offering_item: required(Field::OfferingItem)?,
            usage_name: trim(field(Field::UsageName)?),
            edition: trim(field(Field::Edition)?),
            infra_backend: trim(field(Field::InfraBackend)?),
            sku: positions.sku.map(text).transpose()?.map(trim),
            unit: trim(field(Field::Unit)?),
            day: trim(field(Field::Day)?),
            measures,
        };
        layout.rows += 1;
        on_row(&row).map_err(ContentError::Sink)?;
    }
    Ok(layout)
}

/// [`str::trim`], at the cost of two byte tests for a field that starts and ends with a
/// character that is not white space, which nearly every field does.
fn trim(text: &str) -> &str {
    // ASCII characters that are white space to `char::is_whitespace`; every other character
    // that is starts with a byte ≥ 0x80.
    let plain = |b: &u8| *b < 0x80 && !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if plain(first) && plain(last) => text,
        _ => text.trim(),
    }
}

fn expected() -> Vec<String> {
    EXPECTED_CSV_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}

/// A failed read: a line too long ([`Limited`]), or the reader's own error. (The tokenizer
/// itself never fails: it prefers a parse to none.)
fn read_error(error: io::Error) -> ContentError {
    match TooLong::of(&error) {
        Some(too_long) => ContentError::TooLong(too_long.to_string()),
        None => ContentError::Read(error),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trim_is_str_trim() {
        for text in [
            "",
            " ",
            "x",
            " x ",
            "\tx\r",
            "\u{0b}x",
            "x\u{0c}",
            "\u{85}x",
            "x\u{a0}",
            "é",
            "xé",
            "é\u{2003}",
            "\u{3000}",
            "a b",
        ] {
            assert_eq!(super::trim(text), text.trim(), "{text:?}");
        }
    }
}
