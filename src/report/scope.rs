//! What every analytics report shares: its scope (the window, the window it is compared
//! with, the filters and whether the figures are exact), the measures a report can show
//! (`Metric`) and the headline figures of a set of events (`Figures`), the heading that
//! echoes all of that, the explanation of an empty answer, and the printing of a report
//! that may be empty.

use std::io::{self, Write};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use crate::analytics::read::{Filter, Query, Stats, StatusFilter};
use crate::report::{Cell, Column, Format, Report, Table, render};

/// A stretch of time, `until` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Period {
    /// `2026-11-24 00:00 to 2026-11-25 00:00 UTC (1day)`.
    pub fn describe(&self) -> String {
        let length = (self.until - self.from)
            .to_std()
            .map(|length| {
                humantime::format_duration(std::time::Duration::from_secs(length.as_secs()))
            })
            .map_or_else(|_| "empty".to_string(), |length| length.to_string());
        format!("{} ({length})", span(self.from, self.until))
    }
}

/// A time as a heading shows it: to the minute, the second or the millisecond, as far
/// as it has any.
pub fn moment(time: DateTime<Utc>) -> String {
    let format = if time.timestamp_subsec_millis() > 0 {
        "%Y-%m-%d %H:%M:%S%.3f"
    } else if time.timestamp() % 60 > 0 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    time.format(format).to_string()
}

/// The events a report is about.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The window compared with, when asked for.
    pub previous: Option<(DateTime<Utc>, DateTime<Utc>)>,
    #[serde(skip)]
    pub filter: Filter,
    /// Answered from the raw rows (exact quantiles) rather than the rollups.
    pub exact: bool,
}

impl Scope {
    pub fn new(window: Period, previous: Option<Period>, filter: &Filter, exact: bool) -> Scope {
        Scope {
            from: window.from,
            until: window.until,
            previous: previous.map(|period| (period.from, period.until)),
            filter: filter.clone(),
            exact,
        }
    }

    /// The question for the read API over the whole window, one group, one bucket.
    pub fn query(&self) -> Query {
        let mut query = Query::new(self.from, self.until);
        query.filter = self.filter.clone();
        query.exact = self.exact;
        query
    }

    /// The same question over the window compared with.
    pub fn previous_query(&self, current: &Query) -> Option<Query> {
        let (from, until) = self.previous?;
        let mut query = current.clone();
        query.from = from;
        query.until = until;
        Some(query)
    }

    /// Whether quantiles are exact: asked for, or forced by a metadata filter.
    pub fn is_exact(&self) -> bool {
        self.query().is_exact()
    }

    /// The filters as `name=value` words, for headings.
    pub fn filters(&self) -> Vec<String> {
        let filter = &self.filter;
        let mut words: Vec<String> = Vec::new();
        words.extend(filter.services.iter().map(|s| format!("service={s}")));
        words.extend(filter.route.iter().map(|r| format!("route={r}")));
        words.extend(filter.methods.iter().map(|m| format!("method={m}")));
        words.extend(filter.statuses.iter().map(|status| match status {
            StatusFilter::Exact(code) => format!("status={code}"),
            StatusFilter::Class(class) => format!("status={class}xx"),
        }));
        words.extend(filter.levels.iter().map(|l| format!("level={l}")));
        words.extend(
            filter
                .metadata
                .iter()
                .map(|(path, value)| format!("metadata.{}={value}", path.join("."))),
        );
        words
    }

    /// A table's heading: what it shows, the window, the filters, the window compared
    /// with, and whether quantiles are exact or within 1%.
    pub fn heading(&self, what: &str) -> String {
        let mut heading = format!("{what}, {}", span(self.from, self.until));
        let filters = self.filters();
        if !filters.is_empty() {
            heading.push_str(&format!(", {}", filters.join(" ")));
        }
        if let Some((from, until)) = self.previous {
            heading.push_str(&format!(", compared with {}", span(from, until)));
        }
        heading.push_str(if self.is_exact() {
            " (exact, from raw rows)"
        } else {
            " (quantiles within 1%, from rollups)"
        });
        heading
    }
}

/// `2026-11-26 09:00 to 2026-11-27 09:00 UTC`, seconds only when there are some.
fn span(from: DateTime<Utc>, until: DateTime<Utc>) -> String {
    format!("{} to {} UTC", moment(from), moment(until))
}

/// Why a window holds no events: the newest event's time and the services known, so
/// that the user can choose another window or name.
pub async fn why_empty(client: &Client, scope: &Scope) -> crate::Result<String> {
    let mut why = format!("no events {}", span(scope.from, scope.until));
    let filters = scope.filters();
    if !filters.is_empty() {
        why.push_str(&format!(" match {}", filters.join(" ")));
    }
    why.push_str("; ");
    why.push_str(&where_data_ends(client, &scope.filter.services).await?);
    Ok(why)
}

