//! `logctl completions SHELL`: the shell completion script clap_complete writes for
//! logctl's own parser, so it always lists the flags this binary has.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Outcome;
use crate::cli::{Cli, after_help};

const EXAMPLES: &str = "  source <(logctl completions bash)            # this bash session only
  logctl completions bash > ~/.local/share/bash-completion/completions/logctl
  logctl completions zsh > ~/.zfunc/_logctl     # with fpath+=(~/.zfunc) before compinit
  logctl completions fish > ~/.config/fish/completions/logctl.fish";

#[derive(Debug, clap::Args)]
#[command(after_help = after_help(EXAMPLES, &[Outcome::Success, Outcome::Usage]))]
pub struct Args {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(Outcome::Success)
}
