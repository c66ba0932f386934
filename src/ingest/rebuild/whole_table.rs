//! The rebuild transaction of an empty plain table: it locks log_events, drops its
//! indexes and key constraints, and restores them, built over all the rows at once,
//! just before it commits.

use tokio_postgres::Client;

use super::{Kind, RebuildSession};
use crate::db::transaction::pin_long_transaction;
use crate::db::{Database, Isolation, transaction};

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

/// Statements that recreate the dropped indexes and constraints, in order.
pub(super) struct Restore(Vec<String>);

impl Restore {
    pub async fn run(&self, client: &Client) -> crate::Result<()> {
        for statement in &self.0 {
            client.batch_execute(statement).await?;
        }
        Ok(())
    }
}

const EMPTY: &str = "SELECT NOT EXISTS (SELECT 1 FROM log_events)";

/// Whether log_events has no rows, as the caller's transaction sees it.
pub(super) async fn is_empty(client: &Client) -> crate::Result<bool> {
    Ok(client.query_one(EMPTY, &[]).await?.get(0))
}

/// Starts the rebuild transaction of a plain table: locks it, and unless `force`, gives
/// up (None) when it is not empty (any more: another loader may have filled it since
/// the load began). Then drops the indexes and key constraints.
pub(super) async fn begin(
    database: &Database,
    force: bool,
) -> crate::Result<Option<RebuildSession>> {
    if !force && !transaction(&*database.get().await?, Isolation::ReadCommitted, is_empty).await? {
        return Ok(None);
    }
    let client = database.dedicated().await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await?;
    pin_long_transaction(&client).await?;
    client
        .batch_execute("LOCK TABLE log_events IN ACCESS EXCLUSIVE MODE")
        .await?;
    if !force && !is_empty(&client).await? {
        client.batch_execute("ROLLBACK").await?;
        return Ok(None);
    }
    let definitions = client.query(DEFINITIONS_SQL, &[]).await?;
    // Drop in reverse order (foreign keys before the keys they need), restore in order.
    for row in definitions.iter().rev() {
        client.batch_execute(row.get::<_, &str>(0)).await?;
    }
    let restore = Restore(definitions.iter().map(|row| row.get(1)).collect());
    Ok(Some(RebuildSession::new(client, Kind::WholeTable(restore))))
}
