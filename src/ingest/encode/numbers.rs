//! Numbers as written. simd-json reads a number into an i64, a u64, a 128-bit integer
//! or an f64, while jsonb keeps it as `numeric`, digit for digit (`1.50`, `1e400`, a
//! 40-digit integer), so metadata takes each float's text, and each wider integer's,
//! from the line rather than from the tape. simd-json's structural indexes say where
//! each node of the tape starts in the text, and a walk of the tape keeps its place
//! among them by counting. A number simd-json cannot read at all gets a stand-in it can
//! read, on a second parse of that line only. What numeric cannot hold is refused here,
//! before PostgreSQL would refuse the row.

use simd_json::prelude::*;
use simd_json::tape;

use crate::Invalid;

/// A parsed text and simd-json's structural indexes into it: where each node of the
/// tape starts, in order, with the `:`, `,`, `]` and `}` between them.
#[derive(Clone, Copy)]
pub(super) struct Written<'w> {
    text: &'w [u8],
    structurals: &'w [u32],
}

/// The structural where a document's root starts.
pub(super) const ROOT: usize = 0;

impl<'w> Written<'w> {
    pub fn new(text: &'w [u8], structurals: &'w [u32]) -> Written<'w> {
        Written { text, structurals }
    }

    /// The number whose node starts at structural `at`, as written.
    pub fn number(&self, at: usize) -> &'w [u8] {
        let rest = &self.text[self.structurals[at] as usize..];
        &rest[..number_length(rest)]
    }
}

/// Walks a container's members through the structurals. Each member is followed by one
/// structural, a comma or the container's closer; an empty container is its opener and
/// its closer.
pub(super) struct Members {
    opener: usize,
    next: usize,
}

impl Members {
    pub fn of(opener: usize) -> Members {
        Members {
            opener,
            next: opener + 1,
        }
    }

    /// Where the next array element starts.
    pub fn element(&self) -> usize {
        self.next
    }

    /// Where the next object member's value starts, after its key and colon.
    pub fn value(&self) -> usize {
        self.next + 2
    }

    /// Steps past a member whose last structural is just before `end`, and past the
    /// comma or closer that follows it.
    pub fn passed(&mut self, end: usize) {
        self.next = end + 1;
    }

    /// The structural just after the container.
    pub fn end(&self) -> usize {
        if self.next == self.opener + 1 {
            self.opener + 2
        } else {
            self.next
        }
    }
}

/// The structural just after `value`, which starts at `at`.
#[inline]
pub(super) fn end_of(value: tape::Value<'_, '_>, at: usize) -> usize {
    // Most values are scalars: one structural, known from the type alone.
    if matches!(value.value_type(), ValueType::Array | ValueType::Object) {
        end_of_container(value, at)
    } else {
        at + 1
    }
}

fn end_of_container(value: tape::Value<'_, '_>, at: usize) -> usize {
    let mut members = Members::of(at);
    if let Some(array) = value.as_array() {
        for element in array.iter() {
            members.passed(end_of(element, members.element()));
        }
    } else if let Some(object) = value.as_object() {
        for (_, member) in object.iter() {
            members.passed(end_of(member, members.value()));
        }
    }
    members.end()
}

/// numeric's limits (PostgreSQL's numeric.c): a weight of at most 32767 base-10000
/// digits, so the leading digit stands below 10^131072; a display scale of at most
/// 16383 digits after the point; and `numeric_in` refuses an exponent from
/// ±(INT_MAX / 2) on, whatever its digits.
const DIGITS_BEFORE_POINT: i64 = 131_072;
const DIGITS_AFTER_POINT: i64 = 16_383;
const EXPONENT_LIMIT: i64 = i32::MAX as i64 / 2;

