//! A batch: one chunk's lines encoded as COPY tuples, what the encode stage hands the
//! write stage. It carries what is needed to commit it exactly once (its byte and line
//! range), to report its rejects, and the service names its tuples stand for until the
//! writer resolves them to ids.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::encode::timestamp::{self, MICROS_PER_DAY};
use super::encode::tuple;
use super::read::FileGuard;
use crate::Invalid;
use crate::analytics::rollup::{BatchCells, Delta};

/// A source being loaded, shared by its batches.
#[derive(Debug)]
pub struct SourceRef {
    /// Its place among the load's inputs.
    pub index: usize,
    pub name: Arc<str>,
    /// The ledger key.
    pub key: [u8; 32],
    /// For a plain file: whether it still is the file its bytes were read from.
    pub guard: Option<Arc<FileGuard>>,
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
    pub source: Arc<SourceRef>,
    pub start_offset: u64,
    pub end_offset: u64,
    pub start_line: u64,
    pub end_line: u64,
    /// Tuples only; the COPY header and trailer are added when sending.
    pub copy: Vec<u8>,
    pub rows: Vec<Row>,
    pub rejects: Vec<Reject>,
    /// The original bytes from `start_offset` to `end_offset` (none for a line the reader
    /// skipped as oversized), to report a line the server refuses and to split the batch.
    pub raw: Vec<u8>,
    /// The days (since 2000-01-01 UTC) its rows fall in, for a partitioned table.
    pub days: Vec<i64>,
    /// The service names of its tuples: each tuple's service_id holds an index into this
    /// list until `set_service_ids` replaces it with the id.
    pub service_names: Vec<Box<str>>,
    /// The rollup deltas of its rows, computed by the encode stage, which has time to
    /// spare while the writer's COPY stream is the bottleneck; their service ids are the
    /// tuples' (numbers, then ids). None once rows were removed: `rollup_deltas` then
    /// computes them anew from the tuples.
    pub deltas: Option<Vec<Delta>>,
}

impl Batch {
    /// Rejects the rows whose service name the server refused, with its reason, and gives
    /// the others the ids of their names (`resolved` in the order of `service_names`).
    pub fn resolve_services(&mut self, resolved: &[Result<i32, Invalid>]) {
        if resolved.iter().any(Result::is_err) {
            for index in (0..self.rows.len()).rev() {
                let row = self.rows[index];
                let number = tuple::service_id_of(&self.copy[row.copy_start..row.copy_end]);
                if let Err(reason) = &resolved[number as usize] {
                    self.reject_row(index, reason.0.clone());
                }
            }
            self.rejects.sort_by_key(|reject| reject.line);
        }
        let ids: Vec<i32> = resolved
            .iter()
            .map(|resolved| resolved.as_ref().map_or(0, |id| *id))
            .collect();
        self.set_service_ids(&ids);
    }

    /// Rejects the rows whose time no partition can hold: a partition is named after its
    /// first day (`log_events_YYYYMMDD`), which needs a year from 1 to 9999.
    pub fn reject_unpartitionable(&mut self) {
        let first = timestamp::from_datetime(
            chrono::NaiveDate::from_ymd_opt(1, 1, 1)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .expect("a valid date")
                .and_utc(),
        );
        let end = timestamp::from_datetime(
            chrono::NaiveDate::from_ymd_opt(10_000, 1, 1)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .expect("a valid date")
                .and_utc(),
        );
        let holdable = |day: i64| (first..end).contains(&(day * MICROS_PER_DAY));
        if self.days.iter().all(|&day| holdable(day)) {
            return;
        }
        for index in (0..self.rows.len()).rev() {
            let row = self.rows[index];
            let created_at = tuple::created_at_of(&self.copy[row.copy_start..row.copy_end]);
            if !holdable(created_at.div_euclid(MICROS_PER_DAY)) {
                self.reject_row(
                    index,
                    format!(
                        "its time ({}) is outside the years 1 to 9999, which no partition of \
                         log_events can hold",
                        timestamp::to_datetime(created_at).to_rfc3339()
                    ),
                );
            }
        }
        self.rejects.sort_by_key(|reject| reject.line);
        self.days.retain(|&day| holdable(day));
    }

