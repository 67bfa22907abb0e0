//! The desktop app's settings, in `config.json` (see [`crate::paths`]):
//! the servers and identity the sign-in screen remembers, the sounds, do
//! not disturb, call waiting, the contacts, which media session an
//! accepted call starts, and for built-in voice the devices and how the
//! microphone is cleaned.
//!
//! Loading is tolerant, because a phone that will not start over a typo in
//! a settings file is worse than one with a default setting:
//! - a missing file gives the defaults;
//! - an unknown key is warned about in the log and ignored (a newer
//!   version may have written it);
//! - a key whose value is not valid falls back to its default while the
//!   other keys keep their values, and the user is told which one;
//! - a file that is not a JSON object at all is kept aside as
//!   `config.json.corrupt-<unix time>` and the app starts with the defaults,
//!   saying so.
//!
//! The servers are a list, `"servers": ["ws://a:7878/", "ws://b:7878/"]`
//! (nodes of one cluster, tried in turn: see [`ServerList`]). Files of
//! older versions name one server as `"server_url"`; it is still read
//! (a comma list in it too) when there is no `servers` key, and the file
//! is written back with `servers`.
//!
//! Saving is atomic (temp file + rename).

use crate::paths::{self, Paths};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The server the app uses when none is configured: the signaling server's
/// default listen address. When nothing listens there, the app hosts a
/// server on it in-process (see `app::embedded`).
pub const DEFAULT_SERVER_URL: &str = "ws://127.0.0.1:7878/";

/// The ringtone's volume when none is set, in percent.
pub const DEFAULT_VOLUME: u8 = 80;

/// Everything in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppConfig {
    /// The signaling servers, tried in turn; empty means
    /// [`DEFAULT_SERVER_URL`], hosted in-process when nothing answers there.
    pub servers: ServerList,
    /// Who we sign in as, remembered from the last sign-in.
    pub peer_id: String,
    /// The login token; empty for a server in open mode.
    pub token: String,
    /// This device's label, shown to callers' other devices.
    pub device: String,
    /// A sound file to ring with (any format rodio decodes); `None` is the
    /// built-in ringtone.
    pub ringtone: Option<PathBuf>,
    /// Volume of every tone, 0 to 100 percent.
    pub volume: u8,
    /// Whether a caller hears the ringback tone while the callee's phone rings.
    pub ringback: bool,
    /// Refuse every incoming call with `dnd`, without ringing; they land in
    /// the history as missed.
    pub do_not_disturb: bool,
    /// A call arriving during a call shows a second prompt with a short
    /// tone, instead of being refused as busy.
    pub call_waiting: bool,
    /// The people we call, in the order they were added.
    pub contacts: Vec<Contact>,
    /// What a call starts once it is accepted.
    pub media: MediaConfig,
    /// The microphone for built-in voice: a device name as the settings
    /// list shows it; empty is the system default.
    pub audio_input: String,
    /// The speaker for built-in voice; empty is the system default.
    pub audio_output: String,
    /// Built-in voice cancels the speaker's echo in the microphone; off
    /// for a headset, whose microphone hears no speaker.
    pub echo_cancellation: bool,
    /// Built-in voice removes steady background noise from the microphone.
    pub noise_suppression: bool,
    /// Built-in voice brings the microphone to a steady level.
    pub gain_control: bool,
    /// The desktop starts the phone at login (an XDG autostart entry,
    /// written and removed as this changes), so it rings with no window open.
    pub start_at_login: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            servers: ServerList::default(),
            peer_id: String::new(),
            token: String::new(),
            device: default_device_label(),
            ringtone: None,
            volume: DEFAULT_VOLUME,
            ringback: true,
            do_not_disturb: false,
            call_waiting: false,
            contacts: Vec::new(),
            media: MediaConfig::Voice,
            audio_input: String::new(),
            audio_output: String::new(),
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
            start_at_login: false,
        }
    }
}

/// The signaling servers of one deployment: a single server, or the nodes
/// of a cluster (docs/scale-out.md). The SDK connects to the first and,
/// when its connection goes away, to the next in turn. Empty is the
/// default server. Entries are trimmed and empty ones dropped, so a list
/// read back from the file is the list that was saved.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerList(Vec<String>);

