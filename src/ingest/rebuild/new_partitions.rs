//! The rebuild transaction of a partitioned table, for the partitions the load creates.
//! They are created detached, under a private partitioned staging table that the
//! batches are copied into; at the end each gets its indexes, still detached (holding no
//! lock on log_events), and is attached, which links those indexes and checks the
//! foreign key once. Rows of a mixed batch that belong to existing partitions land in
//! the staging table's default partition and are moved at the end.

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::{Kind, RebuildSession};
use crate::db::partitions::{self, Bounds};
use crate::db::transaction::pin_long_transaction;
use crate::db::{Database, locks};

const PARTITION_COLUMNS_SQL: &str = include_str!("../../../sql/partition_columns.sql");
const PARTITION_INDEXES_SQL: &str = include_str!("../../../sql/partition_indexes.sql");

/// The constraint a new partition carries until it is attached.
const BOUNDS_CHECK: &str = "logctl_partition_bounds";

pub(super) struct Staging {
    table: String,
    state: Mutex<Partitions>,
}

struct Partitions {
    /// Bounds of the partitions that exist or that this transaction created.
    known: Vec<Bounds>,
    /// Partitions created in this transaction, with their bounds.
    created: Vec<(String, Bounds)>,
}

/// Starts the rebuild transaction of a partitioned table, for the partitions that do
/// not exist once it holds the lock below.
pub(super) async fn begin(database: &Database) -> crate::Result<RebuildSession> {
    let client = database.dedicated().await?;
    let table = format!("logctl_staging_{}", std::process::id());
    // One loader at a time builds new partitions (two creating the same day's table
    // would collide; two each waiting for the other's day would deadlock). The lock
    // is held to the commit; then the partitions the other made are existing ones.
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await?;
    pin_long_transaction(&client).await?;
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({})",
            locks::NEW_PARTITIONS
        ))
        .await?;
    let columns: String = client.query_one(PARTITION_COLUMNS_SQL, &[]).await?.get(0);
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} ({columns}) PARTITION BY RANGE (created_at); \
             CREATE TABLE {table}_rest PARTITION OF {table} DEFAULT"
        ))
        .await?;
    let known = partitions::bounds(&client).await?;
    let staging = Staging {
        table,
        state: Mutex::new(Partitions {
            known,
            created: Vec::new(),
        }),
    };
    Ok(RebuildSession::new(client, Kind::NewPartitions(staging)))
}

impl Staging {
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the partitions for these days that neither exist nor were created here.
    pub async fn prepare(
        &self,
        client: &Client,
        days: impl Iterator<Item = DateTime<Utc>>,
    ) -> crate::Result<()> {
        let mut state = self.state.lock().await;
        for day in days {
            if partitions::holds_day(&state.known, day) {
                continue;
            }
            let (name, (lower, upper)) = partitions::partition_holding(client, day).await?;
            // Under the lock logctl_ensure_partition takes for the name, a loader creating
            // the same partition in place waits for this transaction before it locks
            // log_events. One that got here first made it an existing partition: this
            // load's rows for it go through the staging table's default partition.
            client
                .execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    &[&locks::PARTITION_NAME, &name],
                )
                .await?;
            let exists: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await?
                .get(0);
            state.known.push((lower, upper));
            if exists {
                continue;
            }
            client
                .batch_execute(&format!(
                    // The CHECK, free on an empty table, spares the final ATTACH a scan
                    // of every row to prove that they fit the bounds.
                    "CREATE TABLE {name} PARTITION OF {staging} FOR VALUES FROM ('{lower}') TO ('{upper}'); \
                     ALTER TABLE {name} ADD CONSTRAINT {BOUNDS_CHECK} \
                     CHECK (created_at >= '{lower}' AND created_at < '{upper}')",
                    staging = self.table,
                    lower = lower.to_rfc3339(),
                    upper = upper.to_rfc3339(),
                ))
                .await?;
            state.created.push((name, (lower, upper)));
        }
        Ok(())
    }

    /// Gives the new partitions their indexes and attaches them to log_events.
    pub async fn attach(self, client: &Client) -> crate::Result<()> {
        let state = self.state.into_inner();
        let staging = &self.table;
        // Indexes are built while the partitions are still detached, holding no lock on
        // log_events; the rows of existing partitions move meanwhile.
        for (name, _) in &state.created {
            client
                .batch_execute(&format!("ALTER TABLE {staging} DETACH PARTITION {name}"))
                .await?;
            for row in client.query(PARTITION_INDEXES_SQL, &[name]).await? {
                client.batch_execute(row.get::<_, &str>(0)).await?;
            }
        }
        client
            .batch_execute(&format!(
                "INSERT INTO log_events SELECT * FROM {staging}_rest; DROP TABLE {staging}"
            ))
            .await?;
        // From the first ATTACH to the commit, log_events is locked against other DDL
        // and services against new rows: attaching links the indexes built above, checks
        // the foreign key once over all rows, and spares the bounds check the scan.
        for (name, (lower, upper)) in &state.created {
            client
                .batch_execute(&format!(
                    "ALTER TABLE log_events ATTACH PARTITION {name} FOR VALUES FROM ('{}') TO ('{}'); \
                     ALTER TABLE {name} DROP CONSTRAINT {BOUNDS_CHECK}",
                    lower.to_rfc3339(),
                    upper.to_rfc3339(),
                ))
                .await?;
        }
        Ok(())
    }
}
