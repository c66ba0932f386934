//! Opening a source: gzip or zstd detected from its first bytes, its identity read,
//! and a stream that can resume at a committed offset. A source that is not a regular
//! file (stdin, a FIFO) may go quiet: its reads wait for data in short polls that give
//! way to the stop flag, so a signal is never stuck behind a writer that sends nothing.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::identity::{FINGERPRINT_BYTES, FileGuard, Identity, read_up_to};
use super::inputs::Input;
use crate::Invalid;

/// How a source's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// An opened source, positioned at its first decompressed byte.
pub struct Opened {
    /// What identifies the source; None when it has no complete line yet.
    pub identity: Option<Identity>,
    /// For a plain file with an identity: whether it still is that file.
    pub guard: Option<Arc<FileGuard>>,
    /// Whether the end of the stream is the end of the data (stdin, compressed files),
    /// so a last line without a newline is complete; a plain file may still be written to.
    pub ends_complete: bool,
    /// Whether its reads wait on a source that may go quiet (not a regular file) and
    /// fail once the load is stopping. Such a source cannot give its bytes again, so it
    /// is read up to that failure: what it gave before the stop is all loaded.
    pub gives_way_to_stop: bool,
    stream: Stream,
}

enum Stream {
    /// A plain file: resuming seeks.
    Plain {
        file: File,
        disk_bytes: Arc<AtomicU64>,
    },
    /// Anything else: resuming reads and discards.
    Sequential {
        reader: Box<dyn Read + Send>,
        position: u64,
    },
}

/// Counts bytes read from disk (before decompression) for the progress bar.
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How long one wait for data from a quiet source lasts before the stop flag is looked
/// at again.
const POLL_MILLISECONDS: libc::c_int = 100;

/// A source that may go quiet (a pipe, a FIFO, a terminal): each read first waits for
/// data in polls of POLL_MILLISECONDS, and fails once the load is stopping.
struct Interruptible {
    file: File,
    stop: Arc<AtomicBool>,
}

impl Read for Interruptible {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(io::Error::other("the load is stopping"));
            }
            let mut wanted = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one pollfd that lives through the call.
            let ready = unsafe { libc::poll(&mut wanted, 1, POLL_MILLISECONDS) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if ready == 0 {
                continue;
            }
            match self.file.read(buf) {
                // Another reader of the same pipe took the data first.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }
}

impl Opened {
    /// Opens a source. Stdin and files that are not regular ones (FIFOs, devices) are
    /// read once, as streams whose reads give way to `stop`; when one does, the error
    /// it returns means only that the load is stopping.
    pub fn open(
        input: &Input,
        disk_bytes: Arc<AtomicU64>,
        stop: &Arc<AtomicBool>,
    ) -> io::Result<Opened> {
        let mut file = match input {
            // O_NONBLOCK: opening a FIFO does not wait for a writer; a regular file's
            // reads do not change.
            Input::File(path) => File::options()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)?,
            // Read through a file of its own, without std's buffer, which a poll of the
            // descriptor would not see.
            Input::Stdin => File::from(io::stdin().as_fd().try_clone_to_owned()?),
        };
        let regular = file.metadata()?.is_file();
        if regular && matches!(input, Input::File(_)) {
            let mut magic = [0u8; 4];
            let n = read_up_to(&mut file, &mut magic)?;
            file.seek(SeekFrom::Start(0))?;
            if Compression::detect(&magic[..n]) == Compression::None {
                let lead = if n > 0 && magic[0] == 0 {
                    leading_nuls(&mut file)?
                } else {
                    0
                };
                file.seek(SeekFrom::Start(lead))?;
                let identity = Identity::read(&mut file, false, lead)?;
                let guard = match &identity {
                    Some(identity) => Some(Arc::new(FileGuard::new(file.try_clone()?, identity))),
                    None => None,
                };
                file.seek(SeekFrom::Start(0))?;
                return Ok(Opened {
                    identity,
                    guard,
                    ends_complete: false,
                    gives_way_to_stop: false,
                    stream: Stream::Plain { file, disk_bytes },
                });
            }
        }
        let raw: Box<dyn Read + Send> = if regular {
            Box::new(file)
        } else {
            Box::new(Interruptible {
                file,
                stop: stop.clone(),
            })
        };
        let raw = Counting {
            inner: raw,
            counter: disk_bytes,
        };
        let mut raw = io::BufReader::with_capacity(256 * 1024, raw);
        let compression = Compression::detect(io::BufRead::fill_buf(&mut raw)?);
        let mut decoded: Box<dyn Read + Send> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
            Compression::None => Box::new(raw),
        };
        let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
        // A stop while the head arrives keeps what came: its complete lines identify
        // the source (a partial last line does not) and are loaded.
        let complete = match decoded
            .by_ref()
            .take(FINGERPRINT_BYTES as u64)
            .read_to_end(&mut head)
        {
            Ok(_) => true,
            Err(_) if stop.load(Ordering::Relaxed) => false,
            Err(error) => return Err(error),
        };
        let identity = Identity::read(&mut Cursor::new(&head), complete, 0)?;
        Ok(Opened {
            identity,
            guard: None,
            ends_complete: true,
            gives_way_to_stop: !regular,
            stream: Stream::Sequential {
                reader: Box::new(Cursor::new(head).chain(decoded)),
                position: 0,
            },
        })
    }

    /// Checks that a plain file still holds what the ledger says was committed from it:
    /// at least `end` bytes, the last of them a newline (or the end of its leading run of
    /// NULs, `lead`). Other streams are checked while skipping to `end`.
    pub fn check_committed_end(&self, end: u64, lead: u64) -> Result<(), Invalid> {
        let Stream::Plain { file, .. } = &self.stream else {
            return Ok(());
        };
        if end == 0 {
            return Ok(());
        }
        let unreadable = |e: io::Error| Invalid(e.to_string());
        let length = file.metadata().map_err(unreadable)?.len();
        if length < end {
            return Err(Invalid(format!(
                "it has {length} bytes, {end} were committed"
            )));
        }
        if end == lead {
            return Ok(());
        }
        let mut last = [0u8; 1];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut last, end - 1).map_err(unreadable)?;
        if last[0] != b'\n' {
            return Err(Invalid(format!("byte {end} is not the end of a line")));
        }
        Ok(())
    }

    /// Moves forwards to a decompressed offset: plain files seek (the skipped bytes
    /// still count as progress), other streams read and discard.
    pub fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain { file, disk_bytes } => {
                let before = file.stream_position()?;
                file.seek(SeekFrom::Start(offset))?;
                disk_bytes.fetch_add(offset.saturating_sub(before), Ordering::Relaxed);
                Ok(())
            }
            Stream::Sequential { reader, position } => {
                if offset < *position {
                    return Err(io::Error::other("cannot go back in a sequential stream"));
                }
                let skipped = io::copy(
                    &mut reader.by_ref().take(offset - *position),
                    &mut io::sink(),
                )?;
                *position += skipped;
                if *position < offset {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the data ends at byte {position}, before the committed offset {offset}"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The length of the run of NUL bytes a plain file starts with. Holes are skipped with
/// SEEK_DATA where the file system knows them; what is left is read.
fn leading_nuls(file: &mut File) -> io::Result<u64> {
    // SAFETY: lseek on a descriptor this File owns; it only moves the file position.
    let data = unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_DATA) };
    // -1 with ENXIO: no data at all after the start, a file of nothing but hole.
    let mut position = if data < 0 {
        file.metadata()?.len()
    } else {
        data as u64
    };
    file.seek(SeekFrom::Start(position))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(position);
        }
        if let Some(first) = buf[..n].iter().position(|&byte| byte != 0) {
            return Ok(position + first as u64);
        }
        position += n as u64;
    }
}

