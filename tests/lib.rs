//! The single integration-test binary: end-to-end runs of the `digestif` executable.

mod architecture;
mod archive;
mod browser;
mod cdp;
mod cli;
mod dkim;
mod envelope;
mod feeds;
mod generators;
mod harness;
mod inbox;
mod join;
mod postfix;
mod prefs;
mod preview;
mod privacy;
mod recipes;
mod repair;
mod send;
mod serve;
mod smtp;
mod sources;
mod spam;
mod stop;
mod subscribers;
mod walkthrough;
