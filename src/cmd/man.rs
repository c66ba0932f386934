//! `logctl man`: the manual pages clap_mangen writes from logctl's own parser: logctl(1),
//! and logctl-COMMAND(1) for each command.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::cli::{Cli, after_help};
use crate::{Error, Outcome};

const EXAMPLES: &str = "  logctl man | man -l -                         # read logctl(1)
  logctl man load | man -l -                    # read logctl-load(1)
  logctl man --output-dir ~/.local/share/man/man1   # install every page for `man logctl`";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, &[Outcome::Success, Outcome::Failure, Outcome::Usage]))]
pub struct Args {
    /// The page of this command (load, slow, local, ...) instead of logctl(1)
    #[arg(value_name = "COMMAND", conflicts_with = "output_dir")]
    pub command: Option<String>,

    /// Write every page (logctl.1, logctl-load.1, ...) into this directory
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut logctl = Cli::command();
    // Building names the subcommands `logctl-COMMAND`, as their pages are called.
    logctl.build();
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        clap_mangen::generate_to(logctl, dir)
            .map_err(|e| Error::io(format!("write the pages into {}", dir.display()), e))?;
        eprintln!("logctl: wrote the manual pages into {}", dir.display());
        return Ok(Outcome::Success);
    }
    let page = match &args.command {
        None => logctl,
        Some(name) => logctl.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = logctl.get_subcommands().map(|c| c.get_name()).collect();
            Error::usage(format!(
                "there is no command `{name}`; the commands are {}",
                names.join(", ")
            ))
        })?,
    };
    let mut out = std::io::stdout().lock();
    match clap_mangen::Man::new(page).render(&mut out) {
        // A reader that stops early (`logctl man | head`) is not an error.
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("write the manual page", error).into())
        }
        _ => Ok(Outcome::Success),
    }
}
