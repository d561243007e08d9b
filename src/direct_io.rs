//! Files written and read around the page cache (`O_DIRECT`, on Linux), where copying every
//! byte into freshly allocated cache pages would cost more than the work on the bytes: a large
//! download, `billing.csv` of a large run, and the scratch files of [`crate::content::spill`].
//! In this VM that copy took more CPU than hashing the same bytes (`BENCHMARKS.md`).

/// Bytes per direct write: a multiple of every block size direct I/O may require.
const DIRECT_BLOCK: usize = 1024 * 1024;
const DIRECT_ALIGN: usize = 4096;

/// Writes one download to its file. A large file goes around the page cache (`O_DIRECT`, on
/// Linux): it is made durable with `fsync` before it counts anyway, so caching it only costs the
/// copy into freshly allocated cache pages, which in a VM took more CPU than hashing the bytes
/// (`BENCHMARKS.md`), and it pushes other data out of the cache. Direct writes go in aligned
/// 1 MiB blocks; the tail, small files and file systems that refuse direct I/O are written
/// through the cache, plainly: chunks are tens of KiB already, and copying them into a buffer
/// first cost more than the extra system calls.
pub(crate) struct FileWriter {
    file: std::fs::File,
    /// Present while writing directly.
    block: Option<AlignedBlock>,
    written: u64,
}

impl FileWriter {
    pub(crate) fn new(file: std::fs::File, direct: bool) -> Self {
        let block = direct_block(&file, direct);
        Self {
            file,
            block,
            written: 0,
        }
    }

    pub(crate) fn put(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.written += data.len() as u64;
        while !data.is_empty() {
            let Some(block) = &mut self.block else {
                return self.file.write_all(data);
            };
            data = block.fill(data);
            if block.is_full() {
                self.write_block()?;
            }
        }
        Ok(())
    }

