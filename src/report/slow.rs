//! The slow-request report: the slowest requests above a threshold, and per service
//! how many requests were that slow and the latency percentiles among them, beside the
//! service's own figures over all its requests (their number, the share that was slow,
//! and their percentiles, from the rollups through the read API, or exact from the raw
//! rows), so that nobody takes the percentiles of slow requests for the service's; when
//! compared, each of those figures beside the same in the window compared with.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::filter::{RawFilter, with_filter};
use super::scope::{Scope, compared_cells_with, compared_columns};
use super::{Cell, Column, Table, column_names};
use crate::analytics::read::{self, Dimension, Filter, Query};

static REQUESTS_SQL: LazyLock<String> =
    LazyLock::new(|| with_filter(include_str!("../../sql/slow_requests.sql")));
static SUMMARY_SQL: LazyLock<String> =
    LazyLock::new(|| with_filter(include_str!("../../sql/slow_summary.sql")));

/// What to report on.
#[derive(Debug, Clone)]
pub struct SlowQuery {
    /// The window and filters; `scope.exact` reads the services' own percentiles from
    /// the raw rows instead of the rollups.
    pub scope: Scope,
    /// The filters, for the read API.
    pub filter: Filter,
    /// The same window and filters, over the raw rows.
    pub raw: RawFilter,
    pub threshold_ms: i32,
    /// How many requests to list; None lists them all.
    pub limit: Option<i64>,
}

/// The report's data.
#[derive(Debug, Clone, Serialize)]
pub struct SlowReport {
    pub scope: Scope,
    pub threshold_ms: i32,
    /// The slowest first.
    pub requests: Vec<SlowRequest>,
    /// The services with slow requests, the most first.
    pub services: Vec<ServiceSlowness>,
}

/// One request above the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowRequest {
    pub service: String,
    pub time: DateTime<Utc>,
    pub latency_ms: i32,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub status: Option<i16>,
}

/// One service with requests above the threshold: its figures in the window, and when
/// compared in the window compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSlowness {
    pub service: String,
    #[serde(flatten)]
    pub figures: Slowness,
    /// Its figures in the window compared with, when compared (no requests where it had
    /// none there).
    pub previous: Option<Slowness>,
}

/// A service's requests in a window, and those above the threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Slowness {
    /// Its requests (events with a latency).
    pub requests: u64,
    /// Latency percentiles over all its requests.
    pub all_p50_ms: Option<f64>,
    pub all_p95_ms: Option<f64>,
    pub all_p99_ms: Option<f64>,
    /// Its requests above the threshold.
    pub slow_requests: u64,
    /// The share of its requests above the threshold, in percent to two decimals; None
    /// when the rollups know none of its requests (they were never built).
    pub slow_percent: Option<f64>,
    /// Latency percentiles and maximum among the requests above the threshold only;
    /// None without any.
    pub slow_p50_ms: Option<f64>,
    pub slow_p95_ms: Option<f64>,
    pub slow_p99_ms: Option<f64>,
    pub slow_max_ms: Option<i32>,
}

