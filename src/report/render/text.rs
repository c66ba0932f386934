//! Text tables fitted to a display. A number, a time or an id is never cut: when a table
//! is too wide, its names are shortened with `…` down to a floor, and when that is not
//! enough each row is shown as a record of `column | value` lines (psql's `\x auto`).
//! On a terminal tables have box drawing (Unicode, or ASCII outside a UTF-8 locale);
//! elsewhere they are plain columns, with no escape codes unless colour was asked for.

use std::io::{self, Write};

use comfy_table::{Attribute, CellAlignment, ContentArrangement, presets};
use unicode_width::UnicodeWidthStr;

use super::{Cell, Report, Table};
use crate::terminal::Display;

/// A name is never shortened below this many columns (or its header's width).
const NAME_FLOOR: usize = 8;

const ELLIPSIS: char = '…';

pub(super) fn write(out: &mut impl Write, report: &Report, display: &Display) -> io::Result<()> {
    // The database is an id, shown whole: only the space after `database:` may break.
    for line in wrap(&format!("database: {}", report.database), display.width) {
        writeln!(
            out,
            "{}",
            styled(display, &line, console::Style::new().dim())
        )?;
    }
    for table in &report.tables {
        writeln!(out)?;
        for line in wrap(&table.title, display.width) {
            writeln!(
                out,
                "{}",
                styled(display, &line, console::Style::new().bold())
            )?;
        }
        if table.rows.is_empty() {
            writeln!(out, "(none)")?;
            continue;
        }
        let frame = Frame::of(display, table.columns.len());
        match fit(table, display.width, &frame) {
            Some(widths) => write_columns(out, table, &widths, display)?,
            None => write_records(out, table, display)?,
        }
    }
    Ok(())
}

fn styled(display: &Display, text: &str, style: console::Style) -> String {
    if display.color {
        style.force_styling(true).apply_to(text).to_string()
    } else {
        text.to_string()
    }
}

/// A title, broken only at spaces to fit: its numbers and ids are never split.
fn wrap(text: &str, width: Option<usize>) -> Vec<String> {
    match width {
        Some(width) => textwrap::wrap(
            text,
            textwrap::Options::new(width)
                .break_words(false)
                .word_splitter(textwrap::WordSplitter::NoHyphenation),
        )
        .into_iter()
        .map(|line| line.into_owned())
        .collect(),
        None => vec![text.to_string()],
    }
}

/// The columns a table's drawing takes beyond its cells' widths.
struct Frame {
    overhead: usize,
    boxed: bool,
}

impl Frame {
    fn of(display: &Display, columns: usize) -> Frame {
        if display.terminal {
            // `│ a │ b │`: a space each side of a cell, a line between and around.
            Frame {
                overhead: 3 * columns + 1,
                boxed: true,
            }
        } else {
            // Two spaces between columns.
            Frame {
                overhead: 2 * columns.saturating_sub(1),
                boxed: false,
            }
        }
    }
}

