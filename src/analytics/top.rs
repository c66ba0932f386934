//! Top-N: the groups of a question ranked by a measure, reading as few sketches as it
//! can. A first pass reads the cells without their sketches: counts, errors and latency
//! sums are exact from it, so a ranking by them is known at once; for a ranking by a
//! quantile it bounds each group's value. The quantile of a mixture lies between the
//! smallest and the largest quantile of its parts (see `bounds`), and each hour-like
//! cell stores its p50, p95 and p99 (else its min and max bound them), so only the
//! groups whose upper bound reaches the N-th largest lower bound can be in the top N.
//! A second pass merges the sketches of those groups alone, with the read API, and
//! ranks them exactly as a full read would.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use tokio_postgres::Client;

use super::read::{Facts, Query, Reading, Source, Stats, read};
use super::rollup::Family;

/// What groups are ranked by, largest first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rank {
    Count,
    Errors,
    ErrorRate,
    /// The sum of the latencies, in milliseconds.
    TotalTime,
    /// A latency quantile, 0 to 1.
    Quantile(f64),
}

impl Rank {
    /// The value a group is ranked by; None ranks last (no latency, no event).
    pub fn of(self, stats: &Stats) -> Option<f64> {
        match self {
            Rank::Count => Some(stats.events as f64),
            Rank::Errors => Some(stats.errors as f64),
            Rank::ErrorRate => stats.error_rate(),
            Rank::TotalTime => (stats.latency.count() > 0).then(|| stats.latency.sum() as f64),
            Rank::Quantile(q) => stats.quantile(q),
        }
    }

    /// The column of the stored estimate of this quantile in hour-like cells.
    fn stored_column(self) -> Option<usize> {
        match self {
            Rank::Quantile(0.5) => Some(0),
            Rank::Quantile(0.95) => Some(1),
            Rank::Quantile(0.99) => Some(2),
            _ => None,
        }
    }
}

/// A group of a ranking with its measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub key: Vec<String>,
    pub stats: Stats,
}

/// A sketch's quantile is within 1% of the true one: a stored estimate e of a part's
/// quantile t means t ∈ [e/(1+α), e/(1−α)], the mixture's true quantile lies within the
/// parts' range, and its estimate within α of that. f32 storage adds a hair.
const ALPHA: f64 = 0.01;
const LOW: f64 = (1.0 - ALPHA) / (1.0 + ALPHA) * (1.0 - 1e-6);
const HIGH: f64 = (1.0 + ALPHA) / (1.0 - ALPHA) * (1.0 + 1e-6);

/// What the first pass knows of a group.
#[derive(Debug, Clone)]
struct Bounds {
    events: u64,
    errors: u64,
    latency_count: u64,
    latency_sum: u64,
    /// Per ranking, the range the group's value (as a full read estimates it) lies in.
    range: Vec<(f64, f64)>,
}

impl Bounds {
    fn new(ranks: usize) -> Bounds {
        Bounds {
            events: 0,
            errors: 0,
            latency_count: 0,
            latency_sum: 0,
            range: vec![(f64::INFINITY, f64::NEG_INFINITY); ranks],
        }
    }

    /// Widens the range of ranking `index` to hold a part whose quantile lies in
    /// [low, high].
    fn widen(&mut self, index: usize, low: f64, high: f64) {
        let range = &mut self.range[index];
        *range = (range.0.min(low), range.1.max(high));
    }

    /// The value of an additive ranking, exact from the sums.
    fn additive(&self, rank: Rank) -> Option<f64> {
        match rank {
            Rank::Count => Some(self.events as f64),
            Rank::Errors => Some(self.errors as f64),
            Rank::ErrorRate => (self.events > 0).then(|| self.errors as f64 / self.events as f64),
            Rank::TotalTime => (self.latency_count > 0).then_some(self.latency_sum as f64),
            Rank::Quantile(_) => None,
        }
    }
}

