//! Event -> COPY tuple: PostgreSQL's binary COPY format, written straight into a batch
//! buffer, one tuple per event, no intermediate row objects.

use uuid::Uuid;

use crate::analytics::rollup::Row;

/// The columns of `log_events` in the order every tuple carries them.
pub const COLUMNS: &str = "event_id, service_id, created_at, level, message, endpoint, method, status, latency_ms, request_id, metadata, route";
const FIELD_COUNT: i16 = 12;

/// Signature, flags and header-extension length that open a binary COPY stream.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The field count -1 that closes it.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// The created_at of an encoded tuple: after the field count (2 bytes), event_id
/// (4 + 16) and service_id (4 + 4) comes its length (4), then the value.
pub fn created_at_of(tuple: &[u8]) -> i64 {
    i64::from_be_bytes(tuple[34..42].try_into().expect("a whole tuple"))
}

/// Where service_id's value lies in a tuple: after the field count (2 bytes), event_id
/// (4 + 16) and its own length (4).
const SERVICE_ID_AT: usize = 26;

/// The service_id of an encoded tuple.
pub fn service_id_of(tuple: &[u8]) -> i32 {
    i32::from_be_bytes(
        tuple[SERVICE_ID_AT..SERVICE_ID_AT + 4]
            .try_into()
            .expect("a whole tuple"),
    )
}

/// Overwrites the service_id of an encoded tuple.
pub fn set_service_id(tuple: &mut [u8], id: i32) {
    tuple[SERVICE_ID_AT..SERVICE_ID_AT + 4].copy_from_slice(&id.to_be_bytes());
}

/// The tuples with an int4 field added to each, for a COPY into the columns and
/// `spread` (a distributed `log_events`, see ingest/write/spread.rs).
pub fn with_spread(
    copy: &[u8],
    tuples: impl Iterator<Item = std::ops::Range<usize>>,
    spread: i32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(copy.len() + copy.len() / 32);
    for tuple in tuples {
        out.extend_from_slice(&(FIELD_COUNT + 1).to_be_bytes());
        out.extend_from_slice(&copy[tuple.start + 2..tuple.end]);
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&spread.to_be_bytes());
    }
    out
}

/// The fields of an encoded tuple that the rollups count by, read back in place from a
/// tuple this module wrote: each field's length, then its value.
pub fn rollup_row(tuple: &[u8]) -> Row<'_> {
    let mut fields: [Option<&[u8]>; FIELD_COUNT as usize] = [None; FIELD_COUNT as usize];
    let mut at = 2;
    for field in &mut fields {
        let length = i32::from_be_bytes(tuple[at..at + 4].try_into().expect("a whole tuple"));
        at += 4;
        if let Ok(length) = usize::try_from(length) {
            *field = Some(&tuple[at..at + length]);
            at += length;
        }
    }
    let text = |index: usize| fields[index].and_then(|bytes| std::str::from_utf8(bytes).ok());
    Row {
        created_at: created_at_of(tuple),
        service_id: service_id_of(tuple),
        level: text(3),
        method: text(6),
        status: fields[7].map(|bytes| i16::from_be_bytes(bytes.try_into().expect("an int2"))),
        latency_ms: fields[8].map(|bytes| i32::from_be_bytes(bytes.try_into().expect("an int4"))),
        route: text(11),
    }
}

/// What to do with U+0000, which neither `text` nor `jsonb` can store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NulPolicy {
    Reject,
    Strip,
}

/// A string held U+0000 and the policy is to reject the line.
#[derive(Debug)]
pub struct NulFound;

/// Appends one tuple's fields to a buffer.
pub struct TupleWriter<'a> {
    out: &'a mut Vec<u8>,
    nul: NulPolicy,
}

