//! What we check in a downloaded file: that its usage rows carry SKUs where they were asked for,
//! and that a `csv_v2_0` or `json_v2_0` file can be read at all.
//!
//! The column layout of `csv_v2_0` and the row shape of `json_v2_0` are not documented, so
//! columns are found by header name and JSON usage entries by their keys — never by position.
//!
//! A file is checked while it downloads ([`Inspection`]), from the same chunks that are hashed
//! and written, so the check costs no second read. Disaster Recovery compute points are counted
//! by `billing` alone (see [`crate::billing::Billing::dr_compute_points`]).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

use crate::report::Format;
use crate::results::{SkuCheck, SkuStatus};

/// Whether a usage row is Disaster Recovery compute points counted in point-seconds: usage name
/// `compute_points` (or an offering item `…_dr_compute_points`), unit `seconds` or none.
/// Absent fields are passed as "".
pub(crate) fn is_dr_seconds(usage_name: &str, offering_item: &str, unit: &str) -> bool {
    const SUFFIX: &str = "_dr_compute_points";
    let dr = usage_name.eq_ignore_ascii_case("compute_points")
        || (offering_item.len() >= SUFFIX.len()
            && offering_item.as_bytes()[offering_item.len() - SUFFIX.len()..]
                .eq_ignore_ascii_case(SUFFIX.as_bytes()));
    dr && (unit.is_empty() || unit.eq_ignore_ascii_case("seconds"))
}

/// What one file tells us.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileFacts {
    pub sku_check: SkuCheck,
}

impl FileFacts {
    /// Nothing to check (a legacy format).
    pub const SKIPPED: FileFacts = FileFacts {
        sku_check: SkuCheck::SKIPPED,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{format} file {path} is not valid: {detail}")]
    Malformed {
        format: Format,
        path: String,
        detail: String,
    },
}

/// Inspects a downloaded file. `check_skus` is whether SKUs were asked for.
pub fn inspect_file(
    path: &Path,
    format: Format,
    check_skus: bool,
) -> Result<FileFacts, CheckError> {
    let io = |source| CheckError::Io {
        path: path.display().to_string(),
        source,
    };
    let reader = BufReader::with_capacity(256 * 1024, File::open(path).map_err(io)?);
    inspect_reader(reader, path, format, check_skus)
}

fn inspect_reader(
    reader: impl Read,
    path: &Path,
    format: Format,
    check_skus: bool,
) -> Result<FileFacts, CheckError> {
    let malformed = |detail: String| CheckError::Malformed {
        format,
        path: path.display().to_string(),
        detail,
    };
    match format {
        Format::CsvV2 => inspect_csv(reader, check_skus).map_err(malformed),
        Format::JsonV2 => inspect_json(reader, check_skus).map_err(malformed),
        // Legacy formats carry no documented SKU field.
        Format::Csv | Format::Html | Format::JsonV1 => Ok(FileFacts::SKIPPED),
    }
}

/// A file already on disk, read once: its SHA-256 (hex), its size and what [`inspect_file`]
/// says of it. Only a failure to read the file is an error.
pub fn hash_and_inspect(
    path: &Path,
    format: Format,
    check_skus: bool,
) -> io::Result<(String, u64, Result<FileFacts, CheckError>)> {
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        Hashing {
            inner: File::open(path)?,
            hasher: Sha256::new(),
            bytes: 0,
            error: None,
        },
    );
    let facts = inspect_reader(&mut reader, path, format, check_skus);
    // The check may stop early (a broken file); the digest covers every byte all the same.
    let drained = io::copy(&mut reader, &mut io::sink());
    let hashing = reader.into_inner();
    if let Some(error) = hashing.error {
        return Err(error);
    }
    drained?;
    Ok((hex::encode(hashing.hasher.finalize()), hashing.bytes, facts))
}

/// Hashes what is read through it. A read error is kept, so that it is reported as the file's
/// error rather than as the check's.
struct Hashing {
    inner: File,
    hasher: Sha256,
    bytes: u64,
    error: Option<io::Error>,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.error = Some(e);
                Err(io::Error::new(kind, "read error"))
            }
        }
    }
}

