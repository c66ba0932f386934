//! The partitions of a time-partitioned log_events: the interval they span, listing
//! them with their bounds, and detaching and dropping one.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

/// The time span of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    pub fn name(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    pub fn from_name(name: &str) -> Option<Interval> {
        [Interval::Day, Interval::Week, Interval::Month]
            .into_iter()
            .find(|i| i.name() == name)
    }
}

/// One partition of log_events.
pub struct Partition {
    pub name: String,
    /// Its bounds; None for a bound it does not have (the default partition has none).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The planner's estimate of its rows; None until it is first analyzed.
    pub estimated_rows: Option<i64>,
}

/// The partitions of log_events, oldest first. The bounds are read back from their
/// text form, which only the ISO DateStyle writes unambiguously (with a numeric offset
/// where others may write a zone abbreviation such as IST, which means another zone
/// when read back).
pub async fn list(client: &Client) -> Result<Vec<Partition>, tokio_postgres::Error> {
    client.batch_execute("SET DateStyle = ISO").await?;
    let rows = client
        .query(include_str!("../../sql/partition_list.sql"), &[])
        .await?;
    Ok(rows
        .iter()
        .map(|row| Partition {
            name: row.get(0),
            from: row.get(1),
            to: row.get(2),
            estimated_rows: Some(row.get::<_, i64>(3)).filter(|&rows| rows >= 0),
        })
        .collect())
}

/// The rows of a partition, counted.
pub async fn count_rows(client: &Client, name: &str) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(&format!("SELECT count(*) FROM {}", quote(name)), &[])
        .await?
        .get(0))
}

/// Detaches a partition from log_events. DETACH ... CONCURRENTLY waits for queries on
/// the partition but never blocks loads into the others; a detach interrupted before is
/// finished first.
pub async fn detach(client: &Client, name: &str, distributed: bool) -> anyhow::Result<()> {
    let name = quote(name);
    if distributed {
        // Citus propagates a plain DETACH; it has no concurrent form.
        client
            .batch_execute(&format!("ALTER TABLE log_events DETACH PARTITION {name}"))
            .await?;
        return Ok(());
    }
    match client
        .batch_execute(&format!(
            "ALTER TABLE log_events DETACH PARTITION {name} CONCURRENTLY"
        ))
        .await
    {
        Ok(()) => Ok(()),
        Err(error) if super::error_text(&error).contains("FINALIZE") => {
            client
                .batch_execute(&format!(
                    "ALTER TABLE log_events DETACH PARTITION {name} FINALIZE"
                ))
                .await?;
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Drops a partition once detached, with its rows.
pub async fn drop_detached(client: &Client, name: &str) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!("DROP TABLE {}", quote(name)))
        .await
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
