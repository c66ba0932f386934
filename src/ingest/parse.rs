//! One log line to one binary COPY tuple: parse with simd-json into a reusable
//! tape, pick the typed columns by the line's shape, keep the rest as metadata.

use simd_json::prelude::*;
use simd_json::{Buffers, ErrorType, Tape, tape};
use uuid::Uuid;

use super::copy::{Case, JsonWriter, NulFound, NulPolicy, TupleWriter};
use super::shape::{FIELD_COUNT, Field, KeyTable, Shape, ShapeChoice, Unit};
use super::timestamp::{self, Zone};

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

/// Maps a service name to its `services.service_id`, creating it on first sight.
pub trait ServiceIds {
    fn id(&mut self, name: &str) -> anyhow::Result<i32>;
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
    /// Only a failure to resolve a service (a database error) is an `Err`.
    pub fn encode(
        &mut self,
        raw: &[u8],
        services: &mut dyn ServiceIds,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<LineOutcome> {
        if raw.len() > self.options.max_line_bytes {
            return Ok(LineOutcome::Rejected(oversized_reason(
                raw.len(),
                self.options.max_line_bytes,
            )));
        }
        let line = trim_line(raw);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(LineOutcome::Blank);
        }
        let parser = &mut self.outer;
        parser.scratch.clear();
        // A raw 0x00 byte (not the \u0000 escape) is the same character to PostgreSQL.
        if memchr::memchr(0, line).is_some() {
            if self.options.nul == NulPolicy::Reject {
                return Ok(LineOutcome::Rejected(NUL_REASON.to_string()));
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
            Err(error) => Ok(LineOutcome::Rejected(json_error_reason(&error))),
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

pub fn oversized_reason(length: usize, limit: usize) -> String {
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
            "a number beyond what logctl reads (128-bit integers, 64-bit floats) at character {}",
            error.index()
        ),
        ErrorType::DepthLimitExceeded => format!("JSON nested deeper than {MAX_DEPTH} levels"),
        _ => format!("invalid JSON: {error}"),
    }
}

type Found<'t, 'i> = [Option<Candidate<'t, 'i>>; FIELD_COUNT];

#[derive(Clone, Copy)]
struct Candidate<'t, 'i> {
    priority: u8,
    unit: Unit,
    key: &'i str,
    value: tape::Value<'t, 'i>,
}

/// The typed columns of one event, borrowed from the parsed line.
struct Columns<'i> {
    created_at: i64,
    service: &'i str,
    level: Option<&'i str>,
    message: Option<&'i str>,
    endpoint: Option<&'i str>,
    method: Option<&'i str>,
    status: Option<i16>,
    latency_ms: Option<i32>,
    request_id: Option<Uuid>,
    request_id_text: Option<&'i str>,
}

/// One object of a line and the shape it is read with. A Docker line has two: the
/// application's own JSON inside `log`, then the wrapper, which fills in what the
/// inner line lacks (its time) and keeps its other keys (`stream`) as metadata.
struct Layer<'s, 't, 'i> {
    object: tape::Object<'t, 'i>,
    shape: &'s Shape,
    /// The wrapper key that held the inner line, neither a column nor metadata.
    unwrapped: Option<&'static str>,
}

