//! Property-based fuzzing (proptest) of the files the app reads back: the
//! config loader (`AppConfig::parse`) and the history loader
//! (`History::load`, on real files in a temp dir). Any input gives a typed
//! error or a value that re-encodes to itself, never a panic; a damaged
//! history keeps every intact call.

use crate::fuzz_strategies::{fixed, json_value, text};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Map, Value};
use softphone_app::call_history::{Direction, History, HistoryEntry, Outcome};
use softphone_app::config::{AppConfig, ConfigError, FieldProblem};

/// The keys of `config.json`, and some it does not have.
const CONFIG_KEYS: &[&str] = &[
    "server_url",
    "servers",
    "peer_id",
    "token",
    "device",
    "ringtone",
    "volume",
    "ringback",
    "do_not_disturb",
    "call_waiting",
    "contacts",
    "media",
];

/// A value a config key may hold: the right kind, near it, or anything.
fn config_value() -> impl Strategy<Value = Value> {
    let contact = (text(), prop::option::of(text())).prop_map(|(peer_id, name)| {
        let mut c = Map::new();
        c.insert("peer_id".into(), peer_id.into());
        if let Some(name) = name {
            c.insert("name".into(), name.into());
        }
        Value::Object(c)
    });
    let media = prop_oneof![
        Just(serde_json::json!({"kind": "none"})),
        (text(), prop::collection::vec(text(), 0..3)).prop_map(
            |(program, args)| serde_json::json!({"kind": "command", "program": program, "args": args})
        ),
        text().prop_map(|template| serde_json::json!({"kind": "url", "template": template})),
        (text(), json_value()).prop_map(|(kind, v)| serde_json::json!({"kind": kind, "program": v})),
    ];
    prop_oneof![
        2 => text().prop_map(Value::String),
        1 => (0u64..300).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => prop::collection::vec(prop_oneof![contact, json_value()], 0..4).prop_map(Value::Array),
        1 => media,
        2 => json_value(),
    ]
}

/// A JSON object of config keys (and unknown ones) with random values.
fn config_object() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![4 => prop::sample::select(CONFIG_KEYS).prop_map(str::to_owned), 1 => text()];
    prop::collection::vec((key, config_value()), 0..8).prop_map(|entries| {
        let object: Map<String, Value> = entries.into_iter().collect();
        serde_json::to_vec(&Value::Object(object)).expect("JSON encodes")
    })
}

/// The config loader's property.
fn config_holds(bytes: &[u8]) -> Result<(), TestCaseError> {
    match AppConfig::parse(bytes) {
        Ok((config, problems)) => {
            let object = serde_json::from_slice::<Value>(bytes).expect("parsed, so JSON");
            let keys = object.as_object().expect("parsed, so an object").len();
            prop_assert!(problems.len() <= keys, "{} problems for {} keys", problems.len(), keys);
            for problem in &problems {
                if let FieldProblem::Invalid { key, reason } = problem {
                    prop_assert!(CONFIG_KEYS.contains(&key.as_str()) && !reason.is_empty(), "{:?}", problem);
                }
            }
            let saved = serde_json::to_vec_pretty(&config).expect("a config encodes");
            prop_assert_eq!(AppConfig::parse(&saved).map_err(|e| e.to_string()), Ok((config, Vec::new())));
        }
        Err(ConfigError::NotJson(_) | ConfigError::NotAnObject(_)) => {}
        Err(e @ ConfigError::Read { .. }) => prop_assert!(false, "parse does not read files: {}", e),
    }
    Ok(())
}

#[test]
fn fuzz_config_parse() {
    let input = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).expect("JSON encodes")),
        4 => config_object(),
    ];
    TestRunner::new(fixed(3_000)).run(&input, |bytes| config_holds(&bytes)).unwrap();
}

