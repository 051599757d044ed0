//! Recipes that run as written: the crontab lines and systemd units for *this*
//! installation (the binary's absolute path, the newsletter's folder, the file that holds
//! its secrets). Pure: the caller gives the values and writes the files.
//!
//! Cron runs commands with `PATH=/usr/bin:/bin` and almost no environment, so every path is
//! absolute and the secrets are read from an environment file (mode 0600) in the line
//! itself. systemd reads the same file with `EnvironmentFile=`.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Where the schedule runs.
#[derive(Debug, Clone)]
pub struct Installation {
    /// The digestif binary, absolute.
    pub binary: PathBuf,
    /// The newsletter's folder (where `digestif.toml` is), absolute.
    pub folder: PathBuf,
    /// The config file, absolute (passed with `--config`, so no search is needed).
    pub config: PathBuf,
    /// The file of secrets: `KEY=value` lines, mode 0600.
    pub env_file: PathBuf,
    /// The account a system-wide unit runs as; `None` for a user unit.
    pub user: Option<String>,
    /// The variables the env file must set (the unsubscribe secret, the SMTP password).
    pub secrets: Vec<String>,
    /// `serve` has a unit too (the config has an `unsubscribe_url`).
    pub serves: bool,
}

/// The name of the environment file, beside the config.
pub const ENV_FILE: &str = "digestif.env";

impl Installation {
    /// What `config` needs at run time: its secrets, and whether it serves.
    pub fn new(
        config: &Config,
        binary: PathBuf,
        config_path: PathBuf,
        user: Option<String>,
    ) -> Self {
        let folder = config_path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut secrets = Vec::new();
        if config.sender.uses_tokens() {
            secrets.push(config.sender.unsubscribe_secret_env.clone());
        }
        secrets.extend(config.smtp.password_env.clone());
        Installation {
            env_file: folder.join(ENV_FILE),
            binary,
            config: config_path,
            folder,
            user,
            secrets,
            serves: config.sender.unsubscribe_url.is_some(),
        }
    }

    /// The environment file as `--install` first writes it: each secret named, empty.
    pub fn env_template(&self) -> String {
        let mut text = String::from(
            "# Secrets for digestif, read by its cron line or systemd units. Keep this file\n\
             # mode 0600, and out of version control.\n",
        );
        for name in &self.secrets {
            text.push_str(&format!("{name}=\n"));
        }
        text
    }

    /// The crontab: the weekly send, and hourly retries of deferred readers the same day.
    pub fn crontab(&self) -> String {
        let run = self.cron_command();
        format!(
            "# digestif: every Monday at 07:00, send last week's digest; exit 75 means try\n\
             # again later, so the same command runs every hour until 20:30 (it does nothing\n\
             # once all is sent). Output goes to {log}.\n\
             0 7 * * 1  {run}\n\
             30 8-20 * * 1  {run}\n",
            log = self.log().display(),
        )
    }

    /// The command part of a crontab line: what `sh -c` runs, with cron's environment.
    pub fn cron_command(&self) -> String {
        let secrets = if self.secrets.is_empty() {
            String::new()
        } else {
            format!("set -a && . {} && set +a && ", quote(&self.env_file))
        };
        format!(
            "cd {} && {secrets}{} --config {} send >> {} 2>&1",
            quote(&self.folder),
            quote(&self.binary),
            quote(&self.config),
            quote(&self.log()),
        )
    }

    fn log(&self) -> PathBuf {
        self.folder.join("digestif.log")
    }

    /// The systemd units, as (file name, text).
    pub fn systemd_units(&self) -> Vec<(&'static str, String)> {
        let mut units = vec![
            ("digestif.service", self.send_service()),
            ("digestif.timer", TIMER.to_string()),
        ];
        if self.serves {
            units.push(("digestif-serve.service", self.serve_service()));
        }
        units
    }

