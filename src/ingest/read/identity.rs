//! A source's identity: hashes of its first kilobyte of content, so a file renamed or
//! compressed by logrotate is recognised, and a new file under an old name is new; and
//! the guard that tells, before a batch commits, whether a plain file still is the file
//! its bytes were read from.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use crate::Invalid;

/// The leading bytes of content that identify a source.
pub const FINGERPRINT_BYTES: usize = 1024;

/// A source's identity: SHA-256 of its first FINGERPRINT_BYTES of content, or of all its
/// complete lines while it is shorter than that. A short file that grows is found again
/// through the hashes of its shorter prefixes (one per line end), so the ledger matches
/// it to the key it was first loaded under.
///
/// A file that starts with a run of NUL bytes (the hole a writer without O_APPEND leaves
/// at the start of a file that logrotate's copytruncate emptied) is identified by the
/// run's length and the content after it: every generation of such a file starts with
/// the same kilobyte of NULs, but each one's hole ends somewhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The length of the leading run of NUL bytes; the prefixes start after it.
    pub lead: u64,
    /// (length, SHA-256) of each prefix ending at a line end within the first
    /// FINGERPRINT_BYTES, and of the whole FINGERPRINT_BYTES; shortest first.
    pub prefixes: Vec<(u32, [u8; 32])>,
}

impl Identity {
    /// Reads the identity of content that starts `lead` NUL bytes before `reader`'s position.
    pub(super) fn read(
        reader: &mut impl Read,
        ends_complete: bool,
        lead: u64,
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
            .map(|end| (end as u32, prefix_hash(lead, &head[..end])))
            .collect();
        Ok(Some(Identity { lead, prefixes }))
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

/// The hash of a prefix of a source's content. Without a leading NUL run it is the
/// prefix's SHA-256 alone, as every ledger key was before such runs were told apart.
fn prefix_hash(lead: u64, prefix: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    if lead > 0 {
        hash.update(lead.to_be_bytes());
    }
    hash.update(prefix);
    hash.finalize().into()
}

/// Tells whether a plain file still holds the content its identity was read from: not
/// truncated below what was read of it, and the same first bytes. Logrotate's
/// copytruncate empties a file in place while a loader holds it open; the bytes read
/// after that belong to a new file, under the old one's ledger key.
#[derive(Debug)]
pub struct FileGuard {
    file: File,
    lead: u64,
    prefix: (u32, [u8; 32]),
}

impl FileGuard {
    pub(super) fn new(file: File, identity: &Identity) -> FileGuard {
        FileGuard {
            file,
            lead: identity.lead,
            prefix: identity.own_key(),
        }
    }

    /// Whether the file still holds the content it was identified by, at least up to
    /// byte `end`; the reason when it does not.
    pub fn check(&self, end: u64) -> Result<(), Invalid> {
        let changed = |what: String| Invalid(format!("it changed while it was loaded: {what}"));
        let length = self
            .file
            .metadata()
            .map_err(|e| changed(format!("cannot read its size ({e})")))?
            .len();
        if length < end {
            return Err(changed(format!(
                "it has {length} bytes now, {end} were read (truncated, as by logrotate's copytruncate)"
            )));
        }
        let (prefix_length, hash) = self.prefix;
        let mut prefix = vec![0u8; prefix_length as usize];
        self.file
            .read_exact_at(&mut prefix, self.lead)
            .map_err(|e| changed(format!("cannot read its first lines ({e})")))?;
        if prefix_hash(self.lead, &prefix) != hash {
            return Err(changed(
                "its first lines are not the ones it was read with (rewritten or replaced)".into(),
            ));
        }
        Ok(())
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
