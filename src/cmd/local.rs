//! `logctl local start|stop|status|url`: the private PostgreSQL instance.

use crate::Outcome;
use crate::cli::{LocalAction, LocalArgs};
use crate::db::local::{LocalInstance, Status};

pub async fn run(args: LocalArgs) -> anyhow::Result<Outcome> {
    let instance = LocalInstance::for_current_user()?;
    let root = instance.root().display().to_string();
    match args.action {
        LocalAction::Start => {
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
        LocalAction::Stop => {
            if instance.stop()? {
                eprintln!("logctl: local instance in {root} stopped");
            } else {
                eprintln!("logctl: local instance in {root} was not running");
            }
        }
        LocalAction::Status => match instance.status()? {
            Status::NotCreated => println!("not created ({root}); `logctl local start` creates it"),
            Status::Stopped => println!("stopped ({root})"),
            Status::Running => println!("running ({root}) at {}", instance.url()),
        },
        LocalAction::Url => println!("{}", instance.url()),
    }
    Ok(Outcome::Success)
}
