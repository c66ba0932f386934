//! Splits a source into chunks of whole lines, each knowing its byte offset and
//! first line number, with memory bounded by the chunk size and --max-line-bytes.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use super::source::Opened;
use crate::ingest::buffers::BufferPool;

const READ_SIZE: usize = 256 * 1024;
/// How much of an oversized line is kept for the reject report.
pub const OVERSIZED_PREFIX: usize = 1024;

/// A stretch of a source not yet committed: from `start` to `end` (None: to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub start: u64,
    pub end: Option<u64>,
    pub start_line: u64,
}

/// Whole lines from one source.
#[derive(Debug)]
pub struct Chunk {
    pub start_offset: u64,
    pub end_offset: u64,
    pub start_line: u64,
    pub end_line: u64,
    /// Complete lines; the last one lacks its newline only when the stream ended there.
    pub data: Vec<u8>,
    /// Set for a line over --max-line-bytes, which was skipped without being kept in memory.
    pub oversized: Option<Oversized>,
}

impl Chunk {
    /// A stretch of bytes that holds no line (a file's leading run of NULs), recorded in
    /// the ledger like lines so that it is not read again.
    pub fn no_lines(start: u64, end: u64, line: u64) -> Chunk {
        Chunk {
            start_offset: start,
            end_offset: end,
            start_line: line,
            end_line: line,
            data: Vec::new(),
            oversized: None,
        }
    }

    /// A chunk of whole lines starting at `offset`, line number `line`; a last line
    /// without its newline (the end of a complete stream) counts as a line.
    fn of_lines(offset: u64, line: u64, data: Vec<u8>) -> Chunk {
        let newlines = memchr::memchr_iter(b'\n', &data).count() as u64;
        let unterminated = u64::from(!data.is_empty() && !data.ends_with(b"\n"));
        Chunk {
            start_offset: offset,
            end_offset: offset + data.len() as u64,
            start_line: line,
            end_line: line + newlines + unterminated,
            data,
            oversized: None,
        }
    }
}

#[derive(Debug)]
pub struct Oversized {
    /// The line's length, without its newline.
    pub length: u64,
    pub prefix: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub chunk_bytes: usize,
    pub max_line_bytes: usize,
}

/// How reading a gap ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GapEnd {
    /// Bytes of an unterminated last line left for the next run.
    pub pending_bytes: u64,
    /// Reading stopped early (interrupted, or the consumer went away).
    pub stopped: bool,
}

const STOPPED: GapEnd = GapEnd {
    pending_bytes: 0,
    stopped: true,
};

