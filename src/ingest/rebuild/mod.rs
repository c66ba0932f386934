//! The one-transaction index rebuild. Into an empty plain table (`whole_table`) a load
//! drops the indexes and keys, copies every batch in one transaction (each in a
//! savepoint) and builds them again before it commits; into a partitioned table
//! (`new_partitions`) it builds only the partitions it creates that way, detached, and
//! attaches them at the end. The server's work shrinks, and a failure or a kill rolls
//! everything back, indexes and new partitions included.

mod new_partitions;
mod whole_table;

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, mpsc};
use tokio_postgres::Client;

use super::batch::Batch;
use super::ledger::Range;
use super::plan::IndexStrategy;
use super::report::{BatchStats, Update};
use crate::db::Database;
use crate::db::migrate::Variant;
use crate::db::partitions::{self, Bounds};
use crate::{Error, error_text};

/// How the indexes are kept up during this load (see `--index-strategy`).
pub(crate) enum Rebuild {
    /// Every batch through the pool, indexes maintained row by row.
    None,
    /// An empty plain table: one transaction, begun at the start, that drops and
    /// rebuilds the indexes.
    WholeTable,
    /// A partitioned table: batches for partitions that did not exist go through one
    /// transaction that builds those partitions after their rows; the others through
    /// the pool. Holds the bounds of the partitions that did exist.
    NewPartitions(Vec<Bounds>),
}

impl Rebuild {
    /// The way, with the whole table's rebuild transaction when that is the way.
    pub async fn choose(
        database: &Database,
        control: &Client,
        variant: Variant,
        strategy: IndexStrategy,
    ) -> crate::Result<(Rebuild, Option<RebuildSession>)> {
        // A distributed table keeps its indexes: Citus would run the drops and builds
        // on every shard inside the load's transaction.
        if strategy == IndexStrategy::Keep || variant.distributed {
            return Ok((Rebuild::None, None));
        }
        if variant.partition.is_some() {
            if !partitions::can_be_built_detached(control).await? {
                return Ok((Rebuild::None, None));
            }
            let existing = partitions::bounds(control).await?;
            return Ok((Rebuild::NewPartitions(existing), None));
        }
        let force = strategy == IndexStrategy::Rebuild;
        Ok(match whole_table::begin(database, force).await? {
            Some(session) => (Rebuild::WholeTable, Some(session)),
            None => (Rebuild::None, None),
        })
    }

    /// Whether this load runs in one transaction from the start, on one COPY stream.
    pub fn is_whole_table(&self) -> bool {
        matches!(self, Rebuild::WholeTable)
    }
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
    async fn finish(self) -> crate::Result<()> {
        for range in self.ranges.into_inner().expect("not poisoned") {
            if !range.record(&self.client).await? {
                return Err(crate::Error::Failed(
                    "another loader committed some of these lines meanwhile; nothing of this load was kept, run it again".into(),
                ));
            }
        }
        match self.kind {
            Kind::WholeTable(restore) => restore.run(&self.client).await?,
            Kind::NewPartitions(staging) => staging.attach(&self.client).await?,
        }
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }

    /// Rolls everything back: the rows, the ranges, the new partitions, the dropped indexes.
    async fn abandon(self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// The rebuild transaction, shared by the writers: begun for the first batch that needs
/// it (new partitions) or at the start (a whole table), used by one writer at a time.
pub(crate) struct SessionSlot {
    session: Mutex<Option<RebuildSession>>,
    rebuild: Rebuild,
    /// Stats of the batches written through it, counted once it commits.
    deferred: std::sync::Mutex<Vec<(BatchStats, bool)>>,
    failed: AtomicBool,
}

impl SessionSlot {
    pub fn new(rebuild: Rebuild, session: Option<RebuildSession>) -> SessionSlot {
        SessionSlot {
            session: Mutex::new(session),
            rebuild,
            deferred: std::sync::Mutex::new(Vec::new()),
            failed: AtomicBool::new(false),
        }
    }

    /// Whether this batch goes through the rebuild transaction.
    pub fn wants(&self, batch: &Batch) -> bool {
        match &self.rebuild {
            Rebuild::None => false,
            Rebuild::WholeTable => true,
            Rebuild::NewPartitions(existing) => batch
                .day_starts()
                .any(|day| !partitions::holds_day(existing, day)),
        }
    }

    /// The transaction, begun now if this is its first batch; the caller has it to
    /// itself until it lets go.
    pub async fn begun(
        &self,
        database: &Database,
    ) -> crate::Result<MappedMutexGuard<'_, RebuildSession>> {
        let mut slot = self.session.lock().await;
        if slot.is_none() {
            *slot = Some(new_partitions::begin(database).await?);
        }
        Ok(MutexGuard::map(slot, |session| {
            session.as_mut().expect("begun above")
        }))
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
    pub async fn finish(&self, updates: &mpsc::UnboundedSender<Update>, stop: &AtomicBool) {
        let Some(session) = self.session.lock().await.take() else {
            return;
        };
        if self.failed.load(Ordering::Relaxed) {
            session.abandon().await;
            return;
        }
        match session.finish().await {
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
