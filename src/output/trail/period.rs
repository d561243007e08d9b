//! One period of a commit, in three steps: a plan of what its records become and which files
//! move (nothing changes on disk), the checks that can refuse it (a path another tenant's
//! sealed record has, a kept file no longer as sealed, a file of the run that is gone), and
//! only then the renames and the new delivery, undone when writing it fails.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::Path;

use super::intent::{self, Move};
use super::open::hash_inside;
use super::{REJECTED, SUPERSEDED, TakenFolder, folded, is_report_path, relative_to, rooted};
use crate::disk::paths::existing_inside;
use crate::output::billing::BillingSummary;
use crate::output::{SHA256SUMS, kill_point};
use crate::report::{ReportKind, ReportLevel};
use crate::results::{ReportLog, ReportResult, RunResult, Status};
use crate::state::{STAGING_DIR, STATE_DIR};

/// Why a period was not written. Each is found before anything in the period changes, except
/// [`PeriodError::Write`], after which the period is put back as it was.
#[derive(Debug, thiserror::Error)]
pub(super) enum PeriodError {
    #[error("{0}; nothing in {label}/ was written or moved", label = .0.label)]
    Taken(TakenFolder),
    #[error(
        "{path} ({tenant}'s {kind} / {level} report in the sealed delivery of {label}) {state}, so {label}/ was not rewritten and nothing in it was moved: restore the file (e.g. `git checkout -- {path}`, or from the artifact of the run that sealed it), or run {tenant}'s report for {label} again, so that its new delivery replaces the file"
    )]
    Damaged {
        path: String,
        tenant: String,
        kind: ReportKind,
        level: ReportLevel,
        label: String,
        state: &'static str,
    },
    #[error(
        "{path} is not the file this run fetched ({why}), so {label}/ was not rewritten; run again"
    )]
    Lost {
        path: String,
        label: String,
        why: &'static str,
    },
    #[error("a report of {label}/ lists the file {path:?}, which is not a path inside {label}/")]
    Outside { label: String, path: String },
    #[error("two records of {label}/ would list {path}, so {label}/ was not rewritten")]
    Twice { label: String, path: String },
    #[error("cannot look at {path}: {source}")]
    Look { path: String, source: io::Error },
    #[error("cannot read back this run's records: {0}")]
    Log(io::Error),
    #[error("{source}; the rest of {label}/ was written and sealed")]
    Partly { label: String, source: io::Error },
    #[error("{source}; {label}/ was put back as it was")]
    Write { label: String, source: io::Error },
    #[error(
        "{source}; {label}/ could not be put back as it was either ({undo}): the next run into this folder finishes or undoes it"
    )]
    Stuck {
        label: String,
        source: io::Error,
        undo: io::Error,
    },
}

/// One period of a run being written into the trail.
pub(super) struct PeriodRun<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) label: &'a str,
    pub(crate) earlier: Option<RunResult>,
    /// Whether the earlier record comes from a single-run folder being upgraded.
    pub(crate) upgraded: bool,
    /// Positions of the run's reports of this period.
    pub(crate) positions: &'a [usize],
}

/// What committing one period does, worked out before anything in it changes.
pub(super) struct PeriodPlan {
    /// This run's own files put aside (failed attempts, and when the period is refused, any of
    /// its files lying under a sealed name): done whatever the outcome, never undone.
    pub(crate) set_aside: Vec<Move>,
    /// The run's record of the reports the plan settles (kept deliveries, failed attempts).
    pub(crate) settled: Vec<(usize, ReportResult)>,
    /// Failed attempts for which the earlier delivery is kept.
    pub(crate) kept_earlier: usize,
    pub(crate) outcome: Result<Change, PeriodError>,
}

/// What the period becomes.
pub(super) struct Change {
    /// The period's new record; `None` leaves its records as they are.
    pub(crate) record: Option<RunResult>,
    /// For each report of `record`, its position in the run, if the run made it.
    pub(crate) made: Vec<Option<usize>>,
    /// Files fetched again moved in, earlier bytes moved aside: undone with the commit.
    pub(crate) moves: Vec<Move>,
    pub(crate) reports: usize,
    pub(crate) ok: usize,
}

/// What makes two records the same report of a period.
type Identity = (String, ReportKind, ReportLevel);

fn identity(report: &ReportResult) -> Identity {
    (report.tenant_id.clone(), report.kind, report.level)
}

