//! `logctl slow`: the slow-request report.

use chrono::{DateTime, Utc};

use crate::cli::SlowArgs;
use crate::db::Database;
use crate::ingest::encode::timestamp;
use crate::report::{render, slow};
use crate::{Error, Outcome};

pub async fn run(args: SlowArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    if args.limit < 1 {
        return Err(Error::usage("--limit must be at least 1").into());
    }
    if args.threshold < 0 {
        return Err(Error::usage("--threshold must not be negative").into());
    }
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let query = slow::SlowQuery {
        threshold_ms: args.threshold,
        limit: args.limit,
        since,
        service: args.service,
    };
    let database = Database::open(database_url, 1).await?;
    let client = database.get().await?;
    let tables = slow::report(&client, &query).await?;
    render::print(&tables, args.format)?;
    Ok(Outcome::Success)
}

/// `1h`, `7d`, `30m` ago, or an absolute time in any form `logctl load` accepts.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, Error> {
    if let Ok(duration) = humantime::parse_duration(text) {
        let duration = chrono::Duration::from_std(duration)
            .map_err(|_| Error::usage(format!("--since {text} is too long ago")))?;
        return Ok(Utc::now() - duration);
    }
    let micros = timestamp::parse_text(text, timestamp::Zone::Utc).map_err(|_| {
        Error::usage(format!(
            "--since `{text}` is neither a duration (1h, 7d, 30m) nor an RFC 3339 time"
        ))
    })?;
    Ok(timestamp::to_datetime(micros))
}
