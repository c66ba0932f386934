//! `logctl report`'s HTML page: one self-contained file (the stylesheet inline, charts
//! as inline SVG, no script, no font or image fetched) that opens from disk or an e-mail
//! attachment. It renders `ReportData`: the headline figures from its fields, every
//! table from the same `Table`s of `Cell`s as the text and CSV (so a number reads the
//! same everywhere), and beside each chart the table of its numbers. Its size is bounded
//! whatever the data: the timeline has at most about 200 buckets, and the lists are
//! limited.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{Cell, Table, whole_percent};
use crate::report::overview::ReportData;
use crate::report::scope::{Figures, change};

const STYLE: &str = include_str!("page.css");

/// The longest name a table cell shows, in characters: longer ones end with `…`, so
/// that no log line makes the page large.
const LONGEST_NAME: usize = 200;

/// The page.
pub fn page(data: &ReportData) -> String {
    let mut page = String::with_capacity(256 * 1024);
    let tables = data.tables();
    let table = |name: &str| {
        tables
            .iter()
            .find(|table| table.name == name)
            .expect("ReportData::tables has every section")
    };
    let title = format!(
        "logctl report, {} to {} UTC",
        data.summary.scope.from.format("%Y-%m-%d %H:%M"),
        data.summary.scope.until.format("%Y-%m-%d %H:%M")
    );
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"generator\" content=\"logctl {}\">\n<title>{}</title>\n\
         <style>\n{STYLE}</style>\n</head>\n<body>",
        env!("CARGO_PKG_VERSION"),
        escape(&title)
    );
    // The hatching of error bars, defined once for every chart.
    page.push_str(
        "<svg class=\"defs\" aria-hidden=\"true\" focusable=\"false\"><defs>\
         <pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect class=\"hatch-fill\" width=\"6\" height=\"6\"/>\
         <line class=\"hatch-line\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\"/></pattern>\
         </defs></svg>\n",
    );
    header(&mut page, data);
    page.push_str("<main>\n");
    headline(&mut page, data);
    timeline(&mut page, data, table("timeline"));
    section(&mut page, "services", "Services", |page| {
        table_html(page, table("services"), false);
    });
    section(&mut page, "routes", "Top routes", |page| {
        for name in ["slowest_routes", "failing_routes"] {
            table_html(page, table(name), false);
        }
    });
    latency(&mut page, data, table("latency"), table("histogram"));
    section(&mut page, "errors", "Top error signatures", |page| {
        // New ones say so in the table's `new` column, and their rows are marked.
        table_html(page, table("errors"), false);
    });
    section(&mut page, "slowest", "Slowest requests", |page| {
        table_html(page, table("requests"), false);
    });
    let _ = writeln!(
        page,
        "</main>\n<footer>Made by logctl {} at {} UTC from {}.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        data.generated_at.format("%Y-%m-%d %H:%M:%S"),
        escape(&data.database)
    );
    page
}

fn header(page: &mut String, data: &ReportData) {
    let moment = |time: DateTime<Utc>| time.format("%Y-%m-%d %H:%M UTC").to_string();
    let _ = writeln!(
        page,
        "<header>\n<h1>Service report</h1>\n<dl class=\"scope\">\n\
         <dt>Window</dt><dd id=\"window\">{} to {}</dd>",
        moment(data.summary.scope.from),
        moment(data.summary.scope.until)
    );
    if let Some((from, until)) = data.summary.scope.previous {
        let _ = writeln!(
            page,
            "<dt>Compared with</dt><dd id=\"previous\">{} to {}</dd>",
            moment(from),
            moment(until)
        );
    }
    let filters = if data.filters.is_empty() {
        "none".to_string()
    } else {
        data.filters.join(", ")
    };
    let _ = writeln!(
        page,
        "<dt>Filters</dt><dd id=\"filters\">{}</dd>\n<dt>Database</dt><dd id=\"database\">{}</dd>\n\
         <dt>Figures</dt><dd>{}</dd>\n</dl>\n</header>",
        escape(&filters),
        escape(&data.database),
        if data.exact {
            "exact, from the raw rows"
        } else {
            "from the rollups: counts exact, latency quantiles within 1%"
        }
    );
}

