//! `logctl load`: merge the flags with the config file, turn them into a load plan, run
//! the pipeline, report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;

use crate::cli::after_help;
use crate::db::privileges::{self, Role};
use crate::db::{Database, Isolation, migrate, transaction};
use crate::ingest::{self, Input, LoadReport, NameFilter, Stop, expand_inputs};
use crate::{Error, Outcome};

mod options;

pub use options::LoadOptions;

const EXAMPLES: &str =
    "  logctl load 'logs/app-*.ndjson*'              # a glob (quoted), exactly once
  logctl load /var/log/app/                     # a directory's *.ndjson, *.jsonl, *.json, *.log
  logctl load /var/log/app/ --include '*.txt'   # ... or the files this glob matches instead
  tail -f app.log | logctl load - --source app  # stdin, recorded as `app`
  logctl load logs/ --rejects rejects.ndjson --max-errors 100 --format json";

const OUTCOMES: &[Outcome] = &[
    Outcome::Success,
    Outcome::Failure,
    Outcome::Usage,
    Outcome::Unreachable,
    Outcome::Rejected,
    Outcome::TooManyRejects,
    Outcome::NoInput,
    Outcome::Interrupted,
];

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, OUTCOMES))]
pub struct Args {
    /// Files, directories, shell-style globs ('logs/*.ndjson*'), or - for stdin.
    /// Directories and globs contribute regular files only (FIFOs, sockets and symbolic
    /// link loops found there are skipped with a warning); a FIFO named here is read
    /// like stdin. gzip and zstd are detected from the content. Files are identified by their first
    /// line, so a renamed or compressed file is not loaded twice, and a file that grew
    /// loads only its new complete lines; a last line without its newline waits for the
    /// next run. stdin is read once and cannot be resumed where it stopped; what it
    /// committed is recorded under --source, and a load with stdin (or a pipe) among its
    /// inputs commits batch by batch and keeps the indexes.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub options: LoadOptions,

    /// The name stdin is recorded under in the ledger
    #[arg(long, value_name = "NAME", default_value = "stdin", display_order = 3)]
    pub source: String,

    /// Parse and validate everything and report what would be loaded; connects to nothing
    #[arg(long, display_order = 4)]
    pub dry_run: bool,

    /// No summary on stderr (rejected lines are still reported)
    #[arg(long, short, display_order = 5)]
    pub quiet: bool,

    /// Summary format: text on stderr, or one JSON object on stdout
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text, display_order = 6)]
    pub format: SummaryFormat,

    /// Read load options from a TOML file (command-line flags win); see the README
    #[arg(long, value_name = "PATH", display_order = 16)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let file = match &args.config {
        Some(path) => LoadOptions::read(path)?,
        None => LoadOptions::default(),
    };
    let options = args.options.over(file);
    let names = NameFilter::including(&options.include)?;
    let inputs = expand_inputs(&args.inputs, options.rejects.as_deref(), &names)?;
    if inputs
        .inputs
        .iter()
        .filter(|input| **input == Input::Stdin)
        .count()
        > 1
    {
        return Err(Error::usage("`-` (stdin) can be given only once").into());
    }
    for skipped in &inputs.skipped {
        eprintln!("logctl: warning: {skipped}");
    }
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let plan = options.plan(inputs, args.source, args.dry_run, progress)?;
    let rejects = options.reject_sink()?;
    let (jobs, max_errors) = (plan.jobs, plan.max_errors);
    let database = if args.dry_run {
        None
    } else {
        let database = Database::open(database_url, jobs as u32 + 1).await?;
        require_schema(&database).await?;
        Some(database)
    };
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone());
    let mut report = ingest::run(plan, database, rejects, stop).await?;
    print_summary(&report, args.format, args.quiet, max_errors);
    if let Some(failure) = report.failure.take() {
        return Err(failure.into());
    }
    Ok(outcome_of(&report))
}

async fn require_schema(database: &Database) -> crate::Result<()> {
    let newest = migrate::MIGRATIONS.last().map_or(0, |m| m.version);
    let current = transaction(
        &*database.get().await?,
        Isolation::ReadCommitted,
        |client| async move { migrate::current_version(client).await },
    )
    .await?;
    match current {
        Some(version) if version >= newest => require_privileges(database).await,
        Some(version) => Err(Error::NoSchema(format!(
            "schema version {version}, this logctl needs {newest}"
        ))),
        None => Err(Error::NoSchema("no logctl tables in this database".into())),
    }
}

