//! Compaction: folds the rollup deltas that batches appended into the minute, hour and
//! day cells, a bounded number of deltas per transaction, under advisory locks so that
//! compactors (the end of every load, `logctl rollup compact` from cron) take turns in
//! each lane of services. Deltas and grains are merged by addition, and a step consumes
//! exactly the deltas it merged, in the same transaction: running it again, or beside
//! loads, changes nothing that is already folded in.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::rollup::{
    Cells, Delta, Detail, Detailed, Family, Grain, HourKey, Kept, Measures, MinuteKey, Width,
    encode_detail, merge_detail,
};
use super::sketch::Sketch;
use crate::db::{Isolation, locks, transaction};
use crate::pgtime::{from_datetime, to_datetime};

/// Deltas read per transaction: their cells stay in memory until it commits, in each
/// lane that is being folded.
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

/// Services are compacted in lanes (by service id), each under a lock of its own, so
/// that two connections fold two lanes at once, each on a thread of its own: lanes write
/// disjoint cells, since every grain is keyed by service.
pub const LANES: usize = locks::ROLLUP_LANES.len();

/// Folds every delta committed so far into the grains (those committed while it lists a
/// lane's services may wait for the next compaction); returns how many it folded, or
/// None when it did not wait for another compactor in some lane. With a `second`
/// connection, it folds every other lane there, on another thread (which needs a
/// multi-threaded runtime); without, the lanes one after the other.
pub async fn compact(
    client: &Client,
    second: Option<&Client>,
    wait: Wait,
) -> crate::Result<Option<u64>> {
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
    let clients: Vec<&Client> = std::iter::once(client).chain(second).collect();
    let share = |index: usize| {
        let client = clients[index];
        let lanes = (index..LANES).step_by(clients.len());
        async move {
            let mut folded = Vec::new();
            for lane in lanes {
                folded.push(compact_lane(client, lane, last, wait).await?);
            }
            Ok::<_, crate::Error>(folded.into_iter().sum::<Option<u64>>())
        }
    };
    let shares = match clients.len() {
        1 => vec![share(0).await],
        // The merging and encoding on the client is as much work as the server's: one
        // thread would fold the lanes' cells in turn. The threads borrow the
        // connections, so they are scoped, and block this worker meanwhile.
        _ => {
            let runtime = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| {
                std::thread::scope(|scope| {
                    let threads: Vec<_> = (0..clients.len())
                        .map(|index| {
                            let (runtime, share) = (&runtime, share(index));
                            scope.spawn(move || runtime.block_on(share))
                        })
                        .collect();
                    threads
                        .into_iter()
                        .map(|thread| {
                            thread.join().unwrap_or_else(|_| {
                                Err(crate::Error::Failed("a compaction thread panicked".into()))
                            })
                        })
                        .collect()
                })
            })
        }
    };
    // None from any lane makes the sum None.
    shares.into_iter().sum()
}

