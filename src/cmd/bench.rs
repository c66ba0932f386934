//! `logctl bench write-penalty`: what each index costs a COPY, on your own database.

use crate::cli::{BenchAction, BenchArgs};
use crate::db::Database;
use crate::report::render;
use crate::write_penalty;
use crate::{Error, Outcome};

pub async fn run(args: BenchArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let BenchAction::WritePenalty { rows, format } = args.action;
    if rows == 0 {
        return Err(Error::usage("--rows must be at least 1").into());
    }
    let database = Database::open(database_url, 1).await?;
    let client = database.dedicated().await?;
    eprintln!(
        "logctl: copying {rows} rows per configuration into a scratch schema; this takes a while"
    );
    let table = write_penalty::measure(&client, rows).await?;
    render::print(&[table], format)?;
    Ok(Outcome::Success)
}
