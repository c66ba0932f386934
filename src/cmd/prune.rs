//! `logctl prune`: remove events older than a cutoff, safely beside running loads.

use crate::cli::PruneArgs;
use crate::cmd::slow::parse_since;
use crate::db::Database;
use crate::db::migrate::Variant;
use crate::report::render;
use crate::retention;
use crate::{Error, Outcome};

pub async fn run(args: PruneArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let cutoff = parse_since(&args.older_than)?;
    if args.batch_rows < 1 {
        return Err(Error::usage("--batch-rows must be at least 1").into());
    }
    let database = Database::open(database_url, 1).await?;
    let client = database.dedicated().await?;
    let variant = Variant::of_database(&client)
        .await?
        .ok_or_else(|| Error::NoSchema("no logctl tables in this database".into()))?;
    let pruned = retention::prune(&client, variant, cutoff, args.dry_run, args.batch_rows).await?;
    render::print(&[pruned.table], args.format)?;
    Ok(Outcome::Success)
}
