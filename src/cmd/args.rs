//! Argument values the commands share, parsed one way everywhere: times and sizes as
//! users write them, and the library's enums as flag values (the library knows nothing
//! of clap).

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

use crate::Error;
use crate::db::partitions::Interval;
use crate::ingest::IndexStrategy;
use crate::ingest::encode::{Zone, timestamp};
use crate::report::Format;
use crate::report::scope::Metric;
use crate::report::timeline::Split;
use crate::report::top::Subject;
use crate::terminal::ColorChoice;

/// A moment as people write one: a duration ago (`1h`, `7d`, `30m`), `now`, `today`
/// or `yesterday` (midnight in `zone`), a plain date (`2026-11-26`, midnight in `zone`),
/// or an absolute time in any form `logctl load` accepts (one without an offset read in
/// `zone`). Errors name `flag`, since several flags take one.
pub fn parse_when(flag: &str, text: &str, zone: Zone) -> Result<DateTime<Utc>, Error> {
    let text = text.trim();
    if let Ok(duration) = humantime::parse_duration(text) {
        let duration = chrono::Duration::from_std(duration)
            .map_err(|_| Error::usage(format!("{flag} {text} is too long ago")))?;
        return Utc::now()
            .checked_sub_signed(duration)
            .ok_or_else(|| Error::usage(format!("{flag} {text} is too long ago")));
    }
    let now = Utc::now();
    let day = match text.to_ascii_lowercase().as_str() {
        "now" => return Ok(now),
        "today" => Some(today_in(zone, now)),
        "yesterday" => today_in(zone, now).pred_opt(),
        _ => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
    };
    let absolute = match day {
        Some(day) => format!("{day}T00:00:00"),
        None => text.to_string(),
    };
    let micros = timestamp::parse_text(&absolute, zone).map_err(|_| {
        Error::usage(format!(
            "{flag} `{text}` is not a time: write a duration ago (1h, 7d, 30m), today, \
             yesterday, a date (2026-11-26) or an RFC 3339 time (2026-11-26T08:00:00Z)"
        ))
    })?;
    Ok(timestamp::to_datetime(micros))
}

fn today_in(zone: Zone, now: DateTime<Utc>) -> NaiveDate {
    match zone {
        Zone::Utc => now.date_naive(),
        Zone::Fixed(offset) => now.with_timezone(&offset).date_naive(),
        Zone::Named(zone) => now.with_timezone(&zone).date_naive(),
    }
}

/// The time window of a report: `--since`, `--until` and the zone of the dates in them.
#[derive(Debug, Default, clap::Args)]
pub struct Window {
    /// Only events at or after WHEN: a duration ago (1h, 7d, 30m), today, yesterday, a
    /// date (2026-11-26, midnight in --timezone) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Only events before WHEN, in the same forms as --since
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,

    /// The zone of dates, today and yesterday in --since and --until: an IANA name
    /// (Europe/Berlin) or +HH:MM [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
}

/// A window resolved to instants; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    pub fn resolve(&self) -> Result<Span, Error> {
        let zone = parse_zone(self.timezone.as_deref())?;
        let when = |flag: &str, text: &Option<String>| {
            text.as_deref()
                .map(|text| parse_when(flag, text, zone))
                .transpose()
        };
        let span = Span {
            since: when("--since", &self.since)?,
            until: when("--until", &self.until)?,
        };
        if let (Some(since), Some(until)) = (span.since, span.until)
            && since >= until
        {
            return Err(Error::usage(format!(
                "--since ({since}) must come before --until ({until})"
            )));
        }
        Ok(span)
    }
}

/// `--timezone`, UTC when not given; its errors name the flag.
pub fn parse_zone(text: Option<&str>) -> Result<Zone, Error> {
    text.map_or(Ok(Zone::Utc), |text| {
        text.parse::<Zone>()
            .map_err(|error| Error::usage(format!("--timezone: {error}")))
    })
}

