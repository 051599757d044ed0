//! `digestif schedule`: the crontab or systemd units of [`crate::schedule`] for this
//! installation, printed, or written with `--install`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::ScheduleArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::schedule::Installation;

/// `digestif schedule`.
pub(crate) fn run(config_path: &Path, args: &ScheduleArgs) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let config_path = absolute(config_path)?;
    let binary = match &args.binary {
        Some(path) => absolute(path)?,
        None => std::env::current_exe()
            .map_err(|e| Error::io("find", Path::new("the digestif binary"), e))?,
    };
    let user = if args.systemd && !args.user {
        Some(match &args.run_as {
            Some(name) => name.clone(),
            None => owner_of(config_path.parent().unwrap_or(Path::new("/")))?,
        })
    } else {
        None
    };
    let installation = Installation::new(&config, binary, config_path, user);
    if args.cron {
        cron(&installation, args.install)
    } else {
        systemd(&installation, args)
    }
}

/// The crontab, printed, or written beside the config with the environment file.
fn cron(installation: &Installation, install: bool) -> Result<ExitCode> {
    let crontab = installation.crontab();
    if !install {
        emit!("{}", crontab.trim_end());
        note_secrets(installation);
        return Ok(ExitCode::SUCCESS);
    }
    write_env_file(installation)?;
    let path = installation.folder.join("digestif.crontab");
    fsutil::write_public(&path, crontab.as_bytes())?;
    say!("wrote {}", path.display());
    say!(
        "add it to your crontab: (crontab -l 2>/dev/null; cat {}) | crontab -",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The units, printed with where they go, or written there.
fn systemd(installation: &Installation, args: &ScheduleArgs) -> Result<ExitCode> {
    let dir = units_dir(args.user)?;
    let units = installation.systemd_units();
    if !args.install {
        for (name, text) in &units {
            emit!("# {}\n{}", dir.join(name).display(), text);
        }
        note_secrets(installation);
        return Ok(ExitCode::SUCCESS);
    }
    write_env_file(installation)?;
    fsutil::create_dir_all(&dir)?;
    for (name, text) in &units {
        let path = dir.join(name);
        fsutil::write_public(&path, text.as_bytes())?;
        say!("wrote {}", path.display());
    }
    let ctl = if args.user {
        "systemctl --user"
    } else {
        "systemctl"
    };
    say!("then: {ctl} daemon-reload && {ctl} enable --now digestif.timer");
    if installation.serves {
        say!("and:  {ctl} enable --now digestif-serve.service");
    }
    if args.user {
        say!("so that the timer runs when you are not logged in: loginctl enable-linger");
    }
    Ok(ExitCode::SUCCESS)
}

/// Where units go: `~/.config/systemd/user` (or `$XDG_CONFIG_HOME/systemd/user`), or
/// `/etc/systemd/system`.
fn units_dir(user: bool) -> Result<PathBuf> {
    if !user {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Error::Usage(
                    "--user: neither XDG_CONFIG_HOME nor HOME is set, so there is no user \
                     unit folder"
                        .into(),
                ))
            }
        },
    };
    Ok(config.join("systemd/user"))
}

/// The environment file with each secret named and empty (mode 0600), unless it exists.
fn write_env_file(installation: &Installation) -> Result<()> {
    let path = &installation.env_file;
    if installation.secrets.is_empty() || path.exists() {
        return Ok(());
    }
    fsutil::write_atomic(path, installation.env_template().as_bytes())?;
    say!(
        "wrote {} (mode 0600): set {} there",
        path.display(),
        installation.secrets.join(" and ")
    );
    Ok(())
}

/// Say which secrets the environment file must hold, when it does not exist yet.
fn note_secrets(installation: &Installation) {
    if !installation.secrets.is_empty() && !installation.env_file.exists() {
        warn!(
            "{} does not exist: create it (mode 0600) with {}, or run this again with --install",
            installation.env_file.display(),
            installation
                .secrets
                .iter()
                .map(|s| format!("{s}=…"))
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("resolve", path, e))
}

/// The account that owns `folder`: the one that can write the newsletter's state.
fn owner_of(folder: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(folder)
        .map_err(|e| Error::io("read", folder, e))?
        .uid();
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once,
    // before any other call could reuse that storage.
    let name = unsafe {
        let entry = libc::getpwuid(uid);
        if entry.is_null() {
            None
        } else {
            Some(
                std::ffi::CStr::from_ptr((*entry).pw_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    };
    name.ok_or_else(|| {
        Error::Usage(format!(
            "{}: its owner (uid {uid}) has no account name; say which account runs the units \
             with --run-as NAME",
            folder.display()
        ))
    })
}
