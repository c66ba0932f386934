//! Rollup cells: what the reports read instead of raw rows. A cell counts the events of
//! one time bucket and one combination of dimensions (events, errors, and a latency
//! sketch that holds the latency count, sum, min and max exactly); cells merge by
//! addition, so batches, loaders and compaction steps can each add theirs in any order.
//!
//! Two kinds of cells are counted from the events:
//!
//! - **minute** cells, by service, status class (2xx, 5xx, ...) and level: timelines in
//!   small buckets, checks over the last minutes;
//! - **hour** cells (and day cells, their merge), by service, route, method, exact status
//!   and level: percentiles per route, top-N, errors over longer windows.
//!
//! A batch's cells are written as one *delta* per service, in the batch's own
//! transaction: `BatchCells` counts and encodes them compactly (`Cells::deltas` too, for
//! cells that benchmarks build) and `Cells::merge_delta` adds them.
//!
//! Compaction stores them in grains (see `Grain`). The finest cells are not rows of their
//! own: a row costs about 100 bytes of header, key and index entry, more than a cell's
//! counts and sketch, and at tens of events per cell that made the rollups several
//! percent of the raw table. They are packed instead into one *detail* per coarser cell
//! (`encode_detail`), in a table beside that cell's: the fine hour and day cells of a
//! route with its route cell, the minute cells of a service with its minute total.

use std::borrow::Cow;
use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::sketch::Sketch;

/// PostgreSQL's microseconds in a minute, an hour and a day.
pub const MINUTE: i64 = 60_000_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// The fields of one stored event that the rollups count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'t> {
    /// PostgreSQL microseconds (since 2000-01-01 UTC).
    pub created_at: i64,
    pub service_id: i32,
    pub level: Option<&'t str>,
    pub method: Option<&'t str>,
    pub status: Option<i16>,
    pub latency_ms: Option<i32>,
    pub route: Option<&'t str>,
}

/// Whether an event counts as an error: a server error, or logged at error level or above.
pub fn is_error(status: Option<i16>, level: Option<&str>) -> bool {
    status.is_some_and(|status| status >= 500)
        || level.is_some_and(|level| matches!(level, "error" | "fatal" | "critical" | "panic"))
}

/// 2 for 2xx and so on; 0 for an event without a status.
pub fn status_class(status: Option<i16>) -> i16 {
    status.map_or(0, |status| status / 100)
}

/// The start of the bucket of width `width` (microseconds) that holds `micros`.
pub fn bucket_of(micros: i64, width: i64) -> i64 {
    micros.div_euclid(width) * width
}

/// The key of a minute cell. Absent values are 0 and "" (the tables' primary keys).
/// Its strings are shared (the cells of a delta, and a cell's keys in every grain, hold
/// one copy of each), or borrowed from a batch's tuples (`S = &str`) while the batch
/// counts its cells, which then allocates nothing per event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MinuteKey<S = Arc<str>> {
    pub minute: i64,
    pub service_id: i32,
    pub status_class: i16,
    pub level: S,
}

impl MinuteKey {
    /// The key of the minute total this minute cell counts towards.
    pub fn total_cell(&self) -> HourKey {
        HourKey {
            start: self.minute,
            service_id: self.service_id,
            route: "".into(),
            method: "".into(),
            status: 0,
            level: "".into(),
        }
    }
}

/// The key of an hour (or day) cell. Absent values are 0 and "". Its strings are owned
/// or borrowed, as a minute cell's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HourKey<S = Arc<str>> {
    pub start: i64,
    pub service_id: i32,
    pub route: S,
    pub method: S,
    pub status: i16,
    pub level: S,
}

/// Which dimensions the key of an hour-like grain keeps beside the service: everything
/// (`Fine`), what questions about services, statuses, methods and levels need
/// (`Service`), or the route alone (`Route`). The coarser families hold a fraction of
/// the fine cells, which is what lets a report over a day or a month answer in
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Fine,
    Service,
    Route,
    /// Each service's totals, which is all that most questions need.
    Total,
}

/// The bucket width of an hour-like grain. Only the totals have a minute width: the
/// minute cells of the deltas keep no route, method or status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    Minute,
    Hour,
    Day,
}

/// A dimension of an event that hour-like grains may keep, in the order of their
/// tables' columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kept {
    Route,
    Method,
    Status,
    Level,
}

impl Kept {
    pub fn column(self) -> &'static str {
        match self {
            Kept::Route => "route",
            Kept::Method => "method",
            Kept::Status => "status",
            Kept::Level => "level",
        }
    }

    pub fn sql_type(self) -> &'static str {
        match self {
            Kept::Status => "smallint",
            _ => "text",
        }
    }
}

impl Family {
    pub fn kept(self) -> &'static [Kept] {
        match self {
            Family::Fine => &[Kept::Route, Kept::Method, Kept::Status, Kept::Level],
            Family::Service => &[Kept::Method, Kept::Status, Kept::Level],
            Family::Route => &[Kept::Route],
            Family::Total => &[],
        }
    }

    pub fn keeps(self, dimension: Kept) -> bool {
        self.kept().contains(&dimension)
    }
}

/// The key of a cell packed into a coarser cell's detail, beside that cell's own key:
/// the method, status and level of a route cell's fine cells, or the status class (in
/// `status`) and level of a minute total's minute cells.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DetailKey {
    pub method: Arc<str>,
    pub status: i16,
    pub level: Arc<str>,
}

/// A coarser cell's finer cells, by their detail keys.
pub type Detail = FxHashMap<DetailKey, Measures>;

/// The version byte of the detail encoding.
const DETAIL_VERSION: u8 = 1;

