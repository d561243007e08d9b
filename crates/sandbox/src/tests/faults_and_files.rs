//! Faults, downloads (whole, streamed, gzip, cut short), deletion, statistics, tenants and the
//! content knobs, over HTTP.

use super::*;

#[tokio::test]
async fn fault_rule_fires_exactly_times() {
    let mut sc = fast();
    sc.faults.push(FaultRule {
        endpoint: Endpoint::StoredList,
        times: 2,
        status: Some(429),
        retry_after: Some("1".into()),
        ..FaultRule::default()
    });
    sc.faults.push(FaultRule {
        endpoint: Endpoint::Token,
        times: 1,
        status: Some(503),
        ..FaultRule::default()
    });
    let sb = Sandbox::start(sc, 0).await.unwrap();
    let http = client();

    let resp = http
        .post(format!("{}/api/2/idp/token", sb.base_url()))
        .basic_auth(sb.client_id(), Some(sb.client_secret()))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;

    let url = format!("{}/api/2/reports/{id}/stored", sb.base_url());
    for _ in 0..2 {
        let resp = http.get(&url).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "1");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], 429);
    }
    for _ in 0..2 {
        let resp = http.get(&url).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let stats = sb.stats();
    assert_eq!(stats.faults_injected, 3);
    assert_eq!(stats.stored_list_requests, 4);
    assert_eq!(stats.token_requests, 2);
    sb.shutdown().await;
}

