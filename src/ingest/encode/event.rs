//! Line -> Event: the typed fields of one log line, found by its shape and coerced to
//! their columns' types (a time, an HTTP status, a latency in ms, ...), or the reason the
//! line cannot be loaded. The metadata writer and the tuple writer read what this finds.

use simd_json::prelude::*;
use simd_json::tape;
use uuid::Uuid;

use super::numbers::{self, Members, ROOT, Written};
use super::shape::{FIELD_COUNT, Field, KeyTable, Shape, Unit};
use super::timestamp::{self, Zone};
use crate::Invalid;

pub(super) type Found<'s, 't, 'i> = [Option<Candidate<'s, 't, 'i>>; FIELD_COUNT];

#[derive(Clone, Copy)]
pub(super) struct Candidate<'s, 't, 'i> {
    priority: u8,
    unit: Unit,
    pub key: &'i str,
    pub value: tape::Value<'t, 'i>,
    /// The layer the key is in, where its number can be read as written.
    layer: &'s Layer<'s, 't, 'i>,
}

/// The typed fields of one log event, borrowed from the parsed line: what becomes its
/// columns, and what later stages can aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'i> {
    /// PostgreSQL microseconds (since 2000-01-01 UTC).
    pub created_at: i64,
    pub service: &'i str,
    pub level: Option<&'i str>,
    pub message: Option<&'i str>,
    pub endpoint: Option<&'i str>,
    pub method: Option<&'i str>,
    pub status: Option<i16>,
    pub latency_ms: Option<i32>,
    pub request_id: Option<Uuid>,
    /// The request id as written, kept in metadata whether or not it is a UUID.
    pub request_id_text: Option<&'i str>,
}

/// One object of a line and the shape it is read with. A Docker line has two: the
/// application's own JSON inside `log`, then the wrapper, which fills in what the
/// inner line lacks (its time) and keeps its other keys (`stream`) as metadata.
pub(super) struct Layer<'s, 't, 'i> {
    pub object: tape::Object<'t, 'i>,
    pub shape: &'s Shape,
    /// The wrapper key that held the inner line, neither a column nor metadata.
    pub unwrapped: Option<&'static str>,
    /// The text the object was parsed from.
    pub written: Written<'t>,
}

impl<'t> Layer<'_, 't, '_> {
    /// The number `key` (this very key, by address) holds, as written.
    fn number_of(&self, key: &str) -> Option<&'t [u8]> {
        find_member(&self.object, ROOT, key).map(|at| self.written.number(at))
    }
}

/// Where the value of `key` (this very key, by address) starts, in `object`, which
/// starts at structural `at`, or in an object nested in it.
fn find_member(object: &tape::Object<'_, '_>, at: usize, key: &str) -> Option<usize> {
    let mut members = Members::of(at);
    for (candidate, value) in object.iter() {
        let value_at = members.value();
        if same_key(candidate, key) {
            return Some(value_at);
        }
        if let Some(inner) = value.as_object()
            && let Some(found) = find_member(&inner, value_at, key)
        {
            return Some(found);
        }
        members.passed(numbers::end_of(value, value_at));
    }
    None
}

/// Whether two keys are the same key of the parsed line, not merely equal.
pub(super) fn same_key(a: &str, b: &str) -> bool {
    std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
}

/// The candidate keys of every layer, the inner line's first, and the event read from
/// them; `found` tells the metadata writer which keys became columns.
pub(super) fn read_event<'s, 't, 'i>(
    layers: &'s [Layer<'s, 't, 'i>],
    zone: Zone,
    level_number: &'i mut itoa::Buffer,
) -> Result<(Event<'i>, Found<'s, 't, 'i>), Invalid>
where
    's: 'i,
{
    let mut found: Found = [None; FIELD_COUNT];
    for layer in layers {
        let mut own: Found = [None; FIELD_COUNT];
        collect(
            layer,
            &layer.object,
            &layer.shape.root,
            layer.unwrapped,
            &mut own,
        );
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
    let event = event_of(&found, layers, zone, level_number)?;
    Ok((event, found))
}

/// Walks the line's keys once per level, remembering the best candidate for each column.
fn collect<'s, 't, 'i>(
    layer: &'s Layer<'s, 't, 'i>,
    object: &tape::Object<'t, 'i>,
    table: &KeyTable,
    skip: Option<&str>,
    found: &mut Found<'s, 't, 'i>,
) {
    for (key, value) in object.iter() {
        let Some(entry) = table.get(key) else {
            continue;
        };
        if skip == Some(key) || value.is_null() {
            continue;
        }
        if let (Some(nested), Some(inner)) = (&entry.nested, value.as_object()) {
            collect(layer, &inner, nested, None, found);
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
                layer,
            });
        }
    }
}

