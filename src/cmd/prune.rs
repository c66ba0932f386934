//! `logctl prune`: remove events older than a cutoff, safely beside running loads.

use crate::cli::PruneArgs;
use crate::cmd::args::parse_when;
use crate::db::migrate::Variant;
use crate::db::{Database, DbError, explain};
use crate::exit::{ExitError, Outcome};
use crate::report::render;
use crate::retention;

pub async fn run(args: PruneArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let cutoff = parse_when("--older-than", &args.older_than)?;
    if args.batch_rows < 1 {
        return Err(ExitError::usage("--batch-rows must be at least 1").into());
    }
    let database = Database::open(database_url, 1).await?;
    let client = database.dedicated().await?;
    let variant = Variant::of_database(&client)
        .await?
        .ok_or_else(|| DbError::NoSchema("no logctl tables in this database".into()))?;
    let pruned = retention::prune(&client, variant, cutoff, args.dry_run, args.batch_rows)
        .await
        .map_err(|e| match e.downcast::<tokio_postgres::Error>() {
            Ok(error) => explain(error),
            Err(other) => other,
        })?;
    render::print(&[pruned.table], args.format)?;
    Ok(Outcome::Success)
}
