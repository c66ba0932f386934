//! The top-level parser: the subcommands (each command's own arguments live beside its
//! `run` in `cmd/`), the global connection flag and the help texts they share.

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::exit::EXIT_CODES_HELP;

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
    Schema(cmd::schema::Args),
    /// Bulk-load NDJSON files (or stdin) with binary COPY, exactly once
    #[command(after_help = EXIT_CODES_HELP)]
    Load(cmd::load::Args),
    /// Report the slowest requests above a latency threshold
    Slow(cmd::slow::Args),
    /// List what has been loaded: each source's lines, bytes and last load
    Status(cmd::status::Args),
    /// Remove events older than a cutoff: whole partitions, or batched deletes
    Prune(cmd::prune::Args),
    /// Manage the private local PostgreSQL instance used when no connection is configured
    Local(cmd::local::Args),
    /// Write realistic synthetic NDJSON logs, deterministically from a seed
    Gen(cmd::generate::Args),
    /// Measure things on your own database
    Bench(cmd::bench::Args),
}
