//! A large download's check follows the file when it cannot keep up with the transfer.
//!
//! Writing and hashing keep pace with the network; reading rows is slower (on 2 cores beside a
//! local server, the check took the transfer from ~900 to ~300 MiB/s: `BENCHMARKS.md`, the
//! `stream` case). A check fed from the transfer would hold the connection open at the
//! check's pace — longer on the server, nearer its timeouts — or hold the bytes in memory. So
//! the check takes chunks from the transfer while it keeps up, and once its queue is full the
//! transfer stops feeding it: the check reads the rest from the file, up to what the writer has
//! put there, and the report is done when the check is. The bytes read back are the ones
//! written, which are the ones hashed.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::direct_io::BlockReader;

/// How far the writer of a download has got, for a check reading the file behind it.
#[derive(Debug, Default)]
pub(super) struct Progress {
    extent: Mutex<Extent>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct Extent {
    /// Bytes in the file, from its start; a reader gets exactly these there.
    in_file: u64,
    /// Every byte of the download is in the file.
    complete: bool,
    /// The download ended without its file (an error, a retry): nobody wants the check.
    abandoned: bool,
}

impl Progress {
    fn update(&self, change: impl FnOnce(&mut Extent)) {
        let mut extent = self.extent.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut extent);
        self.changed.notify_all();
    }

    /// `in_file` bytes are in the file.
    pub(super) fn wrote(&self, in_file: u64) {
        self.update(|extent| extent.in_file = in_file);
    }

    /// All `total` bytes of the download are in the file.
    pub(super) fn complete(&self, total: u64) {
        self.update(|extent| {
            extent.in_file = total;
            extent.complete = true;
        });
    }

    pub(super) fn abandon(&self) {
        self.update(|extent| extent.abandoned = true);
    }

    /// Waits until the file holds more than `at` bytes, or will not: the bytes it holds then.
    fn past(&self, at: u64) -> io::Result<u64> {
        let extent = self.extent.lock().unwrap_or_else(PoisonError::into_inner);
        let extent = self
            .changed
            .wait_while(extent, |e| e.in_file <= at && !e.complete && !e.abandoned)
            .unwrap_or_else(PoisonError::into_inner);
        if extent.abandoned {
            return Err(io::Error::other("the download was abandoned"));
        }
        Ok(extent.in_file)
    }
}

/// Tells the check the download is abandoned when dropped before [`Self::disarm`]: a writer
/// that stops on an error must not leave the check waiting for bytes.
pub(super) struct AbandonOnDrop(pub(super) Option<Arc<Progress>>);

impl AbandonOnDrop {
    pub(super) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if let Some(progress) = self.0.take() {
            progress.abandon();
        }
    }
}

/// The receiving task's side of the check's queue: it stopped feeding the check (queue full).
#[derive(Debug, Default)]
pub(super) struct Behind(AtomicBool);

impl Behind {
    pub(super) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The bytes of a download as the check reads them: the chunks of its queue, then, if the
/// transfer stopped feeding it, the rest of the file as the writer puts it there.
pub(super) struct Following {
    queue: super::Chunks,
    current: bytes::Bytes,
    /// Bytes handed out so far: from the queue, then from the file.
    at: u64,
    behind: Arc<Behind>,
    progress: Arc<Progress>,
    /// Another handle on the download's file, opened before the first byte (so it is the file
    /// the writer writes, whatever happens to its name), read once the queue ends early.
    file: Option<std::fs::File>,
    reader: Option<BlockReader>,
    queue_ended: bool,
}

impl Following {
    pub(super) fn new(
        queue: super::Chunks,
        behind: Arc<Behind>,
        progress: Arc<Progress>,
        file: Option<std::fs::File>,
    ) -> Self {
        Self {
            queue,
            current: bytes::Bytes::new(),
            at: 0,
            behind,
            progress,
            file,
            reader: None,
            queue_ended: false,
        }
    }

    fn read_file(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.is_none() {
            let file = self.file.take().ok_or_else(|| {
                io::Error::other("the download's file cannot be read back for its check")
            })?;
            self.reader = Some(BlockReader::new(file, true));
        }
        let in_file = self.progress.past(self.at)?;
        let available = usize::try_from(in_file.saturating_sub(self.at)).unwrap_or(usize::MAX);
        let Some(reader) = self.reader.as_mut().filter(|_| available > 0) else {
            // The whole file has been read.
            return Ok(0);
        };
        let bytes = reader.read_at(self.at, buf.len().min(available))?;
        if bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the download's file ends at byte {} of the {in_file} written",
                    self.at
                ),
            ));
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len() as u64;
        Ok(bytes.len())
    }
}

impl Read for Following {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.queue_ended && self.current.is_empty() {
            match self.queue.next() {
                Some(chunk) => self.current = chunk,
                None => self.queue_ended = true,
            }
        }
        if !self.current.is_empty() {
            let n = buf.len().min(self.current.len());
            buf[..n].copy_from_slice(&self.current.split_to(n));
            self.at += n as u64;
            return Ok(n);
        }
        if !self.behind.get() {
            return Ok(0);
        }
        self.read_file(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queue, then file: the bytes come out whole and in order, whatever the writer's pace,
    /// and a file shorter than the writer said is an error naming where it ends, never a
    /// quiet end of the check.
    #[test]
    fn the_queue_then_the_file_give_every_byte_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (from_queue, from_file) = body.split_at(700_001);
        let file = std::fs::File::create(&path).unwrap();
        let read_back = std::fs::File::open(&path).unwrap();
        let (sender, inbox) = tokio::sync::mpsc::channel(4);
        sender
            .try_send(vec![bytes::Bytes::copy_from_slice(from_queue)])
            .unwrap();
        drop(sender);
        let behind = Arc::new(Behind::default());
        behind.set();
        let progress = Arc::new(Progress::default());
        let writer = {
            let progress = Arc::clone(&progress);
            let body = body.clone();
            std::thread::spawn(move || {
                let mut out = crate::direct_io::FileWriter::new(file, true);
                for piece in body.chunks(333_333) {
                    out.put(piece).unwrap();
                    progress.wrote(out.in_file());
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                out.finish_telling(|all| progress.complete(all)).unwrap();
            })
        };
        let queue = crate::download::Chunks {
            inbox,
            pending: Vec::new().into_iter(),
        };
        let mut following = Following::new(queue, behind, Arc::clone(&progress), Some(read_back));
        let mut read = Vec::new();
        following.read_to_end(&mut read).unwrap();
        writer.join().unwrap();
        assert_eq!(read.len(), body.len());
        assert!(read == body);
        assert_eq!(&read[..from_queue.len()], from_queue);
        assert_eq!(from_file.len(), body.len() - from_queue.len());

        // The writer says more is there than the file holds.
        let short = dir.path().join("short");
        std::fs::write(&short, &body[..1000]).unwrap();
        let (sender, inbox) = tokio::sync::mpsc::channel(1);
        drop(sender);
        let behind = Arc::new(Behind::default());
        behind.set();
        let progress = Arc::new(Progress::default());
        progress.complete(5000);
        let queue = crate::download::Chunks {
            inbox,
            pending: Vec::new().into_iter(),
        };
        let mut following = Following::new(
            queue,
            behind,
            progress,
            Some(std::fs::File::open(&short).unwrap()),
        );
        let error = following.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(
            error.to_string().contains("ends at byte 1000 of the 5000"),
            "{error}"
        );
    }
}
