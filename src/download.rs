//! Streaming a stored file to disk: into a temporary file beside the destination, hashing as the
//! bytes arrive, then renamed into place. A file under its final name is always complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Client, error_chain};
use crate::checks::{FileFacts, Inspection};
use crate::direct_io::FileWriter;
use crate::job::SizePolicy;
use crate::results::CheckStatus;

/// The bound on runaway bodies. The stored list announces a file's *compressed* size (the
/// vendor's generated client: "Stored report compressed size in bytes"), while the bytes
/// counted here are decoded ones: a gzip transfer is decoded by the HTTP client, a body that is
/// itself gzip by [`Gunzip`]. CSV commonly compresses 10–50×, so no small multiple of the
/// announced size is safe. Deflate cannot compress better than 1032:1 (a 258-byte match in
/// about 2 bits), so a genuine file decoded from N compressed bytes never exceeds 1032 × N; a
/// download that delivers more than that (plus slack for a file stored with headers or
/// recompressed differently) is a broken or hostile server, not the file announced.
const MAX_DEFLATE_RATIO: u64 = 1032;
const OVERSIZE_SLACK: u64 = 16 * 1024 * 1024;

/// The most decoded bytes a file announced with `announced` (compressed) bytes may have.
pub fn oversize_limit(announced: u64) -> u64 {
    announced
        .saturating_mul(MAX_DEFLATE_RATIO)
        .saturating_add(OVERSIZE_SLACK)
}

/// What a download must satisfy besides arriving whole.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Attempts in all, for a transfer that broke or arrived short.
    pub attempts: u32,
    /// `checks.size`: whether the length must match the stored list's `size`.
    pub size: SizePolicy,
    /// `limits.max_file_size`: the most bytes (decoded) one file may have, announced size or not.
    pub max_file_size: u64,
    /// `limits.download_timeout`: the longest one attempt may take, from request to last byte.
    pub deadline: Duration,
    /// After [`Self::rate_grace`], a download averaging fewer bytes per second than this (as
    /// transferred) is given up: a server trickling a byte at a time never hits the deadline of a
    /// short file soon enough.
    pub min_rate: u64,
    pub rate_grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        let limits = crate::job::Limits::default();
        Self {
            attempts: 3,
            size: SizePolicy::default(),
            max_file_size: limits.max_file_size,
            deadline: limits.download_timeout,
            min_rate: 1024,
            rate_grace: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
pub struct Downloaded {
    /// The host that served the file when a redirect took the download away from the API's.
    pub served_by: Option<String>,
    pub bytes: u64,
    pub sha256: String,
    /// What checking the bytes on their way found.
    pub inspected: FileFacts,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("the transfer broke after {received} bytes: {message}")]
    Broken { received: u64, message: String },
    #[error(
        "the server sent more than {limit} bytes (decoded) for a file announced as {announced} bytes (compressed)"
    )]
    Oversized { announced: u64, limit: u64 },
    /// A body that ended early (or late) yet looked complete: a matching Content-Length, a
    /// close-delimited HTTP/1.0 body, a cut at a row's end.
    #[error(
        "the stored list announced {announced} bytes but {transferred} bytes arrived ({decoded} after decoding); set `checks.size: warn` or `off` in the job file if this server's `size` means something else"
    )]
    SizeMismatch {
        announced: u64,
        transferred: u64,
        decoded: u64,
    },
    #[error(
        "the file grew past {limit} bytes (limits.max_file_size); raise the limit in the job file if reports this large are expected"
    )]
    TooLarge { limit: u64 },
    #[error(
        "the body decodes to more than {MAX_DEFLATE_RATIO}× its {transferred} transferred bytes: not a file gzip can produce"
    )]
    Bomb { transferred: u64 },
    #[error(
        "the download did not finish within {} (limits.download_timeout) after {received} bytes",
        crate::duration::format(*limit)
    )]
    Deadline { limit: Duration, received: u64 },
    #[error(
        "the server sent {received} bytes in {}s, below the minimum of {min_rate} bytes per second",
        elapsed.as_secs()
    )]
    TooSlow {
        received: u64,
        elapsed: Duration,
        min_rate: u64,
    },
    /// A captive portal or proxy page answering 200 in place of the file.
    #[error(
        "the server answered with {content_type} instead of a {format} file (it begins \"{start}\"); check HTTPS_PROXY/NO_PROXY and the base URL"
    )]
    WrongContentType {
        format: crate::report::Format,
        content_type: String,
        start: String,
    },
    #[error("the body is a gzip file that cannot be decoded after {received} bytes: {source}")]
    Gzip {
        received: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DownloadError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Api(e) => e.is_transient(),
            // A short body may be a cut the server did not notice: worth fetching again. A gzip
            // stream that fails its check is most often such a cut too (its trailer is missing).
            Self::Broken { .. } | Self::SizeMismatch { .. } | Self::Gzip { .. } => true,
            // A slow or endless server would make every attempt as long: not retried.
            Self::Oversized { .. }
            | Self::TooLarge { .. }
            | Self::Bomb { .. }
            | Self::Deadline { .. }
            | Self::TooSlow { .. }
            | Self::WrongContentType { .. }
            | Self::Io { .. } => false,
        }
    }
}

