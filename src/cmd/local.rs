//! `logctl local start|stop|status|url`: the private PostgreSQL instance.

use clap::Subcommand;

use crate::Outcome;
use crate::db::local::{LocalInstance, Status};

#[derive(Debug, clap::Args)]
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
    /// Say whether it exists and runs
    Status,
    /// Print its connection URL (for psql)
    Url,
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
        Action::Status => match instance.status()? {
            Status::NotCreated => println!("not created ({root}); `logctl local start` creates it"),
            Status::Stopped => println!("stopped ({root})"),
            Status::Running => println!("running ({root}) at {}", instance.url()),
        },
        Action::Url => println!("{}", instance.url()),
    }
    Ok(Outcome::Success)
}
