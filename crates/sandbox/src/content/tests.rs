use std::collections::{BTreeMap, BTreeSet};

use super::*;

const DEFAULT_HEADER: &str = "tenant.id,tenant.kind,application.id,edition,name,infra.id,infra.owner_id,infra.backend_type,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial";

fn spec(kind: Kind) -> ReportSpec {
    ReportSpec {
        tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
        kind,
        level: Level::DirectPartners,
        start: "2024-05-01".parse().unwrap(),
        end: "2024-05-31".parse().unwrap(),
        show_skus: true,
        hide_zero_usage: false,
        no_skus: false,
        content: ContentOptions::default(),
    }
}

fn with(f: impl FnOnce(&mut ReportSpec)) -> ReportSpec {
    let mut s = spec(Kind::Summary);
    f(&mut s);
    s
}

type CsvRecord = BTreeMap<String, String>;

/// Header and rows keyed by column name, as a by-name reader sees them.
fn csv_of(bytes: &[u8]) -> (Vec<String>, Vec<CsvRecord>) {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), header.len());
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

fn csv(spec: &ReportSpec) -> (Vec<String>, Vec<CsvRecord>) {
    csv_of(&render(spec, Format::CsvV2, false))
}

fn json(spec: &ReportSpec) -> serde_json::Value {
    serde_json::from_slice(&render(spec, Format::JsonV2, false)).unwrap()
}

fn json_rows(spec: &ReportSpec) -> Vec<serde_json::Value> {
    json(spec)["tenants"].as_array().unwrap().clone()
}

