//! A commit that a kill cannot leave half-way.
//!
//! Rewriting a period takes several steps (files moved in and aside, then `billing.csv`,
//! `summary.md`, `manifest.json` and last `SHA256SUMS`, each atomically), and the root
//! `SHA256SUMS` that seals the periods is written only after all of them. Between the two, the
//! trail disagrees with itself, for seconds when `billing.csv` re-reads large reports. So before
//! the first record of any period changes, the commit writes (and syncs) its intent:
//! `.acronis-reports/commit.json`, naming each period it rewrites and every rename it makes,
//! and the old records of each period are moved (not copied) to `.acronis-reports/commit/
//! <period>/`, with a mark once all are there. The next [`super::Trail::open`] that finds the
//! intent settles each period it names:
//!
//! - the root `SHA256SUMS` is not the one the commit began with: the commit had finished but for
//!   tidying up;
//! - the period's old records were all put aside and its new `SHA256SUMS` is there, whole, with
//!   every file matching it: the new delivery is adopted, and the root sealed over it;
//! - otherwise (stopped before, during or after the renames, or while writing the records):
//!   the renames are undone and the old records put back, so the period is its sealed delivery
//!   again, and the run rewrites it;
//! - an upgrade of a single-run folder is undone as a whole unless the root was sealed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::open::{MAX_RECORD_BYTES, hash_inside, period_holds, read_seal};
use super::{LEGACY, REJECTED, SUPERSEDED, TrailError};
use crate::disk::paths::{ensure_dir_inside, existing_inside};
use crate::output::billing::BILLING_CSV;
use crate::output::{MANIFEST, SHA256SUMS, SUMMARY, checksums};
use crate::period::Period;
use crate::state::{STAGING_DIR, STATE_DIR};

/// Under the state folder: the commit in progress.
const INTENT: &str = "commit.json";

/// Whether a commit into `dir` was interrupted and waits for the next run or merge to settle it.
pub(crate) fn pending(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join(STATE_DIR).join(INTENT)).is_ok()
}
/// Under the state folder: the old records of each period being rewritten.
const BACKUPS: &str = "commit";
/// In a period's backup folder: every old record has been put aside.
const COMPLETE: &str = "records-put-aside";
/// A period's records, in the order the backup and the rollback take them.
const RECORDS: [&str; 4] = [BILLING_CSV, SUMMARY, MANIFEST, SHA256SUMS];

/// One rename of a commit, both paths relative to the output folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Move {
    pub(crate) from: String,
    pub(crate) to: String,
    /// Whether undoing the commit moves it back. A failed attempt's file put aside is not: it
    /// must never return under a sealed name.
    pub(crate) undo: bool,
}

impl Move {
    pub(crate) fn undone(from: String, to: String) -> Self {
        Self {
            from,
            to,
            undo: true,
        }
    }

    pub(crate) fn kept(from: String, to: String) -> Self {
        Self {
            from,
            to,
            undo: false,
        }
    }
}

/// What a commit is about to do, as `commit.json` records it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Intent {
    /// The SHA-256 of the root `SHA256SUMS` when the commit began, if there was one.
    pub(crate) root_seal: Option<String>,
    /// Whether the commit upgrades a folder of the single-run layout (all or nothing).
    pub(crate) upgrade: bool,
    pub periods: Vec<IntentPeriod>,
    /// An upgrade's renames of the single-run root records into `legacy/`.
    pub(crate) legacy: Vec<Move>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct IntentPeriod {
    pub folder: String,
    pub(crate) moves: Vec<Move>,
}

fn intent_path(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR).join(INTENT)
}

/// Where the old records of the periods being rewritten wait.
pub(super) fn backups(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR).join(BACKUPS)
}

fn backup_of(label: &str) -> String {
    format!("{STATE_DIR}/{BACKUPS}/{label}")
}

