//! The read API: for a time range, filters, an optional bucket width and a grouping,
//! the events, errors and merged latency sketch of each bucket of each group. The range
//! is tiled with the coarsest rollup grain that fits (whole days, then whole hours, then
//! minutes), and of each width the smallest family of cells that keeps what the
//! question needs: each service's totals when it names no route, method, status or
//! level; the service cells (method, status, level) unless it is about routes; the route
//! cells when it is about routes alone; else the fine cells. What no grain can
//! answer (a part of a minute; a part of an hour when the question needs routes,
//! methods or exact statuses, which minute cells do not keep; or everything, with
//! `exact` or a metadata filter) is read from the raw rows. Pending deltas are counted
//! with the compacted cells, so no answer depends on whether compaction ran. Sketches are
//! merged here, in the client; an exact answer also keeps every latency, so that its
//! quantiles are those of `percentile_disc`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use rustc_hash::FxHashMap;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::compact::key_columns;
use super::rollup::{
    Cells, DAY, Detail, Family, Grain, HOUR, HourKey, Kept, MINUTE, Measures, Width, bucket_of,
    is_error, merge_detail, status_class,
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
    fn holds(self, status: Option<i16>, class: i16) -> bool {
        match self {
            StatusFilter::Exact(code) => status == Some(code),
            StatusFilter::Class(wanted) => class == wanted,
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
    /// What the answer is grouped by: a group's key holds one label per dimension, in
    /// this order ("" where an event has no value). Nothing: one group, the empty key.
    pub by: Vec<Dimension>,
    /// Read the raw rows instead of the rollups, and keep every latency.
    pub exact: bool,
    /// Whether latencies are wanted; without them no sketch is read.
    pub latency: bool,
    /// Only these groups, when given.
    pub only: Option<BTreeSet<Vec<String>>>,
}

impl Query {
    /// Every event of [from, until) in one group and one bucket, latencies included.
    pub fn new(from: DateTime<Utc>, until: DateTime<Utc>) -> Query {
        Query {
            from,
            until,
            filter: Filter::default(),
            bucket: None,
            by: Vec::new(),
            exact: false,
            latency: true,
            only: None,
        }
    }

    /// Whether the answer comes from the raw rows alone.
    pub fn is_exact(&self) -> bool {
        self.exact || !self.filter.metadata.is_empty()
    }

    /// What the question needs of a cell's key beside the service and the bucket.
    fn needs(&self, dimension: Kept) -> bool {
        let filter = &self.filter;
        let grouped = |wanted: &[Dimension]| self.by.iter().any(|by| wanted.contains(by));
        match dimension {
            Kept::Route => filter.route.is_some() || grouped(&[Dimension::Route]),
            Kept::Method => !filter.methods.is_empty() || grouped(&[Dimension::Method]),
            Kept::Status => {
                !filter.statuses.is_empty() || grouped(&[Dimension::Status, Dimension::StatusClass])
            }
            Kept::Level => !filter.levels.is_empty() || grouped(&[Dimension::Level]),
        }
    }

    /// Whether minute cells (service, status class, level) can answer: then a range
    /// needs raw rows only for its parts of minutes.
    pub fn minutes_will_do(&self) -> bool {
        !self.needs(Kept::Route)
            && !self.needs(Kept::Method)
            && self
                .filter
                .statuses
                .iter()
                .all(|status| matches!(status, StatusFilter::Class(_)))
            && !self.by.contains(&Dimension::Status)
    }

    /// The smallest family of hour-like cells that keeps what the question needs.
    fn family(&self) -> Family {
        let kept = [Kept::Route, Kept::Method, Kept::Status, Kept::Level];
        if !kept.iter().any(|&kept| self.needs(kept)) {
            Family::Total
        } else if !self.needs(Kept::Route) {
            Family::Service
        } else if [Kept::Method, Kept::Status, Kept::Level]
            .iter()
            .any(|&kept| self.needs(kept))
        {
            Family::Fine
        } else {
            Family::Route
        }
    }
}

/// The answer: bucket starts (every bucket, empty or not) and, per group, the measures
/// of each bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub buckets: Vec<DateTime<Utc>>,
    pub series: BTreeMap<Vec<String>, Vec<Measures>>,
    /// For an exact answer, every latency of each group's buckets (keyed as `series`),
    /// from which quantiles are read instead of the sketches.
    pub latencies: Option<BTreeMap<Vec<String>, Vec<Vec<i32>>>>,
    /// Whether any part was read from raw rows, and whether any from rollups.
    pub raw_rows_read: bool,
    pub rollups_read: bool,
}

impl Answer {
    /// The groups `keep` chooses, added up over the buckets in `buckets`.
    pub fn stats(&self, keep: impl Fn(&[String]) -> bool, buckets: Range<usize>) -> Stats {
        let mut stats = Stats::default();
        let mut values = self.latencies.as_ref().map(|_| Vec::new());
        for (key, series) in self.series.iter().filter(|(key, _)| keep(key)) {
            for measures in &series[buckets.clone()] {
                stats.add(measures);
            }
            let latencies = self.latencies.as_ref().and_then(|all| all.get(key));
            if let (Some(values), Some(latencies)) = (&mut values, latencies) {
                for bucket in &latencies[buckets.clone()] {
                    values.extend_from_slice(bucket);
                }
            }
        }
        if let Some(mut values) = values {
            values.sort_unstable();
            stats.values = Some(values);
        }
        stats
    }

    /// Each group over every bucket.
    pub fn by_group(&self) -> BTreeMap<Vec<String>, Stats> {
        self.series
            .keys()
            .map(|key| {
                let stats = self.stats(|other| other == key.as_slice(), 0..self.buckets.len());
                (key.clone(), stats)
            })
            .collect()
    }

    /// Each bucket over every group.
    pub fn by_bucket(&self) -> Vec<Stats> {
        (0..self.buckets.len())
            .map(|bucket| self.stats(|_| true, bucket..bucket + 1))
            .collect()
    }

    /// Every group over every bucket.
    pub fn total(&self) -> Stats {
        self.stats(|_| true, 0..self.buckets.len())
    }
}

/// Measures added up over buckets or groups. In an exact answer it also holds every
/// latency, and its quantiles are those of `percentile_disc`; else they are the
/// sketch's, within 1% of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub errors: u64,
    pub latency: Sketch,
    /// Every latency, in ascending order, when the answer is exact.
    values: Option<Vec<i32>>,
}

