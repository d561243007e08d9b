//! Learning from last month: the generation times that the trail's latest periods recorded
//! (`timing` of each report in `<period>/manifest.json`), per tenant, kind and level.
//!
//! Generation times of real partners are heavy-tailed and stable between months: a
//! distributor's report takes many times longer than a small customer's, every month. A run
//! that knows this starts its slowest reports first (so they do not start last and hold up the
//! end of the run) and aims each report's polls at its own tenant's time instead of at what the
//! run has learnt of all tenants together.
//!
//! What history never changes: which reports a run makes, their results and outputs (in plan
//! order, as without history), and which shard a report belongs to (see [`crate::shard`]);
//! only the order in which a run, or one shard of it, starts its reports and where their polls
//! go. History that cannot be read is a warning, never a reason to stop a run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::period::Period;
use crate::plan::ReportRequest;
use crate::report::{ReportKind, ReportLevel};
use crate::results::Changed;

/// Period folders read, the latest ones: what the server does now matters, and reading every
/// month of a long trail would slow the start of each run.
const PERIODS: usize = 3;
/// Samples kept per tenant; their median is robust to one odd month.
const SAMPLES: usize = 3;
/// A time beyond this is a damaged record, not a report.
const MAX_SECONDS: f64 = 30.0 * 24.0 * 3600.0;
/// The largest `manifest.json` read for its timings; as the trail's own bound.
const MAX_RECORD_BYTES: u64 = 1 << 30;

/// What makes two reports the same for their generation time: one tenant's report of another
/// kind or level is another report.
type Key = (String, ReportKind, ReportLevel);

fn key(tenant_id: &str, kind: ReportKind, level: ReportLevel) -> Key {
    (tenant_id.to_ascii_lowercase(), kind, level)
}

/// One period's measurement of a tenant's report, in seconds since its creation.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    /// The last poll that saw it pending, if one did.
    low: Option<f64>,
    /// The first poll that saw it saved.
    high: f64,
    changed: Option<Changed>,
}

impl Sample {
    /// The best single figure: the middle of the bracket, or the only bound there is.
    fn point(&self) -> f64 {
        self.low.map_or(self.high, |low| (low + self.high) / 2.0)
    }

    fn half_width(&self) -> f64 {
        self.low.map_or(0.0, |low| (self.high - low) / 2.0)
    }

    /// Bracketed to within [`Sample::PRECISE`] of its time either way: a report whose polls
    /// were dense around it. A month whose polls were sparse there (a first run, which knew
    /// nothing yet) says little once there are precise ones.
    fn precise(&self) -> bool {
        self.low.is_some() && self.half_width() <= Self::PRECISE * self.point()
    }

    const PRECISE: f64 = 0.05;
}

/// What a tenant's history leads a run to expect of its report, and where the report's polls
/// go from there: the first one at the start of the window the history leaves open (just
/// before the expected time when the history is precise), then each a small fraction of the
/// time so far after the one before, through the window; then sparser, up to
/// twice the expected time. A report still pending there is much slower
/// than its history says, and is polled like a report without history from then on.
///
/// Gaps in proportion to the time so far keep the lag (saved → seen saved) a bounded share of
/// the report's own time, which is what matters: a minute's lag is nothing on an hour's report
/// and everything on a minute's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Expected {
    /// The tenant's recent generation time, in seconds.
    seconds: f64,
    /// The window the history leaves open, in seconds since creation: the first poll, and
    /// where the polls start to thin out.
    from: f64,
    until: f64,
    /// Each gap within the window, as a share of the time so far.
    ratio: f64,
    /// Whether the history bounds the time from below (a poll saw it pending): only
    /// then does a report saved at its first poll show that its tenant became faster.
    bounded: bool,
}

