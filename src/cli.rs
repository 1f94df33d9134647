//! The command line: what `retort` accepts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Runs declarative agent formulas: TOML step DAGs, rendered into prompts
/// for an LLM agent in tmux, ending in a phase signal and a journal entry.
#[derive(Debug, Parser)]
#[command(name = "retort", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every step's prompt, in topological order, as a run would send
    /// it (with a live preflight snapshot). Writes nothing.
    Render {
        /// The formula file.
        formula: PathBuf,
        /// Print only this step's prompt.
        #[arg(long, value_name = "ID")]
        step: Option<String>,
        /// Set a formula variable (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// Render against this saved snapshot.json instead of a live preflight.
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// The state directory whose run history the findings are judged
        /// against (read, never written) [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },

    /// Check formula files (or directories of them, recursively) and report
    /// every problem: errors and warnings, each with its line, column,
    /// excerpt and a fix. Exit status 1 when any error, else 0.
    Check {
        /// Formula files, or directories searched for formulas (`*.toml`
        /// files with `[[steps]]` or `[[rules]]`; other TOML is skipped).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// How to print the diagnostics.
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// Fail (exit status 1) on these too: `warnings`, for CI.
        #[arg(long, value_enum, value_name = "LINTS")]
        deny: Vec<Deny>,
        /// Set a formula variable (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// Print every problem; by default at most 100 a file are printed,
        /// then a line saying how many more there are.
        #[arg(long)]
        all: bool,
    },

    /// Draw a formula's step DAG.
    Graph {
        /// The formula file.
        formula: PathBuf,
        /// Layers of text, Graphviz DOT, or a Mermaid flowchart.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },

    /// Run a formula: preflight, then one agent session in tmux receiving
    /// each step's prompt in turn. Exit status: 0 done, 1 failed,
    /// 2 invalid invocation or formula, 3 escalated, 75 another run of the
    /// formula holds its lock (try again later).
    Run {
        /// The formula file.
        formula: PathBuf,
        /// The agent's shell command (a Tera template over `model`);
        /// overrides the formula's `[agent] command`.
        #[arg(long, value_name = "CMD")]
        agent: Option<String>,
        /// Text the `--agent` command's screen shows once it waits for
        /// input; its first prompt waits for it (as `[agent] ready` does
        /// for the formula's own agent). Without it, retort waits for the
        /// screen to settle.
        #[arg(long, value_name = "TEXT", requires = "agent")]
        ready: Option<String>,
        /// What runs the agent; overrides the formula's `[agent] backend`:
        /// a tmux session per run, or one process per step (headless).
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// The state directory [default: $RETORT_STATE_DIR, else
        /// $XDG_STATE_HOME/retort, else ~/.local/state/retort].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The phase file to write [default: STATE/FORMULA.phase].
        #[arg(long, value_name = "PATH")]
        phase_file: Option<PathBuf>,
        /// Do everything up to the rendered prompts and print the plan,
        /// the findings and the gate's decision: no session, no action, no
        /// run directory, no history, no phase file, no journal.
        #[arg(long)]
        dry_run: bool,
        /// Set a formula variable (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// Use this saved snapshot.json instead of a live preflight.
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// For cron: print nothing at all when the run ends done (the gate
        /// closed included), else a short summary (phase, reason, run
        /// directory) on standard error.
        #[arg(long, conflicts_with = "dry_run")]
        quiet: bool,
        /// With --dry-run: the plan as text, or as one JSON object.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text, requires = "dry_run")]
        format: OutputFormat,
    },

    /// Run a past run's formula again with its saved snapshot: STEP and
    /// its descendants run again (`--only`: STEP alone), every other step
    /// keeps its outcome and output from that run. Recorded as a rerun of
    /// RUN_ID. Exit statuses as for `run`.
    Rerun {
        /// The run to rerun (a directory name under STATE/runs/).
        run_id: String,
        /// Run this step and its descendants again [default: every step].
        #[arg(long, value_name = "STEP", conflicts_with = "only")]
        from: Option<String>,
        /// Run only this step again.
        #[arg(long, value_name = "STEP")]
        only: Option<String>,
        /// The agent's shell command; overrides the formula's.
        #[arg(long, value_name = "CMD")]
        agent: Option<String>,
        /// What runs the agent; overrides the formula's `[agent] backend`.
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// The state directory, as for `run`.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Set a formula variable (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// Print nothing when the run ends done, else a short summary.
        #[arg(long)]
        quiet: bool,
    },

    /// Write what runs every formula with a `schedule` by itself: a
    /// crontab block, systemd service and timer units, or Nomad periodic
    /// jobs, with absolute paths of this retort binary, the formulas and
    /// the state directory. `retort schedule list` prints next run times.
    Schedule(ScheduleArgs),

    /// Print a shell completion script on standard output (bash:
    /// `retort completions bash > ~/.local/share/bash-completion/completions/retort`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: ShellArg,
    },

    /// Print retort's man page (roff) on standard output, or with
    /// `--output DIR` write `retort.1` and a page per subcommand there.
    Man {
        /// Write the pages into this directory (created if missing).
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
    },

    /// List the actions that runs proposed and that wait for a human.
    Proposals {
        /// List every proposal, decided ones too.
        #[arg(long)]
        all: bool,
        /// Text, or a JSON array of proposals.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// The state directory [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },

    /// Approve a pending proposal and run its command now. Exit status: 0
    /// when the command succeeded, 1 when it failed, 2 when there is no
    /// such pending proposal.
    Approve {
        /// The proposal's id, as `retort proposals` shows it.
        id: i64,
        /// The state directory [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },

    /// Reject a pending proposal: it is closed without running.
    Reject {
        /// The proposal's id, as `retort proposals` shows it.
        id: i64,
        /// Why, kept with the proposal.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// The state directory [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },

    /// Take a preflight snapshot of this machine and print it: markdown
    /// (what a prompt gets) or JSON (what `snapshot.json` in a run
    /// directory holds). Collectors that cannot run say why; the exit
    /// status is 0 whatever they find.
    Preflight {
        /// Configure the collectors from this formula's `[preflight]` table
        /// [default: every local collector with its defaults].
        #[arg(long, value_name = "FORMULA")]
        formula: Option<PathBuf>,
        /// Markdown (what a prompt gets) or JSON (what `snapshot.json` holds).
        #[arg(long, value_enum, default_value_t = PreflightFormat::Markdown)]
        format: PreflightFormat,
        /// Print JSON: the same as `--format json`.
        #[arg(long)]
        json: bool,
    },

    /// Every formula of the state directory: its last run (phase, age),
    /// next scheduled run, open findings by priority, pending proposals,
    /// and holds (rate limits) that keep gates closed. Reads only.
    Status {
        /// The state directory [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Text, or one JSON object.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },

    /// Past runs, newest first: when, phase, gate, findings, reason.
    History {
        /// Only this formula's runs (its `name`).
        formula: Option<String>,
        /// Only runs of this recent period: `7d`, `12h`, `30m`.
        #[arg(long, value_name = "DURATION", value_parser = parse_period)]
        since: Option<std::time::Duration>,
        /// At most this many runs.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// The state directory [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Text, or a JSON array of runs.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },

    /// One run: its steps with durations, outcomes and reasons, findings,
    /// actions, cost, notifications, and the paths of its prompts and logs.
    Show {
        /// The run id (`retort history` lists them).
        run_id: String,
        /// The state directory [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Text, or one JSON object.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },

    /// A report over a period, per formula: runs and outcomes, step
    /// durations (median, p95), findings by priority, recurring
    /// fingerprints, actions and proposals, agent sessions started and
    /// avoided, tokens and cost.
    Report {
        /// The period: `7d`, `24h`.
        #[arg(long, value_name = "DURATION", value_parser = parse_period, default_value = "7d")]
        since: std::time::Duration,
        /// Markdown, or one JSON object.
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
        /// The state directory [default: as for `run`].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },

    /// Print the JSON Schema of formula files, for editors (taplo / Even
    /// Better TOML read it from a `#:schema PATH` first line).
    Schema,

    /// Signal the end of the current step (run by the agent, inside the
    /// session `retort run` started).
    Signal {
        /// How the step ended.
        #[arg(value_enum)]
        signal: SignalArg,
        /// Why (for failed and escalate).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// The step [default: the run's current step].
        #[arg(long, value_name = "ID")]
        step: Option<String>,
        /// The step's output, which later steps see as `steps.ID.output`
        /// (at most 64 KiB).
        #[arg(long, value_name = "TEXT", conflicts_with = "output_file")]
        output: Option<String>,
        /// The step's output, read from this file (at most 64 KiB of text).
        #[arg(long, value_name = "PATH")]
        output_file: Option<PathBuf>,
    },

    /// Record an agent hook's JSON (standard input) in the run directory
    /// (run by Claude Code's hooks, from the settings retort writes).
    #[command(hide = true)]
    Hook,
}

/// `retort schedule`: the generator's options, or `list`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScheduleArgs {
    /// `list`: print next run times instead.
    #[command(subcommand)]
    pub command: Option<ScheduleCommand>,
    /// Formula files, or directories searched for `*.toml` holding a
    /// top-level `schedule` [default: the current directory].
    pub paths: Vec<PathBuf>,
    /// What to write: a crontab block, systemd units, a Nomad periodic
    /// batch job, or a Nomad sysbatch job (every node).
    #[arg(long, value_enum, default_value_t = ScheduleFormat::Crontab)]
    pub format: ScheduleFormat,
    /// Write the files into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// With --output: replace files retort did not generate.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// A file of NAME=value lines (tokens, PATH) each run loads into its
    /// environment; secrets stay out of every command line.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The state directory the runs use [default: as for `run`, resolved now].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The directory each run starts in: where the formulas' context files
    /// are and the agent works (the factory's root) [default: the current
    /// directory, as for a `retort run` typed here].
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
}

/// The subcommands of `retort schedule`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print each scheduled formula's next run times, in local time.
    List {
        /// Formula files, or directories searched for `*.toml` holding a
        /// top-level `schedule` [default: the current directory].
        paths: Vec<PathBuf>,
        /// Text, or a JSON array of `{name, formula, schedule, next}`.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// How many run times per formula.
        #[arg(long, value_name = "N", default_value_t = 5)]
        count: usize,
    },
}

/// What `retort schedule --format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleFormat {
    /// One crontab block (`retort.crontab`).
    Crontab,
    /// `retort-NAME.service` and `retort-NAME.timer` per formula.
    Systemd,
    /// `retort-NAME.nomad.hcl`: a periodic batch job, on one node.
    Nomad,
    /// `retort-NAME.nomad.hcl`: a periodic sysbatch job, on every node.
    NomadSysbatch,
}

/// How `retort schedule list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// One block per formula.
    Text,
    /// A JSON array.
    Json,
}

/// The shells `retort completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// The signals an agent can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalArg {
    /// The step is finished.
    Done,
    /// The step could not be done.
    Failed,
    /// The step needs a human.
    Escalate,
}

/// How `retort check` prints diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// Compiler-style reports with source excerpts.
    Text,
    /// A JSON array of `{file, line, column, end_line, end_column, severity,
    /// code, message, help, labels}`.
    Json,
}

/// What `retort check --deny` makes fail the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Deny {
    /// Every warning (an ignored key, an unused var, …).
    Warnings,
}

/// What runs the agent (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// A detached tmux session per run; prompts are pasted into it.
    Tmux,
    /// One process per step, with the prompt on its standard input.
    Headless,
}

/// How `retort graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Steps by layer, with what each needs.
    Text,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// How a command that reads the state directory prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines for a person.
    Text,
    /// JSON, for programs.
    Json,
}

/// How `retort preflight` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreflightFormat {
    /// The sections a prompt gets.
    Markdown,
    /// What `snapshot.json` holds.
    Json,
}

/// How `retort report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A markdown document, a section per formula.
    Markdown,
    /// One JSON object.
    Json,
}

/// Parses a period such as `7d`, `12h` or `90m` (humantime).
fn parse_period(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|error| {
        format!("`{text}` is not a period ({error}); write it like 7d, 12h or 30m")
    })
}

/// Parses `NAME=VALUE`.
fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}