/// Folds a lane's deltas up to `last`, a step (one transaction) at a time; None when it
/// did not wait for another compactor.
async fn compact_lane(
    client: &Client,
    lane: usize,
    last: i64,
    wait: Wait,
) -> crate::Result<Option<u64>> {
    let lane_lock = locks::ROLLUP_LANES[lane];
    let mut pending = lane_services(client, lane, last).await?;
    let mut folded = 0;
    while !pending.is_empty() {
        let step_services = step_services(&pending);
        let step_services = &step_services;
        let step = transaction(client, Isolation::ReadCommitted, |client| async move {
            let locked: bool = match wait {
                Wait::Yes => {
                    client
                        .execute(
                            "SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)",
                            &[&locks::ROLLUPS, &lane_lock],
                        )
                        .await?;
                    true
                }
                Wait::No => client
                    .query_one(
                        "SELECT pg_try_advisory_xact_lock_shared($1) \
                         AND pg_try_advisory_xact_lock($2)",
                        &[&locks::ROLLUPS, &lane_lock],
                    )
                    .await?
                    .get(0),
            };
            if !locked {
                return Ok(None);
            }
            if conversion_pending(client).await? {
                return match wait {
                    // Readers count the deltas meanwhile; `logctl schema` folds them.
                    Wait::No => Ok(None),
                    Wait::Yes => Err(conversion_pending_error()),
                };
            }
            let rows = client
                .query(
                    // One service's deltas together: they share its cells, so that a step
                    // writes each of its hour and day cells once, where steps in time
                    // order rewrote a day's cells of every service at each step. Named
                    // services, so that the primary key finds them: a lane's condition
                    // on the id cannot, and every step read all the deltas left.
                    "SELECT service_id, delta_id, cells FROM logctl_rollup_deltas \
                     WHERE service_id = ANY($2) AND delta_id <= $3 \
                     ORDER BY service_id, delta_id LIMIT $1",
                    &[&DELTAS_PER_STEP, step_services, &last],
                )
                .await?;
            let read_all = rows.len() < DELTAS_PER_STEP as usize;
            let mut services: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
            let cut = whole_services(&services, read_all);
            // The service the next step starts from, when this one stopped at its limit:
            // the first one it left (or, for a service longer than a step, that one).
            let next = match services.get(cut) {
                _ if read_all => None,
                Some(&left) => Some(left),
                None => services.last().copied(),
            };
            services.truncate(cut);
            let rows = &rows[..services.len()];
            let ids: Vec<i64> = rows.iter().map(|row| row.get(1)).collect();
            let mut cells = Cells::default();
            for (row, &service_id) in rows.iter().zip(&services) {
                cells.merge_delta(service_id, row.get(2))?;
            }
            fold(client, &cells).await?;
            let deleted = client
                .execute(
                    "DELETE FROM logctl_rollup_deltas WHERE (service_id, delta_id) IN \
                     (SELECT * FROM unnest($1::integer[], $2::bigint[]))",
                    &[&services, &ids],
                )
                .await?;
            // Under the lane's lock nothing else deletes them; if something did, this
            // step must not count them again, so it is undone.
            if deleted != ids.len() as u64 {
                return Err(crate::Error::Failed(format!(
                    "compaction folded {} rollup deltas but found only {deleted} of them left \
                     to delete, so it undid that step; something other than logctl deletes \
                     rollup deltas: stop it, then run `logctl rollup compact` again",
                    ids.len()
                )));
            }
            Ok(Some((rows.len() as u64, next)))
        })
        .await?;
        let Some((step, next)) = step else {
            return Ok(None);
        };
        folded += step;
        match next {
            Some(next) => pending.retain(|&(service, _)| service >= next),
            None => {
                pending.drain(..step_services.len());
            }
        }
    }
    Ok(Some(folded))
}

/// The services of a lane with deltas up to `last`, in order, and how many each has.
async fn lane_services(client: &Client, lane: usize, last: i64) -> crate::Result<Vec<(i32, i64)>> {
    let (lanes, lane) = (LANES as i32, lane as i32);
    transaction(client, Isolation::ReadCommitted, |client| async move {
        Ok(client
            .query(
                "SELECT service_id, count(*) FROM logctl_rollup_deltas \
                 WHERE delta_id <= $1 AND abs(service_id % $2) = $3 \
                 GROUP BY service_id ORDER BY service_id",
                &[&last, &lanes, &lane],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    })
    .await
}

/// The services a step reads: the first pending one, and those after it while their
/// deltas (as counted when the compaction began) fit in a step together.
fn step_services(pending: &[(i32, i64)]) -> Vec<i32> {
    let mut deltas = 0;
    pending
        .iter()
        .enumerate()
        .take_while(|&(index, &(_, count))| {
            deltas += count;
            index == 0 || deltas < DELTAS_PER_STEP
        })
        .map(|(_, &(service, _))| service)
        .collect()
}

/// How many of a step's deltas (ordered by service) to fold: those of the services it
/// read whole. The last service's may go on past the step's limit, unless the step read
/// every delta left, and are left to the next step, which then writes that service's
/// cells once; a service with more deltas than a step reads is folded over several.
fn whole_services(services: &[i32], read_all: bool) -> usize {
    let Some(&last) = services.last().filter(|_| !read_all) else {
        return services.len();
    };
    match services.partition_point(|&service| service < last) {
        0 => services.len(),
        before => before,
    }
}

/// Whether `logctl schema` has still to convert the rollups an older logctl stored (the
/// marker of migration 011). Until it has, nothing may write the grains: the conversion
/// replaces the days it converts, and would undo what was folded in since.
pub(super) async fn conversion_pending(client: &Client) -> crate::Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM logctl_settings WHERE key = 'pack_rollup_details')",
            &[],
        )
        .await?
        .get(0))
}

