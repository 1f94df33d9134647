//! SIGINT, SIGTERM and SIGHUP as a value a run waits for, in every phase.
//!
//! By default these signals end a process at once: no phase file, no
//! journal entry, children left running. [`Interrupt::listen`] replaces
//! that for the whole process: the first of them received is kept
//! ([`Interrupt::received`]) and wakes every [`Interrupt::wait`], so that
//! whatever the run is doing (its preflight commands, an auto action, its
//! agents) ends its own process groups and the run records where it
//! stopped. A second signal is kept as well but changes nothing: the run
//! is already ending.
//!
//! Listeners made with tokio's `signal` all receive every signal, so other
//! listeners of the same process (the agent phase's) keep working.

use std::fmt;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A signal that asks retort to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// SIGINT (2): Ctrl-C.
    Interrupt,
    /// SIGTERM (15): `kill`, `systemctl stop`, `timeout`.
    Terminate,
    /// SIGHUP (1): the terminal went away.
    Hangup,
}

impl Interruption {
    /// `SIGINT`, `SIGTERM` or `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Interruption::Interrupt => "SIGINT",
            Interruption::Terminate => "SIGTERM",
            Interruption::Hangup => "SIGHUP",
        }
    }

    /// The signal's number on Linux (signal(7)): 2, 15 or 1.
    pub fn number(self) -> u8 {
        match self {
            Interruption::Interrupt => 2,
            Interruption::Terminate => 15,
            Interruption::Hangup => 1,
        }
    }

    /// The exit status of a process ended by this signal, as the shell
    /// reports it: 128 + its number (130, 143, 129).
    pub fn exit_code(self) -> u8 {
        128 + self.number()
    }
}

impl fmt::Display for Interruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The process's interruption, shared by everything one run does: cheap
/// to clone, every clone sees the same signal.
#[derive(Debug, Clone)]
pub struct Interrupt {
    received: watch::Receiver<Option<Interruption>>,
}

impl Interrupt {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP on the current
    /// tokio runtime (which must have its signal driver: `enable_all`);
    /// from now on these signals no longer end the process by themselves.
    /// A signal that cannot be listened for keeps its default action.
    pub fn listen() -> Interrupt {
        let (sender, received) = watch::channel(None);
        let mut streams: Vec<_> = [
            (SignalKind::interrupt(), Interruption::Interrupt),
            (SignalKind::terminate(), Interruption::Terminate),
            (SignalKind::hangup(), Interruption::Hangup),
        ]
        .into_iter()
        .filter_map(|(kind, which)| signal(kind).ok().map(|stream| (stream, which)))
        .collect();
        tokio::spawn(async move {
            loop {
                let next = next_signal(&mut streams).await;
                let Some(which) = next else { return };
                // The first signal is the one that counts.
                sender.send_if_modified(|slot| {
                    let first = slot.is_none();
                    if first {
                        *slot = Some(which);
                    }
                    first
                });
            }
        });
        Interrupt { received }
    }

    /// An interruption that never comes (libraries, tests, dry runs).
    pub fn never() -> Interrupt {
        let (_sender, received) = watch::channel(None);
        Interrupt { received }
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<Interruption> {
        *self.received.borrow()
    }

    /// Waits for the first signal (at once when one was received already);
    /// never completes for [`Interrupt::never`].
    pub async fn wait(&self) -> Interruption {
        let mut received = self.received.clone();
        let which = match received.wait_for(Option::is_some).await {
            Ok(which) => *which,
            Err(_) => None,
        };
        match which {
            Some(which) => which,
            None => std::future::pending().await,
        }
    }
}

/// The next signal of any of `streams`; none when every stream has ended.
async fn next_signal(
    streams: &mut [(tokio::signal::unix::Signal, Interruption)],
) -> Option<Interruption> {
    std::future::poll_fn(|cx| {
        let mut open = false;
        for (stream, which) in streams.iter_mut() {
            match stream.poll_recv(cx) {
                std::task::Poll::Ready(Some(())) => return std::task::Poll::Ready(Some(*which)),
                std::task::Poll::Ready(None) => {}
                std::task::Poll::Pending => open = true,
            }
        }
        match open {
            true => std::task::Poll::Pending,
            false => std::task::Poll::Ready(None),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_ends_as_the_shell_reports_it() {
        assert_eq!(Interruption::Terminate.exit_code(), 143);
        assert_eq!(Interruption::Interrupt.exit_code(), 130);
        assert_eq!(Interruption::Hangup.exit_code(), 129);
        assert_eq!(Interruption::Hangup.to_string(), "SIGHUP");
    }

    #[tokio::test]
    async fn never_is_never_received() {
        let interrupt = Interrupt::never();
        assert_eq!(interrupt.received(), None);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), interrupt.wait()).await;
        assert!(waited.is_err());
    }
}