/// Header names compared without case, spaces or punctuation: "Usage Name" = "usage_name".
pub(crate) fn normalise_header(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub fn inspect_csv(reader: impl Read, check_skus: bool) -> Result<FileFacts, String> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let sku = csv
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .position(|h| normalise_header(h) == "sku");
    let (mut rows, mut without_sku) = (0u64, 0u64);
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record).map_err(|e| e.to_string())? {
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        rows += 1;
        if sku
            .and_then(|i| record.get(i))
            .map(str::trim)
            .is_none_or(str::is_empty)
        {
            without_sku += 1;
        }
    }
    Ok(FileFacts {
        sku_check: sku_check(check_skus, rows, without_sku),
    })
}

/// Usage entries of a `json_v2_0` document: the objects that carry a `usage_name`, wherever they
/// sit (their insides are not searched); without any, each object in the top-level `tenants`
/// array. Walked without building the document: memory follows the nesting, not the size.
pub fn inspect_json(reader: impl Read, check_skus: bool) -> Result<FileFacts, String> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let top = Walk { top: true }
        .deserialize(&mut deserializer)
        .and_then(|top| deserializer.end().map(|()| top))
        .map_err(|e| e.to_string())?;
    let (rows, without_sku) = if top.entries.rows > 0 {
        (top.entries.rows, top.entries.without_sku)
    } else {
        top.tenants
            .map_or((0, 0), |t| (t.objects, t.objects_without_sku))
    };
    Ok(FileFacts {
        sku_check: sku_check(check_skus, rows, without_sku),
    })
}

/// Usage entries found in a JSON value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Entries {
    rows: u64,
    without_sku: u64,
}

/// Objects among the elements of an array, as entries of the `tenants` fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct ArrayObjects {
    objects: u64,
    objects_without_sku: u64,
}

/// What the checks need of one JSON value.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    entries: Entries,
    shape: Shape,
    /// For the document itself: its `tenants` array (the last such key, as a parsed document
    /// keeps it).
    tenants: Option<ArrayObjects>,
}

#[derive(Clone, Copy, Debug, Default)]
enum Shape {
    /// A number, or a string that is not blank: a SKU.
    Filled,
    #[default]
    Blank,
    Array(ArrayObjects),
    Object {
        /// Its own `sku` is filled.
        sku: bool,
        /// Its `sku`, or its `offering_item` object's `sku`, is filled.
        has_sku: bool,
    },
}

impl Seen {
    fn of(shape: Shape) -> Self {
        Seen {
            shape,
            ..Seen::default()
        }
    }
}

/// One JSON value, walked. Fields of an object count as the last of equal keys does, as they
/// would in a parsed document.
struct Walk {
    /// The document itself, whose `tenants` array is the fallback.
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Seen;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Seen, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = Seen;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Seen, E> {
        Ok(Seen::of(Shape::Blank))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::of(Shape::Filled))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Seen, E> {
        Ok(Seen::of(Shape::Filled))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Seen, E> {
        Ok(Seen::of(Shape::Filled))
    }

    fn visit_str<E>(self, v: &str) -> Result<Seen, E> {
        Ok(Seen::of(if v.trim().is_empty() {
            Shape::Blank
        } else {
            Shape::Filled
        }))
    }

    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::of(Shape::Blank))
    }

    fn visit_none<E>(self) -> Result<Seen, E> {
        Ok(Seen::of(Shape::Blank))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seen, A::Error> {
        let mut entries = Entries::default();
        let mut objects = ArrayObjects::default();
        while let Some(element) = seq.next_element_seed(Walk { top: false })? {
            entries.rows += element.entries.rows;
            entries.without_sku += element.entries.without_sku;
            if let Shape::Object { has_sku, .. } = element.shape {
                objects.objects += 1;
                objects.objects_without_sku += u64::from(!has_sku);
            }
        }
        Ok(Seen {
            entries,
            shape: Shape::Array(objects),
            tenants: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let mut entry = false;
        let mut sku = false;
        let mut offering_sku = false;
        let mut tenants = None;
        // Entries below this object, per key: a later equal key replaces an earlier one. Only
        // keys with entries are kept, so this stays as small as the object's own fields.
        let mut below: Vec<(String, Entries)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Walk { top: false })?;
            match key.as_str() {
                "usage_name" => entry = true,
                "sku" => sku = matches!(value.shape, Shape::Filled),
                "offering_item" => {
                    offering_sku = matches!(value.shape, Shape::Object { sku: true, .. })
                }
                "tenants" if self.top => {
                    tenants = match value.shape {
                        Shape::Array(objects) => Some(objects),
                        _ => None,
                    }
                }
                _ => {}
            }
            let at = below.iter().position(|(k, _)| *k == key);
            match (at, value.entries.rows > 0) {
                (Some(at), true) => below[at].1 = value.entries,
                (Some(at), false) => {
                    below.remove(at);
                }
                (None, true) => below.push((key, value.entries)),
                (None, false) => {}
            }
        }
        let has_sku = sku || offering_sku;
        let entries = if entry {
            // An entry's insides are not searched.
            Entries {
                rows: 1,
                without_sku: u64::from(!has_sku),
            }
        } else {
            below
                .iter()
                .fold(Entries::default(), |sum, (_, e)| Entries {
                    rows: sum.rows + e.rows,
                    without_sku: sum.without_sku + e.without_sku,
                })
        };
        Ok(Seen {
            entries,
            shape: Shape::Object { sku, has_sku },
            tenants,
        })
    }
}

