//! What we check in a downloaded `csv_v2_0` or `json_v2_0` file, through the one reader of
//! report files ([`crate::content`]):
//! - the **content check**: the file is a report in a layout we can bill from, every row is
//!   well formed (numbers are numbers) and has the value the billing rule reads. A file that
//!   fails it is kept and listed, and fails its report: an unknown layout is never an empty
//!   success;
//! - the **SKU check**: where SKUs were asked for, every row carries one.
//!
//! A file is checked while it downloads ([`Inspection`]), from the same chunks that are hashed
//! and written, so the check costs no second read; a file already on disk is hashed and checked
//! in one read ([`hash_and_inspect`]).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::content::lines::{LinesError, lines_of_at_most};
use crate::content::spill::{SpillWriter, Spilled};
use crate::content::{self, ContentError};
use crate::report::{BillingRule, Format};
use crate::results::{CheckStatus, ContentCheck, SkuCheck, SkuStatus};

/// What one file tells us.
#[derive(Clone, Debug, PartialEq)]
pub struct FileFacts {
    /// The content check's outcome (rows, billable values).
    pub content_check: ContentCheck,
    /// The SKU check's outcome (rows with and without a SKU).
    pub sku_check: SkuCheck,
}

impl FileFacts {
    /// Nothing to check (a legacy format).
    pub(crate) const SKIPPED: FileFacts = FileFacts {
        content_check: ContentCheck::SKIPPED,
        sku_check: SkuCheck::SKIPPED,
    };
}

/// How a file is checked: its format, whether SKUs were asked for, and the billing rule whose
/// value every row must have.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The file's format; only `csv_v2_0` and `json_v2_0` are read.
    pub format: Format,
    /// Whether the job asked for SKUs, so that rows without one are a failed check.
    pub check_skus: bool,
    /// The rule that picks each row's billable value.
    pub rule: Arc<BillingRule>,
}

impl Inspection {
    /// Whether the format has anything to check; legacy formats have not.
    pub(crate) fn needed(&self) -> bool {
        content::readable(self.format)
    }

    /// Reads `reader` to its end, or to the first problem, and judges it. Only a failure to
    /// read is an error; a wrong file is a failed check.
    pub fn inspect(&self, reader: impl Read) -> Result<FileFacts, io::Error> {
        self.read(reader, None, None)
    }

    /// [`Self::inspect`], keeping the file's invoice lines for `billing.csv` in a spill when
    /// spilling is on ([`content::spill`]); the caller files it under the bytes' SHA-256.
    pub(crate) fn inspect_keeping_lines(
        &self,
        reader: impl Read,
    ) -> Result<(FileFacts, Option<Spilled>), io::Error> {
        self.inspect_keeping_lines_at_most(reader, None)
    }

    /// [`Self::inspect_keeping_lines`] from a reader known to give at most `at_most` bytes,
    /// with read buffers no larger than that needs.
    fn inspect_keeping_lines_at_most(
        &self,
        reader: impl Read,
        at_most: Option<u64>,
    ) -> Result<(FileFacts, Option<Spilled>), io::Error> {
        let mut spill = self
            .needed()
            .then(|| SpillWriter::start(self.format, &self.rule))
            .flatten();
        let facts = self.read(reader, at_most, spill.as_mut())?;
        let outcome = facts.content_check.problem.as_deref().map_or(Ok(()), Err);
        let spilled = spill.and_then(|spill| spill.finish(outcome));
        Ok((facts, spilled))
    }

