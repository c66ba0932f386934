//! A batch: one chunk's lines encoded as COPY tuples, with what is needed to
//! commit it exactly once (its byte and line range) and to report its rejects.

use std::sync::Arc;

use super::buffers::BufferPool;
use super::copy;
use super::parse::{LineEncoder, LineOutcome, ServiceIds, oversized_reason};
use super::reader::Chunk;
use super::reader::OVERSIZED_PREFIX;

/// The identity of a source being loaded, shared by its batches.
#[derive(Debug)]
pub struct SourceSlot {
    pub index: usize,
    pub name: Arc<str>,
    /// The ledger key.
    pub key: [u8; 32],
    /// The advisory lock this loader holds while the source is in flight.
    pub claim_lock: i32,
}

/// One encoded tuple and the line it came from.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub copy_start: usize,
    pub copy_end: usize,
    pub raw_start: usize,
    pub raw_end: usize,
    pub line: u64,
}

/// A line that was not loaded, and why.
#[derive(Debug, Clone)]
pub struct Reject {
    pub source: Arc<str>,
    pub line: u64,
    pub offset: u64,
    pub reason: String,
    pub text: Vec<u8>,
}

#[derive(Debug)]
pub struct Batch {
    pub source: Arc<SourceSlot>,
    pub start_offset: u64,
    pub end_offset: u64,
    pub start_line: u64,
    pub end_line: u64,
    /// Tuples only; the COPY header and trailer are added when sending.
    pub copy: Vec<u8>,
    pub rows: Vec<Row>,
    pub rejects: Vec<Reject>,
    pub blank_lines: u64,
    /// The chunk's original bytes, to report a line the server refuses.
    pub raw: Vec<u8>,
    /// The days (since 2000-01-01 UTC) its rows fall in, for a partitioned table.
    pub days: Vec<i64>,
}

impl Batch {
    /// Lines this batch accounts for: loaded, rejected and blank.
    pub fn line_count(&self) -> u64 {
        self.end_line - self.start_line
    }

    /// Rejects the row at `index` with the server's reason and removes its tuple.
    pub fn reject_row(&mut self, index: usize, reason: String) {
        let row = self.rows.remove(index);
        let length = row.copy_end - row.copy_start;
        self.copy.drain(row.copy_start..row.copy_end);
        for later in &mut self.rows[index..] {
            later.copy_start -= length;
            later.copy_end -= length;
        }
        self.rejects.push(Reject {
            source: self.source.name.clone(),
            line: row.line,
            offset: self.start_offset + row.raw_start as u64,
            reason,
            text: self.raw[row.raw_start..row.raw_end].to_vec(),
        });
    }
}

impl Batch {
    /// Splits off the rows from `index` on into a batch of their own, with the byte and
    /// line range from that row's line to this batch's end; used to narrow down a row
    /// the server refuses when it does not say which one.
    pub fn split_off(&mut self, index: usize) -> Batch {
        let first = self.rows[index];
        let tail_rows: Vec<Row> = self
            .rows
            .split_off(index)
            .into_iter()
            .map(|row| Row {
                copy_start: row.copy_start - first.copy_start,
                copy_end: row.copy_end - first.copy_start,
                raw_start: row.raw_start - first.raw_start,
                raw_end: row.raw_end - first.raw_start,
                line: row.line,
            })
            .collect();
        let split_offset = self.start_offset + first.raw_start as u64;
        let (kept, moved): (Vec<Reject>, Vec<Reject>) = self
            .rejects
            .drain(..)
            .partition(|reject| reject.offset < split_offset);
        self.rejects = kept;
        let tail = Batch {
            source: self.source.clone(),
            start_offset: split_offset,
            end_offset: self.end_offset,
            start_line: first.line,
            end_line: self.end_line,
            copy: self.copy.split_off(first.copy_start),
            rows: tail_rows,
            rejects: moved,
            blank_lines: 0,
            raw: self.raw.split_off(first.raw_start),
            days: self.days.clone(),
        };
        self.end_offset = split_offset;
        self.end_line = first.line;
        tail
    }
}

/// Encodes every line of a chunk.
pub fn encode_chunk(
    source: Arc<SourceSlot>,
    chunk: Chunk,
    encoder: &mut LineEncoder,
    services: &mut dyn ServiceIds,
    buffers: &BufferPool,
) -> anyhow::Result<Batch> {
    let mut batch = Batch {
        source,
        start_offset: chunk.start_offset,
        end_offset: chunk.end_offset,
        start_line: chunk.start_line,
        end_line: chunk.end_line,
        copy: buffers.take(chunk.data.len() + chunk.data.len() / 4),
        rows: Vec::new(),
        rejects: Vec::new(),
        blank_lines: 0,
        raw: Vec::new(),
        days: Vec::new(),
    };
    if let Some(oversized) = chunk.oversized {
        batch.rejects.push(Reject {
            source: batch.source.name.clone(),
            line: chunk.start_line,
            offset: chunk.start_offset,
            reason: oversized_reason(oversized.length as usize, encoder.options().max_line_bytes),
            text: oversized.prefix,
        });
        return Ok(batch);
    }
    let max_line_bytes = encoder.options().max_line_bytes;
    let data = &chunk.data;
    let mut line = chunk.start_line;
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let raw = &data[start..end];
        let copy_start = batch.copy.len();
        match encoder.encode(raw, services, &mut batch.copy)? {
            LineOutcome::Encoded => {
                let day =
                    copy::created_at_of(&batch.copy[copy_start..]).div_euclid(copy::MICROS_PER_DAY);
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
            LineOutcome::Blank => batch.blank_lines += 1,
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
    Ok(batch)
}
