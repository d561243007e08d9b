//! Invoice lines kept from the one read of a file. A file is read while it downloads (the
//! content check), and `billing.csv` needs the same lines at the end of the run: reading a GiB
//! file a second time cost more than the rest of the run together (`BENCHMARKS.md`). So the
//! check's lines go, compactly encoded, to a scratch file (a "spill"), and `billing.csv`
//! replays them instead of reading the file again.
//!
//! A spill is found by what it is of: the SHA-256 of the file's bytes, its format and the
//! billing rule. The lines of a file are a function of those three alone ([`super::lines`]), so
//! a spill can never stand in for another file's lines. A file without one — kept from an
//! earlier run, merged from shards, or one whose spill could not be written — is read again by
//! [`super::lines::lines_of`], with the same result.
//!
//! The spills of a run live in one folder, under the output folder's state folder, from
//! [`install`] until the guard it returns is dropped; one is removed once replayed. Memory stays
//! flat: lines are encoded one at a time and written in blocks.
//!
//! A spill with a name could be changed on disk before it is replayed, so it is sealed: its last
//! bytes are HMAC-SHA-256s, under a key only this process knows, of its name and length (checked
//! first, so a file grown huge is never read) and of its name and content, checked in a read of
//! its own before a replay that copies the bytes where no other process reaches them: the
//! replay reads the copy, so bytes changed after the check never reach billing.csv. Nothing is kept in memory per spill: a run of
//! many reports holds no more at its end than at its start (the `scale` case). For a large spill (one
//! that outgrows a block) that cost a twentieth of a GiB report's run, so up to
//! [`UNNAMED_MAX`] of them at a time are files that never have a name (`O_TMPFILE`, or created
//! and unlinked at once), kept open until replayed: no other process can open them, so they
//! need no seal. Beyond that (file descriptors are not to be spent on a long run's every
//! report) and for small spills, a named, sealed file as before.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The seal's MAC, and its key: as long as SHA-256's block, the longest HMAC uses as it is.
type Hmac = hmac::Hmac<Sha256>;
type Key = [u8; 64];
/// A MAC's length.
const TAG: usize = 32;
/// The seal's length, after the trailer: a MAC of the spill's length, then one of its bytes.
const SEAL: u64 = 2 * TAG as u64;

use super::lines::{Line, LinesError};
use super::{Amount, ContentError, Measure};
use crate::direct_io::{FileReader, FileWriter};
use crate::report::{BillingRule, Format};

/// The folder, under the folder given to [`install`], that holds the spills of a run.
pub(crate) const FOLDER: &str = "lines";
/// The end of a whole spill: its line count (8 bytes, little-endian), then these.
const MAGIC: &[u8; 8] = b"ARLINES2";
const TRAILER: u64 = 16;
/// What a record is.
const LINE: u8 = 1;
const END_OK: u8 = 2;
const END_PROBLEM: u8 = 3;
/// Bytes gathered before a write: large writes, few system calls.
const BLOCK: usize = 256 * 1024;
/// Spills at least this large are read around the page cache, as they were written; a smaller
/// one's bytes are still in the cache (its tail always is), and a direct read would first
/// have to write them to the disk.
const READ_DIRECT: u64 = 4 << 20;
/// Nanos of a whole number, which most values are: they encode in a byte or two.
const WHOLE: i64 = 1_000_000_000;
/// Where a line has no billable measure (a default line).
const NO_MEASURE: u8 = u8::MAX;
/// The longest record a replay takes: a line's texts come from one row, at most 1 MiB
/// (`super::limit`), so a longer length is damage, not a line to allocate for.
const RECORD_MAX: usize = 64 << 20;
/// Unnamed spills open at a time: each holds a file descriptor until it is replayed.
const UNNAMED_MAX: usize = 64;

/// The spills of a run: a folder, removed when the last user lets go of it.
#[derive(Debug)]
struct Store {
    dir: PathBuf,
    /// The key of the seals: a named spill sits in a folder anyone with the output folder can
    /// write to, so one changed on disk (damage, or a hand) must not reach billing.csv, and
    /// only this process can make a seal that holds.
    key: Key,
    /// The unnamed spills (at most [`UNNAMED_MAX`]), by their name's hash.
    unnamed: Mutex<std::collections::HashMap<NameKey, Unnamed>>,
    /// How many unnamed spills are open, being written or kept.
    slots: Arc<AtomicUsize>,
}

