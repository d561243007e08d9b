//! Streaming a stored file to disk: into a temporary file beside the destination, hashing as the
//! bytes arrive, then renamed into place. A file under its final name is always complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;
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
pub(crate) fn oversize_limit(announced: u64) -> u64 {
    announced
        .saturating_mul(MAX_DEFLATE_RATIO)
        .saturating_add(OVERSIZE_SLACK)
}

/// What a download must satisfy besides arriving whole.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Attempts in all, for a transfer that broke or arrived short.
    pub(crate) attempts: u32,
    /// `checks.size`: whether the length must match the stored list's `size`.
    pub(crate) size: SizePolicy,
    /// `limits.max_file_size`: the most bytes (decoded) one file may have, announced size or not.
    pub(crate) max_file_size: u64,
    /// `limits.download_timeout`: the longest one attempt may take, from request to last byte.
    pub(crate) deadline: Duration,
    /// After [`Self::rate_grace`], a download averaging fewer bytes per second than this (as
    /// transferred) is given up: a server trickling a byte at a time never hits the deadline of a
    /// short file soon enough.
    pub(crate) min_rate: u64,
    pub(crate) rate_grace: Duration,
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
pub(crate) struct Downloaded {
    /// The host that served the file when a redirect took the download away from the API's.
    pub(crate) served_by: Option<String>,
    pub bytes: u64,
    pub(crate) sha256: String,
    /// What checking the bytes on their way found.
    pub(crate) inspected: FileFacts,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
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
pub(crate) async fn fetch_to_file(
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
        let mut gunzip = Gunzip::default();
        gunzip.feed(first);
        let mut decoded = Vec::new();
        while decoded.len() < 120 {
            let piece = match gunzip.next_piece() {
                Ok(Some(piece)) => piece,
                // A first chunk of one byte is held back by the sniffing, and was lost: the
                // quote began "" for a page sent a byte first.
                Ok(None) => match gunzip.finish() {
                    Ok(Some(rest)) => rest,
                    _ => break,
                },
                Err(_) => break,
            };
            decoded.extend_from_slice(&piece[..piece.len().min(120 - decoded.len())]);
        }
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
    // A large file's check may fall behind and read the file back: through a handle of its
    // own on this very file (tempfile checks the reopened file is the one it made).
    let read_back = match large && inspection.needed() {
        true => Some(temp.reopen().map_err(io)?),
        false => None,
    };
    let mut workers = Workers::start(file, read_back, inspection, large);
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
    'receiving: while !ended {
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
        match next {
            Some(chunk) => {
                let chunk = chunk.map_err(|e| DownloadError::Broken {
                    received: wire,
                    message: error_chain(&e),
                })?;
                wire += chunk.len() as u64;
                gunzip.feed(chunk);
            }
            None => ended = true,
        }
        let gzip_error = |source| DownloadError::Gzip {
            received: wire,
            source,
        };
        // Piece by piece, so each is counted against the limits before the next is decoded.
        loop {
            let piece = match gunzip.next_piece().map_err(gzip_error)? {
                Some(piece) => piece,
                None if ended => match gunzip.finish().map_err(gzip_error)? {
                    Some(rest) => rest,
                    None => break,
                },
                None => break,
            };
            received += piece.len() as u64;
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
            batch_bytes += piece.len();
            batch.push(piece);
            if batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                if !workers.hand_over(std::mem::take(&mut batch), ended).await {
                    // A thread stopped early: its own error says why.
                    break 'receiving;
                }
            }
        }
    }
    if !batch.is_empty() {
        // A thread that stopped early says why through its own result.
        workers.hand_over(batch, true).await;
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
///
/// Each received chunk is [`Self::feed`] in, then taken out piece by piece with
/// [`Self::next_piece`]: a piece is at most [`Self::PIECE`] (plus one step of the decoder), so a
/// small chunk of a dense stream — deflate expands up to 1032× — never becomes hundreds of MiB
/// in memory before the size checks see it.
#[derive(Default)]
struct Gunzip {
    state: GunzipState,
    /// What was received and not yet decoded.
    pending: bytes::Bytes,
}

#[derive(Default)]
enum GunzipState {
    /// Fewer than the two magic bytes seen so far.
    #[default]
    Sniffing,
    SniffedOne(u8),
    Plain,
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
}

impl Gunzip {
    const MAGIC: [u8; 2] = [0x1f, 0x8b];
    /// Decoded bytes handed out at a time; the decoder adds at most its own buffer (32 KiB)
    /// at each step.
    const PIECE: usize = 256 * 1024;

    /// Takes the next chunk of the body; the previous one's pieces must have been taken.
    fn feed(&mut self, chunk: bytes::Bytes) {
        debug_assert!(
            self.pending.is_empty(),
            "a chunk fed before the last was decoded"
        );
        self.pending = chunk;
    }

    /// The next decoded piece of what was fed; none once it is all decoded (a gzip decoder may
    /// keep some bytes until more arrive or [`Self::finish`]).
    fn next_piece(&mut self) -> std::io::Result<Option<bytes::Bytes>> {
        loop {
            if self.pending.is_empty() {
                return Ok(None);
            }
            match &mut self.state {
                GunzipState::Plain => return Ok(Some(std::mem::take(&mut self.pending))),
                GunzipState::Gzip(decoder) => return Self::decode(decoder, &mut self.pending),
                GunzipState::Sniffing => match self.pending.as_ref() {
                    [first] => {
                        self.state = GunzipState::SniffedOne(*first);
                        self.pending.clear();
                    }
                    head => self.state = Self::sniffed(head.starts_with(&Self::MAGIC)),
                },
                GunzipState::SniffedOne(first) => {
                    let first = *first;
                    if self.pending[0] != Self::MAGIC[1] || first != Self::MAGIC[0] {
                        // The byte held back is the body's first: it goes out first.
                        self.state = GunzipState::Plain;
                        return Ok(Some(bytes::Bytes::copy_from_slice(&[first])));
                    }
                    let mut decoder = Self::decoder();
                    std::io::Write::write_all(&mut decoder, &[first])?;
                    self.state = GunzipState::Gzip(decoder);
                }
            }
        }
    }

    fn decoder() -> Box<flate2::write::MultiGzDecoder<Vec<u8>>> {
        Box::new(flate2::write::MultiGzDecoder::new(Vec::new()))
    }

    fn sniffed(gzip: bool) -> GunzipState {
        match gzip {
            true => GunzipState::Gzip(Self::decoder()),
            false => GunzipState::Plain,
        }
    }

    /// What is left at the end of the body (a few KiB at most: every byte fed was decoded);
    /// an error if a gzip body stopped early.
    fn finish(&mut self) -> std::io::Result<Option<bytes::Bytes>> {
        debug_assert!(
            self.pending.is_empty(),
            "finished before the last chunk was decoded"
        );
        match std::mem::replace(&mut self.state, GunzipState::Plain) {
            GunzipState::SniffedOne(first) => Ok(Some(bytes::Bytes::copy_from_slice(&[first]))),
            GunzipState::Gzip(decoder) => {
                let rest = decoder.finish()?;
                Ok((!rest.is_empty()).then(|| bytes::Bytes::from(rest)))
            }
            GunzipState::Sniffing | GunzipState::Plain => Ok(None),
        }
    }

    /// Decodes `pending` until a piece is full or it is all taken in.
    fn decode(
        decoder: &mut flate2::write::MultiGzDecoder<Vec<u8>>,
        pending: &mut bytes::Bytes,
    ) -> std::io::Result<Option<bytes::Bytes>> {
        use std::io::Write;
        while !pending.is_empty() && decoder.get_ref().len() < Self::PIECE {
            // One step of the decoder: it takes what input it can and outputs at most its
            // buffer, unlike `write_all`, which would decode the whole chunk at once.
            match decoder.write(pending) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(taken) => bytes::Buf::advance(pending, taken),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if pending.is_empty() {
            // Hands over what the decoder holds for this chunk, not only at the next one.
            decoder.flush()?;
        }
        // Empty only when all of `pending` was taken in.
        let decoded = std::mem::take(decoder.get_mut());
        Ok((!decoded.is_empty()).then(|| bytes::Bytes::from(decoded)))
    }
}

/// Threads of the blocking pool a large download holds until it ends: writing and hashing
/// (its check has a thread of its own).
pub(crate) const THREADS_PER_DOWNLOAD: usize = 2;

/// Received chunks (tens of KiB each) go to the threads in batches: handing over each chunk
/// alone cost two thread wake-ups per chunk, a large share of the time per byte.
type Batch = Vec<bytes::Bytes>;
const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight from the receiving task to each thread.
const PIPELINE_BATCHES: usize = 4;
/// Batches that may wait for a large file's check before it reads the file instead
/// ([`follow`]): room for the check's pace to vary without the transfer waiting.
const CHECK_QUEUE_BATCHES: usize = 8;
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
///
/// A smaller file's thread starts with its first batch: most such files are one batch, so the
/// thread works from start to end instead of waiting on the network. Started with the
/// download, each of hundreds of concurrent small downloads held a thread while it waited,
/// and the blocking pool grew through the run (31 threads at 1.5 s, 58 at 11 s of a
/// 10 000-report run), each with its stack and allocator arena.
///
/// A large file's check is fed without waiting ([`follow`]): when its queue is full, the
/// transfer goes on and the check reads the rest from the file once it is all written.
struct Workers {
    inboxes: Vec<Sender>,
    /// A large file's check, while the transfer feeds it.
    check_inbox: Option<Sender>,
    /// Set when the transfer stopped feeding the check.
    behind: Arc<follow::Behind>,
    /// Whether a large file's writer has written it all, for a check that fell behind.
    progress: Option<Arc<follow::Progress>>,
    /// Each ends with what its thread found; a thread that could not start or panicked is an
    /// error.
    threads: Vec<std::pin::Pin<Box<dyn Future<Output = std::io::Result<Work>> + Send>>>,
    /// A smaller file's destination and check, until its first batch.
    waiting: Option<(std::fs::File, Inspection)>,
}

impl Workers {
    /// `read_back`: another handle on the file, for a large file's check to read it with.
    fn start(
        file: std::fs::File,
        read_back: Option<std::fs::File>,
        inspection: Inspection,
        large: bool,
    ) -> Self {
        let mut workers = Self {
            inboxes: Vec::new(),
            check_inbox: None,
            behind: Arc::default(),
            progress: None,
            threads: Vec::new(),
            waiting: None,
        };
        if !large {
            workers.waiting = Some((file, inspection));
            return workers;
        }
        let progress = Arc::new(follow::Progress::default());
        workers.progress = Some(Arc::clone(&progress));
        let writer_progress = Arc::clone(&progress);
        workers.spawn(PIPELINE_BATCHES, move |inbox| {
            Ok(Work {
                written: Some(write_following(inbox, file, writer_progress)?),
                ..Work::default()
            })
        });
        workers.spawn(PIPELINE_BATCHES, |inbox| {
            Ok(Work {
                hashed: Some(hash(inbox)),
                ..Work::default()
            })
        });
        if inspection.needed() {
            let behind = Arc::clone(&workers.behind);
            workers.spawn_yielding(CHECK_QUEUE_BATCHES, move |inbox| {
                let following = follow::Following::new(inbox, behind, progress, read_back);
                let (inspected, spilled) = inspection.inspect_keeping_lines(following)?;
                Ok(Work {
                    inspected: Some(inspected),
                    spilled,
                    ..Work::default()
                })
            });
            // Fed apart from the others, without waiting.
            workers.check_inbox = workers.inboxes.pop();
        }
        workers
    }

    /// Starts a thread taking batches from an inbox of `capacity` (the last of `inboxes`).
    fn spawn(
        &mut self,
        capacity: usize,
        work: impl FnOnce(Chunks) -> std::io::Result<Work> + Send + 'static,
    ) {
        let chunks = self.inbox(capacity);
        let thread = tokio::task::spawn_blocking(move || work(chunks));
        self.threads.push(Box::pin(async move {
            thread.await.map_err(std::io::Error::other)?
        }));
    }

    /// [`Self::spawn`] on a thread of its own that yields the processor to the others where it
    /// can (a lower priority, on Linux): a large file's check, so that where the processors
    /// are busy other reports' transfers go first — they hold connections the server counts,
    /// the check only a file. Not a thread of the blocking pool, which would keep the lower
    /// priority for whatever it runs next.
    fn spawn_yielding(
        &mut self,
        capacity: usize,
        work: impl FnOnce(Chunks) -> std::io::Result<Work> + Send + 'static,
    ) {
        let chunks = self.inbox(capacity);
        let (done, result) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new()
            .name("check".to_owned())
            .spawn(move || {
                yield_processor();
                let _ = done.send(work(chunks));
            });
        self.threads.push(Box::pin(async move {
            started?;
            result
                .await
                .map_err(|_| std::io::Error::other("the check's thread ended without a result"))?
        }));
    }

    /// A new inbox, the last of `inboxes`: what the thread it is for takes its chunks from.
    fn inbox(&mut self, capacity: usize) -> Chunks {
        let (sender, inbox) = tokio::sync::mpsc::channel::<Batch>(capacity);
        self.inboxes.push(sender);
        Chunks {
            inbox,
            pending: Batch::new().into_iter(),
        }
    }

    /// Starts a smaller file's thread, once; `at_most` bounds the file's bytes when known.
    fn wake(&mut self, at_most: Option<u64>) {
        if let Some((file, inspection)) = self.waiting.take() {
            self.spawn(PIPELINE_BATCHES, move |inbox| {
                write_hash_and_check(inbox, file, inspection, at_most)
            });
        }
    }

    /// Gives the batch to every thread; false if one of them has stopped. `last`: no batch
    /// follows, so a thread that starts with this batch knows the whole file's size.
    async fn hand_over(&mut self, batch: Batch, last: bool) -> bool {
        let bytes = batch.iter().map(|chunk| chunk.len() as u64).sum();
        self.wake(last.then_some(bytes));
        if let Some(inbox) = &self.check_inbox {
            match inbox.try_send(batch.clone()) {
                Ok(()) => {}
                // The check reads this batch and the rest from the file.
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => self.stop_feeding_check(),
                // It stopped reading (the file proved broken): its result says so.
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => self.check_inbox = None,
            }
        }
        for inbox in &self.inboxes {
            if inbox.send(batch.clone()).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The transfer feeds a large file's check no more: it reads the rest from the file.
    fn stop_feeding_check(&mut self) {
        self.behind.set();
        self.check_inbox = None;
    }

    /// Waits for every thread to take what is left and to end; their findings, together.
    async fn finish(mut self) -> std::io::Result<Work> {
        // An empty file still gets its (empty) file written, hashed and checked.
        self.wake(Some(0));
        self.inboxes.clear();
        self.check_inbox = None;
        // `progress` stays: a finish dropped before its end (a cancelled download) or ended by
        // an error abandons the check; at its end every thread, the check too, has ended.
        let mut all = Work::default();
        for thread in std::mem::take(&mut self.threads) {
            let work = thread.await?;
            all.written = all.written.or(work.written);
            all.hashed = all.hashed.or(work.hashed);
            all.inspected = all.inspected.or(work.inspected);
            all.spilled = all.spilled.or(work.spilled);
        }
        Ok(all)
    }
}

impl Drop for Workers {
    /// A download that ends early (an error, a retry) lets a check reading the file stop.
    fn drop(&mut self) {
        if let Some(progress) = &self.progress {
            progress.abandon();
        }
    }
}

/// Writes every chunk that arrives around the page cache, telling `progress` once every byte
/// is in the file, then makes the file durable. Returns the byte count.
fn write_following(
    chunks: Chunks,
    file: std::fs::File,
    progress: Arc<follow::Progress>,
) -> std::io::Result<u64> {
    let abandon = follow::AbandonOnDrop(Some(Arc::clone(&progress)));
    let mut out = FileWriter::new(file, true);
    for chunk in chunks {
        out.put(&chunk)?;
    }
    let written = out.finish_telling(|all| progress.complete(all))?;
    abandon.disarm();
    Ok(written)
}

/// The single thread of a smaller download: writes, hashes and checks each chunk in turn.
fn write_hash_and_check(
    mut chunks: Chunks,
    file: std::fs::File,
    inspection: Inspection,
    at_most: Option<u64>,
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
        let inspected = inspection
            .needed()
            .then(|| inspection.run(&mut next, at_most));
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

/// The niceness of a large file's check thread (0 is the default, 19 the least urgent): it
/// gets about a tenth of a processor's time where the transfer's threads want it too.
#[cfg(target_os = "linux")]
const CHECK_NICENESS: i32 = 10;

/// Lowers the calling thread's priority (Linux: `setpriority` on a thread id is per thread).
/// Best effort: elsewhere, or where it is refused, the thread runs as any other.
fn yield_processor() {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), CHECK_NICENESS)
    {
        tracing::debug!("the check's thread keeps its priority: {error}");
    }
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

mod follow;
#[cfg(test)]
mod tests;
