//! The load pipeline: a reader thread cuts sources into chunks, parse threads
//! encode them into COPY batches, and writer tasks stream the batches over pooled
//! connections, each in a transaction that also records its range in the ledger.
//! Bounded channels between the stages keep memory flat whatever the input size.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::collections::HashSet;

use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio_postgres::Client;

use super::batch::{Batch, SourceSlot, encode_chunk};
use super::buffers::BufferPool;
use super::ledger;
use super::parse::{LineEncoder, ParseOptions};
use super::reader::{Chunk, Gap, ReadLimits, read_gap};
use super::rejects::RejectSink;
use super::services::{ServiceCache, ServiceRegistry};
use super::source::{Input, Opened};
use super::writer::{
    Destination, IndexStrategy, Partitions, RebuildSession, Written, partition_bounds,
    partitions_can_be_built_detached, write_batch,
};
use crate::db::migrate::Variant;
use crate::db::{self, Database};

/// Everything a load needs to know, already validated.
pub struct LoadPlan {
    pub inputs: Vec<Input>,
    /// The ledger name of stdin (`--source`).
    pub stdin_name: String,
    pub parse: ParseOptions,
    /// Concurrent COPY streams.
    pub jobs: usize,
    pub parse_threads: usize,
    pub chunk_bytes: usize,
    pub max_errors: Option<u64>,
    pub dry_run: bool,
    pub progress: bool,
    pub index_strategy: IndexStrategy,
}

/// Why a load ended before reading everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Interrupted,
    TooManyRejects,
    Failed,
}

/// What a load did; also the `--format json` summary.
#[derive(Debug, Default, Serialize)]
pub struct LoadReport {
    pub files: usize,
    pub files_with_new_lines: usize,
    pub files_already_loaded: usize,
    /// Files without a complete line yet.
    pub files_waiting: usize,
    /// Files another loader was loading, left to it (only when this load could build
    /// indexes in one transaction, which must not wait on another loader).
    pub files_left_to_others: Vec<String>,
    pub lines_read: u64,
    pub loaded: u64,
    pub rejected: u64,
    pub blank: u64,
    pub bytes_read: u64,
    /// Bytes of unterminated last lines left for the next run.
    pub pending_bytes: u64,
    pub services_created: Vec<String>,
    pub seconds: f64,
    pub dry_run: bool,
    pub stopped: Option<Stop>,
    /// Sources that could not be read, with the reason.
    pub source_errors: Vec<String>,
    /// Whether the indexes were dropped for the load and built again after it.
    pub rebuilt_indexes: bool,
    #[serde(skip)]
    pub failure: Option<anyhow::Error>,
}

enum Event {
    /// A source was claimed; its batches are counted from here.
    Claimed(Arc<SourceSlot>),
    /// All of a source was read, in this many batches.
    Read {
        slot: Arc<SourceSlot>,
        batches: u64,
        pending_bytes: u64,
    },
    /// A source without a complete line yet.
    NoCompleteLine,
    /// A source another loader holds, left to it.
    Busy(Arc<str>),
    /// A source that could not be read, or not to the end.
    SourceError(String),
    /// Lines committed; `chunk_done` when this was the last part of a chunk.
    Committed {
        stats: BatchStats,
        chunk_done: bool,
    },
    /// Lines rejected by a write, counted against --max-errors at once, even when the
    /// write is part of the rebuild transaction and its stats come later.
    Rejected(u64),
    /// The rebuild transaction committed, indexes built.
    Rebuilt,
    Fatal(anyhow::Error),
}

struct BatchStats {
    source: usize,
    lines: u64,
    loaded: u64,
    rejected: u64,
    blank: u64,
}

impl BatchStats {
    fn of(source: usize, batches: &[Batch]) -> BatchStats {
        BatchStats {
            source,
            lines: batches.iter().map(Batch::line_count).sum(),
            loaded: batches.iter().map(|b| b.rows.len() as u64).sum(),
            rejected: batches.iter().map(|b| b.rejects.len() as u64).sum(),
            blank: batches.iter().map(|b| b.blank_lines).sum(),
        }
    }
}