/// A spill without a name, open: only this process can reach it.
#[derive(Debug)]
struct Unnamed {
    file: File,
    _slot: Slot,
}

/// One of the [`UNNAMED_MAX`] unnamed spills a store may have open; given back when dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(slots: &Arc<AtomicUsize>) -> Option<Slot> {
        slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < UNNAMED_MAX).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(slots)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// The store in use, and how many [`Installed`] guards hold it. Process-wide because the two
/// ends are far apart (the download's check thread and the output writer): a spill is only
/// ever found by the content it is of, so sharing one store cannot mix files up.
static INSTALLED: Mutex<Option<(Arc<Store>, usize)>> = Mutex::new(None);

/// Keeps the store while it lives; the last one dropped removes the folder (once the spills
/// still being written are done).
#[derive(Debug)]
#[must_use = "the store goes away with the guard"]
pub(crate) struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, guards)) = installed.as_mut() {
            *guards -= 1;
            if *guards == 0 {
                *installed = None;
            }
        }
    }
}

/// Turns spilling on, in `FOLDER` under `dir` (which must exist, and be the caller's alone:
/// a folder left there by a killed run is emptied). While a store is installed, installing
/// again shares it.
pub(crate) fn install(dir: &Path) -> io::Result<Installed> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, guards)) = installed.as_mut() {
        *guards += 1;
        return Ok(Installed(()));
    }
    let folder = dir.join(FOLDER);
    match fs::remove_dir_all(&folder) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut key = [0; 64];
    getrandom::fill(&mut key)
        .map_err(|e| io::Error::other(format!("no key for the seals: {e}")))?;
    fs::create_dir(&folder)?;
    *installed = Some((
        Arc::new(Store {
            dir: folder,
            key,
            unnamed: Mutex::default(),
            slots: Arc::default(),
        }),
        1,
    ));
    Ok(Installed(()))
}

fn current() -> Option<Arc<Store>> {
    let installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    installed.as_ref().map(|(store, _)| Arc::clone(store))
}

/// A spill's name, as the unnamed spills are filed: 128 bits of its SHA-256.
type NameKey = [u8; 16];