impl Expected {
    /// The window's half-width, as a fraction of the time, when the history is precise:
    /// month-to-month noise.
    const MARGIN: f64 = 0.05;
    /// Beyond how far the history scatters, the window opens this much earlier (a fraction
    /// of the time, and at least [`Expected::SLACK`]): a first poll placed exactly where an
    /// earlier month last saw the report pending would find it saved as often as not, by the
    /// clock's noise alone.
    const TOLERANCE: f64 = 0.02;
    const SLACK: f64 = 0.025;
    /// A history scattered wider than this is still aimed at, from half its time on.
    const MAX_MARGIN: f64 = 0.5;
    /// The history only bounds the time from above (its report was saved at its first poll):
    /// the window opens at this fraction of that bound.
    const UNBOUNDED_FROM: f64 = 0.6;
    /// Polls a window is meant to take, whatever its width: its gaps are its width spread over
    /// this many, within these shares of the time so far (the largest bounds the lag, so a
    /// very wide window takes more).
    const WINDOW_POLLS: f64 = 6.0;
    const MIN_RATIO: f64 = 0.03;
    const MAX_RATIO: f64 = 0.08;
    /// Past the window, each gap is this share of the time so far.
    const GROWTH: f64 = 0.10;
    /// Still pending at this multiple of the expected time: the tenant is much slower now.
    const SLOWER: f64 = 2.0;

    fn new(seconds: f64, from: f64, until: f64, bounded: bool) -> Self {
        let ratio = ((until / from.max(1e-3)).ln() / Self::WINDOW_POLLS)
            .clamp(Self::MIN_RATIO, Self::MAX_RATIO);
        Expected {
            seconds,
            from,
            until,
            ratio,
            bounded,
        }
    }

    /// The expected generation time.
    pub(crate) fn time(&self) -> Duration {
        seconds(self.seconds)
    }

    /// The expected time in milliseconds, for the record.
    pub(crate) fn millis(&self) -> u64 {
        millis(self.time())
    }

    /// The first poll after creation.
    pub(crate) fn first_poll(&self, min_step: Duration) -> Duration {
        seconds(self.from).max(min_step)
    }

    /// The poll after one made at `last`, or `None` once the report is past
    /// twice its expected time.
    pub(crate) fn next_poll(&self, last: Duration, min_step: Duration) -> Option<Duration> {
        let last_s = last.as_secs_f64();
        let min_step = min_step.as_secs_f64();
        let limit = (self.seconds * Self::SLOWER).max(self.until + min_step);
        if last_s >= limit {
            return None;
        }
        let share = if last_s < self.until {
            self.ratio
        } else {
            Self::GROWTH
        };
        Some(seconds(last_s + (last_s * share).max(min_step)))
    }

    /// Whether a report saved at its first poll, made at `at`, was faster than its history:
    /// the first poll came before the expected time, and the history said it would not be
    /// ready that early.
    pub(crate) fn saved_early(&self, at: Duration) -> bool {
        self.bounded && at.as_secs_f64() < self.seconds
    }

    /// The estimate from a tenant's samples, newest first. A change the run detected starts the
    /// history anew: the samples before it describe a tenant that is no more. After a report
    /// that was faster than its history only an upper bound is known, so the tenant counts as
    /// one without history until it has been measured again. Precise samples, where there are
    /// any, outrank the others.
    fn of(samples: &[Sample]) -> Option<Expected> {
        let mut kept = Vec::with_capacity(samples.len());
        for sample in samples {
            match sample.changed {
                Some(Changed::Faster) => break,
                Some(Changed::Slower) => {
                    kept.push(*sample);
                    break;
                }
                None => kept.push(*sample),
            }
        }
        // The best kind of measurement there is counts: precise brackets, else any bracket, else
        // upper bounds only (reports saved at their first poll).
        let rank = |s: &Sample| match (s.precise(), s.low.is_some()) {
            (true, _) => 2,
            (false, true) => 1,
            (false, false) => 0,
        };
        let best = kept.iter().map(rank).max()?;
        kept.retain(|s| rank(s) == best);
        let bounded = best > 0;
        let mut points: Vec<f64> = kept.iter().map(Sample::point).collect();
        points.sort_by(f64::total_cmp);
        let middle = points.len() / 2;
        let median = if points.len() % 2 == 1 {
            points[middle]
        } else {
            (points[middle - 1] + points[middle]) / 2.0
        };
        if !bounded {
            // Saved at its first poll: the time was that or less, how much less is unknown.
            return Some(Expected::new(
                median,
                median * Self::UNBOUNDED_FROM,
                median * (1.0 + Self::MARGIN),
                false,
            ));
        }
        // How far the history is from certain: its widest bracket, and how far its months
        // scatter around their median.
        let spread = kept
            .iter()
            .map(|s| s.half_width().max((s.point() - median).abs()))
            .fold(0.0, f64::max);
        let margin = (Self::MARGIN * median)
            .max(spread + (Self::TOLERANCE * median).max(Self::SLACK))
            .min(Self::MAX_MARGIN * median);
        Some(Expected::new(
            median,
            median - margin,
            median + margin,
            true,
        ))
    }
}

