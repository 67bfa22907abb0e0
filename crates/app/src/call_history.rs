//! The call history: every call in and out, in `history.jsonl` in the data
//! directory (see [`crate::paths`]), one JSON object a line.
//!
//! A line is either a [`HistoryEntry`] (`"type": "call"`) or a marker that the
//! user has seen the missed calls so far (`"type": "seen"`): the missed
//! calls after the last marker are the unseen ones the home screen counts.
//! Keeping the marker in the same file keeps "seen" and the calls it covers
//! consistent without comparing clocks.
//!
//! A call is written when it is answered (`"type": "answered"`, a record
//! with no duration yet) and again when it ends (a `"call"` line with the
//! same call id): the loader merges the two into one record. So a crash or
//! a `kill -9` mid-call leaves the call in the history as answered; with
//! no completion line its detail says the app stopped during the call.
//! Files written before answered lines existed load as they always did.
//!
//! Appending writes one whole line with a single write and syncs it, so a
//! crash leaves at worst a torn last line. Loading skips such a line (and
//! rewrites the file without it, so the next append starts on a fresh
//! line). A line in the middle that is not valid means the file was damaged
//! some other way: it is kept aside as `history.jsonl.corrupt-<time>`, the
//! valid lines are written back, and the app starts with them.

use crate::paths;
use serde::{Deserialize, Serialize};
use softphone_core::clock::unix_millis;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Someone called us.
    Incoming,
    /// We called someone.
    Outgoing,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was answered (here, or by the callee); `duration_ms` says how long it lasted.
    Answered,
    /// The callee refused (outgoing), or we did (incoming).
    Declined,
    /// The callee was on another call.
    Busy,
    /// It rang here and nobody answered: the caller gave up, it expired, we
    /// were busy or in do-not-disturb.
    Missed,
    /// We withdrew it before it was answered.
    Canceled,
    /// It could not be put through; `detail` says why.
    Failed,
    /// Another of our devices answered it.
    AnsweredElsewhere,
}

impl Outcome {
    /// The word the history screen shows.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Declined => "declined",
            Outcome::Busy => "busy",
            Outcome::Missed => "missed",
            Outcome::Canceled => "canceled",
            Outcome::Failed => "failed",
            Outcome::AnsweredElsewhere => "answered on another device",
        }
    }
}

/// One call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The server's id of the call; tells two calls with the same peer apart.
    pub call_id: String,
    pub direction: Direction,
    /// The other party.
    pub peer: String,
    /// The media channel it was placed on.
    pub channel: String,
    /// When it started ringing (or was placed), in Unix milliseconds.
    pub started_at_ms: u64,
    /// How long it was connected; 0 unless answered.
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// Why, when the outcome alone does not say: a failure's reason, "do
    /// not disturb", "declined on another device".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl HistoryEntry {
    /// Whether this is a call that rang here and was not answered anywhere.
    pub fn is_missed(&self) -> bool {
        self.direction == Direction::Incoming && self.outcome == Outcome::Missed
    }
}

/// A line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Call(HistoryEntry),
    /// A call was answered and is in progress; its `call` line follows
    /// when it ends.
    Answered(HistoryEntry),
    /// The user looked at the history: the missed calls so far are seen.
    Seen {
        at_ms: u64,
    },
}

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("line {line} of {path} is not a history entry: {reason}")]
    Corrupt { path: PathBuf, line: usize, reason: String },
}

/// The history in memory, backed by its file.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    /// Every call, oldest first.
    records: Vec<HistoryEntry>,
    /// How many of `records` the last "seen" marker covers.
    seen: usize,
    /// The calls answered and not ended yet: their `call` line completes
    /// the record rather than adding one.
    in_progress: Vec<String>,
}

/// The detail of an answered call whose end was never written.
pub const UNFINISHED: &str = "the app stopped during the call";

impl History {
    /// An empty history that writes to `path` (created at the first call).
    pub fn empty(path: PathBuf) -> History {
        History { path, records: Vec::new(), seen: 0, in_progress: Vec::new() }
    }

