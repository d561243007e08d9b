//! Reports: created (validated as the vendor does), looked up, their stored files listed as they
//! become ready, deleted.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rand::Rng as _;
use serde_json::{Value, json};

use crate::CreatedReport;
use crate::content::{self, Format, ReportSpec, StoredBody};
use crate::validate::parse_create;

use super::*;

pub(super) fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

pub(super) fn today_utc() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
}

pub(super) async fn create_report(
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
    if !sc.create_answer_delay.is_zero() {
        tokio::time::sleep(sc.create_answer_delay).await;
    }
    Ok(axum::Json(resource).into_response())
}

pub(super) fn report_not_found() -> ApiError {
    ApiError::not_found("Report not found")
}

pub(super) async fn get_report(
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

pub(super) async fn stored_list(
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

pub(super) async fn delete_report(
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
