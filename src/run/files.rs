//! A report's files: reused from an earlier run when they are intact, else fetched, hashed and
//! checked as they stream, and recorded in the journal.

use crate::checks;
use crate::disk::paths::ensure_dir_inside;
use crate::download;
use crate::job::SkuPolicy;
use crate::poll::ReadyFile;
use crate::report::Format;
use crate::results::{FileResult, ReportResult, SkuStatus, Status};
use crate::state::{ReportState, SavedFile, staging_dir};

use super::*;

impl ReportJob {
    /// When an earlier run saved every file of this request and they are still intact, the
    /// report needs no API call at all. Each file is read once, for its digest and its check.
    pub(super) async fn reuse_saved_files(&self, recorded: &ReportState) -> Option<ReportResult> {
        let ready: Vec<ReadyFile> = self
            .request
            .formats
            .iter()
            .map(|format| {
                recorded.files.get(format).map(|file| ReadyFile {
                    format: *format,
                    stored_id: file.stored_report_id.clone(),
                    size: Some(file.bytes),
                })
            })
            .collect::<Option<_>>()?;
        let mut checked = Vec::with_capacity(ready.len());
        for file in &ready {
            let base = self.config.out_dir.clone();
            let relative = self.request.file_path(file.format);
            let format = file.format;
            let inspection = self.inspection(format);
            let expected = recorded.files[&format].bytes;
            let on_disk = tokio::task::spawn_blocking(move || {
                checks::hash_and_inspect(&base, &relative, &inspection, expected)
            })
            .await
            .ok()
            .and_then(Result::ok)
            .filter(|(sha256, _, _)| *sha256 == recorded.files[&format].sha256)?;
            checked.push((format, on_disk));
        }
        Some(
            self.collect_checked_files(&recorded.report_id, &ready, Some(recorded), checked)
                .await,
        )
    }

    /// Downloads (or reuses) and checks every ready file, and applies the SKU policy.
    pub(super) async fn collect_files(
        &self,
        report_id: &str,
        ready: &[ReadyFile],
        recorded: Option<&ReportState>,
    ) -> ReportResult {
        self.collect_checked_files(report_id, ready, recorded, Vec::new())
            .await
    }

    /// [`Self::collect_files`] with some files already read from disk (digest and check).
    pub(super) async fn collect_checked_files(
        &self,
        report_id: &str,
        ready: &[ReadyFile],
        recorded: Option<&ReportState>,
        mut checked: Vec<(Format, OnDisk)>,
    ) -> ReportResult {
        let label = self.label();
        // DR compute points are counted where billing.csv counts them, for every report alike.
        let mut result = failed(&self.request, Some(report_id.to_owned()), String::new());
        let mut errors = Vec::new();
        for file in ready {
            let previous = recorded
                .and_then(|r| r.files.get(&file.format))
                .filter(|_| recorded.is_some_and(|r| r.report_id == report_id));
            let known = checked
                .iter()
                .position(|(format, _)| *format == file.format)
                .map(|at| checked.swap_remove(at).1);
            match self
                .fetch_and_check(report_id, file, previous, known, &mut result.warnings)
                .await
            {
                Ok((file_result, reused)) => {
                    tracing::info!(
                        "{label}: saved {} ({} bytes, sha256 {})",
                        file_result.path,
                        file_result.bytes,
                        &file_result.sha256[..12]
                    );
                    self.observer.on(Event::Saved {
                        index: self.request.index,
                        tenant: self.request.tenant_name.clone(),
                        period: self.request.period.label(),
                        path: file_result.path.clone(),
                        bytes: file_result.bytes,
                        sha256: file_result.sha256.clone(),
                        reused,
                    });
                    result.files.push(file_result);
                }
                Err(error) => {
                    tracing::error!("{label}: {error}");
                    errors.push(error);
                }
            }
        }
        for file in &result.files {
            if let Some(problem) = &file.content_check.problem {
                // No path: the record lists the file beside this message, and the message is
                // read in the period's record and the root's, whose paths differ.
                errors.push(format!(
                    "the {} file failed its content check (kept as downloaded): {problem}",
                    file.format
                ));
            }
            if file.sku_check.status != SkuStatus::Missing {
                continue;
            }
            let message = match &file.sku_check.column {
                Some(_) => format!(
                    "{} of {} rows in the {} file lack a SKU",
                    file.sku_check.rows_without_sku, file.sku_check.rows, file.format
                ),
                None => format!(
                    "the {} file has no SKU column (a header `sku` or `….sku`), so none of its {} rows has a SKU; does the API client's tenant have SKU access?",
                    file.format, file.sku_check.rows
                ),
            };
            match self.request.sku_check {
                SkuPolicy::Required => errors.push(format!("{message} (checks.skus: required)")),
                SkuPolicy::Warn => {
                    tracing::warn!("{label}: {message}");
                    result.warnings.push(message);
                }
                SkuPolicy::Off => {}
            }
        }
        if errors.is_empty() {
            result.status = Status::Ok;
            result.error = None;
        } else {
            result.error = Some(errors.join("; "));
        }
        result
    }