/// Runs a load to the end (or to a stop), and reports what was committed.
pub async fn run(
    plan: LoadPlan,
    database: Option<Database>,
    rejects: RejectSink,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<LoadReport> {
    let started = Instant::now();
    let control = match &database {
        Some(database) => Some(Arc::new(Mutex::new(database.dedicated().await?))),
        None => None,
    };
    let registry = Arc::new(match &control {
        Some(client) => ServiceRegistry::load(client.clone()).await?,
        None => ServiceRegistry::offline(),
    });
    // Decided before any line is parsed: from here on, new services are created in the
    // rebuild transaction, which holds a lock on `services`.
    let variant = match &control {
        Some(control) => Variant::of_database(&*control.lock().await)
            .await?
            .unwrap_or_default(),
        None => Variant::default(),
    };
    let partitions = Arc::new(variant.partition.map(|_| Partitions::default()));
    let (rebuild, session) = match (&database, &control) {
        (Some(database), Some(control)) => {
            Rebuild::choose(database, control, variant, plan.index_strategy).await?
        }
        _ => (Rebuild::None, None),
    };
    if let Some(session) = &session {
        registry.create_through(session.client.clone());
    }
    let rebuilding_whole = matches!(rebuild, Rebuild::WholeTable);
    let disk_bytes = Arc::new(AtomicU64::new(0));
    let lines_parsed = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(&plan, disk_bytes.clone(), lines_parsed.clone());

    // Short queues: each holds batches of --batch-bytes, and memory must not grow with the input.
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<(Arc<SourceSlot>, Chunk)>(1);
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(plan.jobs);
    let buffers = Arc::new(BufferPool::new(2 * (plan.jobs + plan.parse_threads) + 2));
    let (event_tx, event_rx) = mpsc::unbounded_channel::<Event>();
    let claimed = Arc::new(std::sync::Mutex::new(HashSet::new()));

    let reader = {
        let reader = SourceReader {
            inputs: plan.inputs.clone(),
            stdin_name: plan.stdin_name.clone(),
            limits: ReadLimits {
                chunk_bytes: plan.chunk_bytes,
                max_line_bytes: plan.parse.max_line_bytes,
            },
            control: control.clone(),
            runtime: tokio::runtime::Handle::current(),
            stop: stop.clone(),
            events: event_tx.clone(),
            chunks: chunk_tx,
            disk_bytes: disk_bytes.clone(),
            claimed: claimed.clone(),
            buffers: buffers.clone(),
            wait_for_busy: matches!(rebuild, Rebuild::None),
        };
        std::thread::Builder::new()
            .name("logctl-reader".into())
            .spawn(move || reader.run())?
    };

    // A rebuild load has one COPY stream, whose server backend needs a core of its own;
    // with several streams the backends wait on each other and parsing fills the gaps.
    let parse_threads = if rebuilding_whole {
        plan.parse_threads.saturating_sub(1).max(1)
    } else {
        plan.parse_threads
    };
    let mut parsers = Vec::new();
    for index in 0..parse_threads {
        let chunks = chunk_rx.clone();
        let batches = batch_tx.clone();
        let events = event_tx.clone();
        let mut encoder = LineEncoder::new(plan.parse.clone());
        let mut services = ServiceCache::new(registry.clone());
        let lines_parsed = lines_parsed.clone();
        let stop = stop.clone();
        let buffers = buffers.clone();
        parsers.push(
            std::thread::Builder::new()
                .name(format!("logctl-parse-{index}"))
                .spawn(move || {
                    for (slot, chunk) in chunks {
                        let lines = chunk.end_line - chunk.start_line;
                        match encode_chunk(slot, chunk, &mut encoder, &mut services, &buffers) {
                            Ok(batch) => {
                                lines_parsed.fetch_add(lines, Ordering::Relaxed);
                                if batches.blocking_send(batch).is_err() {
                                    break;
                                }
                            }
                            Err(error) => {
                                stop.store(true, Ordering::Relaxed);
                                let _ = events.send(Event::Fatal(error));
                                break;
                            }
                        }
                    }
                })?,
        );
    }
    drop(chunk_rx);
    drop(batch_tx);

    let rejects = Arc::new(rejects);
    let writer_count = if database.is_some() && !rebuilding_whole {
        plan.jobs
    } else {
        1
    };
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    let shared = Arc::new(SessionSlot {
        session: Mutex::new(session),
        rebuild,
        deferred: std::sync::Mutex::new(Vec::new()),
        failed: AtomicBool::new(false),
    });
    let mut writers = Vec::new();
    for _ in 0..writer_count {
        let batches = batch_rx.clone();
        let events = event_tx.clone();
        let database = database.clone();
        let rejects = rejects.clone();
        let stop = stop.clone();
        let buffers = buffers.clone();
        let shared = shared.clone();
        let partitions = partitions.clone();
        writers.push(tokio::spawn(async move {
            loop {
                let next = batches.lock().await.recv().await;
                let Some(batch) = next else { break };
                let source = batch.source.index;
                let (written, through_session) = match &database {
                    Some(database) if shared.wants(&batch) => {
                        (shared.write(database, batch, &rejects).await, true)
                    }
                    Some(database) => {
                        let destination = Destination::Pool(database, partitions.as_ref().as_ref());
                        (write_batch(destination, batch, &rejects).await, false)
                    }
                    None => (dry_run_write(batch, &rejects), false),
                };
                let stats = BatchStats::of(source, &written.committed);
                for batch in written.committed {
                    buffers.give(batch.raw);
                    buffers.give(batch.copy);
                }
                let chunk_done = written.error.is_none();
                let _ = events.send(Event::Rejected(stats.rejected));
                if through_session {
                    // Counted once the rebuild transaction commits.
                    shared
                        .deferred
                        .lock()
                        .expect("not poisoned")
                        .push((stats, chunk_done));
                } else {
                    let _ = events.send(Event::Committed { stats, chunk_done });
                }
                if let Some(error) = written.error {
                    if through_session {
                        shared.failed.store(true, Ordering::Relaxed);
                    }
                    stop.store(true, Ordering::Relaxed);
                    let _ = events.send(Event::Fatal(error));
                    break;
                }
            }
        }));
    }
    // Only the writers hold the receiver now: if they all stop, the parse threads'
    // sends fail and the pipeline winds down instead of waiting on a full channel.
    drop(batch_rx);
    // Once every writer is done, the rebuild transaction (if any) commits, or rolls
    // back when one of its batches failed, and only then are its batches counted.
    let finisher = {
        let events = event_tx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            for writer in writers {
                let _ = writer.await;
            }
            let Some(session) = shared.session.lock().await.take() else {
                return;
            };
            if shared.failed.load(Ordering::Relaxed) {
                session.abandon().await;
                return;
            }
            match session.finish().await {
                Ok(()) => {
                    for (stats, chunk_done) in
                        shared.deferred.lock().expect("not poisoned").drain(..)
                    {
                        let _ = events.send(Event::Committed { stats, chunk_done });
                    }
                    let _ = events.send(Event::Rebuilt);
                }
                Err(error) => {
                    stop.store(true, Ordering::Relaxed);
                    let _ = events.send(Event::Fatal(error.context(
                        "finishing the load's index-building transaction failed; what it had copied was rolled back, and a re-run loads it",
                    )));
                }
            }
        })
    };
    drop(event_tx);

    let mut report = track(
        event_rx,
        control.clone(),
        claimed,
        stop.clone(),
        plan.max_errors,
        plan.inputs.len(),
    )
    .await;
    finisher.await?;
    for parser in parsers {
        parser
            .join()
            .map_err(|_| anyhow::anyhow!("a parse thread panicked"))?;
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
    progress.finish();
    report.bytes_read = disk_bytes.load(Ordering::Relaxed);
    report.services_created = registry.created();
    report.seconds = started.elapsed().as_secs_f64();

    report.dry_run = plan.dry_run;
    if report.stopped.is_none() && stop.load(Ordering::Relaxed) {
        report.stopped = Some(Stop::Interrupted);
    }
    Ok(report)
}

