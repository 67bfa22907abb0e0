//! The app's files on disk: `config.json` and `history.jsonl` written and
//! read back, and loaded tolerantly when damaged or partial. Real files in
//! temp folders.

use softphone_app::call_history::{Direction, History, HistoryEntry, Outcome};
use softphone_app::config::{AppConfig, Contact, MediaConfig, ServerList};
use softphone_app::paths::Paths;
use std::path::Path;

fn temp_paths() -> (tempfile::TempDir, Paths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::under(dir.path().to_owned());
    (dir, paths)
}

/// The names of the files in `dir` that start with `prefix`.
fn files_starting(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn config_missing_gives_defaults_silently() {
    let (_dir, paths) = temp_paths();
    let (config, note) = AppConfig::load(&paths);
    assert_eq!(config, AppConfig::default());
    assert!(note.is_none());
    assert!(config.ringback && !config.do_not_disturb && !config.call_waiting, "the defaults");
}

#[test]
fn config_round_trips_through_json() {
    let (_dir, paths) = temp_paths();
    let config = AppConfig {
        servers: ServerList::new(["ws://example.org:7878/", "ws://example.org:7879/"]),
        peer_id: "alice".into(),
        token: "t".into(),
        device: "laptop".into(),
        ringtone: Some("/usr/share/sounds/ring.ogg".into()),
        volume: 35,
        ringback: false,
        do_not_disturb: true,
        call_waiting: true,
        contacts: vec![Contact { peer_id: "bob".into(), name: "Bob B.".into() }],
        media: MediaConfig::Command { program: "echo".into(), args: vec!["{channel}".into()] },
        audio_input: "Headset mic".into(),
        audio_output: String::new(),
        echo_cancellation: false,
        noise_suppression: true,
        gain_control: false,
        start_at_login: true,
    };
    config.save(&paths).unwrap();
    assert_eq!(paths.config_file().file_name().unwrap(), "config.json");
    let text = std::fs::read_to_string(paths.config_file()).unwrap();
    assert!(text.contains("\"call_waiting\": true"), "people can read and edit it: {text}");
    assert_eq!(AppConfig::load(&paths), (config, None));
    assert_eq!(files_starting(&paths.config_dir, ".").len(), 0, "no temp file left behind");
}

#[test]
fn built_in_voice_is_the_default_media_and_an_explicit_none_is_kept() {
    let (_dir, paths) = temp_paths();
    assert_eq!(AppConfig::default().media, MediaConfig::Voice, "a fresh config gets voice");
    std::fs::create_dir_all(&paths.config_dir).unwrap();
    // An old file without a media key takes the default like any unset key.
    std::fs::write(paths.config_file(), r#"{"peer_id": "bob"}"#).unwrap();
    assert_eq!(AppConfig::load(&paths).0.media, MediaConfig::Voice);
    // One that says none keeps none: the app cannot tell it was not chosen.
    std::fs::write(paths.config_file(), r#"{"peer_id": "bob", "media": {"kind": "none"}}"#).unwrap();
    assert_eq!(AppConfig::load(&paths).0.media, MediaConfig::None);
    std::fs::write(paths.config_file(), r#"{"media": {"kind": "voice"}, "audio_input": "USB mic"}"#).unwrap();
    let (config, note) = AppConfig::load(&paths);
    assert_eq!((config.media, config.audio_input.as_str(), note), (MediaConfig::Voice, "USB mic", None));
}

#[test]
fn config_corrupt_is_kept_aside_and_the_defaults_apply() {
    let (_dir, paths) = temp_paths();
    std::fs::create_dir_all(&paths.config_dir).unwrap();
    std::fs::write(paths.config_file(), "{\"peer_id\": \"bob\", ").unwrap();
    let (config, note) = AppConfig::load(&paths);
    assert_eq!(config, AppConfig::default());
    assert!(note.unwrap().contains("damaged"));
    assert!(!paths.config_file().exists());
    let backups = files_starting(&paths.config_dir, "config.json.corrupt-");
    assert_eq!(backups.len(), 1);
    let kept = std::fs::read_to_string(paths.config_dir.join(&backups[0])).unwrap();
    assert_eq!(kept, "{\"peer_id\": \"bob\", ", "the damaged file is kept as it was");
}

#[test]
fn config_partial_keeps_good_fields_and_defaults_bad_ones() {
    let (_dir, paths) = temp_paths();
    std::fs::create_dir_all(&paths.config_dir).unwrap();
    let text = r#"{
        "peer_id": "bob",
        "future_key": 3,
        "volume": "loud",
        "do_not_disturb": true,
        "contacts": [{"peer_id": "carol"}, {"name": "no id"}, 7],
        "media": {"kind": "url", "template": "https://m/{channel}"}
    }"#;
    std::fs::write(paths.config_file(), text).unwrap();
    let (config, note) = AppConfig::load(&paths);
    assert_eq!(config.peer_id, "bob");
    assert!(config.do_not_disturb);
    assert_eq!(config.volume, softphone_app::config::DEFAULT_VOLUME, "a bad field falls back to its default");
    assert_eq!(config.contacts, vec![Contact { peer_id: "carol".into(), name: String::new() }]);
    assert_eq!(config.media, MediaConfig::Url { template: "https://m/{channel}".into() });
    let note = note.expect("the user is told");
    assert!(note.contains("volume") && note.contains("contacts") && !note.contains("future_key"), "{note}");
    assert!(paths.config_file().exists(), "a partial file is not set aside");
}

#[test]
fn config_that_is_not_an_object_is_set_aside() {
    let (_dir, paths) = temp_paths();
    std::fs::create_dir_all(&paths.config_dir).unwrap();
    std::fs::write(paths.config_file(), "[\"alice\"]").unwrap();
    let (config, note) = AppConfig::load(&paths);
    assert_eq!(config, AppConfig::default());
    assert!(note.is_some());
    assert_eq!(files_starting(&paths.config_dir, "config.json.corrupt-").len(), 1);
}

fn record(call_id: &str, peer: &str, outcome: Outcome) -> HistoryEntry {
    HistoryEntry {
        call_id: call_id.into(),
        direction: if outcome == Outcome::Missed { Direction::Incoming } else { Direction::Outgoing },
        peer: peer.into(),
        channel: "room-1".into(),
        started_at_ms: 1_700_000_000_000,
        duration_ms: if outcome == Outcome::Answered { 61_000 } else { 0 },
        outcome,
        detail: if outcome == Outcome::Failed { "peer offline".into() } else { String::new() },
    }
}

#[test]
fn history_round_trips_and_appends_whole_lines() {
    let (_dir, paths) = temp_paths();
    let path = paths.history_file();
    let mut history = History::empty(path.clone());
    let records = vec![
        record("c1", "bob", Outcome::Answered),
        record("c2", "carol", Outcome::Missed),
        record("c3", "dave", Outcome::Failed),
    ];
    for r in &records {
        history.append(r.clone()).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.ends_with('\n'));
    let (loaded, note) = History::load(&path);
    assert!(note.is_none());
    assert_eq!(loaded.records(), records.as_slice());
    assert_eq!(loaded.unseen_missed().count(), 1);
}

#[test]
fn history_skips_a_torn_last_line_and_appends_after_it_cleanly() {
    let (_dir, paths) = temp_paths();
    let path = paths.history_file();
    let mut history = History::empty(path.clone());
    history.append(record("c1", "bob", Outcome::Missed)).unwrap();
    // A crash in the middle of the second append.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"type\":\"call\",\"call_id\":\"c2\",\"dire");
    std::fs::write(&path, &bytes).unwrap();

    let (mut loaded, note) = History::load(&path);
    assert!(note.is_none(), "a torn last line is expected after a crash, not damage");
    assert_eq!(loaded.records().len(), 1);
    loaded.append(record("c3", "carol", Outcome::Missed)).unwrap();
    let (again, note) = History::load(&path);
    assert!(note.is_none());
    let ids: Vec<_> = again.records().iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c3"]);
}

#[test]
fn history_damaged_in_the_middle_is_kept_aside_and_the_good_lines_recovered() {
    let (_dir, paths) = temp_paths();
    let path = paths.history_file();
    let mut history = History::empty(path.clone());
    history.append(record("c1", "bob", Outcome::Missed)).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\xff\xfe garbage\n");
    std::fs::write(&path, &bytes).unwrap();
    history.append(record("c2", "carol", Outcome::Answered)).unwrap();
    let damaged = std::fs::read(&path).unwrap();

    let (loaded, note) = History::load(&path);
    assert!(note.unwrap().contains("damaged"));
    let ids: Vec<_> = loaded.records().iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"], "the valid lines are recovered");
    let backups = files_starting(&paths.data_dir, "history.jsonl.corrupt-");
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read(paths.data_dir.join(&backups[0])).unwrap(), damaged, "kept byte for byte");
    let (clean, note) = History::load(&path);
    assert!(note.is_none(), "the rewritten file is clean");
    assert_eq!(clean.records().len(), 2);
}

#[test]
fn history_of_pure_garbage_starts_empty() {
    let (_dir, paths) = temp_paths();
    std::fs::create_dir_all(&paths.data_dir).unwrap();
    std::fs::write(paths.history_file(), b"\x00\x01\x02\nnot json\n").unwrap();
    let (history, note) = History::load(&paths.history_file());
    assert!(note.is_some());
    assert!(history.records().is_empty());
}

#[test]
fn the_desktop_entry_names_the_binary_and_an_icon_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let entry = std::fs::read_to_string(root.join("resources/softphone.desktop")).unwrap();
    let keys: std::collections::HashMap<&str, &str> =
        entry.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(entry.lines().next(), Some("[Desktop Entry]"));
    assert_eq!(keys.get("Type"), Some(&"Application"));
    assert_eq!(keys.get("Exec"), Some(&"softphone"));
    assert_eq!(keys.get("Icon"), Some(&"softphone"));
    assert!(keys.get("Categories").is_some_and(|c| c.contains("Telephony")));
    for icon in ["assets/icons/softphone.svg", "assets/icons/softphone.png"] {
        assert!(root.join(icon).is_file(), "{icon}");
    }
}

#[test]
fn the_example_config_loads_without_a_problem() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../resources/config.example.json"))
            .unwrap();
    let (config, problems) = AppConfig::parse(&bytes).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(config.contacts.len(), 2);
    assert_eq!(config.servers.urls(), ["ws://127.0.0.1:7878/"], "the list form");
}