/// The refusal to write the grains before the conversion.
pub(super) fn conversion_pending_error() -> crate::Error {
    crate::Error::Failed(
        "the rollups of an older logctl are not converted yet; run `logctl schema`, which \
         converts them, then this again"
            .into(),
    )
}

/// Derives every grain from the tables that held the fine and minute cells as rows
/// before migration 011, when it left its marker, then drops those tables: the route
/// cells with their fine cells as detail, the minute totals with their minute cells, and
/// the other grains (older migrations' derived grains among them) recomputed from the
/// same cells. Returns for how many days, when there was something to derive. Under the
/// rollup lock, in one transaction with the marker, so a failed run is done again by
/// the next `logctl schema`.
pub async fn derive_pending_grains(
    client: &Client,
    distributed: bool,
) -> crate::Result<Option<u64>> {
    transaction(client, Isolation::ReadCommitted, |client| async move {
        if distributed {
            // Citus drops a distributed table over one connection per worker, and refuses
            // to once anything in the transaction ran over several (as the migrations).
            client
                .batch_execute("SET LOCAL citus.multi_shard_modify_mode TO sequential")
                .await?;
        }
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::ROLLUPS])
            .await?;
        let pending = client
            .execute(
                "DELETE FROM logctl_settings WHERE key = 'pack_rollup_details'",
                &[],
            )
            .await?;
        if pending == 0 {
            return Ok(None);
        }
        let days: Vec<DateTime<Utc>> = client
            .query(
                "SELECT date_bin('1 day', minute, TIMESTAMPTZ '2000-01-01Z') \
                 FROM logctl_rollup_minute \
                 UNION SELECT date_bin('1 day', hour, TIMESTAMPTZ '2000-01-01Z') \
                 FROM logctl_rollup_hour \
                 UNION SELECT day FROM logctl_rollup_day ORDER BY 1",
                &[],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for &day in &days {
            let until = day + chrono::TimeDelta::days(1);
            let by_hour = Cells {
                minutes: legacy_minutes(client, day, until).await?,
                hours: legacy_fine_cells(client, "logctl_rollup_hour", "hour", day, until).await?,
            };
            let by_day = Cells {
                minutes: FxHashMap::default(),
                hours: legacy_fine_cells(client, "logctl_rollup_day", "day", day, until).await?,
            };
            for grain in Grain::ALL {
                delete_cells(client, grain, day, until).await?;
                let cells = if grain.width == Width::Day {
                    &by_day
                } else {
                    &by_hour
                };
                let details = grain.packs_detail().then(|| grain.details_of(cells));
                let grain_cells = match &details {
                    Some(details) => summed(details),
                    None => grain.cells_of(cells).into_owned(),
                };
                fold_grain(client, grain, &grain_cells, details.as_ref()).await?;
            }
        }
        client
            .batch_execute("DROP TABLE logctl_rollup_minute, logctl_rollup_hour, logctl_rollup_day")
            .await?;
        Ok(Some(days.len() as u64))
    })
    .await
}

