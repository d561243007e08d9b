//! End-to-end tests of the sandbox over loopback HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const TENANT: &str = "ede9f834-70b3-476c-83d9-736f9f8c7dae";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// No transparent decompression, to see what goes over the wire.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .gzip(false)
        .build()
        .unwrap()
}

fn fast() -> Scenario {
    Scenario {
        generation_delay: Duration::ZERO,
        ..Scenario::default()
    }
}

async fn token(sb: &Sandbox, http: &reqwest::Client) -> String {
    let resp = http
        .post(format!("{}/api/2/idp/token", sb.base_url()))
        .basic_auth(sb.client_id(), Some(sb.client_secret()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

fn report_body(formats: &[&str]) -> Value {
    json!({
        "parameters": {
            "tenant_id": TENANT,
            "kind": "usage_summary",
            "level": "direct_partners",
            "period": {"start": "2024-05-01", "end": "2024-05-31"},
            "formats": formats,
            "hide_zero_usage": false,
            "show_skus": true
        },
        "schedule": {"type": "once"},
        "result_action": "save"
    })
}

async fn create(
    sb: &Sandbox,
    http: &reqwest::Client,
    tok: &str,
    body: &Value,
) -> reqwest::Response {
    http.post(format!("{}/api/2/reports", sb.base_url()))
        .bearer_auth(tok)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn create_ok(sb: &Sandbox, http: &reqwest::Client, tok: &str, body: &Value) -> String {
    let resp = create(sb, http, tok, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn stored(sb: &Sandbox, http: &reqwest::Client, tok: &str, id: &str) -> Vec<Value> {
    let resp = http
        .get(format!("{}/api/2/reports/{id}/stored", sb.base_url()))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

async fn download(
    sb: &Sandbox,
    http: &reqwest::Client,
    tok: &str,
    id: &str,
    stored_id: &str,
) -> reqwest::Response {
    http.get(format!(
        "{}/api/2/reports/{id}/stored/{stored_id}",
        sb.base_url()
    ))
    .bearer_auth(tok)
    .send()
    .await
    .unwrap()
}

fn saved_id<'a>(items: &'a [Value], format: &str) -> &'a str {
    items
        .iter()
        .filter(|i| i["report_format"] == format && i["status"] == "saved")
        .max_by_key(|i| i["created_at"].as_str().unwrap().to_owned())
        .unwrap()["id"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn token_endpoint() {
    let sb = Sandbox::start(fast(), 0).await.unwrap();
    let http = client();
    let url = format!("{}/api/2/idp/token", sb.base_url());

    let resp = http
        .post(&url)
        .basic_auth(sb.client_id(), Some(sb.client_secret()))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert!(v["access_token"].as_str().unwrap().len() >= 40);
    assert_eq!(v["token_type"], "bearer");
    let now = jiff::Timestamp::now().as_second();
    let expires = v["expires_on"].as_i64().unwrap();
    assert!((now + 7190..=now + 7210).contains(&expires), "{expires}");
    assert!(v["id_token"].is_string());

    // Credentials as form fields are accepted too.
    let resp = http
        .post(&url)
        .body("grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let resp = http
        .post(&url)
        .basic_auth(sb.client_id(), Some("wrong-secret-xyz"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let text = resp.text().await.unwrap();
    // Echoed, as careless servers do: the client's scrub is what keeps it out of output.
    assert!(text.contains("wrong-secret-xyz"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "invalid_client");

    let resp = http
        .post(&url)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = http
        .post(&url)
        .basic_auth(sb.client_id(), Some(sb.client_secret()))
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "unsupported_grant_type");

    assert_eq!(sb.stats().token_requests, 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn api_requires_valid_unexpired_token() {
    let sb = Sandbox::start(
        Scenario {
            token_lifetime: Duration::from_millis(300),
            ..fast()
        },
        0,
    )
    .await
    .unwrap();
    let http = client();
    let resp = create(&sb, &http, "made-up-token", &report_body(&["csv_v2_0"])).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 401);
    assert_eq!(v["error"]["domain"], "PlatformAccountServer");

    let tok = token(&sb, &http).await;
    create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = create(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    sb.shutdown().await;
}

#[tokio::test]
async fn stored_list_is_empty_at_first_only_where_the_scenario_asks() {
    let sb = Sandbox::start(
        Scenario {
            generation_delay: Duration::from_millis(1500),
            empty_stored_list_at_first: true,
            ..Scenario::default()
        },
        0,
    )
    .await
    .unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;
    assert!(stored(&sb, &http, &tok, id.as_str()).await.is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let items = stored(&sb, &http, &tok, id.as_str()).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "in_progress");
    sb.shutdown().await;
}

#[tokio::test]
async fn timeline_in_progress_then_saved() {
    let sb = Sandbox::start(
        Scenario {
            generation_delay: Duration::from_millis(1200),
            ..Scenario::default()
        },
        0,
    )
    .await
    .unwrap();
    let http = client();
    let tok = token(&sb, &http).await;
    let resp = create(&sb, &http, &tok, &report_body(&["csv_v2_0", "json_v2_0"])).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(created["result_action"], "save");
    assert_eq!(created["parameters"]["tenant_id"], TENANT);
    assert_eq!(
        created["parameters"]["formats"],
        json!(["csv_v2_0", "json_v2_0"])
    );
    let id = created["id"].as_str().unwrap();

    // From creation on, every requested format is listed, `in_progress` until it is saved.
    let items = stored(&sb, &http, &tok, id).await;
    assert_eq!(items.len(), 2);
    for i in &items {
        assert_eq!(i["status"], "in_progress");
        assert!(i.get("size").is_none());
    }

    tokio::time::sleep(Duration::from_millis(600)).await;
    let items = stored(&sb, &http, &tok, id).await;
    assert_eq!(items.len(), 2);
    for i in &items {
        assert_eq!(i["status"], "in_progress");
        assert!(i.get("size").is_none());
    }
    let early = items[0]["id"].as_str().unwrap();
    assert_eq!(
        download(&sb, &http, &tok, id, early).await.status(),
        StatusCode::NOT_FOUND
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    let items = stored(&sb, &http, &tok, id).await;
    assert_eq!(items.len(), 2);
    for i in &items {
        assert_eq!(i["status"], "saved");
        assert!(i["created_at"].as_str().unwrap().ends_with("+00:00"));
    }
    let csv_item = items
        .iter()
        .find(|i| i["report_format"] == "csv_v2_0")
        .unwrap();
    let resp = download(&sb, &http, &tok, id, csv_item["id"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    let body = resp.bytes().await.unwrap();
    // Stored compressed: the announced size is that of the gzip file.
    assert_eq!(
        csv_item["size"].as_u64().unwrap(),
        server::gzip(&body).unwrap().len() as u64
    );
    assert!(body.starts_with(b"tenant.id,tenant.kind,application.id,"));

    let stats = sb.stats();
    assert_eq!(stats.reports.len(), 1);
    assert_eq!(stats.reports[0].formats, vec!["csv_v2_0", "json_v2_0"]);
    assert_eq!(stats.stored_list_requests, 3);
    sb.shutdown().await;
}

#[tokio::test]
async fn downloads_identical_across_sandboxes() {
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let sb = Sandbox::start(fast(), 0).await.unwrap();
        let http = client();
        let tok = token(&sb, &http).await;
        let formats = ["csv", "html", "json_v1", "csv_v2_0", "json_v2_0"];
        let id = create_ok(&sb, &http, &tok, &report_body(&formats)).await;
        let items = stored(&sb, &http, &tok, &id).await;
        let mut run = Vec::new();
        for f in formats {
            let sid = saved_id(&items, f).to_owned();
            let first = download(&sb, &http, &tok, &id, &sid)
                .await
                .bytes()
                .await
                .unwrap();
            let again = download(&sb, &http, &tok, &id, &sid)
                .await
                .bytes()
                .await
                .unwrap();
            assert_eq!(first, again, "{f} differs between downloads");
            run.push(first);
        }
        bodies.push(run);
        sb.shutdown().await;
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn gzip_on_request_only() {
    let sb = Sandbox::start(fast(), 0).await.unwrap();
    let http = raw_client();
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["json_v2_0"])).await;
    let items = stored(&sb, &http, &tok, &id).await;
    let sid = saved_id(&items, "json_v2_0").to_owned();
    let url = format!("{}/api/2/reports/{id}/stored/{sid}", sb.base_url());

    let plain = http.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.headers()["content-type"], "application/json");
    let plain = plain.bytes().await.unwrap();

    let zipped = http
        .get(&url)
        .bearer_auth(&tok)
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let length: usize = zipped.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let zipped = zipped.bytes().await.unwrap();
    assert_eq!(length, zipped.len());
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut decoded)
        .unwrap();
    assert_eq!(decoded, plain.to_vec());
    // The file is stored compressed: `size` is the compressed size, as the vendor's is.
    assert_eq!(items[0]["size"].as_u64().unwrap(), zipped.len() as u64);
    assert!(zipped.len() < plain.len());
    serde_json::from_slice::<Value>(&plain).unwrap();
    sb.shutdown().await;
}

#[tokio::test]
async fn gzip_without_header_sends_the_compressed_file_as_is() {
    let sb = Sandbox::start(
        Scenario {
            gzip_without_header: true,
            ..fast()
        },
        0,
    )
    .await
    .unwrap();
    let http = raw_client();
    let tok = token(&sb, &http).await;
    let id = create_ok(&sb, &http, &tok, &report_body(&["csv_v2_0"])).await;
    let items = stored(&sb, &http, &tok, &id).await;
    let sid = saved_id(&items, "csv_v2_0").to_owned();
    let url = format!("{}/api/2/reports/{id}/stored/{sid}", sb.base_url());
    for accept in ["identity", "gzip"] {
        let resp = http
            .get(&url)
            .bearer_auth(&tok)
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert!(resp.headers().get("content-encoding").is_none(), "{accept}");
        assert_eq!(resp.headers()["content-type"], "application/octet-stream");
        let body = resp.bytes().await.unwrap();
        assert_eq!(&body[..2], &[0x1f, 0x8b], "{accept}");
        assert_eq!(items[0]["size"].as_u64().unwrap(), body.len() as u64);
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut decoded)
            .unwrap();
        assert!(decoded.starts_with(b"tenant.id,tenant.kind,application.id,"));
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn strict_validation_over_http() {
    let sb = Sandbox::start(fast(), 0).await.unwrap();
    let http = client();
    let tok = token(&sb, &http).await;

    let mut body = report_body(&["csv_v2_0"]);
    body["parameters"]["show_skus"] = json!("true");
    let resp = create(&sb, &http, &tok, &body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("show_skus")
    );
    assert_eq!(v["error"]["details"]["field"], "parameters.show_skus");

    let resp = http
        .post(format!("{}/api/2/reports", sb.base_url()))
        .bearer_auth(&tok)
        .body(serde_json::to_vec(&report_body(&["csv_v2_0"])).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert!(sb.stats().reports.is_empty());
    assert_eq!(sb.stats().create_requests, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn tenant_behaviours() {
    let unknown = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a003";
    let failing = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a002";
    let no_skus = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001";
    let mut sc = fast();
    sc.tenants.insert(
        unknown.into(),
        TenantBehaviour {
            unknown: true,
            ..Default::default()
        },
    );
    sc.tenants.insert(
        failing.into(),
        TenantBehaviour {
            fail: true,
            ..Default::default()
        },
    );
    sc.tenants.insert(
        no_skus.into(),
        TenantBehaviour {
            no_skus: true,
            ..Default::default()
        },
    );
    let sb = Sandbox::start(sc, 0).await.unwrap();
    let http = client();
    let tok = token(&sb, &http).await;

    let mut body = report_body(&["csv_v2_0"]);
    body["parameters"]["tenant_id"] = json!(unknown);
    let resp = create(&sb, &http, &tok, &body).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 1005);
    assert_eq!(v["error"]["message"], "Tenant not found");

    body["parameters"]["tenant_id"] = json!(failing);
    let id = create_ok(&sb, &http, &tok, &body).await;
    let items = stored(&sb, &http, &tok, &id).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "failed");
    let sid = items[0]["id"].as_str().unwrap();
    assert_eq!(
        download(&sb, &http, &tok, &id, sid).await.status(),
        StatusCode::NOT_FOUND
    );

    body["parameters"]["tenant_id"] = json!(no_skus);
    let id = create_ok(&sb, &http, &tok, &body).await;
    let items = stored(&sb, &http, &tok, &id).await;
    let text = download(&sb, &http, &tok, &id, saved_id(&items, "csv_v2_0"))
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let sku = reader.headers().unwrap().iter().position(|h| h == "sku");
    let sku = sku.expect("the column stays, empty");
    for row in reader.records() {
        assert_eq!(&row.unwrap()[sku], "");
    }
    sb.shutdown().await;
}

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
