//! Command handlers: each loads what its command needs, calls the stages, prints.

pub mod send;
pub mod status;
pub mod subscribers;
