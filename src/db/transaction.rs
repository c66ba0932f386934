//! Transactions that say what they need. A server may default to another isolation level
//! (`default_transaction_isolation = serializable`), cut idle sessions, or sit behind a
//! transaction-pooling pooler (pgbouncer) that hands each transaction to any of its
//! server connections. So every statement logctl sends runs in a transaction that names
//! its isolation level, a transaction the server rolled back for a concurrent one is
//! done again, and nothing relies on session state.

use std::time::Duration;

use tokio_postgres::Client;

/// The isolation a transaction pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Each statement sees what committed before it: the ledger's locks and checks
    /// rely on it, and writes never fail on a concurrent one's.
    ReadCommitted,
    /// Several queries of one report, all from one snapshot; read-only, so it never
    /// fails on a concurrent writer.
    Snapshot,
    /// Reads and writes all from one snapshot (a rebuild: the raw rows and the deltas
    /// pending as of one instant). A concurrent writer of the same rows rolls it back,
    /// and it is done again.
    SnapshotWrites,
}

impl Isolation {
    fn begin(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
            // Without JIT: a report's queries read few rows, but the planner cannot see
            // through the unnest of their windows and guesses a million, and compiling
            // for that costs about a second each.
            Isolation::Snapshot => {
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = off"
            }
            Isolation::SnapshotWrites => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        }
    }
}

/// How many times a transaction is tried when concurrent ones keep rolling it back.
const ATTEMPTS: u32 = 5;

/// Runs `work` in one transaction of this isolation on `client`, done again from the
/// start (after a short pause) when the server rolls it back for a concurrent one:
/// a serialization failure or a deadlock. `work` must be safe to redo. A pooled
/// connection the server cut while it was idle never gets here (`Database::get`).
pub async fn transaction<'c, T, Work>(
    client: &'c Client,
    isolation: Isolation,
    work: impl Fn(&'c Client) -> Work,
) -> crate::Result<T>
where
    Work: Future<Output = crate::Result<T>>,
{
    let mut attempt = 1;
    loop {
        client.batch_execute(isolation.begin()).await?;
        let done = match work(client).await {
            Ok(value) => client
                .batch_execute("COMMIT")
                .await
                .map(|()| value)
                .map_err(crate::Error::from),
            Err(error) => {
                // The error says what went wrong; a failed rollback after it adds nothing.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(error)
            }
        };
        match done {
            Err(error) if error.is_conflict() && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Frees the transaction it runs in from the server's timeouts, for logctl's own long
/// transactions (the index rebuild, a load's liveness), which wait on the input between
/// statements and end with statements that take as long as the data is large. The
/// settings a server version lacks are skipped.
pub async fn pin_long_transaction(client: &Client) -> crate::Result<()> {
    client
        .batch_execute(
            "SELECT set_config(name, '0', true) FROM pg_settings \
             WHERE name IN ('idle_in_transaction_session_timeout', 'statement_timeout', \
                            'transaction_timeout')",
        )
        .await?;
    Ok(())
}
