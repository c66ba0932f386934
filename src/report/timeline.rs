//! `timeline`: one metric per time bucket, every bucket present (an empty bucket counts
//! 0, and has no quantile), optionally one series per service, status code, status
//! class or level, with the window compared with bucket by bucket. Tables carry the
//! numbers; the terminal also gets sparklines with their scale.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use crate::analytics::read::{Answer, Dimension, read};
use crate::report::chart;
use crate::report::scope::{Metric, Scope, compared_cells, compared_columns};
use crate::report::{Cell, Table, column_names};
use crate::terminal::Display;

/// What a timeline's series are split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Service,
    /// The status code (200, 404, 503).
    Status,
    /// The status class (2xx, 4xx, 5xx).
    StatusClass,
    Level,
}

impl Split {
    fn dimension(self) -> Dimension {
        match self {
            Split::Service => Dimension::Service,
            Split::Status => Dimension::Status,
            Split::StatusClass => Dimension::StatusClass,
            Split::Level => Dimension::Level,
        }
    }

    /// The column naming each series.
    fn column(self) -> &'static str {
        match self {
            Split::Service => "service",
            Split::Status => "status",
            Split::StatusClass => "status_class",
            Split::Level => "level",
        }
    }
}

/// Bucket widths `auto` chooses from, in seconds: the finest that fits is taken.
const WIDTHS: [i64; 12] = [
    60,
    5 * 60,
    10 * 60,
    15 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
];

/// The finest usual bucket width that gives at most `columns` buckets over the window.
pub fn auto_bucket(from: DateTime<Utc>, until: DateTime<Utc>, columns: usize) -> i64 {
    let seconds = (until - from).num_seconds().max(1);
    let columns = columns.max(1) as i64;
    WIDTHS
        .iter()
        .copied()
        .find(|width| (seconds + width - 1) / width < columns)
        .unwrap_or(WIDTHS[WIDTHS.len() - 1])
}

/// At most this many series are drawn; the rest are added up as `(other)`.
pub const SERIES: usize = 8;

/// One series: its label ("" without a split) and a value per bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
    /// The compared window's values, bucket by bucket.
    pub previous: Option<Vec<Option<f64>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub scope: Scope,
    pub metric: Metric,
    pub split: Option<Split>,
    pub bucket_seconds: i64,
    pub starts: Vec<DateTime<Utc>>,
    pub series: Vec<Series>,
    pub events: u64,
}

/// The timeline of `metric` in buckets of `bucket_seconds`, split or not.
pub async fn timeline(
    client: &Client,
    scope: &Scope,
    metric: Metric,
    split: Option<Split>,
    bucket_seconds: i64,
) -> crate::Result<Timeline> {
    let mut timelines = timelines(client, scope, &[metric], split, bucket_seconds).await?;
    Ok(timelines.remove(0))
}

