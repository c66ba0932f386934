//! Writing one batch: a READ COMMITTED transaction holding its COPY and its ledger
//! range. Rows the server refuses are rejected with the server's message and the
//! rest of the batch is sent again, so one bad row never costs the good ones.

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::IsolationLevel;

use super::batch::Batch;
use super::copy;
use super::ledger;
use super::rejects::RejectSink;
use crate::db::{self, Database};

const COPY_STATEMENT: &str = "COPY log_events (event_id, service_id, created_at, level, message, endpoint, method, status, latency_ms, request_id, metadata) FROM STDIN (FORMAT binary)";

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

/// Sends a batch until all of it is committed or an error other than a refused row
/// stops it. The row that COPY names is rejected; without a name the batch is halved
/// until the row is found. Rejects are written before each part commits, so a crash
/// can repeat a reject record but never lose one.
pub async fn write_batch(database: &Database, batch: Batch, rejects: &RejectSink) -> Written {
    let mut work = vec![batch];
    let mut committed = Vec::new();
    while let Some(mut batch) = work.pop() {
        match copy_and_commit(database, &mut batch, rejects).await {
            Ok(true) => committed.push(batch),
            Ok(false) => {
                batch.rows.clear();
                batch.rejects.clear();
                batch.blank_lines = 0;
                batch.start_line = batch.end_line;
                committed.push(batch);
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
            }
            Err(Failure::Row(error)) => {
                return Written {
                    committed,
                    error: Some(db::explain(error)),
                };
            }
            Err(Failure::Other(error)) => {
                return Written {
                    committed,
                    error: Some(error),
                };
            }
        }
    }
    Written {
        committed,
        error: None,
    }
}

/// One transaction. Ok(false) when some of the range was committed by someone else,
/// in which case nothing of this attempt is kept.
async fn copy_and_commit(
    database: &Database,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<bool, Failure> {
    let other = |error: tokio_postgres::Error| Failure::Other(db::explain(error));
    let mut connection = database.get().await.map_err(Failure::Other)?;
    let transaction = connection
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(other)?;
    if !batch.rows.is_empty() {
        let data = Bytes::from(std::mem::take(&mut batch.copy));
        let sent = async {
            let sink = transaction.copy_in(COPY_STATEMENT).await?;
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
    if !ledger::commit_range(&transaction, batch)
        .await
        .map_err(other)?
    {
        transaction.rollback().await.map_err(other)?;
        return Ok(false);
    }
    rejects
        .write(&batch.rejects)
        .map_err(|e| Failure::Other(anyhow::anyhow!("cannot write the rejected lines: {e}")))?;
    transaction.commit().await.map_err(other)?;
    Ok(true)
}

/// Errors caused by a row's content: data exceptions, integrity violations, limits.
fn is_row_error(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| matches!(&code.code()[..2], "22" | "23" | "54"))
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
