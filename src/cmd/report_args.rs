//! The flags every report shares, turned into a window and a filter for the read API:
//! `--since/--until`, `--service`, `--route`, `--status`, `--level`, `--where`,
//! `--compare`, `--exact` and `--format`.

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Client;

use crate::Error;
use crate::analytics::read::{Filter, StatusFilter};
use crate::cmd::args::Window;

use crate::db::{Database, Isolation, transaction};
use crate::report::scope::{self, Scope, newest_minute, why_empty};
use crate::report::{Format, Table};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// --since [default: 24 hours before --until], --until [default: now after a
    /// --since, else the end of the hour of the newest event loaded], and the zone of
    /// the dates in them; a duration ago is widened to whole hours from a day up (24h,
    /// 7d), else to whole minutes (15m)
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

/// A window's instants: the window's flags (`--since` alone ends now; a duration ago is
/// widened to whole hours or minutes, see `window_ago`), else the 24 hours up to the end
/// of the hour of the newest event loaded (read from the rollups' newest minute, which
/// an index finds at once).
pub async fn instants(
    client: &Client,
    window: &Window,
) -> crate::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let span = window.resolve()?;
    // Windows nobody wrote an instant for are cut at whole hours (the default, and a
    // duration of a day or more ago) or whole minutes (a shorter one), so that the
    // rollups answer them alone and the raw rows are left unread: no grain below the
    // hour keeps routes, methods or exact statuses. The heading shows the window used.
    let ago = window
        .since
        .as_deref()
        .and_then(|since| humantime::parse_duration(since).ok())
        .and_then(|duration| TimeDelta::from_std(duration).ok());
    let (from, until) = match (span.since, span.until) {
        (Some(since), Some(until)) => (since, until),
        (Some(since), None) => match ago {
            Some(ago) => window_ago(ago, Utc::now()),
            None => (since, Utc::now()),
        },
        (None, Some(until)) => (until - TimeDelta::hours(24), until),
        (None, None) => {
            let newest = newest_minute(client).await?.unwrap_or_else(Utc::now);
            let until = ceil(newest, 3600);
            (until - TimeDelta::hours(24), until)
        }
    };
    if from >= until {
        return Err(Error::usage(format!(
            "the window is empty: --since ({from}) is not before --until ({until}); give an \
             earlier --since or a later --until"
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

    /// The scope of a report: the period, the filters, and whether to read raw rows.
    pub async fn scope(&self, client: &Client) -> crate::Result<Scope> {
        let period = self.period(client).await?;
        Ok(Scope {
            from: period.from,
            until: period.until,
            previous: period.previous,
            filter: self.filter()?,
            exact: self.exact,
        })
    }
}

/// The instant at or before `time` that is a whole number of `seconds` since the epoch.
fn floor(time: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(time.timestamp().div_euclid(seconds) * seconds, 0).unwrap_or(time)
}

/// The window of a duration `ago` at `now`, widened (never narrowed) to whole hours
/// for a day or more, where an hour more is little and the routes' hour cells then
/// answer alone, else to whole minutes, where `check --since 15m` wants its minutes.
fn window_ago(ago: TimeDelta, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let unit = if ago >= TimeDelta::days(1) { 3600 } else { 60 };
    (floor(now - ago, unit), ceil(now, unit))
}

/// The first instant at or after `time` that is a whole number of `seconds`.
fn ceil(time: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    let floored = floor(time, seconds);
    if floored == time {
        time
    } else {
        floored + TimeDelta::seconds(seconds)
    }
}

/// What a report read, in one snapshot: the database it names, its data, and why the
/// scope held no events when it held none.
pub struct Gathered<T> {
    pub database: String,
    pub data: T,
    pub empty: Option<String>,
}

impl ReportArgs {
    /// Runs a report's work in one read-only snapshot of the database: `work` gets the
    /// scope the flags describe and returns its data with the number of events seen.
    pub async fn gather<T>(
        &self,
        database_url: Option<&str>,
        work: impl AsyncFn(&Client, &Scope) -> crate::Result<(T, u64)>,
    ) -> anyhow::Result<Gathered<T>> {
        let database = Database::open_existing(database_url, 1).await?;
        let connection = database.get().await?;
        let work = &work;
        let (data, empty) = transaction(&connection, Isolation::Snapshot, |client| async move {
            let scope = self.scope(client).await?;
            let (data, events) = work(client, &scope).await?;
            let empty = match events {
                0 => Some(why_empty(client, &scope).await?),
                _ => None,
            };
            Ok((data, empty))
        })
        .await?;
        Ok(Gathered {
            database: database.target.describe(),
            data,
            empty,
        })
    }

    /// Prints a report's tables in the format asked for (see `scope::print`).
    pub fn print<T>(
        &self,
        gathered: &Gathered<T>,
        tables: Vec<Table>,
        pictures: &[String],
        always: bool,
    ) -> anyhow::Result<()> {
        scope::print(
            gathered.database.clone(),
            tables,
            pictures,
            gathered.empty.as_deref(),
            self.format,
            always,
        )?;
        Ok(())
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
    fn durations_ago_end_at_the_end_of_the_hour_or_minute() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let now = at("2026-11-27T15:47:12Z");
        assert_eq!(
            window_ago(TimeDelta::hours(24), now),
            (at("2026-11-26T15:00:00Z"), at("2026-11-27T16:00:00Z")),
            "whole hours: the rollups answer a route's question alone"
        );
        assert_eq!(
            window_ago(TimeDelta::hours(1), now),
            (at("2026-11-27T14:47:00Z"), at("2026-11-27T15:48:00Z")),
            "under a day, whole minutes: a check's last hour stays an hour"
        );
        assert_eq!(
            window_ago(TimeDelta::seconds(90), now),
            (at("2026-11-27T15:45:00Z"), at("2026-11-27T15:48:00Z")),
            "never less than asked"
        );
        assert_eq!(
            window_ago(TimeDelta::milliseconds(500), now),
            (at("2026-11-27T15:47:00Z"), at("2026-11-27T15:48:00Z"))
        );
    }

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