/// Where the data ends and what it names: which of the services asked for do not
/// exist, the newest event's time, and the services there are.
pub async fn where_data_ends(client: &Client, services_asked: &[String]) -> crate::Result<String> {
    let services: Vec<String> = client
        .query("SELECT service_name FROM services ORDER BY 1", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let Some(newest) = newest_event(client).await? else {
        return Ok("The database holds no events yet: load some with `logctl load`.".into());
    };
    let unknown: Vec<&str> = services_asked
        .iter()
        .filter(|name| !services.contains(name))
        .map(String::as_str)
        .collect();
    let mut reason = String::new();
    if !unknown.is_empty() {
        reason.push_str(&format!("No service is named {}. ", unknown.join(" or ")));
    }
    reason.push_str(&format!(
        "The newest event is from {} UTC; the services are {}.",
        moment(newest),
        services.join(", ")
    ));
    Ok(reason)
}

/// The newest event's time: the rollups name its minute, and the rows of that minute
/// (found with the BRIN index) its time.
async fn newest_event(client: &Client) -> crate::Result<Option<DateTime<Utc>>> {
    let Some(after_it) = newest_minute(client).await? else {
        return Ok(None);
    };
    let row = client
        .query_one(
            "SELECT max(created_at) FROM log_events WHERE created_at >= $1",
            &[&(after_it - TimeDelta::minutes(1))],
        )
        .await?;
    Ok(row.get(0))
}

/// Prints a report's tables read from `database` in `format`, and on a text display the
/// `pictures` after them. An answer that found nothing says why on stderr, a diagnostic
/// like any other; its tables are printed only when `always` (a check's measured
/// values), or when a script reads JSON or CSV, which then gets its empty data.
pub fn print(
    database: String,
    tables: Vec<Table>,
    pictures: &[String],
    empty_because: Option<&str>,
    format: Format,
    always: bool,
) -> io::Result<()> {
    if let Some(reason) = empty_because {
        eprintln!("logctl: {reason}");
        if !always && format == Format::Table {
            return Ok(());
        }
    }
    render::print(&Report { database, tables }, format)?;
    if format == Format::Table && !pictures.is_empty() {
        let mut out = io::stdout().lock();
        let written = writeln!(out)
            .and_then(|()| pictures.iter().try_for_each(|line| writeln!(out, "{line}")));
        match written {
            Err(error) if error.kind() != io::ErrorKind::BrokenPipe => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

/// The end of the newest minute the rollups hold (compacted or pending): the end of a
/// window that ends with the data. Both maxima are read from an index.
pub async fn newest_minute(client: &Client) -> crate::Result<Option<DateTime<Utc>>> {
    let row = client
        .query_one(
            "SELECT greatest((SELECT max(minute) FROM logctl_rollup_total_minute), \
                             (SELECT max(last_minute) FROM logctl_rollup_deltas))",
            &[],
        )
        .await?;
    Ok(row
        .get::<_, Option<DateTime<Utc>>>(0)
        .map(|minute| minute + chrono::TimeDelta::minutes(1)))
}

/// A measure of a set of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    Count,
    Errors,
    ErrorRate,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    /// The sum of the latencies.
    TotalTime,
}

impl Metric {
    /// The name used in flags, columns and conditions.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Count => "count",
            Metric::Errors => "errors",
            Metric::ErrorRate => "error-rate",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Max => "max",
            Metric::TotalTime => "total-time",
        }
    }

    pub const ALL: [Metric; 10] = [
        Metric::Count,
        Metric::Errors,
        Metric::ErrorRate,
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::TotalTime,
    ];

    /// The quantile a latency metric reads, if it is one.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.5),
            Metric::P90 => Some(0.9),
            Metric::P95 => Some(0.95),
            Metric::P99 => Some(0.99),
            Metric::P999 => Some(0.999),
            _ => None,
        }
    }

    /// Whether the metric needs latencies (sketches), not counts alone.
    pub fn needs_latency(self) -> bool {
        !matches!(self, Metric::Count | Metric::Errors | Metric::ErrorRate)
    }

    /// The metric's value over some events; None where it has none (no events, no
    /// latency). Counts of no events are 0.
    pub fn of(self, stats: &Stats) -> Option<f64> {
        match self {
            Metric::Count => Some(stats.events as f64),
            Metric::Errors => Some(stats.errors as f64),
            Metric::ErrorRate => stats.error_rate(),
            Metric::Max => stats.latency.max().map(f64::from),
            Metric::TotalTime => (stats.latency.count() > 0).then(|| stats.latency.sum() as f64),
            quantile => stats.quantile(quantile.quantile()?),
        }
    }

    /// The value as a table cell: counts whole, a rate as a percentage with two
    /// decimals, latencies in milliseconds with one.
    pub fn cell(self, value: Option<f64>) -> Cell {
        match (self, value) {
            (_, None) => Cell::Null,
            (Metric::Count | Metric::Errors, Some(v)) => Cell::Int(v as i64),
            (Metric::ErrorRate, Some(v)) => Cell::decimal(v * 100.0, 2),
            (Metric::TotalTime, Some(v)) => Cell::decimal(v / 1000.0, 1),
            (_, Some(v)) => Cell::decimal(v, 1),
        }
    }

    /// The unit of `cell`'s values, for column names and scales.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Count | Metric::Errors => "",
            Metric::ErrorRate => "%",
            Metric::TotalTime => "s",
            _ => "ms",
        }
    }

    /// The column name: the metric with its unit (`p99_ms`, `error_rate_pct`).
    pub fn column(self) -> &'static str {
        match self {
            Metric::Count => "requests",
            Metric::Errors => "errors",
            Metric::ErrorRate => "error_rate_pct",
            Metric::P50 => "p50_ms",
            Metric::P90 => "p90_ms",
            Metric::P95 => "p95_ms",
            Metric::P99 => "p99_ms",
            Metric::P999 => "p99_9_ms",
            Metric::Max => "max_ms",
            Metric::TotalTime => "total_time_s",
        }
    }
}