/// A timeline of each of `metrics` over the same buckets and series, from one read (and
/// one of the window compared with): `report` draws three.
pub async fn timelines(
    client: &Client,
    scope: &Scope,
    metrics: &[Metric],
    split: Option<Split>,
    bucket_seconds: i64,
) -> crate::Result<Vec<Timeline>> {
    let mut query = scope.query();
    query.bucket = Some(bucket_seconds * 1_000_000);
    query.by = split.map(Split::dimension).into_iter().collect();
    query.latency = metrics.iter().any(|metric| metric.needs_latency());
    let answer = read(client, &query).await?;
    // The largest series by events, the rest as one.
    let mut labels: Vec<(u64, &Vec<String>)> = answer
        .series
        .iter()
        .map(|(key, buckets)| (buckets.iter().map(|m| m.events).sum(), key))
        .collect();
    labels.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let shown: Vec<Vec<String>> = labels
        .iter()
        .take(if labels.len() > SERIES {
            SERIES - 1
        } else {
            SERIES
        })
        .map(|(_, key)| (*key).clone())
        .collect();
    let previous = match scope.previous_query(&query) {
        Some(previous) => Some(read(client, &previous).await?),
        None => None,
    };
    // Each series is a group, or (None) every group not shown: without a split, all.
    let mut groups: Vec<(String, Option<&Vec<String>>)> = Vec::new();
    if split.is_some() {
        groups.extend(shown.iter().map(|key| (key.join(" "), Some(key))));
        if labels.len() > shown.len() {
            groups.push(("(other)".into(), None));
        }
    } else {
        groups.push((String::new(), None));
    }
    let shown = if split.is_some() {
        shown.clone()
    } else {
        Vec::new()
    };
    let values_of = |metric: Metric, answer: &Answer, group: Option<&Vec<String>>| {
        let keep = |key: &[String]| match group {
            Some(wanted) => key == wanted.as_slice(),
            None => !shown.iter().any(|other| other == key),
        };
        (0..answer.buckets.len())
            .map(|bucket| metric.of(&answer.stats(keep, bucket..bucket + 1)))
            .collect::<Vec<_>>()
    };
    let events = answer.total().events;
    let timeline = |metric: Metric| Timeline {
        scope: scope.clone(),
        metric,
        split,
        bucket_seconds,
        starts: answer.buckets.clone(),
        events,
        series: groups
            .iter()
            .map(|(label, group)| Series {
                label: if label.is_empty() && split.is_some() {
                    "(none)".into()
                } else {
                    label.clone()
                },
                values: values_of(metric, &answer, *group),
                previous: previous
                    .as_ref()
                    .map(|answer| values_of(metric, answer, *group)),
            })
            .collect(),
    };
    Ok(metrics.iter().map(|&metric| timeline(metric)).collect())
}

/// A series' lowest and highest bucket (its index and value), and the total of a count.
struct Extremes {
    lowest: Option<f64>,
    highest: Option<(usize, f64)>,
    total: Option<f64>,
}

impl Extremes {
    fn of(values: &[Option<f64>], metric: Metric) -> Extremes {
        let known = || values.iter().flatten().copied();
        let highest = values
            .iter()
            .enumerate()
            .filter_map(|(index, value)| value.map(|v| (index, v)))
            .fold(
                None,
                |best: Option<(usize, f64)>, (index, value)| match best {
                    Some((_, top)) if top >= value => best,
                    _ => Some((index, value)),
                },
            );
        let additive = matches!(metric, Metric::Count | Metric::Errors);
        Extremes {
            lowest: known().reduce(f64::min),
            highest,
            total: additive.then(|| known().sum()),
        }
    }
}

/// `5m`, `1h`, `1d`: a bucket width as people write it.
pub fn width_name(seconds: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds as u64)).to_string()
}

impl Timeline {
    /// One row per bucket (and series): its start, the value, and when compared the
    /// value of the same bucket before and the change.
    pub fn tables(&self) -> Vec<Table> {
        let mut columns = column_names(&["bucket_start"]);
        if let Some(split) = self.split {
            columns.extend(column_names(&[split.column()]));
        }
        columns.extend(compared_columns(
            self.metric.column(),
            self.scope.previous.is_some(),
        ));
        let mut rows = Vec::new();
        for (bucket, &start) in self.starts.iter().enumerate() {
            for series in &self.series {
                let mut row = vec![Cell::Time(start)];
                if self.split.is_some() {
                    row.push(Cell::Text(series.label.clone()));
                }
                let before = series
                    .previous
                    .as_ref()
                    .map(|previous| previous.get(bucket).copied().flatten());
                row.extend(compared_cells(self.metric, series.values[bucket], before));
                rows.push(row);
            }
        }
        vec![Table {
            name: "timeline",
            title: self.scope.heading(&format!(
                "{} per {}",
                self.metric.name(),
                width_name(self.bucket_seconds)
            )),
            columns,
            rows,
        }]
    }

