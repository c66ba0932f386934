//! `logctl latency`: the latency distribution of a service, a route or everything.

use crate::Outcome;
use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::report_args::ReportArgs;
use crate::report::Format;
use crate::report::latency::latency;
use crate::terminal;

const EXAMPLES: &str =
    "  logctl latency --service checkout             # the last 24 hours of one service
  logctl latency --route '/api/v1/orders/:id' --since 1h --compare 1d
  logctl latency --service payments --exact     # exact quantiles from the raw rows
  logctl latency --format json | jq .latency";

/// p50, p90, p95, p99, p99.9 and max, and a log-scale histogram of latencies
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
            let latency = latency(client, scope).await?;
            let events = latency.bins.iter().map(|bin| bin.count).sum();
            Ok((latency, events))
        })
        .await?;
    let display = terminal::stdout();
    let drawn = (args.report.format == Format::Table).then_some(&display);
    let tables = gathered.data.tables(drawn);
    args.report.print(&gathered, tables, &[], false)?;
    Ok(Outcome::Success)
}
