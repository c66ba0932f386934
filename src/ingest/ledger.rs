//! The load ledger, owner of the exactly-once protocol: which byte ranges of which
//! source are committed. A loader claims a source with a session advisory lock (others
//! skip it and come back), reads only the gaps, and every batch records its range inside
//! the transaction of its rows; at the end the ranges of each source are compacted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio_postgres::{Client, GenericClient};

use super::batch::{Batch, SourceRef};
use super::read::{ClaimAnswer, ClaimRequest, Gap, Identity};
use crate::db::locks;

/// A committed stretch of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CommittedRange {
    start: u64,
    end: u64,
    end_line: u64,
}

/// The committed state of every source, read and written through one control connection
/// (none in a dry run). Claims are session advisory locks: the server drops them if this
/// process dies, and `finish` releases the ones still held on every other path.
pub(crate) struct Ledger {
    control: Option<Client>,
    /// Claim locks held, by source index. Session advisory locks are re-entrant, so the
    /// server alone would let one process claim two sources sharing a first line.
    held: HashMap<usize, i32>,
    locks_held: HashSet<i32>,
    /// Sources with new commits, compacted at the end.
    to_compact: Vec<[u8; 32]>,
}

impl Ledger {
    pub fn new(control: Option<Client>) -> Ledger {
        Ledger {
            control,
            held: HashMap::new(),
            locks_held: HashSet::new(),
            to_compact: Vec::new(),
        }
    }

    /// Claims a source for this loader if no other session holds one with the same first
    /// line, finds it in the ledger by any of its prefixes (or records it under its own
    /// key), and answers with what is left to read of it.
    pub async fn claim(&mut self, request: &ClaimRequest) -> crate::Result<ClaimAnswer> {
        let lock = claim_lock(&request.identity);
        let source = |key| {
            Arc::new(SourceRef {
                index: request.index,
                name: request.name.clone(),
                key,
                guard: request.guard.clone(),
            })
        };
        let Some(client) = &self.control else {
            return Ok(ClaimAnswer::Claimed {
                source: source(request.identity.own_key().1),
                gaps: gaps(&[]),
            });
        };
        if self.locks_held.contains(&lock) {
            return Ok(ClaimAnswer::Busy);
        }
        let locked: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&locks::SOURCE_CLAIM, &lock],
            )
            .await?
            .get(0);
        if !locked {
            return Ok(ClaimAnswer::Busy);
        }
        self.locks_held.insert(lock);
        self.held.insert(request.index, lock);
        let (key, committed) = find_or_record(client, &request.identity, &request.name).await?;
        Ok(ClaimAnswer::Claimed {
            source: source(key),
            gaps: gaps(&committed),
        })
    }

    /// Lets other loaders have the source: all of it that this load read is committed.
    pub async fn release(&mut self, index: usize) -> crate::Result<()> {
        let (Some(client), Some(lock)) = (&self.control, self.held.remove(&index)) else {
            return Ok(());
        };
        self.locks_held.remove(&lock);
        client
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&locks::SOURCE_CLAIM, &lock],
            )
            .await?;
        Ok(())
    }

    /// Notes that a source has new commits, to compact at the end.
    pub fn committed_to(&mut self, key: [u8; 32]) {
        if !self.to_compact.contains(&key) {
            self.to_compact.push(key);
        }
    }

    /// Releases the claims still held and merges each touched source's adjacent ranges
    /// into one row. Safe beside other loaders: compaction takes the same lock as their
    /// commits. The first error is returned after everything was tried.
    pub async fn finish(mut self) -> crate::Result<()> {
        let indexes: Vec<usize> = self.held.keys().copied().collect();
        for index in indexes {
            let _ = self.release(index).await;
        }
        let Some(client) = &self.control else {
            return Ok(());
        };
        let mut first_error = None;
        for key in &self.to_compact {
            let compacted = client
                .execute(
                    "SELECT logctl_compact_ranges($1, $2)",
                    &[&key.as_slice(), &commit_lock(key)],
                )
                .await;
            if let Err(error) = compacted {
                first_error.get_or_insert(crate::Error::from(error));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Sources that share a first line take turns on one claim lock, so loaders racing on
/// the same file agree on whether it is new before either records it.
fn claim_lock(identity: &Identity) -> i32 {
    let first_line = identity.first_line();
    i32::from_be_bytes([first_line[0], first_line[1], first_line[2], first_line[3]])
}

/// The second half of the advisory lock key that serialises commits of one source.
fn commit_lock(key: &[u8; 32]) -> i32 {
    i32::from_be_bytes([key[0], key[1], key[2], key[3]])
}

/// The source's ledger key (found by any prefix of its identity, or recorded under its
/// own) and its committed ranges in order.
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

    /// Records the range inside the caller's transaction, the one that holds its rows;
    /// false when some of it was committed by someone else meanwhile, and the
    /// transaction must be rolled back.
    pub async fn record(&self, transaction: &impl GenericClient) -> crate::Result<bool> {
        let row = transaction
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
            .await?;
        Ok(row.get(0))
    }
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
