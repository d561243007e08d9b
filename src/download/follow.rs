//! A large download's check waits for the transfer when it cannot keep up with it.
//!
//! Writing and hashing keep pace with the network; reading rows is slower (on 2 cores beside a
//! local server, the check took the transfer from ~900 to ~300 MiB/s: `BENCHMARKS.md`, the
//! `stream` case). A check fed from the transfer would hold the connection open at the
//! check's pace — longer on the server, nearer its timeouts — or hold the bytes in memory. So
//! the check takes chunks from the transfer while it keeps up, and once its queue is full the
//! transfer stops feeding it. The check then waits for the whole file to be written and reads
//! the rest from it; the report is done when the check is. Reading the file while it was still
//! being written took processor time and disk bandwidth from the transfer (0.73–0.99× against
//! 1.09–1.27× `curl | openssl` in the same runs), and finished the check no sooner: the rows
//! left after the transfer are the check's work either way. The bytes read back are the ones
//! written, which are the ones hashed.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::direct_io::BlockReader;

/// Whether the writer of a download has put every byte in the file, for a check that reads it.
#[derive(Debug, Default)]
pub(super) struct Progress {
    state: Mutex<Written>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
enum Written {
    #[default]
    Writing,
    /// All of the download's bytes are in the file.
    Complete(u64),
    /// The download ended without its file (an error, a retry): nobody wants the check.
    Abandoned,
}

impl Progress {
    fn set(&self, written: Written) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Abandoned is final: the writer of an abandoned download may still finish its part
        // (its inbox closed as the download was dropped), a file nobody keeps.
        if !matches!(*state, Written::Abandoned) {
            *state = written;
        }
        self.changed.notify_all();
    }

    /// All `total` bytes of the download are in the file.
    pub(super) fn complete(&self, total: u64) {
        self.set(Written::Complete(total));
    }

    pub(super) fn abandon(&self) {
        self.set(Written::Abandoned);
    }

    fn abandoned(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(*state, Written::Abandoned)
    }

    /// Waits until the whole download is in the file: its byte count.
    fn whole(&self) -> io::Result<u64> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = self
            .changed
            .wait_while(state, |state| matches!(state, Written::Writing))
            .unwrap_or_else(PoisonError::into_inner);
        match *state {
            Written::Complete(total) => Ok(total),
            _ => Err(io::Error::other("the download was abandoned")),
        }
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
/// transfer stopped feeding it, the rest of the file once the writer has put all of it there.
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
    /// The file's reader and its length, once the whole download is in it.
    reader: Option<(BlockReader, u64)>,
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
            let in_file = self.progress.whole()?;
            self.reader = Some((BlockReader::new(file, true), in_file));
        }
        // A download cancelled or failed after its file was complete: reading on (gigabytes,
        // on a thread nobody joins) would check a file nobody keeps.
        if self.progress.abandoned() {
            return Err(io::Error::other("the download was abandoned"));
        }
        let Some((reader, in_file)) = self.reader.as_mut() else {
            return Ok(0);
        };
        let in_file = *in_file;
        let available = usize::try_from(in_file.saturating_sub(self.at)).unwrap_or(usize::MAX);
        if available == 0 {
            // The whole file has been read.
            return Ok(0);
        }
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

    /// A check whose queue held `queued` (if any) when the transfer stopped feeding it, reading
    /// `file` after that; and the download's progress, to drive.
    fn check_behind(queued: Option<&[u8]>, file: std::fs::File) -> (Following, Arc<Progress>) {
        let (sender, inbox) = tokio::sync::mpsc::channel(1);
        if let Some(queued) = queued {
            sender
                .try_send(vec![bytes::Bytes::copy_from_slice(queued)])
                .unwrap();
        }
        drop(sender);
        let behind = Arc::new(Behind::default());
        behind.set();
        let progress = Arc::new(Progress::default());
        let queue = crate::download::Chunks {
            inbox,
            pending: Vec::new().into_iter(),
        };
        let following = Following::new(queue, behind, Arc::clone(&progress), Some(file));
        (following, progress)
    }

    /// Queue, then file: the bytes come out whole and in order; nothing is read from the file
    /// before the writer has put every byte there, and a file shorter than the writer said is
    /// an error naming where it ends, never a quiet end of the check.
    #[test]
    fn the_queue_then_the_whole_file_give_every_byte_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (from_queue, from_file) = body.split_at(700_001);
        let file = std::fs::File::create(&path).unwrap();
        let read_back = std::fs::File::open(&path).unwrap();
        let (mut following, progress) = check_behind(Some(from_queue), read_back);
        let (read_tx, read_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = following.read(&mut buf).unwrap();
                read_tx.send(buf[..n].to_vec()).unwrap();
                if n == 0 {
                    break;
                }
            }
        });
        let mut out = crate::direct_io::FileWriter::new(file, true);
        for piece in body.chunks(333_333) {
            out.put(piece).unwrap();
        }
        // Every byte but the direct block's tail is in the file, and the queue is read: the
        // check waits rather than read a file still being written.
        let mut read = Vec::new();
        while read.len() < from_queue.len() {
            read.extend(read_rx.recv().unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(read.len(), from_queue.len());
        assert!(read_rx.try_recv().is_err(), "read from the file too early");
        out.finish_telling(|all| progress.complete(all)).unwrap();
        for piece in read_rx {
            read.extend(piece);
        }
        reader.join().unwrap();
        assert_eq!(read.len(), body.len());
        assert!(read == body);
        assert_eq!(from_file.len(), body.len() - from_queue.len());

        // An abandoned download ends the wait with an error.
        let (mut following, progress) = check_behind(None, std::fs::File::open(&path).unwrap());
        let waiting = std::thread::spawn(move || following.read_to_end(&mut Vec::new()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        progress.abandon();
        let error = waiting.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("abandoned"), "{error}");

        // The writer says more is there than the file holds.
        let short = dir.path().join("short");
        std::fs::write(&short, &body[..1000]).unwrap();
        let (mut following, progress) = check_behind(None, std::fs::File::open(&short).unwrap());
        progress.complete(5000);
        let error = following.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(
            error.to_string().contains("ends at byte 1000 of the 5000"),
            "{error}"
        );
    }

    /// Attack: the download is abandoned (cancelled, or its file failed to be made durable)
    /// after the writer said the file was whole, while the check reads it: the check stops at
    /// its next read rather than read on to the end of a file nobody keeps.
    #[test]
    fn a_check_reading_the_file_stops_once_the_download_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 3 << 20]).unwrap();
        let (mut following, progress) = check_behind(None, std::fs::File::open(&path).unwrap());
        progress.complete(3 << 20);
        let mut buf = vec![0; 64 * 1024];
        assert_eq!(following.read(&mut buf).unwrap(), buf.len());
        progress.abandon();
        let error = following.read(&mut buf).unwrap_err();
        assert!(error.to_string().contains("abandoned"), "{error}");
    }
}
