//! `logctl bench write-penalty`: what each index costs a COPY, on your own database.

use clap::Subcommand;

use crate::db::Database;
use crate::ingest::write_penalty::{self, Measurement};
use crate::report::{Cell, Format, Table, render};
use crate::{Error, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// The cost of each index on COPY: rows/s with 0, 1, 2, ... indexes, random versus
    /// time-ordered keys, B-tree versus BRIN on created_at. Runs in a scratch schema
    /// that is dropped afterwards; touches nothing else
    WritePenalty {
        /// Rows copied per configuration
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let Action::WritePenalty { rows, format } = args.action;
    if rows == 0 {
        return Err(Error::usage("--rows must be at least 1").into());
    }
    let database = Database::open(database_url, 1).await?;
    let client = database.dedicated().await?;
    eprintln!(
        "logctl: copying {rows} rows per configuration into a scratch schema; this takes a while"
    );
    let measurements = write_penalty::measure(&client, rows).await?;
    render::print(&[write_penalty_table(rows, &measurements)], format)?;
    Ok(Outcome::Success)
}

fn write_penalty_table(rows: u64, measurements: &[Measurement]) -> Table {
    Table {
        name: "write_penalty",
        title: format!("COPY of {rows} generated rows into a scratch table, one stream"),
        columns: vec![
            "configuration",
            "indexes",
            "rows_per_second",
            "seconds",
            "cost_vs_no_index",
        ],
        rows: measurements
            .iter()
            .map(|measurement| {
                let seconds = measurement.seconds;
                vec![
                    Cell::Text(measurement.configuration.to_string()),
                    Cell::Int(measurement.indexes as i64),
                    Cell::Int((rows as f64 / seconds) as i64),
                    Cell::Text(format!("{seconds:.3}")),
                    Cell::Text(format!("{:+.0}%", measurement.cost_vs_no_index * 100.0)),
                ]
            })
            .collect(),
    }
}
