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
  logctl schema --print-grants loader | psql logs";

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
    /// distributed by service_id (connect to the coordinator)
    #[arg(long)]
    pub distributed: bool,

    /// Print the GRANT statements that let ROLE load logs (a role that does not own the
    /// tables), for their owner to run; connects to nothing
    #[arg(long, value_name = "ROLE", conflicts_with_all = ["print", "partition", "distributed"])]
    pub print_grants: Option<String>,

    /// With --print-grants: only what the reports (slow, status) need, reads only
    #[arg(long, requires = "print_grants")]
    pub read_only: bool,
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
    if let Some(days) = compact::derive_pending_grains(&client).await? {
        eprintln!(
            "logctl: derived the service and route rollups of {days} days from the hour and \
             day rollups"
        );
    }
    Ok(Outcome::Success)
}