#[test]
fn a_config_of_an_earlier_version_keeps_its_server_and_is_written_back_as_a_list() {
    let (_dir, paths) = temp_paths();
    std::fs::create_dir_all(&paths.config_dir).unwrap();
    std::fs::write(paths.config_file(), r#"{"server_url": "ws://example.org:7878/", "peer_id": "bob"}"#)
        .unwrap();
    let (config, note) = AppConfig::load(&paths);
    assert_eq!((config.servers.urls(), note), (&["ws://example.org:7878/".to_owned()][..], None));
    config.save(&paths).unwrap();
    let text = std::fs::read_to_string(paths.config_file()).unwrap();
    assert!(text.contains("\"servers\": [") && !text.contains("server_url"), "{text}");
    assert_eq!(AppConfig::load(&paths).0, config);
}

/// A call up when the app is killed (nothing of the app runs: it is just
/// gone, as with `kill -9`) is in the history as answered at the next start.
#[test]
fn a_call_up_when_the_app_is_killed_is_in_the_history_as_answered() {
    use super::support::Harness;
    use softphone_app::{CallRequest, Message, incoming};
    let mut h = Harness::signed_in("alice");
    h.invited("c1", "bob");
    h.send(Message::Incoming(incoming::Message::Accept));
    h.send(Message::Replied { call_id: "c1".into(), request: CallRequest::Accept, result: Ok(()) });
    let text = std::fs::read_to_string(h.paths().history_file()).unwrap();
    assert!(text.contains(r#""type":"answered""#), "written at the answer: {text}");
    let h = h.restart();
    let [call] = h.app.history().records() else { panic!("{:?}", h.app.history().records()) };
    assert_eq!(
        (call.call_id.as_str(), call.direction, call.outcome),
        ("c1", Direction::Incoming, Outcome::Answered)
    );
    assert_eq!(call.detail, softphone_app::call_history::UNFINISHED);
}

/// A history written before answered lines existed loads as it did.
#[test]
fn an_old_history_without_answered_lines_loads_unchanged() {
    let (_dir, paths) = temp_paths();
    let old = concat!(
        r#"{"type":"call","call_id":"c1","direction":"outgoing","peer":"bob","channel":"r","started_at_ms":5,"duration_ms":7000,"outcome":"answered"}"#,
        "\n",
        r#"{"type":"seen","at_ms":9}"#,
        "\n",
    );
    std::fs::create_dir_all(&paths.data_dir).unwrap();
    std::fs::write(paths.history_file(), old).unwrap();
    let (history, note) = History::load(&paths.history_file());
    assert!(note.is_none());
    let [call] = history.records() else { panic!("{:?}", history.records()) };
    assert_eq!((call.duration_ms, call.outcome, call.detail.as_str()), (7000, Outcome::Answered, ""));
    assert_eq!(std::fs::read_to_string(paths.history_file()).unwrap(), old, "not rewritten");
}