/// A section with a heading whose id is `id`.
fn section(page: &mut String, id: &str, heading: &str, body: impl FnOnce(&mut String)) {
    let _ = writeln!(
        page,
        "<section id=\"{id}\" aria-labelledby=\"{id}-heading\">\n<h2 id=\"{id}-heading\">{}</h2>",
        escape(heading)
    );
    body(page);
    page.push_str("</section>\n");
}

/// How each headline figure (in `Figures::METRICS` order) is keyed (its JSON field),
/// named and written, and whether a rise is worse.
const HEADLINE: [(&str, &str, Unit, bool); 6] = [
    ("requests", "Requests", Unit::Count, false),
    ("errors", "Errors", Unit::Count, true),
    ("error_rate", "Error rate", Unit::Fraction, true),
    ("p50_ms", "p50 latency", Unit::Milliseconds, true),
    ("p95_ms", "p95 latency", Unit::Milliseconds, true),
    ("p99_ms", "p99 latency", Unit::Milliseconds, true),
];

fn headline(page: &mut String, data: &ReportData) {
    section(page, "headline", "Headline", |page| {
        page.push_str("<ul class=\"figures\">\n");
        let current = &data.summary.overall;
        let previous: Option<&Figures> = data.summary.previous.as_ref();
        for (&metric, &(key, name, unit, rise_is_worse)) in Figures::METRICS.iter().zip(&HEADLINE) {
            let value = current.get(metric);
            let _ = write!(
                page,
                "<li><span class=\"figure-name\">{name}</span>\
                 <span class=\"figure-value\" data-figure=\"{key}\" data-value=\"{}\">{}</span>",
                value.map_or(String::new(), |v| v.to_string()),
                value.map_or("none".to_string(), |v| unit.format(v))
            );
            if let Some(previous) = &previous {
                let before = previous.get(metric);
                let change = change(value, before);
                let before_text = before.map_or("none".to_string(), |v| unit.format(v));
                // Arrows only for a change that shows as a whole percent.
                let (class, text) = match change.map(whole_percent) {
                    Some(percent) if percent > 0.0 => (
                        if rise_is_worse { " worse" } else { "" },
                        format!(
                            "▲ +{percent:.0}%{}",
                            if rise_is_worse { ", worse" } else { "" }
                        ),
                    ),
                    Some(percent) if percent < 0.0 => (
                        if rise_is_worse { " better" } else { "" },
                        format!(
                            "▼ −{:.0}%{}",
                            -percent,
                            if rise_is_worse { ", better" } else { "" }
                        ),
                    ),
                    Some(_) if change == Some(0.0) => ("", "= unchanged".to_string()),
                    Some(_) => ("", "= 0%".to_string()),
                    None => ("", "no change to compare".to_string()),
                };
                let _ = write!(
                    page,
                    "<span class=\"figure-change{class}\" data-change=\"{key}\">{text} \
                     (was {before_text})</span>"
                );
            }
            page.push_str("</li>\n");
        }
        page.push_str("</ul>\n");
    });
}

