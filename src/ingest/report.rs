//! The load report, added up from the reader's notes and the writers' updates by the
//! task that owns the ledger: it answers the reader's claims, releases each source once
//! all of it is committed, and raises the stop flag on --max-errors or a failure. Work
//! that committed is never reported as failed: a ledger step after it only warns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

use super::batch::{Batch, SourceRef};
use super::ledger::Ledger;
use super::progress::Phases;
use super::read::{ClaimAnswer, Note};
use crate::{Error, Invalid};

/// Why a load ended before reading everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Interrupted,
    TooManyRejects,
    Failed,
}

/// A phase of the load after its rows were copied (building indexes, attaching
/// partitions, compacting the ledger), and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    pub name: &'static str,
    #[serde(serialize_with = "milliseconds")]
    pub seconds: f64,
}

/// Seconds to the millisecond: a float's binary noise is no information.
fn milliseconds<S: serde::Serializer>(seconds: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((seconds * 1000.0).round() / 1000.0)
}

/// What a load did; also the `--format json` summary.
#[derive(Debug, Default, Serialize)]
pub struct LoadReport {
    pub files: usize,
    pub files_with_new_lines: usize,
    /// Files with nothing new, all of whose bytes were loaded before.
    pub files_already_loaded: usize,
    /// Files with nothing new but a last line waiting for its newline (or only that).
    pub files_waiting: usize,
    /// Files of no bytes at all.
    pub files_empty: usize,
    /// Files another loader was loading, left to it (only when this load could build
    /// indexes in one transaction, which must not wait on another loader).
    pub files_left_to_others: Vec<String>,
    pub lines_read: u64,
    pub loaded: u64,
    pub rejected: u64,
    pub blank: u64,
    pub bytes_read: u64,
    /// Bytes of last lines without their newline, left for the next run.
    pub pending_bytes: u64,
    pub services_created: Vec<String>,
    #[serde(serialize_with = "milliseconds")]
    pub seconds: f64,
    /// The phases after the copy, in order.
    pub phases: Vec<PhaseTime>,
    pub dry_run: bool,
    pub stopped: Option<Stop>,
    /// Sources that could not be read, with the reason.
    pub source_errors: Vec<String>,
    /// Whether the indexes were dropped for the load and built again after it.
    pub rebuilt_indexes: bool,
    /// Files that changed while they were read (truncated or rewritten in place, as by
    /// logrotate's copytruncate), with the reason: what was read of them after the change
    /// was not loaded under their old identity; they were read again as new files.
    pub files_changed: Vec<String>,
    /// Why building the indexes in one transaction failed for a row's sake, when it did:
    /// the load was then run again keeping the indexes.
    pub index_build_refused: Option<String>,
    /// What went wrong after the work committed, which fails nothing: releasing a
    /// claim, compacting the ledger.
    pub warnings: Vec<String>,
    /// Rollup deltas folded into the grains at the end of the load.
    pub rollup_deltas_compacted: u64,
    #[serde(skip)]
    pub failure: Option<Error>,
}

/// What the writers tell the report as the load goes on.
pub(crate) enum Update {
    /// Lines committed; `chunk_done` when this was the last part of a chunk.
    Committed {
        stats: BatchStats,
        chunk_done: bool,
    },
    /// Lines rejected by a write, counted against --max-errors at once, even when the
    /// write is part of the rebuild transaction and its stats come later.
    Rejected(u64),
    /// Part of a batch was not kept: its file changed after its bytes were read.
    SourceChanged {
        name: Arc<str>,
        reason: Invalid,
    },
    /// The rebuild transaction committed, indexes built.
    Rebuilt,
    /// The rebuild transaction was rolled back: building the indexes refused a row.
    RebuildRefused(String),
    Fatal(Error),
}

/// The lines of the committed parts of one batch.
pub(crate) struct BatchStats {
    source: usize,
    lines: u64,
    loaded: u64,
    pub rejected: u64,
    blank: u64,
}

impl BatchStats {
    pub fn of(source: usize, batches: &[Batch]) -> BatchStats {
        BatchStats {
            source,
            lines: batches.iter().map(Batch::line_count).sum(),
            loaded: batches.iter().map(|b| b.rows.len() as u64).sum(),
            rejected: batches.iter().map(|b| b.rejects.len() as u64).sum(),
            blank: batches.iter().map(Batch::blank_lines).sum(),
        }
    }
}

/// A source claimed and in flight.
struct InFlight {
    source: Arc<SourceRef>,
    chunks: Option<u64>,
    committed_chunks: u64,
    new_lines: bool,
    pending_bytes: u64,
}

/// Either kind of message.
enum Message {
    Note(Note),
    Update(Update),
}

