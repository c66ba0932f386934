//! The whole picture behind `logctl report`, as one serde type (`ReportData`): the data
//! of `summary` (headline against the window compared with, services, top routes by p99
//! and by errors), three `timeline`s (requests, error rate, p95), `latency` (quantiles
//! and histogram), `errors` (the top error signatures, new ones marked) and `slow` (the
//! slowest requests), each computed by the same function as its terminal command over
//! the same `Scope`. Its JSON is `report --format json`; its
//! text tables, CSV and HTML page are renderings of it, so a figure reads the same in
//! every one and in the terminal reports.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use super::errors::{self, ErrorsQuery, ErrorsReport};
use super::filter::RawFilter;
use super::latency::{self, Latency};
use super::scope::{Metric, Scope};
use super::slow::{self, SlowQuery, SlowReport};
use super::summary::{self, Summary};
use super::timeline::{self, Timeline, auto_bucket};
use super::{Cell, Column, Table};

/// The report's data: everything its renderings show.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// The database read, without a password.
    pub database: String,
    pub generated_at: DateTime<Utc>,
    /// The scope's filters in words (`service=checkout`), as the headings echo them.
    pub filters: Vec<String>,
    /// Whether quantiles are exact (raw rows) or within 1% (rollups).
    pub exact: bool,
    /// Its services are the busiest first, at most `SERVICES_SHOWN` of them.
    pub summary: Summary,
    /// How many services there are in all.
    pub services_found: usize,
    /// Over the same buckets, every one present.
    pub requests: Timeline,
    pub error_rate: Timeline,
    pub p95: Timeline,
    pub latency: Latency,
    /// The most frequent error signatures, each marked new when the period compared
    /// with (without `--compare`, the period before) has none of it.
    pub errors: ErrorsReport,
    /// The slowest requests of the window, as `logctl slow --format json` lists them,
    /// above a threshold from the histogram: see `tail_threshold`.
    pub slowest: SlowReport,
}

/// The services a page lists at most, so that its size stays bounded.
pub const SERVICES_SHOWN: usize = 50;

/// About this many timeline buckets at most, of a round width.
const BUCKETS: usize = 200;

/// Builds the report over `scope`, with `limit` rows in each top list and in the slowest
/// requests.
pub async fn build(
    client: &Client,
    scope: &Scope,
    limit: usize,
    database: String,
) -> crate::Result<ReportData> {
    let mut summary = summary::summary(client, scope, limit).await?;
    summary.services.sort_by(|a, b| {
        b.figures
            .requests
            .cmp(&a.figures.requests)
            .then_with(|| a.service.cmp(&b.service))
    });
    let services_found = summary.services.len();
    summary.services.truncate(SERVICES_SHOWN);
    // The headline carries the comparison; the charts show the window alone.
    let window = Scope {
        previous: None,
        ..scope.clone()
    };
    let bucket = auto_bucket(scope.from, scope.until, BUCKETS + 1);
    let metrics = [Metric::Count, Metric::ErrorRate, Metric::P95];
    let [requests, error_rate, p95]: [Timeline; 3] =
        timeline::timelines(client, &window, &metrics, None, bucket)
            .await?
            .try_into()
            .expect("one timeline per metric");
    let latency = latency::latency(client, scope).await?;
    let raw = RawFilter::new(&scope.filter, scope.from, scope.until);
    let length = scope.until - scope.from;
    let errors = errors::report(
        client,
        &ErrorsQuery {
            // Error lines are read from the raw rows, as `logctl errors` reads them.
            scope: Scope {
                previous: scope.previous.or(Some((scope.from - length, scope.from))),
                exact: true,
                ..scope.clone()
            },
            filter: raw.clone(),
            only_new: false,
            limit: Some(limit),
        },
    )
    .await?;
    let slowest = slow::report(
        client,
        &SlowQuery {
            scope: scope.clone(),
            filter: scope.filter.clone(),
            raw,
            threshold_ms: tail_threshold(&latency, limit),
            limit: Some(limit as i64),
        },
    )
    .await?;
    Ok(ReportData {
        database,
        generated_at: Utc::now(),
        filters: scope.filters(),
        exact: scope.is_exact(),
        summary,
        services_found,
        requests,
        error_rate,
        p95,
        latency,
        errors,
        slowest,
    })
}

/// A latency that at least `limit` of the window's requests exceed: the lower edge of
/// the highest histogram bins that hold `limit` requests, less the 1% by which a bin's
/// edge may be off. `slow` then reads only the tail from the latency index (a few
/// thousand rows of 10 M) instead of every request.
fn tail_threshold(latency: &Latency, limit: usize) -> i32 {
    let mut above = 0;
    for bin in latency.bins.iter().rev() {
        above += bin.count;
        if above >= limit as u64 {
            return bin
                .above_ms
                .map_or(0, |ms| (f64::from(ms) * 0.99).floor() as i32);
        }
    }
    0
}

impl ReportData {
    /// The report as tables, for text, CSV and the HTML page's tables: the summary's,
    /// the timelines side by side, the latency's, the error signatures and the slowest
    /// requests (without `slow`'s per-service table, which the summary's services have).
    pub fn tables(&self) -> Vec<Table> {
        let mut tables = self.summary.tables();
        if self.summary.services.len() < self.services_found
            && let Some(services) = tables.iter_mut().find(|t| t.name == "services")
        {
            services.title = format!(
                "Per service, the busiest {} of {}",
                self.summary.services.len(),
                self.services_found
            );
        }
        tables.push(self.timeline_table());
        tables.extend(self.latency.tables(None));
        tables.push(self.errors.table());
        tables.push(self.slowest.tables().swap_remove(0));
        tables
    }

    /// One row per bucket: its start, requests, error rate and p95.
    fn timeline_table(&self) -> Table {
        let series = [&self.requests, &self.error_rate, &self.p95];
        Table {
            name: "timeline",
            title: format!(
                "Over time, in buckets of {} (times in UTC)",
                timeline::width_name(self.requests.bucket_seconds)
            ),
            columns: std::iter::once("bucket_start")
                .chain(series.iter().map(|t| t.metric.column()))
                .map(Column::Borrowed)
                .collect(),
            rows: self
                .requests
                .starts
                .iter()
                .enumerate()
                .map(|(bucket, &start)| {
                    std::iter::once(Cell::Time(start))
                        .chain(
                            series
                                .iter()
                                .map(|t| t.metric.cell(t.series[0].values[bucket])),
                        )
                        .collect()
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::read::Filter;
    use crate::report::latency::Bin;

    #[test]
    fn the_slowest_requests_are_read_above_the_bins_that_hold_them() {
        let at = "2026-11-24T00:00:00Z".parse().unwrap();
        let bin = |above_ms, at_most_ms, count| Bin {
            above_ms,
            at_most_ms,
            count,
            previous_count: None,
        };
        let latency = Latency {
            scope: Scope {
                from: at,
                until: at,
                previous: None,
                filter: Filter::default(),
                exact: false,
            },
            figures: Vec::new(),
            previous: None,
            bins: vec![
                bin(None, 0, 3),
                bin(Some(0), 1, 50),
                bin(Some(1000), 2000, 6),
                bin(Some(2000), 5000, 4),
            ],
        };
        assert_eq!(tail_threshold(&latency, 4), 1980);
        assert_eq!(tail_threshold(&latency, 10), 990);
        assert_eq!(tail_threshold(&latency, 11), 0);
        assert_eq!(tail_threshold(&latency, 100), 0);
    }
}
