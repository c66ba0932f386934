//! `logctl summary`: the front page of a window (by default the last 24 hours of data).

use crate::Outcome;
use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::report_args::ReportArgs;
use crate::report::summary::{ROUTES, summary};
use crate::terminal;

const EXAMPLES: &str = "  logctl summary                               # the last 24 hours of data
  logctl summary --since 7d --compare 1w       # this week against the week before
  logctl summary --since yesterday --until today --service checkout
  logctl summary --format json | jq .overall";

/// The front page: requests, error rate, p50/p95/p99 per service, top routes, a timeline
///
/// Requests, errors, error rate and p50/p95/p99 overall and per service, the routes with
/// the highest p99 and the most errors, and a small timeline of requests.
#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    #[command(flatten)]
    pub report: ReportArgs,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let gathered = args
        .report
        .gather(database_url, async |client, scope| {
            let summary = summary(client, scope, ROUTES).await?;
            let events = summary.overall.requests;
            Ok((summary, events))
        })
        .await?;
    let summary = &gathered.data;
    let mut tables = summary.tables();
    let pictures = match args.report.format {
        crate::report::Format::Table => summary.timeline.chart(&terminal::stdout()),
        _ => {
            tables.extend(summary.timeline.tables());
            Vec::new()
        }
    };
    args.report.print(&gathered, tables, &pictures, false)?;
    Ok(Outcome::Success)
}
