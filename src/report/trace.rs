//! The trace report: every line of one request across services, in time order, with
//! the gap before each. Without an index on request ids (every index slows every load),
//! the lines are looked for in a window of time, which the BRIN index on created_at
//! narrows: the window asked for, or the minutes after the id's own time for ids that
//! carry one (UUID versions 1, 6 and 7, ULIDs), or the default window.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio_postgres::Client;
use uuid::Uuid;

use super::scope::{Period, moment};
use super::{Cell, Table, column_names};

const TRACE_SQL: &str = include_str!("../../sql/trace.sql");

/// How long before its id's time a request's first line may be logged (clocks differ).
pub const BEFORE_ID_TIME: TimeDelta = TimeDelta::minutes(2);
/// How long after its id's time a request's lines are looked for.
pub const AFTER_ID_TIME: TimeDelta = TimeDelta::minutes(15);

/// A request id as given: a UUID (or a 32-digit hex trace id), which logctl keeps in
/// the request_id column, or other text, which it keeps in metadata only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestId {
    Uuid(Uuid),
    Text(String),
}

impl RequestId {
    /// Read as the loader reads request ids.
    pub fn parse(text: &str) -> RequestId {
        let text = text.trim();
        match Uuid::try_parse(text) {
            Ok(id) => RequestId::Uuid(id),
            Err(_) => RequestId::Text(text.to_string()),
        }
    }

    /// When the id was made, for ids that carry it: UUID versions 1, 6 and 7 and ULIDs.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            RequestId::Uuid(id) => {
                let (seconds, nanos) = id.get_timestamp()?.to_unix();
                DateTime::from_timestamp(i64::try_from(seconds).ok()?, nanos)
            }
            RequestId::Text(text) => ulid_time(text),
        }
    }
}

/// The time of a ULID: its first ten characters, Crockford base-32 milliseconds.
fn ulid_time(text: &str) -> Option<DateTime<Utc>> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    // 26 characters hold 130 bits; a ULID's 128 leave the first character at most 7.
    if text.len() != 26 || text.as_bytes()[0] > b'7' {
        return None;
    }
    let mut value: u128 = 0;
    for byte in text.bytes() {
        let digit = ALPHABET
            .iter()
            .position(|&c| c == byte.to_ascii_uppercase())?;
        value = value << 5 | digit as u128;
    }
    DateTime::from_timestamp_millis(i64::try_from(value >> 80).ok()?)
}

/// How the lines were looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// With the request-id index, at any time (or within a window asked for).
    Index,
    /// In the window `--since`/`--until` asked for.
    AskedWindow,
    /// Around the time `--around` gave.
    Around,
    /// In the minutes around the time the id carries.
    IdTime,
    /// In the default window: the id carries no time and there is no index.
    DefaultWindow,
}

/// The report's data.
#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    pub request_id: String,
    pub search: Search,
    /// The time searched; None when the index searched all of it.
    pub searched: Option<Period>,
    /// In time order.
    pub lines: Vec<TraceLine>,
}

/// One line of the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceLine {
    pub time: DateTime<Utc>,
    /// Milliseconds since the line before; None for the first.
    pub gap_ms: Option<f64>,
    pub service: String,
    pub level: Option<String>,
    pub status: Option<i16>,
    pub latency_ms: Option<i32>,
    pub method: Option<String>,
    pub endpoint: Option<String>,
    pub message: Option<String>,
}

/// The lines of the request, in `searched` when given.
pub async fn report(
    client: &Client,
    id: &RequestId,
    search: Search,
    searched: Option<Period>,
) -> crate::Result<TraceReport> {
    let (uuid, text) = match id {
        RequestId::Uuid(id) => (Some(*id), None),
        RequestId::Text(text) => (None, Some(text.as_str())),
    };
    let (from, until) = (searched.map(|p| p.from), searched.map(|p| p.until));
    let rows = client
        .query(TRACE_SQL, &[&uuid, &text, &from, &until])
        .await?;
    let mut previous: Option<DateTime<Utc>> = None;
    let lines = rows
        .iter()
        .map(|row| {
            let time: DateTime<Utc> = row.get(0);
            let gap_ms = previous.map(|before| milliseconds(time - before));
            previous = Some(time);
            TraceLine {
                time,
                gap_ms,
                service: row.get(1),
                level: row.get(2),
                status: row.get(3),
                latency_ms: row.get(4),
                method: row.get(5),
                endpoint: row.get(6),
                message: row.get(7),
            }
        })
        .collect();
    Ok(TraceReport {
        request_id: match id {
            RequestId::Uuid(id) => id.to_string(),
            RequestId::Text(text) => text.clone(),
        },
        search,
        searched,
        lines,
    })
}

