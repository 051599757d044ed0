//! `digestif completions SHELL` and `digestif man`: generated from the clap definition, so
//! they never disagree with `--help`; with `--install`, written where the shell and `man`
//! look for them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::fsutil;

/// `digestif completions SHELL [--install]`.
pub(crate) fn completions(shell: Shell, install: bool) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "digestif", &mut script);
    if !install {
        return write_stdout(&script);
    }
    let path = completion_path(shell)?;
    fsutil::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    fsutil::write_public(&path, &script)?;
    say!("wrote {} (new shells load it)", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Where a shell loads completions by itself: bash-completion's and fish's user folders.
fn completion_path(shell: Shell) -> Result<PathBuf> {
    match shell {
        Shell::Bash => {
            Ok(xdg("XDG_DATA_HOME", ".local/share")?.join("bash-completion/completions/digestif"))
        }
        Shell::Fish => {
            Ok(xdg("XDG_CONFIG_HOME", ".config")?.join("fish/completions/digestif.fish"))
        }
        other => Err(Error::Usage(format!(
            "completions {other} --install: {other} has no folder it always loads; print the \
             script and put it where your shell looks (zsh: a folder in $fpath, as _digestif)"
        ))),
    }
}

/// An XDG base folder: `$VAR`, else `$HOME/default`.
fn xdg(var: &str, default: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(default)),
        None => Err(Error::Usage(format!(
            "--install: neither {var} nor HOME is set, so there is no folder to install into"
        ))),
    }
}

/// `digestif man [--install]`: the manual page (roff), subcommands included.
pub(crate) fn man(install: bool) -> Result<ExitCode> {
    let command = Cli::command();
    let mut out = Vec::new();
    let io = |e| Error::io("write", Path::new("<stdout>"), e);
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
    if !install {
        return write_stdout(&out);
    }
    let path = man_path()?;
    fsutil::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    fsutil::write_public(&path, &out)?;
    say!("wrote {} (`man digestif` finds it)", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `share/man/man1/digestif.1` beside the binary's `bin` folder: man-db looks there for
/// every folder of `PATH` (`~/.cargo/bin` → `~/.cargo/share/man`, `/usr/local/bin` →
/// `/usr/local/share/man`), so no `MANPATH` is needed.
fn man_path() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find", Path::new("the digestif binary"), e))?;
    let bin = exe.parent().unwrap_or(Path::new("/usr/local/bin"));
    let prefix = bin.parent().unwrap_or(Path::new("/usr/local"));
    Ok(prefix.join("share/man/man1/digestif.1"))
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    std::io::Write::write_all(&mut std::io::stdout(), bytes)
        .map_err(|e| Error::io("write", Path::new("<stdout>"), e))?;
    Ok(ExitCode::SUCCESS)
}
