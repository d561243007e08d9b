//! The one place that puts a delivery on disk: `billing.csv` streamed from the report files,
//! then the writers' text (summary, manifest) and last the `SHA256SUMS` that seals them, each
//! atomically; and the commit of a whole run through the [`trail`](super::trail).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::checksums::{self, ChecksumEntry};
use super::{BILLING, MANIFEST, SHA256SUMS, SUMMARY, manifest, summary};
use crate::disk::{write_atomic, write_atomic_large_with, write_atomic_with};
use crate::output::billing::{self, Billing, BillingSummary};
use crate::results::{DerivedFile, RunResult};

/// Commits a run into the output folder `dir`, kept as an audit trail (see [`trail`]): each
/// period the run covered gets (or keeps) its own self-contained delivery, the root records the
/// run. `result`'s paths are relative to `dir`. Returns the run's record as written to the root
/// `manifest.json`.
#[cfg(test)]
pub(crate) fn write_outputs(dir: &Path, result: RunResult) -> io::Result<RunResult> {
    use super::trail;
    let labels = trail::labels_of(&result.reports)?;
    let trail = trail::Trail::open(dir, labels).map_err(io::Error::other)?;
    Ok(trail.commit(result, &trail::CommitOptions::default())?)
}

/// Writes one self-contained delivery into `dir`: `billing.csv` (from the report files in
/// `dir`), `summary.md` (with the `sections` made once `billing.csv` is there, after its usage), `manifest.json` and, last, a
/// `SHA256SUMS` that lists the report files and all three, each atomically. Returns the record
/// as written: `result` with `billing.csv` among its derived files, with the warnings deriving
/// it raised (a report whose two formats disagree) added to their reports, once each, and with
/// the reports' DR compute points as `billing.csv` counts them; and what `billing.csv` holds.
/// The files are streamed to disk, the reports read one at a time.
///
/// A derived file that cannot be written (a full disk while `billing.csv` grows) does not stop
/// the records of what succeeded: the other files are still written, and the error then names
/// each file that failed. `SHA256SUMS` is written last: until it is there the delivery is not
/// whole, and the trail's commit intent lets the next run finish or undo one a kill
/// interrupted (see [`trail`]).
pub(crate) fn write_delivery(
    dir: &Path,
    mut result: RunResult,
    sections: impl FnOnce(&Path) -> Vec<String>,
) -> io::Result<(RunResult, Option<BillingSummary>)> {
    fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    let mut failed: Vec<String> = Vec::new();
    let billing_summary = match write_billing(dir, &result) {
        Ok((derived, billing)) => {
            for (index, warning) in billing.warnings {
                result.reports.update(index, |report| {
                    tracing::warn!("{} {}: {warning}", report.tenant_name, report.period);
                    if !report.warnings.contains(&warning) {
                        report.warnings.push(warning);
                    }
                })?;
            }
            // Billing is the one place that counts DR compute points (the report tenant's own
            // rows, which cover the tenants below it, where it has them), for failed reports too.
            for (index, points) in billing.dr_compute_points {
                result
                    .reports
                    .update(index, |report| report.dr_compute_points = Some(points))?;
            }
            result.derived_files.retain(|f| f.path != derived.path);
            result.derived_files.push(derived);
            Some(billing.summary)
        }
        Err(error) => {
            tracing::error!("cannot write {BILLING}: {error}");
            failed.push(format!("{BILLING} ({error})"));
            // An earlier run's billing.csv would no longer match these reports: neither
            // listed nor left behind.
            result.derived_files.retain(|f| f.path != BILLING);
            let _ = fs::remove_file(dir.join(BILLING));
            None
        }
    };

    kill_point(BILLING);
    let mut records = Vec::new();
    let sections = sections(dir);
    let summary = summary::render(&result, billing_summary.as_ref(), &sections).and_then(|text| {
        write_atomic(&dir.join(SUMMARY), text.as_bytes())?;
        Ok(hex::encode(Sha256::digest(text.as_bytes())))
    });
    kill_point(SUMMARY);
    match summary {
        Ok(sha256) => records.push((SUMMARY, sha256)),
        Err(error) => {
            tracing::error!("cannot write {SUMMARY}: {error}");
            failed.push(format!("{SUMMARY} ({error})"));
        }
    }
    match write_hashed(&dir.join(MANIFEST), |out| manifest::write(out, &result)) {
        Ok(sha256) => records.push((MANIFEST, sha256)),
        Err(error) => failed.push(format!("{MANIFEST} ({error})")),
    }
    kill_point(MANIFEST);
    // Listed even when something above failed: every good file stays checksummed, and a
    // record that could not be written is left out (its older copy then fails `verify`).
    let listed = listed_files(&result)?;
    let mut lines: Vec<(&str, &str)> = listed
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    lines.extend(
        records
            .iter()
            .map(|(path, sha256)| (*path, sha256.as_str())),
    );
    let sums = write_atomic_with(&dir.join(SHA256SUMS), |out| {
        checksums::write_sorted(out, lines)
    });
    if let Err(error) = sums {
        tracing::error!("cannot write {SHA256SUMS}: {error}");
        failed.push(format!("{SHA256SUMS} ({error})"));
    }
    kill_point(SHA256SUMS);
    if failed.is_empty() {
        Ok((result, billing_summary))
    } else {
        Err(io::Error::other(format!(
            "could not write {} in {}; the other files were written",
            failed.join(", "),
            dir.display()
        )))
    }
}