fn width_of(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Each column's width so that the table fits, names shortened as needed; None when it
/// cannot fit without cutting a number, a time, an id or a name below its floor.
fn fit(table: &Table, width: Option<usize>, frame: &Frame) -> Option<Vec<usize>> {
    let natural: Vec<usize> = (0..table.columns.len())
        .map(|column| {
            table
                .rows
                .iter()
                .map(|row| width_of(&row[column].display()))
                .chain([width_of(&table.columns[column])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let Some(width) = width else {
        return Some(natural);
    };
    let floor: Vec<usize> = natural
        .iter()
        .enumerate()
        .map(|(column, &natural)| {
            let names_only = table.rows.iter().all(|row| {
                let cell = &row[column];
                cell.is_name() || *cell == Cell::Null
            });
            if names_only {
                natural.min(NAME_FLOOR.max(width_of(&table.columns[column])))
            } else {
                natural
            }
        })
        .collect();
    if floor.iter().sum::<usize>() + frame.overhead > width {
        return None;
    }
    let mut widths = natural;
    // Take a column from the widest name each time, so long names share the cut.
    while widths.iter().sum::<usize>() + frame.overhead > width {
        let (widest, _) = widths
            .iter()
            .enumerate()
            .filter(|&(column, &current)| current > floor[column])
            .max_by_key(|&(_, &current)| current)
            .expect("the floor fits, so some name can still give way");
        widths[widest] -= 1;
    }
    Some(widths)
}

/// `text` cut to `width` columns, ending in `…` when it was cut.
fn shorten(text: &str, width: usize) -> String {
    if width_of(text) <= width {
        return text.to_string();
    }
    let mut shortened = String::new();
    let mut used = 0;
    for character in text.chars() {
        let wide = unicode_width::UnicodeWidthChar::width(character).unwrap_or(0);
        if used + wide + 1 > width {
            break;
        }
        shortened.push(character);
        used += wide;
    }
    shortened.push(ELLIPSIS);
    shortened
}

fn shown(cell: &Cell, width: usize) -> String {
    if cell.is_name() {
        shorten(&cell.display(), width)
    } else {
        cell.display()
    }
}

fn write_columns(
    out: &mut impl Write,
    table: &Table,
    widths: &[usize],
    display: &Display,
) -> io::Result<()> {
    let frame = Frame::of(display, table.columns.len());
    let mut drawn = comfy_table::Table::new();
    drawn.set_content_arrangement(ContentArrangement::Disabled);
    if frame.boxed {
        drawn.load_style(if display.unicode {
            presets::UTF8_FULL_CONDENSED
        } else {
            presets::ASCII_FULL_CONDENSED
        });
    } else {
        drawn.load_style(presets::NOTHING);
    }
    if display.color {
        drawn.enforce_styling();
    } else {
        drawn.force_no_tty();
    }
    drawn.set_header(table.columns.iter().map(|name| {
        let header = comfy_table::Cell::new(name);
        if display.color {
            header.add_attribute(Attribute::Bold)
        } else {
            header
        }
    }));
    for row in &table.rows {
        drawn.add_row(row.iter().zip(widths).map(|(cell, &width)| {
            let drawn = comfy_table::Cell::new(shown(cell, width));
            if cell.is_numeric() {
                drawn.set_alignment(CellAlignment::Right)
            } else {
                drawn
            }
        }));
    }
    if !frame.boxed {
        let last = table.columns.len() - 1;
        for (index, column) in drawn.column_iter_mut().enumerate() {
            column.set_padding((0, if index == last { 0 } else { 2 }));
        }
    }
    for line in drawn.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Each row as a record, psql's expanded display: `-[ RECORD 1 ]---`, then a line per
/// column. Names are shortened to the width left after the column names.
fn write_records(out: &mut impl Write, table: &Table, display: &Display) -> io::Result<()> {
    let label_width = table.columns.iter().map(|c| width_of(c)).max().unwrap_or(0);
    let value_width = display
        .width
        .map_or(usize::MAX, |width| width.saturating_sub(label_width + 3))
        .max(NAME_FLOOR);
    for (index, row) in table.rows.iter().enumerate() {
        let heading = format!("-[ RECORD {} ]", index + 1);
        let rule = display
            .width
            .unwrap_or(label_width + 3 + NAME_FLOOR)
            .saturating_sub(width_of(&heading));
        writeln!(
            out,
            "{}",
            styled(
                display,
                &format!("{heading}{}", "-".repeat(rule)),
                console::Style::new().bold()
            )
        )?;
        for (column, cell) in table.columns.iter().zip(row) {
            let value = shown(cell, value_width);
            let padding = " ".repeat(label_width - width_of(column));
            let line = format!("{column}{padding} | {value}");
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::column_names;

    fn table() -> Table {
        Table {
            name: "requests",
            title: "Slowest requests above 2000 ms".into(),
            columns: column_names(&["service", "time", "latency_ms", "endpoint"]),
            rows: vec![vec![
                Cell::Text("checkout-service".into()),
                Cell::Time("2026-11-24T10:00:00Z".parse().unwrap()),
                Cell::Int(600000),
                Cell::Text("/api/v1/orders/with/a/rather/long/path".into()),
            ]],
        }
    }

    fn rendered(width: Option<usize>, terminal: bool) -> String {
        let display = Display {
            width,
            color: false,
            terminal,
            unicode: true,
        };
        let report = Report {
            database: "logctl@db:5432/logs".into(),
            tables: vec![table()],
        };
        let mut out = Vec::new();
        write(&mut out, &report, &display).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn names_give_way_and_numbers_and_times_stay_whole() {
        for width in [70, 80, 200] {
            let text = rendered(Some(width), true);
            assert!(text.contains("600000"), "{text}");
            assert!(text.contains("2026-11-24 10:00:00.000"), "{text}");
            assert!(text.lines().all(|line| width_of(line) <= width), "{text}");
        }
        assert!(rendered(Some(70), true).contains('…'));
        assert!(!rendered(Some(200), true).contains('…'));
    }

    #[test]
    fn too_narrow_a_display_gets_records() {
        let text = rendered(Some(60), true);
        assert!(text.contains("-[ RECORD 1 ]"), "{text}");
        assert!(text.contains("latency_ms | 600000"), "{text}");
        assert!(text.lines().all(|line| width_of(line) <= 60), "{text}");
    }

    #[test]
    fn plain_output_has_no_box_drawing_and_no_limit() {
        let text = rendered(None, false);
        assert!(!text.contains('│') && !text.contains('─'), "{text}");
        assert!(
            text.contains("/api/v1/orders/with/a/rather/long/path"),
            "{text}"
        );
        assert!(text.contains("database: logctl@db:5432/logs"), "{text}");
    }
}