/// Keys of a JSON object in document order (serde_json's map sorts them).
fn json_key_order(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    let first = text.find("\"tenants\":[{").unwrap() + "\"tenants\":[".len();
    let end = first + text[first..].find("},{").unwrap_or(text.len() - first);
    let row = &text[first..end];
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut chars = row.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '"' => {
                let close = i + 1 + row[i + 1..].find('"').unwrap();
                if depth == 1 && row[close + 1..].starts_with(':') {
                    keys.push(row[i + 1..close].to_owned());
                }
                while chars.peek().is_some_and(|(j, _)| *j <= close) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    keys
}

fn n(r: &CsvRecord, col: &str) -> u64 {
    r[col].parse().unwrap()
}

const COMPUTE_NAMES: [&str; 5] = [
    "pw_base_adv_dr_compute_points",
    "compute_points",
    "pw_compute_points",
    "dre_compute_points",
    "p_dre_compute_points",
];

fn is_compute(r: &CsvRecord) -> bool {
    COMPUTE_NAMES.contains(&r["name"].as_str())
}

#[test]
fn same_inputs_same_bytes() {
    for f in Format::NAMES {
        let f = Format::parse(f).unwrap();
        for k in [Kind::Daily, Kind::Summary, Kind::Current, Kind::Breakdown] {
            assert_eq!(render(&spec(k), f, false), render(&spec(k), f, false));
        }
    }
    let knobs = with(|s| {
        s.content.reorder_columns = true;
        s.content.extra_columns = true;
        s.content.infra_rows = true;
    });
    assert_eq!(
        render(&knobs, Format::JsonV2, false),
        render(&knobs, Format::JsonV2, false)
    );
    let mut other = spec(Kind::Summary);
    other.tenant_id = "0b4b1a7e-0000-4000-8000-000000000001".into();
    assert_ne!(
        render(&other, Format::CsvV2, false),
        render(&spec(Kind::Summary), Format::CsvV2, false)
    );
    assert_ne!(
        render(&spec(Kind::Summary), Format::CsvV2, true),
        render(&spec(Kind::Summary), Format::CsvV2, false)
    );
}

#[test]
fn default_header_is_the_vendor_columns_then_sku() {
    let text = String::from_utf8(render(&spec(Kind::Summary), Format::CsvV2, false)).unwrap();
    assert_eq!(
        text.lines().next(),
        Some(format!("{DEFAULT_HEADER},sku").as_str())
    );
    let no_skus = with(|s| s.show_skus = false);
    let text = String::from_utf8(render(&no_skus, Format::CsvV2, false)).unwrap();
    assert_eq!(text.lines().next(), Some(DEFAULT_HEADER));
    // Day-by-day kinds add a date right after the item name.
    for kind in [Kind::Daily, Kind::Breakdown] {
        let (header, rows) = csv(&spec(kind));
        let name = header.iter().position(|h| h == "name").unwrap();
        assert_eq!(header[name + 1], "date");
        assert_eq!(
            rows.iter().filter(|r| r["date"] == "2024-05-17").count() * 31,
            rows.len()
        );
    }
    let (header, _) = csv(&spec(Kind::Current));
    assert!(!header.contains(&"date".to_owned()));
}

#[test]
fn rows_are_consistent_measures() {
    for kind in [Kind::Summary, Kind::Daily, Kind::Current] {
        for n_tenant in 0..10 {
            let mut s = spec(kind);
            s.tenant_id = derived_uuid(&["t", &n_tenant.to_string()]);
            let (_, rows) = csv(&s);
            for r in &rows {
                assert!(!r["tenant.id"].is_empty() && !r["application.id"].is_empty());
                assert!(uuid::Uuid::parse_str(&r["application.id"]).is_ok());
                assert!(!r["name"].is_empty());
                assert_eq!(r["edition"], EDITION);
                assert!(r["infra.id"].is_empty() && r["infra.owner_id"].is_empty());
                assert!(r["infra.backend_type"].is_empty());
                for m in ["absolute", "delta", "effective"] {
                    let p = n(r, &format!("usage.{m}.production"));
                    let t = n(r, &format!("usage.{m}.trial"));
                    assert_eq!(n(r, &format!("usage.{m}.total")), p + t, "{r:?}");
                }
                for scope in ["production", "trial", "total"] {
                    let abs = n(r, &format!("usage.absolute.{scope}"));
                    assert!(n(r, &format!("usage.delta.{scope}")) <= abs, "{r:?}");
                    assert!(n(r, &format!("usage.effective.{scope}")) <= abs, "{r:?}");
                }
                if is_compute(r) {
                    for (col, v) in r.iter().filter(|(k, _)| k.starts_with("usage.")) {
                        assert!(v.parse::<u64>().unwrap().is_multiple_of(36), "{col}");
                    }
                }
                assert!(!r["sku"].is_empty());
            }
        }
    }
}

#[test]
fn each_tenant_row_is_its_own_usage_not_a_sum() {
    let (_, rows) = csv(&spec(Kind::Summary));
    let subject = spec(Kind::Summary).tenant_id;
    let items: BTreeSet<&str> = rows.iter().map(|r| r["name"].as_str()).collect();
    let (mut compared, mut equal) = (0, 0);
    for item in items {
        let of_item = rows.iter().filter(|r| r["name"] == item);
        let (own, children): (Vec<_>, Vec<_>) = of_item.partition(|r| r["tenant.id"] == subject);
        assert_eq!(own.len(), 1, "one row of the partner's own per item");
        for col in ["usage.absolute.total", "usage.delta.total"] {
            let sum: u64 = children.iter().map(|r| n(r, col)).sum();
            if sum > 0 {
                compared += 1;
                // Small counts may match by chance; bytes never do.
                if n(own[0], col) == sum {
                    assert_ne!(item, "pw_base_storage");
                    equal += 1;
                }
            }
        }
    }
    assert!(
        compared >= 4 && equal * 3 < compared,
        "{equal} of {compared}"
    );
    // One row per tenant × item: a billing sum over a tenant's rows is its usage.
    let pairs: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r["tenant.id"].as_str(), r["name"].as_str()))
        .collect();
    assert_eq!(pairs.len(), rows.len());
}

#[test]
fn scope_rule_matters_for_partners_and_customers() {
    let (_, rows) = csv(&spec(Kind::Summary));
    let trial = |kind: &str| {
        rows.iter()
            .any(|r| r["tenant.kind"] == kind && n(r, "usage.absolute.trial") > 0)
    };
    assert!(trial("partner") && trial("customer"));
    assert!(
        rows.iter()
            .any(|r| r["tenant.kind"] == "partner" && n(r, "usage.absolute.production") > 0)
    );
    let off = with(|s| {
        s.content.customer_trial = false;
        s.content.partner_trial = false;
    });
    assert!(
        csv(&off)
            .1
            .iter()
            .all(|r| n(r, "usage.absolute.trial") == 0)
    );
    // Forced: every report with customers has one in trial.
    for i in 0..30 {
        let s = with(|s| s.tenant_id = derived_uuid(&["trial", &i.to_string()]));
        assert!(
            csv(&s)
                .1
                .iter()
                .any(|r| r["tenant.kind"] == "customer" && n(r, "usage.absolute.trial") > 0)
        );
    }
}

