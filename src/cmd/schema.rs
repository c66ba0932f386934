//! `logctl schema`: create or upgrade the schema in the variant asked for, or print its
//! SQL, or the GRANTs a loader or reporting role needs.

use crate::Outcome;
use crate::analytics::compact;
use crate::cli::{DATABASE_OUTCOMES, after_help};
use crate::db::Database;
use crate::db::migrate::{self, Variant};
use crate::db::partitions::Interval;
use crate::db::privileges::{self, Role};

const EXAMPLES: &str =
    "  logctl schema                                 # create or upgrade; safe to run again
  logctl schema --partition day                 # log_events partitioned by day
  logctl schema --print --partition day | less  # the SQL, run nowhere
  logctl schema --print-grants loader | psql logs
  logctl schema --trace-index                   # let `logctl trace` find any request id";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, DATABASE_OUTCOMES))]
pub struct Args {
    /// Print the SQL instead of running it (for the variant the other flags choose)
    #[arg(long)]
    pub print: bool,

    /// Create log_events partitioned by range on created_at, one partition per day,
    /// week or month; loads create the partitions they need, `logctl prune` drops old ones
    #[arg(long, value_enum, value_name = "INTERVAL")]
    pub partition: Option<Interval>,

    /// Create the schema on a Citus cluster: services as a reference table, log_events
    /// spread over the shards batch by batch (connect to the coordinator)
    #[arg(long)]
    pub distributed: bool,

    /// Print the GRANT statements that let ROLE load logs (a role that does not own the
    /// tables), for their owner to run; connects to nothing
    #[arg(long, value_name = "ROLE", conflicts_with_all = ["print", "partition", "distributed"])]
    pub print_grants: Option<String>,

    /// With --print-grants: only what the reports (slow, status) need, reads only
    #[arg(long, requires = "print_grants")]
    pub read_only: bool,

    /// Also create the request-id index, so that `logctl trace` finds any request at
    /// once; every load pays for it (`logctl bench write-penalty` measures how much)
    #[arg(long, conflicts_with = "drop_trace_index")]
    pub trace_index: bool,

    /// Drop the request-id index: loads get faster, `logctl trace` searches by time
    #[arg(long)]
    pub drop_trace_index: bool,
}

pub async fn run(args: Args, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let asked = Variant {
        partition: args.partition,
        distributed: args.distributed,
    };
    if let Some(role) = &args.print_grants {
        let kind = if args.read_only {
            Role::Reader
        } else {
            Role::Loader
        };
        print!("{}", privileges::grant_statements(role, kind));
        return Ok(Outcome::Success);
    }
    if args.print {
        print!("{}", migrate::script(asked));
        if args.trace_index {
            print!("\n{}", migrate::TRACE_INDEX);
        }
        return Ok(Outcome::Success);
    }
    let wanted = (args.partition.is_some() || args.distributed).then_some(asked);
    let database = Database::open(database_url, 1).await?;
    let mut client = database.dedicated().await?;
    let applied = migrate::apply(&mut client, wanted).await?;
    if applied.newly_applied.is_empty() {
        eprintln!(
            "logctl: schema is up to date (version {}, {}); nothing changed",
            applied.version, applied.variant
        );
    } else {
        eprintln!(
            "logctl: applied {}; schema is at version {} ({})",
            applied.newly_applied.join(", "),
            applied.version,
            applied.variant
        );
    }
    if let Some(days) = compact::derive_pending_grains(&client, applied.variant.distributed).await?
    {
        eprintln!(
            "logctl: packed the fine and minute rollup cells into their route and minute \
             totals, and derived every rollup grain from them, for {}",
            super::rollup::days_text(days)
        );
    }
    if args.trace_index || args.drop_trace_index {
        let changed = migrate::set_trace_index(&client, args.trace_index).await?;
        eprintln!(
            "logctl: the request-id index {}",
            match (args.trace_index, changed) {
                (true, true) => "is built: `logctl trace` finds any request at once",
                (true, false) => "was already there; nothing changed",
                (false, true) => "is dropped: loads no longer pay for it",
                (false, false) => "was not there; nothing changed",
            }
        );
    }
    Ok(Outcome::Success)
}