/// The groups of `query` (grouped by `query.by`) with at least `min_count` events, ranked
/// by each of `ranks`, at most `limit` per ranking (None: all); one ranking per rank.
pub async fn top(
    client: &Client,
    query: &Query,
    ranks: &[Rank],
    limit: Option<usize>,
    min_count: u64,
) -> crate::Result<Vec<Vec<Ranked>>> {
    if query.is_exact() || limit.is_none() {
        let groups = read(client, query).await?.by_group();
        let stats: Vec<(Vec<String>, Stats)> = groups
            .into_iter()
            .filter(|(_, stats)| stats.events >= min_count.max(1))
            .collect();
        return Ok(ranks
            .iter()
            .map(|&rank| ranked(&stats, rank, limit))
            .collect());
    }
    let limit = limit.unwrap_or(usize::MAX);
    let bounds = first_pass(client, query, ranks).await?;
    let eligible: Vec<(&Vec<String>, &Bounds)> = bounds
        .iter()
        .filter(|(_, b)| b.events >= min_count.max(1))
        .collect();
    let mut wanted: BTreeSet<Vec<String>> = BTreeSet::new();
    for (index, &rank) in ranks.iter().enumerate() {
        if matches!(rank, Rank::Quantile(_)) {
            // The N-th largest lower bound: a group whose upper bound is below it has N
            // groups above it for certain.
            let mut lows: Vec<f64> = eligible
                .iter()
                .map(|(_, b)| {
                    if b.latency_count == 0 {
                        f64::NEG_INFINITY
                    } else {
                        b.range[index].0
                    }
                })
                .collect();
            lows.sort_by(|a, b| b.total_cmp(a));
            let threshold = lows.get(limit - 1).copied().unwrap_or(f64::NEG_INFINITY);
            wanted.extend(
                eligible
                    .iter()
                    .filter(|(_, b)| b.range[index].1 >= threshold)
                    .map(|(key, _)| (*key).clone()),
            );
        } else {
            let mut values: Vec<(Option<f64>, &Vec<String>)> = eligible
                .iter()
                .map(|(key, b)| (b.additive(rank), *key))
                .collect();
            values.sort_by(|a, b| order(a.0, b.0).then_with(|| a.1.cmp(b.1)));
            wanted.extend(values.iter().take(limit).map(|(_, key)| (*key).clone()));
        }
    }
    let mut second = query.clone();
    second.only = Some(wanted);
    let stats: Vec<(Vec<String>, Stats)> = read(client, &second)
        .await?
        .by_group()
        .into_iter()
        .collect();
    Ok(ranks
        .iter()
        .map(|&rank| ranked(&stats, rank, Some(limit)))
        .collect())
}

/// Largest first, None last.
fn order(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// The groups ranked by `rank` (ties by key), at most `limit`.
fn ranked(groups: &[(Vec<String>, Stats)], rank: Rank, limit: Option<usize>) -> Vec<Ranked> {
    let mut order_of: Vec<(Option<f64>, &Vec<String>, &Stats)> = groups
        .iter()
        .map(|(key, stats)| (rank.of(stats), key, stats))
        .collect();
    order_of.sort_by(|a, b| order(a.0, b.0).then_with(|| a.1.cmp(b.1)));
    order_of
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(_, key, stats)| Ranked {
            key: key.clone(),
            stats: stats.clone(),
        })
        .collect()
}

/// What the first pass reads of a series' cells, added up by the server: events,
/// errors, the latencies' count and sum, min and max, and for each stored quantile
/// (p50, p95, p99) its lowest and highest estimate and whether some cell with latencies
/// stores none.
const FIRST_PASS_MEASURES: &str = "sum(c.events)::bigint, sum(c.errors)::bigint, \
    sum(c.latency_count)::bigint, sum(c.latency_sum)::bigint, \
    min(c.latency_min), max(c.latency_max), \
    min(c.latency_p50), max(c.latency_p50), \
    bool_or(c.latency_p50 IS NULL AND c.latency_count > 0), \
    min(c.latency_p95), max(c.latency_p95), \
    bool_or(c.latency_p95 IS NULL AND c.latency_count > 0), \
    min(c.latency_p99), max(c.latency_p99), \
    bool_or(c.latency_p99 IS NULL AND c.latency_count > 0)";