#[test]
fn levels_choose_the_tenants() {
    let kinds = |s: &ReportSpec| -> BTreeMap<String, String> {
        csv(s)
            .1
            .into_iter()
            .map(|r| (r["tenant.id"].clone(), r["tenant.kind"].clone()))
            .collect()
    };
    let subject = spec(Kind::Summary).tenant_id;
    let itself = kinds(&with(|s| s.level = Level::Itself));
    assert_eq!(itself.len(), 1);
    assert_eq!(itself[&subject], "partner");
    let partners = kinds(&with(|s| s.level = Level::AllPartners));
    assert!(partners.len() >= 3 && partners.values().all(|k| k == "partner"));
    let mut saw_child_partner = false;
    for i in 0..20 {
        let s = with(|s| s.tenant_id = derived_uuid(&["lvl", &i.to_string()]));
        let k = kinds(&s);
        assert_eq!(k[&s.tenant_id], "partner");
        let children: Vec<&String> = k
            .iter()
            .filter(|(id, _)| **id != s.tenant_id)
            .map(|(_, v)| v)
            .collect();
        assert!(children.iter().filter(|k| **k == "customer").count() >= 1);
        let child_partners = children.iter().filter(|k| **k == "partner").count();
        assert!(child_partners <= 1);
        saw_child_partner |= child_partners == 1;
    }
    assert!(saw_child_partner);
    assert_eq!(
        json(&with(|s| s.level = Level::Itself))["params"]["report_level"],
        0
    );
}

#[test]
fn hide_zero_usage_drops_rows_with_every_measure_zero() {
    let all_zero = |r: &CsvRecord| {
        r.iter()
            .filter(|(k, _)| k.starts_with("usage."))
            .all(|(_, v)| v == "0")
    };
    let (_, rows) = csv(&spec(Kind::Summary));
    assert!(rows.iter().any(all_zero), "mobiles are never used");
    let hidden = with(|s| s.hide_zero_usage = true);
    let (_, kept) = csv(&hidden);
    assert!(!kept.is_empty() && !kept.iter().any(all_zero));
    assert_eq!(kept.len(), rows.iter().filter(|r| !all_zero(r)).count());
    assert_eq!(json_rows(&hidden).len(), kept.len());
}

#[test]
fn dr_row_present_in_every_report() {
    for i in 0..30 {
        for level in [Level::Itself, Level::DirectPartners] {
            let s = with(|s| {
                s.tenant_id = derived_uuid(&["t", &i.to_string()]);
                s.hide_zero_usage = true;
                s.level = level;
            });
            let (_, rows) = csv(&s);
            let dr: Vec<_> = rows
                .iter()
                .filter(|r| r["name"] == "pw_base_adv_dr_compute_points")
                .collect();
            assert!(dr.len() >= if level == Level::Itself { 1 } else { 2 });
            for r in dr {
                let v = n(r, "usage.delta.total");
                assert!(v >= 7200 && v.is_multiple_of(36), "{v}");
            }
        }
    }
}

/// Both files describe the same usage: the mapping a client compares them with.
fn assert_csv_matches_json(s: &ReportSpec) {
    let (_, rows) = csv(s);
    let items = json_rows(s);
    assert_eq!(items.len(), rows.len());
    let sku_path: Vec<String> = s.content.sku_column.split('.').map(str::to_owned).collect();
    for (r, j) in rows.iter().zip(&items) {
        assert_eq!(j["tenant_uuid"], r["tenant.id"].as_str());
        assert!(j["tenant_id"].is_u64());
        assert_eq!(j["application_id"], r["application.id"].as_str());
        assert_eq!(j["name"], r["name"].as_str());
        let compute = is_compute(r);
        let value = if compute {
            "usage.delta.total"
        } else {
            "usage.absolute.total"
        };
        assert_eq!(j["value"].as_u64().unwrap(), n(r, value));
        assert_eq!(
            j["absolute_value"].as_u64().unwrap(),
            n(r, "usage.absolute.total")
        );
        assert_eq!(j["type"], if compute { "infra" } else { "feature" });
        assert_eq!(j["offering_item"]["status"], 1);
        let day = r.get("date").cloned().unwrap_or_else(|| {
            if s.kind == Kind::Current {
                s.end.to_string()
            } else {
                s.start.to_string()
            }
        });
        assert_eq!(j["range_start"], format!("{day}T00:00:00+00:00").as_str());
        match r["infra.id"].as_str() {
            "" => {
                assert!(j["infra_id"].is_null());
                assert!(j.get("infra_backend_type").is_none());
            }
            id => {
                assert_eq!(j["infra_id"], id);
                assert_eq!(j["infra_backend_type"], r["infra.backend_type"].as_str());
            }
        }
        if s.show_skus {
            let mut at = j;
            for part in &sku_path {
                let key = at
                    .as_object()
                    .unwrap()
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(part))
                    .unwrap();
                at = &at[key];
            }
            assert_eq!(at, r[&s.content.sku_column].as_str());
        } else {
            assert!(j.get("sku").is_none());
        }
        assert!(j.get("tenant_kind").is_none() || s.content.extra_columns);
    }
}

