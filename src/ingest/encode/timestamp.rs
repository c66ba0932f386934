//! Timestamps as logs write them, turned into PostgreSQL's internal timestamptz
//! (microseconds since 2000-01-01 UTC): RFC 3339 in its common variants, epoch
//! numbers chosen by magnitude, and nginx's `time_local`.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone as _};

use crate::{Error, Invalid};

use crate::pgtime::POSTGRES_EPOCH_UNIX_MICROS;
pub use crate::pgtime::{MICROS_PER_DAY, from_datetime, to_datetime};

/// The zone a timestamp without an offset is read in (`--timezone`).
#[derive(Debug, Clone, Copy, Default)]
pub enum Zone {
    #[default]
    Utc,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl std::str::FromStr for Zone {
    type Err = Error;
    fn from_str(text: &str) -> Result<Zone, Error> {
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Zone::Utc);
        }
        if let Some(offset) = parse_offset(text.as_bytes()) {
            return FixedOffset::east_opt(offset)
                .map(Zone::Fixed)
                .ok_or_else(|| Error::Usage(format!("time zone offset `{text}` is out of range")));
        }
        text.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            Error::Usage(format!("unknown time zone `{text}`: use an IANA name such as Europe/Berlin, or an offset such as +02:00"))
        })
    }
}

/// A string timestamp: RFC 3339 (`T`, `t` or a space between date and time, any
/// fraction, `Z` or an offset, or no offset), epoch digits, or nginx's format.
pub fn parse_text(text: &str, zone: Zone) -> Result<i64, Invalid> {
    let trimmed = text.trim();
    let bytes = trimmed.as_bytes();
    if let Some(micros) = parse_iso(bytes, zone) {
        return Ok(micros);
    }
    if !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && let Ok(number) = trimmed.parse::<f64>()
    {
        if trimmed.contains('.') {
            return parse_epoch_float(number);
        }
        if let Ok(integer) = trimmed.parse::<i64>() {
            return parse_epoch_integer(integer);
        }
    }
    if let Ok(parsed) = DateTime::parse_from_str(trimmed, "%d/%b/%Y:%H:%M:%S %z") {
        return Ok(to_postgres(
            parsed.timestamp(),
            parsed.timestamp_subsec_nanos(),
        ));
    }
    Err(Invalid(format!(
        "timestamp `{}` is not RFC 3339, epoch time or nginx's time_local",
        shorten(trimmed)
    )))
}

/// An epoch number: seconds, milliseconds, microseconds or nanoseconds by magnitude.
pub fn parse_epoch_integer(value: i64) -> Result<i64, Invalid> {
    let magnitude = value.unsigned_abs();
    let unix_micros = if magnitude < 100_000_000_000 {
        value.checked_mul(1_000_000)
    } else if magnitude < 100_000_000_000_000 {
        value.checked_mul(1_000)
    } else if magnitude < 100_000_000_000_000_000 {
        Some(value)
    } else {
        Some(div_round(value, 1_000))
    };
    unix_micros
        .and_then(|micros| micros.checked_sub(POSTGRES_EPOCH_UNIX_MICROS))
        .ok_or_else(|| Invalid(format!("epoch timestamp {value} is out of range")))
}

/// A fractional epoch number (zap's `ts: 1732443600.123456`), by the same magnitudes.
pub fn parse_epoch_float(value: f64) -> Result<i64, Invalid> {
    if !value.is_finite() {
        return Err(Invalid(format!(
            "epoch timestamp {value} is not a finite number"
        )));
    }
    let magnitude = value.abs();
    let micros = if magnitude < 1e11 {
        value * 1e6
    } else if magnitude < 1e14 {
        value * 1e3
    } else if magnitude < 1e17 {
        value
    } else {
        value / 1e3
    };
    let micros = micros.round();
    if micros.abs() > 9.0e15 {
        return Err(Invalid(format!("epoch timestamp {value} is out of range")));
    }
    Ok(micros as i64 - POSTGRES_EPOCH_UNIX_MICROS)
}

/// The fast path for ISO 8601 / RFC 3339 date-times; None when the text has another form.
fn parse_iso(b: &[u8], zone: Zone) -> Option<i64> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos: u32 = 0;
    if let Some((b'.' | b',', fraction)) = rest.split_first() {
        let length = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if length == 0 {
            return None;
        }
        for (position, digit) in fraction[..length].iter().enumerate() {
            if position < 9 {
                nanos = nanos * 10 + u32::from(digit - b'0');
            }
        }
        for _ in length..9 {
            nanos *= 10;
        }
        rest = &fraction[length..];
    }
    let seconds =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let offset = if rest.is_empty() {
        return Some(to_postgres(
            seconds - naive_offset(seconds, nanos, zone)?,
            nanos,
        ));
    } else if rest == b"Z" || rest == b"z" {
        0
    } else {
        i64::from(parse_offset(rest)?)
    };
    Some(to_postgres(seconds - offset, nanos))
}

