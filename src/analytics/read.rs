//! The read API: for a time range, filters and an optional bucket width and grouping,
//! the events, errors and merged latency sketch of each bucket of each group. The range
//! is tiled with the coarsest rollup grain that fits (whole days, then whole hours, then
//! minutes), and what no grain can answer (a part of a minute; a part of an hour when
//! the question needs routes, methods or exact statuses, which minute cells do not keep;
//! or everything, with `exact` or a metadata filter) is read from the raw rows. Pending
//! deltas are counted with the compacted cells, so no answer depends on whether
//! compaction ran. Sketches are merged here, in the client.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::TryStreamExt;
use rustc_hash::FxHashMap;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::rollup::{
    Cells, DAY, HOUR, MINUTE, Measures, bucket_of, decode_delta, is_error, status_class,
};
use super::sketch::Sketch;
use crate::pgtime::{from_datetime, to_datetime};

/// A status filter: one code (`404`) or a class (`5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Exact(i16),
    Class(i16),
}

impl StatusFilter {
    fn holds(self, status: Option<i16>) -> bool {
        match self {
            StatusFilter::Exact(code) => status == Some(code),
            StatusFilter::Class(class) => status.is_some() && status_class(status) == class,
        }
    }
}

/// Which events a question is about; empty lists filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Service names.
    pub services: Vec<String>,
    /// A shell-style pattern over routes (`*` any text, `?` one character).
    pub route: Option<String>,
    pub methods: Vec<String>,
    pub statuses: Vec<StatusFilter>,
    pub levels: Vec<String>,
    /// `metadata` path (dotted keys) = text value; raw rows only.
    pub metadata: Vec<(Vec<String>, String)>,
}

/// What a question groups its answer by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Service,
    Route,
    Method,
    Status,
    StatusClass,
    Level,
}

/// A question for the rollups.
#[derive(Debug, Clone)]
pub struct Query {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub filter: Filter,
    /// The bucket width in microseconds; None for one bucket over the whole range.
    pub bucket: Option<i64>,
    pub by: Option<Dimension>,
    /// Read the raw rows instead of the rollups.
    pub exact: bool,
}

/// The answer: bucket starts (every bucket, empty or not) and, per group (one group,
/// labelled "", without grouping), the measures of each bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub buckets: Vec<DateTime<Utc>>,
    pub series: BTreeMap<String, Vec<Measures>>,
    /// Whether any part was read from raw rows, and whether any from rollups.
    pub raw_rows_read: bool,
    pub rollups_read: bool,
}

impl Answer {
    /// Every group's measures merged, bucket by bucket.
    pub fn total(&self) -> Vec<Measures> {
        let mut total = vec![Measures::default(); self.buckets.len()];
        for series in self.series.values() {
            for (sum, measures) in total.iter_mut().zip(series) {
                sum.merge(measures);
            }
        }
        total
    }
}

/// Which store answers a stretch of the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Day,
    Hour,
    Minute,
    Raw,
}

/// A stretch of the range, answered by one source, inside one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tile {
    source: Source,
    start: i64,
    end: i64,
    bucket: usize,
}

/// Cuts [from, until) into buckets, and each bucket into the coarsest tiles that fit.
fn tiles(
    from: i64,
    until: i64,
    bucket: Option<i64>,
    minutes_will_do: bool,
    exact: bool,
) -> (Vec<i64>, Vec<Tile>) {
    let mut starts = Vec::new();
    let mut tiles = Vec::new();
    let width = bucket.unwrap_or(until - from).max(1);
    // Buckets are aligned to their width (a 5-minute bucket starts on a 5-minute mark),
    // the first one cut at `from`.
    let mut start = from;
    while start < until {
        let end = match bucket {
            Some(width) => (bucket_of(start, width) + width).min(until),
            None => until,
        };
        let index = starts.len();
        starts.push(if bucket.is_some() {
            bucket_of(start, width)
        } else {
            start
        });
        if exact {
            tiles.push(Tile {
                source: Source::Raw,
                start,
                end,
                bucket: index,
            });
        } else {
            tile(start, end, index, minutes_will_do, &mut tiles);
        }
        start = end;
    }
    (starts, tiles)
}

