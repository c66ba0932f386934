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
        parsed.unwrap_or_else(|error| LineOutcome::Rejected(json_error_reason(&error)))
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

fn json_error_reason(error: &simd_json::Error) -> String {
    match error.error() {
        ErrorType::InvalidUtf8 => "invalid UTF-8".to_string(),
        ErrorType::InvalidNumber => format!(
            "invalid JSON: a malformed number at character {}",
            error.index()
        ),
        ErrorType::DepthLimitExceeded => format!("JSON nested deeper than {MAX_DEPTH} levels"),
        _ => format!("invalid JSON: {error}"),
    }
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