/// What becomes of one report of the run.
enum Decision {
    /// The delivery the period holds already.
    Keep(usize),
    /// A failed attempt; the earlier records it would replace stay.
    Reject(BTreeSet<usize>),
    /// A new record, replacing the earlier ones of its tenant that it names or whose paths it has.
    Accept(BTreeSet<usize>),
}

/// A report of the run the period takes, without its record: the record is read again from
/// the run's log when it is written, so that planning a large period holds only these.
struct Accepted {
    position: usize,
    /// What the plan adds to the record's warnings.
    warnings: Vec<String>,
    /// What orders a period's records: by tenant, then kind and level, whatever the order of
    /// the runs that fetched them.
    key: (String, String, ReportKind, ReportLevel),
    ok: bool,
}

impl Accepted {
    /// The record as the period takes it (paths relative to the period).
    fn record(
        &self,
        period: &PeriodRun<'_>,
        run: &RunResult,
        prefix: &str,
    ) -> Result<ReportResult, PeriodError> {
        let mut report = period.local(run, self.position, prefix)?;
        report.warnings.extend(self.warnings.iter().cloned());
        Ok(report)
    }
}

/// A report of the period's new record: an earlier one it keeps, or one of the run.
enum Entry<'a> {
    Earlier(&'a ReportResult),
    Run(&'a Accepted),
}

impl Entry<'_> {
    /// [`Accepted::key`], of either.
    fn key(&self) -> (&str, &str, ReportKind, ReportLevel) {
        match self {
            Entry::Earlier(r) => (&r.tenant_name, &r.tenant_id, r.kind, r.level),
            Entry::Run(a) => (&a.key.0, &a.key.1, a.key.2, a.key.3),
        }
    }

    fn ok(&self) -> bool {
        match self {
            Entry::Earlier(r) => r.status == Status::Ok,
            Entry::Run(a) => a.ok,
        }
    }

    fn position(&self) -> Option<usize> {
        match self {
            Entry::Earlier(_) => None,
            Entry::Run(a) => Some(a.position),
        }
    }
}

/// Where the bytes of a file of the run are.
enum Source {
    /// In the staging folder: fetched again while a file was at its path.
    Staged,
    /// At its path in the period.
    InPlace,
    Nowhere,
}

/// Whether two records describe the same delivery: the same report on the server, the same
/// outcome and the same bytes at the same paths.
fn same_delivery(a: &ReportResult, b: &ReportResult) -> bool {
    fn files(r: &ReportResult) -> Vec<(&str, &str, &str)> {
        let mut files: Vec<(&str, &str, &str)> = r
            .files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    f.sha256.as_str(),
                    f.stored_report_id.as_str(),
                )
            })
            .collect();
        files.sort_unstable();
        files
    }
    a.report_id == b.report_id && a.status == b.status && files(a) == files(b)
}

fn tenant_of(report: &ReportResult) -> String {
    format!("{} ({})", report.tenant_id, report.tenant_name)
}

