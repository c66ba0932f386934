//! `check`: conditions such as `error-rate > 2%` or `p99 > 2000` measured over a
//! window, for cron: each with its measured value (and, when compared, the value in the
//! window compared with and the change) and whether it is breached. A condition that
//! cannot be read is a usage error that says how to write one.

use std::fmt;

use serde::Serialize;
use tokio_postgres::Client;

use crate::Error;
use crate::analytics::read::read;
use crate::report::scope::{Metric, Scope, compared_cells, compared_columns};
use crate::report::{Cell, Table, column_names};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }
}

/// `METRIC OP VALUE`: the alert fires when the comparison holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Condition {
    pub metric: Metric,
    pub comparison: Comparison,
    /// In the metric's own terms: a fraction for error-rate, milliseconds for latencies.
    pub threshold: f64,
}

const HOW: &str = "write METRIC OP VALUE, e.g. 'error-rate > 2%', 'p99 > 2000' (ms), \
                   'p95 >= 1.5s' or 'count < 100'; metrics: count, errors, error-rate, \
                   p50, p90, p95, p99, p99.9, max; operators: > >= < <=";

impl Condition {
    pub fn parse(text: &str) -> crate::Result<Condition> {
        let bad = |why: &str| Error::usage(format!("--fail-if '{text}': {why}; {HOW}"));
        let at = text
            .find(['<', '>'])
            .ok_or_else(|| bad("no comparison (> >= < <=)"))?;
        let (name, rest) = text.split_at(at);
        let (comparison, value) = match rest.as_bytes() {
            [b'>', b'=', ..] => (Comparison::AtLeast, &rest[2..]),
            [b'<', b'=', ..] => (Comparison::AtMost, &rest[2..]),
            [b'>', ..] => (Comparison::Above, &rest[1..]),
            _ => (Comparison::Below, &rest[1..]),
        };
        let name = name.trim().to_ascii_lowercase();
        let metric = Metric::ALL
            .iter()
            .copied()
            .filter(|&metric| metric != Metric::TotalTime)
            .find(|metric| {
                metric.name() == name || (name == "error_rate" && *metric == Metric::ErrorRate)
            })
            .ok_or_else(|| bad(&format!("unknown metric `{name}`")))?;
        let value = value.trim().to_ascii_lowercase();
        // A percentage is an error rate's; a time unit a latency's.
        let (number, scale) = if let Some(number) = value.strip_suffix('%') {
            if metric != Metric::ErrorRate {
                return Err(bad("only error-rate takes a percentage"));
            }
            (number, 0.01)
        } else if let Some((number, scale)) = value
            .strip_suffix("ms")
            .map(|n| (n, 1.0))
            .or_else(|| value.strip_suffix('s').map(|n| (n, 1000.0)))
        {
            if !metric.needs_latency() {
                return Err(bad(&format!("{} is not a latency", metric.name())));
            }
            (number, scale)
        } else {
            (value.as_str(), 1.0)
        };
        let threshold: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| bad(&format!("`{value}` is not a number")))?;
        let threshold = threshold * scale;
        if metric == Metric::ErrorRate && threshold > 1.0 {
            return Err(bad(
                "an error rate is a percentage (2%) or a fraction (0.02)",
            ));
        }
        Ok(Condition {
            metric,
            comparison,
            threshold,
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let threshold = self.metric.cell(Some(self.threshold)).display();
        write!(
            f,
            "{} {} {threshold}{}",
            self.metric.name(),
            self.comparison.symbol(),
            self.metric.unit()
        )
    }
}

/// A condition with what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub condition: Condition,
    /// None when there is nothing to measure (no events, no latency): never breached.
    pub measured: Option<f64>,
    /// The same measured in the window compared with, when compared; it breaches nothing.
    pub previous: Option<Option<f64>>,
    pub breached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub scope: Scope,
    pub events: u64,
    /// The events of the window compared with, when compared.
    pub previous_events: Option<u64>,
    pub verdicts: Vec<Verdict>,
}

impl Check {
    pub fn breached(&self) -> bool {
        self.verdicts.iter().any(|v| v.breached)
    }
}

pub async fn check(
    client: &Client,
    scope: &Scope,
    conditions: &[Condition],
) -> crate::Result<Check> {
    let mut query = scope.query();
    query.latency = conditions.iter().any(|c| c.metric.needs_latency());
    let stats = read(client, &query).await?.total();
    let before = match scope.previous_query(&query) {
        Some(previous) => Some(read(client, &previous).await?.total()),
        None => None,
    };
    let verdicts = conditions
        .iter()
        .map(|&condition| {
            let measured = condition.metric.of(&stats);
            Verdict {
                condition,
                measured,
                previous: before.as_ref().map(|before| condition.metric.of(before)),
                breached: measured
                    .is_some_and(|value| condition.comparison.holds(value, condition.threshold)),
            }
        })
        .collect();
    Ok(Check {
        scope: scope.clone(),
        events: stats.events,
        previous_events: before.map(|before| before.events),
        verdicts,
    })
}

impl Check {
    pub fn tables(&self) -> Vec<Table> {
        let rows = self
            .verdicts
            .iter()
            .map(|verdict| {
                let metric = verdict.condition.metric;
                let mut row = vec![Cell::Text(verdict.condition.to_string())];
                row.extend(compared_cells(metric, verdict.measured, verdict.previous));
                row.extend([
                    Cell::Text(metric.unit().into()),
                    Cell::Text(
                        match (verdict.breached, verdict.measured) {
                            (true, _) => "BREACHED",
                            (false, Some(_)) => "ok",
                            (false, None) => "no data",
                        }
                        .into(),
                    ),
                ]);
                row
            })
            .collect();
        let verdict = if self.breached() { "breached" } else { "ok" };
        let mut what = format!("Check: {verdict}, {} requests", self.events);
        if let Some(before) = self.previous_events {
            what.push_str(&format!(" ({before} before)"));
        }
        let mut columns = column_names(&["condition"]);
        columns.extend(compared_columns("measured", self.previous_events.is_some()));
        columns.extend(column_names(&["unit", "verdict"]));
        vec![Table {
            name: "check",
            title: self.scope.heading(&what),
            columns,
            rows,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_people_write_them() {
        let c = Condition::parse("error-rate > 2%").unwrap();
        assert_eq!(c.metric, Metric::ErrorRate);
        assert_eq!(c.comparison, Comparison::Above);
        assert!((c.threshold - 0.02).abs() < 1e-12);
        assert_eq!(c.to_string(), "error-rate > 2.00%");
        let c = Condition::parse("p99>=1.5s").unwrap();
        assert_eq!(
            (c.metric, c.comparison, c.threshold),
            (Metric::P99, Comparison::AtLeast, 1500.0)
        );
        let c = Condition::parse(" P99.9 < 300ms").unwrap();
        assert_eq!((c.metric, c.threshold), (Metric::P999, 300.0));
        assert_eq!(Condition::parse("count < 10").unwrap().threshold, 10.0);
    }

    #[test]
    fn bad_conditions_say_how_to_write_one() {
        for bad in [
            "p99",
            "latency > 2",
            "error-rate > 20",
            "p99 > fast",
            "count > 2s",
            "p99 > 2%",
            "p99 > -1",
        ] {
            let error = Condition::parse(bad).unwrap_err();
            assert!(
                error.to_string().contains("METRIC OP VALUE"),
                "{bad}: {error}"
            );
            assert_eq!(error.outcome(), crate::Outcome::Usage);
        }
    }
}