/// The coarsest tiles of [start, end): whole days, whole hours, whole minutes (when the
/// question needs no more than minute cells keep), raw rows for the rest.
fn tile(start: i64, end: i64, bucket: usize, minutes_will_do: bool, tiles: &mut Vec<Tile>) {
    let levels: [(Source, i64); 3] = [
        (Source::Day, DAY),
        (Source::Hour, HOUR),
        (Source::Minute, MINUTE),
    ];
    fn split(
        start: i64,
        end: i64,
        level: usize,
        levels: &[(Source, i64)],
        minutes_will_do: bool,
        bucket: usize,
        tiles: &mut Vec<Tile>,
    ) {
        if start >= end {
            return;
        }
        let Some(&(source, width)) = levels.get(level) else {
            tiles.push(Tile {
                source: Source::Raw,
                start,
                end,
                bucket,
            });
            return;
        };
        if source == Source::Minute && !minutes_will_do {
            tiles.push(Tile {
                source: Source::Raw,
                start,
                end,
                bucket,
            });
            return;
        }
        let first = bucket_of(start + width - 1, width);
        let last = bucket_of(end, width);
        if first >= last {
            split(
                start,
                end,
                level + 1,
                levels,
                minutes_will_do,
                bucket,
                tiles,
            );
            return;
        }
        split(
            start,
            first,
            level + 1,
            levels,
            minutes_will_do,
            bucket,
            tiles,
        );
        tiles.push(Tile {
            source,
            start: first,
            end: last,
            bucket,
        });
        split(last, end, level + 1, levels, minutes_will_do, bucket, tiles);
    }
    split(start, end, 0, &levels, minutes_will_do, bucket, tiles);
}

/// Answers a question.
pub async fn read(client: &Client, query: &Query) -> crate::Result<Answer> {
    let services = service_ids(client, &query.filter.services).await?;
    let (from, until) = (from_datetime(query.from), from_datetime(query.until));
    let minutes_will_do = query.filter.route.is_none()
        && query.filter.methods.is_empty()
        && query
            .filter
            .statuses
            .iter()
            .all(|status| matches!(status, StatusFilter::Class(_)))
        && !matches!(
            query.by,
            Some(Dimension::Route | Dimension::Method | Dimension::Status)
        );
    let exact = query.exact || !query.filter.metadata.is_empty();
    let (starts, tiles) = tiles(from, until, query.bucket, minutes_will_do, exact);
    let mut reader = Reading {
        query,
        services: &services,
        names: service_names(client).await?,
        series: BTreeMap::new(),
        buckets: starts.len(),
        answer_raw: false,
        answer_rollups: false,
    };
    for source in [Source::Day, Source::Hour, Source::Minute, Source::Raw] {
        let mine: Vec<Tile> = tiles
            .iter()
            .copied()
            .filter(|t| t.source == source)
            .collect();
        if !mine.is_empty() {
            reader.read(client, source, &mine).await?;
        }
    }
    // Deltas not folded yet count like the cells they will become.
    let rollup_tiles: Vec<Tile> = tiles
        .iter()
        .copied()
        .filter(|t| t.source != Source::Raw)
        .collect();
    if !rollup_tiles.is_empty() {
        reader.read_pending(client, &rollup_tiles).await?;
    }
    Ok(Answer {
        buckets: starts.iter().map(|&start| to_datetime(start)).collect(),
        series: reader.series,
        raw_rows_read: reader.answer_raw,
        rollups_read: reader.answer_rollups,
    })
}

/// The newest minute the rollups hold (compacted or pending), plus a minute: the end of
/// a window that ends with the data. An index finds it at once.
pub async fn newest_minute(client: &Client) -> crate::Result<Option<DateTime<Utc>>> {
    let row = client
        .query_one(
            "SELECT greatest((SELECT max(minute) FROM logctl_rollup_minute), \
                             (SELECT max(last_minute) FROM logctl_rollup_deltas))",
            &[],
        )
        .await?;
    Ok(row
        .get::<_, Option<DateTime<Utc>>>(0)
        .map(|minute| minute + TimeDelta::minutes(1)))
}

