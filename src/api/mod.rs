//! The Acronis Account Management API v2 client: tokens, reports, stored files.
//!
//! It knows HTTP and the API, nothing of job files, output folders or CI. Every call retries what
//! is safe to retry (throttling, server errors, network errors) with backoff, honouring
//! `Retry-After`, and renews the token before it expires and once after a 401.

mod error;
pub mod types;

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::sync::Mutex;

pub use error::{
    ApiError, BASE_URL_HINT, BaseUrlError, UsageHistory, describe_error_body,
    describe_error_body_scrubbed, one_line,
};
pub use types::{
    ChildrenPage, ClientInfo, CreateReport, CreatedReport, PeriodDates, ReportParameters,
    StoredItem, TenantInfo,
};

use crate::retry::{Backoff, parse_retry_after};
use crate::secret::{Scrubber, Secret};

/// API JSON bodies larger than this are refused: real answers are a few kilobytes.
pub const MAX_JSON_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How the client proves who it is.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// An API client: the runner gets and renews tokens itself.
    Client { id: String, secret: Secret },
    /// A ready bearer token, used as is.
    Token(Secret),
}

/// Limits on one API call (not on downloads, whose bodies may take long).
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Read timeout between two chunks of a download.
    pub read_timeout: Duration,
    pub max_attempts: u32,
    pub min_retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// A `Retry-After` longer than this fails the call instead of stalling the run.
    pub max_retry_after: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(120),
            max_attempts: 6,
            min_retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Whether a request may be sent again after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replay {
    /// Reads and deletes: any transient failure can be retried.
    Safe,
    /// Creation: only retried when the server cannot have acted on it (429, 503, no connection),
    /// so that a report is never created twice.
    OnlyIfUnprocessed,
}

struct CachedToken {
    value: Secret,
    renew_after: SystemTime,
}

pub struct Client {
    http: reqwest::Client,
    /// For downloads: decodes no `Content-Encoding` itself, so that the bytes as transferred
    /// can be counted against the stored list's (compressed) `size`; the download decodes gzip.
    http_raw: reqwest::Client,
    /// Ends with `/api/2/`.
    base: Url,
    credentials: Credentials,
    token: Mutex<Option<CachedToken>>,
    options: ClientOptions,
    /// Why the server refused these credentials, once it has: every later call would be
    /// refused the same way.
    refused: std::sync::OnceLock<String>,
    /// Every credential this client holds or has held, scrubbed from all server text it repeats.
    scrubber: Scrubber,
    /// Whether an out-of-bounds token lifetime was reported already (it is said once).
    odd_lifetime_said: std::sync::atomic::AtomicBool,
    /// Told each new credential value (a fetched token), e.g. to mask it in a CI log.
    on_new_secret: Option<SecretHook>,
    /// Whether the server has answered (with any status) at least once.
    reached: std::sync::atomic::AtomicBool,
}

/// What the server answered to [`Client::probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    /// Whether the body is JSON, as every answer of the API is.
    pub json: bool,
    /// The body in one line, as an error reason ("Unauthorized (code 401)", "an HTML page").
    pub described: String,
}

/// [`Client::probe`] got no answer; `connecting` says whether it failed before the HTTP
/// exchange began (name resolution, TCP, the TLS handshake).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{error}")]
pub struct ProbeFailure {
    pub error: ApiError,
    pub connecting: bool,
}

/// Called with each new credential value a client starts to use.
pub type SecretHook = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Checks a data-center URL and turns it into the API base (`…/api/2/`). Only `https://` is
/// accepted, except for loopback addresses (the sandbox and tests); the path may only be `/api/2`
/// (a console page's path, copied from the browser, is not the API).
pub fn api_base(text: &str) -> Result<Url, ApiError> {
    Ok(check_base(text)?)
}

