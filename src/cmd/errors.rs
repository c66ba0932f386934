//! `logctl errors`: the error lines of a window grouped by message signature, the most
//! frequent first, and which of them are new.

use crate::Outcome;
use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::args::limit;
use crate::cmd::report_args::ReportArgs;
use crate::db::{Database, Isolation, transaction};
use crate::report::errors::{self, ErrorsQuery};
use crate::report::filter::RawFilter;
use crate::report::scope::{self, Period, Scope};

const EXAMPLES: &str = "  logctl errors                                 # the last 24 hours of data
  logctl errors --since 1h --new                # signatures the hour before did not have
  logctl errors --since yesterday --until today --service checkout --limit 0
  logctl errors --compare 1w --format json      # each with its count a week before";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    #[command(flatten)]
    pub report: ReportArgs,

    /// Only signatures the period before has none of: the same length of time before
    /// the window, or the period --compare names
    #[arg(long)]
    pub new: bool,

    /// How many signatures to list, the most frequent first; 0 lists them all
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u64,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let filter = args.report.filter()?;
    // A window that cannot be read is a usage error before any connection is tried.
    args.report.window.resolve()?;
    let database = Database::open_existing(database_url, 1).await?;
    let (report, empty_because) =
        transaction(&*database.get().await?, Isolation::Snapshot, |client| {
            let (args, filter) = (&args, &filter);
            async move {
                let window = args.report.period(client).await?;
                let length = window.until - window.from;
                let previous = window
                    .previous
                    .or(args.new.then_some((window.from - length, window.from)))
                    .map(|(from, until)| Period { from, until });
                let query = ErrorsQuery {
                    scope: Scope::new(
                        Period {
                            from: window.from,
                            until: window.until,
                        },
                        previous,
                        filter,
                        true,
                    ),
                    filter: RawFilter::new(filter, window.from, window.until),
                    only_new: args.new,
                    limit: limit(args.limit).map(|n| n as usize),
                };
                let report = errors::report(client, &query).await?;
                let empty_because = match (report.signatures.is_empty(), report.nothing_new()) {
                    (false, _) => None,
                    (true, Some(reason)) => Some(reason),
                    (true, None) => Some(format!(
                        "No error lines in the window. {}",
                        scope::where_data_ends(client, &filter.services).await?
                    )),
                };
                Ok((report, empty_because))
            }
        })
        .await?;
    scope::print(
        database.target.describe(),
        vec![report.table()],
        &[],
        empty_because.as_deref(),
        args.report.format,
        false,
    )?;
    Ok(Outcome::Success)
}
