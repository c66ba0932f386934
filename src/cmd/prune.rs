//! `logctl prune`: remove events older than a cutoff, safely beside running loads.

use crate::cmd::args::parse_when;
use crate::db::migrate::Variant;
use crate::db::retention::{self, Pruned, Removed, RollupKeep};
use crate::db::{Database, Isolation, transaction};
use crate::report::{Cell, Format, Table, render};
use crate::{Error, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove events older than this: a duration (30d, 12h, 2w) or an RFC 3339 time.
    /// A partitioned table drops the partitions that end before it (detached
    /// concurrently: loads into the other partitions go on); a plain table deletes in
    /// batches of --batch-rows, each its own short transaction. The load ledger is kept,
    /// so pruned files are not loaded again
    #[arg(long, value_name = "WHEN")]
    pub older_than: String,

    /// List what would be removed, and remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Rows per DELETE on a plain table
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch_rows: i64,

    /// Keep a rollup grain's cells for this long instead of its stored period (minute
    /// 14 days, hour 400 days, day 10 years by default), e.g. --keep-rollups minute=30d;
    /// repeatable. Rollups outlive the raw rows, so a year of trends stays after the rows
    /// of a month are pruned
    #[arg(long = "keep-rollups", value_name = "GRAIN=PERIOD")]
    pub keep_rollups: Vec<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `minute=30d`: a grain and its period as a PostgreSQL interval.
fn keep_rollups(text: &str) -> Result<(String, String), Error> {
    let bad = || {
        Error::usage(format!(
            "--keep-rollups `{text}`: write GRAIN=PERIOD with a grain of {} and a period such \
             as 30d or 2w",
            retention::ROLLUP_GRAIN_NAMES.join(", ")
        ))
    };
    let (grain, period) = text.split_once('=').ok_or_else(bad)?;
    let grain = grain.trim();
    if !retention::ROLLUP_GRAIN_NAMES.contains(&grain) {
        return Err(bad());
    }
    let period = humantime::parse_duration(period.trim()).map_err(|_| bad())?;
    Ok((grain.to_string(), format!("{} seconds", period.as_secs())))
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let cutoff = parse_when("--older-than", &args.older_than)?;
    if args.batch_rows < 1 {
        return Err(Error::usage("--batch-rows must be at least 1").into());
    }
    let database = Database::open(database_url, 1).await?;
    let client = database.dedicated().await?;
    let variant = transaction(&client, Isolation::ReadCommitted, |client| async move {
        Variant::of_database(client).await
    })
    .await?
    .ok_or_else(|| Error::NoSchema("no logctl tables in this database".into()))?;
    let overrides = args
        .keep_rollups
        .iter()
        .map(|text| keep_rollups(text))
        .collect::<Result<Vec<_>, _>>()?;
    let pruned = retention::prune(&client, variant, cutoff, args.dry_run, args.batch_rows).await?;
    let rollups = retention::prune_rollups(&client, &overrides, args.dry_run).await?;
    render::print(
        &[table(&pruned), rollups_table(&rollups, args.dry_run)],
        args.format,
    )?;
    Ok(Outcome::Success)
}

fn table(pruned: &Pruned) -> Table {
    let cutoff = pruned.cutoff;
    match &pruned.removed {
        Removed::Partitions(partitions) => {
            let verb = if pruned.dry_run {
                "would drop"
            } else {
                "dropped"
            };
            let total: i64 = partitions.iter().map(|dropped| dropped.rows).sum();
            Table {
                name: "partitions",
                title: format!(
                    "Partitions before {cutoff}: {verb} {} (about {total} rows)",
                    partitions.len()
                ),
                columns: vec!["partition", "from", "to", "rows"],
                rows: partitions
                    .iter()
                    .map(|dropped| {
                        vec![
                            Cell::Text(dropped.partition.name.clone()),
                            dropped.partition.from.map_or(Cell::Null, Cell::Time),
                            dropped.partition.to.map_or(Cell::Null, Cell::Time),
                            Cell::Int(dropped.rows),
                        ]
                    })
                    .collect(),
            }
        }
        Removed::Rows { rows, batches } => {
            let verb = if pruned.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            Table {
                name: "deleted",
                title: format!("Events before {cutoff}: {verb} {rows}"),
                columns: vec!["rows", "batches"],
                rows: vec![vec![Cell::Int(*rows), Cell::Int(*batches)]],
            }
        }
    }
}

fn rollups_table(kept: &[RollupKeep], dry_run: bool) -> Table {
    let verb = if dry_run { "would remove" } else { "removed" };
    Table {
        name: "rollups",
        title: format!("Rollup cells older than each grain's period: {verb}"),
        columns: vec!["grain", "kept_for", "cutoff", "cells"],
        rows: kept
            .iter()
            .map(|keep| {
                vec![
                    Cell::Text(keep.grain.to_string()),
                    Cell::Text(keep.kept_for.clone()),
                    Cell::Time(keep.cutoff),
                    Cell::Int(keep.cells),
                ]
            })
            .collect(),
    }
}
