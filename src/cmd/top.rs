//! `logctl top`: routes, services, statuses or methods ranked by a metric.

use crate::Outcome;
use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::args::limit;
use crate::cmd::report_args::ReportArgs;
use crate::report::scope::Metric;
use crate::report::top::{Subject, top};

const EXAMPLES: &str =
    "  logctl top routes --by p99                    # the slowest routes of the last 24 hours
  logctl top routes --by errors --since 1h --service checkout
  logctl top services --by error-rate --compare prev
  logctl top status --since yesterday --until today
  logctl top routes --by total-time --min-count 100 --limit 0 --format csv";

/// The top routes, services, statuses or methods by a metric
#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    /// What to rank
    #[arg(value_enum)]
    pub subject: Subject,

    /// What to rank by (largest first): count, errors, error-rate, total-time, or a
    /// latency quantile
    #[arg(long, value_enum, default_value = "count")]
    pub by: Metric,

    /// Leave out groups with fewer requests than this (a p99 of three requests is their
    /// slowest one)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_count: u64,

    /// How many to list; 0 lists them all
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: u64,

    #[command(flatten)]
    pub report: ReportArgs,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let limit = limit(args.limit).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let gathered = args
        .report
        .gather(database_url, async |client, scope| {
            let top = top(client, scope, args.subject, args.by, args.min_count, limit).await?;
            let events = top.rows.iter().map(|row| row.figures.requests).sum();
            Ok((top, events))
        })
        .await?;
    let tables = vec![gathered.data.table("top")];
    args.report.print(&gathered, tables, &[], false)?;
    Ok(Outcome::Success)
}
