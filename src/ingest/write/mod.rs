//! The write stage: tasks that take encoded batches and commit each exactly once. A
//! batch normally is one READ COMMITTED transaction on a pooled connection, holding its
//! COPY and its ledger range; in a rebuild load it is a savepoint of the one rebuild
//! transaction instead. Either way the batch's service names are resolved by the
//! connection that holds it, and rows the server refuses are rejected with the server's
//! message while the rest of their batch is sent again.

mod refused;
mod rejects;
mod services;
mod spread;
mod transaction;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, mpsc};

pub use rejects::RejectSink;
pub(crate) use services::ServiceRegistry;
pub(crate) use spread::Spread;
use transaction::{Attempted, Failure, Target, attempt};

use super::batch::Batch;
use super::buffers::BufferPool;
use super::rebuild::{RebuildSession, SessionSlot};
use super::report::{BatchStats, Update};
use crate::db::partitions::KnownPartitions;
use crate::db::{self, Database, Isolation};
use crate::{Error, Invalid, error_text};

/// What became of a batch: the parts committed (without those another loader committed
/// meanwhile), and the error that stopped the rest, if any.
pub(crate) struct Written {
    pub committed: Vec<Batch>,
    pub error: Option<Error>,
    /// Why part of it was not kept: its file changed after its bytes were read.
    pub source_changed: Option<Invalid>,
}

/// Where a batch goes: its own transaction on a pooled connection (creating the
/// partitions it needs first, when the table is partitioned; to the shard of its turn on
/// Citus), or a savepoint in the rebuild transaction.
pub(crate) enum Destination<'a> {
    Pool(
        &'a Database,
        Option<&'a KnownPartitions>,
        Option<&'a Spread>,
    ),
    Rebuild(&'a Database, &'a RebuildSession),
}

impl Destination<'_> {
    fn is_partitioned(&self) -> bool {
        match self {
            Destination::Pool(_, partitions, _) => partitions.is_some(),
            Destination::Rebuild(_, session) => session.builds_partitions(),
        }
    }
}

/// What every writer task shares.
pub(crate) struct Writers {
    pub database: Option<Database>,
    pub batches: Mutex<mpsc::Receiver<Batch>>,
    pub updates: mpsc::UnboundedSender<Update>,
    pub rejects: Arc<RejectSink>,
    pub registry: Arc<ServiceRegistry>,
    pub partitions: Option<KnownPartitions>,
    pub spread: Option<Spread>,
    pub session: SessionSlot,
    pub buffers: Arc<BufferPool>,
    pub stop: Arc<AtomicBool>,
}

impl Writers {
    /// One writer task: commits batches until they run out or one fails.
    pub async fn run(&self) {
        loop {
            let next = self.batches.lock().await.recv().await;
            let Some(batch) = next else { break };
            let source = batch.source.index;
            let source_name = batch.source.name.clone();
            let pool = |database| {
                Destination::Pool(database, self.partitions.as_ref(), self.spread.as_ref())
            };
            let (written, through_session) = match &self.database {
                Some(database) if self.session.wants(&batch) => {
                    match self.session.begun(database).await {
                        Ok(Some(session)) => {
                            let destination = Destination::Rebuild(database, &session);
                            (self.write(destination, batch).await, true)
                        }
                        Ok(None) => (self.write(pool(database), batch).await, false),
                        Err(error) => {
                            let written = Written {
                                committed: Vec::new(),
                                error: Some(error),
                                source_changed: None,
                            };
                            (written, true)
                        }
                    }
                }
                Some(database) => (self.write(pool(database), batch).await, false),
                None => (self.dry_run(batch).await, false),
            };
            let stats = BatchStats::of(source, &written.committed);
            for batch in written.committed {
                self.buffers.give(batch.raw);
                self.buffers.give(batch.copy);
            }
            let chunk_done = written.error.is_none();
            if let Some(reason) = written.source_changed {
                let _ = self.updates.send(Update::SourceChanged {
                    name: source_name,
                    reason,
                });
            }
            let _ = self.updates.send(Update::Rejected(stats.rejected));
            if through_session {
                // Counted once the rebuild transaction commits.
                self.session.defer(stats, chunk_done);
            } else {
                let _ = self.updates.send(Update::Committed { stats, chunk_done });
            }
            if let Some(error) = written.error {
                if through_session {
                    self.session.fail();
                }
                self.stop.store(true, Ordering::Relaxed);
                let _ = self.updates.send(Update::Fatal(error));
                break;
            }
        }
    }

    async fn write(&self, destination: Destination<'_>, batch: Batch) -> Written {
        write_batch(destination, batch, &self.registry, &self.rejects).await
    }

    /// A dry run writes only the rejects, and counts the services it would add.
    async fn dry_run(&self, batch: Batch) -> Written {
        let resolved = self.registry.ids(None, false, &batch.service_names).await;
        let written = resolved.and_then(|_| {
            self.rejects
                .write(&batch.rejects)
                .map_err(|e| Error::io("cannot write the rejected lines", e))
        });
        match written {
            Ok(()) => Written {
                committed: vec![batch],
                error: None,
                source_changed: None,
            },
            Err(error) => Written {
                committed: Vec::new(),
                error: Some(error),
                source_changed: None,
            },
        }
    }
}

