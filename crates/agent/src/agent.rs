//! The agent a run talks to, whichever backend runs it: a tmux session
//! ([`crate::session`]) or one process per step ([`crate::headless`]).

use crate::headless::HeadlessAgent;
use crate::session::{AgentExit, AgentSession};

/// A session's agent, on its backend.
#[derive(Debug)]
pub enum Agent {
    /// In a tmux session, prompts pasted into its terminal.
    Tmux(AgentSession),
    /// A process per step, prompts on its standard input.
    Headless(HeadlessAgent),
}

impl Agent {
    /// How the agent ended, if it has (for the headless backend: the
    /// current step's process).
    pub fn agent_exit(&self) -> Option<AgentExit> {
        match self {
            Agent::Tmux(session) => session.agent_exit(),
            Agent::Headless(agent) => agent.agent_exit(),
        }
    }

    /// Waits until the agent is gone: its tmux pane's process, or the
    /// current step's process.
    pub async fn gone(&self) {
        match self {
            Agent::Tmux(session) => session.gone().await,
            Agent::Headless(agent) => agent.gone().await,
        }
    }

    /// Whether the agent's tmux session still exists (always, headless:
    /// its process is watched directly).
    pub async fn exists(&self) -> bool {
        match self {
            Agent::Tmux(session) => session.exists().await,
            Agent::Headless(_) => true,
        }
    }
}
