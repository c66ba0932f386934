//! `latency`: the latency distribution of the events in scope: p50, p90, p95, p99,
//! p99.9 and max, and a histogram over log-scale bins (1, 2, 5, 10, 20, 50 ms ...),
//! drawn with bars in the terminal; when compared, each figure and each bin beside its
//! value in the window compared with.

use serde::Serialize;
use tokio_postgres::Client;

use crate::analytics::read::{Stats, read};
use crate::report::chart;
use crate::report::scope::{Metric, Scope, compared_cells, compared_cells_with, compared_columns};
use crate::report::{Cell, Table, column_names};
use crate::terminal::Display;

/// The figures of the distribution, in order.
pub const METRICS: [Metric; 7] = [
    Metric::Count,
    Metric::P50,
    Metric::P90,
    Metric::P95,
    Metric::P99,
    Metric::P999,
    Metric::Max,
];

/// A bin of the histogram: latencies in (above, at_most] (the first bin from 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bin {
    pub above_ms: Option<i32>,
    pub at_most_ms: i32,
    pub count: u64,
    /// The bin's count in the window compared with, when compared.
    pub previous_count: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub scope: Scope,
    /// `METRICS`' values, and in the window compared with.
    pub figures: Vec<Option<f64>>,
    pub previous: Option<Vec<Option<f64>>>,
    pub bins: Vec<Bin>,
}

/// 1, 2, 5 times each power of ten, up to the first edge at or above `max`.
fn edges(max: i32) -> Vec<i32> {
    let mut edges = vec![0];
    let mut decade: i64 = 1;
    'outer: loop {
        for step in [1, 2, 5] {
            let edge = (decade * step).min(i64::from(i32::MAX)) as i32;
            edges.push(edge);
            if edge >= max {
                break 'outer;
            }
        }
        decade *= 10;
    }
    edges
}

/// The histogram of `stats`, and of `previous` over the same bins when compared: the
/// bins reach the larger maximum of the two.
fn histogram(stats: &Stats, previous: Option<&Stats>) -> Vec<Bin> {
    let Some(max) = stats
        .latency
        .max()
        .max(previous.and_then(|before| before.latency.max()))
    else {
        return Vec::new();
    };
    let edges = edges(max);
    let count_in = |stats: &Stats, index: usize| {
        let below = index
            .checked_sub(1)
            .map_or(0, |i| stats.count_at_most(edges[i]));
        stats.count_at_most(edges[index]) - below
    };
    (0..edges.len())
        .map(|index| Bin {
            above_ms: index.checked_sub(1).map(|i| edges[i]),
            at_most_ms: edges[index],
            count: count_in(stats, index),
            previous_count: previous.map(|before| count_in(before, index)),
        })
        .collect()
}

pub async fn latency(client: &Client, scope: &Scope) -> crate::Result<Latency> {
    let query = scope.query();
    let stats = read(client, &query).await?.total();
    let before = match scope.previous_query(&query) {
        Some(previous) => Some(read(client, &previous).await?.total()),
        None => None,
    };
    Ok(Latency {
        scope: scope.clone(),
        figures: METRICS.iter().map(|m| m.of(&stats)).collect(),
        previous: before
            .as_ref()
            .map(|before| METRICS.iter().map(|m| m.of(before)).collect()),
        bins: histogram(&stats, before.as_ref()),
    })
}

impl Latency {
    /// The figures (one row per metric), and the histogram, with a bar column when
    /// drawn for a display.
    pub fn tables(&self, display: Option<&Display>) -> Vec<Table> {
        let compared = self.previous.is_some();
        let mut columns = column_names(&["measure", "value"]);
        if compared {
            columns.extend(column_names(&["before", "change"]));
        }
        let figures = METRICS
            .iter()
            .enumerate()
            .map(|(index, &metric)| {
                let name = match metric.unit() {
                    "" => metric.name().to_string(),
                    unit => format!("{} ({unit})", metric.name()),
                };
                let mut row = vec![Cell::Text(name)];
                let before = self.previous.as_ref().map(|p| p[index]);
                row.extend(compared_cells(metric, self.figures[index], before));
                row
            })
            .collect();
        let total: u64 = self.bins.iter().map(|b| b.count).sum();
        let total_before: u64 = self.bins.iter().filter_map(|b| b.previous_count).sum();
        let top = self.bins.iter().map(|b| b.count).max().unwrap_or(0) as f64;
        let share = |count: u64, of: u64| 100.0 * count as f64 / of.max(1) as f64;
        let mut bin_columns = column_names(&["above_ms", "at_most_ms"]);
        bin_columns.extend(compared_columns("count", compared));
        bin_columns.extend(compared_columns("share_pct", compared));
        if display.is_some() {
            bin_columns.extend(column_names(&[""]));
        }
        let bins = self
            .bins
            .iter()
            .map(|bin| {
                let mut row = vec![
                    bin.above_ms.map_or(Cell::Null, |ms| Cell::Int(ms.into())),
                    Cell::Int(bin.at_most_ms.into()),
                ];
                let before = bin.previous_count;
                row.extend(compared_cells(
                    Metric::Count,
                    Some(bin.count as f64),
                    before.map(|count| Some(count as f64)),
                ));
                row.extend(compared_cells_with(
                    |value| value.map_or(Cell::Null, |share| Cell::decimal(share, 1)),
                    Some(share(bin.count, total)),
                    before.map(|count| Some(share(count, total_before))),
                ));
                if let Some(display) = display {
                    let width = display.width.unwrap_or(80).saturating_sub(40).clamp(10, 50);
                    row.push(Cell::Text(chart::bar(
                        bin.count as f64,
                        top,
                        width,
                        display.unicode,
                    )));
                }
                row
            })
            .collect();
        vec![
            Table {
                name: "latency",
                title: self.scope.heading("Latency"),
                columns,
                rows: figures,
            },
            Table {
                name: "histogram",
                title: "Latency histogram, log-scale bins (bin edges within 1% above 57 ms)".into(),
                columns: bin_columns,
                rows: bins,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_one_two_five_per_decade_up_to_the_max() {
        assert_eq!(edges(1), [0, 1]);
        assert_eq!(edges(130), [0, 1, 2, 5, 10, 20, 50, 100, 200]);
    }

    #[test]
    fn every_latency_falls_in_one_bin() {
        let mut stats = Stats::default();
        let mut measures = crate::analytics::rollup::Measures::default();
        for ms in [0, 1, 3, 3, 40, 1000] {
            measures.events += 1;
            measures.latency.add(ms);
        }
        stats.add(&measures);
        let bins = histogram(&stats, None);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), 6);
        assert_eq!(bins[0].count, 1, "0 ms");
        assert_eq!(bins[3].count, 2, "(2, 5] ms");
    }
}