impl Intent {
    /// Writes the intent and makes it durable, before anything it names changes.
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        ensure_dir_inside(dir, STATE_DIR)?;
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        crate::disk::write_atomic(&intent_path(dir), &text)
    }

    /// Removes the intent (the commit is settled), then the old records it kept.
    pub(crate) fn remove(dir: &Path) -> io::Result<()> {
        match fs::remove_file(intent_path(dir)) {
            Ok(()) => crate::disk::sync_dir(&dir.join(STATE_DIR)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match fs::remove_dir_all(backups(dir)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads the intent an interrupted commit left, if any. Every path in it is checked: the
    /// file is in the output folder, and what it names is moved.
    fn read(dir: &Path) -> Result<Option<Self>, TrailError> {
        let path = intent_path(dir);
        let refused = |reason: String| TrailError::Interrupted {
            path: path.clone(),
            reason,
        };
        let bytes = match crate::disk::paths::read_regular(&path, MAX_RECORD_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(refused(e.to_string())),
        };
        let intent: Self = serde_json::from_slice(&bytes).map_err(|e| refused(e.to_string()))?;
        for period in &intent.periods {
            if Period::from_label(&period.folder).is_none() {
                return Err(refused(format!("{:?} is not a period", period.folder)));
            }
            let period_root = format!("{}/", period.folder);
            let inside = |path: &str| {
                crate::verify::normalise(path).as_deref() == Some(path)
                    && (path.starts_with(&period_root)
                        || [STAGING_DIR, SUPERSEDED, REJECTED]
                            .iter()
                            .any(|area| path.starts_with(&format!("{STATE_DIR}/{area}/"))))
            };
            if let Some(bad) = period
                .moves
                .iter()
                .find(|m| !inside(&m.from) || !inside(&m.to))
            {
                return Err(refused(format!(
                    "it would move {:?} to {:?}, which is not a rename the trail makes",
                    bad.from, bad.to
                )));
            }
        }
        let legacy_records = [SHA256SUMS, MANIFEST, SUMMARY, BILLING_CSV];
        if let Some(bad) = intent.legacy.iter().find(|m| {
            !legacy_records.contains(&m.from.as_str())
                || m.to != format!("{STATE_DIR}/{LEGACY}/{}", m.from)
        }) {
            return Err(refused(format!(
                "it would move {:?} to {:?}, which is not a rename the trail makes",
                bad.from, bad.to
            )));
        }
        Ok(Some(intent))
    }
}

/// Renames `mv.from` to `mv.to` inside `dir`, creating the folders on the way but never
/// through a symbolic link. Nothing at `from` is nothing to do.
pub(super) fn do_move(dir: &Path, mv: &Move) -> io::Result<()> {
    let Some(from) = existing_inside(dir, &mv.from)? else {
        return Ok(());
    };
    let to = place(dir, &mv.to)?;
    fs::rename(&from, &to).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot move {} to {}: {e}", from.display(), to.display()),
        )
    })?;
    for folder in [to.parent(), from.parent()].into_iter().flatten() {
        crate::disk::sync_dir(folder);
    }
    Ok(())
}

/// The path of `relative` inside `dir`, its folder created (never through a link).
fn place(dir: &Path, relative: &str) -> io::Result<PathBuf> {
    match relative.rsplit_once('/') {
        Some((folder, name)) => Ok(ensure_dir_inside(dir, folder)?.join(name)),
        None => Ok(dir.join(relative)),
    }
}

/// Whether something other than a folder is at `relative` (a file, or a link in its place).
fn is_file_like(dir: &Path, relative: &str) -> io::Result<bool> {
    Ok(match existing_inside(dir, relative)? {
        Some(path) => !fs::symlink_metadata(path)?.is_dir(),
        None => false,
    })
}

/// Moves the records of the period `label` aside (to its backup folder), then marks that all
/// of them are there: from then on a `SHA256SUMS` in the period can only be the new one.
pub(super) fn put_records_aside(dir: &Path, label: &str) -> io::Result<()> {
    let backup = backup_of(label);
    let folder = ensure_dir_inside(dir, &backup)?;
    for name in RECORDS {
        let here = format!("{label}/{name}");
        // A folder of that name is no record: writing the record over it fails, and says so.
        if is_file_like(dir, &here)? {
            do_move(dir, &Move::undone(here, format!("{backup}/{name}")))?;
        }
    }
    fs::File::create(folder.join(COMPLETE))?.sync_all()?;
    crate::disk::sync_dir(&folder);
    Ok(())
}

/// Keeps the records a finished commit replaced in the period `label` with the files it
/// replaced, in `superseded/<label>/`: the trail's history (git) has them too, but a folder
/// that is not in one keeps what the earlier delivery said.
pub(super) fn keep_replaced_records(dir: &Path, label: &str) -> io::Result<()> {
    let backup = backup_of(label);
    for name in RECORDS {
        do_move(
            dir,
            &Move::undone(
                format!("{backup}/{name}"),
                format!("{STATE_DIR}/{SUPERSEDED}/{label}/{name}"),
            ),
        )?;
    }
    Ok(())
}

