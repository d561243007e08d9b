use super::*;

const HEADER: &str = "tenant.id,tenant.kind,name,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial";

/// Each row as "tenant/kind/item/backend/sku/unit/day=measures".
fn rows(format: Format, text: &str) -> Result<Vec<String>, ContentError> {
    let mut out = Vec::new();
    read_rows(format, text.as_bytes(), &mut |row| {
        let measures: Vec<String> = row
            .measures
            .present()
            .map(|(m, a)| format!("{}={a}", m.name()))
            .collect();
        out.push(format!(
            "{}/{}/{}/{}/{}/{:?}/{}/{}={}",
            row.tenant_id,
            row.tenant_kind,
            row.tenant_name,
            row.offering_item,
            row.infra_backend,
            row.sku,
            row.unit,
            row.day,
            measures.join(" ")
        ));
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn csv_header_only_is_an_empty_report_but_an_empty_file_is_not() {
    assert_eq!(
        rows(Format::CsvV2, &format!("{HEADER}\n")).unwrap().len(),
        0
    );
    let error = rows(Format::CsvV2, "").unwrap_err();
    assert!(matches!(error, ContentError::Layout { .. }), "{error}");
}

#[test]
fn csv_blank_lines_are_skipped_and_short_rows_named() {
    let text = format!("{HEADER}\n\nc,customer,x,1,1,0,0,0,0,1,1,0\n\n");
    assert_eq!(rows(Format::CsvV2, &text).unwrap().len(), 1);
    let error = rows(Format::CsvV2, &format!("{HEADER}\nc,customer,x,1\n")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 2, column 5: the row has 4 fields where the header has 12"
    );
}

#[test]
fn csv_rows_must_name_tenant_and_item() {
    let error = rows(
        Format::CsvV2,
        &format!("{HEADER}\n ,customer,x,1,1,0,0,0,0,1,1,0\n"),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 2, `tenant.id`: empty, but every row must have it"
    );
}

#[test]
fn csv_header_names_ignore_case_and_spaces_and_the_first_of_two_wins() {
    let text = " Tenant.ID ,TENANT.KIND,Name,Usage.Absolute.Production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial,Offering_Item.Sku,sku,Measurement_Unit\nc,customer,x,1,2,1,0,0,0,1,2,1,A,B,bytes\n";
    let rows = rows(Format::CsvV2, text).unwrap();
    assert_eq!(rows.len(), 1);
    // The plain `sku` column is preferred over a dotted one.
    assert!(rows[0].contains("Some(\"B\")/bytes"), "{}", rows[0]);
}

#[test]
fn json_usage_objects_at_any_depth_take_tenant_fields_from_around_them() {
    let text = r#"{"params": {"name": "ignored", "value": 1, "usage_name": "not a row"},
        "tenants": [
          {"id": "p1", "name": "Partner", "kind": "partner", "children": [
            {"tenant": {"id": "c1", "name": "Kunde"}, "tenant_kind": "customer",
             "usages": [{"name": "pw_base_storage", "usage_name": "storage", "value": "5",
                         "absolute_value": 6.5, "offering_item": {"SKU": "S1"}}]},
            {"name": "pw_base_vms", "value": 2, "infra_backend_type": "azure"}
          ]}
        ]}"#;
    assert_eq!(
        rows(Format::JsonV2, text).unwrap(),
        vec![
            "c1/customer/Kunde/pw_base_storage//Some(\"S1\")//=value=5 absolute_value=6.5",
            "p1/partner/Partner/pw_base_vms/azure/None//=value=2",
        ]
    );
}

#[test]
fn json_tenant_uuid_wins_over_the_numeric_tenant_id() {
    let text = r#"{"tenants": [{"tenant_id": 42, "tenant_uuid": "u1", "name": "x", "value": 1}]}"#;
    assert!(rows(Format::JsonV2, text).unwrap()[0].starts_with("u1/"));
}

#[test]
fn json_empty_tenants_is_an_empty_report() {
    assert!(
        rows(Format::JsonV2, r#"{"params": {}, "tenants": []}"#)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn json_without_usage_objects_or_tenants_is_an_unknown_layout() {
    for text in [
        r#"{"params": {}}"#,
        r#"{"data": [{"foo": 1}]}"#,
        r#"{"tenants": [{"foo": 1}]}"#,
    ] {
        let error = rows(Format::JsonV2, text).unwrap_err();
        assert!(
            matches!(error, ContentError::Layout { .. }),
            "{text}: {error}"
        );
    }
}

#[test]
fn json_values_that_are_not_numbers_are_data_errors() {
    let error = rows(
        Format::JsonV2,
        r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 1}, {"tenant_uuid": "u", "name": "y", "value": true}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "usage object 2, `value`: true is not a number"
    );
    let error = rows(
        Format::JsonV2,
        r#"{"tenants": [{"name": "x", "usage_name": "y", "value": 1}]}"#,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("`tenant_uuid`: missing"),
        "{error}"
    );
}

#[test]
fn broken_json_is_a_syntax_error_not_a_panic() {
    for text in [
        "{",
        "[1, 2]",
        "null",
        r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 1}]} trailing"#,
        &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        &format!(
            r#"{{"tenants": {}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
    ] {
        let error = rows(Format::JsonV2, text).unwrap_err();
        assert!(
            matches!(error, ContentError::Syntax(_)),
            "{}: {error}",
            &text[..text.len().min(40)]
        );
    }
}

#[test]
fn an_object_with_too_many_keys_is_refused() {
    let keys: Vec<String> = (0..2000).map(|i| format!("\"k{i}\": 1")).collect();
    let text = format!(r#"{{"tenants": [{{{}}}]}}"#, keys.join(","));
    let error = rows(Format::JsonV2, &text).unwrap_err();
    assert!(error.to_string().contains("more than 1024 keys"), "{error}");
}

#[test]
fn html_is_named_with_its_title_in_either_format() {
    for format in [Format::CsvV2, Format::JsonV2] {
        let error = rows(
            format,
            "\u{feff}  <html><head><TITLE>\n Anmelden \n</TITLE></head></html>",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the body is an HTML page (\"Anmelden\"), not a report: a login page, proxy or captive portal answered instead of the API"
        );
    }
}

#[test]
fn sku_names() {
    for name in [
        "sku",
        "SKU",
        " Sku ",
        "offering_item.sku",
        "Offering.Item.SKU",
    ] {
        assert!(is_sku_name(name), "{name}");
    }
    for name in ["skus", "sku_name", "offering_item.sku.id", "item_sku"] {
        assert!(!is_sku_name(name), "{name}");
    }
}

#[test]
fn csv_a_column_read_twice_is_an_unknown_layout() {
    // The first of two `usage.absolute.total` columns used to win silently.
    let text = format!("{HEADER},Usage.Absolute.Total\nc,customer,x,1,2,1,0,0,0,1,2,1,999\n");
    let error = rows(Format::CsvV2, &text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unrecognised layout: the csv_v2_0 header names a column it must have once more than once; found `usage.absolute.total`; expected `each column once`"
    );
    // A column nobody reads may repeat.
    let text = format!("{HEADER},note,note\nc,customer,x,1,2,1,0,0,0,1,2,1,a,b\n");
    assert_eq!(rows(Format::CsvV2, &text).unwrap().len(), 1);
}

#[test]
fn csv_a_row_longer_than_the_header_is_shifted_not_ignored() {
    // `Acme, Inc` unquoted: every value after it moves one column to the right.
    let text = format!("tenant.name,{HEADER}\nAcme, Inc,c,customer,x,1,2,1,0,0,0,1,2,1\n");
    let error = rows(Format::CsvV2, &text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 2, column 14: the row has 14 fields where the header has 13: its values may be in the wrong columns"
    );
    // Trailing empty fields (a trailing comma) move nothing.
    let text = format!("{HEADER}\nc,customer,x,1,2,1,0,0,0,1,2,1,,\n");
    assert_eq!(rows(Format::CsvV2, &text).unwrap().len(), 1);
}

#[test]
fn a_line_or_json_string_of_more_than_a_mebibyte_is_refused_as_it_streams() {
    let field = "x".repeat(2 << 20);
    let text = format!("{HEADER}\nc,customer,{field},1,2,1,0,0,0,1,2,1\n");
    let error = rows(Format::CsvV2, &text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 2: the line is longer than 1 MiB, far beyond any report's"
    );
    let text = format!(r#"{{"tenants": [{{"tenant_uuid": "u", "name": "{field}", "value": 1}}]}}"#);
    let error = rows(Format::JsonV2, &text).unwrap_err();
    assert!(matches!(error, ContentError::TooLong(_)), "{error}");
    let digits = "1".repeat(2 << 20);
    let text =
        format!(r#"{{"tenants": [{{"tenant_uuid": "u", "name": "x", "value": {digits}}}]}}"#);
    let error = rows(Format::JsonV2, &text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 1: a number or literal is longer than 1 MiB, far beyond any report's"
    );
    // Long files of short tokens are fine, escaped quotes included.
    let many = r#"{"tenant_uuid": "u\"", "name": "x", "value": 1},"#.repeat(40_000);
    let text = format!(r#"{{"tenants": [{many}{{"tenant_uuid": "u", "name": "x", "value": 1}}]}}"#);
    assert_eq!(rows(Format::JsonV2, &text).unwrap().len(), 40_001);
}

#[test]
fn undecoded_gzip_is_named_in_either_format() {
    for format in [Format::CsvV2, Format::JsonV2] {
        let mut text = vec![0x1f, 0x8b, 0x08, 0x00];
        text.extend_from_slice(b"\x00\x00\x00\x00\x00\x03");
        let error = read_rows(format, &text[..], &mut |_| Ok(())).unwrap_err();
        assert!(matches!(error, ContentError::Compressed), "{error}");
    }
}

#[test]
fn csv_numbers_say_why_they_are_refused() {
    for (cell, why) in [
        (
            "1.12345678901234567890",
            "has more than 9 decimal places that are not zero",
        ),
        ("1e400", "is beyond 10^18, more than any usage"),
        ("１２", "is not a number"),
    ] {
        let text = format!("{HEADER}\nc,customer,x,1,{cell},1,0,0,0,1,2,1\n");
        let error = rows(Format::CsvV2, &text).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("line 2, `usage.absolute.total`: \"{cell}\" {why}")
        );
    }
}

fn json_error(text: &str) -> String {
    rows(Format::JsonV2, text).unwrap_err().to_string()
}

#[test]
fn json_numbers_are_exact_not_floats() {
    // Through an f64 these became 12345678.123456787 and 12345678901234567000 (silently).
    let text = r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 12345678.123456789,
        "absolute_value": 123456789012345678}]}"#;
    assert_eq!(
        rows(Format::JsonV2, text).unwrap(),
        vec!["u///x//None//=value=12345678.123456789 absolute_value=123456789012345678"]
    );
    assert_eq!(
        json_error(
            r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 0.10000000000000001}]}"#
        ),
        "usage object 1, `value`: 0.10000000000000001 has more than 9 decimal places that are not zero"
    );
    assert_eq!(
        json_error(r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 1e400}]}"#),
        "usage object 1, `value`: 1e400 is beyond 10^18, more than any usage"
    );
    // Nested measures are read exactly too.
    let text = r#"{"tenants": [{"tenant_uuid": "u", "name": "x",
        "usage": {"absolute": {"total": 0.123456789}}}]}"#;
    assert!(rows(Format::JsonV2, text).unwrap()[0].ends_with("usage.absolute.total=0.123456789"));
}