fn event_of<'s, 't, 'i>(
    found: &Found<'s, 't, 'i>,
    layers: &'s [Layer<'s, 't, 'i>],
    zone: Zone,
    level_number: &'i mut itoa::Buffer,
) -> Result<Event<'i>, Invalid>
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
                return Err(Invalid(format!("`{}` is empty", candidate.key)));
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
    Ok(Event {
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

fn missing(shape: &Shape, field: Field, what: &str) -> Invalid {
    Invalid(format!(
        "no {what} (looked for {})",
        shape.keys_for(field).join(", ")
    ))
}

fn wrong_type(candidate: Candidate<'_, '_, '_>, expected: &str) -> Invalid {
    Invalid(format!(
        "`{}` must be {expected}, not {}",
        candidate.key,
        describe_value(candidate)
    ))
}

fn timestamp_of(candidate: Candidate<'_, '_, '_>, zone: Zone) -> Result<i64, Invalid> {
    let value = candidate.value;
    let out_of_range = || {
        Invalid(format!(
            "epoch timestamp {} is out of range",
            describe_value(candidate)
        ))
    };
    let result = match value.value_type() {
        ValueType::String => timestamp::parse_text(value.as_str().unwrap_or_default(), zone),
        ValueType::I64 | ValueType::U64 => match value.as_i64() {
            Some(number) => timestamp::parse_epoch_integer(number),
            None => Err(out_of_range()),
        },
        // Quoted as written: the f64 may be a stand-in (numbers.rs).
        ValueType::F64 => timestamp::parse_epoch_float(value.as_f64().unwrap_or(f64::NAN))
            .map_err(|_| out_of_range()),
        _ => return Err(wrong_type(candidate, "a time string or an epoch number")),
    };
    result.map_err(|Invalid(reason)| Invalid(format!("`{}`: {reason}", candidate.key)))
}

fn text_of<'i>(candidate: Candidate<'_, '_, 'i>) -> Result<&'i str, Invalid> {
    candidate
        .value
        .into_string()
        .ok_or_else(|| wrong_type(candidate, "a string"))
}

/// Text levels are kept (lower-cased on write); pino/bunyan's numbers become their names.
fn level_of<'i>(
    candidate: Candidate<'_, '_, 'i>,
    number_text: &'i mut itoa::Buffer,
) -> Result<&'i str, Invalid> {
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

fn status_of(candidate: Candidate<'_, '_, '_>) -> Result<i16, Invalid> {
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
        Some(code) => Err(Invalid(format!(
            "`{}` {code} is not an HTTP status (100-599)",
            candidate.key
        ))),
        None => Err(wrong_type(candidate, "an HTTP status code")),
    }
}

/// A duration in the field's unit (numbers, numeric strings) or a Go duration string, in whole ms.
fn latency_of(candidate: Candidate<'_, '_, '_>) -> Result<i32, Invalid> {
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
        return Err(Invalid(format!(
            "`{}` is negative ({})",
            candidate.key,
            describe_value(candidate)
        )));
    }
    if rounded > f64::from(i32::MAX) {
        return Err(Invalid(format!(
            "`{}` {} is over the integer range of latency_ms",
            candidate.key,
            describe_value(candidate)
        )));
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

pub(super) fn type_name(value: tape::Value<'_, '_>) -> &'static str {
    match value.value_type() {
        ValueType::Null => "null",
        ValueType::Bool => "boolean",
        ValueType::String => "string",
        ValueType::Array => "array",
        ValueType::Object => "object",
        _ => "number",
    }
}

/// The value for a reason: a string quoted, a number as written, others by their type.
fn describe_value(candidate: Candidate<'_, '_, '_>) -> String {
    let value = candidate.value;
    match value.value_type() {
        ValueType::String => format!(
            "\"{}\"",
            numbers::shortened(value.as_str().unwrap_or_default())
        ),
        ValueType::I64 | ValueType::U64 | ValueType::I128 | ValueType::U128 | ValueType::F64 => {
            let written = candidate.layer.number_of(candidate.key).map_or_else(
                || value.encode(),
                |number| String::from_utf8_lossy(number).into_owned(),
            );
            numbers::shortened(&written)
        }
        _ => format!("a JSON {}", type_name(value)),
    }
}