/// A role without the rights to load hears which it lacks before anything is read.
async fn require_privileges(database: &Database) -> crate::Result<()> {
    let missing = transaction(
        &*database.get().await?,
        Isolation::ReadCommitted,
        |client| privileges::missing(client, Role::Loader),
    )
    .await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "this role lacks what logctl load needs: {}",
        missing.join(", ")
    )))
}

/// The first SIGINT/SIGTERM stops reading and lets batches in flight commit; a second one
/// exits at once, and the server rolls back whatever was not committed.
fn watch_signals(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("logctl: stopping now; uncommitted batches are rolled back");
                std::process::exit(Outcome::Interrupted.code().into());
            }
            eprintln!(
                "logctl: stopping: committing the batches in flight (signal again to stop at once)"
            );
        }
    });
}

fn outcome_of(report: &LoadReport) -> Outcome {
    match report.stopped {
        Some(Stop::Interrupted) => Outcome::Interrupted,
        Some(Stop::TooManyRejects) => Outcome::TooManyRejects,
        Some(Stop::Failed) => Outcome::Failure,
        None if !report.source_errors.is_empty() => Outcome::Failure,
        None if report.rejected > 0 => Outcome::Rejected,
        None => Outcome::Success,
    }
}

fn print_summary(report: &LoadReport, format: SummaryFormat, quiet: bool, max_errors: Option<u64>) {
    if format == SummaryFormat::Json {
        println!(
            "{}",
            serde_json::to_string(report).expect("the report serialises")
        );
    }
    for error in &report.source_errors {
        eprintln!("logctl: error: {error}");
    }
    for change in &report.files_changed {
        eprintln!(
            "logctl: warning: {change}; what was read of it after the change was not loaded \
             under its old identity, and the file was read again as the new file it is \
             (its earlier content stays with the rotated copy, loaded when that is an input)"
        );
    }
    for warning in &report.warnings {
        eprintln!("logctl: warning: {warning}");
    }
    if quiet || format == SummaryFormat::Json {
        return;
    }
    eprintln!("logctl: {}", summary_line(report));
    match report.stopped {
        Some(Stop::Interrupted) => {
            eprintln!("logctl: interrupted; run the same command again to continue")
        }
        Some(Stop::TooManyRejects) => eprintln!(
            "logctl: stopped after more than {} rejected lines; the batches before that are committed",
            max_errors.unwrap_or_default()
        ),
        _ => {}
    }
}

fn inputs(count: usize) -> String {
    format!("{count} {}", if count == 1 { "input" } else { "inputs" })
}

fn summary_line(report: &LoadReport) -> String {
    let verb = if report.dry_run {
        "would load"
    } else {
        "loaded"
    };
    let mut line = format!(
        "{verb} {} of {} lines from {} ({} rejected, {} blank)",
        report.loaded,
        report.lines_read,
        inputs(report.files),
        report.rejected,
        report.blank
    );
    if report.files_already_loaded > 0 {
        line.push_str(&format!(
            "; {} already loaded, nothing new",
            inputs(report.files_already_loaded)
        ));
    }
    if !report.files_left_to_others.is_empty() {
        line.push_str(&format!(
            "; {} being loaded by another logctl, left to it",
            report.files_left_to_others.len()
        ));
    }
    if report.files_waiting > 0 {
        line.push_str(&format!(
            "; {} ending in a line without its newline ({} bytes), which waits for the next run",
            inputs(report.files_waiting),
            report.pending_bytes
        ));
    }
    if report.files_empty > 0 {
        line.push_str(&format!("; {} empty", inputs(report.files_empty)));
    }
    if !report.services_created.is_empty() {
        let verb = if report.dry_run { "would add" } else { "added" };
        line.push_str(&format!(
            "; {verb} {} services",
            report.services_created.len()
        ));
    }
    let rate = report.lines_read as f64 / report.seconds.max(1e-3);
    line.push_str(&format!(" in {:.2} s ({rate:.0} lines/s)", report.seconds));
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|phase| format!("{} {:.2} s", phase.name, phase.seconds))
            .collect();
        line.push_str(&format!(", of which {}", phases.join(", ")));
    }
    if report.dry_run {
        line.push_str("; dry run, nothing was written");
    }
    line
}
