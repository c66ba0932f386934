//! The connection pool (bb8) shared by the commands, and how a target is chosen.

use std::time::Duration;

use bb8::{Pool, PooledConnection};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::settings::{Origin, SslMode, Target, configured_target};
use tokio_postgres::error::SqlState;

use super::local::{self, Creation};
use super::tls;
use crate::{Error, error_text};

pub type Manager = PostgresConnectionManager<MakeRustlsConnect>;
pub type Connection<'a> = PooledConnection<'a, Manager>;

/// A connected database: the pool plus what is needed to open dedicated connections.
#[derive(Clone)]
pub struct Database {
    pub target: Target,
    pool: Pool<Manager>,
    tls: MakeRustlsConnect,
}

impl Database {
    /// Resolves the target (flag, DATABASE_URL, PG*, local instance) and opens a pool;
    /// the local instance is created when it does not exist yet.
    pub async fn open(database_url: Option<&str>, pool_size: u32) -> crate::Result<Database> {
        Database::open_local_if(database_url, pool_size, Creation::Create).await
    }

    /// Like `open`, for commands that only read: a local instance that does not exist
    /// is not created (it would hold nothing to read); the error says how to create one.
    pub async fn open_existing(
        database_url: Option<&str>,
        pool_size: u32,
    ) -> crate::Result<Database> {
        Database::open_local_if(database_url, pool_size, Creation::RequireExisting).await
    }

    async fn open_local_if(
        database_url: Option<&str>,
        pool_size: u32,
        creation: Creation,
    ) -> crate::Result<Database> {
        let target = match configured_target(database_url)? {
            Some(target) => target,
            None => {
                local::LocalInstance::for_current_user()?
                    .ensure_running_and_announce(creation)
                    .await?
            }
        };
        Database::connect(target, pool_size).await
    }

    /// Opens a pool on an explicit target, failing at once with the server's reason
    /// if the first connection cannot be made.
    pub async fn connect(mut target: Target, pool_size: u32) -> crate::Result<Database> {
        let tls = tls::connector(&target)?;
        match connect_client(&target, tls.clone()).await {
            Ok(probe) => drop(probe),
            // libpq's `prefer` (and `allow`) falls back to a plain connection when the TLS
            // handshake fails, e.g. on a self-signed X.509 v1 certificate rustls cannot read.
            Err(Error::Connect {
                failure: ConnectFailure::Tls,
                ..
            }) if matches!(target.ssl_mode, SslMode::Prefer | SslMode::Allow) => {
                target
                    .config
                    .ssl_mode(tokio_postgres::config::SslMode::Disable);
                target.ssl_mode = SslMode::Disable;
                drop(connect_client(&target, tls.clone()).await?);
            }
            Err(error) => return Err(error),
        }
        let manager = PostgresConnectionManager::new(target.config.clone(), tls.clone());
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(60))
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(Database { target, pool, tls })
    }

    /// A pooled connection. One the server has closed meanwhile (its idle_session_timeout
    /// cuts idle ones) is discarded and another taken.
    pub async fn get(&self) -> crate::Result<Connection<'_>> {
        loop {
            let connection = self.pool.get().await.map_err(|e| match e {
                bb8::RunError::User(error) => connect_error(&self.target, &error),
                bb8::RunError::TimedOut => Error::Connect {
                    target: self.target.describe(),
                    reason: "timed out waiting for a connection".into(),
                    failure: ConnectFailure::Timeout,
                },
            })?;
            // Returned to the pool closed, it is dropped from it.
            if !connection.is_closed() {
                return Ok(connection);
            }
        }
    }

    /// A connection outside the pool, for session state such as advisory locks
    /// that must not leak to other users of a pooled connection.
    pub async fn dedicated(&self) -> crate::Result<Client> {
        connect_client(&self.target, self.tls.clone()).await
    }

    pub fn origin(&self) -> Origin {
        self.target.origin
    }
}

/// Opens one connection. tokio-postgres bounds only the socket's connect with
/// connect_timeout; libpq bounds the whole start-up (per host), and so does this.
async fn connect_client(target: &Target, tls: MakeRustlsConnect) -> Result<Client, Error> {
    let attempt = target.config.connect(tls);
    let connected = match target.config.get_connect_timeout() {
        Some(&limit) => {
            let hosts = target
                .config
                .get_hosts()
                .len()
                .max(target.config.get_hostaddrs().len())
                .max(1);
            let limit = limit * hosts as u32;
            tokio::time::timeout(limit, attempt)
                .await
                .map_err(|_| Error::Connect {
                    target: target.describe(),
                    reason: format!("no answer within {} s", limit.as_secs()),
                    failure: ConnectFailure::Timeout,
                })?
        }
        None => attempt.await,
    };
    let (client, connection) = connected.map_err(|error| connect_error(target, &error))?;
    tokio::spawn(async move {
        // The error, if any, also surfaces on the next statement sent through the client.
        let _ = connection.await;
    });
    Ok(client)
}

fn connect_error(target: &Target, error: &tokio_postgres::Error) -> Error {
    Error::Connect {
        target: target.describe(),
        reason: error_text(error),
        failure: ConnectFailure::of(error),
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

    pub fn hint(self) -> &'static str {
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