#[test]
fn json_v2_matches_csv_v2() {
    for kind in [Kind::Summary, Kind::Daily, Kind::Current] {
        assert_csv_matches_json(&spec(kind));
    }
    assert_csv_matches_json(&with(|s| s.show_skus = false));
    assert_csv_matches_json(&with(|s| {
        s.content.infra_rows = true;
        s.content.reorder_columns = true;
        s.content.extra_columns = true;
        s.content.sku_column = "offering_item.sku".into();
    }));
    let v = json(&spec(Kind::Daily));
    assert_eq!(v["params"]["kind"], 4);
    assert_eq!(v["params"]["begin_date"], 1_714_521_600);
    assert_eq!(v["params"]["gen_date"], 1_717_200_000);
    let keys = json_key_order(&render(&spec(Kind::Summary), Format::JsonV2, false));
    assert_eq!(
        keys,
        [
            "tenant_uuid",
            "tenant_id",
            "application_id",
            "edition",
            "infra_id",
            "measurement_unit",
            "name",
            "usage_name",
            "offering_item",
            "range_start",
            "value",
            "absolute_value",
            "type",
            "sku"
        ]
    );
}

#[test]
fn sku_column_knob() {
    for name in ["SKU", "offering_item.sku", "Offering_Item.SKU", "sku_code"] {
        let s = with(|s| s.content.sku_column = name.into());
        let (header, rows) = csv(&s);
        assert_eq!(header.last().map(String::as_str), Some(name));
        assert!(rows.iter().all(|r| !r[name].is_empty()));
        assert_csv_matches_json(&s);
    }
    let nested = json_rows(&with(|s| s.content.sku_column = "offering_item.sku".into()));
    assert_eq!(nested[0]["offering_item"]["sku"], "SP4ASTENS");
    assert!(nested[0].get("sku").is_none());
    let cased = json_rows(&with(|s| s.content.sku_column = "Offering_Item.SKU".into()));
    assert_eq!(cased[0]["offering_item"]["SKU"], "SP4ASTENS");
    let elsewhere = json_rows(&with(|s| s.content.sku_column = "product.sku".into()));
    assert_eq!(elsewhere[0]["product"]["sku"], "SP4ASTENS");
    // A partner without SKU access: the column is there, every cell empty.
    let no_access = with(|s| s.no_skus = true);
    assert!(csv(&no_access).1.iter().all(|r| r["sku"].is_empty()));
    assert!(json_rows(&no_access).iter().all(|j| j["sku"] == ""));
}

#[test]
fn extra_reordered_and_editionless_columns() {
    let (plain, _) = csv(&spec(Kind::Summary));
    let extra = with(|s| s.content.extra_columns = true);
    let (header, rows) = csv(&extra);
    for col in [
        "tenant.name",
        "application.name",
        "usage.unit",
        "report.generated_at",
    ] {
        assert!(header.contains(&col.to_owned()), "{col}");
    }
    assert_ne!(
        header.last().map(String::as_str),
        Some("report.generated_at")
    );
    assert!(rows.iter().any(|r| r["tenant.name"].contains(',')
        || r["tenant.name"].contains('"')
        || r["tenant.name"].contains('ü')));
    assert!(
        rows.iter()
            .all(|r| ["bytes", "quantity", "seconds"].contains(&r["usage.unit"].as_str()))
    );
    let j = json_rows(&extra);
    assert!(j[0]["tenant_kind"].is_string() && j[0]["tenant_name"].is_string());

    let shuffled = with(|s| s.content.reorder_columns = true);
    let (order, rows) = csv(&shuffled);
    assert_ne!(order, plain);
    assert_eq!(
        order.iter().collect::<BTreeSet<_>>(),
        plain.iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(rows, csv(&spec(Kind::Summary)).1, "same cells, other order");
    let keys = json_key_order(&render(&shuffled, Format::JsonV2, false));
    let plain_keys = json_key_order(&render(&spec(Kind::Summary), Format::JsonV2, false));
    assert_ne!(keys, plain_keys);
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>(),
        plain_keys.iter().collect::<BTreeSet<_>>()
    );

    let editionless = with(|s| s.content.edition_column = false);
    assert!(!csv(&editionless).0.contains(&"edition".to_owned()));
    assert!(
        json_rows(&editionless)
            .iter()
            .all(|j| j.get("edition").is_none())
    );
}