/// The cells of a table that held fine cells as rows before migration 011, in
/// [from, until).
async fn legacy_fine_cells(
    client: &Client,
    table: &str,
    time: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<HourCells> {
    let mut cells = HourCells::default();
    for row in client
        .query(
            &format!(
                "SELECT {time}, service_id, route, method, status, level, events, errors, latency \
                 FROM {table} WHERE {time} >= $1 AND {time} < $2"
            ),
            &[&from, &until],
        )
        .await?
    {
        let key = HourKey {
            start: from_datetime(row.get(0)),
            service_id: row.get(1),
            route: row.get::<_, &str>(2).into(),
            method: row.get::<_, &str>(3).into(),
            status: row.get(4),
            level: row.get::<_, &str>(5).into(),
        };
        cells.insert(key, stored(row.get(6), row.get(7), row.get(8))?);
    }
    Ok(cells)
}

/// The cells of the table that held the minute cells as rows before migration 011.
async fn legacy_minutes(
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

/// Deletes a grain's cells in [from, until), with their details.
pub(super) async fn delete_cells(
    client: &Client,
    grain: Grain,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<()> {
    let time = grain.time_column();
    let detail = grain.packs_detail().then(|| grain.detail_table());
    for table in std::iter::once(grain.table()).chain(detail) {
        client
            .execute(
                &format!("DELETE FROM {table} WHERE {time} >= $1 AND {time} < $2"),
                &[&from, &until],
            )
            .await?;
    }
    Ok(())
}

/// Adds cells to every grain, in the caller's transaction (which holds the rollup lock).
/// Each grain's cells are summed from the nearest finer grain's rather than all from the
/// fine cells, which merges each fine cell's sketch four times instead of ten; `rollup
/// verify` sums every grain from the fine cells, so it checks this the other way.
/// The statements of several grains are sent together, so that the server runs some
/// while the client merges the stored cells others read: the route grains, whose
/// details hold about as many cells as the fine cells, then the others, so that memory
/// holds only one of those two sets of grains at a time (a rebuild folds a whole day).
pub(super) async fn fold(client: &Client, cells: &Cells) -> crate::Result<()> {
    let grain = Grain::new;
    let (route_hour, route_day) = (
        grain(Family::Route, Width::Hour),
        grain(Family::Route, Width::Day),
    );
    let hour_details = route_hour.details_of(cells);
    let route_hours = summed(&hour_details);
    let day_details = route_day.details_from(&hour_details);
    let route_days = route_day.cells_from(&route_hours);
    fold_together([
        fold_grain(client, route_hour, &route_hours, Some(&hour_details)),
        fold_grain(client, route_day, &route_days, Some(&day_details)),
    ])
    .await?;
    drop((hour_details, route_hours, day_details, route_days));

    let minute_details = grain(Family::Total, Width::Minute).details_of(cells);
    let total_minutes = summed(&minute_details);
    let service_hours = grain(Family::Service, Width::Hour).cells_from(&cells.hours);
    let service_days = grain(Family::Service, Width::Day).cells_from(&service_hours);
    let total_hours = grain(Family::Total, Width::Hour).cells_from(&service_hours);
    let total_days = grain(Family::Total, Width::Day).cells_from(&total_hours);
    let others = [
        (
            Family::Total,
            Width::Minute,
            &total_minutes,
            Some(&minute_details),
        ),
        (Family::Service, Width::Hour, &service_hours, None),
        (Family::Service, Width::Day, &service_days, None),
        (Family::Total, Width::Hour, &total_hours, None),
        (Family::Total, Width::Day, &total_days, None),
    ];
    fold_together(others.map(|(family, width, cells, details)| {
        fold_grain(client, grain(family, width), cells, details)
    }))
    .await
}

/// Runs folds of grains on one connection together. When one fails, the others fail
/// after it only because the transaction is aborted: its error is the one returned, so
/// that a conflict is still seen as one (and retried).
async fn fold_together(
    folds: impl IntoIterator<Item = impl Future<Output = crate::Result<()>>>,
) -> crate::Result<()> {
    let mut errors: Vec<crate::Error> = futures_util::future::join_all(folds)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    match errors.iter().position(|error| !error.follows_another()) {
        Some(cause) => Err(errors.swap_remove(cause)),
        None => errors.into_iter().next().map_or(Ok(()), Err),
    }
}

/// The cells of a grain that packs details: each the sum of its detail.
fn summed(details: &Detailed) -> HourCells {
    details
        .iter()
        .map(|(key, detail)| {
            let mut measures = Measures::default();
            for cell in detail.values() {
                measures.merge(cell);
            }
            (key.clone(), measures)
        })
        .collect()
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

/// Adds cells of one grain to its table (and their details, for a grain that packs
/// them, to its detail table).
async fn fold_grain(
    client: &Client,
    grain: Grain,
    cells: &HourCells,
    details: Option<&Detailed>,
) -> crate::Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    // The order every compactor writes rows in: the same rows are never locked the other
    // way round.
    let mut keys: Vec<&HourKey> = cells.keys().collect();
    keys.sort();
    fold_part(client, grain, &keys, CellsPart(cells)).await?;
    match details {
        Some(details) => fold_part(client, grain, &keys, DetailsPart(details)).await,
        None => Ok(()),
    }
}

/// One table of a grain that `fold_grain` writes: its cells, or their details.
trait Part {
    /// What one row holds, as written.
    type Value;
    /// The stored columns after the key's.
    const STORED: &'static str;
    fn table(grain: Grain) -> &'static str;
    /// A new cell's row.
    fn fresh(&self, key: &HourKey) -> Self::Value;
    /// A stored row (its columns from `at` on) plus the new cell's.
    fn merged(
        &self,
        grain: Grain,
        key: &HourKey,
        row: &tokio_postgres::Row,
        at: usize,
    ) -> crate::Result<Self::Value>;
    /// Writes rows; returns what `upsert` does.
    async fn write(
        client: &Client,
        grain: Grain,
        keys: &[&HourKey],
        values: Vec<Self::Value>,
        conflict: Conflict,
    ) -> crate::Result<Vec<usize>>;
}

/// Adds the rows of `keys` to a part of a grain. Most cells a compaction writes are new
/// (a load's minutes and hours exist nowhere yet), so all are first inserted as they
/// are, skipping those already stored; only those are then read (under the rollup
/// lock), added to, and replaced.
async fn fold_part<P: Part>(
    client: &Client,
    grain: Grain,
    keys: &[&HourKey],
    part: P,
) -> crate::Result<()> {
    let values = keys.iter().map(|&key| part.fresh(key)).collect();
    let stored = P::write(client, grain, keys, values, Conflict::Skip).await?;
    if stored.is_empty() {
        return Ok(());
    }
    let keys = stored
        .iter()
        .map(|&index| {
            keys.get(index)
                .copied()
                .ok_or_else(|| unexpected_row(grain))
        })
        .collect::<crate::Result<Vec<&HourKey>>>()?;
    let rows = read_stored(client, grain, P::table(grain), P::STORED, &keys).await?;
    // Under the lane's lock the rows the insert skipped stay: each must be added to.
    if rows.len() != keys.len() {
        return Err(unexpected_row(grain));
    }
    let mut merged = Vec::new();
    for row in &rows {
        let (key, at) = key_of_row(grain, row, 0);
        let value = part.merged(grain, &key, row, at)?;
        merged.push((key, value));
    }
    merged.sort_by(|(one, _), (other, _)| one.cmp(other));
    let (keys, values): (Vec<HourKey>, Vec<P::Value>) = merged.into_iter().unzip();
    let keys: Vec<&HourKey> = keys.iter().collect();
    P::write(client, grain, &keys, values, Conflict::Replace).await?;
    Ok(())
}

/// A step found a grain's rows other than it left them: undone rather than counted
/// wrong. (A panic would leave the step's transaction open, holding the locks.)
fn unexpected_row(grain: Grain) -> crate::Error {
    crate::Error::Failed(format!(
        "compaction found rows of {} it did not expect, so it undid that step; something \
         other than logctl writes the rollups: stop it, then run `logctl rollup compact` again",
        grain.table()
    ))
}

/// A grain's cells, with their counts, latency columns and sketch.
struct CellsPart<'c>(&'c HourCells);

impl<'c> Part for CellsPart<'c> {
    type Value = Cow<'c, Measures>;
    const STORED: &'static str = "events, errors, latency";

    fn table(grain: Grain) -> &'static str {
        grain.table()
    }

    fn fresh(&self, key: &HourKey) -> Self::Value {
        Cow::Borrowed(&self.0[key])
    }

    fn merged(
        &self,
        grain: Grain,
        key: &HourKey,
        row: &tokio_postgres::Row,
        at: usize,
    ) -> crate::Result<Self::Value> {
        let mut measures = stored(row.get(at), row.get(at + 1), row.get(at + 2))?;
        measures.merge(self.0.get(key).ok_or_else(|| unexpected_row(grain))?);
        Ok(Cow::Owned(measures))
    }

    async fn write(
        client: &Client,
        grain: Grain,
        keys: &[&HourKey],
        values: Vec<Self::Value>,
        conflict: Conflict,
    ) -> crate::Result<Vec<usize>> {
        write_cells(client, grain, keys, &values, conflict).await
    }
}

/// The details of a grain's cells, encoded.
struct DetailsPart<'d>(&'d Detailed);