/// A version byte, the number of cells, then each cell (method, status, level, measures)
/// in key order; the numbers and strings as in a delta.
pub fn encode_detail(detail: &Detail) -> Vec<u8> {
    let mut cells: Vec<(&DetailKey, &Measures)> = detail.iter().collect();
    cells.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = vec![DETAIL_VERSION];
    put(&mut out, cells.len() as u64);
    for (key, measures) in cells {
        put_text(&mut out, &key.method);
        put(&mut out, key.status as u16 as u64);
        put_text(&mut out, &key.level);
        put_measures(&mut out, measures);
    }
    out
}

/// Adds the cells of an encoded detail to `detail`. A corrupt detail is an error.
pub fn merge_detail(detail: &mut Detail, bytes: &[u8]) -> crate::Result<()> {
    let corrupt = |what: &str| corrupt("cell's detail", what);
    let mut reader = Reader { bytes, at: 0 };
    if reader.byte().ok_or_else(|| corrupt("empty"))? != DETAIL_VERSION {
        return Err(corrupt("unknown version"));
    }
    let truncated = || corrupt("cut short");
    for _ in 0..reader.number().ok_or_else(truncated)? {
        let method = reader.text().ok_or_else(truncated)?;
        let status = reader.number().ok_or_else(truncated)? as u16 as i16;
        let level = reader.text().ok_or_else(truncated)?;
        let cell = detail
            .entry(DetailKey {
                method,
                status,
                level,
            })
            .or_default();
        reader.merge_measures(cell, false)?.ok_or_else(truncated)?;
    }
    if reader.at != bytes.len() {
        return Err(corrupt("bytes after the last cell"));
    }
    Ok(())
}

/// Cells of a grain that packs detail, each with its detail.
pub type Detailed = FxHashMap<HourKey, Detail>;

/// A stored hour-like grain: a family of keys at a bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grain {
    pub family: Family,
    pub width: Width,
}

impl Grain {
    /// The grains stored as rows, each in a table of its own.
    pub const ALL: [Grain; 7] = [
        Grain::new(Family::Service, Width::Hour),
        Grain::new(Family::Service, Width::Day),
        Grain::new(Family::Route, Width::Hour),
        Grain::new(Family::Route, Width::Day),
        Grain::new(Family::Total, Width::Minute),
        Grain::new(Family::Total, Width::Hour),
        Grain::new(Family::Total, Width::Day),
    ];

    pub const fn new(family: Family, width: Width) -> Grain {
        Grain { family, width }
    }

    /// The fine grains, stored as the detail of the route grains' cells.
    pub const FINE: [Grain; 2] = [
        Grain::new(Family::Fine, Width::Hour),
        Grain::new(Family::Fine, Width::Day),
    ];

    /// The grain whose keys hold this grain's cells: the route grain for the fine cells,
    /// which are its details; the grain itself for the others.
    pub fn stored_in(self) -> Grain {
        match self.family {
            Family::Fine => Grain::new(Family::Route, self.width),
            _ => self,
        }
    }

    /// Whether the finer cells of each of this grain's cells are kept, as its detail:
    /// the route grains' (their fine cells) and the minute totals' (their minute cells).
    pub fn packs_detail(self) -> bool {
        self.family == Family::Route || self.width == Width::Minute
    }

    /// The table of the details of a grain that packs them, keyed as its own table.
    pub fn detail_table(self) -> &'static str {
        match (self.family, self.width) {
            (Family::Route, Width::Hour) => "logctl_rollup_route_hour_detail",
            (Family::Route, Width::Day) => "logctl_rollup_route_day_detail",
            (Family::Total, Width::Minute) => "logctl_rollup_total_minute_detail",
            _ => unreachable!("only the route grains and the minute totals pack details"),
        }
    }

    /// The table of a grain stored as rows (see `stored_in`).
    pub fn table(self) -> &'static str {
        match (self.family, self.width) {
            (Family::Service, Width::Hour) => "logctl_rollup_service_hour",
            (Family::Service, Width::Day) => "logctl_rollup_service_day",
            (Family::Route, Width::Hour) => "logctl_rollup_route_hour",
            (Family::Route, Width::Day) => "logctl_rollup_route_day",
            (Family::Total, Width::Minute) => "logctl_rollup_total_minute",
            (Family::Total, Width::Hour) => "logctl_rollup_total_hour",
            (Family::Total, Width::Day) => "logctl_rollup_total_day",
            (Family::Fine, _) => unreachable!("fine cells are the route cells' detail"),
            (_, Width::Minute) => unreachable!("only the totals have a minute width"),
        }
    }

    /// The name of the bucket's column, which is also how messages name the width.
    pub fn time_column(self) -> &'static str {
        match self.width {
            Width::Minute => "minute",
            Width::Hour => "hour",
            Width::Day => "day",
        }
    }

    /// The bucket width in microseconds.
    pub fn micros(self) -> i64 {
        match self.width {
            Width::Minute => MINUTE,
            Width::Hour => HOUR,
            Width::Day => DAY,
        }
    }

    /// The key of the cell of this grain that counts the events of an hour cell: its
    /// bucket, and blanks for the dimensions the grain does not keep.
    pub fn cell_of(self, key: &HourKey) -> HourKey {
        let family = self.family;
        HourKey {
            start: bucket_of(key.start, self.micros()),
            service_id: key.service_id,
            route: if family.keeps(Kept::Route) {
                key.route.clone()
            } else {
                "".into()
            },
            method: if family.keeps(Kept::Method) {
                key.method.clone()
            } else {
                "".into()
            },
            status: if family.keeps(Kept::Status) {
                key.status
            } else {
                0
            },
            level: if family.keeps(Kept::Level) {
                key.level.clone()
            } else {
                "".into()
            },
        }
    }

    /// The detail of each of this grain's cells (see `packs_detail`): the minute cells
    /// of a minute total, the fine cells of a route cell.
    pub fn details_of(self, cells: &Cells) -> Detailed {
        let mut details = Detailed::default();
        if self.width == Width::Minute {
            for (key, measures) in &cells.minutes {
                let detail = DetailKey {
                    method: "".into(),
                    status: key.status_class,
                    level: key.level.clone(),
                };
                add_cell(
                    details.entry(key.total_cell()).or_default(),
                    detail,
                    measures,
                );
            }
        } else {
            for (key, measures) in &cells.hours {
                let detail = DetailKey {
                    method: key.method.clone(),
                    status: key.status,
                    level: key.level.clone(),
                };
                add_cell(
                    details.entry(self.cell_of(key)).or_default(),
                    detail,
                    measures,
                );
            }
        }
        details
    }

    /// The details of this grain's cells from those of a grain of its family at a finer
    /// width (a route day's fine cells from its route hours'), which holds fewer cells to
    /// go through than the fine cells themselves.
    pub fn details_from(self, finer: &Detailed) -> Detailed {
        let mut details = Detailed::default();
        for (key, detail) in finer {
            let into = details.entry(self.cell_of(key)).or_default();
            for (cell, measures) in detail {
                match into.get_mut(cell) {
                    Some(into) => into.merge(measures),
                    None => {
                        into.insert(cell.clone(), measures.clone());
                    }
                }
            }
        }
        details
    }

    /// Cells summed into this grain's cells: the minute cells for a minute width, else
    /// the hour cells, which are the fine hour grain's own cells as they are.
    pub fn cells_of(self, cells: &Cells) -> Cow<'_, FxHashMap<HourKey, Measures>> {
        if self == Grain::new(Family::Fine, Width::Hour) {
            return Cow::Borrowed(&cells.hours);
        }
        if self.width != Width::Minute {
            return Cow::Owned(self.cells_from(&cells.hours));
        }
        let mut grain: FxHashMap<HourKey, Measures> = FxHashMap::default();
        for (key, measures) in &cells.minutes {
            add_cell(&mut grain, key.total_cell(), measures);
        }
        Cow::Owned(grain)
    }

    /// This grain's cells summed from the cells of a finer hour-like grain, one that
    /// keeps every dimension this one does: the fine cells, or a coarser grain's cells
    /// (a service's day from its hours) to go through fewer of them.
    pub fn cells_from(self, finer: &FxHashMap<HourKey, Measures>) -> FxHashMap<HourKey, Measures> {
        let mut grain = FxHashMap::default();
        for (key, measures) in finer {
            add_cell(&mut grain, self.cell_of(key), measures);
        }
        grain
    }
}