fn name_key(name: &str) -> NameKey {
    let digest = Sha256::digest(name.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The end of a spill's name: what, besides the bytes, its lines depend on.
fn suffix(format: Format, rule: &BillingRule) -> String {
    // The rule as data; a rule that cannot be serialised gets a name no other rule shares.
    let rule = serde_json::to_vec(rule).unwrap_or_else(|_| b"?".to_vec());
    let rule = hex::encode(&Sha256::digest(&rule)[..8]);
    format!(".{}.{rule}.lines", format.as_str())
}

/// The spill's name, from a file's SHA-256 as hex; `None` for anything else (a checksum read
/// from a file must not become a path).
fn name(sha256: &str, format: Format, rule: &BillingRule) -> Option<String> {
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("{}{}", sha256.to_ascii_lowercase(), suffix(format, rule)))
}

/// Writes the lines of one file as they are read. Failing to write never affects the read:
/// the spill is dropped, and `billing.csv` reads the file again.
pub(crate) struct SpillWriter {
    store: Arc<Store>,
    suffix: String,
    scratch: Scratch,
    /// The text fields of the last line: a field that did not change is not written again.
    previous: Line,
    /// The last line's billable measure as [`measure_index`] gives it, and the bits of the
    /// measures it has: worked out once a line, not again as the next line's "before".
    previous_measure: u8,
    previous_present: u64,
    block: Vec<u8>,
    record: Vec<u8>,
    lines: u64,
    broken: bool,
    /// Of every byte written to a named file, for the seal.
    digest: Hmac,
}

/// Where a spill is written. A large spill is written around the page cache, since it is read
/// once, soon, and copying it into the cache cost as much as encoding it.
enum Scratch {
    /// Nothing yet: the spill is all in the block. A small one is written plainly at the end,
    /// without the aligned block direct writes need.
    None,
    Unnamed {
        out: FileWriter,
        slot: Slot,
    },
    Named {
        out: FileWriter,
        temp: tempfile::TempPath,
    },
}

/// A named scratch file in `dir`.
fn named(dir: &Path) -> io::Result<(File, tempfile::TempPath)> {
    Ok(tempfile::Builder::new()
        .prefix(".pending-")
        .tempfile_in(dir)?
        .into_parts())
}

impl SpillWriter {
    /// A spill for a file of `format` read by `rule`; `None` when no store is installed.
    pub fn start(format: Format, rule: &BillingRule) -> Option<SpillWriter> {
        let store = current()?;
        let digest = content_mac(&store.key);
        Some(SpillWriter {
            store,
            suffix: suffix(format, rule),
            scratch: Scratch::None,
            previous: Line::default(),
            previous_measure: NO_MEASURE,
            previous_present: 0,
            block: Vec::with_capacity(4096),
            record: Vec::with_capacity(256),
            lines: 0,
            broken: false,
            digest,
        })
    }

    pub(crate) fn add(&mut self, line: &Line) {
        if self.broken {
            return;
        }
        let record = &mut self.record;
        record.clear();
        // A changed field is written as what it shares with the last line's and the rest:
        // neighbouring tenant ids and item names often share their start.
        let mut changed = 0u64;
        let mut shared = [0usize; TEXTS];
        for (i, (now, before)) in texts(line)
            .into_iter()
            .zip(texts(&self.previous))
            .enumerate()
        {
            let mut common = common_prefix(now.as_bytes(), before.as_bytes());
            if common == now.len() && common == before.len() {
                continue;
            }
            while !now.is_char_boundary(common) {
                common -= 1;
            }
            changed |= 1 << i;
            shared[i] = common;
        }
        let conflicts = !line.conflicts.is_empty();
        put_varint(record, changed | u64::from(conflicts) << TEXTS);
        for (i, (now, before)) in texts(line)
            .into_iter()
            .zip(texts_mut(&mut self.previous))
            .enumerate()
        {
            if changed & 1 << i != 0 {
                put_varint(record, shared[i] as u64);
                put_text(record, &now[shared[i]..]);
                before.truncate(shared[i]);
                before.push_str(&now[shared[i]..]);
            }
        }
        // Numbers too are written only where they changed: neighbouring lines mostly have
        // the same counts, the same measure, and many of the same values (zeros above all).
        let before = &mut self.previous;
        let measure = measure_index(line.billable_measure);
        let mut now_present = 0u64;
        let mut numbers = 0u64;
        for (i, m) in Measure::ALL.into_iter().enumerate() {
            if let Some(amount) = line.measures.get(m) {
                now_present |= 1 << i;
                if before.measures.get(m) != Some(amount) {
                    numbers |= 1 << (MEASURES + i as u32);
                }
            }
        }
        numbers |= u64::from(line.rows != before.rows) << ROWS
            | u64::from(line.rows_without_sku != before.rows_without_sku) << ROWS_WITHOUT_SKU
            | u64::from(measure != self.previous_measure) << BILLABLE_MEASURE
            | u64::from(line.billable_raw != before.billable_raw) << BILLABLE_RAW
            | u64::from(now_present != self.previous_present) << PRESENT;
        put_varint(record, numbers);
        if numbers & 1 << ROWS != 0 {
            put_varint(record, line.rows);
        }
        if numbers & 1 << ROWS_WITHOUT_SKU != 0 {
            put_varint(record, line.rows_without_sku);
        }
        if numbers & 1 << BILLABLE_MEASURE != 0 {
            record.push(measure);
        }
        if numbers & 1 << BILLABLE_RAW != 0 {
            put_amount(record, line.billable_raw);
        }
        if numbers & 1 << PRESENT != 0 {
            put_varint(record, now_present);
        }
        for (i, m) in Measure::ALL.into_iter().enumerate() {
            if numbers & 1 << (MEASURES + i as u32) != 0
                && let Some(amount) = line.measures.get(m)
            {
                put_amount(record, amount);
            }
        }
        before.rows = line.rows;
        before.rows_without_sku = line.rows_without_sku;
        before.billable_measure = line.billable_measure;
        before.billable_raw = line.billable_raw;
        before.measures = line.measures;
        self.previous_measure = measure;
        self.previous_present = now_present;
        if conflicts {
            put_varint(record, line.conflicts.len() as u64);
            for conflict in &line.conflicts {
                put_text(record, conflict);
            }
        }
        self.block.push(LINE);
        put_varint(&mut self.block, self.record.len() as u64);
        self.block.extend_from_slice(&self.record);
        self.lines += 1;
        if self.block.len() >= BLOCK {
            self.write_block();
        }
    }

    fn write_block(&mut self) {
        if matches!(self.scratch, Scratch::None) && !self.broken {
            self.scratch = self.open_scratch();
        }
        let written = match &mut self.scratch {
            Scratch::None => Ok(()),
            Scratch::Unnamed { out, .. } => out.put(&self.block),
            Scratch::Named { out, .. } => {
                self.digest.update(&self.block);
                out.put(&self.block)
            }
        };
        if let Err(e) = written {
            tracing::debug!("the spill of the lines stops: {e}");
            self.broken = true;
        }
        self.block.clear();
    }

    /// The file of a spill that outgrew a block: unnamed while a slot is free, else named.
    fn open_scratch(&mut self) -> Scratch {
        if let Some(slot) = Slot::take(&self.store.slots) {
            match tempfile::tempfile_in(&self.store.dir) {
                Ok(file) => {
                    return Scratch::Unnamed {
                        out: FileWriter::new(file, true),
                        slot,
                    };
                }
                Err(e) => tracing::debug!("no unnamed spill of the lines: {e}"),
            }
        }
        match named(&self.store.dir) {
            Ok((file, temp)) => Scratch::Named {
                out: FileWriter::new(file, true),
                temp,
            },
            Err(e) => {
                tracing::debug!("no spill of the lines: {e}");
                self.broken = true;
                Scratch::None
            }
        }
    }

    /// Ends the spill with how the read ended: `Ok`, or the problem that stopped it (as the
    /// reader words it). `None` when it could not be written whole.
    pub(crate) fn finish(mut self, outcome: Result<(), &str>) -> Option<Spilled> {
        match outcome {
            Ok(()) => self.block.push(END_OK),
            Err(problem) => {
                self.block.push(END_PROBLEM);
                put_text(&mut self.block, problem);
            }
        }
        self.block.extend_from_slice(&self.lines.to_le_bytes());
        self.block.extend_from_slice(MAGIC);
        if self.broken {
            return None;
        }
        let block = &self.block;
        let mut digest = self.digest;
        let mut sealed = |file, temp| {
            digest.update(block);
            Kept::Named {
                file,
                temp,
                content: digest.clone().finalize().into_bytes().into(),
            }
        };
        let kept = match self.scratch {
            Scratch::None => named(&self.store.dir).and_then(|(mut file, temp)| {
                io::Write::write_all(&mut file, block).map(|()| sealed(file, temp))
            }),
            Scratch::Named { mut out, temp } => out
                .put(block)
                .and_then(|()| out.into_file())
                .map(|file| sealed(file, temp)),
            Scratch::Unnamed { mut out, slot } => out
                .put(block)
                .and_then(|()| out.into_file())
                .map(|file| Kept::Unnamed(Unnamed { file, _slot: slot })),
        };
        kept.inspect_err(|e| tracing::debug!("the spill of the lines stops: {e}"))
            .ok()
            .map(|kept| Spilled {
                store: self.store,
                suffix: self.suffix,
                kept,
            })
    }
}

/// A whole spill, waiting for the SHA-256 of the bytes it was read from, which another thread
/// computes. Dropped unkept, it is removed.
#[derive(Debug)]
pub(crate) struct Spilled {
    store: Arc<Store>,
    suffix: String,
    kept: Kept,
}

#[derive(Debug)]
enum Kept {
    Named {
        /// The file as this process made it, open: the seal is written through it, never
        /// through its name, which another process could have pointed at a FIFO or a link.
        file: File,
        temp: tempfile::TempPath,
        /// The MAC of the spill's bytes, before its name is known.
        content: [u8; 32],
    },
    Unnamed(Unnamed),
}

impl Spilled {
    /// Files the spill under the SHA-256 (hex) of the bytes whose lines it holds.
    pub(crate) fn keep(self, sha256: &str) {
        if !(sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
            return;
        }
        let name = format!("{}{}", sha256.to_ascii_lowercase(), self.suffix);
        let (mut file, temp, content) = match self.kept {
            Kept::Named {
                file,
                temp,
                content,
            } => (file, temp, content),
            Kept::Unnamed(unnamed) => {
                self.store
                    .unnamed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(name_key(&name), unnamed);
                return;
            }
        };
        let path = self.store.dir.join(&name);
        // After the bytes this process wrote, where its own handle stands.
        let sealed = file.stream_position().and_then(|len| {
            let mut seal = [0u8; SEAL as usize];
            let (length, bytes) = seal.split_at_mut(TAG);
            length.copy_from_slice(
                &length_mac(&self.store.key, &name, len)
                    .finalize()
                    .into_bytes(),
            );
            bytes.copy_from_slice(
                &seal_mac(&self.store.key, &name, &content)
                    .finalize()
                    .into_bytes(),
            );
            io::Write::write_all(&mut file, &seal)
        });
        if let Err(e) = sealed.and_then(|()| temp.persist(&path).map_err(|e| e.error)) {
            tracing::debug!("the spill of the lines is dropped: {e}");
        }
    }
}

/// Hands the lines of the file whose bytes have `sha256` (hex), read as `format` by `rule`, to
/// `on_line`, from its spill, and removes the spill. `None` when there is no whole spill of it:
/// then the file must be read. Otherwise how the read ended, as [`super::lines::lines_of`]
/// would have ended reading the file: a problem of the file is the reader's own words.
pub(crate) fn replay(
    sha256: &str,
    format: Format,
    rule: &BillingRule,
    on_line: &mut dyn FnMut(&Line) -> io::Result<()>,
) -> Option<Result<(), LinesError>> {
    let store = current()?;
    let name = name(sha256, format, rule)?;
    let unnamed = store
        .unnamed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&name_key(&name));
    if let Some(Unnamed { mut file, _slot }) = unnamed {
        // Never named: as this process wrote it. It goes (and its slot is free) once replayed.
        let whole = trailer(&mut file, 0);
        let replayed = whole.map(|(body, lines)| Replay::new(file, body).run(lines, on_line))?;
        return Some(replayed.map_err(LinesError::from));
    }
    let path = store.dir.join(&name);
    // Never through a link, and only as this process wrote it: anything else is read from the
    // report file itself, whose bytes the run has sealed.
    let mut file = crate::disk::paths::open_regular(&path).ok()?;
    // What is replayed is the copy made as the seal was checked: the file itself may change
    // after the check, as its lines are handed on.
    let Some(copy) = sealed_copy(&mut file, &store, &name) else {
        tracing::warn!(
            "the spill of the lines of {} changed after it was written; billing.csv reads the file again",
            &sha256[..12.min(sha256.len())]
        );
        let _ = fs::remove_file(&path);
        return None;
    };
    let replayed = match copy {
        Verified::Memory(bytes) => bytes
            .len()
            .checked_sub(TRAILER as usize)
            .and_then(|body| Some((body, bytes[body..].try_into().ok()?)))
            .and_then(|(body, end)| ended(&end, body as u64))
            .map(|(body, lines)| {
                Replay::of(Box::new(io::Cursor::new(bytes).take(body))).run(lines, on_line)
            }),
        Verified::File(mut copy) => {
            trailer(&mut copy, 0).map(|(body, lines)| Replay::new(copy, body).run(lines, on_line))
        }
    };
    // Each file's lines are billed once a run; should they be wanted again, the file is there.
    let _ = fs::remove_file(&path);
    let replayed = replayed?;
    Some(replayed.map_err(LinesError::from))
}

