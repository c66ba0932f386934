//! `logctl slow`: the slow-request report.

use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::args::limit;
use crate::cmd::report_args::ReportArgs;
use crate::db::{Database, Isolation, transaction};
use crate::report::filter::RawFilter;
use crate::report::scope::{self, Period, Scope};
use crate::report::slow;
use crate::{Error, Outcome};

const EXAMPLES: &str =
    "  logctl slow --threshold 2000                  # the 20 slowest requests above 2 s
  logctl slow --since yesterday --until today   # yesterday's, midnight to midnight UTC
  logctl slow --since 2026-11-26 --timezone Europe/Berlin --service checkout
  logctl slow --route '/api/v1/orders/*' --status 5xx --exact
  logctl slow --since 24h --compare 1w          # each service's figures a week before too
  logctl slow --limit 0 --format csv > slow.csv # every request above 1 s";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    /// Latency threshold in milliseconds: requests slower than this are listed
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub threshold: i32,

    /// How many requests to list; 0 lists them all
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u64,

    /// The window, filters and format (csv prints the requests, a blank line, then the
    /// per-service summary); --exact reads each service's own percentiles from the raw
    /// rows instead of the rollups; --compare gives each per-service figure its value in
    /// the period compared with and the change (the requests listed are the window's)
    #[command(flatten)]
    pub report: ReportArgs,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    if args.threshold < 0 {
        return Err(Error::usage("--threshold must not be negative").into());
    }
    let filter = args.report.filter()?;
    // A window that cannot be read is a usage error before any connection is tried.
    args.report.window.resolve()?;
    let database = Database::open_existing(database_url, 1).await?;
    let (report, empty_because) =
        transaction(&*database.get().await?, Isolation::Snapshot, |client| {
            let (args, filter) = (&args, &filter);
            async move {
                let period = args.report.period(client).await?;
                let window = Period {
                    from: period.from,
                    until: period.until,
                };
                let previous = period.previous.map(|(from, until)| Period { from, until });
                let query = slow::SlowQuery {
                    scope: Scope::new(window, previous, filter, args.report.exact),
                    filter: filter.clone(),
                    raw: RawFilter::new(filter, window.from, window.until),
                    threshold_ms: args.threshold,
                    limit: limit(args.limit),
                };
                let report = slow::report(client, &query).await?;
                let empty_because = if report.requests.is_empty() {
                    Some(format!(
                        "No request took more than {} ms in the window. {}",
                        args.threshold,
                        scope::where_data_ends(client, &filter.services).await?
                    ))
                } else {
                    None
                };
                Ok((report, empty_because))
            }
        })
        .await?;
    let database = database.target.describe();
    scope::print(
        database,
        report.tables(),
        &[],
        empty_because.as_deref(),
        args.report.format,
        false,
    )?;
    Ok(Outcome::Success)
}