impl Stats {
    pub fn add(&mut self, measures: &Measures) {
        self.events += measures.events;
        self.errors += measures.errors;
        self.latency.merge(&measures.latency);
    }

    /// The latency below which a fraction `q` of the latencies lie, as
    /// `percentile_disc(q)` defines it (exactly, or within 1%); None without latencies.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        match &self.values {
            Some(values) if !values.is_empty() => {
                let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
                Some(f64::from(values[rank - 1]))
            }
            Some(_) => None,
            None => self.latency.quantile(q),
        }
    }

    /// How many latencies are at most `ms`: exactly, or as the sketch counts them.
    pub fn count_at_most(&self, ms: i32) -> u64 {
        match &self.values {
            Some(values) => values.partition_point(|&value| value <= ms) as u64,
            None => self.latency.count_at_most(ms),
        }
    }

    /// Errors per event; None without events.
    pub fn error_rate(&self) -> Option<f64> {
        (self.events > 0).then(|| self.errors as f64 / self.events as f64)
    }

    /// Whether quantiles are read from every latency rather than the sketch.
    pub fn is_exact(&self) -> bool {
        self.values.is_some()
    }
}

/// Which store answers a stretch of the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Source {
    Day,
    Hour,
    Minute,
    Raw,
}

/// A stretch of the range, answered by one source, inside one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tile {
    pub(super) source: Source,
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
    let mut reading = Reading::start(client, query).await?;
    let plan = reading.plan();
    for source in [Source::Day, Source::Hour, Source::Minute, Source::Raw] {
        let tiles = plan.of(source);
        if !tiles.is_empty() {
            reading.read(client, source, &tiles).await?;
        }
    }
    reading.read_pending(client, &plan.rollup_tiles()).await?;
    Ok(reading.answer())
}

