//! The resume state: a journal of what this output folder has seen created and saved, so that a
//! re-run (after a crash, a cancel, a CI retry) reuses reports instead of creating them again.
//!
//! It is an append-only JSON-lines file in a hidden folder. Each record is one line written and
//! synced in one go, so a crash can at worst leave a torn last line, which loading skips. A
//! report's `created` record is synced before the report is polled.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::plan::ReportRequest;
use crate::report::Format;

pub(crate) const STATE_DIR: &str = ".acronis-reports";
/// Under [`STATE_DIR`]: files fetched again while an earlier one is in the output folder, kept
/// there until the output's record of them is written (`output::trail` moves them in).
pub(crate) const STAGING_DIR: &str = "staging";

/// Where the run downloads the files that would replace one already in `out_dir`.
pub(crate) fn staging_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(STATE_DIR).join(STAGING_DIR)
}
const JOURNAL: &str = "state.jsonl";
/// Held (an advisory lock) for as long as a run writes into the folder.
const LOCK: &str = "lock";

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Record {
    Created {
        key: String,
        base_url: String,
        report_id: String,
        version: Option<u64>,
        tenant_id: String,
        tenant_name: String,
        period_start: String,
        period_end: String,
        kind: String,
        level: String,
        formats: Vec<Format>,
    },
    File {
        key: String,
        report_id: String,
        format: Format,
        stored_report_id: String,
        path: String,
        bytes: u64,
        sha256: String,
    },
    Deleted {
        key: String,
        report_id: String,
    },
}

/// What the journal knows of one report request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReportState {
    pub(crate) report_id: String,
    pub(crate) version: Option<u64>,
    pub(crate) files: HashMap<Format, SavedFile>,
    pub(crate) deleted: bool,
    /// The journal line that recorded the creation, kept whole for the compacted journal.
    created: Option<Record>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SavedFile {
    pub(crate) stored_report_id: String,
    pub path: String,
    pub bytes: u64,
    pub(crate) sha256: String,
}

/// The identity of a request: the same key means the same report would be created.
pub(crate) fn report_key(request: &ReportRequest) -> String {
    let formats: Vec<&str> = request.formats.iter().map(|f| f.as_str()).collect();
    format!(
        "{}|{}|{}|{}|{}|{}|hide_zero_usage={}|show_skus={}",
        request.tenant_id,
        request.period.start,
        request.period.end,
        request.kind,
        request.level,
        formats.join(","),
        request.hide_zero_usage,
        request.show_skus
    )
}

pub(crate) struct StateStore {
    path: PathBuf,
    base_url: String,
    previous: HashMap<String, ReportState>,
    /// Report ids created by this run for reports still running, by request key.
    current: Mutex<HashMap<String, String>>,
    journal: Mutex<File>,
    /// Two runs writing into one folder would each compact the journal under the other and
    /// race on the same report files; the second one is refused while this is held.
    _lock: Option<File>,
}

impl StateStore {
    /// Opens the journal of `out_dir`. With `fresh`, or for another API base URL, earlier records
    /// are not reused (a fresh journal replaces the old one).
    pub(crate) fn open(out_dir: &Path, base_url: &str, fresh: bool) -> io::Result<Self> {
        let dir = state_dir(out_dir)?;
        let lock = lock(&dir.join(LOCK))?;
        let path = dir.join(JOURNAL);
        let records = if fresh {
            Vec::new()
        } else {
            read_journal(&path)?
        };
        let previous = fold(records, base_url);
        // Start a compacted journal holding only what is reused, so it never grows without end.
        let mut compacted = Vec::new();
        for (key, state) in &previous {
            compacted.extend(records_of(key, state));
        }
        let mut text = String::new();
        for record in &compacted {
            text.push_str(&line(record)?);
        }
        crate::disk::write_atomic(&path, text.as_bytes())?;
        let journal = OpenOptions::new().append(true).open(&path)?;
        Ok(Self {
            path,
            base_url: base_url.to_owned(),
            previous,
            current: Mutex::new(HashMap::new()),
            journal: Mutex::new(journal),
            _lock: lock,
        })
    }

