//! The command line: every subcommand, flag and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::db::migrate::Interval;
use crate::exit::EXIT_CODES_HELP;
use crate::ingest::writer::IndexStrategy;

const CONNECTION_HELP: &str = "\
Connection: --database-url, else DATABASE_URL, else libpq's PG* variables (PGHOST, PGPORT,
PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT) with ~/.pgpass, else the managed
local instance (see `logctl local`), started on demand.";

#[derive(Debug, Parser)]
#[command(
    name = "logctl",
    version,
    about = "Load NDJSON application logs into PostgreSQL and answer questions about them",
    after_help = format!("{CONNECTION_HELP}\n\n{EXIT_CODES_HELP}"),
)]
pub struct Cli {
    /// PostgreSQL connection URL or key=value string (sslmode and sslrootcert as in libpq)
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the tables and indexes (idempotent)
    Schema(SchemaArgs),
    /// Bulk-load NDJSON files (or stdin) with binary COPY, exactly once
    #[command(after_help = EXIT_CODES_HELP)]
    Load(LoadArgs),
    /// Report the slowest requests above a latency threshold
    Slow(SlowArgs),
    /// List what has been loaded: each source's lines, bytes and last load
    Status(StatusArgs),
    /// Remove events older than a cutoff: whole partitions, or batched deletes
    Prune(PruneArgs),
    /// Manage the private local PostgreSQL instance used when no connection is configured
    Local(LocalArgs),
    /// Write realistic synthetic NDJSON logs, deterministically from a seed
    Gen(GenArgs),
    /// Measure things on your own database
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub action: BenchAction,
}

#[derive(Debug, Subcommand)]
pub enum BenchAction {
    /// The cost of each index on COPY: rows/s with 0, 1, 2, ... indexes, random versus
    /// time-ordered keys, B-tree versus BRIN on created_at. Runs in a scratch schema
    /// that is dropped afterwards; touches nothing else
    WritePenalty {
        /// Rows copied per configuration
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        /// Output format
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the SQL instead of running it (for the variant the other flags choose)
    #[arg(long)]
    pub print: bool,

    /// Create log_events partitioned by range on created_at, one partition per day,
    /// week or month; loads create the partitions they need, `logctl prune` drops old ones
    #[arg(long, value_enum, value_name = "INTERVAL")]
    pub partition: Option<Interval>,

    /// Create the schema on a Citus cluster: services as a reference table, log_events
    /// distributed by service_id (connect to the coordinator)
    #[arg(long)]
    pub distributed: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
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

pub use crate::report::Format as ReportFormat;

#[derive(Debug, Args)]
pub struct SlowArgs {
    /// Latency threshold in milliseconds: requests slower than this are listed
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub threshold: i32,

    /// How many requests to list
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: i64,

    /// Only requests since a duration ago (1h, 7d, 30m) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Only this service
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Output format; csv prints the requests, a blank line, then the per-service summary
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove events older than this: a duration (30d, 12h, 2w) or an RFC 3339 time.
    /// A partitioned table drops the partitions that end before it (detached
    /// concurrently: loads into the other partitions go on); a plain table deletes in
    /// batches of --batch-rows, each its own short transaction. The load ledger is kept,
    /// so pruned files are not loaded again
    #[arg(long, value_name = "WHEN")]
    pub older_than: String,

    /// List what would be removed, and remove nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Rows per DELETE on a plain table
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch_rows: i64,

    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    #[command(subcommand)]
    pub action: LocalAction,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum LocalAction {
    /// Create the instance if needed and start it
    Start,
    /// Stop it (fast shutdown; committed data is kept)
    Stop,
    /// Say whether it exists and runs
    Status,
    /// Print its connection URL (for psql)
    Url,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of lines
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub lines: u64,

    /// Seed: the same seed and options give the same output, byte for byte
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Number of distinct services
    #[arg(long, default_value_t = 20)]
    pub services: usize,

    /// Time of the first line (RFC 3339); lines follow at about 50 per second
    #[arg(long, value_name = "TIME", default_value = "2026-11-24T00:00:00Z")]
    pub start: String,

    /// Write here instead of stdout (a .gz or .zst name compresses)
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Sizes such as 4MiB, 512KiB, 1GB or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 4MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use KiB, MiB or GiB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .filter(|&size| size > 0)
        .ok_or_else(|| format!("`{text}` is not a usable size"))
}