/// Reads the hour-like cells without their sketches (their stored quantiles bound the
/// group's), and the minute cells, raw rows and pending deltas with theirs (no quantile
/// is stored for them all), into each group's bounds.
async fn first_pass(
    client: &Client,
    query: &Query,
    ranks: &[Rank],
) -> crate::Result<FxHashMap<Vec<String>, Bounds>> {
    let reading = Reading::start(client, query).await?;
    let plan = reading.plan();
    let mut bounds: FxHashMap<Vec<String>, Bounds> = FxHashMap::default();
    // Fine cells are packed in their route cells, whose stored quantiles are not theirs:
    // those are read whole, with the rest below.
    let (summed, whole): (Vec<Source>, Vec<Source>) =
        [Source::Day, Source::Hour, Source::Minute, Source::Raw]
            .into_iter()
            .partition(|&source| {
                matches!(source, Source::Day | Source::Hour)
                    && reading
                        .grain(source)
                        .is_some_and(|grain| grain.family != Family::Fine)
            });
    for source in summed {
        let tiles = plan.of(source);
        let Some(grain) = reading.grain(source).filter(|_| !tiles.is_empty()) else {
            continue;
        };
        let rows = reading
            .cell_rows(client, grain, &tiles, FIRST_PASS_MEASURES, true)
            .await?;
        let mut key = Vec::new();
        for (_, row) in &rows {
            let (facts, at) = Facts::of_row(grain, row, 0);
            if !reading.group_of(&facts, &mut key) {
                continue;
            }
            if !bounds.contains_key(&key) {
                bounds.insert(key.clone(), Bounds::new(ranks.len()));
            }
            let group = bounds.get_mut(&key).expect("inserted above");
            group.events += row.get::<_, i64>(at) as u64;
            group.errors += row.get::<_, i64>(at + 1) as u64;
            let count = row.get::<_, i64>(at + 2) as u64;
            if count == 0 {
                continue;
            }
            group.latency_count += count;
            group.latency_sum += row.get::<_, i64>(at + 3) as u64;
            let min = f64::from(row.get::<_, Option<i32>>(at + 4).unwrap_or(0));
            let max = f64::from(row.get::<_, Option<i32>>(at + 5).unwrap_or(i32::MAX));
            for (index, rank) in ranks.iter().enumerate() {
                // A quantile no cell stores, or a cell that stores none of it (compacted
                // before it was stored): it lies between the cells' min and max.
                let mut unstored = true;
                if let Some(column) = rank.stored_column() {
                    let first = at + 6 + 3 * column;
                    let lowest = row.get::<_, Option<f32>>(first);
                    let highest = row.get::<_, Option<f32>>(first + 1);
                    if let (Some(lowest), Some(highest)) = (lowest, highest) {
                        group.widen(index, f64::from(lowest) * LOW, f64::from(highest) * HIGH);
                    }
                    unstored = row.get::<_, Option<bool>>(first + 2).unwrap_or(true);
                }
                if unstored {
                    group.widen(index, min * (1.0 - ALPHA), max * (1.0 + ALPHA));
                }
            }
        }
    }
    let mut rest = query.clone();
    rest.latency = true;
    let mut partial = Reading::start(client, &rest).await?;
    for (source, tiles) in whole.into_iter().map(|s| (s, plan.of(s))) {
        if !tiles.is_empty() {
            partial.read(client, source, &tiles).await?;
        }
    }
    partial.read_pending(client, &plan.rollup_tiles()).await?;
    for (key, stats) in partial.answer().by_group() {
        let group = bounds
            .entry(key)
            .or_insert_with(|| Bounds::new(ranks.len()));
        group.events += stats.events;
        group.errors += stats.errors;
        group.latency_count += stats.latency.count();
        group.latency_sum += stats.latency.sum();
        for (index, rank) in ranks.iter().enumerate() {
            if let Rank::Quantile(q) = rank
                && let Some(estimate) = stats.quantile(*q)
            {
                group.widen(index, estimate * LOW, estimate * HIGH);
            }
        }
    }
    Ok(bounds)
}
