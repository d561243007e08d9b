//! HTTP side of the sandbox: routes, auth, faults and the report timeline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::stream;
use serde_json::{Value, json};

use crate::Stats;
use crate::content::{Format, StoredBody};
use crate::scenario::{Endpoint, FaultRule, Hostile, Scenario};

mod auth;
mod files;
mod reports;
mod tenants;

use auth::*;
pub(crate) use files::gzip;
use files::*;
use reports::*;
use tenants::*;

/// Bodies above this size are streamed uncompressed instead of built in memory.
pub(super) const STREAM_THRESHOLD: u64 = 8 * 1024 * 1024;

pub(super) const DOMAIN: &str = "PlatformAccountServer";

/// An error answer in the documented `{"error":{...}}` envelope.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: Value,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: Value, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad_request(message: String, details: Option<Value>) -> Self {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, json!(400), message);
        e.details = details;
        e
    }

    /// 400 with the platform's numeric code, naming the offending field.
    pub(crate) fn bad_field(field: &str, message: String) -> Self {
        ApiError::bad_request(message, Some(json!({ "field": field })))
    }

    /// 400 with a string code: other Acronis services use string codes, and
    /// clients must cope with both shapes.
    pub(crate) fn invalid_parameters(field: &str, message: String) -> Self {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            json!("InvalidReportParameters"),
            message,
        );
        e.details = Some(json!({ "field": field }));
        e
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, json!(404), message)
    }

    fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            json!(401),
            "Unauthorized: access token is missing, invalid or expired",
        )
    }

    fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "domain": DOMAIN,
        });
        if let (Some(details), Some(obj)) = (self.details, error.as_object_mut()) {
            obj.insert("details".into(), details);
        }
        let mut resp = (self.status, axum::Json(json!({ "error": error }))).into_response();
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Right after creation, only with `Scenario::empty_stored_list_at_first`: nothing listed.
    Empty,
    /// Generating: every requested format is listed as `in_progress`, the vendor's status.
    InProgress,
    Done,
}

pub(super) struct StoredFile {
    id: String,
    format: Format,
    body: Arc<StoredBody>,
    /// The body gzip-compressed, made when first needed (see [`stored_compressed`]).
    compressed: Arc<OnceLock<Bytes>>,
}

/// Whether the sandbox keeps this file gzip-compressed, as the real service does: the stored
/// list then announces the compressed size. Bodies streamed as they are never are.
pub(super) fn stored_compressed(scenario: &Scenario, body: &StoredBody) -> bool {
    (scenario.gzip || scenario.gzip_without_header) && body.len() <= STREAM_THRESHOLD
}

/// The compressed body, compressing it off the runtime the first time.
pub(super) async fn compressed_body(
    body: Arc<StoredBody>,
    cell: Arc<OnceLock<Bytes>>,
) -> Result<Bytes, ApiError> {
    if let Some(bytes) = cell.get() {
        return Ok(bytes.clone());
    }
    match tokio::task::spawn_blocking(move || gzip(&body.to_bytes())).await {
        Ok(Ok(bytes)) => Ok(cell.get_or_init(|| Bytes::from(bytes)).clone()),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!(1000),
            "Internal error while compressing the stored report",
        )),
    }
}

pub(super) struct Report {
    stats_index: usize,
    version: u64,
    deleted: bool,
    created: Instant,
    created_unix: i64,
    delay: Duration,
    /// Lists nothing for the first third of `delay` (`Scenario::empty_stored_list_at_first`).
    empty_at_first: bool,
    fail: bool,
    /// What `POST /reports` answered; `GET /reports/{id}` repeats it.
    resource: Value,
    files: Vec<StoredFile>,
    /// Older, different copies listed before `files` when `duplicate_stored` is on.
    stale: Vec<StoredFile>,
}

impl Report {
    fn phase(&self, now: Instant) -> Phase {
        let elapsed = now.saturating_duration_since(self.created);
        if elapsed >= self.delay {
            Phase::Done
        } else if self.empty_at_first && elapsed < self.delay / 3 {
            Phase::Empty
        } else {
            Phase::InProgress
        }
    }

    fn saved_unix(&self) -> i64 {
        // Round up so a sub-second delay still reads as "after creation".
        let delay = self.delay.as_secs() + u64::from(self.delay.subsec_nanos() > 0);
        self.created_unix
            .saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
    }
}