/// Adds up the notes and updates until every stage is done, then settles the ledger.
pub(crate) async fn tally(
    mut notes: mpsc::UnboundedReceiver<Note>,
    mut updates: mpsc::UnboundedReceiver<Update>,
    mut ledger: Ledger,
    stop: Arc<AtomicBool>,
    max_errors: Option<u64>,
    files: usize,
    phases: &Phases,
) -> LoadReport {
    let mut report = LoadReport {
        files,
        ..LoadReport::default()
    };
    let mut in_flight: HashMap<usize, InFlight> = HashMap::new();
    let mut rejected_so_far = 0;
    let (mut reading, mut writing) = (true, true);
    while reading || writing {
        let message = tokio::select! {
            note = notes.recv(), if reading => match note {
                Some(note) => Message::Note(note),
                None => {
                    reading = false;
                    continue;
                }
            },
            update = updates.recv(), if writing => match update {
                Some(update) => Message::Update(update),
                None => {
                    writing = false;
                    continue;
                }
            },
        };
        let touched = match message {
            Message::Note(Note::ClaimWanted(request)) => {
                match ledger.claim(&request).await {
                    Ok(answer) => {
                        if let ClaimAnswer::Claimed { source, .. } = &answer {
                            in_flight.insert(
                                source.index,
                                InFlight {
                                    source: source.clone(),
                                    chunks: None,
                                    committed_chunks: 0,
                                    new_lines: false,
                                    pending_bytes: 0,
                                },
                            );
                        }
                        let _ = request.reply.send(answer);
                    }
                    // Dropping the request tells the reader to stop.
                    Err(error) => fail(&mut report, &stop, error),
                }
                None
            }
            Message::Note(Note::Read {
                source,
                batches,
                pending_bytes,
            }) => {
                report.pending_bytes += pending_bytes;
                if let Some(entry) = in_flight.get_mut(&source) {
                    entry.chunks = Some(batches);
                    entry.pending_bytes = pending_bytes;
                }
                Some(source)
            }
            Message::Note(Note::NoCompleteLine { bytes: 0 }) => {
                report.files_empty += 1;
                None
            }
            Message::Note(Note::NoCompleteLine { bytes }) => {
                report.files_waiting += 1;
                report.pending_bytes += bytes;
                None
            }
            Message::Note(Note::Busy(name)) => {
                report.files_left_to_others.push(name.to_string());
                None
            }
            Message::Note(Note::SourceError(message)) => {
                report.source_errors.push(message);
                None
            }
            Message::Note(Note::Changed { name, reason })
            | Message::Update(Update::SourceChanged { name, reason }) => {
                let known = format!("{name}: ");
                if !report.files_changed.iter().any(|c| c.starts_with(&known)) {
                    report.files_changed.push(format!("{name}: {reason}"));
                }
                None
            }
            Message::Update(Update::Committed { stats, chunk_done }) => {
                report.lines_read += stats.lines;
                report.loaded += stats.loaded;
                report.rejected += stats.rejected;
                report.blank += stats.blank;
                if let Some(entry) = in_flight.get_mut(&stats.source) {
                    entry.committed_chunks += u64::from(chunk_done);
                    entry.new_lines |= stats.lines > 0;
                    if stats.lines > 0 {
                        ledger.committed_to(entry.source.key);
                    }
                }
                Some(stats.source)
            }
            Message::Update(Update::Rejected(lines)) => {
                rejected_so_far += lines;
                if max_errors.is_some_and(|max| rejected_so_far > max) && report.stopped.is_none() {
                    report.stopped = Some(Stop::TooManyRejects);
                    stop.store(true, Ordering::Relaxed);
                }
                None
            }
            Message::Update(Update::Rebuilt) => {
                report.rebuilt_indexes = true;
                None
            }
            Message::Update(Update::RebuildRefused(reason)) => {
                report.index_build_refused = Some(reason);
                None
            }
            Message::Update(Update::Fatal(error)) => {
                fail(&mut report, &stop, error);
                None
            }
        };
        let Some(index) = touched else { continue };
        if in_flight
            .get(&index)
            .is_none_or(|entry| entry.chunks != Some(entry.committed_chunks))
        {
            continue;
        }
        let finished = in_flight.remove(&index).expect("checked above");
        // "Already loaded" is said only of a file all of whose bytes were.
        if finished.new_lines {
            report.files_with_new_lines += 1;
        } else if finished.pending_bytes > 0 {
            report.files_waiting += 1;
        } else {
            report.files_already_loaded += 1;
        }
        // What was committed stays so; a claim left behind is freed at the end (or when
        // this load's liveness ends), so this load goes on.
        if let Err(error) = ledger.release(index).await {
            report
                .warnings
                .push(format!("could not release a claim: {error}"));
        }
    }
    let finished = if ledger.compacts() {
        phases.run("compacting the ledger", ledger.finish()).await
    } else {
        ledger.finish().await
    };
    if let Err(error) = finished {
        report.warnings.push(format!(
            "could not tidy the ledger after the load ({error}); every commit stands, and the \
             next load of these files tidies it"
        ));
    }
    report
}

/// Keeps the first failure and stops the load.
fn fail(report: &mut LoadReport, stop: &AtomicBool, error: Error) {
    if report.failure.is_none() {
        report.failure = Some(error);
        report.stopped = Some(Stop::Failed);
    }
    stop.store(true, Ordering::Relaxed);
}
