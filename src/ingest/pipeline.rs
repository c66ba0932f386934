//! The load pipeline: a reader thread cuts sources into chunks, parse threads
//! encode them into COPY batches, and writer tasks stream the batches over pooled
//! connections, each in a transaction that also records its range in the ledger.
//! Bounded channels between the stages keep memory flat whatever the input size.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::batch::{Batch, SourceSlot, encode_chunk};
use super::copy;
use super::ledger;
use super::parse::{LineEncoder, ParseOptions};
use super::reader::{Chunk, Gap, ReadLimits, read_gap};
use super::rejects::RejectSink;
use super::services::{ServiceCache, ServiceRegistry};
use super::source::{Input, Opened};
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
    /// Nothing to load: no complete line yet, or nothing new.
    Skipped,
    SourceError(String),
    Committed(BatchStats),
    Fatal(anyhow::Error),
}

struct BatchStats {
    source: usize,
    lines: u64,
    loaded: u64,
    rejected: u64,
    blank: u64,
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
    let disk_bytes = Arc::new(AtomicU64::new(0));
    let lines_parsed = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(&plan, disk_bytes.clone(), lines_parsed.clone());

    let (chunk_tx, chunk_rx) =
        crossbeam_channel::bounded::<(Arc<SourceSlot>, Chunk)>(plan.parse_threads * 2);
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(plan.jobs * 2);
    let (event_tx, event_rx) = mpsc::unbounded_channel::<Event>();

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
        };
        std::thread::Builder::new()
            .name("logctl-reader".into())
            .spawn(move || reader.run())?
    };

    let mut parsers = Vec::new();
    for index in 0..plan.parse_threads {
        let chunks = chunk_rx.clone();
        let batches = batch_tx.clone();
        let events = event_tx.clone();
        let mut encoder = LineEncoder::new(plan.parse.clone());
        let mut services = ServiceCache::new(registry.clone());
        let lines_parsed = lines_parsed.clone();
        let stop = stop.clone();
        parsers.push(
            std::thread::Builder::new()
                .name(format!("logctl-parse-{index}"))
                .spawn(move || {
                    for (slot, chunk) in chunks {
                        let lines = chunk.end_line - chunk.start_line;
                        match encode_chunk(slot, chunk, &mut encoder, &mut services) {
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
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    let mut writers = Vec::new();
    for _ in 0..if database.is_some() { plan.jobs } else { 1 } {
        let batches = batch_rx.clone();
        let events = event_tx.clone();
        let database = database.clone();
        let rejects = rejects.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            loop {
                let next = batches.lock().await.recv().await;
                let Some(batch) = next else { break };
                let result = match &database {
                    Some(database) => write_batch(database, batch).await,
                    None => Ok(vec![batch]),
                };
                match result {
                    Ok(committed) => {
                        for batch in committed {
                            if let Err(error) = rejects.write(&batch.rejects) {
                                let _ = events.send(Event::Fatal(anyhow::anyhow!(
                                    "cannot write rejected lines: {error}"
                                )));
                            }
                            let _ = events.send(Event::Committed(BatchStats {
                                source: batch.source.index,
                                lines: batch.line_count(),
                                loaded: batch.rows.len() as u64,
                                rejected: batch.rejects.len() as u64,
                                blank: batch.blank_lines,
                            }));
                        }
                    }
                    Err(error) => {
                        stop.store(true, Ordering::Relaxed);
                        let _ = events.send(Event::Fatal(error));
                        break;
                    }
                }
            }
        }));
    }
    drop(event_tx);

    let mut report = track(
        event_rx,
        control.clone(),
        stop.clone(),
        plan.max_errors,
        plan.inputs.len(),
    )
    .await;
    for writer in writers {
        writer.await?;
    }
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

/// Collects the pipeline's events into the report; releases each source once all its
/// batches are committed, and raises the stop flag on --max-errors or a failure.
async fn track(
    mut events: mpsc::UnboundedReceiver<Event>,
    control: Option<Arc<Mutex<Client>>>,
    stop: Arc<AtomicBool>,
    max_errors: Option<u64>,
    files: usize,
) -> LoadReport {
    struct Pending {
        slot: Arc<SourceSlot>,
        expected: Option<u64>,
        committed: u64,
        new_lines: bool,
    }
    let mut report = LoadReport {
        files,
        ..LoadReport::default()
    };
    let mut pending: HashMap<usize, Pending> = HashMap::new();
    while let Some(event) = events.recv().await {
        let finished_source = match event {
            Event::Claimed(slot) => {
                pending.insert(
                    slot.index,
                    Pending {
                        slot,
                        expected: None,
                        committed: 0,
                        new_lines: false,
                    },
                );
                None
            }
            Event::Read {
                slot,
                batches,
                pending_bytes,
            } => {
                report.pending_bytes += pending_bytes;
                let entry = pending.get_mut(&slot.index).expect("claimed before read");
                entry.expected = Some(batches);
                Some(slot.index)
            }
            Event::Skipped => {
                report.files_already_loaded += 1;
                None
            }
            Event::SourceError(message) => {
                report.source_errors.push(message);
                None
            }
            Event::Committed(stats) => {
                report.lines_read += stats.lines;
                report.loaded += stats.loaded;
                report.rejected += stats.rejected;
                report.blank += stats.blank;
                if max_errors.is_some_and(|max| report.rejected > max) && report.stopped.is_none() {
                    report.stopped = Some(Stop::TooManyRejects);
                    stop.store(true, Ordering::Relaxed);
                }
                let entry = pending
                    .get_mut(&stats.source)
                    .expect("claimed before commit");
                entry.committed += 1;
                entry.new_lines |= stats.lines > 0;
                Some(stats.source)
            }
            Event::Fatal(error) => {
                if report.failure.is_none() {
                    report.failure = Some(error);
                    report.stopped = Some(Stop::Failed);
                }
                None
            }
        };
        let Some(index) = finished_source else {
            continue;
        };
        let done = pending
            .get(&index)
            .is_some_and(|p| p.expected == Some(p.committed));
        if !done {
            continue;
        }
        let finished = pending.remove(&index).expect("checked above");
        if finished.new_lines {
            report.files_with_new_lines += 1;
        } else {
            report.files_already_loaded += 1;
        }
        if let Some(control) = &control
            && let Err(error) = ledger::release(&*control.lock().await, &finished.slot.key).await
        {
            if report.failure.is_none() {
                report.failure = Some(db::explain(error));
                report.stopped = Some(Stop::Failed);
            }
            stop.store(true, Ordering::Relaxed);
        }
    }
    if let Some(control) = &control {
        for unfinished in pending.values() {
            ledger::abandon(&*control.lock().await, &unfinished.slot.key).await;
        }
    }
    report
}

/// Sends a batch, isolating rows the server refuses: the row COPY names is rejected
/// with the server's message, and without a name the batch is halved until it is found.
/// Returns the batches as committed (a batch whose range another loader committed
/// meanwhile comes back with no rows and no rejects).
async fn write_batch(database: &Database, batch: Batch) -> anyhow::Result<Vec<Batch>> {
    let mut work = vec![batch];
    let mut done = Vec::new();
    while let Some(mut batch) = work.pop() {
        match copy_and_commit(database, &mut batch).await {
            Ok(true) => done.push(batch),
            Ok(false) => {
                batch.rows.clear();
                batch.rejects.clear();
                batch.blank_lines = 0;
                batch.start_line = batch.end_line;
                done.push(batch);
            }
            Err(error) if row_error(&error).is_some() && !batch.rows.is_empty() => {
                let error = row_error(&error).expect("checked by the guard");
                let reason = format!("refused by PostgreSQL: {}", db::error_text(error));
                match refused_row(error).filter(|&row| row < batch.rows.len()) {
                    Some(row) => batch.reject_row(row, reason),
                    None if batch.rows.len() == 1 => batch.reject_row(0, reason),
                    None => {
                        let tail = batch.split_off(batch.rows.len() / 2);
                        work.push(tail);
                    }
                }
                work.push(batch);
            }
            Err(error) => {
                return Err(match error.downcast::<tokio_postgres::Error>() {
                    Ok(error) => db::explain(error),
                    Err(other) => other,
                });
            }
        }
    }
    Ok(done)
}

const COPY_STATEMENT: &str = "COPY log_events (event_id, service_id, created_at, level, message, endpoint, method, status, latency_ms, request_id, metadata) FROM STDIN (FORMAT binary)";

/// One transaction: the batch's tuples and its ledger range. Ok(false) when the range
/// was committed by someone else, in which case nothing was written.
async fn copy_and_commit(database: &Database, batch: &mut Batch) -> anyhow::Result<bool> {
    let mut connection = database.get().await?;
    let transaction = connection.transaction().await?;
    if !batch.rows.is_empty() {
        let data = Bytes::from(std::mem::take(&mut batch.copy));
        let sent = async {
            let sink = transaction.copy_in(COPY_STATEMENT).await?;
            futures_util::pin_mut!(sink);
            sink.feed(Bytes::from_static(copy::HEADER)).await?;
            sink.feed(data.clone()).await?;
            sink.feed(Bytes::from_static(copy::TRAILER)).await?;
            sink.finish().await
        }
        .await;
        batch.copy = Vec::from(data);
        sent?;
    }
    if !ledger::commit_range(&transaction, batch).await? {
        transaction.rollback().await?;
        return Ok(false);
    }
    transaction.commit().await?;
    Ok(true)
}

/// The server's error when a row's content caused it, as opposed to the connection
/// or the server's state.
fn row_error(error: &anyhow::Error) -> Option<&tokio_postgres::Error> {
    let error = error.downcast_ref::<tokio_postgres::Error>()?;
    let code = error.code()?;
    let class = &code.code()[..2];
    (matches!(class, "22" | "23" | "54") && *code != SqlState::OUT_OF_MEMORY).then_some(error)
}

/// The tuple COPY was at when it failed ("COPY log_events, line 7, column ..."), 0-based.
fn refused_row(error: &tokio_postgres::Error) -> Option<usize> {
    let context = error.as_db_error()?.where_()?;
    let after = context.split("line ").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<usize>().ok()?.checked_sub(1)
}

/// The reader thread: opens each source, claims it in the ledger, and reads what is
/// not committed yet. Sources another loader holds are retried until it lets go.
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
}

enum Claim {
    Gaps(Vec<Gap>),
    Busy,
}

impl SourceReader {
    fn run(self) {
        let mut waiting: Vec<(Arc<SourceSlot>, Opened)> = Vec::new();
        for (index, input) in self.inputs.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let name: Arc<str> = match input {
                Input::Stdin => self.stdin_name.as_str().into(),
                Input::File(_) => input.display_name().into(),
            };
            let opened = match Opened::open(input, self.disk_bytes.clone()) {
                Ok(opened) => opened,
                Err(error) => {
                    let _ = self
                        .events
                        .send(Event::SourceError(format!("cannot read {name}: {error}")));
                    continue;
                }
            };
            let Some(key) = opened.fingerprint else {
                let _ = self.events.send(Event::Skipped);
                continue;
            };
            let slot = Arc::new(SourceSlot { index, name, key });
            match self.claim(&slot) {
                Ok(Claim::Gaps(gaps)) => {
                    if !self.read_source(&slot, opened, gaps) {
                        return;
                    }
                }
                Ok(Claim::Busy) => waiting.push((slot, opened)),
                Err(error) => {
                    let _ = self.events.send(Event::Fatal(error));
                    return;
                }
            }
        }
        while !waiting.is_empty() && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let mut still_waiting = Vec::new();
            for (slot, opened) in waiting {
                match self.claim(&slot) {
                    Ok(Claim::Gaps(gaps)) => {
                        if !self.read_source(&slot, opened, gaps) {
                            return;
                        }
                    }
                    Ok(Claim::Busy) => still_waiting.push((slot, opened)),
                    Err(error) => {
                        let _ = self.events.send(Event::Fatal(error));
                        return;
                    }
                }
            }
            waiting = still_waiting;
        }
    }

    fn claim(&self, slot: &Arc<SourceSlot>) -> anyhow::Result<Claim> {
        let Some(control) = &self.control else {
            return Ok(Claim::Gaps(ledger::gaps(&[])));
        };
        let claimed = self.runtime.block_on(async {
            let client = control.lock().await;
            ledger::try_claim(&client, &slot.key, &slot.name).await
        });
        match claimed.map_err(db::explain)? {
            Some(committed) => Ok(Claim::Gaps(ledger::gaps(&committed))),
            None => Ok(Claim::Busy),
        }
    }

    /// Reads the gaps of a claimed source; false when the pipeline is shutting down.
    fn read_source(&self, slot: &Arc<SourceSlot>, mut opened: Opened, gaps: Vec<Gap>) -> bool {
        let _ = self.events.send(Event::Claimed(slot.clone()));
        let mut batches = 0;
        let mut pending_bytes = 0;
        let mut keep_going = true;
        for gap in gaps {
            let result = read_gap(&mut opened, gap, self.limits, &self.stop, &mut |chunk| {
                batches += 1;
                self.chunks.send((slot.clone(), chunk)).is_ok()
            });
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
