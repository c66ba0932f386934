//! Rollups from the raw rows: `logctl rollup rebuild` recomputes the cells of a range of
//! days (for a database loaded before rollups existed, or after rows were deleted by
//! hand), and `logctl rollup verify` recomputes them and compares them with what is
//! stored, compacted or pending. Both stream the rows a day at a time, so memory holds
//! one day's cells, never its rows, and both read rows and deltas from one snapshot, in
//! which a row is visible exactly when its batch's delta is.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use rustc_hash::FxHashMap;
use tokio_postgres::Client;

use super::compact::{
    HourCells, conversion_pending, conversion_pending_error, delete_cells, fold, stored_cells,
    stored_minutes,
};
use super::rollup::{
    Cells, DAY, Family, Grain, HourKey, Kept, Measures, MinuteKey, Row, bucket_of,
};
use super::routes::RouteTemplater;
use crate::db::transaction::pin_long_transaction;
use crate::db::{Isolation, locks, retention, transaction};
use crate::pgtime::{from_datetime, to_datetime};

/// The whole days that hold [from, until): rollups are rebuilt and checked by day, since
/// a day cell sums all of its day.
pub fn days(from: DateTime<Utc>, until: DateTime<Utc>) -> (i64, i64) {
    let start = bucket_of(from_datetime(from), DAY);
    let end = bucket_of(from_datetime(until) + DAY - 1, DAY);
    (start, end.max(start + DAY))
}

/// The days in [start, end) that hold raw rows or rollups of any grain, in order: the
/// others have nothing to rebuild or check. Days `logctl prune` took raw rows from
/// are left out: their rollups outlive the rows on purpose.
async fn days_with_data(client: &Client, start: i64, end: i64) -> crate::Result<Vec<i64>> {
    let start = match retention::raw_rows_kept_from(client).await? {
        Some(kept_from) => start.max(bucket_of(from_datetime(kept_from) + DAY - 1, DAY)),
        None => start,
    };
    if start >= end {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "WITH days AS ( \
                 SELECT date_bin('1 day', created_at, TIMESTAMPTZ '2000-01-01Z') AS day \
                 FROM log_events WHERE created_at >= $1 AND created_at < $2 \
                 UNION SELECT date_bin('1 day', minute, TIMESTAMPTZ '2000-01-01Z') \
                 FROM logctl_rollup_total_minute WHERE minute >= $1 AND minute < $2 \
                 UNION SELECT date_bin('1 day', hour, TIMESTAMPTZ '2000-01-01Z') \
                 FROM logctl_rollup_total_hour WHERE hour >= $1 AND hour < $2 \
                 UNION SELECT day FROM logctl_rollup_total_day WHERE day >= $1 AND day < $2 \
                 UNION SELECT date_bin('1 day', d, TIMESTAMPTZ '2000-01-01Z') \
                 FROM logctl_rollup_deltas, \
                      generate_series(first_minute, last_minute, '1 day') AS d \
                 WHERE last_minute >= $1 AND first_minute < $2 \
                 UNION SELECT date_bin('1 day', last_minute, TIMESTAMPTZ '2000-01-01Z') \
                 FROM logctl_rollup_deltas WHERE last_minute >= $1 AND first_minute < $2) \
             SELECT day FROM days WHERE day >= $1 AND day < $2 ORDER BY day",
            &[&to_datetime(start), &to_datetime(end)],
        )
        .await?;
    Ok(rows.iter().map(|row| from_datetime(row.get(0))).collect())
}

