//! Compaction: folds the rollup deltas that batches appended into the minute, hour and
//! day cells, a bounded number of deltas per transaction, under one advisory lock so
//! that compactors (the end of every load, `logctl rollup compact` from cron) take
//! turns. Deltas and grains are merged by addition, and a step consumes exactly the
//! deltas it merged, in the same transaction: running it again, or beside loads, changes
//! nothing that is already folded in.

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::rollup::{Cells, Delta, Family, Grain, HourKey, Kept, Measures, MinuteKey, Width};
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

/// Appends deltas to `logctl_rollup_deltas` in the caller's transaction: a batch's, in
/// the transaction of its rows (on Citus with their spread key, which puts them on the
/// rows' shard), or cells a benchmark builds directly.
pub async fn append_deltas(client: &Client, deltas: &[Delta], spread: i32) -> crate::Result<()> {
    let services: Vec<i32> = deltas.iter().map(|delta| delta.service_id).collect();
    let first: Vec<_> = deltas
        .iter()
        .map(|delta| to_datetime(delta.first_minute))
        .collect();
    let last: Vec<_> = deltas
        .iter()
        .map(|delta| to_datetime(delta.last_minute))
        .collect();
    let cells: Vec<&[u8]> = deltas.iter().map(|delta| delta.cells.as_slice()).collect();
    client
        .execute(
            "INSERT INTO logctl_rollup_deltas (service_id, first_minute, last_minute, cells, spread) \
             SELECT *, $5 FROM unnest($1::integer[], $2::timestamptz[], $3::timestamptz[], $4::bytea[])",
            &[&services, &first, &last, &cells, &spread],
        )
        .await?;
    Ok(())
}

/// Folds every delta committed so far into the grains; returns how many it folded, or
/// None when it did not wait for another compactor.
pub async fn compact(client: &Client, wait: Wait) -> crate::Result<Option<u64>> {
    // Only the deltas committed by now: loads appending beside a long compaction cannot
    // keep it going, nor keep one service's deltas ahead of the others'.
    // In a transaction, as every statement: behind a transaction-pooling pooler, a
    // statement prepared outside one can land on another server connection than its
    // execution, and clash there with another client's of the same name.
    let last: Option<i64> = transaction(client, Isolation::ReadCommitted, |client| async move {
        Ok(client
            .query_one("SELECT max(delta_id) FROM logctl_rollup_deltas", &[])
            .await?
            .get(0))
    })
    .await?;
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
                cells.merge_delta(service_id, row.get(2))?;
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

/// Derives the grains a migration added from the cells compacted before it, when the
/// migration left its marker: the service and route grains from the fine hour and day
/// cells (007), the totals from the minute cells and the service grain (010). Returns
/// what was derived, from what, and for how many days. Under the rollup
/// lock, so no compaction runs meanwhile; each day's cells of a new grain are replaced
/// by what the older grains give (which already count whatever compaction folded since
/// the migration), and the marker goes in the same transaction, so a failed run is done
/// again by the next `logctl schema`. 007's grains come first: 010's derive from them.
pub async fn derive_pending_grains(client: &Client) -> crate::Result<Vec<(&'static str, u64)>> {
    let mut derived = Vec::new();
    for (marker, what, sources) in [
        (
            "derive_rollup_grains",
            "the service and route rollups from the hour and day rollups",
            &[
                (
                    Family::Fine,
                    Width::Hour,
                    &[Family::Service, Family::Route][..],
                ),
                (
                    Family::Fine,
                    Width::Day,
                    &[Family::Service, Family::Route][..],
                ),
            ][..],
        ),
        (
            "derive_rollup_totals",
            "the services' totals from the minute and service rollups",
            &[
                (Family::Service, Width::Hour, &[Family::Total][..]),
                (Family::Service, Width::Day, &[Family::Total][..]),
            ][..],
        ),
    ] {
        if let Some(days) = derive_marked(client, marker, sources).await? {
            derived.push((what, days));
        }
    }
    Ok(derived)
}

/// One migration's derivation: for each source grain, the families derived from it at
/// its width; the totals' minute cells come from the minute grain.
async fn derive_marked(
    client: &Client,
    marker: &str,
    sources: &[(Family, Width, &[Family])],
) -> crate::Result<Option<u64>> {
    transaction(client, Isolation::ReadCommitted, |client| async move {
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::ROLLUPS])
            .await?;
        let pending = client
            .execute("DELETE FROM logctl_settings WHERE key = $1", &[&marker])
            .await?;
        if pending == 0 {
            return Ok(None);
        }
        let totals = sources
            .iter()
            .any(|&(_, _, targets)| targets.contains(&Family::Total));
        let mut union = Vec::new();
        if totals {
            union.push(
                "SELECT date_bin('1 day', minute, TIMESTAMPTZ '2000-01-01Z') \
                 FROM logctl_rollup_minute"
                    .to_string(),
            );
        }
        for &(family, width, _) in sources {
            let grain = Grain::new(family, width);
            union.push(format!(
                "SELECT date_bin('1 day', {}, TIMESTAMPTZ '2000-01-01Z') FROM {}",
                grain.time_column(),
                grain.table()
            ));
        }
        let days: Vec<DateTime<Utc>> = client
            .query(&format!("{} ORDER BY 1", union.join(" UNION ")), &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for &day in &days {
            let until = day + chrono::TimeDelta::days(1);
            let mut derived: Vec<(Grain, Cells)> = Vec::new();
            for &(family, width, targets) in sources {
                let cells = Cells {
                    minutes: FxHashMap::default(),
                    hours: stored_cells(client, Grain::new(family, width), day, until).await?,
                };
                for &target in targets {
                    derived.push((Grain::new(target, width), cells.clone()));
                }
            }
            if totals {
                let cells = Cells {
                    minutes: stored_minutes(client, day, until).await?,
                    hours: FxHashMap::default(),
                };
                derived.push((Grain::new(Family::Total, Width::Minute), cells));
            }
            for (grain, cells) in derived {
                let time = grain.time_column();
                client
                    .execute(
                        &format!(
                            "DELETE FROM {} WHERE {time} >= $1 AND {time} < $2",
                            grain.table()
                        ),
                        &[&day, &until],
                    )
                    .await?;
                fold_grain(client, grain, &grain.cells_of(&cells)).await?;
            }
        }
        Ok(Some(days.len() as u64))
    })
    .await
}