async fn assert_truncated(sb: &Sandbox, http: &reqwest::Client, tok: &str, id: &str, sid: &str) {
    let resp = download(sb, http, tok, id, sid).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // A decoding client hides the wire length, so only check it when present.
    let announced: u64 = resp
        .headers()
        .get("content-length")
        .map_or(u64::MAX, |v| v.to_str().unwrap().parse().unwrap());
    let mut resp = resp;
    let mut got = 0u64;
    let outcome = loop {
        match resp.chunk().await {
            Ok(Some(c)) => got += c.len() as u64,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(outcome.is_err(), "a truncated body must end in an error");
    assert!(got < announced, "{got} of {announced}");
    if announced != u64::MAX {
        assert!(got > 0, "the first half should arrive before the abort");
    }
}

#[tokio::test]
async fn truncate_fault_aborts_download() {
    let mut sc = fast();
    sc.faults.push(FaultRule {
        endpoint: Endpoint::Download,
        times: 2,
        truncate: true,
        ..FaultRule::default()
    });
    let sb = Sandbox::start(sc, 0).await.unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;
    let items = stored(&sb, &http, &tok, &id).await;
    let sid = saved_id(&items, "csv_v2_0").to_owned();
    // Plain on the wire, then gzip-encoded and decoded by the client.
    assert_truncated(&sb, &raw_client(), &tok, &id, &sid).await;
    assert_truncated(&sb, &http, &tok, &id, &sid).await;
    // Only twice: the retry gets the whole file.
    let body = download(&sb, &http, &tok, &id, &sid)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        server::gzip(&body).unwrap().len() as u64,
        items[0]["size"].as_u64().unwrap()
    );
    assert_eq!(sb.stats().faults_injected, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn large_padded_download_streams() {
    let mut sc = fast();
    sc.pad_bytes = 9 * 1024 * 1024;
    sc.faults.push(FaultRule {
        endpoint: Endpoint::Download,
        times: 1,
        truncate: true,
        ..FaultRule::default()
    });
    let sb = Sandbox::start(sc, 0).await.unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;
    let items = stored(&sb, &http, &tok, &id).await;
    let sid = saved_id(&items, "csv_v2_0").to_owned();
    let size = items[0]["size"].as_u64().unwrap();
    assert!(size > 9 * 1024 * 1024);
    assert_truncated(&sb, &http, &tok, &id, &sid).await;
    let resp = download(&sb, &http, &tok, &id, &sid).await;
    assert!(resp.headers().get("content-encoding").is_none());
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len() as u64, size);
    // The padding's last row, in the report's own columns, with a SKU as asked.
    assert!(body.ends_with(b",SP4APDENS\n"));
    sb.shutdown().await;
}

#[tokio::test]
async fn duplicate_stored_lists_older_copy_first() {
    let sb = Sandbox::start(
        Scenario {
            duplicate_stored: true,
            ..fast()
        },
        0,
    )
    .await
    .unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0", "json_v2_0"])).await;
    let items = stored(&sb, &http, &tok, &id).await;
    assert_eq!(items.len(), 4);
    let csv: Vec<&Value> = items
        .iter()
        .filter(|i| i["report_format"] == "csv_v2_0")
        .collect();
    assert_eq!(csv.len(), 2);
    assert!(csv[0]["created_at"].as_str() < csv[1]["created_at"].as_str());
    let old = download(&sb, &http, &tok, &id, csv[0]["id"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    let new = download(&sb, &http, &tok, &id, csv[1]["id"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert_ne!(old, new);
    assert_eq!(
        old.lines().next(),
        new.lines().next(),
        "same layout, other figures"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn delete_needs_matching_version() {
    let sb = Sandbox::start(fast(), 0).await.unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;
    let url = format!("{}/api/2/reports/{id}", sb.base_url());
    let del = |q: &str| http.delete(format!("{url}{q}")).bearer_auth(&tok).send();
    assert_eq!(del("").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        del("?version=x").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        del("?version=2").await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        del("?version=1").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        del("?version=1").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let resp = http
        .get(format!("{url}/stored"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let stats = sb.stats();
    assert!(stats.reports[0].deleted);
    assert_eq!(stats.delete_requests, 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn stats_endpoint_and_unknown_routes() {
    let sb = Sandbox::start(
        Scenario {
            response_delay: Duration::from_millis(50),
            ..fast()
        },
        0,
    )
    .await
    .unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let resp = http
        .get(format!("{}/api/2/nothing/here", sb.base_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 404);
    let resp = http
        .get(format!("{}/api/2/idp/token", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    let started = std::time::Instant::now();
    let resp = http
        .get(format!("{}/_sandbox/stats", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(50));
    let stats: Stats = resp.json().await.unwrap();
    assert_eq!(stats.token_requests, 1);
    assert!(stats.connections >= 1);

    let resp = http
        .get(format!(
            "{}/api/2/clients/{}",
            sb.base_url(),
            sb.client_id()
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["tenant_id"], client_tenant_id("sandbox-client"));
    sb.shutdown().await;
}

/// `GET /tenants/{id}`: the client's own tenant, tree tenants, their parents and any other UUID
/// are visible; an `unknown` tenant is not (nor its children); each call is counted.
#[tokio::test]
async fn single_tenants_are_visible_unless_unknown() {
    const HIDDEN: &str = "0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11";
    let mut scenario = fast();
    scenario.tenants.insert(
        HIDDEN.to_owned(),
        TenantBehaviour {
            unknown: true,
            ..TenantBehaviour::default()
        },
    );
    let sb = Sandbox::start(scenario, 0).await.unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let get = |path: String| {
        let request = http
            .get(format!("{}/api/2/{path}", sb.base_url()))
            .bearer_auth(&tok);
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let own = client_tenant_id(sb.client_id());
    let (status, v) = get(format!("tenants/{own}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (v["id"].as_str(), v["kind"].as_str()),
        (Some(own.as_str()), Some("partner"))
    );
    let (_, v) = get(format!("tenants/{}", scenario::DEFAULT_PARTNER)).await;
    assert_eq!(v["kind"], "partner");
    let (_, v) = get("tenants/3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a002".into()).await;
    assert_eq!(v["name"], "Alpenblick GmbH");
    let (_, v) = get(format!("tenants/{}", TENANT.to_ascii_uppercase())).await;
    assert_eq!(
        (v["id"].as_str(), v["kind"].as_str()),
        (Some(TENANT), Some("customer"))
    );
    for path in [
        format!("tenants/{HIDDEN}"),
        format!("tenants/{HIDDEN}/children"),
        "tenants/not-a-uuid".to_owned(),
    ] {
        let (status, v) = get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(v["error"]["message"], "Tenant not found");
    }
    let resp = http
        .get(format!("{}/api/2/tenants/{TENANT}", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (_, _) = get(format!("clients/{}", sb.client_id())).await;
    let stats = sb.stats();
    // Refused and unknown ones count too (not the children listing).
    assert_eq!((stats.tenant_requests, stats.client_requests), (7, 1));
    sb.shutdown().await;
}

#[tokio::test]
async fn bind_error_names_the_port() {
    let first = Sandbox::start(fast(), 0).await.unwrap();
    let port = first.local_addr().port();
    let err = Sandbox::start(fast(), port).await.unwrap_err().to_string();
    assert!(err.contains(&port.to_string()), "{err}");
    first.shutdown().await;
}

#[tokio::test]
async fn deterministic_ids_agree_across_sandboxes() {
    let scenario = Scenario {
        deterministic_ids: true,
        ..fast()
    };
    let a = Sandbox::start(scenario.clone(), 0).await.unwrap();
    let b = Sandbox::start(scenario, 0).await.unwrap();
    let http = client();
    let (ta, tb) = (token(&a, &http).await, token(&b, &http).await);
    let csv = report_body(&["csv_v2_0"]);
    let both = report_body(&["csv_v2_0", "json_v2_0"]);
    // The same requests in another order; the repeated one gets a new id each time.
    let a1 = create_ok(&a, &http, &ta, &csv).await;
    let a2 = create_ok(&a, &http, &ta, &both).await;
    let a3 = create_ok(&a, &http, &ta, &csv).await;
    let b2 = create_ok(&b, &http, &tb, &both).await;
    let b1 = create_ok(&b, &http, &tb, &csv).await;
    let b3 = create_ok(&b, &http, &tb, &csv).await;
    assert_eq!([&a1, &a2, &a3], [&b1, &b2, &b3]);
    assert!(a1 != a2 && a1 != a3 && a2 != a3);
    for id in [&a1, &a2, &a3] {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    let ids = |items: Vec<Value>| {
        let mut ids: Vec<String> = items
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let stored_a = ids(stored(&a, &http, &ta, &a2).await);
    assert_eq!(stored_a, ids(stored(&b, &http, &tb, &b2).await));
    assert_eq!(stored_a.len(), 2);
    assert_ne!(stored_a[0], stored_a[1]);
    assert_ne!(
        ids(stored(&a, &http, &ta, &a1).await),
        ids(stored(&a, &http, &ta, &a3).await)
    );
    a.shutdown().await;
    b.shutdown().await;

    // Off by default: ids are random.
    let c = Sandbox::start(fast(), 0).await.unwrap();
    let d = Sandbox::start(fast(), 0).await.unwrap();
    let (tc, td) = (token(&c, &http).await, token(&d, &http).await);
    assert_ne!(
        create_ok(&c, &http, &tc, &csv).await,
        create_ok(&d, &http, &td, &csv).await
    );
    c.shutdown().await;
    d.shutdown().await;
}

async fn download_all(
    sb: &Sandbox,
    body: &Value,
    formats: &[&str],
) -> Vec<(String, String, bytes::Bytes)> {
    let http = client();
    let tok = token(sb, &http).await;
    let id = create_ok(sb, &http, &tok, body).await;
    let items = stored(sb, &http, &tok, &id).await;
    let mut out = Vec::new();
    for f in formats {
        let resp = download(sb, &http, &tok, &id, saved_id(&items, f)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        out.push(((*f).to_owned(), ct, resp.bytes().await.unwrap()));
    }
    out
}

#[tokio::test]
async fn content_knobs_reach_the_files_per_tenant() {
    let other = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001";
    let portal = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a002";
    let yaml = format!(
        "generation_delay: 0s\n\
         content: {{sku_column: offering_item.sku, compute_points_item: dre_compute_points}}\n\
         tenants:\n  {other}: {{sku_column: SKU, edition_column: false}}\n  {portal}: {{layout: html}}\n"
    );
    let sb = Sandbox::start(Scenario::from_yaml_str(&yaml).unwrap(), 0)
        .await
        .unwrap();
    let formats = ["csv_v2_0", "json_v2_0"];

    let files = download_all(&sb, &report_body(&formats), &formats).await;
    let csv_text = std::str::from_utf8(&files[0].2).unwrap();
    let header = csv_text.lines().next().unwrap();
    assert!(header.starts_with("tenant.id,tenant.kind,application.id,edition,name,"));
    assert!(header.ends_with(",usage.effective.trial,offering_item.sku"));
    assert!(csv_text.contains(",dre_compute_points,"));
    let json: Value = serde_json::from_slice(&files[1].2).unwrap();
    let row = &json["tenants"][0];
    assert_eq!(row["offering_item"]["sku"], "SP4ASTENS");
    assert!(row.get("sku").is_none() && row.get("tenant_kind").is_none());

    let mut body = report_body(&formats);
    body["parameters"]["tenant_id"] = json!(other);
    let files = download_all(&sb, &body, &formats).await;
    let header = std::str::from_utf8(&files[0].2)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        header.ends_with(",SKU") && !header.contains(",edition,"),
        "{header}"
    );
    let json: Value = serde_json::from_slice(&files[1].2).unwrap();
    assert_eq!(json["tenants"][0]["SKU"], "SP4ASTENS");
    assert!(json["tenants"][0].get("edition").is_none());

    // A captive portal answers every format with its sign-in page.
    let all = ["csv", "html", "json_v1", "csv_v2_0", "json_v2_0"];
    let mut body = report_body(&all);
    body["parameters"]["tenant_id"] = json!(portal);
    for (format, content_type, bytes) in download_all(&sb, &body, &all).await {
        assert_eq!(content_type, "text/html; charset=utf-8", "{format}");
        assert!(
            bytes.starts_with(b"<!DOCTYPE html><html><head>"),
            "{format}"
        );
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .contains("<title>Sign in</title>")
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn level_itself_and_unknown_layout_over_http() {
    let yaml = "generation_delay: 0s\ncontent: {layout: unknown}\n";
    let sb = Sandbox::start(Scenario::from_yaml_str(yaml).unwrap(), 0)
        .await
        .unwrap();
    let formats = ["csv_v2_0", "json_v2_0"];
    let mut body = report_body(&formats);
    body["parameters"]["level"] = json!("itself");
    let files = download_all(&sb, &body, &formats).await;
    assert_eq!(files[0].1, "text/csv; charset=utf-8");
    assert!(files[0].2.starts_with(b"Col A,Col B,Col C\n"));
    let json: Value = serde_json::from_slice(&files[1].2).unwrap();
    assert!(json["data"][0]["foo"].is_u64());
    assert_eq!(sb.stats().reports[0].level, "itself");
    sb.shutdown().await;

    // And `itself` in the vendor layout: the tenant's own rows only.
    let sb = Sandbox::start(fast(), 0).await.unwrap();
    let files = download_all(&sb, &body, &formats).await;
    let mut reader = csv::Reader::from_reader(&files[0].2[..]);
    let kinds: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[1].to_owned())
        })
        .collect();
    assert!(!kinds.is_empty());
    assert!(
        kinds
            .iter()
            .all(|(id, kind)| id == TENANT && kind == "partner")
    );
    sb.shutdown().await;
}