/// Recomputes the rollups of the days that hold [from, until) from the raw rows, in one
/// transaction that first folds every pending delta, so that nothing is counted twice;
/// returns the number of days. That transaction reads and writes from one snapshot,
/// which it takes only once `guard` holds the rollup lock for it: a snapshot taken
/// while waiting for the lock would miss the deltas a compaction step deleted
/// meanwhile, and the rebuild would be rolled back for it for as long as a compaction
/// went on.
pub async fn rebuild(
    client: &Client,
    guard: &Client,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<u64> {
    let (start, end) = days(from, until);
    let guarding = AtomicBool::new(false);
    let guarding = &guarding;
    let rebuilt = transaction(client, Isolation::SnapshotWrites, |client| async move {
        // The rebuild's BEGIN comes first, and takes no snapshot: behind a transaction
        // pooler it holds a server connection before the lock is taken, so that a
        // full pool of compaction steps waiting for the lock cannot keep it from one.
        // The guard keeps the lock over every try.
        if !guarding.swap(true, Ordering::SeqCst) {
            // This transaction idles while the guard waits; a SET takes no snapshot.
            client
                .batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")
                .await?;
            hold_rollup_lock(guard).await?;
        }
        if conversion_pending(client).await? {
            return Err(conversion_pending_error());
        }
        fold_every_delta(client).await?;
        let templater = RouteTemplater::default();
        let days = days_with_data(client, start, end).await?;
        for &day in &days {
            let (from, until) = (to_datetime(day), to_datetime(day + DAY));
            for grain in Grain::ALL {
                delete_cells(client, grain, from, until).await?;
            }
            fold(client, &cells_from_rows(client, day, &templater).await?).await?;
        }
        // A lost guard connection takes the lock with it, and a compaction step could
        // then read a cell before this commits and write it back after.
        let unguarded: bool = client
            .query_one(
                "SELECT pg_try_advisory_xact_lock_shared($1)",
                &[&locks::ROLLUPS],
            )
            .await?
            .get(0);
        if unguarded {
            return Err(crate::Error::Failed(
                "the connection that held the rollup lock for this rebuild was lost, so the \
                 rebuild was undone; run it again"
                    .into(),
            ));
        }
        Ok(days.len() as u64)
    })
    .await;
    if guarding.load(Ordering::SeqCst) {
        // After the rebuild's commit, which the lock covered. The guard wrote nothing,
        // and the rebuild is done whether this reaches the server or not.
        let _ = guard.batch_execute("ROLLBACK").await;
    }
    rebuilt
}

/// Takes the rollup lock exclusively on `guard`, in a transaction that it leaves open,
/// freed from the server's timeouts, for as long as the rebuild runs.
async fn hold_rollup_lock(guard: &Client) -> crate::Result<()> {
    guard
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await?;
    pin_long_transaction(guard).await?;
    guard
        .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::ROLLUPS])
        .await?;
    Ok(())
}

/// Folds every pending delta, in the caller's transaction.
async fn fold_every_delta(client: &Client) -> crate::Result<()> {
    let rows = client
        .query(
            "DELETE FROM logctl_rollup_deltas RETURNING service_id, cells",
            &[],
        )
        .await?;
    let mut cells = Cells::default();
    for row in &rows {
        cells.merge_delta(row.get(0), row.get(1))?;
    }
    fold(client, &cells).await
}

/// A difference between the rollups stored and the raw rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub cell: String,
    pub stored: String,
    pub from_rows: String,
}