/// The ids of the services named; an unknown name matches nothing.
async fn service_ids(client: &Client, names: &[String]) -> crate::Result<Option<Vec<i32>>> {
    if names.is_empty() {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT service_id FROM services WHERE service_name = ANY($1)",
            &[&names],
        )
        .await?;
    Ok(Some(rows.iter().map(|row| row.get(0)).collect()))
}

async fn service_names(client: &Client) -> crate::Result<FxHashMap<i32, String>> {
    Ok(client
        .query("SELECT service_id, service_name FROM services", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Whether a route matches a shell-style pattern.
fn glob_matches(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut g, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some(g);
            mark = t;
            g += 1;
        } else if let Some(position) = star {
            g = position + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// One cell or row, as far as grouping and filtering go.
struct Facts<'a> {
    service_id: i32,
    route: Option<&'a str>,
    method: Option<&'a str>,
    status: Option<i16>,
    /// For minute cells, which keep only the class.
    class: i16,
    level: Option<&'a str>,
}

/// The state of one read: the filters, and the series added up so far.
struct Reading<'q> {
    query: &'q Query,
    services: &'q Option<Vec<i32>>,
    names: FxHashMap<i32, String>,
    series: BTreeMap<String, Vec<Measures>>,
    buckets: usize,
    answer_raw: bool,
    answer_rollups: bool,
}

impl Reading<'_> {
    fn keeps(&self, facts: &Facts<'_>) -> bool {
        let filter = &self.query.filter;
        self.services
            .as_ref()
            .is_none_or(|ids| ids.contains(&facts.service_id))
            && filter
                .route
                .as_ref()
                .is_none_or(|glob| facts.route.is_some_and(|route| glob_matches(glob, route)))
            && (filter.methods.is_empty()
                || facts.method.is_some_and(|method| {
                    filter
                        .methods
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(method))
                }))
            && (filter.statuses.is_empty()
                || filter.statuses.iter().any(|status| match status {
                    StatusFilter::Class(class) => facts.class == *class,
                    exact => exact.holds(facts.status),
                }))
            && (filter.levels.is_empty()
                || facts.level.is_some_and(|level| {
                    filter.levels.iter().any(|l| l.eq_ignore_ascii_case(level))
                }))
    }

    fn label(&self, facts: &Facts<'_>) -> String {
        match self.query.by {
            None => String::new(),
            Some(Dimension::Service) => self
                .names
                .get(&facts.service_id)
                .cloned()
                .unwrap_or_else(|| format!("#{}", facts.service_id)),
            Some(Dimension::Route) => facts.route.unwrap_or("").to_string(),
            Some(Dimension::Method) => facts.method.unwrap_or("").to_string(),
            Some(Dimension::Status) => facts.status.map_or(String::new(), |s| s.to_string()),
            Some(Dimension::StatusClass) => match facts.class {
                0 => String::new(),
                class => format!("{class}xx"),
            },
            Some(Dimension::Level) => facts.level.unwrap_or("").to_string(),
        }
    }

    fn add(&mut self, bucket: usize, facts: &Facts<'_>, measures: &Measures) {
        if !self.keeps(facts) {
            return;
        }
        let label = self.label(facts);
        let buckets = self.buckets;
        let series = self
            .series
            .entry(label)
            .or_insert_with(|| vec![Measures::default(); buckets]);
        series[bucket].merge(measures);
    }

    /// Adds the cells (or rows) of these tiles, all of one source.
    async fn read(&mut self, client: &Client, source: Source, tiles: &[Tile]) -> crate::Result<()> {
        if source == Source::Raw {
            return self.read_rows(client, tiles).await;
        }
        self.answer_rollups = true;
        let (table, time, dims) = match source {
            Source::Day => ("logctl_rollup_day", "day", "route, method, status, level"),
            Source::Hour => ("logctl_rollup_hour", "hour", "route, method, status, level"),
            _ => ("logctl_rollup_minute", "minute", "status_class, level"),
        };
        let starts: Vec<DateTime<Utc>> = tiles.iter().map(|t| to_datetime(t.start)).collect();
        let ends: Vec<DateTime<Utc>> = tiles.iter().map(|t| to_datetime(t.end)).collect();
        let indexes: Vec<i32> = (0..tiles.len() as i32).collect();
        let services: Option<&Vec<i32>> = self.services.as_ref();
        let rows = client
            .query(
                &format!(
                    "SELECT w.i, c.service_id, {dims}, c.events, c.errors, c.latency \
                     FROM unnest($1::timestamptz[], $2::timestamptz[], $3::integer[]) AS w(s, e, i) \
                     JOIN {table} c ON c.{time} >= w.s AND c.{time} < w.e \
                     WHERE $4::integer[] IS NULL OR c.service_id = ANY($4)"
                ),
                &[&starts, &ends, &indexes, &services],
            )
            .await?;
        for row in &rows {
            let tile = tiles[row.get::<_, i32>(0) as usize];
            let (facts, at) = if source == Source::Minute {
                let class: i16 = row.get(2);
                let level: &str = row.get(3);
                (
                    Facts {
                        service_id: row.get(1),
                        route: None,
                        method: None,
                        status: None,
                        class,
                        level: Some(level).filter(|l| !l.is_empty()),
                    },
                    4,
                )
            } else {
                let route: &str = row.get(2);
                let method: &str = row.get(3);
                let status: i16 = row.get(4);
                let level: &str = row.get(5);
                let status = Some(status).filter(|&s| s != 0);
                (
                    Facts {
                        service_id: row.get(1),
                        route: Some(route).filter(|r| !r.is_empty()),
                        method: Some(method).filter(|m| !m.is_empty()),
                        status,
                        class: status_class(status),
                        level: Some(level).filter(|l| !l.is_empty()),
                    },
                    6,
                )
            };
            let measures = Measures {
                events: row.get::<_, i64>(at) as u64,
                errors: row.get::<_, i64>(at + 1) as u64,
                latency: Sketch::decode(row.get(at + 2))?,
            };
            self.add(tile.bucket, &facts, &measures);
        }
        Ok(())
    }

    /// Adds the cells of the pending deltas that fall in the rollup tiles.
    async fn read_pending(&mut self, client: &Client, tiles: &[Tile]) -> crate::Result<()> {
        let from = tiles.iter().map(|t| t.start).min().unwrap_or(0);
        let until = tiles.iter().map(|t| t.end).max().unwrap_or(0);
        let rows = client
            .query(
                "SELECT service_id, cells FROM logctl_rollup_deltas \
                 WHERE last_minute >= $1 AND first_minute < $2",
                &[&to_datetime(from), &to_datetime(until)],
            )
            .await?;
        let mut pending = Cells::default();
        for row in &rows {
            pending.merge(&decode_delta(row.get(0), row.get(1))?);
        }
        for tile in tiles {
            match tile.source {
                Source::Minute => {
                    for (key, measures) in &pending.minutes {
                        if (tile.start..tile.end).contains(&key.minute) {
                            let facts = Facts {
                                service_id: key.service_id,
                                route: None,
                                method: None,
                                status: None,
                                class: key.status_class,
                                level: Some(&*key.level).filter(|l| !l.is_empty()),
                            };
                            self.add(tile.bucket, &facts, measures);
                        }
                    }
                }
                _ => {
                    for (key, measures) in &pending.hours {
                        if (tile.start..tile.end).contains(&key.start) {
                            let status = Some(key.status).filter(|&s| s != 0);
                            let facts = Facts {
                                service_id: key.service_id,
                                route: Some(&*key.route).filter(|r| !r.is_empty()),
                                method: Some(&*key.method).filter(|m| !m.is_empty()),
                                status,
                                class: status_class(status),
                                level: Some(&*key.level).filter(|l| !l.is_empty()),
                            };
                            self.add(tile.bucket, &facts, measures);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the raw rows of these tiles, streamed.
    async fn read_rows(&mut self, client: &Client, tiles: &[Tile]) -> crate::Result<()> {
        self.answer_raw = true;
        let starts: Vec<DateTime<Utc>> = tiles.iter().map(|t| to_datetime(t.start)).collect();
        let ends: Vec<DateTime<Utc>> = tiles.iter().map(|t| to_datetime(t.end)).collect();
        let indexes: Vec<i32> = (0..tiles.len() as i32).collect();
        let services: Option<Vec<i32>> = self.services.clone();
        let (paths, values): (Vec<String>, Vec<String>) = self
            .query
            .filter
            .metadata
            .iter()
            .map(|(path, value)| (format!("{{{}}}", path.join(",")), value.clone()))
            .unzip();
        let parameters: [&(dyn ToSql + Sync); 6] =
            [&starts, &ends, &indexes, &services, &paths, &values];
        let rows = client
            .query_raw(
                "SELECT w.i, l.service_id, l.route, l.method, l.status, l.level, l.latency_ms \
                 FROM unnest($1::timestamptz[], $2::timestamptz[], $3::integer[]) AS w(s, e, i) \
                 JOIN log_events l ON l.created_at >= w.s AND l.created_at < w.e \
                 WHERE ($4::integer[] IS NULL OR l.service_id = ANY($4)) \
                   AND NOT EXISTS (SELECT 1 FROM unnest($5::text[], $6::text[]) AS m(p, v) \
                                   WHERE (l.metadata #>> m.p::text[]) IS DISTINCT FROM m.v)",
                parameters,
            )
            .await?;
        futures_util::pin_mut!(rows);
        while let Some(row) = rows.try_next().await? {
            let tile = tiles[row.get::<_, i32>(0) as usize];
            let status: Option<i16> = row.get(4);
            let level: Option<&str> = row.get(5);
            let facts = Facts {
                service_id: row.get(1),
                route: row.get(2),
                method: row.get(3),
                status,
                class: status_class(status),
                level,
            };
            let mut measures = Measures {
                events: 1,
                errors: u64::from(is_error(status, level)),
                latency: Sketch::new(),
            };
            if let Some(latency) = row.get::<_, Option<i32>>(6) {
                measures.latency.add(latency);
            }
            self.add(tile.bucket, &facts, &measures);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(
        from: i64,
        until: i64,
        bucket: Option<i64>,
        minutes: bool,
    ) -> Vec<(Source, i64, i64, usize)> {
        tiles(from, until, bucket, minutes, false)
            .1
            .iter()
            .map(|t| (t.source, t.start, t.end, t.bucket))
            .collect()
    }

    #[test]
    fn a_range_is_tiled_with_the_coarsest_grains_and_raw_rows_at_its_edges() {
        let from = DAY + 5 * HOUR + 30 * MINUTE + 7;
        let until = 3 * DAY + 2 * HOUR + 10 * MINUTE;
        assert_eq!(
            sources(from, until, None, true),
            [
                (Source::Raw, from, DAY + 5 * HOUR + 31 * MINUTE, 0),
                (
                    Source::Minute,
                    DAY + 5 * HOUR + 31 * MINUTE,
                    DAY + 6 * HOUR,
                    0
                ),
                (Source::Hour, DAY + 6 * HOUR, 2 * DAY, 0),
                (Source::Day, 2 * DAY, 3 * DAY, 0),
                (Source::Hour, 3 * DAY, 3 * DAY + 2 * HOUR, 0),
                (Source::Minute, 3 * DAY + 2 * HOUR, until, 0),
            ]
        );
        // A question minute cells cannot answer reads raw rows below the hour.
        assert_eq!(
            sources(HOUR - MINUTE, 2 * HOUR + MINUTE, None, false),
            [
                (Source::Raw, HOUR - MINUTE, HOUR, 0),
                (Source::Hour, HOUR, 2 * HOUR, 0),
                (Source::Raw, 2 * HOUR, 2 * HOUR + MINUTE, 0),
            ]
        );
    }

    #[test]
    fn buckets_are_aligned_to_their_width_and_every_one_is_there() {
        let (starts, tiles) = tiles(7 * MINUTE, 21 * MINUTE, Some(5 * MINUTE), true, false);
        assert_eq!(starts, [5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 20 * MINUTE]);
        assert!(tiles.iter().all(|t| t.source == Source::Minute));
        assert_eq!(tiles[0].start, 7 * MINUTE);
        assert_eq!(tiles.last().unwrap().end, 21 * MINUTE);
    }

    #[test]
    fn route_patterns_match_like_a_shell() {
        assert!(glob_matches("/api/*/orders/:id", "/api/v1/orders/:id"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("/a?c", "/abc"));
        assert!(!glob_matches("/a*", "/b"));
    }
}
