//! Sending a request: authentication, retries with backoff and `Retry-After`, bounded bodies,
//! and errors that say what went wrong on the network without repeating a credential.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::RETRY_AFTER;
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::retry::{Backoff, parse_retry_after};
use crate::secret::Scrubber;

use super::*;

impl Client {
    /// Sends a request with authentication, retries and error mapping. Returns only 2xx answers;
    /// an error never carries a credential, whatever the server put in its answer.
    pub(super) async fn send(
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

    pub(super) async fn send_unscrubbed(
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
            let download = method == Method::GET && is_download(path);
            let request =
                build(self.http.request(method.clone(), url.clone())).bearer_auth(token.expose());
            // Downloads may take long: the caller bounds them (and decodes gzip itself).
            let request = if download {
                request
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

    /// Reads a JSON body, refusing bodies over [`MAX_JSON_BODY_BYTES`] and non-JSON content.
    pub(super) async fn json_body(
        &self,
        method: Method,
        path: &str,
        response: Response,
    ) -> Result<serde_json::Value, ApiError> {
        self.json_body_unscrubbed(method, path, response)
            .await
            .map_err(|e| self.scrubbed(e))
    }

    pub(super) async fn json_body_unscrubbed(
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
            Err(broken) => {
                return Err(ApiError::Transport {
                    method: method_name,
                    path: path.to_owned(),
                    message: broken.to_string(),
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

/// A body read up to a limit: all of it, or the first `cap` bytes of a longer one.
pub(super) enum Capped {
    Whole(Bytes),
    Cut(Bytes),
}

/// A body that broke off while it was read: the transport's chain of causes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct BrokenBody(String);

/// Whether a request to `path` (under the API's base) fetches a stored file.
pub(super) fn is_download(path: &str) -> bool {
    path.contains("/stored/")
}

/// Reads at most `cap` bytes (decoded, for a gzip body: the client asks for gzip and decodes
/// nothing itself), so an endless, huge or highly compressed body never exhausts memory.
pub(super) async fn read_capped(response: Response, cap: usize) -> Result<Capped, BrokenBody> {
    use std::io::Write;
    let gzip = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let body = CappedBody {
        bytes: Vec::new(),
        cap,
        cut: false,
    };
    let mut sink = match gzip {
        true => Sink::Gzip(Box::new(flate2::write::GzDecoder::new(body))),
        false => Sink::Plain(body),
    };
    let undecodable =
        |e: std::io::Error| BrokenBody(format!("the gzip body cannot be decoded: {e}"));
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BrokenBody(error_chain(&e)))?;
        match &mut sink {
            Sink::Plain(body) => body.keep(&chunk),
            // Fed in steps, so that no step decodes far past the cap.
            Sink::Gzip(decoder) => {
                for step in chunk.chunks(4096) {
                    decoder.write_all(step).map_err(undecodable)?;
                    decoder.flush().map_err(undecodable)?;
                    if decoder.get_ref().cut {
                        break;
                    }
                }
            }
        }
        if sink.body().cut {
            break;
        }
    }
    let body = match sink {
        Sink::Plain(body) => body,
        // The rest is not read: what was decoded is the body's start.
        Sink::Gzip(mut decoder) if decoder.get_ref().cut => CappedBody {
            bytes: std::mem::take(&mut decoder.get_mut().bytes),
            cap,
            cut: true,
        },
        Sink::Gzip(decoder) => decoder.finish().map_err(undecodable)?,
    };
    Ok(match body.cut {
        true => Capped::Cut(Bytes::from(body.bytes)),
        false => Capped::Whole(Bytes::from(body.bytes)),
    })
}

/// Where [`read_capped`] puts a body: as it comes, or through gzip.
enum Sink {
    Plain(CappedBody),
    Gzip(Box<flate2::write::GzDecoder<CappedBody>>),
}

impl Sink {
    fn body(&self) -> &CappedBody {
        match self {
            Sink::Plain(body) => body,
            Sink::Gzip(decoder) => decoder.get_ref(),
        }
    }
}

/// The first `cap` bytes written to it; marks itself cut when more come.
struct CappedBody {
    bytes: Vec<u8>,
    cap: usize,
    cut: bool,
}

impl CappedBody {
    fn keep(&mut self, data: &[u8]) {
        let room = self.cap - self.bytes.len();
        if data.len() > room {
            self.cut = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

impl std::io::Write for CappedBody {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // Taken whole, so that a decoder writing into it never sees a short write.
        self.keep(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) async fn status_error(
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
    pub(super) fn note_contact(&self, result: &Result<Response, reqwest::Error>) {
        if result.is_ok() {
            self.reached
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A transport error, told apart by cause. Until the server has answered once, a host that
    /// does not resolve and a server that does not speak TLS mean a wrong URL: said with what
    /// to fix, and not retried.
    pub(super) fn transport_error(
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
pub(super) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    one_line(&cause.to_string(), 200)
}

/// Whether the TLS handshake failed on a message that is not TLS at all: what a client reads
/// when the port speaks plain HTTP ("received corrupt message of type InvalidContentType").
pub(super) fn speaks_no_tls(error: &(dyn std::error::Error + 'static)) -> bool {
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

pub(super) fn transport_error(
    method: &'static str,
    path: &str,
    error: &reqwest::Error,
) -> ApiError {
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
pub(super) fn rejects_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
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
