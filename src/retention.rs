//! Retention: removing events older than a cutoff. A partitioned table loses whole
//! partitions (detached without blocking loads into the others, then dropped); a plain
//! table is deleted from in small batches, so no transaction grows huge and loads go on.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::db::migrate::Variant;
use crate::db::partitions;
use crate::report::{Cell, Table};

/// What `prune` removed or, in a dry run, would remove.
pub struct Pruned {
    pub table: Table,
    pub rows: i64,
}

/// Removes (or with `dry_run` lists) the events before `cutoff`.
pub async fn prune(
    client: &Client,
    variant: Variant,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    batch_rows: i64,
) -> anyhow::Result<Pruned> {
    match variant.partition {
        Some(_) => drop_partitions(client, variant, cutoff, dry_run).await,
        None => delete_rows(client, variant, cutoff, dry_run, batch_rows).await,
    }
}

async fn drop_partitions(
    client: &Client,
    variant: Variant,
    cutoff: DateTime<Utc>,
    dry_run: bool,
) -> anyhow::Result<Pruned> {
    let mut rows = Vec::new();
    let mut total = 0;
    for partition in partitions::list(client).await? {
        // Only partitions wholly before the cutoff go; the one holding it stays whole.
        if partition.to.is_none_or(|to| to > cutoff) {
            continue;
        }
        let estimated = match partition.estimated_rows {
            Some(rows) => rows,
            None => partitions::count_rows(client, &partition.name).await?,
        };
        if !dry_run {
            partitions::detach(client, &partition.name, variant.distributed).await?;
            partitions::drop_detached(client, &partition.name).await?;
        }
        total += estimated;
        rows.push(vec![
            Cell::Text(partition.name),
            partition.from.map_or(Cell::Null, Cell::Time),
            partition.to.map_or(Cell::Null, Cell::Time),
            Cell::Int(estimated),
        ]);
    }
    let verb = if dry_run { "would drop" } else { "dropped" };
    Ok(Pruned {
        table: Table {
            name: "partitions",
            title: format!(
                "Partitions before {cutoff}: {verb} {} (about {total} rows)",
                rows.len()
            ),
            columns: vec!["partition", "from", "to", "rows"],
            rows,
        },
        rows: total,
    })
}

async fn delete_rows(
    client: &Client,
    variant: Variant,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    batch_rows: i64,
) -> anyhow::Result<Pruned> {
    let (rows, batches) = if dry_run {
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM log_events WHERE created_at < $1",
                &[&cutoff],
            )
            .await?
            .get(0);
        (count, 0)
    } else if variant.distributed {
        delete_in_time_windows(client, cutoff).await?
    } else {
        let mut deleted = 0;
        let mut batches = 0;
        loop {
            // Each statement commits on its own: a bounded transaction, and row locks
            // held only briefly.
            let n = client
                .execute(
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
    let verb = if dry_run { "would delete" } else { "deleted" };
    Ok(Pruned {
        table: Table {
            name: "deleted",
            title: format!("Events before {cutoff}: {verb} {rows}"),
            columns: vec!["rows", "batches"],
            rows: vec![vec![Cell::Int(rows), Cell::Int(batches)]],
        },
        rows,
    })
}

/// A distributed table has no ctid to batch by: delete an hour of events at a time,
/// oldest first (Citus runs each on all shards in parallel).
async fn delete_in_time_windows(
    client: &Client,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<(i64, i64)> {
    let oldest: Option<DateTime<Utc>> = client
        .query_one(
            "SELECT min(created_at) FROM log_events WHERE created_at < $1",
            &[&cutoff],
        )
        .await?
        .get(0);
    let Some(mut start) = oldest else {
        return Ok((0, 0));
    };
    let (mut deleted, mut batches) = (0, 0);
    while start < cutoff {
        let end = (start + chrono::Duration::hours(1)).min(cutoff);
        deleted += client
            .execute(
                "DELETE FROM log_events WHERE created_at >= $1 AND created_at < $2",
                &[&start, &end],
            )
            .await? as i64;
        batches += 1;
        start = end;
    }
    Ok((deleted, batches))
}
