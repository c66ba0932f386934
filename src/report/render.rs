//! Reports as people and scripts read them: a `Report` (the database it read, and its
//! tables of typed cells) rendered as text fitted to the display, as JSON or as CSV, and
//! `report`'s HTML page (`html`). All are renderings of the same cells, so the numbers
//! agree everywhere; data goes to stdout.

use std::borrow::Cow;
use std::io::{self, Write};

use chrono::{DateTime, Utc};

use crate::terminal::{self, Display};

pub mod html;
mod text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// One value of a table. The kind decides how it may be shown: a name may be shortened
/// with `…` to fit; a number, a time or an id is never cut.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A name (a service, an endpoint, a file): shortened with `…` when space is short.
    Text(String),
    /// An identifier (a request id, a partition): shown whole.
    Id(String),
    Int(i64),
    /// A measure, shown and written with this many decimals.
    Decimal(f64, u8),
    /// A fraction, shown as a signed percentage (`+12%`) and written as the fraction.
    Change(f64),
    Time(DateTime<Utc>),
    Bool(bool),
    Null,
}

/// A change as the whole percentage every format shows.
pub fn whole_percent(fraction: f64) -> f64 {
    (fraction * 100.0).round()
}

/// Decimals of a fraction in JSON and CSV: a tenth of a percent.
const CHANGE_DECIMALS: u8 = 3;

impl Cell {
    /// A measure rounded to `decimals`, so that a float's binary noise
    /// (`21050.260000000002`) never reaches the output.
    pub fn decimal(value: f64, decimals: u8) -> Cell {
        Cell::Decimal(round(value, decimals), decimals)
    }

    pub fn change(fraction: f64) -> Cell {
        Cell::Change(round(fraction, CHANGE_DECIMALS))
    }

    /// A change as a whole percentage with its sign (`+5%`, `-3%`), and `0%` for one
    /// too small to show, which a sign would make look like a rise or a fall.
    fn percent_text(fraction: f64) -> String {
        let percent = whole_percent(fraction);
        if percent == 0.0 {
            "0%".to_string()
        } else {
            format!("{percent:+.0}%")
        }
    }

    /// How the cell reads in a text table, in CSV and on a page.
    pub fn display(&self) -> String {
        match self {
            Cell::Text(text) | Cell::Id(text) => text.clone(),
            Cell::Int(value) => value.to_string(),
            Cell::Decimal(value, decimals) => format!("{value:.*}", usize::from(*decimals)),
            Cell::Change(fraction) => Cell::percent_text(*fraction),
            Cell::Time(time) => time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            Cell::Bool(value) => if *value { "yes" } else { "no" }.to_string(),
            Cell::Null => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Text(text) | Cell::Id(text) => text.clone().into(),
            Cell::Int(value) => (*value).into(),
            Cell::Decimal(value, _) | Cell::Change(value) => (*value).into(),
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
            Cell::Change(fraction) => fraction.to_string(),
            other => other.display(),
        }
    }

    pub(super) fn is_numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Decimal(..) | Cell::Change(_))
    }

    /// Whether the cell may be shortened to fit.
    fn is_name(&self) -> bool {
        matches!(self, Cell::Text(_))
    }
}

/// `value` to `decimals` places, so that binary noise never reaches the output.
pub fn round(value: f64, decimals: u8) -> f64 {
    let scale = 10f64.powi(i32::from(decimals));
    let rounded = (value * scale).round() / scale;
    if rounded.is_finite() { rounded } else { value }
}

/// A column's name: most are written in the code, a compared figure's are made from its
/// own (`p99_ms_before`).
pub type Column = Cow<'static, str>;

/// Column names as a table holds them.
pub fn column_names(names: &[&'static str]) -> Vec<Column> {
    names.iter().map(|&name| Column::Borrowed(name)).collect()
}

/// A titled result with named columns.
#[derive(Debug, Clone)]
pub struct Table {
    /// The key of this table in JSON output.
    pub name: &'static str,
    /// Its heading in text output.
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The rows as JSON objects keyed by column.
    fn json(&self) -> serde_json::Value {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .zip(row)
                    .map(|(column, cell)| (column.to_string(), cell.json()))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            })
            .collect::<Vec<serde_json::Value>>()
            .into()
    }
}

/// A table inside a larger JSON document reads as it does in `--format json`.
impl serde::Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

/// What a report command prints: the database it read (named in text output, never
/// with a password) and its tables.
#[derive(Debug, Clone)]
pub struct Report {
    pub database: String,
    pub tables: Vec<Table>,
}

/// Prints the report on stdout in the format asked for, laid out for stdout's display.
/// A reader that goes away early (`logctl slow | head`) is not an error.
pub fn print(report: &Report, format: Format) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match write(&mut out, report, format, &terminal::stdout()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes the report in a format, text laid out for `display`.
pub fn write(
    out: &mut impl Write,
    report: &Report,
    format: Format,
    display: &Display,
) -> io::Result<()> {
    match format {
        Format::Table => text::write(out, report, display),
        Format::Json => {
            let mut object = serde_json::Map::new();
            for table in &report.tables {
                object.insert(table.name.to_string(), table.json());
            }
            serde_json::to_writer_pretty(&mut *out, &object)?;
            writeln!(out)
        }
        Format::Csv => {
            for (index, table) in report.tables.iter().enumerate() {
                if index > 0 {
                    writeln!(out)?;
                }
                let mut writer = csv::Writer::from_writer(&mut *out);
                writer.write_record(table.columns.iter().map(|column| column.as_bytes()))?;
                for row in &table.rows {
                    writer.write_record(row.iter().map(Cell::csv))?;
                }
                writer.flush()?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_are_rounded_in_every_format() {
        let cell = Cell::decimal(21050.260000000002, 1);
        assert_eq!(cell.display(), "21050.3");
        assert_eq!(cell.json(), serde_json::json!(21050.3));
        assert_eq!(cell.csv(), "21050.3");
        let change = Cell::change(-0.10987654);
        assert_eq!(change.display(), "-11%");
        assert_eq!(change.json(), serde_json::json!(-0.11));
        assert_eq!(
            Cell::change(-0.004).display(),
            "0%",
            "no sign on what rounds to 0"
        );
        assert_eq!(Cell::change(0.004).display(), "0%");
        assert_eq!(Cell::change(0.005).display(), "+1%");
    }
}
