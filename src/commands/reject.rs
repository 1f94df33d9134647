//! `retort reject`: close a proposed action without running it.

use std::path::PathBuf;

use retort_decide::decide::history_path;
use retort_decide::proposal::{self, ProposalError};

use super::state_dir;
use crate::{EXIT_FAILED, invalid};

/// Rejects proposal `id`, keeping `reason`. Returns the exit status: 0, 1
/// when the history could not be used, 2 when there is no such pending
/// proposal.
pub fn reject(id: i64, reason: Option<String>, state: Option<PathBuf>) -> u8 {
    let state = match state_dir(state.as_deref()) {
        Ok(state) => state,
        Err(code) => return code,
    };
    match proposal::reject(
        &history_path(state.path()),
        id,
        &proposal::who(),
        reason.as_deref(),
    ) {
        Ok(record) => {
            crate::out(&format!(
                "retort: rejected #{id}: {} for {}\n",
                record.proposal.action, record.proposal.fingerprint
            ));
            0
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