/// The change from `before` to `now` as a fraction; None when there was nothing before.
pub fn change(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    match (now, before) {
        (Some(now), Some(before)) if before != 0.0 => Some((now - before) / before),
        _ => None,
    }
}

/// A figure's cells: its value, and when compared its value before (None inside: none
/// there) and the change, each value shown by `cell`.
pub fn compared_cells_with(
    cell: impl Fn(Option<f64>) -> Cell,
    now: Option<f64>,
    before: Option<Option<f64>>,
) -> Vec<Cell> {
    let mut cells = vec![cell(now)];
    if let Some(before) = before {
        cells.push(cell(before));
        cells.push(change(now, before).map_or(Cell::Null, Cell::change));
    }
    cells
}

/// `compared_cells_with` for a metric, shown as the metric shows its values.
pub fn compared_cells(metric: Metric, now: Option<f64>, before: Option<Option<f64>>) -> Vec<Cell> {
    compared_cells_with(|value| metric.cell(value), now, before)
}

/// A figure's columns: its own, and when compared `{column}_before` and
/// `{column}_change` beside it (the order of their cells).
pub fn compared_columns(column: &'static str, is_compared: bool) -> Vec<Column> {
    let mut columns = vec![Column::Borrowed(column)];
    if is_compared {
        columns.push(format!("{column}_before").into());
        columns.push(format!("{column}_change").into());
    }
    columns
}

/// The headline figures of a set of events, as every report shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Figures {
    /// The metrics `Figures` holds, in column order.
    pub const METRICS: [Metric; 6] = [
        Metric::Count,
        Metric::Errors,
        Metric::ErrorRate,
        Metric::P50,
        Metric::P95,
        Metric::P99,
    ];

    pub fn of(stats: &Stats) -> Figures {
        Figures {
            requests: stats.events,
            errors: stats.errors,
            error_rate: stats.error_rate(),
            p50_ms: Metric::P50.of(stats),
            p95_ms: Metric::P95.of(stats),
            p99_ms: Metric::P99.of(stats),
        }
    }

    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Count => Some(self.requests as f64),
            Metric::Errors => Some(self.errors as f64),
            Metric::ErrorRate => self.error_rate,
            Metric::P50 => self.p50_ms,
            Metric::P95 => self.p95_ms,
            Metric::P99 => self.p99_ms,
            _ => None,
        }
    }

    /// The columns of `cells`: each metric's, with its value before and the change when
    /// compared.
    pub fn columns(is_compared: bool) -> Vec<Column> {
        Figures::METRICS
            .iter()
            .flat_map(|metric| compared_columns(metric.column(), is_compared))
            .collect()
    }

    /// The figures as cells in `METRICS` order, each followed by its value in `before`
    /// and the change when compared.
    pub fn cells(&self, before: Option<&Figures>) -> Vec<Cell> {
        Figures::METRICS
            .iter()
            .flat_map(|&metric| {
                compared_cells(
                    metric,
                    self.get(metric),
                    before.map(|before| before.get(metric)),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_need_a_value_before() {
        assert_eq!(change(Some(3.0), Some(2.0)), Some(0.5));
        assert_eq!(change(Some(3.0), Some(0.0)), None);
        assert_eq!(change(None, Some(2.0)), None);
    }

    #[test]
    fn rates_are_percentages_and_latencies_milliseconds() {
        assert_eq!(
            Metric::ErrorRate.cell(Some(0.0212345)),
            Cell::Decimal(2.12, 2)
        );
        assert_eq!(Metric::P99.cell(Some(2000.04)), Cell::Decimal(2000.0, 1));
        assert_eq!(Metric::Count.cell(Some(12.0)), Cell::Int(12));
        assert_eq!(Metric::P99.cell(None), Cell::Null);
    }
}
