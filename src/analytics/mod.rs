//! The analytics half's building blocks (see ../shared/ANALYTICS.md): the mergeable
//! latency sketch that rollup cells carry. Pure: nothing here touches the database.

pub mod sketch;
