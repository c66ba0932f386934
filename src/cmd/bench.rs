//! `logctl bench write-penalty`: what each index costs a COPY, on your own database.

use clap::Subcommand;

use crate::db::{Database, explain};
use crate::exit::{ExitError, Outcome};
use crate::report::{Format, render};
use crate::write_penalty;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// The cost of each index on COPY: rows/s with 0, 1, 2, ... indexes, random versus
    /// time-ordered keys, B-tree versus BRIN on created_at. Runs in a scratch schema
    /// that is dropped afterwards; touches nothing else
    WritePenalty {
        /// Rows copied per configuration
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let Action::WritePenalty { rows, format } = args.action;
    if rows == 0 {
        return Err(ExitError::usage("--rows must be at least 1").into());
    }
    let database = Database::open(database_url, 1).await?;
    let client = database.dedicated().await?;
    eprintln!(
        "logctl: copying {rows} rows per configuration into a scratch schema; this takes a while"
    );
    let table = write_penalty::measure(&client, rows)
        .await
        .map_err(|e| match e.downcast::<tokio_postgres::Error>() {
            Ok(error) => explain(error),
            Err(other) => other,
        })?;
    render::print(&[table], format)?;
    Ok(Outcome::Success)
}
