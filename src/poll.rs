//! Waiting for a report's stored files: `GET /reports/{id}/stored` until every format is saved,
//! one has failed, or the report's deadline passes.

use std::time::{Duration, Instant};

use crate::api::{ApiError, Client, StoredItem};
use crate::history::{self, Expected};
use crate::job::Polling;
use crate::report::Format;
use crate::results::{Changed, Timing};
use crate::retry::Backoff;

/// A stored file ready for download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReadyFile {
    pub format: Format,
    pub(crate) stored_id: String,
    pub(crate) size: Option<u64>,
}

/// What one answer of the stored list means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Evaluation {
    /// Every requested format has a saved file.
    Ready(Vec<ReadyFile>),
    /// A format's newest file failed and none is saved; the server's word for it.
    Failed(String),
    /// Still generating (or not listed yet); `missing` names the formats not saved yet.
    Pending { missing: Vec<Format> },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PollError {
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

/// Statuses that mean the file will never be saved. The vendor's are `in_progress`, `saved` and
/// `failed`; any other that is not `saved` counts as pending too, in case statuses are added.
fn is_failure(status: &str) -> bool {
    let status = status.to_ascii_lowercase();
    ["fail", "error", "cancel", "abort", "reject"]
        .iter()
        .any(|word| status.contains(word))
}

/// Picks, per requested format, the newest saved file.
pub(crate) fn evaluate(items: &[StoredItem], formats: &[Format]) -> Evaluation {
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
/// Reports play one of three parts:
/// - while nothing is known, a few **scouts** poll on a fine geometric series (staggered, so
///   together they sample time densely) and every other report waits for what they find, with
///   a sparse fallback of its own;
/// - **probes** (every report while the model is young, then one in [`Self::PROBE_EVERY`]) start
///   one step before the earliest generation time seen and poll every step: their last
///   "pending" and first "saved" polls bracket the generation time to within a step, without
///   bias, and only they feed the model;
/// - **regular** reports poll first at the earliest time seen plus one step, or at the latest
///   time seen if that comes sooner, then every step. With steady generation times that is one
///   or two polls per report, and the lag between "saved" and "download started" stays under
///   one step.
///
/// Only probes and scouts feed the model because a regular report's first poll hides how much
/// earlier it was ready: learning from it would push every later aim further out.
#[derive(Debug, Default)]
pub(crate) struct GenerationModel {
    state: std::sync::Mutex<ModelState>,
    /// Wakes the reports that are waiting whenever something new is learnt (or a scout leaves).
    learnt: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct ModelState {
    /// Generation-time estimates, newest last.
    samples: std::collections::VecDeque<Sample>,
    /// Reports that have started waiting, numbered so that every n-th one probes.
    tickets: u64,
    /// Scouts now polling, and how many ever started (their stagger).
    scouts: usize,
    scouts_started: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    seconds: f64,
    /// Bracketed to within two steps. Rough ones (a scout's wide gaps, a first guess) only
    /// stand in until there are enough precise ones: kept in the low quantile, they would hold
    /// every aim early for a whole window.
    precise: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Probe,
    Regular,
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

/// A place among the scouts; leaving it lets a waiting report take it over.
struct ScoutSlot<'a> {
    model: &'a GenerationModel,
    /// In [0, 1): where this scout's series sits between the powers of the ratio.
    stagger: f64,
}

impl Drop for ScoutSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.model.state.lock() {
            state.scouts = state.scouts.saturating_sub(1);
        }
        self.model.learnt.notify_waiters();
    }
}

impl GenerationModel {
    /// Recent reports only: what the server does now matters, and outliers age out quickly.
    const WINDOW: usize = 32;
    /// Below this many samples every report probes.
    const LEARNING: usize = 8;
    const PROBE_EVERY: u64 = 6;
    /// The lag budget: polls every this fraction of the typical generation time. Lag averages
    /// half a step, and when reports queue for a slot it adds up over every report a slot runs.
    const STEP_FRACTION: f64 = 0.03;
    const MIN_STEP: Duration = Duration::from_millis(50);
    const SCOUTS: usize = 4;
    /// A scout's polls grow by this factor. The first scout to find its report saved does so
    /// a fraction of a gap late, and every waiting report learns only then: this bounds the
    /// lag of the first wave.
    const SCOUT_RATIO: f64 = 1.15;
    /// A scout's first poll, as a fraction of `initial_interval`.
    const SCOUT_START: f64 = 0.25;

    pub fn new() -> Self {
        Self::default()
    }

    fn ticket(&self) -> u64 {
        self.state.lock().map_or(0, |mut state| {
            state.tickets += 1;
            state.tickets
        })
    }

    fn role(&self, ticket: u64) -> Role {
        let young = self.state.lock().map_or(true, |state| {
            state.samples.iter().filter(|s| s.precise).count() < Self::LEARNING
        });
        if young || ticket.is_multiple_of(Self::PROBE_EVERY) {
            Role::Probe
        } else {
            Role::Regular
        }
    }

    fn try_scout(&self) -> Option<ScoutSlot<'_>> {
        let mut state = self.state.lock().ok()?;
        if !state.samples.is_empty() || state.scouts >= Self::SCOUTS {
            return None;
        }
        state.scouts += 1;
        state.scouts_started += 1;
        let stagger = (state.scouts_started % Self::SCOUTS) as f64 / Self::SCOUTS as f64;
        Some(ScoutSlot {
            model: self,
            stagger,
        })
    }

    /// Records what a probe or scout saw: still pending at `pending` (if it ever polled
    /// pending) and saved at `ready`, both measured from its creation.
    fn record(&self, pending: Option<Duration>, ready: Duration) {
        let ready_secs = ready.as_secs_f64();
        let aim = self.aim(Role::Probe);
        let sample = |seconds: f64, precise| Sample { seconds, precise };
        let estimate = match (pending, aim) {
            // Bracketed: the middle is off by half the gap at most.
            (Some(pending), _) => sample(
                (pending.as_secs_f64() + ready_secs) / 2.0,
                aim.is_some_and(|aim| ready - pending <= aim.step * 2),
            ),
            // Saved at a probe's first poll, which came a step before the earliest time seen:
            // the server has become faster. A guess a step lower makes the next probes start
            // earlier; a first poll made late (woken when the model changed) says nothing.
            (None, Some(aim)) if ready <= aim.first + aim.step => {
                sample((ready_secs - aim.step.as_secs_f64()).max(0.0), true)
            }
            (None, Some(_)) => return,
            // A scout saved at its very first poll: the time was at most this, and nothing says
            // how much less; a guess below it makes the next reports probe earlier.
            (None, None) => sample(ready_secs * 0.75, false),
        };
        if let Ok(mut state) = self.state.lock() {
            if state.samples.len() == Self::WINDOW {
                state.samples.pop_front();
            }
            state.samples.push_back(estimate);
        }
        self.learnt.notify_waiters();
    }

    fn aim(&self, role: Role) -> Option<Aim> {
        let mut samples: Vec<f64> = {
            let state = self.state.lock().ok()?;
            let precise = state.samples.iter().filter(|s| s.precise).count();
            state
                .samples
                .iter()
                .filter(|s| s.precise || precise < Self::LEARNING / 2)
                .map(|s| s.seconds)
                .collect()
        };
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let quantile = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let step = quantile(0.5) * Self::STEP_FRACTION;
        let step_d = Duration::from_secs_f64(step).max(Self::MIN_STEP);
        let (low, high) = (quantile(0.05), quantile(0.95));
        let first = match role {
            Role::Probe => low - step,
            Role::Regular => (low + step).min(high),
        };
        Some(Aim {
            first: Duration::from_secs_f64(first.max(0.0)).max(Self::MIN_STEP),
            step: step_d,
            until: Duration::from_secs_f64(quantile(1.0) * 1.2) + step_d,
        })
    }
}

