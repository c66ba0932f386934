//! `summary`, the front page: requests, errors, error rate and p50/p95/p99 overall and
//! per service, the routes with the highest p99 and the most errors, and a small
//! timeline of requests, each figure beside its value in the window compared with, when
//! compared. The overall figures, the services and the timeline come from one read (and
//! one of the window compared with); the two rankings from one more (and one).

use serde::Serialize;
use tokio_postgres::Client;

use crate::analytics::read::{Answer, Dimension, read};
use crate::report::scope::{Figures, Metric, Scope, compared_cells};
use crate::report::timeline::{Series, Timeline, auto_bucket};
use crate::report::top::{Subject, Top, rankings};
use crate::report::{Cell, Table, column_names};

/// How many routes each ranking of `logctl summary` shows, and how many requests a route
/// needs to be ranked by its p99 (a route with three requests has a p99 of its slowest
/// one).
pub const ROUTES: usize = 5;
pub const MIN_COUNT: u64 = 20;
/// About this many buckets in the small timeline.
const BUCKETS: usize = 24;

#[derive(Debug, Clone, Serialize)]
pub struct ServiceFigures {
    pub service: String,
    pub figures: Figures,
    pub previous: Option<Figures>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scope: Scope,
    pub overall: Figures,
    pub previous: Option<Figures>,
    pub services: Vec<ServiceFigures>,
    pub slowest_routes: Top,
    pub failing_routes: Top,
    pub timeline: Timeline,
}

/// The summary of `scope`, with `routes` routes in each ranking (`logctl report` shows
/// as many as its `--limit`).
pub async fn summary(client: &Client, scope: &Scope, routes: usize) -> crate::Result<Summary> {
    let bucket = auto_bucket(scope.from, scope.until, BUCKETS + 1);
    let mut query = scope.query();
    query.by = vec![Dimension::Service];
    query.bucket = Some(bucket * 1_000_000);
    let answer = read(client, &query).await?;
    let previous = match scope.previous_query(&query) {
        Some(previous) => Some(read(client, &previous).await?),
        None => None,
    };
    let previous_services = previous.as_ref().map(|answer| answer.by_group());
    let services = answer
        .by_group()
        .into_iter()
        .map(|(key, stats)| ServiceFigures {
            previous: previous_services
                .as_ref()
                .map(|before| before.get(&key).map(Figures::of).unwrap_or_default()),
            service: key.join(" "),
            figures: Figures::of(&stats),
        })
        .collect();
    let mut routes = rankings(
        client,
        scope,
        Subject::Routes,
        &[Metric::P99, Metric::Errors],
        MIN_COUNT,
        Some(routes),
    )
    .await?
    .into_iter();
    let (slowest_routes, mut failing_routes) = (routes.next(), routes.next());
    if let Some(failing) = &mut failing_routes {
        failing.rows.retain(|row| row.figures.errors > 0);
    }
    let requests_per_bucket = |answer: &Answer| {
        answer
            .by_bucket()
            .iter()
            .map(|stats| Metric::Count.of(stats))
            .collect()
    };
    let timeline = Timeline {
        scope: scope.clone(),
        metric: Metric::Count,
        split: None,
        bucket_seconds: bucket,
        starts: answer.buckets.clone(),
        events: answer.total().events,
        series: vec![Series {
            label: String::new(),
            values: requests_per_bucket(&answer),
            previous: previous.as_ref().map(requests_per_bucket),
        }],
    };
    Ok(Summary {
        scope: scope.clone(),
        overall: Figures::of(&answer.total()),
        previous: previous.as_ref().map(|answer| Figures::of(&answer.total())),
        services,
        slowest_routes: slowest_routes.expect("one ranking per metric"),
        failing_routes: failing_routes.expect("one ranking per metric"),
        timeline,
    })
}

impl Summary {
    /// Overall figures, per service and the two route rankings; the timeline is
    /// `self.timeline`'s to show.
    pub fn tables(&self) -> Vec<Table> {
        let compared = self.previous.is_some();
        let mut columns = column_names(&["measure", "value"]);
        if compared {
            columns.extend(column_names(&["before", "change"]));
        }
        let overall = Figures::METRICS
            .iter()
            .map(|&metric| {
                let name = match metric.unit() {
                    "" => metric.name().to_string(),
                    unit => format!("{} ({unit})", metric.name()),
                };
                let mut row = vec![Cell::Text(name)];
                row.extend(compared_cells(
                    metric,
                    self.overall.get(metric),
                    self.previous.map(|p| p.get(metric)),
                ));
                row
            })
            .collect();
        let mut service_columns = column_names(&["service"]);
        service_columns.extend(Figures::columns(compared));
        let services = self
            .services
            .iter()
            .map(|service| {
                let mut row = vec![Cell::Text(service.service.clone())];
                row.extend(service.figures.cells(service.previous.as_ref()));
                row
            })
            .collect();
        vec![
            Table {
                name: "overall",
                title: self.scope.heading("Summary"),
                columns,
                rows: overall,
            },
            Table {
                name: "services",
                title: "Per service".into(),
                columns: service_columns,
                rows: services,
            },
            self.slowest_routes.table("slowest_routes"),
            self.failing_routes.table("failing_routes"),
        ]
    }
}