/// Adds cells to the grains, in the caller's transaction (which holds the rollup lock):
/// the minute cells to the minute grains, the hour cells to every hour-like grain.
pub(super) async fn fold(client: &Client, cells: &Cells) -> crate::Result<()> {
    fold_minutes(client, cells.minutes.iter().collect()).await?;
    for grain in Grain::ALL {
        fold_grain(client, grain, &grain.cells_of(cells)).await?;
    }
    Ok(())
}

/// The latency columns of a cell: count, sum, min, max, the quantiles a top-N prunes
/// with, and the encoded sketch.
struct Latency {
    count: i64,
    sum: i64,
    min: Option<i32>,
    max: Option<i32>,
    p50: Option<f32>,
    p95: Option<f32>,
    p99: Option<f32>,
    sketch: Vec<u8>,
}

impl Latency {
    fn of(sketch: &Sketch) -> Latency {
        let mut bytes = Vec::new();
        sketch.encode(&mut bytes);
        let quantile = |q| sketch.quantile(q).map(|value| value as f32);
        Latency {
            count: sketch.count() as i64,
            sum: sketch.sum().min(i64::MAX as u64) as i64,
            min: sketch.min(),
            max: sketch.max(),
            p50: quantile(0.5),
            p95: quantile(0.95),
            p99: quantile(0.99),
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
             USING (minute, service_id, status_class, level)",
            &[&minutes, &services, &classes, &levels],
        )
        .await?;
    let new: FxHashMap<&MinuteKey, &Measures> = cells.iter().copied().collect();
    let mut merged: FxHashMap<MinuteKey, Measures> = FxHashMap::default();
    for row in &existing {
        let key = MinuteKey {
            minute: from_datetime(row.get(0)),
            service_id: row.get(1),
            status_class: row.get(2),
            level: row.get::<_, &str>(3).into(),
        };
        if let Some(&added) = new.get(&key) {
            let mut measures = stored(row.get(4), row.get(5), row.get(6))?;
            measures.merge(added);
            merged.insert(key, measures);
        }
    }
    let measures: Vec<&Measures> = cells
        .iter()
        .map(|&(key, added)| merged.get(key).unwrap_or(added))
        .collect();
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

/// The key columns of an hour-like grain's cells, as arrays for `unnest`, from keys in
/// the order they are written.
struct KeyArrays<'k> {
    starts: Vec<DateTime<Utc>>,
    services: Vec<i32>,
    routes: Vec<&'k str>,
    methods: Vec<&'k str>,
    statuses: Vec<i16>,
    levels: Vec<&'k str>,
}

impl<'k> KeyArrays<'k> {
    fn of(keys: &[&'k HourKey]) -> KeyArrays<'k> {
        KeyArrays {
            starts: keys.iter().map(|key| to_datetime(key.start)).collect(),
            services: keys.iter().map(|key| key.service_id).collect(),
            routes: keys.iter().map(|key| &*key.route).collect(),
            methods: keys.iter().map(|key| &*key.method).collect(),
            statuses: keys.iter().map(|key| key.status).collect(),
            levels: keys.iter().map(|key| &*key.level).collect(),
        }
    }

    /// The start, service and kept dimensions' arrays, in the grain's column order.
    fn parameters(&self, grain: Grain) -> Vec<&(dyn ToSql + Sync)> {
        let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&self.starts, &self.services];
        for kept in grain.family.kept() {
            parameters.push(match kept {
                Kept::Route => &self.routes,
                Kept::Method => &self.methods,
                Kept::Status => &self.statuses,
                Kept::Level => &self.levels,
            });
        }
        parameters
    }
}

/// `time, service_id, route, ...`: the key columns of a grain.
pub(super) fn key_columns(grain: Grain) -> String {
    let mut columns = vec![grain.time_column(), "service_id"];
    columns.extend(grain.family.kept().iter().map(|kept| kept.column()));
    columns.join(", ")
}

/// `$1::timestamptz[], $2::integer[], ...`: the arrays of a grain's key columns.
fn key_array_types(grain: Grain) -> Vec<String> {
    let mut types = vec!["timestamptz".to_string(), "integer".to_string()];
    types.extend(
        grain
            .family
            .kept()
            .iter()
            .map(|kept| kept.sql_type().to_string()),
    );
    types
        .iter()
        .enumerate()
        .map(|(index, sql_type)| format!("${}::{sql_type}[]", index + 1))
        .collect()
}

/// The key of a grain's cell from a row whose columns from `first` on are
/// `key_columns(grain)`; returns it and the index of the next column.
pub(super) fn key_of_row(
    grain: Grain,
    row: &tokio_postgres::Row,
    first: usize,
) -> (HourKey, usize) {
    let mut key = HourKey {
        start: from_datetime(row.get(first)),
        service_id: row.get(first + 1),
        route: "".into(),
        method: "".into(),
        status: 0,
        level: "".into(),
    };
    let mut at = first + 2;
    for kept in grain.family.kept() {
        match kept {
            Kept::Route => key.route = row.get::<_, &str>(at).into(),
            Kept::Method => key.method = row.get::<_, &str>(at).into(),
            Kept::Status => key.status = row.get(at),
            Kept::Level => key.level = row.get::<_, &str>(at).into(),
        }
        at += 1;
    }
    (key, at)
}

/// Adds cells of one hour-like grain to its table: each cell's stored measures, read
/// first (under the rollup lock), plus the new ones.
async fn fold_grain(client: &Client, grain: Grain, cells: &HourCells) -> crate::Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    // The order every compactor writes rows in: the same rows are never locked the other
    // way round.
    let mut keys: Vec<&HourKey> = cells.keys().collect();
    keys.sort();
    let (table, columns) = (grain.table(), key_columns(grain));
    let arrays = KeyArrays::of(&keys);
    let key_parameters = arrays.parameters(grain);
    let existing = client
        .query(
            &format!(
                "SELECT {columns}, t.events, t.errors, t.latency FROM {table} t \
                 JOIN unnest({}) AS k({columns}) USING ({columns})",
                key_array_types(grain).join(", ")
            ),
            &key_parameters,
        )
        .await?;
    // Only the cells already stored are added up anew; the others are written as they are.
    let mut merged: HourCells = FxHashMap::default();
    for row in &existing {
        let (key, at) = key_of_row(grain, row, 0);
        if let Some(new) = cells.get(&key) {
            let mut measures = stored(row.get(at), row.get(at + 1), row.get(at + 2))?;
            measures.merge(new);
            merged.insert(key, measures);
        }
    }
    let measures: Vec<&Measures> = keys
        .iter()
        .map(|&key| merged.get(key).unwrap_or(&cells[key]))
        .collect();
    let latency: Vec<Latency> = measures.iter().map(|m| Latency::of(&m.latency)).collect();
    let events: Vec<i64> = measures.iter().map(|m| m.events as i64).collect();
    let errors: Vec<i64> = measures.iter().map(|m| m.errors as i64).collect();
    let counts: Vec<i64> = latency.iter().map(|l| l.count).collect();
    let sums: Vec<i64> = latency.iter().map(|l| l.sum).collect();
    let mins: Vec<Option<i32>> = latency.iter().map(|l| l.min).collect();
    let maxes: Vec<Option<i32>> = latency.iter().map(|l| l.max).collect();
    let p50s: Vec<Option<f32>> = latency.iter().map(|l| l.p50).collect();
    let p95s: Vec<Option<f32>> = latency.iter().map(|l| l.p95).collect();
    let p99s: Vec<Option<f32>> = latency.iter().map(|l| l.p99).collect();
    let sketches: Vec<&[u8]> = latency.iter().map(|l| l.sketch.as_slice()).collect();
    let mut parameters = key_parameters;
    let first = parameters.len() + 1;
    parameters.extend([
        &events as &(dyn ToSql + Sync),
        &errors,
        &counts,
        &sums,
        &mins,
        &maxes,
        &p50s,
        &p95s,
        &p99s,
        &sketches,
    ]);
    let mut types = key_array_types(grain);
    types.extend(
        [
            "bigint", "bigint", "bigint", "bigint", "integer", "integer", "real", "real", "real",
            "bytea",
        ]
        .iter()
        .enumerate()
        .map(|(index, sql_type)| format!("${}::{sql_type}[]", first + index)),
    );
    client
        .execute(
            &format!(
                "INSERT INTO {table} ({columns}, events, errors, latency_count, latency_sum, \
                     latency_min, latency_max, latency_p50, latency_p95, latency_p99, latency) \
                 SELECT * FROM unnest({}) \
                 ON CONFLICT ({columns}) DO UPDATE SET \
                     events = excluded.events, errors = excluded.errors, \
                     latency_count = excluded.latency_count, latency_sum = excluded.latency_sum, \
                     latency_min = excluded.latency_min, latency_max = excluded.latency_max, \
                     latency_p50 = excluded.latency_p50, latency_p95 = excluded.latency_p95, \
                     latency_p99 = excluded.latency_p99, latency = excluded.latency",
                types.join(", ")
            ),
            &parameters,
        )
        .await?;
    Ok(())
}

/// Hour-like cells by their key.
pub(super) type HourCells = FxHashMap<HourKey, Measures>;

/// The stored cells of an hour-like grain in [from, until).
pub(super) async fn stored_cells(
    client: &Client,
    grain: Grain,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<HourCells> {
    let (table, time, columns) = (grain.table(), grain.time_column(), key_columns(grain));
    let mut cells = HourCells::default();
    for row in client
        .query(
            &format!(
                "SELECT {columns}, events, errors, latency FROM {table} \
                 WHERE {time} >= $1 AND {time} < $2"
            ),
            &[&from, &until],
        )
        .await?
    {
        let (key, at) = key_of_row(grain, &row, 0);
        cells.insert(key, stored(row.get(at), row.get(at + 1), row.get(at + 2))?);
    }
    Ok(cells)
}

/// The stored cells of the minute grain in [from, until).
pub(super) async fn stored_minutes(
    client: &Client,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<FxHashMap<MinuteKey, Measures>> {
    let mut minutes = FxHashMap::default();
    for row in client
        .query(
            "SELECT minute, service_id, status_class, level, events, errors, latency \
             FROM logctl_rollup_minute WHERE minute >= $1 AND minute < $2",
            &[&from, &until],
        )
        .await?
    {
        let key = MinuteKey {
            minute: from_datetime(row.get(0)),
            service_id: row.get(1),
            status_class: row.get(2),
            level: row.get::<_, &str>(3).into(),
        };
        minutes.insert(key, stored(row.get(4), row.get(5), row.get(6))?);
    }
    Ok(minutes)
}

/// The measures of a stored cell.
pub(super) fn stored(events: i64, errors: i64, sketch: &[u8]) -> crate::Result<Measures> {
    Ok(Measures {
        events: events as u64,
        errors: errors as u64,
        latency: Sketch::decode(sketch)?,
    })
}