/// One report's polling schedule: which part it plays and when its next poll is due.
struct Schedule<'a> {
    model: &'a GenerationModel,
    polling: &'a Polling,
    ticket: u64,
    /// Whether this report's timing may teach the model; one taken over from an earlier run
    /// (its creation time not ours) never scouts, as what it finds could not be learnt.
    ///
    /// Nor does a report whose tenant has history. Its own polls would bracket its time without
    /// bias (they are placed by its tenant's history, not by the model), but the model stands
    /// for the tenants the run knows nothing about, and the reports with history finish in an
    /// order their history chose: the slowest start first, so the early samples would all be
    /// slow ones, and every aim the model makes for an unknown tenant would come late — lag,
    /// which the model's design otherwise only risks in the cheap direction (the reports that
    /// finish first in plan order are the quick ones, which pull aims early: polls, not lag).
    /// A tenant found to have changed is no sample of the unknown ones either.
    learns: bool,
    /// What the tenant's history leads us to expect: the polls go there first, and to the model
    /// only once the report is much slower than that ([`Schedule::changed`]).
    expected: Option<Expected>,
    /// Set when the report turned out much slower than its history: polled like a report
    /// without history from then on.
    changed: Option<Changed>,
    scout: Option<ScoutSlot<'a>>,
    /// Used while waiting for the scouts, and once the report is slower than any seen.
    fallback: Backoff,
    /// When the fallback is next due, drawn once per poll.
    fallback_at: Duration,
    /// The last poll, and the last one that found the report pending (times since creation).
    last_poll: Option<Duration>,
    last_pending: Option<Duration>,
}

impl<'a> Schedule<'a> {
    /// The fallback's first poll, in `initial_interval`s.
    const FALLBACK_START: u32 = 5;

