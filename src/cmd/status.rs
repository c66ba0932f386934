//! `logctl status`: what the ledger says has been loaded.

use crate::Outcome;
use crate::cli::StatusArgs;
use crate::db::Database;
use crate::report::{render, status};

pub async fn run(args: StatusArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let database = Database::open(database_url, 1).await?;
    let client = database.get().await?;
    let table = status::report(&client).await?;
    render::print(&[table], args.format)?;
    Ok(Outcome::Success)
}
