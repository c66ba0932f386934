//! The metadata jsonb of a line: the line minus what became created_at, service, level
//! and message, with the request fields under their canonical names and values, and
//! every other number as the line wrote it.

use simd_json::prelude::*;
use simd_json::tape;

use super::event::{Event, Found, Layer, same_key};
use super::numbers::{self, Members, ROOT, Written};
use super::shape::{Field, KeyTable};
use super::tuple::JsonWriter;
use crate::Invalid;

/// The line minus what went into created_at/service/level/message, with the request
/// fields under their canonical names and values, so that queries written against
/// `metadata->>'latency_ms'` (or endpoint, method, status, request_id) keep working.
/// Numbers are copied as written, so jsonb holds them exactly.
pub(super) fn write(
    json: &mut JsonWriter<'_>,
    event: &Event<'_>,
    layers: &[Layer<'_, '_, '_>],
    found: &Found<'_, '_, '_>,
) -> Result<(), Invalid> {
    json.raw(b"{");
    let mut entries = Entries {
        json,
        found,
        first: true,
    };
    for layer in layers {
        entries.write_object(
            layer.written,
            &layer.object,
            ROOT,
            &layer.shape.root,
            layer.unwrapped,
        )?;
    }
    if let Some(endpoint) = event.endpoint {
        entries.separator();
        entries.json.raw(b"\"endpoint\":");
        entries.json.string(endpoint)?;
    }
    if let Some(method) = event.method {
        entries.separator();
        entries.json.raw(b"\"method\":");
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            entries.json.string(&method.to_ascii_uppercase())?;
        } else {
            entries.json.string(method)?;
        }
    }
    if let Some(status) = event.status {
        entries.separator();
        entries.json.raw(b"\"status\":");
        entries.json.integer(status);
    }
    if let Some(latency) = event.latency_ms {
        entries.separator();
        entries.json.raw(b"\"latency_ms\":");
        entries.json.integer(latency);
    }
    if let Some(request_id) = event.request_id_text {
        entries.separator();
        entries.json.raw(b"\"request_id\":");
        entries.json.string(request_id)?;
    }
    entries.json.raw(b"}");
    Ok(())
}

/// The top-level entries of metadata, from every layer, minus the keys that became
/// columns.
struct Entries<'a, 'j, 'f, 's, 't, 'i> {
    json: &'a mut JsonWriter<'j>,
    found: &'f Found<'s, 't, 'i>,
    first: bool,
}

impl Entries<'_, '_, '_, '_, '_, '_> {
    /// The comma before every entry but the first.
    fn separator(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.json.raw(b",");
        }
    }

    /// Writes the entries of `object`, which starts at structural `at`, and returns the
    /// structural after it.
    fn write_object(
        &mut self,
        written: Written<'_>,
        object: &tape::Object<'_, '_>,
        at: usize,
        table: &KeyTable,
        skip: Option<&str>,
    ) -> Result<usize, Invalid> {
        let mut members = Members::of(at);
        for (key, value) in object.iter() {
            let value_at = members.value();
            let end = if skip == Some(key) || is_winner(key, self.found) {
                numbers::end_of(value, value_at)
            } else if let (Some(nested), Some(inner)) = (
                table
                    .get(key)
                    .filter(|e| e.flatten)
                    .and_then(|e| e.nested.as_ref()),
                value.as_object(),
            ) {
                self.write_object(written, &inner, value_at, nested, None)?
            } else {
                self.separator();
                self.json.string(key)?;
                self.json.raw(b":");
                write_value(self.json, written, value, value_at)?
            };
            members.passed(end);
        }
        Ok(members.end())
    }
}

/// Whether this very key (by address in the parsed line) was taken for a column.
/// A request line stays in metadata: only part of it (method, path) has a column.
fn is_winner(key: &str, found: &Found<'_, '_, '_>) -> bool {
    found
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != Field::RequestLine.index())
        .filter_map(|(_, candidate)| candidate.as_ref())
        .any(|candidate| same_key(candidate.key, key))
}

/// Writes `value`, which starts at structural `at`, and returns the structural after it.
fn write_value(
    json: &mut JsonWriter<'_>,
    written: Written<'_>,
    value: tape::Value<'_, '_>,
    at: usize,
) -> Result<usize, Invalid> {
    match value.value_type() {
        ValueType::Null => json.raw(b"null"),
        ValueType::Bool => json.raw(if value.as_bool() == Some(true) {
            b"true"
        } else {
            b"false"
        }),
        // Integers are exact in the tape, and jsonb holds them all: 64-bit ones are
        // formatted from it, cheaper than finding their text; wider ones are copied.
        ValueType::I64 => json.integer(value.as_i64().unwrap_or_default()),
        ValueType::U64 => json.integer(value.as_u64().unwrap_or_default()),
        ValueType::I128 | ValueType::U128 => json.raw(written.number(at)),
        ValueType::F64 => {
            let number = written.number(at);
            numbers::check_numeric(number)?;
            json.raw(number);
        }
        ValueType::String => json.string(value.as_str().unwrap_or_default())?,
        ValueType::Array => {
            json.raw(b"[");
            let mut elements = Members::of(at);
            if let Some(array) = value.as_array() {
                for (index, element) in array.iter().enumerate() {
                    if index > 0 {
                        json.raw(b",");
                    }
                    elements.passed(write_value(json, written, element, elements.element())?);
                }
            }
            json.raw(b"]");
            return Ok(elements.end());
        }
        ValueType::Object => {
            json.raw(b"{");
            let mut members = Members::of(at);
            if let Some(object) = value.as_object() {
                for (index, (key, member)) in object.iter().enumerate() {
                    if index > 0 {
                        json.raw(b",");
                    }
                    json.string(key)?;
                    json.raw(b":");
                    members.passed(write_value(json, written, member, members.value())?);
                }
            }
            json.raw(b"}");
            return Ok(members.end());
        }
        _ => json.raw(b"null"),
    }
    Ok(at + 1)
}
