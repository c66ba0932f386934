//! The whole picture behind `logctl report`: the window and what it is compared with,
//! the headline figures, a timeline, the services, the top routes, the latency
//! distribution and the slowest requests, as one serde type (`ReportData`). Its JSON is
//! `report --format json`; its text tables, CSV and HTML page are renderings of it, so a
//! figure reads the same in every one. The figures come from the read API over the
//! rollups (one bucketed read gives the timeline, and its buckets merged give the
//! headline and the distribution) and from the slow-request report.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use super::render::round;
use super::{Cell, Table, slow};
use crate::analytics::read::{self, Dimension, Filter, Query, StatusFilter};
use crate::analytics::rollup::{MINUTE, Measures};

/// What the report covers.
#[derive(Debug, Clone)]
pub struct OverviewQuery {
    pub window: Period,
    /// The period the window is compared with, if any.
    pub previous: Option<Period>,
    pub filter: Filter,
    /// Read the raw rows instead of the rollups.
    pub exact: bool,
    /// How many rows each top list and the slowest requests have.
    pub limit: usize,
}

/// A stretch of time, `until` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Period {
    fn describe(&self) -> String {
        format!(
            "{} to {} UTC",
            self.from.format("%Y-%m-%d %H:%M"),
            self.until.format("%Y-%m-%d %H:%M")
        )
    }
}

/// The report's data: everything its renderings show.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// The database read, without a password.
    pub database: String,
    pub generated_at: DateTime<Utc>,
    pub window: Period,
    pub previous: Option<Period>,
    /// The filters in words, e.g. `service checkout`.
    pub filters: Vec<String>,
    /// Whether the figures are exact (raw rows) or quantiles within 1% (rollups).
    pub exact: bool,
    pub headline: Headline,
    pub timeline: Timeline,
    /// Every service, the busiest first, at most `SERVICES_SHOWN`.
    pub services: Vec<Named>,
    /// How many services there are in all.
    pub services_found: usize,
    pub routes_by_p99: Vec<Named>,
    pub routes_by_errors: Vec<Named>,
    pub latency: Distribution,
    /// The latency the slowest requests are above: see `tail_threshold`.
    pub slowest_threshold_ms: i32,
    /// The slowest requests of the window, as `logctl slow --format json` lists them.
    pub slowest: Table,
}

/// The figures of a set of events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    /// errors / requests, to a hundredth of a percent; None without requests.
    pub error_rate: Option<f64>,
    /// Latency quantiles in milliseconds (within 1% from the rollups), to 0.1 ms;
    /// None without latencies.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Figures {
    fn of(measures: &Measures) -> Figures {
        let quantile = |q| measures.latency.quantile(q).map(|ms| round(ms, 1));
        Figures {
            requests: measures.events,
            errors: measures.errors,
            error_rate: (measures.events > 0)
                .then(|| round(measures.errors as f64 / measures.events as f64, 4)),
            p50_ms: quantile(0.5),
            p95_ms: quantile(0.95),
            p99_ms: quantile(0.99),
        }
    }

    /// The figures by name, in the order the headline shows them.
    pub fn named(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("requests", Some(self.requests as f64)),
            ("errors", Some(self.errors as f64)),
            ("error_rate", self.error_rate),
            ("p50_ms", self.p50_ms),
            ("p95_ms", self.p95_ms),
            ("p99_ms", self.p99_ms),
        ]
    }

    /// The figures as table cells after a name: requests, errors, error rate in percent
    /// and the three quantiles.
    fn cells(&self) -> Vec<Cell> {
        let decimal = |value: Option<f64>, decimals| {
            value.map_or(Cell::Null, |value| Cell::decimal(value, decimals))
        };
        vec![
            Cell::Int(self.requests as i64),
            Cell::Int(self.errors as i64),
            decimal(self.error_rate.map(|rate| rate * 100.0), 2),
            decimal(self.p50_ms, 1),
            decimal(self.p95_ms, 1),
            decimal(self.p99_ms, 1),
        ]
    }
}