/// A duration of `s` seconds; nothing here holds a negative or non-finite one, but a damaged
/// record must not be able to panic the run either way.
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.clamp(0.0, MAX_SECONDS)).unwrap_or_default()
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The generation times of the trail's latest periods, by tenant, kind and level.
#[derive(Debug, Default)]
pub struct History {
    /// Newest first, at most [`SAMPLES`] each.
    samples: HashMap<Key, Vec<Sample>>,
    /// The period folders that were read, newest first.
    periods: Vec<String>,
}

impl History {
    /// No history: every report starts in plan order and polls as the run learns.
    pub(crate) fn none() -> Self {
        Self::default()
    }

    /// Reads the timings of the latest three period folders of the trail in `dir`. What
    /// cannot be read (a missing, damaged or odd `manifest.json`, a timing that is not one) is
    /// left out with a warning: history only guides the order and the polls.
    pub(crate) fn read(dir: &Path) -> Self {
        let mut history = Self::none();
        for (label, path) in latest_periods(dir) {
            let bytes = match crate::disk::paths::read_regular(&path, MAX_RECORD_BYTES) {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::warn!(
                        "cannot read {} for the generation times of {label} ({e}); its reports are not used to order or aim this run's polls",
                        path.display()
                    );
                    continue;
                }
            };
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(record) => history.add(&label, &path, &record),
                Err(e) => tracing::warn!(
                    "{} is not JSON ({e}); the generation times of {label} are not used to order or aim this run's polls",
                    path.display()
                ),
            }
        }
        history
    }

    /// Adds one period's record, read leniently: each report stands on its own.
    fn add(&mut self, label: &str, path: &Path, record: &Value) {
        let Some(reports) = record.get("reports").and_then(Value::as_array) else {
            tracing::warn!(
                "{} lists no reports; the generation times of {label} are not used",
                path.display()
            );
            return;
        };
        let mut odd = 0usize;
        let mut used = 0usize;
        for report in reports {
            match parse_report(report) {
                Parsed::Sample(key, sample) => {
                    used += 1;
                    let samples = self.samples.entry(key).or_default();
                    if samples.len() < SAMPLES {
                        samples.push(sample);
                    }
                }
                Parsed::NoTiming => {}
                Parsed::Odd => odd += 1,
            }
        }
        if odd > 0 {
            tracing::warn!(
                "{}: {odd} report(s) with a timing that does not read (not a report's tenant, kind and level, or a time that is negative, not a number, or beyond 30 days); left out of the generation times",
                path.display()
            );
        }
        if used > 0 {
            self.periods.push(label.to_owned());
        }
    }

    /// Whether any tenant has a generation time.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The period folders whose timings were used, newest first.
    pub fn periods(&self) -> &[String] {
        &self.periods
    }

    /// What the history says of `request`'s generation time.
    pub(crate) fn expected(&self, request: &ReportRequest) -> Option<Expected> {
        let samples = self
            .samples
            .get(&key(&request.tenant_id, request.kind, request.level))?;
        Expected::of(samples)
    }
}

/// The latest period folders of `dir` that have a `manifest.json`, newest first.
fn latest_periods(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut periods: Vec<(Period, String, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let period = Period::from_label(&name)?;
            if !entry.file_type().ok()?.is_dir() {
                return None;
            }
            let manifest = entry.path().join(crate::output::MANIFEST);
            fs::symlink_metadata(&manifest)
                .ok()?
                .is_file()
                .then_some((period, name, manifest))
        })
        .collect();
    periods.sort_by_key(|(period, _, _)| Reverse((period.end, period.start)));
    periods
        .into_iter()
        .take(PERIODS)
        .map(|(_, name, path)| (name, path))
        .collect()
}

enum Parsed {
    Sample(Key, Sample),
    /// A record written without a timing (an earlier version, or a report taken over).
    NoTiming,
    Odd,
}