    /// One file: kept when it is on disk as recorded (`known` when already read), else
    /// downloaded and checked on the way.
    pub(super) async fn fetch_and_check(
        &self,
        report_id: &str,
        file: &ReadyFile,
        previous: Option<&SavedFile>,
        known: Option<OnDisk>,
        warnings: &mut Vec<String>,
    ) -> Result<(FileResult, bool), String> {
        let relative = self.request.file_path(file.format);
        let dir = ensure_dir_inside(&self.config.out_dir, &self.request.dir)
            .map_err(|e| format!("cannot create the folder for the {} file: {e}", file.format))?;
        let dest = dir.join(self.request.file_name(file.format));
        let format = file.format;
        let inspection = self.inspection(format);

        // A file saved by an earlier run is kept when it is still exactly what was recorded.
        // Without a record there is nothing to compare with, so nothing to read.
        let on_disk = match (previous, known) {
            (_, Some(known)) => Some(known),
            (Some(saved), None) => {
                let (base, relative) = (self.config.out_dir.clone(), relative.clone());
                let inspection = inspection.clone();
                let expected = saved.bytes;
                tokio::task::spawn_blocking(move || {
                    checks::hash_and_inspect(&base, &relative, &inspection, expected).ok()
                })
                .await
                .ok()
                .flatten()
            }
            (None, None) => None,
        };
        let reusable = match (previous, on_disk) {
            (Some(saved), Some((sha256, bytes, facts)))
                if saved.stored_report_id == file.stored_id =>
            {
                if sha256 == saved.sha256 {
                    Some((bytes, sha256, facts))
                } else {
                    warnings.push(format!(
                        "{relative} did not match the checksum recorded when it was saved (sha256 {} instead of {}); fetched it again",
                        &sha256[..12],
                        &saved.sha256[..saved.sha256.len().min(12)]
                    ));
                    None
                }
            }
            _ => None,
        };
        let reused = reusable.is_some();
        let (bytes, sha256, facts) = match reusable {
            Some(found) => found,
            None => {
                // A file already in the trail stays until its new record is written with the
                // new file (see `output::trail`): the download goes beside it.
                let target = if std::fs::symlink_metadata(&dest).is_ok() {
                    let staging = staging_dir(&self.config.out_dir);
                    std::fs::create_dir_all(&staging)
                        .and_then(|()| ensure_dir_inside(&staging, &self.request.dir))
                        .map_err(|e| {
                            format!(
                                "cannot create the staging folder for the {} file: {e}",
                                file.format
                            )
                        })?
                        .join(self.request.file_name(file.format))
                } else {
                    dest.clone()
                };
                let downloaded = download::fetch_to_file(
                    &self.client,
                    report_id,
                    &file.stored_id,
                    file.size,
                    &target,
                    inspection,
                    download::Policy {
                        attempts: self.config.download_attempts,
                        ..self.config.download
                    },
                )
                .await
                .map_err(|e| format!("downloading the {} file failed: {e}", file.format))?;
                if let Some(host) = &downloaded.served_by {
                    // Recorded for an audit: the bytes came from another host than the API's.
                    warnings.push(format!(
                        "the {} file was served by {host} (a redirect from the API)",
                        file.format
                    ));
                }
                let saved = SavedFile {
                    stored_report_id: file.stored_id.clone(),
                    path: relative.clone(),
                    bytes: downloaded.bytes,
                    sha256: downloaded.sha256.clone(),
                };
                if let Err(error) =
                    self.state
                        .record_file(&self.key, report_id, file.format, &saved)
                {
                    warnings.push(format!(
                        "could not record {relative} in the resume state: {error}"
                    ));
                }
                (downloaded.bytes, downloaded.sha256, downloaded.inspected)
            }
        };
        Ok((
            FileResult {
                format,
                path: relative,
                stored_report_id: file.stored_id.clone(),
                bytes,
                sha256,
                content_check: facts.content_check,
                sku_check: facts.sku_check,
            },
            reused,
        ))
    }

    /// How a file of `format` of this report is checked.
    pub(super) fn inspection(&self, format: Format) -> checks::Inspection {
        checks::Inspection {
            format,
            check_skus: self.request.sku_check != SkuPolicy::Off,
            rule: Arc::clone(&self.config.billing_rule),
        }
    }
}