    /// Replaces each tuple's service index with the id of that name (`ids` in the order of
    /// `service_names`, which this empties: the tuples hold ids from now on).
    fn set_service_ids(&mut self, ids: &[i32]) {
        for row in &self.rows {
            let tuple = &mut self.copy[row.copy_start..row.copy_end];
            let index = tuple::service_id_of(tuple);
            tuple::set_service_id(tuple, ids[index as usize]);
        }
        for delta in self.deltas.iter_mut().flatten() {
            delta.service_id = ids[delta.service_id as usize];
        }
        self.service_names.clear();
    }

    /// The first instants of the days its rows fall in.
    pub fn day_starts(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.days
            .iter()
            .map(|day| timestamp::to_datetime(day * MICROS_PER_DAY))
    }

    /// The rollup deltas of the rows it holds now: those the encode stage computed, or
    /// computed from the tuples if rows were removed since.
    pub fn rollup_deltas(&mut self) -> &[Delta] {
        self.deltas.get_or_insert_with(|| {
            let mut cells = BatchCells::default();
            for row in &self.rows {
                cells.add(&tuple::rollup_row(&self.copy[row.copy_start..row.copy_end]));
            }
            cells.deltas()
        })
    }

    /// Lines this batch accounts for: loaded, rejected and blank.
    pub fn line_count(&self) -> u64 {
        self.end_line - self.start_line
    }

