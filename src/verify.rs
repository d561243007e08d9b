//! `acronis-reports verify DIR`: checks an output folder's files against its `SHA256SUMS` and
//! `manifest.json`, the way an auditor would, without trusting anything in the folder to stay
//! inside it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::output::checksums::ChecksumError;
use crate::output::trail::is_period_checksums;
use crate::output::{MANIFEST, SHA256SUMS, SUMMARY};

mod records;

use records::{MAX_RECORD_BYTES, ManifestFile, read_checksums, read_manifest};
pub(crate) use records::{normalise, parse_checksums};

/// Files at the top of the folder that describe the others, or that CI tooling writes beside
/// them; `SHA256SUMS` never lists them.
const UNLISTED_TOP_LEVEL: [&str; 5] = [SHA256SUMS, MANIFEST, SUMMARY, "junit.xml", "outputs.env"];
/// At the top of a trail, the root `SHA256SUMS` lists its `manifest.json` and `summary.md` too.
const UNLISTED_TRAIL_ROOT: [&str; 3] = [SHA256SUMS, "junit.xml", "outputs.env"];

const READ_BUFFER: usize = 256 * 1024;

/// The folder cannot be verified at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The folder to verify does not exist.
    #[error(
        "{} does not exist; point verify at a folder written by `acronis-reports run`",
        path.display()
    )]
    NotFound {
        /// The folder.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A `SHA256SUMS` file is not in `sha256sum` format.
    #[error("{} is not in sha256sum format: {source}", path.display())]
    Checksums {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: ChecksumError,
    },
    /// A `SHA256SUMS` file lists a path that is not a relative path inside the folder.
    #[error(
        "{} lists {}, which is not a relative path inside the folder; refusing to verify",
        path.display(),
        shown(entry)
    )]
    UnsafePath {
        /// The `SHA256SUMS` file.
        path: PathBuf,
        /// The path it lists.
        entry: String,
    },
    /// A `SHA256SUMS` file lists a path twice.
    #[error("{} lists {} more than once", path.display(), shown(entry))]
    Duplicate {
        /// The `SHA256SUMS` file.
        path: PathBuf,
        /// The path listed twice.
        entry: String,
    },
    /// A `manifest.json` cannot be read as a manifest of this tool.
    #[error("{} is not a valid manifest: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The trail's root manifest does not list the period asked for.
    #[error(
        "{} lists no period {period}; {}",
        path.display(),
        if listed.is_empty() { "it lists none".to_owned() } else { format!("it lists {}", listed.join(", ")) }
    )]
    NoSuchPeriod {
        /// The root manifest.
        path: PathBuf,
        /// The period asked for.
        period: String,
        /// The periods it does list.
        listed: Vec<String>,
    },
    /// The trail's root `SHA256SUMS` is missing although period folders are there.
    #[error(
        "{} has no SHA256SUMS, but holds the period folders {}: the trail's root seal is missing; restore it from your copy (e.g. `git checkout -- {}`); each period can still be checked alone, e.g. `acronis-reports verify {}`",
        dir.display(),
        periods.join(", "),
        dir.join(SHA256SUMS).display(),
        dir.join(periods.first().map_or("", String::as_str)).display()
    )]
    NoRootSeal {
        /// The output folder.
        dir: PathBuf,
        /// The period folders found.
        periods: Vec<String>,
    },
    /// A period was asked of a folder of the single-run layout, which has none.
    #[error(
        "{} is a folder of the single-run layout (one SHA256SUMS for everything), so it has no period {period} to check alone; verify it whole, or let the next `run` upgrade it",
        path.display()
    )]
    NotATrail {
        /// The folder.
        path: PathBuf,
        /// The period asked for.
        period: String,
    },
}