impl Part for DetailsPart<'_> {
    type Value = Vec<u8>;
    const STORED: &'static str = "detail";

    fn table(grain: Grain) -> &'static str {
        grain.detail_table()
    }

    fn fresh(&self, key: &HourKey) -> Self::Value {
        encode_detail(&self.0[key])
    }

    fn merged(
        &self,
        grain: Grain,
        key: &HourKey,
        row: &tokio_postgres::Row,
        at: usize,
    ) -> crate::Result<Self::Value> {
        let mut detail = self
            .0
            .get(key)
            .ok_or_else(|| unexpected_row(grain))?
            .clone();
        merge_detail(&mut detail, row.get(at))?;
        Ok(encode_detail(&detail))
    }

    async fn write(
        client: &Client,
        grain: Grain,
        keys: &[&HourKey],
        values: Vec<Self::Value>,
        conflict: Conflict,
    ) -> crate::Result<Vec<usize>> {
        let arrays = KeyArrays::of(keys);
        let mut parameters = arrays.parameters(grain);
        parameters.push(&values);
        upsert(
            client,
            grain,
            grain.detail_table(),
            &[("detail", "bytea")],
            &parameters,
            conflict,
        )
        .await
    }
}

/// The stored rows among `keys` of a grain's `table`: key columns, then `measures`.
async fn read_stored(
    client: &Client,
    grain: Grain,
    table: &str,
    measures: &str,
    keys: &[&HourKey],
) -> crate::Result<Vec<tokio_postgres::Row>> {
    let columns = key_columns(grain);
    let arrays = KeyArrays::of(keys);
    Ok(client
        .query(
            &format!(
                "SELECT {columns}, {measures} FROM {table} \
                 JOIN unnest({}) AS k({columns}) USING ({columns})",
                key_array_types(grain).join(", ")
            ),
            &arrays.parameters(grain),
        )
        .await?)
}

