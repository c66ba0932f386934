//! The read stage: one thread opens each input, asks the ledger which of its bytes are
//! still to load, and cuts those into chunks of whole lines for the encode stage. It
//! knows nothing of the database: claims go to the ledger's owner as messages.

mod chunks;
mod identity;
mod inputs;
mod source;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use chunks::{Chunk, Gap, OVERSIZED_PREFIX, ReadLimits, read_gap};
pub(crate) use identity::{FileGuard, Identity};
pub use inputs::{Expansion, Input, NameFilter, expand};
use source::Opened;

use super::batch::SourceRef;
use super::buffers::BufferPool;
use crate::Invalid;

/// The reader's question: may this loader read this source, and which of its bytes?
pub(crate) struct ClaimRequest {
    pub index: usize,
    pub name: Arc<str>,
    pub identity: Identity,
    pub guard: Option<Arc<FileGuard>>,
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
    /// A source without a complete line yet, of this many bytes (0: empty).
    NoCompleteLine { bytes: u64 },
    /// A source another loader holds, left to it.
    Busy(Arc<str>),
    /// A source that could not be read, or not to the end.
    SourceError(String),
    /// A file that changed while it was read; it is read again as a new file.
    Changed { name: Arc<str>, reason: Invalid },
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
    input: Input,
    name: Arc<str>,
    opened: Opened,
    identity: Identity,
}

/// The pipeline is shutting down: stop reading.
struct ShuttingDown;

/// How reading a claimed source ended.
enum SourceRead<T> {
    Done,
    /// The file changed under the load (see `FileGuard`): read it again as the new file
    /// it is now.
    Changed(T),
}

/// What became of one try at a source.
enum Attempt {
    Busy(Waiting),
    Read(SourceRead<Input>),
}

impl Reader {
    /// Reads every input in argument order; sources another loader holds are tried again
    /// until they are free (or left to it, see `wait_for_busy`).
    pub fn run(self) {
        let mut queue: VecDeque<(usize, Input)> = self.inputs.iter().cloned().enumerate().collect();
        let mut next_index = self.inputs.len();
        let mut waiting = Vec::new();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if let Some((index, input)) = queue.pop_front() {
                if let Some(source) = self.open(index, input) {
                    waiting.push(source);
                }
            } else if waiting.is_empty() {
                return;
            } else if !self.wait_for_busy {
                for source in &waiting {
                    let _ = self.notes.send(Note::Busy(source.name.clone()));
                }
                return;
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
            // Claim and read in argument order; only busy sources wait for another round.
            let Ok((busy, changed)) = self.read_claimable(waiting) else {
                return;
            };
            waiting = busy;
            for input in changed {
                queue.push_back((next_index, input));
                next_index += 1;
            }
        }
    }

    /// Opens an input; None when it has nothing to claim yet or cannot be read.
    fn open(&self, index: usize, input: Input) -> Option<Waiting> {
        let name: Arc<str> = match &input {
            Input::Stdin => self.stdin_name.as_str().into(),
            Input::File(_) => input.display_name().into(),
        };
        match Opened::open(&input, self.disk_bytes.clone(), &self.stop) {
            Ok(mut opened) => match opened.identity.take() {
                None => {
                    let bytes = input.size_on_disk().unwrap_or(0);
                    let _ = self.notes.send(Note::NoCompleteLine { bytes });
                    None
                }
                Some(identity) => Some(Waiting {
                    index,
                    input,
                    name,
                    opened,
                    identity,
                }),
            },
            // It gave way to the stop before a complete line came.
            Err(_) if self.stop.load(Ordering::Relaxed) => None,
            Err(error) => {
                let _ = self
                    .notes
                    .send(Note::SourceError(inputs::cannot_read(&name, &error)));
                None
            }
        }
    }

    /// Reads every source it can claim now; returns the busy ones, and the inputs that
    /// changed under the load, to be read again.
    fn read_claimable(
        &self,
        sources: Vec<Waiting>,
    ) -> Result<(Vec<Waiting>, Vec<Input>), ShuttingDown> {
        let mut busy = Vec::new();
        let mut changed = Vec::new();
        for source in sources {
            match self.try_read(source)? {
                Attempt::Busy(source) => busy.push(source),
                Attempt::Read(SourceRead::Done) => {}
                Attempt::Read(SourceRead::Changed(input)) => changed.push(input),
            }
        }
        Ok((busy, changed))
    }

    /// Claims and reads a source; gives it back when another loader holds it.
    fn try_read(&self, source: Waiting) -> Result<Attempt, ShuttingDown> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = ClaimRequest {
            index: source.index,
            name: source.name.clone(),
            identity: source.identity.clone(),
            guard: source.opened.guard.clone(),
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
                let read = self.read_source(&claimed, source.opened, source.identity.lead, gaps)?;
                Ok(Attempt::Read(match read {
                    SourceRead::Changed(()) => SourceRead::Changed(source.input),
                    SourceRead::Done => SourceRead::Done,
                }))
            }
            Ok(ClaimAnswer::Busy) => Ok(Attempt::Busy(source)),
            Err(_) => Err(ShuttingDown),
        }
    }

    /// Reads the gaps of a claimed source. A plain file is checked before each chunk
    /// is handed on: bytes read after it changed are never loaded under its old key.
    fn read_source(
        &self,
        source: &Arc<SourceRef>,
        mut opened: Opened,
        lead: u64,
        gaps: Vec<Gap>,
    ) -> Result<SourceRead<()>, ShuttingDown> {
        let mut batches = 0;
        let mut pending_bytes = 0;
        let mut outcome = Ok(SourceRead::Done);
        let committed_end = gaps.last().map_or(0, |gap| gap.start);
        if let Err(problem) = opened.check_committed_end(committed_end, lead) {
            let _ = self.notes.send(Note::SourceError(format!(
                "{} does not match what was loaded from it before ({problem}); skipped",
                source.name
            )));
            let _ = self.notes.send(Note::Read {
                source: source.index,
                batches: 0,
                pending_bytes: 0,
            });
            return Ok(SourceRead::Done);
        }
        let mut changed = None;
        let mut emit = |chunk: Chunk| {
            if let Some(guard) = &source.guard
                && let Err(reason) = guard.check(chunk.end_offset)
            {
                changed = Some(reason);
                return false;
            }
            batches += 1;
            // A full channel is not stopped early: it drains as the batches in flight
            // commit, which a stop waits for anyway.
            self.chunks.send((source.clone(), chunk)).is_ok()
        };
        for mut gap in gaps {
            // A leading run of NULs holds no line: it is recorded, not read.
            if gap.start < lead {
                let end = gap.end.map_or(lead, |end| end.min(lead));
                if !emit(Chunk::no_lines(gap.start, end, gap.start_line)) {
                    outcome = Err(ShuttingDown);
                    break;
                }
                if gap.end == Some(end) {
                    continue;
                }
                gap.start = end;
            }
            let result = read_gap(
                &mut opened,
                gap,
                self.limits,
                &self.stop,
                &self.buffers,
                &mut emit,
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
        if let Some(reason) = changed {
            let _ = self.notes.send(Note::Changed {
                name: source.name.clone(),
                reason,
            });
            outcome = Ok(SourceRead::Changed(()));
        }
        let _ = self.notes.send(Note::Read {
            source: source.index,
            batches,
            pending_bytes,
        });
        outcome
    }
}