    fn read(
        &self,
        reader: impl Read,
        at_most: Option<u64>,
        mut spill: Option<&mut SpillWriter>,
    ) -> Result<FileFacts, io::Error> {
        if !self.needed() {
            return Ok(FileFacts::SKIPPED);
        }
        // The same reading as billing.csv's, so that a file the check passes gives its lines.
        let (mut rows, mut without_sku) = (0u64, 0u64);
        let read = lines_of_at_most(self.format, reader, at_most, &self.rule, &mut |line| {
            rows += line.rows;
            without_sku += line.rows_without_sku;
            if let Some(spill) = spill.as_deref_mut() {
                spill.add(line);
            }
            Ok(())
        });
        let (content_check, sku_column) = match read {
            Ok(read) => (
                ContentCheck {
                    status: CheckStatus::Ok,
                    rows: read.layout.rows,
                    problem: None,
                },
                read.layout.sku_column,
            ),
            Err(LinesError::Content(ContentError::Read(error))) => return Err(error),
            Err(LinesError::Write(error)) => return Err(error),
            Err(LinesError::Content(problem)) => (
                ContentCheck {
                    status: CheckStatus::Failed,
                    rows,
                    problem: Some(problem.to_string()),
                },
                None,
            ),
        };
        let sku_check = if !self.check_skus || content_check.status == CheckStatus::Failed {
            // A file we cannot read has no SKUs to count: its content check says why.
            SkuCheck::SKIPPED
        } else {
            SkuCheck {
                status: if without_sku == 0 {
                    SkuStatus::Ok
                } else {
                    SkuStatus::Missing
                },
                rows,
                rows_without_sku: without_sku,
                column: sku_column,
            }
        };
        Ok(FileFacts {
            content_check,
            sku_check,
        })
    }

    /// Takes chunks from `next` until it has none left (or the file proves broken) and judges
    /// them, keeping the lines as [`Self::inspect_keeping_lines`] does. The caller drains
    /// whatever is left. `at_most`, when known, bounds the bytes the chunks hold: the read
    /// buffers are then no larger than such a file needs.
    pub(crate) fn run(
        &self,
        next: &mut dyn FnMut() -> Option<bytes::Bytes>,
        at_most: Option<u64>,
    ) -> (FileFacts, Option<Spilled>) {
        let reader = ChunkReader {
            next,
            current: bytes::Bytes::new(),
        };
        // Chunks come from memory: reading them cannot fail.
        self.inspect_keeping_lines_at_most(reader, at_most)
            .unwrap_or((FileFacts::SKIPPED, None))
    }
}

/// A file already on disk, read once: its SHA-256 (hex), its size and what [`Inspection::inspect`]
/// says of it. Only a failure to read the file is an error, and so is a file that is not a
/// regular file (a symbolic link, a FIFO, a device): it cannot be the file recorded, and reading
/// it might never end. At most one byte more than `expected_bytes` is read: a longer file
/// cannot match the record either.
pub(crate) fn hash_and_inspect(
    base: &Path,
    relative: &str,
    inspection: &Inspection,
    expected_bytes: u64,
) -> io::Result<(String, u64, FileFacts)> {
    let file = crate::disk::paths::open_regular_inside(base, relative)?;
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        Hashing {
            inner: io::Read::take(file, expected_bytes.saturating_add(1)),
            hasher: Sha256::new(),
            bytes: 0,
            error: None,
        },
    );
    let checked = inspection.inspect_keeping_lines(&mut reader);
    // The check may stop early (a broken file); the digest covers every byte all the same.
    let drained = io::copy(&mut reader, &mut io::sink());
    let hashing = reader.into_inner();
    if let Some(error) = hashing.error {
        return Err(error);
    }
    drained?;
    let (facts, spilled) = checked?;
    let sha256 = hex::encode(hashing.hasher.finalize());
    if let Some(spilled) = spilled {
        spilled.keep(&sha256);
    }
    Ok((sha256, hashing.bytes, facts))
}

/// Hashes what is read through it. A read error is kept, so that it is reported as the file's
/// error rather than as the check's.
struct Hashing {
    inner: io::Take<File>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn inspection(format: Format, check_skus: bool) -> Inspection {
        Inspection {
            format,
            check_skus,
            rule: Arc::new(BillingRule::default()),
        }
    }

    const HEADER: &str = "tenant.id,tenant.kind,application.id,edition,name,infra.id,infra.owner_id,infra.backend_type,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial";

