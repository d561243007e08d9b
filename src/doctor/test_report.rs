//! The optional test report: created, polled, downloaded into a temporary folder, its SKU column
//! checked, and deleted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{ApiError, Client, CreateReport, PeriodDates, ReportParameters, UsageHistory};
use crate::checks::Inspection;
use crate::job::Polling;
use crate::report::{BillingRule, Format, ReportKind, ReportLevel};
use crate::results::{CheckStatus, SkuStatus};

use super::*;

/// Creates, waits for, downloads, checks and deletes one small report for `tenant_id`.
pub(super) async fn test_report(
    client: &Client,
    tenant_id: &str,
    name: &str,
    today: jiff::civil::Date,
    options: &Options,
    list: &mut Checklist,
) {
    // Yesterday: the last whole day (usage data refreshes daily at UTC midnight).
    let day = today.yesterday().unwrap_or(today).to_string();
    let body = CreateReport::once(ReportParameters {
        tenant_id: tenant_id.to_owned(),
        kind: ReportKind::UsageCurrent,
        level: ReportLevel::Itself,
        formats: vec![Format::CsvV2],
        period: PeriodDates {
            start: day.clone(),
            end: day,
        },
        hide_zero_usage: false,
        show_skus: true,
    });
    let rest = [
        (CheckId::SkuColumn, T_SKU),
        (CheckId::TestReportDeleted, T_DELETED),
    ];
    let created_at = Instant::now();
    let created = match client.create_report(&body).await {
        Ok(created) => created,
        Err(error) => {
            let hint = match (&error, error.usage_history_not_ready()) {
                (_, Some(UsageHistory::NotYetDue)) => {
                    "the server prepares the usage history between 01:00 and 06:00 UTC; try again after 06:00 UTC".to_owned()
                }
                (_, Some(UsageHistory::Overdue)) => "the usage history is late; try again later".to_owned(),
                (ApiError::Status { status: 403, .. }, _) => {
                    "the API client may not create reports for this tenant; check its role in the management console".to_owned()
                }
                (ApiError::Status { status: 404, .. }, _) => invisible_hint(None),
                _ => "try again; if it persists, ask Acronis support".to_owned(),
            };
            list.fail(
                CheckId::TestReport,
                T_TEST,
                format!("creating a usage_current report for {name} failed: {error}"),
                hint,
            );
            list.skip_all(&rest, "needs the test report");
            return;
        }
    };
    let outcome = fetch_and_check(client, &created.id, options, created_at).await;
    match outcome {
        Ok((bytes, facts)) => {
            list.pass(
                CheckId::TestReport,
                T_TEST,
                format!(
                    "a usage_current report for {name} was created, saved after {:.1}s and downloaded ({bytes} bytes, {} row(s))",
                    created_at.elapsed().as_secs_f64(),
                    facts.content_check.rows
                ),
            )
            .tenant_id = Some(tenant_id.to_owned());
            sku_verdict(&facts, list);
        }
        Err((detail, hint)) => {
            list.fail(CheckId::TestReport, T_TEST, detail, hint)
                .tenant_id = Some(tenant_id.to_owned());
            list.skip(CheckId::SkuColumn, T_SKU, "needs the test report's file");
        }
    }
    // Always deleted, whatever happened to it.
    let version = created.version.unwrap_or(1);
    match client.delete_report(&created.id, version).await {
        Ok(()) => {
            list.pass(
                CheckId::TestReportDeleted,
                T_DELETED,
                format!(
                    "report {} deleted (DELETE /api/2/reports/{{id}}?version={version})",
                    created.id
                ),
            );
        }
        Err(error) => {
            list.fail(
                CheckId::TestReportDeleted,
                T_DELETED,
                format!("could not delete report {}: {error}", created.id),
                format!(
                    "delete it in the management console, or with DELETE /api/2/reports/{}?version={version}",
                    created.id
                ),
            );
        }
    }
}

/// Waits for the test report's file and downloads it into a temporary folder (removed again),
/// checking it on the way. Returns its size and what the check found, or (detail, hint).
pub(super) async fn fetch_and_check(
    client: &Client,
    report_id: &str,
    options: &Options,
    created_at: Instant,
) -> Result<(u64, crate::checks::FileFacts), (String, String)> {
    let polling = Polling {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(5),
        timeout: options.report_timeout,
    };
    let model = crate::poll::GenerationModel::new();
    let waiting = crate::poll::Waiting {
        report_id,
        formats: &[Format::CsvV2],
        created: created_at,
        created_here: true,
        expected: None,
    };
    let files = crate::poll::wait_until_ready(client, &waiting, &polling, &model)
        .await
        .map(|waited| waited.files)
        .map_err(|e| {
            (
                format!("the test report {report_id} did not become ready: {e}"),
                "try again later; if it persists, ask Acronis support".to_owned(),
            )
        })?;
    let Some(file) = files.into_iter().next() else {
        return Err((
            format!("the test report {report_id} lists no csv_v2_0 file"),
            "try again later; if it persists, ask Acronis support".to_owned(),
        ));
    };
    let folder = tempfile::tempdir().map_err(|e| {
        (
            format!("cannot make a temporary folder for the test report: {e}"),
            "check TMPDIR".to_owned(),
        )
    })?;
    let dest = folder.path().join("test-report.csv");
    let inspection = Inspection {
        format: Format::CsvV2,
        check_skus: true,
        rule: Arc::new(BillingRule::default()),
    };
    let downloaded = crate::download::fetch_to_file(
        client,
        report_id,
        &file.stored_id,
        file.size,
        &dest,
        inspection,
        crate::download::Policy::default(),
    )
    .await
    .map_err(|e| {
        (
            format!("downloading the test report's file failed: {e}"),
            "check HTTPS_PROXY/NO_PROXY and try again".to_owned(),
        )
    })?;
    Ok((downloaded.bytes, downloaded.inspected))
}

/// The SKU line: every row of the test report carries a SKU.
pub(super) fn sku_verdict(facts: &crate::checks::FileFacts, list: &mut Checklist) {
    let content = &facts.content_check;
    let sku = &facts.sku_check;
    if content.status == CheckStatus::Failed {
        list.fail(
            CheckId::SkuColumn,
            T_SKU,
            format!(
                "the file failed its content check: {}",
                content.problem.as_deref().unwrap_or("no reason given")
            ),
            "the server's file layout is not one we can bill from; see the README's \"What we assume about report files\"",
        );
        return;
    }
    match (sku.status, sku.column.as_deref()) {
        (_, _) if sku.rows == 0 => {
            list.pass(
                CheckId::SkuColumn,
                T_SKU,
                "the file reads, but has no usage rows to carry a SKU (the tenant used nothing yesterday): SKU access is not proven",
            );
        }
        (SkuStatus::Ok, column) => {
            list.pass(
                CheckId::SkuColumn,
                T_SKU,
                format!(
                    "every one of {} row(s) has a SKU (column `{}`)",
                    sku.rows,
                    column.unwrap_or("sku")
                ),
            );
        }
        (_, None) => {
            list.fail(
                CheckId::SkuColumn,
                T_SKU,
                format!("the file has no SKU column ({} row(s))", sku.rows),
                "the partner may lack SKU access: ask Acronis, or set checks.skus: warn in the job file",
            );
        }
        (_, Some(column)) => {
            list.fail(
                CheckId::SkuColumn,
                T_SKU,
                format!(
                    "{} of {} row(s) lack a SKU (column `{column}`)",
                    sku.rows_without_sku, sku.rows
                ),
                "the partner may lack SKU access: ask Acronis, or set checks.skus: warn in the job file",
            );
        }
    }
}
