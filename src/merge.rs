//! `acronis-reports merge SHARD_DIR... --out DIR`: puts the output folders of a sharded run
//! (`run --shard I/N`, see [`crate::shard`]) back together into the folder an unsharded run of
//! the same job would have written.
//!
//! Every shard must verify cleanly and all must belong together: the same job file (by
//! checksum), as-of date, API (loopback URLs count as one: `run --sandbox` picks a port per
//! run), tool version, number of shards and plan size, each shard exactly once, no report in two
//! shards, and the reports of all shards must be exactly the whole plan, split the way
//! [`crate::shard`] splits it. Otherwise nothing is written. The files are copied into the new
//! folder, never downloaded again: a hard link would let a later edit of a shard's file change
//! the trail, which must stay as sealed (on file systems that share blocks, the kernel's copy
//! does so without writing the bytes again); `billing.csv`, `SHA256SUMS`, `manifest.json` and `summary.md` are written by the same
//! code as `run`'s, from the shards' reports in plan order (`billing.csv` anew from the merged
//! report files, never from the shards' own), so they equal those of an unsharded run against
//! the same server content, except for the times (`started_at` is the earliest shard's,
//! `finished_at` the latest's). The merged folder is verified before `merge` reports success.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::disk::paths::ensure_dir_inside;
use crate::output::{self, MANIFEST, SHA256SUMS};
use crate::results::{ReportLog, ReportResult, RunResult, ShardInfo};
use crate::shard::{self, Identity};
use crate::verify;

/// Why nothing (or nothing lasting) was merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards cannot be merged (or `--out` cannot take them); nothing was written.
    #[error("{0}")]
    Refused(String),
    /// Writing the merged folder failed; what had been written was removed again.
    #[error("{0}")]
    Write(String),
}

/// What `merge` produced.
#[derive(Debug)]
pub struct Merged {
    /// The merged record, as written to `manifest.json`.
    pub result: RunResult,
    /// Number of shard folders merged.
    pub shards: usize,
    /// Report files copied in.
    pub copied: usize,
}

/// One verified shard folder and its record.
struct Shard {
    dir: PathBuf,
    result: RunResult,
    /// `result`'s reports, in memory: checking the shards against each other needs them all.
    reports: Vec<ReportResult>,
    info: ShardInfo,
}

impl Shard {
    fn label(&self) -> String {
        format!("{} (shard {})", self.dir.display(), self.info)
    }
}

