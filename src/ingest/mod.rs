//! The ingest pipeline: read sources, split them into line batches, parse each
//! line with simd-json, encode binary COPY tuples and write them through the pool,
//! recording each committed range in the ledger. Knows nothing of the command line.

pub mod batch;
pub mod buffers;
pub mod copy;
pub mod ledger;
pub mod parse;
pub mod pipeline;
pub mod reader;
pub mod rejects;
pub mod services;
pub mod shape;
pub mod source;
pub mod timestamp;
pub mod writer;

pub use pipeline::{LoadPlan, LoadReport, Stop, run};
