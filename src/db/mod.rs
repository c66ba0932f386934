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

/// What failed when connecting, each with what to check next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    Authentication,
    MissingDatabase,
    NotListening,
    Timeout,
    Tls,
    Other,
}

impl ConnectFailure {
    /// Classifies a failed connection attempt: by SQLSTATE when the server answered,
    /// else by what tokio-postgres says failed, else by the socket error.
    pub fn of(error: &tokio_postgres::Error) -> ConnectFailure {
        if let Some(code) = error.code() {
            return if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                ConnectFailure::Authentication
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                ConnectFailure::MissingDatabase
            } else {
                ConnectFailure::Other
            };
        }
        // tokio-postgres keeps its error kinds private; its messages name them.
        let source = std::error::Error::source(error);
        match error.to_string().as_str() {
            "error performing TLS handshake" => return ConnectFailure::Tls,
            "timeout waiting for server" => return ConnectFailure::Timeout,
            "authentication error" => return ConnectFailure::Authentication,
            "invalid configuration"
                if source.is_some_and(|s| s.to_string() == "password missing") =>
            {
                return ConnectFailure::Authentication;
            }
            _ => {}
        }
        let io_kind = source
            .and_then(|source| source.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        match io_kind {
            Some(std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
                ConnectFailure::NotListening
            }
            Some(std::io::ErrorKind::TimedOut) => ConnectFailure::Timeout,
            _ => ConnectFailure::Other,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            ConnectFailure::Authentication => {
                "the server refused this user or password: check the user and the password \
                 (in the connection settings, PGPASSWORD, or the password file ~/.pgpass or \
                 PGPASSFILE) and that the server's pg_hba.conf lets this user in"
            }
            ConnectFailure::MissingDatabase => {
                "that database does not exist: create it (`createdb NAME`), or correct dbname \
                 (the URL's /NAME, dbname= or PGDATABASE)"
            }
            ConnectFailure::NotListening => {
                "no server is listening there: check that it is running, and the host and \
                 port (or PGHOST/PGPORT) it is reached at"
            }
            ConnectFailure::Timeout => {
                "the server did not answer in time: check the network and firewalls on the way \
                 to it, or allow longer with connect_timeout (PGCONNECT_TIMEOUT)"
            }
            ConnectFailure::Tls => {
                "the TLS handshake failed: check sslmode (disable, allow, prefer, require, \
                 verify-ca, verify-full) against what the server offers, and sslrootcert for \
                 verify-ca/verify-full"
            }
            ConnectFailure::Other => {
                "check that the server is running and that --database-url, DATABASE_URL or the \
                 PG* variables point at it (with none of them set, logctl uses its local instance)"
            }
        }
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
