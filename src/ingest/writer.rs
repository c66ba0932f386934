//! Writing batches. Normally each batch is one READ COMMITTED transaction on a pooled
//! connection, holding its COPY and its ledger range. A load into an empty table (or
//! into partitions it creates) can instead run as one transaction that copies every
//! batch (each in a savepoint) into a table without indexes, and builds them before it
//! commits: the server's work shrinks, and a failure or a kill rolls everything back,
//! indexes and new partitions included. Either way, rows the server refuses are
//! rejected with the server's message and the rest of their batch is sent again.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::SinkExt;
use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::batch::Batch;
use super::copy;
use super::ledger;
use super::rejects::RejectSink;
use super::services::SharedClient;
use super::timestamp;
use crate::db::{self, Database};

/// How indexes are maintained during a load (`--index-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
                            attempt(&connection, Target::Transaction, &mut batch, rejects).await
                        }
                        Err(error) => Err(Failure::Other(db::explain(error))),
                    }
                }
                Err(error) => Err(Failure::Other(error)),
            },
            Destination::Rebuild(session) => match session.prepare(&batch.days).await {
                Ok(()) => {
                    let client = session.client.lock().await;
                    let target = Target::Savepoint {
                        table: session.copy_target(),
                        ranges: &session.ranges,
                    };
                    attempt(&client, target, &mut batch, rejects).await
                }
                Err(error) => Err(Failure::Other(error)),
            },
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
                let table = match &destination {
                    Destination::Rebuild(session) => session.copy_target(),
                    Destination::Pool(..) => Target::Transaction.table(),
                };
                match refused_row(&error, table).filter(|&row| row < batch.rows.len()) {
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

/// Where one attempt at a batch goes.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Its own transaction, into log_events, with its range recorded in it.
    Transaction,
    /// A savepoint of the rebuild transaction, into `table`. The range is recorded when
    /// that transaction finishes: recording it now would hold the source's ledger lock
    /// to the end of the load, while the pooled streams committing other batches of the
    /// same source wait on that lock and the load waits on them.
    Savepoint {
        table: &'a str,
        ranges: &'a std::sync::Mutex<Vec<ledger::Range>>,
    },
}

impl Target<'_> {
    fn table(&self) -> &str {
        match self {
            Target::Transaction => "log_events",
            Target::Savepoint { table, .. } => table,
        }
    }

    fn begin(&self) -> &'static str {
        match self {
            Target::Transaction => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Target::Savepoint { .. } => "SAVEPOINT logctl_batch",
        }
    }

    fn commit(&self) -> &'static str {
        match self {
            Target::Transaction => "COMMIT",
            Target::Savepoint { .. } => "RELEASE SAVEPOINT logctl_batch",
        }
    }

    fn rollback(&self) -> &'static str {
        match self {
            Target::Transaction => "ROLLBACK",
            Target::Savepoint { .. } => "ROLLBACK TO SAVEPOINT logctl_batch",
        }
    }

    /// Records the batch's range now, or for the end of the rebuild transaction.
    async fn record(&self, client: &Client, batch: &Batch) -> Result<bool, tokio_postgres::Error> {
        let range = ledger::Range::of(batch);
        match self {
            Target::Transaction => ledger::commit_range(client, &range).await,
            Target::Savepoint { ranges, .. } => {
                ranges.lock().expect("not poisoned").push(range);
                Ok(true)
            }
        }
    }
}