    fn new(
        model: &'a GenerationModel,
        polling: &'a Polling,
        learns: bool,
        expected: Option<Expected>,
    ) -> Self {
        Self {
            model,
            polling,
            ticket: model.ticket(),
            learns: learns && expected.is_none(),
            expected,
            changed: None,
            scout: None,
            fallback: Backoff::new(
                polling.initial_interval * Self::FALLBACK_START,
                polling.max_interval,
            ),
            // Reports waiting for the scouts look for themselves only rarely, in case their
            // tenant is much quicker than the scouts' ones (a scout whose report fails hands
            // its place to a waiting report).
            fallback_at: polling.initial_interval * Self::FALLBACK_START,
            last_poll: None,
            last_pending: None,
        }
    }

    /// When the next poll is due, from what is known now.
    fn next(&mut self) -> Duration {
        if let Some(expected) = self.expected.filter(|_| self.changed.is_none()) {
            let next = match self.last_poll {
                None => Some(expected.first_poll(GenerationModel::MIN_STEP)),
                Some(last) => expected.next_poll(last, GenerationModel::MIN_STEP),
            };
            match next {
                Some(at) => return at,
                None => self.changed = Some(Changed::Slower),
            }
        }
        let role = self.model.role(self.ticket);
        if let Some(aim) = self.model.aim(role) {
            self.scout = None;
            return match self.last_poll {
                None => aim.first,
                // Never closer than a step after the last poll, even if the aim moved earlier.
                Some(last) if last + aim.step < aim.first => aim.first,
                Some(last) if last < aim.until => last + aim.step,
                Some(_) => self.fallback_at,
            };
        }
        if self.scout.is_none() && self.learns {
            self.scout = self.model.try_scout();
        }
        match &self.scout {
            Some(scout) => {
                // The n-th poll of a scout is at start × ratio^(n + stagger): computed from
                // that formula (not from the last gap) so the scouts' series stay interleaved
                // even where the minimum step or a late wake-up shifted one of them.
                let start = self
                    .polling
                    .initial_interval
                    .mul_f64(GenerationModel::SCOUT_START);
                let earliest = self
                    .last_poll
                    .map_or(Duration::ZERO, |last| last + GenerationModel::MIN_STEP);
                let ratio = GenerationModel::SCOUT_RATIO;
                let n = ((earliest.as_secs_f64() / start.as_secs_f64().max(1e-3)).ln()
                    / ratio.ln()
                    - scout.stagger)
                    .ceil()
                    .max(0.0);
                let at = start.mul_f64(ratio.powf(n + scout.stagger));
                // Never wider apart than `max_interval`.
                at.min(earliest.max(self.last_poll.unwrap_or_default() + self.polling.max_interval))
            }
            None => self.fallback_at,
        }
    }

    /// Whether a poll now measures the generation time without bias (see [`GenerationModel`]).
    fn measuring(&self) -> bool {
        self.learns && (self.scout.is_some() || self.model.role(self.ticket) == Role::Probe)
    }

    /// The record of a report saved at a poll made at `at` (its `polls`-th), for the next runs.
    fn timing(&self, at: Duration, polls: u32) -> Timing {
        let first = self.last_poll.is_none();
        let changed = self.changed.or_else(|| {
            self.expected
                .filter(|expected| first && expected.saved_early(at))
                .map(|_| Changed::Faster)
        });
        Timing {
            ready_after_ms: history::millis(at),
            pending_at_ms: self.last_pending.map(history::millis),
            polls,
            expected_ms: self.expected.map(|e| e.millis()),
            changed,
        }
    }

    fn polled(&mut self, at: Duration, pending: bool) {
        self.last_poll = Some(at);
        if pending {
            self.last_pending = Some(at);
        }
        if self.fallback_at <= at {
            self.fallback_at = at + self.fallback.next_delay();
        }
    }
}

/// How long after creating a report a 404 from its stored list still means "not listed yet".
/// Whether the server ever answers so for a fresh report is not public; a report this run has
/// just created certainly exists, so giving up on it at once would only lose it. Later, or for
/// a report taken over from an earlier run, a 404 means the server does not know the report.
pub(crate) const NOT_LISTED_YET_GRACE: Duration = Duration::from_secs(60);

/// The report [`wait_until_ready`] waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waiting<'a> {
    pub(crate) report_id: &'a str,
    pub formats: &'a [Format],
    /// When the report was created, or taken over from an earlier run; the deadline is
    /// `created + polling.timeout`.
    pub(crate) created: Instant,
    /// Whether this run created it, so `created` is its true creation time (not when a report
    /// of an earlier run was taken over): only then may its timing teach the model and be
    /// recorded, only then are its polls aimed by `expected`, and only then is a 404 within
    /// [`NOT_LISTED_YET_GRACE`] of `created` taken as "still pending".
    pub(crate) created_here: bool,
    /// What its tenant's history leads us to expect, if it has history.
    pub(crate) expected: Option<Expected>,
}

