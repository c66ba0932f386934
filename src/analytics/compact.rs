//! Compaction: folds the rollup deltas that batches appended into the minute, hour and
//! day cells, a bounded number of deltas per transaction, under one advisory lock so
//! that compactors (the end of every load, `logctl rollup compact` from cron) take
//! turns. Deltas and grains are merged by addition, and a step consumes exactly the
//! deltas it merged, in the same transaction: running it again, or beside loads, changes
//! nothing that is already folded in.

use tokio_postgres::Client;

use super::rollup::{Cells, DAY, HourKey, Measures, MinuteKey, bucket_of, decode_delta};
use super::sketch::Sketch;
use crate::db::{Isolation, locks, transaction};
use crate::pgtime::{from_datetime, to_datetime};

/// Deltas merged per transaction: their cells stay in memory until it commits.
const DELTAS_PER_STEP: i64 = 256;

/// Whether to wait for another compaction (or a rebuild) to finish first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `logctl rollup compact`: take turns.
    Yes,
    /// The end of a load: leave the deltas to the one that runs (readers merge pending
    /// deltas, so no answer depends on it).
    No,
}

/// Folds every delta committed so far into the grains; returns how many it folded, or
/// None when it did not wait for another compactor.
pub async fn compact(client: &Client, wait: Wait) -> crate::Result<Option<u64>> {
    // Only the deltas committed by now: loads appending beside a long compaction cannot
    // keep it going, nor keep one service's deltas ahead of the others'.
    let last: Option<i64> = client
        .query_one("SELECT max(delta_id) FROM logctl_rollup_deltas", &[])
        .await?
        .get(0);
    let Some(last) = last else {
        return Ok(Some(0));
    };
    let mut folded = 0;
    loop {
        let step = transaction(client, Isolation::ReadCommitted, |client| async move {
            let locked: bool = match wait {
                Wait::Yes => {
                    client
                        .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::ROLLUPS])
                        .await?;
                    true
                }
                Wait::No => client
                    .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&locks::ROLLUPS])
                    .await?
                    .get(0),
            };
            if !locked {
                return Ok(None);
            }
            let rows = client
                .query(
                    // One service's deltas together: they share its cells, so a step
                    // writes each hour and day cell about once, where steps in time order
                    // rewrote a day's cells of every service at each step.
                    "SELECT service_id, delta_id, cells FROM logctl_rollup_deltas \
                     WHERE delta_id <= $2 ORDER BY service_id, delta_id LIMIT $1",
                    &[&DELTAS_PER_STEP, &last],
                )
                .await?;
            let mut cells = Cells::default();
            let mut consumed = Vec::with_capacity(rows.len());
            for row in &rows {
                let service_id: i32 = row.get(0);
                cells.merge(&decode_delta(service_id, row.get(2))?);
                consumed.push((service_id, row.get::<_, i64>(1)));
            }
            fold(client, &cells).await?;
            let (services, ids): (Vec<i32>, Vec<i64>) = consumed.into_iter().unzip();
            client
                .execute(
                    "DELETE FROM logctl_rollup_deltas WHERE (service_id, delta_id) IN \
                     (SELECT * FROM unnest($1::integer[], $2::bigint[]))",
                    &[&services, &ids],
                )
                .await?;
            Ok(Some(rows.len() as u64))
        })
        .await?;
        let Some(step) = step else {
            return Ok(None);
        };
        folded += step;
        if step < DELTAS_PER_STEP as u64 {
            return Ok(Some(folded));
        }
    }
}

/// Adds cells to the grains, in the caller's transaction (which holds the rollup lock).
pub(super) async fn fold(client: &Client, cells: &Cells) -> crate::Result<()> {
    fold_minutes(client, cells.minutes.iter().collect()).await?;
    fold_hours(client, Grain::Hour, cells.hours.iter().collect()).await?;
    let mut days: rustc_hash::FxHashMap<HourKey, Measures> = Default::default();
    for (key, measures) in &cells.hours {
        let day = HourKey {
            start: bucket_of(key.start, DAY),
            ..key.clone()
        };
        days.entry(day).or_default().merge(measures);
    }
    fold_hours(client, Grain::Day, days.iter().collect()).await
}

/// The latency columns of a cell: count, sum, min, max and the encoded sketch.
struct Latency {
    count: i64,
    sum: i64,
    min: Option<i32>,
    max: Option<i32>,
    p99: Option<f32>,
    sketch: Vec<u8>,
}

