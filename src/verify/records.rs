//! Reading the records `verify` checks against: `SHA256SUMS` and `manifest.json`, each read
//! whole (up to a bound), their paths normalised so that none can reach outside the folder.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path};

use serde_json::Value;

use super::VerifyError;
use crate::output::checksums::{self, ChecksumError};

/// `SHA256SUMS` as normalised relative path → lowercase hex.
pub(super) fn read_checksums(path: &Path) -> Result<BTreeMap<String, String>, VerifyError> {
    parse_checksums(path, read(path)?)
}

/// The bytes of the `SHA256SUMS` at `path`, read as [`read_checksums`] reads them.
pub(crate) fn parse_checksums(
    path: &Path,
    bytes: Vec<u8>,
) -> Result<BTreeMap<String, String>, VerifyError> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        VerifyError::Checksums {
            path: path.to_owned(),
            source: ChecksumError {
                line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                reason: "not valid UTF-8".to_owned(),
            },
        }
    })?;
    let entries = checksums::parse(&text).map_err(|source| VerifyError::Checksums {
        path: path.to_owned(),
        source,
    })?;
    let mut listed = BTreeMap::new();
    for entry in entries {
        let Some(key) = normalise(&entry.path) else {
            return Err(VerifyError::UnsafePath {
                path: path.to_owned(),
                entry: entry.path,
            });
        };
        if listed.insert(key, entry.sha256).is_some() {
            return Err(VerifyError::Duplicate {
                path: path.to_owned(),
                entry: entry.path,
            });
        }
    }
    Ok(listed)
}

/// A file the manifest records.
pub(super) struct ManifestFile {
    pub(super) path: String,
    pub(super) sha256: String,
    pub(super) bytes: u64,
}

/// The `reports[].files[]` and `derived_files[]` entries (files derived from the reports, such
/// as `billing.csv`); anything else in the manifest is not verify's business.
pub(super) fn read_manifest(path: &Path) -> Result<Vec<ManifestFile>, VerifyError> {
    let invalid = |reason: String| VerifyError::Manifest {
        path: path.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_slice(&read(path)?).map_err(|e| invalid(e.to_string()))?;
    if let Some(version) = value.get("manifest_version")
        && *version != 1
    {
        return Err(invalid(format!(
            "manifest_version {version} is not supported; this tool reads version 1"
        )));
    }
    let reports = value
        .get("reports")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("there is no `reports` list".to_owned()))?;
    let entry = |file: &Value, at: String| {
        let text = |key: &str| {
            file.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("{at} has no text `{key}`")))
        };
        let bytes = file
            .get("bytes")
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid(format!("{at} has no whole number `bytes`")))?;
        Ok(ManifestFile {
            path: text("path")?,
            sha256: text("sha256")?,
            bytes,
        })
    };
    let mut files = Vec::new();
    for (r, report) in reports.iter().enumerate() {
        let list = report
            .get("files")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(format!("reports[{r}] has no `files` list")))?;
        for (f, file) in list.iter().enumerate() {
            files.push(entry(file, format!("reports[{r}].files[{f}]"))?);
        }
    }
    // Absent from manifests written before there were derived files.
    match value.get("derived_files") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (d, file) in list.iter().enumerate() {
                files.push(entry(file, format!("derived_files[{d}]"))?);
            }
        }
        Some(_) => return Err(invalid("`derived_files` is not a list".to_owned())),
    }
    Ok(files)
}

/// The largest `SHA256SUMS` or `manifest.json` read whole: far above a run of 100 000 reports.
pub(super) const MAX_RECORD_BYTES: u64 = 1 << 30;

fn read(path: &Path) -> Result<Vec<u8>, VerifyError> {
    crate::disk::paths::read_regular(path, MAX_RECORD_BYTES).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => VerifyError::NotFound {
            path: path.to_owned(),
        },
        _ => VerifyError::Read {
            path: path.to_owned(),
            source,
        },
    })
}

/// A listed path with `/` separators and no `.` components, or `None` for one that could reach
/// outside the folder (absolute, `..`, a drive prefix) or names nothing.
pub(crate) fn normalise(entry: &str) -> Option<String> {
    let mut parts = Vec::new();
    for component in Path::new(entry).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}
