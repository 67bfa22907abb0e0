//! Where the desktop app keeps its files, and how it writes them.
//!
//! `SOFTPHONE_HOME=DIR` puts everything under `DIR` (tests, portable use);
//! otherwise the `directories` crate picks each platform's usual places
//! (`~/.config/softphone` and `~/.local/share/softphone` on Linux).
//! Every file is written atomically: a reader, or a crash half-way, never
//! sees a half-written config.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The environment variable that overrides every location.
pub const HOME_VAR: &str = "SOFTPHONE_HOME";

/// The folders the app uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Holds `config.json`.
    pub config_dir: PathBuf,
    /// Holds what the app records for itself: the call history.
    pub data_dir: PathBuf,
    /// Where the desktop looks for programs to start at login (XDG
    /// autostart: `$XDG_CONFIG_HOME/autostart`, `~/.config/autostart`).
    pub autostart_dir: PathBuf,
}

impl Paths {
    /// The folders for this process: `SOFTPHONE_HOME` when set, else the
    /// platform's; falls back to `./softphone` when the platform has no home.
    pub fn from_env() -> Paths {
        if let Some(home) = std::env::var_os(HOME_VAR).filter(|h| !h.is_empty()) {
            return Paths::under(PathBuf::from(home));
        }
        match directories::ProjectDirs::from("org", "softphone", "softphone") {
            Some(dirs) => Paths {
                config_dir: dirs.config_dir().to_owned(),
                data_dir: dirs.data_dir().to_owned(),
                autostart_dir: autostart_dir(
                    std::env::var_os("XDG_CONFIG_HOME"),
                    directories::BaseDirs::new().map(|b| b.home_dir().to_owned()),
                ),
            },
            None => Paths::under(PathBuf::from("softphone")),
        }
    }

    /// Everything under one folder, as `SOFTPHONE_HOME` asks.
    pub fn under(home: PathBuf) -> Paths {
        Paths {
            config_dir: home.join("config"),
            data_dir: home.join("data"),
            autostart_dir: home.join("autostart"),
        }
    }

    /// The XDG autostart entry that starts the phone at login.
    pub fn autostart_file(&self) -> PathBuf {
        self.autostart_dir.join("softphone.desktop")
    }

    /// The config file.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.json")
    }

    /// The secret of the server the app hosts on the default address, and
    /// mints its tokens from: the same for every instance of this user.
    pub fn server_secret_file(&self) -> PathBuf {
        self.data_dir.join("server-secret")
    }

    /// The call history, one JSON object a line.
    pub fn history_file(&self) -> PathBuf {
        self.data_dir.join("history.jsonl")
    }
}

/// `$XDG_CONFIG_HOME/autostart` (an absolute `XDG_CONFIG_HOME` only, as
/// the spec says), else `~/.config/autostart`.
fn autostart_dir(xdg_config_home: Option<std::ffi::OsString>, home: Option<PathBuf>) -> PathBuf {
    let config_home = xdg_config_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"));
    config_home.join("autostart")
}

/// Where a damaged `path` is kept aside: `NAME.corrupt-<unix time>` beside
/// it (a number appended when that name is taken, so no backup is lost).
pub fn backup_path(path: &Path) -> PathBuf {
    let secs = softphone_core::clock::unix_secs();
    let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let mut candidate = path.with_file_name(format!("{name}.corrupt-{secs}"));
    let mut n = 1;
    while candidate.exists() {
        n += 1;
        candidate = path.with_file_name(format!("{name}.corrupt-{secs}-{n}"));
    }
    candidate
}

/// Writes `bytes` to `path` so that the file holds either its old content or
/// the new one, never a mix: a temporary file beside it, synced, renamed over.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // The pid keeps two instances writing at once from sharing a temp file.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_puts_everything_under_one_folder() {
        let paths = Paths::under(PathBuf::from("/x"));
        assert_eq!(paths.config_file(), PathBuf::from("/x/config/config.json"));
        assert_eq!(paths.data_dir, PathBuf::from("/x/data"));
        assert_eq!(paths.autostart_file(), PathBuf::from("/x/autostart/softphone.desktop"));
    }

    #[test]
    fn the_autostart_folder_honours_xdg_config_home() {
        let home = Some(PathBuf::from("/home/a"));
        assert_eq!(autostart_dir(Some("/cfg".into()), home.clone()), PathBuf::from("/cfg/autostart"));
        assert_eq!(autostart_dir(None, home.clone()), PathBuf::from("/home/a/.config/autostart"));
        // A relative XDG_CONFIG_HOME is invalid and ignored, as the spec says.
        assert_eq!(autostart_dir(Some("rel".into()), home), PathBuf::from("/home/a/.config/autostart"));
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file itself remains");
    }
}
