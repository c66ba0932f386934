//! Retention: removing events older than a cutoff. A partitioned table loses whole
//! partitions (detached without blocking loads into the others, then dropped); a plain
//! table is deleted from in small batches, so no transaction grows huge and loads go on.
//! The rollups outlive the rows they count: the grains of each width (minute, hour, day)
//! are kept for its own period (`keep_rollup_minute|hour|day` in logctl_settings, or
//! `--keep-rollups`), and the cutoff of the raw rows is recorded, so that rebuilding or
//! checking rollups from raw rows never reaches days whose rows were pruned.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::locks;
use super::migrate::Variant;
use super::partitions::{self, Partition};
use super::{Isolation, transaction};
use crate::analytics::rollup::{DAY, HOUR, MINUTE, bucket_of};
use crate::pgtime::{from_datetime, to_datetime};

/// What `prune` removed or, in a dry run, would remove.
pub struct Pruned {
    pub cutoff: DateTime<Utc>,
    pub dry_run: bool,
    pub removed: Removed,
}

/// Whole partitions of a partitioned table, or the rows deleted from a plain one.
pub enum Removed {
    Partitions(Vec<PartitionDropped>),
    Rows { rows: i64, batches: i64 },
}

pub struct PartitionDropped {
    pub partition: Partition,
    /// The planner's estimate when the partition was analyzed, else a count.
    pub rows: i64,
}

/// A width of rollup grains (`grain`: minute, hour or day) and how long their cells are
/// kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupKeep {
    pub grain: &'static str,
    pub kept_for: String,
    pub cutoff: DateTime<Utc>,
    pub cells: i64,
}

/// The rollup tables of each width, finest first (with the tables of their cells'
/// details), after the width's name, which is also their time column, and its length.
const ROLLUP_GRAINS: [(&str, i64, &[&str]); 3] = [
    (
        "minute",
        MINUTE,
        &[
            "logctl_rollup_total_minute",
            "logctl_rollup_total_minute_detail",
        ],
    ),
    (
        "hour",
        HOUR,
        &[
            "logctl_rollup_service_hour",
            "logctl_rollup_route_hour",
            "logctl_rollup_route_hour_detail",
            "logctl_rollup_total_hour",
        ],
    ),
    (
        "day",
        DAY,
        &[
            "logctl_rollup_service_day",
            "logctl_rollup_route_day",
            "logctl_rollup_route_day_detail",
            "logctl_rollup_total_day",
        ],
    ),
];

/// The grain names `--keep-rollups` takes.
pub const ROLLUP_GRAIN_NAMES: [&str; 3] = ["minute", "hour", "day"];

