//! `logctl slow`: the slow-request report.

use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::args::{Window, limit};
use crate::db::{Database, Isolation, transaction};
use crate::report::{Format, Report, render, slow};
use crate::{Error, Outcome};

const EXAMPLES: &str =
    "  logctl slow --threshold 2000                  # the 20 slowest requests above 2 s
  logctl slow --since yesterday --until today   # yesterday's, midnight to midnight UTC
  logctl slow --since 2026-11-26 --timezone Europe/Berlin --service checkout
  logctl slow --limit 0 --format csv > slow.csv # every request above 1 s";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    /// Latency threshold in milliseconds: requests slower than this are listed
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub threshold: i32,

    /// How many requests to list; 0 lists them all
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u64,

    #[command(flatten)]
    pub window: Window,

    /// Only this service
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Output format; csv prints the requests, a blank line, then the per-service summary
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    if args.threshold < 0 {
        return Err(Error::usage("--threshold must not be negative").into());
    }
    let span = args.window.resolve()?;
    let query = &slow::SlowQuery {
        threshold_ms: args.threshold,
        limit: limit(args.limit),
        since: span.since,
        until: span.until,
        service: args.service,
    };
    let database = Database::open_existing(database_url, 1).await?;
    let tables = transaction(
        &*database.get().await?,
        Isolation::Snapshot,
        |client| async move { slow::report(client, query).await },
    )
    .await?;
    let report = Report {
        database: database.target.describe(),
        tables,
    };
    render::print(&report, args.format)?;
    Ok(Outcome::Success)
}
