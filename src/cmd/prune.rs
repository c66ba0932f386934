//! `logctl prune`: remove events older than a cutoff, safely beside running loads.

use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::args::{parse_when, parse_zone};
use crate::db::migrate::Variant;
use crate::db::retention::{self, Pruned, Removed, RollupKeep};
use crate::db::{Database, Isolation, transaction};
use crate::report::{Cell, Format, Report, Table, column_names, render};
use crate::{Error, Outcome};

const EXAMPLES: &str =
    "  logctl prune --older-than 30d --dry-run       # what would go, and the cutoff
  logctl prune --older-than 30d                 # from cron, beside running loads
  logctl prune --older-than 2026-11-01 --timezone Europe/Berlin --format json";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    /// Remove events older than this: a duration (30d, 12h, 2w), today, yesterday, a
    /// date (2026-11-01, midnight in --timezone) or an RFC 3339 time.
    /// A partitioned table drops the partitions that end before it (detached
    /// concurrently: loads into the other partitions go on); a plain table deletes in
    /// batches of --batch-rows, each its own short transaction. The load ledger is kept,
    /// so pruned files are not loaded again
    #[arg(long, value_name = "WHEN")]
    pub older_than: String,

    /// List what would be removed, and remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// The zone of a date, today or yesterday in --older-than: an IANA name
    /// (Europe/Berlin) or +HH:MM [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,

    /// Rows per DELETE on a plain table
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch_rows: i64,

    /// Keep a rollup grain's cells for this long instead of its stored period (minute
    /// 14 days, hour 400 days, day 10 years by default), e.g. --keep-rollups minute=30d;
    /// repeatable. Rollups outlive the raw rows, so a year of trends stays after the rows
    /// of a month are pruned. A finer grain is never kept longer than a coarser one
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
    let zone = parse_zone(args.timezone.as_deref())?;
    let cutoff = parse_when("--older-than", &args.older_than, zone)?;
    if args.batch_rows < 1 {
        return Err(Error::usage("--batch-rows must be at least 1").into());
    }
    let database = Database::open_existing(database_url, 1).await?;
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
    let mut tables = tables(&pruned);
    tables.push(rollups_table(&rollups, args.dry_run));
    let report = Report {
        database: database.target.describe(),
        tables,
    };
    render::print(&report, args.format)?;
    Ok(Outcome::Success)
}

/// The outcome first (what was or would be done, with the cutoff, so that a dry run's
/// JSON says what would happen), then the partitions when there are any.
fn tables(pruned: &Pruned) -> Vec<Table> {
    let (action, rows, partitions) = match &pruned.removed {
        Removed::Partitions(partitions) => (
            if pruned.dry_run {
                "would drop partitions"
            } else {
                "dropped partitions"
            },
            partitions.iter().map(|dropped| dropped.rows).sum(),
            Some(partitions),
        ),
        Removed::Rows { rows, .. } => (
            if pruned.dry_run {
                "would delete rows"
            } else {
                "deleted rows"
            },
            *rows,
            None,
        ),
    };
    let batches = match &pruned.removed {
        Removed::Rows { batches, .. } => Cell::Int(*batches),
        Removed::Partitions(_) => Cell::Null,
    };
    let estimate = if partitions.is_some() { "about " } else { "" };
    let mut tables = vec![Table {
        name: "prune",
        title: format!(
            "Events before {}: {action}, {estimate}{rows} rows{}",
            pruned.cutoff,
            if pruned.dry_run {
                " (dry run: nothing was removed)"
            } else {
                ""
            }
        ),
        columns: column_names(&[
            "cutoff",
            "dry_run",
            "action",
            "rows",
            "partitions",
            "batches",
        ]),
        rows: vec![vec![
            Cell::Time(pruned.cutoff),
            Cell::Bool(pruned.dry_run),
            Cell::Text(action.to_string()),
            Cell::Int(rows),
            partitions.map_or(Cell::Null, |p| Cell::Int(p.len() as i64)),
            batches,
        ]],
    }];
    if let Some(partitions) = partitions {
        tables.push(Table {
            name: "partitions",
            title: format!(
                "Partitions that end before the cutoff ({})",
                partitions.len()
            ),
            columns: column_names(&["partition", "from", "to", "rows"]),
            rows: partitions
                .iter()
                .map(|dropped| {
                    vec![
                        Cell::Id(dropped.partition.name.clone()),
                        dropped.partition.from.map_or(Cell::Null, Cell::Time),
                        dropped.partition.to.map_or(Cell::Null, Cell::Time),
                        Cell::Int(dropped.rows),
                    ]
                })
                .collect(),
        });
    }
    tables
}

fn rollups_table(kept: &[RollupKeep], dry_run: bool) -> Table {
    let verb = if dry_run { "would remove" } else { "removed" };
    Table {
        name: "rollups",
        title: format!("Rollup cells older than their width's period: {verb}"),
        columns: column_names(&["grain", "kept_for", "cutoff", "cells"]),
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