/// Reads one gap, handing each chunk to `emit`, which returns false to stop.
pub fn read_gap(
    stream: &mut Opened,
    gap: Gap,
    limits: ReadLimits,
    stop: &AtomicBool,
    buffers: &BufferPool,
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> io::Result<GapEnd> {
    stream.seek_to(gap.start)?;
    let ends_complete = stream.ends_complete;
    let mut offset = gap.start;
    let mut line = gap.start_line;
    let mut buf = buffers.take(limits.chunk_bytes + READ_SIZE);
    loop {
        if stop.load(Ordering::Relaxed) && !stream.gives_way_to_stop {
            emit_complete_lines(buf, offset, line, emit);
            return Ok(STOPPED);
        }
        let wanted = match gap.end {
            Some(end) => end
                .checked_sub(offset + buf.len() as u64)
                .expect("never read past the end of a gap")
                .min(READ_SIZE as u64) as usize,
            None => READ_SIZE,
        };
        let at_end = if wanted == 0 {
            true
        } else {
            let filled = buf.len();
            buf.resize(filled + wanted, 0);
            let n = match read_retrying(stream, &mut buf[filled..]) {
                Ok(n) => n,
                Err(error) => {
                    // A corrupt or truncated stream, or a stop while waiting for data: the
                    // complete lines before that point still count.
                    buf.truncate(filled);
                    emit_complete_lines(buf, offset, line, emit);
                    return Err(error);
                }
            };
            buf.truncate(filled + n);
            n == 0
        };
        while buf.len() >= limits.chunk_bytes || (at_end && !buf.is_empty()) {
            match memchr::memrchr(b'\n', &buf) {
                Some(newline) => {
                    let mut next = buffers.take(limits.chunk_bytes + READ_SIZE);
                    next.extend_from_slice(&buf[newline + 1..]);
                    buf.truncate(newline + 1);
                    let data = std::mem::replace(&mut buf, next);
                    let chunk = Chunk::of_lines(offset, line, data);
                    offset = chunk.end_offset;
                    line = chunk.end_line;
                    if !emit(chunk) {
                        return Ok(STOPPED);
                    }
                }
                None if buf.len() > limits.max_line_bytes => {
                    let unread_in_gap = gap.end.map(|end| end - offset - buf.len() as u64);
                    let skipped = skip_oversized(
                        stream,
                        &mut buf,
                        offset,
                        line,
                        ends_complete,
                        unread_in_gap,
                    )?;
                    let chunk = match skipped {
                        Skipped::Line(chunk) => chunk,
                        Skipped::Unterminated(length) => {
                            return Ok(GapEnd {
                                pending_bytes: length,
                                stopped: false,
                            });
                        }
                    };
                    offset = chunk.end_offset;
                    line = chunk.end_line;
                    if !emit(chunk) {
                        return Ok(STOPPED);
                    }
                }
                None if at_end && ends_complete => {
                    let chunk = Chunk::of_lines(offset, line, std::mem::take(&mut buf));
                    return Ok(GapEnd {
                        pending_bytes: 0,
                        stopped: !emit(chunk),
                    });
                }
                None if at_end => {
                    return Ok(GapEnd {
                        pending_bytes: buf.len() as u64,
                        stopped: false,
                    });
                }
                None => break,
            }
        }
        if at_end {
            return Ok(GapEnd::default());
        }
    }
}

/// Hands on the complete lines at the start of `buf`, whose reading ended early; a
/// partial last line is left out.
fn emit_complete_lines(
    mut buf: Vec<u8>,
    offset: u64,
    line: u64,
    emit: &mut dyn FnMut(Chunk) -> bool,
) {
    if let Some(newline) = memchr::memrchr(b'\n', &buf) {
        buf.truncate(newline + 1);
        emit(Chunk::of_lines(offset, line, buf));
    }
}

enum Skipped {
    Line(Chunk),
    /// The data ended inside the line, in a file that may still be written to.
    Unterminated(u64),
}

/// Skips the rest of a line that is already over the limit, keeping only its start,
/// and never reading past `unread_in_gap` (the end of the gap being read).
fn skip_oversized(
    stream: &mut Opened,
    buf: &mut Vec<u8>,
    offset: u64,
    line: u64,
    ends_complete: bool,
    mut unread_in_gap: Option<u64>,
) -> io::Result<Skipped> {
    let prefix = buf[..OVERSIZED_PREFIX.min(buf.len())].to_vec();
    let mut length = buf.len() as u64;
    buf.clear();
    let mut scratch = vec![0u8; READ_SIZE];
    let mut newline_found = false;
    loop {
        let wanted =
            unread_in_gap.map_or(READ_SIZE, |unread| unread.min(READ_SIZE as u64) as usize);
        let n = if wanted == 0 {
            0
        } else {
            read_retrying(stream, &mut scratch[..wanted])?
        };
        if let Some(unread) = &mut unread_in_gap {
            *unread -= n as u64;
        }
        if n == 0 {
            if !ends_complete {
                return Ok(Skipped::Unterminated(length));
            }
            break;
        }
        if let Some(newline) = memchr::memchr(b'\n', &scratch[..n]) {
            length += newline as u64 + 1;
            buf.extend_from_slice(&scratch[newline + 1..n]);
            newline_found = true;
            break;
        }
        length += n as u64;
    }
    Ok(Skipped::Line(Chunk {
        start_offset: offset,
        end_offset: offset + length,
        start_line: line,
        end_line: line + 1,
        data: Vec::new(),
        oversized: Some(Oversized {
            length: length - u64::from(newline_found),
            prefix,
        }),
    }))
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::read::inputs::Input;
    use std::sync::Arc;

    fn chunks_of(content: &[u8], gap: Gap, limits: ReadLimits) -> (Vec<Chunk>, GapEnd) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        std::fs::write(&path, content).unwrap();
        let mut opened = Opened::open(&Input::File(path), Arc::default(), &Arc::default()).unwrap();
        let mut chunks = Vec::new();
        let end = read_gap(
            &mut opened,
            gap,
            limits,
            &AtomicBool::new(false),
            &BufferPool::new(2),
            &mut |c| {
                chunks.push(c);
                true
            },
        )
        .unwrap();
        (chunks, end)
    }

    const ALL: Gap = Gap {
        start: 0,
        end: None,
        start_line: 1,
    };

    #[test]
    fn chunks_hold_whole_lines_and_a_partial_tail_waits() {
        let content = b"aaaa\nbbbb\ncccc\ndd";
        let (chunks, end) = chunks_of(
            content,
            ALL,
            ReadLimits {
                chunk_bytes: 6,
                max_line_bytes: 100,
            },
        );
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, b"aaaa\nbbbb\ncccc\n");
        assert_eq!(end.pending_bytes, 2);
        assert_eq!(chunks[0].start_line, 1);
        assert_eq!(chunks.last().unwrap().end_line, 4);
        assert_eq!(chunks.last().unwrap().end_offset, 15);
        for pair in chunks.windows(2) {
            assert_eq!(pair[0].end_offset, pair[1].start_offset);
            assert_eq!(pair[0].end_line, pair[1].start_line);
        }
    }

    #[test]
    fn a_gap_is_read_exactly() {
        let content = b"l1\nl2\nl3\nl4\n";
        let gap = Gap {
            start: 3,
            end: Some(9),
            start_line: 2,
        };
        let (chunks, _) = chunks_of(
            content,
            gap,
            ReadLimits {
                chunk_bytes: 1024,
                max_line_bytes: 100,
            },
        );
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].data, b"l2\nl3\n");
        assert_eq!((chunks[0].start_line, chunks[0].end_line), (2, 4));
    }

    #[test]
    fn an_oversized_line_inside_a_bounded_gap_stops_at_the_gap_end() {
        let mut content = b"ok\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 600_000));
        content.extend_from_slice(b"\nnext\ncommitted already\n");
        let gap_end = 3 + 600_001 + 5;
        let gap = Gap {
            start: 3,
            end: Some(gap_end),
            start_line: 2,
        };
        let (chunks, end) = chunks_of(
            &content,
            gap,
            ReadLimits {
                chunk_bytes: 64,
                max_line_bytes: 100,
            },
        );
        assert_eq!(end, GapEnd::default());
        assert_eq!(chunks.last().unwrap().end_offset, gap_end);
        assert_eq!(chunks.last().unwrap().data, b"next\n");
    }

    /// Reads a FIFO whose writer sends `lines`, then part of a line, then goes quiet
    /// until the load stops; returns the chunks and how reading ended.
    fn read_quiet_fifo(lines: &[u8]) -> (Vec<Chunk>, io::Result<GapEnd>) {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) reads a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
        let (quiet_until, writer_may_close) = std::sync::mpsc::channel::<()>();
        let writer = {
            let (fifo, mut sent) = (fifo.clone(), lines.to_vec());
            sent.extend_from_slice(b"part");
            std::thread::spawn(move || {
                let mut writer = std::fs::File::options().write(true).open(fifo).unwrap();
                std::io::Write::write_all(&mut writer, &sent).unwrap();
                let _ = writer_may_close.recv();
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                stop.store(true, Ordering::Relaxed);
            })
        };
        let mut opened = Opened::open(&Input::File(fifo), Arc::default(), &stop).unwrap();
        let mut chunks = Vec::new();
        let limits = ReadLimits {
            chunk_bytes: 64 * 1024,
            max_line_bytes: 1024,
        };
        let result = read_gap(
            &mut opened,
            ALL,
            limits,
            &stop,
            &BufferPool::new(2),
            &mut |c| {
                chunks.push(c);
                true
            },
        );
        drop(quiet_until);
        writer.join().unwrap();
        stopper.join().unwrap();
        (chunks, result)
    }

    #[test]
    fn a_stop_while_a_fifo_is_quiet_keeps_its_complete_lines_only() {
        // Stopped while the first kilobyte (the identity) was still awaited.
        let (chunks, result) = read_quiet_fifo(b"l1\nl2\n");
        assert!(result.is_err(), "a read that gave way to the stop");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].data, b"l1\nl2\n");
        assert_eq!((chunks[0].start_line, chunks[0].end_line), (1, 3));
        // Stopped while waiting for more after it.
        let lines: Vec<u8> = (0..300)
            .flat_map(|n| format!("{n:05}\n").into_bytes())
            .collect();
        let (chunks, result) = read_quiet_fifo(&lines);
        assert!(result.is_err(), "a read that gave way to the stop");
        let read: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(read, lines);
        assert_eq!(chunks.last().unwrap().end_line, 301);
    }

    #[test]
    fn oversized_lines_are_skipped_not_buffered() {
        let mut content = b"ok\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 600_000));
        content.extend_from_slice(b"\nafter\n");
        let (chunks, _) = chunks_of(
            &content,
            ALL,
            ReadLimits {
                chunk_bytes: 64,
                max_line_bytes: 100,
            },
        );
        let oversized: Vec<&Chunk> = chunks.iter().filter(|c| c.oversized.is_some()).collect();
        assert_eq!(oversized.len(), 1);
        assert_eq!(oversized[0].start_line, 2);
        assert_eq!(oversized[0].oversized.as_ref().unwrap().length, 600_000);
        assert_eq!(oversized[0].end_offset - oversized[0].start_offset, 600_001);
        let last = chunks.last().unwrap();
        assert_eq!(last.data, b"after\n");
        assert_eq!(last.start_line, 3);
    }
}
