use super::*;

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert!(parse_duration("2 days").is_err());
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn yaml_scenario_parses_and_validates() {
    let yaml = r#"
client_id: ci-client
client_secret: ci-secret
generation_delay: 500ms
generation_jitter: 0.3
token_lifetime: 5s
gzip: false
response_delay: 10ms
duplicate_stored: true
pad_bytes: 1000
tenants:
  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001:
    no_skus: true
    generation_delay: 2s
  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a002:
    fail: true
  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a003:
    unknown: true
faults:
  - endpoint: stored_list
    times: 2
    status: 429
    retry_after: 1
  - endpoint: download
    truncate: true
  - endpoint: token
    status: 503
    retry_after: "Wed, 21 Oct 2015 07:28:00 GMT"
"#;
    let s = Scenario::from_yaml_str(yaml).unwrap();
    assert_eq!(s.client_id, "ci-client");
    assert_eq!(s.generation_delay, Duration::from_millis(500));
    assert_eq!(s.token_lifetime, Duration::from_secs(5));
    assert!(!s.gzip);
    assert_eq!(s.pad_bytes, 1000);
    let t = s.tenant("3F1C0A52-7E0E-4D4B-9B0A-2F4CF0F0A001").unwrap();
    assert!(t.no_skus);
    assert_eq!(t.generation_delay, Some(Duration::from_secs(2)));
    assert_eq!(s.faults.len(), 3);
    assert_eq!(s.faults[0].endpoint, Endpoint::StoredList);
    assert_eq!(s.faults[0].times, 2);
    assert_eq!(s.faults[0].retry_after.as_deref(), Some("1"));
    assert_eq!(s.faults[1].times, 1);
    assert!(s.faults[1].truncate);
}

