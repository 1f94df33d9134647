//! What retort needs of the operating system, in one place for every stage.
//!
//! Owns: replacing a file atomically ([`atomic`]), ending a process group
//! with SIGTERM then SIGKILL ([`process`]), file-safe names ([`paths`]),
//! SIGINT, SIGTERM and SIGHUP turned into a value a run can wait for
//! ([`interrupt`]), random bits for unique names ([`random`]), durations as people read
//! them ([`duration`]), secrets replaced in everything retort writes or
//! sends ([`redact`]), and agent text made one clean, bounded line
//! ([`clean`]).
//!
//! In: paths, bytes, process-group ids, durations, signals. Out: `std::io::Result`s,
//! names, text. It knows nothing of formulas or runs; every other retort
//! crate may use it.

#![warn(missing_docs)]

pub mod atomic;
pub mod clean;
pub mod duration;
pub mod interrupt;
pub mod paths;
pub mod process;
pub mod random;
pub mod redact;