fn milliseconds(delta: TimeDelta) -> f64 {
    delta.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

impl TraceReport {
    /// What was searched, in words.
    fn searched(&self) -> String {
        let period = self.searched.map(|p| p.describe()).unwrap_or_default();
        match self.search {
            Search::Index if self.searched.is_none() => {
                "found with the request-id index".to_string()
            }
            Search::Index | Search::AskedWindow => format!("searched {period}"),
            Search::Around => format!("searched {period}, around the time asked for"),
            Search::IdTime => format!(
                "searched {period}, from {} minutes before the id's time to {} after",
                BEFORE_ID_TIME.num_minutes(),
                AFTER_ID_TIME.num_minutes()
            ),
            Search::DefaultWindow => format!(
                "searched {period} only, as the id carries no time \
                 (--since/--until or --around search elsewhere)"
            ),
        }
    }

    pub fn table(&self) -> Table {
        let services = {
            let mut names: Vec<&str> = self.lines.iter().map(|l| l.service.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        };
        let summary = match (self.lines.first(), self.lines.last()) {
            (Some(first), Some(last)) => format!(
                "{} lines from {services} services, {} to {} UTC ({} ms)",
                self.lines.len(),
                moment(first.time),
                moment(last.time),
                milliseconds(last.time - first.time)
            ),
            _ => "no lines".to_string(),
        };
        let text = |value: &Option<String>| value.clone().map_or(Cell::Null, Cell::Text);
        Table {
            name: "trace",
            title: format!(
                "Request {}: {summary}; {}",
                self.request_id,
                self.searched()
            ),
            columns: column_names(&[
                "time",
                "gap_ms",
                "service",
                "level",
                "status",
                "latency_ms",
                "method",
                "endpoint",
                "message",
            ]),
            rows: self
                .lines
                .iter()
                .map(|line| {
                    vec![
                        Cell::Time(line.time),
                        line.gap_ms.map_or(Cell::Null, |gap| Cell::decimal(gap, 3)),
                        Cell::Text(line.service.clone()),
                        text(&line.level),
                        line.status.map_or(Cell::Null, |s| Cell::Int(s.into())),
                        line.latency_ms.map_or(Cell::Null, |l| Cell::Int(l.into())),
                        text(&line.method),
                        text(&line.endpoint),
                        text(&line.message),
                    ]
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn ids_that_carry_their_time_give_it() {
        let v7 = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_795_478_400,
            250_000_000,
        ));
        assert_eq!(
            RequestId::parse(&v7.to_string()).time(),
            Some(at("2026-11-24T00:00:00.250Z"))
        );
        // A version 1 UUID from RFC 9562's examples: 2022-02-22 19:22:22 UTC.
        assert_eq!(
            RequestId::parse("C232AB00-9414-11EC-B3C8-9F6BDECED846").time(),
            Some(at("2022-02-22T19:22:22Z"))
        );
        assert_eq!(
            RequestId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").time(),
            Some(at("2016-07-30T23:54:10.259Z"))
        );
        assert_eq!(
            RequestId::parse("01arz3ndektsv4rrffq69g5fav").time(),
            Some(at("2016-07-30T23:54:10.259Z"))
        );
    }

    #[test]
    fn other_ids_carry_no_time() {
        for id in [
            "3f2c8a9e-5b1d-4e7f-9a6b-0c1d2e3f4a5b",
            "req-42",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5FA!",
        ] {
            assert_eq!(RequestId::parse(id).time(), None, "{id}");
        }
        assert_eq!(
            RequestId::parse(" 4bf92f3577b34da6a3ce929d0e0e4736 "),
            RequestId::Uuid(Uuid::parse_str("4bf92f35-77b3-4da6-a3ce-929d0e0e4736").unwrap())
        );
        assert_eq!(RequestId::parse("req-42"), RequestId::Text("req-42".into()));
    }

    #[test]
    fn gaps_are_milliseconds_to_the_microsecond() {
        assert_eq!(milliseconds(TimeDelta::microseconds(1_234_567)), 1234.567);
    }
}
