//! Reports: the queries behind them and how their tables are shown.

pub mod overview;
pub mod render;
pub mod slow;
pub mod status;

pub use render::{Cell, Format, Report, Table};
