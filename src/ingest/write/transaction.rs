//! One attempt at a batch: its COPY, its ledger range and its reject records, in its own
//! READ COMMITTED transaction on a pooled connection, or in a savepoint of the rebuild
//! transaction. Either all of it stays or none of it.

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::rejects::RejectSink;
use crate::analytics::compact;
use crate::ingest::batch::Batch;
use crate::ingest::encode::tuple;
use crate::ingest::ledger::{Range, Recorded};
use crate::{Error, Invalid};

/// Where one attempt at a batch goes.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    /// Its own transaction, into log_events, with its range recorded in it; on Citus,
    /// with the batch's spread key (see `spread.rs`).
    Transaction { spread: Option<i32> },
    /// A savepoint of the rebuild transaction, into `table`. The range is recorded when
    /// that transaction finishes: recording it now would hold the source's ledger lock
    /// to the end of the load, while the pooled streams committing other batches of the
    /// same source wait on that lock and the load waits on them.
    Savepoint {
        table: &'a str,
        ranges: &'a std::sync::Mutex<Vec<Range>>,
    },
}

/// How one attempt at a batch failed.
pub(super) enum Failure {
    /// The server refused the data of the COPY (a bad value, a violated constraint).
    Row(tokio_postgres::Error),
    /// The connection was found lost before the attempt sent anything: the server cut
    /// it while it waited in the pool (idle_session_timeout). Another one can carry it.
    LostWhileIdle(Error),
    /// Anything else: the connection, the ledger, the server's state.
    Other(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Other(error)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Other(error.into())
    }
}

impl Target<'_> {
    pub fn table(&self) -> &str {
        match self {
            Target::Transaction { .. } => "log_events",
            Target::Savepoint { table, .. } => table,
        }
    }

    fn begin(&self) -> &'static str {
        match self {
            Target::Transaction { .. } => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Target::Savepoint { .. } => "SAVEPOINT logctl_batch",
        }
    }

    fn commit(&self) -> &'static str {
        match self {
            Target::Transaction { .. } => "COMMIT",
            Target::Savepoint { .. } => "RELEASE SAVEPOINT logctl_batch",
        }
    }

    fn rollback(&self) -> &'static str {
        match self {
            Target::Transaction { .. } => "ROLLBACK",
            Target::Savepoint { .. } => "ROLLBACK TO SAVEPOINT logctl_batch",
        }
    }

    fn spread(&self) -> Option<i32> {
        match self {
            Target::Transaction { spread } => *spread,
            Target::Savepoint { .. } => None,
        }
    }

    /// Records the batch's range now, or for the end of the rebuild transaction.
    async fn record(&self, client: &Client, batch: &Batch) -> crate::Result<Recorded> {
        let range = Range::of(batch);
        match self {
            Target::Transaction { .. } => range.record(client).await,
            Target::Savepoint { ranges, .. } => {
                ranges.lock().expect("not poisoned").push(range);
                Ok(Recorded::Committed)
            }
        }
    }
}

/// Appends the rollup cells of the batch's rows, one delta per service, in the
/// transaction (or savepoint) of those rows: they commit or roll back together. On
/// Citus they carry the rows' spread key, which puts them on the rows' shard.
async fn append_rollup_deltas(
    client: &Client,
    batch: &mut Batch,
    spread: i32,
) -> crate::Result<()> {
    if cfg!(feature = "bench-without-rollups") {
        return Ok(());
    }
    compact::append_deltas(client, batch.rollup_deltas(), spread).await
}

/// What became of an attempt that did not fail.
pub(super) enum Attempted {
    Committed,
    /// Another loader committed these byte ranges, which overlap the batch's, after this
    /// load read the ledger: nothing of it is kept, and the rest of it is to be tried on
    /// its own.
    TakenByAnother(Vec<(u64, u64)>),
    /// Its file changed after its bytes were read: nothing of it is kept.
    SourceChanged(Invalid),
}

/// One try at a batch.
pub(super) async fn attempt(
    client: &Client,
    target: Target<'_>,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<Attempted, Failure> {
    if let Err(error) = client.batch_execute(target.begin()).await {
        return Err(match Error::from(error) {
            lost if lost.is_connection_lost() => Failure::LostWhileIdle(lost),
            other => Failure::Other(other),
        });
    }
    let outcome = copy_and_record(client, target, batch, rejects).await;
    let finish = match outcome {
        Ok(Attempted::Committed) => target.commit(),
        _ => target.rollback(),
    };
    let finished = client.batch_execute(finish).await;
    match (outcome, finished) {
        (Ok(kept), Ok(())) => Ok(kept),
        (Ok(_), Err(error)) => Err(error.into()),
        // The first error tells what went wrong; a failed rollback after it adds nothing.
        (Err(failure), _) => Err(failure),
    }
}

async fn copy_and_record(
    client: &Client,
    target: Target<'_>,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<Attempted, Failure> {
    if !batch.rows.is_empty() {
        let spread = target.spread();
        // The tuples are sent as they are, or each with the batch's spread key added (a
        // copy: the batch keeps its own tuples for a retry).
        let data = match spread {
            None => Bytes::from(std::mem::take(&mut batch.copy)),
            Some(key) => Bytes::from(tuple::with_spread(
                &batch.copy,
                batch.rows.iter().map(|row| row.copy_start..row.copy_end),
                key,
            )),
        };
        let sent = async {
            let statement = format!(
                "COPY {} ({}{}) FROM STDIN (FORMAT binary)",
                target.table(),
                tuple::COLUMNS,
                if spread.is_some() { ", spread" } else { "" }
            );
            let sink = client.copy_in(&statement).await?;
            futures_util::pin_mut!(sink);
            sink.feed(Bytes::from_static(tuple::HEADER)).await?;
            sink.feed(data.clone()).await?;
            sink.feed(Bytes::from_static(tuple::TRAILER)).await?;
            sink.finish().await
        }
        .await;
        if spread.is_none() {
            batch.copy = Vec::from(data);
        }
        if let Err(error) = sent {
            return Err(match Error::from(error) {
                Error::RowRefused(error) => Failure::Row(error),
                other => Failure::Other(other),
            });
        }
        append_rollup_deltas(client, batch, spread.unwrap_or(0)).await?;
    }
    // Last, just before the commit: the bytes must still be the file's they were read as.
    if let Some(guard) = &batch.source.guard
        && let Err(reason) = guard.check(batch.end_offset)
    {
        return Ok(Attempted::SourceChanged(reason));
    }
    if let Recorded::Overlaps(committed) = target.record(client, batch).await? {
        return Ok(Attempted::TakenByAnother(committed));
    }
    rejects
        .write(&batch.rejects)
        .map_err(|e| Error::io("cannot write the rejected lines", e))?;
    Ok(Attempted::Committed)
}