const FIGURE_COLUMNS: [&str; 6] = [
    "requests",
    "errors",
    "error_rate_pct",
    "p50_ms",
    "p95_ms",
    "p99_ms",
];

/// The window's figures, and the previous period's with the change of each.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    pub current: Figures,
    pub previous: Option<Figures>,
    /// Per figure, the relative change from the previous period.
    pub change: Option<Change>,
}

/// Per figure of `Figures`, the relative change from the previous period (0.12 for
/// +12%), to a tenth of a percent; None where the previous figure is 0 or missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Change {
    pub requests: Option<f64>,
    pub errors: Option<f64>,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Change {
    fn between(current: &Figures, previous: &Figures) -> Change {
        let [requests, errors, error_rate, p50_ms, p95_ms, p99_ms] =
            [0, 1, 2, 3, 4, 5].map(|index| {
                match (current.named()[index].1, previous.named()[index].1) {
                    (Some(now), Some(before)) if before != 0.0 => {
                        Some(round((now - before) / before, 3))
                    }
                    _ => None,
                }
            });
        Change {
            requests,
            errors,
            error_rate,
            p50_ms,
            p95_ms,
            p99_ms,
        }
    }

    /// The changes in the order of `Figures::named`.
    pub fn named(&self) -> [Option<f64>; 6] {
        [
            self.requests,
            self.errors,
            self.error_rate,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
        ]
    }
}

/// Buckets of equal width over the window, every one of them, empty or not.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub bucket_seconds: i64,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// The bucket's start, aligned to its width (the first is cut at the window's start).
    pub start: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A service's or a route's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The latency distribution of the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Distribution {
    /// Requests with a latency.
    pub count: u64,
    /// p50, p90, p95, p99, p99.9 and max.
    pub quantiles: Vec<Quantile>,
    /// A log-scale histogram (1, 2, 5 per decade), every bin from the lowest to the
    /// highest latency, empty ones included.
    pub histogram: Vec<Bin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantile {
    pub name: &'static str,
    pub ms: f64,
}

/// Requests whose latency lies in [from_ms, until_ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bin {
    pub from_ms: u32,
    pub until_ms: u32,
    pub count: u64,
}

/// The services a page lists at most, so that its size stays bounded.
pub const SERVICES_SHOWN: usize = 50;

/// The most buckets a timeline has (one more when the window is not aligned).
const MAX_BUCKETS: i64 = 200;

/// The bucket widths a timeline chooses from, in minutes.
const WIDTHS: [i64; 10] = [1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080];

/// The narrowest width that cuts the window into at most `MAX_BUCKETS` buckets.
pub fn bucket_width(window: Period) -> i64 {
    let length = (window.until - window.from)
        .num_microseconds()
        .unwrap_or(i64::MAX);
    WIDTHS
        .iter()
        .map(|minutes| minutes * MINUTE)
        .find(|width| (length + width - 1) / width <= MAX_BUCKETS)
        .unwrap_or(WIDTHS[WIDTHS.len() - 1] * MINUTE)
}

