//! The bearer token: fetched with the client's credentials, renewed before it expires.

use std::time::{Duration, SystemTime};

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

use crate::retry::Backoff;
use crate::secret::Secret;

use super::*;

impl Client {
    /// The current bearer token, fetching a new one when there is none, it is about to expire,
    /// or `force` says the server refused it.
    pub(super) async fn bearer(&self, force: bool) -> Result<Secret, ApiError> {
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

    pub(super) async fn fetch_token(
        &self,
        id: &str,
        secret: &Secret,
    ) -> Result<CachedToken, ApiError> {
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
}

/// A token is used for at least this long, whatever the server says its lifetime is: an
/// `expires_on` already past would otherwise mean a token request before every call.
pub(super) const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// And at most this long: the documented lifetime is 2 hours; an absurd one (`1e308`) is a
/// broken server, and would overflow the clock.
pub(super) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// When to renew a token, from the token response's `expires_on` (epoch seconds) or
/// `expires_in` (seconds), and whether the lifetime they gave had to be clamped.
pub(super) fn renewal_time(value: &serde_json::Value, now: SystemTime) -> (SystemTime, bool) {
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