impl From<Stop> for LinesError {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Write(e) => LinesError::Write(e),
            Stop::Read(e) => LinesError::Content(ContentError::Read(e)),
            Stop::Problem(problem) => LinesError::Content(ContentError::Recorded(problem)),
        }
    }
}

/// The MAC of a spill's bytes, as it is written.
fn content_mac(key: &Key) -> Hmac {
    let mut mac = <Hmac as KeyInit>::new(&(*key).into());
    mac.update(b"acronis-reports spill v2\0");
    mac
}

/// The MAC of the spill named `name` whose bytes have the MAC `content`: it binds the two, so
/// one spill's bytes under another's name do not hold either.
fn seal_mac(key: &Key, name: &str, content: &[u8; 32]) -> Hmac {
    let mut mac = content_mac(key);
    mac.update(name.as_bytes());
    mac.update(b"\0");
    mac.update(content);
    mac
}

/// The MAC of the length of the spill named `name` (its bytes before the seal): checked before
/// any of them is read, so that a spill grown huge (a sparse file costs its maker nothing) is
/// turned down at once instead of read to its end.
fn length_mac(key: &Key, name: &str, len: u64) -> Hmac {
    let mut mac = <Hmac as KeyInit>::new(&(*key).into());
    mac.update(b"acronis-reports spill length v2\0");
    mac.update(name.as_bytes());
    mac.update(b"\0");
    mac.update(&len.to_le_bytes());
    mac
}

