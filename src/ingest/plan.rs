//! What a load is asked to do, already validated: the one thing `cmd/load` hands the
//! ingest pipeline.

use super::encode::ParseOptions;
use super::read::Input;

/// Everything a load needs to know.
pub struct LoadPlan {
    pub inputs: Vec<Input>,
    /// Entries the inputs' expansion could not read, reported as source errors.
    pub unreadable_inputs: Vec<String>,
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

impl LoadPlan {
    /// Whether every input could be read again after a failed load (none is stdin or
    /// a pipe): only then may a load put everything in one transaction.
    pub fn inputs_can_be_read_again(&self) -> bool {
        self.inputs.iter().all(Input::can_be_read_again)
    }
}

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