/// What verification found. Paths are relative to the folder, with `/` separators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files listed in the `SHA256SUMS` files read.
    pub(crate) checked: usize,
    /// Period folders checked (none for a folder of the single-run layout).
    pub periods: usize,
    /// Listed, but not in the folder.
    pub(crate) missing: Vec<String>,
    /// Listed, but with other content, or no longer a regular file.
    pub(crate) changed: Vec<String>,
    /// In the folder, but not listed.
    pub(crate) extra: Vec<String>,
    /// Where `manifest.json` and `SHA256SUMS` (or the files) disagree, one sentence each.
    pub(crate) manifest_mismatches: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing is missing, changed, extra or mismatched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.changed.is_empty()
            && self.extra.is_empty()
            && self.manifest_mismatches.is_empty()
    }

    /// Adds what was found in the period folder `period`, naming its paths from the root.
    fn absorb(&mut self, found: VerifyReport, period: &str) {
        let rooted = |paths: Vec<String>| paths.into_iter().map(move |p| format!("{period}/{p}"));
        self.checked += found.checked;
        self.missing.extend(rooted(found.missing));
        self.changed.extend(rooted(found.changed));
        self.extra.extend(rooted(found.extra));
        self.manifest_mismatches.extend(
            found
                .manifest_mismatches
                .into_iter()
                .map(|m| format!("{period}: {m}")),
        );
    }

    fn problems(&self) -> usize {
        self.missing.len() + self.changed.len() + self.extra.len() + self.manifest_mismatches.len()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = if self.checked == 1 { "file" } else { "files" };
        let periods = match self.periods {
            0 => String::new(),
            1 => " in 1 period".to_owned(),
            n => format!(" in {n} periods"),
        };
        if self.is_clean() {
            return write!(f, "verified {} {files}{periods}: all match", self.checked);
        }
        let problems = self.problems();
        let noun = if problems == 1 { "problem" } else { "problems" };
        write!(
            f,
            "verified {} {files}{periods}: {problems} {noun}",
            self.checked
        )?;
        for (label, paths) in [
            ("missing", &self.missing),
            ("changed", &self.changed),
            ("extra", &self.extra),
        ] {
            for path in paths {
                write!(f, "\n{label}: {}", shown(path))?;
            }
        }
        for sentence in &self.manifest_mismatches {
            write!(f, "\nmanifest: {sentence}")?;
        }
        Ok(())
    }
}

/// Checks the output folder `dir`: a trail (the root `SHA256SUMS` against the period seals and
/// root records it lists, then every period folder on its own), or a folder of the single-run
/// layout (`SHA256SUMS` and `manifest.json` against every file). Paths in the report are
/// relative to `dir`, so each names its period.
pub fn verify(dir: &Path) -> Result<VerifyReport, VerifyError> {
    verify_selected(dir, None)
}

/// [`verify`] for one period of a trail: the root's line for its `SHA256SUMS`, then the period
/// folder.
pub fn verify_period(dir: &Path, period: &str) -> Result<VerifyReport, VerifyError> {
    verify_selected(dir, Some(period))
}

