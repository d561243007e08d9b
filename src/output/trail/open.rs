//! Reading the trail before a run: the records of the periods it covers, each checked against
//! the seals that vouch for it, and every path in them checked before anything acts on it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::legacy::Legacy;
use super::{Trail, TrailError, intent, is_period_checksums, is_report_path};
use crate::output::billing::BILLING_CSV;
use crate::output::{MANIFEST, SHA256SUMS, SUMMARY};
use crate::results::RunResult;

/// The largest record read whole: far above the manifest of a run of 100 000 reports.
pub(super) const MAX_RECORD_BYTES: u64 = 1 << 30;

/// A `SHA256SUMS` read once: the SHA-256 of the file itself, and the lines it lists.
pub(super) struct Seal {
    pub(crate) sha256: String,
    /// Path → SHA-256.
    pub(crate) listed: BTreeMap<String, String>,
}

/// Reads the `SHA256SUMS` at `path`, or `None` when there is none.
pub(super) fn read_seal(path: &Path) -> Result<Option<Seal>, TrailError> {
    let unreadable = |reason: String| TrailError::Record {
        path: path.to_owned(),
        reason,
    };
    let bytes = match crate::disk::paths::read_regular(path, MAX_RECORD_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let listed =
        crate::verify::parse_checksums(path, bytes).map_err(|e| unreadable(e.to_string()))?;
    Ok(Some(Seal { sha256, listed }))
}

/// Reads a record (`manifest.json`), or `None` when there is none.
pub(super) fn read_record(path: &Path) -> Result<Option<RunResult>, TrailError> {
    let unreadable = |reason: String| TrailError::Record {
        path: path.to_owned(),
        reason,
    };
    let bytes = match crate::disk::paths::read_regular(path, MAX_RECORD_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}

/// SHA-256 (hex) of the file at `relative` inside `dir`, read without following a symbolic link
/// on the way or at the end.
pub(super) fn hash_inside(dir: &Path, relative: &str) -> io::Result<String> {
    use io::Read as _;
    let mut file = crate::disk::paths::open_regular_inside(dir, relative)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks that every report file a period's record lists is a path inside the period folder:
/// the record decides what a later run moves, and an edited one could name any file.
pub(super) fn check_paths(path: &Path, record: &RunResult) -> Result<(), TrailError> {
    for report in record.reports.iter() {
        let report = report.map_err(|source| TrailError::Io {
            path: path.to_owned(),
            source,
        })?;
        for file in &report.files {
            if !is_report_path(&file.path) {
                return Err(TrailError::Record {
                    path: path.to_owned(),
                    reason: format!(
                        "it lists the report file {:?} of {}, which is not a path inside its period folder; the record was edited, and no run acts on it",
                        file.path, report.tenant_name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Checks that a period's record is the one its seals vouch for: the root `SHA256SUMS` line of
/// the period's `SHA256SUMS`, and that file's line of `manifest.json`. A record changed since
/// would otherwise be carried forward and sealed anew.
fn check_sealed(
    dir: &Path,
    label: &str,
    sealed: &BTreeMap<String, String>,
) -> Result<(), TrailError> {
    let altered = |path: &Path, what: &str| TrailError::Record {
        path: path.to_owned(),
        reason: format!(
            "{what}; the period's earlier delivery was changed after it was sealed (`acronis-reports verify --period {label}` shows what)"
        ),
    };
    let sums_path = dir.join(label).join(SHA256SUMS);
    let Some(Seal {
        sha256: sums_hash,
        listed,
    }) = read_seal(&sums_path)?
    else {
        return Err(altered(&sums_path, "it is missing"));
    };
    match sealed.get(&format!("{label}/{SHA256SUMS}")) {
        Some(expected) if *expected == sums_hash => {}
        Some(_) => return Err(altered(&sums_path, "it does not match the root SHA256SUMS")),
        None => return Err(altered(&sums_path, "the root SHA256SUMS does not list it")),
    }
    let manifest_path = dir.join(label).join(MANIFEST);
    let manifest_hash = hash_inside(dir, &format!("{label}/{MANIFEST}"))
        .map_err(|e| altered(&manifest_path, &format!("it cannot be read ({e})")))?;
    if listed.get(MANIFEST) != Some(&manifest_hash) {
        return Err(altered(
            &manifest_path,
            "it does not match the period's SHA256SUMS",
        ));
    }
    Ok(())
}

/// Whether the period `label` is a whole delivery that checks against its own `SHA256SUMS`:
/// every file listed is there with its hash, the records are listed, and the record is this
/// period's, listing only files its `SHA256SUMS` lists alike. Returns the SHA-256 of that
/// `SHA256SUMS`, or why not.
pub(super) fn period_holds(dir: &Path, label: &str) -> Result<String, String> {
    let sums = format!("{label}/{SHA256SUMS}");
    let seal = match read_seal(&dir.join(&sums)) {
        Ok(Some(seal)) => seal,
        Ok(None) => return Err(format!("{sums} is missing")),
        Err(e) => return Err(e.to_string()),
    };
    for record in [MANIFEST, SUMMARY] {
        if !seal.listed.contains_key(record) {
            return Err(format!("{sums} does not list {record}"));
        }
    }
    for (path, sha256) in &seal.listed {
        match hash_inside(dir, &format!("{label}/{path}")) {
            Ok(found) if found == *sha256 => {}
            Ok(_) => return Err(format!("{label}/{path} does not match {sums}")),
            Err(e) => return Err(format!("{label}/{path}: {e}")),
        }
    }
    let path = dir.join(label).join(MANIFEST);
    let record = match read_record(&path) {
        Ok(Some(record)) => record,
        Ok(None) => return Err(format!("{label}/{MANIFEST} is missing")),
        Err(e) => return Err(e.to_string()),
    };
    if record.period_folder.as_deref() != Some(label) {
        return Err(format!("{label}/{MANIFEST} is not the record of {label}"));
    }
    check_paths(&path, &record).map_err(|e| e.to_string())?;
    for report in record.reports.iter() {
        let report = report.map_err(|e| e.to_string())?;
        for file in &report.files {
            if seal.listed.get(&file.path) != Some(&file.sha256) {
                return Err(format!(
                    "{label}/{MANIFEST} lists {} other than {sums} does",
                    file.path
                ));
            }
        }
    }
    Ok(seal.sha256)
}

/// Why the `billing.csv` of `label` cannot count as sealed, if it cannot: it must match its
/// period's `SHA256SUMS`, which the root `SHA256SUMS` (`sealed`, as this run leaves it) lists
/// with its hash. A comparison with anything else would put unsealed numbers into a sealed
/// summary.
pub(super) fn unsealed_billing(
    dir: &Path,
    label: &str,
    sealed: &BTreeMap<String, String>,
) -> Option<String> {
    let sums = format!("{label}/{SHA256SUMS}");
    let Some(expected) = sealed.get(&sums) else {
        return Some(format!(
            "{label}/ is not a sealed period (the root SHA256SUMS does not list {sums})"
        ));
    };
    let seal = match read_seal(&dir.join(&sums)) {
        Ok(Some(seal)) => seal,
        Ok(None) => return Some(format!("{sums} is missing")),
        Err(e) => return Some(e.to_string()),
    };
    if seal.sha256 != *expected {
        return Some(format!("{sums} does not match the root SHA256SUMS"));
    }
    let Some(listed) = seal.listed.get(BILLING_CSV) else {
        return Some(format!("{sums} does not list {BILLING_CSV}"));
    };
    match hash_inside(dir, &format!("{label}/{BILLING_CSV}")) {
        Ok(found) if found == *listed => None,
        Ok(_) => Some(format!(
            "{label}/{BILLING_CSV} was changed after it was sealed (it does not match {sums})"
        )),
        Err(e) => Some(format!("{label}/{BILLING_CSV} cannot be read ({e})")),
    }
}

impl Trail {
    /// Reads what `dir` holds of the periods `labels`: their deliveries, or the single-run
    /// record of a folder that predates the trail. A record that cannot be read stops the run
    /// before it starts, since writing the period would lose what it describes. A commit an
    /// earlier run left half-way is finished or undone first (see [`intent`]); the caller holds
    /// the folder's lock.
    pub(crate) fn open(dir: &Path, labels: BTreeSet<String>) -> Result<Self, TrailError> {
        let notes = intent::recover(dir)?;
        let root = read_record(&dir.join(MANIFEST))?;
        let is_trail = root.as_ref().is_some_and(|r| r.trail.is_some());
        let legacy = match root {
            Some(record) if record.trail.is_none() && record.period_folder.is_none() => {
                Some(Legacy::of(dir, record)?)
            }
            _ => None,
        };
        let sums = dir.join(SHA256SUMS);
        let mut sealed = BTreeMap::new();
        if legacy.is_none() {
            match read_seal(&sums)? {
                Some(Seal { listed, .. }) => {
                    sealed.extend(
                        listed
                            .into_iter()
                            .filter(|(path, _)| is_period_checksums(path)),
                    );
                }
                // A trail without its root seal would be sealed anew over whatever is there.
                None if is_trail => {
                    return Err(TrailError::Record {
                        path: sums,
                        reason: "it is missing".to_owned(),
                    });
                }
                None => {}
            }
        }
        let mut wanted = labels;
        if let Some(legacy) = &legacy {
            wanted.extend(legacy.periods.keys().cloned());
        }
        let mut earlier = BTreeMap::new();
        for label in wanted {
            let path = dir.join(&label).join(MANIFEST);
            if let Some(record) = read_record(&path)? {
                if record.period_folder.as_deref() != Some(label.as_str()) {
                    return Err(TrailError::Record {
                        path,
                        reason: format!("it is not the record of the period {label}"),
                    });
                }
                if legacy.is_none() {
                    check_sealed(dir, &label, &sealed)?;
                }
                check_paths(&path, &record)?;
                earlier.insert(label, record);
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            earlier,
            legacy,
            sealed,
            notes,
        })
    }
}
