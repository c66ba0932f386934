//! One log line to one binary COPY tuple: parse with simd-json into a reusable tape,
//! read the event by the line's shape (unwrapping a Docker line's inner JSON), write
//! its tuple. Pure: service names become numbers the caller hands out.

use std::borrow::Cow;

use simd_json::prelude::*;
use simd_json::{Buffers, ErrorType, Tape, tape};
use uuid::Uuid;

use super::event::{Event, Found, Layer, read_event, type_name};
use super::metadata;
use super::numbers::{self, Written};
use super::route::{RouteFinder, Routes};
use super::shape::ShapeChoice;
use super::timestamp::Zone;
use super::tuple::{Case, NulFound, NulPolicy, TupleWriter};
use crate::Invalid;

/// Deeper nesting than this is refused before PostgreSQL's own parser would hit its stack limit.
pub const MAX_DEPTH: usize = 64;

/// How lines are read, independent of where they come from.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    pub shape: ShapeChoice,
    pub zone: Zone,
    pub nul: NulPolicy,
    pub max_line_bytes: usize,
    /// How endpoints become routes.
    pub routes: Routes,
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
    /// The line without its raw 0x00 bytes, when --strip-nul drops them.
    without_nul: Vec<u8>,
    ids: EventIds,
    routes: RouteFinder,
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

    /// Parses `text` and hands its root, and where its values lie in `text`, to `read`.
    fn parse<R>(
        &mut self,
        text: &[u8],
        read: impl FnOnce(tape::Value<'_, '_>, Written<'_>) -> R,
    ) -> Result<R, simd_json::Error> {
        self.load(text);
        let mut tape = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let mut parsed = simd_json::fill_tape_padded(
            &mut self.scratch,
            text.len(),
            &mut self.buffers,
            &mut tape,
        );
        // A number simd-json cannot read fails the parse; then, and only then, the text is
        // parsed again with stand-ins for such numbers, which `text` still holds as written.
        if parsed
            .as_ref()
            .is_err_and(|error| *error.error() == ErrorType::InvalidNumber)
        {
            let mut again = tape.reset();
            self.load(text);
            if numbers::stand_in_unreadable(&mut self.scratch[..text.len()]) {
                parsed = simd_json::fill_tape_padded(
                    &mut self.scratch,
                    text.len(),
                    &mut self.buffers,
                    &mut again,
                );
            }
            tape = again;
        }
        let result = parsed.map(|()| {
            read(
                tape.as_value(),
                Written::new(text, self.buffers.structural_indexes()),
            )
        });
        self.tape = tape.reset();
        result
    }

    /// Copies `text` into the scratch buffer, with the padding simd-json reads past its end.
    fn load(&mut self, text: &[u8]) {
        self.scratch.clear();
        self.scratch.extend_from_slice(text);
        self.scratch
            .resize(text.len() + simd_json::INPUT_PADDING, 0);
    }
}

const NUL_REASON: &str =
    "contains U+0000 (\\u0000), which PostgreSQL cannot store; use --strip-nul to drop it";

impl From<NulFound> for Invalid {
    fn from(_: NulFound) -> Invalid {
        Invalid(NUL_REASON.to_string())
    }
}

