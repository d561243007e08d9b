//! Figures read off the sandbox's timeline of each report: the ideal schedule, polling lag,
//! waves, and where a run's time went beyond the reports' own.

use super::*;

/// Greedy list scheduling of `durations` (creation order) on `slots` slots: the makespan a
/// client with zero polling lag would reach with the same generation times.
pub(super) fn greedy_makespan(durations: &[f64], slots: usize) -> f64 {
    let mut heap: BinaryHeap<Reverse<u64>> = (0..slots.max(1)).map(|_| Reverse(0)).collect();
    let mut end = 0;
    for d in durations {
        let Reverse(free) = heap.pop().expect("a slot");
        let done = free + (d * 1e6) as u64;
        end = end.max(done);
        heap.push(Reverse(done));
    }
    end as f64 / 1e6
}

pub(super) fn lags_pct(reports: &[CreatedReport], generation: Duration) -> Vec<f64> {
    reports
        .iter()
        .filter_map(|r| {
            let first = r.first_download_us?;
            let lag = first.saturating_sub(r.ready_us) as f64 / 1e6;
            Some(100.0 * lag / generation.as_secs_f64())
        })
        .collect()
}

/// Reports in creation order, split into the first wave (which runs blind) and the later ones.
pub(super) fn waves(
    reports: &[CreatedReport],
    concurrency: usize,
) -> (Vec<CreatedReport>, Vec<CreatedReport>) {
    let mut by_creation = reports.to_vec();
    by_creation.sort_by_key(|r| r.created_us);
    let later = by_creation.split_off(concurrency.min(by_creation.len()));
    (by_creation, later)
}

/// Polls per report and lag of a wave.
pub(super) fn wave(reports: &[CreatedReport], generation: Duration) -> String {
    let polls = reports
        .iter()
        .map(|r| r.stored_list_requests as f64)
        .sum::<f64>()
        / reports.len().max(1) as f64;
    let lags = lags_pct(reports, generation);
    format!(
        "{} polls, lag p50 {} % / p95 {} %",
        sig(polls),
        sig(median(&lags)),
        sig(percentile(&lags, 0.95))
    )
}

/// What a wall run spent beyond its reports' generation times: the time outside the server's
/// span (start-up before the first create, outputs after the last download), each report's
/// lag + download, and the gap between a report finishing and the next one being created in
/// its slot.
pub(super) fn above_floor(w: &WallRun) -> String {
    let reports = &w.stats.reports;
    let first_create = reports.iter().map(|r| r.created_us).min().unwrap_or(0);
    let mut dones: Vec<u64> = reports.iter().filter_map(|r| r.download_done_us).collect();
    dones.sort_unstable();
    let span = dones
        .last()
        .copied()
        .unwrap_or(first_create)
        .saturating_sub(first_create) as f64
        / 1e6;
    let outside = w.ours.wall.as_secs_f64() - span;
    let mean_ms = |values: &[f64]| 1e3 * values.iter().sum::<f64>() / values.len().max(1) as f64;
    // Mean time between two moments of each report; then "saved → downloaded" split at the
    // poll that first saw the report saved: polling lag, the client's own latency until it
    // asked for the file, the transfer.
    let split = |from: fn(&CreatedReport) -> Option<u64>, to: fn(&CreatedReport) -> Option<u64>| {
        let values: Vec<f64> = reports
            .iter()
            .filter_map(|r| Some(to(r)?.saturating_sub(from(r)?) as f64 / 1e6))
            .collect();
        mean_ms(&values)
    };
    let after_ready = split(|r| Some(r.ready_us), |r| r.download_done_us);
    let polling = split(|r| Some(r.ready_us), |r| r.first_saved_list_us);
    let to_request = split(|r| r.first_saved_list_us, |r| r.first_download_us);
    let transfer = split(|r| r.first_download_us, |r| r.download_done_us);
    // Only reports that finished, so that the k-th create and the k-th end stay paired.
    let mut creates: Vec<u64> = reports
        .iter()
        .filter(|r| r.download_done_us.is_some())
        .map(|r| r.created_us)
        .collect();
    creates.sort_unstable();
    // The k-th create past the first wave took the slot the (k − C)-th finished report left.
    let gaps: Vec<f64> = creates
        .iter()
        .skip(w.concurrency)
        .zip(&dones)
        .map(|(created, done)| created.saturating_sub(*done) as f64 / 1e6)
        .collect();
    format!(
        "outside the server's span {} (start-up + outputs); per report: saved → downloaded {} ms (saved → seen by a poll {} ms, → download asked {} ms, → transferred {} ms), downloaded → next create {} ms (means)",
        secs(outside),
        sig(after_ready),
        sig(polling),
        sig(to_request),
        sig(transfer),
        sig(mean_ms(&gaps))
    )
}

/// Every request the sandbox answered.
pub(super) fn total_requests(stats: &Stats) -> u64 {
    stats.token_requests
        + stats.create_requests
        + stats.stored_list_requests
        + stats.download_requests
        + stats.delete_requests
}

/// Median time from creation to the first download request, in seconds.
pub(super) fn median_turnaround(reports: &[CreatedReport]) -> f64 {
    let t: Vec<f64> = reports
        .iter()
        .filter_map(|r| Some(r.first_download_us?.saturating_sub(r.created_us) as f64 / 1e6))
        .collect();
    median(&t)
}
