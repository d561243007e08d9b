//! Executing a plan: each report is created, polled, downloaded and checked, up to
//! `concurrency` at a time. One report's failure never stops the others.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{Client, CreateReport, PeriodDates, ReportParameters};
use crate::checks::{self, FileFacts};
use crate::download;
use crate::job::{Polling, SkuPolicy};
use crate::plan::{Plan, ReportRequest};
use crate::poll;
use crate::report::Format;
use crate::results::{FileResult, ReportResult, SkuStatus, Status};

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub out_dir: PathBuf,
    pub concurrency: usize,
    pub polling: Polling,
    /// Attempts per file when a transfer breaks.
    pub download_attempts: u32,
}

/// Runs every report of the plan; the results are in plan order.
pub async fn execute(client: Arc<Client>, plan: &Plan, config: &RunConfig) -> Vec<ReportResult> {
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let config = Arc::new(config.clone());
    let mut tasks = JoinSet::new();
    for (index, request) in plan.reports.iter().cloned().enumerate() {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (client, config) = (client.clone(), config.clone());
        tasks.spawn(async move {
            let _permit = permit;
            // A bug in one report must not lose the results of all the others.
            let outcome = std::panic::AssertUnwindSafe(run_report(&client, &request, &config))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    failed(
                        &request,
                        None,
                        "internal error while running this report (a bug; please report it)".into(),
                    )
                });
            (index, outcome)
        });
    }
    let mut results: Vec<Option<ReportResult>> = vec![None; plan.reports.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            results[index] = Some(result);
        }
    }
    results
        .into_iter()
        .zip(&plan.reports)
        .map(|(result, request)| {
            result.unwrap_or_else(|| failed(request, None, "the report was not run".into()))
        })
        .collect()
}

fn failed(request: &ReportRequest, report_id: Option<String>, error: String) -> ReportResult {
    ReportResult {
        tenant_id: request.tenant_id.clone(),
        tenant_name: request.tenant_name.clone(),
        period: request.period,
        kind: request.kind,
        level: request.level,
        report_id,
        status: Status::Failed,
        error: Some(error),
        files: Vec::new(),
        dr_compute_points: None,
        warnings: Vec::new(),
    }
}

/// The exact `POST /reports` body for one request.
pub fn create_body(request: &ReportRequest) -> CreateReport {
    CreateReport::once(ReportParameters {
        tenant_id: request.tenant_id.clone(),
        kind: request.kind,
        level: request.level,
        formats: request.formats.clone(),
        period: PeriodDates {
            start: request.period.start.to_string(),
            end: request.period.end.to_string(),
        },
        hide_zero_usage: request.hide_zero_usage,
        show_skus: request.show_skus,
    })
}

async fn run_report(client: &Client, request: &ReportRequest, config: &RunConfig) -> ReportResult {
    let label = format!("{} {}", request.tenant_name, request.period);
    let body = create_body(request);
    let created = match client.create_report(&body).await {
        Ok(created) => created,
        Err(error) => {
            tracing::error!("{label}: could not create the report: {error}");
            return failed(
                request,
                None,
                format!("could not create the report: {error}"),
            );
        }
    };
    let created_at = Instant::now();
    let report_id = created.id;
    tracing::info!("{label}: created report {report_id}");

    let ready = match poll::wait_until_ready(
        client,
        &report_id,
        &request.formats,
        &config.polling,
        created_at,
    )
    .await
    {
        Ok(ready) => ready,
        Err(error) => {
            tracing::error!("{label}: report {report_id} failed: {error}");
            return failed(request, Some(report_id), error.to_string());
        }
    };
    tracing::info!(
        "{label}: report {report_id} is ready after {:.1}s",
        created_at.elapsed().as_secs_f64()
    );

    let mut result = failed(request, Some(report_id.clone()), String::new());
    let mut errors = Vec::new();
    let mut dr_seconds: Option<(Format, f64)> = None;
    for file in ready {
        match fetch_and_check(client, request, &report_id, &file, config).await {
            Ok((file_result, facts)) => {
                tracing::info!(
                    "{label}: saved {} ({} bytes, sha256 {})",
                    file_result.path,
                    file_result.bytes,
                    &file_result.sha256[..12]
                );
                // JSON is the more precise source of DR usage; CSV is the fallback.
                if let Some(seconds) = facts.dr_compute_seconds
                    && dr_seconds.is_none_or(|(format, _)| format != Format::JsonV2)
                {
                    dr_seconds = Some((file.format, seconds));
                }
                result.files.push(file_result);
            }
            Err(error) => {
                tracing::error!("{label}: {error}");
                errors.push(error);
            }
        }
    }
    result.dr_compute_points = dr_seconds.map(|(_, seconds)| checks::compute_points(seconds));

    for file in &result.files {
        if file.sku_check.status != SkuStatus::Missing {
            continue;
        }
        let message = format!(
            "{} of {} rows in the {} file lack a SKU",
            file.sku_check.rows_without_sku, file.sku_check.rows, file.format
        );
        match request.sku_check {
            SkuPolicy::Required => errors.push(format!("{message} (checks.skus: required)")),
            SkuPolicy::Warn => {
                tracing::warn!("{label}: {message}");
                result.warnings.push(message);
            }
            SkuPolicy::Off => {}
        }
    }
    if errors.is_empty() {
        result.status = Status::Ok;
        result.error = None;
    } else {
        result.error = Some(errors.join("; "));
    }
    result
}

async fn fetch_and_check(
    client: &Client,
    request: &ReportRequest,
    report_id: &str,
    file: &poll::ReadyFile,
    config: &RunConfig,
) -> Result<(FileResult, FileFacts), String> {
    let relative = request.file_path(file.format);
    let dest = config.out_dir.join(&relative);
    let downloaded = download::fetch_to_file(
        client,
        report_id,
        &file.stored_id,
        file.size,
        &dest,
        config.download_attempts,
    )
    .await
    .map_err(|e| format!("downloading the {} file failed: {e}", file.format))?;
    let check_skus = request.sku_check != SkuPolicy::Off;
    let format = file.format;
    let facts =
        tokio::task::spawn_blocking(move || checks::inspect_file(&dest, format, check_skus))
            .await
            .map_err(|e| format!("checking the {format} file failed: {e}"))?
            .map_err(|e| e.to_string())?;
    Ok((
        FileResult {
            format: file.format,
            path: relative,
            stored_report_id: file.stored_id.clone(),
            bytes: downloaded.bytes,
            sha256: downloaded.sha256,
            sku_check: facts.sku_check,
        },
        facts,
    ))
}