/// How the indexes are kept up during this load (see `--index-strategy`).
enum Rebuild {
    /// Every batch through the pool, indexes maintained row by row.
    None,
    /// An empty plain table: one transaction, begun at the start, that drops and
    /// rebuilds the indexes.
    WholeTable,
    /// A partitioned table: batches for partitions that did not exist go through one
    /// transaction that builds those partitions after their rows; the others through
    /// the pool. Holds the bounds of the partitions that did exist.
    NewPartitions(Vec<(i64, i64)>),
}

impl Rebuild {
    /// The way, with the whole table's rebuild transaction when that is the way.
    async fn choose(
        database: &Database,
        control: &Arc<Mutex<Client>>,
        variant: Variant,
        strategy: IndexStrategy,
    ) -> anyhow::Result<(Rebuild, Option<RebuildSession>)> {
        // A distributed table keeps its indexes: Citus would run the drops and builds
        // on every shard inside the load's transaction.
        if strategy == IndexStrategy::Keep || variant.distributed {
            return Ok((Rebuild::None, None));
        }
        if variant.partition.is_some() {
            let client = control.lock().await;
            if !partitions_can_be_built_detached(&client).await? {
                return Ok((Rebuild::None, None));
            }
            let existing = partition_bounds(&client).await?;
            return Ok((Rebuild::NewPartitions(existing), None));
        }
        let force = strategy == IndexStrategy::Rebuild;
        Ok(match RebuildSession::whole_table(database, force).await? {
            Some(session) => (Rebuild::WholeTable, Some(session)),
            None => (Rebuild::None, None),
        })
    }
}