    #[test]
    fn counts_rows_without_a_sku_in_either_column_name() {
        for sku in ["sku", "Offering_Item.SKU"] {
            let text = format!(
                "{HEADER},{sku}\nc1,customer,a,e,pw_base_storage,,,,1,1,0,0,0,0,1,1,0,S1\nc2,customer,a,e,pw_base_storage,,,,1,1,0,0,0,0,1,1,0,\n"
            );
            let facts = inspection(Format::CsvV2, true)
                .inspect(text.as_bytes())
                .unwrap();
            assert_eq!(facts.content_check.status, CheckStatus::Ok);
            assert_eq!(facts.sku_check.status, SkuStatus::Missing);
            assert_eq!(
                (facts.sku_check.rows, facts.sku_check.rows_without_sku),
                (2, 1)
            );
            assert_eq!(facts.sku_check.column.as_deref(), Some(sku));
        }
    }

    #[test]
    fn no_sku_column_is_every_row_without_a_sku_and_says_so() {
        let text = format!("{HEADER}\nc1,customer,a,e,x,,,,1,1,0,0,0,0,1,1,0\n");
        let facts = inspection(Format::CsvV2, true)
            .inspect(text.as_bytes())
            .unwrap();
        assert_eq!(facts.sku_check.status, SkuStatus::Missing);
        assert_eq!(facts.sku_check.rows_without_sku, 1);
        assert_eq!(facts.sku_check.column, None);
    }

    #[test]
    fn an_unknown_layout_fails_the_content_check_naming_its_columns() {
        let facts = inspection(Format::CsvV2, true)
            .inspect("Col A,Col B\n1,2\n".as_bytes())
            .unwrap();
        assert_eq!(facts.content_check.status, CheckStatus::Failed);
        let problem = facts.content_check.problem.unwrap();
        assert!(problem.contains("`Col A`, `Col B`"), "{problem}");
        assert!(problem.contains("`tenant.id`"), "{problem}");
        assert_eq!(facts.sku_check, SkuCheck::SKIPPED);
    }

    #[test]
    fn chunked_and_whole_reads_agree() {
        let text = format!(
            "\u{feff}{HEADER},sku\r\n\"c,1\",customer,a,e,pw_base_storage,,,,1,1,0,0,0,0,1,1,0,S1\r\nc2,customer,a,e,pw_base_storage,,,,1,1,0,0,0,0,1,1,0,\r\n"
        );
        let check = inspection(Format::CsvV2, true);
        let whole = check.inspect(text.as_bytes()).unwrap();
        for size in [1, 2, 7, 64] {
            let mut chunks = text
                .as_bytes()
                .chunks(size)
                .map(bytes::Bytes::copy_from_slice);
            assert_eq!(
                check.run(&mut || chunks.next(), None).0,
                whole,
                "chunks of {size}"
            );
        }
        assert_eq!(whole.content_check.rows, 2);
    }

    #[test]
    fn a_row_without_the_value_the_rule_reads_fails_the_check() {
        // A compute-point item bills on delta, which a JSON usage object holds as `value`.
        let text = r#"{"tenants": [{"tenant_uuid": "u", "name": "pw_compute_points", "usage_name": "compute_points", "absolute_value": 7200}]}"#;
        let facts = inspection(Format::JsonV2, false)
            .inspect(text.as_bytes())
            .unwrap();
        assert_eq!(facts.content_check.status, CheckStatus::Failed);
        assert_eq!(
            facts.content_check.problem.as_deref(),
            Some(
                "usage object 1, `pw_compute_points`: no billable value: the row has none of the measures the billing rule (scope auto, measure auto) reads"
            )
        );
    }

    #[test]
    fn legacy_formats_are_skipped() {
        assert_eq!(
            inspection(Format::Html, true)
                .inspect("<html>".as_bytes())
                .unwrap(),
            FileFacts::SKIPPED
        );
    }
}