fn timeline(page: &mut String, data: &ReportData, table: &Table) {
    let starts = &data.requests.starts;
    let width = chrono::TimeDelta::seconds(data.requests.bucket_seconds);
    let per = per_width(data.requests.bucket_seconds);
    let scope = &data.summary.scope;
    let long = scope.until - scope.from > chrono::TimeDelta::days(1);
    let label = |start: DateTime<Utc>| {
        if long {
            start.format("%a %d %b %H:%M").to_string()
        } else {
            start.format("%H:%M").to_string()
        }
    };
    let when = |start: DateTime<Utc>| {
        format!(
            "{} to {} UTC",
            start.format("%Y-%m-%d %H:%M"),
            (start + width).format("%H:%M")
        )
    };
    let x_labels: Vec<String> = starts.iter().map(|&start| label(start)).collect();
    let axis_title = if long {
        "time (UTC), day and hour".to_string()
    } else {
        format!("time (UTC) on {}", scope.from.format("%a %d %b %Y"))
    };
    section(page, "over-time", "Over time", |page| {
        let _ = writeln!(
            page,
            "<p class=\"note\">{} buckets of {} each, from {} UTC; empty buckets are shown as zero. \
             Hover a bucket for its numbers; all of them are in the table below.</p>",
            starts.len(),
            humantime::format_duration(width.to_std().unwrap_or_default()),
            scope.from.format("%Y-%m-%d %H:%M")
        );
        type Series = (&'static str, String, Unit, Kind, Vec<Option<f64>>);
        let charts: [Series; 3] = [
            (
                "requests",
                format!("Requests per {per}"),
                Unit::Count,
                Kind::Bars,
                data.requests.series[0].values.clone(),
            ),
            (
                "errors",
                format!("Error rate per {per} (errors / requests)"),
                Unit::Fraction,
                Kind::Bars,
                // An empty bucket has no rate; it is drawn as none, at zero.
                data.error_rate.series[0]
                    .values
                    .iter()
                    .map(|rate| Some(rate.unwrap_or(0.0)))
                    .collect(),
            ),
            (
                "latency",
                format!("p95 latency per {per}"),
                Unit::Milliseconds,
                Kind::Line,
                data.p95.series[0].values.clone(),
            ),
        ];
        for (id, caption, unit, kind, values) in charts {
            let tips: Vec<String> = starts
                .iter()
                .zip(&values)
                .map(|(&start, value)| {
                    format!(
                        "{}: {}",
                        when(start),
                        match value {
                            Some(value) => unit.format(*value),
                            None => "no latency".to_string(),
                        }
                    )
                })
                .collect();
            chart(
                page,
                &Chart {
                    id,
                    caption: &caption,
                    unit,
                    kind,
                    values: &values,
                    labels: &x_labels,
                    tips: &tips,
                    axis_title: &axis_title,
                },
            );
        }
        table_html(page, table, true);
    });
}

/// `hour` for a bucket of an hour, `6 hours` for six.
fn per_width(seconds: i64) -> String {
    match seconds {
        60 => "minute".to_string(),
        3600 => "hour".to_string(),
        86400 => "day".to_string(),
        604800 => "week".to_string(),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{} minutes", s / 60),
    }
}

fn latency(page: &mut String, data: &ReportData, quantiles: &Table, histogram: &Table) {
    section(page, "latency", "Latency distribution", |page| {
        table_html(page, quantiles, false);
        let bins = &data.latency.bins;
        if !bins.is_empty() {
            let labels: Vec<String> = bins
                .iter()
                .map(|bin| format!("≤ {} ms", Unit::Count.format(f64::from(bin.at_most_ms))))
                .collect();
            let values: Vec<Option<f64>> = bins.iter().map(|bin| Some(bin.count as f64)).collect();
            let tips: Vec<String> = bins
                .iter()
                .map(|bin| {
                    format!(
                        "{} to {} ms: {} requests",
                        bin.above_ms.unwrap_or(0),
                        bin.at_most_ms,
                        bin.count
                    )
                })
                .collect();
            chart(
                page,
                &Chart {
                    id: "histogram",
                    caption: "Requests by latency (log scale: bins 1, 2, 5 per decade)",
                    unit: Unit::Count,
                    kind: Kind::Bars,
                    values: &values,
                    labels: &labels,
                    tips: &tips,
                    axis_title: "latency, at most (ms)",
                },
            );
        }
        table_html(page, histogram, false);
    });
}

/// A table, with its title as caption; `tall` ones scroll on a screen (not in print).
fn table_html(page: &mut String, table: &Table, tall: bool) {
    let _ = write!(
        page,
        "<div class=\"table-wrap{}\">\n<table id=\"table-{}\">\n<caption>{}</caption>\n<thead><tr>",
        if tall { " tall" } else { "" },
        table.name,
        escape(&table.title)
    );
    let numeric: Vec<bool> = (0..table.columns.len())
        .map(|column| {
            table
                .rows
                .iter()
                .any(|row| row.get(column).is_some_and(Cell::is_numeric))
        })
        .collect();
    for (column, name) in table.columns.iter().enumerate() {
        let _ = write!(
            page,
            "<th scope=\"col\"{}>{}</th>",
            if numeric[column] {
                " class=\"num\""
            } else {
                ""
            },
            escape(&column_label(name))
        );
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    if table.rows.is_empty() {
        let _ = writeln!(
            page,
            "<tr><td colspan=\"{}\">none in this window</td></tr>",
            table.columns.len().max(1)
        );
    }
    // A row whose `new` column is yes (an error signature the period before had none
    // of) is marked, so that it stands out without reading that column.
    let new = table.columns.iter().position(|name| name == "new");
    for row in &table.rows {
        let is_new = new.is_some_and(|column| row.get(column) == Some(&Cell::Bool(true)));
        page.push_str(if is_new { "<tr class=\"new\">" } else { "<tr>" });
        for cell in row {
            let (class, text) = match cell {
                Cell::Text(text) => ("text", shorten(text)),
                Cell::Id(_) => ("id", cell.display()),
                Cell::Time(_) => ("time", cell.display()),
                _ if cell.is_numeric() => ("num", cell.display()),
                _ => ("text", cell.display()),
            };
            let _ = write!(page, "<td class=\"{class}\">{}</td>", escape(&text));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n</div>\n");
}

/// `error_rate_pct` as `error rate %`, `p99_ms` as `p99 (ms)`.
fn column_label(name: &str) -> String {
    let (stem, unit) = if let Some(stem) = name.strip_suffix("_pct") {
        (stem, " %")
    } else if let Some(stem) = name.strip_suffix("_ms") {
        (stem, " (ms)")
    } else {
        (name, "")
    };
    format!("{}{unit}", stem.replace('_', " "))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= LONGEST_NAME {
        return text.to_string();
    }
    let mut short: String = text.chars().take(LONGEST_NAME - 1).collect();
    short.push('…');
    short
}

/// Text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// What a chart's values measure, and how they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    /// A fraction, written as a percentage.
    Fraction,
    Milliseconds,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Count => group_digits(value.round() as u64),
            Unit::Fraction => format!("{:.2}%", value * 100.0),
            Unit::Milliseconds => format!("{value:.1} ms"),
        }
    }

    /// An axis tick: short (`1.5k`, `2%`, `1.2 s`).
    fn tick(self, value: f64) -> String {
        let trim = |text: String| {
            if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                text
            }
        };
        match self {
            Unit::Count if value >= 1e6 => format!("{}M", trim(format!("{:.1}", value / 1e6))),
            Unit::Count if value >= 1e3 => format!("{}k", trim(format!("{:.1}", value / 1e3))),
            Unit::Count => trim(format!("{value:.1}")),
            Unit::Fraction => format!("{}%", trim(format!("{:.2}", value * 100.0))),
            Unit::Milliseconds if value >= 1000.0 => {
                format!("{} s", trim(format!("{:.2}", value / 1000.0)))
            }
            Unit::Milliseconds => format!("{} ms", trim(format!("{value:.1}"))),
        }
    }
}