#[derive(Default)]
pub(super) struct Inner {
    stats: Stats,
    tokens: HashMap<String, Instant>,
    reports: HashMap<String, Report>,
    fault_uses: Vec<u32>,
    /// With `deterministic_ids`: how many reports each request content has created so far.
    occurrences: HashMap<String, u64>,
}

pub(crate) struct Shared {
    pub(crate) scenario: Scenario,
    pub(crate) connections: AtomicU64,
    /// API requests that arrived over HTTP/2.
    http2_requests: AtomicU64,
    gzip_downloads: AtomicU64,
    /// Origin of the `*_us` timeline fields in [`CreatedReport`].
    started: Instant,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(scenario: Scenario) -> Self {
        let inner = Inner {
            fault_uses: scenario.faults.iter().map(|f| f.times).collect(),
            ..Inner::default()
        };
        Shared {
            scenario,
            connections: AtomicU64::new(0),
            http2_requests: AtomicU64::new(0),
            gzip_downloads: AtomicU64::new(0),
            started: Instant::now(),
            inner: Mutex::new(inner),
        }
    }

    /// A handler that panicked mid-update leaves counters at worst slightly
    /// off; keep serving rather than poisoning every later request.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.lock().stats.clone();
        stats.connections = self.connections.load(Ordering::Relaxed);
        stats.http2_requests = self.http2_requests.load(Ordering::Relaxed);
        stats.gzip_downloads = self.gzip_downloads.load(Ordering::Relaxed);
        stats
    }

    /// Microseconds from the sandbox's start to `at`.
    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_micros()).unwrap_or(u64::MAX)
    }

    /// Marks the end of a complete download of the report at `stats_index`.
    fn download_done(&self, stats_index: usize) {
        let at = self.micros(Instant::now());
        if let Some(created) = self.lock().stats.reports.get_mut(stats_index) {
            created.download_done_us = Some(at);
        }
    }

    /// Count the request and, if a status rule still has uses, consume one.
    fn count_and_fault(&self, endpoint: Endpoint) -> Option<&FaultRule> {
        let mut inner = self.lock();
        let stats = &mut inner.stats;
        match endpoint {
            Endpoint::Token => stats.token_requests += 1,
            Endpoint::Create => stats.create_requests += 1,
            Endpoint::StoredList => stats.stored_list_requests += 1,
            Endpoint::Download => stats.download_requests += 1,
            Endpoint::Delete => stats.delete_requests += 1,
            Endpoint::Client => stats.client_requests += 1,
            Endpoint::Tenant => stats.tenant_requests += 1,
            Endpoint::Any => {}
        }
        drop(inner);
        self.take_rule(endpoint, |rule| {
            rule.status.is_some() && rule.hostile.is_none() && !rule.truncate
        })
    }

    /// Consume a hostile-body rule for this endpoint, if one still has uses.
    fn take_hostile(&self, endpoint: Endpoint) -> Option<(Hostile, Option<u16>)> {
        let rule = self.take_rule(endpoint, |rule| rule.hostile.is_some())?;
        Some((rule.hostile?, rule.status))
    }

    fn take_truncate_fault(&self) -> bool {
        self.take_rule(Endpoint::Download, |rule| rule.truncate)
            .is_some()
    }

    /// The first rule of the given sort for this endpoint that still has uses, with one use
    /// consumed and counted.
    fn take_rule(
        &self,
        endpoint: Endpoint,
        sort: impl Fn(&FaultRule) -> bool,
    ) -> Option<&FaultRule> {
        let mut inner = self.lock();
        let i = self
            .scenario
            .faults
            .iter()
            .enumerate()
            .position(|(i, rule)| {
                sort(rule)
                    && rule.endpoint.matches(endpoint)
                    && inner.fault_uses.get(i).is_some_and(|n| *n > 0)
            })?;
        inner.fault_uses[i] -= 1;
        inner.stats.faults_injected += 1;
        self.scenario.faults.get(i)
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/2/idp/token", post(token))
        .route("/api/2/reports", post(create_report))
        .route("/api/2/reports/{id}", get(get_report).delete(delete_report))
        .route("/api/2/reports/{id}/stored", get(stored_list))
        .route("/api/2/reports/{id}/stored/{stored_id}", get(download))
        .route("/api/2/clients/{client_id}", get(client_info))
        .route("/api/2/tenants/{id}", get(tenant_info))
        .route("/api/2/tenants/{id}/children", get(tenant_children))
        .route("/_sandbox/stats", get(stats))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

pub(super) fn classify(method: &Method, path: &str) -> Option<Endpoint> {
    let rest = path.strip_prefix("/api/2/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    Some(match (method, segments.as_slice()) {
        (&Method::POST, ["idp", "token"]) => Endpoint::Token,
        (&Method::POST, ["reports"]) => Endpoint::Create,
        (&Method::GET, ["reports", _, "stored"]) => Endpoint::StoredList,
        (&Method::GET, ["reports", _, "stored", _]) => Endpoint::Download,
        (&Method::DELETE, ["reports", _]) => Endpoint::Delete,
        (&Method::GET, ["clients", _]) => Endpoint::Client,
        (&Method::GET, ["tenants", _]) => Endpoint::Tenant,
        _ => return None,
    })
}

