//! Waiting for a report's stored files: `GET /reports/{id}/stored` until every format is saved,
//! one has failed, or the report's deadline passes.

use std::time::{Duration, Instant};

use crate::api::{ApiError, Client, StoredItem};
use crate::job::Polling;
use crate::report::Format;
use crate::retry::Backoff;

/// A stored file ready for download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyFile {
    pub format: Format,
    pub stored_id: String,
    pub size: Option<u64>,
}

/// What one answer of the stored list means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evaluation {
    /// Every requested format has a saved file.
    Ready(Vec<ReadyFile>),
    /// A format's newest file failed and none is saved; the server's word for it.
    Failed(String),
    /// Still generating (or not listed yet); `missing` names the formats not saved yet.
    Pending { missing: Vec<Format> },
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    Failed(String),
    #[error(
        "not ready after {}s (polling.timeout); still waiting for {}{}",
        waited.as_secs(),
        missing.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
        last_error.as_ref().map(|e| format!("; the last poll failed: {e}")).unwrap_or_default()
    )]
    TimedOut {
        waited: Duration,
        missing: Vec<Format>,
        /// Why the last poll failed, when it did: the likelier reason than slow generation.
        last_error: Option<ApiError>,
    },
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// Statuses that mean the file will never be saved. Anything else that is not `saved` is
/// pending, because the API documents no in-progress status.
fn is_failure(status: &str) -> bool {
    let status = status.to_ascii_lowercase();
    ["fail", "error", "cancel", "abort", "reject"]
        .iter()
        .any(|word| status.contains(word))
}

/// Picks, per requested format, the newest saved file.
pub fn evaluate(items: &[StoredItem], formats: &[Format]) -> Evaluation {
    let mut ready = Vec::with_capacity(formats.len());
    let mut missing = Vec::new();
    for &format in formats {
        let of_format: Vec<&StoredItem> = items
            .iter()
            .filter(|item| item.report_format.as_deref() == Some(format.as_str()))
            .collect();
        let saved = newest(of_format.iter().copied().filter(|item| {
            item.status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("saved"))
                && item.id.as_deref().is_some_and(|id| !id.is_empty())
        }));
        if let Some(item) = saved {
            ready.push(ReadyFile {
                format,
                stored_id: item.id.clone().unwrap_or_default(),
                size: item.size,
            });
            continue;
        }
        if let Some(latest) = newest(of_format.iter().copied())
            && let Some(status) = latest.status.as_deref().filter(|s| is_failure(s))
        {
            return Evaluation::Failed(format!(
                "the server reports the {format} file as `{}`",
                crate::api::one_line(status, 60)
            ));
        }
        missing.push(format);
    }
    if missing.is_empty() {
        Evaluation::Ready(ready)
    } else {
        Evaluation::Pending { missing }
    }
}

/// The newest of some stored items. `created_at` is RFC 3339 in one zone, so text order is time
/// order; without it, list order is all there is, and later entries count as newer.
fn newest<'a>(items: impl Iterator<Item = &'a StoredItem>) -> Option<&'a StoredItem> {
    items
        .enumerate()
        .max_by(|(ia, a), (ib, b)| {
            (a.created_at.as_deref(), ia).cmp(&(b.created_at.as_deref(), ib))
        })
        .map(|(_, item)| item)
}

/// Polls until the report's files are ready. `created` is when the report was created; the
/// deadline is `created + polling.timeout`.
pub async fn wait_until_ready(
    client: &Client,
    report_id: &str,
    formats: &[Format],
    polling: &Polling,
    created: Instant,
) -> Result<Vec<ReadyFile>, PollError> {
    let deadline = created + polling.timeout;
    let mut backoff = Backoff::new(polling.initial_interval, polling.max_interval);
    let mut wait = polling.initial_interval;
    let mut missing = formats.to_vec();
    let mut last_error = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(PollError::TimedOut {
                waited: created.elapsed(),
                missing,
                last_error,
            });
        }
        tokio::time::sleep(wait.min(remaining)).await;
        wait = backoff.next_delay();
        match client.stored_reports(report_id, Some(deadline)).await {
            Ok(items) => {
                last_error = None;
                match evaluate(&items, formats) {
                    Evaluation::Ready(files) => return Ok(files),
                    Evaluation::Failed(reason) => return Err(PollError::Failed(reason)),
                    Evaluation::Pending { missing: still } => missing = still,
                }
            }
            // Throttling and server trouble outlasting the client's own retries: keep polling
            // until the deadline, at the pace the server asks for.
            Err(error) if error.is_transient() => {
                tracing::warn!(report_id, %error, "polling failed; will try again");
                if let Some(after) = error.retry_after() {
                    wait = wait.max(after);
                }
                last_error = Some(error);
            }
            Err(error) => return Err(PollError::Api(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, format: &str, status: &str, created: &str) -> StoredItem {
        StoredItem {
            id: Some(id.into()),
            report_format: Some(format.into()),
            status: Some(status.into()),
            size: Some(10),
            created_at: Some(created.into()),
        }
    }

    const BOTH: [Format; 2] = [Format::CsvV2, Format::JsonV2];

    #[test]
    fn empty_list_and_unknown_statuses_are_pending() {
        assert_eq!(
            evaluate(&[], &BOTH),
            Evaluation::Pending {
                missing: BOTH.to_vec()
            }
        );
        let items = [
            item("a", "csv_v2_0", "processing", "1"),
            item("b", "json_v2_0", "saved", "1"),
        ];
        assert_eq!(
            evaluate(&items, &BOTH),
            Evaluation::Pending {
                missing: vec![Format::CsvV2]
            }
        );
    }

    #[test]
    fn newest_saved_file_of_each_format_is_taken() {
        let items = [
            item("old", "csv_v2_0", "saved", "2026-11-01T06:00:00+00:00"),
            item("new", "csv_v2_0", "saved", "2026-11-01T07:00:00+00:00"),
            item("j", "json_v2_0", "saved", "2026-11-01T06:00:00+00:00"),
            item("x", "html", "saved", "2026-11-01T06:00:00+00:00"),
        ];
        let Evaluation::Ready(files) = evaluate(&items, &BOTH) else {
            panic!()
        };
        assert_eq!(files[0].stored_id, "new");
        assert_eq!(files[1].stored_id, "j");
    }

    #[test]
    fn a_failed_format_fails_the_report_with_the_servers_word() {
        let items = [
            item("a", "csv_v2_0", "Failed", "1"),
            item("b", "json_v2_0", "saved", "1"),
        ];
        let Evaluation::Failed(reason) = evaluate(&items, &BOTH) else {
            panic!()
        };
        assert!(
            reason.contains("`Failed`") && reason.contains("csv_v2_0"),
            "{reason}"
        );
    }
}