#[test]
fn compute_points_item_knob() {
    for item in [
        ComputePointsItem::PwBaseAdvDrComputePoints,
        ComputePointsItem::ComputePoints,
        ComputePointsItem::PwComputePoints,
        ComputePointsItem::DreComputePoints,
        ComputePointsItem::PDreComputePoints,
    ] {
        let s = with(|s| s.content.compute_points_item = item);
        let (_, rows) = csv(&s);
        let dr: Vec<_> = rows.iter().filter(|r| r["name"] == item.as_str()).collect();
        assert!(!dr.is_empty(), "{}", item.as_str());
        let others = COMPUTE_NAMES.iter().filter(|n| **n != item.as_str());
        for other in others {
            assert!(rows.iter().all(|r| r["name"] != *other));
        }
        let j: Vec<_> = json_rows(&s)
            .into_iter()
            .filter(|j| j["name"] == item.as_str())
            .collect();
        assert_eq!(j.len(), dr.len());
        assert!(j.iter().all(|j| j["usage_name"] == "compute_points"
            && j["measurement_unit"] == "seconds"
            && j["type"] == "infra"));
        // The figures do not depend on the name.
        let default_rows = csv(&spec(Kind::Summary)).1;
        let values = |rows: &[CsvRecord]| -> Vec<String> {
            rows.iter()
                .filter(|r| is_compute(r))
                .map(|r| r["usage.delta.total"].clone())
                .collect()
        };
        assert_eq!(values(&rows), values(&default_rows));
    }
}

#[test]
fn infra_rows_split_storage_per_backend() {
    let s = with(|s| s.content.infra_rows = true);
    let (_, rows) = csv(&s);
    let storage: Vec<_> = rows
        .iter()
        .filter(|r| r["name"] == "pw_base_storage")
        .collect();
    let tenants: BTreeSet<&str> = rows.iter().map(|r| r["tenant.id"].as_str()).collect();
    assert_eq!(storage.len(), tenants.len() * 3);
    for r in &storage {
        assert!(["acronis", "azure", "google"].contains(&r["infra.backend_type"].as_str()));
        assert!(uuid::Uuid::parse_str(&r["infra.id"]).is_ok());
        assert!(uuid::Uuid::parse_str(&r["infra.owner_id"]).is_ok());
    }
    assert!(
        rows.iter()
            .filter(|r| r["name"] != "pw_base_storage")
            .all(|r| r["infra.id"].is_empty())
    );
    assert_csv_matches_json(&s);
}

#[test]
fn layouts_unknown_and_html() {
    let unknown = with(|s| s.content.layout = Layout::Unknown);
    let text = String::from_utf8(render(&unknown, Format::CsvV2, false)).unwrap();
    assert!(text.starts_with("Col A,Col B,Col C\n"), "{text}");
    assert!(csv_of(text.as_bytes()).1.len() > 5);
    let j = json(&unknown);
    assert!(j["data"][0]["foo"].is_u64());
    assert!(j.get("tenants").is_none());
    assert_eq!(
        content_type(&unknown, Format::CsvV2),
        "text/csv; charset=utf-8"
    );

    let html = with(|s| s.content.layout = Layout::Html);
    for f in Format::NAMES {
        let f = Format::parse(f).unwrap();
        let body = String::from_utf8(render(&html, f, false)).unwrap();
        assert!(body.starts_with("<!DOCTYPE html><html><head>"));
        assert!(body.contains("<title>Sign in</title>"));
        assert_eq!(content_type(&html, f), "text/html; charset=utf-8");
    }
    // Neither gets padding: it is rows of the vendor layout.
    assert!(
        StoredBody::build(&html, Format::CsvV2, false, 10_000)
            .padding
            .is_none()
    );
}

