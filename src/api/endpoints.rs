//! The API's endpoints the tool calls: reports, their stored files, tenants, the client.

use std::time::Instant;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Response};

use super::*;

impl Client {
    pub(crate) async fn create_report(
        &self,
        body: &CreateReport,
    ) -> Result<CreatedReport, ApiError> {
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
    pub(crate) async fn stored_reports(
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
    pub(crate) async fn download(
        &self,
        report_id: &str,
        stored_id: &str,
    ) -> Result<Response, ApiError> {
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
    pub(crate) async fn tenant_children(
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
    pub(crate) async fn client_info(&self, client_id: &str) -> Result<ClientInfo, ApiError> {
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
    pub(crate) async fn check_credentials(&self) -> Result<(), ApiError> {
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
    pub(crate) async fn probe(&self) -> Result<ProbeAnswer, ProbeFailure> {
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
            Err(broken) => {
                return Err(ProbeFailure {
                    error: self.scrubbed(ApiError::Transport {
                        method: "GET",
                        path: path.to_owned(),
                        message: broken.to_string(),
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
    pub(super) async fn get_items(
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
    pub(crate) async fn delete_report(
        &self,
        report_id: &str,
        version: u64,
    ) -> Result<(), ApiError> {
        let path = format!("reports/{}?version={version}", segment(report_id));
        self.send(Method::DELETE, &path, Replay::Safe, None, |r| r)
            .await
            .map(drop)
    }
}

/// The longest server id we take: real ids are UUIDs (36 characters). A longer one is kept
/// nowhere, since it would be repeated in every log line, the journal and the manifest.
pub(crate) const MAX_ID_CHARS: usize = 200;

pub(super) fn check_id_length(
    method: Method,
    path: &str,
    whose: &str,
    id: &str,
) -> Result<(), ApiError> {
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

pub(super) fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "HTTP",
    }
}

pub(super) fn invalid(method: Method, path: &str, detail: &str) -> ApiError {
    ApiError::InvalidResponse {
        method: method_name(&method),
        path: path.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Percent-encodes an id taken from a server response before it goes into a URL path.
pub(super) fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

pub(super) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
