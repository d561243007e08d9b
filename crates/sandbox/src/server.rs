//! HTTP side of the sandbox: routes, auth, faults and the report timeline.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream;
use rand::Rng as _;
use serde_json::{Value, json};

use super::content::{self, ChunkCursor, Format, ReportSpec, StoredBody};
use super::scenario::{Endpoint, FaultRule, Hostile, Scenario};
use super::validate::parse_create;
use super::{CreatedReport, Stats};

/// Bodies above this size are streamed uncompressed instead of built in memory.
const STREAM_THRESHOLD: u64 = 8 * 1024 * 1024;

const DOMAIN: &str = "PlatformAccountServer";

/// An error answer in the documented `{"error":{...}}` envelope.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: Value,
    pub message: String,
    pub details: Option<Value>,
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
enum Phase {
    /// Right after creation, only with `Scenario::empty_stored_list_at_first`: nothing listed.
    Empty,
    /// Generating: every requested format is listed as `in_progress`, the vendor's status.
    InProgress,
    Done,
}

struct StoredFile {
    id: String,
    format: Format,
    body: Arc<StoredBody>,
    /// The body gzip-compressed, made when first needed (see [`stored_compressed`]).
    compressed: Arc<OnceLock<Bytes>>,
}

/// Whether the sandbox keeps this file gzip-compressed, as the real service does: the stored
/// list then announces the compressed size. Bodies streamed as they are never are.
fn stored_compressed(scenario: &Scenario, body: &StoredBody) -> bool {
    (scenario.gzip || scenario.gzip_without_header) && body.len() <= STREAM_THRESHOLD
}

/// The compressed body, compressing it off the runtime the first time.
async fn compressed_body(
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

struct Report {
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
struct Inner {
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

fn classify(method: &Method, path: &str) -> Option<Endpoint> {
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
async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
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

/// A careless server or proxy: an error whose message repeats the request's `Authorization`
/// header, whole and as its bare credential, in the envelope and past a 200-character cut.
fn echo_authorization(headers: &HeaderMap, status: Option<u16>) -> Response {
    let status = status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bare = authorization
        .split_once(' ')
        .map_or(authorization.as_str(), |(_, value)| value);
    if status == StatusCode::OK {
        // A portal that says whom it signed in, as plain text: it passes the content type and
        // reaches the content check, which quotes its title.
        return (
            status,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("<html><head><title>Signed in as {bare}</title></head></html>"),
        )
            .into_response();
    }
    // Padding puts the second copy across the client's 200-character cut of a message.
    let padding = "x".repeat(190);
    let message = format!("rejected {authorization}; {padding} {bare}");
    let body = json!({"error": {"code": status.as_u16(), "message": message, "domain": bare}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn hostile_response(hostile: Hostile, status: Option<u16>) -> Response {
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

fn fault_response(status: u16, retry_after: Option<String>, message: Option<String>) -> Response {
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

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(ApiError::unauthorized)?;
    let inner = shared.lock();
    match inner.tokens.get(token) {
        Some(expiry) if Instant::now() < *expiry => Ok(()),
        // Careless servers and proxies echo what they refused; clients must not repeat it.
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            json!(401),
            format!("Unauthorized: access token {token} is invalid or expired"),
        )),
    }
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Ok(text) = std::str::from_utf8(body) else {
        return out;
    };
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(k), Some(v)) = (form_decode(k), form_decode(v)) {
            out.entry(k).or_insert(v);
        }
    }
    out
}

/// `Ok(None)` when no Basic header is present; `Err` when it is malformed.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, rest) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| ())?;
    let text = String::from_utf8(raw).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    Ok(Some((id.to_owned(), secret.to_owned())))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"acronis-sandbox\""),
        );
    }
    resp
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    let credentials = match basic_credentials(&headers) {
        Err(()) => None,
        Ok(Some(c)) => Some(c),
        Ok(None) => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
            _ => None,
        },
    };
    let sc = &shared.scenario;
    let valid = credentials
        .as_ref()
        .is_some_and(|(id, secret)| *id == sc.client_id && *secret == sc.client_secret);
    if !valid {
        // Careless servers echo the credentials they refused: a client must never repeat them.
        let description = match &credentials {
            Some((id, secret)) => {
                format!("Client authentication failed for client {id} with secret {secret}")
            }
            None => "Client authentication failed".to_owned(),
        };
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &description);
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The grant_type form field is required",
            );
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only the client_credentials grant type is supported",
            );
        }
    }

    let lifetime = sc.token_lifetime;
    let access_token = random_string(48);
    let now = Instant::now();
    let expiry = now
        .checked_add(lifetime)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
    {
        let mut inner = shared.lock();
        inner.tokens.retain(|_, exp| *exp > now);
        inner.tokens.insert(access_token.clone(), expiry);
    }
    let lifetime_secs = lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0);
    let expires_on = jiff::Timestamp::now()
        .as_second()
        .saturating_add(i64::try_from(lifetime_secs).unwrap_or(i64::MAX));
    let mut resp = axum::Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_on": expires_on,
        "id_token": random_string(64),
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

