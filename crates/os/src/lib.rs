//! What retort needs of the operating system, in one place for every stage.
//!
//! Owns: replacing a file atomically ([`atomic`]), ending a process group
//! with SIGTERM then SIGKILL ([`process`]), and file-safe names and `~`
//! expansion ([`paths`]).
//!
//! In: paths, bytes, process-group ids. Out: `std::io::Result`s. It knows
//! nothing of formulas or runs; every other retort crate may use it.

#![warn(missing_docs)]

pub mod atomic;
pub mod paths;
pub mod process;
