//! `digestif completions SHELL` and `digestif man`: generated from the clap definition, so
//! they never disagree with `--help`.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// `digestif completions SHELL`: the completion script on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "digestif", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// `digestif man`: the manual page (roff) on stdout, subcommands included.
pub(crate) fn man() -> Result<ExitCode> {
    let command = Cli::command();
    let mut out = Vec::new();
    let io = |e| Error::io("write", std::path::Path::new("<stdout>"), e);
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .map_err(io)?;
    // Each command's own synopsis, description and options, as sections of the one page.
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("digestif {}", sub.get_name());
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let page = clap_mangen::Man::new(sub.clone().bin_name(name));
        page.render_synopsis_section(&mut out).map_err(io)?;
        page.render_description_section(&mut out).map_err(io)?;
        page.render_options_section(&mut out).map_err(io)?;
    }
    std::io::Write::write_all(&mut std::io::stdout(), &out).map_err(io)?;
    Ok(ExitCode::SUCCESS)
}
