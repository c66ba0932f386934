//! `logctl status`: what the ledger says has been loaded.

use crate::Outcome;
use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::db::{Database, Isolation, transaction};
use crate::report::{Format, Report, render, status};

const EXAMPLES: &str =
    "  logctl status                                 # every source, how far it is loaded
  logctl status --format json | jq '.sources[] | select(.complete | not)'";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let database = Database::open_existing(database_url, 1).await?;
    let table = transaction(&*database.get().await?, Isolation::Snapshot, status::report).await?;
    let report = Report {
        database: database.target.describe(),
        tables: vec![table],
    };
    render::print(&report, args.format)?;
    Ok(Outcome::Success)
}