/// Builds the report.
pub async fn build(
    client: &Client,
    query: &OverviewQuery,
    database: String,
) -> crate::Result<ReportData> {
    let ask = |period: Period, bucket: Option<i64>, by: Option<Dimension>| Query {
        from: period.from,
        until: period.until,
        filter: query.filter.clone(),
        bucket,
        by,
        exact: query.exact,
    };
    let width = bucket_width(query.window);
    let timeline = read::read(client, &ask(query.window, Some(width), None)).await?;
    let per_bucket = timeline.total();
    let mut whole = Measures::default();
    for measures in &per_bucket {
        whole.merge(measures);
    }
    let current = Figures::of(&whole);
    let previous = match query.previous {
        Some(period) => {
            let answer = read::read(client, &ask(period, None, None)).await?;
            let mut measures = Measures::default();
            for bucket in answer.total() {
                measures.merge(&bucket);
            }
            Some(Figures::of(&measures))
        }
        None => None,
    };
    let mut services =
        named(read::read(client, &ask(query.window, None, Some(Dimension::Service))).await?);
    services.sort_by(|a, b| {
        b.figures
            .requests
            .cmp(&a.figures.requests)
            .then_with(|| a.name.cmp(&b.name))
    });
    let services_found = services.len();
    services.truncate(SERVICES_SHOWN);
    let routes = named(read::read(client, &ask(query.window, None, Some(Dimension::Route))).await?);
    let threshold_ms = tail_threshold(&whole, query.limit);
    let slowest = slow::report(
        client,
        &slow::SlowQuery {
            threshold_ms,
            limit: Some(query.limit as i64),
            since: Some(query.window.from),
            until: Some(query.window.until),
            service: match query.filter.services.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            },
        },
    )
    .await?
    .swap_remove(0);
    Ok(ReportData {
        database,
        generated_at: Utc::now(),
        window: query.window,
        previous: query.previous,
        filters: describe_filter(&query.filter),
        exact: query.exact || !query.filter.metadata.is_empty(),
        headline: Headline {
            current,
            change: previous.map(|previous| Change::between(&current, &previous)),
            previous,
        },
        timeline: Timeline {
            bucket_seconds: width / 1_000_000,
            buckets: timeline
                .buckets
                .iter()
                .zip(&per_bucket)
                .map(|(&start, measures)| Bucket {
                    start,
                    figures: Figures::of(measures),
                })
                .collect(),
        },
        services,
        services_found,
        routes_by_p99: top(&routes, query.limit, |f| f.p99_ms),
        routes_by_errors: top(&routes, query.limit, |f| {
            (f.errors > 0).then_some(f.errors as f64)
        }),
        latency: distribution(&whole),
        slowest_threshold_ms: threshold_ms,
        slowest,
    })
}

/// A latency that about `limit` of the window's requests exceed: the quantile
/// 1 - limit/requests (at most p99.9), less the sketch's 1%. `slow` then reads only the
/// tail from the latency index (about 10,000 rows of 10 M) instead of every request.
fn tail_threshold(whole: &Measures, limit: usize) -> i32 {
    let count = whole.latency.count();
    if count == 0 {
        return 0;
    }
    let q = (1.0 - limit as f64 / count as f64).clamp(0.0, 0.999);
    whole
        .latency
        .quantile(q)
        .map_or(0, |ms| (ms * 0.99).floor() as i32)
}

/// Each group of an answer (over one bucket) with its figures.
fn named(answer: read::Answer) -> Vec<Named> {
    answer
        .series
        .into_iter()
        .filter_map(|(name, buckets)| {
            let measures = buckets.first()?;
            (measures.events > 0).then(|| Named {
                name,
                figures: Figures::of(measures),
            })
        })
        .collect()
}

/// The `limit` groups with the largest value, those without one left out.
fn top(groups: &[Named], limit: usize, value: impl Fn(&Figures) -> Option<f64>) -> Vec<Named> {
    let mut ranked: Vec<(f64, &Named)> = groups
        .iter()
        .filter_map(|group| value(&group.figures).map(|v| (v, group)))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    ranked
        .into_iter()
        .take(limit)
        .map(|(_, group)| group.clone())
        .collect()
}

