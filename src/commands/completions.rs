//! `retort completions SHELL`: a completion script generated from the
//! command line's clap definitions (clap_complete), so it never falls
//! behind the commands it completes.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, ShellArg};

/// Prints the completion script for `shell` on standard output; exit status 0.
pub fn completions(shell: ShellArg) -> u8 {
    let shell = match shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "retort", &mut script);
    crate::out(&String::from_utf8_lossy(&script));
    0
}
