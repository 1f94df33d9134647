//! `retort approve`: run a proposed action, as a human decided.

use std::path::PathBuf;

use retort_decide::action::CommandOutcome;
use retort_decide::decide::history_path;
use retort_decide::proposal::{self, ProposalError};

use super::proposals::shell_words;
use super::state_dir;
use crate::{EXIT_FAILED, invalid};

/// Approves proposal `id`, runs its command and prints its output.
/// Returns the exit status: 0 when the command succeeded, 1 when it failed
/// (or the history could not be used), 2 when there is no such pending
/// proposal.
pub async fn approve(id: i64, state: Option<PathBuf>) -> u8 {
    let state = match state_dir(state.as_deref()) {
        Ok(state) => state,
        Err(code) => return code,
    };
    match proposal::approve(&history_path(state.path()), id, &proposal::who()).await {
        Ok((record, result)) => {
            let p = &record.proposal;
            eprintln!(
                "retort: approved #{id}: {} for {}: running {}",
                p.action,
                p.fingerprint,
                shell_words(&p.argv)
            );
            crate::out(&result.stdout);
            eprint!("{}", result.stderr);
            if result.truncated {
                eprintln!(
                    "retort: output cut at {} bytes a stream",
                    retort_decide::action::OUTPUT_CAP
                );
            }
            eprintln!("retort: #{id} {}", result.summary());
            if result.outcome == CommandOutcome::Ok {
                0
            } else {
                EXIT_FAILED
            }
        }
        Err(error @ (ProposalError::NotFound(_) | ProposalError::NotPending { .. })) => {
            invalid(&error.to_string())
        }
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_FAILED
        }
    }
}