/// The quantiles and the log-scale histogram of the window's latencies.
fn distribution(whole: &Measures) -> Distribution {
    let sketch = &whole.latency;
    let Some(max) = sketch.max() else {
        return Distribution::default();
    };
    let quantiles = [
        ("p50", 0.5),
        ("p90", 0.9),
        ("p95", 0.95),
        ("p99", 0.99),
        ("p99.9", 0.999),
    ]
    .iter()
    .filter_map(|&(name, q)| sketch.quantile(q).map(|ms| (name, round(ms, 1))))
    .chain([("max", f64::from(max))])
    .map(|(name, ms)| Quantile { name, ms })
    .collect();
    // Bin edges 0, 1, 2, 5, 10, 20, 50, ...: each sketch bucket counts in the bin of
    // its largest integer (a bucket is at most 1% wide, so few straddle an edge).
    let edges: Vec<u32> = std::iter::once(0)
        .chain((0..10).flat_map(|decade| [1, 2, 5].map(|step| step * 10u64.pow(decade))))
        .filter_map(|edge| u32::try_from(edge).ok())
        .collect();
    let bin_of = |ms: u32| edges.iter().rposition(|&edge| edge <= ms).unwrap_or(0);
    let mut counts = vec![0u64; edges.len()];
    for (_, highest, count) in sketch.distribution() {
        counts[bin_of(highest)] += count;
    }
    let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
    let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    let histogram = (first..=last)
        .map(|bin| Bin {
            from_ms: edges[bin],
            until_ms: edges.get(bin + 1).copied().unwrap_or(u32::MAX),
            count: counts[bin],
        })
        .collect();
    Distribution {
        count: sketch.count(),
        quantiles,
        histogram,
    }
}

fn describe_filter(filter: &Filter) -> Vec<String> {
    let mut described = Vec::new();
    if !filter.services.is_empty() {
        described.push(format!("service {}", filter.services.join(" or ")));
    }
    if let Some(route) = &filter.route {
        described.push(format!("route {route}"));
    }
    if !filter.statuses.is_empty() {
        let statuses: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| match status {
                StatusFilter::Exact(code) => code.to_string(),
                StatusFilter::Class(class) => format!("{class}xx"),
            })
            .collect();
        described.push(format!("status {}", statuses.join(" or ")));
    }
    if !filter.levels.is_empty() {
        described.push(format!("level {}", filter.levels.join(" or ")));
    }
    for (path, value) in &filter.metadata {
        described.push(format!("metadata.{} = {value}", path.join(".")));
    }
    described
}

impl ReportData {
    /// The window, the comparison, the filters and the exactness, in one line.
    pub fn scope(&self) -> String {
        let mut text = self.window.describe();
        if let Some(previous) = &self.previous {
            text.push_str(&format!(", against {}", previous.describe()));
        }
        for filter in &self.filters {
            text.push_str(", ");
            text.push_str(filter);
        }
        text.push_str(if self.exact {
            "; exact"
        } else {
            "; quantiles within 1%"
        });
        text
    }

