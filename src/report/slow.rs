//! The slow-request report: the slowest requests above a threshold, and a
//! per-service summary of latency percentiles among them.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::{Cell, Table};

const REQUESTS_SQL: &str = include_str!("../../sql/slow_requests.sql");
const SUMMARY_SQL: &str = include_str!("../../sql/slow_summary.sql");

/// What to report on.
#[derive(Debug, Clone)]
pub struct SlowQuery {
    pub threshold_ms: i32,
    /// None lists every request above the threshold.
    pub limit: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub service: Option<String>,
}

/// The two result tables: requests, then the per-service summary.
pub async fn report(client: &Client, query: &SlowQuery) -> crate::Result<Vec<Table>> {
    let requests = client
        .query(
            REQUESTS_SQL,
            &[
                &query.threshold_ms,
                &query.since,
                &query.until,
                &query.service,
                &query.limit,
            ],
        )
        .await?;
    let summary = client
        .query(
            SUMMARY_SQL,
            &[
                &query.threshold_ms,
                &query.since,
                &query.until,
                &query.service,
            ],
        )
        .await?;
    let text = |value: Option<String>| value.map_or(Cell::Null, Cell::Text);
    Ok(vec![
        Table {
            name: "requests",
            title: format!(
                "Slowest requests above {} ms ({} shown, times in UTC)",
                query.threshold_ms,
                requests.len()
            ),
            columns: vec![
                "service",
                "time",
                "latency_ms",
                "endpoint",
                "method",
                "status",
            ],
            rows: requests
                .iter()
                .map(|row| {
                    vec![
                        Cell::Text(row.get(0)),
                        Cell::Time(row.get(1)),
                        Cell::Int(i64::from(row.get::<_, i32>(2))),
                        text(row.get(3)),
                        text(row.get(4)),
                        row.get::<_, Option<i16>>(5)
                            .map_or(Cell::Null, |s| Cell::Int(s.into())),
                    ]
                })
                .collect(),
        },
        Table {
            name: "services",
            title: format!("Per service, all requests above {} ms", query.threshold_ms),
            columns: vec!["service", "count", "p50_ms", "p95_ms", "p99_ms", "max_ms"],
            rows: summary
                .iter()
                .map(|row| {
                    vec![
                        Cell::Text(row.get(0)),
                        Cell::Int(row.get(1)),
                        Cell::decimal(row.get(2), 1),
                        Cell::decimal(row.get(3), 1),
                        Cell::decimal(row.get(4), 1),
                        Cell::Int(i64::from(row.get::<_, i32>(5))),
                    ]
                })
                .collect(),
        },
    ])
}