impl ServerList {
    /// The servers of `entries`, trimmed, empty ones dropped.
    pub fn new<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> ServerList {
        let urls = entries.into_iter().map(|e| e.as_ref().trim().to_owned()).filter(|e| !e.is_empty());
        ServerList(urls.collect())
    }

    /// A comma list as `--server` and the forms write it: `ws://a:7878/, ws://b:7878/`.
    pub fn from_text(text: &str) -> ServerList {
        ServerList::new(text.split(','))
    }

    /// The comma list the forms show.
    pub fn to_text(&self) -> String {
        self.0.join(", ")
    }

    /// The configured servers, in the order they are tried.
    pub fn urls(&self) -> &[String] {
        &self.0
    }

    /// Whether none is configured, so the embedded default applies.
    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    /// A sentence for the user when an entry is not a WebSocket URL.
    pub fn check(&self) -> Result<(), String> {
        match self.0.iter().find(|u| !(u.starts_with("ws://") || u.starts_with("wss://"))) {
            None => Ok(()),
            Some(bad) if self.0.len() == 1 => {
                Err(format!("The server address starts with ws:// or wss:// (not {bad:?})."))
            }
            Some(bad) => Err(format!(
                "Each server address starts with ws:// or wss:// (not {bad:?}); separate them with commas."
            )),
        }
    }
}

/// Someone in the contact list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Whom to call (and whose presence to watch).
    pub peer_id: String,
    /// What to show instead of the peer id; empty shows the peer id.
    #[serde(default)]
    pub name: String,
}

impl Contact {
    /// The name to show.
    pub fn label(&self) -> &str {
        if self.name.trim().is_empty() { &self.peer_id } else { self.name.trim() }
    }
}

/// Which media session an accepted call starts (see [`crate::media_hook`]).
///
/// A fresh config gets [`MediaConfig::Voice`]; so does a config file
/// without a `media` key (older versions wrote one only once saved, and
/// an unset key takes the default like every other key). A file that
/// says `{"kind": "none"}` keeps it: that may have been chosen, and the
/// app cannot tell a choice from an old default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaConfig {
    /// The built-in voice: end-to-end encrypted audio through the server's relay.
    #[default]
    Voice,
    /// Nothing: the call screen shows the channel.
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

    /// The command line or URL template, as the settings screen edits it.
    pub fn template(&self) -> String {
        match self {
            MediaConfig::Voice | MediaConfig::None => String::new(),
            MediaConfig::Command { program, args } => std::iter::once(program.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            MediaConfig::Url { template } => template.clone(),
        }
    }
}

/// Why a config file could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not a JSON object (found {0})")]
    NotAnObject(&'static str),
}

/// A key of a config file that was set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// A key this version does not know; ignored.
    Unknown(String),
    /// A known key whose value is not valid; its default is used.
    Invalid { key: String, reason: String },
}

impl AppConfig {
    /// How built-in voice cleans the microphone, as these settings say.
    pub fn processing(&self) -> softphone_core::voice::ProcessingConfig {
        softphone_core::voice::ProcessingConfig {
            echo_cancellation: self.echo_cancellation,
            noise_suppression: self.noise_suppression,
            gain_control: self.gain_control,
        }
    }

    /// The volume as a rodio factor, 0.0 to 1.0.
    pub fn volume_factor(&self) -> f32 {
        f32::from(self.volume.min(100)) / 100.0
    }

    /// Reads the config at `paths`, tolerating every problem (see the module
    /// docs). The second value is a sentence for the user when something had
    /// to be set aside.
    pub fn load(paths: &Paths) -> (AppConfig, Option<String>) {
        load_from(&paths.config_file())
    }