/// `1234567` as `1,234,567`.
fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bars,
    /// A line through the buckets that have a value, broken where one has none.
    Line,
}

/// One series over buckets.
struct Chart<'a> {
    id: &'a str,
    caption: &'a str,
    unit: Unit,
    kind: Kind,
    values: &'a [Option<f64>],
    /// Per bucket, its x-axis label (only some are drawn) and its tooltip.
    labels: &'a [String],
    tips: &'a [String],
    axis_title: &'a str,
}

/// The drawing area in the SVG's own units; it scales to the page's width.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 44.0;
/// At most this many x-axis labels, so that they never overlap.
const X_LABELS: usize = 6;

/// Draws a chart: axes with unit ticks and time labels, gridlines, and one group per
/// bucket (`g.bucket`, with a `<title>` tooltip and a hover area), in a `<figure>`.
fn chart(page: &mut String, chart: &Chart<'_>) {
    let count = chart.values.len().max(1);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let step = plot_width / count as f64;
    let largest = chart
        .values
        .iter()
        .flatten()
        .fold(0.0f64, |max, &value| max.max(value));
    let (top, tick) = nice_scale(largest);
    let y = |value: f64| TOP + plot_height * (1.0 - value / top);
    let _ = writeln!(
        page,
        "<figure>\n<figcaption id=\"{id}-caption\">{caption}</figcaption>\n\
         <svg class=\"chart {id_class}\" id=\"chart-{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-labelledby=\"{id}-caption\" data-buckets=\"{buckets}\">",
        id = chart.id,
        id_class = match chart.id {
            "requests" | "errors" | "latency" => chart.id,
            _ => "requests",
        },
        caption = escape(chart.caption),
        buckets = chart.values.len()
    );
    // Gridlines and y ticks.
    let mut value = 0.0;
    while value <= top + tick / 2.0 {
        let at = y(value);
        let _ = writeln!(
            page,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            at + 4.0,
            escape(&chart.unit.tick(value))
        );
        value += tick;
    }
    // Buckets.
    let bar_gap = if step > 4.0 { 1.0 } else { 0.0 };
    let mut line = String::new();
    for (index, value) in chart.values.iter().enumerate() {
        let x = LEFT + step * index as f64;
        let _ = write!(
            page,
            "<g class=\"bucket\"><title>{}</title><rect class=\"hit\" x=\"{x:.2}\" y=\"{TOP}\" \
             width=\"{step:.2}\" height=\"{plot_height}\"/>",
            escape(&chart.tips[index])
        );
        match (chart.kind, value) {
            (Kind::Bars, Some(value)) if *value > 0.0 => {
                let at = y(*value);
                let _ = write!(
                    page,
                    "<rect class=\"bar\" x=\"{:.2}\" y=\"{at:.2}\" width=\"{:.2}\" height=\"{:.2}\"/>",
                    x + bar_gap / 2.0,
                    (step - bar_gap).max(0.5),
                    TOP + plot_height - at
                );
            }
            (Kind::Line, Some(value)) => {
                let (cx, cy) = (x + step / 2.0, y(*value));
                let joined = index > 0 && chart.values[index - 1].is_some();
                let _ = write!(line, "{}{cx:.2} {cy:.2}", if joined { " L" } else { " M" });
                let _ = write!(
                    page,
                    "<circle class=\"point\" cx=\"{cx:.2}\" cy=\"{cy:.2}\" r=\"{}\"/>",
                    if step > 6.0 { 2.0 } else { 1.2 }
                );
            }
            _ => {}
        }
        page.push_str("</g>\n");
    }
    if !line.is_empty() {
        let _ = writeln!(page, "<path class=\"line\" d=\"{}\"/>", line.trim_start());
    }
    // Axes and x labels.
    let base = TOP + plot_height;
    let _ = writeln!(
        page,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{base}\"/>",
        WIDTH - RIGHT
    );
    let every = chart.values.len().div_ceil(X_LABELS).max(1);
    for index in (0..chart.values.len()).step_by(every) {
        let x = LEFT + step * index as f64;
        let _ = writeln!(
            page,
            "<line class=\"axis\" x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"{base}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.2}\" y=\"{:.1}\" text-anchor=\"start\">{}</text>",
            base + 4.0,
            base + 16.0,
            escape(&chart.labels[index])
        );
    }
    let _ = writeln!(
        page,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n</svg>\n</figure>",
        LEFT + plot_width / 2.0,
        HEIGHT - 6.0,
        escape(chart.axis_title)
    );
}