/// Whether jsonb can hold `number`, a number simd-json parsed; why not otherwise.
pub(super) fn check_numeric(number: &[u8]) -> Result<(), Invalid> {
    // Without an exponent, a number has no more digits on either side than it has bytes.
    let short = number.len() <= DIGITS_AFTER_POINT as usize;
    if short && !number.iter().any(|&byte| matches!(byte, b'e' | b'E')) {
        return Ok(());
    }
    match Number::of(number) {
        Some(parts) if parts.fits_numeric() => Ok(()),
        _ => Err(Invalid(format!(
            "number {} is beyond what PostgreSQL's jsonb can store (up to {DIGITS_BEFORE_POINT} \
             digits before the decimal point and {DIGITS_AFTER_POINT} after it)",
            shortened(&String::from_utf8_lossy(number))
        ))),
    }
}

/// At most 40 characters of `text`, for a reason.
pub(super) fn shortened(text: &str) -> String {
    let shown: String = text.chars().take(40).collect();
    let ellipsis = if shown.len() < text.len() { "…" } else { "" };
    format!("{shown}{ellipsis}")
}

/// Replaces each number simd-json cannot read (a float beyond f64's range, an integer
/// beyond 128 bits) by a stand-in of the same length, so that every structural keeps
/// its place; returns whether there was any. A stand-in reads as ±1e308, which every
/// typed column refuses as the number it stands for would be refused, and whose reasons
/// quote the number as written.
pub(super) fn stand_in_unreadable(text: &mut [u8]) -> bool {
    let mut replaced = false;
    let mut at = 0;
    while let Some(&byte) = text.get(at) {
        match byte {
            b'"' => at = string_end(text, at + 1),
            b'-' | b'0'..=b'9' => {
                let length = number_length(&text[at..]);
                let token = &mut text[at..at + length];
                if Number::of(token).is_some_and(|number| !number.read_by_simd_json(token)) {
                    let stand_in = if byte == b'-' {
                        STAND_IN
                    } else {
                        &STAND_IN[1..]
                    };
                    // Always long enough: such a number takes five bytes at least (1e309).
                    token[..stand_in.len()].copy_from_slice(stand_in);
                    token[stand_in.len()..].fill(b' ');
                    replaced = true;
                }
                at += length;
            }
            _ => at += 1,
        }
    }
    replaced
}

const STAND_IN: &[u8] = b"-1e308";

/// The length of the run of number characters that starts `text`.
fn number_length(text: &[u8]) -> usize {
    text.iter()
        .position(|&byte| !matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(text.len())
}

/// The index just after the string whose content starts at `at`.
fn string_end(text: &[u8], mut at: usize) -> usize {
    while let Some(offset) = text
        .get(at..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        at += offset;
        if text[at] == b'"' {
            return at + 1;
        }
        at += 2;
    }
    text.len()
}

/// A JSON number's parts: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
struct Number<'a> {
    negative: bool,
    integer: &'a [u8],
    fraction: &'a [u8],
    /// Saturated: any exponent that large is past every limit here.
    exponent: Option<i64>,
}

