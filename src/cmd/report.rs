//! `logctl report`: the whole picture of a window (headline figures against the period
//! before, a timeline, services, top routes, the latency distribution, the slowest
//! requests) as one self-contained HTML page to forward, as text tables, or as the JSON
//! of its data model for people who build their own pages.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::report_args::ReportArgs;
use crate::db::{Database, Isolation, transaction};
use crate::report::overview;
use crate::report::render::{self, html};
use crate::report::scope::why_empty;
use crate::report::{Format, Report};
use crate::terminal::{self, Display};
use crate::{Error, Outcome};

const EXAMPLES: &str =
    "  logctl report --since 7d --compare 1w -o week.html    # the weekly page to forward
  logctl report --since 30d --service checkout -o checkout.html
  logctl report --since yesterday --until today          # the same, as text tables
  logctl report --since 7d --format json > week.json     # the data model, for your own page";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    #[command(flatten)]
    pub report: ReportArgs,

    /// Write the report as one self-contained HTML page (inline CSS and SVG charts, no
    /// script, nothing fetched); implied by an --output ending in .html
    #[arg(long, conflicts_with = "format")]
    pub html: bool,

    /// Write to FILE instead of stdout; the file is replaced whole once written, so a
    /// reader never sees half a report
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Rows in each top list and in the slowest requests
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub limit: u16,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let html = args.html
        || args.output.as_deref().is_some_and(|path| {
            path.extension().is_some_and(|ext| {
                ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm")
            })
        });
    if html && args.report.format != Format::Table {
        return Err(Error::usage("--output NAME.html writes HTML: leave out --format").into());
    }
    let database = Database::open_existing(database_url, 1).await?;
    let described = database.target.describe();
    let report = &args.report;
    let limit = usize::from(args.limit);
    let (data, empty) = transaction(&*database.get().await?, Isolation::Snapshot, |client| {
        let described = described.clone();
        async move {
            let scope = report.scope(client).await?;
            let data = overview::build(client, &scope, limit, described).await?;
            let empty = match data.summary.overall.requests {
                0 => Some(why_empty(client, &scope).await?),
                _ => None,
            };
            Ok((data, empty))
        }
    })
    .await?;
    // An empty page is still written (a weekly job's reader sees the quiet week), but
    // the person running it is told why it is empty.
    if let Some(why) = empty {
        eprintln!("logctl: {why}");
    }
    let mut bytes = Vec::new();
    if html {
        bytes.extend_from_slice(html::page(&data).as_bytes());
    } else if args.report.format == Format::Json {
        serde_json::to_writer_pretty(&mut bytes, &data)?;
        bytes.push(b'\n');
    } else {
        let display = if args.output.is_some() {
            Display::PLAIN
        } else {
            terminal::stdout()
        };
        let tables = Report {
            database: data.database.clone(),
            tables: data.tables(),
        };
        render::write(&mut bytes, &tables, args.report.format, &display)?;
    }
    match &args.output {
        Some(path) => replace(path, &bytes)?,
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
    }
    Ok(Outcome::Success)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so that
/// a cron job's reader (a web server, a mailer) sees the old report or the new one.
fn replace(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--output {}: not a file name", path.display()))?;
    let mut temporary = name.to_os_string();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary);
    let written =
        std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.with_context(|| format!("--output {}: cannot write it", path.display()))
}