/// The top of a y axis and its tick spacing: 1, 2 or 5 times a power of ten, about
/// five ticks, the largest value inside.
fn nice_scale(largest: f64) -> (f64, f64) {
    if largest <= 0.0 || !largest.is_finite() {
        return (1.0, 0.25);
    }
    let rough = largest / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let tick = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * power)
        .find(|&tick| tick >= rough)
        .unwrap_or(10.0 * power);
    ((largest / tick).ceil() * tick, tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers_above_the_largest_value() {
        assert_eq!(nice_scale(0.0), (1.0, 0.25));
        assert_eq!(nice_scale(93.0), (100.0, 20.0));
        let (top, tick) = nice_scale(0.0437);
        assert!(
            (top - 0.05).abs() < 1e-12 && (tick - 0.01).abs() < 1e-12,
            "{top} {tick}"
        );
    }

    #[test]
    fn numbers_read_with_their_units() {
        assert_eq!(Unit::Count.format(1234567.0), "1,234,567");
        assert_eq!(Unit::Fraction.format(0.01234), "1.23%");
        assert_eq!(Unit::Milliseconds.format(87.25), "87.2 ms");
        assert_eq!(Unit::Count.tick(1500.0), "1.5k");
        assert_eq!(Unit::Milliseconds.tick(2000.0), "2 s");
        assert_eq!(Unit::Fraction.tick(0.05), "5%");
        assert_eq!(column_label("error_rate_pct"), "error rate %");
        assert_eq!(column_label("p99_ms"), "p99 (ms)");
    }

    #[test]
    fn text_is_escaped_and_long_names_shortened() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let long = "x".repeat(500);
        assert_eq!(shorten(&long).chars().count(), LONGEST_NAME);
    }
}
