//! The run wiring: a reader thread cuts sources into chunks, encode threads turn them
//! into COPY batches, and writer tasks commit the batches over pooled connections (or
//! into the rebuild transaction), while the report task owns the ledger and adds up
//! what happened. Bounded channels between the stages keep memory flat whatever the
//! input size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{Mutex, mpsc};

use super::batch::{Batch, SourceRef};
use super::buffers::BufferPool;
use super::encode::{LineEncoder, encode_stage};
use super::ledger::Ledger;
use super::plan::{IndexStrategy, LoadPlan};
use super::progress::{Phases, Progress};
use super::read::{Chunk, Note, ReadLimits, Reader};
use super::rebuild::{Rebuild, SessionSlot};
use super::report::{LoadReport, Stop, Update, tally};
use super::write::{RejectSink, ServiceRegistry, Spread, Writers};
use crate::analytics::compact::{self, Wait};
use crate::db::migrate::Variant;
use crate::db::partitions::KnownPartitions;
use crate::db::{Database, Isolation, transaction};

/// Runs a load to the end (or to a stop), and reports what was committed. When building
/// the indexes in one transaction refused a row (a duplicate for a unique index of the
/// user's, say), everything of that transaction was rolled back: the load runs again
/// keeping the indexes, so that the row is rejected alone and the rest is loaded.
pub async fn run(
    plan: LoadPlan,
    database: Option<Database>,
    rejects: RejectSink,
    stop: Arc<AtomicBool>,
) -> crate::Result<LoadReport> {
    let rejects = Arc::new(rejects);
    let mut report = run_once(
        &plan,
        plan.index_strategy,
        database.clone(),
        rejects.clone(),
        stop.clone(),
    )
    .await?;
    if let Some(refusal) = &report.index_build_refused {
        eprintln!(
            "logctl: building the indexes refused a row ({refusal}); nothing of that \
             transaction was kept: loading again, keeping the indexes, so that the row is \
             rejected alone"
        );
        let mut again = run_once(&plan, IndexStrategy::Keep, database, rejects, stop).await?;
        again.index_build_refused = report.index_build_refused;
        again.seconds += report.seconds;
        report = again;
    }
    Ok(report)
}

/// Folds the rollup deltas of this load (and any left pending) into the grains. The rows
/// are committed by now: a failure here only leaves the deltas pending, which readers
/// count all the same and the next compaction folds.
async fn compact_rollups(database: &Database, report: &mut LoadReport) {
    let compacted = match database.get().await {
        // The writers have returned their connections: a second one folds the other
        // lane beside the first (and without one, the first folds both).
        Ok(client) => {
            let second = database.get().await.ok();
            compact::compact(&client, second.as_deref(), Wait::No).await
        }
        Err(error) => Err(error),
    };
    match compacted {
        Ok(Some(deltas)) => report.rollup_deltas_compacted = deltas,
        Ok(None) => report.warnings.push(
            "another logctl was compacting the rollups; this load's deltas wait for the next \
             compaction (`logctl rollup compact`), and reports count them meanwhile"
                .into(),
        ),
        Err(error) => report.warnings.push(format!(
            "compacting the rollups failed ({error}); the deltas stay pending, reports count \
             them, and `logctl rollup compact` folds them"
        )),
    }
}