/// The rebuild transaction, shared by the writers: begun for the first batch that needs
/// it (new partitions) or at the start (a whole table), used by one writer at a time.
struct SessionSlot {
    session: Mutex<Option<RebuildSession>>,
    rebuild: Rebuild,
    /// Stats of the batches written through it, counted once it commits.
    deferred: std::sync::Mutex<Vec<(BatchStats, bool)>>,
    failed: AtomicBool,
}

impl SessionSlot {
    fn wants(&self, batch: &Batch) -> bool {
        match &self.rebuild {
            Rebuild::None => false,
            Rebuild::WholeTable => true,
            Rebuild::NewPartitions(existing) => {
                RebuildSession::covers_new_partition(existing, &batch.days)
            }
        }
    }

    async fn write(&self, database: &Database, batch: Batch, rejects: &RejectSink) -> Written {
        let mut slot = self.session.lock().await;
        if slot.is_none() {
            match RebuildSession::new_partitions(database).await {
                Ok(session) => *slot = Some(session),
                Err(error) => {
                    return Written {
                        committed: Vec::new(),
                        error: Some(error),
                    };
                }
            }
        }
        let session = slot.as_ref().expect("begun above");
        write_batch(Destination::Rebuild(session), batch, rejects).await
    }
}

fn dry_run_write(batch: Batch, rejects: &RejectSink) -> Written {
    match rejects.write(&batch.rejects) {
        Ok(()) => Written {
            committed: vec![batch],
            error: None,
        },
        Err(e) => Written {
            committed: Vec::new(),
            error: Some(anyhow::anyhow!("cannot write the rejected lines: {e}")),
        },
    }
}

/// Collects the pipeline's events into the report; releases each source once all its
/// chunks are committed, and raises the stop flag on --max-errors or a failure.
async fn track(
    mut events: mpsc::UnboundedReceiver<Event>,
    control: Option<Arc<Mutex<Client>>>,
    claimed: Arc<std::sync::Mutex<HashSet<i32>>>,
    stop: Arc<AtomicBool>,
    max_errors: Option<u64>,
    files: usize,
) -> LoadReport {
    struct Pending {
        slot: Arc<SourceSlot>,
        chunks: Option<u64>,
        committed_chunks: u64,
        new_lines: bool,
    }
    let mut report = LoadReport {
        files,
        ..LoadReport::default()
    };
    let fail = |report: &mut LoadReport, error: anyhow::Error| {
        if report.failure.is_none() {
            report.failure = Some(error);
            report.stopped = Some(Stop::Failed);
        }
        stop.store(true, Ordering::Relaxed);
    };
    let mut pending: HashMap<usize, Pending> = HashMap::new();
    let mut rejected_so_far = 0;
    // Sources with new commits, tidied in the ledger once the load is over.
    let mut compact: Vec<[u8; 32]> = Vec::new();
    while let Some(event) = events.recv().await {
        let touched = match event {
            Event::Claimed(slot) => {
                let pending_source = Pending {
                    slot,
                    chunks: None,
                    committed_chunks: 0,
                    new_lines: false,
                };
                pending.insert(pending_source.slot.index, pending_source);
                None
            }
            Event::Read {
                slot,
                batches,
                pending_bytes,
            } => {
                report.pending_bytes += pending_bytes;
                if let Some(entry) = pending.get_mut(&slot.index) {
                    entry.chunks = Some(batches);
                }
                Some(slot.index)
            }
            Event::NoCompleteLine => {
                report.files_waiting += 1;
                None
            }
            Event::Busy(name) => {
                report.files_left_to_others.push(name.to_string());
                None
            }
            Event::SourceError(message) => {
                report.source_errors.push(message);
                None
            }
            Event::Committed { stats, chunk_done } => {
                report.lines_read += stats.lines;
                report.loaded += stats.loaded;
                report.rejected += stats.rejected;
                report.blank += stats.blank;
                if let Some(entry) = pending.get_mut(&stats.source) {
                    entry.committed_chunks += u64::from(chunk_done);
                    entry.new_lines |= stats.lines > 0;
                    if stats.lines > 0 && !compact.contains(&entry.slot.key) {
                        compact.push(entry.slot.key);
                    }
                }
                Some(stats.source)
            }
            Event::Rejected(lines) => {
                rejected_so_far += lines;
                if max_errors.is_some_and(|max| rejected_so_far > max) && report.stopped.is_none() {
                    report.stopped = Some(Stop::TooManyRejects);
                    stop.store(true, Ordering::Relaxed);
                }
                None
            }
            Event::Rebuilt => {
                report.rebuilt_indexes = true;
                None
            }
            Event::Fatal(error) => {
                fail(&mut report, error);
                None
            }
        };
        let Some(index) = touched else { continue };
        if pending
            .get(&index)
            .is_none_or(|p| p.chunks != Some(p.committed_chunks))
        {
            continue;
        }
        let finished = pending.remove(&index).expect("checked above");
        if finished.new_lines {
            report.files_with_new_lines += 1;
        } else {
            report.files_already_loaded += 1;
        }
        if let Some(control) = &control {
            let released = ledger::release(&*control.lock().await, finished.slot.claim_lock).await;
            if let Err(error) = released {
                fail(&mut report, db::explain(error));
            }
        }
        claimed
            .lock()
            .expect("not poisoned")
            .remove(&finished.slot.claim_lock);
    }
    if let Some(control) = &control {
        for unfinished in pending.values() {
            let _ = ledger::release(&*control.lock().await, unfinished.slot.claim_lock).await;
        }
        for key in &compact {
            if let Err(error) = ledger::compact(&*control.lock().await, key).await {
                fail(&mut report, db::explain(error));
            }
        }
    }
    report
}