#[test]
fn a_spread_gives_each_tenant_its_own_time_every_time() {
    let s = Scenario::from_yaml_str(
            "generation_delay: 1200ms\ngeneration_spread: 1.0\ngeneration_floor: 500ms\ntenants:\n  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001: {generation_delay: 3s}\n",
        )
        .unwrap();
    let times: Vec<f64> = (1..=200)
        .map(|i| {
            s.generation_of(&format!("5ca1ab1e-0000-4000-8000-{i:012x}"))
                .as_secs_f64()
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[100];
    assert!((1.0..1.4).contains(&median), "median {median}");
    assert!(sorted[0] > 0.5 && sorted[0] < 0.7, "{}", sorted[0]);
    assert!(sorted[199] > 4.0, "a heavy tail: {}", sorted[199]);
    let again = s.generation_of("5CA1AB1E-0000-4000-8000-000000000001");
    assert_eq!(
        again.as_secs_f64(),
        times[0],
        "drawn from the id, in any case"
    );
    assert_eq!(
        s.generation_of("3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001"),
        Duration::from_secs(3),
        "a tenant's own delay wins"
    );
    assert_eq!(
        Scenario::default().generation_of("5ca1ab1e-0000-4000-8000-000000000001"),
        Duration::from_secs(1)
    );
    assert!(Scenario::from_yaml_str("generation_spread: -1\n").is_err());
    assert!(Scenario::from_yaml_str("generation_delay: 1s\ngeneration_floor: 2s\n").is_err());
}

#[test]
fn empty_yaml_is_default() {
    let s = Scenario::from_yaml_str("# nothing\n").unwrap();
    assert_eq!(s.client_id, "sandbox-client");
    assert_eq!(s.generation_delay, Duration::from_secs(1));
    assert!(s.gzip);
}

#[test]
fn yaml_rejects_unknown_and_bad_values() {
    assert!(Scenario::from_yaml_str("generation_dealy: 1s\n").is_err());
    assert!(Scenario::from_yaml_str("generation_delay: soon\n").is_err());
    assert!(Scenario::from_yaml_str("tenants:\n  not-a-uuid: {fail: true}\n").is_err());
    assert!(Scenario::from_yaml_str("faults:\n  - endpoint: token\n").is_err());
    assert!(
        Scenario::from_yaml_str("faults:\n  - endpoint: create\n    truncate: true\n").is_err()
    );
    assert!(
        Scenario::from_yaml_str("faults:\n  - endpoint: everything\n    status: 500\n").is_err()
    );
    assert!(Scenario::from_yaml_str("generation_jitter: 1.5\n").is_err());
}

#[test]
fn content_knobs_parse_and_tenant_keys_override() {
    let yaml = r#"
content:
  sku_column: offering_item.sku
  extra_columns: true
  reorder_columns: true
  edition_column: false
  compute_points_item: dre_compute_points
  infra_rows: true
  customer_trial: false
  partner_trial: false
  layout: vendor
tenants:
  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001:
    no_skus: true
    sku_column: SKU
    layout: html
    compute_points_item: p_dre_compute_points
  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a002: {layout: unknown}
"#;
    let s = Scenario::from_yaml_str(yaml).unwrap();
    assert_eq!(s.content.sku_column.as_deref(), Some("offering_item.sku"));
    assert_eq!(
        s.content.compute_points_item,
        Some(ComputePointsItem::DreComputePoints)
    );
    let t = s.tenant("3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001").unwrap();
    assert!(t.no_skus);
    let o = t.content.over(&s.content).resolve();
    assert_eq!(o.sku_column, "SKU");
    assert_eq!(o.layout, Layout::Html);
    assert_eq!(o.compute_points_item, ComputePointsItem::PDreComputePoints);
    assert!(o.extra_columns && o.reorder_columns && o.infra_rows);
    assert!(!o.edition_column && !o.customer_trial && !o.partner_trial);
    let t2 = s.tenant("3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a002").unwrap();
    assert_eq!(
        t2.content.over(&s.content).resolve().layout,
        Layout::Unknown
    );
    // Nothing set: the vendor-like defaults.
    let d = ContentKnobs::default()
        .over(&ContentKnobs::default())
        .resolve();
    assert_eq!(d, ContentOptions::default());
    assert_eq!(d.sku_column, "sku");
    assert!(d.edition_column && d.customer_trial && d.partner_trial);
}

#[test]
fn content_knobs_are_checked() {
    let err = |yaml: &str| Scenario::from_yaml_str(yaml).unwrap_err().to_string();
    assert!(err("content: {sku_colum: SKU}\n").contains("sku_colum"));
    assert!(err("content: {layout: pdf}\n").contains("pdf"));
    assert!(err("content: {compute_points_item: points}\n").contains("points"));
    assert!(err("content: {infra_rows: maybe}\n").contains("maybe"));
    let e =
        err("tenants:\n  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001: {no_skus: true, sku_colum: x}\n");
    assert!(e.contains("sku_colum"), "{e}");
    for (name, why) in [
        ("''", "is empty"),
        ("'a,b'", "commas"),
        ("'tenant.id'", "clashes with the column or key 'tenant.id'"),
        ("Name", "clashes"),
        ("value.sku", "clashes with the column or key 'value'"),
        ("'offering_item.'", "empty part"),
    ] {
        let e = err(&format!("content: {{sku_column: {name}}}\n"));
        assert!(
            e.contains("content: sku_column") && e.contains(why),
            "{name}: {e}"
        );
    }
    let e = err("tenants:\n  3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001: {sku_column: edition}\n");
    assert!(
        e.contains("tenants: 3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001: sku_column"),
        "{e}"
    );
    for ok in [
        "SKU",
        "sku",
        "offering_item.sku",
        "Offering_Item.SKU",
        "product.sku",
    ] {
        Scenario::from_yaml_str(&format!("content: {{sku_column: {ok}}}\n")).unwrap();
    }
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.yml");
    std::fs::write(&path, "gzip: maybe\n").unwrap();
    let err = Scenario::from_yaml_file(&path).unwrap_err().to_string();
    assert!(err.contains("scenario.yml"), "{err}");
    let missing = dir.path().join("missing.yml");
    let err = Scenario::from_yaml_file(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.yml"), "{err}");
}
