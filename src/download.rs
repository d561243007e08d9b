//! Streaming a stored file to disk: into a temporary file beside the destination, hashing as the
//! bytes arrive, then renamed into place. A file under its final name is always complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Client, error_chain};
use crate::checks::{FileFacts, Inspection, Streamed};

/// A download that delivers more than this many times its announced size (plus slack for
/// formatting differences) is a broken or hostile server, not a report.
const OVERSIZE_FACTOR: u64 = 4;
const OVERSIZE_SLACK: u64 = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct Downloaded {
    pub bytes: u64,
    pub sha256: String,
    /// What checking the bytes on their way found.
    pub inspected: Streamed,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("the transfer broke after {received} bytes: {message}")]
    Broken { received: u64, message: String },
    #[error("the server sent more than {limit} bytes for a file announced as {announced} bytes")]
    Oversized { announced: u64, limit: u64 },
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
            Self::Broken { .. } => true,
            Self::Oversized { .. } | Self::Io { .. } => false,
        }
    }
}

/// Downloads one stored file to `dest` (whose folder must exist), checking it on the way as
/// `inspection` says, retrying a broken transfer from scratch up to `attempts` times in all.
pub async fn fetch_to_file(
    client: &Client,
    report_id: &str,
    stored_id: &str,
    announced_size: Option<u64>,
    dest: &Path,
    attempts: u32,
    inspection: Inspection,
) -> Result<Downloaded, DownloadError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch_once(
            client,
            report_id,
            stored_id,
            announced_size,
            dest,
            inspection,
        )
        .await
        {
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
) -> Result<Downloaded, DownloadError> {
    let io = |source| DownloadError::Io {
        path: dest.to_owned(),
        source,
    };
    // The caller made the folder without following symbolic links (`paths::ensure_dir_inside`).
    let parent = dest.parent().unwrap_or(Path::new("."));
    let file_name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("download");
    // Hidden and marked, so a crash leaves nothing that looks like a report file.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".partial")
        .tempfile_in(parent)
        .map_err(io)?;
    let limit = announced_size.filter(|size| *size > 0).map(|size| {
        size.saturating_mul(OVERSIZE_FACTOR)
            .saturating_add(OVERSIZE_SLACK)
    });

    let response = client.download(report_id, stored_id).await?;
    // Receiving runs here while one blocking thread writes the previous chunks and another
    // hashes and checks them, so the time per byte is the slowest of the three rather than
    // their sum. `Bytes` are shared, not copied, between them.
    let file = temp.as_file().try_clone().map_err(io)?;
    let (to_write, inbox) = tokio::sync::mpsc::channel::<Batch>(PIPELINE_BATCHES);
    let writer = tokio::task::spawn_blocking(move || write_all(inbox, file));
    let (to_hash, inbox) = tokio::sync::mpsc::channel::<Batch>(PIPELINE_BATCHES);
    let hasher = tokio::task::spawn_blocking(move || hash_and_check(inbox, inspection));
    let mut received: u64 = 0;
    let mut batch = Batch::new();
    let mut batch_bytes = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| DownloadError::Broken {
            received,
            message: error_chain(&e),
        })?;
        received += chunk.len() as u64;
        if let (Some(limit), Some(announced)) = (limit, announced_size)
            && received > limit
        {
            return Err(DownloadError::Oversized { announced, limit });
        }
        batch_bytes += chunk.len();
        batch.push(chunk);
        if batch_bytes >= BATCH_BYTES {
            batch_bytes = 0;
            let batch = std::mem::take(&mut batch);
            if to_hash.send(batch.clone()).await.is_err() || to_write.send(batch).await.is_err() {
                // A thread stopped early: its own error says why.
                break;
            }
        }
    }
    if !batch.is_empty() {
        // A thread that stopped early says why through its own result.
        let _ = to_hash.send(batch.clone()).await;
        let _ = to_write.send(batch).await;
    }
    drop(to_write);
    drop(to_hash);
    let written = writer
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
    let (hashed, sha256, inspected) = hasher.await.map_err(|e| io(std::io::Error::other(e)))?;
    if written != received || hashed != received {
        return Err(io(std::io::Error::other(format!(
            "wrote {written} and hashed {hashed} of {received} bytes received"
        ))));
    }
    temp.persist(dest).map_err(|e| io(e.error))?;
    Ok(Downloaded {
        bytes: received,
        sha256,
        inspected,
    })
}

/// Received chunks (tens of KiB each) go to the threads in batches: handing over each chunk
/// alone cost two thread wake-ups per chunk, a large share of the time per byte.
type Batch = Vec<bytes::Bytes>;
const BATCH_BYTES: usize = 256 * 1024;
/// Batches in flight from the receiving task to each of the writing and the hashing thread.
const PIPELINE_BATCHES: usize = 4;

/// Writes every chunk that arrives, then makes the file durable. Returns the byte count.
fn write_all(
    mut inbox: tokio::sync::mpsc::Receiver<Batch>,
    file: std::fs::File,
) -> std::io::Result<u64> {
    use std::io::Write;
    // Chunks are written as they come, without a buffer: they are tens of KiB already, and
    // copying them into one first cost more than the extra system calls.
    let mut file = file;
    let mut written = 0u64;
    while let Some(batch) = inbox.blocking_recv() {
        for chunk in batch {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
    }
    file.sync_all()?;
    Ok(written)
}

/// Hashes every chunk that arrives and checks them as `inspection` says (the check may stop
/// early; the hash never does). Returns the byte count, the SHA-256 (hex) and the check.
fn hash_and_check(
    mut inbox: tokio::sync::mpsc::Receiver<Batch>,
    inspection: Inspection,
) -> (u64, String, Streamed) {
    let mut hasher = Sha256::new();
    let mut hashed = 0u64;
    let mut pending = Batch::new().into_iter();
    let mut next = || {
        let chunk = loop {
            match pending.next() {
                Some(chunk) => break chunk,
                None => pending = inbox.blocking_recv()?.into_iter(),
            }
        };
        hasher.update(&chunk);
        hashed += chunk.len() as u64;
        Some(chunk)
    };
    let inspected = if inspection.needed() {
        inspection.run(&mut next)
    } else {
        Streamed::Done(Ok(FileFacts::SKIPPED))
    };
    while next().is_some() {}
    (hashed, hex::encode(hasher.finalize()), inspected)
}