    /// Reads a config from `bytes`: the config, and the keys that were set
    /// aside; an error when the bytes are not a JSON object at all.
    pub fn parse(bytes: &[u8]) -> Result<(AppConfig, Vec<FieldProblem>), ConfigError> {
        let value: Value = serde_json::from_slice(bytes)?;
        let Value::Object(map) = value else { return Err(ConfigError::NotAnObject(json_kind(&value))) };
        let mut config = AppConfig::default();
        let mut problems = Vec::new();
        // The older single-server key counts only in a file without the list.
        let legacy = if map.contains_key("servers") { None } else { map.get("server_url").cloned() };
        for (key, value) in map {
            if key == "server_url" {
                continue;
            }
            if let Err(reason) = config.set(&key, value) {
                problems.push(match reason {
                    None => FieldProblem::Unknown(key),
                    Some(reason) => FieldProblem::Invalid { key, reason },
                });
            }
        }
        if let Some(value) = legacy {
            match field::<String>(value) {
                Ok(text) => config.servers = ServerList::from_text(&text),
                Err(reason) => problems.push(FieldProblem::Invalid {
                    key: "server_url".into(),
                    reason: reason.unwrap_or_default(),
                }),
            }
        }
        Ok((config, problems))
    }

    /// Sets one key from its JSON value: `Err(None)` for an unknown key,
    /// `Err(Some(why))` for a bad value (the field keeps its default).
    fn set(&mut self, key: &str, value: Value) -> Result<(), Option<String>> {
        match key {
            "servers" => self.servers = ServerList::new(field::<Vec<String>>(value)?),
            "peer_id" => self.peer_id = field(value)?,
            "token" => self.token = field(value)?,
            "device" => self.device = field(value)?,
            "ringtone" => self.ringtone = field(value)?,
            "volume" => {
                let volume: u8 = field(value)?;
                if volume > 100 {
                    return Err(Some(format!("{volume} is above 100")));
                }
                self.volume = volume;
            }
            "ringback" => self.ringback = field(value)?,
            "do_not_disturb" => self.do_not_disturb = field(value)?,
            "call_waiting" => self.call_waiting = field(value)?,
            "contacts" => {
                // One bad entry drops that entry, not the whole list.
                let entries: Vec<Value> = field(value)?;
                let total = entries.len();
                self.contacts = entries.into_iter().filter_map(|e| serde_json::from_value(e).ok()).collect();
                if self.contacts.len() < total {
                    return Err(Some(format!(
                        "{} of {total} entries are not valid",
                        total - self.contacts.len()
                    )));
                }
            }
            "media" => self.media = field(value)?,
            "audio_input" => self.audio_input = field(value)?,
            "audio_output" => self.audio_output = field(value)?,
            "echo_cancellation" => self.echo_cancellation = field(value)?,
            "noise_suppression" => self.noise_suppression = field(value)?,
            "gain_control" => self.gain_control = field(value)?,
            "start_at_login" => self.start_at_login = field(value)?,
            _ => return Err(None),
        }
        Ok(())
    }

    /// Writes the config atomically.
    pub fn save(&self, paths: &Paths) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        paths::write_atomically(&paths.config_file(), &text)
    }
}

/// A field's value, or why it is not one.
fn field<T: DeserializeOwned>(value: Value) -> Result<T, Option<String>> {
    serde_json::from_value(value).map_err(|e| Some(e.to_string()))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn load_from(path: &Path) -> (AppConfig, Option<String>) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (AppConfig::default(), None),
        Err(source) => {
            let error = ConfigError::Read { path: path.to_owned(), source };
            tracing::warn!("{error}; using defaults");
            return (AppConfig::default(), Some(format!("Could not read the settings: {error}")));
        }
    };
    match AppConfig::parse(&bytes) {
        Ok((config, problems)) => {
            let mut invalid = Vec::new();
            for problem in problems {
                match problem {
                    FieldProblem::Unknown(key) => {
                        tracing::warn!("{}: unknown key {key:?} ignored", path.display())
                    }
                    FieldProblem::Invalid { key, reason } => {
                        tracing::warn!(
                            "{}: {key} is not valid ({reason}); its default is used",
                            path.display()
                        );
                        invalid.push(key);
                    }
                }
            }
            let note = (!invalid.is_empty()).then(|| {
                format!(
                    "Some settings were not valid and are back to their defaults: {}.",
                    invalid.join(", ")
                )
            });
            (config, note)
        }
        Err(error) => {
            let backup = paths::backup_path(path);
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
            (AppConfig::default(), Some(note))
        }
    }
}

