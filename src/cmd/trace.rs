//! `logctl trace`: every line of one request across services, in time order, with the
//! gaps between them.

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Client;

use crate::Outcome;
use crate::analytics::read::{self, Query};
use crate::cli::after_help;
use crate::cmd::args::{Window, parse_when, parse_zone};
use crate::cmd::report_args::instants;
use crate::db::migrate;
use crate::db::{Database, Isolation, transaction};
use crate::report::Format;
use crate::report::scope::newest_minute;
use crate::report::scope::{self, Period};
use crate::report::trace::{self, AFTER_ID_TIME, BEFORE_ID_TIME, RequestId, Search};

/// How far either side of `--around` the lines are looked for.
const AROUND: TimeDelta = TimeDelta::minutes(15);

const EXAMPLES: &str =
    "  logctl trace 01a217ba-1200-7abc-8def-0123456789ab   # a UUIDv7 id: found by its time
  logctl trace 5c2a9d3e-8f41-4b6a-9c0d-1e2f3a4b5c6d --around 2026-11-26T13:00:00Z
  logctl trace req-42 --since 2h --format json
  logctl schema --trace-index                   # any id, any time: an index, paid on loads";

/// trace's exit codes: those of any report, and none found.
const OUTCOMES: &[Outcome] = &[
    Outcome::Success,
    Outcome::Failure,
    Outcome::Usage,
    Outcome::Unreachable,
    Outcome::NotFound,
];

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, OUTCOMES))]
pub struct Args {
    /// The request id: a UUID or a 32-digit hex trace id, or the text a log gave (looked
    /// for in each event's metadata, as logctl keeps only UUIDs in the request_id column)
    #[arg(value_name = "REQUEST_ID")]
    pub request_id: String,

    /// Where to look [default: the minutes after the id's own time for ids that carry
    /// one (UUIDv7, v1, v6, ULID), everywhere with the request-id index, else the 24
    /// hours up to the newest event]
    #[command(flatten)]
    pub window: Window,

    /// Look 15 minutes either side of this time
    #[arg(long, value_name = "WHEN", conflicts_with_all = ["since", "until"])]
    pub around: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let id = RequestId::parse(&args.request_id);
    // A window that cannot be read is a usage error before any connection is tried.
    args.window.resolve()?;
    let database = Database::open_existing(database_url, 1).await?;
    let (report, empty_because) =
        transaction(&*database.get().await?, Isolation::Snapshot, |client| {
            let (args, id) = (&args, &id);
            async move {
                let (search, searched) = plan(client, args, id).await?;
                if let Some(note) = scan_note(client, id, search, searched).await? {
                    eprintln!("logctl: {note}");
                }
                let report = trace::report(client, id, search, searched).await?;
                let empty_because = if report.lines.is_empty() {
                    Some(format!(
                        "No line has this request id there. {}",
                        scope::where_data_ends(client, &[]).await?
                    ))
                } else {
                    None
                };
                Ok((report, empty_because))
            }
        })
        .await?;
    let found = empty_because.is_none();
    scope::print(
        database.target.describe(),
        vec![report.table()],
        &[],
        empty_because.as_deref(),
        args.format,
        false,
    )?;
    Ok(if found {
        Outcome::Success
    } else {
        Outcome::NotFound
    })
}

/// Where to look: the window asked for; else everywhere, with the request-id index;
/// else around the id's own time; else the default window.
async fn plan(
    client: &Client,
    args: &Args,
    id: &RequestId,
) -> crate::Result<(Search, Option<Period>)> {
    let indexed = matches!(id, RequestId::Uuid(_)) && migrate::has_trace_index(client).await?;
    if args.window.since.is_some() || args.window.until.is_some() {
        let (from, until) = instants(client, &args.window).await?;
        let search = if indexed {
            Search::Index
        } else {
            Search::AskedWindow
        };
        return Ok((search, Some(Period { from, until })));
    }
    if let Some(text) = &args.around {
        let zone = parse_zone(args.window.timezone.as_deref())?;
        let at = parse_when("--around", text, zone)?;
        let period = Period {
            from: at - AROUND,
            until: at + AROUND,
        };
        return Ok((Search::Around, Some(period)));
    }
    if indexed {
        return Ok((Search::Index, None));
    }
    if let Some(at) = id.time()
        && is_plausible(client, at).await?
    {
        let period = Period {
            from: at - BEFORE_ID_TIME,
            until: at + AFTER_ID_TIME,
        };
        return Ok((Search::IdTime, Some(period)));
    }
    let (from, until) = instants(client, &Window::default()).await?;
    Ok((Search::DefaultWindow, Some(Period { from, until })))
}

/// Whether an id's time can be the time of a logged request: after 2000, and no later
/// than a day after the newest event. A random 32-digit trace id read as a UUID may look
/// like a version 7 one by chance, and its "time" is then nonsense.
async fn is_plausible(client: &Client, at: DateTime<Utc>) -> crate::Result<bool> {
    let newest = newest_minute(client).await?.unwrap_or_else(Utc::now);
    Ok(at.timestamp() > 946_684_800 && at < newest + TimeDelta::days(1))
}

/// What the index costs a load, as `bench write-penalty` measured it on the project's
/// 2-core machine (benches/README.md): a B-tree on request_id made a COPY of 200,000
/// rows into an indexed table 17% slower, and random ids cost more as the table grows.
const INDEX_LOAD_COST: &str = "about 17% slower loads";

/// What a search that reads a window event by event costs, and what would spare it.
async fn scan_note(
    client: &Client,
    id: &RequestId,
    search: Search,
    searched: Option<Period>,
) -> crate::Result<Option<String>> {
    let Some(period) =
        searched.filter(|_| matches!(search, Search::AskedWindow | Search::DefaultWindow))
    else {
        return Ok(None);
    };
    let query = Query {
        latency: false,
        ..Query::new(period.from, period.until)
    };
    let events = read::read(client, &query).await?.total().events;
    Ok(Some(match id {
        RequestId::Uuid(_) => format!(
            "no request-id index: this reads the {events} events of {} one by one; \
             `logctl schema --trace-index` makes it instant, at {INDEX_LOAD_COST} on \
             our benchmark machine (`logctl bench write-penalty` measures it on yours)",
            period.describe()
        ),
        RequestId::Text(_) => format!(
            "the id is not a UUID, so it is looked for in the metadata of each of the \
             {events} events of {}; --since/--until or --around read fewer",
            period.describe()
        ),
    }))
}
