//! Command-line interface (clap derive). Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::digest::Week;

/// Turn a folder of Markdown posts into a weekly email digest, and send it.
#[derive(Debug, Parser)]
#[command(name = "digestif", version, about, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// Configuration file [default: ./digestif.toml]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "DIGESTIF_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    /// Pretend the current time is this RFC 3339 instant (for testing schedules)
    #[arg(
        long,
        global = true,
        env = "DIGESTIF_NOW",
        hide = true,
        value_name = "RFC3339"
    )]
    pub now: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  digestif check                      validate config, posts and subscribers
  digestif weeks                      list the weeks that have posts
  digestif preview                    write preview/<week>.{html,txt,eml} for the latest week
  digestif preview --week 2011-W52 --out /tmp/p

Exit codes: 0 success, 1 some messages failed permanently, 2 invalid input or usage,
3 another digestif holds the lock, 75 temporary failure (run again later).";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the HTML, text and .eml of one week's digest for a person to look at
    #[command(
        after_help = "Examples:\n  digestif preview\n  digestif preview --week 2011-W52 --out /tmp/preview"
    )]
    Preview {
        /// ISO week such as 2011-W52 [default: the latest week with published posts]
        #[arg(long, value_name = "YYYY-Www")]
        week: Option<Week>,
        /// Folder for the preview files
        #[arg(long, default_value = "preview", value_name = "DIR")]
        out: PathBuf,
    },
    /// List the weeks that have published posts, newest first, with counts per category
    #[command(after_help = "Example:\n  digestif weeks")]
    Weeks,
    /// Validate the config, every post and the subscribers file; report every problem
    #[command(after_help = "Example:\n  digestif check && echo ready")]
    Check,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
