//! The Acronis Account Management API v2 client: tokens, reports, stored files.
//!
//! It knows HTTP and the API, nothing of job files, output folders or CI. Every call retries what
//! is safe to retry (throttling, server errors, network errors) with backoff, honouring
//! `Retry-After`, and renews the token before it expires and once after a 401.

mod base_url;
mod endpoints;
mod error;
#[cfg(test)]
mod tests;
mod token;
mod transport;
pub(crate) mod types;

use std::time::{Duration, SystemTime};

use reqwest::Url;
use tokio::sync::Mutex;

use endpoints::*;
use transport::*;

pub(crate) use base_url::{api_base, canonical_base, is_loopback};
pub(crate) use error::{
    ApiError, BaseUrlError, UsageHistory, describe_error_body_scrubbed, one_line,
};
pub use transport::error_chain;
pub use types::{
    ChildrenPage, ClientInfo, CreateReport, CreatedReport, PeriodDates, ReportParameters,
    StoredItem, TenantInfo,
};

use crate::secret::{Scrubber, Secret};

/// API JSON bodies larger than this are refused: real answers are a few kilobytes.
pub(crate) const MAX_JSON_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How the client proves who it is.
#[derive(Clone, Debug)]
pub(crate) enum Credentials {
    /// An API client: the runner gets and renews tokens itself.
    Client { id: String, secret: Secret },
    /// A ready bearer token, used as is.
    Token(Secret),
}

/// Limits on one API call (not on downloads, whose bodies may take long).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientOptions {
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// Read timeout between two chunks of a download.
    pub(crate) read_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) min_retry_delay: Duration,
    pub(crate) max_retry_delay: Duration,
    /// A `Retry-After` longer than this fails the call instead of stalling the run.
    pub(crate) max_retry_after: Duration,
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

pub(crate) struct Client {
    /// One client, so one pool of connections for API calls and downloads alike (two clients
    /// held up to twice `concurrency` connections: `BENCHMARKS.md`, the connections case). It
    /// decodes no `Content-Encoding` itself: a download counts its bytes as transferred against
    /// the stored list's (compressed) `size` and decodes gzip itself, and an API answer is
    /// decoded where it is read ([`transport::read_capped`]).
    http: reqwest::Client,
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
pub(crate) struct ProbeAnswer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    /// Whether the body is JSON, as every answer of the API is.
    pub(crate) json: bool,
    /// The body in one line, as an error reason ("Unauthorized (code 401)", "an HTML page").
    pub(crate) described: String,
}

/// [`Client::probe`] got no answer; `connecting` says whether it failed before the HTTP
/// exchange began (name resolution, TCP, the TLS handshake).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{error}")]
pub(crate) struct ProbeFailure {
    pub(crate) error: ApiError,
    pub(crate) connecting: bool,
}

/// Called with each new credential value a client starts to use.
pub(crate) type SecretHook = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

impl Client {
    pub fn new(
        base: Url,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self, ApiError> {
        let build = || {
            let origin = base.origin();
            let host = base.host_str().unwrap_or_default().to_owned();
            let redirects = reqwest::redirect::Policy::custom(move |attempt| {
                // What the request was is told by where it went first: only downloads fetch
                // `…/stored/{id}`.
                let download = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| transport::is_download(first.path()));
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
                .gzip(false)
                .default_headers(reqwest::header::HeaderMap::from_iter([(
                    reqwest::header::ACCEPT_ENCODING,
                    reqwest::header::HeaderValue::from_static("gzip"),
                )]));
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
        let http = build()?;
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
    pub(crate) fn on_new_secret(mut self, hook: SecretHook) -> Self {
        self.on_new_secret = Some(hook);
        self
    }

    /// Values that the caller should also treat as secret besides the ones it passed in:
    /// the Basic encoding of `id:secret`.
    pub(crate) fn derived_secrets(&self) -> Vec<String> {
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
    pub(crate) fn scrub(&self, text: &str) -> String {
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
    pub(crate) fn refused(&self) -> Option<&str> {
        self.refused.get().map(String::as_str)
    }

    /// Notes a refusal of the credentials on its way out.
    fn noting_refusal(&self, error: ApiError) -> ApiError {
        if matches!(error, ApiError::AuthRefused { .. }) {
            let _ = self.refused.set(error.to_string());
        }
        error
    }

    pub(crate) fn base_url(&self) -> &Url {
        &self.base
    }

    /// Makes sure the credentials are accepted before anything is created.
    pub(crate) async fn authenticate(&self) -> Result<(), ApiError> {
        self.bearer(false).await.map(drop)
    }
}