#[cfg(test)]
thread_local! {
    /// The step of a commit a test stops at, as a kill would (see [`kill_point`]).
    pub(crate) static KILL_AT: std::cell::Cell<Option<&'static str>> =
        const { std::cell::Cell::new(None) };
}

/// A step of a commit after which a kill leaves a state the next run must settle. A test stops
/// there (it panics, so nothing after the step runs: no clean-up, no undo); elsewhere nothing.
#[inline]
pub(crate) fn kill_point(step: &'static str) {
    #[cfg(test)]
    if KILL_AT.with(std::cell::Cell::get) == Some(step) {
        panic!("killed after {step}");
    }
    #[cfg(not(test))]
    let _ = step;
}

/// Writes `path` atomically with what `fill` writes, and returns the SHA-256 (hex) of it.
pub(crate) fn write_hashed(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<String> {
    write_atomic_with(path, |out| {
        let mut hashing = Hashing {
            inner: out,
            hasher: Sha256::new(),
            bytes: 0,
        };
        fill(&mut hashing)?;
        Ok(hex::encode(hashing.hasher.finalize()))
    })
}

/// What `SHA256SUMS` lists, unsorted: every report file and every derived file.
fn listed_files(result: &RunResult) -> io::Result<Vec<ChecksumEntry>> {
    let mut listed = Vec::with_capacity(result.reports.file_count() + result.derived_files.len());
    for report in result.reports.iter() {
        listed.extend(report?.files.into_iter().map(|f| ChecksumEntry {
            path: f.path,
            sha256: f.sha256,
        }));
    }
    listed.extend(result.derived_files.iter().map(|f| ChecksumEntry {
        path: f.path.clone(),
        sha256: f.sha256.clone(),
    }));
    Ok(listed)
}

/// Streams `billing.csv` into `dir`, hashing it on the way.
fn write_billing(dir: &Path, result: &RunResult) -> io::Result<(DerivedFile, Billing)> {
    let (billing, sha256, bytes) = write_atomic_large_with(&dir.join(BILLING), |out| {
        let mut hashing = Hashing {
            inner: out,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let billing = billing::write(dir, &result.reports, &result.billing_rule, &mut hashing)?;
        Ok((
            billing,
            hex::encode(hashing.hasher.finalize()),
            hashing.bytes,
        ))
    })?;
    let derived = DerivedFile {
        path: BILLING.to_owned(),
        bytes,
        sha256,
        source: billing::SOURCE.to_owned(),
    };
    Ok((derived, billing))
}

/// Passes bytes on, counting and hashing them.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::manifest;

    #[test]
    fn writes_the_run_files_and_billing_csv() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let report = out.join(
            &crate::results::fixtures::contract_run()
                .reports
                .get(0)
                .unwrap()
                .files[0]
                .path,
        );
        fs::create_dir_all(report.parent().unwrap()).unwrap();
        fs::write(
            &report,
            "tenant.id,tenant.kind,name,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial\nc,customer,pw_base_storage,1073741824,1073741824,0,0,0,0,1073741824,1073741824,0\n",
        )
        .unwrap();
        // The record's checksum is the file's: a re-run checks the sealed delivery.
        let mut run = crate::results::fixtures::contract_run();
        let (file_sha256, file_bytes) = crate::verify::hash_file(&report).unwrap();
        run.reports
            .update(0, |r| {
                r.files[0].sha256.clone_from(&file_sha256);
                r.files[0].bytes = file_bytes;
            })
            .unwrap();
        let expected_reports =
            crate::results::ReportLog::of(run.reports.to_vec().unwrap()).unwrap();
        let written = write_outputs(&out, run).unwrap();
        let period = out.join("2026-10");
        let billing = fs::read(period.join(BILLING)).unwrap();
        let sha256 = hex::encode(Sha256::digest(&billing));
        let delivery: RunResult =
            serde_json::from_str(&fs::read_to_string(period.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(
            delivery.derived_files,
            [DerivedFile {
                path: BILLING.into(),
                bytes: billing.len() as u64,
                sha256: sha256.clone(),
                source: billing::SOURCE.into(),
            }]
        );
        assert_eq!(delivery.period_folder.as_deref(), Some("2026-10"));
        assert_eq!(
            delivery.reports.get(0).unwrap().files[0].path,
            "acme/usage_summary.csv_v2_0.csv"
        );
        // The root record is the run's, paths from the root, with what it did to the trail.
        assert_eq!(written.reports, expected_reports);
        assert_eq!(
            written.trail.as_ref().unwrap().periods,
            [crate::results::PeriodEntry {
                folder: "2026-10".into(),
                outcome: crate::results::PeriodOutcome::Written,
                reports: 1,
                ok: 1,
                kept_earlier: 0,
            }]
        );
        assert_eq!(
            String::from_utf8(billing).unwrap().lines().nth(1),
            Some(
                "2026-10-01,2026-10-31,ede9f834-70b3-476c-83d9-736f9f8c7dae,acme,c,customer,,pw_base_storage,,,,,1,1073741824,1073741824,0,0,0,0,1073741824,1073741824,0,,,usage.absolute.total,1073741824,bytes,1.0000,acme/usage_summary.csv_v2_0.csv"
            )
        );
        let sums = fs::read_to_string(period.join(SHA256SUMS)).unwrap();
        for name in [BILLING, MANIFEST, SUMMARY] {
            let (sha256, _) = crate::verify::hash_file(&period.join(name)).unwrap();
            assert!(sums.contains(&format!("{sha256}  {name}\n")), "{sums}");
        }
        assert!(
            sums.contains(&format!("{file_sha256}  acme/usage_summary.csv_v2_0.csv\n")),
            "{sums}"
        );
        assert_eq!(sums.lines().count(), 4, "{sums}");
        assert_eq!(
            fs::read_to_string(out.join(MANIFEST)).unwrap(),
            manifest::render(&written)
        );
        let root_sums = fs::read_to_string(out.join(SHA256SUMS)).unwrap();
        let listed: Vec<&str> = root_sums.lines().map(|l| &l[66..]).collect();
        assert_eq!(listed, ["2026-10/SHA256SUMS", MANIFEST, SUMMARY]);
        assert!(
            fs::read_to_string(period.join(SUMMARY))
                .unwrap()
                .starts_with("# Acronis billing reports")
        );

        // Committing the record again (as a re-run that fetched nothing new does) changes no
        // byte of the period.
        let before: Vec<Vec<u8>> = [BILLING, MANIFEST, SUMMARY, SHA256SUMS]
            .iter()
            .map(|name| fs::read(period.join(name)).unwrap())
            .collect();
        let manifest = fs::read_to_string(out.join(MANIFEST)).unwrap();
        let again = write_outputs(&out, serde_json::from_str(&manifest).unwrap()).unwrap();
        assert_eq!(
            again.trail.unwrap().periods[0].outcome,
            crate::results::PeriodOutcome::Unchanged
        );
        let after: Vec<Vec<u8>> = [BILLING, MANIFEST, SUMMARY, SHA256SUMS]
            .iter()
            .map(|name| fs::read(period.join(name)).unwrap())
            .collect();
        assert_eq!(before, after);
    }
}
