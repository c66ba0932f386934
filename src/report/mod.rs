//! Reports: the queries behind them and how their tables are shown.

pub mod errors;
pub mod filter;
pub mod render;
pub mod scope;
pub mod slow;
pub mod status;
pub mod trace;

pub use render::{Cell, Format, Report, Table};
