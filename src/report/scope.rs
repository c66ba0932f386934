//! What a report covers, as its headings say it: the window and the period it is
//! compared with, the filters, and whether the figures are exact; and, when nothing
//! matches, why: the newest event's time and the services that exist.

use std::io::{self, Write};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use super::{Format, Report, Table, render};
use crate::analytics::read::{Filter, StatusFilter, newest_minute};
use crate::terminal;

/// A stretch of time, `until` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Period {
    /// `2026-11-24 00:00 to 2026-11-25 00:00 UTC (1day)`.
    pub fn describe(&self) -> String {
        let length = (self.until - self.from)
            .to_std()
            .map(|length| {
                humantime::format_duration(std::time::Duration::from_secs(length.as_secs()))
            })
            .map_or_else(|_| "empty".to_string(), |length| length.to_string());
        format!(
            "{} to {} UTC ({length})",
            moment(self.from),
            moment(self.until)
        )
    }
}

/// A time as a heading shows it: to the minute, the second or the millisecond, as far
/// as it has any.
pub fn moment(time: DateTime<Utc>) -> String {
    let format = if time.timestamp_subsec_millis() > 0 {
        "%Y-%m-%d %H:%M:%S%.3f"
    } else if time.timestamp() % 60 > 0 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    time.format(format).to_string()
}

/// What a report's figures cover.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scope {
    pub window: Period,
    /// The period the window is compared with, if any.
    pub previous: Option<Period>,
    /// The filters in words, e.g. `service checkout`, `status 5xx or 404`.
    pub filters: Vec<String>,
    /// Whether the figures are exact (from the raw rows), or quantiles within 1%.
    pub exact: bool,
}

impl Scope {
    pub fn new(window: Period, previous: Option<Period>, filter: &Filter, exact: bool) -> Scope {
        Scope {
            window,
            previous,
            filters: describe_filter(filter),
            exact,
        }
    }

    /// The window, the comparison, the filters and the exactness, in one line.
    pub fn describe(&self) -> String {
        let mut text = self.window.describe();
        if let Some(previous) = &self.previous {
            text.push_str(&format!(", against {}", previous.describe()));
        }
        for filter in &self.filters {
            text.push_str(", ");
            text.push_str(filter);
        }
        text.push_str(if self.exact {
            "; exact"
        } else {
            "; quantiles within 1%"
        });
        text
    }
}

fn describe_filter(filter: &Filter) -> Vec<String> {
    let mut described = Vec::new();
    if !filter.services.is_empty() {
        described.push(format!("service {}", filter.services.join(" or ")));
    }
    if let Some(route) = &filter.route {
        described.push(format!("route {route}"));
    }
    if !filter.methods.is_empty() {
        described.push(format!("method {}", filter.methods.join(" or ")));
    }
    if !filter.statuses.is_empty() {
        let statuses: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| match status {
                StatusFilter::Exact(code) => code.to_string(),
                StatusFilter::Class(class) => format!("{class}xx"),
            })
            .collect();
        described.push(format!("status {}", statuses.join(" or ")));
    }
    if !filter.levels.is_empty() {
        described.push(format!("level {}", filter.levels.join(" or ")));
    }
    for (path, value) in &filter.metadata {
        described.push(format!("metadata.{} = {value}", path.join(".")));
    }
    described
}