impl<'a> Number<'a> {
    /// The parts of `text` when all of it is one JSON number.
    fn of(text: &'a [u8]) -> Option<Number<'a>> {
        let digits = |from: usize| {
            text.get(from..).map_or(0, |rest| {
                rest.iter().take_while(|b| b.is_ascii_digit()).count()
            })
        };
        let negative = text.first() == Some(&b'-');
        let mut at = usize::from(negative);
        let integer = &text[at..at + digits(at)];
        if integer.is_empty() || (integer.len() > 1 && integer[0] == b'0') {
            return None;
        }
        at += integer.len();
        let mut fraction: &[u8] = &[];
        if text.get(at) == Some(&b'.') {
            fraction = &text[at + 1..at + 1 + digits(at + 1)];
            if fraction.is_empty() {
                return None;
            }
            at += 1 + fraction.len();
        }
        let mut exponent = None;
        if matches!(text.get(at), Some(b'e' | b'E')) {
            at += 1;
            let negative_exponent = text.get(at) == Some(&b'-');
            if matches!(text.get(at), Some(b'-' | b'+')) {
                at += 1;
            }
            let written = &text[at..at + digits(at)];
            if written.is_empty() {
                return None;
            }
            at += written.len();
            let magnitude = written.iter().fold(0i64, |value, digit| {
                value
                    .saturating_mul(10)
                    .saturating_add(i64::from(digit - b'0'))
            });
            exponent = Some(if negative_exponent {
                -magnitude
            } else {
                magnitude
            });
        }
        (at == text.len()).then_some(Number {
            negative,
            integer,
            fraction,
            exponent,
        })
    }

    /// Whether simd-json reads `text`, these parts: a fraction or an exponent into a
    /// finite f64, others into a 128-bit integer.
    fn read_by_simd_json(&self, text: &[u8]) -> bool {
        let text = std::str::from_utf8(text).unwrap_or_default();
        if self.exponent.is_some() || !self.fraction.is_empty() {
            text.parse::<f64>().is_ok_and(f64::is_finite)
        } else if self.negative {
            text.parse::<i128>().is_ok()
        } else {
            text.parse::<u128>().is_ok()
        }
    }

    fn fits_numeric(&self) -> bool {
        let exponent = self.exponent.unwrap_or(0);
        if exponent.abs() >= EXPONENT_LIMIT {
            return false;
        }
        if self.fraction.len() as i64 - exponent > DIGITS_AFTER_POINT {
            return false;
        }
        // The power of ten of the leading digit, before the exponent.
        let leading = match self.integer.iter().position(|&digit| digit != b'0') {
            Some(index) => (self.integer.len() - index) as i64 - 1,
            None => match self.fraction.iter().position(|&digit| digit != b'0') {
                Some(index) => -(index as i64) - 1,
                None => return true,
            },
        };
        leading + exponent < DIGITS_BEFORE_POINT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fits(number: &str) -> bool {
        check_numeric(number.as_bytes()).is_ok()
    }

    #[test]
    fn numeric_limits_are_postgresqls() {
        // Each pair straddles a limit, as PostgreSQL 15's jsonb answered.
        for (holds, refused) in [
            ("1e131071", "1e131072"),
            ("9.9e131071", "10e131071"),
            ("1e-16383", "1e-16384"),
            ("0e-16383", "0e-16384"),
            ("1.5e-16382", "1.5e-16383"),
            ("0e1073741822", "0e1073741823"),
            ("0.000e131072", "-0e-99999999999999999999999"),
        ] {
            assert!(fits(holds), "{holds}");
            assert!(!fits(refused), "{refused}");
        }
        assert!(fits(&format!("0.{}", "1".repeat(16383))));
        assert!(!fits(&format!("0.{}", "1".repeat(16384))));
        assert!(fits(&"9".repeat(131_072)));
        assert!(!fits(&"9".repeat(131_073)));
        assert!(fits("-0") && fits("1.50") && fits("1E+2") && fits("1e-400"));
    }

    #[test]
    fn stand_ins_replace_only_what_simd_json_cannot_read() {
        let mut text = br#"{"a":1e400,"b":"1e400","c":[-1e400,1e-400,3.5],"d":-170141183460469231731687303715884105729,"e":340282366920938463463374607431768211455,"f":01e400,"g":"\"1e400"}"#.to_vec();
        assert!(stand_in_unreadable(&mut text));
        let below_i128 = "-170141183460469231731687303715884105729";
        assert_eq!(
            String::from_utf8(text).unwrap(),
            format!(
                r#"{{"a":1e308,"b":"1e400","c":[-1e308,1e-400,3.5],"d":-1e308{},"e":340282366920938463463374607431768211455,"f":01e400,"g":"\"1e400"}}"#,
                " ".repeat(below_i128.len() - 6)
            )
        );
        let mut readable = br#"{"a":[1.5,-0,1e308,99999999999999999999]}"#.to_vec();
        assert!(!stand_in_unreadable(&mut readable));
    }
}