fn parse_report(report: &Value) -> Parsed {
    let Some(timing) = report.get("timing").filter(|t| !t.is_null()) else {
        return Parsed::NoTiming;
    };
    let tenant = report.get("tenant_id").and_then(Value::as_str);
    let kind = report
        .get("kind")
        .and_then(|v| serde_json::from_value::<ReportKind>(v.clone()).ok());
    let level = report
        .get("level")
        .and_then(|v| serde_json::from_value::<ReportLevel>(v.clone()).ok());
    let (Some(tenant), Some(kind), Some(level)) = (tenant, kind, level) else {
        return Parsed::Odd;
    };
    let time = |name: &str| -> Result<Option<f64>, ()> {
        match timing.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let ms = value.as_f64().ok_or(())?;
                let s = ms / 1000.0;
                if s.is_finite() && s > 0.0 && s <= MAX_SECONDS {
                    Ok(Some(s))
                } else {
                    Err(())
                }
            }
        }
    };
    let (Ok(Some(high)), Ok(low)) = (time("ready_after_ms"), time("pending_at_ms")) else {
        return Parsed::Odd;
    };
    let changed = timing
        .get("changed")
        .and_then(|v| serde_json::from_value::<Changed>(v.clone()).ok());
    Parsed::Sample(
        key(tenant, kind, level),
        Sample {
            // A pending poll at or after the saved one is no bracket.
            low: low.filter(|low| *low < high),
            high,
            changed,
        },
    )
}

/// The expected times of a plan's reports, where a tenant has no history the median of those
/// that have one; `None` when no report has history.
fn filled(expected: &[Option<Expected>]) -> Option<Vec<f64>> {
    let mut known: Vec<f64> = expected.iter().flatten().map(|e| e.seconds).collect();
    if known.is_empty() {
        return None;
    }
    known.sort_by(f64::total_cmp);
    let median = known[known.len() / 2];
    Some(
        expected
            .iter()
            .map(|e| e.map_or(median, |e| e.seconds))
            .collect(),
    )
}

/// The order in which to start the reports (positions in `expected`, which follows the plan):
/// longest expected time first, a tenant without history at the median of the others; equal
/// times in plan order. Without any history, plan order.
pub(crate) fn start_order(expected: &[Option<Expected>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..expected.len()).collect();
    if let Some(times) = filled(expected) {
        // A stable sort: equal times keep their plan order.
        order.sort_by(|&a, &b| times[b].total_cmp(&times[a]));
    }
    order
}

/// What the history let a run expect of its own duration.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Longest-first list scheduling of the expected times on the run's slots: the run's
    /// duration if every report were downloaded the moment it was saved.
    pub(crate) duration: Duration,
    pub(crate) reports: usize,
    /// Reports whose tenant has history (the others count at the median).
    pub(crate) known: usize,
    pub(crate) slots: usize,
    /// The period folders the times come from, newest first.
    pub periods: Vec<String>,
}

/// The run's duration as the history predicts it; `None` without history.
pub fn estimate(history: &History, plan: &[ReportRequest], slots: usize) -> Option<Estimate> {
    let expected: Vec<Option<Expected>> = plan.iter().map(|r| history.expected(r)).collect();
    let mut times = filled(&expected)?;
    times.sort_by(|a, b| b.total_cmp(a));
    Some(Estimate {
        duration: seconds(makespan(&times, slots)),
        reports: plan.len(),
        known: expected.iter().flatten().count(),
        slots,
        periods: history.periods.clone(),
    })
}

/// Greedy list scheduling of `times` (seconds, in start order) on `slots` slots: each starts
/// on the slot that frees first. Returns when the last one ends.
pub(crate) fn makespan(times: &[f64], slots: usize) -> f64 {
    let slots = slots.clamp(1, times.len().max(1));
    let mut free: BinaryHeap<Reverse<u64>> = (0..slots).map(|_| Reverse(0)).collect();
    let mut end = 0;
    for &time in times {
        let Some(Reverse(at)) = free.pop() else {
            break;
        };
        let took = u64::try_from(seconds(time).as_micros()).unwrap_or(u64::MAX);
        let done = at.saturating_add(took);
        end = end.max(done);
        free.push(Reverse(done));
    }
    end as f64 / 1e6
}

#[cfg(test)]
mod tests;
