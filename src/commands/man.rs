//! `retort man`: the man page, generated from the command line's clap
//! definitions (clap_mangen), in roff.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::{EXIT_FAILED, out};

/// Prints `retort(1)` on standard output, or with `output` writes
/// `retort.1` and one page per subcommand (`retort-run.1`, …) into that
/// directory, created if missing, and prints their paths. Exit status 0,
/// or 1 when a page cannot be written.
pub fn man(output: Option<&Path>) -> u8 {
    let command = Cli::command();
    let Some(dir) = output else {
        let mut page = Vec::new();
        if let Err(error) = titled(command).render(&mut page) {
            eprintln!("error: cannot render the man page: {error}");
            return EXIT_FAILED;
        }
        out(&String::from_utf8_lossy(&page));
        return 0;
    };
    let written = std::fs::create_dir_all(dir).and_then(|()| pages(command, dir));
    match written {
        Ok(paths) => {
            let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
            out(&list);
            0
        }
        Err(error) => {
            eprintln!(
                "error: cannot write the man pages into {}: {error}",
                dir.display()
            );
            EXIT_FAILED
        }
    }
}

/// Writes the page of `command` and of each of its subcommands, named as
/// clap_mangen names them (`retort-schedule-list.1`); returns their paths.
fn pages(command: clap::Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let mut paths = Vec::new();
    write_page(command, dir, &mut paths)?;
    Ok(paths)
}

fn write_page(
    command: clap::Command,
    dir: &Path,
    paths: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(sub.clone(), dir, paths)?;
    }
    let man = titled(command);
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    std::fs::write(&path, &page)?;
    paths.push(path);
    Ok(())
}

/// The page of `command`, titled in capitals as man-pages(7) has it
/// (`.TH RETORT 1`, `.TH RETORT-RUN 1`), its source `retort VERSION`
/// (clap_mangen would name a subcommand's page's source after the
/// subcommand alone).
fn titled(command: clap::Command) -> clap_mangen::Man {
    let title = command
        .get_display_name()
        .unwrap_or(command.get_name())
        .to_uppercase();
    clap_mangen::Man::new(command)
        .title(title)
        .source(format!("retort {}", env!("CARGO_PKG_VERSION")))
}