/// Sends a batch until all of it is committed or an error other than a refused row
/// stops it. Rejects are written before each part commits, so a crash can repeat a
/// reject record but never lose one.
async fn write_batch(
    destination: Destination<'_>,
    mut batch: Batch,
    registry: &ServiceRegistry,
    rejects: &RejectSink,
) -> Written {
    if destination.is_partitioned() {
        batch.reject_unpartitionable();
    }
    if let Err(error) = resolve_services(&destination, &mut batch, registry).await {
        return Written {
            committed: Vec::new(),
            error: Some(error),
            source_changed: None,
        };
    }
    let mut work = vec![batch];
    let mut committed = Vec::new();
    let mut source_changed = None;
    let mut redone = 0;
    while let Some(mut batch) = work.pop() {
        let table = match &destination {
            Destination::Rebuild(_, session) => session.copy_target(),
            Destination::Pool(..) => Target::Transaction { spread: None }.table(),
        };
        let error = match attempt_once(&destination, &mut batch, rejects).await {
            Ok(Attempted::Committed) => {
                committed.push(batch);
                continue;
            }
            Ok(Attempted::TakenByAnother(taken)) => {
                match batch.outside(&taken) {
                    Ok(rest) => work.extend(rest),
                    Err(reason) => source_changed = Some(reason),
                }
                continue;
            }
            Ok(Attempted::SourceChanged(reason)) => {
                source_changed = Some(reason);
                continue;
            }
            Err(Failure::Row(error)) if !batch.rows.is_empty() => {
                let reason = format!("refused by PostgreSQL: {}", error_text(&error));
                let named = refused::refused_row(&error, table);
                if let Some(tail) = refused::isolate(&mut batch, named, reason) {
                    work.push(tail);
                }
                work.push(batch);
                continue;
            }
            Err(failure) if redone < REDO_LIMIT && may_redo(&failure, &destination) => {
                redone += 1;
                work.push(batch);
                continue;
            }
            Err(Failure::Row(error)) => error.into(),
            Err(Failure::LostWhileIdle(error) | Failure::Other(error)) => error,
        };
        return Written {
            committed,
            error: Some(error),
            source_changed,
        };
    }
    Written {
        committed,
        error: None,
        source_changed,
    }
}

/// How many times one batch is sent again after a failure that may be redone.
const REDO_LIMIT: u32 = 3;

/// Whether an attempt that failed this way may simply be made again (nothing of a
/// failed attempt stays): the server rolled it back for a concurrent transaction, or
/// its pooled connection turned out to be lost before it was used, and another one can
/// carry it. A connection lost in the middle of an attempt is the server going away:
/// the load stops and says so.
fn may_redo(failure: &Failure, destination: &Destination<'_>) -> bool {
    match failure {
        Failure::Row(_) => false,
        Failure::Other(error) => error.is_conflict(),
        Failure::LostWhileIdle(_) => matches!(destination, Destination::Pool(..)),
    }
}

/// Gives the batch's tuples their service ids. New services are created through the
/// connection that holds the batch when that is the rebuild transaction of a whole table
/// (which locks `services`), otherwise in a short transaction of their own on a pooled
/// connection, so that other loaders never wait on a long one for a name.
async fn resolve_services(
    destination: &Destination<'_>,
    batch: &mut Batch,
    registry: &ServiceRegistry,
) -> crate::Result<()> {
    if batch.service_names.is_empty() {
        return Ok(());
    }
    let resolved = match destination {
        Destination::Rebuild(_, session) if session.locks_services() => {
            registry
                .ids(Some(&session.client), true, &batch.service_names)
                .await?
        }
        Destination::Pool(database, ..) | Destination::Rebuild(database, _) => {
            let names = &batch.service_names;
            db::transaction(
                &*database.get().await?,
                Isolation::ReadCommitted,
                |client| async move { registry.ids(Some(client), true, names).await },
            )
            .await?
        }
    };
    batch.resolve_services(&resolved);
    Ok(())
}

/// One try at a batch where its destination says, with what the destination needs first.
async fn attempt_once(
    destination: &Destination<'_>,
    batch: &mut Batch,
    rejects: &RejectSink,
) -> Result<Attempted, Failure> {
    match destination {
        Destination::Pool(database, partitions, spread) => {
            let connection = database.get().await?;
            if let Some(partitions) = partitions {
                partitions.ensure(&connection, batch.day_starts()).await?;
            }
            let target = Target::Transaction {
                spread: spread.map(Spread::next),
            };
            attempt(&connection, target, batch, rejects).await
        }
        Destination::Rebuild(_, session) => {
            session.prepare(batch.day_starts()).await?;
            let target = Target::Savepoint {
                table: session.copy_target(),
                ranges: &session.ranges,
            };
            attempt(&session.client, target, batch, rejects).await
        }
    }
}