/// Downloads one stored file to `dest` (whose folder must exist), checking it on the way as
/// `inspection` says, retrying a broken transfer from scratch up to `policy.attempts` times in
/// all.
pub async fn fetch_to_file(
    client: &Client,
    report_id: &str,
    stored_id: &str,
    announced_size: Option<u64>,
    dest: &Path,
    inspection: Inspection,
    policy: Policy,
) -> Result<Downloaded, DownloadError> {
    let attempts = policy.attempts;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let json = inspection.format == crate::report::Format::JsonV2;
        match fetch_once(
            client,
            report_id,
            stored_id,
            announced_size,
            dest,
            inspection.clone(),
            policy,
        )
        .await
        {
            // A JSON document that does not read may have been cut where JSON allows no end:
            // fetch it again before its report fails (the last copy is kept either way).
            Ok(done)
                if json
                    && done.inspected.content_check.status == CheckStatus::Failed
                    && attempt < attempts =>
            {
                tracing::warn!(
                    report_id,
                    stored_id,
                    problem = done
                        .inspected
                        .content_check
                        .problem
                        .as_deref()
                        .unwrap_or(""),
                    attempt,
                    "the JSON file does not read; fetching it again"
                );
            }
            Ok(done) => return Ok(done),
            Err(error) if error.is_retryable() && attempt < attempts => {
                tracing::warn!(report_id, stored_id, %error, attempt, "download failed; starting again");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn fetch_once(
    client: &Client,
    report_id: &str,
    stored_id: &str,
    announced_size: Option<u64>,
    dest: &Path,
    inspection: Inspection,
    policy: Policy,
) -> Result<Downloaded, DownloadError> {
    let io = |source| DownloadError::Io {
        path: dest.to_owned(),
        source,
    };
    // The caller made the folder without following symbolic links (`paths::ensure_dir_inside`).
    let parent = dest.parent().unwrap_or(Path::new("."));
    let file_name = dest.file_name().unwrap_or("download".as_ref());
    // Hidden and marked, so a crash leaves nothing that looks like a report file.
    let temp = crate::disk::temp_file_beside(parent, file_name, ".partial").map_err(io)?;
    let limit = announced_size.filter(|size| *size > 0).map(oversize_limit);

    let started = tokio::time::Instant::now();
    let deadline = started + policy.deadline;
    let late = |received| DownloadError::Deadline {
        limit: policy.deadline,
        received,
    };
    let response = tokio::time::timeout_at(deadline, client.download(report_id, stored_id))
        .await
        .map_err(|_| late(0))??;
    let format = inspection.format;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let mut response = response;
    if format != crate::report::Format::Html
        && let Some(content_type) = content_type.filter(|ct| ct.starts_with("text/html"))
    {
        // Only the first chunk is read, to quote it; nothing is saved.
        let first = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => bytes::Bytes::new(),
        };
        // The chunk may be gzip on the wire: quote what it says, not its compressed bytes.
        let decoded: Vec<u8> = Gunzip::default()
            .feed(first)
            .unwrap_or_default()
            .iter()
            .flat_map(|piece| piece.iter().copied())
            .take(120)
            .collect();
        let head = decoded.as_slice();
        return Err(DownloadError::WrongContentType {
            format,
            content_type,
            // Scrubbed before it is cut, so a credential cut in half cannot leave its start.
            start: crate::api::one_line(&client.scrub(&String::from_utf8_lossy(head)), 80),
        });
    }
    let served_by = response
        .url()
        .host_str()
        .filter(|host| Some(*host) != client.base_url().host_str())
        .map(str::to_owned);
    let file = temp.as_file().try_clone().map_err(io)?;
    // The announced size is the compressed one: a gzip file may decode much larger, so some
    // large files go through the cache; never the other way round.
    let large = announced_size.is_some_and(|size| size >= LARGE_BYTES);
    let workers = Workers::start(file, inspection, large);
    // Bytes after decoding a body that is itself gzip: what is written, hashed and checked.
    let mut received: u64 = 0;
    let mut wire: u64 = 0;
    let mut batch = Batch::new();
    let mut batch_bytes = 0;
    let mut gunzip = Gunzip::default();
    let mut body = response.bytes_stream();
    let mut ended = false;
    // The minimum rate counts from the first byte of the body: the wait for the headers (and a
    // token) is the request's, and a server may think before it streams.
    let mut body_started: Option<tokio::time::Instant> = None;
    while !ended {
        let next = tokio::time::timeout_at(deadline, body.next())
            .await
            .map_err(|_| late(wire))?;
        let first = *body_started.get_or_insert_with(tokio::time::Instant::now);
        let elapsed = first.elapsed();
        if elapsed > policy.rate_grace && wire < policy.min_rate.saturating_mul(elapsed.as_secs()) {
            return Err(DownloadError::TooSlow {
                received: wire,
                elapsed,
                min_rate: policy.min_rate,
            });
        }
        let decoded = match next {
            Some(chunk) => {
                let chunk = chunk.map_err(|e| DownloadError::Broken {
                    received: wire,
                    message: error_chain(&e),
                })?;
                wire += chunk.len() as u64;
                gunzip.feed(chunk)
            }
            None => {
                ended = true;
                gunzip.finish()
            }
        }
        .map_err(|source| DownloadError::Gzip {
            received: wire,
            source,
        })?;
        for chunk in decoded {
            received += chunk.len() as u64;
            if received > policy.max_file_size {
                return Err(DownloadError::TooLarge {
                    limit: policy.max_file_size,
                });
            }
            // Whether or not a size was announced, gzip cannot expand more than deflate allows.
            if received > oversize_limit(wire) {
                return Err(DownloadError::Bomb { transferred: wire });
            }
            if let (Some(limit), Some(announced)) = (limit, announced_size)
                && received > limit
            {
                return Err(DownloadError::Oversized { announced, limit });
            }
            batch_bytes += chunk.len();
            batch.push(chunk);
        }
        if batch_bytes >= BATCH_BYTES {
            batch_bytes = 0;
            if !workers.hand_over(std::mem::take(&mut batch)).await {
                // A thread stopped early: its own error says why.
                break;
            }
        }
    }
    if !batch.is_empty() {
        // A thread that stopped early says why through its own result.
        workers.hand_over(batch).await;
    }
    let Work {
        written,
        hashed,
        inspected,
        spilled,
    } = workers.finish().await.map_err(io)?;
    // The stored list's `size` is the compressed size (vendor's API definition): with a gzip
    // transfer that is the length as transferred; a server sending the file unencoded sends
    // its decoded length. A size of 0 is taken as not announced.
    if ended
        && policy.size != SizePolicy::Off
        && let Some(announced) = announced_size.filter(|size| *size > 0)
        && wire != announced
        && received != announced
    {
        let mismatch = DownloadError::SizeMismatch {
            announced,
            transferred: wire,
            decoded: received,
        };
        if policy.size == SizePolicy::Required {
            return Err(mismatch);
        }
        tracing::warn!(report_id, stored_id, "{mismatch}");
    }
    let (written, (hashed, sha256)) = (written.unwrap_or(0), hashed.unwrap_or_default());
    if written != received || hashed != received {
        return Err(io(std::io::Error::other(format!(
            "wrote {written} and hashed {hashed} of {received} bytes received"
        ))));
    }
    let (dest_owned, parent_owned, digest) = (dest.to_owned(), parent.to_owned(), sha256.clone());
    // Before the resume journal and SHA256SUMS count the file; a folder sync may wait for the
    // file system's journal, so not on the runtime's threads (nor the check's lines' rename).
    tokio::task::spawn_blocking(move || {
        crate::disk::persist_durably(temp, &dest_owned, &parent_owned)
            .map(|()| spilled.map(|lines| lines.keep(&digest)))
    })
    .await
    .unwrap_or_else(|joined| Err(std::io::Error::other(joined)))
    .map_err(io)?;
    Ok(Downloaded {
        served_by,
        bytes: received,
        sha256,
        inspected: inspected.unwrap_or(FileFacts::SKIPPED),
    })
}

/// Decodes, as it streams, a body that is gzip: a `Content-Encoding: gzip` transfer (downloads
/// use a client that leaves decoding to us, so the bytes as transferred can be counted) or the
/// stored `.gz` file sent without `Content-Encoding`. No report format starts with gzip's magic
/// bytes `1f 8b`, so they tell the two apart; any other body passes through untouched.
#[derive(Default)]
enum Gunzip {
    /// Fewer than the two magic bytes seen so far.
    #[default]
    Sniffing,
    SniffedOne(u8),
    Plain,
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
}

impl Gunzip {
    const MAGIC: [u8; 2] = [0x1f, 0x8b];
    /// Compressed bytes decoded at a time: bounds the memory one step can take even for the
    /// densest deflate stream (×1032), so the oversize check cuts a bomb off early.
    const STEP: usize = 16 * 1024;

    /// The decoded bytes for this chunk of the body (possibly none yet).
    fn feed(&mut self, chunk: bytes::Bytes) -> std::io::Result<Vec<bytes::Bytes>> {
        match self {
            Self::Plain => Ok(vec![chunk]),
            Self::Gzip(decoder) => Self::decode(decoder, &chunk),
            Self::Sniffing | Self::SniffedOne(_) => {
                let mut head = Vec::with_capacity(2);
                if let Self::SniffedOne(first) = self {
                    head.push(*first);
                }
                head.extend(chunk.iter().take(2 - head.len()));
                match head.as_slice() {
                    [] => Ok(Vec::new()),
                    [first] => {
                        *self = Self::SniffedOne(*first);
                        Ok(Vec::new())
                    }
                    magic if magic == Self::MAGIC => {
                        let mut decoder = Box::new(flate2::write::MultiGzDecoder::new(Vec::new()));
                        let mut out = Vec::new();
                        if let Self::SniffedOne(first) = self {
                            out = Self::decode(&mut decoder, &[*first])?;
                        }
                        out.extend(Self::decode(&mut decoder, &chunk)?);
                        *self = Self::Gzip(decoder);
                        Ok(out)
                    }
                    _ => {
                        let held = matches!(self, Self::SniffedOne(_)).then(|| head[0]);
                        *self = Self::Plain;
                        Ok(held
                            .map(|first| bytes::Bytes::copy_from_slice(&[first]))
                            .into_iter()
                            .chain([chunk])
                            .collect())
                    }
                }
            }
        }
    }

    /// What is left at the end of the body; an error if a gzip body stopped early.
    fn finish(&mut self) -> std::io::Result<Vec<bytes::Bytes>> {
        match std::mem::replace(self, Self::Plain) {
            Self::SniffedOne(first) => Ok(vec![bytes::Bytes::copy_from_slice(&[first])]),
            Self::Gzip(decoder) => {
                let rest = decoder.finish()?;
                Ok((!rest.is_empty())
                    .then(|| bytes::Bytes::from(rest))
                    .into_iter()
                    .collect())
            }
            Self::Sniffing | Self::Plain => Ok(Vec::new()),
        }
    }

    fn decode(
        decoder: &mut flate2::write::MultiGzDecoder<Vec<u8>>,
        compressed: &[u8],
    ) -> std::io::Result<Vec<bytes::Bytes>> {
        use std::io::Write;
        let mut out = Vec::new();
        for step in compressed.chunks(Self::STEP) {
            decoder.write_all(step)?;
            decoder.flush()?;
            let decoded = std::mem::take(decoder.get_mut());
            if !decoded.is_empty() {
                out.push(bytes::Bytes::from(decoded));
            }
        }
        Ok(out)
    }
}

/// Blocking threads a large download holds until it ends: writing, hashing, checking.
pub const THREADS_PER_DOWNLOAD: usize = 3;

/// Received chunks (tens of KiB each) go to the threads in batches: handing over each chunk
/// alone cost two thread wake-ups per chunk, a large share of the time per byte.
type Batch = Vec<bytes::Bytes>;
const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight from the receiving task to each thread.
const PIPELINE_BATCHES: usize = 4;
type Sender = tokio::sync::mpsc::Sender<Batch>;

/// What the threads of one download found; each part from the thread that did it.
#[derive(Debug, Default)]
struct Work {
    written: Option<u64>,
    /// Bytes hashed and their SHA-256 (hex).
    hashed: Option<(u64, String)>,
    inspected: Option<FileFacts>,
    /// The invoice lines the check read, for `billing.csv`.
    spilled: Option<crate::content::spill::Spilled>,
}

/// The blocking threads that take the received chunks. Receiving runs on the runtime while
/// they write, hash and check the previous chunks. A large file gets a thread for each of the
/// three, so the time per byte is that of the slowest rather than their sum; a smaller one gets
/// a single thread for all three, so that a run of many small reports at once does not start
/// three threads per report. `Bytes` are shared, not copied, between them.
struct Workers {
    inboxes: Vec<Sender>,
    threads: Vec<tokio::task::JoinHandle<std::io::Result<Work>>>,
}

impl Workers {
    fn start(file: std::fs::File, inspection: Inspection, large: bool) -> Self {
        let mut workers = Self {
            inboxes: Vec::new(),
            threads: Vec::new(),
        };
        if !large {
            workers.spawn(move |inbox| write_hash_and_check(inbox, file, inspection));
            return workers;
        }
        workers.spawn(move |inbox| {
            Ok(Work {
                written: Some(write_all(inbox, file, true)?),
                ..Work::default()
            })
        });
        workers.spawn(|inbox| {
            Ok(Work {
                hashed: Some(hash(inbox)),
                ..Work::default()
            })
        });
        if inspection.needed() {
            workers.spawn(move |inbox| {
                let (inspected, spilled) = check(inbox, inspection);
                Ok(Work {
                    inspected: Some(inspected),
                    spilled,
                    ..Work::default()
                })
            });
        }
        workers
    }

    fn spawn(&mut self, work: impl FnOnce(Chunks) -> std::io::Result<Work> + Send + 'static) {
        let (sender, inbox) = tokio::sync::mpsc::channel::<Batch>(PIPELINE_BATCHES);
        self.inboxes.push(sender);
        let chunks = Chunks {
            inbox,
            pending: Batch::new().into_iter(),
        };
        self.threads
            .push(tokio::task::spawn_blocking(move || work(chunks)));
    }

    /// Gives the batch to every thread; false if one of them has stopped.
    async fn hand_over(&self, batch: Batch) -> bool {
        for inbox in &self.inboxes {
            if inbox.send(batch.clone()).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Waits for every thread to take what is left and to end; their findings, together.
    async fn finish(self) -> std::io::Result<Work> {
        drop(self.inboxes);
        let mut all = Work::default();
        for thread in self.threads {
            let work = thread.await.map_err(std::io::Error::other)??;
            all.written = all.written.or(work.written);
            all.hashed = all.hashed.or(work.hashed);
            all.inspected = all.inspected.or(work.inspected);
            all.spilled = all.spilled.or(work.spilled);
        }
        Ok(all)
    }
}

/// Writes every chunk that arrives, then makes the file durable. Returns the byte count.
fn write_all(chunks: Chunks, file: std::fs::File, direct: bool) -> std::io::Result<u64> {
    let mut out = FileWriter::new(file, direct);
    for chunk in chunks {
        out.put(&chunk)?;
    }
    out.finish()
}

/// The single thread of a smaller download: writes, hashes and checks each chunk in turn.
fn write_hash_and_check(
    mut chunks: Chunks,
    file: std::fs::File,
    inspection: Inspection,
) -> std::io::Result<Work> {
    let mut out = FileWriter::new(file, false);
    let mut hasher = Sha256::new();
    let mut hashed = 0u64;
    let mut failed = None;
    let (inspected, spilled) = {
        let mut next = || {
            if failed.is_some() {
                return None;
            }
            let chunk = chunks.next()?;
            if let Err(error) = out.put(&chunk) {
                // Stops taking chunks, which tells the receiving task to stop sending them.
                failed = Some(error);
                return None;
            }
            hasher.update(&chunk);
            hashed += chunk.len() as u64;
            Some(chunk)
        };
        let inspected = inspection.needed().then(|| inspection.run(&mut next));
        while next().is_some() {}
        inspected.map_or((None, None), |(facts, lines)| (Some(facts), lines))
    };
    if let Some(error) = failed {
        return Err(error);
    }
    Ok(Work {
        written: Some(out.finish()?),
        hashed: Some((hashed, hex::encode(hasher.finalize()))),
        inspected,
        spilled,
    })
}

/// Files announced at least this large get a thread for each step, and are written around the
/// page cache (see [`FileWriter`]).
const LARGE_BYTES: u64 = 16 * 1024 * 1024;

/// Hashes every chunk that arrives. Returns the byte count and the SHA-256 (hex).
fn hash(chunks: Chunks) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut hashed = 0u64;
    for chunk in chunks {
        hasher.update(&chunk);
        hashed += chunk.len() as u64;
    }
    (hashed, hex::encode(hasher.finalize()))
}

/// Checks the chunks as `inspection` says. The check may stop early; the chunks after that
/// are taken and dropped, so that receiving never waits for this thread.
fn check(
    mut chunks: Chunks,
    inspection: Inspection,
) -> (FileFacts, Option<crate::content::spill::Spilled>) {
    let inspected = inspection.run(&mut || chunks.next());
    chunks.for_each(drop);
    inspected
}

/// The chunks of the batches that arrive in one thread's inbox, one by one.
struct Chunks {
    inbox: tokio::sync::mpsc::Receiver<Batch>,
    pending: std::vec::IntoIter<bytes::Bytes>,
}

impl Iterator for Chunks {
    type Item = bytes::Bytes;

    fn next(&mut self) -> Option<bytes::Bytes> {
        loop {
            if let Some(chunk) = self.pending.next() {
                return Some(chunk);
            }
            self.pending = self.inbox.blocking_recv()?.into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip_all(chunks: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        let mut gunzip = Gunzip::default();
        let mut out = Vec::new();
        for chunk in chunks {
            for piece in gunzip.feed(bytes::Bytes::copy_from_slice(chunk))? {
                out.extend_from_slice(&piece);
            }
        }
        for piece in gunzip.finish()? {
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_gzip_body_is_decoded_however_it_is_cut() {
        let report: Vec<u8> = (0..200_000)
            .flat_map(|i: u32| format!("tenant-{},{}\n", i % 97, i).into_bytes())
            .collect();
        let mut compressed = gzip(&report[..report.len() / 2]);
        // Two gzip members, as a concatenated `.gz` file has.
        compressed.extend(gzip(&report[report.len() / 2..]));
        for cut in [1, 2, 3, 1000, 70_000, compressed.len()] {
            let chunks: Vec<&[u8]> = compressed.chunks(cut).collect();
            assert!(gunzip_all(&chunks).unwrap() == report, "cut {cut}");
        }
    }

    #[test]
    fn a_plain_body_passes_untouched_and_a_cut_gzip_body_is_an_error() {
        for body in [&b""[..], b"x", b"\x1f", b"\x1fX", b"tenant.id,name\n1,a\n"] {
            assert_eq!(gunzip_all(&[body]).unwrap(), body);
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(gunzip_all(&bytes).unwrap(), body);
        }
        let compressed = gzip(b"tenant.id,name\n1,a\n");
        assert!(gunzip_all(&[&compressed[..compressed.len() - 4]]).is_err());
    }

    /// A server on loopback that serves one stored file, gzip-encoded on the wire, and the
    /// compressed length it would announce.
    async fn serve_gzip_encoded(report: Vec<u8>) -> (String, u64, tokio::task::JoinHandle<()>) {
        let compressed = bytes::Bytes::from(gzip(&report));
        let announced = compressed.len() as u64;
        let app = axum::Router::new().route(
            "/api/2/reports/{id}/stored/{stored}",
            axum::routing::get(move || {
                let body = compressed.clone();
                async move {
                    (
                        [
                            (axum::http::header::CONTENT_TYPE, "text/csv"),
                            (axum::http::header::CONTENT_ENCODING, "gzip"),
                        ],
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (base, announced, server)
    }

    #[tokio::test]
    async fn a_report_compressed_far_better_than_4_to_1_is_not_cut_off() {
        // 24 MiB of CSV rows that compress about as well as real ones do (tens to one).
        let mut report = Vec::new();
        let mut i = 0u64;
        while report.len() < 24 * 1024 * 1024 {
            report.extend_from_slice(
                format!(
                    "ede9f834-70b3-476c-83d9-736f9f8c7dae,customer,backup,standard,pw_base_storage,{},{},{}\n",
                    i * 7919 % 100_003,
                    i,
                    i % 13
                )
                .as_bytes(),
            );
            i += 1;
        }
        let (base, announced, server) = serve_gzip_encoded(report.clone()).await;
        // Well past the old bound of 4 × the announced size + 16 MiB.
        assert!(report.len() as u64 > 4 * announced + OVERSIZE_SLACK);
        let client = Client::new(
            crate::api::api_base(&base).unwrap(),
            crate::api::Credentials::Token(crate::secret::Secret::new("token")),
            crate::api::ClientOptions::default(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("usage_summary.csv");
        let inspection = Inspection {
            format: crate::report::Format::Csv,
            check_skus: false,
            rule: Default::default(),
        };
        let done = fetch_to_file(
            &client,
            "r",
            "s",
            Some(announced),
            &dest,
            inspection,
            Policy {
                attempts: 1,
                ..Policy::default()
            },
        )
        .await
        .expect("a well-compressed report downloads whole");
        assert_eq!(done.bytes, report.len() as u64);
        assert!(std::fs::read(&dest).unwrap() == report);
        server.abort();
    }

    /// A loopback server answering every download with `body` and `content_type` (no
    /// encoding), counting the requests.
    async fn serve_plain(
        body: Vec<u8>,
        content_type: &'static str,
    ) -> (
        Client,
        std::sync::Arc<std::sync::atomic::AtomicU32>,
        tokio::task::JoinHandle<()>,
    ) {
        use std::sync::atomic::{AtomicU32, Ordering};
        let hits = std::sync::Arc::new(AtomicU32::new(0));
        let counted = hits.clone();
        let body = bytes::Bytes::from(body);
        let app = axum::Router::new().route(
            "/api/2/reports/{id}/stored/{stored}",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, content_type)], body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let client = Client::new(
            crate::api::api_base(&base).unwrap(),
            crate::api::Credentials::Token(crate::secret::Secret::new("token")),
            crate::api::ClientOptions::default(),
        )
        .unwrap();
        (client, hits, server)
    }

    fn csv_inspection() -> Inspection {
        Inspection {
            format: crate::report::Format::Csv,
            check_skus: false,
            rule: Default::default(),
        }
    }

    /// A body cut at a row's end with a Content-Length that matches the cut looked complete:
    /// it is fetched again, then fails naming both lengths; `warn` keeps it, `off` says nothing.
    #[tokio::test]
    async fn a_body_shorter_than_the_announced_size_is_refused() {
        let full = b"tenant,usage\na,1\nb,2\nc,3\n".to_vec();
        let short = full[..full.len() - 4].to_vec();
        let (client, hits, server) = serve_plain(short.clone(), "text/csv").await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.csv");
        let announced = Some(full.len() as u64);
        let fetch = |size| {
            fetch_to_file(
                &client,
                "r",
                "s",
                announced,
                &dest,
                csv_inspection(),
                Policy {
                    attempts: 2,
                    size,
                    ..Policy::default()
                },
            )
        };
        let error = fetch(SizePolicy::Required).await.unwrap_err();
        assert!(
            matches!(error, DownloadError::SizeMismatch { announced: a, transferred: t, .. }
                if a == full.len() as u64 && t == short.len() as u64),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&full.len().to_string()) && message.contains(&short.len().to_string()),
            "{message}"
        );
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "fetched again"
        );
        assert!(!dest.exists(), "a short file never takes the final name");
        for size in [SizePolicy::Warn, SizePolicy::Off] {
            let done = fetch(size).await.unwrap();
            assert_eq!(done.bytes, short.len() as u64);
        }
        server.abort();
    }

    /// A loopback server streaming `chunk` every `every`, `count` times, with no size anywhere.
    async fn serve_stream(
        chunk: Vec<u8>,
        every: Duration,
        count: usize,
        gzip_encoded: bool,
    ) -> (Client, tokio::task::JoinHandle<()>) {
        let chunk = bytes::Bytes::from(chunk);
        let app = axum::Router::new().route(
            "/api/2/reports/{id}/stored/{stored}",
            axum::routing::get(move || {
                let chunk = chunk.clone();
                async move {
                    let body = futures_util::stream::unfold(0usize, move |n| {
                        let chunk = chunk.clone();
                        async move {
                            if n >= count {
                                return None;
                            }
                            if !every.is_zero() {
                                tokio::time::sleep(every).await;
                            }
                            Some((Ok::<_, std::io::Error>(chunk), n + 1))
                        }
                    });
                    let encoding = if gzip_encoded { "gzip" } else { "identity" };
                    (
                        [
                            (axum::http::header::CONTENT_TYPE, "text/csv"),
                            (axum::http::header::CONTENT_ENCODING, encoding),
                        ],
                        axum::body::Body::from_stream(body),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let client = Client::new(
            crate::api::api_base(&base).unwrap(),
            crate::api::Credentials::Token(crate::secret::Secret::new("token")),
            crate::api::ClientOptions::default(),
        )
        .unwrap();
        (client, server)
    }

    /// Without a `size`, an endless body or a gzip bomb grew without bound: the absolute cap
    /// applies always.
    #[tokio::test]
    async fn endless_bodies_and_gzip_bombs_stop_at_the_file_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.csv");
        let policy = Policy {
            max_file_size: 4 << 20,
            ..Policy::default()
        };
        let (client, server) =
            serve_stream(vec![b'x'; 64 * 1024], Duration::ZERO, usize::MAX, false).await;
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            csv_inspection(),
            Policy {
                attempts: 3,
                ..policy
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, DownloadError::TooLarge { limit } if limit == 4 << 20),
            "{error}"
        );
        assert!(
            error.to_string().contains("limits.max_file_size"),
            "{error}"
        );
        server.abort();
        // 64 MiB of zeros in about 64 KiB of gzip, on the wire as Content-Encoding.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let (client, server) = serve_stream(bomb, Duration::ZERO, 1, true).await;
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            csv_inspection(),
            Policy {
                attempts: 3,
                ..policy
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(error, DownloadError::TooLarge { .. }), "{error}");
        assert!(!dest.exists());
        server.abort();
    }

    /// A body trickling a byte at a time ran until killed: every download has a deadline and a
    /// minimum rate.
    #[tokio::test]
    async fn a_trickling_body_meets_the_deadline_and_the_minimum_rate() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.csv");
        let (client, server) =
            serve_stream(b"x".to_vec(), Duration::from_millis(50), usize::MAX, false).await;
        let started = std::time::Instant::now();
        let policy = Policy {
            deadline: Duration::from_millis(800),
            ..Policy::default()
        };
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            csv_inspection(),
            Policy {
                attempts: 3,
                ..policy
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(error, DownloadError::Deadline { .. }), "{error}");
        assert!(
            error.to_string().contains("limits.download_timeout"),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "not retried");
        let policy = Policy {
            rate_grace: Duration::from_millis(300),
            min_rate: 1000,
            ..Policy::default()
        };
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            csv_inspection(),
            Policy {
                attempts: 3,
                ..policy
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(error, DownloadError::TooSlow { .. }), "{error}");
        server.abort();
    }

    /// A captive portal's page answering 200 was saved as the report.
    #[tokio::test]
    async fn an_html_page_is_not_saved_as_a_csv_or_json_file() {
        let page =
            b"<!DOCTYPE html><html><head><title>Sign in to Wi-Fi</title></head></html>".to_vec();
        let (client, hits, server) = serve_plain(page, "text/html; charset=utf-8").await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.csv");
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            csv_inspection(),
            Policy {
                attempts: 3,
                ..Policy::default()
            },
        )
        .await
        .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, DownloadError::WrongContentType { .. }),
            "{message}"
        );
        assert!(
            message.contains("text/html") && message.contains("<!DOCTYPE html><html>"),
            "{message}"
        );
        assert!(!dest.exists());
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "not retried"
        );
        let html = Inspection {
            format: crate::report::Format::Html,
            ..csv_inspection()
        };
        fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            html,
            Policy {
                attempts: 1,
                ..Policy::default()
            },
        )
        .await
        .expect("an html report may be html");
        server.abort();
    }

    /// A credential an HTML page echoes across the quote's cut is scrubbed before the cut, so
    /// not even its start is quoted.
    #[tokio::test]
    async fn a_credential_across_the_quotes_cut_is_scrubbed_whole() {
        let page = format!("<html>{}SECRETTOKEN123 echoed</html>", "x".repeat(68));
        let (plain, _, server) = serve_plain(page.into_bytes(), "text/html").await;
        let client = Client::new(
            plain.base_url().clone(),
            crate::api::Credentials::Token(crate::secret::Secret::new("SECRETTOKEN123")),
            crate::api::ClientOptions::default(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dir.path().join("r.csv"),
            csv_inspection(),
            Policy::default(),
        )
        .await
        .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, DownloadError::WrongContentType { .. }),
            "{message}"
        );
        assert!(!message.contains("SECRET"), "{message}");
        server.abort();
    }

    /// A gzip transfer cut short fails its trailer check: like any cut, it is fetched again.
    #[tokio::test]
    async fn a_cut_gzip_transfer_is_fetched_again() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let whole = gzip(&b"tenant.id,usage\n".repeat(10_000));
        let cut = bytes::Bytes::from(whole[..whole.len() / 2].to_vec());
        let hits = std::sync::Arc::new(AtomicU32::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/api/2/reports/{id}/stored/{stored}",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = cut.clone();
                async move {
                    (
                        [
                            (axum::http::header::CONTENT_TYPE, "text/csv"),
                            (axum::http::header::CONTENT_ENCODING, "gzip"),
                        ],
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let client = Client::new(
            crate::api::api_base(&base).unwrap(),
            crate::api::Credentials::Token(crate::secret::Secret::new("token")),
            crate::api::ClientOptions::default(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let error = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dir.path().join("r.csv"),
            csv_inspection(),
            Policy::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, DownloadError::Gzip { .. }), "{error}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            3,
            "fetched again, then given up"
        );
        server.abort();
    }

    /// A server that thinks before it streams is not "too slow": the minimum rate counts from
    /// the body's first byte.
    #[tokio::test]
    async fn the_minimum_rate_counts_from_the_first_byte() {
        let (client, server) =
            serve_stream(vec![b'x'; 4096], Duration::from_millis(1500), 1, false).await;
        let dir = tempfile::tempdir().unwrap();
        let done = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dir.path().join("r.csv"),
            csv_inspection(),
            Policy {
                rate_grace: Duration::from_secs(1),
                min_rate: 1024,
                ..Policy::default()
            },
        )
        .await
        .expect("a late but fast body arrives");
        assert_eq!(done.bytes, 4096);
        server.abort();
    }

    /// A JSON document that does not parse is fetched again before its report fails.
    #[tokio::test]
    async fn a_json_file_that_does_not_read_is_fetched_again() {
        let (client, hits, server) =
            serve_plain(b"{\"items\": [{\"id\": ".to_vec(), "application/json").await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json");
        let inspection = Inspection {
            format: crate::report::Format::JsonV2,
            ..csv_inspection()
        };
        let done = fetch_to_file(
            &client,
            "r",
            "s",
            None,
            &dest,
            inspection,
            Policy {
                attempts: 3,
                ..Policy::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(done.inspected.content_check.status, CheckStatus::Failed);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);
        server.abort();
    }

    /// The announced size may be the length as transferred (gzip) or, for a server that sends
    /// the file unencoded, the decoded length: both are accepted.
    #[tokio::test]
    async fn the_announced_size_matches_as_transferred_or_decoded() {
        let report = b"tenant,usage\na,1\n".repeat(500);
        let (base, announced, server) = serve_gzip_encoded(report.clone()).await;
        let client = Client::new(
            crate::api::api_base(&base).unwrap(),
            crate::api::Credentials::Token(crate::secret::Secret::new("token")),
            crate::api::ClientOptions::default(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.csv");
        let done = fetch_to_file(
            &client,
            "r",
            "s",
            Some(announced),
            &dest,
            csv_inspection(),
            Policy {
                attempts: 1,
                ..Policy::default()
            },
        )
        .await
        .expect("a gzip transfer as long as announced");
        assert_eq!(done.bytes, report.len() as u64);
        server.abort();
        let (client, _, server) = serve_plain(report.clone(), "text/csv").await;
        fetch_to_file(
            &client,
            "r",
            "s",
            Some(report.len() as u64),
            &dest,
            csv_inspection(),
            Policy {
                attempts: 1,
                ..Policy::default()
            },
        )
        .await
        .expect("an unencoded file as long as announced");
        server.abort();
    }

    #[test]
    fn the_oversize_limit_never_cuts_a_well_compressed_report() {
        // 50× is already a very good ratio for CSV; the limit leaves room up to deflate's 1032×.
        for announced in [1, 1_000, 10_000_000, 1 << 30] {
            assert!(oversize_limit(announced) >= announced * 1032);
        }
        assert_eq!(oversize_limit(u64::MAX), u64::MAX);
    }
}
