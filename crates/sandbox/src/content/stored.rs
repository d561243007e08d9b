//! Large stored files: padding rows that make a report as big as a scenario asks, streamed in
//! chunks without holding the whole body.

use bytes::Bytes;

use super::*;

/// Extra `csv_v2_0` rows, generated on demand so a multi-GiB body never sits in memory.
///
/// Each row is a distinct made-up customer using one `pw_padding` seat, in the report's own
/// columns. Every row has the same length except the last, which absorbs the remainder (as
/// leading zeros of a number) so the padding is exactly `pad_bytes` long (or one row long when
/// `pad_bytes` is smaller than a row).
#[derive(Clone, Debug)]
pub(crate) struct Padding {
    pub(super) rows: u64,
    pub(super) row_len: u64,
    pub(super) extra: u64,
    /// Row text before and after the 12-digit row number.
    pub(super) prefix: Vec<u8>,
    pub(super) suffix: Vec<u8>,
    /// The same for the last row, which carries the `extra` filler.
    pub(super) last_prefix: Vec<u8>,
    pub(super) last_suffix: Vec<u8>,
}

/// Stands where the row number goes; a control character no real cell contains and that
/// needs no CSV quoting.
pub(super) const ROW_NUMBER_MARK: char = '\u{1}';

/// A padding row's text split around its row number.
pub(super) fn padding_template(
    spec: &ReportSpec,
    cols: &[Col],
    lead_zeros: usize,
) -> (Vec<u8>, Vec<u8>) {
    // The row number replaces the UUID's last group (12 hex digits; decimal digits are hex
    // too), so every padding row is a distinct, valid tenant id.
    let uuid = derived_uuid(&["padding", &spec.tenant_id]);
    let tenant_id = format!("{}{ROW_NUMBER_MARK}", uuid.get(..24).unwrap_or(&uuid));
    let apps = application_ids();
    let generated_at = rfc3339_utc(gen_date(spec));
    let date = spec.start.to_string();
    // A SKU like the real rows, so clients checking SKU presence are not misled.
    let sku = if spec.show_skus && !spec.no_skus {
        "SP4APDENS"
    } else {
        ""
    };
    let row = CsvRow {
        tenant_id: &tenant_id,
        tenant_kind: "customer",
        tenant_name: "Padding",
        application_id: &apps[App::Backup.index()],
        application_name: App::Backup.title(),
        name: "pw_padding",
        date: &date,
        unit: Unit::Quantity.as_str(),
        infra: None,
        usage: Usage {
            absolute: Split {
                production: 1,
                trial: 0,
            },
            delta: Split::default(),
            effective: Split {
                production: 1,
                trial: 0,
            },
        },
        sku,
        generated_at: &generated_at,
        lead_zeros,
    };
    let mut line = String::new();
    write_csv_row(&mut line, cols, &row);
    let (before, after) = line.split_once(ROW_NUMBER_MARK).unwrap_or((&line, ""));
    (before.as_bytes().to_vec(), after.as_bytes().to_vec())
}

impl Padding {
    pub(crate) fn new(spec: &ReportSpec, pad_bytes: u64) -> Option<Padding> {
        if pad_bytes == 0 {
            return None;
        }
        let cols = columns(spec);
        let (prefix, suffix) = padding_template(spec, &cols, 0);
        let row_len = (prefix.len() + 12 + suffix.len()) as u64;
        let (rows, extra) = if pad_bytes < row_len {
            (1, 0)
        } else {
            (pad_bytes / row_len, pad_bytes % row_len)
        };
        let (last_prefix, last_suffix) =
            padding_template(spec, &cols, usize::try_from(extra).unwrap_or(0));
        Some(Padding {
            rows,
            row_len,
            extra,
            prefix,
            suffix,
            last_prefix,
            last_suffix,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.rows * self.row_len + self.extra
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    pub(crate) fn write_rows(&self, from: u64, to: u64, out: &mut Vec<u8>) {
        // The row number as 12 digits, counted up in place: formatting each of the millions of
        // rows of a GiB body made the sandbox, not the client, the limit of streaming benches.
        let mut digits = [b'0'; 12];
        let mut n = from;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        for i in from..to.min(self.rows) {
            let last = i + 1 == self.rows;
            out.extend_from_slice(if last {
                &self.last_prefix
            } else {
                &self.prefix
            });
            out.extend_from_slice(&digits);
            for digit in digits.iter_mut().rev() {
                if *digit == b'9' {
                    *digit = b'0';
                } else {
                    *digit += 1;
                    break;
                }
            }
            out.extend_from_slice(if last {
                &self.last_suffix
            } else {
                &self.suffix
            });
        }
    }
}

/// The decoded bytes of one stored file: the rendered report plus optional padding.
#[derive(Debug)]
pub(crate) struct StoredBody {
    pub(crate) base: Bytes,
    pub(crate) padding: Option<Padding>,
    pub(crate) content_type: &'static str,
}

impl StoredBody {
    pub(crate) fn build(spec: &ReportSpec, format: Format, stale: bool, pad_bytes: u64) -> Self {
        let padding = if format == Format::CsvV2 && !stale && spec.content.layout == Layout::Vendor
        {
            Padding::new(spec, pad_bytes)
        } else {
            None
        };
        StoredBody {
            base: Bytes::from(render(spec, format, stale)),
            padding,
            content_type: content_type(spec, format),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.base.len() as u64 + self.padding.as_ref().map_or(0, Padding::len)
    }

    /// The whole body in memory; callers only do this below the streaming threshold.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match &self.padding {
            None => self.base.clone(),
            Some(p) => {
                let mut out = Vec::with_capacity(self.len() as usize);
                out.extend_from_slice(&self.base);
                p.write_rows(0, p.rows(), &mut out);
                Bytes::from(out)
            }
        }
    }
}

/// Yields a stored body in chunks of roughly `CHUNK` bytes.
pub(crate) struct ChunkCursor {
    pub(super) body: std::sync::Arc<StoredBody>,
    pub(super) base_sent: bool,
    pub(super) next_row: u64,
}

pub(super) const CHUNK: usize = 64 * 1024;

impl ChunkCursor {
    pub(crate) fn new(body: std::sync::Arc<StoredBody>) -> Self {
        ChunkCursor {
            body,
            base_sent: false,
            next_row: 0,
        }
    }

    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.base_sent {
            self.base_sent = true;
            if !self.body.base.is_empty() {
                return Some(self.body.base.clone());
            }
        }
        let p = self.body.padding.as_ref()?;
        if self.next_row >= p.rows() {
            return None;
        }
        let per_chunk = (CHUNK as u64 / p.row_len).max(1);
        let to = (self.next_row + per_chunk).min(p.rows());
        let mut out = Vec::with_capacity(CHUNK + p.extra as usize + p.row_len as usize);
        p.write_rows(self.next_row, to, &mut out);
        self.next_row = to;
        Some(Bytes::from(out))
    }
}