impl<'a> TupleWriter<'a> {
    pub fn begin(out: &'a mut Vec<u8>, nul: NulPolicy) -> TupleWriter<'a> {
        out.extend_from_slice(&FIELD_COUNT.to_be_bytes());
        TupleWriter { out, nul }
    }

    pub fn uuid(&mut self, value: Option<&Uuid>) {
        match value {
            Some(uuid) => {
                self.out.extend_from_slice(&16i32.to_be_bytes());
                self.out.extend_from_slice(uuid.as_bytes());
            }
            None => self.null(),
        }
    }

    pub fn int4(&mut self, value: Option<i32>) {
        match value {
            Some(v) => {
                self.out.extend_from_slice(&4i32.to_be_bytes());
                self.out.extend_from_slice(&v.to_be_bytes());
            }
            None => self.null(),
        }
    }

    pub fn int2(&mut self, value: Option<i16>) {
        match value {
            Some(v) => {
                self.out.extend_from_slice(&2i32.to_be_bytes());
                self.out.extend_from_slice(&v.to_be_bytes());
            }
            None => self.null(),
        }
    }

    /// timestamptz: microseconds since 2000-01-01 UTC.
    pub fn timestamptz(&mut self, micros: i64) {
        self.out.extend_from_slice(&8i32.to_be_bytes());
        self.out.extend_from_slice(&micros.to_be_bytes());
    }

    /// text, optionally case-folded (ASCII only, as log levels and HTTP methods are).
    pub fn text(&mut self, value: Option<&str>, case: Case) -> Result<(), NulFound> {
        let Some(text) = value else {
            self.null();
            return Ok(());
        };
        let length_at = self.out.len();
        self.out.extend_from_slice(&0i32.to_be_bytes());
        let start = self.out.len();
        push_without_nul(self.out, text.as_bytes(), self.nul)?;
        match case {
            Case::AsIs => {}
            Case::Lower => self.out[start..].make_ascii_lowercase(),
            Case::Upper => self.out[start..].make_ascii_uppercase(),
        }
        self.patch_length(length_at);
        Ok(())
    }

    /// jsonb: a version byte then JSON text, written by the closure.
    pub fn jsonb<E>(
        &mut self,
        write: impl FnOnce(&mut JsonWriter<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let length_at = self.out.len();
        self.out.extend_from_slice(&0i32.to_be_bytes());
        self.out.push(1);
        write(&mut JsonWriter {
            out: self.out,
            nul: self.nul,
        })?;
        self.patch_length(length_at);
        Ok(())
    }

    fn null(&mut self) {
        self.out.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn patch_length(&mut self, length_at: usize) {
        let length = (self.out.len() - length_at - 4) as i32;
        self.out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    AsIs,
    Lower,
    Upper,
}

/// Writes JSON text; strings are escaped here, so values can come unescaped from the parser.
pub struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
    nul: NulPolicy,
}

impl JsonWriter<'_> {
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub fn string(&mut self, text: &str) -> Result<(), NulFound> {
        self.out.push(b'"');
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut index = 0;
        while index < bytes.len() {
            // Most strings need no escaping: skip eight bytes at a time while none does.
            if let Some(word) = bytes.get(index..index + 8) {
                let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
                if !needs_escape(word) {
                    index += 8;
                    continue;
                }
            }
            let byte = bytes[index];
            if !NEEDS_ESCAPE[usize::from(byte)] {
                index += 1;
                continue;
            }
            self.out.extend_from_slice(&bytes[start..index]);
            match byte {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                0 if self.nul == NulPolicy::Reject => return Err(NulFound),
                0 => {}
                _ => self
                    .out
                    .extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            }
            index += 1;
            start = index;
        }
        self.out.extend_from_slice(&bytes[start..]);
        self.out.push(b'"');
        Ok(())
    }

    pub fn integer(&mut self, value: impl itoa::Integer) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }
}

/// The bytes JSON strings must escape: control characters, the quote and the backslash.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Whether any of the eight bytes is a control character, a quote or a backslash
/// (the classic "has a byte less than n" and "has a zero byte" word tricks).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH_BITS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
    control | has_zero(word ^ (ONES * u64::from(b'"'))) | has_zero(word ^ (ONES * u64::from(b'\\')))
        != 0
}

fn push_without_nul(out: &mut Vec<u8>, bytes: &[u8], nul: NulPolicy) -> Result<(), NulFound> {
    if memchr::memchr(0, bytes).is_none() {
        out.extend_from_slice(bytes);
        return Ok(());
    }
    if nul == NulPolicy::Reject {
        return Err(NulFound);
    }
    out.extend(bytes.iter().copied().filter(|&b| b != 0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_layout_matches_the_binary_copy_format() {
        let mut out = Vec::new();
        let mut tuple = TupleWriter::begin(&mut out, NulPolicy::Reject);
        tuple.int4(Some(7));
        tuple.text(None, Case::AsIs).unwrap();
        tuple.text(Some("GeT"), Case::Upper).unwrap();
        assert_eq!(
            out,
            [
                &[0, 12][..],
                &[0, 0, 0, 4, 0, 0, 0, 7],
                &[0xff, 0xff, 0xff, 0xff],
                &[0, 0, 0, 3],
                b"GET"
            ]
            .concat()
        );
    }

    #[test]
    fn spread_is_added_as_the_last_field_of_each_tuple() {
        let mut copy = Vec::new();
        for value in [7, 8] {
            let mut tuple = TupleWriter::begin(&mut copy, NulPolicy::Reject);
            tuple.int4(Some(value));
        }
        let spread = with_spread(&copy, [0..10, 10..20].into_iter(), -2);
        let one = |value: u8| {
            [
                &[0, 13][..],
                &[0, 0, 0, 4, 0, 0, 0, value],
                &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe],
            ]
            .concat()
        };
        assert_eq!(spread, [one(7), one(8)].concat());
    }

    #[test]
    fn json_strings_are_escaped_and_nul_follows_the_policy() {
        let mut out = Vec::new();
        let mut json = JsonWriter {
            out: &mut out,
            nul: NulPolicy::Strip,
        };
        json.string("a\"b\\c\n\u{1}\0d").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\n\u0001d""#);
        let mut out = Vec::new();
        let mut json = JsonWriter {
            out: &mut out,
            nul: NulPolicy::Reject,
        };
        json.string("plain ascii words, long enough \"quoted\" then \u{7f} and é\u{1f}!")
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            serde_json::from_str::<String>(&text).unwrap(),
            "plain ascii words, long enough \"quoted\" then \u{7f} and é\u{1f}!"
        );
        let mut out = Vec::new();
        let mut json = JsonWriter {
            out: &mut out,
            nul: NulPolicy::Reject,
        };
        assert!(json.string("x\0").is_err());
    }
}
