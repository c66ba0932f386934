//! Inputs: files, shell-style globs, directories and stdin, opened with gzip or
//! zstd decompression detected from their first bytes, and identified by a
//! fingerprint of their first line so renames and rotation are recognised.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Bytes of the first line that identify a source (a longer first line is cut here).
pub const FINGERPRINT_BYTES: usize = 4096;

/// One input to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    pub fn display_name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }

    /// Size on disk, for the progress bar.
    pub fn size_on_disk(&self) -> Option<u64> {
        match self {
            Input::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::Stdin => None,
        }
    }
}

/// Errors while finding inputs, each naming the argument at fault.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("no such file or directory: {0}")]
    Missing(String),
    #[error("pattern `{0}` matches no files")]
    NoMatch(String),
    #[error("bad pattern `{pattern}`: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("cannot read directory {path}: {reason}")]
    Directory { path: String, reason: String },
}

/// Expands the command-line arguments: `-` is stdin, a directory contributes its
/// files (not hidden ones, recursively, in name order), anything with `*?[` is a glob.
pub fn expand(arguments: &[String]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for argument in arguments {
        if argument == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let path = Path::new(argument);
        if path.exists() {
            add_path(path, &mut inputs)?;
            continue;
        }
        if !argument.contains(['*', '?', '[']) {
            return Err(InputError::Missing(argument.clone()));
        }
        let matches = glob::glob(argument).map_err(|e| InputError::BadPattern {
            pattern: argument.clone(),
            reason: e.to_string(),
        })?;
        let mut matched: Vec<PathBuf> = matches.flatten().collect();
        if matched.is_empty() {
            return Err(InputError::NoMatch(argument.clone()));
        }
        matched.sort();
        for path in matched {
            add_path(&path, &mut inputs)?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    inputs.retain(|input| match input {
        Input::File(path) => seen.insert(path.canonicalize().unwrap_or_else(|_| path.clone())),
        Input::Stdin => true,
    });
    Ok(inputs)
}

fn add_path(path: &Path, inputs: &mut Vec<Input>) -> Result<(), InputError> {
    if !path.is_dir() {
        inputs.push(Input::File(path.to_path_buf()));
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|e| InputError::Directory {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut children: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|child| {
            !child
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        })
        .collect();
    children.sort();
    for child in children {
        add_path(&child, inputs)?;
    }
    Ok(())
}

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
    pub compression: Compression,
    /// The first line's fingerprint; None when there is no complete line yet.
    pub fingerprint: Option<[u8; 32]>,
    /// Whether the end of the stream is the end of the data (stdin, compressed files),
    /// so a last line without a newline is complete; a plain file may still be written to.
    pub ends_complete: bool,
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

impl Opened {
    pub fn open(input: &Input, disk_bytes: Arc<AtomicU64>) -> io::Result<Opened> {
        let raw: Box<dyn Read + Send> = match input {
            Input::File(path) => {
                let mut file = File::open(path)?;
                let mut magic = [0u8; 4];
                let n = read_up_to(&mut file, &mut magic)?;
                file.seek(SeekFrom::Start(0))?;
                if Compression::detect(&magic[..n]) == Compression::None {
                    let fingerprint = fingerprint(&mut file, false)?;
                    file.seek(SeekFrom::Start(0))?;
                    return Ok(Opened {
                        compression: Compression::None,
                        fingerprint,
                        ends_complete: false,
                        stream: Stream::Plain { file, disk_bytes },
                    });
                }
                Box::new(Counting {
                    inner: file,
                    counter: disk_bytes,
                })
            }
            Input::Stdin => Box::new(Counting {
                inner: io::stdin(),
                counter: disk_bytes,
            }),
        };
        let mut raw = io::BufReader::with_capacity(256 * 1024, raw);
        let compression = Compression::detect(io::BufRead::fill_buf(&mut raw)?);
        let mut decoded: Box<dyn Read + Send> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
            Compression::None => Box::new(raw),
        };
        let mut head = vec![0u8; FINGERPRINT_BYTES];
        let n = read_up_to(&mut decoded, &mut head)?;
        head.truncate(n);
        let fingerprint = fingerprint(&mut Cursor::new(&head), true)?;
        Ok(Opened {
            compression,
            fingerprint,
            ends_complete: true,
            stream: Stream::Sequential {
                reader: Box::new(Cursor::new(head).chain(decoded)),
                position: 0,
            },
        })
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

/// SHA-256 of the first line including its newline (at most FINGERPRINT_BYTES).
/// A first line still being written has no fingerprint yet, unless the stream is complete.
fn fingerprint(reader: &mut impl Read, ends_complete: bool) -> io::Result<Option<[u8; 32]>> {
    let mut head = vec![0u8; FINGERPRINT_BYTES];
    let n = read_up_to(reader, &mut head)?;
    let head = &head[..n];
    let identifying = match memchr::memchr(b'\n', head) {
        Some(newline) => &head[..=newline],
        None if n == FINGERPRINT_BYTES || (ends_complete && n > 0) => head,
        None => return Ok(None),
    };
    Ok(Some(Sha256::digest(identifying).into()))
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fingerprint_of(bytes: &[u8]) -> Option<[u8; 32]> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        Opened::open(&Input::File(path), Arc::default())
            .unwrap()
            .fingerprint
    }

    #[test]
    fn the_first_line_identifies_a_file_as_it_grows() {
        assert_eq!(fingerprint_of(b""), None);
        assert_eq!(fingerprint_of(b"{\"partial"), None);
        let one = fingerprint_of(b"{\"a\":1}\n");
        assert!(one.is_some());
        assert_eq!(one, fingerprint_of(b"{\"a\":1}\n{\"b\":2}\n{\"c\""));
        assert_ne!(one, fingerprint_of(b"{\"a\":2}\n"));
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
            let mut opened = Opened::open(&Input::File(path), Arc::default()).unwrap();
            assert_eq!(opened.compression, compression);
            assert_eq!(opened.fingerprint, fingerprint_of(plain));
            let mut content = Vec::new();
            opened.read_to_end(&mut content).unwrap();
            assert_eq!(content, plain);
        }
    }
}
