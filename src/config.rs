//! The desktop app's settings: what the sign-in screen remembers and which
//! media session a call starts, in `config.toml` (see [`crate::paths`]).
//!
//! Loading is tolerant: a missing file gives the defaults, unknown keys are
//! ignored, a missing key takes its default, and a file that cannot be read
//! as TOML is kept aside as `config.toml.corrupt-<unix time>` and the app
//! starts with the defaults, saying so. Saving is atomic.

use crate::paths::{self, Paths};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The server the app uses when none is configured: the signaling server's
/// default listen address. When nothing listens there, the app hosts a
/// server on it in-process (see `app::embedded`).
pub const DEFAULT_SERVER_URL: &str = "ws://127.0.0.1:7878/";

/// Everything in `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The signaling server; empty means [`DEFAULT_SERVER_URL`], hosted
    /// in-process when nothing answers there.
    pub server_url: String,
    /// Who we sign in as, remembered from the last sign-in.
    pub peer_id: String,
    /// The login token; empty for a server in open mode.
    pub token: String,
    /// This device's label, shown to callers' other devices.
    pub device: String,
    /// What a call starts once it is accepted.
    pub media: MediaConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_url: String::new(),
            peer_id: String::new(),
            token: String::new(),
            device: default_device_label(),
            media: MediaConfig::None,
        }
    }
}

/// Which media session an accepted call starts (see [`crate::media`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaConfig {
    /// Nothing: the call screen shows the channel.
    #[default]
    None,
    /// Runs `program args...` with `{channel}`, `{peer}`, `{role}` and
    /// `{call_id}` substituted in the arguments; stopped at hang-up.
    Command {
        program: String,
        #[serde(default)]
        args: Vec<String>,
    },
    /// Opens `template` (e.g. `https://meet.example.org/{channel}`) with the
    /// desktop's opener.
    Url { template: String },
}

impl MediaConfig {
    /// A command line as `--media-command` gives it: words split on white
    /// space (no quoting), the first being the program.
    pub fn from_command_line(line: &str) -> Option<MediaConfig> {
        let mut words = line.split_whitespace().map(str::to_owned);
        let program = words.next()?;
        Some(MediaConfig::Command { program, args: words.collect() })
    }
}

impl Config {
    /// The server URL to use: the configured one, or the default.
    pub fn effective_server_url(&self) -> &str {
        if self.server_url.trim().is_empty() { DEFAULT_SERVER_URL } else { self.server_url.trim() }
    }

    /// Whether no server is configured, so the embedded default applies.
    pub fn uses_default_server(&self) -> bool {
        self.server_url.trim().is_empty()
    }

    /// Reads the config at `paths`, tolerating every problem (see the module
    /// docs). The second value is a sentence for the user when something had
    /// to be set aside.
    pub fn load(paths: &Paths) -> (Config, Option<String>) {
        load_from(&paths.config_file())
    }

    /// Writes the config atomically.
    pub fn save(&self, paths: &Paths) -> std::io::Result<()> {
        let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
        paths::write_atomically(&paths.config_file(), text.as_bytes())
    }
}

fn load_from(path: &Path) -> (Config, Option<String>) {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Config::default(), None),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}; using defaults", path.display());
            return (Config::default(), Some(format!("Could not read {}: {e}", path.display())));
        }
    };
    let parsed = std::str::from_utf8(&text)
        .map_err(|e| e.to_string())
        .and_then(|t| toml::from_str::<Config>(t).map_err(|e| e.to_string()));
    match parsed {
        Ok(config) => (config, None),
        Err(error) => {
            let backup = backup_path(path);
            let kept = std::fs::rename(path, &backup).is_ok();
            tracing::warn!("config {} is not valid ({error}); kept as {}", path.display(), backup.display());
            let note = if kept {
                format!(
                    "The settings file was damaged; it was kept as {} and defaults are used.",
                    backup.display()
                )
            } else {
                format!("The settings file {} is damaged; defaults are used.", path.display())
            };
            (Config::default(), Some(note))
        }
    }
}

fn backup_path(path: &Path) -> PathBuf {
    let secs = crate::token::unix_now();
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".corrupt-{secs}"));
    path.with_file_name(name)
}

/// The machine's name, as a default device label.
fn default_device_label() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_file = || std::fs::read_to_string("/etc/hostname").ok();
    from_env
        .or_else(from_file)
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= crate::protocol::MAX_ID_BYTES)
        .unwrap_or_else(|| "desktop".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_paths() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path().to_owned());
        (dir, paths)
    }

    #[test]
    fn missing_file_gives_defaults_silently() {
        let (_dir, paths) = temp_paths();
        let (config, note) = Config::load(&paths);
        assert_eq!(config, Config::default());
        assert!(note.is_none());
        assert_eq!(config.effective_server_url(), DEFAULT_SERVER_URL);
    }

    #[test]
    fn save_then_load_round_trips() {
        let (_dir, paths) = temp_paths();
        let config = Config {
            server_url: "ws://example.org:7878/".into(),
            peer_id: "alice".into(),
            token: "t".into(),
            device: "laptop".into(),
            media: MediaConfig::Command { program: "echo".into(), args: vec!["{channel}".into()] },
        };
        config.save(&paths).unwrap();
        assert_eq!(Config::load(&paths), (config, None));
    }

    #[test]
    fn corrupt_file_is_kept_aside_and_defaults_apply() {
        let (_dir, paths) = temp_paths();
        std::fs::create_dir_all(&paths.config_dir).unwrap();
        std::fs::write(paths.config_file(), "peer_id = [unclosed").unwrap();
        let (config, note) = Config::load(&paths);
        assert_eq!(config, Config::default());
        assert!(note.unwrap().contains("damaged"));
        assert!(!paths.config_file().exists());
        let backups: Vec<_> = std::fs::read_dir(&paths.config_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("config.toml.corrupt-"))
            .collect();
        assert_eq!(backups.len(), 1);
    }

    #[test]
    fn unknown_and_missing_keys_are_tolerated() {
        let (_dir, paths) = temp_paths();
        std::fs::create_dir_all(&paths.config_dir).unwrap();
        std::fs::write(paths.config_file(), "peer_id = \"bob\"\nfuture_key = 3\n[media]\nkind = \"url\"\ntemplate = \"https://m/{channel}\"\n").unwrap();
        let (config, note) = Config::load(&paths);
        assert!(note.is_none());
        assert_eq!(config.peer_id, "bob");
        assert_eq!(config.media, MediaConfig::Url { template: "https://m/{channel}".into() });
    }

    #[test]
    fn media_command_line_splits_words() {
        assert_eq!(
            MediaConfig::from_command_line("ffplay -i rtp://{channel}"),
            Some(MediaConfig::Command {
                program: "ffplay".into(),
                args: vec!["-i".into(), "rtp://{channel}".into()]
            })
        );
        assert_eq!(MediaConfig::from_command_line("  "), None);
    }
}