/// The offset in seconds for a local time in `zone`; None for a time skipped by DST.
fn naive_offset(local_seconds: i64, nanos: u32, zone: Zone) -> Option<i64> {
    let offset = |naive: NaiveDateTime| -> Option<i64> {
        match zone {
            Zone::Utc => Some(0),
            Zone::Fixed(fixed) => Some(i64::from(fixed.local_minus_utc())),
            Zone::Named(tz) => tz
                .offset_from_local_datetime(&naive)
                .earliest()
                .map(|o| i64::from(o.fix().local_minus_utc())),
        }
    };
    let naive = DateTime::from_timestamp(local_seconds, nanos.min(999_999_999))?.naive_utc();
    offset(naive)
}

/// `Z`-less offsets: `+02:00`, `+0200`, `+02`, `-05:30`.
fn parse_offset(b: &[u8]) -> Option<i32> {
    let (sign, rest) = match b.split_first()? {
        (b'+', rest) => (1, rest),
        (b'-', rest) => (-1, rest),
        _ => return None,
    };
    let (hours, minutes) = match rest.len() {
        2 => (digits(rest)?, 0),
        4 => (digits(&rest[..2])?, digits(&rest[2..])?),
        5 if rest[2] == b':' => (digits(&rest[..2])?, digits(&rest[3..])?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60) as i32)
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |value, &c| {
        c.is_ascii_digit().then(|| value * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Unix seconds plus nanoseconds, rounded to PostgreSQL's microseconds, as PostgreSQL rounds.
fn to_postgres(unix_seconds: i64, nanos: u32) -> i64 {
    unix_seconds * 1_000_000 + i64::from((nanos + 500) / 1000) - POSTGRES_EPOCH_UNIX_MICROS
}

fn div_round(value: i64, divisor: i64) -> i64 {
    let quotient = value.div_euclid(divisor);
    if value.rem_euclid(divisor) * 2 >= divisor {
        quotient + 1
    } else {
        quotient
    }
}

fn shorten(text: &str) -> String {
    if text.len() <= 64 {
        return text.to_string();
    }
    let mut end = 64;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> i64 {
        parse_text(text, Zone::Utc).unwrap()
    }

    const NOV_24_2026_10H: i64 = 1_795_514_400 * 1_000_000 - POSTGRES_EPOCH_UNIX_MICROS;

    #[test]
    fn rfc3339_variants_agree() {
        assert_eq!(utc("2026-11-24T10:00:00Z"), NOV_24_2026_10H);
        assert_eq!(utc("2026-11-24 10:00:00Z"), NOV_24_2026_10H);
        assert_eq!(utc("2026-11-24t10:00:00z"), NOV_24_2026_10H);
        assert_eq!(utc("2026-11-24T12:00:00+02:00"), NOV_24_2026_10H);
        assert_eq!(utc("2026-11-24T05:30:00-0430"), NOV_24_2026_10H);
        assert_eq!(utc("2026-11-24T10:00:00"), NOV_24_2026_10H);
        assert_eq!(utc("2026-11-24T10:00:00.000001Z"), NOV_24_2026_10H + 1);
        assert_eq!(utc("2026-11-24T10:00:00.0000015Z"), NOV_24_2026_10H + 2);
        assert_eq!(
            utc("2026-11-24T10:00:00.123456789Z"),
            NOV_24_2026_10H + 123_457
        );
    }

    #[test]
    fn epoch_numbers_by_magnitude() {
        assert_eq!(parse_epoch_integer(1_795_514_400).unwrap(), NOV_24_2026_10H);
        assert_eq!(
            parse_epoch_integer(1_795_514_400_000).unwrap(),
            NOV_24_2026_10H
        );
        assert_eq!(
            parse_epoch_integer(1_795_514_400_000_000).unwrap(),
            NOV_24_2026_10H
        );
        assert_eq!(
            parse_epoch_integer(1_795_514_400_000_000_000).unwrap(),
            NOV_24_2026_10H
        );
        assert_eq!(
            parse_epoch_float(1_795_514_400.25).unwrap(),
            NOV_24_2026_10H + 250_000
        );
        assert_eq!(utc("1795514400"), NOV_24_2026_10H);
        assert_eq!(utc("1795514400123"), NOV_24_2026_10H + 123_000);
    }

    #[test]
    fn nginx_time_local() {
        assert_eq!(utc("24/Nov/2026:11:00:00 +0100"), NOV_24_2026_10H);
    }

    #[test]
    fn zones_apply_only_without_offset() {
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            parse_text("2026-11-24T11:00:00", berlin).unwrap(),
            NOV_24_2026_10H
        );
        assert_eq!(
            parse_text("2026-11-24T10:00:00Z", berlin).unwrap(),
            NOV_24_2026_10H
        );
        let fixed: Zone = "-01:00".parse().unwrap();
        assert_eq!(
            parse_text("2026-11-24T09:00:00", fixed).unwrap(),
            NOV_24_2026_10H
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-24T10:00:00+25:00",
            "2026-11-24T10:00",
        ] {
            assert!(
                parse_text(bad, Zone::Utc).is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