    /// Reads the history at `path`, tolerating a torn last line and damage
    /// (see the module docs). The second value is a sentence for the user
    /// when something had to be set aside.
    pub fn load(path: &Path) -> (History, Option<String>) {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (History::empty(path.into()), None),
            Err(source) => {
                let error = HistoryError::Read { path: path.into(), source };
                tracing::warn!("{error}; the history starts empty");
                // New calls are still appended: appending never harms what the file holds.
                return (
                    History::empty(path.into()),
                    Some(format!("The call history could not be read ({error}).")),
                );
            }
        };
        let parsed = parse(path, &bytes);
        let mut history = History::empty(path.into());
        for line in &parsed.lines {
            history.apply(line.clone());
        }
        // Answered, never ended: the app stopped (or was killed) mid-call.
        for call_id in std::mem::take(&mut history.in_progress) {
            if let Some(record) = history.records.iter_mut().rev().find(|r| r.call_id == call_id) {
                record.detail = UNFINISHED.to_owned();
            }
        }
        let mut note = None;
        if let Some(error) = &parsed.corrupt {
            let backup = paths::backup_path(path);
            tracing::warn!("{error}; the file is kept as {}", backup.display());
            note = Some(match std::fs::rename(path, &backup) {
                Ok(()) => format!(
                    "The call history was damaged; it was kept as {} and {} calls were recovered.",
                    backup.display(),
                    history.records.len()
                ),
                Err(e) => format!("The call history was damaged and could not be set aside ({e})."),
            });
        } else if parsed.torn_tail {
            tracing::warn!("{}: skipped a torn last line (a crash while writing)", path.display());
        }
        if (parsed.corrupt.is_some() || parsed.torn_tail)
            && let Err(e) = history.rewrite(&parsed.lines)
        {
            tracing::warn!("{e}");
        }
        (history, note)
    }

    /// Adds a call and appends it to the file. The call is kept in memory
    /// even when the file cannot be written.
    pub fn append(&mut self, record: HistoryEntry) -> Result<(), HistoryError> {
        let line = Line::Call(record);
        self.apply(line.clone());
        self.write_line(&line)
    }

    /// Writes an answered call now, before it ends, so that it is in the
    /// history whatever happens to the app; [`append`](Self::append) of
    /// the same call id completes it.
    pub fn append_answered(&mut self, record: HistoryEntry) -> Result<(), HistoryError> {
        let line = Line::Answered(record);
        self.apply(line.clone());
        self.write_line(&line)
    }

    /// Marks every missed call so far as seen.
    pub fn mark_seen(&mut self) -> Result<(), HistoryError> {
        if self.seen == self.records.len() {
            return Ok(());
        }
        let line = Line::Seen { at_ms: unix_millis() };
        self.apply(line.clone());
        self.write_line(&line)
    }

    /// Every call, oldest first.
    pub fn records(&self) -> &[HistoryEntry] {
        &self.records
    }

    /// The missed calls not seen yet, newest first.
    pub fn unseen_missed(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.records[self.seen..].iter().rev().filter(|r| r.is_missed())
    }

    /// Whether the call at `index` in [`records`](Self::records) is a missed call not seen yet.
    pub fn is_unseen_missed(&self, index: usize) -> bool {
        index >= self.seen && self.records.get(index).is_some_and(HistoryEntry::is_missed)
    }

    /// Where it is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn apply(&mut self, line: Line) {
        match line {
            Line::Call(record) => match self.in_progress.iter().position(|id| *id == record.call_id) {
                Some(open) => {
                    self.in_progress.swap_remove(open);
                    match self.records.iter_mut().rev().find(|r| r.call_id == record.call_id) {
                        Some(answered) => *answered = record,
                        None => self.records.push(record),
                    }
                }
                None => self.records.push(record),
            },
            Line::Answered(record) => {
                self.in_progress.push(record.call_id.clone());
                self.records.push(record);
            }
            Line::Seen { .. } => self.seen = self.records.len(),
        }
    }

    /// Appends one line: one write of the whole line, then a sync.
    fn write_line(&self, line: &Line) -> Result<(), HistoryError> {
        let write_error = |source| HistoryError::Write { path: self.path.clone(), source };
        let mut bytes = serde_json::to_vec(line).map_err(|e| write_error(e.into()))?;
        bytes.push(b'\n');
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(write_error)?;
        file.write_all(&bytes).map_err(write_error)?;
        file.sync_data().map_err(write_error)
    }

    /// Replaces the file with `lines`, atomically.
    fn rewrite(&self, lines: &[Line]) -> Result<(), HistoryError> {
        let mut bytes = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut bytes, line).expect("history lines serialize");
            bytes.push(b'\n');
        }
        paths::write_atomically(&self.path, &bytes)
            .map_err(|source| HistoryError::Write { path: self.path.clone(), source })
    }
}