fn encode_event(
    root: tape::Value<'_, '_>,
    id: Uuid,
    options: &ParseOptions,
    inner: &mut Parser,
    services: &mut dyn ServiceIds,
    out: &mut Vec<u8>,
) -> anyhow::Result<LineOutcome> {
    let Some(object) = root.as_object() else {
        return Ok(LineOutcome::Rejected(format!(
            "line is a JSON {}, not an object",
            type_name(root)
        )));
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
) -> anyhow::Result<LineOutcome> {
    let mut found: Found = [None; FIELD_COUNT];
    for layer in layers {
        let mut own: Found = [None; FIELD_COUNT];
        collect(&layer.object, &layer.shape.root, layer.unwrapped, &mut own);
        for (slot, candidate) in found.iter_mut().zip(own) {
            if slot.is_none() {
                *slot = candidate;
            }
        }
    }
    // A request id that is not a string (pino's counters) has no uuid column value and
    // stays where it was in metadata.
    let slot = &mut found[Field::RequestId.index()];
    if slot.is_some_and(|candidate| candidate.value.into_string().is_none()) {
        *slot = None;
    }
    let mut level_number = itoa::Buffer::new();
    let columns = match columns(&found, layers, options.zone, &mut level_number) {
        Ok(columns) => columns,
        Err(reason) => return Ok(LineOutcome::Rejected(reason)),
    };
    let service = if memchr::memchr(0, columns.service.as_bytes()).is_some() {
        if options.nul == NulPolicy::Reject {
            return Ok(LineOutcome::Rejected(NUL_REASON.to_string()));
        }
        columns.service.replace('\0', "").trim().to_string()
    } else {
        columns.service.to_string()
    };
    let service_id = services.id(&service)?;
    let row_start = out.len();
    match write_tuple(&columns, id, service_id, layers, &found, options, out) {
        Ok(()) => Ok(LineOutcome::Encoded),
        Err(NulFound) => {
            out.truncate(row_start);
            Ok(LineOutcome::Rejected(NUL_REASON.to_string()))
        }
    }
}

/// Walks the line's keys once per level, remembering the best candidate for each column.
fn collect<'t, 'i>(
    object: &tape::Object<'t, 'i>,
    table: &KeyTable,
    skip: Option<&str>,
    found: &mut Found<'t, 'i>,
) {
    for (key, value) in object.iter() {
        let Some(entry) = table.get(key) else {
            continue;
        };
        if skip == Some(key) || value.is_null() {
            continue;
        }
        if let (Some(nested), Some(inner)) = (&entry.nested, value.as_object()) {
            collect(&inner, nested, None, found);
            continue;
        }
        let Some(column) = entry.column else { continue };
        let slot = &mut found[column.field.index()];
        if slot.is_none_or(|current| column.priority < current.priority) {
            *slot = Some(Candidate {
                priority: column.priority,
                unit: column.unit,
                key,
                value,
            });
        }
    }
}

fn columns<'s, 't, 'i>(
    found: &Found<'t, 'i>,
    layers: &'s [Layer<'s, 't, 'i>],
    zone: Zone,
    level_number: &'i mut itoa::Buffer,
) -> Result<Columns<'i>, String>
where
    's: 'i,
{
    let get = |field: Field| found[field.index()];
    let shape = layers[0].shape;
    let created_at = match get(Field::CreatedAt) {
        None => return Err(missing(shape, Field::CreatedAt, "timestamp")),
        Some(candidate) => timestamp_of(candidate, zone)?,
    };
    let default_service = layers
        .iter()
        .find_map(|layer| layer.shape.default_service.as_deref());
    let service = match (get(Field::Service), default_service) {
        (None, Some(service)) => service,
        (None, None) => return Err(missing(shape, Field::Service, "service")),
        (Some(candidate), _) => match candidate.value.into_string() {
            // Empty also when all it holds is U+0000, which --strip-nul drops.
            Some(name)
                if name
                    .trim_matches(|c: char| c.is_whitespace() || c == '\0')
                    .is_empty() =>
            {
                return Err(format!("`{}` is empty", candidate.key));
            }
            Some(name) => name.trim(),
            None => return Err(wrong_type(candidate, "a string")),
        },
    };
    let (line_method, line_endpoint) =
        match get(Field::RequestLine).and_then(|c| c.value.into_string()) {
            Some(request) => {
                let mut parts = request.split_ascii_whitespace();
                (parts.next(), parts.next())
            }
            None => (None, None),
        };
    let level = match get(Field::Level) {
        None => None,
        Some(candidate) => Some(level_of(candidate, level_number)?),
    };
    let request_id_text = get(Field::RequestId).and_then(|c| c.value.into_string());
    Ok(Columns {
        created_at,
        service,
        level,
        // Container runtimes keep the newline the program printed; it is not part of the message.
        message: get(Field::Message)
            .map(text_of)
            .transpose()?
            .map(|message| message.trim_end_matches(['\n', '\r'])),
        endpoint: get(Field::Endpoint)
            .map(text_of)
            .transpose()?
            .or(line_endpoint),
        method: get(Field::Method).map(text_of).transpose()?.or(line_method),
        status: get(Field::Status).map(status_of).transpose()?,
        latency_ms: get(Field::LatencyMs).map(latency_of).transpose()?,
        request_id: request_id_text.and_then(|text| Uuid::try_parse(text.trim()).ok()),
        request_id_text,
    })
}

