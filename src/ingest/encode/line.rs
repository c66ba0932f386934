//! One log line to one binary COPY tuple: parse with simd-json into a reusable tape,
//! read the event by the line's shape (unwrapping a Docker line's inner JSON), write
//! its tuple. Pure: service names become numbers the caller hands out.

use std::borrow::Cow;

use simd_json::prelude::*;
use simd_json::{Buffers, ErrorType, Tape, tape};
use uuid::Uuid;

use super::event::{Event, Found, Layer, read_event, type_name};
use super::metadata;
use super::shape::ShapeChoice;
use super::timestamp::Zone;
use super::tuple::{Case, NulFound, NulPolicy, TupleWriter};

/// Deeper nesting than this is refused before PostgreSQL's own parser would hit its stack limit.
pub const MAX_DEPTH: usize = 64;

/// How lines are read, independent of where they come from.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    pub shape: ShapeChoice,
    pub zone: Zone,
    pub nul: NulPolicy,
    pub max_line_bytes: usize,
}

/// Numbers service names for the tuples: the load numbers them per batch and the writer
/// turns the numbers into `services.service_id`s; tests and benchmarks number them as
/// they like.
pub trait ServiceIds {
    fn id(&mut self, name: &str) -> i32;
}

/// What became of one line.
#[derive(Debug, PartialEq, Eq)]
pub enum LineOutcome {
    Encoded,
    Blank,
    Rejected(String),
}

/// Parses lines one after another, reusing its buffers so the hot path does not allocate.
pub struct LineEncoder {
    options: ParseOptions,
    outer: Parser,
    inner: Parser,
    ids: EventIds,
}

/// UUIDv7 event ids: the current millisecond, then random bits from a generator seeded
/// once per encoder (the operating system's generator per id costs a system call).
struct EventIds {
    random: rand_chacha::ChaCha8Rng,
}

impl EventIds {
    fn next(&mut self) -> Uuid {
        use rand::Rng;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        let mut random = [0u8; 10];
        self.random.fill_bytes(&mut random);
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }
}

/// A reusable parse buffer and tape.
struct Parser {
    scratch: Vec<u8>,
    buffers: Buffers,
    tape: Tape<'static>,
}

impl Parser {
    fn new() -> Parser {
        Parser {
            scratch: Vec::new(),
            buffers: Buffers::with_max_depth(4096, MAX_DEPTH),
            tape: Tape(Vec::new()),
        }
    }
}

const NUL_REASON: &str =
    "contains U+0000 (\\u0000), which PostgreSQL cannot store; use --strip-nul to drop it";

impl LineEncoder {
    pub fn new(options: ParseOptions) -> LineEncoder {
        LineEncoder {
            options,
            outer: Parser::new(),
            inner: Parser::new(),
            ids: EventIds {
                random: rand::make_rng(),
            },
        }
    }

    pub fn options(&self) -> &ParseOptions {
        &self.options
    }

    /// Appends the line's tuple to `out`, or says why it was not loaded.
    pub fn encode(
        &mut self,
        raw: &[u8],
        services: &mut dyn ServiceIds,
        out: &mut Vec<u8>,
    ) -> LineOutcome {
        if raw.len() > self.options.max_line_bytes {
            return LineOutcome::Rejected(oversized_reason(raw.len(), self.options.max_line_bytes));
        }
        let line = trim_line(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            return LineOutcome::Blank;
        }
        let parser = &mut self.outer;
        parser.scratch.clear();
        // A raw 0x00 byte (not the \u0000 escape) is the same character to PostgreSQL.
        if memchr::memchr(0, line).is_some() {
            if self.options.nul == NulPolicy::Reject {
                return LineOutcome::Rejected(NUL_REASON.to_string());
            }
            parser
                .scratch
                .extend(line.iter().copied().filter(|&byte| byte != 0));
        } else {
            parser.scratch.extend_from_slice(line);
        }
        let length = parser.scratch.len();
        parser.scratch.resize(length + simd_json::INPUT_PADDING, 0);
        let mut tape = std::mem::replace(&mut parser.tape, Tape(Vec::new())).reset();
        let parsed = simd_json::fill_tape_padded(
            &mut parser.scratch,
            length,
            &mut parser.buffers,
            &mut tape,
        );
        let outcome = match parsed {
            Err(error) => LineOutcome::Rejected(json_error_reason(&error, line)),
            Ok(()) => encode_event(
                tape.as_value(),
                self.ids.next(),
                &self.options,
                &mut self.inner,
                services,
                out,
            ),
        };
        parser.tape = tape.reset();
        outcome
    }
}