    /// Whether this run holds the folder's lock (not on a file system that cannot lock).
    pub(crate) fn holds_lock(&self) -> bool {
        self._lock.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What an earlier run recorded for this request.
    pub(crate) fn recorded(&self, key: &str) -> Option<&ReportState> {
        self.previous.get(key)
    }

    /// The report this run works with for a request: created now, or recorded earlier.
    pub(crate) fn current_report_id(&self, key: &str) -> Option<String> {
        let created_now = self.current.lock().ok().and_then(|c| c.get(key).cloned());
        created_now.or_else(|| self.previous.get(key).map(|s| s.report_id.clone()))
    }

    /// The report of this request has finished and its result holds its id: the id need not be
    /// kept here any longer, so this map follows the reports in flight, not the whole plan.
    pub(crate) fn finished(&self, key: &str) {
        if let Ok(mut current) = self.current.lock() {
            current.remove(key);
        }
    }

    pub(crate) fn record_created(
        &self,
        key: &str,
        request: &ReportRequest,
        report_id: &str,
        version: Option<u64>,
    ) -> io::Result<()> {
        if let Ok(mut current) = self.current.lock() {
            current.insert(key.to_owned(), report_id.to_owned());
        }
        self.append(&Record::Created {
            key: key.to_owned(),
            base_url: self.base_url.clone(),
            report_id: report_id.to_owned(),
            version,
            tenant_id: request.tenant_id.clone(),
            tenant_name: request.tenant_name.clone(),
            period_start: request.period.start.to_string(),
            period_end: request.period.end.to_string(),
            kind: request.kind.to_string(),
            level: request.level.to_string(),
            formats: request.formats.clone(),
        })
    }

    pub(crate) fn record_file(
        &self,
        key: &str,
        report_id: &str,
        format: Format,
        file: &SavedFile,
    ) -> io::Result<()> {
        self.append(&Record::File {
            key: key.to_owned(),
            report_id: report_id.to_owned(),
            format,
            stored_report_id: file.stored_report_id.clone(),
            path: file.path.clone(),
            bytes: file.bytes,
            sha256: file.sha256.clone(),
        })
    }

    pub(crate) fn record_deleted(&self, key: &str, report_id: &str) -> io::Result<()> {
        self.append(&Record::Deleted {
            key: key.to_owned(),
            report_id: report_id.to_owned(),
        })
    }

    fn append(&self, record: &Record) -> io::Result<()> {
        let text = line(record)?;
        let mut journal = self.journal.lock().map_err(|_| {
            io::Error::other("the state journal is unusable after an earlier failure")
        })?;
        journal.write_all(text.as_bytes())?;
        journal.sync_data()
    }
}

/// The state folder of `out_dir`, created when missing; anything but a plain folder is refused.
/// Removes the journal's folder a run created (and `out_dir` too with `created_out_dir`), when
/// it holds nothing but what opening the journal put there (an empty journal, the lock, an
/// empty spill folder): a run whose credentials were refused writes nothing. A journal that
/// recorded a report stays, and with it the folders: it is what keeps a re-run from creating
/// that report twice. Only empty folders are removed, so nothing else in them can be lost.
pub(crate) fn remove_if_unused(out_dir: &Path, created_out_dir: bool) {
    let dir = out_dir.join(STATE_DIR);
    let journal = dir.join(JOURNAL);
    match fs::symlink_metadata(&journal) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        _ => return,
    }
    let _ = fs::remove_file(&journal);
    let _ = fs::remove_file(dir.join(LOCK));
    let _ = fs::remove_dir(dir.join(crate::content::spill::FOLDER));
    let _ = fs::remove_dir(&dir);
    if created_out_dir {
        let _ = fs::remove_dir(out_dir);
    }
}