/// Merges the shard folders `shard_dirs` (in any order) into `out`, which must not exist or be
/// empty. See the module documentation for what is checked and written.
pub fn merge(shard_dirs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    if shard_dirs.is_empty() {
        return Err(refused(
            "no shard folders given; pass the output folder of every shard",
        ));
    }
    check_out(out, shard_dirs)?;
    let shards = shard_dirs
        .iter()
        .map(|dir| load(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let shards = check_shards(shards)?;
    let result = merged_result(&shards)?;
    let (result, copied) = write(&shards, result, out)?;
    Ok(Merged {
        result,
        shards: shards.len(),
        copied,
    })
}

fn refused(message: impl Into<String>) -> MergeError {
    MergeError::Refused(message.into())
}

/// `--out` must be new or empty, and outside every shard folder.
fn check_out(out: &Path, shard_dirs: &[PathBuf]) -> Result<(), MergeError> {
    match fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(refused(format!(
                "--out {} is a symbolic link; merge into a new or empty folder",
                out.display()
            )));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(refused(format!(
                "--out {} exists and is not a folder; merge into a new or empty folder",
                out.display()
            )));
        }
        Ok(_) => {
            let mut entries = fs::read_dir(out).map_err(|e| {
                refused(format!(
                    "cannot read the --out folder {}: {e}",
                    out.display()
                ))
            })?;
            if entries.next().is_some() && !out.join(SHA256SUMS).is_file() {
                return Err(refused(format!(
                    "--out {} is not empty and not an output folder (it has no SHA256SUMS); merge into a new or empty folder, or into a trail of earlier runs",
                    out.display()
                )));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(refused(format!(
                "cannot look at the --out folder {}: {e}",
                out.display()
            )));
        }
    }
    let out_abs = absolute(out);
    for dir in shard_dirs {
        let dir_abs = absolute(dir);
        if out_abs.starts_with(&dir_abs) {
            return Err(refused(format!(
                "--out {} is inside the shard folder {}; merge into a folder outside the shards",
                out.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// `path` made absolute with its existing part resolved (symbolic links followed), for
/// comparing folders that may not exist yet.
fn absolute(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = path.to_path_buf();
    loop {
        if let Ok(resolved) = fs::canonicalize(&existing) {
            return rest
                .into_iter()
                .rev()
                .fold(resolved, |p, name| p.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        }
    }
}

/// Verifies one shard folder and reads its manifest.
fn load(dir: &Path) -> Result<Shard, MergeError> {
    let shown = dir.display();
    let report = verify::verify(dir).map_err(|e| {
        refused(format!(
            "shard folder {shown} cannot be verified, so it cannot be merged: {e}"
        ))
    })?;
    if !report.is_clean() {
        return Err(refused(format!(
            "shard folder {shown} does not verify, so it cannot be merged (re-run that shard): {report}"
        )));
    }
    let path = dir.join(MANIFEST);
    // A shard's manifest, read whole: bounded, and only a regular file (not a link to an
    // endless device).
    let bytes = crate::disk::paths::read_regular(&path, 1 << 30)
        .map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
    let result: RunResult = serde_json::from_slice(&bytes).map_err(|e| {
        if e.to_string().contains("plan_index") {
            refused(format!(
                "{} has no plan_index for its reports: it was not written by a sharded run of this version of acronis-reports; re-run the shard with `run --shard I/N`",
                path.display()
            ))
        } else {
            refused(format!(
                "{} is not a manifest this version of acronis-reports can merge: {e}",
                path.display()
            ))
        }
    })?;
    let Some(info) = result.shard else {
        return Err(refused(format!(
            "{shown} is not the output of a sharded run: its manifest.json has no `shard`; run each part of the job with `run --shard I/N`"
        )));
    };
    if !(1..=info.total).contains(&info.index) {
        return Err(refused(format!(
            "{shown} claims to be shard {info}, which does not exist"
        )));
    }
    // Not the shard's fault: the records could not be read back from their temporary file.
    let reports = result.reports.to_vec().map_err(|e| {
        MergeError::Write(format!(
            "cannot read the reports of {} back: {e}",
            path.display()
        ))
    })?;
    Ok(Shard {
        dir: dir.to_owned(),
        result,
        reports,
        info,
    })
}

/// Refuses shards that do not belong to one run, or that do not make up all of it; returns them
/// ordered by shard index.
fn check_shards(mut shards: Vec<Shard>) -> Result<Vec<Shard>, MergeError> {
    let first = &shards[0];
    let mut sandboxes = false;
    for other in &shards[1..] {
        let (a, b) = (first.label(), other.label());
        let (x, y) = (&first.result, &other.result);
        if x.job.sha256 != y.job.sha256 {
            return Err(refused(format!(
                "the shards come from different job files: {a} ran {} (sha256 {}) but {b} ran {} (sha256 {}); merge only the shards of one job",
                x.job.path,
                short(&x.job.sha256),
                y.job.path,
                short(&y.job.sha256)
            )));
        }
        if x.as_of != y.as_of {
            return Err(refused(format!(
                "the shards are as of different days: {a} is as of {} but {b} as of {}; run every shard with the same --as-of",
                x.as_of, y.as_of
            )));
        }
        if x.discovery != y.discovery {
            return Err(refused(format!(
                "{a} and {b} found different tenants for their children_of entries (the tenant tree changed between the shard runs); run all shards again"
            )));
        }
        // `run --sandbox` starts the built-in sandbox on a random loopback port per run; its
        // content does not depend on the port, so such shards still belong together.
        if x.base_url != y.base_url {
            if !(is_loopback(&x.base_url) && is_loopback(&y.base_url)) {
                return Err(refused(format!(
                    "the shards ran against different APIs: {a} against {} but {b} against {}",
                    x.base_url, y.base_url
                )));
            }
            sandboxes = true;
        }
        if first.info.total != other.info.total {
            return Err(refused(format!(
                "the shards were split differently: {a} is one of {} shards but {b} one of {}",
                first.info.total, other.info.total
            )));
        }
        if first.info.plan_reports != other.info.plan_reports {
            return Err(refused(format!(
                "the shards ran different plans: {a} is part of a plan of {} reports but {b} of {}; the job resolved to other reports between the shard runs (did the tenant list change?)",
                first.info.plan_reports, other.info.plan_reports
            )));
        }
        if x.tool != y.tool || x.manifest_version != y.manifest_version {
            return Err(refused(format!(
                "the shards were written by different versions: {a} by {} {} but {b} by {} {}; run every shard with the same version",
                x.tool.name, x.tool.version, y.tool.name, y.tool.version
            )));
        }
    }

    shards.sort_by_key(|s| s.info.index);
    if sandboxes {
        tracing::warn!(
            "the shards ran against different APIs on this machine (built-in sandboxes on different ports); merging them, and manifest.json names the API of shard 1: {}",
            shards[0].result.base_url
        );
    }
    for pair in shards.windows(2) {
        if pair[0].info.index == pair[1].info.index {
            return Err(refused(format!(
                "shard {} is given twice: {} and {}; give each shard's folder once",
                pair[0].info,
                pair[0].dir.display(),
                pair[1].dir.display()
            )));
        }
    }
    let total = shards[0].info.total;
    let present: Vec<u32> = shards.iter().map(|s| s.info.index).collect();
    let missing: Vec<String> = (1..=total)
        .filter(|i| !present.contains(i))
        .map(|i| format!("{i}/{total}"))
        .collect();
    if !missing.is_empty() {
        let noun = if missing.len() == 1 {
            "shard"
        } else {
            "shards"
        };
        return Err(refused(format!(
            "{noun} {} missing: merge needs the folders of all {total} shards (given: {})",
            list(&missing),
            list(
                &present
                    .iter()
                    .map(|i| format!("{i}/{total}"))
                    .collect::<Vec<_>>()
            )
        )));
    }
    Ok(shards)
}

/// One sentence naming a report.
fn describe(report: &ReportResult) -> String {
    format!(
        "the {} / {} report of {} for {} (tenant {})",
        report.kind, report.level, report.tenant_name, report.period, report.tenant_id
    )
}

/// The reports of all shards in plan order, checked to be exactly one plan split by
/// [`shard::assign`]; and the run around them.
fn merged_result(shards: &[Shard]) -> Result<RunResult, MergeError> {
    let total = shards[0].info.total;
    // (report, index into `shards`)
    let mut reports: Vec<(&ReportResult, usize)> = Vec::new();
    let mut by_identity: HashMap<Identity<'_>, usize> = HashMap::new();
    let mut by_path: HashMap<&str, usize> = HashMap::new();
    for (s, shard) in shards.iter().enumerate() {
        for report in &shard.reports {
            if let Some(&other) = by_identity.get(&Identity::of_result(report)) {
                return Err(refused(format!(
                    "{} is in two shards: {} and {}",
                    describe(report),
                    shards[other].label(),
                    shard.label()
                )));
            }
            by_identity.insert(Identity::of_result(report), s);
            for file in &report.files {
                if let Some(other) = by_path.insert(&file.path, s) {
                    return Err(refused(format!(
                        "{} is in two shards: {} and {}",
                        file.path,
                        shards[other].label(),
                        shard.label()
                    )));
                }
            }
            reports.push((report, s));
        }
    }
    reports.sort_by_key(|(report, _)| report.plan_index);

    for pair in reports.windows(2) {
        if pair[0].0.plan_index == pair[1].0.plan_index {
            return Err(refused(format!(
                "{} and {} both hold plan position {}: the shards were not run from the same plan",
                shards[pair[0].1].label(),
                shards[pair[1].1].label(),
                pair[0].0.plan_index
            )));
        }
    }
    let plan_reports = shards[0].info.plan_reports;
    if let Some((report, s)) = reports.iter().find(|(r, _)| r.plan_index >= plan_reports) {
        return Err(refused(format!(
            "{} holds {} at plan position {}, beyond the {plan_reports} reports of its plan: the shards were not run from the same plan",
            shards[*s].label(),
            describe(report),
            report.plan_index
        )));
    }
    // Sorted, distinct and below `plan_reports`: all there exactly when there are as many.
    if reports.len() != plan_reports {
        let held: BTreeSet<usize> = reports.iter().map(|(r, _)| r.plan_index).collect();
        let missing: Vec<String> = (0..plan_reports)
            .filter(|i| !held.contains(i))
            .map(|i| i.to_string())
            .collect();
        return Err(refused(format!(
            "the shards do not add up to their plan of {plan_reports} reports: no shard holds plan position {} (numbered from 0); were all shards run from the same job file, as of the same day, with the same tenants?",
            list(&missing)
        )));
    }

    // Every report must be where sharding puts it for this set of reports: otherwise the
    // shards ran different plans (e.g. the tenant list changed between them).
    let identities: Vec<Identity<'_>> = reports
        .iter()
        .map(|(report, _)| Identity::of_result(report))
        .collect();
    for ((report, s), expected) in reports.iter().zip(shard::assign(&identities, total)) {
        if shards[*s].info.index != expected {
            return Err(refused(format!(
                "{} ran {}, which belongs to shard {expected}/{total} for this set of reports: the shards were not all run from the same plan (did the tenant list change between the shard runs?)",
                shards[*s].label(),
                describe(report)
            )));
        }
    }

    let first = &shards[0].result;
    // A shard's failed attempt whose files were put aside (its folder kept an earlier delivery)
    // brings no file: those are not the shard's delivery.
    let aside = format!("{}/", crate::state::STATE_DIR);
    let reports = ReportLog::of(reports.into_iter().map(|(report, _)| {
        let mut report = report.clone();
        report.files.retain(|f| !f.path.starts_with(&aside));
        report
    }))
    .map_err(|e| MergeError::Write(e.to_string()))?;
    Ok(RunResult {
        manifest_version: first.manifest_version,
        tool: first.tool.clone(),
        as_of: first.as_of,
        job: first.job.clone(),
        base_url: first.base_url.clone(),
        started_at: shards
            .iter()
            .map(|s| s.result.started_at)
            .min()
            .unwrap_or(first.started_at),
        finished_at: shards
            .iter()
            .map(|s| s.result.finished_at)
            .max()
            .unwrap_or(first.finished_at),
        reports,
        shard: None,
        discovery: Vec::new(),
        // Each shard's billing.csv covers only its reports; the merged one is written anew.
        derived_files: Vec::new(),
        billing_rule: first.billing_rule.clone(),
        period_folder: None,
        trail: None,
    })
}

/// Copies every file into `out`, writes the run files and verifies the result; returns
/// the record as written. On any failure, removes what it wrote.
fn write(
    shards: &[Shard],
    result: RunResult,
    out: &Path,
) -> Result<(RunResult, usize), MergeError> {
    let created = !out.exists();
    // A folder that is there already is locked as a run locks it, for the whole merge: a run
    // into it meanwhile would seal the root from what it read before this merge (or this merge
    // over the run), un-listing a period.
    let _lock = if created {
        None
    } else {
        crate::state::lock_folder(out).map_err(|e| refused(e.to_string()))?
    };
    let trail = if out.join(SHA256SUMS).is_file() {
        let labels =
            output::trail::labels_of(&result.reports).map_err(|e| refused(e.to_string()))?;
        // First, so that a commit an earlier run left half-way is settled before the periods
        // are checked.
        let trail = output::trail::Trail::open(out, labels).map_err(|e| refused(e.to_string()))?;
        let mut wanted = Vec::new();
        for report in shards.iter().flat_map(|s| &s.reports) {
            for file in &report.files {
                wanted.push(output::trail::Wanted {
                    tenant_id: &report.tenant_id,
                    tenant_name: &report.tenant_name,
                    path: file.path.clone(),
                });
            }
        }
        trail
            .check_wanted(wanted)
            .map_err(|e| refused(e.to_string()))?;
        check_trail_periods(out, &result)?;
        // Files a killed run left waiting would otherwise be moved in with this merge's records.
        output::trail::clear_scratch(out);
        Some(trail)
    } else {
        None
    };
    let is_trail = trail.is_some();
    fs::create_dir_all(out).map_err(|e| {
        MergeError::Write(format!("cannot create the folder {}: {e}", out.display()))
    })?;
    let outcome = fill(shards, result, out, trail);
    if outcome.is_err() {
        if is_trail {
            // An earlier trail keeps everything; only the files waiting to move in go.
            let _ = fs::remove_dir_all(crate::state::staging_dir(out));
        } else {
            clean_up(out, created);
        }
    }
    outcome
}

/// The trail's own copies of the periods about to be merged must verify before anything moves
/// in: a problem found only afterwards (a stray file, an edited record) would fail the merge
/// after it had already rewritten the period.
fn check_trail_periods(out: &Path, result: &RunResult) -> Result<(), MergeError> {
    let labels = output::trail::labels_of(&result.reports).map_err(|e| refused(e.to_string()))?;
    for label in &labels {
        if !out.join(label).exists() {
            continue;
        }
        let report = verify::verify_period(out, label).map_err(|e| {
            refused(format!(
                "the period {label} already in {} cannot be verified: {e}",
                out.display()
            ))
        })?;
        if !report.is_clean() {
            return Err(refused(format!(
                "the period {label} already in {} does not verify, so merging into it could not be told apart from damage; run `acronis-reports verify {} --period {label}` and repair it first: {report}",
                out.display(),
                out.display()
            )));
        }
    }
    Ok(())
}

fn fill(
    shards: &[Shard],
    result: RunResult,
    out: &Path,
    trail: Option<output::trail::Trail>,
) -> Result<(RunResult, usize), MergeError> {
    let failed = |e: String| MergeError::Write(e);
    // Where each file comes from: the shard whose manifest lists it.
    let mut source: BTreeMap<&str, &Path> = BTreeMap::new();
    for shard in shards {
        for report in &shard.reports {
            for file in &report.files {
                if !file.path.starts_with(crate::state::STATE_DIR) {
                    source.insert(&file.path, &shard.dir);
                }
            }
        }
    }
    let mut copied = 0;
    for (relative, shard_dir) in &source {
        let (folder, name) = match relative.rsplit_once('/') {
            Some((folder, name)) => (Some(folder), name),
            None => (None, *relative),
        };
        let dir = match folder {
            Some(folder) => ensure_dir_inside(out, folder)
                .map_err(|e| failed(format!("cannot create the folder for {relative}: {e}")))?,
            None => out.to_path_buf(),
        };
        let from = shard_dir.join(relative);
        let mut to = dir.join(name);
        if fs::symlink_metadata(&to).is_ok() {
            // A file of an earlier run: the merged one waits beside the trail until its record
            // is written (see `output::trail`).
            let staging = crate::state::staging_dir(out);
            let folder = folder.unwrap_or_default();
            to = fs::create_dir_all(&staging)
                .and_then(|()| ensure_dir_inside(&staging, folder))
                .map_err(|e| failed(format!("cannot stage {relative}: {e}")))?
                .join(name);
        }
        fs::copy(&from, &to).map_err(|e| {
            failed(format!(
                "cannot copy {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })?;
        copied += 1;
    }
    let labels = output::trail::labels_of(&result.reports).map_err(|e| failed(e.to_string()))?;
    let trail = match trail {
        Some(trail) => trail,
        None => {
            output::trail::Trail::open(out, labels.clone()).map_err(|e| failed(e.to_string()))?
        }
    };
    let result = trail
        .commit(result, &output::trail::CommitOptions::default())
        .map_err(|e| {
            failed(format!(
                "cannot write billing.csv, SHA256SUMS, manifest.json and summary.md in {}: {e}",
                out.display()
            ))
        })?;
    // The periods merged, each as an auditor would check it (the rest of a trail is not
    // merge's to answer for).
    for label in &labels {
        let report = verify::verify_period(out, label)
            .map_err(|e| failed(format!("the merged period {label} cannot be verified: {e}")))?;
        if !report.is_clean() {
            return Err(failed(format!(
                "the merged period {label} does not verify (a shard changed while merging?): {report}"
            )));
        }
    }
    Ok((result, copied))
}

/// Removes what a failed merge wrote: the whole folder when it created it, else its content.
fn clean_up(out: &Path, created: bool) {
    if created {
        let _ = fs::remove_dir_all(out);
        return;
    }
    if let Ok(entries) = fs::read_dir(out) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}

/// An `http://` URL of this machine (the built-in sandbox; a real API is never there).
fn is_loopback(base_url: &str) -> bool {
    let Ok(url) = url::Url::parse(base_url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

/// `a, b and c`, with at most 20 items named.
fn list(items: &[String]) -> String {
    output::and_list(items, 20)
}

#[cfg(test)]
mod tests;
