use super::token::renewal_time;
use super::*;

#[test]
fn base_urls() {
    assert_eq!(
        api_base("https://eu2-cloud.acronis.com").unwrap().as_str(),
        "https://eu2-cloud.acronis.com/api/2/"
    );
    assert_eq!(
        api_base("https://eu2-cloud.acronis.com/api/2/")
            .unwrap()
            .as_str(),
        "https://eu2-cloud.acronis.com/api/2/"
    );
    assert_eq!(
        api_base("http://127.0.0.1:8080").unwrap().as_str(),
        "http://127.0.0.1:8080/api/2/"
    );
    assert!(api_base("http://[::1]:1").is_ok());
    assert!(api_base("http://localhost:1").is_ok());
    let err = api_base("http://eu2-cloud.acronis.com")
        .unwrap_err()
        .to_string();
    assert!(err.contains("loopback"), "{err}");
    assert!(api_base("ftp://x").is_err());
    let err = api_base("https://user:pw@x.com").unwrap_err().to_string();
    assert!(err.contains("credentials") && !err.contains("pw"), "{err}");
    assert!(api_base("eu2-cloud.acronis.com").is_err());
}

/// "relative URL without a base" said nothing of what to fix.
#[test]
fn base_url_mistakes_say_what_to_fix() {
    let err = |text: &str| api_base(text).unwrap_err().to_string();
    for text in [
        "eu2-cloud.acronis.com",
        "eu2-cloud.acronis.com:443",
        "localhost:8787",
    ] {
        let e = err(text);
        assert!(
            e.contains("has no scheme") && e.contains(&format!("https://{text}")),
            "{e}"
        );
        assert!(
            e.contains("ACRONIS_BASE_URL") && e.contains("API client"),
            "{e}"
        );
    }
    let e = err("https://eu2-cloud.acronis.com/mc/");
    assert!(
        e.contains("the path `/mc/`") && e.contains("ACRONIS_BASE_URL"),
        "{e}"
    );
    assert!(err("https://").contains("ACRONIS_BASE_URL"));
    assert!(err("  ").contains("empty"));
    assert!(err("https://eu2-cloud.acronis.com/?x=1").contains("query"));
    // The API's own path, with or without a slash, stays welcome.
    for ok in [
        "https://h.example/api/2",
        "https://h.example/api/2/",
        "https://h.example/",
    ] {
        assert_eq!(api_base(ok).unwrap().as_str(), "https://h.example/api/2/");
    }
}

/// The same API spelled differently discarded the resume journal.
#[test]
fn spellings_of_one_api_share_one_canonical_form() {
    let forms: Vec<String> = [
        "https://eu2-cloud.acronis.com",
        "HTTPS://EU2-Cloud.Acronis.com/",
        "  https://eu2-cloud.acronis.com:443/api/2/ ",
        "https://eu2-cloud.acronis.com/x/%2e%2e/api/2",
    ]
    .iter()
    .map(|text| canonical_base(&api_base(text).unwrap()))
    .collect();
    assert!(
        forms.iter().all(|f| f == "https://eu2-cloud.acronis.com"),
        "{forms:?}"
    );
}

/// `1e308` panicked converting to a `Duration`; an `expires_on` already past meant a new
/// token before every call.
#[test]
fn token_lifetimes_are_clamped() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let renew = |v: serde_json::Value| {
        let (at, odd) = renewal_time(&v, now);
        (at.duration_since(now).unwrap().as_secs(), odd)
    };
    assert_eq!(
        renew(serde_json::json!({"expires_in": 7200})),
        (6300, false)
    );
    assert_eq!(renew(serde_json::json!({})), (6300, false));
    assert_eq!(
        renew(serde_json::json!({"expires_on": 1_800_003_600})),
        (2700, false)
    );
    assert_eq!(
        renew(serde_json::json!({"expires_in": 1e308})),
        (85500, true)
    );
    assert_eq!(
        renew(serde_json::json!({"expires_on": 1e308})),
        (85500, true)
    );
    assert_eq!(renew(serde_json::json!({"expires_on": -1e308})), (45, true));
    assert_eq!(
        renew(serde_json::json!({"expires_on": 1_700_000_000})),
        (45, true)
    );
    assert_eq!(renew(serde_json::json!({"expires_in": 0})), (45, true));
}