/// A report whose files are all saved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Waited {
    pub(crate) files: Vec<ReadyFile>,
    /// How long it took, when this run created it.
    pub(crate) timing: Option<Timing>,
}

/// Polls until the report's files are ready.
pub(crate) async fn wait_until_ready(
    client: &Client,
    report: &Waiting<'_>,
    polling: &Polling,
    model: &GenerationModel,
) -> Result<Waited, PollError> {
    let Waiting {
        report_id,
        formats,
        created,
        created_here,
        expected,
    } = *report;
    let deadline = created + polling.timeout;
    let expected = expected.filter(|_| created_here);
    let mut schedule = Schedule::new(model, polling, created_here, expected);
    let mut polls: u32 = 0;
    // However far an aim is (a history that expects more than the timeout, say), the first poll
    // comes within `max_interval`, and one comes just before the deadline: a report is never
    // given up on without having been looked at.
    let last_chance = polling
        .timeout
        .saturating_sub((polling.timeout / 20).min(Duration::from_secs(1)));
    let mut polled_last_chance = false;
    let within_reach = |next: Duration, polled_last_chance: bool| {
        if polled_last_chance {
            next
        } else {
            next.min(last_chance)
        }
    };
    let mut next_poll = within_reach(schedule.next().min(polling.max_interval), false);
    // A `Retry-After` from the server is a floor no re-aiming may undercut.
    let mut not_before = Duration::ZERO;
    let mut missing = formats.to_vec();
    let mut last_error = None;
    loop {
        loop {
            let wait = next_poll.saturating_sub(created.elapsed());
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(PollError::TimedOut {
                    waited: created.elapsed(),
                    missing,
                    last_error,
                });
            }
            if wait.is_zero() {
                break;
            }
            // Registered before sleeping, so news that arrives meanwhile is not missed.
            let news = model.learnt.notified();
            tokio::select! {
                _ = tokio::time::sleep(wait.min(remaining)) => {}
                _ = news => {
                    // Come forward to the new aim (never back: an aim that moved later only
                    // costs a poll that the next one corrects).
                    next_poll = within_reach(
                        next_poll.min(schedule.next()).max(not_before),
                        polled_last_chance,
                    );
                }
            }
        }
        let polled_at = created.elapsed();
        polled_last_chance |= polled_at >= last_chance;
        let measuring = schedule.measuring();
        let mut retry_after = None;
        polls = polls.saturating_add(1);
        match client.stored_reports(report_id, Some(deadline)).await {
            Ok(items) => {
                last_error = None;
                match evaluate(&items, formats) {
                    Evaluation::Ready(files) => {
                        if measuring {
                            model.record(schedule.last_pending, polled_at);
                        }
                        let timing = created_here.then(|| schedule.timing(polled_at, polls));
                        if let Some(Changed::Faster) = timing.as_ref().and_then(|t| t.changed) {
                            tracing::info!(
                                report_id,
                                "saved at its first poll, before the time its tenant's history expected: faster now"
                            );
                        }
                        return Ok(Waited { files, timing });
                    }
                    Evaluation::Failed(reason) => return Err(PollError::Failed(reason)),
                    Evaluation::Pending { missing: still } => {
                        missing = still;
                        schedule.polled(polled_at, true);
                    }
                }
            }
            Err(error @ ApiError::Status { status: 404, .. })
                if created_here && created.elapsed() < NOT_LISTED_YET_GRACE =>
            {
                tracing::debug!(report_id, %error, "the new report is not listed yet");
                retry_after = error.retry_after();
                last_error = Some(error);
                schedule.polled(polled_at, true);
            }
            // Throttling and server trouble outlasting the client's own retries: keep polling
            // until the deadline, at the pace the server asks for.
            Err(error) if error.is_transient() => {
                tracing::warn!(report_id, %error, "polling failed; will try again");
                retry_after = error.retry_after();
                last_error = Some(error);
                schedule.polled(polled_at, false);
            }
            Err(error) => return Err(PollError::Api(error)),
        }
        let now = created.elapsed();
        not_before = now + retry_after.unwrap_or_default();
        let slower = schedule.changed.is_some();
        next_poll = within_reach(
            schedule
                .next()
                .min(now + polling.max_interval)
                .max(not_before),
            polled_last_chance,
        );
        if !slower && schedule.changed.is_some() {
            tracing::info!(
                report_id,
                "still pending at {:.1}s, well past the {:.1}s its tenant's history expected: slower now; polled as a tenant without history",
                now.as_secs_f64(),
                expected.map_or(0.0, |e| e.time().as_secs_f64())
            );
        }
    }
}

#[cfg(test)]
mod tests;