/// The reader thread: opens each source, claims it in the ledger, and reads what is
/// not committed yet. Sources another loader holds, or that share a first line with a
/// source this loader has in flight, are retried until they are free.
struct SourceReader {
    inputs: Vec<Input>,
    stdin_name: String,
    limits: ReadLimits,
    control: Option<Arc<Mutex<Client>>>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<Event>,
    chunks: crossbeam_channel::Sender<(Arc<SourceSlot>, Chunk)>,
    disk_bytes: Arc<AtomicU64>,
    /// Claim locks this process holds (session advisory locks are re-entrant, so
    /// the ledger alone would let one process claim a source twice).
    claimed: Arc<std::sync::Mutex<HashSet<i32>>>,
    buffers: Arc<BufferPool>,
    /// Whether to wait for sources another loader holds. A rebuild load must not: its
    /// lock on the table stops the other loader, which would never let go.
    wait_for_busy: bool,
}

/// A source opened and waiting for its claim.
struct Waiting {
    index: usize,
    name: Arc<str>,
    opened: Opened,
}

enum Claim {
    Claimed {
        slot: Arc<SourceSlot>,
        gaps: Vec<Gap>,
    },
    Busy,
}

impl SourceReader {
    fn run(self) {
        let mut waiting = Vec::new();
        for (index, input) in self.inputs.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let name: Arc<str> = match input {
                Input::Stdin => self.stdin_name.as_str().into(),
                Input::File(_) => input.display_name().into(),
            };
            match Opened::open(input, self.disk_bytes.clone()) {
                Ok(opened) if opened.identity.is_none() => {
                    let _ = self.events.send(Event::NoCompleteLine);
                }
                Ok(opened) => waiting.push(Waiting {
                    index,
                    name,
                    opened,
                }),
                Err(error) => {
                    let _ = self
                        .events
                        .send(Event::SourceError(format!("cannot read {name}: {error}")));
                }
            }
            // Claim and read in argument order; only busy sources wait for another round.
            let Ok(busy) = self.read_claimable(waiting) else {
                return;
            };
            waiting = busy;
        }
        if !self.wait_for_busy {
            for source in &waiting {
                let _ = self.events.send(Event::Busy(source.name.clone()));
            }
            return;
        }
        while !waiting.is_empty() && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let Ok(busy) = self.read_claimable(waiting) else {
                return;
            };
            waiting = busy;
        }
    }

    /// Reads every source it can claim now; returns the busy ones, or Err(()) when the
    /// pipeline is shutting down.
    fn read_claimable(&self, sources: Vec<Waiting>) -> Result<Vec<Waiting>, ()> {
        let mut busy = Vec::new();
        for source in sources {
            if let Some(source) = self.try_read(source)? {
                busy.push(source);
            }
        }
        Ok(busy)
    }

    /// Claims and reads a source; gives it back when it is busy, Err(()) when the
    /// pipeline is shutting down.
    fn try_read(&self, source: Waiting) -> Result<Option<Waiting>, ()> {
        match self.claim(&source) {
            Ok(Claim::Claimed { slot, gaps }) => {
                if self.read_source(&slot, source.opened, gaps) {
                    Ok(None)
                } else {
                    Err(())
                }
            }
            Ok(Claim::Busy) => Ok(Some(source)),
            Err(error) => {
                let _ = self.events.send(Event::Fatal(error));
                Err(())
            }
        }
    }

    fn claim(&self, source: &Waiting) -> anyhow::Result<Claim> {
        let identity = source
            .opened
            .identity
            .as_ref()
            .expect("only sources with an identity wait");
        let claim_lock = identity.claim_lock();
        let slot = |key| {
            Arc::new(SourceSlot {
                index: source.index,
                name: source.name.clone(),
                key,
                claim_lock,
            })
        };
        let Some(control) = &self.control else {
            return Ok(Claim::Claimed {
                slot: slot(identity.own_key().1),
                gaps: ledger::gaps(&[]),
            });
        };
        if !self
            .claimed
            .lock()
            .expect("not poisoned")
            .insert(claim_lock)
        {
            return Ok(Claim::Busy);
        }
        let claimed = self.runtime.block_on(async {
            let client = control.lock().await;
            ledger::try_claim(&client, identity, &source.name).await
        });
        match claimed.map_err(db::explain)? {
            Some(claimed) => Ok(Claim::Claimed {
                slot: slot(claimed.key),
                gaps: ledger::gaps(&claimed.committed),
            }),
            None => {
                self.claimed
                    .lock()
                    .expect("not poisoned")
                    .remove(&claim_lock);
                Ok(Claim::Busy)
            }
        }
    }

    /// Reads the gaps of a claimed source; false when the pipeline is shutting down.
    fn read_source(&self, slot: &Arc<SourceSlot>, mut opened: Opened, gaps: Vec<Gap>) -> bool {
        let _ = self.events.send(Event::Claimed(slot.clone()));
        let mut batches = 0;
        let mut pending_bytes = 0;
        let mut keep_going = true;
        let committed_end = gaps.last().map_or(0, |gap| gap.start);
        if let Err(problem) = opened.check_committed_end(committed_end) {
            let _ = self.events.send(Event::SourceError(format!(
                "{} does not match what was loaded from it before ({problem}); skipped",
                slot.name
            )));
            let _ = self.events.send(Event::Read {
                slot: slot.clone(),
                batches: 0,
                pending_bytes: 0,
            });
            return true;
        }
        for gap in gaps {
            let result = read_gap(
                &mut opened,
                gap,
                self.limits,
                &self.stop,
                &self.buffers,
                &mut |chunk| {
                    batches += 1;
                    self.chunks.send((slot.clone(), chunk)).is_ok()
                },
            );
            match result {
                Ok(end) => {
                    pending_bytes += end.pending_bytes;
                    if end.stopped {
                        keep_going = false;
                        break;
                    }
                }
                Err(error) => {
                    let _ = self.events.send(Event::SourceError(format!(
                        "cannot read {} to the end: {error} (the complete lines before that point are loaded)",
                        slot.name
                    )));
                    break;
                }
            }
        }
        let _ = self.events.send(Event::Read {
            slot: slot.clone(),
            batches,
            pending_bytes,
        });
        keep_going
    }
}

/// The progress bar on a terminal: bytes read, lines/s and ETA.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(plan: &LoadPlan, disk_bytes: Arc<AtomicU64>, lines: Arc<AtomicU64>) -> Progress {
        if !plan.progress {
            return Progress {
                bar: None,
                ticker: None,
            };
        }
        let total: u64 = plan.inputs.iter().filter_map(Input::size_on_disk).sum();
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} {msg} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let ticking = bar.clone();
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                ticking.set_position(disk_bytes.load(Ordering::Relaxed));
                let lines = lines.load(Ordering::Relaxed);
                let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
                ticking.set_message(format!("{lines} lines, {rate:.0} lines/s"));
            }
        });
        Progress {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