/// Removes (or lists) the rollup cells older than each grain's period: `overrides` as
/// (grain, PostgreSQL interval text), else the period stored in logctl_settings. A finer
/// grain is never kept longer than a coarser one: reports read the coarsest grain that
/// tiles a range, so a minute without its hour would count in some answers only.
pub async fn prune_rollups(
    client: &Client,
    overrides: &[(String, String)],
    dry_run: bool,
) -> crate::Result<Vec<RollupKeep>> {
    let mut periods = Vec::new();
    for (grain, _, _) in ROLLUP_GRAINS {
        periods.push(match overrides.iter().find(|(name, _)| name == grain) {
            Some((_, period)) => period.clone(),
            None => stored_period(client, grain).await?,
        });
    }
    let periods = &periods;
    let cutoffs: Vec<DateTime<Utc>> =
        transaction(client, Isolation::ReadCommitted, |client| async move {
            let row = client
                .query_one(
                    "SELECT now() - $1::text::interval, now() - $2::text::interval, \
                     now() - $3::text::interval",
                    &[&periods[0], &periods[1], &periods[2]],
                )
                .await?;
            crate::Result::Ok(
                (0..ROLLUP_GRAINS.len())
                    .map(|index| row.get(index))
                    .collect(),
            )
        })
        .await?;
    let cutoffs = nested_cutoffs(&cutoffs);
    let mut kept = Vec::new();
    for (index, (grain, _, tables)) in ROLLUP_GRAINS.into_iter().enumerate() {
        let cutoff = cutoffs[index];
        let statements: Vec<String> = tables
            .iter()
            .map(|table| {
                let time = grain;
                if dry_run {
                    format!("SELECT count(*) FROM {table} WHERE {time} < $1")
                } else {
                    format!(
                        "WITH gone AS (DELETE FROM {table} WHERE {time} < $1 RETURNING 1) \
                         SELECT count(*) FROM gone"
                    )
                }
            })
            .collect();
        let cells = transaction(client, Isolation::ReadCommitted, |client| {
            let statements = statements.clone();
            async move {
                if !dry_run {
                    client
                        .execute("SELECT pg_advisory_xact_lock($1)", &[&locks::ROLLUPS])
                        .await?;
                }
                let mut cells = 0;
                for statement in &statements {
                    cells += client
                        .query_one(statement, &[&cutoff])
                        .await?
                        .get::<_, i64>(0);
                }
                crate::Result::Ok(cells)
            }
        })
        .await?;
        kept.push(RollupKeep {
            grain,
            kept_for: periods[index].clone(),
            cutoff,
            cells,
        });
    }
    Ok(kept)
}

/// The cutoffs of the widths of `ROLLUP_GRAINS`, each finer one raised to the end of the
/// last bucket a coarser one removes: a coarser width loses whole buckets that start
/// before its cutoff, and the finer cells within them must go too.
fn nested_cutoffs(cutoffs: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    let mut nested = cutoffs.to_vec();
    let mut floor: Option<DateTime<Utc>> = None;
    for index in (0..nested.len()).rev() {
        let cutoff = floor.map_or(nested[index], |floor| nested[index].max(floor));
        nested[index] = cutoff;
        let width = ROLLUP_GRAINS[index].1;
        floor = Some(to_datetime(bucket_of(
            from_datetime(cutoff) + width - 1,
            width,
        )));
    }
    nested
}

/// The period `logctl schema` stored for a grain's cells (10 years if none is).
async fn stored_period(client: &Client, grain: &str) -> crate::Result<String> {
    let key = format!("keep_rollup_{grain}");
    transaction(client, Isolation::ReadCommitted, |client| {
        let key = key.clone();
        async move {
            let row = client
                .query_opt("SELECT value FROM logctl_settings WHERE key = $1", &[&key])
                .await?;
            crate::Result::Ok(row.map_or_else(|| "10 years".to_string(), |row| row.get(0)))
        }
    })
    .await
}