fn check_base(text: &str) -> Result<Url, BaseUrlError> {
    let trimmed = text.trim();
    let shown = one_line(trimmed, 120);
    // `eu2-cloud.acronis.com` is a relative URL to the parser, and `host:443` one whose scheme
    // is the host: neither says what was meant.
    if !trimmed.contains("://") {
        return Err(if trimmed.is_empty() {
            BaseUrlError::Unparsable {
                url: shown,
                reason: "it is empty".to_owned(),
            }
        } else {
            BaseUrlError::NoScheme { url: shown }
        });
    }
    let mut url = Url::parse(trimmed).map_err(|e| BaseUrlError::Unparsable {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Said without them: the password is a secret.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        return Err(BaseUrlError::Credentials {
            url: one_line(url.as_str(), 120),
        });
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(BaseUrlError::PlainHttp { url: shown }),
        scheme => {
            return Err(BaseUrlError::Scheme {
                scheme: one_line(scheme, 20),
                url: shown,
            });
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BaseUrlError::Unparsable {
            url: shown,
            reason: "it has no host".to_owned(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BaseUrlError::QueryOrFragment { url: shown });
    }
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.is_empty() && path != "/api/2" {
        return Err(BaseUrlError::Path {
            url: shown,
            path: one_line(url.path(), 60),
        });
    }
    url.set_path("/api/2/");
    Ok(url)
}

/// The one spelling of an API base URL that the journal and the manifest use: the parsed base
/// (scheme and host lowercased, default port dropped, `.`/`..` and `%2e` resolved, spaces
/// trimmed) without its `/api/2/` ending, so that `HTTP://Host/api/2/` and `http://host` agree.
pub fn canonical_base(base: &Url) -> String {
    let text = base.as_str();
    let text = text.strip_suffix("api/2/").unwrap_or(text);
    text.trim_end_matches('/').to_owned()
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl Client {
    pub fn new(
        base: Url,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self, ApiError> {
        // The same settings for both clients; only content decoding and redirects differ.
        let build = |decode: bool| {
            let origin = base.origin();
            let (host, download) = (base.host_str().unwrap_or_default().to_owned(), !decode);
            let redirects = reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 10 {
                    return attempt.error("more than 10 redirects");
                }
                if attempt.url().origin() == origin {
                    return attempt.follow();
                }
                // An API call that leaves the API's origin would send its body (a create
                // request) to another host and take that host's answer as the API's. A
                // download may go to a file host over https: credentials are not sent along
                // (the HTTP client drops them when the host changes).
                if download && attempt.url().scheme() == "https" {
                    return attempt.follow();
                }
                let target = format!(
                    "{}://{}",
                    attempt.url().scheme(),
                    attempt.url().host_str().unwrap_or_default()
                );
                attempt.error(format!(
                    "the server redirected to {target}, outside {host}; refusing to follow"
                ))
            });
            let mut builder = reqwest::Client::builder()
                .redirect(redirects)
                .user_agent(concat!("acronis-reports/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.read_timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_keepalive(Duration::from_secs(30))
                .gzip(decode);
            if is_loopback(&base) {
                // A proxy from the environment must never capture sandbox or test traffic.
                builder = builder.no_proxy();
            } else {
                builder = builder.https_only(true);
            }
            builder
                .build()
                .map_err(|e| ApiError::Config(format!("cannot set up the HTTP client: {e}")))
        };
        let (http, http_raw) = (build(true)?, build(false)?);
        let scrubber = Scrubber::default();
        match &credentials {
            Credentials::Token(token) => {
                scrubber.add(token.expose());
            }
            Credentials::Client { id, secret } => {
                use base64::Engine as _;
                let pair = format!("{id}:{}", secret.expose());
                scrubber.add(secret.expose());
                // What the token request's `Authorization: Basic …` carries.
                scrubber.add(&base64::engine::general_purpose::STANDARD.encode(&pair));
                scrubber.add(&pair);
            }
        }
        Ok(Self {
            http,
            http_raw,
            base,
            credentials,
            token: Mutex::new(None),
            options,
            refused: std::sync::OnceLock::new(),
            scrubber,
            odd_lifetime_said: std::sync::atomic::AtomicBool::new(false),
            on_new_secret: None,
            reached: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Calls `hook` with every token this client fetches from now on (the caller knows the
    /// credentials it passed in), e.g. to print `::add-mask::` in GitHub Actions.
    pub fn on_new_secret(mut self, hook: SecretHook) -> Self {
        self.on_new_secret = Some(hook);
        self
    }

    /// Values that the caller should also treat as secret besides the ones it passed in:
    /// the Basic encoding of `id:secret`.
    pub fn derived_secrets(&self) -> Vec<String> {
        match &self.credentials {
            Credentials::Token(_) => Vec::new(),
            Credentials::Client { id, secret } => {
                use base64::Engine as _;
                vec![
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{id}:{}", secret.expose())),
                ]
            }
        }
    }

    /// `text` without any credential this client holds or has held: for any server text that
    /// is repeated outside the client (report statuses, file excerpts).
    pub fn scrub(&self, text: &str) -> String {
        self.scrubber.scrub(text)
    }

    /// The error with every credential scrubbed from the text it carries.
    fn scrubbed(&self, error: ApiError) -> ApiError {
        let s = |text: String| self.scrubber.scrub(&text);
        match error {
            ApiError::Config(text) => ApiError::Config(s(text)),
            ApiError::AuthRefused { status, reason } => ApiError::AuthRefused {
                status,
                reason: s(reason),
            },
            ApiError::Status {
                method,
                path,
                status,
                reason,
                retry_after,
            } => ApiError::Status {
                method,
                path: s(path),
                status,
                reason: s(reason),
                retry_after,
            },
            ApiError::Transport {
                method,
                path,
                message,
            } => ApiError::Transport {
                method,
                path: s(path),
                message: s(message),
            },
            ApiError::UntrustedCertificate {
                method,
                path,
                message,
            } => ApiError::UntrustedCertificate {
                method,
                path: s(path),
                message: s(message),
            },
            ApiError::InvalidResponse {
                method,
                path,
                detail,
            } => ApiError::InvalidResponse {
                method,
                path: s(path),
                detail: s(detail),
            },
            ApiError::HostNotFound {
                method,
                path,
                host,
                message,
            } => ApiError::HostNotFound {
                method,
                path: s(path),
                host,
                message: s(message),
            },
            ApiError::NotTls {
                method,
                path,
                origin,
                message,
            } => ApiError::NotTls {
                method,
                path: s(path),
                origin,
                message: s(message),
            },
            ApiError::BaseUrl(error) => ApiError::BaseUrl(error),
        }
    }

    /// Why the server refused this client's credentials (a token or client secret it no longer
    /// accepts), once it has; a run stops starting reports then.
    pub fn refused(&self) -> Option<&str> {
        self.refused.get().map(String::as_str)
    }

    /// Notes a refusal of the credentials on its way out.
    fn noting_refusal(&self, error: ApiError) -> ApiError {
        if matches!(error, ApiError::AuthRefused { .. }) {
            let _ = self.refused.set(error.to_string());
        }
        error
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Makes sure the credentials are accepted before anything is created.
    pub async fn authenticate(&self) -> Result<(), ApiError> {
        self.bearer(false).await.map(drop)
    }

    pub async fn create_report(&self, body: &CreateReport) -> Result<CreatedReport, ApiError> {
        let path = "reports".to_owned();
        let response = self
            .send(Method::POST, &path, Replay::OnlyIfUnprocessed, None, |r| {
                r.json(body)
            })
            .await?;
        let value = self.json_body(Method::POST, &path, response).await?;
        let id = value
            .get("id")
            .and_then(|id| id.as_str())
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| invalid(Method::POST, &path, "the created report has no `id`"))?;
        check_id_length(Method::POST, &path, "the created report's", id)?;
        Ok(CreatedReport {
            id: id.to_owned(),
            version: value.get("version").and_then(types::as_u64),
        })
    }

    /// The stored files of a report (`GET /reports/{id}/stored`). `deadline` bounds the retries.
    pub async fn stored_reports(
        &self,
        report_id: &str,
        deadline: Option<Instant>,
    ) -> Result<Vec<StoredItem>, ApiError> {
        let path = format!("reports/{}/stored", segment(report_id));
        let (_, items) = self.get_items(&path, deadline).await?;
        items
            .iter()
            .map(|item| {
                if !item.is_object() {
                    return Err(invalid(
                        Method::GET,
                        &path,
                        &format!(
                            "a stored item is not an object: {}",
                            one_line(&item.to_string(), 80)
                        ),
                    ));
                }
                let item: StoredItem = serde_json::from_value(item.clone()).map_err(|e| {
                    invalid(
                        Method::GET,
                        &path,
                        &format!("a stored item is malformed: {e}"),
                    )
                })?;
                if let Some(id) = &item.id {
                    check_id_length(Method::GET, &path, "a stored item's", id)?;
                }
                Ok(item)
            })
            .collect()
    }

    /// Starts downloading one stored file; the caller streams the body, as transferred: a
    /// `Content-Encoding: gzip` body arrives still compressed, for the caller to decode.
    pub async fn download(&self, report_id: &str, stored_id: &str) -> Result<Response, ApiError> {
        let path = format!(
            "reports/{}/stored/{}",
            segment(report_id),
            segment(stored_id)
        );
        self.send(Method::GET, &path, Replay::Safe, None, |r| r)
            .await
    }

    /// One page of a tenant's children with details (`GET /tenants/{id}/children`), following
    /// the platform's cursor paging: pass the returned `next` cursor to get the next page.
    pub async fn tenant_children(
        &self,
        tenant_id: &str,
        after: Option<&str>,
    ) -> Result<ChildrenPage, ApiError> {
        let mut path = format!(
            "tenants/{}/children?include_details=true",
            segment(tenant_id)
        );
        if let Some(cursor) = after {
            path.push_str("&after=");
            path.push_str(&segment(cursor));
        }
        let (value, items) = self.get_items(&path, None).await?;
        let tenants = items
            .iter()
            .map(|item| {
                serde_json::from_value::<TenantInfo>(item.clone())
                    .ok()
                    .filter(|t| !t.id.trim().is_empty())
                    .ok_or_else(|| {
                        invalid(
                            Method::GET,
                            &path,
                            &format!(
                                "a child tenant has no usable `id`: {}",
                                one_line(&item.to_string(), 80)
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = value
            .pointer("/paging/cursors/after")
            .and_then(|c| c.as_str())
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        Ok(ChildrenPage { tenants, next })
    }

    /// The API client's own record (`GET /clients/{client_id}`): above all the tenant it
    /// belongs to, which is where its view of the tenant tree starts.
    pub async fn client_info(&self, client_id: &str) -> Result<ClientInfo, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        let response = self
            .send(Method::GET, &path, Replay::Safe, None, |r| r)
            .await?;
        let value = self.json_body(Method::GET, &path, response).await?;
        let tenant_id = value
            .get("tenant_id")
            .and_then(|t| t.as_str())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid(Method::GET, &path, "the client has no `tenant_id`"))?;
        check_id_length(Method::GET, &path, "the client's tenant", tenant_id)?;
        Ok(ClientInfo {
            tenant_id: tenant_id.to_owned(),
            enabled: value.get("enabled").and_then(serde_json::Value::as_bool),
        })
    }

    /// One tenant (`GET /tenants/{id}`); 403 or 404 when this client cannot see it.
    pub async fn tenant(&self, tenant_id: &str) -> Result<TenantInfo, ApiError> {
        let path = format!("tenants/{}", segment(tenant_id));
        let response = self
            .send(Method::GET, &path, Replay::Safe, None, |r| r)
            .await?;
        let value = self.json_body(Method::GET, &path, response).await?;
        let tenant = serde_json::from_value::<TenantInfo>(value.clone())
            .ok()
            .filter(|t| !t.id.trim().is_empty())
            .ok_or_else(|| {
                invalid(
                    Method::GET,
                    &path,
                    &format!(
                        "the tenant has no usable `id`: {}",
                        one_line(&value.to_string(), 80)
                    ),
                )
            })?;
        check_id_length(Method::GET, &path, "the tenant's", &tenant.id)?;
        Ok(tenant)
    }

    /// Whether the server accepts this client's credentials, with one cheap authenticated read
    /// that needs no id: `GET /reports/{nil UUID}`. Only 401 means refused (the documented
    /// answer to an invalid or expired token or a disabled client); the 404 (or 403) a report
    /// that does not exist gets means the credentials passed.
    pub async fn check_credentials(&self) -> Result<(), ApiError> {
        let path = "reports/00000000-0000-0000-0000-000000000000";
        match self
            .send(Method::GET, path, Replay::Safe, None, |r| r)
            .await
        {
            Ok(_)
            | Err(ApiError::Status {
                status: 400 | 403 | 404,
                ..
            }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// One request without credentials (`GET /reports/{nil UUID}`), to learn whether the
    /// server is reachable and is the API at all, apart from whether it accepts the credentials:
    /// the API answers such a request with an error in JSON (401), a web page or a portal does
    /// not. No retries: a preflight says what is wrong now.
    pub async fn probe(&self) -> Result<ProbeAnswer, ProbeFailure> {
        let path = "reports/00000000-0000-0000-0000-000000000000";
        let url = self.base.join(path).map_err(|e| ProbeFailure {
            error: ApiError::Config(format!("cannot build the URL for {path}: {e}")),
            connecting: false,
        })?;
        let result = self
            .http
            .get(url)
            .timeout(self.options.request_timeout)
            .send()
            .await;
        self.note_contact(&result);
        let response = result.map_err(|e| ProbeFailure {
            error: self.scrubbed(self.transport_error("GET", path, &e)),
            connecting: e.is_connect(),
        })?;
        let status = response.status().as_u16();
        let content_type = content_type(response.headers());
        let body = match read_capped(response, 64 * 1024).await {
            Ok(Capped::Whole(body) | Capped::Cut(body)) => body,
            Err(message) => {
                return Err(ProbeFailure {
                    error: self.scrubbed(ApiError::Transport {
                        method: "GET",
                        path: path.to_owned(),
                        message,
                    }),
                    connecting: false,
                });
            }
        };
        Ok(ProbeAnswer {
            status,
            json: serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            described: describe_error_body_scrubbed(content_type.as_deref(), &body, &|t| {
                self.scrubber.scrub(t)
            }),
            content_type,
        })
    }

    /// A GET whose answer is `{"items": [...], ...}`: the whole body and its items.
    async fn get_items(
        &self,
        path: &str,
        deadline: Option<Instant>,
    ) -> Result<(serde_json::Value, Vec<serde_json::Value>), ApiError> {
        let response = self
            .send(Method::GET, path, Replay::Safe, deadline, |r| r)
            .await?;
        let mut value = self.json_body(Method::GET, path, response).await?;
        match value.get_mut("items").map(serde_json::Value::take) {
            Some(serde_json::Value::Array(items)) => Ok((value, items)),
            _ => Err(invalid(Method::GET, path, "the body has no `items` array")),
        }
    }

    /// Deletes a report on the server (`DELETE /reports/{id}?version=N`).
    pub async fn delete_report(&self, report_id: &str, version: u64) -> Result<(), ApiError> {
        let path = format!("reports/{}?version={version}", segment(report_id));
        self.send(Method::DELETE, &path, Replay::Safe, None, |r| r)
            .await
            .map(drop)
    }

    /// Sends a request with authentication, retries and error mapping. Returns only 2xx answers;
    /// an error never carries a credential, whatever the server put in its answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        replay: Replay,
        deadline: Option<Instant>,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ApiError> {
        self.send_unscrubbed(method, path, replay, deadline, build)
            .await
            .map_err(|e| self.scrubbed(e))
    }

    async fn send_unscrubbed(
        &self,
        method: Method,
        path: &str,
        replay: Replay,
        deadline: Option<Instant>,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ApiError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| ApiError::Config(format!("cannot build the URL for {path}: {e}")))?;
        let method_name = method_name(&method);
        let mut backoff = Backoff::new(self.options.min_retry_delay, self.options.max_retry_delay);
        let mut renewed_after_401 = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.bearer(false).await?;
            let download = method == Method::GET && path.contains("/stored/");
            let http = if download { &self.http_raw } else { &self.http };
            let request =
                build(http.request(method.clone(), url.clone())).bearer_auth(token.expose());
            let request = if download {
                // Downloads may take long: the caller bounds them. gzip is still welcome on
                // the wire; the download decodes it and counts the bytes as transferred.
                request.header(reqwest::header::ACCEPT_ENCODING, "gzip")
            } else {
                request.timeout(self.options.request_timeout)
            };
            let result = request.send().await;
            self.note_contact(&result);
            let error = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    let error = status_error(method_name, path, response, &self.scrubber).await;
                    if renewed_after_401 || !matches!(self.credentials, Credentials::Client { .. })
                    {
                        let reason = match error {
                            ApiError::Status { reason, .. } => reason,
                            other => other.to_string(),
                        };
                        // A server or proxy may echo the token it refused: the reason was
                        // scrubbed on the way in (`status_error`).
                        return Err(self.noting_refusal(ApiError::AuthRefused {
                            status: 401,
                            reason,
                        }));
                    }
                    renewed_after_401 = true;
                    self.bearer(true).await?;
                    continue;
                }
                Ok(response) => status_error(method_name, path, response, &self.scrubber).await,
                Err(e) => {
                    let error = self.transport_error(method_name, path, &e);
                    if replay == Replay::OnlyIfUnprocessed && !e.is_connect() {
                        return Err(error);
                    }
                    error
                }
            };
            let replayable = match replay {
                Replay::Safe => error.is_transient(),
                Replay::OnlyIfUnprocessed => matches!(
                    error,
                    ApiError::Status {
                        status: 429 | 503,
                        ..
                    } | ApiError::Transport { .. }
                ),
            };
            if !replayable || attempt >= self.options.max_attempts {
                return Err(error);
            }
            let wait = match error.retry_after() {
                Some(after) if after > self.options.max_retry_after => return Err(error),
                Some(after) => after,
                None => backoff.next_delay(),
            };
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                return Err(error);
            }
            tracing::debug!(%error, wait_ms = wait.as_millis() as u64, attempt, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// The current bearer token, fetching a new one when there is none, it is about to expire,
    /// or `force` says the server refused it.
    async fn bearer(&self, force: bool) -> Result<Secret, ApiError> {
        let (id, secret) = match &self.credentials {
            Credentials::Token(token) => return Ok(token.clone()),
            Credentials::Client { id, secret } => (id, secret),
        };
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && !force
            && SystemTime::now() < token.renew_after
        {
            return Ok(token.value.clone());
        }
        let token = self
            .fetch_token(id, secret)
            .await
            .map_err(|e| self.noting_refusal(self.scrubbed(e)))?;
        let value = token.value.clone();
        if self.scrubber.add(value.expose())
            && let Some(hook) = &self.on_new_secret
        {
            hook(value.expose());
        }
        *cached = Some(token);
        Ok(value)
    }

    async fn fetch_token(&self, id: &str, secret: &Secret) -> Result<CachedToken, ApiError> {
        let path = "idp/token";
        let url = self
            .base
            .join(path)
            .map_err(|e| ApiError::Config(format!("cannot build the token URL: {e}")))?;
        let mut backoff = Backoff::new(self.options.min_retry_delay, self.options.max_retry_delay);
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let result = self
                .http
                .post(url.clone())
                .basic_auth(id, Some(secret.expose()))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials")
                .timeout(self.options.request_timeout)
                .send()
                .await;
            self.note_contact(&result);
            let error = match result {
                Ok(response) if response.status().is_success() => break response,
                Ok(response)
                    if response.status().is_client_error()
                        && response.status() != StatusCode::TOO_MANY_REQUESTS =>
                {
                    let status = response.status().as_u16();
                    let reason = match status_error("POST", path, response, &self.scrubber).await {
                        ApiError::Status { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    return Err(ApiError::AuthRefused { status, reason });
                }
                Ok(response) => status_error("POST", path, response, &self.scrubber).await,
                Err(e) => self.transport_error("POST", path, &e),
            };
            if !error.is_transient() || attempt >= self.options.max_attempts {
                return Err(error);
            }
            let wait = error.retry_after().unwrap_or_else(|| backoff.next_delay());
            if wait > self.options.max_retry_after {
                return Err(error);
            }
            tokio::time::sleep(wait).await;
        };
        let value = self.json_body(Method::POST, path, response).await?;
        let access_token = value
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                invalid(
                    Method::POST,
                    path,
                    "the token response has no `access_token`",
                )
            })?;
        let (renew_after, odd) = renewal_time(&value, SystemTime::now());
        if odd
            && !self
                .odd_lifetime_said
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                "the token endpoint announced a lifetime outside {}s..{}s; using the nearest bound",
                MIN_TOKEN_LIFETIME.as_secs(),
                MAX_TOKEN_LIFETIME.as_secs()
            );
        }
        Ok(CachedToken {
            value: Secret::new(access_token),
            renew_after,
        })
    }

    /// Reads a JSON body, refusing bodies over [`MAX_JSON_BODY_BYTES`] and non-JSON content.
    async fn json_body(
        &self,
        method: Method,
        path: &str,
        response: Response,
    ) -> Result<serde_json::Value, ApiError> {
        self.json_body_unscrubbed(method, path, response)
            .await
            .map_err(|e| self.scrubbed(e))
    }

    async fn json_body_unscrubbed(
        &self,
        method: Method,
        path: &str,
        response: Response,
    ) -> Result<serde_json::Value, ApiError> {
        let method_name = method_name(&method);
        let content_type = content_type(response.headers());
        let body = match read_capped(response, MAX_JSON_BODY_BYTES).await {
            Ok(Capped::Whole(body)) => body,
            Ok(Capped::Cut(_)) => {
                return Err(invalid(
                    method,
                    path,
                    &format!(
                        "the body is larger than {MAX_JSON_BODY_BYTES} bytes; an API answer is a few kilobytes"
                    ),
                ));
            }
            Err(message) => {
                return Err(ApiError::Transport {
                    method: method_name,
                    path: path.to_owned(),
                    message,
                });
            }
        };
        serde_json::from_slice(&body).map_err(|e| {
            let detail = if content_type
                .as_deref()
                .is_some_and(|ct| !ct.contains("json"))
            {
                format!(
                    "expected JSON but got {} ({})",
                    content_type.unwrap_or_default(),
                    describe_error_body_scrubbed(None, &body, &|t| self.scrubber.scrub(t))
                )
            } else {
                format!("the body is not valid JSON ({e})")
            };
            ApiError::InvalidResponse {
                method: method_name,
                path: path.to_owned(),
                detail,
            }
        })
    }
}

/// A token is used for at least this long, whatever the server says its lifetime is: an
/// `expires_on` already past would otherwise mean a token request before every call.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// And at most this long: the documented lifetime is 2 hours; an absurd one (`1e308`) is a
/// broken server, and would overflow the clock.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// When to renew a token, from the token response's `expires_on` (epoch seconds) or
/// `expires_in` (seconds), and whether the lifetime they gave had to be clamped.
fn renewal_time(value: &serde_json::Value, now: SystemTime) -> (SystemTime, bool) {
    let now_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64();
    let announced = value
        .get("expires_on")
        .and_then(|v| v.as_f64())
        .map(|epoch| epoch - now_epoch)
        .or_else(|| value.get("expires_in").and_then(|v| v.as_f64()));
    let (lifetime, odd) = match announced {
        // Documented lifetime when the response says nothing.
        None => (Duration::from_secs(7200), false),
        Some(secs) if secs.is_finite() && secs >= MIN_TOKEN_LIFETIME.as_secs_f64() => {
            let max = MAX_TOKEN_LIFETIME.as_secs_f64();
            (Duration::from_secs_f64(secs.min(max)), secs > max)
        }
        Some(secs) if secs.is_finite() => (MIN_TOKEN_LIFETIME, true),
        Some(_) => (MAX_TOKEN_LIFETIME, true),
    };
    // Renew with a margin: a quarter of the lifetime, at most 15 minutes as the vendor's
    // examples do, so a slow poll never carries a token that expires in flight.
    let margin = (lifetime / 4).min(Duration::from_secs(900));
    (now + (lifetime - margin), odd)
}

/// The longest server id we take: real ids are UUIDs (36 characters). A longer one is kept
/// nowhere, since it would be repeated in every log line, the journal and the manifest.
pub const MAX_ID_CHARS: usize = 200;

fn check_id_length(method: Method, path: &str, whose: &str, id: &str) -> Result<(), ApiError> {
    let length = id.chars().count();
    if length > MAX_ID_CHARS {
        return Err(invalid(
            method,
            path,
            &format!(
                "{whose} id is {length} characters long (it begins `{}`); ids are at most {MAX_ID_CHARS}",
                one_line(id, 40)
            ),
        ));
    }
    Ok(())
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "HTTP",
    }
}

fn invalid(method: Method, path: &str, detail: &str) -> ApiError {
    ApiError::InvalidResponse {
        method: method_name(&method),
        path: path.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Percent-encodes an id taken from a server response before it goes into a URL path.
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A body read up to a limit: all of it, or the first `cap` bytes of a longer one.
enum Capped {
    Whole(Bytes),
    Cut(Bytes),
}

/// Reads at most `cap` bytes, so an endless or huge body never exhausts memory.
async fn read_capped(response: Response, cap: usize) -> Result<Capped, String> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| error_chain(&e))?;
        if body.len() + chunk.len() > cap {
            body.extend_from_slice(&chunk[..cap - body.len()]);
            return Ok(Capped::Cut(Bytes::from(body)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(Bytes::from(body)))
}

async fn status_error(
    method: &'static str,
    path: &str,
    response: Response,
    scrubber: &Scrubber,
) -> ApiError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let content_type = content_type(response.headers());
    // Error bodies only need to be long enough to explain; never read an endless one.
    let reason = match read_capped(response, 64 * 1024).await {
        Ok(Capped::Whole(body) | Capped::Cut(body)) => {
            describe_error_body_scrubbed(content_type.as_deref(), &body, &|t| scrubber.scrub(t))
        }
        Err(_) => "the error body could not be read".to_owned(),
    };
    ApiError::Status {
        method,
        path: path.to_owned(),
        status,
        reason,
        retry_after,
    }
}

impl Client {
    /// Remembers that the server answered at all: from then on a resolver or TLS failure is a
    /// passing network problem, not a wrong URL.
    fn note_contact(&self, result: &Result<Response, reqwest::Error>) {
        if result.is_ok() {
            self.reached
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A transport error, told apart by cause. Until the server has answered once, a host that
    /// does not resolve and a server that does not speak TLS mean a wrong URL: said with what
    /// to fix, and not retried.
    fn transport_error(
        &self,
        method: &'static str,
        path: &str,
        error: &reqwest::Error,
    ) -> ApiError {
        let first_contact = !self.reached.load(std::sync::atomic::Ordering::Relaxed);
        if first_contact && error.is_connect() {
            if error.is_dns() {
                return ApiError::HostNotFound {
                    method,
                    path: path.to_owned(),
                    host: self.base.host_str().unwrap_or_default().to_owned(),
                    message: root_cause(error),
                };
            }
            if speaks_no_tls(error) {
                return ApiError::NotTls {
                    method,
                    path: path.to_owned(),
                    origin: self.base.origin().ascii_serialization(),
                    message: root_cause(error),
                };
            }
        }
        transport_error(method, path, error)
    }
}

/// The innermost cause of an error, in one line ("failed to lookup address information: …").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    one_line(&cause.to_string(), 200)
}

/// Whether the TLS handshake failed on a message that is not TLS at all: what a client reads
/// when the port speaks plain HTTP ("received corrupt message of type InvalidContentType").
fn speaks_no_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidMessage(_))
        ) || e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| speaks_no_tls(inner))
        {
            return true;
        }
        cause = e.source();
    }
    false
}

fn transport_error(method: &'static str, path: &str, error: &reqwest::Error) -> ApiError {
    let (path, message) = (path.to_owned(), error_chain(error));
    if error.is_redirect() {
        // A refused redirect stays refused: not a network error worth retrying.
        return ApiError::InvalidResponse {
            method,
            path,
            detail: message,
        };
    }
    if rejects_certificate(error) {
        return ApiError::UntrustedCertificate {
            method,
            path,
            message,
        };
    }
    ApiError::Transport {
        method,
        path,
        message,
    }
}

/// Whether TLS verification of the server's certificate failed somewhere in `error`'s causes.
/// (An `io::Error` hides the error it wraps from `source()`, hence the look inside it.)
fn rejects_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let is_certificate = |e: &(dyn std::error::Error + 'static)| {
        matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        )
    };
    let mut cause = Some(error);
    while let Some(e) = cause {
        if is_certificate(e)
            || e.downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .is_some_and(|inner| rejects_certificate(inner))
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The error and its causes in one line ("error sending request: connection refused").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    // reqwest names the full URL; the path is already in our message.
    one_line(&message, 300)
}

#[cfg(test)]
mod tests {
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
}

#[cfg(test)]
mod scrub_tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sandbox::{Endpoint, FaultRule, Hostile, Sandbox, Scenario};

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