/// Adds `measures` to the cell of `key`, cloning them only for a new cell: the others
/// merge them without building a cell first.
fn add_cell<K: Hash + Eq>(cells: &mut FxHashMap<K, Measures>, key: K, measures: &Measures) {
    match cells.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut cell) => cell.get_mut().merge(measures),
        std::collections::hash_map::Entry::Vacant(cell) => {
            cell.insert(measures.clone());
        }
    }
}

/// What a cell counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measures {
    pub events: u64,
    pub errors: u64,
    /// The latencies of the events that have one.
    pub latency: Sketch,
}

impl Measures {
    fn add(&mut self, error: bool, latency_ms: Option<i32>) {
        self.events += 1;
        self.errors += u64::from(error);
        if let Some(latency) = latency_ms {
            self.latency.add(latency);
        }
    }

    pub fn merge(&mut self, other: &Measures) {
        self.events = self.events.saturating_add(other.events);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.merge(&other.latency);
    }
}

/// The cells of some set of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cells {
    pub minutes: FxHashMap<MinuteKey, Measures>,
    pub hours: FxHashMap<HourKey, Measures>,
}

impl Cells {
    pub fn add(&mut self, row: &Row<'_>) {
        let error = is_error(row.status, row.level);
        let (minute, hour) = keys_of(row);
        let (minute, hour) = (
            minute.map(|&text| text.into()),
            hour.map(|&text| text.into()),
        );
        self.minutes
            .entry(minute)
            .or_default()
            .add(error, row.latency_ms);
        self.hours
            .entry(hour)
            .or_default()
            .add(error, row.latency_ms);
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// One delta per service, its cells' latencies written as sketches.
    pub fn deltas(&self) -> Vec<Delta> {
        let mut texts = Texts::default();
        let minutes = self
            .minutes
            .iter()
            .map(|(key, measures)| (key.map(|text| texts.id(text)), measures))
            .collect();
        let hours = self
            .hours
            .iter()
            .map(|(key, measures)| (key.map(|text| texts.id(text)), measures))
            .collect();
        deltas_of(minutes, hours, &texts.listed)
    }
}

/// The minute and hour keys of an event, borrowing its strings.
fn keys_of<'t>(row: &Row<'t>) -> (MinuteKey<&'t str>, HourKey<&'t str>) {
    let level = row.level.unwrap_or("");
    (
        MinuteKey {
            minute: bucket_of(row.created_at, MINUTE),
            service_id: row.service_id,
            status_class: status_class(row.status),
            level,
        },
        HourKey {
            start: bucket_of(row.created_at, HOUR),
            service_id: row.service_id,
            route: row.route.unwrap_or(""),
            method: row.method.unwrap_or(""),
            status: row.status.unwrap_or(0),
            level,
        },
    )
}

impl<S> MinuteKey<S> {
    /// The same key with its string given as `text` names it.
    fn map<'k, T>(&'k self, mut text: impl FnMut(&'k S) -> T) -> MinuteKey<T> {
        MinuteKey {
            minute: self.minute,
            service_id: self.service_id,
            status_class: self.status_class,
            level: text(&self.level),
        }
    }
}

impl<S> HourKey<S> {
    /// The same key with its strings given as `text` names them.
    fn map<'k, T>(&'k self, mut text: impl FnMut(&'k S) -> T) -> HourKey<T> {
        HourKey {
            start: self.start,
            service_id: self.service_id,
            route: text(&self.route),
            method: text(&self.method),
            status: self.status,
            level: text(&self.level),
        }
    }
}

