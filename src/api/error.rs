use std::time::Duration;

/// Where the data-center URL comes from and how to find the right one: the end of every message
/// about a base URL that cannot be right. The API client's page in the management console shows
/// it, next to the client ID and secret (vendor docs, "Authenticating to the platform").
pub(crate) const BASE_URL_HINT: &str = "check ACRONIS_BASE_URL (or --base-url, or api.base_url in the job file): it must be the data-center URL shown with the API client in the management console (Settings → API clients), e.g. https://eu2-cloud.acronis.com";

/// A data-center URL that cannot be used, said with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error(
        "invalid base URL `{url}`: it has no scheme; write https://{url} (http:// only for a loopback sandbox); {BASE_URL_HINT}"
    )]
    NoScheme { url: String },
    #[error("invalid base URL `{url}`: {reason}; {BASE_URL_HINT}")]
    Unparsable { url: String, reason: String },
    #[error(
        "invalid base URL `{url}`: it must not contain credentials; use ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET"
    )]
    Credentials { url: String },
    #[error(
        "invalid base URL `{url}`: plain http:// is only allowed for loopback addresses; use https://"
    )]
    PlainHttp { url: String },
    #[error(
        "invalid base URL `{url}`: the scheme {scheme}:// is not supported; use an https:// URL such as https://eu2-cloud.acronis.com"
    )]
    Scheme { url: String, scheme: String },
    #[error("invalid base URL `{url}`: it must not have a query or fragment; {BASE_URL_HINT}")]
    QueryOrFragment { url: String },
    #[error(
        "invalid base URL `{url}`: the path `{path}` does not belong there (a page of the console, not the API?): give the data-center URL alone, or with /api/2; {BASE_URL_HINT}"
    )]
    Path { url: String, path: String },
}

/// A failed API call, described in one line a user can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    BaseUrl(#[from] BaseUrlError),
    #[error(
        "authentication refused (HTTP {status}): {reason}; check ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET (or ACRONIS_TOKEN) and that the API client is enabled"
    )]
    AuthRefused { status: u16, reason: String },
    #[error("{method} {path} failed with HTTP {status}: {reason}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
    },
    #[error("{method} {path}: {message}")]
    Transport {
        method: &'static str,
        path: String,
        message: String,
    },
    /// The server's TLS certificate failed verification: retrying cannot help.
    #[error(
        "{method} {path}: the server's TLS certificate is not trusted ({message}); if a proxy inspects TLS, point SSL_CERT_FILE at its CA certificate"
    )]
    UntrustedCertificate {
        method: &'static str,
        path: String,
        message: String,
    },
    /// The API's host name does not resolve: a wrong data-center URL, most likely. Only said
    /// while the client has never reached the host (later it is a passing resolver failure).
    #[error("{method} {path}: the host {host} does not resolve ({message}); {BASE_URL_HINT}")]
    HostNotFound {
        method: &'static str,
        path: String,
        host: String,
        message: String,
    },
    /// An https:// URL whose server answered without TLS, e.g. a plain-HTTP port.
    #[error(
        "{method} {path}: the server at {origin} does not speak TLS, it answers like a plain-HTTP server ({message}); {}; {BASE_URL_HINT}",
        not_tls_fix(origin)
    )]
    NotTls {
        method: &'static str,
        path: String,
        /// `https://host:port`.
        origin: String,
        message: String,
    },
    #[error("{method} {path}: unexpected response: {detail}")]
    InvalidResponse {
        method: &'static str,
        path: String,
        detail: String,
    },
}

/// What to do about an `https://` origin that answers in plain HTTP: on loopback it is a
/// plain-HTTP server such as the sandbox; elsewhere the URL names the wrong port.
fn not_tls_fix(origin: &str) -> String {
    let loopback = url::Url::parse(origin).is_ok_and(|url| super::is_loopback(&url));
    match origin.strip_prefix("https://") {
        Some(rest) if loopback => {
            format!("for a plain-HTTP server on loopback (the sandbox) write http://{rest}")
        }
        _ => "use the data center's https:// address without a port".to_owned(),
    }
}

impl ApiError {
    /// Whether the same request may succeed later: throttling, server trouble, network trouble.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether this is the server's refusal to create a report before the usage history it
    /// needs is ready, and which of its two answers (vendor's API definition).
    pub(crate) fn usage_history_not_ready(&self) -> Option<UsageHistory> {
        let Self::Status { status, reason, .. } = self else {
            return None;
        };
        if !reason
            .to_ascii_lowercase()
            .contains("usage history is not ready")
        {
            return None;
        }
        match status {
            400 => Some(UsageHistory::NotYetDue),
            500..=599 => Some(UsageHistory::Overdue),
            _ => None,
        }
    }
}

/// `POST /reports` before the usage history is ready: "Usage history is not ready and shouldn't
/// be ready yet (from 1 to 6 am)" (400) or "… but should be available already (after 6 am)"
/// (500). Either way the server created nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UsageHistory {
    /// 400: the nightly preparation runs until 06:00 UTC; asking again before then is pointless.
    NotYetDue,
    /// 500: late; it may be ready any moment, so asking again is worth it.
    Overdue,
}

