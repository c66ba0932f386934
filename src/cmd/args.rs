//! Argument values the commands share, parsed one way everywhere: times and sizes as
//! users write them, and the library's enums as flag values (the library knows nothing
//! of clap).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use crate::Error;
use crate::db::partitions::Interval;
use crate::ingest::IndexStrategy;
use crate::ingest::encode::timestamp;
use crate::report::Format;

/// A moment given as a duration ago (`1h`, `7d`, `30m`) or as an absolute time in any
/// form `logctl load` accepts; errors name `flag`, since several flags take one.
pub fn parse_when(flag: &str, text: &str) -> Result<DateTime<Utc>, Error> {
    if let Ok(duration) = humantime::parse_duration(text) {
        let duration = chrono::Duration::from_std(duration)
            .map_err(|_| Error::usage(format!("{flag} {text} is too long ago")))?;
        return Ok(Utc::now() - duration);
    }
    let micros = timestamp::parse_text(text, timestamp::Zone::Utc).map_err(|_| {
        Error::usage(format!(
            "{flag} `{text}` is neither a duration (1h, 7d, 30m) nor an RFC 3339 time"
        ))
    })?;
    Ok(timestamp::to_datetime(micros))
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
