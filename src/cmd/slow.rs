//! `logctl slow`: the slow-request report.

use crate::cmd::args::parse_when;
use crate::db::{Database, Isolation, transaction};
use crate::report::{Format, render, slow};
use crate::{Error, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Latency threshold in milliseconds: requests slower than this are listed
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub threshold: i32,

    /// How many requests to list
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: i64,

    /// Only requests since a duration ago (1h, 7d, 30m) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Only this service
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Output format; csv prints the requests, a blank line, then the per-service summary
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    if args.limit < 1 {
        return Err(Error::usage("--limit must be at least 1").into());
    }
    if args.threshold < 0 {
        return Err(Error::usage("--threshold must not be negative").into());
    }
    let since = args
        .since
        .as_deref()
        .map(|text| parse_when("--since", text))
        .transpose()?;
    let query = &slow::SlowQuery {
        threshold_ms: args.threshold,
        limit: args.limit,
        since,
        service: args.service,
    };
    let database = Database::open_existing(database_url, 1).await?;
    let tables = transaction(
        &*database.get().await?,
        Isolation::Snapshot,
        |client| async move { slow::report(client, query).await },
    )
    .await?;
    render::print(&tables, args.format)?;
    Ok(Outcome::Success)
}
