//! `logctl rollup compact|rebuild|verify`: the rollups the reports read, folded,
//! recomputed from the raw rows, or checked against them.

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::analytics::compact::{self, Wait};
use crate::analytics::rebuild;
use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::cmd::args::Window;
use crate::db::Database;
use crate::{Error, Outcome};

const EXAMPLES: &str = "  logctl rollup compact                       # from cron, beside loads
  logctl rollup rebuild --since 2026-11-01    # after deleting rows by hand, or an old database
  logctl rollup verify --since 7d             # exits 1 if the rollups disagree with the rows";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Fold the rollup deltas that loads appended into the minute, hour and day cells.
    /// Loads do it as they end; run it from cron beside them when one was interrupted
    /// (answers never depend on it: reports count pending deltas too)
    Compact,
    /// Recompute the rollups of whole days from the raw rows: for a database loaded before
    /// rollups existed, or after rows were deleted by hand. Memory holds one day's cells;
    /// the days are replaced in one transaction
    Rebuild(Range),
    /// Recompute the rollups of whole days from the raw rows and compare them with those
    /// stored (compacted and pending); exits 1 on any difference
    Verify(Range),
}

#[derive(Debug, clap::Args)]
pub struct Range {
    /// --since (required) and --until [default: now]: the whole days that hold them are
    /// taken
    #[command(flatten)]
    pub window: Window,
}

impl Range {
    fn bounds(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), Error> {
        let span = self.window.resolve()?;
        let since = span
            .since
            .ok_or_else(|| Error::usage("--since is needed: the first day to take"))?;
        Ok((since, span.until.unwrap_or_else(Utc::now)))
    }
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let range = match &args.action {
        Action::Compact => None,
        Action::Rebuild(range) | Action::Verify(range) => Some(range.bounds()?),
    };
    // Compaction folds its lanes on a connection each; a rebuild's lock is held on a
    // second connection.
    let database = Database::open(database_url, compact::LANES.max(2) as u32).await?;
    let client = database.get().await?;
    match (args.action, range) {
        (Action::Rebuild(_), Some((since, until))) => {
            let guard = database.get().await?;
            let days = rebuild::rebuild(&client, &guard, since, until).await?;
            eprintln!(
                "logctl: rebuilt the rollups of {} from the raw rows",
                days_text(days)
            );
        }
        (Action::Verify(_), Some((since, until))) => {
            let (days, differences) = rebuild::verify(&client, since, until).await?;
            if !differences.is_empty() {
                for difference in differences.iter().take(20) {
                    eprintln!(
                        "logctl: {}: stored {}, the rows give {}",
                        difference.cell, difference.stored, difference.from_rows
                    );
                }
                return Err(Error::Failed(format!(
                    "{} rollup cells of {} differ from the raw rows; recompute them \
                     with `logctl rollup rebuild` over the same range",
                    differences.len(),
                    days_text(days)
                ))
                .into());
            }
            eprintln!(
                "logctl: the rollups of {} match the raw rows",
                days_text(days)
            );
        }
        _ => {
            let second = database.get().await?;
            let folded = compact::compact(&client, Some(&second), Wait::Yes)
                .await?
                .unwrap_or(0);
            eprintln!("logctl: folded {folded} rollup deltas into the grains");
        }
    }
    Ok(Outcome::Success)
}

/// "1 day", "3 days": how the rollup commands (and `schema`'s conversion) count days.
pub(crate) fn days_text(days: u64) -> String {
    if days == 1 {
        "1 day".to_string()
    } else {
        format!("{days} days")
    }
}
