//! The partitions of a time-partitioned log_events: the interval they span, listing
//! them with their bounds, creating the ones loads need, whether new ones can be built
//! detached, and detaching and dropping one. Names and bounds come from one SQL
//! definition (`logctl_partition_bounds`, sql/004).

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Client;

use super::{Isolation, transaction};

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

/// A partition's range: from its first instant to the first instant after it.
pub type Bounds = (DateTime<Utc>, DateTime<Utc>);

/// One partition of log_events.
pub struct Partition {
    pub name: String,
    /// Its bounds; None for a bound it does not have (the default partition has none).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The planner's estimate of its rows; None until it is first analyzed.
    pub estimated_rows: Option<i64>,
}

/// The partitions of log_events, oldest first, in the caller's transaction. The bounds
/// are read back from their text form, which only the ISO DateStyle writes unambiguously
/// (with a numeric offset where others may write a zone abbreviation such as IST, which
/// means another zone when read back); set for this transaction only, as a session
/// setting would stay behind on a pooler's server connection.
pub async fn list(client: &Client) -> crate::Result<Vec<Partition>> {
    client.batch_execute("SET LOCAL DateStyle = ISO").await?;
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

/// The bounds of log_events' partitions.
pub async fn bounds(client: &Client) -> crate::Result<Vec<Bounds>> {
    Ok(list(client)
        .await?
        .iter()
        .filter_map(|partition| Some((partition.from?, partition.to?)))
        .collect())
}

/// Whether one of these bounds holds the whole day that starts at `day`.
pub fn holds_day(bounds: &[Bounds], day: DateTime<Utc>) -> bool {
    let end = day + TimeDelta::days(1);
    bounds.iter().any(|&(from, to)| from <= day && end <= to)
}

/// The name and bounds of the partition that holds this instant.
pub async fn partition_holding(
    client: &Client,
    instant: DateTime<Utc>,
) -> crate::Result<(String, Bounds)> {
    let row = client
        .query_one(
            "SELECT name, lower, upper FROM logctl_partition_bounds($1)",
            &[&instant],
        )
        .await?;
    Ok((row.get(0), (row.get(1), row.get(2))))
}

/// Whether the new partitions of log_events can be built detached (see the SQL).
pub async fn can_be_built_detached(client: &Client) -> crate::Result<bool> {
    Ok(client
        .query_one(include_str!("../../sql/partition_rebuild_safe.sql"), &[])
        .await?
        .get(0))
}

/// The partitions this load knows to exist, by the days they hold.
#[derive(Default)]
pub struct KnownPartitions {
    days: std::sync::Mutex<std::collections::HashSet<DateTime<Utc>>>,
}

impl KnownPartitions {
    /// Creates the partitions holding the days that start at `days`, each in its own
    /// short transaction, so a batch never waits on another's new partition.
    pub async fn ensure(
        &self,
        client: &Client,
        days: impl Iterator<Item = DateTime<Utc>>,
    ) -> crate::Result<()> {
        for day in days {
            if self.days.lock().expect("not poisoned").contains(&day) {
                continue;
            }
            transaction(client, Isolation::ReadCommitted, |client| async move {
                client
                    .execute("SELECT logctl_ensure_partition($1)", &[&day])
                    .await?;
                Ok(())
            })
            .await?;
            self.days.lock().expect("not poisoned").insert(day);
        }
        Ok(())
    }
}

/// The rows of a partition, counted, in the caller's transaction.
pub async fn count_rows(client: &Client, name: &str) -> crate::Result<i64> {
    Ok(client
        .query_one(&format!("SELECT count(*) FROM {}", quote(name)), &[])
        .await?
        .get(0))
}

/// Detaches a partition from log_events. DETACH ... CONCURRENTLY waits for queries on
/// the partition but never blocks loads into the others; a detach interrupted before is
/// finished first.
pub async fn detach(client: &Client, name: &str, distributed: bool) -> crate::Result<()> {
    let name = quote(name);
    if distributed {
        // Citus propagates a plain DETACH; it has no concurrent form.
        let detach = &format!("ALTER TABLE log_events DETACH PARTITION {name}");
        return transaction(client, Isolation::ReadCommitted, |client| async move {
            Ok(client.batch_execute(detach).await?)
        })
        .await;
    }
    // The concurrent form runs transactions of its own, outside any the caller names.
    match client
        .batch_execute(&format!(
            "ALTER TABLE log_events DETACH PARTITION {name} CONCURRENTLY"
        ))
        .await
    {
        Ok(()) => Ok(()),
        Err(error) if crate::error_text(&error).contains("FINALIZE") => {
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
pub async fn drop_detached(client: &Client, name: &str) -> crate::Result<()> {
    let drop = &format!("DROP TABLE {}", quote(name));
    transaction(client, Isolation::ReadCommitted, |client| async move {
        Ok(client.batch_execute(drop).await?)
    })
    .await
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_day_is_held_only_by_bounds_that_cover_all_of_it() {
        let day = at("2026-11-25T00:00:00Z");
        let week = (at("2026-11-23T00:00:00Z"), at("2026-11-30T00:00:00Z"));
        assert!(holds_day(&[week], day));
        assert!(holds_day(&[(day, at("2026-11-26T00:00:00Z"))], day));
        assert!(!holds_day(&[(day, at("2026-11-25T23:59:59Z"))], day));
        assert!(!holds_day(&[(at("2026-11-25T00:00:01Z"), week.1)], day));
        assert!(!holds_day(&[], day));
        let before_2000 = at("1999-12-31T00:00:00Z");
        assert!(holds_day(
            &[(before_2000, at("2000-01-01T00:00:00Z"))],
            before_2000
        ));
    }
}
