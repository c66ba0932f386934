//! `logctl status`: what the ledger says has been loaded.

use crate::Outcome;
use crate::db::{Database, Isolation, transaction};
use crate::report::{Format, Report, render, status};

#[derive(Debug, clap::Args)]
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