/// A named spill's bytes before its seal, checked and copied as they are read.
enum Verified {
    Memory(Vec<u8>),
    /// A file without a name: no other process can reach it.
    File(File),
}

/// Named spills up to this size are copied to memory for their replay; larger ones to a file.
const COPY_IN_MEMORY: u64 = 1 << 20;

/// The spill's bytes (its records and trailer), when it ends with the seal this process made
/// for `name` and them: checked before any of its lines is handed on, so a damaged spill never
/// bills half a file, and copied as they are checked where no other process can reach them, so
/// that what is replayed is what was checked. The length is checked first, before a byte of
/// the spill is read.
fn sealed_copy(file: &mut File, store: &Store, name: &str) -> Option<Verified> {
    let key = &store.key;
    let body = file.metadata().ok()?.len().checked_sub(SEAL)?;
    let mut found = [0u8; SEAL as usize];
    file.seek(SeekFrom::Start(body)).ok()?;
    file.read_exact(&mut found).ok()?;
    file.seek(SeekFrom::Start(0)).ok()?;
    let (length, found) = found.split_at(TAG);
    length_mac(key, name, body).verify_slice(length).ok()?;
    enum Target {
        Memory(Vec<u8>),
        File(FileWriter),
    }
    // The length is this process's own: it bounds what is read and kept.
    let mut copy = match body <= COPY_IN_MEMORY {
        true => Target::Memory(Vec::with_capacity(usize::try_from(body).ok()?)),
        false => Target::File(FileWriter::new(
            tempfile::tempfile_in(&store.dir).ok()?,
            body >= READ_DIRECT,
        )),
    };
    let mut mac = content_mac(key);
    let mut buffer = vec![0u8; BLOCK];
    let mut left = body;
    while left > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        match file.read(&mut buffer[..want]) {
            Ok(0) => return None,
            Ok(read) => {
                mac.update(&buffer[..read]);
                match &mut copy {
                    Target::Memory(bytes) => bytes.extend_from_slice(&buffer[..read]),
                    Target::File(out) => out.put(&buffer[..read]).ok()?,
                }
                left -= read as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let content: [u8; 32] = mac.finalize().into_bytes().into();
    // In constant time, as a MAC is compared.
    seal_mac(key, name, &content).verify_slice(found).ok()?;
    match copy {
        Target::Memory(bytes) => Some(Verified::Memory(bytes)),
        Target::File(out) => out.into_file().ok().map(Verified::File),
    }
}

/// The length of the records and the line count, when the spill ends as a whole one does (then
/// `sealed` bytes of seal): a spill cut short (a full disk) is never half replayed.
fn trailer(file: &mut File, sealed: u64) -> Option<(u64, u64)> {
    let len = file.metadata().ok()?.len().checked_sub(sealed)?;
    let body = len.checked_sub(TRAILER)?;
    file.seek(SeekFrom::Start(body)).ok()?;
    let mut end = [0u8; TRAILER as usize];
    file.read_exact(&mut end).ok()?;
    file.seek(SeekFrom::Start(0)).ok()?;
    ended(&end, body)
}

/// The length of the records and the line count, from the trailer that follows `body` bytes
/// of records, if it is one.
fn ended(end: &[u8; TRAILER as usize], body: u64) -> Option<(u64, u64)> {
    let (count, magic) = end.split_at(8);
    let count = u64::from_le_bytes(count.try_into().ok()?);
    (magic == MAGIC).then_some((body, count))
}

enum Stop {
    Write(io::Error),
    Read(io::Error),
    Problem(String),
}

fn corrupt(what: &str) -> Stop {
    Stop::Read(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the spill of its lines is damaged ({what})"),
    ))
}

/// Reads records out of blocks of the spill.
struct Replay {
    file: Box<dyn Read>,
    buffer: Vec<u8>,
    at: usize,
    end: usize,
}

impl Replay {
    fn new(file: File, body: u64) -> Self {
        Self::of(Box::new(
            FileReader::new(file, body >= READ_DIRECT).take(body),
        ))
    }

    /// The replay of the records `file` gives (up to the trailer).
    fn of(file: Box<dyn Read>) -> Self {
        Replay {
            file,
            buffer: vec![0; BLOCK],
            at: 0,
            end: 0,
        }
    }

    /// At least `n` bytes buffered from `at`, unless the records end first.
    fn fill(&mut self, n: usize) -> Result<bool, Stop> {
        if self.end - self.at >= n {
            return Ok(true);
        }
        self.buffer.copy_within(self.at..self.end, 0);
        self.end -= self.at;
        self.at = 0;
        if self.buffer.len() < n {
            self.buffer.resize(n, 0);
        }
        while self.end < n {
            match self.file.read(&mut self.buffer[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Stop::Read(e)),
            }
        }
        Ok(true)
    }

    /// The next record (its length, then its bytes), however long.
    fn record(&mut self) -> Result<&[u8], Stop> {
        // A length takes at most 10 bytes; fewer may be left before the trailer.
        self.fill(10)?;
        let mut head = Cursor(&self.buffer[self.at..self.end]);
        let len = usize::try_from(head.varint()?)
            .ok()
            .filter(|len| *len <= RECORD_MAX)
            .ok_or_else(|| corrupt("a record's length"))?;
        self.at = self.end - head.0.len();
        if !self.fill(len)? {
            return Err(corrupt("a record cut short"));
        }
        let record = &self.buffer[self.at..self.at + len];
        self.at += len;
        Ok(record)
    }

    fn run(
        mut self,
        lines: u64,
        on_line: &mut dyn FnMut(&Line) -> io::Result<()>,
    ) -> Result<(), Stop> {
        let mut line = Line::default();
        let mut replayed = 0u64;
        loop {
            if !self.fill(1)? {
                return Err(corrupt("no end"));
            }
            let tag = self.buffer[self.at];
            self.at += 1;
            match tag {
                LINE => {}
                END_OK | END_PROBLEM if replayed != lines => return Err(corrupt("line count")),
                END_OK => return Ok(()),
                END_PROBLEM => {
                    let problem = String::from_utf8_lossy(self.record()?).into_owned();
                    return Err(Stop::Problem(problem));
                }
                _ => return Err(corrupt("an unknown record")),
            }
            let record = self.record()?;
            decode(record, &mut line)?;
            replayed += 1;
            on_line(&line).map_err(Stop::Write)?;
        }
    }
}

/// Makes `line` the line `record` holds; text fields it does not hold stay as they were.
fn decode(record: &[u8], line: &mut Line) -> Result<(), Stop> {
    let mut at = Cursor(record);
    let flags = at.varint()?;
    for (i, field) in texts_mut(line).into_iter().enumerate() {
        if flags & 1 << i != 0 {
            let shared = usize::try_from(at.varint()?).map_err(|_| corrupt("a text"))?;
            if shared > field.len() || !field.is_char_boundary(shared) {
                return Err(corrupt("a text's start"));
            }
            field.truncate(shared);
            field.push_str(at.text()?);
        }
    }
    // Numbers not written are the last line's.
    let numbers = at.varint()?;
    if numbers & 1 << ROWS != 0 {
        line.rows = at.varint()?;
    }
    if numbers & 1 << ROWS_WITHOUT_SKU != 0 {
        line.rows_without_sku = at.varint()?;
    }
    if numbers & 1 << BILLABLE_MEASURE != 0 {
        line.billable_measure = match at.byte()? {
            NO_MEASURE => "",
            i => Measure::ALL
                .get(usize::from(i))
                .ok_or_else(|| corrupt("a measure"))?
                .name(),
        };
    }
    if numbers & 1 << BILLABLE_RAW != 0 {
        line.billable_raw = at.amount()?;
    }
    let present = if numbers & 1 << PRESENT != 0 {
        Some(at.varint()?)
    } else {
        None
    };
    for (i, measure) in Measure::ALL.into_iter().enumerate() {
        let here = present.map_or(line.measures.get(measure).is_some(), |bits| {
            bits & 1 << i != 0
        });
        if !here {
            line.measures.set(measure, None);
        } else if numbers & 1 << (MEASURES + i as u32) != 0 {
            line.measures.set(measure, Some(at.amount()?));
        } else if line.measures.get(measure).is_none() {
            return Err(corrupt("a measure's value"));
        }
    }
    line.conflicts.clear();
    if flags & 1 << TEXTS != 0 {
        for _ in 0..at.varint()? {
            line.conflicts.push(at.text()?.to_owned());
        }
    }
    if !at.0.is_empty() {
        return Err(corrupt("a line's length"));
    }
    Ok(())
}

/// The bits of a record's number flags: which of the line's numbers it holds (the others are
/// the last line's).
const ROWS: u32 = 0;
const ROWS_WITHOUT_SKU: u32 = 1;
const BILLABLE_MEASURE: u32 = 2;
const BILLABLE_RAW: u32 = 3;
/// Which measures the line has, when that changed.
const PRESENT: u32 = 4;
/// A bit for each measure whose value changed, in [`Measure::ALL`] order.
const MEASURES: u32 = 5;

/// The billable measure's place in [`Measure::ALL`], or [`NO_MEASURE`].
fn measure_index(name: &str) -> u8 {
    Measure::ALL
        .iter()
        // The line's name is one of these very texts: mostly at the same address.
        .position(|m| std::ptr::eq(m.name(), name) || m.name() == name)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(NO_MEASURE)
}

/// Text fields of a line, in the order they are encoded.
const TEXTS: usize = 10;

fn texts(line: &Line) -> [&str; TEXTS] {
    [
        &line.tenant_id,
        &line.tenant_kind,
        &line.tenant_name,
        &line.offering_item,
        &line.infra_backend,
        &line.edition,
        &line.sku,
        &line.day,
        &line.unit,
        &line.usage_name,
    ]
}

fn texts_mut(line: &mut Line) -> [&mut String; TEXTS] {
    [
        &mut line.tenant_id,
        &mut line.tenant_kind,
        &mut line.tenant_name,
        &mut line.offering_item,
        &mut line.infra_backend,
        &mut line.edition,
        &mut line.sku,
        &mut line.day,
        &mut line.unit,
        &mut line.usage_name,
    ]
}

/// How many leading bytes `a` and `b` share, compared 8 at a time: this runs for every text of
/// every line.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let len = a.len().min(b.len());
    let word = |bytes: &[u8], at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let mut at = 0;
    while at + 8 <= len {
        let differ = word(a, at) ^ word(b, at);
        if differ != 0 {
            return at + (differ.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < len && a[at] == b[at] {
        at += 1;
    }
    at
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_varint128(out: &mut Vec<u8>, mut value: u128) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A whole number as its zig-zagged value with a 0 bit, anything else as its zig-zagged nanos
/// with a 1 bit.
fn put_amount(out: &mut Vec<u8>, amount: Amount) {
    let nanos = amount.nanos();
    let zigzag = |n: i128| ((n << 1) ^ (n >> 127)) as u128;
    let encoded = match i64::try_from(nanos) {
        Ok(n) if n % WHOLE == 0 => zigzag(i128::from(n / WHOLE)) << 1,
        _ => zigzag(nanos) << 1 | 1,
    };
    put_varint128(out, encoded);
}

/// A position in a record.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, Stop> {
        let (&first, rest) = self.0.split_first().ok_or_else(|| corrupt("cut short"))?;
        self.0 = rest;
        Ok(first)
    }

    fn varint128(&mut self) -> Result<u128, Stop> {
        // Most amounts take a byte.
        if let Some((&first, rest)) = self.0.split_first()
            && first < 0x80
        {
            self.0 = rest;
            return Ok(u128::from(first));
        }
        let mut value = 0u128;
        for shift in (0..128).step_by(7) {
            let byte = self.byte()?;
            value |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("a number"))
    }

    fn varint(&mut self) -> Result<u64, Stop> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let bits = self.byte()?;
            let part = u64::from(bits & 0x7f);
            // The tenth byte may hold one bit only.
            if shift == 63 && part > 1 {
                break;
            }
            value |= part << shift;
            if bits & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("a number"))
    }

    fn text(&mut self) -> Result<&'a str, Stop> {
        let len = usize::try_from(self.varint()?).map_err(|_| corrupt("a text"))?;
        if len > self.0.len() {
            return Err(corrupt("a text cut short"));
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(text).map_err(|_| corrupt("a text"))
    }

    fn amount(&mut self) -> Result<Amount, Stop> {
        let encoded = self.varint128()?;
        let zigzag = encoded >> 1;
        let value = (zigzag >> 1) as i128 ^ -((zigzag & 1) as i128);
        let nanos = if encoded & 1 == 0 {
            value
                .checked_mul(i128::from(WHOLE))
                .ok_or_else(|| corrupt("an amount"))?
        } else {
            value
        };
        Ok(Amount::from_nanos(nanos))
    }
}

/// Tests that install the process-wide store take this first: one store at a time.
#[cfg(test)]
pub(crate) fn one_store_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static STORE: Mutex<()> = Mutex::new(());
    STORE.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
