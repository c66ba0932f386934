//! Loading: input -> lines -> events -> COPY rows -> database, exactly once, cut by stage:
//!
//! - `read`: sources, their identity, chunks of whole lines (one thread);
//! - `encode`: line -> `Event` -> COPY tuple, pure (a thread per core);
//! - `write`: each batch's transaction, refused-row isolation, service ids;
//! - `rebuild`: the one-transaction index build for empty tables and new partitions;
//! - `ledger`: the exactly-once protocol; `report`: the task that owns it and adds up
//!   the load report; `run`: the wiring; `progress`: the bar on a terminal;
//! - `write_penalty`: what each index costs the write stage's COPY, measured.
//!
//! The face is narrow: a `LoadPlan` in, a `LoadReport` out. `encode` is public on
//! purpose, for benchmarks and property tests.

mod batch;
mod buffers;
pub mod encode;
mod ledger;
mod plan;
mod progress;
mod read;
mod rebuild;
mod report;
mod run;
mod write;
pub mod write_penalty;

pub use plan::{IndexStrategy, LoadPlan};
pub use read::{Expansion, Input, NameFilter, expand as expand_inputs};
pub use report::{LoadReport, Stop};
pub use run::run;
pub use write::RejectSink;