fn today_utc() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
}

async fn create_report(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    if !is_json_content_type(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!(415),
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    let today = today_utc();
    let req = parse_create(&body, today)?;
    let tenant_key = req.tenant_id.to_ascii_lowercase();
    let sc = &shared.scenario;
    let behaviour = sc.tenant(&tenant_key).cloned().unwrap_or_default();
    if behaviour.unknown {
        let mut e = ApiError::new(StatusCode::NOT_FOUND, json!(1005), "Tenant not found");
        e.details = Some(json!({ "tenant_id": req.tenant_id }));
        return Err(e);
    }

    let spec = ReportSpec {
        tenant_id: tenant_key.clone(),
        kind: req.kind,
        level: req.level,
        start: req.start,
        end: req.end,
        show_skus: req.show_skus,
        hide_zero_usage: req.hide_zero_usage,
        no_skus: behaviour.no_skus,
        content: behaviour.content.over(&sc.content).resolve(),
    };
    // With `deterministic_ids`, ids follow from the request and from how many times this
    // sandbox has seen that request before, so two sandboxes given the same requests (in any
    // order) give the same ids, while one sandbox never gives one id twice.
    let id_seed = sc.deterministic_ids.then(|| {
        let formats: Vec<&str> = req.formats.iter().map(|f| f.as_str()).collect();
        let content = format!(
            "{tenant_key}|{}|{}|{}|{}|{}|hide_zero_usage={}|show_skus={}",
            req.kind.as_str(),
            req.level.as_str(),
            req.start,
            req.end,
            formats.join(","),
            req.hide_zero_usage,
            req.show_skus
        );
        let occurrence = {
            let mut inner = shared.lock();
            let count = inner.occurrences.entry(content.clone()).or_insert(0);
            *count += 1;
            *count
        };
        format!("{content}#{occurrence}")
    });
    let id = match &id_seed {
        Some(seed) => content::derived_uuid(&["report", seed]),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let stored_id = |format: Format, stale: bool| match &id_seed {
        Some(_) => content::derived_uuid(&[
            "stored",
            &id,
            format.as_str(),
            if stale { "stale" } else { "current" },
        ]),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let pad = sc.pad_bytes;
    let make = |stale: bool| -> Vec<StoredFile> {
        req.formats
            .iter()
            .map(|&format| StoredFile {
                id: stored_id(format, stale),
                format,
                body: Arc::new(StoredBody::build(&spec, format, stale, pad)),
                compressed: Arc::default(),
            })
            .collect()
    };
    let files = make(false);
    let stale = if sc.duplicate_stored && !behaviour.fail {
        make(true)
    } else {
        Vec::new()
    };

    let base_delay = sc.generation_of(&tenant_key);
    let delay = if sc.generation_jitter > 0.0 {
        let factor = 1.0 + rand::rng().random_range(-sc.generation_jitter..=sc.generation_jitter);
        base_delay.mul_f64(factor.max(0.0))
    } else {
        base_delay
    };

    let generation_date = req
        .generation_date
        .clone()
        .unwrap_or_else(|| today.to_string());
    let resource = json!({
        "id": id,
        "generation_date": generation_date,
        "parameters": req.echo,
        "result_action": "save",
        "schedule": {"type": "once"},
        "version": 1,
    });
    let created = CreatedReport {
        id: id.clone(),
        tenant_id: req.tenant_id.clone(),
        kind: req.kind.as_str().to_owned(),
        level: req.level.as_str().to_owned(),
        period_start: req.start.to_string(),
        period_end: req.end.to_string(),
        formats: req.formats.iter().map(|f| f.as_str().to_owned()).collect(),
        version: 1,
        deleted: false,
        created_us: 0,
        ready_us: 0,
        stored_list_requests: 0,
        first_saved_list_us: None,
        first_download_us: None,
        download_done_us: None,
    };
    {
        let mut inner = shared.lock();
        let stats_index = inner.stats.reports.len();
        let now = Instant::now();
        let mut created = created;
        created.created_us = shared.micros(now);
        created.ready_us = shared.micros(now + delay);
        inner.stats.reports.push(created);
        inner.reports.insert(
            id.clone(),
            Report {
                stats_index,
                version: 1,
                deleted: false,
                created: now,
                created_unix: jiff::Timestamp::now().as_second(),
                delay,
                empty_at_first: sc.empty_stored_list_at_first,
                fail: behaviour.fail,
                resource: resource.clone(),
                files,
                stale,
            },
        );
    }
    tracing::debug!(report = %id, ?delay, "sandbox: report created");
    Ok(axum::Json(resource).into_response())
}

fn report_not_found() -> ApiError {
    ApiError::not_found("Report not found")
}

async fn get_report(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let inner = shared.lock();
    let report = inner
        .reports
        .get(&id.to_ascii_lowercase())
        .filter(|r| !r.deleted)
        .ok_or_else(report_not_found)?;
    Ok(axum::Json(report.resource.clone()).into_response())
}

async fn stored_list(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let now = Instant::now();
    let now_us = shared.micros(now);
    // Saved items whose announced size is the compressed one: (item, body, compressed body).
    let mut compressed_sizes = Vec::new();
    let mut items: Vec<Value> = {
        let mut guard = shared.lock();
        let inner = &mut *guard;
        let report = inner
            .reports
            .get(&id.to_ascii_lowercase())
            .filter(|r| !r.deleted)
            .ok_or_else(report_not_found)?;
        let phase = report.phase(now);
        if let Some(created) = inner.stats.reports.get_mut(report.stats_index) {
            created.stored_list_requests += 1;
            if phase == Phase::Done && !report.fail {
                created.first_saved_list_us.get_or_insert(now_us);
            }
        }
        let created_at = content::rfc3339_utc(report.created_unix);
        let saved_unix = report.saved_unix();
        let saved_at = content::rfc3339_utc(saved_unix);
        match phase {
            Phase::Empty => Vec::new(),
            Phase::InProgress => report
                .files
                .iter()
                .map(|f| {
                    json!({
                        "id": f.id,
                        "report_format": f.format.as_str(),
                        "status": "in_progress",
                        "created_at": created_at,
                    })
                })
                .collect(),
            Phase::Done if report.fail => report
                .files
                .iter()
                .map(|f| {
                    json!({
                        "id": f.id,
                        "report_format": f.format.as_str(),
                        "status": "failed",
                        "created_at": saved_at,
                    })
                })
                .collect(),
            Phase::Done => {
                // The stale copies claim to be a day older and come first,
                // the order a server that appends would list them in.
                let stale_at = content::rfc3339_utc(saved_unix - 86_400);
                let listed = report
                    .stale
                    .iter()
                    .map(|f| (f, &stale_at))
                    .chain(report.files.iter().map(|f| (f, &saved_at)));
                let mut items = Vec::new();
                for (f, at) in listed {
                    if stored_compressed(&shared.scenario, &f.body) {
                        compressed_sizes.push((items.len(), f.body.clone(), f.compressed.clone()));
                    }
                    items.push(json!({
                        "id": f.id,
                        "report_format": f.format.as_str(),
                        "status": "saved",
                        "size": f.body.len(),
                        "created_at": at,
                    }));
                }
                items
            }
        }
    };
    // Outside the lock: compressing a file takes a while the first time.
    for (at, body, cell) in compressed_sizes {
        let size = compressed_body(body, cell).await?.len();
        if let Some(item) = items.get_mut(at) {
            item["size"] = json!(size);
        }
    }
    Ok(axum::Json(json!({ "items": items })).into_response())
}

/// True when `Accept-Encoding` lists gzip without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

pub(crate) fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    // GzEncoder writes mtime 0 and no file name, so equal input gives equal output.
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(data)?;
    enc.finish()
}

enum Source {
    Whole(Option<Bytes>),
    Chunks(ChunkCursor),
}

impl Source {
    fn next(&mut self) -> Option<Bytes> {
        match self {
            Source::Whole(b) => b.take(),
            Source::Chunks(c) => c.next_chunk(),
        }
    }
}

struct StreamState {
    source: Source,
    sent: u64,
    /// With a truncate fault: stop after this many bytes and fail the body.
    limit: Option<u64>,
    finished: bool,
    /// Told (report's stats index) once `total` bytes have been handed over; hyper stops
    /// polling a body at its Content-Length, so the end of the stream is never seen.
    done: Option<(Arc<Shared>, usize, u64)>,
}

/// A body that either streams everything or, with a limit, sends that much
/// and then errors, which makes hyper abort the connection mid-body (so the
/// client sees a short read against the announced Content-Length, not a clean end).
fn body_stream(
    source: Source,
    limit: Option<u64>,
    done: Option<(Arc<Shared>, usize, u64)>,
) -> Body {
    let state = StreamState {
        source,
        sent: 0,
        limit,
        finished: false,
        done,
    };
    let s = stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        if let Some(limit) = st.limit
            && st.sent >= limit
        {
            st.finished = true;
            // Let hyper flush the first half before the connection is torn down.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let err = std::io::Error::other("sandbox: injected truncated download");
            return Some((Err(err), st));
        }
        let mut chunk = st.source.next()?;
        if let Some(limit) = st.limit {
            let room = usize::try_from(limit - st.sent).unwrap_or(usize::MAX);
            chunk.truncate(room);
        }
        st.sent += chunk.len() as u64;
        let complete = matches!(&st.done, Some((_, _, total)) if st.sent >= *total);
        if complete && let Some((shared, stats_index, _)) = st.done.take() {
            shared.download_done(stats_index);
        }
        Some((Ok::<Bytes, std::io::Error>(chunk), st))
    });
    Body::from_stream(s)
}

