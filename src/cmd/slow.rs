//! `logctl slow`: the slow-request report.

use crate::cmd::report_args::ReportArgs;
use crate::db::{Database, Isolation, transaction};
use crate::report::filter::RawFilter;
use crate::report::scope::{self, Period, Scope};
use crate::report::slow;
use crate::{Error, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Latency threshold in milliseconds: requests slower than this are listed
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub threshold: i32,

    /// How many requests to list
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: i64,

    /// The window, filters and format (csv prints the requests, a blank line, then the
    /// per-service summary); --exact reads each service's own percentiles from the raw
    /// rows
    #[command(flatten)]
    pub report: ReportArgs,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    if args.limit < 1 {
        return Err(Error::usage("--limit must be at least 1").into());
    }
    if args.threshold < 0 {
        return Err(Error::usage("--threshold must not be negative").into());
    }
    if args.report.compare.is_some() {
        return Err(Error::usage(
            "slow lists requests of one window and compares none: leave out --compare",
        )
        .into());
    }
    let filter = args.report.filter()?;
    let database = Database::open(database_url, 1).await?;
    let (report, empty_because) = transaction(
        &*database.get().await?,
        Isolation::Snapshot,
        |client| {
            let (args, filter) = (&args, &filter);
            async move {
                let window = args.report.window(client).await?;
                let query = slow::SlowQuery {
                    scope: Scope::new(
                        Period {
                            from: window.from,
                            until: window.until,
                        },
                        None,
                        filter,
                        args.report.exact,
                    ),
                    filter: filter.clone(),
                    raw: RawFilter::new(filter, window.from, window.until),
                    threshold_ms: args.threshold,
                    limit: args.limit,
                };
                let report = slow::report(client, &query).await?;
                let empty_because = if report.requests.is_empty() {
                    Some(format!(
                        "No request took more than {} ms in the window. {}",
                        args.threshold,
                        scope::why_empty(client, &filter.services).await?
                    ))
                } else {
                    None
                };
                Ok((report, empty_because))
            }
        },
    )
    .await?;
    scope::print(&report.tables(), empty_because.as_deref(), args.report.format)?;
    Ok(Outcome::Success)
}