fn missing(shape: &Shape, field: Field, what: &str) -> String {
    format!(
        "no {what} (looked for {})",
        shape.keys_for(field).join(", ")
    )
}

fn wrong_type(candidate: Candidate<'_, '_>, expected: &str) -> String {
    format!(
        "`{}` must be {expected}, not {}",
        candidate.key,
        describe_value(candidate.value)
    )
}

fn timestamp_of(candidate: Candidate<'_, '_>, zone: Zone) -> Result<i64, String> {
    let value = candidate.value;
    let result = match value.value_type() {
        ValueType::String => timestamp::parse_text(value.as_str().unwrap_or_default(), zone),
        ValueType::I64 | ValueType::U64 => match value.as_i64() {
            Some(number) => timestamp::parse_epoch_integer(number),
            None => Err(format!(
                "epoch timestamp {} is out of range",
                describe_value(value)
            )),
        },
        ValueType::F64 => timestamp::parse_epoch_float(value.as_f64().unwrap_or(f64::NAN)),
        _ => return Err(wrong_type(candidate, "a time string or an epoch number")),
    };
    result.map_err(|reason| format!("`{}`: {reason}", candidate.key))
}

fn text_of<'i>(candidate: Candidate<'_, 'i>) -> Result<&'i str, String> {
    candidate
        .value
        .into_string()
        .ok_or_else(|| wrong_type(candidate, "a string"))
}

/// Text levels are kept (lower-cased on write); pino/bunyan's numbers become their names.
fn level_of<'i>(
    candidate: Candidate<'_, 'i>,
    number_text: &'i mut itoa::Buffer,
) -> Result<&'i str, String> {
    if let Some(text) = candidate.value.into_string() {
        return Ok(text);
    }
    match candidate.value.as_i64() {
        Some(10) => Ok("trace"),
        Some(20) => Ok("debug"),
        Some(30) => Ok("info"),
        Some(40) => Ok("warn"),
        Some(50) => Ok("error"),
        Some(60) => Ok("fatal"),
        Some(other) => Ok(number_text.format(other)),
        None => Err(wrong_type(candidate, "a string or a number")),
    }
}

fn status_of(candidate: Candidate<'_, '_>) -> Result<i16, String> {
    let value = candidate.value;
    let number = match value.value_type() {
        ValueType::I64 | ValueType::U64 => value.as_i64(),
        ValueType::F64 => value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e6)
            .map(|f| f as i64),
        ValueType::String => value
            .as_str()
            .and_then(|text| text.trim().parse::<i64>().ok()),
        _ => None,
    };
    match number {
        Some(code @ 100..=599) => Ok(code as i16),
        Some(code) => Err(format!(
            "`{}` {code} is not an HTTP status (100-599)",
            candidate.key
        )),
        None => Err(wrong_type(candidate, "an HTTP status code")),
    }
}