#[cfg(test)]
mod scrub_tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use acronis_reports_sandbox::{Endpoint, FaultRule, Hostile, Sandbox, Scenario};

    fn echo(endpoint: Endpoint, status: u16) -> Scenario {
        Scenario {
            faults: vec![FaultRule {
                endpoint,
                status: Some(status),
                hostile: Some(Hostile::EchoAuthorization),
                times: 1,
                ..FaultRule::default()
            }],
            ..Scenario::default()
        }
    }

    fn client_of(sandbox: &Sandbox, tokens: Arc<Mutex<Vec<String>>>) -> Client {
        Client::new(
            api_base(&sandbox.base_url()).unwrap(),
            Credentials::Client {
                id: sandbox.client_id().to_owned(),
                secret: Secret::new(sandbox.client_secret()),
            },
            ClientOptions {
                max_attempts: 1,
                ..ClientOptions::default()
            },
        )
        .unwrap()
        .on_new_secret(Arc::new(move |t: &str| {
            tokens.lock().unwrap().push(t.to_owned())
        }))
    }

    /// A 5xx from the token endpoint used to print `client_id:secret` and the Basic value.
    #[tokio::test]
    async fn echoed_basic_credentials_are_scrubbed_on_a_5xx() {
        let sandbox = Sandbox::start(echo(Endpoint::Token, 503), 0).await.unwrap();
        let client = client_of(&sandbox, Arc::default());
        let error = client.authenticate().await.unwrap_err().to_string();
        use base64::Engine as _;
        let pair = format!("{}:{}", sandbox.client_id(), sandbox.client_secret());
        let basic = base64::engine::general_purpose::STANDARD.encode(&pair);
        assert!(error.contains("[redacted]"), "{error}");
        for leaked in [sandbox.client_secret(), pair.as_str(), basic.as_str()] {
            assert!(!error.contains(leaked), "{leaked} in {error}");
            assert!(
                !error.contains(&leaked[..6]),
                "start of {leaked} in {error}"
            );
        }
        sandbox.shutdown().await;
    }

    /// An echoed bearer token, whole or cut at the message's length limit, never comes out;
    /// the hook hears of every token fetched.
    #[tokio::test]
    async fn echoed_tokens_are_scrubbed_and_announced() {
        let sandbox = Sandbox::start(echo(Endpoint::Create, 400), 0)
            .await
            .unwrap();
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let client = client_of(&sandbox, tokens.clone());
        let body = CreateReport::once(ReportParameters {
            tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
            kind: crate::report::ReportKind::UsageSummary,
            level: crate::report::ReportLevel::DirectPartners,
            formats: vec![crate::report::Format::CsvV2],
            period: PeriodDates {
                start: "2024-05-01".into(),
                end: "2024-05-31".into(),
            },
            hide_zero_usage: false,
            show_skus: false,
        });
        let error = client.create_report(&body).await.unwrap_err().to_string();
        let tokens = tokens.lock().unwrap().clone();
        assert_eq!(tokens.len(), 1, "the hook hears of the token");
        let token = &tokens[0];
        assert!(error.contains("[redacted]"), "{error}");
        assert!(!error.contains(&token[..8]), "{error}");
        sandbox.shutdown().await;
    }
}