#[test]
fn legacy_formats_convert_dr_to_points() {
    let s = spec(Kind::Summary);
    let (_, rows) = csv(&s);
    let secs = n(
        rows.iter()
            .find(|r| is_compute(r) && n(r, "usage.delta.total") > 0)
            .unwrap(),
        "usage.delta.total",
    );
    let legacy = String::from_utf8(render(&s, Format::Csv, false)).unwrap();
    let points = format_hundredths(u128::from(secs) * 100 / 3600);
    assert!(legacy.contains(&format!("{points},points")), "{points}");
    let html = String::from_utf8(render(&s, Format::Html, false)).unwrap();
    assert!(html.contains("<table>") && html.contains("points"));
    serde_json::from_slice::<serde_json::Value>(&render(&s, Format::JsonV1, false)).unwrap();
}

#[test]
fn padding_rows_are_numbered_in_twelve_digits_from_any_start() {
    let padding = Padding::new(&spec(Kind::Summary), 100_000_000).unwrap();
    let prefix = String::from_utf8(padding.prefix.clone()).unwrap();
    let suffix = String::from_utf8(padding.suffix.clone()).unwrap();
    for (from, to) in [(0u64, 3u64), (8, 12), (999, 1001), (99_999, 100_001)] {
        let mut out = Vec::new();
        padding.write_rows(from, to, &mut out);
        let expected: String = (from..to)
            .map(|i| format!("{prefix}{i:012}{suffix}"))
            .collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

#[test]
fn padding_rows_are_rows_of_the_layout() {
    let variants = [
        spec(Kind::Summary),
        spec(Kind::Daily),
        with(|s| {
            s.content.reorder_columns = true;
            s.content.extra_columns = true;
            s.content.sku_column = "SKU".into();
        }),
        with(|s| s.show_skus = false),
    ];
    for s in variants {
        for pad in [1u64, 150, 1_000, 10_007] {
            let body = StoredBody::build(&s, Format::CsvV2, false, pad);
            let (header, rows) = csv_of(&body.to_bytes());
            assert_eq!(header, csv(&s).0);
            let padded: Vec<_> = rows.iter().filter(|r| r["name"] == "pw_padding").collect();
            assert_eq!(padded.len() as u64, body.padding.as_ref().unwrap().rows());
            let ids: BTreeSet<&str> = padded.iter().map(|r| r["tenant.id"].as_str()).collect();
            assert_eq!(ids.len(), padded.len(), "distinct tenants");
            for r in padded {
                assert!(uuid::Uuid::parse_str(&r["tenant.id"]).is_ok());
                assert_eq!(n(r, "usage.absolute.production"), 1);
                assert_eq!(r["tenant.kind"], "customer");
                if s.show_skus {
                    assert_eq!(r[&s.content.sku_column], "SP4APDENS");
                }
            }
        }
    }
}

#[test]
fn padding_is_exact_and_streams() {
    let s = spec(Kind::Summary);
    for pad in [1u64, 150, 151, 10_000, 1_000_003] {
        let body = std::sync::Arc::new(StoredBody::build(&s, Format::CsvV2, false, pad));
        let whole = body.to_bytes();
        assert_eq!(whole.len() as u64, body.len());
        let row_len = body.padding.as_ref().unwrap().row_len;
        let base = body.base.len() as u64;
        if pad >= row_len {
            assert_eq!(body.len(), base + pad);
        } else {
            assert_eq!(body.len(), base + row_len);
        }
        let mut cursor = ChunkCursor::new(body.clone());
        let mut streamed = Vec::new();
        while let Some(c) = cursor.next_chunk() {
            streamed.extend_from_slice(&c);
        }
        assert_eq!(streamed, whole.to_vec());
        csv_of(&whole);
    }
}

#[test]
fn time_helpers() {
    assert_eq!(rfc3339_utc(1_565_249_818), "2019-08-08T07:36:58+00:00");
    assert_eq!(unix_midnight("2024-03-01".parse().unwrap()), 1_709_251_200);
    assert_eq!(unix_midnight("1970-01-01".parse().unwrap()), 0);
}

/// `cargo test --lib dump_default_files -- --ignored --nocapture` prints the files of a
/// default usage_summary report with SKUs.
#[test]
#[ignore]
fn dump_default_files() {
    let s = spec(Kind::Summary);
    println!(
        "{}",
        String::from_utf8(render(&s, Format::CsvV2, false)).unwrap()
    );
    println!(
        "{}",
        String::from_utf8(render(&s, Format::JsonV2, false)).unwrap()
    );
}