/// `--limit N`, where 0 means no limit.
pub fn limit(n: u64) -> Option<i64> {
    (n > 0).then(|| i64::try_from(n).unwrap_or(i64::MAX))
}

/// A size in bytes, as a flag or a config file gives it: 4MiB, 512KiB, 1GB or a plain
/// number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(usize);

impl Size {
    pub fn bytes(self) -> usize {
        self.0
    }
}

impl FromStr for Size {
    type Err = Error;

    fn from_str(text: &str) -> Result<Size, Error> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: usize = number
            .parse()
            .map_err(|_| Error::usage(format!("`{text}` is not a size such as 4MiB")))?;
        let factor = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1024,
            "m" | "mb" | "mib" => 1024 * 1024,
            "g" | "gb" | "gib" => 1024 * 1024 * 1024,
            _ => {
                return Err(Error::usage(format!(
                    "`{text}`: unknown unit `{unit}` (use KiB, MiB or GiB)"
                )));
            }
        };
        number
            .checked_mul(factor)
            .filter(|&size| size > 0)
            .map(Size)
            .ok_or_else(|| Error::usage(format!("`{text}` is not a usable size")))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Size, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Lets clap take a library enum as a flag's value, listing the values in `--help`:
/// the library itself knows nothing of clap.
macro_rules! value_enum {
    ($type:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl clap::ValueEnum for $type {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($type::$variant),+]
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(match self {
                    $($type::$variant => $name),+
                }))
            }
        }
    };
}

value_enum!(Format { Table => "table", Json => "json", Csv => "csv" });
value_enum!(Interval { Day => "day", Week => "week", Month => "month" });
value_enum!(IndexStrategy { Auto => "auto", Keep => "keep", Rebuild => "rebuild" });
value_enum!(Metric {
    Count => "count", Errors => "errors", ErrorRate => "error-rate", P50 => "p50",
    P90 => "p90", P95 => "p95", P99 => "p99", P999 => "p99.9", Max => "max",
    TotalTime => "total-time",
});
value_enum!(Split { Service => "service", Status => "status", StatusClass => "status-class", Level => "level" });
value_enum!(Subject { Routes => "routes", Services => "services", Status => "status", Methods => "methods" });
value_enum!(ColorChoice { Auto => "auto", Always => "always", Never => "never" });

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn dates_mean_midnight_in_the_zone() {
        assert_eq!(
            parse_when("--since", "2026-11-26", Zone::Utc).unwrap(),
            at("2026-11-26T00:00:00Z")
        );
        let berlin = parse_zone(Some("Europe/Berlin")).unwrap();
        assert_eq!(
            parse_when("--since", "2026-11-26", berlin).unwrap(),
            at("2026-11-25T23:00:00Z")
        );
        assert_eq!(
            parse_when("--until", "2026-11-26T08:00:00+02:00", Zone::Utc).unwrap(),
            at("2026-11-26T06:00:00Z")
        );
    }

    #[test]
    fn today_and_yesterday_are_midnights_a_day_apart() {
        let today = parse_when("--since", "today", Zone::Utc).unwrap();
        let yesterday = parse_when("--since", "Yesterday", Zone::Utc).unwrap();
        assert_eq!(today - yesterday, chrono::Duration::days(1));
        assert_eq!(today.date_naive(), Utc::now().date_naive());
        assert_eq!(today.time(), chrono::NaiveTime::MIN);
    }

    #[test]
    fn errors_name_the_flag() {
        let error = parse_when("--older-than", "someday", Zone::Utc).unwrap_err();
        assert!(
            error.to_string().starts_with("--older-than `someday`"),
            "{error}"
        );
        let window = Window {
            since: Some("2026-11-27".into()),
            until: Some("2026-11-26".into()),
            timezone: None,
        };
        assert!(
            window
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("--since")
        );
    }
}
