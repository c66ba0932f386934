//! Result tables for people (comfy-table, fitted to the terminal) and for scripts
//! (JSON, CSV). Data goes to stdout.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use comfy_table::{CellAlignment, ContentArrangement, presets};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// An identifier (a request id, a partition): shown whole.
    Id(String),
    Int(i64),
    Float(f64),
    Time(DateTime<Utc>),
    Bool(bool),
    Null,
}

impl Cell {
    fn display(&self) -> String {
        match self {
            Cell::Text(text) | Cell::Id(text) => text.clone(),
            Cell::Int(value) => value.to_string(),
            Cell::Float(value) => format!("{value:.1}"),
            Cell::Time(time) => time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            Cell::Bool(value) => if *value { "yes" } else { "no" }.to_string(),
            Cell::Null => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Text(text) | Cell::Id(text) => text.clone().into(),
            Cell::Int(value) => (*value).into(),
            Cell::Float(value) => (*value).into(),
            Cell::Time(time) => time
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into(),
            Cell::Bool(value) => (*value).into(),
            Cell::Null => serde_json::Value::Null,
        }
    }

    fn csv(&self) -> String {
        match self {
            Cell::Time(time) => time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            Cell::Float(value) => value.to_string(),
            other => other.display(),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Float(_))
    }
}

/// A titled result with named columns.
#[derive(Debug, Clone)]
pub struct Table {
    /// The key of this table in JSON output, and its caption in table output.
    pub name: &'static str,
    pub title: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// Prints the tables in the format asked for. A reader that goes away early
/// (`logctl slow | head`) is not an error.
pub fn print(tables: &[Table], format: Format) -> io::Result<()> {
    match write_tables(tables, format) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn write_tables(tables: &[Table], format: Format) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Table => {
            for (index, table) in tables.iter().enumerate() {
                if index > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "{}", table.title)?;
                writeln!(out, "{}", render_table(table))?;
            }
        }
        Format::Json => {
            let mut object = serde_json::Map::new();
            for table in tables {
                let rows: Vec<serde_json::Value> = table
                    .rows
                    .iter()
                    .map(|row| {
                        table
                            .columns
                            .iter()
                            .zip(row)
                            .map(|(column, cell)| (column.to_string(), cell.json()))
                            .collect::<serde_json::Map<_, _>>()
                            .into()
                    })
                    .collect();
                object.insert(table.name.to_string(), rows.into());
            }
            serde_json::to_writer_pretty(&mut out, &object)?;
            writeln!(out)?;
        }
        Format::Csv => {
            for (index, table) in tables.iter().enumerate() {
                if index > 0 {
                    writeln!(out)?;
                }
                let mut writer = csv::Writer::from_writer(&mut out);
                writer.write_record(&table.columns)?;
                for row in &table.rows {
                    writer.write_record(row.iter().map(Cell::csv))?;
                }
                writer.flush()?;
            }
        }
    }
    Ok(())
}

fn render_table(table: &Table) -> comfy_table::Table {
    let mut rendered = comfy_table::Table::new();
    rendered
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(table.columns.iter().copied());
    for row in &table.rows {
        rendered.add_row(row.iter().map(|cell| {
            let shown = comfy_table::Cell::new(cell.display());
            if cell.is_numeric() {
                shown.set_alignment(CellAlignment::Right)
            } else {
                shown
            }
        }));
    }
    if table.rows.is_empty() {
        rendered.add_row(vec![comfy_table::Cell::new("(none)")]);
    }
    rendered
}