/// A duration in the field's unit (numbers, numeric strings) or a Go duration string, in whole ms.
fn latency_of(candidate: Candidate<'_, '_>) -> Result<i32, String> {
    let value = candidate.value;
    let millis = match value.value_type() {
        ValueType::I64 | ValueType::U64 | ValueType::I128 | ValueType::U128 | ValueType::F64 => {
            value
                .cast_f64()
                .map(|number| candidate.unit.to_millis(number))
        }
        ValueType::String => {
            let text = value.as_str().unwrap_or_default().trim();
            match text.parse::<f64>() {
                Ok(number) if number.is_finite() => Some(candidate.unit.to_millis(number)),
                _ => go_duration_millis(text),
            }
        }
        _ => None,
    };
    let Some(millis) = millis else {
        return Err(wrong_type(
            candidate,
            "a number or a duration such as \"350ms\"",
        ));
    };
    let rounded = millis.round();
    if rounded < 0.0 {
        return Err(format!(
            "`{}` is negative ({})",
            candidate.key,
            describe_value(value)
        ));
    }
    if rounded > f64::from(i32::MAX) {
        return Err(format!(
            "`{}` {} is over the integer range of latency_ms",
            candidate.key,
            describe_value(value)
        ));
    }
    Ok(rounded as i32)
}

/// Go's `time.Duration` text: `1.5s`, `350ms`, `1m30s`, `2h`, `150µs`, `42ns`.
pub fn go_duration_millis(text: &str) -> Option<f64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_length = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_length].parse().ok()?;
        rest = &rest[number_length..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_length] {
            "ns" => 1e-6,
            "us" | "µs" | "μs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_length..];
    }
    Some(if negative { -total } else { total })
}

fn write_tuple(
    columns: &Columns<'_>,
    id: Uuid,
    service_id: i32,
    layers: &[Layer<'_, '_, '_>],
    found: &Found<'_, '_>,
    options: &ParseOptions,
    out: &mut Vec<u8>,
) -> Result<(), NulFound> {
    let mut tuple = TupleWriter::begin(out, options.nul);
    tuple.uuid(Some(&id));
    tuple.int4(Some(service_id));
    tuple.timestamptz(columns.created_at);
    tuple.text(columns.level, Case::Lower)?;
    tuple.text(columns.message, Case::AsIs)?;
    tuple.text(columns.endpoint, Case::AsIs)?;
    tuple.text(columns.method, Case::Upper)?;
    tuple.int2(columns.status);
    tuple.int4(columns.latency_ms);
    tuple.uuid(columns.request_id.as_ref());
    tuple.jsonb(|json| write_metadata(json, columns, layers, found))
}

/// The line minus what went into created_at/service/level/message, with the request
/// fields under their canonical names and values, so that queries written against
/// `metadata->>'latency_ms'` (or endpoint, method, status, request_id) keep working.
fn write_metadata(
    json: &mut JsonWriter<'_>,
    columns: &Columns<'_>,
    layers: &[Layer<'_, '_, '_>],
    found: &Found<'_, '_>,
) -> Result<(), NulFound> {
    json.raw(b"{");
    let mut first = true;
    for layer in layers {
        write_entries(
            json,
            &layer.object,
            &layer.shape.root,
            layer.unwrapped,
            found,
            &mut first,
        )?;
    }
    let mut separator = |json: &mut JsonWriter<'_>| {
        if !std::mem::take(&mut first) {
            json.raw(b",");
        }
    };
    if let Some(endpoint) = columns.endpoint {
        separator(json);
        json.raw(b"\"endpoint\":");
        json.string(endpoint)?;
    }
    if let Some(method) = columns.method {
        separator(json);
        json.raw(b"\"method\":");
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            json.string(&method.to_ascii_uppercase())?;
        } else {
            json.string(method)?;
        }
    }
    if let Some(status) = columns.status {
        separator(json);
        json.raw(b"\"status\":");
        json.integer(status);
    }
    if let Some(latency) = columns.latency_ms {
        separator(json);
        json.raw(b"\"latency_ms\":");
        json.integer(latency);
    }
    if let Some(request_id) = columns.request_id_text {
        separator(json);
        json.raw(b"\"request_id\":");
        json.string(request_id)?;
    }
    json.raw(b"}");
    Ok(())
}

