//! The load ledger, owner of the exactly-once protocol: which byte ranges of which
//! source are committed. A loader claims a source (a row in `logctl_claims`, alive while
//! the load is), reads only the gaps, and every batch records its range inside the
//! transaction of its rows; at the end the ranges of each source are compacted. Nothing
//! here is session state, so it all works through a transaction-pooling pooler, and
//! every step is a short transaction that may be redone on another connection.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::{Client, GenericClient};

use super::batch::{Batch, SourceRef};
use super::read::{ClaimAnswer, ClaimRequest, Gap, Identity};
use crate::db::transaction::pin_long_transaction;
use crate::db::{Database, Isolation, locks, transaction};

/// A committed stretch of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CommittedRange {
    start: u64,
    end: u64,
    end_line: u64,
}

/// The committed state of every source, read and written through pooled connections
/// (none in a dry run).
pub(crate) struct Ledger {
    database: Option<Database>,
    liveness: Option<Liveness>,
    /// Claims held, by source index: the first-line hash each is claimed under. The
    /// database would refuse a second claim of one first line too; this spares the trip.
    held: HashMap<usize, [u8; 32]>,
    /// Sources with new commits, compacted at the end.
    to_compact: Vec<[u8; 32]>,
}

impl Ledger {
    pub fn new(database: Option<Database>) -> Ledger {
        Ledger {
            database,
            liveness: None,
            held: HashMap::new(),
            to_compact: Vec::new(),
        }
    }

    /// Claims a source for this loader if no other live load holds one with the same
    /// first line, finds it in the ledger by any of its prefixes (or records it under its
    /// own key), and answers with what is left to read of it.
    pub async fn claim(&mut self, request: &ClaimRequest) -> crate::Result<ClaimAnswer> {
        let source = |key| {
            Arc::new(SourceRef {
                index: request.index,
                name: request.name.clone(),
                key,
                guard: request.guard.clone(),
            })
        };
        let Some(database) = &self.database else {
            return Ok(ClaimAnswer::Claimed {
                source: source(request.identity.own_key().1),
                gaps: gaps(&[]),
            });
        };
        let claim_key = *request.identity.first_line();
        if self.held.values().any(|held| *held == claim_key) {
            return Ok(ClaimAnswer::Busy);
        }
        let loader = Liveness::ensure(&mut self.liveness, database).await?;
        let claimed = transaction(
            &*database.get().await?,
            Isolation::ReadCommitted,
            |client| async move {
                let claimed: bool = client
                    .query_one(
                        "SELECT logctl_claim($1, $2)",
                        &[&claim_key.as_slice(), &loader],
                    )
                    .await?
                    .get(0);
                if !claimed {
                    return Ok(None);
                }
                Ok(Some(
                    find_or_record(client, &request.identity, &request.name).await?,
                ))
            },
        )
        .await?;
        let Some((key, committed)) = claimed else {
            return Ok(ClaimAnswer::Busy);
        };
        self.held.insert(request.index, claim_key);
        Ok(ClaimAnswer::Claimed {
            source: source(key),
            gaps: gaps(&committed),
        })
    }

    /// Lets other loaders have the source: all of it that this load read is committed.
    pub async fn release(&mut self, index: usize) -> crate::Result<()> {
        let (Some(database), Some(liveness), Some(claim_key)) =
            (&self.database, &self.liveness, self.held.remove(&index))
        else {
            return Ok(());
        };
        let loader = liveness.loader;
        transaction(
            &*database.get().await?,
            Isolation::ReadCommitted,
            |client| async move {
                client
                    .execute(
                        "DELETE FROM logctl_claims WHERE claim_key = $1 AND loader = $2",
                        &[&claim_key.as_slice(), &loader],
                    )
                    .await?;
                Ok(())
            },
        )
        .await
    }

    /// Notes that a source has new commits, to compact at the end.
    pub fn committed_to(&mut self, key: [u8; 32]) {
        if !self.to_compact.contains(&key) {
            self.to_compact.push(key);
        }
    }

    /// Whether `finish` has committed ranges to compact: a phase worth naming.
    pub fn compacts(&self) -> bool {
        self.database.is_some() && !self.to_compact.is_empty()
    }