fn state_dir(out_dir: &Path) -> io::Result<PathBuf> {
    let dir = out_dir.join(STATE_DIR);
    match fs::symlink_metadata(&dir) {
        Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
            return Err(io::Error::other(format!(
                "{} is not a plain folder; remove it (it only holds resume state)",
                dir.display()
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&dir)?,
        Err(e) => return Err(e),
    }
    Ok(dir)
}

/// The lock a run holds on its output folder (see [`StateStore::open`]), for a command that
/// writes into an output folder without a journal (`merge`): refused the same way while another
/// run or merge holds it. Held until the value is dropped; `None` on a file system that cannot
/// lock.
pub(crate) fn lock_folder(out_dir: &Path) -> io::Result<Option<File>> {
    lock(&state_dir(out_dir)?.join(LOCK))
}

/// Takes the folder's lock without waiting: a scheduled run that overlaps the previous one
/// should fail at once and say so, not hang until the CI job times out. A file system that
/// cannot lock (some network and FUSE mounts) gets a warning and no lock: the lock guards
/// against a mistake, and refusing every run there would be worse.
fn lock(path: &Path) -> io::Result<Option<File>> {
    if fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(io::Error::other(format!(
            "{} is a symbolic link; remove it (it only marks a run in progress)",
            path.display()
        )));
    }
    // Opening a FIFO for writing would block until a reader comes.
    if fs::symlink_metadata(path).is_ok_and(|meta| !meta.is_file()) {
        return Err(io::Error::other(format!(
            "{} is not a regular file; remove it (it only marks a run in progress)",
            path.display()
        )));
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {
            // Who holds it, for the message a second run shows; only a courtesy.
            let holder = format!(
                "process {} since {}\n",
                std::process::id(),
                jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap_or_default()
            );
            let _ = file
                .set_len(0)
                .and_then(|()| file.write_all(holder.as_bytes()));
            Ok(Some(file))
        }
        Err(fs::TryLockError::WouldBlock) => {
            // Windows locks are mandatory: there the holder cannot be read, and is not named.
            let holder = fs::read_to_string(path)
                .ok()
                .map(|text| text.lines().next().unwrap_or_default().trim().to_owned())
                .filter(|line| !line.is_empty() && line.len() < 200)
                .map_or_else(String::new, |text| format!(", {text}"));
            Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "another acronis-reports run is writing into this folder (it holds {}{holder}); wait for it to finish, or write to another --out",
                    path.display()
                ),
            ))
        }
        Err(fs::TryLockError::Error(e)) => {
            tracing::warn!(
                "cannot lock {} ({e}); going on without protection against a second run into this folder",
                path.display()
            );
            Ok(None)
        }
    }
}