impl Read for Opened {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Plain { file, disk_bytes } => {
                let n = file.read(buf)?;
                disk_bytes.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Stream::Sequential { reader, position } => {
                let n = reader.read(buf)?;
                *position += n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn identity_of(bytes: &[u8]) -> Option<Identity> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        Opened::open(&Input::File(path), Arc::default(), &Arc::default())
            .unwrap()
            .identity
    }

    #[test]
    fn a_growing_file_keeps_the_prefix_it_was_first_seen_with() {
        assert_eq!(identity_of(b""), None);
        assert_eq!(identity_of(b"{\"partial"), None);
        let small = identity_of(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        assert_eq!(small.prefixes.len(), 2);
        let grown = identity_of(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\"").unwrap();
        assert!(grown.prefixes.contains(&small.own_key()));
        assert_eq!(small.first_line(), grown.first_line());
        let other = identity_of(b"{\"a\":1}\n{\"x\":9}\n").unwrap();
        assert!(
            !other.prefixes.contains(&small.own_key()),
            "same first line, different file"
        );
        assert_eq!(other.first_line(), small.first_line());
        let mut long = Vec::new();
        for i in 0..200 {
            long.extend_from_slice(format!("{{\"n\":{i}}}\n").as_bytes());
        }
        let long_id = identity_of(&long).unwrap();
        assert_eq!(long_id.own_key().0 as usize, FINGERPRINT_BYTES);
        long.extend_from_slice(b"{\"more\":1}\n");
        assert_eq!(identity_of(&long).unwrap().own_key(), long_id.own_key());
    }

    #[test]
    fn compressed_content_is_detected_and_identified_like_plain() {
        let plain = b"{\"a\":1}\n{\"b\":2}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes, compression) in [
            ("a.log", gz.clone(), Compression::Gzip),
            ("b.ndjson", zst, Compression::Zstd),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let mut opened =
                Opened::open(&Input::File(path), Arc::default(), &Arc::default()).unwrap();
            assert_eq!(Compression::detect(&bytes), compression);
            assert_eq!(opened.identity, identity_of(plain));
            let mut content = Vec::new();
            opened.read_to_end(&mut content).unwrap();
            assert_eq!(content, plain);
        }
    }
}
