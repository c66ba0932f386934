//! `logctl schema`: create or upgrade the schema in the variant asked for, or print its SQL.

use crate::Outcome;
use crate::cli::SchemaArgs;
use crate::db::Database;
use crate::db::migrate::{self, Variant};

pub async fn run(args: SchemaArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    let asked = Variant {
        partition: args.partition,
        distributed: args.distributed,
    };
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
    Ok(Outcome::Success)
}