fn sku_check(check_skus: bool, rows: u64, rows_without_sku: u64) -> SkuCheck {
    if !check_skus {
        return SkuCheck::SKIPPED;
    }
    SkuCheck {
        status: if rows_without_sku == 0 {
            SkuStatus::Ok
        } else {
            SkuStatus::Missing
        },
        rows,
        rows_without_sku,
    }
}

/// Compute points from point-seconds, as the API guide says: ÷ 3600, rounded to 2 decimals.
pub fn compute_points(seconds: f64) -> f64 {
    (seconds / 3600.0 * 100.0).round() / 100.0
}

/// Checks a file while it downloads: chunks arrive in order, and the verdict is what
/// [`inspect_file`] would say of the finished file.
#[derive(Clone, Copy, Debug)]
pub struct Inspection {
    pub format: Format,
    pub check_skus: bool,
}

/// What checking a file while it downloaded found.
#[derive(Debug)]
pub enum Streamed {
    /// The verdict, or why the file is not valid (the detail of [`CheckError::Malformed`]).
    Done(Result<FileFacts, String>),
    /// The file is broken in a way whose exact message only a second read gives.
    Reread,
}

impl Inspection {
    /// Whether the format has anything to check; legacy formats have not.
    pub fn needed(&self) -> bool {
        matches!(self.format, Format::CsvV2 | Format::JsonV2)
    }

    /// Takes chunks from `next` until it has none left (or the file proves broken) and judges
    /// them. The caller drains whatever is left.
    pub fn run(self, next: &mut dyn FnMut() -> Option<bytes::Bytes>) -> Streamed {
        match self.format {
            Format::CsvV2 => {
                let mut scan = CsvScan::new(self.check_skus);
                while let Some(chunk) = next() {
                    scan.feed(&chunk);
                    if scan.malformed {
                        return Streamed::Reread;
                    }
                }
                scan.finish()
            }
            Format::JsonV2 => {
                let reader = ChunkReader {
                    next,
                    current: bytes::Bytes::new(),
                };
                Streamed::Done(inspect_json(
                    BufReader::with_capacity(64 * 1024, reader),
                    self.check_skus,
                ))
            }
            Format::Csv | Format::Html | Format::JsonV1 => Streamed::Done(Ok(FileFacts::SKIPPED)),
        }
    }
}

impl Streamed {
    /// The verdict on the finished file at `path`, reading it again only when the streamed
    /// check could not word the error itself.
    pub fn verdict(
        self,
        path: &Path,
        format: Format,
        check_skus: bool,
    ) -> Result<FileFacts, CheckError> {
        match self {
            Streamed::Done(Ok(facts)) => Ok(facts),
            Streamed::Done(Err(detail)) => Err(CheckError::Malformed {
                format,
                path: path.display().to_string(),
                detail,
            }),
            Streamed::Reread => inspect_file(path, format, check_skus),
        }
    }
}

/// Chunks as one byte stream.
struct ChunkReader<'a> {
    next: &'a mut dyn FnMut() -> Option<bytes::Bytes>,
    current: bytes::Bytes,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match (self.next)() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// [`inspect_csv`] fed chunk by chunk, to the same verdict. Lines without quotes or carriage
