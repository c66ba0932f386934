//! The read stage: one thread opens each input, asks the ledger which of its bytes are
//! still to load, and cuts those into chunks of whole lines for the encode stage. It
//! knows nothing of the database: claims go to the ledger's owner as messages.

mod chunks;
mod identity;
mod inputs;
mod source;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use chunks::{Chunk, Gap, OVERSIZED_PREFIX, ReadLimits, read_gap};
pub(crate) use identity::Identity;
pub use inputs::{Expansion, Input, expand};
use source::Opened;

use super::batch::SourceRef;
use super::buffers::BufferPool;

/// The reader's question: may this loader read this source, and which of its bytes?
pub(crate) struct ClaimRequest {
    pub index: usize,
    pub name: Arc<str>,
    pub identity: Identity,
    pub reply: tokio::sync::oneshot::Sender<ClaimAnswer>,
}

pub(crate) enum ClaimAnswer {
    /// The source is this loader's until released; these stretches are still to load.
    Claimed {
        source: Arc<SourceRef>,
        gaps: Vec<Gap>,
    },
    /// Another loader (or this one, for a source with the same first line) holds it.
    Busy,
}

/// What the reader tells the ledger's owner as it goes.
pub(crate) enum Note {
    /// The reader wants to read a source: claim it in the ledger and answer.
    ClaimWanted(ClaimRequest),
    /// All of a source was read, in this many batches.
    Read {
        source: usize,
        batches: u64,
        pending_bytes: u64,
    },
    /// A source without a complete line yet.
    NoCompleteLine,
    /// A source another loader holds, left to it.
    Busy(Arc<str>),
    /// A source that could not be read, or not to the end.
    SourceError(String),
}

/// What the reader thread needs; `run` consumes it on its own thread.
pub(crate) struct Reader {
    pub inputs: Vec<Input>,
    /// The ledger name of stdin (`--source`).
    pub stdin_name: String,
    pub limits: ReadLimits,
    pub stop: Arc<AtomicBool>,
    pub notes: tokio::sync::mpsc::UnboundedSender<Note>,
    pub chunks: crossbeam_channel::Sender<(Arc<SourceRef>, Chunk)>,
    pub disk_bytes: Arc<AtomicU64>,
    pub buffers: Arc<BufferPool>,
    /// Whether to wait for sources another loader holds. A rebuild load must not: its
    /// lock on the table stops the other loader, which would never let go.
    pub wait_for_busy: bool,
}

/// A source opened and waiting for its claim.
struct Waiting {
    index: usize,
    name: Arc<str>,
    opened: Opened,
    identity: Identity,
}

/// The pipeline is shutting down: stop reading.
struct ShuttingDown;

impl Reader {
    /// Reads every input in argument order; sources another loader holds are tried again
    /// until they are free (or left to it, see `wait_for_busy`).
    pub fn run(self) {
        let mut waiting = Vec::new();
        for (index, input) in self.inputs.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let name: Arc<str> = match input {
                Input::Stdin => self.stdin_name.as_str().into(),
                Input::File(_) => input.display_name().into(),
            };
            match Opened::open(input, self.disk_bytes.clone(), &self.stop) {
                Ok(mut opened) => match opened.identity.take() {
                    None => {
                        let _ = self.notes.send(Note::NoCompleteLine);
                    }
                    Some(identity) => waiting.push(Waiting {
                        index,
                        name,
                        opened,
                        identity,
                    }),
                },
                // It gave way to the stop before a complete line came.
                Err(_) if self.stop.load(Ordering::Relaxed) => return,
                Err(error) => {
                    let _ = self
                        .notes
                        .send(Note::SourceError(inputs::cannot_read(&name, &error)));
                }
            }
            // Claim and read in argument order; only busy sources wait for another round.
            let Ok(busy) = self.read_claimable(waiting) else {
                return;
            };
            waiting = busy;
        }
        if !self.wait_for_busy {
            for source in &waiting {
                let _ = self.notes.send(Note::Busy(source.name.clone()));
            }
            return;
        }
        while !waiting.is_empty() && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let Ok(busy) = self.read_claimable(waiting) else {
                return;
            };
            waiting = busy;
        }
    }

    /// Reads every source it can claim now; returns the busy ones.
    fn read_claimable(&self, sources: Vec<Waiting>) -> Result<Vec<Waiting>, ShuttingDown> {
        let mut busy = Vec::new();
        for source in sources {
            if let Some(source) = self.try_read(source)? {
                busy.push(source);
            }
        }
        Ok(busy)
    }

    /// Claims and reads a source; gives it back when another loader holds it.
    fn try_read(&self, source: Waiting) -> Result<Option<Waiting>, ShuttingDown> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = ClaimRequest {
            index: source.index,
            name: source.name.clone(),
            identity: source.identity.clone(),
            reply,
        };
        if self.notes.send(Note::ClaimWanted(request)).is_err() {
            return Err(ShuttingDown);
        }
        match answer.blocking_recv() {
            Ok(ClaimAnswer::Claimed {
                source: claimed,
                gaps,
            }) => {
                self.read_source(&claimed, source.opened, gaps)?;
                Ok(None)
            }
            Ok(ClaimAnswer::Busy) => Ok(Some(source)),
            Err(_) => Err(ShuttingDown),
        }
    }

    /// Reads the gaps of a claimed source.
    fn read_source(
        &self,
        source: &Arc<SourceRef>,
        mut opened: Opened,
        gaps: Vec<Gap>,
    ) -> Result<(), ShuttingDown> {
        let mut batches = 0;
        let mut pending_bytes = 0;
        let mut outcome = Ok(());
        let committed_end = gaps.last().map_or(0, |gap| gap.start);
        if let Err(problem) = opened.check_committed_end(committed_end) {
            let _ = self.notes.send(Note::SourceError(format!(
                "{} does not match what was loaded from it before ({problem}); skipped",
                source.name
            )));
            let _ = self.notes.send(Note::Read {
                source: source.index,
                batches: 0,
                pending_bytes: 0,
            });
            return Ok(());
        }
        for gap in gaps {
            let result = read_gap(
                &mut opened,
                gap,
                self.limits,
                &self.stop,
                &self.buffers,
                &mut |chunk| {
                    batches += 1;
                    // A full channel is not stopped early: it drains as the batches in
                    // flight commit, which a stop waits for anyway.
                    self.chunks.send((source.clone(), chunk)).is_ok()
                },
            );
            match result {
                Ok(end) => {
                    pending_bytes += end.pending_bytes;
                    if end.stopped {
                        outcome = Err(ShuttingDown);
                        break;
                    }
                }
                // It gave way to the stop while waiting for data.
                Err(_) if self.stop.load(Ordering::Relaxed) => {
                    outcome = Err(ShuttingDown);
                    break;
                }
                Err(error) => {
                    let _ = self.notes.send(Note::SourceError(format!(
                        "cannot read {} to the end: {error} (the complete lines before that point are loaded)",
                        source.name
                    )));
                    break;
                }
            }
        }
        let _ = self.notes.send(Note::Read {
            source: source.index,
            batches,
            pending_bytes,
        });
        outcome
    }
}