    /// Rejects the row at `index` with the server's reason and removes its tuple.
    pub fn reject_row(&mut self, index: usize, reason: String) {
        let row = self.rows.remove(index);
        self.deltas = None;
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

    /// Lines this batch accounts for that are blank: neither loaded nor rejected.
    pub fn blank_lines(&self) -> u64 {
        self.line_count()
            .saturating_sub(self.rows.len() as u64 + self.rejects.len() as u64)
    }

    /// The number of the line that starts at byte `offset` of the source, if one of this
    /// batch's lines does (its end counts too).
    fn line_starting_at(&self, offset: u64) -> Option<u64> {
        if offset == self.start_offset {
            return Some(self.start_line);
        }
        if offset == self.end_offset {
            return Some(self.end_line);
        }
        let relative = offset.checked_sub(self.start_offset)? as usize;
        let before = self.raw.get(..relative)?;
        (before.last() == Some(&b'\n'))
            .then(|| self.start_line + memchr::memchr_iter(b'\n', before).count() as u64)
    }

    /// Splits off the lines from byte `offset` of the source on (the start of one of its
    /// lines, past its first) into a batch of their own, with their rows, rejects and
    /// bytes.
    pub fn split_at(&mut self, offset: u64) -> Batch {
        let line = self
            .line_starting_at(offset)
            .filter(|_| offset > self.start_offset && offset < self.end_offset)
            .expect("a batch is split at the start of one of its lines");
        let relative = (offset - self.start_offset) as usize;
        let first_moved = self.rows.partition_point(|row| row.raw_start < relative);
        let copy_split = self
            .rows
            .get(first_moved)
            .map_or(self.copy.len(), |row| row.copy_start);
        let tail_rows: Vec<Row> = self
            .rows
            .split_off(first_moved)
            .into_iter()
            .map(|row| Row {
                copy_start: row.copy_start - copy_split,
                copy_end: row.copy_end - copy_split,
                raw_start: row.raw_start - relative,
                raw_end: row.raw_end - relative,
                line: row.line,
            })
            .collect();
        let (kept, moved): (Vec<Reject>, Vec<Reject>) = self
            .rejects
            .drain(..)
            .partition(|reject| reject.offset < offset);
        self.rejects = kept;
        let tail = Batch {
            source: self.source.clone(),
            start_offset: offset,
            end_offset: self.end_offset,
            start_line: line,
            end_line: self.end_line,
            copy: self.copy.split_off(copy_split),
            rows: tail_rows,
            rejects: moved,
            raw: self.raw.split_off(relative),
            days: self.days.clone(),
            service_names: self.service_names.clone(),
            deltas: None,
        };
        self.deltas = None;
        self.end_offset = offset;
        self.end_line = line;
        tail
    }

    /// The parts of this batch outside `committed` (byte ranges of the source that
    /// another loader committed after this one read the ledger), to be committed on
    /// their own. Refused when a range does not start or end where one of this batch's
    /// lines does: then the bytes differ from what the other loader read.
    pub fn outside(mut self, committed: &[(u64, u64)]) -> Result<Vec<Batch>, Invalid> {
        let mut cuts: Vec<u64> = committed
            .iter()
            .flat_map(|&(start, end)| [start, end])
            .filter(|&cut| cut > self.start_offset && cut < self.end_offset)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        if let Some(cut) = cuts
            .iter()
            .find(|&&cut| self.line_starting_at(cut).is_none())
        {
            return Err(Invalid(format!(
                "another loader committed a range of it that starts or ends at byte {cut}, \
                 inside a line of what this load read: its content changed"
            )));
        }
        let mut parts = Vec::with_capacity(cuts.len() + 1);
        for &cut in cuts.iter().rev() {
            parts.push(self.split_at(cut));
        }
        parts.push(self);
        parts.retain(|part| {
            !committed
                .iter()
                .any(|&(start, end)| start <= part.start_offset && part.end_offset <= end)
        });
        parts.reverse();
        Ok(parts)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A batch of the lines of `text` (each its own "tuple": the line's bytes behind a
    /// service id 0), starting at byte `offset` and line number `line`.
    pub fn batch_of(text: &str, offset: u64, line: u64) -> Batch {
        let mut batch = Batch {
            source: Arc::new(SourceRef {
                index: 0,
                name: "test.ndjson".into(),
                key: [7; 32],
                guard: None,
            }),
            start_offset: offset,
            end_offset: offset + text.len() as u64,
            start_line: line,
            end_line: line + text.lines().count() as u64,
            copy: Vec::new(),
            rows: Vec::new(),
            rejects: Vec::new(),
            raw: text.as_bytes().to_vec(),
            days: Vec::new(),
            service_names: Vec::new(),
            deltas: None,
        };
        let mut start = 0;
        for (number, content) in text.lines().enumerate() {
            let copy_start = batch.copy.len();
            batch.copy.extend_from_slice(&[0; 26]);
            batch.copy.extend_from_slice(&0i32.to_be_bytes());
            batch.copy.extend_from_slice(content.as_bytes());
            batch.rows.push(Row {
                copy_start,
                copy_end: batch.copy.len(),
                raw_start: start,
                raw_end: start + content.len(),
                line: line + number as u64,
            });
            start += content.len() + 1;
        }
        batch
    }

    fn tuple_text(batch: &Batch, index: usize) -> &[u8] {
        let row = batch.rows[index];
        &batch.copy[row.copy_start + 30..row.copy_end]
    }

    #[test]
    fn a_split_keeps_lines_offsets_and_tuples_together() {
        let mut head = batch_of("a\nbb\nccc\ndddd\n", 1000, 5);
        head.reject_row(1, "refused".into());
        let tail = head.split_at(1005);
        assert_eq!((head.start_offset, head.end_offset), (1000, 1005));
        assert_eq!((head.start_line, head.end_line), (5, 7));
        assert_eq!((tail.start_offset, tail.end_offset), (1005, 1014));
        assert_eq!((tail.start_line, tail.end_line), (7, 9));
        assert_eq!(tuple_text(&head, 0), b"a");
        assert_eq!(tuple_text(&tail, 0), b"ccc");
        assert_eq!(tuple_text(&tail, 1), b"dddd");
        assert_eq!(
            &tail.raw[tail.rows[1].raw_start..tail.rows[1].raw_end],
            b"dddd"
        );
        assert_eq!(tail.rows[1].line, 8);
        // The reject (line 6, "bb" at byte 1002) stays with the part that holds its line.
        assert_eq!(head.rejects.len(), 1);
        assert_eq!((head.rejects[0].line, head.rejects[0].offset), (6, 1002));
        assert_eq!(head.rejects[0].text, b"bb");
        assert!(tail.rejects.is_empty());
    }

    #[test]
    fn the_parts_outside_ranges_another_loader_committed_are_kept_whole() {
        // Lines 5 to 9 at bytes 1000, 1002, 1005, 1009 and 1014; the batch ends at 1020.
        let mut batch = batch_of("a\nbb\nccc\ndddd\neeeee\n", 1000, 5);
        batch.reject_row(3, "refused".into());
        let parts = batch.outside(&[(1002, 1009), (1014, 1100)]).unwrap();
        let ranges: Vec<(u64, u64, u64, u64)> = parts
            .iter()
            .map(|part| {
                (
                    part.start_offset,
                    part.end_offset,
                    part.start_line,
                    part.end_line,
                )
            })
            .collect();
        assert_eq!(ranges, [(1000, 1002, 5, 6), (1009, 1014, 8, 9)]);
        assert_eq!(tuple_text(&parts[0], 0), b"a");
        assert_eq!(parts[0].rejects.len(), 0);
        assert!(parts[1].rows.is_empty());
        assert_eq!(parts[1].rejects[0].text, b"dddd");
        assert_eq!(parts[1].raw, b"dddd\n");
        let accounted: u64 = parts.iter().map(Batch::line_count).sum();
        assert_eq!(accounted, 2);
    }

    #[test]
    fn a_committed_range_that_cuts_a_line_is_refused() {
        let batch = batch_of("a\nbb\nccc\n", 0, 1);
        assert!(batch.outside(&[(3, 5)]).is_err());
        let whole = batch_of("a\nbb\n", 0, 1);
        assert!(whole.outside(&[(0, 5)]).unwrap().is_empty());
    }

    #[test]
    fn a_rejected_row_leaves_the_other_tuples_intact() {
        let mut batch = batch_of("one\ntwo\nthree\n", 0, 1);
        batch.reject_row(0, "no".into());
        assert_eq!(batch.rows.len(), 2);
        assert_eq!(tuple_text(&batch, 0), b"two");
        assert_eq!(tuple_text(&batch, 1), b"three");
        assert_eq!(batch.rows[0].copy_start, 0);
        assert_eq!(batch.copy.len(), batch.rows[1].copy_end);
        assert_eq!(batch.rejects[0].offset, 0);
        assert_eq!(batch.rejects[0].text, b"one");
    }

    #[test]
    fn service_numbers_become_ids() {
        let mut batch = batch_of("x\ny\n", 0, 1);
        let second = batch.rows[1];
        tuple::set_service_id(&mut batch.copy[second.copy_start..second.copy_end], 1);
        batch.service_names = vec!["api".into(), "db".into()];
        batch.resolve_services(&[Ok(40), Ok(41)]);
        let ids: Vec<i32> = batch
            .rows
            .iter()
            .map(|row| tuple::service_id_of(&batch.copy[row.copy_start..row.copy_end]))
            .collect();
        assert_eq!(ids, [40, 41]);
        assert!(batch.service_names.is_empty());
        assert_eq!(tuple_text(&batch, 1), b"y");
    }

    #[test]
    fn the_rows_of_a_refused_service_name_are_rejected_with_its_reason() {
        let mut batch = batch_of("a\nb\nc\nd\n", 100, 1);
        for index in [1, 3] {
            let row = batch.rows[index];
            tuple::set_service_id(&mut batch.copy[row.copy_start..row.copy_end], 1);
        }
        batch.service_names = vec!["ok".into(), "x".repeat(4000).into()];
        batch.resolve_services(&[Ok(7), Err(Invalid("too long".into()))]);
        assert_eq!(batch.rows.len(), 2);
        assert_eq!(tuple_text(&batch, 0), b"a");
        assert_eq!(tuple_text(&batch, 1), b"c");
        let rejected: Vec<(u64, u64, &str)> = batch
            .rejects
            .iter()
            .map(|r| (r.line, r.offset, r.reason.as_str()))
            .collect();
        assert_eq!(rejected, [(2, 102, "too long"), (4, 106, "too long")]);
    }
}
