//! The analytics half's building blocks (see ../shared/ANALYTICS.md): route templating
//! and the per-service route cap, which keep the number of series bounded, and the
//! mergeable latency sketch that rollup cells carry. All pure: nothing here touches the
//! database.

pub mod routes;
pub mod sketch;