/// A batch's cells while its events are counted: keys naming each string by its index
/// among the batch's strings (borrowed from its tuples), and each cell's latencies kept as
/// plain values, so that counting an event allocates nothing, compares no string twice,
/// and a delta carries a cell of a few events as those few numbers, not as a sketch.
#[derive(Debug, Default)]
pub struct BatchCells<'t> {
    texts: Texts<'t>,
    minutes: FxHashMap<MinuteKey<u32>, u32>,
    hours: FxHashMap<HourKey<u32>, u32>,
    /// Events and errors of each cell, by the index the maps give it.
    counts: Vec<(u64, u64)>,
    /// (cell index, latency) of every event that has a latency, as `cell << 32 | latency`
    /// so that one sort groups them by cell in ascending order.
    latencies: Vec<u64>,
}

impl<'t> BatchCells<'t> {
    pub fn add(&mut self, row: &Row<'t>) {
        let error = is_error(row.status, row.level);
        let (minute, hour) = keys_of(row);
        let hour = hour.map(|&text| self.texts.id(text));
        // The minute key's one string is the level, which the hour key has named.
        let minute = minute.map(|_| hour.level);
        let next = self.counts.len() as u32;
        let minute = *self.minutes.entry(minute).or_insert(next);
        let next = next + u32::from(minute == next);
        let hour = *self.hours.entry(hour).or_insert(next);
        self.counts
            .resize(next as usize + usize::from(hour == next), (0, 0));
        for cell in [minute, hour] {
            let (events, errors) = &mut self.counts[cell as usize];
            *events += 1;
            *errors += u64::from(error);
            if let Some(latency) = row.latency_ms {
                // A negative latency counts as 0, as in `Sketch::add`.
                self.latencies
                    .push(u64::from(cell) << 32 | u64::from(latency.max(0) as u32));
            }
        }
    }

    /// One delta per service.
    pub fn deltas(mut self) -> Vec<Delta> {
        self.latencies.sort_unstable();
        let mut ranges = vec![(0, 0); self.counts.len()];
        for (cell, values) in
            self.latencies
                .chunk_by(|a, b| a >> 32 == b >> 32)
                .scan(0, |start, values| {
                    let range = (*start, *start + values.len());
                    *start = range.1;
                    Some((values[0] >> 32, range))
                })
        {
            ranges[cell as usize] = values;
        }
        let tallied = |cell: u32| {
            let (events, errors) = self.counts[cell as usize];
            let (start, end) = ranges[cell as usize];
            Tallied {
                events,
                errors,
                latencies: &self.latencies[start..end],
            }
        };
        deltas_of(
            self.minutes
                .iter()
                .map(|(key, &cell)| (key.clone(), tallied(cell)))
                .collect(),
            self.hours
                .iter()
                .map(|(key, &cell)| (key.clone(), tallied(cell)))
                .collect(),
            &self.texts.listed,
        )
    }
}

/// A batch's cell as its delta writes it.
struct Tallied<'b> {
    events: u64,
    errors: u64,
    /// `cell << 32 | latency`, ascending.
    latencies: &'b [u64],
}

/// A cell holding up to this many latencies carries them in its delta as values; one
/// holding more, as a sketch. A few values take fewer bytes than a sketch's header and
/// buckets, and are cheaper to write; many take more than the buckets they fall into.
const LATENCY_VALUES_AT_MOST: usize = 64;

/// How a delta writes a cell's measures: events, errors, then its latencies.
trait DeltaMeasures {
    fn put(&self, out: &mut Vec<u8>);
}

impl DeltaMeasures for &Measures {
    fn put(&self, out: &mut Vec<u8>) {
        put(out, self.events);
        put(out, self.errors);
        put(out, 0);
        put_sketch(out, &self.latency);
    }
}

impl DeltaMeasures for Tallied<'_> {
    fn put(&self, out: &mut Vec<u8>) {
        put(out, self.events);
        put(out, self.errors);
        let values = self.latencies.iter().map(|&value| value as u32);
        if self.latencies.len() > LATENCY_VALUES_AT_MOST {
            put(out, 0);
            put_sketch(out, &values.map(|value| value as i32).collect());
            return;
        }
        put(out, self.latencies.len() as u64 + 1);
        let mut previous = 0;
        for value in values {
            put(out, u64::from(value - previous));
            previous = value;
        }
    }
}

/// Groups cells into one delta per service. A service's deltas are keyed by its minute
/// cells, as its events give it both kinds; hour cells of a service without minute cells
/// (only merged bytes could hold such) are left out, never given to another service.
fn deltas_of<M: DeltaMeasures>(
    mut minutes: Vec<(MinuteKey<u32>, M)>,
    mut hours: Vec<(HourKey<u32>, M)>,
    texts: &[&str],
) -> Vec<Delta> {
    minutes.sort_unstable_by(|a, b| (a.0.service_id, &a.0).cmp(&(b.0.service_id, &b.0)));
    hours.sort_unstable_by(|a, b| (a.0.service_id, &a.0).cmp(&(b.0.service_id, &b.0)));
    let mut renumbered = vec![u32::MAX; texts.len()];
    let mut hour_groups = hours
        .chunk_by(|a, b| a.0.service_id == b.0.service_id)
        .peekable();
    minutes
        .chunk_by(|a, b| a.0.service_id == b.0.service_id)
        .map(|minutes| {
            let service_id = minutes[0].0.service_id;
            while hour_groups
                .next_if(|group| group[0].0.service_id < service_id)
                .is_some()
            {}
            let hours = hour_groups
                .next_if(|group| group[0].0.service_id == service_id)
                .unwrap_or_default();
            let first_minute = minutes[0].0.minute;
            let last_minute = minutes[minutes.len() - 1].0.minute;
            Delta {
                service_id,
                first_minute,
                last_minute,
                cells: encode_delta(first_minute, minutes, hours, texts, &mut renumbered),
            }
        })
        .collect()
}

