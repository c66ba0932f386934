//! Inputs: files, shell-style globs, directories and stdin, opened with gzip or
//! zstd decompression detected from their first bytes, and identified by their
//! first kilobyte of content, so renames and rotation are recognised.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The leading bytes of content that identify a source.
pub const FINGERPRINT_BYTES: usize = 1024;

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
    /// What identifies the source; None when it has no complete line yet.
    pub identity: Option<Identity>,
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
                    let identity = Identity::read(&mut file, false)?;
                    file.seek(SeekFrom::Start(0))?;
                    return Ok(Opened {
                        compression: Compression::None,
                        identity,
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
        let identity = Identity::read(&mut Cursor::new(&head), true)?;
        Ok(Opened {
            compression,
            identity,
            ends_complete: true,
            stream: Stream::Sequential {
                reader: Box::new(Cursor::new(head).chain(decoded)),
                position: 0,
            },
        })
    }

    /// Checks that a plain file still holds what the ledger says was committed from it:
    /// at least `end` bytes, the last of them a newline. (Other streams are checked while
    /// skipping to `end`.)
    pub fn check_committed_end(&self, end: u64) -> Result<(), String> {
        let Stream::Plain { file, .. } = &self.stream else {
            return Ok(());
        };
        if end == 0 {
            return Ok(());
        }
        let length = file.metadata().map_err(|e| e.to_string())?.len();
        if length < end {
            return Err(format!("it has {length} bytes, {end} were committed"));
        }
        let mut last = [0u8; 1];
        std::os::unix::fs::FileExt::read_exact_at(file, &mut last, end - 1)
            .map_err(|e| e.to_string())?;
        if last[0] != b'\n' {
            return Err(format!("byte {end} is not the end of a line"));
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

/// A source's identity: SHA-256 of its first FINGERPRINT_BYTES of content, or of all its
/// complete lines while it is shorter than that. A short file that grows is found again
/// through the hashes of its shorter prefixes (one per line end), so the ledger matches
/// it to the key it was first loaded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// (length, SHA-256) of each prefix ending at a line end within the first
    /// FINGERPRINT_BYTES, and of the whole FINGERPRINT_BYTES; shortest first.
    pub prefixes: Vec<(u32, [u8; 32])>,
}

impl Identity {
    fn read(reader: &mut impl Read, ends_complete: bool) -> io::Result<Option<Identity>> {
        let mut head = vec![0u8; FINGERPRINT_BYTES];
        let n = read_up_to(reader, &mut head)?;
        let head = &head[..n];
        let mut ends: Vec<usize> = memchr::memchr_iter(b'\n', head).map(|i| i + 1).collect();
        if (n == FINGERPRINT_BYTES || (ends_complete && n > 0)) && ends.last() != Some(&n) {
            ends.push(n);
        }
        if ends.is_empty() {
            return Ok(None);
        }
        let prefixes = ends
            .into_iter()
            .map(|end| (end as u32, Sha256::digest(&head[..end]).into()))
            .collect();
        Ok(Some(Identity { prefixes }))
    }

    /// The key a source is recorded under the first time it is loaded: its longest prefix.
    pub fn own_key(&self) -> (u32, [u8; 32]) {
        *self
            .prefixes
            .last()
            .expect("an identity has at least one prefix")
    }

    /// All sources that share a first line take turns on one lock, so loaders racing on
    /// the same file agree on whether it is new before either records it.
    pub fn claim_lock(&self) -> i32 {
        let (_, first_line) = self.prefixes[0];
        i32::from_be_bytes([first_line[0], first_line[1], first_line[2], first_line[3]])
    }
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

    fn identity_of(bytes: &[u8]) -> Option<Identity> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        Opened::open(&Input::File(path), Arc::default())
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
        assert_eq!(small.claim_lock(), grown.claim_lock());
        let other = identity_of(b"{\"a\":1}\n{\"x\":9}\n").unwrap();
        assert!(
            !other.prefixes.contains(&small.own_key()),
            "same first line, different file"
        );
        assert_eq!(other.claim_lock(), small.claim_lock());
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
            let mut opened = Opened::open(&Input::File(path), Arc::default()).unwrap();
            assert_eq!(opened.compression, compression);
            assert_eq!(opened.identity, identity_of(plain));
            let mut content = Vec::new();
            opened.read_to_end(&mut content).unwrap();
            assert_eq!(content, plain);
        }
    }
}