/// What a history file held.
struct Parsed {
    /// The valid lines, in order.
    lines: Vec<Line>,
    /// The last line was cut short (no newline, not valid): a crash mid-write.
    torn_tail: bool,
    /// The first damaged line before the last.
    corrupt: Option<HistoryError>,
}

fn parse(path: &Path, bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed { lines: Vec::new(), torn_tail: false, corrupt: None };
    let complete = bytes.ends_with(b"\n") || bytes.is_empty();
    let pieces: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = pieces.len() - 1;
    for (index, piece) in pieces.into_iter().enumerate() {
        if piece.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Line>(piece) {
            // A valid last line without its newline is kept, and the file
            // rewritten, so the next append does not join it.
            Ok(line) => {
                parsed.lines.push(line);
                if index == last && !complete {
                    parsed.torn_tail = true;
                }
            }
            Err(_) if index == last && !complete => parsed.torn_tail = true,
            Err(e) => {
                if parsed.corrupt.is_none() {
                    parsed.corrupt = Some(HistoryError::Corrupt {
                        path: path.into(),
                        line: index + 1,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missed(peer: &str) -> HistoryEntry {
        HistoryEntry {
            call_id: format!("c-{peer}"),
            direction: Direction::Incoming,
            peer: peer.into(),
            channel: "room".into(),
            started_at_ms: 1,
            duration_ms: 0,
            outcome: Outcome::Missed,
            detail: String::new(),
        }
    }

    #[test]
    fn seen_marks_cover_the_calls_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::empty(dir.path().join("h.jsonl"));
        history.append(missed("bob")).unwrap();
        history.mark_seen().unwrap();
        history.append(missed("carol")).unwrap();
        let unseen: Vec<_> = history.unseen_missed().map(|r| r.peer.as_str()).collect();
        assert_eq!(unseen, ["carol"]);
        assert!(!history.is_unseen_missed(0) && history.is_unseen_missed(1));
        let (again, note) = History::load(history.path());
        assert!(note.is_none());
        assert_eq!(again.unseen_missed().count(), 1);
    }

    fn answered(call_id: &str, duration_ms: u64) -> HistoryEntry {
        HistoryEntry { call_id: call_id.into(), outcome: Outcome::Answered, duration_ms, ..missed("bob") }
    }

    #[test]
    fn an_answered_line_and_its_completion_are_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::empty(dir.path().join("h.jsonl"));
        history.append_answered(answered("c1", 0)).unwrap();
        history.append(missed("carol")).unwrap();
        assert_eq!(history.records().len(), 2, "in progress, in memory too");
        history.append(answered("c1", 7_000)).unwrap();
        assert_eq!(history.records(), [answered("c1", 7_000), missed("carol")]);
        let text = std::fs::read_to_string(history.path()).unwrap();
        let kinds: Vec<_> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].clone())
            .collect();
        assert_eq!(kinds, ["answered", "call", "call"]);
        let (again, note) = History::load(history.path());
        assert!(note.is_none());
        assert_eq!(again.records(), history.records());
    }

    #[test]
    fn an_answered_call_that_never_ended_loads_as_answered_and_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::empty(dir.path().join("h.jsonl"));
        history.append_answered(answered("c1", 0)).unwrap();
        let (again, _) = History::load(history.path());
        let [record] = again.records() else { panic!("{:?}", again.records()) };
        assert_eq!((record.outcome, record.detail.as_str()), (Outcome::Answered, UNFINISHED));
        // A new call with another id is not merged into it.
        let (mut again, _) = History::load(history.path());
        again.append(answered("c2", 5)).unwrap();
        assert_eq!(again.records().len(), 2);
    }
}