    /// Writes the full block directly; if the file system turns that down after all, writes the
    /// rest of it, and everything after it, through the cache.
    fn write_block(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        let Some(block) = &mut self.block else {
            return Ok(());
        };
        let bytes = block.filled();
        let mut done = 0;
        while done < bytes.len() {
            match self.file.write(&bytes[done..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                    set_direct(&self.file, false);
                    self.file.write_all(&bytes[done..])?;
                    self.block = None;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        block.clear();
        Ok(())
    }

    /// Writes what is left through the cache and makes the file durable.
    pub(crate) fn finish(self) -> std::io::Result<u64> {
        self.finish_telling(|_| {})
    }

    /// [`Self::finish`], telling `all_in_file` the byte count once every byte is in the file,
    /// before the wait for the disk: a reader following the file need not wait for that.
    pub(crate) fn finish_telling(mut self, all_in_file: impl FnOnce(u64)) -> std::io::Result<u64> {
        self.write_tail()?;
        all_in_file(self.written);
        self.file.sync_all()?;
        Ok(self.written)
    }

    /// Writes what is left through the cache, for a scratch file that need not survive a crash.
    pub(crate) fn finish_unsynced(mut self) -> std::io::Result<u64> {
        self.write_tail()?;
        Ok(self.written)
    }

    /// Writes what is left through the cache and gives the file back, for a scratch file this
    /// process reads again.
    pub(crate) fn into_file(mut self) -> std::io::Result<std::fs::File> {
        self.write_tail()?;
        Ok(self.file)
    }

    fn write_tail(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(block) = self.block.take() {
            set_direct(&self.file, false);
            self.file.write_all(block.filled())?;
        }
        Ok(())
    }
}

impl std::io::Write for FileWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.put(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A [`DIRECT_BLOCK`]-byte buffer aligned to [`DIRECT_ALIGN`], as direct I/O requires, carved
/// out of a slightly larger allocation.
struct AlignedBlock {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBlock {
    /// None in the unlikely case that no aligned start can be found.
    fn new() -> Option<Self> {
        let storage = vec![0; DIRECT_BLOCK + DIRECT_ALIGN];
        let start = storage.as_ptr().align_offset(DIRECT_ALIGN);
        (start < DIRECT_ALIGN).then_some(Self {
            storage,
            start,
            len: 0,
        })
    }

    /// Copies as much of `data` as fits; returns the rest.
    fn fill<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let take = data.len().min(DIRECT_BLOCK - self.len);
        let at = self.start + self.len;
        self.storage[at..at + take].copy_from_slice(&data[..take]);
        self.len += take;
        &data[take..]
    }

    fn is_full(&self) -> bool {
        self.len == DIRECT_BLOCK
    }

    fn filled(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// The whole block, to read into.
    fn space(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + DIRECT_BLOCK]
    }
}

/// Reads a file around the page cache where it can (`O_DIRECT`, on Linux), for a scratch file
/// written that way and read once: reading it through the cache would copy every byte into
/// freshly allocated cache pages first. Whole aligned blocks are read; a file system that
/// refuses direct I/O is read plainly.
pub(crate) struct FileReader {
    file: std::fs::File,
    /// Present while reading directly.
    block: Option<AlignedBlock>,
    /// Bytes of the block handed out so far.
    at: usize,
}

impl FileReader {
    pub(crate) fn new(file: std::fs::File, direct: bool) -> Self {
        let block = direct_block(&file, direct);
        Self { file, block, at: 0 }
    }
}

impl std::io::Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(block) = &mut self.block else {
            return self.file.read(buf);
        };
        if self.at == block.len {
            let read = loop {
                match self.file.read(block.space()) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            match read {
                Ok(n) => {
                    block.len = n;
                    self.at = 0;
                }
                // Refused after all: the rest is read plainly, from where direct reads ended.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                    set_direct(&self.file, false);
                    self.block = None;
                    return self.file.read(buf);
                }
                Err(e) => return Err(e),
            }
        }
        let n = buf.len().min(block.len - self.at);
        buf[..n].copy_from_slice(&block.filled()[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads a file at any offset, around the page cache where it can: for a file that another
/// thread is still writing directly (a large download, [`crate::download`]), whose bytes are on
/// the disk and not in the cache. A direct read must start at an aligned offset and fill an
/// aligned buffer, so a read starts at the aligned offset below the one asked for, and hands
/// out only the bytes asked for.
pub(crate) struct BlockReader {
    file: std::fs::File,
    /// Present while reading directly.
    block: Option<AlignedBlock>,
    /// The buffer of plain reads, once direct reads are refused.
    plain: Vec<u8>,
}

impl BlockReader {
    pub(crate) fn new(file: std::fs::File, direct: bool) -> Self {
        let block = direct_block(&file, direct);
        Self {
            file,
            block,
            plain: Vec::new(),
        }
    }

    /// Up to `len` bytes (at most a block) from `offset` on: fewer where the file ends, or
    /// where a block read from the aligned offset below `offset` ends. What lies past
    /// `offset + len` is never handed out, so bytes being written there meanwhile cannot reach
    /// the caller.
    pub(crate) fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<&[u8]> {
        use std::io::{Read, Seek, SeekFrom};
        let len = len.min(DIRECT_BLOCK);
        let skip = (offset % DIRECT_ALIGN as u64) as usize;
        // Reads of whole aligned units, which may go past `offset + len`: those bytes are
        // read but not handed out.
        let want = ((skip + len).div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN).min(DIRECT_BLOCK);
        let direct = match &mut self.block {
            Some(block) => Some(
                self.file
                    .seek(SeekFrom::Start(offset - skip as u64))
                    .and_then(|_| read_full(&mut self.file, &mut block.space()[..want], true))
                    .map(|n| block.len = n),
            ),
            None => None,
        };
        match direct {
            Some(Ok(())) => {
                if let Some(block) = &self.block {
                    let end = block.len.min(skip + len.min(want - skip));
                    return Ok(&block.filled()[skip.min(end)..end]);
                }
            }
            // Refused after all: read plainly from now on.
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
                set_direct(&self.file, false);
                self.block = None;
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
        self.plain.resize(len, 0);
        self.file.seek(SeekFrom::Start(offset))?;
        let n = read_full(&mut self.file, &mut self.plain[..len], false)?;
        return Ok(&self.plain[..n]);

        /// Reads until `buf` is full or the file ends.
        fn read_full(
            file: &mut std::fs::File,
            buf: &mut [u8],
            direct: bool,
        ) -> std::io::Result<usize> {
            let mut n = 0;
            while n < buf.len() {
                match file.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(read) => {
                        n += read;
                        // A direct read comes short only where the file ends; reading on from
                        // an unaligned offset would be refused.
                        if direct && read % DIRECT_ALIGN != 0 {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(n)
        }
    }
}

/// The aligned block for direct I/O on `file`, with direct I/O turned on; `None` (and plain
/// I/O) when not `direct` or not possible. The block first: without one, direct I/O must not be
/// turned on.
fn direct_block(file: &std::fs::File, direct: bool) -> Option<AlignedBlock> {
    match direct {
        true => AlignedBlock::new().filter(|_| set_direct(file, true)),
        false => None,
    }
}

/// Turns direct I/O on or off for `file`; false where that is not possible (another OS, or a
/// file system without direct I/O, such as an older tmpfs).
#[cfg(target_os = "linux")]
fn set_direct(file: &std::fs::File, on: bool) -> bool {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let Ok(flags) = fcntl_getfl(file) else {
        return false;
    };
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    fcntl_setfl(file, flags).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn set_direct(_: &std::fs::File, _: bool) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::path::PathBuf;

    /// Whatever the chunk sizes, and whether the file system takes direct I/O or not, the file
    /// holds exactly the bytes written, in order.
    #[test]
    fn a_file_written_in_odd_chunks_holds_exactly_those_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        let expected: Vec<u8> = (0..3 * DIRECT_BLOCK + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = FileWriter::new(file, true);
        let mut rest = expected.as_slice();
        for size in [1, 4095, 65_536, DIRECT_BLOCK, 3, 777_777].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            writer.put(chunk).unwrap();
            rest = tail;
        }
        assert_eq!(writer.finish().unwrap(), expected.len() as u64);
        assert!(std::fs::read(&path).unwrap() == expected);
    }

    /// A file of two blocks and a partial one, each byte telling its place apart from its
    /// neighbours': `i * step % modulo`.
    fn patterned_file(step: usize, modulo: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let bytes: Vec<u8> = (0..2 * DIRECT_BLOCK + 777)
            .map(|i| (i * step % modulo) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    /// Read at any offset and length, directly or not, a file gives exactly the bytes there,
    /// and no more than asked for.
    #[test]
    fn a_file_read_at_any_offset_gives_exactly_the_bytes_there() {
        let (_dir, path, expected) = patterned_file(11, 241);
        for direct in [true, false] {
            let mut reader = BlockReader::new(std::fs::File::open(&path).unwrap(), direct);
            for (offset, len) in [
                (0, 10),
                (1, 4095),
                (4095, 2),
                (4096, DIRECT_BLOCK),
                (5000, DIRECT_BLOCK + 5),
                (DIRECT_BLOCK as u64 - 3, 9),
                (expected.len() as u64 - 5, 100),
                (expected.len() as u64, 100),
            ] {
                let start = offset as usize;
                let end = (start + len.min(DIRECT_BLOCK)).min(expected.len());
                let read = reader.read_at(offset, len).unwrap();
                // Short only where the file ends, or where the block read from the aligned
                // offset below ends.
                let least = (end - start).min(DIRECT_BLOCK - DIRECT_ALIGN);
                assert!(
                    read.len() >= least && read == &expected[start..start + read.len()],
                    "direct {direct}, offset {offset}, len {len}: {} bytes",
                    read.len()
                );
            }
        }
    }

    /// Read back directly, in reads of any size, a file gives exactly its bytes.
    #[test]
    fn a_file_read_around_the_cache_gives_exactly_its_bytes() {
        let (_dir, path, expected) = patterned_file(13, 253);
        for direct in [true, false] {
            let mut reader = FileReader::new(std::fs::File::open(&path).unwrap(), direct);
            let mut read = Vec::new();
            let mut buf = vec![0u8; 100_003];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                read.extend_from_slice(&buf[..n]);
            }
            assert!(read == expected, "direct: {direct}");
        }
    }
}