/// Undoes what a commit did to the period `label`: its old records back (the new ones
/// removed), then the renames `moves` undone in reverse order. Each step looks at what is
/// there, so it can follow a commit stopped at any point, and can be repeated.
pub(super) fn roll_back(dir: &Path, label: &str, moves: &[Move]) -> io::Result<()> {
    let backup = backup_of(label);
    let complete = existing_inside(dir, &format!("{backup}/{COMPLETE}"))?.is_some();
    for name in RECORDS {
        let here = format!("{label}/{name}");
        match existing_inside(dir, &format!("{backup}/{name}"))? {
            Some(saved) => {
                let to = place(dir, &here)?;
                fs::rename(&saved, &to)?;
            }
            // The period had no such record: whatever is there now is the commit's.
            None if complete && is_file_like(dir, &here)? => {
                if let Some(new) = existing_inside(dir, &here)? {
                    fs::remove_file(new)?;
                }
            }
            None => {}
        }
    }
    for mv in moves.iter().rev().filter(|m| m.undo) {
        if existing_inside(dir, &mv.to)?.is_some() && existing_inside(dir, &mv.from)?.is_none() {
            do_move(dir, &Move::undone(mv.to.clone(), mv.from.clone()))?;
        }
    }
    crate::disk::sync_dir(&dir.join(label));
    match fs::remove_dir_all(dir.join(&backup)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Puts the single-run root records back from `legacy/`, over what the upgrade wrote.
pub(super) fn undo_legacy(dir: &Path, moves: &[Move]) -> io::Result<()> {
    for mv in moves.iter().rev() {
        if let Some(saved) = existing_inside(dir, &mv.to)? {
            fs::rename(saved, dir.join(&mv.from))?;
        }
    }
    crate::disk::sync_dir(dir);
    Ok(())
}

/// Settles a commit an earlier run left half-way (see the module documentation), and returns
/// what to tell about it in this run's records.
pub(super) fn recover(dir: &Path) -> Result<Vec<String>, TrailError> {
    let Some(intent) = Intent::read(dir)? else {
        return Ok(Vec::new());
    };
    let path = intent_path(dir);
    let failed = |reason: String| TrailError::Interrupted {
        path: path.clone(),
        reason,
    };
    let root = read_seal(&dir.join(SHA256SUMS)).map_err(|e| failed(e.to_string()))?;
    let folders: Vec<String> = intent.periods.iter().map(|p| p.folder.clone()).collect();
    let named = crate::output::and_list(&folders, 12);
    if let Some(seal) = &root
        && intent.root_seal.as_ref() != Some(&seal.sha256)
    {
        // The root was sealed last: all that was left was removing the intent.
        Intent::remove(dir).map_err(|e| failed(e.to_string()))?;
        return Ok(Vec::new());
    }
    if intent.upgrade {
        for period in intent.periods.iter().rev() {
            roll_back(dir, &period.folder, &period.moves)
                .map_err(|e| failed(format!("undoing {}: {e}", period.folder)))?;
        }
        undo_legacy(dir, &intent.legacy).map_err(|e| failed(e.to_string()))?;
        Intent::remove(dir).map_err(|e| failed(e.to_string()))?;
        let note = format!(
            "An earlier run was stopped while it upgraded this folder from the single-run layout ({named}); what it had done was undone, and this run upgraded the folder again."
        );
        tracing::warn!("{note}");
        return Ok(vec![note]);
    }
    let mut lines = root.map(|seal| seal.listed).unwrap_or_default();
    let mut adopted = Vec::new();
    let mut undone = Vec::new();
    for period in &intent.periods {
        let label = &period.folder;
        let complete = existing_inside(dir, &format!("{}/{COMPLETE}", backup_of(label)))
            .map_err(|e| failed(e.to_string()))?
            .is_some();
        let held = if complete {
            period_holds(dir, label)
        } else {
            Err("it was stopped before its records were written".to_owned())
        };
        match held {
            Ok(sha256) => {
                lines.insert(format!("{label}/{SHA256SUMS}"), sha256);
                if let Err(e) = keep_replaced_records(dir, label) {
                    tracing::warn!("cannot keep the replaced records of {label}: {e}");
                }
                adopted.push(label.clone());
            }
            Err(reason) => {
                tracing::warn!("{label}: the interrupted commit is undone: {reason}");
                roll_back(dir, label, &period.moves)
                    .map_err(|e| failed(format!("undoing {label}: {e}")))?;
                undone.push(label.clone());
            }
        }
    }
    if undone.is_empty() {
        // Every period was whole: the commit may have gone on to the root records.
        for name in [MANIFEST, SUMMARY] {
            match hash_inside(dir, name) {
                Ok(sha256) => {
                    lines.insert(name.to_owned(), sha256);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    lines.remove(name);
                }
                Err(e) => return Err(failed(format!("{name}: {e}"))),
            }
        }
    }
    if !adopted.is_empty() {
        crate::disk::write_atomic_with(&dir.join(SHA256SUMS), |out| {
            checksums::write_sorted(
                out,
                lines
                    .iter()
                    .map(|(path, sha256)| (path.as_str(), sha256.as_str()))
                    .collect(),
            )
        })
        .map_err(|e| failed(e.to_string()))?;
    }
    Intent::remove(dir).map_err(|e| failed(e.to_string()))?;
    let mut notes = Vec::new();
    if !adopted.is_empty() {
        notes.push(format!(
            "An earlier run was stopped after it had written {} and before it sealed the root: found whole (every file matches its SHA256SUMS), and now sealed in the root SHA256SUMS.",
            crate::output::and_list(&adopted, 12)
        ));
    }
    if !undone.is_empty() {
        notes.push(format!(
            "An earlier run was stopped while it wrote {}: what it had changed there was undone, back to the sealed delivery (this run writes it again).",
            crate::output::and_list(&undone, 12)
        ));
    }
    for note in &notes {
        tracing::warn!("{note}");
    }
    Ok(notes)
}

/// The SHA-256 of the root `SHA256SUMS` as it is now, for the intent.
pub(super) fn root_seal(dir: &Path) -> io::Result<Option<String>> {
    match crate::disk::paths::read_regular(&dir.join(SHA256SUMS), MAX_RECORD_BYTES) {
        Ok(bytes) => Ok(Some(hex::encode(Sha256::digest(&bytes)))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