impl Slowness {
    /// The figures' columns, and the decimals each is shown with (0: a whole number).
    const COLUMNS: [(&'static str, u8); 10] = [
        ("requests", 0),
        ("all_p50_ms", 1),
        ("all_p95_ms", 1),
        ("all_p99_ms", 1),
        ("slow_requests", 0),
        ("slow_percent", 2),
        ("slow_p50_ms", 1),
        ("slow_p95_ms", 1),
        ("slow_p99_ms", 1),
        ("slow_max_ms", 0),
    ];

    /// The figures in `COLUMNS` order.
    fn values(&self) -> [Option<f64>; 10] {
        [
            Some(self.requests as f64),
            self.all_p50_ms,
            self.all_p95_ms,
            self.all_p99_ms,
            Some(self.slow_requests as f64),
            self.slow_percent,
            self.slow_p50_ms,
            self.slow_p95_ms,
            self.slow_p99_ms,
            self.slow_max_ms.map(f64::from),
        ]
    }
}

/// A service's requests and latency percentiles.
struct Latencies {
    requests: u64,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    max: Option<i32>,
}

/// Per service, its requests above `threshold_ms` (-1 for all of them) and their
/// percentiles, exact, from the raw rows.
async fn summary(
    client: &Client,
    raw: &RawFilter,
    threshold_ms: i32,
) -> crate::Result<Vec<(String, Latencies)>> {
    let mut parameters = raw.parameters();
    parameters.push(&threshold_ms);
    Ok(client
        .query(SUMMARY_SQL.as_str(), &parameters)
        .await?
        .iter()
        .map(|row| {
            let latencies = Latencies {
                requests: row.get::<_, i64>(1) as u64,
                p50: row.get(2),
                p95: row.get(3),
                p99: row.get(4),
                max: row.get(5),
            };
            (row.get(0), latencies)
        })
        .collect())
}

/// Per service, all its requests in [from, until) and their percentiles, from the
/// rollups (within 1%).
async fn rollup_summary(
    client: &Client,
    filter: &Filter,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<FxHashMap<String, Latencies>> {
    let asked = Query {
        filter: filter.clone(),
        by: vec![Dimension::Service],
        ..Query::new(from, until)
    };
    let answer = read::read(client, &asked).await?;
    Ok(answer
        .series
        .into_iter()
        .map(|(mut key, buckets)| {
            let service = key.pop().unwrap_or_default();
            let latency = &buckets[0].latency;
            let latencies = Latencies {
                requests: latency.count(),
                p50: latency.quantile(0.5),
                p95: latency.quantile(0.95),
                p99: latency.quantile(0.99),
                max: latency.max(),
            };
            (service, latencies)
        })
        .collect())
}

/// Per service, its slowness in [from, until): first the services with requests above
/// the threshold, the most first, then those without any.
async fn slowness(
    client: &Client,
    query: &SlowQuery,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<Vec<(String, Slowness)>> {
    let raw = query.raw.over(from, until);
    let slow = summary(client, &raw, query.threshold_ms).await?;
    let mut all: FxHashMap<String, Latencies> = if query.scope.is_exact() {
        summary(client, &raw, -1).await?.into_iter().collect()
    } else {
        rollup_summary(client, &query.filter, from, until).await?
    };
    let mut services: Vec<(String, Slowness)> = slow
        .into_iter()
        .map(|(service, slow)| {
            let own = all.remove(&service);
            let requests = own.as_ref().map_or(0, |own| own.requests);
            let figures = Slowness {
                requests,
                all_p50_ms: own.as_ref().and_then(|own| own.p50).map(tenth),
                all_p95_ms: own.as_ref().and_then(|own| own.p95).map(tenth),
                all_p99_ms: own.as_ref().and_then(|own| own.p99).map(tenth),
                slow_requests: slow.requests,
                slow_percent: (requests > 0)
                    .then(|| (slow.requests as f64 * 10_000.0 / requests as f64).round() / 100.0),
                slow_p50_ms: slow.p50.map(tenth),
                slow_p95_ms: slow.p95.map(tenth),
                slow_p99_ms: slow.p99.map(tenth),
                slow_max_ms: slow.max,
            };
            (service, figures)
        })
        .collect();
    services.extend(all.into_iter().map(|(service, own)| {
        let figures = Slowness {
            requests: own.requests,
            all_p50_ms: own.p50.map(tenth),
            all_p95_ms: own.p95.map(tenth),
            all_p99_ms: own.p99.map(tenth),
            slow_percent: (own.requests > 0).then_some(0.0),
            ..Slowness::default()
        };
        (service, figures)
    }));
    Ok(services)
}

/// The slowest requests and the per-service summary, compared when the scope says so.
pub async fn report(client: &Client, query: &SlowQuery) -> crate::Result<SlowReport> {
    let mut parameters: Vec<&(dyn ToSql + Sync)> = query.raw.parameters();
    parameters.push(&query.threshold_ms);
    parameters.push(&query.limit);
    let requests = client
        .query(REQUESTS_SQL.as_str(), &parameters)
        .await?
        .iter()
        .map(|row| SlowRequest {
            service: row.get(0),
            time: row.get(1),
            latency_ms: row.get(2),
            endpoint: row.get(3),
            method: row.get(4),
            status: row.get(5),
        })
        .collect();
    let scope = &query.scope;
    let previous: Option<FxHashMap<String, Slowness>> = match scope.previous {
        Some((from, until)) => Some(
            slowness(client, query, from, until)
                .await?
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    let services = slowness(client, query, scope.from, scope.until)
        .await?
        .into_iter()
        .filter(|(_, figures)| figures.slow_requests > 0)
        .map(|(service, figures)| ServiceSlowness {
            previous: previous
                .as_ref()
                .map(|before| before.get(&service).cloned().unwrap_or_default()),
            service,
            figures,
        })
        .collect();
    Ok(SlowReport {
        scope: query.scope.clone(),
        threshold_ms: query.threshold_ms,
        requests,
        services,
    })
}

/// Milliseconds to a tenth, so that no float noise reaches the output.
fn tenth(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

impl SlowReport {
    pub fn tables(&self) -> Vec<Table> {
        let text = |value: &Option<String>| value.clone().map_or(Cell::Null, Cell::Text);
        let compared = self.scope.previous.is_some();
        let own = if self.scope.is_exact() {
            "exact"
        } else {
            "percentiles within 1%, from the rollups"
        };
        vec![
            Table {
                name: "requests",
                title: self.scope.heading(&format!(
                    "Slowest requests above {} ms ({} shown, times in UTC)",
                    self.threshold_ms,
                    self.requests.len()
                )),
                columns: column_names(&[
                    "service",
                    "time",
                    "latency_ms",
                    "endpoint",
                    "method",
                    "status",
                ]),
                rows: self
                    .requests
                    .iter()
                    .map(|request| {
                        vec![
                            Cell::Text(request.service.clone()),
                            Cell::Time(request.time),
                            Cell::Int(request.latency_ms.into()),
                            text(&request.endpoint),
                            text(&request.method),
                            request.status.map_or(Cell::Null, |s| Cell::Int(s.into())),
                        ]
                    })
                    .collect(),
            },
            Table {
                name: "services",
                title: format!(
                    "Per service: all its requests in the window (requests, all_p50_ms to \
                     all_p99_ms: {own}), then those above {} ms only (slow_requests, their \
                     share of all as slow_percent, and slow_p50_ms to slow_max_ms among them: \
                     exact)",
                    self.threshold_ms
                ),
                columns: std::iter::once(Column::Borrowed("service"))
                    .chain(
                        Slowness::COLUMNS
                            .iter()
                            .flat_map(|&(column, _)| compared_columns(column, compared)),
                    )
                    .collect(),
                rows: self
                    .services
                    .iter()
                    .map(|service| {
                        let before = service.previous.as_ref().map(Slowness::values);
                        let mut row = vec![Cell::Text(service.service.clone())];
                        for (index, (value, (_, decimals))) in service
                            .figures
                            .values()
                            .into_iter()
                            .zip(Slowness::COLUMNS)
                            .enumerate()
                        {
                            row.extend(compared_cells_with(
                                |value| match (value, decimals) {
                                    (None, _) => Cell::Null,
                                    (Some(value), 0) => Cell::Int(value as i64),
                                    (Some(value), decimals) => Cell::decimal(value, decimals),
                                },
                                value,
                                before.map(|before| before[index]),
                            ));
                        }
                        row
                    })
                    .collect(),
            },
        ]
    }
}
