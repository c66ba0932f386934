//! Reports: the data of each (a plain type computed by one function, which the terminal,
//! JSON, CSV and HTML renderings share), the queries behind them and how their tables
//! are shown.

pub mod chart;
pub mod check;
pub mod errors;
pub mod filter;
pub mod latency;
pub mod overview;
pub mod render;
pub mod scope;
pub mod slow;
pub mod status;
pub mod summary;
pub mod timeline;
pub mod top;
pub mod trace;

pub use render::{Cell, Column, Format, Report, Table, column_names};
