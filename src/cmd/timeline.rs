//! `logctl timeline`: one metric per time bucket, drawn in the terminal, numbers in
//! JSON and CSV.

use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::report_args::ReportArgs;
use crate::report::Format;
use crate::report::scope::Metric;
use crate::report::timeline::{Split, auto_bucket, timeline};
use crate::terminal;
use crate::{Error, Outcome};

const EXAMPLES: &str =
    "  logctl timeline                               # requests per bucket, fitted to the terminal
  logctl timeline --metric error-rate --by service --since 6h
  logctl timeline --by status --since 1d --compare 1w   # each status code, a week before too
  logctl timeline --metric p99 --bucket 5m --route '/api/v1/orders*'
  logctl timeline --bucket 1h --since 7d --format csv > hourly.csv";

/// Columns a sparkline leaves for its label and scale.
const FRAME: usize = 40;

/// A metric per time bucket (empty buckets included), as a chart on a terminal
#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    /// Bucket width: auto (fits the terminal), or a duration such as 1m, 5m, 1h, 1d
    #[arg(long, value_name = "WIDTH", default_value = "auto")]
    pub bucket: String,

    /// What each bucket shows
    #[arg(long, value_enum, default_value = "count")]
    pub metric: Metric,

    /// One series per service, status code (200, 503), status class (2xx, 5xx) or level
    /// (the 7 largest, the rest as `(other)`)
    #[arg(long, value_enum, value_name = "WHAT")]
    pub by: Option<Split>,

    #[command(flatten)]
    pub report: ReportArgs,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let display = terminal::stdout();
    let fixed = match args.bucket.as_str() {
        "auto" => None,
        text => {
            let width = humantime::parse_duration(text)
                .ok()
                .map(|width| width.as_secs() as i64)
                .filter(|&seconds| seconds >= 60 && seconds % 60 == 0)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--bucket `{text}`: write auto or whole minutes such as 1m, 5m, 1h, 1d"
                    ))
                })?;
            Some(width)
        }
    };
    let columns = display.width.unwrap_or(100).saturating_sub(FRAME).max(10);
    let gathered = args
        .report
        .gather(database_url, async |client, scope| {
            let bucket = fixed.unwrap_or_else(|| auto_bucket(scope.from, scope.until, columns));
            let buckets = (scope.until - scope.from).num_seconds() / bucket;
            if buckets > 100_000 {
                return Err(Error::usage(format!(
                    "--bucket {}: {buckets} buckets are too many for this window; choose a wider one",
                    args.bucket
                )));
            }
            let timeline = timeline(client, scope, args.metric, args.by, bucket).await?;
            let events = timeline.events;
            Ok((timeline, events))
        })
        .await?;
    let timeline = &gathered.data;
    let (tables, pictures) = match args.report.format {
        Format::Table => (vec![timeline.overview()], timeline.chart(&display)),
        _ => (timeline.tables(), Vec::new()),
    };
    args.report.print(&gathered, tables, &pictures, false)?;
    Ok(Outcome::Success)
}
