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

/// What this run has learnt of how long the server takes to generate a report, so that polls
/// aim at the moment a report will be ready instead of following a blind geometric series.
///
/// Each finished report tells that generation took longer than its last "pending" poll. The
/// model keeps these lower bounds for the most recent reports; a new report's first poll is
/// aimed at their low quantile, and later polls come at a small fraction (the step) of the
/// typical generation time. For steady generation times that is two polls per report, and the
/// lag between "saved" and "download started" is at most one step.
#[derive(Debug, Default)]
pub struct GenerationModel {
    samples: std::sync::Mutex<std::collections::VecDeque<f64>>,
    /// Wakes the reports that are waiting whenever something new is learnt.
    learnt: tokio::sync::Notify,
}

/// Where a report's polls go, from what the model knows (times since the report's creation).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Aim {
    /// The first poll.
    first: Duration,
    /// The spacing of the polls after it.
    step: Duration,
    /// Past this, the report is slower than any seen: fall back to backoff.
    until: Duration,
}

impl GenerationModel {
    /// Recent reports only: what the server does now matters, and outliers age out quickly.
    const WINDOW: usize = 32;
    /// The lag budget: polls every this fraction of the typical generation time.
    const STEP_FRACTION: f64 = 0.08;
    const MIN_STEP: Duration = Duration::from_millis(50);

    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a report was still pending at `pending` (if ever polled pending) and found
    /// saved at `ready`, both measured from its creation.
    pub fn record(&self, pending: Option<Duration>, ready: Duration) {
        // The last pending poll is a lower bound of the generation time, one step at most below
        // it when the polls were aimed well. Aiming the next reports' first poll at these lower
        // bounds puts it just before "saved", and the poll one step later just after.
        let ready_secs = ready.as_secs_f64();
        let estimate = match pending {
            // A wide gap (polls still backing off, before the model knew anything) bounds the
            // time only loosely: its middle is the better guess.
            Some(pending) if ready_secs - pending.as_secs_f64() > 0.2 * ready_secs => {
                (pending.as_secs_f64() + ready_secs) / 2.0
            }
            Some(pending) => pending.as_secs_f64(),
            // Saved at the very first poll: the time was at most this, and nothing says how much
            // less. A guess below it makes the next reports probe earlier and learn a real bound:
            // two steps below when the model is aiming, a quarter below when it was blind.
            None => match self.aim() {
                Some(aim) => (ready_secs - 2.0 * aim.step.as_secs_f64()).max(0.0),
                None => ready_secs * 0.75,
            },
        };
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() == Self::WINDOW {
                samples.pop_front();
            }
            samples.push_back(estimate);
        }
        self.learnt.notify_waiters();
    }

    fn aim(&self) -> Option<Aim> {
        let mut samples: Vec<f64> = self.samples.lock().ok()?.iter().copied().collect();
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let quantile = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let step = Duration::from_secs_f64(quantile(0.5) * Self::STEP_FRACTION).max(Self::MIN_STEP);
        let first = Duration::from_secs_f64(quantile(0.1)).max(Self::MIN_STEP);
        let until = Duration::from_secs_f64(quantile(1.0) * 1.2) + step;
        Some(Aim { first, step, until })
    }
}

/// Polls until the report's files are ready. `created` is when the report was created; the
/// deadline is `created + polling.timeout`. `learn` says whether `created` is the true creation
/// time (not a report taken over from an earlier run), so its timing may teach `model`.
pub async fn wait_until_ready(
    client: &Client,
    report_id: &str,
    formats: &[Format],
    polling: &Polling,
    created: Instant,
    model: &GenerationModel,
    learn: bool,
) -> Result<Vec<ReadyFile>, PollError> {
    let deadline = created + polling.timeout;
    let mut backoff = Backoff::new(polling.initial_interval, polling.max_interval);
    let mut next_poll = match model.aim() {
        Some(aim) => aim.first,
        // Blind, spread the first polls over the second half of the interval: reports created
        // together then sample different moments, and the first one found saved teaches the
        // others (which are woken to re-aim).
        None => polling
            .initial_interval
            .mul_f64(rand::random_range(0.5..=1.0)),
    };
    // A `Retry-After` from the server is a floor no re-aiming may undercut.
    let mut not_before = Duration::ZERO;
    let mut missing = formats.to_vec();
    let mut last_error = None;
    let mut last_pending: Option<Duration> = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(PollError::TimedOut {
                waited: created.elapsed(),
                missing,
                last_error,
            });
        }
        loop {
            let wait = next_poll.saturating_sub(created.elapsed());
            let remaining = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() || remaining.is_zero() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait.min(remaining)) => break,
                _ = model.learnt.notified() => {
                    // Another report was just found saved: come forward to the new aim, but
                    // never closer than one step after this report's last poll.
                    if let Some(aim) = model.aim() {
                        let due = aim.first.max(last_pending.map_or(Duration::ZERO, |p| p + aim.step));
                        next_poll = next_poll.min(due).max(not_before);
                    }
                }
            }
        }
        let polled_at = created.elapsed();
        let mut retry_after = None;
        match client.stored_reports(report_id, Some(deadline)).await {
            Ok(items) => {
                last_error = None;
                match evaluate(&items, formats) {
                    Evaluation::Ready(files) => {
                        if learn {
                            model.record(last_pending, polled_at);
                        }
                        return Ok(files);
                    }
                    Evaluation::Failed(reason) => return Err(PollError::Failed(reason)),
                    Evaluation::Pending { missing: still } => {
                        missing = still;
                        last_pending = Some(polled_at);
                    }
                }
            }
            // Throttling and server trouble outlasting the client's own retries: keep polling
            // until the deadline, at the pace the server asks for.
            Err(error) if error.is_transient() => {
                tracing::warn!(report_id, %error, "polling failed; will try again");
                retry_after = error.retry_after();
                last_error = Some(error);
            }
            Err(error) => return Err(PollError::Api(error)),
        }
        let now = created.elapsed();
        let gap = match model.aim() {
            Some(aim) if now + aim.step < aim.first => aim.first - now,
            Some(aim) if now < aim.until => aim.step,
            _ => backoff.next_delay(),
        };
        let gap = gap
            .min(polling.max_interval)
            .max(retry_after.unwrap_or_default());
        next_poll = now + gap;
        not_before = now + retry_after.unwrap_or_default();
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

    #[test]
    fn the_model_aims_just_before_the_typical_generation_time() {
        let model = GenerationModel::new();
        assert_eq!(model.aim(), None);
        for _ in 0..10 {
            model.record(
                Some(Duration::from_millis(19_000)),
                Duration::from_millis(21_000),
            );
        }
        let aim = model.aim().unwrap();
        assert_eq!(aim.step, Duration::from_millis(1_520));
        assert_eq!(aim.first, Duration::from_millis(19_000));
        assert!(aim.until > Duration::from_secs(24));
    }

    #[test]
    fn a_report_saved_at_its_first_poll_pulls_the_aim_earlier() {
        let model = GenerationModel::new();
        model.record(None, Duration::from_secs(10));
        let aim = model.aim().unwrap();
        assert!(aim.first <= Duration::from_secs(8), "{aim:?}");
    }
}
