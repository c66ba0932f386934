//! `logctl load`: turn the arguments into a load plan, run the pipeline, report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;

use crate::cmd::args::parse_size;
use crate::config::LoadConfig;
use crate::db::{Database, DbError, migrate};
use crate::exit::{ExitError, Outcome};
use crate::ingest::copy::NulPolicy;
use crate::ingest::parse::ParseOptions;
use crate::ingest::rejects::RejectSink;
use crate::ingest::shape::{Mapping, ShapeChoice};
use crate::ingest::source::{self, Input};
use crate::ingest::writer::IndexStrategy;
use crate::ingest::{self, LoadPlan, LoadReport, Stop};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files, directories, shell-style globs ('logs/*.ndjson*'), or - for stdin.
    /// gzip and zstd are detected from the content. Files are identified by their first
    /// line, so a renamed or compressed file is not loaded twice, and a file that grew
    /// loads only its new complete lines; a last line without its newline waits for the
    /// next run. stdin is read once and cannot be resumed where it stopped; what it
    /// committed is recorded under --source.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Append rejected lines to PATH as NDJSON (file, line, offset, reason, text) instead of stderr
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<PathBuf>,

    /// Stop once more than N lines were rejected (committed batches stay; exit code 5)
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,

    /// The name stdin is recorded under in the ledger
    #[arg(long, value_name = "NAME", default_value = "stdin")]
    pub source: String,

    /// Parse and validate everything and report what would be loaded; connects to nothing
    #[arg(long)]
    pub dry_run: bool,

    /// No summary on stderr (rejected lines are still reported)
    #[arg(long, short)]
    pub quiet: bool,

    /// Summary format: text on stderr, or one JSON object on stdout
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,

    /// Concurrent COPY streams [default: the number of CPUs, at least 2]
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Target size of one COPY batch (one transaction), e.g. 4MiB [default: 2MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub batch_bytes: Option<usize>,

    /// Lines longer than this are rejected without being read into memory [default: 1MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_line_bytes: Option<usize>,

    /// Zone for timestamps without an offset: an IANA name (Europe/Berlin) or +HH:MM [default: UTC]
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,

    /// Drop U+0000 characters instead of rejecting the lines that hold them
    #[arg(long)]
    pub strip_nul: bool,

    /// Read every line with this shape instead of detecting each line's own:
    /// generic, ecs, pino (also bunyan), zap, slog, nginx, docker
    #[arg(long, value_name = "NAME")]
    pub shape: Option<String>,

    /// Take a column from a dotted path, with a unit for latency_ms (ns, us, ms, s);
    /// repeatable, e.g. --map created_at=event.created --map latency_ms=timings.total:s
    #[arg(long = "map", value_name = "COLUMN=PATH[:UNIT]")]
    pub mappings: Vec<String>,

    /// The service of lines that name none
    #[arg(long, value_name = "NAME")]
    pub default_service: Option<String>,

    /// How indexes are kept up during the load. auto: into an empty table, drop the
    /// indexes and keys, load in one transaction, and build them again at the end (much
    /// less work for the server; one COPY stream; a failure or kill rolls back the whole
    /// load, indexes included); into a table with rows, keep. On a partitioned table, the
    /// same per partition: new partitions are filled in one transaction and get their
    /// indexes after their rows, existing ones keep theirs (all keep them when there are
    /// row triggers). A distributed table always keeps. keep: maintain them row by row,
    /// with --jobs concurrent COPY streams each committing its batches. rebuild: the
    /// one-transaction rebuild even when the plain table has rows (locked meanwhile)
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub index_strategy: Option<IndexStrategy>,

    /// Read load options from a TOML file (command-line flags win); see the README
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

/// The longest line accepted at all: jsonb cannot hold a document much larger.
const LINE_LIMIT_CEILING: usize = 256 * 1024 * 1024;

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let config = match &args.config {
        Some(path) => LoadConfig::read(path).map_err(ExitError::usage)?,
        None => LoadConfig::default(),
    };
    let inputs = source::expand(&args.inputs).map_err(|e| ExitError::usage(e.to_string()))?;
    if inputs
        .iter()
        .filter(|input| **input == Input::Stdin)
        .count()
        > 1
    {
        return Err(ExitError::usage("`-` (stdin) can be given only once").into());
    }
    let size = |flag: Option<usize>,
                configured: &Option<String>,
                default: &str|
     -> Result<usize, ExitError> {
        match (flag, configured) {
            (Some(size), _) => Ok(size),
            (None, Some(text)) => parse_size(text).map_err(ExitError::usage),
            (None, None) => Ok(parse_size(default).expect("valid default")),
        }
    };
    let max_line_bytes = size(args.max_line_bytes, &config.max_line_bytes, "1MiB")?;
    let batch_bytes = size(args.batch_bytes, &config.batch_bytes, "2MiB")?;
    if max_line_bytes > LINE_LIMIT_CEILING {
        return Err(ExitError::usage(format!(
            "--max-line-bytes can be at most {LINE_LIMIT_CEILING} (PostgreSQL's jsonb limit)"
        ))
        .into());
    }
    let zone = args
        .timezone
        .as_deref()
        .or(config.timezone.as_deref())
        .unwrap_or("UTC")
        .parse()
        .map_err(ExitError::usage)?;
    let mut mappings = Vec::new();
    for text in config.mappings().iter().chain(&args.mappings) {
        mappings.push(
            text.parse::<Mapping>()
                .map_err(|e| ExitError::usage(format!("--map {e}")))?,
        );
    }
    let shape = ShapeChoice::new(
        args.shape.as_deref().or(config.shape.as_deref()),
        &mappings,
        args.default_service
            .as_deref()
            .or(config.default_service.as_deref()),
    )
    .map_err(ExitError::usage)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let jobs = args.jobs.or(config.jobs).unwrap_or(cores.max(2)).max(1);
    let strip_nul = args.strip_nul || config.strip_nul.unwrap_or(false);
    let max_errors = args.max_errors.or(config.max_errors);
    let plan = LoadPlan {
        inputs,
        stdin_name: args.source.clone(),
        parse: ParseOptions {
            shape,
            zone,
            nul: if strip_nul {
                NulPolicy::Strip
            } else {
                NulPolicy::Reject
            },
            max_line_bytes,
        },
        jobs,
        parse_threads: cores.max(1),
        chunk_bytes: batch_bytes,
        max_errors,
        dry_run: args.dry_run,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        index_strategy: args
            .index_strategy
            .or(config.index_strategy)
            .unwrap_or(IndexStrategy::Auto),
    };
    let rejects = match args.rejects.as_ref().or(config.rejects.as_ref()) {
        Some(path) => RejectSink::file(path).map_err(|e| {
            ExitError::usage(format!(
                "cannot open the reject file {}: {e}",
                path.display()
            ))
        })?,
        None => RejectSink::Stderr,
    };
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
    print_summary(&report, &args, max_errors);
    if let Some(failure) = report.failure.take() {
        return Err(failure);
    }
    Ok(outcome_of(&report))
}

