//! The records of a CSV file, as the `csv` crate's reader (flexible, no headers, byte records)
//! gives them — the same fields, the same line numbers, the same reads of the underlying reader
//! — with a fast path for the common line: one that holds no `"`, ends in the buffer and is
//! split on `,` where it lies, without copying. Any other record goes through `csv_core`,
//! the `csv` crate's own tokenizer, as before. `csv_core`'s byte-by-byte state machine was a
//! tenth of the CPU of a run that checks and bills a GiB report (`BENCHMARKS.md`).
//!
//! What makes the two paths agree: between records `csv_core` is always in its start state
//! (after a record's terminator, or a `\r` whose `\n` it has yet to skip, which the start state
//! skips as a blank line too), so a record the fast path takes leaves it where it was; a
//! record's line is the count of `\n` consumed before the call that reads it (blank lines and
//! the `\n` of a `\r\n` included, as the `csv` crate counts); the buffer is refilled only when
//! every byte of it was consumed, with reads as large, as the `csv` crate's `BufReader` does,
//! so a reader's error (a line too long) comes after the same records.

use std::io::{self, BufRead, BufReader, Read};

/// Reads records; see the module's documentation.
pub(super) struct Records<R> {
    input: BufReader<R>,
    core: csv_core::Reader,
    /// Bytes of the last record still to consume: a fast record borrows them until the next
    /// call.
    pending: usize,
    /// `\n` consumed so far, plus one: the line the next call's record is said to be on.
    line: u64,
    /// Whether the first record was read: it goes through `csv_core`, which strips a
    /// byte-order mark only there.
    started: bool,
    /// A slow record's fields, end to end, and where each ends.
    output: Vec<u8>,
    ends: Vec<usize>,
    /// Each field of the last record, as start and end in its bytes.
    bounds: Vec<(usize, usize)>,
    /// Whether the last record's bytes are `output` (slow) or the input buffer (fast).
    slow: bool,
}

/// One record: its fields, and the line it is said to be on.
pub(super) struct Record<'a> {
    bytes: &'a [u8],
    bounds: &'a [(usize, usize)],
    pub(super) line: u64,
}

impl<'a> Record<'a> {
    pub(super) fn len(&self) -> usize {
        self.bounds.len()
    }

    /// The field at `i`; empty past the last.
    pub(super) fn get(&self, i: usize) -> &'a [u8] {
        self.bounds
            .get(i)
            .and_then(|&(start, end)| self.bytes.get(start..end))
            .unwrap_or(&[])
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<R: Read> Records<R> {
    /// Records of `reader`, read `capacity` bytes at a time.
    pub(super) fn new(reader: R, capacity: usize) -> Self {
        Records {
            input: BufReader::with_capacity(capacity, reader),
            core: csv_core::Reader::new(),
            pending: 0,
            line: 1,
            started: false,
            output: vec![0; 1024],
            ends: vec![0; 64],
            bounds: Vec::new(),
            slow: false,
        }
    }

    /// The next record, `None` at the end of the input; an error of the reader as it came.
    pub(super) fn next(&mut self) -> io::Result<Option<Record<'_>>> {
        self.input.consume(std::mem::take(&mut self.pending));
        let line = self.line;
        if self.started && self.fast()? {
            self.slow = false;
        } else if self.slow_record()? {
            self.slow = true;
            self.started = true;
        } else {
            return Ok(None);
        }
        let bytes = if self.slow {
            &self.output[..]
        } else {
            // The fast record lies in the buffer until the next call consumes it.
            let buffer = self.input.buffer();
            &buffer[..self.pending.min(buffer.len())]
        };
        Ok(Some(Record {
            bytes,
            bounds: &self.bounds,
            line,
        }))
    }

    /// Takes the next record from the buffer when it is a plain line; `false` (having
    /// consumed only blank lines) when `csv_core` must read it.
    fn fast(&mut self) -> io::Result<bool> {
        loop {
            let buffer = self.input.fill_buf()?;
            // Blank lines, and the `\n` of a `\r\n`: skipped, as `csv_core`'s start state does.
            let start = buffer
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n'))
                .unwrap_or(buffer.len());
            if start > 0 {
                let newlines = memchr::memchr_iter(b'\n', &buffer[..start]).count();
                self.line += newlines as u64;
                self.input.consume(start);
                continue;
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', buffer) else {
                // The end of the input, or a line running past the buffer.
                return Ok(false);
            };
            self.bounds.clear();
            let mut field = 0;
            for at in memchr::memchr2_iter(b',', b'"', &buffer[..end]) {
                if buffer[at] == b'"' {
                    return Ok(false);
                }
                self.bounds.push((field, at));
                field = at + 1;
            }
            self.bounds.push((field, end));
            if buffer[end] == b'\n' {
                self.line += 1;
            }
            // The terminator is the record's: `csv_core` consumes it with the record.
            self.pending = end + 1;
            return Ok(true);
        }
    }

