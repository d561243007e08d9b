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

mod faults_and_files;