async fn require_schema(database: &Database) -> anyhow::Result<()> {
    let client = database.get().await?;
    let newest = migrate::MIGRATIONS.last().map_or(0, |m| m.version);
    match migrate::current_version(&client).await? {
        Some(version) if version >= newest => Ok(()),
        Some(version) => Err(DbError::NoSchema(format!(
            "schema version {version}, this logctl needs {newest}"
        ))
        .into()),
        None => Err(DbError::NoSchema("no logctl tables in this database".into()).into()),
    }
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

fn print_summary(report: &LoadReport, args: &Args, max_errors: Option<u64>) {
    if args.format == SummaryFormat::Json {
        println!(
            "{}",
            serde_json::to_string(report).expect("the report serialises")
        );
    }
    for error in &report.source_errors {
        eprintln!("logctl: error: {error}");
    }
    if args.quiet || args.format == SummaryFormat::Json {
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

fn summary_line(report: &LoadReport) -> String {
    let verb = if report.dry_run {
        "would load"
    } else {
        "loaded"
    };
    let mut line = format!(
        "{verb} {} of {} lines from {} {} ({} rejected, {} blank)",
        report.loaded,
        report.lines_read,
        report.files,
        if report.files == 1 { "input" } else { "inputs" },
        report.rejected,
        report.blank
    );
    if report.files_already_loaded > 0 {
        line.push_str(&format!(
            "; {} already loaded, nothing new",
            report.files_already_loaded
        ));
    }
    if !report.files_left_to_others.is_empty() {
        line.push_str(&format!(
            "; {} being loaded by another logctl, left to it",
            report.files_left_to_others.len()
        ));
    }
    if report.pending_bytes > 0 {
        line.push_str(&format!(
            "; {} bytes of unterminated last lines wait for the next run",
            report.pending_bytes
        ));
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
    if report.dry_run {
        line.push_str("; dry run, nothing was written");
    }
    line
}