impl Latency {
    fn of(sketch: &Sketch) -> Latency {
        let mut bytes = Vec::new();
        sketch.encode(&mut bytes);
        Latency {
            count: sketch.count() as i64,
            sum: sketch.sum().min(i64::MAX as u64) as i64,
            min: sketch.min(),
            max: sketch.max(),
            p99: sketch.quantile(0.99).map(|p99| p99 as f32),
            sketch: bytes,
        }
    }
}

async fn fold_minutes(
    client: &Client,
    mut cells: Vec<(&MinuteKey, &Measures)>,
) -> crate::Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    // The order every compactor writes rows in: the same rows are never locked the other
    // way round.
    cells.sort_by(|a, b| a.0.cmp(b.0));
    let minutes: Vec<_> = cells
        .iter()
        .map(|(key, _)| to_datetime(key.minute))
        .collect();
    let services: Vec<i32> = cells.iter().map(|(key, _)| key.service_id).collect();
    let classes: Vec<i16> = cells.iter().map(|(key, _)| key.status_class).collect();
    let levels: Vec<&str> = cells.iter().map(|(key, _)| &*key.level).collect();
    let existing = client
        .query(
            "SELECT m.minute, m.service_id, m.status_class, m.level, m.events, m.errors, m.latency \
             FROM logctl_rollup_minute m \
             JOIN unnest($1::timestamptz[], $2::integer[], $3::smallint[], $4::text[]) \
                  AS k(minute, service_id, status_class, level) \
             USING (minute, service_id, status_class, level) \
             FOR UPDATE OF m",
            &[&minutes, &services, &classes, &levels],
        )
        .await?;
    let mut merged: rustc_hash::FxHashMap<MinuteKey, Measures> = cells
        .iter()
        .map(|(key, measures)| ((*key).clone(), (*measures).clone()))
        .collect();
    for row in &existing {
        let key = MinuteKey {
            minute: from_datetime(row.get(0)),
            service_id: row.get(1),
            status_class: row.get(2),
            level: row.get::<_, &str>(3).into(),
        };
        if let Some(measures) = merged.get_mut(&key) {
            measures.merge(&stored(row.get(4), row.get(5), row.get(6))?);
        }
    }
    let measures: Vec<&Measures> = cells.iter().map(|(key, _)| &merged[*key]).collect();
    let latency: Vec<Latency> = measures.iter().map(|m| Latency::of(&m.latency)).collect();
    let events: Vec<i64> = measures.iter().map(|m| m.events as i64).collect();
    let errors: Vec<i64> = measures.iter().map(|m| m.errors as i64).collect();
    let counts: Vec<i64> = latency.iter().map(|l| l.count).collect();
    let sums: Vec<i64> = latency.iter().map(|l| l.sum).collect();
    let mins: Vec<Option<i32>> = latency.iter().map(|l| l.min).collect();
    let maxes: Vec<Option<i32>> = latency.iter().map(|l| l.max).collect();
    let sketches: Vec<&[u8]> = latency.iter().map(|l| l.sketch.as_slice()).collect();
    client
        .execute(
            "INSERT INTO logctl_rollup_minute (minute, service_id, status_class, level, events, \
                 errors, latency_count, latency_sum, latency_min, latency_max, latency) \
             SELECT * FROM unnest($1::timestamptz[], $2::integer[], $3::smallint[], $4::text[], \
                 $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::integer[], \
                 $10::integer[], $11::bytea[]) \
             ON CONFLICT (minute, service_id, status_class, level) DO UPDATE SET \
                 events = excluded.events, errors = excluded.errors, \
                 latency_count = excluded.latency_count, latency_sum = excluded.latency_sum, \
                 latency_min = excluded.latency_min, latency_max = excluded.latency_max, \
                 latency = excluded.latency",
            &[
                &minutes, &services, &classes, &levels, &events, &errors, &counts, &sums, &mins,
                &maxes, &sketches,
            ],
        )
        .await?;
    Ok(())
}

/// The hour-like grains: same dimensions, another bucket width and table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub fn table(self) -> &'static str {
        match self {
            Grain::Hour => "logctl_rollup_hour",
            Grain::Day => "logctl_rollup_day",
        }
    }

    pub fn time_column(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }
}