#[test]
fn json_a_measure_that_is_an_array_or_object_is_refused_not_skipped() {
    // The second object used to be skipped: its tenant's usage silently missing.
    for (value, what) in [
        ("[5]", "an array"),
        ("{}", "an object"),
        (r#"{"a": 5}"#, "an object"),
    ] {
        let text = format!(
            r#"{{"tenants": [{{"tenant_uuid": "u", "name": "x", "value": 1}}, {{"tenant_uuid": "v", "name": "x", "value": {value}}}]}}"#
        );
        assert_eq!(
            json_error(&text),
            format!("usage object 2, `value`: {what} is not a number")
        );
    }
    // An object with a measure but no item name is a usage object missing its name.
    assert_eq!(
        json_error(
            r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 1}, {"tenant_uuid": "v", "item": "x", "value": 5}]}"#
        ),
        "usage object 2, `name`: missing or empty: every usage object must name its offering item"
    );
}

#[test]
fn json_tenants_must_be_an_array_of_objects() {
    for (tenants, error) in [
        (
            r#""x""#,
            "`tenants` is a string, not an array of usage objects",
        ),
        ("null", "`tenants` is null, not an array of usage objects"),
        (
            r#"{"a": {"tenant_uuid": "u", "name": "x", "value": 1}}"#,
            "`tenants` is an object, not an array of usage objects",
        ),
        (
            "[1, 2]",
            "`tenants` holds a number where usage objects are expected",
        ),
        (
            r#"[[{"tenant_uuid": "u", "name": "x", "value": 1}, "x"]]"#,
            "`tenants` holds a string where usage objects are expected",
        ),
    ] {
        assert_eq!(
            json_error(&format!(r#"{{"tenants": {tenants}}}"#)),
            error,
            "{tenants}"
        );
    }
    // Arrays of scalars inside a usage object are its own business.
    let text = r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 1, "tags": ["a", 1]}]}"#;
    assert_eq!(rows(Format::JsonV2, text).unwrap().len(), 1);
}