/// Delay, counting and status faults for every API request. The control
/// endpoint under `/_sandbox/` is exempt so tests can read stats promptly.
pub(super) async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sandbox/") {
        return next.run(req).await;
    }
    if req.version() == axum::http::Version::HTTP_2 {
        shared.http2_requests.fetch_add(1, Ordering::Relaxed);
    }
    let delay = shared.scenario.response_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(endpoint) = classify(req.method(), req.uri().path())
        && let Some(rule) = shared.count_and_fault(endpoint)
        && let Some(status) = rule.status
    {
        tracing::debug!(status, ?endpoint, "sandbox: injecting fault");
        return fault_response(status, rule.retry_after.clone(), rule.message.clone());
    }
    if let Some(endpoint) = classify(req.method(), req.uri().path())
        && let Some((hostile, status)) = shared.take_hostile(endpoint)
    {
        tracing::debug!(?hostile, ?endpoint, "sandbox: injecting a hostile answer");
        if hostile == Hostile::EchoAuthorization {
            return echo_authorization(req.headers(), status);
        }
        return hostile_response(hostile, status);
    }
    next.run(req).await
}

pub(super) fn hostile_response(hostile: Hostile, status: Option<u16>) -> Response {
    let status = status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let (content_type, body) = match hostile {
        Hostile::HtmlPage => (
            "text/html",
            Body::from(
                "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>",
            ),
        ),
        Hostile::InvalidJson => ("application/json", Body::from("{\"items\": [{\"id\": ")),
        Hostile::WrongContentType => ("text/plain", Body::from("OK")),
        Hostile::OddStoredItem => (
            "application/json",
            Body::from("{\"items\": [42, \"saved\", [\"csv_v2_0\"]]}"),
        ),
        // Answered by `echo_authorization`, which needs the request.
        Hostile::EchoAuthorization => ("text/plain", Body::from("")),
        Hostile::EndlessBody | Hostile::Oversize => {
            // 64 KiB chunks forever (endless) or 256 MiB in all (oversize): either way far
            // more than any announced size or JSON body cap.
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let limit = if hostile == Hostile::Oversize {
                4096
            } else {
                usize::MAX
            };
            let body =
                stream::iter(std::iter::repeat_n(chunk, limit).map(Ok::<Bytes, std::io::Error>));
            ("application/json", Body::from_stream(body))
        }
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

pub(super) fn fault_response(
    status: u16,
    retry_after: Option<String>,
    message: Option<String>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = message.unwrap_or_else(|| match status.as_u16() {
        401 => "Unauthorized: access token is missing, invalid or expired".to_owned(),
        429 => "Too many requests; retry later".to_owned(),
        500 => "Internal server error".to_owned(),
        502 => "Bad gateway".to_owned(),
        503 => "Service temporarily unavailable; retry later".to_owned(),
        504 => "Gateway timeout".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("Injected sandbox error")
            .to_owned(),
    });
    let mut err = ApiError::new(status, json!(status.as_u16()), message);
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        err = err.with_header(header::RETRY_AFTER, value);
    }
    err.into_response()
}

pub(super) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats()).into_response()
}

pub(super) async fn not_found() -> ApiError {
    ApiError::not_found("Not found: no such API endpoint")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        json!(405),
        "Method not allowed for this endpoint",
    )
}
