//! `retort`: the command-line front end of the engine. Parsing, printing
//! and exit statuses live here, one module per command under `commands/`;
//! everything else is in the workspace crates.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Exit status for an invalid invocation or formula.
pub const EXIT_INVALID: u8 = 2;
/// Exit status when a run could not be carried out (as a failed run).
pub const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    ExitCode::from(runtime.block_on(dispatch(cli.command)))
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Render { formula, step } => commands::render::render(formula, step).await,
        Command::Run {
            formula,
            agent,
            state_dir,
            phase_file,
            dry_run,
        } => commands::run::run(formula, agent, state_dir, phase_file, dry_run).await,
        Command::Preflight { formula, json } => commands::preflight::preflight(formula, json).await,
        Command::Signal {
            signal,
            reason,
            step,
        } => commands::signal::signal(signal, reason, step),
    }
}

/// Prints `message` as an error and returns [`EXIT_INVALID`].
pub fn invalid(message: &str) -> u8 {
    eprintln!("error: {message}");
    EXIT_INVALID
}