/// Turns an error body into one line. Understands the documented envelope
/// `{"error": {"code", "message", "domain", ...}}` (code a number or a string), the OAuth shape
/// `{"error": "...", "error_description": "..."}`, and falls back to a short excerpt of the text.
#[cfg(test)]
pub(crate) fn describe_error_body(content_type: Option<&str>, body: &[u8]) -> String {
    describe_error_body_scrubbed(content_type, body, &|text| text.to_owned())
}

/// [`describe_error_body`], with `scrub` applied to every text taken from the body *before* it
/// is cut to length, so that a credential echoed by the server is removed whole rather than
/// leaking its start when the cut falls inside it.
pub(crate) fn describe_error_body_scrubbed(
    content_type: Option<&str>,
    body: &[u8],
    scrub: &dyn Fn(&str) -> String,
) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(reason) = describe_json_error(&value, scrub)
    {
        return reason;
    }
    let text = scrub(&String::from_utf8_lossy(body));
    let trimmed = text.trim_start();
    let is_html = content_type.is_some_and(|ct| ct.contains("html"))
        || trimmed.starts_with("<!")
        || trimmed.to_ascii_lowercase().starts_with("<html");
    if is_html {
        return match html_title(trimmed, scrub) {
            Some(title) => {
                format!("the server answered with an HTML page ({title}) instead of JSON")
            }
            None => "the server answered with an HTML page instead of JSON".to_owned(),
        };
    }
    let line = one_line(&text, 200);
    if line.is_empty() {
        "no error details in the response".to_owned()
    } else {
        line
    }
}

fn describe_json_error(
    value: &serde_json::Value,
    scrub: &dyn Fn(&str) -> String,
) -> Option<String> {
    let error = value.get("error")?;
    if let Some(kind) = error.as_str() {
        let kind = one_line(&scrub(kind), 200);
        let description = value.get("error_description").and_then(|d| d.as_str());
        return Some(match description {
            Some(d) => format!("{kind}: {}", one_line(&scrub(d), 200)),
            None => kind,
        });
    }
    let message = error
        .get("message")
        .and_then(|m| m.as_str())
        .map(|m| one_line(&scrub(m), 200))
        .unwrap_or_else(|| "no message".to_owned());
    let code = match error.get("code") {
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) => Some(one_line(&scrub(s), 60)),
        _ => None,
    };
    let domain = error.get("domain").and_then(|d| d.as_str());
    Some(match (code, domain) {
        (Some(code), Some(domain)) => {
            format!("{message} (code {code}, {})", one_line(&scrub(domain), 60))
        }
        (Some(code), None) => format!("{message} (code {code})"),
        (None, _) => message,
    })
}

fn html_title(html: &str, scrub: &dyn Fn(&str) -> String) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title = one_line(&scrub(html.get(start..end)?), 80);
    (!title.is_empty()).then_some(title)
}

/// Collapses whitespace and control characters and cuts to `max` characters.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > max {
        out = out.chars().take(max).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_envelope_with_number_or_string_code() {
        let body = br#"{"error":{"code":1005,"message":"Tenant not found","details":{},"domain":"PlatformAccountServer"}}"#;
        assert_eq!(
            describe_error_body(Some("application/json"), body),
            "Tenant not found (code 1005, PlatformAccountServer)"
        );
        let body = br#"{"error":{"code":"InvalidReportParameters","message":"bad\nperiod"}}"#;
        assert_eq!(
            describe_error_body(None, body),
            "bad period (code InvalidReportParameters)"
        );
    }

    #[test]
    fn usage_history_answers_are_recognised_by_status_and_message() {
        let error = |status: u16, message: &str| ApiError::Status {
            method: "POST",
            path: "reports".into(),
            status,
            reason: describe_error_body(
                Some("application/json"),
                serde_json::json!({"error": {"code": status, "message": message}})
                    .to_string()
                    .as_bytes(),
            ),
            retry_after: None,
        };
        let early = "Usage history is not ready and shouldn't be ready yet (from 1 to 6 am)";
        let late = "Usage history is not ready but should be available already (after 6 am)";
        assert_eq!(
            error(400, early).usage_history_not_ready(),
            Some(UsageHistory::NotYetDue)
        );
        assert_eq!(
            error(500, late).usage_history_not_ready(),
            Some(UsageHistory::Overdue)
        );
        assert_eq!(error(500, "Internal error").usage_history_not_ready(), None);
        assert_eq!(error(404, early).usage_history_not_ready(), None);
    }

    #[test]
    fn oauth_html_and_text_bodies() {
        let body =
            br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#;
        assert_eq!(
            describe_error_body(None, body),
            "invalid_client: Client authentication failed"
        );
        let html = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>";
        assert_eq!(
            describe_error_body(Some("text/html"), html),
            "the server answered with an HTML page (502 Bad Gateway) instead of JSON"
        );
        assert_eq!(
            describe_error_body(None, b"  upstream\n timeout "),
            "upstream timeout"
        );
        assert_eq!(
            describe_error_body(None, b""),
            "no error details in the response"
        );
    }
}
