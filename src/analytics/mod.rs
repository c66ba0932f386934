//! The analytics half (see ../shared/ANALYTICS.md): route templating and the per-service
//! route cap, which keep the number of series bounded; the mergeable latency sketch;
//! rollup cells and their deltas (pure); compaction into the grains, the read API and
//! top-N rankings, which talk to the database; and error messages' signatures (pure).

pub mod compact;
pub mod read;
pub mod rebuild;
pub mod rollup;
pub mod routes;
pub mod signature;
pub mod sketch;
pub mod top;
