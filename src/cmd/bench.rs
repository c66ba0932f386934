//! `logctl bench write-penalty`: what each index costs a COPY, on your own database.

use clap::Subcommand;

use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::db::Database;
use crate::ingest::write_penalty::{self, Measurement};
use crate::report::{Cell, Format, Report, Table, column_names, render};
use crate::{Error, Outcome};

const EXAMPLES: &str =
    "  logctl bench write-penalty                    # 200,000 rows, 3 runs per configuration
  logctl bench write-penalty --rows 1000000 --runs 5 --format json";

/// Below this many rows, the differences between configurations are mostly noise on a
/// busy machine.
const FEW_ROWS: u64 = 100_000;

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// The cost of each index on COPY: rows/s with 0, 1, 2, ... indexes, random versus
    /// time-ordered keys, B-tree versus BRIN on created_at. Runs in a scratch schema
    /// that is dropped afterwards; touches nothing else
    #[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
    WritePenalty {
        /// Rows copied per configuration; fewer than 100,000 mostly measures noise
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        /// Timed runs per configuration: the fastest counts, and their spread says how
        /// far the figures can be trusted
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..))]
        runs: u32,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let Action::WritePenalty { rows, runs, format } = args.action;
    if rows == 0 {
        return Err(Error::usage("--rows must be at least 1").into());
    }
    let database = Database::open(database_url, 1).await?;
    let client = database.dedicated().await?;
    eprintln!(
        "logctl: copying {rows} rows {runs} times per configuration into a scratch schema; \
         this takes a while"
    );
    let measurements = write_penalty::measure(&client, rows, runs).await?;
    let noise = measurements.iter().filter(|m| !m.beyond_noise).count();
    if noise > 0 {
        let advice = if rows < FEW_ROWS {
            format!("; {rows} rows is a small sample: try --rows 200000 or more")
        } else {
            "; more --runs, or a quieter machine, narrow it".to_string()
        };
        eprintln!(
            "logctl: warning: {noise} of the costs are smaller than the spread of their runs \
             (beyond_noise: no), so they are noise, not costs{advice}"
        );
    }
    let report = Report {
        database: database.target.describe(),
        tables: vec![write_penalty_table(rows, runs, &measurements)],
    };
    render::print(&report, format)?;
    Ok(Outcome::Success)
}

fn write_penalty_table(rows: u64, runs: u32, measurements: &[Measurement]) -> Table {
    Table {
        name: "write_penalty",
        title: format!(
            "COPY of {rows} generated rows into a scratch table, one stream, fastest of {runs} \
             runs (spread: how much slower the slowest was)"
        ),
        columns: column_names(&[
            "configuration",
            "indexes",
            "rows_per_second",
            "seconds",
            "spread",
            "cost_vs_no_index",
            "beyond_noise",
        ]),
        rows: measurements
            .iter()
            .map(|measurement| {
                let seconds = measurement.seconds;
                vec![
                    Cell::Text(measurement.configuration.to_string()),
                    Cell::Int(measurement.indexes as i64),
                    Cell::Int((rows as f64 / seconds) as i64),
                    Cell::decimal(seconds, 3),
                    Cell::change(measurement.spread),
                    Cell::change(measurement.cost_vs_no_index),
                    Cell::Bool(measurement.beyond_noise),
                ]
            })
            .collect(),
    }
}