/// One service's cells of one batch, as a row of `logctl_rollup_deltas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub service_id: i32,
    pub first_minute: i64,
    pub last_minute: i64,
    pub cells: Vec<u8>,
}

/// The version byte of the delta encoding. Version 1 (which an older logctl may have
/// left pending) wrote each string in place and every latency as a sketch.
const DELTA_VERSION: u8 = 2;

/// A version byte, the first minute, the strings the cells name (each length-prefixed,
/// behind their count: routes repeat in many cells), then the minute cells (minutes
/// after the first, status class, level, measures) and the hour cells (hours after the
/// first minute's hour, route, method, status, level, measures), each list behind its
/// length. Numbers are LEB128 varints, strings are indexes into the list of strings.
/// Measures are events, errors and the latencies: either 1 + their count, then the
/// values ascending, each after the first as the difference from the one before; or 0,
/// then a sketch's encoding behind its length.
fn encode_delta<M: DeltaMeasures>(
    first_minute: i64,
    minutes: &[(MinuteKey<u32>, M)],
    hours: &[(HourKey<u32>, M)],
    texts: &[&str],
    renumbered: &mut [u32],
) -> Vec<u8> {
    // A delta lists the strings its own cells name, each once: its keys' indexes into
    // `texts` are renumbered in the order they first appear. `renumbered` (u32::MAX for
    // a string not listed yet) is left as it came, so that the deltas of a batch with
    // many services and strings share it.
    let mut listed: Vec<u32> = Vec::new();
    let mut index = |id: u32| {
        let slot = &mut renumbered[id as usize];
        if *slot == u32::MAX {
            *slot = listed.len() as u32;
            listed.push(id);
        }
        u64::from(*slot)
    };
    let minute_levels: Vec<u64> = minutes.iter().map(|(key, _)| index(key.level)).collect();
    let hour_strings: Vec<[u64; 3]> = hours
        .iter()
        .map(|(key, _)| [key.route, key.method, key.level].map(&mut index))
        .collect();
    let mut out = vec![DELTA_VERSION];
    put_signed(&mut out, first_minute);
    put(&mut out, listed.len() as u64);
    for &id in &listed {
        put_text(&mut out, texts[id as usize]);
        renumbered[id as usize] = u32::MAX;
    }
    put(&mut out, minutes.len() as u64);
    for ((key, measures), level) in minutes.iter().zip(minute_levels) {
        put(&mut out, ((key.minute - first_minute) / MINUTE) as u64);
        put(&mut out, key.status_class as u64);
        put(&mut out, level);
        measures.put(&mut out);
    }
    let first_hour = bucket_of(first_minute, HOUR);
    put(&mut out, hours.len() as u64);
    for ((key, measures), [route, method, level]) in hours.iter().zip(hour_strings) {
        put(&mut out, ((key.start - first_hour) / HOUR) as u64);
        put(&mut out, route);
        put(&mut out, method);
        put(&mut out, key.status as u16 as u64);
        put(&mut out, level);
        measures.put(&mut out);
    }
    out
}

/// Strings, each listed once, by the index its first appearance gives it.
#[derive(Debug, Default)]
struct Texts<'t> {
    ids: FxHashMap<&'t str, u32>,
    listed: Vec<&'t str>,
}

impl<'t> Texts<'t> {
    fn id(&mut self, text: &'t str) -> u32 {
        let next = self.listed.len() as u32;
        *self.ids.entry(text).or_insert_with(|| {
            self.listed.push(text);
            next
        })
    }
}

impl Cells {
    /// Adds the cells of one delta of `service_id` (as [`Cells::deltas`] or
    /// [`BatchCells::deltas`] encoded them, or version 1): each is merged into this set's
    /// cell of its key as it is read, sketch bytes included, so that a compaction or a
    /// reader of many deltas builds no cell twice. A corrupt delta is an error and leaves
    /// these cells partly merged.
    pub fn merge_delta(&mut self, service_id: i32, bytes: &[u8]) -> crate::Result<()> {
        let corrupt = |what: &str| corrupt("delta", what);
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.byte().ok_or_else(|| corrupt("empty"))?;
        if version > DELTA_VERSION {
            return Err(crate::Error::Failed(format!(
                "a rollup delta is in a format this logctl cannot read (version {version}; it \
                 reads up to {DELTA_VERSION}); a newer logctl wrote it: upgrade this one"
            )));
        }
        if version == 0 {
            return Err(corrupt("unknown version"));
        }
        let truncated = || corrupt("cut short");
        let first_minute = reader.signed().ok_or_else(truncated)?;
        let mut strings = Vec::new();
        if version > 1 {
            for _ in 0..reader.number().ok_or_else(truncated)? {
                strings.push(reader.text().ok_or_else(truncated)?);
            }
        }
        let text = |reader: &mut Reader| -> crate::Result<Arc<str>> {
            if version == 1 {
                return reader.text().ok_or_else(truncated);
            }
            let index = reader.number().ok_or_else(truncated)?;
            usize::try_from(index)
                .ok()
                .and_then(|index| strings.get(index))
                .cloned()
                .ok_or_else(|| corrupt("a string out of range"))
        };
        for _ in 0..reader.number().ok_or_else(truncated)? {
            let minute = reader
                .bucket_after(first_minute, MINUTE)
                .ok_or_else(|| corrupt("a minute out of range"))?;
            let status_class = reader.number().ok_or_else(truncated)? as i16;
            let level = text(&mut reader)?;
            let cell = self
                .minutes
                .entry(MinuteKey {
                    minute,
                    service_id,
                    status_class,
                    level,
                })
                .or_default();
            reader
                .merge_measures(cell, version > 1)?
                .ok_or_else(truncated)?;
        }
        let first_hour = first_minute
            .checked_sub(first_minute.rem_euclid(HOUR))
            .ok_or_else(|| corrupt("a first minute out of range"))?;
        for _ in 0..reader.number().ok_or_else(truncated)? {
            let start = reader
                .bucket_after(first_hour, HOUR)
                .ok_or_else(|| corrupt("an hour out of range"))?;
            let route = text(&mut reader)?;
            let method = text(&mut reader)?;
            let status = reader.number().ok_or_else(truncated)? as u16 as i16;
            let level = text(&mut reader)?;
            let cell = self
                .hours
                .entry(HourKey {
                    start,
                    service_id,
                    route,
                    method,
                    status,
                    level,
                })
                .or_default();
            reader
                .merge_measures(cell, version > 1)?
                .ok_or_else(truncated)?;
        }
        if reader.at != bytes.len() {
            return Err(corrupt("bytes after the last cell"));
        }
        Ok(())
    }
}