/// Writes cells of a grain into its table; returns what `upsert` does.
async fn write_cells(
    client: &Client,
    grain: Grain,
    keys: &[&HourKey],
    measures: &[Cow<'_, Measures>],
    conflict: Conflict,
) -> crate::Result<Vec<usize>> {
    let arrays = KeyArrays::of(keys);
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
    let mut parameters = arrays.parameters(grain);
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
    upsert(
        client,
        grain,
        grain.table(),
        &[
            ("events", "bigint"),
            ("errors", "bigint"),
            ("latency_count", "bigint"),
            ("latency_sum", "bigint"),
            ("latency_min", "integer"),
            ("latency_max", "integer"),
            ("latency_p50", "real"),
            ("latency_p95", "real"),
            ("latency_p99", "real"),
            ("latency", "bytea"),
        ],
        &parameters,
        conflict,
    )
    .await
}

/// What a write does with a row whose key is already stored.
#[derive(Debug, Clone, Copy)]
enum Conflict {
    /// Leaves it as it is, and tells which it was.
    Skip,
    /// Replaces its columns.
    Replace,
}

/// Writes rows of a grain's keys into `table`, doing with those that exist what
/// `conflict` says; `parameters` are the key arrays, then one array per column. Returns
/// the indexes of the rows it skipped (none when it replaces).
async fn upsert(
    client: &Client,
    grain: Grain,
    table: &str,
    columns: &[(&str, &str)],
    parameters: &[&(dyn ToSql + Sync)],
    conflict: Conflict,
) -> crate::Result<Vec<usize>> {
    let keys = key_columns(grain);
    let mut types = key_array_types(grain);
    let first = types.len() + 1;
    types.extend(
        columns
            .iter()
            .enumerate()
            .map(|(index, (_, sql_type))| format!("${}::{sql_type}[]", first + index)),
    );
    let (names, types) = (
        columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", "),
        types.join(", "),
    );
    match conflict {
        // The rows the insert skipped are the new ones it did not return.
        Conflict::Skip => Ok(client
            .query(
                &format!(
                    "WITH k AS MATERIALIZED (SELECT * FROM unnest({types}) WITH ORDINALITY \
                                             AS k({keys}, {names}, ordinal)), \
                          inserted AS (INSERT INTO {table} ({keys}, {names}) \
                                       SELECT {keys}, {names} FROM k \
                                       ON CONFLICT ({keys}) DO NOTHING RETURNING {keys}) \
                     SELECT k.ordinal FROM k LEFT JOIN inserted USING ({keys}) \
                     WHERE inserted.service_id IS NULL"
                ),
                parameters,
            )
            .await?
            .iter()
            .map(|row| row.get::<_, i64>(0) as usize - 1)
            .collect()),
        Conflict::Replace => {
            let updates: Vec<String> = columns
                .iter()
                .map(|(name, _)| format!("{name} = excluded.{name}"))
                .collect();
            client
                .execute(
                    &format!(
                        "INSERT INTO {table} ({keys}, {names}) SELECT * FROM unnest({types}) \
                         ON CONFLICT ({keys}) DO UPDATE SET {}",
                        updates.join(", ")
                    ),
                    parameters,
                )
                .await?;
            Ok(Vec::new())
        }
    }
}

