//! The root records of the trail: the latest run's `summary.md` and `manifest.json`, and the
//! `SHA256SUMS` that seals every period.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::is_period_checksums;
use super::open::read_seal;
use crate::output::billing::BillingSummary;
use crate::output::{MANIFEST, SHA256SUMS, SUMMARY, checksums, kill_point, manifest, summary};
use crate::results::{PeriodOutcome, RunResult, TrailRecord};

/// What the root records are made of besides the run's record.
pub(super) struct Root<'a> {
    /// The periods this run covered (their seals are hashed as they are now).
    pub(crate) covered: &'a BTreeSet<String>,
    /// The period seals as the trail was opened (and settled since).
    pub(crate) sealed: BTreeMap<String, String>,
    pub(crate) sections: &'a [String],
    /// What the `billing.csv` files this run wrote hold, together.
    pub(crate) billing: Option<BillingSummary>,
}

impl Root<'_> {
    /// Writes `summary.md`, `manifest.json`, and last `SHA256SUMS`, which lists every period's
    /// `SHA256SUMS`: this run's as they are now, the others as the root lists them (a file this
    /// run did not write is never hashed into the seal anew).
    pub(crate) fn write(self, dir: &Path, run: &RunResult) -> io::Result<()> {
        let mut lines = self.sealed;
        // Read again: were the lock ever lost (a file system that cannot lock), a period
        // sealed by another process meanwhile must stay listed.
        if let Ok(Some(now)) = read_seal(&dir.join(SHA256SUMS)) {
            for (path, sha256) in now.listed {
                if !is_period_checksums(&path) {
                    continue;
                }
                let folder = path.trim_end_matches(SHA256SUMS).trim_end_matches('/');
                if self.covered.contains(folder) || lines.get(&path) == Some(&sha256) {
                    continue;
                }
                tracing::warn!(
                    "{path} was sealed by another process during this run; it stays listed as sealed then"
                );
                lines.insert(path, sha256);
            }
        }
        for folder in self.covered {
            let path = format!("{folder}/{SHA256SUMS}");
            match super::open::hash_inside(dir, &path) {
                Ok(sha256) => {
                    lines.insert(path, sha256);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot hash {path}: {e}"),
            }
        }
        let text = summary::render(run, self.billing.as_ref(), self.sections)?;
        crate::disk::write_atomic(&dir.join(SUMMARY), text.as_bytes())?;
        kill_point("root summary.md");
        lines.insert(
            SUMMARY.to_owned(),
            hex::encode(Sha256::digest(text.as_bytes())),
        );
        let sha256 =
            super::super::write_hashed(&dir.join(MANIFEST), |out| manifest::write(out, run))?;
        lines.insert(MANIFEST.to_owned(), sha256);
        kill_point("root manifest.json");
        crate::disk::write_atomic_with(&dir.join(SHA256SUMS), |out| {
            checksums::write_sorted(
                out,
                lines
                    .iter()
                    .map(|(path, sha256)| (path.as_str(), sha256.as_str()))
                    .collect(),
            )
        })
    }
}

/// The billing summaries of several periods as one, for the run's summary.
pub(super) fn merged_billing(parts: Vec<BillingSummary>) -> Option<BillingSummary> {
    let mut parts = parts.into_iter();
    let mut all = parts.next()?;
    for part in parts {
        all.lines += part.lines;
        all.reports += part.reports;
        all.reports_without_source += part.reports_without_source;
        all.invoice.extend(part.invoice);
        all.invoice_left_out += part.invoice_left_out;
        all.skus.extend(part.skus);
        all.skus_left_out += part.skus_left_out;
        all.repeated_lines += part.repeated_lines;
        all.day_lines += part.day_lines;
    }
    Some(all)
}

/// The root summary's account of the trail: what the run did to each period.
pub(super) fn trail_section(record: &TrailRecord) -> String {
    let mut out = "## Trail\n\n".to_owned();
    if record.periods.is_empty() {
        out.push_str("This run covered no period.\n\n");
    } else {
        out.push_str(
            "| Period | This run | Reports in the delivery | Ok |\n| --- | --- | ---: | ---: |\n",
        );
        for period in &record.periods {
            let outcome = match period.outcome {
                PeriodOutcome::Written => "written",
                PeriodOutcome::Unchanged => "unchanged",
            };
            let kept = if period.kept_earlier > 0 {
                format!(
                    "; {} failed attempt(s), earlier delivery kept",
                    period.kept_earlier
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| [{0}]({0}/summary.md) | {outcome}{kept} | {1} | {2} |",
                period.folder, period.reports, period.ok
            );
        }
        out.push('\n');
    }
    for note in &record.notes {
        let _ = writeln!(out, "{note}\n");
    }
    let example = record
        .periods
        .first()
        .map_or("2026-10", |p| p.folder.as_str());
    let _ = writeln!(
        out,
        "Each period folder checks on its own (`cd {example} && sha256sum -c SHA256SUMS`); the root `SHA256SUMS` lists every period's `SHA256SUMS`.\n"
    );
    out
}