impl PeriodRun<'_> {
    /// Works out what committing the period does; nothing on disk changes.
    pub(crate) fn plan(&self, run: &RunResult) -> PeriodPlan {
        let mut plan = PeriodPlan {
            set_aside: Vec::new(),
            settled: Vec::new(),
            kept_earlier: 0,
            outcome: Err(PeriodError::Log(io::Error::other("not planned"))),
        };
        plan.outcome = self.work_out(run, &mut plan);
        plan
    }

    fn staged(&self, rooted: &str) -> String {
        format!("{STATE_DIR}/{STAGING_DIR}/{rooted}")
    }

    fn source(&self, rooted: &str) -> Result<Source, PeriodError> {
        let look = |source| PeriodError::Look {
            path: rooted.to_owned(),
            source,
        };
        if existing_inside(self.dir, &self.staged(rooted))
            .map_err(look)?
            .is_some()
        {
            return Ok(Source::Staged);
        }
        Ok(match existing_inside(self.dir, rooted).map_err(look)? {
            Some(_) => Source::InPlace,
            None => Source::Nowhere,
        })
    }

    /// Whether the file at `rooted` holds `sha256`.
    fn holds(&self, rooted: &str, sha256: &str) -> bool {
        hash_inside(self.dir, rooted).is_ok_and(|found| found == sha256)
    }

    fn work_out(&self, run: &RunResult, plan: &mut PeriodPlan) -> Result<Change, PeriodError> {
        let label = self.label;
        let prefix = format!("{label}/");
        let earlier = match &self.earlier {
            Some(record) => record.reports.to_vec().map_err(PeriodError::Log)?,
            None => Vec::new(),
        };
        let mut by_identity: HashMap<Identity, usize> = HashMap::new();
        // Paths as macOS and Windows compare them → the earlier records listing them, and the
        // hash sealed for each.
        let mut by_path: HashMap<String, (Vec<usize>, String)> = HashMap::new();
        for (i, report) in earlier.iter().enumerate() {
            by_identity.insert(identity(report), i);
            for file in &report.files {
                by_path
                    .entry(folded(&file.path))
                    .or_insert_with(|| (Vec::new(), file.sha256.clone()))
                    .0
                    .push(i);
            }
        }
        let sealed_hash = |path: &str| by_path.get(&folded(path)).map(|(_, h)| h.as_str());

        let mut refusal: Option<PeriodError> = None;
        let mut decisions = Vec::new();
        let mut replaced: BTreeSet<usize> = BTreeSet::new();
        for &position in self.positions {
            let local = self.local(run, position, &prefix)?;
            if let Some(file) = local.files.iter().find(|f| !is_report_path(&f.path)) {
                return Err(PeriodError::Outside {
                    label: label.to_owned(),
                    path: file.path.clone(),
                });
            }
            let same = by_identity.get(&identity(&local)).copied();
            let mut targets: BTreeSet<usize> = same.into_iter().collect();
            for file in &local.files {
                let listed = by_path.get(&folded(&file.path));
                for &i in listed.map(|(is, _)| is.as_slice()).unwrap_or_default() {
                    if earlier[i].tenant_id == local.tenant_id {
                        targets.insert(i);
                    } else if refusal.is_none() {
                        refusal = Some(PeriodError::Taken(TakenFolder {
                            label: label.to_owned(),
                            path: format!("{prefix}{}", file.path),
                            earlier: tenant_of(&earlier[i]),
                            new: tenant_of(&local),
                        }));
                    }
                }
            }
            let decision = match same {
                Some(i) if targets.len() == 1 && same_delivery(&earlier[i], &local) => {
                    Decision::Keep(i)
                }
                _ if local.status == Status::Failed
                    && targets.iter().any(|&i| earlier[i].status == Status::Ok) =>
                {
                    Decision::Reject(targets)
                }
                _ => {
                    replaced.extend(targets.iter().copied());
                    Decision::Accept(targets)
                }
            };
            // Only the position: a period of ten thousand reports must not hold ten thousand
            // records (the run's memory follows its concurrency); each is read again below.
            decisions.push((position, decision));
        }

        let mut moves = Vec::new();
        let mut accepted: Vec<Accepted> = Vec::new();
        // Files of the run lying under a sealed name (an earlier file was missing when they were
        // fetched): the run's to put aside if the period is refused.
        let mut strays: Vec<(usize, usize)> = Vec::new();
        // Sealed paths a failed attempt's file is moved away from.
        let mut vacated: HashSet<String> = HashSet::new();
        let mut kept = HashSet::new();
        let mut rejected_attempts = Vec::new();
        for (position, decision) in decisions {
            let local = self.local(run, position, &prefix)?;
            match decision {
                Decision::Keep(i) => {
                    kept.insert(i);
                    for file in &local.files {
                        let rooted = format!("{prefix}{}", file.path);
                        if let Source::Staged = self.source(&rooted)? {
                            // A sealed file fetched again (it had changed) takes its place.
                            moves.extend(self.move_in(&rooted)?);
                        }
                    }
                    let mut record = rooted(earlier[i].clone(), &prefix);
                    record.plan_index = local.plan_index;
                    // What this run met on the way (a file fetched again) is the run's to tell.
                    for warning in local.warnings {
                        if !record.warnings.contains(&warning) {
                            record.warnings.push(warning);
                        }
                    }
                    plan.settled.push((position, record));
                }
                Decision::Reject(targets) => {
                    plan.kept_earlier += 1;
                    let mut attempt = local;
                    let mut aside = 0;
                    for file in &mut attempt.files {
                        let rooted = format!("{prefix}{}", file.path);
                        let from = match self.source(&rooted)? {
                            Source::Staged => Some(self.staged(&rooted)),
                            Source::InPlace => match sealed_hash(&file.path) {
                                None => Some(rooted.clone()),
                                // The sealed file itself: the attempt found it intact.
                                Some(sealed) if sealed == file.sha256 => None,
                                Some(_) if self.holds(&rooted, &file.sha256) => {
                                    vacated.insert(folded(&file.path));
                                    Some(rooted.clone())
                                }
                                Some(_) => None,
                            },
                            Source::Nowhere => None,
                        };
                        match from {
                            Some(from) => {
                                let to = format!("{STATE_DIR}/{REJECTED}/{rooted}");
                                plan.set_aside.push(Move::kept(from, to.clone()));
                                file.path = to;
                                aside += 1;
                            }
                            None => file.path = rooted,
                        }
                    }
                    let kept_ids: Vec<String> = targets
                        .iter()
                        .filter_map(|&i| earlier[i].report_id.clone())
                        .collect();
                    attempt.warnings.push(format!(
                        "this attempt failed, so {label}/ keeps its earlier delivery of this report{}{}",
                        if kept_ids.is_empty() {
                            String::new()
                        } else {
                            format!(" (report {})", kept_ids.join(", "))
                        },
                        if aside > 0 {
                            format!("; the files of this attempt are in {STATE_DIR}/{REJECTED}/")
                        } else {
                            String::new()
                        }
                    ));
                    rejected_attempts.push((plan.settled.len(), targets));
                    plan.settled.push((position, attempt));
                }
                Decision::Accept(targets) => {
                    for (at, file) in local.files.iter().enumerate() {
                        let rooted = format!("{prefix}{}", file.path);
                        match self.source(&rooted)? {
                            Source::Staged => moves.extend(self.move_in(&rooted)?),
                            Source::InPlace => match sealed_hash(&file.path) {
                                Some(sealed) if sealed != file.sha256 => {
                                    if self.holds(&rooted, &file.sha256) {
                                        strays.push((accepted.len(), at));
                                    } else if refusal.is_none() {
                                        refusal = Some(PeriodError::Lost {
                                            path: rooted,
                                            label: label.to_owned(),
                                            why: "other bytes are at its path",
                                        });
                                    }
                                }
                                _ => {}
                            },
                            Source::Nowhere => {
                                if refusal.is_none() {
                                    refusal = Some(PeriodError::Lost {
                                        path: rooted,
                                        label: label.to_owned(),
                                        why: "it is missing",
                                    });
                                }
                            }
                        }
                    }
                    let mut warnings = Vec::new();
                    for &i in &targets {
                        let other = &earlier[i];
                        if identity(other) != identity(&local) {
                            warnings.push(format!(
                                "this report's files have the paths of the earlier {} / {} report of this tenant in {label}/ (report {}), so it replaces that record; its files are in {STATE_DIR}/{SUPERSEDED}/{label}/",
                                other.kind,
                                other.level,
                                other.report_id.as_deref().unwrap_or("none")
                            ));
                        }
                    }
                    accepted.push(Accepted {
                        position,
                        warnings,
                        key: (local.tenant_name, local.tenant_id, local.kind, local.level),
                        ok: local.status == Status::Ok,
                    });
                }
            }
        }

        // Files only a replaced record had step aside; the rest are taken over by new files.
        let staying = || {
            earlier
                .iter()
                .enumerate()
                .filter(|(i, _)| !replaced.contains(i))
                .map(|(_, r)| Ok(std::borrow::Cow::Borrowed(r)))
                .chain(accepted.iter().map(|a| {
                    self.local(run, a.position, &prefix)
                        .map(std::borrow::Cow::Owned)
                }))
        };
        // Most periods list each path once and replace nothing: then a hash per path shows it,
        // where the paths themselves would be held for every report of the period. Only when
        // two hashes meet, or replaced records' files must be looked up, are the paths kept.
        let hashes = std::collections::hash_map::RandomState::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut distinct = true;
        for report in staying() {
            for file in &report?.files {
                distinct &= seen.insert(std::hash::BuildHasher::hash_one(
                    &hashes,
                    folded(&file.path),
                ));
            }
        }
        drop(seen);
        let mut listed: HashMap<String, String> = HashMap::new();
        if !distinct || !replaced.is_empty() {
            for report in staying() {
                for file in &report?.files {
                    if listed
                        .insert(folded(&file.path), file.path.clone())
                        .is_some()
                        && refusal.is_none()
                    {
                        refusal = Some(PeriodError::Twice {
                            label: label.to_owned(),
                            path: format!("{prefix}{}", file.path),
                        });
                    }
                }
            }
        }
        for &i in &replaced {
            for file in &earlier[i].files {
                let rooted = format!("{prefix}{}", file.path);
                if !listed.contains_key(&folded(&file.path))
                    && existing_inside(self.dir, &rooted)
                        .map_err(|source| PeriodError::Look {
                            path: rooted.clone(),
                            source,
                        })?
                        .is_some()
                {
                    moves.push(Move::undone(
                        rooted.clone(),
                        format!("{STATE_DIR}/{SUPERSEDED}/{rooted}"),
                    ));
                }
            }
        }

        let changed = self
            .earlier
            .as_ref()
            .is_none_or(|earlier| self.upgraded || earlier.billing_rule != run.billing_rule)
            || !accepted.is_empty();
        // Earlier records the period keeps and re-seals: their files must be as sealed, or the
        // new seal would vouch for bytes nobody delivered. Hashing costs a read of each, so
        // only when the period is rewritten, or for the delivery a failed attempt leaves in
        // place (the attempt's record then says what is wrong with it).
        let attempted: HashSet<usize> = rejected_attempts
            .iter()
            .flat_map(|(_, targets)| targets.iter().copied())
            .collect();
        let kept_records = earlier.iter().enumerate().filter(|(i, _)| {
            !replaced.contains(i) && !kept.contains(i) && (changed || attempted.contains(i))
        });
        let mut damaged: HashMap<usize, Vec<(String, &'static str)>> = HashMap::new();
        for (i, report) in kept_records {
            for file in &report.files {
                let rooted = format!("{prefix}{}", file.path);
                let state = if vacated.contains(&folded(&file.path)) {
                    Some("is missing (this run's failed attempt had been saved in its place)")
                } else {
                    match hash_inside(self.dir, &rooted) {
                        Ok(found) if found == file.sha256 => None,
                        Ok(_) => Some("is no longer what it recorded"),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => Some("is missing"),
                        Err(_) => Some("cannot be read"),
                    }
                };
                if let Some(state) = state {
                    damaged.entry(i).or_default().push((rooted, state));
                }
            }
        }
        if changed && refusal.is_none() {
            let first = damaged.iter().min_by_key(|(i, _)| **i);
            if let Some((&i, files)) = first
                && let Some((path, state)) = files.first()
            {
                let report = &earlier[i];
                refusal = Some(PeriodError::Damaged {
                    path: path.clone(),
                    tenant: report.tenant_name.clone(),
                    kind: report.kind,
                    level: report.level,
                    label: label.to_owned(),
                    state,
                });
            }
        }
        // A failed attempt leaves the earlier delivery in place: if that is damaged too, the
        // attempt's record says so, and what would mend it.
        for (slot, targets) in &rejected_attempts {
            for i in targets {
                for (path, state) in damaged.get(i).into_iter().flatten() {
                    plan.settled[*slot].1.warnings.push(format!(
                        "{path} of the earlier delivery {state}: restore it (e.g. `git checkout -- {path}`), or run this report again once it can succeed, so that its new delivery replaces it"
                    ));
                }
            }
        }

        if let Some(refusal) = refusal {
            // Nothing of the period moves, but the run's own files must not stay under a
            // sealed name, where they would pass for the sealed delivery; and the run's record
            // must not pass for what the period holds.
            for (slot, made) in accepted.iter().enumerate() {
                let report = made.record(self, run, &prefix)?;
                let mut record = rooted(report.clone(), &prefix);
                let mut aside = false;
                for &(_, at) in strays.iter().filter(|(s, _)| *s == slot) {
                    let from = format!("{prefix}{}", report.files[at].path);
                    let to = format!("{STATE_DIR}/{REJECTED}/{from}");
                    plan.set_aside.push(Move::kept(from, to.clone()));
                    record.files[at].path = to;
                    aside = true;
                }
                record.warnings.push(format!(
                    "{label}/ was not written (this run's error says why), so this delivery is not in the trail{}",
                    if aside {
                        format!("; its files are in {STATE_DIR}/{REJECTED}/, not under the sealed names")
                    } else {
                        String::new()
                    }
                ));
                plan.settled.push((made.position, record));
            }
            return Err(refusal);
        }

        // The run's records by their key alone, read once more as the new record is written.
        let mut entries: Vec<Entry> = earlier
            .iter()
            .enumerate()
            .filter(|(i, _)| !replaced.contains(i))
            .map(|(_, report)| Entry::Earlier(report))
            .chain(accepted.iter().map(Entry::Run))
            .collect();
        entries.sort_by(|a, b| a.key().cmp(&b.key()));
        let reports = entries.len();
        let ok = entries.iter().filter(|entry| entry.ok()).count();
        if !changed {
            return Ok(Change {
                record: None,
                made: Vec::new(),
                moves,
                reports,
                ok,
            });
        }
        let made = entries.iter().map(Entry::position).collect();
        let mut log = ReportLog::with_slots(0).map_err(PeriodError::Log)?;
        for entry in entries {
            match entry {
                Entry::Earlier(report) => log.push(report),
                Entry::Run(made) => log.push(&made.record(self, run, &prefix)?),
            }
            .map_err(PeriodError::Log)?;
        }
        let record = RunResult {
            manifest_version: run.manifest_version,
            tool: run.tool.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            as_of: run.as_of,
            job: run.job.clone(),
            base_url: run.base_url.clone(),
            reports: log,
            shard: run.shard,
            discovery: Vec::new(),
            derived_files: Vec::new(),
            billing_rule: run.billing_rule.clone(),
            period_folder: Some(label.to_owned()),
            trail: None,
        };
        Ok(Change {
            record: Some(record),
            made,
            moves,
            reports,
            ok,
        })
    }

    /// The run's record of the report at `position`, its paths relative to the period.
    fn local(
        &self,
        run: &RunResult,
        position: usize,
        prefix: &str,
    ) -> Result<ReportResult, PeriodError> {
        let report = run.reports.get(position).map_err(PeriodError::Log)?;
        let first = report.files.first().map(|f| f.path.clone());
        relative_to(report, prefix).ok_or_else(|| PeriodError::Outside {
            label: self.label.to_owned(),
            path: first.unwrap_or_default(),
        })
    }

    /// The renames that move the staged file of `rooted` into place, the bytes there stepping
    /// aside rather than vanishing.
    fn move_in(&self, rooted: &str) -> Result<Vec<Move>, PeriodError> {
        let mut moves = Vec::new();
        let there = existing_inside(self.dir, rooted).map_err(|source| PeriodError::Look {
            path: rooted.to_owned(),
            source,
        })?;
        if there.is_some() {
            moves.push(Move::undone(
                rooted.to_owned(),
                format!("{STATE_DIR}/{SUPERSEDED}/{rooted}"),
            ));
        }
        moves.push(Move::undone(self.staged(rooted), rooted.to_owned()));
        Ok(moves)
    }
}

