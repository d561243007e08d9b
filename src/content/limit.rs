//! A bound on what one CSV line or one JSON string or number may cost. The parsers keep a
//! whole field (CSV) or token (JSON) in memory, and a server can send one of any size: a
//! 100 MB field took 330 MB and seconds of parsing. Real rows are well under a kilobyte and a
//! header of ten thousand columns is about 100 KiB, so 1 MiB is refused as an attack.

use std::io::{self, Read};

/// Bytes one CSV line, or one JSON string or number, may have.
pub(super) const MAX_TOKEN: u64 = 1 << 20;

/// What is too long, and where: the error that stops the parser, found again by
/// [`TooLong::of`].
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {what} is longer than 1 MiB, far beyond any report's")]
pub(super) struct TooLong {
    line: u64,
    what: &'static str,
}

impl TooLong {
    /// The `TooLong` an I/O error of the parser carries, if it is one.
    pub(super) fn of(error: &io::Error) -> Option<&TooLong> {
        error.get_ref()?.downcast_ref::<TooLong>()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Bytes since the last `\n`.
    CsvLine,
    /// Bytes of the current string (escapes and all) or bare token (number, literal).
    JsonToken,
}

pub(super) struct Limited<R> {
    inner: R,
    kind: Kind,
    line: u64,
    run: u64,
    in_string: bool,
    escaped: bool,
}

impl<R> Limited<R> {
    pub(super) fn new(inner: R, kind: Kind) -> Self {
        Limited {
            inner,
            kind,
            line: 1,
            run: 0,
            in_string: false,
            escaped: false,
        }
    }

    fn count(&mut self, b: u8) -> bool {
        if b == b'\n' {
            self.line += 1;
        }
        match self.kind {
            Kind::CsvLine if b == b'\n' => self.run = 0,
            Kind::CsvLine => self.run += 1,
            Kind::JsonToken if self.in_string => {
                self.run += 1;
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    self.run = 0;
                }
            }
            Kind::JsonToken => match b {
                b'"' => {
                    self.in_string = true;
                    self.run = 1;
                }
                b'{' | b'}' | b'[' | b']' | b',' | b':' | b' ' | b'\t' | b'\r' | b'\n' => {
                    self.run = 0;
                }
                _ => self.run += 1,
            },
        }
        self.run > MAX_TOKEN
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.kind == Kind::CsvLine {
            // Newlines found a word at a time, not byte by byte: this reads GiB files while
            // they download. A line inside one read is shorter than the read (≤ 256 KiB), so
            // only the line running across reads needs counting.
            let chunk = &buf[..n];
            let (first, last) = (memchr::memchr(b'\n', chunk), memchr::memrchr(b'\n', chunk));
            let longest = match first {
                Some(first) => self.run + first as u64,
                None => self.run + n as u64,
            };
            if longest > MAX_TOKEN {
                return Err(io::Error::other(TooLong {
                    line: self.line,
                    what: "the line",
                }));
            }
            self.line += memchr::memchr_iter(b'\n', chunk).count() as u64;
            self.run = match last {
                Some(last) => (n - last - 1) as u64,
                None => longest,
            };
            return Ok(n);
        }
        for &b in &buf[..n] {
            if self.count(b) {
                return Err(io::Error::other(TooLong {
                    line: self.line,
                    what: match (self.kind, self.in_string) {
                        (Kind::CsvLine, _) => "the line",
                        (Kind::JsonToken, true) => "a string",
                        (Kind::JsonToken, false) => "a number or literal",
                    },
                }));
            }
        }
        Ok(n)
    }
}
