//! `logctl local start|stop|status|url|destroy`: the private PostgreSQL instance.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;

use crate::cli::after_help;
use crate::db::local::{LocalInstance, Status};
use crate::{Error, Outcome};

const EXAMPLES: &str = "  logctl local start                            # create (first time) and start; prints its URL
  logctl local status || logctl local start     # status exits 3 unless it runs
  psql \"$(logctl local url)\"                    # look inside with psql
  logctl local stop
  logctl local destroy --yes                    # delete it and all its data";

const OUTCOMES: &[Outcome] = &[
    Outcome::Success,
    Outcome::Failure,
    Outcome::Usage,
    Outcome::Unreachable,
];

#[derive(Debug, clap::Args)]
#[command(after_help = format!(
    "{}\n       (for `local status`: the instance is stopped or not created, as pg_ctl's)",
    after_help(EXAMPLES, OUTCOMES)
))]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Action {
    /// Create the instance if needed and start it
    Start,
    /// Stop it (fast shutdown; committed data is kept)
    Stop,
    /// Say whether it exists and runs: exit 0 when it runs, 3 when it is stopped or not
    /// created
    Status,
    /// Print its connection URL (for psql)
    Url,
    /// Stop it and delete it with all its data (asks first, unless --yes)
    Destroy {
        /// Do not ask; needed when stdin is not a terminal
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    let instance = LocalInstance::for_current_user()?;
    let root = instance.root().display().to_string();
    match args.action {
        Action::Start => {
            let starter = instance.clone();
            let started = tokio::task::spawn_blocking(move || starter.start()).await??;
            instance.ensure_database().await?;
            if started {
                eprintln!("logctl: local instance started in {root}");
            } else {
                eprintln!("logctl: local instance already running in {root}");
            }
            println!("{}", instance.url());
        }
        Action::Stop => {
            if instance.stop()? {
                eprintln!("logctl: local instance in {root} stopped");
            } else {
                eprintln!("logctl: local instance in {root} was not running");
            }
        }
        Action::Status => {
            let status = instance.status()?;
            match status {
                Status::NotCreated => {
                    println!("not created ({root}); `logctl local start` creates it")
                }
                Status::Stopped => println!("stopped ({root}); `logctl local start` starts it"),
                Status::Running => println!("running ({root}) at {}", instance.url()),
            }
            if status != Status::Running {
                return Ok(Outcome::Unreachable);
            }
        }
        Action::Url => println!("{}", instance.url()),
        Action::Destroy { yes } => {
            if instance.status()? == Status::NotCreated {
                eprintln!("logctl: there is no local instance in {root}; nothing to delete");
                return Ok(Outcome::Success);
            }
            if !yes
                && !confirmed(&format!(
                    "Delete the local instance in {root} and all its data?"
                ))?
            {
                eprintln!("logctl: nothing deleted");
                return Ok(Outcome::Failure);
            }
            instance.destroy()?;
            eprintln!("logctl: deleted the local instance in {root}");
        }
    }
    Ok(Outcome::Success)
}

/// Asks on the terminal; without one, refuses, since nobody can answer.
fn confirmed(question: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "stdin is not a terminal, so logctl cannot ask: add --yes to delete it",
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("read the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