/// Hour-like cells by their key.
pub(super) type HourCells = FxHashMap<HourKey, Measures>;

/// The stored cells of an hour-like grain in [from, until); a fine grain's are read from
/// its route grain's details.
pub(super) async fn stored_cells(
    client: &Client,
    grain: Grain,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<HourCells> {
    let stored_in = grain.stored_in();
    let (time, columns) = (stored_in.time_column(), key_columns(stored_in));
    let fine = grain.family == Family::Fine;
    let (table, measures) = if fine {
        (stored_in.detail_table(), "detail")
    } else {
        (grain.table(), "events, errors, latency")
    };
    let mut cells = HourCells::default();
    for row in client
        .query(
            &format!(
                "SELECT {columns}, {measures} FROM {table} WHERE {time} >= $1 AND {time} < $2"
            ),
            &[&from, &until],
        )
        .await?
    {
        let (key, at) = key_of_row(stored_in, &row, 0);
        if !fine {
            cells.insert(key, stored(row.get(at), row.get(at + 1), row.get(at + 2))?);
            continue;
        }
        let mut detail = Detail::default();
        merge_detail(&mut detail, row.get(at))?;
        for (fine, measures) in detail {
            let fine_key = HourKey {
                method: fine.method,
                status: fine.status,
                level: fine.level,
                ..key.clone()
            };
            cells.insert(fine_key, measures);
        }
    }
    Ok(cells)
}

/// The stored minute cells in [from, until): the details of the minute totals.
pub(super) async fn stored_minutes(
    client: &Client,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<FxHashMap<MinuteKey, Measures>> {
    let mut minutes = FxHashMap::default();
    for row in client
        .query(
            "SELECT minute, service_id, detail FROM logctl_rollup_total_minute_detail \
             WHERE minute >= $1 AND minute < $2",
            &[&from, &until],
        )
        .await?
    {
        let mut detail = Detail::default();
        merge_detail(&mut detail, row.get(2))?;
        for (cell, measures) in detail {
            let key = MinuteKey {
                minute: from_datetime(row.get(0)),
                service_id: row.get(1),
                status_class: cell.status,
                level: cell.level,
            };
            minutes.insert(key, measures);
        }
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

#[cfg(test)]
mod tests {
    use super::{DELTAS_PER_STEP, step_services, whole_services};

    #[test]
    fn a_step_reads_whole_services_that_fit_together_or_one() {
        let step = DELTAS_PER_STEP;
        assert_eq!(step_services(&[(1, 10), (2, 20), (3, step)]), [1, 2]);
        // The first alone, when it has more than a step: read over several.
        assert_eq!(step_services(&[(4, 3 * step), (5, 1)]), [4]);
        // Exactly a step's worth would leave the last one's deltas in doubt.
        assert_eq!(step_services(&[(1, step / 2), (2, step / 2)]), [1]);
        assert!(step_services(&[]).is_empty());
    }

    #[test]
    fn a_step_folds_the_services_it_read_whole() {
        // The last service may go on: left to the next step.
        assert_eq!(whole_services(&[1, 1, 2, 3, 3], false), 3);
        // Unless it is the only one: more deltas than a step, folded over several.
        assert_eq!(whole_services(&[4, 4, 4], false), 3);
        // Every delta left was read: all of it.
        assert_eq!(whole_services(&[1, 1, 2, 3, 3], true), 5);
        assert_eq!(whole_services(&[], true), 0);
    }
}