/// A question cut into buckets and tiles.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    starts: Vec<i64>,
    tiles: Vec<Tile>,
}

impl Plan {
    pub(super) fn of(&self, source: Source) -> Vec<Tile> {
        self.tiles
            .iter()
            .copied()
            .filter(|tile| tile.source == source)
            .collect()
    }

    /// The tiles answered by compacted cells, which pending deltas add to.
    pub(super) fn rollup_tiles(&self) -> Vec<Tile> {
        self.tiles
            .iter()
            .copied()
            .filter(|tile| tile.source != Source::Raw)
            .collect()
    }
}

/// The ids of the services named; an unknown name matches nothing.
async fn service_ids(client: &Client, names: &[String]) -> crate::Result<Vec<i32>> {
    let rows = client
        .query(
            "SELECT service_id FROM services WHERE service_name = ANY($1)",
            &[&names],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

async fn service_names(client: &Client) -> crate::Result<FxHashMap<i32, String>> {
    Ok(client
        .query("SELECT service_id, service_name FROM services", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// The routes `only` leaves, with their services' ids when it names services too (0
/// where a service is unknown, which no cell has); None when `only` names no routes.
fn only_routes(query: &Query, names: &FxHashMap<i32, String>) -> Option<(Vec<i32>, Vec<String>)> {
    let route = query.by.iter().position(|&by| by == Dimension::Route)?;
    let service = query.by.iter().position(|&by| by == Dimension::Service);
    let ids: FxHashMap<&str, i32> = names
        .iter()
        .map(|(&id, name)| (name.as_str(), id))
        .collect();
    let pairs: BTreeSet<(i32, &String)> = query
        .only
        .as_ref()?
        .iter()
        .map(|key| {
            let id = service.map_or(0, |at| ids.get(key[at].as_str()).copied().unwrap_or(0));
            (id, &key[route])
        })
        .collect();
    Some(
        pairs
            .into_iter()
            .map(|(id, route)| (id, route.clone()))
            .unzip(),
    )
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
pub(super) struct Facts<'a> {
    pub(super) service_id: i32,
    pub(super) route: Option<&'a str>,
    pub(super) method: Option<&'a str>,
    pub(super) status: Option<i16>,
    /// For minute cells, which keep only the class.
    pub(super) class: i16,
    pub(super) level: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The facts of an hour-like cell's key, whose blanks are absent values.
    pub(super) fn of_cell(key: &'a HourKey) -> Facts<'a> {
        Facts::of_key(
            key.service_id,
            Some(&key.route),
            Some(&key.method),
            key.status,
            Some(&key.level),
        )
    }

    /// The facts of a grain's cell from a row whose columns from `first` on are
    /// `key_columns(grain)`, borrowed from the row; and the index of the next column.
    pub(super) fn of_row(
        grain: Grain,
        row: &'a tokio_postgres::Row,
        first: usize,
    ) -> (Facts<'a>, usize) {
        let (mut route, mut method, mut status, mut level) = (None, None, 0, None);
        let mut at = first + 2;
        for kept in grain.family.kept() {
            match kept {
                Kept::Route => route = Some(row.get::<_, &str>(at)),
                Kept::Method => method = Some(row.get::<_, &str>(at)),
                Kept::Status => status = row.get(at),
                Kept::Level => level = Some(row.get::<_, &str>(at)),
            }
            at += 1;
        }
        let facts = Facts::of_key(row.get(first + 1), route, method, status, level);
        (facts, at)
    }

    fn of_key(
        service_id: i32,
        route: Option<&'a str>,
        method: Option<&'a str>,
        status: i16,
        level: Option<&'a str>,
    ) -> Facts<'a> {
        let status = Some(status).filter(|&s| s != 0);
        Facts {
            service_id,
            route: route.filter(|r| !r.is_empty()),
            method: method.filter(|m| !m.is_empty()),
            status,
            class: status_class(status),
            level: level.filter(|l| !l.is_empty()),
        }
    }
}

/// The state of one read: what it filters on, and the series added up so far.
pub(super) struct Reading<'q> {
    pub(super) query: &'q Query,
    /// The services the filter and `only` leave; None for all.
    services: Option<Vec<i32>>,
    /// The routes `only` leaves, each with its service's id when `only` names services
    /// too (else 0); None for all.
    routes: Option<(Vec<i32>, Vec<String>)>,
    names: FxHashMap<i32, String>,
    family: Family,
    plan: Plan,
    series: BTreeMap<Vec<String>, Vec<Measures>>,
    latencies: Option<BTreeMap<Vec<String>, Vec<Vec<i32>>>>,
    raw_rows_read: bool,
    rollups_read: bool,
    /// The key of the group being added to, kept between cells so that finding an
    /// existing group allocates nothing.
    key: Vec<String>,
}

impl<'q> Reading<'q> {
    pub(super) async fn start(client: &Client, query: &'q Query) -> crate::Result<Reading<'q>> {
        let names = service_names(client).await?;
        let position = |dimension| query.by.iter().position(|&by| by == dimension);
        let only_labels = |dimension| {
            let position = position(dimension)?;
            let only = query.only.as_ref()?;
            let labels: BTreeSet<&String> = only.iter().map(|key| &key[position]).collect();
            Some(labels.into_iter().cloned().collect::<Vec<String>>())
        };
        let mut services = if query.filter.services.is_empty() {
            None
        } else {
            Some(service_ids(client, &query.filter.services).await?)
        };
        if let Some(wanted) = only_labels(Dimension::Service) {
            let ids: Vec<i32> = names
                .iter()
                .filter(|(id, name)| {
                    wanted.contains(name) && services.as_ref().is_none_or(|ids| ids.contains(id))
                })
                .map(|(&id, _)| id)
                .collect();
            services = Some(ids);
        }
        let (from, until) = (from_datetime(query.from), from_datetime(query.until));
        let (starts, tiles) = tiles(
            from,
            until,
            query.bucket,
            query.minutes_will_do(),
            query.is_exact(),
        );
        Ok(Reading {
            query,
            services,
            routes: only_routes(query, &names),
            names,
            family: query.family(),
            plan: Plan { starts, tiles },
            series: BTreeMap::new(),
            latencies: query.is_exact().then(BTreeMap::new),
            raw_rows_read: false,
            rollups_read: false,
            key: Vec::new(),
        })
    }

    pub(super) fn plan(&self) -> Plan {
        self.plan.clone()
    }

    /// The grain of cells that answers tiles of this source; None for minute tiles that
    /// need the status class or level, which only the minute grain keeps.
    pub(super) fn grain(&self, source: Source) -> Option<Grain> {
        let width = match source {
            Source::Day => Width::Day,
            Source::Hour => Width::Hour,
            Source::Minute if self.family == Family::Total => Width::Minute,
            Source::Minute | Source::Raw => return None,
        };
        Some(Grain::new(self.family, width))
    }

    pub(super) fn answer(self) -> Answer {
        Answer {
            buckets: self
                .plan
                .starts
                .iter()
                .map(|&start| to_datetime(start))
                .collect(),
            series: self.series,
            latencies: self.latencies,
            raw_rows_read: self.raw_rows_read,
            rollups_read: self.rollups_read,
        }
    }

    /// Whether the filters keep a cell or a row.
    pub(super) fn keeps(&self, facts: &Facts<'_>) -> bool {
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
                || filter
                    .statuses
                    .iter()
                    .any(|status| status.holds(facts.status, facts.class)))
            && (filter.levels.is_empty()
                || facts.level.is_some_and(|level| {
                    filter.levels.iter().any(|l| l.eq_ignore_ascii_case(level))
                }))
    }

    /// Writes into `key` (reusing its strings) the key of the group a cell or row
    /// belongs to.
    fn fill_key(&self, facts: &Facts<'_>, key: &mut Vec<String>) {
        use std::fmt::Write;
        key.resize_with(self.query.by.len(), String::new);
        for (label, dimension) in key.iter_mut().zip(&self.query.by) {
            label.clear();
            // Writing to a String cannot fail.
            let _ = match dimension {
                Dimension::Service => match self.names.get(&facts.service_id) {
                    Some(name) => write!(label, "{name}"),
                    None => write!(label, "#{}", facts.service_id),
                },
                Dimension::Route => write!(label, "{}", facts.route.unwrap_or("")),
                Dimension::Method => write!(label, "{}", facts.method.unwrap_or("")),
                Dimension::Status => match facts.status {
                    Some(status) => write!(label, "{status}"),
                    None => Ok(()),
                },
                Dimension::StatusClass => match facts.class {
                    0 => Ok(()),
                    class => write!(label, "{class}xx"),
                },
                Dimension::Level => write!(label, "{}", facts.level.unwrap_or("")),
            };
        }
    }

    /// Writes into `key` the key of the group a cell or row belongs to; false when the
    /// filters or `only` leave it out.
    pub(super) fn group_of(&self, facts: &Facts<'_>, key: &mut Vec<String>) -> bool {
        if !self.keeps(facts) {
            return false;
        }
        self.fill_key(facts, key);
        self.query
            .only
            .as_ref()
            .is_none_or(|only| only.contains(key))
    }

    /// The measures, in `bucket`, of the group a cell or row belongs to (with its
    /// latency kept, in an exact answer); None when the filters or `only` leave it out.
    fn group_cell(
        &mut self,
        bucket: usize,
        facts: &Facts<'_>,
        latency: Option<i32>,
    ) -> Option<&mut Measures> {
        let mut key = std::mem::take(&mut self.key);
        let kept = self.group_of(facts, &mut key);
        self.key = key;
        if !kept {
            return None;
        }
        let (key, buckets) = (&self.key, self.plan.starts.len());
        if let Some(latencies) = &mut self.latencies {
            if !latencies.contains_key(key) {
                latencies.insert(key.clone(), vec![Vec::new(); buckets]);
            }
            latencies.get_mut(key).expect("inserted above")[bucket].extend(latency);
        }
        if !self.series.contains_key(key) {
            self.series
                .insert(key.clone(), vec![Measures::default(); buckets]);
        }
        Some(&mut self.series.get_mut(key).expect("inserted above")[bucket])
    }

    fn add(&mut self, bucket: usize, facts: &Facts<'_>, measures: &Measures, latency: Option<i32>) {
        let with_latency = self.query.latency;
        if let Some(cell) = self.group_cell(bucket, facts, latency) {
            if with_latency {
                cell.merge(measures);
            } else {
                // The same answer whichever source a part came from.
                cell.events += measures.events;
                cell.errors += measures.errors;
            }
        }
    }

    /// Adds a stored cell whose measures are in the row's columns from `at`: events,
    /// errors, and the encoded sketch (NULL when the question needs no latencies).
    fn add_stored(
        &mut self,
        bucket: usize,
        facts: &Facts<'_>,
        row: &tokio_postgres::Row,
        at: usize,
    ) -> crate::Result<()> {
        if let Some(cell) = self.group_cell(bucket, facts, None) {
            cell.events += row.get::<_, i64>(at) as u64;
            cell.errors += row.get::<_, i64>(at + 1) as u64;
            if let Some(sketch) = row.get::<_, Option<&[u8]>>(at + 2) {
                cell.latency.merge_encoded(sketch)?;
            }
        }
        Ok(())
    }

    /// The rows of a grain's cells in the tiles' windows, with the services and routes
    /// the reading keeps, each with its tile: the key columns, then `measures`. With
    /// `over_time`, `measures` are aggregates, and each stretch of tiles gives one row
    /// per key (its time column the stretch's first cell's): the server adds up what
    /// the client would, and sends a row per series instead of one per cell.
    pub(super) async fn cell_rows(
        &self,
        client: &Client,
        grain: Grain,
        tiles: &[Tile],
        measures: &str,
        over_time: bool,
    ) -> crate::Result<Vec<(Tile, tokio_postgres::Row)>> {
        // A fine grain's cells are its route grain's details, keyed as the route cells.
        let stored_in = grain.stored_in();
        let table = if grain.family == Family::Fine {
            stored_in.detail_table()
        } else {
            stored_in.table()
        };
        let (time, columns) = (stored_in.time_column(), key_columns(stored_in));
        let mut columns: Vec<String> = columns.split(", ").map(|c| format!("c.{c}")).collect();
        if over_time {
            columns[0] = format!("min({})", columns[0]);
        }
        let mut sql = format!(
            "SELECT {}, {measures} FROM {table} c \
             WHERE c.{time} >= $1 AND c.{time} < $2 \
               AND ($3::integer[] IS NULL OR c.service_id = ANY($3))",
            columns.join(", ")
        );
        let grouping = over_time.then(|| format!(" GROUP BY {}", columns[1..].join(", ")));
        let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&self.services];
        if let Some((services, routes)) = self
            .routes
            .as_ref()
            .filter(|_| grain.family.keeps(Kept::Route))
        {
            // As (service, route) pairs: a route name recurs across services, and every
            // service × route combination of two lists would read most series, in a plan
            // the planner cannot estimate.
            if self.query.by.contains(&Dimension::Service) {
                sql.push_str(
                    " AND (c.service_id, c.route) IN \
                     (SELECT * FROM unnest($4::integer[], $5::text[]))",
                );
                parameters.extend([services as &(dyn ToSql + Sync), routes]);
            } else {
                sql.push_str(" AND c.route = ANY($4)");
                parameters.push(routes);
            }
        }
        sql.push_str(grouping.as_deref().unwrap_or(""));
        rows_of_tiles(client, &sql, &parameters, tiles, over_time).await
    }

    /// Adds the cells (or rows) of these tiles, all of one source.
    pub(super) async fn read(
        &mut self,
        client: &Client,
        source: Source,
        tiles: &[Tile],
    ) -> crate::Result<()> {
        match (source, self.grain(source)) {
            (Source::Raw, _) => self.read_rows(client, tiles).await,
            (_, None) => self.read_minutes(client, tiles).await,
            (_, Some(grain)) if grain.family == Family::Fine => {
                self.read_fine(client, grain, tiles).await
            }
            (_, Some(grain)) => {
                self.rollups_read = true;
                let latency = if self.query.latency {
                    "c.latency"
                } else {
                    "NULL::bytea"
                };
                let rows = self
                    .cell_rows(
                        client,
                        grain,
                        tiles,
                        &format!("c.events, c.errors, {latency}"),
                        false,
                    )
                    .await?;
                for (tile, row) in &rows {
                    let (facts, at) = Facts::of_row(grain, row, 0);
                    self.add_stored(tile.bucket, &facts, row, at)?;
                }
                Ok(())
            }
        }
    }

    /// Adds the fine cells of these tiles, unpacked from their route cells' details.
    async fn read_fine(
        &mut self,
        client: &Client,
        grain: Grain,
        tiles: &[Tile],
    ) -> crate::Result<()> {
        self.rollups_read = true;
        let rows = self
            .cell_rows(client, grain, tiles, "c.detail", false)
            .await?;
        let mut detail = Detail::default();
        for (tile, row) in &rows {
            let (route, at) = Facts::of_row(grain.stored_in(), row, 0);
            detail.clear();
            merge_detail(&mut detail, row.get(at))?;
            for (key, measures) in &detail {
                let facts = Facts::of_key(
                    route.service_id,
                    route.route,
                    Some(&key.method),
                    key.status,
                    Some(&key.level),
                );
                self.add(tile.bucket, &facts, measures, None);
            }
        }
        Ok(())
    }

    /// Adds the minute cells of these tiles (by status class and level), unpacked from
    /// the minute totals' details.
    async fn read_minutes(&mut self, client: &Client, tiles: &[Tile]) -> crate::Result<()> {
        self.rollups_read = true;
        let sql = "SELECT c.minute, c.service_id, c.detail \
                   FROM logctl_rollup_total_minute_detail c \
                   WHERE c.minute >= $1 AND c.minute < $2 \
                     AND ($3::integer[] IS NULL OR c.service_id = ANY($3))";
        let rows = rows_of_tiles(client, sql, &[&self.services], tiles, false).await?;
        let mut detail = Detail::default();
        for (tile, row) in &rows {
            detail.clear();
            merge_detail(&mut detail, row.get(2))?;
            for (key, measures) in &detail {
                let facts = Facts {
                    service_id: row.get(1),
                    route: None,
                    method: None,
                    status: None,
                    class: key.status,
                    level: Some(&*key.level).filter(|l| !l.is_empty()),
                };
                self.add(tile.bucket, &facts, measures, None);
            }
        }
        Ok(())
    }

    /// Adds the cells of the pending deltas that fall in the rollup tiles.
    pub(super) async fn read_pending(
        &mut self,
        client: &Client,
        tiles: &[Tile],
    ) -> crate::Result<()> {
        if tiles.is_empty() {
            return Ok(());
        }
        let from = tiles.iter().map(|t| t.start).min().unwrap_or(0);
        let until = tiles.iter().map(|t| t.end).max().unwrap_or(0);
        let rows = client
            .query(
                "SELECT service_id, cells FROM logctl_rollup_deltas \
                 WHERE last_minute >= $1 AND first_minute < $2 \
                   AND ($3::integer[] IS NULL OR service_id = ANY($3))",
                &[&to_datetime(from), &to_datetime(until), &self.services],
            )
            .await?;
        let mut pending = Cells::default();
        for row in &rows {
            pending.merge_delta(row.get(0), row.get(1))?;
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
                            self.add(tile.bucket, &facts, measures, None);
                        }
                    }
                }
                _ => {
                    for (key, measures) in &pending.hours {
                        if (tile.start..tile.end).contains(&key.start) {
                            self.add(tile.bucket, &Facts::of_cell(key), measures, None);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the raw rows of these tiles, streamed: one query per stretch of adjacent
    /// tiles, each row placed in its tile by its time.
    pub(super) async fn read_rows(&mut self, client: &Client, tiles: &[Tile]) -> crate::Result<()> {
        self.raw_rows_read = true;
        let (paths, values): (Vec<String>, Vec<String>) = self
            .query
            .filter
            .metadata
            .iter()
            .map(|(path, value)| (format!("{{{}}}", path.join(",")), value.clone()))
            .unzip();
        // One plain range per stretch (see `stretches`), and only the clauses a question
        // needs: a route list or the metadata anti-join, which the planner cannot
        // estimate either, would tip it into scanning the whole table. `only`'s routes
        // are left to `group_of`.
        let mut sql = String::from(
            "SELECT l.created_at, l.service_id, l.route, l.method, l.status, l.level, \
                    l.latency_ms \
             FROM log_events l WHERE l.created_at >= $1 AND l.created_at < $2",
        );
        let services = self.services.clone();
        let mut tail: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(services) = &services {
            tail.push(services);
            sql.push_str(" AND l.service_id = ANY($3)");
        }
        if !paths.is_empty() {
            tail.extend([&paths as &(dyn ToSql + Sync), &values]);
            let (p, v) = (tail.len() + 1, tail.len() + 2);
            sql.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM unnest(${p}::text[], ${v}::text[]) AS m(p, v) \
                 WHERE (l.metadata #>> m.p::text[]) IS DISTINCT FROM m.v)"
            ));
        }
        let statement = client.prepare(&sql).await?;
        for stretch in stretches(tiles) {
            let (from, until) = bounds(stretch);
            let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&from, &until];
            parameters.extend(tail.iter().copied());
            let rows = client.query_raw(&statement, parameters).await?;
            futures_util::pin_mut!(rows);
            while let Some(row) = rows.try_next().await? {
                let Some(tile) = tile_at(stretch, row.get(0)) else {
                    continue;
                };
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
                let latency: Option<i32> = row.get(6);
                let mut measures = Measures {
                    events: 1,
                    errors: u64::from(is_error(status, level)),
                    latency: Sketch::new(),
                };
                if let Some(latency) = latency {
                    measures.latency.add(latency);
                }
                self.add(tile.bucket, &facts, &measures, latency);
            }
        }
        Ok(())
    }
}

/// The runs of adjacent tiles, each read with one plain time range: the planner
/// estimates a range of constants well and reads it through the time index, where a
/// join to a list of windows, which it cannot estimate, tips it into scanning the whole
/// table.
fn stretches(tiles: &[Tile]) -> impl Iterator<Item = &[Tile]> {
    tiles.chunk_by(|a, b| b.start == a.end)
}

/// The time range from the first tile's start to the last one's end.
fn bounds(stretch: &[Tile]) -> (DateTime<Utc>, DateTime<Utc>) {
    let last = stretch.len() - 1;
    (
        to_datetime(stretch[0].start),
        to_datetime(stretch[last].end),
    )
}

/// The tile (of tiles in time order) that holds a time, if one does.
fn tile_at(tiles: &[Tile], at: DateTime<Utc>) -> Option<Tile> {
    let at = from_datetime(at);
    let index = tiles.partition_point(|tile| tile.end <= at);
    tiles.get(index).copied().filter(|tile| tile.start <= at)
}

/// Stretches of cells read one query each, beyond which the cells are read in one
/// query over all of them, the ones between the tiles left out: a bucket width that
/// does not divide an hour alternates hour and minute tiles, a stretch each.
const MOST_STRETCHES: usize = 16;

/// The rows of `sql` (whose first column is a time and whose $1 and $2 are a range of
/// times, followed by `tail`) in the tiles, each with its tile. Rows that add up cells
/// (`summed`) cannot be told apart by time, so their stretches are always read apart.
async fn rows_of_tiles(
    client: &Client,
    sql: &str,
    tail: &[&(dyn ToSql + Sync)],
    tiles: &[Tile],
    summed: bool,
) -> crate::Result<Vec<(Tile, tokio_postgres::Row)>> {
    let statement = client.prepare(sql).await?;
    let ranges: Vec<&[Tile]> = if !summed && stretches(tiles).count() > MOST_STRETCHES {
        vec![tiles]
    } else {
        stretches(tiles).collect()
    };
    let mut rows = Vec::new();
    for range in ranges {
        let (from, until) = bounds(range);
        let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&from, &until];
        parameters.extend(tail.iter().copied());
        for row in client.query(&statement, &parameters).await? {
            if let Some(tile) = tile_at(range, row.get(0)) {
                rows.push((tile, row));
            }
        }
    }
    Ok(rows)
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
