//! PostgreSQL's internal time, which tuples carry and the rollups bucket by:
//! microseconds since 2000-01-01 00:00 UTC.

use chrono::{DateTime, Utc};

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
pub const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// PostgreSQL's microseconds in a day, for the day a row falls in.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// PostgreSQL's microseconds as a time.
pub fn to_datetime(postgres_micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(postgres_micros + POSTGRES_EPOCH_UNIX_MICROS)
        .unwrap_or_default()
}

/// A time as PostgreSQL's internal microseconds.
pub fn from_datetime(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros() - POSTGRES_EPOCH_UNIX_MICROS
}
