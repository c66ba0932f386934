//! The load ledger: which byte ranges of which source are committed. A loader
//! claims a source with a session advisory lock (others skip it and come back),
//! and every batch records its range in its own transaction.

use tokio_postgres::{Client, GenericClient};

use super::batch::Batch;
use super::reader::Gap;
use super::source::Identity;

/// Advisory lock class held by the session loading a source ("logc").
const CLAIM_LOCK_CLASS: i32 = 0x6c6f_6763;

/// A committed stretch of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedRange {
    pub start: u64,
    pub end: u64,
    pub start_line: u64,
    pub end_line: u64,
}

/// The second half of the advisory lock key that serialises commits of one source.
pub fn lock_id(key: &[u8; 32]) -> i32 {
    i32::from_be_bytes([key[0], key[1], key[2], key[3]])
}

/// A source claimed by this session: the ledger key it is recorded under, and what
/// of it is committed.
#[derive(Debug)]
pub struct Claimed {
    pub key: [u8; 32],
    pub committed: Vec<CommittedRange>,
}

/// Takes the source for this session if no other session holds a source with the same
/// first line, finds it in the ledger by any of its prefixes (or records it under its
/// own key), and returns what is committed of it; None when another loader holds it.
pub async fn try_claim(
    client: &Client,
    identity: &Identity,
    name: &str,
) -> Result<Option<Claimed>, tokio_postgres::Error> {
    let locked: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&CLAIM_LOCK_CLASS, &identity.claim_lock()],
        )
        .await?
        .get(0);
    if !locked {
        return Ok(None);
    }
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
            "SELECT start_offset, end_offset, start_line, end_line FROM logctl_ranges \
             WHERE source_key = $1 ORDER BY start_offset",
            &[&key.as_slice()],
        )
        .await?;
    let committed = rows
        .iter()
        .map(|row| CommittedRange {
            start: row.get::<_, i64>(0) as u64,
            end: row.get::<_, i64>(1) as u64,
            start_line: row.get::<_, i64>(2) as u64,
            end_line: row.get::<_, i64>(3) as u64,
        })
        .collect();
    Ok(Some(Claimed { key, committed }))
}

/// Lets other loaders have the source.
pub async fn release(client: &Client, claim_lock: i32) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&CLAIM_LOCK_CLASS, &claim_lock],
        )
        .await?;
    Ok(())
}

/// Merges the source's adjacent committed ranges into one row. Safe beside other
/// loaders: it takes the same lock as their commits.
pub async fn compact(client: &Client, key: &[u8; 32]) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT logctl_compact_ranges($1, $2)",
            &[&key.as_slice(), &lock_id(key)],
        )
        .await?;
    Ok(())
}

/// A batch's place in its source, as the ledger records it.
#[derive(Debug, Clone)]
pub struct Range {
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
}

/// Records a range in the current transaction; false when some of it was committed by
/// someone else meanwhile, and the transaction must be rolled back.
pub async fn commit_range(
    transaction: &impl GenericClient,
    range: &Range,
) -> Result<bool, tokio_postgres::Error> {
    let row = transaction
        .query_one(
            "SELECT logctl_commit_range($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &range.key.as_slice(),
                &lock_id(&range.key),
                &range.start_offset,
                &range.end_offset,
                &range.start_line,
                &range.end_line,
                &range.rows,
                &range.rejects,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// The stretches not yet committed, in order; the last one runs to the end of the source.
pub fn gaps(committed: &[CommittedRange]) -> Vec<Gap> {
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

    fn range(start: u64, end: u64, start_line: u64, end_line: u64) -> CommittedRange {
        CommittedRange {
            start,
            end,
            start_line,
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
        let committed = [range(0, 100, 1, 11), range(200, 300, 21, 31)];
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
            gaps(&[range(50, 60, 5, 6)])[0],
            Gap {
                start: 0,
                end: Some(50),
                start_line: 1
            }
        );
    }
}