/// One try at a batch. Ok(false) when some of its range was committed by someone else,
/// in which case nothing of this attempt is kept.
async fn attempt(
    client: &Client,
    target: Target<'_>,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<bool, Failure> {
    let other = |error: tokio_postgres::Error| Failure::Other(db::explain(error));
    client.batch_execute(target.begin()).await.map_err(other)?;
    let outcome = copy_and_record(client, target, batch, rejects).await;
    let finish = match outcome {
        Ok(true) => target.commit(),
        _ => target.rollback(),
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
    target: Target<'_>,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<bool, Failure> {
    let other = |error: tokio_postgres::Error| Failure::Other(db::explain(error));
    if !batch.rows.is_empty() {
        let data = Bytes::from(std::mem::take(&mut batch.copy));
        let sent = async {
            let statement = format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                target.table(),
                copy::COLUMNS
            );
            let sink = client.copy_in(&statement).await?;
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
    if !target.record(client, batch).await.map_err(other)? {
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

/// The tuple a COPY into `table` failed at, 0-based, from the error context
/// "COPY log_events, line 7, column metadata: ...". Other frames (triggers, functions,
/// a distributed table's shards) number their own lines and are not trusted.
fn refused_row(error: &tokio_postgres::Error, table: &str) -> Option<usize> {
    let context = error.as_db_error()?.where_()?;
    let prefix = format!("COPY {table}, line ");
    let line = context
        .lines()
        .find_map(|frame| frame.strip_prefix(prefix.as_str()))?;
    let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<usize>().ok()?.checked_sub(1)
}

/// The one transaction of a rebuild load. Into an empty plain table it drops the
/// indexes and keys first and builds them again at the end. Into a partitioned table it
/// leaves the table alone and builds only *new* partitions this way: they are created
/// detached, under a private partitioned staging table that the batches are copied into,
/// and attached to log_events at the end, which builds their indexes over the rows. Rows
/// of a mixed batch that belong to existing partitions land in the staging table's
/// default partition and are moved at the end. Existing partitions' batches do not come
/// here: they go to the pooled streams.
pub struct RebuildSession {
    /// Shared with the service registry, which creates new services in this transaction.
    pub client: SharedClient,
    kind: Kind,
    /// The ledger ranges of the batches copied, recorded at the end.
    ranges: std::sync::Mutex<Vec<ledger::Range>>,
}

enum Kind {
    /// Statements that recreate the dropped indexes and constraints, in order.
    WholeTable { restore: Vec<String> },
    NewPartitions {
        staging: String,
        state: Mutex<NewPartitions>,
    },
}

struct NewPartitions {
    /// Bounds (PostgreSQL microseconds) of the partitions that exist or that this
    /// transaction created.
    known: Vec<(i64, i64)>,
    /// Partitions created in this transaction: name and bounds.
    created: Vec<(String, DateTime<Utc>, DateTime<Utc>)>,
}

/// Whether one of these partition bounds (PostgreSQL microseconds) holds the whole day
/// (days since 2000-01-01 UTC).
fn partition_holds_day(bounds: &[(i64, i64)], day: i64) -> bool {
    let start = day * copy::MICROS_PER_DAY;
    bounds
        .iter()
        .any(|&(from, to)| from <= start && start + copy::MICROS_PER_DAY <= to)
}

const PARTITION_COLUMNS_SQL: &str = include_str!("../../sql/partition_columns.sql");
const PARTITION_INDEXES_SQL: &str = include_str!("../../sql/partition_indexes.sql");

/// The bounds of log_events' partitions, in PostgreSQL microseconds.
pub async fn partition_bounds(client: &Client) -> anyhow::Result<Vec<(i64, i64)>> {
    let partitions = db::partitions::list(client).await.map_err(db::explain)?;
    Ok(partitions
        .iter()
        .filter_map(|partition| {
            Some((
                timestamp::from_datetime(partition.from?),
                timestamp::from_datetime(partition.to?),
            ))
        })
        .collect())
}

/// Whether the new partitions of log_events can be built detached (see the SQL).
pub async fn partitions_can_be_built_detached(client: &Client) -> anyhow::Result<bool> {
    Ok(client
        .query_one(include_str!("../../sql/partition_rebuild_safe.sql"), &[])
        .await
        .map_err(db::explain)?
        .get(0))
}

/// The advisory lock class under which sql/003's logctl_ensure_partition locks a
/// partition's name while it creates it.
const PARTITION_NAME_LOCK_CLASS: i32 = 1_819_240_293;

/// The constraint a new partition carries until it is attached.
const BOUNDS_CHECK: &str = "logctl_partition_bounds";

/// Advisory lock key held by the transaction building new partitions ("logcpart").
const NEW_PARTITIONS_LOCK: i64 = 0x6c6f_6763_7061_7274;

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
    /// Starts the rebuild transaction of a plain table: locks it, and unless `force`,
    /// gives up (None) when it is not empty. Then drops the indexes and key constraints.
    pub async fn whole_table(
        database: &Database,
        force: bool,
    ) -> anyhow::Result<Option<RebuildSession>> {
        if !force {
            let empty: bool = database
                .get()
                .await?
                .query_one("SELECT NOT EXISTS (SELECT 1 FROM log_events)", &[])
                .await
                .map_err(db::explain)?
                .get(0);
            if !empty {
                return Ok(None);
            }
        }
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
        // Drop in reverse order (foreign keys before the keys they need), restore in order.
        for row in definitions.iter().rev() {
            client
                .batch_execute(row.get::<_, &str>(0))
                .await
                .map_err(db::explain)?;
        }
        let restore = definitions
            .iter()
            .map(|row| row.get::<_, String>(1))
            .collect();
        Ok(Some(RebuildSession {
            client: std::sync::Arc::new(tokio::sync::Mutex::new(client)),
            kind: Kind::WholeTable { restore },
            ranges: Default::default(),
        }))
    }

    /// Starts the rebuild transaction of a partitioned table, for the partitions that
    /// do not exist once it holds the lock below.
    pub async fn new_partitions(database: &Database) -> anyhow::Result<RebuildSession> {
        let client = database.dedicated().await?;
        let staging = format!("logctl_staging_{}", std::process::id());
        // One loader at a time builds new partitions (two creating the same day's table
        // would collide; two each waiting for the other's day would deadlock). The lock
        // is held to the commit; then the partitions the other made are existing ones.
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; \
                 SELECT pg_advisory_xact_lock({NEW_PARTITIONS_LOCK})"
            ))
            .await
            .map_err(db::explain)?;
        let columns: String = client
            .query_one(PARTITION_COLUMNS_SQL, &[])
            .await
            .map_err(db::explain)?
            .get(0);
        client
            .batch_execute(&format!(
                "CREATE TABLE {staging} ({columns}) PARTITION BY RANGE (created_at); \
                 CREATE TABLE {staging}_rest PARTITION OF {staging} DEFAULT"
            ))
            .await
            .map_err(db::explain)?;
        let known = partition_bounds(&client).await?;
        Ok(RebuildSession {
            client: std::sync::Arc::new(tokio::sync::Mutex::new(client)),
            kind: Kind::NewPartitions {
                staging,
                state: Mutex::new(NewPartitions {
                    known,
                    created: Vec::new(),
                }),
            },
            ranges: Default::default(),
        })
    }

    /// Whether a batch of a partitioned table has rows for a partition that did not
    /// exist when the load started.
    pub fn covers_new_partition(existing: &[(i64, i64)], days: &[i64]) -> bool {
        days.iter().any(|&day| !partition_holds_day(existing, day))
    }

    /// The table a batch is copied into.
    fn copy_target(&self) -> &str {
        match &self.kind {
            Kind::WholeTable { .. } => "log_events",
            Kind::NewPartitions { staging, .. } => staging,
        }
    }

    /// Makes the new partitions a batch needs, and names the table to copy it into.
    async fn prepare(&self, days: &[i64]) -> anyhow::Result<()> {
        let Kind::NewPartitions { staging, state } = &self.kind else {
            return Ok(());
        };
        let mut state = state.lock().await;
        let client = self.client.lock().await;
        for &day in days {
            if partition_holds_day(&state.known, day) {
                continue;
            }
            let bounds = client
                .query_one(
                    "SELECT name, lower, upper FROM logctl_partition_bounds($1)",
                    &[&timestamp::to_datetime(day * copy::MICROS_PER_DAY)],
                )
                .await
                .map_err(db::explain)?;
            let (name, lower, upper): (String, DateTime<Utc>, DateTime<Utc>) =
                (bounds.get(0), bounds.get(1), bounds.get(2));
            // Under the lock logctl_ensure_partition takes for the name, a loader creating
            // the same partition in place waits for this transaction before it locks
            // log_events. One that got here first made it an existing partition: this
            // load's rows for it go through the staging table's default partition.
            client
                .execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    &[&PARTITION_NAME_LOCK_CLASS, &name],
                )
                .await
                .map_err(db::explain)?;
            let exists: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .await
                .map_err(db::explain)?
                .get(0);
            state.known.push((
                timestamp::from_datetime(lower),
                timestamp::from_datetime(upper),
            ));
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
                    lower = lower.to_rfc3339(),
                    upper = upper.to_rfc3339(),
                ))
                .await
                .map_err(db::explain)?;
            state.created.push((name, lower, upper));
        }
        Ok(())
    }

    /// Builds what the load deferred and commits everything.
    pub async fn finish(self) -> anyhow::Result<()> {
        let client = self.client.lock().await;
        for range in self.ranges.into_inner().expect("not poisoned") {
            if !ledger::commit_range(&*client, &range)
                .await
                .map_err(db::explain)?
            {
                anyhow::bail!(
                    "another loader committed some of these lines meanwhile; nothing of this load was kept, run it again"
                );
            }
        }
        match self.kind {
            Kind::WholeTable { restore } => {
                for statement in &restore {
                    client.batch_execute(statement).await.map_err(db::explain)?;
                }
            }
            Kind::NewPartitions { staging, state } => {
                let state = state.into_inner();
                // Indexes are built while the partitions are still detached, holding no
                // lock on log_events; the rows of existing partitions move meanwhile.
                for (name, ..) in &state.created {
                    client
                        .batch_execute(&format!("ALTER TABLE {staging} DETACH PARTITION {name}"))
                        .await
                        .map_err(db::explain)?;
                    for row in client
                        .query(PARTITION_INDEXES_SQL, &[name])
                        .await
                        .map_err(db::explain)?
                    {
                        client
                            .batch_execute(row.get::<_, &str>(0))
                            .await
                            .map_err(db::explain)?;
                    }
                }
                client
                    .batch_execute(&format!(
                        "INSERT INTO log_events SELECT * FROM {staging}_rest; DROP TABLE {staging}"
                    ))
                    .await
                    .map_err(db::explain)?;
                // From the first ATTACH to the commit, log_events is locked against other
                // DDL and services against new rows: attaching links the indexes built
                // above, checks the foreign key once over all rows, and spares the bounds
                // check the scan.
                for (name, lower, upper) in &state.created {
                    client
                        .batch_execute(&format!(
                            "ALTER TABLE log_events ATTACH PARTITION {name} FOR VALUES FROM ('{}') TO ('{}'); \
                             ALTER TABLE {name} DROP CONSTRAINT {BOUNDS_CHECK}",
                            lower.to_rfc3339(),
                            upper.to_rfc3339(),
                        ))
                        .await
                        .map_err(db::explain)?;
                }
            }
        }
        client.batch_execute("COMMIT").await.map_err(db::explain)?;
        Ok(())
    }

    /// Rolls everything back: the rows, the ranges, the new partitions, the dropped indexes.
    pub async fn abandon(self) {
        let _ = self.client.lock().await.batch_execute("ROLLBACK").await;
    }
}