/// Why nothing matched: which of the services asked for do not exist, the newest
/// event's time, and the services there are.
pub async fn why_empty(client: &Client, services_asked: &[String]) -> crate::Result<String> {
    let services: Vec<String> = client
        .query(
            "SELECT service_name FROM services ORDER BY service_name",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let Some(newest) = newest_event(client).await? else {
        return Ok("The database holds no events yet: load some with `logctl load`.".into());
    };
    let unknown: Vec<&str> = services_asked
        .iter()
        .filter(|name| !services.contains(name))
        .map(String::as_str)
        .collect();
    let mut reason = String::new();
    if !unknown.is_empty() {
        reason.push_str(&format!("No service is named {}. ", unknown.join(" or ")));
    }
    reason.push_str(&format!(
        "The newest event is from {} UTC; the services are {}.",
        moment(newest),
        services.join(", ")
    ));
    Ok(reason)
}

/// The newest event's time: the rollups name its minute, and the rows of that minute
/// (found with the BRIN index) its time.
async fn newest_event(client: &Client) -> crate::Result<Option<DateTime<Utc>>> {
    let Some(after_it) = newest_minute(client).await? else {
        return Ok(None);
    };
    let row = client
        .query_one(
            "SELECT max(created_at) FROM log_events WHERE created_at >= $1",
            &[&(after_it - TimeDelta::minutes(1))],
        )
        .await?;
    Ok(row.get(0))
}

/// Prints a report's tables read from `database`, or, when it found nothing, says why:
/// instead of the tables on a text display, and on stderr beside the empty JSON or CSV a
/// script reads.
pub fn print(
    database: String,
    tables: Vec<Table>,
    empty_because: Option<&str>,
    format: Format,
) -> io::Result<()> {
    match (empty_because, format) {
        (Some(reason), Format::Table) => {
            // The heading still says what was asked; the reason takes the table's place.
            let title = tables.first().map_or("", |table| table.title.as_str());
            match write_reason(&database, title, reason) {
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        }
        (Some(reason), _) => {
            eprintln!("logctl: {reason}");
            render::print(&Report { database, tables }, format)
        }
        (None, _) => render::print(&Report { database, tables }, format),
    }
}

/// The heading of an empty report and why it is empty, broken only at spaces to fit.
fn write_reason(database: &str, title: &str, reason: &str) -> io::Result<()> {
    let width = terminal::stdout().width;
    let mut out = io::stdout().lock();
    writeln!(out, "database: {database}\n")?;
    for paragraph in [title, reason] {
        match width {
            Some(width) => {
                let options = textwrap::Options::new(width).break_words(false);
                for line in textwrap::wrap(paragraph, options) {
                    writeln!(out, "{line}")?;
                }
            }
            None => writeln!(out, "{paragraph}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_heading_says_window_comparison_filters_and_exactness() {
        let filter = Filter {
            services: vec!["checkout".into(), "payments".into()],
            route: Some("/api/*".into()),
            statuses: vec![StatusFilter::Class(5), StatusFilter::Exact(404)],
            levels: vec!["error".into()],
            metadata: vec![(vec!["http".into(), "region".into()], "eu".into())],
            ..Filter::default()
        };
        let scope = Scope::new(
            Period {
                from: at("2026-11-24T00:00:00Z"),
                until: at("2026-11-25T00:00:00Z"),
            },
            Some(Period {
                from: at("2026-11-23T00:00:00Z"),
                until: at("2026-11-24T00:00:00Z"),
            }),
            &filter,
            true,
        );
        assert_eq!(
            scope.describe(),
            "2026-11-24 00:00 to 2026-11-25 00:00 UTC (1day), \
             against 2026-11-23 00:00 to 2026-11-24 00:00 UTC (1day), \
             service checkout or payments, route /api/*, status 5xx or 404, level error, \
             metadata.http.region = eu; exact"
        );
        let inexact = Scope {
            exact: false,
            ..scope
        };
        assert!(inexact.describe().ends_with("; quantiles within 1%"));
    }

    #[test]
    fn moments_show_seconds_only_when_they_have_some() {
        assert_eq!(moment(at("2026-11-24T10:30:00Z")), "2026-11-24 10:30");
        assert_eq!(moment(at("2026-11-24T10:30:07Z")), "2026-11-24 10:30:07");
        assert_eq!(
            moment(at("2026-11-24T10:30:07.25Z")),
            "2026-11-24 10:30:07.250"
        );
    }
}
