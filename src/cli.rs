//! The top-level parser: the subcommands (each command's own arguments live beside its
//! `run` in `cmd/`), the global connection flag and the help texts they share.

use clap::{Parser, Subcommand};

use crate::{Outcome, cmd};

const CONNECTION_HELP: &str = "\
Connection: --database-url, else DATABASE_URL, else libpq's PG* variables (PGHOST, PGHOSTADDR,
PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSERVICE, PGSSLMODE, PGSSLROOTCERT, ...) with
~/.pgpass and pg_service.conf, as libpq reads them, else the managed local instance (see
`logctl local`), started on demand and announced.";

/// The exit codes, as `--help` and the README list them (see `Outcome`).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    failure (see the message on stderr), such as an unreadable input or a
       missing privilege
  2    usage error: bad arguments or configuration
  3    the database server cannot be reached, the connection was lost (the server
       stopped, or crashed and restarted), or the server ran out of a resource (disk
       full, out of memory, too many connections: SQLSTATE class 53); run it again
       once the server is back
  4    the load finished but some lines were rejected
  5    the load stopped because more lines than --max-errors were rejected
  130  interrupted by SIGINT/SIGTERM; what was committed stays committed";

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
    Schema(cmd::schema::Args),
    /// Bulk-load NDJSON files (or stdin) with binary COPY, exactly once
    #[command(after_help = EXIT_CODES_HELP)]
    Load(Box<cmd::load::Args>),
    /// Report the slowest requests above a latency threshold
    Slow(cmd::slow::Args),
    /// Error lines grouped by message signature, with the new ones marked
    Errors(cmd::errors::Args),
    /// Every line of one request across services, in time order, with the gaps
    Trace(cmd::trace::Args),
    /// List what has been loaded: each source's lines, bytes and last load
    Status(cmd::status::Args),
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
}

impl Cli {
    /// Runs the command asked for.
    pub async fn run(self) -> anyhow::Result<Outcome> {
        let url = self.database_url.as_deref();
        match self.command {
            Command::Schema(args) => cmd::schema::run(args, url).await,
            Command::Load(args) => cmd::load::run(*args, url).await,
            Command::Slow(args) => cmd::slow::run(args, url).await,
            Command::Errors(args) => cmd::errors::run(args, url).await,
            Command::Trace(args) => cmd::trace::run(args, url).await,
            Command::Status(args) => cmd::status::run(args, url).await,
            Command::Rollup(args) => cmd::rollup::run(args, url).await,
            Command::Prune(args) => cmd::prune::run(args, url).await,
            Command::Local(args) => cmd::local::run(args).await,
            Command::Gen(args) => cmd::generate::run(args),
            Command::Bench(args) => cmd::bench::run(args, url).await,
        }
    }
}
