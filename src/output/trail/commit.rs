//! Writing a run into the trail: every period planned and checked first (see [`super::period`]),
//! then the commit's intent, then the periods, the root records, and last the root seal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::intent::{self, Intent, IntentPeriod};
use super::legacy::Legacy;
use super::period::{self, Change, PeriodRun};
use super::root::{self, Root};
use super::{CommitError, CommitOptions, LEGACY, Trail, open, rooted};
use crate::output::{SHA256SUMS, compare, kill_point};
use crate::results::{PeriodEntry, PeriodOutcome, RunResult, TrailRecord};
use crate::state::{STATE_DIR, staging_dir};

/// Removes the folders a commit emptied in `dir` (the staging folder), bottom up, never
/// following a symbolic link. Returns whether `dir` itself went.
fn prune_empty(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        if !(is_dir && prune_empty(&entry.path())) {
            empty = false;
        }
    }
    empty && fs::remove_dir(dir).is_ok()
}

impl Trail {
    /// Writes `run` (paths relative to the folder) into the trail: each period it covers is
    /// planned and checked, then (after the commit's intent is on disk) written, then the root
    /// records, and last the root `SHA256SUMS`. Returns the run's record as written to the root
    /// `manifest.json`.
    pub(crate) fn commit(
        mut self,
        mut run: RunResult,
        options: &CommitOptions,
    ) -> Result<RunResult, CommitError> {
        fs::create_dir_all(&self.dir).map_err(|source| CommitError::Create {
            path: self.dir.clone(),
            source,
        })?;
        let mut positions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (position, report) in run.reports.iter().enumerate() {
            positions
                .entry(report.map_err(CommitError::Log)?.period.label())
                .or_default()
                .push(position);
        }
        let mut labels: BTreeSet<String> = positions.keys().cloned().collect();
        let mut notes = std::mem::take(&mut self.notes);
        let legacy = self.legacy.take();
        if let Some(legacy) = &legacy {
            labels.extend(legacy.periods.keys().cloned());
            notes.push(format!(
                "This folder was upgraded from the single-run layout: the reports of {} now form period deliveries, each with its own SHA256SUMS; the earlier root SHA256SUMS, manifest.json, summary.md and billing.csv are kept in {STATE_DIR}/{LEGACY}/.",
                crate::output::and_list(&legacy.periods.keys().cloned().collect::<Vec<_>>(), 12)
            ));
        }

        // Every period is planned and checked before anything in the trail changes.
        let mut plans = Vec::new();
        for label in &labels {
            let earlier = match self.earlier.remove(label) {
                Some(record) => Some(record),
                None => legacy.as_ref().and_then(|l| l.record_of(label)),
            };
            let period = PeriodRun {
                dir: &self.dir,
                label,
                earlier,
                upgraded: legacy
                    .as_ref()
                    .is_some_and(|l| l.periods.contains_key(label)),
                positions: positions.get(label).map(Vec::as_slice).unwrap_or_default(),
            };
            plans.push((label.clone(), period.plan(&run)));
        }
        // The run's own files never stay under a sealed name, whatever becomes of the period.
        let mut kept_earlier = BTreeMap::new();
        for (label, plan) in &mut plans {
            for mv in &plan.set_aside {
                if let Err(e) = intent::do_move(&self.dir, mv) {
                    tracing::warn!("cannot put {} aside: {e}", mv.from);
                }
            }
            for (position, report) in plan.settled.drain(..) {
                run.reports
                    .set(position, &report)
                    .map_err(CommitError::Log)?;
            }
            kept_earlier.insert(label.clone(), plan.kept_earlier);
        }
        let legacy_moves = match &legacy {
            Some(_) => {
                let refused = plans.iter().find_map(|(label, plan)| {
                    plan.outcome
                        .as_ref()
                        .err()
                        .map(|error| format!("{label}/: {error}"))
                });
                let moves = Legacy::moves(&self.dir);
                if let Some(reason) = refused.or(moves.as_ref().err().cloned()) {
                    return Err(CommitError::Upgrade { reason });
                }
                moves.unwrap_or_default()
            }
            None => Vec::new(),
        };

        // The intent, durable before the first record of any period changes.
        let mut intent = Intent {
            root_seal: None,
            upgrade: legacy.is_some(),
            periods: plans
                .iter()
                .filter_map(|(label, plan)| match &plan.outcome {
                    Ok(change) if change.record.is_some() => Some(IntentPeriod {
                        folder: label.clone(),
                        moves: change.moves.clone(),
                    }),
                    _ => None,
                })
                .collect(),
            legacy: legacy_moves,
        };
        let intended = !intent.periods.is_empty() || intent.upgrade;
        if intended {
            let path = self.dir.join(STATE_DIR);
            let recorded = Intent::remove(&self.dir)
                .and_then(|()| intent::root_seal(&self.dir))
                .and_then(|seal| {
                    intent.root_seal = seal;
                    intent.write(&self.dir)
                });
            if let Err(source) = recorded {
                return Err(CommitError::Intent { path, source });
            }
            kill_point("intent");
        }

        let mut entries = Vec::new();
        let mut sections = Vec::new();
        let mut billing = Vec::new();
        let mut failures = Vec::new();
        for (label, plan) in plans {
            let change = match plan.outcome {
                Ok(change) => change,
                Err(error) => {
                    tracing::error!("cannot write the period {label}: {error}");
                    failures.push(format!("{label}/ ({error})"));
                    continue;
                }
            };
            let Change {
                record,
                made,
                moves,
                reports,
                ok,
            } = change;
            let prefix = format!("{label}/");
            let refused = self.comparison_refused(&label, record.is_some());
            if let Some(note) = &refused {
                tracing::warn!("{note}");
                notes.push(note.clone());
            }
            // The record being written is not on disk yet when its delivery's summary is made.
            let facts = match &record {
                Some(record) => {
                    Some(compare::PeriodFacts::of_record(record).map_err(CommitError::Log)?)
                }
                None => None,
            };
            let compare = |dir: &Path| {
                refused
                    .is_none()
                    .then(|| compare::changes_for(dir, &label, &options.compare, facts.clone()))
                    .flatten()
            };
            let (outcome, changes) = match record {
                None => {
                    // A sealed file fetched again because it had changed takes its place.
                    for mv in &moves {
                        if let Err(e) = intent::do_move(&self.dir, mv) {
                            tracing::warn!("cannot move {} into place: {e}", mv.from);
                        }
                    }
                    (PeriodOutcome::Unchanged, compare(&self.dir))
                }
                Some(record) => {
                    let mut found = None;
                    let result = period::rewrite(&self.dir, &label, &moves, record, |_| {
                        found = compare(&self.dir);
                        found
                            .iter()
                            .map(|changes| compare::render_section(changes, &options.compare))
                            .collect()
                    });
                    match result {
                        Ok((delivery, summary)) => {
                            // The run's record gets what writing the delivery found (DR compute
                            // points, the warnings of billing.csv).
                            for (slot, position) in made.iter().enumerate() {
                                if let Some(position) = *position {
                                    let log = |e| CommitError::Log(e);
                                    let mut report =
                                        rooted(delivery.reports.get(slot).map_err(log)?, &prefix);
                                    report.plan_index =
                                        run.reports.get(position).map_err(log)?.plan_index;
                                    run.reports.set(position, &report).map_err(log)?;
                                }
                            }
                            let seal = format!("{label}/{SHA256SUMS}");
                            if let Ok(sha256) = open::hash_inside(&self.dir, &seal) {
                                self.sealed.insert(seal, sha256);
                            }
                            billing.extend(summary);
                            (PeriodOutcome::Written, found)
                        }
                        Err(error @ period::PeriodError::Partly { .. }) if legacy.is_none() => {
                            // Sealed as far as it was written; the root seals it as it is.
                            tracing::error!("cannot write the period {label}: {error}");
                            failures.push(format!("{label}/ ({error})"));
                            continue;
                        }
                        Err(error) => {
                            if legacy.is_some() {
                                let reason = format!("{label}/: {error}");
                                return Err(self.undo_upgrade(&intent, reason));
                            }
                            tracing::error!("cannot write the period {label}: {error}");
                            failures.push(format!("{label}/ ({error})"));
                            // Put back as it was: no longer the commit's to settle.
                            intent.periods.retain(|p| p.folder != label);
                            if let Err(e) = intent.write(&self.dir) {
                                tracing::warn!("cannot update the commit's intent: {e}");
                            }
                            continue;
                        }
                    }
                }
            };
            // What changed since the previous period: in the run's summary too, and its warnings.
            if let Some(changes) = changes {
                compare::warn(&mut run, &changes, &options.compare).map_err(CommitError::Log)?;
                sections.push(compare::render_section(&changes, &options.compare));
            }
            entries.push(PeriodEntry {
                folder: label.clone(),
                outcome,
                reports,
                ok,
                kept_earlier: kept_earlier.get(&label).copied().unwrap_or_default(),
            });
        }
        for mv in &intent.legacy {
            if let Err(e) = intent::do_move(&self.dir, mv) {
                let reason = format!("cannot keep the single-run records in {LEGACY}/: {e}");
                return Err(self.undo_upgrade(&intent, reason));
            }
        }
        kill_point("legacy");

        let record = TrailRecord {
            periods: entries,
            notes,
        };
        sections.insert(0, root::trail_section(&record));
        sections.extend(options.sections.iter().cloned());
        run.trail = Some(record);
        run.period_folder = None;
        run.derived_files.clear();
        let root = Root {
            covered: &labels,
            sealed: std::mem::take(&mut self.sealed),
            sections: &sections,
            billing: root::merged_billing(billing),
        };
        if let Err(source) = root.write(&self.dir, &run) {
            if legacy.is_some() {
                let reason = format!("cannot write the root records: {source}");
                return Err(self.undo_upgrade(&intent, reason));
            }
            // The intent stays: the next run seals the periods written here.
            return Err(CommitError::Root {
                dir: self.dir.clone(),
                source,
            });
        }
        kill_point("root SHA256SUMS");
        if intended {
            for period in &intent.periods {
                if let Err(e) = intent::keep_replaced_records(&self.dir, &period.folder) {
                    tracing::warn!("cannot keep the replaced records of {}: {e}", period.folder);
                }
            }
            if let Err(e) = Intent::remove(&self.dir) {
                tracing::warn!("cannot remove the finished commit's intent: {e}");
            }
        }
        prune_empty(&staging_dir(&self.dir));
        // Nothing but the commit's own scratch was there: no empty hidden folder stays behind.
        let _ = fs::remove_dir(self.dir.join(STATE_DIR));
        if failures.is_empty() {
            Ok(run)
        } else {
            Err(CommitError::Periods { failures })
        }
    }

