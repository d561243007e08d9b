//! Who may call: the token endpoint (client credentials, Basic or form), bearer tokens, and the
//! careless echoes of refused credentials some servers make.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use rand::Rng as _;
use serde_json::json;

use super::*;

/// A careless server or proxy: an error whose message repeats the request's `Authorization`
/// header, whole and as its bare credential, in the envelope and past a 200-character cut.
pub(super) fn echo_authorization(headers: &HeaderMap, status: Option<u16>) -> Response {
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

pub(super) fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
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

pub(super) fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub(super) fn form_decode(s: &str) -> Option<String> {
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

pub(super) fn parse_form(body: &[u8]) -> HashMap<String, String> {
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
pub(super) fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
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

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
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

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