/// returns (nearly all of a report) are split on commas where they lie in the chunk; other
/// records go through a byte-by-byte copy of the CSV reader's state machine (RFC 4180 quoting,
/// `\r`, `\n` and `\r\n` as terminators, blank lines skipped). Invalid UTF-8 marks the file
/// `malformed`: its error message, with the reader's position, comes from reading it again.
struct CsvScan {
    check_skus: bool,
    /// Fewer than 3 bytes seen yet: a byte order mark may still be coming.
    started: bool,
    /// The start of a line that the next chunk completes.
    carry: Vec<u8>,
    /// Inside a record that the state machine reads.
    slow: Option<Slow>,
    /// The fields of that record, one after another, and where each ends.
    field_bytes: Vec<u8>,
    field_ends: Vec<usize>,
    /// `None` until the header is read; then the SKU column, if any.
    sku: Option<Option<usize>>,
    rows: u64,
    without_sku: u64,
    malformed: bool,
}

/// States of the CSV reader inside a record (csv-core's NFA with the default settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slow {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: the field's end, or the first of two quotes.
    QuoteInQuoted,
}

const BOM: &[u8] = b"\xef\xbb\xbf";

impl CsvScan {
    fn new(check_skus: bool) -> Self {
        Self {
            check_skus,
            started: false,
            carry: Vec::new(),
            slow: None,
            field_bytes: Vec::new(),
            field_ends: Vec::new(),
            sku: None,
            rows: 0,
            without_sku: 0,
            malformed: false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.malformed {
            if !self.started {
                // The reader drops a byte order mark at the very start of the file.
                let take = data.len().min(BOM.len() - self.carry.len());
                self.carry.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.carry.len() == BOM.len() {
                    self.started = true;
                    if self.carry == BOM {
                        self.carry.clear();
                    }
                }
                continue;
            }
            if self.carry.is_empty() {
                let used = self.process(data, false);
                self.carry.extend_from_slice(&data[used..]);
                return;
            }
            // Complete the carried line with the start of this chunk.
            let take = find_byte(data, b'\n').map_or(data.len(), |i| i + 1);
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.last() == Some(&b'\n') {
                let mut carry = std::mem::take(&mut self.carry);
                let used = self.process(&carry, false);
                carry.drain(..used);
                self.carry = carry;
            }
        }
    }

    fn finish(mut self) -> Streamed {
        let carry = std::mem::take(&mut self.carry);
        self.process(&carry, true);
        if self.slow.is_some_and(|state| state != Slow::StartRecord) {
            // The end of the input ends the last record.
            self.end_field();
            self.slow_record();
        }
        if self.malformed {
            return Streamed::Reread;
        }
        Streamed::Done(Ok(FileFacts {
            sku_check: sku_check(self.check_skus, self.rows, self.without_sku),
        }))
    }

    /// Reads the records in `data`; returns how much of it was used (the rest is the start of
    /// a line, unless `eof`).
    fn process(&mut self, data: &[u8], eof: bool) -> usize {
        // The complete lines are checked for UTF-8 in one go rather than line by line (which
        // cost more than the check itself); if that fails, line by line finds out where.
        let complete = match eof {
            true => data.len(),
            false => memchr::memrchr(b'\n', data).map_or(0, |i| i + 1),
        };
        let text = std::str::from_utf8(&data[..complete]).ok();
        let mut at = 0;
        while at < data.len() && !self.malformed {
            if self.slow.is_some() {
                at += self.slow_step(&data[at..]);
                continue;
            }
            let rest = &data[at..];
            let (body, next) = match find_special(rest) {
                Some(i) if rest[i] == b'\n' => (&rest[..i], i + 1),
                Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => {
                    (&rest[..i], i + 2)
                }
                // A `\r` at the end of a chunk may be the start of a `\r\n`.
                Some(i) if rest[i] == b'\r' && i + 1 == rest.len() && !eof => return at,
                Some(_) => {
                    self.slow = Some(Slow::StartRecord);
                    self.field_bytes.clear();
                    self.field_ends.clear();
                    continue;
                }
                None if eof => (rest, rest.len()),
                None => return at,
            };
            let start = at;
            at += next;
            if body.is_empty() {
                continue;
            }
            let line = text.and_then(|text| text.get(start..start + body.len()));
            match line.map_or_else(|| std::str::from_utf8(body), Ok) {
                Ok(line) => self.plain_record(line),
                Err(_) => self.malformed = true,
            }
        }
        at
    }

    /// A record without quotes: its fields are what lies between commas.
    fn plain_record(&mut self, line: &str) {
        let Some(sku) = self.sku else {
            self.record(line.split(','));
            return;
        };
        // Every cell blank after trimming: nothing but commas and white space.
        if !self.check_skus || line.chars().all(|c| c == ',' || c.is_whitespace()) {
            return;
        }
        self.rows += 1;
        if sku
            .and_then(|i| nth_field(line, i))
            .map(str::trim)
            .is_none_or(str::is_empty)
        {
            self.without_sku += 1;
        }
    }

    /// Runs the state machine over `input` until the record ends; returns the bytes used.
    fn slow_step(&mut self, input: &[u8]) -> usize {
        for (i, &c) in input.iter().enumerate() {
            let Some(state) = self.slow else {
                return i;
            };
            let terminator = c == b'\r' || c == b'\n';
            let next = match state {
                // Blank lines between records are skipped; what follows is a new line.
                Slow::StartRecord if terminator => {
                    self.slow = None;
                    return i + 1;
                }
                Slow::InQuoted => {
                    if c == b'"' {
                        Slow::QuoteInQuoted
                    } else {
                        self.field_bytes.push(c);
                        Slow::InQuoted
                    }
                }
                // A quote opens a quoted field at its start, is an escaped quote right after
                // a quote inside one, and is an ordinary byte anywhere else.
                _ => match c {
                    b'"' if matches!(state, Slow::StartRecord | Slow::StartField) => Slow::InQuoted,
                    b'"' if state == Slow::QuoteInQuoted => {
                        self.field_bytes.push(c);
                        Slow::InQuoted
                    }
                    b',' => {
                        self.end_field();
                        Slow::StartField
                    }
                    _ if terminator => {
                        self.end_record();
                        continue;
                    }
                    _ => {
                        self.field_bytes.push(c);
                        Slow::InField
                    }
                },
            };
            self.slow = Some(next);
        }
        input.len()
    }

    fn end_field(&mut self) {
        self.field_ends.push(self.field_bytes.len());
    }

    /// A terminator outside quotes ends the record; the scan goes back to whole lines. (After
    /// a `\r`, a `\n` is then a blank line, skipped as the reader skips it.)
    fn end_record(&mut self) {
        self.end_field();
        self.slow_record();
    }

    fn slow_record(&mut self) {
        self.slow = None;
        let bytes = std::mem::take(&mut self.field_bytes);
        let ends = std::mem::take(&mut self.field_ends);
        let mut fields = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &end in &ends {
            match std::str::from_utf8(&bytes[start..end]) {
                Ok(field) => fields.push(field),
                Err(_) => {
                    self.malformed = true;
                    break;
                }
            }
            start = end;
        }
        if !self.malformed {
            self.record(fields.iter().copied());
        }
        drop(fields);
        self.field_bytes = bytes;
        self.field_bytes.clear();
        self.field_ends = ends;
        self.field_ends.clear();
    }

    fn record<'a>(&mut self, fields: impl Iterator<Item = &'a str> + Clone) {
        let Some(sku) = self.sku else {
            self.sku = Some(fields.clone().position(|h| normalise_header(h) == "sku"));
            return;
        };
        if !self.check_skus || fields.clone().all(|cell| cell.trim().is_empty()) {
            return;
        }
        self.rows += 1;
        if sku
            .and_then(|i| fields.clone().nth(i))
            .map(str::trim)
            .is_none_or(str::is_empty)
        {
            self.without_sku += 1;
        }
    }
}