/// The time before which raw rows were pruned, if they ever were.
pub async fn raw_rows_kept_from(client: &Client) -> crate::Result<Option<DateTime<Utc>>> {
    Ok(client
        .query_opt(
            "SELECT value::timestamptz FROM logctl_settings WHERE key = 'raw_rows_kept_from'",
            &[],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Removes (or with `dry_run` lists) the events before `cutoff`.
pub async fn prune(
    client: &Client,
    variant: Variant,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    batch_rows: i64,
) -> crate::Result<Pruned> {
    // Recorded before any row goes: a rebuild or a check that runs meanwhile leaves the
    // days before it alone, and never recomputes a day's rollups from the part of its
    // rows that is left. Rows that stay after a failed prune keep their rollups too.
    if !dry_run {
        transaction(client, Isolation::ReadCommitted, |client| async move {
            client
                .execute(
                    "INSERT INTO logctl_settings (key, value) VALUES ('raw_rows_kept_from', $1) \
                     ON CONFLICT (key) DO UPDATE SET value = CASE \
                         WHEN logctl_settings.value::timestamptz < excluded.value::timestamptz \
                         THEN excluded.value ELSE logctl_settings.value END",
                    &[&cutoff.to_rfc3339()],
                )
                .await?;
            crate::Result::Ok(())
        })
        .await?;
    }
    let removed = match variant.partition {
        Some(_) => drop_partitions(client, variant, cutoff, dry_run).await?,
        None => delete_rows(client, variant, cutoff, dry_run, batch_rows).await?,
    };
    Ok(Pruned {
        cutoff,
        dry_run,
        removed,
    })
}

async fn drop_partitions(
    client: &Client,
    variant: Variant,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> crate::Result<Removed> {
    let before_cutoff = transaction(client, Isolation::ReadCommitted, |client| async move {
        let mut before_cutoff = Vec::new();
        for partition in partitions::list(client).await? {
            // Only partitions wholly before the cutoff go; the one holding it stays whole.
            if partition.to.is_none_or(|to| to > cutoff) {
                continue;
            }
            let rows = match partition.estimated_rows {
                Some(rows) => rows,
                None => partitions::count_rows(client, &partition.name).await?,
            };
            before_cutoff.push(PartitionDropped { partition, rows });
        }
        Ok(before_cutoff)
    })
    .await?;
    if !dry_run {
        for dropped in &before_cutoff {
            partitions::detach(client, &dropped.partition.name, variant.distributed).await?;
            partitions::drop_detached(client, &dropped.partition.name).await?;
        }
    }
    Ok(Removed::Partitions(before_cutoff))
}

async fn delete_rows(
    client: &Client,
    variant: Variant,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    batch_rows: i64,
) -> crate::Result<Removed> {
    let (rows, batches) = if dry_run {
        let count = transaction(client, Isolation::ReadCommitted, |client| async move {
            Ok(client
                .query_one(
                    "SELECT count(*) FROM log_events WHERE created_at < $1",
                    &[&cutoff],
                )
                .await?
                .get(0))
        })
        .await?;
        (count, 0)
    } else if variant.distributed {
        delete_in_time_windows(client, cutoff).await?
    } else {
        let mut deleted = 0;
        let mut batches = 0;
        loop {
            // Each batch commits on its own: a bounded transaction, and row locks held
            // only briefly.
            let n = delete_in_own_transaction(
                client,
                "DELETE FROM log_events WHERE ctid = ANY(ARRAY(\
                 SELECT ctid FROM log_events WHERE created_at < $1 LIMIT $2))",
                &[&cutoff, &batch_rows],
            )
            .await? as i64;
            if n == 0 {
                break;
            }
            deleted += n;
            batches += 1;
        }
        (deleted, batches)
    };
    Ok(Removed::Rows { rows, batches })
}

/// A distributed table has no ctid to batch by: delete an hour of events at a time,
/// oldest first (Citus runs each on all shards in parallel).
async fn delete_in_time_windows(
    client: &Client,
    cutoff: DateTime<Utc>,
) -> crate::Result<(i64, i64)> {
    let oldest: Option<DateTime<Utc>> =
        transaction(client, Isolation::ReadCommitted, |client| async move {
            Ok(client
                .query_one(
                    "SELECT min(created_at) FROM log_events WHERE created_at < $1",
                    &[&cutoff],
                )
                .await?
                .get(0))
        })
        .await?;
    let Some(mut start) = oldest else {
        return Ok((0, 0));
    };
    let (mut deleted, mut batches) = (0, 0);
    while start < cutoff {
        let end = (start + chrono::Duration::hours(1)).min(cutoff);
        deleted += delete_in_own_transaction(
            client,
            "DELETE FROM log_events WHERE created_at >= $1 AND created_at < $2",
            &[&start, &end],
        )
        .await? as i64;
        batches += 1;
        start = end;
    }
    Ok((deleted, batches))
}

/// One DELETE in a READ COMMITTED transaction of its own; the rows it deleted.
async fn delete_in_own_transaction(
    client: &Client,
    statement: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> crate::Result<u64> {
    transaction(client, Isolation::ReadCommitted, |client| async move {
        Ok(client.execute(statement, parameters).await?)
    })
    .await
}