fn verify_selected(dir: &Path, only: Option<&str>) -> Result<VerifyReport, VerifyError> {
    let root_sums = dir.join(SHA256SUMS);
    let listed = match read_checksums(&root_sums) {
        Err(VerifyError::NotFound { path }) => {
            let periods = sealed_period_folders(dir);
            return Err(if periods.is_empty() {
                VerifyError::NotFound { path }
            } else {
                VerifyError::NoRootSeal {
                    dir: dir.to_owned(),
                    periods,
                }
            });
        }
        other => other?,
    };
    let periods: Vec<String> = listed
        .keys()
        .filter(|path| is_period_checksums(path))
        .map(|path| path[..path.len() - SHA256SUMS.len() - 1].to_owned())
        .collect();
    if !is_trail(dir, &periods)? {
        if let Some(period) = only {
            return Err(VerifyError::NotATrail {
                path: dir.to_owned(),
                period: period.to_owned(),
            });
        }
        // A period folder of a trail, checked on its own, is a delivery like any other.
        let layout = if names_its_period(dir) {
            Layout::Period
        } else {
            Layout::SingleRun
        };
        return verify_folder(dir, &listed, layout, Top::Root);
    }
    let mut report = VerifyReport::default();
    let selected: Vec<&String> = match only {
        Some(period) => {
            let found =
                periods
                    .iter()
                    .find(|p| *p == period)
                    .ok_or_else(|| VerifyError::NoSuchPeriod {
                        path: root_sums.clone(),
                        period: period.to_owned(),
                        listed: periods.clone(),
                    })?;
            let line = format!("{found}/{SHA256SUMS}");
            check_listed(dir, &listed, Some(&line), &mut report, &mut BTreeMap::new())?;
            vec![found]
        }
        None => {
            check_listed(dir, &listed, None, &mut report, &mut BTreeMap::new())?;
            report.extra = unlisted_files(dir, &listed, &UNLISTED_TRAIL_ROOT, &periods, Top::Root)?;
            report.manifest_mismatches = root_record_mismatches(dir, &periods);
            if crate::output::trail::commit_pending(dir) {
                report.manifest_mismatches.push(format!(
                    "a commit into this folder was interrupted ({}/commit.json): the next `acronis-reports run` or `merge` into it settles it; until then the periods it was writing may show as changed",
                    crate::state::STATE_DIR
                ));
            }
            periods.iter().collect()
        }
    };
    for period in selected {
        let folder = dir.join(period);
        let sums = folder.join(SHA256SUMS);
        let period_listed = match read_checksums(&sums) {
            Ok(listed) => listed,
            // Already reported as missing (or changed) by the root's line.
            Err(VerifyError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let mut found = verify_folder(&folder, &period_listed, Layout::Period, Top::Inner)?;
        let named = period_folder_named(&folder);
        // An unreadable record is already a problem of its own (see `verify_folder`).
        let readable = found
            .manifest_mismatches
            .iter()
            .all(|m| !m.starts_with(UNREADABLE));
        if readable && named.as_deref() != Some(period.as_str()) {
            found.manifest_mismatches.push(format!(
                "manifest.json is the record of period folder {}, not of this one",
                named.as_deref().map_or("(none)".to_owned(), shown)
            ));
        }
        report.absorb(found, period);
        report.periods += 1;
    }
    for paths in [&mut report.missing, &mut report.changed, &mut report.extra] {
        paths.sort();
    }
    Ok(report)
}

/// Where the root `manifest.json` (the latest run's record) and the trail disagree: every
/// period it says the run wrote or kept must be sealed in the root `SHA256SUMS`, with as many
/// reports, and as many ok, as that period's own record. A missing or changed root manifest is
/// already reported through its line in the root `SHA256SUMS`.
fn root_record_mismatches(dir: &Path, periods: &[String]) -> Vec<String> {
    let reports_of = |path: &Path| -> Option<(usize, usize)> {
        let bytes = crate::disk::paths::read_regular(path, MAX_RECORD_BYTES).ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        let reports = value.get("reports")?.as_array()?;
        let ok = reports
            .iter()
            .filter(|r| r.get("status").and_then(Value::as_str) == Some("ok"))
            .count();
        Some((reports.len(), ok))
    };
    let Ok(bytes) = crate::disk::paths::read_regular(&dir.join(MANIFEST), MAX_RECORD_BYTES) else {
        return Vec::new();
    };
    let entries = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut root| root.get_mut("trail").map(Value::take))
        .and_then(|trail| serde_json::from_value::<crate::results::TrailRecord>(trail).ok());
    let Some(record) = entries else {
        return vec![
            "the root manifest.json holds no readable trail record (trail.periods)".into(),
        ];
    };
    let mut mismatches = Vec::new();
    for entry in &record.periods {
        let folder = shown(&entry.folder);
        if !periods.contains(&entry.folder) {
            mismatches.push(format!(
                "the root manifest.json records period {folder}, but the root SHA256SUMS does not list {folder}/SHA256SUMS"
            ));
            continue;
        }
        let Some((reports, ok)) = reports_of(&dir.join(&entry.folder).join(MANIFEST)) else {
            continue;
        };
        if (reports, ok) != (entry.reports, entry.ok) {
            mismatches.push(format!(
                "the root manifest.json records {} report(s), {} ok, for period {folder}; its own manifest.json has {reports}, {ok} ok",
                entry.reports, entry.ok
            ));
        }
    }
    mismatches
}

/// The `period_folder` a folder's `manifest.json` names (only a period's record names one).
fn period_folder_named(folder: &Path) -> Option<String> {
    let record = crate::disk::paths::read_regular(&folder.join(MANIFEST), MAX_RECORD_BYTES).ok()?;
    serde_json::from_slice::<Value>(&record)
        .ok()?
        .get("period_folder")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Whether `dir` is a period folder of a trail, verified on its own.
fn names_its_period(dir: &Path) -> bool {
    period_folder_named(dir).is_some()
}

/// The folders in `dir` named like a period that hold a `SHA256SUMS`: what is left of a trail
/// whose root seal is gone.
fn sealed_period_folders(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut periods: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .filter(|name| crate::period::Period::from_label(name).is_some())
        .filter(|name| dir.join(name).join(SHA256SUMS).is_file())
        .collect();
    periods.sort();
    periods
}

/// Whether `dir` is a trail: its root `SHA256SUMS` lists period seals, or its root manifest
/// says so (a trail whose runs all failed before any period was written).
fn is_trail(dir: &Path, periods: &[String]) -> Result<bool, VerifyError> {
    if !periods.is_empty() {
        return Ok(true);
    }
    let path = dir.join(MANIFEST);
    let value: Value = match crate::disk::paths::read_regular(&path, MAX_RECORD_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| VerifyError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(VerifyError::Read { path, source }),
    };
    Ok(value.get("trail").is_some_and(|t| !t.is_null()))
}

/// Which records a folder keeps beside the files its `SHA256SUMS` lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One `SHA256SUMS` for a whole run; `manifest.json` and `summary.md` unlisted.
    SingleRun,
    /// A period's delivery: its `SHA256SUMS` lists `manifest.json` and `summary.md` too.
    Period,
}

/// Where a checked folder sits: hidden entries at the top of the folder verify was pointed at
/// are not the delivery's (the resume state, a `.git`); inside a trail's period they are extra.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Top {
    Root,
    Inner,
}

