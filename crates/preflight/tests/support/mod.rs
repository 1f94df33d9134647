//! Shared pieces of the preflight tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use retort_preflight::Config;

/// A configuration with every collector switched off: a test turns on the
/// ones it is about, so it neither waits for nor depends on the others.
pub fn quiet_config(cwd: &Path) -> Config {
    let mut config = Config {
        cwd: Some(cwd.to_path_buf()),
        ..Config::default()
    };
    config.system.enabled = false;
    config.docker.enabled = false;
    config.tmux.enabled = false;
    config.phase_files.enabled = false;
    config.locks.enabled = false;
    config.logs.enabled = false;
    config.git.enabled = false;
    config.escalations.enabled = false;
    config
}

/// Runs `git ARGS` in `dir` with a fixed identity and no user configuration; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir, args).output().unwrap();
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `git ARGS` in `dir`, isolated from the user's and system's configuration.
pub fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.org")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.org")
        .env("GIT_EDITOR", "true")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null());
    command
}

/// A new repository at `dir` on branch `main` with one commit of `file`.
pub fn init_repo(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("file.txt"), "one\n").unwrap();
    git(dir, &["add", "file.txt"]);
    git(dir, &["commit", "-q", "-m", "first"]);
    dir.to_path_buf()
}

/// A child process that exits at once and has been reaped: its PID is free.
pub fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Sets a file's modification time to `secs_ago` seconds before now.
pub fn age_file(path: &Path, secs_ago: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago);
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(when).unwrap();
}
pub mod server;