/// Field `n` (0-based) of a line without quotes.
fn nth_field(line: &str, n: usize) -> Option<&str> {
    let (mut start, mut commas_left) = (0, n);
    let mut field = |at: usize| {
        if commas_left == 0 {
            return Some(start..at);
        }
        commas_left -= 1;
        start = at + 1;
        None
    };
    // Commas are found eight bytes at a time: fields are a few bytes long, too short for a
    // vectorised search to pay for starting over at each one.
    let mut words = line.as_bytes().chunks_exact(8);
    for (index, word) in words.by_ref().enumerate() {
        let mut found = comma_bits(word);
        while found != 0 {
            let at = index * 8 + found.trailing_zeros() as usize / 8;
            found &= found - 1;
            if let Some(range) = field(at) {
                return line.get(range);
            }
        }
    }
    let tail = line.len() - words.remainder().len();
    for (offset, byte) in words.remainder().iter().enumerate() {
        if *byte == b','
            && let Some(range) = field(tail + offset)
        {
            return line.get(range);
        }
    }
    field(line.len()).and_then(|range| line.get(range))
}

/// The high bit of each byte of an 8-byte `word` that is a comma.
fn comma_bits(word: &[u8]) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let word: [u8; 8] = word.try_into().unwrap_or_default();
    let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b','));
    // Exact, unlike the usual zero-byte test, which may also mark a byte after a match.
    !(((x & !HIGH) + !HIGH) | x) & HIGH
}