/// Recomputes the rollups of the days that hold [from, until) from the raw rows and
/// compares them with the stored ones (compacted cells and pending deltas together);
/// returns the days compared and every cell that differs.
pub async fn verify(
    client: &Client,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> crate::Result<(u64, Vec<Difference>)> {
    let (start, end) = days(from, until);
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let verified = async {
        let templater = RouteTemplater::default();
        let mut differences = Vec::new();
        let days = days_with_data(client, start, end).await?;
        for &day in &days {
            let expected = cells_from_rows(client, day, &templater).await?;
            let found = stored_cells_of_day(client, day).await?;
            compare_minutes(&expected, &found.minutes, &mut differences);
            for (grain, found) in Grain::ALL.iter().chain(&Grain::FINE).zip(&found.grains) {
                compare_grain(*grain, &grain.cells_of(&expected), found, &mut differences);
            }
        }
        crate::Result::Ok((days.len() as u64, differences))
    }
    .await;
    let _ = client.batch_execute("ROLLBACK").await;
    verified
}

/// The cells of one day's raw rows. Rows loaded before routes existed have none: theirs
/// is their endpoint templated with the default rules.
async fn cells_from_rows(
    client: &Client,
    day: i64,
    templater: &RouteTemplater,
) -> crate::Result<Cells> {
    let (from, until) = (to_datetime(day), to_datetime(day + DAY));
    let rows = client
        .query_raw(
            "SELECT created_at, service_id, level, method, status, latency_ms, route, endpoint \
             FROM log_events WHERE created_at >= $1 AND created_at < $2",
            [&from as &(dyn tokio_postgres::types::ToSql + Sync), &until],
        )
        .await?;
    futures_util::pin_mut!(rows);
    let mut cells = Cells::default();
    while let Some(row) = rows.try_next().await? {
        let route: Option<&str> = row.get(6);
        let endpoint: Option<&str> = row.get(7);
        let templated = match (route, endpoint) {
            (None, Some(endpoint)) => Some(templater.template(endpoint)),
            _ => None,
        };
        cells.add(&Row {
            created_at: from_datetime(row.get(0)),
            service_id: row.get(1),
            level: row.get(2),
            method: row.get(3),
            status: row.get(4),
            latency_ms: row.get(5),
            route: route.or(templated.as_deref()),
        });
    }
    Ok(cells)
}

/// What is stored for one day, compacted and pending together.
struct StoredDay {
    minutes: FxHashMap<MinuteKey, Measures>,
    /// The cells of each grain of `Grain::ALL`, then of `Grain::FINE`, in their order.
    grains: Vec<HourCells>,
}

/// The stored cells of one day: every grain's compacted cells with the pending deltas'
/// cells added to each (a delta's hour cells count towards every grain).
async fn stored_cells_of_day(client: &Client, day: i64) -> crate::Result<StoredDay> {
    let (from, until) = (to_datetime(day), to_datetime(day + DAY));
    let mut pending = Cells::default();
    for row in client
        .query(
            "SELECT service_id, cells FROM logctl_rollup_deltas \
             WHERE last_minute >= $1 AND first_minute < $2",
            &[&from, &until],
        )
        .await?
    {
        pending.merge_delta(row.get(0), row.get(1))?;
    }
    pending
        .minutes
        .retain(|key, _| (day..day + DAY).contains(&key.minute));
    pending
        .hours
        .retain(|key, _| (day..day + DAY).contains(&key.start));
    let mut minutes = stored_minutes(client, from, until).await?;
    for (key, measures) in &pending.minutes {
        minutes.entry(key.clone()).or_default().merge(measures);
    }
    let mut grains = Vec::with_capacity(Grain::ALL.len() + Grain::FINE.len());
    for grain in Grain::ALL.into_iter().chain(Grain::FINE) {
        let mut cells = stored_cells(client, grain, from, until).await?;
        for (key, measures) in grain.cells_of(&pending).iter() {
            cells.entry(key.clone()).or_default().merge(measures);
        }
        grains.push(cells);
    }
    Ok(StoredDay { minutes, grains })
}

fn describe(measures: Option<&Measures>) -> String {
    match measures {
        None => "nothing".to_string(),
        Some(m) => format!(
            "{} events, {} errors, {} latencies summing to {} ms",
            m.events,
            m.errors,
            m.latency.count(),
            m.latency.sum()
        ),
    }
}

/// Every minute cell whose measures differ, in either direction.
fn compare_minutes(
    expected: &Cells,
    found: &FxHashMap<MinuteKey, Measures>,
    differences: &mut Vec<Difference>,
) {
    let mut minutes: Vec<&MinuteKey> = expected.minutes.keys().chain(found.keys()).collect();
    minutes.sort();
    minutes.dedup();
    for key in minutes {
        let (want, have) = (expected.minutes.get(key), found.get(key));
        if want != have {
            differences.push(Difference {
                cell: format!(
                    "minute {} service {} status class {} level {:?}",
                    to_datetime(key.minute),
                    key.service_id,
                    key.status_class,
                    key.level
                ),
                stored: describe(have),
                from_rows: describe(want),
            });
        }
    }
}

/// Every cell of an hour-like grain whose measures differ, in either direction.
fn compare_grain(
    grain: Grain,
    expected: &HourCells,
    found: &HourCells,
    differences: &mut Vec<Difference>,
) {
    let mut keys: Vec<&HourKey> = expected.keys().chain(found.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (want, have) = (expected.get(key), found.get(key));
        if want != have {
            differences.push(Difference {
                cell: describe_cell(grain, key),
                stored: describe(have),
                from_rows: describe(want),
            });
        }
    }
}

/// `service hour 2026-11-24 10:00:00 UTC service 3 method "GET" ...`: the grain, its
/// bucket and the dimensions it keeps.
fn describe_cell(grain: Grain, key: &HourKey) -> String {
    let family = match grain.family {
        Family::Fine => "",
        Family::Service => "service ",
        Family::Route => "route ",
        Family::Total => "total ",
    };
    let mut text = format!(
        "{family}{} {} service {}",
        grain.time_column(),
        to_datetime(key.start),
        key.service_id
    );
    for kept in grain.family.kept() {
        let value = match kept {
            Kept::Route => format!("{:?}", key.route),
            Kept::Method => format!("{:?}", key.method),
            Kept::Status => key.status.to_string(),
            Kept::Level => format!("{:?}", key.level),
        };
        text.push_str(&format!(" {} {value}", kept.column()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_range_is_widened_to_the_whole_days_that_hold_it() {
        let (start, end) = days(at("2026-11-24T10:00:00Z"), at("2026-11-25T00:00:01Z"));
        assert_eq!(to_datetime(start), at("2026-11-24T00:00:00Z"));
        assert_eq!(to_datetime(end), at("2026-11-26T00:00:00Z"));
        let (start, end) = days(at("2026-11-24T00:00:00Z"), at("2026-11-24T00:00:00Z"));
        assert_eq!(end - start, DAY, "at least one day");
    }
}