#[test]
fn json_a_key_read_twice_is_refused() {
    assert_eq!(
        json_error(r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 1, "value": 2}]}"#),
        "usage object 1, `value`: the usage object has this key twice; which one holds its value is not said"
    );
    assert!(
        json_error(
            r#"{"tenants": [{"tenant_uuid": "u", "name": "x", "value": 1, "offering_item": {"sku": "A"}, "Offering_Item.SKU": "B"}]}"#
        )
        .contains("`offering_item.sku`: the usage object has this key twice")
    );
    assert_eq!(
        json_error(
            r#"{"tenants": [], "tenants": [{"tenant_uuid": "u", "name": "x", "value": 1}]}"#
        ),
        "unrecognised layout: the json_v2_0 document has `tenants` twice; found `tenants`, `tenants`; expected `params`, `tenants`"
    );
}

#[test]
fn a_file_of_known_size_finds_an_html_title_past_the_least_buffer() {
    // The title after 10 KiB of head (more than `LEAST_READ_BUFFER`), read in one piece and
    // through a reader that gives a byte at a time less than asked: a buffer of the file's size
    // holds what the full one did.
    let page = format!(
        "<html><head><style>{}</style><title>Sign in</title></head></html>",
        " ".repeat(10 * 1024)
    );
    struct Short<'a>(&'a [u8]);
    impl Read for Short<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for format in [Format::CsvV2, Format::JsonV2] {
        let error = read_rows_at_most(
            format,
            Short(page.as_bytes()),
            Some(page.len() as u64),
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("(\"Sign in\")"), "{error}");
    }
}

#[test]
fn a_small_file_is_read_with_small_buffers() {
    // Hundreds of small files are checked at once in a run: each took 512 KiB of buffers.
    let text = format!("{HEADER}\nc,customer,pw_base_storage,1,3,2,0,0,0,1,3,2\n");
    let (read, peak) = crate::heap::peak_of(|| {
        read_rows_at_most(
            Format::CsvV2,
            text.as_bytes(),
            Some(text.len() as u64),
            &mut |_| Ok(()),
        )
    });
    assert_eq!(read.unwrap().rows, 1);
    assert!(peak < 32 * 1024, "{peak} bytes");
    // A file of unknown size keeps the full buffers.
    let (_, peak) =
        crate::heap::peak_of(|| read_rows(Format::CsvV2, text.as_bytes(), &mut |_| Ok(())));
    assert!(peak >= 2 * READ_BUFFER, "{peak} bytes");
    assert_eq!(read_buffer(Some(u64::MAX)), READ_BUFFER);
    assert_eq!(read_buffer(Some(0)), LEAST_READ_BUFFER);
    assert_eq!(read_buffer(Some(100_000)), 100_001);
}
