//! One module per subcommand, each with its `Args` beside a single `run` entry point;
//! `args` holds the argument values several of them take.

pub mod args;
pub mod bench;
pub mod generate;
pub mod load;
pub mod local;
pub mod prune;
pub mod schema;
pub mod slow;
pub mod status;

use crate::Outcome;
use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let url = cli.database_url.as_deref();
    match cli.command {
        Command::Schema(args) => schema::run(args, url).await,
        Command::Load(args) => load::run(args, url).await,
        Command::Slow(args) => slow::run(args, url).await,
        Command::Status(args) => status::run(args, url).await,
        Command::Prune(args) => prune::run(args, url).await,
        Command::Local(args) => local::run(args).await,
        Command::Gen(args) => generate::run(args),
        Command::Bench(args) => bench::run(args, url).await,
    }
}