/// How a mismatch about an unreadable `manifest.json` starts.
const UNREADABLE: &str = "manifest.json cannot be read";

/// Checks one folder's files against its `SHA256SUMS` (`listed`) and `manifest.json`.
fn verify_folder(
    dir: &Path,
    listed: &BTreeMap<String, String>,
    layout: Layout,
    top: Top,
) -> Result<VerifyReport, VerifyError> {
    let mut report = VerifyReport::default();
    // A period's damaged record is that period's problem: the other periods are still checked.
    let manifest = match read_manifest(&dir.join(MANIFEST)) {
        Ok(manifest) => Some(manifest),
        Err(error) if layout == Layout::Period => {
            report
                .manifest_mismatches
                .push(format!("{UNREADABLE}: {error}"));
            None
        }
        Err(error) => return Err(error),
    };
    // Sizes of the files whose content matches SHA256SUMS, to check the manifest's `bytes`.
    let mut sizes = BTreeMap::new();
    check_listed(dir, listed, None, &mut report, &mut sizes)?;
    let (unlisted, records): (&[&str], &[&str]) = match layout {
        Layout::SingleRun => (&UNLISTED_TOP_LEVEL, &[]),
        Layout::Period => (&[SHA256SUMS], &[MANIFEST, SUMMARY]),
    };
    report.extra = unlisted_files(dir, listed, unlisted, &[], top)?;
    for record in records {
        if !listed.contains_key(*record) {
            report.manifest_mismatches.push(format!(
                "SHA256SUMS does not list {record}, so changes to it would go unnoticed"
            ));
        }
    }
    let files: BTreeMap<String, String> = listed
        .iter()
        .filter(|(path, _)| !records.contains(&path.as_str()))
        .map(|(path, sha256)| (path.clone(), sha256.clone()))
        .collect();
    if let Some(manifest) = manifest {
        report
            .manifest_mismatches
            .extend(compare_manifest(&manifest, &files, &sizes));
    }
    Ok(report)
}

/// Hashes the files `listed` names (or only `only`), noting what is missing or changed, and the
/// sizes of the files that match.
fn check_listed(
    dir: &Path,
    listed: &BTreeMap<String, String>,
    only: Option<&str>,
    report: &mut VerifyReport,
    sizes: &mut BTreeMap<String, u64>,
) -> Result<(), VerifyError> {
    for (path, expected) in listed {
        if only.is_some_and(|only| only != path) {
            continue;
        }
        report.checked += 1;
        match inspect(dir, path)? {
            Found::Missing => report.missing.push(path.clone()),
            Found::NotRegular => report.changed.push(path.clone()),
            Found::File { sha256, bytes } if sha256 == *expected => {
                sizes.insert(path.clone(), bytes);
            }
            Found::File { .. } => report.changed.push(path.clone()),
        }
    }
    Ok(())
}

enum Found {
    Missing,
    /// A symlink, folder or device where a file was, or a symlink on the way to it.
    NotRegular,
    File {
        sha256: String,
        bytes: u64,
    },
}