/// The first byte that ends a plain line or makes it not plain: `\n`, `\r` or `"`.
fn find_special(haystack: &[u8]) -> Option<usize> {
    memchr::memchr3(b'\n', b'\r', b'"', haystack)
}

/// The first `needle` in `haystack`.
fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    memchr::memchr(needle, haystack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const CSV: &str = "\u{feff}Tenant Name,Usage Name,Measurement Unit,SKU,Usage\n\
        a,storage,bytes,SKU-1,100\n\
        a,compute_points,seconds,SKU-2,7200\n\
        b,compute_points,seconds,,5400\n\
        \n\
        b,workstations,quantity,\"\",3\n";

    #[test]
    fn csv_finds_columns_by_name_in_any_order_and_case() {
        let facts = inspect_csv(CSV.as_bytes(), true).unwrap();
        assert_eq!(
            facts.sku_check,
            SkuCheck {
                status: SkuStatus::Missing,
                rows: 4,
                rows_without_sku: 2
            }
        );
        let reordered = "usage,sku,USAGE_NAME\n5,x,storage\n";
        let facts = inspect_csv(reordered.as_bytes(), true).unwrap();
        assert_eq!(facts.sku_check.status, SkuStatus::Ok);
    }

    #[test]
    fn csv_without_sku_column_counts_every_row_missing() {
        let facts = inspect_csv("name,usage\na,1\nb,2\n".as_bytes(), true).unwrap();
        assert_eq!(facts.sku_check.rows_without_sku, 2);
        assert_eq!(
            inspect_csv("name\na\n".as_bytes(), false)
                .unwrap()
                .sku_check,
            SkuCheck::SKIPPED
        );
    }

    #[test]
    fn json_usage_entries_need_a_non_empty_sku() {
        let json = r#"{"params":{"kind":5},"tenants":[
            {"usage_name":"storage","sku":"S1","value":1},
            {"usage_name":"compute_points","measurement_unit":"seconds","sku":"","value":"3600"},
            {"usage_name":"compute_points","measurement_unit":"points","value":99},
            {"usage_name":"seats","offering_item":{"name":"m365","sku":"M1"},"value":2}
        ]}"#;
        let facts = inspect_json(json.as_bytes(), true).unwrap();
        assert_eq!(
            facts.sku_check,
            SkuCheck {
                status: SkuStatus::Missing,
                rows: 4,
                rows_without_sku: 2
            }
        );
        assert!(inspect_json("not json".as_bytes(), true).is_err());
    }

    #[test]
    fn json_counts_as_a_parsed_document_would() {
        // A later equal key replaces an earlier one, entries inside an entry do not count, and
        // without any entry the objects of the top-level `tenants` array are the rows.
        let json = r#"{"a":[{"usage_name":"x"}],"a":[],"b":{"usage_name":"y","sku":1,"sku":" ",
            "inner":[{"usage_name":"z","sku":"S"}]}}"#;
        assert_eq!(
            inspect_json(json.as_bytes(), true).unwrap().sku_check,
            SkuCheck {
                status: SkuStatus::Missing,
                rows: 1,
                rows_without_sku: 1
            }
        );
        let json = r#"{"tenants":[{"sku":"S"},{"offering_item":{"sku":2}},{"x":1},3]}"#;
        assert_eq!(
            inspect_json(json.as_bytes(), true).unwrap().sku_check,
            SkuCheck {
                status: SkuStatus::Missing,
                rows: 3,
                rows_without_sku: 1
            }
        );
    }

    #[test]
    fn compute_points_round_to_two_decimals() {
        assert_eq!(compute_points(7200.0), 2.0);
        assert_eq!(compute_points(1000.0), 0.28);
        assert_eq!(compute_points(0.0), 0.0);
    }

    #[test]
    fn dr_rows_by_usage_name_or_offering_item() {
        assert!(is_dr_seconds("Compute_Points", "", ""));
        assert!(is_dr_seconds(
            "x",
            "PW_BASE_ADV_DR_COMPUTE_POINTS",
            "Seconds"
        ));
        assert!(!is_dr_seconds("x", "dr_compute_points", ""));
        assert!(!is_dr_seconds("compute_points", "", "points"));
        assert!(!is_dr_seconds("x", "é_dr_compute_point", ""));
    }

    /// The old, whole-document reading of JSON, as the reference for the streamed one.
    fn reference_json(text: &[u8], check_skus: bool) -> Result<FileFacts, String> {
        fn collect<'a>(value: &'a Value, entries: &mut Vec<&'a Value>) {
            match value {
                Value::Object(map) if map.contains_key("usage_name") => entries.push(value),
                Value::Object(map) => map.values().for_each(|v| collect(v, entries)),
                Value::Array(items) => items.iter().for_each(|v| collect(v, entries)),
                _ => {}
            }
        }
        let non_empty = |v: &Value| match v {
            Value::String(s) => !s.trim().is_empty(),
            Value::Number(_) => true,
            _ => false,
        };
        let document: Value = serde_json::from_reader(text).map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        collect(&document, &mut entries);
        if entries.is_empty()
            && let Some(tenants) = document.get("tenants").and_then(Value::as_array)
        {
            entries.extend(tenants.iter().filter(|t| t.is_object()));
        }
        let without = entries
            .iter()
            .filter(|e| {
                !(e.get("sku").is_some_and(non_empty)
                    || e.get("offering_item")
                        .and_then(|o| o.get("sku"))
                        .is_some_and(non_empty))
            })
            .count();
        Ok(FileFacts {
            sku_check: sku_check(check_skus, entries.len() as u64, without as u64),
        })
    }

    /// The streamed CSV check over `text` cut into pieces at `cuts`.
    fn streamed_csv(text: &[u8], cuts: &[usize], check_skus: bool) -> Streamed {
        let mut scan = CsvScan::new(check_skus);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([text.len()]) {
            scan.feed(&text[start..cut]);
            start = cut;
        }
        if scan.malformed {
            return Streamed::Reread;
        }
        scan.finish()
    }

    fn agrees_with_reader(text: &[u8], cuts: &[usize], check_skus: bool) {
        let expected = inspect_csv(text, check_skus);
        match (streamed_csv(text, cuts, check_skus), expected) {
            (Streamed::Done(Ok(facts)), Ok(expected)) => assert_eq!(facts, expected, "{text:?}"),
            (Streamed::Reread, Err(_)) => {}
            (got, expected) => panic!("{text:?}: streamed {got:?}, read {expected:?}"),
        }
    }

    #[test]
    fn streamed_csv_agrees_with_the_reader_on_odd_inputs() {
        for text in [
            "",
            "\u{feff}",
            "\u{feff}sku\nx\n",
            "\u{feff}\u{feff}SKU\n\n",
            "sku,a\r\nx,1\r\n,\r\n\r\n\" \",2",
            "a,\"s\nku\",sku\n\"1\",\"\",\"q\"\"\"\r\r\n\n,x,\"y\"z\n\"",
            "sku\n\"a\rb\"\rc\r\r\n\"\"\"\"\n\r\n \u{a0}\n",
            "\n\n\r\nsku\n\u{3000}\n",
            "sku\n\"open",
            "sku,x\n\"\",\"\"",
            "sku\n\"x\"\"",
        ] {
            for cut in 0..=text.len() {
                agrees_with_reader(text.as_bytes(), &[cut], true);
                agrees_with_reader(text.as_bytes(), &[cut, cut + 1, cut + 3], false);
            }
        }
        agrees_with_reader(b"sku\n\xc3,\xa9\n", &[], true);
        agrees_with_reader(b"sku\n\"\xff\"\n", &[5], true);
        agrees_with_reader(b"\xef\xbb", &[1], true);
        agrees_with_reader(b"s\xffku\nx\n", &[], true);
    }

    fn csv_text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b",".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\"".to_vec()),
            Just(b" ".to_vec()),
            Just(b"sku".to_vec()),
            Just(b"SKU".to_vec()),
            Just(b"x".to_vec()),
            Just("\u{feff}".as_bytes().to_vec()),
            Just("\u{a0}".as_bytes().to_vec()),
            Just("é".as_bytes().to_vec()),
            Just(b"\xc3".to_vec()),
            Just(b"\xa9".to_vec()),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("1".to_owned()),
            Just("\"\"".to_owned()),
            Just("\" \"".to_owned()),
            Just("\"S\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
        ];
        let key = prop_oneof![
            Just("usage_name"),
            Just("sku"),
            Just("offering_item"),
            Just("tenants"),
            Just("x"),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec((key.clone(), inner), 0..6).prop_map(|fields| {
                    let fields: Vec<String> =
                        fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn nth_field_is_what_splitting_on_commas_gives(line in "[a,é ]{0,40}", n in 0usize..12) {
            prop_assert_eq!(nth_field(&line, n), line.split(',').nth(n));
        }

        #[test]
        fn streamed_csv_agrees_with_the_reader(
            text in csv_text(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
            check_skus in any::<bool>(),
        ) {
            agrees_with_reader(&text, &cuts, check_skus);
        }

        #[test]
        fn json_agrees_with_the_parsed_document(text in json_text(), check_skus in any::<bool>()) {
            let streamed = inspect_json(text.as_bytes(), check_skus);
            let reference = reference_json(text.as_bytes(), check_skus);
            prop_assert_eq!(streamed, reference);
        }
    }

    #[test]
    fn json_errors_are_the_parsers() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\":1} x",
            "{\"a\":1e999}",
            &"[".repeat(200),
        ] {
            assert_eq!(
                inspect_json(text.as_bytes(), true),
                reference_json(text.as_bytes(), true),
                "{text}"
            );
        }
    }

    /// Fed chunk by chunk as a download feeds it, a broken CSV file gets the reader's error, with
    /// its position, as the check of the finished file gives it.
    #[test]
    fn a_streamed_broken_csv_file_gets_the_readers_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let text = b"sku,usage\nS,1\n\"x\",\xff\n".to_vec();
        std::fs::write(&path, &text).unwrap();
        let inspection = Inspection {
            format: Format::CsvV2,
            check_skus: true,
        };
        let mut pieces = text.chunks(3).map(bytes::Bytes::copy_from_slice);
        let streamed = inspection.run(&mut || pieces.next());
        assert!(matches!(streamed, Streamed::Reread), "{streamed:?}");
        let error = streamed
            .verdict(&path, Format::CsvV2, true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            inspect_file(&path, Format::CsvV2, true)
                .unwrap_err()
                .to_string()
        );
        assert!(error.contains("invalid utf-8"), "{error}");
    }

    #[test]
    fn hashing_and_inspecting_reads_once_to_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, format) in [
            ("ok.csv", CSV.as_bytes(), Format::CsvV2),
            (
                "bad.csv",
                b"sku\nx\n\xff,1\nmore,rows\n".as_slice(),
                Format::CsvV2,
            ),
            ("bad.json", b"{\"tenants\":[1,}".as_slice(), Format::JsonV2),
            ("page.html", b"<p>".as_slice(), Format::Html),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let (sha256, bytes, facts) = hash_and_inspect(&path, format, true).unwrap();
            assert_eq!(
                (sha256, bytes),
                crate::verify::hash_file(&path).unwrap(),
                "{name}"
            );
            let expected = inspect_file(&path, format, true);
            assert_eq!(
                facts.as_ref().map_err(ToString::to_string),
                expected.as_ref().map_err(ToString::to_string),
                "{name}"
            );
        }
    }
}
