//! The library's one error type, which classifies PostgreSQL errors once (unreachable,
//! connection lost, no schema, a row refused, ...) and knows its exit code, and the exit
//! codes themselves (`Outcome`).

use std::process::ExitCode;

use tokio_postgres::error::SqlState;

use crate::db::pool::ConnectFailure;
use crate::db::settings::SyntaxError;

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
    /// The database server could not be reached, the connection was lost (the server
    /// stopped, crashed and restarted, or cut the session), or it ran out of a resource
    /// (disk, memory, connections). Committed work stays; run again once it is back.
    Unreachable = 3,
    /// The load finished, but some lines were rejected.
    Rejected = 4,
    /// The load stopped early because more lines than --max-errors were rejected.
    TooManyRejects = 5,
    /// The load found nothing to read: an empty directory, one without a file with a
    /// log name, or a glob that matched nothing.
    NoInput = 6,
    /// `check` measured a condition given with --fail-if as breached.
    Breached = 7,
    /// `trace` found no line with the request id where it looked.
    NotFound = 8,
    /// Stopped by SIGINT or SIGTERM after committing what was in flight.
    Interrupted = 130,
}

impl Outcome {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as `--help` lists it.
    pub fn meaning(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => {
                "failure (see the message on stderr), such as an unreadable input or a \
                 missing privilege"
            }
            Outcome::Usage => "usage error: bad arguments or configuration",
            Outcome::Unreachable => {
                "the database server cannot be reached, the connection was lost (the server \
                 stopped, or crashed and restarted), or the server ran out of a resource \
                 (disk full, out of memory, too many connections: SQLSTATE class 53); run it \
                 again once the server is back"
            }
            Outcome::Rejected => "the load finished but some lines were rejected",
            Outcome::TooManyRejects => {
                "the load stopped because more lines than --max-errors were rejected"
            }
            Outcome::NoInput => {
                "the load found nothing to read: an empty directory, none of its files with \
                 a log name (see --include), or a glob that matched nothing"
            }
            Outcome::Breached => "check: a --fail-if condition was breached (the table says which)",
            Outcome::NotFound => {
                "trace found no line with the request id where it looked (the message says \
                 where, and how to look elsewhere)"
            }
            Outcome::Interrupted => {
                "interrupted by SIGINT/SIGTERM; what was committed stays committed"
            }
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome.code())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the library, each with a message that says what to
/// do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or configuration.
    #[error("{0}")]
    Usage(String),
    /// The inputs named no file to read.
    #[error("{0}")]
    NoInput(String),
    #[error("cannot connect to {target}: {reason}\nhint: {}", .failure.hint())]
    Connect {
        target: String,
        reason: String,
        failure: ConnectFailure,
    },
    #[error(
        "lost the connection to the database: {0}\nhint: what was committed stays committed; run the same command again to continue"
    )]
    ConnectionLost(String),
    #[error(
        "the database server ran out of a resource: {0}\nhint: free it on the server (disk \
         space, memory, connections, or the limit named above); what was committed stays \
         committed, run the same command again to continue"
    )]
    ServerResources(String),
    #[error(
        "the database has no logctl schema (or an older one): {0}\nhint: run `logctl schema` first"
    )]
    NoSchema(String),
    #[error(
        "permission denied: {0}\nhint: the owner of the logctl tables can grant what this \
         role needs with the statements `logctl schema --print-grants ROLE` prints (add \
         --read-only for a role that only runs reports)"
    )]
    PermissionDenied(String),
    #[error("{0}")]
    LocalInstance(String),
    #[error("bad connection settings: {0}")]
    Settings(String),
    #[error(
        "cannot read the connection string in {place}: {problem}\n\
         hint: write a postgresql://user@host:port/dbname URL or libpq key=value pairs; quote a \
         value that has spaces as key='a b', and write ' and \\ inside quotes as \\' and \\\\"
    )]
    BadConnectionString { place: String, problem: SyntaxError },
    #[error(
        "bad connection setting in {place}: {problem}\n\
         hint: correct it there; logctl reads connection settings as libpq does \
         (https://www.postgresql.org/docs/current/libpq-connect.html)"
    )]
    BadSetting { place: String, problem: String },
    #[error(
        "connection service `{name}` (from {place}) is not defined in {searched}\n\
         hint: add a [{name}] section to one of them, point PGSERVICEFILE at the file that has \
         it, or correct the name"
    )]
    UnknownService {
        name: String,
        place: String,
        searched: String,
    },
    #[error(
        "cannot read the connection service file {path}: {reason}\n\
         hint: make it a readable file, or point PGSERVICEFILE (or PGSYSCONFDIR) elsewhere"
    )]
    UnreadableServiceFile { path: String, reason: String },
    /// The server refused a row's content: a bad value, a violated constraint, a limit,
    /// or what a trigger of the user's raised for it.
    #[error(transparent)]
    RowRefused(tokio_postgres::Error),
    /// The server rolled the transaction back because of a concurrent one (a
    /// serialization failure or a deadlock); doing it again from the start is safe.
    #[error(transparent)]
    Conflict(tokio_postgres::Error),
    /// Any other failed statement.
    #[error(transparent)]
    Postgres(tokio_postgres::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A failure that is fully described by its message.
    #[error("{0}")]
    Failed(String),
    /// An error with what was being done when it happened.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The documented exit code this error ends the process with.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Usage(_)
            | Error::Settings(_)
            | Error::BadConnectionString { .. }
            | Error::BadSetting { .. }
            | Error::UnknownService { .. }
            | Error::UnreadableServiceFile { .. } => Outcome::Usage,
            Error::Connect { .. } | Error::ConnectionLost(_) | Error::ServerResources(_) => {
                Outcome::Unreachable
            }
            Error::NoInput(_) => Outcome::NoInput,
            Error::Context { source, .. } => source.outcome(),
            _ => Outcome::Failure,
        }
    }

    /// Whether the failed transaction may simply be done again: the server rolled it back
    /// because of a concurrent one.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::Conflict(_) => true,
            Error::Context { source, .. } => source.is_conflict(),
            _ => false,
        }
    }

    /// Whether the statement failed only because an earlier one of its transaction had
    /// ("current transaction is aborted"): that earlier error is the one to report.
    pub fn follows_another(&self) -> bool {
        match self {
            Error::Postgres(error) => error.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION),
            Error::Context { source, .. } => source.follows_another(),
            _ => false,
        }
    }

    /// Whether the connection was lost, so that nothing more can be sent through it.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::ConnectionLost(_) => true,
            Error::Context { source, .. } => source.is_connection_lost(),
            _ => false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }

    /// Wraps the error with what was being done.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The one place PostgreSQL errors are classified: a dead connection gets the "run it
