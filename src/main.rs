//! The logctl binary: parse the arguments, run the command, map the outcome or the
//! error to a documented exit code.

use std::process::ExitCode;

use clap::Parser;
use logctl::cli::Cli;
use logctl::{Error, Outcome};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Outcome::Usage.into()
            } else {
                Outcome::Success.into()
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("logctl: error: cannot start the async runtime: {error}");
            return Outcome::Failure.into();
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            let label = if logctl::terminal::stderr().color {
                console::style("error:")
                    .red()
                    .bold()
                    .force_styling(true)
                    .to_string()
            } else {
                "error:".to_string()
            };
            eprintln!("logctl: {label} {error:#}");
            outcome_of(&error).into()
        }
    }
}

/// The exit code of the library error behind the failure; anything else is a failure.
fn outcome_of(error: &anyhow::Error) -> Outcome {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(Outcome::Failure, Error::outcome)
}
