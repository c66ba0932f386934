//! `logctl check`: conditions measured over a window, for cron and alerting: exit code 7
//! when one is breached.

use crate::Outcome;
use crate::cli::after_help;
use crate::cmd::report_args::ReportArgs;
use crate::report::check::{Condition, check};

const EXAMPLES: &str =
    "  logctl check --since 15m --fail-if 'error-rate > 2%' --fail-if 'p99 > 2000'
  logctl check --since 1h --service checkout --fail-if 'p95 >= 1.5s'
  logctl check --since 10m --fail-if 'count < 1'   # alert when logs stop coming
  */5 * * * * logctl check --since 15m --fail-if 'error-rate > 2%' || notify-oncall";

const OUTCOMES: &[Outcome] = &[
    Outcome::Success,
    Outcome::Failure,
    Outcome::Usage,
    Outcome::Unreachable,
    Outcome::Breached,
];

/// Measure conditions over a window and exit with code 7 when one is breached
#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, OUTCOMES))]
pub struct Args {
    /// A condition that fails the check: METRIC OP VALUE, e.g. 'error-rate > 2%',
    /// 'p99 > 2000' (ms), 'p95 >= 1.5s', 'count < 1'; repeatable. A condition with
    /// nothing to measure (no events) is not breached
    #[arg(long = "fail-if", value_name = "CONDITION", required = true)]
    pub conditions: Vec<String>,

    #[command(flatten)]
    pub report: ReportArgs,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let conditions = args
        .conditions
        .iter()
        .map(|text| Condition::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let gathered = args
        .report
        .gather(database_url, async |client, scope| {
            let check = check(client, scope, &conditions).await?;
            let events = check.events;
            Ok((check, events))
        })
        .await?;
    args.report
        .print(&gathered, gathered.data.tables(), &[], true)?;
    Ok(if gathered.data.breached() {
        Outcome::Breached
    } else {
        Outcome::Success
    })
}