fn line(record: &Record) -> io::Result<String> {
    let mut text = serde_json::to_string(record).map_err(io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// A journal line is a few hundred bytes; a longer one is damage (or a trap) and is skipped
/// without holding it in memory.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

fn read_journal(path: &Path) -> io::Result<Vec<Record>> {
    // Only a regular file: a journal swapped for a link to `/dev/zero` or a FIFO would be read
    // without end or block the run.
    let file = match crate::disk::paths::open_regular(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut number = 0usize;
    let mut buffer = Vec::new();
    loop {
        number += 1;
        buffer.clear();
        let read =
            io::Read::take(&mut reader, MAX_RECORD_BYTES + 1).read_until(b'\n', &mut buffer)?;
        if read == 0 {
            break;
        }
        if buffer.len() as u64 > MAX_RECORD_BYTES {
            tracing::warn!(
                "{}:{number}: ignoring a state record longer than {MAX_RECORD_BYTES} bytes",
                path.display()
            );
            // Skip the rest of the line, a bounded piece at a time.
            while !buffer.ends_with(b"\n") {
                buffer.clear();
                if io::Read::take(&mut reader, MAX_RECORD_BYTES).read_until(b'\n', &mut buffer)?
                    == 0
                {
                    break;
                }
            }
            continue;
        }
        // Invalid UTF-8 can only be a torn or damaged line; what follows is unreliable.
        let Ok(text) = std::str::from_utf8(&buffer) else {
            break;
        };
        match serde_json::from_str::<Record>(text) {
            Ok(record) => records.push(record),
            Err(e) if !text.trim().is_empty() => {
                tracing::warn!(
                    "{}:{number}: ignoring an unreadable state record ({e})",
                    path.display()
                );
            }
            Err(_) => {}
        }
    }
    Ok(records)
}

/// Whether two recorded base URLs (canonical forms) name one API: the same text, or the same
/// port and path on this machine's loopback, however its host is spelt (`localhost`,
/// `127.0.0.1`, `[::1]`). Only the journal's identity: what we connect to is left as given.
fn same_api(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let loopback = |text: &str| {
        let url = url::Url::parse(text).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let is_loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        is_loopback.then(|| {
            (
                url.scheme().to_owned(),
                url.port_or_known_default(),
                url.path().to_owned(),
            )
        })
    };
    matches!((loopback(a), loopback(b)), (Some(x), Some(y)) if x == y)
}

/// Replays the journal into the state of each request, for records of this base URL.
fn fold(records: Vec<Record>, base_url: &str) -> HashMap<String, ReportState> {
    let mut states: HashMap<String, ReportState> = HashMap::new();
    for record in records {
        match record {
            Record::Created {
                ref key,
                base_url: ref url,
                ref report_id,
                version,
                ..
            } => {
                if same_api(url, base_url) {
                    // A later creation for the same request replaces the earlier report.
                    let state = ReportState {
                        report_id: report_id.clone(),
                        version,
                        created: Some(record.clone()),
                        ..ReportState::default()
                    };
                    states.insert(key.clone(), state);
                } else {
                    states.remove(key);
                }
            }
            Record::File {
                key,
                report_id,
                format,
                stored_report_id,
                path,
                bytes,
                sha256,
            } => {
                if let Some(state) = states.get_mut(&key).filter(|s| s.report_id == report_id) {
                    state.files.insert(
                        format,
                        SavedFile {
                            stored_report_id,
                            path,
                            bytes,
                            sha256,
                        },
                    );
                }
            }
            Record::Deleted { key, report_id } => {
                if let Some(state) = states.get_mut(&key).filter(|s| s.report_id == report_id) {
                    state.deleted = true;
                }
            }
        }
    }
    states
}

fn records_of(key: &str, state: &ReportState) -> Vec<Record> {
    let mut records: Vec<Record> = state.created.iter().cloned().collect();
    let mut formats: Vec<&Format> = state.files.keys().collect();
    formats.sort();
    for format in formats {
        let file = &state.files[format];
        records.push(Record::File {
            key: key.to_owned(),
            report_id: state.report_id.clone(),
            format: *format,
            stored_report_id: file.stored_report_id.clone(),
            path: file.path.clone(),
            bytes: file.bytes,
            sha256: file.sha256.clone(),
        });
    }
    if state.deleted {
        records.push(Record::Deleted {
            key: key.to_owned(),
            report_id: state.report_id.clone(),
        });
    }
    records
}

#[cfg(test)]
mod journal_tests {
    use super::*;

    /// The sandbox reached as `localhost` one day and `127.0.0.1` the next is one API.
    #[test]
    fn loopback_spellings_are_one_api_and_other_hosts_are_not() {
        for (a, b) in [
            ("http://localhost:8787", "http://127.0.0.1:8787"),
            ("http://127.0.0.1:8787", "http://[::1]:8787"),
            ("http://LOCALHOST:8787/x", "http://127.0.0.2:8787/x"),
        ] {
            assert!(same_api(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("http://localhost:8787", "http://127.0.0.1:8788"),
            ("http://localhost:8787", "https://localhost:8787"),
            (
                "https://eu2-cloud.acronis.com",
                "https://eu8-cloud.acronis.com",
            ),
            ("http://localhost:8787/a", "http://localhost:8787/b"),
        ] {
            assert!(!same_api(a, b), "{a} {b}");
        }
    }

    /// A journal of one endless line is skipped a bounded piece at a time, never held whole.
    #[test]
    fn an_overlong_journal_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let mut text = vec![b'0'; 5 * MAX_RECORD_BYTES as usize];
        text.extend_from_slice(b"\n{not json}\n");
        std::fs::write(&path, &text).unwrap();
        assert!(read_journal(&path).unwrap().is_empty());
    }
}