/// again" hint, a server out of disk or memory too (the same event may show as either:
/// an error while the server writes, or the connection cut when it restarts after a
/// PANIC), a missing table means the schema was never created, a missing privilege says
/// how to grant it, a concurrent transaction's rollback may be redone, and a row's
/// content is told apart from everything else.
impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Error {
        if is_connection_lost(&error) {
            return Error::ConnectionLost(error_text(&error));
        }
        let Some(code) = error.code() else {
            return Error::Postgres(error);
        };
        // Class 53, insufficient resources: disk full, out of memory, too many
        // connections, a configured limit such as temp_file_limit.
        if code.code().starts_with("53") {
            return Error::ServerResources(error_text(&error));
        }
        if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return Error::Conflict(error);
        }
        if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            return Error::PermissionDenied(error_text(&error));
        }
        if *code == SqlState::UNDEFINED_TABLE
            || *code == SqlState::UNDEFINED_FUNCTION
            || *code == SqlState::UNDEFINED_COLUMN
        {
            return Error::NoSchema(error_text(&error));
        }
        // Data exceptions, integrity violations, limits, and what a trigger or function of
        // the user's raises for a row. Not the connection, the server's resources or
        // state, or a missing table.
        if matches!(
            &code.code()[..2],
            "22" | "23" | "54" | "P0" | "2F" | "38" | "39"
        ) {
            return Error::RowRefused(error);
        }
        Error::Postgres(error)
    }
}

/// Whether an error from tokio-postgres means the connection itself is gone (closed
/// socket, server shutdown or crash, backend terminated, a session cut by one of the
/// server's idle timeouts) rather than a failed statement.
fn is_connection_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        // 57P01-57P05: admin or crash shutdown, cannot connect now, database dropped,
        // idle_session_timeout; 25P03: idle_in_transaction_session_timeout.
        return code.code().starts_with("08")
            || code.code().starts_with("57P")
            || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT;
    }
    // No SQLSTATE: the error came from the socket, not from the server.
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

/// Why a value cannot be used: the reason of a line's reject record, of a time that
/// does not parse, of a file that no longer matches the ledger. Not a failure of the
/// program: the caller decides whether it becomes a reject, a usage error or a skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server's message (with detail) when there is one, else the client's.
pub fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_string();
            if let Some(detail) = db.detail() {
                text.push_str(": ");
                text.push_str(detail);
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}