/// The error for stored rollup bytes (`thing`: a delta, a detail) that do not decode.
fn corrupt(thing: &str, what: &str) -> crate::Error {
    crate::Error::Failed(format!(
        "a rollup {thing} is corrupt ({what}); recompute the rollups of its time range from \
         the raw rows with `logctl rollup rebuild`"
    ))
}

fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_signed(out: &mut Vec<u8>, value: i64) {
    put(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A detail's measures: events, errors, then the latency sketch.
fn put_measures(out: &mut Vec<u8>, measures: &Measures) {
    put(out, measures.events);
    put(out, measures.errors);
    put_sketch(out, &measures.latency);
}

/// A sketch's encoding behind its length.
fn put_sketch(out: &mut Vec<u8>, sketch: &Sketch) {
    let mut encoded = Vec::new();
    sketch.encode(&mut encoded);
    put(out, encoded.len() as u64);
    out.extend_from_slice(&encoded);
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn number(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let value = self.number()?;
        Some((value >> 1) as i64 ^ -((value & 1) as i64))
    }

    /// The bucket `width`s after `first`, from a count; `None` when cut short or out of range,
    /// since deltas are read from the database and may be corrupt.
    fn bucket_after(&mut self, first: i64, width: i64) -> Option<i64> {
        i64::try_from(self.number()?)
            .ok()?
            .checked_mul(width)?
            .checked_add(first)
    }

    fn slice(&mut self) -> Option<&[u8]> {
        let length = usize::try_from(self.number()?).ok()?;
        let end = self.at.checked_add(length)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn text(&mut self) -> Option<Arc<str>> {
        std::str::from_utf8(self.slice()?).ok().map(Arc::from)
    }

    /// Adds the next measures to `cell`; None when cut short. Their latencies are a
    /// sketch, or in a delta since version 2 (`values_or_sketch`) either a sketch or
    /// values (see `encode_delta`).
    fn merge_measures(
        &mut self,
        cell: &mut Measures,
        values_or_sketch: bool,
    ) -> crate::Result<Option<()>> {
        let (Some(events), Some(errors)) = (self.number(), self.number()) else {
            return Ok(None);
        };
        cell.events = cell.events.saturating_add(events);
        cell.errors = cell.errors.saturating_add(errors);
        let values = match values_or_sketch {
            true => self.number(),
            false => Some(0),
        };
        match values {
            None => Ok(None),
            Some(0) => match self.slice() {
                Some(sketch) => Ok(Some(cell.latency.merge_encoded(sketch)?)),
                None => Ok(None),
            },
            Some(count) if count - 1 > events => {
                Err(corrupt("delta", "more latencies than events"))
            }
            Some(count) => {
                let mut value = 0u64;
                for _ in 1..count {
                    let Some(step) = self.number() else {
                        return Ok(None);
                    };
                    value = value.saturating_add(step);
                    let latency = i32::try_from(value)
                        .map_err(|_| corrupt("delta", "a latency out of range"))?;
                    cell.latency.add(latency);
                }
                Ok(Some(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An event as the tests generate it: owned strings, borrowed as a `Row`.
    #[derive(Debug, Clone)]
    struct Event {
        created_at: i64,
        service_id: i32,
        level: Option<String>,
        method: Option<String>,
        status: Option<i16>,
        latency_ms: Option<i32>,
        route: Option<String>,
    }

    impl Event {
        fn row(&self) -> Row<'_> {
            Row {
                created_at: self.created_at,
                service_id: self.service_id,
                level: self.level.as_deref(),
                method: self.method.as_deref(),
                status: self.status,
                latency_ms: self.latency_ms,
                route: self.route.as_deref(),
            }
        }
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            // Three days around 2026, some before 2000 (negative microseconds).
            // Some in one minute, whose minute cells gather the values of several
            // batches (the sketch form of a busy cell has a test of its own).
            prop_oneof![
                (-3 * DAY..0i64),
                (837_000_000_000_000i64..837_000_000_000_000 + 3 * DAY),
                (837_000_000_000_000i64..837_000_000_000_000 + MINUTE)
            ],
            1..4i32,
            prop::option::of(prop::sample::select(vec!["info", "warn", "error", "fatal"])),
            prop::option::of(prop::sample::select(vec!["GET", "POST"])),
            prop::option::of(prop::sample::select(vec![200i16, 201, 404, 500, 503])),
            prop::option::of(prop_oneof![Just(0), 1..100i32, 1..i32::MAX, i32::MIN..0]),
            prop::option::of(prop::sample::select(vec!["/a/:id", "/b", "(other)"])),
        )
            .prop_map(
                |(created_at, service_id, level, method, status, latency_ms, route)| Event {
                    created_at,
                    service_id,
                    level: level.map(str::to_string),
                    method: method.map(str::to_string),
                    status,
                    latency_ms,
                    route: route.map(str::to_string),
                },
            )
    }

    fn cells_of(events: &[Event]) -> Cells {
        let mut cells = Cells::default();
        for event in events {
            cells.add(&event.row());
        }
        cells
    }

    fn batch_deltas(events: &[Event]) -> Vec<Delta> {
        let rows: Vec<Row> = events.iter().map(Event::row).collect();
        let mut cells = BatchCells::default();
        for row in &rows {
            cells.add(row);
        }
        cells.deltas()
    }

    proptest! {
        /// Events split into batches at random, each batch's cells written as deltas and
        /// read back, merged in a random order (as compaction steps and readers do): the
        /// result is the cells of all the events at once.
        #[test]
        fn batches_deltas_and_merge_order_do_not_change_the_cells(
            events in prop::collection::vec(event(), 0..300),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            order in any::<u64>(),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(events.len() + 1)).collect();
            cuts.push(0);
            cuts.push(events.len());
            cuts.sort_unstable();
            // Batches count their cells as a load does, with a benchmark's sketches
            // (`Cells::deltas`) in between.
            let mut deltas = Vec::new();
            for (index, pair) in cuts.windows(2).enumerate() {
                let events = &events[pair[0]..pair[1]];
                deltas.extend(match index % 2 {
                    0 => batch_deltas(events),
                    _ => cells_of(events).deltas(),
                });
            }
            // A permutation of the deltas from the seed.
            let mut state = order | 1;
            for i in (1..deltas.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                deltas.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut merged = Cells::default();
            for delta in &deltas {
                merged.merge_delta(delta.service_id, &delta.cells).unwrap();
            }
            prop_assert_eq!(merged, cells_of(&events));
        }

        #[test]
        fn any_bytes_decode_to_cells_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Cells::default().merge_delta(1, &bytes);
            let _ = merge_detail(&mut Detail::default(), &bytes);
        }

        /// A detail reads back as the cells it was encoded from, and any shorter prefix
        /// of it is an error, never fewer cells.
        #[test]
        fn a_detail_reads_back_whole_and_a_cut_one_is_refused(
            events in prop::collection::vec(event(), 1..100),
        ) {
            let cells = cells_of(&events);
            for grain in [Grain::new(Family::Route, Width::Hour), Grain::new(Family::Total, Width::Minute)] {
                for detail in grain.details_of(&cells).values() {
                    let bytes = encode_detail(detail);
                    let mut read = Detail::default();
                    merge_detail(&mut read, &bytes).unwrap();
                    prop_assert_eq!(&read, detail);
                    for cut in 0..bytes.len() {
                        prop_assert!(merge_detail(&mut Detail::default(), &bytes[..cut]).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn a_delta_whose_times_overflow_is_corrupt_not_a_panic() {
        for (first_minute, offset) in [(0, u64::MAX >> 1), (i64::MAX - 1, 1), (i64::MIN + 1, 0)] {
            let mut bytes = vec![DELTA_VERSION];
            put_signed(&mut bytes, first_minute);
            put(&mut bytes, 0);
            put(&mut bytes, 1);
            put(&mut bytes, offset);
            let error = Cells::default()
                .merge_delta(1, &bytes)
                .unwrap_err()
                .to_string();
            assert!(error.contains("corrupt"), "{error}");
        }
    }

    /// A cell of many latencies goes as a sketch, cells of few as their values: both
    /// read back as the cells counted at once.
    #[test]
    fn a_batch_delta_reads_back_as_its_cells_whichever_way_latencies_are_written() {
        let event = |index: i32, route: &str| Event {
            created_at: MINUTE + i64::from(index),
            service_id: 1,
            level: Some("info".into()),
            method: Some("GET".into()),
            status: Some(200),
            latency_ms: (index % 7 != 0).then_some(index * 37 % 5000),
            route: Some(route.into()),
        };
        let events: Vec<Event> = (0..200)
            .map(|index| event(index, "/busy"))
            .chain((0..3).map(|index| event(index, "/quiet")))
            .collect();
        let mut merged = Cells::default();
        for delta in batch_deltas(&events) {
            merged.merge_delta(delta.service_id, &delta.cells).unwrap();
        }
        assert_eq!(merged, cells_of(&events));
    }

    /// Version 1, which an older logctl may have left pending: strings in place and
    /// every latency as a sketch.
    #[test]
    fn a_delta_of_version_1_still_reads() {
        let measures = Measures {
            events: 3,
            errors: 1,
            latency: [10, 20].into_iter().collect(),
        };
        // As that version wrote them, byte for byte: the minute cell (minute 0 after the
        // first, status class 5, "error", 3 events, 1 error, a sketch of 10 and 20 ms)
        // and the hour cell (hour 0, "/a/:id", "GET", 503, "error", the same measures).
        let bytes = [
            1, 128, 200, 213, 219, 27, 1, 0, 5, 5, 101, 114, 114, 111, 114, 3, 1, 10, 1, 0, 2, 10,
            10, 30, 116, 1, 34, 1, 1, 0, 6, 47, 97, 47, 58, 105, 100, 3, 71, 69, 84, 247, 3, 5,
            101, 114, 114, 111, 114, 3, 1, 10, 1, 0, 2, 10, 10, 30, 116, 1, 34, 1,
        ];
        let mut cells = Cells::default();
        cells.merge_delta(7, &bytes).unwrap();
        let minute = MinuteKey {
            minute: HOUR + 2 * MINUTE,
            service_id: 7,
            status_class: 5,
            level: "error".into(),
        };
        let hour = HourKey {
            start: HOUR,
            service_id: 7,
            route: "/a/:id".into(),
            method: "GET".into(),
            status: 503,
            level: "error".into(),
        };
        assert_eq!(
            cells.minutes,
            FxHashMap::from_iter([(minute, measures.clone())])
        );
        assert_eq!(cells.hours, FxHashMap::from_iter([(hour, measures)]));
    }

    /// Version 2, as this logctl writes it, byte for byte: a delta left pending is read by
    /// whichever logctl compacts next, so its bytes must not change unnoticed.
    #[test]
    fn a_delta_of_version_2_is_written_and_read_as_pinned() {
        let event = |offset: i64, latency_ms: Option<i32>| Event {
            created_at: HOUR + 2 * MINUTE + offset,
            service_id: 7,
            level: Some("error".into()),
            method: Some("GET".into()),
            status: Some(503),
            latency_ms,
            route: Some("/a/:id".into()),
        };
        let events = [event(0, Some(20)), event(1, None), event(2, Some(10))];
        // The version, the first minute, the three strings ("error", "/a/:id", "GET"),
        // the one minute cell (minute 0 after the first, status class 5, string 0,
        // 3 events, 3 errors, 1 + 2 latencies: 10, then 20 as 10 more) and the one hour
        // cell (hour 0 after the first minute's, strings 1 and 2, 503, string 0, the
        // same measures).
        let pinned: &[u8] = &[
            2, 128, 200, 213, 219, 27, 3, 5, 101, 114, 114, 111, 114, 6, 47, 97, 47, 58, 105, 100,
            3, 71, 69, 84, 1, 0, 5, 0, 3, 3, 3, 10, 10, 1, 0, 1, 2, 247, 3, 0, 3, 3, 3, 10, 10,
        ];
        let deltas = batch_deltas(&events);
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].cells, pinned, "{:?}", deltas[0].cells);
        let mut cells = Cells::default();
        cells.merge_delta(7, pinned).unwrap();
        assert_eq!(cells, cells_of(&events));
    }

    #[test]
    fn a_delta_naming_a_missing_string_or_out_of_range_latencies_is_refused() {
        // One minute cell of one event, at level string `level`, with `latencies`.
        let minute_cell = |level: u64, latencies: &[u64]| {
            let mut bytes = vec![DELTA_VERSION];
            put_signed(&mut bytes, 0);
            put(&mut bytes, 1);
            put_text(&mut bytes, "info");
            put(&mut bytes, 1);
            put(&mut bytes, 0);
            put(&mut bytes, 2);
            put(&mut bytes, level);
            put(&mut bytes, 1);
            put(&mut bytes, 0);
            put(&mut bytes, latencies.len() as u64 + 1);
            for &latency in latencies {
                put(&mut bytes, latency);
            }
            put(&mut bytes, 0);
            bytes
        };
        let read = |bytes: &[u8]| {
            Cells::default()
                .merge_delta(1, bytes)
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(&minute_cell(0, &[i32::MAX as u64])), Ok(()));
        let missing = read(&minute_cell(1, &[5])).unwrap_err();
        assert!(missing.contains("a string out of range"), "{missing}");
        let too_long = read(&minute_cell(0, &[i32::MAX as u64 + 1])).unwrap_err();
        assert!(too_long.contains("a latency out of range"), "{too_long}");
        let crowded = read(&minute_cell(0, &[5, 1])).unwrap_err();
        assert!(crowded.contains("more latencies than events"), "{crowded}");
        let mut newer = minute_cell(0, &[5]);
        newer[0] = DELTA_VERSION + 1;
        let newer = read(&newer).unwrap_err();
        assert!(newer.contains("a newer logctl wrote it"), "{newer}");
    }

    #[test]
    fn errors_are_server_errors_or_error_levels() {
        assert!(is_error(Some(503), None));
        assert!(is_error(Some(200), Some("error")));
        assert!(is_error(None, Some("fatal")));
        assert!(!is_error(Some(404), Some("warn")));
        assert!(!is_error(None, None));
        assert_eq!(status_class(Some(503)), 5);
        assert_eq!(status_class(None), 0);
        assert_eq!(bucket_of(-1, MINUTE), -MINUTE);
        assert_eq!(bucket_of(MINUTE + 5, MINUTE), MINUTE);
    }

    #[test]
    fn a_delta_holds_only_its_services_cells_with_their_bounds() {
        let events = [
            (2 * MINUTE + 5, 1, Some(200), Some(12)),
            (5 * MINUTE, 1, Some(503), None),
            (HOUR + 1, 2, None, Some(7)),
        ]
        .map(|(created_at, service_id, status, latency_ms)| Event {
            created_at,
            service_id,
            level: None,
            method: Some("GET".into()),
            status,
            latency_ms,
            route: Some("/x".into()),
        });
        let deltas = cells_of(&events).deltas();
        assert_eq!(deltas.len(), 2);
        assert_eq!(
            (
                deltas[0].service_id,
                deltas[0].first_minute,
                deltas[0].last_minute
            ),
            (1, 2 * MINUTE, 5 * MINUTE)
        );
        let mut first = Cells::default();
        first.merge_delta(1, &deltas[0].cells).unwrap();
        assert_eq!(first.minutes.len(), 2);
        assert_eq!(first.hours.len(), 2, "two statuses in one hour");
        let errors: u64 = first.hours.values().map(|m| m.errors).sum();
        assert_eq!(errors, 1);
        assert_eq!(deltas[1].first_minute, HOUR);
    }

    #[test]
    fn hour_cells_of_a_service_without_minute_cells_go_to_no_other_service() {
        let events =
            [(MINUTE, 1), (MINUTE, 2), (MINUTE, 3)].map(|(created_at, service_id)| Event {
                created_at,
                service_id,
                level: None,
                method: None,
                status: Some(200),
                latency_ms: None,
                route: None,
            });
        let mut cells = cells_of(&events);
        // Only merged bytes could hold such cells: service 2's minutes without its hours.
        cells.minutes.retain(|key, _| key.service_id != 2);
        cells.hours.retain(|key, _| key.service_id != 1);
        let deltas = cells.deltas();
        let services: Vec<i32> = deltas.iter().map(|delta| delta.service_id).collect();
        assert_eq!(services, [1, 3]);
        let hours_of = |delta: &Delta| {
            let mut merged = Cells::default();
            merged.merge_delta(delta.service_id, &delta.cells).unwrap();
            merged.hours.len()
        };
        assert_eq!(hours_of(&deltas[0]), 0, "service 1 kept no hour cells");
        assert_eq!(hours_of(&deltas[1]), 1, "service 3 has its own");
    }
}
