//! The process exit codes logctl documents, and how an error maps onto one.

use std::process::ExitCode;

/// How a command ended. The numeric values are part of the public interface:
/// scripts and cron jobs branch on them, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Success = 0,
    /// Something failed that is not covered by a more specific code.
    Failure = 1,
    /// The command line or a configuration file was wrong.
    Usage = 2,
    /// The database could not be reached (or the connection was lost).
    Unreachable = 3,
    /// The load finished, but some lines were rejected.
    Rejected = 4,
    /// The load stopped early because more lines than --max-errors were rejected.
    TooManyRejects = 5,
    /// Stopped by SIGINT or SIGTERM after committing what was in flight.
    Interrupted = 130,
}

impl Outcome {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome.code())
    }
}

/// The exit codes as shown in `--help` and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    failure (see the message on stderr)
  2    usage error: bad arguments or configuration
  3    cannot connect to the database, or the connection was lost
  4    the load finished but some lines were rejected
  5    the load stopped because more lines than --max-errors were rejected
  130  interrupted by SIGINT/SIGTERM; what was committed stays committed";

/// An error that carries its own exit code; anything else exits with `Failure`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub outcome: Outcome,
    pub message: String,
}

impl ExitError {
    pub fn usage(message: impl Into<String>) -> Self {
        ExitError {
            outcome: Outcome::Usage,
            message: message.into(),
        }
    }
}

/// Picks the exit code for an error by looking through its chain of causes.
pub fn outcome_of(error: &anyhow::Error) -> Outcome {
    for cause in error.chain() {
        if let Some(exit) = cause.downcast_ref::<ExitError>() {
            return exit.outcome;
        }
        if let Some(db) = cause.downcast_ref::<crate::db::DbError>() {
            if db.is_unreachable() {
                return Outcome::Unreachable;
            }
            if db.is_bad_configuration() {
                return Outcome::Usage;
            }
        }
        if let Some(pg) = cause.downcast_ref::<tokio_postgres::Error>()
            && crate::db::is_connection_lost(pg)
        {
            return Outcome::Unreachable;
        }
    }
    Outcome::Failure
}