    /// The report as tables, for text, CSV and the HTML page's tables.
    pub fn tables(&self) -> Vec<Table> {
        let scope = self.scope();
        let figures_table = |name, title: String, first: &'static str, rows: &[Named]| Table {
            name,
            title,
            columns: std::iter::once(first).chain(FIGURE_COLUMNS).collect(),
            rows: rows
                .iter()
                .map(|row| {
                    std::iter::once(Cell::Text(row.name.clone()))
                        .chain(row.figures.cells())
                        .collect()
                })
                .collect(),
        };
        let services_title = if self.services.len() < self.services_found {
            format!(
                "Services, the busiest {} of {}",
                self.services.len(),
                self.services_found
            )
        } else {
            "Services".to_string()
        };
        vec![
            self.headline_table(&scope),
            self.timeline_table(),
            figures_table("services", services_title, "service", &self.services),
            figures_table(
                "routes_by_p99",
                "Top routes by p99 latency".to_string(),
                "route",
                &self.routes_by_p99,
            ),
            figures_table(
                "routes_by_errors",
                "Top routes by errors".to_string(),
                "route",
                &self.routes_by_errors,
            ),
            self.quantiles_table(),
            self.histogram_table(),
            self.slowest.clone(),
        ]
    }

    fn headline_table(&self, scope: &str) -> Table {
        let current = self.headline.current.cells();
        let mut columns = vec!["figure", "value"];
        let previous = self.headline.previous.map(|figures| figures.cells());
        if previous.is_some() {
            columns.extend(["previous", "change"]);
        }
        let changes = self.headline.change.unwrap_or_default().named();
        Table {
            name: "headline",
            title: format!("Headline: {scope}"),
            columns,
            rows: FIGURE_COLUMNS
                .iter()
                .enumerate()
                .map(|(index, &name)| {
                    let mut row = vec![Cell::Text(name.to_string()), current[index].clone()];
                    if let Some(previous) = &previous {
                        row.push(previous[index].clone());
                        row.push(changes[index].map_or(Cell::Null, Cell::change));
                    }
                    row
                })
                .collect(),
        }
    }

    fn timeline_table(&self) -> Table {
        Table {
            name: "timeline",
            title: format!(
                "Over time, in buckets of {} (times in UTC)",
                humantime::format_duration(std::time::Duration::from_secs(
                    self.timeline.bucket_seconds.unsigned_abs()
                ))
            ),
            columns: std::iter::once("start").chain(FIGURE_COLUMNS).collect(),
            rows: self
                .timeline
                .buckets
                .iter()
                .map(|bucket| {
                    std::iter::once(Cell::Time(bucket.start))
                        .chain(bucket.figures.cells())
                        .collect()
                })
                .collect(),
        }
    }

    fn quantiles_table(&self) -> Table {
        Table {
            name: "latency",
            title: format!("Latency distribution of {} requests", self.latency.count),
            columns: vec!["quantile", "ms"],
            rows: self
                .latency
                .quantiles
                .iter()
                .map(|quantile| {
                    vec![
                        Cell::Text(quantile.name.to_string()),
                        Cell::decimal(quantile.ms, 1),
                    ]
                })
                .collect(),
        }
    }

    fn histogram_table(&self) -> Table {
        Table {
            name: "histogram",
            title: "Latency histogram (log scale)".to_string(),
            columns: vec!["from_ms", "until_ms", "requests"],
            rows: self
                .latency
                .histogram
                .iter()
                .map(|bin| {
                    vec![
                        Cell::Int(i64::from(bin.from_ms)),
                        Cell::Int(i64::from(bin.until_ms)),
                        Cell::Int(bin.count as i64),
                    ]
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::sketch::Sketch;

    #[test]
    fn a_timeline_has_at_most_two_hundred_buckets_of_a_round_width() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let period = |from, until| Period {
            from: at(from),
            until: at(until),
        };
        let week = period("2026-11-20T00:00:00Z", "2026-11-27T00:00:00Z");
        assert_eq!(bucket_width(week), 60 * MINUTE);
        let month = period("2026-10-28T00:00:00Z", "2026-11-27T00:00:00Z");
        assert_eq!(bucket_width(month), 360 * MINUTE);
        let hour = period("2026-11-27T00:00:00Z", "2026-11-27T01:00:00Z");
        assert_eq!(bucket_width(hour), MINUTE);
    }

    #[test]
    fn the_histogram_has_every_bin_between_the_lowest_and_the_highest_latency() {
        let measures = Measures {
            events: 5,
            errors: 0,
            latency: Sketch::from_iter([3, 4, 60, 61, 1200]),
        };
        let histogram = distribution(&measures).histogram;
        let bins: Vec<(u32, u32, u64)> = histogram
            .iter()
            .map(|bin| (bin.from_ms, bin.until_ms, bin.count))
            .collect();
        assert_eq!(
            bins,
            [
                (2, 5, 2),
                (5, 10, 0),
                (10, 20, 0),
                (20, 50, 0),
                (50, 100, 2),
                (100, 200, 0),
                (200, 500, 0),
                (500, 1000, 0),
                (1000, 2000, 1),
            ]
        );
    }
}