    /// Per series, for the terminal beside the chart: its lowest and highest bucket,
    /// when the highest began, and the total of a count; when compared, each figure
    /// beside the same in the window compared with and the change.
    pub fn overview(&self) -> Table {
        let compared = self.scope.previous.is_some();
        let rows = self
            .series
            .iter()
            .map(|series| {
                let now = Extremes::of(&series.values, self.metric);
                let before = series
                    .previous
                    .as_ref()
                    .map(|values| Extremes::of(values, self.metric));
                let figure = |value: fn(&Extremes) -> Option<f64>| {
                    compared_cells(self.metric, value(&now), before.as_ref().map(value))
                };
                let mut row = vec![Cell::Text(match series.label.as_str() {
                    "" => "all".into(),
                    label => label.into(),
                })];
                row.extend(figure(|e| e.lowest));
                row.extend(figure(|e| e.highest.map(|(_, value)| value)));
                row.push(
                    now.highest
                        .map_or(Cell::Null, |(index, _)| Cell::Time(self.starts[index])),
                );
                row.extend(figure(|e| e.total));
                row
            })
            .collect();
        let mut columns = column_names(&["series"]);
        columns.extend(compared_columns("lowest", compared));
        columns.extend(compared_columns("highest", compared));
        columns.extend(column_names(&["highest_at"]));
        columns.extend(compared_columns("total", compared));
        Table {
            name: "timeline",
            title: self.scope.heading(&format!(
                "{} per {}",
                self.metric.name(),
                width_name(self.bucket_seconds)
            )),
            columns,
            rows,
        }
    }

    /// The chart: per series a sparkline between its scale (`0 |▁▂▄█▅▂| 36 ms`), under
    /// a line naming the first and the last bucket. Values shown are those of `tables`.
    pub fn chart(&self, display: &Display) -> Vec<String> {
        let label_width = self
            .series
            .iter()
            .map(|s| s.label.chars().count())
            .max()
            .unwrap_or(0)
            .min(24);
        let mut lines = Vec::new();
        let top_text = |values: &[Option<f64>]| {
            let top = values.iter().flatten().copied().fold(0.0_f64, f64::max);
            format!(
                "{} {}",
                self.metric.cell(Some(top)).display(),
                self.metric.unit()
            )
            .trim_end()
            .to_string()
        };
        let mut row = |label: &str, values: &[Option<f64>]| {
            let mut label: String = label.chars().take(label_width).collect();
            if label.chars().count() < label_width {
                label.push_str(&" ".repeat(label_width - label.chars().count()));
            }
            let gap = if label_width > 0 { " " } else { "" };
            lines.push(format!(
                "{label}{gap}0 |{}| {}",
                chart::sparkline(values, display.unicode),
                top_text(values)
            ));
        };
        for series in &self.series {
            row(&series.label, &series.values);
            if let Some(previous) = &series.previous {
                row("(before)", previous);
            }
        }
        let indent = label_width + if label_width > 0 { 1 } else { 0 } + 3;
        let first = self
            .starts
            .first()
            .map(|t| t.format("%m-%d %H:%M").to_string());
        let end = self.starts.last().map(|t| {
            (*t + TimeDelta::seconds(self.bucket_seconds))
                .format("%m-%d %H:%M UTC")
                .to_string()
        });
        if let (Some(first), Some(end)) = (first, end) {
            // Under the bars when it fits between their ends, else after the first.
            let room = self.starts.len();
            let axis = if room > first.len() + end.len() {
                format!("{first}{}{end}", " ".repeat(room - first.len() - end.len()))
            } else {
                format!("{first} to {end}")
            };
            lines.push(format!("{}{axis}", " ".repeat(indent)));
            lines.push(format!(
                "{}one column per {}",
                " ".repeat(indent),
                width_name(self.bucket_seconds)
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn auto_buckets_fit_the_columns() {
        let (from, until) = (at("2026-11-26T00:00:00Z"), at("2026-11-27T00:00:00Z"));
        assert_eq!(auto_bucket(from, until, 60), 30 * 60);
        assert_eq!(auto_bucket(from, until, 300), 5 * 60);
        assert_eq!(auto_bucket(from, until, 10), 3 * 3600);
        assert_eq!(width_name(300), "5m");
    }
}
