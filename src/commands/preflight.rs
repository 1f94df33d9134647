//! `retort preflight`: the snapshot a run would take, as markdown or JSON.

use std::path::PathBuf;

use retort_preflight::{Config, Settings};

use crate::EXIT_INVALID;

/// Collects a snapshot, configured by `formula`'s `[preflight]` table when
/// one is given (else every local collector with its defaults), and prints
/// it as markdown (the sections a prompt gets) or, with `json`, exactly as
/// `snapshot.json` in a run directory holds it. Returns the exit status:
/// 0, whatever the collectors found; 2 when the formula is invalid.
pub async fn preflight(formula: Option<PathBuf>, json: bool) -> u8 {
    let settings = match &formula {
        Some(path) => match retort_check::load(path) {
            Ok(loaded) => loaded.formula.preflight,
            Err(error) => {
                eprintln!("{:?}", miette::Report::new(error));
                return EXIT_INVALID;
            }
        },
        None => Settings::default(),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config = Config::default().configure(&settings, &cwd);
    let snapshot = retort_preflight::collect(&config).await;
    if json {
        match serde_json::to_string_pretty(&snapshot) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: cannot serialise the snapshot: {error}");
                return crate::EXIT_FAILED;
            }
        }
    } else {
        print!("{}", snapshot.to_markdown());
    }
    0
}
