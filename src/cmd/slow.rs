//! `logctl slow`: the slow-request report.

use crate::cli::SlowArgs;
use crate::cmd::args::parse_when;
use crate::db::{Database, explain};
use crate::exit::{ExitError, Outcome};
use crate::report::{render, slow};

pub async fn run(args: SlowArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    if args.limit < 1 {
        return Err(ExitError::usage("--limit must be at least 1").into());
    }
    if args.threshold < 0 {
        return Err(ExitError::usage("--threshold must not be negative").into());
    }
    let since = args
        .since
        .as_deref()
        .map(|text| parse_when("--since", text))
        .transpose()?;
    let query = slow::SlowQuery {
        threshold_ms: args.threshold,
        limit: args.limit,
        since,
        service: args.service,
    };
    let database = Database::open(database_url, 1).await?;
    let client = database.get().await?;
    let tables = slow::report(&client, &query).await.map_err(explain)?;
    render::print(&tables, args.format)?;
    Ok(Outcome::Success)
}
