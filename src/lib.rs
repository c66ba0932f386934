//! logctl: load NDJSON application logs into PostgreSQL and answer questions about them.
//! The binary (`main.rs`) only parses arguments and maps errors to exit codes; everything
//! else lives here so tests and benchmarks can reach it.

pub mod analytics;
pub mod cli;
pub mod cmd;
pub mod db;
pub mod error;
pub mod ingest;
pub mod pgtime;
pub mod report;
pub mod synth;
pub mod terminal;

pub use error::{Error, Invalid, Outcome, Result, error_text};
