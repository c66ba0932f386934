//! One module per subcommand, each with its `Args` beside a single `run` entry point
//! (`cli.rs` dispatches to them); `args` holds the argument values several take.

pub mod args;
pub mod bench;
pub mod check;
pub mod completions;
pub mod errors;
pub mod generate;
pub mod latency;
pub mod load;
pub mod local;
pub mod man;
pub mod prune;
pub mod report;
pub mod report_args;
pub mod rollup;
pub mod schema;
pub mod slow;
pub mod status;
pub mod summary;
pub mod timeline;
pub mod top;
pub mod trace;