/// Looks a listed file up one component at a time, so that no symbolic link is followed: the
/// folder's content must not lead verify to read anything outside it.
fn inspect(dir: &Path, relative: &str) -> Result<Found, VerifyError> {
    let mut path = dir.to_path_buf();
    let parts: Vec<&str> = relative.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
            Err(source) => return Err(VerifyError::Read { path, source }),
        };
        let last = i + 1 == parts.len();
        if meta.file_type().is_symlink() || (last && !meta.is_file()) {
            return Ok(Found::NotRegular);
        }
        if !last && !meta.is_dir() {
            return Ok(Found::Missing);
        }
    }
    let (sha256, bytes) = hash_file(&path).map_err(|source| VerifyError::Read { path, source })?;
    Ok(Found::File { sha256, bytes })
}

/// SHA-256 (hex) and size of a file, read in a streaming way.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    // Never through a symbolic link, nor a FIFO or device: reading one might never end.
    let mut file = crate::disk::paths::open_regular(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; READ_BUFFER];
    let mut total = 0u64;
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Everything in the folder that `SHA256SUMS` does not list, except the records `unlisted` at
/// its top, the period folders `periods` (checked on their own), hidden entries at the top of
/// the folder verify was pointed at (the resume state, a `.git`), and the temporary files of a
/// run that was killed. Symbolic links are reported, never followed.
fn unlisted_files(
    dir: &Path,
    listed: &BTreeMap<String, String>,
    unlisted: &[&str],
    periods: &[String],
    top_of: Top,
) -> Result<Vec<String>, VerifyError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| VerifyError::Read { path, source }
    };
    let mut extra = Vec::new();
    let mut folders = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, relative)) = folders.pop() {
        for entry in fs::read_dir(&folder).map_err(read_error(&folder))? {
            let entry = entry.map_err(read_error(&folder))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let top = relative.is_empty();
            let kind = entry.file_type().map_err(read_error(&entry.path()))?;
            let hidden_here = name.starts_with('.') && top && top_of == Top::Root;
            let our_temporary = kind.is_file() && crate::disk::is_our_temp_file(&name);
            if hidden_here
                || our_temporary
                || (top && unlisted.contains(&name.as_ref()))
                || (top && periods.iter().any(|p| *p == name))
            {
                continue;
            }
            let key = if top {
                name.into_owned()
            } else {
                format!("{relative}/{name}")
            };
            if kind.is_dir() {
                folders.push((entry.path(), key));
            } else if !listed.contains_key(&key) {
                extra.push(key);
            }
        }
    }
    extra.sort();
    Ok(extra)
}

fn compare_manifest(
    manifest: &[ManifestFile],
    listed: &BTreeMap<String, String>,
    sizes: &BTreeMap<String, u64>,
) -> Vec<String> {
    let mut mismatches = Vec::new();
    let mut seen = BTreeSet::new();
    for file in manifest {
        let shown_path = shown(&file.path);
        let Some(key) = normalise(&file.path) else {
            mismatches.push(format!(
                "manifest.json lists {shown_path}, which is not a relative path inside the folder"
            ));
            continue;
        };
        if !seen.insert(key.clone()) {
            mismatches.push(format!("manifest.json lists {shown_path} more than once"));
            continue;
        }
        match listed.get(&key) {
            None => mismatches.push(format!(
                "manifest.json lists {shown_path}, but SHA256SUMS does not"
            )),
            Some(sha256) if !sha256.eq_ignore_ascii_case(&file.sha256) => {
                mismatches.push(format!(
                    "{shown_path} has sha256 {} in manifest.json but {sha256} in SHA256SUMS",
                    file.sha256
                ));
            }
            Some(_) => {}
        }
        if let Some(&actual) = sizes.get(key.as_str())
            && actual != file.bytes
        {
            mismatches.push(format!(
                "{shown_path} has {} bytes according to manifest.json, but {actual} on disk",
                file.bytes
            ));
        }
    }
    for key in listed.keys().filter(|key| !seen.contains(*key)) {
        mismatches.push(format!(
            "SHA256SUMS lists {}, but manifest.json does not",
            shown(key)
        ));
    }
    mismatches
}

/// A path as it can be printed on one line: as is, or quoted with escapes when it holds control
/// characters.
fn shown(path: &str) -> String {
    if path.chars().any(char::is_control) {
        format!("{path:?}")
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests;