    /// Releases the claims still held, merges each touched source's adjacent ranges into
    /// one row, and ends this load's liveness. Safe beside other loaders: compaction
    /// takes the same lock as their commits. Everything is tried; the first error is
    /// returned, and none of it undoes a commit.
    pub async fn finish(mut self) -> crate::Result<()> {
        let Some(database) = self.database.take() else {
            return Ok(());
        };
        let mut first_error = None;
        if let Some(liveness) = self.liveness.take() {
            let loader = liveness.loader;
            let released = transaction(
                &*database.get().await?,
                Isolation::ReadCommitted,
                |client| async move {
                    client
                        .execute("DELETE FROM logctl_claims WHERE loader = $1", &[&loader])
                        .await?;
                    Ok(())
                },
            )
            .await;
            if let Err(error) = released {
                first_error.get_or_insert(error);
            }
            liveness.end().await;
        }
        for key in &self.to_compact {
            let compacted = transaction(
                &*database.get().await?,
                Isolation::ReadCommitted,
                |client| async move {
                    client
                        .execute(
                            "SELECT logctl_compact_ranges($1, $2)",
                            &[&key.as_slice(), &commit_lock(key)],
                        )
                        .await?;
                    Ok(())
                },
            )
            .await;
            if let Err(error) = compacted {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// This load's liveness: a transaction of its own, held open on a dedicated connection
/// for the whole load, holding the lock that says its claims are alive. If the load
/// dies, its connection closes and the server ends the transaction; a pooler in
/// transaction mode closes the server connection of a client that left mid-transaction.
struct Liveness {
    client: Client,
    loader: i32,
}

impl Liveness {
    /// This load's number, beginning its liveness transaction first if it has none or
    /// lost it (its claims looked dead meanwhile; exactly-once never depended on them).
    async fn ensure(slot: &mut Option<Liveness>, database: &Database) -> crate::Result<i32> {
        if let Some(liveness) = slot
            && !liveness.client.is_closed()
        {
            return Ok(liveness.loader);
        }
        let number = slot.as_ref().map(|liveness| liveness.loader);
        let liveness = Liveness::begin(database, number).await?;
        let loader = liveness.loader;
        *slot = Some(liveness);
        Ok(loader)
    }

    /// Takes the liveness lock under `number`, or a new random one while that is taken.
    async fn begin(database: &Database, number: Option<i32>) -> crate::Result<Liveness> {
        let client = database.dedicated().await?;
        let mut loader = number.unwrap_or_else(rand::random);
        loop {
            client
                .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                .await?;
            pin_long_transaction(&client).await?;
            let locked: bool = client
                .query_one(
                    "SELECT pg_try_advisory_xact_lock($1, $2)",
                    &[&locks::LOADER_ALIVE, &loader],
                )
                .await?
                .get(0);
            if locked {
                return Ok(Liveness { client, loader });
            }
            client.batch_execute("ROLLBACK").await?;
            loader = rand::random();
        }
    }

    async fn end(self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// The second half of the advisory lock key that serialises commits of one source.
fn commit_lock(key: &[u8; 32]) -> i32 {
    i32::from_be_bytes([key[0], key[1], key[2], key[3]])
}

/// The source's ledger key (found by any prefix of its identity, or recorded under its
/// own) and its committed ranges in order. In the caller's transaction.
async fn find_or_record(
    client: &Client,
    identity: &Identity,
    name: &str,
) -> Result<([u8; 32], Vec<CommittedRange>), tokio_postgres::Error> {
    let candidates: Vec<&[u8]> = identity
        .prefixes
        .iter()
        .map(|(_, hash)| hash.as_slice())
        .collect();
    let known = client
        .query_opt(
            "UPDATE logctl_sources SET source_name = $2, last_seen_at = now() \
             WHERE source_key = (SELECT source_key FROM logctl_sources WHERE source_key = ANY($1) \
                                 ORDER BY fingerprint_bytes DESC LIMIT 1) \
             RETURNING source_key",
            &[&candidates, &name],
        )
        .await?;
    let key: [u8; 32] = match known {
        Some(row) => row
            .get::<_, Vec<u8>>(0)
            .try_into()
            .expect("keys are SHA-256 digests"),
        None => {
            let (length, key) = identity.own_key();
            client
                .execute(
                    "INSERT INTO logctl_sources (source_key, fingerprint_bytes, source_name) VALUES ($1, $2, $3)",
                    &[&key.as_slice(), &(length as i32), &name],
                )
                .await?;
            key
        }
    };
    let rows = client
        .query(
            "SELECT start_offset, end_offset, end_line FROM logctl_ranges \
             WHERE source_key = $1 ORDER BY start_offset",
            &[&key.as_slice()],
        )
        .await?;
    let committed = rows
        .iter()
        .map(|row| CommittedRange {
            start: row.get::<_, i64>(0) as u64,
            end: row.get::<_, i64>(1) as u64,
            end_line: row.get::<_, i64>(2) as u64,
        })
        .collect();
    Ok((key, committed))
}

/// A batch's place in its source, as the ledger records it.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    key: [u8; 32],
    start_offset: i64,
    end_offset: i64,
    start_line: i64,
    end_line: i64,
    rows: i64,
    rejects: i64,
}

impl Range {
    pub fn of(batch: &Batch) -> Range {
        Range {
            key: batch.source.key,
            start_offset: batch.start_offset as i64,
            end_offset: batch.end_offset as i64,
            start_line: batch.start_line as i64,
            end_line: batch.end_line as i64,
            rows: batch.rows.len() as i64,
            rejects: batch.rejects.len() as i64,
        }
    }

    /// Records the range inside the caller's transaction, the one that holds its rows,
    /// unless some of it was committed by someone else meanwhile: then the transaction
    /// must be rolled back, and the answer says which stretches of it were.
    pub async fn record(&self, transaction: &impl GenericClient) -> crate::Result<Recorded> {
        let recorded: bool = transaction
            .query_one(
                "SELECT logctl_commit_range($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &self.key.as_slice(),
                    &commit_lock(&self.key),
                    &self.start_offset,
                    &self.end_offset,
                    &self.start_line,
                    &self.end_line,
                    &self.rows,
                    &self.rejects,
                ],
            )
            .await?
            .get(0);
        if recorded {
            return Ok(Recorded::Committed);
        }
        // Still under the source's commit lock that logctl_commit_range took: these are
        // all the ranges that overlap, until the rollback.
        let overlapping = transaction
            .query(
                "SELECT start_offset, end_offset FROM logctl_ranges \
                 WHERE source_key = $1 AND start_offset < $3 AND end_offset > $2",
                &[&self.key.as_slice(), &self.start_offset, &self.end_offset],
            )
            .await?
            .iter()
            .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
            .collect();
        Ok(Recorded::Overlaps(overlapping))
    }
}

/// What became of recording a batch's range.
#[derive(Debug)]
pub(crate) enum Recorded {
    Committed,
    /// Other loaders committed these byte ranges of the source, which overlap the
    /// batch's, after this load read the ledger: nothing was recorded.
    Overlaps(Vec<(u64, u64)>),
}

/// The stretches not yet committed, in order; the last one runs to the end of the source.
fn gaps(committed: &[CommittedRange]) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let mut offset = 0;
    let mut line = 1;
    for range in committed {
        if range.start > offset {
            gaps.push(Gap {
                start: offset,
                end: Some(range.start),
                start_line: line,
            });
        }
        offset = offset.max(range.end);
        line = line.max(range.end_line);
    }
    gaps.push(Gap {
        start: offset,
        end: None,
        start_line: line,
    });
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: u64, end_line: u64) -> CommittedRange {
        CommittedRange {
            start,
            end,
            end_line,
        }
    }

    #[test]
    fn gaps_are_the_complement_of_committed_ranges() {
        assert_eq!(
            gaps(&[]),
            vec![Gap {
                start: 0,
                end: None,
                start_line: 1
            }]
        );
        let committed = [range(0, 100, 11), range(200, 300, 31)];
        assert_eq!(
            gaps(&committed),
            vec![
                Gap {
                    start: 100,
                    end: Some(200),
                    start_line: 11
                },
                Gap {
                    start: 300,
                    end: None,
                    start_line: 31
                },
            ]
        );
        assert_eq!(
            gaps(&[range(50, 60, 6)])[0],
            Gap {
                start: 0,
                end: Some(50),
                start_line: 1
            }
        );
    }
}