async fn run_once(
    plan: &LoadPlan,
    strategy: IndexStrategy,
    database: Option<Database>,
    rejects: Arc<RejectSink>,
    stop: Arc<AtomicBool>,
) -> crate::Result<LoadReport> {
    let started = Instant::now();
    let (registry, variant, spread) = match &database {
        Some(database) => {
            transaction(
                &*database.get().await?,
                Isolation::ReadCommitted,
                |client| async move {
                    let registry = ServiceRegistry::load(client).await?;
                    let variant = Variant::of_database(client).await?.unwrap_or_default();
                    let spread = if variant.distributed {
                        Some(Spread::load(client).await?)
                    } else {
                        None
                    };
                    Ok((registry, variant, spread))
                },
            )
            .await?
        }
        None => (ServiceRegistry::offline(), Variant::default(), None),
    };
    let registry = Arc::new(registry);
    // A failed index rebuild rolls back everything read so far; what cannot be read
    // again (stdin, a pipe) would be lost with it.
    let strategy = if plan.inputs_can_be_read_again() {
        strategy
    } else {
        IndexStrategy::Keep
    };
    let rebuild = match &database {
        Some(database) => Rebuild::choose(database, variant, strategy).await?,
        None => Rebuild::None,
    };
    let rebuilding_whole = rebuild.is_whole_table();
    let wait_for_busy = matches!(rebuild, Rebuild::None);
    let disk_bytes = Arc::new(AtomicU64::new(0));
    let lines_encoded = Arc::new(AtomicU64::new(0));
    let phases = Phases::default();
    let progress = Progress::start(plan, disk_bytes.clone(), lines_encoded.clone(), &phases);

    // Short queues: each holds batches of --batch-bytes, and memory must not grow with the input.
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<(Arc<SourceRef>, Chunk)>(1);
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(plan.jobs);
    let buffers = Arc::new(BufferPool::new(2 * (plan.jobs + plan.parse_threads) + 2));
    let (note_tx, note_rx) = mpsc::unbounded_channel::<Note>();
    let (update_tx, update_rx) = mpsc::unbounded_channel::<Update>();

    let reader = Reader {
        inputs: plan.inputs.clone(),
        stdin_name: plan.stdin_name.clone(),
        limits: ReadLimits {
            chunk_bytes: plan.chunk_bytes,
            max_line_bytes: plan.parse.max_line_bytes,
        },
        stop: stop.clone(),
        notes: note_tx,
        chunks: chunk_tx,
        disk_bytes: disk_bytes.clone(),
        buffers: buffers.clone(),
        wait_for_busy,
    };
    let reader = std::thread::Builder::new()
        .name("logctl-reader".into())
        .spawn(move || reader.run())
        .map_err(|e| crate::Error::io("cannot start the reader thread", e))?;

    // A rebuild load has one COPY stream, whose server backend needs a core of its own;
    // with several streams the backends wait on each other and encoding fills the gaps.
    let encode_threads = if rebuilding_whole {
        plan.parse_threads.saturating_sub(1).max(1)
    } else {
        plan.parse_threads
    };
    let mut encoders = Vec::new();
    for index in 0..encode_threads {
        let chunks = chunk_rx.clone();
        let batches = batch_tx.clone();
        let encoder = LineEncoder::new(plan.parse.clone());
        let buffers = buffers.clone();
        let lines_encoded = lines_encoded.clone();
        encoders.push(
            std::thread::Builder::new()
                .name(format!("logctl-encode-{index}"))
                .spawn(move || encode_stage(chunks, batches, encoder, buffers, lines_encoded))
                .map_err(|e| crate::Error::io("cannot start an encode thread", e))?,
        );
    }
    drop(chunk_rx);
    drop(batch_tx);

    // A whole-table rebuild lets one writer at a time into its transaction; the others
    // wait with a batch each, and take over the pool's streams if it is declined.
    let writer_count = if database.is_some() { plan.jobs } else { 1 };
    let ledger = Ledger::new(database.clone());
    let compactor = database.clone();
    let writers = Arc::new(Writers {
        partitions: variant.partition.map(|_| KnownPartitions::default()),
        spread,
        database,
        // Only the writers hold the receiver: if they all stop, the encode threads'
        // sends fail and the pipeline winds down instead of waiting on a full channel.
        batches: Mutex::new(batch_rx),
        updates: update_tx.clone(),
        rejects,
        registry: registry.clone(),
        session: SessionSlot::new(rebuild),
        buffers,
        stop: stop.clone(),
    });
    let mut tasks = Vec::new();
    for _ in 0..writer_count {
        let writers = writers.clone();
        tasks.push(tokio::spawn(async move { writers.run().await }));
    }
    // Once every writer is done, the rebuild transaction (if any) commits, or rolls
    // back when one of its batches failed, and only then are its batches counted. The
    // finisher holds the writers' last handle, so the updates end when it does.
    let finishing_phases = phases.clone();
    let finisher = tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
        writers
            .session
            .finish(&writers.updates, &writers.stop, &finishing_phases)
            .await;
    });
    drop(update_tx);

    let mut report = tally(
        note_rx,
        update_rx,
        ledger,
        stop.clone(),
        plan.max_errors,
        plan.inputs.len(),
        &phases,
    )
    .await;
    finisher
        .await
        .map_err(|_| crate::Error::Failed("a writer task panicked".into()))?;
    for encoder in encoders {
        encoder
            .join()
            .map_err(|_| crate::Error::Failed("an encode thread panicked".into()))?;
    }
    reader
        .join()
        .map_err(|_| crate::Error::Failed("the reader thread panicked".into()))?;
    // A phase of its own, which the bar names while it runs. A load whose index build
    // refused a row kept none of it and runs again, and that run compacts.
    let compacting =
        !cfg!(feature = "bench-without-rollups") && report.index_build_refused.is_none();
    if let Some(database) = compactor.filter(|_| compacting) {
        phases
            .run(
                "compacting the rollups",
                compact_rollups(&database, &mut report),
            )
            .await;
    }
    progress.finish();
    report.phases = phases.done();
    report.bytes_read = disk_bytes.load(Ordering::Relaxed);
    report.services_created = registry.created();
    report.seconds = started.elapsed().as_secs_f64();
    report.dry_run = plan.dry_run;
    report
        .source_errors
        .splice(0..0, plan.unreadable_inputs.iter().cloned());
    if report.stopped.is_none() && stop.load(Ordering::Relaxed) {
        report.stopped = Some(Stop::Interrupted);
    }
    Ok(report)
}