/// Wrong URLs that only the network reveals fail at once, saying what to fix: no retries for
/// 18 s on a host that does not resolve, or 26 s on a port that speaks plain HTTP.
#[cfg(test)]
mod network_mistake_tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn client(base: &str) -> Client {
        Client::new(
            api_base(base).unwrap(),
            Credentials::Client {
                id: "id".into(),
                secret: Secret::new("secret-value-1234"),
            },
            ClientOptions::default(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_host_that_does_not_resolve_fails_fast_with_a_hint() {
        let started = Instant::now();
        let error = client("https://something.invalid")
            .authenticate()
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(error, ApiError::HostNotFound { .. }), "{error:?}");
        assert!(!error.is_transient());
        let text = error.to_string();
        assert!(
            text.contains("something.invalid does not resolve")
                && text.contains("ACRONIS_BASE_URL"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn tls_against_a_plain_http_port_fails_fast_with_a_hint() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, axum::Router::new()).await.unwrap();
        });
        let started = Instant::now();
        let error = client(&format!("https://{addr}"))
            .authenticate()
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(error, ApiError::NotTls { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains("does not speak TLS")
                && text.contains(&format!("write http://{addr}"))
                && text.contains("ACRONIS_BASE_URL"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod redirect_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::http::{StatusCode as Code, header};
    use axum::response::IntoResponse;

    use super::*;

    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    /// A redirect to another origin was followed: the create body went to the other host and
    /// its answer was taken. Within the API's origin, redirects are still followed.
    #[tokio::test]
    async fn api_calls_follow_no_redirect_off_the_origin() {
        let hits = Arc::new(AtomicU32::new(0));
        let counted = hits.clone();
        let elsewhere = serve(axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(serde_json::json!({"id": "evil", "items": []})) }
        }))
        .await;
        let away = format!("{elsewhere}/api/2/reports");
        let api = serve(
            axum::Router::new()
                .route(
                    "/api/2/reports",
                    axum::routing::post(move || {
                        let away = away.clone();
                        async move {
                            (Code::TEMPORARY_REDIRECT, [(header::LOCATION, away)]).into_response()
                        }
                    }),
                )
                .route(
                    "/api/2/tenants/{id}/children",
                    axum::routing::get(|| async {
                        (Code::FOUND, [(header::LOCATION, "/api/2/moved")]).into_response()
                    }),
                )
                .route(
                    "/api/2/moved",
                    axum::routing::get(|| async { axum::Json(serde_json::json!({"items": []})) }),
                ),
        )
        .await;
        let client = Client::new(
            api_base(&api).unwrap(),
            Credentials::Token(Secret::new("token-value")),
            ClientOptions::default(),
        )
        .unwrap();
        let body = CreateReport::once(ReportParameters {
            tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
            kind: crate::report::ReportKind::UsageSummary,
            level: crate::report::ReportLevel::DirectPartners,
            formats: vec![crate::report::Format::CsvV2],
            period: PeriodDates {
                start: "2024-05-01".into(),
                end: "2024-05-31".into(),
            },
            hide_zero_usage: false,
            show_skus: false,
        });
        let error = client.create_report(&body).await.unwrap_err();
        assert!(!error.is_transient(), "{error}");
        assert!(
            error.to_string().contains("redirected to http://127.0.0.1"),
            "{error}"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "nothing reached the other host"
        );
        let page = client
            .tenant_children("ede9f834-70b3-476c-83d9-736f9f8c7dae", None)
            .await
            .expect("a redirect within the origin is followed");
        assert!(page.tenants.is_empty());
    }

    /// A 3 MB report id was accepted and repeated into 42 MB of stderr.
    #[tokio::test]
    async fn an_overlong_server_id_is_refused() {
        let api = serve(axum::Router::new().route(
            "/api/2/reports",
            axum::routing::post(|| async {
                axum::Json(serde_json::json!({"id": "r".repeat(3_000_000), "version": 1}))
            }),
        ))
        .await;
        let client = Client::new(
            api_base(&api).unwrap(),
            Credentials::Token(Secret::new("token-value")),
            ClientOptions::default(),
        )
        .unwrap();
        let body = CreateReport::once(ReportParameters {
            tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
            kind: crate::report::ReportKind::UsageSummary,
            level: crate::report::ReportLevel::DirectPartners,
            formats: vec![crate::report::Format::CsvV2],
            period: PeriodDates {
                start: "2024-05-01".into(),
                end: "2024-05-31".into(),
            },
            hide_zero_usage: false,
            show_skus: false,
        });
        let error = client.create_report(&body).await.unwrap_err().to_string();
        assert!(error.contains("3000000 characters long"), "{error}");
        assert!(error.len() < 300, "{error}");
    }
}

#[cfg(test)]
mod one_pool_tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::extract::ConnectInfo;
    use axum::http::header;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// A server whose API answers are gzip-encoded (as a proxy may make them), recording the
    /// client port of every request, and `Accept-Encoding` of each.
    async fn serve(list: Vec<u8>) -> (String, Arc<Mutex<Vec<(u16, String)>>>) {
        let seen: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
        let (on_list, on_file) = (seen.clone(), seen.clone());
        let list = bytes::Bytes::from(list);
        let app = axum::Router::new()
            .route(
                "/api/2/reports/{id}/stored",
                axum::routing::get(
                    move |ConnectInfo(from): ConnectInfo<SocketAddr>,
                          headers: header::HeaderMap| {
                        let accept = headers
                            .get(header::ACCEPT_ENCODING)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default();
                        on_list.lock().unwrap().push((from.port(), accept));
                        let list = list.clone();
                        async move {
                            (
                                [
                                    (header::CONTENT_TYPE, "application/json"),
                                    (header::CONTENT_ENCODING, "gzip"),
                                ],
                                list,
                            )
                        }
                    },
                ),
            )
            .route(
                "/api/2/reports/{id}/stored/{stored}",
                axum::routing::get(move |ConnectInfo(from): ConnectInfo<SocketAddr>| {
                    on_file.lock().unwrap().push((from.port(), String::new()));
                    async { ([(header::CONTENT_TYPE, "text/csv")], "a,b\n1,2\n") }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap()
        });
        (base, seen)
    }

    fn client(base: &str) -> Client {
        Client::new(
            api_base(base).unwrap(),
            Credentials::Token(Secret::new("token-value")),
            ClientOptions::default(),
        )
        .unwrap()
    }

    /// API calls and downloads share one pool of connections: two clients held up to twice
    /// `concurrency` connections (BENCHMARKS.md, the connections case). API answers are still
    /// asked for, and read, gzip-encoded.
    #[tokio::test]
    async fn api_calls_and_downloads_share_one_connection() {
        let list = serde_json::json!({"items": [{"id": "s1", "size": 8, "format": "csv_v2_0"}]});
        let (base, seen) = serve(gzip(list.to_string().as_bytes())).await;
        let client = client(&base);
        for _ in 0..3 {
            let stored = client.stored_reports("r1", None).await.unwrap();
            assert_eq!(stored.len(), 1);
            let response = client.download("r1", "s1").await.unwrap();
            assert_eq!(&response.bytes().await.unwrap()[..], b"a,b\n1,2\n");
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 6);
        assert!(
            seen.iter().all(|(port, _)| *port == seen[0].0),
            "one connection for all: {seen:?}"
        );
        assert!(
            seen.iter().step_by(2).all(|(_, accept)| accept == "gzip"),
            "{seen:?}"
        );
    }

    /// A gzip API answer that decodes far larger than an answer can be is cut at the cap as it
    /// is decoded, never held whole; one that does not decode is a broken body, not a panic.
    #[tokio::test]
    async fn a_gzip_answer_is_capped_as_decoded() {
        let huge = format!("{{\"items\": [\"{}\"]}}", "x".repeat(64 << 20));
        let (base, _) = serve(gzip(huge.as_bytes())).await;
        let error = client(&base).stored_reports("r1", None).await.unwrap_err();
        assert!(error.to_string().contains("larger than"), "{error}");
        let (base, _) = serve(b"\x1f\x8b\x08\x00 not really gzip".to_vec()).await;
        let error = client(&base).stored_reports("r1", None).await.unwrap_err();
        assert!(error.to_string().contains("gzip"), "{error}");
    }
}
