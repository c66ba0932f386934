//! A source's identity: hashes of its first kilobyte of content, so a file renamed or
//! compressed by logrotate is recognised, and a new file under an old name is new.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The leading bytes of content that identify a source.
pub const FINGERPRINT_BYTES: usize = 1024;

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
    pub(super) fn read(
        reader: &mut impl Read,
        ends_complete: bool,
    ) -> io::Result<Option<Identity>> {
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

    /// The hash of the first line: sources that share it may be the same file.
    pub fn first_line(&self) -> &[u8; 32] {
        &self.prefixes[0].1
    }
}

pub(super) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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