async fn fold_hours(
    client: &Client,
    grain: Grain,
    mut cells: Vec<(&HourKey, &Measures)>,
) -> crate::Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    cells.sort_by(|a, b| a.0.cmp(b.0));
    let (table, time) = (grain.table(), grain.time_column());
    let starts: Vec<_> = cells
        .iter()
        .map(|(key, _)| to_datetime(key.start))
        .collect();
    let services: Vec<i32> = cells.iter().map(|(key, _)| key.service_id).collect();
    let routes: Vec<&str> = cells.iter().map(|(key, _)| &*key.route).collect();
    let methods: Vec<&str> = cells.iter().map(|(key, _)| &*key.method).collect();
    let statuses: Vec<i16> = cells.iter().map(|(key, _)| key.status).collect();
    let levels: Vec<&str> = cells.iter().map(|(key, _)| &*key.level).collect();
    let existing = client
        .query(
            &format!(
                "SELECT t.{time}, t.service_id, t.route, t.method, t.status, t.level, t.events, \
                        t.errors, t.latency \
                 FROM {table} t \
                 JOIN unnest($1::timestamptz[], $2::integer[], $3::text[], $4::text[], \
                             $5::smallint[], $6::text[]) \
                      AS k({time}, service_id, route, method, status, level) \
                 USING ({time}, service_id, route, method, status, level) \
                 FOR UPDATE OF t"
            ),
            &[&starts, &services, &routes, &methods, &statuses, &levels],
        )
        .await?;
    let mut merged: rustc_hash::FxHashMap<HourKey, Measures> = cells
        .iter()
        .map(|(key, measures)| ((*key).clone(), (*measures).clone()))
        .collect();
    for row in &existing {
        let key = HourKey {
            start: from_datetime(row.get(0)),
            service_id: row.get(1),
            route: row.get::<_, &str>(2).into(),
            method: row.get::<_, &str>(3).into(),
            status: row.get(4),
            level: row.get::<_, &str>(5).into(),
        };
        if let Some(measures) = merged.get_mut(&key) {
            measures.merge(&stored(row.get(6), row.get(7), row.get(8))?);
        }
    }
    let measures: Vec<&Measures> = cells.iter().map(|(key, _)| &merged[*key]).collect();
    let latency: Vec<Latency> = measures.iter().map(|m| Latency::of(&m.latency)).collect();
    let events: Vec<i64> = measures.iter().map(|m| m.events as i64).collect();
    let errors: Vec<i64> = measures.iter().map(|m| m.errors as i64).collect();
    let counts: Vec<i64> = latency.iter().map(|l| l.count).collect();
    let sums: Vec<i64> = latency.iter().map(|l| l.sum).collect();
    let mins: Vec<Option<i32>> = latency.iter().map(|l| l.min).collect();
    let maxes: Vec<Option<i32>> = latency.iter().map(|l| l.max).collect();
    let p99s: Vec<Option<f32>> = latency.iter().map(|l| l.p99).collect();
    let sketches: Vec<&[u8]> = latency.iter().map(|l| l.sketch.as_slice()).collect();
    client
        .execute(
            &format!(
                "INSERT INTO {table} ({time}, service_id, route, method, status, level, events, \
                     errors, latency_count, latency_sum, latency_min, latency_max, latency_p99, \
                     latency) \
                 SELECT * FROM unnest($1::timestamptz[], $2::integer[], $3::text[], $4::text[], \
                     $5::smallint[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], \
                     $10::bigint[], $11::integer[], $12::integer[], $13::real[], $14::bytea[]) \
                 ON CONFLICT ({time}, service_id, route, method, status, level) DO UPDATE SET \
                     events = excluded.events, errors = excluded.errors, \
                     latency_count = excluded.latency_count, latency_sum = excluded.latency_sum, \
                     latency_min = excluded.latency_min, latency_max = excluded.latency_max, \
                     latency_p99 = excluded.latency_p99, latency = excluded.latency"
            ),
            &[
                &starts, &services, &routes, &methods, &statuses, &levels, &events, &errors,
                &counts, &sums, &mins, &maxes, &p99s, &sketches,
            ],
        )
        .await?;
    Ok(())
}

/// The measures of a stored cell.
pub(super) fn stored(events: i64, errors: i64, sketch: &[u8]) -> crate::Result<Measures> {
    Ok(Measures {
        events: events as u64,
        errors: errors as u64,
        latency: Sketch::decode(sketch)?,
    })
}
