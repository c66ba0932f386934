//! `top`: routes, services, statuses or methods ranked by a metric, each with its
//! headline figures and, when compared, each figure's value in the window before. The
//! ranking prunes with the cells' stored quantiles (`analytics::top`).

use std::collections::BTreeSet;

use serde::Serialize;
use tokio_postgres::Client;

use crate::analytics::read::{Dimension, read};
use crate::analytics::top::{Rank, top as ranked};
use crate::report::scope::{Figures, Metric, Scope, compared_cells, compared_columns};
use crate::report::{Cell, Table, column_names};

/// What is ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// Routes of each service: a route is templated per service.
    Routes,
    Services,
    Status,
    Methods,
}

impl Subject {
    pub fn dimensions(self) -> Vec<Dimension> {
        match self {
            Subject::Routes => vec![Dimension::Service, Dimension::Route],
            Subject::Services => vec![Dimension::Service],
            Subject::Status => vec![Dimension::Status],
            Subject::Methods => vec![Dimension::Method],
        }
    }

    fn columns(self) -> Vec<&'static str> {
        match self {
            Subject::Routes => vec!["service", "route"],
            Subject::Services => vec!["service"],
            Subject::Status => vec!["status"],
            Subject::Methods => vec!["method"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Subject::Routes => "routes",
            Subject::Services => "services",
            Subject::Status => "statuses",
            Subject::Methods => "methods",
        }
    }
}

/// A metric a ranking can use: the additive ones and the stored quantiles.
pub fn rank_of(metric: Metric) -> Option<Rank> {
    match metric {
        Metric::Count => Some(Rank::Count),
        Metric::Errors => Some(Rank::Errors),
        Metric::ErrorRate => Some(Rank::ErrorRate),
        Metric::TotalTime => Some(Rank::TotalTime),
        other => other.quantile().map(Rank::Quantile),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// One label per column of the subject ("" where events have none).
    pub key: Vec<String>,
    pub figures: Figures,
    /// The value ranked by.
    pub value: Option<f64>,
    /// The figures and the value ranked by in the window compared with, when compared
    /// (no requests and no value where the group had no events).
    pub previous_figures: Option<Figures>,
    pub previous_value: Option<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Top {
    pub scope: Scope,
    pub subject: Subject,
    pub by: Metric,
    pub min_count: u64,
    pub rows: Vec<Row>,
}

/// The top `limit` (None: all) of `subject` by each of `metrics`, one ranking per
/// metric, from one pass over the cells.
pub async fn rankings(
    client: &Client,
    scope: &Scope,
    subject: Subject,
    metrics: &[Metric],
    min_count: u64,
    limit: Option<usize>,
) -> crate::Result<Vec<Top>> {
    let mut query = scope.query();
    query.by = subject.dimensions();
    let ranks: Vec<Rank> = metrics
        .iter()
        .map(|&metric| {
            rank_of(metric)
                .ok_or_else(|| crate::Error::usage(format!("top cannot rank by {}", metric.name())))
        })
        .collect::<crate::Result<_>>()?;
    let rankings = ranked(client, &query, &ranks, limit, min_count).await?;
    let previous = match scope.previous_query(&query) {
        Some(mut previous) => {
            let keys: BTreeSet<Vec<String>> = rankings
                .iter()
                .flatten()
                .map(|group| group.key.clone())
                .collect();
            previous.only = Some(keys);
            Some(read(client, &previous).await?.by_group())
        }
        None => None,
    };
    Ok(metrics
        .iter()
        .zip(rankings)
        .map(|(&metric, groups)| Top {
            scope: scope.clone(),
            subject,
            by: metric,
            min_count,
            rows: groups
                .into_iter()
                .map(|group| {
                    let before = previous
                        .as_ref()
                        .map(|before| before.get(&group.key).cloned().unwrap_or_default());
                    Row {
                        value: metric.of(&group.stats),
                        previous_value: before.as_ref().map(|stats| metric.of(stats)),
                        previous_figures: before.as_ref().map(Figures::of),
                        figures: Figures::of(&group.stats),
                        key: group.key,
                    }
                })
                .collect(),
        })
        .collect())
}

/// The top `limit` of `subject` by `metric`.
pub async fn top(
    client: &Client,
    scope: &Scope,
    subject: Subject,
    metric: Metric,
    min_count: u64,
    limit: Option<usize>,
) -> crate::Result<Top> {
    let mut tops = rankings(client, scope, subject, &[metric], min_count, limit).await?;
    Ok(tops.remove(0))
}

impl Top {
    /// The ranking as a table named `name`: rank, the subject's columns, the headline
    /// figures, then the metric ranked by when it is not among them; when compared, each
    /// figure followed by its value before and the change.
    pub fn table(&self, name: &'static str) -> Table {
        let compared = self.scope.previous.is_some();
        let mut columns = column_names(&["rank"]);
        columns.extend(column_names(&self.subject.columns()));
        columns.extend(Figures::columns(compared));
        let extra = !Figures::METRICS.contains(&self.by);
        if extra {
            columns.extend(compared_columns(self.by.column(), compared));
        }
        let rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(index, row)| {
                let mut cells = vec![Cell::Int(index as i64 + 1)];
                cells.extend(row.key.iter().map(|label| match label.as_str() {
                    "" => Cell::Text("(none)".into()),
                    _ => Cell::Text(label.clone()),
                }));
                cells.extend(row.figures.cells(row.previous_figures.as_ref()));
                if extra {
                    cells.extend(compared_cells(self.by, row.value, row.previous_value));
                }
                cells
            })
            .collect();
        let mut what = format!("Top {} by {}", self.subject.name(), self.by.name());
        if self.min_count > 1 {
            what.push_str(&format!(" (at least {} requests)", self.min_count));
        }
        Table {
            name,
            title: self.scope.heading(&what),
            columns,
            rows,
        }
    }
}
