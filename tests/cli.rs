//! The shell around retort: completion scripts (`retort completions`) and
//! the man page (`retort man`), both generated from the command line's
//! definitions, checked by the tools that read them where the machine has
//! them.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{retort, stderr, stdout};

fn run(args: &[&str]) -> String {
    let output = Command::new(retort()).args(args).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "retort {args:?}: {}",
        stderr(&output)
    );
    stdout(&output)
}

/// The subcommands `retort --help` lists (so that a new one is checked too).
fn subcommands() -> Vec<String> {
    let help = run(&["--help"]);
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect();
    for expected in ["run", "check", "schedule", "completions", "man"] {
        assert!(commands.iter().any(|c| c == expected), "{commands:?}");
    }
    commands
}

/// `program` on the PATH, if the machine has it.
fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Checks `script` with `SHELL -n` when the machine has that shell.
fn parses_in(shell: &str, script: &str) {
    let Some(program) = which(shell) else {
        eprintln!("note: {shell} not found; its completion script is checked by content only");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("retort.completion");
    std::fs::write(&file, script).unwrap();
    let output = Command::new(program).arg("-n").arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "{shell} -n refused the completion script: {}",
        stderr(&output)
    );
}

#[test]
fn bash_completion_parses_and_completes_every_subcommand() {
    let script = run(&["completions", "bash"]);
    parses_in("bash", &script);
    assert!(script.contains("complete -F _retort"), "{script}");
    for command in subcommands() {
        assert!(script.contains(&command), "no `{command}` in:\n{script}");
    }
    // Sourced in a real bash, it registers a completion for `retort`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("retort.bash");
    std::fs::write(&file, &script).unwrap();
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(". '{}' && complete -p retort", file.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("retort"), "{}", stdout(&output));
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let zsh = run(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef retort"), "{zsh}");
    parses_in("zsh", &zsh);
    let fish = run(&["completions", "fish"]);
    assert!(fish.contains("complete -c retort"), "{fish}");
    parses_in("fish", &fish);
    for command in subcommands() {
        assert!(zsh.contains(&command), "zsh: no `{command}`");
        assert!(fish.contains(&command), "fish: no `{command}`");
    }
    // Options of nested subcommands are completed too.
    assert!(fish.contains("nomad-sysbatch"), "{fish}");
}

#[test]
fn the_man_page_is_roff_with_every_subcommand() {
    let page = run(&["man"]);
    assert!(
        page.contains(".TH retort 1") || page.contains(".TH RETORT 1"),
        "{page}"
    );
    assert!(page.contains(".SH NAME"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for command in subcommands() {
        assert!(
            page.contains(&format!("retort\\-{command}(1)")),
            "no `{command}` in the SUBCOMMANDS section"
        );
    }
    if let Some(groff) = which("groff") {
        let output = Command::new(groff)
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(page.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn man_output_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let listed = run(&["man", "--output", out.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"retort.1".to_string()), "{names:?}");
    assert!(
        names.contains(&"retort-schedule-list.1".to_string()),
        "{names:?}"
    );
    for command in subcommands() {
        assert!(names.contains(&format!("retort-{command}.1")), "{names:?}");
    }
    assert!(!names.contains(&"retort-help.1".to_string()), "{names:?}");
    assert_eq!(listed.lines().count(), names.len(), "{listed}");
    let run_page = std::fs::read_to_string(out.join("retort-run.1")).unwrap();
    assert!(run_page.contains("\n.TH RETORT-RUN 1 "), "{run_page}");
    assert!(run_page.contains("quiet"), "{run_page}");
}