    /// Reads the next record through `csv_core`, as `csv::Reader::read_byte_record` does;
    /// `false` at the end of the input.
    fn slow_record(&mut self) -> io::Result<bool> {
        use csv_core::ReadRecordResult;
        let (mut out, mut ends) = (0, 0);
        loop {
            let input = self.input.fill_buf()?;
            let before = self.core.line();
            let (result, read, written, ended) =
                self.core
                    .read_record(input, &mut self.output[out..], &mut self.ends[ends..]);
            self.input.consume(read);
            self.line += self.core.line() - before;
            out += written;
            ends += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let len = self.output.len().max(4) * 2;
                    self.output.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len().max(4) * 2;
                    self.ends.resize(len, 0);
                }
                ReadRecordResult::Record => {
                    self.bounds.clear();
                    let mut start = 0;
                    for &end in &self.ends[..ends] {
                        self.bounds.push((start, end));
                        start = end;
                    }
                    return Ok(true);
                }
                ReadRecordResult::End => return Ok(false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Each record as its line and fields, then the error that ended the reading, if any.
    type Read = (Vec<(u64, Vec<Vec<u8>>)>, Option<String>);

    fn ours(input: &[u8], capacity: usize, reader: impl io::Read) -> Read {
        let _ = input;
        let mut records = Records::new(reader, capacity);
        let mut out = Vec::new();
        loop {
            match records.next() {
                Ok(Some(record)) => out.push((
                    record.line,
                    record.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                )),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    /// The `csv` crate's reader as `csv_rows` used it before the fast path.
    fn csv_crate(capacity: usize, reader: impl io::Read) -> Read {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(capacity)
            .from_reader(reader);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        loop {
            match csv.read_byte_record(&mut record) {
                Ok(true) => out.push((
                    record.position().map_or(0, |p| p.line()),
                    record.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                )),
                Ok(false) => return (out, None),
                Err(e) => {
                    let text = match e.into_kind() {
                        csv::ErrorKind::Io(e) => e.to_string(),
                        other => format!("{other:?}"),
                    };
                    return (out, Some(text));
                }
            }
        }
    }

    /// Gives `input` in reads of at most `step` bytes, then fails after `fail_after` bytes
    /// when asked to.
    struct Pieces<'a> {
        input: &'a [u8],
        step: usize,
        fail_after: Option<usize>,
        given: usize,
    }

    impl io::Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_after.is_some_and(|at| self.given >= at) {
                return Err(io::Error::other("the reader broke"));
            }
            let n = self.step.min(buf.len()).min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input = &self.input[n..];
            self.given += n;
            Ok(n)
        }
    }

    fn both(input: &[u8], capacity: usize, step: usize, fail_after: Option<usize>) -> (Read, Read) {
        let pieces = || Pieces {
            input,
            step,
            fail_after,
            given: 0,
        };
        (
            ours(input, capacity, pieces()),
            csv_crate(capacity, pieces()),
        )
    }

    #[test]
    fn plain_quoted_and_odd_lines_read_as_the_csv_crate_reads_them() {
        let cases: &[&[u8]] = &[
            b"",
            b"h\n",
            b"\xef\xbb\xbfa,b\nc,d\n",
            b"a,b\n\n\nc,d\r\ne,f\rg,h\n\r\n,\n,,x\ny",
            b"a,b\nc,\"d,e\"\nf,g\"h\n\"i\"\"j\",k\nl,m",
            b"a\nb,\"multi\nline\",c\nd\n",
            b"h\r\n1,2\r\n3,4\r\n",
            b"h\n\"\"\n\"\n",
        ];
        for case in cases {
            for capacity in [1, 2, 3, 5, 8, 64] {
                let (ours, theirs) = both(case, capacity, usize::MAX, None);
                assert_eq!(
                    ours,
                    theirs,
                    "{:?} at {capacity}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_read_as_the_csv_crate_reads_them(
            input in prop::collection::vec(
                prop::sample::select(b"ab,,,\"\r\n\n\n\xef\xbb\xbf ".to_vec()),
                0..200,
            ),
            capacity in 1usize..40,
            step in 1usize..50,
            fail_after in prop::option::of(0usize..200),
        ) {
            let (ours, theirs) = both(&input, capacity, step, fail_after);
            prop_assert_eq!(ours, theirs);
        }
    }
}
