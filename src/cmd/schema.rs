//! `logctl schema`: create or upgrade the schema, or print its SQL.

use crate::cli::SchemaArgs;
use crate::db::{Database, migrate};
use crate::exit::Outcome;

pub async fn run(args: SchemaArgs, database_url: Option<&str>) -> anyhow::Result<Outcome> {
    if args.print {
        print!("{}", migrate::script());
        return Ok(Outcome::Success);
    }
    let database = Database::open(database_url, 1).await?;
    let mut client = database.dedicated().await?;
    let applied = migrate::apply(&mut client).await?;
    if applied.newly_applied.is_empty() {
        eprintln!(
            "logctl: schema is up to date (version {}); nothing changed",
            applied.version
        );
    } else {
        eprintln!(
            "logctl: applied {}; schema is at version {}",
            applied.newly_applied.join(", "),
            applied.version
        );
    }
    Ok(Outcome::Success)
}
