//! The one-transaction index rebuild. Into an empty plain table (`whole_table`) a load
//! drops the indexes and keys, copies every batch in one transaction (each in a
//! savepoint) and builds them again before it commits; into a partitioned table
//! (`new_partitions`) it builds only the partitions it creates that way, detached, and
//! attaches them at the end. The server's work shrinks, and a failure or a kill rolls
//! everything back, indexes and new partitions included. The transaction is begun for
//! the first batch, frees itself from the server's idle and statement timeouts, and is
//! never used for an input that cannot be read again (stdin, a pipe).

mod new_partitions;
mod whole_table;

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, mpsc};
use tokio_postgres::Client;

use super::batch::Batch;
use super::ledger::{Range, Recorded};
use super::plan::IndexStrategy;
use super::progress::Phases;
use super::report::{BatchStats, Update};
use crate::db::migrate::Variant;
use crate::db::partitions::{self, Bounds};
use crate::db::{Database, Isolation, transaction};
use crate::{Error, error_text};

/// How the indexes are kept up during this load (see `--index-strategy`).
pub(crate) enum Rebuild {
    /// Every batch through the pool, indexes maintained row by row.
    None,
    /// A plain table, empty when the load began (or any, when `force`d): one
    /// transaction, begun for the first batch, that drops and rebuilds the indexes. If
    /// the table is no longer empty by then, the batches go through the pool after all.
    WholeTable { force: bool },
    /// A partitioned table: batches for partitions that did not exist go through one
    /// transaction that builds those partitions after their rows; the others through
    /// the pool. Holds the bounds of the partitions that did exist.
    NewPartitions(Vec<Bounds>),
}

impl Rebuild {
    /// The way for this load. Nothing is begun yet: a transaction opened before there is
    /// work for it would sit idle while the input is slow.
    pub async fn choose(
        database: &Database,
        variant: Variant,
        strategy: IndexStrategy,
    ) -> crate::Result<Rebuild> {
        // A distributed table keeps its indexes: Citus would run the drops and builds
        // on every shard inside the load's transaction.
        if strategy == IndexStrategy::Keep || variant.distributed {
            return Ok(Rebuild::None);
        }
        let force = strategy == IndexStrategy::Rebuild;
        transaction(
            &*database.get().await?,
            Isolation::ReadCommitted,
            |client| async move {
                if !may_build_indexes(client).await? {
                    if force {
                        return Err(crate::Error::usage(
                            "--index-strategy rebuild drops and builds the indexes of log_events, \
                             which only its owner may do, and this role does not own it: load as \
                             the owner, or with --index-strategy auto or keep",
                        ));
                    }
                    return Ok(Rebuild::None);
                }
                if variant.partition.is_some() {
                    if !partitions::can_be_built_detached(client).await? {
                        return Ok(Rebuild::None);
                    }
                    return Ok(Rebuild::NewPartitions(partitions::bounds(client).await?));
                }
                if !force && !whole_table::is_empty(client).await? {
                    return Ok(Rebuild::None);
                }
                Ok(Rebuild::WholeTable { force })
            },
        )
        .await
    }

    /// Whether this load goes into one transaction, on one COPY stream at a time.
    pub fn is_whole_table(&self) -> bool {
        matches!(self, Rebuild::WholeTable { .. })
    }
}

/// Whether this role may drop and build log_events' indexes and create tables beside
/// it: it owns log_events (or has its owner's privileges) and may create in its schema.
/// A loader role with only the rights to add rows keeps the indexes instead.
async fn may_build_indexes(client: &Client) -> crate::Result<bool> {
    Ok(client
        .query_one(
            "SELECT pg_has_role(c.relowner, 'USAGE') AND has_schema_privilege(c.relnamespace, 'CREATE') \
             FROM pg_class c WHERE c.oid = 'log_events'::regclass",
            &[],
        )
        .await?
        .get(0))
}

/// The one transaction of a rebuild load.
pub(crate) struct RebuildSession {
    pub client: Client,
    kind: Kind,
    /// The ledger ranges of the batches copied, recorded at the end.
    pub ranges: std::sync::Mutex<Vec<Range>>,
}

enum Kind {
    WholeTable(whole_table::Restore),
    NewPartitions(new_partitions::Staging),
}

impl RebuildSession {
    fn new(client: Client, kind: Kind) -> RebuildSession {
        RebuildSession {
            client,
            kind,
            ranges: Default::default(),
        }
    }

    /// The table a batch is copied into.
    pub fn copy_target(&self) -> &str {
        match &self.kind {
            Kind::WholeTable(_) => "log_events",
            Kind::NewPartitions(staging) => staging.table(),
        }
    }

    /// Whether this transaction builds new partitions of a partitioned table.
    pub fn builds_partitions(&self) -> bool {
        matches!(self.kind, Kind::NewPartitions(_))
    }

    /// Whether this transaction holds a lock on `services` (dropping the foreign key
    /// takes one), so that new services must be created inside it.
    pub fn locks_services(&self) -> bool {
        matches!(self.kind, Kind::WholeTable(_))
    }