fn record() -> impl Strategy<Value = HistoryEntry> {
    let direction = prop_oneof![Just(Direction::Incoming), Just(Direction::Outgoing)];
    let outcome = prop::sample::select(vec![
        Outcome::Answered,
        Outcome::Declined,
        Outcome::Busy,
        Outcome::Missed,
        Outcome::Canceled,
        Outcome::Failed,
        Outcome::AnsweredElsewhere,
    ]);
    (text(), direction, text(), text(), any::<u64>(), any::<u64>(), outcome, text()).prop_map(
        |(call_id, direction, peer, channel, started_at_ms, duration_ms, outcome, detail)| HistoryEntry {
            call_id,
            direction,
            peer,
            channel,
            started_at_ms,
            duration_ms,
            outcome,
            detail,
        },
    )
}

/// One line of a history file as the app writes it.
fn record_line(record: &HistoryEntry) -> Vec<u8> {
    let mut value = serde_json::to_value(record).expect("a record encodes");
    value["type"] = "call".into();
    let mut line = serde_json::to_vec(&value).expect("JSON encodes");
    line.push(b'\n');
    line
}

/// A history file: intact lines, `seen` markers, garbage lines, maybe a
/// torn last line; and the records the loader must recover from it.
fn history_file() -> impl Strategy<Value = (Vec<u8>, Vec<HistoryEntry>)> {
    let line = prop_oneof![
        4 => record().prop_map(Some),
        1 => Just(None),
    ];
    let garbage = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..30).prop_map(|mut b| {
            b.retain(|c| *c != b'\n');
            b
        }),
        json_value().prop_map(|v| serde_json::to_vec(&v).expect("JSON encodes")),
    ];
    let lines = prop::collection::vec((line, prop::option::weighted(0.15, garbage)), 0..8);
    let torn = prop::option::weighted(0.3, (record(), any::<prop::sample::Index>()));
    (lines, torn).prop_map(|(lines, torn)| {
        let mut bytes = Vec::new();
        let mut kept = Vec::new();
        for (line, garbage) in lines {
            match line {
                Some(record) => {
                    bytes.extend(record_line(&record));
                    kept.push(record);
                }
                None => bytes.extend(b"{\"type\":\"seen\",\"at_ms\":1}\n"),
            }
            // Garbage that happens to be only white space is a blank line, skipped.
            if let Some(garbage) = garbage {
                bytes.extend(garbage);
                bytes.push(b'\n');
            }
        }
        // A last record cut short before its closing brace, as a crash
        // during an append leaves it: not recovered.
        if let Some((record, at)) = torn {
            let line = record_line(&record);
            bytes.extend(&line[..at.index(line.len() - 1)]);
        }
        (bytes, kept)
    })
}

/// The history loader's property, on a real file: it recovers `expected`
/// (when given), and what it leaves on disk loads again the same, quietly.
fn history_holds(bytes: &[u8], expected: Option<&[HistoryEntry]>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, bytes).expect("write the history file");
    let (history, _note) = History::load(&path);
    if let Some(expected) = expected {
        prop_assert_eq!(history.records(), expected);
    }
    let (again, note) = History::load(&path);
    prop_assert_eq!(again.records(), history.records(), "a second load recovers the same calls");
    prop_assert_eq!(note, None, "the first load left a clean file");
    Ok(())
}

#[test]
fn fuzz_history_load_of_any_bytes() {
    let input = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        prop::collection::vec(prop_oneof![text(), Just("\n".to_owned())], 0..6)
            .prop_map(|t| t.concat().into_bytes()),
    ];
    TestRunner::new(fixed(300)).run(&input, |bytes| history_holds(&bytes, None)).unwrap();
}

#[test]
fn fuzz_a_damaged_history_keeps_every_intact_call() {
    TestRunner::new(fixed(300))
        .run(&history_file(), |(bytes, kept)| history_holds(&bytes, Some(&kept)))
        .unwrap();
}

#[test]
fn fuzz_appended_calls_load_back_as_they_were() {
    TestRunner::new(fixed(100))
        .run(&prop::collection::vec(record(), 0..6), |records| {
            let dir = tempfile::tempdir().expect("a temp dir");
            let path = dir.path().join("history.jsonl");
            let mut history = History::empty(path.clone());
            for r in &records {
                history.append(r.clone()).expect("append");
            }
            let (loaded, note) = History::load(&path);
            prop_assert_eq!(loaded.records(), &records[..]);
            prop_assert_eq!(note, None);
            Ok(())
        })
        .unwrap();
}
