//! Command handlers, one file per command: each loads what its command needs, calls the
//! stages, prints, and returns the exit status. The only modules that print or read the
//! clock.

pub mod archive;
pub mod check;
pub mod preview;
pub mod send;
pub mod status;
pub mod subscribers;
pub mod unsubscribe;
pub mod weeks;