/// The machine's name, as a default device label.
fn default_device_label() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_file = || std::fs::read_to_string("/etc/hostname").ok();
    from_env
        .or_else(from_file)
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() <= softphone_core::protocol::MAX_ID_BYTES)
        .unwrap_or_else(|| "desktop".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_command_line_splits_words_and_joins_back() {
        let media = MediaConfig::from_command_line("ffplay -i rtp://{channel}").unwrap();
        assert_eq!(
            media,
            MediaConfig::Command {
                program: "ffplay".into(),
                args: vec!["-i".into(), "rtp://{channel}".into()]
            }
        );
        assert_eq!(media.template(), "ffplay -i rtp://{channel}");
        assert_eq!(MediaConfig::from_command_line("  "), None);
    }

    #[test]
    fn a_bad_field_keeps_its_default_and_the_others_their_values() {
        let text = br#"{"peer_id": "bob", "volume": 300, "ringback": "yes", "call_waiting": true, "x": 1}"#;
        let (config, problems) = AppConfig::parse(text).unwrap();
        assert_eq!(config.peer_id, "bob");
        assert!(config.call_waiting);
        assert_eq!((config.volume, config.ringback), (DEFAULT_VOLUME, true));
        assert_eq!(problems.len(), 3);
        assert!(problems.contains(&FieldProblem::Unknown("x".into())));
    }

    #[test]
    fn servers_are_a_list_and_the_old_server_url_is_still_read() {
        let (config, problems) =
            AppConfig::parse(br#"{"servers": [" ws://a:1/", "", "ws://b:2/"]}"#).unwrap();
        assert_eq!(
            (config.servers.urls(), problems),
            (&["ws://a:1/".into(), "ws://b:2/".into()][..], vec![])
        );
        let (old, problems) = AppConfig::parse(br#"{"server_url": "ws://a:1/"}"#).unwrap();
        assert_eq!((old.servers, problems), (ServerList::new(["ws://a:1/"]), vec![]));
        let (commas, _) = AppConfig::parse(br#"{"server_url": "ws://a:1/, ws://b:2/"}"#).unwrap();
        assert_eq!(commas.servers, config.servers);
        // A file with both keys was written by this version: the list is the truth.
        let (both, _) =
            AppConfig::parse(br#"{"server_url": "ws://old/", "servers": ["ws://a:1/"]}"#).unwrap();
        assert_eq!(both.servers, ServerList::new(["ws://a:1/"]));
        let saved = String::from_utf8(serde_json::to_vec(&config).unwrap()).unwrap();
        assert!(saved.contains(r#""servers":["ws://a:1/","ws://b:2/"]"#), "{saved}");
        assert!(!saved.contains("server_url"), "{saved}");
    }

    #[test]
    fn a_bad_server_list_keeps_the_default_and_says_which_key() {
        let (config, problems) = AppConfig::parse(br#"{"servers": "ws://a:1/", "peer_id": "bob"}"#).unwrap();
        assert!(config.servers.is_default());
        assert_eq!(config.peer_id, "bob");
        assert!(matches!(&problems[..], [FieldProblem::Invalid { key, .. }] if key == "servers"));
        let (config, problems) = AppConfig::parse(br#"{"server_url": 7}"#).unwrap();
        assert!(config.servers.is_default());
        assert!(matches!(&problems[..], [FieldProblem::Invalid { key, .. }] if key == "server_url"));
    }

    #[test]
    fn a_server_list_reads_and_shows_as_a_comma_list_and_checks_each_entry() {
        let list = ServerList::from_text("ws://a:1/ ,, wss://b/");
        assert_eq!(list.urls(), ["ws://a:1/", "wss://b/"]);
        assert_eq!(list.to_text(), "ws://a:1/, wss://b/");
        assert_eq!(ServerList::from_text(&list.to_text()), list);
        assert!(list.check().is_ok());
        assert!(ServerList::from_text(" , ").is_default());
        assert!(ServerList::from_text("ws://a:1/, http://b").check().unwrap_err().contains("http://b"));
        assert!(ServerList::from_text("a:1").check().is_err());
    }

    #[test]
    fn not_an_object_is_a_typed_error() {
        assert!(matches!(AppConfig::parse(b"[1, 2]"), Err(ConfigError::NotAnObject("an array"))));
        assert!(matches!(AppConfig::parse(b"{\"peer_id\": "), Err(ConfigError::NotJson(_))));
    }
}
