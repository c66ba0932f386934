//! Writing batches. Normally each batch is one READ COMMITTED transaction on a pooled
//! connection, holding its COPY and its ledger range. A load into an empty table can
//! instead run as one transaction that drops the table's indexes and constraints,
//! copies every batch (each in a savepoint), and builds them again before it commits:
//! the server's work shrinks, and a failure or a kill rolls everything back, indexes
//! included. Either way, rows the server refuses are rejected with the server's message
//! and the rest of their batch is sent again.

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::batch::Batch;
use super::copy;
use super::ledger;
use super::rejects::RejectSink;
use super::services::SharedClient;
use super::timestamp;
use crate::db::{self, Database};

const COPY_STATEMENT: &str = "COPY log_events (event_id, service_id, created_at, level, message, endpoint, method, status, latency_ms, request_id, metadata) FROM STDIN (FORMAT binary)";

/// How indexes are maintained during a load (`--index-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStrategy {
    /// Rebuild when the table is empty, keep otherwise.
    Auto,
    /// Insert into the indexes row by row, with concurrent COPY streams.
    Keep,
    /// Drop, load in one transaction, rebuild.
    Rebuild,
}

/// How one attempt at a batch failed.
enum Failure {
    /// The server refused the data of the COPY (a bad value, a violated constraint).
    Row(tokio_postgres::Error),
    /// Anything else: the connection, the ledger, the server's state.
    Other(anyhow::Error),
}

/// What became of a batch: the parts committed (a part whose range another loader had
/// committed meanwhile comes back empty), and the error that stopped the rest, if any.
pub struct Written {
    pub committed: Vec<Batch>,
    pub error: Option<anyhow::Error>,
}

/// Where a batch goes: its own transaction on a pooled connection (creating the
/// partitions it needs first, when the table is partitioned), or a savepoint in the
/// rebuild transaction.
pub enum Destination<'a> {
    Pool(&'a Database, Option<&'a Partitions>),
    Rebuild(&'a RebuildSession),
}

/// The partitions of a time-partitioned table this load knows to exist, by day.
#[derive(Default)]
pub struct Partitions {
    known: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl Partitions {
    /// Creates the partitions holding these days (days since 2000-01-01 UTC), each in
    /// its own short transaction, so a batch never waits on another's new partition.
    async fn ensure(&self, client: &Client, days: &[i64]) -> Result<(), tokio_postgres::Error> {
        for &day in days {
            if self.known.lock().expect("not poisoned").contains(&day) {
                continue;
            }
            let start = timestamp::to_datetime(day * copy::MICROS_PER_DAY);
            client
                .execute("SELECT logctl_ensure_partition($1)", &[&start])
                .await?;
            self.known.lock().expect("not poisoned").insert(day);
        }
        Ok(())
    }
}

/// Sends a batch until all of it is committed or an error other than a refused row
/// stops it. The row that COPY names is rejected; without a name the batch is halved
/// until the row is found. Rejects are written before each part commits, so a crash
/// can repeat a reject record but never lose one.
pub async fn write_batch(
    destination: Destination<'_>,
    batch: Batch,
    rejects: &RejectSink,
) -> Written {
    let mut work = vec![batch];
    let mut committed = Vec::new();
    while let Some(mut batch) = work.pop() {
        let attempt = match &destination {
            Destination::Pool(database, partitions) => match database.get().await {
                Ok(connection) => {
                    let ready = match partitions {
                        Some(partitions) => partitions.ensure(&connection, &batch.days).await,
                        None => Ok(()),
                    };
                    match ready {
                        Ok(()) => {
                            attempt(&connection, Scope::Transaction, &mut batch, rejects).await
                        }
                        Err(error) => Err(Failure::Other(db::explain(error))),
                    }
                }
                Err(error) => Err(Failure::Other(error)),
            },
            Destination::Rebuild(session) => {
                let client = session.client.lock().await;
                attempt(&client, Scope::Savepoint, &mut batch, rejects).await
            }
        };
        let error = match attempt {
            Ok(true) => {
                committed.push(batch);
                continue;
            }
            Ok(false) => {
                batch.rows.clear();
                batch.rejects.clear();
                batch.blank_lines = 0;
                batch.start_line = batch.end_line;
                committed.push(batch);
                continue;
            }
            Err(Failure::Row(error)) if !batch.rows.is_empty() => {
                let reason = format!("refused by PostgreSQL: {}", db::error_text(&error));
                match refused_row(&error).filter(|&row| row < batch.rows.len()) {
                    Some(row) => batch.reject_row(row, reason),
                    None if batch.rows.len() == 1 => batch.reject_row(0, reason),
                    None => {
                        let tail = batch.split_off(batch.rows.len() / 2);
                        work.push(tail);
                    }
                }
                work.push(batch);
                continue;
            }
            Err(Failure::Row(error)) => db::explain(error),
            Err(Failure::Other(error)) => error,
        };
        return Written {
            committed,
            error: Some(error),
        };
    }
    Written {
        committed,
        error: None,
    }
}

/// The unit a batch commits in.
#[derive(Clone, Copy)]
enum Scope {
    Transaction,
    Savepoint,
}

impl Scope {
    fn begin(self) -> &'static str {
        match self {
            Scope::Transaction => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Scope::Savepoint => "SAVEPOINT logctl_batch",
        }
    }

    fn commit(self) -> &'static str {
        match self {
            Scope::Transaction => "COMMIT",
            Scope::Savepoint => "RELEASE SAVEPOINT logctl_batch",
        }
    }

    fn rollback(self) -> &'static str {
        match self {
            Scope::Transaction => "ROLLBACK",
            Scope::Savepoint => "ROLLBACK TO SAVEPOINT logctl_batch",
        }
    }
}