    /// Makes the new partitions a batch needs.
    pub async fn prepare(&self, days: impl Iterator<Item = DateTime<Utc>>) -> crate::Result<()> {
        match &self.kind {
            Kind::WholeTable(_) => Ok(()),
            Kind::NewPartitions(staging) => staging.prepare(&self.client, days).await,
        }
    }

    /// Records the ranges, builds what the load deferred and commits everything.
    async fn finish(self, phases: &Phases) -> crate::Result<()> {
        for range in self.ranges.into_inner().expect("not poisoned") {
            if let Recorded::Overlaps(_) = range.record(&self.client).await? {
                return Err(crate::Error::Failed(
                    "another loader committed some of these lines meanwhile; nothing of this load was kept, run it again".into(),
                ));
            }
        }
        let client = &self.client;
        match self.kind {
            Kind::WholeTable(restore) => {
                phases
                    .run("building indexes", async {
                        restore.run(client).await?;
                        client.batch_execute("COMMIT").await.map_err(Error::from)
                    })
                    .await
            }
            Kind::NewPartitions(staging) => {
                phases
                    .run("indexing and attaching new partitions", async {
                        staging.attach(client).await?;
                        client.batch_execute("COMMIT").await.map_err(Error::from)
                    })
                    .await
            }
        }
    }

    /// Rolls everything back: the rows, the ranges, the new partitions, the dropped indexes.
    async fn abandon(self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// The rebuild transaction, shared by the writers: begun for the first batch that needs
/// it, used by one writer at a time.
pub(crate) struct SessionSlot {
    session: Mutex<Option<RebuildSession>>,
    rebuild: Rebuild,
    /// The whole table had rows by its first batch: every batch goes through the pool.
    declined: AtomicBool,
    /// Stats of the batches written through it, counted once it commits.
    deferred: std::sync::Mutex<Vec<(BatchStats, bool)>>,
    failed: AtomicBool,
}

impl SessionSlot {
    pub fn new(rebuild: Rebuild) -> SessionSlot {
        SessionSlot {
            session: Mutex::new(None),
            rebuild,
            declined: AtomicBool::new(false),
            deferred: std::sync::Mutex::new(Vec::new()),
            failed: AtomicBool::new(false),
        }
    }

    /// Whether this batch goes through the rebuild transaction.
    pub fn wants(&self, batch: &Batch) -> bool {
        match &self.rebuild {
            Rebuild::None => false,
            Rebuild::WholeTable { .. } => !self.declined.load(Ordering::Relaxed),
            Rebuild::NewPartitions(existing) => batch
                .day_starts()
                .any(|day| !partitions::holds_day(existing, day)),
        }
    }

    /// The transaction, begun now if this is its first batch; the caller has it to
    /// itself until it lets go. None when the whole table turned out not to be empty
    /// any more: the batch goes through the pool.
    pub async fn begun(
        &self,
        database: &Database,
    ) -> crate::Result<Option<MappedMutexGuard<'_, RebuildSession>>> {
        let mut slot = self.session.lock().await;
        if slot.is_none() {
            let session = match &self.rebuild {
                Rebuild::WholeTable { .. } if self.declined.load(Ordering::Relaxed) => None,
                Rebuild::WholeTable { force } => whole_table::begin(database, *force).await?,
                _ => Some(new_partitions::begin(database).await?),
            };
            let Some(session) = session else {
                self.declined.store(true, Ordering::Relaxed);
                return Ok(None);
            };
            *slot = Some(session);
        }
        Ok(Some(MutexGuard::map(slot, |session| {
            session.as_mut().expect("begun above")
        })))
    }

    pub fn defer(&self, stats: BatchStats, chunk_done: bool) {
        self.deferred
            .lock()
            .expect("not poisoned")
            .push((stats, chunk_done));
    }

    /// One of its batches failed: the transaction is rolled back at the end.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Once every writer is done: commits the transaction (if any), or rolls it back when
    /// one of its batches failed; only then are its batches counted.
    pub async fn finish(
        &self,
        updates: &mpsc::UnboundedSender<Update>,
        stop: &AtomicBool,
        phases: &Phases,
    ) {
        let Some(session) = self.session.lock().await.take() else {
            return;
        };
        if self.failed.load(Ordering::Relaxed) {
            session.abandon().await;
            return;
        }
        match session.finish(phases).await {
            Ok(()) => {
                for (stats, chunk_done) in self.deferred.lock().expect("not poisoned").drain(..) {
                    let _ = updates.send(Update::Committed { stats, chunk_done });
                }
                let _ = updates.send(Update::Rebuilt);
            }
            // A row the index build refuses is the data's fault, not the load's: the
            // caller loads again without the rebuild, where that row is rejected alone.
            Err(Error::RowRefused(error)) => {
                let _ = updates.send(Update::RebuildRefused(error_text(&error)));
            }
            Err(error) => {
                stop.store(true, Ordering::Relaxed);
                let _ = updates.send(Update::Fatal(error.context(
                    "finishing the load's index-building transaction failed; what it had copied was rolled back, and a re-run loads it",
                )));
            }
        }
    }
}
