//! The connection pool (bb8) shared by the commands, and how a target is chosen.

use std::time::Duration;

use bb8::{Pool, PooledConnection};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::settings::{Origin, SslMode, Target, configured_target};
use super::{ConnectFailure, DbError, error_text, local, tls};

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
    /// Resolves the target (flag, DATABASE_URL, PG*, local instance) and opens a pool.
    pub async fn open(database_url: Option<&str>, pool_size: u32) -> anyhow::Result<Database> {
        let target = match configured_target(database_url)? {
            Some(target) => target,
            None => {
                local::LocalInstance::for_current_user()?
                    .ensure_running_and_announce()
                    .await?
            }
        };
        Database::connect(target, pool_size).await
    }

    /// Opens a pool on an explicit target, failing at once with the server's reason
    /// if the first connection cannot be made.
    pub async fn connect(mut target: Target, pool_size: u32) -> anyhow::Result<Database> {
        let tls = tls::connector(&target)?;
        match connect_client(&target, tls.clone()).await {
            Ok(probe) => drop(probe),
            // libpq's `prefer` (and `allow`) falls back to a plain connection when the TLS
            // handshake fails, e.g. on a self-signed X.509 v1 certificate rustls cannot read.
            Err(DbError::Connect {
                failure: ConnectFailure::Tls,
                ..
            }) if matches!(target.ssl_mode, SslMode::Prefer | SslMode::Allow) => {
                target
                    .config
                    .ssl_mode(tokio_postgres::config::SslMode::Disable);
                target.ssl_mode = SslMode::Disable;
                drop(connect_client(&target, tls.clone()).await?);
            }
            Err(error) => return Err(error.into()),
        }
        let manager = PostgresConnectionManager::new(target.config.clone(), tls.clone());
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(60))
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(Database { target, pool, tls })
    }

    /// A pooled connection.
    pub async fn get(&self) -> anyhow::Result<Connection<'_>> {
        self.pool.get().await.map_err(|e| match e {
            bb8::RunError::User(error) => connect_error(&self.target, &error).into(),
            bb8::RunError::TimedOut => DbError::Connect {
                target: self.target.describe(),
                reason: "timed out waiting for a connection".into(),
                failure: ConnectFailure::Timeout,
            }
            .into(),
        })
    }

    /// A connection outside the pool, for session state such as advisory locks
    /// that must not leak to other users of a pooled connection.
    pub async fn dedicated(&self) -> anyhow::Result<Client> {
        Ok(connect_client(&self.target, self.tls.clone()).await?)
    }

    pub fn origin(&self) -> Origin {
        self.target.origin
    }
}

/// Opens one connection. tokio-postgres bounds only the socket's connect with
/// connect_timeout; libpq bounds the whole start-up (per host), and so does this.
async fn connect_client(target: &Target, tls: MakeRustlsConnect) -> Result<Client, DbError> {
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
                .map_err(|_| DbError::Connect {
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

fn connect_error(target: &Target, error: &tokio_postgres::Error) -> DbError {
    DbError::Connect {
        target: target.describe(),
        reason: error_text(error),
        failure: ConnectFailure::of(error),
    }
}