    /// The `[Service]` lines every unit shares: who, where, which secrets, what it may
    /// write.
    fn common(&self) -> String {
        let mut lines = String::new();
        if let Some(user) = &self.user {
            lines.push_str(&format!("User={user}\n"));
        }
        lines.push_str(&format!("WorkingDirectory={}\n", self.folder.display()));
        if !self.secrets.is_empty() {
            lines.push_str(&format!(
                "# {} (mode 0600)\nEnvironmentFile={}\n",
                self.secrets
                    .iter()
                    .map(|s| format!("{s}=…"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                self.env_file.display()
            ));
        }
        lines
    }

    /// What a system-wide unit may touch: only the newsletter's folder.
    fn sandbox(&self) -> String {
        if self.user.is_none() {
            return String::new();
        }
        format!(
            "# It writes only the newsletter folder (state/ and subscribers.toml).\n\
             NoNewPrivileges=true\nProtectSystem=strict\nProtectHome=read-only\n\
             PrivateTmp=true\nReadWritePaths={}\n",
            self.folder.display()
        )
    }

    fn send_service(&self) -> String {
        format!(
            "# digestif: send the week's digest. Started by digestif.timer; retries itself while\n\
             # readers are deferred (exit 75), so they get the digest the same day.\n\
             [Unit]\nDescription=digestif weekly digest\nWants=network-online.target\n\
             After=network-online.target\n\
             # Up to 12 retries in 12 hours, then wait for next week's timer (or a manual run).\n\
             StartLimitIntervalSec=12h\nStartLimitBurst=13\n\n\
             [Service]\nType=oneshot\n{common}\
             ExecStart={bin} --config {config} send\n\
             # 75 (EX_TEMPFAIL): some readers deferred or the run was interrupted: try again in an hour.\n\
             # 1 (permanent failures), 2 (invalid input) and 3 (another send running) need a person, or\n\
             # nothing at all: no retry.\n\
             Restart=on-failure\nRestartSec=1h\nRestartPreventExitStatus=1 2 3\n\
             # Let a send finish the messages in flight when stopped (SIGTERM), then record them.\n\
             TimeoutStopSec=5min\n{sandbox}",
            common = self.common(),
            bin = self.binary.display(),
            config = self.config.display(),
            sandbox = self.sandbox(),
        )
    }

    fn serve_service(&self) -> String {
        let target = if self.user.is_some() {
            "multi-user.target"
        } else {
            "default.target"
        };
        format!(
            "# digestif serve: the one-click unsubscribe endpoint behind sender.unsubscribe_url. It\n\
             # listens on loopback only; nginx or Caddy in front terminates TLS.\n\
             [Unit]\nDescription=digestif unsubscribe endpoint\nAfter=network.target\n\n\
             [Service]\n{common}\
             ExecStart={bin} --config {config} serve --listen 127.0.0.1:8025\n\
             Restart=always\nRestartSec=2s\n{sandbox}\n\
             [Install]\nWantedBy={target}\n",
            common = self.common(),
            bin = self.binary.display(),
            config = self.config.display(),
            sandbox = self.sandbox(),
        )
    }
}

/// Every Monday at 07:00, and at the next boot (or login, for a user timer) if missed.
const TIMER: &str = "# Every Monday at 07:00 (the machine's time zone), and at the next start if that was missed.\n\
[Unit]\nDescription=Send the weekly digest\n\n\
[Timer]\nOnCalendar=Mon *-*-* 07:00\nPersistent=true\n\n\
[Install]\nWantedBy=timers.target\n";

/// A path for `sh`: single-quoted, with any `'` closed, escaped and reopened.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation(user: Option<&str>, secrets: &[&str]) -> Installation {
        Installation {
            binary: "/usr/local/bin/digestif".into(),
            folder: "/srv/it's mine".into(),
            config: "/srv/it's mine/digestif.toml".into(),
            env_file: "/srv/it's mine/digestif.env".into(),
            user: user.map(String::from),
            secrets: secrets.iter().map(ToString::to_string).collect(),
            serves: true,
        }
    }

    #[test]
    fn the_cron_line_names_every_path_and_reads_the_secrets_itself() {
        let i = installation(None, &["DIGESTIF_UNSUBSCRIBE_SECRET"]);
        assert_eq!(
            i.cron_command(),
            "cd '/srv/it'\\''s mine' && set -a && . '/srv/it'\\''s mine/digestif.env' && set +a && \
             '/usr/local/bin/digestif' --config '/srv/it'\\''s mine/digestif.toml' send >> \
             '/srv/it'\\''s mine/digestif.log' 2>&1"
        );
        let none = installation(None, &[]);
        assert!(
            !none.cron_command().contains(". "),
            "no secrets, no env file"
        );
    }

    #[test]
    fn a_user_unit_has_no_user_and_no_sandbox_a_system_unit_both() {
        let user = installation(None, &["S"]).systemd_units();
        assert!(!user[0].1.contains("User=") && !user[0].1.contains("ProtectSystem"));
        assert!(user[2].1.ends_with("WantedBy=default.target\n"));
        let system = installation(Some("digestif"), &["S"]).systemd_units();
        assert!(system[0].1.contains("User=digestif\n"));
        assert!(system[0].1.contains("ReadWritePaths=/srv/it's mine\n"));
        assert!(system[2].1.ends_with("WantedBy=multi-user.target\n"));
    }
}