/// One try at a batch. Ok(false) when some of its range was committed by someone else,
/// in which case nothing of this attempt is kept.
async fn attempt(
    client: &Client,
    scope: Scope,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<bool, Failure> {
    let other = |error: tokio_postgres::Error| Failure::Other(db::explain(error));
    client.batch_execute(scope.begin()).await.map_err(other)?;
    let outcome = copy_and_record(client, batch, rejects).await;
    let finish = match outcome {
        Ok(true) => scope.commit(),
        _ => scope.rollback(),
    };
    let finished = client.batch_execute(finish).await;
    match (outcome, finished) {
        (Ok(kept), Ok(())) => Ok(kept),
        (Ok(_), Err(error)) => Err(other(error)),
        // The first error tells what went wrong; a failed rollback after it adds nothing.
        (Err(failure), _) => Err(failure),
    }
}

async fn copy_and_record(
    client: &Client,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<bool, Failure> {
    let other = |error: tokio_postgres::Error| Failure::Other(db::explain(error));
    if !batch.rows.is_empty() {
        let data = Bytes::from(std::mem::take(&mut batch.copy));
        let sent = async {
            let sink = client.copy_in(COPY_STATEMENT).await?;
            futures_util::pin_mut!(sink);
            sink.feed(Bytes::from_static(copy::HEADER)).await?;
            sink.feed(data.clone()).await?;
            sink.feed(Bytes::from_static(copy::TRAILER)).await?;
            sink.finish().await
        }
        .await;
        batch.copy = Vec::from(data);
        if let Err(error) = sent {
            return Err(if is_row_error(&error) {
                Failure::Row(error)
            } else {
                other(error)
            });
        }
    }
    if !ledger::commit_range(client, batch).await.map_err(other)? {
        return Ok(false);
    }
    rejects
        .write(&batch.rejects)
        .map_err(|e| Failure::Other(anyhow::anyhow!("cannot write the rejected lines: {e}")))?;
    Ok(true)
}

/// Errors a row's content can cause: data exceptions, integrity violations, limits,
/// and what a trigger or function of the user's raises for it. Not the connection, the
/// server's resources or state, or a missing table.
fn is_row_error(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        matches!(
            &code.code()[..2],
            "22" | "23" | "54" | "P0" | "2F" | "38" | "39"
        )
    })
}

/// The tuple a COPY into log_events failed at, 0-based, from the error context
/// "COPY log_events, line 7, column metadata: ...". Other frames (triggers, functions,
/// a distributed table's shards) number their own lines and are not trusted.
fn refused_row(error: &tokio_postgres::Error) -> Option<usize> {
    let context = error.as_db_error()?.where_()?;
    let line = context
        .lines()
        .find_map(|frame| frame.strip_prefix("COPY log_events, line "))?;
    let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<usize>().ok()?.checked_sub(1)
}

/// The one transaction of a rebuild load, with the definitions it will restore.
pub struct RebuildSession {
    /// Shared with the service registry, which creates new services in this transaction.
    pub client: SharedClient,
    /// Statements that recreate the dropped indexes and constraints, in order.
    restore: Vec<String>,
}

/// Indexes first, then primary and unique keys, then foreign keys (which need the keys).
const DEFINITIONS_SQL: &str = "\
SELECT format('ALTER TABLE log_events DROP CONSTRAINT %I', conname),
       format('ALTER TABLE log_events ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid)),
       CASE contype WHEN 'f' THEN 3 ELSE 2 END
FROM pg_constraint
WHERE conrelid = 'log_events'::regclass AND contype IN ('p', 'u', 'f')
UNION ALL
SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid), 1
FROM pg_index
WHERE indrelid = 'log_events'::regclass
  AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = 'log_events'::regclass)
ORDER BY 3";

impl RebuildSession {
    /// Starts the rebuild transaction: locks the table, and unless `force`, gives up
    /// (None) when it is not empty. Then drops the indexes and key constraints.
    pub async fn begin(database: &Database, force: bool) -> anyhow::Result<Option<RebuildSession>> {
        let client = database.dedicated().await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED; LOCK TABLE log_events IN ACCESS EXCLUSIVE MODE")
            .await
            .map_err(db::explain)?;
        if !force {
            let empty: bool = client
                .query_one("SELECT NOT EXISTS (SELECT 1 FROM log_events)", &[])
                .await
                .map_err(db::explain)?
                .get(0);
            if !empty {
                client
                    .batch_execute("ROLLBACK")
                    .await
                    .map_err(db::explain)?;
                return Ok(None);
            }
        }
        let definitions = client
            .query(DEFINITIONS_SQL, &[])
            .await
            .map_err(db::explain)?;
        let mut restore = Vec::new();
        // Drop in reverse order (foreign keys before the keys they need), restore in order.
        for row in definitions.iter().rev() {
            client
                .batch_execute(row.get::<_, &str>(0))
                .await
                .map_err(db::explain)?;
        }
        for row in &definitions {
            restore.push(row.get::<_, String>(1));
        }
        Ok(Some(RebuildSession {
            client: std::sync::Arc::new(tokio::sync::Mutex::new(client)),
            restore,
        }))
    }

    /// Rebuilds the indexes and constraints and commits everything.
    pub async fn finish(self) -> anyhow::Result<()> {
        let client = self.client.lock().await;
        for statement in &self.restore {
            client.batch_execute(statement).await.map_err(db::explain)?;
        }
        client.batch_execute("COMMIT").await.map_err(db::explain)?;
        Ok(())
    }

    /// Rolls everything back: the rows, the ranges and the dropped indexes.
    pub async fn abandon(self) {
        let _ = self.client.lock().await.batch_execute("ROLLBACK").await;
    }
}