impl LineEncoder {
    pub fn new(options: ParseOptions) -> LineEncoder {
        LineEncoder {
            routes: RouteFinder::new(options.routes.clone()),
            options,
            outer: Parser::new(),
            inner: Parser::new(),
            without_nul: Vec::new(),
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
        // A raw 0x00 byte (not the \u0000 escape) is the same character to PostgreSQL.
        let text = if memchr::memchr(0, line).is_some() {
            if self.options.nul == NulPolicy::Reject {
                return LineOutcome::Rejected(NUL_REASON.to_string());
            }
            self.without_nul.clear();
            self.without_nul
                .extend(line.iter().copied().filter(|&byte| byte != 0));
            &self.without_nul[..]
        } else {
            line
        };
        let id = self.ids.next();
        let parsed = self.outer.parse(text, |root, written| {
            encode_event(
                root,
                written,
                id,
                &self.options,
                &mut self.inner,
                &mut Names {
                    services: &mut *services,
                    routes: &mut self.routes,
                },
                out,
            )
        });
        parsed.unwrap_or_else(|error| LineOutcome::Rejected(json_error_reason(&error, text)))
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
            "a number in JSON's form (digits without leading zeros, then an optional \
             fraction and exponent)",
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
    written: Written<'_>,
    id: Uuid,
    options: &ParseOptions,
    inner: &mut Parser,
    names: &mut Names<'_>,
    out: &mut Vec<u8>,
) -> LineOutcome {
    let Some(object) = root.as_object() else {
        return LineOutcome::Rejected(format!("line is a JSON {}, not an object", type_name(root)));
    };
    let shape = options.shape.pick(object.keys());
    let inner_text = shape
        .inner_line
        .and_then(|key| object.get(key))
        .and_then(|value| value.into_string())
        .map(str::trim)
        .filter(|text| text.starts_with('{'));
    let outer = Layer {
        object,
        shape,
        unwrapped: None,
        written,
    };
    let Some(text) = inner_text else {
        return encode_layers(&[outer], id, options, names, out);
    };
    let unwrapped = inner.parse(text.as_bytes(), |inner_root, inner_written| {
        let object = inner_root.as_object()?;
        let inner_layer = Layer {
            shape: options.shape.pick(object.keys()),
            object,
            unwrapped: None,
            written: inner_written,
        };
        // The outer object again: `outer` stays for a text that is not JSON.
        let wrapper = Layer {
            object: root.as_object()?,
            shape,
            unwrapped: shape.inner_line,
            written,
        };
        Some(encode_layers(
            &[inner_layer, wrapper],
            id,
            options,
            names,
            out,
        ))
    });
    // Not JSON after all: the text is the message.
    unwrapped
        .ok()
        .flatten()
        .unwrap_or_else(|| encode_layers(&[outer], id, options, names, out))
}

fn encode_layers(
    layers: &[Layer<'_, '_, '_>],
    id: Uuid,
    options: &ParseOptions,
    names: &mut Names<'_>,
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
    let service_id = names.services.id(&service);
    let route = event
        .endpoint
        .map(|endpoint| names.routes.route(&service, endpoint));
    let row_start = out.len();
    let tuple = Tuple {
        event: &event,
        id,
        service_id,
        route: route.as_deref(),
    };
    match write_tuple(&tuple, layers, &found, options.nul, out) {
        Ok(()) => LineOutcome::Encoded,
        Err(Invalid(reason)) => {
            out.truncate(row_start);
            LineOutcome::Rejected(reason)
        }
    }
}

/// What a line's names become: its service's number and its route.
struct Names<'n> {
    services: &'n mut dyn ServiceIds,
    routes: &'n mut RouteFinder,
}

/// What a tuple holds besides the rest of the line.
struct Tuple<'e, 'i> {
    event: &'e Event<'i>,
    id: Uuid,
    service_id: i32,
    route: Option<&'e str>,
}

/// Appends one event's tuple: its typed fields, the rest of the line as metadata, and
/// its route.
fn write_tuple(
    Tuple {
        event,
        id,
        service_id,
        route,
    }: &Tuple<'_, '_>,
    layers: &[Layer<'_, '_, '_>],
    found: &Found<'_, '_, '_>,
    nul: NulPolicy,
    out: &mut Vec<u8>,
) -> Result<(), Invalid> {
    let mut tuple = TupleWriter::begin(out, nul);
    tuple.uuid(Some(id));
    tuple.int4(Some(*service_id));
    tuple.timestamptz(event.created_at);
    tuple.text(event.level, Case::Lower)?;
    tuple.text(event.message, Case::AsIs)?;
    tuple.text(event.endpoint, Case::AsIs)?;
    tuple.text(event.method, Case::Upper)?;
    tuple.int2(event.status);
    tuple.int4(event.latency_ms);
    tuple.uuid(event.request_id.as_ref());
    tuple.jsonb(|json| metadata::write(json, event, layers, found))?;
    tuple.text(*route, Case::AsIs)?;
    Ok(())
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
            routes: Default::default(),
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
            ("{\"a\":01}", "expected a number in JSON's form"),
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
