//! The encode stage: line -> `Event` -> COPY tuple, on one thread per core. Pure: it
//! touches no database; a batch's tuples carry numbers for their service names, which
//! the write stage resolves. This module is public on purpose, so that benchmarks and
//! property tests reach the encoder.

mod event;
mod line;
mod metadata;
mod numbers;
mod route;
mod shape;
pub mod timestamp;
pub(crate) mod tuple;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;

pub use event::Event;
pub use line::{LineEncoder, LineOutcome, MAX_DEPTH, ParseOptions, ServiceIds};
pub use route::Routes;
pub use shape::{Mapping, ShapeChoice};
pub use timestamp::Zone;
pub use tuple::NulPolicy;

use super::batch::{Batch, Reject, Row, SourceRef};
use super::buffers::BufferPool;
use super::read::{Chunk, OVERSIZED_PREFIX};

/// The encode stage's thread: chunks in, batches out, until the chunks run out or the
/// writers go away.
pub(crate) fn encode_stage(
    chunks: crossbeam_channel::Receiver<(Arc<SourceRef>, Chunk)>,
    batches: tokio::sync::mpsc::Sender<Batch>,
    mut encoder: LineEncoder,
    buffers: Arc<BufferPool>,
    lines_encoded: Arc<AtomicU64>,
) {
    for (source, chunk) in chunks {
        let lines = chunk.end_line - chunk.start_line;
        let batch = encode_chunk(source, chunk, &mut encoder, &buffers);
        lines_encoded.fetch_add(lines, Ordering::Relaxed);
        if batches.blocking_send(batch).is_err() {
            break;
        }
    }
}

/// The service names of one batch, numbered in order of first appearance.
#[derive(Default)]
struct BatchServices {
    numbers: FxHashMap<Box<str>, i32>,
    names: Vec<Box<str>>,
}

impl ServiceIds for BatchServices {
    fn id(&mut self, name: &str) -> i32 {
        if let Some(&number) = self.numbers.get(name) {
            return number;
        }
        let number = self.names.len() as i32;
        self.names.push(name.into());
        self.numbers.insert(name.into(), number);
        number
    }
}

/// Encodes every line of a chunk into a batch.
pub(crate) fn encode_chunk(
    source: Arc<SourceRef>,
    chunk: Chunk,
    encoder: &mut LineEncoder,
    buffers: &BufferPool,
) -> Batch {
    let mut batch = Batch {
        source,
        start_offset: chunk.start_offset,
        end_offset: chunk.end_offset,
        start_line: chunk.start_line,
        end_line: chunk.end_line,
        copy: buffers.take(chunk.data.len() + chunk.data.len() / 4),
        rows: Vec::new(),
        rejects: Vec::new(),
        raw: Vec::new(),
        days: Vec::new(),
        service_names: Vec::new(),
        deltas: None,
    };
    let max_line_bytes = encoder.options().max_line_bytes;
    if let Some(oversized) = chunk.oversized {
        batch.rejects.push(Reject {
            source: batch.source.name.clone(),
            line: chunk.start_line,
            offset: chunk.start_offset,
            reason: line::oversized_reason(oversized.length as usize, max_line_bytes),
            text: oversized.prefix,
        });
        return batch;
    }
    let mut services = BatchServices::default();
    let data = &chunk.data;
    let mut line = chunk.start_line;
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let raw = &data[start..end];
        let copy_start = batch.copy.len();
        match encoder.encode(raw, &mut services, &mut batch.copy) {
            LineOutcome::Encoded => {
                let day = tuple::created_at_of(&batch.copy[copy_start..])
                    .div_euclid(timestamp::MICROS_PER_DAY);
                if batch.days.last() != Some(&day) {
                    batch.days.push(day);
                }
                batch.rows.push(Row {
                    copy_start,
                    copy_end: batch.copy.len(),
                    raw_start: start,
                    raw_end: end,
                    line,
                });
            }
            LineOutcome::Blank => {}
            LineOutcome::Rejected(reason) => batch.rejects.push(Reject {
                source: batch.source.name.clone(),
                line,
                offset: chunk.start_offset + start as u64,
                reason,
                // An oversized line is reported by its start, like one the reader skipped.
                text: raw[..raw.len().min(if raw.len() > max_line_bytes {
                    OVERSIZED_PREFIX
                } else {
                    raw.len()
                })]
                    .to_vec(),
            }),
        }
        line += 1;
        start = end + 1;
    }
    batch.raw = chunk.data;
    batch.days.sort_unstable();
    batch.days.dedup();
    batch.service_names = services.names;
    if !cfg!(feature = "bench-without-rollups") {
        batch.rollup_deltas();
    }
    batch
}
