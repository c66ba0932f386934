//! The top-level parser: the subcommands (each command's own arguments live beside its
//! `run` in `cmd/`), the global flags (connection, colour, width) and the help texts
//! they share: connection settings, and each command's examples and exit codes.

use clap::{Parser, Subcommand};

use crate::terminal::{self, ColorChoice};
use crate::{Outcome, cmd};

const CONNECTION_HELP: &str = "\
Connection: --database-url, else DATABASE_URL, else libpq's PG* variables (PGHOST, PGHOSTADDR,
PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSERVICE, PGSSLMODE, PGSSLROOTCERT, ...) with
~/.pgpass and pg_service.conf, as libpq reads them, else the managed local instance (see
`logctl local`), started on demand and announced.";

/// Every exit code, as the top-level `--help` and the README list them.
pub const ALL_OUTCOMES: &[Outcome] = &[
    Outcome::Success,
    Outcome::Failure,
    Outcome::Usage,
    Outcome::Unreachable,
    Outcome::Rejected,
    Outcome::TooManyRejects,
    Outcome::NoInput,
    Outcome::Breached,
    Outcome::NotFound,
    Outcome::Interrupted,
];

/// The exit codes of a command that reads or writes the database and nothing more.
pub const DATABASE_OUTCOMES: &[Outcome] = &[
    Outcome::Success,
    Outcome::Failure,
    Outcome::Usage,
    Outcome::Unreachable,
];

/// The exit-code list of `--help`.
pub fn exit_codes_help(outcomes: &[Outcome]) -> String {
    let mut help = String::from("Exit codes:");
    for outcome in outcomes {
        let code = format!("  {:<4} ", outcome.code());
        let listed = textwrap::fill(
            outcome.meaning(),
            textwrap::Options::new(88)
                .initial_indent(&code)
                .subsequent_indent("       "),
        );
        help.push('\n');
        help.push_str(&listed);
    }
    help
}

/// What a subcommand's `--help` ends with: its examples, then its exit codes.
pub fn after_help(examples: &str, outcomes: &[Outcome]) -> String {
    format!("Examples:\n{examples}\n\n{}", exit_codes_help(outcomes))
}

#[derive(Debug, Parser)]
#[command(
    name = "logctl",
    version,
    about = "Load NDJSON application logs into PostgreSQL and answer questions about them",
    after_help = format!("{CONNECTION_HELP}\n\n{}", exit_codes_help(ALL_OUTCOMES)),
)]
pub struct Cli {
    /// PostgreSQL connection URL or key=value string (sslmode and sslrootcert as in libpq)
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Colour output: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Fit text tables to this many columns [default: the terminal's width, else
    /// COLUMNS, else no limit when not on a terminal]
    #[arg(long, global = true, value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(20..))]
    pub width: Option<u16>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the tables and indexes (idempotent)
    Schema(cmd::schema::Args),
    /// Bulk-load NDJSON files (or stdin) with binary COPY, exactly once
    Load(Box<cmd::load::Args>),
    /// Report the slowest requests above a latency threshold
    Slow(cmd::slow::Args),
    /// Error lines grouped by message signature, with the new ones marked
    Errors(cmd::errors::Args),
    /// Every line of one request across services, in time order, with the gaps
    Trace(cmd::trace::Args),
    /// The whole picture of a window as one HTML page to forward (or text, or JSON)
    Report(cmd::report::Args),
    /// List what has been loaded: each source's lines, bytes and last load
    Status(cmd::status::Args),
    Summary(cmd::summary::Args),
    Timeline(cmd::timeline::Args),
    Top(cmd::top::Args),
    Latency(cmd::latency::Args),
    Check(cmd::check::Args),
    /// Fold, recompute or check the rollups the reports read
    Rollup(cmd::rollup::Args),
    /// Remove events older than a cutoff: whole partitions, or batched deletes
    Prune(cmd::prune::Args),
    /// Manage the private local PostgreSQL instance used when no connection is configured
    Local(cmd::local::Args),
    /// Write realistic synthetic NDJSON logs, deterministically from a seed
    Gen(cmd::generate::Args),
    /// Measure things on your own database
    Bench(cmd::bench::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(cmd::completions::Args),
    /// Print the manual page (roff), for man or for installing under man1/
    Man(cmd::man::Args),
}

impl Cli {
    /// Runs the command asked for.
    pub async fn run(self) -> anyhow::Result<Outcome> {
        terminal::configure(self.color, self.width.map(usize::from));
        let url = self.database_url.as_deref();
        match self.command {
            Command::Schema(args) => cmd::schema::run(args, url).await,
            Command::Load(args) => cmd::load::run(*args, url).await,
            Command::Slow(args) => cmd::slow::run(args, url).await,
            Command::Errors(args) => cmd::errors::run(args, url).await,
            Command::Trace(args) => cmd::trace::run(args, url).await,
            Command::Report(args) => cmd::report::run(args, url).await,
            Command::Status(args) => cmd::status::run(args, url).await,
            Command::Summary(args) => cmd::summary::run(args, url).await,
            Command::Timeline(args) => cmd::timeline::run(args, url).await,
            Command::Top(args) => cmd::top::run(args, url).await,
            Command::Latency(args) => cmd::latency::run(args, url).await,
            Command::Check(args) => cmd::check::run(args, url).await,
            Command::Rollup(args) => cmd::rollup::run(args, url).await,
            Command::Prune(args) => cmd::prune::run(args, url).await,
            Command::Local(args) => cmd::local::run(args).await,
            Command::Gen(args) => cmd::generate::run(args),
            Command::Bench(args) => cmd::bench::run(args, url).await,
            Command::Completions(args) => cmd::completions::run(args),
            Command::Man(args) => cmd::man::run(args),
        }
    }
}