    /// Why the period `label` gets no "Changes since" section, if it gets none: the previous
    /// period's `billing.csv` (and this one's, when this run does not write it) must be sealed.
    fn comparison_refused(&self, label: &str, written: bool) -> Option<String> {
        let previous = compare::previous_of(&self.dir, label)?;
        let why = open::unsealed_billing(&self.dir, &previous, &self.sealed).or_else(|| {
            (!written)
                .then(|| open::unsealed_billing(&self.dir, label, &self.sealed))
                .flatten()
        })?;
        Some(format!(
            "{label} has no \"Changes since {previous}\" section: {why}, and numbers that no seal vouches for are not compared"
        ))
    }

    /// Undoes an upgrade that failed half-way: every period written, then the single-run root
    /// records put back, so the folder is as it was.
    fn undo_upgrade(&self, intent: &Intent, mut reason: String) -> CommitError {
        for period in intent.periods.iter().rev() {
            if let Err(e) = intent::roll_back(&self.dir, &period.folder, &period.moves) {
                let _ = write!(
                    reason,
                    "; undoing {}/ failed too ({e}), and the next run into this folder finishes undoing it",
                    period.folder
                );
                return CommitError::Upgrade { reason };
            }
        }
        if let Err(e) = intent::undo_legacy(&self.dir, &intent.legacy) {
            reason.push_str(&format!(
                "; putting the single-run records back failed too ({e}), and the next run into this folder finishes undoing it"
            ));
            return CommitError::Upgrade { reason };
        }
        if let Err(e) = Intent::remove(&self.dir) {
            tracing::warn!("cannot remove the undone commit's intent: {e}");
        }
        CommitError::Upgrade { reason }
    }
}