fn file_response(content_type: &'static str, gzip: bool, length: u64, body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

async fn download(
    State(shared): State<Arc<Shared>>,
    Path((id, stored_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let (body, compressed, stats_index) = {
        let mut guard = shared.lock();
        let inner = &mut *guard;
        let report = inner
            .reports
            .get(&id.to_ascii_lowercase())
            .filter(|r| !r.deleted)
            .ok_or_else(report_not_found)?;
        let file = report
            .files
            .iter()
            .chain(report.stale.iter())
            .find(|f| f.id.eq_ignore_ascii_case(&stored_id))
            .ok_or_else(|| ApiError::not_found("Stored report not found"))?;
        if report.phase(Instant::now()) != Phase::Done {
            return Err(ApiError::not_found(
                "Stored report not found: it has not been saved yet",
            ));
        }
        if report.fail {
            return Err(ApiError::not_found(
                "Stored report not found: its generation failed",
            ));
        }
        let at = shared.micros(Instant::now());
        if let Some(created) = inner.stats.reports.get_mut(report.stats_index) {
            created.first_download_us.get_or_insert(at);
        }
        (
            file.body.clone(),
            file.compressed.clone(),
            report.stats_index,
        )
    };

    let truncate = shared.take_truncate_fault();
    let total = body.len();
    let body_type = body.content_type;
    if total > STREAM_THRESHOLD {
        let limit = truncate.then_some(total / 2);
        let done = Some((shared.clone(), stats_index, total));
        let stream = body_stream(Source::Chunks(ChunkCursor::new(body)), limit, done);
        return Ok(file_response(body_type, false, total, stream));
    }

    // Without the header the body is the stored `.gz` file itself, as an opaque download.
    let bare_gzip = shared.scenario.gzip_without_header;
    let use_gzip = !bare_gzip && shared.scenario.gzip && accepts_gzip(&headers);
    if use_gzip {
        shared.gzip_downloads.fetch_add(1, Ordering::Relaxed);
    }
    let bytes = if bare_gzip || use_gzip {
        compressed_body(body, compressed).await?
    } else {
        body.to_bytes()
    };
    let content_type = if bare_gzip {
        "application/octet-stream"
    } else {
        body_type
    };
    let length = bytes.len() as u64;
    let out = if truncate {
        body_stream(Source::Whole(Some(bytes)), Some(length / 2), None)
    } else {
        shared.download_done(stats_index);
        Body::from(bytes)
    };
    Ok(file_response(content_type, use_gzip, length, out))
}

async fn delete_report(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let version = query
        .as_deref()
        .map(|q| parse_form(q.as_bytes()))
        .and_then(|q| q.get("version").cloned())
        .ok_or_else(|| {
            ApiError::bad_field(
                "version",
                "Query parameter 'version' (the report's revision number) is required".into(),
            )
        })?;
    let version: u64 = version.parse().map_err(|_| {
        ApiError::bad_field(
            "version",
            "Query parameter 'version' must be a non-negative integer".into(),
        )
    })?;
    let mut inner = shared.lock();
    let report = inner
        .reports
        .get_mut(&id.to_ascii_lowercase())
        .filter(|r| !r.deleted)
        .ok_or_else(report_not_found)?;
    if report.version != version {
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            json!(1001),
            format!(
                "Version mismatch: the report is at version {}, not {version}",
                report.version
            ),
        );
        e.details = Some(json!({ "version": report.version }));
        return Err(e);
    }
    report.deleted = true;
    let index = report.stats_index;
    if let Some(created) = inner.stats.reports.get_mut(index) {
        created.deleted = true;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /clients/{id}` is how a client learns its own tenant; the sandbox
/// gives its client a stable, made-up partner tenant.
async fn client_info(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    if client_id != shared.scenario.client_id {
        return Err(ApiError::not_found("Client not found"));
    }
    Ok(axum::Json(json!({
        "id": client_id,
        "type": "api_client",
        "tenant_id": super::client_tenant_id(&client_id),
        "enabled": true,
        "data": { "client_name": "acronis-reports sandbox" },
    }))
    .into_response())
}

fn tenant_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, json!(1005), "Tenant not found")
}

/// `GET /tenants/{id}`: one tenant as the API client sees it. Every tenant exists (reports can
/// be created for any UUID) except those marked `unknown`, which this client cannot see: the
/// client's own tenant, the tenants of `tenant_tree`, the parents named there (partners) and
/// any other UUID (a customer under the client's tenant).
async fn tenant_info(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let sc = &shared.scenario;
    let id = id.to_ascii_lowercase();
    if !super::scenario::is_canonical_uuid(&id) || sc.tenant(&id).is_some_and(|t| t.unknown) {
        return Err(tenant_not_found());
    }
    let own = super::client_tenant_id(&sc.client_id);
    let tree = &sc.tenant_tree;
    let body = if id == own {
        json!({
            "id": own, "name": "Sandbox Partner", "kind": "partner", "parent_id": null,
            "enabled": true, "pricing_mode": "production", "has_children": true, "version": 1,
        })
    } else if let Some(t) = tree.iter().find(|t| t.id.eq_ignore_ascii_case(&id)) {
        json!({
            "id": t.id, "name": t.name, "kind": t.kind, "parent_id": t.parent_id,
            "enabled": t.enabled, "pricing_mode": t.pricing_mode,
            "has_children": tree.iter().any(|c| c.parent_id.eq_ignore_ascii_case(&t.id)),
            "version": 1,
        })
    } else if tree.iter().any(|t| t.parent_id.eq_ignore_ascii_case(&id)) {
        json!({
            "id": id, "name": format!("Partner {}", &id[..8]), "kind": "partner",
            "parent_id": own, "enabled": true, "pricing_mode": "production",
            "has_children": true, "version": 1,
        })
    } else {
        json!({
            "id": id, "name": format!("Customer {}", &id[..8]), "kind": "customer",
            "parent_id": own, "enabled": true, "pricing_mode": "production",
            "has_children": false, "version": 1,
        })
    };
    Ok(axum::Json(body).into_response())
}

/// `GET /tenants/{id}/children`: child UUIDs, or whole tenant objects with
/// `include_details=true`, paged with an opaque `after` cursor as the platform's
/// generic paging does.
async fn tenant_children(
    State(shared): State<Arc<Shared>>,
    Path(parent): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&shared, &headers)?;
    let tree = &shared.scenario.tenant_tree;
    let known = tree
        .iter()
        .any(|t| t.id.eq_ignore_ascii_case(&parent) || t.parent_id.eq_ignore_ascii_case(&parent));
    let invisible = shared.scenario.tenant(&parent).is_some_and(|t| t.unknown);
    if !known || invisible {
        return Err(tenant_not_found());
    }
    let params = parse_form(query.unwrap_or_default().as_bytes());
    let details = params.get("include_details").is_some_and(|v| v == "true");
    let page_size = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
        .min(shared.scenario.children_page_size)
        .max(1);
    let start = match params.get("after") {
        Some(cursor) => cursor
            .strip_prefix("cursor-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::bad_field("after", "invalid paging cursor".into()))?,
        None => 0,
    };
    let children: Vec<_> = tree
        .iter()
        .filter(|t| t.parent_id.eq_ignore_ascii_case(&parent))
        .collect();
    let page: Vec<Value> = children
        .iter()
        .skip(start)
        .take(page_size)
        .map(|t| {
            if details {
                json!({
                    "id": t.id, "name": t.name, "kind": t.kind, "parent_id": t.parent_id,
                    "enabled": t.enabled, "pricing_mode": t.pricing_mode,
                    "has_children": tree.iter().any(|c| c.parent_id.eq_ignore_ascii_case(&t.id)),
                    "version": 1,
                })
            } else {
                json!(t.id)
            }
        })
        .collect();
    let mut body = json!({ "items": page });
    if start + page_size < children.len() {
        body["paging"] = json!({ "cursors": { "after": format!("cursor-{}", start + page_size) } });
    }
    Ok(axum::Json(body).into_response())
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not found: no such API endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        json!(405),
        "Method not allowed for this endpoint",
    )
}
