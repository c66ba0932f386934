//! The metadata jsonb of a line: the line minus what became created_at, service, level
//! and message, with the request fields under their canonical names and values.

use simd_json::prelude::*;
use simd_json::tape;

use super::event::{Event, Found, Layer};
use super::shape::{Field, KeyTable};
use super::tuple::{JsonWriter, NulFound};

/// The line minus what went into created_at/service/level/message, with the request
/// fields under their canonical names and values, so that queries written against
/// `metadata->>'latency_ms'` (or endpoint, method, status, request_id) keep working.
pub(super) fn write(
    json: &mut JsonWriter<'_>,
    event: &Event<'_>,
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
    if let Some(endpoint) = event.endpoint {
        separator(json);
        json.raw(b"\"endpoint\":");
        json.string(endpoint)?;
    }
    if let Some(method) = event.method {
        separator(json);
        json.raw(b"\"method\":");
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            json.string(&method.to_ascii_uppercase())?;
        } else {
            json.string(method)?;
        }
    }
    if let Some(status) = event.status {
        separator(json);
        json.raw(b"\"status\":");
        json.integer(status);
    }
    if let Some(latency) = event.latency_ms {
        separator(json);
        json.raw(b"\"latency_ms\":");
        json.integer(latency);
    }
    if let Some(request_id) = event.request_id_text {
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
