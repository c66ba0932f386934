//! The flags every report shares, turned into a window and a filter for the read API:
//! `--since/--until`, `--service`, `--route`, `--status`, `--level`, `--where`,
//! `--compare`, `--exact` and `--format`.

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Client;

use crate::Error;
use crate::analytics::read::{Filter, StatusFilter, newest_minute};
use crate::cmd::args::Window;
use crate::report::Format;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// --since [default: 24 hours before --until], --until [default: just after the
    /// newest event loaded], and the zone of the dates in them
    #[command(flatten)]
    pub window: Window,

    /// Only this service; repeatable
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,

    /// Only routes matching this pattern (`*` any text, `?` one character),
    /// e.g. '/api/v1/orders/*'
    #[arg(long, value_name = "PATTERN")]
    pub route: Option<String>,

    /// Only this status: a code (404) or a class (5xx); repeatable
    #[arg(long = "status", value_name = "STATUS")]
    pub statuses: Vec<String>,

    /// Only this level (error, warn, ...); repeatable
    #[arg(long = "level", value_name = "LEVEL")]
    pub levels: Vec<String>,

    /// Only events whose metadata has this value at this dotted path, e.g.
    /// --where metadata.region=eu-west-1; read from the raw rows (exact, slower); repeatable
    #[arg(long = "where", value_name = "metadata.PATH=VALUE")]
    pub wheres: Vec<String>,

    /// Compare with the period before (prev), or a day or a week before (1d, 1w): each
    /// figure with its previous value and the change
    #[arg(long, value_name = "PERIOD")]
    pub compare: Option<String>,

    /// Answer from the raw rows instead of the rollups: exact quantiles, slower
    #[arg(long)]
    pub exact: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The time a report covers, and the one it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub previous: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A window's instants: `--since` and `--until` as given, else the 24 hours up to the
/// newest event loaded (read from the rollups' newest minute, which an index finds at
/// once). A `--since` later than the newest event ends at now instead, so that the
/// empty answer can say where the data ends rather than refuse the window.
pub async fn instants(
    client: &Client,
    window: &Window,
) -> crate::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let span = window.resolve()?;
    let until = match span.until {
        Some(until) => until,
        None => {
            let newest = newest_minute(client).await?;
            match (newest, span.since) {
                (Some(newest), Some(since)) if since < newest => newest,
                (Some(newest), None) => newest,
                _ => Utc::now(),
            }
        }
    };
    let from = span.since.unwrap_or(until - TimeDelta::hours(24));
    if from >= until {
        return Err(Error::usage(format!(
            "the window is empty: --since ({from}) is not before --until ({until}); \
             give an earlier --since or a later --until"
        )));
    }
    Ok((from, until))
}

impl ReportArgs {
    /// The period: the window's `instants`, and the one to compare with.
    pub async fn period(&self, client: &Client) -> crate::Result<Period> {
        let (from, until) = instants(client, &self.window).await?;
        let previous = match self.compare.as_deref() {
            None => None,
            Some("prev") => Some((from - (until - from), from)),
            Some(text) => {
                let shift = humantime::parse_duration(text)
                    .ok()
                    .and_then(|shift| TimeDelta::from_std(shift).ok())
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "--compare `{text}` is neither `prev` nor a duration such as 1d or 1w"
                        ))
                    })?;
                Some((from - shift, until - shift))
            }
        };
        Ok(Period {
            from,
            until,
            previous,
        })
    }

    /// The filter the flags describe.
    pub fn filter(&self) -> crate::Result<Filter> {
        let statuses = self
            .statuses
            .iter()
            .map(|text| parse_status(text))
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = self
            .wheres
            .iter()
            .map(|text| parse_where(text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter {
            services: self.services.clone(),
            route: self.route.clone(),
            methods: Vec::new(),
            statuses,
            levels: self.levels.iter().map(|l| l.to_ascii_lowercase()).collect(),
            metadata,
        })
    }

    /// Whether the figures are exact (raw rows) or quantiles within 1% (rollups).
    pub fn is_exact(&self) -> bool {
        self.exact || !self.wheres.is_empty()
    }
}

/// `404` or `5xx`.
fn parse_status(text: &str) -> crate::Result<StatusFilter> {
    let bad = || {
        Error::usage(format!(
            "--status `{text}` is neither a status code (404) nor a class (5xx)"
        ))
    };
    let lower = text.trim().to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let class: i16 = class.parse().map_err(|_| bad())?;
        return if (1..=5).contains(&class) {
            Ok(StatusFilter::Class(class))
        } else {
            Err(bad())
        };
    }
    let code: i16 = lower.parse().map_err(|_| bad())?;
    if (100..=599).contains(&code) {
        Ok(StatusFilter::Exact(code))
    } else {
        Err(bad())
    }
}

/// `metadata.a.b=value`: the path below metadata, and the value as text.
fn parse_where(text: &str) -> crate::Result<(Vec<String>, String)> {
    let bad = || {
        Error::usage(format!(
            "--where `{text}`: write metadata.PATH=VALUE, e.g. metadata.region=eu-west-1"
        ))
    };
    let (path, value) = text.split_once('=').ok_or_else(bad)?;
    let path = path.trim().strip_prefix("metadata.").ok_or_else(bad)?;
    let keys: Vec<String> = path.split('.').map(str::to_string).collect();
    if keys.iter().any(String::is_empty) {
        return Err(bad());
    }
    Ok((keys, value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_codes_or_classes() {
        assert_eq!(parse_status("5xx").unwrap(), StatusFilter::Class(5));
        assert_eq!(parse_status("404").unwrap(), StatusFilter::Exact(404));
        for bad in ["6xx", "99", "x", "5x"] {
            assert!(parse_status(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn where_takes_a_dotted_path_below_metadata() {
        assert_eq!(
            parse_where("metadata.http.region=eu=1").unwrap(),
            (
                vec!["http".to_string(), "region".to_string()],
                "eu=1".to_string()
            )
        );
        assert!(parse_where("region=eu").is_err());
        assert!(parse_where("metadata..x=1").is_err());
    }
}
