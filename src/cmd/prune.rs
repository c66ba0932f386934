//! `logctl prune`: remove events older than a cutoff, safely beside running loads.

use crate::cmd::args::{parse_when, parse_zone};
use crate::db::migrate::Variant;
use crate::db::retention::{self, Pruned, Removed};
use crate::db::{Database, Isolation, transaction};
use crate::report::{Cell, Format, Table, render};
use crate::{Error, Outcome};

#[derive(Debug, clap::Args)]
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

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
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
    let pruned = retention::prune(&client, variant, cutoff, args.dry_run, args.batch_rows).await?;
    render::print(&[table(&pruned)], args.format)?;
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
