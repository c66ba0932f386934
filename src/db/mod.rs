//! The database layer: where to connect, the connection pool, the managed local
//! instance and the schema migrations.

pub mod local;
pub mod migrate;
pub mod pgpass;
pub mod pool;
pub mod settings;
pub mod tls;

pub use pool::Database;
pub use settings::Target;

use tokio_postgres::error::SqlState;

/// Errors of the database layer, each with a message that says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot connect to {target}: {reason}\n\
         hint: check that the server is running and that --database-url, DATABASE_URL or the PG* \
         variables point at it (with none of them set, logctl uses its local instance)"
    )]
    Connect { target: String, reason: String },
    #[error(
        "lost the connection to the database: {0}\nhint: what was committed stays committed; run the same command again to continue"
    )]
    ConnectionLost(String),
    #[error(
        "the database has no logctl schema (or an older one): {0}\nhint: run `logctl schema` first"
    )]
    NoSchema(String),
    #[error("{0}")]
    LocalInstance(String),
    #[error("bad connection settings: {0}")]
    Settings(String),
    #[error(
        "cannot read the connection string in {place}: {problem}\n\
         hint: write a postgresql://user@host:port/dbname URL or libpq key=value pairs; quote a \
         value that has spaces as key='a b', and write ' and \\ inside quotes as \\' and \\\\"
    )]
    BadConnectionString {
        place: String,
        problem: settings::SyntaxError,
    },
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
}

impl DbError {
    /// Whether this error means the server could not be reached, which gets its own exit code.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DbError::Connect { .. } | DbError::ConnectionLost(_))
    }

    /// Whether the connection settings are wrong as written: a usage error.
    pub fn is_bad_configuration(&self) -> bool {
        matches!(
            self,
            DbError::Settings(_)
                | DbError::BadConnectionString { .. }
                | DbError::BadSetting { .. }
                | DbError::UnknownService { .. }
                | DbError::UnreadableServiceFile { .. }
        )
    }
}

/// Whether an error from tokio-postgres means the connection itself is gone
/// (closed socket, server shutdown, backend terminated) rather than a failed statement.
pub fn is_connection_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        return code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
    }
    // No SQLSTATE: the error came from the socket, not from the server.
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

/// Turns a failed statement into the error users should see: a missing table means
/// the schema was never created, a dead connection gets the "run it again" hint.
pub fn explain(error: tokio_postgres::Error) -> anyhow::Error {
    if is_connection_lost(&error) {
        return DbError::ConnectionLost(error_text(&error)).into();
    }
    if let Some(code) = error.code()
        && (*code == SqlState::UNDEFINED_TABLE
            || *code == SqlState::UNDEFINED_FUNCTION
            || *code == SqlState::UNDEFINED_COLUMN)
    {
        return DbError::NoSchema(error_text(&error)).into();
    }
    anyhow::Error::new(error)
}

/// The server's message (with detail and hint) when there is one, else the client's.
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