pub(super) fn oversized_reason(length: usize, limit: usize) -> String {
    format!("line is {length} bytes, over the --max-line-bytes limit of {limit}")
}

/// Drops a UTF-8 byte-order mark and the CR of a CRLF ending.
fn trim_line(raw: &[u8]) -> &[u8] {
    let line = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Why a line is not JSON, for a person: what was expected where, and what is there.
/// simd-json's kinds and offsets are those of its stages (an "internal error" at 0 is a
/// line that does not start a value; a "syntax" error can be a string left open), so
/// each is put in the words of the line as written.
fn json_error_reason(error: &simd_json::Error, line: &[u8]) -> String {
    let at = error.index().min(line.len());
    let after_opening = |open: u8| {
        line[..at]
            .iter()
            .rev()
            .find(|byte| !byte.is_ascii_whitespace())
            .is_some_and(|&byte| byte == open || byte == b',')
    };
    let (expected, at) = match error.error() {
        ErrorType::InvalidUtf8 => return "the line is not valid UTF-8 text".to_string(),
        ErrorType::DepthLimitExceeded => {
            return format!("the JSON is nested deeper than {MAX_DEPTH} levels");
        }
        ErrorType::InvalidNumber | ErrorType::InvalidExponent => (
            "a number logctl can read (digits without leading zeros, up to 128-bit \
             integers and 64-bit floats)",
            at,
        ),
        ErrorType::ExpectedNull => ("`null` (text must be in double quotes)", at),
        ErrorType::ExpectedTrue => ("`true` (text must be in double quotes)", at),
        ErrorType::ExpectedFalse => ("`false` (text must be in double quotes)", at),
        ErrorType::ExpectedObjectColon => ("`:` after the key", at),
        ErrorType::ExpectedObjectKey => ("a key in double quotes", at),
        ErrorType::ExpectedObjectContent if after_opening(b'{') => ("a key in double quotes", at),
        ErrorType::ExpectedObjectContent | ErrorType::ExpectedMapComma => {
            ("`,` or `}` after a value", at)
        }
        ErrorType::ExpectedArrayContent if after_opening(b'[') => ("a value", at),
        ErrorType::ExpectedArrayContent | ErrorType::ExpectedArrayComma => {
            ("`,` or `]` after a value", at)
        }
        ErrorType::InvalidEscape
        | ErrorType::InvalidUnicodeEscape
        | ErrorType::InvalidUnicodeCodepoint => (
            "an escape such as \\n, \\\" or \\u00e9",
            bad_escape(line).unwrap_or(at),
        ),
        ErrorType::InternalError if at == 0 => ("a JSON value: an object such as {\"ts\": ...}", 0),
        // After a whole value: at its last character.
        ErrorType::InternalError | ErrorType::TrailingData => {
            ("the end of the line after the JSON value", at + 1)
        }
        _ => match open_string(line) {
            Some(start) => {
                return format!(
                    "not JSON: the string that starts at byte {} has no closing `\"`",
                    start + 1
                );
            }
            None => ("more: the line ends inside its JSON", line.len()),
        },
    };
    format!(
        "not JSON: expected {expected} at byte {}, found {}",
        at + 1,
        found_at(line, at)
    )
}

/// Where a string still open at the end of the line starts.
fn open_string(line: &[u8]) -> Option<usize> {
    let (mut start, mut escaped) = (None, false);
    for (index, &byte) in line.iter().enumerate() {
        match start {
            None if byte == b'"' => start = Some(index),
            Some(_) if escaped => escaped = false,
            Some(_) if byte == b'\\' => escaped = true,
            Some(_) if byte == b'"' => start = None,
            _ => {}
        }
    }
    start
}

/// Where the first backslash that starts no JSON escape is.
fn bad_escape(line: &[u8]) -> Option<usize> {
    let mut index = 0;
    while index + 1 < line.len() {
        if line[index] == b'\\' {
            if !b"\"\\/bfnrtu".contains(&line[index + 1]) {
                return Some(index);
            }
            index += 1;
        }
        index += 1;
    }
    None
}

/// What a line holds at a byte offset, quoted and short, for a reject reason.
fn found_at(line: &[u8], at: usize) -> String {
    const SHOWN: usize = 12;
    let Some(rest) = line.get(at..).filter(|rest| !rest.is_empty()) else {
        return "the end of the line".to_string();
    };
    let shown = String::from_utf8_lossy(&rest[..rest.len().min(SHOWN)]);
    let more = if rest.len() > SHOWN { "…" } else { "" };
    format!("`{shown}{more}`")
}

fn encode_event(
    root: tape::Value<'_, '_>,
    id: Uuid,
    options: &ParseOptions,
    inner: &mut Parser,
    services: &mut dyn ServiceIds,
    out: &mut Vec<u8>,
) -> LineOutcome {
    let Some(object) = root.as_object() else {
        return LineOutcome::Rejected(format!("line is a JSON {}, not an object", type_name(root)));
    };
    let shape = options.shape.pick(object.keys());
    let outer = Layer {
        object,
        shape,
        unwrapped: None,
    };
    let inner_text = shape
        .inner_line
        .and_then(|key| outer.object.get(key))
        .and_then(|value| value.into_string())
        .map(str::trim)
        .filter(|text| text.starts_with('{'));
    let Some(text) = inner_text else {
        return encode_layers(&[outer], id, options, services, out);
    };
    inner.scratch.clear();
    inner.scratch.extend_from_slice(text.as_bytes());
    let length = inner.scratch.len();
    inner.scratch.resize(length + simd_json::INPUT_PADDING, 0);
    let mut tape = std::mem::replace(&mut inner.tape, Tape(Vec::new())).reset();
    let parsed =
        simd_json::fill_tape_padded(&mut inner.scratch, length, &mut inner.buffers, &mut tape);
    let inner_object = parsed.ok().and_then(|()| tape.as_value().as_object());
    let outcome = match inner_object {
        Some(object) => {
            let inner_shape = options.shape.pick(object.keys());
            let inner_layer = Layer {
                object,
                shape: inner_shape,
                unwrapped: None,
            };
            let wrapper = Layer {
                unwrapped: shape.inner_line,
                ..outer
            };
            encode_layers(&[inner_layer, wrapper], id, options, services, out)
        }
        // Not JSON after all: the text is the message.
        None => encode_layers(&[outer], id, options, services, out),
    };
    inner.tape = tape.reset();
    outcome
}

fn encode_layers(
    layers: &[Layer<'_, '_, '_>],
    id: Uuid,
    options: &ParseOptions,
    services: &mut dyn ServiceIds,
    out: &mut Vec<u8>,
) -> LineOutcome {
    let mut level_number = itoa::Buffer::new();
    let (event, found) = match read_event(layers, options.zone, &mut level_number) {
        Ok(read) => read,
        Err(invalid) => return LineOutcome::Rejected(invalid.0),
    };
    let service = if memchr::memchr(0, event.service.as_bytes()).is_some() {
        if options.nul == NulPolicy::Reject {
            return LineOutcome::Rejected(NUL_REASON.to_string());
        }
        Cow::Owned(event.service.replace('\0', "").trim().to_string())
    } else {
        Cow::Borrowed(event.service)
    };
    let service_id = services.id(&service);
    let row_start = out.len();
    match write_tuple(&event, id, service_id, layers, &found, options.nul, out) {
        Ok(()) => LineOutcome::Encoded,
        Err(NulFound) => {
            out.truncate(row_start);
            LineOutcome::Rejected(NUL_REASON.to_string())
        }
    }
}

/// Appends one event's tuple: its typed fields, then the rest of the line as metadata.
fn write_tuple(
    event: &Event<'_>,
    id: Uuid,
    service_id: i32,
    layers: &[Layer<'_, '_, '_>],
    found: &Found<'_, '_>,
    nul: NulPolicy,
    out: &mut Vec<u8>,
) -> Result<(), NulFound> {
    let mut tuple = TupleWriter::begin(out, nul);
    tuple.uuid(Some(&id));
    tuple.int4(Some(service_id));
    tuple.timestamptz(event.created_at);
    tuple.text(event.level, Case::Lower)?;
    tuple.text(event.message, Case::AsIs)?;
    tuple.text(event.endpoint, Case::AsIs)?;
    tuple.text(event.method, Case::Upper)?;
    tuple.int2(event.status);
    tuple.int4(event.latency_ms);
    tuple.uuid(event.request_id.as_ref());
    tuple.jsonb(|json| metadata::write(json, event, layers, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::encode::ShapeChoice;

    struct OneService;

    impl ServiceIds for OneService {
        fn id(&mut self, _: &str) -> i32 {
            1
        }
    }

    fn reason(line: &str) -> String {
        let mut encoder = LineEncoder::new(ParseOptions {
            shape: ShapeChoice::new(None, &[], None).unwrap(),
            zone: Default::default(),
            nul: NulPolicy::Reject,
            max_line_bytes: 1 << 20,
        });
        match encoder.encode(line.as_bytes(), &mut OneService, &mut Vec::new()) {
            LineOutcome::Rejected(reason) => reason,
            _ => panic!("`{line}` is not rejected"),
        }
    }

    #[test]
    fn reasons_say_what_was_expected_where_in_words() {
        for (line, expected) in [
            (
                "hello world",
                "expected a JSON value: an object such as {\"ts\": ...} at byte 1, found `hello world`",
            ),
            (
                "{\"ts\": nul}",
                "expected `null` (text must be in double quotes) at byte 8, found `nul}`",
            ),
            (
                "{\"a\" 1}",
                "expected `:` after the key at byte 6, found `1}`",
            ),
            (
                "{\"a\":1 \"b\":2}",
                "expected `,` or `}` after a value at byte 8, found `\"b\":2}`",
            ),
            (
                "{a:1}",
                "expected a key in double quotes at byte 2, found `a:1}`",
            ),
            (
                "{\"a\":1,}",
                "expected a key in double quotes at byte 8, found `}`",
            ),
            (
                "[1 2]",
                "expected `,` or `]` after a value at byte 4, found `2]`",
            ),
            (
                "{\"a\":\"open",
                "the string that starts at byte 6 has no closing `\"`",
            ),
            (
                "{\"a\":1} x",
                "expected the end of the line after the JSON value at byte 8, found ` x`",
            ),
            (
                "{\"a\":",
                "expected more: the line ends inside its JSON at byte 6, found the end of the line",
            ),
            (
                "{\"a\":\"\\q\"}",
                "expected an escape such as \\n, \\\" or \\u00e9 at byte 7, found `\\q\"}`",
            ),
            ("{\"a\":01}", "expected a number logctl can read"),
        ] {
            let reason = reason(line);
            assert!(reason.contains(expected), "`{line}`: {reason}");
            assert!(
                !reason.contains("Error") && !reason.contains("Expected"),
                "`{line}`: {reason}"
            );
        }
    }
}