/// Rewrites the period `label` of `dir` as planned: its records aside, the renames `moves`,
/// then the new delivery `record` (`sections` as [`crate::output::write_delivery`] takes them).
/// When any step fails, the period is put back as it was. Returns the record as written and
/// what its `billing.csv` holds.
pub(super) fn rewrite(
    dir: &Path,
    label: &str,
    moves: &[Move],
    record: RunResult,
    sections: impl FnOnce(&Path) -> Vec<String>,
) -> Result<(RunResult, Option<BillingSummary>), PeriodError> {
    let prepared = crate::disk::paths::ensure_dir_inside(dir, label).and_then(|period_dir| {
        intent::put_records_aside(dir, label)?;
        kill_point("records aside");
        for mv in moves {
            intent::do_move(dir, mv)?;
            kill_point("move");
        }
        Ok(period_dir)
    });
    let failed = match prepared {
        Ok(period_dir) => match crate::output::write_delivery(&period_dir, record, sections) {
            Ok(written) => return Ok(written),
            // Its SHA256SUMS written (it comes last, and the old one was put aside), the
            // delivery lists what did get written: a seal of that beats none, as in a first run.
            Err(source)
                if existing_inside(dir, &format!("{label}/{SHA256SUMS}")).is_ok_and(|found| {
                    found.is_some_and(|path| fs::symlink_metadata(path).is_ok_and(|m| m.is_file()))
                }) =>
            {
                return Err(PeriodError::Partly {
                    label: label.to_owned(),
                    source,
                });
            }
            Err(source) => source,
        },
        Err(source) => source,
    };
    Err(match intent::roll_back(dir, label, moves) {
        Ok(()) => PeriodError::Write {
            label: label.to_owned(),
            source: failed,
        },
        Err(undo) => PeriodError::Stuck {
            label: label.to_owned(),
            source: failed,
            undo,
        },
    })
}
