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
/// Exit status when another run of the formula holds its lock: EX_TEMPFAIL
/// of sysexits.h ("temporary failure … the user is invited to retry
/// later"), which cron wrappers and systemd read as "try again".
pub const EXIT_TEMPFAIL: u8 = 75;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Diagnostics keep each message on one line, as compilers do, so that
    // logs and cron mail can be searched for them.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
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
    let code = runtime.block_on(dispatch(cli.command));
    // Whatever a command awaited has ended; what is left on the blocking
    // pool was given up (a notification cut short by a signal, a request
    // waiting for its timeout): the process does not wait for it.
    runtime.shutdown_background();
    ExitCode::from(code)
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Render {
            formula,
            step,
            vars,
            snapshot,
            state_dir,
        } => {
            commands::render::render(
                formula,
                step,
                vars.into_iter().collect(),
                snapshot,
                state_dir,
            )
            .await
        }
        Command::Check {
            paths,
            format,
            deny,
            vars,
            all,
        } => commands::check::check(
            &paths,
            format,
            deny.contains(&cli::Deny::Warnings),
            vars.into_iter().collect(),
            (!all).then_some(commands::check::SHOWN_PER_FILE),
        ),
        Command::Graph { formula, format } => commands::graph::graph(&formula, format),
        Command::Rerun {
            run_id,
            from,
            only,
            agent,
            backend,
            state_dir,
            vars,
            quiet,
        } => {
            commands::rerun::rerun(commands::rerun::RerunArgs {
                run_id,
                from,
                only,
                agent,
                backend: backend.map(|backend| match backend {
                    cli::BackendArg::Tmux => retort_formula::formula::Backend::Tmux,
                    cli::BackendArg::Headless => retort_formula::formula::Backend::Headless,
                }),
                state_dir,
                vars: vars.into_iter().collect(),
                quiet,
            })
            .await
        }
        Command::Run {
            formula,
            agent,
            ready,
            backend,
            state_dir,
            phase_file,
            dry_run,
            vars,
            snapshot,
            quiet,
            format,
        } => {
            let run = commands::run::RunArgs {
                formula,
                agent,
                ready,
                backend: backend.map(|backend| match backend {
                    cli::BackendArg::Tmux => retort_formula::formula::Backend::Tmux,
                    cli::BackendArg::Headless => retort_formula::formula::Backend::Headless,
                }),
                state_dir,
                phase_file,
                dry_run,
                vars: vars.into_iter().collect(),
                snapshot,
                quiet,
                rerun: None,
                json: format == cli::OutputFormat::Json,
            };
            commands::run::run(run).await
        }
        Command::Schedule(args) => commands::schedule::schedule(args),
        Command::Completions { shell } => commands::completions::completions(shell),
        Command::Man { output } => commands::man::man(output.as_deref()),
        Command::Proposals {
            all,
            format,
            state_dir,
        } => commands::proposals::proposals(all, format, state_dir),
        Command::Approve { id, state_dir } => commands::approve::approve(id, state_dir).await,
        Command::Reject {
            id,
            reason,
            state_dir,
        } => commands::reject::reject(id, reason, state_dir),
        Command::Schema => commands::schema::schema(),
        Command::Preflight {
            formula,
            format,
            json,
        } => {
            let json = json || format == cli::PreflightFormat::Json;
            commands::preflight::preflight(formula, json).await
        }
        Command::Status { state_dir, format } => commands::status::status(state_dir, format),
        Command::History {
            formula,
            since,
            limit,
            state_dir,
            format,
        } => commands::history::history(formula, since, limit, state_dir, format),
        Command::Show {
            run_id,
            state_dir,
            format,
        } => commands::show::show(&run_id, state_dir, format),
        Command::Report {
            since,
            format,
            state_dir,
        } => commands::report::report(since, format, state_dir),
        Command::Signal {
            signal,
            reason,
            step,
            output,
            output_file,
        } => commands::signal::signal(signal, reason, step, output, output_file),
        Command::Hook => commands::hook::hook(),
    }
}

/// Writes `text` to standard output. A reader that has gone away (`retort
/// render … | head`) ends the program quietly, as it does for `cat`,
/// instead of a panic; any other write error is reported.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(i32::from(EXIT_FAILED));
    }
}

/// Prints `message` as an error and returns [`EXIT_INVALID`].
pub fn invalid(message: &str) -> u8 {
    eprintln!("error: {message}");
    EXIT_INVALID
}