fn write_entries(
    json: &mut JsonWriter<'_>,
    object: &tape::Object<'_, '_>,
    table: &KeyTable,
    skip: Option<&str>,
    found: &Found<'_, '_>,
    first: &mut bool,
) -> Result<(), NulFound> {
    for (key, value) in object.iter() {
        if skip == Some(key) || is_winner(key, found) {
            continue;
        }
        let entry = table.get(key);
        if let (Some(nested), Some(inner)) = (
            entry.filter(|e| e.flatten).and_then(|e| e.nested.as_ref()),
            value.as_object(),
        ) {
            write_entries(json, &inner, nested, None, found, first)?;
            continue;
        }
        if !std::mem::take(first) {
            json.raw(b",");
        }
        json.string(key)?;
        json.raw(b":");
        write_value(json, value)?;
    }
    Ok(())
}

/// Whether this very key (by address in the parsed line) was taken for a column.
/// A request line stays in metadata: only part of it (method, path) has a column.
fn is_winner(key: &str, found: &Found<'_, '_>) -> bool {
    found
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != Field::RequestLine.index())
        .filter_map(|(_, candidate)| candidate.as_ref())
        .any(|candidate| {
            std::ptr::eq(candidate.key.as_ptr(), key.as_ptr()) && candidate.key.len() == key.len()
        })
}

fn write_value(json: &mut JsonWriter<'_>, value: tape::Value<'_, '_>) -> Result<(), NulFound> {
    match value.value_type() {
        ValueType::Null => json.raw(b"null"),
        ValueType::Bool => json.raw(if value.as_bool() == Some(true) {
            b"true"
        } else {
            b"false"
        }),
        ValueType::I64 => json.integer(value.as_i64().unwrap_or_default()),
        ValueType::U64 => json.integer(value.as_u64().unwrap_or_default()),
        // simd-json's tape exposes 128-bit integers only through its own writer.
        ValueType::I128 | ValueType::U128 => json.raw(value.encode().as_bytes()),
        ValueType::F64 => json.float(value.as_f64().unwrap_or_default()),
        ValueType::String => json.string(value.as_str().unwrap_or_default())?,
        ValueType::Array => {
            json.raw(b"[");
            if let Some(array) = value.as_array() {
                for (index, element) in array.iter().enumerate() {
                    if index > 0 {
                        json.raw(b",");
                    }
                    write_value(json, element)?;
                }
            }
            json.raw(b"]");
        }
        ValueType::Object => {
            json.raw(b"{");
            if let Some(object) = value.as_object() {
                for (index, (key, element)) in object.iter().enumerate() {
                    if index > 0 {
                        json.raw(b",");
                    }
                    json.string(key)?;
                    json.raw(b":");
                    write_value(json, element)?;
                }
            }
            json.raw(b"}");
        }
        _ => json.raw(b"null"),
    }
    Ok(())
}

fn type_name(value: tape::Value<'_, '_>) -> &'static str {
    match value.value_type() {
        ValueType::Null => "null",
        ValueType::Bool => "boolean",
        ValueType::String => "string",
        ValueType::Array => "array",
        ValueType::Object => "object",
        _ => "number",
    }
}

fn describe_value(value: tape::Value<'_, '_>) -> String {
    match value.value_type() {
        ValueType::String => {
            let text = value.as_str().unwrap_or_default();
            let shown: String = text.chars().take(40).collect();
            let ellipsis = if shown.len() < text.len() { "…" } else { "" };
            format!("\"{shown}{ellipsis}\"")
        }
        ValueType::I64 => value.as_i64().unwrap_or_default().to_string(),
        ValueType::U64 => value.as_u64().unwrap_or_default().to_string(),
        ValueType::I128 | ValueType::U128 => value.encode(),
        ValueType::F64 => value.as_f64().unwrap_or_default().to_string(),
        _ => format!("a JSON {}", type_name(value)),
    }
}
